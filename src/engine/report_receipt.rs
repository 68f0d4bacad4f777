//! The receipt a run leaves on the Data volume, and the two documents that
//! read receipts in a normal boot: `fvsync receipt` ([`ReceiptReport`]) and
//! the fleet check ([`FleetReport`]). Their JSON Schemas are generated from
//! these types into docs/schema/ (`receipt-file.json`, `receipt.json`,
//! `fleet.json`; `make schemas`). docs/mdm.md describes them.
//!
//! No field can hold a password, hash, salt or key: every string is a name
//! the record already shows (short name, device), a time, a step, or a fixed
//! sentence fvsync wrote.

use serde::{Deserialize, Serialize};

use crate::engine::account::{AccountSource, SourceCode};
use crate::engine::journal::RunId;
use crate::engine::step::Step;

/// The receipt format's version.
pub const RECEIPT_VERSION: u32 = 1;

/// How a run that changed something ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    /// Every step done and verified.
    Done,
    /// Stopped and put back as it was (exit 6).
    RolledBack,
    /// Stopped mid-way: the next run finishes it (exit 7).
    Incomplete,
    /// A reconcile put back by `undo`.
    Undone,
}

impl RunResult {
    /// The word (as in the JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Done => "done",
            RunResult::RolledBack => "rolled-back",
            RunResult::Incomplete => "incomplete",
            RunResult::Undone => "undone",
        }
    }

    /// Whether the Mac still needs fvsync run on it after this result.
    pub fn needs_attention(self) -> bool {
        matches!(self, RunResult::RolledBack | RunResult::Incomplete)
    }
}

/// A step the run left as it was, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct LeftStep {
    /// The step.
    pub step: Step,
    /// Why, in words.
    pub why: String,
}

/// FileVault attempts the run spent (numbers only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct AttemptCount {
    /// Passphrases presented that were not yet proven.
    pub used: u32,
    /// Of those, rejected.
    pub failed: u32,
}

/// A run's receipt: `private/var/log/fvsync/<user>-<run id>.receipt.json`
/// on the Data volume (root's, 0600, in a 0700 folder).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Receipt {
    /// Always [`RECEIPT_VERSION`].
    pub version: u32,
    /// The fvsync version that wrote it.
    pub tool_version: String,
    /// The run's id (`YYYYMMDDTHHMMSSZ-PID`, UTC start time and process id).
    #[cfg_attr(
        feature = "schema",
        schemars(with = "String", pattern(r"^\d{8}T\d{6}Z-\d{1,11}$"))
    )]
    pub run_id: RunId,
    /// The command (`reconcile` or `undo`).
    pub command: String,
    /// The user's short name.
    pub user: String,
    /// The Data volume's device (for messages; devices are renumbered at boot).
    pub volume: String,
    /// When the run started (UTC, RFC 3339).
    pub started: String,
    /// When it ended (UTC, RFC 3339).
    pub finished: String,
    /// How it ended.
    pub result: RunResult,
    /// The steps it changed (for `undone`: put back).
    pub changed: Vec<Step>,
    /// The steps it left as they were, with why.
    pub left: Vec<LeftStep>,
    /// FileVault attempts it spent.
    pub filevault_attempts: AttemptCount,
    /// Whether the Personal Recovery Key was used.
    pub recovery_key_used: bool,
    /// What the user will be asked at the first login, in words.
    pub first_login: Vec<String>,
    /// Where the account's password comes from (see `account`).
    pub account_sources: Vec<AccountSource>,
}

/// `fvsync receipt`: the latest receipt on the volume.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct ReceiptReport {
    /// Always [`crate::engine::report::VERSION`].
    pub version: u32,
    /// What fvsync looked at ("this Mac", "simulated Mac at ...").
    pub source: String,
    /// The folder the receipts are in.
    pub folder: String,
    /// The latest readable receipt (by run id), none when there is none.
    pub receipt: Option<Receipt>,
    /// Receipts found (readable or not).
    pub found: usize,
    /// Receipts skipped, and why (never their contents).
    pub warnings: Vec<String>,
}

/// What the fleet check makes of a login keychain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum KeychainKind {
    /// DbBlob 0x100 (the macOS 10.0 layout).
    Legacy,
    /// DbBlob 0x200 (with partition IDs).
    Partition,
    /// Another DbBlob version.
    Other,
    /// No login keychain.
    None,
    /// There is one, but it could not be read or parsed (see the warnings).
    Unreadable,
}

/// What the fleet check makes of the login hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum LoginHash {
    /// `SALTED-SHA512-PBKDF2` and the SRP verifier.
    WithSrp,
    /// `SALTED-SHA512-PBKDF2` without the SRP verifier.
    NoSrp,
    /// No `SALTED-SHA512-PBKDF2` entry (none at all, or another scheme only).
    NoSalted,
    /// ShadowHashData present but unreadable.
    Unreadable,
}

/// Why the fleet check points at a user (stable codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FleetFlag {
    /// A SecureToken user whose record has no SRP verifier: its password was
    /// set by something that wrote only the login hash (fvsync writes both).
    NoSrp,
    /// A SecureToken user whose record has no readable login hash.
    NoLoginHash,
    /// The last fvsync run for this user stopped mid-way: run it again.
    LastRunIncomplete,
    /// The last fvsync run for this user was rolled back: nothing changed.
    LastRunRolledBack,
    /// A DbBlob 0x100 login keychain (the legacy layout): fvsync re-keys it,
    /// but a `diagnose` with the passwords is worth running first.
    LegacyKeychain,
    /// The Preboot list is out of date for this user (set by the command
    /// when it can read the Preboot volume).
    PrebootStale,
}

/// One user of the fleet check.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct FleetUser {
    /// Short name.
    pub user: String,
    /// uid.
    pub uid: u32,
    /// `;SecureToken;` in `authentication_authority` (a FileVault user).
    pub secure_token: bool,
    /// The login hash.
    pub login_hash: LoginHash,
    /// The login keychain's layout.
    pub keychain: KeychainKind,
    /// A macOS 26 SystemKeys entropy exists for the keychain (null: no keychain).
    pub system_keys_entropy: Option<bool>,
    /// The Preboot list is current for this user (null: not checked here;
    /// the command fills it from the platform).
    pub preboot_current: Option<bool>,
    /// Where the account's password comes from (codes only).
    pub account_sources: Vec<SourceCode>,
    /// The result of this user's latest receipt.
    pub last_result: Option<RunResult>,
    /// Its run id.
    pub last_run_id: Option<String>,
    /// Why this user may need a reconcile.
    pub flags: Vec<FleetFlag>,
}

impl FleetUser {
    /// Records what the Preboot volume says (`None`: could not be told).
    pub fn set_preboot(&mut self, current: Option<bool>) {
        self.preboot_current = current;
        if current == Some(false) && !self.flags.contains(&FleetFlag::PrebootStale) {
            self.flags.push(FleetFlag::PrebootStale);
            self.flags.sort();
        }
    }
}

/// The fleet check: every user with uid 500 and above, read-only, with no
/// password.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct FleetReport {
    /// Always [`crate::engine::report::VERSION`].
    pub version: u32,
    /// What fvsync looked at.
    pub source: String,
    /// The users.
    pub users: Vec<FleetUser>,
    /// True when any user has a flag: the Mac needs someone's attention.
    pub needs_attention: bool,
    /// What could not be read, and why (never contents).
    pub warnings: Vec<String>,
}

impl FleetReport {
    /// Records what the Preboot volume says for `user` and updates
    /// [`FleetReport::needs_attention`].
    pub fn set_preboot(&mut self, user: &str, current: Option<bool>) {
        for u in self.users.iter_mut().filter(|u| u.user == user) {
            u.set_preboot(current);
        }
        self.needs_attention = self.users.iter().any(|u| !u.flags.is_empty());
    }
}
