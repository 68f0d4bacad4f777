//! The real Mac: every FileVault and volume operation through
//! `/usr/sbin/diskutil` (on T2 and Apple-silicon Macs the Secure Enclave holds
//! the keys, so nothing else can unlock or re-wrap them). Calls go through
//! [`runner::Runner`]; outputs are read by the pure parsers in [`parse`].
//! Proven on Linux against the emulated diskutil (`src/bin/diskutil-emulator.rs`).

pub mod parse;
pub mod runner;
pub mod spawn;

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::platform::{
    Attempt, BootMode, Container, CryptoUser, Platform, PrebootMount, PrebootUser, Rehearsal,
    RehearsalOutcome, SystemInfo, Volume,
};
use crate::secret::Password;
use runner::{Output, Runner};

/// The Data volume's mount point in a normal boot.
pub const NORMAL_BOOT_DATA: &str = "/System/Volumes/Data";

/// This Mac, through diskutil.
pub struct DiskutilMac {
    runner: Runner,
}

/// What diskutil's output says about a passphrase attempt.
pub fn classify(out: &Output) -> std::result::Result<Attempt, String> {
    let text = out.text();
    if text.contains("Too many recent unlock attempts") {
        return Ok(Attempt::Throttled);
    }
    if out.status == 0 {
        return Ok(Attempt::Accepted);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("passphrase is incorrect")
        || text.contains("-69557")
        || lower.contains("incorrect passphrase")
    {
        return Ok(Attempt::Rejected);
    }
    Err(last_lines(&text))
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
    /// Uses the diskutil at `path`, giving each call `timeout`.
    pub fn new(path: PathBuf, timeout: std::time::Duration) -> Self {
        let mut runner = Runner::new(path);
        runner.timeout = timeout;
        DiskutilMac { runner }
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
            if let Ok(v) = plist::Value::from_reader(std::io::Cursor::new(&out.stdout)) {
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
        let args = ["info", "-plist", dev];
        let bytes = self.plist(&args)?;
        parse::info(&bytes).map_err(|e| self.parse_err(&args, e))
    }

    fn attempt(&self, args: &[&str], pw: &Password) -> Result<Attempt> {
        require_root()?;
        let out = self.runner.run(args, Some(pw.expose()))?;
        classify(&out).map_err(|msg| {
            Error::new(
                ErrorKind::Failure,
                format!(
                    "diskutil failed (exit {}): {}: {msg}",
                    out.status,
                    self.runner.shown(args)
                ),
            )
        })
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
        let args = ["apfs", "list", "-plist"];
        let bytes = self.plist(&args)?;
        let mut cs = parse::apfs_list(&bytes).map_err(|e| self.parse_err(&args, e))?;
        let gargs = ["apfs", "listVolumeGroups", "-plist"];
        // Volume groups are optional (older systems have none).
        let groups = self
            .plist(&gargs)
            .ok()
            .and_then(|b| parse::volume_groups(&b).ok())
            .unwrap_or_default();
        for c in &mut cs {
            for v in &mut c.volumes {
                v.group_uuid = groups
                    .iter()
                    .find(|(_, members)| members.contains(&v.device))
                    .map(|(g, _)| g.clone());
                if (v.has_role("Data") || v.has_role("System")) && !v.locked {
                    v.mount_point = self.info(&v.device)?.mount_point;
                }
            }
        }
        Ok(cs)
    }

    fn crypto_users(&self, vol: &Volume) -> Result<Vec<CryptoUser>> {
        let args = ["apfs", "listCryptoUsers", "-plist", vol.device.as_str()];
        let out = self.runner.run(&args, None)?;
        if out.status != 0 {
            // A volume that is not encrypted has no crypto users and says so;
            // any other failure is an error, not "no FileVault users".
            let text = out.text().to_ascii_lowercase();
            if text.contains("not an encrypted")
                || text.contains("no cryptographic users")
                || text.contains("not encrypted")
            {
                return Ok(Vec::new());
            }
            return Err(self.failed(&args, &out));
        }
        parse::crypto_users(&out.stdout).map_err(|e| self.parse_err(&args, e))
    }

    fn preboot_users(&self, vol: &Volume) -> Result<Option<Vec<PrebootUser>>> {
        let Some(group) = &vol.group_uuid else {
            return Ok(None);
        };
        let cs = self.containers()?;
        let Some(pre) = cs
            .iter()
            .filter(|c| c.reference == vol.container)
            .flat_map(|c| &c.volumes)
            .find(|v| v.has_role("Preboot"))
        else {
            return Ok(None);
        };
        let Some(mp) = self.info(&pre.device)?.mount_point else {
            return Ok(None);
        };
        let path = PathBuf::from(mp)
            .join(group)
            .join(crate::formats::preboot::PREBOOT_USERS);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let bytes = crate::fsio::read_capped(&path)?;
        let dict = plist::Value::from_reader(std::io::Cursor::new(bytes))
            .ok()
            .and_then(plist::Value::into_dictionary)
            .ok_or_else(|| Error::malformed(&path, "not a dictionary"))?;
        crate::formats::preboot::preboot_users_of(dict, &path).map(Some)
    }

    fn unlock(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        self.attempt(&unlock_args(&vol.device, user, false), pw)
    }

    fn verify(&mut self, vol: &Volume, user: &str, pw: &Password) -> Result<Attempt> {
        self.attempt(&unlock_args(&vol.device, user, true), pw)
    }

    fn lock(&mut self, vol: &Volume) -> Result<()> {
        self.simple(&["apfs", "lockVolume", &vol.device])
    }

    fn change_passphrase(
        &mut self,
        vol: &Volume,
        user: &str,
        old: &Password,
        new: &Password,
    ) -> Result<Attempt> {
        require_root()?;
        let args = [
            "apfs",
            "changePassphrase",
            &vol.device,
            "-user",
            user,
            "-oldStdinpassphrase",
            "-newStdinpassphrase",
        ];
        let stdin = runner::frame_two(old.expose(), new.expose());
        let out = self.runner.run(&args, Some(stdin.expose()))?;
        classify(&out).map_err(|msg| {
            Error::new(
                ErrorKind::Failure,
                format!(
                    "diskutil failed (exit {}): {}: {msg}",
                    out.status,
                    self.runner.shown(&args)
                ),
            )
        })
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
        self.simple(&args)
    }

    fn ownership_enabled(&self, vol: &Volume) -> Result<bool> {
        Ok(self.info(&vol.device)?.ownership)
    }

    fn preboot_mount(&mut self, vol: &Volume) -> Result<Option<PrebootMount>> {
        let cs = self.containers()?;
        let Some(pre) = cs
            .iter()
            .filter(|c| c.reference == vol.container)
            .flat_map(|c| &c.volumes)
            .find(|v| v.has_role("Preboot"))
        else {
            return Ok(None);
        };
        if let Some(mp) = self.info(&pre.device)?.mount_point {
            return Ok(Some(PrebootMount {
                device: pre.device.clone(),
                path: PathBuf::from(mp),
                mounted_by_us: false,
            }));
        }
        self.simple(&["mount", "readOnly", &pre.device])?;
        let mp = self.info(&pre.device)?.mount_point.ok_or_else(|| {
            Error::new(
                ErrorKind::Failure,
                format!("the Preboot volume {} did not mount", pre.device),
            )
        })?;
        Ok(Some(PrebootMount {
            device: pre.device.clone(),
            path: PathBuf::from(mp),
            mounted_by_us: true,
        }))
    }

    fn preboot_release(&mut self, mount: PrebootMount) {
        if mount.mounted_by_us {
            let _ = self.simple(&["unmount", &mount.device]);
        }
    }

    fn rehearse(&mut self) -> Result<Rehearsal> {
        Ok(Rehearsal {
            outcome: RehearsalOutcome::Unavailable {
                why: "this build has no rehearsal yet".into(),
            },
            transcript: Vec::new(),
        })
    }

    fn accept_unrehearsed(&mut self) {}

    fn system(&self) -> SystemInfo {
        SystemInfo::default()
    }

    fn update_preboot(&mut self, vol: &Volume) -> Result<()> {
        self.simple(&["apfs", "updatePreboot", &vol.device])
    }

    fn preboot_current(&self, _vol: &Volume, _user: &str) -> Result<Option<bool>> {
        Ok(None)
    }

    fn files(&self, vol: &Volume) -> Result<PathBuf> {
        let i = self.info(&vol.device)?;
        match i.mount_point {
            Some(mp) => Ok(PathBuf::from(mp)),
            None if i.locked => Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "volume {} ({}) is locked",
                    vol.device,
                    crate::text::escape(&vol.name)
                ),
            )
            .hint("unlock it with a FileVault user's password first")),
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
