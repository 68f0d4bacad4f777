//! The Preboot volume's user lists, read before the Data volume is unlocked
//! (display only: once the volume is open, a user's identity is the record's
//! `generateduid`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::platform::PrebootUser;

/// The Preboot user list, relative to `<Preboot volume>/<VolumeGroupUUID>/`.
pub const PREBOOT_USERS: &str = "var/db/CryptoUserInfo.plist";

/// One Preboot user-list entry (value of `CryptoUserInfo.plist`, keyed by UUID).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrebootEntry {
    /// Short name.
    pub short_name: String,
    /// Full name.
    pub full_name: String,
    /// `APFSCryptoUserType`.
    pub user_type: String,
    /// Passphrase hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_hint: Option<String>,
    /// The keybag `Generation` this entry was written from.
    #[serde(default)]
    pub keybag_generation: u64,
}

/// The FileVault users a Preboot list (`CryptoUserInfo.plist`) names.
///
/// # Errors
/// An entry is malformed.
pub fn preboot_users_of(dict: plist::Dictionary, path: &Path) -> Result<Vec<PrebootUser>> {
    let mut users = Vec::new();
    for (uuid, v) in dict {
        let e: PrebootEntry = plist::from_value(&v)
            .map_err(|e| Error::malformed(path, format!("entry {uuid}: {e}")))?;
        if e.user_type != "LocalOpenDirectory" {
            continue;
        }
        users.push(PrebootUser {
            name: e.short_name,
            real_name: e.full_name,
            uuid: uuid.to_ascii_uppercase(),
        });
    }
    Ok(users)
}
