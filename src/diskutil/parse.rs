//! Pure parsers for diskutil's `-plist` outputs. Each takes bytes and returns
//! typed values or a [`ParseError`] naming the key that was wrong; none does
//! I/O. Keys follow the real samples in `tests/data/samples/`. Unknown keys are
//! ignored; optional keys default; a key of the wrong type is an error.

use plist::{Dictionary, Value};

use crate::platform::{Container, CryptoUser, Volume};

/// A diskutil output that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a property list.
    #[error("diskutil's output is not a property list")]
    NotPlist,
    /// A property list fvsync does not read (nested too deep, a cycle...).
    #[error("diskutil's output is not a property list fvsync reads: {0}")]
    Unsafe(String),
    /// An error plist (`Error` = true).
    #[error("diskutil reported an error: {0}")]
    Reported(String),
    /// A required key is missing or of the wrong type.
    #[error("diskutil's output has no usable `{0}`")]
    Key(&'static str),
}

fn root(bytes: &[u8]) -> Result<Dictionary, ParseError> {
    use crate::formats::plist_safe::PlistError;
    let v = crate::formats::plist_safe::parse(bytes).map_err(|e| match e {
        PlistError::Malformed(_) => ParseError::NotPlist,
        other => ParseError::Unsafe(other.to_string()),
    })?;
    let d = v.into_dictionary().ok_or(ParseError::NotPlist)?;
    if let Some(msg) = error_message(&d) {
        return Err(ParseError::Reported(msg));
    }
    Ok(d)
}

/// The message of an error plist (`Error` = true, `ErrorMessage`), if it is one.
pub fn error_message(d: &Dictionary) -> Option<String> {
    if d.get("Error").and_then(Value::as_boolean) == Some(true) {
        let msg = d
            .get("ErrorMessage")
            .and_then(Value::as_string)
            .unwrap_or("unknown error")
            .to_string();
        let code = d.get("ExitCode").and_then(Value::as_signed_integer);
        return Some(match code {
            Some(c) => format!("{msg} (exit code {c})"),
            None => msg,
        });
    }
    None
}

fn string(d: &Dictionary, key: &'static str) -> Result<String, ParseError> {
    d.get(key)
        .and_then(Value::as_string)
        .map(str::to_string)
        .ok_or(ParseError::Key(key))
}

fn opt_string(d: &Dictionary, key: &'static str) -> Result<Option<String>, ParseError> {
    match d.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(|s| Some(s.to_string()))
            .ok_or(ParseError::Key(key)),
    }
}

fn flag(d: &Dictionary, key: &'static str) -> Result<bool, ParseError> {
    match d.get(key) {
        None => Ok(false),
        Some(v) => v.as_boolean().ok_or(ParseError::Key(key)),
    }
}

fn array<'a>(d: &'a Dictionary, key: &'static str) -> Result<&'a [Value], ParseError> {
    match d.get(key) {
        None => Ok(&[]),
        Some(v) => v.as_array().map(Vec::as_slice).ok_or(ParseError::Key(key)),
    }
}

/// `diskutil apfs list -plist`: containers and their volumes (volume groups and
/// mount points are filled in later from other verbs).
///
/// # Errors
/// Not a plist, an error plist, or a required key missing.
pub fn apfs_list(bytes: &[u8]) -> Result<Vec<Container>, ParseError> {
    let d = root(bytes)?;
    let mut out = Vec::new();
    for c in array(&d, "Containers")? {
        let c = c.as_dictionary().ok_or(ParseError::Key("Containers"))?;
        let reference = string(c, "ContainerReference")?;
        let mut volumes = Vec::new();
        for v in array(c, "Volumes")? {
            let v = v.as_dictionary().ok_or(ParseError::Key("Volumes"))?;
            let roles = array(v, "Roles")?
                .iter()
                .map(|r| {
                    r.as_string()
                        .map(str::to_string)
                        .ok_or(ParseError::Key("Roles"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            volumes.push(Volume {
                device: string(v, "DeviceIdentifier")?,
                uuid: string(v, "APFSVolumeUUID")?,
                name: opt_string(v, "Name")?.unwrap_or_default(),
                roles,
                encryption: flag(v, "Encryption")?,
                filevault: flag(v, "FileVault")?,
                locked: flag(v, "Locked")?,
                group_uuid: None,
                mount_point: None,
                container: reference.clone(),
            });
        }
        out.push(Container {
            reference,
            uuid: string(c, "APFSContainerUUID")?,
            volumes,
            internal: None,
        });
    }
    Ok(out)
}

/// `diskutil apfs listVolumeGroups -plist`: (group UUID, member devices).
///
/// # Errors
/// Not a plist, an error plist, or a required key missing.
pub fn volume_groups(bytes: &[u8]) -> Result<Vec<(String, Vec<String>)>, ParseError> {
    let d = root(bytes)?;
    let mut out = Vec::new();
    for c in array(&d, "Containers")? {
        let c = c.as_dictionary().ok_or(ParseError::Key("Containers"))?;
        for g in array(c, "VolumeGroups")? {
            let g = g.as_dictionary().ok_or(ParseError::Key("VolumeGroups"))?;
            let uuid = string(g, "APFSVolumeGroupUUID")?;
            let members = array(g, "Volumes")?
                .iter()
                .map(|m| {
                    m.as_dictionary()
                        .ok_or(ParseError::Key("Volumes"))
                        .and_then(|m| string(m, "DeviceIdentifier"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push((uuid, members));
        }
    }
    Ok(out)
}

/// What fvsync reads from `diskutil info -plist <device>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// `DeviceIdentifier`.
    pub device: String,
    /// `MountPoint`, when mounted (an empty string means not mounted).
    pub mount_point: Option<String>,
    /// `APFSVolumeGroupID`.
    pub group: Option<String>,
    /// `Locked`.
    pub locked: bool,
    /// `FileVault`.
    pub filevault: bool,
    /// `Writable` (or `WritableVolume`).
    pub writable: bool,
    /// `GlobalPermissionsEnabled`: file ownership honoured (absent: assumed on).
    pub ownership: bool,
    /// `Internal`: on the Mac's internal storage, when said.
    pub internal: Option<bool>,
    /// `Encryption`.
    pub encryption: bool,
}

/// `diskutil info -plist <device>`.
///
/// # Errors
/// Not a plist, an error plist, or `DeviceIdentifier` missing.
pub fn info(bytes: &[u8]) -> Result<Info, ParseError> {
    let d = root(bytes)?;
    Ok(Info {
        device: string(&d, "DeviceIdentifier")?,
        mount_point: opt_string(&d, "MountPoint")?.filter(|m| !m.is_empty()),
        group: opt_string(&d, "APFSVolumeGroupID")?,
        locked: flag(&d, "Locked")?,
        filevault: flag(&d, "FileVault")?,
        writable: flag(&d, "WritableVolume")? || flag(&d, "Writable")?,
        ownership: match d.get("GlobalPermissionsEnabled") {
            None => true,
            Some(_) => flag(&d, "GlobalPermissionsEnabled")?,
        },
        internal: match d.get("Internal") {
            None => None,
            Some(_) => Some(flag(&d, "Internal")?),
        },
        encryption: flag(&d, "Encryption")?,
    })
}

/// A container's physical stores: (container reference,
/// `DesignatedPhysicalStore`, every `PhysicalStores[].DeviceIdentifier`).
pub type Stores = (String, Option<String>, Vec<String>);

/// The physical stores of each container in `diskutil apfs list -plist`:
/// (container reference, `DesignatedPhysicalStore`, every
/// `PhysicalStores[].DeviceIdentifier`).
///
/// # Errors
/// Not a plist, an error plist, or a key of the wrong type.
pub fn physical_stores(bytes: &[u8]) -> Result<Vec<Stores>, ParseError> {
    let d = root(bytes)?;
    let mut out = Vec::new();
    for c in array(&d, "Containers")? {
        let c = c.as_dictionary().ok_or(ParseError::Key("Containers"))?;
        let stores = array(c, "PhysicalStores")?
            .iter()
            .map(|p| {
                p.as_dictionary()
                    .ok_or(ParseError::Key("PhysicalStores"))
                    .and_then(|p| string(p, "DeviceIdentifier"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((
            string(c, "ContainerReference")?,
            opt_string(c, "DesignatedPhysicalStore")?,
            stores,
        ));
    }
    Ok(out)
}

/// How many CoreStorage logical volume groups `diskutil coreStorage list
/// -plist` lists (`CoreStorageLogicalVolumeGroups`); 0 when the output says
/// none or is not a plist (newer systems may lack the verb).
pub fn corestorage_groups(bytes: &[u8]) -> usize {
    root(bytes)
        .ok()
        .and_then(|d| {
            d.get("CoreStorageLogicalVolumeGroups")
                .and_then(Value::as_array)
                .map(Vec::len)
        })
        .unwrap_or(0)
}

/// The `/dev/diskN...` entries `hdiutil attach` printed: from its `-plist`
/// form (`system-entities[].dev-entry`, `content-hint`) or, failing that, its
/// text form (the /dev node, a tab, a content hint, a tab, a mount point),
/// stable since Mac OS X 10.0 (hdiutil(1)). Identifiers without `/dev/`.
pub fn hdiutil_attach(bytes: &[u8]) -> Vec<(String, String)> {
    if let Ok(d) = root(bytes) {
        if let Some(es) = d.get("system-entities").and_then(Value::as_array) {
            return es
                .iter()
                .filter_map(Value::as_dictionary)
                .filter_map(|e| {
                    let dev = e.get("dev-entry").and_then(Value::as_string)?;
                    let hint = e
                        .get("content-hint")
                        .and_then(Value::as_string)
                        .unwrap_or("");
                    Some((disk_name(dev)?, hint.to_string()))
                })
                .collect();
        }
    }
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\t');
            let dev = disk_name(parts.next()?.trim())?;
            Some((dev, parts.next().unwrap_or("").trim().to_string()))
        })
        .collect()
}

/// `diskN` or `diskNsM...` from `/dev/diskN...` or `diskN...`; `None` for
/// anything else.
pub fn disk_name(s: &str) -> Option<String> {
    let s = s.strip_prefix("/dev/").unwrap_or(s);
    let s = s
        .strip_prefix('r')
        .filter(|r| r.starts_with("disk"))
        .unwrap_or(s);
    let rest = s.strip_prefix("disk")?;
    let ok = rest.starts_with(|c: char| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_digit() || c == 's')
        && !rest.ends_with('s')
        && !rest.contains("ss")
        && s.len() <= 32;
    ok.then(|| s.to_string())
}

/// The device a `createContainer` or `addVolume` reported creating: the last
/// disk identifier on a line that says `Created` and `what` (e.g.
/// "Created new APFS Container disk5").
pub fn created_device(text: &str, what: &str) -> Option<String> {
    text.lines()
        .filter(|l| l.contains("Created") && l.contains(what))
        .flat_map(|l| {
            l.split(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '\'')
                .filter_map(disk_name)
                .collect::<Vec<_>>()
        })
        .last()
}

/// `diskutil apfs listCryptoUsers -plist <volume>`.
///
/// # Errors
/// Not a plist, an error plist, or a required key missing.
pub fn crypto_users(bytes: &[u8]) -> Result<Vec<CryptoUser>, ParseError> {
    let d = root(bytes)?;
    array(&d, "Users")?
        .iter()
        .map(|u| {
            let u = u.as_dictionary().ok_or(ParseError::Key("Users"))?;
            Ok(CryptoUser {
                uuid: string(u, "APFSCryptoUserUUID")?.to_ascii_uppercase(),
                kind: opt_string(u, "APFSCryptoUserType")?.unwrap_or_default(),
                volume_owner: flag(u, "VolumeOwner")?,
                hint: opt_string(u, "PassphraseHint")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/data/samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn real_apfs_list() {
        let cs = apfs_list(&sample("diskutil-apfs-list.plist")).unwrap();
        let all: Vec<&Volume> = cs.iter().flat_map(|c| &c.volumes).collect();
        let data = all.iter().find(|v| v.has_role("Data")).unwrap();
        assert!(data.filevault && data.encryption && !data.locked);
        let system = all.iter().find(|v| v.has_role("System")).unwrap();
        assert_eq!(system.name, "Macintosh HD");
        assert!(all.iter().any(|v| v.has_role("Preboot")));
        assert!(cs
            .iter()
            .all(|c| !c.uuid.is_empty() && c.reference.starts_with("disk")));
    }

    #[test]
    fn real_crypto_users() {
        let us = crypto_users(&sample("diskutil-apfs-listCryptoUsers.plist")).unwrap();
        assert_eq!(us.len(), 3);
        assert_eq!(us[0].kind, "LocalOpenDirectory");
        assert!(us[0].volume_owner);
        assert_eq!(us[1].uuid, "EBC6C064-0000-11AA-AA11-00306543ECAC");
        assert_eq!(us[2].kind, "MDMRecovery");
    }

    #[test]
    fn real_info() {
        let i = info(&sample("diskutil-info-apfs-filevault.plist")).unwrap();
        assert_eq!(i.device, "disk1s5s1");
        assert_eq!(i.mount_point.as_deref(), Some("/"));
        assert_eq!(
            i.group.as_deref(),
            Some("B41463C7-EA58-399D-A1E0-B032C963DC2E")
        );
        assert!(i.filevault && !i.locked && !i.writable);
    }

    fn plist(body: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\">{body}</plist>")
            .into_bytes()
    }

    #[test]
    fn hdiutil_and_created_devices() {
        assert_eq!(
            hdiutil_attach(b"/dev/disk4          \t                               \t\n"),
            vec![("disk4".to_string(), String::new())]
        );
        let img = b"/dev/disk4\tGUID_partition_scheme\t\n/dev/disk4s1\tApple_APFS\t\n/dev/disk5\tEF57347C-0000-11AA-AA11-0030654\t\n/dev/disk5s1\t41504653-0000-11AA-AA11-0030654\t/Volumes/x\n";
        let e = hdiutil_attach(img);
        assert_eq!(e.len(), 4);
        assert_eq!(e[2].0, "disk5");
        let pl = plist("<dict><key>system-entities</key><array><dict><key>content-hint</key><string>GUID_partition_scheme</string><key>dev-entry</key><string>/dev/disk7</string></dict></array></dict>");
        assert_eq!(
            hdiutil_attach(&pl),
            vec![("disk7".to_string(), "GUID_partition_scheme".to_string())]
        );
        assert!(hdiutil_attach(b"hdiutil: attach failed - Resource busy").is_empty());
        assert_eq!(
            created_device(
                "Started APFS operation\nCreated new APFS Container disk5\nFinished APFS operation",
                "Container"
            )
            .as_deref(),
            Some("disk5")
        );
        assert_eq!(
            created_device("Created new APFS Volume disk5s1", "Volume").as_deref(),
            Some("disk5s1")
        );
        assert_eq!(created_device("nothing here", "Volume"), None);
        for bad in ["disk", "disks1", "disk1s", "disk1ss2", "/dev/sda", "disk1x"] {
            assert_eq!(disk_name(bad), None, "{bad}");
        }
        assert_eq!(disk_name("/dev/rdisk3s5").as_deref(), Some("disk3s5"));
        assert_eq!(
            corestorage_groups(b"No CoreStorage logical volume groups found"),
            0
        );
        assert_eq!(corestorage_groups(&plist("<dict><key>CoreStorageLogicalVolumeGroups</key><array><string>U</string></array></dict>")), 1);
    }

    #[test]
    fn edge_cases() {
        // Empty lists, extra keys.
        assert_eq!(
            apfs_list(&plist("<dict><key>Containers</key><array/></dict>"))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(apfs_list(&plist("<dict/>")).unwrap().len(), 0);
        assert_eq!(
            crypto_users(&plist(
                "<dict><key>Users</key><array/><key>Extra</key><true/></dict>"
            ))
            .unwrap()
            .len(),
            0
        );
        // Not a plist, wrong root, wrong types, missing keys.
        assert_eq!(
            apfs_list(b"Unable to find disk").unwrap_err(),
            ParseError::NotPlist
        );
        assert_eq!(apfs_list(b"").unwrap_err(), ParseError::NotPlist);
        assert_eq!(
            apfs_list(&plist("<array/>")).unwrap_err(),
            ParseError::NotPlist
        );
        assert_eq!(
            apfs_list(&plist(
                "<dict><key>Containers</key><string>x</string></dict>"
            ))
            .unwrap_err(),
            ParseError::Key("Containers")
        );
        assert_eq!(
            apfs_list(&plist(
                "<dict><key>Containers</key><array><dict/></array></dict>"
            ))
            .unwrap_err(),
            ParseError::Key("ContainerReference")
        );
        assert_eq!(crypto_users(&plist("<dict><key>Users</key><array><dict><key>VolumeOwner</key><true/></dict></array></dict>")).unwrap_err(), ParseError::Key("APFSCryptoUserUUID"));
        // Non-APFS disk: info without APFS keys, not mounted.
        let i = info(&plist("<dict><key>DeviceIdentifier</key><string>disk2s1</string><key>MountPoint</key><string></string></dict>")).unwrap();
        assert_eq!(i.mount_point, None);
        assert_eq!(i.group, None);
        // Error plist.
        let e = info(&plist("<dict><key>Error</key><true/><key>ErrorMessage</key><string>Could not find disk: disk99</string><key>ExitCode</key><integer>1</integer></dict>"));
        assert_eq!(
            e,
            Err(ParseError::Reported(
                "Could not find disk: disk99 (exit code 1)".into()
            ))
        );
        // Volume groups.
        let g = volume_groups(&plist(
            "<dict><key>Containers</key><array><dict><key>VolumeGroups</key><array><dict>\
             <key>APFSVolumeGroupUUID</key><string>G</string><key>Volumes</key><array>\
             <dict><key>DeviceIdentifier</key><string>disk3s1</string><key>Role</key><string>System</string></dict>\
             <dict><key>DeviceIdentifier</key><string>disk3s5</string><key>Role</key><string>Data</string></dict>\
             </array></dict></array></dict></array></dict>",
        ))
        .unwrap();
        assert_eq!(
            g,
            vec![(
                "G".to_string(),
                vec!["disk3s1".to_string(), "disk3s5".to_string()]
            )]
        );
    }
}
