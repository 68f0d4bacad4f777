//! The login record: a fresh ShadowHashData for NEW (login hash and SRP
//! verifier, each with a new salt, never below fvsync's iteration floors), the
//! failed-login count reset and password-last-set moved forward (never past a
//! pending "change at next login", never backwards); every other attribute
//! kept. Written atomically, read back byte for byte.

use super::{Action, Changed, Exec, Kind, Planned, Points, Step, StepOps, Undo};
use crate::engine::observe::Observation;
use crate::engine::secrets::{Accepts, Secret};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::shadowhash;
use crate::fsio::{Perms, Want};

pub(crate) struct Login;

/// The iteration counts NEW's hash gets: the record's own, never below the floors.
pub(crate) fn iterations(o: &Observation) -> (u32, u32) {
    let (salted_floor, srp_floor) = o.floors;
    let sh = o.offline.as_ref().and_then(|off| off.shadow.as_ref());
    let salted = sh.and_then(|s| s.salted.as_ref()).map(|e| e.iterations);
    let srp = sh.and_then(|s| s.srp.as_ref()).map(|e| e.iterations);
    (
        salted.unwrap_or(salted_floor).max(salted_floor),
        srp.unwrap_or(srp_floor).max(srp_floor),
    )
}

impl StepOps for Login {
    fn plan(&self, o: &Observation, _before: &[Planned]) -> Planned {
        let Some(off) = o.offline.as_ref() else {
            return Planned::new(Step::Login, Action::Leave, "the user record cannot be read");
        };
        let get = |s: Secret| off.row(s).map_or(Accepts::Unknown, |r| r.accepts);
        let login = get(Secret::Login);
        let srp = get(Secret::Srp);
        let srp_ok = srp.takes_new() || srp == Accepts::NotApplicable;
        let kerberos = off.row(Secret::Kerberos);
        let kerberos_ok = kerberos.is_none_or(|r| !r.counts || r.accepts.takes_new());
        if login.takes_new() && srp_ok && kerberos_ok {
            return Planned::new(
                Step::Login,
                Action::Skip,
                if srp == Accepts::NotApplicable {
                    "the login hash already accepts NEW (the record has no SRP verifier)"
                } else {
                    "the login hash and SRP verifier already accept NEW"
                },
            );
        }
        let mut detail =
            "write a new login hash and SRP verifier for NEW, reset the failed-login count; \
             every other attribute kept"
                .to_string();
        if srp == Accepts::NotApplicable {
            detail.push_str(" (adds the SRP verifier the record lacks)");
        }
        match kerberos {
            Some(r) if r.counts => detail.push_str("; the local KDC's Kerberos keys too"),
            Some(_) => detail.push_str(
                "; the local KDC's Kerberos keys are left as they are (a layout fvsync does not know): \
                 OLD keeps working for Screen Sharing and File Sharing until macOS makes them again",
            ),
            None => {}
        }
        let mut unknown = off
            .shadow
            .as_ref()
            .map(|s| s.other_schemes.clone())
            .unwrap_or_default();
        if off.shadow.as_ref().is_some_and(|s| s.legacy.is_some()) {
            detail.push_str("; replaces the Mac OS X 10.7 SALTED-SHA512 hash");
            unknown.retain(|s| s != crate::formats::shadowhash::LEGACY);
        }
        if !unknown.is_empty() {
            detail.push_str(&format!(
                "; replaces the unknown scheme {}",
                crate::text::escape(&unknown.join(", "))
            ));
        }
        // passwordLastSetTime is not moved past a pending forced change
        // (formats::record::UserRecord::update_password_policy).
        if off.record.forced_password_change().is_some() {
            detail.push_str("; a pending \"change at next login\" stays pending");
        }
        if off.record.is_mobile() {
            detail.push_str(
                "; a mobile account: its password is the directory's, and macOS \
                 re-caches it at the next login with the directory reachable",
            );
        }
        Planned::new(Step::Login, Action::Do, detail)
    }

    fn kind(&self) -> Kind {
        Kind::File
    }

    fn points(&self) -> Points {
        Points {
            before: Some("record-write"),
            written: Some("record-written"),
            checked: Some("after-record"),
            ..Points::default()
        }
    }

    fn change(&self, x: &mut Exec<'_>) -> Result<Changed> {
        let (si, ri) = iterations(x.o);
        let root = x.o.root()?;
        let off = x.o.offline()?;
        x.ui.progress("writing the login password...");
        let sh = shadowhash::generate(x.to.expose(), si, ri).map_err(|e| {
            Error::new(ErrorKind::Failure, "cannot make ShadowHashData").caused_by(e)
        })?;
        let mut rec = off.record.clone();
        rec.set_shadow_hash(&sh)?;
        rec.touch_password_policy(crate::engine::journal::now_secs())?;
        // The local KDC's keys, when their layout is understood (the row counts).
        if off.row(Secret::Kerberos).is_some_and(|r| r.counts) {
            use crate::formats::kerberos;
            let values: Vec<Vec<u8>> = rec.kerberos_keys().iter().map(|v| v.to_vec()).collect();
            let fresh = kerberos::regenerate(&values, x.to.expose()).map_err(|e| {
                Error::new(ErrorKind::Failure, "cannot make the Kerberos keys").caused_by(e)
            })?;
            let srp: Vec<Vec<u8>> = rec.heimdal_srp_keys().iter().map(|v| v.to_vec()).collect();
            if !srp.is_empty() {
                let principal = kerberos::lkdc_principal(&rec.authentication_authority(), &values)
                    .map_err(|e| {
                        Error::new(ErrorKind::Failure, "cannot read the LKDC principal")
                            .caused_by(e)
                    })?;
                // Left as it is when its layout is not understood
                // (docs/kerberos.md), and said so.
                match kerberos::srp_regenerate(&srp, &principal, x.to.expose()) {
                    Ok(s) => rec.set_heimdal_srp_keys(s),
                    Err(e) => x.ui.warn(&format!(
                        "{}'s HeimdalSRPKey (the local Kerberos SRP verifiers) has a layout fvsync does not \
                         know ({e}); it was left as it is and may still take OLD. Only local Kerberos \
                         sign-ins (LKDC, such as Screen Sharing) use it",
                        crate::text::escape(&x.o.target.user)
                    )),
                }
            }
            rec.set_kerberos_keys(fresh);
        }
        let bytes = rec.to_bytes()?;
        let rel = off.record_file.rel.clone();
        let perms = Perms::of(&off.record_file.meta);
        crate::failpoint::hit("record-write")?;
        root.write_atomic(&rel, &bytes, perms)?;
        x.ui.progress_done();
        Ok(Changed::Yes(Some(bytes)))
    }

    fn check(&self, x: &mut Exec<'_>, written: Option<&[u8]>) -> Result<()> {
        check_record(x, written)
    }

    fn took_effect(&self, o: &Observation) -> bool {
        o.offline.as_ref().is_some_and(|off| {
            off.row(Secret::Login)
                .is_some_and(|r| r.accepts.takes_new())
                && off.row(Secret::Srp).is_some_and(|r| r.accepts.takes_new())
        })
    }

    fn revert(&self, x: &mut Exec<'_>) -> Result<()> {
        restore_record(x)
    }

    fn undo(&self, u: &mut Undo<'_>) -> Result<bool> {
        let Some(bytes) = u.record.filter(|_| u.journal.is_done(Step::Login)) else {
            return Ok(false);
        };
        let root = u.o.root()?;
        let off = u.o.offline()?;
        root.write_atomic(
            &off.record_file.rel,
            bytes,
            Perms::of(&off.record_file.meta),
        )?;
        Ok(true)
    }
}

/// Reads the record back and compares it with what a step wrote (the login
/// and hint steps).
///
/// # Errors
/// It cannot be read, or differs.
pub(super) fn check_record(x: &mut Exec<'_>, written: Option<&[u8]>) -> Result<()> {
    let root = x.o.root()?;
    let rel = x.o.offline()?.record_file.rel.clone();
    let (back, _) = root.read(&rel, Want::SYSTEM)?;
    if Some(back.as_slice()) != written {
        return Err(Error::new(
            ErrorKind::Failure,
            "the record read back differs from what was written",
        ));
    }
    Ok(())
}

/// Writes the run's snapshot of the record back (the login and hint steps'
/// rollback: only they write the record in a run).
///
/// # Errors
/// No snapshot, or the write failed.
pub(super) fn restore_record(x: &mut Exec<'_>) -> Result<()> {
    let bytes = x
        .snapshot
        .record
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::Failure, "the record snapshot is missing"))?;
    let root = x.o.root()?;
    let off = x.o.offline()?;
    root.write_atomic(
        &off.record_file.rel,
        bytes,
        Perms::of(&off.record_file.meta),
    )
}
