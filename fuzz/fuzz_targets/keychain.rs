//! The login keychain file (`login.keychain-db`): locate the DbBlob, check a
//! password, decrypt the generic-password items, and re-key. The password is
//! the seed keychain's, so mutations of it reach the item parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

use fvsync::formats::keychain::{check, decrypt_generic_passwords, find_db_blob, rekey, KeychainCheck};

const PW: &[u8] = b"keychainbreaker-test";

fuzz_target!(|data: &[u8]| {
    if find_db_blob(data).is_err() {
        // Every entry point refuses what has no DbBlob.
        assert!(check(data, PW).is_err());
        return;
    }
    let accepts = matches!(check(data, PW), Ok(KeychainCheck::Accepts));
    let _ = decrypt_generic_passwords(data, PW);
    if accepts {
        if let Ok(out) = rekey(data, PW, b"fuzz-new") {
            // A re-key keeps the size and opens with the new password only.
            assert_eq!(out.len(), data.len());
            assert_eq!(check(&out, b"fuzz-new").ok(), Some(KeychainCheck::Accepts));
        }
    }
});
