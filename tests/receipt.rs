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

// ---------------------------------------------------------------------------
// End to end through the binary, on both backends.

mod common;
use common::{cmd, cmd_env, json, mac, reconcile, reconcile_env, reconcile_ok, NEW, OLD};

fn receipts_dir(dir: &Path) -> std::path::PathBuf {
    common::data_root(dir).join("private/var/log/fvsync")
}

/// The receipt files in the folder, oldest first (run ids sort by time).
fn receipt_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(receipts_dir(dir)) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".receipt.json"))
        .collect();
    v.sort();
    v
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The Mac restarted into macOS: the MDM agent reads the Data volume as it
/// is, with no unlock and no password.
fn normal_boot(dir: &Path) {
    let p = dir.join("SimulatedMac.plist");
    let s = std::fs::read_to_string(&p)
        .unwrap()
        .replace("<string>recovery</string>", "<string>normal</string>");
    std::fs::write(&p, s).unwrap();
}

#[test]
fn a_reconcile_leaves_a_receipt_the_mdm_reads_without_a_password() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, dir) = mac("all-old");
    // A dry run and a refused run leave none.
    assert_eq!(reconcile(&dir, &["--dry-run"], OLD, NEW).code, Some(0));
    assert_eq!(reconcile(&dir, &[], "Wrong-Passw0rd!", NEW).code, Some(4));
    assert!(receipt_files(&dir).is_empty());
    // Nothing to read yet: exit 0, no receipt (the volume is readable in a
    // normal boot).
    let o = reconcile_ok(&dir, &["--json"], OLD, NEW);
    let run = json(&o)["run_id"].as_str().unwrap().to_string();
    let files = receipt_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let f = &files[0];
    assert!(f
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(&format!("alice-{run}")));
    assert_eq!(
        std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(receipts_dir(&dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let bytes = std::fs::read(f).unwrap();
    for pw in [OLD, NEW] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(pw),
            "a password in the receipt"
        );
    }
    let doc = read_json(f);
    valid("receipt-file", &doc);
    assert_eq!(doc["result"], "done");
    assert_eq!(doc["command"], "reconcile");
    assert_eq!(doc["user"], "alice");
    assert_eq!(doc["run_id"], run.as_str());
    assert_eq!(
        doc["changed"],
        serde_json::json!(["filevault", "login", "keychain", "preboot"])
    );
    assert_eq!(doc["filevault_attempts"]["failed"], 0);
    assert_eq!(doc["recovery_key_used"], false);
    // The summary for osquery and `defaults read`.
    let latest = plist::Value::from_file(receipts_dir(&dir).join("latest.plist")).unwrap();
    let latest = latest.as_dictionary().unwrap();
    assert_eq!(latest["result"].as_string(), Some("done"));
    assert_eq!(latest["user"].as_string(), Some("alice"));

    normal_boot(&dir);
    let o = cmd(&dir, &["--json", "receipt"], &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let r = json(&o);
    valid("receipt", &r);
    assert_eq!(r["found"], 1);
    assert_eq!(r["receipt"], doc);
    let o = cmd(&dir, &["receipt"], &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.contains(&run) && o.stdout.contains("done"),
        "{}",
        o.stdout
    );
    // Within Recovery's 80 columns, but for the (test's long) folder path.
    let tmp = dir.to_string_lossy().to_string();
    assert!(
        o.stdout
            .lines()
            .all(|l| l.contains(&tmp) || l.chars().count() <= 80),
        "{}",
        o.stdout
    );

    let o = cmd(&dir, &["--json", "receipt", "--fleet"], &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let fleet = json(&o);
    valid("fleet", &fleet);
    let alice = fleet["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice["last_result"], "done");
    assert_eq!(alice["last_run_id"], run.as_str());
    assert_eq!(alice["secure_token"], true);
    assert_eq!(fleet["needs_attention"], false, "{fleet:#}");
}

#[test]
fn rolled_back_and_undone_runs_leave_their_receipts() {
    let (_t, dir) = mac("all-old");
    let o = reconcile_env(
        &dir,
        &[],
        OLD,
        NEW,
        &[("FVSYNC_FAILPOINT", "after-record:error")],
    );
    assert_eq!(o.code, Some(6), "{}", o.stderr);
    let files = receipt_files(&dir);
    assert_eq!(files.len(), 1);
    let doc = read_json(&files[0]);
    valid("receipt-file", &doc);
    assert_eq!(doc["result"], "rolled-back");
    assert_eq!(doc["changed"], serde_json::json!([]));

    reconcile_ok(&dir, &[], OLD, NEW);
    let o = cmd_env(
        &dir,
        &["undo", "--user", "alice", "--password-stdin", "--yes"],
        &[NEW, OLD],
        &[],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let files = receipt_files(&dir);
    assert_eq!(files.len(), 3, "{files:?}");
    let undone = read_json(files.last().unwrap());
    valid("receipt-file", &undone);
    assert_eq!(undone["result"], "undone");
    assert_eq!(undone["command"], "undo");
    assert!(undone["changed"]
        .as_array()
        .unwrap()
        .contains(&Value::from("filevault")));
    assert_eq!(undone["first_login"], serde_json::json!([]));

    // The fleet sees the latest run: undone is not a reason to act.
    normal_boot(&dir);
    let o = cmd(&dir, &["--json", "receipt"], &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let r = json(&o);
    assert_eq!(r["found"], 3);
    assert_eq!(r["receipt"]["result"], "undone");
}

#[test]
fn a_locked_volume_is_refused_and_nothing_is_written() {
    let (_t, dir) = mac("all-old");
    let before = common::tree(&dir);
    for args in [&["receipt"][..], &["receipt", "--fleet"]] {
        let o = cmd(&dir, args, &[]);
        assert_eq!(o.code, Some(5), "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains("is locked"), "{}", o.stderr);
        assert!(
            o.stderr.contains("diskutil apfs unlockVolume disk3s5"),
            "{}",
            o.stderr
        );
    }
    let o = cmd(&dir, &["receipt", "--volume", "disk9s9"], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    let mut after = common::tree(&dir);
    let mut before = before;
    // The emulated diskutil logs its calls; nothing else may change.
    after.retain(|k, _| !k.contains("calls"));
    before.retain(|k, _| !k.contains("calls"));
    assert_eq!(after, before);
}

#[test]
fn account_sources_are_shown_before_the_plan_and_kept_in_the_receipt() {
    let (_t, dir) = mac("all-old");
    let jc = common::data_root(&dir).join("opt/jc");
    std::fs::create_dir_all(&jc).unwrap();
    std::fs::write(
        jc.join("managedUsers.json"),
        br#"[{"username": "alice", "uid": "501"}]"#,
    )
    .unwrap();
    let o = cmd(
        &dir,
        &["diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    let sources = o
        .stdout
        .find("Where the password comes from:")
        .expect(&o.stdout);
    assert!(o.stdout[sources..].contains("JumpCloud"), "{}", o.stdout);
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    let v = json(&o);
    assert_eq!(v["account_sources"][0]["code"], "jumpcloud", "{v:#}");
    // bob is not in JumpCloud's list.
    let o = cmd(
        &dir,
        &["--json", "diagnose", "--user", "bob", "--password-stdin"],
        &["Bob-Passw0rd!", "Bob-Passw0rd!"],
    );
    assert_eq!(json(&o)["account_sources"], serde_json::json!([]));

    let o = reconcile_ok(&dir, &[], OLD, NEW);
    let plan = o.stdout.find("Plan:").unwrap();
    let shown = o.stdout.find("Where the password comes from:").unwrap();
    assert!(
        shown < plan,
        "the sources come before the plan: {}",
        o.stdout
    );
    let doc = read_json(receipt_files(&dir).last().unwrap());
    assert_eq!(doc["account_sources"][0]["code"], "jumpcloud");

    // A link planted in its place is not followed: not detected.
    let (_t2, dir2) = mac("all-old");
    let jc2 = common::data_root(&dir2).join("opt/jc");
    std::fs::create_dir_all(&jc2).unwrap();
    std::fs::write(dir2.join("planted.json"), br#"[{"username": "alice"}]"#).unwrap();
    std::os::unix::fs::symlink(dir2.join("planted.json"), jc2.join("managedUsers.json")).unwrap();
    let o = cmd(
        &dir2,
        &["--json", "diagnose", "--user", "alice", "--password-stdin"],
        &[OLD, NEW],
    );
    assert_eq!(json(&o)["account_sources"], serde_json::json!([]));
}
