//! Generation numbers: a store takes a new one on every change, so that a cached query order
//! built for one generation is never used for another.

use std::sync::atomic::{AtomicU64, Ordering};

/// A process-wide counter: a number is never handed out twice, not even to a reset store.
pub(crate) fn next() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
