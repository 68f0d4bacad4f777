//! The reconcile journal and the audit log, both on the Data volume.
//!
//! `private/var/db/fvsync/<user>.journal.json` records the plan, where the
//! backups are and which steps are done, so a run that stopped can be finished
//! (or undone) by the next one. It holds no password, hash, salt or key.
//! `private/var/log/fvsync.log` gets one line per run: time, user, what
//! changed, result.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio;

/// Journal folder, relative to the Data volume root.
pub const DIR: &str = "private/var/db/fvsync";
/// Backups folder, relative to the Data volume root.
pub const BACKUP_DIR: &str = "private/var/db/fvsync/backups";
/// Audit log, relative to the Data volume root.
pub const AUDIT_LOG: &str = "private/var/log/fvsync.log";
/// Journal format version.
pub const VERSION: u32 = 1;

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

/// The journal file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Journal {
    /// Always [`VERSION`].
    pub fvsync_journal: u32,
    /// The fvsync version that wrote it.
    pub tool_version: String,
    /// Identifies the run (UTC time and process id).
    pub run_id: String,
    /// Short name.
    pub user: String,
    /// GeneratedUID.
    pub uuid: Option<String>,
    /// Data volume device.
    pub volume: String,
    /// State.
    pub state: State,
    /// When the run started (UTC, RFC 3339).
    pub started: String,
    /// Last update (UTC, RFC 3339).
    pub updated: String,
    /// Backup of the user record, relative to the volume root.
    pub record_backup: Option<String>,
    /// Backup of the login keychain, relative to the volume root.
    pub keychain_backup: Option<String>,
    /// The user's keychain path, relative to the volume root.
    pub keychain_path: Option<String>,
    /// A verifier of this run's OLD (a SALTED-SHA512-PBKDF2 entry with its own
    /// salt, in a 0600 backup file, relative to the volume root): `undo` checks
    /// the OLD it is given against it before changing anything, and a later
    /// run resumes this journal only when its OLD matches.
    #[serde(default)]
    pub old_verifier: Option<String>,
    /// Steps planned, in order, with whether each is done.
    pub steps: Vec<JournalStep>,
}

/// One step of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalStep {
    /// Step name (`filevault`, `login`, `keychain`, `preboot`).
    pub step: String,
    /// The change was about to be made (written before it is): a run that
    /// resumes checks such a step and marks it done if it took effect.
    #[serde(default)]
    pub started: bool,
    /// Done.
    pub done: bool,
}

impl Journal {
    /// Path of a user's journal under a volume root.
    pub fn path(root: &Path, user: &str) -> PathBuf {
        root.join(DIR).join(format!("{user}.journal.json"))
    }

    /// Reads a user's journal, `None` when there is none.
    ///
    /// # Errors
    /// Unreadable, corrupt, or from another journal version (exit 5 with a hint).
    pub fn load(root: &Path, user: &str) -> Result<Option<Journal>> {
        let path = Self::path(root, user);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let bytes = fsio::read_capped(&path)?;
        let j: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            Error::malformed(&path, format!("not a journal fvsync can read ({e})"))
                .hint("inspect it; if no run is in progress, move it aside and run again")
        })?;
        if j.fvsync_journal != VERSION {
            return Err(Error::new(
                crate::error::ErrorKind::Refused,
                format!(
                    "{} was written by a journal version {} (this fvsync reads {VERSION})",
                    crate::text::quote_path(&path),
                    j.fvsync_journal
                ),
            )
            .hint("finish or undo that run with the fvsync version that started it"));
        }
        if j.user != user {
            return Err(Error::malformed(&path, "it names another user"));
        }
        Ok(Some(j))
    }

    /// Writes the journal atomically (0600, in a 0700 folder).
    ///
    /// # Errors
    /// I/O.
    pub fn save(&mut self, root: &Path) -> Result<()> {
        self.updated = now_rfc3339();
        fsio::ensure_dir(&root.join(DIR), 0o700)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::new(
                crate::error::ErrorKind::Failure,
                format!("cannot encode the journal: {e}"),
            )
        })?;
        fsio::write_atomic(&Self::path(root, &self.user), &bytes, fsio::Perms::PRIVATE)
    }

    /// Marks a step done (adding it when the plan of a resumed run has it and
    /// the journal does not).
    pub fn mark(&mut self, step: &str) {
        self.step_mut(step).done = true;
    }

    /// Records that a step's change is about to be made.
    pub fn mark_started(&mut self, step: &str) {
        self.step_mut(step).started = true;
    }

    /// True when a step is recorded as done.
    pub fn is_done(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s.step == step && s.done)
    }

    fn step_mut(&mut self, step: &str) -> &mut JournalStep {
        if let Some(i) = self.steps.iter().position(|s| s.step == step) {
            return &mut self.steps[i];
        }
        self.steps.push(JournalStep {
            step: step.to_string(),
            started: false,
            done: false,
        });
        let last = self.steps.len() - 1;
        &mut self.steps[last]
    }
}

/// Appends one audit line: time, user, volume, run, what changed, result.
///
/// # Errors
/// I/O.
pub fn audit(
    root: &Path,
    user: &str,
    volume: &str,
    run_id: &str,
    command: &str,
    changed: &[&str],
    result: &str,
) -> Result<()> {
    let path = root.join(AUDIT_LOG);
    if let Some(dir) = path.parent() {
        fsio::ensure_dir(dir, 0o755)?;
    }
    let changed = if changed.is_empty() {
        "nothing".to_string()
    } else {
        changed.join(",")
    };
    let line = format!(
        "{} fvsync[{}] {command} user={} volume={volume} run={run_id} changed={changed} result={result}",
        now_rfc3339(),
        std::process::id(),
        crate::text::escape(user),
    );
    fsio::append_line(&path, &line)
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

/// Formats Unix seconds as UTC RFC 3339 (civil-from-days, Howard Hinnant's algorithm).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A run id: compact UTC time and the process id.
pub fn run_id() -> String {
    let t = now_rfc3339().replace(['-', ':'], "");
    format!("{t}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_000_000), "2026-11-30T00:53:20Z");
    }
}
