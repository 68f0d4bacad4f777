//! Every scenario × {diagnose, reconcile --dry-run, reconcile, verify}: the
//! expected matrix and exit code, checked through the binary's JSON and, after
//! reconcile, by an independent check of the bytes on disk.

mod common;
use common::*;

/// (scenario, diagnose exit, [filevault, login, srp, kerberos, keychain] as
/// diagnose reports them).
const EXPECTED: &[(&str, i32, [&str; 5])] = &[
    ("in-sync", 0, ["new", "new", "new", "new", "new"]),
    ("fv-old-login-new", 3, ["old", "new", "new", "new", "new"]),
    ("all-old", 3, ["old", "old", "old", "old", "old"]),
    ("keychain-old", 3, ["new", "new", "new", "new", "old"]),
    ("login-old-fv-new", 3, ["new", "old", "old", "old", "old"]),
    (
        "filevault-off",
        3,
        ["not-applicable", "old", "old", "old", "old"],
    ),
    ("multi-volume", 3, ["old", "new", "new", "new", "new"]),
    ("throttled", 3, ["old", "new", "new", "new", "new"]),
    (
        "unknown-hash",
        3,
        ["old", "new", "not-applicable", "-", "new"],
    ),
    ("securetoken-fv-off", 3, ["old", "old", "old", "old", "old"]),
    ("legacy-keychain", 3, ["old", "old", "old", "old", "old"]),
    ("keychain-macos26", 3, ["old", "old", "old", "old", "old"]),
    ("stale-preboot", 0, ["new", "new", "new", "new", "new"]),
];

fn accepts(v: &serde_json::Value) -> Vec<String> {
    // The Local Items keychain, when present, is out of reach offline.
    if let Some(li) = v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["secret"] == "local-items")
    {
        assert_eq!(li["accepts"], "unknown");
        assert_eq!(li["counts"], false);
        assert!(li["note"]
            .as_str()
            .unwrap()
            .contains("macOS asks for OLD once after login"));
    }
    // The first row is FileVault, or the SecureToken where FileVault is off;
    // a record without Kerberos keys has no Kerberos row ("-").
    let rows = v["secrets"].as_array().unwrap();
    let first = rows[0]["accepts"].as_str().unwrap().to_string();
    std::iter::once(first)
        .chain(["login", "srp", "kerberos", "keychain"].iter().map(|name| {
            match rows.iter().find(|r| r["secret"] == *name) {
                Some(r) => r["accepts"].as_str().unwrap().to_string(),
                None if *name == "kerberos" => "-".to_string(),
                None => panic!("no {name} row in {v}"),
            }
        }))
        .collect()
}

#[test]
fn diagnose_matrix_every_scenario() {
    for (scenario, code, matrix) in EXPECTED {
        let (_t, dir) = mac(scenario);
        let o = cmd(
            &dir,
            &["--json", "diagnose", "--user", "alice", "--password-stdin"],
            &[OLD, NEW],
        );
        assert_eq!(o.code, Some(*code), "{scenario}: {}", o.stderr);
        let v = json(&o);
        assert_eq!(v["version"], 1);
        assert_eq!(accepts(&v), matrix.to_vec(), "{scenario}");
        let used = v["filevault_attempts"]["used"].as_u64().unwrap();
        assert!(used <= 2, "{scenario}: {used} attempts");
        // FileVault on NEW costs one failed attempt (OLD is tried first); on OLD none.
        let expect_failed = if matrix[0] == "new" { 1 } else { 0 };
        assert_eq!(
            v["filevault_attempts"]["failed"], expect_failed,
            "{scenario}"
        );
    }
}

#[test]
fn not_a_filevault_user_is_refused_everywhere() {
    let (_t, dir) = mac("not-a-filevault-user");
    let before = tree(&dir);
    for args in [
        vec!["diagnose", "--user", "alice", "--password-stdin"],
        RECONCILE.to_vec(),
        vec![
            "reconcile",
            "--user",
            "alice",
            "--password-stdin",
            "--dry-run",
        ],
    ] {
        // The volume is locked and its Preboot list does not name alice:
        // she matches nobody who can unlock it (exit 2, with the list).
        let o = cmd(&dir, &args, &[OLD, NEW]);
        assert_eq!(o.code, Some(2), "{args:?}: {}", o.stderr);
        assert!(
            o.stderr
                .contains("its FileVault users are: bob (Bob Chen), itadmin"),
            "{}",
            o.stderr
        );
        assert!(
            o.stderr.contains("fvsync: error:") && o.stderr.contains("fvsync: hint:"),
            "{}",
            o.stderr
        );
        assert!(
            o.stderr.contains("SecureToken") || o.stderr.contains("secureTokenOn"),
            "{}",
            o.stderr
        );
    }
    assert_eq!(tree(&dir), before, "a refused command changed files");
    // bob is a FileVault user on the same Mac and can be diagnosed.
    let o = cmd(
        &dir,
        &["diagnose", "--user", "bob", "--password-stdin"],
        &["Bob-Passw0rd!", "Bob-Passw0rd!"],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

#[test]
fn dry_run_writes_nothing_in_any_scenario() {
    for scenario in SCENARIOS {
        let (_t, dir) = mac(scenario);
        let before = disk_tree(&dir);
        let o = cmd(
            &dir,
            &[
                "reconcile",
                "--user",
                "alice",
                "--password-stdin",
                "--dry-run",
            ],
            &[OLD, NEW],
        );
        let want = if *scenario == "not-a-filevault-user" {
            2
        } else {
            0
        };
        assert_eq!(o.code, Some(want), "{scenario}: {}", o.stderr);
        if want == 0 {
            assert!(
                o.stdout.contains("Dry run: nothing was changed"),
                "{scenario}: {}",
                o.stdout
            );
        }
        assert_eq!(
            disk_tree(&dir),
            before,
            "{scenario}: dry run changed a file"
        );
    }
}

#[test]
fn reconcile_then_verify_every_scenario() {
    for (scenario, _, before) in EXPECTED {
        let (_t, dir) = mac(scenario);
        let o = reconcile(&dir, &["--json"], OLD, NEW);
        assert_eq!(o.code, Some(0), "{scenario}: {}", o.stderr);
        let v = json(&o);
        assert!(
            v["filevault_attempts"]["used"].as_u64().unwrap() <= 2,
            "{scenario}"
        );
        let changed: Vec<&str> = v["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        if *scenario == "in-sync" {
            assert!(changed.is_empty(), "{changed:?}");
        }
        if *scenario == "stale-preboot" {
            // Only the Preboot lists were out of date.
            assert_eq!(changed, ["preboot"], "{scenario}");
        }
        if before[0] == "old" {
            assert!(
                changed.contains(&"filevault") && changed.contains(&"preboot"),
                "{scenario}: {changed:?}"
            );
        }
        if *scenario == "unknown-hash" {
            // The Mac OS X 10.7 hash already takes NEW: the record is left as it is.
            assert!(!changed.contains(&"login"), "{changed:?}");
            assert!(fv_accepts(&dir, ALICE_UUID, NEW) && keychain_accepts(&dir, "alice", NEW));
            continue;
        }
        // The independent check: every secret fvsync manages accepts NEW, not OLD.
        let fv = *scenario != "filevault-off";
        assert_eq!(
            alice_state(&dir, fv),
            (if fv { "new" } else { "n/a" }, "new", "new", "new"),
            "{scenario}"
        );
        // verify through the binary.
        let o = cmd(
            &dir,
            &["--json", "verify", "--user", "alice", "--password-stdin"],
            &[NEW],
        );
        assert_eq!(o.code, Some(0), "{scenario}: {}{}", o.stdout, o.stderr);
        let v = json(&o);
        assert_eq!(v["in_sync"], true);
        // Both backends read the Preboot lists (the diskutil one mounts the
        // Preboot volume read-only for it); a volume without FileVault has none.
        assert_eq!(
            v["preboot_current"],
            if fv {
                serde_json::json!(true)
            } else {
                serde_json::Value::Null
            },
            "{scenario}"
        );
        if *scenario == "throttled" {
            continue; // no attempt to spare for the checks below
        }
        // verify with OLD now says out of sync (exit 3).
        let o = cmd(
            &dir,
            &["verify", "--user", "alice", "--password-stdin"],
            &[OLD],
        );
        assert_eq!(o.code, Some(3), "{scenario}: {}", o.stdout);
        // A second reconcile has nothing to do.
        let o = reconcile(&dir, &[], OLD, NEW);
        assert_eq!(o.code, Some(0), "{scenario}: {}", o.stderr);
        assert!(
            o.stdout.contains("Nothing to do"),
            "{scenario}: {}",
            o.stdout
        );
    }
}

#[test]
fn reconcile_keeps_other_attributes_owner_and_mode() {
    let (_t, dir) = mac("all-old");
    let path = record_path(&dir, "alice");
    let before = plist::Value::from_file(&path)
        .unwrap()
        .into_dictionary()
        .unwrap();
    reconcile_ok(&dir, &[], OLD, NEW);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.starts_with(b"bplist00"),
        "records are written as binary plists"
    );
    let after = plist::Value::from_file(&path)
        .unwrap()
        .into_dictionary()
        .unwrap();
    for (k, v) in &before {
        if !matches!(
            k.as_str(),
            "ShadowHashData"
                | "accountPolicyData"
                | "authentication_authority"
                | "KerberosKeys"
                | "HeimdalSRPKey"
        ) {
            assert_eq!(after.get(k), Some(v), "attribute {k} changed");
        }
    }
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let aa: Vec<&str> = after["authentication_authority"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert!(
        aa.contains(&";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>"),
        "{aa:?}"
    );
    assert!(aa.contains(&";SecureToken;"), "{aa:?}");
    // accountPolicyData: failed logins reset, password-last-set moved forward.
    let rec = fvsync::formats::record::UserRecord::parse(&bytes).unwrap();
    let p = rec.account_policy().unwrap();
    assert_eq!(p.failed_login_count, Some(0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - p.password_last_set.unwrap()).abs() < 600.0);
    // The backup is the original record, 0600, outside the dslocal users folder.
    let backups = data_root(&dir).join("private/var/db/fvsync/backups");
    let b: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let rec_backup = b
        .iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "plist")
                && !p.to_string_lossy().contains("old-verifier")
        })
        .unwrap();
    let orig = plist::Value::from_file(rec_backup)
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(orig, before);
    assert_eq!(
        std::fs::metadata(rec_backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // bob and itadmin are untouched.
    assert_eq!(login_accepts(&dir, "bob", "Bob-Passw0rd!"), (true, true));
    assert!(fv_accepts(
        &dir,
        "B0B00000-2E3F-4A5B-8C9D-123456789ABC",
        "Bob-Passw0rd!"
    ));
    // The audit log has one line, without secrets or hashes.
    let log = std::fs::read_to_string(data_root(&dir).join("private/var/log/fvsync.log")).unwrap();
    assert_eq!(log.lines().count(), 1);
    assert!(
        log.contains("user=alice")
            && log.contains("result=ok")
            && log.contains("changed=filevault,login,keychain,preboot"),
        "{log}"
    );
    assert!(!log.contains(OLD) && !log.contains(NEW));
}

#[test]
fn throttled_wrong_old_spends_one_attempt_and_exits_4() {
    let (_t, dir) = mac("throttled");
    for command in ["diagnose", "reconcile"] {
        let (_t, dir) = mac("throttled");
        let o = cmd(
            &dir,
            &[
                "--json",
                command,
                "--user",
                "alice",
                "--password-stdin",
                "--yes",
            ]
            .iter()
            .copied()
            .filter(|a| command == "reconcile" || *a != "--yes")
            .collect::<Vec<_>>(),
            &["Wrong-Passw0rd!", NEW],
        );
        assert_eq!(o.code, Some(4), "{command}: {}{}", o.stdout, o.stderr);
        assert_eq!(
            failed_attempts(&dir),
            10,
            "exactly one more failure was spent"
        );
        assert!(o.stderr.contains("1 attempt used"), "{}", o.stderr);
        assert!(alice_state(&dir, true).0 == "old");
    }
    // With the right OLD, the same Mac reconciles: one attempt left is enough
    // when no attempt fails.
    let o = reconcile_ok(&dir, &["--json"], OLD, NEW);
    assert_eq!(json(&o)["filevault_attempts"]["failed"], 0);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn neither_password_opens_filevault() {
    let (_t, dir) = mac("fv-old-login-new");
    let before = tree(&dir);
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &["Wrong-1", "Wrong-2"],
    );
    assert_eq!(o.code, Some(4), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["filevault_attempts"]["used"], 2);
    assert_eq!(v["filevault_attempts"]["failed"], 2);
    assert_eq!(failed_attempts(&dir), 2);
    // Nothing but the Secure Enclave's counter changed.
    let after = tree(&dir);
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(changed, vec!["SecureEnclave.plist".to_string()]);
}

#[test]
fn same_password_twice_costs_one_attempt() {
    let (_t, dir) = mac("in-sync");
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[NEW, NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["filevault_attempts"]["used"], 1);
    assert_eq!(accepts(&v), vec!["both", "both", "both", "both", "both"]);
}

#[test]
fn undo_puts_the_last_reconcile_back() {
    let (_t, dir) = mac("all-old");
    let rec_before = std::fs::read(record_path(&dir, "alice")).unwrap();
    let kc_before = std::fs::read(keychain_path(&dir, "alice")).unwrap();
    reconcile_ok(&dir, &[], OLD, NEW);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
    let o = cmd(
        &dir,
        &[
            "--json",
            "undo",
            "--user",
            "alice",
            "--password-stdin",
            "--yes",
        ],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // NEW first (FileVault is on NEW after a reconcile), then the check of OLD: two, none failed.
    let v = json(&o);
    assert_eq!(v["filevault_attempts"]["used"], 2);
    assert_eq!(v["filevault_attempts"]["failed"], 0);
    assert_eq!(alice_state(&dir, true), ("old", "old", "old", "old"));
    assert_eq!(
        std::fs::read(record_path(&dir, "alice")).unwrap(),
        rec_before
    );
    assert_eq!(
        std::fs::read(keychain_path(&dir, "alice")).unwrap(),
        kc_before
    );
    // A second undo finds nothing to put back. The simulated Mac starts each
    // run locked (a Recovery session that restarted), so the journal can only
    // be read after an unlock: NEW is presented, refused (FileVault is on OLD
    // again), and that one failed attempt is explained and counted.
    let o = cmd(
        &dir,
        &[
            "--json",
            "undo",
            "--user",
            "alice",
            "--password-stdin",
            "--yes",
        ],
        &[NEW, OLD],
    );
    if diskutil_mode() {
        // The emulated diskutil keeps the volume unlocked between runs (as
        // Recovery does until the restart): the journal is read first, and
        // the undo refused before any password is asked or tried.
        assert_eq!(o.code, Some(5), "{}", o.stderr);
        let v = json(&o);
        assert_eq!(v["filevault_attempts"]["used"], 0, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already undone"),
            "{v}"
        );
        return;
    }
    assert_eq!(o.code, Some(4), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["filevault_attempts"]["used"], 1);
    assert_eq!(v["filevault_attempts"]["failed"], 1);
    assert!(
        v["filevault_attempts"]["events"][0]["why"]
            .as_str()
            .unwrap()
            .contains("does not take NEW"),
        "{v}"
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no FileVault change to put back"));
}

#[test]
fn multi_volume_picks_the_volume_or_asks() {
    let (_t, dir) = mac("multi-volume");
    // bob is on both Data volumes.
    let o = cmd(
        &dir,
        &["diagnose", "--user", "bob", "--password-stdin"],
        &["Bob-Passw0rd!", "Bob-Passw0rd!"],
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("--volume"), "{}", o.stderr);
    let o = cmd(
        &dir,
        &[
            "--json",
            "diagnose",
            "--user",
            "bob",
            "--volume",
            "disk5s5",
            "--password-stdin",
        ],
        &["Bob-Passw0rd!", "Bob-Passw0rd!"],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(json(&o)["volume"], "disk5s5");
}

#[test]
fn a_securetoken_with_filevault_off_is_changed_too() {
    // T2 and Apple silicon: FileVault off, the Data volume encrypted anyway and
    // unlocked at startup; alice is a crypto user (a SecureToken) on OLD.
    let (_t, dir) = mac("securetoken-fv-off");
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["secrets"][0]["secret"], "secure-token");
    assert_eq!(v["secrets"][0]["accepts"], "old");
    assert_eq!(v["plan"][0]["action"], "do");
    assert!(v["plan"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("SecureToken passphrase"));
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert!(o.stdout.contains("  SecureToken     OLD"), "{}", o.stdout);
    reconcile_ok(&dir, &[], OLD, NEW);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

const PREBOOT: &str = "Volumes/disk3s2";
const GROUP: &str = "7E1A0000-4A4A-4B4B-9C9C-00000000C0DE";
const SYSTEM_UUID: &str = "5E5E0001-5A5A-4B4B-8C8C-0000000000A1";

/// alice's entries in the Preboot lists under `folder`: (AllUsersInfo's
/// full name, CryptoUserInfo's full name, CryptoUserInfo's hint).
fn alice_preboot(
    dir: &std::path::Path,
    folder: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    use fvsync::formats::preboot as pb;
    let f = dir.join(PREBOOT).join(folder);
    let all =
        pb::parse_all_users_info(&std::fs::read(f.join(pb::ALL_USERS_INFO)).unwrap()).unwrap();
    let cr =
        pb::parse_crypto_user_info(&std::fs::read(f.join(pb::CRYPTO_USER_INFO)).unwrap()).unwrap();
    let a = all.iter().find(|a| a.generated_uid == ALICE_UUID).unwrap();
    assert_eq!(a.short_name, "alice");
    let c = cr.iter().find(|c| c.uuid == ALICE_UUID).unwrap();
    assert_eq!(c.short_name, "alice");
    (a.real_name.clone(), c.full_name.clone(), c.hint.clone())
}

/// In the emulator's call log, every `mount readOnly` of the Preboot volume
/// is followed by its `unmount`, and none is left mounted.
fn preboot_put_back(dir: &std::path::Path) -> usize {
    let mut mounts = 0;
    let mut open = false;
    for line in emulator_calls(dir).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let argv: Vec<&str> = v["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        match argv.as_slice() {
            ["mount", "readOnly", "disk3s2"] => {
                assert!(!open, "mounted twice without an unmount");
                open = true;
                mounts += 1;
            }
            ["unmount", "disk3s2"] => {
                assert!(open, "an unmount of what fvsync did not mount");
                open = false;
            }
            _ => {}
        }
    }
    assert!(!open, "the Preboot volume was left mounted");
    let state =
        std::fs::read_to_string(dir.parent().unwrap().join("emu/mounted")).unwrap_or_default();
    assert!(state.trim().is_empty(), "still mounted: {state}");
    mounts
}

#[test]
fn a_stale_preboot_list_is_reported_planned_and_updated() {
    let (_t, dir) = mac("stale-preboot");
    assert_eq!(
        alice_preboot(&dir, GROUP),
        (
            Some("Alice Dupont".into()),
            Some("Alice Dupont".into()),
            Some("the old one".into())
        )
    );
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["preboot"], "stale", "{v}");
    let step = v["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == "preboot")
        .unwrap();
    assert_eq!(step["action"], "do", "{v}");
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("out of date") && detail.contains("Alice Dupont"),
        "{detail}"
    );
    // The other steps have nothing to do.
    assert!(v["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["step"] != "preboot")
        .all(|p| p["action"] != "do"));
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert!(
        o.stdout.contains("Preboot user list: out of date")
            && o.stdout.contains("is out of date: `"),
        "{}",
        o.stdout
    );
    let o = reconcile_ok(&dir, &["--json"], OLD, NEW);
    assert_eq!(json(&o)["changed"], serde_json::json!(["preboot"]));
    // updatePreboot rewrote both lists from the record.
    assert_eq!(
        alice_preboot(&dir, GROUP),
        (
            Some("Alice Martin".into()),
            Some("Alice Martin".into()),
            None
        )
    );
    let o = cmd(
        &dir,
        &["--json", "verify", "--user", "alice", "--password-stdin"],
        &[NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["preboot"], "current", "{v}");
    assert_eq!(v["preboot_current"], true);
    if diskutil_mode() {
        // Read through a read-only mount each time, and put back each time.
        assert!(preboot_put_back(&dir) >= 3);
        assert!(emulator_calls(&dir).contains("\"updatePreboot\",\"disk3s5\""));
    }
}

#[test]
fn the_preboot_lists_are_found_under_the_system_or_data_uuid() {
    for folder in [SYSTEM_UUID, DATA_UUID] {
        let (_t, dir) = mac("all-old");
        let pre = dir.join(PREBOOT);
        std::fs::rename(pre.join(GROUP), pre.join(folder)).unwrap();
        // The volume is locked: alice is found from the lists alone.
        let o = cmd(
            &dir,
            &["--json", "diagnose", "--user", "alice", "--password-stdin"],
            &[OLD, NEW],
        );
        assert_eq!(o.code, Some(3), "{folder}: {}", o.stderr);
        assert_eq!(json(&o)["preboot"], "current", "{folder}");
        if diskutil_mode() {
            preboot_put_back(&dir);
        }
    }
}

#[test]
fn preboot_lists_that_cannot_be_read_are_not_a_missing_user() {
    // No list under any folder; a list that is not a dictionary; a list
    // nested 200,000 deep: on a locked volume fvsync cannot tell who its
    // FileVault users are (exit 5), and says so apart from "not a FileVault
    // user" (exit 2).
    type Edit = fn(&std::path::Path);
    let cases: [(&str, Edit, &str); 3] = [
        (
            "no list",
            |d| std::fs::remove_dir_all(d.join(PREBOOT).join(GROUP)).unwrap(),
            "holds no user list",
        ),
        (
            "not a dictionary",
            |d| {
                let f = d
                    .join(PREBOOT)
                    .join(GROUP)
                    .join("var/db/AllUsersInfo.plist");
                let mut out = Vec::new();
                plist::Value::Array(vec![]).to_writer_xml(&mut out).unwrap();
                std::fs::write(f, out).unwrap();
            },
            "the top level is not a dictionary",
        ),
        (
            "nested 200,000 deep",
            |d| {
                let f = d
                    .join(PREBOOT)
                    .join(GROUP)
                    .join("var/db/CryptoUserInfo.plist");
                let mut x = b"<?xml version=\"1.0\"?><plist version=\"1.0\">".to_vec();
                x.extend(std::iter::repeat_n(&b"<array>"[..], 200_000).flatten());
                x.extend(std::iter::repeat_n(&b"</array>"[..], 200_000).flatten());
                x.extend_from_slice(b"</plist>");
                std::fs::write(f, x).unwrap();
            },
            "nested deeper than 64 levels",
        ),
    ];
    for (what, edit, why) in cases {
        let (_t, dir) = mac("all-old");
        edit(&dir);
        for args in [
            &["diagnose", "--user", "alice", "--password-stdin"][..],
            RECONCILE,
        ] {
            let o = cmd(&dir, args, &[OLD, NEW]);
            assert_eq!(o.code, Some(5), "{what}: {}", o.stderr);
            assert!(
                o.stderr.contains(
                    "cannot read the Preboot volume's user lists for disk3s5 (Macintosh HD - Data), which is locked"
                ) && o.stderr.contains(why)
                    && o.stderr.contains("cannot tell whether 'alice'"),
                "{what}: {}",
                o.stderr
            );
            assert!(
                o.stderr.contains("diskutil apfs unlockVolume disk3s5"),
                "{what}: {}",
                o.stderr
            );
            assert!(!o.stderr.contains("no FileVault user"), "{}", o.stderr);
        }
        assert_eq!(failed_attempts(&dir), 0, "{what}: an attempt was spent");
        if diskutil_mode() {
            preboot_put_back(&dir);
        }
    }
}

#[test]
fn the_simulated_preboot_lists_have_apples_shape_only() {
    let (_t, dir) = mac("in-sync");
    let f = dir.join(PREBOOT).join(GROUP).join("var/db");
    let top = |name: &str| {
        plist::Value::from_file(f.join(name))
            .unwrap()
            .into_dictionary()
            .unwrap()
    };
    let keys = |d: &plist::Dictionary| {
        let mut k: Vec<String> = d.keys().cloned().collect();
        k.sort();
        k
    };
    // AllUsersInfo.plist: keyed by short name (Apple's authd iterates it so).
    let all = top("AllUsersInfo.plist");
    assert_eq!(keys(&all), ["alice", "bob", "itadmin"]);
    for (name, e) in &all {
        let e = e.as_dictionary().unwrap();
        assert_eq!(
            keys(e),
            [
                "Admin",
                "AuthenticationAuthority",
                "GeneratedUID",
                "HomeDir",
                "RealName",
                "UID"
            ],
            "{name}"
        );
    }
    assert_eq!(
        all["alice"].as_dictionary().unwrap()["GeneratedUID"].as_string(),
        Some(ALICE_UUID)
    );
    assert_eq!(
        all["itadmin"].as_dictionary().unwrap()["Admin"].as_boolean(),
        Some(true)
    );
    // CryptoUserInfo.plist: keyed by UUID, no key Apple does not write.
    let cr = top("CryptoUserInfo.plist");
    let e = cr[ALICE_UUID].as_dictionary().unwrap();
    assert_eq!(keys(e), ["FullName", "ShortName", "UserType"]);
    assert_eq!(e["UserType"].as_string(), Some("OpenDirectory"));
    for k in ["KeybagGeneration", "PassphraseHint"] {
        assert!(cr
            .values()
            .all(|v| !v.as_dictionary().unwrap().contains_key(k)));
    }
    // The parsers read them back as the engine does.
    let m = fvsync::formats::preboot::merge(
        &fvsync::formats::preboot::parse_all_users_info(
            &std::fs::read(f.join("AllUsersInfo.plist")).unwrap(),
        )
        .unwrap(),
        &fvsync::formats::preboot::parse_crypto_user_info(
            &std::fs::read(f.join("CryptoUserInfo.plist")).unwrap(),
        )
        .unwrap(),
    );
    let names: Vec<(&str, Option<&str>)> = m
        .iter()
        .map(|u| (u.name.as_str(), u.real_name.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("alice", Some("Alice Martin")),
            ("bob", Some("Bob Chen")),
            ("itadmin", Some("IT Admin"))
        ]
    );
}

#[test]
fn heimdal_srp_keys_are_regenerated_and_a_stale_one_is_seen() {
    // The simulated users carry HeimdalSRPKey (the local KDC's SRP
    // verifiers); reconcile makes new ones for NEW, and the Kerberos row
    // counts them: put OLD's back and the row says keys of two passwords.
    let (_t, dir) = mac("all-old");
    let path = record_path(&dir, "alice");
    let srp_of = |p: &std::path::Path| {
        plist::Value::from_file(p).unwrap().as_dictionary().unwrap()["HeimdalSRPKey"].clone()
    };
    let old_srp = srp_of(&path);
    reconcile_ok(&dir, &[], OLD, NEW);
    assert_ne!(srp_of(&path), old_srp, "HeimdalSRPKey was not regenerated");
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin", "--json"],
        &[OLD, NEW],
    );
    let v = json(&o);
    assert_eq!(secret(&v, "kerberos")["accepts"], "new", "{v}");
    // OLD's verifiers back in place (a half-done change by another tool).
    let mut rec = plist::Value::from_file(&path)
        .unwrap()
        .into_dictionary()
        .unwrap();
    rec.insert("HeimdalSRPKey".into(), old_srp);
    plist::Value::Dictionary(rec).to_file_binary(&path).unwrap();
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin", "--json"],
        &[OLD, NEW],
    );
    let v = json(&o);
    assert_eq!(secret(&v, "kerberos")["accepts"], "neither", "{v}");
}
