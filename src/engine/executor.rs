//! The one executor: it runs a plan's steps in order and owns everything
//! around them — the journal and its marks (no step writes the journal), the
//! backups and this run's snapshot, the failpoints between steps, the audit
//! line, the reverse-order rollback and the "outcome unknown" path.
//!
//! For each step: the journal says "started" (saved), the step changes,
//! the journal says "done" (saved), the step checks its own work. A failure:
//! - whose outcome is unknown (a passphrase change diskutil did not answer):
//!   exit 7, nothing rolled back, the journal stays open for the next run;
//! - of a repair (the Preboot list): a warning with what to do;
//! - otherwise: every step this run started is put back from its snapshot, in
//!   reverse order (a passphrase change only when it is known to be done),
//!   exit 6; if that cannot finish either, exit 7 with the journal open.

pub use crate::engine::resume::verifier_accepts;

use crate::engine::journal::{self, Backup, Journal, State};
use crate::engine::observe::Observation;
use crate::engine::report_receipt::RunResult;
use crate::engine::resume;
use crate::engine::step::{Action, Changed, Exec, Kind, Planned, Snapshot, Step};
use crate::engine::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::fsio::{Owner, Want};
use crate::secret::Password;

/// What a run changed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Steps done (this run's, and those of an interrupted run it resumed).
    pub changed: Vec<Step>,
    /// Steps left as they were at apply time, with why.
    pub left: Vec<(Step, String)>,
    /// Warnings (a repair that failed).
    pub warnings: Vec<String>,
    /// The run's id.
    pub run_id: Option<journal::RunId>,
}

struct Progress {
    started: Vec<Step>,
    done: Vec<Step>,
}

/// Takes this run's snapshot of what it may change, checking that the files
/// are still exactly what was observed (nothing changed them while the
/// technician read the plan).
fn snapshot(o: &Observation) -> Result<Snapshot> {
    let root = o.root()?;
    let off = o.offline()?;
    let (record, _) = root.read(&off.record_file.rel, Want::SYSTEM)?;
    let changed = || {
        Error::new(
            ErrorKind::Refused,
            "the user's files changed while the plan was shown; nothing was changed",
        )
        .hint("run the command again")
    };
    if record != off.record_file.bytes {
        return Err(changed());
    }
    let keychain = match &off.keychain {
        Some(kc) => {
            let want = Want {
                owner: Owner::Uid(off.ident.uid),
                private: false,
            };
            let (bytes, _) = root.read(&kc.rel, want)?;
            if bytes != kc.bytes {
                return Err(changed());
            }
            Some(bytes)
        }
        None => None,
    };
    Ok(Snapshot {
        record: Some(record),
        keychain,
    })
}

fn hit(point: Option<&str>) -> Result<()> {
    match point {
        Some(p) => crate::failpoint::hit(p),
        None => Ok(()),
    }
}

/// Runs the plan's steps (see the module docs).
///
/// # Errors
/// 6 rolled back, 7 stopped mid-way (outcome unknown, or a rollback that
/// could not finish), or the error of a step that changed nothing.
pub fn execute(
    ctx: &mut Ctx<'_>,
    o: &mut Observation,
    plan: &[Planned],
    old: &Password,
    new: &Password,
    resuming: Option<Journal>,
    again: &str,
) -> Result<Outcome> {
    let snap = snapshot(o)?;
    let resumed = resuming.is_some();
    let (user, uuid, device) = {
        let off = o.offline()?;
        (
            off.ident.name.clone(),
            off.ident.generated_uid.clone(),
            o.target.vol.device.clone(),
        )
    };
    let todo: Vec<Step> = plan
        .iter()
        .filter(|p| p.action == Action::Do)
        .map(|p| p.step)
        .collect();
    // 1. The journal and the backups (kept from the interrupted run when
    //    resuming: they hold the state before anything changed).
    let mut j = match resuming {
        Some(mut j) => {
            resume::settle_started(&mut j, o);
            j.save(o.root()?)?;
            j
        }
        None => {
            let mut j = Journal::new(&user, &uuid, &device, &todo);
            let root = o.root()?;
            if let Some(r) = &snap.record {
                j.write_backup(root, Backup::Record, r)?;
            }
            if let Some(k) = &snap.keychain {
                j.write_backup(root, Backup::Keychain, k)?;
            }
            let verifier = resume::old_verifier(old, o.floors.0)?;
            j.write_backup(root, Backup::OldVerifier, &verifier)?;
            crate::failpoint::hit("after-backups")?;
            j.save(root)?;
            j
        }
    };
    let mut out = Outcome {
        run_id: Some(j.run_id.clone()),
        ..Outcome::default()
    };
    let mut prog = Progress {
        started: Vec::new(),
        done: Vec::new(),
    };
    let r = run_steps(
        ctx,
        o,
        &todo,
        (old, new),
        &snap,
        again,
        &mut j,
        &mut prog,
        &mut out,
    );
    let root = o.root()?;
    match r {
        Ok(()) => {
            j.state = State::Done;
            j.save(root).map_err(|e| {
                e.context(
                    ErrorKind::Failure,
                    "every step was done and verified, but the journal could not be closed",
                )
                .hint(format!(
                    "run `{again}` again: it finds nothing to do and closes the journal"
                ))
            })?;
            crate::failpoint::hit("after-journal-close")?;
            out.changed = Step::ALL
                .into_iter()
                .filter(|s| prog.done.contains(s) || j.is_done(*s))
                .collect();
            if let Err(e) = journal::audit(
                root,
                &user,
                &device,
                &j.run_id,
                "reconcile",
                &out.changed,
                "ok",
            ) {
                out.warnings.push(format!(
                    "the audit log could not be written: {}",
                    e.message()
                ));
            }
            let done = out.changed.clone();
            out.warnings
                .extend(receipt(o, &j, RunResult::Done, &done, &out.left));
            Ok(out)
        }
        Err(e) if e.kind() == ErrorKind::Incomplete => {
            // Not known whether the step took effect: nothing to roll back with
            // confidence. The journal stays open; the next run finds out.
            let _ = j.save(root);
            let _ = journal::audit(
                root,
                &user,
                &device,
                &j.run_id,
                "reconcile",
                &prog.done,
                "incomplete",
            );
            if let Some(w) = receipt(o, &j, RunResult::Incomplete, &prog.done, &out.left) {
                ctx.ui.warn(&w);
            }
            Err(e)
        }
        Err(e) => {
            let rolled = crate::engine::rollback::rollback(
                ctx,
                o,
                (new, old),
                &snap,
                again,
                &prog.started,
                &prog.done,
            );
            let root = o.root()?;
            // A resumed run rolls back to where it started, which still holds
            // the interrupted run's changes: that journal stays open.
            if rolled.is_ok() && !resumed {
                j.state = State::RolledBack;
            }
            let _ = j.save(root);
            let result = if rolled.is_ok() {
                "rolled-back"
            } else {
                "incomplete"
            };
            let _ = journal::audit(
                root,
                &user,
                &device,
                &j.run_id,
                "reconcile",
                &prog.done,
                result,
            );
            let w = if rolled.is_ok() {
                receipt(o, &j, RunResult::RolledBack, &[], &out.left)
            } else {
                receipt(o, &j, RunResult::Incomplete, &prog.done, &out.left)
            };
            if let Some(w) = w {
                ctx.ui.warn(&w);
            }
            match rolled {
                Ok(()) => {
                    let hint = e
                        .hint_text()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("fix the cause and run `{again}` again"));
                    Err(e
                        .context(
                            ErrorKind::RolledBack,
                            "reconcile stopped, and every change was rolled back (FileVault and the \
                             login accept what they did before)",
                        )
                        .hint(hint))
                }
                Err(e2) => Err(Error::new(
                    ErrorKind::Incomplete,
                    format!(
                        "reconcile stopped ({}), and the rollback could not finish either ({}). The \
                         journal {} records what was done",
                        e.message(),
                        e2.message(),
                        root.show(&journal::path(&user)?)
                    ),
                )
                .hint(format!("run `{again}` again with the same passwords to finish; OLD or NEW opens each secret meanwhile"))),
            }
        }
    }
}

/// The run's receipt (docs/mdm.md); the warning when it cannot be written.
fn receipt(
    o: &Observation,
    j: &Journal,
    result: RunResult,
    changed: &[Step],
    left: &[(Step, String)],
) -> Option<String> {
    let root = o.root().ok()?;
    let after = crate::engine::plan::rows_after(&o.rows(), changed);
    crate::engine::receipt::record_run(
        root,
        j,
        &crate::engine::receipt::RunFacts {
            command: "reconcile",
            result,
            changed,
            left,
            ledger: &o.ledger,
            rows_after: &after,
            sources: &o.account_sources,
            run: None,
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn run_steps(
    ctx: &mut Ctx<'_>,
    o: &mut Observation,
    todo: &[Step],
    (old, new): (&Password, &Password),
    snap: &Snapshot,
    again: &str,
    j: &mut Journal,
    prog: &mut Progress,
    out: &mut Outcome,
) -> Result<()> {
    crate::failpoint::hit("after-journal")?;
    for &step in todo {
        if j.is_done(step) {
            continue;
        }
        let ops = step.ops();
        let points = ops.points();
        j.mark_started(step);
        j.save(o.root()?)?;
        if ops.kind() == Kind::File {
            prog.started.push(step);
        }
        let mut x = Exec {
            p: &mut *ctx.p,
            ui: &mut *ctx.ui,
            o: &mut *o,
            from: old,
            to: new,
            snapshot: snap,
            again,
        };
        hit(points.before)?;
        let changed = match ops.change(&mut x) {
            Ok(c) => c,
            Err(e) if ops.kind() == Kind::Repair => {
                out.warnings.push(repair_warning(step, &e));
                continue;
            }
            Err(e) => return Err(e),
        };
        let written = match changed {
            Changed::Yes(w) => w,
            Changed::No(why) => {
                out.left.push((step, why));
                continue;
            }
        };
        // A passphrase change joins the rollback once it is known to be
        // done; a repair (the hint, the Preboot list) once it changed
        // something (its revert puts back what was there, or is a no-op).
        if matches!(ops.kind(), Kind::Passphrase | Kind::Repair) {
            prog.started.push(step);
        }
        prog.done.push(step);
        hit(points.written)?;
        j.mark(step);
        j.save(x.o.root()?)?;
        hit(points.marked)?;
        ops.check(&mut x, written.as_deref())?;
        hit(points.checked)?;
    }
    crate::failpoint::hit("after-verify")?;
    Ok(())
}

fn repair_warning(step: Step, e: &Error) -> String {
    match step {
        Step::Preboot => format!(
            "the Preboot user list could not be updated ({}); FileVault and the login are done. After \
             the restart, run `sudo diskutil apfs updatePreboot /` in Terminal",
            e.message()
        ),
        _ => format!("{} could not be finished: {}", step.name(), e.message()),
    }
}
