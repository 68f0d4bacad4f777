//! Checking and re-keying a legacy (CSSM, `kych`) login keychain.
//!
//! After the login password is reset from Recovery, `login.keychain-db` is still
//! locked with the *old* password. fvsync can re-encrypt the keychain's database key
//! under the new password (what `security set-keychain-password` does) so that the
//! user keeps every stored item. Only the 92-byte DbBlob header fields salt, IV,
//! blob signature and the 48-byte encrypted database key change; every other byte
//! of the file, and the file size, stay the same.
//!
//! ## Locating the DbBlob
//!
//! The DbBlob (magic `FADE0711`) is the data of the single record of the Metadata
//! table (relation `0x80008000`). This module finds it by walking the CSSM DL table
//! directory (`kych` header → schema → table offsets → table with that id → its
//! record) rather than by scanning for the magic: the symmetric-key records of the
//! same file are KeyBlobs with the same magic **and** the same version `0x100`, and on
//! the sample their crypto areas are also 48 bytes long, so "last magic" (John's
//! `keychain2john`) or "version and layout fit" cannot tell them apart reliably.
//!
//! ## Password check
//!
//! `master = PBKDF2-HMAC-SHA1(password, salt, 1000, 24)`; 3DES-EDE-CBC-decrypting
//! the 48-byte crypto blob with `master` and the blob IV gives 24 bytes of DB
//! encryption key, 20 bytes of DB signing key and PKCS#7 padding `04 04 04 04`.
//! The padding tells whether the password is right (what crackers test); this module
//! additionally verifies the blob signature with the recovered signing key.
//!
//! ## Blob signature (found empirically, verified on the sample file)
//!
//! The 20-byte signature at +72 is **not** standard HMAC-SHA1. securityd signs with
//! `CSSM_ALGID_SHA1HMAC_LEGACY` ("BSafe bug compatibility", Apple's
//! `HmacSha1Legacy.c`), keyed with the 20-byte DB signing key, over two chunks:
//! `blob[0..72]` (everything before the signature) and `blob[92..totalLength]`
//! (the public ACL bytes between the header and `startCryptoBlob`, then the
//! encrypted DB key). The legacy algorithm folds each chunk's HMAC into the next:
//!
//! ```text
//! inner1 = SHA1(k_ipad || chunk1)
//! inner2 = SHA1(k_opad || inner1 || k_ipad || chunk2)
//! mac    = SHA1(k_opad || inner2)
//! ```
//!
//! Standard HMAC-SHA1 over the same bytes (with or without the ACL bytes) does not
//! match the sample; the legacy form above reproduces its stored signature exactly.
//!
//! ## Blob versions
//!
//! Only version `0x100` can be checked offline. macOS 26.4+ writes `0x200` blobs whose
//! master key is not derived from the password this way;
//! [`KeychainError::UnsupportedVersion`] is returned for any version other than
//! `0x100`.
//!
//! ## Items
//!
//! [`decrypt_generic_passwords`] decrypts the generic-password items (to prove a
//! re-key loses nothing): each SymmetricKey record holds a KeyBlob unwrapped with the
//! DB key (3DES-CBC, fixed IV `4adda22c79e82105`, reverse the first 32 bytes, decrypt
//! again with the blob IV, drop 4 bytes); each generic-password record's data is an
//! `ssgp` blob (magic, 16-byte label, 8-byte IV, ciphertext) decrypted with the item
//! key whose record carries the same `ssgp`+label index. Attribute positions
//! (`svce`, `acct`) are looked up in the file's own schema tables.

use std::collections::HashMap;

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{self, CryptoError};

/// Magic of a DbBlob (and of KeyBlobs).
pub const BLOB_MAGIC: u32 = 0xFADE_0711;
/// The only DbBlob version whose password can be checked offline.
pub const SUPPORTED_VERSION: u32 = 0x100;
/// PBKDF2 iteration count of the keychain master key (fixed by securityd).
pub const MASTER_KEY_ITERATIONS: u32 = 1000;

const FILE_MAGIC: &[u8; 4] = b"kych";
const DB_BLOB_HEADER_LEN: usize = 92;
const CRYPTO_BLOB_LEN: usize = 48;
const DB_KEY_LEN: usize = 24;
const SIGNING_KEY_LEN: usize = 20;
const PLAIN_LEN: usize = DB_KEY_LEN + SIGNING_KEY_LEN;
const PAD: [u8; 4] = [4; 4];
const KEYBLOB_IV: [u8; 8] = [0x4a, 0xdd, 0xa2, 0x2c, 0x79, 0xe8, 0x21, 0x05];

const TABLE_SCHEMA_ATTRIBUTES: u32 = 0x0000_0002;
const TABLE_SYMMETRIC_KEY: u32 = 0x0000_0011;
const TABLE_GENERIC_PASSWORD: u32 = 0x8000_0000;
const TABLE_METADATA: u32 = 0x8000_8000;
const MAX_TABLES: u32 = 4096;
const RECORD_HEADER_LEN: usize = 24;
const TABLE_HEADER_LEN: usize = 28;

/// A decrypted generic-password item: `(service, account, secret)`.
pub type GenericPassword = (String, String, Zeroizing<Vec<u8>>);

/// An item key with its `ssgp`+label index.
type ItemKey = ([u8; 20], Zeroizing<Vec<u8>>);

type TdesCbcDec = cbc::Decryptor<des::TdesEde3>;
type TdesCbcEnc = cbc::Encryptor<des::TdesEde3>;

/// Errors from keychain parsing, checking and re-keying. No variant carries key or
/// password bytes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeychainError {
    /// The file does not start with `kych`.
    #[error("not a keychain file (missing `kych` header)")]
    NotKeychain,
    /// A structure points outside the file.
    #[error("keychain file is truncated or corrupt: {0} is out of bounds")]
    Truncated(&'static str),
    /// The Metadata table (0x80008000) or its record is missing.
    #[error("keychain has no metadata record holding the database blob")]
    NoDbBlob,
    /// The metadata record does not start with the DbBlob magic.
    #[error("keychain database blob has the wrong magic")]
    BadMagic,
    /// A DbBlob version other than 0x100 (0x200 = macOS 26.4+; not checkable offline).
    #[error("keychain database blob version {0:#x} is not supported (only 0x100 can be checked offline)")]
    UnsupportedVersion(u32),
    /// The DbBlob's offsets or lengths are inconsistent.
    #[error("keychain database blob layout is invalid: {0}")]
    BadLayout(&'static str),
    /// The password does not decrypt the database key.
    #[error("the password does not unlock this keychain")]
    WrongPassword,
    /// The decrypted key does not reproduce the stored blob signature.
    #[error("keychain database blob signature does not verify; refusing to modify it")]
    SignatureMismatch,
    /// An item could not be decrypted.
    #[error("keychain item could not be decrypted: {0}")]
    Item(&'static str),
    /// A primitive failed (random generator, cipher setup).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A cipher could not be initialised or a buffer was misaligned.
    #[error("3DES operation failed")]
    Cipher,
}

/// Result of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeychainCheck {
    /// The password unlocks the keychain (padding and blob signature verify).
    Accepts,
    /// It does not.
    Rejects,
}

/// Public fields of the keychain's DbBlob (none of them secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbBlob {
    /// File offset of the blob's first byte (the magic).
    pub offset: usize,
    /// Blob version (0x100 supported).
    pub version: u32,
    /// Offset of the encrypted DB key, relative to the blob start.
    pub start_crypto_blob: u32,
    /// Total blob length; the encrypted DB key ends here.
    pub total_length: u32,
    /// PBKDF2 salt of the master key.
    pub salt: [u8; 20],
    /// 3DES-CBC IV of the encrypted DB key.
    pub iv: [u8; 8],
    /// Stored blob signature (legacy HMAC-SHA1, see the module docs).
    pub signature: [u8; 20],
}

impl DbBlob {
    /// File range of the encrypted DB key.
    fn crypto_range(&self) -> std::ops::Range<usize> {
        let s = self.offset.saturating_add(self.start_crypto_blob as usize);
        let e = self.offset.saturating_add(self.total_length as usize);
        s..e
    }

    /// File range of the whole blob.
    fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset.saturating_add(self.total_length as usize)
    }
}

/// The decrypted database keys. Both are secret and zeroized on drop.
pub struct DbKeys {
    /// 24-byte 3DES database encryption key.
    pub encryption: Zeroizing<[u8; 24]>,
    /// 20-byte blob signing key.
    pub signing: Zeroizing<[u8; 20]>,
}

impl std::fmt::Debug for DbKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKeys { .. }")
    }
}

// ---------------------------------------------------------------------------
// bounded readers

fn be32(buf: &[u8], off: usize, what: &'static str) -> Result<u32, KeychainError> {
    let end = off.checked_add(4).ok_or(KeychainError::Truncated(what))?;
    let b = buf.get(off..end).ok_or(KeychainError::Truncated(what))?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Ok(u32::from_be_bytes(a))
}

fn slice<'a>(
    buf: &'a [u8],
    off: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], KeychainError> {
    let end = off.checked_add(len).ok_or(KeychainError::Truncated(what))?;
    buf.get(off..end).ok_or(KeychainError::Truncated(what))
}

fn array<const N: usize>(
    buf: &[u8],
    off: usize,
    what: &'static str,
) -> Result<[u8; N], KeychainError> {
    let mut a = [0u8; N];
    a.copy_from_slice(slice(buf, off, N, what)?);
    Ok(a)
}

fn add(a: usize, b: usize, what: &'static str) -> Result<usize, KeychainError> {
    a.checked_add(b).ok_or(KeychainError::Truncated(what))
}

// ---------------------------------------------------------------------------
// CSSM DL table directory

/// A table of the file: its id and the absolute offsets of its live records.
struct Table {
    id: u32,
    records: Vec<usize>,
}

fn tables(file: &[u8]) -> Result<Vec<Table>, KeychainError> {
    if file.get(..4) != Some(&FILE_MAGIC[..]) {
        return Err(KeychainError::NotKeychain);
    }
    let schema = be32(file, 12, "schema offset")? as usize;
    let count = be32(file, add(schema, 4, "table count")?, "table count")?;
    if count > MAX_TABLES {
        return Err(KeychainError::Truncated("table count"));
    }
    let mut out = Vec::new();
    for i in 0..count as usize {
        let rel = be32(file, add(schema, 8 + 4 * i, "table list")?, "table list")? as usize;
        let base = add(schema, rel, "table offset")?;
        let size = be32(file, base, "table size")? as usize;
        // The whole table must lie within the file.
        slice(file, base, size, "table")?;
        let id = be32(file, base + 4, "table id")?;
        let slots = be32(file, base + 24, "record slot count")? as usize;
        if slots > size.saturating_sub(TABLE_HEADER_LEN) / 4 {
            return Err(KeychainError::Truncated("record slots"));
        }
        let mut records = Vec::with_capacity(slots);
        for s in 0..slots {
            let off = be32(file, base + TABLE_HEADER_LEN + 4 * s, "record slot")? as usize;
            // 0 = empty slot; odd values are free-list links (deleted records).
            if off != 0 && off % 4 == 0 {
                if off >= size {
                    return Err(KeychainError::Truncated("record offset"));
                }
                records.push(base + off);
            }
        }
        out.push(Table { id, records });
    }
    Ok(out)
}

fn table(tables: &[Table], id: u32) -> Option<&Table> {
    tables.iter().find(|t| t.id == id)
}

/// A record: absolute offset and bounded bytes.
fn record(file: &[u8], off: usize) -> Result<&[u8], KeychainError> {
    let size = be32(file, off, "record size")? as usize;
    if size < RECORD_HEADER_LEN {
        return Err(KeychainError::Truncated("record size"));
    }
    slice(file, off, size, "record")
}

/// Attribute ids (FourCC or index) of each relation, in schema order.
fn schema_attributes(file: &[u8], t: &[Table]) -> Result<HashMap<u32, Vec<u32>>, KeychainError> {
    let mut map: HashMap<u32, Vec<u32>> = HashMap::new();
    let Some(attrs) = table(t, TABLE_SCHEMA_ATTRIBUTES) else {
        return Ok(map);
    };
    for &off in &attrs.records {
        let rec = record(file, off)?;
        let relation = attr_u32(rec, 0)?.ok_or(KeychainError::Truncated("schema relation"))?;
        let attr_id = attr_u32(rec, 1)?.ok_or(KeychainError::Truncated("schema attribute"))?;
        map.entry(relation).or_default().push(attr_id);
    }
    Ok(map)
}

/// Position (within `rec`) of attribute number `idx`, or `None` if absent.
fn attr_pos(rec: &[u8], idx: usize) -> Result<Option<usize>, KeychainError> {
    let off = be32(rec, RECORD_HEADER_LEN + 4 * idx, "attribute offset")? as usize;
    Ok(off.checked_sub(1))
}

fn attr_u32(rec: &[u8], idx: usize) -> Result<Option<u32>, KeychainError> {
    match attr_pos(rec, idx)? {
        Some(p) => Ok(Some(be32(rec, p, "attribute value")?)),
        None => Ok(None),
    }
}

fn attr_blob(rec: &[u8], idx: usize) -> Result<Option<&[u8]>, KeychainError> {
    match attr_pos(rec, idx)? {
        Some(p) => {
            let len = be32(rec, p, "attribute length")? as usize;
            Ok(Some(slice(rec, p + 4, len, "attribute value")?))
        }
        None => Ok(None),
    }
}

/// Start (within the record) of the data (blob) area: after the fixed header and
/// the attribute offset array.
fn record_data_start(attr_count: usize) -> Result<usize, KeychainError> {
    attr_count
        .checked_mul(4)
        .and_then(|n| n.checked_add(RECORD_HEADER_LEN))
        .ok_or(KeychainError::Truncated("attributes"))
}

/// Record data (blob) area.
fn record_data(rec: &[u8], attr_count: usize) -> Result<&[u8], KeychainError> {
    let len = be32(rec, 16, "record data size")? as usize;
    slice(rec, record_data_start(attr_count)?, len, "record data")
}

// ---------------------------------------------------------------------------
// DbBlob

/// Locates and parses the DbBlob (the Metadata table's record; see module docs).
///
/// # Errors
/// [`KeychainError::NotKeychain`], [`KeychainError::Truncated`],
/// [`KeychainError::NoDbBlob`], [`KeychainError::BadMagic`] or
/// [`KeychainError::BadLayout`]. The version is *not* checked here.
pub fn find_db_blob(file: &[u8]) -> Result<DbBlob, KeychainError> {
    let t = tables(file)?;
    let schema = schema_attributes(file, &t)?;
    let meta = table(&t, TABLE_METADATA).ok_or(KeychainError::NoDbBlob)?;
    let &rec_off = meta.records.first().ok_or(KeychainError::NoDbBlob)?;
    let rec = record(file, rec_off)?;
    let n_attrs = schema.get(&TABLE_METADATA).map_or(0, Vec::len);
    let data = record_data(rec, n_attrs)?;
    let offset = add(rec_off, record_data_start(n_attrs)?, "blob offset")?;
    if data.len() < DB_BLOB_HEADER_LEN {
        return Err(KeychainError::BadLayout(
            "blob shorter than its 92-byte header",
        ));
    }
    if be32(data, 0, "blob magic")? != BLOB_MAGIC {
        return Err(KeychainError::BadMagic);
    }
    let blob = DbBlob {
        offset,
        version: be32(data, 4, "blob version")?,
        start_crypto_blob: be32(data, 8, "startCryptoBlob")?,
        total_length: be32(data, 12, "totalLength")?,
        salt: array(data, 44, "salt")?,
        iv: array(data, 64, "iv")?,
        signature: array(data, 72, "signature")?,
    };
    let (start, total) = (blob.start_crypto_blob as usize, blob.total_length as usize);
    if start < DB_BLOB_HEADER_LEN || start > total {
        return Err(KeychainError::BadLayout("startCryptoBlob outside the blob"));
    }
    if total > data.len() {
        return Err(KeychainError::BadLayout("totalLength exceeds the record"));
    }
    Ok(blob)
}

/// `PBKDF2-HMAC-SHA1(password, salt, 1000, 24)`.
pub fn master_key(pw: &[u8], salt: &[u8; 20]) -> Zeroizing<[u8; 24]> {
    let mut mk = Zeroizing::new([0u8; 24]);
    crypto::pbkdf2_sha1(pw, salt, MASTER_KEY_ITERATIONS, &mut mk[..]);
    mk
}

fn tdes_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeychainError> {
    if data.is_empty() || data.len() % 8 != 0 {
        return Err(KeychainError::Cipher);
    }
    let mut buf = Zeroizing::new(data.to_vec());
    TdesCbcDec::new_from_slices(key, iv)
        .map_err(|_| KeychainError::Cipher)?
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| KeychainError::Cipher)?;
    Ok(buf)
}

fn tdes_encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, KeychainError> {
    if data.is_empty() || data.len() % 8 != 0 {
        return Err(KeychainError::Cipher);
    }
    let mut buf = data.to_vec();
    let len = buf.len();
    TdesCbcEnc::new_from_slices(key, iv)
        .map_err(|_| KeychainError::Cipher)?
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .map_err(|_| KeychainError::Cipher)?;
    Ok(buf)
}

/// Removes PKCS#7 padding (1..=8), or `None` if invalid.
fn unpad(mut plain: Zeroizing<Vec<u8>>) -> Option<Zeroizing<Vec<u8>>> {
    let &n = plain.last()?;
    let n = usize::from(n);
    if n == 0 || n > 8 || n > plain.len() {
        return None;
    }
    let keep = plain.len() - n;
    if plain.get(keep..)?.iter().any(|&b| usize::from(b) != n) {
        return None;
    }
    plain.truncate(keep);
    Some(plain)
}

/// Decrypts the 48-byte encrypted DB key with a master key. Returns `Ok(None)` if
/// the padding is not `04 04 04 04` (wrong master key / password).
///
/// # Errors
/// [`KeychainError::BadLayout`] if `ct` is not 48 bytes.
pub fn decrypt_db_key(
    master: &[u8; 24],
    iv: &[u8; 8],
    ct: &[u8],
) -> Result<Option<DbKeys>, KeychainError> {
    if ct.len() != CRYPTO_BLOB_LEN {
        return Err(KeychainError::BadLayout(
            "encrypted database key is not 48 bytes",
        ));
    }
    let plain = tdes_decrypt(master, iv, ct)?;
    let pad_ok = plain
        .get(PLAIN_LEN..)
        .map_or(subtle::Choice::from(0), |p| p.ct_eq(&PAD));
    if !bool::from(pad_ok) {
        return Ok(None);
    }
    let mut encryption = Zeroizing::new([0u8; DB_KEY_LEN]);
    let mut signing = Zeroizing::new([0u8; SIGNING_KEY_LEN]);
    encryption.copy_from_slice(slice(&plain, 0, DB_KEY_LEN, "db key")?);
    signing.copy_from_slice(slice(&plain, DB_KEY_LEN, SIGNING_KEY_LEN, "signing key")?);
    Ok(Some(DbKeys {
        encryption,
        signing,
    }))
}

/// Apple's `CSSM_ALGID_SHA1HMAC_LEGACY` over a list of chunks (see module docs).
pub fn legacy_hmac_sha1(key: &[u8; 20], chunks: &[&[u8]]) -> [u8; 20] {
    let mut ipad = Zeroizing::new([0x36u8; 64]);
    let mut opad = Zeroizing::new([0x5cu8; 64]);
    for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(key.iter()) {
        *i ^= k;
        *o ^= k;
    }
    let mut ctx = Sha1::new();
    for chunk in chunks {
        ctx.update(&ipad[..]);
        ctx.update(chunk);
        let inner = ctx.finalize_reset();
        ctx.update(&opad[..]);
        ctx.update(inner);
    }
    ctx.finalize().into()
}

/// Signature of the blob at `blob` (whole blob bytes) with the signing key.
fn blob_signature(signing: &[u8; 20], blob: &[u8]) -> Result<[u8; 20], KeychainError> {
    let head = slice(blob, 0, 72, "blob header")?;
    let tail = blob
        .get(DB_BLOB_HEADER_LEN..)
        .ok_or(KeychainError::Truncated("blob"))?;
    Ok(legacy_hmac_sha1(signing, &[head, tail]))
}

/// Parses, checks the version, and unlocks the DbBlob: `Ok(None)` = wrong password.
fn unlock(file: &[u8], pw: &[u8]) -> Result<(DbBlob, Option<DbKeys>), KeychainError> {
    let blob = find_db_blob(file)?;
    if blob.version != SUPPORTED_VERSION {
        return Err(KeychainError::UnsupportedVersion(blob.version));
    }
    let ct = file
        .get(blob.crypto_range())
        .ok_or(KeychainError::Truncated("encrypted database key"))?;
    if ct.len() != CRYPTO_BLOB_LEN {
        return Err(KeychainError::BadLayout(
            "encrypted database key is not 48 bytes",
        ));
    }
    let mk = master_key(pw, &blob.salt);
    let keys = decrypt_db_key(&mk, &blob.iv, ct)?;
    if let Some(k) = &keys {
        let whole = file
            .get(blob.range())
            .ok_or(KeychainError::Truncated("blob"))?;
        let sig = blob_signature(&k.signing, whole)?;
        if !bool::from(sig.ct_eq(&blob.signature)) {
            return Err(KeychainError::SignatureMismatch);
        }
    }
    Ok((blob, keys))
}

/// Checks whether `pw` unlocks the keychain image `file`.
///
/// # Errors
/// Any [`find_db_blob`] error; [`KeychainError::UnsupportedVersion`] for a blob
/// version other than 0x100; [`KeychainError::SignatureMismatch`] if the padding is
/// right but the blob signature does not verify (corrupt file).
pub fn check(file: &[u8], pw: &[u8]) -> Result<KeychainCheck, KeychainError> {
    let (_, keys) = unlock(file, pw)?;
    Ok(if keys.is_some() {
        KeychainCheck::Accepts
    } else {
        KeychainCheck::Rejects
    })
}

/// Returns a new keychain image whose DB key is re-encrypted under `new`: fresh
/// random 20-byte salt and 8-byte IV, same DB key, recomputed blob signature. All
/// other bytes and the size are unchanged.
///
/// # Errors
/// [`KeychainError::WrongPassword`] if `old` does not unlock the file;
/// [`KeychainError::SignatureMismatch`] if the existing signature does not verify
/// (nothing is produced); [`KeychainError::UnsupportedVersion`]; any parse error;
/// [`KeychainError::Crypto`] if the random generator fails.
pub fn rekey(file: &[u8], old: &[u8], new: &[u8]) -> Result<Vec<u8>, KeychainError> {
    let (blob, keys) = unlock(file, old)?;
    let keys = keys.ok_or(KeychainError::WrongPassword)?;
    let salt: [u8; 20] = crypto::random_bytes()?;
    let iv: [u8; 8] = crypto::random_bytes()?;
    let mk = master_key(new, &salt);
    let mut plain = Zeroizing::new([0u8; CRYPTO_BLOB_LEN]);
    plain[..DB_KEY_LEN].copy_from_slice(&keys.encryption[..]);
    plain[DB_KEY_LEN..PLAIN_LEN].copy_from_slice(&keys.signing[..]);
    plain[PLAIN_LEN..].copy_from_slice(&PAD);
    let ct = tdes_encrypt(&mk[..], &iv, &plain[..])?;

    let mut out = file.to_vec();
    let base = blob.offset;
    let put = |out: &mut Vec<u8>, at: usize, bytes: &[u8]| -> Result<(), KeychainError> {
        let end = add(at, bytes.len(), "blob field")?;
        out.get_mut(at..end)
            .ok_or(KeychainError::Truncated("blob field"))?
            .copy_from_slice(bytes);
        Ok(())
    };
    put(&mut out, add(base, 44, "salt")?, &salt)?;
    put(&mut out, add(base, 64, "iv")?, &iv)?;
    put(&mut out, blob.crypto_range().start, &ct)?;
    let sig = {
        let whole = out
            .get(blob.range())
            .ok_or(KeychainError::Truncated("blob"))?;
        blob_signature(&keys.signing, whole)?
    };
    put(&mut out, add(base, 72, "signature")?, &sig)?;

    // Self-check with the key already derived (no second PBKDF2).
    let reread = decrypt_db_key(&mk, &iv, &ct)?.ok_or(KeychainError::Cipher)?;
    let same =
        reread.encryption.ct_eq(&keys.encryption[..]) & reread.signing.ct_eq(&keys.signing[..]);
    if !bool::from(same) {
        return Err(KeychainError::Cipher);
    }
    Ok(out)
}

/// Decrypts every generic-password item: `(service, account, secret)`.
///
/// # Errors
/// [`KeychainError::WrongPassword`] if `pw` does not unlock the file; the errors of
/// [`check`]; [`KeychainError::Item`] if an item's key is missing or does not
/// decrypt.
pub fn decrypt_generic_passwords(
    file: &[u8],
    pw: &[u8],
) -> Result<Vec<GenericPassword>, KeychainError> {
    let (_, keys) = unlock(file, pw)?;
    let keys = keys.ok_or(KeychainError::WrongPassword)?;
    let t = tables(file)?;
    let schema = schema_attributes(file, &t)?;

    // Item keys, indexed by "ssgp" + 16-byte label.
    let mut item_keys: HashMap<[u8; 20], Zeroizing<Vec<u8>>> = HashMap::new();
    let n_sym = schema.get(&TABLE_SYMMETRIC_KEY).map_or(0, Vec::len);
    for &off in table(&t, TABLE_SYMMETRIC_KEY).map_or(&[][..], |x| &x.records[..]) {
        let rec = record(file, off)?;
        // The key's "ssgp"+label index follows the KeyBlob (it is the record's Label
        // attribute), so pass everything from the blob start to the record end.
        let payload = rec
            .get(record_data_start(n_sym)?..)
            .ok_or(KeychainError::Truncated("key record"))?;
        if let Some((index, key)) = unwrap_item_key(payload, &keys.encryption)? {
            item_keys.insert(index, key);
        }
    }

    let attrs = schema
        .get(&TABLE_GENERIC_PASSWORD)
        .map_or(&[][..], |v| &v[..]);
    let idx_of = |fourcc: &[u8; 4]| attrs.iter().position(|&a| a == u32::from_be_bytes(*fourcc));
    let (svce, acct) = (idx_of(b"svce"), idx_of(b"acct"));
    let mut out = Vec::new();
    for &off in table(&t, TABLE_GENERIC_PASSWORD).map_or(&[][..], |x| &x.records[..]) {
        let rec = record(file, off)?;
        let data = record_data(rec, attrs.len())?;
        let string_attr = |idx: Option<usize>| -> Result<String, KeychainError> {
            let Some(i) = idx else {
                return Ok(String::new());
            };
            let raw = attr_blob(rec, i)?.unwrap_or_default();
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            Ok(String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned())
        };
        let (service, account) = (string_attr(svce)?, string_attr(acct)?);
        let secret = decrypt_ssgp(data, &item_keys)?;
        out.push((service, account, secret));
    }
    Ok(out)
}

/// Unwraps a SymmetricKey record's KeyBlob. `Ok(None)` if it is not an `ssgp` key.
fn unwrap_item_key(data: &[u8], db_key: &[u8; 24]) -> Result<Option<ItemKey>, KeychainError> {
    if be32(data, 0, "key blob magic")? != BLOB_MAGIC {
        return Ok(None);
    }
    let start = be32(data, 8, "key blob start")? as usize;
    let total = be32(data, 12, "key blob length")? as usize;
    let iv = slice(data, 16, 8, "key blob iv")?;
    let index_at = add(total, 8, "key index")?;
    let Ok(index) = array::<20>(data, index_at, "key index") else {
        return Ok(None);
    };
    if &index[..4] != b"ssgp" {
        return Ok(None);
    }
    if start >= total {
        return Err(KeychainError::Item("key blob bounds"));
    }
    let ct = slice(data, start, total - start, "key blob")?;
    let stage1 =
        tdes_decrypt(&db_key[..], &KEYBLOB_IV, ct).map_err(|_| KeychainError::Item("key blob"))?;
    let stage1 = unpad(stage1).ok_or(KeychainError::Item("key blob padding (stage 1)"))?;
    let first = stage1
        .get(..32)
        .ok_or(KeychainError::Item("key blob too short"))?;
    let mut rev = Zeroizing::new(first.to_vec());
    rev.reverse();
    let stage2 =
        tdes_decrypt(&db_key[..], iv, &rev).map_err(|_| KeychainError::Item("key blob"))?;
    let stage2 = unpad(stage2).ok_or(KeychainError::Item("key blob padding (stage 2)"))?;
    let key = stage2
        .get(4..)
        .ok_or(KeychainError::Item("key blob too short"))?;
    if key.len() != 24 {
        return Err(KeychainError::Item("item key is not 24 bytes"));
    }
    Ok(Some((index, Zeroizing::new(key.to_vec()))))
}

fn decrypt_ssgp(
    data: &[u8],
    item_keys: &HashMap<[u8; 20], Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, KeychainError> {
    let index: [u8; 20] = array(data, 0, "ssgp header")?;
    if &index[..4] != b"ssgp" {
        return Err(KeychainError::Item("item data is not an ssgp blob"));
    }
    let iv = slice(data, 20, 8, "ssgp iv")?;
    let ct = data
        .get(28..)
        .ok_or(KeychainError::Item("ssgp ciphertext"))?;
    let key = item_keys
        .get(&index)
        .ok_or(KeychainError::Item("no key for item"))?;
    let plain = tdes_decrypt(key, iv, ct).map_err(|_| KeychainError::Item("ssgp ciphertext"))?;
    unpad(plain).ok_or(KeychainError::Item("ssgp padding"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use serde_json::Value as Json;

    const SAMPLE_PW: &[u8] = b"keychainbreaker-test";

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/samples/keychainbreaker-test.keychain-db"
        ))
        .unwrap()
    }

    fn hx(v: &Json, key: &str) -> Vec<u8> {
        hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
    }

    #[test]
    fn keychain_vectors() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/vectors/keychain.json"
        ))
        .unwrap();
        let Json::Array(vectors) = serde_json::from_str(&text).unwrap() else {
            panic!("not an array")
        };
        assert_eq!(vectors.len(), 5);
        for v in vectors {
            let pw = hx(&v, "password_utf8_hex");
            let salt: [u8; 20] = hx(&v, "salt_hex").try_into().unwrap();
            let iv: [u8; 8] = hx(&v, "iv_hex").try_into().unwrap();
            let ct = hx(&v, "encrypted_db_key_hex");
            let mk = master_key(&pw, &salt);
            assert_eq!(mk.to_vec(), hx(&v, "master_key_hex"), "{}", v["id"]);
            let plain = tdes_decrypt(&mk[..], &iv, &ct).unwrap();
            let expect_plain = hx(&v, "decrypted_blob_hex");
            assert_eq!(
                &plain[..expect_plain.len()],
                &expect_plain[..],
                "{}",
                v["id"]
            );
            assert_eq!(v["padding_len"].as_u64().unwrap(), 4);
            let keys = decrypt_db_key(&mk, &iv, &ct).unwrap().unwrap();
            assert_eq!(keys.encryption.to_vec(), hx(&v, "db_encryption_key_hex"));
            assert_eq!(keys.signing.to_vec(), hx(&v, "db_signing_key_hex"));
            // Wrong password → bad padding.
            let bad = master_key(b"wrong", &salt);
            assert!(decrypt_db_key(&bad, &iv, &ct).unwrap().is_none());
            // Re-encrypting reproduces the ciphertext.
            let mut p = plain.to_vec();
            p.truncate(48);
            assert_eq!(tdes_encrypt(&mk[..], &iv, &p).unwrap(), ct);
        }
    }

    #[test]
    fn finds_db_blob_in_sample() {
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        assert_eq!(blob.offset, 31812);
        assert_eq!(blob.version, 0x100);
        assert_eq!(blob.start_crypto_blob, 120);
        assert_eq!(blob.total_length, 168);
        // The sample's KeyBlobs share magic and version: prove the heuristic is
        // ambiguous and that we did not pick one of them.
        let same_magic_v100 = file
            .windows(8)
            .filter(|w| w[..4] == BLOB_MAGIC.to_be_bytes() && w[4..] == [0, 0, 1, 0])
            .count();
        assert!(same_magic_v100 > 1);
        let mk = master_key(SAMPLE_PW, &blob.salt);
        assert_eq!(
            hex::encode(&mk[..]),
            "4557eb716bbf20200945109cf3b884af9aca72e890e47c07"
        );
    }

    #[test]
    fn sample_signature_is_legacy_hmac() {
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        let mk = master_key(SAMPLE_PW, &blob.salt);
        let ct = &file[blob.crypto_range()];
        let keys = decrypt_db_key(&mk, &blob.iv, ct).unwrap().unwrap();
        let whole = &file[blob.range()];
        assert_eq!(
            blob_signature(&keys.signing, whole).unwrap(),
            blob.signature
        );
        // Standard HMAC-SHA1 over the same bytes does NOT match.
        for msg in [
            [&whole[..72], &whole[92..]].concat(),
            [&whole[..72], ct].concat(),
        ] {
            let mut mac = Hmac::<Sha1>::new_from_slice(&keys.signing[..]).unwrap();
            mac.update(&msg);
            assert_ne!(
                mac.finalize().into_bytes().to_vec(),
                blob.signature.to_vec()
            );
        }
        // With one chunk the legacy form is plain HMAC-SHA1.
        let mut mac = Hmac::<Sha1>::new_from_slice(&keys.signing[..]).unwrap();
        mac.update(b"abc");
        assert_eq!(
            legacy_hmac_sha1(&keys.signing, &[b"abc"]).to_vec(),
            mac.finalize().into_bytes().to_vec()
        );
    }

    #[test]
    fn sample_accepts_and_rejects() {
        let file = sample();
        assert_eq!(check(&file, SAMPLE_PW).unwrap(), KeychainCheck::Accepts);
        assert_eq!(
            check(&file, b"keychainbreaker-tesT").unwrap(),
            KeychainCheck::Rejects
        );
        assert_eq!(check(&file, b"").unwrap(), KeychainCheck::Rejects);
    }

    #[test]
    fn sample_items_decrypt() {
        let items = decrypt_generic_passwords(&sample(), SAMPLE_PW).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items
            .iter()
            .any(|(s, a, p)| s == "moond4rk.com" && a == "admin" && &p[..] == b"password#123"));
        assert_eq!(
            decrypt_generic_passwords(&sample(), b"nope").unwrap_err(),
            KeychainError::WrongPassword
        );
    }

    #[test]
    fn rekey_round_trip() {
        let file = sample();
        let new_pw = b"New-Passw0rd!";
        let out = rekey(&file, SAMPLE_PW, new_pw).unwrap();
        assert_eq!(out.len(), file.len());
        assert_eq!(check(&out, new_pw).unwrap(), KeychainCheck::Accepts);
        assert_eq!(check(&out, SAMPLE_PW).unwrap(), KeychainCheck::Rejects);
        let blob = find_db_blob(&file).unwrap();
        let allowed = |i: usize| {
            let r = i.wrapping_sub(blob.offset);
            (44..92).contains(&r) || blob.crypto_range().contains(&i)
        };
        let diffs: Vec<usize> = (0..file.len()).filter(|&i| file[i] != out[i]).collect();
        assert!(!diffs.is_empty());
        assert!(
            diffs.iter().all(|&i| allowed(i)),
            "changed outside the DbBlob fields"
        );
        let new_blob = find_db_blob(&out).unwrap();
        assert_ne!(new_blob.salt, blob.salt);
        assert_ne!(new_blob.iv, blob.iv);
        // Same DB keys → items unchanged.
        let before = decrypt_generic_passwords(&file, SAMPLE_PW).unwrap();
        let after = decrypt_generic_passwords(&out, new_pw).unwrap();
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!((&b.0, &b.1, &b.2[..]), (&a.0, &a.1, &a.2[..]));
        }
        // Two re-keys use different salts.
        let out2 = rekey(&file, SAMPLE_PW, new_pw).unwrap();
        assert_ne!(find_db_blob(&out2).unwrap().salt, new_blob.salt);
    }

    #[test]
    fn rekey_refuses_wrong_password_and_bad_signature() {
        let file = sample();
        assert_eq!(
            rekey(&file, b"wrong", b"x").unwrap_err(),
            KeychainError::WrongPassword
        );
        let blob = find_db_blob(&file).unwrap();
        let mut tampered = file.clone();
        tampered[blob.offset + 72] ^= 1;
        assert_eq!(
            rekey(&tampered, SAMPLE_PW, b"x").unwrap_err(),
            KeychainError::SignatureMismatch
        );
        // A changed ACL byte is also covered by the signature.
        let mut tampered = file.clone();
        tampered[blob.offset + 100] ^= 1;
        assert_eq!(
            check(&tampered, SAMPLE_PW).unwrap_err(),
            KeychainError::SignatureMismatch
        );
    }

    #[test]
    fn unsupported_version() {
        let mut file = sample();
        let blob = find_db_blob(&file).unwrap();
        file[blob.offset + 4..blob.offset + 8].copy_from_slice(&0x200u32.to_be_bytes());
        assert_eq!(
            check(&file, SAMPLE_PW).unwrap_err(),
            KeychainError::UnsupportedVersion(0x200)
        );
        assert_eq!(
            rekey(&file, SAMPLE_PW, b"x").unwrap_err(),
            KeychainError::UnsupportedVersion(0x200)
        );
    }

    #[test]
    fn malformed_files_error_without_panic() {
        let file = sample();
        assert_eq!(check(b"", b"x").unwrap_err(), KeychainError::NotKeychain);
        assert_eq!(
            check(b"bplist00", b"x").unwrap_err(),
            KeychainError::NotKeychain
        );
        assert!(check(b"kych", b"x").is_err());
        assert!(check(
            &[
                b'k', b'y', b'c', b'h', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff
            ],
            b"x"
        )
        .is_err());
        let mut zeros = b"kych".to_vec();
        zeros.resize(4096, 0);
        assert!(check(&zeros, b"x").is_err());
        let mut ff = b"kych".to_vec();
        ff.resize(4096, 0xff);
        assert!(check(&ff, b"x").is_err());
        // Every truncation point fails cleanly (find_db_blob avoids PBKDF2 cost).
        let blob_end = find_db_blob(&file).unwrap().range().end;
        for n in 0..file.len() {
            let r = find_db_blob(&file[..n]);
            if n < blob_end {
                assert!(r.is_err(), "prefix {n}");
            }
        }
        // Pseudo-random corruption of header/table bytes never panics.
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut f = file.clone();
            let pos = (state as usize) % f.len();
            f[pos] = (state >> 16) as u8;
            let _ = find_db_blob(&f);
            let _ = check(&f, SAMPLE_PW);
            let _ = decrypt_generic_passwords(&f, SAMPLE_PW);
        }
        // Bad magic.
        let blob = find_db_blob(&file).unwrap();
        let mut f = file.clone();
        f[blob.offset] = 0;
        assert_eq!(find_db_blob(&f).unwrap_err(), KeychainError::BadMagic);
        // Bad layout: startCryptoBlob beyond totalLength.
        let mut f = file.clone();
        f[blob.offset + 8..blob.offset + 12].copy_from_slice(&200u32.to_be_bytes());
        assert!(matches!(
            find_db_blob(&f).unwrap_err(),
            KeychainError::BadLayout(_)
        ));
        // Bad layout: crypto blob not 48 bytes.
        let mut f = file.clone();
        f[blob.offset + 8..blob.offset + 12].copy_from_slice(&128u32.to_be_bytes());
        assert!(matches!(
            check(&f, SAMPLE_PW).unwrap_err(),
            KeychainError::BadLayout(_)
        ));
    }

    #[test]
    fn debug_hides_keys() {
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        let mk = master_key(SAMPLE_PW, &blob.salt);
        let keys = decrypt_db_key(&mk, &blob.iv, &file[blob.crypto_range()])
            .unwrap()
            .unwrap();
        assert_eq!(format!("{keys:?}"), "DbKeys { .. }");
    }
}
