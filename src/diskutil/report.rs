//! `fvsync report DIR`: what a pilot's real Mac shows, for fixtures. Writes
//! every read-only diskutil output fvsync uses (plist and text forms), the OS
//! version and build, the machine type and this session's rehearsal
//! transcript; UUIDs are replaced by placeholders (the same UUID always by the
//! same one) unless `redact` is false. No secret is read, so none can be
//! written. docs/diskutil.md says how a report becomes `tests/data/field/<name>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{parse, DiskutilMac};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::Platform;

/// What a report wrote.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct ReportSummary {
    /// The folder.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<String>,
    /// UUIDs were replaced.
    pub redacted: bool,
    /// Distinct UUIDs replaced.
    pub uuids_replaced: usize,
    /// Commands that failed (their output is still written).
    pub failures: Vec<String>,
}

/// Recovery and well-known crypto-user UUIDs (macos.md §2.2): the same on
/// every Mac, so kept as they are.
const WELL_KNOWN: &[&str] = &[
    "EBC6C064-0000-11AA-AA11-00306543ECAC",
    "64C0C6EB-0000-11AA-AA11-00306543ECAC",
    "EC1C2AD9-B618-4ED6-BD8D-50F361C27507",
    "C064EBC6-0000-11AA-AA11-00306543ECAC",
    "2FA31400-BAFF-4DE7-AE2A-C3AA6E1FD340",
];

/// True for `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Replaces UUIDs consistently with `00000000-0000-0000-0000-00000000000N`
/// (still UUID-shaped, so redacted outputs still parse).
#[derive(Default)]
pub struct Redactor {
    map: BTreeMap<String, String>,
}

impl Redactor {
    /// Redacts one text.
    pub fn text(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            if i + 36 <= s.len() && s.is_char_boundary(i + 36) && is_uuid(&s[i..i + 36]) {
                let before_ok = i == 0 || !b[i - 1].is_ascii_hexdigit();
                let after_ok = i + 36 == s.len() || !b[i + 36].is_ascii_hexdigit();
                if before_ok && after_ok {
                    let u = s[i..i + 36].to_ascii_uppercase();
                    if WELL_KNOWN.contains(&u.as_str()) {
                        out.push_str(&s[i..i + 36]);
                    } else {
                        let n = self.map.len() + 1;
                        let p = self
                            .map
                            .entry(u)
                            .or_insert_with(|| format!("00000000-0000-0000-0000-{n:012}"));
                        out.push_str(p);
                    }
                    i += 36;
                    continue;
                }
            }
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    /// Distinct UUIDs replaced so far.
    pub fn count(&self) -> usize {
        self.map.len()
    }
}

/// Removes passphrase hints (personal, though not secret) from a plist text.
fn drop_hints(s: &str) -> String {
    let mut out = Vec::new();
    let mut skip_next = false;
    for l in s.lines() {
        if skip_next && l.trim_start().starts_with("<string>") {
            out.push("\t\t\t<string>(hint removed)</string>".to_string());
            skip_next = false;
            continue;
        }
        skip_next = l.contains("<key>PassphraseHint</key>");
        if l.to_ascii_lowercase().contains("hint:") {
            out.push("(hint removed)".to_string());
            continue;
        }
        out.push(l.to_string());
    }
    out.join("\n") + "\n"
}

/// Writes the report (see the module docs) into `dir` (created, 0700).
///
/// # Errors
/// `dir` cannot be created or written. A diskutil command that fails does
/// not stop the report: its output is written and it is listed in `failures`.
pub fn report(mac: &DiskutilMac, dir: &Path, redact: bool) -> Result<ReportSummary> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, &e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("set the permissions of", dir, &e))?;
    }
    let mut red = Redactor::default();
    let mut files = Vec::new();
    let mut failures = Vec::new();
    let r = mac.runner();
    let write =
        |name: &str, text: &str, red: &mut Redactor, files: &mut Vec<String>| -> Result<()> {
            let body = if redact {
                drop_hints(&red.text(text))
            } else {
                text.to_string()
            };
            let p = dir.join(name);
            std::fs::write(&p, body).map_err(|e| Error::io("write", &p, &e))?;
            files.push(name.to_string());
            Ok(())
        };
    let run = |args: &[&str],
               name: &str,
               red: &mut Redactor,
               files: &mut Vec<String>,
               failures: &mut Vec<String>|
     -> Result<Vec<u8>> {
        match r.run(args, None) {
            Ok(o) => {
                if o.status != 0 {
                    failures.push(format!("{} (exit {})", r.shown(args), o.status));
                }
                let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
                if !o.stderr.is_empty() {
                    t.push_str("\n--- stderr ---\n");
                    t.push_str(&String::from_utf8_lossy(&o.stderr));
                }
                write(name, &t, red, files)?;
                Ok(o.stdout)
            }
            Err(e) => {
                failures.push(format!("{}: {}", r.shown(args), e.message()));
                Ok(Vec::new())
            }
        }
    };
    let list = run(
        &["apfs", "list", "-plist"],
        "diskutil-apfs-list.plist",
        &mut red,
        &mut files,
        &mut failures,
    )?;
    run(
        &["apfs", "list"],
        "diskutil-apfs-list.txt",
        &mut red,
        &mut files,
        &mut failures,
    )?;
    run(
        &["apfs", "listVolumeGroups", "-plist"],
        "diskutil-apfs-listVolumeGroups.plist",
        &mut red,
        &mut files,
        &mut failures,
    )?;
    run(
        &["apfs", "listVolumeGroups"],
        "diskutil-apfs-listVolumeGroups.txt",
        &mut red,
        &mut files,
        &mut failures,
    )?;
    let containers = parse::apfs_list(&list).unwrap_or_default();
    let stores = parse::physical_stores(&list).unwrap_or_default();
    for (_, des, st) in &stores {
        for s in des
            .iter()
            .chain(st)
            .collect::<std::collections::BTreeSet<_>>()
        {
            if parse::disk_name(s).is_some() {
                run(
                    &["info", "-plist", s],
                    &format!("diskutil-info-{s}.plist"),
                    &mut red,
                    &mut files,
                    &mut failures,
                )?;
            }
        }
    }
    for v in containers.iter().flat_map(|c| &c.volumes) {
        if parse::disk_name(&v.device).is_none() {
            continue;
        }
        let d = v.device.as_str();
        run(
            &["info", "-plist", d],
            &format!("diskutil-info-{d}.plist"),
            &mut red,
            &mut files,
            &mut failures,
        )?;
        run(
            &["info", d],
            &format!("diskutil-info-{d}.txt"),
            &mut red,
            &mut files,
            &mut failures,
        )?;
        if v.has_role("Data") || v.encryption {
            run(
                &["apfs", "listCryptoUsers", "-plist", d],
                &format!("diskutil-apfs-listCryptoUsers-{d}.plist"),
                &mut red,
                &mut files,
                &mut failures,
            )?;
            run(
                &["apfs", "listCryptoUsers", d],
                &format!("diskutil-apfs-listCryptoUsers-{d}.txt"),
                &mut red,
                &mut files,
                &mut failures,
            )?;
        }
    }
    let sys = mac.system();
    let (version, build) = super::rehearsal::os_version();
    let info = serde_json::json!({
        "version": 1,
        "os": sys.os, "product_version": version, "build": build,
        "machine": sys.machine,
        "diskutil": sys.diskutil,
        "redacted": redact,
        "failures": failures,
    });
    write("system.json", &format!("{info:#}\n"), &mut red, &mut files)?;
    if let Some(t) = super::rehearsal::cached_transcript(mac) {
        write(
            "rehearsal.txt",
            &(t.join("\n") + "\n"),
            &mut red,
            &mut files,
        )?;
    }
    if files.is_empty() {
        return Err(Error::new(
            ErrorKind::Failure,
            "the report has nothing in it",
        ));
    }
    Ok(ReportSummary {
        dir: dir.to_path_buf(),
        files,
        redacted: redact,
        uuids_replaced: red.count(),
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_replaced_consistently() {
        let mut r = Redactor::default();
        let a = "DA7A0000-5A5A-4B4B-8C8C-0000000000A5";
        let b = "a11ce000-1d2e-4f3a-9b8c-0123456789ab";
        let t = r.text(&format!(
            "{a} {b} {a} EBC6C064-0000-11AA-AA11-00306543ECAC x{a}"
        ));
        assert_eq!(
            t,
            "00000000-0000-0000-0000-000000000001 00000000-0000-0000-0000-000000000002 \
             00000000-0000-0000-0000-000000000001 EBC6C064-0000-11AA-AA11-00306543ECAC \
             x00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(r.count(), 2);
        assert_eq!(r.text("é ✓ no uuid"), "é ✓ no uuid");
    }

    #[test]
    fn hints_are_removed() {
        let t = drop_hints(
            "<key>PassphraseHint</key>\n<string>my dog</string>\nPassphrase Hint: my dog\n",
        );
        assert!(!t.contains("my dog"), "{t}");
    }
}
