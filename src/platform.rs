//! The platform boundary: FileVault and volume operations. Two implementations:
//! the simulated Mac ([`crate::sim::SimMac`]) and, on a real Mac, diskutil.
//! Everything above this trait (planning, records, keychain, reporting) is
//! shared by both.
//!
//! Implementations never retry a passphrase and never try one the caller did
//! not ask for: the attempt economy is decided above, in [`crate::filevault`].

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::secret::Password;

/// The Personal Recovery Key's crypto-user UUID, the same on every Mac
/// (`diskutil apfs listCryptoUsers`; jtsylve.blog "APFS Keybags").
pub const PERSONAL_RECOVERY_UUID: &str = "EBC6C064-0000-11AA-AA11-00306543ECAC";

/// Whether the Mac runs recoveryOS or a normal boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    /// recoveryOS: the Data volume mounts under `/Volumes/<Name>` after unlock.
    Recovery,
    /// Normal boot: the Data volume is `/System/Volumes/Data`.
    Normal,
}

/// An APFS volume, with the fields `diskutil apfs list -plist` reports.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Volume {
    /// e.g. `disk3s5`.
    pub device: String,
    /// `APFSVolumeUUID`.
    pub uuid: String,
    /// `Name`.
    pub name: String,
    /// `Roles` (`System`, `Data`, `Preboot`, ...).
    pub roles: Vec<String>,
    /// `Encryption`.
    pub encryption: bool,
    /// `FileVault`.
    pub filevault: bool,
    /// `Locked`, as of now (after any unlock this run made).
    pub locked: bool,
    /// The volume group's `APFSVolumeGroupUUID`, when it belongs to one.
    pub group_uuid: Option<String>,
    /// Where its files are when mounted, as the Mac would show it.
    pub mount_point: Option<String>,
    /// The container's reference, e.g. `disk3`.
    pub container: String,
}

impl Volume {
    /// True when the volume has role `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// An APFS container.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Container {
    /// `ContainerReference`, e.g. `disk3`.
    pub reference: String,
    /// `APFSContainerUUID`.
    pub uuid: String,
    /// Its volumes.
    pub volumes: Vec<Volume>,
    /// On the Mac's internal storage (`diskutil info -plist` of its physical
    /// store: `Internal`); `None` when not known.
    pub internal: Option<bool>,
}

/// A crypto user of a volume (`diskutil apfs listCryptoUsers`).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CryptoUser {
    /// `APFSCryptoUserUUID`: a local user's GeneratedUID, or a fixed recovery UUID.
    pub uuid: String,
    /// `APFSCryptoUserType`, e.g. `LocalOpenDirectory`, `PersonalRecovery`.
    pub kind: String,
    /// `VolumeOwner`.
    pub volume_owner: bool,
    /// The passphrase hint, when one is set.
    pub hint: Option<String>,
}

/// What one FileVault attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Attempt {
    /// The passphrase unwraps the crypto user's key.
    Accepted,
    /// The passphrase is wrong (one attempt spent).
    Rejected,
    /// The Secure Enclave refuses attempts for now; nothing was tried.
    Throttled,
}

/// The Preboot volume of a Data volume's container, readable at `path`.
/// Returned by [`Platform::preboot_mount`]; give it back to
/// [`Platform::preboot_release`], which unmounts it when fvsync mounted it.
#[derive(Clone, Debug)]
pub struct PrebootMount {
    /// The Preboot volume (e.g. `disk3s2`).
    pub device: String,
    /// Where its files are.
    pub path: PathBuf,
    /// fvsync mounted it (read-only) for this run, and unmounts it after.
    pub mounted_by_us: bool,
}

/// What the rehearsal of a passphrase change on a throwaway volume found
/// (docs/diskutil.md). The user's volume is changed only after `Passed`, or
/// after the technician confirmed an `Unavailable` one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum RehearsalOutcome {
    /// Not needed: this platform has no framing question (the simulated Mac).
    NotNeeded,
    /// A framing passed every check; the user's volume will use it.
    Passed {
        /// The framing's name (`stdin-lines`, `pty-prompts`).
        framing: String,
        /// Taken from this Recovery session's earlier rehearsal.
        cached: bool,
    },
    /// The rehearsal could not run (no hdiutil, no memory for a RAM disk).
    Unavailable {
        /// Why, in plain words.
        why: String,
    },
    /// It ran and no framing passed: nothing may be changed.
    Failed {
        /// Why, in plain words.
        why: String,
    },
}

/// A rehearsal's outcome and what it did, as lines with no secret in them.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Rehearsal {
    /// The verdict (`outcome` and its fields, flattened).
    #[serde(flatten)]
    pub outcome: RehearsalOutcome,
    /// The commands run and what each showed.
    pub transcript: Vec<String>,
}

/// The system fvsync runs on, for reports and the rehearsal cache.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct SystemInfo {
    /// e.g. `macOS 15.1 (24B83)`, when known.
    pub os: Option<String>,
    /// The machine type, e.g. `Mac14,2`, when known.
    pub machine: Option<String>,
    /// What identifies the diskutil binary (its size and modification time).
    pub diskutil: Option<String>,
}

/// FileVault and volume operations. See the module docs.
pub trait Platform {
    /// One line saying what this is ("simulated Mac at ...", "this Mac").
    fn description(&self) -> String;

    /// recoveryOS or normal boot.
    ///
    /// # Errors
    /// The platform cannot tell (callers that change the Mac then refuse).
    fn boot_mode(&self) -> Result<BootMode>;

    /// Containers and their volumes.
    ///
    /// # Errors
    /// The volume list cannot be read or parsed.
    fn containers(&self) -> Result<Vec<Container>>;

    /// The crypto users of a volume (empty when it has none).
    ///
    /// # Errors
    /// The list cannot be read or parsed.
    fn crypto_users(&self, vol: &Volume) -> Result<Vec<CryptoUser>>;

    /// Unlocks (and mounts) a locked volume with one crypto user's passphrase
    /// (or, with the Personal Recovery user's UUID, the recovery key).
    /// One attempt; never retried.
    ///
    /// # Errors
    /// The operation itself failed (not a wrong passphrase: that is `Rejected`).
    fn unlock(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt>;

    /// Checks a passphrase without changing the lock state (`-verify`). One attempt.
    ///
    /// # Errors
    /// The operation itself failed.
    fn verify(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt>;

    /// Locks a volume this run unlocked.
    ///
    /// # Errors
    /// The volume cannot be locked.
    fn lock(&mut self, vol: &Volume) -> Result<()>;

    /// Re-wraps the crypto user's key under `new`; `old` must be its current
    /// passphrase. `Accepted`: changed. `Rejected`: `old` was refused (one
    /// attempt spent, nothing changed). `Throttled`: nothing was tried.
    ///
    /// # Errors
    /// The change failed otherwise, or its outcome is unknown (a timeout, an
    /// answer not understood): the caller must treat FileVault as taking OLD or NEW.
    fn change_passphrase(
        &mut self,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
    ) -> Result<Attempt>;

    /// Sets (or, with `None`, clears) the crypto user's passphrase hint.
    ///
    /// # Errors
    /// The hint cannot be set.
    fn set_hint(&mut self, vol: &Volume, user: &str, hint: Option<&str>) -> Result<()>;

    /// Refreshes the Preboot volume's user lists for a Data volume (`diskutil
    /// apfs updatePreboot`: names, full names, hints and pictures from the
    /// records; never a passphrase).
    ///
    /// # Errors
    /// The update failed.
    fn update_preboot(&mut self, vol: &Volume) -> Result<()>;

    /// The folder holding the volume's files (its mount point), when readable.
    ///
    /// # Errors
    /// The volume is locked or not mounted.
    fn files(&self, vol: &Volume) -> Result<PathBuf>;

    /// Whether the volume is mounted with file ownership honoured (`diskutil
    /// info`'s `GlobalPermissionsEnabled`). With ownership ignored every file
    /// reports uid 99 and no owner check means anything.
    ///
    /// # Errors
    /// The volume's information cannot be read.
    fn ownership_enabled(&self, vol: &Volume) -> Result<bool>;

    /// Makes the Preboot volume of `vol`'s container readable, mounting it
    /// read-only when it is not mounted (`None`: the container has none). The
    /// engine reads its user lists itself
    /// ([`crate::engine::target::preboot_users`]).
    ///
    /// # Errors
    /// It cannot be found or mounted.
    fn preboot_mount(&mut self, vol: &Volume) -> Result<Option<PrebootMount>>;

    /// Puts the Preboot volume back as it was (unmounts it if fvsync mounted it).
    fn preboot_release(&mut self, mount: PrebootMount);

    /// Proves, on a throwaway volume, how a passphrase change must be passed to
    /// this platform (once per Recovery session; later calls return the cached
    /// result). [`Platform::change_passphrase`] refuses until a rehearsal passed
    /// or [`Platform::accept_unrehearsed`] was called.
    ///
    /// # Errors
    /// The rehearsal failed in a way that is not a verdict (an I/O error).
    fn rehearse(&mut self) -> Result<Rehearsal>;

    /// The technician confirmed going ahead without a rehearsal (it could not
    /// run), with the recovery key at hand: the default framing is used.
    fn accept_unrehearsed(&mut self);

    /// The system, for reports and the rehearsal cache.
    fn system(&self) -> SystemInfo;

    /// The lowest iteration counts fvsync may give a new login hash and SRP
    /// verifier (the record's own counts are kept when higher). A real Mac:
    /// the counts macOS calibrated on a 2026 Apple-silicon Mac; a simulated Mac
    /// declares its own (fast test Macs).
    fn iteration_floors(&self) -> (u32, u32) {
        (
            crate::formats::shadowhash::MIN_SALTED_ITERATIONS,
            crate::formats::shadowhash::MIN_SRP_ITERATIONS,
        )
    }

    /// What identifies this Mac's Recovery session for `vol` (the attempt
    /// count kept across runs): the volume's UUID on a real Mac.
    fn session_key(&self, vol: &Volume) -> String {
        vol.uuid.clone()
    }

    /// A simulated Mac created without root: every file is owned by its
    /// creator (this uid), who stands for every owner. `None` everywhere else.
    fn simulated_owner(&self) -> Option<u32> {
        None
    }
}
