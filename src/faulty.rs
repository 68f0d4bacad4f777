//! A platform that fails on purpose (test builds only): it wraps a real one
//! (the simulated Mac, or diskutil over the emulator) and makes chosen calls
//! fail, before or after doing their work, or answer as the Secure Enclave
//! would. The engine's in-process tests use it for the faults that happen on
//! the platform's side (jj's failing-backend idea), instead of failpoints
//! scattered through the simulated Mac.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::platform::{
    Attempt, BootMode, Container, CryptoUser, Platform, PrebootMount, Rehearsal, SystemInfo, Volume,
};
use crate::secret::Password;

/// What a faulty call does.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Fails with this error kind, without doing anything.
    Instead(ErrorKind),
    /// Does the work, then fails with this kind (the caller cannot tell
    /// whether it took effect: a timeout, a lost answer).
    After(ErrorKind),
    /// Answers this, without doing anything (FileVault verbs only).
    Answer(Attempt),
}

/// Which calls fail, and how. Each fires once (a transient fault), so a
/// re-run or a rollback that makes the same call goes through.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// `change_passphrase`.
    pub change_passphrase: Option<Fault>,
    /// `verify` (the check of NEW after a change).
    pub verify: Option<Fault>,
    /// `unlock`.
    pub unlock: Option<Fault>,
    /// `update_preboot`.
    pub update_preboot: Option<Fault>,
    /// `preboot_mount` (`Instead`: the Preboot volume cannot be mounted).
    pub preboot_mount: Option<Fault>,
}

/// See the module docs.
pub struct FaultyPlatform<P: Platform> {
    inner: P,
    faults: Faults,
}

impl<P: Platform> FaultyPlatform<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, faults: Faults) -> Self {
        FaultyPlatform { inner, faults }
    }

    /// The wrapped platform.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

fn injected(kind: ErrorKind, what: &str) -> Error {
    Error::new(kind, format!("injected fault: {what}"))
}

fn attempt<P: Platform>(
    slot: &mut Option<Fault>,
    what: &str,
    inner: &mut P,
    f: impl FnOnce(&mut P) -> Result<Attempt>,
) -> Result<Attempt> {
    match slot.take() {
        None => f(inner),
        Some(Fault::Instead(k)) => Err(injected(k, what)),
        Some(Fault::Answer(a)) => Ok(a),
        Some(Fault::After(k)) => {
            f(inner)?;
            Err(injected(k, what))
        }
    }
}

impl<P: Platform> Platform for FaultyPlatform<P> {
    fn description(&self) -> String {
        self.inner.description()
    }
    fn boot_mode(&self) -> Result<BootMode> {
        self.inner.boot_mode()
    }
    fn containers(&self) -> Result<Vec<Container>> {
        self.inner.containers()
    }
    fn crypto_users(&self, vol: &Volume) -> Result<Vec<CryptoUser>> {
        self.inner.crypto_users(vol)
    }
    fn unlock(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        attempt(&mut self.faults.unlock, "unlock", &mut self.inner, |p| {
            p.unlock(vol, user, pw)
        })
    }
    fn verify(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        attempt(&mut self.faults.verify, "verify", &mut self.inner, |p| {
            p.verify(vol, user, pw)
        })
    }
    fn lock(&mut self, vol: &Volume) -> Result<()> {
        self.inner.lock(vol)
    }
    fn change_passphrase(
        &mut self,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
    ) -> Result<Attempt> {
        attempt(
            &mut self.faults.change_passphrase,
            "changePassphrase",
            &mut self.inner,
            |p| p.change_passphrase(vol, user, old, new),
        )
    }
    fn set_hint(&mut self, vol: &Volume, user: &str, hint: Option<&str>) -> Result<()> {
        self.inner.set_hint(vol, user, hint)
    }
    fn update_preboot(&mut self, vol: &Volume) -> Result<()> {
        match self.faults.update_preboot.take() {
            None | Some(Fault::Answer(_)) => self.inner.update_preboot(vol),
            Some(Fault::Instead(k)) => Err(injected(k, "updatePreboot")),
            Some(Fault::After(k)) => {
                self.inner.update_preboot(vol)?;
                Err(injected(k, "updatePreboot"))
            }
        }
    }
    fn files(&self, vol: &Volume) -> Result<PathBuf> {
        self.inner.files(vol)
    }
    fn ownership_enabled(&self, vol: &Volume) -> Result<bool> {
        self.inner.ownership_enabled(vol)
    }
    fn preboot_mount(&mut self, vol: &Volume) -> Result<Option<PrebootMount>> {
        match self.faults.preboot_mount.take() {
            None | Some(Fault::Answer(_)) => self.inner.preboot_mount(vol),
            Some(Fault::Instead(k)) => Err(injected(k, "mount the Preboot volume")),
            Some(Fault::After(k)) => {
                if let Some(m) = self.inner.preboot_mount(vol)? {
                    self.inner.preboot_release(m);
                }
                Err(injected(k, "mount the Preboot volume"))
            }
        }
    }
    fn preboot_release(&mut self, mount: PrebootMount) {
        self.inner.preboot_release(mount)
    }
    fn rehearse(&mut self) -> Result<Rehearsal> {
        self.inner.rehearse()
    }
    fn accept_unrehearsed(&mut self) {
        self.inner.accept_unrehearsed()
    }
    fn system(&self) -> SystemInfo {
        self.inner.system()
    }
    fn iteration_floors(&self) -> (u32, u32) {
        self.inner.iteration_floors()
    }
    fn session_key(&self, vol: &Volume) -> String {
        self.inner.session_key(vol)
    }
    fn simulated_owner(&self) -> Option<u32> {
        self.inner.simulated_owner()
    }
}
