//! The hostile-input catalogue (issue 6, docs/security.md): planted or corrupted
//! files on the Data volume, hostile names and passwords, a misbehaving system.
//! Every case is its own `#[test]` (`hostile_<what>`, from one table: see
//! `catalogue!`), runs the real binary on a fresh simulated Mac and checks,
//! through the one function `run_case`:
//!
//! - the exit code;
//! - a clear message (`fvsync: error: ...` on stderr, with a hint where one
//!   helps; for a record whose hashes cannot be read, the diagnose row that says
//!   why on stdout; `error: ...` for the few inputs clap itself refuses);
//! - no panic;
//! - that no file of the simulated Mac changed (every entry snapshotted before
//!   and after: content or link target, mode, owner, link count).
//!   `SecureEnclave.plist`, which stands for the hardware counter, may change
//!   only in a case that actually presents a passphrase to FileVault.
//!   The two system-failure cases (read-only volume, full disk) are rolled-back
//!   runs: there every file that existed is unchanged, and only fvsync's own
//!   journal, backups and audit log are new.
//!
//! Both backends: the suite's second pass (`FVSYNC_TEST_BACKEND=diskutil`, as
//! `make test` runs it) sends every case through the diskutil backend and the
//! emulated diskutil (and checks no password reached its argv or
//! environment), except the cases about the simulated Mac's own keybag files
//! (`sim_only`), which only the simulated backend reads.
//!
//! Also covered elsewhere, and not counted here: bad passwords at a terminal and
//! a NEW confirmation that does not match (tests/pty.rs), no flag or variable
//! taking a password (tests/cli.rs), a hanging or dying diskutil through the
//! diagnose path (tests/diskutil.rs), crash safety (tests/crash.rs).
#![cfg(feature = "testing")]

mod common;
use common::*;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

// ---------------------------------------------------------------------------
// Editing a simulated Mac's files.

const ALICE_SALTED: &str = "SALTED-SHA512-PBKDF2";
const ALICE_SRP: &str = "SRP-RFC5054-4096-SHA512-PBKDF2";

fn write_plist(path: &Path, v: &Value) {
    let mut out = Vec::new();
    v.to_writer_binary(&mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn edit_record(dir: &Path, user: &str, f: impl FnOnce(&mut Dictionary)) {
    let p = record_path(dir, user);
    let mut v = Value::from_file(&p).unwrap();
    f(v.as_dictionary_mut().unwrap());
    write_plist(&p, &v);
}

/// Edits the inner ShadowHashData dictionary of alice's record.
fn edit_shadow(dir: &Path, f: impl FnOnce(&mut Dictionary)) {
    edit_record(dir, "alice", |rec| {
        let blob = rec["ShadowHashData"].as_array().unwrap()[0]
            .as_data()
            .unwrap()
            .to_vec();
        let mut inner = Value::from_reader(std::io::Cursor::new(blob)).unwrap();
        f(inner.as_dictionary_mut().unwrap());
        let mut out = Vec::new();
        inner.to_writer_binary(&mut out).unwrap();
        rec.insert(
            "ShadowHashData".into(),
            Value::Array(vec![Value::Data(out)]),
        );
    });
}

fn edit_entry(dir: &Path, scheme: &'static str, f: impl FnOnce(&mut Dictionary)) {
    edit_shadow(dir, |d| {
        f(d.get_mut(scheme).unwrap().as_dictionary_mut().unwrap())
    });
}

fn keybag_path(dir: &Path) -> PathBuf {
    dir.join(format!("Keybags/{DATA_UUID}.plist"))
}

fn edit_keybag(dir: &Path, f: impl FnOnce(&mut Dictionary)) {
    let p = keybag_path(dir);
    let mut v = Value::from_file(&p).unwrap();
    f(v.as_dictionary_mut().unwrap());
    let mut out = Vec::new();
    v.to_writer_xml(&mut out).unwrap();
    std::fs::write(p, out).unwrap();
}

fn edit_alice_crypto_user(dir: &Path, f: impl FnOnce(&mut Dictionary)) {
    edit_keybag(dir, |kb| {
        let users = kb.get_mut("CryptoUsers").unwrap().as_array_mut().unwrap();
        let alice = users
            .iter_mut()
            .map(|u| u.as_dictionary_mut().unwrap())
            .find(|u| u["APFSCryptoUserUUID"].as_string() == Some(ALICE_UUID))
            .unwrap();
        f(alice);
    });
}

fn truncate_data(d: &mut Dictionary, key: &str, len: usize) {
    let mut v = d[key].as_data().unwrap().to_vec();
    v.resize(len, 0xA5);
    d.insert(key.into(), Value::Data(v));
}

const PREBOOT_GROUP: &str = "7E1A0000-4A4A-4B4B-9C9C-00000000C0DE";

/// Edits every Preboot user list the simulated Mac has (display only, never
/// encrypted: anyone with the disk can edit it).
fn edit_preboot(dir: &Path, f: impl Fn(&mut Dictionary)) {
    for name in ["CryptoUserInfo.plist", "AllUsersInfo.plist"] {
        let p = dir.join(format!("Volumes/disk3s2/{PREBOOT_GROUP}/var/db/{name}"));
        if let Ok(mut v) = Value::from_file(&p) {
            if let Some(d) = v.as_dictionary_mut() {
                f(d);
            }
            let mut out = Vec::new();
            v.to_writer_xml(&mut out).unwrap();
            std::fs::write(&p, out).unwrap();
        }
    }
}

/// The Preboot lists give alice's crypto user the short name `itadmin`, and
/// itadmin's own entry is gone: in `CryptoUserInfo.plist` (keyed by UUID,
/// `ShortName`) and in `AllUsersInfo.plist` (keyed by short name, with the
/// `GeneratedUID`).
fn preboot_names_alice_itadmin(dir: &Path) {
    edit_preboot(dir, |d| {
        let keys: Vec<String> = d.keys().cloned().collect();
        for k in keys {
            let Some(e) = d.get_mut(&k).and_then(Value::as_dictionary_mut) else {
                continue;
            };
            let uuid = e
                .get("GeneratedUID")
                .and_then(Value::as_string)
                .unwrap_or(&k)
                .to_string();
            if uuid.eq_ignore_ascii_case(ITADMIN_UUID) {
                d.remove(&k);
                continue;
            }
            if uuid.eq_ignore_ascii_case(ALICE_UUID) {
                if e.contains_key("ShortName") {
                    e.insert("ShortName".into(), Value::String("itadmin".into()));
                } else {
                    // AllUsersInfo.plist: the short name is the key.
                    let v = d.remove(&k).unwrap();
                    d.insert("itadmin".into(), v);
                }
            }
        }
    });
}

const ITADMIN_UUID: &str = "ADA11000-3F4A-4B5C-9DAE-23456789ABCD";

/// A finished reconcile of alice (OLD to NEW).
fn reconciled(dir: &Path) {
    reconcile_ok(dir, &[], OLD, NEW);
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), None).unwrap();
}

fn journal_path(dir: &Path) -> PathBuf {
    data_root(dir).join("private/var/db/fvsync/alice.journal.json")
}

fn write_journal(dir: &Path, body: &str) {
    let p = journal_path(dir);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn journal_json(version: u32) -> String {
    serde_json::json!({
        "fvsync_journal": version, "tool_version": "9.9.9", "run_id": "20260101T000000Z-1",
        "user": "alice", "generated_uid": ALICE_UUID, "volume": "disk3s5", "state": "open",
        "started": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
        "backups": {"record": false, "keychain": false, "old_verifier": false},
        "steps": [{"step": "login", "started": false, "done": false}],
    })
    .to_string()
}

/// A wrapper that runs the emulated diskutil over the Mac in a misbehaving mode.
fn diskutil_wrapper(dir: &Path, mode: &str) -> PathBuf {
    // A link named diskutil-<mode>: the emulator takes the Mac, its state and
    // the mode from the link's path (no script to write, so no ETXTBSY).
    let emu = env!("CARGO_BIN_EXE_fvsync-diskutil-emulator");
    let w = dir.parent().unwrap().join(format!("diskutil-{mode}"));
    assert_eq!(dir.file_name().unwrap(), "mac");
    let _ = std::fs::remove_file(&w);
    std::os::unix::fs::symlink(emu, &w).unwrap();
    w
}

/// The emulated hdiutil (the rehearsal's throwaway volume) beside the Mac.
fn hdiutil_wrapper(dir: &Path) -> PathBuf {
    let emu = env!("CARGO_BIN_EXE_fvsync-diskutil-emulator");
    let w = dir.parent().unwrap().join("hdiutil");
    let _ = std::fs::remove_file(&w);
    std::os::unix::fs::symlink(emu, &w).unwrap();
    w
}

/// alice's record holds a fresh ShadowHashData for `pw` (through fvsync's own
/// generator), and she has no login keychain (so `verify` checks only the hash).
fn alice_hash_for(dir: &Path, pw: &str) {
    let sh = fvsync::formats::shadowhash::generate(pw.as_bytes(), 1000, 1000).unwrap();
    let p = record_path(dir, "alice");
    let bytes = std::fs::read(&p).unwrap();
    let mut rec = fvsync::formats::record::UserRecord::parse(&bytes).unwrap();
    rec.set_shadow_hash(&sh).unwrap();
    kerberos_for(&mut rec, pw);
    std::fs::write(&p, rec.to_bytes().unwrap()).unwrap();
    std::fs::remove_file(keychain_path(dir, "alice")).unwrap();
}

// ---------------------------------------------------------------------------
// The catalogue.

/// What a case must print.
#[derive(Clone, Copy)]
enum Says {
    /// `fvsync: error: <...msg...>` on stderr.
    Error(&'static str),
    /// `msg` on stdout (a diagnose row, a listing).
    Out(&'static str),
    /// clap's own `error: <...msg...>` (usage errors clap detects).
    Clap(&'static str),
}

/// How the binary reaches the Mac.
#[derive(Clone, Copy)]
enum Backend {
    Sim,
    /// The diskutil backend with the emulated diskutil in this mode.
    Diskutil(&'static str),
}

use Says::{Clap, Error, Out};

struct Case {
    name: &'static str,
    scenario: &'static str,
    setup: Box<dyn Fn(&Path)>,
    args: Vec<OsString>,
    stdin: Vec<u8>,
    env: Vec<(&'static str, &'static str)>,
    backend: Backend,
    code: i32,
    says: Says,
    hint: Option<&'static str>,
    /// A passphrase is presented to FileVault: SecureEnclave.plist may change.
    attempts: bool,
    /// Needs real file owners (a simulated Mac made by root).
    root_only: bool,
    /// A rolled-back run: fvsync's journal, backups and audit log may appear.
    rolled_back: bool,
    /// About the simulated Mac's own files (its description, keybags): the
    /// simulated backend only, in both passes.
    sim_only: bool,
}

fn case(
    name: &'static str,
    scenario: &'static str,
    setup: impl Fn(&Path) + 'static,
    args: &[&str],
    code: i32,
    says: Says,
) -> Case {
    Case {
        name,
        scenario,
        setup: Box::new(setup),
        args: args.iter().map(OsString::from).collect(),
        stdin: format!("{OLD}\n{NEW}\n").into_bytes(),
        env: Vec::new(),
        backend: Backend::Sim,
        code,
        says,
        hint: None,
        attempts: false,
        root_only: false,
        rolled_back: false,
        sim_only: false,
    }
}

impl Case {
    fn hint(mut self, h: &'static str) -> Self {
        self.hint = Some(h);
        self
    }
    fn stdin(mut self, s: &[u8]) -> Self {
        self.stdin = s.to_vec();
        self
    }
    fn env(mut self, k: &'static str, v: &'static str) -> Self {
        self.env.push((k, v));
        self
    }
    fn raw_args(mut self, a: Vec<OsString>) -> Self {
        self.args = a;
        self
    }
    fn backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }
    fn sim_only(mut self) -> Self {
        self.sim_only = true;
        self
    }
    fn rolled_back(mut self) -> Self {
        self.rolled_back = true;
        self
    }
    /// The case presents a passphrase to FileVault (its counter may change).
    fn attempts(mut self) -> Self {
        self.attempts = true;
        self
    }
    /// The case needs real owners (files given to their users: root only).
    fn root_only(mut self) -> Self {
        self.root_only = true;
        self
    }
}

const DIAG: &[&str] = &["diagnose", "--user", "alice", "--password-stdin"];
const DIAG_BOB: &[&str] = &["diagnose", "--user", "bob", "--password-stdin"];
const VERIFY: &[&str] = &["verify", "--user", "alice", "--password-stdin"];

fn nothing(_: &Path) {}

fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `users` through the emulated diskutil misbehaving in `mode` (re-asserted
/// here on `users`; tests/diskutil.rs checks volumes and diagnose).
fn diskutil_case(name: &'static str, mode: &'static str, msg: &'static str) -> Case {
    case(name, "fv-old-login-new", nothing, &["users"], 1, Error(msg))
        .backend(Backend::Diskutil(mode))
}

/// "Café": NFC (U+00E9) and NFD (e + U+0301) are different byte strings. The
/// record is made for the NFC form; fvsync does not normalise.
fn cafe_nfc_record(d: &Path) {
    alice_hash_for(d, "Caf\u{e9}-Passw0rd")
}

/// Expands `test_name = case_expression, ...` into one `#[test]` per case
/// (each runs [`run_case`] on a fresh simulated Mac, so a case can be run
/// alone: `cargo test --features testing --test hostile hostile_keybag_`) and
/// into [`CATALOGUE`], the list of every case by its test's name.
macro_rules! catalogue {
    ($($(#[$attr:meta])* $test:ident = $case:expr),+ $(,)?) => {
        /// Every case, by the name of its test.
        const CATALOGUE: &[(&str, fn() -> Case)] = &[$((stringify!($test), || $case)),+];
        $(
            $(#[$attr])*
            #[test]
            fn $test() {
                run_case(&$case);
            }
        )+
    };
}

/// The catalogue had 78 cases when it was split into one test per case; it
/// may grow, never shrink.
const CATALOGUE_MIN: usize = 97;

catalogue![
    // records
    hostile_record_garbage = case(
        "record: garbage",
        "filevault-off",
        |d| std::fs::write(record_path(d, "alice"), b"\x00garbage\xff").unwrap(),
        DIAG,
        1,
        Error("not a property list"),
    ),
    hostile_record_truncated_binary_plist = case(
        "record: truncated binary plist",
        "filevault-off",
        |d| {
            let p = record_path(d, "alice");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        },
        DIAG,
        1,
        Error("is malformed: not a property list"),
    ),
    hostile_record_empty_file = case(
        "record: empty file",
        "filevault-off",
        |d| std::fs::write(record_path(d, "alice"), b"").unwrap(),
        DIAG,
        1,
        Error("is malformed"),
    ),
    hostile_record_top_level_is_an_array = case(
        "record: top level is an array",
        "filevault-off",
        |d| {
            write_plist(
                &record_path(d, "alice"),
                &Value::Array(vec![Value::String("alice".into())]),
            )
        },
        DIAG,
        1,
        Error("the top level is not a dictionary"),
    ),
    hostile_record_no_name_attribute = case(
        "record: no name attribute",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.remove("name");
            })
        },
        DIAG,
        1,
        Error("no `name` attribute"),
    ),
    hostile_record_name_with_a_nul_and_an_escape = case(
        "record: name with a NUL and an escape",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert("name".into(), Value::Array(vec!["alice\0\u{1b}[2J".into()]));
            })
        },
        DIAG,
        1,
        Error("the record's name is 'alice\\u{0}\\u{1b}[2J', not 'alice'"),
    ),
    hostile_record_duplicate_user = case(
        "record: duplicate user (bob.plist is a copy of alice's record)",
        "filevault-off",
        |d| {
            std::fs::copy(record_path(d, "alice"), record_path(d, "bob"))
                .map(|_| ())
                .unwrap()
        },
        DIAG_BOB,
        1,
        Error("the record's name is 'alice', not 'bob'"),
    ),
    hostile_record_symlink_to_etc_passwd = case(
        "record: symlink to /etc/passwd (never followed)",
        "filevault-off",
        |d| {
            let p = record_path(d, "alice");
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink("/etc/passwd", &p).unwrap();
        },
        DIAG,
        5,
        Error("symbolic link"),
    )
    .hint("tampered"),
    hostile_record_symlink_to_another_record = case(
        "record: symlink to another valid record",
        "filevault-off",
        |d| {
            let p = record_path(d, "alice");
            let real = p.with_file_name("alice-real.plist");
            std::fs::rename(&p, &real).unwrap();
            std::os::unix::fs::symlink(&real, &p).unwrap();
        },
        DIAG,
        5,
        Error("symbolic link"),
    ),
    hostile_record_users_folder_is_a_symlink = case(
        "record: the users folder is a symlink (never followed)",
        "filevault-off",
        |d| {
            let users = record_path(d, "alice").parent().unwrap().to_path_buf();
            let real = users.with_file_name("users-real");
            std::fs::rename(&users, &real).unwrap();
            std::os::unix::fs::symlink(&real, &users).unwrap();
        },
        RECONCILE,
        5,
        Error("symbolic link; fvsync never follows links"),
    ),
    hostile_keychain_folder_is_a_symlink = case(
        "keychain: the Keychains folder is a symlink (never followed)",
        "filevault-off",
        |d| {
            let kc = keychain_path(d, "alice").parent().unwrap().to_path_buf();
            let real = kc.with_file_name("Keychains-elsewhere");
            std::fs::rename(&kc, &real).unwrap();
            std::os::unix::fs::symlink(&real, &kc).unwrap();
        },
        RECONCILE,
        5,
        Error("symbolic link; fvsync never follows links"),
    )
    .hint("tampered"),
    hostile_record_owned_by_another_user = case(
        "record: owned by another user (uid 4242)",
        "filevault-off",
        |d| std::os::unix::fs::chown(record_path(d, "alice"), Some(4242), Some(4242)).unwrap(),
        DIAG,
        5,
        Error("is owned by uid 4242, not by root"),
    )
    .hint("planted"),
    hostile_record_world_writable = case(
        "record: world-writable",
        "filevault-off",
        |d| {
            std::fs::set_permissions(
                record_path(d, "alice"),
                std::fs::Permissions::from_mode(0o666),
            )
            .unwrap()
        },
        DIAG,
        5,
        Error("is writable by other users (mode 0666)"),
    )
    .hint("tampered"),
    hostile_record_group_writable = case(
        "record: group-writable",
        "filevault-off",
        |d| {
            std::fs::set_permissions(
                record_path(d, "alice"),
                std::fs::Permissions::from_mode(0o620),
            )
            .unwrap()
        },
        DIAG,
        5,
        Error("is writable by other users (mode 0620)"),
    ),
    hostile_record_is_a_folder = case(
        "record: a folder",
        "filevault-off",
        |d| {
            let p = record_path(d, "alice");
            std::fs::remove_file(&p).unwrap();
            std::fs::create_dir(&p).unwrap();
        },
        DIAG,
        1,
        Error("is malformed: not a regular file"),
    ),
    hostile_record_is_a_fifo = case(
        "record: a FIFO (must not block)",
        "filevault-off",
        |d| {
            let p = record_path(d, "alice");
            std::fs::remove_file(&p).unwrap();
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        },
        DIAG,
        1,
        Error("is malformed: not a regular file"),
    ),
    hostile_record_100_mb_sparse = case(
        "record: 100 MB (sparse)",
        "filevault-off",
        |d| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(record_path(d, "alice"))
                .unwrap();
            f.set_len(100 * 1024 * 1024).unwrap();
        },
        DIAG,
        1,
        Error("104857600 bytes, over the 16777216 byte limit"),
    ),
    hostile_record_owned_by_another_user_reconcile = case(
        "record: reconcile refuses a record owned by uid 4242 before any change",
        "filevault-off",
        |d| std::os::unix::fs::chown(record_path(d, "alice"), Some(4242), Some(0)).unwrap(),
        RECONCILE,
        5,
        Error("is owned by uid 4242"),
    ),
    // ShadowHashData
    hostile_shadow_salted_salt_of_31_bytes = case(
        "ShadowHashData: SALTED salt of 31 bytes",
        "filevault-off",
        |d| edit_entry(d, ALICE_SALTED, |e| truncate_data(e, "salt", 31)),
        DIAG,
        3,
        Out("ShadowHashData scheme SALTED-SHA512-PBKDF2 field `salt` is 31 bytes, expected 32"),
    ),
    hostile_shadow_srp_salt_of_33_bytes = case(
        "ShadowHashData: SRP salt of 33 bytes",
        "filevault-off",
        |d| edit_entry(d, ALICE_SRP, |e| truncate_data(e, "salt", 33)),
        DIAG,
        3,
        Out("field `salt` is 33 bytes, expected 32"),
    ),
    hostile_shadow_entropy_of_127_bytes = case(
        "ShadowHashData: entropy of 127 bytes",
        "filevault-off",
        |d| edit_entry(d, ALICE_SALTED, |e| truncate_data(e, "entropy", 127)),
        DIAG,
        3,
        Out("field `entropy` is 127 bytes, expected 128"),
    ),
    hostile_shadow_srp_verifier_of_511_bytes = case(
        "ShadowHashData: SRP verifier of 511 bytes",
        "filevault-off",
        |d| edit_entry(d, ALICE_SRP, |e| truncate_data(e, "verifier", 511)),
        DIAG,
        3,
        Out("field `verifier` is 511 bytes, expected 512"),
    ),
    hostile_shadow_entropy_missing = case(
        "ShadowHashData: entropy missing",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SALTED, |e| {
                e.remove("entropy");
            })
        },
        DIAG,
        3,
        Out("has no `entropy` field"),
    ),
    hostile_shadow_iterations_missing = case(
        "ShadowHashData: iterations missing",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SRP, |e| {
                e.remove("iterations");
            })
        },
        DIAG,
        3,
        Out("has no `iterations` field"),
    ),
    hostile_shadow_salt_is_a_string = case(
        "ShadowHashData: salt is a string",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SALTED, |e| {
                e.insert("salt".into(), Value::String("salt".into()));
            })
        },
        DIAG,
        3,
        Out("field `salt` is not data"),
    ),
    hostile_shadow_iterations_is_a_string = case(
        "ShadowHashData: iterations is a string",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SALTED, |e| {
                e.insert("iterations".into(), Value::String("1000".into()));
            })
        },
        DIAG,
        3,
        Out("field `iterations` is not an integer"),
    ),
    hostile_shadow_iterations_zero = case(
        "ShadowHashData: iterations 0",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SALTED, |e| {
                e.insert("iterations".into(), Value::Integer(0.into()));
            })
        },
        DIAG,
        3,
        Out("field `iterations` is 0, outside 1..=10000000"),
    ),
    hostile_shadow_iterations_negative = case(
        "ShadowHashData: iterations -1",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SALTED, |e| {
                e.insert("iterations".into(), Value::Integer((-1i64).into()));
            })
        },
        DIAG,
        3,
        Out("field `iterations` is -1, outside"),
    ),
    hostile_shadow_iterations_10_to_the_12 = case(
        "ShadowHashData: iterations 10^12",
        "filevault-off",
        |d| {
            edit_entry(d, ALICE_SRP, |e| {
                e.insert(
                    "iterations".into(),
                    Value::Integer(1_000_000_000_000u64.into()),
                );
            })
        },
        DIAG,
        3,
        Out("field `iterations` is 1000000000000, outside"),
    ),
    hostile_shadow_scheme_is_not_a_dictionary = case(
        "ShadowHashData: scheme is not a dictionary",
        "filevault-off",
        |d| {
            edit_shadow(d, |s| {
                s.insert(ALICE_SALTED.into(), Value::Data(vec![0; 16]));
            })
        },
        DIAG,
        3,
        Out("scheme SALTED-SHA512-PBKDF2 is not a dictionary"),
    ),
    hostile_shadow_root_is_not_a_dictionary = case(
        "ShadowHashData: root is not a dictionary",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                let mut out = Vec::new();
                Value::Array(vec![]).to_writer_binary(&mut out).unwrap();
                r.insert(
                    "ShadowHashData".into(),
                    Value::Array(vec![Value::Data(out)]),
                );
            })
        },
        DIAG,
        3,
        Out("ShadowHashData root is not a dictionary"),
    ),
    hostile_shadow_blob_is_not_a_plist = case(
        "ShadowHashData: blob is not a plist",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert(
                    "ShadowHashData".into(),
                    Value::Array(vec![Value::Data(b"bplist00garbage".to_vec())]),
                );
            })
        },
        DIAG,
        3,
        Out("ShadowHashData blob is not a valid property list"),
    ),
    hostile_shadow_blob_over_64_kib = case(
        "ShadowHashData: blob over 64 KiB",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert(
                    "ShadowHashData".into(),
                    Value::Array(vec![Value::Data(vec![0; 70_000])]),
                );
            })
        },
        DIAG,
        3,
        Out("ShadowHashData blob is 70000 bytes, more than the 65536 allowed"),
    ),
    hostile_shadow_attribute_holds_two_blobs = case(
        "ShadowHashData: attribute holds two blobs",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                let one = r["ShadowHashData"].as_array().unwrap()[0].clone();
                r.insert(
                    "ShadowHashData".into(),
                    Value::Array(vec![one.clone(), one]),
                );
            })
        },
        DIAG,
        3,
        Out("ShadowHashData attribute holds 2 elements, expected exactly 1"),
    ),
    hostile_shadow_attribute_is_not_an_array = case(
        "ShadowHashData: attribute is not an array",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert("ShadowHashData".into(), Value::String("x".into()));
            })
        },
        DIAG,
        3,
        Out("ShadowHashData attribute is not an array"),
    ),
    hostile_shadow_extra_unknown_scheme = case(
        "ShadowHashData: an extra, unknown scheme",
        "filevault-off",
        |d| {
            edit_shadow(d, |s| {
                s.insert("CRAM-MD5".into(), Value::Data(vec![0; 32]));
            })
        },
        DIAG,
        3,
        Out("replaces the unknown scheme CRAM-MD5"),
    ),
    // names
    hostile_name_contains_a_slash = case(
        "name: contains /",
        "filevault-off",
        nothing,
        &["diagnose", "--user", "a/b", "--password-stdin"],
        2,
        Error("'a/b' is not a valid macOS short name"),
    )
    .hint("fvsync users"),
    hostile_name_dot_dot = case(
        "name: ..",
        "filevault-off",
        nothing,
        &["diagnose", "--user", "..", "--password-stdin"],
        2,
        Error("'..' is not a valid macOS short name"),
    ),
    hostile_name_path_traversal = case(
        "name: ../../../etc/passwd",
        "filevault-off",
        nothing,
        &[
            "verify",
            "--user",
            "../../../etc/passwd",
            "--password-stdin",
        ],
        2,
        Error("is not a valid macOS short name"),
    ),
    hostile_name_control_characters = case(
        "name: control characters (escaped, never echoed raw)",
        "filevault-off",
        nothing,
        &[
            "diagnose",
            "--user",
            "al\u{1b}]0;pwn\u{7}ice",
            "--password-stdin",
        ],
        2,
        Error("'al\\u{1b}]0;pwn\\u{7}ice' is not a valid macOS short name"),
    ),
    hostile_name_empty = case(
        "name: empty",
        "filevault-off",
        nothing,
        &["diagnose", "--user", "", "--password-stdin"],
        2,
        Error("'' is not a valid macOS short name"),
    ),
    hostile_name_of_10000_characters = case(
        "name: 10,000 characters",
        "filevault-off",
        nothing,
        &[],
        2,
        Error("is not a valid macOS short name"),
    )
    .raw_args(os_args(&[
        "diagnose",
        "--user",
        "x".repeat(10_000).as_str(),
        "--password-stdin"
    ])),
    hostile_name_invalid_utf8_in_argv = case(
        "name: invalid UTF-8 in argv",
        "filevault-off",
        nothing,
        &[],
        2,
        Clap("invalid UTF-8"),
    )
    .raw_args(vec![
        "diagnose".into(),
        "--user".into(),
        OsStr::from_bytes(b"al\xffice").to_owned(),
        "--password-stdin".into(),
    ]),
    hostile_name_user_with_no_record = case(
        "name: a user with no record",
        "filevault-off",
        nothing,
        &["diagnose", "--user", "mallory", "--password-stdin"],
        2,
        Error("mallory"),
    ),
    hostile_volume_no_such_data_volume = case(
        "volume: no such Data volume",
        "filevault-off",
        nothing,
        &[
            "diagnose",
            "--user",
            "alice",
            "--volume",
            "disk99s9\u{1b}",
            "--password-stdin",
        ],
        2,
        Error("no Data volume matches 'disk99s9\\u{1b}'"),
    )
    .hint("fvsync volumes"),
    hostile_listing_record_file_named_with_an_escape = case(
        "listing: a record file named with an escape sequence",
        "filevault-off",
        |d| {
            let p = record_path(d, "alice");
            std::fs::copy(&p, p.with_file_name("ev\u{1b}[2Jil.plist")).unwrap();
        },
        &["users"],
        0,
        Out("ev\\u{1b}[2Jil"),
    ),
    // passwords
    hostile_password_old_empty = case(
        "password: OLD empty",
        "all-old",
        nothing,
        RECONCILE,
        2,
        Error("the OLD password is missing from standard input"),
    )
    .stdin(b"\n")
    .hint("one password per line"),
    hostile_password_new_missing = case(
        "password: NEW missing (end of input)",
        "all-old",
        nothing,
        RECONCILE,
        2,
        Error("the NEW password is missing from standard input"),
    )
    .stdin(format!("{OLD}\n").as_bytes()),
    hostile_password_new_of_128_bytes = case(
        "password: NEW of 128 bytes",
        "all-old",
        nothing,
        RECONCILE,
        2,
        Error("the NEW password is 128 bytes long; FileVault accepts at most 127 bytes"),
    )
    .stdin(format!("{OLD}\n{}\n", "x".repeat(128)).as_bytes()),
    hostile_password_new_of_100000_bytes_without_a_newline = case(
        "password: NEW of 100,000 bytes without a newline",
        "all-old",
        nothing,
        RECONCILE,
        2,
        Error("at most 127 bytes"),
    )
    .stdin(format!("{OLD}\n{}", "y".repeat(100_000)).as_bytes()),
    hostile_password_nul_in_old = case(
        "password: NUL in OLD",
        "all-old",
        nothing,
        RECONCILE,
        2,
        Error("the OLD password contains a NUL byte"),
    )
    .stdin(format!("Old\0Passw0rd!\n{NEW}\n").as_bytes()),
    hostile_password_new_not_utf8 = case(
        "password: NEW not UTF-8",
        "all-old",
        nothing,
        RECONCILE,
        2,
        Error("the NEW password is not valid UTF-8"),
    )
    .stdin(b"Old-Passw0rd!\n\xc3\x28\xff\n")
    .hint("UTF-8"),
    hostile_password_verify_with_an_empty_line = case(
        "password: verify with an empty line",
        "all-old",
        nothing,
        &["verify", "--user", "alice", "--password-stdin"],
        2,
        Error("missing from standard input"),
    )
    .stdin(b"\r\n"),
    // unicode
    hostile_unicode_nfc_form_is_accepted = case(
        "unicode: the NFC form the record was made for is accepted",
        "filevault-off",
        cafe_nfc_record,
        VERIFY,
        0,
        Out("In sync: every secret that counts accepts this password."),
    )
    .stdin("Caf\u{e9}-Passw0rd\n".as_bytes()),
    hostile_unicode_nfd_form_is_rejected = case(
        "unicode: the NFD form of the same text is rejected",
        "filevault-off",
        cafe_nfc_record,
        VERIFY,
        3,
        Out("Out of sync: not every secret accepts this password;"),
    )
    .stdin("Cafe\u{301}-Passw0rd\n".as_bytes()),
    // keybag
    hostile_keybag_wrapped_kek_of_39_bytes = case(
        "keybag: WrappedKEK of 39 bytes",
        "fv-old-login-new",
        |d| edit_alice_crypto_user(d, |u| truncate_data(u, "WrappedKEK", 39)),
        DIAG,
        1,
        Error("salt or wrapped key of the wrong length"),
    )
    .sim_only(),
    hostile_keybag_kek_salt_of_15_bytes = case(
        "keybag: KEKSalt of 15 bytes",
        "fv-old-login-new",
        |d| edit_alice_crypto_user(d, |u| truncate_data(u, "KEKSalt", 15)),
        DIAG,
        1,
        Error("salt or wrapped key of the wrong length"),
    )
    .sim_only(),
    hostile_keybag_wrapped_vek_of_41_bytes = case(
        "keybag: WrappedVEK of 41 bytes",
        "fv-old-login-new",
        |d| edit_keybag(d, |kb| truncate_data(kb, "WrappedVEK", 41)),
        DIAG,
        1,
        Error("WrappedVEK is not 40 bytes"),
    )
    .sim_only(),
    hostile_keybag_kek_iterations_zero = case(
        "keybag: KEKIterations 0",
        "fv-old-login-new",
        |d| {
            edit_alice_crypto_user(d, |u| {
                u.insert("KEKIterations".into(), Value::Integer(0.into()));
            })
        },
        DIAG,
        1,
        Error("is malformed"),
    )
    .sim_only(),
    hostile_keybag_kek_iterations_10_to_the_12 = case(
        "keybag: KEKIterations 10^12",
        "fv-old-login-new",
        |d| {
            edit_alice_crypto_user(d, |u| {
                u.insert(
                    "KEKIterations".into(),
                    Value::Integer(1_000_000_000_000u64.into()),
                );
            })
        },
        DIAG,
        1,
        Error("is malformed"),
    )
    .sim_only(),
    hostile_keybag_unknown_crypto_user_type = case(
        "keybag: unknown crypto-user type for alice",
        "fv-old-login-new",
        |d| {
            edit_alice_crypto_user(d, |u| {
                u.insert(
                    "APFSCryptoUserType".into(),
                    Value::String("Alien\u{1b}[2J".into()),
                );
            })
        },
        RECONCILE,
        5,
        Error("alice is not a FileVault user of disk3s5"),
    )
    .sim_only(),
    hostile_keybag_no_crypto_users = case(
        "keybag: no crypto users",
        "fv-old-login-new",
        |d| {
            edit_keybag(d, |kb| {
                kb.insert("CryptoUsers".into(), Value::Array(vec![]));
            })
        },
        RECONCILE,
        5,
        Error("alice is not a FileVault user of disk3s5"),
    )
    .sim_only(),
    hostile_keybag_garbage = case(
        "keybag: garbage",
        "fv-old-login-new",
        |d| std::fs::write(keybag_path(d), b"<plist><dict><key>").unwrap(),
        DIAG,
        1,
        Error("is malformed"),
    )
    .sim_only(),
    hostile_keybag_belongs_to_another_volume = case(
        "keybag: belongs to another volume",
        "fv-old-login-new",
        |d| {
            edit_keybag(d, |kb| {
                kb.insert(
                    "APFSVolumeUUID".into(),
                    Value::String("00000000-0000-0000-0000-000000000000".into()),
                );
            })
        },
        DIAG,
        1,
        Error("APFSVolumeUUID does not match the volume"),
    )
    .sim_only(),
    hostile_keybag_symlink = case(
        "keybag: a symlink",
        "fv-old-login-new",
        |d| {
            let p = keybag_path(d);
            let real = p.with_extension("real");
            std::fs::rename(&p, &real).unwrap();
            std::os::unix::fs::symlink(&real, &p).unwrap();
        },
        DIAG,
        5,
        Error("symbolic link"),
    )
    .sim_only(),
    // diskutil
    hostile_diskutil_prints_garbage =
        diskutil_case("diskutil: prints garbage", "garbage", "not a property list"),
    hostile_diskutil_prints_nothing =
        diskutil_case("diskutil: prints nothing", "empty", "not a property list"),
    hostile_diskutil_nested_200000_deep =
        diskutil_case("diskutil: prints 200,000 nested arrays", "nested", "nested deeper than 64 levels"),
    hostile_diskutil_prints_too_much =
        diskutil_case("diskutil: prints too much", "huge", "more than"),
    hostile_diskutil_killed_by_a_signal =
        diskutil_case("diskutil: killed by a signal", "kill", "killed by a signal"),
    hostile_diskutil_hangs = diskutil_case("diskutil: hangs", "hang", "did not answer within 1 s"),
    // system and journal
    hostile_system_read_only_volume = case(
        "system: read-only Data volume at the record write",
        "filevault-off",
        nothing,
        RECONCILE,
        6,
        Error("Read-only file system (os error 30)"),
    )
    .env("FVSYNC_FAILPOINT", "record-write:erofs")
    .hint("the volume is read-only")
    .rolled_back(),
    hostile_system_full_disk = case(
        "system: full disk at the record write",
        "filevault-off",
        nothing,
        RECONCILE,
        6,
        Error("No space left on device (os error 28)"),
    )
    .env("FVSYNC_FAILPOINT", "record-write:enospc")
    .hint("the volume is full")
    .rolled_back(),
    hostile_journal_from_another_version = case(
        "journal: from another version",
        "filevault-off",
        |d| write_journal(d, &journal_json(3)),
        RECONCILE,
        5,
        Error("it is not a version-2 fvsync journal (version 3)"),
    )
    .hint("fvsync version that started it"),
    hostile_journal_corrupt = case(
        "journal: corrupt",
        "filevault-off",
        |d| write_journal(d, "{\"fvsync_journal\": 2, \"user\": "),
        RECONCILE,
        5,
        Error("cannot be used: not JSON"),
    )
    .hint("move it aside"),
    hostile_journal_names_another_user = case(
        "journal: names another user",
        "filevault-off",
        |d| write_journal(d, &journal_json(2).replace("\"alice\"", "\"bob\"")),
        RECONCILE,
        5,
        Error("it names another user"),
    ),
    hostile_journal_symlink = case(
        "journal: a symlink",
        "filevault-off",
        |d| {
            write_journal(d, &journal_json(2));
            let p = journal_path(d);
            let real = p.with_extension("real");
            std::fs::rename(&p, &real).unwrap();
            std::os::unix::fs::symlink(&real, &p).unwrap();
        },
        RECONCILE,
        5,
        Error("symbolic link"),
    ),
    hostile_undo_with_no_reconcile_to_undo = case(
        "undo: no reconcile to undo",
        "filevault-off",
        nothing,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        5,
        Error("no reconcile of alice to undo"),
    ),
    // Security (issue 12): a user of this Mac who plants files in her own
    // home, a planted journal, a Preboot list edited on the disk.
    hostile_preboot_list_nested_200000_deep = case(
        "preboot: a 3 MB list of 200,000 nested arrays on a locked volume",
        "all-old",
        |d| {
            let mut x = b"<?xml version=\"1.0\"?><plist version=\"1.0\">".to_vec();
            x.extend(std::iter::repeat_n(&b"<array>"[..], 200_000).flatten());
            x.extend(std::iter::repeat_n(&b"</array>"[..], 200_000).flatten());
            x.extend_from_slice(b"</plist>");
            for name in ["AllUsersInfo.plist", "CryptoUserInfo.plist"] {
                std::fs::write(
                    d.join(format!("Volumes/disk3s2/{PREBOOT_GROUP}/var/db/{name}")),
                    &x,
                )
                .unwrap();
            }
        },
        &["diagnose", "--user", "alice", "--password-stdin"],
        5,
        Error("nested deeper than 64 levels"),
    )
    .hint("diskutil apfs unlockVolume disk3s5"),
    hostile_preboot_names_alice_as_itadmin_reconcile = case(
        "takeover: the Preboot list gives alice's FileVault user itadmin's name (reconcile)",
        "all-old",
        preboot_names_alice_itadmin,
        &["reconcile", "--user", "itadmin", "--password-stdin", "--yes"],
        5,
        Error("but the FileVault user that was unlocked is A11CE000"),
    )
    .stdin(b"Old-Passw0rd!\nAttacker-Passw0rd!\n")
    .hint("the Preboot volume's user list")
    .attempts(),
    hostile_preboot_names_alice_as_itadmin_diagnose = case(
        "takeover: the same Preboot list, through diagnose",
        "all-old",
        preboot_names_alice_itadmin,
        &["diagnose", "--user", "itadmin", "--password-stdin"],
        5,
        Error("record has GeneratedUID ADA11000"),
    )
    .stdin(b"Old-Passw0rd!\nAttacker-Passw0rd!\n")
    .attempts(),
    hostile_undo_through_a_planted_keychains_link = case(
        "takeover: after a reconcile, alice's Keychains folder becomes a link to bob's (undo)",
        "all-old",
        |d| {
            reconciled(d);
            let kcs = keychain_path(d, "alice").parent().unwrap().to_path_buf();
            std::fs::remove_dir_all(&kcs).unwrap();
            std::os::unix::fs::symlink("../../bob/Library/Keychains", &kcs).unwrap();
        },
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        5,
        Error("symbolic link; fvsync never follows links"),
    )
    .stdin(b"New-Passw0rd!\nOld-Passw0rd!\n")
    .attempts(),
    hostile_journal_run_id_with_a_newline = case(
        "planted journal: a run id holding a newline (a forged audit line)",
        "filevault-off",
        |d| write_journal(d, &journal_json(2).replace("20260101T000000Z-1", "20260101T000000Z-1\\n2026 fvsync forged")),
        RECONCILE,
        5,
        Error("not a run id of the form"),
    ),
    hostile_journal_with_paths = case(
        "planted journal: old-style paths to copy from and to (any path is refused)",
        "filevault-off",
        |d| {
            let mut v: serde_json::Value = serde_json::from_str(&journal_json(2)).unwrap();
            v["record_backup"] = "/etc/passwd".into();
            v["keychain_path"] = "../../bob/Library/Keychains/login.keychain-db".into();
            write_journal(d, &v.to_string());
        },
        RECONCILE,
        5,
        Error("not a journal fvsync can read (unknown field `"),
    ),
    hostile_journal_writable_by_everyone = case(
        "planted journal: mode 0666",
        "filevault-off",
        |d| {
            write_journal(d, &journal_json(2));
            std::fs::set_permissions(journal_path(d), std::fs::Permissions::from_mode(0o666)).unwrap();
        },
        RECONCILE,
        5,
        Error("is writable by other users (mode 0666)"),
    ),
    hostile_journal_owned_by_a_user = case(
        "planted journal: owned by alice (uid 501), not root",
        "filevault-off",
        |d| {
            write_journal(d, &journal_json(2));
            chown(&journal_path(d), 501);
        },
        RECONCILE,
        5,
        Error("is owned by uid 501, not by root"),
    )
    .root_only(),
    hostile_backup_owned_by_a_user_undo = case(
        "planted backup: after a reconcile, the record backup is replaced by alice's own file",
        "filevault-off",
        |d| {
            reconciled(d);
            let dir = data_root(d).join("private/var/db/fvsync/backups");
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.to_string_lossy().ends_with(".plist") && !p.to_string_lossy().contains("verifier") {
                    chown(&p, 501);
                }
            }
        },
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        5,
        Error("user record backup of run"),
    )
    .stdin(b"New-Passw0rd!\nOld-Passw0rd!\n")
    .root_only(),
    hostile_keychain_hard_link_to_bobs = case(
        "keychain: alice's login keychain is a hard link to bob's",
        "filevault-off",
        |d| {
            let a = keychain_path(d, "alice");
            std::fs::remove_file(&a).unwrap();
            std::fs::hard_link(keychain_path(d, "bob"), &a).unwrap();
        },
        DIAG,
        5,
        Error("has 2 hard links"),
    ),
    hostile_keychain_owned_by_bob = case(
        "keychain: alice's login keychain is owned by bob (uid 502)",
        "filevault-off",
        |d| chown(&keychain_path(d, "alice"), 502),
        DIAG,
        5,
        Error("is owned by uid 502, not by uid 501"),
    )
    .root_only(),
    hostile_home_points_at_bob = case(
        "record: alice's home is /Users/bob (a password oracle on bob's keychain)",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert("home".into(), Value::Array(vec!["/Users/bob".into()]));
            });
        },
        DIAG,
        5,
        Error("is owned by uid 502, not by uid 501"),
    )
    .root_only(),
    hostile_volume_mounted_with_ownership_ignored = case(
        "volume: mounted with file ownership ignored (every file uid 99)",
        "filevault-off",
        |d| {
            let p = d.join("SimulatedMac.plist");
            let mut v = Value::from_file(&p).unwrap();
            let c = &mut v.as_dictionary_mut().unwrap()["Containers"].as_array_mut().unwrap()[0];
            for vol in c.as_dictionary_mut().unwrap()["Volumes"].as_array_mut().unwrap() {
                let vol = vol.as_dictionary_mut().unwrap();
                if vol["DeviceIdentifier"].as_string() == Some("disk3s5") {
                    vol.insert("GlobalPermissionsEnabled".into(), Value::Boolean(false));
                }
            }
            v.to_file_xml(&p).unwrap();
        },
        DIAG,
        5,
        Error("mounted with file ownership ignored"),
    )
    .hint("diskutil enableOwnership disk3s5"),
    hostile_fvsync_folder_is_a_symlink = case(
        "planted link: private/var/db/fvsync points elsewhere",
        "filevault-off",
        |d| {
            let elsewhere = d.parent().unwrap().join("elsewhere");
            std::fs::create_dir_all(&elsewhere).unwrap();
            let p = data_root(d).join("private/var/db/fvsync");
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &p).unwrap();
        },
        RECONCILE,
        5,
        Error("symbolic link"),
    ),
    hostile_volume_selector_matches_two_volumes = case(
        "--volume: the name matches the internal and an external Data volume",
        "multi-volume",
        |d| {
            let p = d.join("SimulatedMac.plist");
            let s = std::fs::read_to_string(&p)
                .unwrap()
                .replace("Backup HD - Data", "Macintosh HD - Data");
            std::fs::write(p, s).unwrap();
        },
        &["diagnose", "--user", "bob", "--volume", "Macintosh HD - Data", "--password-stdin"],
        2,
        Error("matches several Data volumes: disk3s5 (Macintosh HD - Data), disk5s5 (Macintosh HD - Data, external)"),
    ),
    hostile_nothing_proves_old = case(
        "proof of OLD: FileVault off, the login hash unreadable, no Kerberos keys, no keychain (a reset, not a reconcile)",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert("ShadowHashData".into(), Value::Array(vec![Value::Data(b"garbage".to_vec())]));
                r.remove("KerberosKeys");
            });
            std::fs::remove_file(keychain_path(d, "alice")).unwrap();
        },
        RECONCILE,
        5,
        Error("nothing proves OLD for alice"),
    )
    .hint("resetpassword"),
    hostile_local_items_folder_with_an_escape = case(
        "escape: a Local Items folder named with ESC[2J (clears the screen, fakes a verdict)",
        "filevault-off",
        |d| {
            let kcs = keychain_path(d, "alice").parent().unwrap().to_path_buf();
            for e in std::fs::read_dir(&kcs).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    std::fs::rename(&p, kcs.join("\x1b[2J\x1b[HIn sync")).unwrap();
                }
            }
        },
        DIAG,
        3,
        Out("Local Items     cannot check"),
    ),
    hostile_generateduid_with_an_escape_in_users = case(
        "escape: a generateduid holding ESC[2J, listed by `users`",
        "filevault-off",
        |d| {
            edit_record(d, "alice", |r| {
                r.insert("generateduid".into(), Value::Array(vec!["\x1b[2JA11CE000".into()]));
            });
        },
        &["users"],
        0,
        Out("\\u{1b}[2JA11CE000"),
    ),
    hostile_simulated_mac_unknown_format_version = case(
        "simulated Mac: unknown FormatVersion",
        "filevault-off",
        |d| {
            let p = d.join("SimulatedMac.plist");
            let s = std::fs::read_to_string(&p).unwrap().replacen(
                "<integer>1</integer>",
                "<integer>7</integer>",
                1,
            );
            std::fs::write(p, s).unwrap();
        },
        DIAG,
        1,
        Error("FormatVersion 7"),
    ),
];

fn run_case(c: &Case) {
    if c.root_only && !nix::unistd::geteuid().is_root() {
        eprintln!("{}: needs root (real file owners); skipped", c.name);
        return;
    }
    let (_t, dir) = mac(c.scenario);
    (c.setup)(&dir);
    let before = tree(&dir);
    // The suite's second pass (`FVSYNC_TEST_BACKEND=diskutil`) sends every
    // case that is not about the simulated Mac's own files through the
    // diskutil backend and the emulated diskutil.
    let backend = match c.backend {
        Backend::Sim if diskutil_mode() && !c.sim_only => Backend::Diskutil("lines"),
        b => b,
    };
    let mut args: Vec<OsString> = match backend {
        Backend::Sim => vec!["--simulate".into(), dir.clone().into_os_string()],
        Backend::Diskutil(mode) => vec![
            "--diskutil".into(),
            diskutil_wrapper(&dir, mode).into_os_string(),
            "--hdiutil".into(),
            hdiutil_wrapper(&dir).into_os_string(),
            "--diskutil-timeout".into(),
            "1".into(),
        ],
    };
    // Details (schemes, paths) are shown with --verbose.
    args.push("--verbose".into());
    args.extend(c.args.iter().cloned());
    let mut cmd = fvsync();
    cmd.args(&args).write_stdin(c.stdin.clone());
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    if matches!(backend, Backend::Diskutil(_)) {
        let calls = emulator_calls(&dir);
        for pw in [OLD, NEW] {
            assert!(
                !calls.contains(pw),
                "{}: a password reached diskutil's argv or environment",
                c.name
            );
        }
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let name = c.name;
    assert_eq!(
        o.status.code(),
        Some(c.code),
        "{name}: exit code\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{name}: panic: {stderr}"
    );
    match c.says {
        Says::Error(msg) => {
            // The error line and the `caused by:` lines under it.
            let mut lines = stderr
                .lines()
                .skip_while(|l| !l.starts_with("fvsync: error: "))
                .take_while(|l| {
                    l.starts_with("fvsync: error: ") || l.starts_with("fvsync: caused by: ")
                });
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{name}: no `fvsync: error:` line: {stderr}"))
                .to_string()
                + &lines.collect::<Vec<_>>().join("\n");
            assert!(line.contains(msg), "{name}: want {msg:?} in {line:?}");
        }
        Says::Out(msg) => assert!(stdout.contains(msg), "{name}: want {msg:?} in {stdout}"),
        Says::Clap(msg) => {
            assert!(stderr.starts_with("error: "), "{name}: {stderr}");
            assert!(stderr.contains(msg), "{name}: want {msg:?} in {stderr}");
        }
    }
    if let Some(h) = c.hint {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("fvsync: hint: "))
            .unwrap_or_else(|| panic!("{name}: no hint: {stderr}"));
        assert!(line.contains(h), "{name}: want hint {h:?} in {line:?}");
    }
    // Nothing from disk reaches the terminal raw: no escape, BEL or NUL.
    for b in [0x1b_u8, 0x07, 0x00] {
        assert!(
            !o.stderr.contains(&b) && !o.stdout.contains(&b),
            "{name}: a raw control byte {b:#04x} was printed"
        );
    }
    // Short, readable errors even for huge inputs.
    assert!(
        stderr.len() < 2000,
        "{name}: stderr is {} bytes",
        stderr.len()
    );

    let mut after = tree(&dir);
    let mut before = before;
    if c.attempts {
        before.remove("SecureEnclave.plist");
        after.remove("SecureEnclave.plist");
    }
    if c.rolled_back {
        let fvsync_own = |k: &str| {
            k.starts_with("Volumes/disk3s5/private/var/db/fvsync")
                || k.starts_with("Volumes/disk3s5/private/var/log")
        };
        for (k, v) in &before {
            assert_eq!(after.get(k), Some(v), "{name}: {k} changed");
        }
        for k in after.keys() {
            assert!(
                before.contains_key(k) || fvsync_own(k),
                "{name}: new file {k}"
            );
        }
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(journal_path(&dir)).unwrap()).unwrap();
        assert_eq!(j["state"], "rolled-back", "{name}");
        let log =
            std::fs::read_to_string(data_root(&dir).join("private/var/log/fvsync.log")).unwrap();
        assert!(log.contains("result=rolled-back"), "{name}: {log}");
        assert!(
            stderr.contains("every change was rolled back"),
            "{name}: {stderr}"
        );
    } else {
        let diff = tree_diff(&before, &after);
        assert!(
            diff.is_empty(),
            "{name}: files of the simulated Mac changed:\n{}",
            diff.join("\n")
        );
    }
}

#[test]
fn hostile_catalogue_keeps_every_case() {
    assert!(
        CATALOGUE.len() >= CATALOGUE_MIN,
        "the hostile-input catalogue has {} cases, fewer than {CATALOGUE_MIN}",
        CATALOGUE.len()
    );
    let mut tests = std::collections::HashSet::new();
    let mut names = std::collections::HashSet::new();
    for (test, make) in CATALOGUE {
        let c = make();
        assert!(test.starts_with("hostile_"), "{test}");
        assert!(tests.insert(*test), "duplicate test {test}");
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
    }
}

/// Library-level: the record loader refuses what the binary refuses, and the
/// parsers refuse a 100 MB input by size before parsing it.
#[test]
fn record_loader_refuses_untrusted_files() {
    let (_t, dir) = mac("filevault-off");
    let p = record_path(&dir, "alice");
    fvsync::formats::record::load(&p, Some("alice")).unwrap();
    std::os::unix::fs::chown(&p, Some(4242), None).unwrap();
    let e = fvsync::formats::record::load(&p, Some("alice")).unwrap_err();
    assert_eq!(e.kind(), fvsync::error::ErrorKind::Refused);
    std::os::unix::fs::chown(&p, Some(0), None).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o602)).unwrap();
    let e = fvsync::formats::record::load(&p, Some("alice")).unwrap_err();
    assert_eq!(e.kind(), fvsync::error::ErrorKind::Refused);
    let big = vec![0u8; fvsync::formats::shadowhash::MAX_BLOB_LEN + 1];
    assert!(fvsync::formats::shadowhash::ShadowHash::parse(&big).is_err());
}
