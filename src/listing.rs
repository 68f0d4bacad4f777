//! `fvsync volumes` and `fvsync users`: read-only listings. They never unlock
//! anything, never ask for a password and never write a byte.

use crate::engine::report::{self, VolumeItem};
use serde::Serialize;

use crate::error::Result;
use crate::formats::record::{self, UserRecord};
use crate::output::{Cell, Ui};
use crate::platform::Platform;
use crate::text::escape;

/// `fvsync volumes`.
///
/// # Errors
/// The volume list cannot be read.
pub fn volumes(p: &dyn Platform, ui: &mut Ui) -> Result<u8> {
    let containers = p.containers()?;
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for c in &containers {
        for v in &c.volumes {
            let n = p.crypto_users(v)?.len();
            let mut row: Vec<Cell> = vec![
                v.device.clone().into(),
                format!(
                    "{}{}",
                    v.name,
                    if c.internal == Some(false) {
                        " (external)"
                    } else {
                        ""
                    }
                )
                .into(),
                if v.roles.is_empty() {
                    "-".into()
                } else {
                    v.roles.join(",").into()
                },
                yes_no(v.filevault).into(),
                yes_no(v.locked).into(),
                n.to_string().into(),
            ];
            if ui.verbose {
                row.push(v.mount_point.clone().unwrap_or_else(|| "-".into()).into());
            }
            rows.push(row);
            js.push(VolumeItem {
                container: c.reference.clone(),
                container_uuid: c.uuid.clone(),
                internal: c.internal,
                device: v.device.clone(),
                uuid: v.uuid.clone(),
                name: v.name.clone(),
                roles: v.roles.clone(),
                encryption: v.encryption,
                filevault: v.filevault,
                locked: v.locked,
                mount_point: v.mount_point.clone(),
                volume_group: v.group_uuid.clone(),
                crypto_users: n,
            });
        }
    }
    if ui.json {
        let doc = report::Volumes {
            version: report::VERSION,
            source: p.description(),
            volumes: js,
        };
        ui.json_value(&serde_json::to_value(&doc).unwrap_or_default());
    } else {
        ui.heading(&format!("Volumes of {}", p.description()));
        // 80 columns: the mount point (often long) with --verbose only;
        // "users" counts the volume's crypto users (SecureToken holders,
        // recovery keys included).
        let mut head = vec!["device", "name", "roles", "FileVault", "locked", "users"];
        if ui.verbose {
            head.push("mount point");
        }
        ui.table(&head, &rows);
    }
    Ok(0)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// One user in `fvsync users`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields))]
pub struct UserInfo {
    /// Short name.
    pub name: String,
    /// Full name.
    pub real_name: Option<String>,
    /// uid.
    pub uid: Option<i64>,
    /// GeneratedUID.
    pub generated_uid: Option<String>,
    /// In the admin group (None: unknown, volume locked).
    pub admin: Option<bool>,
    /// A crypto user of the volume.
    pub filevault_user: bool,
    /// `;SecureToken;` in authentication_authority (None: unknown).
    pub secure_token: Option<bool>,
    /// Hash schemes with iteration counts.
    pub hash_schemes: Vec<String>,
    /// A login keychain exists (None: unknown).
    pub keychain: Option<bool>,
    /// passwordLastSetTime, RFC 3339.
    pub password_last_set: Option<String>,
    /// Why some fields are unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `fvsync users [--volume DEV] [--all]`.
///
/// # Errors
/// The volume list or a record folder cannot be read.
pub fn users(p: &mut dyn Platform, ui: &mut Ui, volume: Option<&str>, all: bool) -> Result<u8> {
    let vols = crate::engine::target::data_volumes(p, volume)?;
    let mut out = Vec::new();
    for (vol, internal) in &vols {
        let crypto = p.crypto_users(vol)?;
        let is_crypto = |uuid: &Option<String>| {
            uuid.as_ref()
                .is_some_and(|u| crypto.iter().any(|c| c.uuid.eq_ignore_ascii_case(u)))
        };
        let mut list = Vec::new();
        match crate::engine::target::open_root(p, vol)? {
            Some(root) => {
                let admins = crate::engine::secrets::admin_members(&root);
                let dir = crate::fsio::Rel::new(crate::engine::secrets::USERS_DIR)?;
                let names: Vec<String> = root
                    .list(&dir)?
                    .into_iter()
                    .filter_map(|(n, _)| n.strip_suffix(".plist").map(str::to_string))
                    .collect();
                for name in names {
                    let rec: Option<UserRecord> = record::check_name(&name)
                        .ok()
                        .and_then(|()| crate::engine::secrets::read_record(&root, &name).ok())
                        .map(|(_, r)| r);
                    let Some(rec) = rec else {
                        list.push(UserInfo {
                            name: name.clone(),
                            real_name: None,
                            uid: None,
                            generated_uid: None,
                            admin: None,
                            filevault_user: false,
                            secure_token: None,
                            hash_schemes: vec![],
                            keychain: None,
                            password_last_set: None,
                            note: Some("record unreadable, malformed or not trusted".into()),
                        });
                        continue;
                    };
                    let uid = rec.uid();
                    if !all && uid.is_none_or(|u| u < 500) {
                        continue;
                    }
                    let uuid = rec.generated_uid();
                    let schemes = match rec.shadow_hash() {
                        Ok(Some(sh)) => {
                            let mut v = Vec::new();
                            if let Some(s) = &sh.srp {
                                v.push(format!(
                                    "{} ({})",
                                    crate::formats::shadowhash::SRP,
                                    s.iterations
                                ));
                            }
                            if let Some(s) = &sh.salted {
                                v.push(format!(
                                    "{} ({})",
                                    crate::formats::shadowhash::SALTED,
                                    s.iterations
                                ));
                            }
                            v.extend(
                                sh.other_schemes
                                    .iter()
                                    .map(|s| format!("{s} (unsupported)")),
                            );
                            v
                        }
                        Ok(None) => vec![],
                        Err(e) => vec![format!("malformed: {}", escape(&e))],
                    };
                    let keychain = crate::engine::secrets::identity(&root, &dir, &rec)
                        .ok()
                        .and_then(|id| id.home)
                        .and_then(|h| crate::engine::secrets::keychain_rel(&h).ok())
                        .map(|k| root.meta(&k).ok().flatten().is_some());
                    list.push(UserInfo {
                        name: rec.name().to_string(),
                        real_name: rec.real_name().map(str::to_string),
                        uid,
                        filevault_user: is_crypto(&uuid),
                        generated_uid: uuid,
                        admin: Some(admins.iter().any(|a| a == rec.name())),
                        secure_token: Some(rec.has_secure_token()),
                        hash_schemes: schemes,
                        keychain,
                        password_last_set: rec
                            .account_policy()
                            .and_then(|p| p.password_last_set)
                            .map(|t| crate::engine::journal::rfc3339(t as i64)),
                        note: None,
                    });
                }
            }
            None => {
                let users = match crate::engine::target::preboot_users(p, vol) {
                    Ok(l) => l.users,
                    Err(e) => {
                        ui.warn(&format!(
                            "{} ({}) is locked and its Preboot volume's user lists cannot be read: {}; \
                             unlock it to list its users",
                            vol.device,
                            escape(&vol.name),
                            escape(&e.to_string())
                        ));
                        Vec::new()
                    }
                };
                for u in users {
                    let uuid = Some(u.uuid.clone());
                    list.push(UserInfo {
                        name: u.name,
                        real_name: u.real_name,
                        uid: None,
                        filevault_user: is_crypto(&uuid),
                        generated_uid: uuid,
                        admin: u.admin,
                        secure_token: None,
                        hash_schemes: vec![],
                        keychain: None,
                        password_last_set: None,
                        note: Some(
                            "volume locked: from the Preboot list; the rest needs an unlock".into(),
                        ),
                    });
                }
            }
        }
        out.push((vol.clone(), *internal, list));
    }
    if ui.json {
        let vols: Vec<_> = out
            .iter()
            .map(|(v, internal, l)| report::UsersOfVolume {
                device: v.device.clone(),
                name: v.name.clone(),
                external: *internal == Some(false),
                locked: v.locked,
                users: l.clone(),
            })
            .collect();
        let doc = report::Users {
            version: report::VERSION,
            source: p.description(),
            volumes: vols,
        };
        ui.json_value(&serde_json::to_value(&doc).unwrap_or_default());
        return Ok(0);
    }
    ui.heading(&format!("Users of {}", p.description()));
    for (v, _, list) in &out {
        ui.line("");
        ui.para_indent(
            &format!(
                "{} ({}){}",
                v.device,
                escape(&v.name),
                if v.locked {
                    ": locked; names from the Preboot volume, the rest needs an unlock"
                } else {
                    ""
                },
            ),
            "",
            "  ",
        );
        let opt = |b: Option<bool>| match b {
            Some(true) => "yes".to_string(),
            Some(false) => "no".to_string(),
            None => "?".to_string(),
        };
        if v.locked {
            // Only what the Preboot list tells: a narrow table for an 80-column Terminal.
            let rows: Vec<Vec<Cell>> = list
                .iter()
                .map(|u| {
                    vec![
                        format!("  {}", u.name).into(),
                        u.real_name.clone().unwrap_or_default().into(),
                        u.generated_uid.clone().unwrap_or_else(|| "?".into()).into(),
                        yes_no(u.filevault_user).into(),
                    ]
                })
                .collect();
            ui.table(&["  user", "name", "GeneratedUID", "FileVault"], &rows);
            continue;
        }
        // Fits 80 columns; the GeneratedUID, hash schemes and when the password
        // was set come with --verbose.
        let verbose = ui.verbose;
        let rows: Vec<Vec<Cell>> = list
            .iter()
            .map(|u| {
                let mut r: Vec<Cell> = vec![
                    format!("  {}", u.name).into(),
                    u.real_name.clone().unwrap_or_default().into(),
                    u.uid
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "?".into())
                        .into(),
                    opt(u.admin).into(),
                    yes_no(u.filevault_user).into(),
                    opt(u.secure_token).into(),
                    opt(u.keychain).into(),
                ];
                if verbose {
                    r.push(u.generated_uid.clone().unwrap_or_else(|| "?".into()).into());
                    r.push(
                        if u.hash_schemes.is_empty() {
                            "-".to_string()
                        } else {
                            u.hash_schemes.join(", ")
                        }
                        .into(),
                    );
                    r.push(
                        u.password_last_set
                            .clone()
                            .unwrap_or_else(|| "-".into())
                            .into(),
                    );
                }
                if let Some(n) = &u.note {
                    r.push(format!("({n})").into());
                }
                r
            })
            .collect();
        let mut header = vec![
            "  user",
            "name",
            "uid",
            "admin",
            "FileVault",
            "SecureToken",
            "keychain",
        ];
        if verbose {
            header.extend(["GeneratedUID", "hashes (iterations)", "password set"]);
        }
        ui.table(&header, &rows);
    }
    Ok(0)
}
