//! The offline secrets: the login hash (`SALTED-SHA512-PBKDF2`), the SRP
//! verifier and the login keychain. Checking them costs no FileVault attempt,
//! so whenever they are readable they are checked against both passwords, in
//! parallel, and each derivation is computed once.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::formats::record::{self, UserRecord};
use crate::formats::shadowhash::{Check, ShadowHash};
use crate::secret::Password;

/// Which of the passwords a secret accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Accepts {
    /// OLD only.
    Old,
    /// NEW only (for `verify`: the password given).
    New,
    /// Both (OLD and NEW are the same password).
    Both,
    /// Neither.
    Neither,
    /// Could not be checked (see the note).
    Unknown,
    /// Does not apply here (FileVault off, no keychain, ...).
    NotApplicable,
}

impl Accepts {
    /// From what OLD (if checked) and NEW gave.
    pub fn from(old: Option<bool>, new: bool) -> Self {
        match (old, new) {
            (Some(true), true) => Accepts::Both,
            (Some(true), false) => Accepts::Old,
            (_, true) => Accepts::New,
            _ => Accepts::Neither,
        }
    }

    /// True when NEW opens it (or it does not apply).
    pub fn ok_for_new(self) -> bool {
        matches!(self, Accepts::New | Accepts::Both | Accepts::NotApplicable)
    }

    /// True when OLD opens it.
    pub fn ok_for_old(self) -> bool {
        matches!(self, Accepts::Old | Accepts::Both)
    }

    /// The word a table shows.
    pub fn word(self, one_password: bool) -> &'static str {
        match (self, one_password) {
            (Accepts::New | Accepts::Both, true) => "yes",
            (Accepts::Neither, true) => "no",
            (Accepts::Old, _) => "OLD",
            (Accepts::New, _) => "NEW",
            (Accepts::Both, _) => "OLD and NEW",
            (Accepts::Neither, _) => "neither",
            (Accepts::Unknown, _) => "cannot check",
            (Accepts::NotApplicable, _) => "n/a",
        }
    }
}

/// One row of the secret matrix.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `filevault`, `login`, `srp`, `keychain`.
    pub secret: &'static str,
    /// Which password it accepts.
    pub accepts: Accepts,
    /// Why it could not be checked, or a detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the offline secrets say.
pub struct Offline {
    /// The user record's path.
    pub record_path: PathBuf,
    /// The parsed record.
    pub record: UserRecord,
    /// Its ShadowHashData (None when absent).
    pub shadow: Option<ShadowHash>,
    /// Why the ShadowHashData could not be read, if so.
    pub shadow_error: Option<String>,
    /// The login keychain's path (relative to the volume root) and bytes, when present.
    pub keychain: Option<(PathBuf, Vec<u8>)>,
    /// `login`, `srp`, `keychain` rows.
    pub rows: Vec<Row>,
}

impl Offline {
    /// The row of one secret.
    pub fn row(&self, secret: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.secret == secret)
    }
}

/// The login keychain path of a record, relative to the volume root.
pub fn keychain_rel(rec: &UserRecord) -> PathBuf {
    let home = rec.first_string("home").unwrap_or("");
    let sane = home.starts_with("/Users/")
        && !home.split('/').any(|c| c == ".." || c == ".")
        && !home.chars().any(char::is_control);
    let home = if sane {
        home.trim_start_matches('/').to_string()
    } else {
        format!("Users/{}", rec.name())
    };
    PathBuf::from(home).join("Library/Keychains/login.keychain-db")
}

/// The Local Items keychain (`<Keychains>/<hardware UUID>/keychain-2.db`), when present:
/// its folder relative to the volume root.
pub fn local_items(root: &Path, login_kc_rel: &Path) -> Option<String> {
    let dir = root.join(login_kc_rel.parent()?);
    let entries = std::fs::read_dir(&dir).ok()?;
    for e in entries.flatten() {
        let p = e.path();
        let is_dir = std::fs::symlink_metadata(&p)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if is_dir && std::fs::symlink_metadata(p.join("keychain-2.db")).is_ok() {
            let rel = p.join("keychain-2.db");
            return Some(
                rel.strip_prefix(root)
                    .unwrap_or(&rel)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    None
}

/// Refuses a path under `root` any of whose folders is a symbolic link: a
/// user can plant one under their home (`Library/Keychains` is theirs), and
/// root must not then read or write through it.
///
/// # Errors
/// A folder between `root` and the file is a symbolic link (exit 5).
pub fn no_symlinked_folders(root: &Path, path: &Path) -> Result<()> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::Refused,
                format!(
                    "{} is a symbolic link; fvsync never follows links under a user's folders",
                    crate::text::quote_path(&at)
                ),
            )
            .hint("someone may have tampered with the volume; inspect it by hand"));
        }
    }
    Ok(())
}

/// Runs closures in parallel on scoped threads and returns their results in order.
pub fn parallel<R: Send>(jobs: Vec<Box<dyn FnOnce() -> R + Send + '_>>) -> Vec<R> {
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs.into_iter().map(|j| s.spawn(j)).collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(e) => std::panic::resume_unwind(e),
            })
            .collect()
    })
}

fn check_kc(bytes: &[u8], pw: &[u8]) -> std::result::Result<bool, String> {
    match crate::formats::keychain::check(bytes, pw) {
        Ok(crate::formats::keychain::KeychainCheck::Accepts) => Ok(true),
        Ok(crate::formats::keychain::KeychainCheck::Rejects) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads the record and keychain under `root` and checks them against OLD
/// (when given) and NEW, each derivation once, in parallel.
///
/// # Errors
/// The record is missing, unreadable or malformed.
pub fn offline(root: &Path, user: &str, old: Option<&Password>, new: &Password) -> Result<Offline> {
    let record_path = record::record_path(root, user);
    no_symlinked_folders(root, &record_path)?;
    let rec = record::load(&record_path, Some(user))?;
    let (shadow, shadow_error) = match rec.shadow_hash() {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e)),
    };
    let kc_rel = keychain_rel(&rec);
    let kc_path = root.join(&kc_rel);
    no_symlinked_folders(root, &kc_path)?;
    let keychain = match std::fs::symlink_metadata(&kc_path) {
        Ok(_) => Some((kc_rel.clone(), crate::fsio::read_capped(&kc_path)?)),
        Err(_) => None,
    };
    // OLD equal to NEW: derive once and use the answer for both.
    let old_given = old.is_some();
    let old = old.filter(|o| !o.ct_eq(new));

    let salted = shadow.as_ref().and_then(|s| s.salted.as_ref());
    let srp = shadow.as_ref().and_then(|s| s.srp.as_ref());
    let mut jobs: Vec<Box<dyn FnOnce() -> Option<bool> + Send + '_>> = Vec::new();
    let pws: Vec<&Password> = old.into_iter().chain(std::iter::once(new)).collect();
    for pw in &pws {
        let pw = *pw;
        jobs.push(Box::new(move || {
            salted.map(|e| e.check(pw.expose()) == Check::Match)
        }));
        jobs.push(Box::new(move || {
            srp.map(|e| e.check(pw.expose()) == Check::Match)
        }));
    }
    let results = parallel(jobs);
    // (OLD's answer, NEW's answer) for job column i (0 = login, 1 = SRP).
    let pick = |i: usize| -> (Option<bool>, Option<bool>) {
        if pws.len() == 2 {
            (results[i], results[2 + i])
        } else if old_given {
            (results[i], results[i])
        } else {
            (None, results[i])
        }
    };
    let row_for = |secret: &'static str,
                   scheme: &str,
                   (o, n): (Option<bool>, Option<bool>),
                   iterations: Option<u32>|
     -> Row {
        match n {
            Some(n) => Row {
                secret,
                accepts: Accepts::from(o, n),
                note: iterations.map(|i| format!("{scheme}, {i} iterations")),
            },
            None => Row {
                secret,
                accepts: Accepts::Unknown,
                note: Some(match (&shadow, &shadow_error) {
                    (_, Some(e)) => format!("ShadowHashData unreadable: {e}"),
                    (None, None) => "no ShadowHashData in the record".to_string(),
                    (Some(s), None) if !s.other_schemes.is_empty() => format!(
                        "no {scheme} entry; the record holds {} (not a scheme fvsync checks)",
                        crate::text::escape(&s.other_schemes.join(", "))
                    ),
                    _ => format!("no {scheme} entry"),
                }),
            },
        }
    };
    let mut rows = vec![
        row_for(
            "login",
            crate::formats::shadowhash::SALTED,
            pick(0),
            salted.map(|e| e.iterations),
        ),
        row_for(
            "srp",
            crate::formats::shadowhash::SRP,
            pick(1),
            srp.map(|e| e.iterations),
        ),
    ];
    let kc_row = match &keychain {
        None => Row {
            secret: "keychain",
            accepts: Accepts::NotApplicable,
            note: Some("no login keychain".into()),
        },
        Some((_, bytes)) => {
            let n = check_kc(bytes, new.expose());
            let o = match old {
                Some(o) => Some(check_kc(bytes, o.expose())),
                None if old_given => Some(n.clone()),
                None => None,
            };
            match (o, n) {
                (_, Err(e)) | (Some(Err(e)), _) => Row {
                    secret: "keychain",
                    accepts: Accepts::Unknown,
                    note: Some(e),
                },
                (o, Ok(n)) => Row {
                    secret: "keychain",
                    accepts: Accepts::from(o.map(|r| r.unwrap_or(false)), n),
                    note: None,
                },
            }
        }
    };
    rows.push(kc_row);
    if let Some(dir) = local_items(root, &kc_rel) {
        rows.push(Row {
            secret: "local-items",
            accepts: Accepts::Unknown,
            note: Some(format!(
                "out of reach offline (Secure Enclave keys); macOS asks once for OLD after login [{dir}]"
            )),
        });
    }
    Ok(Offline {
        record_path,
        record: rec,
        shadow,
        shadow_error,
        keychain,
        rows,
    })
}
