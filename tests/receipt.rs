//! Receipts and the fleet check, end to end through the library (the CLI
//! command is wired by the engine): a receipt written on a volume, read back,
//! and every document (the receipt file, `receipt --json`, the fleet check)
//! validated against its generated JSON Schema in docs/schema/.

use std::path::Path;

use fvsync::engine::account::{AccountSource, SourceCode};
use fvsync::engine::journal::{Journal, RunId};
use fvsync::engine::receipt;
use fvsync::engine::report_receipt::RunResult;
use fvsync::engine::step::Step;
use fvsync::fsio::{Ownership, Perms, Rel, Root};
use serde_json::Value;

fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("docs/schema/{name}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::meta::validate(&schema).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn valid(name: &str, doc: &Value) {
    let v = validator(name);
    let errs: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errs.is_empty(), "{name}: {errs:#?}\n{doc:#}");
}

fn invalid(name: &str, doc: &Value, what: &str) {
    assert!(!validator(name).is_valid(doc), "{name} accepted {what}");
}

fn root(d: &Path) -> Root {
    Root::open(d, Ownership::Creator(rustix::process::geteuid().as_raw())).unwrap()
}

fn put(r: &Root, path: &str, bytes: &[u8]) {
    let rel = Rel::new(path).unwrap();
    let (dir, _) = path.rsplit_once('/').unwrap();
    r.ensure_dir(&Rel::new(dir).unwrap(), 0o700).unwrap();
    r.write_atomic(&rel, bytes, Perms::PRIVATE).unwrap();
}

fn record(name: &str, uid: u32) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    let a = |s: &str| plist::Value::Array(vec![plist::Value::String(s.into())]);
    d.insert("name".into(), a(name));
    d.insert("uid".into(), a(&uid.to_string()));
    d.insert("home".into(), a(&format!("/Users/{name}")));
    d.insert(
        "generateduid".into(),
        a(&format!("A1B2C3D4-0000-4000-8000-{uid:012}")),
    );
    d.insert(
        "authentication_authority".into(),
        plist::Value::Array(vec![
            ";ShadowHash;HASHLIST:<SALTED-SHA512-PBKDF2>".into(),
            ";SecureToken;".into(),
            ";LocalCachedUser;/Active Directory/CORP/corp.example:x:y".into(),
        ]),
    );
    let mut rec = fvsync::formats::record::UserRecord::from_dict(d);
    let mut sh = fvsync::formats::shadowhash::generate(b"x", 1000, 1000).unwrap();
    sh.srp = None;
    rec.set_shadow_hash(&sh).unwrap();
    rec.to_bytes().unwrap()
}

#[test]
fn receipts_and_the_fleet_check_match_their_schemas() {
    let d = tempfile::tempdir().unwrap();
    let r = root(d.path());
    put(
        &r,
        "private/var/db/dslocal/nodes/Default/users/alice.plist",
        &record("alice", 501),
    );
    put(
        &r,
        "Users/alice/Library/Keychains/login.keychain-db",
        include_bytes!("data/samples/keychainbreaker-test.keychain-db"),
    );
    // Nothing yet: the report says so, and matches its schema.
    let rep = receipt::report(&r, "this Mac".into()).unwrap();
    valid("receipt", &serde_json::to_value(&rep).unwrap());
    assert!(rep.receipt.is_none());

    let mut j = Journal::new(
        "alice",
        "A1B2C3D4-0000-4000-8000-000000000501",
        "disk3s5",
        &Step::ALL,
    );
    j.run_id = RunId::try_from("20261130T005320Z-42".to_string()).unwrap();
    j.mark(Step::Filevault);
    j.mark(Step::Login);
    let mut rc = receipt::Receipt::from_journal(&j, "reconcile", RunResult::Incomplete);
    rc.set_left(&[(
        Step::Preboot,
        "the Preboot volume could not be mounted".into(),
    )]);
    rc.first_login = vec!["the Local Items keychain asks for OLD once".into()];
    rc.account_sources = vec![AccountSource {
        code: SourceCode::MobileAccount,
        what: "a mobile account: the password is the directory's (cached here)".into(),
        next_login: "macOS checks the password against the directory.".into(),
    }];
    receipt::write(&r, &rc).unwrap();

    let file = d
        .path()
        .join("private/var/log/fvsync/alice-20261130T005320Z-42.receipt.json");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    valid("receipt-file", &on_disk);
    let rep = receipt::report(&r, "this Mac".into()).unwrap();
    assert_eq!(rep.receipt.as_ref(), Some(&rc));
    let doc = serde_json::to_value(&rep).unwrap();
    valid("receipt", &doc);

    let fleet = receipt::fleet_check(&r);
    let fdoc = serde_json::to_value(&fleet).unwrap();
    valid("fleet", &fdoc);
    assert_eq!(fdoc["users"][0]["user"], "alice");
    assert_eq!(fdoc["users"][0]["login_hash"], "no-srp");
    assert_eq!(fdoc["users"][0]["keychain"], "legacy");
    assert_eq!(fdoc["users"][0]["last_result"], "incomplete");
    assert_eq!(
        fdoc["users"][0]["account_sources"],
        serde_json::json!(["mobile-account"])
    );
    assert_eq!(fdoc["needs_attention"], true);

    // The schemas are strict: a field fvsync does not write, a result it
    // does not know, or a run id of another form is an error.
    let mut bad = on_disk.clone();
    bad["password"] = "hunter2".into();
    invalid("receipt-file", &bad, "an extra field");
    let mut bad = on_disk.clone();
    bad["result"] = "partly".into();
    invalid("receipt-file", &bad, "an unknown result");
    let mut bad = on_disk.clone();
    bad["run_id"] = "../../etc/passwd".into();
    invalid("receipt-file", &bad, "a run id of another form");
    let mut bad = doc.clone();
    bad["receipt"]["account_sources"][0]["code"] = "okta".into();
    invalid("receipt", &bad, "an unknown source code");
    let mut bad = fdoc.clone();
    bad["users"][0]["flags"] = serde_json::json!(["something"]);
    invalid("fleet", &bad, "an unknown flag");
}
