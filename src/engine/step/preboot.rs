//! The Preboot volume's user lists (`diskutil apfs updatePreboot`): display
//! metadata for the FileVault login window (names, pictures, hints), never a
//! secret. It runs after every FileVault change; its failure is a warning
//! with what to do, never a rollback (a rollback would run a second
//! passphrase change, the riskier act).

use super::{Action, Changed, Exec, Kind, Planned, Points, Step, StepOps, Undo};
use crate::engine::observe::Observation;
use crate::error::{Error, ErrorKind, Result};

pub(crate) struct Preboot;

impl StepOps for Preboot {
    fn plan(&self, o: &Observation, before: &[Planned]) -> Planned {
        // What the Preboot list copies: the crypto users (FileVault's
        // passphrase) and their hints.
        let fv = before
            .iter()
            .any(|p| matches!(p.step, Step::Filevault | Step::Hint) && p.action == Action::Do);
        let resumed = o.journal.as_ref().is_some_and(|j| {
            j.state == crate::engine::journal::State::Open
                && (j.is_done(Step::Filevault) || j.is_done(Step::Hint))
                && !j.is_done(Step::Preboot)
        });
        if fv || resumed {
            Planned::new(
                Step::Preboot,
                Action::Do,
                "update the Preboot volume's user list (what the login window shows)",
            )
        } else if o.preboot_current == Some(false) {
            Planned::new(
                Step::Preboot,
                Action::Do,
                format!(
                    "update the Preboot volume's user list: it is out of date ({})",
                    o.preboot_stale
                        .as_deref()
                        .unwrap_or("it does not show what the record says")
                ),
            )
        } else {
            Planned::new(
                Step::Preboot,
                Action::Skip,
                "no FileVault or hint change needs it",
            )
        }
    }

    fn kind(&self) -> Kind {
        Kind::Repair
    }

    fn points(&self) -> Points {
        Points {
            marked: Some("after-preboot"),
            ..Points::default()
        }
    }

    fn change(&self, x: &mut Exec<'_>) -> Result<Changed> {
        x.ui.progress("updating the Preboot volume...");
        let r = x.p.update_preboot(&x.o.target.vol);
        x.ui.progress_done();
        r?;
        // Afterwards the lists must name the user's crypto user (a list that
        // cannot be read leaves it unchecked). A failure here is the step's,
        // so a warning with what to do, never a rollback.
        if let Some(uuid) = x.o.crypto_uuid.clone() {
            if crate::engine::target::preboot_lists_user(x.p, &x.o.target.vol, &uuid)?
                == Some(false)
            {
                return Err(Error::new(
                    ErrorKind::Failure,
                    format!(
                        "the update finished, but the list still does not show {}'s FileVault user",
                        crate::text::escape(&x.o.target.user)
                    ),
                ));
            }
        }
        Ok(Changed::Yes(None))
    }

    fn took_effect(&self, _o: &Observation) -> bool {
        // Running it again is harmless: a started update counts as not done.
        false
    }

    fn revert(&self, _x: &mut Exec<'_>) -> Result<()> {
        Ok(())
    }

    fn undo(&self, u: &mut Undo<'_>) -> Result<bool> {
        if !u.o.touched_filevault {
            return Ok(false);
        }
        u.p.update_preboot(&u.o.target.vol)?;
        Ok(true)
    }
}
