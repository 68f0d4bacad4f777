//! The one place that runs diskutil: an absolute path, a fixed environment
//! (C locale, a fixed PATH, nothing inherited), null stdin unless a passphrase
//! is sent, stdout and stderr captured (capped), and a timeout. Passphrases are
//! only ever written to diskutil's stdin; the arguments, which errors show,
//! never hold one.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// The default diskutil.
pub const DISKUTIL: &str = "/usr/sbin/diskutil";
/// How long one diskutil call may take (unlocks and updatePreboot are slow).
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// The most output read from one call.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// What a call printed and how it ended.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout and stderr as text, trimmed, for messages.
    pub fn text(&self) -> String {
        let s = format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        );
        s.trim().to_string()
    }
}

/// Runs diskutil.
#[derive(Clone, Debug)]
pub struct Runner {
    /// The diskutil binary.
    pub path: PathBuf,
    /// The timeout of one call.
    pub timeout: Duration,
}

/// Frames two passphrases for `changePassphrase -oldStdinpassphrase
/// -newStdinpassphrase`: OLD, a newline, NEW, a newline. diskutil's own
/// splitting of one stdin into two secrets is undocumented (macos.md §10.1);
/// one line each is the framing this build uses, and the emulated diskutil
/// accepts nothing else. See docs/diskutil.md for the fallback.
pub fn frame_two(old: &[u8], new: &[u8]) -> crate::secret::SecretBytes {
    crate::secret::SecretBytes::concat(&[old, b"\n", new, b"\n"])
}

impl Runner {
    /// A runner for the diskutil at `path`.
    pub fn new(path: PathBuf) -> Self {
        Runner {
            path,
            timeout: TIMEOUT,
        }
    }

    /// The command as shown in messages (no secret is ever an argument).
    pub fn shown(&self, args: &[&str]) -> String {
        let mut s = self.path.to_string_lossy().into_owned();
        for a in args {
            s.push(' ');
            s.push_str(&crate::text::escape(a));
        }
        s
    }

    /// Runs `diskutil args...`, writing `stdin` (a passphrase) when given.
    ///
    /// # Errors
    /// diskutil cannot be started, hangs past the timeout, is killed by a
    /// signal, or prints more than `MAX_OUTPUT`. A non-zero exit is not an
    /// error here: callers classify it.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LANG", "C")
            .env("LC_ALL", "C")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(
                ErrorKind::Refused,
                format!("cannot run {}: {e}", crate::text::quote_path(&self.path)),
            )
            .hint("fvsync's real-Mac backend needs macOS's diskutil; on another system, rehearse with --simulate DIR")
        })?;
        let writer = match (stdin, child.stdin.take()) {
            (Some(data), Some(mut pipe)) => {
                // The writer thread's own copy: locked and wiped like the original.
                let data = crate::secret::SecretBytes::concat(&[data]);
                Some(std::thread::spawn(move || {
                    let _ = pipe.write_all(data.expose());
                }))
            }
            _ => None,
        };
        let read = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    let _ = r.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
                }
                buf
            })
        };
        let out_t = read(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err_t = read(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::new(
                        ErrorKind::Failure,
                        format!(
                            "diskutil did not answer within {} s: {}",
                            self.timeout.as_secs(),
                            self.shown(args)
                        ),
                    )
                    .hint("restart the Mac into Recovery and run again"));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Failure,
                        format!("cannot wait for diskutil: {e}"),
                    ))
                }
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        if stdout.len() > MAX_OUTPUT || stderr.len() > MAX_OUTPUT {
            return Err(Error::new(
                ErrorKind::Failure,
                format!(
                    "diskutil printed more than {MAX_OUTPUT} bytes: {}",
                    self.shown(args)
                ),
            ));
        }
        let Some(code) = status.code() else {
            return Err(Error::new(
                ErrorKind::Failure,
                format!("diskutil was killed by a signal: {}", self.shown(args)),
            ));
        };
        Ok(Output {
            status: code,
            stdout,
            stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_one_line_each() {
        assert_eq!(
            frame_two(b"old pw", b"new pw").expose(),
            b"old pw\nnew pw\n"
        );
    }

    fn script(body: &str) -> (tempfile::TempDir, Runner) {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("diskutil");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut r = Runner::new(p);
        r.timeout = Duration::from_secs(2);
        (d, r)
    }

    #[test]
    fn fixed_environment_and_null_stdin() {
        std::env::set_var("FVSYNC_RUNNER_TEST", "leak");
        let (_d, r) = script("env; cat");
        let o = r.run(&["info"], None).unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(text.contains("LC_ALL=C"));
        assert!(!text.contains("FVSYNC_RUNNER_TEST"), "{text}");
    }

    #[test]
    fn passphrase_only_on_stdin() {
        let (_d, r) = script("echo \"$@\"; cat");
        let o = r
            .run(
                &["apfs", "unlockVolume", "disk3s5", "-stdinpassphrase"],
                Some(b"s3cret"),
            )
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "apfs unlockVolume disk3s5 -stdinpassphrase\ns3cret"
        );
    }

    #[test]
    fn timeout_signal_and_missing_binary() {
        let (_d, r) = script("sleep 30");
        let e = r.run(&["x"], None).unwrap_err();
        assert!(e.message().contains("did not answer"), "{}", e.message());
        let (_d, r) = script("kill -9 $$");
        let e = r.run(&["x"], None).unwrap_err();
        assert!(e.message().contains("signal"), "{}", e.message());
        let r = Runner::new(PathBuf::from("/nonexistent/diskutil"));
        assert_eq!(r.run(&["x"], None).unwrap_err().kind(), ErrorKind::Refused);
        let (_d, r) = script("exit 3");
        assert_eq!(r.run(&["x"], None).unwrap().status, 3);
    }
}
