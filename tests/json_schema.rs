//! Every `--json` document fvsync prints, validated against its JSON Schema in
//! `docs/schema/`. The documents are real: simulated Macs of every scenario, every
//! command, success and failure. A schema is strict (`additionalProperties: false`),
//! so a new field fails here until it is documented.
#![cfg(feature = "schema")]

use std::cell::Cell;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const OLD: &str = "Old-Passw0rd!";
const NEW: &str = "New-Passw0rd!";

thread_local! {
    /// Documents validated by the current test (each test runs on its own thread).
    static VALIDATED: Cell<usize> = const { Cell::new(0) };
}

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema")
}

/// Loads `docs/schema/NAME.json`, checks it against the draft 2020-12
/// meta-schema, and builds a validator (no network, no file resolution).
fn validator(name: &str) -> jsonschema::Validator {
    let path = schema_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("{} is not a valid JSON Schema: {e}", path.display());
    }
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}.json: draft"
    );
    assert_eq!(
        schema["$id"],
        format!("https://fvsync.invalid/schema/{name}.json"),
        "{name}.json: $id"
    );
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
}

/// The validator's messages for `doc` against schema `name`, and the rules
/// every document also obeys (docs/json.md, "Rules"), which a schema
/// generated from the types cannot say (empty: valid).
fn errors(name: &str, doc: &Value) -> Vec<String> {
    let v = validator(name);
    let mut errs: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("at '{}': {e}", e.instance_path()))
        .collect();
    errs.extend(rules(name, doc));
    errs
}

/// The rules (see [`errors`]).
fn rules(name: &str, doc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if doc["version"] != 1 {
        bad.push("version is not 1".to_string());
    }
    let verdict_code = |v: &Value| match v.as_str() {
        Some("in-sync") => Some(0),
        Some("out-of-sync") => Some(3),
        Some("needs-attention") => Some(8),
        _ => None,
    };
    match name {
        "diagnose" | "verify" => {
            let code = doc["exit_code"].as_i64().unwrap_or(-1);
            let want = verdict_code(&doc["verdict"]);
            // Exit 4 or 5 means FileVault stopped the command (the verdict
            // then describes what could be seen).
            if ![4, 5].contains(&code) && want != Some(code) {
                bad.push(format!(
                    "exit {code} does not match the verdict {}",
                    doc["verdict"]
                ));
            }
            if doc["in_sync"] != (doc["verdict"] == "in-sync" && code == 0) {
                bad.push("in_sync does not match the verdict".into());
            }
            if name == "verify" {
                for r in doc["secrets"].as_array().into_iter().flatten() {
                    if ["old", "both"].contains(&r["accepts"].as_str().unwrap_or("")) {
                        bad.push("verify says old or both".into());
                    }
                }
            }
        }
        "reconcile" => {
            let after = doc.get("secrets_after").is_some();
            if doc["dry_run"] == true && after {
                bad.push("secrets_after on a dry run".into());
            }
            let changed = doc["changed"].as_array().is_some_and(|c| !c.is_empty());
            if changed && !after {
                bad.push("changed steps without secrets_after".into());
            }
        }
        "error" => {
            let kinds = [
                ("failure", 1),
                ("usage", 2),
                ("auth-failed", 4),
                ("refused", 5),
                ("rolled-back", 6),
                ("incomplete", 7),
                ("cancelled", 9),
            ];
            let k = doc["error"]["kind"].as_str().unwrap_or("");
            let code = doc["error"]["exit_code"].as_i64();
            if !kinds.iter().any(|(n, c)| *n == k && Some(*c) == code)
                || doc["exit_code"] != doc["error"]["exit_code"]
            {
                bad.push(format!("kind {k} with exit code {code:?}"));
            }
        }
        _ => {}
    }
    bad
}

/// Validates `doc` against schema `name`, failing with every message.
fn validate(name: &str, doc: &Value, what: &str) {
    let errs = errors(name, doc);
    assert!(
        errs.is_empty(),
        "{what}: the document does not match docs/schema/{name}.json:\n  {}\ndocument:\n{}",
        errs.join("\n  "),
        serde_json::to_string_pretty(doc).unwrap()
    );
    VALIDATED.with(|n| n.set(n.get() + 1));
}

/// One run of fvsync: the exit code and the one JSON document on stdout.
struct Run {
    code: i32,
    doc: Value,
    what: String,
}

fn fvsync(args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::cargo_bin("fvsync").unwrap();
    cmd.env("NO_COLOR", "1").arg("--json").args(args);
    if let Some(s) = stdin {
        cmd.write_stdin(s.to_string());
    }
    let out = cmd.output().unwrap();
    let what = format!("fvsync --json {}", args.join(" "));
    let code = out.status.code().expect("fvsync was killed by a signal");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} (exit {code}): stdout is not one JSON document: {e}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(doc["version"], 1, "{what}: version");
    Run { code, doc, what }
}

impl Run {
    /// A failure: the document is the error document, with the real exit code.
    fn is_error(&self) -> bool {
        self.doc.get("error").is_some()
    }

    /// Validates against `schema`, or `error` when it is the error document;
    /// checks `exit_code` (where there is one) is the real exit code.
    fn check(&self, schema: &str) -> &Self {
        if self.is_error() {
            validate("error", &self.doc, &self.what);
            assert_eq!(
                self.doc["error"]["exit_code"], self.code,
                "{}: error.exit_code is not the exit code",
                self.what
            );
            assert_ne!(self.code, 0, "{}: an error document with exit 0", self.what);
        } else {
            validate(schema, &self.doc, &self.what);
            if let Some(c) = self.doc.get("exit_code") {
                assert_eq!(
                    *c, self.code,
                    "{}: exit_code is not the exit code",
                    self.what
                );
            } else {
                assert_eq!(self.code, 0, "{}: a document without exit_code", self.what);
            }
        }
        self
    }

    fn expect_error(&self, code: i32, kind: &str) -> &Self {
        self.check("error");
        assert!(self.is_error(), "{}: expected an error document", self.what);
        assert_eq!(self.code, code, "{}: exit code", self.what);
        assert_eq!(self.doc["error"]["kind"], kind, "{}: kind", self.what);
        self
    }

    fn expect_doc(&self, schema: &str, code: i32) -> &Self {
        self.check(schema);
        assert!(
            !self.is_error(),
            "{}: expected a {schema} document, got {}",
            self.what,
            self.doc
        );
        assert_eq!(self.code, code, "{}: exit code", self.what);
        self
    }
}

fn two(old: &str, new: &str) -> String {
    format!("{old}\n{new}\n")
}

fn one(pw: &str) -> String {
    format!("{pw}\n")
}

fn scenarios() -> Vec<String> {
    let r = fvsync(&["sim", "scenarios"], None);
    r.expect_doc("sim-scenarios", 0);
    let names: Vec<String> = r.doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    names
}

/// Creates a simulated Mac and validates the `sim create` document.
fn create(dir: &Path, scenario: &str) -> String {
    let d = dir.to_str().unwrap().to_string();
    let r = fvsync(
        &[
            "sim",
            "create",
            &d,
            "--scenario",
            scenario,
            "--iterations",
            "1000",
        ],
        None,
    );
    r.expect_doc("sim-create", 0);
    assert_eq!(r.doc["created"], d.as_str());
    assert_eq!(r.doc["scenario"], scenario);
    d
}

fn sim(mac: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut a = vec!["--simulate", mac];
    a.extend_from_slice(args);
    fvsync(&a, stdin)
}

/// Every command on every scenario: listings, diagnose, reconcile --dry-run,
/// reconcile, verify (NEW and OLD), undo, verify again.
#[test]
fn every_command_on_every_scenario_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let before = VALIDATED.with(Cell::get);
    for name in scenarios() {
        let mac = create(&tmp.path().join(&name), &name);
        let user = ["--user", "alice", "--password-stdin"];
        let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
            cmd.iter()
                .chain(user.iter())
                .chain(extra.iter())
                .map(|s| s.to_string())
                .collect()
        };
        let run = |args: Vec<String>, stdin: &str| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            sim(&mac, &a, Some(stdin))
        };

        sim(&mac, &["volumes"], None).expect_doc("volumes", 0);
        sim(&mac, &["users"], None).expect_doc("users", 0);
        sim(&mac, &["users", "--all"], None).expect_doc("users", 0);

        if name == "not-a-filevault-user" {
            // The volume is locked and its Preboot list does not name alice: she
            // matches nobody who can unlock it (exit 2, with the list).
            for cmd in [
                &["diagnose"][..],
                &["reconcile", "--dry-run"],
                &["reconcile", "--yes"],
                &["undo", "--yes"],
            ] {
                run(with(cmd, &[]), &two(OLD, NEW)).expect_error(2, "usage");
            }
            run(with(&["verify"], &[]), &one(NEW)).expect_error(2, "usage");
            // bob is a FileVault user of the same Mac.
            let bob = |cmd: &[&str], stdin: &str| {
                let mut a: Vec<&str> = cmd.to_vec();
                a.extend_from_slice(&["--user", "bob", "--password-stdin"]);
                sim(&mac, &a, Some(stdin))
            };
            bob(&["diagnose"], &two(OLD, NEW)).check("diagnose");
            bob(&["reconcile", "--dry-run"], &two(OLD, NEW)).check("reconcile");
            continue;
        }

        let d = run(with(&["diagnose"], &[]), &two(OLD, NEW));
        d.check("diagnose");
        assert!(!d.is_error(), "{}: {}", d.what, d.doc);

        let dry = run(with(&["reconcile", "--dry-run"], &[]), &two(OLD, NEW));
        dry.expect_doc("reconcile", 0);
        assert_eq!(dry.doc["dry_run"], true);
        assert!(dry.doc.get("secrets_after").is_none());

        let rec = run(with(&["reconcile", "--yes"], &[]), &two(OLD, NEW));
        rec.expect_doc("reconcile", 0);
        assert_eq!(rec.doc["dry_run"], false);
        let changed = rec.doc["changed"].as_array().unwrap();
        assert_eq!(
            rec.doc.get("secrets_after").is_some(),
            !changed.is_empty(),
            "{}: secrets_after iff something was applied: {}",
            rec.what,
            rec.doc
        );

        if name == "throttled" {
            // OLD is tried first and now fails: FileVault refuses from here on.
            // Whatever each command prints must still match its schema.
            run(with(&["reconcile", "--yes"], &[]), &two(OLD, NEW)).expect_error(4, "auth-failed");
            run(with(&["diagnose"], &[]), &two(OLD, NEW)).expect_doc("diagnose", 5);
            run(with(&["verify"], &[]), &one(NEW)).expect_error(5, "refused");
            run(with(&["undo", "--yes"], &[]), &two(NEW, OLD)).expect_error(5, "refused");
            continue;
        }

        // In sync now: a second reconcile has nothing to do.
        run(with(&["reconcile", "--yes"], &[]), &two(OLD, NEW)).expect_doc("reconcile", 0);
        run(with(&["verify"], &[]), &one(NEW)).expect_doc("verify", 0);
        run(with(&["verify"], &[]), &one(OLD)).check("verify");
        run(with(&["diagnose"], &[]), &two(OLD, NEW)).expect_doc("diagnose", 0);

        let u = run(with(&["undo", "--yes"], &[]), &two(NEW, OLD));
        if changed.is_empty() {
            u.expect_error(5, "refused");
        } else {
            u.expect_doc("undo", 0);
            // Undone already. On the (again locked) simulated Mac NEW is
            // presented first: refused when FileVault is on OLD again (4),
            // else the journal says it was undone (5).
            let again = run(with(&["undo", "--yes"], &[]), &two(NEW, OLD));
            // (A volume with FileVault off unlocks at startup: the journal
            // is read before any attempt.)
            if changed.iter().any(|s| s == "filevault") && rec.doc["filevault_on"] == true {
                again.expect_error(4, "auth-failed");
            } else {
                again.expect_error(5, "refused");
            }
        }
        run(with(&["verify"], &[]), &one(NEW)).check("verify");
        // Unlocked or not, the listings still match after the changes.
        sim(&mac, &["users"], None).expect_doc("users", 0);
    }
    let n = VALIDATED.with(Cell::get) - before;
    eprintln!("every_command_on_every_scenario: {n} documents validated");
    assert!(n > 80, "only {n} documents validated");
}

/// The documents of the unusual endings: FileVault accepting neither password,
/// refusing attempts, OLD equal to NEW, and the error document of each command.
#[test]
fn failures_and_edge_cases_match_their_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let before = VALIDATED.with(Cell::get);
    let alice = ["--user", "alice", "--password-stdin"];
    let cmd = |mac: &str, c: &[&str], extra: &[&str], stdin: &str| {
        let mut a: Vec<&str> = c.to_vec();
        a.extend_from_slice(&alice);
        a.extend_from_slice(extra);
        sim(mac, &a, Some(stdin))
    };

    // Throttled: two wrong passwords give exit 4 with the diagnose document,
    // then FileVault refuses before any attempt: exit 5, still a document.
    let t = create(&tmp.path().join("throttled"), "throttled");
    let d = cmd(&t, &["diagnose"], &[], &two("wrong-1", "wrong-2"));
    d.expect_doc("diagnose", 4);
    assert_eq!(d.doc["filevault_attempts"]["throttled"], true);
    cmd(&t, &["diagnose"], &[], &two("wrong-1", "wrong-2")).expect_doc("diagnose", 5);
    cmd(&t, &["verify"], &[], &one(NEW)).expect_error(5, "refused");
    cmd(&t, &["reconcile", "--dry-run"], &[], &two(OLD, NEW)).expect_error(5, "refused");
    cmd(&t, &["reconcile", "--yes"], &[], &two(OLD, NEW)).expect_error(5, "refused");
    cmd(&t, &["undo", "--yes"], &[], &two(NEW, OLD)).expect_error(5, "refused");

    // Wrong passwords without throttling: FileVault accepts neither.
    let w = create(&tmp.path().join("wrong"), "fv-old-login-new");
    cmd(&w, &["diagnose"], &[], &two("wrong-1", "wrong-2")).expect_doc("diagnose", 4);
    cmd(&w, &["reconcile", "--yes"], &[], &two("wrong-1", "wrong-2"))
        .expect_error(4, "auth-failed");
    cmd(&w, &["verify"], &[], &one("wrong-1")).expect_doc("verify", 3);
    // Missing --yes with --password-stdin; a missing password line.
    cmd(&w, &["reconcile"], &[], &two(OLD, NEW)).expect_error(2, "usage");
    cmd(&w, &["diagnose"], &[], &one(OLD)).expect_error(2, "usage");
    // An unknown user matches nobody (2), on a locked volume (from its
    // Preboot list) as on a readable one (from its records).
    sim(
        &w,
        &["diagnose", "--user", "nobody", "--password-stdin"],
        Some(&two(OLD, NEW)),
    )
    .expect_error(2, "usage");
    let off = create(&tmp.path().join("off"), "filevault-off");
    sim(
        &off,
        &["diagnose", "--user", "nobody", "--password-stdin"],
        Some(&two(OLD, NEW)),
    )
    .expect_error(2, "usage");
    // An unknown volume.
    sim(&w, &["users", "--volume", "disk9s9"], None).expect_error(2, "usage");

    // OLD equal to NEW: rows read "both".
    let s = create(&tmp.path().join("same"), "in-sync");
    let d = cmd(&s, &["diagnose"], &[], &two(NEW, NEW));
    d.expect_doc("diagnose", 0);
    assert_eq!(d.doc["secrets"][0]["accepts"], "both", "{}", d.doc);

    // Several Data volumes: the listings and a user on the second volume.
    let m = create(&tmp.path().join("multi"), "multi-volume");
    sim(&m, &["volumes"], None).expect_doc("volumes", 0);
    sim(&m, &["users", "--volume", "disk5s5"], None).expect_doc("users", 0);
    sim(
        &m,
        &[
            "diagnose",
            "--user",
            "bob",
            "--volume",
            "disk5s5",
            "--password-stdin",
        ],
        Some(&two(OLD, NEW)),
    )
    .check("diagnose");

    // Not a simulated Mac; sim create errors.
    let missing = tmp.path().join("missing");
    fvsync(&["--simulate", missing.to_str().unwrap(), "volumes"], None).expect_error(2, "usage");
    fvsync(&["--simulate", missing.to_str().unwrap(), "users"], None).expect_error(2, "usage");
    let x = tmp.path().join("x");
    fvsync(
        &[
            "sim",
            "create",
            x.to_str().unwrap(),
            "--scenario",
            "no-such-scenario",
        ],
        None,
    )
    .expect_error(2, "usage");
    fvsync(
        &[
            "sim",
            "create",
            &s,
            "--scenario",
            "in-sync",
            "--iterations",
            "1000",
        ],
        None,
    )
    .expect_error(2, "usage");

    let n = VALIDATED.with(Cell::get) - before;
    eprintln!("failures_and_edge_cases: {n} documents validated");
}

/// The schemas can fail: a real document, altered, is rejected.
#[test]
fn schemas_reject_altered_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let mac = create(&tmp.path().join("m"), "fv-old-login-new");
    let args = ["diagnose", "--user", "alice", "--password-stdin"];
    let d = sim(&mac, &args, Some(&two(OLD, NEW)));
    d.expect_doc("diagnose", 3);
    let good = d.doc.clone();

    let rejected = |name: &str, doc: &Value, why: &str| {
        let errs = errors(name, doc);
        assert!(
            !errs.is_empty(),
            "{name}.json accepted a document with {why}:\n{doc}"
        );
    };
    let mut extra = good.clone();
    extra["undocumented"] = Value::from(true);
    rejected("diagnose", &extra, "an extra top-level field");

    let mut bad = good.clone();
    bad["secrets"][0]["accepts"] = Value::from("maybe");
    rejected("diagnose", &bad, "accepts \"maybe\"");

    // The rows' order is a promise of the report type, not of the schema:
    // checked on the real document.
    let order: Vec<&str> = good["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["secret"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "filevault",
            "login",
            "srp",
            "kerberos",
            "keychain",
            "local-items"
        ]
    );

    let mut bad = good.clone();
    bad["plan"][1]["action"] = Value::from("maybe");
    rejected("diagnose", &bad, "plan action \"maybe\"");

    let mut bad = good.clone();
    bad["exit_code"] = Value::from(0);
    rejected("diagnose", &bad, "exit 0 while out of sync");

    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("plan");
    rejected("diagnose", &bad, "no plan");

    let mut bad = good.clone();
    bad["version"] = Value::from(2);
    rejected("diagnose", &bad, "version 2");

    // A dry run never has secrets_after.
    let r = sim(
        &mac,
        &[
            "reconcile",
            "--dry-run",
            "--user",
            "alice",
            "--password-stdin",
        ],
        Some(&two(OLD, NEW)),
    );
    r.expect_doc("reconcile", 0);
    let mut bad = r.doc.clone();
    bad["secrets_after"] = r.doc["secrets"].clone();
    rejected("reconcile", &bad, "secrets_after on a dry run");
    let mut bad = r.doc.clone();
    bad["changed"] = serde_json::json!(["filevault"]);
    rejected("reconcile", &bad, "changed steps without secrets_after");

    // verify never says "old".
    let v = sim(
        &mac,
        &["verify", "--user", "alice", "--password-stdin"],
        Some(&one(OLD)),
    );
    v.expect_doc("verify", 3);
    let mut bad = v.doc.clone();
    bad["secrets"][0]["accepts"] = Value::from("old");
    rejected("verify", &bad, "accepts \"old\" from verify");

    // An error kind with another kind's exit code.
    let e = sim(&mac, &["users", "--volume", "disk9s9"], None);
    e.expect_error(2, "usage");
    let mut bad = e.doc.clone();
    bad["error"]["exit_code"] = Value::from(5);
    rejected("error", &bad, "kind usage with exit code 5");
    let mut bad = e.doc.clone();
    bad["error"]["kind"] = Value::from("oops");
    rejected("error", &bad, "kind \"oops\"");
}

/// Every schema in docs/schema is one of the documented ones, and each is valid.
#[test]
fn every_schema_file_is_known_and_valid() {
    let known = [
        "volumes",
        "users",
        "diagnose",
        "reconcile",
        "verify",
        "undo",
        "error",
        "sim-scenarios",
        "sim-create",
        "purge",
        "runbook",
        "selftest",
        "report",
        "receipt",
        "receipt-file",
        "fleet",
    ];
    let mut found: Vec<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    found.sort();
    let mut want: Vec<String> = known.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(found, want);
    for k in known {
        validator(k);
    }
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .unwrap();
    for k in known {
        assert!(
            doc.contains(&format!("schema/{k}.json")),
            "docs/json.md does not link docs/schema/{k}.json"
        );
    }
}

/// The committed schemas are the ones the report types generate
/// (`make schemas` writes them after a change to a type).
#[test]
fn schemas_are_generated_from_the_report_types() {
    let update = std::env::var_os("FVSYNC_UPDATE_SCHEMAS").is_some();
    let mut names = Vec::new();
    for (name, schema) in fvsync::engine::report::schemas() {
        names.push(format!("{name}.json"));
        let path = schema_dir().join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e} (run `make schemas`)", path.display()));
        assert_eq!(
            serde_json::from_str::<Value>(&committed).unwrap(),
            schema,
            "docs/schema/{name}.json is not what the report types generate: run `make schemas`"
        );
    }
    // No schema without a type.
    let mut on_disk: Vec<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    names.sort();
    if !update {
        assert_eq!(
            on_disk, names,
            "docs/schema/ holds schemas no type generates"
        );
    }
}
