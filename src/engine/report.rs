//! What each command reports: typed, `Serialize`d as the `--json` document
//! (docs/json.md, docs/schema/) and rendered as text by
//! [`crate::output::render`]. No command prints anything else of its own.

use serde::Serialize;

use crate::engine::attempts::Ledger;
use crate::engine::plan::Verdict;
use crate::engine::secrets::Row;
use crate::engine::step::{Planned, Step};
use crate::platform::Rehearsal;

/// The JSON documents' format version.
pub const VERSION: u32 = 1;

/// Who and where, common to the user commands.
#[derive(Clone, Debug, Serialize)]
pub struct Head {
    /// Always [`VERSION`].
    pub version: u32,
    /// The command.
    pub command: &'static str,
    /// The user's short name.
    pub user: String,
    /// The user's full name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
    /// The Data volume's device.
    pub volume: String,
    /// The Data volume's name.
    pub volume_name: String,
    /// What fvsync works on ("this Mac", "simulated Mac at ...").
    pub source: String,
    /// Whether the volume has FileVault on.
    pub filevault_on: bool,
}

/// What the Preboot list looks like for this user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrebootState {
    /// It is current.
    Current,
    /// It is out of date (a reconcile updates it).
    Stale,
    /// fvsync cannot tell (the passphrase is not in it): never reported as stale.
    NotChecked,
}

impl PrebootState {
    /// From what the platform could tell.
    pub fn from(current: Option<bool>) -> PrebootState {
        match current {
            Some(true) => PrebootState::Current,
            Some(false) => PrebootState::Stale,
            None => PrebootState::NotChecked,
        }
    }
}

/// `fvsync diagnose`.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnose {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// The matrix.
    pub secrets: Vec<Row>,
    /// FileVault attempts.
    pub filevault_attempts: Ledger,
    /// What `reconcile` would do.
    pub plan: Vec<Planned>,
    /// The Preboot list.
    pub preboot: PrebootState,
    /// The verdict.
    pub verdict: Verdict,
    /// True when in sync.
    pub in_sync: bool,
    /// Lines for the person (what to do next).
    pub next: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
}

/// `fvsync verify`.
#[derive(Clone, Debug, Serialize)]
pub struct Verify {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// The matrix (accepts: `new` means "takes this password").
    pub secrets: Vec<Row>,
    /// The Preboot list (`true`/`false`, or null when it cannot be told).
    pub preboot_current: Option<bool>,
    /// The Preboot list.
    pub preboot: PrebootState,
    /// FileVault attempts.
    pub filevault_attempts: Ledger,
    /// The verdict.
    pub verdict: Verdict,
    /// True when every counted secret takes the password.
    pub in_sync: bool,
    /// Lines for the person.
    pub next: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
}

/// A step left as it was while the plan ran.
#[derive(Clone, Debug, Serialize)]
pub struct Left {
    /// The step.
    pub step: Step,
    /// Why.
    pub why: String,
}

/// `fvsync reconcile`.
#[derive(Clone, Debug, Serialize)]
pub struct Reconcile {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// Nothing was to be changed.
    pub dry_run: bool,
    /// The matrix before.
    pub secrets: Vec<Row>,
    /// The matrix after (a run that changed something).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets_after: Option<Vec<Row>>,
    /// The plan.
    pub plan: Vec<Planned>,
    /// What was changed.
    pub changed: Vec<Step>,
    /// Steps left as they were at apply time.
    pub left: Vec<Left>,
    /// The run id of an interrupted run this one resumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<String>,
    /// This run's id, when it changed something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The rehearsal of the passphrase change, when one was needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Rehearsal>,
    /// FileVault attempts.
    pub filevault_attempts: Ledger,
    /// The verdict at the end.
    pub verdict: Verdict,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Lines for the person.
    pub next: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
}

/// One secret `undo` puts back.
#[derive(Clone, Debug, Serialize)]
pub struct UndoItem {
    /// The step.
    pub step: Step,
    /// What takes what now, and what it will take.
    pub change: String,
}

/// `fvsync undo`.
#[derive(Clone, Debug, Serialize)]
pub struct Undo {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// Nothing was to be changed.
    pub dry_run: bool,
    /// The reconcile being undone.
    pub run_id: String,
    /// When it ran (UTC, RFC 3339) and in this machine's local terms.
    pub reconciled_at: String,
    /// What will change (or changed).
    pub plan: Vec<UndoItem>,
    /// What was put back.
    pub changed: Vec<Step>,
    /// FileVault attempts.
    pub filevault_attempts: Ledger,
    /// Lines for the person.
    pub next: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
}

/// `fvsync purge`.
#[derive(Clone, Debug, Serialize)]
pub struct Purge {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// Backup files found (names only).
    pub backups: Vec<String>,
    /// Removed.
    pub removed: Vec<String>,
    /// Nothing was to be changed.
    pub dry_run: bool,
    /// FileVault attempts.
    pub filevault_attempts: Ledger,
    /// The exit code.
    pub exit_code: u8,
}

/// What `reconcile` shows before it asks to apply its plan (text only).
#[derive(Clone, Debug, Serialize)]
pub struct Preview {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// The plan's title line.
    pub title: String,
    /// The matrix.
    pub secrets: Vec<Row>,
    /// FileVault attempts so far.
    pub filevault_attempts: Ledger,
    /// Notes before the plan (a resumed run, a stale journal).
    pub notes: Vec<String>,
    /// The plan.
    pub plan: Vec<Planned>,
}
