//! One snapshot of a folder tree, for "no file changed" checks: every entry
//! under a folder as `lstat` sees it (links are never followed, FIFOs never
//! opened), so a change of content, kind, link target, permission, owner or
//! hard-link count shows.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What a path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// A regular file, with the SHA-256 of its bytes (hex).
    File(String),
    /// A symbolic link, with its target (never followed).
    Symlink(PathBuf),
    /// A FIFO, socket or device: never opened (reading a FIFO would block).
    Special,
}

/// One entry of a [`Tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// `st_mode`: the file type and the permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The hard-link count of a non-directory (a second name planted for a
    /// file shows). `None` for a directory: there it only counts the
    /// subdirectories (and is 1 on some file systems), which the tree's own
    /// entries already show.
    pub nlink: Option<u64>,
}

impl Entry {
    /// The SHA-256 of a regular file's bytes.
    pub fn sha256(&self) -> Option<&str> {
        match &self.kind {
            Kind::File(h) => Some(h),
            _ => None,
        }
    }
}

/// Every entry under a folder (not the folder itself), directories included,
/// by path relative to it.
pub type Tree = BTreeMap<String, Entry>;

/// Snapshots every entry under `dir`.
pub fn tree(dir: &Path) -> Tree {
    fn walk(base: &Path, d: &Path, m: &mut Tree) {
        let list =
            std::fs::read_dir(d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for e in list {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                walk(base, &p, m);
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(std::fs::read_link(&p).unwrap())
            } else if ft.is_file() {
                Kind::File(hex::encode(Sha256::digest(std::fs::read(&p).unwrap())))
            } else {
                Kind::Special
            };
            let nlink = (kind != Kind::Dir).then(|| meta.nlink());
            m.insert(
                rel,
                Entry {
                    kind,
                    mode: meta.mode(),
                    uid: meta.uid(),
                    gid: meta.gid(),
                    nlink,
                },
            );
        }
    }
    let mut m = Tree::new();
    walk(dir, dir, &mut m);
    m
}

/// The Mac's files: every entry but the Secure Enclave's counters (hardware
/// state, which a rejected attempt changes even in a dry run).
pub fn disk_tree(dir: &Path) -> Tree {
    let mut t = tree(dir);
    t.remove("SecureEnclave.plist");
    t
}

/// What differs between two snapshots, one line a path, for a readable failure
/// message (empty when they are equal).
pub fn tree_diff(before: &Tree, after: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (k, b) in before {
        match after.get(k) {
            None => out.push(format!("removed {k}: was {b:?}")),
            Some(a) if a != b => out.push(format!("changed {k}: {b:?} -> {a:?}")),
            Some(_) => {}
        }
    }
    for (k, a) in after {
        if !before.contains_key(k) {
            out.push(format!("new {k}: {a:?}"));
        }
    }
    out
}
