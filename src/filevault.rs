//! The attempt economy. On T2 and Apple-silicon Macs the Secure Enclave allows
//! about ten failed FileVault attempts in Recovery, so every passphrase that
//! reaches the platform goes through here, and this module decides the order:
//!
//! 1. OLD first (`undo` tries NEW first: after a reconcile FileVault is on NEW).
//!    By definition it is the password FileVault accepted when the Mac
//!    started, so it is the one most likely to succeed; a success costs nothing
//!    against the limit.
//! 2. NEW only if OLD was rejected (FileVault may already be on NEW: a re-run, or
//!    a Mac already in sync). If OLD and NEW are the same, one attempt only.
//! 3. Never a third attempt, never a retry. A refusal by the Secure Enclave
//!    ("too many attempts") stops the run and costs nothing.
//! 4. Once a password is proven, using it again (to change the passphrase) is
//!    not an attempt; the check of NEW after a change is one.
//!
//! So a run spends at most two attempts, and at most one of them fails.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::platform::{Attempt, Platform, Volume};
use crate::secret::Password;

/// Which password FileVault accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proven {
    /// OLD.
    Old,
    /// NEW.
    New,
    /// Neither (each one that was tried was rejected).
    Neither,
    /// The Secure Enclave refused the first attempt: nothing was tried.
    Throttled,
}

/// Counts FileVault attempts in a run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Ledger {
    /// Passphrases presented that were not yet proven.
    pub attempts: u32,
    /// Of those, rejected.
    pub failed: u32,
    /// A later attempt was refused ("too many attempts").
    pub throttled: bool,
}

impl Ledger {
    fn present(
        &mut self,
        p: &mut dyn Platform,
        vol: &Volume,
        user: &str,
        pw: &Password,
        unlock: bool,
    ) -> Result<Attempt> {
        let a = if unlock {
            p.unlock(vol, user, pw)?
        } else {
            p.verify(vol, user, pw)?
        };
        match a {
            Attempt::Accepted => self.attempts += 1,
            Attempt::Rejected => {
                self.attempts += 1;
                self.failed += 1;
            }
            Attempt::Throttled => self.throttled = true,
        }
        Ok(a)
    }

    /// Finds which of OLD and NEW the crypto user accepts, unlocking the volume
    /// with it when `unlock` (the volume is locked). OLD is tried first, except
    /// when `new_first` (undo: after a reconcile FileVault is expected on NEW).
    /// See the module docs.
    ///
    /// # Errors
    /// The platform failed (not a wrong password: that is `Proven::Neither`).
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
    ) -> Result<Proven> {
        let order = if new_first {
            [(new, Proven::New), (old, Proven::Old)]
        } else {
            [(old, Proven::Old), (new, Proven::New)]
        };
        match self.present(p, vol, user, order[0].0, unlock)? {
            Attempt::Accepted => return Ok(order[0].1),
            Attempt::Throttled => return Ok(Proven::Throttled),
            Attempt::Rejected => {}
        }
        if old.ct_eq(new) {
            return Ok(Proven::Neither);
        }
        match self.present(p, vol, user, order[1].0, unlock)? {
            Attempt::Accepted => Ok(order[1].1),
            Attempt::Rejected | Attempt::Throttled => Ok(Proven::Neither),
        }
    }

    /// Checks one password (verify): one attempt.
    ///
    /// # Errors
    /// The platform failed.
    pub fn check_one(
        &mut self,
        p: &mut dyn Platform,
        vol: &Volume,
        user: &str,
        pw: &Password,
        unlock: bool,
    ) -> Result<Attempt> {
        self.present(p, vol, user, pw, unlock)
    }

    /// Confirms the new passphrase after a change: one attempt, without changing
    /// the lock state.
    ///
    /// # Errors
    /// The platform failed, or NEW was not accepted.
    pub fn confirm_new(
        &mut self,
        p: &mut dyn Platform,
        vol: &Volume,
        user: &str,
        new: &Password,
    ) -> Result<()> {
        match self.present(p, vol, user, new, false)? {
            Attempt::Accepted => Ok(()),
            Attempt::Rejected => Err(Error::new(
                ErrorKind::Failure,
                "FileVault did not accept NEW right after the change",
            )),
            Attempt::Throttled => Err(Error::new(
                ErrorKind::Refused,
                "FileVault refused to check NEW: too many recent attempts",
            )),
        }
    }
}

/// The error for a run in which neither password opened FileVault.
pub fn neither_error(ledger: &Ledger, user: &str) -> Error {
    let used = format!(
        "{} attempt{} used",
        ledger.attempts,
        if ledger.attempts == 1 { "" } else { "s" }
    );
    let mut e = Error::new(
        ErrorKind::AuthFailed,
        if ledger.throttled {
            format!(
                "FileVault did not accept OLD for {}, and now refuses further attempts, so NEW was not tried ({used})",
                crate::text::escape(user)
            )
        } else {
            format!(
                "FileVault accepted neither password for {} ({used})",
                crate::text::escape(user)
            )
        },
    );
    e = if ledger.throttled {
        e.hint(
            "FileVault now refuses further attempts for a while. Do not try again in a loop: wait, \
             restart, and confirm the OLD password with the user (the one that unlocked the Mac at startup) \
             before the next run; if it is lost, use the recovery key with Apple's `resetpassword`",
        )
    } else {
        e.hint(
            "check with the user which password unlocked the Mac at startup (OLD); attempts are limited, \
             so do not guess: if OLD is lost, use the recovery key with Apple's `resetpassword`",
        )
    };
    e
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
