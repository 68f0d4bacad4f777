//! Errors and exit codes.
//!
//! [`Exit`] is the one table of exit codes: the help text, `fvsync runbook`'s
//! table and docs/exit-codes.md are generated from it or tested against it.
//! An [`Error`] has a kind (which sets its exit code), a one-line message, an
//! optional hint, and an optional cause, printed as `caused by:` lines.
//!
//! Messages never carry a secret: no password, hash, salt or key material is
//! ever formatted into one. Names and paths that come from disk are escaped by
//! [`crate::text::escape`] before they are printed.

use std::fmt;
use std::path::Path;

/// Every exit code fvsync uses (docs/exit-codes.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// 0: in sync, done, or nothing to do.
    Ok,
    /// 1: an unexpected failure (I/O, a tool that failed, a malformed file).
    Failure,
    /// 2: bad usage or bad input (arguments, passwords, an unknown user).
    Usage,
    /// 3: out of sync, and `reconcile` can fix it.
    OutOfSync,
    /// 4: FileVault accepted neither password.
    AuthFailed,
    /// 5: refused: a precondition is not met (nothing was changed).
    Refused,
    /// 6: stopped, and every change made was rolled back.
    RolledBack,
    /// 7: stopped mid-way; run the same command again to finish.
    Incomplete,
    /// 8: out of sync, and nothing fvsync can do would fix it.
    NeedsAttention,
    /// 9: cancelled at a question: nothing was changed.
    Cancelled,
    /// 130: interrupted (Ctrl-C).
    Interrupted,
}

impl Exit {
    /// Every code, in numeric order.
    pub const ALL: [Exit; 11] = [
        Exit::Ok,
        Exit::Failure,
        Exit::Usage,
        Exit::OutOfSync,
        Exit::AuthFailed,
        Exit::Refused,
        Exit::RolledBack,
        Exit::Incomplete,
        Exit::NeedsAttention,
        Exit::Cancelled,
        Exit::Interrupted,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::OutOfSync => 3,
            Exit::AuthFailed => 4,
            Exit::Refused => 5,
            Exit::RolledBack => 6,
            Exit::Incomplete => 7,
            Exit::NeedsAttention => 8,
            Exit::Cancelled => 9,
            Exit::Interrupted => 130,
        }
    }

    /// What the code means, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "ok: in sync, done, or nothing to do",
            Exit::Failure => "unexpected failure",
            Exit::Usage => "usage error or bad input",
            Exit::OutOfSync => "out of sync: `reconcile` can fix it",
            Exit::AuthFailed => "FileVault accepted neither password",
            Exit::Refused => "refused: a precondition is not met; nothing was changed",
            Exit::RolledBack => "stopped, and every change was rolled back",
            Exit::Incomplete => "stopped mid-way: run the same command again to finish",
            Exit::NeedsAttention => "out of sync, and reconcile cannot fix it (see the matrix)",
            Exit::Cancelled => "cancelled at a question: nothing was changed",
            Exit::Interrupted => "interrupted (Ctrl-C)",
        }
    }

    /// What a technician does next, for the runbook's table (section 8).
    pub fn next_step(self) -> &'static str {
        match self {
            Exit::Ok => "After reconcile: restart; the user types NEW at startup (section 6).",
            Exit::Failure => {
                "Read the message: it names the file. From the script, \"could not download\": \
                 check Wi-Fi and the URL. Otherwise escalate with the message."
            }
            Exit::Usage => {
                "Nothing was changed. Fix what the message says and run again. From the \
                 script: checksum refused (copy the stick again), or no user given."
            }
            Exit::OutOfSync => {
                "Before the repair: go on to reconcile (section 5). After a reconcile: run \
                 diagnose once and escalate."
            }
            Exit::AuthFailed => "Nothing was changed. Do not guess: section 7.4.",
            Exit::Refused => {
                "Nothing was changed. Not a FileVault user: section 7.1. FileVault refuses \
                 tries: section 7.2."
            }
            Exit::RolledBack => {
                "The Mac is as before. Fix the cause in the message, diagnose, then \
                 reconcile once more. If it fails again: escalate with the audit log \
                 (section 9)."
            }
            Exit::Incomplete => {
                "Every secret still opens with OLD or NEW. Run the same reconcile again \
                 with the same passwords: it finishes. Do not run undo first."
            }
            Exit::NeedsAttention => {
                "A secret takes neither password: running reconcile again cannot help. \
                 Section 7.5."
            }
            Exit::Cancelled => {
                "You answered no (or pressed Return) at a question. Run the command again \
                 when you are ready."
            }
            Exit::Interrupted => {
                "Ctrl-C. At a prompt nothing was changed; during the repair, run the same \
                 reconcile again: it finishes what was started."
            }
        }
    }

    /// The runbook's exit-code table (section 8), `width` columns wide at most.
    pub fn runbook_table(width: usize) -> String {
        let mut s = String::from("    code  what it means; what to do next\n");
        for e in Exit::ALL {
            let mut text = e.meaning().replace('`', "");
            if let Some(first) = text.get(..1) {
                text = format!("{}{}.", first.to_uppercase(), &text[1..]);
            }
            let head = format!("    {:>4}  ", e.code());
            for l in crate::output::wrap(&text, width, &head, "          ") {
                s.push_str(&l);
                s.push('\n');
            }
            for l in crate::output::wrap(e.next_step(), width, "          ", "          ") {
                s.push_str(&l);
                s.push('\n');
            }
        }
        s
    }

    /// The exit-code table for `--help` (fits 80 columns).
    pub fn help_table() -> String {
        let mut s = String::from("Exit codes:\n");
        for e in Exit::ALL {
            s.push_str(&format!("  {:>3}  {}\n", e.code(), e.meaning()));
        }
        s.pop();
        s
    }
}

/// What went wrong, as far as the exit code is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// 1: an unexpected failure (I/O, a tool that failed, a malformed file).
    Failure,
    /// 2: bad usage or bad input (arguments, passwords, paths).
    Usage,
    /// 4: FileVault accepted neither password.
    AuthFailed,
    /// 5: refused: a precondition is not met.
    Refused,
    /// 6: stopped, and every change made was rolled back.
    RolledBack,
    /// 7: stopped mid-way; run again to finish.
    Incomplete,
    /// 9: the person answered no: nothing was changed.
    Cancelled,
}

impl ErrorKind {
    /// The exit code entry for this kind.
    pub fn exit(self) -> Exit {
        match self {
            ErrorKind::Failure => Exit::Failure,
            ErrorKind::Usage => Exit::Usage,
            ErrorKind::AuthFailed => Exit::AuthFailed,
            ErrorKind::Refused => Exit::Refused,
            ErrorKind::RolledBack => Exit::RolledBack,
            ErrorKind::Incomplete => Exit::Incomplete,
            ErrorKind::Cancelled => Exit::Cancelled,
        }
    }

    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        self.exit().code()
    }
}

/// An error's cause.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error with its kind, a one-line message, an optional hint and cause.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    source: Option<Source>,
    io: Option<std::io::ErrorKind>,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            source: None,
            io: None,
        }
    }

    /// Adds what to do next.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds the cause (printed as a `caused by:` line).
    #[must_use]
    pub fn caused_by(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// This error as the cause of a new one with another kind and message
    /// (the hint is kept unless the new error sets its own).
    #[must_use]
    pub fn context(self, kind: ErrorKind, message: impl Into<String>) -> Self {
        let hint = self.hint.clone();
        let io = self.io;
        Error {
            kind,
            message: message.into(),
            hint,
            source: Some(Box::new(self)),
            io,
        }
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint, if any.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The causes, outermost first, as lines to print.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|s| s as _);
        while let Some(e) = cur {
            out.push(crate::text::escape(&e.to_string()));
            cur = e.source();
            if out.len() > 16 {
                break;
            }
        }
        out
    }

    /// True when this error (or its cause) is an I/O "not found".
    pub fn is_not_found(&self) -> bool {
        self.io == Some(std::io::ErrorKind::NotFound)
    }

    /// An I/O failure on a path. A missing file is a failure too (exit 1): a
    /// path fvsync builds itself is never the user's typo.
    pub fn io(action: &str, path: &Path, e: &std::io::Error) -> Self {
        let mut err = Error::new(
            ErrorKind::Failure,
            format!("cannot {action} {}: {e}", crate::text::quote_path(path)),
        );
        err.io = Some(e.kind());
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            err = err.hint("run as root (in Recovery, Terminal already is)");
        } else if e.raw_os_error() == Some(30) {
            err = err.hint("the volume is read-only; unlock it read-write and run again");
        } else if e.raw_os_error() == Some(28) {
            err =
                err.hint("the volume is full; free some space and run again (nothing was changed)");
        }
        err
    }

    /// A malformed file.
    pub fn malformed(path: &Path, what: impl fmt::Display) -> Self {
        Error::new(
            ErrorKind::Failure,
            format!("{} is malformed: {what}", crate::text::quote_path(path)),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_order() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
        assert!(Exit::help_table().lines().all(|l| l.chars().count() <= 80));
        let t = Exit::runbook_table(80);
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        for e in Exit::ALL {
            assert!(t.contains(&format!("    {:>4}  ", e.code())), "{t}");
        }
    }

    #[test]
    fn causes_are_listed_and_not_found_is_seen() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Error::io("read", Path::new("/x"), &io);
        assert_eq!(e.kind(), ErrorKind::Failure);
        assert!(e.is_not_found());
        let outer = e.context(ErrorKind::Refused, "cannot go on");
        assert_eq!(outer.causes().len(), 1);
        assert!(outer.causes()[0].contains("cannot read '/x'"));
        assert!(outer.is_not_found());
    }
}
