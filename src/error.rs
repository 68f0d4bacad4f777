//! Errors: one kind per documented exit code, a message, an optional hint.
//!
//! Messages never carry a secret: no password, hash, salt or key material is ever
//! formatted into one. Names and paths that come from disk are escaped by
//! [`crate::text::escape`] before they are printed.

use std::fmt;
use std::path::Path;

/// What went wrong, as far as the exit code is concerned (docs/exit-codes.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// 1: an unexpected failure (I/O, a tool that failed, a malformed file).
    Failure,
    /// 2: bad usage or bad input (arguments, passwords, paths).
    Usage,
    /// 3: a secret does not accept NEW (diagnose, verify).
    OutOfSync,
    /// 4: FileVault accepted neither password.
    AuthFailed,
    /// 5: refused: a precondition is not met.
    Refused,
    /// 6: stopped, and every change made was rolled back.
    RolledBack,
    /// 7: stopped mid-way; run again to finish.
    Incomplete,
}

impl ErrorKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failure => 1,
            ErrorKind::Usage => 2,
            ErrorKind::OutOfSync => 3,
            ErrorKind::AuthFailed => 4,
            ErrorKind::Refused => 5,
            ErrorKind::RolledBack => 6,
            ErrorKind::Incomplete => 7,
        }
    }
}

/// An error with its kind, a one-line message and an optional hint.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds what to do next.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Replaces the kind (e.g. a failure that was rolled back).
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
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

    /// An I/O failure on a path.
    pub fn io(action: &str, path: &Path, e: &std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::Usage,
            _ => ErrorKind::Failure,
        };
        let mut err = Error::new(
            kind,
            format!("cannot {action} {}: {e}", crate::text::quote_path(path)),
        );
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

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
