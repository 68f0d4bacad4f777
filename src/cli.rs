//! Command-line definitions (clap) and dispatch. No flag or environment
//! variable takes a password: passwords come from a prompt or `--password-stdin`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::engine::{self, Ctx, Opts};
use crate::error::Result;
use crate::output::Ui;
use crate::platform::Platform;
use crate::secret::{PasswordSource, StdinSource, TerminalSource};

const EXIT_CODES: &str = "\
Exit codes:
  0  ok (in sync, done, or nothing to do)
  1  unexpected failure
  2  usage error or bad input
  3  out of sync (diagnose, verify)
  4  authentication failed (FileVault accepted neither password)
  5  refused: a precondition is not met (not a FileVault user, throttled, ...)
  6  stopped, and every change was rolled back
  7  stopped mid-way: run the same command again to finish
130 interrupted (Ctrl-C)";

/// fvsync: bring a Mac user's FileVault password, login password and login
/// keychain back in sync, from the Recovery terminal.
#[derive(Debug, Parser)]
#[command(
    name = "fvsync",
    version,
    about = "Bring a Mac user's FileVault, login password and login keychain back in sync",
    after_help = EXIT_CODES,
    after_long_help = concat!(
        "Examples:\n",
        "  fvsync volumes\n",
        "  fvsync users\n",
        "  fvsync diagnose --user alice\n",
        "  fvsync reconcile --user alice --dry-run\n",
        "  fvsync reconcile --user alice\n",
        "  fvsync verify --user alice\n\n",
        "Rehearse on a simulated Mac:\n",
        "  fvsync sim create /tmp/mac --scenario fv-old-login-new\n",
        "  fvsync --simulate /tmp/mac diagnose --user alice\n\n",
        "Exit codes:\n",
        "  0  ok (in sync, done, or nothing to do)\n",
        "  1  unexpected failure\n",
        "  2  usage error or bad input\n",
        "  3  out of sync (diagnose, verify)\n",
        "  4  authentication failed (FileVault accepted neither password)\n",
        "  5  refused: a precondition is not met (not a FileVault user, throttled, ...)\n",
        "  6  stopped, and every change was rolled back\n",
        "  7  stopped mid-way: run the same command again to finish\n",
        "130 interrupted (Ctrl-C)"
    )
)]
pub struct Cli {
    /// Work on the simulated Mac in DIR instead of this Mac.
    #[arg(long, global = true, value_name = "DIR")]
    pub simulate: Option<PathBuf>,

    /// Use this diskutil instead of /usr/sbin/diskutil (unusual environments, tests).
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "simulate")]
    pub diskutil: Option<PathBuf>,

    /// Seconds one diskutil call may take before fvsync gives up on it.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        default_value_t = 120,
        hide_short_help = true
    )]
    pub diskutil_timeout: u64,

    /// Print one JSON document on stdout (for scripts and MDM); see docs/json.md.
    #[arg(long, global = true)]
    pub json: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
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
    /// Show which password each secret accepts, and the plan. Asks OLD then NEW.
    #[command(
        after_help = "With --password-stdin: OLD on line 1, NEW on line 2.\n\nExamples:\n  fvsync diagnose --user alice\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | fvsync --json diagnose --user alice --password-stdin\n\nExit: 0 in sync, 3 out of sync, 4 FileVault accepts neither, 5 refused."
    )]
    Diagnose(UserArgs),
    /// Bring FileVault, the login password and the keychain to NEW. Asks OLD then NEW (twice).
    #[command(
        after_help = "With --password-stdin: OLD on line 1, NEW on line 2 (typed once).\n\nExamples:\n  fvsync reconcile --user alice --dry-run\n  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | fvsync reconcile --user alice --password-stdin --yes\n\nExit: 0 done, 2 usage, 4 FileVault accepts neither, 5 refused, 6 rolled back, 7 run again to finish."
    )]
    Reconcile {
        /// Who and where.
        #[command(flatten)]
        user: UserArgs,
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply the plan without asking (needed with --password-stdin).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Check every secret against one password. Asks one password.
    #[command(
        after_help = "With --password-stdin: the password on line 1.\n\nExamples:\n  fvsync verify --user alice\n\nExit: 0 every secret accepts it, 3 not all do, 5 refused."
    )]
    Verify(UserArgs),
    /// Put the last reconcile back (FileVault NEW to OLD, record and keychain restored). Asks OLD then NEW.
    #[command(
        after_help = "With --password-stdin: OLD on line 1, NEW on line 2.\n\nExamples:\n  fvsync undo --user alice\n\nExit: 0 done, 4 FileVault accepts neither, 5 nothing to undo or refused, 1 failure."
    )]
    Undo {
        /// Who and where.
        #[command(flatten)]
        user: UserArgs,
        /// Put it back without asking (needed with --password-stdin).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Create and list simulated Macs.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the Recovery runbook (built in, so it is there offline).
    Runbook,
}

/// The runbook, embedded at build time.
pub const RUNBOOK: &str = include_str!("../docs/runbook.md");

/// The user a command works on.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The user's short name (see `fvsync users`).
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// The Data volume (device, name or UUID), when the user is on several.
    #[arg(long, value_name = "DEV")]
    pub volume: Option<String>,
    /// Read passwords from standard input, one per line, instead of the terminal.
    #[arg(long)]
    pub password_stdin: bool,
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

fn platform(cli: &Cli) -> Result<Box<dyn Platform>> {
    match &cli.simulate {
        Some(dir) => Ok(Box::new(crate::sim::SimMac::open(dir)?)),
        None => Ok(Box::new(crate::diskutil::DiskutilMac::new(
            cli.diskutil
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::diskutil::runner::DISKUTIL)),
            PathBuf::from(crate::diskutil::runner::HDIUTIL),
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

/// Runs a parsed command line; returns the exit code.
///
/// # Errors
/// Any error of the command; `main` prints it and exits with its code.
pub fn run(cli: Cli, ui: &mut Ui) -> Result<u8> {
    match &cli.command {
        Command::Sim(SimCommand::Scenarios) => {
            if ui.json {
                let list: Vec<_> = crate::sim::scenarios::SCENARIOS
                    .iter()
                    .map(|s| serde_json::json!({"name": s.name, "summary": s.summary}))
                    .collect();
                ui.json_value(&serde_json::json!({"version": 1, "scenarios": list}));
            } else {
                let rows: Vec<Vec<String>> = crate::sim::scenarios::SCENARIOS
                    .iter()
                    .map(|s| vec![s.name.to_string(), s.summary.to_string()])
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
                    crate::text::escape(&dir.to_string_lossy())
                ));
            }
            Ok(0)
        }
        Command::Runbook => {
            if ui.json {
                ui.json_value(&serde_json::json!({"version": 1, "runbook": RUNBOOK}));
            } else {
                ui.raw(RUNBOOK);
            }
            Ok(0)
        }
        Command::Volumes => {
            let p = platform(&cli)?;
            crate::listing::volumes(p.as_ref(), ui)
        }
        Command::Users { volume, all } => {
            let p = platform(&cli)?;
            crate::listing::users(p.as_ref(), ui, volume.as_deref(), *all)
        }
        Command::Diagnose(u) | Command::Verify(u) | Command::Undo { user: u, .. } => {
            let mut p = platform(&cli)?;
            let mut src = source(u.password_stdin);
            let opts = Opts {
                user: u.user.clone(),
                volume: u.volume.clone(),
                yes: matches!(cli.command, Command::Undo { yes: true, .. }),
                ..Opts::default()
            };
            let mut ctx = Ctx {
                p: p.as_mut(),
                ui,
                src: src.as_mut(),
            };
            match &cli.command {
                Command::Diagnose(_) => engine::diagnose(&mut ctx, &opts),
                Command::Verify(_) => engine::verify(&mut ctx, &opts),
                _ => engine::undo(&mut ctx, &opts),
            }
        }
        Command::Reconcile { user, dry_run, yes } => {
            let mut p = platform(&cli)?;
            let mut src = source(user.password_stdin);
            let opts = Opts {
                user: user.user.clone(),
                volume: user.volume.clone(),
                dry_run: *dry_run,
                yes: *yes,
            };
            let mut ctx = Ctx {
                p: p.as_mut(),
                ui,
                src: src.as_mut(),
            };
            engine::reconcile(&mut ctx, &opts)
        }
    }
}
