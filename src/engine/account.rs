//! Where the account's password comes from: the agents and policies that set
//! or check a Mac user's password besides the person at the keyboard, found
//! offline on the Data volume, shown before the plan (and kept in the
//! receipt) with a stable code, so that the technician knows what will happen
//! at the next login and that NEW must be exactly the password that agent
//! knows.
//!
//! Every file is read with the trusted read of [`crate::fsio::Root`]: system
//! files with [`Want::SYSTEM`] (root's, not writable by group or others, a
//! regular file with one link, no link on the way), files in the user's home
//! with [`Want::user`] after checking that the home, `Library` and
//! `Preferences` are real folders of that uid. Reads are bounded
//! ([`MAX_SIGNAL_FILE`]). A signal that is missing, unreadable, untrusted or
//! malformed is "not detected", never an error: this module only informs.
//!
//! # The signals and where they are documented
//!
//! | code | signal (Data volume paths) | source |
//! | --- | --- | --- |
//! | `platform-sso` | the record's `AltSecurityIdentities` holds a `PlatformSSO:` identity (the user is registered); else `Library/Managed Preferences/com.apple.extensiblesso.plist` (or its per-user copy in `Library/Managed Preferences/<user>/`) has a `PlatformSSO` dictionary (configured, user not registered) | Apple, "Platform Single Sign-on for macOS" (support.apple.com/guide/deployment/dep7bbb05313) and the `ExtensibleSingleSignOn.PlatformSSO` payload (developer.apple.com/documentation/devicemanagement/extensiblesinglesignon); the `AltSecurityIdentities` check and the managed-preferences layout (`ExtensionIdentifier`, `PlatformSSO:AuthenticationMethod`) as Macjutsu/pseudo reads them (github.com/Macjutsu/pseudo) |
//! | `smart-card-enforced` | `enforceSmartCard` true in `Library/Preferences/com.apple.security.smartcard.plist` or its managed copy, unless the record's `SmartCardEnforcement` is `2` (exempt) or a local group named by `NotEnforcedGroup` lists the user; or the record's `SmartCardEnforcement` is `1` | Apple, "Configure a Mac for smart card–only authentication" (support.apple.com/guide/deployment/depfce8de48b); the per-user attribute and its exempt value 2 as public admin scripts and Apple's `UpdatePreboot` log name it |
//! | `jumpcloud` | `opt/jc/managedUsers.json` lists the user (`"username"`) | the JumpCloud agent's files as TheJumpCloud/support's log-collection scripts read them (github.com/TheJumpCloud/support) |
//! | `jamf-connect` | the record has `NetworkUser`, `OIDCProvider` or `NetworkSignIn`; or the user's `Library/Preferences/com.jamf.connect.state.plist` exists | Jamf Connect documentation, "Local Account Migration" (docs.jamf.com, the `NetworkSignIn` attribute) and jamf/jamfconnect's extension attributes (github.com/jamf/jamfconnect: `NetworkUser`, `OIDCProvider`, `com.jamf.connect.state`) |
//! | `xcreds` | the record has an attribute `_xcreds_…` (`dsAttrTypeNative:_xcreds_oidc_username` and others) | twocanoes/xcreds source (github.com/twocanoes/xcreds) |
//! | `nomad` | the user's `Library/Preferences/com.trusourcelabs.NoMAD.plist` exists (`LocalPasswordSync` read from it or from the system or managed copy) | NoMAD's preferences (`com.trusourcelabs.NoMAD`, `LocalPasswordSync`; nomad.menu documentation and public deployment scripts) |
//! | `mobile-account` | `;LocalCachedUser;` in `authentication_authority`, or an `OriginalNodeName` attribute | Apple's directory record format; jamf/jamfconnect's "Look for Network Users" (`OriginalNodeName`) |
//! | `only-secure-token-holder` | the user is the only `LocalOpenDirectory` crypto user of the volume, or its only volume owner ([`only_owner`]) | `diskutil apfs listCryptoUsers` |
//!
//! What is proven here (unit tests below) is that each signal, laid out as
//! described, is found, that its absence or a planted (linked, foreign,
//! loose) file is "not detected", and that every line fits the screen. That
//! the agents write exactly these files on every version is what the public
//! sources above say, not something fvsync can test: treat the agent signals
//! as well-founded guesses (docs/mdm.md says the same).

use plist::Value;
use serde::{Deserialize, Serialize};

use crate::formats::record::UserRecord;
use crate::fsio::{Kind, Owner, Rel, Root, Want};
use crate::platform::CryptoUser;

/// The largest signal file read (preferences, the JumpCloud user list).
pub const MAX_SIGNAL_FILE: u64 = 1024 * 1024;

/// The widest `what` line (Recovery's Terminal is 80 columns; 4 for the indent).
pub const WHAT_WIDTH: usize = 76;

/// Where a password comes from, as a stable code (`--json`, receipts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SourceCode {
    /// Platform Single Sign-on (the identity provider's password, or a
    /// Secure Enclave key or smart card).
    PlatformSso,
    /// Smart card–only authentication.
    SmartCardEnforced,
    /// A user managed by the JumpCloud agent.
    Jumpcloud,
    /// A user connected to an identity provider by Jamf Connect.
    JamfConnect,
    /// A user created or connected by XCreds.
    Xcreds,
    /// A user of NoMAD.
    Nomad,
    /// A mobile account (a cached directory account).
    MobileAccount,
    /// The only SecureToken holder or volume owner of the volume.
    OnlySecureTokenHolder,
}

impl SourceCode {
    /// The code as text (as in the JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceCode::PlatformSso => "platform-sso",
            SourceCode::SmartCardEnforced => "smart-card-enforced",
            SourceCode::Jumpcloud => "jumpcloud",
            SourceCode::JamfConnect => "jamf-connect",
            SourceCode::Xcreds => "xcreds",
            SourceCode::Nomad => "nomad",
            SourceCode::MobileAccount => "mobile-account",
            SourceCode::OnlySecureTokenHolder => "only-secure-token-holder",
        }
    }
}

/// One place the account's password comes from, or a fact that raises the
/// stakes. Fixed sentences only: no name, path, password or hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct AccountSource {
    /// The stable code.
    pub code: SourceCode,
    /// One short line for the screen (at most 76 columns).
    pub what: String,
    /// What happens at the next login.
    pub next_login: String,
}

impl AccountSource {
    fn new(code: SourceCode, what: &str, next_login: &str) -> AccountSource {
        AccountSource {
            code,
            what: what.to_string(),
            next_login: next_login.to_string(),
        }
    }
}

const NEW_EXACT: &str =
    "NEW must be that password exactly, or the next sync undoes this reconcile.";

// ---------------------------------------------------------------------------
// Reading signals

/// A system file's bytes, `None` when it is missing, untrusted or too large.
fn system_file(root: &Root, path: &str) -> Option<Vec<u8>> {
    let rel = Rel::new(path).ok()?;
    let (bytes, meta) = root.read_opt(&rel, Want::SYSTEM).ok()??;
    (meta.len <= MAX_SIGNAL_FILE && bytes.len() as u64 <= MAX_SIGNAL_FILE).then_some(bytes)
}

/// A file in the user's home (`home/<parts...>`), bound to the uid: every
/// folder on the way a real folder of that uid, the file theirs, private, one
/// link. `None` on anything else.
fn home_file(root: &Root, home: &Rel, uid: u32, parts: &[&str]) -> Option<Vec<u8>> {
    let owner = Want {
        owner: Owner::Uid(uid),
        private: false,
    };
    root.check_dir(home, owner).ok()?;
    let (last, dirs) = parts.split_last()?;
    let mut cur = home.clone();
    for d in dirs {
        cur = cur.join(d).ok()?;
        root.check_dir(&cur, owner).ok()?;
    }
    let rel = cur.join(last).ok()?;
    let (bytes, meta) = root.read_opt(&rel, Want::user(uid)).ok()??;
    (meta.kind == Kind::File && bytes.len() as u64 <= MAX_SIGNAL_FILE).then_some(bytes)
}

/// A signal file's dictionary, through the bounded-nesting reader (a deep
/// file is "not readable", never a stack overflow).
fn plist_dict(bytes: &[u8]) -> Option<plist::Dictionary> {
    crate::formats::plist_safe::parse(bytes)
        .ok()?
        .into_dictionary()
}

/// The record's attribute `name`, matched without case and with or without
/// a `dsAttrTypeNative:` / `dsAttrTypeStandard:` prefix (dslocal keeps native
/// attributes under their bare name): its string values, `None` when absent.
pub fn attr<'a>(rec: &'a UserRecord, name: &str) -> Option<Vec<&'a str>> {
    for (k, v) in rec.dict() {
        let bare = k
            .strip_prefix("dsAttrTypeNative:")
            .or_else(|| k.strip_prefix("dsAttrTypeStandard:"))
            .unwrap_or(k);
        if bare.eq_ignore_ascii_case(name) {
            return Some(match v {
                Value::Array(a) => a.iter().filter_map(Value::as_string).collect(),
                Value::String(s) => vec![s.as_str()],
                _ => Vec::new(),
            });
        }
    }
    None
}

/// Whether the record has an attribute whose bare name starts with `prefix`.
fn has_attr_prefix(rec: &UserRecord, prefix: &str) -> bool {
    rec.dict().keys().any(|k| {
        let bare = k.strip_prefix("dsAttrTypeNative:").unwrap_or(k);
        bare.len() >= prefix.len()
            && bare.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    })
}

fn truthy(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Boolean(b) => Some(*b),
        Value::Integer(i) => i.as_signed().map(|n| n != 0),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Some(true),
            "0" | "false" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Each source

/// How Platform SSO authenticates, from the managed preferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PssoMethod {
    Password,
    SecureEnclave,
    SmartCard,
    Unknown,
}

fn psso_config(root: &Root, user: &str) -> Option<PssoMethod> {
    let mut paths = vec!["Library/Managed Preferences/com.apple.extensiblesso.plist".to_string()];
    if crate::formats::record::check_name(user).is_ok() {
        paths.push(format!(
            "Library/Managed Preferences/{user}/com.apple.extensiblesso.plist"
        ));
    }
    for p in paths {
        let Some(d) = system_file(root, &p).and_then(|b| plist_dict(&b)) else {
            continue;
        };
        let Some(psso) = d.get("PlatformSSO").and_then(Value::as_dictionary) else {
            continue;
        };
        let method = psso
            .get("AuthenticationMethod")
            .or_else(|| psso.get("LoginType"))
            .and_then(Value::as_string)
            .unwrap_or("");
        return Some(match method {
            m if m.eq_ignore_ascii_case("Password") => PssoMethod::Password,
            m if m.to_ascii_lowercase().contains("secureenclave") => PssoMethod::SecureEnclave,
            m if m.eq_ignore_ascii_case("SmartCard") => PssoMethod::SmartCard,
            _ => PssoMethod::Unknown,
        });
    }
    None
}

fn platform_sso(root: &Root, rec: &UserRecord) -> Option<AccountSource> {
    let registered = attr(rec, "AltSecurityIdentities").is_some_and(|v| {
        v.iter()
            .any(|s| s.to_ascii_lowercase().contains("platformsso"))
    });
    let method = psso_config(root, rec.name());
    let next = match method {
        Some(PssoMethod::Password) => {
            "Platform SSO checks the password with the identity provider at login and \
             sets the local password to it."
        }
        Some(PssoMethod::SecureEnclave) | Some(PssoMethod::SmartCard) => {
            "Platform SSO signs in with a Secure Enclave key or smart card; the local \
             password stays the one set here."
        }
        _ => {
            "Platform SSO may check the password with the identity provider at login and \
             set the local password to it."
        }
    };
    let next_pw = format!("{next} {NEW_EXACT}");
    match (registered, method) {
        (true, Some(PssoMethod::Password)) => Some(AccountSource::new(
            SourceCode::PlatformSso,
            "Platform SSO user: the password is the identity provider's",
            &next_pw,
        )),
        (true, Some(PssoMethod::SecureEnclave | PssoMethod::SmartCard)) => {
            Some(AccountSource::new(
                SourceCode::PlatformSso,
                "Platform SSO user (Secure Enclave key or smart card)",
                next,
            ))
        }
        (true, _) => Some(AccountSource::new(
            SourceCode::PlatformSso,
            "Platform SSO user: the identity provider may set the password",
            &next_pw,
        )),
        (false, Some(_)) => Some(AccountSource::new(
            SourceCode::PlatformSso,
            "Platform SSO is set up on this Mac; this user is not registered yet",
            "macOS asks the user to register with the identity provider; with password \
             sync the local password then becomes the identity provider's.",
        )),
        (false, None) => None,
    }
}

fn smart_card(root: &Root, rec: &UserRecord) -> Option<AccountSource> {
    let user_value = attr(rec, "SmartCardEnforcement")
        .and_then(|v| v.first().map(|s| s.trim().to_string()))
        .unwrap_or_default();
    if user_value == "2" {
        return None;
    }
    let paired = rec
        .strings("authentication_authority")
        .iter()
        .any(|s| s.to_ascii_lowercase().starts_with(";tokenidentity;"));
    let mut system = false;
    let mut exempt_group: Option<String> = None;
    for p in [
        "Library/Managed Preferences/com.apple.security.smartcard.plist",
        "Library/Preferences/com.apple.security.smartcard.plist",
    ] {
        if let Some(d) = system_file(root, p).and_then(|b| plist_dict(&b)) {
            if truthy(d.get("enforceSmartCard")) == Some(true) {
                system = true;
                exempt_group = d
                    .get("NotEnforcedGroup")
                    .and_then(Value::as_string)
                    .map(str::to_string);
                break;
            }
        }
    }
    if system {
        if let Some(g) = exempt_group {
            if in_local_group(root, &g, rec.name()) {
                return None;
            }
        }
    }
    if !(system || user_value == "1") {
        return None;
    }
    Some(AccountSource::new(
        SourceCode::SmartCardEnforced,
        if paired {
            "smart card-only login is enforced; a card is paired with this user"
        } else {
            "smart card-only login is enforced for this user"
        },
        "The login window asks for the smart card and its PIN, not a password; the \
         passwords set here are used where the card is not (FileVault, Recovery).",
    ))
}

fn in_local_group(root: &Root, group: &str, user: &str) -> bool {
    if crate::formats::record::check_name(group).is_err() {
        return false;
    }
    let Some(bytes) = system_file(
        root,
        &format!("{}/{group}.plist", crate::formats::record::GROUPS_DIR),
    ) else {
        return false;
    };
    UserRecord::parse(&bytes)
        .map(|g| g.strings("users").contains(&user))
        .unwrap_or(false)
}

/// Finds `"username": <user>` anywhere in a JSON value (bounded depth).
fn json_lists_user(v: &serde_json::Value, user: &str, depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    match v {
        serde_json::Value::Object(o) => {
            o.get("username").and_then(serde_json::Value::as_str) == Some(user)
                || o.values().any(|x| json_lists_user(x, user, depth + 1))
        }
        serde_json::Value::Array(a) => a.iter().any(|x| json_lists_user(x, user, depth + 1)),
        _ => false,
    }
}

fn jumpcloud(root: &Root, rec: &UserRecord) -> Option<AccountSource> {
    let bytes = system_file(root, "opt/jc/managedUsers.json")?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    json_lists_user(&v, rec.name(), 0).then(|| {
        AccountSource::new(
            SourceCode::Jumpcloud,
            "managed by the JumpCloud agent: the password is JumpCloud's",
            &format!(
                "The JumpCloud agent sets the local password to the JumpCloud password when \
                 it next syncs. {NEW_EXACT}"
            ),
        )
    })
}

fn jamf_connect(
    root: &Root,
    rec: &UserRecord,
    home: Option<&Rel>,
    uid: Option<u32>,
) -> Option<AccountSource> {
    let by_record = ["NetworkUser", "OIDCProvider", "NetworkSignIn"]
        .iter()
        .any(|a| attr(rec, a).is_some());
    let by_state = match (home, uid) {
        (Some(h), Some(u)) => home_file(
            root,
            h,
            u,
            &["Library", "Preferences", "com.jamf.connect.state.plist"],
        )
        .is_some(),
        _ => false,
    };
    (by_record || by_state).then(|| {
        AccountSource::new(
            SourceCode::JamfConnect,
            "connected by Jamf Connect: the password is the identity provider's",
            &format!(
                "Jamf Connect checks the password with the identity provider at login and \
                 keeps the local password in sync with it. {NEW_EXACT}"
            ),
        )
    })
}

fn xcreds(rec: &UserRecord) -> Option<AccountSource> {
    has_attr_prefix(rec, "_xcreds_").then(|| {
        AccountSource::new(
            SourceCode::Xcreds,
            "an XCreds user: the password is the identity provider's",
            &format!(
                "XCreds signs in with the identity provider's password and sets the local \
                 password and login keychain to it. {NEW_EXACT}"
            ),
        )
    })
}

fn nomad(root: &Root, home: Option<&Rel>, uid: Option<u32>) -> Option<AccountSource> {
    let (h, u) = (home?, uid?);
    let user = home_file(
        root,
        h,
        u,
        &["Library", "Preferences", "com.trusourcelabs.NoMAD.plist"],
    )?;
    let mut sync = plist_dict(&user).and_then(|d| truthy(d.get("LocalPasswordSync")));
    for p in [
        "Library/Managed Preferences/com.trusourcelabs.NoMAD.plist",
        "Library/Preferences/com.trusourcelabs.NoMAD.plist",
    ] {
        if sync.is_some() {
            break;
        }
        sync = system_file(root, p)
            .and_then(|b| plist_dict(&b))
            .and_then(|d| truthy(d.get("LocalPasswordSync")));
    }
    Some(if sync == Some(true) {
        AccountSource::new(
            SourceCode::Nomad,
            "a NoMAD user with local password sync: the password is AD's",
            &format!(
                "When the user signs in to NoMAD, it sets the local password to the Active \
                 Directory password. {NEW_EXACT}"
            ),
        )
    } else {
        AccountSource::new(
            SourceCode::Nomad,
            "a NoMAD user: Kerberos tickets come from the AD password",
            "NoMAD asks for the Active Directory password for its tickets; the local \
             password stays the one set here unless local password sync is turned on.",
        )
    })
}

fn mobile(rec: &UserRecord) -> Option<AccountSource> {
    let cached = rec
        .strings("authentication_authority")
        .iter()
        .any(|s| s.starts_with(";LocalCachedUser;"));
    (cached || attr(rec, "OriginalNodeName").is_some()).then(|| {
        AccountSource::new(
            SourceCode::MobileAccount,
            "a mobile account: the password is the directory's (cached here)",
            &format!(
                "At login with the directory reachable, macOS checks the password against \
                 the directory and updates the cached copy. {NEW_EXACT}"
            ),
        )
    })
}

/// Where the account's password comes from (see the module docs), in a
/// fixed order. `home` is the user's home folder on the volume (as
/// [`crate::engine::secrets::Identity::home`] gives it); without it, the
/// signals in the home are not looked at. The only-holder fact needs the
/// volume's crypto users: add [`only_owner_source`] to the list.
pub fn sources(root: &Root, record: &UserRecord, home: Option<&Rel>) -> Vec<AccountSource> {
    let uid = record
        .first_string("uid")
        .and_then(|u| u.parse::<u32>().ok());
    [
        platform_sso(root, record),
        smart_card(root, record),
        jumpcloud(root, record),
        jamf_connect(root, record, home, uid),
        xcreds(record),
        nomad(root, home, uid),
        mobile(record),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn is_local(u: &CryptoUser) -> bool {
    u.kind == "LocalOpenDirectory"
}

/// Whether the user (its GeneratedUID, any case) is the volume's only
/// SecureToken holder (the only `LocalOpenDirectory` crypto user) or its
/// only volume owner.
pub fn only_owner(crypto_users: &[CryptoUser], uuid: &str) -> bool {
    let me = |u: &&CryptoUser| is_local(u) && u.uuid.eq_ignore_ascii_case(uuid);
    let Some(mine) = crypto_users.iter().find(me) else {
        return false;
    };
    let others: Vec<&CryptoUser> = crypto_users
        .iter()
        .filter(|u| is_local(u) && !u.uuid.eq_ignore_ascii_case(uuid))
        .collect();
    others.is_empty() || (mine.volume_owner && !others.iter().any(|u| u.volume_owner))
}

/// The `only-secure-token-holder` source, when [`only_owner`] says so.
pub fn only_owner_source(crypto_users: &[CryptoUser], uuid: &str) -> Option<AccountSource> {
    if !only_owner(crypto_users, uuid) {
        return None;
    }
    let sole_token = !crypto_users
        .iter()
        .any(|u| is_local(u) && !u.uuid.eq_ignore_ascii_case(uuid));
    Some(AccountSource::new(
        SourceCode::OnlySecureTokenHolder,
        if sole_token {
            "the only user who can unlock this disk (sole SecureToken holder)"
        } else {
            "the only volume owner of this disk (others can unlock, not authorise)"
        },
        "Nothing changes at login, but every step matters more: if this user's \
         FileVault passphrase is lost, only the recovery key unlocks the disk.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsio::{Ownership, Perms};
    use plist::Dictionary;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn root(d: &std::path::Path) -> Root {
        Root::open(d, Ownership::Creator(me())).unwrap()
    }

    fn record(extra: &[(&str, Value)]) -> UserRecord {
        let mut d = Dictionary::new();
        d.insert("name".into(), Value::Array(vec!["alice".into()]));
        d.insert("uid".into(), Value::Array(vec![me().to_string().into()]));
        d.insert(
            "authentication_authority".into(),
            Value::Array(vec![";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>".into()]),
        );
        for (k, v) in extra {
            d.insert((*k).into(), v.clone());
        }
        UserRecord::from_dict(d)
    }

    fn write(r: &Root, path: &str, bytes: &[u8]) {
        let rel = Rel::new(path).unwrap();
        let (dirs, _) = path.rsplit_once('/').unwrap();
        r.ensure_dir(&Rel::new(dirs).unwrap(), 0o755).unwrap();
        r.write_atomic(
            &rel,
            bytes,
            Perms {
                mode: 0o644,
                owner: None,
            },
        )
        .unwrap();
    }

    fn xml(d: Dictionary) -> Vec<u8> {
        let mut out = Vec::new();
        Value::Dictionary(d).to_writer_xml(&mut out).unwrap();
        out
    }

    fn codes(v: &[AccountSource]) -> Vec<SourceCode> {
        v.iter().map(|s| s.code).collect()
    }

    fn home(r: &Root) -> Rel {
        let h = Rel::new("Users/alice").unwrap();
        r.ensure_dir(
            &h.join("Library").unwrap().join("Preferences").unwrap(),
            0o700,
        )
        .unwrap();
        h
    }

    #[test]
    fn a_plain_local_account_has_no_source() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let h = home(&r);
        assert!(sources(&r, &record(&[]), Some(&h)).is_empty());
    }

    #[test]
    fn mobile_accounts_by_authority_or_original_node() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let rec = record(&[(
            "authentication_authority",
            Value::Array(vec![
                ";LocalCachedUser;/Active Directory/CORP/corp.example:alice:ABCD".into(),
            ]),
        )]);
        let s = sources(&r, &rec, None);
        assert_eq!(codes(&s), vec![SourceCode::MobileAccount]);
        assert!(s[0]
            .next_login
            .contains("NEW must be that password exactly"));
        let rec = record(&[(
            "OriginalNodeName",
            Value::Array(vec!["/Active Directory/CORP".into()]),
        )]);
        assert_eq!(
            codes(&sources(&r, &rec, None)),
            vec![SourceCode::MobileAccount]
        );
    }

    #[test]
    fn platform_sso_registered_configured_or_neither() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let registered = record(&[(
            "AltSecurityIdentities",
            Value::Array(vec!["PlatformSSO:alice@example.com".into()]),
        )]);
        // Registered, no managed preferences readable: "may".
        let s = sources(&r, &registered, None);
        assert_eq!(codes(&s), vec![SourceCode::PlatformSso]);
        assert!(s[0].what.contains("may set"), "{}", s[0].what);
        // Configured with the password method.
        let mut psso = Dictionary::new();
        psso.insert("AuthenticationMethod".into(), "Password".into());
        let mut top = Dictionary::new();
        top.insert("ExtensionIdentifier".into(), "com.example.sso".into());
        top.insert("PlatformSSO".into(), Value::Dictionary(psso));
        write(
            &r,
            "Library/Managed Preferences/com.apple.extensiblesso.plist",
            &xml(top),
        );
        let s = sources(&r, &registered, None);
        assert_eq!(
            s[0].what,
            "Platform SSO user: the password is the identity provider's"
        );
        assert!(s[0].next_login.contains("NEW must be"));
        // Configured, user not registered.
        let s = sources(&r, &record(&[]), None);
        assert_eq!(codes(&s), vec![SourceCode::PlatformSso]);
        assert!(s[0].what.contains("not registered"));
        // The same file writable by others is not trusted: not detected.
        let p = d
            .path()
            .join("Library/Managed Preferences/com.apple.extensiblesso.plist");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(sources(&r, &record(&[]), None).is_empty());
    }

    #[test]
    fn smart_card_enforcement_system_user_and_exemptions() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        // Per-user enforcement alone.
        let rec = record(&[("SmartCardEnforcement", Value::Array(vec!["1".into()]))]);
        assert_eq!(
            codes(&sources(&r, &rec, None)),
            vec![SourceCode::SmartCardEnforced]
        );
        // System enforcement.
        let mut sc = Dictionary::new();
        sc.insert("enforceSmartCard".into(), Value::Boolean(true));
        sc.insert("NotEnforcedGroup".into(), "exempt".into());
        write(
            &r,
            "Library/Preferences/com.apple.security.smartcard.plist",
            &xml(sc),
        );
        let paired = record(&[(
            "authentication_authority",
            Value::Array(vec![";tokenidentity;ABCDEF0123".into()]),
        )]);
        let s = sources(&r, &paired, None);
        assert_eq!(codes(&s), vec![SourceCode::SmartCardEnforced]);
        assert!(s[0].what.contains("paired"));
        // Exempt by the user attribute.
        let rec = record(&[("SmartCardEnforcement", Value::Array(vec!["2".into()]))]);
        assert!(sources(&r, &rec, None).is_empty());
        // Exempt by the local group NotEnforcedGroup names.
        let mut g = Dictionary::new();
        g.insert("name".into(), Value::Array(vec!["exempt".into()]));
        g.insert("users".into(), Value::Array(vec!["alice".into()]));
        let mut bin = Vec::new();
        Value::Dictionary(g).to_writer_binary(&mut bin).unwrap();
        write(
            &r,
            &format!("{}/exempt.plist", crate::formats::record::GROUPS_DIR),
            &bin,
        );
        assert!(sources(&r, &record(&[]), None).is_empty());
    }

    #[test]
    fn jumpcloud_lists_the_user_or_not() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        write(
            &r,
            "opt/jc/managedUsers.json",
            br#"[{"username":"bob","uid":502},{"username":"alice","uid":501}]"#,
        );
        assert_eq!(
            codes(&sources(&r, &record(&[]), None)),
            vec![SourceCode::Jumpcloud]
        );
        write(&r, "opt/jc/managedUsers.json", br#"[{"username":"bob"}]"#);
        assert!(sources(&r, &record(&[]), None).is_empty());
        // Malformed: not detected, no error.
        write(&r, "opt/jc/managedUsers.json", b"{not json");
        assert!(sources(&r, &record(&[]), None).is_empty());
        // A link to a file that lists the user is never followed.
        write(&r, "elsewhere/users.json", br#"[{"username":"alice"}]"#);
        fs::remove_file(d.path().join("opt/jc/managedUsers.json")).unwrap();
        std::os::unix::fs::symlink(
            d.path().join("elsewhere/users.json"),
            d.path().join("opt/jc/managedUsers.json"),
        )
        .unwrap();
        assert!(sources(&r, &record(&[]), None).is_empty());
    }

    #[test]
    fn jamf_connect_by_record_or_state_file() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let h = home(&r);
        for a in [
            "NetworkUser",
            "dsAttrTypeNative:OIDCProvider",
            "networksignin",
        ] {
            let rec = record(&[(a, Value::Array(vec!["x".into()]))]);
            assert_eq!(
                codes(&sources(&r, &rec, Some(&h))),
                vec![SourceCode::JamfConnect],
                "{a}"
            );
        }
        assert!(sources(&r, &record(&[]), Some(&h)).is_empty());
        write(
            &r,
            "Users/alice/Library/Preferences/com.jamf.connect.state.plist",
            &xml(Dictionary::new()),
        );
        assert_eq!(
            codes(&sources(&r, &record(&[]), Some(&h))),
            vec![SourceCode::JamfConnect]
        );
        // Without the home, the state file is not looked at.
        assert!(sources(&r, &record(&[]), None).is_empty());
    }

    #[test]
    fn xcreds_by_record_attribute() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        for a in [
            "_xcreds_oidc_username",
            "dsAttrTypeNative:_xcreds_oidc_full_username",
        ] {
            let rec = record(&[(a, Value::Array(vec!["alice@example.com".into()]))]);
            assert_eq!(
                codes(&sources(&r, &rec, None)),
                vec![SourceCode::Xcreds],
                "{a}"
            );
        }
    }

    #[test]
    fn nomad_with_and_without_password_sync() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let h = home(&r);
        let mut p = Dictionary::new();
        p.insert("LastUser".into(), "alice".into());
        write(
            &r,
            "Users/alice/Library/Preferences/com.trusourcelabs.NoMAD.plist",
            &xml(p.clone()),
        );
        let s = sources(&r, &record(&[]), Some(&h));
        assert_eq!(codes(&s), vec![SourceCode::Nomad]);
        assert!(s[0].what.contains("Kerberos"));
        // Sync turned on by the managed preferences.
        let mut m = Dictionary::new();
        m.insert("LocalPasswordSync".into(), Value::Integer(1.into()));
        write(
            &r,
            "Library/Managed Preferences/com.trusourcelabs.NoMAD.plist",
            &xml(m),
        );
        let s = sources(&r, &record(&[]), Some(&h));
        assert!(s[0].what.contains("local password sync"), "{}", s[0].what);
        assert!(s[0].next_login.contains("NEW must be"));
        // A user preference file writable by others is not trusted.
        fs::set_permissions(
            d.path()
                .join("Users/alice/Library/Preferences/com.trusourcelabs.NoMAD.plist"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        assert!(sources(&r, &record(&[]), Some(&h)).is_empty());
    }

    #[test]
    fn a_home_folder_that_is_a_link_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        write(
            &r,
            "Other/alice/Library/Preferences/com.trusourcelabs.NoMAD.plist",
            &xml(Dictionary::new()),
        );
        r.ensure_dir(&Rel::new("Users").unwrap(), 0o755).unwrap();
        std::os::unix::fs::symlink(d.path().join("Other/alice"), d.path().join("Users/alice"))
            .unwrap();
        let h = Rel::new("Users/alice").unwrap();
        assert!(sources(&r, &record(&[]), Some(&h)).is_empty());
    }

    fn cu(uuid: &str, kind: &str, owner: bool) -> CryptoUser {
        CryptoUser {
            uuid: uuid.into(),
            kind: kind.into(),
            volume_owner: owner,
            hint: None,
        }
    }

    #[test]
    fn only_owner_counts_local_crypto_users_and_owners() {
        let me = "AAAAAAAA-0000-0000-0000-000000000001";
        let other = "BBBBBBBB-0000-0000-0000-000000000002";
        let prk = "EBC6C064-0000-11AA-AA11-00306543ECAC";
        // Alone, with a recovery key beside it.
        let v = [
            cu(me, "LocalOpenDirectory", true),
            cu(prk, "PersonalRecovery", false),
        ];
        assert!(only_owner(&v, &me.to_lowercase()));
        let s = only_owner_source(&v, me).unwrap();
        assert_eq!(s.code, SourceCode::OnlySecureTokenHolder);
        assert!(s.what.contains("sole SecureToken holder"));
        // Another token holder who is not an owner: the only owner.
        let v = [
            cu(me, "LocalOpenDirectory", true),
            cu(other, "LocalOpenDirectory", false),
        ];
        assert!(only_owner(&v, me));
        assert!(only_owner_source(&v, me)
            .unwrap()
            .what
            .contains("volume owner"));
        // Two owners: no.
        let v = [
            cu(me, "LocalOpenDirectory", true),
            cu(other, "LocalOpenDirectory", true),
        ];
        assert!(!only_owner(&v, me));
        assert!(only_owner_source(&v, me).is_none());
        // Not a crypto user at all: no.
        let v = [cu(other, "LocalOpenDirectory", true)];
        assert!(!only_owner(&v, me));
        assert!(!only_owner(&[], me));
    }

    /// Every line a source can show fits Recovery's Terminal, and none names
    /// anything but fixed words.
    #[test]
    fn every_line_fits_and_is_fixed() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let h = home(&r);
        let rec = record(&[
            (
                "AltSecurityIdentities",
                Value::Array(vec!["PlatformSSO:alice@example.com".into()]),
            ),
            ("SmartCardEnforcement", Value::Array(vec!["1".into()])),
            (
                "NetworkUser",
                Value::Array(vec!["alice@example.com".into()]),
            ),
            (
                "_xcreds_oidc_username",
                Value::Array(vec!["alice@example.com".into()]),
            ),
            (
                "OriginalNodeName",
                Value::Array(vec!["/LDAPv3/ldap.example".into()]),
            ),
        ]);
        write(&r, "opt/jc/managedUsers.json", br#"[{"username":"alice"}]"#);
        write(
            &r,
            "Users/alice/Library/Preferences/com.trusourcelabs.NoMAD.plist",
            &xml(Dictionary::new()),
        );
        let mut all = sources(&r, &rec, Some(&h));
        let me = "AAAAAAAA-0000-0000-0000-000000000001";
        all.push(only_owner_source(&[cu(me, "LocalOpenDirectory", true)], me).unwrap());
        assert_eq!(
            codes(&all),
            vec![
                SourceCode::PlatformSso,
                SourceCode::SmartCardEnforced,
                SourceCode::Jumpcloud,
                SourceCode::JamfConnect,
                SourceCode::Xcreds,
                SourceCode::Nomad,
                SourceCode::MobileAccount,
                SourceCode::OnlySecureTokenHolder,
            ]
        );
        for s in &all {
            assert!(s.what.chars().count() <= WHAT_WIDTH, "{}", s.what);
            assert!(!s.what.contains("alice") && !s.next_login.contains("alice"));
            assert!(!s.what.contains("example"));
            let j = serde_json::to_value(s).unwrap();
            assert_eq!(j["code"], s.code.as_str());
        }
        // The other variants of each line.
        let mut more = Vec::new();
        for method in ["Password", "UserSecureEnclaveKey", "SmartCard", "Something"] {
            let mut psso = Dictionary::new();
            psso.insert("AuthenticationMethod".into(), method.into());
            let mut top = Dictionary::new();
            top.insert("PlatformSSO".into(), Value::Dictionary(psso));
            write(
                &r,
                "Library/Managed Preferences/com.apple.extensiblesso.plist",
                &xml(top),
            );
            more.extend(sources(&r, &rec, None));
            more.extend(sources(&r, &record(&[]), None));
        }
        let mut sync = Dictionary::new();
        sync.insert("LocalPasswordSync".into(), Value::Boolean(true));
        write(
            &r,
            "Users/alice/Library/Preferences/com.trusourcelabs.NoMAD.plist",
            &xml(sync),
        );
        more.extend(sources(&r, &record(&[]), Some(&h)));
        let paired = record(&[
            ("SmartCardEnforcement", Value::Array(vec!["1".into()])),
            (
                "authentication_authority",
                Value::Array(vec![";tokenidentity;ABCDEF".into()]),
            ),
        ]);
        more.extend(sources(&r, &paired, None));
        let other = "BBBBBBBB-0000-0000-0000-000000000002";
        more.extend(only_owner_source(
            &[
                cu(me, "LocalOpenDirectory", true),
                cu(other, "LocalOpenDirectory", false),
            ],
            me,
        ));
        let whats: std::collections::BTreeSet<&str> =
            all.iter().chain(&more).map(|s| s.what.as_str()).collect();
        assert_eq!(whats.len(), 14, "{whats:#?}");
        for w in whats {
            assert!(w.chars().count() <= WHAT_WIDTH, "{w}");
        }
    }
}
