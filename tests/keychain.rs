//! The login keychain: the real keychainbreaker file re-keyed keeps its items;
//! every scenario's keychain ends on NEW with the same items; a keychain fvsync
//! does not understand (blob version 0x200, garbage, a third password) is left
//! byte-for-byte as it was and the run still succeeds.

mod common;
use common::*;

use fvsync::formats::keychain::{
    check, decrypt_generic_passwords, find_db_blob, rekey, KeychainCheck,
};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/samples/keychainbreaker-test.keychain-db"
);

fn items(bytes: &[u8], pw: &str) -> Vec<(String, String, Vec<u8>)> {
    decrypt_generic_passwords(bytes, pw.as_bytes())
        .unwrap()
        .into_iter()
        .map(|(s, a, p)| (s, a, p.to_vec()))
        .collect()
}

#[test]
fn real_keychain_rekeyed_opens_with_new_only_and_keeps_items() {
    let orig = std::fs::read(SAMPLE).unwrap();
    let before = items(&orig, "keychainbreaker-test");
    assert!(before
        .iter()
        .any(|(s, a, p)| s == "moond4rk.com" && a == "admin" && p == b"password#123"));
    let out = rekey(&orig, b"keychainbreaker-test", NEW.as_bytes()).unwrap();
    assert_eq!(out.len(), orig.len());
    assert_eq!(check(&out, NEW.as_bytes()).unwrap(), KeychainCheck::Accepts);
    assert_eq!(
        check(&out, b"keychainbreaker-test").unwrap(),
        KeychainCheck::Rejects
    );
    assert_eq!(items(&out, NEW), before);
    // Only the DbBlob changed.
    let blob = find_db_blob(&orig).unwrap();
    let end = blob.offset + blob.total_length as usize;
    assert_eq!(orig[..blob.offset], out[..blob.offset]);
    assert_eq!(orig[end..], out[end..]);
}

#[test]
fn reconcile_rekeys_and_keeps_items_and_undo_restores() {
    let (_t, dir) = mac("all-old");
    let kc = keychain_path(&dir, "alice");
    let orig = std::fs::read(&kc).unwrap();
    let before = items(&orig, OLD);
    assert!(!before.is_empty());
    reconcile_ok(&dir, &[], OLD, NEW);
    let now = std::fs::read(&kc).unwrap();
    assert_eq!(check(&now, NEW.as_bytes()).unwrap(), KeychainCheck::Accepts);
    assert_eq!(check(&now, OLD.as_bytes()).unwrap(), KeychainCheck::Rejects);
    assert_eq!(items(&now, NEW), before, "items changed");
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(std::fs::read(&kc).unwrap(), orig);
}

fn set_version(path: &std::path::Path, version: u32) {
    let mut b = std::fs::read(path).unwrap();
    let off = find_db_blob(&b).unwrap().offset;
    b[off + 4..off + 8].copy_from_slice(&version.to_be_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn keychains_fvsync_cannot_handle_are_left_as_is() {
    type Mutator = fn(&std::path::Path);
    let cases: &[(&str, Mutator, &str, &str)] = &[
        (
            "blob version 0x200",
            |p| set_version(p, 0x200),
            "unknown",
            "0x200",
        ),
        (
            "garbage",
            |p| std::fs::write(p, b"kych garbage").unwrap(),
            "unknown",
            "",
        ),
        (
            "a third password",
            |p| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, rekey(&b, OLD.as_bytes(), b"Third-Passw0rd!").unwrap()).unwrap()
            },
            "neither",
            "",
        ),
    ];
    for (name, mutate, accepts, note) in cases {
        let (_t, dir) = mac("all-old");
        let kc = keychain_path(&dir, "alice");
        mutate(&kc);
        let bytes = std::fs::read(&kc).unwrap();
        let o = cmd(
            &dir,
            &["--json", "diagnose", "--user", "alice", "--password-stdin"],
            &[OLD, NEW],
        );
        assert_eq!(o.code, Some(3), "{name}: {}", o.stderr);
        let v = json(&o);
        let row = &v["secrets"][3];
        assert_eq!(row["secret"], "keychain");
        assert_eq!(row["accepts"], *accepts, "{name}: {row}");
        assert!(
            row["note"].as_str().unwrap_or("").contains(note),
            "{name}: {row}"
        );
        let o = reconcile(&dir, &[], OLD, NEW);
        assert_eq!(o.code, Some(0), "{name}: {}", o.stderr);
        assert!(
            o.stdout.contains("left as is") || o.stderr.contains("left as is"),
            "{name}: {}",
            o.stdout
        );
        assert_eq!(
            std::fs::read(&kc).unwrap(),
            bytes,
            "{name}: the keychain was touched"
        );
        // The rest of the run went through; verify reports the keychain but passes
        // only where it cannot be checked.
        assert_eq!(alice_state_fv_login(&dir), ("new", "new", "new"), "{name}");
    }
}

fn alice_state_fv_login(dir: &std::path::Path) -> (&'static str, &'static str, &'static str) {
    let (lo, so) = login_accepts(dir, "alice", OLD);
    let (ln, sn) = login_accepts(dir, "alice", NEW);
    (
        which(
            fv_accepts(dir, ALICE_UUID, OLD),
            fv_accepts(dir, ALICE_UUID, NEW),
        ),
        which(lo, ln),
        which(so, sn),
    )
}

#[test]
fn absent_keychain_is_not_applicable() {
    let (_t, dir) = mac("all-old");
    std::fs::remove_file(keychain_path(&dir, "alice")).unwrap();
    let v = json(&cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    ));
    assert_eq!(v["secrets"][3]["accepts"], "not-applicable");
    reconcile_ok(&dir, &[], OLD, NEW);
    assert!(
        !keychain_path(&dir, "alice").exists(),
        "fvsync must not create a keychain"
    );
}

#[test]
fn local_items_keychain_is_reported_out_of_reach() {
    let (_t, dir) = mac("fv-old-login-new");
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert!(
        o.stdout.contains(
            "Local Items     cannot check  macOS asks for OLD once after login (not counted)"
        ),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("Local Items and the user keybag are not counted"),
        "{}",
        o.stdout
    );
    // With --verbose, why it is out of reach.
    let o = cmd(
        &dir,
        &[
            "--verbose",
            "diagnose",
            "--user",
            "alice",
            "--password-stdin",
        ],
        &[OLD, NEW],
    );
    assert!(o.stdout.contains("out of reach offline"), "{}", o.stdout);
}

#[test]
fn a_symlinked_keychains_folder_is_refused() {
    let (_t, dir) = mac("all-old");
    let kc_dir = keychain_path(&dir, "alice").parent().unwrap().to_path_buf();
    let elsewhere = dir.parent().unwrap().join("elsewhere");
    std::fs::rename(&kc_dir, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &kc_dir).unwrap();
    let before = tree(&elsewhere);
    let o = reconcile(&dir, &[], OLD, NEW);
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    assert!(o.stderr.contains("symbolic link"), "{}", o.stderr);
    assert_eq!(tree(&elsewhere), before);
}
