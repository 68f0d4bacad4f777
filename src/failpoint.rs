//! Failpoints for the crash-safety suite. They exist only in builds with the
//! `testing` feature (off by default); in every other build `hit` is a no-op the
//! compiler removes, and the environment variable below is never read.
//!
//! `FVSYNC_FAILPOINT=<name>:<error|abort>[,<name>:<action>...]` makes the named
//! point return an injected error, or abort the process on the spot (a power cut).
//! Each armed point fires once per process (a transient fault), so a rollback
//! that passes the same point again goes through.

use crate::error::Result;

/// Passes through failpoint `name`.
///
/// # Errors
/// In testing builds, when the point is armed with `error`.
#[cfg(feature = "testing")]
pub fn hit(name: &str) -> Result<()> {
    use crate::error::{Error, ErrorKind};
    let Ok(spec) = std::env::var("FVSYNC_FAILPOINT") else {
        return Ok(());
    };
    for item in spec.split(',') {
        let (point, action) = item.split_once(':').unwrap_or((item, "error"));
        if point == name {
            static FIRED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
            let mut fired = FIRED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if fired.iter().any(|f| f == name) {
                return Ok(());
            }
            fired.push(name.to_string());
            if action == "abort" {
                std::process::abort();
            }
            return Err(Error::new(
                ErrorKind::Failure,
                format!("injected failure at failpoint {name}"),
            ));
        }
    }
    Ok(())
}

/// Passes through failpoint `name` (a no-op in this build).
///
/// # Errors
/// Never.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn hit(_name: &str) -> Result<()> {
    Ok(())
}
