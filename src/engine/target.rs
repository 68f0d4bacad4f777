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
use crate::formats::record;
use crate::fsio::{Kind, Ownership, Rel, Root};
use crate::platform::{CryptoUser, Platform, PrebootUser, Volume};
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
    /// How the name matched.
    pub matched: Match,
    /// What was typed.
    pub typed: String,
    /// Whether the volume's container is internal (None: unknown).
    pub internal: Option<bool>,
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

/// The users the Preboot volume lists for a Data volume (display only).
///
/// # Errors
/// The list exists but cannot be read.
pub fn preboot_users(p: &mut dyn Platform, vol: &Volume) -> Result<Option<Vec<PrebootUser>>> {
    p.preboot_users(vol)
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
/// list does not name the user (5: not a FileVault user, or misspelled).
pub fn find(p: &mut dyn Platform, typed: &str, volume: Option<&str>) -> Result<Target> {
    // A full name may hold spaces; nothing fvsync looks for holds a slash,
    // a control character, or is `.` or `..`.
    record::check_name(typed)?;
    let mut all: Vec<Candidate> = Vec::new();
    let mut locked_without_list = Vec::new();
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
            None => match preboot_users(p, &vol)? {
                Some(list) => {
                    for u in list {
                        all.push(Candidate {
                            vol: vol.clone(),
                            internal,
                            name: u.name,
                            real_name: Some(u.real_name).filter(|r| !r.is_empty()),
                            uuid: Some(u.uuid),
                            from_preboot: true,
                        });
                    }
                    locked_without_list.push((vol.clone(), true));
                }
                None => locked_without_list.push((vol.clone(), false)),
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
        return Err(no_match(p, typed, &all, &locked_without_list));
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
        matched,
        typed: typed.to_string(),
        internal: c.internal,
    })
}

fn no_match(_p: &dyn Platform, typed: &str, all: &[Candidate], locked: &[(Volume, bool)]) -> Error {
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
    if let Some((vol, has_list)) = locked
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
                "no FileVault user '{}' on {} ({}), which is locked; {}: {list}",
                escape(typed),
                vol.device,
                escape(&vol.name),
                if *has_list {
                    "its FileVault users are"
                } else {
                    "its Preboot list cannot be read; users"
                }
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
