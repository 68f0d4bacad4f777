//! The reconcile journal, the backups and the audit log, all on the Data
//! volume, all fvsync's own files.
//!
//! - `private/var/db/fvsync/<user>.journal.json`: which run is in progress or
//!   last finished, its state, and which steps were started and done, so the
//!   next run can finish it (or `undo` can put it back). It holds **no path**,
//!   no password, hash, salt or key: every path is rebuilt from the user's
//!   short name and the run id, which is checked against
//!   `^\d{8}T\d{6}Z-\d+$` when the journal is read.
//! - `private/var/db/fvsync/backups/<user>-<run id>.plist` (the record before
//!   the run), `.keychain-db` (the login keychain before the run) and
//!   `.old-verifier.plist` (a fresh SALTED-SHA512-PBKDF2 entry of the run's
//!   OLD, so `undo` and a resumed run can check the OLD they are given).
//! - `private/var/log/fvsync.log`: one line per run.
//!
//! Each of them is read with the same trusted read as user records (root's,
//! not writable by others, a regular file with one link, no link on the way:
//! [`crate::fsio::Root::read`] with [`Want::SYSTEM`]); anything else is a
//! refusal, exit 5, and nothing is changed.

use serde::{Deserialize, Serialize};

use crate::engine::step::Step;
use crate::error::{Error, ErrorKind, Result};
use crate::fsio::{Perms, Rel, Root, Want};

/// Journal folder, relative to the Data volume root.
pub const DIR: &str = "private/var/db/fvsync";
/// Backups folder, relative to the Data volume root.
pub const BACKUP_DIR: &str = "private/var/db/fvsync/backups";
/// Audit log, relative to the Data volume root.
pub const AUDIT_LOG: &str = "private/var/log/fvsync.log";
/// Journal format version (2: no paths, typed steps).
pub const VERSION: u32 = 2;

/// A run's id: the UTC start time and the process id, `YYYYMMDDTHHMMSSZ-PID`.
/// Nothing else is ever accepted, so an id read from disk can name a file and
/// go into a log line as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    /// A new id for this run.
    pub fn new() -> RunId {
        let t = now_rfc3339().replace(['-', ':'], "");
        RunId(format!("{t}-{}", std::process::id()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Seconds since 1970 at which the run started, from the id (its
    /// `YYYYMMDDTHHMMSSZ`, ISO 8601's basic format); None for a date or time
    /// that does not exist.
    pub fn started_secs(&self) -> Option<i64> {
        let stamp = self.0.get(..16)?;
        let t = time::OffsetDateTime::parse(
            stamp,
            &time::format_description::well_known::Iso8601::PARSING,
        )
        .ok()?;
        Some(t.unix_timestamp())
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl TryFrom<String> for RunId {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        let b = s.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
        let ok = b.len() >= 18
            && b.len() <= 28
            && digits(0..8)
            && b[8] == b'T'
            && digits(9..15)
            && b[15] == b'Z'
            && b[16] == b'-'
            && digits(17..b.len());
        if ok {
            Ok(RunId(s))
        } else {
            Err("not a run id of the form YYYYMMDDTHHMMSSZ-PID".into())
        }
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Started, not finished: the next run resumes it.
    Open,
    /// Every step done and verified.
    Done,
    /// Stopped and rolled back.
    RolledBack,
    /// Put back by `undo`.
    Undone,
}

/// Which backups a run made (their names are rebuilt from user and run id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backups {
    /// The user record as it was.
    pub record: bool,
    /// The login keychain as it was.
    pub keychain: bool,
    /// A verifier of the run's OLD.
    pub old_verifier: bool,
}

/// One kind of backup file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backup {
    /// `<user>-<run>.plist`.
    Record,
    /// `<user>-<run>.keychain-db`.
    Keychain,
    /// `<user>-<run>.old-verifier.plist`.
    OldVerifier,
}

impl Backup {
    fn suffix(self) -> &'static str {
        match self {
            Backup::Record => "plist",
            Backup::Keychain => "keychain-db",
            Backup::OldVerifier => "old-verifier.plist",
        }
    }

    /// What the backup holds, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Backup::Record => "user record",
            Backup::Keychain => "login keychain",
            Backup::OldVerifier => "OLD verifier",
        }
    }
}

/// The journal file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// Always [`VERSION`].
    pub fvsync_journal: u32,
    /// The fvsync version that wrote it.
    pub tool_version: String,
    /// Identifies the run.
    pub run_id: RunId,
    /// Short name.
    pub user: String,
    /// The user's GeneratedUID when the run started (the identity it was bound to).
    pub generated_uid: String,
    /// Data volume device, for messages only.
    pub volume: String,
    /// State.
    pub state: State,
    /// When the run started (UTC, RFC 3339).
    pub started: String,
    /// Last update (UTC, RFC 3339).
    pub updated: String,
    /// Which backups exist.
    pub backups: Backups,
    /// Steps planned, in order, with whether each was started and is done.
    pub steps: Vec<JournalStep>,
}

/// One step of the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalStep {
    /// The step.
    pub step: Step,
    /// The change was about to be made (written before it is): a run that
    /// resumes checks such a step and marks it done if it took effect.
    pub started: bool,
    /// Done.
    pub done: bool,
}

/// The journal's path for a user.
///
/// # Errors
/// The name cannot be part of a file name (it was checked before; defensive).
pub fn path(user: &str) -> Result<Rel> {
    Rel::new(DIR)?.join(&format!("{user}.journal.json"))
}

/// A backup's path for a user and run.
///
/// # Errors
/// As [`path`].
pub fn backup_path(user: &str, run: &RunId, b: Backup) -> Result<Rel> {
    Rel::new(BACKUP_DIR)?.join(&format!("{user}-{run}.{}", b.suffix()))
}

impl Journal {
    /// A new open journal.
    pub fn new(user: &str, generated_uid: &str, volume: &str, steps: &[Step]) -> Journal {
        let now = now_rfc3339();
        Journal {
            fvsync_journal: VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            run_id: RunId::new(),
            user: user.into(),
            generated_uid: generated_uid.into(),
            volume: volume.into(),
            state: State::Open,
            started: now.clone(),
            updated: now,
            backups: Backups::default(),
            steps: steps
                .iter()
                .map(|&step| JournalStep {
                    step,
                    started: false,
                    done: false,
                })
                .collect(),
        }
    }

    /// Reads a user's journal, `None` when there is none. It must be fvsync's
    /// own (root's, private, one link, no link on the way), of this version,
    /// and name this user and GeneratedUID.
    ///
    /// # Errors
    /// Not trusted, unreadable, corrupt, of another version, or of another
    /// user (exit 5: nothing is changed).
    pub fn load(root: &Root, user: &str, generated_uid: &str) -> Result<Option<Journal>> {
        let rel = path(user)?;
        let Some((bytes, _)) = root.read_opt(&rel, Want::SYSTEM)? else {
            return Ok(None);
        };
        let refuse =
            |why: String| {
                Error::new(
                ErrorKind::Refused,
                format!("{} cannot be used: {why}; nothing was changed", root.show(&rel)),
            )
            .hint("if no fvsync run is in progress, inspect the file, move it aside and run again")
            };
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not JSON ({e})")))?;
        let version = v.get("fvsync_journal").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(VERSION)) {
            return Err(refuse(format!(
                "it is not a version-{VERSION} fvsync journal (version {})",
                version.map_or("none".to_string(), |v| v.to_string())
            ))
            .hint("finish or undo that run with the fvsync version that started it"));
        }
        let j: Journal = serde_json::from_value(v)
            .map_err(|e| refuse(format!("not a journal fvsync can read ({e})")))?;
        if j.user != user {
            return Err(refuse("it names another user".into()));
        }
        if !j.generated_uid.eq_ignore_ascii_case(generated_uid) {
            return Err(refuse(
                "it was written for another GeneratedUID than this user's record has".into(),
            ));
        }
        Ok(Some(j))
    }

    /// Writes the journal atomically (0600, in a 0700 folder).
    ///
    /// # Errors
    /// I/O.
    pub fn save(&mut self, root: &Root) -> Result<()> {
        self.updated = now_rfc3339();
        root.ensure_dir(&Rel::new(DIR)?, 0o700)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("cannot encode the journal: {e}"),
            )
        })?;
        root.write_atomic(&path(&self.user)?, &bytes, Perms::PRIVATE)
    }

    /// Writes one of this run's backups (0600, in a 0700 folder).
    ///
    /// # Errors
    /// I/O.
    pub fn write_backup(&mut self, root: &Root, b: Backup, bytes: &[u8]) -> Result<()> {
        root.ensure_dir(&Rel::new(BACKUP_DIR)?, 0o700)?;
        root.write_atomic(
            &backup_path(&self.user, &self.run_id, b)?,
            bytes,
            Perms::PRIVATE,
        )?;
        match b {
            Backup::Record => self.backups.record = true,
            Backup::Keychain => self.backups.keychain = true,
            Backup::OldVerifier => self.backups.old_verifier = true,
        }
        Ok(())
    }

    /// Reads one of this run's backups (`None` when the run made none), with
    /// the trusted read.
    ///
    /// # Errors
    /// The run made it but it cannot be read or is not trusted.
    pub fn read_backup(&self, root: &Root, b: Backup) -> Result<Option<Vec<u8>>> {
        let made = match b {
            Backup::Record => self.backups.record,
            Backup::Keychain => self.backups.keychain,
            Backup::OldVerifier => self.backups.old_verifier,
        };
        if !made {
            return Ok(None);
        }
        let rel = backup_path(&self.user, &self.run_id, b)?;
        root.read(&rel, Want::SYSTEM)
            .map(|(bytes, _)| Some(bytes))
            .map_err(|e| {
                e.context(
                    ErrorKind::Refused,
                    format!(
                        "the {} backup of run {} cannot be used; nothing was changed",
                        b.what(),
                        self.run_id
                    ),
                )
            })
    }

    /// Marks a step done.
    pub fn mark(&mut self, step: Step) {
        let s = self.step_mut(step);
        s.started = true;
        s.done = true;
    }

    /// Marks a step as about to be made.
    pub fn mark_started(&mut self, step: Step) {
        self.step_mut(step).started = true;
    }

    /// True when a step is recorded as done.
    pub fn is_done(&self, step: Step) -> bool {
        self.steps.iter().any(|s| s.step == step && s.done)
    }

    fn step_mut(&mut self, step: Step) -> &mut JournalStep {
        if let Some(i) = self.steps.iter().position(|s| s.step == step) {
            return &mut self.steps[i];
        }
        self.steps.push(JournalStep {
            step,
            started: false,
            done: false,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }
}

/// Appends one audit line: time, user, volume, run, what changed, result.
/// Every field is fvsync's own or checked (the user name is escaped, the run
/// id validated), so no line can be forged through them.
///
/// # Errors
/// I/O, or an untrusted log file.
pub fn audit(
    root: &Root,
    user: &str,
    volume: &str,
    run_id: &RunId,
    command: &str,
    changed: &[Step],
    result: &str,
) -> Result<()> {
    let rel = Rel::new(AUDIT_LOG)?;
    root.ensure_dir(&Rel::new("private/var/log")?, 0o755)?;
    let changed = if changed.is_empty() {
        "nothing".to_string()
    } else {
        changed
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    };
    let line = format!(
        "{} fvsync[{}] {command} user={} volume={} run={run_id} changed={changed} result={result}",
        now_rfc3339(),
        std::process::id(),
        crate::text::escape(user).replace(' ', "\\u{20}"),
        crate::text::escape(volume).replace(' ', "\\u{20}"),
    );
    root.append_line(&rel, &line)
}

/// Seconds since 1970.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    rfc3339(now_secs() as i64)
}

/// Formats Unix seconds as UTC RFC 3339, `YYYY-MM-DDTHH:MM:SSZ`. A value
/// outside the years 0000 to 9999 (RFC 3339's range; only a corrupt record
/// holds one) is clamped to the nearest end of that range.
pub fn rfc3339(secs: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const FIRST: i64 = -62_167_219_200;
    const LAST: i64 = 253_402_300_799;
    time::OffsetDateTime::from_unix_timestamp(secs.clamp(FIRST, LAST))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_000_000), "2026-11-30T00:53:20Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        // A corrupt passwordLastSetTime: clamped to RFC 3339's years.
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(now_rfc3339().len(), 20);
    }

    #[test]
    fn run_ids_are_validated() {
        let id = RunId::new();
        assert_eq!(RunId::try_from(id.as_str().to_string()).unwrap(), id);
        for bad in [
            "",
            "20260101T000000Z-",
            "20260101T000000Z-1\nforged",
            "../../etc/passwd",
            "20260101T000000Z-1/../x",
            "2026-01-01T000000Z-1",
            "20260101T000000Z-12345678901234567890",
        ] {
            assert!(RunId::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
        let r = RunId::try_from("20261130T005320Z-42".to_string()).unwrap();
        assert_eq!(r.started_secs(), Some(1_796_000_000));
        let leap = RunId::try_from("20000229T000000Z-1".to_string()).unwrap();
        assert_eq!(leap.started_secs(), Some(951_782_400));
        assert_eq!(
            RunId::try_from(format!("{}-7", now_rfc3339().replace(['-', ':'], "")))
                .unwrap()
                .started_secs()
                .map(|t| rfc3339(t).len()),
            Some(20)
        );
        // Well-formed digits, but no such date or time.
        for bad in [
            "20010229T000000Z-1",
            "20261301T000000Z-1",
            "20261130T245320Z-1",
        ] {
            let r = RunId::try_from(bad.to_string()).unwrap();
            assert_eq!(r.started_secs(), None, "{bad}");
        }
    }
}
