//! The engine in-process, over both backends from one parameterised test: the
//! simulated Mac, and the diskutil backend over the emulated diskutil, each
//! wrapped in a `FaultyPlatform` that makes chosen platform calls fail (before
//! or after doing their work) or answer as the Secure Enclave would. What
//! each run leaves is checked independently (tests/common: the keybag, the
//! record and the keychain read with the crypto crates directly).
#![cfg(feature = "testing")]

mod common;
use common::inproc::{alice, alice_reconcile, run_on, InProc};
use common::*;

use std::path::Path;
use std::time::Duration;

use fvsync::diskutil::DiskutilMac;
use fvsync::error::ErrorKind;
use fvsync::faulty::{Fault, Faults, FaultyPlatform};
use fvsync::platform::{Attempt, Platform};
use fvsync::sim::SimMac;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sim,
    Diskutil,
}

const BACKENDS: [Backend; 2] = [Backend::Sim, Backend::Diskutil];

/// The platform for `dir`'s simulated Mac through `b`, failing as `faults` says.
fn platform(b: Backend, dir: &Path, faults: Faults) -> (Box<dyn Platform>, String) {
    match b {
        Backend::Sim => (
            Box::new(FaultyPlatform::new(SimMac::open(dir).unwrap(), faults)),
            format!("fvsync --simulate {}", dir.display()),
        ),
        Backend::Diskutil => {
            let top = dir.parent().unwrap();
            let cache = top.join("cache");
            std::fs::create_dir_all(&cache).unwrap();
            let m = DiskutilMac::new(
                top.join("diskutil"),
                top.join("hdiutil"),
                Duration::from_secs(30),
            )
            .with_cache_dir(cache);
            (
                Box::new(FaultyPlatform::new(m, faults)),
                format!("fvsync --diskutil {}", top.join("diskutil").display()),
            )
        }
    }
}

fn reconcile_with(b: Backend, dir: &Path, faults: Faults) -> InProc {
    let (mut p, prefix) = platform(b, dir, faults);
    run_on(
        p.as_mut(),
        &prefix,
        &alice_reconcile(),
        true,
        &[OLD, NEW],
        fvsync::cli::reconcile,
    )
}

fn opens(dir: &Path) -> bool {
    let fv = fv_accepts(dir, ALICE_UUID, OLD) || fv_accepts(dir, ALICE_UUID, NEW);
    let (lo, so) = login_accepts(dir, "alice", OLD);
    let (ln, sn) = login_accepts(dir, "alice", NEW);
    fv && (lo || ln) && (so || sn)
}

#[test]
fn reconcile_and_undo_in_process() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let o = reconcile_with(b, &dir, Faults::default());
        assert_eq!(o.code, 0, "{b:?}: {}\n{}", o.stdout, o.stderr);
        assert_eq!(
            alice_state(&dir, true),
            ("new", "new", "new", "new"),
            "{b:?}"
        );
        let v = o.json();
        assert_eq!(
            v["changed"],
            serde_json::json!(["filevault", "login", "keychain", "preboot"])
        );
        // Undo puts it all back (NEW, then OLD on the lines).
        let (mut p, prefix) = platform(b, &dir, Faults::default());
        let undo = fvsync::engine::cmd::undo::Opts {
            sel: alice(),
            ..Default::default()
        };
        let o = run_on(
            p.as_mut(),
            &prefix,
            &undo,
            true,
            &[NEW, OLD],
            fvsync::cli::undo,
        );
        assert_eq!(o.code, 0, "{b:?}: {}", o.stderr);
        assert_eq!(
            alice_state(&dir, true),
            ("old", "old", "old", "old"),
            "{b:?}"
        );
    }
}

#[test]
fn a_change_that_took_effect_but_did_not_answer_is_exit_7_and_a_rerun_finishes() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let faults = Faults {
            change_passphrase: Some(Fault::After(ErrorKind::Failure)),
            ..Faults::default()
        };
        let o = reconcile_with(b, &dir, faults);
        assert_eq!(o.code, 7, "{b:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("may or may not have taken it"),
            "{b:?}: {}",
            o.stderr
        );
        assert!(
            o.stderr.contains("reconcile --user alice` again"),
            "{b:?}: {}",
            o.stderr
        );
        assert!(opens(&dir), "{b:?}: locked out");
        assert!(
            fv_accepts(&dir, ALICE_UUID, NEW),
            "{b:?}: the change did happen"
        );
        // Nothing rolled back: the record is still OLD's.
        assert_eq!(login_accepts(&dir, "alice", OLD), (true, true), "{b:?}");
        let o = reconcile_with(b, &dir, Faults::default());
        assert_eq!(o.code, 0, "{b:?}: {}", o.stderr);
        assert_eq!(
            alice_state(&dir, true),
            ("new", "new", "new", "new"),
            "{b:?}"
        );
    }
}

#[test]
fn a_change_refused_for_the_change_is_rolled_back_with_nothing_changed() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let rec = std::fs::read(record_path(&dir, "alice")).unwrap();
        let faults = Faults {
            change_passphrase: Some(Fault::Answer(Attempt::Rejected)),
            ..Faults::default()
        };
        let o = reconcile_with(b, &dir, faults);
        assert_eq!(o.code, 6, "{b:?}: {}", o.stderr);
        let v = o.json();
        assert_eq!(v["filevault_attempts"]["failed"], 1, "{b:?}: {v}");
        assert_eq!(
            alice_state(&dir, true),
            ("old", "old", "old", "old"),
            "{b:?}"
        );
        assert_eq!(std::fs::read(record_path(&dir, "alice")).unwrap(), rec);
    }
}

#[test]
fn a_check_of_new_refused_right_after_the_change_is_exit_7() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let faults = Faults {
            verify: Some(Fault::Answer(Attempt::Rejected)),
            ..Faults::default()
        };
        let o = reconcile_with(b, &dir, faults);
        assert_eq!(o.code, 7, "{b:?}: {}", o.stderr);
        assert!(opens(&dir), "{b:?}");
        let o = reconcile_with(b, &dir, Faults::default());
        assert_eq!(o.code, 0, "{b:?}: {}", o.stderr);
        assert_eq!(
            alice_state(&dir, true),
            ("new", "new", "new", "new"),
            "{b:?}"
        );
    }
}

#[test]
fn a_preboot_update_that_fails_is_a_warning_not_a_rollback() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let faults = Faults {
            update_preboot: Some(Fault::Instead(ErrorKind::Failure)),
            ..Faults::default()
        };
        let o = reconcile_with(b, &dir, faults);
        assert_eq!(o.code, 0, "{b:?}: {}", o.stderr);
        assert!(
            o.stderr
                .contains("the Preboot user list could not be updated")
                && o.stderr.contains("diskutil apfs updatePreboot /"),
            "{b:?}: {}",
            o.stderr
        );
        let v = o.json();
        assert_eq!(
            v["changed"],
            serde_json::json!(["filevault", "login", "keychain"]),
            "{b:?}"
        );
        assert_eq!(
            alice_state(&dir, true),
            ("new", "new", "new", "new"),
            "{b:?}"
        );
        // A re-run in the same session has nothing left to do but the Preboot list.
        let o = reconcile_with(b, &dir, Faults::default());
        assert_eq!(o.code, 0, "{b:?}: {}", o.stderr);
    }
}

#[test]
fn throttled_at_the_first_attempt_spends_nothing_and_changes_nothing() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let before = disk_tree(&dir);
        let faults = Faults {
            unlock: Some(Fault::Answer(Attempt::Throttled)),
            ..Faults::default()
        };
        let o = reconcile_with(b, &dir, faults);
        assert_eq!(o.code, 5, "{b:?}: {}", o.stderr);
        assert_eq!(o.json()["filevault_attempts"]["used"], 0, "{b:?}");
        assert_eq!(disk_tree(&dir), before, "{b:?}");
    }
}

#[test]
fn a_preboot_volume_that_will_not_mount_is_exit_5_not_a_missing_user() {
    for b in BACKENDS {
        let (_t, dir) = mac("all-old");
        let before = disk_tree(&dir);
        let faults = Faults {
            preboot_mount: Some(Fault::Instead(ErrorKind::Failure)),
            ..Faults::default()
        };
        let o = reconcile_with(b, &dir, faults);
        assert_eq!(o.code, 5, "{b:?}: {}", o.stderr);
        let v = o.json();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("cannot read the Preboot volume's user lists for disk3s5")
                && msg.contains("cannot be mounted (injected fault"),
            "{b:?}: {v}"
        );
        assert!(
            v["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("diskutil apfs unlockVolume disk3s5"),
            "{b:?}: {v}"
        );
        assert_eq!(failed_attempts(&dir), 0, "{b:?}");
        assert_eq!(disk_tree(&dir), before, "{b:?}");
        // Once it mounts again, the same run works.
        let o = reconcile_with(b, &dir, Faults::default());
        assert_eq!(o.code, 0, "{b:?}: {}", o.stderr);
    }
}
