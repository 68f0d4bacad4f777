//! `fvsync sim create`: builds a simulated Mac for one scenario, with real
//! formats: binary-plist user records with ShadowHashData for the scenario's
//! passwords, APFS-style wrapped KEKs, a Preboot user list, and real
//! `login.keychain-db` files.
//!
//! The passwords are documented (README, docs/simulated-mac.md): they exist so
//! that people and tests can rehearse; they are test data, not secrets.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use plist::{Data, Dictionary, Value};

use super::{
    AttemptCounter, ContainerDesc, GroupDesc, GroupMember, Keybag, KeybagUser, MacFile, VolumeDesc,
    ENCLAVE_FILE, FORMAT_VERSION, KEYBAGS_DIR, MAC_FILE, VOLUMES_DIR,
};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::record::{GROUPS_DIR, USERS_DIR};

/// alice's OLD password.
pub const ALICE_OLD: &str = "Old-Passw0rd!";
/// alice's NEW password (the current directory password).
pub const ALICE_NEW: &str = "New-Passw0rd!";
/// bob's password.
pub const BOB: &str = "Bob-Passw0rd!";
/// itadmin's password.
pub const ITADMIN: &str = "Admin-Passw0rd!";
/// The personal recovery key of every simulated FileVault volume.
pub const RECOVERY_KEY: &str = "RK7Q-2M9X-HT4D-PL8C-WN3F-ZB6J";
/// Personal Recovery key's fixed crypto-user UUID.
pub const PERSONAL_RECOVERY_UUID: &str = "EBC6C064-0000-11AA-AA11-00306543ECAC";

/// GeneratedUIDs of the simulated users.
pub const ALICE_UUID: &str = "A11CE000-1D2E-4F3A-9B8C-0123456789AB";
/// bob's GeneratedUID.
pub const BOB_UUID: &str = "B0B00000-2E3F-4A5B-8C9D-123456789ABC";
/// itadmin's GeneratedUID.
pub const ITADMIN_UUID: &str = "ADA11000-3F4A-4B5C-9DAE-23456789ABCD";

/// The simulated Mac's hardware UUID (names the Local Items keychain folder).
pub const HARDWARE_UUID: &str = "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0";

/// The Secure Enclave's limit in recoveryOS, per Apple's T2 guide.
pub const ATTEMPT_LIMIT: u64 = 10;

/// Where a secret of alice's stands in a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// Accepts OLD.
    Old,
    /// Accepts NEW.
    New,
}

/// One scenario.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Name given to `--scenario`.
    pub name: &'static str,
    /// One line for `sim scenarios`.
    pub summary: &'static str,
    /// alice's FileVault passphrase; `None` when she is not a crypto user.
    pub filevault: Option<On>,
    /// alice's login password.
    pub login: On,
    /// alice's login keychain password.
    pub keychain: On,
    /// The Data volume is FileVault-encrypted.
    pub filevault_on: bool,
    /// An external container with a second Data volume.
    pub multi_volume: bool,
    /// Only one more failed FileVault attempt is allowed on alice's volume.
    pub throttled: bool,
    /// alice's record holds only a hash scheme fvsync does not know.
    pub unknown_hash: bool,
    /// The Data volume is encrypted (always on T2 and Apple silicon, FileVault
    /// or not): it has a keybag and crypto users.
    pub encrypted: bool,
    /// alice's login keychain is a DbBlob 0x100 one (a Mac from before 10.12).
    pub legacy_keychain: bool,
    /// alice's login keychain uses macOS 26's indirect passphrase (with a
    /// SystemKeys entropy file).
    pub indirect_keychain: bool,
    /// alice's Preboot entries show her old full name and hint.
    pub stale_preboot: bool,
}

const fn sc(
    name: &'static str,
    summary: &'static str,
    fv: Option<On>,
    login: On,
    kc: On,
) -> Scenario {
    Scenario {
        name,
        summary,
        filevault: fv,
        login,
        keychain: kc,
        filevault_on: true,
        multi_volume: false,
        throttled: false,
        unknown_hash: false,
        encrypted: true,
        legacy_keychain: false,
        indirect_keychain: false,
        stale_preboot: false,
    }
}

/// Every scenario, in the order `sim scenarios` lists them.
pub const SCENARIOS: &[Scenario] = &[
    sc(
        "in-sync",
        "FileVault, login and keychain all accept NEW",
        Some(On::New),
        On::New,
        On::New,
    ),
    sc(
        "fv-old-login-new",
        "the common case: FileVault accepts OLD; login and keychain want NEW",
        Some(On::Old),
        On::New,
        On::New,
    ),
    sc(
        "all-old",
        "the directory changed while the Mac was off: FileVault, login and keychain on OLD",
        Some(On::Old),
        On::Old,
        On::Old,
    ),
    sc(
        "keychain-old",
        "FileVault and login NEW, keychain OLD",
        Some(On::New),
        On::New,
        On::Old,
    ),
    sc(
        "login-old-fv-new",
        "FileVault NEW, login and keychain OLD",
        Some(On::New),
        On::Old,
        On::Old,
    ),
    sc(
        "not-a-filevault-user",
        "alice is no FileVault user (no SecureToken); bob and itadmin are",
        None,
        On::Old,
        On::Old,
    ),
    Scenario {
        filevault_on: false,
        encrypted: false,
        ..sc(
            "filevault-off",
            "the Data volume is not encrypted; alice's login is OLD",
            None,
            On::Old,
            On::Old,
        )
    },
    Scenario {
        filevault_on: false,
        ..sc(
            "securetoken-fv-off",
            "FileVault off, the Data volume encrypted anyway (T2, Apple silicon): alice's SecureToken, login and keychain on OLD",
            Some(On::Old),
            On::Old,
            On::Old,
        )
    },
    Scenario {
        legacy_keychain: true,
        ..sc(
            "legacy-keychain",
            "as all-old, with a DbBlob 0x100 login keychain (a Mac set up before macOS 10.12)",
            Some(On::Old),
            On::Old,
            On::Old,
        )
    },
    Scenario {
        indirect_keychain: true,
        ..sc(
            "keychain-macos26",
            "as all-old, with a macOS 26 login keychain on an indirect passphrase (SystemKeys)",
            Some(On::Old),
            On::Old,
            On::Old,
        )
    },
    Scenario {
        multi_volume: true,
        ..sc(
            "multi-volume",
            "an internal and an external container, each with a FileVault Data volume",
            Some(On::Old),
            On::New,
            On::New,
        )
    },
    Scenario {
        throttled: true,
        ..sc(
            "throttled",
            "as fv-old-login-new, but alice's volume allows only one more failed attempt",
            Some(On::Old),
            On::New,
            On::New,
        )
    },
    Scenario {
        unknown_hash: true,
        ..sc(
            "unknown-hash",
            "alice's record holds only the Mac OS X 10.7 hash (SALTED-SHA512), for NEW",
            Some(On::Old),
            On::New,
            On::New,
        )
    },
    Scenario {
        stale_preboot: true,
        ..sc(
            "stale-preboot",
            "every secret on NEW, but alice's Preboot entries show her old full name and hint",
            Some(On::New),
            On::New,
            On::New,
        )
    },
];

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Iteration counts used for the scenario's secrets.
#[derive(Clone, Copy, Debug)]
pub struct Iterations {
    /// SALTED-SHA512-PBKDF2.
    pub salted: u32,
    /// SRP-RFC5054-4096-SHA512-PBKDF2.
    pub srp: u32,
    /// The APFS KEK wrapping (PBKDF2-HMAC-SHA256).
    pub kek: u32,
    /// The floor the Mac declares for new hashes (`None`: fvsync's real one).
    pub floor: Option<u32>,
}

impl Iterations {
    /// Counts seen on a real 2026 Mac (ShadowHashData) and a typical KEK count.
    pub const REALISTIC: Iterations = Iterations {
        salted: 121_951,
        srp: 136_986,
        kek: 100_000,
        floor: None,
    };

    /// The same count everywhere (fast test Macs).
    pub fn all(n: u32) -> Self {
        Iterations {
            salted: n,
            srp: n,
            kek: n,
            floor: Some(n),
        }
    }
}

fn pw_for(on: On) -> &'static str {
    match on {
        On::Old => ALICE_OLD,
        On::New => ALICE_NEW,
    }
}

struct SimUser {
    name: &'static str,
    real_name: &'static str,
    uid: u32,
    uuid: &'static str,
    admin: bool,
    login: &'static str,
    keychain: &'static str,
    keychain_kind: KeychainKind,
    filevault: Option<&'static str>,
    unknown_hash: bool,
}

fn fail(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Failure,
        format!("cannot create the simulated Mac: {what}"),
    )
}

fn arr(s: &str) -> Value {
    Value::Array(vec![Value::String(s.to_string())])
}

fn account_policy(now: f64) -> Result<Value> {
    let mut d = Dictionary::new();
    d.insert("creationTime".into(), Value::Real(now - 86_400.0 * 400.0));
    d.insert("failedLoginCount".into(), Value::Integer(0.into()));
    d.insert("failedLoginTimestamp".into(), Value::Integer(0.into()));
    d.insert(
        "passwordLastSetTime".into(),
        Value::Real(now - 86_400.0 * 90.0),
    );
    let mut buf = Vec::new();
    Value::Dictionary(d).to_writer_xml(&mut buf).map_err(fail)?;
    Ok(Value::Array(vec![Value::Data(buf)]))
}

fn user_record(u: &SimUser, it: Iterations, now: f64) -> Result<Vec<u8>> {
    let mut d = Dictionary::new();
    d.insert("name".into(), arr(u.name));
    d.insert("realname".into(), arr(u.real_name));
    d.insert("uid".into(), arr(&u.uid.to_string()));
    d.insert("gid".into(), arr("20"));
    d.insert("generateduid".into(), arr(u.uuid));
    d.insert("home".into(), arr(&format!("/Users/{}", u.name)));
    d.insert("shell".into(), arr("/bin/zsh"));
    d.insert("passwd".into(), arr("********"));
    d.insert("hint".into(), arr(""));
    let (shadow, hashlist) = if u.unknown_hash {
        // The Lion-era SALTED-SHA512: 4-byte salt + SHA-512(salt || password).
        use sha2::Digest;
        let salt: [u8; 4] = crate::crypto::random_bytes().map_err(fail)?;
        let mut h = sha2::Sha512::new();
        h.update(salt);
        h.update(u.login.as_bytes());
        let mut blob = salt.to_vec();
        blob.extend_from_slice(&h.finalize());
        let mut inner = Dictionary::new();
        inner.insert("SALTED-SHA512".into(), Value::Data(blob));
        let mut bytes = Vec::new();
        Value::Dictionary(inner)
            .to_writer_binary(&mut bytes)
            .map_err(fail)?;
        (
            Value::Array(vec![Value::Data(bytes)]),
            ";ShadowHash;HASHLIST:<SALTED-SHA512>".to_string(),
        )
    } else {
        let sh = crate::formats::shadowhash::generate(u.login.as_bytes(), it.salted, it.srp)
            .map_err(fail)?;
        let names = sh.scheme_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        (
            sh.to_attribute().map_err(fail)?,
            crate::formats::shadowhash::hashlist_authority(&names),
        )
    };
    d.insert("ShadowHashData".into(), shadow);
    let mut aa = vec![Value::String(hashlist)];
    if u.filevault.is_some() {
        aa.push(Value::String(";SecureToken;".into()));
    }
    // The local KDC's keys (LKDC), as macOS makes them for every local user:
    // one hdb_keyset_aapl with aes256, aes128 and des3 keys salted with
    // realm ‖ name, and the matching Kerberos authority.
    // Its SRP verifiers (HeimdalSRPKey) for the same principal and password.
    if !u.unknown_hash {
        let authority = format!(";Kerberosv5;;{}@{LKDC_REALM};{LKDC_REALM};", u.name);
        let keys = kerberos_keys(u.name, u.login)?;
        let srp = heimdal_srp_keys(&authority, &keys, u.login)?;
        aa.push(Value::String(authority));
        d.insert("KerberosKeys".into(), Value::Array(vec![Value::Data(keys)]));
        d.insert(
            "HeimdalSRPKey".into(),
            Value::Array(srp.into_iter().map(Value::Data).collect()),
        );
    }
    d.insert("authentication_authority".into(), Value::Array(aa));
    d.insert("accountPolicyData".into(), account_policy(now)?);
    d.insert("_writers_passwd".into(), arr(u.name));
    d.insert("_writers_hint".into(), arr(u.name));
    d.insert("_writers_realname".into(), arr(u.name));
    let mut out = Vec::new();
    Value::Dictionary(d)
        .to_writer_binary(&mut out)
        .map_err(fail)?;
    Ok(out)
}

/// The simulated Mac's local KDC realm (`LKDC:SHA1.` and 40 upper-case hex).
pub const LKDC_REALM: &str = "LKDC:SHA1.0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C";

/// One `HeimdalSRPKey` value (RFC 5054 group 4096, PBKDF2-SHA512 at the
/// default count) for `pw`, through the same code a reconcile uses.
fn heimdal_srp_keys(authority: &str, keys: &[u8], pw: &str) -> Result<Vec<Vec<u8>>> {
    use crate::formats::kerberos::{self, SrpKey};
    let principal = kerberos::lkdc_principal(&[authority], &[keys]).map_err(fail)?;
    let template = SrpKey {
        group: kerberos::SRP_GROUP_RFC5054_4096_PBKDF2_SHA512,
        salt: vec![0; kerberos::SRP_SALT_LEN],
        iterations: kerberos::SRP_DEFAULT_ITERATIONS,
        verifier: vec![0; 512],
    }
    .to_der();
    kerberos::srp_regenerate(&[template], &principal, pw.as_bytes()).map_err(fail)
}

fn kerberos_keys(name: &str, pw: &str) -> Result<Vec<u8>> {
    use crate::formats::kerberos::{string_to_key, EncryptionKey, Enctype, Key, KeySet, Salt};
    let salt = format!("{LKDC_REALM}{name}").into_bytes();
    let mut keys = Vec::new();
    for e in [
        Enctype::Aes256CtsHmacSha196,
        Enctype::Aes128CtsHmacSha196,
        Enctype::Des3CbcSha1,
    ] {
        keys.push(Key {
            mkvno: None,
            key: EncryptionKey::new(
                e.number(),
                string_to_key(e, pw.as_bytes(), &salt).map_err(fail)?,
            ),
            salt: Some(Salt {
                salt_type: 3,
                salt: salt.clone(),
                opaque: None,
            }),
        });
    }
    Ok(KeySet {
        kvno: 1,
        keys,
        principal: None,
    }
    .to_der())
}

fn system_record(name: &str, uid: i64, real: &str) -> Result<Vec<u8>> {
    let mut d = Dictionary::new();
    d.insert("name".into(), arr(name));
    d.insert("realname".into(), arr(real));
    d.insert("uid".into(), arr(&uid.to_string()));
    d.insert("gid".into(), arr(&uid.max(0).to_string()));
    d.insert("home".into(), arr("/var/empty"));
    d.insert("shell".into(), arr("/usr/bin/false"));
    d.insert("passwd".into(), arr("*"));
    d.insert(
        "generateduid".into(),
        arr(&format!("FFFFEEEE-DDDD-CCCC-BBBB-AAAA{:08X}", uid.max(0))),
    );
    let mut out = Vec::new();
    Value::Dictionary(d)
        .to_writer_binary(&mut out)
        .map_err(fail)?;
    Ok(out)
}

fn group_record(name: &str, gid: u32, members: &[&SimUser]) -> Result<Vec<u8>> {
    let mut d = Dictionary::new();
    d.insert("name".into(), arr(name));
    d.insert("gid".into(), arr(&gid.to_string()));
    d.insert(
        "users".into(),
        Value::Array(
            members
                .iter()
                .map(|u| Value::String(u.name.into()))
                .collect(),
        ),
    );
    d.insert(
        "groupmembers".into(),
        Value::Array(
            members
                .iter()
                .map(|u| Value::String(u.uuid.into()))
                .collect(),
        ),
    );
    let mut out = Vec::new();
    Value::Dictionary(d)
        .to_writer_binary(&mut out)
        .map_err(fail)?;
    Ok(out)
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, &e))?;
    }
    fs::write(path, data).map_err(|e| Error::io("write", path, &e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("chmod", path, &e))
}

/// The keychain template: a real `login.keychain-db` (moonD4rk/keychainbreaker's
/// test file, Apache-2.0), re-keyed to each user's password.
const KEYCHAIN_TEMPLATE: &[u8] = include_bytes!("../../assets/login-template.keychain-db");
/// The template's password.
pub const KEYCHAIN_TEMPLATE_PASSWORD: &str = "keychainbreaker-test";
/// Password of `assets/login-template-0x200.keychain-db`, a DbBlob version 0x200
/// login keychain (what macOS 10.12 and later write): moonD4rk/HackBrowserData's
/// `utils/chainbreaker/testdata/test.keychain-db` (MIT), re-keyed from its
/// published master key to this password with
/// `formats::keychain::rekey_from_master_key` (docs/keychain.md): every
/// scenario's keychains but `legacy-keychain`'s are made from it.
pub const KEYCHAIN_TEMPLATE_0X200_PASSWORD: &str = "keychain-template-0x200";

const KEYCHAIN_TEMPLATE_0X200: &[u8] =
    include_bytes!("../../assets/login-template-0x200.keychain-db");

/// How a simulated login keychain is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeychainKind {
    /// DbBlob 0x200, what macOS 10.12 and later write (the default).
    Modern,
    /// DbBlob 0x100 (a Mac set up before 10.12).
    Legacy,
    /// DbBlob 0x200 on macOS 26's indirect passphrase.
    Indirect,
}

/// A SystemKeys file: its name and bytes (a plist `<data>` of the entropy).
type SystemKeysFile = (String, Vec<u8>);

/// A login keychain for `pw`; for the indirect form, also its SystemKeys file.
fn keychain_for(pw: &str, kind: KeychainKind) -> Result<(Vec<u8>, Option<SystemKeysFile>)> {
    use crate::formats::keychain as kc;
    match kind {
        KeychainKind::Legacy => Ok((
            kc::rekey(
                KEYCHAIN_TEMPLATE,
                KEYCHAIN_TEMPLATE_PASSWORD.as_bytes(),
                pw.as_bytes(),
            )
            .map_err(fail)?,
            None,
        )),
        KeychainKind::Modern => Ok((
            kc::rekey(
                KEYCHAIN_TEMPLATE_0X200,
                KEYCHAIN_TEMPLATE_0X200_PASSWORD.as_bytes(),
                pw.as_bytes(),
            )
            .map_err(fail)?,
            None,
        )),
        KeychainKind::Indirect => {
            let entropy: [u8; 32] = crate::crypto::random_bytes().map_err(fail)?;
            let file = kc::rekey_to(
                KEYCHAIN_TEMPLATE_0X200,
                KEYCHAIN_TEMPLATE_0X200_PASSWORD.as_bytes(),
                pw.as_bytes(),
                Some(&entropy),
                kc::Form::Indirect,
            )
            .map_err(fail)?;
            let name = kc::system_keys_file_name(&file).map_err(fail)?;
            let mut plist = Vec::new();
            Value::Data(entropy.to_vec())
                .to_writer_xml(&mut plist)
                .map_err(fail)?;
            Ok((file, Some((name, plist))))
        }
    }
}

fn keybag(vol_uuid: &str, users: &[(&str, &str, &str, bool)], it: Iterations) -> Result<Keybag> {
    let kek: [u8; 32] = crate::crypto::random_bytes().map_err(fail)?;
    let vek: [u8; 32] = crate::crypto::random_bytes().map_err(fail)?;
    let wrapped_vek = crate::crypto::aes_wrap(&kek, &vek).map_err(fail)?;
    let mut crypto_users = Vec::new();
    for (uuid, kind, pw, owner) in users {
        let salt: [u8; 16] = crate::crypto::random_bytes().map_err(fail)?;
        let wrapped = crate::crypto::apfs_wrap_kek(pw.as_bytes(), &salt, it.kek, &kek, false)
            .map_err(fail)?;
        crypto_users.push(KeybagUser {
            uuid: uuid.to_string(),
            kind: kind.to_string(),
            volume_owner: *owner,
            hint: None,
            salt: Data::new(salt.to_vec()),
            iterations: u64::from(it.kek),
            wrapped_kek: Data::new(wrapped),
            flags: 0,
            generation: 1,
        });
    }
    Ok(Keybag {
        format_version: FORMAT_VERSION,
        volume_uuid: vol_uuid.to_string(),
        wrapped_vek: Data::new(wrapped_vek),
        crypto_users,
    })
}

fn xml<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, v).map_err(fail)?;
    Ok(out)
}

struct DataVolume<'a> {
    device: &'a str,
    uuid: &'a str,
    group: &'a str,
    preboot: &'a str,
    users: Vec<SimUser>,
    /// The volume is encrypted: a keybag, crypto users, a Preboot list.
    encrypted: bool,
    failed: u64,
    /// alice's Preboot entries show what her record said before (see `stale-preboot`).
    stale_preboot: bool,
}

/// alice's full name and hint before the directory changed them: what a
/// Preboot volume not updated since still shows.
pub const ALICE_OLD_FULL_NAME: &str = "Alice Dupont";
/// alice's passphrase hint before the directory cleared it.
pub const ALICE_OLD_HINT: &str = "the old one";

/// Makes alice's entries in the Preboot lists of `folder` show her old full
/// name and hint (the records are current).
fn stale_preboot(folder: &Path) -> Result<()> {
    use crate::formats::preboot as pb;
    let read = |rel: &str| {
        fs::read(folder.join(rel)).map_err(|e| Error::io("read", &folder.join(rel), &e))
    };
    let mut all = pb::parse_all_users_info(&read(pb::ALL_USERS_INFO)?).map_err(fail)?;
    let mut crypto = pb::parse_crypto_user_info(&read(pb::CRYPTO_USER_INFO)?).map_err(fail)?;
    for a in all.iter_mut().filter(|a| a.generated_uid == ALICE_UUID) {
        a.real_name = Some(ALICE_OLD_FULL_NAME.into());
    }
    for c in crypto.iter_mut().filter(|c| c.uuid == ALICE_UUID) {
        c.full_name = Some(ALICE_OLD_FULL_NAME.into());
        c.hint = Some(ALICE_OLD_HINT.into());
    }
    super::write_lists(folder, &all, &crypto)
}

fn build_data_volume(
    root: &Path,
    dv: &DataVolume<'_>,
    it: Iterations,
    now: f64,
    enclave: &mut std::collections::BTreeMap<String, AttemptCounter>,
) -> Result<()> {
    if dv.encrypted {
        enclave.insert(
            dv.uuid.to_string(),
            AttemptCounter {
                failed_attempts: dv.failed,
                attempt_limit: ATTEMPT_LIMIT,
            },
        );
    }
    let vroot = root.join(VOLUMES_DIR).join(dv.device);
    let users_dir = vroot.join(USERS_DIR);
    write(
        &users_dir.join("root.plist"),
        &system_record("root", 0, "System Administrator")?,
        0o600,
    )?;
    write(
        &users_dir.join("_mbsetupuser.plist"),
        &system_record("_mbsetupuser", 248, "Setup User")?,
        0o600,
    )?;
    for u in &dv.users {
        write(
            &users_dir.join(format!("{}.plist", u.name)),
            &user_record(u, it, now)?,
            0o600,
        )?;
        let kc = vroot
            .join("Users")
            .join(u.name)
            .join("Library/Keychains/login.keychain-db");
        let (kc_bytes, system_keys) = keychain_for(u.keychain, u.keychain_kind)?;
        write(&kc, &kc_bytes, 0o600)?;
        if let Some((name, plist)) = system_keys {
            write(
                &vroot
                    .join(crate::formats::keychain::SYSTEM_KEYS_DIR)
                    .join(name),
                &plist,
                0o600,
            )?;
        }
        // The Local Items keychain: a SQLite file under the hardware UUID. Its
        // keys live in the Secure Enclave, so the simulated one is only a header.
        let mut local = b"SQLite format 3\0".to_vec();
        local.resize(4096, 0);
        let li = vroot
            .join("Users")
            .join(u.name)
            .join("Library/Keychains")
            .join(HARDWARE_UUID)
            .join("keychain-2.db");
        write(&li, &local, 0o600)?;
        give_home(&vroot.join("Users").join(u.name), u.uid, 20)?;
    }
    let admins: Vec<&SimUser> = dv.users.iter().filter(|u| u.admin).collect();
    let staff: Vec<&SimUser> = dv.users.iter().collect();
    write(
        &vroot.join(GROUPS_DIR).join("admin.plist"),
        &group_record("admin", 80, &admins)?,
        0o600,
    )?;
    write(
        &vroot.join(GROUPS_DIR).join("staff.plist"),
        &group_record("staff", 20, &staff)?,
        0o600,
    )?;
    let log = vroot.join("private/var/log");
    fs::create_dir_all(&log).map_err(|e| Error::io("create", &log, &e))?;
    if dv.encrypted {
        let mut entries: Vec<(&str, &str, &str, bool)> = dv
            .users
            .iter()
            .filter_map(|u| {
                u.filevault
                    .map(|pw| (u.uuid, "LocalOpenDirectory", pw, true))
            })
            .collect();
        entries.push((
            PERSONAL_RECOVERY_UUID,
            "PersonalRecovery",
            RECOVERY_KEY,
            false,
        ));
        let kb = keybag(dv.uuid, &entries, it)?;
        write(
            &root.join(KEYBAGS_DIR).join(format!("{}.plist", dv.uuid)),
            &xml(&kb)?,
            0o600,
        )?;
        // The Preboot lists, as `diskutil apfs updatePreboot` leaves them.
        let folder = root.join(VOLUMES_DIR).join(dv.preboot).join(dv.group);
        super::write_preboot_lists(&vroot, &folder, &kb)?;
        if dv.stale_preboot {
            stale_preboot(&folder)?;
        }
    }
    Ok(())
}

/// Gives a user's home folder and everything in it to the user, as macOS
/// has it (only root can; a simulated Mac made without root records its
/// creator instead, see `CreatorUID`).
fn give_home(home: &Path, uid: u32, gid: u32) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    fn walk(p: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
        if fs::symlink_metadata(p)?.is_dir() {
            for e in fs::read_dir(p)? {
                walk(&e?.path(), uid, gid)?;
            }
        }
        Ok(())
    }
    walk(home, uid, gid).map_err(|e| Error::io("give to its user", home, &e))
}

fn vol(uuid: &str, device: &str, name: &str, role: &str, fv: bool, locked: bool) -> VolumeDesc {
    VolumeDesc {
        uuid: uuid.into(),
        device: device.into(),
        name: name.into(),
        roles: if role.is_empty() {
            vec![]
        } else {
            vec![role.into()]
        },
        encryption: fv || role == "System",
        filevault: fv,
        locked,
        crypto_migration: false,
        in_use: 12_000_000_000,
        ownership: true,
    }
}

#[allow(clippy::too_many_arguments)]
fn container(
    reference: &str,
    uuid: &str,
    store: &str,
    prefix: &str,
    name: &str,
    data_uuid: &str,
    group: &str,
    fv: bool,
    encrypted: bool,
) -> ContainerDesc {
    let d = |s: u32| format!("{reference}s{s}");
    ContainerDesc {
        uuid: uuid.into(),
        reference: reference.into(),
        physical_store: store.into(),
        capacity: 494_384_795_648,
        free: 301_234_567_168,
        fusion: false,
        volumes: vec![
            vol(
                &format!("{prefix}01-5A5A-4B4B-8C8C-0000000000A1"),
                &d(1),
                name,
                "System",
                fv,
                false,
            ),
            vol(
                &format!("{prefix}02-5A5A-4B4B-8C8C-0000000000A2"),
                &d(2),
                "Preboot",
                "Preboot",
                false,
                false,
            ),
            vol(
                &format!("{prefix}03-5A5A-4B4B-8C8C-0000000000A3"),
                &d(3),
                "Recovery",
                "Recovery",
                false,
                false,
            ),
            vol(
                &format!("{prefix}04-5A5A-4B4B-8C8C-0000000000A4"),
                &d(4),
                "VM",
                "VM",
                false,
                false,
            ),
            {
                // T2 and Apple silicon encrypt the Data volume even with
                // FileVault off: it then unlocks at startup by itself.
                let mut v = vol(data_uuid, &d(5), &format!("{name} - Data"), "Data", fv, fv);
                v.encryption = encrypted;
                v
            },
        ],
        groups: vec![GroupDesc {
            uuid: group.into(),
            volumes: vec![
                GroupMember {
                    device: d(1),
                    role: "System".into(),
                },
                GroupMember {
                    device: d(5),
                    role: "Data".into(),
                },
            ],
        }],
    }
}

/// Creates a simulated Mac for `scenario` in `dir` (missing or empty).
/// Built in a temporary folder beside `dir`, then renamed into place, so a
/// failure leaves nothing half-made.
///
/// # Errors
/// Unknown scenario (2), `dir` exists and is not empty (2), or I/O (1).
pub fn create(dir: &Path, scenario: &str, it: Iterations) -> Result<()> {
    let Some(s) = find(scenario) else {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("no scenario '{}'", crate::text::escape(scenario)),
        )
        .hint("`fvsync sim scenarios` lists them"));
    };
    for n in [it.salted, it.srp, it.kek] {
        crate::crypto::check_iterations(u64::from(n))
            .map_err(|e| Error::new(ErrorKind::Usage, format!("--iterations: {e}")))?;
    }
    if let Ok(mut entries) = fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{} exists and is not empty", crate::text::quote_path(dir)),
            )
            .hint("choose a new folder, or delete this one first"));
        }
    } else if dir.exists() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("{} is not a folder", crate::text::quote_path(dir)),
        ));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".fvsync-sim-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io("create a folder in", &parent, &e))?;
    let root = tmp.path();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);

    let alice_fv = s.filevault.map(pw_for);
    let users = |with_alice: bool| -> Vec<SimUser> {
        let mut v = Vec::new();
        if with_alice {
            v.push(SimUser {
                name: "alice",
                real_name: "Alice Martin",
                uid: 501,
                uuid: ALICE_UUID,
                admin: false,
                login: pw_for(s.login),
                keychain: pw_for(s.keychain),
                keychain_kind: if s.legacy_keychain {
                    KeychainKind::Legacy
                } else if s.indirect_keychain {
                    KeychainKind::Indirect
                } else {
                    KeychainKind::Modern
                },
                filevault: alice_fv,
                unknown_hash: s.unknown_hash,
            });
        }
        v.push(SimUser {
            name: "bob",
            real_name: "Bob Chen",
            uid: 502,
            uuid: BOB_UUID,
            admin: false,
            login: BOB,
            keychain: BOB,
            keychain_kind: KeychainKind::Modern,
            filevault: Some(BOB),
            unknown_hash: false,
        });
        v.push(SimUser {
            name: "itadmin",
            real_name: "IT Admin",
            uid: 503,
            uuid: ITADMIN_UUID,
            admin: true,
            login: ITADMIN,
            keychain: ITADMIN,
            keychain_kind: KeychainKind::Modern,
            filevault: Some(ITADMIN),
            unknown_hash: false,
        });
        v
    };

    let mut enclave = std::collections::BTreeMap::new();
    let internal_group = "7E1A0000-4A4A-4B4B-9C9C-00000000C0DE";
    let internal_data = "DA7A0000-5A5A-4B4B-8C8C-0000000000A5";
    let mut containers = vec![container(
        "disk3",
        "C0470000-1111-4222-8333-444455556666",
        "disk0s2",
        "5E5E00",
        "Macintosh HD",
        internal_data,
        internal_group,
        s.filevault_on,
        s.encrypted,
    )];
    build_data_volume(
        root,
        &DataVolume {
            device: "disk3s5",
            uuid: internal_data,
            group: internal_group,
            preboot: "disk3s2",
            users: users(true),
            encrypted: s.encrypted,
            failed: if s.throttled { ATTEMPT_LIMIT - 1 } else { 0 },
            stale_preboot: s.stale_preboot,
        },
        it,
        now,
        &mut enclave,
    )?;
    if s.multi_volume {
        let group = "7E1A0001-4A4A-4B4B-9C9C-00000000C0DE";
        let data = "DA7A0001-5A5A-4B4B-8C8C-0000000000B5";
        containers.push(container(
            "disk5",
            "C0470001-1111-4222-8333-444455556666",
            "disk4s2",
            "5E5E01",
            "Backup HD",
            data,
            group,
            true,
            true,
        ));
        build_data_volume(
            root,
            &DataVolume {
                device: "disk5s5",
                uuid: data,
                group,
                preboot: "disk5s2",
                users: users(false),
                encrypted: true,
                failed: 0,
                stale_preboot: false,
            },
            it,
            now,
            &mut enclave,
        )?;
    }
    for c in &containers {
        for v in &c.volumes {
            let p = root.join(VOLUMES_DIR).join(&v.device);
            fs::create_dir_all(&p).map_err(|e| Error::io("create", &p, &e))?;
        }
    }
    let mac = MacFile {
        format_version: FORMAT_VERSION,
        scenario: s.name.into(),
        boot_mode: "recovery".into(),
        containers,
        iteration_floor: it.floor,
        creator_uid: (!rustix::process::geteuid().is_root())
            .then(|| rustix::process::geteuid().as_raw()),
    };
    write(&root.join(MAC_FILE), &xml(&mac)?, 0o644)?;
    write(&root.join(ENCLAVE_FILE), &xml(&enclave)?, 0o600)?;
    let kb = root.join(KEYBAGS_DIR);
    fs::create_dir_all(&kb).map_err(|e| Error::io("create", &kb, &e))?;

    if dir.exists() {
        fs::remove_dir(dir).map_err(|e| Error::io("replace", dir, &e))?;
    }
    let tmp_path = tmp.keep();
    fs::rename(&tmp_path, dir).map_err(|e| {
        let _ = fs::remove_dir_all(&tmp_path);
        Error::io("create", dir, &e)
    })?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("chmod", dir, &e))
}
