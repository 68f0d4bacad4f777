//! Local user records: `private/var/db/dslocal/nodes/Default/users/<name>.plist`
//! on a Data volume. Every attribute is an array; the file is a binary plist
//! (XML is accepted on read: older tools and macOS releases wrote it). Parsing
//! is pure and bounded: the record, and every plist nested in it
//! (`ShadowHashData`, `accountPolicyData`, `passwordpolicyoptions`), goes
//! through [`crate::formats::plist_safe`] first, so a deeply nested file is an
//! error, never a stack overflow.
//!
//! Writing keeps every attribute fvsync does not own value for value, in its
//! order (`_writers_*`, `passwordpolicyoptions`, `KerberosKeys` when not
//! regenerated, unknown keys); the `plist` crate keeps a dictionary's order and
//! stores XML's `<date>`, `<real>`, `<data>` and big integers exactly in the
//! binary form (tested on a real 10.8 XML record, `tests/records.rs`). The
//! attributes fvsync owns are `ShadowHashData`, the `ShadowHash` entry of
//! `authentication_authority` (every other entry is kept in its place), three
//! keys of `accountPolicyData`, and, when their layout is understood,
//! `KerberosKeys` and `HeimdalSRPKey`.
//!
//! ## accountPolicyData and "change at next login"
//!
//! `accountPolicyData` is one data blob holding a plist (XML on every public
//! sample: `creationTime`, `failedLoginCount`, `failedLoginTimestamp`,
//! `passwordLastSetTime`), kept in the encoding found. Account policies
//! (`pwpolicy(8)`, macOS 10.10 and later) are evaluated against
//! `policyAttributeLastPasswordChangeTime`, which is `passwordLastSetTime`; a
//! "must change at next login" is a `policyCategoryPasswordChange` policy
//! `policyAttributeLastPasswordChangeTime < policyAttributeNewPasswordRequiredTime`
//! with the time in its `policyParameters`. Setting `passwordLastSetTime` to
//! now would therefore *satisfy* such a pending policy and silently cancel the
//! change the administrator asked for: [`UserRecord::update_password_policy`]
//! never moves it past a pending `policyAttributeNewPasswordRequiredTime`
//! (and never backwards: Recovery's clock may be wrong). The legacy form
//! (`newPasswordRequired` in `passwordpolicyoptions`, OS X 10.7–10.9) is kept
//! byte for byte. Where per-user policies live and these key names are what
//! `pwpolicy(8)` and Apple's OpenDirectory constants say, not something seen in
//! a real record: docs/records.md.

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::formats::plist_safe;
use crate::formats::shadowhash::ShadowHash;

/// The dslocal users folder, relative to a Data volume's root.
pub const USERS_DIR: &str = "private/var/db/dslocal/nodes/Default/users";
/// The dslocal groups folder, relative to a Data volume's root.
pub const GROUPS_DIR: &str = "private/var/db/dslocal/nodes/Default/groups";

/// Checks a short name before it is used in a path or printed.
///
/// # Errors
/// Empty, over 255 bytes, `.`/`..`, or containing `/`, NUL or control characters.
pub fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.chars().any(|c| c == '/' || c.is_control());
    if bad {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "'{}' is not a valid macOS short name",
                crate::text::escape(&name.chars().take(64).collect::<String>())
            ),
        )
        .hint("short names are the account names shown by `fvsync users`"));
    }
    Ok(())
}

/// Path of a user's record under a Data volume root.
pub fn record_path(root: &Path, name: &str) -> PathBuf {
    root.join(USERS_DIR).join(format!("{name}.plist"))
}

/// A parsed user record.
#[derive(Clone, Debug)]
pub struct UserRecord {
    dict: Dictionary,
}

/// `accountPolicyData`'s fields that fvsync reads and updates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountPolicy {
    /// Seconds since 1970 when the password was last set.
    pub password_last_set: Option<f64>,
    /// Failed logins since the last success.
    pub failed_login_count: Option<i64>,
}

/// One `authentication_authority` value, `version;tag;data` (Apple's Open
/// Directory Programming Guide, "Authentication Authority Attribute"): the
/// version is often empty, the data may itself contain `;`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authority<'a> {
    /// The version field (empty when absent).
    pub version: &'a str,
    /// The authentication type: `ShadowHash`, `SecureToken`, `Kerberosv5`,
    /// `LocalCachedUser`, `DisabledUser`, ...
    pub tag: &'a str,
    /// Everything after the tag's `;` (may be empty).
    pub data: &'a str,
}

impl<'a> Authority<'a> {
    /// Splits a value; `None` when it has fewer than two `;`.
    pub fn parse(raw: &'a str) -> Option<Self> {
        let (version, rest) = raw.split_once(';')?;
        let (tag, data) = rest.split_once(';')?;
        Some(Authority { version, tag, data })
    }
}

/// Tag of a mobile (cached directory) account's authority: its data is
/// `<directory node>:<record name>:<GUID>`.
pub const LOCAL_CACHED_USER: &str = "LocalCachedUser";
/// Tag of a disabled account's authority (its data is the authority it replaced).
pub const DISABLED_USER: &str = "DisabledUser";
/// Tag of the login hash's authority.
pub const SHADOW_HASH: &str = "ShadowHash";

/// Key of the time from which a password change is required, in an account
/// policy's `policyParameters` (`pwpolicy(8)`; Apple's
/// `kODPolicyAttributeNewPasswordRequiredTime`).
pub const NEW_PASSWORD_REQUIRED_TIME: &str = "policyAttributeNewPasswordRequiredTime";
/// The legacy per-user flag in `passwordpolicyoptions` (`pwpolicy -setpolicy
/// newPasswordRequired=1`, OS X 10.7–10.9).
pub const NEW_PASSWORD_REQUIRED: &str = "newPasswordRequired";

/// A password change the record asks for at the next login.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ForcedChange {
    /// `newPasswordRequired` is set in `passwordpolicyoptions`.
    LegacyFlag,
    /// An account policy's `policyAttributeNewPasswordRequiredTime` (seconds
    /// since 1970) is later than `passwordLastSetTime`.
    Policy {
        /// The latest such time.
        required_since: f64,
    },
}

/// What [`UserRecord::update_password_policy`] is asked to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PolicyUpdate {
    /// Seconds since 1970 (the clock of the machine fvsync runs on).
    pub now: f64,
    /// Also satisfy a pending "change at next login" (by default it is kept).
    pub clear_forced_change: bool,
}

/// What [`UserRecord::update_password_policy`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PolicyOutcome {
    /// `accountPolicyData` was absent and was created.
    pub created: bool,
    /// `accountPolicyData` could not be read: it was left as it was.
    pub left_unreadable: bool,
    /// `passwordLastSetTime` was moved forward.
    pub last_set_updated: bool,
    /// The forced change found before the write, if any.
    pub forced_change: Option<ForcedChange>,
    /// It is no longer pending after the write (only when asked).
    pub forced_change_cleared: bool,
}

fn first_data(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Array(a) => a.first()?.as_data(),
        Value::Data(d) => Some(d),
        _ => None,
    }
}

/// A nested plist blob's dictionary and whether it was binary.
fn nested_dict(blob: &[u8]) -> Option<(Dictionary, bool)> {
    if blob.len() > 64 * 1024 {
        return None;
    }
    let d = plist_safe::parse(blob).ok()?.into_dictionary()?;
    Some((d, blob.starts_with(b"bplist")))
}

fn encode_nested(d: Dictionary, binary: bool, what: &str) -> Result<Value> {
    let mut buf = Vec::new();
    let v = Value::Dictionary(d);
    let r = if binary {
        v.to_writer_binary(&mut buf)
    } else {
        v.to_writer_xml(&mut buf)
    };
    r.map_err(|e| Error::new(ErrorKind::Failure, format!("cannot encode {what}: {e}")))?;
    Ok(Value::Array(vec![Value::Data(buf)]))
}

/// A time value (real, integer or date) as seconds since 1970.
fn seconds(v: &Value) -> Option<f64> {
    match v {
        Value::Real(r) => Some(*r),
        Value::Integer(i) => i
            .as_signed()
            .map(|i| i as f64)
            .or_else(|| i.as_unsigned().map(|u| u as f64)),
        Value::Date(d) => {
            let t = std::time::SystemTime::from(*d);
            Some(match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            })
        }
        _ => None,
    }
}

/// `secs` in the plist type of `like` (a real stays a real, an integer an
/// integer, a date a date; a real when absent).
fn same_kind(like: Option<&Value>, secs: f64) -> Value {
    match like {
        Some(Value::Integer(_)) => Value::Integer((secs as i64).into()),
        Some(Value::Date(_)) => {
            let t = std::time::Duration::try_from_secs_f64(secs.abs())
                .ok()
                .and_then(|d| {
                    if secs >= 0.0 {
                        std::time::UNIX_EPOCH.checked_add(d)
                    } else {
                        std::time::UNIX_EPOCH.checked_sub(d)
                    }
                });
            t.map_or(Value::Real(secs), |t| Value::Date(t.into()))
        }
        _ => Value::Real(secs),
    }
}

/// A zero (a failed-login count or timestamp) in the plist type of `like`.
fn zero_like(like: &Value) -> Value {
    match like {
        Value::Real(_) => Value::Real(0.0),
        // CoreFoundation's zero date, 2001-01-01 (what 10.8 records hold).
        Value::Date(_) => same_kind(Some(like), 978_307_200.0),
        _ => Value::Integer(0.into()),
    }
}

/// The latest `policyAttributeNewPasswordRequiredTime` anywhere in `root`
/// (walked without recursion; the nesting is already bounded).
fn new_password_required_time(root: &Dictionary) -> Option<f64> {
    let mut best: Option<f64> = None;
    let mut stack: Vec<&Value> = root.values().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::Dictionary(d) => {
                if let Some(t) = d.get(NEW_PASSWORD_REQUIRED_TIME).and_then(seconds) {
                    best = Some(best.map_or(t, |b| b.max(t)));
                }
                stack.extend(d.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    best
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Boolean(b) => *b,
        Value::String(s) => s.trim() == "1" || s.trim().eq_ignore_ascii_case("true"),
        other => seconds(other).is_some_and(|n| n != 0.0),
    }
}

impl UserRecord {
    /// Parses a record's bytes (binary or XML plist).
    ///
    /// # Errors
    /// Not a plist, nested too deeply, not a dict, or `name` missing.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let v = plist_safe::parse(bytes).map_err(|e| format!("not a property list ({e})"))?;
        let dict = v
            .into_dictionary()
            .ok_or_else(|| "the top level is not a dictionary".to_string())?;
        let rec = UserRecord { dict };
        if rec.first_string("name").is_none() {
            return Err("no `name` attribute".into());
        }
        Ok(rec)
    }

    /// Serialises as a binary plist.
    ///
    /// # Errors
    /// The plist writer failed.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        Value::Dictionary(self.dict.clone())
            .to_writer_binary(&mut out)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Failure,
                    format!("cannot encode a user record: {e}"),
                )
            })?;
        Ok(out)
    }

    /// Builds a record from attributes (the simulated Mac).
    pub fn from_dict(dict: Dictionary) -> Self {
        UserRecord { dict }
    }

    /// First string of an attribute array (or a bare string).
    pub fn first_string(&self, key: &str) -> Option<&str> {
        match self.dict.get(key)? {
            Value::Array(a) => a.first()?.as_string(),
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// All strings of an attribute array.
    pub fn strings(&self, key: &str) -> Vec<&str> {
        match self.dict.get(key) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_string).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        }
    }

    /// Short name.
    pub fn name(&self) -> &str {
        self.first_string("name").unwrap_or("")
    }

    /// Full name.
    pub fn real_name(&self) -> Option<&str> {
        self.first_string("realname")
    }

    /// uid, when numeric.
    pub fn uid(&self) -> Option<i64> {
        self.first_string("uid")?.parse().ok()
    }

    /// GeneratedUID, upper-case.
    pub fn generated_uid(&self) -> Option<String> {
        self.first_string("generateduid")
            .map(str::to_ascii_uppercase)
    }

    /// Whether `authentication_authority` carries `;SecureToken;`.
    pub fn has_secure_token(&self) -> bool {
        self.authorities().iter().any(|a| a.tag == "SecureToken")
    }

    /// Whether the record has a ShadowHashData attribute at all.
    pub fn has_shadow_hash(&self) -> bool {
        self.dict.contains_key("ShadowHashData")
    }

    /// The parsed ShadowHashData, `None` when absent.
    ///
    /// # Errors
    /// Present but malformed (the message names the field, never bytes).
    pub fn shadow_hash(&self) -> std::result::Result<Option<ShadowHash>, String> {
        match self.dict.get("ShadowHashData") {
            None => Ok(None),
            Some(v) => ShadowHash::parse_attribute(v)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    /// Replaces ShadowHashData and makes the `ShadowHash` entry of
    /// `authentication_authority` name exactly the schemes written. Every
    /// other entry (`;SecureToken;`, `;Kerberosv5;...`, `;LocalCachedUser;...`,
    /// anything unknown) is kept as it was, in its place. A disabled account
    /// stays disabled: its `;DisabledUser;` entry gets the new list inside it
    /// (what macOS restores when the account is enabled), and no `ShadowHash`
    /// entry is added beside it.
    ///
    /// # Errors
    /// The hash cannot be encoded.
    pub fn set_shadow_hash(&mut self, sh: &ShadowHash) -> Result<()> {
        let attr = sh.to_attribute().map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("cannot encode ShadowHashData: {e}"),
            )
        })?;
        self.dict.insert("ShadowHashData".into(), attr);
        let names = sh.scheme_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hashlist = crate::formats::shadowhash::hashlist_authority(&names);
        let disabled = self.is_disabled();
        let old: Vec<Value> = match self.dict.get("authentication_authority") {
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => vec![Value::String(s.clone())],
            _ => Vec::new(),
        };
        let mut aa: Vec<Value> = Vec::with_capacity(old.len() + 1);
        let mut placed = false;
        for v in old {
            let a = v.as_string().and_then(Authority::parse);
            match a {
                Some(a) if a.tag == SHADOW_HASH => {
                    if !placed {
                        aa.push(Value::String(hashlist.clone()));
                        placed = true;
                    }
                }
                Some(a)
                    if a.tag == DISABLED_USER
                        && Authority::parse(a.data).is_some_and(|i| i.tag == SHADOW_HASH) =>
                {
                    aa.push(Value::String(format!(";{DISABLED_USER};{hashlist}")));
                }
                _ => aa.push(v),
            }
        }
        if !placed && !disabled {
            aa.insert(0, Value::String(hashlist));
        }
        self.dict
            .insert("authentication_authority".into(), Value::Array(aa));
        Ok(())
    }

    /// The `accountPolicyData` fields, when present and readable.
    pub fn account_policy(&self) -> Option<AccountPolicy> {
        let (d, _) = self.policy_dict()?;
        Some(AccountPolicy {
            password_last_set: d.get("passwordLastSetTime").and_then(seconds),
            failed_login_count: d.get("failedLoginCount").and_then(|v| {
                v.as_signed_integer()
                    .or_else(|| v.as_real().map(|r| r as i64))
            }),
        })
    }

    fn policy_dict(&self) -> Option<(Dictionary, bool)> {
        nested_dict(first_data(self.dict.get("accountPolicyData")?)?)
    }

    fn legacy_options(&self) -> Option<(Dictionary, bool)> {
        nested_dict(first_data(self.dict.get("passwordpolicyoptions")?)?)
    }

    /// A password change the record asks for at the next login, if one is
    /// pending: an account policy's `policyAttributeNewPasswordRequiredTime`
    /// later than `passwordLastSetTime` (anywhere in `accountPolicyData`), or
    /// the legacy `newPasswordRequired` flag of `passwordpolicyoptions`.
    pub fn forced_password_change(&self) -> Option<ForcedChange> {
        if let Some((d, _)) = self.policy_dict() {
            let last = d
                .get("passwordLastSetTime")
                .and_then(seconds)
                .unwrap_or(0.0);
            if let Some(t) = new_password_required_time(&d) {
                if last < t {
                    return Some(ForcedChange::Policy { required_since: t });
                }
            }
        }
        let (o, _) = self.legacy_options()?;
        o.get(NEW_PASSWORD_REQUIRED)
            .is_some_and(truthy)
            .then_some(ForcedChange::LegacyFlag)
    }

    /// [`UserRecord::update_password_policy`] with a pending forced change kept.
    ///
    /// # Errors
    /// The plist cannot be encoded.
    pub fn touch_password_policy(&mut self, now: f64) -> Result<PolicyOutcome> {
        self.update_password_policy(&PolicyUpdate {
            now,
            clear_forced_change: false,
        })
    }

    /// Updates `accountPolicyData` after a password set from Recovery:
    ///
    /// - `failedLoginCount` and `failedLoginTimestamp` go to 0, in the plist
    ///   type found (the timestamp only when present);
    /// - `passwordLastSetTime` goes to `now`, but never backwards (a wrong
    ///   Recovery clock would otherwise expire the password or re-arm a
    ///   change already made), and, while a "change at next login" is pending
    ///   and `clear_forced_change` is false, never to or past its
    ///   `policyAttributeNewPasswordRequiredTime` (that is what satisfies the
    ///   policy): the change stays pending;
    /// - with `clear_forced_change`, the legacy `newPasswordRequired` of
    ///   `passwordpolicyoptions` goes to 0 too; otherwise that attribute is
    ///   not touched (byte for byte).
    ///
    /// Every other key, the key order and the blob's encoding (XML or binary)
    /// are kept. An absent `accountPolicyData` is created in macOS's shape
    /// (XML: `creationTime`, `failedLoginCount`, `failedLoginTimestamp`,
    /// `passwordLastSetTime`); one that cannot be read is left as it is.
    ///
    /// # Errors
    /// A plist cannot be encoded.
    pub fn update_password_policy(&mut self, u: &PolicyUpdate) -> Result<PolicyOutcome> {
        let mut out = PolicyOutcome {
            forced_change: self.forced_password_change(),
            ..PolicyOutcome::default()
        };
        let (mut d, binary) = match (
            self.dict.contains_key("accountPolicyData"),
            self.policy_dict(),
        ) {
            (_, Some(p)) => p,
            (false, None) => {
                out.created = true;
                let mut d = Dictionary::new();
                d.insert("creationTime".into(), Value::Real(u.now));
                d.insert("failedLoginCount".into(), Value::Integer(0.into()));
                d.insert("failedLoginTimestamp".into(), Value::Integer(0.into()));
                (d, false)
            }
            (true, None) => {
                out.left_unreadable = true;
                return Ok(out);
            }
        };
        let count = d
            .get("failedLoginCount")
            .map_or(Value::Integer(0.into()), zero_like);
        d.insert("failedLoginCount".into(), count);
        if let Some(ts) = d.get("failedLoginTimestamp").map(zero_like) {
            d.insert("failedLoginTimestamp".into(), ts);
        }
        let old = d.get("passwordLastSetTime").and_then(seconds);
        let pending = match out.forced_change {
            Some(ForcedChange::Policy { required_since }) if !u.clear_forced_change => {
                Some(required_since)
            }
            _ => None,
        };
        let forward = old.is_none_or(|o| u.now > o);
        let keeps_pending = pending.is_none_or(|t| u.now < t);
        if forward && keeps_pending {
            let v = same_kind(d.get("passwordLastSetTime"), u.now);
            d.insert("passwordLastSetTime".into(), v);
            out.last_set_updated = true;
        }
        let v = encode_nested(d, binary, "accountPolicyData")?;
        self.dict.insert("accountPolicyData".into(), v);
        if u.clear_forced_change {
            if let Some((mut o, binary)) = self.legacy_options() {
                if let Some(z) = o
                    .get(NEW_PASSWORD_REQUIRED)
                    .filter(|v| truthy(v))
                    .map(zero_like)
                {
                    o.insert(NEW_PASSWORD_REQUIRED.into(), z);
                    let v = encode_nested(o, binary, "passwordpolicyoptions")?;
                    self.dict.insert("passwordpolicyoptions".into(), v);
                }
            }
            out.forced_change_cleared =
                out.forced_change.is_some() && self.forced_password_change().is_none();
        }
        Ok(out)
    }

    /// The underlying attributes.
    pub fn dict(&self) -> &Dictionary {
        &self.dict
    }

    /// The login hint (`hint`), when set and not empty.
    pub fn hint(&self) -> Option<&str> {
        self.first_string("hint").filter(|h| !h.is_empty())
    }

    /// Sets the login hint (an empty string clears it), as an array of one
    /// string like every attribute.
    pub fn set_hint(&mut self, hint: &str) {
        self.dict.insert(
            "hint".into(),
            Value::Array(vec![Value::String(hint.into())]),
        );
    }

    /// The `authentication_authority` strings.
    pub fn authentication_authority(&self) -> Vec<&str> {
        self.strings("authentication_authority")
    }

    /// The `authentication_authority` values that parse as `version;tag;data`.
    pub fn authorities(&self) -> Vec<Authority<'_>> {
        self.authentication_authority()
            .into_iter()
            .filter_map(Authority::parse)
            .collect()
    }

    /// A mobile (cached directory) account: a `LocalCachedUser` authority or
    /// an `OriginalNodeName` attribute, so the directory owns the password. At
    /// its next login with the directory reachable, macOS checks the password
    /// against the directory and re-caches it.
    pub fn is_mobile(&self) -> bool {
        self.authorities()
            .iter()
            .any(|a| a.tag == LOCAL_CACHED_USER)
            || self.first_string("OriginalNodeName").is_some()
    }

    /// A mobile account's `LocalCachedUser` data (`<node>:<name>:<GUID>`).
    pub fn mobile_origin(&self) -> Option<&str> {
        self.authorities()
            .into_iter()
            .find(|a| a.tag == LOCAL_CACHED_USER)
            .map(|a| a.data)
    }

    /// A disabled account (a `DisabledUser` authority).
    pub fn is_disabled(&self) -> bool {
        self.authorities().iter().any(|a| a.tag == DISABLED_USER)
    }

    fn data_values(&self, key: &str) -> Vec<&[u8]> {
        match self.dict.get(key) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_data).collect(),
            Some(Value::Data(d)) => vec![d.as_slice()],
            _ => Vec::new(),
        }
    }

    /// The `KerberosKeys` values (DER blobs, the LKDC keys).
    pub fn kerberos_keys(&self) -> Vec<&[u8]> {
        self.data_values("KerberosKeys")
    }

    /// Replaces the `KerberosKeys` values.
    pub fn set_kerberos_keys(&mut self, values: Vec<Vec<u8>>) {
        self.dict.insert(
            "KerberosKeys".into(),
            Value::Array(values.into_iter().map(Value::Data).collect()),
        );
    }

    /// The `HeimdalSRPKey` values.
    pub fn heimdal_srp_keys(&self) -> Vec<&[u8]> {
        self.data_values("HeimdalSRPKey")
    }

    /// Replaces the `HeimdalSRPKey` values.
    pub fn set_heimdal_srp_keys(&mut self, values: Vec<Vec<u8>>) {
        self.dict.insert(
            "HeimdalSRPKey".into(),
            Value::Array(values.into_iter().map(Value::Data).collect()),
        );
    }
}

/// Reads and parses a record file.
///
/// A record must be a regular file (never a symbolic link), owned by root (or
/// by the effective user, for tests run without root), and not writable by its
/// group or by everyone; anything else is refused (exit 5), because macOS keeps
/// records root-owned 0600 and a looser one may have been planted.
///
/// # Errors
/// Unreadable, a symlink, not trusted (owner, mode), oversized or malformed; or
/// `name` does not match the file.
pub fn load(path: &Path, expected_name: Option<&str>) -> Result<UserRecord> {
    let bytes = crate::fsio::read_trusted(path)?;
    let rec = UserRecord::parse(&bytes).map_err(|e| Error::malformed(path, e))?;
    if let Some(n) = expected_name {
        if rec.name() != n {
            return Err(Error::malformed(
                path,
                format!(
                    "the record's name is '{}', not '{}'",
                    crate::text::escape(rec.name()),
                    crate::text::escape(n)
                ),
            ));
        }
    }
    Ok(rec)
}

/// Short names of the `admin` group's members, when the group can be read.
pub fn admin_members(root: &Path) -> Vec<String> {
    let path = root.join(GROUPS_DIR).join("admin.plist");
    let Ok(bytes) = crate::fsio::read_trusted(&path) else {
        return Vec::new();
    };
    let Ok(rec) = UserRecord::parse(&bytes) else {
        return Vec::new();
    };
    rec.strings("users").iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> UserRecord {
        let mut d = Dictionary::new();
        d.insert("name".into(), Value::Array(vec!["alice".into()]));
        d.insert("uid".into(), Value::Array(vec!["501".into()]));
        d.insert(
            "authentication_authority".into(),
            Value::Array(vec![
                ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>".into(),
                ";SecureToken;".into(),
            ]),
        );
        UserRecord::from_dict(d)
    }

    #[test]
    fn names() {
        for bad in ["", ".", "..", "a/b", "a\0b", "a\nb", &"x".repeat(256)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("alice").unwrap();
        check_name("jean.dupont").unwrap();
    }

    #[test]
    fn roundtrip_binary_keeps_attributes() {
        let r = rec();
        let bytes = r.to_bytes().unwrap();
        assert!(bytes.starts_with(b"bplist00"));
        let back = UserRecord::parse(&bytes).unwrap();
        assert_eq!(back.name(), "alice");
        assert_eq!(back.uid(), Some(501));
        assert!(back.has_secure_token());
    }

    #[test]
    fn policy_touch() {
        let mut r = rec();
        assert_eq!(r.account_policy(), None);
        r.touch_password_policy(1_700_000_000.5).unwrap();
        let p = r.account_policy().unwrap();
        assert_eq!(p.password_last_set, Some(1_700_000_000.5));
        assert_eq!(p.failed_login_count, Some(0));
    }

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/data/samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn nested(blob: &[u8]) -> Dictionary {
        plist_safe::parse(blob).unwrap().into_dictionary().unwrap()
    }

    fn policy_blob(r: &UserRecord) -> Vec<u8> {
        r.data_values("accountPolicyData")[0].to_vec()
    }

    fn with_policy(mut r: UserRecord, d: Dictionary, binary: bool) -> UserRecord {
        let mut blob = Vec::new();
        if binary {
            Value::Dictionary(d).to_writer_binary(&mut blob).unwrap();
        } else {
            Value::Dictionary(d).to_writer_xml(&mut blob).unwrap();
        }
        r.dict.insert(
            "accountPolicyData".into(),
            Value::Array(vec![Value::Data(blob)]),
        );
        r
    }

    /// The 10.14 record shape (Orchard's `dscl` output): only three keys of
    /// accountPolicyData change, in their types; the blob stays XML; every
    /// other attribute is kept, in order.
    #[test]
    fn modern_record_policy_update_keeps_the_rest() {
        let orig = UserRecord::parse(&sample("dslocal-user-itsafeature-10.14.plist")).unwrap();
        assert_eq!((orig.name(), orig.uid()), ("itsafeature", Some(501)));
        assert!(orig.has_secure_token() && !orig.is_mobile() && !orig.is_disabled());
        let tags: Vec<&str> = orig.authorities().iter().map(|a| a.tag).collect();
        assert_eq!(tags, ["ShadowHash", "Kerberosv5", "SecureToken"]);
        let p = orig.account_policy().unwrap();
        // The XML text's nearest f64, as macOS's CFNumber holds it.
        assert_eq!(
            p.password_last_set,
            Some("1540611064.6205959".parse().unwrap())
        );
        assert_eq!(p.failed_login_count, Some(0));
        assert_eq!(orig.forced_password_change(), None);
        let before = nested(&policy_blob(&orig));
        let mut r = orig.clone();
        let out = r.touch_password_policy(1_800_000_000.25).unwrap();
        assert!(out.last_set_updated && !out.created && !out.left_unreadable);
        let blob = policy_blob(&r);
        assert!(blob.starts_with(b"<?xml"), "the encoding is kept");
        let after = nested(&blob);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>()
        );
        assert_eq!(after.get("creationTime"), before.get("creationTime"));
        assert_eq!(
            after.get("passwordLastSetTime"),
            Some(&Value::Real(1_800_000_000.25))
        );
        assert_eq!(
            after.get("failedLoginTimestamp"),
            Some(&Value::Integer(0.into()))
        );
        let keys = |r: &UserRecord| r.dict().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&r), keys(&orig));
        for (k, v) in orig.dict() {
            if k != "accountPolicyData" {
                assert_eq!(r.dict().get(k), Some(v), "{k}");
            }
        }
    }

    #[test]
    fn failed_logins_are_reset_in_their_own_types() {
        let mut d = Dictionary::new();
        d.insert("failedLoginCount".into(), Value::Integer(7.into()));
        d.insert("failedLoginTimestamp".into(), Value::Real(1_700_000_000.0));
        d.insert(
            "passwordLastSetTime".into(),
            Value::Integer(1_600_000_000.into()),
        );
        d.insert("zzz".into(), Value::String("kept".into()));
        let mut r = with_policy(rec(), d, true);
        r.touch_password_policy(1_800_000_000.9).unwrap();
        let blob = policy_blob(&r);
        assert!(blob.starts_with(b"bplist00"), "binary stays binary");
        let d = nested(&blob);
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            [
                "failedLoginCount",
                "failedLoginTimestamp",
                "passwordLastSetTime",
                "zzz"
            ]
        );
        assert_eq!(d["failedLoginCount"], Value::Integer(0.into()));
        assert_eq!(d["failedLoginTimestamp"], Value::Real(0.0));
        assert_eq!(
            d["passwordLastSetTime"],
            Value::Integer(1_800_000_000.into())
        );
        assert_eq!(d["zzz"], Value::String("kept".into()));
        // Dates stay dates (CoreFoundation's zero date for the timestamp).
        let date = |secs: u64| {
            Value::Date((std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).into())
        };
        let mut d = Dictionary::new();
        d.insert("failedLoginTimestamp".into(), date(1_700_000_000));
        d.insert("passwordLastSetTime".into(), date(1_600_000_000));
        let mut r = with_policy(rec(), d, false);
        r.touch_password_policy(1_800_000_000.0).unwrap();
        let d = nested(&policy_blob(&r));
        assert_eq!(d["failedLoginTimestamp"], date(978_307_200));
        assert_eq!(d["passwordLastSetTime"], date(1_800_000_000));
        assert_eq!(d["failedLoginCount"], Value::Integer(0.into()));
    }

    /// accountPolicyData with a "must change at next login" policy, as
    /// `pwpolicy -u <user> -setaccountpolicies` expresses it.
    fn forced(last_set: f64, required: f64) -> Dictionary {
        let mut params = Dictionary::new();
        params.insert(NEW_PASSWORD_REQUIRED_TIME.into(), Value::Real(required));
        let mut pol = Dictionary::new();
        pol.insert(
            "policyContent".into(),
            Value::String(
                "(policyAttributeLastPasswordChangeTime < policyAttributeNewPasswordRequiredTime) \
                 and (policyAttributeCurrentTime >= policyAttributeNewPasswordRequiredTime)"
                    .into(),
            ),
        );
        pol.insert(
            "policyIdentifier".into(),
            Value::String("Must change password at next login".into()),
        );
        pol.insert("policyParameters".into(), Value::Dictionary(params));
        let mut cats = Dictionary::new();
        cats.insert(
            "policyCategoryPasswordChange".into(),
            Value::Array(vec![Value::Dictionary(pol)]),
        );
        let mut d = Dictionary::new();
        d.insert("creationTime".into(), Value::Real(1_500_000_000.0));
        d.insert("failedLoginCount".into(), Value::Integer(3.into()));
        d.insert("failedLoginTimestamp".into(), Value::Integer(0.into()));
        d.insert("passwordLastSetTime".into(), Value::Real(last_set));
        d.insert("policies".into(), Value::Dictionary(cats));
        d
    }

    #[test]
    fn a_pending_forced_change_stays_pending() {
        let r = with_policy(rec(), forced(1_600_000_000.0, 1_700_000_000.0), false);
        let pending = Some(ForcedChange::Policy {
            required_since: 1_700_000_000.0,
        });
        assert_eq!(r.forced_password_change(), pending);
        // Required since a time already past: passwordLastSetTime is kept.
        let mut kept = r.clone();
        let out = kept.touch_password_policy(1_800_000_000.0).unwrap();
        assert_eq!(out.forced_change, pending);
        assert!(!out.last_set_updated && !out.forced_change_cleared);
        let p = kept.account_policy().unwrap();
        assert_eq!(p.password_last_set, Some(1_600_000_000.0));
        assert_eq!(p.failed_login_count, Some(0), "the lockout is still reset");
        assert_eq!(kept.forced_password_change(), pending);
        let d = nested(&policy_blob(&kept));
        assert_eq!(d["policies"], forced(0.0, 1_700_000_000.0)["policies"]);
        // Required from a time still to come: moved forward, not past it.
        let mut soon = r.clone();
        let out = soon.touch_password_policy(1_650_000_000.0).unwrap();
        assert!(out.last_set_updated);
        assert_eq!(
            soon.account_policy().unwrap().password_last_set,
            Some(1_650_000_000.0)
        );
        assert_eq!(soon.forced_password_change(), pending);
        // Asked to clear it: the new time satisfies the policy, which is kept.
        let mut cleared = r.clone();
        let out = cleared
            .update_password_policy(&PolicyUpdate {
                now: 1_800_000_000.0,
                clear_forced_change: true,
            })
            .unwrap();
        assert!(out.last_set_updated && out.forced_change_cleared);
        assert_eq!(cleared.forced_password_change(), None);
        assert!(nested(&policy_blob(&cleared)).contains_key("policies"));
        // A change made after the required time is not pending, and a write
        // with an early clock does not re-arm it.
        let mut done = with_policy(rec(), forced(1_750_000_000.0, 1_700_000_000.0), true);
        assert_eq!(done.forced_password_change(), None);
        done.touch_password_policy(1_600_000_000.0).unwrap();
        assert_eq!(done.forced_password_change(), None);
        assert_eq!(
            done.account_policy().unwrap().password_last_set,
            Some(1_750_000_000.0)
        );
    }

    #[test]
    fn the_legacy_flag_is_kept_byte_for_byte() {
        let mut opts = Dictionary::new();
        opts.insert("failedLoginCount".into(), Value::Integer(0.into()));
        opts.insert(NEW_PASSWORD_REQUIRED.into(), Value::Integer(1.into()));
        let mut blob = Vec::new();
        Value::Dictionary(opts).to_writer_xml(&mut blob).unwrap();
        let mut r = rec();
        r.dict.insert(
            "passwordpolicyoptions".into(),
            Value::Array(vec![Value::Data(blob.clone())]),
        );
        assert_eq!(r.forced_password_change(), Some(ForcedChange::LegacyFlag));
        let mut kept = r.clone();
        let out = kept.touch_password_policy(1_800_000_000.0).unwrap();
        assert!(out.created && out.last_set_updated);
        assert_eq!(out.forced_change, Some(ForcedChange::LegacyFlag));
        assert_eq!(kept.data_values("passwordpolicyoptions"), [&blob[..]]);
        assert_eq!(
            kept.forced_password_change(),
            Some(ForcedChange::LegacyFlag)
        );
        // No accountPolicyData before: one in macOS's shape, XML.
        let created = policy_blob(&kept);
        assert!(created.starts_with(b"<?xml"));
        assert_eq!(
            nested(&created).keys().collect::<Vec<_>>(),
            [
                "creationTime",
                "failedLoginCount",
                "failedLoginTimestamp",
                "passwordLastSetTime"
            ]
        );
        // Asked: the flag goes to 0, in its type, the rest of the blob kept.
        let out = r
            .update_password_policy(&PolicyUpdate {
                now: 1_800_000_000.0,
                clear_forced_change: true,
            })
            .unwrap();
        assert!(out.forced_change_cleared);
        let after = nested(r.data_values("passwordpolicyoptions")[0]);
        assert_eq!(after[NEW_PASSWORD_REQUIRED], Value::Integer(0.into()));
        assert_eq!(after["failedLoginCount"], Value::Integer(0.into()));
        for (flag, on) in [
            (Value::Boolean(true), true),
            (Value::String("1".into()), true),
            (Value::String("0".into()), false),
            (Value::Integer(0.into()), false),
        ] {
            let mut o = Dictionary::new();
            o.insert(NEW_PASSWORD_REQUIRED.into(), flag);
            let mut b = Vec::new();
            Value::Dictionary(o).to_writer_binary(&mut b).unwrap();
            let mut r = rec();
            r.dict.insert(
                "passwordpolicyoptions".into(),
                Value::Array(vec![Value::Data(b)]),
            );
            assert_eq!(r.forced_password_change().is_some(), on);
        }
    }

    #[test]
    fn password_last_set_never_moves_backwards() {
        let mut r = rec();
        r.touch_password_policy(1_800_000_000.0).unwrap();
        // Recovery's clock says 2001: the later time stays, counts still reset.
        let mut d = nested(&policy_blob(&r));
        d.insert("failedLoginCount".into(), Value::Integer(5.into()));
        let mut r = with_policy(r, d, false);
        let out = r.touch_password_policy(978_307_200.0).unwrap();
        assert!(!out.last_set_updated);
        let p = r.account_policy().unwrap();
        assert_eq!(p.password_last_set, Some(1_800_000_000.0));
        assert_eq!(p.failed_login_count, Some(0));
    }

    #[test]
    fn an_unreadable_policy_blob_is_left_alone() {
        let deep = {
            let mut x =
                b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>x</key>".to_vec();
            x.extend(std::iter::repeat_n(&b"<array>"[..], 100).flatten());
            x.extend(std::iter::repeat_n(&b"</array>"[..], 100).flatten());
            x.extend_from_slice(b"</dict></plist>");
            x
        };
        for v in [
            Value::Array(vec![Value::Data(b"not a plist".to_vec())]),
            Value::Array(vec![Value::Data(deep)]),
            Value::Array(vec![Value::Data(vec![b' '; 70_000])]),
            Value::Array(vec![Value::String("text".into())]),
            Value::Array(vec![]),
            Value::Integer(3.into()),
        ] {
            let mut r = rec();
            r.dict.insert("accountPolicyData".into(), v.clone());
            assert_eq!(r.account_policy(), None);
            let out = r.touch_password_policy(1.0).unwrap();
            assert!(out.left_unreadable && !out.last_set_updated && !out.created);
            assert_eq!(r.dict["accountPolicyData"], v);
        }
    }

    #[test]
    fn authorities_are_kept_and_a_disabled_account_stays_disabled() {
        let sh = crate::formats::shadowhash::generate(b"pw", 1000, 1000).unwrap();
        let both = ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>";
        let mut r = rec();
        let aa = [
            ";Kerberosv5;;alice@LKDC:SHA1.0F;LKDC:SHA1.0F;".to_string(),
            "1.0.0;LocalCachedUser;/LDAPv3/ldap.example.com:alice:AFE4".to_string(),
            "1.0;ShadowHash;HASHLIST:<SALTED-SHA512>".to_string(),
            ";SecureToken;".to_string(),
            "no separators".to_string(),
        ];
        r.dict.insert(
            "authentication_authority".into(),
            Value::Array(aa.iter().map(|s| Value::String(s.clone())).collect()),
        );
        assert!(r.is_mobile() && r.has_secure_token() && !r.is_disabled());
        assert_eq!(
            r.mobile_origin(),
            Some("/LDAPv3/ldap.example.com:alice:AFE4")
        );
        r.set_shadow_hash(&sh).unwrap();
        assert_eq!(
            r.authentication_authority(),
            [&aa[0][..], &aa[1], both, &aa[3], &aa[4]]
        );
        // A disabled account (Apple's form): no ShadowHash entry is added
        // beside it; the list inside is the new one.
        let mut d = rec();
        d.dict.insert(
            "authentication_authority".into(),
            Value::Array(vec![
                ";DisabledUser;;ShadowHash;HASHLIST:<SALTED-SHA512>".into(),
                ";SecureToken;".into(),
            ]),
        );
        assert!(d.is_disabled());
        d.set_shadow_hash(&sh).unwrap();
        assert_eq!(
            d.authentication_authority(),
            [&format!(";DisabledUser;{both}")[..], ";SecureToken;"]
        );
        assert!(d.is_disabled());
        // A record with no authority at all gets the ShadowHash one.
        let mut n = rec();
        n.dict.remove("authentication_authority");
        n.set_shadow_hash(&sh).unwrap();
        assert_eq!(n.authentication_authority(), [both]);
        assert_eq!(
            Authority::parse(";DisabledUser;;ShadowHash;").unwrap().data,
            ";ShadowHash;"
        );
    }

    /// 200,000 nested arrays: an error in milliseconds, on a small stack,
    /// where building and dropping the value would abort the process.
    #[test]
    fn deeply_nested_records_are_refused() {
        let n = 200_000;
        let mut xml = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>name</key><array><string>a</string></array><key>x</key>".to_vec();
        xml.extend(std::iter::repeat_n(&b"<array>"[..], n).flatten());
        xml.extend(std::iter::repeat_n(&b"</array>"[..], n).flatten());
        xml.extend_from_slice(b"</dict></plist>");
        let e = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let t = std::time::Instant::now();
                let e = UserRecord::parse(&xml).unwrap_err();
                assert!(t.elapsed() < std::time::Duration::from_secs(5));
                e
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(e, "not a property list (nested deeper than 64 levels)");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(UserRecord::parse(b"garbage").is_err());
        assert!(UserRecord::parse(b"bplist00\x00\x01").is_err());
    }
}
