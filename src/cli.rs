//! Command-line definitions (clap) and dispatch. No flag or environment
//! variable takes a password: passwords come from a prompt or `--password-stdin`.
//!
//! Two layers, as ripgrep has them: the clap structs mirror what was typed
//! (one struct per command), and [`run`] turns them into the engine's own
//! options (`engine::cmd::*::Opts`), builds the platform and the password
//! source, and renders the command's typed report.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::engine::cmd::{self, Finished};
use crate::engine::{Ctx, Invocation, UserSel};
use crate::error::{Exit, Result};
use crate::output::render::Render;
use crate::output::Ui;
use crate::platform::Platform;
use crate::secret::{PasswordSource, StdinSource, TerminalSource};

/// The heading under which `--help` lists the flags for testing and support.
const SUPPORT: &str = "Testing and support";

fn exit_help() -> String {
    Exit::help_table()
}

/// fvsync: bring a Mac user's FileVault password, login password and login
/// keychain back in sync, from the Recovery terminal.
#[derive(Debug, Parser)]
#[command(
    name = "fvsync",
    version,
    // Recovery's Terminal opens at 80 columns; wider terminals keep 80 too.
    max_term_width = 80,
    about = "Bring a Mac user's FileVault, login password and login keychain back in sync",
    after_help = exit_help(),
    after_long_help = format!(
        "Examples:\n  fvsync volumes\n  fvsync users\n  fvsync diagnose --user alice\n  \
         fvsync reconcile --user alice --dry-run\n  fvsync reconcile --user alice\n  \
         fvsync verify --user alice\n\nRehearse on a simulated Mac:\n  \
         fvsync sim create /tmp/mac --scenario fv-old-login-new\n  \
         fvsync --simulate /tmp/mac diagnose --user alice\n\n{}",
        exit_help()
    )
)]
pub struct Cli {
    /// Work on the simulated Mac in DIR instead of this Mac.
    #[arg(long, global = true, value_name = "DIR")]
    pub simulate: Option<PathBuf>,

    /// Print one JSON document on stdout (for scripts and MDM); see docs/json.md.
    #[arg(long, global = true)]
    pub json: bool,

    /// Show paths, hash schemes and iteration counts in the tables.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,

    /// Use this diskutil instead of /usr/sbin/diskutil.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "simulate", help_heading = SUPPORT, hide_short_help = true)]
    pub diskutil: Option<PathBuf>,

    /// Use this hdiutil (the rehearsal's throwaway volume) instead of /usr/bin/hdiutil.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "simulate", help_heading = SUPPORT, hide_short_help = true)]
    pub hdiutil: Option<PathBuf>,

    /// Seconds one diskutil call may take before fvsync gives up on it.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120, help_heading = SUPPORT, hide_short_help = true)]
    pub diskutil_timeout: u64,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The user a command works on.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The user's short name (a full name or another case is asked about).
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// The Data volume (device, name or UUID), when the user is on several.
    #[arg(long, value_name = "DEV")]
    pub volume: Option<String>,
    /// Read passwords from standard input, one per line, instead of the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Who and where.
    #[command(flatten)]
    pub user: UserArgs,
    /// Do not ask before a second FileVault attempt.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Unlock with the Personal Recovery Key and check OLD candidates offline (no attempt on a guess).
    #[arg(long)]
    pub recovery_key: bool,
}

/// `reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Who and where.
    #[command(flatten)]
    pub user: UserArgs,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply the plan without asking (needed with --password-stdin).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Go ahead when the rehearsal on a throwaway volume cannot run (have the recovery key at hand).
    #[arg(long, help_heading = SUPPORT)]
    pub without_rehearsal: bool,
    /// Unlock with the Personal Recovery Key and prove OLD offline: no FileVault attempt on a guess.
    #[arg(long)]
    pub recovery_key: bool,
    /// After --recovery-key, have Escrow Buddy make a new key at the next login without asking.
    #[arg(long, requires = "recovery_key")]
    pub request_new_recovery_key: bool,
    /// Set the password hint (login window and FileVault) to TEXT; "" clears it. Without it a person is asked.
    #[arg(long, value_name = "TEXT")]
    pub hint: Option<String>,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Who and where.
    #[command(flatten)]
    pub user: UserArgs,
}

/// `undo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// Who and where.
    #[command(flatten)]
    pub user: UserArgs,
    /// Show what would be put back and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put it back without asking (needed with --password-stdin).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Go ahead when the rehearsal on a throwaway volume cannot run.
    #[arg(long, help_heading = SUPPORT)]
    pub without_rehearsal: bool,
}

/// `purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Who and where.
    #[command(flatten)]
    pub user: UserArgs,
    /// Show what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List APFS containers and volumes (read-only).
    #[command(
        after_help = "Examples:\n  fvsync volumes\n  fvsync --json volumes\n\nExit: 0, or 1 if diskutil fails."
    )]
    Volumes,
    /// List the users of the Data volumes (read-only; no unlock).
    #[command(
        after_help = "On a locked volume, only the FileVault users the Preboot volume names are listed.\n\nExamples:\n  fvsync users\n  fvsync users --volume disk3s5 --all\n\nExit: 0, 2 no such volume."
    )]
    Users {
        /// Only this Data volume (device, name or UUID).
        #[arg(long, value_name = "DEV")]
        volume: Option<String>,
        /// Include system accounts (uid below 500).
        #[arg(long)]
        all: bool,
    },
    /// Show which password each secret accepts, and the plan. Asks OLD (twice), then NEW.
    #[command(
        after_help = "OLD is the password before the directory change; NEW is the current one.\nWith --password-stdin: OLD on line 1, NEW on line 2.\n\nExamples:\n  fvsync diagnose --user alice\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | fvsync --json diagnose --user alice --password-stdin\n\nExit: 0 in sync, 3 out of sync (reconcile fixes it), 4 FileVault accepts neither,\n5 refused, 8 out of sync and reconcile cannot fix it, 9 cancelled."
    )]
    Diagnose(DiagnoseArgs),
    /// Bring FileVault, the login password and the keychain to NEW. Asks OLD and NEW, each twice.
    #[command(
        after_help = "OLD is the password before the directory change; NEW is the current one.\nWith --password-stdin: OLD on line 1, NEW on line 2 (each typed once).\n\nExamples:\n  fvsync reconcile --user alice --dry-run\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | fvsync reconcile --user alice --password-stdin --yes\n\nExit: 0 done, 2 usage, 4 FileVault accepts neither, 5 refused, 6 rolled back,\n7 run again to finish, 8 done but a secret takes neither password, 9 cancelled."
    )]
    Reconcile(ReconcileArgs),
    /// Check every secret against one password. Asks one password.
    #[command(
        after_help = "With --password-stdin: the password on line 1.\n\nExamples:\n  fvsync verify --user alice\n\nExit: 0 every secret that counts accepts it, 3 not all do, 5 refused."
    )]
    Verify(VerifyArgs),
    /// Put the last reconcile back (FileVault NEW to OLD, record and keychain restored). Asks NEW, then OLD.
    #[command(
        after_help = "With --password-stdin: NEW on line 1, OLD on line 2.\n\nExamples:\n  fvsync undo --user alice --dry-run\n  fvsync undo --user alice\n\nExit: 0 done, 4 FileVault refused NEW or OLD is not the one replaced, 5 nothing to\nundo or refused, 7 run again to finish, 9 cancelled."
    )]
    Undo(UndoArgs),
    /// Remove a user's backups (the hash and keychain under OLD) once they are no longer wanted.
    #[command(
        after_help = "The backups of a run that did not finish are kept.\n\nExamples:\n  fvsync purge --user alice --dry-run\n  fvsync purge --user alice\n\nExit: 0 done, 5 refused, 9 cancelled."
    )]
    Purge(PurgeArgs),
    /// Show the receipt of fvsync's last run on this Mac, or check every user (--fleet). No password, read-only.
    #[command(
        after_help = "In a normal boot it reads /System/Volumes/Data (run as root, e.g. from the MDM);\nin Recovery, a Data volume already unlocked. --fleet lists every user (uid 500 and\nup) with their SecureToken, login hash, keychain, account sources and last run, and\nflags those that need a reconcile (docs/mdm.md).\n\nExamples:\n  sudo fvsync receipt\n  sudo fvsync --json receipt --fleet\n\nExit: 0 (also when there is no receipt), 2 no such volume, 5 locked or refused."
    )]
    Receipt {
        /// Only this Data volume (device, name or UUID).
        #[arg(long, value_name = "DEV")]
        volume: Option<String>,
        /// Every user, and whether they need a reconcile.
        #[arg(long)]
        fleet: bool,
    },
    /// Rehearse a passphrase change on a throwaway volume, and say what works here.
    #[command(
        after_help = "Creates a small RAM disk (or disk image) with its own throwaway passphrase, tries\nhow diskutil takes two passphrases, checks the result, and deletes it. The Mac's\nown volumes are not touched and no FileVault attempt of theirs is spent.\n\nExamples:\n  fvsync selftest\n  fvsync --json selftest\n\nExit: 0 passed (or not needed), 5 failed or could not run."
    )]
    Selftest,
    /// Write what fvsync reads from this Mac's diskutil (no secret) into DIR, for a pilot report.
    #[command(
        after_help = "Every read-only diskutil output fvsync uses, the OS version and build, the machine\ntype and the rehearsal's transcript. UUIDs are replaced by placeholders unless\n--no-redact.\n\nExamples:\n  fvsync report /Volumes/STICK/fvsync-report\n\nExit: 0 written, 1 the folder cannot be written, 5 on a simulated Mac."
    )]
    Report {
        /// The folder to write (created).
        dir: PathBuf,
        /// Keep the volumes' and users' UUIDs as they are.
        #[arg(long)]
        no_redact: bool,
    },
    /// Create and list simulated Macs.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the Recovery runbook (built in, so it is there offline; fits 80 columns).
    #[command(
        after_help = "Examples:\n  fvsync runbook | less\n  fvsync runbook --section 4\n\nExit: 0, 2 no such section (the list is printed)."
    )]
    Runbook {
        /// Only section N (0 to 11; a wrong N lists them).
        #[arg(long, value_name = "N")]
        section: Option<u32>,
    },
}

/// `fvsync sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Create a simulated Mac in DIR (missing or empty) for a scenario.
    #[command(
        after_help = "Examples:\n  fvsync sim create /tmp/mac --scenario all-old\n  fvsync sim create /tmp/fast --scenario throttled --iterations 1000\n\nPasswords: alice OLD Old-Passw0rd!, NEW New-Passw0rd!, bob Bob-Passw0rd!, itadmin Admin-Passw0rd! (docs/simulated-mac.md)."
    )]
    Create {
        /// The folder.
        dir: PathBuf,
        /// The scenario (see `fvsync sim scenarios`).
        #[arg(long, default_value = "fv-old-login-new")]
        scenario: String,
        /// Use N PBKDF2 iterations for every secret instead of realistic counts (fast tests).
        #[arg(long, value_name = "N")]
        iterations: Option<u32>,
    },
    /// List the scenarios.
    Scenarios,
}

fn diskutil_mac(cli: &Cli) -> crate::diskutil::DiskutilMac {
    crate::diskutil::DiskutilMac::new(
        cli.diskutil
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::diskutil::runner::DISKUTIL)),
        cli.hdiutil
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::diskutil::runner::HDIUTIL)),
        std::time::Duration::from_secs(cli.diskutil_timeout.max(1)),
    )
}

fn platform(cli: &Cli) -> Result<Box<dyn Platform>> {
    match &cli.simulate {
        Some(dir) => Ok(Box::new(crate::sim::SimMac::open(dir)?)),
        None => Ok(Box::new(crate::diskutil::DiskutilMac::new(
            cli.diskutil
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::diskutil::runner::DISKUTIL)),
            cli.hdiutil
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::diskutil::runner::HDIUTIL)),
            std::time::Duration::from_secs(cli.diskutil_timeout.max(1)),
        ))),
    }
}

fn source(password_stdin: bool) -> Box<dyn PasswordSource> {
    if password_stdin {
        Box::new(StdinSource::new(crate::secret::RawStdin))
    } else {
        Box::new(TerminalSource)
    }
}

/// How this fvsync was invoked, for hints: the Recovery launcher sets
/// `FVSYNC_LAUNCHER` to its own command line; otherwise `fvsync` with the
/// flags that choose the Mac.
fn invocation(cli: &Cli) -> Invocation {
    if let Some(l) = std::env::var_os("FVSYNC_LAUNCHER") {
        let l = l.to_string_lossy();
        if !l.is_empty() && l.len() < 512 && !l.chars().any(char::is_control) {
            return Invocation {
                prefix: l.into_owned(),
            };
        }
    }
    let mut prefix = "fvsync".to_string();
    let mut flag = |name: &str, v: &Option<PathBuf>| {
        if let Some(p) = v {
            prefix.push_str(&format!(
                " {name} {}",
                crate::engine::shell_word(&p.to_string_lossy())
            ));
        }
    };
    flag("--simulate", &cli.simulate);
    flag("--diskutil", &cli.diskutil);
    flag("--hdiutil", &cli.hdiutil);
    Invocation { prefix }
}

fn sel(u: &UserArgs, yes: bool) -> UserSel {
    UserSel {
        user: u.user.clone(),
        volume: u.volume.clone(),
        yes,
    }
}

fn finish<R: serde::Serialize + Render>(
    ui: &mut Ui,
    f: Result<Finished<R>>,
    code: impl Fn(&R) -> u8,
) -> Result<u8> {
    let f = f?;
    ui.show(&f.report);
    match f.error {
        Some(e) => Err(e),
        None => Ok(code(&f.report)),
    }
}

/// Runs a parsed command line; returns the exit code.
///
/// # Errors
/// Any error of the command; `main` prints it and exits with its code.
pub fn run(cli: Cli, ui: &mut Ui) -> Result<u8> {
    ui.verbose = cli.verbose;
    match &cli.command {
        Command::Sim(SimCommand::Scenarios) => {
            if ui.json {
                let doc = crate::engine::report::SimScenarios {
                    version: crate::engine::report::VERSION,
                    scenarios: crate::sim::scenarios::SCENARIOS
                        .iter()
                        .map(|s| crate::engine::report::Scenario {
                            name: s.name.into(),
                            summary: s.summary.into(),
                        })
                        .collect(),
                };
                ui.json_value(&serde_json::to_value(&doc).unwrap_or_default());
            } else {
                let rows: Vec<Vec<crate::output::Cell>> = crate::sim::scenarios::SCENARIOS
                    .iter()
                    .map(|s| vec![s.name.into(), s.summary.into()])
                    .collect();
                ui.table(&["scenario", "what it models"], &rows);
            }
            Ok(0)
        }
        Command::Sim(SimCommand::Create {
            dir,
            scenario,
            iterations,
        }) => {
            let it = match iterations {
                Some(n) => crate::sim::scenarios::Iterations::all(*n),
                None => crate::sim::scenarios::Iterations::REALISTIC,
            };
            crate::sim::scenarios::create(dir, scenario, it)?;
            if ui.json {
                ui.json_value(
                    &serde_json::json!({"version": 1, "created": dir, "scenario": scenario}),
                );
            } else {
                ui.line(&format!(
                    "Created a simulated Mac ({}) in {}",
                    crate::text::escape(scenario),
                    crate::text::quote_path(dir)
                ));
                ui.line(&format!(
                    "Try: fvsync --simulate {} diagnose --user alice",
                    crate::engine::shell_word(&dir.to_string_lossy())
                ));
            }
            Ok(0)
        }
        Command::Runbook { section } => {
            let text = match section {
                None => crate::runbook::text(),
                Some(n) => crate::runbook::section(*n).inspect_err(|_| {
                    if !ui.json {
                        ui.raw_err(&crate::runbook::list());
                    }
                })?,
            };
            if ui.json {
                let doc = crate::engine::report::Runbook {
                    version: crate::engine::report::VERSION,
                    runbook: text,
                };
                ui.json_value(&serde_json::to_value(&doc).unwrap_or_default());
            } else {
                ui.raw(&text);
            }
            Ok(0)
        }
        Command::Selftest => {
            let (source, system, rehearsal) = match &cli.simulate {
                Some(dir) => {
                    let mut p = crate::sim::SimMac::open(dir)?;
                    (p.description(), p.system(), p.rehearse()?)
                }
                None => {
                    let mut m = diskutil_mac(&cli);
                    let r = crate::diskutil::rehearsal::selftest(&mut m);
                    (m.description(), m.system(), r)
                }
            };
            use crate::platform::RehearsalOutcome;
            let exit_code = match rehearsal.outcome {
                RehearsalOutcome::NotNeeded | RehearsalOutcome::Passed { .. } => 0,
                _ => crate::error::Exit::Refused.code(),
            };
            ui.show(&crate::engine::report::Selftest {
                version: crate::engine::report::VERSION,
                source,
                system,
                rehearsal,
                exit_code,
            });
            Ok(exit_code)
        }
        Command::Report { dir, no_redact } => {
            if cli.simulate.is_some() {
                return Err(crate::error::Error::new(
                    crate::error::ErrorKind::Refused,
                    "`fvsync report` describes a real Mac's diskutil; a simulated Mac has nothing to report",
                ));
            }
            let m = diskutil_mac(&cli);
            let summary = crate::diskutil::report::report(&m, dir, !*no_redact)?;
            ui.show(&crate::engine::report::Pilot {
                version: crate::engine::report::VERSION,
                source: m.description(),
                report: summary,
            });
            Ok(0)
        }
        Command::Volumes => {
            let p = platform(&cli)?;
            crate::listing::volumes(p.as_ref(), ui)
        }
        Command::Receipt { volume, fleet } => {
            let mut p = platform(&cli)?;
            if *fleet {
                let r = cmd::receipt::fleet(p.as_mut(), volume.as_deref())?;
                ui.show(&r);
            } else {
                let r = cmd::receipt::latest(p.as_mut(), volume.as_deref())?;
                ui.show(&r);
            }
            Ok(0)
        }
        Command::Users { volume, all } => {
            let mut p = platform(&cli)?;
            crate::listing::users(p.as_mut(), ui, volume.as_deref(), *all)
        }
        Command::Diagnose(a) => user_command(&cli, ui, &a.user, |ctx| {
            diagnose_with(ctx, &sel(&a.user, a.yes), a.recovery_key)
        }),
        Command::Verify(a) => {
            user_command(&cli, ui, &a.user, |ctx| verify(ctx, &sel(&a.user, false)))
        }
        Command::Reconcile(a) => user_command(&cli, ui, &a.user, |ctx| {
            let opts = cmd::reconcile::Opts {
                sel: sel(&a.user, a.yes),
                dry_run: a.dry_run,
                without_rehearsal: a.without_rehearsal,
                recovery_key: a.recovery_key,
                request_new_key: a.request_new_recovery_key,
                hint: a.hint.clone(),
            };
            reconcile(ctx, &opts)
        }),
        Command::Undo(a) => user_command(&cli, ui, &a.user, |ctx| {
            let opts = cmd::undo::Opts {
                sel: sel(&a.user, a.yes),
                dry_run: a.dry_run,
                without_rehearsal: a.without_rehearsal,
            };
            undo(ctx, &opts)
        }),
        Command::Purge(a) => user_command(&cli, ui, &a.user, |ctx| {
            let opts = cmd::purge::Opts {
                sel: sel(&a.user, a.yes),
                dry_run: a.dry_run,
            };
            purge(ctx, &opts)
        }),
    }
}

/// `diagnose`, rendered; returns the exit code (in-process tests use it).
///
/// # Errors
/// The command's error, for `main` to print.
pub fn diagnose(ctx: &mut Ctx<'_>, sel: &UserSel) -> Result<u8> {
    diagnose_with(ctx, sel, false)
}

/// `diagnose`, through the recovery-key route when `recovery_key`.
///
/// # Errors
/// The command's error.
pub fn diagnose_with(ctx: &mut Ctx<'_>, sel: &UserSel, recovery_key: bool) -> Result<u8> {
    ctx.ui
        .set_attempts(&crate::engine::attempts::Ledger::default());
    let r = cmd::diagnose::run(ctx, sel, recovery_key);
    finish(ctx.ui, r, |r| r.exit_code)
}

/// `verify`, rendered.
///
/// # Errors
/// The command's error.
pub fn verify(ctx: &mut Ctx<'_>, sel: &UserSel) -> Result<u8> {
    ctx.ui
        .set_attempts(&crate::engine::attempts::Ledger::default());
    let r = cmd::verify::run(ctx, sel);
    finish(ctx.ui, r, |r| r.exit_code)
}

/// `reconcile`, rendered.
///
/// # Errors
/// The command's error.
pub fn reconcile(ctx: &mut Ctx<'_>, opts: &cmd::reconcile::Opts) -> Result<u8> {
    ctx.ui
        .set_attempts(&crate::engine::attempts::Ledger::default());
    let r = cmd::reconcile::run(ctx, opts);
    finish(ctx.ui, r, |r| r.exit_code)
}

/// `undo`, rendered.
///
/// # Errors
/// The command's error.
pub fn undo(ctx: &mut Ctx<'_>, opts: &cmd::undo::Opts) -> Result<u8> {
    ctx.ui
        .set_attempts(&crate::engine::attempts::Ledger::default());
    let r = cmd::undo::run(ctx, opts);
    finish(ctx.ui, r, |r| r.exit_code)
}

/// `purge`, rendered.
///
/// # Errors
/// The command's error.
pub fn purge(ctx: &mut Ctx<'_>, opts: &cmd::purge::Opts) -> Result<u8> {
    ctx.ui
        .set_attempts(&crate::engine::attempts::Ledger::default());
    let r = cmd::purge::run(ctx, opts);
    finish(ctx.ui, r, |r| r.exit_code)
}

fn user_command(
    cli: &Cli,
    ui: &mut Ui,
    u: &UserArgs,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<u8>,
) -> Result<u8> {
    let mut p = platform(cli)?;
    let mut src = source(u.password_stdin);
    let mut ctx = Ctx {
        p: p.as_mut(),
        ui,
        src: src.as_mut(),
        inv: invocation(cli),
    };
    f(&mut ctx)
}
