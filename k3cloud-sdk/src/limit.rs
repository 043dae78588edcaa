//! A client-side cap on concurrent calls and on the call rate, or your own [`RateLimiter`].
//!
//! K3Cloud documents no rate limit but has MsgCode 14 (call limit) and guards concurrent edits
//! with network control; integrators usually cap a sync at a handful of concurrent calls. A
//! server shared by several processes (or several integrations) needs one limit for all of
//! them: plug in a [`RateLimiter`] backed by what they share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};
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

impl RateLimit {
    /// The limiter that enforces this limit, to share between clients of one server
    /// ([`ClientBuilder::rate_limiter`](crate::ClientBuilder::rate_limiter)): each client built
    /// with [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit) has its own.
    pub fn limiter(&self) -> Arc<dyn RateLimiter> {
        Arc::new(Limiter::new(self))
    }
}

/// Decides when a K3Cloud call may start, and holds what it takes while the call runs.
///
/// ```
/// use k3cloud_sdk::{Permit, RateLimiter};
///
/// /// Lets every call through at once.
/// #[derive(Debug)]
/// struct NoLimit;
///
/// #[async_trait::async_trait]
/// impl RateLimiter for NoLimit {
///     async fn acquire(&self, _service: &str) -> Permit {
///         Permit::none()
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Waits until a call of `service` (such as
    /// `Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.BatchSave`) may start. The permit is
    /// held until the call ends, its retries and a new login included.
    async fn acquire(&self, service: &str) -> Permit;
}

/// What a [`RateLimiter`] holds while one call runs (a slot of a semaphore, a lease in a
/// shared store); dropping it gives it back.
pub struct Permit {
    held: Option<Box<dyn Send + Sync>>,
}

impl Permit {
    /// A permit that holds nothing.
    pub fn none() -> Self {
        Permit { held: None }
    }

    /// A permit that holds `held` until the call ends, then drops it.
    pub fn holding(held: impl Send + Sync + 'static) -> Self {
        Permit {
            held: Some(Box::new(held)),
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("holds", &self.held.is_some())
            .finish()
    }
}

/// The shared state behind a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct Limiter {
    slots: Option<Arc<Semaphore>>,
    interval: Option<(Duration, Mutex<Option<Instant>>)>,
}

#[async_trait::async_trait]
impl RateLimiter for Limiter {
    async fn acquire(&self, _service: &str) -> Permit {
        self.wait().await
    }
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit) -> Self {
        Limiter {
            slots: limit.max_concurrent.map(|n| Arc::new(Semaphore::new(n))),
            interval: limit.min_interval.map(|d| (d, Mutex::new(None))),
        }
    }

    /// Waits for a free slot and for the next start time.
    async fn wait(&self) -> Permit {
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
        match slot {
            Some(slot) => Permit::holding(slot),
            None => Permit::none(),
        }
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
                let _p = l.wait().await;
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
        let a = limiter.wait().await;
        let _b = limiter.wait().await;
        let waiting = tokio::spawn({
            let l = Arc::clone(&limiter);
            async move { l.wait().await }
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
            let _p = limiter.wait().await;
        }
    }
}
