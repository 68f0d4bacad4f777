//! Passwords: the one type that holds them, and the only two ways to get one
//! (a terminal prompt with echo off, or a line of standard input).
//!
//! A [`Password`] is zeroized on drop, has no `Debug`, `Display`, `Serialize` or
//! `Clone`, and is compared in constant time. Its bytes live in one heap buffer,
//! allocated once at its final size (so no reallocation leaves a copy behind)
//! and locked in RAM where the OS allows ([`crate::memlock`]). Nothing in this
//! module (or anywhere else) builds one from argv or the environment.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// diskutil refuses passphrases longer than this many UTF-8 bytes.
pub const MAX_PASSWORD_BYTES: usize = 127;

/// A zeroizing buffer allocated once with a fixed capacity, whose pages are
/// locked in RAM (where the OS allows) before any secret byte is written.
/// On drop: wiped, then its pages unlocked, then freed.
struct LockedBuf {
    bytes: Zeroizing<Vec<u8>>,
    pin: Option<crate::memlock::Pinned>,
}

impl LockedBuf {
    fn with_capacity(capacity: usize) -> Self {
        let bytes = Zeroizing::new(Vec::with_capacity(capacity.max(1)));
        let pin = crate::memlock::pin(bytes.as_ptr(), bytes.capacity());
        LockedBuf {
            bytes,
            pin: Some(pin),
        }
    }

    #[cfg(any(test, feature = "testing"))]
    fn from_slice(s: &[u8]) -> Self {
        let mut buf = LockedBuf::with_capacity(s.len());
        buf.bytes.extend_from_slice(s);
        buf
    }

    /// Appends a byte unless the buffer is full (it never grows).
    fn push(&mut self, b: u8) -> bool {
        if self.bytes.len() < self.bytes.capacity() {
            self.bytes.push(b);
            true
        } else {
            false
        }
    }
}

impl Drop for LockedBuf {
    fn drop(&mut self) {
        // Wipe while the pages are still locked and still ours; unlock; the
        // (already wiped) Vec is freed after this.
        zeroize::Zeroize::zeroize(&mut *self.bytes);
        drop(self.pin.take());
    }
}

/// Secret bytes that are not a typed password (the stdin fvsync writes to
/// diskutil): the same locked, zeroizing, fixed-size buffer as a [`Password`],
/// with no `Debug`, `Display` or `Clone`.
pub struct SecretBytes(LockedBuf);

impl SecretBytes {
    /// The concatenation of `parts`, in one buffer allocated at its final size.
    pub fn concat(parts: &[&[u8]]) -> Self {
        let len = parts.iter().map(|p| p.len()).sum();
        let mut buf = LockedBuf::with_capacity(len);
        for p in parts {
            buf.bytes.extend_from_slice(p);
        }
        SecretBytes(buf)
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0.bytes
    }
}

/// A password as UTF-8 bytes, wiped from memory when dropped.
pub struct Password(LockedBuf);

impl Password {
    /// Wraps bytes that were just read from a prompt or stdin, checking them.
    ///
    /// # Errors
    /// Empty, longer than 127 bytes, containing NUL, or not UTF-8.
    fn from_entry(buf: LockedBuf, what: &str) -> Result<Self, Error> {
        let bytes = &buf.bytes;
        if bytes.is_empty() {
            return Err(Error::new(ErrorKind::Usage, format!("{what} is empty"))
                .hint("type the password; an empty entry cancels"));
        }
        if bytes.len() > MAX_PASSWORD_BYTES {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{what} is {} bytes long; FileVault accepts at most {MAX_PASSWORD_BYTES} bytes (UTF-8)",
                    bytes.len()
                ),
            )
            .hint("use a shorter password, as the directory's policy allows"));
        }
        if bytes.contains(&0) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{what} contains a NUL byte"),
            ));
        }
        if std::str::from_utf8(bytes).is_err() {
            return Err(
                Error::new(ErrorKind::Usage, format!("{what} is not valid UTF-8"))
                    .hint("set the terminal to UTF-8, or feed UTF-8 on standard input"),
            );
        }
        Ok(Password(buf))
    }

    /// The password's UTF-8 bytes, for a key derivation or diskutil's stdin.
    pub fn expose(&self) -> &[u8] {
        &self.0.bytes
    }

    /// Length in UTF-8 bytes.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Always false: an empty password cannot be built.
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Password) -> bool {
        let (a, b) = (self.expose(), other.expose());
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    /// Checks that this is a Personal Recovery Key as macOS shows it — six
    /// groups of four letters or digits, `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX` — and
    /// returns it in upper case (what FileVault stores), in a new locked
    /// buffer. The key is never repeated in a message.
    ///
    /// # Errors
    /// It has another shape.
    pub fn into_recovery_key(self) -> Result<Password, Error> {
        let b = self.expose();
        let ok = b.len() == 29
            && b.iter().enumerate().all(|(i, c)| {
                if i % 5 == 4 {
                    *c == b'-'
                } else {
                    c.is_ascii_alphanumeric()
                }
            });
        if !ok {
            return Err(Error::new(
                ErrorKind::Usage,
                "that is not a Personal Recovery Key (six groups of four letters or digits, \
                 XXXX-XXXX-XXXX-XXXX-XXXX-XXXX)",
            )
            .hint("type the key exactly as it was shown when FileVault was turned on (or as the MDM escrowed it)"));
        }
        let mut buf = LockedBuf::with_capacity(b.len());
        for c in b {
            buf.push(c.to_ascii_uppercase());
        }
        Ok(Password(buf))
    }

    /// Builds a password in tests (and in the test-only emulator).
    #[cfg(any(test, feature = "testing"))]
    pub fn for_tests(s: &str) -> Self {
        Password(LockedBuf::from_slice(s.as_bytes()))
    }
}

/// Which password a prompt asks for; the prompt text says why it is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The previous password (before the directory change).
    Old,
    /// The previous password, typed again.
    OldAgain,
    /// The current directory password.
    New,
    /// The current directory password, typed again.
    NewAgain,
    /// The one password `verify` checks.
    Current,
    /// The Personal Recovery Key.
    RecoveryKey,
    /// A candidate for OLD, checked offline only (the recovery-key route).
    Candidate,
}

impl Which {
    /// The words a prompt shows.
    pub fn prompt(self, user: &str) -> String {
        match self {
            Which::Old => format!("OLD password of {user} (the one before the directory change): "),
            Which::OldAgain => format!("OLD password of {user} again, to confirm: "),
            Which::New => format!("NEW password of {user} (the current directory password): "),
            Which::NewAgain => format!("NEW password of {user} again, to confirm: "),
            Which::Current => format!("password of {user} to check: "),
            Which::RecoveryKey => "Personal Recovery Key (XXXX-XXXX-...): ".to_string(),
            Which::Candidate => format!("a possible OLD password of {user} (checked offline): "),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Which::Old | Which::OldAgain => "the OLD password",
            Which::New | Which::NewAgain => "the NEW password",
            Which::Current => "the password",
            Which::RecoveryKey => "the recovery key",
            Which::Candidate => "the OLD candidate",
        }
    }

    /// The prompt for typing it again, when it is confirmed.
    fn again(self) -> Which {
        match self {
            Which::Old => Which::OldAgain,
            Which::New => Which::NewAgain,
            other => other,
        }
    }

    /// Its name in a sentence ("OLD", "NEW").
    fn short(self) -> &'static str {
        match self {
            Which::Old | Which::OldAgain => "OLD",
            Which::New | Which::NewAgain => "NEW",
            Which::Current => "the password",
            Which::RecoveryKey => "the recovery key",
            Which::Candidate => "the candidate",
        }
    }
}

/// Where passwords come from.
pub trait PasswordSource {
    /// Reads one password.
    ///
    /// # Errors
    /// Cancelled (empty entry, end of input), or an entry that is not a valid password.
    fn read(&mut self, which: Which, user: &str) -> Result<Password, Error>;

    /// True when the source is a person at a terminal (NEW is then typed twice).
    fn interactive(&self) -> bool;

    /// Tells the person at the terminal something (no-op for stdin).
    fn notice(&mut self, _message: &str) {}

    /// Asks a yes/no question; false on anything but yes.
    ///
    /// # Errors
    /// The terminal could not be read.
    fn confirm(&mut self, question: &str) -> Result<bool, Error>;

    /// Asks for one line that is not a secret (a password hint), echoed as
    /// typed; without its newline.
    ///
    /// # Errors
    /// Not a terminal, or it could not be read.
    fn ask_line(&mut self, _prompt: &str) -> Result<String, Error> {
        Err(Error::new(
            ErrorKind::Usage,
            "no terminal to ask on; give the value as an option",
        ))
    }
}

/// Reads passwords from the terminal (`/dev/tty`) with echo off.
pub struct TerminalSource;

/// Puts the terminal's saved settings back when dropped (also on an error).
struct EchoGuard<'a> {
    tty: &'a std::fs::File,
    saved: nix::sys::termios::Termios,
}

impl Drop for EchoGuard<'_> {
    fn drop(&mut self) {
        let _ =
            nix::sys::termios::tcsetattr(self.tty, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Shows `prompt` on the terminal and reads one line with echo off, byte by
/// byte, straight into a locked buffer allocated once (4 KiB): no other copy
/// of the typed bytes is made in fvsync's memory. The terminal stays in
/// canonical mode, so its line editing (erase, kill) works as at any prompt;
/// `ECHONL` echoes the final newline so the next output starts on a new line.
fn read_tty_line(prompt: &str) -> std::io::Result<LockedBuf> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    use std::io::Write;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(&tty).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags &= !(LocalFlags::ECHO | LocalFlags::ECHOE | LocalFlags::ECHOK);
    quiet.local_flags |= LocalFlags::ECHONL | LocalFlags::ICANON;
    let mut w = &tty;
    w.write_all(prompt.as_bytes())?;
    w.flush()?;
    tcsetattr(&tty, SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
    let _guard = EchoGuard { tty: &tty, saved };
    read_line_locked(&tty)
}

/// Reads one line (without its `\n` or `\r\n`) from `input`, one byte at a
/// time, into a locked buffer allocated once at 4 KiB and locked before the
/// first byte arrives (growing would leave unwiped copies behind). A longer
/// line is cut there and refused later as too long; nothing past the newline
/// is consumed.
fn read_line_locked(mut input: impl std::io::Read) -> std::io::Result<LockedBuf> {
    let mut buf = LockedBuf::with_capacity(4096);
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                let _ = buf.push(byte[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    zeroize::Zeroize::zeroize(&mut byte);
    if buf.bytes.last() == Some(&b'\r') {
        buf.bytes.pop();
    }
    Ok(buf)
}

impl PasswordSource for TerminalSource {
    fn notice(&mut self, message: &str) {
        use std::io::Write;
        if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
            let _ = writeln!(tty, "{message}");
        }
    }

    fn read(&mut self, which: Which, user: &str) -> Result<Password, Error> {
        let buf = read_tty_line(&which.prompt(user)).map_err(|e| {
            Error::new(ErrorKind::Usage, format!("cannot read the terminal: {e}"))
                .hint("run fvsync in Terminal, or pass --password-stdin and feed the passwords")
        })?;
        if buf.bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::Cancelled,
                "cancelled at the prompt (empty entry): nothing was changed",
            ));
        }
        Password::from_entry(buf, which.label())
    }

    fn interactive(&self) -> bool {
        true
    }

    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        // A yes/no is not a secret: read it from the terminal with echo on.
        use std::io::Write;
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map_err(|e| Error::new(ErrorKind::Usage, format!("cannot open the terminal: {e}")))?;
        let mut w = &tty;
        let _ = write!(w, "{question} [y/N] ");
        let _ = w.flush();
        let mut answer = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&tty), &mut answer)
            .map_err(|e| Error::new(ErrorKind::Usage, format!("cannot read the answer: {e}")))?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    fn ask_line(&mut self, prompt: &str) -> Result<String, Error> {
        use std::io::Write;
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map_err(|e| Error::new(ErrorKind::Usage, format!("cannot open the terminal: {e}")))?;
        let mut w = &tty;
        let _ = write!(w, "{prompt}");
        let _ = w.flush();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(std::io::Read::take(&tty, 4096)),
            &mut line,
        )
        .map_err(|e| Error::new(ErrorKind::Usage, format!("cannot read the answer: {e}")))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// Standard input read straight from file descriptor 0, one byte at a time:
/// no buffer (ours or the standard library's) keeps a copy of the passwords
/// beyond the zeroizing one each is read into, and nothing past the lines a
/// command needs is consumed.
pub struct RawStdin;

impl std::io::Read for RawStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        nix::unistd::read(std::io::stdin(), &mut buf[..n]).map_err(std::io::Error::from)
    }
}

/// Reads passwords from standard input, one per line (`--password-stdin`).
pub struct StdinSource<R: std::io::Read> {
    input: R,
}

impl<R: std::io::Read> StdinSource<R> {
    /// Reads lines from `input`.
    pub fn new(input: R) -> Self {
        StdinSource { input }
    }
}

impl<R: std::io::Read> PasswordSource for StdinSource<R> {
    fn read(&mut self, which: Which, _user: &str) -> Result<Password, Error> {
        let buf = read_line_locked(&mut self.input).map_err(|e| {
            Error::new(ErrorKind::Usage, format!("cannot read standard input: {e}"))
        })?;
        if buf.bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{} is missing from standard input", which.label()),
            )
            .hint("with --password-stdin, give one password per line in the order the command's help lists"));
        }
        Password::from_entry(buf, which.label())
    }

    fn interactive(&self) -> bool {
        false
    }

    fn confirm(&mut self, _question: &str) -> Result<bool, Error> {
        Ok(false)
    }
}

/// The terminal's settings at start (None when there is no terminal).
pub fn terminal_state() -> Option<nix::sys::termios::Termios> {
    let tty = std::fs::File::open("/dev/tty").ok()?;
    nix::sys::termios::tcgetattr(&tty).ok()
}

/// Puts the terminal's settings back (echo on) after an interrupted prompt.
pub fn restore_terminal(saved: Option<&nix::sys::termios::Termios>) {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return;
    };
    let state = match saved {
        Some(s) => s.clone(),
        None => match nix::sys::termios::tcgetattr(&tty) {
            Ok(mut t) => {
                t.local_flags |=
                    nix::sys::termios::LocalFlags::ECHO | nix::sys::termios::LocalFlags::ICANON;
                t
            }
            Err(_) => return,
        },
    };
    let _ = nix::sys::termios::tcsetattr(&tty, nix::sys::termios::SetArg::TCSANOW, &state);
}

/// Reads a password typed twice on a terminal (at most three tries), once
/// from stdin. A mismatch costs no FileVault attempt: nothing was tried yet.
///
/// # Errors
/// Cancelled, invalid, or three mismatches.
pub fn read_confirmed(
    src: &mut dyn PasswordSource,
    which: Which,
    user: &str,
) -> Result<Password, Error> {
    if !src.interactive() {
        return src.read(which, user);
    }
    for round in 1..=3 {
        let first = src.read(which, user)?;
        let again = src.read(which.again(), user)?;
        if first.ct_eq(&again) {
            return Ok(first);
        }
        if round < 3 {
            src.notice(&format!(
                "The two entries of {} did not match. Type it again\n({} tries left; no FileVault attempt was used).",
                which.short(),
                3 - round
            ));
        }
    }
    Err(Error::new(
        ErrorKind::Usage,
        format!(
            "the two entries of {} did not match, three times",
            which.short()
        ),
    )
    .hint("run the command again and type the password carefully; no FileVault attempt was used"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &'static [u8]) -> StdinSource<&'static [u8]> {
        StdinSource::new(s)
    }

    #[test]
    fn stdin_lines_in_order() {
        let mut s = src(b"one\ntwo\r\n");
        assert_eq!(s.read(Which::Old, "a").unwrap().expose(), b"one");
        assert_eq!(s.read(Which::New, "a").unwrap().expose(), b"two");
        assert!(s.read(Which::New, "a").is_err());
    }

    #[test]
    fn stdin_rejects_bad_entries() {
        for input in [&b"\n"[..], b"a\0b\n", b"\xff\xfe\n"] {
            let mut s = StdinSource::new(input);
            let e = s.read(Which::New, "a").err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Usage);
        }
        let long = [b'x'; 128];
        let mut s = StdinSource::new(&long[..]);
        assert!(s.read(Which::New, "a").is_err());
        let ok = [b'x'; 127];
        let mut s = StdinSource::new(&ok[..]);
        assert_eq!(s.read(Which::New, "a").unwrap().len(), 127);
    }

    #[test]
    fn constant_time_eq() {
        assert!(Password::for_tests("abc").ct_eq(&Password::for_tests("abc")));
        assert!(!Password::for_tests("abc").ct_eq(&Password::for_tests("abd")));
        assert!(!Password::for_tests("abc").ct_eq(&Password::for_tests("abcd")));
    }
}
