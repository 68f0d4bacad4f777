//! The documents that describe the tool agree with it: docs/exit-codes.md's
//! table is the exit-code table of src/error.rs, and it and docs/json.md say
//! the same about a failed `--json` run; the man pages `make docs` writes show
//! each flag with its value, and `make install-docs` puts them where `man`
//! finds them.

use std::path::PathBuf;
use std::process::Command;

use fvsync::error::Exit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const BEGIN: &str = "<!-- exit codes: generated from src/error.rs (tests/docs.rs) -->\n";
const END: &str = "<!-- end of the exit codes -->\n";

fn table() -> String {
    let mut s = String::from("| code | name | meaning |\n| --- | --- | --- |\n");
    for e in Exit::ALL {
        let name = serde_json::to_value(e).unwrap();
        s.push_str(&format!(
            "| {} | `{}` | {}. |\n",
            e.code(),
            name.as_str().unwrap(),
            e.meaning()
        ));
    }
    s
}

#[test]
fn exit_codes_md_has_the_table_of_the_code() {
    let path = root().join("docs/exit-codes.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = doc.split_once(BEGIN).expect("the BEGIN marker");
    let (got, tail) = rest.split_once(END).expect("the END marker");
    if std::env::var_os("FVSYNC_UPDATE_DOCS").is_some() {
        std::fs::write(&path, format!("{head}{BEGIN}{}{END}{tail}", table())).unwrap();
        return;
    }
    assert_eq!(
        got,
        table(),
        "docs/exit-codes.md differs from src/error.rs: FVSYNC_UPDATE_DOCS=1 cargo test --features testing --test docs"
    );
    // Every code has its own section.
    for e in Exit::ALL {
        assert!(
            doc.contains(&format!("\n## {}: ", e.code())),
            "no section for {}",
            e.code()
        );
    }
}

#[test]
fn a_failed_json_run_prints_an_error_document_in_both_documents() {
    let codes = std::fs::read_to_string(root().join("docs/exit-codes.md")).unwrap();
    let json = std::fs::read_to_string(root().join("docs/json.md")).unwrap();
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat(&codes).contains("With `--json`, a failed command prints the error document"));
    assert!(!flat(&codes).contains("prints no JSON document"));
    assert!(flat(&json).contains("When a command fails, it prints the error document"));
    // And the tool does: an unknown user, with --json.
    let t = tempfile::tempdir().unwrap();
    let mac = t.path().join("mac");
    let bin = env!("CARGO_BIN_EXE_fvsync");
    let ok = Command::new(bin)
        .args(["sim", "create"])
        .arg(&mac)
        .args(["--iterations", "1000"])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = Command::new(bin)
        .arg("--simulate")
        .arg(&mac)
        .args([
            "--json",
            "verify",
            "--user",
            "nobody-here",
            "--password-stdin",
        ])
        .env("TMPDIR", t.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exit_code"], 2);
    assert!(v["error"]["message"].is_string(), "{v}");
}
