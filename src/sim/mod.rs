//! The simulated Mac: a folder that models one Mac's APFS containers, volume
//! keybags, Preboot user list and Data-volume files, with Apple's formats and
//! crypto, so the Recovery procedure can be rehearsed and tested on Linux.
//! The format is documented in `docs/simulated-mac.md`.
//!
//! Files stay plain files; the lock is enforced here: a locked volume's folder is
//! not handed out until a passphrase unwraps a crypto user's key. Unlocks last for
//! the process (like a Recovery session that ends in a restart); failed attempts
//! are counted on disk per volume, as the Secure Enclave counts them (a success
//! does not reset the count: the model never hands attempts back).

pub mod scenarios;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use plist::Data;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::formats::plist_safe;
use crate::formats::preboot::{
    self, AllUsersEntry, CryptoUserEntry, ALL_USERS_INFO, CRYPTO_USER_INFO, LOCAL_USER_TYPE,
};
use crate::fsio;
use crate::platform::{
    Attempt, BootMode, Container, CryptoUser, Platform, PrebootMount, Rehearsal, RehearsalOutcome,
    SystemInfo, Volume,
};
use crate::secret::Password;
use crate::text::quote_path;

/// The description file at the top of a simulated Mac.
pub const MAC_FILE: &str = "SimulatedMac.plist";
/// Folder of volume keybags, one `<APFSVolumeUUID>.plist` each.
pub const KEYBAGS_DIR: &str = "Keybags";
/// Folder of volume contents, one `<DeviceIdentifier>/` each.
pub const VOLUMES_DIR: &str = "Volumes";
/// Failed attempts allowed when `SecureEnclave.plist` does not say (Recovery's 10).
pub const DEFAULT_ATTEMPT_LIMIT: u64 = 10;
/// Format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// `SimulatedMac.plist`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MacFile {
    /// Always 1.
    pub format_version: u64,
    /// The scenario it was created from.
    pub scenario: String,
    /// `recovery` or `normal`.
    pub boot_mode: String,
    /// Containers, in `diskutil apfs list -plist` shape.
    pub containers: Vec<ContainerDesc>,
    /// The lowest iteration counts fvsync may give a new hash on this Mac
    /// (`sim create --iterations N` declares N, so test Macs stay fast).
    #[serde(
        rename = "IterationFloor",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub iteration_floor: Option<u32>,
    /// The uid that created this Mac when it was not root (it could not give
    /// the users' files to their owners, so it stands for every owner).
    #[serde(
        rename = "CreatorUID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub creator_uid: Option<u32>,
}

/// A container as `diskutil apfs list -plist` reports it (plus its volume groups).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerDesc {
    /// `APFSContainerUUID`.
    #[serde(rename = "APFSContainerUUID")]
    pub uuid: String,
    /// `ContainerReference`.
    #[serde(rename = "ContainerReference")]
    pub reference: String,
    /// `DesignatedPhysicalStore`.
    #[serde(rename = "DesignatedPhysicalStore")]
    pub physical_store: String,
    /// `CapacityCeiling`.
    #[serde(rename = "CapacityCeiling")]
    pub capacity: u64,
    /// `CapacityFree`.
    #[serde(rename = "CapacityFree")]
    pub free: u64,
    /// `Fusion`.
    #[serde(rename = "Fusion")]
    pub fusion: bool,
    /// `Volumes`.
    #[serde(rename = "Volumes")]
    pub volumes: Vec<VolumeDesc>,
    /// Volume groups, as `diskutil apfs listVolumeGroups -plist` reports them.
    #[serde(rename = "VolumeGroups", default)]
    pub groups: Vec<GroupDesc>,
}

/// A volume as `diskutil apfs list -plist` reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VolumeDesc {
    /// `APFSVolumeUUID`.
    #[serde(rename = "APFSVolumeUUID")]
    pub uuid: String,
    /// `DeviceIdentifier`.
    #[serde(rename = "DeviceIdentifier")]
    pub device: String,
    /// `Name`.
    #[serde(rename = "Name")]
    pub name: String,
    /// `Roles`.
    #[serde(rename = "Roles")]
    pub roles: Vec<String>,
    /// `Encryption`.
    #[serde(rename = "Encryption")]
    pub encryption: bool,
    /// `FileVault`.
    #[serde(rename = "FileVault")]
    pub filevault: bool,
    /// `Locked` at startup.
    #[serde(rename = "Locked")]
    pub locked: bool,
    /// `CryptoMigrationOn`.
    #[serde(rename = "CryptoMigrationOn", default)]
    pub crypto_migration: bool,
    /// `CapacityInUse`.
    #[serde(rename = "CapacityInUse", default)]
    pub in_use: u64,
    /// `GlobalPermissionsEnabled` (`diskutil info`): file ownership is
    /// honoured. False models a volume mounted with ownership ignored.
    #[serde(rename = "GlobalPermissionsEnabled", default = "yes")]
    pub ownership: bool,
}

fn yes() -> bool {
    true
}

/// A volume group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupDesc {
    /// `APFSVolumeGroupUUID`.
    #[serde(rename = "APFSVolumeGroupUUID")]
    pub uuid: String,
    /// Members.
    #[serde(rename = "Volumes")]
    pub volumes: Vec<GroupMember>,
}

/// A volume group member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupMember {
    /// `DeviceIdentifier`.
    #[serde(rename = "DeviceIdentifier")]
    pub device: String,
    /// `Role`.
    #[serde(rename = "Role")]
    pub role: String,
}

/// A volume keybag: the volume key wrapped by the KEK, and one wrapped copy of
/// the KEK per crypto user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Keybag {
    /// Always 1.
    pub format_version: u64,
    /// The volume this keybag belongs to.
    #[serde(rename = "APFSVolumeUUID")]
    pub volume_uuid: String,
    /// The volume encryption key (VEK), AES-key-wrapped with the KEK (40 bytes).
    #[serde(rename = "WrappedVEK")]
    pub wrapped_vek: Data,
    /// One entry per crypto user.
    pub crypto_users: Vec<KeybagUser>,
}

/// One crypto user's unlock record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeybagUser {
    /// `APFSCryptoUserUUID`.
    #[serde(rename = "APFSCryptoUserUUID")]
    pub uuid: String,
    /// `APFSCryptoUserType`.
    #[serde(rename = "APFSCryptoUserType")]
    pub kind: String,
    /// `VolumeOwner`.
    #[serde(rename = "VolumeOwner")]
    pub volume_owner: bool,
    /// Passphrase hint (keybag tag 4).
    #[serde(
        rename = "PassphraseHint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hint: Option<String>,
    /// PBKDF2-HMAC-SHA256 salt (16 bytes).
    #[serde(rename = "KEKSalt")]
    pub salt: Data,
    /// PBKDF2 iterations.
    #[serde(rename = "KEKIterations")]
    pub iterations: u64,
    /// The KEK, AES-key-wrapped with the passphrase-derived key (40 bytes; 24 for CoreStorage).
    #[serde(rename = "WrappedKEK")]
    pub wrapped_kek: Data,
    /// Flags: 0 = AES-256 wrap; 2 = CoreStorage (AES-128) wrap.
    #[serde(rename = "KEKFlags", default)]
    pub flags: u64,
    /// Bumped at every passphrase change (a detail of the model: Apple's
    /// Preboot files carry no such number).
    #[serde(rename = "Generation", default)]
    pub generation: u64,
}

/// The Secure Enclave's state: failed-attempt counters per volume, keyed by
/// `APFSVolumeUUID` in `SecureEnclave.plist`. It models hardware, not a file on
/// the Mac's disks: a dry run may change it (a rejected attempt is spent).
pub const ENCLAVE_FILE: &str = "SecureEnclave.plist";

/// The failed-attempt counter of one volume.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttemptCounter {
    /// Failed attempts since the last success.
    pub failed_attempts: u64,
    /// Failed attempts allowed before unlocking is disabled.
    pub attempt_limit: u64,
}

/// A simulated Mac opened from its folder.
pub struct SimMac {
    root: PathBuf,
    mac: MacFile,
    unlocked: HashSet<String>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::malformed(path, what)
}

/// Checks an identifier used as a folder name (`disk3s5`, a UUID).
fn check_device(path: &Path, dev: &str) -> Result<()> {
    let ok = dev.starts_with("disk")
        && dev.len() <= 32
        && dev[4..].chars().all(|c| c.is_ascii_digit() || c == 's')
        && dev[4..].starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(bad(
            path,
            format!("'{}' is not a device identifier", crate::text::escape(dev)),
        ))
    }
}

fn check_uuid(path: &Path, uuid: &str) -> Result<()> {
    let ok = uuid.len() == 36
        && uuid.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if ok {
        Ok(())
    } else {
        Err(bad(
            path,
            format!("'{}' is not a UUID", crate::text::escape(uuid)),
        ))
    }
}

impl SimMac {
    /// Opens a simulated Mac, checking its description file.
    ///
    /// # Errors
    /// The folder is missing (2), not a simulated Mac (2), or malformed (1).
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{} is not a folder", quote_path(root)),
            )
            .hint("create one with `fvsync sim create DIR --scenario NAME`"));
        }
        let path = root.join(MAC_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{} is not a simulated Mac (no {MAC_FILE})",
                    quote_path(root)
                ),
            )
            .hint("create one with `fvsync sim create DIR --scenario NAME`"));
        }
        let bytes = fsio::read_capped(&path)?;
        let mac: MacFile = plist_safe::from_bytes(&bytes).map_err(|e| bad(&path, e))?;
        if mac.format_version != FORMAT_VERSION {
            return Err(bad(
                &path,
                format!(
                    "FormatVersion {} (this fvsync reads {FORMAT_VERSION})",
                    mac.format_version
                ),
            ));
        }
        let mut seen = HashSet::new();
        for c in &mac.containers {
            check_device(&path, &c.reference)?;
            check_uuid(&path, &c.uuid)?;
            for v in &c.volumes {
                check_device(&path, &v.device)?;
                check_uuid(&path, &v.uuid)?;
                if !seen.insert(v.device.clone()) {
                    return Err(bad(&path, format!("device {} appears twice", v.device)));
                }
            }
            for g in &c.groups {
                check_uuid(&path, &g.uuid)?;
            }
        }
        if !matches!(mac.boot_mode.as_str(), "recovery" | "normal") {
            return Err(bad(&path, "BootMode must be `recovery` or `normal`"));
        }
        Ok(SimMac {
            root: root.to_path_buf(),
            mac,
            unlocked: HashSet::new(),
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The description file as read.
    pub fn mac(&self) -> &MacFile {
        &self.mac
    }

    /// Devices unlocked in this session (the emulated diskutil keeps them
    /// between its calls, as a real Mac does).
    pub fn unlocked_devices(&self) -> Vec<String> {
        let mut v: Vec<String> = self.unlocked.iter().cloned().collect();
        v.sort();
        v
    }

    /// Restores a session's unlocked devices.
    pub fn set_unlocked(&mut self, devices: impl IntoIterator<Item = String>) {
        self.unlocked = devices.into_iter().collect();
    }

    fn desc(&self, dev: &str) -> Result<(&ContainerDesc, &VolumeDesc)> {
        for c in &self.mac.containers {
            for v in &c.volumes {
                if v.device == dev {
                    return Ok((c, v));
                }
            }
        }
        Err(Error::new(
            ErrorKind::Usage,
            format!("no volume {} on this Mac", crate::text::escape(dev)),
        ))
    }

    /// Whether a volume is locked now: locked at rest, not unlocked in this
    /// session, and not the booted system's (in a normal boot the internal
    /// container's System and Data volumes are unlocked: the Mac started up
    /// from them).
    fn is_locked(&self, c: &ContainerDesc, v: &VolumeDesc) -> bool {
        let booted = self.mac.boot_mode == "normal"
            && self
                .mac
                .containers
                .first()
                .is_some_and(|first| first.reference == c.reference)
            && v.roles.iter().any(|r| r == "System" || r == "Data");
        v.locked && !self.unlocked.contains(&v.device) && !booted
    }

    fn keybag_path(&self, vol: &Volume) -> PathBuf {
        self.root
            .join(KEYBAGS_DIR)
            .join(format!("{}.plist", vol.uuid))
    }

    /// Reads a volume's keybag (`None` when it has none).
    ///
    /// # Errors
    /// Malformed or unreadable keybag.
    pub fn keybag(&self, vol: &Volume) -> Result<Option<Keybag>> {
        let path = self.keybag_path(vol);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let bytes = fsio::read_capped(&path)?;
        let kb: Keybag = plist_safe::from_bytes(&bytes).map_err(|e| bad(&path, e))?;
        if kb.format_version != FORMAT_VERSION {
            return Err(bad(&path, format!("FormatVersion {}", kb.format_version)));
        }
        if !kb.volume_uuid.eq_ignore_ascii_case(&vol.uuid) {
            return Err(bad(&path, "APFSVolumeUUID does not match the volume"));
        }
        for u in &kb.crypto_users {
            check_uuid(&path, &u.uuid)?;
            crate::crypto::check_iterations(u.iterations).map_err(|e| bad(&path, e))?;
            let (salt_len, wrapped_len) = if u.flags & 2 != 0 { (16, 24) } else { (16, 40) };
            if u.salt.as_ref().len() != salt_len || u.wrapped_kek.as_ref().len() != wrapped_len {
                return Err(bad(
                    &path,
                    format!(
                        "crypto user {}: salt or wrapped key of the wrong length",
                        u.uuid
                    ),
                ));
            }
        }
        if kb.wrapped_vek.as_ref().len() != 40 {
            return Err(bad(&path, "WrappedVEK is not 40 bytes"));
        }
        Ok(Some(kb))
    }

    fn save_keybag(&self, vol: &Volume, kb: &Keybag) -> Result<()> {
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, kb)
            .map_err(|e| Error::new(ErrorKind::Failure, format!("cannot encode a keybag: {e}")))?;
        fsio::write_atomic(&self.keybag_path(vol), &out, fsio::Perms::PRIVATE)
    }

    /// Tries a passphrase against a crypto user's record: one attempt, counted.
    fn attempt(
        &self,
        vol: &Volume,
        user: &str,
        pw: &Password,
    ) -> Result<(Attempt, Option<Keybag>)> {
        let Some(kb) = self.keybag(vol)? else {
            return Err(Error::new(
                ErrorKind::Refused,
                format!("volume {} has no crypto users", vol.device),
            ));
        };
        let mut enclave = self.enclave()?;
        let counter = enclave.entry(vol.uuid.clone()).or_insert(AttemptCounter {
            failed_attempts: 0,
            attempt_limit: DEFAULT_ATTEMPT_LIMIT,
        });
        if counter.failed_attempts >= counter.attempt_limit {
            return Ok((Attempt::Throttled, None));
        }
        let Some(entry) = kb
            .crypto_users
            .iter()
            .find(|u| u.uuid.eq_ignore_ascii_case(user))
        else {
            return Err(Error::new(
                ErrorKind::Refused,
                format!("{user} is not a crypto user of volume {}", vol.device),
            ));
        };
        let ok = unwrap_entry(entry, &kb, pw).is_some();
        if ok {
            // Conservative model: a success does not give failed attempts back,
            // so a scenario's limit stays as tight as it was set, and checking a
            // right password writes nothing (dry runs stay byte-identical).
            Ok((Attempt::Accepted, Some(kb)))
        } else {
            counter.failed_attempts += 1;
            self.save_enclave(&enclave)?;
            Ok((Attempt::Rejected, None))
        }
    }

    /// The Secure Enclave's counters (empty when the file is absent).
    ///
    /// # Errors
    /// The file is malformed.
    pub fn enclave(&self) -> Result<std::collections::BTreeMap<String, AttemptCounter>> {
        let path = self.root.join(ENCLAVE_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(Default::default());
        }
        let bytes = fsio::read_capped(&path)?;
        plist_safe::from_bytes(&bytes).map_err(|e| bad(&path, e))
    }

    fn save_enclave(&self, e: &std::collections::BTreeMap<String, AttemptCounter>) -> Result<()> {
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, e).map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("cannot encode the enclave state: {e}"),
            )
        })?;
        fsio::write_atomic(&self.root.join(ENCLAVE_FILE), &out, fsio::Perms::PRIVATE)
    }

    /// The folder of a Data volume's Preboot lists: `Volumes/<Preboot
    /// device>/<VolumeGroupUUID>` (the Data volume's own UUID when it is in
    /// no group), `None` when its container has no Preboot volume.
    pub fn preboot_folder(&self, vol: &Volume) -> Option<PathBuf> {
        let c = self
            .mac
            .containers
            .iter()
            .find(|c| c.reference == vol.container)?;
        let preboot = c
            .volumes
            .iter()
            .find(|v| v.roles.iter().any(|r| r == "Preboot"))?;
        Some(
            self.root.join(VOLUMES_DIR).join(&preboot.device).join(
                vol.group_uuid
                    .as_deref()
                    .unwrap_or(&vol.uuid)
                    .to_ascii_uppercase(),
            ),
        )
    }
}

/// Writes a Data volume's Preboot lists (`AllUsersInfo.plist` and
/// `CryptoUserInfo.plist` in `folder`) from its records and keybag, as
/// `diskutil apfs updatePreboot` does: one entry per local crypto user that
/// has a record, with the record's short name, full name, hint, uid, home,
/// admin membership and authentication authorities (Apple's key names only).
///
/// # Errors
/// A record cannot be read, or a file cannot be written.
pub fn write_preboot_lists(data: &Path, folder: &Path, kb: &Keybag) -> Result<()> {
    let admins = crate::formats::record::admin_members(data);
    let mut all = Vec::new();
    let mut crypto = Vec::new();
    let users = data.join(crate::formats::record::USERS_DIR);
    let mut records = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&users) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "plist") {
                records.push(p);
            }
        }
    }
    records.sort();
    for u in kb
        .crypto_users
        .iter()
        .filter(|u| u.kind == "LocalOpenDirectory")
    {
        let uuid = u.uuid.to_ascii_uppercase();
        let rec = records.iter().find_map(|p| {
            let bytes = fsio::read_capped(p).ok()?;
            let rec = crate::formats::record::UserRecord::parse(&bytes).ok()?;
            rec.generated_uid()
                .is_some_and(|g| g.eq_ignore_ascii_case(&uuid))
                .then_some(rec)
        });
        let Some(rec) = rec else {
            continue;
        };
        let name = rec.name().to_string();
        let hint = rec.first_string("hint").filter(|h| !h.is_empty());
        all.push(AllUsersEntry {
            short_name: name.clone(),
            generated_uid: uuid.clone(),
            real_name: rec.real_name().map(str::to_string),
            uid: rec.uid(),
            home: rec.first_string("home").map(str::to_string),
            admin: Some(admins.contains(&name)),
            authentication_authority: rec
                .strings("authentication_authority")
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
        crypto.push(CryptoUserEntry {
            uuid,
            short_name: name,
            full_name: rec.real_name().map(str::to_string),
            hint: hint.map(str::to_string),
            user_type: LOCAL_USER_TYPE.into(),
        });
    }
    write_lists(folder, &all, &crypto)
}

/// Writes both Preboot lists in `folder` (0644, as the Preboot volume has them).
///
/// # Errors
/// They cannot be encoded or written.
pub fn write_lists(folder: &Path, all: &[AllUsersEntry], crypto: &[CryptoUserEntry]) -> Result<()> {
    let enc = |e: plist::Error| {
        Error::new(
            ErrorKind::Failure,
            format!("cannot encode a Preboot list: {e}"),
        )
    };
    let a = preboot::write_all_users_info(all).map_err(enc)?;
    let c = preboot::write_crypto_user_info(crypto).map_err(enc)?;
    let perms = fsio::Perms {
        mode: 0o644,
        owner: None,
    };
    for (rel, bytes) in [(ALL_USERS_INFO, a), (CRYPTO_USER_INFO, c)] {
        let path = folder.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, &e))?;
        }
        fsio::write_atomic(&path, &bytes, perms)?;
    }
    Ok(())
}

/// Unwraps the KEK with the passphrase, then the VEK with the KEK.
fn unwrap_entry(
    entry: &KeybagUser,
    kb: &Keybag,
    pw: &Password,
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let iterations = u32::try_from(entry.iterations).ok()?;
    let corestorage = entry.flags & 2 != 0;
    let kek = crate::crypto::apfs_unwrap_kek(
        pw.expose(),
        entry.salt.as_ref(),
        iterations,
        entry.wrapped_kek.as_ref(),
        corestorage,
    )
    .ok()?;
    let vek = crate::crypto::aes_unwrap(&kek, kb.wrapped_vek.as_ref()).ok()?;
    Some(vek)
}

impl Platform for SimMac {
    fn description(&self) -> String {
        format!(
            "simulated Mac at {} (scenario {})",
            quote_path(&self.root),
            crate::text::escape(&self.mac.scenario)
        )
    }

    fn boot_mode(&self) -> Result<BootMode> {
        Ok(if self.mac.boot_mode == "normal" {
            BootMode::Normal
        } else {
            BootMode::Recovery
        })
    }

    fn containers(&self) -> Result<Vec<Container>> {
        let mode = self.boot_mode().unwrap_or(BootMode::Recovery);
        Ok(self
            .mac
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| Container {
                // The first container models the internal disk, others external ones.
                internal: Some(i == 0),
                reference: c.reference.clone(),
                uuid: c.uuid.clone(),
                volumes: c
                    .volumes
                    .iter()
                    .map(|v| {
                        let locked = self.is_locked(c, v);
                        let group_uuid = c
                            .groups
                            .iter()
                            .find(|g| g.volumes.iter().any(|m| m.device == v.device))
                            .map(|g| g.uuid.clone());
                        let is = |r: &str| v.roles.iter().any(|x| x == r);
                        let mount_point = if locked || is("Preboot") || is("Recovery") || is("VM") {
                            None
                        } else {
                            Some(match (mode, is("System"), is("Data")) {
                                (BootMode::Normal, true, _)
                                    if c.reference == self.mac.containers[0].reference =>
                                {
                                    "/".to_string()
                                }
                                (BootMode::Normal, _, true)
                                    if c.reference == self.mac.containers[0].reference =>
                                {
                                    "/System/Volumes/Data".to_string()
                                }
                                _ => format!("/Volumes/{}", v.name),
                            })
                        };
                        Volume {
                            device: v.device.clone(),
                            uuid: v.uuid.clone(),
                            name: v.name.clone(),
                            roles: v.roles.clone(),
                            encryption: v.encryption,
                            filevault: v.filevault,
                            locked,
                            group_uuid,
                            mount_point,
                            container: c.reference.clone(),
                        }
                    })
                    .collect(),
            })
            .collect())
    }

    fn crypto_users(&self, vol: &Volume) -> Result<Vec<CryptoUser>> {
        Ok(self
            .keybag(vol)?
            .map(|kb| {
                kb.crypto_users
                    .into_iter()
                    .map(|u| CryptoUser {
                        uuid: u.uuid.to_ascii_uppercase(),
                        kind: u.kind,
                        volume_owner: u.volume_owner,
                        hint: u.hint,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn unlock(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        let (a, _) = self.attempt(vol, user, pw)?;
        if a == Attempt::Accepted {
            self.unlocked.insert(vol.device.clone());
        }
        Ok(a)
    }

    fn verify(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        Ok(self.attempt(vol, user, pw)?.0)
    }

    fn lock(&mut self, vol: &Volume) -> Result<()> {
        self.unlocked.remove(&vol.device);
        Ok(())
    }

    fn change_passphrase(
        &mut self,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
    ) -> Result<Attempt> {
        let (a, kb) = self.attempt(vol, user, old)?;
        let mut kb = match (a, kb) {
            (Attempt::Accepted, Some(kb)) => kb,
            (Attempt::Accepted, None) => {
                return Err(Error::new(ErrorKind::Failure, "the keybag vanished"))
            }
            (other, _) => return Ok(other),
        };
        let idx = kb
            .crypto_users
            .iter()
            .position(|u| u.uuid.eq_ignore_ascii_case(user))
            .ok_or_else(|| Error::new(ErrorKind::Refused, "not a crypto user"))?;
        let entry = &kb.crypto_users[idx];
        let corestorage = entry.flags & 2 != 0;
        let iterations = u32::try_from(entry.iterations)
            .map_err(|_| Error::new(ErrorKind::Failure, "iteration count out of range"))?;
        let kek = crate::crypto::apfs_unwrap_kek(
            old.expose(),
            entry.salt.as_ref(),
            iterations,
            entry.wrapped_kek.as_ref(),
            corestorage,
        )
        .map_err(|_| {
            Error::new(
                ErrorKind::AuthFailed,
                "FileVault did not accept the current passphrase",
            )
        })?;
        let salt: [u8; 16] = crate::crypto::random_bytes()
            .map_err(|e| Error::new(ErrorKind::Failure, format!("no randomness: {e}")))?;
        let wrapped =
            crate::crypto::apfs_wrap_kek(new.expose(), &salt, iterations, &kek, corestorage)
                .map_err(|e| Error::new(ErrorKind::Failure, format!("cannot wrap the key: {e}")))?;
        let entry = &mut kb.crypto_users[idx];
        entry.salt = Data::new(salt.to_vec());
        entry.wrapped_kek = Data::new(wrapped);
        entry.generation += 1;
        self.save_keybag(vol, &kb)?;
        Ok(Attempt::Accepted)
    }

    fn set_hint(&mut self, vol: &Volume, user: &str, hint: Option<&str>) -> Result<()> {
        let mut kb = self.keybag(vol)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Refused,
                format!("volume {} has no crypto users", vol.device),
            )
        })?;
        let entry = kb
            .crypto_users
            .iter_mut()
            .find(|u| u.uuid.eq_ignore_ascii_case(user))
            .ok_or_else(|| Error::new(ErrorKind::Refused, "not a crypto user"))?;
        entry.hint = hint.map(str::to_string);
        self.save_keybag(vol, &kb)
    }

    fn update_preboot(&mut self, vol: &Volume) -> Result<()> {
        let Some(folder) = self.preboot_folder(vol) else {
            return Ok(());
        };
        let Some(kb) = self.keybag(vol)? else {
            return Ok(());
        };
        let data = self.root.join(VOLUMES_DIR).join(&vol.device);
        write_preboot_lists(&data, &folder, &kb)
    }

    fn ownership_enabled(&self, vol: &Volume) -> Result<bool> {
        Ok(self.desc(&vol.device)?.1.ownership)
    }

    fn preboot_mount(&mut self, vol: &Volume) -> Result<Option<PrebootMount>> {
        let Some(c) = self
            .mac
            .containers
            .iter()
            .find(|c| c.reference == vol.container)
        else {
            return Ok(None);
        };
        let Some(pre) = c
            .volumes
            .iter()
            .find(|v| v.roles.iter().any(|r| r == "Preboot"))
        else {
            return Ok(None);
        };
        Ok(Some(PrebootMount {
            device: pre.device.clone(),
            path: self.root.join(VOLUMES_DIR).join(&pre.device),
            mounted_by_us: false,
        }))
    }

    fn preboot_release(&mut self, _mount: PrebootMount) {}

    fn rehearse(&mut self) -> Result<Rehearsal> {
        Ok(Rehearsal {
            outcome: RehearsalOutcome::NotNeeded,
            transcript: vec![
                "simulated Mac: passphrases are passed in memory, no framing to prove".into(),
            ],
        })
    }

    fn accept_unrehearsed(&mut self) {}

    fn iteration_floors(&self) -> (u32, u32) {
        match self.mac.iteration_floor {
            Some(n) => (n, n),
            None => (
                crate::formats::shadowhash::MIN_SALTED_ITERATIONS,
                crate::formats::shadowhash::MIN_SRP_ITERATIONS,
            ),
        }
    }

    fn session_key(&self, vol: &Volume) -> String {
        // Each simulated Mac is a Mac of its own.
        use sha2::Digest;
        let h = sha2::Sha256::digest(self.root.as_os_str().as_encoded_bytes());
        let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", vol.uuid)
    }

    fn simulated_owner(&self) -> Option<u32> {
        self.mac.creator_uid
    }

    fn system(&self) -> SystemInfo {
        SystemInfo {
            os: Some(format!(
                "simulated Mac (scenario {})",
                crate::text::escape(&self.mac.scenario)
            )),
            machine: None,
            diskutil: None,
        }
    }

    fn files(&self, vol: &Volume) -> Result<PathBuf> {
        let (c, d) = self.desc(&vol.device)?;
        if self.is_locked(c, d) {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "volume {} ({}) is locked",
                    vol.device,
                    crate::text::escape(&vol.name)
                ),
            )
            .hint("unlock it with a FileVault user's password first"));
        }
        let p = self.root.join(VOLUMES_DIR).join(&vol.device);
        if !p.is_dir() {
            return Err(bad(&p, "the volume's folder is missing"));
        }
        Ok(p)
    }
}
