//! Rollback: a run that stopped puts back, in reverse order, every step it
//! started, from its own snapshot (what it found before its first write; a
//! resumed run's journal backups are for `undo`, not for this). A passphrase
//! change is reverted only when it is known to be done; a file is put back
//! when its write was started (writing back what was there is harmless if
//! the write never landed).

use crate::engine::observe::Observation;
use crate::engine::step::{Exec, Kind, Snapshot, Step};
use crate::engine::Ctx;
use crate::error::Result;
use crate::secret::Password;

/// Puts back what this run changed (see the module docs). `current` is what
/// the changed secrets take now, `previous` what they took before.
///
/// # Errors
/// A step could not be put back (the caller then stops with exit 7).
pub fn rollback(
    ctx: &mut Ctx<'_>,
    o: &mut Observation,
    (current, previous): (&Password, &Password),
    snap: &Snapshot,
    again: &str,
    started: &[Step],
    done: &[Step],
) -> Result<()> {
    let mut reverted_passphrase = false;
    for &step in started.iter().rev() {
        crate::failpoint::hit("rollback-step")?;
        let ops = step.ops();
        if ops.kind() == Kind::Passphrase && !done.contains(&step) {
            continue;
        }
        let mut x = Exec {
            p: &mut *ctx.p,
            ui: &mut *ctx.ui,
            o: &mut *o,
            from: previous,
            to: current,
            snapshot: snap,
            again,
        };
        ops.revert(&mut x)?;
        if ops.kind() == Kind::Passphrase {
            reverted_passphrase = true;
        }
    }
    // The Preboot list is display metadata (names, hints): a failure to
    // refresh it does not lock anyone out, so it is a warning.
    if reverted_passphrase || done.contains(&Step::Preboot) || done.contains(&Step::Hint) {
        if let Err(e) = ctx.p.update_preboot(&o.target.vol) {
            ctx.ui.warn(&format!(
                "the Preboot user list could not be refreshed ({}); run `sudo diskutil apfs updatePreboot /` after the restart",
                e.message()
            ));
        }
    }
    Ok(())
}
