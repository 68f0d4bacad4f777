//! The emulated diskutil: a test-only program (built with `--features testing`)
//! that implements the diskutil verbs fvsync uses over a simulated Mac. It
//! prints plists with the keys and shapes of the real samples, fails the way
//! diskutil fails (messages, exit codes, attempt limits), is strict about the
//! passphrase framing fvsync chose, and records every argv and environment it
//! receives (never stdin) so tests can prove no passphrase reached them.
//!
//! Usage: `fvsync-diskutil-emulator --sim DIR --state STATE [--mode M]
//! [--tool hdiutil] VERB...`, or through a symbolic link named `diskutil` (or
//! `diskutil-<mode>`, or `hdiutil` / `hdiutil-<mode>`) in a folder `F`: then
//! `--sim F/mac --state F/emu [--mode <mode>] [--tool hdiutil]` are implied.
//! Tests give `fvsync --diskutil` such a link: a link is never a file being
//! written, so running it cannot fail with "Text file busy" (ETXTBSY) the way a
//! freshly written wrapper script can while another test thread forks.
//!
//! The Preboot volume starts unmounted (as in Recovery): `mount readOnly`
//! and `unmount` of it are kept in `STATE/mounted`, and `info` shows its
//! mount point only while it is mounted.
//!
//! Modes for hostile tests: `hang`, `kill`, `garbage`, `empty`, `huge`,
//! `nested` (a plist of 200,000 nested arrays),
//! `slow-change` (changePassphrase works, then hangs), `odd-messages` (a wrong
//! passphrase is reported in words fvsync does not know), `corestorage` (no
//! APFS, a CoreStorage volume group), `preboot-drops` (updatePreboot reports
//! success but leaves lists naming no user). Framing modes (one diskutil binary: they
//! apply to the throwaway volume and the Mac's volumes alike):
//! `framing-lines` (the default: `OLD\nNEW\n` on stdin), `framing-eof` (the
//! whole stdin is the old passphrase), `framing-prompt` (the stdin flags are
//! ignored: it prompts on its controlling terminal, `/dev/tty`), `framing-none`
//! (no passphrase change ever works). Without the stdin flags,
//! `changePassphrase` prompts on `/dev/tty` in every mode but `framing-none`.
//!
//! As `hdiutil`: `attach -nomount ram://N`, `create ... FILE`, `attach
//! -nomount FILE`, `detach /dev/diskN [-force]`, over RAM disks kept in
//! `STATE/canary.json` (devices from disk100 up); modes `noram` (no RAM disk)
//! and `broken` (every verb fails). diskutil's `apfs createContainer`,
//! `addVolume`, `list`, `info`, `unlockVolume`, `lockVolume` and
//! `changePassphrase` work on those disks too. Messages go where real diskutil
//! prints them: its prose on stdout.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use fvsync::platform::{Attempt, Platform, Volume};
use fvsync::secret::{PasswordSource, StdinSource, Which};
use fvsync::sim::SimMac;
use plist::{Dictionary, Value};

fn main() {
    let mut argv = std::env::args();
    let argv0 = argv.next().unwrap_or_default();
    let mut args: Vec<String> = argv.collect();
    if !args.iter().any(|a| a == "--sim") {
        let mut implied = implied_by_name(Path::new(&argv0));
        implied.append(&mut args);
        args = implied;
    }
    let code = match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{msg}");
            1
        }
    };
    // Mode `slow-change`: changePassphrase of the Mac's own volumes does its
    // work, then diskutil hangs before it exits (fvsync's timeout fires: the
    // outcome is unknown to it). The rehearsal's throwaway volumes (disk100
    // and up) answer at once, so the rehearsal passes.
    let slow = args
        .windows(2)
        .any(|w| w[0] == "--mode" && w[1] == "slow-change");
    let throwaway = args.iter().any(|a| {
        a.strip_prefix("disk")
            .and_then(|r| r.split('s').next())
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 100)
    });
    if slow && !throwaway && args.iter().any(|a| a == "changePassphrase") {
        let _ = std::io::stdout().flush();
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    std::process::exit(code);
}

/// The options a link named `diskutil[-<mode>]` or `hdiutil[-<mode>]` stands for.
fn implied_by_name(argv0: &Path) -> Vec<String> {
    let (Some(name), Some(dir)) = (argv0.file_name().and_then(|n| n.to_str()), argv0.parent())
    else {
        return Vec::new();
    };
    let (tool, rest) = if let Some(r) = name.strip_prefix("diskutil") {
        ("diskutil", r)
    } else if let Some(r) = name.strip_prefix("hdiutil") {
        ("hdiutil", r)
    } else {
        return Vec::new();
    };
    let mode = match rest {
        "" => None,
        r => match r.strip_prefix('-') {
            Some(m) => Some(m.to_string()),
            None => return Vec::new(),
        },
    };
    let mut v = vec![
        "--sim".to_string(),
        dir.join("mac").to_string_lossy().into_owned(),
        "--state".to_string(),
        dir.join("emu").to_string_lossy().into_owned(),
    ];
    if let Some(m) = mode {
        v.push("--mode".into());
        v.push(m);
    }
    if tool == "hdiutil" {
        v.push("--tool".into());
        v.push("hdiutil".into());
    }
    v
}

fn take(args: &mut Vec<String>, flag: &str) -> Option<String> {
    let i = args.iter().position(|a| a == flag)?;
    if i + 1 >= args.len() {
        return None;
    }
    let v = args.remove(i + 1);
    args.remove(i);
    Some(v)
}

fn record(state: &Path, tool: &str, argv: &[String]) {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let line = serde_json::json!({"tool": tool, "argv": argv, "env": env});
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("calls.jsonl"))
    {
        let _ = writeln!(f, "{line}");
    }
}

fn print_plist(v: Value) {
    let mut out = Vec::new();
    let _ = v.to_writer_xml(&mut out);
    let _ = std::io::stdout().write_all(&out);
}

fn error_plist(msg: &str) -> i32 {
    let mut d = Dictionary::new();
    d.insert("Error".into(), Value::Boolean(true));
    d.insert("ErrorMessage".into(), Value::String(msg.into()));
    d.insert("ExitCode".into(), Value::Integer(1.into()));
    print_plist(Value::Dictionary(d));
    1
}

fn run(all: &[String]) -> Result<i32, String> {
    let mut args = all.to_vec();
    let sim = PathBuf::from(take(&mut args, "--sim").ok_or("emulator: --sim DIR is required")?);
    let state =
        PathBuf::from(take(&mut args, "--state").ok_or("emulator: --state DIR is required")?);
    let mode = take(&mut args, "--mode");
    let tool = take(&mut args, "--tool").unwrap_or_else(|| "diskutil".into());
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    record(&state, &tool, &args);
    if tool == "hdiutil" {
        return Ok(hdiutil(&state, mode.as_deref(), &args));
    }
    match mode.as_deref() {
        Some("hang") => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            return Ok(0);
        }
        Some("kill") => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Some("garbage") => {
            println!("this is not a property list");
            return Ok(0);
        }
        Some("empty") => return Ok(0),
        Some("nested") => {
            // A 3 MB plist of 200,000 nested arrays (a stack overflow for a
            // reader that does not bound the nesting).
            let mut out =
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">".to_vec();
            for _ in 0..200_000 {
                out.extend_from_slice(b"<array>");
            }
            for _ in 0..200_000 {
                out.extend_from_slice(b"</array>");
            }
            out.extend_from_slice(b"</plist>\n");
            let _ = std::io::stdout().write_all(&out);
            return Ok(0);
        }
        Some("huge") => {
            let chunk = vec![b'x'; 1 << 20];
            let mut out = std::io::stdout();
            for _ in 0..20 {
                if out.write_all(&chunk).is_err() {
                    break;
                }
            }
            return Ok(0);
        }
        _ => {}
    }
    let em = Emu {
        mode: mode.clone().unwrap_or_default(),
    };
    let mut mac = SimMac::open(&sim).map_err(|e| e.message().to_string())?;
    let unlocked_file = state.join("unlocked");
    let unlocked = std::fs::read_to_string(&unlocked_file).unwrap_or_default();
    mac.set_unlocked(unlocked.lines().map(str::to_string));
    let mut canary = Canaries::load(&state);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    // The throwaway disks first: their devices never clash with the Mac's.
    if let Some(code) = canary_verb(&em, &mut canary, &a) {
        canary.save(&state)?;
        return Ok(code);
    }
    let code = match a.as_slice() {
        ["apfs", "list", "-plist"] => list(&em, &mac, &canary, None),
        ["apfs", "list", "-plist", c] => list(&em, &mac, &canary, Some(c)),
        ["apfs", "listVolumeGroups", "-plist"] => groups(&em, &mac),
        ["coreStorage", "list", "-plist"] => corestorage(&em),
        ["info", "-plist", dev] => info(&mac, &sim, dev, &mounted(&state)),
        ["mount", "readOnly", dev] => mount(&mac, &state, dev),
        ["unmount", dev] => unmount(&mac, &state, dev),
        ["apfs", "listCryptoUsers", "-plist", dev] => crypto_users(&mac, dev),
        ["apfs", "unlockVolume", dev, "-user", user, "-stdinpassphrase", rest @ ..] => {
            let verify = match rest {
                [] => false,
                ["-verify"] => true,
                _ => return Err(format!("emulator: unexpected arguments {rest:?}")),
            };
            unlock(&em, &mut mac, dev, user, verify)
        }
        ["apfs", "lockVolume", dev] => {
            let v = volume(&mac, dev)?;
            mac.lock(&v).map_err(|e| e.message().to_string())?;
            println!("Locked APFS Volume {dev}");
            0
        }
        ["apfs", "changePassphrase", dev, "-user", user, flags @ ..] => {
            change(&em, &mut mac, dev, user, flags)
        }
        ["apfs", "setPassphraseHint", dev, "-user", user, rest @ ..] => {
            let hint = match rest {
                ["-hint", h] => Some(*h),
                ["-clear"] => None,
                _ => return Err(format!("emulator: unexpected arguments {rest:?}")),
            };
            let v = volume(&mac, dev)?;
            match mac.set_hint(&v, user, hint) {
                Ok(()) => {
                    println!("Setting passphrase hint for cryptographic user {user} on APFS Volume {dev}");
                    0
                }
                Err(e) => {
                    eprintln!("Error: {}", e.message());
                    1
                }
            }
        }
        ["apfs", "updatePreboot", dev] => {
            let v = volume(&mac, dev)?;
            if em.mode == "preboot-drops" {
                // Says it succeeded, but leaves lists that name no user.
                drop_preboot_users(&mac, &v)?;
            } else {
                mac.update_preboot(&v)
                    .map_err(|e| e.message().to_string())?;
            }
            println!("UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0");
            println!("Finished APFS operation");
            0
        }
        _ => {
            println!("Usage:  diskutil [quiet] <verb> <options> (emulator: unsupported {a:?})");
            1
        }
    };
    let list: Vec<String> = mac.unlocked_devices();
    std::fs::write(&unlocked_file, list.join("\n")).map_err(|e| e.to_string())?;
    Ok(code)
}

/// Mode `preboot-drops`: rewrites the Preboot folder's lists for `vol` with
/// no users in them (a broken `updatePreboot` that still reports success).
fn drop_preboot_users(mac: &SimMac, vol: &Volume) -> Result<(), String> {
    let Some(folder) = mac.preboot_folder(vol) else {
        return Ok(());
    };
    for name in ["AllUsersInfo.plist", "CryptoUserInfo.plist"] {
        let p = folder.join("var/db").join(name);
        if p.exists() {
            plist::Value::Dictionary(plist::Dictionary::new())
                .to_file_xml(&p)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The emulator's mode.
struct Emu {
    mode: String,
}

impl Emu {
    fn framing(&self) -> &str {
        match self.mode.as_str() {
            "framing-eof" => "eof",
            "framing-prompt" => "prompt",
            "framing-none" => "none",
            _ => "lines",
        }
    }

    /// The wrong-passphrase message: the known one, or (odd-messages) words
    /// fvsync has never seen.
    fn incorrect(&self, what: &str) -> String {
        if self.mode == "odd-messages" {
            format!("Error {what}: The cryptographic user refused the credential (-69808)")
        } else {
            format!("Error {what}: The given passphrase is incorrect (-69557)")
        }
    }
}

// ---- throwaway disks (RAM disks and disk images) ----

#[derive(Serialize, Deserialize, Default)]
struct Canaries {
    next: u32,
    disks: Vec<RamDisk>,
}

#[derive(Serialize, Deserialize)]
struct RamDisk {
    dev: String,
    image: Option<String>,
    container: Option<CanaryContainer>,
}

#[derive(Serialize, Deserialize)]
struct CanaryContainer {
    reference: String,
    uuid: String,
    volumes: Vec<CanaryVolume>,
}

#[derive(Serialize, Deserialize, Clone)]
struct CanaryVolume {
    device: String,
    uuid: String,
    name: String,
    /// SHA-256 of the passphrase bytes (test-only model; never logged).
    pass: Option<String>,
    locked: bool,
}

fn sha(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn fake_uuid(n: u32, k: u32) -> String {
    format!("CA0A0000-0000-4000-8000-{:06X}{:06X}", n, k)
}

impl Canaries {
    fn load(state: &Path) -> Self {
        std::fs::read(state.join("canary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, state: &Path) -> Result<(), String> {
        let b = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(state.join("canary.json"), b).map_err(|e| e.to_string())
    }

    fn new_disk(&mut self, image: Option<String>) -> String {
        if self.next < 100 {
            self.next = 100;
        }
        let dev = format!("disk{}", self.next);
        self.next += 2;
        self.disks.push(RamDisk {
            dev: dev.clone(),
            image,
            container: None,
        });
        dev
    }

    fn volume_mut(&mut self, dev: &str) -> Option<&mut CanaryVolume> {
        self.disks
            .iter_mut()
            .filter_map(|d| d.container.as_mut())
            .flat_map(|c| c.volumes.iter_mut())
            .find(|v| v.device == dev)
    }

    fn container_mut(&mut self, r: &str) -> Option<&mut CanaryContainer> {
        self.disks
            .iter_mut()
            .filter_map(|d| d.container.as_mut())
            .find(|c| c.reference == r)
    }

    fn owns(&self, dev: &str) -> bool {
        self.disks.iter().any(|d| {
            d.dev == dev
                || d.container.as_ref().is_some_and(|c| {
                    c.reference == dev || c.volumes.iter().any(|v| v.device == dev)
                })
        })
    }
}

fn strip_dev(s: &str) -> &str {
    s.strip_prefix("/dev/").unwrap_or(s)
}

fn hdiutil(state: &Path, mode: Option<&str>, args: &[String]) -> i32 {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if mode == Some("broken") {
        eprintln!(
            "hdiutil: {}: failed - Operation not supported",
            a.first().unwrap_or(&"")
        );
        return 1;
    }
    let mut c = Canaries::load(state);
    let code = match a.as_slice() {
        ["attach", rest @ ..] if rest.contains(&"-nomount") => {
            let Some(target) = rest.iter().find(|x| **x != "-nomount") else {
                eprintln!("hdiutil: attach: no image");
                return 1;
            };
            if let Some(n) = target.strip_prefix("ram://") {
                if mode == Some("noram") || n.parse::<u64>().is_err() {
                    eprintln!("hdiutil: attach failed - Cannot allocate memory");
                    return 1;
                }
                let dev = c.new_disk(None);
                println!("/dev/{dev}          \t                               \t");
                0
            } else {
                if std::fs::metadata(target).is_err() {
                    eprintln!("hdiutil: attach failed - No such file or directory");
                    return 1;
                }
                let dev = c.new_disk(Some(target.to_string()));
                let n = c.next - 2;
                let cref = format!("disk{}", n + 1);
                if let Some(d) = c.disks.last_mut() {
                    d.container = Some(CanaryContainer {
                        reference: cref.clone(),
                        uuid: fake_uuid(n, 0),
                        volumes: vec![CanaryVolume {
                            device: format!("{cref}s1"),
                            uuid: fake_uuid(n, 1),
                            name: "fvsync-canary-image".into(),
                            pass: None,
                            locked: false,
                        }],
                    });
                }
                println!("/dev/{dev}\tGUID_partition_scheme\t");
                println!("/dev/{dev}s1\tApple_APFS\t");
                println!("/dev/{cref}\tEF57347C-0000-11AA-AA11-0030654\t");
                println!("/dev/{cref}s1\t41504653-0000-11AA-AA11-0030654\t");
                0
            }
        }
        ["create", .., file] if a.contains(&"-size") => {
            let body = serde_json::json!({"emulated-image": true, "args": args});
            match std::fs::write(file, body.to_string()) {
                Ok(()) => {
                    println!("created: {file}");
                    0
                }
                Err(e) => {
                    eprintln!("hdiutil: create failed - {e}");
                    1
                }
            }
        }
        ["detach", dev, rest @ ..] if rest.is_empty() || rest == ["-force"] => {
            let dev = strip_dev(dev);
            let before = c.disks.len();
            c.disks.retain(|d| d.dev != dev);
            if c.disks.len() == before {
                eprintln!("hdiutil: detach failed - No such file or directory");
                1
            } else {
                println!("\"{dev}\" ejected.");
                0
            }
        }
        _ => {
            eprintln!("hdiutil: unsupported (emulator): {a:?}");
            1
        }
    };
    if c.save(state).is_err() {
        return 1;
    }
    code
}

/// diskutil verbs on the throwaway disks; `None`: not one of them.
fn canary_verb(em: &Emu, c: &mut Canaries, a: &[&str]) -> Option<i32> {
    match a {
        ["apfs", "createContainer", dev] => {
            let dev = strip_dev(dev).to_string();
            let d = c.disks.iter_mut().find(|d| d.dev == dev)?;
            let n: u32 = dev.trim_start_matches("disk").parse().ok()?;
            let cref = format!("disk{}", n + 1);
            d.container = Some(CanaryContainer {
                reference: cref.clone(),
                uuid: fake_uuid(n, 0),
                volumes: Vec::new(),
            });
            println!("Started APFS operation on {dev}");
            println!("Creating a new empty APFS Container");
            println!("Created new APFS Container {cref}");
            println!("Finished APFS operation");
            Some(0)
        }
        ["apfs", "addVolume", cref, "APFS", name, rest @ ..] => {
            let cont = c.container_mut(cref)?;
            let pass = match rest {
                ["-stdinpassphrase"] => match read_stdin().and_then(|b| one_passphrase(&b)) {
                    Ok(p) => Some(sha(p.expose())),
                    Err(m) => {
                        println!("{m}");
                        return Some(1);
                    }
                },
                [] => None,
                _ => {
                    println!("Usage: diskutil apfs addVolume (emulator: {rest:?})");
                    return Some(1);
                }
            };
            let n: u32 = cref.trim_start_matches("disk").parse().ok()?;
            let k = cont.volumes.len() as u32 + 1;
            let device = format!("{cref}s{k}");
            cont.volumes.push(CanaryVolume {
                device: device.clone(),
                uuid: fake_uuid(n, k + 10),
                name: name.to_string(),
                pass,
                locked: false,
            });
            println!("Preparing to create APFS Volume \"{name}\" in APFS Container {cref}");
            println!("Created new APFS Volume {device}");
            println!("Finished APFS operation");
            Some(0)
        }
        ["info", "-plist", dev] if c.owns(dev) => {
            let mut d = Dictionary::new();
            d.insert("DeviceIdentifier".into(), dev.to_string().into());
            d.insert("Internal".into(), Value::Boolean(false));
            if let Some(v) = c.volume_mut(dev) {
                d.insert("Encryption".into(), Value::Boolean(v.pass.is_some()));
                d.insert("Locked".into(), Value::Boolean(v.locked));
                let mp = if v.locked {
                    String::new()
                } else {
                    format!("/Volumes/{}", v.name)
                };
                d.insert("MountPoint".into(), mp.into());
                d.insert("VolumeName".into(), v.name.clone().into());
            }
            print_plist(Value::Dictionary(d));
            Some(0)
        }
        ["apfs", "unlockVolume", dev, "-user", user, "-stdinpassphrase", rest @ ..] => {
            let v = c.volume_mut(dev)?;
            let verify = rest == ["-verify"];
            let pw = match read_stdin().and_then(|b| one_passphrase(&b)) {
                Ok(p) => p,
                Err(m) => {
                    println!("{m}");
                    return Some(1);
                }
            };
            println!("Unlocking the \"{user}\" cryptographic user on APFS Volume {dev}");
            if *user != "disk" || v.pass.as_deref() != Some(sha(pw.expose()).as_str()) {
                println!("{}", em.incorrect("unlocking APFS Volume"));
                return Some(1);
            }
            if verify {
                println!("Passphrase verified");
            } else {
                v.locked = false;
                println!("Unlocked and mounted APFS Volume");
            }
            Some(0)
        }
        ["apfs", "lockVolume", dev] => {
            let v = c.volume_mut(dev)?;
            v.locked = true;
            println!("Locked APFS Volume {dev}");
            Some(0)
        }
        ["apfs", "changePassphrase", dev, "-user", user, flags @ ..] => {
            if !c.owns(dev) {
                return None;
            }
            let (old, new) = match secrets(em, dev, user, flags) {
                Secrets::Pair(o, n) => (o, n),
                Secrets::OldThenEmpty(o) => {
                    let v = c.volume_mut(dev)?;
                    if v.pass.as_deref() != Some(sha(o.expose()).as_str()) {
                        println!("{}", em.incorrect("changing passphrase"));
                    } else {
                        println!("A zero-length passphrase is not supported");
                    }
                    return Some(1);
                }
                Secrets::Fail(m) => {
                    println!("{m}");
                    return Some(1);
                }
            };
            let v = c.volume_mut(dev)?;
            if *user != "disk" || v.pass.as_deref() != Some(sha(old.expose()).as_str()) {
                println!("{}", em.incorrect("changing passphrase"));
                return Some(1);
            }
            v.pass = Some(sha(new.expose()));
            println!("Changed the passphrase of cryptographic user {user} on APFS Volume {dev}");
            Some(0)
        }
        _ => None,
    }
}

fn canary_containers(c: &Canaries) -> Vec<Value> {
    c.disks
        .iter()
        .filter_map(|d| d.container.as_ref().map(|k| (d, k)))
        .map(|(d, k)| {
            let mut x = Dictionary::new();
            x.insert("APFSContainerUUID".into(), k.uuid.clone().into());
            x.insert("ContainerReference".into(), k.reference.clone().into());
            x.insert("DesignatedPhysicalStore".into(), d.dev.clone().into());
            let mut ps = Dictionary::new();
            ps.insert("DeviceIdentifier".into(), d.dev.clone().into());
            x.insert(
                "PhysicalStores".into(),
                Value::Array(vec![Value::Dictionary(ps)]),
            );
            let vols = k
                .volumes
                .iter()
                .map(|v| {
                    let mut y = Dictionary::new();
                    y.insert("APFSVolumeUUID".into(), v.uuid.clone().into());
                    y.insert("DeviceIdentifier".into(), v.device.clone().into());
                    y.insert("Encryption".into(), Value::Boolean(v.pass.is_some()));
                    y.insert("FileVault".into(), Value::Boolean(false));
                    y.insert("Locked".into(), Value::Boolean(v.locked));
                    y.insert("Name".into(), v.name.clone().into());
                    y.insert("Roles".into(), Value::Array(Vec::new()));
                    Value::Dictionary(y)
                })
                .collect();
            x.insert("Volumes".into(), Value::Array(vols));
            Value::Dictionary(x)
        })
        .collect()
}

fn corestorage(em: &Emu) -> i32 {
    let mut root = Dictionary::new();
    let groups = if em.mode == "corestorage" {
        vec![Value::String("C0C0C0C0-0000-4000-8000-000000000001".into())]
    } else {
        Vec::new()
    };
    root.insert(
        "CoreStorageLogicalVolumeGroups".into(),
        Value::Array(groups),
    );
    print_plist(Value::Dictionary(root));
    0
}

fn volume(mac: &SimMac, dev: &str) -> Result<fvsync::platform::Volume, String> {
    mac.containers()
        .map_err(|e| e.message().to_string())?
        .into_iter()
        .flat_map(|c| c.volumes)
        .find(|v| v.device == dev)
        .ok_or_else(|| format!("Could not find disk: {dev}"))
}

fn list(em: &Emu, mac: &SimMac, canary: &Canaries, only: Option<&str>) -> i32 {
    let Ok(cs) = mac.containers() else {
        return error_plist("Unable to list APFS containers");
    };
    let mut out = Vec::new();
    if em.mode == "corestorage" {
        let mut root = Dictionary::new();
        root.insert("Containers".into(), Value::Array(canary_containers(canary)));
        print_plist(Value::Dictionary(root));
        return 0;
    }
    for (c, desc) in cs.iter().zip(&mac.mac().containers) {
        let mut d = Dictionary::new();
        d.insert("APFSContainerUUID".into(), c.uuid.clone().into());
        d.insert(
            "CapacityCeiling".into(),
            Value::Integer(desc.capacity.into()),
        );
        d.insert("CapacityFree".into(), Value::Integer(desc.free.into()));
        d.insert("ContainerReference".into(), c.reference.clone().into());
        d.insert(
            "DesignatedPhysicalStore".into(),
            desc.physical_store.clone().into(),
        );
        d.insert("Fusion".into(), Value::Boolean(desc.fusion));
        let mut ps = Dictionary::new();
        ps.insert(
            "DeviceIdentifier".into(),
            desc.physical_store.clone().into(),
        );
        ps.insert(
            "DiskUUID".into(),
            "00000000-0000-4000-8000-000000000000".into(),
        );
        ps.insert("Size".into(), Value::Integer(desc.capacity.into()));
        d.insert(
            "PhysicalStores".into(),
            Value::Array(vec![Value::Dictionary(ps)]),
        );
        let vols = c
            .volumes
            .iter()
            .zip(&desc.volumes)
            .map(|(v, vd)| {
                let mut x = Dictionary::new();
                x.insert("APFSVolumeUUID".into(), v.uuid.clone().into());
                x.insert("CapacityInUse".into(), Value::Integer(vd.in_use.into()));
                x.insert("CapacityQuota".into(), Value::Integer(0.into()));
                x.insert("CapacityReserve".into(), Value::Integer(0.into()));
                x.insert(
                    "CryptoMigrationOn".into(),
                    Value::Boolean(vd.crypto_migration),
                );
                x.insert("DeviceIdentifier".into(), v.device.clone().into());
                x.insert("Encryption".into(), Value::Boolean(v.encryption));
                x.insert("FileVault".into(), Value::Boolean(v.filevault));
                x.insert("Locked".into(), Value::Boolean(v.locked));
                x.insert("Name".into(), v.name.clone().into());
                x.insert(
                    "Roles".into(),
                    Value::Array(v.roles.iter().map(|r| r.clone().into()).collect()),
                );
                Value::Dictionary(x)
            })
            .collect();
        d.insert("Volumes".into(), Value::Array(vols));
        out.push(Value::Dictionary(d));
    }
    out.extend(canary_containers(canary));
    if let Some(c) = only {
        out.retain(|v| {
            v.as_dictionary()
                .and_then(|d| d.get("ContainerReference"))
                .and_then(Value::as_string)
                == Some(c)
        });
        if out.is_empty() {
            return error_plist(&format!("{c} is not an APFS Container"));
        }
    }
    let mut root = Dictionary::new();
    root.insert("Containers".into(), Value::Array(out));
    print_plist(Value::Dictionary(root));
    0
}

fn groups(em: &Emu, mac: &SimMac) -> i32 {
    if em.mode == "corestorage" {
        let mut root = Dictionary::new();
        root.insert("Containers".into(), Value::Array(Vec::new()));
        print_plist(Value::Dictionary(root));
        return 0;
    }
    let cs: Vec<Value> = mac
        .mac()
        .containers
        .iter()
        .map(|c| {
            let gs = c
                .groups
                .iter()
                .map(|g| {
                    let mut d = Dictionary::new();
                    d.insert("APFSVolumeGroupUUID".into(), g.uuid.clone().into());
                    let vs = g
                        .volumes
                        .iter()
                        .map(|m| {
                            let mut x = Dictionary::new();
                            x.insert("DeviceIdentifier".into(), m.device.clone().into());
                            x.insert("Role".into(), m.role.clone().into());
                            Value::Dictionary(x)
                        })
                        .collect();
                    d.insert("Volumes".into(), Value::Array(vs));
                    Value::Dictionary(d)
                })
                .collect();
            let mut d = Dictionary::new();
            d.insert("APFSContainerUUID".into(), c.uuid.clone().into());
            d.insert("VolumeGroups".into(), Value::Array(gs));
            Value::Dictionary(d)
        })
        .collect();
    let mut root = Dictionary::new();
    root.insert("Containers".into(), Value::Array(cs));
    print_plist(Value::Dictionary(root));
    0
}

/// The Preboot volumes mounted in this session (`STATE/mounted`): none at
/// first, as in Recovery, until `mount readOnly` (and again after `unmount`).
fn mounted(state: &Path) -> Vec<String> {
    std::fs::read_to_string(state.join("mounted"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn save_mounted(state: &Path, list: &[String]) -> Result<(), String> {
    std::fs::write(state.join("mounted"), list.join("\n")).map_err(|e| e.to_string())
}

/// `diskutil mount readOnly DEV`: only the Preboot volume is modelled (the
/// others mount with their unlock, or never).
fn mount(mac: &SimMac, state: &Path, dev: &str) -> i32 {
    let Ok(v) = volume(mac, dev) else {
        println!("Could not find disk: {dev}");
        return 1;
    };
    if !v.has_role("Preboot") {
        println!("Volume on {dev} failed to mount (emulator: only Preboot is modelled)");
        return 1;
    }
    let mut list = mounted(state);
    if !list.iter().any(|d| d == dev) {
        list.push(dev.to_string());
    }
    if let Err(e) = save_mounted(state, &list) {
        eprintln!("{e}");
        return 1;
    }
    println!("Volume {} on {dev} mounted", v.name);
    0
}

/// `diskutil unmount DEV`.
fn unmount(mac: &SimMac, state: &Path, dev: &str) -> i32 {
    let Ok(v) = volume(mac, dev) else {
        println!("Could not find disk: {dev}");
        return 1;
    };
    let mut list = mounted(state);
    if !list.iter().any(|d| d == dev) {
        println!("Volume {} on {dev} is not mounted", v.name);
        return 1;
    }
    list.retain(|d| d != dev);
    if let Err(e) = save_mounted(state, &list) {
        eprintln!("{e}");
        return 1;
    }
    println!("Volume {} on {dev} unmounted", v.name);
    0
}

fn info(mac: &SimMac, sim: &Path, dev: &str, mounted: &[String]) -> i32 {
    // A container's physical store: the first container is the internal disk.
    if let Some(i) = mac
        .mac()
        .containers
        .iter()
        .position(|c| c.physical_store == dev)
    {
        let mut d = Dictionary::new();
        d.insert("DeviceIdentifier".into(), dev.to_string().into());
        d.insert("DeviceNode".into(), format!("/dev/{dev}").into());
        d.insert("Content".into(), "Apple_APFS".into());
        d.insert("Internal".into(), Value::Boolean(i == 0));
        d.insert("MountPoint".into(), "".into());
        print_plist(Value::Dictionary(d));
        return 0;
    }
    let Ok(v) = volume(mac, dev) else {
        return error_plist(&format!("Could not find disk: {dev}"));
    };
    let (ci, desc) = mac
        .mac()
        .containers
        .iter()
        .enumerate()
        .find_map(|(i, c)| c.volumes.iter().find(|x| x.device == dev).map(|x| (i, x)))
        .map(|(i, x)| (i, x.ownership))
        .unwrap_or((0, true));
    let preboot = v.has_role("Preboot");
    let mounted = !v.locked
        && !v.has_role("Recovery")
        && !v.has_role("VM")
        && (!preboot || mounted.iter().any(|d| d == dev));
    // A Preboot volume is only ever mounted read-only here.
    let writable = mounted && !preboot;
    let mut d = Dictionary::new();
    d.insert("APFSContainerReference".into(), v.container.clone().into());
    if let Some(g) = &v.group_uuid {
        d.insert("APFSVolumeGroupID".into(), g.clone().into());
    }
    d.insert("DeviceIdentifier".into(), v.device.clone().into());
    d.insert("DeviceNode".into(), format!("/dev/{}", v.device).into());
    d.insert("Encryption".into(), Value::Boolean(v.encryption));
    d.insert("FileVault".into(), Value::Boolean(v.filevault));
    d.insert("FilesystemType".into(), "apfs".into());
    d.insert("GlobalPermissionsEnabled".into(), Value::Boolean(desc));
    d.insert("Internal".into(), Value::Boolean(ci == 0));
    d.insert("Locked".into(), Value::Boolean(v.locked));
    let mp = if mounted {
        sim.join("Volumes")
            .join(&v.device)
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    d.insert("MountPoint".into(), mp.into());
    d.insert("VolumeName".into(), v.name.clone().into());
    d.insert("VolumeUUID".into(), v.uuid.clone().into());
    d.insert("Writable".into(), Value::Boolean(writable));
    d.insert("WritableVolume".into(), Value::Boolean(writable));
    print_plist(Value::Dictionary(d));
    0
}

fn crypto_users(mac: &SimMac, dev: &str) -> i32 {
    let Ok(v) = volume(mac, dev) else {
        return error_plist(&format!("Could not find disk: {dev}"));
    };
    let Ok(us) = mac.crypto_users(&v) else {
        return error_plist("Unable to read the crypto users");
    };
    if us.is_empty() {
        println!("Error: The target disk is not an encrypted APFS volume");
        return 1;
    }
    let users = us
        .iter()
        .map(|u| {
            let mut d = Dictionary::new();
            d.insert("APFSCryptoUserType".into(), u.kind.clone().into());
            d.insert("APFSCryptoUserUUID".into(), u.uuid.clone().into());
            d.insert("VolumeOwner".into(), Value::Boolean(u.volume_owner));
            Value::Dictionary(d)
        })
        .collect();
    let mut root = Dictionary::new();
    root.insert("Users".into(), Value::Array(users));
    print_plist(Value::Dictionary(root));
    0
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(4096)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

fn one_passphrase(bytes: &[u8]) -> Result<fvsync::secret::Password, String> {
    if bytes.is_empty() {
        return Err("A zero-length passphrase is not supported".into());
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.len() > 127 {
        return Err("Maximum passphrase length of 127 from stdin exceeded".into());
    }
    if body.contains(&b'\n') {
        return Err("emulator: more than one line on stdin for -stdinpassphrase".into());
    }
    let mut src = StdinSource::new(body);
    src.read(Which::Current, "emulator")
        .map_err(|e| e.message().to_string())
}

fn unlock(em: &Emu, mac: &mut SimMac, dev: &str, user: &str, verify: bool) -> i32 {
    let v = match volume(mac, dev) {
        Ok(v) => v,
        Err(m) => {
            println!("{m}");
            return 1;
        }
    };
    let pw = match read_stdin().and_then(|b| one_passphrase(&b)) {
        Ok(p) => p,
        Err(m) => {
            println!("{m}");
            return 1;
        }
    };
    println!("Unlocking the \"{user}\" cryptographic user on APFS Volume {dev}");
    let r = if verify {
        mac.verify(&v, user, &pw)
    } else {
        mac.unlock(&v, user, &pw)
    };
    match r {
        Ok(Attempt::Accepted) => {
            println!(
                "{}",
                if verify {
                    "Passphrase verified"
                } else {
                    "Unlocked and mounted APFS Volume"
                }
            );
            0
        }
        Ok(Attempt::Rejected) => {
            println!("{}", em.incorrect("unlocking APFS Volume"));
            1
        }
        Ok(Attempt::Throttled) => {
            println!(
                "Error unlocking APFS Volume: Too many recent unlock attempts; unlocking disabled"
            );
            1
        }
        Err(e) => {
            println!("Error unlocking APFS Volume: {}", e.message());
            1
        }
    }
}

/// How the old and new passphrases of a change arrived.
enum Secrets {
    Pair(fvsync::secret::Password, fvsync::secret::Password),
    /// `framing-eof`: the whole stdin was the old one; the new one reads empty.
    OldThenEmpty(fvsync::secret::Password),
    Fail(String),
}

fn secrets(em: &Emu, dev: &str, user: &str, flags: &[&str]) -> Secrets {
    let stdin_flags = match flags {
        ["-oldStdinpassphrase", "-newStdinpassphrase"] => true,
        [] => false,
        _ => {
            return Secrets::Fail(format!(
                "Usage: diskutil apfs changePassphrase (emulator: {flags:?})"
            ))
        }
    };
    match (em.framing(), stdin_flags) {
        ("none", _) => Secrets::Fail(
            "Error changing passphrase: Unable to change the cryptographic user's passphrase (-69830)".into(),
        ),
        ("lines", true) => {
            // Strict framing: exactly "OLD\nNEW\n".
            let bytes = match read_stdin() {
                Ok(b) => b,
                Err(m) => return Secrets::Fail(m),
            };
            let parts: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            if parts.len() != 3 || !parts[2].is_empty() || parts[0].is_empty() || parts[1].is_empty() {
                return Secrets::Fail(
                    "emulator: changePassphrase expects OLD and NEW on stdin, one line each".into(),
                );
            }
            match (one_passphrase(parts[0]), one_passphrase(parts[1])) {
                (Ok(o), Ok(n)) => Secrets::Pair(o, n),
                (Err(m), _) | (_, Err(m)) => Secrets::Fail(m),
            }
        }
        ("eof", true) => {
            let bytes = match read_stdin() {
                Ok(b) => b,
                Err(m) => return Secrets::Fail(m),
            };
            let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            if body.is_empty() || body.len() > 127 {
                return Secrets::Fail("Maximum passphrase length of 127 from stdin exceeded".into());
            }
            Secrets::OldThenEmpty(fvsync::secret::Password::for_tests(
                &String::from_utf8_lossy(body),
            ))
        }
        // framing-prompt ignores the stdin flags; without them every mode prompts.
        _ => prompt_pair(dev, user),
    }
}

/// Asks for the old and new passphrases on the controlling terminal, echo off.
fn prompt_pair(dev: &str, user: &str) -> Secrets {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Secrets::Fail(
            "Error changing passphrase: unable to read a passphrase interactively (no terminal)"
                .into(),
        );
    };
    let saved = tcgetattr(&tty).ok();
    if let Some(t) = &saved {
        let mut t = t.clone();
        t.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&tty, SetArg::TCSAFLUSH, &t);
    }
    let _ = writeln!(
        tty,
        "Changing the passphrase of cryptographic user {user} on APFS Volume {dev}"
    );
    let mut ask = |prompt: &str| -> Option<Vec<u8>> {
        let _ = write!(tty, "{prompt}");
        let _ = tty.flush();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            match tty.read(&mut b) {
                Ok(1) if b[0] == b'\n' => break,
                Ok(1) => line.push(b[0]),
                _ => return None,
            }
            if line.len() > 4096 {
                return None;
            }
        }
        let _ = writeln!(tty);
        Some(line)
    };
    let old = ask("Old passphrase for user disk: "
        .replace("disk", user)
        .as_str());
    let new = ask("New passphrase: ");
    let again = ask("Repeat new passphrase: ");
    if let Some(t) = &saved {
        let _ = tcsetattr(&tty, SetArg::TCSANOW, t);
    }
    let (Some(old), Some(new), Some(again)) = (old, new, again) else {
        return Secrets::Fail("Error changing passphrase: the terminal closed".into());
    };
    if new != again {
        return Secrets::Fail("Error changing passphrase: the new passphrases do not match".into());
    }
    match (one_passphrase(&old), one_passphrase(&new)) {
        (Ok(o), Ok(n)) => Secrets::Pair(o, n),
        (Err(m), _) | (_, Err(m)) => Secrets::Fail(m.replace("stdin", "interactive entry")),
    }
}

fn change(em: &Emu, mac: &mut SimMac, dev: &str, user: &str, flags: &[&str]) -> i32 {
    let v = match volume(mac, dev) {
        Ok(v) => v,
        Err(m) => {
            println!("{m}");
            return 1;
        }
    };
    let (old, new) = match secrets(em, dev, user, flags) {
        Secrets::Pair(o, n) => (o, n),
        Secrets::OldThenEmpty(o) => {
            // The old passphrase is checked first: a wrong one is an attempt.
            return match mac.verify(&v, user, &o) {
                Ok(Attempt::Accepted) => {
                    println!("A zero-length passphrase is not supported");
                    1
                }
                Ok(Attempt::Rejected) => {
                    println!("{}", em.incorrect("changing passphrase"));
                    1
                }
                Ok(Attempt::Throttled) => {
                    println!("Error changing passphrase: Too many recent unlock attempts; unlocking disabled");
                    1
                }
                Err(e) => {
                    println!("Error changing passphrase: {}", e.message());
                    1
                }
            };
        }
        Secrets::Fail(m) => {
            println!("{m}");
            return 1;
        }
    };
    match mac.change_passphrase(&v, user, &old, &new) {
        Ok(Attempt::Accepted) => {
            println!("Changed the passphrase of cryptographic user {user} on APFS Volume {dev}");
            0
        }
        Ok(Attempt::Throttled) => {
            println!(
                "Error changing passphrase: Too many recent unlock attempts; unlocking disabled"
            );
            1
        }
        Ok(Attempt::Rejected) => {
            println!("{}", em.incorrect("changing passphrase"));
            1
        }
        Err(e) => {
            println!("Error changing passphrase: {}", e.message());
            1
        }
    }
}
