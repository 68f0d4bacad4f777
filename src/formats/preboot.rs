//! The Preboot volume's user lists, read before the Data volume is unlocked
//! (display only: once the volume is open, a user's identity is the record's
//! `generateduid`). Pure: bytes in, values out (and back, for the simulated Mac).
//!
//! `diskutil apfs updatePreboot` writes both files under
//! `<Preboot volume>/<UUID>/var/db/` (docs: macos.md §6.1, §6.3):
//!
//! - [`ALL_USERS_INFO`], the list Apple's login window reads (authd's
//!   `OSX/authd/PreloginUserDb.m`, Security-61901: `kUsersFile =
//!   @"%@/%@/var/db/AllUsersInfo.plist"`): a dictionary **keyed by short
//!   name** (`for (NSString *userName in users) { NSDictionary *userData =
//!   users[userName]; ...`), each entry with `GeneratedUID` (an entry without
//!   one is skipped there too), `RealName`, `UID`, `HomeDir`, `Admin`,
//!   `AuthenticationAuthority`.
//! - [`CRYPTO_USER_INFO`], keyed by crypto-user UUID, with `ShortName`,
//!   `FullName`, `PasswordHint`, `UserType`, `PictureData` (the keys
//!   third-party readers use: mac_apt `plugins/helpers/macinfo.py` and
//!   `decryptor.py`, whose local users have `UserType` `OpenDirectory`).
//!
//! The folder's UUID "can be either UUID of the system volume, UUID of the
//! data volume, UUID of the volume group" (`processVolumeData:`), the group
//! tried first: [`folder_candidates`].
//!
//! The parsers are lenient per entry and strict about the file: an entry of
//! another kind (iCloud, a recovery key, a type not known) is skipped before
//! its fields are read, an entry missing a field or holding one of the wrong
//! type is skipped, but bytes that are not a property list, or whose top level
//! is not a dictionary, are an error. Nesting is bounded ([`super::plist_safe`]).

use plist::{Dictionary, Value};
use serde::Serialize;

use super::plist_safe::{self, PlistError};

/// The login window's user list, relative to `<Preboot volume>/<UUID>/`.
pub const ALL_USERS_INFO: &str = "var/db/AllUsersInfo.plist";
/// The crypto users' display list, relative to `<Preboot volume>/<UUID>/`.
pub const CRYPTO_USER_INFO: &str = "var/db/CryptoUserInfo.plist";

/// The Personal Recovery Key's crypto-user UUID.
pub const PERSONAL_RECOVERY_UUID: &str = crate::platform::PERSONAL_RECOVERY_UUID;
/// The iCloud recovery crypto user's UUID (third-party scripts skip it by it).
pub const ICLOUD_RECOVERY_UUID: &str = "EC1C2AD9-B618-4ED6-BD8D-50F361C27507";

/// The `UserType` the simulated Mac writes for a local user (mac_apt's value).
pub const LOCAL_USER_TYPE: &str = "OpenDirectory";

/// Longest full name or hint kept (a longer one reads as absent).
const MAX_TEXT: usize = 1024;

/// A user as the Preboot volume lists it before any unlock (both files merged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrebootUser {
    /// Short name.
    pub name: String,
    /// Full name, when listed.
    pub real_name: Option<String>,
    /// GeneratedUID (= crypto-user UUID), upper-case.
    pub uuid: String,
    /// The passphrase hint shown at the login window, when one is listed.
    pub hint: Option<String>,
    /// Whether the user is an admin, when listed.
    pub admin: Option<bool>,
}

/// One entry of [`ALL_USERS_INFO`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AllUsersEntry {
    /// The key: the short name.
    pub short_name: String,
    /// `GeneratedUID`, upper-case.
    pub generated_uid: String,
    /// `RealName`.
    pub real_name: Option<String>,
    /// `UID`.
    pub uid: Option<i64>,
    /// `HomeDir`.
    pub home: Option<String>,
    /// `Admin`.
    pub admin: Option<bool>,
    /// `AuthenticationAuthority`.
    pub authentication_authority: Vec<String>,
}

/// One entry of [`CRYPTO_USER_INFO`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CryptoUserEntry {
    /// The key: the crypto user's UUID, upper-case.
    pub uuid: String,
    /// `ShortName`.
    pub short_name: String,
    /// `FullName`.
    pub full_name: Option<String>,
    /// `PasswordHint`.
    pub hint: Option<String>,
    /// `UserType`.
    pub user_type: String,
}

/// Why a Preboot list could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// Not a property list (or one nested too deep).
    #[error("{0}")]
    Plist(#[from] PlistError),
    /// The top level is not a dictionary.
    #[error("the top level is not a dictionary")]
    NotDictionary,
}

/// True for an upper- or lower-case `8-4-4-4-12` hex UUID.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_recovery(uuid: &str) -> bool {
    uuid.eq_ignore_ascii_case(PERSONAL_RECOVERY_UUID)
        || uuid.eq_ignore_ascii_case(ICLOUD_RECOVERY_UUID)
}

/// Whether a `UserType` names a local (Open Directory) user: iCloud and
/// recovery users, and types fvsync does not know, are not.
pub fn is_local_user_type(t: &str) -> bool {
    let t: String = t
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    !t.contains("icloud") && !t.contains("recovery") && t.contains("opendirectory")
}

fn top(bytes: &[u8]) -> Result<Dictionary, ListError> {
    plist_safe::parse(bytes)?
        .into_dictionary()
        .ok_or(ListError::NotDictionary)
}

fn text(d: &Dictionary, key: &str) -> Option<String> {
    d.get(key)
        .and_then(Value::as_string)
        .filter(|s| s.len() <= MAX_TEXT)
        .map(str::to_string)
}

fn short_name(s: &str) -> Option<String> {
    crate::formats::record::check_name(s)
        .is_ok()
        .then(|| s.to_string())
}

/// The users of an [`ALL_USERS_INFO`] file (see the module docs).
///
/// # Errors
/// Not a property list, or its top level is not a dictionary.
pub fn parse_all_users_info(bytes: &[u8]) -> Result<Vec<AllUsersEntry>, ListError> {
    let mut out = Vec::new();
    for (name, v) in top(bytes)? {
        let Some(d) = v.as_dictionary() else {
            continue;
        };
        let Some(uuid) = d
            .get("GeneratedUID")
            .and_then(Value::as_string)
            .filter(|u| is_uuid(u) && !is_recovery(u))
        else {
            continue;
        };
        let Some(short_name) = short_name(&name) else {
            continue;
        };
        let uid = match d.get("UID") {
            Some(Value::Integer(i)) => i.as_signed(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let admin = match d.get("Admin") {
            Some(Value::Boolean(b)) => Some(*b),
            Some(Value::Integer(i)) => i.as_signed().map(|n| n != 0),
            _ => None,
        };
        let authentication_authority = match d.get("AuthenticationAuthority") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_string)
                .take(64)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        out.push(AllUsersEntry {
            short_name,
            generated_uid: uuid.to_ascii_uppercase(),
            real_name: text(d, "RealName"),
            uid,
            home: text(d, "HomeDir"),
            admin,
            authentication_authority,
        });
    }
    Ok(out)
}

/// The local users of a [`CRYPTO_USER_INFO`] file (see the module docs).
///
/// # Errors
/// Not a property list, or its top level is not a dictionary.
pub fn parse_crypto_user_info(bytes: &[u8]) -> Result<Vec<CryptoUserEntry>, ListError> {
    let mut out = Vec::new();
    for (uuid, v) in top(bytes)? {
        let Some(d) = v.as_dictionary() else {
            continue;
        };
        // The kind first: nothing else of an iCloud or recovery entry is read.
        let Some(user_type) = d
            .get("UserType")
            .and_then(Value::as_string)
            .filter(|t| is_local_user_type(t))
        else {
            continue;
        };
        if !is_uuid(&uuid) || is_recovery(&uuid) {
            continue;
        }
        let Some(short_name) = d
            .get("ShortName")
            .and_then(Value::as_string)
            .and_then(short_name)
        else {
            continue;
        };
        out.push(CryptoUserEntry {
            uuid: uuid.to_ascii_uppercase(),
            short_name,
            full_name: text(d, "FullName"),
            hint: text(d, "PasswordHint"),
            user_type: user_type.to_string(),
        });
    }
    Ok(out)
}

/// One list from both files, by GeneratedUID: [`ALL_USERS_INFO`] (what the
/// login window reads) names the user; [`CRYPTO_USER_INFO`] adds the hint,
/// and the users only it lists.
pub fn merge(all: &[AllUsersEntry], crypto: &[CryptoUserEntry]) -> Vec<PrebootUser> {
    let hint_of = |uuid: &str| {
        crypto
            .iter()
            .find(|c| c.uuid == uuid)
            .and_then(|c| c.hint.clone())
    };
    let mut out: Vec<PrebootUser> = all
        .iter()
        .map(|a| PrebootUser {
            name: a.short_name.clone(),
            real_name: a.real_name.clone(),
            uuid: a.generated_uid.clone(),
            hint: hint_of(&a.generated_uid),
            admin: a.admin,
        })
        .collect();
    for c in crypto {
        if !all.iter().any(|a| a.generated_uid == c.uuid) {
            out.push(PrebootUser {
                name: c.short_name.clone(),
                real_name: c.full_name.clone(),
                uuid: c.uuid.clone(),
                hint: c.hint.clone(),
                admin: None,
            });
        }
    }
    out
}

/// The Preboot folders that may hold a Data volume's lists, in the order
/// Apple's authd looks them up: the volume group's UUID, then the System
/// volume's, then the Data volume's own (upper-case, each once; anything that
/// is not a UUID is left out).
pub fn folder_candidates(group: Option<&str>, system: Option<&str>, data: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in [group, system, Some(data)].into_iter().flatten() {
        let u = u.to_ascii_uppercase();
        if is_uuid(&u) && !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// What the record on the opened volume says of a user, to compare with the
/// Preboot lists.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The record's `generateduid`.
    pub uuid: &'a str,
    /// The record's short name.
    pub short_name: &'a str,
    /// The record's `realname` (none: not compared).
    pub full_name: Option<&'a str>,
    /// The hints the Preboot may show for the user: the record's `hint` and
    /// the crypto user's own (`None` or empty: no hint).
    pub hints: &'a [Option<&'a str>],
}

/// Whether the Preboot lists are current for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Currency {
    /// Every list that exists shows what the record says.
    Current,
    /// A list shows something the record no longer says (what, in words).
    Stale(String),
}

/// Compares the lists with the record (`None`: no list to compare). A list
/// that names other users of its kind but not this one is stale; a field
/// missing from an entry is not compared; the passphrase is never in these
/// files, so this says nothing of it.
pub fn currency(
    all: Option<&[AllUsersEntry]>,
    crypto: Option<&[CryptoUserEntry]>,
    e: &Expected<'_>,
) -> Option<Currency> {
    if all.is_none() && crypto.is_none() {
        return None;
    }
    let uuid = e.uuid.to_ascii_uppercase();
    let esc = crate::text::escape;
    let full = |file: &str, shown: Option<&str>| -> Option<String> {
        match (shown, e.full_name) {
            (Some(s), Some(r)) if s != r => Some(format!(
                "its {file} shows the full name \"{}\", the record \"{}\"",
                esc(s),
                esc(r)
            )),
            _ => None,
        }
    };
    let name = |file: &str, shown: &str| -> Option<String> {
        (shown != e.short_name).then(|| {
            format!(
                "its {file} names {}'s FileVault user {}",
                esc(e.short_name),
                esc(shown)
            )
        })
    };
    if let Some(list) = all.filter(|l| !l.is_empty()) {
        let Some(a) = list.iter().find(|a| a.generated_uid == uuid) else {
            return Some(Currency::Stale(format!(
                "its AllUsersInfo.plist does not list {}",
                esc(e.short_name)
            )));
        };
        if let Some(why) = name("AllUsersInfo.plist", &a.short_name)
            .or_else(|| full("AllUsersInfo.plist", a.real_name.as_deref()))
        {
            return Some(Currency::Stale(why));
        }
    }
    if let Some(list) = crypto.filter(|l| !l.is_empty()) {
        let Some(c) = list.iter().find(|c| c.uuid == uuid) else {
            return Some(Currency::Stale(format!(
                "its CryptoUserInfo.plist does not list {}",
                esc(e.short_name)
            )));
        };
        if let Some(why) = name("CryptoUserInfo.plist", &c.short_name)
            .or_else(|| full("CryptoUserInfo.plist", c.full_name.as_deref()))
        {
            return Some(Currency::Stale(why));
        }
        let shown = c.hint.as_deref().unwrap_or("");
        if !e.hints.iter().any(|h| h.unwrap_or("") == shown) {
            return Some(Currency::Stale(if shown.is_empty() {
                "its CryptoUserInfo.plist shows no passphrase hint, the record has one".to_string()
            } else {
                format!(
                    "its CryptoUserInfo.plist shows the hint \"{}\", which the record no longer has",
                    esc(shown)
                )
            }));
        }
    }
    Some(Currency::Current)
}

fn encode(d: Dictionary) -> Result<Vec<u8>, plist::Error> {
    let mut out = Vec::new();
    Value::Dictionary(d).to_writer_xml(&mut out)?;
    Ok(out)
}

/// An [`ALL_USERS_INFO`] file with Apple's key names (the simulated Mac's).
///
/// # Errors
/// The plist cannot be encoded.
pub fn write_all_users_info(entries: &[AllUsersEntry]) -> Result<Vec<u8>, plist::Error> {
    let mut top = Dictionary::new();
    for e in entries {
        let mut d = Dictionary::new();
        d.insert("GeneratedUID".into(), e.generated_uid.clone().into());
        if let Some(r) = &e.real_name {
            d.insert("RealName".into(), r.clone().into());
        }
        if let Some(u) = e.uid {
            d.insert("UID".into(), Value::Integer(u.into()));
        }
        if let Some(h) = &e.home {
            d.insert("HomeDir".into(), h.clone().into());
        }
        if let Some(a) = e.admin {
            d.insert("Admin".into(), Value::Boolean(a));
        }
        d.insert(
            "AuthenticationAuthority".into(),
            Value::Array(
                e.authentication_authority
                    .iter()
                    .map(|s| s.clone().into())
                    .collect(),
            ),
        );
        top.insert(e.short_name.clone(), Value::Dictionary(d));
    }
    encode(top)
}

/// A [`CRYPTO_USER_INFO`] file with the key names readers use (the simulated Mac's).
///
/// # Errors
/// The plist cannot be encoded.
pub fn write_crypto_user_info(entries: &[CryptoUserEntry]) -> Result<Vec<u8>, plist::Error> {
    let mut top = Dictionary::new();
    for e in entries {
        let mut d = Dictionary::new();
        d.insert("ShortName".into(), e.short_name.clone().into());
        if let Some(f) = &e.full_name {
            d.insert("FullName".into(), f.clone().into());
        }
        if let Some(h) = &e.hint {
            d.insert("PasswordHint".into(), h.clone().into());
        }
        d.insert("UserType".into(), e.user_type.clone().into());
        top.insert(e.uuid.clone(), Value::Dictionary(d));
    }
    encode(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "A11CE000-1D2E-4F3A-9B8C-0123456789AB";
    const BOB: &str = "B0B00000-2E3F-4A5B-8C9D-123456789ABC";

    fn xml(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_xml(&mut out).unwrap();
        out
    }

    fn dict(pairs: &[(&str, Value)]) -> Value {
        let mut d = Dictionary::new();
        for (k, v) in pairs {
            d.insert((*k).into(), v.clone());
        }
        Value::Dictionary(d)
    }

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    #[test]
    fn crypto_user_info_skips_what_it_does_not_know() {
        let bytes = xml(dict(&[
            (
                ALICE,
                dict(&[
                    ("ShortName", s("alice")),
                    ("FullName", s("Alice Martin")),
                    ("PasswordHint", s("the dog")),
                    ("UserType", s("OpenDirectory")),
                    ("PictureData", Value::Data(vec![0xFF; 16])),
                ]),
            ),
            // iCloud and recovery entries: skipped before any field is read
            // (these have none of a user's).
            (ICLOUD_RECOVERY_UUID, dict(&[("UserType", s("ICloudKey"))])),
            (
                PERSONAL_RECOVERY_UUID,
                dict(&[("UserType", s("PersonalRecovery")), ("ShortName", s("x"))]),
            ),
            (
                "0BADBEEF-0000-4000-8000-000000000001",
                dict(&[("UserType", s("SomethingNew")), ("ShortName", s("y"))]),
            ),
            // Missing a field, or one of the wrong type: skipped.
            (
                "0BADBEEF-0000-4000-8000-000000000002",
                dict(&[("UserType", s("OpenDirectory"))]),
            ),
            (
                "0BADBEEF-0000-4000-8000-000000000003",
                dict(&[
                    ("UserType", s("OpenDirectory")),
                    ("ShortName", Value::Integer(7.into())),
                ]),
            ),
            (
                "not-a-uuid",
                dict(&[("UserType", s("OpenDirectory")), ("ShortName", s("z"))]),
            ),
            (BOB, s("not a dictionary")),
            (
                &BOB.to_ascii_lowercase(),
                dict(&[
                    ("ShortName", s("bob")),
                    ("FullName", Value::Integer(1.into())),
                    ("UserType", s("LocalOpenDirectory")),
                ]),
            ),
        ]));
        let got = parse_crypto_user_info(&bytes).unwrap();
        assert_eq!(
            got,
            vec![
                CryptoUserEntry {
                    uuid: ALICE.into(),
                    short_name: "alice".into(),
                    full_name: Some("Alice Martin".into()),
                    hint: Some("the dog".into()),
                    user_type: "OpenDirectory".into(),
                },
                CryptoUserEntry {
                    uuid: BOB.into(),
                    short_name: "bob".into(),
                    full_name: None,
                    hint: None,
                    user_type: "LocalOpenDirectory".into(),
                },
            ]
        );
    }

    #[test]
    fn all_users_info_is_keyed_by_short_name() {
        let bytes = xml(dict(&[
            (
                "alice",
                dict(&[
                    ("GeneratedUID", s(&ALICE.to_ascii_lowercase())),
                    ("RealName", s("Alice Martin")),
                    ("UID", Value::Integer(501.into())),
                    ("HomeDir", s("/Users/alice")),
                    ("Admin", Value::Boolean(false)),
                    (
                        "AuthenticationAuthority",
                        Value::Array(vec![s(";SecureToken;")]),
                    ),
                ]),
            ),
            // No GeneratedUID (Apple's authd skips it too), a bad one, a
            // recovery UUID, a name fvsync would never accept.
            ("nouuid", dict(&[("RealName", s("No One"))])),
            (
                "baduuid",
                dict(&[("GeneratedUID", Value::Integer(1.into()))]),
            ),
            (
                "recovery",
                dict(&[("GeneratedUID", s(PERSONAL_RECOVERY_UUID))]),
            ),
            ("a/b", dict(&[("GeneratedUID", s(BOB))])),
            (
                "bob",
                dict(&[
                    ("GeneratedUID", s(BOB)),
                    ("UID", s("502")),
                    ("Admin", Value::Integer(1.into())),
                    ("RealName", Value::Boolean(true)),
                ]),
            ),
        ]));
        let got = parse_all_users_info(&bytes).unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].short_name, "alice");
        assert_eq!(got[0].generated_uid, ALICE);
        assert_eq!(got[0].uid, Some(501));
        assert_eq!(got[0].admin, Some(false));
        assert_eq!(got[0].authentication_authority, vec![";SecureToken;"]);
        assert_eq!(got[1].short_name, "bob");
        assert_eq!(
            (got[1].uid, got[1].admin, got[1].real_name.clone()),
            (Some(502), Some(true), None)
        );
    }

    #[test]
    fn a_file_that_is_not_a_dictionary_is_an_error() {
        for bad in [
            xml(Value::Array(vec![])),
            xml(s("alice")),
            b"garbage".to_vec(),
            Vec::new(),
        ] {
            assert!(parse_all_users_info(&bad).is_err());
            assert!(parse_crypto_user_info(&bad).is_err());
        }
        let mut deep = b"<plist>".to_vec();
        deep.extend(std::iter::repeat_n(&b"<dict><key>k</key>"[..], 100_000).flatten());
        assert_eq!(
            parse_crypto_user_info(&deep).unwrap_err(),
            ListError::Plist(PlistError::TooDeep)
        );
    }

    #[test]
    fn the_folder_candidates_follow_apple() {
        let g = "7e1a0000-4a4a-4b4b-9c9c-00000000c0de";
        let sys = "5E5E0001-5A5A-4B4B-8C8C-0000000000A1";
        let data = "DA7A0000-5A5A-4B4B-8C8C-0000000000A5";
        assert_eq!(
            folder_candidates(Some(g), Some(sys), data),
            vec![g.to_ascii_uppercase(), sys.into(), data.into()]
        );
        assert_eq!(folder_candidates(None, None, data), vec![data.to_string()]);
        assert_eq!(
            folder_candidates(Some("../x"), Some(data), data),
            vec![data.to_string()]
        );
    }

    #[test]
    fn written_files_read_back_with_the_real_keys() {
        let a = AllUsersEntry {
            short_name: "alice".into(),
            generated_uid: ALICE.into(),
            real_name: Some("Alice Martin".into()),
            uid: Some(501),
            home: Some("/Users/alice".into()),
            admin: Some(false),
            authentication_authority: vec![";SecureToken;".into()],
        };
        let c = CryptoUserEntry {
            uuid: ALICE.into(),
            short_name: "alice".into(),
            full_name: Some("Alice Martin".into()),
            hint: Some("the dog".into()),
            user_type: LOCAL_USER_TYPE.into(),
        };
        let ab = write_all_users_info(std::slice::from_ref(&a)).unwrap();
        let cb = write_crypto_user_info(std::slice::from_ref(&c)).unwrap();
        assert_eq!(parse_all_users_info(&ab).unwrap(), vec![a.clone()]);
        assert_eq!(parse_crypto_user_info(&cb).unwrap(), vec![c.clone()]);
        let keys = |b: &[u8], k: &str| {
            let v = Value::from_reader_xml(b).unwrap();
            let mut ks: Vec<String> = v.as_dictionary().unwrap()[k]
                .as_dictionary()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            ks.sort();
            ks
        };
        assert_eq!(
            keys(&ab, "alice"),
            [
                "Admin",
                "AuthenticationAuthority",
                "GeneratedUID",
                "HomeDir",
                "RealName",
                "UID"
            ]
        );
        assert_eq!(
            keys(&cb, ALICE),
            ["FullName", "PasswordHint", "ShortName", "UserType"]
        );
        let m = merge(&[a], &[c]);
        assert_eq!(
            m,
            vec![PrebootUser {
                name: "alice".into(),
                real_name: Some("Alice Martin".into()),
                uuid: ALICE.into(),
                hint: Some("the dog".into()),
                admin: Some(false),
            }]
        );
    }

    #[test]
    fn currency_is_what_the_files_show() {
        let a = AllUsersEntry {
            short_name: "alice".into(),
            generated_uid: ALICE.into(),
            real_name: Some("Alice Martin".into()),
            ..Default::default()
        };
        let c = CryptoUserEntry {
            uuid: ALICE.into(),
            short_name: "alice".into(),
            full_name: Some("Alice Martin".into()),
            hint: None,
            user_type: LOCAL_USER_TYPE.into(),
        };
        let e = Expected {
            uuid: ALICE,
            short_name: "alice",
            full_name: Some("Alice Martin"),
            hints: &[None],
        };
        let (all, cr) = (std::slice::from_ref(&a), std::slice::from_ref(&c));
        assert_eq!(currency(None, None, &e), None);
        assert_eq!(currency(Some(all), Some(cr), &e), Some(Currency::Current));
        assert_eq!(currency(Some(all), None, &e), Some(Currency::Current));
        // Another full name, another hint, no entry: stale.
        let renamed = Expected {
            full_name: Some("Alice Dupont"),
            ..e
        };
        assert!(
            matches!(currency(Some(all), Some(cr), &renamed), Some(Currency::Stale(w)) if w.contains("Alice Martin"))
        );
        let hinted = CryptoUserEntry {
            hint: Some("old hint".into()),
            ..c.clone()
        };
        assert!(matches!(
            currency(None, Some(std::slice::from_ref(&hinted)), &e),
            Some(Currency::Stale(w)) if w.contains("old hint")
        ));
        // The keybag's hint counts as well as the record's.
        let both = Expected {
            hints: &[Some(""), Some("old hint")],
            ..e
        };
        assert_eq!(
            currency(None, Some(std::slice::from_ref(&hinted)), &both),
            Some(Currency::Current)
        );
        let bob = CryptoUserEntry {
            uuid: BOB.into(),
            short_name: "bob".into(),
            ..c.clone()
        };
        assert!(matches!(
            currency(None, Some(std::slice::from_ref(&bob)), &e),
            Some(Currency::Stale(w)) if w.contains("does not list alice")
        ));
        // An empty list says nothing (no entry of a kind fvsync reads).
        assert_eq!(currency(Some(&[]), Some(&[]), &e), Some(Currency::Current));
    }
}
