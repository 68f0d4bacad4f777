//! Records fidelity: the real sample records (tests/data/samples, their
//! sources in its README) through fvsync's record and ShadowHashData parsers;
//! the jeff 10.8 XML record round-tripped; and, on a simulated Mac, a record
//! without an SRP verifier, a pending "change at next login", a
//! `passwordLastSetTime` later than the clock, and a mobile account.

mod common;
use common::*;

use fvsync::formats::record::{ForcedChange, UserRecord, NEW_PASSWORD_REQUIRED_TIME};
use fvsync::formats::shadowhash::{Check, ShadowHash};
use plist::{Dictionary, Value};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn data<'a>(r: &'a UserRecord, key: &str) -> &'a [u8] {
    r.dict()[key].as_array().unwrap()[0].as_data().unwrap()
}

const JEFF: &str = "dslocal-user-jeff-10.8-pbkdf2.plist";

#[test]
fn jeff_10_8_xml_record_parses() {
    let bytes = sample(JEFF);
    assert!(bytes.starts_with(b"<?xml"));
    let r = UserRecord::parse(&bytes).unwrap();
    assert_eq!((r.name(), r.uid()), ("jeff", Some(28)));
    assert_eq!(
        r.generated_uid().as_deref(),
        Some("1CB825D1-2DF7-43CC-B874-DB6BBB76C402")
    );
    let tags: Vec<&str> = r.authorities().iter().map(|a| a.tag).collect();
    assert_eq!(tags, ["Kerberosv5", "ShadowHash"]);
    assert!(!r.is_mobile() && !r.has_secure_token() && !r.is_disabled());
    let sh = r.shadow_hash().unwrap().unwrap();
    let e = sh.salted.as_ref().unwrap();
    assert_eq!(e.iterations, 24_752);
    assert_eq!(hex::encode(&e.salt[..4]), "9377c469");
    assert_eq!(hex::encode(&e.entropy[..4]), "0590ade1");
    assert!(sh.srp.is_none() && sh.legacy.is_none() && sh.other_schemes.is_empty());
    assert_eq!(e.check(b"not jeff's password"), Check::NoMatch);
    assert_eq!(r.kerberos_keys().len(), 1);
    // The 10.8 policy blob is passwordpolicyoptions (no accountPolicyData):
    // its passwordLastSetTime is not a forced change.
    assert_eq!(r.account_policy(), None);
    assert_eq!(r.forced_password_change(), None);
}

/// parse → write → parse gives the same values, every attribute value for
/// value (data blobs byte for byte), in the same order; written binary.
#[test]
fn jeff_round_trips_value_for_value() {
    let orig = UserRecord::parse(&sample(JEFF)).unwrap();
    let bytes = orig.to_bytes().unwrap();
    assert!(bytes.starts_with(b"bplist00"), "records are written binary");
    let back = UserRecord::parse(&bytes).unwrap();
    assert_eq!(back.dict(), orig.dict());
    assert_eq!(
        back.dict().keys().collect::<Vec<_>>(),
        orig.dict().keys().collect::<Vec<_>>()
    );
    // Written again: the same bytes (the writer is deterministic).
    assert_eq!(back.to_bytes().unwrap(), bytes);
    // The plist crate's own reader agrees with plist_safe's.
    let theirs = plist::Value::from_reader(std::io::Cursor::new(&bytes)).unwrap();
    assert_eq!(theirs.as_dictionary().unwrap(), orig.dict());
}

/// A password set on jeff's record: only ShadowHashData, the ShadowHash
/// authority and accountPolicyData (created: the 10.8 record has none)
/// change; the rest survive value for value, passwordpolicyoptions and the
/// KerberosKeys blob byte for byte.
#[test]
fn jeff_password_set_keeps_what_fvsync_does_not_own() {
    let orig = UserRecord::parse(&sample(JEFF)).unwrap();
    let mut r = orig.clone();
    let sh = fvsync::formats::shadowhash::generate(b"New-Passw0rd!", 1000, 1000).unwrap();
    r.set_shadow_hash(&sh).unwrap();
    let out = r.touch_password_policy(1_800_000_000.0).unwrap();
    assert!(out.created && out.last_set_updated);
    let back = UserRecord::parse(&r.to_bytes().unwrap()).unwrap();
    let owned = [
        "ShadowHashData",
        "authentication_authority",
        "accountPolicyData",
    ];
    for (k, v) in orig.dict() {
        if !owned.contains(&k.as_str()) {
            assert_eq!(back.dict().get(k), Some(v), "{k}");
        }
    }
    let mut keys: Vec<&String> = back.dict().keys().collect();
    keys.retain(|k| k.as_str() != "accountPolicyData");
    assert_eq!(keys, orig.dict().keys().collect::<Vec<_>>());
    assert_eq!(
        data(&back, "passwordpolicyoptions"),
        data(&orig, "passwordpolicyoptions")
    );
    assert_eq!(back.kerberos_keys(), orig.kerberos_keys());
    assert_eq!(
        back.authentication_authority(),
        [
            orig.authentication_authority()[0],
            ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>"
        ]
    );
    let sh = back.shadow_hash().unwrap().unwrap();
    assert_eq!(sh.salted.unwrap().check(b"New-Passw0rd!"), Check::Match);
    assert_eq!(sh.srp.unwrap().check(b"New-Passw0rd!"), Check::Match);
}

#[test]
fn itsafeature_10_14_binary_record_parses() {
    let bytes = sample("dslocal-user-itsafeature-10.14.plist");
    assert!(bytes.starts_with(b"bplist00"));
    let r = UserRecord::parse(&bytes).unwrap();
    assert_eq!((r.name(), r.uid()), ("itsafeature", Some(501)));
    assert!(r.has_secure_token() && !r.is_mobile());
    assert!(!r.has_shadow_hash(), "dscl never prints ShadowHashData");
    assert_eq!(r.shadow_hash().unwrap(), None);
    let p = r.account_policy().unwrap();
    assert_eq!(p.failed_login_count, Some(0));
    assert_eq!(
        p.password_last_set,
        Some("1540611064.6205959".parse().unwrap())
    );
    assert_eq!(r.forced_password_change(), None);
    assert_eq!(
        r.dict()
            .keys()
            .filter(|k| k.starts_with("_writers_"))
            .count(),
        7
    );
    assert_eq!(
        UserRecord::parse(&r.to_bytes().unwrap()).unwrap().dict(),
        r.dict()
    );
}

#[test]
fn pycreateuserpkg_record_has_no_srp_and_checks_1234() {
    let r = UserRecord::parse(&sample("dslocal-user-pycreateuserpkg-crackme.plist")).unwrap();
    assert_eq!((r.name(), r.uid()), ("crackme", Some(502)));
    assert_eq!(r.hint(), Some("four digits"));
    assert_eq!(
        r.authentication_authority(),
        [";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>"]
    );
    let sh = r.shadow_hash().unwrap().unwrap();
    assert!(sh.srp.is_none(), "pycreateuserpkg writes no SRP verifier");
    let e = sh.salted.unwrap();
    assert_eq!(e.iterations, 121_951);
    assert_eq!(e.check(b"1234"), Check::Match);
    assert_eq!(e.check(b"1235"), Check::NoMatch);
}

#[test]
fn mobile_testuser_xml_record_parses() {
    let r = UserRecord::parse(&sample("dslocal-user-mobile-testuser.plist")).unwrap();
    assert_eq!(r.name(), "testuser");
    assert!(r.is_mobile());
    assert_eq!(
        r.mobile_origin(),
        Some("/Active Directory/TEST/test.com:testuser:9A1F2D0C-B782-488A-80BA-CAC95AB6CAE9")
    );
    let tags: Vec<&str> = r.authorities().iter().map(|a| a.tag).collect();
    assert_eq!(tags, ["ShadowHash", "LocalCachedUser", "Kerberosv5"]);
    assert_eq!(r.shadow_hash().unwrap(), None);
    // The authority list is kept in its order when a hash is written, only
    // the ShadowHash entry's list changes.
    let mut w = r.clone();
    let sh = fvsync::formats::shadowhash::generate(b"pw", 1000, 1000).unwrap();
    w.set_shadow_hash(&sh).unwrap();
    let aa = r.authentication_authority();
    assert_eq!(
        w.authentication_authority(),
        [
            ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2,SRP-RFC5054-4096-SHA512-PBKDF2>",
            aa[1],
            aa[2]
        ]
    );
    assert_eq!(w.dict()["OriginalNodeName"], r.dict()["OriginalNodeName"]);
}

// ---- on a simulated Mac ----------------------------------------------------

fn load(dir: &std::path::Path) -> UserRecord {
    UserRecord::parse(&std::fs::read(record_path(dir, "alice")).unwrap()).unwrap()
}

fn save(dir: &std::path::Path, r: &UserRecord) {
    // Written in place: the file keeps its owner and 0600 mode.
    std::fs::write(record_path(dir, "alice"), r.to_bytes().unwrap()).unwrap();
}

fn edit(dir: &std::path::Path, f: impl FnOnce(&mut Dictionary)) {
    let mut d = load(dir).dict().clone();
    f(&mut d);
    save(dir, &UserRecord::from_dict(d));
}

/// alice's record as pycreateuserpkg writes one: a SALTED-SHA512-PBKDF2 entry
/// and no SRP verifier.
fn drop_srp(dir: &std::path::Path) {
    let mut r = load(dir);
    let mut sh = r.shadow_hash().unwrap().unwrap();
    assert!(sh.srp.is_some());
    sh.srp = None;
    r.set_shadow_hash(&sh).unwrap();
    assert_eq!(
        r.authentication_authority()[0],
        ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>"
    );
    save(dir, &r);
    let (salted, srp) = login_accepts(dir, "alice", NEW);
    assert!(salted && !srp);
}

const VERIFY: &[&str] = &["verify", "--user", "alice", "--password-stdin"];

#[test]
fn verify_without_srp_is_in_sync() {
    let (_t, dir) = mac("in-sync");
    drop_srp(&dir);
    let mut args = vec!["--json"];
    args.extend_from_slice(VERIFY);
    let o = cmd(&dir, &args, &[NEW]);
    assert_eq!(o.code, Some(0), "{}\n{}", o.stdout, o.stderr);
    let v = json(&o);
    assert_eq!(v["in_sync"], true);
    assert_eq!(secret(&v, "srp")["accepts"], "not-applicable");
    assert_eq!(secret(&v, "srp")["note"], "the record has no SRP entry");
    assert_eq!(secret(&v, "login")["accepts"], "new");
    // The screen says the same.
    let o = cmd(&dir, VERIFY, &[NEW]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.contains("the record has no SRP entry"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("In sync"), "{}", o.stdout);
    // A wrong password is still out of sync (the row does not hide the hash).
    let o = cmd(&dir, VERIFY, &["Wrong-Passw0rd!"]);
    assert_ne!(o.code, Some(0), "{}", o.stdout);
    // reconcile leaves such a record alone when the hash takes NEW.
    let before = std::fs::read(record_path(&dir, "alice")).unwrap();
    let o = reconcile_ok(&dir, &[], OLD, NEW);
    assert!(
        o.stdout
            .contains("the login hash already accepts NEW (the record has no SRP verifier)"),
        "{}",
        o.stdout
    );
    assert_eq!(std::fs::read(record_path(&dir, "alice")).unwrap(), before);
}

/// accountPolicyData with a "must change at next login" policy, as
/// `pwpolicy -u alice -setaccountpolicies` expresses it (docs/records.md).
fn forced_policy(last_set: f64, required: f64) -> Vec<u8> {
    let mut params = Dictionary::new();
    params.insert(NEW_PASSWORD_REQUIRED_TIME.into(), Value::Real(required));
    let mut pol = Dictionary::new();
    pol.insert(
        "policyContent".into(),
        Value::String(
            "policyAttributeLastPasswordChangeTime < policyAttributeNewPasswordRequiredTime".into(),
        ),
    );
    pol.insert(
        "policyIdentifier".into(),
        Value::String("ChangeOnNextAuth".into()),
    );
    pol.insert("policyParameters".into(), Value::Dictionary(params));
    let mut cats = Dictionary::new();
    cats.insert(
        "policyCategoryPasswordChange".into(),
        Value::Array(vec![Value::Dictionary(pol)]),
    );
    let mut d = Dictionary::new();
    d.insert("creationTime".into(), Value::Real(1_500_000_000.0));
    d.insert("failedLoginCount".into(), Value::Integer(4.into()));
    d.insert("failedLoginTimestamp".into(), Value::Integer(0.into()));
    d.insert("passwordLastSetTime".into(), Value::Real(last_set));
    d.insert("policies".into(), Value::Dictionary(cats));
    let mut out = Vec::new();
    Value::Dictionary(d).to_writer_xml(&mut out).unwrap();
    out
}

fn policy(r: &UserRecord) -> Dictionary {
    plist::Value::from_reader(std::io::Cursor::new(data(r, "accountPolicyData")))
        .unwrap()
        .into_dictionary()
        .unwrap()
}

#[test]
fn reconcile_keeps_a_pending_forced_change() {
    let (_t, dir) = mac("all-old");
    let blob = forced_policy(1_600_000_000.0, 1_700_000_000.0);
    edit(&dir, |d| {
        d.insert(
            "accountPolicyData".into(),
            Value::Array(vec![Value::Data(blob.clone())]),
        );
    });
    assert_eq!(
        load(&dir).forced_password_change(),
        Some(ForcedChange::Policy {
            required_since: 1_700_000_000.0
        })
    );
    let o = reconcile_ok(&dir, &["--dry-run"], OLD, NEW);
    assert!(
        o.stdout
            .contains("a pending \"change at next login\" stays pending"),
        "{}",
        o.stdout
    );
    reconcile_ok(&dir, &[], OLD, NEW);
    let r = load(&dir);
    assert_eq!(login_accepts(&dir, "alice", NEW), (true, true));
    let p = policy(&r);
    assert_eq!(p["passwordLastSetTime"], Value::Real(1_600_000_000.0));
    assert_eq!(p["failedLoginCount"], Value::Integer(0.into()));
    let before = plist::Value::from_reader(std::io::Cursor::new(&blob))
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(p["policies"], before["policies"]);
    assert_eq!(p["creationTime"], before["creationTime"]);
    assert!(
        data(&r, "accountPolicyData").starts_with(b"<?xml"),
        "XML kept"
    );
    assert!(r.forced_password_change().is_some());
}

#[test]
fn reconcile_never_moves_password_last_set_backwards() {
    let (_t, dir) = mac("all-old");
    // Set on a Mac whose clock was ahead (2096): Recovery's "now" is earlier.
    let mut d = Dictionary::new();
    d.insert("creationTime".into(), Value::Real(1_500_000_000.0));
    d.insert("failedLoginCount".into(), Value::Integer(2.into()));
    d.insert("passwordLastSetTime".into(), Value::Real(4_000_000_000.5));
    let mut blob = Vec::new();
    Value::Dictionary(d).to_writer_binary(&mut blob).unwrap();
    edit(&dir, |d| {
        d.insert(
            "accountPolicyData".into(),
            Value::Array(vec![Value::Data(blob)]),
        );
    });
    reconcile_ok(&dir, &[], OLD, NEW);
    let r = load(&dir);
    assert!(data(&r, "accountPolicyData").starts_with(b"bplist00"));
    let p = policy(&r);
    assert_eq!(p["passwordLastSetTime"], Value::Real(4_000_000_000.5));
    assert_eq!(p["failedLoginCount"], Value::Integer(0.into()));
    assert_eq!(
        p.keys().collect::<Vec<_>>(),
        ["creationTime", "failedLoginCount", "passwordLastSetTime"]
    );
}

#[test]
fn mobile_account_plan_says_the_directory_owns_the_password() {
    let (_t, dir) = mac("all-old");
    let cached = ";LocalCachedUser;/Active Directory/CORP/corp.example.com:alice:A11CE000-1D2E-4F3A-9B8C-0123456789AB";
    edit(&dir, |d| {
        let mut aa = d["authentication_authority"].as_array().unwrap().clone();
        aa.push(Value::String(cached.into()));
        d.insert("authentication_authority".into(), Value::Array(aa));
    });
    let o = reconcile_ok(&dir, &["--dry-run"], OLD, NEW);
    assert!(
        o.stdout.contains(
            "a mobile account: its password is the directory's, and macOS re-caches it at the \
             next login with the directory reachable"
        ),
        "{}",
        o.stdout
    );
    reconcile_ok(&dir, &[], OLD, NEW);
    let r = load(&dir);
    assert!(r.authentication_authority().contains(&cached));
    assert_eq!(login_accepts(&dir, "alice", NEW), (true, true));
    // Not a mobile account: no such clause.
    let (_t2, plain) = mac("all-old");
    let o = reconcile_ok(&plain, &["--dry-run"], OLD, NEW);
    assert!(!o.stdout.contains("a mobile account"), "{}", o.stdout);
}

/// The 10.7 vector file's hashes verify through fvsync's ShadowHashData
/// parser (a one-scheme blob per vector, as 10.7 stores it).
#[test]
fn salted_sha512_10_7_vectors_verify() {
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{}/tests/data/vectors/shadowhash-salted-sha512-10.7.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 5);
    for v in vectors {
        let value = hex::decode(v["value_hex"].as_str().unwrap()).unwrap();
        let pw = v["password_utf8"].as_str().unwrap();
        let mut d = Dictionary::new();
        d.insert("SALTED-SHA512".into(), Value::Data(value));
        let mut blob = Vec::new();
        Value::Dictionary(d).to_writer_binary(&mut blob).unwrap();
        let sh = ShadowHash::parse(&blob).unwrap();
        let e = sh.legacy.unwrap();
        assert_eq!(e.check(pw.as_bytes()), Check::Match, "{}", v["id"]);
        assert_eq!(e.check(b"x"), Check::NoMatch, "{}", v["id"]);
    }
}
