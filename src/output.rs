//! The one module that writes to stdout and stderr. Everything else returns
//! values; this module renders them for people (tables, colour on a terminal
//! unless `NO_COLOR`) or for scripts (`--json`, with `"version": 1`).

use std::io::{IsTerminal, Write};

use crate::error::Error;

/// How the run prints.
pub struct Ui {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// `--json`: stdout carries one JSON document and nothing else.
    pub json: bool,
    color: bool,
    err_is_tty: bool,
    wrote_json: bool,
    spinner: Option<Spinner>,
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
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ui {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            json,
            color,
            err_is_tty: std::io::stderr().is_terminal(),
            wrote_json: false,
            spinner: None,
        }
    }

    /// Writers chosen by the caller (tests).
    pub fn with_writers(out: Box<dyn Write>, err: Box<dyn Write>, json: bool) -> Self {
        Ui {
            out,
            err,
            json,
            color: false,
            err_is_tty: false,
            wrote_json: false,
            spinner: None,
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

    /// A table: a header row and rows, columns padded to fit.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        if self.json {
            return;
        }
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
        for r in rows {
            let line = fmt_row(r.clone());
            let _ = writeln!(self.out, "{line}");
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
        let _ = writeln!(self.err, "fvsync: note: {s}");
    }

    /// A warning on stderr.
    pub fn warn(&mut self, s: &str) {
        let _ = writeln!(self.err, "fvsync: warning: {s}");
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
            self.json_value(&serde_json::json!({
                "version": 1,
                "error": {
                    "kind": e.kind(),
                    "message": e.message(),
                    "hint": e.hint_text(),
                    "exit_code": e.kind().exit_code(),
                },
            }));
        }
        let _ = writeln!(self.err, "fvsync: error: {}", e.message());
        if let Some(h) = e.hint_text() {
            let _ = writeln!(self.err, "fvsync: hint: {h}");
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

fn visible_len(s: &str) -> usize {
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
