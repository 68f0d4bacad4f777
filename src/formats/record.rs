//! Local user records: `private/var/db/dslocal/nodes/Default/users/<name>.plist`
//! on a Data volume. Every attribute is an array; the file is a binary plist
//! (XML is accepted on read). Parsing is pure; writing keeps every attribute we
//! do not change, in its order.

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use crate::error::{Error, ErrorKind, Result};
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

impl UserRecord {
    /// Parses a record's bytes (binary or XML plist).
    ///
    /// # Errors
    /// Not a plist, not a dict, or `name` missing.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let v = Value::from_reader(std::io::Cursor::new(bytes))
            .map_err(|e| format!("not a property list ({e})"))?;
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
        self.strings("authentication_authority")
            .iter()
            .any(|s| s.starts_with(";SecureToken;"))
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

    /// Replaces ShadowHashData and makes the HASHLIST entry of
    /// `authentication_authority` name exactly the schemes written.
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
        let mut aa: Vec<Value> = Vec::new();
        let mut placed = false;
        for s in self.strings("authentication_authority") {
            if s.starts_with(";ShadowHash;") {
                if !placed {
                    aa.push(Value::String(hashlist.clone()));
                    placed = true;
                }
            } else {
                aa.push(Value::String(s.to_string()));
            }
        }
        if !placed {
            aa.insert(0, Value::String(hashlist));
        }
        self.dict
            .insert("authentication_authority".into(), Value::Array(aa));
        Ok(())
    }

    /// The `accountPolicyData` fields, when present and readable.
    pub fn account_policy(&self) -> Option<AccountPolicy> {
        let d = self.policy_dict()?;
        Some(AccountPolicy {
            password_last_set: d.get("passwordLastSetTime").and_then(number),
            failed_login_count: d.get("failedLoginCount").and_then(|v| {
                v.as_signed_integer()
                    .or_else(|| v.as_real().map(|r| r as i64))
            }),
        })
    }

    fn policy_blob(&self) -> Option<Vec<u8>> {
        match self.dict.get("accountPolicyData")? {
            Value::Array(a) => Some(a.first()?.as_data()?.to_vec()),
            Value::Data(d) => Some(d.clone()),
            _ => None,
        }
    }

    fn policy_dict(&self) -> Option<Dictionary> {
        let blob = self.policy_blob()?;
        if blob.len() > 64 * 1024 {
            return None;
        }
        Value::from_reader(std::io::Cursor::new(blob))
            .ok()?
            .into_dictionary()
    }

    /// Sets `passwordLastSetTime` to `now`, and `failedLoginCount` and
    /// `failedLoginTimestamp` to 0, keeping every other key of
    /// `accountPolicyData` (created if absent) and its encoding (XML or binary,
    /// as found). Nothing that asks for a password change at next login is
    /// set: `passwordpolicyoptions` (with its `newPasswordRequired`) and the
    /// policies inside `accountPolicyData` are kept as they are.
    ///
    /// # Errors
    /// The plist cannot be encoded.
    pub fn touch_password_policy(&mut self, now: f64) -> Result<()> {
        let binary = self.policy_blob().is_some_and(|b| b.starts_with(b"bplist"));
        let mut d = self.policy_dict().unwrap_or_else(|| {
            let mut d = Dictionary::new();
            d.insert("creationTime".into(), Value::Real(now));
            d
        });
        d.insert("passwordLastSetTime".into(), Value::Real(now));
        d.insert("failedLoginCount".into(), Value::Integer(0.into()));
        if d.contains_key("failedLoginTimestamp") {
            d.insert("failedLoginTimestamp".into(), Value::Integer(0.into()));
        }
        let mut buf = Vec::new();
        let v = Value::Dictionary(d);
        let w = if binary {
            v.to_writer_binary(&mut buf)
        } else {
            v.to_writer_xml(&mut buf)
        };
        w.map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("cannot encode accountPolicyData: {e}"),
            )
        })?;
        self.dict.insert(
            "accountPolicyData".into(),
            Value::Array(vec![Value::Data(buf)]),
        );
        Ok(())
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

    /// A mobile (cached directory) account: `;LocalCachedUser;` in its
    /// `authentication_authority`, so the directory owns the password.
    pub fn is_mobile(&self) -> bool {
        self.authentication_authority()
            .iter()
            .any(|a| a.starts_with(";LocalCachedUser;"))
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

fn number(v: &Value) -> Option<f64> {
    v.as_real()
        .or_else(|| v.as_signed_integer().map(|i| i as f64))
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

    #[test]
    fn garbage_is_an_error() {
        assert!(UserRecord::parse(b"garbage").is_err());
        assert!(UserRecord::parse(b"bplist00\x00\x01").is_err());
    }
}
