//! `fvsync purge`: removes a user's backups once they are no longer wanted.
//!
//! After a reconcile the backups hold what was replaced: the record with
//! OLD's hash, the keychain still locked with OLD, and a verifier of OLD. If
//! OLD leaked (often why it was reset), whoever reads the Data volume with it
//! opens the old keychain copy. They live until this command removes them;
//! `verify` offers it when every secret takes NEW. The backups of a run that
//! is still open are never removed (the next run needs them to finish).

use super::Finished;
use crate::engine::journal::{self, RunId, State, BACKUP_DIR};
use crate::engine::observe::{self, Observation, Passwords, Probe};
use crate::engine::report;
use crate::engine::{confirm_match, head, hint_cmd, target, Ctx, UserSel};
use crate::error::{Error, ErrorKind, Result};
use crate::fsio::{Kind, Rel, Root};
use crate::secret::Which;
use crate::text::escape;

/// What `purge` was asked.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// Who and where; `yes` removes without a question.
    pub sel: UserSel,
    /// Show what would be removed and change nothing.
    pub dry_run: bool,
}

/// The user's backup files (names in the backups folder), with their run ids.
fn backups(root: &Root, user: &str) -> Result<Vec<(String, RunId)>> {
    let dir = Rel::new(BACKUP_DIR)?;
    if root.meta(&dir)?.is_none() {
        return Ok(Vec::new());
    }
    let prefix = format!("{user}-");
    let mut out = Vec::new();
    for (name, m) in root.list(&dir)? {
        if m.kind != Kind::File {
            continue;
        }
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let id = rest.split('.').next().unwrap_or("");
        if let Ok(run) = RunId::try_from(id.to_string()) {
            out.push((name, run));
        }
    }
    Ok(out)
}

/// A note for a run that found every secret on NEW: the backups still there.
pub fn backups_note(ctx: &Ctx<'_>, sel: &UserSel, o: &Observation) -> Option<String> {
    let root = o.root.as_ref()?;
    let n = backups(root, &o.target.user).ok()?.len();
    (n > 0).then(|| {
        format!(
            "fvsync still keeps {n} backup file{} of {} (the hash and keychain under OLD); remove them \
             with `{}`.",
            if n == 1 { "" } else { "s" },
            escape(&o.target.user),
            hint_cmd(ctx, "purge", sel, &o.target.user, &[])
        )
    })
}

/// Runs `purge`.
///
/// # Errors
/// Bad input (2), refused (5), cancelled (9), I/O (1).
pub fn run(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<Finished<report::Purge>> {
    let sel = &opts.sel;
    let t = target::find(ctx.p, &sel.user, sel.volume.as_deref())?;
    confirm_match(ctx, &t, sel)?;
    observe::scoped(ctx, |ctx, unlocks| {
        let mut o = observe::start(ctx, t)?;
        if o.root.is_none() {
            // Locked: the current password unlocks it (one attempt).
            let pw = ctx.src.read(Which::Current, &o.target.user)?;
            let pws = Passwords {
                old: None,
                new: &pw,
            };
            let probed = o.probe(ctx, pws, Probe::default(), unlocks);
            ctx.ui.set_attempts(&o.ledger);
            probed?;
            o.gate()?;
            if o.root.is_none() {
                return Err(Error::new(
                    ErrorKind::AuthFailed,
                    "the Data volume could not be unlocked; nothing was changed",
                ));
            }
            o.read_files(ctx, pws)?;
        }
        let root = o.root()?;
        let user = o.target.user.clone();
        let open = o
            .journal
            .as_ref()
            .filter(|j| j.state == State::Open)
            .map(|j| j.run_id.clone());
        let found = backups(root, &user)?;
        let mut report = report::Purge {
            head: head(ctx.p, "purge", &o.target),
            backups: found.iter().map(|(n, _)| n.clone()).collect(),
            removed: Vec::new(),
            dry_run: opts.dry_run,
            filevault_attempts: o.ledger.clone(),
            exit_code: 0,
        };
        let removable: Vec<&(String, RunId)> = found
            .iter()
            .filter(|(_, r)| Some(r) != open.as_ref())
            .collect();
        if removable.is_empty() || opts.dry_run {
            return Ok(Finished::ok(report));
        }
        if !sel.yes {
            if !ctx.src.interactive() {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "purge removes files and needs confirmation",
                )
                .hint("add --yes to remove them without a question"));
            }
            let list: Vec<&str> = removable.iter().map(|(n, _)| n.as_str()).collect();
            ctx.ui.line(&format!("Backups of {}:", escape(&user)));
            for n in &list {
                ctx.ui.line(&format!("  {}", escape(n)));
            }
            if !ctx
                .src
                .confirm("Remove them? (undo is then no longer possible)")?
            {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    "cancelled: nothing was removed",
                ));
            }
        }
        let dir = Rel::new(BACKUP_DIR)?;
        for (name, _) in removable {
            root.remove(&dir.join(name)?)?;
            report.removed.push(name.clone());
        }
        // A finished run's journal without its backups cannot be undone.
        if let Some(j) = o.journal.as_ref().filter(|j| j.state != State::Open) {
            let _ = root.remove(&journal::path(&user)?);
            let _ = journal::audit(root, &user, &j.volume, &j.run_id, "purge", &[], "ok");
        }
        Ok(Finished::ok(report))
    })
}
