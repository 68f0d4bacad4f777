//! The login keychain: its database key re-encrypted under NEW (what
//! `security set-keychain-password` does), proven before anything is written
//! (NEW opens it, OLD no longer does, every item decrypts the same), written
//! back 0600 with the record's uid and gid, read back byte for byte.

use super::{Action, Changed, Exec, Kind, Planned, Points, Step, StepOps, Undo};
use crate::engine::observe::Observation;
use crate::engine::secrets::{Accepts, Secret};
use crate::error::{Error, ErrorKind, Result};
use crate::fsio::{Owner, Perms, Want};

pub(crate) struct Keychain;

fn perms(o: &Observation) -> Result<Perms> {
    let id = &o.offline()?.ident;
    Ok(Perms {
        mode: 0o600,
        owner: Some((id.uid, id.gid)),
    })
}

impl StepOps for Keychain {
    fn plan(&self, o: &Observation, _before: &[Planned]) -> Planned {
        let accepts = o
            .offline
            .as_ref()
            .and_then(|off| off.row(Secret::Keychain))
            .map_or(Accepts::Unknown, |r| r.accepts);
        match accepts {
            Accepts::Old
                if o.offline.as_ref().and_then(|off| off.keychain_form)
                    == Some(crate::formats::keychain::Form::Indirect) =>
            {
                Planned::new(
                    Step::Keychain,
                    Action::Do,
                    "re-key the login keychain from OLD (macOS 26 indirect form) to NEW in the plain \
                     form macOS converts again at login (unconfirmed on a device; a backup made)",
                )
            }
            Accepts::Old => Planned::new(
                Step::Keychain,
                Action::Do,
                "re-key the login keychain from OLD to NEW (items kept, a backup made)",
            ),
            Accepts::NotApplicable => {
                Planned::new(Step::Keychain, Action::Skip, "no login keychain")
            }
            a if a.takes_new() => Planned::new(Step::Keychain, Action::Skip, "already accepts NEW"),
            Accepts::Neither => Planned::new(
                Step::Keychain,
                Action::Leave,
                "it takes neither password: left as is; macOS asks for its password at login",
            ),
            _ => Planned::new(
                Step::Keychain,
                Action::Leave,
                "cannot be checked offline: left as is; macOS may ask for OLD at login",
            ),
        }
    }

    fn kind(&self) -> Kind {
        Kind::File
    }

    fn points(&self) -> Points {
        Points {
            checked: Some("after-keychain"),
            ..Points::default()
        }
    }

    fn change(&self, x: &mut Exec<'_>) -> Result<Changed> {
        let Some(kc) = x.o.offline()?.keychain.clone() else {
            return Ok(Changed::No("the login keychain is gone".into()));
        };
        // Re-keyed to the plain form under NEW with a new salt, whatever form
        // OLD opened it in: securityd's unlock falls back to the plain password
        // and converts the keychain to its macOS 26 form again itself
        // (docs/keychain.md; from the source, unconfirmed on a device).
        let entropy = x.o.offline()?.keychain_entropy.clone();
        let rekeyed = match crate::formats::keychain::rekey_verified(
            &kc.bytes,
            x.from.expose(),
            x.to.expose(),
            entropy.as_ref().map(|e| e.0.as_slice()),
            crate::formats::keychain::Form::Raw,
        ) {
            Ok(r) => r,
            Err(why) => return Ok(Changed::No(why.to_string())),
        };
        let perms = perms(x.o)?;
        x.o.root()?.write_atomic(&kc.rel, &rekeyed, perms)?;
        Ok(Changed::Yes(Some(rekeyed)))
    }

    fn check(&self, x: &mut Exec<'_>, written: Option<&[u8]>) -> Result<()> {
        let off = x.o.offline()?;
        let Some(kc) = &off.keychain else {
            return Ok(());
        };
        let want = Want {
            owner: Owner::Uid(off.ident.uid),
            private: false,
        };
        let (back, _) = x.o.root()?.read(&kc.rel, want)?;
        if Some(back.as_slice()) != written {
            return Err(Error::new(
                ErrorKind::Failure,
                "the login keychain read back differs from what was written",
            ));
        }
        Ok(())
    }

    fn took_effect(&self, o: &Observation) -> bool {
        o.offline
            .as_ref()
            .and_then(|off| off.row(Secret::Keychain))
            .is_some_and(|r| r.accepts.takes_new())
    }

    fn revert(&self, x: &mut Exec<'_>) -> Result<()> {
        let (Some(bytes), Some(kc)) = (&x.snapshot.keychain, &x.o.offline()?.keychain) else {
            return Ok(());
        };
        let perms = Perms {
            mode: kc.meta.mode & 0o777,
            owner: Some((kc.meta.uid, kc.meta.gid)),
        };
        x.o.root()?.write_atomic(&kc.rel, bytes, perms)
    }

    fn undo(&self, u: &mut Undo<'_>) -> Result<bool> {
        let Some(bytes) = u.keychain else {
            return Ok(false);
        };
        let off = u.o.offline()?;
        let Some(kc) = &off.keychain else {
            return Err(Error::new(
                ErrorKind::Refused,
                "the login keychain is no longer there; its backup was not put back",
            ));
        };
        let perms = Perms {
            mode: 0o600,
            owner: Some((off.ident.uid, off.ident.gid)),
        };
        u.o.root()?.write_atomic(&kc.rel, bytes, perms)?;
        Ok(true)
    }
}
