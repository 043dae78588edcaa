//! Single-flight token refresh with a skew, the shared cache and the fetch budget.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{CorpToken, RefreshGuard, TokenAnswer, TokenCache, TokenKey, TokenPolicy};
use crate::clock::Clock;
use crate::error::Result;
use crate::retry::{Idempotency, RetryPolicy};
use fxk3_kernel::retry::Attempts;

const MINUTE: Duration = Duration::from_secs(60);

/// Holds the current token of one client (and its clones) and replaces it, one fetch at a time.
pub(crate) struct TokenManager {
    pub(crate) key: TokenKey,
    cache: Arc<dyn TokenCache>,
    policy: TokenPolicy,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    /// The token in use and when to replace it: read by every call without waiting.
    current: RwLock<Option<(Arc<CorpToken>, DateTime<Utc>)>>,
    /// Held while a token is looked up or fetched; holds the start times of recent fetches.
    gate: tokio::sync::Mutex<VecDeque<Instant>>,
    fetches: AtomicU64,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.read();
        f.debug_struct("TokenManager")
            .field("key", &self.key)
            .field("cache", &self.cache)
            .field("policy", &self.policy)
            .field("current", &current.as_ref().map(|(t, _)| t))
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    pub(crate) fn new(
        key: TokenKey,
        cache: Arc<dyn TokenCache>,
        policy: TokenPolicy,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Self {
        TokenManager {
            key,
            cache,
            policy,
            clock,
            retry,
            current: RwLock::new(None),
            gate: tokio::sync::Mutex::new(VecDeque::new()),
            fetches: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<(Arc<CorpToken>, DateTime<Utc>)>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, token: Option<Arc<CorpToken>>) {
        let entry = token.map(|t| {
            let at = t.refresh_at(&self.policy);
            (t, at)
        });
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = entry;
    }

    /// Token requests sent by this client so far (every attempt counts).
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The current token if it is not due for replacement.
    fn fresh(&self) -> Option<Arc<CorpToken>> {
        let current = self.read();
        let (token, refresh_at) = current.as_ref()?;
        (self.clock.now() < *refresh_at).then(|| Arc::clone(token))
    }

    /// A token to send: the current one, a fresh one from the cache, or a new one.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<CorpToken>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<TokenAnswer>>,
    {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let mut recent = self.gate.lock().await;
        // Whoever held the gate before us may have just replaced it.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        if let Some(token) = self.cached(None).await {
            return Ok(token);
        }
        let guard = self.lock_refresh().await;
        // Another client sharing the cache may have stored a token while we waited.
        let result = match self.cached(None).await {
            Some(token) => Ok(token),
            None => self.fetch_locked(&mut recent, fetch).await,
        };
        release(guard).await;
        result
    }

    /// Replaces `rejected` (the server answered 20016 to it), unless another caller already
    /// did; returns the token to resend with.
    pub(crate) async fn replace<F, Fut>(
        &self,
        rejected: &CorpToken,
        fetch: F,
    ) -> Result<Arc<CorpToken>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<TokenAnswer>>,
    {
        let mut recent = self.gate.lock().await;
        if let Some(token) = self.fresh().filter(|t| !t.same_token(rejected)) {
            return Ok(token);
        }
        if let Some(token) = self.cached(Some(rejected)).await {
            return Ok(token);
        }
        let guard = self.lock_refresh().await;
        // Another client sharing the cache may have replaced it while we waited.
        let result = if let Some(token) = self.cached(Some(rejected)).await {
            Ok(token)
        } else {
            self.set(None);
            if let Err(e) = self.cache.invalidate(&self.key).await {
                tracing::warn!(error = %e, "token cache: invalidate failed");
            }
            self.fetch_locked(&mut recent, fetch).await
        };
        release(guard).await;
        result
    }

    /// The cache's refresh lock for our key, or `None` (logged) if the cache could not give it.
    async fn lock_refresh(&self) -> Option<Box<dyn RefreshGuard>> {
        match self.cache.lock_refresh(&self.key).await {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!(error = %e, "token cache: refresh lock failed; fetching without it");
                None
            }
        }
    }

    /// Forgets the token here and in the cache.
    pub(crate) async fn invalidate(&self) {
        let _recent = self.gate.lock().await;
        self.set(None);
        if let Err(e) = self.cache.invalidate(&self.key).await {
            tracing::warn!(error = %e, "token cache: invalidate failed");
        }
    }

    /// A fresh token from the shared cache (other than `rejected`), adopted as current.
    async fn cached(&self, rejected: Option<&CorpToken>) -> Option<Arc<CorpToken>> {
        let token = match self.cache.get(&self.key).await {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "token cache: get failed; fetching a token");
                return None;
            }
        };
        if rejected.is_some_and(|r| r.same_token(&token))
            || self.clock.now() >= token.refresh_at(&self.policy)
        {
            return None;
        }
        let token = Arc::new(token);
        self.set(Some(Arc::clone(&token)));
        tracing::debug!("using the token from the shared cache");
        Some(token)
    }

    /// Fetches a token (the gate is held), within the per-minute budget, retrying transient
    /// failures; stores it here and in the cache.
    async fn fetch_locked<F, Fut>(
        &self,
        recent: &mut VecDeque<Instant>,
        fetch: F,
    ) -> Result<Arc<CorpToken>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<TokenAnswer>>,
    {
        let budget = usize::try_from(self.policy.max_fetches_per_minute.max(1)).unwrap_or(10);
        let mut attempts = Attempts::new(&self.retry, Idempotency::Idempotent);
        let answer = loop {
            attempts.start();
            wait_for_budget(recent, budget).await;
            recent.push_back(Instant::now());
            self.fetches.fetch_add(1, Ordering::Relaxed);
            match fetch().await {
                Ok(answer) => break answer,
                Err(e) => attempts.back_off(e, "token").await?,
            }
        };
        let token = Arc::new(CorpToken::received(answer, self.clock.now(), &self.policy));
        self.set(Some(Arc::clone(&token)));
        if let Err(e) = self.cache.put(&self.key, &token).await {
            tracing::warn!(error = %e, "token cache: put failed");
        }
        tracing::info!(
            corp_id = token.corp_id(),
            expires_at = %token.expires_at(),
            "fetched a corp access token"
        );
        Ok(token)
    }
}

/// Releases a refresh lock, logging a failure (the lock's own expiry is then the fallback).
async fn release(guard: Option<Box<dyn RefreshGuard>>) {
    if let Some(guard) = guard
        && let Err(e) = guard.release().await
    {
        tracing::warn!(error = %e, "token cache: releasing the refresh lock failed");
    }
}

/// Waits until fewer than `budget` fetches started in the last minute.
async fn wait_for_budget(recent: &mut VecDeque<Instant>, budget: usize) {
    loop {
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            recent.pop_front();
        }
        if recent.len() < budget {
            return;
        }
        let Some(oldest) = recent.front().copied() else {
            return;
        };
        tracing::warn!(
            budget,
            "token fetch budget spent; waiting for the oldest fetch to be a minute old"
        );
        tokio::time::sleep_until(oldest + MINUTE).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use secrecy::SecretString;

    use super::*;
    use crate::auth::MemoryTokenCache;
    use crate::clock::TokioClock;
    use crate::error::Error;

    fn manager(cache: Arc<dyn TokenCache>) -> TokenManager {
        TokenManager::new(
            TokenKey::new("h", "app", "perm"),
            cache,
            TokenPolicy::default(),
            Arc::new(TokioClock::new()),
            RetryPolicy::default(),
        )
    }

    fn answer(n: usize, expires_in: i64) -> TokenAnswer {
        TokenAnswer {
            token: SecretString::from(format!("token-{n}")),
            corp_id: "FSCID_X".into(),
            expires_in,
        }
    }

    /// A fetcher that counts calls and hands out `token-1`, `token-2`, ….
    fn counting(
        calls: &AtomicUsize,
        expires_in: i64,
    ) -> impl Fn() -> std::future::Ready<Result<TokenAnswer>> + '_ {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(Ok(answer(n, expires_in)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_at_the_end_of_the_reuse_window() {
        let calls = AtomicUsize::new(0);
        let m = manager(Arc::new(MemoryTokenCache::new()));
        let t = m.get(counting(&calls, 7200)).await.unwrap();
        assert_eq!(t.expose_token(), "token-1");
        tokio::time::advance(Duration::from_secs(6599)).await;
        assert_eq!(
            m.get(counting(&calls, 7200)).await.unwrap().expose_token(),
            "token-1"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            m.get(counting(&calls, 7200)).await.unwrap().expose_token(),
            "token-2"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn more_than_ten_fetches_a_minute_wait() {
        let calls = AtomicUsize::new(0);
        let m = manager(Arc::new(MemoryTokenCache::new()));
        let t0 = Instant::now();
        let mut rejected = m.get(counting(&calls, 7200)).await.unwrap();
        for _ in 0..11 {
            rejected = m.replace(&rejected, counting(&calls, 7200)).await.unwrap();
        }
        // 12 fetches: ten at once, the 11th and 12th a minute after the 1st and 2nd.
        assert_eq!(calls.load(Ordering::SeqCst), 12);
        assert_eq!(Instant::now() - t0, MINUTE);
        assert_eq!(rejected.expose_token(), "token-12");
    }

    #[tokio::test(start_paused = true)]
    async fn a_replacement_by_someone_else_is_reused() {
        let calls = AtomicUsize::new(0);
        let m = manager(Arc::new(MemoryTokenCache::new()));
        let first = m.get(counting(&calls, 7200)).await.unwrap();
        let second = m.replace(&first, counting(&calls, 7200)).await.unwrap();
        // Another caller that saw `first` refused gets `second` without a fetch.
        let third = m.replace(&first, counting(&calls, 7200)).await.unwrap();
        assert_eq!(second.expose_token(), third.expose_token());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_cache_saves_fetches_across_clients() {
        let calls = AtomicUsize::new(0);
        let cache: Arc<dyn TokenCache> = Arc::new(MemoryTokenCache::new());
        let a = manager(Arc::clone(&cache));
        let b = manager(Arc::clone(&cache));
        a.get(counting(&calls, 7200)).await.unwrap();
        assert_eq!(
            b.get(counting(&calls, 7200)).await.unwrap().expose_token(),
            "token-1"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // b was refused the token: it fetches, and a picks the new token up from the cache
        // once its own is due.
        let refused = b.get(counting(&calls, 7200)).await.unwrap();
        b.replace(&refused, counting(&calls, 7200)).await.unwrap();
        tokio::time::advance(Duration::from_secs(6600)).await;
        assert_eq!(
            a.get(counting(&calls, 7200)).await.unwrap().expose_token(),
            "token-2"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[derive(Debug)]
    struct Broken;

    #[async_trait::async_trait]
    impl TokenCache for Broken {
        async fn get(&self, _: &TokenKey) -> Result<Option<CorpToken>, crate::CacheError> {
            Err("redis down".into())
        }
        async fn put(&self, _: &TokenKey, _: &CorpToken) -> Result<(), crate::CacheError> {
            Err("redis down".into())
        }
        async fn invalidate(&self, _: &TokenKey) -> Result<(), crate::CacheError> {
            Err("redis down".into())
        }
        async fn lock_refresh(
            &self,
            _: &TokenKey,
        ) -> Result<Box<dyn RefreshGuard>, crate::CacheError> {
            Err("redis down".into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_cache_does_not_fail_calls() {
        let calls = AtomicUsize::new(0);
        let m = manager(Arc::new(Broken));
        let t = m.get(counting(&calls, 7200)).await.unwrap();
        assert_eq!(
            m.get(counting(&calls, 7200)).await.unwrap().expose_token(),
            "token-1"
        );
        m.replace(&t, counting(&calls, 7200)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_fetch_failures_are_retried_and_refusals_are_not() {
        let calls = AtomicUsize::new(0);
        let m = manager(Arc::new(MemoryTokenCache::new()));
        let flaky = || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(if n == 0 {
                Err(Error::Http {
                    status: 503,
                    snippet: String::new(),
                })
            } else {
                Ok(answer(n, 7200))
            })
        };
        assert_eq!(m.get(flaky).await.unwrap().expose_token(), "token-1");
        assert_eq!(m.fetch_count(), 2);
        let m = manager(Arc::new(MemoryTokenCache::new()));
        let refused = || std::future::ready(Err(Error::InvalidInput("refused".into())));
        assert!(m.get(refused).await.is_err());
        assert_eq!(m.fetch_count(), 1);
    }
}
