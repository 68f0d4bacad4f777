//! No derivation is computed twice in one run, and diagnose does exactly the
//! derivations it needs: a counter in test builds proves it. Runs the engine
//! in-process (one test in this binary, so nothing else moves the counters).
#![cfg(feature = "testing")]

mod common;
use common::*;

use fvsync::crypto::{clear_memo, derivation_count, memo_len};

use common::inproc::{alice, alice_reconcile, run_engine};

#[test]
fn every_derivation_is_computed_once() {
    let (_t, dir) = mac("all-old");
    clear_memo();
    let before = derivation_count();
    assert_eq!(
        run_engine(&dir, &alice(), true, &[OLD, NEW], fvsync::cli::diagnose).code,
        3
    );
    // FileVault: OLD (1). Login hash, SRP, keychain: OLD and NEW each (6).
    // The local KDC's AES-128 and AES-256 keys: OLD and NEW each (4). Its
    // SRP verifier (HeimdalSRPKey): OLD and NEW each (2).
    assert_eq!(derivation_count() - before, 13);
    assert_eq!(memo_len(), 13);

    clear_memo();
    let before = derivation_count();
    assert_eq!(
        run_engine(
            &dir,
            &alice_reconcile(),
            true,
            &[OLD, NEW],
            fvsync::cli::reconcile
        )
        .code,
        0
    );
    let computed = derivation_count() - before;
    // Every computation was distinct: the memo holds one entry per computation.
    assert_eq!(
        computed as usize,
        memo_len(),
        "a derivation was computed twice"
    );
    // FileVault: OLD, then NEW under the new salt (the wrap, reused by the
    // check of NEW after the change) (2); the offline checks (6); the fresh
    // ShadowHashData (2); the keychain under NEW's fresh salt, and OLD against
    // it (2); the verifier of OLD kept with the backups for undo (1); the
    // local KDC's two AES keys for OLD and NEW (4; the fresh keys for NEW keep
    // the principal's salt, so they are the ones the check derived); the
    // SRP verifier (HeimdalSRPKey) checked for OLD and NEW, and made anew for
    // NEW under a fresh salt (3).
    assert_eq!(computed, 20);
}
