//! diskutil's plist output (`apfs list`, `apfs listVolumeGroups`, `info`,
//! `apfs listCryptoUsers`, and the error dictionary): every parser fvsync
//! applies to it, on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

use fvsync::diskutil::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse::apfs_list(data);
    let _ = parse::volume_groups(data);
    let _ = parse::info(data);
    let _ = parse::crypto_users(data);
    if let Ok(plist::Value::Dictionary(d)) = plist::Value::from_reader(std::io::Cursor::new(data)) {
        let _ = parse::error_message(&d);
    }
});
