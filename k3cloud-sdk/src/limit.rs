//! A client-side cap on concurrent calls and on the call rate.
//!
//! K3Cloud documents no rate limit but has MsgCode 14 (call limit) and guards concurrent edits
//! with network control; integrators usually cap a sync at a handful of concurrent calls.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Limits for the calls of one client (and all its clones). Off by default.
///
/// ```
/// use k3cloud_sdk::RateLimit;
/// let limit = RateLimit::none().max_concurrent(4).per_second(20);
/// # let _ = limit;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// At most this many calls in flight at once.
    pub max_concurrent: Option<usize>,
    /// At least this much time between the starts of two calls.
    pub min_interval: Option<Duration>,
}

impl RateLimit {
    /// No limit.
    pub fn none() -> Self {
        RateLimit::default()
    }

    /// At most `n` calls in flight at once (at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = Some(n.max(1));
        self
    }

    /// At most `n` call starts per second, evenly spaced (at least 1).
    pub fn per_second(mut self, n: u32) -> Self {
        self.min_interval = Some(Duration::from_secs(1) / n.max(1));
        self
    }
}

/// The shared state behind a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct Limiter {
    slots: Option<Arc<Semaphore>>,
    interval: Option<(Duration, Mutex<Option<Instant>>)>,
}

/// Held for the duration of one call.
#[derive(Debug)]
pub(crate) struct Permit {
    _slot: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit) -> Self {
        Limiter {
            slots: limit.max_concurrent.map(|n| Arc::new(Semaphore::new(n))),
            interval: limit.min_interval.map(|d| (d, Mutex::new(None))),
        }
    }

    /// Waits for a free slot and for the next start time.
    pub(crate) async fn acquire(&self) -> Permit {
        let slot = match &self.slots {
            // The semaphore is never closed, so acquiring cannot fail.
            Some(s) => Arc::clone(s).acquire_owned().await.ok(),
            None => None,
        };
        if let Some((interval, next)) = &self.interval {
            let start = {
                let mut next = next.lock().await;
                let now = Instant::now();
                let start = next.map_or(now, |n| n.max(now));
                *next = Some(start + *interval);
                start
            };
            tokio::time::sleep_until(start).await;
        }
        Permit { _slot: slot }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_rate() {
        let limiter = Arc::new(Limiter::new(&RateLimit::none().per_second(4)));
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..5 {
            let l = Arc::clone(&limiter);
            handles.push(tokio::spawn(async move {
                let _p = l.acquire().await;
                Instant::now() - t0
            }));
        }
        let mut starts = Vec::new();
        for h in handles {
            starts.push(h.await.unwrap());
        }
        starts.sort();
        let ms: Vec<u128> = starts.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 250, 500, 750, 1000]);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped() {
        let limiter = Arc::new(Limiter::new(&RateLimit::none().max_concurrent(2)));
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        let waiting = tokio::spawn({
            let l = Arc::clone(&limiter);
            async move { l.acquire().await }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !waiting.is_finished(),
            "a third call started while two were in flight"
        );
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn no_limit_never_waits() {
        let limiter = Limiter::new(&RateLimit::none());
        for _ in 0..100 {
            let _p = limiter.acquire().await;
        }
    }
}
