//! The inner ShadowHashData plist (binary or XML): parse it, and check that
//! what fvsync would write for the known schemes parses back to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Also the attribute form: an array holding the blob.
    let attr = plist::Value::Array(vec![plist::Value::Data(data.to_vec())]);
    let via_attr = fvsync::formats::shadowhash::ShadowHash::parse_attribute(&attr);
    let Ok(sh) = fvsync::formats::shadowhash::ShadowHash::parse(data) else {
        assert!(via_attr.is_err());
        return;
    };
    assert_eq!(via_attr.as_ref().ok(), Some(&sh));
    let _ = sh.scheme_names();
    let bytes = sh.to_bplist().expect("a parsed ShadowHashData encodes");
    let back = fvsync::formats::shadowhash::ShadowHash::parse(&bytes).expect("its encoding parses");
    assert_eq!(back.salted, sh.salted);
    assert_eq!(back.srp, sh.srp);
    assert!(back.other_schemes.is_empty());
});
