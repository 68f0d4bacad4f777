//! The secrets fvsync reports on, and the offline ones it checks itself: the
//! login hash (`SALTED-SHA512-PBKDF2`), the SRP verifier and the login
//! keychain. Checking them costs no FileVault attempt, so whenever they are
//! readable they are checked against both passwords, in parallel, and each
//! derivation is computed once.
//!
//! Every file is reached through [`Root`] and bound to the user: the record is
//! root's (a system file), the home and keychain must belong to the uid the
//! record names, with one link each and no link on the way.

use serde::Serialize;

use crate::engine::step::Step;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::record::UserRecord;
use crate::formats::shadowhash::{Check, ShadowHash};
use crate::fsio::{Kind, Meta, Rel, Root, Want};
use crate::secret::Password;
use crate::text::escape;

/// The users folder of the local directory node.
pub const USERS_DIR: &str = "private/var/db/dslocal/nodes/Default/users";
/// The groups folder of the local directory node.
pub const GROUPS_DIR: &str = "private/var/db/dslocal/nodes/Default/groups";

/// One secret of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Secret {
    /// The FileVault unlock (the user's crypto user of an encrypted, FileVault volume).
    Filevault,
    /// The user's crypto user of a volume with FileVault off (T2 and Apple
    /// silicon encrypt the Data volume anyway): the SecureToken.
    SecureToken,
    /// The login hash (`SALTED-SHA512-PBKDF2`).
    Login,
    /// The SRP verifier (`SRP-RFC5054-4096-SHA512-PBKDF2`).
    Srp,
    /// The local KDC's Kerberos keys (`KerberosKeys`, and `HeimdalSRPKey`).
    Kerberos,
    /// The login keychain.
    Keychain,
    /// The Local Items keychain and user keybag: never checkable offline.
    LocalItems,
}

impl Secret {
    /// The words a table shows.
    pub fn label(self) -> &'static str {
        match self {
            Secret::Filevault => "FileVault",
            Secret::SecureToken => "SecureToken",
            Secret::Login => "login password",
            Secret::Srp => "SRP verifier",
            Secret::Kerberos => "Kerberos keys",
            Secret::Keychain => "login keychain",
            Secret::LocalItems => "Local Items",
        }
    }

    /// The step that brings this secret to NEW.
    pub fn step(self) -> Option<Step> {
        match self {
            Secret::Filevault | Secret::SecureToken => Some(Step::Filevault),
            Secret::Login | Secret::Srp | Secret::Kerberos => Some(Step::Login),
            Secret::Keychain => Some(Step::Keychain),
            Secret::LocalItems => None,
        }
    }
}

/// Which of the passwords a secret accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Does not apply here (FileVault off, no keychain, no SRP entry, ...).
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

    /// True when NEW opens it.
    pub fn takes_new(self) -> bool {
        matches!(self, Accepts::New | Accepts::Both)
    }

    /// True when OLD opens it.
    pub fn takes_old(self) -> bool {
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Row {
    /// Which secret.
    pub secret: Secret,
    /// Which password it accepts.
    pub accepts: Accepts,
    /// Whether it counts toward the verdict (see [`crate::engine::plan::Verdict`]).
    pub counts: bool,
    /// A short note for the table (why it could not be checked, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Details shown with `--verbose` (schemes, iteration counts, paths).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Row {
    /// A row; it counts unless it is Local Items, does not apply, or could
    /// not be checked for a reason that is not the secret's fault.
    pub fn new(secret: Secret, accepts: Accepts) -> Row {
        Row {
            secret,
            accepts,
            counts: secret != Secret::LocalItems && accepts != Accepts::NotApplicable,
            note: None,
            detail: None,
        }
    }

    /// With a note.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = Some(note.into());
        self
    }

    /// With a detail.
    #[must_use]
    pub fn detail(mut self, d: impl Into<String>) -> Row {
        self.detail = Some(d.into());
        self
    }

    /// Not counted toward the verdict.
    #[must_use]
    pub fn not_counted(mut self) -> Row {
        self.counts = false;
        self
    }
}

/// Who the user is, read from the record on the opened volume.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Short name (the record's file and its `name`).
    pub name: String,
    /// The record's `generateduid`, upper-case: the crypto user's UUID.
    pub generated_uid: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// The home folder, relative to the volume root, when it is under `/Users`.
    pub home: Option<Rel>,
}

/// The login keychain's macOS 26 SystemKeys entropy (its indirect
/// passphrase), when the Data volume has one for the keychain's salt.
#[derive(Clone)]
pub struct Entropy(pub zeroize::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entropy(..)")
    }
}

/// A file of the user, read and checked.
#[derive(Clone, Debug)]
pub struct UserFile {
    /// Where, relative to the volume root (rebuilt from the record at run time).
    pub rel: Rel,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// What it was when read.
    pub meta: Meta,
}

/// The user's record and files, read and checked against OLD and NEW.
#[derive(Clone, Debug)]
pub struct Offline {
    /// The user's identity.
    pub ident: Identity,
    /// The record file.
    pub record_file: UserFile,
    /// The parsed record.
    pub record: UserRecord,
    /// Its ShadowHashData (None when absent or unreadable).
    pub shadow: Option<ShadowHash>,
    /// The login keychain, when present and trusted.
    pub keychain: Option<UserFile>,
    /// Its SystemKeys entropy (macOS 26 indirect passphrase), when there is one.
    pub keychain_entropy: Option<Entropy>,
    /// The form in which OLD (or, when OLD does not, NEW) opened the keychain.
    pub keychain_form: Option<crate::formats::keychain::Form>,
    /// The matrix rows of the offline secrets.
    pub rows: Vec<Row>,
}

impl Offline {
    /// The row of one secret.
    pub fn row(&self, s: Secret) -> Option<&Row> {
        self.rows.iter().find(|r| r.secret == s)
    }

    /// The offline secrets that accept OLD (proof of OLD without FileVault).
    pub fn old_proven_by(&self) -> Vec<Secret> {
        self.rows
            .iter()
            .filter(|r| r.accepts.takes_old() && r.secret != Secret::LocalItems)
            .map(|r| r.secret)
            .collect()
    }
}

/// A user record's path.
///
/// # Errors
/// An invalid short name.
pub fn record_rel(name: &str) -> Result<Rel> {
    Rel::new(USERS_DIR)?.join(&format!("{name}.plist"))
}

/// Reads a user's record with the trusted read (root's, private, one link, no
/// link on the way) and checks that its `name` is `name`.
///
/// # Errors
/// Missing, untrusted, malformed, or naming someone else.
pub fn read_record(root: &Root, name: &str) -> Result<(UserFile, UserRecord)> {
    let rel = record_rel(name)?;
    let (bytes, meta) = root.read(&rel, Want::SYSTEM)?;
    let rec = UserRecord::parse(&bytes).map_err(|e| Error::malformed(&root.full(&rel), e))?;
    if rec.name() != name {
        return Err(Error::malformed(
            &root.full(&rel),
            format!(
                "the record's name is '{}', not '{}'",
                escape(rec.name()),
                escape(name)
            ),
        ));
    }
    Ok((UserFile { rel, bytes, meta }, rec))
}

/// The identity a record gives.
///
/// # Errors
/// No `generateduid`, or no numeric uid/gid (exit 5: fvsync cannot bind a
/// secret to this user).
pub fn identity(root: &Root, rel: &Rel, rec: &UserRecord) -> Result<Identity> {
    let refuse = |what: &str| {
        Error::new(
            ErrorKind::Refused,
            format!(
                "{} has no {what}; fvsync cannot tell whose secrets these are",
                root.show(rel)
            ),
        )
    };
    let generated_uid = rec
        .generated_uid()
        .filter(|u| crate::engine::target::is_uuid(u))
        .ok_or_else(|| refuse("valid generateduid"))?;
    let uid = rec
        .first_string("uid")
        .and_then(|u| u.parse::<u32>().ok())
        .ok_or_else(|| refuse("numeric uid"))?;
    let gid = rec
        .first_string("gid")
        .and_then(|u| u.parse::<u32>().ok())
        .unwrap_or(20);
    let home = rec.first_string("home").and_then(|h| {
        let rest = h.strip_prefix("/Users/")?;
        if rest.is_empty() || rest.contains('/') || rest.chars().any(char::is_control) {
            return None;
        }
        Rel::new("Users").ok()?.join(rest).ok()
    });
    Ok(Identity {
        name: rec.name().to_string(),
        generated_uid,
        uid,
        gid,
        home,
    })
}

/// The login keychain's path in a home.
///
/// # Errors
/// Never for a valid home.
pub fn keychain_rel(home: &Rel) -> Result<Rel> {
    home.join("Library")?
        .join("Keychains")?
        .join("login.keychain-db")
}

/// Finds and reads the user's login keychain, bound to the user: the home,
/// `Library` and `Keychains` must be real folders owned by the record's uid,
/// and the keychain a regular file with one link, owned by that uid.
/// `Ok(None)` with a note: there is none, or it is out of reach for a reason
/// that is not tampering (the home is not under /Users).
///
/// # Errors
/// A link, a hard link or another owner anywhere on the way (exit 5).
pub fn read_keychain(root: &Root, ident: &Identity) -> Result<(Option<UserFile>, Option<String>)> {
    let Some(home) = &ident.home else {
        return Ok((
            None,
            Some("the home folder is not under /Users; fvsync does not look for a keychain elsewhere".into()),
        ));
    };
    let owner = Want {
        owner: crate::fsio::Owner::Uid(ident.uid),
        private: false,
    };
    match root.meta(home)? {
        None => return Ok((None, Some("no home folder".into()))),
        Some(_) => {
            root.check_dir(home, owner)?;
        }
    }
    let lib = home.join("Library")?;
    let kcs = lib.join("Keychains")?;
    for d in [&lib, &kcs] {
        match root.meta(d)? {
            None => return Ok((None, None)),
            Some(_) => {
                root.check_dir(d, owner)?;
            }
        }
    }
    let rel = keychain_rel(home)?;
    match root.read_opt(&rel, owner)? {
        None => Ok((None, None)),
        Some((bytes, meta)) => Ok((Some(UserFile { rel, bytes, meta }), None)),
    }
}

/// Whether a Local Items keychain (`<Keychains>/<hardware UUID>/keychain-2.db`) exists.
pub fn has_local_items(root: &Root, ident: &Identity) -> bool {
    let Some(home) = &ident.home else {
        return false;
    };
    let Ok(kcs) = home.join("Library").and_then(|l| l.join("Keychains")) else {
        return false;
    };
    let Ok(entries) = root.list(&kcs) else {
        return false;
    };
    entries.iter().any(|(name, m)| {
        m.kind == Kind::Dir
            && kcs
                .join(name)
                .and_then(|d| d.join("keychain-2.db"))
                .ok()
                .and_then(|f| root.meta(&f).ok().flatten())
                .is_some_and(|m| m.kind == Kind::File)
    })
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

type FormCheck = std::result::Result<Option<crate::formats::keychain::Form>, String>;

fn check_kc(bytes: &[u8], pw: &[u8], entropy: Option<&Entropy>) -> FormCheck {
    crate::formats::keychain::check_form(bytes, pw, entropy.map(|e| e.0.as_slice()))
        .map_err(|e| e.to_string())
}

/// The SystemKeys entropy of a keychain (macOS 26), read with the trusted
/// read of a system file; `None` when there is none (or it cannot be used:
/// the keychain is then checked in its plain form only).
fn read_entropy(root: &Root, keychain: &[u8]) -> Option<Entropy> {
    use crate::formats::keychain::{
        parse_system_keys_entropy, system_keys_file_name, SYSTEM_KEYS_DIR,
    };
    let name = system_keys_file_name(keychain).ok()?;
    let rel = Rel::new(SYSTEM_KEYS_DIR).ok()?.join(&name).ok()?;
    let (bytes, _) = root.read_opt(&rel, Want::SYSTEM).ok()??;
    parse_system_keys_entropy(&bytes).ok().map(Entropy)
}

/// Reads the user's record and keychain and checks them against OLD (when
/// given) and NEW, each derivation once, in parallel.
///
/// # Errors
/// The record is missing, untrusted or malformed; a file on the way to the
/// keychain was planted (a link, a hard link, another owner).
pub fn offline(root: &Root, name: &str, old: Option<&Password>, new: &Password) -> Result<Offline> {
    let (record_file, rec) = read_record(root, name)?;
    let ident = identity(root, &record_file.rel, &rec)?;
    let (shadow, shadow_error) = match rec.shadow_hash() {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e)),
    };
    let (keychain, keychain_note) = read_keychain(root, &ident)?;
    // OLD equal to NEW: derive once and use the answer for both.
    let old_given = old.is_some();
    let old = old.filter(|o| !o.ct_eq(new));

    let salted = shadow.as_ref().and_then(|s| s.salted.as_ref());
    let srp = shadow.as_ref().and_then(|s| s.srp.as_ref());
    // Mac OS X 10.7's SALTED-SHA512, checked when the record has no PBKDF2 hash.
    let legacy = shadow
        .as_ref()
        .and_then(|s| s.legacy.as_ref())
        .filter(|_| salted.is_none());
    let mut jobs: Vec<Box<dyn FnOnce() -> Option<bool> + Send + '_>> = Vec::new();
    let pws: Vec<&Password> = old.into_iter().chain(std::iter::once(new)).collect();
    for pw in &pws {
        let pw = *pw;
        jobs.push(Box::new(move || {
            salted
                .map(|e| e.check(pw.expose()) == Check::Match)
                .or_else(|| legacy.map(|e| e.check(pw.expose()) == Check::Match))
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
    let scheme_row = |secret: Secret,
                      scheme: &str,
                      (o, n): (Option<bool>, Option<bool>),
                      iterations: Option<u32>|
     -> Row {
        match n {
            Some(n) => {
                let r = Row::new(secret, Accepts::from(o, n));
                match iterations {
                    Some(i) => r.detail(format!("{scheme}, {i} iterations")),
                    None => r,
                }
            }
            None => match (&shadow, &shadow_error) {
                (_, Some(e)) => Row::new(secret, Accepts::Unknown)
                    .note("the login hash cannot be read")
                    .detail(format!("ShadowHashData unreadable: {e}")),
                (None, None) => {
                    Row::new(secret, Accepts::Unknown).note("no login hash in the record")
                }
                (Some(s), None)
                    if secret == Secret::Srp && (s.salted.is_some() || s.legacy.is_some()) =>
                {
                    Row::new(secret, Accepts::NotApplicable).note("the record has no SRP entry")
                }
                (Some(s), None) if !s.other_schemes.is_empty() => {
                    Row::new(secret, Accepts::Unknown)
                        .note("only a hash scheme fvsync does not check")
                        .detail(format!(
                            "no {scheme} entry; the record holds {}",
                            s.other_schemes.join(", ")
                        ))
                }
                _ => Row::new(secret, Accepts::Unknown).note(format!("no {scheme} entry")),
            },
        }
    };
    let mut rows = vec![
        match (salted, legacy) {
            (None, Some(_)) => scheme_row(
                Secret::Login,
                crate::formats::shadowhash::LEGACY,
                pick(0),
                None,
            )
            .detail("SALTED-SHA512 (the Mac OS X 10.7 hash, not iterated)"),
            _ => scheme_row(
                Secret::Login,
                crate::formats::shadowhash::SALTED,
                pick(0),
                salted.map(|e| e.iterations),
            ),
        },
        scheme_row(
            Secret::Srp,
            crate::formats::shadowhash::SRP,
            pick(1),
            srp.map(|e| e.iterations),
        ),
    ];
    if let Some(r) = kerberos_row(&rec, old, new, old_given) {
        rows.push(r);
    }
    let entropy = keychain.as_ref().and_then(|f| read_entropy(root, &f.bytes));
    let mut keychain_form = None;
    let kc_row = match &keychain {
        None => {
            let r = Row::new(Secret::Keychain, Accepts::NotApplicable);
            match keychain_note {
                Some(n) => r.note(n),
                None => r.note("no login keychain"),
            }
        }
        Some(f) => {
            let n = check_kc(&f.bytes, new.expose(), entropy.as_ref());
            let o = match old {
                Some(o) => Some(check_kc(&f.bytes, o.expose(), entropy.as_ref())),
                None if old_given => Some(n.clone()),
                None => None,
            };
            let row = match (o, n) {
                (_, Err(e)) | (Some(Err(e)), _) => Row::new(Secret::Keychain, Accepts::Unknown)
                    .not_counted()
                    .note("cannot be checked offline")
                    .detail(e),
                (o, Ok(n)) => {
                    let checked_old = o.is_some();
                    let o_form = o.and_then(|r| r.ok()).flatten();
                    keychain_form = o_form.or(n);
                    let r = Row::new(
                        Secret::Keychain,
                        Accepts::from(checked_old.then_some(o_form.is_some()), n.is_some()),
                    );
                    if keychain_form == Some(crate::formats::keychain::Form::Indirect) {
                        r.note("macOS 26 indirect passphrase")
                    } else {
                        r
                    }
                }
            };
            let version = crate::formats::keychain::find_db_blob(&f.bytes)
                .map(|b| format!("DbBlob 0x{:x}, ", b.version))
                .unwrap_or_default();
            // Raw: the table escapes what it shows.
            let detail = format!("{version}'{}'", root.full(&f.rel).display());
            match row.detail.clone() {
                Some(d) => row.detail(format!("{d}; {detail}")),
                None => row.detail(detail),
            }
        }
    };
    rows.push(kc_row);
    if has_local_items(root, &ident) {
        rows.push(
            Row::new(Secret::LocalItems, Accepts::Unknown)
                .note("macOS asks for OLD once after login")
                .detail("out of reach offline (its keys are tied to the login password by the user keybag)"),
        );
    }
    Ok(Offline {
        ident,
        record_file,
        record: rec,
        shadow,
        keychain,
        keychain_entropy: entropy,
        keychain_form,
        rows,
    })
}

/// The row of the local KDC's keys, when the record has any: checked for
/// OLD and NEW when their layout is understood (docs/kerberos.md), else
/// shown as left as they are (not counted).
fn kerberos_row(
    rec: &UserRecord,
    old: Option<&Password>,
    new: &Password,
    old_given: bool,
) -> Option<Row> {
    use crate::formats::kerberos;
    let values = rec.kerberos_keys();
    if values.is_empty() {
        return None;
    }
    let principal = match kerberos::lkdc_principal(&rec.authentication_authority(), &values) {
        Ok(p) => p,
        Err(e) => {
            return Some(
                Row::new(Secret::Kerberos, Accepts::Unknown)
                    .not_counted()
                    .note("left as they are: a layout fvsync does not know")
                    .detail(e.to_string()),
            )
        }
    };
    // HeimdalSRPKey (the same KDC's SRP verifiers) counts with the keys when
    // its layout is understood; otherwise the keys alone decide, and the row
    // says the SRP verifiers were not checked.
    let srp = rec.heimdal_srp_keys();
    let srp_unknown = std::cell::Cell::new(false);
    let check = |pw: &Password| {
        let mut c = kerberos::check(&values, pw.expose())?;
        if !srp.is_empty() {
            match kerberos::srp_check(&srp, &principal, pw.expose()) {
                Ok(s) => {
                    c.keys += s.keys;
                    c.matching += s.matching;
                }
                Err(_) => srp_unknown.set(true),
            }
        }
        Ok::<_, kerberos::KerberosError>(c)
    };
    let n = check(new);
    let o = match old {
        Some(o) => Some(check(o)),
        None if old_given => Some(check(new)),
        None => None,
    };
    let row = match (o, n) {
        (_, Err(e)) | (Some(Err(e)), _) => Row::new(Secret::Kerberos, Accepts::Unknown)
            .not_counted()
            .note("left as they are: a layout fvsync does not know")
            .detail(e.to_string()),
        (_, Ok(n)) if n.is_partial() => Row::new(Secret::Kerberos, Accepts::Neither)
            .note("keys of two passwords (an interrupted change)"),
        (o, Ok(n)) => Row::new(
            Secret::Kerberos,
            Accepts::from(o.map(|r| r.is_ok_and(|c| c.is_match())), n.is_match()),
        ),
    };
    Some(if srp_unknown.get() {
        row.detail(format!(
            "LKDC {principal}; HeimdalSRPKey: a layout fvsync does not know, not checked"
        ))
    } else {
        row.detail(format!("LKDC {principal}"))
    })
}

/// Short names of the `admin` group's members, when the group can be read.
pub fn admin_members(root: &Root) -> Vec<String> {
    let Ok(rel) = Rel::new(GROUPS_DIR).and_then(|g| g.join("admin.plist")) else {
        return Vec::new();
    };
    let Ok((bytes, _)) = root.read(&rel, Want::SYSTEM) else {
        return Vec::new();
    };
    let Ok(rec) = UserRecord::parse(&bytes) else {
        return Vec::new();
    };
    rec.strings("users").iter().map(|s| s.to_string()).collect()
}
