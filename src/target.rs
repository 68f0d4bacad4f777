//! Finding the user and the Data volume a command works on, before any unlock:
//! from the Data volume's records when it is readable, else from the Preboot
//! user list (which names FileVault users only).

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::formats::record;
use crate::platform::{CryptoUser, Platform, Volume};
use crate::text::escape;

/// The user and volume a command works on.
#[derive(Clone, Debug)]
pub struct Target {
    /// The Data volume.
    pub vol: Volume,
    /// Short name.
    pub user: String,
    /// GeneratedUID, when known.
    pub uuid: Option<String>,
    /// The user's crypto-user entry on the volume, when it has one.
    pub crypto: Option<CryptoUser>,
    /// Short names of the volume's FileVault users (for hints).
    pub filevault_users: Vec<String>,
}

impl Target {
    /// True when the volume is FileVault-protected.
    pub fn filevault_on(&self) -> bool {
        self.vol.filevault || self.vol.encryption && self.vol.locked
    }
}

/// Data volumes, optionally narrowed by `--volume` (device or name).
///
/// # Errors
/// The volume list cannot be read, or `--volume` matches no Data volume.
pub fn data_volumes(p: &dyn Platform, volume: Option<&str>) -> Result<Vec<Volume>> {
    let all: Vec<Volume> = p
        .containers()?
        .into_iter()
        .flat_map(|c| c.volumes)
        .collect();
    let data: Vec<Volume> = all
        .iter()
        .filter(|v| v.has_role("Data"))
        .filter(|v| match volume {
            None => true,
            Some(sel) => {
                let sel = sel.trim_start_matches("/dev/");
                v.device == sel || v.name == sel || v.uuid.eq_ignore_ascii_case(sel)
            }
        })
        .cloned()
        .collect();
    if data.is_empty() {
        let msg = match volume {
            Some(v) => format!("no Data volume matches '{}'", escape(v)),
            None => "no APFS Data volume found".to_string(),
        };
        return Err(Error::new(ErrorKind::Usage, msg).hint("`fvsync volumes` lists the volumes"));
    }
    Ok(data)
}

fn preboot_uuid(p: &dyn Platform, vol: &Volume, name: &str) -> Result<Option<String>> {
    Ok(p.preboot_users(vol)?
        .unwrap_or_default()
        .into_iter()
        .find(|u| u.name == name)
        .map(|u| u.uuid))
}

/// Finds `name` on the Data volumes.
///
/// # Errors
/// Invalid name (2), not found (2), found on several volumes (2), or the
/// volume is locked and its Preboot list does not name the user (5).
pub fn find(p: &dyn Platform, name: &str, volume: Option<&str>) -> Result<Target> {
    record::check_name(name)?;
    let mut found = Vec::new();
    let mut locked_unknown = Vec::new();
    for vol in data_volumes(p, volume)? {
        let crypto_users = p.crypto_users(&vol)?;
        let mut uuid = None;
        let mut present = false;
        match p.files(&vol) {
            Ok(root) => {
                let path: PathBuf = record::record_path(&root, name);
                if std::fs::symlink_metadata(&path).is_ok() {
                    present = true;
                    uuid = record::load(&path, Some(name))?.generated_uid();
                }
            }
            Err(_) => match preboot_uuid(p, &vol, name)? {
                Some(u) => {
                    present = true;
                    uuid = Some(u);
                }
                None => locked_unknown.push(vol.clone()),
            },
        }
        if present {
            let crypto = uuid.as_ref().and_then(|u| {
                crypto_users
                    .iter()
                    .find(|c| c.uuid.eq_ignore_ascii_case(u) && c.kind == "LocalOpenDirectory")
                    .cloned()
            });
            let filevault_users = p
                .preboot_users(&vol)?
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.name)
                .collect();
            found.push(Target {
                vol,
                user: name.to_string(),
                uuid,
                crypto,
                filevault_users,
            });
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 if !locked_unknown.is_empty() => {
            let vol = &locked_unknown[0];
            let fv_users: Vec<String> = p
                .preboot_users(vol)?
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.name)
                .collect();
            Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "no FileVault user '{}' on {} ({}), which is locked: the name is misspelled, or not a FileVault user; the FileVault users are: {}",
                    escape(name),
                    vol.device,
                    escape(&vol.name),
                    if fv_users.is_empty() { "none listed".to_string() } else { escape(&fv_users.join(", ")) }
                ),
            )
            .hint(
                "fvsync needs the user's own FileVault password. An admin can start up normally (or unlock \
                 the volume with an admin's password), then give the user a SecureToken: \
                 `sysadminctl -secureTokenOn USER -password - -adminUser ADMIN -adminPassword -`, \
                 or reset the password with Apple's `resetpassword` and a recovery key",
            ))
        }
        0 => Err(Error::new(
            ErrorKind::Usage,
            format!("no user '{}' on the Data volume", escape(name)),
        )
        .hint("`fvsync users` lists the users")),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!(
                "'{}' exists on several Data volumes: {}",
                escape(name),
                found
                    .iter()
                    .map(|t| format!("{} ({})", t.vol.device, escape(&t.vol.name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("choose one with --volume DEVICE")),
    }
}
