//! The main job: `diagnose`, `reconcile`, `verify` and `undo`.
//!
//! Every command observes first (which password each secret accepts), builds a
//! plan from what it saw, prints it, and only then (reconcile, undo) applies it
//! step by step with a journal. Each step checks state first and is skipped when
//! already done, so a re-run after any interruption converges.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::checks::{self, Accepts, Offline, Row};
use crate::error::{Error, ErrorKind, Result};
use crate::filevault::{self, Ledger, Proven};
use crate::formats::shadowhash;
use crate::fsio::{self, Perms};
use crate::journal::{self, Journal, JournalStep, State};
use crate::output::Ui;
use crate::platform::Platform;
use crate::secret::{self, Password, PasswordSource, Which};
use crate::target::{self, Target};
use crate::text::escape;

/// What a command works with.
pub struct Ctx<'a> {
    /// The Mac (real or simulated).
    pub p: &'a mut dyn Platform,
    /// Output.
    pub ui: &'a mut Ui,
    /// Passwords.
    pub src: &'a mut dyn PasswordSource,
}

/// Options shared by the user commands.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// Short name.
    pub user: String,
    /// `--volume`.
    pub volume: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--yes`.
    pub yes: bool,
}

/// One step of a plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlanStep {
    /// `filevault`, `login`, `keychain`, `preboot`.
    pub step: &'static str,
    /// `do`, `skip` or `leave` (cannot be done; left as is).
    pub action: &'static str,
    /// What it does, in words.
    pub detail: String,
}

impl PlanStep {
    fn is_do(&self, step: &str) -> bool {
        self.step == step && self.action == "do"
    }
}

/// Iteration counts for a fresh ShadowHashData when the record has none to
/// follow: the counts macOS calibrated on a 2026 Apple-silicon Mac.
pub const DEFAULT_SALTED_ITERATIONS: u32 = 121_951;
/// See [`DEFAULT_SALTED_ITERATIONS`].
pub const DEFAULT_SRP_ITERATIONS: u32 = 136_986;

struct Observed {
    target: Target,
    ledger: Ledger,
    fv: Row,
    unlocked_by_us: bool,
    root: Option<PathBuf>,
    offline: Option<Offline>,
    offline_error: Option<Error>,
    preboot_current: Option<bool>,
}

fn row(secret: &'static str, accepts: Accepts, note: Option<String>) -> Row {
    Row {
        secret,
        accepts,
        note,
    }
}

/// Observes FileVault (spending at most two attempts) and the offline secrets.
fn observe(
    ctx: &mut Ctx<'_>,
    target: Target,
    old: Option<&Password>,
    new: &Password,
    new_first: bool,
) -> Result<Observed> {
    let mut ledger = Ledger::default();
    let mut unlocked_by_us = false;
    let vol = target.vol.clone();
    let fv = if !vol.filevault {
        row(
            "filevault",
            Accepts::NotApplicable,
            Some("FileVault is off on this volume".into()),
        )
    } else if let Some(c) = target.crypto.clone() {
        let unlock = vol.locked;
        // When the volume is already readable (unlocked earlier in this Recovery
        // session, or a normal boot), a journal may say FileVault was already
        // changed by a run with this same OLD: then NEW is the likely one, and
        // trying it first saves a failed attempt on a re-run. A journal of a
        // run with another OLD (the password has changed again since) says
        // nothing about this pair: OLD first, as always.
        let new_first = new_first
            || (!unlock
                && old.is_some_and(|old| filevault_changed_before(ctx.p, &vol, &target.user, old)));
        ctx.ui.progress("checking the FileVault password...");
        let r = match old {
            Some(old) => {
                let proven = ledger.probe(ctx.p, &vol, &c.uuid, old, new, unlock, new_first)?;
                if unlock && matches!(proven, Proven::Old | Proven::New) {
                    unlocked_by_us = true;
                }
                match proven {
                    Proven::Old if old.ct_eq(new) => row("filevault", Accepts::Both, None),
                    Proven::Old => row("filevault", Accepts::Old, None),
                    Proven::New => row("filevault", Accepts::New, None),
                    Proven::Neither if ledger.throttled => row(
                        "filevault",
                        Accepts::Unknown,
                        Some("OLD was rejected; NEW was not tried: FileVault refuses further attempts".into()),
                    ),
                    Proven::Neither => row("filevault", Accepts::Neither, None),
                    Proven::Throttled => row(
                        "filevault",
                        Accepts::Unknown,
                        Some("too many recent attempts: FileVault refuses to check".into()),
                    ),
                }
            }
            None => {
                let a = ledger.check_one(ctx.p, &vol, &c.uuid, new, unlock)?;
                if unlock && a == crate::platform::Attempt::Accepted {
                    unlocked_by_us = true;
                }
                match a {
                    crate::platform::Attempt::Accepted => row("filevault", Accepts::New, None),
                    crate::platform::Attempt::Rejected => row("filevault", Accepts::Neither, None),
                    crate::platform::Attempt::Throttled => row(
                        "filevault",
                        Accepts::Unknown,
                        Some("too many recent attempts: FileVault refuses to check".into()),
                    ),
                }
            }
        };
        ctx.ui.progress_done();
        r
    } else {
        row(
            "filevault",
            Accepts::Unknown,
            Some(format!(
                "{} is not a FileVault user of this volume",
                escape(&target.user)
            )),
        )
    };
    let root = ctx.p.files(&vol).ok();
    let (offline, offline_error) = match &root {
        Some(root) => {
            ctx.ui
                .progress("checking the login password, SRP verifier and keychain...");
            let r = checks::offline(root, &target.user, old, new);
            ctx.ui.progress_done();
            match r {
                Ok(o) => (Some(o), None),
                Err(e) => (None, Some(e)),
            }
        }
        None => (None, None),
    };
    let preboot_current = match &target.crypto {
        Some(c) => ctx.p.preboot_current(&vol, &c.uuid).unwrap_or(None),
        None => None,
    };
    Ok(Observed {
        target,
        ledger,
        fv,
        unlocked_by_us,
        root,
        offline,
        offline_error,
        preboot_current,
    })
}

impl Observed {
    fn rows(&self) -> Vec<Row> {
        let mut rows = vec![self.fv.clone()];
        match &self.offline {
            Some(o) => rows.extend(o.rows.iter().cloned()),
            None => {
                let why = match &self.offline_error {
                    Some(e) => e.message().to_string(),
                    None => "the Data volume is locked".to_string(),
                };
                for s in ["login", "srp", "keychain"] {
                    rows.push(row(s, Accepts::Unknown, Some(why.clone())));
                }
            }
        }
        rows
    }

    /// True when every secret fvsync manages accepts NEW. A keychain that
    /// cannot be checked offline (or is absent) does not count against it.
    fn in_sync(&self) -> bool {
        self.rows().iter().all(|r| {
            r.accepts.ok_for_new()
                || (r.secret == "keychain"
                    && matches!(r.accepts, Accepts::Unknown | Accepts::Neither))
                || r.secret == "local-items"
        })
    }

    fn relock(&mut self, p: &mut dyn Platform) {
        if self.unlocked_by_us {
            let _ = p.lock(&self.target.vol);
            self.unlocked_by_us = false;
        }
    }

    fn plan(&self) -> Vec<PlanStep> {
        let mut plan = Vec::new();
        let rows = self.rows();
        let get = |s: &str| {
            rows.iter()
                .find(|r| r.secret == s)
                .map(|r| r.accepts)
                .unwrap_or(Accepts::Unknown)
        };
        let user = escape(&self.target.user);
        let fv = get("filevault");
        plan.push(match fv {
            Accepts::Old => PlanStep {
                step: "filevault",
                action: "do",
                detail: format!(
                    "change {user}'s FileVault passphrase from OLD to NEW, then check NEW"
                ),
            },
            Accepts::NotApplicable => PlanStep {
                step: "filevault",
                action: "skip",
                detail: "FileVault is off".into(),
            },
            a if a.ok_for_new() => PlanStep {
                step: "filevault",
                action: "skip",
                detail: "already accepts NEW".into(),
            },
            _ => PlanStep {
                step: "filevault",
                action: "leave",
                detail: "cannot be changed: see above".into(),
            },
        });
        let login_ok = get("login").ok_for_new() && get("srp").ok_for_new();
        plan.push(if login_ok {
            PlanStep { step: "login", action: "skip", detail: "login hash and SRP verifier already accept NEW".into() }
        } else if self.offline.is_some() {
            let (a, b) = self.iterations();
            let dropped = self
                .offline
                .as_ref()
                .and_then(|o| o.shadow.as_ref())
                .map(|s| s.other_schemes.clone())
                .unwrap_or_default();
            let mut detail = format!(
                "write a fresh ShadowHashData for NEW ({} {a} iterations, {} {b} iterations), reset the failed-login count, \
                 set password-last-set; every other attribute kept",
                shadowhash::SALTED,
                shadowhash::SRP
            );
            if !dropped.is_empty() {
                detail.push_str(&format!(
                    "; replaces the unknown scheme {}",
                    escape(&dropped.join(", "))
                ));
            }
            PlanStep { step: "login", action: "do", detail }
        } else {
            PlanStep { step: "login", action: "leave", detail: "the user record cannot be read".into() }
        });
        plan.push(match get("keychain") {
            Accepts::Old => PlanStep {
                step: "keychain",
                action: "do",
                detail: "re-key the login keychain from OLD to NEW (its items are kept; a backup is made)".into(),
            },
            Accepts::NotApplicable => PlanStep { step: "keychain", action: "skip", detail: "no login keychain".into() },
            a if a.ok_for_new() => PlanStep { step: "keychain", action: "skip", detail: "already accepts NEW".into() },
            Accepts::Neither => PlanStep {
                step: "keychain",
                action: "leave",
                detail: "accepts neither password: left as is; macOS will ask for its password at first login".into(),
            },
            _ => PlanStep {
                step: "keychain",
                action: "leave",
                detail: "left as is: macOS will ask for the old password at first login".into(),
            },
        });
        let preboot =
            plan.iter().any(|s| s.is_do("filevault")) || self.preboot_current == Some(false);
        plan.push(if preboot {
            PlanStep {
                step: "preboot",
                action: "do",
                detail: "update the Preboot volume's FileVault user list".into(),
            }
        } else {
            PlanStep {
                step: "preboot",
                action: "skip",
                detail: "Preboot user list is current".into(),
            }
        });
        plan
    }

    fn iterations(&self) -> (u32, u32) {
        let sh = self.offline.as_ref().and_then(|o| o.shadow.as_ref());
        (
            sh.and_then(|s| s.salted.as_ref())
                .map(|e| e.iterations)
                .unwrap_or(DEFAULT_SALTED_ITERATIONS),
            sh.and_then(|s| s.srp.as_ref())
                .map(|e| e.iterations)
                .unwrap_or(DEFAULT_SRP_ITERATIONS),
        )
    }
}

fn secret_label(s: &str) -> &'static str {
    match s {
        "filevault" => "FileVault",
        "login" => "login password",
        "srp" => "SRP verifier",
        "keychain" => "login keychain",
        "local-items" => "Local Items keychain",
        _ => "?",
    }
}

fn show_header(ui: &mut Ui, p: &dyn Platform, command: &str, t: &Target) {
    ui.heading(&format!("fvsync {command}: {}", p.description()));
    ui.line(&format!(
        "user {} on {} ({}){}",
        escape(&t.user),
        t.vol.device,
        escape(&t.vol.name),
        if t.vol.filevault {
            ", FileVault on"
        } else {
            ", FileVault off"
        }
    ));
}

fn show_matrix(ui: &mut Ui, rows: &[Row], one: bool) {
    let header = if one {
        ["  secret", "accepts the password", "note"]
    } else {
        ["  secret", "accepts", "note"]
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let good = if r.accepts.ok_for_new() {
                Some(true)
            } else if r.accepts == Accepts::Unknown {
                None
            } else {
                Some(false)
            };
            vec![
                format!("  {}", secret_label(r.secret)),
                ui.status(r.accepts.word(one), good),
                r.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    ui.line("");
    ui.table(&header, &body);
    ui.line("");
}

fn show_plan(ui: &mut Ui, plan: &[PlanStep], title: &str) {
    ui.line(title);
    for (i, s) in plan.iter().enumerate() {
        let tag = match s.action {
            "do" => "",
            "skip" => "skip: ",
            _ => "leave: ",
        };
        ui.line(&format!("  {}. {:<9} {tag}{}", i + 1, s.step, s.detail));
    }
}

fn attempts_line(l: &Ledger) -> String {
    format!(
        "FileVault attempts used: {} ({} failed){}",
        l.attempts,
        l.failed,
        if l.throttled {
            "; FileVault now refuses attempts"
        } else {
            ""
        }
    )
}

fn ledger_json(l: &Ledger) -> serde_json::Value {
    json!({"used": l.attempts, "failed": l.failed, "throttled": l.throttled})
}

/// OLD, then NEW; NEW is typed twice at a terminal when `confirm_new`
/// (reconcile, which writes it everywhere), once otherwise.
fn read_old_new(
    src: &mut dyn PasswordSource,
    user: &str,
    confirm_new: bool,
) -> Result<(Password, Password)> {
    let old = src.read(Which::Old, user)?;
    let new = if confirm_new {
        secret::read_new(src, user)?
    } else {
        src.read(Which::New, user)?
    };
    Ok((old, new))
}

fn fv_gate(o: &Observed) -> Result<()> {
    if o.ledger.throttled && o.ledger.attempts == 0 {
        return Err(filevault::throttled_error());
    }
    if o.target.vol.filevault && o.target.crypto.is_some() && o.fv.accepts == Accepts::Neither
        || (o.fv.accepts == Accepts::Unknown && o.ledger.failed > 0)
    {
        return Err(filevault::neither_error(&o.ledger, &o.target.user));
    }
    Ok(())
}

/// `fvsync diagnose`: which password each secret accepts, and the plan.
///
/// # Errors
/// As documented: 3 out of sync, 4 neither password opens FileVault, 5 refused.
pub fn diagnose(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<u8> {
    let target = target::find(ctx.p, &opts.user, opts.volume.as_deref())?;
    let (old, new) = read_old_new(ctx.src, &target.user, false)?;
    let mut o = observe(ctx, target, Some(&old), &new, false)?;
    o.relock(ctx.p);
    let rows = o.rows();
    let plan = o.plan();
    let gate = fv_gate(&o);
    let in_sync = o.in_sync();
    let code = match &gate {
        Err(e) => e.kind().exit_code(),
        Ok(()) if in_sync => 0,
        Ok(()) => 3,
    };
    if ctx.ui.json {
        ctx.ui.json_value(&json!({
            "version": 1, "command": "diagnose", "user": o.target.user, "volume": o.target.vol.device,
            "secrets": rows, "filevault_attempts": ledger_json(&o.ledger),
            "plan": plan, "in_sync": in_sync, "exit_code": code,
        }));
    } else {
        show_header(ctx.ui, ctx.p, "diagnose", &o.target);
        show_matrix(ctx.ui, &rows, false);
        ctx.ui.line(&attempts_line(&o.ledger));
        if o.preboot_current == Some(false) {
            ctx.ui
                .line("Preboot user list: stale (reconcile updates it)");
        }
        ctx.ui.line("");
        if gate.is_ok() {
            if in_sync {
                ctx.ui
                    .line("In sync: every secret accepts NEW. Nothing to do.");
            } else {
                show_plan(ctx.ui, &plan, "Plan (what `fvsync reconcile` would do):");
                ctx.ui.line("");
                ctx.ui.line(&format!(
                    "Out of sync: run `fvsync reconcile --user {}` to apply this plan.",
                    escape(&o.target.user)
                ));
            }
        }
    }
    gate?;
    Ok(code)
}

/// `fvsync verify`: checks every secret against one password.
///
/// # Errors
/// 5 refused; the platform failed.
pub fn verify(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<u8> {
    let target = target::find(ctx.p, &opts.user, opts.volume.as_deref())?;
    let pw = ctx.src.read(Which::Current, &target.user)?;
    let mut o = observe(ctx, target, None, &pw, false)?;
    o.relock(ctx.p);
    if o.ledger.throttled && o.ledger.attempts == 0 {
        return Err(filevault::throttled_error());
    }
    let rows = o.rows();
    let in_sync = o.in_sync() && o.preboot_current != Some(false);
    let code = if in_sync { 0 } else { 3 };
    if ctx.ui.json {
        ctx.ui.json_value(&json!({
            "version": 1, "command": "verify", "user": o.target.user, "volume": o.target.vol.device,
            "secrets": rows, "preboot_current": o.preboot_current,
            "filevault_attempts": ledger_json(&o.ledger), "in_sync": in_sync, "exit_code": code,
        }));
    } else {
        show_header(ctx.ui, ctx.p, "verify", &o.target);
        show_matrix(ctx.ui, &rows, true);
        if let Some(c) = o.preboot_current {
            ctx.ui.line(if c {
                "Preboot user list: current"
            } else {
                "Preboot user list: stale"
            });
        }
        ctx.ui.line(&attempts_line(&o.ledger));
        ctx.ui.line(if in_sync {
            "In sync: every secret accepts this password."
        } else {
            "Out of sync: not every secret accepts this password."
        });
    }
    Ok(code)
}

/// Whether this user's journal, on a readable volume, records a FileVault
/// change to NEW (not undone or rolled back) made by a run whose OLD was `old`
/// (checked offline against the journal's verifier; no verifier, no match: then
/// OLD is tried first, which may cost one failed attempt but never a guess).
fn filevault_changed_before(
    p: &dyn Platform,
    vol: &crate::platform::Volume,
    user: &str,
    old: &Password,
) -> bool {
    let Ok(root) = p.files(vol) else { return false };
    match Journal::load(&root, user) {
        Ok(Some(j)) => {
            matches!(j.state, State::Open | State::Done)
                && j.steps.iter().any(|s| s.step == "filevault" && s.done)
                && verifier_accepts(&root, &j, old) == Some(true)
        }
        _ => false,
    }
}

/// Changes run only in recoveryOS: in a normal boot opendirectoryd caches the
/// user record and securityd may hold the keychain open, so a rewrite under
/// them could be undone or half-seen.
fn require_recovery(p: &dyn Platform, command: &str) -> Result<()> {
    if p.boot_mode()? == crate::platform::BootMode::Normal {
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

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// `fvsync reconcile`: brings every secret to NEW.
///
/// # Errors
/// 2 usage, 4 FileVault accepts neither, 5 refused, 6 rolled back, 7 stopped mid-way.
pub fn reconcile(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<u8> {
    if !opts.dry_run {
        require_recovery(ctx.p, "reconcile")?;
    }
    let target = target::find(ctx.p, &opts.user, opts.volume.as_deref())?;
    if target.vol.filevault && target.crypto.is_none() {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "{} is not a FileVault user of {} (no SecureToken), so FileVault cannot take their password",
                escape(&target.user),
                target.vol.device
            ),
        )
        .hint(
            "an admin who is a FileVault user can start up normally and run \
             `sysadminctl -secureTokenOn USER -password - -adminUser ADMIN -adminPassword -`, then run fvsync again",
        ));
    }
    let (old, new) = read_old_new(ctx.src, &target.user, true)?;
    let mut o = observe(ctx, target, Some(&old), &new, false)?;
    if let Err(e) = fv_gate(&o) {
        o.relock(ctx.p);
        if !ctx.ui.json {
            ctx.ui.line(&attempts_line(&o.ledger));
        }
        return Err(e);
    }
    let Some(root) = o.root.clone() else {
        o.relock(ctx.p);
        return Err(Error::new(
            ErrorKind::Refused,
            "the Data volume is not readable",
        ));
    };
    if let Some(e) = o.offline_error.take() {
        o.relock(ctx.p);
        return Err(e);
    }
    let existing = match Journal::load(&root, &o.target.user) {
        Ok(j) => j,
        Err(e) => {
            o.relock(ctx.p);
            return Err(e);
        }
    };
    let stale = existing
        .as_ref()
        .filter(|j| j.state == State::Open && !resumable(&root, j, &old))
        .map(|j| j.run_id.clone());
    let resuming = existing.filter(|j| resumable(&root, j, &old));
    let rows = o.rows();
    let plan = o.plan();
    let todo = plan.iter().any(|s| s.action == "do");

    if !ctx.ui.json {
        show_header(
            ctx.ui,
            ctx.p,
            if opts.dry_run {
                "reconcile --dry-run"
            } else {
                "reconcile"
            },
            &o.target,
        );
        show_matrix(ctx.ui, &rows, false);
        ctx.ui.line(&attempts_line(&o.ledger));
        if let Some(j) = &resuming {
            ctx.ui.line(&format!(
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
            ctx.ui.line(&format!(
                "An unfinished run ({id}) used another OLD password or lost its backups: \
                 a new journal and new backups will be made from the state seen now."
            ));
        }
        ctx.ui.line("");
        show_plan(
            ctx.ui,
            &plan,
            if opts.dry_run {
                "Plan (dry run: nothing will be changed):"
            } else {
                "Plan:"
            },
        );
        ctx.ui.line("");
    }
    if opts.dry_run || !todo {
        if !todo && !opts.dry_run {
            if let Some(mut j) = resuming {
                // Everything was done before the interruption; close the journal.
                j.state = State::Done;
                j.save(&root)?;
                journal::audit(
                    &root,
                    &j.user,
                    &j.volume,
                    &j.run_id,
                    "reconcile",
                    &[],
                    "ok (finished)",
                )?;
            }
        }
        o.relock(ctx.p);
        if ctx.ui.json {
            ctx.ui.json_value(&json!({
                "version": 1, "command": "reconcile", "dry_run": opts.dry_run, "user": o.target.user,
                "volume": o.target.vol.device, "secrets": rows, "plan": plan, "changed": [],
                "filevault_attempts": ledger_json(&o.ledger), "exit_code": 0,
            }));
        } else if opts.dry_run {
            ctx.ui.line("Dry run: nothing was changed.");
        } else {
            ctx.ui
                .line("Nothing to do: every secret fvsync manages already accepts NEW.");
        }
        return Ok(0);
    }
    if !opts.yes {
        if !ctx.src.interactive() {
            o.relock(ctx.p);
            return Err(Error::new(
                ErrorKind::Usage,
                "reconcile changes the Mac and needs confirmation",
            )
            .hint("add --yes to apply the plan without a question (scripts, --password-stdin)"));
        }
        if !ctx.src.confirm("Apply this plan?")? {
            o.relock(ctx.p);
            return Err(Error::new(
                ErrorKind::Usage,
                "cancelled: nothing was changed",
            ));
        }
    }
    let result = apply(ctx, &mut o, &root, &plan, &old, &new, resuming);
    if result.is_err() {
        o.relock(ctx.p);
    }
    // After a successful reconcile the Data volume stays unlocked, as Recovery
    // leaves it, until the restart; a re-run can then read the journal first.
    let changed = result?;
    let after = rows_after(&rows, &changed);
    if ctx.ui.json {
        ctx.ui.json_value(&json!({
            "version": 1, "command": "reconcile", "dry_run": false, "user": o.target.user,
            "volume": o.target.vol.device, "secrets": rows, "secrets_after": after, "plan": plan,
            "changed": changed, "filevault_attempts": ledger_json(&o.ledger), "exit_code": 0,
        }));
    } else {
        ctx.ui.line("After:");
        show_matrix(ctx.ui, &after, false);
        ctx.ui.line(&format!(
            "Done: changed {}. {}",
            changed.join(", "),
            attempts_line(&o.ledger)
        ));
        ctx.ui.line(if o.target.vol.filevault {
            "Next: restart the Mac; FileVault asks for the NEW password at startup, and logs in with it. \
             If macOS then asks for the OLD password (Local Items keychain), type the OLD one; never \
             choose \"Create New Keychain\"."
        } else {
            "Next: restart the Mac and log in with the NEW password."
        });
    }
    Ok(0)
}

/// The matrix after a successful reconcile: every step that ran was verified
/// against NEW before the run ended (FileVault by a check of NEW, the record by
/// reading back the entries derived from NEW, the keychain by opening it), so
/// no derivation is repeated to draw it.
fn rows_after(before: &[Row], changed: &[&str]) -> Vec<Row> {
    before
        .iter()
        .map(|r| {
            let step = match r.secret {
                "srp" => "login",
                s => s,
            };
            if changed.contains(&step) && r.secret != "local-items" {
                Row {
                    secret: r.secret,
                    accepts: Accepts::New,
                    note: Some("changed and verified".into()),
                }
            } else {
                r.clone()
            }
        })
        .collect()
}

struct Applied {
    done: Vec<&'static str>,
    /// Files this run set out to write (a write may land before its mark).
    started: Vec<&'static str>,
    record_backup: Option<Vec<u8>>,
    keychain_backup: Option<Vec<u8>>,
}

#[allow(clippy::too_many_arguments)]
fn apply(
    ctx: &mut Ctx<'_>,
    o: &mut Observed,
    root: &Path,
    plan: &[PlanStep],
    old: &Password,
    new: &Password,
    resuming: Option<Journal>,
) -> Result<Vec<&'static str>> {
    let Some(off) = o.offline.as_ref() else {
        return Err(Error::new(
            ErrorKind::Refused,
            "the user record cannot be read",
        ));
    };
    let user = o.target.user.clone();
    let vol = o.target.vol.clone();
    let record_path = off.record_path.clone();
    let kc = off.keychain.clone();
    // This run's own snapshot of what it may change: its rollback puts back
    // the state from before *its* writes (the journal's backups, which may
    // come from an earlier interrupted run, are for `undo`).
    let record_now = fsio::read_capped(&record_path)?;
    let keychain_now = kc.as_ref().map(|(_, b)| b.clone());
    let resumed = resuming.is_some();

    // 1. Journal and backups (kept from the interrupted run when resuming:
    //    they hold the state before anything changed).
    let mut j = match resuming {
        Some(mut j) => {
            settle_started(&mut j, &o.rows());
            j.save(root)?;
            j
        }
        None => {
            let run_id = journal::run_id();
            fsio::ensure_dir(&root.join(journal::DIR), 0o700)?;
            fsio::ensure_dir(&root.join(journal::BACKUP_DIR), 0o700)?;
            let backup = |suffix: &str, bytes: &[u8]| -> Result<String> {
                let p = root
                    .join(journal::BACKUP_DIR)
                    .join(format!("{user}-{run_id}.{suffix}"));
                fsio::write_atomic(&p, bytes, Perms::PRIVATE)?;
                Ok(rel(root, &p))
            };
            let rb = backup("plist", &record_now)?;
            let kb = match &kc {
                Some((_, bytes)) => Some(backup("keychain-db", bytes)?),
                None => None,
            };
            let verifier = old_verifier(old, o.iterations().0)?;
            let vb = backup("old-verifier.plist", &verifier)?;
            let now = journal::now_rfc3339();
            let mut j = Journal {
                fvsync_journal: journal::VERSION,
                tool_version: env!("CARGO_PKG_VERSION").into(),
                run_id,
                user: user.clone(),
                uuid: o.target.uuid.clone(),
                volume: vol.device.clone(),
                state: State::Open,
                started: now.clone(),
                updated: now,
                record_backup: Some(rb),
                keychain_backup: kb,
                keychain_path: kc.as_ref().map(|(p, _)| p.to_string_lossy().into_owned()),
                old_verifier: Some(vb),
                steps: plan
                    .iter()
                    .filter(|s| s.action == "do")
                    .map(|s| JournalStep {
                        step: s.step.into(),
                        started: false,
                        done: false,
                    })
                    .collect(),
            };
            j.save(root)?;
            j
        }
    };
    let mut applied = Applied {
        done: Vec::new(),
        started: Vec::new(),
        record_backup: Some(record_now),
        keychain_backup: keychain_now,
    };
    let r = apply_steps(ctx, o, root, plan, old, new, &mut j, &mut applied);
    match r {
        Ok(()) => {
            j.state = State::Done;
            j.save(root).map_err(|e| {
                Error::new(
                    ErrorKind::Failure,
                    format!(
                        "every step was done and verified, but the journal could not be closed: {}",
                        e.message()
                    ),
                )
                .hint("run `fvsync reconcile` again: it finds nothing to do and closes the journal")
            })?;
            crate::failpoint::hit("after-journal-close")?;
            // What this reconcile changed, including steps of an interrupted
            // run it resumed.
            let changed: Vec<&'static str> = ["filevault", "login", "keychain", "preboot"]
                .into_iter()
                .filter(|s| {
                    applied.done.contains(s) || j.steps.iter().any(|js| js.step == *s && js.done)
                })
                .collect();
            if let Err(e) = journal::audit(
                root,
                &user,
                &vol.device,
                &j.run_id,
                "reconcile",
                &changed,
                "ok",
            ) {
                ctx.ui.warn(&format!(
                    "the audit log could not be written: {}",
                    e.message()
                ));
            }
            Ok(changed)
        }
        Err(e) if e.kind() == ErrorKind::Incomplete => {
            // Not known whether the step took effect: nothing to roll back with
            // confidence. The journal stays open; the next run finds out.
            close_failed_run(
                root,
                &mut j,
                &user,
                &vol.device,
                &applied.done,
                "incomplete",
            );
            Err(e)
        }
        Err(e) => {
            let msg = e.message().to_string();
            let rolled_back = rollback(ctx, o, root, new, old, &applied);
            // A resumed run rolls back to where it started, which still holds the
            // interrupted run's changes: that journal stays open.
            if rolled_back.is_ok() && !resumed {
                j.state = State::RolledBack;
            }
            let result = if rolled_back.is_ok() {
                "rolled-back"
            } else {
                "incomplete"
            };
            close_failed_run(root, &mut j, &user, &vol.device, &applied.done, result);
            match rolled_back {
                Ok(()) => Err(Error::new(
                    ErrorKind::RolledBack,
                    format!("reconcile stopped: {msg}; every change was rolled back (FileVault and login accept what they did before)"),
                )
                .hint(e.hint_text().unwrap_or("fix the cause and run `fvsync reconcile` again").to_string())),
                Err(e2) => Err(Error::new(
                    ErrorKind::Incomplete,
                    format!(
                        "reconcile stopped: {msg}; the rollback could not finish either ({}). The journal {} records what was done",
                        e2.message(),
                        crate::text::quote_path(&Journal::path(root, &user))
                    ),
                )
                .hint("run `fvsync reconcile` again with the same passwords to finish; OLD or NEW opens each secret meanwhile")),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_steps(
    ctx: &mut Ctx<'_>,
    o: &mut Observed,
    root: &Path,
    plan: &[PlanStep],
    old: &Password,
    new: &Password,
    j: &mut Journal,
    applied: &mut Applied,
) -> Result<()> {
    let vol = o.target.vol.clone();
    let Some(off) = o.offline.as_ref() else {
        return Err(Error::new(
            ErrorKind::Refused,
            "the user record cannot be read",
        ));
    };
    crate::failpoint::hit("after-journal")?;
    // 2. FileVault.
    if plan.iter().any(|s| s.is_do("filevault")) {
        let uuid = o
            .target
            .crypto
            .as_ref()
            .map(|c| c.uuid.clone())
            .unwrap_or_default();
        crate::diskutil::rehearsal::ensure_rehearsed(ctx.p, ctx.ui)?;
        ctx.ui.progress("changing the FileVault passphrase...");
        j.mark_started("filevault");
        j.save(root)?;
        if let Err(err) = ctx
            .p
            .change_passphrase(&vol, &uuid, old, new)
            .and_then(change_result)
        {
            return Err(match err.kind() {
                // Definite answers: diskutil refused, nothing changed.
                ErrorKind::AuthFailed => {
                    o.ledger.attempts += 1;
                    o.ledger.failed += 1;
                    err
                }
                ErrorKind::Refused => err,
                // A timeout, a signal, an answer not understood: it may have
                // taken effect.
                _ => uncertain(err),
            });
        }
        applied.done.push("filevault");
        j.mark("filevault");
        j.save(root)?;
        crate::failpoint::hit("after-filevault-change")?;
        // A rejected or refused check of NEW right after a change that
        // diskutil reported done: FileVault accepts OLD or NEW, and presenting
        // NEW again to roll back would only spend another attempt.
        o.ledger
            .confirm_new(ctx.p, &vol, &uuid, new)
            .map_err(uncertain)?;
        ctx.ui.progress_done();
        crate::failpoint::hit("after-filevault-verify")?;
    }
    // 3. The login record.
    if plan.iter().any(|s| s.is_do("login")) {
        ctx.ui.progress("writing the login password...");
        let (si, ri) = o.iterations();
        let sh = shadowhash::generate(new.expose(), si, ri).map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("cannot make ShadowHashData: {e}"),
            )
        })?;
        let mut rec = off.record.clone();
        rec.set_shadow_hash(&sh)?;
        rec.touch_password_policy(journal::now_secs())?;
        let bytes = rec.to_bytes()?;
        let perms = Perms::of(&off.record_path)?;
        j.mark_started("login");
        j.save(root)?;
        applied.started.push("login");
        crate::failpoint::hit("record-write")?;
        fsio::write_atomic(&off.record_path, &bytes, perms)?;
        crate::failpoint::hit("record-written")?;
        applied.done.push("login");
        j.mark("login");
        j.save(root)?;
        // Re-read and check what is on disk is what was derived from NEW
        // (no second derivation: the entries must be byte-identical).
        let back = crate::formats::record::load(&off.record_path, Some(&o.target.user))?;
        let back_sh = back
            .shadow_hash()
            .map_err(|e| Error::malformed(&off.record_path, e))?
            .ok_or_else(|| {
                Error::malformed(&off.record_path, "ShadowHashData missing after the write")
            })?;
        if back_sh.salted != sh.salted || back_sh.srp != sh.srp {
            return Err(Error::new(
                ErrorKind::Failure,
                "the record read back differs from what was written",
            ));
        }
        ctx.ui.progress_done();
        crate::failpoint::hit("after-record")?;
    }
    // 4. The login keychain.
    if plan.iter().any(|s| s.is_do("keychain")) {
        if let Some((kc_rel, bytes)) = off.keychain.clone() {
            let path = root.join(&kc_rel);
            match rekey_verified(&bytes, old, new) {
                Ok(rekeyed) => {
                    let perms = Perms::of(&path)?;
                    j.mark_started("keychain");
                    j.save(root)?;
                    applied.started.push("keychain");
                    fsio::write_atomic(&path, &rekeyed, perms)?;
                    applied.done.push("keychain");
                    j.mark("keychain");
                    j.save(root)?;
                    if fsio::read_capped(&path)? != rekeyed {
                        return Err(Error::new(
                            ErrorKind::Failure,
                            "the login keychain read back differs from what was written",
                        ));
                    }
                }
                Err(why) => {
                    ctx.ui.warn(&format!(
                        "login keychain left as is ({why}): macOS will ask for the old password at first login"
                    ));
                }
            }
            crate::failpoint::hit("after-keychain")?;
        }
    }
    // 5. Preboot.
    if plan.iter().any(|s| s.is_do("preboot")) {
        ctx.p.update_preboot(&vol)?;
        applied.done.push("preboot");
        j.mark("preboot");
        j.save(root)?;
        crate::failpoint::hit("after-preboot")?;
    }
    crate::failpoint::hit("after-verify")?;
    Ok(())
}

/// Records a run that stopped: saves the journal and appends the audit line.
/// Best effort: the run's own error is what the user must see.
fn close_failed_run(
    root: &Path,
    j: &mut Journal,
    user: &str,
    device: &str,
    done: &[&str],
    result: &str,
) {
    let _ = j.save(root);
    let _ = journal::audit(root, user, device, &j.run_id, "reconcile", done, result);
}

/// A passphrase change's answer as an error when it did not change anything.
fn change_result(a: crate::platform::Attempt) -> Result<()> {
    match a {
        crate::platform::Attempt::Accepted => Ok(()),
        crate::platform::Attempt::Rejected => Err(Error::new(
            ErrorKind::AuthFailed,
            "FileVault did not accept the current passphrase",
        )),
        crate::platform::Attempt::Throttled => Err(filevault::throttled_error()),
    }
}

/// A step whose outcome is unknown: exit 7, the journal stays open.
fn uncertain(err: Error) -> Error {
    Error::new(
        ErrorKind::Incomplete,
        format!(
            "{}; FileVault may or may not have taken NEW: it accepts OLD or NEW",
            err.message()
        ),
    )
    .hint("run `fvsync reconcile` again with the same passwords: it finds out which and finishes")
}

/// A verifier of OLD for the backups folder: a SALTED-SHA512-PBKDF2 entry
/// with a fresh salt, as a ShadowHashData binary plist.
fn old_verifier(old: &Password, iterations: u32) -> Result<Vec<u8>> {
    let salt: [u8; 32] = crate::crypto::random_bytes()
        .map_err(|e| Error::new(ErrorKind::Failure, format!("no randomness: {e}")))?;
    let sh = shadowhash::ShadowHash {
        salted: Some(shadowhash::SaltedEntry::derive(
            old.expose(),
            salt,
            iterations,
        )),
        srp: None,
        other_schemes: Vec::new(),
    };
    sh.to_bplist().map_err(|e| {
        Error::new(
            ErrorKind::Failure,
            format!("cannot encode the OLD verifier: {e}"),
        )
    })
}

/// Whether the verifier file of a journal accepts `old` (`None`: no verifier,
/// or it cannot be read).
fn verifier_accepts(root: &Path, j: &Journal, old: &Password) -> Option<bool> {
    let path = root.join(j.old_verifier.as_ref()?);
    let bytes = fsio::read_capped(&path).ok()?;
    let sh = shadowhash::ShadowHash::parse(&bytes).ok()?;
    Some(sh.salted?.check(old.expose()) == shadowhash::Check::Match)
}

/// An open journal may be resumed only by a run with the same OLD, and only
/// while its backups are there to undo it with.
fn resumable(root: &Path, j: &Journal, old: &Password) -> bool {
    let present = |p: &Option<String>| {
        p.as_ref()
            .is_none_or(|p| fsio::read_capped(&root.join(p)).is_ok())
    };
    j.state == State::Open
        && j.record_backup.is_some()
        && present(&j.record_backup)
        && present(&j.keychain_backup)
        && verifier_accepts(root, j, old) == Some(true)
}

/// Marks done the steps an interrupted run started whose effect is now seen
/// (the crash came between the change and the journal's mark).
fn settle_started(j: &mut Journal, rows: &[Row]) {
    let accepts_new = |s: &str| {
        rows.iter()
            .find(|r| r.secret == s)
            .is_some_and(|r| r.accepts.ok_for_new())
    };
    let took: Vec<String> = j
        .steps
        .iter()
        .filter(|s| s.started && !s.done)
        .filter(|s| match s.step.as_str() {
            "filevault" => accepts_new("filevault"),
            "login" => accepts_new("login") && accepts_new("srp"),
            "keychain" => accepts_new("keychain"),
            _ => true,
        })
        .map(|s| s.step.clone())
        .collect();
    for s in took {
        j.mark(&s);
    }
}

/// Re-keys a login keychain image from OLD to NEW and proves, before anything
/// is written, that NEW opens it, OLD no longer does, and every item decrypts
/// to the same plaintext as before. Any part not understood: `Err(why)`, and
/// the file is left as is.
fn rekey_verified(
    bytes: &[u8],
    old: &Password,
    new: &Password,
) -> std::result::Result<Vec<u8>, String> {
    use crate::formats::keychain::{check, decrypt_generic_passwords, rekey, KeychainCheck};
    let before = decrypt_generic_passwords(bytes, old.expose()).map_err(|e| e.to_string())?;
    let rekeyed = rekey(bytes, old.expose(), new.expose()).map_err(|e| e.to_string())?;
    if !matches!(check(&rekeyed, new.expose()), Ok(KeychainCheck::Accepts)) {
        return Err("the re-keyed image does not open with NEW".into());
    }
    if !old.ct_eq(new) && !matches!(check(&rekeyed, old.expose()), Ok(KeychainCheck::Rejects)) {
        return Err("the re-keyed image still opens with OLD".into());
    }
    let after = decrypt_generic_passwords(&rekeyed, new.expose()).map_err(|e| e.to_string())?;
    let same = before.len() == after.len()
        && before.iter().zip(&after).all(|(a, b)| {
            a.0 == b.0
                && a.1 == b.1
                && bool::from(subtle::ConstantTimeEq::ct_eq(
                    a.2.as_slice(),
                    b.2.as_slice(),
                ))
        });
    if !same {
        return Err("its items would not decrypt the same after a re-key".into());
    }
    Ok(rekeyed)
}

fn rollback(
    ctx: &mut Ctx<'_>,
    o: &Observed,
    root: &Path,
    current: &Password,
    previous: &Password,
    applied: &Applied,
) -> Result<()> {
    let Some(off) = o.offline.as_ref() else {
        return Ok(());
    };
    // FileVault is rolled back only when its change is known to be done; a
    // file is put back when its write was started (the snapshot is what was
    // there before, so writing it back is harmless if the write never landed).
    let mut steps: Vec<&str> = applied.started.clone();
    if applied.done.contains(&"filevault") {
        steps.insert(0, "filevault");
    }
    for step in steps.iter().rev() {
        crate::failpoint::hit("rollback-step")?;
        match *step {
            "keychain" => {
                if let (Some((kc_rel, _)), Some(b)) = (&off.keychain, &applied.keychain_backup) {
                    let p = root.join(kc_rel);
                    fsio::write_atomic(&p, b, Perms::of(&p)?)?;
                }
            }
            "login" => {
                let b = applied.record_backup.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::Failure, "the record backup is missing")
                })?;
                fsio::write_atomic(&off.record_path, b, Perms::of(&off.record_path)?)?;
            }
            "filevault" => {
                let uuid = o
                    .target
                    .crypto
                    .as_ref()
                    .map(|c| c.uuid.clone())
                    .unwrap_or_default();
                ctx.p
                    .change_passphrase(&o.target.vol, &uuid, current, previous)
                    .and_then(change_result)?;
            }
            _ => {}
        }
    }
    // The Preboot list is display metadata (names, hints): a failure to refresh
    // it does not lock anyone out, so it is a warning, not a failed rollback.
    if applied.done.contains(&"filevault") || applied.done.contains(&"preboot") {
        if let Err(e) = ctx.p.update_preboot(&o.target.vol) {
            ctx.ui.warn(&format!(
                "the Preboot user list could not be refreshed ({}); run `diskutil apfs updatePreboot /` after restart",
                e.message()
            ));
        }
    }
    Ok(())
}

/// `fvsync undo`: puts the last reconcile back from its journal and backups.
///
/// # Errors
/// 4 FileVault accepts neither; 5 no finished reconcile to undo; 1 I/O.
pub fn undo(ctx: &mut Ctx<'_>, opts: &Opts) -> Result<u8> {
    require_recovery(ctx.p, "undo")?;
    let target = target::find(ctx.p, &opts.user, opts.volume.as_deref())?;
    let (old, new) = read_old_new(ctx.src, &target.user, false)?;
    if old.ct_eq(&new) {
        return Err(Error::new(
            ErrorKind::Usage,
            "OLD and NEW are the same password: there is nothing to put back",
        ));
    }
    let mut o = observe(ctx, target, Some(&old), &new, true)?;
    if let Err(e) = fv_gate(&o) {
        o.relock(ctx.p);
        return Err(e);
    }
    let Some(root) = o.root.clone() else {
        o.relock(ctx.p);
        return Err(Error::new(
            ErrorKind::Refused,
            "the Data volume is not readable",
        ));
    };
    let result = undo_apply(ctx, &mut o, &root, &old, &new, opts.yes);
    o.relock(ctx.p);
    let changed = result?;
    if ctx.ui.json {
        ctx.ui.json_value(&json!({
            "version": 1, "command": "undo", "user": o.target.user, "volume": o.target.vol.device,
            "changed": changed, "filevault_attempts": ledger_json(&o.ledger), "exit_code": 0,
        }));
    } else {
        show_header(ctx.ui, ctx.p, "undo", &o.target);
        ctx.ui.line(&format!(
            "Undone: {} put back as before the last reconcile. {}",
            if changed.is_empty() {
                "nothing needed".to_string()
            } else {
                changed.join(", ")
            },
            attempts_line(&o.ledger)
        ));
    }
    Ok(0)
}

fn undo_apply(
    ctx: &mut Ctx<'_>,
    o: &mut Observed,
    root: &Path,
    old: &Password,
    new: &Password,
    yes: bool,
) -> Result<Vec<&'static str>> {
    let user = o.target.user.clone();
    let Some(mut j) = Journal::load(root, &user)? else {
        return Err(Error::new(
            ErrorKind::Refused,
            format!("no reconcile of {} to undo", escape(&user)),
        )
        .hint("undo puts back the last reconcile; there is no journal for this user"));
    };
    match j.state {
        State::Done => {}
        State::Open => {
            return Err(
                Error::new(ErrorKind::Refused, "the last reconcile did not finish")
                    .hint("run `fvsync reconcile` again to finish it first, then undo"),
            )
        }
        State::RolledBack | State::Undone => {
            return Err(Error::new(
                ErrorKind::Refused,
                "the last reconcile was already rolled back or undone",
            ))
        }
    }
    // Everything is checked before the first change. OLD first: undo sets
    // FileVault to it, so it must be the password the reconcile replaced.
    let old_ok = verifier_accepts(root, &j, old).or_else(|| {
        let b = j.record_backup.as_ref()?;
        let bytes = fsio::read_capped(&root.join(b)).ok()?;
        let sh = crate::formats::record::UserRecord::parse(&bytes)
            .ok()?
            .shadow_hash()
            .ok()??;
        Some(sh.salted?.check(old.expose()) == shadowhash::Check::Match)
    });
    match old_ok {
        Some(true) => {}
        Some(false) => {
            return Err(Error::new(
                ErrorKind::AuthFailed,
                "OLD is not the password the last reconcile replaced; nothing was changed",
            )
            .hint("type the OLD password exactly as before the reconcile (undo would otherwise set FileVault to it)"))
        }
        None => {
            return Err(Error::new(
                ErrorKind::Refused,
                "OLD cannot be confirmed offline (the journal has no verifier and the backup record no usable hash); nothing was changed",
            ))
        }
    }
    let backup = |p: &Option<String>, what: &str| -> Result<Option<Vec<u8>>> {
        let Some(p) = p else { return Ok(None) };
        let path = root.join(p);
        fsio::read_capped(&path).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!(
                    "the {what} backup cannot be read: {}; nothing was changed",
                    e.message()
                ),
            )
        })
    };
    let done = |step: &str| j.is_done(step);
    let record_bytes = if done("login") {
        backup(&j.record_backup, "user record")?
    } else {
        None
    };
    if let Some(b) = &record_bytes {
        crate::formats::record::UserRecord::parse(b).map_err(|e| {
            Error::new(
                ErrorKind::Failure,
                format!("the user record backup is malformed ({e}); nothing was changed"),
            )
        })?;
    }
    let keychain_bytes = if done("keychain") {
        backup(&j.keychain_backup, "keychain")?
    } else {
        None
    };
    if !yes {
        if !ctx.src.interactive() {
            return Err(Error::new(
                ErrorKind::Usage,
                "undo changes the Mac and needs confirmation",
            )
            .hint("add --yes to put the last reconcile back without a question"));
        }
        if !ctx.src.confirm(&format!(
            "Put back {}'s FileVault password, login password and keychain as before the reconcile {}?",
            escape(&user),
            j.run_id
        ))? {
            return Err(Error::new(ErrorKind::Usage, "cancelled: nothing was changed"));
        }
    }
    let changed_fv = done("filevault");
    if changed_fv && o.fv.accepts == Accepts::New {
        crate::diskutil::rehearsal::ensure_rehearsed(ctx.p, ctx.ui)?;
    }
    let mut changed = Vec::new();
    let result = (|| -> Result<()> {
        if changed_fv && o.fv.accepts == Accepts::New {
            let uuid = o
                .target
                .crypto
                .as_ref()
                .map(|c| c.uuid.clone())
                .unwrap_or_default();
            ctx.p
                .change_passphrase(&o.target.vol, &uuid, new, old)
                .and_then(change_result)?;
            changed.push("filevault");
            o.ledger.confirm_new(ctx.p, &o.target.vol, &uuid, old)?;
        }
        if let Some(bytes) = &record_bytes {
            let path = crate::formats::record::record_path(root, &user);
            fsio::write_atomic(&path, bytes, Perms::of(&path)?)?;
            changed.push("login");
        }
        if let (Some(bytes), Some(p)) = (&keychain_bytes, &j.keychain_path) {
            let path = root.join(p);
            fsio::write_atomic(&path, bytes, Perms::of(&path).unwrap_or(Perms::PRIVATE))?;
            changed.push("keychain");
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = journal::audit(
            root,
            &user,
            &o.target.vol.device,
            &j.run_id,
            "undo",
            &changed,
            "incomplete",
        );
        return Err(if changed.is_empty() {
            e
        } else {
            Error::new(
                ErrorKind::Incomplete,
                format!("undo stopped mid-way ({}); put back so far: {}", e.message(), changed.join(", ")),
            )
            .hint("run `fvsync undo` again with the same passwords to finish; OLD or NEW opens each secret meanwhile")
        });
    }
    if changed_fv {
        if let Err(e) = ctx.p.update_preboot(&o.target.vol) {
            ctx.ui.warn(&format!(
                "the Preboot user list could not be refreshed ({})",
                e.message()
            ));
        } else {
            changed.push("preboot");
        }
    }
    j.state = State::Undone;
    j.save(root)?;
    journal::audit(
        root,
        &user,
        &o.target.vol.device,
        &j.run_id,
        "undo",
        &changed,
        "ok",
    )?;
    Ok(changed)
}
