//! `fvsync runbook`: the Recovery runbook, built in so it is there offline.
//!
//! The text is docs/runbook.md, written as plain text that fits 80 columns
//! (setext headings, indented blocks; it reads the same in a terminal and on
//! a web page). Its exit-code table (section 8) is not kept in the file by
//! hand: `fvsync runbook` prints [`Exit::runbook_table`], the one table of
//! exit codes, between [`BEGIN`] and [`END`] (tests/runbook.rs checks that the
//! file's copy, staged on the USB stick as RUNBOOK.txt, is the same).

use crate::error::{Error, ErrorKind, Exit, Result};

/// docs/runbook.md, embedded at build time.
pub const SOURCE: &str = include_str!("../docs/runbook.md");

/// The line before the generated exit-code table in docs/runbook.md.
pub const BEGIN: &str = "<!-- exit codes: generated from src/error.rs (tests/runbook.rs) -->";
/// The line after it.
pub const END: &str = "<!-- end of the exit codes -->";

/// The widest line the runbook has.
pub const WIDTH: usize = 80;

/// The runbook as `fvsync runbook` prints it: `source` with the exit-code
/// table generated from [`Exit`] and the marker lines left out.
pub fn render(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut skipping = false;
    for line in source.lines() {
        if line == BEGIN {
            out.push_str(&Exit::runbook_table(WIDTH));
            skipping = true;
        } else if line == END {
            skipping = false;
        } else if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The runbook, rendered.
pub fn text() -> String {
    render(SOURCE)
}

/// One numbered section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its number (0, 1, ...).
    pub number: u32,
    /// Its title, without the number.
    pub title: String,
    /// Its text, heading included.
    pub text: String,
}

/// The numbered sections of `text`: a line "N. Title" underlined with dashes.
pub fn sections_of(text: &str) -> Vec<Section> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts = Vec::new();
    for i in 0..lines.len().saturating_sub(1) {
        let under = lines[i + 1];
        if under.len() >= 3 && under.chars().all(|c| c == '-') {
            if let Some((n, title)) = lines[i].split_once(". ") {
                if let Ok(n) = n.parse::<u32>() {
                    starts.push((i, n, title.trim().to_string()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (k, (i, n, title)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(lines.len(), |s| s.0);
        let mut body = lines[*i..end].join("\n");
        while body.ends_with('\n') {
            body.pop();
        }
        body.push('\n');
        out.push(Section {
            number: *n,
            title: title.clone(),
            text: body,
        });
    }
    out
}

/// The sections of the runbook.
pub fn sections() -> Vec<Section> {
    sections_of(&text())
}

/// The list of sections, one a line, for `--section` out of range.
pub fn list() -> String {
    let mut s = String::from("The runbook's sections:\n");
    for sec in sections() {
        s.push_str(&format!("  {:>2}  {}\n", sec.number, sec.title));
    }
    s
}

/// Section `n`.
///
/// # Errors
/// Usage (exit 2) when the runbook has no section `n`.
pub fn section(n: u32) -> Result<String> {
    let all = sections();
    match all.iter().find(|s| s.number == n) {
        Some(s) => Ok(s.text.clone()),
        None => {
            let last = all.last().map_or(0, |s| s.number);
            Err(Error::new(
                ErrorKind::Usage,
                format!("the runbook has no section {n}: its sections are 0 to {last}"),
            )
            .hint("fvsync runbook --section N, with N from the list above"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_numbered_in_order_and_fit() {
        let all = sections();
        assert!(all.len() >= 10);
        for (i, s) in all.iter().enumerate() {
            assert_eq!(s.number as usize, i, "{}", s.title);
        }
        assert!(list().lines().all(|l| l.chars().count() <= WIDTH));
        assert!(section(99).is_err());
    }
}
