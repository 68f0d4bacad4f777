//! The steps of a reconcile, as types. Each step is one module with the same
//! small set of operations ([`StepOps`]): plan from the observation, change
//! and check (run by the executor, which owns the journal marks, the audit
//! line, the failpoints and the rollback order), tell whether an interrupted
//! change took effect, revert from the run's own snapshot, and undo from a
//! finished run's backups.
//!
//! Adding a step is one module here and one variant of [`Step`]: the match in
//! [`Step::ops`] is the one place the compiler sends you to.

mod filevault;
pub mod hint;
mod keychain;
mod login;
mod preboot;

use serde::{Deserialize, Serialize};

use crate::engine::journal::Journal;
use crate::engine::observe::Observation;
use crate::error::Result;
use crate::output::Ui;
use crate::platform::Platform;
use crate::secret::Password;

/// A step of a reconcile (its serde name is the journal's and the JSON's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The FileVault (or SecureToken) passphrase.
    Filevault,
    /// The login record: ShadowHashData (login hash and SRP verifier) and
    /// `accountPolicyData`.
    Login,
    /// The login keychain.
    Keychain,
    /// The password hint (the record's and the crypto user's).
    Hint,
    /// The Preboot volume's user lists.
    Preboot,
}

impl Step {
    /// Every step, in the order a reconcile runs them.
    pub const ALL: [Step; 5] = [
        Step::Filevault,
        Step::Login,
        Step::Keychain,
        Step::Hint,
        Step::Preboot,
    ];

    /// The step's name (as in the journal and the JSON).
    pub fn name(self) -> &'static str {
        match self {
            Step::Filevault => "filevault",
            Step::Login => "login",
            Step::Keychain => "keychain",
            Step::Hint => "hint",
            Step::Preboot => "preboot",
        }
    }

    /// The step's operations.
    pub(crate) fn ops(self) -> &'static dyn StepOps {
        match self {
            Step::Filevault => &filevault::FileVault,
            Step::Login => &login::Login,
            Step::Keychain => &keychain::Keychain,
            Step::Hint => &hint::Hint,
            Step::Preboot => &preboot::Preboot,
        }
    }
}

/// What a plan does with a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// It will be changed.
    Do,
    /// Nothing to do: it is already right, or does not apply.
    Skip,
    /// It cannot be changed: left as it is (the reason says what follows).
    Leave,
}

/// One step of a plan, with what it does in words.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Planned {
    /// The step.
    pub step: Step,
    /// Do, skip or leave.
    pub action: Action,
    /// What it does (or why not), in words.
    pub detail: String,
}

impl Planned {
    pub(crate) fn new(step: Step, action: Action, detail: impl Into<String>) -> Planned {
        Planned {
            step,
            action,
            detail: detail.into(),
        }
    }
}

/// How a step's failure is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A passphrase change: rehearsed first; an answer not understood means
    /// the outcome is unknown (exit 7, no rollback); reverted only when known done.
    Passphrase,
    /// A file write: reverted from the snapshot when started.
    File,
    /// A repair (display metadata): a failure is a warning, never a rollback.
    Repair,
}

/// The failpoints around a step (names kept stable for the crash suite).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Points {
    /// After the journal says "started", before the change.
    pub before: Option<&'static str>,
    /// After the change, before the journal says "done".
    pub written: Option<&'static str>,
    /// After the journal says "done", before the check.
    pub marked: Option<&'static str>,
    /// After the check.
    pub checked: Option<&'static str>,
}

/// What this run found before its first write: what its rollback puts back.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The record's bytes.
    pub record: Option<Vec<u8>>,
    /// The keychain's bytes.
    pub keychain: Option<Vec<u8>>,
}

/// What a step's change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// Changed; for a file, the bytes written (the check reads them back).
    Yes(Option<Vec<u8>>),
    /// Left as it is after all, with why (a warning, not a failure).
    No(String),
}

/// What a step works with while the executor runs it.
pub(crate) struct Exec<'a> {
    /// The Mac.
    pub p: &'a mut dyn Platform,
    /// Progress and warnings.
    pub ui: &'a mut Ui,
    /// What was observed (root, identity, files, FileVault).
    pub o: &'a mut Observation,
    /// The password the secrets take now (reconcile: OLD; undo: NEW).
    pub from: &'a Password,
    /// The password they move to.
    pub to: &'a Password,
    /// This run's snapshot.
    pub snapshot: &'a Snapshot,
    /// The command that finishes this run when it stops mid-way (for hints).
    pub again: &'a str,
}

/// A finished run being undone.
pub(crate) struct Undo<'a> {
    /// The Mac.
    pub p: &'a mut dyn Platform,
    /// What was observed.
    pub o: &'a mut Observation,
    /// The finished run's journal.
    pub journal: &'a Journal,
    /// OLD (what undo puts back).
    pub old: &'a Password,
    /// NEW (what the secrets take now).
    pub new: &'a Password,
    /// The run's record backup, read and parsed before anything changes.
    pub record: Option<&'a [u8]>,
    /// The run's keychain backup.
    pub keychain: Option<&'a [u8]>,
    /// The command that finishes this undo when it stops mid-way.
    pub again: &'a str,
}

/// The operations of a step. See the module docs.
pub(crate) trait StepOps: Sync {
    /// The plan for this step, given the observation and the steps planned before it.
    fn plan(&self, o: &Observation, before: &[Planned]) -> Planned;

    /// How its failure is handled.
    fn kind(&self) -> Kind;

    /// Its failpoints.
    fn points(&self) -> Points {
        Points::default()
    }

    /// The change itself.
    fn change(&self, x: &mut Exec<'_>) -> Result<Changed>;

    /// Its read-back check after the change was marked done.
    fn check(&self, _x: &mut Exec<'_>, _written: Option<&[u8]>) -> Result<()> {
        Ok(())
    }

    /// Whether a change that was started but not marked done took effect
    /// (the crash came between the change and the mark), from a fresh observation.
    fn took_effect(&self, o: &Observation) -> bool;

    /// Puts back what this run found (rollback).
    fn revert(&self, x: &mut Exec<'_>) -> Result<()>;

    /// Puts back what a finished run replaced; true when something was changed.
    fn undo(&self, u: &mut Undo<'_>) -> Result<bool>;
}
