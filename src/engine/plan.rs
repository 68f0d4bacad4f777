//! The plan (what a reconcile would do with each step) and the verdict (is
//! the user in sync), both decided once, here, from an observation.
//!
//! **The verdict.** The secrets that count are FileVault (or the SecureToken),
//! the login hash and SRP verifier, and the login keychain when it can be
//! checked; Local Items and the user keybag never count (macOS asks about
//! them at first login). When every counted secret takes NEW: in sync (exit 0).
//! When one does not and `reconcile` can fix it (it takes OLD, or it is a
//! login secret and OLD is proven elsewhere): out of sync (exit 3). When one
//! does not and nothing fvsync can do would fix it (it takes neither, or
//! FileVault cannot be reached): needs attention (exit 8), so a script never
//! loops on a reconcile that cannot help.

use serde::Serialize;

use crate::engine::observe::Observation;
use crate::engine::secrets::{Accepts, Row, Secret};
use crate::engine::step::{Action, Planned, Step};
use crate::error::Exit;

/// Is the user in sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every counted secret takes NEW.
    InSync,
    /// Not in sync, and `reconcile` can fix it.
    OutOfSync,
    /// Not in sync, and nothing fvsync can do would fix it.
    NeedsAttention,
}

impl Verdict {
    /// The exit code.
    pub fn exit(self) -> Exit {
        match self {
            Verdict::InSync => Exit::Ok,
            Verdict::OutOfSync => Exit::OutOfSync,
            Verdict::NeedsAttention => Exit::NeedsAttention,
        }
    }
}

/// What proved OLD (before anything is written, something must have).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Proof {
    /// FileVault accepted it.
    Filevault,
    /// An offline secret of this user accepted it.
    Offline(Secret),
    /// The OLD verifier of an interrupted run of this user accepted it.
    Verifier,
}

impl Proof {
    /// What proved OLD, in a sentence ("the login hash").
    pub fn words(self) -> &'static str {
        match self {
            Proof::Filevault => "FileVault",
            Proof::Offline(Secret::Login) => "the login hash",
            Proof::Offline(Secret::Srp) => "the SRP verifier",
            Proof::Offline(Secret::Keychain) => "the login keychain",
            Proof::Offline(_) => "an offline secret",
            Proof::Verifier => "a previous run's OLD verifier",
        }
    }
}

/// The plan: every step, in order, with what a reconcile would do.
pub fn plan(o: &Observation) -> Vec<Planned> {
    let mut out: Vec<Planned> = Vec::new();
    for step in Step::ALL {
        let p = step.ops().plan(o, &out);
        out.push(p);
    }
    out
}

/// True when the plan changes something.
pub fn has_work(plan: &[Planned]) -> bool {
    plan.iter().any(|p| p.action == Action::Do)
}

/// What proves OLD for this user, if anything.
pub fn old_proof(o: &Observation, verifier: bool) -> Option<Proof> {
    if let Some(p) = o.via_recovery_key {
        return Some(p);
    }
    if o.fv.accepts.takes_old() {
        return Some(Proof::Filevault);
    }
    if let Some(s) = o
        .offline
        .as_ref()
        .and_then(|off| off.old_proven_by().first().copied())
    {
        return Some(Proof::Offline(s));
    }
    verifier.then_some(Proof::Verifier)
}

fn fixable(r: &Row, old_proven: bool) -> bool {
    match (r.secret, r.accepts) {
        (_, a) if a.takes_new() => true,
        (_, Accepts::Old) => true,
        (Secret::Login | Secret::Srp, Accepts::Neither | Accepts::Unknown) => old_proven,
        _ => false,
    }
}

/// The verdict over `rows` (see the module docs); `old_proven`: OLD is proven
/// by FileVault or an offline secret, so the login secrets can be rewritten.
pub fn verdict(rows: &[Row], old_proven: bool) -> Verdict {
    let counted: Vec<&Row> = rows.iter().filter(|r| r.counts).collect();
    if counted.iter().all(|r| r.accepts.takes_new()) {
        Verdict::InSync
    } else if counted.iter().all(|r| fixable(r, old_proven)) {
        Verdict::OutOfSync
    } else {
        Verdict::NeedsAttention
    }
}

/// The verdict of one password (`verify`): in sync when every counted secret
/// takes it, else out of sync.
pub fn verdict_one(rows: &[Row]) -> Verdict {
    if rows
        .iter()
        .filter(|r| r.counts)
        .all(|r| r.accepts.takes_new())
    {
        Verdict::InSync
    } else {
        Verdict::OutOfSync
    }
}

/// The rows after a successful reconcile: every step that ran was checked
/// against NEW before the run ended (FileVault by a check of NEW, the record
/// and the keychain by reading back what was written, derived from NEW), so
/// no derivation is repeated to draw it.
pub fn rows_after(before: &[Row], changed: &[Step]) -> Vec<Row> {
    before
        .iter()
        .map(|r| match r.secret.step() {
            Some(s) if changed.contains(&s) => {
                // Changed and checked against NEW: it counts now, whatever it was.
                Row::new(r.secret, Accepts::New).note("changed and verified")
            }
            _ => r.clone(),
        })
        .collect()
}
