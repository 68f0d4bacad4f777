//! The FileVault (or SecureToken) passphrase: one `changePassphrase`, then a
//! check of NEW. The step is decided by whether the user's GeneratedUID is a
//! `LocalOpenDirectory` crypto user of the volume, not by the volume's
//! FileVault flag: on T2 and Apple-silicon Macs the Data volume is encrypted
//! anyway, and every SecureToken holder is a crypto user of it.

use super::{Action, Changed, Exec, Kind, Planned, Points, Step, StepOps, Undo};
use crate::engine::attempts::{throttled_error, Presented};
use crate::engine::observe::Observation;
use crate::error::{Error, ErrorKind, Result};
use crate::platform::Attempt;
use crate::text::escape;

pub(crate) struct FileVault;

/// A change whose outcome is unknown: exit 7, the journal stays open.
fn uncertain(err: Error, again: &str) -> Error {
    err.context(
        ErrorKind::Incomplete,
        "the FileVault passphrase change did not answer clearly: FileVault may or may not have \
         taken it, and accepts OLD or NEW",
    )
    .hint(format!(
        "run `{again}` again with the same passwords: it finds out which and finishes"
    ))
}

fn crypto_uuid(o: &Observation) -> Result<String> {
    o.crypto_uuid.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::Refused,
            "the user is not a crypto user of the volume",
        )
    })
}

impl StepOps for FileVault {
    fn plan(&self, o: &Observation, _before: &[Planned]) -> Planned {
        use crate::engine::secrets::Accepts;
        let what = o.fv.secret.label();
        let user = escape(&o.target.user);
        if let (Some(proof), Some(_)) = (o.via_recovery_key, &o.crypto_uuid) {
            let by = proof.words();
            return Planned::new(
                Step::Filevault,
                Action::Do,
                format!(
                    "change {user}'s {what} passphrase from OLD (proven offline by {by}) to NEW, then \
                     check NEW"
                ),
            );
        }
        match o.fv.accepts {
            Accepts::Old => Planned::new(
                Step::Filevault,
                Action::Do,
                format!("change {user}'s {what} passphrase from OLD to NEW, then check NEW"),
            ),
            Accepts::NotApplicable => Planned::new(
                Step::Filevault,
                Action::Skip,
                o.fv.note.clone().unwrap_or_else(|| "does not apply".into()),
            ),
            a if a.takes_new() => {
                Planned::new(Step::Filevault, Action::Skip, "already accepts NEW")
            }
            _ => Planned::new(
                Step::Filevault,
                Action::Leave,
                "cannot be changed: see above",
            ),
        }
    }

    fn kind(&self) -> Kind {
        Kind::Passphrase
    }

    fn points(&self) -> Points {
        Points {
            before: Some("before-filevault-change"),
            marked: Some("after-filevault-change"),
            checked: Some("after-filevault-verify"),
            ..Points::default()
        }
    }

    fn change(&self, x: &mut Exec<'_>) -> Result<Changed> {
        let uuid = crypto_uuid(x.o)?;
        x.ui.progress("changing the FileVault passphrase...");
        let r = x.p.change_passphrase(&x.o.target.vol, &uuid, x.from, x.to);
        x.ui.progress_done();
        match r {
            Ok(Attempt::Accepted) => {
                x.o.touched_filevault = true;
                Ok(Changed::Yes(None))
            }
            // Definite answers: nothing changed.
            Ok(Attempt::Rejected) => {
                x.o.ledger.count_change(Presented::Old, Attempt::Rejected);
                x.o.ledger.explain(
                    Presented::Old,
                    "FileVault refused it for the change although it had just accepted it",
                );
                Err(Error::new(
                    ErrorKind::AuthFailed,
                    "FileVault did not accept the current passphrase for the change",
                ))
            }
            Ok(Attempt::Throttled) => Err(throttled_error()),
            // A timeout, a signal, an answer not understood: it may have taken effect.
            Err(e) => Err(uncertain(e, x.again)),
        }
    }

    fn check(&self, x: &mut Exec<'_>, _written: Option<&[u8]>) -> Result<()> {
        // A rejected or refused check of NEW right after a change diskutil
        // reported done: FileVault accepts OLD or NEW, and presenting NEW again
        // to roll back would only spend another attempt.
        let uuid = crypto_uuid(x.o)?;
        let vol = x.o.target.vol.clone();
        x.o.ledger
            .confirm(x.p, &vol, &uuid, x.to, Presented::New)
            .map_err(|e| uncertain(e, x.again))
    }

    fn took_effect(&self, o: &Observation) -> bool {
        o.fv.accepts.takes_new()
    }

    fn revert(&self, x: &mut Exec<'_>) -> Result<()> {
        let uuid = crypto_uuid(x.o)?;
        match x
            .p
            .change_passphrase(&x.o.target.vol, &uuid, x.to, x.from)?
        {
            Attempt::Accepted => Ok(()),
            Attempt::Rejected => Err(Error::new(
                ErrorKind::Failure,
                "FileVault did not accept NEW to put OLD back",
            )),
            Attempt::Throttled => Err(throttled_error()),
        }
    }

    fn undo(&self, u: &mut Undo<'_>) -> Result<bool> {
        if !u.journal.is_done(Step::Filevault)
            || u.o.fv.accepts != crate::engine::secrets::Accepts::New
        {
            return Ok(false);
        }
        let uuid = crypto_uuid(u.o)?;
        let vol = u.o.target.vol.clone();
        match u.p.change_passphrase(&vol, &uuid, u.new, u.old) {
            Ok(Attempt::Accepted) => {}
            Ok(Attempt::Rejected) => {
                u.o.ledger.count_change(Presented::New, Attempt::Rejected);
                return Err(Error::new(
                    ErrorKind::AuthFailed,
                    "FileVault did not accept NEW for the change back",
                ));
            }
            Ok(Attempt::Throttled) => return Err(throttled_error()),
            Err(e) => return Err(uncertain(e, u.again)),
        }
        u.o.touched_filevault = true;
        u.o.ledger
            .confirm(u.p, &vol, &uuid, u.old, Presented::Old)
            .map_err(|e| uncertain(e, u.again))?;
        Ok(true)
    }
}
