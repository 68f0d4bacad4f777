//! The local KDC's password-derived keys: `KerberosKeys` (and, later in this
//! file, `HeimdalSRPKey`) of a local user record.
//!
//! A Mac's local KDC (LKDC: Screen Sharing, File Sharing, Back to My Mac) keeps
//! each local user's long-term Kerberos keys in the dslocal record. They are
//! derived from the password, so after an offline password change they must be
//! derived again, or the *old* password keeps working there.
//!
//! This module is pure: bytes and a password in, bytes out. No file is read,
//! nothing is printed, nothing panics on any input.
//!
//! ## String-to-key (RFC 3961, RFC 3962), as Apple's Heimdal does it
//!
//! * aes256-cts-hmac-sha1-96 (18) and aes128-cts-hmac-sha1-96 (17):
//!   `tkey = PBKDF2-HMAC-SHA1(password, salt, 4096, 32 | 16)`,
//!   `key = DK(tkey, "kerberos")` with AES as `E`; random-to-key is the identity.
//!   Heimdal `lib/krb5/salt-aes.c` `AES_string_to_key`: the count is
//!   `_krb5_AES_string_to_default_iterator = 4096` whenever the `opaque`
//!   (s2kparams) is empty, which it always is when Apple sets keys
//!   (`lib/akadmin/HeimODAdmin.c` `update_keys` passes `krb5_data_zero(&opaque)`).
//! * des3-cbc-sha1 (16): `tmp = random-to-key(168-fold(password ‖ salt))`,
//!   `key = DK(tmp, "kerberos")` with 3DES-EDE as `E`. Heimdal
//!   `lib/krb5/salt-des3.c` `DES3_string_to_key_derived` →
//!   `lib/krb5/salt.c` `krb5_string_to_key_derived`.
//! * `DK(key, c) = random-to-key(DR(key, c))`, `DR` = `E` applied repeatedly to
//!   `n-fold(c, blocksize)`, concatenated and truncated to the key-generation
//!   length: Heimdal `lib/krb5/crypto.c` `_krb5_derive_key`.
//! * DES3 random-to-key spreads 3 × 7 bytes into 3 × 8 (the low bits of each group
//!   go to bits 1..7 of its eighth byte), sets odd parity, and XORs a weak or
//!   semi-weak DES key with `00 00 00 00 00 00 00 F0`: Heimdal
//!   `lib/krb5/crypto-des3.c` `_krb5_DES3_random_to_key` (RFC 3961 §6.3.1, §6.2).
//!
//! n-fold and DK are written here (they are a few lines each) on top of the
//! `aes`, `des`, `pbkdf2`/`sha1` crates, and checked against every RFC 3961
//! Appendix A.1 n-fold vector, the A.3 DES3 DR/DK vectors, the A.4 DES3
//! string-to-key vectors and the RFC 3962 Appendix B AES vectors.

use aes::{Aes128, Aes256};
use des::cipher::generic_array::GenericArray;
use des::cipher::{BlockEncrypt, KeyInit};
use des::TdesEde3;
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
    /// The password contains a NUL byte. Heimdal takes the password as a C string
    /// (`strlen`), so it could never reproduce keys for it.
    #[error("the password contains a NUL byte, which Heimdal cannot use")]
    PasswordNul,
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
    if high.count_ones() % 2 == 0 {
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
        let cases: Vec<(u32, &[u8], Vec<u8>, &str, &str, &str)> = vec![
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
