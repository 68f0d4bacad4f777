//! Observing, before anything is planned or changed: which password FileVault
//! takes (spending at most two attempts, see [`crate::engine::attempts`]),
//! who the user is on the opened volume, and what the offline secrets take.
//!
//! **A secret is bound to its user.** The user's identity is the record's
//! `generateduid` on the opened volume. When the volume is readable before any
//! attempt, the crypto user presented to FileVault is the one with that UUID;
//! when it is locked, the Preboot list (display only) names the crypto user to
//! unlock with, and once the volume is open the record must name that same
//! UUID, or the command stops (exit 5) before anything is changed.
//!
//! Unlocks go through [`Unlocks`]: the command's scope relocks a volume this
//! run unlocked, unless the success path keeps it unlocked explicitly.

use crate::engine::attempts::{throttled_error, Ledger, Presented, Proven};
use crate::engine::journal::{Journal, State};
use crate::engine::secrets::{self, Accepts, Offline, Row, Secret};
use crate::engine::step::Step;
use crate::engine::target::{self, Target};
use crate::engine::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::preboot::Currency;
use crate::fsio::Root;
use crate::platform::{Attempt, Volume};
use crate::secret::Password;
use crate::text::escape;

/// Volumes this run unlocked; relocked at the end of the command's scope
/// unless [`Unlocks::keep`] was called.
#[derive(Debug, Default)]
pub struct Unlocks {
    vol: Option<Volume>,
    keep: bool,
}

impl Unlocks {
    /// Leaves the volume unlocked after the command (a successful reconcile:
    /// Recovery keeps it so until the restart, and a re-run can read the
    /// journal before any attempt).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    pub(crate) fn unlocked(&mut self, vol: &Volume) {
        self.vol = Some(vol.clone());
    }
}

/// Runs `f` in an unlock scope: a volume unlocked inside is locked again
/// when `f` returns (on every path), unless `f` kept it.
pub fn scoped<T>(
    ctx: &mut Ctx<'_>,
    f: impl FnOnce(&mut Ctx<'_>, &mut Unlocks) -> Result<T>,
) -> Result<T> {
    let mut u = Unlocks::default();
    let r = f(ctx, &mut u);
    if let Some(v) = u.vol.take() {
        if !u.keep {
            let _ = ctx.p.lock(&v);
        }
    }
    r
}

/// The passwords a command has.
#[derive(Clone, Copy)]
pub struct Passwords<'a> {
    /// OLD (none for `verify`).
    pub old: Option<&'a Password>,
    /// NEW (for `verify`: the one password).
    pub new: &'a Password,
}

/// How FileVault is probed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe {
    /// Try NEW first (undo).
    pub new_first: bool,
    /// Ask before a second attempt (a person at a terminal, without `--yes`).
    pub ask_second: bool,
}

/// What a command saw.
pub struct Observation {
    /// The user and volume.
    pub target: Target,
    /// The volume's files, once readable.
    pub root: Option<Root>,
    /// The FileVault (or SecureToken) row.
    pub fv: Row,
    /// What FileVault said, when it was asked.
    pub proven: Option<Proven>,
    /// The crypto user's UUID presented to FileVault (bound to the record).
    pub crypto_uuid: Option<String>,
    /// The offline secrets, when the record could be read.
    pub offline: Option<Offline>,
    /// Why they could not be read.
    pub offline_error: Option<Error>,
    /// The user's journal, when there is one.
    pub journal: Option<Journal>,
    /// Why the journal cannot be used.
    pub journal_error: Option<Error>,
    /// Whether the Preboot lists show what the user's record says (names, full
    /// name, hint): `Some(false)` only for a visible mismatch on the opened
    /// volume, `None` when it cannot be told (the passphrase is never there).
    pub preboot_current: Option<bool>,
    /// What the Preboot lists show that the record no longer says.
    pub preboot_stale: Option<String>,
    /// Attempts spent.
    pub ledger: Ledger,
    /// A passphrase or crypto-user hint change of this run took effect (the
    /// Preboot list needs a refresh).
    pub touched_filevault: bool,
    /// The lowest iteration counts a new hash may get (login, SRP).
    pub floors: (u32, u32),
    /// The recovery-key route: the volume was unlocked with the Personal
    /// Recovery Key and OLD proven offline by this (FileVault was not asked).
    pub via_recovery_key: Option<crate::engine::plan::Proof>,
    /// Where the account's password comes from (a directory agent, a
    /// smart card, the only SecureToken holder), once the record is read.
    pub account_sources: Vec<crate::engine::account::AccountSource>,
    /// The password hint asked for (`Some("")`: clear it; `None`: keep it).
    pub hint_request: Option<String>,
}

impl Observation {
    /// The volume root.
    ///
    /// # Errors
    /// The volume is not readable (exit 5).
    pub fn root(&self) -> Result<&Root> {
        self.root
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Refused, "the Data volume is not readable"))
    }

    /// The offline secrets.
    ///
    /// # Errors
    /// The record could not be read (its own error's message).
    pub fn offline(&self) -> Result<&Offline> {
        self.offline
            .as_ref()
            .ok_or_else(|| match &self.offline_error {
                Some(e) => Error::new(e.kind(), e.message().to_string()),
                None => Error::new(ErrorKind::Refused, "the user record cannot be read"),
            })
    }

    /// Every row of the matrix.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![self.fv.clone()];
        match &self.offline {
            Some(o) => rows.extend(o.rows.iter().cloned()),
            None => {
                let why = match &self.offline_error {
                    Some(e) => e.message().to_string(),
                    None => "the Data volume is locked".to_string(),
                };
                for s in [Secret::Login, Secret::Srp, Secret::Keychain] {
                    rows.push(Row::new(s, Accepts::Unknown).note(why.clone()));
                }
            }
        }
        rows
    }

    /// True when a journal of this user says FileVault was changed to NEW by
    /// a run whose OLD was `old` (checked against the run's verifier).
    pub fn journal_changed_filevault(&self, old: &Password) -> bool {
        let (Some(j), Some(root)) = (&self.journal, &self.root) else {
            return false;
        };
        matches!(j.state, State::Open | State::Done)
            && j.is_done(Step::Filevault)
            && crate::engine::executor::verifier_accepts(root, j, old) == Some(true)
    }
}

/// Starts an observation: the volume's files when readable (the record is
/// read first, so the crypto user is the record's), nothing tried yet.
///
/// # Errors
/// The volume's ownership is ignored, or a file on the way was planted.
pub fn start(ctx: &mut Ctx<'_>, target: Target) -> Result<Observation> {
    let root = target::open_root(ctx.p, &target.vol)?;
    let ledger = Ledger::for_volume(ctx.p, &target.vol);
    let floors = ctx.p.iteration_floors();
    let mut o = Observation {
        fv: Row::new(Secret::Filevault, Accepts::Unknown),
        target,
        root,
        proven: None,
        crypto_uuid: None,
        offline: None,
        offline_error: None,
        journal: None,
        journal_error: None,
        preboot_current: None,
        preboot_stale: None,
        ledger,
        touched_filevault: false,
        floors,
        via_recovery_key: None,
        account_sources: Vec::new(),
        hint_request: None,
    };
    if let Some(root) = &o.root {
        // Readable before any attempt: the record says who the user is.
        match secrets::read_record(root, &o.target.user)
            .and_then(|(f, rec)| secrets::identity(root, &f.rel, &rec))
        {
            Ok(id) => {
                o.target.uuid = Some(id.generated_uid.clone());
                o.target.from_preboot = false;
                o.target.crypto = ctx.p.crypto_users(&o.target.vol)?.into_iter().find(|c| {
                    c.uuid.eq_ignore_ascii_case(&id.generated_uid) && c.kind == "LocalOpenDirectory"
                });
                o.read_journal(&id.generated_uid);
            }
            Err(e) => o.offline_error = Some(e),
        }
    }
    Ok(o)
}

impl Observation {
    fn read_journal(&mut self, uuid: &str) {
        if let Some(root) = &self.root {
            match Journal::load(root, &self.target.user, uuid) {
                Ok(j) => self.journal = j,
                Err(e) => self.journal_error = Some(e),
            }
        }
    }

    fn secret(&self) -> Secret {
        if self.target.vol.filevault {
            Secret::Filevault
        } else {
            Secret::SecureToken
        }
    }

    /// Asks FileVault which of OLD and NEW (or, for `verify`, whether the one
    /// password) the user's crypto user takes; unlocks the volume with it when
    /// it is locked. See the module docs and [`crate::engine::attempts`].
    ///
    /// # Errors
    /// The platform failed, or the terminal could not be read.
    pub fn probe(
        &mut self,
        ctx: &mut Ctx<'_>,
        pw: Passwords<'_>,
        how: Probe,
        unlocks: &mut Unlocks,
    ) -> Result<()> {
        let secret = self.secret();
        let vol = self.target.vol.clone();
        let Some(c) = self.target.crypto.clone() else {
            self.fv = match (vol.encryption || vol.filevault, vol.filevault) {
                (false, _) => {
                    Row::new(secret, Accepts::NotApplicable).note("the volume is not encrypted")
                }
                (true, true) => Row::new(secret, Accepts::Unknown).note(format!(
                    "{} is not a FileVault user of this volume",
                    escape(&self.target.user)
                )),
                (true, false) => Row::new(secret, Accepts::NotApplicable)
                    .note("no SecureToken: not a crypto user of this volume"),
            };
            if self.offline_error.is_some() && self.root.is_some() {
                // The record could not be read: nobody to bind an attempt to.
                self.fv = Row::new(secret, Accepts::Unknown).note("the user record cannot be read");
            }
            return Ok(());
        };
        if self.offline_error.is_some() && self.root.is_some() {
            self.fv = Row::new(secret, Accepts::Unknown).note("the user record cannot be read");
            return Ok(());
        }
        let unlock = vol.locked;
        let new_first = how.new_first
            || pw
                .old
                .is_some_and(|old| self.journal_changed_filevault(old));
        ctx.ui.progress("checking the FileVault password...");
        let ask = how.ask_second;
        let Ctx { p, src, ui, .. } = ctx;
        let mut go_on = |next: Presented| -> Result<bool> {
            ui.progress_done();
            if !ask {
                return Ok(true);
            }
            let first = if next == Presented::New { "OLD" } else { "NEW" };
            let second = if next == Presented::New { "NEW" } else { "OLD" };
            src.confirm(&format!(
                "FileVault refused {first} (1 failed attempt). Try {second}? That spends a second attempt"
            ))
        };
        let row = match pw.old {
            Some(old) => {
                let proven = self.ledger.probe(
                    *p, &vol, &c.uuid, old, pw.new, unlock, new_first, &mut go_on,
                )?;
                self.proven = Some(proven);
                if unlock && matches!(proven, Proven::Old | Proven::New) {
                    unlocks.unlocked(&vol);
                }
                match proven {
                    Proven::Old if old.ct_eq(pw.new) => Row::new(secret, Accepts::Both),
                    Proven::Old => Row::new(secret, Accepts::Old),
                    Proven::New => Row::new(secret, Accepts::New),
                    Proven::Neither if self.ledger.throttled => Row::new(secret, Accepts::Unknown)
                        .note(
                        "OLD was rejected; NEW was not tried: FileVault refuses further attempts",
                    ),
                    Proven::Neither => Row::new(secret, Accepts::Neither),
                    Proven::Stopped => Row::new(secret, Accepts::Unknown)
                        .note("one password was refused; the other was not tried"),
                    Proven::Throttled => Row::new(secret, Accepts::Unknown)
                        .note("too many recent attempts: FileVault refuses to check"),
                }
            }
            None => {
                let a =
                    self.ledger
                        .present(*p, &vol, &c.uuid, pw.new, Presented::Current, unlock)?;
                if unlock && a == Attempt::Accepted {
                    unlocks.unlocked(&vol);
                }
                match a {
                    Attempt::Accepted => Row::new(secret, Accepts::New),
                    Attempt::Rejected => Row::new(secret, Accepts::Neither),
                    Attempt::Throttled => Row::new(secret, Accepts::Unknown)
                        .note("too many recent attempts: FileVault refuses to check"),
                }
            }
        };
        ui.progress_done();
        self.fv = row;
        self.crypto_uuid = Some(c.uuid.clone());
        if unlock && unlocks.vol.is_some() {
            self.target.vol.locked = false;
            self.root = target::open_root(*p, &self.target.vol)?;
        }
        Ok(())
    }

    /// Reads the user's record and files on the (now) readable volume, binds
    /// the identity, checks the offline secrets, reads the journal, and
    /// explains the failed attempts.
    ///
    /// # Errors
    /// The record names another GeneratedUID than the crypto user FileVault
    /// was asked about (exit 5); the platform failed.
    pub fn read_files(&mut self, ctx: &mut Ctx<'_>, pw: Passwords<'_>) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        ctx.ui
            .progress("checking the login password, SRP verifier and keychain...");
        let r = secrets::offline(root, &self.target.user, pw.old, pw.new);
        ctx.ui.progress_done();
        match r {
            Ok(off) => {
                if let Some(uuid) = &self.crypto_uuid {
                    if !off.ident.generated_uid.eq_ignore_ascii_case(uuid) {
                        return Err(binding_error(
                            &self.target.user,
                            &off.ident.generated_uid,
                            uuid,
                        ));
                    }
                }
                let uuid = off.ident.generated_uid.clone();
                self.account_sources =
                    crate::engine::account::sources(root, &off.record, off.ident.home.as_ref());
                // The volume's crypto users (cached by the platform); when they
                // cannot be listed the only-holder line is left out, no more.
                if let Ok(cus) = ctx.p.crypto_users(&self.target.vol) {
                    self.account_sources
                        .extend(crate::engine::account::only_owner_source(&cus, &uuid));
                }
                self.offline = Some(off);
                self.offline_error = None;
                if self.journal.is_none() && self.journal_error.is_none() {
                    self.read_journal(&uuid);
                }
            }
            // A planted file (a link, a hard link, another owner): stop here.
            Err(e) if e.kind() == ErrorKind::Refused => return Err(e),
            Err(e) => {
                if self.crypto_uuid.is_some() && self.target.from_preboot {
                    // Unlocked with the Preboot list's UUID, but the record
                    // cannot confirm whose it is: stop.
                    return Err(e.context(
                        ErrorKind::Refused,
                        format!(
                            "{}'s record cannot be read, so the FileVault user that was unlocked cannot be \
                             confirmed as theirs; nothing was changed",
                            escape(&self.target.user)
                        ),
                    ));
                }
                self.offline_error = Some(e);
            }
        }
        self.check_preboot(ctx);
        self.explain_attempts();
        Ok(())
    }

    /// Compares the Preboot lists with the record, once the record is read
    /// and bound to the crypto user FileVault was asked about.
    fn check_preboot(&mut self, ctx: &mut Ctx<'_>) {
        self.preboot_current = None;
        self.preboot_stale = None;
        let (Some(uuid), Some(off)) = (&self.crypto_uuid, &self.offline) else {
            return;
        };
        // The lists read to find the user, or (a volume readable from the
        // start) read now; unreadable lists leave it "not checked".
        let list = match &self.target.preboot {
            Some(l) => l.clone(),
            None => match target::preboot_users(ctx.p, &self.target.vol) {
                Ok(l) => l,
                Err(_) => return,
            },
        };
        match target::preboot_currency(&list, &off.record, uuid, self.target.crypto.as_ref()) {
            Some(Currency::Current) => self.preboot_current = Some(true),
            Some(Currency::Stale(why)) => {
                self.preboot_current = Some(false);
                self.preboot_stale = Some(why);
            }
            None => {}
        }
    }

    fn explain_attempts(&mut self) {
        let after_reconcile = self
            .journal
            .as_ref()
            .filter(|j| matches!(j.state, State::Done | State::Open) && j.is_done(Step::Filevault))
            .map(|j| j.run_id.clone());
        let reconcile = |s: &str| match &after_reconcile {
            Some(id) => format!("{s}, as expected after the reconcile {id}"),
            None => s.to_string(),
        };
        match self.proven {
            Some(Proven::New) => self
                .ledger
                .explain(Presented::Old, reconcile("FileVault already takes NEW")),
            Some(Proven::Old) => self
                .ledger
                .explain(Presented::New, "FileVault still takes OLD"),
            Some(Proven::Neither) => {
                self.ledger
                    .explain(Presented::Old, "FileVault takes neither password");
                self.ledger
                    .explain(Presented::New, "FileVault takes neither password");
            }
            _ => {}
        }
    }

    /// The error when FileVault answered in a way nothing can follow.
    ///
    /// # Errors
    /// Throttled before anything was tried (5), neither password (4), the
    /// technician declined a second attempt (9).
    pub fn gate(&self) -> Result<()> {
        match self.proven {
            Some(Proven::Throttled) => Err(throttled_error()),
            Some(Proven::Neither) => Err(crate::engine::attempts::neither_error(
                &self.ledger,
                &self.target.user,
            )),
            Some(Proven::Stopped) => {
                let first = self
                    .ledger
                    .events
                    .first()
                    .map_or(Presented::Old, |e| e.password);
                Err(crate::engine::attempts::stopped_error(&self.ledger, first))
            }
            _ if self.ledger.throttled && self.ledger.used == 0 => Err(throttled_error()),
            _ => Ok(()),
        }
    }
}

fn binding_error(user: &str, record_uuid: &str, crypto_uuid: &str) -> Error {
    Error::new(
        ErrorKind::Refused,
        format!(
            "{}'s record has GeneratedUID {}, but the FileVault user that was unlocked is {}; \
             nothing was changed",
            escape(user),
            escape(record_uuid),
            escape(crypto_uuid)
        ),
    )
    .hint(
        "the Preboot volume's user list (which named that FileVault user) may have been altered; \
         fvsync binds every secret to the record on the opened volume. Inspect the Preboot list, or \
         run `diskutil apfs updatePreboot /` from a normal boot, then run again",
    )
}
