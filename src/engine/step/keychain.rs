//! The login keychain: its database key re-encrypted under NEW (what
//! `security set-keychain-password` does), proven before anything is written
//! (NEW opens it, OLD no longer does, every item decrypts the same), written
//! back 0600 with the record's uid and gid, read back byte for byte.

use super::{Action, Changed, Exec, Kind, Planned, Points, Step, StepOps, Undo};
use crate::engine::observe::Observation;
use crate::engine::secrets::{Accepts, Secret};
use crate::error::{Error, ErrorKind, Result};
use crate::fsio::{Owner, Perms, Want};
use crate::secret::Password;

pub(crate) struct Keychain;

/// Re-keys a login keychain image from `old` to `new` and proves, before
/// anything is written, that `new` opens it, `old` no longer does, and every
/// item decrypts to the same plaintext as before. Any part not understood:
/// `Err(why)`, and the file is left as is.
pub(crate) fn rekey_verified(
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
        let rekeyed = match rekey_verified(&kc.bytes, x.from, x.to) {
            Ok(r) => r,
            Err(why) => return Ok(Changed::No(why)),
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
