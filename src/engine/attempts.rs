//! The attempt economy. On T2 and Apple-silicon Macs the Secure Enclave allows
//! about ten failed FileVault attempts in Recovery, so every passphrase that
//! reaches the platform goes through a [`Ledger`], and this module decides the
//! order:
//!
//! 1. OLD first (`undo` tries NEW first: after a reconcile FileVault is on
//!    NEW; a re-run whose journal shows FileVault already changed with this
//!    same OLD tries NEW first too). A success costs nothing against the limit.
//! 2. NEW only if OLD was rejected, and at a terminal only after the
//!    technician agrees to spend a second attempt (`--yes` keeps the order for
//!    scripts). If OLD and NEW are the same, one attempt only.
//! 3. Never a third attempt, never a retry. A refusal by the Secure Enclave
//!    ("too many attempts") stops the run and costs nothing.
//! 4. Once a password is proven, using it again (to change the passphrase) is
//!    not an attempt; the check of NEW after a change is one.
//!
//! So a run spends at most two attempts, and at most one of them fails. Every
//! attempt is recorded with why it was made and, when it failed, why that was
//! expected or not; the count of this Recovery session (across runs, kept in
//! the memory-backed temporary folder) is shown beside this run's.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::platform::{Attempt, Platform, Volume};
use crate::secret::Password;
use crate::text::escape;

/// Which password an attempt presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Presented {
    /// OLD.
    Old,
    /// NEW.
    New,
    /// The one password `verify` checks.
    Current,
    /// The Personal Recovery Key.
    RecoveryKey,
}

impl Presented {
    fn word(self) -> &'static str {
        match self {
            Presented::Old => "OLD",
            Presented::New => "NEW",
            Presented::Current => "the password",
            Presented::RecoveryKey => "the recovery key",
        }
    }
}

/// One attempt.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Event {
    /// What was presented.
    pub password: Presented,
    /// What FileVault said.
    pub result: Attempt,
    /// Why a refusal happened or was expected, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Which of OLD and NEW FileVault accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Proven {
    /// OLD.
    Old,
    /// NEW.
    New,
    /// Neither (each one that was tried was rejected).
    Neither,
    /// The first was rejected and the technician chose not to try the second.
    Stopped,
    /// The Secure Enclave refused the first attempt: nothing was tried.
    Throttled,
}

/// This Recovery session's count, across runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct SessionCount {
    /// Attempts presented in this session (this run's included).
    pub used: u32,
    /// Of those, rejected.
    pub failed: u32,
}

/// Counts FileVault attempts in a run.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct Ledger {
    /// Passphrases presented that were not yet proven.
    pub used: u32,
    /// Of those, rejected.
    pub failed: u32,
    /// The Secure Enclave refused an attempt ("too many attempts").
    pub throttled: bool,
    /// This Recovery session, this run included (when it could be kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionCount>,
    /// Each attempt, in order.
    pub events: Vec<Event>,
    #[serde(skip)]
    session_key: Option<String>,
}

/// The session file for a volume, in the temporary folder (memory-backed in
/// recoveryOS, so it is gone at the next start, like the Secure Enclave's
/// own short-term count).
fn session_path(key: &str) -> std::path::PathBuf {
    let safe: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(96)
        .collect();
    std::env::temp_dir().join(format!("fvsync-attempts-{safe}.json"))
}

fn read_session(key: &str) -> SessionCount {
    let path = session_path(key);
    let Ok(bytes) = crate::fsio::read_capped(&path) else {
        return SessionCount::default();
    };
    // Only our own file counts: owned by us, not writable by others.
    use std::os::unix::fs::MetadataExt;
    let trusted = std::fs::symlink_metadata(&path).is_ok_and(|m| {
        m.uid() == rustix::process::geteuid().as_raw() && m.mode() & 0o022 == 0 && m.nlink() == 1
    });
    if !trusted {
        return SessionCount::default();
    }
    serde_json::from_slice(&bytes).unwrap_or_default()
}

impl Ledger {
    /// A ledger that also keeps this Recovery session's count for `vol`.
    pub fn for_volume(p: &dyn Platform, vol: &Volume) -> Ledger {
        let key = p.session_key(vol);
        Ledger {
            session: Some(read_session(&key)),
            session_key: Some(key),
            ..Ledger::default()
        }
    }

    fn record(&mut self, password: Presented, result: Attempt) {
        match result {
            Attempt::Accepted => self.used += 1,
            Attempt::Rejected => {
                self.used += 1;
                self.failed += 1;
            }
            Attempt::Throttled => self.throttled = true,
        }
        if let (Some(s), Some(key)) = (self.session.as_mut(), self.session_key.as_ref()) {
            if result != Attempt::Throttled {
                s.used += 1;
                if result == Attempt::Rejected {
                    s.failed += 1;
                }
            }
            if let Ok(bytes) = serde_json::to_vec(s) {
                let _ = crate::fsio::write_atomic(
                    &session_path(key),
                    &bytes,
                    crate::fsio::Perms::PRIVATE,
                );
            }
        }
        self.events.push(Event {
            password,
            result,
            why: None,
        });
    }

    /// Explains the last refused attempt of `password`.
    pub fn explain(&mut self, password: Presented, why: impl Into<String>) {
        if let Some(e) = self
            .events
            .iter_mut()
            .rev()
            .find(|e| e.password == password && e.result != Attempt::Accepted)
        {
            e.why = Some(why.into());
        }
    }

    /// Presents one passphrase: an unlock when `unlock`, else a check.
    ///
    /// # Errors
    /// The platform failed (not a wrong password: that is `Rejected`).
    pub fn present(
        &mut self,
        p: &mut dyn Platform,
        vol: &Volume,
        user: &str,
        pw: &Password,
        which: Presented,
        unlock: bool,
    ) -> Result<Attempt> {
        let a = if unlock {
            p.unlock(vol, user, pw)?
        } else {
            p.verify(vol, user, pw)?
        };
        self.record(which, a);
        Ok(a)
    }

    /// Counts a passphrase change's answer (a change presents the current
    /// passphrase: a refusal is a failed attempt).
    pub fn count_change(&mut self, which: Presented, a: Attempt) {
        if a != Attempt::Accepted {
            self.record(which, a);
        }
    }

    /// Finds which of OLD and NEW the crypto user accepts, unlocking the
    /// volume with it when `unlock`. OLD is tried first unless `new_first`.
    /// After a refusal, `go_on` is asked before the second attempt (a person
    /// may decline it). See the module docs.
    ///
    /// # Errors
    /// The platform failed, or `go_on` failed (the terminal could not be read).
    #[allow(clippy::too_many_arguments)]
    pub fn probe(
        &mut self,
        p: &mut dyn Platform,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
        unlock: bool,
        new_first: bool,
        go_on: &mut dyn FnMut(Presented) -> Result<bool>,
    ) -> Result<Proven> {
        let order = if new_first {
            [
                (new, Presented::New, Proven::New),
                (old, Presented::Old, Proven::Old),
            ]
        } else {
            [
                (old, Presented::Old, Proven::Old),
                (new, Presented::New, Proven::New),
            ]
        };
        match self.present(p, vol, user, order[0].0, order[0].1, unlock)? {
            Attempt::Accepted => return Ok(order[0].2),
            Attempt::Throttled => return Ok(Proven::Throttled),
            Attempt::Rejected => {}
        }
        if old.ct_eq(new) {
            return Ok(Proven::Neither);
        }
        if !go_on(order[1].1)? {
            return Ok(Proven::Stopped);
        }
        match self.present(p, vol, user, order[1].0, order[1].1, unlock)? {
            Attempt::Accepted => Ok(order[1].2),
            Attempt::Rejected | Attempt::Throttled => Ok(Proven::Neither),
        }
    }

    /// Confirms the new passphrase after a change: one attempt, without
    /// changing the lock state.
    ///
    /// # Errors
    /// The platform failed, or NEW was not accepted.
    pub fn confirm(
        &mut self,
        p: &mut dyn Platform,
        vol: &Volume,
        user: &str,
        pw: &Password,
        which: Presented,
    ) -> Result<()> {
        match self.present(p, vol, user, pw, which, false)? {
            Attempt::Accepted => Ok(()),
            Attempt::Rejected => Err(Error::new(
                ErrorKind::Failure,
                format!(
                    "FileVault did not accept {} right after the change",
                    which.word()
                ),
            )),
            Attempt::Throttled => Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "FileVault refused to check {}: too many recent attempts",
                    which.word()
                ),
            )),
        }
    }

    /// One line for the screen: this run's attempts, failures explained, and
    /// the session's count.
    pub fn line(&self) -> String {
        let mut s = format!(
            "FileVault attempts used: {} ({} failed)",
            self.used, self.failed
        );
        if let Some(sess) = &self.session {
            if sess.used > self.used {
                s.push_str(&format!(
                    "; {} in this Recovery session ({} failed)",
                    sess.used, sess.failed
                ));
            }
        }
        if self.throttled {
            s.push_str("; FileVault now refuses attempts");
        }
        s
    }

    /// The explanations of the failed attempts, one line each.
    pub fn explanations(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e.result == Attempt::Rejected)
            .map(|e| {
                format!(
                    "{} refused{}",
                    e.password.word(),
                    e.why
                        .as_deref()
                        .map(|w| format!(": {w}"))
                        .unwrap_or_default()
                )
            })
            .collect()
    }
}

/// The error for a run in which neither password opened FileVault.
pub fn neither_error(ledger: &Ledger, user: &str) -> Error {
    let used = format!(
        "{} attempt{} used",
        ledger.used,
        if ledger.used == 1 { "" } else { "s" }
    );
    let e = Error::new(
        ErrorKind::AuthFailed,
        if ledger.throttled {
            format!(
                "FileVault did not accept OLD for {}, and now refuses further attempts, so NEW was not tried ({used})",
                escape(user)
            )
        } else {
            format!(
                "FileVault accepted neither password for {} ({used})",
                escape(user)
            )
        },
    );
    if ledger.throttled {
        e.hint(
            "FileVault now refuses further attempts for a while. Do not try again in a loop: wait, \
             restart, and confirm the OLD password with the user (the password before the directory \
             change) before the next run; if it is lost, use `fvsync reconcile --recovery-key` or the \
             recovery key with Apple's `resetpassword`",
        )
    } else {
        e.hint(
            "check with the user which password they used before the directory change (OLD); attempts \
             are limited, so do not guess: if OLD is lost, use `fvsync reconcile --recovery-key`, or the \
             recovery key with Apple's `resetpassword`",
        )
    }
}

/// The error for a Secure Enclave refusal before anything was tried.
pub fn throttled_error() -> Error {
    Error::new(
        ErrorKind::Refused,
        "FileVault refuses attempts for now: Too many recent unlock attempts",
    )
    .hint(
        "wait (the delay grows from a minute to hours), restart into Recovery, and run again once; \
         if the limit is reached for good, the Mac needs its recovery key or an Apple restore",
    )
}

/// The error when the technician declined a second attempt.
pub fn stopped_error(ledger: &Ledger, first: Presented) -> Error {
    Error::new(
        ErrorKind::Cancelled,
        format!(
            "FileVault refused {}; you chose not to spend a second attempt: nothing was changed",
            first.word()
        ),
    )
    .hint(format!(
        "{}. Confirm the passwords with the user, then run again",
        ledger.line()
    ))
}
