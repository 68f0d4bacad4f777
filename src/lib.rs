//! fvsync: brings a Mac user's FileVault passphrase (APFS crypto user), local
//! login password (ShadowHashData) and login keychain back in sync with the
//! current directory password, safely, from the Recovery terminal.
//!
//! The library never prints or exits except through [`output`]; `main` parses
//! the command line, calls [`cli::run`] and maps errors to exit codes.
//!
//! `unsafe` is forbidden in the whole crate: memory locking ([`memlock`]) goes
//! through the `region` crate's safe guard (docs/security.md).
#![forbid(unsafe_code)]

pub mod argv;
pub mod cli;
pub mod crypto;
pub mod diskutil;
pub mod engine;
pub mod error;
pub mod failpoint;
#[cfg(feature = "testing")]
pub mod faulty;
pub mod formats;
pub mod fsio;
pub mod listing;
pub mod memlock;
pub mod output;
pub mod platform;
pub mod runbook;
pub mod secret;
pub mod sim;
pub mod text;
