//! Undo's application: puts a finished reconcile back from its backups, step
//! by step (FileVault NEW to OLD first, then the record and the keychain, then
//! the Preboot list), after everything was read and checked. The journal is
//! closed as undone; a stop mid-way is exit 7 and a re-run finishes it.

use crate::engine::journal::{self, Journal, RunId, State};
use crate::engine::observe::Observation;
use crate::engine::report_receipt::RunResult;
use crate::engine::step::{Step, Undo};
use crate::engine::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Password;

/// Puts the run of `j` back; returns what was put back.
///
/// # Errors
/// A step failed: exit 7 when something was already put back (a re-run
/// finishes), else that step's error.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    ctx: &mut Ctx<'_>,
    o: &mut Observation,
    j: &mut Journal,
    old: &Password,
    new: &Password,
    record: Option<&[u8]>,
    keychain: Option<&[u8]>,
    again: &str,
) -> Result<Vec<Step>> {
    // This undo's own id (its receipt's; the journal keeps the reconcile's).
    let run = RunId::new();
    let mut changed = Vec::new();
    let mut warnings = Vec::new();
    for step in Step::ALL {
        let mut u = Undo {
            p: &mut *ctx.p,
            o: &mut *o,
            journal: j,
            old,
            new,
            record: if j.is_done(Step::Login) || j.is_done(Step::Hint) {
                record
            } else {
                None
            },
            keychain: if j.is_done(Step::Keychain) {
                keychain
            } else {
                None
            },
            again,
        };
        match step.ops().undo(&mut u) {
            Ok(true) => changed.push(step),
            Ok(false) => {}
            Err(e) if step == Step::Preboot => warnings.push(format!(
                "the Preboot user list could not be refreshed ({}); run `sudo diskutil apfs updatePreboot /` after the restart",
                e.message()
            )),
            Err(e) => {
                let root = o.root()?;
                let _ = journal::audit(root, &j.user, &j.volume, &j.run_id, "undo", &changed, "incomplete");
                if !changed.is_empty() {
                    if let Some(w) = receipt(o, j, &run, RunResult::Incomplete, &changed) {
                        ctx.ui.warn(&w);
                    }
                }
                ctx.ui.set_attempts(&o.ledger);
                return Err(if changed.is_empty() {
                    e
                } else {
                    let msg = format!(
                        "undo stopped mid-way; put back so far: {}",
                        changed.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
                    );
                    e.context(ErrorKind::Incomplete, msg).hint(format!(
                        "run `{again}` again with the same passwords to finish; OLD or NEW opens each secret meanwhile"
                    ))
                });
            }
        }
    }
    for w in warnings {
        ctx.ui.warn(&w);
    }
    let root = o.root()?;
    j.state = State::Undone;
    j.save(root).map_err(|e| {
        e.context(
            ErrorKind::Failure,
            "everything was put back, but the journal could not be closed",
        )
    })?;
    journal::audit(root, &j.user, &j.volume, &j.run_id, "undo", &changed, "ok").map_err(|e| {
        Error::new(
            ErrorKind::Failure,
            format!("the audit log could not be written: {}", e.message()),
        )
    })?;
    if let Some(w) = receipt(o, j, &run, RunResult::Undone, &changed) {
        ctx.ui.warn(&w);
    }
    Ok(changed)
}

/// Undo's receipt (docs/mdm.md); the warning when it cannot be written. Its
/// first-login list stays empty: undo means OLD everywhere it put back.
fn receipt(
    o: &Observation,
    j: &Journal,
    run: &RunId,
    result: RunResult,
    changed: &[Step],
) -> Option<String> {
    let root = o.root().ok()?;
    crate::engine::receipt::record_run(
        root,
        j,
        &crate::engine::receipt::RunFacts {
            command: "undo",
            result,
            changed,
            left: &[],
            ledger: &o.ledger,
            rows_after: &[],
            sources: &o.account_sources,
            run: Some(run),
        },
    )
}
