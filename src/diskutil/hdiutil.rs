//! The hdiutil verbs the rehearsal needs for a throwaway disk: a RAM disk
//! (`attach -nomount ram://N`), or else a small disk image in a temporary
//! folder (`create`, `attach -nomount`), and `detach`. Outputs are read by
//! [`super::parse::hdiutil_attach`], which takes the `-plist` form or the
//! text form: which one a recoveryOS prints for a RAM disk is not documented,
//! so both are read.

use std::path::Path;

use super::parse;
use super::runner::{Output, Runner};
use crate::error::Result;

/// Sectors (512 bytes) of the RAM disk: 32 MiB.
pub const RAM_SECTORS: u64 = 65_536;
/// Size of the disk-image fallback.
pub const IMAGE_SIZE: &str = "32m";

/// What an attach gave: its output and the /dev entries it printed (the first
/// is the whole disk to detach).
pub struct Attached {
    /// The call's output.
    pub out: Output,
    /// `(diskN[sM], content hint)`, in hdiutil's order.
    pub entries: Vec<(String, String)>,
}

impl Attached {
    /// The whole disk, when the attach worked.
    pub fn disk(&self) -> Option<&str> {
        if self.out.status != 0 {
            return None;
        }
        self.entries
            .iter()
            .map(|(d, _)| d.as_str())
            .find(|d| !d.trim_start_matches("disk").contains('s'))
    }
}

fn attach(h: &Runner, args: &[&str]) -> Result<Attached> {
    let out = h.run(args, None)?;
    let entries = parse::hdiutil_attach(&out.stdout);
    Ok(Attached { out, entries })
}

/// `hdiutil attach -nomount ram://N`.
///
/// # Errors
/// hdiutil cannot be run.
pub fn attach_ram(h: &Runner) -> Result<(Vec<String>, Attached)> {
    let url = format!("ram://{RAM_SECTORS}");
    let args = vec!["attach".to_string(), "-nomount".to_string(), url];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok((args.clone(), attach(h, &a)?))
}

/// `hdiutil create -size 32m -fs APFS -volname fvsync-canary-image FILE`: an
/// image holding an (unencrypted) APFS container, into which the rehearsal
/// adds its encrypted volume.
///
/// # Errors
/// hdiutil cannot be run.
pub fn create_image(h: &Runner, file: &Path) -> Result<(Vec<String>, Output)> {
    let args = vec![
        "create".to_string(),
        "-size".to_string(),
        IMAGE_SIZE.to_string(),
        "-fs".to_string(),
        "APFS".to_string(),
        "-volname".to_string(),
        "fvsync-canary-image".to_string(),
        file.to_string_lossy().into_owned(),
    ];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok((args.clone(), h.run(&a, None)?))
}

/// `hdiutil attach -nomount FILE`.
///
/// # Errors
/// hdiutil cannot be run.
pub fn attach_image(h: &Runner, file: &Path) -> Result<(Vec<String>, Attached)> {
    let args = vec![
        "attach".to_string(),
        "-nomount".to_string(),
        file.to_string_lossy().into_owned(),
    ];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok((args.clone(), attach(h, &a)?))
}

/// `hdiutil detach /dev/diskN [-force]`.
///
/// # Errors
/// hdiutil cannot be run.
pub fn detach(h: &Runner, disk: &str, force: bool) -> Result<(Vec<String>, Output)> {
    let mut args = vec!["detach".to_string(), format!("/dev/{disk}")];
    if force {
        args.push("-force".to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok((args.clone(), h.run(&a, None)?))
}
