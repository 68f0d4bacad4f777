//! The one module that writes to stdout and stderr. Everything else returns
//! values; this module renders them for people (tables, colour on a terminal
//! unless `NO_COLOR`, lines wrapped to the terminal's width, 78 columns when
//! it is unknown) or for scripts (`--json`, with `"version": 1`).

pub mod render;

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

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
fn terminal_width() -> usize {
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

/// Whether colour is wanted: a terminal, and `NO_COLOR` unset or empty
/// (the no-color.org convention: an empty value does not count).
fn want_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Wraps `text` to `width` columns: the first line starts with `first`, the
/// others with `rest` (both counted). Words longer than a line are kept whole.
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
            color: want_color(),
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
            let _ = writeln!(self.out, "\x1b[1m{s}\x1b[0m");
        } else {
            let _ = writeln!(self.out, "{s}");
        }
    }

    /// Colours a short status word on a terminal: green good, red bad, yellow other.
    pub fn status(&self, s: &str, good: Option<bool>) -> String {
        if !self.color {
            return s.to_string();
        }
        let code = match good {
            Some(true) => "32",
            Some(false) => "31",
            None => "33",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
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
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
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
        let mut lines = wrap(e.message(), width, "fvsync: error: ", "  ");
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

    /// Flushes both streams (and stops any progress line).
    pub fn flush(&mut self) {
        self.progress_done();
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

/// The columns `s` takes on a terminal (ANSI colour sequences skipped).
pub fn visible_len(s: &str) -> usize {
    // Skip ANSI colour sequences when measuring.
    let mut n = 0;
    let mut in_esc = false;
    for c in s.chars() {
        if in_esc {
            if c == 'm' {
                in_esc = false;
            }
        } else if c == '\x1b' {
            in_esc = true;
        } else {
            n += 1;
        }
    }
    n
}
