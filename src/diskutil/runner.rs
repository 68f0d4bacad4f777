//! The one place that runs diskutil (and hdiutil, `sysctl`, `sw_vers`): an
//! absolute path, its own session with no controlling terminal
//! ([`super::spawn`]), a fixed environment (nothing inherited), `/dev/null` on
//! stdin unless a passphrase is sent, stdout and stderr captured (capped), and
//! a timeout per call. Passphrases are only ever written to the child's stdin
//! or, for the pty framing, to a pseudo-terminal of its own; the arguments,
//! which errors show, never hold one.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

use super::spawn;

/// The default diskutil.
pub const DISKUTIL: &str = "/usr/sbin/diskutil";
/// The default hdiutil (`--hdiutil PATH` overrides it).
pub const HDIUTIL: &str = "/usr/bin/hdiutil";
/// How long one diskutil call may take (unlocks are slow).
pub const TIMEOUT: Duration = Duration::from_secs(120);
/// How long `updatePreboot` may take: a repair that rewrites the Preboot
/// volume, not a secret; slow on a Mac with many users.
pub const PREBOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// The most output read from one call.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// The most output kept from one pty conversation.
pub const MAX_PTY_OUTPUT: usize = 1024 * 1024;
/// The most prompts answered in one pty conversation (old, new, new again,
/// and one spare); a further prompt ends it.
pub const MAX_PROMPTS: usize = 4;
/// Output that ends without a newline and then stays quiet this long is a prompt.
pub const PROMPT_QUIET: Duration = Duration::from_millis(300);

/// The environment every child gets, and nothing else: a fixed PATH, a UTF-8
/// locale (English messages; CoreFoundation never falls back to a user lookup
/// or a non-UTF-8 encoding), root's home.
pub const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
    ("LANG", "en_US.UTF-8"),
    ("LC_ALL", "en_US.UTF-8"),
    ("__CF_USER_TEXT_ENCODING", "0x0:0x8000100:0x8000100"),
    ("HOME", "/var/root"),
];

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
    /// stdout and stderr as text, trimmed, for messages (real diskutil prints
    /// its error prose on stdout, some tools on stderr: both are read).
    pub fn text(&self) -> String {
        let s = format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        );
        s.replace("\r\n", "\n")
            .replace('\r', "\n")
            .trim()
            .to_string()
    }
}

/// Runs one tool.
#[derive(Clone, Debug)]
pub struct Runner {
    /// The binary.
    pub path: PathBuf,
    /// The default timeout of one call.
    pub timeout: Duration,
    /// The tool's name in messages (`diskutil`, `hdiutil`).
    pub name: &'static str,
}

/// Frames two passphrases for `changePassphrase -oldStdinpassphrase
/// -newStdinpassphrase`: OLD, a newline, NEW, a newline (the `stdin-lines`
/// framing). diskutil's own splitting of one stdin into two secrets is
/// undocumented (macos.md §10): the rehearsal proves it on a throwaway volume
/// before the user's volume is touched (docs/diskutil.md).
pub fn frame_two(old: &[u8], new: &[u8]) -> crate::secret::SecretBytes {
    crate::secret::SecretBytes::concat(&[old, b"\n", new, b"\n"])
}

fn read_capped(fd: Option<std::os::fd::OwnedFd>, cap: usize) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(fd) = fd {
            let _ = std::fs::File::from(fd)
                .take(cap as u64 + 1)
                .read_to_end(&mut buf);
        }
        buf
    })
}

impl Runner {
    /// A runner for the diskutil at `path`.
    pub fn new(path: PathBuf) -> Self {
        Runner {
            path,
            timeout: TIMEOUT,
            name: "diskutil",
        }
    }

    /// A runner for another tool (`hdiutil`, `sysctl`, `sw_vers`).
    pub fn tool(path: PathBuf, name: &'static str) -> Self {
        Runner {
            path,
            timeout: TIMEOUT,
            name,
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

    fn start_error(&self, e: &std::io::Error) -> Error {
        Error::new(
            ErrorKind::Refused,
            format!("cannot run {}: {e}", crate::text::quote_path(&self.path)),
        )
        .hint("fvsync's real-Mac backend needs macOS's diskutil; on another system, rehearse with --simulate DIR")
    }

    fn timed_out(&self, args: &[&str], timeout: Duration) -> Error {
        Error::new(
            ErrorKind::Failure,
            format!(
                "{} did not answer within {} s: {}",
                self.name,
                timeout.as_secs(),
                self.shown(args)
            ),
        )
        .hint("restart the Mac into Recovery and run again")
    }

    fn wait(&self, child: &spawn::Child, args: &[&str], timeout: Duration) -> Result<i32> {
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(spawn::Ended::Exited(code))) => return Ok(code),
                Ok(Some(spawn::Ended::Signaled)) => {
                    return Err(Error::new(
                        ErrorKind::Failure,
                        format!("{} was killed by a signal: {}", self.name, self.shown(args)),
                    ))
                }
                Ok(None) if start.elapsed() > timeout => {
                    child.kill();
                    return Err(self.timed_out(args, timeout));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    child.kill();
                    return Err(Error::new(
                        ErrorKind::Failure,
                        format!("cannot wait for {}: {e}", self.name),
                    ));
                }
            }
        }
    }

    /// Runs `tool args...` with the default timeout, writing `stdin` (a
    /// passphrase) when given.
    ///
    /// # Errors
    /// As [`Runner::run_for`].
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        self.run_for(args, stdin, self.timeout)
    }

    /// Runs `tool args...` with `timeout`, writing `stdin` when given.
    ///
    /// # Errors
    /// The tool cannot be started, hangs past the timeout, is killed by a
    /// signal, or prints more than `MAX_OUTPUT`. A non-zero exit is not an
    /// error here: callers classify it.
    pub fn run_for(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output> {
        let mut child = spawn::spawn(&self.path, args, ENV, stdin.is_some())
            .map_err(|e| self.start_error(&e))?;
        let writer = match (stdin, child.stdin.take()) {
            (Some(data), Some(fd)) => {
                // The writer thread's own copy: locked and wiped like the original.
                let data = crate::secret::SecretBytes::concat(&[data]);
                Some(std::thread::spawn(move || {
                    let _ = std::fs::File::from(fd).write_all(data.expose());
                }))
            }
            _ => None,
        };
        let out_t = read_capped(child.stdout.take(), MAX_OUTPUT);
        let err_t = read_capped(child.stderr.take(), MAX_OUTPUT);
        let status = self.wait(&child, args, timeout);
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        let status = status?;
        if stdout.len() > MAX_OUTPUT || stderr.len() > MAX_OUTPUT {
            return Err(Error::new(
                ErrorKind::Failure,
                format!(
                    "{} printed more than {MAX_OUTPUT} bytes: {}",
                    self.name,
                    self.shown(args)
                ),
            ));
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs `tool args...` on a pseudo-terminal of its own and answers its
    /// prompts without matching their words: output that ends without a
    /// newline and then stays quiet for [`PROMPT_QUIET`] is a prompt. The first
    /// prompt gets `first`, every later one `rest` (a passphrase, then `\r`),
    /// at most [`MAX_PROMPTS`]. The answers never appear in the output
    /// returned (echo is off, and any copy is blanked out).
    ///
    /// # Errors
    /// As [`Runner::run_for`], and more prompts than [`MAX_PROMPTS`].
    pub fn run_pty(
        &self,
        args: &[&str],
        first: &[u8],
        rest: &[u8],
        timeout: Duration,
    ) -> Result<Output> {
        let mut child =
            spawn::spawn_pty(&self.path, args, ENV).map_err(|e| self.start_error(&e))?;
        let Some(master) = child.stdout.take() else {
            child.kill();
            return Err(Error::new(ErrorKind::Failure, "no pseudo-terminal"));
        };
        let r = self.converse(&child, &master, args, first, rest, timeout);
        drop(master);
        let (status, mut out) = match r {
            Ok(v) => v,
            Err(e) => {
                child.kill();
                return Err(e);
            }
        };
        for secret in [first, rest] {
            blank_out(&mut out, secret);
        }
        Ok(Output {
            status,
            stdout: out,
            stderr: Vec::new(),
        })
    }

    fn converse(
        &self,
        child: &spawn::Child,
        master: &std::os::fd::OwnedFd,
        args: &[&str],
        first: &[u8],
        rest: &[u8],
        timeout: Duration,
    ) -> Result<(i32, Vec<u8>)> {
        use rustix::event::{poll, PollFd, PollFlags};
        let start = Instant::now();
        let mut out = Vec::new();
        let mut since_answer = 0usize; // bytes printed since the last answer
        let mut last_output = Instant::now();
        let mut answered = 0usize;
        let mut ended: Option<i32> = None;
        let mut buf = [0u8; 4096];
        loop {
            if start.elapsed() > timeout {
                return Err(self.timed_out(args, timeout));
            }
            let mut fds = [PollFd::new(master, PollFlags::IN)];
            let wait = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            };
            let ready = poll(&mut fds, Some(&wait)).unwrap_or(0);
            let mut closed = false;
            if ready > 0 {
                let rev = fds[0].revents();
                if rev.contains(PollFlags::IN) {
                    match rustix::io::read(master, &mut buf) {
                        Ok(0) | Err(_) => closed = true,
                        Ok(n) => {
                            if out.len() + n > MAX_PTY_OUTPUT {
                                return Err(Error::new(
                                    ErrorKind::Failure,
                                    format!(
                                        "{} printed more than {MAX_PTY_OUTPUT} bytes: {}",
                                        self.name,
                                        self.shown(args)
                                    ),
                                ));
                            }
                            out.extend_from_slice(&buf[..n]);
                            since_answer += n;
                            last_output = Instant::now();
                        }
                    }
                } else if rev.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                    closed = true;
                }
            }
            if ended.is_none() {
                match child.try_wait() {
                    Ok(Some(spawn::Ended::Exited(c))) => ended = Some(c),
                    Ok(Some(spawn::Ended::Signaled)) => {
                        return Err(Error::new(
                            ErrorKind::Failure,
                            format!("{} was killed by a signal: {}", self.name, self.shown(args)),
                        ))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(Error::new(
                            ErrorKind::Failure,
                            format!("cannot wait for {}: {e}", self.name),
                        ))
                    }
                }
            }
            if let Some(code) = ended {
                // Drain what is left, then stop.
                if closed || ready == 0 {
                    return Ok((code, out));
                }
                continue;
            }
            let prompt = since_answer > 0
                && !matches!(out.last(), Some(b'\n'))
                && last_output.elapsed() >= PROMPT_QUIET;
            if prompt {
                if answered == MAX_PROMPTS {
                    return Err(Error::new(
                        ErrorKind::Failure,
                        format!(
                            "{} asked more than {MAX_PROMPTS} questions: {}",
                            self.name,
                            self.shown(args)
                        ),
                    ));
                }
                let pw = if answered == 0 { first } else { rest };
                let answer = crate::secret::SecretBytes::concat(&[pw, b"\r"]);
                let mut f = std::fs::File::from(master.try_clone().map_err(|e| {
                    Error::new(ErrorKind::Failure, format!("pseudo-terminal: {e}"))
                })?);
                f.write_all(answer.expose()).map_err(|e| {
                    Error::new(
                        ErrorKind::Failure,
                        format!("cannot answer {}: {e}", self.name),
                    )
                })?;
                answered += 1;
                since_answer = 0;
                out.push(b'\n');
            }
        }
    }
}

/// Replaces every copy of `secret` in `out` with `<passphrase>`.
fn blank_out(out: &mut Vec<u8>, secret: &[u8]) {
    if secret.is_empty() {
        return;
    }
    let mut i = 0;
    while i + secret.len() <= out.len() {
        if &out[i..i + secret.len()] == secret {
            out.splice(i..i + secret.len(), b"<passphrase>".iter().copied());
            i += b"<passphrase>".len();
        } else {
            i += 1;
        }
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
        let mut keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split('=').next())
            .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "OLDPWD"))
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["HOME", "LANG", "LC_ALL", "PATH", "__CF_USER_TEXT_ENCODING"],
            "{text}"
        );
        assert!(text.contains("LC_ALL=en_US.UTF-8"));
        assert!(text.contains("__CF_USER_TEXT_ENCODING=0x0:0x8000100:0x8000100"));
        assert!(text.contains("HOME=/var/root"));
        assert!(!text.contains("FVSYNC_RUNNER_TEST"), "{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_session_and_no_controlling_terminal() {
        // Field 6 of /proc/PID/stat is the session: the child leads its own.
        let (_d, r) = script(
            "set -- $(cat /proc/$$/stat); echo \"pid=$1 sid=$6\"; if (exec 3</dev/tty) 2>/dev/null; then echo tty; else echo no-tty; fi",
        );
        let o = r.run(&["x"], None).unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut it = text.split_whitespace();
        let pid = it.next().unwrap().trim_start_matches("pid=").to_string();
        let sid = it.next().unwrap().trim_start_matches("sid=").to_string();
        assert_eq!(pid, sid, "{text}");
        assert_eq!(it.next(), Some("no-tty"), "{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pty_conversation_answers_prompts_in_order() {
        // A prompting program: a line, then two prompts read from /dev/tty (its
        // controlling terminal: the pty), then what it read (as lengths only).
        let (_d, r) = script(
            "echo starting; printf 'Old: ' >/dev/tty; read a </dev/tty; printf 'New: ' >/dev/tty; read b </dev/tty; echo got; [ \"$a\" = first ] && [ \"$b\" = second-✓ ] && echo match",
        );
        let o = r
            .run_pty(
                &["x"],
                b"first",
                "second-✓".as_bytes(),
                Duration::from_secs(20),
            )
            .unwrap();
        let text = o.text();
        assert_eq!(o.status, 0, "{text}");
        assert!(text.contains("starting"), "{text}");
        assert!(text.contains("got"), "{text}");
        assert!(text.contains("match"), "{text}");
        assert!(
            !text.contains("first") && !text.contains("second"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_blanked_out() {
        let mut v = b"a s3cret b s3cret".to_vec();
        blank_out(&mut v, b"s3cret");
        assert_eq!(v, b"a <passphrase> b <passphrase>");
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
