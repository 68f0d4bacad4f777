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

#[path = "../examples/gen-docs.rs"]
#[allow(dead_code)]
mod gen_docs;

#[test]
fn man_synopsis_shows_values_and_install_puts_pages_where_man_finds_them() {
    let t = tempfile::tempdir().unwrap();
    let dist = t.path().join("dist");
    gen_docs::write(&dist.join("docs")).unwrap();
    let page = std::fs::read_to_string(dist.join("docs/man/fvsync-diagnose.1")).unwrap();
    let syn = page
        .split(".SH SYNOPSIS\n")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(syn.contains(r"\fB\-\-user\fR \fINAME\fR"), "{syn}");
    assert!(syn.contains(r"[\fB\-\-volume\fR \fIDEV\fR]"), "{syn}");
    assert!(syn.contains(r"[\fB\-\-simulate\fR \fIDIR\fR]"), "{syn}");
    // The flags for testing and support stay out of the synopsis, in OPTIONS.
    assert!(!syn.contains("diskutil"), "{syn}");
    assert!(
        page.contains(r"\fB\-\-diskutil\fR"),
        "OPTIONS lists --diskutil"
    );
    let top = std::fs::read_to_string(dist.join("docs/man/fvsync.1")).unwrap();
    assert!(top.contains(r"\fIcommand\fR ..."), "{top}");

    // make install-man (what make install-docs runs after make docs).
    let prefix = t.path().join("prefix");
    let o = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root())
        .arg("install-man")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("DIST={}", dist.display()))
        .output();
    let Ok(o) = o else {
        eprintln!("note: make is not installed; install-man not run");
        return;
    };
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("man pages in") && out.contains("try man fvsync"),
        "{out}"
    );
    let man1 = prefix.join("share/man/man1");
    assert!(man1.join("fvsync.1").is_file() && man1.join("fvsync-reconcile.1").is_file());
    assert!(prefix
        .join("share/bash-completion/completions/fvsync")
        .is_file());
    if let Ok(m) = Command::new("man")
        .arg("-M")
        .arg(prefix.join("share/man"))
        .args(["-w", "fvsync"])
        .output()
    {
        if m.status.success() {
            let w = String::from_utf8_lossy(&m.stdout);
            assert!(w.contains("man1/fvsync.1"), "{w}");
        }
    }
}

#[test]
fn support_flags_are_hidden_from_short_help_under_their_heading() {
    let bin = env!("CARGO_BIN_EXE_fvsync");
    let short = Command::new(bin).args(["diagnose", "-h"]).output().unwrap();
    let short = String::from_utf8_lossy(&short.stdout);
    assert!(
        !short.contains("--diskutil") && !short.contains("--hdiutil"),
        "{short}"
    );
    let long = Command::new(bin)
        .args(["diagnose", "--help"])
        .output()
        .unwrap();
    let long = String::from_utf8_lossy(&long.stdout);
    let (before, support) = long
        .split_once("Testing and support:")
        .expect("the heading");
    assert!(support.contains("--diskutil <PATH>") && support.contains("--diskutil-timeout <SECS>"));
    assert!(!before.contains("--diskutil"), "{before}");
}
