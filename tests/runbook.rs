//! The runbook agrees with the tool: every screen it quotes is played on a
//! simulated Mac in a real terminal 80 columns wide (tmux), through the
//! Recovery launcher on a staged "USB stick", typing what the runbook says
//! the user types, and every line it quotes must appear, in order, in what
//! the terminal shows. Also: every line of `fvsync runbook` fits 80 columns,
//! it is plain text, `--section N` works (a wrong N is exit 2 with the list),
//! and its exit-code table is the one in src/error.rs.
//!
//! How the runbook's screens are read (its own "How to read the screens"):
//! an indented block with a "# " line (a command), an "<answer>" or a "..."
//! line is a screen; a screen block without a command goes on with the
//! previous screen. "..." inside a line stands for text left out.
//!
//! The screens need tmux (`.ci/run` installs it); without it that test says
//! so and passes. Set FVSYNC_UPDATE_RUNBOOK=1 to rewrite docs/runbook.md's
//! exit-code table from src/error.rs.

mod common;
use common::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn source() -> String {
    fs::read_to_string(root().join("docs/runbook.md")).unwrap()
}

/// One screen: what is typed at the shell, what is answered, what is shown.
#[derive(Debug, Clone)]
enum Line {
    Command(String),
    Answer { prompt: String, answer: String },
    Shown(String),
}

/// The screens of the runbook, in order; each starts with a command.
fn screens(text: &str) -> Vec<Vec<Line>> {
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for l in text.lines() {
        if let Some(b) = l.strip_prefix("    ") {
            // Indentation past the block's own does not matter: words are compared.
            cur.push(b.trim_start_matches(' ').to_string());
        } else if !cur.is_empty() {
            blocks.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    let mut out: Vec<Vec<Line>> = Vec::new();
    for b in blocks {
        let is_screen = b
            .iter()
            .any(|l| l.starts_with("# ") || l.contains('<') && l.ends_with('>') || l == "...");
        if !is_screen {
            continue;
        }
        let mut lines = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let l = &b[i];
            if let Some(c) = l.strip_prefix("# ") {
                let mut c = c.to_string();
                while c.ends_with('\\') && i + 1 < b.len() {
                    c.pop();
                    i += 1;
                    c.push_str(b[i].trim());
                }
                lines.push(Line::Command(c.trim().to_string()));
            } else if let (Some(a), true) = (l.rfind('<'), l.ends_with('>')) {
                lines.push(Line::Answer {
                    prompt: l[..a].trim().to_string(),
                    answer: l[a + 1..l.len() - 1].to_string(),
                });
            } else {
                lines.push(Line::Shown(l.clone()));
            }
            i += 1;
        }
        let starts = matches!(lines.first(), Some(Line::Command(_)));
        match out.last_mut() {
            Some(prev) if !starts => prev.extend(lines),
            _ => {
                assert!(starts, "a screen block before any command: {b:?}");
                out.push(lines);
            }
        }
    }
    out
}

/// Commands the runbook quotes that this test does not type, and why; each
/// must still be quoted (a stale entry fails), and everything else is run.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "cd /tmp",
        "way B (download): recovery_script::url_download_through_curl_on_path",
    ),
    (
        "curl -fsSLO https://it.example.com/fvsync/fvsync-recovery.sh",
        "way B: no network in tests",
    ),
    (
        "sh fvsync-recovery.sh --url https://it.example.com/fvsync diagnose",
        "way B: recovery_script::url_download_through_curl_on_path",
    ),
    (
        "sysadminctl -secureTokenOn alice -password - -adminUser ADMIN -adminPassword -",
        "a macOS tool in a normal boot",
    ),
    (
        "make demo",
        "checked against the Makefile below (a build inside a test)",
    ),
    (
        "sh scripts/stage-usb.sh /tmp/USB",
        "the test stages its stick as stage-usb.sh does (recovery_script::stage_usb_*)",
    ),
];

/// What the user types for an "<answer>".
fn typed(answer: &str) -> &str {
    match answer {
        "OLD" => OLD,
        "NEW" => NEW,
        "NEW, mistyped" => "New-Passw0rd?",
        "Return" => "",
        other => other,
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Finds `pieces` (the parts of a quoted line around "...") in `screen`
/// from word `from` on, each piece's words contiguous, in order; returns the
/// word after the match.
fn find(screen: &[String], from: usize, pieces: &[Vec<String>]) -> Option<usize> {
    let mut at = from;
    for p in pieces {
        if p.is_empty() {
            continue;
        }
        let i = (at..=screen.len().saturating_sub(p.len()))
            .find(|&i| screen[i..i + p.len()] == p[..])?;
        at = i + p.len();
    }
    Some(at)
}

fn pieces(line: &str) -> Vec<Vec<String>> {
    line.split("...").map(words).collect()
}

struct Term {
    name: String,
    subst: Vec<(String, String)>,
    sim: String,
}

impl Term {
    fn start(tmp: &Path, subst: Vec<(String, String)>, sim: String, n: usize) -> Term {
        let name = format!("fvsync-runbook-{}-{n}", std::process::id());
        let rc = tmp.join("rc");
        fs::write(&rc, "PS1='# '\n").unwrap();
        let cmd = format!(
            "cd '{}' && env -u FVSYNC_LAUNCHER NO_COLOR=1 TMPDIR='{}' PATH='{}' bash --noprofile --rcfile '{}' -i",
            tmp.display(),
            tmp.join("session-tmp").display(),
            std::env::var("PATH").unwrap_or_default(),
            rc.display()
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "80",
                "-y",
                "40",
                &cmd,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Command::new("tmux")
            .args(["set-option", "-t", &name, "history-limit", "20000"])
            .status()
            .unwrap();
        Term { name, subst, sim }
    }

    fn raw(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The screen as words, with this test's paths put back to the
    /// runbook's and the `--simulate DIR` this test adds taken out.
    fn screen(&self) -> Vec<String> {
        let mut s = self.raw();
        for (real, shown) in &self.subst {
            s = s.replace(real.as_str(), shown);
        }
        let w = words(&s);
        let mut out = Vec::with_capacity(w.len());
        let mut i = 0;
        while i < w.len() {
            if w[i] == "--simulate" && i + 1 < w.len() && w[i + 1].trim_matches('\'') == self.sim {
                i += 2;
                continue;
            }
            out.push(w[i].clone());
            i += 1;
        }
        out
    }

    fn send(&self, text: &str) {
        if !text.is_empty() {
            Command::new("tmux")
                .args(["send-keys", "-t", &self.name, "-l", text])
                .status()
                .unwrap();
        }
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "Enter"])
            .status()
            .unwrap();
    }

    /// Waits until `line` is on the screen after word `from`; returns the
    /// word after it.
    fn wait(&self, from: usize, line: &str) -> usize {
        let p = pieces(line);
        let start = Instant::now();
        loop {
            let s = self.screen();
            if let Some(at) = find(&s, from, &p) {
                return at;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the runbook quotes a line fvsync does not print:\n  {line}\nscreen:\n{}",
                self.raw()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

/// A "USB stick" in `dir` as stage-usb.sh makes one: the binary under the
/// name the launcher looks for, the launcher, SHA256SUMS.
fn stick(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let bin = fs::read(env!("CARGO_BIN_EXE_fvsync")).unwrap();
    let name = if cfg!(target_os = "macos") {
        "fvsync-macos-universal"
    } else {
        "fvsync-linux-x86_64"
    };
    fs::write(dir.join(name), &bin).unwrap();
    fs::copy(
        root().join("recovery/fvsync-recovery.sh"),
        dir.join("fvsync-recovery.sh"),
    )
    .unwrap();
    let sum: String = Sha256::digest(&bin)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(dir.join("SHA256SUMS"), format!("{sum}  {name}\n")).unwrap();
    dir.to_path_buf()
}

#[test]
fn every_quoted_screen_is_what_fvsync_prints() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("note: tmux is not installed; the runbook's screens were not played");
        return;
    }
    let text = fvsync().arg("runbook").output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let all = screens(&text);
    assert!(
        all.len() >= 6,
        "the runbook's screens were not found: {all:?}"
    );

    // The Mac of sections 3 to 10 (the common case), the stick, and the Mac
    // and stick of section 11's rehearsal.
    let (t, mac) = mac("fv-old-login-new");
    let tmp = t.path().to_path_buf();
    fs::create_dir_all(tmp.join("session-tmp")).unwrap();
    let usb = stick(&tmp.join("FVSYNC"));
    let usb2 = stick(&tmp.join("USB"));
    let mac2 = tmp.join("mac11");
    let bin = env!("CARGO_BIN_EXE_fvsync").to_string();
    let subst_cmd = |c: &str| -> String {
        let mut c = c
            .replace("/Volumes/FVSYNC", usb.to_str().unwrap())
            .replace("/tmp/USB", usb2.to_str().unwrap())
            .replace("/tmp/mac", mac2.to_str().unwrap())
            .replace("target/demo/debug/fvsync", &bin);
        if c.contains(" sim create ") {
            // Speed only: the same simulated Mac with fast key derivations.
            c.push_str(" --iterations 1000");
        }
        let words: Vec<&str> = c.split(' ').collect();
        if words.len() >= 3
            && words[0] == "sh"
            && words[1] == format!("{}/fvsync-recovery.sh", usb.display())
            && !c.contains("--simulate")
        {
            let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
            w.insert(3, format!("--simulate {}", mac.display()));
            c = w.join(" ");
        }
        c
    };
    let subst = vec![
        (
            usb.to_str().unwrap().to_string(),
            "/Volumes/FVSYNC".to_string(),
        ),
        (usb2.to_str().unwrap().to_string(), "/tmp/USB".to_string()),
        (mac2.to_str().unwrap().to_string(), "/tmp/mac".to_string()),
        (
            "fvsync-linux-x86_64".to_string(),
            "fvsync-macos-universal".to_string(),
        ),
    ];

    let mut not_run_seen = vec![false; NOT_RUN.len()];
    for (n, screen) in all.iter().enumerate() {
        let term = Term::start(&tmp, subst.clone(), mac.to_str().unwrap().to_string(), n);
        let start = Instant::now();
        while !term.raw().contains('#') {
            assert!(start.elapsed() < Duration::from_secs(30), "no shell prompt");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut at = 0;
        for line in screen {
            match line {
                Line::Command(c) => {
                    if let Some(k) = NOT_RUN.iter().position(|(nc, _)| nc == c) {
                        not_run_seen[k] = true;
                        continue;
                    }
                    // What was shown so far is behind us; the command's own
                    // echo is not compared (its paths are this test's).
                    at = term.screen().len();
                    term.send(&subst_cmd(c));
                }
                Line::Answer { prompt, answer } => {
                    at = term.wait(at, prompt);
                    std::thread::sleep(Duration::from_millis(150));
                    term.send(typed(answer));
                }
                Line::Shown(s) => {
                    if s.trim() == "..." {
                        continue;
                    }
                    at = term.wait(at, s);
                }
            }
        }
        // Whatever still waits for an answer (section 11's last command) stops.
        Command::new("tmux")
            .args(["send-keys", "-t", &term.name, "C-c"])
            .status()
            .unwrap();
        eprintln!("--- screen {n} ---\n{}", term.raw().trim_end());
    }
    for (k, seen) in not_run_seen.iter().enumerate() {
        assert!(
            seen,
            "NOT_RUN lists a command the runbook no longer quotes: {}",
            NOT_RUN[k].0
        );
    }
    // The binary the rehearsal names is the one `make demo` builds.
    let make = fs::read_to_string(root().join("Makefile")).unwrap();
    let demo = make.split("\ndemo:").nth(1).unwrap();
    let demo = demo.split("\n\n").next().unwrap();
    assert!(
        demo.contains("CARGO_TARGET_DIR=target/demo ") && demo.contains("--bin fvsync"),
        "make demo no longer builds target/demo/debug/fvsync:\n{demo}"
    );
    assert!(text.contains("target/demo/debug/fvsync") && !text.contains("target/debug/fvsync"));
}

#[test]
fn runbook_fits_80_columns_and_is_plain_text() {
    let o = fvsync().arg("runbook").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    for (i, l) in text.lines().enumerate() {
        let w = unicode_width::UnicodeWidthStr::width(l);
        assert!(w <= 80, "line {} is {w} columns:\n{l}", i + 1);
        assert!(
            !l.starts_with('|') && !l.starts_with("```") && !l.starts_with("#"),
            "markup on line {}: {l}",
            i + 1
        );
        assert!(
            !l.contains("**") && !l.contains("](") && !l.contains("<!--"),
            "markup on line {}: {l}",
            i + 1
        );
    }
}

#[test]
fn section_prints_one_section_and_a_wrong_one_lists_them() {
    let o = fvsync()
        .args(["runbook", "--section", "4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.starts_with("4. Diagnose (changes nothing)\n---"), "{s}");
    assert!(s.contains("OLD password of alice"), "{s}");
    assert!(!s.contains("5. Reconcile"), "{s}");

    let o = fvsync()
        .args(["runbook", "--section", "8"])
        .output()
        .unwrap();
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.contains("     130  Interrupted (Ctrl-C)."), "{s}");

    let o = fvsync()
        .args(["runbook", "--section", "42"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.contains("The runbook's sections:"), "{e}");
    assert!(e.contains("   4  Diagnose (changes nothing)"), "{e}");
    assert!(e.contains("  11  Rehearse on a simulated Mac"), "{e}");
    assert!(
        e.contains("fvsync: error: the runbook has no section 42: its sections are 0 to 11"),
        "{e}"
    );
}

#[test]
fn exit_code_table_is_the_one_in_the_code() {
    let src = source();
    let begin = fvsync::runbook::BEGIN;
    let end = fvsync::runbook::END;
    let (head, rest) = src
        .split_once(&format!("{begin}\n"))
        .expect("the BEGIN marker");
    let (table, tail) = rest
        .split_once(&format!("{end}\n"))
        .expect("the END marker");
    let want = fvsync::error::Exit::runbook_table(fvsync::runbook::WIDTH);
    if std::env::var_os("FVSYNC_UPDATE_RUNBOOK").is_some() {
        fs::write(
            root().join("docs/runbook.md"),
            format!("{head}{begin}\n{want}{end}\n{tail}"),
        )
        .unwrap();
        return;
    }
    assert_eq!(
        table, want,
        "docs/runbook.md's exit-code table differs from src/error.rs: run FVSYNC_UPDATE_RUNBOOK=1 cargo test --features testing --test runbook"
    );
    // What fvsync prints comes from the code, whatever the file says.
    let printed = fvsync::runbook::render(&format!("{head}{begin}\nstale\n{end}\n{tail}"));
    assert!(printed.contains(&want) && !printed.contains("stale"));
    for e in fvsync::error::Exit::ALL {
        assert!(want.contains(&format!("    {:>4}  ", e.code())));
    }
}
