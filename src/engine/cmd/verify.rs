//! `fvsync verify`: checks every secret against one password.

use super::Finished;
use crate::engine::observe::{self, Passwords, Probe};
use crate::engine::plan::{self, Verdict};
use crate::engine::report::{self, PrebootState};
use crate::engine::secrets::Secret;
use crate::engine::{confirm_match, head, hint_cmd, target, Ctx, UserSel};
use crate::error::Result;
use crate::secret::Which;

/// Runs `verify`.
///
/// # Errors
/// Bad input (2), refused or throttled (5), cancelled (9).
pub fn run(ctx: &mut Ctx<'_>, sel: &UserSel) -> Result<Finished<report::Verify>> {
    let t = target::find(ctx.p, &sel.user, sel.volume.as_deref())?;
    confirm_match(ctx, &t, sel)?;
    let pw = ctx.src.read(Which::Current, &t.user)?;
    observe::scoped(ctx, |ctx, unlocks| {
        let mut o = observe::start(ctx, t)?;
        let pws = Passwords {
            old: None,
            new: &pw,
        };
        let probed = o.probe(ctx, pws, Probe::default(), unlocks);
        ctx.ui.set_attempts(&o.ledger);
        probed?;
        if o.ledger.throttled && o.ledger.used == 0 {
            return Err(crate::engine::attempts::throttled_error());
        }
        o.read_files(ctx, pws)?;
        let rows = o.rows();
        let verdict = plan::verdict_one(&rows);
        let mut next = vec![if verdict == Verdict::InSync {
            "In sync: every secret that counts accepts this password.".to_string()
        } else {
            format!(
                "Out of sync: not every secret accepts this password; `{}` shows what to do.",
                hint_cmd(ctx, "diagnose", sel, &o.target.user, &[])
            )
        }];
        if rows.iter().any(|r| r.secret == Secret::LocalItems) {
            next.push(
                "Local Items and the user keybag are not counted: macOS asks once for the old \
                 password after the first login."
                    .into(),
            );
        }
        if verdict == Verdict::InSync {
            if let Some(n) = crate::engine::cmd::purge::backups_note(ctx, sel, &o) {
                next.push(n);
            }
        }
        let report = report::Verify {
            head: head(ctx.p, "verify", &o.target),
            secrets: rows,
            preboot_current: o.preboot_current,
            preboot: PrebootState::from(o.preboot_current),
            filevault_attempts: o.ledger.clone(),
            in_sync: verdict == Verdict::InSync,
            verdict,
            next,
            exit_code: verdict.exit().code(),
        };
        Ok(Finished::ok(report))
    })
}
