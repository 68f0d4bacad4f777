//! Receipts: a small JSON file per run that changed something, for the MDM
//! to read in a normal boot (docs/mdm.md), and the fleet check that finds
//! the Macs that still need a reconcile without asking anyone for a password.
//!
//! # Where receipts live, and why
//!
//! `private/var/log/fvsync/<user>-<run id>.receipt.json` on the Data volume,
//! beside the audit log (`private/var/log/fvsync.log`), plus
//! `private/var/log/fvsync/latest.plist`, a flat summary of the receipt
//! written last (osquery's `plist` table and `defaults read` read it; the
//! JSON is the reference). In a normal boot that is
//! `/System/Volumes/Data/private/var/log/fvsync/` (= `/var/log/fvsync/`), so
//! reading it needs no unlock and no password.
//!
//! - **Permissions**: files 0600 and the folder 0700, root's. Nothing in a
//!   receipt is secret (no password, hash, salt or key: see
//!   [`crate::engine::report_receipt`]), but it names a user and says when
//!   their passwords changed; every MDM agent (Jamf, Kandji, JumpCloud,
//!   osquery) runs its scripts as root, so 0600 costs them nothing. Reading
//!   uses the trusted read: a receipt that is not root's, is writable by
//!   others, has more than one link or is reached through a link is skipped
//!   with a warning, never read.
//! - **How long**: at most [`KEEP`] receipts (all users together); writing
//!   one removes the oldest beyond that. Run ids sort by time, so "the
//!   latest" is the highest run id (start time, then process id).
//! - **Which runs**: a run that changed something (done, rolled back, stopped
//!   mid-way) and an `undo`; a run refused before any change leaves none.
//!
//! A malformed receipt is skipped with a warning that names the file and the
//! reason (never its contents); nothing here panics or reads past
//! [`MAX_RECEIPT`].

use plist::{Dictionary, Value};

use crate::engine::account;
use crate::engine::attempts::{Ledger, Presented};
use crate::engine::journal::{self, Journal, RunId};
use crate::engine::report;
pub use crate::engine::report_receipt::{
    AttemptCount, FleetFlag, FleetReport, FleetUser, KeychainKind, LeftStep, LoginHash, Receipt,
    ReceiptReport, RunResult, RECEIPT_VERSION,
};
use crate::engine::secrets::{self, Accepts, Row, Secret};
use crate::engine::step::Step;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::record::{check_name, UserRecord};
use crate::fsio::{Kind, Perms, Rel, Root, Want};
use crate::output::render::Render;
use crate::output::{Cell, Ui};
use crate::platform::Attempt;
use crate::text::escape;

/// The receipts folder, relative to the Data volume root.
pub const DIR: &str = "private/var/log/fvsync";
/// The summary of the receipt written last, in [`DIR`].
pub const LATEST_PLIST: &str = "latest.plist";
/// Receipts kept (all users together).
pub const KEEP: usize = 20;
/// The largest receipt read.
pub const MAX_RECEIPT: u64 = 256 * 1024;
/// A receipt's file name ends so.
pub const SUFFIX: &str = ".receipt.json";
/// Lines kept in a receipt's lists (first login, left, sources).
const MAX_LINES: usize = 32;
/// Users the fleet check looks at.
const MAX_USERS: usize = 10_000;

/// A receipt's path.
///
/// # Errors
/// The short name cannot be part of a file name.
pub fn path(user: &str, run: &RunId) -> Result<Rel> {
    check_name(user)?;
    Rel::new(DIR)?.join(&format!("{user}-{run}{SUFFIX}"))
}

/// The user and run id a receipt's file name carries.
fn parse_name(name: &str) -> Option<(String, RunId)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (rest, pid) = stem.rsplit_once('-')?;
    // `rest` ends with `-YYYYMMDDTHHMMSSZ`.
    let split = rest.len().checked_sub(17)?;
    let (user, stamp) = (rest.get(..split)?, rest.get(split..)?);
    let stamp = stamp.strip_prefix('-')?;
    let run = RunId::try_from(format!("{stamp}-{pid}")).ok()?;
    check_name(user).ok()?;
    Some((user.to_string(), run))
}

/// How run ids sort: start time, then process id.
fn order(run: &RunId) -> (i64, u64) {
    let pid = run
        .as_str()
        .rsplit_once('-')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0);
    (run.started_secs().unwrap_or(0), pid)
}

impl Receipt {
    /// A receipt for a run, from its journal: who, where, when it started,
    /// and the steps the journal has done; finished now.
    pub fn from_journal(j: &Journal, command: &str, result: RunResult) -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            run_id: j.run_id.clone(),
            command: command.into(),
            user: j.user.clone(),
            volume: j.volume.clone(),
            started: j.started.clone(),
            finished: journal::now_rfc3339(),
            result,
            changed: j.steps.iter().filter(|s| s.done).map(|s| s.step).collect(),
            left: Vec::new(),
            filevault_attempts: AttemptCount::default(),
            recovery_key_used: false,
            first_login: Vec::new(),
            account_sources: Vec::new(),
        }
    }

    /// Sets the attempts (numbers only) and whether the recovery key was
    /// used from the run's ledger.
    pub fn set_attempts(&mut self, l: &Ledger) {
        self.filevault_attempts = AttemptCount {
            used: l.used,
            failed: l.failed,
        };
        self.recovery_key_used = l
            .events
            .iter()
            .any(|e| e.password == Presented::RecoveryKey && e.result == Attempt::Accepted);
    }

    /// Sets the steps left as they were, with why.
    pub fn set_left(&mut self, left: &[(Step, String)]) {
        self.left = left
            .iter()
            .map(|(step, why)| LeftStep {
                step: *step,
                why: why.clone(),
            })
            .collect();
    }
}

/// What the user will be asked at the first login, from the secret matrix
/// after the run (for a run that changed nothing, before it).
pub fn first_login(rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let row = |s: Secret| rows.iter().find(|r| r.secret == s);
    if let Some(r) = row(Secret::Filevault) {
        if r.accepts == Accepts::Old {
            out.push("FileVault still unlocks with OLD at startup".to_string());
        }
    }
    if let Some(r) = row(Secret::Login) {
        if r.accepts == Accepts::Old {
            out.push("the login window still takes OLD, not NEW".to_string());
        }
    }
    if let Some(r) = row(Secret::Keychain) {
        match r.accepts {
            Accepts::Old => {
                out.push("the login keychain asks for OLD once to update itself to NEW".to_string())
            }
            Accepts::Neither => out.push(
                "the login keychain asks for its password (it takes neither OLD nor NEW)"
                    .to_string(),
            ),
            Accepts::Unknown => out.push(
                "the login keychain may ask for its password (it could not be checked)".to_string(),
            ),
            _ => {}
        }
    }
    if row(Secret::LocalItems).is_some() {
        out.push("the Local Items keychain asks for OLD once".to_string());
    }
    out
}

fn check(r: &Receipt) -> std::result::Result<(), String> {
    if r.version != RECEIPT_VERSION {
        return Err(format!("not a version-{RECEIPT_VERSION} receipt"));
    }
    check_name(&r.user).map_err(|_| "its user is not a valid short name".to_string())?;
    if r.first_login.len() > MAX_LINES
        || r.left.len() > MAX_LINES
        || r.account_sources.len() > MAX_LINES
        || r.changed.len() > MAX_LINES
    {
        return Err("it has more entries than fvsync writes".into());
    }
    Ok(())
}

/// What a run leaves in its receipt beyond its journal.
pub struct RunFacts<'a> {
    /// `reconcile` or `undo`.
    pub command: &'a str,
    /// How it ended.
    pub result: RunResult,
    /// What it changed (for undo: what it put back).
    pub changed: &'a [Step],
    /// Steps left as they were, with why.
    pub left: &'a [(Step, String)],
    /// The run's attempts.
    pub ledger: &'a Ledger,
    /// The secret matrix after the run (what the first login meets).
    pub rows_after: &'a [Row],
    /// Where the account's password comes from.
    pub sources: &'a [account::AccountSource],
    /// This run's own id when it is not the journal's (an undo: the
    /// journal is the reconcile's); its start time is the receipt's.
    pub run: Option<&'a RunId>,
}

/// Writes the receipt of a run that changed something (or tried to), as
/// [`write`]; returns the warning to show when it could not be written (a
/// receipt never fails a run: the audit log has the line).
pub fn record_run(root: &Root, j: &Journal, f: &RunFacts<'_>) -> Option<String> {
    let mut r = Receipt::from_journal(j, f.command, f.result);
    if let Some(run) = f.run {
        r.run_id = run.clone();
        if let Some(secs) = run.started_secs() {
            r.started = journal::rfc3339(secs);
        }
    }
    r.changed = f.changed.iter().copied().take(MAX_LINES).collect();
    r.set_left(&f.left[..f.left.len().min(MAX_LINES)]);
    r.set_attempts(f.ledger);
    r.first_login = first_login(f.rows_after);
    r.first_login.truncate(MAX_LINES);
    r.account_sources = f.sources.iter().take(MAX_LINES).cloned().collect();
    write(root, &r)
        .err()
        .map(|e| format!("the receipt could not be written: {}", e.message()))
}

/// The folder, checked: `Ok(None)` when it does not exist.
///
/// # Errors
/// A link on the way, or a folder that is not root's or is writable by others.
fn folder(root: &Root) -> Result<Option<Rel>> {
    let dir = Rel::new(DIR)?;
    if root.meta(&dir)?.is_none() {
        return Ok(None);
    }
    root.check_dir(&dir, Want::SYSTEM)?;
    Ok(Some(dir))
}

/// Writes a run's receipt atomically (0600, root's, in a 0700 folder), then
/// removes the oldest receipts beyond [`KEEP`] and rewrites
/// [`LATEST_PLIST`]. A receipt is not a reason to fail a run: a caller
/// reports an error here as a warning (the audit log still has the line).
///
/// # Errors
/// An invalid receipt, an untrusted folder, or I/O.
pub fn write(root: &Root, r: &Receipt) -> Result<()> {
    check(r).map_err(|why| {
        Error::new(
            ErrorKind::Failure,
            format!("cannot write the receipt: {why}"),
        )
    })?;
    let rel = path(&r.user, &r.run_id)?;
    root.ensure_dir(&Rel::new("private/var/log")?, 0o755)?;
    root.ensure_dir(&Rel::new(DIR)?, 0o700)?;
    folder(root)?;
    let bytes = serde_json::to_vec_pretty(r).map_err(|e| {
        Error::new(
            ErrorKind::Failure,
            format!("cannot encode the receipt: {e}"),
        )
    })?;
    root.write_atomic(&rel, &bytes, Perms::PRIVATE)?;
    prune(root);
    write_latest_plist(root, r)
}

/// Removes the oldest receipts beyond [`KEEP`]. A file that cannot be
/// removed stays (the next write tries again).
fn prune(root: &Root) {
    let Ok(dir) = Rel::new(DIR) else { return };
    let Ok(entries) = root.list(&dir) else { return };
    let mut named: Vec<((i64, u64), String)> = entries
        .into_iter()
        .filter(|(_, m)| matches!(m.kind, Kind::File | Kind::Link))
        .filter_map(|(n, _)| parse_name(&n).map(|(_, run)| (order(&run), n)))
        .collect();
    named.sort();
    let excess = named.len().saturating_sub(KEEP);
    for (_, name) in named.into_iter().take(excess) {
        if let Ok(rel) = dir.join(&name) {
            let _ = root.remove(&rel);
        }
    }
}

fn write_latest_plist(root: &Root, r: &Receipt) -> Result<()> {
    let mut d = Dictionary::new();
    let s = |v: &str| Value::String(v.to_string());
    let join = |v: Vec<&str>| Value::String(v.join(","));
    d.insert(
        "version".into(),
        Value::Integer(u64::from(r.version).into()),
    );
    d.insert("tool_version".into(), s(&r.tool_version));
    d.insert("run_id".into(), s(r.run_id.as_str()));
    d.insert("command".into(), s(&r.command));
    d.insert("user".into(), s(&r.user));
    d.insert("volume".into(), s(&r.volume));
    d.insert("started".into(), s(&r.started));
    d.insert("finished".into(), s(&r.finished));
    d.insert("result".into(), s(r.result.as_str()));
    d.insert(
        "changed".into(),
        join(r.changed.iter().map(|x| x.name()).collect()),
    );
    d.insert(
        "left".into(),
        join(r.left.iter().map(|x| x.step.name()).collect()),
    );
    d.insert(
        "filevault_attempts_used".into(),
        Value::Integer(u64::from(r.filevault_attempts.used).into()),
    );
    d.insert(
        "filevault_attempts_failed".into(),
        Value::Integer(u64::from(r.filevault_attempts.failed).into()),
    );
    d.insert(
        "recovery_key_used".into(),
        Value::Boolean(r.recovery_key_used),
    );
    d.insert(
        "first_login_prompts".into(),
        Value::Integer((r.first_login.len() as u64).into()),
    );
    d.insert(
        "account_sources".into(),
        join(r.account_sources.iter().map(|a| a.code.as_str()).collect()),
    );
    d.insert("receipt".into(), s(path(&r.user, &r.run_id)?.name()));
    let mut bytes = Vec::new();
    Value::Dictionary(d)
        .to_writer_xml(&mut bytes)
        .map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("cannot encode the receipt summary: {e}"),
            )
        })?;
    root.write_atomic(&Rel::new(DIR)?.join(LATEST_PLIST)?, &bytes, Perms::PRIVATE)
}

/// What the receipts folder holds.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// The readable receipts, oldest first.
    pub receipts: Vec<Receipt>,
    /// Receipt files found (readable or not).
    pub found: usize,
    /// Receipts skipped, and why.
    pub warnings: Vec<String>,
}

impl Scan {
    /// The latest readable receipt.
    pub fn latest(&self) -> Option<&Receipt> {
        self.receipts.last()
    }

    /// The latest readable receipt of a user.
    pub fn latest_of(&self, user: &str) -> Option<&Receipt> {
        self.receipts.iter().rev().find(|r| r.user == user)
    }
}

fn read_one(
    root: &Root,
    dir: &Rel,
    name: &str,
    user: &str,
    run: &RunId,
) -> std::result::Result<Receipt, String> {
    let rel = dir
        .join(name)
        .map_err(|_| "not a file name fvsync accepts".to_string())?;
    let (bytes, meta) = root
        .read(&rel, Want::SYSTEM)
        .map_err(|e| e.message().to_string())?;
    if meta.len > MAX_RECEIPT || bytes.len() as u64 > MAX_RECEIPT {
        return Err(format!("larger than {MAX_RECEIPT} bytes"));
    }
    let r: Receipt = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "not a receipt fvsync can read (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    check(&r)?;
    if r.user != user || &r.run_id != run {
        return Err("its user or run id is not the one its name says".into());
    }
    Ok(r)
}

/// Reads every receipt (trusted reads), oldest first; a receipt that cannot
/// be used is skipped with a warning.
///
/// # Errors
/// The folder is reached through a link, is not root's, is writable by
/// others, or cannot be listed.
pub fn scan(root: &Root) -> Result<Scan> {
    let Some(dir) = folder(root)? else {
        return Ok(Scan::default());
    };
    let mut scan = Scan::default();
    let mut ok: Vec<((i64, u64), Receipt)> = Vec::new();
    for (name, _) in root.list(&dir)? {
        if !name.ends_with(SUFFIX) {
            continue;
        }
        scan.found += 1;
        let Some((user, run)) = parse_name(&name) else {
            scan.warnings.push(format!(
                "receipt {} skipped: its name is not <user>-<run id>{SUFFIX}",
                escape(&name)
            ));
            continue;
        };
        match read_one(root, &dir, &name, &user, &run) {
            Ok(r) => ok.push((order(&run), r)),
            Err(why) => scan
                .warnings
                .push(format!("receipt {} skipped: {why}", escape(&name))),
        }
    }
    ok.sort_by_key(|a| a.0);
    scan.receipts = ok.into_iter().map(|(_, r)| r).collect();
    Ok(scan)
}

/// The latest readable receipt (by run id), `None` when there is none.
///
/// # Errors
/// As [`scan`].
pub fn latest(root: &Root) -> Result<Option<Receipt>> {
    Ok(scan(root)?.receipts.pop())
}

/// The `fvsync receipt` document for the volume at `root`.
///
/// # Errors
/// As [`scan`].
pub fn report(root: &Root, source: String) -> Result<ReceiptReport> {
    let s = scan(root)?;
    let dir = Rel::new(DIR)?;
    Ok(ReceiptReport {
        version: report::VERSION,
        source,
        folder: root.full(&dir).display().to_string(),
        found: s.found,
        warnings: s.warnings,
        receipt: s.receipts.into_iter().last(),
    })
}

// ---------------------------------------------------------------------------
// The fleet check

fn login_hash(rec: &UserRecord) -> LoginHash {
    match rec.shadow_hash() {
        Ok(Some(s)) => match (s.salted.is_some(), s.srp.is_some()) {
            (true, true) => LoginHash::WithSrp,
            (true, false) => LoginHash::NoSrp,
            _ => LoginHash::NoSalted,
        },
        Ok(None) => LoginHash::NoSalted,
        Err(_) => LoginHash::Unreadable,
    }
}

fn keychain(
    root: &Root,
    ident: &secrets::Identity,
    warnings: &mut Vec<String>,
) -> (KeychainKind, Option<bool>) {
    use crate::formats::keychain::{
        find_db_blob, parse_system_keys_entropy, system_keys_file_name, SYSTEM_KEYS_DIR,
        VERSION_MACOS_10_0, VERSION_PARTITION,
    };
    let file = match secrets::read_keychain(root, ident) {
        Ok((Some(f), _)) => f,
        Ok((None, _)) => return (KeychainKind::None, None),
        Err(e) => {
            warnings.push(format!(
                "{}: the login keychain cannot be used: {}",
                escape(&ident.name),
                e.message()
            ));
            return (KeychainKind::Unreadable, None);
        }
    };
    let kind = match find_db_blob(&file.bytes) {
        Ok(b) if b.version == VERSION_MACOS_10_0 => KeychainKind::Legacy,
        Ok(b) if b.version == VERSION_PARTITION => KeychainKind::Partition,
        Ok(_) => KeychainKind::Other,
        Err(e) => {
            warnings.push(format!(
                "{}: the login keychain cannot be parsed: {e}",
                escape(&ident.name)
            ));
            return (KeychainKind::Unreadable, None);
        }
    };
    let entropy = system_keys_file_name(&file.bytes)
        .ok()
        .and_then(|n| Rel::new(SYSTEM_KEYS_DIR).ok()?.join(&n).ok())
        .and_then(|rel| root.read_opt(&rel, Want::SYSTEM).ok().flatten())
        .is_some_and(|(b, _)| parse_system_keys_entropy(&b).is_ok());
    (kind, Some(entropy))
}

fn fleet_user(
    root: &Root,
    rel: &Rel,
    rec: &UserRecord,
    scan: &Scan,
    warnings: &mut Vec<String>,
) -> Option<FleetUser> {
    let uid = rec.first_string("uid")?.parse::<u32>().ok()?;
    if uid < 500 || rec.name().starts_with('_') || check_name(rec.name()).is_err() {
        return None;
    }
    let secure_token = rec.has_secure_token();
    let login_hash = login_hash(rec);
    let (keychain, system_keys_entropy, sources) = match secrets::identity(root, rel, rec) {
        Ok(ident) => {
            let (k, e) = keychain(root, &ident, warnings);
            let s = account::sources(root, rec, ident.home.as_ref());
            (k, e, s)
        }
        Err(e) => {
            warnings.push(format!("{}: {}", escape(rec.name()), e.message()));
            (
                KeychainKind::Unreadable,
                None,
                account::sources(root, rec, None),
            )
        }
    };
    let last = scan.latest_of(rec.name());
    let mut flags = Vec::new();
    if secure_token {
        match login_hash {
            LoginHash::NoSrp => flags.push(FleetFlag::NoSrp),
            LoginHash::NoSalted | LoginHash::Unreadable => flags.push(FleetFlag::NoLoginHash),
            LoginHash::WithSrp => {}
        }
    }
    if keychain == KeychainKind::Legacy {
        flags.push(FleetFlag::LegacyKeychain);
    }
    match last.map(|r| r.result) {
        Some(RunResult::Incomplete) => flags.push(FleetFlag::LastRunIncomplete),
        Some(RunResult::RolledBack) => flags.push(FleetFlag::LastRunRolledBack),
        _ => {}
    }
    flags.sort();
    Some(FleetUser {
        user: rec.name().to_string(),
        uid,
        secure_token,
        login_hash,
        keychain,
        system_keys_entropy,
        preboot_current: None,
        account_sources: sources.iter().map(|s| s.code).collect(),
        last_result: last.map(|r| r.result),
        last_run_id: last.map(|r| r.run_id.to_string()),
        flags,
    })
}

/// The fleet check (pure, read-only, no password): every user record with
/// uid 500 and above, its SecureToken, login hash, keychain layout, macOS 26
/// SystemKeys entropy, account sources and latest receipt. The Preboot list
/// needs the platform: the command sets it with [`FleetReport::set_preboot`].
/// `source` is the volume's path; a command may replace it with the
/// platform's description. Nothing that cannot be read stops it: it becomes
/// a warning.
pub fn fleet_check(root: &Root) -> FleetReport {
    let mut warnings = Vec::new();
    let scan = match scan(root) {
        Ok(s) => s,
        Err(e) => {
            warnings.push(format!("the receipts cannot be read: {}", e.message()));
            Scan::default()
        }
    };
    warnings.extend(scan.warnings.iter().cloned());
    let mut users = Vec::new();
    match Rel::new(secrets::USERS_DIR).and_then(|d| Ok((root.list(&d)?, d))) {
        Err(e) => warnings.push(format!(
            "the user records cannot be listed: {}",
            e.message()
        )),
        Ok((entries, dir)) => {
            let mut seen = 0usize;
            for (name, meta) in entries {
                let Some(stem) = name.strip_suffix(".plist") else {
                    continue;
                };
                if meta.kind != Kind::File || stem.starts_with('_') {
                    continue;
                }
                seen += 1;
                if seen > MAX_USERS {
                    warnings.push(format!(
                        "more than {MAX_USERS} user records: the rest were not read"
                    ));
                    break;
                }
                let Ok(rel) = dir.join(&name) else { continue };
                let rec = match root.read(&rel, Want::SYSTEM) {
                    Ok((bytes, _)) => match UserRecord::parse(&bytes) {
                        Ok(r) if r.name() == stem => r,
                        Ok(_) => {
                            warnings.push(format!(
                                "{}: the record names another user; skipped",
                                escape(&name)
                            ));
                            continue;
                        }
                        Err(_) => {
                            warnings.push(format!("{}: not a user record; skipped", escape(&name)));
                            continue;
                        }
                    },
                    Err(e) => {
                        warnings.push(format!("{}: skipped: {}", escape(&name), e.message()));
                        continue;
                    }
                };
                if let Some(u) = fleet_user(root, &rel, &rec, &scan, &mut warnings) {
                    users.push(u);
                }
            }
        }
    }
    users.sort_by(|a, b| a.user.cmp(&b.user));
    FleetReport {
        version: report::VERSION,
        source: root.path().display().to_string(),
        needs_attention: users.iter().any(|u| !u.flags.is_empty()),
        users,
        warnings,
    }
}

// ---------------------------------------------------------------------------
// Text

/// Writes `fvsync receipt` as text.
pub fn render(r: &ReceiptReport, ui: &mut Ui) {
    ui.heading(&format!("fvsync receipt: {}", escape(&r.source)));
    for w in &r.warnings {
        ui.warn(w);
    }
    let Some(rc) = &r.receipt else {
        ui.para(&format!(
            "No readable fvsync receipt in {}: no run changed anything on this Mac, or its \
             receipts were removed.",
            escape(&r.folder)
        ));
        return;
    };
    ui.para(&format!(
        "The latest of {} receipt{} in {}:",
        r.found,
        if r.found == 1 { "" } else { "s" },
        escape(&r.folder)
    ));
    let steps = |v: &[Step]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
        }
    };
    let rows: Vec<Vec<Cell>> = vec![
        vec![
            "  run".into(),
            format!("{} ({})", rc.run_id, rc.command).into(),
        ],
        vec![
            "  user".into(),
            format!("{} on {}", rc.user, rc.volume).into(),
        ],
        vec!["  started".into(), rc.started.as_str().into()],
        vec!["  finished".into(), rc.finished.as_str().into()],
        vec![
            "  result".into(),
            Cell::Status(
                rc.result.as_str().to_string(),
                Some(!rc.result.needs_attention()),
            ),
        ],
        vec!["  changed".into(), steps(&rc.changed).into()],
        vec![
            "  FileVault".into(),
            format!(
                "{} attempt{} used, {} failed; recovery key {}",
                rc.filevault_attempts.used,
                if rc.filevault_attempts.used == 1 {
                    ""
                } else {
                    "s"
                },
                rc.filevault_attempts.failed,
                if rc.recovery_key_used {
                    "used"
                } else {
                    "not used"
                }
            )
            .into(),
        ],
    ];
    ui.table(&["", ""], &rows);
    for l in &rc.left {
        ui.para_indent(
            &format!("left {}: {}", l.step.name(), escape(&l.why)),
            "  ",
            "    ",
        );
    }
    if !rc.first_login.is_empty() {
        ui.line("At the first login:");
        for l in &rc.first_login {
            ui.para_indent(&escape(l), "  - ", "    ");
        }
    }
    render_sources(&rc.account_sources, ui);
}

/// Writes account sources as text (also before a plan).
pub fn render_sources(sources: &[account::AccountSource], ui: &mut Ui) {
    if sources.is_empty() {
        return;
    }
    ui.line("Where the password comes from:");
    for s in sources {
        ui.para_indent(&escape(&s.what), "  - ", "    ");
        ui.para_indent(&escape(&s.next_login), "    ", "    ");
    }
}

/// Writes the fleet check as text.
pub fn render_fleet(r: &FleetReport, ui: &mut Ui) {
    ui.heading(&format!("fvsync fleet check: {}", escape(&r.source)));
    for w in &r.warnings {
        ui.warn(w);
    }
    if r.users.is_empty() {
        ui.line("No user records with uid 500 or above.");
        return;
    }
    let rows: Vec<Vec<Cell>> = r
        .users
        .iter()
        .map(|u| {
            vec![
                format!("  {}", u.user).into(),
                if u.secure_token { "yes" } else { "no" }.into(),
                word(&u.login_hash).into(),
                word(&u.keychain).into(),
                u.last_result.map_or("-", RunResult::as_str).into(),
                if u.flags.is_empty() {
                    "-".to_string()
                } else {
                    u.flags.iter().map(word).collect::<Vec<_>>().join(",")
                }
                .into(),
            ]
        })
        .collect();
    ui.table(
        &[
            "  user",
            "token",
            "login hash",
            "keychain",
            "last run",
            "flags",
        ],
        &rows,
    );
    ui.line(if r.needs_attention {
        "Needs attention: yes (see the flags; docs/mdm.md says what each means)"
    } else {
        "Needs attention: no"
    });
}

/// The kebab-case word of a serialized enum (as in the JSON).
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Render for ReceiptReport {
    fn text(&self, ui: &mut Ui) {
        render(self, ui);
    }
}

impl Render for FleetReport {
    fn text(&self, ui: &mut Ui) {
        render_fleet(self, ui);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::account::{AccountSource, SourceCode};
    use crate::engine::attempts::Event;
    use crate::fsio::Ownership;
    use std::cell::RefCell;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::rc::Rc;

    const GUID: &str = "A1B2C3D4-0000-4000-8000-000000000501";

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn root(d: &std::path::Path) -> Root {
        Root::open(d, Ownership::Creator(me())).unwrap()
    }

    fn run(day: u32, pid: u32) -> RunId {
        RunId::try_from(format!("202611{day:02}T005320Z-{pid}")).unwrap()
    }

    fn receipt(user: &str, id: RunId, result: RunResult) -> Receipt {
        let mut j = Journal::new(
            user,
            GUID,
            "disk3s5",
            &[Step::Filevault, Step::Login, Step::Keychain],
        );
        j.run_id = id;
        j.mark(Step::Filevault);
        j.mark(Step::Login);
        let mut r = Receipt::from_journal(&j, "reconcile", result);
        r.set_left(&[(
            Step::Keychain,
            "the keychain takes neither OLD nor NEW".into(),
        )]);
        let mut l = Ledger::default();
        l.used = 2;
        l.failed = 1;
        l.events = vec![
            Event {
                password: Presented::Old,
                result: Attempt::Rejected,
                why: None,
            },
            Event {
                password: Presented::RecoveryKey,
                result: Attempt::Accepted,
                why: None,
            },
        ];
        r.set_attempts(&l);
        r.first_login = vec!["the Local Items keychain asks for OLD once".into()];
        r.account_sources = vec![AccountSource {
            code: SourceCode::MobileAccount,
            what: "a mobile account".into(),
            next_login: "macOS checks the password against the directory".into(),
        }];
        r
    }

    fn mode(p: &std::path::Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn names(d: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d.join(DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_written_receipt_is_read_back_private_and_summarised() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        assert_eq!(latest(&r).unwrap(), None);
        let rc = receipt("alice", run(30, 42), RunResult::Done);
        assert_eq!(rc.changed, vec![Step::Filevault, Step::Login]);
        assert_eq!(rc.filevault_attempts, AttemptCount { used: 2, failed: 1 });
        assert!(rc.recovery_key_used);
        write(&r, &rc).unwrap();
        let file = d
            .path()
            .join(DIR)
            .join("alice-20261130T005320Z-42.receipt.json");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&d.path().join(DIR)), 0o700);
        assert_eq!(latest(&r).unwrap(), Some(rc.clone()));
        // The document is what the types say, with the fixed field names.
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["result"], "done");
        assert_eq!(v["run_id"], "20261130T005320Z-42");
        assert_eq!(v["left"][0]["step"], "keychain");
        assert_eq!(v["account_sources"][0]["code"], "mobile-account");
        // The summary osquery reads.
        let p = d.path().join(DIR).join(LATEST_PLIST);
        assert_eq!(mode(&p), 0o600);
        let s = Value::from_file(&p).unwrap().into_dictionary().unwrap();
        assert_eq!(s["result"].as_string(), Some("done"));
        assert_eq!(s["changed"].as_string(), Some("filevault,login"));
        assert_eq!(s["left"].as_string(), Some("keychain"));
        assert_eq!(s["recovery_key_used"].as_boolean(), Some(true));
        assert_eq!(
            s["filevault_attempts_failed"].as_unsigned_integer(),
            Some(1)
        );
        assert_eq!(
            s["receipt"].as_string(),
            Some("alice-20261130T005320Z-42.receipt.json")
        );
        // The report.
        let rep = report(&r, "this Mac".into()).unwrap();
        assert_eq!(rep.found, 1);
        assert!(rep.warnings.is_empty());
        assert_eq!(rep.receipt, Some(rc));
        assert!(rep.folder.ends_with("private/var/log/fvsync"));
    }

    #[test]
    fn at_most_twenty_are_kept_and_the_latest_is_the_highest_run_id() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        // Written out of order: days 1..=25, the latest last but one.
        let mut days: Vec<u32> = (1..=25).collect();
        days.swap(24, 10);
        for (i, day) in days.iter().enumerate() {
            let user = if i % 2 == 0 { "alice" } else { "bob" };
            write(&r, &receipt(user, run(*day, 7), RunResult::Done)).unwrap();
        }
        let files: Vec<String> = names(d.path())
            .into_iter()
            .filter(|n| n.ends_with(SUFFIX))
            .collect();
        assert_eq!(files.len(), KEEP);
        // Days 1 to 5 are gone, 6 to 25 kept.
        for day in 1..=5 {
            assert!(
                !files
                    .iter()
                    .any(|f| f.contains(&format!("202611{day:02}T"))),
                "{day}"
            );
        }
        let s = scan(&r).unwrap();
        assert_eq!(s.found, KEEP);
        assert_eq!(s.latest().unwrap().run_id, run(25, 7));
        // Same second: the process id decides.
        write(&r, &receipt("carol", run(25, 100), RunResult::Incomplete)).unwrap();
        assert_eq!(latest(&r).unwrap().unwrap().user, "carol");
        assert_eq!(scan(&r).unwrap().latest_of("bob").unwrap().user, "bob");
    }

    #[test]
    fn bad_receipts_are_skipped_with_a_warning_never_read() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let good = receipt("alice", run(2, 1), RunResult::Done);
        write(&r, &good).unwrap();
        let dir = d.path().join(DIR);
        let put = |name: &str, bytes: &[u8], m: u32| {
            fs::write(dir.join(name), bytes).unwrap();
            fs::set_permissions(dir.join(name), fs::Permissions::from_mode(m)).unwrap();
        };
        // Later run ids, each unusable for its own reason.
        put("bob-20261203T000000Z-1.receipt.json", b"{ not json", 0o600);
        let mut other = receipt("carol", run(4, 1), RunResult::Done);
        put(
            "bob-20261204T000000Z-1.receipt.json",
            &serde_json::to_vec(&other).unwrap(),
            0o600,
        );
        other.user = "dave".into();
        other.run_id = RunId::try_from("20261205T000000Z-1".to_string()).unwrap();
        put(
            "dave-20261205T000000Z-1.receipt.json",
            &serde_json::to_vec(&other).unwrap(),
            0o666,
        );
        let mut v2 = serde_json::to_value(receipt(
            "erin",
            RunId::try_from("20261206T000000Z-1".to_string()).unwrap(),
            RunResult::Done,
        ))
        .unwrap();
        v2["version"] = 2.into();
        put(
            "erin-20261206T000000Z-1.receipt.json",
            &serde_json::to_vec(&v2).unwrap(),
            0o600,
        );
        put("no-run-id.receipt.json", b"{}", 0o600);
        std::os::unix::fs::symlink(
            dir.join("alice-20261102T005320Z-1.receipt.json"),
            dir.join("frank-20261207T000000Z-1.receipt.json"),
        )
        .unwrap();
        put(
            "huge-20261208T000000Z-1.receipt.json",
            &vec![b' '; MAX_RECEIPT as usize + 1],
            0o600,
        );
        let s = scan(&r).unwrap();
        assert_eq!(s.found, 8);
        assert_eq!(s.receipts, vec![good.clone()]);
        assert_eq!(s.warnings.len(), 7, "{:#?}", s.warnings);
        let all = s.warnings.join("\n");
        for (file, why) in [
            (
                "bob-20261203T000000Z-1",
                "not a receipt fvsync can read (line",
            ),
            ("bob-20261204T000000Z-1", "not the one its name says"),
            ("dave-20261205T000000Z-1", "writable by other users"),
            ("erin-20261206T000000Z-1", "not a version-1 receipt"),
            ("no-run-id", "its name is not"),
            ("frank-20261207T000000Z-1", "symbolic link"),
            ("huge-20261208T000000Z-1", "larger than"),
        ] {
            assert!(
                s.warnings
                    .iter()
                    .any(|w| w.contains(file) && w.contains(why)),
                "{file}: {why}\n{all}"
            );
        }
        // Nothing of a file's contents reaches a warning.
        assert!(!all.contains("not json") && !all.contains("carol"));
        assert_eq!(latest(&r).unwrap(), Some(good));
    }

    #[test]
    fn an_untrusted_folder_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        write(&r, &receipt("alice", run(2, 1), RunResult::Done)).unwrap();
        fs::set_permissions(d.path().join(DIR), fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(scan(&r).unwrap_err().kind(), ErrorKind::Refused);
        assert!(write(&r, &receipt("alice", run(3, 1), RunResult::Done)).is_err());
        // A folder that is a link: never followed, for reading or writing.
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("private/var/log")).unwrap();
        fs::create_dir_all(d.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), d.path().join(DIR)).unwrap();
        let r = root(d.path());
        assert_eq!(scan(&r).unwrap_err().kind(), ErrorKind::Refused);
        assert!(write(&r, &receipt("alice", run(3, 1), RunResult::Done)).is_err());
        assert_eq!(fs::read_dir(d.path().join("elsewhere")).unwrap().count(), 0);
    }

    #[test]
    fn an_invalid_receipt_is_not_written() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let mut rc = receipt("alice", run(2, 1), RunResult::Done);
        rc.user = "../etc".into();
        assert!(write(&r, &rc).is_err());
        rc.user = "alice".into();
        rc.version = 9;
        assert!(write(&r, &rc).is_err());
        assert!(!d.path().join(DIR).exists());
    }

    #[test]
    fn first_login_follows_the_matrix_after_the_run() {
        let rows = vec![
            Row::new(Secret::Filevault, Accepts::New),
            Row::new(Secret::Login, Accepts::New),
            Row::new(Secret::Keychain, Accepts::Neither),
            Row::new(Secret::LocalItems, Accepts::Unknown),
        ];
        assert_eq!(
            first_login(&rows),
            vec![
                "the login keychain asks for its password (it takes neither OLD nor NEW)",
                "the Local Items keychain asks for OLD once",
            ]
        );
        let rows = vec![
            Row::new(Secret::Filevault, Accepts::Old),
            Row::new(Secret::Login, Accepts::New),
            Row::new(Secret::Keychain, Accepts::Old),
        ];
        let v = first_login(&rows);
        assert_eq!(v.len(), 2);
        assert!(v[0].starts_with("FileVault still unlocks with OLD"));
        assert!(v[1].contains("asks for OLD once to update"));
        let rows = vec![
            Row::new(Secret::Filevault, Accepts::New),
            Row::new(Secret::Login, Accepts::New),
            Row::new(Secret::Keychain, Accepts::New),
        ];
        assert!(first_login(&rows).is_empty());
    }

    #[derive(Clone, Default)]
    struct Buf(Rc<RefCell<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(f: impl FnOnce(&mut Ui)) -> (String, String) {
        let (out, err) = (Buf::default(), Buf::default());
        let mut ui = Ui::with_writers(Box::new(out.clone()), Box::new(err.clone()), false);
        f(&mut ui);
        let s = |b: Buf| String::from_utf8(b.0.borrow().clone()).unwrap();
        (s(out), s(err))
    }

    #[test]
    fn the_report_renders_as_text_and_json() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        let (out, _) = text(|ui| render(&report(&r, "this Mac".into()).unwrap(), ui));
        assert!(out.contains("No readable fvsync receipt"), "{out}");
        write(&r, &receipt("alice", run(2, 1), RunResult::Incomplete)).unwrap();
        fs::write(
            d.path().join(DIR).join("x-20261201T000000Z-1.receipt.json"),
            b"[]",
        )
        .unwrap();
        fs::set_permissions(
            d.path().join(DIR).join("x-20261201T000000Z-1.receipt.json"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let rep = report(&r, "this Mac".into()).unwrap();
        let (out, err) = text(|ui| ui.show(&rep));
        for want in [
            "fvsync receipt: this Mac",
            "The latest of 2 receipts",
            "20261102T005320Z-1 (reconcile)",
            "alice on disk3s5",
            "incomplete",
            "filevault, login",
            "2 attempts used, 1 failed; recovery key used",
            "left keychain: the keychain takes neither OLD nor NEW",
            "At the first login:",
            "  - the Local Items keychain asks for OLD once",
            "Where the password comes from:",
            "  - a mobile account",
        ] {
            assert!(out.contains(want), "{want}\n{out}");
        }
        assert!(
            err.contains("x-20261201T000000Z-1.receipt.json skipped"),
            "{err}"
        );
        let (out, _) = text(|ui| {
            ui.json = true;
            ui.show(&rep)
        });
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["found"], 2);
        assert_eq!(v["receipt"]["result"], "incomplete");
        assert_eq!(v["warnings"].as_array().unwrap().len(), 1);
    }

    // -----------------------------------------------------------------------
    // The fleet check

    const KC_0X100: &[u8] =
        include_bytes!("../../tests/data/samples/keychainbreaker-test.keychain-db");
    const KC_0X200: &[u8] =
        include_bytes!("../../tests/data/samples/hackbrowserdata-test-0x200.keychain-db");

    fn user_record(name: &str, uid: u32, token: bool, srp: bool) -> Vec<u8> {
        let mut d = Dictionary::new();
        let a = |s: &str| Value::Array(vec![Value::String(s.into())]);
        d.insert("name".into(), a(name));
        d.insert("uid".into(), a(&uid.to_string()));
        d.insert("gid".into(), a("20"));
        d.insert("home".into(), a(&format!("/Users/{name}")));
        d.insert(
            "generateduid".into(),
            a(&format!("A1B2C3D4-0000-4000-8000-{uid:012}")),
        );
        let mut aa = vec![Value::String(
            ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>".into(),
        )];
        if token {
            aa.push(Value::String(";SecureToken;".into()));
        }
        d.insert("authentication_authority".into(), Value::Array(aa));
        let mut rec = UserRecord::from_dict(d);
        let mut sh = crate::formats::shadowhash::generate(b"pw", 1000, 1000).unwrap();
        if !srp {
            sh.srp = None;
        }
        rec.set_shadow_hash(&sh).unwrap();
        rec.to_bytes().unwrap()
    }

    fn put_record(r: &Root, name: &str, bytes: &[u8]) {
        let dir = Rel::new(secrets::USERS_DIR).unwrap();
        r.ensure_dir(&dir, 0o700).unwrap();
        r.write_atomic(
            &dir.join(&format!("{name}.plist")).unwrap(),
            bytes,
            Perms::PRIVATE,
        )
        .unwrap();
    }

    fn put_keychain(r: &Root, name: &str, bytes: &[u8]) {
        let kcs = Rel::new(&format!("Users/{name}/Library/Keychains")).unwrap();
        r.ensure_dir(&kcs, 0o700).unwrap();
        r.write_atomic(
            &kcs.join("login.keychain-db").unwrap(),
            bytes,
            Perms::PRIVATE,
        )
        .unwrap();
    }

    #[test]
    fn the_fleet_check_reads_every_user_without_a_password() {
        let d = tempfile::tempdir().unwrap();
        let r = root(d.path());
        // alice: FileVault user, no SRP, a legacy keychain, last run incomplete.
        put_record(&r, "alice", &user_record("alice", 501, true, false));
        put_keychain(&r, "alice", KC_0X100);
        write(&r, &receipt("alice", run(2, 1), RunResult::Done)).unwrap();
        write(&r, &receipt("alice", run(3, 1), RunResult::Incomplete)).unwrap();
        // bob: FileVault user with SRP, a 0x200 keychain with a SystemKeys entropy.
        put_record(&r, "bob", &user_record("bob", 502, true, true));
        put_keychain(&r, "bob", KC_0X200);
        let name = crate::formats::keychain::system_keys_file_name(KC_0X200).unwrap();
        let sk = Rel::new(crate::formats::keychain::SYSTEM_KEYS_DIR).unwrap();
        r.ensure_dir(&sk, 0o700).unwrap();
        let mut ent = Vec::new();
        Value::Data(vec![7u8; 32]).to_writer_xml(&mut ent).unwrap();
        r.write_atomic(&sk.join(&name).unwrap(), &ent, Perms::PRIVATE)
            .unwrap();
        // carol: no SecureToken, no SRP (not flagged), no keychain, a mobile account.
        let mut c = UserRecord::parse(&user_record("carol", 503, false, false)).unwrap();
        let mut dict = c.dict().clone();
        dict.insert(
            "OriginalNodeName".into(),
            Value::Array(vec!["/Active Directory/X".into()]),
        );
        c = UserRecord::from_dict(dict);
        put_record(&r, "carol", &c.to_bytes().unwrap());
        // Skipped: a system account, a service account, a record naming another
        // user, garbage, and a record writable by others.
        put_record(&r, "daemon", &user_record("daemon", 1, false, true));
        put_record(&r, "_svc", &user_record("_svc", 600, false, true));
        put_record(&r, "mallory", &user_record("alice", 504, true, true));
        put_record(&r, "junk", b"not a plist");
        put_record(&r, "erin", &user_record("erin", 505, true, true));
        fs::set_permissions(
            d.path().join(secrets::USERS_DIR).join("erin.plist"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();

        let f = fleet_check(&r);
        let users: Vec<&str> = f.users.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(users, vec!["alice", "bob", "carol"]);
        let (a, b, c) = (&f.users[0], &f.users[1], &f.users[2]);
        assert!(a.secure_token && b.secure_token && !c.secure_token);
        assert_eq!(
            (a.login_hash, b.login_hash, c.login_hash),
            (LoginHash::NoSrp, LoginHash::WithSrp, LoginHash::NoSrp)
        );
        assert_eq!(
            (a.keychain, b.keychain, c.keychain),
            (
                KeychainKind::Legacy,
                KeychainKind::Partition,
                KeychainKind::None
            )
        );
        assert_eq!(
            (
                a.system_keys_entropy,
                b.system_keys_entropy,
                c.system_keys_entropy
            ),
            (Some(false), Some(true), None)
        );
        assert_eq!(a.last_result, Some(RunResult::Incomplete));
        assert_eq!(a.last_run_id.as_deref(), Some("20261103T005320Z-1"));
        assert_eq!(b.last_result, None);
        assert_eq!(
            a.flags,
            vec![
                FleetFlag::NoSrp,
                FleetFlag::LastRunIncomplete,
                FleetFlag::LegacyKeychain
            ]
        );
        assert!(b.flags.is_empty() && c.flags.is_empty());
        assert_eq!(c.account_sources, vec![SourceCode::MobileAccount]);
        assert!(f.needs_attention);
        let w = f.warnings.join("\n");
        for want in [
            "mallory.plist: the record names another user",
            "junk.plist: not a user record",
            "erin.plist: skipped",
        ] {
            assert!(w.contains(want), "{want}\n{w}");
        }
        // The Preboot list, filled in by the command.
        let mut f = f;
        f.set_preboot("bob", Some(false));
        assert_eq!(f.users[1].flags, vec![FleetFlag::PrebootStale]);
        assert_eq!(f.users[1].preboot_current, Some(false));
        // Text and JSON.
        let (out, _) = text(|ui| render_fleet(&f, ui));
        assert!(
            out.contains("alice") && out.contains("no-srp,last-run-incomplete,legacy-keychain"),
            "{out}"
        );
        assert!(out.contains("Needs attention: yes"));
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["users"][0]["keychain"], "legacy");
        assert_eq!(v["users"][1]["system_keys_entropy"], true);
        assert_eq!(v["users"][2]["account_sources"][0], "mobile-account");
    }

    #[test]
    fn the_fleet_check_of_an_empty_volume_is_quiet() {
        let d = tempfile::tempdir().unwrap();
        let f = fleet_check(&root(d.path()));
        assert!(f.users.is_empty());
        assert!(!f.needs_attention);
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        assert!(f.warnings[0].contains("cannot be listed"));
    }
}
