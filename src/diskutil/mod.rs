//! The real Mac: every FileVault and volume operation through
//! `/usr/sbin/diskutil` (on T2 and Apple-silicon Macs the Secure Enclave holds
//! the keys, so nothing else can unlock or re-wrap them). Calls go through
//! [`runner::Runner`] (each in a session of its own, [`spawn`]); outputs are
//! read by the pure parsers in [`parse`]. A passphrase change is first
//! rehearsed on a throwaway volume ([`rehearsal`]); [`report`] writes what a
//! pilot Mac shows, for fixtures. Proven on Linux against the emulated
//! diskutil (`src/bin/diskutil-emulator.rs`).

pub mod hdiutil;
pub mod parse;
pub mod rehearsal;
pub mod report;
pub mod runner;
pub mod spawn;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::platform::{
    Attempt, BootMode, Container, CryptoUser, Platform, PrebootMount, Rehearsal, SystemInfo, Volume,
};
use crate::secret::Password;
pub use rehearsal::{selftest, Framing};
use runner::{Output, Runner};

/// The Data volume's mount point in a normal boot.
pub const NORMAL_BOOT_DATA: &str = "/System/Volumes/Data";

/// What this run has read from diskutil: each listing once, and again only
/// after a change (unlock, lock, passphrase change, hint, updatePreboot, mount).
#[derive(Default)]
struct Listings {
    containers: Option<Vec<Container>>,
    info: HashMap<String, parse::Info>,
    crypto: HashMap<String, Vec<CryptoUser>>,
}

/// This Mac, through diskutil.
pub struct DiskutilMac {
    runner: Runner,
    hdiutil: Runner,
    preboot_timeout: Duration,
    cache: RefCell<Listings>,
    system: RefCell<Option<SystemInfo>>,
    /// The framing a rehearsal proved (or the default, once the technician
    /// accepted going ahead unrehearsed); `None`: changes are refused.
    framing: Option<Framing>,
    /// `unlockVolume -verify` is accepted (the rehearsal can say otherwise).
    verify_ok: bool,
    /// Wrong-passphrase messages seen on the throwaway volume (their shapes,
    /// [`message_shape`]), matched besides the known texts.
    learned: Vec<String>,
    last: Option<Rehearsal>,
    cache_dir: PathBuf,
}

/// Known texts of a refused passphrase (macos.md §1.4); the rehearsal adds
/// what this diskutil actually prints.
const REJECTED: &[&str] = &["passphrase is incorrect", "incorrect passphrase", "-69557"];
/// Known text of Secure Enclave throttling.
const THROTTLED: &str = "Too many recent unlock attempts";

/// What diskutil's output (stdout and stderr) says about a passphrase attempt.
pub fn classify(out: &Output) -> std::result::Result<Attempt, String> {
    classify_with(out, &[])
}

/// [`classify`], also matching the `learned` message shapes.
pub fn classify_with(out: &Output, learned: &[String]) -> std::result::Result<Attempt, String> {
    let text = out.text();
    if text.contains(THROTTLED) {
        return Ok(Attempt::Throttled);
    }
    if out.status == 0 {
        return Ok(Attempt::Accepted);
    }
    let lower = text.to_ascii_lowercase();
    if REJECTED.iter().any(|k| lower.contains(k)) {
        return Ok(Attempt::Rejected);
    }
    if !learned.is_empty()
        && text
            .lines()
            .map(message_shape)
            .any(|s| !s.is_empty() && learned.contains(&s))
    {
        return Ok(Attempt::Rejected);
    }
    Err(last_lines(&text))
}

/// A message line with what varies between volumes taken out: disk
/// identifiers become `<disk>`, UUIDs `<uuid>`, spaces are folded.
pub fn message_shape(line: &str) -> String {
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
            if parse::disk_name(core).is_some() {
                w.replace(core, "<disk>")
            } else if report::is_uuid(core) {
                w.replace(core, "<uuid>")
            } else {
                w.to_string()
            }
        })
        .collect();
    words.join(" ").chars().take(300).collect()
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    crate::text::escape(&tail.chars().take(500).collect::<String>())
}

/// `apfs unlockVolume <dev> -user <uuid> -stdinpassphrase [-verify]`.
fn unlock_args<'a>(device: &'a str, user: &'a str, verify: bool) -> Vec<&'a str> {
    let mut v = vec![
        "apfs",
        "unlockVolume",
        device,
        "-user",
        user,
        "-stdinpassphrase",
    ];
    if verify {
        v.push("-verify");
    }
    v
}

fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Refused,
            "fvsync must run as root to unlock or change FileVault",
        )
        .hint("in Recovery, Terminal already runs as root; in a normal boot, use sudo"))
    }
}

impl DiskutilMac {
    /// Uses the diskutil at `diskutil` and the hdiutil at `hdiutil` (the
    /// rehearsal's throwaway volume), giving each call `timeout`
    /// (`updatePreboot`: at least [`runner::PREBOOT_TIMEOUT`]).
    pub fn new(diskutil: PathBuf, hdiutil: PathBuf, timeout: Duration) -> Self {
        let mut runner = Runner::new(diskutil);
        runner.timeout = timeout;
        let mut hd = Runner::tool(hdiutil, "hdiutil");
        hd.timeout = timeout;
        DiskutilMac {
            runner,
            hdiutil: hd,
            preboot_timeout: runner::PREBOOT_TIMEOUT.max(timeout),
            cache: RefCell::new(Listings::default()),
            system: RefCell::new(None),
            framing: None,
            verify_ok: true,
            learned: Vec::new(),
            last: None,
            cache_dir: std::env::temp_dir(),
        }
    }

    /// Keeps the rehearsal's session cache in `dir` instead of the temporary
    /// folder (tests).
    pub fn with_cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Sets the time `updatePreboot` may take.
    pub fn set_preboot_timeout(&mut self, t: Duration) {
        self.preboot_timeout = t;
    }

    /// The framing `change_passphrase` uses, once one is settled.
    pub fn framing(&self) -> Option<Framing> {
        self.framing
    }

    /// The last rehearsal of this run, when there was one.
    pub fn last_rehearsal(&self) -> Option<&Rehearsal> {
        self.last.as_ref()
    }

    /// The diskutil runner (reports and the rehearsal use the same one).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Forgets every listing read so far (after anything that changes them).
    fn changed(&self) {
        *self.cache.borrow_mut() = Listings::default();
    }

    /// Forgets every listing, then reads `dev`'s `info` afresh (an unlock
    /// whose answer was not understood: what changed is not known).
    fn changed_then_info(&self, dev: &str) -> Result<parse::Info> {
        self.changed();
        self.info(dev)
    }

    /// Records in the cached listing that `dev` was unlocked (and mounted
    /// where its next `info` says), so nothing else is listed again.
    fn unlocked(&self, dev: &str) {
        let mut c = self.cache.borrow_mut();
        c.info.remove(dev);
        for v in c
            .containers
            .iter_mut()
            .flatten()
            .flat_map(|c| &mut c.volumes)
        {
            if v.device == dev {
                v.locked = false;
                v.mount_point = None;
            }
        }
    }

    /// Forgets one volume's crypto users and `diskutil info` (a passphrase or
    /// hint change: nothing else about the volume changed).
    fn forget_crypto(&self, dev: &str) {
        let mut c = self.cache.borrow_mut();
        c.crypto.remove(dev);
        c.info.remove(dev);
    }

    /// Forgets one volume's `diskutil info` (its mount point changed, nothing
    /// else: mounting or unmounting the Preboot volume).
    fn forget_info(&self, dev: &str) {
        self.cache.borrow_mut().info.remove(dev);
    }

    fn failed(&self, args: &[&str], out: &Output) -> Error {
        Error::new(
            ErrorKind::Failure,
            format!(
                "diskutil failed (exit {}): {}: {}",
                out.status,
                self.runner.shown(args),
                last_lines(&out.text())
            ),
        )
    }

    /// Runs a `-plist` verb and returns its output.
    fn plist(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.runner.run(args, None)?;
        if out.status != 0 {
            // diskutil prints an error plist on stdout for -plist verbs.
            if let Ok(v) = crate::formats::plist_safe::parse(&out.stdout) {
                if let Some(msg) = v.as_dictionary().and_then(parse::error_message) {
                    return Err(Error::new(
                        ErrorKind::Failure,
                        format!(
                            "diskutil failed: {}: {}",
                            self.runner.shown(args),
                            crate::text::escape(&msg)
                        ),
                    ));
                }
            }
            return Err(self.failed(args, &out));
        }
        Ok(out.stdout)
    }

    fn parse_err(&self, args: &[&str], e: parse::ParseError) -> Error {
        Error::new(
            ErrorKind::Failure,
            format!("{}: {e}", self.runner.shown(args)),
        )
    }

    fn info(&self, dev: &str) -> Result<parse::Info> {
        if let Some(i) = self.cache.borrow().info.get(dev) {
            return Ok(i.clone());
        }
        let args = ["info", "-plist", dev];
        let bytes = self.plist(&args)?;
        let i = parse::info(&bytes).map_err(|e| self.parse_err(&args, e))?;
        self.cache
            .borrow_mut()
            .info
            .insert(dev.to_string(), i.clone());
        Ok(i)
    }

    fn attempt(
        &self,
        args: &[&str],
        pw: &Password,
    ) -> Result<(Output, std::result::Result<Attempt, String>)> {
        require_root()?;
        let out = self.runner.run(args, Some(pw.expose()))?;
        let c = classify_with(&out, &self.learned);
        Ok((out, c))
    }

    fn not_understood(&self, args: &[&str], out: &Output, msg: &str) -> Error {
        Error::new(
            ErrorKind::Failure,
            format!(
                "diskutil failed (exit {}): {}: {msg}",
                out.status,
                self.runner.shown(args)
            ),
        )
    }

    fn simple(&self, args: &[&str]) -> Result<()> {
        require_root()?;
        let out = self.runner.run(args, None)?;
        if out.status == 0 {
            Ok(())
        } else {
            Err(self.failed(args, &out))
        }
    }

    /// Refuses a CoreStorage (pre-APFS) Mac with a clear message when `apfs
    /// list` shows no Data volume: `diskutil coreStorage list -plist` (absent
    /// on newer systems: then nothing is refused here).
    fn refuse_corestorage(&self) -> Result<()> {
        let Ok(out) = self.runner.run(&["coreStorage", "list", "-plist"], None) else {
            return Ok(());
        };
        if out.status == 0 && parse::corestorage_groups(&out.stdout) > 0 {
            return Err(Error::new(
                ErrorKind::Refused,
                "this Mac's disk uses CoreStorage (the FileVault of macOS 10.12 and earlier), not APFS; fvsync supports APFS volumes only (macOS 11 through 26)",
            )
            .hint("use Apple's `resetpassword` in Recovery, or upgrade macOS so the volume becomes APFS"));
        }
        Ok(())
    }

    fn read_containers(&self) -> Result<Vec<Container>> {
        let args = ["apfs", "list", "-plist"];
        let bytes = self.plist(&args)?;
        let mut cs = parse::apfs_list(&bytes).map_err(|e| self.parse_err(&args, e))?;
        if !cs
            .iter()
            .flat_map(|c| &c.volumes)
            .any(|v| v.has_role("Data"))
        {
            self.refuse_corestorage()?;
        }
        let stores = parse::physical_stores(&bytes).unwrap_or_default();
        let gargs = ["apfs", "listVolumeGroups", "-plist"];
        // Volume groups are optional (older systems have none).
        let groups = self
            .plist(&gargs)
            .ok()
            .and_then(|b| parse::volume_groups(&b).ok())
            .unwrap_or_default();
        for c in &mut cs {
            // Internal or external: `Internal` of the container's physical store.
            let store = stores
                .iter()
                .find(|(r, _, _)| *r == c.reference)
                .and_then(|(_, d, s)| d.clone().or_else(|| s.first().cloned()));
            c.internal = store
                .and_then(|s| self.info(&s).ok())
                .and_then(|i| i.internal);
            for v in &mut c.volumes {
                v.group_uuid = groups
                    .iter()
                    .find(|(_, members)| members.contains(&v.device))
                    .map(|(g, _)| g.clone());
                // Only a Data volume's mount point matters (boot mode, files).
                if v.has_role("Data") && !v.locked {
                    v.mount_point = self.info(&v.device)?.mount_point;
                }
            }
        }
        Ok(cs)
    }

    /// The volume as the cached listing has it, when one was read.
    fn cached_volume(&self, dev: &str) -> Option<Volume> {
        self.cache
            .borrow()
            .containers
            .as_ref()?
            .iter()
            .flat_map(|c| &c.volumes)
            .find(|v| v.device == dev)
            .cloned()
    }

    fn preboot_of(&self, vol: &Volume) -> Result<Option<Volume>> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| c.reference == vol.container)
            .flat_map(|c| c.volumes)
            .find(|v| v.has_role("Preboot")))
    }

    fn system_info(&self) -> SystemInfo {
        if let Some(s) = self.system.borrow().as_ref() {
            return s.clone();
        }
        let (version, build) = rehearsal::os_version();
        let os = match (version, build) {
            (Some(v), Some(b)) => Some(format!("macOS {v} ({b})")),
            (Some(v), None) => Some(format!("macOS {v}")),
            (None, Some(b)) => Some(format!("macOS build {b}")),
            (None, None) => None,
        };
        let s = SystemInfo {
            os,
            machine: rehearsal::machine(),
            diskutil: rehearsal::binary_id(&self.runner.path),
        };
        *self.system.borrow_mut() = Some(s.clone());
        s
    }
}

impl Platform for DiskutilMac {
    fn description(&self) -> String {
        format!(
            "this Mac (through {})",
            crate::text::quote_path(&self.runner.path)
        )
    }

    fn boot_mode(&self) -> Result<BootMode> {
        // Fails closed: if the volumes cannot be listed, the caller refuses to
        // change anything rather than assume recoveryOS.
        let normal = self
            .containers()?
            .iter()
            .flat_map(|c| &c.volumes)
            .any(|v| v.has_role("Data") && v.mount_point.as_deref() == Some(NORMAL_BOOT_DATA));
        Ok(if normal {
            BootMode::Normal
        } else {
            BootMode::Recovery
        })
    }

    fn containers(&self) -> Result<Vec<Container>> {
        if let Some(cs) = &self.cache.borrow().containers {
            return Ok(cs.clone());
        }
        let cs = self.read_containers()?;
        self.cache.borrow_mut().containers = Some(cs.clone());
        Ok(cs)
    }

    fn crypto_users(&self, vol: &Volume) -> Result<Vec<CryptoUser>> {
        if let Some(us) = self.cache.borrow().crypto.get(&vol.device) {
            return Ok(us.clone());
        }
        let args = ["apfs", "listCryptoUsers", "-plist", vol.device.as_str()];
        let out = self.runner.run(&args, None)?;
        let us = if out.status != 0 {
            // A volume that is not encrypted has no crypto users and says so;
            // any other failure is an error, not "no FileVault users".
            let text = out.text().to_ascii_lowercase();
            if text.contains("not an encrypted")
                || text.contains("no cryptographic users")
                || text.contains("not encrypted")
            {
                Vec::new()
            } else {
                return Err(self.failed(&args, &out));
            }
        } else {
            parse::crypto_users(&out.stdout).map_err(|e| self.parse_err(&args, e))?
        };
        self.cache
            .borrow_mut()
            .crypto
            .insert(vol.device.clone(), us.clone());
        Ok(us)
    }

    fn unlock(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        let args = unlock_args(&vol.device, user, false);
        let (out, c) = self.attempt(&args, pw)?;
        match c {
            Ok(Attempt::Accepted) => {
                // Only this volume's lock state and mount point changed.
                self.unlocked(&vol.device);
                Ok(Attempt::Accepted)
            }
            Ok(a) => Ok(a),
            // A failure not understood: if the volume stayed locked, the
            // attempt is counted as spent (the Secure Enclave may have counted
            // it); if it is unlocked, the unlock worked.
            Err(msg) => match self.changed_then_info(&vol.device) {
                Ok(i) if i.locked => Ok(Attempt::Rejected),
                Ok(_) => Ok(Attempt::Accepted),
                Err(_) => Err(self.not_understood(&args, &out, &msg)),
            },
        }
    }

    fn verify(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        let args = unlock_args(&vol.device, user, self.verify_ok);
        if !self.verify_ok {
            // This diskutil refuses -verify (the rehearsal found): a lock and
            // unlock cycle checks the passphrase instead.
            let _ = self.runner.run(&["apfs", "lockVolume", &vol.device], None);
        }
        let (out, c) = self.attempt(&args, pw)?;
        if !self.verify_ok {
            self.changed();
        }
        c.map_err(|msg| self.not_understood(&args, &out, &msg))
    }

    fn lock(&mut self, vol: &Volume) -> Result<()> {
        let r = self.simple(&["apfs", "lockVolume", &vol.device]);
        self.changed();
        r
    }

    fn change_passphrase(
        &mut self,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
    ) -> Result<Attempt> {
        let Some(framing) = self.framing else {
            return Err(Error::new(
                ErrorKind::Refused,
                "the FileVault passphrase change was not rehearsed on a throwaway volume in this Recovery session, so fvsync does not know how this diskutil reads the old and new passphrases; nothing was changed",
            )
            .hint("run `fvsync selftest` first; if it cannot run, confirm going ahead unrehearsed with the recovery key at hand"));
        };
        require_root()?;
        let r = rehearsal::change_with(
            &self.runner,
            framing,
            &vol.device,
            user,
            old.expose(),
            new.expose(),
            self.runner.timeout,
        );
        // A passphrase change touches this volume's crypto users only: no
        // volume, group, mount or lock state changes.
        self.forget_crypto(&vol.device);
        let (args, out) = r?;
        let shown: Vec<&str> = args.iter().map(String::as_str).collect();
        classify_with(&out, &self.learned).map_err(|msg| self.not_understood(&shown, &out, &msg))
    }

    fn set_hint(&mut self, vol: &Volume, user: &str, hint: Option<&str>) -> Result<()> {
        let mut args = vec![
            "apfs",
            "setPassphraseHint",
            vol.device.as_str(),
            "-user",
            user,
        ];
        match hint {
            Some(h) => {
                args.push("-hint");
                args.push(h);
            }
            None => args.push("-clear"),
        }
        let r = self.simple(&args);
        self.forget_crypto(&vol.device);
        r
    }

    fn ownership_enabled(&self, vol: &Volume) -> Result<bool> {
        Ok(self.info(&vol.device)?.ownership)
    }

    fn preboot_mount(&mut self, vol: &Volume) -> Result<Option<PrebootMount>> {
        let Some(pre) = self.preboot_of(vol)? else {
            return Ok(None);
        };
        if let Some(mp) = self.info(&pre.device)?.mount_point {
            return Ok(Some(PrebootMount {
                device: pre.device.clone(),
                path: PathBuf::from(mp),
                mounted_by_us: false,
            }));
        }
        let r = self.simple(&["mount", "readOnly", &pre.device]);
        // Only the Preboot volume's own information changes (its mount point).
        self.forget_info(&pre.device);
        r?;
        // Mounted by this run from here on: every way out puts it back.
        match self.info(&pre.device).map(|i| i.mount_point) {
            Ok(Some(mp)) => Ok(Some(PrebootMount {
                device: pre.device.clone(),
                path: PathBuf::from(mp),
                mounted_by_us: true,
            })),
            other => {
                let _ = self.simple(&["unmount", &pre.device]);
                self.forget_info(&pre.device);
                Err(match other {
                    Err(e) => e,
                    Ok(_) => Error::new(
                        ErrorKind::Failure,
                        format!("the Preboot volume {} did not mount", pre.device),
                    ),
                })
            }
        }
    }

    fn preboot_release(&mut self, mount: PrebootMount) {
        if mount.mounted_by_us {
            let _ = self.simple(&["unmount", &mount.device]);
            self.forget_info(&mount.device);
        }
    }

    fn rehearse(&mut self) -> Result<Rehearsal> {
        rehearsal::rehearse(self, false)
    }

    fn accept_unrehearsed(&mut self) {
        if self.framing.is_none() {
            self.framing = Some(Framing::StdinLines);
        }
    }

    fn system(&self) -> SystemInfo {
        self.system_info()
    }

    fn update_preboot(&mut self, vol: &Volume) -> Result<()> {
        require_root()?;
        let args = ["apfs", "updatePreboot", vol.device.as_str()];
        let r = self.runner.run_for(&args, None, self.preboot_timeout);
        // updatePreboot changes no volume, group or crypto user; it may mount
        // and unmount the Preboot volume, so only the Preboot volumes'
        // `info` (their mount points) is forgotten.
        let preboot: Vec<String> = self
            .cache
            .borrow()
            .containers
            .iter()
            .flatten()
            .flat_map(|c| &c.volumes)
            .filter(|v| v.has_role("Preboot"))
            .map(|v| v.device.clone())
            .collect();
        for dev in &preboot {
            self.forget_info(dev);
        }
        if preboot.is_empty() {
            self.changed();
        }
        let out = r?;
        if out.status == 0 {
            Ok(())
        } else {
            Err(self.failed(&args, &out))
        }
    }

    fn files(&self, vol: &Volume) -> Result<PathBuf> {
        let locked_err = || {
            Error::new(
                ErrorKind::Refused,
                format!(
                    "volume {} ({}) is locked",
                    vol.device,
                    crate::text::escape(&vol.name)
                ),
            )
            .hint("unlock it with a FileVault user's password first")
        };
        // The listing read since the last change says locked: no call needed.
        if self.cached_volume(&vol.device).is_some_and(|v| v.locked) {
            return Err(locked_err());
        }
        let i = self.info(&vol.device)?;
        match i.mount_point {
            Some(mp) => Ok(PathBuf::from(mp)),
            None if i.locked => Err(locked_err()),
            None => Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "volume {} ({}) is not mounted",
                    vol.device,
                    crate::text::escape(&vol.name)
                ),
            )
            .hint(format!("mount it: diskutil mount {}", vol.device))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn classifies_diskutil_messages() {
        assert_eq!(
            classify(&out(0, "Unlocked and mounted APFS Volume", "")),
            Ok(Attempt::Accepted)
        );
        assert_eq!(
            classify(&out(
                1,
                "",
                "Error unlocking APFS Volume: The given passphrase is incorrect (-69557)"
            )),
            Ok(Attempt::Rejected)
        );
        assert_eq!(
            classify(&out(
                1,
                "Too many recent unlock attempts; unlocking disabled",
                ""
            )),
            Ok(Attempt::Throttled)
        );
        let e = classify(&out(1, "", "Could not find disk: disk9\n")).unwrap_err();
        assert_eq!(e, "Could not find disk: disk9");
    }
}
