//! The password hint step (`reconcile --hint TEXT`): the record's hint (the
//! login window's) and the crypto user's (FileVault's unlock screen) are set
//! together, cleared with an empty TEXT, kept by default, refused when they
//! hold a control character or a password, and put back by undo. Both
//! backends (the emulated diskutil gets `apfs setPassphraseHint`).

mod common;

use common::*;
use std::path::Path;

/// The record's `hint` (its first value; `None` when absent or empty).
fn record_hint(dir: &Path) -> Option<String> {
    let rec = plist::Value::from_file(record_path(dir, "alice")).unwrap();
    rec.as_dictionary()
        .unwrap()
        .get("hint")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_string())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// alice's crypto user's hint in the Data volume's keybag.
fn keybag_hint(dir: &Path) -> Option<String> {
    crypto_hint(dir, ALICE_UUID)
}

/// alice's `PasswordHint` in the Preboot volume's CryptoUserInfo list
/// (what the FileVault login window shows before unlock).
fn preboot_hint(dir: &Path) -> Option<String> {
    let group = std::fs::read_dir(dir.join("Volumes/disk3s2"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let v = plist::Value::from_file(group.join("var/db/CryptoUserInfo.plist")).unwrap();
    v.as_dictionary().unwrap()[ALICE_UUID]
        .as_dictionary()
        .unwrap()
        .get("PasswordHint")
        .and_then(|h| h.as_string())
        .map(str::to_string)
}

fn plan_entry(v: &serde_json::Value, step: &str) -> serde_json::Value {
    v["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == step)
        .unwrap_or_else(|| panic!("no {step} step in {v}"))
        .clone()
}

#[test]
fn a_hint_given_is_set_in_the_record_and_for_filevault() {
    let (_t, dir) = mac("fv-old-login-new");
    assert_eq!(record_hint(&dir), None);
    let o = reconcile_ok(
        &dir,
        &["--hint", "the blue one, then the year", "--json"],
        OLD,
        NEW,
    );
    let v = json(&o);
    assert_eq!(plan_entry(&v, "hint")["action"], "do", "{v}");
    assert!(
        v["changed"].as_array().unwrap().iter().any(|c| c == "hint"),
        "{v}"
    );
    assert_eq!(
        record_hint(&dir).as_deref(),
        Some("the blue one, then the year")
    );
    assert_eq!(
        keybag_hint(&dir).as_deref(),
        Some("the blue one, then the year")
    );
    assert_eq!(
        preboot_hint(&dir).as_deref(),
        Some("the blue one, then the year")
    );
    if diskutil_mode() {
        assert!(
            emulator_calls(&dir).contains("setPassphraseHint"),
            "diskutil was not asked to set the hint"
        );
    }
    // Everything else was reconciled as without --hint.
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn an_empty_hint_clears_it_and_needs_no_other_change() {
    let (_t, dir) = mac("fv-old-login-new");
    reconcile_ok(&dir, &["--hint", "Pässwörd ✓ reminder"], OLD, NEW);
    assert_eq!(keybag_hint(&dir).as_deref(), Some("Pässwörd ✓ reminder"));
    // In sync now: the hint is the only change, and NEW proves the user.
    let o = reconcile_ok(&dir, &["--hint", "", "--json"], OLD, NEW);
    let v = json(&o);
    assert_eq!(plan_entry(&v, "hint")["action"], "do", "{v}");
    assert_eq!(plan_entry(&v, "filevault")["action"], "skip", "{v}");
    // Nothing secret was replaced: the screen does not say it was.
    let next = v["next"].to_string();
    assert!(
        next.contains("Copies of the record and keychain as they were"),
        "{v}"
    );
    assert!(!next.contains("Backups of what was replaced"), "{v}");
    assert_eq!(record_hint(&dir), None);
    assert_eq!(keybag_hint(&dir), None);
    assert_eq!(preboot_hint(&dir), None, "the Preboot list was refreshed");
    // Asking for the hint that is already there changes nothing.
    let before = disk_tree(&dir);
    let o = reconcile_ok(&dir, &["--hint", "", "--json"], OLD, NEW);
    assert_eq!(plan_entry(&json(&o), "hint")["action"], "skip");
    assert_eq!(disk_tree(&dir), before);
}

#[test]
fn without_hint_the_hint_is_kept() {
    let (_t, dir) = mac("all-old");
    // Set one while reconciling, then go back (undo) and reconcile again
    // without --hint: the scripted run keeps whatever hint is there.
    reconcile_ok(&dir, &["--hint", "kept"], OLD, NEW);
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(
        record_hint(&dir),
        None,
        "undo put the earlier (empty) hint back"
    );
    assert_eq!(
        keybag_hint(&dir),
        None,
        "undo put FileVault's hint back too"
    );
    // A hint in place before a plain reconcile stays.
    reconcile_ok(&dir, &["--hint", "kept"], OLD, NEW);
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = reconcile_ok(&dir, &["--json"], OLD, NEW);
    let v = json(&o);
    assert_eq!(plan_entry(&v, "hint")["action"], "skip", "{v}");
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
    assert_eq!(record_hint(&dir), None);
}

#[test]
fn undo_restores_the_hint_the_record_had() {
    let (_t, dir) = mac("all-old");
    reconcile_ok(&dir, &["--hint", "first"], OLD, NEW);
    // A second reconcile (in sync) changes only the hint; its undo puts
    // "first" back, FileVault's too.
    reconcile_ok(&dir, &["--hint", "second"], OLD, NEW);
    assert_eq!(record_hint(&dir).as_deref(), Some("second"));
    // The OLD of that second run is the one typed for it (nothing took it).
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}\n{}", o.stdout, o.stderr);
    assert_eq!(record_hint(&dir).as_deref(), Some("first"));
    assert_eq!(keybag_hint(&dir).as_deref(), Some("first"));
    assert_eq!(preboot_hint(&dir).as_deref(), Some("first"));
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn a_hint_with_a_control_character_is_refused_before_anything_is_tried() {
    let (_t, dir) = mac("fv-old-login-new");
    let before = disk_tree(&dir);
    let long = "x".repeat(257);
    for (hint, says) in [
        ("two\nlines", "control character"),
        ("esc\u{1b}[2J", "control character"),
        (long.as_str(), "longer than 256"),
    ] {
        let mut args = vec!["--simulate", dir.to_str().unwrap()];
        args.extend_from_slice(RECONCILE);
        args.extend_from_slice(&["--hint", hint]);
        let o = run(&args, &format!("{OLD}\n{NEW}\n"));
        assert_eq!(o.code, Some(2), "{hint:?}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{hint:?}: {}", o.stderr);
        assert!(o.stderr.contains("nothing was changed"), "{}", o.stderr);
    }
    assert_eq!(disk_tree(&dir), before, "a refused hint changed files");
    assert_eq!(failed_attempts(&dir), 0);
}

#[test]
fn a_hint_that_holds_a_password_is_refused_and_not_repeated() {
    let (_t, dir) = mac("fv-old-login-new");
    let before = disk_tree(&dir);
    for hint in ["it is new-passw0rd! now", "was Old-Passw0rd!"] {
        let o = reconcile(&dir, &["--hint", hint], OLD, NEW);
        assert_eq!(o.code, Some(2), "{hint:?}: {}", o.stderr);
        assert!(o.stderr.contains("holds the password"), "{}", o.stderr);
        assert!(o.stderr.contains("Nothing was changed"), "{}", o.stderr);
        assert!(
            !o.stderr.to_lowercase().contains("passw0rd")
                && !o.stdout.to_lowercase().contains("passw0rd"),
            "a password reached the screen: {}",
            o.stderr
        );
    }
    assert_eq!(disk_tree(&dir), before, "a refused hint changed files");
    assert_eq!(failed_attempts(&dir), 0);
}

/// A person at the terminal is shown the hint in place and asked whether to
/// change it; the answer is typed at the prompt (in-process, simulated Mac).
#[cfg(feature = "testing")]
#[test]
fn a_person_is_shown_the_hint_and_asked() {
    use common::inproc::{run_engine_as, Scripted};
    let (_t, dir) = mac("all-old");
    let mut args = vec!["--simulate", dir.to_str().unwrap()];
    args.extend_from_slice(RECONCILE);
    args.extend_from_slice(&["--hint", "the old one"]);
    assert_eq!(run(&args, &format!("{OLD}\n{NEW}\n")).code, Some(0));
    // The directory password changes back (NEW becomes the OLD of this run).
    let opts = fvsync::engine::cmd::reconcile::Opts {
        sel: fvsync::engine::UserSel {
            user: "alice".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let src = Scripted::person(&[NEW, NEW, OLD, OLD], &[true, true], &["the third one"]);
    let o = run_engine_as(&dir, &opts, false, src, fvsync::cli::reconcile);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let screen = format!("{}{}", o.stdout, o.stderr);
    assert!(
        screen.contains("alice's password hint is \"the old one\""),
        "{screen}"
    );
    assert_eq!(
        o.questions,
        [
            "Change the hint?",
            "New hint (empty: no hint): ",
            "Apply this plan?"
        ],
        "{screen}"
    );
    assert_eq!(record_hint(&dir).as_deref(), Some("the third one"));
    assert_eq!(keybag_hint(&dir).as_deref(), Some("the third one"));
    assert!(fv_accepts(&dir, ALICE_UUID, OLD));

    // Answering no keeps it.
    let src = Scripted::person(&[OLD, OLD, NEW, NEW], &[false, true], &[]);
    let o = run_engine_as(&dir, &opts, false, src, fvsync::cli::reconcile);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.questions, ["Change the hint?", "Apply this plan?"]);
    assert_eq!(record_hint(&dir).as_deref(), Some("the third one"));
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
}
