//! The leak test (issue 6, docs/security.md): alice's secrets are re-keyed, with
//! fvsync's own library, to marker passwords that appear nowhere else; then the
//! main flows run on the simulated Mac, once directly and once through the
//! diskutil backend and the emulated diskutil (which records the argv and the
//! environment of every child process): diagnose (text and JSON), a dry run,
//! verify (right and wrong password), a reconcile that fails and rolls back, a
//! reconcile, undo, and a reconcile again. The markers' bytes, in UTF-8,
//! UTF-16LE and UTF-16BE, must appear in no stdout, no stderr, no JSON, and no
//! file under the test's folder: the simulated Mac (records, keybags, Preboot,
//! journal, audit log, backups, keychains) and the emulator's state and call
//! log. That no flag or environment variable takes a password is checked by
//! `no_flag_or_environment_variable_takes_a_password` in tests/cli.rs.
#![cfg(feature = "testing")]

mod common;
use common::*;

use std::path::Path;

use plist::Value;

/// Marker passwords: distinctive, non-ASCII (so UTF-16 is not just ASCII with
/// zeros), within FileVault's 127 bytes.
const M_OLD: &str = "mkOLD-7f3a9c2e-\u{dc}n\u{ef}c\u{f8}d\u{e9}-Q1";
const M_NEW: &str = "mkNEW-b41d08e6-\u{3a9}\u{3bc}\u{3b5}\u{3b3}\u{3b1}-Z9";
const M_WRONG: &str = "mkWRONG-55aa01ff-\u{4e2d}\u{6587}";

fn needles() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for pw in [M_OLD, M_NEW, M_WRONG] {
        v.push((format!("{pw:?} UTF-8"), pw.as_bytes().to_vec()));
        v.push((
            format!("{pw:?} UTF-16LE"),
            pw.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ));
        v.push((
            format!("{pw:?} UTF-16BE"),
            pw.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ));
    }
    v
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn assert_clean(what: &str, bytes: &[u8]) {
    for (label, n) in needles() {
        assert!(!find(bytes, &n), "{label} leaked into {what}");
    }
}

fn scan_tree(root: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            n += scan_tree(&p);
        } else if meta.is_file() {
            assert_clean(&p.display().to_string(), &std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    n
}

/// Re-keys alice's FileVault entry, login hash and keychain from OLD to M_OLD.
fn use_markers(dir: &Path) {
    // FileVault: unwrap the KEK with OLD, wrap it again under M_OLD.
    let kp = dir.join(format!("Keybags/{DATA_UUID}.plist"));
    let mut kb = Value::from_file(&kp).unwrap();
    for u in kb.as_dictionary_mut().unwrap()["CryptoUsers"]
        .as_array_mut()
        .unwrap()
    {
        let u = u.as_dictionary_mut().unwrap();
        if u["APFSCryptoUserUUID"].as_string() != Some(ALICE_UUID) {
            continue;
        }
        let salt = u["KEKSalt"].as_data().unwrap().to_vec();
        let iters = u["KEKIterations"].as_unsigned_integer().unwrap() as u32;
        let cs = u
            .get("KEKFlags")
            .and_then(Value::as_unsigned_integer)
            .unwrap_or(0)
            & 2
            != 0;
        let kek = fvsync::crypto::apfs_unwrap_kek(
            OLD.as_bytes(),
            &salt,
            iters,
            u["WrappedKEK"].as_data().unwrap(),
            cs,
        )
        .unwrap();
        let wrapped =
            fvsync::crypto::apfs_wrap_kek(M_OLD.as_bytes(), &salt, iters, &kek, cs).unwrap();
        u.insert("WrappedKEK".into(), Value::Data(wrapped));
    }
    kb.to_file_xml(&kp).unwrap();
    // Login: a fresh ShadowHashData for M_OLD.
    let rp = record_path(dir, "alice");
    let mut rec = fvsync::formats::record::UserRecord::parse(&std::fs::read(&rp).unwrap()).unwrap();
    let sh = fvsync::formats::shadowhash::generate(M_OLD.as_bytes(), 1000, 1000).unwrap();
    rec.set_shadow_hash(&sh).unwrap();
    // The local KDC's keys (and SRP verifiers), derived from M_OLD, as a change does.
    kerberos_for(&mut rec, M_OLD);
    std::fs::write(&rp, rec.to_bytes().unwrap()).unwrap();
    // Keychain.
    let kc = keychain_path(dir, "alice");
    let b = std::fs::read(&kc).unwrap();
    let out = fvsync::formats::keychain::rekey(&b, OLD.as_bytes(), M_OLD.as_bytes()).unwrap();
    std::fs::write(&kc, out).unwrap();
    assert!(fv_accepts(dir, ALICE_UUID, M_OLD));
    assert_eq!(login_accepts(dir, "alice", M_OLD), (true, true));
    assert!(keychain_accepts(dir, "alice", M_OLD));
}

/// One run: arguments, standard input, extra environment, expected exit code.
type Step<'a> = (&'a [&'a str], String, &'a [(&'a str, &'a str)], i32);

fn flows(diskutil: bool) {
    let (t, dir) = mac("all-old");
    use_markers(&dir);
    let wrapper = dir.parent().unwrap().join("diskutil");
    let hdiutil = dir.parent().unwrap().join("hdiutil");
    let base: Vec<&str> = if diskutil {
        vec![
            "--diskutil",
            wrapper.to_str().unwrap(),
            "--hdiutil",
            hdiutil.to_str().unwrap(),
        ]
    } else {
        vec!["--simulate", dir.to_str().unwrap()]
    };
    let both = format!("{M_OLD}\n{M_NEW}\n");
    let steps: &[Step] = &[
        (
            &["--json", "diagnose", "--user", "alice", "--password-stdin"],
            both.clone(),
            &[],
            3,
        ),
        (
            &["diagnose", "--user", "alice", "--password-stdin"],
            both.clone(),
            &[],
            3,
        ),
        (
            &[
                "reconcile",
                "--user",
                "alice",
                "--password-stdin",
                "--dry-run",
            ],
            both.clone(),
            &[],
            0,
        ),
        (
            &[
                "--json",
                "reconcile",
                "--user",
                "alice",
                "--password-stdin",
                "--dry-run",
            ],
            both.clone(),
            &[],
            0,
        ),
        (
            &["verify", "--user", "alice", "--password-stdin"],
            format!("{M_OLD}\n"),
            &[],
            0,
        ),
        (
            RECONCILE,
            both.clone(),
            &[("FVSYNC_FAILPOINT", "after-record:error")],
            6,
        ),
        (
            &[
                "--json",
                "reconcile",
                "--user",
                "alice",
                "--password-stdin",
                "--yes",
            ],
            both.clone(),
            &[],
            0,
        ),
        (
            &["verify", "--user", "alice", "--password-stdin"],
            format!("{M_NEW}\n"),
            &[],
            0,
        ),
        (
            &["--json", "verify", "--user", "alice", "--password-stdin"],
            format!("{M_WRONG}\n"),
            &[],
            3,
        ),
        (
            &[
                "--json",
                "undo",
                "--user",
                "alice",
                "--password-stdin",
                "--yes",
            ],
            format!("{M_NEW}\n{M_OLD}\n"),
            &[],
            0,
        ),
        (RECONCILE, both.clone(), &[], 0),
    ];
    for (args, stdin, env, code) in steps {
        let mut a = base.clone();
        a.extend_from_slice(args);
        let o = run_env(&a, stdin, env);
        assert_eq!(o.code, Some(*code), "{a:?}: {}\n{}", o.stdout, o.stderr);
        assert!(!o.stderr.contains("panicked"));
        assert_clean(&format!("stdout of {args:?}"), o.stdout.as_bytes());
        assert_clean(&format!("stderr of {args:?}"), o.stderr.as_bytes());
    }
    // The run left its traces: journal, backups, audit log (and, through
    // diskutil, the emulator's call log), and every one of them is clean.
    let root = data_root(&dir);
    assert!(root
        .join("private/var/db/fvsync/alice.journal.json")
        .is_file());
    assert!(root.join("private/var/log/fvsync.log").is_file());
    let backups = std::fs::read_dir(root.join("private/var/db/fvsync/backups"))
        .unwrap()
        .count();
    assert!(backups >= 4, "{backups} backups");
    if diskutil {
        assert!(!emulator_calls(&dir).is_empty());
    }
    let files = scan_tree(t.path());
    assert!(files > 20, "only {files} files scanned");
    assert_eq!(login_accepts(&dir, "alice", M_NEW), (true, true));
}

#[test]
fn the_scanner_finds_what_it_looks_for() {
    let utf16: Vec<u8> = M_NEW.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut hay = b"prefix".to_vec();
    hay.extend_from_slice(&utf16);
    assert!(std::panic::catch_unwind(|| assert_clean("test", &hay)).is_err());
    assert!(std::panic::catch_unwind(|| assert_clean("test", M_OLD.as_bytes())).is_err());
    assert_clean("test", b"nothing here");
}

#[test]
fn no_marker_password_leaks_through_the_simulated_mac() {
    flows(false);
}

#[test]
fn no_marker_password_leaks_through_diskutil() {
    flows(true);
}
