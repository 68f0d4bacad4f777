//! Checking and re-keying a login keychain (`login.keychain-db`, the CSSM `kych`
//! file format securityd still uses for the login keychain).
//!
//! After the login password is reset from Recovery, `login.keychain-db` is still
//! locked with the *old* password. fvsync re-encrypts the keychain's database keys
//! under the new password (what `security set-keychain-password` does) so that the
//! user keeps every stored item. Only the DbBlob's salt, IV, blob signature and
//! encrypted key section change; every other byte of the file, and its size, stay
//! the same. Everything here is pure: bytes in, bytes out.
//!
//! ## Locating the DbBlob
//!
//! The DbBlob (magic `FADE0711`) is the data of the single record of the Metadata
//! table (relation `0x80008000`). This module finds it by walking the CSSM DL table
//! directory (`kych` header → schema → table offsets → table with that id → its
//! record) rather than by scanning for the magic: the symmetric-key records of the
//! same file are KeyBlobs with the same magic and often the same version, with
//! crypto areas of the same length, so "last magic" (John's `keychain2john`) or
//! "version and layout fit" cannot tell them apart reliably.
//!
//! ## DbBlob layout and versions
//!
//! Apple's `ssblob.h` (`DbBlob`, `CommonBlob`): magic, version, startCryptoBlob,
//! totalLength, randomSignature\[16\], sequence, params {idleTimeout, lockOnSleep,
//! 3 pad bytes}, salt\[20\], iv\[8\], blobSignature\[20\] (92 bytes), then the
//! public ACL up to `startCryptoBlob`, then the encrypted section up to
//! `totalLength`. Two versions are understood, with the same layout, KDF and
//! cipher:
//!
//! | version | name in `ssblob.h` | written by | blob signature |
//! |---|---|---|---|
//! | `0x100` | `version_MacOS_10_0` | keychains outside `~/Library/Keychains`, older systems | BSafe *legacy* HMAC-SHA1 |
//! | `0x200` | `version_partition` | every keychain under `~/Library/Keychains` since 10.11.4/10.12 (`CommonBlob::getCurrentVersionForDb`) | standard HMAC-SHA1 |
//!
//! Both are checked and re-keyed offline. Any other version (`0x101` included,
//! for which no real file was available) is refused with
//! [`KeychainError::UnsupportedVersion`].
//!
//! ## Password check
//!
//! `master = PBKDF2-HMAC-SHA1(passphrase, salt, 1000, 24)`
//! (`DatabaseCryptoCore::deriveDbMasterKey`, `securityd/src/dbcrypto.cpp`).
//! 3DES-EDE-CBC-decrypting `blob[startCryptoBlob..totalLength]` with `master` and
//! the blob IV gives the 24-byte DB encryption key, the 20-byte DB signing key and
//! the private ACL, PKCS#7-padded (`DatabaseCryptoCore::encodeCore` /
//! `decodeCore`). The padding tells whether the passphrase is right (what crackers
//! test); this module additionally verifies the blob signature with the recovered
//! signing key and refuses a file whose signature does not verify.
//!
//! ## Blob signature
//!
//! `decodeCore` / `encodeCore` sign two chunks, `blob[0..72]` (everything before
//! the signature) and `blob[92..totalLength]` (the public ACL, then the encrypted
//! section), with HMAC-SHA1 keyed by the 20-byte DB signing key, using
//! `CSSM_ALGID_SHA1HMAC_LEGACY` ("BSafe bug compatibility", Apple's
//! `HmacSha1Legacy.c`) only when the version is `0x100`. The legacy algorithm
//! folds each chunk's HMAC into the next:
//!
//! ```text
//! inner1 = SHA1(k_ipad || chunk1)
//! inner2 = SHA1(k_opad || inner1 || k_ipad || chunk2)
//! mac    = SHA1(k_opad || inner2)
//! ```
//!
//! Verified on real files: the legacy form reproduces the signature of the 0x100
//! sample (moonD4rk/keychainbreaker `testdata/test.keychain-db`), standard
//! HMAC-SHA1 does not; standard HMAC-SHA1 reproduces the signature of both 0x200
//! samples (moonD4rk/HackBrowserData `utils/chainbreaker/testdata/test.keychain-db`,
//! saveoursecrets/sdk `tests/fixtures/migrate/sos-mock.keychain-db`).
//!
//! ## Re-key
//!
//! As securityd's `changePassphrase` → `encodeCore`: the version is kept, a new
//! random salt (kept only for the indirect form, below) and a new random IV are
//! drawn, and randomSignature, sequence, params (pad bytes included: they are
//! signed), the public ACL and the private ACL after the 44 key bytes are kept.
//! The DB keys do not change, so item key blobs, partition IDs and integrity
//! entries (which depend on the DB keys, not on the master key) stay as they are.
//!
//! ## macOS 26 indirect passphrases
//!
//! With the feature flag `ProtectLoginKeychainWithDP` (Security-61901), securityd
//! may re-key the login keychain to an *indirect* passphrase. From Apple's sources
//! (Security-61901.0.87.0.1):
//!
//! * `securityd/src/transition.cpp`, `CopyProtectedEntropyForSalt`: the entropy is
//!   read from `/var/db/SystemKeys/` followed by the DbBlob salt in **uppercase**
//!   hex (`CFStringAppendHexData`, `%02X`); the file is a property list whose
//!   **root object is `<data>`** (anything else is refused); if the file is
//!   missing, 32 random bytes are drawn and written as an XML plist.
//! * same file, `ucsp_server_generateDerivedEntropy`: `HMAC-SHA256(key = entropy,
//!   data = password)` ("same as HKDF-extract"); the **32 raw HMAC bytes** are the
//!   handle's data.
//! * same file, `ucsp_server_unlockDbWithHandle` / `ucsp_server_changeDbPassphraseWithHandle`
//!   hand those 32 bytes to `KeychainDatabase::unlockDb` / `changePassphraseTo`
//!   (`securityd/src/kcdatabase.cpp`), which call `DatabaseCryptoCore::setup` and
//!   `deriveDbMasterKey`: `params.Passphrase = passphrase`, so the 32 raw bytes (not
//!   hex, not base64) are the PBKDF2 password. `changePassphraseTo` passes the old
//!   blob to `setup`, which keeps the salt: "that's the lookup key used by the DP
//!   keychain".
//! * `OSX/libsecurity_apple_cspdl/lib/SSDatabase.cpp`, `SSDatabaseImpl::unlock`:
//!   the 32 bytes are also kept in the data-protection keychain (generic password,
//!   service `legacy login keychain`, account = the salt in *lowercase* hex,
//!   `CssmData::toHex`); if that lookup fails with an error other than "not found"
//!   the raw password is tried; if it is "not found", the raw password is tried and,
//!   when it opens the keychain, the keychain is converted to the indirect form.
//!
//! [`check_form`] reports which form opens a keychain; [`rekey_to`] and
//! [`rekey_verified`] re-key to either form. fvsync's choice after an offline
//! password change is [`Form::Raw`] with a new salt, because every branch of
//! `SSDatabaseImpl::unlock` then reaches a raw unlock with the new password (see
//! `docs/keychain.md`). This is read from the source; it is not confirmed on a Mac.
//!
//! ## Bounds (hostile files)
//!
//! Every read is bounds-checked. Live records may neither repeat nor overlap, and
//! must lie inside their table; at most [`MAX_RECORDS`] are accepted, and item
//! decoding stops at [`MAX_DECODED_BYTES`]. So work and memory grow at most with
//! the file's size, whatever its offsets say.
//!
//! ## Items
//!
//! [`items_digest`] (and [`decrypt_generic_passwords`]) decrypt the
//! generic-password items, to prove a re-key loses nothing: each SymmetricKey
//! record holds a KeyBlob unwrapped with the DB key (3DES-CBC, fixed IV
//! `4adda22c79e82105`, reverse the first 32 bytes, decrypt again with the blob IV,
//! drop 4 bytes); each generic-password record's data is an `ssgp` blob (magic,
//! 16-byte label, 8-byte IV, ciphertext) decrypted with the item key whose record
//! carries the same `ssgp`+label index. Attribute positions (`svce`, `acct`) are
//! looked up in the file's own schema tables.

use std::collections::HashMap;

use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{self, CryptoError};

/// Magic of a DbBlob (and of KeyBlobs).
pub const BLOB_MAGIC: u32 = 0xFADE_0711;
/// DbBlob version `version_MacOS_10_0`: signed with the legacy HMAC-SHA1.
pub const VERSION_MACOS_10_0: u32 = 0x100;
/// DbBlob version `version_partition` (every keychain under `~/Library/Keychains`
/// since macOS 10.12): signed with standard HMAC-SHA1.
pub const VERSION_PARTITION: u32 = 0x200;
/// PBKDF2 iteration count of the keychain master key (fixed by securityd).
pub const MASTER_KEY_ITERATIONS: u32 = 1000;
/// Most live records accepted in one file (a real login keychain has hundreds to a
/// few thousand).
pub const MAX_RECORDS: usize = 100_000;
/// Most bytes of item attributes and secrets decoded from one file.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// Folder of the macOS 26 entropy files, relative to the Data volume's root
/// (`/var/db/SystemKeys` on a running Mac); the file is named by
/// [`system_keys_file_name`].
pub const SYSTEM_KEYS_DIR: &str = "private/var/db/SystemKeys";
/// Largest entropy file [`parse_system_keys_entropy`] reads (securityd writes
/// about 250 bytes).
pub const MAX_ENTROPY_FILE_LEN: usize = 16 * 1024;

const FILE_MAGIC: &[u8; 4] = b"kych";
const DB_BLOB_HEADER_LEN: usize = 92;
const SALT_AT: usize = 44;
const IV_AT: usize = 64;
const SIGNATURE_AT: usize = 72;
const DB_KEY_LEN: usize = 24;
const SIGNING_KEY_LEN: usize = 20;
const KEYS_LEN: usize = DB_KEY_LEN + SIGNING_KEY_LEN;
/// Smallest encrypted section: the 44 key bytes padded to 48.
const MIN_CRYPTO_LEN: usize = 48;
/// Largest encrypted section accepted (44 key bytes and a private ACL).
const MAX_CRYPTO_LEN: usize = 64 * 1024;
/// Padding of at least this many bytes is strong evidence (about 2^-32 by
/// chance) that the master key is right.
const STRONG_PADDING: usize = 4;
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
type ItemKey = ([u8; 20], Zeroizing<[u8; 24]>);

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
    /// A DbBlob version other than 0x100 and 0x200.
    #[error("keychain database blob version {0:#x} is not supported (only 0x100 and 0x200 are)")]
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
    /// More live records than [`MAX_RECORDS`].
    #[error("keychain has more than {MAX_RECORDS} records; refusing to read it")]
    TooManyRecords,
    /// Two record slots point at the same or overlapping bytes, or a record
    /// leaves its table.
    #[error("keychain records overlap, repeat or leave their table (a crafted or corrupt file)")]
    OverlappingRecords,
    /// Decoding the items would exceed [`MAX_DECODED_BYTES`].
    #[error("keychain items exceed {MAX_DECODED_BYTES} bytes; refusing to decode them")]
    TooLarge,
    /// The SystemKeys entropy file is not a property list whose root is data.
    #[error("the SystemKeys entropy file is not understood: {0}")]
    BadEntropy(&'static str),
    /// The indirect form was asked for without the SystemKeys entropy.
    #[error("the indirect (macOS 26) form needs the SystemKeys entropy")]
    NoEntropy,
    /// A re-keyed image failed its own verification (nothing should be written).
    #[error("the re-keyed keychain failed verification: {0}")]
    Unverified(&'static str),
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

/// How securityd turns the login password into the keychain's passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The password itself: `master = PBKDF2-HMAC-SHA1(password, salt, 1000, 24)`.
    Raw,
    /// macOS 26: `master = PBKDF2-HMAC-SHA1(HMAC-SHA256(entropy, password), salt,
    /// 1000, 24)`, with the entropy of `SystemKeys/<salt hex>` (see module docs).
    Indirect,
}

/// Public fields of the keychain's DbBlob (none of them secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbBlob {
    /// File offset of the blob's first byte (the magic).
    pub offset: usize,
    /// Blob version ([`VERSION_MACOS_10_0`] or [`VERSION_PARTITION`] are supported).
    pub version: u32,
    /// Offset of the encrypted section, relative to the blob start.
    pub start_crypto_blob: u32,
    /// Total blob length; the encrypted section ends here.
    pub total_length: u32,
    /// PBKDF2 salt of the master key.
    pub salt: [u8; 20],
    /// 3DES-CBC IV of the encrypted section.
    pub iv: [u8; 8],
    /// Stored blob signature (HMAC-SHA1, legacy for 0x100; see the module docs).
    pub signature: [u8; 20],
}

impl DbBlob {
    /// File range of the encrypted section.
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

/// The decrypted encrypted section: DB keys and private ACL. Secret; zeroized on
/// drop; never printed.
struct Opened {
    /// 24-byte 3DES database encryption key.
    encryption: Zeroizing<[u8; DB_KEY_LEN]>,
    /// 20-byte blob signing key.
    signing: Zeroizing<[u8; SIGNING_KEY_LEN]>,
    /// The private ACL after the 44 key bytes (kept byte for byte by a re-key).
    private_acl: Zeroizing<Vec<u8>>,
}

/// A digest of every generic-password item (service, account and secret, in file
/// order), to prove that items decrypt the same before and after a re-key without
/// holding their plaintexts. Compared in constant time; never printed.
pub struct ItemsDigest {
    count: usize,
    digest: Zeroizing<[u8; 32]>,
}

impl ItemsDigest {
    /// Number of items digested.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl PartialEq for ItemsDigest {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && bool::from(self.digest.ct_eq(&other.digest[..]))
    }
}

impl Eq for ItemsDigest {}

impl std::fmt::Debug for ItemsDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ItemsDigest {{ count: {}, .. }}", self.count)
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
#[derive(Debug)]
struct Table {
    id: u32,
    records: Vec<usize>,
}

/// Walks the table directory. Every live record must lie inside its table, no two
/// may share a byte, and there may be at most [`MAX_RECORDS`] of them.
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
    // (start, end) of every live record, to reject repeats and overlaps.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for i in 0..count as usize {
        let at = add(schema, add(8, 4 * i, "table list")?, "table list")?;
        let rel = be32(file, at, "table list")? as usize;
        let base = add(schema, rel, "table offset")?;
        let size = be32(file, base, "table size")? as usize;
        // The whole table must lie within the file.
        slice(file, base, size, "table")?;
        let id = be32(file, add(base, 4, "table id")?, "table id")?;
        let slots = be32(file, add(base, 24, "record slots")?, "record slot count")? as usize;
        if slots > size.saturating_sub(TABLE_HEADER_LEN) / 4 {
            return Err(KeychainError::Truncated("record slots"));
        }
        let mut records = Vec::new();
        for s in 0..slots {
            let at = add(base, TABLE_HEADER_LEN + 4 * s, "record slot")?;
            let off = be32(file, at, "record slot")? as usize;
            // 0 = empty slot; odd values are free-list links (deleted records).
            if off == 0 || !off.is_multiple_of(4) {
                continue;
            }
            if spans.len() >= MAX_RECORDS {
                return Err(KeychainError::TooManyRecords);
            }
            if off >= size {
                return Err(KeychainError::Truncated("record offset"));
            }
            let start = base + off;
            let rec_len = be32(file, start, "record size")? as usize;
            if rec_len < RECORD_HEADER_LEN {
                return Err(KeychainError::Truncated("record size"));
            }
            // `off < size` and `base + size` is within the file, so no overflow.
            if rec_len > size - off {
                return Err(KeychainError::OverlappingRecords);
            }
            spans.push((start, start + rec_len));
            records.push(start);
        }
        out.push(Table { id, records });
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(KeychainError::OverlappingRecords);
    }
    Ok(out)
}

fn table(tables: &[Table], id: u32) -> Option<&Table> {
    tables.iter().find(|t| t.id == id)
}

fn records(tables: &[Table], id: u32) -> &[usize] {
    table(tables, id).map_or(&[][..], |t| &t.records[..])
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
    for &off in records(t, TABLE_SCHEMA_ATTRIBUTES) {
        let rec = record(file, off)?;
        let relation = attr_u32(rec, 0)?.ok_or(KeychainError::Truncated("schema relation"))?;
        let attr_id = attr_u32(rec, 1)?.ok_or(KeychainError::Truncated("schema attribute"))?;
        map.entry(relation).or_default().push(attr_id);
    }
    Ok(map)
}

/// Position (within `rec`) of attribute number `idx`, or `None` if absent.
fn attr_pos(rec: &[u8], idx: usize) -> Result<Option<usize>, KeychainError> {
    let at = idx
        .checked_mul(4)
        .and_then(|n| n.checked_add(RECORD_HEADER_LEN))
        .ok_or(KeychainError::Truncated("attribute offset"))?;
    let off = be32(rec, at, "attribute offset")? as usize;
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
            Ok(Some(slice(
                rec,
                add(p, 4, "attribute value")?,
                len,
                "attribute value",
            )?))
        }
        None => Ok(None),
    }
}

/// The bytes of attribute `idx` (empty if the schema or the record has none).
fn attr_bytes(rec: &[u8], idx: Option<usize>) -> Result<&[u8], KeychainError> {
    match idx {
        Some(i) => Ok(attr_blob(rec, i)?.unwrap_or_default()),
        None => Ok(&[]),
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
/// [`KeychainError::NoDbBlob`], [`KeychainError::BadMagic`],
/// [`KeychainError::BadLayout`], [`KeychainError::TooManyRecords`] or
/// [`KeychainError::OverlappingRecords`]. The version is *not* checked here.
pub fn find_db_blob(file: &[u8]) -> Result<DbBlob, KeychainError> {
    let t = tables(file)?;
    let schema = schema_attributes(file, &t)?;
    let &rec_off = records(&t, TABLE_METADATA)
        .first()
        .ok_or(KeychainError::NoDbBlob)?;
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
        salt: array(data, SALT_AT, "salt")?,
        iv: array(data, IV_AT, "iv")?,
        signature: array(data, SIGNATURE_AT, "signature")?,
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

/// The uppercase-hex name of the keychain's macOS 26 entropy file in
/// [`SYSTEM_KEYS_DIR`]: the DbBlob salt, as securityd's
/// `CopyProtectedEntropyForSalt` spells it (40 characters).
///
/// # Errors
/// Any [`find_db_blob`] error.
pub fn system_keys_file_name(file: &[u8]) -> Result<String, KeychainError> {
    let salt = find_db_blob(file)?.salt;
    Ok(salt.iter().map(|b| format!("{b:02X}")).collect())
}

/// `PBKDF2-HMAC-SHA1(passphrase, salt, 1000, 24)`: the keychain master key.
pub fn master_key(passphrase: &[u8], salt: &[u8; 20]) -> Zeroizing<[u8; 24]> {
    let mut mk = Zeroizing::new([0u8; 24]);
    crypto::pbkdf2_sha1(passphrase, salt, MASTER_KEY_ITERATIONS, &mut mk[..]);
    mk
}

/// The macOS 26 indirect passphrase: `HMAC-SHA256(key = entropy, data = password)`,
/// whose 32 raw bytes securityd feeds to PBKDF2 as the passphrase
/// (`ucsp_server_generateDerivedEntropy`, `securityd/src/transition.cpp`).
///
/// # Errors
/// [`KeychainError::NoEntropy`] if `entropy` is empty.
pub fn indirect_passphrase(
    entropy: &[u8],
    password: &[u8],
) -> Result<Zeroizing<[u8; 32]>, KeychainError> {
    if entropy.is_empty() {
        return Err(KeychainError::NoEntropy);
    }
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(entropy).map_err(|_| KeychainError::Cipher)?;
    mac.update(password);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// Reads a `SystemKeys/<salt hex>` entropy file: a property list (XML, as securityd
/// writes it, or binary) whose root object is `<data>`, as
/// `CopyProtectedEntropyForSalt` requires. Returns the data (32 bytes when securityd
/// made it; any length from 1 to 1024 is accepted).
///
/// # Errors
/// [`KeychainError::BadEntropy`] for a file over [`MAX_ENTROPY_FILE_LEN`], a file
/// that is not a property list, a root that is not data, or data that is empty or
/// longer than 1024 bytes.
pub fn parse_system_keys_entropy(bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeychainError> {
    const MAX_ENTROPY_LEN: usize = 1024;
    if bytes.len() > MAX_ENTROPY_FILE_LEN {
        return Err(KeychainError::BadEntropy("the file is too large"));
    }
    let data = if bytes.starts_with(b"bplist00") {
        // A binary plist may share objects (a small file can describe a huge
        // tree), so only the root object is looked at, by hand.
        Zeroizing::new(binary_plist_root_data(bytes)?.to_vec())
    } else {
        match crate::formats::plist_safe::parse(bytes) {
            Ok(plist::Value::Data(d)) => Zeroizing::new(d),
            Ok(_) => return Err(KeychainError::BadEntropy("the root object is not data")),
            Err(_) => return Err(KeychainError::BadEntropy("not a property list")),
        }
    };
    if data.is_empty() || data.len() > MAX_ENTROPY_LEN {
        return Err(KeychainError::BadEntropy("the data is empty or too long"));
    }
    Ok(data)
}

/// The bytes of a binary plist's root object, which must be data (marker `0x4n`).
fn binary_plist_root_data(b: &[u8]) -> Result<&[u8], KeychainError> {
    let bad = KeychainError::BadEntropy("malformed binary property list");
    let be = |s: &[u8]| s.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let trailer_at = b.len().checked_sub(32).ok_or(bad.clone())?;
    let trailer: [u8; 32] = array(b, trailer_at, "plist trailer").map_err(|_| bad.clone())?;
    let offset_size = usize::from(trailer[6]);
    let objects = be(&trailer[8..16]);
    let top = be(&trailer[16..24]);
    let table = be(&trailer[24..32]);
    if !(1..=8).contains(&offset_size) || top >= objects {
        return Err(bad);
    }
    let entry = usize::try_from(top)
        .ok()
        .and_then(|t| t.checked_mul(offset_size))
        .and_then(|o| usize::try_from(table).ok()?.checked_add(o))
        .ok_or(bad.clone())?;
    if entry
        .checked_add(offset_size)
        .is_none_or(|e| e > trailer_at)
    {
        return Err(bad);
    }
    let root = usize::try_from(be(
        slice(b, entry, offset_size, "plist").map_err(|_| bad.clone())?
    ))
    .map_err(|_| bad.clone())?;
    let &marker = b
        .get(root)
        .filter(|_| root < trailer_at)
        .ok_or(bad.clone())?;
    if marker >> 4 != 0x4 {
        return Err(KeychainError::BadEntropy("the root object is not data"));
    }
    let (start, len) = if marker & 0xf != 0xf {
        (root + 1, usize::from(marker & 0xf))
    } else {
        // The length follows as an integer object: 0x1m, then 2^m bytes.
        let &int_marker = b.get(root + 1).ok_or(bad.clone())?;
        if int_marker >> 4 != 0x1 || int_marker & 0xf > 3 {
            return Err(bad);
        }
        let n = 1usize << (int_marker & 0xf);
        let len = be(slice(b, root + 2, n, "plist").map_err(|_| bad.clone())?);
        (root + 2 + n, usize::try_from(len).map_err(|_| bad.clone())?)
    };
    let data = slice(b, start, len, "plist").map_err(|_| bad.clone())?;
    if start.saturating_add(len) > trailer_at {
        return Err(bad);
    }
    Ok(data)
}

fn tdes_decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeychainError> {
    if data.is_empty() || !data.len().is_multiple_of(8) {
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
    if data.is_empty() || !data.len().is_multiple_of(8) {
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

/// Length of valid PKCS#7 padding (1..=8), or `None`.
fn padding_len(plain: &[u8]) -> Option<usize> {
    let &n = plain.last()?;
    let n = usize::from(n);
    if n == 0 || n > 8 || n > plain.len() {
        return None;
    }
    let keep = plain.len() - n;
    if plain.get(keep..)?.iter().any(|&b| usize::from(b) != n) {
        return None;
    }
    Some(n)
}

/// Removes PKCS#7 padding (1..=8), or `None` if invalid.
fn unpad(mut plain: Zeroizing<Vec<u8>>) -> Option<Zeroizing<Vec<u8>>> {
    let n = padding_len(&plain)?;
    let keep = plain.len() - n;
    plain.truncate(keep);
    Some(plain)
}

/// Apple's `CSSM_ALGID_SHA1HMAC_LEGACY` over a list of chunks (see module docs).
fn legacy_hmac_sha1(key: &[u8; 20], chunks: &[&[u8]]) -> [u8; 20] {
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

/// Signature of a whole blob (`blob` = its `totalLength` bytes), by version.
fn blob_signature(
    version: u32,
    signing: &[u8; 20],
    blob: &[u8],
) -> Result<[u8; 20], KeychainError> {
    let head = slice(blob, 0, SIGNATURE_AT, "blob header")?;
    let tail = blob
        .get(DB_BLOB_HEADER_LEN..)
        .ok_or(KeychainError::Truncated("blob"))?;
    match version {
        VERSION_MACOS_10_0 => Ok(legacy_hmac_sha1(signing, &[head, tail])),
        VERSION_PARTITION => {
            let mut mac =
                Hmac::<Sha1>::new_from_slice(&signing[..]).map_err(|_| KeychainError::Cipher)?;
            mac.update(head);
            mac.update(tail);
            Ok(mac.finalize().into_bytes().into())
        }
        v => Err(KeychainError::UnsupportedVersion(v)),
    }
}

/// The blob's bytes and encrypted section, after the version and layout checks.
fn blob_parts<'a>(file: &'a [u8], blob: &DbBlob) -> Result<(&'a [u8], &'a [u8]), KeychainError> {
    if blob.version != VERSION_MACOS_10_0 && blob.version != VERSION_PARTITION {
        return Err(KeychainError::UnsupportedVersion(blob.version));
    }
    let whole = file
        .get(blob.range())
        .ok_or(KeychainError::Truncated("blob"))?;
    let ct = file
        .get(blob.crypto_range())
        .ok_or(KeychainError::Truncated("encrypted database key"))?;
    if ct.len() < MIN_CRYPTO_LEN || ct.len() > MAX_CRYPTO_LEN || ct.len() % 8 != 0 {
        return Err(KeychainError::BadLayout(
            "encrypted section is not 48 to 65536 bytes in 8-byte blocks",
        ));
    }
    Ok((whole, ct))
}

/// Decrypts the encrypted section with `master` and verifies the blob signature.
/// `Ok(None)`: wrong master key. A signature mismatch after strong padding is
/// [`KeychainError::SignatureMismatch`] (right key, altered blob); after weak
/// padding (1 to 3 bytes, about 1 in 256 by chance) it counts as a wrong key.
fn open_blob(
    file: &[u8],
    blob: &DbBlob,
    master: &[u8; 24],
) -> Result<Option<Opened>, KeychainError> {
    let (whole, ct) = blob_parts(file, blob)?;
    let plain = tdes_decrypt(master, &blob.iv, ct)?;
    let Some(pad) = padding_len(&plain) else {
        return Ok(None);
    };
    let body = plain.len() - pad;
    if body < KEYS_LEN {
        return Ok(None);
    }
    let mut encryption = Zeroizing::new([0u8; DB_KEY_LEN]);
    let mut signing = Zeroizing::new([0u8; SIGNING_KEY_LEN]);
    encryption.copy_from_slice(slice(&plain, 0, DB_KEY_LEN, "db key")?);
    signing.copy_from_slice(slice(&plain, DB_KEY_LEN, SIGNING_KEY_LEN, "signing key")?);
    let private_acl =
        Zeroizing::new(slice(&plain, KEYS_LEN, body - KEYS_LEN, "private acl")?.to_vec());
    let sig = blob_signature(blob.version, &signing, whole)?;
    if !bool::from(sig.ct_eq(&blob.signature)) {
        return if pad >= STRONG_PADDING {
            Err(KeychainError::SignatureMismatch)
        } else {
            Ok(None)
        };
    }
    Ok(Some(Opened {
        encryption,
        signing,
        private_acl,
    }))
}

/// The master key of `password` in `form` for `salt`.
fn master_for(
    password: &[u8],
    form: Form,
    entropy: Option<&[u8]>,
    salt: &[u8; 20],
) -> Result<Zeroizing<[u8; 24]>, KeychainError> {
    match form {
        Form::Raw => Ok(master_key(password, salt)),
        Form::Indirect => {
            let ip = indirect_passphrase(entropy.ok_or(KeychainError::NoEntropy)?, password)?;
            Ok(master_key(&ip[..], salt))
        }
    }
}

/// Opens the keychain with `password`: raw first, then (with `entropy`) indirect.
fn open(
    file: &[u8],
    password: &[u8],
    entropy: Option<&[u8]>,
) -> Result<(DbBlob, Option<(Form, Opened)>), KeychainError> {
    let blob = find_db_blob(file)?;
    // Version and layout first, before any key derivation.
    blob_parts(file, &blob)?;
    let mut forms = vec![Form::Raw];
    if entropy.is_some() {
        forms.push(Form::Indirect);
    }
    for form in forms {
        let mk = master_for(password, form, entropy, &blob.salt)?;
        if let Some(o) = open_blob(file, &blob, &mk)? {
            return Ok((blob, Some((form, o))));
        }
    }
    Ok((blob, None))
}

/// Checks whether `password` (the raw form) unlocks the keychain image `file`.
///
/// # Errors
/// Any [`find_db_blob`] error; [`KeychainError::UnsupportedVersion`] for a blob
/// version other than 0x100 and 0x200; [`KeychainError::SignatureMismatch`] if the
/// padding is right but the blob signature does not verify (altered file).
pub fn check(file: &[u8], password: &[u8]) -> Result<KeychainCheck, KeychainError> {
    Ok(match check_form(file, password, None)? {
        Some(_) => KeychainCheck::Accepts,
        None => KeychainCheck::Rejects,
    })
}

/// Which form of `password` unlocks the keychain: [`Form::Raw`], else (when the
/// SystemKeys `entropy` is given) [`Form::Indirect`], else `None`.
///
/// # Errors
/// As [`check`].
pub fn check_form(
    file: &[u8],
    password: &[u8],
    entropy: Option<&[u8]>,
) -> Result<Option<Form>, KeychainError> {
    let (_, opened) = open(file, password, entropy)?;
    Ok(opened.map(|(form, _)| form))
}

/// Re-encodes the blob of `file` under `new_passphrase` (see "Re-key" in the
/// module docs): new IV, new salt unless `keep_salt`, same keys and private ACL,
/// signature by version. Checks the result decrypts to the same keys.
fn reencode(
    file: &[u8],
    blob: &DbBlob,
    opened: &Opened,
    new_passphrase: &[u8],
    keep_salt: bool,
) -> Result<Vec<u8>, KeychainError> {
    let salt: [u8; 20] = if keep_salt {
        blob.salt
    } else {
        crypto::random_bytes()?
    };
    let iv: [u8; 8] = crypto::random_bytes()?;
    let mk = master_key(new_passphrase, &salt);
    let body = KEYS_LEN + opened.private_acl.len();
    let pad = 8 - body % 8;
    let mut plain = Zeroizing::new(Vec::with_capacity(body + pad));
    plain.extend_from_slice(&opened.encryption[..]);
    plain.extend_from_slice(&opened.signing[..]);
    plain.extend_from_slice(&opened.private_acl);
    // `pad` is 1..=8.
    plain.resize(body + pad, pad as u8);
    let ct = tdes_encrypt(&mk[..], &iv, &plain)?;
    let range = blob.crypto_range();
    if ct.len() != range.len() {
        return Err(KeychainError::BadLayout(
            "the encrypted section has non-standard padding",
        ));
    }

    let mut out = file.to_vec();
    let put = |out: &mut Vec<u8>, at: usize, bytes: &[u8]| -> Result<(), KeychainError> {
        let end = add(at, bytes.len(), "blob field")?;
        out.get_mut(at..end)
            .ok_or(KeychainError::Truncated("blob field"))?
            .copy_from_slice(bytes);
        Ok(())
    };
    put(&mut out, add(blob.offset, SALT_AT, "salt")?, &salt)?;
    put(&mut out, add(blob.offset, IV_AT, "iv")?, &iv)?;
    put(&mut out, range.start, &ct)?;
    let sig = {
        let whole = out
            .get(blob.range())
            .ok_or(KeychainError::Truncated("blob"))?;
        blob_signature(blob.version, &opened.signing, whole)?
    };
    put(&mut out, add(blob.offset, SIGNATURE_AT, "signature")?, &sig)?;

    // Self-check with the key already derived (no second PBKDF2).
    let new_blob = DbBlob {
        salt,
        iv,
        signature: sig,
        ..blob.clone()
    };
    let again = open_blob(&out, &new_blob, &mk)?
        .ok_or(KeychainError::Unverified("the new blob does not decrypt"))?;
    let same = again.encryption.ct_eq(&opened.encryption[..])
        & again.signing.ct_eq(&opened.signing[..])
        & again.private_acl.ct_eq(&opened.private_acl[..]);
    if !bool::from(same) {
        return Err(KeychainError::Unverified("the new blob holds other keys"));
    }
    Ok(out)
}

/// Re-encodes to `new` in form `to`: raw with a new salt, or indirect keeping the
/// salt (the lookup key of the entropy file).
fn reencode_to(
    file: &[u8],
    blob: &DbBlob,
    opened: &Opened,
    new: &[u8],
    entropy: Option<&[u8]>,
    to: Form,
) -> Result<Vec<u8>, KeychainError> {
    match to {
        Form::Raw => reencode(file, blob, opened, new, false),
        Form::Indirect => {
            let ip = indirect_passphrase(entropy.ok_or(KeychainError::NoEntropy)?, new)?;
            reencode(file, blob, opened, &ip[..], true)
        }
    }
}

/// Returns a new keychain image that opens with the raw password `new`: new random
/// 20-byte salt and 8-byte IV, same DB keys and ACLs, signature by version. All
/// other bytes and the size are unchanged.
///
/// # Errors
/// [`KeychainError::WrongPassword`] if `old` (raw) does not unlock the file;
/// [`KeychainError::SignatureMismatch`] if the existing signature does not verify
/// (nothing is produced); [`KeychainError::UnsupportedVersion`]; any parse error;
/// [`KeychainError::Crypto`] if the random generator fails.
pub fn rekey(file: &[u8], old: &[u8], new: &[u8]) -> Result<Vec<u8>, KeychainError> {
    rekey_to(file, old, new, None, Form::Raw)
}

/// Returns a new keychain image opened by `old` (raw, or indirect with `entropy`)
/// and re-keyed to `new` in form `to`: [`Form::Raw`] draws a new salt (the old
/// entropy file, if any, no longer applies and is left as it is);
/// [`Form::Indirect`] keeps the salt and needs `entropy`.
///
/// # Errors
/// As [`rekey`]; [`KeychainError::NoEntropy`] for [`Form::Indirect`] without
/// `entropy`.
pub fn rekey_to(
    file: &[u8],
    old: &[u8],
    new: &[u8],
    entropy: Option<&[u8]>,
    to: Form,
) -> Result<Vec<u8>, KeychainError> {
    let (blob, opened) = open(file, old, entropy)?;
    let (_, opened) = opened.ok_or(KeychainError::WrongPassword)?;
    reencode_to(file, &blob, &opened, new, entropy, to)
}

/// Returns a new keychain image re-keyed from a known 24-byte master key to the raw
/// password `new` (new salt and IV). For files whose master key, not password, is
/// known (test data, templates).
///
/// # Errors
/// [`KeychainError::WrongPassword`] if `master` does not unlock the file; otherwise
/// as [`rekey`].
pub fn rekey_from_master_key(
    file: &[u8],
    master: &[u8; 24],
    new: &[u8],
) -> Result<Vec<u8>, KeychainError> {
    let blob = find_db_blob(file)?;
    let opened = open_blob(file, &blob, master)?.ok_or(KeychainError::WrongPassword)?;
    reencode(file, &blob, &opened, new, false)
}

/// Re-keys `file` from `old` (raw, or indirect with `entropy`) to `new` in form
/// `to`, and proves, before returning, that: `new` opens the result in form `to`;
/// `old` opens it in no form (unless `old == new`); every generic-password item
/// decrypts to the same service, account and secret ([`ItemsDigest`]); and no byte
/// outside the DbBlob's salt, IV, signature and encrypted section changed.
///
/// # Errors
/// As [`rekey_to`]; the [`items_digest`] errors; [`KeychainError::Unverified`] if a
/// proof fails (nothing should then be written).
pub fn rekey_verified(
    file: &[u8],
    old: &[u8],
    new: &[u8],
    entropy: Option<&[u8]>,
    to: Form,
) -> Result<Vec<u8>, KeychainError> {
    let (blob, opened) = open(file, old, entropy)?;
    let (_, opened) = opened.ok_or(KeychainError::WrongPassword)?;
    let before = digest_items(file, &opened.encryption)?;
    let out = reencode_to(file, &blob, &opened, new, entropy, to)?;
    drop(opened);

    let (_, reopened) = open(&out, new, entropy)?;
    let reopened = match reopened {
        Some((form, o)) if form == to => o,
        _ => {
            return Err(KeychainError::Unverified(
                "the re-keyed image does not open with NEW",
            ))
        }
    };
    if !bool::from(old.ct_eq(new)) && check_form(&out, old, entropy)?.is_some() {
        return Err(KeychainError::Unverified(
            "the re-keyed image still opens with OLD",
        ));
    }
    if digest_items(&out, &reopened.encryption)? != before {
        return Err(KeychainError::Unverified(
            "its items would not decrypt the same after a re-key",
        ));
    }
    let owned = |i: usize| {
        let r = i.wrapping_sub(blob.offset);
        (SALT_AT..DB_BLOB_HEADER_LEN).contains(&r) || blob.crypto_range().contains(&i)
    };
    let kept = out.len() == file.len()
        && file
            .iter()
            .zip(&out)
            .enumerate()
            .all(|(i, (a, b))| a == b || owned(i));
    if !kept {
        return Err(KeychainError::Unverified(
            "bytes outside the database blob's key fields changed",
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Items

/// Calls `f(service, account, secret)` for every generic-password item, in file
/// order, within [`MAX_DECODED_BYTES`]. `service` and `account` are the raw
/// attribute bytes.
fn for_each_generic_password(
    file: &[u8],
    db_key: &[u8; 24],
    f: impl FnMut(&[u8], &[u8], &[u8]),
) -> Result<(), KeychainError> {
    for_each_generic_password_capped(file, db_key, MAX_DECODED_BYTES, f)
}

/// [`for_each_generic_password`] with a decoding budget of `cap` bytes.
fn for_each_generic_password_capped(
    file: &[u8],
    db_key: &[u8; 24],
    cap: usize,
    mut f: impl FnMut(&[u8], &[u8], &[u8]),
) -> Result<(), KeychainError> {
    let t = tables(file)?;
    let schema = schema_attributes(file, &t)?;

    // Item keys, indexed by "ssgp" + 16-byte label.
    let mut item_keys: HashMap<[u8; 20], Zeroizing<[u8; 24]>> = HashMap::new();
    let n_sym = schema.get(&TABLE_SYMMETRIC_KEY).map_or(0, Vec::len);
    for &off in records(&t, TABLE_SYMMETRIC_KEY) {
        let rec = record(file, off)?;
        // The key's "ssgp"+label index follows the KeyBlob (it is the record's Label
        // attribute), so pass everything from the blob start to the record end.
        let payload = rec
            .get(record_data_start(n_sym)?..)
            .ok_or(KeychainError::Truncated("key record"))?;
        if let Some((index, key)) = unwrap_item_key(payload, db_key)? {
            item_keys.insert(index, key);
        }
    }

    let attrs = schema
        .get(&TABLE_GENERIC_PASSWORD)
        .map_or(&[][..], |v| &v[..]);
    let idx_of = |fourcc: &[u8; 4]| attrs.iter().position(|&a| a == u32::from_be_bytes(*fourcc));
    let (svce, acct) = (idx_of(b"svce"), idx_of(b"acct"));
    let mut decoded: usize = 0;
    for &off in records(&t, TABLE_GENERIC_PASSWORD) {
        let rec = record(file, off)?;
        let data = record_data(rec, attrs.len())?;
        let (service, account) = (attr_bytes(rec, svce)?, attr_bytes(rec, acct)?);
        decoded = decoded
            .saturating_add(service.len())
            .saturating_add(account.len())
            .saturating_add(data.len());
        if decoded > cap {
            return Err(KeychainError::TooLarge);
        }
        let secret = decrypt_ssgp(data, &item_keys)?;
        f(service, account, &secret);
    }
    Ok(())
}

/// The [`ItemsDigest`] of the items under `db_key`.
fn digest_items(file: &[u8], db_key: &[u8; 24]) -> Result<ItemsDigest, KeychainError> {
    let mut h = Sha256::new();
    let mut count = 0usize;
    for_each_generic_password(file, db_key, |service, account, secret| {
        count += 1;
        h.update(b"item");
        for part in [service, account, secret] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        // Push the secret out of the hasher's block buffer.
        h.update([0u8; 64]);
    })?;
    h.update((count as u64).to_be_bytes());
    let mut digest = Zeroizing::new([0u8; 32]);
    digest.copy_from_slice(&h.finalize());
    Ok(ItemsDigest { count, digest })
}

/// Digest of every generic-password item of the keychain opened by `password`
/// (raw, or indirect with `entropy`): SHA-256 over each item's service, account
/// and secret, length-prefixed, in file order. Two images hold the same items
/// exactly when their digests are equal; no plaintext is kept.
///
/// # Errors
/// [`KeychainError::WrongPassword`]; the errors of [`check`];
/// [`KeychainError::Item`] if an item's key is missing or does not decrypt;
/// [`KeychainError::TooLarge`].
pub fn items_digest(
    file: &[u8],
    password: &[u8],
    entropy: Option<&[u8]>,
) -> Result<ItemsDigest, KeychainError> {
    let (_, opened) = open(file, password, entropy)?;
    let (_, opened) = opened.ok_or(KeychainError::WrongPassword)?;
    digest_items(file, &opened.encryption)
}

/// Decrypts every generic-password item opened by the raw `password`:
/// `(service, account, secret)`, with trailing NULs dropped from the attributes.
/// Prefer [`items_digest`] to compare keychains.
///
/// # Errors
/// As [`items_digest`].
pub fn decrypt_generic_passwords(
    file: &[u8],
    password: &[u8],
) -> Result<Vec<GenericPassword>, KeychainError> {
    let (_, opened) = open(file, password, None)?;
    let (_, opened) = opened.ok_or(KeychainError::WrongPassword)?;
    let text = |raw: &[u8]| {
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned()
    };
    let mut out = Vec::new();
    for_each_generic_password(file, &opened.encryption, |service, account, secret| {
        out.push((
            text(service),
            text(account),
            Zeroizing::new(secret.to_vec()),
        ));
    })?;
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
    let mut out = Zeroizing::new([0u8; 24]);
    out.copy_from_slice(key);
    Ok(Some((index, out)))
}

fn decrypt_ssgp(
    data: &[u8],
    item_keys: &HashMap<[u8; 20], Zeroizing<[u8; 24]>>,
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
    let plain =
        tdes_decrypt(&key[..], iv, ct).map_err(|_| KeychainError::Item("ssgp ciphertext"))?;
    unpad(plain).ok_or(KeychainError::Item("ssgp padding"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    /// moonD4rk/keychainbreaker's test keychain (0x100); its password.
    const SAMPLE_PW: &[u8] = b"keychainbreaker-test";
    /// moonD4rk/HackBrowserData's test keychain (0x200): published master key.
    const HBD_MASTER: &str = "6d43376c0d257bbaca2c41eded65b3b34a1a96bd19979bde";
    /// saveoursecrets/sdk's `sos-mock` keychain (0x200): its password.
    const SOS_PW: &[u8] = b"mock-password";

    fn data(rel: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn sample() -> Vec<u8> {
        data("samples/keychainbreaker-test.keychain-db")
    }

    fn hbd() -> Vec<u8> {
        data("samples/hackbrowserdata-test-0x200.keychain-db")
    }

    fn sos() -> Vec<u8> {
        data("samples/sos-mock-0x200.keychain-db")
    }

    fn hbd_master() -> [u8; 24] {
        hex::decode(HBD_MASTER).unwrap().try_into().unwrap()
    }

    fn hx(v: &Json, key: &str) -> Vec<u8> {
        hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
    }

    /// Items as comparable plaintexts (tests only).
    fn items(file: &[u8], pw: &[u8]) -> Vec<(String, String, Vec<u8>)> {
        decrypt_generic_passwords(file, pw)
            .unwrap()
            .into_iter()
            .map(|(s, a, p)| (s, a, p.to_vec()))
            .collect()
    }

    /// The digest of a file opened with a master key.
    fn digest_with_master(file: &[u8], master: &[u8; 24]) -> ItemsDigest {
        let blob = find_db_blob(file).unwrap();
        let o = open_blob(file, &blob, master).unwrap().unwrap();
        digest_items(file, &o.encryption).unwrap()
    }

    /// Indices of the bytes that differ.
    fn diffs(a: &[u8], b: &[u8]) -> Vec<usize> {
        assert_eq!(a.len(), b.len());
        (0..a.len()).filter(|&i| a[i] != b[i]).collect()
    }

    /// Every changed byte is the blob's salt, IV, signature or encrypted section.
    fn only_key_fields_changed(before: &[u8], after: &[u8]) {
        let blob = find_db_blob(before).unwrap();
        let d = diffs(before, after);
        assert!(!d.is_empty());
        for i in d {
            let r = i.wrapping_sub(blob.offset);
            assert!(
                (44..92).contains(&r) || blob.crypto_range().contains(&i),
                "byte {i} (blob +{r}) changed"
            );
        }
    }

    #[test]
    fn keychain_vectors() {
        let text = String::from_utf8(data("vectors/keychain.json")).unwrap();
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
            assert_eq!(&plain[..], &expect_plain[..], "{}", v["id"]);
            assert_eq!(padding_len(&plain), Some(4));
            assert_eq!(v["padding_len"].as_u64().unwrap(), 4);
            assert_eq!(plain[..24].to_vec(), hx(&v, "db_encryption_key_hex"));
            assert_eq!(plain[24..44].to_vec(), hx(&v, "db_signing_key_hex"));
            // Wrong password → no strong padding.
            let bad = master_key(b"wrong", &salt);
            let junk = tdes_decrypt(&bad[..], &iv, &ct).unwrap();
            assert!(padding_len(&junk).is_none_or(|n| n < STRONG_PADDING));
            // Re-encrypting reproduces the ciphertext.
            assert_eq!(tdes_encrypt(&mk[..], &iv, &plain).unwrap(), ct);
        }
    }

    #[test]
    fn finds_db_blob_in_sample() {
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        assert_eq!(blob.offset, 31812);
        assert_eq!(blob.version, VERSION_MACOS_10_0);
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

    /// The signing key of a blob, decrypted here without `open_blob`.
    fn signing_key(file: &[u8], master: &[u8; 24]) -> [u8; 20] {
        let blob = find_db_blob(file).unwrap();
        let plain = tdes_decrypt(master, &blob.iv, &file[blob.crypto_range()]).unwrap();
        plain[24..44].try_into().unwrap()
    }

    fn std_hmac(key: &[u8; 20], whole: &[u8]) -> [u8; 20] {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).unwrap();
        mac.update(&whole[..72]);
        mac.update(&whole[92..]);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn signature_algorithm_follows_the_version_on_real_files() {
        // 0x100: legacy, not standard.
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        let key = signing_key(&file, &master_key(SAMPLE_PW, &blob.salt));
        let whole = &file[blob.range()];
        assert_eq!(
            legacy_hmac_sha1(&key, &[&whole[..72], &whole[92..]]),
            blob.signature
        );
        assert_ne!(std_hmac(&key, whole), blob.signature);
        // 0x200 (HackBrowserData, master key): standard, not legacy.
        let file = hbd();
        let blob = find_db_blob(&file).unwrap();
        assert_eq!((blob.offset, blob.version), (96668, VERSION_PARTITION));
        let key = signing_key(&file, &hbd_master());
        let whole = &file[blob.range()];
        assert_eq!(std_hmac(&key, whole), blob.signature);
        assert_ne!(
            legacy_hmac_sha1(&key, &[&whole[..72], &whole[92..]]),
            blob.signature
        );
        // 0x200 (sos-mock, password): standard, not legacy.
        let file = sos();
        let blob = find_db_blob(&file).unwrap();
        let key = signing_key(&file, &master_key(SOS_PW, &blob.salt));
        let whole = &file[blob.range()];
        assert_eq!(std_hmac(&key, whole), blob.signature);
        assert_ne!(
            legacy_hmac_sha1(&key, &[&whole[..72], &whole[92..]]),
            blob.signature
        );
        // With one chunk the legacy form is plain HMAC-SHA1.
        let mut mac = Hmac::<Sha1>::new_from_slice(&key).unwrap();
        mac.update(b"abc");
        assert_eq!(
            legacy_hmac_sha1(&key, &[b"abc"]).to_vec(),
            mac.finalize().into_bytes().to_vec()
        );
    }

    #[test]
    fn vector_0x200_is_the_sos_mock_file_and_opens_with_its_password() {
        let text = String::from_utf8(data("vectors/keychain-0x200.json")).unwrap();
        let Json::Array(vectors) = serde_json::from_str(&text).unwrap() else {
            panic!("not an array")
        };
        let v = &vectors[0];
        let file = sos();
        let blob = find_db_blob(&file).unwrap();
        let at = v["blob_offset_in_file"].as_u64().unwrap() as usize;
        assert_eq!(blob.offset, at);
        assert_eq!(&file[blob.range()], &hx(v, "dbblob_hex")[..]);
        assert_eq!(blob.salt.to_vec(), hx(v, "salt_hex"));
        assert_eq!(blob.iv.to_vec(), hx(v, "iv_hex"));
        assert_eq!(blob.signature.to_vec(), hx(v, "signature_hex"));
        assert_eq!(
            u64::from(blob.start_crypto_blob),
            v["start_crypto_blob"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(blob.total_length),
            v["total_length"].as_u64().unwrap()
        );
        assert_eq!(blob.version, VERSION_PARTITION);
        let pw = v["password"].as_str().unwrap().as_bytes();
        assert_eq!(pw, SOS_PW);
        assert_eq!(check(&file, pw).unwrap(), KeychainCheck::Accepts);
        assert_eq!(
            check(&file, b"mock-passworD").unwrap(),
            KeychainCheck::Rejects
        );
        // The items its project's test expects.
        let got = items(&file, pw);
        assert!(
            got.iter()
                .any(|(_, a, p)| a == "test account" && p == b"mock-password-value"),
            "{:?}",
            got.iter().map(|(s, a, _)| (s, a)).collect::<Vec<_>>()
        );
        assert_eq!(got.len(), 2);
        assert!(got.iter().any(|(s, a, p)| s == "test password"
            && a == "test account"
            && p == b"mock-password-value"));
        // A secure note: a plist holding the text.
        let note = b"<string>mock-secure-note-value</string>";
        assert!(got
            .iter()
            .any(|(s, _, p)| s == "test note" && p.windows(note.len()).any(|w| w == note)));
    }

    #[test]
    fn sample_0x200_with_master_key_opens_and_rekeys_keeping_items() {
        let file = hbd();
        let before = digest_with_master(&file, &hbd_master());
        assert!(before.count() > 0);
        let out = rekey_from_master_key(&file, &hbd_master(), b"New-Passw0rd!").unwrap();
        assert_eq!(
            check(&out, b"New-Passw0rd!").unwrap(),
            KeychainCheck::Accepts
        );
        assert_eq!(items_digest(&out, b"New-Passw0rd!", None).unwrap(), before);
        assert!(open_blob(&out, &find_db_blob(&out).unwrap(), &hbd_master())
            .unwrap()
            .is_none());
        let (a, b) = (find_db_blob(&file).unwrap(), find_db_blob(&out).unwrap());
        assert_eq!(b.version, VERSION_PARTITION);
        assert_ne!((a.salt, a.iv), (b.salt, b.iv));
        only_key_fields_changed(&file, &out);
        // The params pad bytes (0xaaaaaa in this file) are kept: they are signed.
        assert_eq!(&out[b.offset + 41..b.offset + 44], &[0xaa; 3]);
        // The signature is standard HMAC-SHA1 under the unchanged signing key.
        let key = signing_key(&file, &hbd_master());
        assert_eq!(std_hmac(&key, &out[b.range()]), b.signature);
        // A wrong master key is refused.
        assert_eq!(
            rekey_from_master_key(&file, &[7; 24], b"x").unwrap_err(),
            KeychainError::WrongPassword
        );
    }

    #[test]
    fn sample_0x200_with_password_rekeys_keeping_items() {
        let file = sos();
        let before = items(&file, SOS_PW);
        let out = rekey_verified(&file, SOS_PW, b"New-Passw0rd!", None, Form::Raw).unwrap();
        assert_eq!(
            check(&out, b"New-Passw0rd!").unwrap(),
            KeychainCheck::Accepts
        );
        assert_eq!(check(&out, SOS_PW).unwrap(), KeychainCheck::Rejects);
        assert_eq!(items(&out, b"New-Passw0rd!"), before);
        only_key_fields_changed(&file, &out);
        assert_eq!(find_db_blob(&out).unwrap().version, VERSION_PARTITION);
    }

    #[test]
    fn template_0x200_opens_with_its_password() {
        let asset = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/login-template-0x200.keychain-db"
        ))
        .unwrap();
        let pw = crate::sim::scenarios::KEYCHAIN_TEMPLATE_0X200_PASSWORD.as_bytes();
        assert_eq!(check(&asset, pw).unwrap(), KeychainCheck::Accepts);
        assert_eq!(find_db_blob(&asset).unwrap().version, VERSION_PARTITION);
        // It is the HackBrowserData file re-keyed: same items, same other bytes.
        let hbd = hbd();
        assert_eq!(
            items_digest(&asset, pw, None).unwrap(),
            digest_with_master(&hbd, &hbd_master())
        );
        only_key_fields_changed(&hbd, &asset);
        // And it re-keys like any keychain.
        rekey_verified(&asset, pw, b"Other-Passw0rd", None, Form::Raw).unwrap();
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
        only_key_fields_changed(&file, &out);
        let blob = find_db_blob(&file).unwrap();
        let new_blob = find_db_blob(&out).unwrap();
        assert_eq!(new_blob.version, VERSION_MACOS_10_0);
        assert_ne!(new_blob.salt, blob.salt);
        assert_ne!(new_blob.iv, blob.iv);
        // Same DB keys → items unchanged.
        assert_eq!(items(&out, new_pw), items(&file, SAMPLE_PW));
        // Two re-keys use different salts.
        let out2 = rekey(&file, SAMPLE_PW, new_pw).unwrap();
        assert_ne!(find_db_blob(&out2).unwrap().salt, new_blob.salt);
    }

    #[test]
    fn rekey_refuses_wrong_password_and_bad_signature() {
        for (file, pw) in [(sample(), SAMPLE_PW), (sos(), SOS_PW)] {
            assert_eq!(
                rekey(&file, b"wrong", b"x").unwrap_err(),
                KeychainError::WrongPassword
            );
            let blob = find_db_blob(&file).unwrap();
            let mut tampered = file.clone();
            tampered[blob.offset + 72] ^= 1;
            assert_eq!(
                rekey(&tampered, pw, b"x").unwrap_err(),
                KeychainError::SignatureMismatch
            );
            // The public ACL, the sequence and the params pad bytes are signed too.
            for at in [100, 33, 42] {
                let mut tampered = file.clone();
                tampered[blob.offset + at] ^= 1;
                assert_eq!(
                    check(&tampered, pw).unwrap_err(),
                    KeychainError::SignatureMismatch,
                    "blob +{at}"
                );
            }
        }
    }

    #[test]
    fn other_versions_are_refused_and_the_version_picks_the_signature() {
        let mut file = sample();
        let blob = find_db_blob(&file).unwrap();
        for v in [0x101u32, 0x300, 0] {
            file[blob.offset + 4..blob.offset + 8].copy_from_slice(&v.to_be_bytes());
            assert_eq!(
                check(&file, SAMPLE_PW).unwrap_err(),
                KeychainError::UnsupportedVersion(v)
            );
            assert_eq!(
                rekey(&file, SAMPLE_PW, b"x").unwrap_err(),
                KeychainError::UnsupportedVersion(v)
            );
        }
        // A 0x100 file relabelled 0x200 no longer verifies (standard HMAC is
        // checked), and the other way round.
        file[blob.offset + 4..blob.offset + 8].copy_from_slice(&0x200u32.to_be_bytes());
        assert_eq!(
            check(&file, SAMPLE_PW).unwrap_err(),
            KeychainError::SignatureMismatch
        );
        let mut file = sos();
        let blob = find_db_blob(&file).unwrap();
        file[blob.offset + 4..blob.offset + 8].copy_from_slice(&0x100u32.to_be_bytes());
        assert_eq!(
            check(&file, SOS_PW).unwrap_err(),
            KeychainError::SignatureMismatch
        );
    }

    /// Rewrites the encrypted section of a real 48-byte blob to hold the keys and a
    /// 3-byte private ACL (pad 1, still 48 bytes), and re-signs it.
    fn with_private_acl(file: &[u8], master: &[u8; 24], acl: &[u8; 3]) -> Vec<u8> {
        let blob = find_db_blob(file).unwrap();
        let plain = tdes_decrypt(master, &blob.iv, &file[blob.crypto_range()]).unwrap();
        let mut p = plain[..44].to_vec();
        p.extend_from_slice(acl);
        p.push(1);
        let ct = tdes_encrypt(master, &blob.iv, &p).unwrap();
        let mut out = file.to_vec();
        out[blob.crypto_range()].copy_from_slice(&ct);
        let key: [u8; 20] = p[24..44].try_into().unwrap();
        let sig = blob_signature(blob.version, &key, &out[blob.range()]).unwrap();
        out[blob.offset + 72..blob.offset + 92].copy_from_slice(&sig);
        out
    }

    #[test]
    fn rekey_keeps_the_private_acl_after_the_key_bytes() {
        let file = with_private_acl(&hbd(), &hbd_master(), b"acl");
        let blob = find_db_blob(&file).unwrap();
        let o = open_blob(&file, &blob, &hbd_master()).unwrap().unwrap();
        assert_eq!(&o.private_acl[..], b"acl");
        let out = rekey_from_master_key(&file, &hbd_master(), b"New").unwrap();
        let nb = find_db_blob(&out).unwrap();
        let mk = master_key(b"New", &nb.salt);
        let plain = tdes_decrypt(&mk[..], &nb.iv, &out[nb.crypto_range()]).unwrap();
        assert_eq!(&plain[44..], b"acl\x01");
        assert_eq!(
            &plain[..44],
            &tdes_decrypt(&hbd_master(), &blob.iv, &file[blob.crypto_range()]).unwrap()[..44]
        );
        // The items are still there.
        assert_eq!(
            items_digest(&out, b"New", None).unwrap(),
            digest_with_master(&hbd(), &hbd_master())
        );
        only_key_fields_changed(&file, &out);
    }

    #[test]
    fn encrypted_sections_of_other_lengths_are_refused() {
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        // 40 bytes (too short) and 44 (not whole blocks).
        for start in [128u32, 124] {
            let mut f = file.clone();
            f[blob.offset + 8..blob.offset + 12].copy_from_slice(&start.to_be_bytes());
            assert!(matches!(
                check(&f, SAMPLE_PW).unwrap_err(),
                KeychainError::BadLayout(_)
            ));
        }
    }

    // -- macOS 26 indirect form ---------------------------------------------

    const ENTROPY: [u8; 32] = *b"made-up entropy, 32 bytes long!!";

    /// A real 0x200 keychain (HackBrowserData) with a known password.
    fn raw_0x200(pw: &[u8]) -> Vec<u8> {
        rekey_from_master_key(&hbd(), &hbd_master(), pw).unwrap()
    }

    #[test]
    fn indirect_passphrase_is_hmac_sha256_of_the_password_keyed_by_entropy() {
        // Computed here with the primitives, as transition.cpp does.
        let mut mac = Hmac::<Sha256>::new_from_slice(&ENTROPY).unwrap();
        mac.update(b"pw");
        let expect: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(*indirect_passphrase(&ENTROPY, b"pw").unwrap(), expect);
        assert_ne!(*indirect_passphrase(&ENTROPY, b"pW").unwrap(), expect);
        assert_eq!(
            indirect_passphrase(&[], b"pw").unwrap_err(),
            KeychainError::NoEntropy
        );
    }

    #[test]
    fn indirect_keychain_is_checked_both_ways_and_rekeyed_both_ways() {
        let old = b"Old-Passw0rd";
        let new = b"New-Passw0rd";
        let raw = raw_0x200(old);
        let want = items_digest(&raw, old, None).unwrap();
        // What securityd does on macOS 26: same salt, indirect passphrase.
        let ind = rekey_to(&raw, old, old, Some(&ENTROPY), Form::Indirect).unwrap();
        let (rb, ib) = (find_db_blob(&raw).unwrap(), find_db_blob(&ind).unwrap());
        assert_eq!(rb.salt, ib.salt);
        assert_eq!(
            system_keys_file_name(&raw).unwrap(),
            system_keys_file_name(&ind).unwrap()
        );
        only_key_fields_changed(&raw, &ind);
        // The master key is PBKDF2 over the 32 raw HMAC bytes (independent path).
        let mut mac = Hmac::<Sha256>::new_from_slice(&ENTROPY).unwrap();
        mac.update(old);
        let ip: [u8; 32] = mac.finalize().into_bytes().into();
        let mut mk = [0u8; 24];
        pbkdf2::pbkdf2_hmac::<Sha1>(&ip, &ib.salt, 1000, &mut mk);
        assert!(open_blob(&ind, &ib, &mk).unwrap().is_some());
        // Checked both ways.
        assert_eq!(
            check_form(&ind, old, Some(&ENTROPY)).unwrap(),
            Some(Form::Indirect)
        );
        assert_eq!(check_form(&ind, old, None).unwrap(), None);
        assert_eq!(check(&ind, old).unwrap(), KeychainCheck::Rejects);
        assert_eq!(check_form(&ind, new, Some(&ENTROPY)).unwrap(), None);
        assert_eq!(check_form(&ind, old, Some(b"other entropy")).unwrap(), None);
        assert_eq!(
            check_form(&raw, old, Some(&ENTROPY)).unwrap(),
            Some(Form::Raw)
        );
        assert_eq!(items_digest(&ind, old, Some(&ENTROPY)).unwrap(), want);

        // (a) raw NEW, new salt: fvsync's choice.
        let a = rekey_verified(&ind, old, new, Some(&ENTROPY), Form::Raw).unwrap();
        assert_ne!(find_db_blob(&a).unwrap().salt, ib.salt);
        assert_eq!(
            check_form(&a, new, Some(&ENTROPY)).unwrap(),
            Some(Form::Raw)
        );
        assert_eq!(check_form(&a, old, Some(&ENTROPY)).unwrap(), None);
        assert_eq!(items_digest(&a, new, None).unwrap(), want);
        only_key_fields_changed(&ind, &a);

        // (b) indirect NEW, same salt.
        let b = rekey_verified(&ind, old, new, Some(&ENTROPY), Form::Indirect).unwrap();
        assert_eq!(find_db_blob(&b).unwrap().salt, ib.salt);
        assert_eq!(
            check_form(&b, new, Some(&ENTROPY)).unwrap(),
            Some(Form::Indirect)
        );
        assert_eq!(check_form(&b, new, None).unwrap(), None);
        assert_eq!(check_form(&b, old, Some(&ENTROPY)).unwrap(), None);
        assert_eq!(items_digest(&b, new, Some(&ENTROPY)).unwrap(), want);

        // The indirect form needs the entropy.
        assert_eq!(
            rekey_to(&raw, old, new, None, Form::Indirect).unwrap_err(),
            KeychainError::NoEntropy
        );
        assert_eq!(
            rekey_verified(&ind, old, new, None, Form::Raw).unwrap_err(),
            KeychainError::WrongPassword
        );
    }

    #[test]
    fn system_keys_file_name_is_the_uppercase_hex_salt() {
        assert_eq!(
            system_keys_file_name(&hbd()).unwrap(),
            "82800D1582D540E2936503904B78EFF6E4E20E6B"
        );
        assert_eq!(
            system_keys_file_name(b"junk").unwrap_err(),
            KeychainError::NotKeychain
        );
    }

    /// [`ENTROPY`] as securityd's `CFPropertyListWrite(..., kCFPropertyListXMLFormat_v1_0)` writes it.
    const ENTROPY_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">
<plist version=\"1.0\">
<data>
bWFkZS11cCBlbnRyb3B5LCAzMiBieXRlcyBsb25nISE=
</data>
</plist>
";

    fn xml_plist(v: plist::Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_xml(&mut out).unwrap();
        out
    }

    fn binary_plist(v: plist::Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_binary(&mut out).unwrap();
        out
    }

    #[test]
    fn system_keys_entropy_files_are_parsed_leniently_but_bounded() {
        assert_eq!(
            &parse_system_keys_entropy(ENTROPY_XML.as_bytes()).unwrap()[..],
            &ENTROPY
        );
        let xml = xml_plist(plist::Value::Data(ENTROPY.to_vec()));
        assert_eq!(&parse_system_keys_entropy(&xml).unwrap()[..], &ENTROPY);
        // Binary form, short and long (length as an integer object).
        let bin = binary_plist(plist::Value::Data(ENTROPY.to_vec()));
        assert_eq!(&parse_system_keys_entropy(&bin).unwrap()[..], &ENTROPY);
        let bin = binary_plist(plist::Value::Data(vec![9; 5]));
        assert_eq!(&parse_system_keys_entropy(&bin).unwrap()[..], &[9; 5]);
        let bin = binary_plist(plist::Value::Data(vec![7; 300]));
        assert_eq!(&parse_system_keys_entropy(&bin).unwrap()[..], &[7; 300][..]);
        // securityd refuses any root but data; so does this.
        let mut d = plist::Dictionary::new();
        d.insert("entropy".into(), plist::Value::Data(ENTROPY.to_vec()));
        for bad in [
            binary_plist(plist::Value::Dictionary(d.clone())),
            xml_plist(plist::Value::Dictionary(d)),
            binary_plist(plist::Value::String("x".into())),
            xml_plist(plist::Value::Data(Vec::new())),
            xml_plist(plist::Value::Data(vec![1; 1025])),
            b"not a plist".to_vec(),
            b"bplist00".to_vec(),
            vec![b' '; MAX_ENTROPY_FILE_LEN + 1],
            Vec::new(),
        ] {
            assert!(
                matches!(
                    parse_system_keys_entropy(&bad),
                    Err(KeychainError::BadEntropy(_))
                ),
                "{}",
                String::from_utf8_lossy(&bad[..bad.len().min(60)])
            );
        }
        // A binary plist whose objects share children (object k is an array of two
        // references to object k + 1: a tree of 2^60 leaves in 1 KiB) is refused
        // at its root without being expanded.
        let shared = {
            let mut objects: Vec<Vec<u8>> = (1..=60u8).map(|k| vec![0xA2, k, k]).collect();
            objects.push(vec![0x41, 7]);
            let mut f = b"bplist00".to_vec();
            let mut offsets = Vec::new();
            for o in &objects {
                offsets.push(f.len() as u16);
                f.extend_from_slice(o);
            }
            let table = f.len() as u64;
            for o in offsets {
                f.extend_from_slice(&o.to_be_bytes());
            }
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&[2, 1]);
            f.extend_from_slice(&(objects.len() as u64).to_be_bytes());
            f.extend_from_slice(&0u64.to_be_bytes());
            f.extend_from_slice(&table.to_be_bytes());
            f
        };
        assert!(shared.len() < 1024);
        let start = std::time::Instant::now();
        assert_eq!(
            parse_system_keys_entropy(&shared).unwrap_err(),
            KeychainError::BadEntropy("the root object is not data")
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // The same file with its last object as the root is accepted: the
        // hand-made binary plist is well formed.
        let mut last = shared.clone();
        let n = last.len();
        last[n - 16..n - 8].copy_from_slice(&60u64.to_be_bytes());
        assert_eq!(&parse_system_keys_entropy(&last).unwrap()[..], &[7]);
        // Truncations and corruptions of a valid binary file never panic.
        let bin = binary_plist(plist::Value::Data(ENTROPY.to_vec()));
        for n in 0..bin.len() {
            let _ = parse_system_keys_entropy(&bin[..n]);
            for x in [0u8, 0x0f, 0x4f, 0xff] {
                let mut f = bin.clone();
                f[n] = x;
                let _ = parse_system_keys_entropy(&f);
            }
        }
    }

    // -- hostile files --------------------------------------------------------

    /// A `kych` file with a schema-attributes table (generic-password → `svce`)
    /// and a generic-password table of `slots` slots all pointing at one record
    /// whose `svce` attribute is `attr_len` bytes.
    fn crafted(slots: usize, attr_len: usize) -> Vec<u8> {
        let be = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
        let record = |attrs: &[&[u8]], data: &[u8]| {
            // header: size, number, create version, record version, data size, semantic
            let mut body = Vec::new();
            let head = RECORD_HEADER_LEN + 4 * attrs.len();
            let mut offsets = Vec::new();
            let mut pos = head + data.len();
            for a in attrs {
                offsets.push(pos as u32 + 1);
                let mut v = Vec::new();
                be(&mut v, a.len() as u32);
                v.extend_from_slice(a);
                while v.len() % 4 != 0 {
                    v.push(0);
                }
                pos += v.len();
                body.extend(v);
            }
            let mut r = Vec::new();
            be(&mut r, pos as u32);
            be(&mut r, 0);
            be(&mut r, 0);
            be(&mut r, 0);
            be(&mut r, data.len() as u32);
            be(&mut r, 0);
            for o in offsets {
                be(&mut r, o);
            }
            r.extend_from_slice(data);
            r.extend(body);
            r
        };
        let table = |id: u32, slot_offsets: &[u32], recs: &[u8]| {
            let mut t = Vec::new();
            let size = TABLE_HEADER_LEN + 4 * slot_offsets.len() + recs.len();
            for x in [size as u32, id, 0, 0, 0, 0, slot_offsets.len() as u32] {
                be(&mut t, x);
            }
            for &o in slot_offsets {
                be(&mut t, o);
            }
            t.extend_from_slice(recs);
            t
        };
        // Schema attribute values are u32s (relation id, attribute id).
        let schema_rec = {
            let mut r = Vec::new();
            be(&mut r, (RECORD_HEADER_LEN + 8 + 8) as u32);
            for x in [0u32, 0, 0, 0, 0] {
                be(&mut r, x);
            }
            be(&mut r, (RECORD_HEADER_LEN + 8) as u32 + 1);
            be(&mut r, (RECORD_HEADER_LEN + 12) as u32 + 1);
            be(&mut r, TABLE_GENERIC_PASSWORD);
            be(&mut r, u32::from_be_bytes(*b"svce"));
            r
        };
        let t1 = table(
            TABLE_SCHEMA_ATTRIBUTES,
            &[TABLE_HEADER_LEN as u32 + 4],
            &schema_rec,
        );
        let big = record(&[&vec![b'A'; attr_len]], b"ssgp");
        let first = (TABLE_HEADER_LEN + 4 * slots) as u32;
        let t2 = table(TABLE_GENERIC_PASSWORD, &vec![first; slots], &big);
        let mut f = b"kych".to_vec();
        be(&mut f, 0x0001_0000);
        be(&mut f, 16);
        be(&mut f, 16); // schema offset
        let schema_len = 16u32; // size, count, two table offsets
        be(&mut f, schema_len);
        be(&mut f, 2);
        be(&mut f, schema_len);
        be(&mut f, schema_len + t1.len() as u32);
        f.extend(t1);
        f.extend(t2);
        f
    }

    #[test]
    fn crafted_file_with_a_million_slots_on_one_big_attribute_fails_fast() {
        // The shape parses (one slot): the failures below are the repeats.
        let one = crafted(1, 1000);
        let t = tables(&one).unwrap();
        assert_eq!(records(&t, TABLE_GENERIC_PASSWORD).len(), 1);
        let schema = schema_attributes(&one, &t).unwrap();
        assert_eq!(
            schema[&TABLE_GENERIC_PASSWORD],
            vec![u32::from_be_bytes(*b"svce")]
        );
        assert_eq!(find_db_blob(&one).unwrap_err(), KeychainError::NoDbBlob);

        let hwm = || -> Option<u64> {
            let s = std::fs::read_to_string("/proc/self/status").ok()?;
            let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            l.split_whitespace().nth(1)?.parse().ok()
        };
        let file = crafted(1_000_000, 12 * 1024 * 1024);
        assert!(
            file.len() > 16_000_000 && file.len() < 17 << 20,
            "{}",
            file.len()
        );
        let start = std::time::Instant::now();
        for r in [
            find_db_blob(&file).map(|_| ()),
            check(&file, b"x").map(|_| ()),
            items_digest(&file, b"x", None).map(|_| ()),
            decrypt_generic_passwords(&file, b"x").map(|_| ()),
        ] {
            assert_eq!(r.unwrap_err(), KeychainError::TooManyRecords);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        if let Some(kib) = hwm() {
            // The old code asked for ~12 TB; the whole test binary stays far below 1 GiB.
            assert!(kib < 1 << 20, "peak {kib} KiB");
        }
        // Under the record cap, the repeats are refused as such.
        let file = crafted(1000, 1 << 20);
        assert_eq!(
            tables(&file).unwrap_err(),
            KeychainError::OverlappingRecords
        );
        // A record running past its table is refused too.
        let mut file = crafted(1, 64);
        let t2 = {
            let schema = 16usize;
            schema + be32(&file, schema + 12, "t").unwrap() as usize
        };
        let rec = t2 + TABLE_HEADER_LEN + 4;
        let size = be32(&file, rec, "r").unwrap() + 4;
        file[rec..rec + 4].copy_from_slice(&size.to_be_bytes());
        file.extend_from_slice(&[0; 4]);
        assert_eq!(
            tables(&file).unwrap_err(),
            KeychainError::OverlappingRecords
        );
    }

    #[test]
    fn real_files_have_no_overlapping_records() {
        for f in [sample(), hbd(), sos()] {
            let t = tables(&f).unwrap();
            assert!(t.iter().map(|t| t.records.len()).sum::<usize>() > 10);
        }
    }

    #[test]
    fn decoding_is_capped() {
        let file = sample();
        let blob = find_db_blob(&file).unwrap();
        let o = open_blob(&file, &blob, &master_key(SAMPLE_PW, &blob.salt))
            .unwrap()
            .unwrap();
        let mut n = 0;
        for_each_generic_password_capped(&file, &o.encryption, usize::MAX, |_, _, _| n += 1)
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            for_each_generic_password_capped(&file, &o.encryption, 40, |_, _, _| ()).unwrap_err(),
            KeychainError::TooLarge
        );
    }

    #[test]
    fn items_digest_tracks_every_secret() {
        let file = sample();
        let d = items_digest(&file, SAMPLE_PW, None).unwrap();
        assert_eq!(d.count(), 2);
        assert_eq!(format!("{d:?}"), "ItemsDigest { count: 2, .. }");
        assert_eq!(
            items_digest(&file, b"nope", None).unwrap_err(),
            KeychainError::WrongPassword
        );
        assert_ne!(d, items_digest(&sos(), SOS_PW, None).unwrap());
        // Flip the first ciphertext byte of each item in turn: its secret changes
        // (the padding, in the last block, survives), and so does the digest.
        let t = tables(&file).unwrap();
        let schema = schema_attributes(&file, &t).unwrap();
        let n_attrs = schema[&TABLE_GENERIC_PASSWORD].len();
        for &off in records(&t, TABLE_GENERIC_PASSWORD) {
            let rec = record(&file, off).unwrap();
            assert!(record_data(rec, n_attrs).unwrap().len() >= 28 + 16);
            let at = off + record_data_start(n_attrs).unwrap() + 28;
            let mut f = file.clone();
            f[at] ^= 0x80;
            let changed = items_digest(&f, SAMPLE_PW, None).unwrap();
            assert_eq!(changed.count(), 2);
            assert_ne!(changed, d);
        }
    }

    #[test]
    fn rekey_verified_proves_new_only_and_same_items() {
        let file = sample();
        let out = rekey_verified(&file, SAMPLE_PW, b"New", None, Form::Raw).unwrap();
        assert_eq!(check(&out, b"New").unwrap(), KeychainCheck::Accepts);
        assert_eq!(check(&out, SAMPLE_PW).unwrap(), KeychainCheck::Rejects);
        only_key_fields_changed(&file, &out);
        // OLD == NEW: a fresh salt, still opening with it.
        let same = rekey_verified(&file, SAMPLE_PW, SAMPLE_PW, None, Form::Raw).unwrap();
        assert_eq!(check(&same, SAMPLE_PW).unwrap(), KeychainCheck::Accepts);
        assert_ne!(
            find_db_blob(&same).unwrap().salt,
            find_db_blob(&file).unwrap().salt
        );
        assert_eq!(
            rekey_verified(&file, b"wrong", b"New", None, Form::Raw).unwrap_err(),
            KeychainError::WrongPassword
        );
        // An item that does not decrypt stops it (nothing to write).
        let t = tables(&file).unwrap();
        let n_attrs = schema_attributes(&file, &t).unwrap()[&TABLE_GENERIC_PASSWORD].len();
        let off = records(&t, TABLE_GENERIC_PASSWORD)[0];
        let mut f = file.clone();
        f[off + record_data_start(n_attrs).unwrap()] = b'x'; // "ssgp" → "xsgp"
        assert!(matches!(
            rekey_verified(&f, SAMPLE_PW, b"New", None, Form::Raw).unwrap_err(),
            KeychainError::Item(_)
        ));
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
        for f in [file.clone(), hbd()] {
            // Every truncation point fails cleanly (find_db_blob avoids PBKDF2 cost).
            let blob_end = find_db_blob(&f).unwrap().range().end;
            for n in 0..f.len() {
                let r = find_db_blob(&f[..n]);
                if n < blob_end {
                    assert!(r.is_err(), "prefix {n}");
                }
            }
        }
        // Pseudo-random corruption of header/table bytes never panics.
        let mut state = 0x1234_5678u32;
        for (f0, pw) in [(file.clone(), SAMPLE_PW), (sos(), SOS_PW)] {
            for _ in 0..1500 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let mut f = f0.clone();
                let pos = (state as usize) % f.len();
                f[pos] = (state >> 16) as u8;
                let _ = find_db_blob(&f);
                let _ = check_form(&f, pw, Some(&ENTROPY));
                let _ = items_digest(&f, pw, None);
                let _ = decrypt_generic_passwords(&f, pw);
            }
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
    }
}
