//! The recovery-key route, for a user who is not sure of OLD: every guess at
//! the FileVault screen would spend one of about ten Secure Enclave attempts,
//! so none is made. The Personal Recovery Key (written down, not guessed)
//! unlocks the Data volume; then the user's candidates for OLD are checked
//! **offline**, for free, against the secrets that can still prove it (the
//! login hash, the SRP verifier, the login keychain, a previous run's OLD
//! verifier); a candidate proven there is used for the one FileVault
//! passphrase change. With none proven, nothing is changed: the keychain is
//! copied into fvsync's root-only backups folder (the user can still open it
//! later with whatever password it takes) and the technician is handed to
//! Apple's `resetpassword`, with what that will lose.
//!
//! The unlock itself is `diskutil apfs unlockVolume <dev> -user
//! EBC6C064-0000-11AA-AA11-00306543ECAC -stdinpassphrase` (the man page's
//! `-user cryptoUserUUID`; the Personal Recovery user's UUID is fixed). The
//! rehearsal on a throwaway volume cannot prove this unlock: a throwaway
//! volume has no recovery key.

use crate::engine::attempts::{throttled_error, Presented};
use crate::engine::cmd::reconcile::{self, Opts};
use crate::engine::cmd::Finished;
use crate::engine::journal::{Backup, RunId, BACKUP_DIR};
use crate::engine::observe::{self, Observation, Passwords, Unlocks};
use crate::engine::plan::Proof;
use crate::engine::report;
use crate::engine::resume;
use crate::engine::secrets::{Accepts, Row, Secret};
use crate::engine::target::Target;
use crate::engine::{hint_cmd, Ctx};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::shadowhash::Check;
use crate::fsio::{Perms, Rel, Want};
use crate::platform::{Attempt, PERSONAL_RECOVERY_UUID};
use crate::secret::{self, Password, Which};
use crate::text::escape;

/// Candidates a person may type (never a list from a file).
pub const MAX_CANDIDATES: usize = 3;

/// Escrow Buddy's preferences on the Data volume.
pub const ESCROW_BUDDY: &str = "Library/Preferences/com.netflix.Escrow-Buddy.plist";

/// Unlocks the volume with the Personal Recovery Key (one attempt, counted).
///
/// # Errors
/// The volume has no Personal Recovery Key; the key was refused (4) or
/// FileVault refuses attempts (5); the platform failed.
fn unlock(
    ctx: &mut Ctx<'_>,
    o: &mut Observation,
    key: &Password,
    unlocks: &mut Unlocks,
) -> Result<()> {
    let vol = o.target.vol.clone();
    let has_key = ctx
        .p
        .crypto_users(&vol)?
        .iter()
        .any(|c| c.uuid.eq_ignore_ascii_case(PERSONAL_RECOVERY_UUID));
    if !has_key {
        return Err(Error::new(
            ErrorKind::Refused,
            format!("{} has no Personal Recovery Key; nothing was changed", vol.device),
        )
        .hint("use the institutional recovery key with Apple's `resetpassword`, or confirm OLD with the user"));
    }
    ctx.ui.progress("unlocking with the recovery key...");
    let a = o.ledger.present(
        ctx.p,
        &vol,
        PERSONAL_RECOVERY_UUID,
        key,
        Presented::RecoveryKey,
        true,
    );
    ctx.ui.progress_done();
    ctx.ui.set_attempts(&o.ledger);
    match a? {
        Attempt::Accepted => {
            unlocks.unlocked(&vol);
            o.target.vol.locked = false;
            o.root = crate::engine::target::open_root(ctx.p, &o.target.vol)?;
            Ok(())
        }
        Attempt::Rejected => {
            o.ledger.explain(
                Presented::RecoveryKey,
                "it is not this volume's Personal Recovery Key",
            );
            ctx.ui.set_attempts(&o.ledger);
            Err(Error::new(
                ErrorKind::AuthFailed,
                "FileVault did not accept the recovery key; nothing was changed",
            )
            .hint("check the key (MDM escrow, the printout); each wrong key spends an attempt, so do not guess"))
        }
        Attempt::Throttled => Err(throttled_error()),
    }
}

/// The secrets that could still prove OLD: those that can be checked and do
/// not already take NEW, and a previous run's OLD verifier.
fn provers(o: &Observation) -> Vec<&'static str> {
    let mut v = Vec::new();
    if let Some(off) = &o.offline {
        for r in &off.rows {
            let checkable = !matches!(r.accepts, Accepts::Unknown | Accepts::NotApplicable);
            if checkable && !r.accepts.takes_new() {
                match r.secret {
                    Secret::Login => v.push("the login hash"),
                    Secret::Srp => v.push("the SRP verifier"),
                    Secret::Keychain => v.push("the login keychain"),
                    _ => {}
                }
            }
        }
    }
    if o.journal.as_ref().is_some_and(|j| j.backups.old_verifier) {
        v.push("a previous run's OLD verifier");
    }
    v
}

/// Checks a candidate offline; returns which secret proved it, with a line
/// per check for the screen.
fn check(o: &Observation, cand: &Password) -> (Option<Proof>, Vec<String>) {
    let mut lines = Vec::new();
    let mut proof = None;
    if let Some(off) = &o.offline {
        let sh = off.shadow.as_ref();
        let rows_of = |s: Secret| off.row(s).map(|r| r.accepts);
        if let Some(e) = sh
            .and_then(|s| s.salted.as_ref())
            .filter(|_| rows_of(Secret::Login) == Some(Accepts::Neither))
        {
            let ok = e.check(cand.expose()) == Check::Match;
            lines.push(format!("login hash: {}", if ok { "yes" } else { "no" }));
            if ok {
                proof = proof.or(Some(Proof::Offline(Secret::Login)));
            }
        }
        if let Some(e) = sh
            .and_then(|s| s.srp.as_ref())
            .filter(|_| rows_of(Secret::Srp) == Some(Accepts::Neither))
        {
            let ok = e.check(cand.expose()) == Check::Match;
            lines.push(format!("SRP verifier: {}", if ok { "yes" } else { "no" }));
            if ok {
                proof = proof.or(Some(Proof::Offline(Secret::Srp)));
            }
        }
        if let Some(kc) = off
            .keychain
            .as_ref()
            .filter(|_| rows_of(Secret::Keychain) == Some(Accepts::Neither))
        {
            let entropy = off.keychain_entropy.as_ref().map(|e| e.0.as_slice());
            let ok = matches!(
                crate::formats::keychain::check_form(&kc.bytes, cand.expose(), entropy),
                Ok(Some(_))
            );
            lines.push(format!("login keychain: {}", if ok { "yes" } else { "no" }));
            if ok {
                proof = proof.or(Some(Proof::Offline(Secret::Keychain)));
            }
        }
    }
    if let (Some(j), Some(root)) = (&o.journal, &o.root) {
        if let Some(ok) = resume::verifier_accepts(root, j, cand) {
            lines.push(format!(
                "the OLD verifier of run {}: {}",
                j.run_id,
                if ok { "yes" } else { "no" }
            ));
            if ok {
                proof = proof.or(Some(Proof::Verifier));
            }
        }
    }
    (proof, lines)
}

/// Copies the login keychain into fvsync's root-only backups folder, so the
/// user can still open it later with whatever password it takes. Returns
/// the copy's path for the message.
fn keep_keychain(o: &Observation) -> Result<Option<String>> {
    let (Some(root), Some(off)) = (&o.root, &o.offline) else {
        return Ok(None);
    };
    let Some(kc) = &off.keychain else {
        return Ok(None);
    };
    let run = RunId::new();
    root.ensure_dir(&Rel::new(BACKUP_DIR)?, 0o700)?;
    let rel = crate::engine::journal::backup_path(&off.ident.name, &run, Backup::Keychain)?;
    root.write_atomic(&rel, &kc.bytes, Perms::PRIVATE)?;
    Ok(Some(root.show(&rel)))
}

fn handoff(ctx: &Ctx<'_>, o: &Observation, why: &str, kept: Option<String>) -> Error {
    let user = escape(&o.target.user);
    let mut hint = format!(
        "Apple's reset is then the way: restart into Recovery, open Terminal, run `resetpassword`, \
         choose \"I forgot my password\" or use the recovery key, pick {user} and set NEW. It sets the login \
         and FileVault passwords together; the login keychain is then replaced by a new, empty one at \
         the first login (macOS keeps the old one renamed)"
    );
    match kept {
        Some(p) => hint.push_str(&format!(
            ". A copy of the login keychain is kept in {p}: it opens with the password it took then"
        )),
        None => hint.push_str(". There was no login keychain to keep"),
    }
    hint.push_str(&format!(
        "; `{}` removes that copy later",
        hint_cmd(
            ctx,
            "purge",
            &crate::engine::UserSel {
                user: o.target.user.clone(),
                ..Default::default()
            },
            &o.target.user,
            &[]
        )
    ));
    Error::new(ErrorKind::Refused, format!("{why}; nothing was changed")).hint(hint)
}

/// The route for `reconcile --recovery-key` (and `diagnose --recovery-key`,
/// which stops before the plan is applied): unlock, NEW, candidates, then the
/// normal plan with the candidate proven offline as OLD.
///
/// # Errors
/// As `reconcile`, and the hand-off to `resetpassword` (5) when nothing
/// proves a candidate.
pub fn reconcile(ctx: &mut Ctx<'_>, opts: &Opts, t: Target) -> Result<Finished<report::Reconcile>> {
    observe::scoped(ctx, |ctx, unlocks| {
        let (o, old, new) = prepare(ctx, t, unlocks)?;
        reconcile::finish(ctx, opts, o, &old, &new, unlocks)
    })
}

/// Unlocks with the key, reads NEW and the candidates, and returns the
/// observation with OLD proven offline.
///
/// # Errors
/// See [`reconcile`].
pub(crate) fn prepare(
    ctx: &mut Ctx<'_>,
    t: Target,
    unlocks: &mut Unlocks,
) -> Result<(Observation, Password, Password)> {
    let mut o = observe::start(ctx, t)?;
    let user = o.target.user.clone();
    let interactive = ctx.src.interactive();
    if o.root.is_none() {
        let key = ctx
            .src
            .read(Which::RecoveryKey, &user)?
            .into_recovery_key()?;
        unlock(ctx, &mut o, &key, unlocks)?;
    } else {
        ctx.ui
            .note("the Data volume is already unlocked: the recovery key is not needed");
    }
    // With --password-stdin the lines are: the key, one candidate, NEW.
    let mut first = if interactive {
        None
    } else {
        Some(ctx.src.read(Which::Candidate, &user)?)
    };
    let new = secret::read_confirmed(ctx.src, Which::New, &user)?;
    o.read_files(
        ctx,
        Passwords {
            old: None,
            new: &new,
        },
    )?;
    if let Some(e) = o.offline_error.take() {
        return Err(e);
    }
    if let Some(e) = o.journal_error.take() {
        return Err(e);
    }
    // The identity is the record's; FileVault's crypto user is the one with its UUID.
    let uuid = o.offline()?.ident.generated_uid.clone();
    let crypto = ctx
        .p
        .crypto_users(&o.target.vol)?
        .into_iter()
        .find(|c| c.uuid.eq_ignore_ascii_case(&uuid) && c.kind == "LocalOpenDirectory");
    let Some(crypto) = crypto else {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "{} is not a FileVault user of this volume (no SecureToken): FileVault cannot take their \
                 password; nothing was changed",
                escape(&user)
            ),
        )
        .hint("an admin who is a FileVault user can give them a SecureToken: `sysadminctl -secureTokenOn USER -password - -adminUser ADMIN -adminPassword -`"));
    };
    o.target.crypto = Some(crypto.clone());
    o.crypto_uuid = Some(crypto.uuid);
    let provers = provers(&o);
    ctx.ui.para(&format!(
        "What can prove OLD offline (no FileVault attempt): {}.",
        if provers.is_empty() {
            "nothing: every secret fvsync can check already takes NEW".to_string()
        } else {
            provers.join(", ")
        }
    ));
    if provers.is_empty() {
        let kept = keep_keychain(&o)?;
        return Err(handoff(
            ctx,
            &o,
            "nothing on this Mac can prove an OLD candidate (the login hash already takes NEW, and the \
             keychain and a previous run cannot tell), so FileVault's OLD cannot be proven without a guess",
            kept,
        ));
    }
    let mut proven = None;
    for i in 1..=MAX_CANDIDATES {
        let cand = match first.take() {
            Some(c) => c,
            None if interactive => match ctx.src.read(Which::Candidate, &user) {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::Cancelled => break,
                Err(e) => return Err(e),
            },
            None => break,
        };
        ctx.ui.progress("checking the candidate offline...");
        let (proof, lines) = check(&o, &cand);
        ctx.ui.progress_done();
        ctx.ui
            .para(&format!("Candidate {i}: {}.", lines.join(", ")));
        if let Some(p) = proof {
            proven = Some((p, cand));
            break;
        }
        if !interactive {
            break;
        }
    }
    let Some((proof, old)) = proven else {
        let kept = keep_keychain(&o)?;
        return Err(handoff(ctx, &o, "no candidate was proven offline", kept));
    };
    ctx.ui.para(&format!(
        "OLD is proven offline by {}; FileVault will be changed from it, with no guess spent.",
        proof.words()
    ));
    // Now OLD is known: the full matrix (the derivations of NEW are memoized).
    o.read_files(
        ctx,
        Passwords {
            old: Some(&old),
            new: &new,
        },
    )?;
    o.fv = Row::new(o.fv.secret, Accepts::Unknown)
        .note("not tried: the recovery key unlocked the volume")
        .not_counted();
    o.via_recovery_key = Some(proof);
    Ok((o, old, new))
}

/// After a reconcile on this route: the key should be rotated, and Escrow
/// Buddy (when installed) can be asked to make and escrow a new one at the
/// next login.
///
/// # Errors
/// Escrow Buddy's preferences cannot be written.
pub fn after(ctx: &mut Ctx<'_>, o: &Observation, opts: &Opts) -> Result<Vec<String>> {
    let mut lines = vec![
        "The Personal Recovery Key was used: rotate it (a new key, escrowed by the MDM)."
            .to_string(),
    ];
    let Some(root) = &o.root else {
        return Ok(lines);
    };
    let rel = Rel::new(ESCROW_BUDDY)?;
    let Some((bytes, meta)) = root.read_opt(&rel, Want::SYSTEM)? else {
        return Ok(lines);
    };
    let set = opts.request_new_key
        || (ctx.src.interactive()
            && !opts.sel.yes
            && ctx.src.confirm(
                "Escrow Buddy is installed. Ask it to make and escrow a new recovery key at the next login?",
            )?);
    if !set {
        lines.push("Escrow Buddy is installed: set its GenerateNewKey to have a new key made at the next login.".into());
        return Ok(lines);
    }
    let xml = bytes.starts_with(b"<?xml");
    let mut v = crate::formats::plist_safe::parse(&bytes)
        .map_err(|e| Error::malformed(&root.full(&rel), e))?;
    let d = v
        .as_dictionary_mut()
        .ok_or_else(|| Error::malformed(&root.full(&rel), "the top level is not a dictionary"))?;
    d.insert("GenerateNewKey".into(), plist::Value::Boolean(true));
    let mut out = Vec::new();
    let w = if xml {
        v.to_writer_xml(&mut out)
    } else {
        v.to_writer_binary(&mut out)
    };
    w.map_err(|e| {
        Error::new(
            ErrorKind::Failure,
            format!("cannot encode Escrow Buddy's preferences: {e}"),
        )
    })?;
    root.write_atomic(&rel, &out, Perms::of(&meta))?;
    lines.push("Escrow Buddy will make and escrow a new recovery key at the next login.".into());
    Ok(lines)
}
