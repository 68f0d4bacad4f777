//! `fvsync diagnose`: which password each secret accepts, and the plan.

use super::{verdict_lines, Finished};
use crate::engine::observe::{self, Passwords, Probe};
use crate::engine::report::{self, PrebootState};
use crate::engine::{confirm_match, head, plan, read_old_new, target, Ctx, UserSel};
use crate::error::Result;

/// Runs `diagnose`.
///
/// # Errors
/// Before a report: bad input (2), refused (5), cancelled (9). With a
/// report: FileVault took neither (4), throttled (5).
pub fn run(
    ctx: &mut Ctx<'_>,
    sel: &UserSel,
    recovery_key: bool,
) -> Result<Finished<report::Diagnose>> {
    let t = target::find(ctx.p, &sel.user, sel.volume.as_deref())?;
    confirm_match(ctx, &t, sel)?;
    if recovery_key {
        return observe::scoped(ctx, |ctx, unlocks| {
            let (o, _old, _new) = crate::engine::recovery_key::prepare(ctx, t, unlocks)?;
            Ok(report(ctx, sel, o, Ok(())))
        });
    }
    let (old, new) = read_old_new(ctx, &t.user, false)?;
    observe::scoped(ctx, |ctx, unlocks| {
        let mut o = observe::start(ctx, t)?;
        let pw = Passwords {
            old: Some(&old),
            new: &new,
        };
        let how = Probe {
            new_first: false,
            ask_second: ctx.src.interactive() && !sel.yes,
        };
        let probed = o.probe(ctx, pw, how, unlocks);
        ctx.ui.set_attempts(&o.ledger);
        probed?;
        o.read_files(ctx, pw)?;
        ctx.ui.set_attempts(&o.ledger);
        let gate = o.gate();
        Ok(report(ctx, sel, o, gate))
    })
}

fn report(
    ctx: &mut Ctx<'_>,
    sel: &UserSel,
    o: crate::engine::observe::Observation,
    gate: Result<()>,
) -> Finished<report::Diagnose> {
    {
        let rows = o.rows();
        let plan = plan::plan(&o);
        let verdict = plan::verdict(&rows, plan::old_proof(&o, false).is_some());
        let exit_code = match &gate {
            Err(e) => e.kind().exit_code(),
            Ok(()) => verdict.exit().code(),
        };
        let mut next = if gate.is_ok() {
            verdict_lines(ctx, sel, &o, &rows, verdict, true)
        } else {
            Vec::new()
        };
        if let Some(e) = &o.journal_error {
            next.push(format!("Note: {}", e.message()));
        }
        let report = report::Diagnose {
            head: head(ctx.p, "diagnose", &o.target),
            secrets: rows,
            filevault_attempts: o.ledger.clone(),
            plan,
            account_sources: o.account_sources.clone(),
            preboot: PrebootState::from(o.preboot_current),
            in_sync: verdict == plan::Verdict::InSync && gate.is_ok(),
            verdict,
            next,
            exit_code,
        };
        Finished {
            report,
            error: gate.err(),
        }
    }
}
