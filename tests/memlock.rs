//! Memory locking (issue 6, docs/security.md): the pages that hold passwords
//! are locked in RAM while the passwords live, and unlocked after; a failure to
//! lock is a warning, not an error. The kernel's own count (`VmLck` in
//! /proc/<pid>/status) is the independent check. Linux only.
#![cfg(all(feature = "testing", target_os = "linux"))]

mod common;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};

use fvsync::secret::{PasswordSource, StdinSource, Which};

/// Locked memory of a process, in kB, as the kernel reports it.
fn vmlck_kb(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .expect("VmLck in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as usize
}

/// The kernel refused mlock here (a non-root user with RLIMIT_MEMLOCK 0, a
/// sandbox): fvsync then only warns, and these tests have nothing to measure.
fn kernel_refuses() -> bool {
    match fvsync::memlock::failure() {
        Some(why) if why.starts_with("mlock:") => {
            eprintln!("note: this kernel refuses mlock ({why}); memlock test skipped");
            true
        }
        _ => false,
    }
}

/// The only in-process test of this file (the others run fvsync as a child),
/// so nothing else in this process locks or unlocks memory meanwhile.
#[test]
fn password_pages_are_locked_while_the_password_lives() {
    let page = page_size();
    let kb = (page / 1024) as u64;
    let before = vmlck_kb("self");
    assert_eq!(fvsync::memlock::locked_pages(), 0);

    // Two guards on one page: the page is locked once, and stays locked until
    // the second guard is dropped.
    let region = vec![0u8; 3 * page];
    let aligned = (region.as_ptr() as usize + page - 1) & !(page - 1);
    let first = fvsync::memlock::pin(aligned as *const u8, 16);
    if kernel_refuses() {
        return;
    }
    assert_eq!(vmlck_kb("self"), before + kb, "one page locked");
    let second = fvsync::memlock::pin((aligned + 64) as *const u8, 16);
    assert_eq!(vmlck_kb("self"), before + kb, "the shared page locked once");
    assert_eq!(fvsync::memlock::locked_pages(), 1);
    drop(first);
    assert_eq!(
        vmlck_kb("self"),
        before + kb,
        "dropping one guard unlocked a page the other still uses"
    );
    drop(second);
    assert_eq!(vmlck_kb("self"), before, "the page stayed locked");
    assert_eq!(fvsync::memlock::locked_pages(), 0);
    // A buffer over two pages locks both.
    let both = fvsync::memlock::pin((aligned + page - 8) as *const u8, 16);
    assert_eq!(vmlck_kb("self"), before + 2 * kb);
    drop(both);
    assert_eq!(vmlck_kb("self"), before);
    drop(region);

    // Passwords read from stdin: locked while they live, unlocked after.
    let mut src = StdinSource::new(&b"first-secret\nsecond-secret\n"[..]);
    let a = src.read(Which::Old, "alice").unwrap();
    assert!(fvsync::memlock::locked_pages() >= 1);
    assert!(
        vmlck_kb("self") >= before + kb,
        "the kernel sees no locked page"
    );
    let b = src.read(Which::New, "alice").unwrap();
    drop(a);
    assert!(vmlck_kb("self") >= before + kb);
    assert_eq!(b.expose(), b"second-secret");
    drop(b);
    assert_eq!(fvsync::memlock::locked_pages(), 0);
    assert_eq!(vmlck_kb("self"), before, "a page stayed locked");
    assert_eq!(fvsync::memlock::failure(), None);
}

/// Runs `verify` with its one password held back. Once the child is blocked in
/// read(0, ...) waiting for it (the kernel's /proc/<pid>/syscall says so), reads
/// the child's locked memory; then sends the password and returns both.
fn verify_waiting(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> Option<(u64, std::process::Output)> {
    if std::fs::read_to_string("/proc/self/syscall").is_err() {
        eprintln!("note: /proc/<pid>/syscall is not readable here; memlock test skipped");
        return None;
    }
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("fvsync"));
    c.args(["--simulate", dir.to_str().unwrap()])
        .args(["verify", "--user", "alice", "--password-stdin"])
        .env_remove("FVSYNC_FAILPOINT")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "10000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let pid = child.id().to_string();
    // read(2) on file descriptor 0, as /proc/<pid>/syscall shows it.
    let waiting = format!("{} 0x0 ", nix::libc::SYS_read);
    let mut blocked = false;
    // A guard against a hang, not a timing: poll every 20 ms, give up after 60 s.
    for _ in 0..3000 {
        let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if sc.starts_with(&waiting) {
            blocked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(blocked, "fvsync never waited on standard input");
    let locked = vmlck_kb(&pid);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{NEW}\n").as_bytes()).unwrap();
    drop(stdin);
    Some((locked, child.wait_with_output().unwrap()))
}

#[test]
fn a_running_fvsync_holds_the_password_locked() {
    let (_t, dir) = mac("in-sync");
    let Some((locked, out)) = verify_waiting(&dir, &[]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("could not lock the passwords' memory against swapping (mlock:") {
        eprintln!("note: this kernel refuses mlock; memlock test skipped: {stderr}");
        return;
    }
    assert!(locked >= 4, "fvsync waited with no locked page");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("could not lock"), "{stderr}");
}

#[test]
fn a_failure_to_lock_is_a_warning_not_an_error() {
    let (_t, dir) = mac("in-sync");
    let Some((locked, out)) = verify_waiting(&dir, &[("FVSYNC_FAILPOINT", "mlock:error")]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(locked, 0, "the failpoint did not stop the lock");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("fvsync: warning: could not lock the passwords' memory"),
        "{stderr}"
    );
    assert!(!stderr.contains(NEW), "the warning carries the password");
    // Output otherwise as a normal run: the check passed.
    let normal = cmd(
        &dir,
        &["verify", "--user", "alice", "--password-stdin"],
        &[NEW],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), normal.stdout);
}

/// No `unsafe` anywhere under src/: the library and both binaries forbid it
/// (so no module can `allow` it back), and no source file spells it.
#[test]
fn no_unsafe_code_in_src() {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    assert!(files.len() > 10);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for needle in [
            "unsafe {",
            "unsafe fn",
            "unsafe impl",
            "unsafe extern",
            "allow(unsafe_code)",
            "deny(unsafe_code)",
        ] {
            assert!(!code.contains(needle), "{} has `{needle}`", f.display());
        }
    }
    for top in ["src/lib.rs", "src/main.rs", "src/bin/diskutil-emulator.rs"] {
        let text = std::fs::read_to_string(root.join(top)).unwrap();
        assert!(text.contains("#![forbid(unsafe_code)]"), "{top}");
    }
}
