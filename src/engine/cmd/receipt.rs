//! `fvsync receipt [--fleet]`: what fvsync left on a Data volume, read with
//! no password and no unlock (docs/mdm.md). In a normal boot the Data volume
//! is `/System/Volumes/Data`; in Recovery, a volume already unlocked; on a
//! simulated Mac, its Data volume as it is.

use crate::engine::receipt::{self, FleetReport, ReceiptReport};
use crate::engine::secrets::record_rel;
use crate::engine::target;
use crate::error::{Error, ErrorKind, Result};
use crate::formats::preboot::Currency;
use crate::formats::record::UserRecord;
use crate::fsio::{Root, Want};
use crate::platform::{Platform, Volume};
use crate::text::escape;

/// The one readable Data volume the command reads, and its root.
///
/// Without `--volume`: the only readable one, or the only internal one
/// among several.
///
/// # Errors
/// 2 no such volume or several to choose from, 5 the volume is locked (no
/// password is asked here) or its files cannot be trusted.
fn volume(p: &dyn Platform, sel: Option<&str>) -> Result<(Volume, Root)> {
    let all = target::data_volumes(p, sel)?;
    let readable: Vec<&(Volume, Option<bool>)> = all
        .iter()
        .filter(|(v, _)| !v.locked && p.files(v).is_ok())
        .collect();
    let pick = match readable.as_slice() {
        [] => {
            let (v, _) = &all[0];
            return Err(Error::new(
                ErrorKind::Refused,
                format!(
                    "{} ({}) is locked, and receipts are read without a password",
                    v.device,
                    escape(&v.name)
                ),
            )
            .hint(format!(
                "read them in a normal boot, or unlock the volume first: diskutil apfs unlockVolume {}",
                v.device
            )));
        }
        [one] => &one.0,
        several => {
            let internal: Vec<_> = several.iter().filter(|(_, i)| *i == Some(true)).collect();
            match internal.as_slice() {
                [one] => &one.0,
                _ => {
                    let names: Vec<String> = several
                        .iter()
                        .map(|(v, _)| format!("{} ({})", v.device, escape(&v.name)))
                        .collect();
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!("several Data volumes are readable: {}", names.join(", ")),
                    )
                    .hint("name one with --volume DEV"));
                }
            }
        }
    };
    let root = target::open_root(p, pick)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Refused,
            format!("{} cannot be read", pick.device),
        )
    })?;
    Ok((pick.clone(), root))
}

/// `fvsync receipt`: the latest receipt.
///
/// # Errors
/// As [`volume`]; an untrusted receipts folder (5).
pub fn latest(p: &mut dyn Platform, sel: Option<&str>) -> Result<ReceiptReport> {
    let (_, root) = volume(p, sel)?;
    receipt::report(&root, p.description())
}

/// `fvsync receipt --fleet`: every user, read-only, with no password; the
/// Preboot lists compared with each record where they can be read.
///
/// # Errors
/// As [`volume`].
pub fn fleet(p: &mut dyn Platform, sel: Option<&str>) -> Result<FleetReport> {
    let (vol, root) = volume(p, sel)?;
    let mut r = receipt::fleet_check(&root);
    r.source = p.description();
    if !vol.filevault && !vol.encryption {
        return Ok(r);
    }
    let list = match target::preboot_users(p, &vol) {
        Ok(l) => l,
        Err(e) => {
            r.warnings.push(format!(
                "the Preboot lists were not compared: {}",
                escape(&e.to_string())
            ));
            return Ok(r);
        }
    };
    let crypto = p.crypto_users(&vol).unwrap_or_default();
    let names: Vec<String> = r.users.iter().map(|u| u.user.clone()).collect();
    for name in names {
        let Ok(rel) = record_rel(&name) else { continue };
        let Ok((bytes, _)) = root.read(&rel, Want::SYSTEM) else {
            continue;
        };
        let Ok(rec) = UserRecord::parse(&bytes) else {
            continue;
        };
        let Some(uuid) = rec
            .first_string("generateduid")
            .map(str::to_ascii_uppercase)
        else {
            continue;
        };
        let cu = crypto.iter().find(|c| c.uuid.eq_ignore_ascii_case(&uuid));
        let current = match target::preboot_currency(&list, &rec, &uuid, cu) {
            Some(Currency::Current) => Some(true),
            Some(Currency::Stale(_)) => Some(false),
            None => None,
        };
        r.set_preboot(&name, current);
    }
    Ok(r)
}
