//! Failpoints for the crash-safety suite. They exist only in builds with the
//! `testing` feature (off by default); in every other build `hit` is a no-op the
//! compiler removes, and the environment variable below is never read.
//!
//! `FVSYNC_FAILPOINT=<name>:<error|abort|erofs|enospc>[,<name>:<action>...]` makes
//! the named point return an injected error, abort the process on the spot (a
//! power cut), or fail as the system would on a read-only volume (`erofs`, errno
//! 30) or a full disk (`enospc`, errno 28): an I/O error built from the raw OS
//! error, so it takes the same path (message and hint) as the real one.
//! Each armed point fires once per process (a transient fault), so a rollback
//! that passes the same point again goes through.

use crate::error::Result;

/// Passes through failpoint `name`.
///
/// # Errors
/// In testing builds, when the point is armed with `error`, `erofs` or `enospc`.
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
            match action {
                "abort" => std::process::abort(),
                "erofs" | "enospc" => {
                    let errno = if action == "erofs" { 30 } else { 28 };
                    let e = std::io::Error::from_raw_os_error(errno);
                    return Err(Error::io(
                        "write at failpoint",
                        std::path::Path::new(name),
                        &e,
                    ));
                }
                _ => {}
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
