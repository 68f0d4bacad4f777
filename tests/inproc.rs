//! The engine driven in-process (tests/common/inproc.rs) over simulated Macs:
//! the first tests of a layer that needs no process per run. Each checks what
//! the binary's tests check for the same run, and one that the in-process run
//! prints exactly what the binary prints.
#![cfg(feature = "testing")]

mod common;
use common::inproc::{alice, run_engine};
use common::*;

use fvsync::secret::Which;

#[test]
fn inproc_diagnose_of_fv_old_login_new_exits_3_with_the_plan() {
    let (_t, dir) = mac("fv-old-login-new");
    let before = tree(&dir);
    let o = run_engine(&dir, &alice(), false, &[OLD, NEW], fvsync::cli::diagnose);
    assert_eq!(o.code, 3, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.asked, [Which::Old, Which::New]);
    assert!(
        o.stdout
            .contains("Plan (what `fvsync reconcile` would do):"),
        "{}",
        o.stdout
    );
    for step in [
        "filevault change alice's FileVault passphrase from OLD to NEW, then check NEW",
        "login     skip: the login hash and SRP verifier already accept NEW",
        "keychain  skip: already accepts NEW",
        "preboot   update the Preboot volume's user list",
    ] {
        assert!(o.stdout.contains(step), "no {step:?} in\n{}", o.stdout);
    }
    assert!(
        o.stdout.contains(&format!(
            "Out of sync: run `fvsync --simulate {} reconcile --user alice` to apply this plan.",
            dir.display()
        )),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("FileVault attempts used: 1 (0 failed)"));
    assert!(!o.stdout.contains(OLD) && !o.stdout.contains(NEW) && !o.stderr.contains(OLD));
    // FileVault accepted OLD at the first attempt: nothing changed, not even the counter.
    assert_eq!(tree(&dir), before);
}

#[test]
fn inproc_verify_of_in_sync_exits_0() {
    let (_t, dir) = mac("in-sync");
    let o = run_engine(&dir, &alice(), false, &[NEW], fvsync::cli::verify);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.asked, [Which::Current]);
    assert!(
        o.stdout
            .contains("In sync: every secret that counts accepts this password."),
        "{}",
        o.stdout
    );
    let o = run_engine(&dir, &alice(), true, &[NEW], fvsync::cli::verify);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.json()["in_sync"], true);
    // OLD is no longer accepted anywhere: out of sync (3).
    let o = run_engine(&dir, &alice(), false, &[OLD], fvsync::cli::verify);
    assert_eq!(o.code, 3, "{}", o.stdout);
}

/// The same JSON document and exit code as the binary, for a plan and for an
/// error (an error leaves the engine as `Err` and is printed as `main` does).
#[test]
fn inproc_diagnose_prints_what_the_binary_prints() {
    for (scenario, code) in [("fv-old-login-new", 3), ("not-a-filevault-user", 2)] {
        let (_t, a) = mac(scenario);
        let (_u, b) = mac(scenario);
        let o = run_engine(&a, &alice(), true, &[OLD, NEW], fvsync::cli::diagnose);
        let bin = run(
            &[
                "--simulate",
                b.to_str().unwrap(),
                "--json",
                "diagnose",
                "--user",
                "alice",
                "--password-stdin",
            ],
            &format!("{OLD}\n{NEW}\n"),
        );
        assert_eq!(i32::from(o.code), code, "{scenario}: {}", o.stderr);
        assert_eq!(bin.code, Some(code), "{scenario}: {}", bin.stderr);
        // The same document, but for where each simulated Mac is.
        let bin: serde_json::Value =
            serde_json::from_str(&bin.stdout.replace(b.to_str().unwrap(), a.to_str().unwrap()))
                .unwrap();
        assert_eq!(o.json(), bin, "{scenario}");
        if code == 2 {
            assert_eq!(o.json()["error"]["kind"], "usage", "{scenario}");
        }
    }
}

/// Issue 16, items 2 and 4, as a person at the terminal meets them: OLD is
/// typed twice; OLD equal to NEW is called out and a "no" cancels (exit 9,
/// nothing changed, no attempt); a refused OLD asks before a second attempt
/// on NEW, and a "no" stops there with one attempt spent.
#[test]
fn a_person_is_asked_before_a_second_attempt_and_about_old_equal_new() {
    use common::inproc::{run_engine_as, Scripted};
    let sel = fvsync::engine::UserSel {
        user: "alice".into(),
        ..Default::default()
    };
    // OLD = NEW: the question, then "no".
    let (_t, dir) = mac("fv-old-login-new");
    let before = tree(&dir);
    let src = Scripted::person(&[NEW, NEW, NEW, NEW], &[false], &[]);
    let o = run_engine_as(&dir, &sel, false, src, fvsync::cli::diagnose);
    assert_eq!(o.code, 9, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.asked, [Which::Old, Which::OldAgain, Which::New]);
    assert!(o.questions[0].starts_with("OLD and NEW are the same password. Is that really meant?"));
    assert!(o.stderr.contains("nothing was changed"), "{}", o.stderr);
    assert_eq!(failed_attempts(&dir), 0);
    assert_eq!(tree(&dir), before);
    // A wrong OLD (FileVault refuses it): asked before NEW is tried; "no".
    let src = Scripted::person(&["Typo-Passw0rd!", "Typo-Passw0rd!", NEW], &[false], &[]);
    let o = run_engine_as(&dir, &sel, false, src, fvsync::cli::diagnose);
    assert_eq!(
        o.questions,
        ["FileVault refused OLD (1 failed attempt). Try NEW? That spends a second attempt"],
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    assert!(
        o.stderr.contains("you chose not to spend a second attempt"),
        "{}",
        o.stderr
    );
    assert_eq!(failed_attempts(&dir), 1);
}
