//! The binary's wiring: help, listings, JSON, bad paths, malformed simulated
//! Macs, bad passwords, and that no flag or environment variable takes a
//! password. Every failing case checks the exit code, the message and that no
//! file changed.

mod common;
use common::*;

use clap::CommandFactory;

#[test]
fn help_lists_exit_codes_and_examples() {
    let o = run(&["--help"], "");
    assert_eq!(o.code, Some(0));
    // Every exit code of the one table, with its meaning, in the help.
    for e in fvsync::error::Exit::ALL {
        let line = format!("{:>3}  {}", e.code(), e.meaning());
        assert!(
            o.stdout.contains(&line),
            "missing {line:?} in --help:\n{}",
            o.stdout
        );
    }
    assert!(o.stdout.contains("fvsync reconcile --user alice --dry-run"));
    for sub in [
        "volumes",
        "users",
        "diagnose",
        "reconcile",
        "verify",
        "undo",
        "purge",
        "sim",
    ] {
        let o = run(&[sub, "--help"], "");
        assert_eq!(o.code, Some(0), "{sub} --help");
    }
    let o = run(&["frobnicate"], "");
    assert_eq!(o.code, Some(2));
}

#[test]
fn no_flag_or_environment_variable_takes_a_password() {
    fn walk(cmd: &clap::Command, path: &str) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str().to_ascii_lowercase();
            // clap is built without its `env` feature: no argument can read the environment.
            if id.contains("pass") || id.contains("secret") || id.contains("key") {
                assert!(
                    !a.get_action().takes_values(),
                    "{path} --{id} takes a value: passwords must never be in argv"
                );
            }
        }
        for s in cmd.get_subcommands() {
            walk(s, &format!("{path} {}", s.get_name()));
        }
    }
    walk(&fvsync::cli::Cli::command(), "fvsync");
}

#[test]
fn listings_change_no_byte_in_any_scenario() {
    for scenario in SCENARIOS {
        let (_t, dir) = mac(scenario);
        let before = tree(&dir);
        for args in [
            vec!["volumes"],
            vec!["--json", "volumes"],
            vec!["users"],
            vec!["--json", "users"],
            vec!["users", "--all"],
        ] {
            let o = cmd(&dir, &args, &[]);
            assert_eq!(o.code, Some(0), "{scenario} {args:?}: {}", o.stderr);
        }
        assert_eq!(tree(&dir), before, "{scenario}: a listing changed a file");
    }
}

#[test]
fn volumes_json_describes_the_mac() {
    let (_t, dir) = mac("multi-volume");
    let v = json(&cmd(&dir, &["--json", "volumes"], &[]));
    assert_eq!(v["version"], 1);
    let vols = v["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 10);
    let data: Vec<_> = vols.iter().filter(|v| v["roles"][0] == "Data").collect();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["device"], "disk3s5");
    assert_eq!(data[0]["locked"], true);
    assert_eq!(data[0]["filevault"], true);
    assert_eq!(data[0]["crypto_users"], 4);
    assert_eq!(data[1]["crypto_users"], 3);
}

#[test]
fn users_locked_and_unlocked() {
    let (_t, dir) = mac("fv-old-login-new");
    let v = json(&cmd(&dir, &["--json", "users"], &[]));
    let users = v["volumes"][0]["users"].as_array().unwrap();
    let names: Vec<_> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "itadmin"]);
    assert_eq!(users[0]["filevault_user"], true);
    assert!(users[0]["note"]
        .as_str()
        .unwrap()
        .contains("needs an unlock"));
    assert_eq!(users[0]["uid"], serde_json::Value::Null);

    let (_t, dir) = mac("filevault-off");
    let v = json(&cmd(&dir, &["--json", "users"], &[]));
    let users = v["volumes"][0]["users"].as_array().unwrap();
    let alice = users.iter().find(|u| u["name"] == "alice").unwrap();
    assert_eq!(alice["uid"], 501);
    assert_eq!(alice["admin"], false);
    assert_eq!(alice["keychain"], true);
    assert_eq!(alice["generated_uid"], ALICE_UUID);
    let schemes = alice["hash_schemes"].as_array().unwrap();
    assert!(schemes.iter().any(|s| s
        .as_str()
        .unwrap()
        .starts_with("SALTED-SHA512-PBKDF2 (1000)")));
    let itadmin = users.iter().find(|u| u["name"] == "itadmin").unwrap();
    assert_eq!(itadmin["admin"], true);
    assert!(
        !users.iter().any(|u| u["name"] == "root"),
        "system accounts are hidden without --all"
    );
    let v = json(&cmd(&dir, &["--json", "users", "--all"], &[]));
    assert!(v["volumes"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["name"] == "root"));
}

#[test]
fn sim_scenarios_and_create_errors() {
    let o = run(&["sim", "scenarios"], "");
    assert_eq!(o.code, Some(0));
    for s in SCENARIOS {
        assert!(o.stdout.contains(s), "{s} missing");
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("m");
    let o = run(
        &["sim", "create", d.to_str().unwrap(), "--scenario", "nope"],
        "",
    );
    assert_eq!(o.code, Some(2));
    assert!(
        o.stderr.contains("no scenario 'nope'") && o.stderr.contains("hint"),
        "{}",
        o.stderr
    );
    assert!(!d.exists());
    let o = run(
        &["sim", "create", d.to_str().unwrap(), "--iterations", "0"],
        "",
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("keep"), b"x").unwrap();
    let o = run(
        &["sim", "create", d.to_str().unwrap(), "--iterations", "1000"],
        "",
    );
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("not empty"), "{}", o.stderr);
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
}

#[test]
fn bad_paths_and_malformed_macs() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    let o = run(&["--simulate", missing.to_str().unwrap(), "volumes"], "");
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("is not a folder"), "{}", o.stderr);
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["--simulate", empty.to_str().unwrap(), "volumes"], "");
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("not a simulated Mac"), "{}", o.stderr);

    type Mutator = fn(&std::path::Path);
    let cases: &[(&str, Mutator, &[&str], i32, &str)] = &[
        (
            "garbage description",
            |d| std::fs::write(d.join("SimulatedMac.plist"), b"garbage").unwrap(),
            &["volumes"],
            1,
            "malformed",
        ),
        (
            "future format",
            |d| {
                let p = d.join("SimulatedMac.plist");
                let s = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("<integer>1</integer>", "<integer>99</integer>");
                std::fs::write(p, s).unwrap()
            },
            &["volumes"],
            1,
            "FormatVersion 99",
        ),
        (
            "device escaping the folder",
            |d| {
                let p = d.join("SimulatedMac.plist");
                let s = std::fs::read_to_string(&p)
                    .unwrap()
                    .replace("<string>disk3s5</string>", "<string>../../etc</string>");
                std::fs::write(p, s).unwrap()
            },
            &["volumes"],
            1,
            "not a device identifier",
        ),
        (
            "garbage keybag",
            |d| {
                std::fs::write(
                    d.join(format!("Keybags/{DATA_UUID}.plist")),
                    b"\x00\x01garbage",
                )
                .unwrap()
            },
            &["volumes"],
            1,
            "malformed",
        ),
        (
            "absurd KEK iteration count",
            |d| {
                let p = d.join(format!("Keybags/{DATA_UUID}.plist"));
                let s = std::fs::read_to_string(&p).unwrap().replacen(
                    "<integer>1000</integer>",
                    "<integer>1000000000000</integer>",
                    1,
                );
                std::fs::write(p, s).unwrap()
            },
            &["volumes"],
            1,
            "out of range",
        ),
        (
            "garbage record",
            |d| std::fs::write(record_path(d, "alice"), b"not a plist").unwrap(),
            &["diagnose", "--user", "alice", "--password-stdin"],
            1,
            "malformed",
        ),
        (
            "record is a symlink",
            |d| {
                let p = record_path(d, "alice");
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink("/etc/passwd", &p).unwrap()
            },
            &["diagnose", "--user", "alice", "--password-stdin"],
            5,
            "symbolic link",
        ),
    ];
    for (name, mutate, args, code, msg) in cases {
        let (_t, dir) = mac(if args[0] == "diagnose" {
            "filevault-off"
        } else {
            "fv-old-login-new"
        });
        mutate(&dir);
        let before = tree(&dir);
        let o = cmd(&dir, args, &[OLD, NEW]);
        assert_eq!(o.code, Some(*code), "{name}: {}", o.stderr);
        assert!(o.stderr.contains(msg), "{name}: {}", o.stderr);
        assert!(
            o.stderr.starts_with("fvsync: error: "),
            "{name}: {}",
            o.stderr
        );
        assert!(!o.stderr.contains("panicked"), "{name}");
        assert_eq!(tree(&dir), before, "{name}: files changed");
    }
}

#[test]
fn bad_passwords_and_names_are_usage_errors() {
    let (_t, dir) = mac("all-old");
    let before = tree(&dir);
    let long = "x".repeat(128);
    let cases: &[(&[&str], &str, &str)] = &[
        (RECONCILE, "", "missing from standard input"),
        (
            RECONCILE,
            "Old-Passw0rd!\n\n",
            "missing from standard input",
        ),
        (
            RECONCILE,
            &format!("Old-Passw0rd!\n{long}\n"),
            "at most 127 bytes",
        ),
        (RECONCILE, "Old-Passw0rd!\nab\0cd\n", "NUL"),
        (
            &["diagnose", "--user", "../alice", "--password-stdin"],
            "a\nb\n",
            "not a valid macOS short name",
        ),
        (
            &["diagnose", "--user", "nobody", "--password-stdin"],
            "a\nb\n",
            "no FileVault user 'nobody' on disk3s5",
        ),
        (
            &["reconcile", "--user", "alice", "--password-stdin"],
            "Old-Passw0rd!\nNew-Passw0rd!\n",
            "--yes",
        ),
    ];
    for (args, stdin, msg) in cases {
        let mut a = vec!["--simulate", dir.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = run(&a, stdin);
        assert_eq!(o.code, Some(2), "{args:?} {stdin:?}: {}", o.stderr);
        assert!(o.stderr.contains(msg), "{args:?}: {}", o.stderr);
        assert_eq!(tree(&dir), before, "{args:?}: files changed");
    }
    // Invalid UTF-8 on stdin.
    let o = fvsync()
        .args(["--simulate", dir.to_str().unwrap()])
        .args(RECONCILE)
        .write_stdin(b"Old-Passw0rd!\n\xff\xfe\n".to_vec())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not valid UTF-8"));
    assert_eq!(tree(&dir), before);
}

#[test]
fn runbook_is_built_in() {
    let o = run(&["runbook"], "");
    assert_eq!(o.code, Some(0));
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md")).unwrap();
    // The file as printed, with the exit-code table generated from src/error.rs
    // (tests/runbook.rs checks that the file's copy is the same).
    assert_eq!(o.stdout, fvsync::runbook::render(&file));
    assert!(o.stdout.contains("reconcile"));
}

#[test]
fn reconcile_and_undo_refuse_a_normal_boot() {
    let (_t, dir) = mac("all-old");
    let p = dir.join("SimulatedMac.plist");
    let s = std::fs::read_to_string(&p)
        .unwrap()
        .replace("<string>recovery</string>", "<string>normal</string>");
    std::fs::write(&p, s).unwrap();
    let before = tree(&dir);
    for cmdline in [
        RECONCILE.to_vec(),
        vec!["undo", "--user", "alice", "--password-stdin", "--yes"],
    ] {
        let o = cmd(&dir, &cmdline, &[OLD, NEW]);
        assert_eq!(o.code, Some(5), "{cmdline:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("recoveryOS") && o.stderr.contains("Recovery"),
            "{}",
            o.stderr
        );
    }
    assert_eq!(tree(&dir), before);
    // Diagnostics still work in a normal boot.
    let o = cmd(
        &dir,
        &[
            "reconcile",
            "--user",
            "alice",
            "--password-stdin",
            "--dry-run",
        ],
        &[OLD, NEW],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

#[test]
fn json_errors_are_json_documents() {
    let (_t, dir) = mac("not-a-filevault-user");
    // On a locked volume a name the Preboot list does not hold matches
    // nobody (a typo, or not a FileVault user): exit 2, with the list.
    let o = reconcile(&dir, &["--json"], OLD, NEW);
    assert_eq!(o.code, Some(2));
    let v = json(&o);
    assert_eq!(v["version"], 1);
    assert_eq!(v["error"]["exit_code"], 2);
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(v["filevault_attempts"]["used"], 0);
    assert!(v["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("secureTokenOn"));
    // diagnose prints its matrix even when FileVault accepts neither: one document only.
    let (_t, dir) = mac("all-old");
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &["x", "y"],
    );
    assert_eq!(o.code, Some(4));
    assert_eq!(json(&o)["exit_code"], 4);
}

#[test]
fn no_password_reaches_output_journal_log_or_backup() {
    let (_t, dir) = mac("all-old");
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    let mut seen = o.stdout + &o.stderr;
    let o = reconcile(&dir, &["--json"], OLD, NEW);
    seen += &(o.stdout + &o.stderr);
    let o = reconcile(&dir, &["--dry-run"], OLD, NEW);
    seen += &(o.stdout + &o.stderr);
    let o = cmd(
        &dir,
        &["verify", "--user", "alice", "--password-stdin"],
        &["Wrong-Passw0rd!"],
    );
    seen += &(o.stdout + &o.stderr);
    for pw in [OLD, NEW, "Wrong-Passw0rd!"] {
        assert!(!seen.contains(pw), "a password reached the output");
    }
    // Nothing on the Mac holds a password either (UTF-8 or UTF-16).
    for (path, entry) in tree(&dir) {
        if entry.sha256().is_none() {
            continue; // not a regular file
        }
        let bytes = std::fs::read(dir.join(&path)).unwrap();
        for pw in [OLD, NEW] {
            let utf16: Vec<u8> = pw.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
            assert!(
                !contains(&bytes, pw.as_bytes()) && !contains(&bytes, &utf16),
                "{path} holds a password"
            );
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_password_typed_as_an_argument_is_never_echoed() {
    let (_t, dir) = mac("fv-old-login-new");
    let d = dir.to_str().unwrap();
    for args in [
        &["--simulate", d, "diagnose", "--user", "alice", "S3cret-Pw!"][..],
        &[
            "--simulate",
            d,
            "reconcile",
            "--user",
            "alice",
            "--password",
            "S3cret-Pw!",
        ],
        &[
            "--simulate",
            d,
            "verify",
            "--user",
            "alice",
            "--password=S3cret-Pw!",
        ],
        &["S3cret-Pw!"],
    ] {
        let o = run_env(args, "", &[("COLUMNS", "80")]);
        assert_eq!(o.code, Some(2), "{args:?}: {}", o.stderr);
        assert!(
            !o.stderr.contains("S3cret") && !o.stdout.contains("S3cret"),
            "{}",
            o.stderr
        );
        let flat = o.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("fvsync never takes a password on the command line"),
            "{flat}"
        );
        assert!(
            flat.contains("clear it from the shell's history: type history -c"),
            "{flat}"
        );
        assert!(flat.contains("at a prompt"), "{flat}");
        // The prompt, not --password-stdin, is what a person typing a password is told.
        assert!(!flat.contains("--password-stdin"), "{flat}");
        assert!(
            o.stderr.lines().all(|l| l.chars().count() <= 80),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn volumes_header_of_a_real_mac_reads_this_mac() {
    // Through the emulated diskutil: the real-Mac backend's own header.
    let (t, _dir) = mac("fv-old-login-new");
    let du = t.path().join("diskutil");
    if !du.exists() {
        return;
    }
    let o = run(&["--diskutil", du.to_str().unwrap(), "volumes"], "");
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let head = o.stdout.lines().next().unwrap_or_default();
    assert!(head.starts_with("Volumes of this Mac (through "), "{head}");
    assert!(!o.stdout.contains("the this"), "{}", o.stdout);
}

#[test]
fn users_of_a_locked_volume_fit_80_columns() {
    let (_t, dir) = mac("fv-old-login-new");
    let o = run_env(
        &["--simulate", dir.to_str().unwrap(), "users"],
        "",
        &[("COLUMNS", "80")],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // The heading names the simulated Mac's folder (a temp path); the rest fits.
    fits_80_below_the_heading(&o.stdout);
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with("  ") && l.ends_with("needs an unlock")),
        "{}",
        o.stdout
    );
}

#[test]
fn volumes_fit_80_columns_and_verbose_adds_the_mount_point() {
    // multi-volume: an external disk, so names carry " (external)".
    let (_t, dir) = mac("multi-volume");
    let o = run_env(
        &["--simulate", dir.to_str().unwrap(), "volumes"],
        "",
        &[("COLUMNS", "80")],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // The heading names the simulated Mac's folder (a temp path); the table fits.
    fits_80_below_the_heading(&o.stdout);
    assert!(
        o.stdout.contains("Backup HD - Data (external)"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("mount point"), "{}", o.stdout);
    let o = run_env(
        &["--simulate", dir.to_str().unwrap(), "--verbose", "volumes"],
        "",
        &[("COLUMNS", "80")],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("mount point"), "{}", o.stdout);
}

#[test]
fn help_fits_80_columns_whatever_the_terminal() {
    // Not a terminal (width unknown) and a wide one: clap wraps at 80 both ways.
    for cols in [None, Some("200")] {
        for args in [
            &["--help"][..],
            &["-h"],
            &["diagnose", "--help"],
            &["reconcile", "--help"],
            &["undo", "--help"],
            &["receipt", "--help"],
        ] {
            let mut c = assert_cmd::Command::cargo_bin("fvsync").unwrap();
            c.args(args).env("NO_COLOR", "1");
            match cols {
                Some(n) => c.env("COLUMNS", n),
                None => c.env_remove("COLUMNS"),
            };
            let o = c.output().unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(!out.is_empty(), "{args:?}");
            for l in out.lines() {
                assert!(
                    l.chars().count() <= 80,
                    "{args:?} {cols:?}: {} columns:\n{l}",
                    l.chars().count()
                );
            }
        }
    }
}

/// Every line but the heading (which names the simulated Mac's temporary
/// folder) fits 80 columns.
fn fits_80_below_the_heading(stdout: &str) {
    for l in stdout.lines().skip(1) {
        assert!(
            l.chars().count() <= 80,
            "{} columns:\n{l}",
            l.chars().count()
        );
    }
}
