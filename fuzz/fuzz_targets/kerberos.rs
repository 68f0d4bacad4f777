//! `KerberosKeys` and `HeimdalSRPKey` values (DER): parse them; whatever parses
//! is canonical and re-encodes to the same bytes; the LKDC principal lookup
//! never panics on them.
#![no_main]

use fvsync::formats::kerberos::{lkdc_principal, KeySet, SrpKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = KeySet::from_der(data) {
        assert_eq!(set.to_der(), data, "a parsed keyset re-encodes byte for byte");
    }
    if let Ok(srp) = SrpKey::from_der(data) {
        assert_eq!(srp.to_der(), data, "a parsed SRP value re-encodes byte for byte");
    }
    let none: [&str; 0] = [];
    let _ = lkdc_principal(&none, &[data]);
    let aa = [";Kerberosv5;;jeff@LKDC:SHA1.413A30F590EEDC787D532981850A975245B0A723;LKDC:SHA1.413A30F590EEDC787D532981850A975245B0A723"];
    let _ = lkdc_principal(&aa, &[data]);
});
