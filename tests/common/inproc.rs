//! The engine in-process, without launching the binary: a simulated Mac
//! (`SimMac::open`), a `Ui` writing into buffers the test reads afterwards,
//! and scripted passwords. Only the library's public entry points are used
//! (`fvsync::cli::{diagnose, verify, reconcile, undo}`, `Ctx` and `UserSel`),
//! and an error is turned into its exit code and message as `main` does.
//!
//! The derivation memo (`fvsync::crypto`) is process-wide: unlike separate
//! runs of the binary, in-process runs in one test binary share it (the
//! derivation test relies on reading it after a run).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use fvsync::engine::{Ctx, Invocation, UserSel};
use fvsync::error::{Error, ErrorKind};
use fvsync::output::Ui;
use fvsync::secret::{Password, PasswordSource, Which};
use fvsync::sim::SimMac;

/// A writer into a buffer shared with the test.
#[derive(Clone, Default)]
pub struct Captured(Rc<RefCell<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Passwords handed out in order, as `--password-stdin` gives them (not a
/// terminal: NEW is read once). Records which password each read asked for.
pub struct Scripted {
    passwords: VecDeque<String>,
    /// What each read asked for, in order.
    pub asked: Vec<Which>,
    /// The answer to every yes/no question (`false`, as on stdin) once
    /// `answers` ran out.
    pub answer: bool,
    /// A person at a terminal (NEW is typed twice, questions are asked).
    pub person: bool,
    /// The answers to the yes/no questions, in order.
    pub answers: VecDeque<bool>,
    /// The lines typed at `ask_line` prompts, in order.
    pub lines: VecDeque<String>,
    /// Every question and prompt shown, in order.
    pub questions: Vec<String>,
}

impl Scripted {
    pub fn new(passwords: &[&str]) -> Self {
        Scripted {
            passwords: passwords.iter().map(|p| p.to_string()).collect(),
            asked: Vec::new(),
            answer: false,
            person: false,
            answers: VecDeque::new(),
            lines: VecDeque::new(),
            questions: Vec::new(),
        }
    }

    /// A person at the terminal who types `passwords`, answers `answers` to
    /// the yes/no questions and `lines` at the other prompts.
    pub fn person(passwords: &[&str], answers: &[bool], lines: &[&str]) -> Self {
        Scripted {
            person: true,
            answers: answers.iter().copied().collect(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            ..Scripted::new(passwords)
        }
    }
}

impl PasswordSource for Scripted {
    fn read(&mut self, which: Which, _user: &str) -> Result<Password, Error> {
        self.asked.push(which);
        match self.passwords.pop_front() {
            Some(p) => Ok(Password::for_tests(&p)),
            None => Err(Error::new(
                ErrorKind::Usage,
                format!("the scripted passwords ran out ({which:?} asked)"),
            )),
        }
    }

    fn interactive(&self) -> bool {
        self.person
    }

    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        self.questions.push(question.to_string());
        Ok(self.answers.pop_front().unwrap_or(self.answer))
    }

    fn ask_line(&mut self, prompt: &str) -> Result<String, Error> {
        self.questions.push(prompt.to_string());
        self.lines.pop_front().ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!("the scripted lines ran out ({prompt:?} asked)"),
            )
        })
    }
}

/// What an in-process run printed and returned.
pub struct InProc {
    /// The exit code the binary would have given.
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
    /// Which passwords the run asked for, in order.
    pub asked: Vec<Which>,
    /// The questions and prompts shown, in order.
    pub questions: Vec<String>,
}

impl InProc {
    /// stdout as the one JSON document of a `json` run.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// `reconcile --user alice --password-stdin --yes`.
pub fn alice_reconcile() -> fvsync::engine::cmd::reconcile::Opts {
    fvsync::engine::cmd::reconcile::Opts {
        sel: alice(),
        ..Default::default()
    }
}

/// `--user alice --password-stdin --yes`.
pub fn alice() -> UserSel {
    UserSel {
        user: "alice".into(),
        yes: true,
        ..UserSel::default()
    }
}

/// Runs `command` in-process on `platform` (any backend, a faulty one
/// included), with `passwords` as the lines of stdin would give them.
pub fn run_on<O, F>(
    platform: &mut dyn fvsync::platform::Platform,
    prefix: &str,
    opts: &O,
    json: bool,
    passwords: &[&str],
    command: F,
) -> InProc
where
    F: FnOnce(&mut Ctx<'_>, &O) -> fvsync::error::Result<u8>,
{
    drive(
        Ok(platform),
        prefix,
        opts,
        json,
        Scripted::new(passwords),
        command,
    )
}

/// Runs `command` (e.g. `fvsync::cli::diagnose`) in-process on the
/// simulated Mac in `dir`, with `passwords` as the lines of stdin would give
/// them; `json` as `--json`.
pub fn run_engine<O, F>(dir: &Path, opts: &O, json: bool, passwords: &[&str], command: F) -> InProc
where
    F: FnOnce(&mut Ctx<'_>, &O) -> fvsync::error::Result<u8>,
{
    run_engine_as(dir, opts, json, Scripted::new(passwords), command)
}

/// [`run_engine`] with this source of passwords and answers (a person).
pub fn run_engine_as<O, F>(dir: &Path, opts: &O, json: bool, src: Scripted, command: F) -> InProc
where
    F: FnOnce(&mut Ctx<'_>, &O) -> fvsync::error::Result<u8>,
{
    let mut mac;
    let platform = match SimMac::open(dir) {
        Ok(m) => {
            mac = m;
            Ok(&mut mac as &mut dyn fvsync::platform::Platform)
        }
        Err(e) => Err(e),
    };
    let prefix = format!("fvsync --simulate {}", dir.display());
    drive(platform, &prefix, opts, json, src, command)
}

/// The one body of the runs above: the UI on captured writers, the command,
/// an error printed as the binary prints it, and what was shown and asked.
fn drive<O, F>(
    platform: fvsync::error::Result<&mut dyn fvsync::platform::Platform>,
    prefix: &str,
    opts: &O,
    json: bool,
    mut src: Scripted,
    command: F,
) -> InProc
where
    F: FnOnce(&mut Ctx<'_>, &O) -> fvsync::error::Result<u8>,
{
    let (out, err) = (Captured::default(), Captured::default());
    let mut ui = Ui::with_writers(Box::new(out.clone()), Box::new(err.clone()), json);
    let result = platform.and_then(|p| {
        let mut ctx = Ctx {
            p,
            ui: &mut ui,
            src: &mut src,
            inv: Invocation {
                prefix: prefix.to_string(),
            },
        };
        command(&mut ctx, opts)
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            ui.error(&e);
            e.kind().exit_code()
        }
    };
    ui.flush();
    drop(ui);
    InProc {
        code,
        stdout: out.text(),
        stderr: err.text(),
        asked: src.asked,
        questions: src.questions,
    }
}
