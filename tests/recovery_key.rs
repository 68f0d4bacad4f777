//! The recovery-key route (`--recovery-key`): the Personal Recovery Key
//! unlocks the volume, a candidate for OLD is checked offline, and FileVault
//! is changed from it; never an attempt on a guess. Through both backends
//! (`make test` runs this file through the emulated diskutil too).
#![cfg(feature = "testing")]

mod common;
use common::*;

const KEY: &str = "RK7Q-2M9X-HT4D-PL8C-WN3F-ZB6J";

fn route(dir: &std::path::Path, extra: &[&str], lines: &[&str]) -> Out {
    let mut args = vec![
        "--json",
        "reconcile",
        "--user",
        "alice",
        "--recovery-key",
        "--password-stdin",
        "--yes",
    ];
    args.extend_from_slice(extra);
    cmd(dir, &args, lines)
}

#[test]
fn a_candidate_proven_offline_changes_filevault_with_no_guess() {
    let (_t, dir) = mac("all-old");
    let o = route(&dir, &[], &[KEY, OLD, NEW]);
    assert_eq!(o.code, Some(0), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
    let v = json(&o);
    // The key's unlock, then the check of NEW after the change: no failure,
    // and nothing was ever presented as a guess of OLD.
    let events = v["filevault_attempts"]["events"].as_array().unwrap();
    let presented: Vec<&str> = events
        .iter()
        .map(|e| e["password"].as_str().unwrap())
        .collect();
    assert_eq!(presented, ["recovery-key", "new"], "{v}");
    assert_eq!(v["filevault_attempts"]["failed"], 0);
    assert_eq!(failed_attempts(&dir), 0);
    assert!(
        o.stderr.is_empty() || !o.stderr.contains("error"),
        "{}",
        o.stderr
    );
    assert!(
        v["next"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("rotate it")),
        "{v}"
    );
    assert!(v["plan"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("proven offline by the login hash"));
}

#[test]
fn nothing_to_prove_old_stops_before_a_candidate_and_keeps_the_keychain() {
    // The commonest drift: the login hash and the keychain already take NEW,
    // so nothing offline can tell OLD.
    let (_t, dir) = mac("fv-old-login-new");
    let before = disk_tree(&dir);
    let kc = std::fs::read(keychain_path(&dir, "alice")).unwrap();
    let o = route(&dir, &[], &[KEY, OLD, NEW]);
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    let v = json(&o);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing on this Mac can prove an OLD candidate"),
        "{v}"
    );
    assert!(v["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("resetpassword"));
    assert_eq!(failed_attempts(&dir), 0);
    assert_eq!(alice_state(&dir, true), ("old", "new", "new", "new"));
    // Every file as it was, but for one new file: the keychain's copy in the
    // root-only backups folder.
    let after = disk_tree(&dir);
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    for k in before.keys() {
        assert_eq!(before[k], after[k], "{k} changed");
    }
    let copies: Vec<&&String> = added
        .iter()
        .filter(|k| k.ends_with(".keychain-db"))
        .collect();
    assert_eq!(copies.len(), 1, "{added:?}");
    assert!(copies[0].contains("private/var/db/fvsync/backups/alice-"));
    assert_eq!(std::fs::read(dir.join(copies[0])).unwrap(), kc);
}

#[test]
fn a_wrong_candidate_changes_nothing_and_spends_no_attempt() {
    let (_t, dir) = mac("all-old");
    let before = disk_tree(&dir);
    let o = route(&dir, &[], &[KEY, "Wrong-Passw0rd!", NEW]);
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    let v = json(&o);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no candidate was proven offline"));
    assert_eq!(v["filevault_attempts"]["failed"], 0);
    assert_eq!(failed_attempts(&dir), 0);
    assert_eq!(alice_state(&dir, true), ("old", "old", "old", "old"));
    let after = disk_tree(&dir);
    for k in before.keys() {
        assert_eq!(before[k], after[k], "{k} changed");
    }
    // The only new entries: fvsync's backups folders and the keychain's copy.
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        assert!(
            k.contains("private/var/db/fvsync")
                && (k.ends_with(".keychain-db") || !k.contains("alice")),
            "{k}"
        );
    }
}

#[test]
fn a_wrong_or_malformed_key() {
    let (_t, dir) = mac("all-old");
    let before = disk_tree(&dir);
    // Not the shape of a key: refused before anything is tried.
    let o = route(&dir, &[], &["not-a-key", OLD, NEW]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(!o.stdout.contains("not-a-key") && !o.stderr.contains("not-a-key"));
    assert_eq!(failed_attempts(&dir), 0);
    // Another key: one failed attempt, explained, nothing changed.
    let o = route(&dir, &[], &["AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", OLD, NEW]);
    assert_eq!(o.code, Some(4), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["filevault_attempts"]["failed"], 1);
    assert_eq!(
        v["filevault_attempts"]["events"][0]["password"],
        "recovery-key"
    );
    assert!(v["filevault_attempts"]["events"][0]["why"]
        .as_str()
        .is_some());
    assert_eq!(failed_attempts(&dir), 1);
    assert_eq!(disk_tree(&dir), before);
    // A lower-case key is the same key.
    let o = route(&dir, &[], &[&KEY.to_lowercase(), OLD, NEW]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

#[test]
fn escrow_buddy_is_asked_for_a_new_key() {
    let (_t, dir) = mac("all-old");
    let prefs = data_root(&dir).join("Library/Preferences/com.netflix.Escrow-Buddy.plist");
    std::fs::create_dir_all(prefs.parent().unwrap()).unwrap();
    let mut d = plist::Dictionary::new();
    d.insert("GenerateNewKey".into(), plist::Value::Boolean(false));
    plist::Value::Dictionary(d).to_file_xml(&prefs).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&prefs, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = route(&dir, &["--request-new-recovery-key"], &[KEY, OLD, NEW]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v = plist::Value::from_file(&prefs).unwrap();
    assert_eq!(
        v.as_dictionary().unwrap()["GenerateNewKey"],
        plist::Value::Boolean(true)
    );
}

#[test]
fn diagnose_through_the_recovery_key() {
    let (_t, dir) = mac("all-old");
    let o = cmd(
        &dir,
        &[
            "--json",
            "diagnose",
            "--user",
            "alice",
            "--recovery-key",
            "--password-stdin",
        ],
        &[KEY, OLD, NEW],
    );
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["plan"][0]["action"], "do");
    assert_eq!(v["verdict"], "out-of-sync");
    assert_eq!(failed_attempts(&dir), 0);
    assert_eq!(alice_state(&dir, true), ("old", "old", "old", "old"));
}
