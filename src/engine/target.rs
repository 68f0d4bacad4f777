//! Finding the Data volume and the user a command works on, before any
//! unlock: from the Data volume's records when it is readable, else from the
//! Preboot volume's user list (which names FileVault users only, and is for
//! display: once the volume is open, the user's identity is the record's
//! `generateduid`, checked in [`crate::engine::observe`]).
//!
//! Names forgive a hurried technician: the short name matches exactly, then
//! case-insensitively, then by full name ("Alice Martin" → alice); a match
//! that is not exact is acted on only after the technician confirms it. A
//! name that matches nobody lists the users and suggests the nearest.

use crate::engine::secrets::{read_record, USERS_DIR};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::preboot::{
    self, AllUsersEntry, CryptoUserEntry, PrebootUser, ALL_USERS_INFO, CRYPTO_USER_INFO,
};
use crate::formats::record;
use crate::fsio::{Kind, Owner, Ownership, Rel, Root, Want};
use crate::platform::{CryptoUser, Platform, PrebootMount, Volume};
use crate::text::escape;

/// How the name given matched the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Match {
    /// The short name, exactly.
    Exact,
    /// The short name, in another case.
    Case,
    /// The full name.
    FullName,
}

/// The user and volume a command works on.
#[derive(Clone, Debug)]
pub struct Target {
    /// The Data volume.
    pub vol: Volume,
    /// Short name.
    pub user: String,
    /// Full name, when known.
    pub real_name: Option<String>,
    /// The GeneratedUID known before any unlock: the record's when the volume
    /// is readable, else the Preboot list's (display only until bound).
    pub uuid: Option<String>,
    /// The user's crypto-user entry on the volume (by that UUID), when it has one.
    pub crypto: Option<CryptoUser>,
    /// The UUID comes from the Preboot list (the volume is locked).
    pub from_preboot: bool,
    /// The volume's Preboot lists as read to find the user (a locked volume),
    /// so that they are read once per run.
    pub preboot: Option<PrebootList>,
    /// How the name matched.
    pub matched: Match,
    /// What was typed.
    pub typed: String,
}

/// True for an upper- or lower-case `8-4-4-4-12` hex UUID.
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

/// The Data volumes, optionally narrowed by `--volume` (device, name or UUID).
///
/// # Errors
/// The volume list cannot be read; `--volume` matches no Data volume, or
/// matches more than one (exit 2: an ambiguous selector is never resolved by
/// guessing).
pub fn data_volumes(p: &dyn Platform, volume: Option<&str>) -> Result<Vec<(Volume, Option<bool>)>> {
    let data: Vec<(Volume, Option<bool>)> = p
        .containers()?
        .into_iter()
        .flat_map(|c| {
            let internal = c.internal;
            c.volumes.into_iter().map(move |v| (v, internal))
        })
        .filter(|(v, _)| v.has_role("Data"))
        .collect();
    let Some(sel) = volume else {
        if data.is_empty() {
            return Err(Error::new(ErrorKind::Usage, "no APFS Data volume found")
                .hint("`fvsync volumes` lists the volumes"));
        }
        return Ok(data);
    };
    let sel = sel.trim_start_matches("/dev/");
    let found: Vec<(Volume, Option<bool>)> = data
        .into_iter()
        .filter(|(v, _)| v.device == sel || v.name == sel || v.uuid.eq_ignore_ascii_case(sel))
        .collect();
    match found.len() {
        0 => Err(Error::new(
            ErrorKind::Usage,
            format!("no Data volume matches '{}'", escape(sel)),
        )
        .hint("`fvsync volumes` lists the volumes")),
        1 => Ok(found),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!(
                "'{}' matches several Data volumes: {}",
                escape(sel),
                found
                    .iter()
                    .map(|(v, i)| format!("{} ({}{})", v.device, escape(&v.name), external_tag(*i)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("choose one by its device, e.g. --volume disk3s5")),
    }
}

/// ", external" for an external container's volume.
pub fn external_tag(internal: Option<bool>) -> &'static str {
    if internal == Some(false) {
        ", external"
    } else {
        ""
    }
}

/// How ownership reads on a volume: real, unless the platform says files are
/// all its creator's (a simulated Mac made without root).
///
/// # Errors
/// A volume mounted with ownership ignored: every file then reports uid 99,
/// so no owner check would mean anything (exit 5, with the command to fix it).
pub fn ownership(p: &dyn Platform, vol: &Volume) -> Result<Ownership> {
    if let Some(c) = p.simulated_owner() {
        return Ok(Ownership::Creator(c));
    }
    if !p.ownership_enabled(vol)? {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "{} ({}) is mounted with file ownership ignored; fvsync cannot tell whose files are whose",
                vol.device,
                escape(&vol.name)
            ),
        )
        .hint(format!(
            "turn ownership on for this mount, then run again: diskutil enableOwnership {}",
            vol.device
        )));
    }
    Ok(Ownership::Real)
}

/// Opens a readable Data volume's root (`None` when it is locked or not mounted).
///
/// # Errors
/// Ownership is ignored on it, or the folder cannot be opened.
pub fn open_root(p: &dyn Platform, vol: &Volume) -> Result<Option<Root>> {
    let Ok(path) = p.files(vol) else {
        return Ok(None);
    };
    let own = ownership(p, vol)?;
    Root::open(&path, own).map(Some)
}

/// A user as its record names it.
#[derive(Clone, Debug)]
pub struct RecordUser {
    /// Short name.
    pub name: String,
    /// Full name.
    pub real_name: Option<String>,
    /// GeneratedUID.
    pub uuid: Option<String>,
}

/// The users of a readable volume (uid 500 and up), from their records.
///
/// # Errors
/// The users folder cannot be listed.
pub fn record_users(root: &Root) -> Result<Vec<RecordUser>> {
    let dir = Rel::new(USERS_DIR)?;
    let mut out = Vec::new();
    for (file, m) in root.list(&dir)? {
        let Some(name) = file.strip_suffix(".plist") else {
            continue;
        };
        if m.kind != Kind::File || record::check_name(name).is_err() {
            continue;
        }
        let Ok((_, rec)) = read_record(root, name) else {
            continue;
        };
        if rec.uid().is_none_or(|u| u < 500) {
            continue;
        }
        out.push(RecordUser {
            name: name.to_string(),
            real_name: rec.real_name().map(str::to_string),
            uuid: rec.generated_uid(),
        });
    }
    Ok(out)
}

/// The Preboot volume's user lists for a Data volume, as read (display only).
#[derive(Clone, Debug)]
pub struct PrebootList {
    /// The Data volume they are for.
    pub volume: String,
    /// Its users, both files merged.
    pub users: Vec<PrebootUser>,
    /// `AllUsersInfo.plist`'s users, when the file exists.
    pub all_users: Option<Vec<AllUsersEntry>>,
    /// `CryptoUserInfo.plist`'s local users, when the file exists.
    pub crypto_users: Option<Vec<CryptoUserEntry>>,
}

/// Why the Preboot lists of a Data volume cannot be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrebootError {
    /// The volume's container has no Preboot volume.
    #[error("its container has no Preboot volume")]
    NoVolume,
    /// The Preboot volume cannot be found or mounted.
    #[error("the Preboot volume cannot be mounted ({0})")]
    Mount(String),
    /// No list under any of the folders Apple's login window looks in.
    #[error("the Preboot volume {device} holds no user list (looked under {tried})")]
    NoList {
        /// The Preboot volume.
        device: String,
        /// The folders looked in.
        tried: String,
    },
    /// A list exists but cannot be read or is malformed.
    #[error("{file} cannot be read ({why})")]
    Unreadable {
        /// The file, as shown.
        file: String,
        /// Why.
        why: String,
    },
}

/// The System volume of `vol`'s volume group (its UUID), from the listing.
fn system_uuid(p: &dyn Platform, vol: &Volume) -> Option<String> {
    let group = vol.group_uuid.as_ref()?;
    p.containers()
        .ok()?
        .into_iter()
        .filter(|c| c.reference == vol.container)
        .flat_map(|c| c.volumes)
        .find(|v| v.group_uuid.as_ref() == Some(group) && v.has_role("System"))
        .map(|v| v.uuid)
}

/// Reads the Preboot volume's user lists for a Data volume (display only):
/// mounts the Preboot volume read-only when it is not mounted
/// ([`Platform::preboot_mount`]), looks under the folders Apple's login window
/// uses ([`preboot::folder_candidates`]: the volume group's UUID, the System
/// volume's, the Data volume's), reads `AllUsersInfo.plist` and
/// `CryptoUserInfo.plist` there through [`Root`] (no link followed, size
/// capped, nesting bounded), merges them, and puts the Preboot volume back as
/// it was ([`Platform::preboot_release`]) on every path.
///
/// # Errors
/// No Preboot volume, it cannot be mounted, no list under any folder, or a
/// list cannot be read or is malformed.
pub fn preboot_users(
    p: &mut dyn Platform,
    vol: &Volume,
) -> std::result::Result<PrebootList, PrebootError> {
    let system = system_uuid(p, vol);
    let folders =
        preboot::folder_candidates(vol.group_uuid.as_deref(), system.as_deref(), &vol.uuid);
    let own = p
        .simulated_owner()
        .map_or(Ownership::Real, Ownership::Creator);
    let mount = match p.preboot_mount(vol) {
        Ok(Some(m)) => m,
        Ok(None) => return Err(PrebootError::NoVolume),
        Err(e) => return Err(PrebootError::Mount(e.message().to_string())),
    };
    let r = read_lists(&mount, &folders, own);
    p.preboot_release(mount);
    r.map(|mut l| {
        l.volume = vol.device.clone();
        l
    })
}

fn read_lists(
    mount: &PrebootMount,
    folders: &[String],
    own: Ownership,
) -> std::result::Result<PrebootList, PrebootError> {
    let root = Root::open(&mount.path, own).map_err(|e| PrebootError::Unreadable {
        file: crate::text::quote_path(&mount.path),
        why: e.message().to_string(),
    })?;
    // Display-only files: anyone may own them, and a bad one is never acted on.
    let want = Want {
        owner: Owner::Any,
        private: false,
    };
    for folder in folders {
        let read = |file: &str| -> std::result::Result<Option<(Vec<u8>, String)>, PrebootError> {
            let rel =
                Rel::new(&format!("{folder}/{file}")).map_err(|e| PrebootError::Unreadable {
                    file: file.to_string(),
                    why: e.message().to_string(),
                })?;
            let shown = root.show(&rel);
            match root.read_opt(&rel, want) {
                Ok(b) => Ok(b.map(|(b, _)| (b, shown))),
                Err(e) => Err(PrebootError::Unreadable {
                    file: shown,
                    why: e.message().to_string(),
                }),
            }
        };
        let all = read(ALL_USERS_INFO)?;
        let crypto = read(CRYPTO_USER_INFO)?;
        if all.is_none() && crypto.is_none() {
            continue;
        }
        let bad = |file: String, e: preboot::ListError| PrebootError::Unreadable {
            file,
            why: e.to_string(),
        };
        let all_users = all
            .map(|(b, f)| preboot::parse_all_users_info(&b).map_err(|e| bad(f, e)))
            .transpose()?;
        let crypto_users = crypto
            .map(|(b, f)| preboot::parse_crypto_user_info(&b).map_err(|e| bad(f, e)))
            .transpose()?;
        let users = preboot::merge(
            all_users.as_deref().unwrap_or_default(),
            crypto_users.as_deref().unwrap_or_default(),
        );
        return Ok(PrebootList {
            volume: String::new(),
            users,
            all_users,
            crypto_users,
        });
    }
    Err(PrebootError::NoList {
        device: mount.device.clone(),
        tried: folders.join(", "),
    })
}

/// Whether the Preboot lists (`list`) show what the record on the opened
/// volume says of the user (`rec`, `uuid` its bound GeneratedUID; `crypto`
/// the crypto user, for its own hint): `Stale` with why only for a visible
/// mismatch (another name, full name or hint, or no entry in a list that
/// names others); `None` when there is nothing to compare.
pub fn preboot_currency(
    list: &PrebootList,
    rec: &record::UserRecord,
    uuid: &str,
    crypto: Option<&CryptoUser>,
) -> Option<preboot::Currency> {
    let hints = [
        rec.first_string("hint"),
        crypto.and_then(|c| c.hint.as_deref()),
    ];
    let e = preboot::Expected {
        uuid,
        short_name: rec.name(),
        full_name: rec.real_name(),
        hints: &hints,
    };
    preboot::currency(list.all_users.as_deref(), list.crypto_users.as_deref(), &e)
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

struct Candidate {
    vol: Volume,
    internal: Option<bool>,
    name: String,
    real_name: Option<String>,
    uuid: Option<String>,
    from_preboot: bool,
}

/// Finds the user `typed` on the Data volumes (see the module docs).
///
/// # Errors
/// Invalid name (2); nobody matches (2, with the users and a suggestion);
/// several users or volumes match (2); the volume is locked and its Preboot
/// lists do not name the user (2: not a FileVault user, or misspelled); a
/// locked volume's Preboot lists cannot be read at all (5: who its FileVault
/// users are cannot be told).
pub fn find(p: &mut dyn Platform, typed: &str, volume: Option<&str>) -> Result<Target> {
    // A full name may hold spaces; nothing fvsync looks for holds a slash,
    // a control character, or is `.` or `..`.
    record::check_name(typed)?;
    let mut all: Vec<Candidate> = Vec::new();
    // The locked volumes, each with why its Preboot lists could not be read.
    let mut locked: Vec<(Volume, Option<PrebootError>)> = Vec::new();
    let mut lists: Vec<PrebootList> = Vec::new();
    let mut unreadable: Option<Error> = None;
    for (vol, internal) in data_volumes(p, volume)? {
        match open_root(p, &vol)? {
            Some(root) => {
                for u in record_users(&root)? {
                    all.push(Candidate {
                        vol: vol.clone(),
                        internal,
                        name: u.name,
                        real_name: u.real_name,
                        uuid: u.uuid,
                        from_preboot: false,
                    });
                }
                // A system account typed exactly (uid < 500) still counts, and a
                // record that exists but cannot be used says why.
                if record::check_name(typed).is_ok()
                    && !all
                        .iter()
                        .any(|c| c.name == typed && c.vol.device == vol.device)
                    && root
                        .meta(&crate::engine::secrets::record_rel(typed)?)?
                        .is_some()
                {
                    match read_record(&root, typed) {
                        Ok((_, rec)) => all.push(Candidate {
                            vol: vol.clone(),
                            internal,
                            name: typed.to_string(),
                            real_name: rec.real_name().map(str::to_string),
                            uuid: rec.generated_uid(),
                            from_preboot: false,
                        }),
                        Err(e) => unreadable = unreadable.or(Some(e)),
                    }
                }
            }
            None => match preboot_users(p, &vol) {
                Ok(list) => {
                    // Every user the lists name, crypto user or not: one whose
                    // keybag entry is missing is then told so by name (the
                    // command refuses: not a FileVault user of the volume).
                    let users = list.users.clone();
                    lists.push(list);
                    for u in users {
                        all.push(Candidate {
                            vol: vol.clone(),
                            internal,
                            name: u.name,
                            real_name: u.real_name.filter(|r| !r.is_empty()),
                            uuid: Some(u.uuid),
                            from_preboot: true,
                        });
                    }
                    locked.push((vol.clone(), None));
                }
                Err(e) => locked.push((vol.clone(), Some(e))),
            },
        }
    }
    let by = |m: Match| -> Vec<&Candidate> {
        all.iter()
            .filter(|c| match m {
                Match::Exact => c.name == typed,
                Match::Case => c.name.eq_ignore_ascii_case(typed),
                Match::FullName => c
                    .real_name
                    .as_deref()
                    .is_some_and(|r| r.trim().eq_ignore_ascii_case(typed.trim())),
            })
            .collect()
    };
    let mut chosen = None;
    for m in [Match::Exact, Match::Case, Match::FullName] {
        let found = by(m);
        if found.is_empty() {
            continue;
        }
        let users: std::collections::BTreeSet<&str> =
            found.iter().map(|c| c.name.as_str()).collect();
        if found.len() > 1 {
            let what = if users.len() > 1 {
                format!(
                    "'{}' matches several users: {}",
                    escape(typed),
                    users
                        .iter()
                        .map(|u| escape(u))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!(
                    "'{}' exists on several Data volumes: {}",
                    escape(typed),
                    found
                        .iter()
                        .map(|c| format!(
                            "{} ({}{})",
                            c.vol.device,
                            escape(&c.vol.name),
                            external_tag(c.internal)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(Error::new(ErrorKind::Usage, what).hint(if users.len() > 1 {
                "give the exact short name (see `fvsync users`)"
            } else {
                "choose one with --volume DEVICE"
            }));
        }
        chosen = Some((found[0], m));
        break;
    }
    let Some((c, matched)) = chosen else {
        if let Some(e) = unreadable {
            return Err(e);
        }
        return Err(no_match(typed, &all, &locked));
    };
    let crypto = match &c.uuid {
        Some(u) => p
            .crypto_users(&c.vol)?
            .into_iter()
            .find(|cu| cu.uuid.eq_ignore_ascii_case(u) && cu.kind == "LocalOpenDirectory"),
        None => None,
    };
    Ok(Target {
        vol: c.vol.clone(),
        user: c.name.clone(),
        real_name: c.real_name.clone(),
        uuid: c.uuid.clone(),
        crypto,
        from_preboot: c.from_preboot,
        preboot: lists
            .into_iter()
            .find(|l| c.from_preboot && l.volume == c.vol.device),
        matched,
        typed: typed.to_string(),
    })
}

fn no_match(typed: &str, all: &[Candidate], locked: &[(Volume, Option<PrebootError>)]) -> Error {
    // A locked volume whose Preboot lists cannot be read: who its FileVault
    // users are cannot be told, so "not one of them" cannot be said either.
    if let Some((vol, Some(why))) = locked.iter().find(|(_, e)| e.is_some()) {
        return Error::new(
            ErrorKind::Refused,
            format!(
                "cannot read the Preboot volume's user lists for {} ({}), which is locked: {}; \
                 fvsync cannot tell whether '{}' is one of its FileVault users",
                vol.device,
                escape(&vol.name),
                escape(&why.to_string()),
                escape(typed)
            ),
        )
        .hint(format!(
            "unlock the volume first with diskutil and a FileVault user's password \
             (`diskutil apfs unlockVolume {}`), then run this again: fvsync then finds the user in \
             the volume's own records (`fvsync users` lists them); or run `fvsync diagnose` for the \
             user once their password is known and the volume is unlocked",
            vol.device
        ));
    }
    let mut names: Vec<String> = all
        .iter()
        .map(|c| match &c.real_name {
            Some(r) => format!("{} ({})", escape(&c.name), escape(r)),
            None => escape(&c.name),
        })
        .collect();
    names.sort();
    names.dedup();
    let near = all
        .iter()
        .flat_map(|c| {
            let d = distance(&typed.to_lowercase(), &c.name.to_lowercase()).min(
                c.real_name.as_deref().map_or(usize::MAX, |r| {
                    distance(&typed.to_lowercase(), &r.to_lowercase())
                }),
            );
            (d <= 2).then_some((d, c.name.clone()))
        })
        .min();
    let list = if names.is_empty() {
        "none listed".to_string()
    } else {
        names.join(", ")
    };
    let mut hint = match &near {
        Some((_, n)) => format!("did you mean {}? ", escape(n)),
        None => String::new(),
    };
    if let Some((vol, _)) = locked
        .first()
        .filter(|_| all.iter().all(|c| c.from_preboot))
    {
        // The volume is locked: only its FileVault users can be named.
        hint.push_str(
            "only the FileVault users of a locked volume are listed; a user who is not one cannot \
             unlock it: an admin who is can start up normally and run \
             `sysadminctl -secureTokenOn USER -password - -adminUser ADMIN -adminPassword -`, \
             or reset the password with Apple's `resetpassword` and a recovery key",
        );
        return Error::new(
            ErrorKind::Usage,
            format!(
                "no FileVault user '{}' on {} ({}), which is locked; its FileVault users are: {list}",
                escape(typed),
                vol.device,
                escape(&vol.name),
            ),
        )
        .hint(hint);
    }
    hint.push_str("`fvsync users` lists the users");
    Error::new(
        ErrorKind::Usage,
        format!(
            "no user '{}' on the Data volume; the users are: {list}",
            escape(typed)
        ),
    )
    .hint(hint)
}

/// Whether the Preboot volume lists the crypto user `user` for `vol` (after
/// `updatePreboot`): reads its user lists with
/// [`preboot_users`] (which mounts the Preboot volume
/// read-only when needed and puts it back). `None`: no list could be read.
///
/// # Errors
/// None today (kept for callers that handle one).
pub fn preboot_lists_user(p: &mut dyn Platform, vol: &Volume, user: &str) -> Result<Option<bool>> {
    Ok(preboot_users(p, vol)
        .ok()
        .map(|l| l.users.iter().any(|u| u.uuid.eq_ignore_ascii_case(user))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert_eq!(distance("alcie", "alice"), 2);
        assert_eq!(distance("alice", "alice"), 0);
        assert_eq!(distance("bob", "alice"), 5);
        assert!(is_uuid("A11CE000-1D2E-4F3A-9B8C-0123456789AB"));
        assert!(!is_uuid("A11CE000-1D2E-4F3A-9B8C-0123456789A"));
    }
}
