//! The rehearsal: how this diskutil reads two passphrases for
//! `changePassphrase` is proven on a throwaway volume before the user's volume
//! is touched (docs/diskutil.md, "The rehearsal").
//!
//! A RAM disk (`hdiutil attach -nomount ram://65536`), or else a 32 MiB disk
//! image in a temporary folder, gets an APFS container and an encrypted
//! volume whose crypto user is `disk`, with a throwaway passphrase held only
//! in memory. On it, the very function the user's volume will use
//! ([`change_with`]) is tried with each candidate framing in a fixed order,
//! and each is judged by what the volume then accepts: the new passphrase
//! unlocks, the old one does not. The first framing that passes every check
//! is the one `change_passphrase` uses. Attempts on this volume cost nothing:
//! it is encrypted in software and has no Secure Enclave counter.
//!
//! The same volume also settles, at no risk: whether `unlockVolume -verify` is
//! accepted (else a lock and unlock cycle checks a passphrase), what this
//! diskutil prints for a wrong passphrase (learned, matched besides the known
//! texts), and that a 128-byte passphrase is refused. Everything is detached
//! and deleted afterwards, on every path (a guard).
//!
//! The verdict is kept for the Recovery session in the temporary folder
//! (memory-backed in recoveryOS), keyed by the diskutil binary and the OS
//! build, so a second run does not repeat it. The file holds no secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::parse;
use super::runner::{frame_two, Output, Runner};
use super::{classify_with, hdiutil, message_shape, unlock_args, DiskutilMac};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::{Attempt, Rehearsal, RehearsalOutcome};
use crate::secret::SecretBytes;

/// How the old and new passphrases reach `diskutil apfs changePassphrase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// `-oldStdinpassphrase -newStdinpassphrase`, stdin `OLD\nNEW\n`.
    StdinLines,
    /// No passphrase flags: diskutil prompts on a pseudo-terminal of its own
    /// and each prompt is answered in order (old, then new for every later one).
    PtyPrompts,
}

impl Framing {
    /// The candidates, in the order the rehearsal tries them.
    pub const ALL: [Framing; 2] = [Framing::StdinLines, Framing::PtyPrompts];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Framing::StdinLines => "stdin-lines",
            Framing::PtyPrompts => "pty-prompts",
        }
    }
}

/// The one function that changes a passphrase, for the throwaway volume and
/// the user's volume alike: runs `changePassphrase` on `device` for `user`
/// with `framing`. Returns the arguments (for messages) and the output.
///
/// # Errors
/// diskutil cannot be run, hangs, or is killed.
pub fn change_with(
    r: &Runner,
    framing: Framing,
    device: &str,
    user: &str,
    old: &[u8],
    new: &[u8],
    timeout: Duration,
) -> Result<(Vec<String>, Output)> {
    let mut args: Vec<String> = ["apfs", "changePassphrase", device, "-user", user]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = match framing {
        Framing::StdinLines => {
            args.push("-oldStdinpassphrase".into());
            args.push("-newStdinpassphrase".into());
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let stdin = frame_two(old, new);
            r.run_for(&a, Some(stdin.expose()), timeout)?
        }
        Framing::PtyPrompts => {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            r.run_pty(&a, old, new, timeout)?
        }
    };
    Ok((args, out))
}

/// The transcript: commands and what each showed, with every throwaway
/// passphrase blanked out of the text (none is ever an argument).
struct Log {
    lines: Vec<String>,
    secrets: Vec<Vec<u8>>,
}

impl Log {
    fn text(&self, out: &Output) -> String {
        let mut t = out.text();
        for s in &self.secrets {
            let s = String::from_utf8_lossy(s);
            if !s.is_empty() {
                t = t.replace(s.as_ref(), "<passphrase>");
            }
        }
        t
    }

    fn cmd(&mut self, r: &Runner, args: &[String], out: &Output) {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = if out.stdout.starts_with(b"<?xml") || out.stdout.starts_with(b"bplist") {
            format!("(a property list, {} bytes)", out.stdout.len())
        } else {
            self.text(out)
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(4)..].join(" / ");
        self.lines.push(format!(
            "$ {} -> exit {}{}{}",
            r.shown(&a),
            out.status,
            if tail.is_empty() { "" } else { ": " },
            crate::text::escape(&tail.chars().take(400).collect::<String>())
        ));
    }

    fn note(&mut self, s: impl Into<String>) {
        self.lines.push(format!("# {}", s.into()));
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A throwaway passphrase: non-ASCII (so the bytes sent are proven to be the
/// bytes stored), random, never shown.
fn throwaway(tag: &str) -> Result<SecretBytes> {
    let r: [u8; 8] = crate::crypto::random_bytes()
        .map_err(|e| Error::new(ErrorKind::Failure, format!("no randomness: {e}")))?;
    let hex = zeroize::Zeroizing::new(r.iter().map(|b| format!("{b:02x}")).collect::<String>());
    Ok(SecretBytes::concat(&[
        "Pässwörd-✓-".as_bytes(),
        tag.as_bytes(),
        b"-",
        hex.as_bytes(),
    ]))
}

/// The throwaway disk, container and volume; detached and deleted when dropped.
struct Canary {
    h: Runner,
    d: Runner,
    disk: Option<String>,
    image: Option<tempfile::TempDir>,
    container: String,
    volume: String,
    made: usize,
}

impl Canary {
    fn cleanup(&mut self, log: &mut Log) {
        if let Some(disk) = self.disk.take() {
            let ok = match hdiutil::detach(&self.h, &disk, false) {
                Ok((a, o)) => {
                    log.cmd(&self.h, &a, &o);
                    o.status == 0
                }
                Err(e) => {
                    log.note(format!("detach failed: {}", e.message()));
                    false
                }
            };
            if !ok {
                if let Ok((a, o)) = hdiutil::detach(&self.h, &disk, true) {
                    log.cmd(&self.h, &a, &o);
                }
            }
        }
        if let Some(dir) = self.image.take() {
            let p = dir.path().to_path_buf();
            match dir.close() {
                Ok(()) => log.note(format!("deleted {}", crate::text::quote_path(&p))),
                Err(e) => log.note(format!(
                    "could not delete {}: {e}",
                    crate::text::quote_path(&p)
                )),
            }
        }
    }

    /// Adds a fresh encrypted volume with passphrase `pw`.
    fn add_volume(&mut self, pw: &SecretBytes, log: &mut Log) -> std::result::Result<(), String> {
        self.made += 1;
        let name = if self.made == 1 {
            "fvsync-canary".to_string()
        } else {
            format!("fvsync-canary-{}", self.made)
        };
        let a = args(&[
            "apfs",
            "addVolume",
            &self.container,
            "APFS",
            &name,
            "-stdinpassphrase",
        ]);
        let av: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = self
            .d
            .run(&av, Some(pw.expose()))
            .map_err(|e| e.message().to_string())?;
        log.cmd(&self.d, &a, &out);
        if out.status != 0 {
            return Err(
                "diskutil could not add an encrypted volume to the throwaway container".into(),
            );
        }
        let dev = parse::created_device(&out.text(), "Volume").or_else(|| {
            let la = args(&["apfs", "list", "-plist", &self.container]);
            let lv: Vec<&str> = la.iter().map(String::as_str).collect();
            let o = self.d.run(&lv, None).ok()?;
            log.cmd(&self.d, &la, &o);
            parse::apfs_list(&o.stdout)
                .ok()?
                .into_iter()
                .flat_map(|c| c.volumes)
                .find(|v| v.name == name)
                .map(|v| v.device)
        });
        match dev {
            Some(d) => {
                self.volume = d;
                Ok(())
            }
            None => Err("the throwaway volume cannot be found after it was added".into()),
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let mut log = Log {
            lines: Vec::new(),
            secrets: Vec::new(),
        };
        self.cleanup(&mut log);
    }
}

/// Makes the throwaway disk and container (no volume yet). `Err`: why the
/// rehearsal is unavailable.
fn make_disk(h: &Runner, d: &Runner, log: &mut Log) -> std::result::Result<Canary, String> {
    if std::fs::metadata(&h.path).is_err() {
        return Err(format!(
            "no hdiutil at {} (a trimmed recoveryOS may lack it; a RAM disk and a disk image both need it)",
            crate::text::quote_path(&h.path)
        ));
    }
    let mut c = Canary {
        h: h.clone(),
        d: d.clone(),
        disk: None,
        image: None,
        container: String::new(),
        volume: String::new(),
        made: 0,
    };
    let (a, att) = hdiutil::attach_ram(h).map_err(|e| e.message().to_string())?;
    log.cmd(h, &a, &att.out);
    if let Some(disk) = att.disk() {
        c.disk = Some(disk.to_string());
    } else {
        log.note("no RAM disk: trying a disk image in a temporary folder");
        let dir = tempfile::Builder::new()
            .prefix("fvsync-canary-")
            .tempdir()
            .map_err(|e| format!("no RAM disk, and no temporary folder for a disk image: {e}"))?;
        let file = dir.path().join("fvsync-canary.dmg");
        c.image = Some(dir);
        let (a, o) = hdiutil::create_image(h, &file).map_err(|e| e.message().to_string())?;
        log.cmd(h, &a, &o);
        if o.status != 0 {
            return Err(
                "neither a RAM disk nor a disk image could be made (out of memory or space?)"
                    .into(),
            );
        }
        let (a, att) = hdiutil::attach_image(h, &file).map_err(|e| e.message().to_string())?;
        log.cmd(h, &a, &att.out);
        match att.disk() {
            Some(disk) => c.disk = Some(disk.to_string()),
            None => return Err("the throwaway disk image could not be attached".into()),
        }
    }
    let disk = c.disk.clone().unwrap_or_default();
    // A container on the disk already (a disk image made with -fs APFS), or a new one.
    let on_disk = |o: &Output| {
        parse::physical_stores(&o.stdout)
            .unwrap_or_default()
            .into_iter()
            .find(|(_, des, stores)| {
                des.iter()
                    .chain(stores)
                    .any(|s| *s == disk || s.starts_with(&format!("{disk}s")))
            })
            .map(|(r, _, _)| r)
    };
    let la = args(&["apfs", "list", "-plist"]);
    let list = d
        .run(&["apfs", "list", "-plist"], None)
        .map_err(|e| e.message().to_string())?;
    log.cmd(d, &la, &list);
    let container = match on_disk(&list) {
        Some(r) => r,
        None => {
            let a = args(&["apfs", "createContainer", &format!("/dev/{disk}")]);
            let av: Vec<&str> = a.iter().map(String::as_str).collect();
            let o = d.run(&av, None).map_err(|e| e.message().to_string())?;
            log.cmd(d, &a, &o);
            if o.status != 0 {
                return Err(
                    "diskutil could not make an APFS container on the throwaway disk".into(),
                );
            }
            match parse::created_device(&o.text(), "Container") {
                Some(r) => r,
                None => {
                    let list = d
                        .run(&["apfs", "list", "-plist"], None)
                        .map_err(|e| e.message().to_string())?;
                    log.cmd(d, &la, &list);
                    on_disk(&list).ok_or("the throwaway container cannot be found")?
                }
            }
        }
    };
    c.container = container;
    Ok(c)
}

/// What the throwaway volume answered to one passphrase check.
struct Check {
    accepted: Option<bool>,
    out: Output,
}

struct Session<'a> {
    c: &'a mut Canary,
    log: &'a mut Log,
    verify_ok: bool,
    learned: Vec<String>,
}

impl Session<'_> {
    /// Does the throwaway volume take `pw`? With `-verify`, or else a lock
    /// and unlock cycle (the volume is left unlocked when `pw` is right).
    fn check(&mut self, pw: &[u8]) -> Result<Check> {
        let d = self.c.d.clone();
        let vol = self.c.volume.clone();
        if !self.verify_ok {
            let a = args(&["apfs", "lockVolume", &vol]);
            let o = d.run(&["apfs", "lockVolume", &vol], None)?;
            self.log.cmd(&d, &a, &o);
        }
        let a: Vec<String> = unlock_args(&vol, "disk", self.verify_ok)
            .into_iter()
            .map(str::to_string)
            .collect();
        let av: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = d.run(&av, Some(pw))?;
        self.log.cmd(&d, &a, &out);
        let accepted = match classify_with(&out, &self.learned) {
            Ok(Attempt::Accepted) => Some(true),
            Ok(Attempt::Rejected) => Some(false),
            Ok(Attempt::Throttled) => None,
            Err(_) if !self.verify_ok => {
                let ia = args(&["info", "-plist", &vol]);
                let o = d.run(&["info", "-plist", &vol], None)?;
                self.log.cmd(&d, &ia, &o);
                parse::info(&o.stdout).ok().map(|i| !i.locked)
            }
            Err(_) => None,
        };
        Ok(Check { accepted, out })
    }

    /// Learns the wrong-passphrase message of `out` when it is not a known text.
    fn learn(&mut self, out: &Output, what: &str) {
        if out.status == 0 {
            return;
        }
        if classify_with(out, &[]).is_ok() {
            self.log.note(format!("{what}: a known message"));
            return;
        }
        let text = self.log.text(out);
        let line = text
            .lines()
            .rev()
            .find(|l| l.contains("rror"))
            .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()));
        if let Some(l) = line {
            let shape = message_shape(l);
            if !shape.is_empty() && !self.learned.contains(&shape) {
                self.log.note(format!(
                    "{what}: learned the message {}",
                    crate::text::escape(&shape)
                ));
                self.learned.push(shape);
            }
        }
    }
}

/// What a fresh rehearsal found.
struct Findings {
    outcome: RehearsalOutcome,
    framing: Option<Framing>,
    verify_ok: bool,
    learned: Vec<String>,
}

fn unavailable(why: String) -> Findings {
    Findings {
        outcome: RehearsalOutcome::Unavailable { why },
        framing: None,
        verify_ok: true,
        learned: Vec::new(),
    }
}

fn failed(why: impl Into<String>, verify_ok: bool, learned: Vec<String>) -> Findings {
    Findings {
        outcome: RehearsalOutcome::Failed { why: why.into() },
        framing: None,
        verify_ok,
        learned,
    }
}

fn run_fresh(mac: &DiskutilMac, log: &mut Log) -> Result<Findings> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(unavailable("fvsync is not running as root".into()));
    }
    let p0 = throwaway("0")?;
    let wrong = throwaway("wrong")?;
    let mut long = "Pässwörd-✓".as_bytes().to_vec();
    long.resize(128, b'x');
    let long = SecretBytes::concat(&[&long]);
    log.secrets.push(p0.expose().to_vec());
    log.secrets.push(wrong.expose().to_vec());
    log.secrets.push(long.expose().to_vec());
    let mut c = match make_disk(&mac.hdiutil, &mac.runner, log) {
        Ok(c) => c,
        Err(why) => return Ok(unavailable(why)),
    };
    if let Err(why) = c.add_volume(&p0, log) {
        c.cleanup(log);
        return Ok(unavailable(why));
    }
    let r = judge(&mut c, log, p0, &wrong, &long, mac.runner.timeout);
    c.cleanup(log);
    r
}

fn judge(
    c: &mut Canary,
    log: &mut Log,
    p0: SecretBytes,
    wrong: &SecretBytes,
    long: &SecretBytes,
    timeout: Duration,
) -> Result<Findings> {
    let mut s = Session {
        c,
        log,
        verify_ok: true,
        learned: Vec::new(),
    };
    // 1. -verify accepted? The volume's own passphrase must pass.
    let first = s.check(p0.expose())?;
    if first.accepted != Some(true) {
        s.log
            .note("unlockVolume -verify was not accepted: a lock and unlock cycle checks passphrases instead");
        s.verify_ok = false;
        if s.check(p0.expose())?.accepted != Some(true) {
            return Ok(unavailable(
                "the throwaway volume did not unlock with its own passphrase".into(),
            ));
        }
    } else {
        s.log.note("unlockVolume -verify is accepted");
    }
    // 2. What a wrong passphrase shows.
    let w = s.check(wrong.expose())?;
    if w.out.status == 0 {
        return Ok(failed(
            "diskutil accepted a wrong passphrase on the throwaway volume",
            s.verify_ok,
            s.learned,
        ));
    }
    s.learn(&w.out, "wrong passphrase");
    // 3. The 127-byte limit: a 128-byte passphrase is refused.
    let l = s.check(long.expose())?;
    if l.out.status == 0 {
        return Ok(failed(
            "diskutil accepted a 128-byte passphrase that was never set",
            s.verify_ok,
            s.learned,
        ));
    }
    let limit = l.out.text().contains("Maximum passphrase length");
    s.log.note(if limit {
        "a 128-byte passphrase is refused for its length (the 127-byte limit holds)"
    } else {
        "a 128-byte passphrase is refused (diskutil did not name the length; fvsync refuses over 127 bytes itself)"
    });
    if !s.verify_ok {
        let _ = s.check(p0.expose())?;
    }
    // 4. The framings, in order, each judged by what the volume then accepts.
    let mut cur: Option<SecretBytes> = Some(p0);
    for (i, framing) in Framing::ALL.into_iter().enumerate() {
        let old = match cur.take() {
            Some(p) => p,
            None => {
                let p = throwaway(&format!("fresh{i}"))?;
                s.log.secrets.push(p.expose().to_vec());
                s.log
                    .note("the last framing left the volume's passphrase unknown: a fresh volume");
                if let Err(why) = s.c.add_volume(&p, s.log) {
                    return Ok(failed(why, s.verify_ok, s.learned));
                }
                p
            }
        };
        let next = throwaway(&format!("{}", i + 1))?;
        s.log.secrets.push(next.expose().to_vec());
        s.log.note(format!("framing {}", framing.name()));
        let vol = s.c.volume.clone();
        let changed = match change_with(
            &s.c.d,
            framing,
            &vol,
            "disk",
            old.expose(),
            next.expose(),
            timeout,
        ) {
            Ok((a, out)) => {
                s.log.cmd(&s.c.d, &a, &out);
                out.status == 0
            }
            Err(e) => {
                s.log.note(format!("{}: {}", framing.name(), e.message()));
                false
            }
        };
        let new_ok = s.check(next.expose())?.accepted;
        let old_ok = s.check(old.expose())?.accepted;
        let passed = changed && new_ok == Some(true) && old_ok == Some(false);
        cur = match (new_ok, old_ok) {
            (Some(true), _) => Some(next),
            (_, Some(true)) => Some(old),
            _ => None,
        };
        if !passed {
            s.log.note(format!(
                "framing {} failed: diskutil {}, the new passphrase {}, the old one {}",
                framing.name(),
                if changed {
                    "reported success"
                } else {
                    "reported a failure"
                },
                said(new_ok),
                said(old_ok)
            ));
            continue;
        }
        if !s.verify_ok {
            if let Some(p) = &cur {
                let _ = s.check(p.expose())?;
            }
        }
        // A wrong old passphrase through the same framing: refused, nothing changed.
        let w2 = throwaway("wrong2")?;
        s.log.secrets.push(w2.expose().to_vec());
        let cur_pw = cur
            .as_ref()
            .map(|p| p.expose().to_vec())
            .unwrap_or_default();
        let refused = match change_with(
            &s.c.d,
            framing,
            &vol,
            "disk",
            wrong.expose(),
            w2.expose(),
            timeout,
        ) {
            Ok((a, out)) => {
                s.log.cmd(&s.c.d, &a, &out);
                s.learn(&out, "wrong old passphrase");
                out.status != 0
            }
            Err(e) => {
                s.log.note(e.message().to_string());
                false
            }
        };
        let still = s.check(&cur_pw)?.accepted == Some(true);
        if !(refused && still) {
            s.log.note(format!(
                "framing {} failed: a wrong old passphrase was {}",
                framing.name(),
                if refused {
                    "refused, but the passphrase changed"
                } else {
                    "not refused"
                }
            ));
            continue;
        }
        s.log.note(format!(
            "framing {} passed: the new passphrase (non-ASCII) unlocks, the old one does not, a wrong old one is refused",
            framing.name()
        ));
        return Ok(Findings {
            outcome: RehearsalOutcome::Passed {
                framing: framing.name().into(),
                cached: false,
            },
            framing: Some(framing),
            verify_ok: s.verify_ok,
            learned: s.learned,
        });
    }
    Ok(failed(
        "no way of passing the old and new passphrases to diskutil passed the rehearsal on a throwaway volume; FileVault was not touched",
        s.verify_ok,
        s.learned,
    ))
}

fn said(a: Option<bool>) -> &'static str {
    match a {
        Some(true) => "unlocks",
        Some(false) => "does not unlock",
        None => "gave an answer not understood",
    }
}

/// The session cache file.
#[derive(Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    key: String,
    framing: Framing,
    verify_ok: bool,
    learned: Vec<String>,
    transcript: Vec<String>,
}

/// What identifies a program: its path, size and modification time.
pub fn binary_id(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} ({} bytes, modified {}.{:09})",
        path.display(),
        m.len(),
        t.as_secs(),
        t.subsec_nanos()
    ))
}

const SYSTEM_VERSION: &str = "/System/Library/CoreServices/SystemVersion.plist";

fn clean(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        .then(|| s.to_string())
}

/// The OS version and build: `SystemVersion.plist` (read-only), else `sw_vers`.
pub fn os_version() -> (Option<String>, Option<String>) {
    let from_plist = crate::fsio::read_capped(Path::new(SYSTEM_VERSION))
        .ok()
        .and_then(|b| crate::formats::plist_safe::parse(&b).ok())
        .and_then(plist::Value::into_dictionary);
    if let Some(d) = from_plist {
        let get = |k: &str| d.get(k).and_then(plist::Value::as_string).and_then(clean);
        return (get("ProductVersion"), get("ProductBuildVersion"));
    }
    let sw = Runner::tool(PathBuf::from("/usr/bin/sw_vers"), "sw_vers");
    let ask = |flag: &str| {
        sw.run_for(&[flag], None, Duration::from_secs(10))
            .ok()
            .filter(|o| o.status == 0)
            .and_then(|o| clean(&String::from_utf8_lossy(&o.stdout)))
    };
    (ask("-productVersion"), ask("-buildVersion"))
}

/// The machine type (`sysctl -n hw.model`, read-only, same fixed environment).
pub fn machine() -> Option<String> {
    let s = Runner::tool(PathBuf::from("/usr/sbin/sysctl"), "sysctl");
    s.run_for(&["-n", "hw.model"], None, Duration::from_secs(10))
        .ok()
        .filter(|o| o.status == 0)
        .and_then(|o| clean(&String::from_utf8_lossy(&o.stdout)))
}

fn cache_key(mac: &DiskutilMac) -> String {
    let build = os_version().1;
    format!(
        "diskutil={}; build={}",
        binary_id(&mac.runner.path).unwrap_or_else(|| mac.runner.path.display().to_string()),
        build.as_deref().unwrap_or("unknown")
    )
}

fn cache_path(mac: &DiskutilMac, key: &str) -> PathBuf {
    use sha2::Digest;
    let h: String = sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    mac.cache_dir
        .join(format!("fvsync-rehearsal-{}.json", &h[..16]))
}

/// Reads the cache file only when it is a regular file owned by us, written
/// by nobody else (not group/world writable), with one link.
fn load(path: &Path, key: &str) -> Option<CacheFile> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    let trusted = m.file_type().is_file()
        && m.uid() == nix::unistd::geteuid().as_raw()
        && m.mode() & 0o022 == 0
        && m.nlink() == 1;
    if !trusted {
        return None;
    }
    let bytes = crate::fsio::read_capped(path).ok()?;
    let f: CacheFile = serde_json::from_slice(&bytes).ok()?;
    (f.version == 1 && f.key == key).then_some(f)
}

/// The transcript of this session's rehearsal, from this run or the cache.
pub fn cached_transcript(mac: &DiskutilMac) -> Option<Vec<String>> {
    if let Some(r) = &mac.last {
        return Some(r.transcript.clone());
    }
    let key = cache_key(mac);
    load(&cache_path(mac, &key), &key).map(|f| f.transcript)
}

/// [`crate::platform::Platform::rehearse`] for the diskutil backend; `fresh`
/// ignores an earlier verdict of this session.
///
/// # Errors
/// An I/O error that is not a verdict (no randomness).
pub fn rehearse(mac: &mut DiskutilMac, fresh: bool) -> Result<Rehearsal> {
    if !fresh {
        if let Some(last) = &mac.last {
            if let RehearsalOutcome::Passed { framing, .. } = &last.outcome {
                return Ok(Rehearsal {
                    outcome: RehearsalOutcome::Passed {
                        framing: framing.clone(),
                        cached: true,
                    },
                    transcript: last.transcript.clone(),
                });
            }
        }
    }
    let key = cache_key(mac);
    let path = cache_path(mac, &key);
    if !fresh {
        if let Some(f) = load(&path, &key) {
            mac.framing = Some(f.framing);
            mac.verify_ok = f.verify_ok;
            mac.learned = f.learned;
            let mut transcript = f.transcript;
            transcript.push(format!(
                "# taken from this Recovery session's earlier rehearsal ({})",
                crate::text::quote_path(&path)
            ));
            let r = Rehearsal {
                outcome: RehearsalOutcome::Passed {
                    framing: f.framing.name().into(),
                    cached: true,
                },
                transcript,
            };
            mac.last = Some(r.clone());
            return Ok(r);
        }
    }
    let mut log = Log {
        lines: Vec::new(),
        secrets: Vec::new(),
    };
    let found = run_fresh(mac, &mut log)?;
    let transcript = std::mem::take(&mut log.lines);
    drop(log);
    match &found.outcome {
        RehearsalOutcome::Passed { .. } => {
            mac.framing = found.framing;
            mac.verify_ok = found.verify_ok;
            mac.learned = found.learned.clone();
            if let Some(framing) = found.framing {
                let f = CacheFile {
                    version: 1,
                    key,
                    framing,
                    verify_ok: found.verify_ok,
                    learned: found.learned,
                    transcript: transcript.clone(),
                };
                if let Ok(bytes) = serde_json::to_vec_pretty(&f) {
                    let _ = crate::fsio::write_atomic(&path, &bytes, crate::fsio::Perms::PRIVATE);
                }
            }
        }
        // Nothing may be changed, whatever was accepted before.
        RehearsalOutcome::Failed { .. } => mac.framing = None,
        _ => {}
    }
    let r = Rehearsal {
        outcome: found.outcome,
        transcript,
    };
    mac.last = Some(r.clone());
    Ok(r)
}

/// `fvsync selftest`: a fresh rehearsal (this session's cached verdict is not
/// reused, and is replaced when it passes).
pub fn selftest(mac: &mut DiskutilMac) -> Rehearsal {
    rehearse(mac, true).unwrap_or_else(|e| Rehearsal {
        outcome: RehearsalOutcome::Unavailable {
            why: e.message().to_string(),
        },
        transcript: Vec::new(),
    })
}
