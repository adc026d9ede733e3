//! A global allocator that counts, per thread, the bytes a thread holds and the most it held:
//! an input whose reader holds more than its bound is a failure (a length field trusted
//! blindly), and one far past it is refused outright before it can take the machine down.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    /// Allocations past this many live bytes fail (0: no limit). Set on fuzz workers only.
    static HARD_LIMIT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !grow(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        let out = unsafe { System.realloc(ptr, layout, new_size) };
        if new_size < layout.size() {
            shrink(layout.size() - new_size);
        }
        out
    }
}

/// Counts `n` more bytes on this thread; false when that passes its hard limit. (`try_with`:
/// a thread being torn down has no counters left, and allocates uncounted.)
fn grow(n: usize) -> bool {
    LIVE.try_with(|live| {
        let now = live.get().saturating_add(n);
        let limit = HARD_LIMIT.try_with(Cell::get).unwrap_or(0);
        if limit != 0 && now > limit {
            return false;
        }
        live.set(now);
        PEAK.try_with(|p| p.set(p.get().max(now))).ok();
        true
    })
    .unwrap_or(true)
}

/// Memory freed on another thread than the one that took it only lowers this thread's count
/// to zero: the bound is on what a reader takes, not an exact ledger.
fn shrink(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(n)));
}

/// Starts counting this thread afresh, refusing allocations past `hard_limit` live bytes.
pub fn start(hard_limit: usize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    HARD_LIMIT.with(|h| h.set(hard_limit));
}

/// The most bytes this thread held since [`start`].
pub fn peak() -> usize {
    PEAK.with(Cell::get)
}
