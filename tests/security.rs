//! The security findings that are not refusals (the hostile catalogue holds
//! those): what fvsync writes stays bound to the user and to its own folders,
//! a planted iteration count does not weaken NEW's hash, and the backups that
//! hold OLD's secrets can be purged. Needs `--features testing`.
#![cfg(feature = "testing")]

mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn set_iterations(dir: &std::path::Path, n: u64) {
    let p = record_path(dir, "alice");
    let mut rec = plist::Value::from_file(&p).unwrap();
    let d = rec.as_dictionary_mut().unwrap();
    let blob = d["ShadowHashData"].as_array().unwrap()[0]
        .as_data()
        .unwrap()
        .to_vec();
    let mut inner = plist::Value::from_reader(std::io::Cursor::new(blob)).unwrap();
    for e in inner.as_dictionary_mut().unwrap().values_mut() {
        e.as_dictionary_mut()
            .unwrap()
            .insert("iterations".into(), plist::Value::Integer(n.into()));
    }
    let mut out = Vec::new();
    inner.to_writer_binary(&mut out).unwrap();
    d.insert(
        "ShadowHashData".into(),
        plist::Value::Array(vec![plist::Value::Data(out)]),
    );
    rec.to_file_binary(&p).unwrap();
}

fn iterations(dir: &std::path::Path) -> Vec<u64> {
    let rec = plist::Value::from_file(record_path(dir, "alice")).unwrap();
    let blob = rec.as_dictionary().unwrap()["ShadowHashData"]
        .as_array()
        .unwrap()[0]
        .as_data()
        .unwrap()
        .to_vec();
    let inner = plist::Value::from_reader(std::io::Cursor::new(blob)).unwrap();
    inner
        .as_dictionary()
        .unwrap()
        .values()
        .map(|e| {
            e.as_dictionary().unwrap()["iterations"]
                .as_unsigned_integer()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_planted_iteration_count_does_not_weaken_new() {
    // A fast test Mac declares 1000 as its floor; the record says 1.
    let (_t, dir) = mac("all-old");
    set_iterations(&dir, 1);
    // The hash for 1 iteration does not match OLD any more: make OLD's hash
    // again at 1 iteration, as a planted record would have it.
    let sh = fvsync::formats::shadowhash::generate(OLD.as_bytes(), 1, 1).unwrap();
    let p = record_path(&dir, "alice");
    let mut rec = fvsync::formats::record::UserRecord::parse(&std::fs::read(&p).unwrap()).unwrap();
    rec.set_shadow_hash(&sh).unwrap();
    std::fs::write(&p, rec.to_bytes().unwrap()).unwrap();
    let o = reconcile(&dir, &[], OLD, NEW);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(login_accepts(&dir, "alice", NEW), (true, true));
    assert!(
        iterations(&dir).iter().all(|&n| n >= 1000),
        "{:?}",
        iterations(&dir)
    );
    // The OLD verifier kept for undo is not weak either.
    let backups = data_root(&dir).join("private/var/db/fvsync/backups");
    for e in std::fs::read_dir(&backups).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".old-verifier.plist") {
            let sh = fvsync::formats::shadowhash::ShadowHash::parse(&std::fs::read(&p).unwrap())
                .unwrap();
            assert!(sh.salted.unwrap().iterations >= 1000);
        }
    }
}

#[test]
fn the_keychain_is_written_back_private_and_the_users() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("needs root (real owners); skipped");
        return;
    }
    let (_t, dir) = mac("all-old");
    let kc = keychain_path(&dir, "alice");
    std::fs::set_permissions(&kc, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = reconcile(&dir, &[], OLD, NEW);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let m = std::fs::metadata(&kc).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600);
    assert_eq!((m.uid(), m.gid()), (501, 20));
    assert!(keychain_accepts(&dir, "alice", NEW));
}

#[test]
fn a_planted_log_folder_link_or_hard_linked_log_is_never_written_through() {
    // private/var/log is a link elsewhere: the run is done, the audit line is
    // a warning, and nothing is written through the link.
    let (t, dir) = mac("all-old");
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let log = data_root(&dir).join("private/var/log");
    std::fs::remove_dir_all(&log).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &log).unwrap();
    let o = reconcile(&dir, &[], OLD, NEW);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stderr.contains("the audit log could not be written"),
        "{}",
        o.stderr
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));

    // fvsync.log is a hard link to another file: never appended to.
    let (t, dir) = mac("all-old");
    let other = t.path().join("other.txt");
    std::fs::write(&other, b"someone else's file\n").unwrap();
    let log = data_root(&dir).join("private/var/log/fvsync.log");
    std::fs::hard_link(&other, &log).unwrap();
    let o = reconcile(&dir, &[], OLD, NEW);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("hard links"), "{}", o.stderr);
    assert_eq!(std::fs::read(&other).unwrap(), b"someone else's file\n");
}

#[test]
fn backups_are_kept_until_purged() {
    let (_t, dir) = mac("all-old");
    reconcile_ok(&dir, &[], OLD, NEW);
    let backups = data_root(&dir).join("private/var/db/fvsync/backups");
    let count = || std::fs::read_dir(&backups).map(|d| d.count()).unwrap_or(0);
    assert_eq!(count(), 3, "record, keychain, OLD verifier");
    // verify, in sync, says they are there and how to remove them.
    let o = cmd(
        &dir,
        &["verify", "--user", "alice", "--password-stdin"],
        &[NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stdout);
    assert!(
        o.stdout.contains("still keeps 3 backup files of alice"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("purge --user alice"), "{}", o.stdout);
    // A dry run lists them and removes nothing.
    let o = cmd(
        &dir,
        &[
            "--json",
            "purge",
            "--user",
            "alice",
            "--password-stdin",
            "--dry-run",
        ],
        &[NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(json(&o)["backups"].as_array().unwrap().len(), 3);
    assert_eq!(count(), 3);
    // Without --yes at no terminal: refused, nothing removed.
    let o = cmd(
        &dir,
        &["purge", "--user", "alice", "--password-stdin"],
        &[NEW],
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert_eq!(count(), 3);
    let o = cmd(
        &dir,
        &[
            "--json",
            "purge",
            "--user",
            "alice",
            "--password-stdin",
            "--yes",
        ],
        &[NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(json(&o)["removed"].as_array().unwrap().len(), 3);
    assert_eq!(count(), 0);
    // Undo is no longer possible (its backups are gone), and says so.
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    assert!(
        o.stderr.contains("no reconcile of alice to undo"),
        "{}",
        o.stderr
    );
    // Nothing else changed.
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn an_open_runs_backups_are_kept_by_purge() {
    let (_t, dir) = mac("all-old");
    let o = cmd_env(
        &dir,
        &["reconcile", "--user", "alice", "--password-stdin", "--yes"],
        &[OLD, NEW],
        &[("FVSYNC_FAILPOINT", "after-record:abort")],
    );
    assert_eq!(o.code, None);
    let o = cmd(
        &dir,
        &[
            "--json",
            "purge",
            "--user",
            "alice",
            "--password-stdin",
            "--yes",
        ],
        &[NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(json(&o)["removed"].as_array().unwrap().is_empty());
    // The interrupted run still finishes, from its own backups.
    reconcile_ok(&dir, &[], OLD, NEW);
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}
