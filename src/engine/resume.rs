//! The resume rules: when an open journal may be finished by this run, how a
//! step that was started but not marked done is settled, and how OLD is
//! checked against a run's own verifier.

use crate::engine::journal::{Backup, Journal, State};
use crate::engine::observe::Observation;
use crate::engine::step::Step;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::shadowhash;
use crate::fsio::Root;
use crate::secret::Password;

/// A verifier of OLD for the backups folder: a SALTED-SHA512-PBKDF2 entry
/// with a fresh salt, as a ShadowHashData binary plist.
///
/// # Errors
/// No randomness, or the plist cannot be encoded.
pub fn old_verifier(old: &Password, iterations: u32) -> Result<Vec<u8>> {
    let salt: [u8; 32] = crate::crypto::random_bytes()
        .map_err(|e| Error::new(ErrorKind::Failure, "no randomness").caused_by(e))?;
    let sh = shadowhash::ShadowHash {
        salted: Some(shadowhash::SaltedEntry::derive(
            old.expose(),
            salt,
            iterations,
        )),
        srp: None,
        legacy: None,
        other_schemes: Vec::new(),
    };
    sh.to_bplist()
        .map_err(|e| Error::new(ErrorKind::Failure, "cannot encode the OLD verifier").caused_by(e))
}

/// Whether a journal's OLD verifier accepts `old` (`None`: no verifier, or it
/// cannot be read or trusted).
pub fn verifier_accepts(root: &Root, j: &Journal, old: &Password) -> Option<bool> {
    let bytes = j.read_backup(root, Backup::OldVerifier).ok()??;
    let sh = shadowhash::ShadowHash::parse(&bytes).ok()?;
    Some(sh.salted?.check(old.expose()) == shadowhash::Check::Match)
}

/// An open journal may be resumed only by a run with the same OLD, and only
/// while its backups are there to undo it with.
pub fn resumable(root: &Root, j: &Journal, old: &Password) -> bool {
    let readable = |b: Backup| j.read_backup(root, b).is_ok();
    j.state == State::Open
        && j.backups.record
        && readable(Backup::Record)
        && readable(Backup::Keychain)
        && verifier_accepts(root, j, old) == Some(true)
}

/// Marks done the steps an interrupted run started whose effect is now seen
/// (the crash came between the change and the journal's mark).
pub fn settle_started(j: &mut Journal, o: &Observation) {
    let took: Vec<Step> = j
        .steps
        .iter()
        .filter(|s| s.started && !s.done)
        .filter(|s| s.step.ops().took_effect(o))
        .map(|s| s.step)
        .collect();
    for s in took {
        j.mark(s);
    }
}
