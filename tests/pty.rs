//! fvsync in a real pseudo-terminal (tmux): the prompts say which password is
//! wanted, typed passwords appear nowhere on screen, a mismatched NEW is asked
//! again without a FileVault attempt, the plan is confirmed before any write,
//! the terminal's line editing works at a password prompt, and Ctrl-C at any
//! prompt leaves every file untouched and the terminal's echo back on.
//!
//! Needs tmux (`.ci/run` installs it); without it the tests say so and pass.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Session {
    name: String,
}

impl Session {
    fn start(dir: &Path, args: &str) -> Option<Session> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("note: tmux is not installed; pty test skipped");
            return None;
        }
        let name = format!(
            "fvsync-pty-{}-{}",
            std::process::id(),
            dir.to_string_lossy().len() ^ rand_suffix()
        );
        let bin = env!("CARGO_BIN_EXE_fvsync");
        let cmd = format!(
            "trap 'echo' INT; env NO_COLOR=1 '{bin}' --simulate '{}' {args}; echo \"EXIT=$?\"; sleep 60",
            dir.display()
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "220",
                "-y",
                "60",
                &cmd,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Some(Session { name })
    }

    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-S", "-200", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {text:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, text: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", text])
            .status()
            .unwrap();
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "Enter"])
            .status()
            .unwrap();
    }

    fn keys(&self, keys: &[&str]) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
    }

    fn ctrl_c(&self) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "C-c"])
            .status()
            .unwrap();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn rand_suffix() -> usize {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize
}

#[test]
fn interactive_reconcile_never_echoes_a_password() {
    let (_t, dir) = mac("all-old");
    let Some(s) = Session::start(&dir, "reconcile --user alice") else {
        return;
    };
    s.wait_for("OLD password of alice (the one before the directory change):");
    s.type_line(OLD);
    // OLD may spend a FileVault attempt: it is typed twice.
    s.wait_for("OLD password of alice again, to confirm:");
    s.type_line(OLD);
    s.wait_for("NEW password of alice (the current directory password):");
    s.type_line(NEW);
    s.wait_for("NEW password of alice again, to confirm:");
    // A mismatch is asked again, and costs no FileVault attempt.
    s.type_line("New-Passw0rd?");
    let start = Instant::now();
    loop {
        let n = s
            .screen()
            .matches("NEW password of alice (the current directory password):")
            .count();
        if n >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "NEW was not asked again:\n{}",
            s.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.type_line(NEW);
    s.wait_for("again, to confirm:");
    std::thread::sleep(Duration::from_millis(200));
    s.type_line(NEW);
    s.wait_for("Apply this plan? [y/N]");
    s.type_line("y");
    let screen = s.wait_for("EXIT=");
    eprintln!("--- captured screen ---\n{screen}\n--- end ---");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains("After:") && screen.contains("Next: restart the Mac"),
        "{screen}"
    );
    for pw in [OLD, NEW, "New-Passw0rd?"] {
        assert!(
            !screen.contains(pw),
            "a password was echoed: {pw}\n{screen}"
        );
    }
    assert_eq!(alice_state(&dir, true), ("new", "new", "new", "new"));
}

#[test]
fn ctrl_c_at_any_prompt_changes_nothing() {
    let prompts = [
        "OLD password of alice (the one",
        "OLD password of alice again",
        "NEW password of alice (the current",
        "NEW password of alice again",
        "Apply this plan? [y/N]",
    ];
    for (i, prompt) in prompts.iter().enumerate() {
        let (_t, dir) = mac("all-old");
        let before = tree(&dir);
        let Some(s) = Session::start(&dir, "reconcile --user alice") else {
            return;
        };
        let answers = [OLD, OLD, NEW, NEW];
        for (j, p) in prompts.iter().enumerate().take(i) {
            s.wait_for(p);
            s.type_line(answers[j]);
        }
        s.wait_for(prompt);
        s.ctrl_c();
        let screen = s.wait_for("EXIT=");
        assert!(
            !screen.contains("EXIT=0"),
            "Ctrl-C at {prompt:?} exited 0:\n{screen}"
        );
        assert_eq!(tree(&dir), before, "Ctrl-C at {prompt:?} changed files");
    }
}

#[test]
fn line_editing_works_and_ctrl_c_gives_the_echo_back() {
    // fvsync reads the password itself, in canonical mode with echo off: the
    // terminal's erase key (Backspace) edits the hidden line as anywhere else.
    let (_t, dir) = mac("in-sync");
    let Some(s) = Session::start(&dir, "verify --user alice") else {
        return;
    };
    s.wait_for("password of alice to check:");
    s.keys(&["-l", "New-Passw0rdZZ"]);
    s.keys(&["BSpace", "BSpace"]);
    s.keys(&["-l", "!"]);
    s.keys(&["Enter"]);
    let screen = s.wait_for("EXIT=");
    assert!(
        screen.contains("EXIT=0"),
        "the edited line was not NEW:\n{screen}"
    );
    assert!(!screen.contains("New-Passw0rd"), "echoed:\n{screen}");
    drop(s);

    // Ctrl-C at the prompt: afterwards, what is typed is shown again.
    let Some(s) = Session::start(&dir, "verify --user alice") else {
        return;
    };
    s.wait_for("password of alice to check:");
    s.ctrl_c();
    let screen = s.wait_for("EXIT=");
    assert!(screen.contains("EXIT=130"), "{screen}");
    s.keys(&["-l", "echo-is-back-42"]);
    s.wait_for("echo-is-back-42");
}
