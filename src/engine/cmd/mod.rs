//! The user commands, one module each. Each returns its typed report (and,
//! when it stopped on an error after it had something to show, that error);
//! the caller renders the report as text or JSON and exits with its code.

pub mod diagnose;
pub mod purge;
pub mod receipt;
pub mod reconcile;
pub mod undo;
pub mod verify;

use crate::engine::observe::Observation;
use crate::engine::plan::Verdict;
use crate::engine::secrets::{Accepts, Row, Secret};
use crate::engine::{hint_cmd, Ctx, UserSel};
use crate::error::Error;

/// A command's report, and the error it stopped on after it had something
/// to show (the exit code is then the error's).
pub struct Finished<R> {
    /// The report.
    pub report: R,
    /// The error, printed after the report.
    pub error: Option<Error>,
}

impl<R> Finished<R> {
    /// A report with no error.
    pub fn ok(report: R) -> Self {
        Finished {
            report,
            error: None,
        }
    }
}

/// What to tell the person about a verdict, one line each.
pub(crate) fn verdict_lines(
    ctx: &Ctx<'_>,
    sel: &UserSel,
    o: &Observation,
    rows: &[Row],
    verdict: Verdict,
    reconcile_hint: bool,
) -> Vec<String> {
    let mut v = Vec::new();
    match verdict {
        Verdict::InSync => {
            v.push("In sync: every secret that counts accepts NEW.".into());
            if o.preboot_current == Some(false) && reconcile_hint {
                v.push(format!(
                    "The Preboot volume's user list (what the FileVault login window shows) is out \
                     of date: `{}` updates it.",
                    hint_cmd(ctx, "reconcile", sel, &o.target.user, &[])
                ));
            }
        }
        Verdict::OutOfSync => {
            if reconcile_hint {
                v.push(format!(
                    "Out of sync: run `{}` to apply this plan.",
                    hint_cmd(ctx, "reconcile", sel, &o.target.user, &[])
                ));
            } else {
                v.push("Out of sync: reconcile can fix it.".into());
            }
        }
        Verdict::NeedsAttention => {
            for r in rows.iter().filter(|r| r.counts && !r.accepts.takes_new()) {
                match (r.secret, r.accepts) {
                    (Secret::Keychain, Accepts::Neither) => v.push(
                        "Needs attention: the login keychain takes neither OLD nor NEW; fvsync cannot \
                         re-key it. macOS asks for its password at login; if nobody knows it, choose \
                         \"Create New Keychain\" there (the old one is kept, renamed)."
                            .into(),
                    ),
                    (Secret::Filevault | Secret::SecureToken, _) if o.target.crypto.is_none() => v.push(format!(
                        "Needs attention: {} is not a FileVault user of this volume, so FileVault cannot \
                         take their password. An admin who is one can start up normally and run \
                         `sysadminctl -secureTokenOn {} -password - -adminUser ADMIN -adminPassword -`.",
                        crate::text::escape(&o.target.user),
                        crate::engine::shell_word(&o.target.user)
                    )),
                    (Secret::Login | Secret::Srp, _) => v.push(
                        "Needs attention: the login hash takes neither password and nothing proves OLD; \
                         reconcile will not reset it (that is Apple's `resetpassword`, with a recovery key)."
                            .into(),
                    ),
                    (s, a) => v.push(format!(
                        "Needs attention: {} {}; reconcile cannot fix that.",
                        s.label(),
                        match a {
                            Accepts::Neither => "takes neither password",
                            _ => "cannot be checked",
                        }
                    )),
                }
            }
            v.dedup();
        }
    }
    if rows.iter().any(|r| r.secret == Secret::LocalItems) {
        v.push(
            "Local Items and the user keybag are not counted: macOS asks once for OLD after the \
             first login; type OLD there."
                .into(),
        );
    }
    v
}
