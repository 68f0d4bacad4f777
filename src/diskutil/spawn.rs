//! Starting diskutil, hdiutil and the read-only helpers in a session of their
//! own, with no `unsafe` in this crate: `posix_spawn` with
//! `POSIX_SPAWN_SETSID` (nix's safe wrapper). A new session has no controlling
//! terminal, so the child cannot open fvsync's terminal (`/dev/tty` fails with
//! ENXIO) and never reads a passphrase from it behind fvsync's back.
//!
//! `Command::process_group(0)` would only start a new process group: the child
//! would keep fvsync's terminal as its controlling terminal and could still
//! open `/dev/tty` (a read from it as a background group stops it with
//! SIGTTIN). `Command::pre_exec(setsid)` is `unsafe`; `CommandExt::setsid` is
//! not stable. So the spawn is done here.
//!
//! The one exception is [`spawn_pty`]: the child gets a pseudo-terminal of its
//! own (never fvsync's), opened by the spawn itself after `setsid`, so on
//! Linux (glibc and musl apply `setsid` before the file actions) it becomes the
//! child's controlling terminal. Whether XNU applies the file actions after
//! `setsid` is not documented; if not, the pty is still the child's stdin,
//! stdout and stderr, and `readpassphrase(3)` falls back to stdin when
//! `/dev/tty` cannot be opened. The rehearsal judges either way.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

/// `POSIX_SPAWN_SETSID` (glibc/musl 0x80; Darwin `sys/spawn.h` 0x0400, macOS
/// 10.15 and later). The libc crate does not name it for Apple targets.
#[cfg(target_vendor = "apple")]
const SETSID: i32 = 0x0400;
#[cfg(not(target_vendor = "apple"))]
const SETSID: i32 = 0x80;
/// Darwin's `POSIX_SPAWN_CLOEXEC_DEFAULT`: every descriptor not named in the
/// file actions is closed in the child (no inherited descriptor can leak).
#[cfg(target_vendor = "apple")]
const CLOEXEC_DEFAULT: i32 = 0x4000;
#[cfg(not(target_vendor = "apple"))]
const CLOEXEC_DEFAULT: i32 = 0;

/// A started child: its pid (also its session and process group) and the
/// parent's ends of its standard streams.
pub struct Child {
    /// The child's pid.
    pub pid: Pid,
    /// Write end of its stdin, when piped.
    pub stdin: Option<OwnedFd>,
    /// Read end of its stdout (or the pty master).
    pub stdout: Option<OwnedFd>,
    /// Read end of its stderr.
    pub stderr: Option<OwnedFd>,
}

/// How the child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this status.
    Exited(i32),
    /// Killed by a signal.
    Signaled,
}

fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // No pipe2 on Darwin: set the flag at once; CLOEXEC_DEFAULT closes
        // anything another thread's spawn could have inherited in between.
        let (r, w) = rustix::pipe::pipe()?;
        rustix::io::fcntl_setfd(&r, rustix::io::FdFlags::CLOEXEC)?;
        rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::CLOEXEC)?;
        Ok((r, w))
    }
}

fn cstrings<'a>(items: impl Iterator<Item = &'a [u8]>) -> std::io::Result<Vec<CString>> {
    items
        .map(|b| {
            CString::new(b.to_vec()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a NUL byte in an argument",
                )
            })
        })
        .collect()
}

fn attr() -> std::io::Result<PosixSpawnAttr> {
    let mut a = PosixSpawnAttr::init()?;
    // SIGPIPE is ignored in a Rust program and an ignored signal stays ignored
    // across exec: give the child the defaults, and an empty signal mask.
    let mut def = SigSet::empty();
    for s in [
        Signal::SIGPIPE,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        def.add(s);
    }
    a.set_sigdefault(&def)?;
    a.set_sigmask(&SigSet::empty())?;
    let flags = PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF
        | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
        | PosixSpawnFlags::from_bits_retain(SETSID | CLOEXEC_DEFAULT);
    a.set_flags(flags)?;
    Ok(a)
}

fn go(
    path: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    fa: &PosixSpawnFileActions,
) -> std::io::Result<Pid> {
    let argv = cstrings(
        std::iter::once(path.as_os_str().as_bytes()).chain(args.iter().map(|a| a.as_bytes())),
    )?;
    let envs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let envp = cstrings(envs.iter().map(|s| s.as_bytes()))?;
    Ok(nix::spawn::posix_spawn(path, fa, &attr()?, &argv, &envp)?)
}

/// Starts `path args...` in a new session with exactly `env`: stdin piped when
/// `piped_stdin`, else `/dev/null`; stdout and stderr piped.
///
/// # Errors
/// The program cannot be started (missing, not executable, no resources).
pub fn spawn(
    path: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    piped_stdin: bool,
) -> std::io::Result<Child> {
    let mut fa = PosixSpawnFileActions::init()?;
    let stdin = if piped_stdin {
        let (r, w) = cloexec_pipe()?;
        fa.add_dup2(r.as_raw_fd(), 0)?;
        Some((r, w))
    } else {
        fa.add_open(0, "/dev/null", OFlag::O_RDONLY, Mode::empty())?;
        None
    };
    let (out_r, out_w) = cloexec_pipe()?;
    let (err_r, err_w) = cloexec_pipe()?;
    fa.add_dup2(out_w.as_raw_fd(), 1)?;
    fa.add_dup2(err_w.as_raw_fd(), 2)?;
    let pid = go(path, args, env, &fa)?;
    drop(out_w);
    drop(err_w);
    Ok(Child {
        pid,
        stdin: stdin.map(|(r, w)| {
            drop(r);
            w
        }),
        stdout: Some(out_r),
        stderr: Some(err_r),
    })
}

/// Starts `path args...` in a new session on a fresh pseudo-terminal with echo
/// off: the child's stdin, stdout and stderr are the pty; the returned
/// `stdout` is its master (read the output, write the answers).
///
/// # Errors
/// No pty can be had, or the program cannot be started.
pub fn spawn_pty(path: &Path, args: &[&str], env: &[(&str, &str)]) -> std::io::Result<Child> {
    use rustix::pty::OpenptFlags;
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    rustix::io::fcntl_setfd(&master, rustix::io::FdFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    // Open the slave ourselves (never as our controlling terminal) to turn echo
    // off before the child starts: a passphrase typed into it is never shown
    // back on the master, whatever the child does with the terminal modes.
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut t = rustix::termios::tcgetattr(&slave)?;
    t.local_modes.remove(
        rustix::termios::LocalModes::ECHO
            | rustix::termios::LocalModes::ECHONL
            | rustix::termios::LocalModes::ECHOE
            | rustix::termios::LocalModes::ECHOK,
    );
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t)?;
    let mut fa = PosixSpawnFileActions::init()?;
    let path_os = std::ffi::OsStr::from_bytes(name.as_bytes());
    fa.add_open(0, path_os, OFlag::O_RDWR, Mode::empty())?;
    fa.add_dup2(0, 1)?;
    fa.add_dup2(0, 2)?;
    let pid = go(path, args, env, &fa)?;
    // The child holds the slave now: once it exits, reads on the master end.
    drop(slave);
    Ok(Child {
        pid,
        stdin: None,
        stdout: Some(master),
        stderr: None,
    })
}

impl Child {
    /// The exit, when the child has ended (does not block).
    ///
    /// # Errors
    /// `waitpid` failed.
    pub fn try_wait(&self) -> std::io::Result<Option<Ended>> {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG))? {
            WaitStatus::Exited(_, code) => Ok(Some(Ended::Exited(code))),
            WaitStatus::Signaled(..) => Ok(Some(Ended::Signaled)),
            _ => Ok(None),
        }
    }

    /// Kills the child's whole session (its process group) and reaps it.
    pub fn kill(&self) {
        let _ = nix::sys::signal::killpg(self.pid, Signal::SIGKILL);
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}
