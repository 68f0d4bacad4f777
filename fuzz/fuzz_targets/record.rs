//! A user record from the Data volume (`dslocal/.../users/<name>.plist`): parse
//! it, read every attribute fvsync reads, and round-trip it through the writer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = fvsync::formats::record::UserRecord::parse(data) else {
        return;
    };
    let _ = (rec.name(), rec.real_name(), rec.uid(), rec.generated_uid());
    let _ = rec.has_secure_token();
    let _ = rec.strings("authentication_authority");
    let _ = rec.account_policy();
    let _ = rec.shadow_hash();
    // What fvsync writes back must parse again, with the same name.
    let mut rec = rec;
    let _ = rec.touch_password_policy(1_700_000_000.0);
    let bytes = rec.to_bytes().expect("a parsed record encodes");
    let back = fvsync::formats::record::UserRecord::parse(&bytes).expect("an encoded record parses");
    assert_eq!(back.name(), rec.name());
    let _ = fvsync::formats::record::check_name(rec.name());
});
