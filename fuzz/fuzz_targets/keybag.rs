//! The simulated Mac's keybag (`Keybags/<uuid>.plist`) through its real
//! validation: the input replaces the Data volume's keybag of a simulated Mac
//! made once per process, then `SimMac::keybag` (format, UUIDs, iteration
//! counts, key and salt lengths) and `Platform::crypto_users` read it. The
//! Preboot user list parsers (`parse_all_users_info`, `parse_crypto_user_info`) and the description file's
//! serde shape (`MacFile`) get the same bytes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use fvsync::platform::{Platform, Volume};
use fvsync::sim::{Keybag, MacFile, SimMac};
use libfuzzer_sys::fuzz_target;

struct World {
    _dir: tempfile::TempDir,
    mac: SimMac,
    vol: Volume,
    keybag: PathBuf,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mac");
        fvsync::sim::scenarios::create(
            &root,
            "fv-old-login-new",
            fvsync::sim::scenarios::Iterations::all(1000),
        )
        .unwrap();
        let mac = SimMac::open(&root).unwrap();
        let vol = mac
            .containers()
            .unwrap()
            .into_iter()
            .flat_map(|c| c.volumes)
            .find(|v| v.has_role("Data"))
            .unwrap();
        let keybag = root
            .join(fvsync::sim::KEYBAGS_DIR)
            .join(format!("{}.plist", vol.uuid));
        World {
            _dir: dir,
            mac,
            vol,
            keybag,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = plist::from_bytes::<Keybag>(data);
    let _ = plist::from_bytes::<MacFile>(data);
    let _ = fvsync::formats::preboot::parse_all_users_info(data);
    let _ = fvsync::formats::preboot::parse_crypto_user_info(data);
    let w = world();
    std::fs::write(&w.keybag, data).unwrap();
    if let Ok(Some(kb)) = w.mac.keybag(&w.vol) {
        // What validation let through is usable: lengths as promised.
        assert_eq!(kb.wrapped_vek.as_ref().len(), 40);
        for u in &kb.crypto_users {
            assert_eq!(u.salt.as_ref().len(), 16);
            assert!(matches!(u.wrapped_kek.as_ref().len(), 24 | 40));
        }
    }
    let _ = w.mac.crypto_users(&w.vol);
});
