//! The rehearsal through the Platform API, over the emulated diskutil and
//! hdiutil: for each framing mode of the emulated diskutil, the user's volume
//! is changed only with a framing that passed on a throwaway volume, no
//! attempt of the user's volume is spent on a framing test, and with
//! `framing-none` nothing of the simulated Mac changes at all. (The engine
//! does not call `rehearse()` yet, except through its transitional hook; these
//! tests drive `DiskutilMac` directly.) Needs `--features testing`.
#![cfg(feature = "testing")]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fvsync::diskutil::DiskutilMac;
use fvsync::platform::{Attempt, Platform, RehearsalOutcome, Volume};
use fvsync::secret::Password;

/// Links `diskutil[-dmode]` and `hdiutil[-hmode]` next to the Mac.
fn links(dir: &Path, dmode: &str, hmode: &str) -> (PathBuf, PathBuf) {
    let emu = env!("CARGO_BIN_EXE_fvsync-diskutil-emulator");
    let top = dir.parent().unwrap();
    let name = |t: &str, m: &str| {
        if m.is_empty() {
            t.to_string()
        } else {
            format!("{t}-{m}")
        }
    };
    let d = top.join(name("diskutil", dmode));
    let h = top.join(name("hdiutil", hmode));
    for l in [&d, &h] {
        if std::fs::symlink_metadata(l).is_err() {
            std::os::unix::fs::symlink(emu, l).unwrap();
        }
    }
    (d, h)
}

fn backend(dir: &Path, dmode: &str, hmode: &str) -> DiskutilMac {
    let (d, h) = links(dir, dmode, hmode);
    let cache = dir.parent().unwrap().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    DiskutilMac::new(d, h, Duration::from_secs(30)).with_cache_dir(cache)
}

fn data_volume(m: &DiskutilMac) -> Volume {
    m.containers()
        .unwrap()
        .into_iter()
        .flat_map(|c| c.volumes)
        .find(|v| v.device == "disk3s5")
        .unwrap()
}

/// Every call the emulator logged: (tool, argv joined).
fn calls(dir: &Path) -> Vec<(String, String)> {
    emulator_calls(dir)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let argv: Vec<&str> = v["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            (
                v["tool"].as_str().unwrap_or("diskutil").to_string(),
                argv.join(" "),
            )
        })
        .collect()
}

fn user_changes(dir: &Path) -> Vec<String> {
    calls(dir)
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a.starts_with("apfs changePassphrase disk3s5"))
        .collect()
}

fn canary_left(dir: &Path) -> usize {
    let p = dir.parent().unwrap().join("emu/canary.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|_| b"{}".to_vec())).unwrap();
    v["disks"].as_array().map_or(0, Vec::len)
}

fn old() -> Password {
    Password::for_tests(OLD)
}
fn new() -> Password {
    Password::for_tests(NEW)
}

/// Rehearses in `dmode`; checks nothing of the Mac changed and the throwaway
/// disk is gone; returns the outcome and the backend.
fn rehearsed(
    scenario: &str,
    dmode: &str,
) -> (tempfile::TempDir, PathBuf, DiskutilMac, RehearsalOutcome) {
    let (t, dir) = mac(scenario);
    let mut m = backend(&dir, dmode, "");
    let before = tree(&dir);
    let r = m.rehearse().unwrap();
    assert_eq!(
        tree(&dir),
        before,
        "the rehearsal changed the simulated Mac"
    );
    assert!(
        user_changes(&dir).is_empty(),
        "a framing test touched the user's volume"
    );
    assert_eq!(canary_left(&dir), 0, "the throwaway disk was left attached");
    let text = r.transcript.join("\n");
    if std::env::var("SHOW_TRANSCRIPT").is_ok() {
        eprintln!("{text}");
    }
    assert!(
        !text.contains("Pässwörd"),
        "a throwaway passphrase is in the transcript"
    );
    for pw in TYPED {
        assert!(!text.contains(pw));
    }
    assert!(
        text.contains("hdiutil") && text.contains("attach -nomount ram://65536"),
        "{text}"
    );
    assert!(text.contains("detach /dev/disk100"), "{text}");
    (t, dir, m, r.outcome)
}

#[test]
fn framing_lines_passes_with_stdin_lines_and_changes_the_volume_that_way() {
    let (_t, dir, mut m, outcome) = rehearsed("all-old", "framing-lines");
    assert_eq!(
        outcome,
        RehearsalOutcome::Passed {
            framing: "stdin-lines".into(),
            cached: false
        }
    );
    let v = data_volume(&m);
    assert_eq!(
        m.change_passphrase(&v, ALICE_UUID, &old(), &new()).unwrap(),
        Attempt::Accepted
    );
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
    assert!(!fv_accepts(&dir, ALICE_UUID, OLD));
    assert_eq!(failed_attempts(&dir), 0);
    let ch = user_changes(&dir);
    assert_eq!(ch.len(), 1);
    assert!(
        ch[0].ends_with("-oldStdinpassphrase -newStdinpassphrase"),
        "{ch:?}"
    );
}

#[test]
fn framing_eof_fails_stdin_lines_on_the_canary_and_passes_pty_prompts() {
    let (_t, dir, mut m, outcome) = rehearsed("all-old", "framing-eof");
    assert_eq!(
        outcome,
        RehearsalOutcome::Passed {
            framing: "pty-prompts".into(),
            cached: false
        }
    );
    // stdin-lines was tried on the throwaway volume only (and failed there).
    let canary_lines = calls(&dir)
        .iter()
        .filter(|(_, a)| {
            a.starts_with("apfs changePassphrase disk101") && a.ends_with("-newStdinpassphrase")
        })
        .count();
    assert!(canary_lines >= 1);
    let v = data_volume(&m);
    assert_eq!(
        m.change_passphrase(&v, ALICE_UUID, &old(), &new()).unwrap(),
        Attempt::Accepted
    );
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
    assert_eq!(
        failed_attempts(&dir),
        0,
        "an attempt of the user's volume was spent"
    );
    let ch = user_changes(&dir);
    assert_eq!(
        ch,
        ["apfs changePassphrase disk3s5 -user A11CE000-1D2E-4F3A-9B8C-0123456789AB"]
    );
}

#[test]
fn framing_eof_without_a_rehearsal_would_have_burned_an_attempt() {
    // What the rehearsal protects against: the same diskutil, stdin-lines on
    // the user's volume (accepted unrehearsed) spends one Secure Enclave attempt.
    let (_t, dir) = mac("all-old");
    let mut m = backend(&dir, "framing-eof", "");
    m.accept_unrehearsed();
    let v = data_volume(&m);
    assert_eq!(
        m.change_passphrase(&v, ALICE_UUID, &old(), &new()).unwrap(),
        Attempt::Rejected
    );
    assert_eq!(failed_attempts(&dir), 1);
    assert!(fv_accepts(&dir, ALICE_UUID, OLD));
}

#[test]
fn framing_prompt_passes_pty_prompts() {
    let (_t, dir, mut m, outcome) = rehearsed("all-old", "framing-prompt");
    assert_eq!(
        outcome,
        RehearsalOutcome::Passed {
            framing: "pty-prompts".into(),
            cached: false
        }
    );
    let v = data_volume(&m);
    assert_eq!(
        m.change_passphrase(&v, ALICE_UUID, &old(), &new()).unwrap(),
        Attempt::Accepted
    );
    assert!(fv_accepts(&dir, ALICE_UUID, NEW));
    assert_eq!(failed_attempts(&dir), 0);
}

#[test]
fn framing_none_fails_and_nothing_of_the_mac_changes() {
    let (_t, dir, mut m, outcome) = rehearsed("all-old", "framing-none");
    assert!(
        matches!(outcome, RehearsalOutcome::Failed { .. }),
        "{outcome:?}"
    );
    let before = tree(&dir);
    let v = data_volume(&m);
    let e = m
        .change_passphrase(&v, ALICE_UUID, &old(), &new())
        .unwrap_err();
    assert_eq!(e.kind(), fvsync::error::ErrorKind::Refused);
    assert_eq!(tree(&dir), before);
    assert!(user_changes(&dir).is_empty());
    assert_eq!(failed_attempts(&dir), 0);
    // Even accepting "unrehearsed" afterwards does not override a failed rehearsal
    // until the engine decides so: accept_unrehearsed sets the default framing.
}

#[test]
fn no_change_before_a_rehearsal_or_a_confirmation() {
    let (_t, dir) = mac("all-old");
    let mut m = backend(&dir, "", "");
    let v = data_volume(&m);
    let n = calls(&dir).len();
    let e = m
        .change_passphrase(&v, ALICE_UUID, &old(), &new())
        .unwrap_err();
    assert_eq!(e.kind(), fvsync::error::ErrorKind::Refused);
    assert!(e.message().contains("rehearsed"), "{}", e.message());
    assert_eq!(calls(&dir).len(), n, "diskutil was called");
    m.accept_unrehearsed();
    assert_eq!(
        m.change_passphrase(&v, ALICE_UUID, &old(), &new()).unwrap(),
        Attempt::Accepted
    );
}

#[test]
fn unavailable_without_hdiutil_and_a_disk_image_without_a_ram_disk() {
    let (_t, dir) = mac("all-old");
    let (d, _) = links(&dir, "", "");
    let mut m = DiskutilMac::new(
        d,
        PathBuf::from("/nonexistent/hdiutil"),
        Duration::from_secs(30),
    )
    .with_cache_dir(dir.parent().unwrap().to_path_buf());
    let r = m.rehearse().unwrap();
    assert!(
        matches!(&r.outcome, RehearsalOutcome::Unavailable { why } if why.contains("hdiutil")),
        "{:?}",
        r.outcome
    );
    let mut m = backend(&dir, "", "broken");
    assert!(matches!(
        m.rehearse().unwrap().outcome,
        RehearsalOutcome::Unavailable { .. }
    ));
    // No RAM disk: a disk image in a temporary folder, deleted afterwards.
    let mut m = backend(&dir, "", "noram");
    let r = m.rehearse().unwrap();
    assert_eq!(
        r.outcome,
        RehearsalOutcome::Passed {
            framing: "stdin-lines".into(),
            cached: false
        }
    );
    let text = r.transcript.join("\n");
    assert!(text.contains("create -size 32m -fs APFS"), "{text}");
    let img = text
        .lines()
        .find_map(|l| l.strip_prefix("# deleted '"))
        .map(|p| p.trim_end_matches('\'').to_string())
        .expect(&text);
    assert!(std::fs::metadata(&img).is_err(), "{img} is still there");
    assert_eq!(canary_left(&dir), 0);
    assert_eq!(failed_attempts(&dir), 0);
}

#[test]
fn a_second_run_in_the_session_takes_the_cached_verdict() {
    let (_t, dir, _m, outcome) = rehearsed("all-old", "framing-eof");
    assert!(matches!(outcome, RehearsalOutcome::Passed { .. }));
    let cache = dir.parent().unwrap().join("cache");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let body = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!body.contains("Pässwörd") && !body.contains(OLD));
    let n = calls(&dir).len();
    let mut m2 = backend(&dir, "framing-eof", "");
    let r = m2.rehearse().unwrap();
    assert_eq!(
        r.outcome,
        RehearsalOutcome::Passed {
            framing: "pty-prompts".into(),
            cached: true
        }
    );
    assert_eq!(
        calls(&dir).len(),
        n,
        "the cached verdict ran diskutil again"
    );
    let v = data_volume(&m2);
    assert_eq!(
        m2.change_passphrase(&v, ALICE_UUID, &old(), &new())
            .unwrap(),
        Attempt::Accepted
    );
    // A cache file others can write is not trusted.
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut m3 = backend(&dir, "framing-eof", "");
    let r = m3.rehearse().unwrap();
    assert_eq!(
        r.outcome,
        RehearsalOutcome::Passed {
            framing: "pty-prompts".into(),
            cached: false
        }
    );
}

#[test]
fn selftest_repeats_the_rehearsal() {
    let (_t, dir, mut m, _) = rehearsed("all-old", "framing-lines");
    let n = calls(&dir).len();
    let r = fvsync::diskutil::selftest(&mut m);
    assert_eq!(
        r.outcome,
        RehearsalOutcome::Passed {
            framing: "stdin-lines".into(),
            cached: false
        }
    );
    assert!(calls(&dir).len() > n);
}

#[test]
fn wrong_passphrase_messages_are_learned_on_the_canary() {
    // odd-messages: diskutil says "wrong passphrase" in words fvsync does not know.
    let (_t, dir) = mac("all-old");
    let mut plain = backend(&dir, "odd-messages", "");
    let v = data_volume(&plain);
    // Unrehearsed: not understood, so the lock state decides (still locked:
    // counted as a spent attempt), with one more call.
    let n = calls(&dir).len();
    assert_eq!(
        plain
            .unlock(&v, ALICE_UUID, &Password::for_tests("Wrong-1"))
            .unwrap(),
        Attempt::Rejected
    );
    assert_eq!(failed_attempts(&dir), 1);
    let after: Vec<String> = calls(&dir)[n..].iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1], "info -plist disk3s5");
    // Rehearsed: the text was learned on the throwaway volume.
    let mut m = backend(&dir, "odd-messages", "");
    let r = m.rehearse().unwrap();
    assert!(
        r.transcript.join("\n").contains("learned the message"),
        "{:?}",
        r.transcript
    );
    assert_eq!(
        failed_attempts(&dir),
        1,
        "the rehearsal spent a user attempt"
    );
    let n = calls(&dir).len();
    assert_eq!(
        m.unlock(&v, ALICE_UUID, &Password::for_tests("Wrong-2"))
            .unwrap(),
        Attempt::Rejected
    );
    assert_eq!(calls(&dir).len(), n + 1);
    assert_eq!(failed_attempts(&dir), 2);
    // The right passphrase still unlocks.
    assert_eq!(m.unlock(&v, ALICE_UUID, &old()).unwrap(), Attempt::Accepted);
}

#[test]
fn corestorage_is_refused_clearly() {
    let (_t, dir) = mac("all-old");
    let m = backend(&dir, "corestorage", "");
    let e = m.containers().unwrap_err();
    assert_eq!(e.kind(), fvsync::error::ErrorKind::Refused);
    assert!(e.message().contains("CoreStorage"), "{}", e.message());
}

#[test]
fn containers_are_labelled_internal_or_external() {
    let (_t, dir) = mac("multi-volume");
    let m = backend(&dir, "", "");
    let cs = m.containers().unwrap();
    assert_eq!(cs[0].internal, Some(true));
    assert!(cs[1..].iter().all(|c| c.internal == Some(false)), "{cs:?}");
    let sim = fvsync::sim::SimMac::open(&dir).unwrap();
    let sc = sim.containers().unwrap();
    assert_eq!(sc[0].internal, Some(true));
    assert!(sc[1..].iter().all(|c| c.internal == Some(false)));
}

#[test]
fn ownership_off_is_reported_by_both_backends() {
    let (_t, dir) = mac("all-old");
    let p = dir.join("SimulatedMac.plist");
    let mut v = plist::Value::from_file(&p).unwrap();
    for c in v.as_dictionary_mut().unwrap()["Containers"]
        .as_array_mut()
        .unwrap()
    {
        for vol in c.as_dictionary_mut().unwrap()["Volumes"]
            .as_array_mut()
            .unwrap()
        {
            let d = vol.as_dictionary_mut().unwrap();
            if d["DeviceIdentifier"].as_string() == Some("disk3s5") {
                d.insert(
                    "GlobalPermissionsEnabled".into(),
                    plist::Value::Boolean(false),
                );
            }
        }
    }
    v.to_file_xml(&p).unwrap();
    let m = backend(&dir, "", "");
    let vol = data_volume(&m);
    assert!(!m.ownership_enabled(&vol).unwrap());
    let sim = fvsync::sim::SimMac::open(&dir).unwrap();
    assert!(!sim.ownership_enabled(&vol).unwrap());
    let sys = m
        .containers()
        .unwrap()
        .into_iter()
        .flat_map(|c| c.volumes)
        .find(|v| v.device == "disk3s1")
        .unwrap();
    assert!(m.ownership_enabled(&sys).unwrap());
}

#[test]
fn the_preboot_check_finds_the_user() {
    let (_t, dir) = mac("fv-old-login-new");
    let mut m = backend(&dir, "", "");
    let vol = data_volume(&m);
    assert_eq!(
        fvsync::engine::target::preboot_lists_user(&mut m, &vol, ALICE_UUID).unwrap(),
        Some(true)
    );
    assert_eq!(
        fvsync::engine::target::preboot_lists_user(
            &mut m,
            &vol,
            "0BADBEEF-0000-4000-8000-000000000000"
        )
        .unwrap(),
        Some(false)
    );
}

#[test]
fn listings_are_read_once_until_a_change() {
    let (_t, dir) = mac("all-old");
    let mut m = backend(&dir, "", "");
    let v = data_volume(&m);
    let n = calls(&dir).len();
    let _ = m.containers().unwrap();
    let _ = m.crypto_users(&v).unwrap();
    let _ = m.crypto_users(&v).unwrap();
    assert!(m.files(&v).is_err()); // locked: known from the listing
    let after: Vec<String> = calls(&dir)[n..].iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(after, ["apfs listCryptoUsers -plist disk3s5"]);
    assert_eq!(m.unlock(&v, ALICE_UUID, &old()).unwrap(), Attempt::Accepted);
    let root = m.files(&v).unwrap();
    assert!(root.ends_with("disk3s5"));
    let _ = m.files(&v).unwrap();
    let after: Vec<String> = calls(&dir)[n..].iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        after.iter().filter(|a| *a == "info -plist disk3s5").count(),
        1,
        "{after:?}"
    );
}
