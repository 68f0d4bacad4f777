//! Tests of `recovery/fvsync-recovery.sh`, the POSIX sh launcher for the Recovery
//! terminal, and of `scripts/stage-usb.sh`: syntax, shellcheck, a USB folder, a
//! download through a stub `curl`, and the refusal of a binary whose SHA-256 does
//! not match (fvsync must never run).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

mod common;

const OLD: &str = "Old-Passw0rd!";
const NEW: &str = "New-Passw0rd!";
const FVSYNC: &str = env!("CARGO_BIN_EXE_fvsync");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    root().join("recovery/fvsync-recovery.sh")
}

/// The binary name the script looks for on this system, as it chooses it.
fn bin_name() -> &'static str {
    let out = Command::new("uname").arg("-s").output().unwrap();
    match String::from_utf8_lossy(&out.stdout).trim() {
        "Darwin" => "fvsync-macos-universal",
        _ => "fvsync-linux-x86_64",
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn have(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A simulated Mac in the common case, with fast key derivations.
fn sim_mac(dir: &Path) -> PathBuf {
    let mac = dir.join("mac");
    let out = Command::new(FVSYNC)
        .args(["sim", "create"])
        .arg(&mac)
        .args(["--scenario", "fv-old-login-new", "--iterations", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "sim create: {out:?}");
    mac
}

/// A "USB stick": the built fvsync under the name the script expects, the
/// script, and a SHA256SUMS for the binary (plus an unrelated line).
fn usb(dir: &Path) -> PathBuf {
    let usb = dir.join("My USB");
    fs::create_dir_all(&usb).unwrap();
    let bin = fs::read(FVSYNC).unwrap();
    fs::write(usb.join(bin_name()), &bin).unwrap();
    fs::copy(script(), usb.join("fvsync-recovery.sh")).unwrap();
    fs::write(
        usb.join("SHA256SUMS"),
        format!(
            "{}  fvsync-other-platform\n{}  {}\n",
            "0".repeat(64),
            sha256_hex(&bin),
            bin_name()
        ),
    )
    .unwrap();
    usb
}

/// Runs `sh <script> args...` with `stdin`, TMPDIR inside `tmp`, and an optional
/// PATH; never attached to a controlling terminal (setsid), so a prompt on
/// /dev/tty cannot hang the test.
fn run_script(script: &Path, args: &[&str], stdin: &str, tmp: &Path, path: Option<&str>) -> Output {
    let tmpdir = tmp.join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    // Resolved on our PATH: `path` may not hold sh itself.
    let sh = have("sh").unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let mut c = Command::new(sh);
    c.arg(script)
        .args(args)
        .env("TMPDIR", &tmpdir)
        .env("NO_COLOR", "1")
        .env_remove("FVSYNC_FAILPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = path {
        c.env("PATH", p);
    }
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut si = child.stdin.take().unwrap();
        let _ = si.write_all(stdin.as_bytes());
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn passwords() -> String {
    format!("{OLD}\n{NEW}\n")
}

/// The diagnose matrix of the fv-old-login-new scenario.
fn assert_matrix(stdout: &str) {
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row {name:?} in:\n{stdout}"))
            .to_string()
    };
    assert!(row("FileVault").contains("OLD"), "{stdout}");
    assert!(row("login password").contains("NEW"), "{stdout}");
    assert!(row("SRP verifier").contains("NEW"), "{stdout}");
    assert!(row("login keychain").contains("NEW"), "{stdout}");
    assert!(
        stdout.contains("FileVault attempts used: 1 (0 failed)"),
        "{stdout}"
    );
    assert!(stdout.contains("Out of sync"), "{stdout}");
}

fn leftover_temp_dirs(tmp: &Path) -> Vec<String> {
    fs::read_dir(tmp.join("tmp"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn script_syntax_is_posix_sh() {
    for s in [script(), root().join("scripts/stage-usb.sh")] {
        let out = Command::new("sh").arg("-n").arg(&s).output().unwrap();
        assert!(
            out.status.success(),
            "sh -n {}: {}",
            s.display(),
            text(&out.stderr)
        );
        if have("dash").is_some() {
            let out = Command::new("dash").arg("-n").arg(&s).output().unwrap();
            assert!(
                out.status.success(),
                "dash -n {}: {}",
                s.display(),
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn script_is_shellcheck_clean() {
    if have("shellcheck").is_none() {
        println!("note: shellcheck is not installed; skipped (apt-get install -y shellcheck)");
        return;
    }
    for s in [script(), root().join("scripts/stage-usb.sh")] {
        let out = Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(&s)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shellcheck {}:\n{}",
            s.display(),
            text(&out.stdout)
        );
    }
}

#[test]
fn usb_diagnose_runs_the_checked_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = sim_mac(tmp.path());
    let usb = usb(tmp.path());
    let out = run_script(
        &usb.join("fvsync-recovery.sh"),
        &[
            "diagnose",
            "--simulate",
            mac.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
        ],
        &passwords(),
        tmp.path(),
        None,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_matrix(&stdout);
    assert!(stderr.contains("Checksum OK"), "{stderr}");
    assert!(stderr.contains("My USB"), "{stderr}");
    assert!(
        !stderr.contains(OLD) && !stdout.contains(OLD),
        "a password was echoed"
    );
    // The launcher's own lines wrap at 80 columns (Recovery's Terminal);
    // its "Next:" line for diagnose is longer than that unwrapped.
    let mut own = false;
    for l in stderr.lines() {
        if l.starts_with("fvsync-recovery:") {
            own = true;
        } else if !l.starts_with("  ") {
            own = false;
        }
        if own {
            assert!(
                l.chars().count() <= 80,
                "{} columns:\n{l}",
                l.chars().count()
            );
        }
    }
    assert!(
        stderr.contains("fvsync-recovery: Next: fvsync checks which password each secret accepts;"),
        "{stderr}"
    );
}

#[test]
fn url_download_through_curl_on_path() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = sim_mac(tmp.path());
    // The "server": the files the URL serves.
    let server = usb(tmp.path());
    // The script alone in another folder: no binary beside it.
    let alone = tmp.path().join("alone");
    fs::create_dir_all(&alone).unwrap();
    fs::copy(script(), alone.join("fvsync-recovery.sh")).unwrap();
    // A stub curl, first on PATH: records its arguments, serves files from `server`.
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("curl.log");
    write_exec(
        &bin.join("curl"),
        &format!(
            r#"#!/bin/sh
echo "$*" >> '{log}'
out=; url=
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift ;;
    -*) ;;
    *) url=$1 ;;
  esac
  shift
done
src='{server}'/"${{url##*/}}"
[ -f "$src" ] || {{ echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }}
cp "$src" "$out"
"#,
            log = log.display(),
            server = server.display()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = run_script(
        &alone.join("fvsync-recovery.sh"),
        &[
            "--url",
            "https://it.example.com/fvsync/",
            "diagnose",
            "--simulate",
            mac.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
        ],
        &passwords(),
        tmp.path(),
        Some(&path),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_matrix(&stdout);
    let log = fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    assert_eq!(calls.len(), 2, "{log}");
    assert!(calls.iter().all(|c| c.contains("-fsSL")), "{log}");
    assert!(
        calls
            .iter()
            .any(|c| c.ends_with(&format!("https://it.example.com/fvsync/{}", bin_name()))),
        "{log}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.ends_with("https://it.example.com/fvsync/SHA256SUMS")),
        "{log}"
    );
}

#[test]
fn url_download_failure_is_clear_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    write_exec(
        &bin.join("curl"),
        "#!/bin/sh\necho 'curl: (6) Could not resolve host' >&2\nexit 6\n",
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = run_script(
        &script(),
        &[
            "--url",
            "https://nowhere.invalid/x",
            "diagnose",
            "--user",
            "alice",
        ],
        "",
        tmp.path(),
        Some(&path),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("could not download"),
        "{}",
        text(&out.stderr)
    );
    assert!(leftover_temp_dirs(tmp.path()).is_empty());
}

#[test]
fn tampered_binary_is_refused_and_never_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = sim_mac(tmp.path());
    let usb = usb(tmp.path());
    // Change one byte of the binary; SHA256SUMS still has the published hash.
    let p = usb.join(bin_name());
    let mut bytes = fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&p, &bytes).unwrap();

    let before = common::tree(&mac);
    // reconcile --yes would change the simulated Mac if fvsync ran.
    let out = run_script(
        &usb.join("fvsync-recovery.sh"),
        &[
            "reconcile",
            "--simulate",
            mac.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
            "--yes",
        ],
        &passwords(),
        tmp.path(),
        None,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(stderr.contains("refusing to run it"), "{stderr}");
    assert!(stdout.is_empty(), "fvsync printed something: {stdout}");
    assert!(!stderr.contains("Running: fvsync"), "{stderr}");
    assert_eq!(
        common::tree(&mac),
        before,
        "the simulated Mac changed: fvsync ran"
    );
    assert!(
        leftover_temp_dirs(tmp.path()).is_empty(),
        "temporary folder left behind"
    );
}

#[test]
fn missing_checksum_line_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = sim_mac(tmp.path());
    let usb = usb(tmp.path());
    fs::write(
        usb.join("SHA256SUMS"),
        format!("{}  fvsync-other-platform\n", "0".repeat(64)),
    )
    .unwrap();
    let before = common::tree(&mac);
    let out = run_script(
        &usb.join("fvsync-recovery.sh"),
        &[
            "diagnose",
            "--simulate",
            mac.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
        ],
        &passwords(),
        tmp.path(),
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("checksum") && stderr.contains("no line"),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
    assert_eq!(common::tree(&mac), before);
}

/// recoveryOS may lack shasum (a Perl script) and sha256sum: openssl must do.
#[test]
fn falls_back_to_openssl_when_shasum_and_sha256sum_are_missing() {
    let Some(openssl) = have("openssl") else {
        println!("note: openssl is not installed; skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mac = sim_mac(tmp.path());
    let usb = usb(tmp.path());
    // A PATH with only the tools the script needs, openssl, and a broken shasum.
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in [
        "uname", "mktemp", "chmod", "cp", "mv", "rm", "awk", "grep", "sed", "cat", "pwd",
    ] {
        if let Some(p) = have(tool) {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    std::os::unix::fs::symlink(openssl, bin.join("openssl")).unwrap();
    write_exec(
        &bin.join("shasum"),
        "#!/bin/sh\necho 'perl: not found' >&2\nexit 127\n",
    );
    let out = run_script(
        &usb.join("fvsync-recovery.sh"),
        &[
            "diagnose",
            "--simulate",
            mac.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
        ],
        &passwords(),
        tmp.path(),
        Some(bin.to_str().unwrap()),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("Checksum OK"), "{stderr}");
    assert_matrix(&stdout);
}

/// Without --user the script lists the users, then asks on the terminal; with
/// no terminal it stops and says to add --user.
#[test]
fn without_user_lists_users_and_needs_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = sim_mac(tmp.path());
    let usb = usb(tmp.path());
    let out = run_script(
        &usb.join("fvsync-recovery.sh"),
        &[
            "diagnose",
            "--simulate",
            mac.to_str().unwrap(),
            "--password-stdin",
        ],
        &passwords(),
        tmp.path(),
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("alice") && stderr.contains("itadmin"),
        "{stderr}"
    );
    assert!(stderr.contains("add --user NAME"), "{stderr}");
    assert!(!stderr.contains("Running: fvsync"), "{stderr}");
}

#[test]
fn unknown_command_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_script(&script(), &["alice"], "", tmp.path(), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown command 'alice'"));
    assert!(leftover_temp_dirs(tmp.path()).is_empty());
}

#[test]
fn stage_usb_stages_binaries_script_runbook_and_sums() {
    // Only when dist/ has a binary: otherwise stage-usb.sh runs a release build,
    // too slow for the test suite.
    let dist = root().join("dist");
    let names: Vec<&str> = ["fvsync-macos-universal", "fvsync-linux-x86_64"]
        .into_iter()
        .filter(|n| dist.join(n).is_file())
        .collect();
    if names.is_empty() {
        println!("note: no binary in dist/; stage-usb.sh would build one; skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("USB");
    let out = Command::new("sh")
        .arg(root().join("scripts/stage-usb.sh"))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sums = fs::read_to_string(dest.join("SHA256SUMS")).unwrap();
    let mut expected: Vec<&str> = names.clone();
    expected.extend(["fvsync-recovery.sh", "RUNBOOK.txt"]);
    for name in &expected {
        let data = fs::read(dest.join(name)).unwrap();
        assert!(
            sums.contains(&format!("{}  {}\n", sha256_hex(&data), name)),
            "{name} not in SHA256SUMS:\n{sums}"
        );
        assert!(text(&out.stdout).contains(name));
    }
    assert_eq!(sums.lines().count(), expected.len(), "{sums}");
    assert_eq!(
        fs::read(dest.join("RUNBOOK.txt")).unwrap(),
        fs::read(root().join("docs/runbook.md")).unwrap()
    );
}

#[test]
fn a_password_on_the_command_line_is_never_repeated_or_run() {
    let t = tempfile::tempdir().unwrap();
    let usb = usb(t.path());
    let mac = sim_mac(t.path());
    let script = usb.join("fvsync-recovery.sh");
    let m = mac.to_str().unwrap();
    for args in [
        &["diagnose", "--simulate", m, "--user", "alice", "S3cret-Pw!"][..],
        &[
            "diagnose",
            "--simulate",
            m,
            "--user",
            "alice",
            "--password",
            "S3cret-Pw!",
        ],
        &[
            "reconcile",
            "--simulate",
            m,
            "--user",
            "alice",
            "--password=S3cret-Pw!",
        ],
    ] {
        let out = run_script(&script, args, "", t.path(), None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            !err.contains("S3cret") && !text(&out.stdout).contains("S3cret"),
            "{err}"
        );
        assert!(
            err.contains("never takes a password on the command line"),
            "{err}"
        );
        assert!(err.contains("history -c"), "{err}");
        assert!(!err.contains("Running:"), "fvsync was run: {err}");
    }
}
