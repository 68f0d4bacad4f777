//! The main job: `diagnose`, `reconcile`, `verify`, `undo` and `purge`.
//!
//! One picture of a run (docs/architecture.md):
//!
//! ```text
//! target (who, where; before any unlock)
//!   → observe (FileVault: at most two attempts; the record binds the identity;
//!              the offline secrets, checked for free; the journal)
//!   → plan (every step: do / skip / leave, with why) and verdict
//!   → execute (one executor: journal, backups, steps, rollback)
//!   → report (typed; rendered as text or JSON by `output`)
//! ```
//!
//! Modules, one job each: [`target`], [`observe`] (with [`attempts`] and
//! [`secrets`]), [`plan`], [`step`] (one module per step), [`executor`],
//! [`rollback`], [`resume`], [`restore`] (undo's application), [`journal`],
//! [`report`], and the commands in [`cmd`].

pub mod account;
pub mod attempts;
pub mod cmd;
pub mod executor;
pub mod journal;
pub mod observe;
pub mod plan;
pub mod receipt;
pub mod recovery_key;
pub mod report;
pub mod report_receipt;
pub mod restore;
pub mod resume;
pub mod rollback;
pub mod secrets;
pub mod step;
pub mod target;

use crate::error::{Error, ErrorKind, Result};
use crate::output::Ui;
use crate::platform::{BootMode, Platform};
use crate::secret::{self, Password, PasswordSource, Which};
use crate::text::escape;

/// How fvsync was invoked, so that every hint prints a command that runs:
/// the launcher in Recovery (`sh /Volumes/STICK/fvsync-recovery.sh`), or
/// `fvsync` with the flags that matter (`--simulate DIR`, `--diskutil PATH`).
#[derive(Clone, Debug)]
pub struct Invocation {
    /// What comes before the subcommand.
    pub prefix: String,
}

impl Default for Invocation {
    fn default() -> Self {
        Invocation {
            prefix: "fvsync".into(),
        }
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", escape(s).replace('\'', "'\\''"))
    }
}

impl Invocation {
    /// The command line for `sub` on the same Mac, with `args` after it.
    pub fn cmd(&self, sub: &str, args: &[&str]) -> String {
        let mut s = format!("{} {sub}", self.prefix);
        for a in args {
            s.push(' ');
            s.push_str(&shell_word(a));
        }
        s
    }
}

/// What a command works with.
pub struct Ctx<'a> {
    /// The Mac (real or simulated).
    pub p: &'a mut dyn Platform,
    /// Output.
    pub ui: &'a mut Ui,
    /// Passwords.
    pub src: &'a mut dyn PasswordSource,
    /// How fvsync was invoked (for hints).
    pub inv: Invocation,
}

/// Who and where a user command works on.
#[derive(Clone, Debug, Default)]
pub struct UserSel {
    /// The name typed (short name, any case, or full name).
    pub user: String,
    /// `--volume`.
    pub volume: Option<String>,
    /// `--yes`: no questions (a name that is not an exact match is then an error).
    pub yes: bool,
}

impl UserSel {
    /// The arguments that select this user again in a hint.
    pub fn args(&self, user: &str) -> Vec<String> {
        let mut v = vec!["--user".to_string(), user.to_string()];
        if let Some(vol) = &self.volume {
            v.push("--volume".into());
            v.push(vol.clone());
        }
        v
    }
}

/// A hint's command for `sub` on this user.
pub fn hint_cmd(ctx: &Ctx<'_>, sub: &str, sel: &UserSel, user: &str, extra: &[&str]) -> String {
    let mut args = sel.args(user);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ctx.inv.cmd(sub, &refs)
}

/// Acts on a name that matched only loosely (another case, the full name)
/// after the technician confirms it; with `--yes` (or no terminal) that is a
/// usage error carrying the suggestion, never a silent correction.
///
/// # Errors
/// Not confirmed (9), or not interactive (2).
pub fn confirm_match(ctx: &mut Ctx<'_>, t: &target::Target, sel: &UserSel) -> Result<()> {
    if t.matched == target::Match::Exact {
        return Ok(());
    }
    let shown = format!(
        "{} → {}",
        escape(&t.typed),
        match &t.real_name {
            Some(r) => format!("{} ({})", escape(&t.user), escape(r)),
            None => escape(&t.user),
        }
    );
    if sel.yes || !ctx.src.interactive() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "no user '{}'; did you mean {}?",
                escape(&t.typed),
                escape(&t.user)
            ),
        )
        .hint(format!(
            "give the exact short name: {}",
            hint_cmd(ctx, "diagnose", sel, &t.user, &[])
        )));
    }
    if ctx
        .src
        .confirm(&format!("Found {shown}. Is this the user?"))?
    {
        Ok(())
    } else {
        Err(
            Error::new(ErrorKind::Cancelled, "cancelled: nothing was changed")
                .hint("`fvsync users` lists the users"),
        )
    }
}

/// Reads OLD (typed twice at a terminal: it may spend a FileVault attempt)
/// and NEW (twice when `confirm_new`). When they are the same, says so and,
/// at a terminal, asks whether that is really meant.
///
/// # Errors
/// Cancelled, invalid, or the entries did not match.
pub fn read_old_new(
    ctx: &mut Ctx<'_>,
    user: &str,
    confirm_new: bool,
) -> Result<(Password, Password)> {
    let old = secret::read_confirmed(ctx.src, Which::Old, user)?;
    let new = if confirm_new {
        secret::read_confirmed(ctx.src, Which::New, user)?
    } else {
        ctx.src.read(Which::New, user)?
    };
    if old.ct_eq(&new) {
        if ctx.src.interactive() {
            if !ctx.src.confirm(
                "OLD and NEW are the same password. Is that really meant? (OLD is the password \
                 before the directory change)",
            )? {
                return Err(
                    Error::new(ErrorKind::Cancelled, "cancelled: nothing was changed").hint(
                        "OLD is the password before the directory change; NEW is the current one",
                    ),
                );
            }
        } else {
            ctx.ui
                .note("OLD and NEW are the same password: one FileVault attempt at most");
        }
    }
    Ok((old, new))
}

/// Changes run only in recoveryOS: in a normal boot opendirectoryd caches the
/// user record and securityd may hold the keychain open, so a rewrite under
/// them could be undone or half-seen.
///
/// # Errors
/// A normal boot (5), or the platform cannot tell (it fails closed).
pub fn require_recovery(p: &dyn Platform, command: &str) -> Result<()> {
    if p.boot_mode()? == BootMode::Normal {
        return Err(Error::new(
            ErrorKind::Refused,
            format!("{command} changes the Mac and runs only in recoveryOS, not in a normal boot"),
        )
        .hint(
            "restart into Recovery (Apple silicon: hold the power button; Intel: hold Command-R), open \
             Terminal from the Utilities menu and run it there; diagnose, verify and --dry-run work here",
        ));
    }
    Ok(())
}

/// The report head for an observation.
pub fn head(p: &dyn Platform, command: &'static str, t: &target::Target) -> report::Head {
    report::Head {
        version: report::VERSION,
        command,
        user: t.user.clone(),
        real_name: t.real_name.clone(),
        volume: t.vol.device.clone(),
        volume_name: t.vol.name.clone(),
        source: p.description(),
        filevault_on: t.vol.filevault,
    }
}
