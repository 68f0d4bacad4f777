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

/// Whether the Mac runs recoveryOS or a normal boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootMode {
    /// recoveryOS: the Data volume mounts under `/Volumes/<Name>` after unlock.
    Recovery,
    /// Normal boot: the Data volume is `/System/Volumes/Data`.
    Normal,
}

/// An APFS volume, with the fields `diskutil apfs list -plist` reports.
#[derive(Clone, Debug, Serialize)]
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
pub struct Container {
    /// `ContainerReference`, e.g. `disk3`.
    pub reference: String,
    /// `APFSContainerUUID`.
    pub uuid: String,
    /// Its volumes.
    pub volumes: Vec<Volume>,
}

/// A crypto user of a volume (`diskutil apfs listCryptoUsers`).
#[derive(Clone, Debug, Serialize)]
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

/// A user as the Preboot volume lists it before any unlock.
#[derive(Clone, Debug, Serialize)]
pub struct PrebootUser {
    /// Short name.
    pub name: String,
    /// Full name.
    pub real_name: String,
    /// GeneratedUID (= crypto-user UUID).
    pub uuid: String,
}

/// What one FileVault attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attempt {
    /// The passphrase unwraps the crypto user's key.
    Accepted,
    /// The passphrase is wrong (one attempt spent).
    Rejected,
    /// The Secure Enclave refuses attempts for now; nothing was tried.
    Throttled,
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

    /// The users the Preboot volume lists for a Data volume's group, when readable.
    ///
    /// # Errors
    /// The list exists but is malformed.
    fn preboot_users(&self, vol: &Volume) -> Result<Option<Vec<PrebootUser>>>;

    /// Unlocks (and mounts) a locked volume with one crypto user's passphrase.
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

    /// Re-wraps the crypto user's key under `new`. `old` must be its current passphrase.
    ///
    /// # Errors
    /// `old` is not accepted (`AuthFailed`), throttled (`Refused`), or the change failed.
    fn change_passphrase(
        &mut self,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
    ) -> Result<()>;

    /// Refreshes the Preboot volume's user list for a Data volume.
    ///
    /// # Errors
    /// The update failed.
    fn update_preboot(&mut self, vol: &Volume) -> Result<()>;

    /// Whether the Preboot record of a crypto user matches the volume's keybag,
    /// when the platform can tell (`None` when it cannot).
    ///
    /// # Errors
    /// A record exists but is malformed.
    fn preboot_current(&self, vol: &Volume, user: &str) -> Result<Option<bool>>;

    /// The folder holding the volume's files (its mount point), when readable.
    ///
    /// # Errors
    /// The volume is locked or not mounted.
    fn files(&self, vol: &Volume) -> Result<PathBuf>;
}
