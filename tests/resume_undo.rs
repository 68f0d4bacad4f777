//! Resume, rollback and undo when runs interleave or files go missing
//! (regressions from the safety review): undo never sets FileVault to an
//! unconfirmed OLD; a run rolls back to where *it* started; a change whose
//! outcome is unknown is reported as such (exit 7), not as rolled back; a
//! crash between a write and its journal mark is settled by the next run.
#![cfg(feature = "testing")]

mod common;
use common::*;

const NEW2: &str = "Newer-Passw0rd!";

#[test]
fn undo_refuses_an_old_that_the_reconcile_did_not_replace() {
    let (_t, dir) = mac("all-old");
    reconcile_ok(&dir, &[], OLD, NEW);
    let before = disk_tree(&dir);
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, "Typo-Passw0rd!"],
    );
    assert_eq!(o.code, Some(4), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("not the password the last reconcile replaced"),
        "{}",
        o.stderr
    );
    assert_eq!(disk_tree(&dir), before, "a refused undo changed files");
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, NEW],
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    // The right OLD works.
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(alice_state(&dir, true), ("old", "old", "old", "old"));
}

#[test]
fn undo_with_a_missing_backup_changes_nothing() {
    let (_t, dir) = mac("all-old");
    reconcile_ok(&dir, &[], OLD, NEW);
    let backups = data_root(&dir).join("private/var/db/fvsync/backups");
    for e in std::fs::read_dir(&backups).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with("-0.plist")
            || (p.extension().is_some_and(|x| x == "plist")
                && !p.to_string_lossy().contains("verifier"))
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let before = disk_tree(&dir);
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    assert!(
        o.stderr.contains("user record backup of run")
            && o.stderr.contains("cannot be used; nothing was changed"),
        "{}",
        o.stderr
    );
    assert_eq!(disk_tree(&dir), before);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn a_run_with_other_passwords_rolls_back_to_where_it_started() {
    let (_t, dir) = mac("all-old");
    // Run 1 (OLD -> NEW) dies after writing the record: FileVault and login on NEW.
    let o = reconcile_env(
        &dir,
        &[],
        OLD,
        NEW,
        &[("FVSYNC_FAILPOINT", "after-record:abort")],
    );
    assert_eq!(o.code, None);
    // Run 2 (NEW -> NEW2) fails after its own record write and rolls back.
    let o = reconcile_env(
        &dir,
        &[],
        NEW,
        NEW2,
        &[("FVSYNC_FAILPOINT", "after-record:error")],
    );
    assert_eq!(o.code, Some(6), "{}", o.stderr);
    assert!(o.stdout.contains("another OLD password"), "{}", o.stdout);
    // Back to where run 2 started: FileVault and login accept NEW (run 2's OLD).
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
    assert_eq!(login_accepts(&dir, "alice", NEW), (true, true));
}

#[test]
fn a_crash_between_the_record_write_and_its_mark_is_settled() {
    let (_t, dir) = mac("all-old");
    let rec = std::fs::read(record_path(&dir, "alice")).unwrap();
    let o = reconcile_env(
        &dir,
        &[],
        OLD,
        NEW,
        &[("FVSYNC_FAILPOINT", "record-written:abort")],
    );
    assert_eq!(o.code, None);
    reconcile_ok(&dir, &[], OLD, NEW);
    let j =
        std::fs::read_to_string(data_root(&dir).join("private/var/db/fvsync/alice.journal.json"))
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    let login = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "login")
        .unwrap();
    assert_eq!(login["done"], true, "{j}");
    // So undo puts the record back too.
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(std::fs::read(record_path(&dir, "alice")).unwrap(), rec);
    assert_eq!(alice_state(&dir, true), ("old", "old", "old", "old"));
}

#[test]
fn an_unknown_filevault_outcome_is_exit_7_not_rolled_back() {
    // diskutil changes the passphrase, then hangs past the timeout.
    let (_t, dir) = mac("all-old");
    // A link named diskutil-slow-change: the emulator takes the mode from it.
    let emu = env!("CARGO_BIN_EXE_fvsync-diskutil-emulator");
    let w = dir.parent().unwrap().join("diskutil-slow-change");
    std::os::unix::fs::symlink(emu, &w).unwrap();
    // A timeout long enough for the change itself on a loaded machine; the
    // emulator then sleeps far longer.
    let o = reconcile_through(&w, &["--diskutil-timeout", "10"], OLD, NEW, &[]);
    assert_eq!(o.code, Some(7), "{}", o.stderr);
    assert!(o.stderr.contains("may or may not"), "{}", o.stderr);
    assert!(fv_accepts(&dir, ALICE_UUID, NEW), "the change did happen");
    let j =
        std::fs::read_to_string(data_root(&dir).join("private/var/db/fvsync/alice.journal.json"))
            .unwrap();
    assert!(j.contains("\"state\": \"open\""), "{j}");
    // A plain re-run finishes.
    let ok = dir.parent().unwrap().join("diskutil");
    let o = reconcile_through(&ok, &[], OLD, NEW, &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn undo_dry_run_shows_the_run_and_what_it_would_put_back_and_changes_nothing() {
    let (_t, dir) = mac("all-old");
    reconcile_ok(&dir, &["--hint", "the old hint"], OLD, NEW);
    let before = disk_tree(&dir);
    let o = cmd_env(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--dry-run"],
        &[NEW, OLD],
        &[("COLUMNS", "80")],
    );
    assert_eq!(o.code, Some(0), "{}\n{}", o.stdout, o.stderr);
    let screen = format!("{}{}", o.stdout, o.stderr);
    for want in [
        "The reconcile ",
        " UTC (",
        "Undo would put back (dry run: nothing will be changed):",
        "  - FileVault: NEW -> OLD",
        "  - login keychain: NEW -> OLD (the file as it was)",
        "Dry run: nothing was changed.",
    ] {
        assert!(screen.contains(want), "{want:?} not in:\n{screen}");
    }
    assert!(
        screen.contains("  - password hint: the one before the reconcile"),
        "the hint it would put back:\n{screen}"
    );
    assert_eq!(disk_tree(&dir), before, "a dry-run undo changed files");
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
    // The real undo is still there to be made.
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(alice_state(&dir, true), ("old", "old", "old", "old"));
}
