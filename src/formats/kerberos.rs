//! The local KDC's password-derived keys of a local user record:
//! `KerberosKeys` and `HeimdalSRPKey` (docs/kerberos.md).
//!
//! A Mac's local KDC (LKDC: Screen Sharing, File Sharing) keeps each local user's
//! long-term Kerberos keys in the dslocal record. They are derived from the
//! password, so after an offline password change they must be derived again, or
//! the *old* password keeps working there.
//!
//! This module is pure: bytes and a password in, bytes out. No file is read,
//! nothing is printed, nothing panics on any input. Everything below was read in
//! Apple's open-source Heimdal (apple-oss-distributions/Heimdal, Heimdal-710.0.1,
//! with OS X 10.8's Heimdal-247.6 for comparison) and corecrypto.
//!
//! ## `KerberosKeys`
//!
//! Each value is the DER of `hdb_keyset_aapl ::= SEQUENCE { kvno[1] INTEGER,
//! keys[0] SEQUENCE OF Key, principal[2] Principal OPTIONAL }` (`lib/hdb/hdb.asn1`),
//! written by `lib/akadmin/HeimODAdmin.c` `update_keys`, called by `HeimODSetKeys`:
//!
//! * one `Key` per enctype of `HeimODCopyDefaultEnctypes`, in its order:
//!   aes256-cts-hmac-sha1-96 (18), aes128-cts-hmac-sha1-96 (17), des3-cbc-sha1 (16);
//! * keys are not sealed (`mkvno` absent: the sealing code is `#if 0`);
//! * each key carries `Salt { type 3, salt }` from `krb5_get_pw_salt`
//!   (`lib/krb5/salt.c`): the realm followed by the name components, no `opaque`;
//! * the realm is the LKDC realm (`get_lkdc_realm`: the `KerberosKDC` config
//!   record's `RealName`), `LKDC:SHA1.` and the upper-case hex SHA-1 of the KDC
//!   certificate (`lib/akadmin/admin.c` `realmOfIdentity`, `sha1_hash`); the record
//!   repeats it in `;Kerberosv5;;name@realm;realm;`;
//! * `principal` is stored only when `HeimODSetKeys` is given one explicitly;
//! * the kvno is the highest kvno of the matching stored keysets plus one
//!   (`last_kvno_record`), and the attribute is replaced by that one keyset unless
//!   `kHeimODAdminSetKeysAppendKey` is set. The KDC uses the highest-kvno keyset
//!   (`lib/hdb/hdb-od.c` `od2hdb_keys`).
//!
//! ## String-to-key (RFC 3961, RFC 3962), as Heimdal computes it
//!
//! * aes256/aes128: `tkey = PBKDF2-HMAC-SHA1(password, salt, 4096, 32 | 16)`,
//!   `key = DK(tkey, "kerberos")` with AES as `E`; random-to-key is the identity.
//!   `lib/krb5/salt-aes.c` `AES_string_to_key`: the count is
//!   `_krb5_AES_string_to_default_iterator = 4096` whenever `opaque` is empty,
//!   which it always is here (`update_keys` passes `krb5_data_zero(&opaque)`).
//! * des3: `tmp = random-to-key(168-fold(password ‖ salt))`,
//!   `key = DK(tmp, "kerberos")` with 3DES-EDE as `E`: `lib/krb5/salt-des3.c`
//!   `DES3_string_to_key_derived` → `lib/krb5/salt.c` `krb5_string_to_key_derived`.
//! * `DK(key, c) = random-to-key(DR(key, c))`, `DR` = `E` applied repeatedly to
//!   `n-fold(c, blocksize)`, concatenated and truncated to the seed length:
//!   `lib/krb5/crypto.c` `_krb5_derive_key`.
//! * DES3 random-to-key spreads 3 × 7 bytes into 3 × 8 (each group's low bits go
//!   to bits 1..7 of its eighth byte), sets odd parity and XORs a weak or
//!   semi-weak DES key with `00 00 00 00 00 00 00 F0`: `lib/krb5/crypto-des3.c`
//!   `_krb5_DES3_random_to_key` (RFC 3961 §6.3.1, §6.2).
//! * The password is a C string (`strlen`): one holding NUL is refused.
//!
//! n-fold and DK are written here on top of the `aes`, `des`, `pbkdf2`/`sha1`
//! crates and checked against every RFC 3961 Appendix A.1 n-fold vector, the A.3
//! DES3 DR/DK vectors, the A.4 DES3 string-to-key vectors, the RFC 3962 Appendix B
//! AES vectors, and the independent `picky-krb` crate (tests only).
//!
//! ## `HeimdalSRPKey` (OS X 10.10 and later)
//!
//! `HeimODSetKeys` → `SetSRP` → `HeimODCreateSRPKeys` writes a one-element array:
//! the DER of `hdb-srp ::= SEQUENCE { verifier[0] OCTET STRING, param[1]
//! KRB5-SRP-PA }`, `KRB5-SRP-PA ::= SEQUENCE { group[0] INTEGER, salt[1] OCTET
//! STRING, iterations[2] INTEGER }` (`lib/hdb/hdb.asn1`, `lib/asn1/krb5.asn1`).
//! `lib/hdb/keys.c` `hdb_set_srp_verifier`: group 1
//! (`KRB5_SRP_GROUP_RFC5054_4096_PBKDF2_SHA512`), a fresh random 16-byte salt,
//! 4000 iterations. `lib/krb5/init_creds_pw.c` `_krb5_srp_create_pa`:
//! `P = PBKDF2-HMAC-SHA512(password, salt, iterations, 64)`, then corecrypto
//! `ccsrp_generate_verifier(username = principal without realm, P, salt)`, whose
//! `ccsrp_generate_x` includes the username (`ccsrp_ctx_init` leaves
//! `noUsernameInX` clear): `x = SHA512(salt ‖ SHA512(name ‖ ":" ‖ P))`,
//! `v = 5^x mod N` (RFC 5054 4096-bit group), 512 bytes. This differs from
//! ShadowHashData's SRP entry (empty username, 128-byte PBKDF2 output). The KDC
//! computes the same username (`kdc/kerberos5.c` `pa_srp_validate`).
//!
//! ## When the layout is not understood
//!
//! [`lkdc_principal`], [`check`], [`regenerate`], [`srp_check`] and
//! [`srp_regenerate`] refuse, with a [`KerberosError`], anything outside the
//! layout above: an enctype other than 16/17/18, a sealed key, a salt missing,
//! of another type or with `opaque`, a realm that is not `LKDC:SHA1.` + 40
//! upper-case hex digits, a name Heimdal would quote, salts or principals that
//! disagree, an SRP group other than 1. The caller then leaves the values as they
//! are and says so. Nothing is ever half-done: all values or an error.
//!
//! ## Why a hand-written DER reader and writer
//!
//! The schema is eight small types with explicit context tags (in the unusual
//! order `[1]`, `[0]`, `[2]`), INTEGERs, OCTET STRINGs and GeneralStrings, and no
//! recursion. The `der` crate would add a dependency tree (with its derive
//! macros) for that, and its `GeneralStringRef` is, in its own words, "not fully
//! implemented yet". The reader here accepts only canonical DER (minimal lengths
//! and integers, definite lengths, no trailing bytes, integers in their ASN.1
//! ranges, at most [`MAX_KEYS`] keys and [`MAX_VALUE_LEN`] bytes), so anything it
//! parses re-encodes byte for byte; each type has its own function, so the depth
//! is fixed.

use aes::{Aes128, Aes256};
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use des::TdesEde3;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto;

/// Iteration count of the AES string-to-key when the key carries no s2kparams
/// (RFC 3962 §4 default, Heimdal `_krb5_AES_string_to_default_iterator`).
pub const AES_ITERATIONS: u32 = 4096;

/// The well-known constant of every string-to-key's final DK step (RFC 3961 §6.3.1,
/// RFC 3962 §4).
const KERBEROS_CONSTANT: &[u8] = b"kerberos";

/// Everything that can be wrong with a `KerberosKeys` or `HeimdalSRPKey` value,
/// or with the record's LKDC identity. Messages name fields and numbers only: they
/// never contain key bytes, salts, names or passwords.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KerberosError {
    /// Two `;Kerberosv5;` authorities name different principals.
    #[error("the record's Kerberosv5 authentication authorities disagree")]
    AuthorityMismatch,
    /// A `;Kerberosv5;` authority is not `;Kerberosv5;;name@realm;realm;`.
    #[error("the record's Kerberosv5 authentication authority is not understood")]
    BadAuthority,
    /// A value is not canonical DER of the expected ASN.1 type; names the element.
    #[error("not a valid DER value: {0}")]
    Der(&'static str),
    /// A key's length does not match its enctype.
    #[error("a key of enctype {enctype} is {len} bytes long")]
    KeyLength {
        /// Enctype number.
        enctype: i32,
        /// Length found.
        len: usize,
    },
    /// A kvno is negative, or cannot be raised by one.
    #[error("key version number {0} is out of range")]
    KvnoOutOfRange(i32),
    /// No value, or a keyset without keys.
    #[error("no Kerberos keys are stored")]
    NoKeys,
    /// The password contains a NUL byte. Heimdal takes the password as a C string
    /// (`strlen`), so it could never reproduce keys for it.
    #[error("the password contains a NUL byte, which Heimdal cannot use")]
    PasswordNul,
    /// A salt or a stored principal is not the record's LKDC principal.
    #[error("a key's salt or principal does not match the record's LKDC principal")]
    PrincipalMismatch,
    /// A stored principal has a name type other than 1 (`KRB5_NT_PRINCIPAL`).
    #[error("a stored principal has name type {0}, not KRB5_NT_PRINCIPAL")]
    PrincipalNameType(i32),
    /// Neither the authorities nor the keys name a realm.
    #[error("the record names no LKDC realm")]
    RealmAbsent,
    /// The realm is not `LKDC:SHA1.` followed by 40 upper-case hex digits.
    #[error("the record's Kerberos realm is not an LKDC:SHA1 realm")]
    RealmNotLkdc,
    /// The system random generator failed (a new SRP salt).
    #[error("the system random number generator failed")]
    Random,
    /// A key has no salt (Apple always stores one).
    #[error("a key has no salt")]
    SaltMissing,
    /// A salt carries string-to-key parameters (Apple writes none).
    #[error("a key's salt carries string-to-key parameters")]
    SaltOpaque,
    /// A salt is of a type other than 3 (pw-salt).
    #[error("a key's salt is of type {0}, not pw-salt (3)")]
    SaltType(u32),
    /// A key is sealed with the KDC master key (`mkvno` present).
    #[error("a key is sealed with master key version {0}")]
    SealedKey(i32),
    /// An SRP value's group is not 1 (RFC 5054 4096-bit, PBKDF2-SHA512).
    #[error("an SRP verifier uses group {0}, not the RFC 5054 4096-bit group (1)")]
    SrpGroup(i32),
    /// An SRP iteration count is 0 or above [`crypto::MAX_ITERATIONS`].
    #[error("an SRP verifier's iteration count {0} is out of range")]
    SrpIterations(u32),
    /// An SRP salt is empty or longer than 1024 bytes.
    #[error("an SRP verifier's salt is {0} bytes long")]
    SrpSaltLength(usize),
    /// An SRP verifier is not 512 bytes long.
    #[error("an SRP verifier is {0} bytes long, not 512")]
    SrpVerifierLength(usize),
    /// A value is larger than [`MAX_VALUE_LEN`].
    #[error("value is {0} bytes, more than the 65536 allowed")]
    TooLarge(usize),
    /// More than [`MAX_VALUES`] values.
    #[error("{0} values are stored, more than the 16 allowed")]
    TooManyValues(usize),
    /// The principal's name is empty or holds a character Heimdal quotes.
    #[error("the LKDC principal's name is empty or holds a character Heimdal quotes")]
    UnsupportedName,
    /// A key of an enctype other than 16, 17, 18.
    #[error("a key has enctype {0}, which fvsync does not derive")]
    UnsupportedEnctype(i32),
}

/// The three encryption types Apple's Heimdal writes for a local user
/// (`lib/akadmin/HeimODAdmin.c` `HeimODCopyDefaultEnctypes`, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Enctype {
    /// des3-cbc-sha1 (RFC 3961 §6.3), number 16, 24-byte keys.
    Des3CbcSha1,
    /// aes128-cts-hmac-sha1-96 (RFC 3962), number 17, 16-byte keys.
    Aes128CtsHmacSha196,
    /// aes256-cts-hmac-sha1-96 (RFC 3962), number 18, 32-byte keys.
    Aes256CtsHmacSha196,
}

impl Enctype {
    /// The enctype for an IANA number, or `None` for any other number.
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            16 => Some(Enctype::Des3CbcSha1),
            17 => Some(Enctype::Aes128CtsHmacSha196),
            18 => Some(Enctype::Aes256CtsHmacSha196),
            _ => None,
        }
    }

    /// The IANA enctype number (16, 17 or 18).
    pub fn number(self) -> i32 {
        match self {
            Enctype::Des3CbcSha1 => 16,
            Enctype::Aes128CtsHmacSha196 => 17,
            Enctype::Aes256CtsHmacSha196 => 18,
        }
    }

    /// The name Heimdal uses (`krb5_string_to_enctype`).
    pub fn name(self) -> &'static str {
        match self {
            Enctype::Des3CbcSha1 => "des3-cbc-sha1",
            Enctype::Aes128CtsHmacSha196 => "aes128-cts-hmac-sha1-96",
            Enctype::Aes256CtsHmacSha196 => "aes256-cts-hmac-sha1-96",
        }
    }

    /// Length of a protocol key of this type, in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Enctype::Des3CbcSha1 => 24,
            Enctype::Aes128CtsHmacSha196 => 16,
            Enctype::Aes256CtsHmacSha196 => 32,
        }
    }
}

/// RFC 3961 §5.1 n-fold: `input` replicated to the least common multiple of its
/// length and `out_len`, each copy rotated right by 13 bits more than the one
/// before, and the `out_len`-byte chunks added with ones'-complement (end-around
/// carry) addition. An empty input folds to zeros.
///
/// Lengths are in bytes (every use in Kerberos is a whole number of bytes). The
/// work is proportional to lcm(input length, `out_len`); intermediate copies are
/// wiped.
pub fn n_fold(input: &[u8], out_len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; out_len]);
    let k = input.len();
    if k == 0 || out_len == 0 {
        return out;
    }
    let total = lcm(k, out_len);
    let in_bits = k * 8;
    let mut chunk = Zeroizing::new(vec![0u8; out_len]);
    let mut pos = 0usize; // byte position in the replicated string
    while pos < total {
        for (j, slot) in chunk.iter_mut().enumerate() {
            let byte_index = pos + j;
            let copy = byte_index / k;
            let rot = (13 * copy) % in_bits;
            let mut b = 0u8;
            for bit in 0..8 {
                // Bit i (MSB first) of a copy rotated right by `rot` is bit i - rot
                // of the input.
                let i = (byte_index % k) * 8 + bit;
                let src = (i + in_bits - rot) % in_bits;
                let v = input.get(src / 8).map_or(0, |x| (x >> (7 - src % 8)) & 1);
                b |= v << (7 - bit);
            }
            *slot = b;
        }
        ones_complement_add(&mut out, &chunk);
        pos += out_len;
    }
    out
}

/// `acc += x` in ones'-complement arithmetic on big-endian byte strings of equal
/// length (the carry out of the top byte is added back at the bottom).
fn ones_complement_add(acc: &mut [u8], x: &[u8]) {
    let mut carry = 0u16;
    for (a, b) in acc.iter_mut().rev().zip(x.iter().rev()) {
        let s = u16::from(*a) + u16::from(*b) + carry;
        *a = (s & 0xff) as u8;
        carry = s >> 8;
    }
    // The end-around carry can itself carry at most once more around the string.
    while carry != 0 {
        for a in acc.iter_mut().rev() {
            let s = u16::from(*a) + carry;
            *a = (s & 0xff) as u8;
            carry = s >> 8;
            if carry == 0 {
                break;
            }
        }
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// Encrypts one block in place with `key` (AES-128/256 on 16-byte blocks,
/// 3DES-EDE on 8-byte blocks). A single block under CBC with a zero IV, which is
/// what RFC 3961's `E(key, constant, initial-cipher-state)` is for one block.
fn encrypt_block(enctype: Enctype, key: &[u8], block: &mut [u8]) {
    match enctype {
        Enctype::Aes128CtsHmacSha196 => {
            if let Ok(c) = Aes128::new_from_slice(key) {
                c.encrypt_block(GenericArray::from_mut_slice(block));
            }
        }
        Enctype::Aes256CtsHmacSha196 => {
            if let Ok(c) = Aes256::new_from_slice(key) {
                c.encrypt_block(GenericArray::from_mut_slice(block));
            }
        }
        Enctype::Des3CbcSha1 => {
            if let Ok(c) = TdesEde3::new_from_slice(key) {
                c.encrypt_block(GenericArray::from_mut_slice(block));
            }
        }
    }
}

fn block_len(enctype: Enctype) -> usize {
    match enctype {
        Enctype::Des3CbcSha1 => 8,
        Enctype::Aes128CtsHmacSha196 | Enctype::Aes256CtsHmacSha196 => 16,
    }
}

/// Input length of random-to-key (the key-generation seed length), in bytes.
fn seed_len(enctype: Enctype) -> usize {
    match enctype {
        Enctype::Des3CbcSha1 => 21,
        Enctype::Aes128CtsHmacSha196 => 16,
        Enctype::Aes256CtsHmacSha196 => 32,
    }
}

/// RFC 3961 §5.1 `DR(key, constant)`: `seed_len` pseudo-random bytes.
fn derive_random(enctype: Enctype, key: &[u8], constant: &[u8]) -> Zeroizing<Vec<u8>> {
    let bs = block_len(enctype);
    let want = seed_len(enctype);
    let mut block = n_fold(constant, bs);
    let mut out = Zeroizing::new(Vec::with_capacity(want + bs));
    while out.len() < want {
        encrypt_block(enctype, key, &mut block);
        out.extend_from_slice(&block);
    }
    out.truncate(want);
    out
}

/// RFC 3961 §5.1 `DK(key, constant) = random-to-key(DR(key, constant))`.
fn derive_key(enctype: Enctype, key: &[u8], constant: &[u8]) -> Zeroizing<Vec<u8>> {
    let seed = derive_random(enctype, key, constant);
    random_to_key(enctype, &seed)
}

/// random-to-key: the identity for AES (RFC 3962 §6); for DES3 RFC 3961 §6.3.1
/// with parity and the weak-key correction (Heimdal `_krb5_DES3_random_to_key`).
fn random_to_key(enctype: Enctype, seed: &[u8]) -> Zeroizing<Vec<u8>> {
    match enctype {
        Enctype::Aes128CtsHmacSha196 | Enctype::Aes256CtsHmacSha196 => {
            Zeroizing::new(seed.to_vec())
        }
        Enctype::Des3CbcSha1 => {
            let mut out = Zeroizing::new(vec![0u8; 24]);
            for (group, dst) in seed.chunks(7).zip(out.chunks_mut(8)).take(3) {
                let mut last = 0u8;
                for (j, (&b, d)) in group.iter().zip(dst.iter_mut()).enumerate() {
                    *d = b;
                    last |= (b & 1) << (j + 1);
                }
                if let Some(d) = dst.get_mut(7) {
                    *d = last;
                }
                for d in dst.iter_mut() {
                    *d = odd_parity(*d);
                }
                if is_weak_des_key(dst) {
                    if let Some(d) = dst.get_mut(7) {
                        *d ^= 0xf0;
                    }
                }
            }
            out
        }
    }
}

/// Sets the low bit of `b` so that `b` has an odd number of one bits.
fn odd_parity(b: u8) -> u8 {
    let high = b & 0xfe;
    if high.count_ones().is_multiple_of(2) {
        high | 1
    } else {
        high
    }
}

/// The 4 weak and 12 semi-weak DES keys, with odd parity (FIPS 74; the table of
/// OpenSSL's `DES_is_weak_key` and CommonCrypto's `CCDesIsWeakKey`).
const WEAK_DES_KEYS: [[u8; 8]; 16] = [
    [0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01],
    [0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe],
    [0x1f, 0x1f, 0x1f, 0x1f, 0x0e, 0x0e, 0x0e, 0x0e],
    [0xe0, 0xe0, 0xe0, 0xe0, 0xf1, 0xf1, 0xf1, 0xf1],
    [0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe],
    [0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01],
    [0x1f, 0xe0, 0x1f, 0xe0, 0x0e, 0xf1, 0x0e, 0xf1],
    [0xe0, 0x1f, 0xe0, 0x1f, 0xf1, 0x0e, 0xf1, 0x0e],
    [0x01, 0xe0, 0x01, 0xe0, 0x01, 0xf1, 0x01, 0xf1],
    [0xe0, 0x01, 0xe0, 0x01, 0xf1, 0x01, 0xf1, 0x01],
    [0x1f, 0xfe, 0x1f, 0xfe, 0x0e, 0xfe, 0x0e, 0xfe],
    [0xfe, 0x1f, 0xfe, 0x1f, 0xfe, 0x0e, 0xfe, 0x0e],
    [0x01, 0x1f, 0x01, 0x1f, 0x01, 0x0e, 0x01, 0x0e],
    [0x1f, 0x01, 0x1f, 0x01, 0x0e, 0x01, 0x0e, 0x01],
    [0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1, 0xfe],
    [0xfe, 0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1],
];

fn is_weak_des_key(key: &[u8]) -> bool {
    WEAK_DES_KEYS.iter().any(|w| w[..] == *key)
}

/// The long-term key of `enctype` for `password` and `salt`, exactly as Heimdal's
/// `krb5_string_to_key_data_salt_opaque` computes it with an empty `opaque` (the
/// only form Apple writes): AES with 4096 PBKDF2 iterations.
///
/// # Errors
/// [`KerberosError::PasswordNul`] if the password contains a NUL byte.
pub fn string_to_key(
    enctype: Enctype,
    password: &[u8],
    salt: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KerberosError> {
    if password.contains(&0) {
        return Err(KerberosError::PasswordNul);
    }
    Ok(string_to_key_iter(enctype, password, salt, AES_ITERATIONS))
}

/// [`string_to_key`] with an explicit AES iteration count (the RFC 3962 vectors
/// use several); ignored for DES3.
fn string_to_key_iter(
    enctype: Enctype,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Zeroizing<Vec<u8>> {
    match enctype {
        Enctype::Aes128CtsHmacSha196 | Enctype::Aes256CtsHmacSha196 => {
            let mut tkey = Zeroizing::new(vec![0u8; enctype.key_len()]);
            crypto::pbkdf2_sha1(password, salt, iterations, &mut tkey);
            let tkey = random_to_key(enctype, &tkey);
            derive_key(enctype, &tkey, KERBEROS_CONSTANT)
        }
        Enctype::Des3CbcSha1 => {
            let mut s = Zeroizing::new(Vec::with_capacity(password.len() + salt.len()));
            s.extend_from_slice(password);
            s.extend_from_slice(salt);
            let folded = n_fold(&s, seed_len(enctype));
            let tmp = random_to_key(enctype, &folded);
            derive_key(enctype, &tmp, KERBEROS_CONSTANT)
        }
    }
}

// ---------------------------------------------------------------------------
// DER: the ASN.1 types of `lib/hdb/hdb.asn1` and `lib/asn1/krb5.asn1`.
// ---------------------------------------------------------------------------

/// Largest `KerberosKeys` or `HeimdalSRPKey` value accepted (real ones are about
/// 300 and 560 bytes).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Most values one attribute may hold (Apple writes one).
pub const MAX_VALUES: usize = 16;

/// Most keys one keyset may hold (Apple writes three).
pub const MAX_KEYS: usize = 16;

/// Most components one principal name may have.
const MAX_COMPONENTS: usize = 8;

mod der {
    //! A small, strict DER reader and writer for the handful of types here.
    //!
    //! Only what the schema uses: single-byte tags, definite lengths in minimal
    //! form (at most 3 length bytes), minimal two's-complement INTEGERs of at most
    //! 8 bytes. Anything else is an error, so every value that parses re-encodes
    //! to the same bytes. The schema is not recursive: each type has its own
    //! function and the nesting depth is fixed.

    use zeroize::Zeroizing;

    pub(super) const INTEGER: u8 = 0x02;
    pub(super) const OCTET_STRING: u8 = 0x04;
    pub(super) const GENERAL_STRING: u8 = 0x1b;
    pub(super) const SEQUENCE: u8 = 0x30;

    /// Tag of the constructed, context-specific `[n]` (an explicit tag).
    pub(super) const fn ctx(n: u8) -> u8 {
        0xa0 | n
    }

    /// Why a DER value was refused: names the element, never its bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Bad(pub &'static str);

    pub(super) struct Reader<'a> {
        rest: &'a [u8],
    }

    impl<'a> Reader<'a> {
        pub(super) fn new(buf: &'a [u8]) -> Self {
            Reader { rest: buf }
        }

        pub(super) fn peek_tag(&self) -> Option<u8> {
            self.rest.first().copied()
        }

        /// Reads one element with tag `tag` and returns its contents.
        pub(super) fn read(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], Bad> {
            let (&t, rest) = self.rest.split_first().ok_or(Bad(what))?;
            if t != tag {
                return Err(Bad(what));
            }
            let (&first, mut rest) = rest.split_first().ok_or(Bad(what))?;
            let len = if first < 0x80 {
                usize::from(first)
            } else {
                let n = usize::from(first & 0x7f);
                // 0x80 is the indefinite form (BER only); more than 3 bytes would
                // be over 16 MiB, far beyond MAX_VALUE_LEN.
                if n == 0 || n > 3 {
                    return Err(Bad(what));
                }
                let (bytes, r) = rest.split_at_checked(n).ok_or(Bad(what))?;
                if bytes.first() == Some(&0) {
                    return Err(Bad(what));
                }
                let len = bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
                if len < 0x80 {
                    return Err(Bad(what));
                }
                rest = r;
                len
            };
            let (content, r) = rest.split_at_checked(len).ok_or(Bad(what))?;
            self.rest = r;
            Ok(content)
        }

        /// Reads `[n] EXPLICIT <tag>` and returns the inner contents.
        pub(super) fn explicit(
            &mut self,
            n: u8,
            tag: u8,
            what: &'static str,
        ) -> Result<&'a [u8], Bad> {
            let outer = self.read(ctx(n), what)?;
            let mut r = Reader::new(outer);
            let inner = r.read(tag, what)?;
            r.finish(what)?;
            Ok(inner)
        }

        /// Like [`Reader::explicit`] when the next tag is `[n]`, else `None`.
        pub(super) fn optional(
            &mut self,
            n: u8,
            tag: u8,
            what: &'static str,
        ) -> Result<Option<&'a [u8]>, Bad> {
            if self.peek_tag() == Some(ctx(n)) {
                self.explicit(n, tag, what).map(Some)
            } else {
                Ok(None)
            }
        }

        /// Fails unless every byte was consumed.
        pub(super) fn finish(&self, what: &'static str) -> Result<(), Bad> {
            if self.rest.is_empty() {
                Ok(())
            } else {
                Err(Bad(what))
            }
        }

        pub(super) fn is_empty(&self) -> bool {
            self.rest.is_empty()
        }
    }

    /// Decodes minimal two's-complement INTEGER contents of at most 8 bytes.
    pub(super) fn integer(c: &[u8], what: &'static str) -> Result<i64, Bad> {
        let (&first, tail) = c.split_first().ok_or(Bad(what))?;
        if c.len() > 8 {
            return Err(Bad(what));
        }
        if let Some(&second) = tail.first() {
            let redundant =
                (first == 0x00 && second & 0x80 == 0) || (first == 0xff && second & 0x80 != 0);
            if redundant {
                return Err(Bad(what));
            }
        }
        let init: i64 = if first & 0x80 != 0 { -1 } else { 0 };
        Ok(c.iter().fold(init, |a, &b| (a << 8) | i64::from(b)))
    }

    /// Decodes an INTEGER that must fit `T` (i32, u32).
    pub(super) fn int_in<T: TryFrom<i64>>(c: &[u8], what: &'static str) -> Result<T, Bad> {
        T::try_from(integer(c, what)?).map_err(|_| Bad(what))
    }

    /// Minimal two's-complement contents of `v`.
    pub(super) fn integer_bytes(v: i64) -> Vec<u8> {
        let b = v.to_be_bytes();
        let mut start = 0;
        while start < 7 {
            let (x, y) = (b[start], b[start + 1]);
            if (x == 0x00 && y & 0x80 == 0) || (x == 0xff && y & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        b[start..].to_vec()
    }

    /// Appends one element. Buffers are `Zeroizing` because keysets hold keys.
    pub(super) fn put(out: &mut Zeroizing<Vec<u8>>, tag: u8, content: &[u8]) {
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            let used = &bytes[skip..];
            out.push(0x80 | used.len() as u8);
            out.extend_from_slice(used);
        }
        out.extend_from_slice(content);
    }

    /// Appends `[n] EXPLICIT <tag> content`.
    pub(super) fn put_explicit(out: &mut Zeroizing<Vec<u8>>, n: u8, tag: u8, content: &[u8]) {
        let mut inner = Zeroizing::new(Vec::with_capacity(content.len() + 4));
        put(&mut inner, tag, content);
        put(out, ctx(n), &inner);
    }

    /// Appends `[n] EXPLICIT INTEGER v`.
    pub(super) fn put_int(out: &mut Zeroizing<Vec<u8>>, n: u8, v: i64) {
        put_explicit(out, n, INTEGER, &integer_bytes(v));
    }
}

use der::{Bad, Reader};

/// `Salt ::= SEQUENCE { type[0] INTEGER (0..4294967295), salt[1] OCTET STRING,
/// opaque[2] OCTET STRING OPTIONAL }` (`lib/hdb/hdb.asn1`). Not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salt {
    /// Salt type: 3 is `hdb-pw-salt` / `KRB5_PW_SALT`, the only one Apple writes.
    pub salt_type: u32,
    /// The salt bytes (for a pw-salt: realm followed by the name components).
    pub salt: Vec<u8>,
    /// Enctype-specific string-to-key parameters (for AES, a 4-byte iteration
    /// count); Apple leaves it out.
    pub opaque: Option<Vec<u8>>,
}

/// `EncryptionKey ::= SEQUENCE { keytype[0] krb5int32, keyvalue[1] OCTET STRING }`
/// (`lib/asn1/krb5.asn1`). The key bytes are wiped on drop and never shown by
/// `Debug`.
#[derive(Clone)]
pub struct EncryptionKey {
    /// The enctype number (16, 17, 18 for the types this module derives).
    pub keytype: i32,
    value: Zeroizing<Vec<u8>>,
}

impl EncryptionKey {
    /// A key of type `keytype` with the given bytes.
    pub fn new(keytype: i32, value: Zeroizing<Vec<u8>>) -> Self {
        EncryptionKey { keytype, value }
    }

    /// The key bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("keytype", &self.keytype)
            .field("len", &self.value.len())
            .finish_non_exhaustive()
    }
}

/// `Key ::= SEQUENCE { mkvno[0] INTEGER OPTIONAL, key[1] EncryptionKey,
/// salt[2] Salt OPTIONAL }` (`lib/hdb/hdb.asn1`). `mkvno` is present when the key
/// is sealed (encrypted) with the KDC's master key.
#[derive(Debug, Clone)]
pub struct Key {
    /// Master-key version number, if the key is sealed.
    pub mkvno: Option<i32>,
    /// The (unsealed, if `mkvno` is `None`) key.
    pub key: EncryptionKey,
    /// The salt the key was derived with.
    pub salt: Option<Salt>,
}

/// `Principal ::= SEQUENCE { name[0] PrincipalName, realm[1] Realm }` with
/// `PrincipalName ::= SEQUENCE { name-type[0] NAME-TYPE, name-string[1] SEQUENCE OF
/// GeneralString }` and `Realm ::= GeneralString` (`lib/asn1/krb5.asn1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name type (1 = `KRB5_NT_PRINCIPAL`).
    pub name_type: i32,
    /// The name components, as stored (GeneralString bytes).
    pub components: Vec<Vec<u8>>,
    /// The realm, as stored.
    pub realm: Vec<u8>,
}

/// One `KerberosKeys` value: `hdb_keyset_aapl ::= SEQUENCE { kvno[1] INTEGER,
/// keys[0] Keys, principal[2] Principal OPTIONAL }` with `Keys ::= SEQUENCE OF Key`
/// (`lib/hdb/hdb.asn1`; "notice the interesting order of the tags").
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Key version number.
    pub kvno: i32,
    /// The keys, in stored order.
    pub keys: Vec<Key>,
    /// The principal these keys are for; absent when they belong to the record's
    /// default principal (Heimdal stores it only when `HeimODSetKeys` was given
    /// one explicitly).
    pub principal: Option<Principal>,
}

impl From<Bad> for KerberosError {
    fn from(b: Bad) -> Self {
        KerberosError::Der(b.0)
    }
}

fn parse_salt(c: &[u8]) -> Result<Salt, Bad> {
    let mut r = Reader::new(c);
    let salt_type = der::int_in(r.explicit(0, der::INTEGER, "Salt.type")?, "Salt.type")?;
    let salt = r.explicit(1, der::OCTET_STRING, "Salt.salt")?.to_vec();
    let opaque = r
        .optional(2, der::OCTET_STRING, "Salt.opaque")?
        .map(<[u8]>::to_vec);
    r.finish("Salt")?;
    Ok(Salt {
        salt_type,
        salt,
        opaque,
    })
}

fn parse_encryption_key(c: &[u8]) -> Result<EncryptionKey, Bad> {
    let mut r = Reader::new(c);
    let keytype = der::int_in(
        r.explicit(0, der::INTEGER, "EncryptionKey.keytype")?,
        "EncryptionKey.keytype",
    )?;
    let value = Zeroizing::new(
        r.explicit(1, der::OCTET_STRING, "EncryptionKey.keyvalue")?
            .to_vec(),
    );
    r.finish("EncryptionKey")?;
    Ok(EncryptionKey { keytype, value })
}

fn parse_key(c: &[u8]) -> Result<Key, Bad> {
    let mut r = Reader::new(c);
    let mkvno = match r.optional(0, der::INTEGER, "Key.mkvno")? {
        Some(v) => Some(der::int_in(v, "Key.mkvno")?),
        None => None,
    };
    let key = parse_encryption_key(r.explicit(1, der::SEQUENCE, "Key.key")?)?;
    let salt = match r.optional(2, der::SEQUENCE, "Key.salt")? {
        Some(s) => Some(parse_salt(s)?),
        None => None,
    };
    r.finish("Key")?;
    Ok(Key { mkvno, key, salt })
}

fn parse_principal(c: &[u8]) -> Result<Principal, Bad> {
    let mut r = Reader::new(c);
    let name = r.explicit(0, der::SEQUENCE, "Principal.name")?;
    let realm = r
        .explicit(1, der::GENERAL_STRING, "Principal.realm")?
        .to_vec();
    r.finish("Principal")?;

    let mut n = Reader::new(name);
    let name_type = der::int_in(
        n.explicit(0, der::INTEGER, "PrincipalName.name-type")?,
        "PrincipalName.name-type",
    )?;
    let strings = n.explicit(1, der::SEQUENCE, "PrincipalName.name-string")?;
    n.finish("PrincipalName")?;
    let mut s = Reader::new(strings);
    let mut components = Vec::new();
    while !s.is_empty() {
        if components.len() == MAX_COMPONENTS {
            return Err(Bad("PrincipalName.name-string (too many components)"));
        }
        components.push(
            s.read(der::GENERAL_STRING, "PrincipalName.name-string")?
                .to_vec(),
        );
    }
    Ok(Principal {
        name_type,
        components,
        realm,
    })
}

impl KeySet {
    /// Parses one `KerberosKeys` value (DER `hdb_keyset_aapl`). Only the DER is
    /// checked here; whether fvsync understands the keys is [`check`]'s and
    /// [`regenerate`]'s business.
    ///
    /// # Errors
    /// [`KerberosError::TooLarge`] above [`MAX_VALUE_LEN`]; [`KerberosError::Der`]
    /// naming the element for anything that is not canonical DER of the schema
    /// (trailing bytes, non-minimal lengths or integers, an integer out of its
    /// range, missing fields, more than [`MAX_KEYS`] keys).
    pub fn from_der(bytes: &[u8]) -> Result<Self, KerberosError> {
        if bytes.len() > MAX_VALUE_LEN {
            return Err(KerberosError::TooLarge(bytes.len()));
        }
        let mut outer = Reader::new(bytes);
        let body = outer.read(der::SEQUENCE, "hdb_keyset_aapl")?;
        outer.finish("hdb_keyset_aapl (trailing bytes)")?;
        let mut r = Reader::new(body);
        let kvno = der::int_in(
            r.explicit(1, der::INTEGER, "hdb_keyset_aapl.kvno")?,
            "hdb_keyset_aapl.kvno",
        )?;
        let keys_der = r.explicit(0, der::SEQUENCE, "hdb_keyset_aapl.keys")?;
        let principal = match r.optional(2, der::SEQUENCE, "hdb_keyset_aapl.principal")? {
            Some(p) => Some(parse_principal(p)?),
            None => None,
        };
        r.finish("hdb_keyset_aapl")?;
        let mut k = Reader::new(keys_der);
        let mut keys = Vec::new();
        while !k.is_empty() {
            if keys.len() == MAX_KEYS {
                return Err(KerberosError::Der("Keys (too many keys)"));
            }
            keys.push(parse_key(k.read(der::SEQUENCE, "Key")?)?);
        }
        Ok(KeySet {
            kvno,
            keys,
            principal,
        })
    }

    /// The DER of this keyset, as Heimdal's `encode_hdb_keyset_aapl` writes it.
    /// The returned bytes hold the keys; the intermediate buffers are wiped.
    pub fn to_der(&self) -> Vec<u8> {
        let mut keys = Zeroizing::new(Vec::new());
        for key in &self.keys {
            let mut k = Zeroizing::new(Vec::new());
            if let Some(m) = key.mkvno {
                der::put_int(&mut k, 0, i64::from(m));
            }
            let mut ek = Zeroizing::new(Vec::new());
            der::put_int(&mut ek, 0, i64::from(key.key.keytype));
            der::put_explicit(&mut ek, 1, der::OCTET_STRING, key.key.value());
            der::put_explicit(&mut k, 1, der::SEQUENCE, &ek);
            if let Some(s) = &key.salt {
                let mut sb = Zeroizing::new(Vec::new());
                der::put_int(&mut sb, 0, i64::from(s.salt_type));
                der::put_explicit(&mut sb, 1, der::OCTET_STRING, &s.salt);
                if let Some(o) = &s.opaque {
                    der::put_explicit(&mut sb, 2, der::OCTET_STRING, o);
                }
                der::put_explicit(&mut k, 2, der::SEQUENCE, &sb);
            }
            der::put(&mut keys, der::SEQUENCE, &k);
        }
        let mut body = Zeroizing::new(Vec::new());
        der::put_int(&mut body, 1, i64::from(self.kvno));
        der::put_explicit(&mut body, 0, der::SEQUENCE, &keys);
        if let Some(p) = &self.principal {
            let mut strings = Zeroizing::new(Vec::new());
            for c in &p.components {
                der::put(&mut strings, der::GENERAL_STRING, c);
            }
            let mut name = Zeroizing::new(Vec::new());
            der::put_int(&mut name, 0, i64::from(p.name_type));
            der::put_explicit(&mut name, 1, der::SEQUENCE, &strings);
            let mut pb = Zeroizing::new(Vec::new());
            der::put_explicit(&mut pb, 0, der::SEQUENCE, &name);
            der::put_explicit(&mut pb, 1, der::GENERAL_STRING, &p.realm);
            der::put_explicit(&mut body, 2, der::SEQUENCE, &pb);
        }
        let mut out = Zeroizing::new(Vec::new());
        der::put(&mut out, der::SEQUENCE, &body);
        out.to_vec()
    }
}

// ---------------------------------------------------------------------------
// The layout fvsync understands, the LKDC identity, check and regenerate.
// ---------------------------------------------------------------------------

/// `KRB5_PW_SALT` / `hdb-pw-salt`: the salt is the realm followed by the name
/// components (Heimdal `lib/krb5/salt.c` `krb5_get_pw_salt`).
pub const PW_SALT: u32 = 3;

/// Prefix of every LKDC realm (`lib/akadmin/admin.c` `realmOfIdentity`:
/// `LKDC:SHA1.` and the upper-case hex SHA-1 of the KDC's certificate).
pub const LKDC_REALM_PREFIX: &str = "LKDC:SHA1.";

/// Characters Heimdal's `krb5_unparse_name` quotes (`lib/krb5/principal.c`
/// `quotable_chars`); a name holding one of them, or NUL, is refused because its
/// unparsed form (used by the SRP verifier) would differ from the name.
const QUOTED_CHARS: &[char] = &[' ', '\n', '\t', '\u{8}', '\\', '/', '@', '\0'];

/// Checks one keyset against the layout Apple writes and fvsync can reproduce.
fn check_layout(set: &KeySet) -> Result<(), KerberosError> {
    if set.kvno < 0 {
        return Err(KerberosError::KvnoOutOfRange(set.kvno));
    }
    if set.keys.is_empty() {
        return Err(KerberosError::NoKeys);
    }
    for key in &set.keys {
        if let Some(mkvno) = key.mkvno {
            return Err(KerberosError::SealedKey(mkvno));
        }
        let enctype = Enctype::from_number(key.key.keytype)
            .ok_or(KerberosError::UnsupportedEnctype(key.key.keytype))?;
        if key.key.value().len() != enctype.key_len() {
            return Err(KerberosError::KeyLength {
                enctype: enctype.number(),
                len: key.key.value().len(),
            });
        }
        let salt = key.salt.as_ref().ok_or(KerberosError::SaltMissing)?;
        if salt.salt_type != PW_SALT {
            return Err(KerberosError::SaltType(salt.salt_type));
        }
        if salt.opaque.is_some() {
            return Err(KerberosError::SaltOpaque);
        }
    }
    Ok(())
}

/// Parses every value and checks its layout: all or nothing.
fn parse_values<V: AsRef<[u8]>>(values: &[V]) -> Result<Vec<KeySet>, KerberosError> {
    if values.is_empty() {
        return Err(KerberosError::NoKeys);
    }
    if values.len() > MAX_VALUES {
        return Err(KerberosError::TooManyValues(values.len()));
    }
    let mut sets = Vec::with_capacity(values.len());
    for v in values {
        let set = KeySet::from_der(v.as_ref())?;
        check_layout(&set)?;
        sets.push(set);
    }
    Ok(sets)
}

/// The local user's LKDC principal `name@LKDC:SHA1.<40 upper-case hex>`. Only
/// [`lkdc_principal`] makes one, so its name and realm are always checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LkdcPrincipal {
    name: String,
    realm: String,
}

impl LkdcPrincipal {
    /// The single name component (the record's short name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The realm, `LKDC:SHA1.` followed by 40 upper-case hex digits.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The pw-salt of this principal: realm followed by name.
    pub fn salt(&self) -> Vec<u8> {
        let mut s = self.realm.as_bytes().to_vec();
        s.extend_from_slice(self.name.as_bytes());
        s
    }
}

impl std::fmt::Display for LkdcPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.realm)
    }
}

fn is_lkdc_realm(realm: &str) -> bool {
    realm.strip_prefix(LKDC_REALM_PREFIX).is_some_and(|hex| {
        hex.len() == 40
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    })
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(QUOTED_CHARS)
}

/// Reads `;Kerberosv5;<empty>;<name>@<realm>;<realm>[;...]`. `Ok(None)` when the
/// string is another kind of authority.
fn parse_kerberos_authority(a: &str) -> Result<Option<(String, String)>, KerberosError> {
    let Some(rest) = a.strip_prefix(";Kerberosv5;") else {
        return Ok(None);
    };
    let mut fields = rest.split(';');
    let (_version, principal, realm) = match (fields.next(), fields.next(), fields.next()) {
        (Some(v), Some(p), Some(r)) => (v, p, r),
        _ => return Err(KerberosError::BadAuthority),
    };
    let (name, p_realm) = principal
        .rsplit_once('@')
        .ok_or(KerberosError::BadAuthority)?;
    if p_realm != realm {
        return Err(KerberosError::BadAuthority);
    }
    Ok(Some((name.to_string(), realm.to_string())))
}

/// Finds the record's LKDC principal from its `authentication_authority` strings
/// and the existing `KerberosKeys` values, and checks that they all agree:
///
/// * every `;Kerberosv5;;name@realm;realm;` authority names the same principal;
/// * every key's pw-salt is exactly `realm ‖ name`;
/// * a principal stored inside a keyset is `name@realm` (one component, type 1).
///
/// Without a Kerberos authority the principal is read from the salts (the realm is
/// the first 50 bytes, the name the rest). `values` may be empty.
///
/// # Errors
/// [`KerberosError::RealmAbsent`] when neither source names a realm;
/// [`KerberosError::RealmNotLkdc`] when it is not `LKDC:SHA1.` and 40 upper-case
/// hex digits; [`KerberosError::UnsupportedName`] for an empty name or one Heimdal
/// would quote; [`KerberosError::BadAuthority`], [`KerberosError::AuthorityMismatch`],
/// [`KerberosError::PrincipalMismatch`], [`KerberosError::PrincipalNameType`] for
/// sources that disagree; any layout error of [`check`] for the values. The caller
/// then leaves the keys as they are.
pub fn lkdc_principal<S: AsRef<str>, V: AsRef<[u8]>>(
    authorities: &[S],
    values: &[V],
) -> Result<LkdcPrincipal, KerberosError> {
    let mut from_authority: Option<(String, String)> = None;
    for a in authorities {
        if let Some(p) = parse_kerberos_authority(a.as_ref())? {
            match &from_authority {
                Some(q) if *q != p => return Err(KerberosError::AuthorityMismatch),
                _ => from_authority = Some(p),
            }
        }
    }
    let sets = if values.is_empty() {
        Vec::new()
    } else {
        parse_values(values)?
    };
    let (name, realm) = match from_authority {
        Some(p) => p,
        None => {
            let salt = sets
                .iter()
                .flat_map(|s| s.keys.iter())
                .find_map(|k| k.salt.as_ref())
                .ok_or(KerberosError::RealmAbsent)?;
            let text = std::str::from_utf8(&salt.salt).map_err(|_| KerberosError::RealmNotLkdc)?;
            let split = LKDC_REALM_PREFIX.len() + 40;
            match (text.get(..split), text.get(split..)) {
                (Some(r), Some(n)) => (n.to_string(), r.to_string()),
                _ => return Err(KerberosError::RealmNotLkdc),
            }
        }
    };
    if !is_lkdc_realm(&realm) {
        return Err(KerberosError::RealmNotLkdc);
    }
    if !is_plain_name(&name) {
        return Err(KerberosError::UnsupportedName);
    }
    let principal = LkdcPrincipal { name, realm };
    let salt = principal.salt();
    for set in &sets {
        for key in &set.keys {
            if key.salt.as_ref().map(|s| &s.salt[..]) != Some(&salt[..]) {
                return Err(KerberosError::PrincipalMismatch);
            }
        }
        if let Some(p) = &set.principal {
            if p.name_type != 1 {
                return Err(KerberosError::PrincipalNameType(p.name_type));
            }
            if p.components != [principal.name.as_bytes()] || p.realm != principal.realm.as_bytes()
            {
                return Err(KerberosError::PrincipalMismatch);
            }
        }
    }
    Ok(principal)
}

/// Result of checking a password against stored keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KerberosCheck {
    /// Keys (or SRP verifiers) compared.
    pub keys: usize,
    /// How many of them the password reproduces.
    pub matching: usize,
}

impl KerberosCheck {
    /// Every stored key matches the password.
    pub fn is_match(&self) -> bool {
        self.keys > 0 && self.matching == self.keys
    }

    /// Some keys match and some do not (keys from two passwords: a partial write).
    pub fn is_partial(&self) -> bool {
        self.matching > 0 && self.matching < self.keys
    }
}

/// Does `password` produce the stored keys? Each key of each value is derived
/// again with its own enctype and stored salt and compared in constant time.
///
/// # Errors
/// [`KerberosError::PasswordNul`]; any DER or layout error (see
/// [`lkdc_principal`] and the variants of [`KerberosError`]): the keys are then
/// not understood and cannot be checked.
pub fn check<V: AsRef<[u8]>>(
    values: &[V],
    password: &[u8],
) -> Result<KerberosCheck, KerberosError> {
    if password.contains(&0) {
        return Err(KerberosError::PasswordNul);
    }
    let sets = parse_values(values)?;
    let mut result = KerberosCheck {
        keys: 0,
        matching: 0,
    };
    for set in &sets {
        for key in &set.keys {
            let (enctype, salt) = understood(key)?;
            let derived = string_to_key(enctype, password, salt)?;
            result.keys += 1;
            if bool::from(derived.as_slice().ct_eq(key.key.value())) {
                result.matching += 1;
            }
        }
    }
    Ok(result)
}

/// The enctype and salt of a key that passed [`check_layout`].
fn understood(key: &Key) -> Result<(Enctype, &[u8]), KerberosError> {
    let enctype = Enctype::from_number(key.key.keytype)
        .ok_or(KerberosError::UnsupportedEnctype(key.key.keytype))?;
    let salt = key.salt.as_ref().ok_or(KerberosError::SaltMissing)?;
    Ok((enctype, &salt.salt))
}

/// New `KerberosKeys` values for `password`: one per stored value, each with the
/// same enctypes in the same order, the same salts and the same principal, and its
/// kvno raised by one. All values or an error, never some of them.
///
/// Heimdal (`HeimODSetKeys`) replaces the attribute with one keyset whose kvno is
/// the highest matching one plus one; the KDC uses the highest-kvno keyset
/// (`lib/hdb/hdb-od.c` `od2hdb_keys`). Raising every value by one keeps that choice
/// and leaves no key of the old password behind. For the single value Apple writes
/// the two are the same.
///
/// # Errors
/// As [`check`], plus [`KerberosError::KvnoOutOfRange`] when a kvno is already
/// `i32::MAX`.
pub fn regenerate<V: AsRef<[u8]>>(
    values: &[V],
    password: &[u8],
) -> Result<Vec<Vec<u8>>, KerberosError> {
    if password.contains(&0) {
        return Err(KerberosError::PasswordNul);
    }
    let sets = parse_values(values)?;
    let mut out = Vec::with_capacity(sets.len());
    for set in &sets {
        let kvno = set
            .kvno
            .checked_add(1)
            .ok_or(KerberosError::KvnoOutOfRange(set.kvno))?;
        let mut keys = Vec::with_capacity(set.keys.len());
        for key in &set.keys {
            let (enctype, salt) = understood(key)?;
            keys.push(Key {
                mkvno: None,
                key: EncryptionKey::new(enctype.number(), string_to_key(enctype, password, salt)?),
                salt: key.salt.clone(),
            });
        }
        let new = KeySet {
            kvno,
            keys,
            principal: set.principal.clone(),
        };
        out.push(new.to_der());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// HeimdalSRPKey.
// ---------------------------------------------------------------------------

/// `KRB5_SRP_GROUP_RFC5054_4096_PBKDF2_SHA512` (`lib/asn1/krb5.asn1`
/// `KRB5-SRP-GROUP`), the only group Heimdal knows (`lib/krb5/init_creds_pw.c`
/// `srpgroups`: `ccsrp_gp_rfc5054_4096`, `ccsha512_di`).
pub const SRP_GROUP_RFC5054_4096_PBKDF2_SHA512: i32 = 1;

/// Length of a new SRP salt (`lib/hdb/keys.c` `hdb_set_srp_verifier`:
/// `krb5_data_alloc(&srp->param.salt, 16)` filled with random bytes).
pub const SRP_SALT_LEN: usize = 16;

/// Iteration count Heimdal uses when none is given (`hdb_set_srp_verifier`:
/// `if (iterations == 0) iterations = 4000`; `HeimODCreateSRPKeys` passes 0).
pub const SRP_DEFAULT_ITERATIONS: u32 = 4000;

/// Largest SRP salt accepted from disk.
const SRP_MAX_SALT_LEN: usize = 1024;

/// One `HeimdalSRPKey` value: `hdb-srp ::= SEQUENCE { verifier[0] OCTET STRING,
/// param[1] KRB5-SRP-PA }` (`lib/hdb/hdb.asn1`) with `KRB5-SRP-PA ::= SEQUENCE {
/// group[0] KRB5-SRP-GROUP, salt[1] OCTET STRING, iterations[2] krb5uint32 }`
/// (`lib/asn1/krb5.asn1`). `Debug` does not show the verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct SrpKey {
    /// SRP group number (1 is the only one defined).
    pub group: i32,
    /// PBKDF2 salt, also the SRP salt.
    pub salt: Vec<u8>,
    /// PBKDF2-HMAC-SHA512 iteration count.
    pub iterations: u32,
    /// `v = 5^x mod N`, 512 bytes big-endian.
    pub verifier: Vec<u8>,
}

impl std::fmt::Debug for SrpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrpKey")
            .field("group", &self.group)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .field("verifier_len", &self.verifier.len())
            .finish()
    }
}

impl SrpKey {
    /// Parses one `HeimdalSRPKey` value (DER `hdb-srp`).
    ///
    /// # Errors
    /// [`KerberosError::TooLarge`], or [`KerberosError::Der`] naming the element.
    pub fn from_der(bytes: &[u8]) -> Result<Self, KerberosError> {
        if bytes.len() > MAX_VALUE_LEN {
            return Err(KerberosError::TooLarge(bytes.len()));
        }
        let mut outer = Reader::new(bytes);
        let body = outer.read(der::SEQUENCE, "hdb-srp")?;
        outer.finish("hdb-srp (trailing bytes)")?;
        let mut r = Reader::new(body);
        let verifier = r
            .explicit(0, der::OCTET_STRING, "hdb-srp.verifier")?
            .to_vec();
        let param = r.explicit(1, der::SEQUENCE, "hdb-srp.param")?;
        r.finish("hdb-srp")?;
        let mut p = Reader::new(param);
        let group = der::int_in(
            p.explicit(0, der::INTEGER, "KRB5-SRP-PA.group")?,
            "KRB5-SRP-PA.group",
        )?;
        let salt = p
            .explicit(1, der::OCTET_STRING, "KRB5-SRP-PA.salt")?
            .to_vec();
        let iterations = der::int_in(
            p.explicit(2, der::INTEGER, "KRB5-SRP-PA.iterations")?,
            "KRB5-SRP-PA.iterations",
        )?;
        p.finish("KRB5-SRP-PA")?;
        Ok(SrpKey {
            group,
            salt,
            iterations,
            verifier,
        })
    }

    /// The DER of this value, as Heimdal's `encode_hdb_srp` writes it.
    pub fn to_der(&self) -> Vec<u8> {
        let mut param = Zeroizing::new(Vec::new());
        der::put_int(&mut param, 0, i64::from(self.group));
        der::put_explicit(&mut param, 1, der::OCTET_STRING, &self.salt);
        der::put_int(&mut param, 2, i64::from(self.iterations));
        let mut body = Zeroizing::new(Vec::new());
        der::put_explicit(&mut body, 0, der::OCTET_STRING, &self.verifier);
        der::put_explicit(&mut body, 1, der::SEQUENCE, &param);
        let mut out = Zeroizing::new(Vec::new());
        der::put(&mut out, der::SEQUENCE, &body);
        out.to_vec()
    }

    /// Checks the parameters against what Heimdal writes and fvsync can derive.
    fn check_layout(&self) -> Result<(), KerberosError> {
        if self.group != SRP_GROUP_RFC5054_4096_PBKDF2_SHA512 {
            return Err(KerberosError::SrpGroup(self.group));
        }
        if self.salt.is_empty() || self.salt.len() > SRP_MAX_SALT_LEN {
            return Err(KerberosError::SrpSaltLength(self.salt.len()));
        }
        crypto::check_iterations(u64::from(self.iterations))
            .map_err(|_| KerberosError::SrpIterations(self.iterations))?;
        if self.verifier.len() != crypto::SRP_N_4096_LEN {
            return Err(KerberosError::SrpVerifierLength(self.verifier.len()));
        }
        Ok(())
    }
}

/// The verifier Heimdal's `_krb5_srp_create_pa` computes:
/// `P = PBKDF2-HMAC-SHA512(password, salt, iterations, 64)` (the digest's output
/// size, `_krb5_srp_keysize`), then corecrypto `ccsrp_generate_verifier` with the
/// principal unparsed without its realm as the username (`ccsrp_ctx_init` leaves
/// `noUsernameInX` clear): `x = SHA512(salt ‖ SHA512(name ‖ ":" ‖ P))`,
/// `v = 5^x mod N4096`, 512 bytes big-endian, left-zero-padded.
fn srp_verifier(
    principal: &LkdcPrincipal,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> [u8; crypto::SRP_N_4096_LEN] {
    let mut p = Zeroizing::new([0u8; 64]);
    crypto::pbkdf2_sha512(password, salt, iterations, &mut p[..]);
    let x = Zeroizing::new(crypto::srp_x_sha512(
        salt,
        principal.name().as_bytes(),
        &p[..],
    ));
    crypto::srp_verifier_4096(&x[..])
}

fn parse_srp_values<V: AsRef<[u8]>>(values: &[V]) -> Result<Vec<SrpKey>, KerberosError> {
    if values.is_empty() {
        return Err(KerberosError::NoKeys);
    }
    if values.len() > MAX_VALUES {
        return Err(KerberosError::TooManyValues(values.len()));
    }
    let mut keys = Vec::with_capacity(values.len());
    for v in values {
        let k = SrpKey::from_der(v.as_ref())?;
        k.check_layout()?;
        keys.push(k);
    }
    Ok(keys)
}

/// Does `password` produce the stored `HeimdalSRPKey` verifiers of `principal`
/// (from [`lkdc_principal`])? Compared in constant time.
///
/// # Errors
/// [`KerberosError::PasswordNul`]; DER errors; [`KerberosError::SrpGroup`],
/// [`KerberosError::SrpSaltLength`], [`KerberosError::SrpIterations`],
/// [`KerberosError::SrpVerifierLength`] for parameters not understood.
pub fn srp_check<V: AsRef<[u8]>>(
    values: &[V],
    principal: &LkdcPrincipal,
    password: &[u8],
) -> Result<KerberosCheck, KerberosError> {
    if password.contains(&0) {
        return Err(KerberosError::PasswordNul);
    }
    let keys = parse_srp_values(values)?;
    let mut result = KerberosCheck {
        keys: 0,
        matching: 0,
    };
    for k in &keys {
        let v = Zeroizing::new(srp_verifier(principal, password, &k.salt, k.iterations));
        result.keys += 1;
        if bool::from(v[..].ct_eq(&k.verifier[..])) {
            result.matching += 1;
        }
    }
    Ok(result)
}

/// New `HeimdalSRPKey` values for `password`: one per stored value, same group and
/// iteration count, a fresh random 16-byte salt each (as `hdb_set_srp_verifier`
/// draws one on every password set). All values or an error.
///
/// # Errors
/// As [`srp_check`], plus [`KerberosError::Random`] if the system random generator
/// fails.
pub fn srp_regenerate<V: AsRef<[u8]>>(
    values: &[V],
    principal: &LkdcPrincipal,
    password: &[u8],
) -> Result<Vec<Vec<u8>>, KerberosError> {
    srp_regenerate_with(values, principal, password, || {
        crypto::random_bytes::<SRP_SALT_LEN>().map_err(|_| KerberosError::Random)
    })
}

fn srp_regenerate_with<V: AsRef<[u8]>>(
    values: &[V],
    principal: &LkdcPrincipal,
    password: &[u8],
    mut new_salt: impl FnMut() -> Result<[u8; SRP_SALT_LEN], KerberosError>,
) -> Result<Vec<Vec<u8>>, KerberosError> {
    if password.contains(&0) {
        return Err(KerberosError::PasswordNul);
    }
    let keys = parse_srp_values(values)?;
    let mut out = Vec::with_capacity(keys.len());
    for k in &keys {
        let salt = new_salt()?.to_vec();
        let verifier = srp_verifier(principal, password, &salt, k.iterations).to_vec();
        out.push(
            SrpKey {
                group: k.group,
                salt,
                iterations: k.iterations,
                verifier,
            }
            .to_der(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// Every n-fold vector of RFC 3961 Appendix A.1 (sizes in bits there).
    #[test]
    fn n_fold_rfc3961_a1() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"012345", 64, "be072631276b1955"),
            (b"password", 56, "78a07b6caf85fa"),
            (b"Rough Consensus, and Running Code", 64, "bb6ed30870b7f0e0"),
            (
                b"password",
                168,
                "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e",
            ),
            (
                b"MASSACHVSETTS INSTITVTE OF TECHNOLOGY",
                192,
                "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b",
            ),
            (b"Q", 168, "518a54a215a8452a518a54a215a8452a518a54a215"),
            (b"ba", 168, "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"),
            (b"kerberos", 64, "6b65726265726f73"),
            (b"kerberos", 128, "6b65726265726f737b9b5b2b93132b93"),
            (
                b"kerberos",
                168,
                "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4",
            ),
            (
                b"kerberos",
                256,
                "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4",
            ),
        ];
        for (input, bits, want) in cases {
            assert_eq!(
                hex::encode(&n_fold(input, bits / 8)[..]),
                *want,
                "{bits}-fold({:?})",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(&n_fold(b"", 8)[..], &[0u8; 8]);
        assert!(n_fold(b"abc", 0).is_empty());
    }

    /// RFC 3961 Appendix A.3: DES3 DR and DK for random keys and usages.
    #[test]
    fn des3_dr_dk_rfc3961_a3() {
        let cases = [
            (
                "dce06b1f64c857a11c3db57c51899b2cc1791008ce973b92",
                "0000000155",
                "935079d14490a75c3093c4a6e8c3b049c71e6ee705",
                "925179d04591a79b5d3192c4a7e9c289b049c71f6ee604cd",
            ),
            (
                "5e13d31c70ef765746578531cb51c15bf11ca82c97cee9f2",
                "00000001aa",
                "9f58e5a047d894101c469845d67ae3c5249ed812f2",
                "9e58e5a146d9942a101c469845d67a20e3c4259ed913f207",
            ),
            (
                "98e6fd8a04a4b6859b75a176540b9752bad3ecd610a252bc",
                "0000000155",
                "12fff90c773f956d13fc2ca0d0840349dbd39908eb",
                "13fef80d763e94ec6d13fd2ca1d085070249dad39808eabf",
            ),
            (
                "622aec25a2fe2cad7094680b7c64940280084c1a7cec92b5",
                "00000001aa",
                "f8debf05b097e7dc0603686aca35d91fd9a5516a70",
                "f8dfbf04b097e6d9dc0702686bcb3489d91fd9a4516b703e",
            ),
            (
                "d3f8298ccb166438dcb9b93ee5a7629286a491f838f802fb",
                "6b65726265726f73",
                "2270db565d2a3d64cfbfdc5305d4f778a6de42d9da",
                "2370da575d2a3da864cebfdc5204d56df779a7df43d9da43",
            ),
            (
                "c1081649ada74362e6a1459d01dfd30d67c2234c940704da",
                "0000000155",
                "348056ec98fcc517171d2b4d7a9493af482d999175",
                "348057ec98fdc48016161c2a4c7a943e92ae492c989175f7",
            ),
            (
                "5d154af238f46713155719d55e2f1f790dd661f279a7917c",
                "00000001aa",
                "a8818bc367dadacbe9a6c84627fb60c294b01215e5",
                "a8808ac267dada3dcbe9a7c84626fbc761c294b01315e5c1",
            ),
            (
                "798562e049852f57dc8c343ba17f2ca1d97394efc8adc443",
                "0000000155",
                "c813f88b3be2b2f75424ce9175fbc8483b88c8713a",
                "c813f88a3be3b334f75425ce9175fbe3c8493b89c8703b49",
            ),
            (
                "26dce334b545292f2feab9a8701a89a4b99eb9942cecd016",
                "00000001aa",
                "f58efc6f83f93e55e695fd252cf8fe59f7d5ba37ec",
                "f48ffd6e83f83e7354e694fd252cf83bfe58f7d5ba37ec5d",
            ),
        ];
        for (key, usage, dr, dk) in cases {
            let (key, usage) = (h(key), h(usage));
            let got = derive_random(Enctype::Des3CbcSha1, &key, &usage);
            assert_eq!(hex::encode(&got[..]), dr);
            let got = derive_key(Enctype::Des3CbcSha1, &key, &usage);
            assert_eq!(hex::encode(&got[..]), dk);
        }
    }

    /// RFC 3961 Appendix A.4: DES3 string-to-key. The g-clef password is
    /// U+1D11E (UTF-8 f0 9d 84 9e); the RFC's "U+1011E" is a known erratum (RFC
    /// 3962's vectors give the bytes).
    #[test]
    fn des3_string_to_key_rfc3961_a4() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "password",
                "ATHENA.MIT.EDUraeburn",
                "850bb51358548cd05e86768c313e3bfef7511937dcf72c3e",
            ),
            (
                "potatoe",
                "WHITEHOUSE.GOVdanny",
                "dfcd233dd0a43204ea6dc437fb15e061b02979c1f74f377a",
            ),
            (
                "penny",
                "EXAMPLE.COMbuckaroo",
                "6d2fcdf2d6fbbc3ddcadb5da5710a23489b0d3b69d5d9d4a",
            ),
            (
                "\u{00df}",
                "ATHENA.MIT.EDUJuri\u{0161}i\u{0107}",
                "16d5a40e1ce3bacb61b9dce00470324c831973a7b952feb0",
            ),
            (
                "\u{1d11e}",
                "EXAMPLE.COMpianist",
                "85763726585dbc1cce6ec43e1f751f07f1c4cbb098f40b19",
            ),
        ];
        for (pw, salt, want) in cases {
            let got = string_to_key(Enctype::Des3CbcSha1, pw.as_bytes(), salt.as_bytes()).unwrap();
            assert_eq!(hex::encode(&got[..]), *want, "password {pw:?}");
        }
    }

    /// RFC 3962 Appendix B: PBKDF2 outputs and AES string-to-key for both key sizes.
    #[test]
    fn aes_string_to_key_rfc3962_b() {
        let x64 = "X".repeat(64);
        let x65 = "X".repeat(65);
        // (iterations, password, salt, pbkdf2-256, aes128 key, aes256 key)
        type Case<'a> = (u32, &'a [u8], Vec<u8>, &'a str, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (
                1,
                b"password",
                b"ATHENA.MIT.EDUraeburn".to_vec(),
                "cdedb5281bb2f801565a1122b2563515 0ad1f7a04bb9f3a333ecc0e2e1f70837",
                "42263c6e89f4fc28b8df68ee09799f15",
                "fe697b52bc0d3ce14432ba036a92e65b bb52280990a2fa27883998d72af30161",
            ),
            (
                2,
                b"password",
                b"ATHENA.MIT.EDUraeburn".to_vec(),
                "01dbee7f4a9e243e988b62c73cda935d a05378b93244ec8f48a99e61ad799d86",
                "c651bf29e2300ac27fa469d693bdda13",
                "a2e16d16b36069c135d5e9d2e25f8961 02685618b95914b467c67622225824ff",
            ),
            (
                1200,
                b"password",
                b"ATHENA.MIT.EDUraeburn".to_vec(),
                "5c08eb61fdf71e4e4ec3cf6ba1f5512b a7e52ddbc5e5142f708a31e2e62b1e13",
                "4c01cd46d632d01e6dbe230a01ed642a",
                "55a6ac740ad17b4846941051e1e8b0a7 548d93b0ab30a8bc3ff16280382b8c2a",
            ),
            (
                5,
                b"password",
                h("1234567878563412"),
                "d1daa78615f287e6a1c8b120d7062a49 3f98d203e6be49a6adf4fa574b6e64ee",
                "e9b23d52273747dd5c35cb55be619d8e",
                "97a4e786be20d81a382d5ebc96d5909c abcdadc87ca48f574504159f16c36e31",
            ),
            (
                1200,
                x64.as_bytes(),
                b"pass phrase equals block size".to_vec(),
                "139c30c0966bc32ba55fdbf212530ac9 c5ec59f1a452f5cc9ad940fea0598ed1",
                "59d1bb789a828b1aa54ef9c2883f69ed",
                "89adee3608db8bc71f1bfbfe459486b0 5618b70cbae22092534e56c553ba4b34",
            ),
            (
                1200,
                x65.as_bytes(),
                b"pass phrase exceeds block size".to_vec(),
                "9ccad6d468770cd51b10e6a68721be61 1a8b4d282601db3b36be9246915ec82a",
                "cb8005dc5f90179a7f02104c0018751d",
                "d78c5c9cb872a8c9dad4697f0bb5b2d2 1496c82beb2caeda2112fceea057401b",
            ),
            (
                50,
                &[0xf0, 0x9d, 0x84, 0x9e],
                b"EXAMPLE.COMpianist".to_vec(),
                "6b9cf26d45455a43a5b8bb276a403b39 e7fe37a0c41e02c281ff3069e1e94f52",
                "f149c1f2e154a73452d43e7fe62a56e5",
                "4b6d9839f84406df1f09cc166db4b83c 571848b784a3d6bdc346589a3e393f9e",
            ),
        ];
        for (iters, pw, salt, pbkdf2_out, k128, k256) in cases {
            let mut p = [0u8; 32];
            crypto::pbkdf2_sha1(pw, &salt, iters, &mut p);
            assert_eq!(p.to_vec(), h(pbkdf2_out), "PBKDF2, {iters} iterations");
            let got = string_to_key_iter(Enctype::Aes128CtsHmacSha196, pw, &salt, iters);
            assert_eq!(got.to_vec(), h(k128), "aes128, {iters} iterations");
            let got = string_to_key_iter(Enctype::Aes256CtsHmacSha196, pw, &salt, iters);
            assert_eq!(got.to_vec(), h(k256), "aes256, {iters} iterations");
        }
    }

    fn sample_record() -> plist::Dictionary {
        let path = format!(
            "{}/tests/data/samples/dslocal-user-jeff-10.8-pbkdf2.plist",
            env!("CARGO_MANIFEST_DIR")
        );
        plist::Value::from_file(path)
            .unwrap()
            .into_dictionary()
            .unwrap()
    }

    /// The real `KerberosKeys` values of the 10.8 `jeff` record.
    fn sample_keys() -> Vec<Vec<u8>> {
        sample_record()["KerberosKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_data().unwrap().to_vec())
            .collect()
    }

    fn sample_authorities() -> Vec<String> {
        sample_record()["authentication_authority"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap().to_string())
            .collect()
    }

    /// One line per keyset: kvno, then enctype/salt type/salt per key, then the
    /// principal.
    fn describe(set: &KeySet) -> String {
        let keys: Vec<String> = set
            .keys
            .iter()
            .map(|k| {
                let salt = k.salt.as_ref().map_or("none".to_string(), |s| {
                    format!(
                        "type {} {:?}{}",
                        s.salt_type,
                        String::from_utf8_lossy(&s.salt),
                        if s.opaque.is_some() { " +opaque" } else { "" }
                    )
                });
                format!(
                    "enctype {} ({} bytes{}) salt {salt}",
                    k.key.keytype,
                    k.key.value().len(),
                    k.mkvno.map_or(String::new(), |m| format!(", mkvno {m}"))
                )
            })
            .collect();
        let principal = set.principal.as_ref().map_or("none".to_string(), |p| {
            format!(
                "{:?}@{:?}",
                p.components
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>(),
                String::from_utf8_lossy(&p.realm)
            )
        });
        format!(
            "kvno {}; {}; principal {principal}",
            set.kvno,
            keys.join("; ")
        )
    }

    #[test]
    fn real_record_keysets_parse_and_re_encode_byte_for_byte() {
        let values = sample_keys();
        assert_eq!(values.len(), 1);
        let set = KeySet::from_der(&values[0]).unwrap();
        assert_eq!(set.to_der(), values[0]);
        let salt = "LKDC:SHA1.413A30F590EEDC787D532981850A975245B0A723jeff";
        assert_eq!(
            describe(&set),
            format!(
                "kvno 1; \
                 enctype 18 (32 bytes) salt type 3 {salt:?}; \
                 enctype 17 (16 bytes) salt type 3 {salt:?}; \
                 enctype 16 (24 bytes) salt type 3 {salt:?}; \
                 principal none"
            )
        );
        // Debug never shows key bytes.
        let dbg = format!("{set:?}");
        assert!(!dbg.contains(&format!("{:?}", set.keys[0].key.value())));
        assert!(dbg.contains("len: 32"));
    }

    /// Heimdal-shaped keyset with every optional field present, to cover the
    /// encoder's other branches.
    fn full_keyset() -> KeySet {
        KeySet {
            kvno: 300,
            keys: vec![Key {
                mkvno: Some(-2),
                key: EncryptionKey::new(18, Zeroizing::new(vec![0x5a; 32])),
                salt: Some(Salt {
                    salt_type: u32::MAX,
                    salt: vec![b's'; 200],
                    opaque: Some(vec![0, 0, 0x10, 0]),
                }),
            }],
            principal: Some(Principal {
                name_type: 1,
                components: vec![b"jeff".to_vec(), b"host".to_vec()],
                realm: b"LKDC:SHA1.413A30F590EEDC787D532981850A975245B0A723".to_vec(),
            }),
        }
    }

    #[test]
    fn every_field_round_trips() {
        let set = full_keyset();
        let der = set.to_der();
        let back = KeySet::from_der(&der).unwrap();
        assert_eq!(back.to_der(), der);
        assert_eq!(back.kvno, 300);
        assert_eq!(back.keys[0].mkvno, Some(-2));
        assert_eq!(back.keys[0].salt, set.keys[0].salt);
        assert_eq!(back.principal, set.principal);
        // A keyset with no keys is valid DER (the layout check refuses it later).
        let empty = KeySet {
            kvno: 0,
            keys: vec![],
            principal: None,
        };
        assert_eq!(KeySet::from_der(&empty.to_der()).unwrap().keys.len(), 0);
    }

    #[test]
    fn integers_are_minimal_twos_complement() {
        for (v, want) in [
            (0i64, "00"),
            (1, "01"),
            (127, "7f"),
            (128, "0080"),
            (255, "00ff"),
            (256, "0100"),
            (-1, "ff"),
            (-128, "80"),
            (-129, "ff7f"),
            (i64::from(u32::MAX), "00ffffffff"),
            (i64::from(i32::MIN), "80000000"),
        ] {
            let b = der::integer_bytes(v);
            assert_eq!(hex::encode(&b), want);
            assert_eq!(der::integer(&b, "t"), Ok(v));
        }
        for bad in ["", "0001", "007f", "ff80", "ffff", "000000000000000001"] {
            assert!(der::integer(&h(bad), "t").is_err(), "{bad}");
        }
    }

    #[test]
    fn non_canonical_der_is_refused() {
        let good = sample_keys().remove(0);
        // Long-form length where the short form fits.
        let mut v = vec![0x30, 0x81, 0x03, 0xa1, 0x01, 0x00];
        assert!(KeySet::from_der(&v).is_err());
        // Indefinite length.
        v = vec![0x30, 0x80, 0x00, 0x00];
        assert!(KeySet::from_der(&v).is_err());
        // Trailing byte after the keyset.
        v = good.clone();
        v.push(0);
        assert_eq!(
            KeySet::from_der(&v).err(),
            Some(KerberosError::Der("hdb_keyset_aapl (trailing bytes)"))
        );
        // Non-minimal length bytes (0x82 00 xx).
        v = vec![0x30, 0x82, 0x00, 0x81];
        v.extend(vec![0u8; 0x81]);
        assert!(KeySet::from_der(&v).is_err());
        // kvno tag [0] and keys tag [1] swapped (the standard hdb_keyset order).
        v = good.clone();
        v[4] = 0xa0;
        assert!(KeySet::from_der(&v).is_err());
        // Too large.
        assert_eq!(
            KeySet::from_der(&vec![0u8; MAX_VALUE_LEN + 1]).err(),
            Some(KerberosError::TooLarge(MAX_VALUE_LEN + 1))
        );
    }

    /// Small deterministic generator for the hostile-input tests.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Whatever the bytes, parsing returns (no panic), and whatever parses is
    /// canonical: it re-encodes to exactly the input.
    #[test]
    fn hostile_keysets_never_panic_and_parse_only_canonical_der() {
        let good = sample_keys().remove(0);
        let full = full_keyset().to_der();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0;
        for base in [&good, &full] {
            for cut in 0..base.len() {
                assert!(KeySet::from_der(&base[..cut]).is_err());
            }
            for i in 0..base.len() {
                for x in [0x01u8, 0x80, 0xff, 0x7f, 0x20] {
                    let mut m = base.to_vec();
                    m[i] ^= x;
                    if let Ok(set) = KeySet::from_der(&m) {
                        parsed += 1;
                        assert_eq!(set.to_der(), m);
                    }
                }
            }
        }
        for _ in 0..20_000 {
            let len = (rng.next() % 64) as usize;
            let mut m: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(b) = m.first_mut() {
                *b = 0x30;
            }
            if let Ok(set) = KeySet::from_der(&m) {
                assert_eq!(set.to_der(), m);
            }
        }
        // Mutations of key and salt bytes still parse.
        assert!(parsed > 100, "{parsed}");
    }

    const JEFF_REALM: &str = "LKDC:SHA1.413A30F590EEDC787D532981850A975245B0A723";

    /// A keyset shaped like Apple's (aes256, aes128, des3, pw-salt) for `name` and
    /// `password`, as DER.
    fn apple_keyset(kvno: i32, name: &str, password: &[u8]) -> Vec<u8> {
        let salt = format!("{JEFF_REALM}{name}").into_bytes();
        let keys = [18, 17, 16]
            .into_iter()
            .map(|n| {
                let et = Enctype::from_number(n).unwrap();
                Key {
                    mkvno: None,
                    key: EncryptionKey::new(n, string_to_key(et, password, &salt).unwrap()),
                    salt: Some(Salt {
                        salt_type: PW_SALT,
                        salt: salt.clone(),
                        opaque: None,
                    }),
                }
            })
            .collect();
        KeySet {
            kvno,
            keys,
            principal: None,
        }
        .to_der()
    }

    /// The sample's keyset with one key changed by `f`, as DER.
    fn altered(f: impl Fn(&mut KeySet)) -> Vec<u8> {
        let mut set = KeySet::from_der(&sample_keys()[0]).unwrap();
        f(&mut set);
        set.to_der()
    }

    #[test]
    fn lkdc_principal_of_the_real_record() {
        let (aa, keys) = (sample_authorities(), sample_keys());
        let p = lkdc_principal(&aa, &keys).unwrap();
        assert_eq!(p.name(), "jeff");
        assert_eq!(p.realm(), JEFF_REALM);
        assert_eq!(p.to_string(), format!("jeff@{JEFF_REALM}"));
        assert_eq!(p.salt(), format!("{JEFF_REALM}jeff").into_bytes());
        // From the salts alone, and from the authority alone.
        let none: [&str; 0] = [];
        assert_eq!(lkdc_principal(&none, &keys).unwrap(), p);
        let no_keys: [&[u8]; 0] = [];
        assert_eq!(lkdc_principal(&aa, &no_keys).unwrap(), p);
        // The form with a trailing `;` (docs), and unrelated authorities.
        let aa2 = [
            format!(";Kerberosv5;;jeff@{JEFF_REALM};{JEFF_REALM};"),
            ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>".to_string(),
            ";SecureToken;".to_string(),
        ];
        assert_eq!(lkdc_principal(&aa2, &keys).unwrap(), p);
        // A stored principal that matches.
        let with_principal = altered(|s| {
            s.principal = Some(Principal {
                name_type: 1,
                components: vec![b"jeff".to_vec()],
                realm: JEFF_REALM.as_bytes().to_vec(),
            })
        });
        assert_eq!(lkdc_principal(&aa, &[with_principal]).unwrap(), p);
    }

    #[test]
    fn lkdc_principal_refusals() {
        let keys = sample_keys();
        let aa = |name: &str, realm: &str| vec![format!(";Kerberosv5;;{name}@{realm};{realm}")];
        let cases: Vec<(Vec<String>, Vec<Vec<u8>>, KerberosError)> = vec![
            (vec![], vec![], KerberosError::RealmAbsent),
            (
                vec![";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>".into()],
                vec![],
                KerberosError::RealmAbsent,
            ),
            (
                aa("jeff", "EXAMPLE.COM"),
                vec![],
                KerberosError::RealmNotLkdc,
            ),
            (
                aa(
                    "jeff",
                    &JEFF_REALM.to_lowercase().replace("lkdc:sha1", "LKDC:SHA1"),
                ),
                vec![],
                KerberosError::RealmNotLkdc,
            ),
            (
                aa("jeff", "LKDC:SHA1.413A"),
                vec![],
                KerberosError::RealmNotLkdc,
            ),
            (aa("", JEFF_REALM), vec![], KerberosError::UnsupportedName),
            (
                aa("je ff", JEFF_REALM),
                vec![],
                KerberosError::UnsupportedName,
            ),
            (
                aa("je/ff", JEFF_REALM),
                vec![],
                KerberosError::UnsupportedName,
            ),
            (
                aa("bob", JEFF_REALM),
                keys.clone(),
                KerberosError::PrincipalMismatch,
            ),
            (
                vec![format!(";Kerberosv5;;jeff@{JEFF_REALM};OTHER")],
                vec![],
                KerberosError::BadAuthority,
            ),
            (
                vec![";Kerberosv5;;jeff".into()],
                vec![],
                KerberosError::BadAuthority,
            ),
            (
                vec![
                    aa("jeff", JEFF_REALM).remove(0),
                    aa("bob", JEFF_REALM).remove(0),
                ],
                vec![],
                KerberosError::AuthorityMismatch,
            ),
            (
                vec![],
                vec![altered(|s| {
                    for k in &mut s.keys {
                        k.salt.as_mut().unwrap().salt = b"EXAMPLE.COMjeff".to_vec();
                    }
                })],
                KerberosError::RealmNotLkdc,
            ),
            (
                aa("jeff", JEFF_REALM),
                vec![altered(|s| {
                    s.keys[2].salt.as_mut().unwrap().salt = format!("{JEFF_REALM}bob").into();
                })],
                KerberosError::PrincipalMismatch,
            ),
            (
                aa("jeff", JEFF_REALM),
                vec![altered(|s| {
                    s.principal = Some(Principal {
                        name_type: 3,
                        components: vec![b"jeff".to_vec()],
                        realm: JEFF_REALM.as_bytes().to_vec(),
                    })
                })],
                KerberosError::PrincipalNameType(3),
            ),
            (
                aa("jeff", JEFF_REALM),
                vec![altered(|s| {
                    s.principal = Some(Principal {
                        name_type: 1,
                        components: vec![b"jeff".to_vec(), b"admin".to_vec()],
                        realm: JEFF_REALM.as_bytes().to_vec(),
                    })
                })],
                KerberosError::PrincipalMismatch,
            ),
            (
                aa("jeff", JEFF_REALM),
                vec![altered(|s| s.keys[1].key.keytype = 23)],
                KerberosError::UnsupportedEnctype(23),
            ),
        ];
        for (authorities, values, want) in cases {
            assert_eq!(
                lkdc_principal(&authorities, &values).err(),
                Some(want.clone()),
                "{authorities:?}"
            );
        }
    }

    #[test]
    fn layouts_not_understood_are_refused_by_check_and_regenerate() {
        let cases: Vec<(Vec<u8>, KerberosError)> = vec![
            (
                altered(|s| s.keys[0].key.keytype = 23),
                KerberosError::UnsupportedEnctype(23),
            ),
            (
                altered(|s| s.keys[2].key.keytype = 1),
                KerberosError::UnsupportedEnctype(1),
            ),
            (
                altered(|s| s.keys[1].mkvno = Some(1)),
                KerberosError::SealedKey(1),
            ),
            (
                altered(|s| s.keys[0].salt.as_mut().unwrap().salt_type = 10),
                KerberosError::SaltType(10),
            ),
            (
                altered(|s| s.keys[0].salt.as_mut().unwrap().opaque = Some(vec![0, 0, 0x10, 0])),
                KerberosError::SaltOpaque,
            ),
            (
                altered(|s| s.keys[2].salt = None),
                KerberosError::SaltMissing,
            ),
            (
                altered(|s| s.keys[1].key = EncryptionKey::new(17, Zeroizing::new(vec![0; 32]))),
                KerberosError::KeyLength {
                    enctype: 17,
                    len: 32,
                },
            ),
            (altered(|s| s.kvno = -1), KerberosError::KvnoOutOfRange(-1)),
            (altered(|s| s.keys.clear()), KerberosError::NoKeys),
            (vec![0x30, 0x00], KerberosError::Der("hdb_keyset_aapl.kvno")),
        ];
        for (value, want) in cases {
            // A good value beside the bad one: all or nothing.
            let values = vec![sample_keys().remove(0), value];
            assert_eq!(check(&values, b"pw").err(), Some(want.clone()));
            assert_eq!(regenerate(&values, b"pw").err(), Some(want));
        }
        let none: [&[u8]; 0] = [];
        assert_eq!(check(&none, b"pw").err(), Some(KerberosError::NoKeys));
        assert_eq!(regenerate(&none, b"pw").err(), Some(KerberosError::NoKeys));
        let many = vec![sample_keys().remove(0); MAX_VALUES + 1];
        assert_eq!(
            check(&many, b"pw").err(),
            Some(KerberosError::TooManyValues(MAX_VALUES + 1))
        );
        let top = altered(|s| s.kvno = i32::MAX);
        assert!(check(&[&top], b"pw").is_ok());
        assert_eq!(
            regenerate(&[&top], b"pw").err(),
            Some(KerberosError::KvnoOutOfRange(i32::MAX))
        );
        assert_eq!(
            regenerate(&sample_keys(), b"p\0w").err(),
            Some(KerberosError::PasswordNul)
        );
    }

    #[test]
    fn check_tells_the_password_that_made_the_keys() {
        let values = vec![apple_keyset(4, "jeff", b"correct horse")];
        let c = check(&values, b"correct horse").unwrap();
        assert_eq!(
            c,
            KerberosCheck {
                keys: 3,
                matching: 3
            }
        );
        assert!(c.is_match() && !c.is_partial());
        let c = check(&values, b"correct horsf").unwrap();
        assert_eq!(
            c,
            KerberosCheck {
                keys: 3,
                matching: 0
            }
        );
        assert!(!c.is_match() && !c.is_partial());
        // One key from another password: a partial match.
        let mixed = {
            let mut set = KeySet::from_der(&values[0]).unwrap();
            let other = KeySet::from_der(&apple_keyset(4, "jeff", b"old")).unwrap();
            set.keys[2] = other.keys[2].clone();
            set.to_der()
        };
        let c = check(&[mixed], b"correct horse").unwrap();
        assert_eq!(
            c,
            KerberosCheck {
                keys: 3,
                matching: 2
            }
        );
        assert!(c.is_partial());
        // The real record's password is unknown: this one is not it.
        let c = check(&sample_keys(), b"fvsync: not jeff's password").unwrap();
        assert_eq!(
            c,
            KerberosCheck {
                keys: 3,
                matching: 0
            }
        );
    }

    /// Byte ranges of the key values inside a DER keyset (found by value).
    fn key_ranges(der: &[u8]) -> Vec<std::ops::Range<usize>> {
        let set = KeySet::from_der(der).unwrap();
        set.keys
            .iter()
            .map(|k| {
                let v = k.key.value();
                let at = der.windows(v.len()).position(|w| w == v).unwrap();
                at..at + v.len()
            })
            .collect()
    }

    #[test]
    fn regenerate_keeps_the_real_layout_and_raises_kvno() {
        let old = sample_keys();
        let new = regenerate(&old, b"new password").unwrap();
        assert_eq!(new.len(), 1);
        let (o, n) = (
            KeySet::from_der(&old[0]).unwrap(),
            KeySet::from_der(&new[0]).unwrap(),
        );
        assert_eq!(n.kvno, o.kvno + 1);
        assert_eq!(n.principal, o.principal);
        assert_eq!(n.keys.len(), o.keys.len());
        for (a, b) in o.keys.iter().zip(&n.keys) {
            assert_eq!(a.key.keytype, b.key.keytype);
            assert_eq!(a.salt, b.salt);
            assert_eq!(b.mkvno, None);
            assert_ne!(a.key.value(), b.key.value());
        }
        // Same length; the bytes differ only inside the keys and the kvno.
        assert_eq!(new[0].len(), old[0].len());
        let differ: Vec<usize> = (0..old[0].len())
            .filter(|&i| old[0][i] != new[0][i])
            .collect();
        assert!(differ
            .iter()
            .all(|&i| i == 8 || key_ranges(&old[0]).iter().any(|r| r.contains(&i))));
        assert_eq!(check(&new, b"new password").unwrap().matching, 3);
        assert_eq!(
            lkdc_principal(&sample_authorities(), &new).unwrap().name(),
            "jeff"
        );
        // Exactly the keyset Apple's layout gives for this password, kvno 2.
        assert_eq!(new[0], apple_keyset(2, "jeff", b"new password"));
        // Several values: each keeps its own layout and is raised by one.
        let two = vec![apple_keyset(7, "jeff", b"a"), old[0].clone()];
        let again = regenerate(&two, b"b").unwrap();
        let kvnos: Vec<i32> = again
            .iter()
            .map(|v| KeySet::from_der(v).unwrap().kvno)
            .collect();
        assert_eq!(kvnos, vec![8, 2]);
        // A stored principal is kept.
        let with_principal = altered(|s| {
            s.principal = Some(Principal {
                name_type: 1,
                components: vec![b"jeff".to_vec()],
                realm: JEFF_REALM.as_bytes().to_vec(),
            })
        });
        let r = regenerate(&[&with_principal], b"x").unwrap();
        assert_eq!(
            KeySet::from_der(&r[0]).unwrap().principal,
            KeySet::from_der(&with_principal).unwrap().principal
        );
    }

    #[test]
    fn error_messages_carry_no_record_text() {
        let errors = [
            KerberosError::AuthorityMismatch,
            KerberosError::BadAuthority,
            KerberosError::Der("Key.salt"),
            KerberosError::KeyLength {
                enctype: 17,
                len: 3,
            },
            KerberosError::KvnoOutOfRange(-1),
            KerberosError::NoKeys,
            KerberosError::PasswordNul,
            KerberosError::PrincipalMismatch,
            KerberosError::PrincipalNameType(3),
            KerberosError::RealmAbsent,
            KerberosError::RealmNotLkdc,
            KerberosError::Random,
            KerberosError::SaltMissing,
            KerberosError::SaltOpaque,
            KerberosError::SaltType(10),
            KerberosError::SealedKey(1),
            KerberosError::TooLarge(1 << 20),
            KerberosError::TooManyValues(17),
            KerberosError::UnsupportedName,
            KerberosError::UnsupportedEnctype(23),
        ];
        for e in errors {
            let m = e.to_string();
            assert!(
                !m.is_empty() && !m.contains("jeff") && !m.contains("413A"),
                "{m}"
            );
        }
    }

    fn jeff() -> LkdcPrincipal {
        lkdc_principal(&sample_authorities(), &sample_keys()).unwrap()
    }

    fn srp_value(password: &[u8], salt: [u8; SRP_SALT_LEN]) -> Vec<u8> {
        let template = SrpKey {
            group: SRP_GROUP_RFC5054_4096_PBKDF2_SHA512,
            salt: vec![1; SRP_SALT_LEN],
            iterations: SRP_DEFAULT_ITERATIONS,
            verifier: vec![0; 512],
        }
        .to_der();
        srp_regenerate_with(&[template], &jeff(), password, || Ok(salt))
            .unwrap()
            .remove(0)
    }

    /// The verifier recomputed step by step with the crates directly (no fvsync
    /// helper), following `_krb5_srp_create_pa` and `ccsrp_generate_verifier`.
    #[test]
    fn srp_verifier_follows_heimdal_and_corecrypto_step_by_step() {
        use num_bigint::BigUint;
        use sha2::{Digest, Sha512};
        let salt = h("000102030405060708090a0b0c0d0e0f");
        let mut p = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"correct horse", &salt, 4000, &mut p);
        let inner = Sha512::new()
            .chain_update(b"jeff")
            .chain_update(b":")
            .chain_update(p)
            .finalize();
        let x = Sha512::new()
            .chain_update(&salt)
            .chain_update(inner)
            .finalize();
        let n = BigUint::parse_bytes(crypto::SRP_N_4096_HEX.as_bytes(), 16).unwrap();
        let v = BigUint::from(5u32).modpow(&BigUint::from_bytes_be(&x), &n);
        let mut want = vec![0u8; 512];
        let vb = v.to_bytes_be();
        want[512 - vb.len()..].copy_from_slice(&vb);
        let got = srp_verifier(&jeff(), b"correct horse", &salt, 4000);
        assert_eq!(got.to_vec(), want);
        // Not the ShadowHashData form (no username, 128-byte PBKDF2 output).
        let mut p128 = [0u8; 128];
        crypto::pbkdf2_sha512(b"correct horse", &salt, 4000, &mut p128);
        let x_sh = crypto::srp_x_sha512(&salt, b"", &p128);
        assert_ne!(crypto::srp_verifier_4096(&x_sh).to_vec(), want);
    }

    #[test]
    fn srp_values_round_trip_check_and_regenerate() {
        let salt = [7u8; SRP_SALT_LEN];
        let value = srp_value(b"correct horse", salt);
        // hdb-srp { [0] OCTET STRING (512), [1] { [0] 1, [1] salt(16), [2] 4000 } }
        assert_eq!(hex::encode(&value[..12]), "3082022ba082020404820200");
        assert!(hex::encode(&value).ends_with(&format!(
            "a121301fa003020101a1120410{}a20402020fa0",
            "07".repeat(16)
        )));
        let key = SrpKey::from_der(&value).unwrap();
        assert_eq!(key.to_der(), value);
        assert_eq!((key.group, key.iterations), (1, 4000));
        assert_eq!(key.salt, salt.to_vec());
        assert!(!format!("{key:?}").contains(&format!("{:?}", &key.verifier[..8])));

        let p = jeff();
        let c = srp_check(&[&value], &p, b"correct horse").unwrap();
        assert!(c.is_match());
        assert_eq!(srp_check(&[&value], &p, b"wrong").unwrap().matching, 0);
        // The username is part of x: another principal does not match.
        let bob = lkdc_principal(
            &[format!(";Kerberosv5;;bob@{JEFF_REALM};{JEFF_REALM}")],
            &[] as &[&[u8]],
        )
        .unwrap();
        assert_eq!(
            srp_check(&[&value], &bob, b"correct horse")
                .unwrap()
                .matching,
            0
        );

        // Regenerate: fresh random salt, same group and count, new password.
        let new = srp_regenerate(&[&value], &p, b"battery staple").unwrap();
        let k = SrpKey::from_der(&new[0]).unwrap();
        assert_eq!((k.group, k.iterations, k.salt.len()), (1, 4000, 16));
        assert_ne!(k.salt, key.salt);
        assert!(srp_check(&new, &p, b"battery staple").unwrap().is_match());
        assert_eq!(srp_check(&new, &p, b"correct horse").unwrap().matching, 0);
        let again = srp_regenerate(&[&value], &p, b"battery staple").unwrap();
        assert_ne!(again, new);
        // A stored count is kept.
        let mut slow = key.clone();
        slow.iterations = 5000;
        let r = srp_regenerate(&[slow.to_der()], &p, b"x").unwrap();
        assert_eq!(SrpKey::from_der(&r[0]).unwrap().iterations, 5000);
        // All or nothing.
        assert_eq!(
            srp_regenerate_with(&[&value], &p, b"x", || Err(KerberosError::Random)).err(),
            Some(KerberosError::Random)
        );
        assert_eq!(
            srp_check(&[&value], &p, b"a\0b").err(),
            Some(KerberosError::PasswordNul)
        );
    }

    #[test]
    fn srp_layouts_not_understood_are_refused() {
        let base = SrpKey::from_der(&srp_value(b"pw", [3; SRP_SALT_LEN])).unwrap();
        let with = |f: &dyn Fn(&mut SrpKey)| {
            let mut k = base.clone();
            f(&mut k);
            k.to_der()
        };
        let cases = [
            (with(&|k| k.group = 2), KerberosError::SrpGroup(2)),
            (with(&|k| k.group = 0), KerberosError::SrpGroup(0)),
            (with(&|k| k.salt.clear()), KerberosError::SrpSaltLength(0)),
            (with(&|k| k.iterations = 0), KerberosError::SrpIterations(0)),
            (
                with(&|k| k.iterations = u32::MAX),
                KerberosError::SrpIterations(u32::MAX),
            ),
            (
                with(&|k| {
                    k.verifier.pop();
                }),
                KerberosError::SrpVerifierLength(511),
            ),
            (vec![0x30, 0x00], KerberosError::Der("hdb-srp.verifier")),
        ];
        let p = jeff();
        for (value, want) in cases {
            let values = vec![base.to_der(), value];
            assert_eq!(srp_check(&values, &p, b"pw").err(), Some(want.clone()));
            assert_eq!(srp_regenerate(&values, &p, b"pw").err(), Some(want));
        }
        let none: [&[u8]; 0] = [];
        assert_eq!(
            srp_check(&none, &p, b"pw").err(),
            Some(KerberosError::NoKeys)
        );
    }

    #[test]
    fn hostile_srp_values_never_panic_and_parse_only_canonical_der() {
        let good = srp_value(b"pw", [9; SRP_SALT_LEN]);
        for cut in 0..good.len() {
            assert!(SrpKey::from_der(&good[..cut]).is_err());
        }
        for i in (0..40).chain(good.len() - 40..good.len()) {
            for x in [0x01u8, 0x80, 0xff] {
                let mut m = good.clone();
                m[i] ^= x;
                if let Ok(k) = SrpKey::from_der(&m) {
                    assert_eq!(k.to_der(), m);
                }
            }
        }
        let mut rng = XorShift(42);
        for _ in 0..20_000 {
            let len = (rng.next() % 48) as usize;
            let mut m: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(b) = m.first_mut() {
                *b = 0x30;
            }
            if let Ok(k) = SrpKey::from_der(&m) {
                assert_eq!(k.to_der(), m);
            }
        }
    }

    /// An independent implementation (the `picky-krb` crate's n-fold, DK and
    /// random-to-key) gives the same keys, for the real record's LKDC salt too.
    #[test]
    fn string_to_key_agrees_with_picky_krb() {
        use picky_krb::crypto::aes::{derive_key_from_password as aes_s2k, AesSize};
        use picky_krb::crypto::des::derive_key_from_password as des3_s2k;
        let lkdc = format!("{JEFF_REALM}jeff");
        let long = "p".repeat(200);
        let passwords: [&str; 7] = [
            "password",
            "correct horse battery staple",
            "\u{00df}\u{1d11e}",
            "a",
            &long,
            "Tr0ub4dor&3",
            "\u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30d1}\u{30b9}",
        ];
        let salts: [&str; 4] = [&lkdc, "ATHENA.MIT.EDUraeburn", "EXAMPLE.COMpianist", "X"];
        for pw in passwords {
            for salt in salts {
                let (p, s) = (pw.as_bytes(), salt.as_bytes());
                let ours = string_to_key(Enctype::Aes256CtsHmacSha196, p, s).unwrap();
                assert_eq!(ours.to_vec(), aes_s2k(p, s, &AesSize::Aes256).unwrap());
                let ours = string_to_key(Enctype::Aes128CtsHmacSha196, p, s).unwrap();
                assert_eq!(ours.to_vec(), aes_s2k(p, s, &AesSize::Aes128).unwrap());
                let ours = string_to_key(Enctype::Des3CbcSha1, p, s).unwrap();
                assert_eq!(ours.to_vec(), des3_s2k(p, s).unwrap(), "{pw:?} {salt:?}");
            }
        }
        // And the DK step alone on random-looking keys.
        let mut rng = XorShift(7);
        for _ in 0..50 {
            let k32: Vec<u8> = (0..32).map(|_| rng.next() as u8).collect();
            let k24 = random_to_key(Enctype::Des3CbcSha1, &k32[..21]);
            let c = [rng.next() as u8, 0x99, 0x01, 0x02, 0x55];
            assert_eq!(
                derive_key(Enctype::Aes256CtsHmacSha196, &k32, &c).to_vec(),
                picky_krb::crypto::aes::derive_key(&k32, &c, &AesSize::Aes256).unwrap()
            );
            assert_eq!(
                derive_key(Enctype::Des3CbcSha1, &k24, &c).to_vec(),
                picky_krb::crypto::des::derive_key(&k24, &c).unwrap()
            );
        }
    }

    #[test]
    fn password_with_nul_is_refused() {
        for et in [
            Enctype::Des3CbcSha1,
            Enctype::Aes128CtsHmacSha196,
            Enctype::Aes256CtsHmacSha196,
        ] {
            assert_eq!(
                string_to_key(et, b"pass\0word", b"salt").err(),
                Some(KerberosError::PasswordNul)
            );
        }
    }

    #[test]
    fn enctype_numbers_round_trip() {
        for n in [16, 17, 18] {
            let et = Enctype::from_number(n).unwrap();
            assert_eq!(et.number(), n);
            assert_eq!(n_fold(b"x", et.key_len()).len(), et.key_len());
        }
        for n in [0, 1, 3, 15, 19, 20, 23, -1, i32::MAX] {
            assert_eq!(Enctype::from_number(n), None);
        }
    }

    #[test]
    fn weak_keys_are_corrected() {
        // Each table entry already has odd parity.
        for w in WEAK_DES_KEYS {
            assert!(w.iter().all(|b| b.count_ones() % 2 == 1));
        }
        // A seed of 21 zero bytes spreads to 01 01 .. 01 (weak), corrected to ..f1.
        let k = random_to_key(Enctype::Des3CbcSha1, &[0u8; 21]);
        assert_eq!(hex::encode(&k[..]), "01010101010101f1".repeat(3));
        // The seed's low bits land in bits 1..7 of each group's eighth byte.
        let mut seed = [0u8; 21];
        seed[0] = 0x01; // low bit of byte 0 -> bit 1 of byte 7
        seed[6] = 0x01; // low bit of byte 6 -> bit 7 of byte 7
        let k = random_to_key(Enctype::Des3CbcSha1, &seed);
        assert_eq!(k[7] & 0xfe, 0x82);
        assert!(k.iter().all(|b| b.count_ones() % 2 == 1));
    }
}
