//! Text for the typed reports: the header, the secret matrix, the attempts,
//! the plan and what to do next, wrapped to the terminal's width so that the
//! plan and its question fit one screen of Recovery's 80-column Terminal.
//! Paths, schemes and iteration counts appear with `--verbose`.

use serde::Serialize;

use super::{Cell, Ui};
use crate::engine::attempts::Ledger;
use crate::engine::report::{self, Head, PrebootState};
use crate::engine::secrets::{Accepts, Row};
use crate::engine::step::{Action, Planned};
use crate::text::escape;

/// A report that renders as text.
pub trait Render {
    /// Writes the report's text through `ui`.
    fn text(&self, ui: &mut Ui);

    /// Warnings, printed on stderr after the report whether it is text or JSON.
    fn warnings(&self) -> &[String] {
        &[]
    }
}

impl Ui {
    /// Prints a report: its JSON document with `--json`, else its text.
    pub fn show<R: Serialize + Render>(&mut self, r: &R) {
        if self.json {
            match serde_json::to_value(r) {
                Ok(v) => self.json_value(&v),
                Err(e) => self.warn(&format!("cannot encode the report: {e}")),
            }
        } else {
            r.text(self);
        }
        for w in r.warnings() {
            self.warn(w);
        }
    }

    /// The part of reconcile's report shown before its question (text only).
    pub fn preview(&mut self, p: &report::Preview) {
        if !self.json {
            p.text(self);
        }
    }

    /// The part of undo's report shown before its question (text only).
    pub fn undo_preview(&mut self, u: &report::Undo) {
        if self.json {
            return;
        }
        header(self, &u.head);
        self.line("");
        self.para(&format!(
            "The reconcile {} ran {}.",
            u.run_id, u.reconciled_at
        ));
        attempts(self, &u.filevault_attempts);
        self.line("");
        if u.plan.is_empty() {
            self.line("Nothing of it needs putting back.");
        } else {
            self.line(if u.dry_run {
                "Undo would put back (dry run: nothing will be changed):"
            } else {
                "Undo puts back:"
            });
            for i in &u.plan {
                self.para_indent(&i.change, "  - ", "    ");
            }
        }
        self.line("");
    }
}

fn header(ui: &mut Ui, h: &Head) {
    ui.heading(&format!("fvsync {}: {}", h.command, h.source));
    let who = match &h.real_name {
        Some(r) if !r.is_empty() => format!("{} ({})", escape(&h.user), escape(r)),
        _ => escape(&h.user),
    };
    ui.para(&format!(
        "user {who} on {} ({}), FileVault {}",
        h.volume,
        escape(&h.volume_name),
        if h.filevault_on { "on" } else { "off" }
    ));
}

fn matrix(ui: &mut Ui, rows: &[Row], one: bool) {
    let header = if one {
        ["  secret", "takes it", "note"]
    } else {
        ["  secret", "accepts", "note"]
    };
    let body: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let good = if r.accepts.takes_new() || r.accepts == Accepts::NotApplicable {
                Some(true)
            } else if r.accepts == Accepts::Unknown || !r.counts {
                None
            } else {
                Some(false)
            };
            let mut note = r.note.clone().unwrap_or_default();
            if !r.counts && r.accepts != Accepts::NotApplicable {
                note = if note.is_empty() {
                    "not counted".into()
                } else {
                    format!("{note} (not counted)")
                };
            }
            if ui.verbose {
                if let Some(d) = &r.detail {
                    note = if note.is_empty() {
                        d.clone()
                    } else {
                        format!("{note}; {d}")
                    };
                }
            }
            vec![
                Cell::Text(format!("  {}", r.secret.label())),
                Cell::Status(r.accepts.word(one).to_string(), good),
                Cell::Text(note),
            ]
        })
        .collect();
    ui.line("");
    ui.table(&header, &body);
    ui.line("");
}

fn attempts(ui: &mut Ui, l: &Ledger) {
    ui.para(&l.line());
    for e in l.explanations() {
        ui.para_indent(&e, "  ", "    ");
    }
    ui.wrote_text_attempts = true;
}

fn plan(ui: &mut Ui, title: &str, plan: &[Planned]) {
    ui.line(title);
    for (i, s) in plan.iter().enumerate() {
        let tag = match s.action {
            Action::Do => "",
            Action::Skip => "skip: ",
            Action::Leave => "leave: ",
        };
        let first = format!("  {}. {:<9} ", i + 1, s.step.name());
        let rest = " ".repeat(first.chars().count());
        ui.para_indent(&format!("{tag}{}", s.detail), &first, &rest);
    }
}

fn preboot(ui: &mut Ui, p: PrebootState) {
    match p {
        PrebootState::Stale => ui.line("Preboot user list: out of date (reconcile updates it)"),
        PrebootState::Current => ui.line("Preboot user list: current"),
        PrebootState::NotChecked => {}
    }
}

fn sources(ui: &mut Ui, s: &[crate::engine::account::AccountSource]) {
    if !s.is_empty() {
        ui.line("");
        crate::engine::receipt::render_sources(s, ui);
    }
}

fn next(ui: &mut Ui, lines: &[String]) {
    for l in lines {
        ui.para(l);
    }
}

impl Render for report::Diagnose {
    fn text(&self, ui: &mut Ui) {
        header(ui, &self.head);
        matrix(ui, &self.secrets, false);
        attempts(ui, &self.filevault_attempts);
        preboot(ui, self.preboot);
        sources(ui, &self.account_sources);
        ui.line("");
        if self.verdict != crate::engine::plan::Verdict::InSync && !self.next.is_empty() {
            plan(ui, "Plan (what `fvsync reconcile` would do):", &self.plan);
            ui.line("");
        }
        next(ui, &self.next);
    }
}

impl Render for report::Verify {
    fn text(&self, ui: &mut Ui) {
        header(ui, &self.head);
        matrix(ui, &self.secrets, true);
        preboot(ui, self.preboot);
        attempts(ui, &self.filevault_attempts);
        next(ui, &self.next);
    }
}

impl Render for report::Preview {
    fn text(&self, ui: &mut Ui) {
        header(ui, &self.head);
        matrix(ui, &self.secrets, false);
        attempts(ui, &self.filevault_attempts);
        sources(ui, &self.account_sources);
        for n in &self.notes {
            ui.para(n);
        }
        ui.line("");
        plan(ui, &self.title, &self.plan);
        ui.line("");
    }
}

impl Render for report::Reconcile {
    fn text(&self, ui: &mut Ui) {
        if let Some(after) = &self.secrets_after {
            ui.line("After:");
            matrix(ui, after, false);
            for l in &self.left {
                ui.para(&format!("{} left as is: {}", l.step.name(), escape(&l.why)));
            }
            let changed: Vec<&str> = self.changed.iter().map(|s| s.name()).collect();
            ui.para(&format!(
                "Done: changed {}. {}",
                if changed.is_empty() {
                    "nothing".to_string()
                } else {
                    changed.join(", ")
                },
                self.filevault_attempts.line()
            ));
            ui.wrote_text_attempts = true;
        }
        next(ui, &self.next);
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl Render for report::Undo {
    fn text(&self, ui: &mut Ui) {
        if !self.dry_run {
            let changed: Vec<&str> = self.changed.iter().map(|s| s.name()).collect();
            ui.para(&format!(
                "Undone: {} put back as before the reconcile {}. {}",
                if changed.is_empty() {
                    "nothing needed".to_string()
                } else {
                    changed.join(", ")
                },
                self.run_id,
                self.filevault_attempts.line()
            ));
            ui.wrote_text_attempts = true;
        }
        next(ui, &self.next);
    }
}

impl Render for report::Purge {
    fn text(&self, ui: &mut Ui) {
        header(ui, &self.head);
        if self.backups.is_empty() {
            ui.line("No backups to remove.");
        } else if self.dry_run {
            ui.line("Would remove (dry run: nothing was removed):");
            for b in &self.backups {
                ui.line(&format!("  {}", escape(b)));
            }
        } else {
            ui.para(&format!(
                "Removed {} backup file{}{}.",
                self.removed.len(),
                if self.removed.len() == 1 { "" } else { "s" },
                if self.removed.len() < self.backups.len() {
                    " (those of the run still open are kept)"
                } else {
                    ""
                }
            ));
        }
    }
}

impl Render for report::Selftest {
    fn text(&self, ui: &mut Ui) {
        use crate::platform::RehearsalOutcome;
        ui.heading(&format!("fvsync selftest: {}", self.source));
        let sys = &self.system;
        for (k, v) in [
            ("system", &sys.os),
            ("machine", &sys.machine),
            ("diskutil", &sys.diskutil),
        ] {
            if let Some(v) = v {
                ui.para(&format!("{k}: {}", escape(v)));
            }
        }
        ui.line("");
        for t in &self.rehearsal.transcript {
            ui.para_indent(&escape(t), "  ", "    ");
        }
        ui.line("");
        ui.para(&match &self.rehearsal.outcome {
            RehearsalOutcome::NotNeeded => {
                "Not needed here: a simulated Mac takes passphrases in memory.".to_string()
            }
            RehearsalOutcome::Passed { framing, cached } => format!(
                "Passed: passphrase changes will use the {framing} framing{}.",
                if *cached { " (this Recovery session's earlier rehearsal)" } else { "" }
            ),
            RehearsalOutcome::Unavailable { why } => format!(
                "Could not run: {}. A reconcile then asks to go ahead without it (have the recovery key at hand).",
                escape(why)
            ),
            RehearsalOutcome::Failed { why } => format!(
                "Failed: {}. fvsync will not change a FileVault passphrase on this Mac; use Apple's \
                 `resetpassword`, and send `fvsync report DIR` to the maintainers.",
                escape(why)
            ),
        });
    }
}

impl Render for report::Pilot {
    fn text(&self, ui: &mut Ui) {
        let r = &self.report;
        ui.para(&format!(
            "Wrote {} files to {}{}.",
            r.files.len(),
            crate::text::quote_path(&r.dir),
            if r.redacted {
                format!(" ({} UUIDs replaced by placeholders)", r.uuids_replaced)
            } else {
                " (UUIDs kept: --no-redact)".to_string()
            }
        ));
        for f in &r.failures {
            ui.para_indent(
                &format!("failed (its output is kept): {}", escape(f)),
                "  ",
                "    ",
            );
        }
        ui.para("No password or key is in it. Send the folder to the fvsync maintainers (docs/diskutil.md).");
    }
}
