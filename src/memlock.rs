//! Keeps the memory that holds passwords out of swap (`mlock`), where the OS
//! allows it.
//!
//! No `unsafe` here: the `region` crate's [`region::lock`] is a safe function
//! that locks the pages of a range and returns a guard whose drop unlocks them
//! (`mlock`/`munlock` on Linux and macOS). Neither call can break memory
//! safety (they change how the kernel pages memory, never what it holds; an
//! address that is not mapped is refused with `ENOMEM`). See docs/security.md.
//!
//! Locks are per page, and two small buffers (OLD and NEW) often share a page.
//! Linux does not stack locks (one `munlock` undoes any number of `mlock`s);
//! XNU counts them (each `munlock` removes one). So pages are
//! reference-counted here, and each locked page has exactly one
//! [`region::LockGuard`] of one page: the page is locked once, when the first
//! buffer on it is pinned, and unlocked once, when the last one is dropped.
//! Both kernels then behave the same.
//!
//! A failure to lock (an `RLIMIT_MEMLOCK` of 0, a kernel that refuses) is not
//! an error: the password is still zeroized on drop and core dumps are off.
//! The first failure is remembered and `main` prints it as a warning.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// One locked page: how many live [`Pinned`] guards cover it, and the one
/// `region` guard that holds it locked (dropping it unlocks the page).
struct Page {
    users: usize,
    _lock: region::LockGuard,
}

/// Page address → its lock (only pages whose lock succeeded are here).
static PAGES: Mutex<Option<HashMap<usize, Page>>> = Mutex::new(None);
/// Why the first lock failed.
static FAILURE: OnceLock<String> = OnceLock::new();

/// The page size, or None when the system does not say (then nothing is
/// locked: a guess smaller than the real page would make one buffer's unlock
/// release its neighbours' pages).
fn page_size() -> Option<usize> {
    Some(region::page::size()).filter(|n| n.is_power_of_two())
}

/// Holds the pages of one buffer locked; unlocks them (when no other guard
/// needs them) on drop.
#[must_use = "the pages are unlocked when the guard is dropped"]
pub struct Pinned {
    pages: Vec<usize>,
}

/// Locks the pages that cover `len` bytes from `addr`, the allocation of a
/// buffer that will not move or be freed while the guard lives (a `Vec` that
/// never grows; see `secret::LockedBuf`).
pub fn pin(addr: *const u8, len: usize) -> Pinned {
    let mut pinned = Pinned { pages: Vec::new() };
    if len == 0 || addr.is_null() {
        return pinned;
    }
    if crate::failpoint::hit("mlock").is_err() {
        remember_failure("injected failure (failpoint mlock)".to_string());
        return pinned;
    }
    let Some(size) = page_size() else {
        remember_failure("the page size is unknown".to_string());
        return pinned;
    };
    let start = addr.addr() & !(size - 1);
    let end = addr.addr().saturating_add(len);
    let mut map = PAGES.lock().unwrap_or_else(PoisonError::into_inner);
    let map = map.get_or_insert_with(HashMap::new);
    let mut page = start;
    while page < end {
        if let Some(p) = map.get_mut(&page) {
            p.users += 1;
            pinned.pages.push(page);
        } else {
            // Exactly this one page (region rounds to page boundaries, and
            // `page` is one).
            match region::lock(addr.with_addr(page), size) {
                Ok(lock) => {
                    map.insert(
                        page,
                        Page {
                            users: 1,
                            _lock: lock,
                        },
                    );
                    pinned.pages.push(page);
                }
                // Go on: later pages may already be locked for another
                // buffer and must be counted for this one too.
                Err(e) => remember_failure(describe(&e)),
            }
        }
        page += size;
    }
    pinned
}

/// `mlock: <the system's message>` for a refused lock.
fn describe(e: &region::Error) -> String {
    match e.raw_os_error() {
        Some(code) => format!("mlock: {}", std::io::Error::from_raw_os_error(code)),
        None => format!("mlock: {e}"),
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        let mut map = PAGES.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(map) = map.as_mut() else { return };
        for page in self.pages.drain(..) {
            let Some(p) = map.get_mut(&page) else {
                continue;
            };
            p.users -= 1;
            if p.users == 0 {
                // Dropping its guard unlocks the page. The buffer is still
                // allocated (LockedBuf unpins before it frees), and no other
                // guard counts this page.
                map.remove(&page);
            }
        }
    }
}

fn remember_failure(why: String) {
    let _ = FAILURE.set(why);
}

/// Why locking password memory failed in this process, if it did.
pub fn failure() -> Option<&'static str> {
    FAILURE.get().map(String::as_str)
}

/// Number of pages this module holds locked (for tests).
#[doc(hidden)]
pub fn locked_pages() -> usize {
    PAGES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or(0, HashMap::len)
}
