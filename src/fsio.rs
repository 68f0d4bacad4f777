//! File I/O with the guarantees fvsync promises.
//!
//! Everything fvsync reads or writes on a Mac's Data volume goes through a
//! [`Root`]: the volume's root folder, opened once, from which every file is
//! reached relative to a folder handle with **no symbolic link followed
//! anywhere on the way** (each folder is opened with `O_NOFOLLOW |
//! O_DIRECTORY` relative to the one before it, so a link planted at any depth,
//! or swapped in between a check and a use, is refused, never followed). What
//! was opened is checked on the open descriptor (`fstat`) before it is
//! trusted: a regular file, one link (`nlink` 1: a hard link to another user's
//! file is refused), the owner the caller expects, and for system files not
//! writable by group or others.
//!
//! Every write is atomic: a temporary file created (`O_EXCL`) in the same
//! folder handle, written, given its mode and owner, fsynced, renamed over the
//! destination with `renameat` relative to that handle, then the folder is
//! fsynced. A crash leaves the old or the new file, never a mix. Every read is
//! size-capped, so a planted 100 MB file is an error, not a memory spike.
//!
//! This is the same idea as Linux's `openat2(RESOLVE_NO_SYMLINKS |
//! RESOLVE_BENEATH)` and macOS 11's `O_NOFOLLOW_ANY`, done one component at a
//! time so that it behaves the same on both systems (rustix, no `unsafe`).

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::error::{Error, ErrorKind, Result};
use crate::text::quote_path;

/// The largest file fvsync reads (user records, keychains, journals).
pub const MAX_READ: u64 = 16 * 1024 * 1024;

/// A path inside a volume: components checked never to leave it (no `..`, no
/// `.`, no empty part, no NUL, no `/` inside a part, at most 255 bytes each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rel(Vec<String>);

fn check_component(c: &str) -> Result<()> {
    let bad = c.is_empty()
        || c == "."
        || c == ".."
        || c.len() > 255
        || c.contains('/')
        || c.contains('\0');
    if bad {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "'{}' is not a file name fvsync accepts in a path",
                crate::text::escape(c)
            ),
        ));
    }
    Ok(())
}

impl Rel {
    /// A relative path such as `private/var/db/fvsync`.
    ///
    /// # Errors
    /// A component is empty, `.`, `..` or otherwise invalid (exit 5).
    pub fn new(path: &str) -> Result<Rel> {
        let parts: Vec<String> = path.split('/').map(str::to_string).collect();
        for p in &parts {
            check_component(p)?;
        }
        Ok(Rel(parts))
    }

    /// This path with one more component.
    ///
    /// # Errors
    /// `name` is not a valid component.
    pub fn join(&self, name: &str) -> Result<Rel> {
        check_component(name)?;
        let mut v = self.0.clone();
        v.push(name.to_string());
        Ok(Rel(v))
    }

    /// The folders, then the last component.
    fn split(&self) -> (&[String], &str) {
        match self.0.split_last() {
            Some((last, dirs)) => (dirs, last.as_str()),
            None => (&[], ""),
        }
    }

    /// The last component.
    pub fn name(&self) -> &str {
        self.split().1
    }

    /// As a relative `PathBuf` (for messages).
    pub fn to_path(&self) -> PathBuf {
        self.0.iter().collect()
    }
}

impl std::fmt::Display for Rel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// What a file on the volume is, as `fstat`/`lstat` saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Regular file, folder, link or something else.
    pub kind: Kind,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Hard links.
    pub nlink: u64,
    /// Size in bytes.
    pub len: u64,
}

/// The kind of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link.
    Link,
    /// A FIFO, socket or device.
    Other,
}

impl Meta {
    // `st_mode` and `st_nlink` are u16 on macOS, u32 and u64 on Linux.
    #[allow(clippy::useless_conversion)]
    fn of(st: &rustix::fs::Stat) -> Meta {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Link,
            _ => Kind::Other,
        };
        Meta {
            kind,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: u32::from(st.st_mode) & 0o7777,
            nlink: u64::from(st.st_nlink),
            len: st.st_size.max(0) as u64,
        }
    }
}

/// Who must own a file fvsync reads or replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// root (system files: records, fvsync's own journal, backups and log).
    Root,
    /// This uid (a user's home, keychain).
    Uid(u32),
    /// Anyone (only for files fvsync reads for display).
    Any,
}

/// How ownership reads on this volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Owners are real: a file owned by uid N is N's.
    Real,
    /// A simulated Mac created by a user who could not give files away (not
    /// root): every file is owned by that creator, who stands for every owner.
    Creator(u32),
}

impl Ownership {
    /// Whether a file owned by `actual` counts as owned by `want`.
    pub fn satisfies(self, want: Owner, actual: u32) -> bool {
        let want = match want {
            Owner::Any => return true,
            Owner::Root => 0,
            Owner::Uid(u) => u,
        };
        match self {
            Ownership::Real => actual == want,
            Ownership::Creator(c) => actual == c,
        }
    }
}

/// What a file must be before fvsync trusts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// Its owner.
    pub owner: Owner,
    /// Not writable by its group or by others (system files).
    pub private: bool,
}

impl Want {
    /// A system file: root-owned, not group/world-writable.
    pub const SYSTEM: Want = Want {
        owner: Owner::Root,
        private: true,
    };

    /// A file of user `uid`: owned by them, not group/world-writable.
    pub fn user(uid: u32) -> Want {
        Want {
            owner: Owner::Uid(uid),
            private: true,
        }
    }
}

/// Owner and mode for a file written by [`Root::write_atomic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    /// File mode bits (e.g. 0o600).
    pub mode: u32,
    /// Owner uid and gid, applied when running as root (ignored otherwise).
    pub owner: Option<(u32, u32)>,
}

impl Perms {
    /// Private to root: 0600.
    pub const PRIVATE: Perms = Perms {
        mode: 0o600,
        owner: None,
    };

    /// The permissions a file has now.
    pub fn of(meta: &Meta) -> Perms {
        Perms {
            mode: meta.mode,
            owner: Some((meta.uid, meta.gid)),
        }
    }
}

fn io_err(action: &str, path: &Path, e: rustix::io::Errno) -> Error {
    Error::io(action, path, &std::io::Error::from(e))
}

fn link_refusal(path: &Path) -> Error {
    Error::new(
        ErrorKind::Refused,
        format!(
            "{} is or passes through a symbolic link; fvsync never follows links on the Mac's volumes",
            quote_path(path)
        ),
    )
    .hint("someone may have tampered with the volume; inspect it by hand")
}

/// A Data volume's root folder, opened once. See the module docs.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    ownership: Ownership,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Root")
            .field("path", &self.path)
            .field("ownership", &self.ownership)
            .finish()
    }
}

impl Root {
    /// Opens the folder at `path` (a mount point the platform reported).
    ///
    /// # Errors
    /// It is missing or not a folder.
    pub fn open(path: &Path, ownership: Ownership) -> Result<Root> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open", path, e))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            ownership,
        })
    }

    /// The folder's path (for messages and for tools that take a path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How ownership reads here.
    pub fn ownership(&self) -> Ownership {
        self.ownership
    }

    /// The full path of `rel`, for messages.
    pub fn full(&self, rel: &Rel) -> PathBuf {
        self.path.join(rel.to_path())
    }

    /// `rel`, quoted and escaped for a message.
    pub fn show(&self, rel: &Rel) -> String {
        quote_path(&self.full(rel))
    }

    /// Opens the folders of `dirs` one by one, refusing any link.
    fn walk(&self, dirs: &[String], upto: &Rel) -> Result<OwnedFd> {
        let mut cur = rustix::io::dup(&self.fd).map_err(|e| io_err("open", &self.path, e))?;
        for (i, d) in dirs.iter().enumerate() {
            let next = rustix::fs::openat(
                &cur,
                d.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            );
            let shown: PathBuf = self.path.join(dirs[..=i].iter().collect::<PathBuf>());
            cur = match next {
                Ok(fd) => fd,
                Err(e) if e == rustix::io::Errno::LOOP => return Err(link_refusal(&shown)),
                Err(e) if e == rustix::io::Errno::NOTDIR => {
                    // A link to a file, or a file where a folder should be.
                    return match rustix::fs::statat(&cur, d.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) if Meta::of(&st).kind == Kind::Link => Err(link_refusal(&shown)),
                        _ => Err(Error::malformed(&shown, "not a folder")),
                    };
                }
                Err(e) => return Err(io_err("open", &shown, e)),
            };
        }
        let _ = upto;
        Ok(cur)
    }

    /// Opens `rel`'s parent folder.
    fn parent(&self, rel: &Rel) -> Result<(OwnedFd, String)> {
        let (dirs, name) = rel.split();
        Ok((self.walk(dirs, rel)?, name.to_string()))
    }

    /// What `rel` is (not following a link at its end), `None` when it or a
    /// folder on the way does not exist.
    ///
    /// # Errors
    /// A link on the way, or an I/O error.
    pub fn meta(&self, rel: &Rel) -> Result<Option<Meta>> {
        let (dir, name) = match self.parent(rel) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Meta::of(&st))),
            Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
            Err(e) => Err(io_err("examine", &self.full(rel), e)),
        }
    }

    /// Checks a folder on the way to a user's file: a real folder owned by
    /// `want.owner` (and, when `want.private`, not writable by others).
    ///
    /// # Errors
    /// Missing (exit 1), a link, or the wrong owner or mode (exit 5).
    pub fn check_dir(&self, rel: &Rel, want: Want) -> Result<Meta> {
        let m = self.meta(rel)?.ok_or_else(|| {
            Error::io(
                "open",
                &self.full(rel),
                &std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        match m.kind {
            Kind::Dir => {}
            Kind::Link => return Err(link_refusal(&self.full(rel))),
            _ => return Err(Error::malformed(&self.full(rel), "not a folder")),
        }
        self.check_owner(rel, &m, want)?;
        Ok(m)
    }

    fn check_owner(&self, rel: &Rel, m: &Meta, want: Want) -> Result<()> {
        if !self.ownership.satisfies(want.owner, m.uid) {
            let who = match want.owner {
                Owner::Root => "root".to_string(),
                Owner::Uid(u) => format!("uid {u}"),
                Owner::Any => "anyone".to_string(),
            };
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} is owned by uid {}, not by {who}; fvsync does not trust it",
                    self.show(rel),
                    m.uid
                ),
            )
            .hint("someone may have planted or replaced it; inspect it by hand"));
        }
        if want.private && m.mode & 0o022 != 0 {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} is writable by other users (mode {:04o}); fvsync does not trust it",
                    self.show(rel),
                    m.mode
                ),
            )
            .hint("someone may have tampered with it; inspect it by hand"));
        }
        Ok(())
    }

    fn check_file(&self, rel: &Rel, m: &Meta, want: Want) -> Result<()> {
        match m.kind {
            Kind::File => {}
            Kind::Link => return Err(link_refusal(&self.full(rel))),
            _ => return Err(Error::malformed(&self.full(rel), "not a regular file")),
        }
        if m.nlink != 1 {
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} has {} hard links; fvsync reads and replaces only files with one",
                    self.show(rel),
                    m.nlink
                ),
            )
            .hint("a hard link can make one user's file stand for another's; inspect it by hand"));
        }
        if m.len > MAX_READ {
            return Err(Error::malformed(
                &self.full(rel),
                format!("{} bytes, over the {MAX_READ} byte limit", m.len),
            ));
        }
        self.check_owner(rel, m, want)
    }

    /// Reads a file after checking, on what was opened, that it is what
    /// `want` says (see the module docs).
    ///
    /// # Errors
    /// Missing, a link anywhere on the way, not a regular file, more than one
    /// link, the wrong owner or mode, too large, or unreadable.
    pub fn read(&self, rel: &Rel, want: Want) -> Result<(Vec<u8>, Meta)> {
        let (dir, name) = self.parent(rel)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            if e == rustix::io::Errno::LOOP {
                link_refusal(&self.full(rel))
            } else {
                io_err("read", &self.full(rel), e)
            }
        })?;
        let m =
            Meta::of(&rustix::fs::fstat(&fd).map_err(|e| io_err("examine", &self.full(rel), e))?);
        self.check_file(rel, &m, want)?;
        let bytes = read_fd(fd, &self.full(rel))?;
        Ok((bytes, m))
    }

    /// Like [`Root::read`], `None` when the file does not exist.
    ///
    /// # Errors
    /// As [`Root::read`].
    pub fn read_opt(&self, rel: &Rel, want: Want) -> Result<Option<(Vec<u8>, Meta)>> {
        match self.meta(rel)? {
            None => Ok(None),
            Some(_) => self.read(rel, want).map(Some),
        }
    }

    /// Writes `data` to `rel` atomically (see the module docs). An existing
    /// destination must be a regular file with one link.
    ///
    /// # Errors
    /// Any I/O failure; the destination is then untouched and the temporary
    /// file removed.
    pub fn write_atomic(&self, rel: &Rel, data: &[u8], perms: Perms) -> Result<()> {
        crate::failpoint::hit("write-atomic")?;
        self.replace(rel, data, perms)
    }

    fn replace(&self, rel: &Rel, data: &[u8], perms: Perms) -> Result<()> {
        let full = self.full(rel);
        let (dir, name) = self.parent(rel)?;
        if let Ok(st) = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            let m = Meta::of(&st);
            if m.kind == Kind::Link {
                return Err(link_refusal(&full));
            }
            if m.kind != Kind::File || m.nlink != 1 {
                return Err(Error::new(
                    ErrorKind::Refused,
                    format!(
                        "{} is not a regular file with one link; refusing to replace it",
                        quote_path(&full)
                    ),
                ));
            }
        }
        let suffix: [u8; 8] = crate::crypto::random_bytes()
            .map_err(|e| Error::new(ErrorKind::Failure, format!("no randomness: {e}")))?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = format!(".fvsync-{hex}.tmp");
        let fd = rustix::fs::openat(
            &dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err("create a temporary file beside", &full, e))?;
        let written = (|| -> std::result::Result<(), rustix::io::Errno> {
            write_all(&fd, data)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(perms.mode as _))?;
            if let Some((uid, gid)) = perms.owner {
                if rustix::process::geteuid().is_root() {
                    rustix::fs::fchown(
                        &fd,
                        Some(rustix::fs::Uid::from_raw(uid)),
                        Some(rustix::fs::Gid::from_raw(gid)),
                    )?;
                }
            }
            rustix::fs::fsync(&fd)?;
            Ok(())
        })();
        drop(fd);
        let renamed =
            written.and_then(|()| rustix::fs::renameat(&dir, tmp.as_str(), &dir, name.as_str()));
        if let Err(e) = renamed {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
            return Err(io_err("write", &full, e));
        }
        rustix::fs::fsync(&dir).map_err(|e| io_err("sync the folder of", &full, e))
    }

    /// Creates the folders of `rel` that are missing (mode `mode`, owned by
    /// root), refusing a link or a folder not owned by root on the way.
    ///
    /// # Errors
    /// A folder cannot be created, or one on the way is a link.
    pub fn ensure_dir(&self, rel: &Rel, mode: u32) -> Result<()> {
        let mut cur = rustix::io::dup(&self.fd).map_err(|e| io_err("open", &self.path, e))?;
        for (i, d) in rel.0.iter().enumerate() {
            let shown: PathBuf = self.path.join(rel.0[..=i].iter().collect::<PathBuf>());
            match rustix::fs::mkdirat(&cur, d.as_str(), Mode::from_raw_mode(mode as _)) {
                Ok(()) => {
                    let _ = rustix::fs::fsync(&cur);
                }
                Err(e) if e == rustix::io::Errno::EXIST => {}
                Err(e) => return Err(io_err("create", &shown, e)),
            }
            let next = rustix::fs::openat(
                &cur,
                d.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
                    link_refusal(&shown)
                } else {
                    io_err("open", &shown, e)
                }
            })?;
            cur = next;
        }
        Ok(())
    }

    /// Appends one line to a log file (created 0600, root's), then fsyncs it.
    /// An existing log must be a regular root-owned file with one link.
    ///
    /// # Errors
    /// The file cannot be opened or written, or is not trusted.
    pub fn append_line(&self, rel: &Rel, line: &str) -> Result<()> {
        crate::failpoint::hit("append-line")?;
        let full = self.full(rel);
        let (dir, name) = self.parent(rel)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| {
            if e == rustix::io::Errno::LOOP {
                link_refusal(&full)
            } else {
                io_err("open", &full, e)
            }
        })?;
        let m = Meta::of(&rustix::fs::fstat(&fd).map_err(|e| io_err("examine", &full, e))?);
        self.check_file(rel, &m, Want::SYSTEM)?;
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        write_all(&fd, &bytes)
            .and_then(|()| rustix::fs::fsync(&fd))
            .map_err(|e| io_err("append to", &full, e))
    }

    /// The names in a folder (not `.` or `..`), each with what `lstat` says.
    ///
    /// # Errors
    /// The folder cannot be opened (a link on the way included) or read.
    pub fn list(&self, rel: &Rel) -> Result<Vec<(String, Meta)>> {
        let fd = self.walk(&rel.0, rel)?;
        let dup = rustix::io::dup(&fd).map_err(|e| io_err("open", &self.full(rel), e))?;
        let mut dir =
            rustix::fs::Dir::read_from(&dup).map_err(|e| io_err("list", &self.full(rel), e))?;
        let mut out = Vec::new();
        for entry in dir.by_ref() {
            let entry = entry.map_err(|e| io_err("list", &self.full(rel), e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            let Some(name) = name.to_str() else { continue };
            if name == "." || name == ".." {
                continue;
            }
            if let Ok(st) = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                out.push((name.to_string(), Meta::of(&st)));
            }
            if out.len() > 1_000_000 {
                return Err(Error::malformed(
                    &self.full(rel),
                    "more than a million entries",
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes a file (never a folder, never through a link).
    ///
    /// # Errors
    /// It cannot be removed.
    pub fn remove(&self, rel: &Rel) -> Result<()> {
        let (dir, name) = self.parent(rel)?;
        rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty())
            .map_err(|e| io_err("remove", &self.full(rel), e))?;
        rustix::fs::fsync(&dir).map_err(|e| io_err("sync the folder of", &self.full(rel), e))
    }
}

fn write_all(fd: &impl AsFd, mut data: &[u8]) -> std::result::Result<(), rustix::io::Errno> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(rustix::io::Errno::IO),
            Ok(n) => data = &data[n..],
            Err(e) if e == rustix::io::Errno::INTR => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_fd(fd: OwnedFd, shown: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    f.take(MAX_READ + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", shown, &e))?;
    if buf.len() as u64 > MAX_READ {
        return Err(Error::malformed(
            shown,
            "grew past the size limit while read",
        ));
    }
    Ok(buf)
}

/// Reads a file that is not on a Mac's volume (the simulated Mac's own model
/// files, fvsync's session files in the temporary folder): refuses a link at
/// the end, anything but a regular file, and files over [`MAX_READ`].
///
/// # Errors
/// Missing, a link, not a regular file, too large, or unreadable.
pub fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let (dir, name) = split_path(path)?;
    dir.read(
        &name,
        Want {
            owner: Owner::Any,
            private: false,
        },
    )
    .map(|(b, _)| b)
}

/// Transitional (path-based callers in `formats::record` that the engine no
/// longer uses): reads a root-only file (owned by root or by the effective
/// user, not writable by others, one link, not a link).
///
/// # Errors
/// As [`Root::read`].
pub fn read_trusted(path: &Path) -> Result<Vec<u8>> {
    let (dir, name) = split_path(path)?;
    let euid = rustix::process::geteuid().as_raw();
    let dir = Root {
        ownership: if euid == 0 {
            Ownership::Real
        } else {
            Ownership::Creator(euid)
        },
        ..dir
    };
    dir.read(&name, Want::SYSTEM).map(|(b, _)| b)
}

/// Writes a file that is not on a Mac's volume atomically (as
/// [`Root::write_atomic`] does, on its folder; the crash suite's
/// `write-atomic` failpoint is only on the Mac's volumes).
///
/// # Errors
/// As [`Root::write_atomic`].
pub fn write_atomic(path: &Path, data: &[u8], perms: Perms) -> Result<()> {
    let (dir, name) = split_path(path)?;
    dir.replace(&name, data, perms)
}

fn split_path(path: &Path) -> Result<(Root, Rel)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        Error::new(
            ErrorKind::Failure,
            format!("{} has no file name", quote_path(path)),
        )
    })?;
    Ok((Root::open(dir, Ownership::Real)?, Rel::new(name)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn me() -> Ownership {
        Ownership::Creator(rustix::process::geteuid().as_raw())
    }

    fn any() -> Want {
        Want {
            owner: Owner::Any,
            private: false,
        }
    }

    #[test]
    fn rel_refuses_escapes() {
        for bad in ["", "..", "a/../b", "/abs", "a//b", "./a", "a/\0"] {
            assert!(Rel::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Rel::new("a/b.c").unwrap().to_string(), "a/b.c");
        assert!(Rel::new("a").unwrap().join("..").is_err());
        assert!(Rel::new("a").unwrap().join("x/y").is_err());
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path(), me()).unwrap();
        let rel = Rel::new("f.plist").unwrap();
        fs::write(d.path().join("f.plist"), b"old").unwrap();
        root.write_atomic(&rel, b"new", Perms::PRIVATE).unwrap();
        assert_eq!(fs::read(d.path().join("f.plist")).unwrap(), b"new");
        assert_eq!(
            fs::metadata(d.path().join("f.plist"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn links_anywhere_on_the_way_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("real/sub")).unwrap();
        fs::write(d.path().join("real/sub/f"), b"secret").unwrap();
        std::os::unix::fs::symlink("real", d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("real/sub/f", d.path().join("flink")).unwrap();
        let root = Root::open(d.path(), me()).unwrap();
        for p in ["link/sub/f", "flink"] {
            let rel = Rel::new(p).unwrap();
            assert_eq!(
                root.read(&rel, any()).unwrap_err().kind(),
                ErrorKind::Refused,
                "{p}"
            );
            assert!(
                root.write_atomic(&rel, b"x", Perms::PRIVATE).is_err(),
                "{p}"
            );
            assert!(root.append_line(&rel, "x").is_err(), "{p}");
        }
        assert_eq!(
            root.ensure_dir(&Rel::new("link/new").unwrap(), 0o700)
                .unwrap_err()
                .kind(),
            ErrorKind::Refused
        );
        assert!(!d.path().join("real/new").exists());
        assert_eq!(fs::read(d.path().join("real/sub/f")).unwrap(), b"secret");
        assert_eq!(
            root.read(&Rel::new("real/sub/f").unwrap(), any())
                .unwrap()
                .0,
            b"secret"
        );
    }

    #[test]
    fn hard_links_and_owners_are_checked() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a"), b"x").unwrap();
        fs::hard_link(d.path().join("a"), d.path().join("b")).unwrap();
        let root = Root::open(d.path(), me()).unwrap();
        let e = root.read(&Rel::new("b").unwrap(), any()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.message().contains("hard links"), "{}", e.message());
        assert!(root.append_line(&Rel::new("b").unwrap(), "x").is_err());
        assert!(root
            .write_atomic(&Rel::new("b").unwrap(), b"y", Perms::PRIVATE)
            .is_err());
        fs::remove_file(d.path().join("b")).unwrap();
        // Owned by someone else (as real ownership sees it, unless we are that uid).
        let real = Root::open(d.path(), Ownership::Real).unwrap();
        let other = Want::user(4242);
        assert_eq!(
            real.read(&Rel::new("a").unwrap(), other)
                .unwrap_err()
                .kind(),
            ErrorKind::Refused
        );
    }

    #[test]
    fn trusted_reads_refuse_loose_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.plist");
        fs::write(&p, b"x").unwrap();
        let root = Root::open(d.path(), me()).unwrap();
        let rel = Rel::new("r.plist").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(root.read(&rel, Want::SYSTEM).unwrap().0, b"x");
        for mode in [0o620, 0o602, 0o666] {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                root.read(&rel, Want::SYSTEM).unwrap_err().kind(),
                ErrorKind::Refused
            );
            assert_eq!(root.read(&rel, any()).unwrap().0, b"x");
        }
    }

    #[test]
    fn caps_reads_and_refuses_fifos() {
        let d = tempfile::tempdir().unwrap();
        let f = fs::File::create(d.path().join("big")).unwrap();
        f.set_len(MAX_READ + 1).unwrap();
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let root = Root::open(d.path(), me()).unwrap();
        assert!(root.read(&Rel::new("big").unwrap(), any()).is_err());
        assert!(root.read(&Rel::new("fifo").unwrap(), any()).is_err());
    }

    #[test]
    fn ensure_dir_and_list_and_remove() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path(), me()).unwrap();
        let rel = Rel::new("private/var/db/fvsync").unwrap();
        root.ensure_dir(&rel, 0o700).unwrap();
        root.ensure_dir(&rel, 0o700).unwrap();
        let f = rel.join("x.json").unwrap();
        root.write_atomic(&f, b"{}", Perms::PRIVATE).unwrap();
        let names: Vec<String> = root
            .list(&rel)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, vec!["x.json"]);
        assert_eq!(root.meta(&f).unwrap().unwrap().kind, Kind::File);
        root.remove(&f).unwrap();
        assert!(root.meta(&f).unwrap().is_none());
        assert!(root
            .meta(&Rel::new("no/such/thing").unwrap())
            .unwrap()
            .is_none());
    }
}
