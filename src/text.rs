//! Text from disk made safe to print: the one escaping function every table
//! cell, note and message goes through. A leaf module: it imports nothing of
//! the crate, so `error` and `output` both use it without importing each other.

use std::path::Path;

/// Escapes a string that came from disk (a user name, a volume name, a path, a
/// UUID, a scheme name, a line diskutil printed) so that no character of it can
/// move the cursor, clear the screen, reorder text or hide itself: C0 and C1
/// controls, bidi overrides and isolates, zero-width and invisible formatting
/// characters (U+061C, U+200B-U+200F, U+2028/U+2029, U+2060-U+2064, U+FEFF, ...)
/// and unassigned code points become `\u{..}`; a backslash becomes `\\`.
/// Printable text, accents and combining marks included, is kept as it is.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` is not safe to print raw. Rust's own `escape_debug` knows which
/// characters are not printable (controls, format characters, separators,
/// unassigned code points); asked about `c` after a printable character, it
/// does not escape combining marks, which belong to the letter before them.
fn needs_escape(c: char) -> bool {
    if c == ' ' || c.is_ascii_graphic() {
        return false;
    }
    if c.is_control()
        || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    {
        return true;
    }
    let mut buf = [0u8; 5];
    buf[0] = b'a';
    let s = c.encode_utf8(&mut buf[1..]).len() + 1;
    let probe = std::str::from_utf8(&buf[..s]).unwrap_or("a");
    probe.escape_debug().nth(1) == Some('\\')
}

/// A path from disk, escaped and quoted for a message.
pub fn quote_path(p: &Path) -> String {
    format!("'{}'", escape(&p.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_bidi() {
        assert_eq!(escape("ali\x1b[2Jce"), "ali\\u{1b}[2Jce");
        assert_eq!(escape("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape("Macintosh HD - Data"), "Macintosh HD - Data");
        assert_eq!(escape("a\nb"), "a\\u{a}b");
        for c in [
            '\u{61c}', '\u{2028}', '\u{2029}', '\u{2060}', '\u{2064}', '\u{feff}', '\u{9b}',
        ] {
            assert_eq!(
                escape(&format!("x{c}y")),
                format!("x\\u{{{:x}}}y", c as u32)
            );
        }
        // Accents, combining marks, CJK and emoji are printable and kept.
        for s in [
            "Jos\u{e9}",
            "Jose\u{301}",
            "\u{674e}\u{96f7}",
            "\u{1f600}",
            "a'b\"c",
        ] {
            assert_eq!(escape(s), s);
        }
        assert_eq!(escape("a\\b"), "a\\\\b");
    }
}
