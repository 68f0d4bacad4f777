//! Every field fixture under `tests/data/field/<name>/` (a pilot's `fvsync
//! report`, or published real outputs) goes through the parsers, and the
//! emulated diskutil's outputs are checked to carry every key fvsync reads
//! that the real output carries, with the same type. A new folder is picked up
//! with no change here (docs/diskutil.md, "Learning from real Macs").
#![cfg(feature = "testing")]

mod common;
use common::*;

use std::path::{Path, PathBuf};

use fvsync::diskutil::parse;
use plist::Value;

fn field() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/field")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::Dictionary(_) => "dict",
        Value::Boolean(_) => "bool",
        Value::Data(_) => "data",
        Value::Date(_) => "date",
        Value::Real(_) => "real",
        Value::Integer(_) => "integer",
        Value::String(_) => "string",
        _ => "other",
    }
}

fn dict(bytes: &[u8]) -> plist::Dictionary {
    Value::from_reader(std::io::Cursor::new(bytes))
        .unwrap()
        .into_dictionary()
        .unwrap()
}

/// Keys in `real` among `keys` must be in `emu` with the same type.
fn same_keys(what: &str, real: &plist::Dictionary, emu: &plist::Dictionary, keys: &[&str]) {
    for k in keys {
        if let Some(r) = real.get(k) {
            let e = emu
                .get(k)
                .unwrap_or_else(|| panic!("{what}: the emulator lacks `{k}`"));
            assert_eq!(kind(r), kind(e), "{what}: `{k}` has another type");
        }
    }
}

fn first<'a>(d: &'a plist::Dictionary, key: &str) -> Option<&'a plist::Dictionary> {
    d.get(key)?.as_array()?.first()?.as_dictionary()
}

/// What the emulator prints for `args` over a fresh simulated Mac.
fn emulated(args: &[&str]) -> Vec<u8> {
    let (t, dir) = mac("fv-old-login-new");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fvsync-diskutil-emulator"))
        .arg("--sim")
        .arg(&dir)
        .arg("--state")
        .arg(t.path().join("emu"))
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}");
    o.stdout
}

#[test]
fn every_field_fixture_parses_and_the_emulator_matches_it() {
    let emu_list = dict(&emulated(&["apfs", "list", "-plist"]));
    let emu_info = dict(&emulated(&["info", "-plist", "disk3s5"]));
    let emu_users = dict(&emulated(&["apfs", "listCryptoUsers", "-plist", "disk3s5"]));
    let emu_groups = dict(&emulated(&["apfs", "listVolumeGroups", "-plist"]));
    let mut folders = 0;
    let mut parsed = 0;
    for e in std::fs::read_dir(field()).unwrap() {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        folders += 1;
        assert!(
            dir.join("README.md").is_file(),
            "{} has no README.md",
            dir.display()
        );
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            let what = format!("{}/{name}", dir.file_name().unwrap().to_string_lossy());
            if name == "diskutil-apfs-list.plist" {
                let cs = parse::apfs_list(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(!cs.is_empty(), "{what}");
                parse::physical_stores(&bytes).unwrap();
                let real = dict(&bytes);
                let (rc, ec) = (
                    first(&real, "Containers").unwrap(),
                    first(&emu_list, "Containers").unwrap(),
                );
                same_keys(
                    &what,
                    rc,
                    ec,
                    &[
                        "ContainerReference",
                        "APFSContainerUUID",
                        "DesignatedPhysicalStore",
                        "PhysicalStores",
                        "Volumes",
                    ],
                );
                let (rv, ev) = (first(rc, "Volumes").unwrap(), first(ec, "Volumes").unwrap());
                same_keys(
                    &what,
                    rv,
                    ev,
                    &[
                        "DeviceIdentifier",
                        "APFSVolumeUUID",
                        "Name",
                        "Roles",
                        "Encryption",
                        "FileVault",
                        "Locked",
                    ],
                );
            } else if name.starts_with("diskutil-apfs-listVolumeGroups") && name.ends_with(".plist")
            {
                parse::volume_groups(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
                let real = dict(&bytes);
                if let (Some(rc), Some(ec)) =
                    (first(&real, "Containers"), first(&emu_groups, "Containers"))
                {
                    if let (Some(rg), Some(eg)) =
                        (first(rc, "VolumeGroups"), first(ec, "VolumeGroups"))
                    {
                        same_keys(&what, rg, eg, &["APFSVolumeGroupUUID", "Volumes"]);
                    }
                }
            } else if name.starts_with("diskutil-info-") && name.ends_with(".plist") {
                let i = parse::info(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(!i.device.is_empty());
                let real = dict(&bytes);
                if real.contains_key("APFSContainerReference") {
                    same_keys(
                        &what,
                        &real,
                        &emu_info,
                        &[
                            "DeviceIdentifier",
                            "MountPoint",
                            "Locked",
                            "FileVault",
                            "Encryption",
                            "APFSVolumeGroupID",
                            "Internal",
                            "GlobalPermissionsEnabled",
                            "Writable",
                            "WritableVolume",
                        ],
                    );
                }
            } else if name.starts_with("diskutil-apfs-listCryptoUsers") && name.ends_with(".plist")
            {
                parse::crypto_users(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
                let real = dict(&bytes);
                if let (Some(ru), Some(eu)) = (first(&real, "Users"), first(&emu_users, "Users")) {
                    same_keys(
                        &what,
                        ru,
                        eu,
                        &["APFSCryptoUserUUID", "APFSCryptoUserType", "VolumeOwner"],
                    );
                }
            } else if name.starts_with("hdiutil-attach") {
                assert!(!parse::hdiutil_attach(&bytes).is_empty(), "{what}");
            } else if name.ends_with(".txt") {
                // Text forms: read whole, every line shaped without a panic.
                for l in String::from_utf8_lossy(&bytes).lines() {
                    let _ = fvsync::diskutil::message_shape(l);
                }
            } else if name == "system.json" {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(v["version"], 1, "{what}");
            } else {
                continue;
            }
            parsed += 1;
        }
    }
    assert!(
        folders >= 1 && parsed >= 3,
        "{folders} folders, {parsed} files"
    );
}

#[test]
fn a_report_of_the_emulated_mac_is_a_fixture() {
    // `report` over the emulated diskutil writes files this test's walker
    // knows, with every UUID replaced consistently.
    let (t, dir) = mac("fv-old-login-new");
    let link = t.path().join("diskutil");
    let m = fvsync::diskutil::DiskutilMac::new(
        link,
        PathBuf::from("/nonexistent/hdiutil"),
        std::time::Duration::from_secs(30),
    );
    let out = t.path().join("report");
    let before = tree(&dir);
    let s = fvsync::diskutil::report::report(&m, &out, true).unwrap();
    assert!(s.uuids_replaced >= 3, "{s:?}");
    for f in [
        "diskutil-apfs-list.plist",
        "diskutil-apfs-listCryptoUsers-disk3s5.plist",
        "diskutil-info-disk3s5.plist",
        "system.json",
    ] {
        assert!(s.files.iter().any(|x| x == f), "{f}: {:?}", s.files);
    }
    let all: String = s
        .files
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap())
        .collect();
    assert!(!all.contains(ALICE_UUID) && !all.contains(DATA_UUID));
    for pw in TYPED {
        assert!(!all.contains(pw));
    }
    // Still parseable after redaction, and the same UUID maps to one placeholder.
    let cs =
        parse::apfs_list(&std::fs::read(out.join("diskutil-apfs-list.plist")).unwrap()).unwrap();
    let data = cs
        .iter()
        .flat_map(|c| &c.volumes)
        .find(|v| v.device == "disk3s5")
        .unwrap();
    let info = std::fs::read_to_string(out.join("diskutil-info-disk3s5.plist")).unwrap();
    assert!(info.contains(&data.uuid));
    assert_eq!(tree(&dir), before, "the report changed the Mac");
}
