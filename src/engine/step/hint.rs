//! The password hint: the record's `hint` (the login window's) and the
//! crypto user's (the FileVault unlock screen's, `diskutil apfs
//! setPassphraseHint`). A hint that describes OLD misleads the user at the
//! next start, so a reconcile shows it and asks whether to keep it, and
//! `--hint TEXT` sets it (an empty TEXT clears it). Not a secret: a failure is
//! a warning, never a rollback. It runs before the Preboot step, which copies
//! the hint to what the login window shows before unlock.

use super::{Action, Changed, Exec, Kind, Planned, Points, Step, StepOps, Undo};
use crate::engine::observe::Observation;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::record::UserRecord;
use crate::fsio::{Perms, Want};

/// The longest hint accepted (the login window shows one line of it).
pub const MAX_HINT: usize = 256;

/// Checks a hint given on the command line or at the prompt.
///
/// # Errors
/// A control character (a newline, an escape) or more than [`MAX_HINT`]
/// characters (2).
pub fn check(hint: &str) -> Result<()> {
    if hint.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorKind::Usage,
            "the hint holds a control character (a newline, a tab, an escape); nothing was changed",
        ));
    }
    if hint.chars().count() > MAX_HINT {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("the hint is longer than {MAX_HINT} characters; nothing was changed"),
        ));
    }
    Ok(())
}

/// Refuses a hint that holds a password (OLD or NEW, in any letter case):
/// the hint shows on the login window to anyone at the Mac, and macOS itself
/// refuses such a hint. Neither password is ever part of the message.
///
/// # Errors
/// The hint holds one of the passwords (2).
pub fn check_not_password(hint: &str, passwords: &[&crate::secret::Password]) -> Result<()> {
    let h = hint.to_lowercase();
    for p in passwords {
        let Ok(pw) = std::str::from_utf8(p.expose()) else {
            continue;
        };
        // Case-folding copies the password: the copy is wiped after use.
        let pw = zeroize::Zeroizing::new(pw.to_lowercase());
        if !pw.is_empty() && h.contains(pw.as_str()) {
            return Err(Error::new(
                ErrorKind::Usage,
                "the hint holds the password itself; anyone at the Mac can read a hint. Nothing was changed",
            )
            .hint("choose a hint that reminds the user without giving the password away"));
        }
    }
    Ok(())
}

/// The hints in place now: the record's and the crypto user's (`None`:
/// none, or not a crypto user).
pub fn current(o: &Observation) -> (Option<String>, Option<String>) {
    let rec = o
        .offline
        .as_ref()
        .and_then(|off| off.record.hint().map(str::to_string));
    let fv = o
        .target
        .crypto
        .as_ref()
        .and_then(|c| c.hint.clone())
        .filter(|h| !h.is_empty());
    (rec, fv)
}

/// The crypto user whose hint FileVault shows (bound to the record).
fn crypto_uuid(o: &Observation) -> Option<String> {
    o.crypto_uuid
        .clone()
        .or_else(|| o.target.crypto.as_ref().map(|c| c.uuid.clone()))
}

pub(crate) struct Hint;

/// Writes `hint` to the record (read fresh: the login step may have written
/// it in this run) and to the crypto user. Returns the record's bytes.
fn apply(
    x_p: &mut dyn crate::platform::Platform,
    o: &mut Observation,
    hint: &str,
) -> Result<Vec<u8>> {
    let root = o.root()?;
    let off = o.offline()?;
    let rel = &off.record_file.rel;
    let (bytes, meta) = root.read(rel, Want::SYSTEM)?;
    let mut rec = UserRecord::parse(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Failure,
            format!("the record cannot be read again: {e}"),
        )
    })?;
    let mut written = bytes;
    if rec.hint().unwrap_or("") != hint {
        rec.set_hint(hint);
        written = rec.to_bytes()?;
        root.write_atomic(rel, &written, Perms::of(&meta))?;
    }
    if let Some(uuid) = crypto_uuid(o) {
        x_p.set_hint(
            &o.target.vol,
            &uuid,
            if hint.is_empty() { None } else { Some(hint) },
        )?;
        // The Preboot list copies the crypto user's hint.
        o.touched_filevault = true;
    }
    Ok(written)
}

impl StepOps for Hint {
    fn plan(&self, o: &Observation, _before: &[Planned]) -> Planned {
        let Some(want) = &o.hint_request else {
            let (rec, fv) = current(o);
            return Planned::new(
                Step::Hint,
                Action::Skip,
                if rec.is_some() || fv.is_some() {
                    "keep the password hint (--hint TEXT changes it)"
                } else {
                    "no password hint"
                },
            );
        };
        if o.offline.is_none() {
            return Planned::new(
                Step::Hint,
                Action::Leave,
                "the record cannot be read, so the hint cannot be set",
            );
        }
        let (rec, fv) = current(o);
        let want_opt = (!want.is_empty()).then(|| want.clone());
        let fv_ok = crypto_uuid(o).is_none() || fv == want_opt;
        if rec == want_opt && fv_ok {
            return Planned::new(
                Step::Hint,
                Action::Skip,
                "the password hint is already the one asked for",
            );
        }
        let whose = if crypto_uuid(o).is_some() {
            "the login window's and FileVault's"
        } else {
            "the login window's"
        };
        Planned::new(
            Step::Hint,
            Action::Do,
            if want.is_empty() {
                format!("clear the password hint ({whose})")
            } else {
                format!("set the password hint ({whose}) to the one given")
            },
        )
    }

    fn kind(&self) -> Kind {
        Kind::Repair
    }

    fn points(&self) -> Points {
        Points {
            marked: Some("after-hint"),
            ..Points::default()
        }
    }

    fn change(&self, x: &mut Exec<'_>) -> Result<Changed> {
        let Some(want) = x.o.hint_request.clone() else {
            return Ok(Changed::No("no hint was asked for".into()));
        };
        x.ui.progress("setting the password hint...");
        let r = apply(x.p, x.o, &want);
        x.ui.progress_done();
        r.map(|b| Changed::Yes(Some(b)))
    }

    fn check(&self, x: &mut Exec<'_>, written: Option<&[u8]>) -> Result<()> {
        super::login::check_record(x, written)
    }

    fn took_effect(&self, _o: &Observation) -> bool {
        // Setting it again is harmless.
        false
    }

    fn revert(&self, x: &mut Exec<'_>) -> Result<()> {
        // Nothing but the login step (earlier, reverted after this one)
        // writes the record in a run: its snapshot's bytes are what it held
        // before this step, whether or not the login step ran. FileVault's
        // hint goes back to the one observed.
        super::login::restore_record(x)?;
        if let Some(uuid) = crypto_uuid(x.o) {
            let fv = current(x.o).1;
            x.p.set_hint(&x.o.target.vol, &uuid, fv.as_deref())?;
        }
        Ok(())
    }

    fn undo(&self, u: &mut Undo<'_>) -> Result<bool> {
        if !u.journal.is_done(Step::Hint) {
            return Ok(false);
        }
        // The hint the record had before the reconcile (its backup); the
        // crypto user gets the same one (macOS keeps the two alike).
        let Some(backup) = u.record else {
            return Ok(false);
        };
        let before = UserRecord::parse(backup).map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("the record backup is malformed: {e}"),
            )
        })?;
        let old = before.hint().unwrap_or("").to_string();
        apply(u.p, u.o, &old)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_checked() {
        assert!(check("").is_ok());
        assert!(check("the blue one, then the year").is_ok());
        assert!(check("Pässwörd ✓").is_ok());
        assert!(check(&"x".repeat(MAX_HINT)).is_ok());
        assert!(check(&"x".repeat(MAX_HINT + 1)).is_err());
        for bad in ["two\nlines", "tab\there", "esc\u{1b}[2J"] {
            assert_eq!(check(bad).unwrap_err().kind(), ErrorKind::Usage, "{bad:?}");
        }
    }
}
