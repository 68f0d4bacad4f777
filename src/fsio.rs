//! File I/O with the guarantees fvsync promises: every write is atomic (a temp file
//! in the same folder, fsync, rename, fsync the folder), keeps the owner and mode it
//! is told to, and never follows a symlink at the destination; every read is
//! size-capped so a planted 100 MB plist is an error, not a memory spike.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// The largest file fvsync reads (user records, keybags, keychains, journals).
pub const MAX_READ: u64 = 16 * 1024 * 1024;

/// Reads a regular file, refusing symlinks and files over `MAX_READ`.
///
/// The file is opened with `O_NOFOLLOW | O_NONBLOCK` (a planted FIFO or device
/// cannot block the read) and checked again on the open descriptor, so a file
/// swapped for a link or a FIFO between the check and the open is refused too.
///
/// # Errors
/// Missing, a symlink, not a regular file, too large, or unreadable.
pub fn read_capped(path: &Path) -> Result<Vec<u8>> {
    read_checked(path, false)
}

/// Like [`read_capped`], for files only root may write (user records): also
/// refuses a file that is owned by anyone but root or the effective user, or
/// that is writable by its group or by everyone (exit 5): such a file may
/// have been planted or altered by someone other than the system.
///
/// # Errors
/// As [`read_capped`], and untrusted ownership or mode.
pub fn read_trusted(path: &Path) -> Result<Vec<u8>> {
    read_checked(path, true)
}

fn symlink_refusal(path: &Path) -> Error {
    Error::new(
        ErrorKind::Refused,
        format!(
            "{} is a symbolic link; fvsync never follows links in system folders",
            crate::text::quote_path(path)
        ),
    )
    .hint("someone may have tampered with the volume; inspect the file by hand")
}

fn check_meta(path: &Path, meta: &fs::Metadata, trusted: bool) -> Result<()> {
    if meta.file_type().is_symlink() {
        return Err(symlink_refusal(path));
    }
    if !meta.is_file() {
        return Err(Error::malformed(path, "not a regular file"));
    }
    if meta.len() > MAX_READ {
        return Err(Error::malformed(
            path,
            format!("{} bytes, over the {} byte limit", meta.len(), MAX_READ),
        ));
    }
    if trusted {
        let euid = nix::unistd::geteuid().as_raw();
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} is owned by uid {}, not by root; fvsync does not trust it",
                    crate::text::quote_path(path),
                    meta.uid()
                ),
            )
            .hint("someone may have planted or replaced the file; inspect it by hand (macOS keeps it root-owned, mode 0600)"));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} is writable by other users (mode {:04o}); fvsync does not trust it",
                    crate::text::quote_path(path),
                    meta.mode() & 0o7777
                ),
            )
            .hint("someone may have tampered with the file; inspect it by hand (macOS keeps it root-owned, mode 0600)"));
        }
    }
    Ok(())
}

fn read_checked(path: &Path, trusted: bool) -> Result<Vec<u8>> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::io("read", path, &e))?;
    check_meta(path, &meta, trusted)?;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                symlink_refusal(path)
            } else {
                Error::io("read", path, &e)
            }
        })?;
    // The same checks on what was actually opened.
    let meta = f.metadata().map_err(|e| Error::io("examine", path, &e))?;
    check_meta(path, &meta, trusted)?;
    let mut buf = Vec::with_capacity(meta.len() as usize);
    Read::by_ref(&mut f)
        .take(MAX_READ + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, &e))?;
    if buf.len() as u64 > MAX_READ {
        return Err(Error::malformed(
            path,
            "grew past the size limit while read",
        ));
    }
    Ok(buf)
}

/// Owner and mode for a file written by [`write_atomic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// File mode bits (e.g. 0o600).
    pub mode: u32,
    /// Owner uid and gid, applied when running as root (ignored otherwise).
    pub owner: Option<(u32, u32)>,
}

impl Perms {
    /// The permissions of an existing file.
    ///
    /// # Errors
    /// The file cannot be examined.
    pub fn of(path: &Path) -> Result<Perms> {
        let m = fs::symlink_metadata(path).map_err(|e| Error::io("examine", path, &e))?;
        Ok(Perms {
            mode: m.permissions().mode() & 0o7777,
            owner: Some((m.uid(), m.gid())),
        })
    }

    /// Private to root: 0600.
    pub const PRIVATE: Perms = Perms {
        mode: 0o600,
        owner: None,
    };
}

/// Writes `data` to `path` atomically: a temp file in the same folder, fsync,
/// rename over the destination, fsync the folder. A crash leaves either the old
/// or the new file, never a mix.
///
/// # Errors
/// Any I/O failure; the destination is then untouched and the temp file removed.
pub fn write_atomic(path: &Path, data: &[u8], perms: Perms) -> Result<()> {
    crate::failpoint::hit("write-atomic")?;
    let dir = path
        .parent()
        .ok_or_else(|| Error::new(ErrorKind::Failure, "cannot write to a path with no folder"))?;
    if let Ok(m) = fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} is a symbolic link; refusing to write through it",
                    crate::text::quote_path(path)
                ),
            ));
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".fvsync-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, &e))?;
    let result = (|| -> std::io::Result<()> {
        tmp.as_file_mut().write_all(data)?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(perms.mode))?;
        if let Some((uid, gid)) = perms.owner {
            if nix::unistd::geteuid().is_root() {
                std::os::unix::fs::fchown(tmp.as_file(), Some(uid), Some(gid))?;
            }
        }
        tmp.as_file().sync_all()
    })();
    result.map_err(|e| Error::io("write", path, &e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("replace", path, &e.error))?;
    sync_dir(dir)
}

/// Creates a folder (and parents) with the given mode if missing.
///
/// # Errors
/// The folder cannot be created.
pub fn ensure_dir(path: &Path, mode: u32) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path).map_err(|e| Error::io("create", path, &e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("set permissions on", path, &e))
}

/// Appends one line to a log file (created 0600), then fsyncs it.
///
/// # Errors
/// The file cannot be opened or written.
pub fn append_line(path: &Path, line: &str) -> Result<()> {
    crate::failpoint::hit("append-line")?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io("open", path, &e))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("append to", path, &e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.plist");
        fs::write(&p, b"old").unwrap();
        write_atomic(&p, b"new", Perms::PRIVATE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // No temp file is left behind.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        fs::write(&target, b"secret").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_capped(&link).unwrap_err().kind(), ErrorKind::Refused);
        assert!(write_atomic(&link, b"x", Perms::PRIVATE).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"secret");
    }

    #[test]
    fn trusted_reads_refuse_loose_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.plist");
        fs::write(&p, b"x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_trusted(&p).unwrap(), b"x");
        for mode in [0o620, 0o602, 0o666] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(read_trusted(&p).unwrap_err().kind(), ErrorKind::Refused);
            // Files fvsync does not require to be root-only are still read.
            assert_eq!(read_capped(&p).unwrap(), b"x");
        }
    }

    #[test]
    fn caps_reads() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big");
        let f = File::create(&p).unwrap();
        f.set_len(MAX_READ + 1).unwrap();
        assert!(read_capped(&p).is_err());
    }
}
