//! The one module that writes to stdout and stderr. Everything else returns
//! values; this module renders them for people (tables, colour on a terminal
//! by the `NO_COLOR` / `CLICOLOR` / `CLICOLOR_FORCE` conventions, lines
//! wrapped to the terminal's width, 78 columns when it is unknown) or for
//! scripts (`--json`, with `"version": 1`).

pub mod render;

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use anstyle::{AnsiColor, Style};
use unicode_width::UnicodeWidthStr;

use crate::error::Error;

/// A table cell: raw text (escaped by [`Ui::table`]), or a status word
/// coloured on a terminal (green good, red bad, yellow other).
#[derive(Clone, Debug)]
pub enum Cell {
    /// Text from anywhere, shown escaped.
    Text(String),
    /// A status word.
    Status(String, Option<bool>),
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

/// A heading.
const HEADING: Style = Style::new().bold();
/// A status that is good, bad, or neither.
const GOOD: Style = AnsiColor::Green.on_default();
const BAD: Style = AnsiColor::Red.on_default();
const OTHER: Style = AnsiColor::Yellow.on_default();

/// How the run prints.
pub struct Ui {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// `--json`: stdout carries one JSON document and nothing else.
    pub json: bool,
    /// `--verbose`: paths, schemes and iteration counts in the tables.
    pub verbose: bool,
    /// The width lines are wrapped to.
    pub width: usize,
    color: bool,
    err_is_tty: bool,
    wrote_json: bool,
    spinner: Option<Spinner>,
    attempts: Option<crate::engine::attempts::Ledger>,
    /// The report already showed the attempts line on stdout.
    pub(crate) wrote_text_attempts: bool,
}

/// The width lines are wrapped to: the terminal's (of stdout, else stderr),
/// else `COLUMNS` when set, else 78; never below 40.
pub fn terminal_width() -> usize {
    let from_fd = |fd: std::os::fd::BorrowedFd<'_>| {
        rustix::termios::tcgetwinsize(fd)
            .ok()
            .map(|w| usize::from(w.ws_col))
            .filter(|&w| w > 0)
    };
    let w = from_fd(std::io::stdout().as_fd())
        .or_else(|| from_fd(std::io::stderr().as_fd()))
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(78);
    w.clamp(40, 10_000)
}

/// What the environment says about colour, as `anstyle-query` reads it (the
/// crate clap uses for its own help).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ColorEnv {
    /// `NO_COLOR` set and not empty (no-color.org: an empty value does not count).
    no_color: bool,
    /// `CLICOLOR_FORCE` set and not empty.
    clicolor_force: bool,
    /// `CLICOLOR`: unset, `0` (`Some(false)`) or anything else (`Some(true)`).
    clicolor: Option<bool>,
    /// `TERM` set and not `dumb`.
    term_supports_color: bool,
    /// `CI` set.
    ci: bool,
}

impl ColorEnv {
    fn from_process() -> Self {
        ColorEnv {
            no_color: anstyle_query::no_color(),
            clicolor_force: anstyle_query::clicolor_force(),
            clicolor: anstyle_query::clicolor(),
            term_supports_color: anstyle_query::term_supports_color(),
            ci: anstyle_query::is_ci(),
        }
    }
}

/// Whether colour is wanted, decided as clap (anstream) decides it for its
/// help: `NO_COLOR` wins, then `CLICOLOR_FORCE`, then `CLICOLOR=0`; otherwise
/// only on a terminal that can show colour (`TERM` not `dumb`, or `CLICOLOR`
/// set, or a CI).
fn want_color(env: ColorEnv, stdout_is_terminal: bool) -> bool {
    if env.no_color {
        false
    } else if env.clicolor_force {
        true
    } else if env.clicolor == Some(false) {
        false
    } else {
        stdout_is_terminal && (env.term_supports_color || env.clicolor == Some(true) || env.ci)
    }
}

/// Wraps `text` to `width` columns: the first line starts with `first`, the
/// others with `rest` (both counted), in terminal columns ([`visible_len`]).
/// Words longer than a line are kept whole.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = first.to_string();
    let mut len = visible_len(first);
    let mut empty = true;
    for word in text.split_whitespace() {
        let wl = visible_len(word);
        if !empty && len + 1 + wl > width {
            out.push(line);
            line = rest.to_string();
            len = visible_len(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += wl;
        empty = false;
    }
    out.push(line);
    out
}

/// A progress line on the terminal's stderr, drawn by its own thread after a
/// short delay so that quick steps print nothing.
struct Spinner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl Spinner {
    fn start(message: String) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let frames = ['|', '/', '-', '\\'];
            let start = std::time::Instant::now();
            let mut drawn = false;
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                if start.elapsed() >= std::time::Duration::from_millis(300) {
                    let mut e = std::io::stderr();
                    let _ = write!(e, "\r\x1b[2K{} {message}", frames[i % frames.len()]);
                    let _ = e.flush();
                    drawn = true;
                    i += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if drawn {
                let mut e = std::io::stderr();
                let _ = write!(e, "\r\x1b[2K");
                let _ = e.flush();
            }
        });
        Spinner { stop, handle }
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.handle.join();
    }
}

impl Ui {
    /// The real stdout and stderr.
    pub fn stdio(json: bool) -> Self {
        Ui {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            json,
            verbose: false,
            width: terminal_width(),
            color: want_color(ColorEnv::from_process(), std::io::stdout().is_terminal()),
            err_is_tty: std::io::stderr().is_terminal(),
            wrote_json: false,
            spinner: None,
            attempts: None,
            wrote_text_attempts: false,
        }
    }

    /// Writers chosen by the caller (tests).
    pub fn with_writers(out: Box<dyn Write>, err: Box<dyn Write>, json: bool) -> Self {
        Ui {
            out,
            err,
            json,
            verbose: false,
            width: 10_000,
            color: false,
            err_is_tty: false,
            wrote_json: false,
            spinner: None,
            attempts: None,
            wrote_text_attempts: false,
        }
    }

    /// Remembers this run's FileVault attempts, so that every exit path
    /// (an error's too) shows them, on the screen and in the JSON document.
    pub fn set_attempts(&mut self, l: &crate::engine::attempts::Ledger) {
        self.attempts = Some(l.clone());
    }

    /// A paragraph, wrapped to the width (suppressed in JSON mode).
    pub fn para(&mut self, s: &str) {
        self.para_indent(s, "", "");
    }

    /// A paragraph with its own first-line and continuation prefixes.
    pub fn para_indent(&mut self, s: &str, first: &str, rest: &str) {
        if self.json {
            return;
        }
        for l in wrap(s, self.width, first, rest) {
            let _ = writeln!(self.out, "{}", l.trim_end());
        }
    }

    /// A line of requested output (suppressed in JSON mode).
    pub fn line(&mut self, s: &str) {
        if !self.json {
            let _ = writeln!(self.out, "{s}");
        }
    }

    /// A heading (bold on a terminal).
    pub fn heading(&mut self, s: &str) {
        if self.json {
            return;
        }
        if self.color {
            let _ = writeln!(
                self.out,
                "{}{s}{}",
                HEADING.render(),
                HEADING.render_reset()
            );
        } else {
            let _ = writeln!(self.out, "{s}");
        }
    }

    /// Colours a short status word on a terminal: green good, red bad, yellow other.
    pub fn status(&self, s: &str, good: Option<bool>) -> String {
        if !self.color {
            return s.to_string();
        }
        let style = match good {
            Some(true) => GOOD,
            Some(false) => BAD,
            None => OTHER,
        };
        format!("{}{s}{}", style.render(), style.render_reset())
    }

    /// A table: a header row and rows, columns padded to fit. This is the
    /// one place table cells are escaped: callers pass the raw text (names,
    /// paths, notes from disk), and a status word is coloured here.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<Cell>]) {
        if self.json {
            return;
        }
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::Text(t) => crate::text::escape(t),
                        Cell::Status(t, good) => self.status(&crate::text::escape(t), *good),
                    })
                    .collect()
            })
            .collect();
        let rows = &rows;
        let mut widths: Vec<usize> = header.iter().map(|h| visible_len(h)).collect();
        for r in rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(visible_len(c));
                }
            }
        }
        let fmt_row = |cells: Vec<String>| -> String {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                s.push_str(c);
                if i + 1 < cells.len() {
                    let pad = widths
                        .get(i)
                        .copied()
                        .unwrap_or(0)
                        .saturating_sub(visible_len(c));
                    s.push_str(&" ".repeat(pad + 2));
                }
            }
            s.trim_end().to_string()
        };
        let h = fmt_row(header.iter().map(|s| s.to_string()).collect());
        let _ = writeln!(self.out, "{h}");
        // The last column (a note) wraps under itself when a row is wider
        // than the terminal, so the table keeps to the width.
        let n = widths.len();
        let prefix: usize = widths.iter().take(n.saturating_sub(1)).map(|w| w + 2).sum();
        for r in rows {
            let last = r.get(n.saturating_sub(1)).cloned().unwrap_or_default();
            let fits = prefix + visible_len(&last) <= self.width;
            if fits || n < 2 || prefix + 20 > self.width {
                let line = fmt_row(r.clone());
                let _ = writeln!(self.out, "{line}");
                continue;
            }
            let parts = wrap(&last, self.width - prefix, "", "");
            let mut cells = r.clone();
            cells[n - 1] = parts[0].clone();
            let _ = writeln!(self.out, "{}", fmt_row(cells));
            for p in &parts[1..] {
                let _ = writeln!(self.out, "{}{p}", " ".repeat(prefix));
            }
        }
    }

    /// The JSON document of a `--json` run.
    pub fn json_value(&mut self, v: &serde_json::Value) {
        self.wrote_json = true;
        let _ = serde_json::to_writer_pretty(&mut self.out, v);
        let _ = writeln!(self.out);
    }

    /// A note on stderr (`fvsync: note: ...`).
    pub fn note(&mut self, s: &str) {
        for l in wrap(s, self.width, "fvsync: note: ", "  ") {
            let _ = writeln!(self.err, "{l}");
        }
    }

    /// A warning on stderr.
    pub fn warn(&mut self, s: &str) {
        for l in wrap(s, self.width, "fvsync: warning: ", "  ") {
            let _ = writeln!(self.err, "{l}");
        }
    }

    /// Progress on stderr, only when stderr is a terminal.
    ///
    /// A spinner appears only when the step lasts longer than about 0.3 s, and
    /// only when stderr is a terminal; otherwise nothing is printed.
    pub fn progress(&mut self, s: &str) {
        self.progress_done();
        if self.err_is_tty {
            self.spinner = Some(Spinner::start(s.to_string()));
        }
    }

    /// Stops and clears the progress line.
    pub fn progress_done(&mut self) {
        if let Some(sp) = self.spinner.take() {
            sp.stop();
        }
    }

    /// An error, then its hint: `fvsync: error: ...` / `fvsync: hint: ...`.
    /// With `--json`, when the command printed no document, stdout also gets
    /// `{"version": 1, "error": {...}}` so a script always has one to read.
    pub fn error(&mut self, e: &Error) {
        self.progress_done();
        if self.json && !self.wrote_json {
            let doc = crate::engine::report::ErrorDoc {
                version: crate::engine::report::VERSION,
                error: crate::engine::report::ErrorInfo {
                    kind: e.kind(),
                    message: e.message().to_string(),
                    hint: e.hint_text().map(str::to_string),
                    causes: e.causes(),
                    exit_code: e.kind().exit_code(),
                },
                filevault_attempts: self.attempts.clone(),
                exit_code: e.kind().exit_code(),
            };
            if let Ok(v) = serde_json::to_value(&doc) {
                self.json_value(&v);
            }
        }
        let width = self.width;
        // A "no" at a question is not an error: it says so without the word.
        let first = if e.kind() == crate::error::ErrorKind::Cancelled {
            "fvsync: "
        } else {
            "fvsync: error: "
        };
        let mut lines = wrap(e.message(), width, first, "  ");
        for c in e.causes() {
            lines.extend(wrap(&c, width, "fvsync: caused by: ", "  "));
        }
        if let Some(h) = e.hint_text() {
            lines.extend(wrap(h, width, "fvsync: hint: ", "  "));
        }
        if let Some(a) = self.attempts.as_ref().filter(|_| !self.wrote_text_attempts) {
            lines.extend(wrap(&a.line(), width, "fvsync: ", "  "));
        }
        for l in lines {
            let _ = writeln!(self.err, "{l}");
        }
    }

    /// Raw text to stdout (the runbook).
    pub fn raw(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
    }

    /// Raw text to stderr (the runbook's list of sections, before an error).
    pub fn raw_err(&mut self, s: &str) {
        let _ = self.err.write_all(s.as_bytes());
    }

    /// Flushes both streams (and stops any progress line).
    pub fn flush(&mut self) {
        self.progress_done();
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

/// The columns `s` takes on a terminal: the Unicode width of its text (two
/// for a CJK character or an emoji, none for a combining mark), ANSI colour
/// sequences (`ESC ... m`) skipped.
pub fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut rest = s;
    while let Some(esc) = rest.find('\x1b') {
        n += rest[..esc].width();
        rest = match rest[esc..].find('m') {
            Some(m) => &rest[esc + m + 1..],
            None => "",
        };
    }
    n + rest.width()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test reads back after the `Ui` is done with it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const TERM: ColorEnv = ColorEnv {
        no_color: false,
        clicolor_force: false,
        clicolor: None,
        term_supports_color: true,
        ci: false,
    };

    #[test]
    fn colour_follows_the_conventions() {
        // A terminal that shows colour: on; not a terminal: off.
        assert!(want_color(TERM, true));
        assert!(!want_color(TERM, false));
        // NO_COLOR (non-empty) wins over everything, CLICOLOR_FORCE included.
        let no = ColorEnv {
            no_color: true,
            ..TERM
        };
        assert!(!want_color(no, true));
        let no_forced = ColorEnv {
            clicolor_force: true,
            ..no
        };
        assert!(!want_color(no_forced, true));
        // CLICOLOR_FORCE: on even into a pipe.
        let forced = ColorEnv {
            clicolor_force: true,
            ..TERM
        };
        assert!(want_color(forced, false));
        // CLICOLOR=0: off on a terminal.
        let off = ColorEnv {
            clicolor: Some(false),
            ..TERM
        };
        assert!(!want_color(off, true));
        // TERM=dumb (or unset): off, unless CLICOLOR asks for it or in CI.
        let dumb = ColorEnv {
            term_supports_color: false,
            ..TERM
        };
        assert!(!want_color(dumb, true));
        assert!(want_color(
            ColorEnv {
                clicolor: Some(true),
                ..dumb
            },
            true
        ));
        assert!(want_color(ColorEnv { ci: true, ..dumb }, true));
        assert!(!want_color(ColorEnv { ci: true, ..dumb }, false));
    }

    const PROBE: &str = "FVSYNC_TEST_COLOR_ENV";

    /// The environment as read from the process, injected into a child run of
    /// this test binary (so that no variable of this process changes): an
    /// empty `NO_COLOR=` or `CLICOLOR_FORCE=` does not count as set.
    #[test]
    fn the_colour_variables_are_read_by_the_conventions() {
        if let Some(want) = std::env::var_os(PROBE) {
            // The child: compare what it reads with what the parent expects.
            assert_eq!(
                format!("{:?}", ColorEnv::from_process()),
                want.to_str().unwrap()
            );
            return;
        }
        let cases: [(&[(&str, &str)], ColorEnv); 7] = [
            (&[("TERM", "xterm-256color")], TERM),
            (&[("TERM", "xterm"), ("NO_COLOR", "")], TERM),
            (
                &[("TERM", "xterm"), ("NO_COLOR", "1")],
                ColorEnv {
                    no_color: true,
                    ..TERM
                },
            ),
            (&[("TERM", "xterm"), ("CLICOLOR_FORCE", "")], TERM),
            (
                &[
                    ("TERM", "xterm"),
                    ("CLICOLOR_FORCE", "1"),
                    ("CLICOLOR", "0"),
                ],
                ColorEnv {
                    clicolor_force: true,
                    clicolor: Some(false),
                    ..TERM
                },
            ),
            (
                &[("TERM", "dumb"), ("CLICOLOR", "1")],
                ColorEnv {
                    clicolor: Some(true),
                    term_supports_color: false,
                    ..TERM
                },
            ),
            (
                &[("CI", "true")],
                ColorEnv {
                    term_supports_color: false,
                    ci: true,
                    ..TERM
                },
            ),
        ];
        for (vars, want) in cases {
            let mut c = std::process::Command::new(std::env::current_exe().unwrap());
            c.args([
                "--exact",
                "output::tests::the_colour_variables_are_read_by_the_conventions",
                "--test-threads=1",
            ]);
            for v in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "TERM", "CI"] {
                c.env_remove(v);
            }
            c.envs(vars.iter().copied()).env(PROBE, format!("{want:?}"));
            let out = c.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{vars:?}: {stdout}");
            assert!(
                stdout.contains("1 passed"),
                "{vars:?}: the child ran no test: {stdout}"
            );
        }
        // So an empty NO_COLOR= on a terminal still gets colour.
        assert!(want_color(TERM, true));
    }

    #[test]
    fn widths_are_terminal_columns() {
        assert_eq!(visible_len("alice"), 5);
        assert_eq!(visible_len("山田太郎"), 8);
        assert_eq!(visible_len("🦀"), 2);
        assert_eq!(
            visible_len("e\u{301}"),
            1,
            "a combining mark takes no column"
        );
        assert_eq!(visible_len("\x1b[32mok\x1b[0m"), 2);
        assert_eq!(visible_len("\x1b[1m山田\x1b[0m!"), 5);
        assert_eq!(
            visible_len("a\x1b[3"),
            1,
            "an unterminated sequence counts nothing"
        );
    }

    /// The column at which `needle` starts in `line`, in terminal columns.
    fn column_of(line: &str, needle: &str) -> usize {
        visible_len(&line[..line.find(needle).unwrap()])
    }

    #[test]
    fn tables_align_wide_names() {
        let out = Shared::default();
        let mut ui = Ui::with_writers(Box::new(out.clone()), Box::new(Shared::default()), false);
        ui.color = true; // a coloured cell: its escape sequences take no column
        let rows: Vec<Vec<Cell>> = vec![
            vec!["alice".into(), "501".into(), "yes".into()],
            vec!["山田太郎".into(), "502".into(), "no".into()],
            vec!["🦀 crab".into(), "503".into(), "yes".into()],
            vec![
                Cell::Status("José".into(), Some(true)),
                "504".into(),
                "no".into(),
            ],
        ];
        ui.table(&["NAME", "UID", "ADMIN"], &rows);
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[4].starts_with("\x1b[32mJosé\x1b[0m "), "{text}");
        let uid = column_of(lines[0], "UID");
        let admin = column_of(lines[0], "ADMIN");
        // The widest name is 8 columns (four CJK characters), plus two spaces.
        assert_eq!(uid, 10, "{text}");
        for (line, id) in lines[1..].iter().zip(["501", "502", "503", "504"]) {
            assert_eq!(column_of(line, id), uid, "{text}");
            let after = &line[line.find(id).unwrap() + 3..];
            assert_eq!(
                uid + 3 + after.len() - after.trim_start().len(),
                admin,
                "{text}"
            );
        }
    }

    #[test]
    fn wrapping_counts_columns() {
        // Three words of 6 columns (3 characters each) in 14 columns: two fit
        // on a line (13 columns), the third goes to the next.
        let lines = wrap("日本語 日本語 日本語", 14, "", "");
        assert_eq!(lines, ["日本語 日本語", "日本語"]);
        assert!(lines.iter().all(|l| visible_len(l) <= 14));
        // ASCII of the same character count fits on one line.
        assert_eq!(wrap("abc abc abc", 14, "", "").len(), 1);
    }
}
