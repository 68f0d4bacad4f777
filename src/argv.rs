//! Command lines clap refuses in a way that could show a password: a word
//! where no word belongs (a password typed after the command), or a
//! `--password` option. fvsync never takes a password on the command line;
//! these errors say so, never repeat the word, and say how to clear it from
//! the shell's history. Every other parse error is clap's own.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The clearing of the shell's history, said the same way everywhere.
pub const CLEAR_HISTORY: &str = "if it was a password, clear it from the shell's history: type \
     history -c (bash, Recovery's shell; in zsh: history -p), and treat the password as seen";

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

/// Whether `arg` (as typed) asks for a password option.
fn password_option(arg: &str) -> bool {
    let name = arg.split('=').next().unwrap_or(arg).to_ascii_lowercase();
    let name = name.trim_start_matches('-');
    arg.starts_with('-')
        && (name.starts_with("pass") || name.starts_with("pw") || name.starts_with("secret"))
        && name != "password-stdin"
}

/// fvsync's own message and hint for `e`, when clap's could show a password.
pub fn careless(e: &clap::Error) -> Option<(String, String)> {
    let prompt = "fvsync asks for each password at a prompt (nothing shows while it is typed)";
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context(e, ContextKind::InvalidArg)?;
            if password_option(&arg) {
                Some((
                    "fvsync never takes a password on the command line (there is no \
                     --password option)"
                        .into(),
                    format!("leave it out: {prompt}; {CLEAR_HISTORY}"),
                ))
            } else if !arg.starts_with('-') {
                Some((
                    "unexpected word on the command line (not repeated here, in case it is \
                     a password): fvsync never takes a password on the command line"
                        .into(),
                    format!(
                        "the user goes after --user (fvsync diagnose --user alice); {prompt}; \
                         {CLEAR_HISTORY}"
                    ),
                ))
            } else {
                None
            }
        }
        ErrorKind::InvalidSubcommand => {
            let mut hint = String::from("the commands are listed by fvsync --help");
            if let Some(s) = context(e, ContextKind::SuggestedSubcommand) {
                hint = format!("did you mean {}? {hint}", crate::text::escape(&s));
            }
            Some((
                "unknown command (not repeated here, in case it is a password): fvsync never \
                 takes a password on the command line"
                    .into(),
                format!("{hint}; {prompt}; {CLEAR_HISTORY}"),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn err(args: &[&str]) -> clap::Error {
        crate::cli::Cli::try_parse_from(args).unwrap_err()
    }

    #[test]
    fn a_word_or_a_password_option_is_never_repeated() {
        for args in [
            &["fvsync", "diagnose", "--user", "alice", "S3cret!"][..],
            &[
                "fvsync",
                "diagnose",
                "--user",
                "alice",
                "--password",
                "S3cret!",
            ],
            &[
                "fvsync",
                "diagnose",
                "--user",
                "alice",
                "--password=S3cret!",
            ],
            &["fvsync", "reconcile", "--user", "alice", "--passwd=S3cret!"],
            &["fvsync", "S3cret!"],
        ] {
            let (m, h) = careless(&err(args)).unwrap_or_else(|| panic!("{args:?}"));
            assert!(!m.contains("S3cret") && !h.contains("S3cret"), "{m} {h}");
            assert!(h.contains("history -c"), "{h}");
            assert!(
                h.contains("at a prompt") && !h.contains("--password-stdin"),
                "{h}"
            );
        }
        // An unknown flag is clap's to explain (clap leaves a value out).
        let e = err(&["fvsync", "diagnose", "--user", "a", "--foo=S3cret!"]);
        assert!(careless(&e).is_none() && !e.to_string().contains("S3cret"));
        assert!(careless(&err(&["fvsync", "diagnose", "--user", "a", "--frobnicate"])).is_none());
        let (_, h) = careless(&err(&["fvsync", "diagnoes", "--user", "a"])).unwrap();
        assert!(h.contains("did you mean diagnose?"), "{h}");
    }
}
