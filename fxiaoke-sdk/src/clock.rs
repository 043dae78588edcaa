//! The wall clock that token lifetimes are measured with.

use std::fmt;

use chrono::{DateTime, Utc};

/// Gives the current time. Token expiry is kept as wall-clock time so that a token cached by
/// one process (in Redis, a database, a file) means the same to another.
///
/// The client uses [`SystemClock`]; tests use [`TokioClock`], which follows tokio's clock and
/// so moves with `tokio::time::pause` / `advance`.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that starts at the system time when created and then advances with tokio's
/// clock, so that paused-time tests (`tokio::time::advance`) can move token lifetimes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use fxiaoke_sdk::{Clock, TokioClock};
/// let clock = TokioClock::new();
/// let before = clock.now();
/// tokio::time::advance(std::time::Duration::from_secs(6600)).await;
/// assert_eq!((clock.now() - before).num_seconds(), 6600);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    mono: tokio::time::Instant,
}

impl TokioClock {
    /// A clock anchored now.
    pub fn new() -> Self {
        TokioClock {
            wall: Utc::now(),
            mono: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.mono);
        chrono::TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|d| self.wall.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
