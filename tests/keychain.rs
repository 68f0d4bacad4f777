//! The login keychain: the real keychainbreaker file re-keyed keeps its items;
//! every scenario's keychain ends on NEW with the same items; a keychain fvsync
//! does not understand (an unknown blob version, garbage, a third password) is left
//! byte-for-byte as it was and the run still succeeds.

mod common;
use common::*;

use fvsync::formats::keychain::{
    check, decrypt_generic_passwords, find_db_blob, rekey, rekey_from_master_key, rekey_verified,
    Form, KeychainCheck,
};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/samples/keychainbreaker-test.keychain-db"
);

fn items(bytes: &[u8], pw: &str) -> Vec<(String, String, Vec<u8>)> {
    decrypt_generic_passwords(bytes, pw.as_bytes())
        .unwrap()
        .into_iter()
        .map(|(s, a, p)| (s, a, p.to_vec()))
        .collect()
}

#[test]
fn real_keychain_rekeyed_opens_with_new_only_and_keeps_items() {
    let orig = std::fs::read(SAMPLE).unwrap();
    let before = items(&orig, "keychainbreaker-test");
    assert!(before
        .iter()
        .any(|(s, a, p)| s == "moond4rk.com" && a == "admin" && p == b"password#123"));
    let out = rekey(&orig, b"keychainbreaker-test", NEW.as_bytes()).unwrap();
    assert_eq!(out.len(), orig.len());
    assert_eq!(check(&out, NEW.as_bytes()).unwrap(), KeychainCheck::Accepts);
    assert_eq!(
        check(&out, b"keychainbreaker-test").unwrap(),
        KeychainCheck::Rejects
    );
    assert_eq!(items(&out, NEW), before);
    // Only the DbBlob changed.
    let blob = find_db_blob(&orig).unwrap();
    let end = blob.offset + blob.total_length as usize;
    assert_eq!(orig[..blob.offset], out[..blob.offset]);
    assert_eq!(orig[end..], out[end..]);
}

#[test]
fn reconcile_rekeys_and_keeps_items_and_undo_restores() {
    let (_t, dir) = mac("all-old");
    let kc = keychain_path(&dir, "alice");
    let orig = std::fs::read(&kc).unwrap();
    let before = items(&orig, OLD);
    assert!(!before.is_empty());
    reconcile_ok(&dir, &[], OLD, NEW);
    let now = std::fs::read(&kc).unwrap();
    assert_eq!(check(&now, NEW.as_bytes()).unwrap(), KeychainCheck::Accepts);
    assert_eq!(check(&now, OLD.as_bytes()).unwrap(), KeychainCheck::Rejects);
    assert_eq!(items(&now, NEW), before, "items changed");
    let o = cmd(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(std::fs::read(&kc).unwrap(), orig);
}

fn set_version(path: &std::path::Path, version: u32) {
    let mut b = std::fs::read(path).unwrap();
    let off = find_db_blob(&b).unwrap().offset;
    b[off + 4..off + 8].copy_from_slice(&version.to_be_bytes());
    std::fs::write(path, b).unwrap();
}

#[test]
fn keychains_fvsync_cannot_handle_are_left_as_is() {
    type Mutator = fn(&std::path::Path);
    let cases: &[(&str, Mutator, &str, &str)] = &[
        (
            "blob version 0x300",
            |p| set_version(p, 0x300),
            "unknown",
            "0x300",
        ),
        (
            "garbage",
            |p| std::fs::write(p, b"kych garbage").unwrap(),
            "unknown",
            "",
        ),
        (
            "a third password",
            |p| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, rekey(&b, OLD.as_bytes(), b"Third-Passw0rd!").unwrap()).unwrap()
            },
            "neither",
            "",
        ),
    ];
    for (name, mutate, accepts, note) in cases {
        let (_t, dir) = mac("all-old");
        let kc = keychain_path(&dir, "alice");
        mutate(&kc);
        let bytes = std::fs::read(&kc).unwrap();
        let o = cmd(
            &dir,
            &["--json", "diagnose", "--user", "alice", "--password-stdin"],
            &[OLD, NEW],
        );
        // A keychain that cannot be checked does not count (3: the rest can be
        // fixed); one that takes a third password counts and nothing fvsync
        // can do would fix it (8).
        let (before, after) = if *accepts == "neither" {
            (8, 8)
        } else {
            (3, 0)
        };
        assert_eq!(o.code, Some(before), "{name}: {}", o.stderr);
        let v = json(&o);
        let row = secret(&v, "keychain");
        assert_eq!(row["accepts"], *accepts, "{name}: {row}");
        assert_eq!(row["counts"], *accepts == "neither", "{name}: {row}");
        assert!(
            row["detail"].as_str().unwrap_or("").contains(note),
            "{name}: {row}"
        );
        let o = reconcile(&dir, &[], OLD, NEW);
        assert_eq!(o.code, Some(after), "{name}: {}", o.stderr);
        assert!(
            o.stdout.contains("left as is") || o.stderr.contains("left as is"),
            "{name}: {}",
            o.stdout
        );
        assert_eq!(
            std::fs::read(&kc).unwrap(),
            bytes,
            "{name}: the keychain was touched"
        );
        // The rest of the run went through; verify reports the keychain but passes
        // only where it cannot be checked.
        assert_eq!(alice_state_fv_login(&dir), ("new", "new", "new"), "{name}");
    }
}

fn alice_state_fv_login(dir: &std::path::Path) -> (&'static str, &'static str, &'static str) {
    let (lo, so) = login_accepts(dir, "alice", OLD);
    let (ln, sn) = login_accepts(dir, "alice", NEW);
    (
        which(
            fv_accepts(dir, ALICE_UUID, OLD),
            fv_accepts(dir, ALICE_UUID, NEW),
        ),
        which(lo, ln),
        which(so, sn),
    )
}

#[test]
fn absent_keychain_is_not_applicable() {
    let (_t, dir) = mac("all-old");
    std::fs::remove_file(keychain_path(&dir, "alice")).unwrap();
    let v = json(&cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    ));
    assert_eq!(secret(&v, "keychain")["accepts"], "not-applicable");
    reconcile_ok(&dir, &[], OLD, NEW);
    assert!(
        !keychain_path(&dir, "alice").exists(),
        "fvsync must not create a keychain"
    );
}

#[test]
fn local_items_keychain_is_reported_out_of_reach() {
    let (_t, dir) = mac("fv-old-login-new");
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert!(
        o.stdout.contains(
            "Local Items     cannot check  macOS asks for OLD once after login (not counted)"
        ),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("Local Items and the user keybag are not counted"),
        "{}",
        o.stdout
    );
    // With --verbose, why it is out of reach.
    let o = cmd(
        &dir,
        &[
            "--verbose",
            "diagnose",
            "--user",
            "alice",
            "--password-stdin",
        ],
        &[OLD, NEW],
    );
    assert!(o.stdout.contains("out of reach offline"), "{}", o.stdout);
}

#[test]
fn a_symlinked_keychains_folder_is_refused() {
    let (_t, dir) = mac("all-old");
    let kc_dir = keychain_path(&dir, "alice").parent().unwrap().to_path_buf();
    let elsewhere = dir.parent().unwrap().join("elsewhere");
    std::fs::rename(&kc_dir, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &kc_dir).unwrap();
    let before = tree(&elsewhere);
    let o = reconcile(&dir, &[], OLD, NEW);
    assert_eq!(o.code, Some(5), "{}", o.stderr);
    assert!(o.stderr.contains("symbolic link"), "{}", o.stderr);
    assert_eq!(tree(&elsewhere), before);
}

// ---------------------------------------------------------------------------
// An independent reader: moonD4rk's keychainbreaker (Rust port, read-only,
// Apache-2.0) opens every file fvsync re-keys; the DbBlob signature, which it
// does not check, is checked below with a few lines of HMAC of our own.

fn sample_file(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Everything keychainbreaker lists, as comparable values.
#[derive(PartialEq, Eq)]
struct Listing {
    generic: Vec<(String, String, Option<Vec<u8>>)>,
    internet: Vec<(String, String, Option<Vec<u8>>)>,
    keys: Vec<(String, Vec<u8>)>,
    certificates: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Listing {
    // Names and counts only: no secret in a failure message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.generic.iter().map(|g| (&g.0, &g.1)).collect();
        write!(
            f,
            "generic {names:?}, {} internet, {} keys, {} certificates",
            self.internet.len(),
            self.keys.len(),
            self.certificates.len()
        )
    }
}

fn kb_list(file: &[u8], cred: keychainbreaker::Credential) -> keychainbreaker::Result<Listing> {
    let mut kc = keychainbreaker::Keychain::open_bytes(file.to_vec())?;
    kc.unlock(cred)?;
    Ok(Listing {
        generic: kc
            .generic_passwords()?
            .into_iter()
            .map(|g| (g.service, g.account, g.password))
            .collect(),
        internet: kc
            .internet_passwords()?
            .into_iter()
            .map(|i| (i.server, i.account, i.password))
            .collect(),
        keys: kc
            .private_keys()?
            .into_iter()
            .map(|k| (k.name, k.data))
            .collect(),
        certificates: kc.certificates()?.into_iter().map(|c| c.data).collect(),
    })
}

/// The DbBlob at `at`, checked here without fvsync's code: 3DES-CBC under
/// `master` gives the signing key; the signature is the legacy HMAC-SHA1 for
/// version 0x100 and standard HMAC-SHA1 for 0x200, over blob[0..72) ‖
/// blob[92..totalLength).
fn signature_verifies(file: &[u8], at: usize, master: &[u8; 24]) -> bool {
    use cbc::cipher::{block_padding::NoPadding, BlockDecryptMut, KeyIvInit};
    use hmac::{Hmac, Mac};
    use sha1::{Digest, Sha1};
    let b = &file[at..];
    let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    assert_eq!(u32_at(0), 0xFADE_0711);
    let (version, start, total) = (u32_at(4), u32_at(8), u32_at(12));
    let mut plain = b[start..total].to_vec();
    cbc::Decryptor::<des::TdesEde3>::new_from_slices(master, &b[64..72])
        .unwrap()
        .decrypt_padded_mut::<NoPadding>(&mut plain)
        .unwrap();
    let key = &plain[24..44];
    let (head, tail) = (&b[..72], &b[92..total]);
    let mac: Vec<u8> = match version {
        0x200 => {
            let mut m = Hmac::<Sha1>::new_from_slice(key).unwrap();
            m.update(head);
            m.update(tail);
            m.finalize().into_bytes().to_vec()
        }
        0x100 => {
            let pad = |x: u8| -> Vec<u8> {
                let mut p = vec![x; 64];
                p.iter_mut().zip(key).for_each(|(p, k)| *p ^= k);
                p
            };
            let (ipad, opad) = (pad(0x36), pad(0x5c));
            let inner1 = Sha1::new()
                .chain_update(&ipad)
                .chain_update(head)
                .finalize();
            let inner2 = Sha1::new()
                .chain_update(&opad)
                .chain_update(inner1)
                .chain_update(&ipad)
                .chain_update(tail)
                .finalize();
            Sha1::new()
                .chain_update(&opad)
                .chain_update(inner2)
                .finalize()
                .to_vec()
        }
        v => panic!("version {v:#x}"),
    };
    mac == b[72..92]
}

fn pbkdf2_master(pw: &[u8], file: &[u8], at: usize) -> [u8; 24] {
    let mut mk = [0u8; 24];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, &file[at + 44..at + 64], 1000, &mut mk);
    mk
}

/// A password, or (when only that is published) a master key.
type Opener = Result<&'static [u8], [u8; 24]>;

/// (file, DbBlob offset from its provenance, how to open it, version).
fn real_files() -> Vec<(Vec<u8>, usize, Opener, u32)> {
    vec![
        (
            sample_file("keychainbreaker-test.keychain-db"),
            31812,
            Ok(b"keychainbreaker-test"),
            0x100,
        ),
        (
            sample_file("sos-mock-0x200.keychain-db"),
            24824,
            Ok(b"mock-password"),
            0x200,
        ),
        (
            sample_file("hackbrowserdata-test-0x200.keychain-db"),
            96668,
            Err(
                hex::decode("6d43376c0d257bbaca2c41eded65b3b34a1a96bd19979bde")
                    .unwrap()
                    .try_into()
                    .unwrap(),
            ),
            0x200,
        ),
    ]
}

#[test]
fn an_independent_reader_lists_the_same_items_after_a_rekey() {
    for (orig, at, open, version) in real_files() {
        let (old_master, old_cred) = match open {
            Ok(pw) => (
                pbkdf2_master(pw, &orig, at),
                keychainbreaker::Credential::password(std::str::from_utf8(pw).unwrap()),
            ),
            Err(mk) => (mk, keychainbreaker::Credential::Key(mk)),
        };
        let v = u32::from_be_bytes(orig[at + 4..at + 8].try_into().unwrap());
        assert_eq!(v, version);
        assert!(signature_verifies(&orig, at, &old_master), "{version:#x}");
        let before = kb_list(&orig, old_cred.clone()).unwrap();
        assert!(!before.generic.is_empty());
        assert!(before.generic.iter().all(|g| g.2.is_some()), "{before:?}");

        let out = match open {
            Ok(pw) => rekey_verified(&orig, pw, NEW.as_bytes(), None, Form::Raw).unwrap(),
            Err(mk) => rekey_from_master_key(&orig, &mk, NEW.as_bytes()).unwrap(),
        };
        assert_eq!(find_db_blob(&out).unwrap().offset, at);
        assert_eq!(
            u32::from_be_bytes(out[at + 4..at + 8].try_into().unwrap()),
            version
        );
        let new_master = pbkdf2_master(NEW.as_bytes(), &out, at);
        assert!(signature_verifies(&out, at, &new_master), "{version:#x}");
        // A signature check that can fail: one flipped public-ACL byte.
        let mut tampered = out.clone();
        tampered[at + 100] ^= 1;
        assert!(!signature_verifies(&tampered, at, &new_master));

        let after = kb_list(&out, keychainbreaker::Credential::password(NEW)).unwrap();
        assert_eq!(after, before, "{version:#x}");
        // The old credential no longer opens the re-keyed file.
        assert!(kb_list(&out, old_cred).is_err(), "{version:#x}");
    }
}
