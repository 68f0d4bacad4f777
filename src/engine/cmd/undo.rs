//! `fvsync undo`: puts the last reconcile back.
//!
//! What can be checked is checked as early as it can be known: on a readable
//! volume the journal is read before any password is asked (nothing to undo:
//! nothing is asked, no attempt is spent); on a locked one NEW is asked first
//! (after a reconcile FileVault takes NEW), the volume is unlocked with it,
//! and the journal read before OLD is asked. OLD is then checked offline
//! against the run's own verifier (no attempt), every backup is read and
//! checked, the before/after table is shown, and only then is anything put back.

use super::Finished;
use crate::engine::journal::{Backup, Journal, State};
use crate::engine::observe::{self, Observation, Passwords, Probe};
use crate::engine::report::{self, UndoItem};
use crate::engine::secrets::Accepts;
use crate::engine::step::Step;
use crate::engine::{
    confirm_match, head, hint_cmd, require_recovery, restore, resume, target, Ctx, UserSel,
};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::record::UserRecord;
use crate::formats::shadowhash;
use crate::secret::{self, Which};
use crate::text::escape;

/// What `undo` was asked.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// Who and where; `yes` puts it back without a question.
    pub sel: UserSel,
    /// Show what would be put back and change nothing.
    pub dry_run: bool,
    /// Go ahead when the rehearsal cannot run.
    pub without_rehearsal: bool,
}

/// The journal of a finished reconcile, or why there is nothing to undo.
fn undoable(ctx: &Ctx<'_>, sel: &UserSel, o: &Observation) -> Result<Journal> {
    if let Some(e) = &o.journal_error {
        return Err(Error::new(e.kind(), e.message().to_string()));
    }
    let user = &o.target.user;
    let Some(j) = &o.journal else {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "no reconcile of {} to undo; nothing was changed",
                escape(user)
            ),
        )
        .hint("undo puts back the last reconcile; there is no journal for this user"));
    };
    match j.state {
        State::Done => Ok(j.clone()),
        State::Open => Err(Error::new(
            ErrorKind::Refused,
            format!(
                "the last reconcile ({}) did not finish; nothing was changed",
                j.run_id
            ),
        )
        .hint(format!(
            "finish it first with `{}`, then undo",
            hint_cmd(ctx, "reconcile", sel, user, &[])
        ))),
        State::RolledBack | State::Undone => Err(Error::new(
            ErrorKind::Refused,
            format!(
                "the last reconcile ({}) was already {}; nothing was changed",
                j.run_id,
                if j.state == State::Undone {
                    "undone"
                } else {
                    "rolled back"
                }
            ),
        )),
    }
}

fn when(j: &Journal) -> String {
    let Some(t) = j.run_id.started_secs() else {
        return j.started.clone();
    };
    let now = crate::engine::journal::now_secs() as i64;
    let ago = (now - t).max(0);
    let age = if ago < 3600 {
        format!("{} minutes ago", ago / 60)
    } else if ago < 86_400 * 2 {
        format!("{} hours ago", ago / 3600)
    } else {
        format!("{} days ago", ago / 86_400)
    };
    let s = crate::engine::journal::rfc3339(t);
    format!("{} {} UTC ({age})", &s[..10], &s[11..16])
}

/// Runs `undo`.
///
/// # Errors
/// 2 usage, 4 FileVault refused NEW or OLD is not the one replaced, 5
/// nothing to undo or refused, 7 stopped mid-way, 9 cancelled.
pub fn run(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<Finished<report::Undo>> {
    let sel = &opts.sel;
    if !opts.dry_run {
        require_recovery(ctx.p, "undo")?;
    }
    let t = target::find(ctx.p, &sel.user, sel.volume.as_deref())?;
    confirm_match(ctx, &t, sel)?;
    observe::scoped(ctx, |ctx, unlocks| {
        let mut o = observe::start(ctx, t)?;
        if o.root.is_some() && o.offline_error.is_none() {
            undoable(ctx, sel, &o)?;
        }
        let user = o.target.user.clone();
        let new = secret::read_confirmed(ctx.src, Which::New, &user)?;
        let pw = Passwords {
            old: None,
            new: &new,
        };
        let probed = o.probe(
            ctx,
            pw,
            Probe {
                new_first: true,
                ask_second: false,
            },
            unlocks,
        );
        ctx.ui.set_attempts(&o.ledger);
        probed?;
        if o.ledger.throttled && o.ledger.used == 0 {
            return Err(crate::engine::attempts::throttled_error());
        }
        if o.fv.accepts == Accepts::Neither {
            o.ledger.explain(
                crate::engine::attempts::Presented::Current,
                "FileVault does not take NEW, so the last reconcile's FileVault change is not in place",
            );
            ctx.ui.set_attempts(&o.ledger);
            return Err(Error::new(
                ErrorKind::AuthFailed,
                format!(
                    "FileVault did not accept NEW for {}; after a reconcile it takes NEW, so there is no \
                     FileVault change to put back; nothing was changed",
                    escape(&user)
                ),
            )
            .hint(format!(
                "check NEW with the user; `{}` shows which password each secret takes",
                hint_cmd(ctx, "diagnose", sel, &user, &[])
            )));
        }
        o.read_files(ctx, pw)?;
        if let Some(e) = o.offline_error.take() {
            return Err(e);
        }
        let mut j = undoable(ctx, sel, &o)?;
        let root = o.root()?;
        // OLD: typed twice, checked offline against the run's own verifier
        // (or the backup record's hash): undo sets FileVault to it.
        let old = secret::read_confirmed(ctx.src, Which::Old, &user)?;
        if old.ct_eq(&new) {
            return Err(Error::new(
                ErrorKind::Usage,
                "OLD and NEW are the same password: there is nothing to put back",
            ));
        }
        let record = j.read_backup(root, Backup::Record)?;
        let keychain = j.read_backup(root, Backup::Keychain)?;
        let old_ok = resume::verifier_accepts(root, &j, &old).or_else(|| {
            let rec = UserRecord::parse(record.as_deref()?).ok()?;
            let sh = rec.shadow_hash().ok()??;
            Some(sh.salted?.check(old.expose()) == shadowhash::Check::Match)
        });
        match old_ok {
            Some(true) => {}
            Some(false) => {
                return Err(Error::new(
                    ErrorKind::AuthFailed,
                    "OLD is not the password the last reconcile replaced; nothing was changed",
                )
                .hint("type the OLD password exactly as before the reconcile (undo would otherwise set FileVault to it); no FileVault attempt was used"))
            }
            None => {
                return Err(Error::new(
                    ErrorKind::Refused,
                    "OLD cannot be confirmed offline (the run has no verifier and the backup record no usable hash); nothing was changed",
                ))
            }
        }
        if let Some(b) = &record {
            let rec = UserRecord::parse(b).map_err(|e| {
                Error::new(
                    ErrorKind::Refused,
                    format!("the user record backup is malformed ({e}); nothing was changed"),
                )
            })?;
            let ident = &o.offline()?.ident;
            if rec.name() != user
                || !rec
                    .generated_uid()
                    .is_some_and(|u| u.eq_ignore_ascii_case(&ident.generated_uid))
            {
                return Err(Error::new(
                    ErrorKind::Refused,
                    "the user record backup is of another user; nothing was changed",
                ));
            }
        }
        let fv_label = o.fv.secret.label();
        let mut items = Vec::new();
        if j.is_done(Step::Filevault) && o.fv.accepts == Accepts::New {
            items.push(UndoItem {
                step: Step::Filevault,
                change: format!("{fv_label}: NEW -> OLD"),
            });
        }
        if j.is_done(Step::Login) && record.is_some() {
            items.push(UndoItem {
                step: Step::Login,
                change: "login password and SRP verifier: NEW -> OLD (the record as it was)".into(),
            });
        }
        if j.is_done(Step::Keychain) && keychain.is_some() {
            items.push(UndoItem {
                step: Step::Keychain,
                change: "login keychain: NEW -> OLD (the file as it was)".into(),
            });
        }
        if j.is_done(Step::Hint) && record.is_some() {
            items.push(UndoItem {
                step: Step::Hint,
                change: "password hint: the one before the reconcile".into(),
            });
        }
        if items.iter().any(|i| i.step == Step::Filevault) {
            items.push(UndoItem {
                step: Step::Preboot,
                change: "Preboot user list: refreshed".into(),
            });
        }
        let head = head(ctx.p, "undo", &o.target);
        let mut report = report::Undo {
            head,
            dry_run: opts.dry_run,
            run_id: j.run_id.to_string(),
            reconciled_at: when(&j),
            plan: items.clone(),
            changed: Vec::new(),
            filevault_attempts: o.ledger.clone(),
            next: Vec::new(),
            exit_code: 0,
        };
        ctx.ui.undo_preview(&report);
        if opts.dry_run {
            report.next = vec!["Dry run: nothing was changed.".into()];
            return Ok(Finished::ok(report));
        }
        if !sel.yes {
            if !ctx.src.interactive() {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "undo changes the Mac and needs confirmation",
                )
                .hint("add --yes to put the last reconcile back without a question"));
            }
            if !ctx.src.confirm(&format!(
                "Put back {}'s secrets as they were before that reconcile?",
                escape(&user),
            ))? {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    "cancelled: nothing was changed",
                ));
            }
        }
        if items.iter().any(|i| i.step == Step::Filevault) {
            crate::engine::cmd::reconcile::rehearse(ctx, sel.yes, opts.without_rehearsal)?;
        }
        let again = hint_cmd(ctx, "undo", sel, &user, &[]);
        let changed = restore::restore(
            ctx,
            &mut o,
            &mut j,
            &old,
            &new,
            record.as_deref(),
            keychain.as_deref(),
            &again,
        );
        ctx.ui.set_attempts(&o.ledger);
        report.changed = changed?;
        report.filevault_attempts = o.ledger.clone();
        unlocks.keep();
        report.next = vec![if report.changed.contains(&Step::Filevault) {
            "Next: restart the Mac; FileVault asks for the OLD password at startup, and the login \
             takes OLD too. Run reconcile again when the user is ready for NEW."
                .into()
        } else {
            "Next: restart the Mac; the login takes OLD again.".into()
        }];
        Ok(Finished::ok(report))
    })
}
