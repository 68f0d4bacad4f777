//! Keeps the memory that holds passwords out of swap (`mlock`), where the OS
//! allows it.
//!
//! This is the crate's one exception to "no `unsafe`": nix marks `mlock` and
//! `munlock` unsafe because they take a raw address. Neither can break memory
//! safety (they change how the kernel pages memory, never what it holds; an
//! address that is not mapped is refused with `ENOMEM`). The addresses passed
//! are those of live heap buffers the caller owns for as long as the guard
//! lives. See docs/security.md.
//!
//! Locks are per page and do not nest in the kernel, and two small buffers
//! (OLD and NEW) often share a page, so pages are reference-counted here: a
//! page is unlocked only when the last buffer on it is dropped.
//!
//! A failure to lock (an `RLIMIT_MEMLOCK` of 0, a kernel that refuses) is not
//! an error: the password is still zeroized on drop and core dumps are off.
//! The first failure is remembered and `main` prints it as a warning.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Page address → number of live guards that cover it (only pages whose lock
/// succeeded are here).
static PAGES: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);
/// Why the first lock failed.
static FAILURE: OnceLock<String> = OnceLock::new();

/// The page size, or None when the system does not say (then nothing is
/// locked: a guess smaller than the real page would make one buffer's unlock
/// release its neighbours' pages).
fn page_size() -> Option<usize> {
    static SIZE: OnceLock<Option<usize>> = OnceLock::new();
    *SIZE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| n.is_power_of_two())
    })
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
    let start = addr as usize & !(size - 1);
    let end = (addr as usize).saturating_add(len);
    let mut map = PAGES.lock().unwrap_or_else(PoisonError::into_inner);
    let map = map.get_or_insert_with(HashMap::new);
    let mut page = start;
    while page < end {
        if let Some(count) = map.get_mut(&page) {
            *count += 1;
            pinned.pages.push(page);
        } else if let Some(ptr) = NonNull::new(page as *mut c_void) {
            // SAFETY: mlock only pins the page in RAM; it reads and writes
            // nothing. `page` is the start of a page of a live heap buffer.
            match unsafe { nix::sys::mman::mlock(ptr, size) } {
                Ok(()) => {
                    map.insert(page, 1);
                    pinned.pages.push(page);
                }
                // Go on: later pages may already be locked for another
                // buffer and must be counted for this one too.
                Err(e) => remember_failure(format!("mlock: {}", e.desc())),
            }
        }
        page += size;
    }
    pinned
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        let Some(size) = page_size() else { return };
        let mut map = PAGES.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(map) = map.as_mut() else { return };
        for page in self.pages.drain(..) {
            let Some(count) = map.get_mut(&page) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                map.remove(&page);
                if let Some(ptr) = NonNull::new(page as *mut c_void) {
                    // SAFETY: as for mlock; munlock changes paging only. The
                    // buffer is still allocated (LockedBuf unpins before it
                    // frees), and no other guard counts this page.
                    let _ = unsafe { nix::sys::mman::munlock(ptr, size) };
                }
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
