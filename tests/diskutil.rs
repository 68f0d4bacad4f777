//! The diskutil backend against a misbehaving diskutil: output that is not a
//! plist, no output, huge output, a hang (timeout), death by a signal, a
//! missing binary. Each gives a clear error, a documented exit code and no
//! panic. Also: what diskutil receives (argv, environment) is fixed and free of
//! secrets. Needs `--features testing` (the emulated diskutil).
#![cfg(feature = "testing")]

mod common;
use common::*;

fn wrapper_with_mode(dir: &std::path::Path, mode: &str) -> std::path::PathBuf {
    // A link named diskutil-<mode>: the emulator takes the Mac, its state and
    // the mode from the link's path (no script to write, so no ETXTBSY).
    let emu = env!("CARGO_BIN_EXE_fvsync-diskutil-emulator");
    let w = dir.parent().unwrap().join(format!("diskutil-{mode}"));
    assert_eq!(dir.file_name().unwrap(), "mac");
    let _ = std::fs::remove_file(&w);
    std::os::unix::fs::symlink(emu, &w).unwrap();
    w
}

#[test]
fn misbehaving_diskutil_gives_clear_errors() {
    let (_t, dir) = mac("fv-old-login-new");
    let before = tree(&dir);
    let cases = [
        ("garbage", "not a property list"),
        ("empty", "not a property list"),
        ("huge", "more than"),
        ("hang", "did not answer within 1 s"),
        ("kill", "killed by a signal"),
    ];
    for (mode, msg) in cases {
        let w = wrapper_with_mode(&dir, mode);
        for args in [
            vec!["volumes"],
            vec!["diagnose", "--user", "alice", "--password-stdin"],
        ] {
            let mut a = vec!["--diskutil", w.to_str().unwrap(), "--diskutil-timeout", "1"];
            a.extend_from_slice(&args);
            let o = run(&a, &format!("{OLD}\n{NEW}\n"));
            assert_eq!(o.code, Some(1), "{mode} {args:?}: {}", o.stderr);
            assert!(o.stderr.contains(msg), "{mode} {args:?}: {}", o.stderr);
            assert!(
                o.stderr.starts_with("fvsync: error: "),
                "{mode}: {}",
                o.stderr
            );
            assert!(!o.stderr.contains("panicked"));
        }
    }
    assert_eq!(tree(&dir), before);
}

#[test]
fn missing_diskutil_is_refused_with_a_hint() {
    let o = run(&["--diskutil", "/nonexistent/diskutil", "volumes"], "");
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    assert!(o.stderr.contains("--simulate"), "{}", o.stderr);
}

#[test]
fn diskutil_sees_a_fixed_environment_and_no_secret() {
    let (_t, dir) = mac("all-old");
    let w = dir.parent().unwrap().join("diskutil");
    let o = reconcile_through(&w, &[], OLD, NEW, &[("SECRET_LOOKING_VAR", "leak-me")]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let calls = emulator_calls(&dir);
    let mut verbs = Vec::new();
    for line in calls.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let env = v["env"].as_object().unwrap();
        // fvsync passes exactly these (a shell wrapper would add PWD itself).
        let keys: Vec<&str> = env
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "PWD")
            .collect();
        assert_eq!(
            keys,
            ["HOME", "LANG", "LC_ALL", "PATH", "__CF_USER_TEXT_ENCODING"],
            "diskutil saw {keys:?}"
        );
        assert_eq!(env["LC_ALL"], "en_US.UTF-8");
        assert_eq!(env["LANG"], "en_US.UTF-8");
        assert_eq!(env["__CF_USER_TEXT_ENCODING"], "0x0:0x8000100:0x8000100");
        assert_eq!(env["HOME"], "/var/root");
        assert_eq!(env["PATH"], "/usr/bin:/bin:/usr/sbin:/sbin");
        let argv: Vec<&str> = v["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        verbs.push(argv.join(" "));
    }
    for pw in TYPED {
        assert!(!calls.contains(pw));
    }
    // The change went through the stdin flags, and Preboot was updated.
    assert!(verbs.iter().any(|v| v.contains("changePassphrase disk3s5 -user A11CE000-1D2E-4F3A-9B8C-0123456789AB -oldStdinpassphrase -newStdinpassphrase")), "{verbs:#?}");
    assert!(
        verbs
            .iter()
            .any(|v| v.ends_with("-stdinpassphrase -verify")),
        "{verbs:#?}"
    );
    assert!(
        verbs.iter().any(|v| v == "apfs updatePreboot disk3s5"),
        "{verbs:#?}"
    );
    assert!(!verbs.iter().any(|v| v.contains("-passphrase ")
        || v.contains("-oldPassphrase")
        || v.contains("-newPassphrase")));
}

/// `reconcile --json --yes` for alice through the emulated diskutil, whose
/// volumes stay unlocked between runs (one Recovery session); must exit 0.
fn reconcile_in_session(dir: &std::path::Path, old: &str, new: &str) -> serde_json::Value {
    let w = dir.parent().unwrap().join("diskutil");
    let o = reconcile_through(&w, &["--json"], old, new, &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

#[test]
fn a_rerun_in_the_same_session_tries_new_first() {
    // Through diskutil the volume stays unlocked between runs (one Recovery
    // session): the second run reads the journal and spends no failed attempt.
    let (_t, dir) = mac("all-old");
    reconcile_in_session(&dir, OLD, NEW);
    let v = reconcile_in_session(&dir, OLD, NEW);
    assert_eq!(v["filevault_attempts"]["failed"], 0, "{v}");
    assert_eq!(v["filevault_attempts"]["used"], 1);
    assert_eq!(failed_attempts(&dir), 0);
}

#[test]
fn a_done_journal_of_another_old_does_not_put_new_first() {
    // Same session, but the directory password changed again after a finished
    // reconcile: the new pair is (previous NEW, a third password). The journal's
    // FileVault change was made with another OLD, so it says nothing about this
    // pair: OLD (the previous NEW) is tried first and accepted; no failed attempt.
    let (_t, dir) = mac("all-old");
    reconcile_in_session(&dir, OLD, NEW);
    let third = "Third-Passw0rd!";
    let v = reconcile_in_session(&dir, NEW, third);
    assert_eq!(v["filevault_attempts"]["failed"], 0, "{v}");
    assert_eq!(failed_attempts(&dir), 0);
    // An independent check: FileVault, the login hash and the keychain now
    // accept the third password.
    assert!(fv_accepts(&dir, ALICE_UUID, third), "{v}");
    assert!(!fv_accepts(&dir, ALICE_UUID, NEW));
    assert_eq!(login_accepts(&dir, "alice", third), (true, true));
    assert!(keychain_accepts(&dir, "alice", third));
}

/// The diskutil calls of a log that touch the Mac's own volumes (not hdiutil,
/// not the rehearsal's throwaway disks, disk100 and up, nor anything the
/// rehearsal runs between attaching and detaching them).
fn mac_calls(dir: &std::path::Path) -> Vec<String> {
    let mut rehearsing = false;
    emulator_calls(dir)
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            if v["tool"].as_str() == Some("hdiutil") {
                let verb = v["argv"][0].as_str().unwrap_or("");
                if verb == "attach" {
                    rehearsing = true;
                } else if verb == "detach" {
                    rehearsing = false;
                }
                return None;
            }
            if rehearsing {
                return None;
            }
            let argv: Vec<String> = v["argv"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            let canary = argv.iter().any(|a| {
                let d = a.trim_start_matches("/dev/");
                d.strip_prefix("disk")
                    .and_then(|r| r.split('s').next())
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n >= 100)
            });
            (!canary).then(|| argv.join(" "))
        })
        .collect()
}

#[test]
fn the_seed_case_reads_each_listing_once() {
    // fv-old-login-new: FileVault takes OLD, the login NEW. Before the listing
    // cache this made 21 diskutil calls; the target is at most 10, plus 4 each
    // time the Preboot lists are read through a read-only mount (info, mount
    // readOnly, info, unmount): once to find the user before the unlock, once
    // to check them after updatePreboot.
    let (_t, dir) = mac("fv-old-login-new");
    let v = reconcile_in_session(&dir, OLD, NEW);
    assert_eq!(v["filevault_attempts"]["failed"], 0, "{v}");
    let calls = mac_calls(&dir);
    assert!(calls.len() <= 17, "{} calls: {calls:#?}", calls.len());
    let preboot = calls
        .iter()
        .filter(|c| {
            c.ends_with("disk3s2")
                && (c.starts_with("mount") || c.starts_with("unmount") || c.starts_with("info"))
        })
        .count();
    assert!(
        calls.len() - preboot <= 10,
        "{} calls: {calls:#?}",
        calls.len()
    );
    for verb in ["mount readOnly disk3s2", "unmount disk3s2"] {
        assert_eq!(calls.iter().filter(|c| *c == verb).count(), 2, "{calls:#?}");
    }
    for verb in ["apfs list -plist", "apfs listVolumeGroups -plist"] {
        assert_eq!(calls.iter().filter(|c| *c == verb).count(), 1, "{calls:#?}");
    }
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
}

#[test]
fn diskutil_error_prose_is_read_from_stdout() {
    // The emulator prints diskutil's messages on stdout, as real diskutil
    // does: a wrong password must still be recognised as a rejected attempt.
    let (_t, dir) = mac("all-old");
    let w = dir.parent().unwrap().join("diskutil");
    let o = run(
        &[
            "--diskutil",
            w.to_str().unwrap(),
            "--json",
            "diagnose",
            "--user",
            "alice",
            "--password-stdin",
        ],
        "Wrong-1\nWrong-2\n",
    );
    assert_eq!(o.code, Some(4), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(failed_attempts(&dir), 2);
}

#[test]
fn selftest_and_report_commands() {
    let (t, dir) = mac("fv-old-login-new");
    let d = t.path().join("diskutil");
    let h = t.path().join("hdiutil");
    let session = t.path().join("session-tmp");
    std::fs::create_dir_all(&session).unwrap();
    let env = [("TMPDIR", session.to_str().unwrap())];
    let before = disk_tree(&dir);
    // The rehearsal passes with the emulated diskutil's default framing.
    let o = run_env(
        &[
            "--json",
            "--diskutil",
            d.to_str().unwrap(),
            "--hdiutil",
            h.to_str().unwrap(),
            "selftest",
        ],
        "",
        &env,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["rehearsal"]["outcome"], "passed", "{v}");
    assert_eq!(v["rehearsal"]["framing"], "stdin-lines", "{v}");
    assert!(!v["rehearsal"]["transcript"].as_array().unwrap().is_empty());
    // Without hdiutil it cannot run: exit 5, and it says why.
    let o = run_env(
        &[
            "--json",
            "--diskutil",
            d.to_str().unwrap(),
            "--hdiutil",
            "/nonexistent/hdiutil",
            "selftest",
        ],
        "",
        &env,
    );
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    assert_eq!(json(&o)["rehearsal"]["outcome"], "unavailable");
    // On a simulated Mac it is not needed.
    let o = run(
        &["--json", "--simulate", dir.to_str().unwrap(), "selftest"],
        "",
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(json(&o)["rehearsal"]["outcome"], "not-needed");
    // A pilot's report: diskutil's outputs with the UUIDs redacted.
    let out = t.path().join("report");
    let o = run_env(
        &[
            "--json",
            "--diskutil",
            d.to_str().unwrap(),
            "report",
            out.to_str().unwrap(),
        ],
        "",
        &env,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let v = json(&o);
    assert!(v["report"]["redacted"].as_bool().unwrap());
    let mut all = String::new();
    for f in v["report"]["files"].as_array().unwrap() {
        all.push_str(&std::fs::read_to_string(out.join(f.as_str().unwrap())).unwrap_or_default());
    }
    assert!(
        all.contains("disk3s5"),
        "the report holds diskutil's outputs"
    );
    assert!(
        !all.contains(DATA_UUID) && !all.contains(ALICE_UUID),
        "a UUID was not redacted"
    );
    // Nothing of the Mac changed.
    assert_eq!(disk_tree(&dir), before);
}

#[test]
fn a_preboot_update_that_leaves_the_user_out_is_a_warning_with_what_to_do() {
    // updatePreboot reports success but the lists name nobody: FileVault and
    // the login are done (exit 0, nothing rolled back), and the screen says
    // what to run after the restart.
    let (_t, dir) = mac("fv-old-login-new");
    let w = wrapper_with_mode(&dir, "preboot-drops");
    let o = reconcile_through(&w, &[], OLD, NEW, &[]);
    assert_eq!(o.code, Some(0), "{}\n{}", o.stdout, o.stderr);
    let screen = format!("{}{}", o.stdout, o.stderr);
    assert!(
        screen.contains("still does not show alice's FileVault user"),
        "{screen}"
    );
    assert!(
        screen.contains("sudo diskutil apfs updatePreboot /"),
        "{screen}"
    );
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
    assert_eq!(login_accepts(&dir, "alice", NEW), (true, true));
}
