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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
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
    /// Where the account's password comes from (docs/mdm.md): what the
    /// next login does with NEW.
    pub account_sources: Vec<crate::engine::account::AccountSource>,
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Left {
    /// The step.
    pub step: Step,
    /// Why.
    pub why: String,
}

/// `fvsync reconcile`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
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
    /// Where the account's password comes from (docs/mdm.md): what the
    /// next login does with NEW.
    pub account_sources: Vec<crate::engine::account::AccountSource>,

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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct UndoItem {
    /// The step.
    pub step: Step,
    /// What takes what now, and what it will take.
    pub change: String,
}

/// `fvsync undo`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Undo {
    /// Who and where.
    #[serde(flatten)]
    pub head: Head,
    /// Nothing was to be changed.
    pub dry_run: bool,
    /// The reconcile being undone.
    pub run_id: String,
    /// When it ran, for people (`2026-12-02 02:13 UTC (5 minutes ago)`);
    /// the run id holds the exact UTC time.
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
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
    /// Where the account's password comes from (docs/mdm.md): what the
    /// next login does with NEW.
    pub account_sources: Vec<crate::engine::account::AccountSource>,

    /// The plan.
    pub plan: Vec<Planned>,
}

/// One volume of `fvsync volumes`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct VolumeItem {
    /// The container, e.g. `disk3`.
    pub container: String,
    /// `APFSContainerUUID`.
    pub container_uuid: String,
    /// Whether the container is on an internal disk (null: unknown).
    pub internal: Option<bool>,
    /// e.g. `disk3s5`.
    pub device: String,
    /// `APFSVolumeUUID`.
    pub uuid: String,
    /// `Name`.
    pub name: String,
    /// `Roles`.
    pub roles: Vec<String>,
    /// `Encryption`.
    pub encryption: bool,
    /// `FileVault`.
    pub filevault: bool,
    /// `Locked`.
    pub locked: bool,
    /// Where its files are when mounted.
    pub mount_point: Option<String>,
    /// `APFSVolumeGroupUUID`.
    pub volume_group: Option<String>,
    /// How many crypto users it has.
    pub crypto_users: usize,
}

/// `fvsync volumes`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Volumes {
    /// Always [`VERSION`].
    pub version: u32,
    /// What fvsync looked at.
    pub source: String,
    /// Every volume of every container.
    pub volumes: Vec<VolumeItem>,
}

/// The users of one Data volume, in `fvsync users`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct UsersOfVolume {
    /// e.g. `disk3s5`.
    pub device: String,
    /// The volume's name.
    pub name: String,
    /// Whether it is on an external disk.
    pub external: bool,
    /// Locked: the users come from the Preboot list (display only).
    pub locked: bool,
    /// Its users.
    pub users: Vec<crate::listing::UserInfo>,
}

/// `fvsync users`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Users {
    /// Always [`VERSION`].
    pub version: u32,
    /// What fvsync looked at.
    pub source: String,
    /// The Data volumes.
    pub volumes: Vec<UsersOfVolume>,
}

/// One scenario of `fvsync sim scenarios`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Scenario {
    /// Its name (`--scenario`).
    pub name: String,
    /// What it models.
    pub summary: String,
}

/// `fvsync sim scenarios`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct SimScenarios {
    /// Always [`VERSION`].
    pub version: u32,
    /// Every scenario.
    pub scenarios: Vec<Scenario>,
}

/// `fvsync sim create`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct SimCreate {
    /// Always [`VERSION`].
    pub version: u32,
    /// The folder made.
    pub created: String,
    /// Its scenario.
    pub scenario: String,
}

/// `fvsync runbook --json`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Runbook {
    /// Always [`VERSION`].
    pub version: u32,
    /// The runbook's text (Markdown).
    pub runbook: String,
}

/// What went wrong, in an error document.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct ErrorInfo {
    /// The kind (it sets the exit code).
    pub kind: crate::error::ErrorKind,
    /// One line.
    pub message: String,
    /// What to do next.
    pub hint: Option<String>,
    /// The causes, outermost first.
    pub causes: Vec<String>,
    /// The exit code.
    pub exit_code: u8,
}

/// The document of a `--json` run that stopped on an error before it had a
/// report of its own.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct ErrorDoc {
    /// Always [`VERSION`].
    pub version: u32,
    /// The error.
    pub error: ErrorInfo,
    /// FileVault attempts this run spent (user commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filevault_attempts: Option<Ledger>,
    /// The exit code.
    pub exit_code: u8,
}

/// `fvsync selftest`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Selftest {
    /// Always [`VERSION`].
    pub version: u32,
    /// What fvsync looked at.
    pub source: String,
    /// The system (OS version and build, machine, diskutil).
    pub system: crate::platform::SystemInfo,
    /// The rehearsal's verdict and transcript.
    pub rehearsal: Rehearsal,
    /// The exit code.
    pub exit_code: u8,
}

/// `fvsync report DIR`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Pilot {
    /// Always [`VERSION`].
    pub version: u32,
    /// What fvsync looked at.
    pub source: String,
    /// What was written.
    pub report: crate::diskutil::report::ReportSummary,
}

/// The JSON Schema of every `--json` document, by file name under
/// `docs/schema/` (generated from these types: `make schemas` writes them, a
/// test checks the committed files are what the types say).
#[cfg(feature = "schema")]
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    fn one<T: schemars::JsonSchema>(name: &'static str) -> (&'static str, serde_json::Value) {
        let g = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let mut v = serde_json::to_value(g.into_root_schema_for::<T>()).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            let mut out = serde_json::Map::new();
            out.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
            out.insert(
                "$id".into(),
                format!("https://fvsync.invalid/schema/{name}.json").into(),
            );
            for (k, val) in std::mem::take(o) {
                if k != "$schema" {
                    out.insert(k, val);
                }
            }
            *o = out;
        }
        (name, v)
    }
    vec![
        one::<Diagnose>("diagnose"),
        one::<Verify>("verify"),
        one::<Reconcile>("reconcile"),
        one::<Undo>("undo"),
        one::<Purge>("purge"),
        one::<Volumes>("volumes"),
        one::<Users>("users"),
        one::<SimScenarios>("sim-scenarios"),
        one::<SimCreate>("sim-create"),
        one::<Runbook>("runbook"),
        one::<Selftest>("selftest"),
        one::<Pilot>("report"),
        one::<ErrorDoc>("error"),
        one::<crate::engine::report_receipt::Receipt>("receipt-file"),
        one::<crate::engine::report_receipt::ReceiptReport>("receipt"),
        one::<crate::engine::report_receipt::FleetReport>("fleet"),
    ]
}
