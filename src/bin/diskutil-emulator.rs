//! The emulated diskutil: a test-only program (built with `--features testing`)
//! that implements the diskutil verbs fvsync uses over a simulated Mac. It
//! prints plists with the keys and shapes of the real samples, fails the way
//! diskutil fails (messages, exit codes, attempt limits), is strict about the
//! passphrase framing fvsync chose, and records every argv and environment it
//! receives (never stdin) so tests can prove no passphrase reached them.
//!
//! Usage: `fvsync-diskutil-emulator --sim DIR --state STATE [--mode M] VERB...`,
//! or through a symbolic link named `diskutil` (or `diskutil-<mode>`) in a
//! folder `F`: then `--sim F/mac --state F/emu [--mode <mode>]` are implied.
//! Tests give `fvsync --diskutil` such a link: a link is never a file being
//! written, so running it cannot fail with "Text file busy" (ETXTBSY) the way a
//! freshly written wrapper script can while another test thread forks.
//! Modes for hostile tests: `hang`, `kill`, `garbage`, `empty`, `huge`, and
//! `slow-change` (changePassphrase works, then hangs).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use fvsync::platform::{Attempt, Platform};
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
    // Mode `slow-change`: changePassphrase does its work, then diskutil hangs
    // before it exits (fvsync's timeout fires: the outcome is unknown to it).
    let slow = args
        .windows(2)
        .any(|w| w[0] == "--mode" && w[1] == "slow-change");
    if slow && args.iter().any(|a| a == "changePassphrase") {
        let _ = std::io::stdout().flush();
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    std::process::exit(code);
}

/// The options a link named `diskutil` or `diskutil-<mode>` stands for.
fn implied_by_name(argv0: &Path) -> Vec<String> {
    let (Some(name), Some(dir)) = (argv0.file_name().and_then(|n| n.to_str()), argv0.parent())
    else {
        return Vec::new();
    };
    let mode = match name.strip_prefix("diskutil") {
        Some("") => None,
        Some(rest) => match rest.strip_prefix('-') {
            Some(m) => Some(m.to_string()),
            None => return Vec::new(),
        },
        None => return Vec::new(),
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

fn record(state: &Path, argv: &[String]) {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let line = serde_json::json!({"argv": argv, "env": env});
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
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    record(&state, &args);
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
    let mut mac = SimMac::open(&sim).map_err(|e| e.message().to_string())?;
    let unlocked_file = state.join("unlocked");
    let unlocked = std::fs::read_to_string(&unlocked_file).unwrap_or_default();
    mac.set_unlocked(unlocked.lines().map(str::to_string));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let code = match a.as_slice() {
        ["apfs", "list", "-plist"] => list(&mac),
        ["apfs", "listVolumeGroups", "-plist"] => groups(&mac),
        ["info", "-plist", dev] => info(&mac, &sim, dev),
        ["apfs", "listCryptoUsers", "-plist", dev] => crypto_users(&mac, dev),
        ["apfs", "unlockVolume", dev, "-user", user, "-stdinpassphrase", rest @ ..] => {
            let verify = match rest {
                [] => false,
                ["-verify"] => true,
                _ => return Err(format!("emulator: unexpected arguments {rest:?}")),
            };
            unlock(&mut mac, dev, user, verify)
        }
        ["apfs", "lockVolume", dev] => {
            let v = volume(&mac, dev)?;
            mac.lock(&v).map_err(|e| e.message().to_string())?;
            println!("Locked APFS Volume {dev}");
            0
        }
        ["apfs", "changePassphrase", dev, "-user", user, "-oldStdinpassphrase", "-newStdinpassphrase"] => {
            change(&mut mac, dev, user)
        }
        ["apfs", "updatePreboot", dev] => {
            let v = volume(&mac, dev)?;
            mac.update_preboot(&v)
                .map_err(|e| e.message().to_string())?;
            println!("UpdatePreboot: Exiting Update Preboot operation with overall error=(ZeroMeansSuccess)=0");
            println!("Finished APFS operation");
            0
        }
        _ => {
            eprintln!("Usage:  diskutil [quiet] <verb> <options> (emulator: unsupported {a:?})");
            1
        }
    };
    let list: Vec<String> = mac.unlocked_devices();
    std::fs::write(&unlocked_file, list.join("\n")).map_err(|e| e.to_string())?;
    Ok(code)
}

fn volume(mac: &SimMac, dev: &str) -> Result<fvsync::platform::Volume, String> {
    mac.containers()
        .map_err(|e| e.message().to_string())?
        .into_iter()
        .flat_map(|c| c.volumes)
        .find(|v| v.device == dev)
        .ok_or_else(|| format!("Could not find disk: {dev}"))
}

fn list(mac: &SimMac) -> i32 {
    let Ok(cs) = mac.containers() else {
        return error_plist("Unable to list APFS containers");
    };
    let mut out = Vec::new();
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
    let mut root = Dictionary::new();
    root.insert("Containers".into(), Value::Array(out));
    print_plist(Value::Dictionary(root));
    0
}

fn groups(mac: &SimMac) -> i32 {
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

fn info(mac: &SimMac, sim: &Path, dev: &str) -> i32 {
    let Ok(v) = volume(mac, dev) else {
        return error_plist(&format!("Could not find disk: {dev}"));
    };
    let mounted = !v.locked && !v.has_role("Recovery") && !v.has_role("VM");
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
    d.insert("Writable".into(), Value::Boolean(mounted));
    d.insert("WritableVolume".into(), Value::Boolean(mounted));
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
        eprintln!("Error: The target disk is not an encrypted APFS volume");
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

fn unlock(mac: &mut SimMac, dev: &str, user: &str, verify: bool) -> i32 {
    let v = match volume(mac, dev) {
        Ok(v) => v,
        Err(m) => {
            eprintln!("{m}");
            return 1;
        }
    };
    let pw = match read_stdin().and_then(|b| one_passphrase(&b)) {
        Ok(p) => p,
        Err(m) => {
            eprintln!("{m}");
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
            eprintln!("Error unlocking APFS Volume: The given passphrase is incorrect (-69557)");
            1
        }
        Ok(Attempt::Throttled) => {
            eprintln!(
                "Error unlocking APFS Volume: Too many recent unlock attempts; unlocking disabled"
            );
            1
        }
        Err(e) => {
            eprintln!("Error unlocking APFS Volume: {}", e.message());
            1
        }
    }
}

fn change(mac: &mut SimMac, dev: &str, user: &str) -> i32 {
    let v = match volume(mac, dev) {
        Ok(v) => v,
        Err(m) => {
            eprintln!("{m}");
            return 1;
        }
    };
    // Strict framing: exactly "OLD\nNEW\n".
    let bytes = match read_stdin() {
        Ok(b) => b,
        Err(m) => {
            eprintln!("{m}");
            return 1;
        }
    };
    let parts: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if parts.len() != 3 || !parts[2].is_empty() || parts[0].is_empty() || parts[1].is_empty() {
        eprintln!("emulator: changePassphrase expects OLD and NEW on stdin, one line each");
        return 1;
    }
    let (old, new) = match (one_passphrase(parts[0]), one_passphrase(parts[1])) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(m), _) | (_, Err(m)) => {
            eprintln!("{m}");
            return 1;
        }
    };
    match mac.change_passphrase(&v, user, &old, &new) {
        Ok(Attempt::Accepted) => {
            println!("Changed the passphrase of cryptographic user {user} on APFS Volume {dev}");
            0
        }
        Ok(Attempt::Throttled) => {
            eprintln!(
                "Error changing passphrase: Too many recent unlock attempts; unlocking disabled"
            );
            1
        }
        Ok(Attempt::Rejected) => {
            eprintln!("Error changing passphrase: The given passphrase is incorrect (-69557)");
            1
        }
        Err(e) => {
            eprintln!("Error changing passphrase: {}", e.message());
            1
        }
    }
}
