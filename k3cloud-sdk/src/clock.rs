//! The source of the timestamps in signed headers and LoginBySign.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Gives the current Unix time in seconds.
///
/// The client uses the system clock; tests replace it (see [`FixedClock`]) to reproduce
/// signatures captured at a known instant.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn unix_seconds(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// A clock that always says the same second.
///
/// ```
/// use k3cloud_sdk::{Clock, FixedClock};
/// assert_eq!(FixedClock(1_700_000_000).unix_seconds(), 1_700_000_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn unix_seconds(&self) -> i64 {
        self.0
    }
}
