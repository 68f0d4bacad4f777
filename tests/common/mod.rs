//! Shared helpers for the integration tests: run the binary, build simulated
//! Macs, snapshot trees (`snapshot.rs`), run the engine in-process
//! (`inproc.rs`), and an independent check of every secret that does not go
//! through fvsync's engine (it reads the plists itself and calls the RustCrypto
//! crates directly for FileVault and the login hash).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sha2::Sha256;

/// The engine in-process (needs `--features testing`: `Password::for_tests`).
#[cfg(feature = "testing")]
pub mod inproc;
mod snapshot;
// Each test binary uses a part of it (as with `dead_code` above).
#[allow(unused_imports)]
pub use snapshot::{disk_tree, tree, tree_diff, Entry, Kind, Tree};

pub const OLD: &str = "Old-Passw0rd!";
pub const NEW: &str = "New-Passw0rd!";
pub const ALICE_UUID: &str = "A11CE000-1D2E-4F3A-9B8C-0123456789AB";
pub const DATA_UUID: &str = "DA7A0000-5A5A-4B4B-8C8C-0000000000A5";

pub const SCENARIOS: &[&str] = &[
    "in-sync",
    "fv-old-login-new",
    "all-old",
    "keychain-old",
    "login-old-fv-new",
    "not-a-filevault-user",
    "filevault-off",
    "multi-volume",
    "throttled",
    "unknown-hash",
    "securetoken-fv-off",
    "legacy-keychain",
    "keychain-macos26",
    "stale-preboot",
];

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn fvsync() -> Command {
    let mut c = Command::cargo_bin("fvsync").unwrap();
    // Lines are not wrapped for the tests that look for a message in them
    // (the tests of the 80-column screens set COLUMNS=80 themselves).
    c.env_remove("FVSYNC_FAILPOINT")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "10000");
    c
}

pub fn run(args: &[&str], stdin: &str) -> Out {
    run_env(args, stdin, &[])
}

pub fn run_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
    let mut c = fvsync();
    c.args(args).write_stdin(stdin.to_string());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// True when the suite runs through the diskutil backend and the emulated
/// diskutil (`FVSYNC_TEST_BACKEND=diskutil`, as `make test` does the second time).
pub fn diskutil_mode() -> bool {
    std::env::var("FVSYNC_TEST_BACKEND").as_deref() == Ok("diskutil")
}

/// Passwords the suites type; none may reach an argv or environment diskutil sees.
pub const TYPED: &[&str] = &[
    OLD,
    NEW,
    "Bob-Passw0rd!",
    "Admin-Passw0rd!",
    "Wrong-Passw0rd!",
    "Wrong-1",
    "Wrong-2",
    "Third-Passw0rd!",
];

/// A fresh simulated Mac (fast iteration counts) in a temp dir, with a link
/// that runs the emulated diskutil over it (`<tmp>/diskutil`, state in `<tmp>/emu`).
pub fn mac(scenario: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("mac");
    let o = run(
        &[
            "sim",
            "create",
            dir.to_str().unwrap(),
            "--scenario",
            scenario,
            "--iterations",
            "1000",
        ],
        "",
    );
    assert_eq!(o.code, Some(0), "sim create {scenario}: {}", o.stderr);
    if let Some(emu) = option_env!("CARGO_BIN_EXE_fvsync-diskutil-emulator") {
        // A link, not a wrapper script: the emulator reads `<tmp>/mac` and
        // `<tmp>/emu` from the link's own path. Running a script written a moment
        // ago can fail with ETXTBSY while another test thread forks.
        std::os::unix::fs::symlink(emu, t.path().join("diskutil")).unwrap();
        // The emulated hdiutil (the rehearsal's throwaway volume), the same
        // program under another name.
        std::os::unix::fs::symlink(emu, t.path().join("hdiutil")).unwrap();
    }
    (t, dir)
}

/// Every argv and environment the emulated diskutil recorded for this Mac.
pub fn emulator_calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.parent().unwrap().join("emu/calls.jsonl")).unwrap_or_default()
}

/// Runs a user command on a simulated Mac with passwords on stdin.
pub fn cmd(dir: &Path, args: &[&str], passwords: &[&str]) -> Out {
    cmd_env(dir, args, passwords, &[])
}

pub fn cmd_env(dir: &Path, args: &[&str], passwords: &[&str], env: &[(&str, &str)]) -> Out {
    let wrapper = dir.parent().unwrap().join("diskutil");
    let hdiutil = dir.parent().unwrap().join("hdiutil");
    let mut a = if diskutil_mode() {
        vec![
            "--diskutil",
            wrapper.to_str().unwrap(),
            "--hdiutil",
            hdiutil.to_str().unwrap(),
        ]
    } else {
        vec!["--simulate", dir.to_str().unwrap()]
    };
    a.extend_from_slice(args);
    let stdin: String = passwords.iter().map(|p| format!("{p}\n")).collect();
    // This Mac's own "Recovery session" (the attempt count kept across runs
    // in the temporary folder), apart from every other test's.
    let session = dir.parent().unwrap().join("session-tmp");
    std::fs::create_dir_all(&session).unwrap();
    let mut env: Vec<(&str, &str)> = env.to_vec();
    if !env.iter().any(|(k, _)| *k == "TMPDIR") {
        env.push(("TMPDIR", session.to_str().unwrap()));
    }
    let out = run_env(&a, &stdin, &env);
    if diskutil_mode() {
        let calls = emulator_calls(dir);
        assert!(!calls.is_empty(), "the emulated diskutil was not called");
        for pw in TYPED {
            assert!(
                !calls.contains(pw),
                "a passphrase reached diskutil's argv or environment"
            );
        }
    }
    out
}

/// `reconcile` of alice with the passwords on stdin and no question: the run
/// most tests make.
pub const RECONCILE: &[&str] = &["reconcile", "--user", "alice", "--password-stdin", "--yes"];

/// [`RECONCILE`] followed by `extra` (`--json`, `--dry-run`, ...: fvsync's
/// global flags may follow the subcommand) on this Mac, through the backend
/// the suite runs (as [`cmd`]), with OLD and NEW on stdin.
pub fn reconcile(dir: &Path, extra: &[&str], old: &str, new: &str) -> Out {
    reconcile_env(dir, extra, old, new, &[])
}

/// [`reconcile`] with extra environment variables (a failpoint, say).
pub fn reconcile_env(
    dir: &Path,
    extra: &[&str],
    old: &str,
    new: &str,
    env: &[(&str, &str)],
) -> Out {
    let mut args = RECONCILE.to_vec();
    args.extend_from_slice(extra);
    cmd_env(dir, &args, &[old, new], env)
}

/// [`reconcile`], which must exit 0.
pub fn reconcile_ok(dir: &Path, extra: &[&str], old: &str, new: &str) -> Out {
    let o = reconcile(dir, extra, old, new);
    assert_eq!(
        o.code,
        Some(0),
        "reconcile {extra:?}: exit {:?}\nstdout: {}\nstderr: {}",
        o.code,
        o.stdout,
        o.stderr
    );
    o
}

/// [`RECONCILE`] followed by `extra` through this (emulated) diskutil,
/// whichever backend the suite runs, with OLD and NEW on stdin.
pub fn reconcile_through(
    diskutil: &Path,
    extra: &[&str],
    old: &str,
    new: &str,
    env: &[(&str, &str)],
) -> Out {
    let hdiutil = diskutil.parent().unwrap().join("hdiutil");
    let mut args = vec![
        "--diskutil",
        diskutil.to_str().unwrap(),
        "--hdiutil",
        hdiutil.to_str().unwrap(),
    ];
    args.extend_from_slice(RECONCILE);
    args.extend_from_slice(extra);
    run_env(&args, &format!("{old}\n{new}\n"), env)
}

pub fn json(o: &Out) -> serde_json::Value {
    serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", o.stdout, o.stderr))
}

/// The row of a diagnose/verify document for one secret, by its name (the
/// rows' order is the report's, and new secrets join it).
pub fn secret<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["secrets"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["secret"] == name))
        .unwrap_or_else(|| panic!("no {name} row in {v}"))
}

pub fn data_root(dir: &Path) -> PathBuf {
    dir.join("Volumes/disk3s5")
}

pub fn record_path(dir: &Path, user: &str) -> PathBuf {
    data_root(dir).join(format!(
        "private/var/db/dslocal/nodes/Default/users/{user}.plist"
    ))
}

pub fn keychain_path(dir: &Path, user: &str) -> PathBuf {
    data_root(dir).join(format!("Users/{user}/Library/Keychains/login.keychain-db"))
}

/// Independent FileVault check: reads the keybag plist itself, derives with
/// the pbkdf2 crate and unwraps with aes-kw. Does not count as an attempt.
pub fn fv_accepts(dir: &Path, user_uuid: &str, pw: &str) -> bool {
    let kb = plist::Value::from_file(dir.join(format!("Keybags/{DATA_UUID}.plist"))).unwrap();
    let kb = kb.as_dictionary().unwrap();
    let wrapped_vek = kb["WrappedVEK"].as_data().unwrap();
    for u in kb["CryptoUsers"].as_array().unwrap() {
        let u = u.as_dictionary().unwrap();
        if u["APFSCryptoUserUUID"].as_string().unwrap() != user_uuid {
            continue;
        }
        let salt = u["KEKSalt"].as_data().unwrap();
        let iters = u["KEKIterations"].as_unsigned_integer().unwrap() as u32;
        let wrapped = u["WrappedKEK"].as_data().unwrap();
        let mut dk = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(pw.as_bytes(), salt, iters, &mut dk);
        let kw = aes_kw::KekAes256::from(dk);
        let mut kek = [0u8; 32];
        if kw.unwrap(wrapped, &mut kek).is_err() {
            return false;
        }
        let kw2 = aes_kw::KekAes256::from(kek);
        let mut vek = [0u8; 32];
        return kw2.unwrap(wrapped_vek, &mut vek).is_ok();
    }
    panic!("no crypto user {user_uuid}");
}

/// A crypto user's passphrase hint in the Data volume's keybag (what the
/// FileVault unlock screen shows), read from the plist itself.
pub fn crypto_hint(dir: &Path, user_uuid: &str) -> Option<String> {
    let kb = plist::Value::from_file(dir.join(format!("Keybags/{DATA_UUID}.plist"))).unwrap();
    let users = kb.as_dictionary().unwrap()["CryptoUsers"]
        .as_array()
        .unwrap();
    let u = users
        .iter()
        .filter_map(|u| u.as_dictionary())
        .find(|u| u["APFSCryptoUserUUID"].as_string() == Some(user_uuid))
        .unwrap_or_else(|| panic!("no crypto user {user_uuid}"));
    u.get("PassphraseHint")
        .and_then(|v| v.as_string())
        .map(str::to_string)
}

/// The local KDC's keys of a record made anew for `pw`, as a password change
/// does: `KerberosKeys` (kvno raised) and `HeimdalSRPKey` when it has one.
pub fn kerberos_for(rec: &mut fvsync::formats::record::UserRecord, pw: &str) {
    use fvsync::formats::kerberos;
    let values: Vec<Vec<u8>> = rec.kerberos_keys().iter().map(|v| v.to_vec()).collect();
    assert!(!values.is_empty(), "the simulated record has Kerberos keys");
    let srp: Vec<Vec<u8>> = rec.heimdal_srp_keys().iter().map(|v| v.to_vec()).collect();
    if !srp.is_empty() {
        let principal = kerberos::lkdc_principal(&rec.authentication_authority(), &values).unwrap();
        rec.set_heimdal_srp_keys(
            kerberos::srp_regenerate(&srp, &principal, pw.as_bytes()).unwrap(),
        );
    }
    rec.set_kerberos_keys(kerberos::regenerate(&values, pw.as_bytes()).unwrap());
}

/// Independent login check: SALTED-SHA512-PBKDF2 recomputed with the pbkdf2
/// crate from the record's plist; SRP through fvsync's KAT-tested entry.
pub fn login_accepts(dir: &Path, user: &str, pw: &str) -> (bool, bool) {
    let rec = plist::Value::from_file(record_path(dir, user)).unwrap();
    let blob = rec.as_dictionary().unwrap()["ShadowHashData"]
        .as_array()
        .unwrap()[0]
        .as_data()
        .unwrap()
        .to_vec();
    let inner = plist::Value::from_reader(std::io::Cursor::new(blob)).unwrap();
    let inner = inner.as_dictionary().unwrap();
    let salted = inner.get("SALTED-SHA512-PBKDF2").map(|e| {
        let e = e.as_dictionary().unwrap();
        let mut out = [0u8; 128];
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
            pw.as_bytes(),
            e["salt"].as_data().unwrap(),
            e["iterations"].as_unsigned_integer().unwrap() as u32,
            &mut out,
        );
        out.as_slice() == e["entropy"].as_data().unwrap()
    });
    let sh = fvsync::formats::shadowhash::ShadowHash::parse_attribute(
        &rec.as_dictionary().unwrap()["ShadowHashData"],
    )
    .unwrap();
    let srp = sh
        .srp
        .map(|e| e.check(pw.as_bytes()) == fvsync::formats::shadowhash::Check::Match);
    (salted.unwrap_or(false), srp.unwrap_or(false))
}

pub fn keychain_accepts(dir: &Path, user: &str, pw: &str) -> bool {
    let bytes = std::fs::read(keychain_path(dir, user)).unwrap();
    matches!(
        fvsync::formats::keychain::check(&bytes, pw.as_bytes()),
        Ok(fvsync::formats::keychain::KeychainCheck::Accepts)
    )
}

/// Which of OLD/NEW a secret accepts: "old", "new", "neither".
pub fn which(old: bool, new: bool) -> &'static str {
    match (old, new) {
        (true, false) => "old",
        (false, true) => "new",
        (true, true) => "both",
        _ => "neither",
    }
}

/// alice's secrets as the independent check sees them: (filevault, login, srp, keychain).
pub fn alice_state(
    dir: &Path,
    filevault: bool,
) -> (&'static str, &'static str, &'static str, &'static str) {
    let fv = if filevault {
        which(
            fv_accepts(dir, ALICE_UUID, OLD),
            fv_accepts(dir, ALICE_UUID, NEW),
        )
    } else {
        "n/a"
    };
    let (lo, so) = login_accepts(dir, "alice", OLD);
    let (ln, sn) = login_accepts(dir, "alice", NEW);
    (
        fv,
        which(lo, ln),
        which(so, sn),
        which(
            keychain_accepts(dir, "alice", OLD),
            keychain_accepts(dir, "alice", NEW),
        ),
    )
}

pub fn failed_attempts(dir: &Path) -> u64 {
    let e = plist::Value::from_file(dir.join("SecureEnclave.plist")).unwrap();
    e.as_dictionary().unwrap()[DATA_UUID]
        .as_dictionary()
        .unwrap()["FailedAttempts"]
        .as_unsigned_integer()
        .unwrap()
}
