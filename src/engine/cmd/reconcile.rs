//! `fvsync reconcile`: brings every secret to NEW.

use super::{verdict_lines, Finished};
use crate::engine::journal::{self, State};
use crate::engine::observe::{self, Passwords, Probe};
use crate::engine::plan::{self, Verdict};
use crate::engine::report::{self, Left};
use crate::engine::step::{Action, Step};
use crate::engine::{
    confirm_match, executor, head, hint_cmd, read_old_new, require_recovery, resume, target, Ctx,
    UserSel,
};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::{Rehearsal, RehearsalOutcome};
use crate::text::escape;

/// What `reconcile` was asked.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// Who and where; `yes` applies the plan without a question.
    pub sel: UserSel,
    /// Show the plan and change nothing.
    pub dry_run: bool,
    /// Go ahead when the rehearsal cannot run (scripts; a person is asked).
    pub without_rehearsal: bool,
    /// The recovery-key route: unlock with the Personal Recovery Key and
    /// prove OLD offline (no FileVault attempt spent on a guess).
    pub recovery_key: bool,
    /// After the recovery-key route, set Escrow Buddy's `GenerateNewKey`
    /// without asking (scripts; a person is asked).
    pub request_new_key: bool,
    /// The password hint to set (`Some("")` clears it); `None`: a person is
    /// asked whether to keep the current one, a script keeps it.
    pub hint: Option<String>,
}

/// Proves the passphrase change on a throwaway volume before the user's is
/// touched (docs/diskutil.md). `Ok(None)`: not needed here.
///
/// # Errors
/// The rehearsal failed (5), or could not run and nobody confirmed (5/9).
pub fn rehearse(ctx: &mut Ctx<'_>, yes: bool, without: bool) -> Result<Option<Rehearsal>> {
    ctx.ui
        .progress("rehearsing the passphrase change on a throwaway volume...");
    let r = ctx.p.rehearse();
    ctx.ui.progress_done();
    let r = r?;
    match &r.outcome {
        RehearsalOutcome::NotNeeded => Ok(None),
        RehearsalOutcome::Passed { .. } => Ok(Some(r)),
        RehearsalOutcome::Failed { why } => Err(Error::new(
            ErrorKind::Refused,
            format!(
                "the rehearsal on a throwaway volume failed ({}), so fvsync does not know how to pass \
                 passphrases to this diskutil safely; nothing was changed",
                escape(why)
            ),
        )
        .hint("`fvsync selftest` shows what was tried; use Apple's `resetpassword` with the recovery key instead")),
        RehearsalOutcome::Unavailable { why } => {
            let go = if without {
                true
            } else if ctx.src.interactive() && !yes {
                ctx.src.confirm(&format!(
                    "The rehearsal of the passphrase change could not run ({}). Go ahead without it? Have \
                     the FileVault recovery key at hand",
                    escape(why)
                ))?
            } else {
                false
            };
            if go {
                ctx.p.accept_unrehearsed();
                Ok(Some(r))
            } else {
                Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "the rehearsal of the passphrase change could not run ({}); nothing was changed",
                        escape(why)
                    ),
                )
                .hint("with the recovery key at hand, add --without-rehearsal to go ahead anyway"))
            }
        }
    }
}

/// Runs `reconcile`.
///
/// # Errors
/// 2 usage, 4 FileVault accepts neither, 5 refused, 6 rolled back, 7
/// stopped mid-way, 9 cancelled.
pub fn run(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<Finished<report::Reconcile>> {
    let sel = &opts.sel;
    if let Some(h) = &opts.hint {
        // Before anything is asked or tried.
        crate::engine::step::hint::check(h)?;
    }
    if !opts.dry_run {
        require_recovery(ctx.p, "reconcile")?;
    }
    let t = target::find(ctx.p, &sel.user, sel.volume.as_deref())?;
    confirm_match(ctx, &t, sel)?;
    if t.vol.filevault && t.crypto.is_none() {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "{} is not a FileVault user of {} (no SecureToken), so FileVault cannot take their password",
                escape(&t.user),
                t.vol.device
            ),
        )
        .hint(
            "an admin who is a FileVault user can start up normally and run \
             `sysadminctl -secureTokenOn USER -password - -adminUser ADMIN -adminPassword -`, then run fvsync again",
        ));
    }
    if opts.recovery_key {
        return crate::engine::recovery_key::reconcile(ctx, opts, t);
    }
    let (old, new) = read_old_new(ctx, &t.user, true)?;
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
        o.gate()?;
        o.read_files(ctx, pw)?;
        ctx.ui.set_attempts(&o.ledger);
        finish(ctx, opts, o, &old, &new, unlocks)
    })
}

/// The password hint to set: `--hint TEXT`, or a person's answer when there
/// is a hint to keep or change; a script (and a dry run) keeps it.
///
/// # Errors
/// A hint that holds a control character or is too long (2), or the terminal.
fn hint_request(
    ctx: &mut Ctx<'_>,
    opts: &Opts,
    o: &crate::engine::observe::Observation,
) -> Result<Option<String>> {
    use crate::engine::step::hint;
    if let Some(h) = &opts.hint {
        return Ok(Some(h.clone()));
    }
    if opts.dry_run || opts.sel.yes || !ctx.src.interactive() || o.offline.is_none() {
        return Ok(None);
    }
    let (rec, fv) = hint::current(o);
    let shown = match (&rec, &fv) {
        (None, None) => return Ok(None),
        (Some(r), Some(f)) if r != f => format!(
            "the login window's \"{}\", FileVault's \"{}\"",
            escape(r),
            escape(f)
        ),
        (Some(h), _) | (None, Some(h)) => format!("\"{}\"", escape(h)),
    };
    ctx.ui.para(&format!(
        "{}'s password hint is {shown}. A hint that describes OLD misleads at the next start.",
        escape(&o.target.user)
    ));
    if !ctx.src.confirm("Change the hint?")? {
        return Ok(None);
    }
    let h = ctx.src.ask_line("New hint (empty: no hint): ")?;
    hint::check(&h)?;
    Ok(Some(h))
}

/// Everything after the observation: the plan, the question, the rehearsal,
/// the executor and the report (the recovery-key route joins here too).
///
/// # Errors
/// As [`run`].
pub(crate) fn finish(
    ctx: &mut Ctx<'_>,
    opts: &Opts,
    mut o: crate::engine::observe::Observation,
    old: &crate::secret::Password,
    new: &crate::secret::Password,
    unlocks: &mut crate::engine::observe::Unlocks,
) -> Result<Finished<report::Reconcile>> {
    let sel = &opts.sel;
    let (old, new) = (old, new);
    {
        o.root()?;
        if let Some(e) = o.offline_error.take() {
            return Err(e);
        }
        if let Some(e) = o.journal_error.take() {
            return Err(e);
        }
        o.hint_request = hint_request(ctx, opts, &o)?;
        if let Some(h) = &o.hint_request {
            crate::engine::step::hint::check_not_password(h, &[old, new])?;
        }
        let root = o.root()?;
        let stale = o
            .journal
            .as_ref()
            .filter(|j| j.state == State::Open && !resume::resumable(root, j, old))
            .map(|j| j.run_id.clone());
        let resuming = o
            .journal
            .clone()
            .filter(|j| resume::resumable(root, j, old));
        let rows = o.rows();
        let plan = plan::plan(&o);
        let todo = plan::has_work(&plan);
        let proof = plan::old_proof(&o, resuming.is_some());
        let mut notes = Vec::new();
        if let Some(j) = &resuming {
            notes.push(format!(
                "{} the run {} that stopped before it finished.",
                if opts.dry_run {
                    "Would resume"
                } else {
                    "Resuming"
                },
                j.run_id
            ));
        }
        if let Some(id) = &stale {
            notes.push(format!(
                "An unfinished run ({id}) used another OLD password or lost its backups: a new journal \
                 and new backups will be made from the state seen now."
            ));
        }
        let needs_proof = plan
            .iter()
            .any(|p| p.action == Action::Do && !matches!(p.step, Step::Preboot | Step::Hint));
        let head = head(ctx.p, "reconcile", &o.target);
        ctx.ui.preview(&report::Preview {
            head: head.clone(),
            title: if opts.dry_run {
                "Plan (dry run: nothing will be changed):".into()
            } else {
                "Plan:".into()
            },
            secrets: rows.clone(),
            filevault_attempts: o.ledger.clone(),
            notes,
            plan: plan.clone(),
            account_sources: o.account_sources.clone(),
        });
        if needs_proof && proof.is_none() {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "nothing proves OLD for {}: FileVault did not take it and no offline secret of theirs \
                     (login hash, SRP verifier, keychain) does. Writing NEW now would be a password reset, \
                     not a reconcile; nothing was changed",
                    escape(&o.target.user)
                ),
            )
            .hint(
                "check OLD with the user (the password before the directory change); if it is lost, \
                 reset the password with Apple's `resetpassword` (the keychain is then replaced)",
            ));
        }
        let hint_only = plan
            .iter()
            .any(|p| p.action == Action::Do && p.step == Step::Hint)
            && !needs_proof;
        if hint_only && proof.is_none() && !rows.iter().any(|r| r.counts && r.accepts.takes_new()) {
            // The hint is not a secret, but it is written into the record
            // beside the login hash: only for a user whose password is proven.
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "neither OLD nor NEW is proven for {} (no secret of theirs takes either), so their \
                     record is not written; nothing was changed",
                    escape(&o.target.user)
                ),
            ));
        }
        let mut report = report::Reconcile {
            head,
            dry_run: opts.dry_run,
            secrets: rows.clone(),
            secrets_after: None,
            plan: plan.clone(),
            account_sources: o.account_sources.clone(),
            changed: Vec::new(),
            left: Vec::new(),
            resumed: resuming.as_ref().map(|j| j.run_id.to_string()),
            run_id: None,
            rehearsal: None,
            filevault_attempts: o.ledger.clone(),
            verdict: plan::verdict(&rows, proof.is_some()),
            warnings: Vec::new(),
            next: Vec::new(),
            exit_code: 0,
        };
        if opts.dry_run || !todo {
            if !todo && !opts.dry_run {
                if let Some(mut j) = resuming {
                    // Everything was done before the interruption: close the journal.
                    j.state = State::Done;
                    j.save(root)?;
                    journal::audit(
                        root,
                        &j.user,
                        &j.volume,
                        &j.run_id,
                        "reconcile",
                        &[],
                        "ok (finished)",
                    )?;
                }
            }
            report.next = if opts.dry_run {
                vec!["Dry run: nothing was changed.".into()]
            } else if report.verdict == Verdict::InSync {
                vec!["Nothing to do: every secret that counts already accepts NEW.".into()]
            } else {
                verdict_lines(ctx, sel, &o, &rows, report.verdict, false)
            };
            report.exit_code = if opts.dry_run || report.verdict == Verdict::InSync {
                0
            } else {
                report.verdict.exit().code()
            };
            return Ok(Finished::ok(report));
        }
        if !sel.yes {
            if !ctx.src.interactive() {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "reconcile changes the Mac and needs confirmation",
                )
                .hint(
                    "add --yes to apply the plan without a question (scripts, --password-stdin)",
                ));
            }
            if !ctx.src.confirm("Apply this plan?")? {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    "cancelled: nothing was changed",
                ));
            }
        }
        if plan
            .iter()
            .any(|p| p.step == Step::Filevault && p.action == Action::Do)
        {
            report.rehearsal = rehearse(ctx, sel.yes, opts.without_rehearsal)?;
        }
        let again = hint_cmd(ctx, "reconcile", sel, &o.target.user, &[]);
        let result = executor::execute(ctx, &mut o, &plan, old, new, resuming, &again);
        ctx.ui.set_attempts(&o.ledger);
        let out = result?;
        // After a successful reconcile the Data volume stays unlocked, as
        // Recovery leaves it, until the restart; a re-run can then read the
        // journal first.
        unlocks.keep();
        let after = plan::rows_after(&rows, &out.changed);
        report.verdict = plan::verdict(&after, true);
        report.secrets_after = Some(after.clone());
        report.changed = out.changed.clone();
        report.left = out
            .left
            .iter()
            .map(|(step, why)| Left {
                step: *step,
                why: why.clone(),
            })
            .collect();
        report.run_id = out.run_id.as_ref().map(|r| r.to_string());
        report.warnings = out.warnings.clone();
        report.filevault_attempts = o.ledger.clone();
        report.exit_code = report.verdict.exit().code();
        let mut next = Vec::new();
        if report.verdict != Verdict::InSync {
            next.extend(verdict_lines(ctx, sel, &o, &after, report.verdict, false));
        }
        next.push(if o.target.vol.filevault {
            "Next: restart the Mac; FileVault asks for the NEW password at startup, and logs in with it. \
             If macOS then asks for the OLD password (Local Items keychain), type the OLD one; never \
             choose \"Create New Keychain\"."
                .to_string()
        } else {
            "Next: restart the Mac and log in with the NEW password.".to_string()
        });
        let purge = hint_cmd(ctx, "purge", sel, &o.target.user, &[]);
        next.push(
            if out
                .changed
                .iter()
                .any(|s| matches!(s, Step::Login | Step::Keychain))
            {
                format!(
                    "Backups of what was replaced (OLD's hash, the keychain under OLD) are kept in \
                     private/var/db/fvsync/backups until `{purge}` removes them."
                )
            } else {
                // Nothing secret was replaced (the Preboot list, the hint):
                // the copies are of the record and keychain as they still are.
                format!(
                    "Copies of the record and keychain as they were (for undo) are kept in \
                     private/var/db/fvsync/backups until `{purge}` removes them."
                )
            },
        );
        if o.via_recovery_key.is_some() {
            next.extend(crate::engine::recovery_key::after(ctx, &o, opts)?);
        }
        report.next = next;
        Ok(Finished::ok(report))
    }
}
