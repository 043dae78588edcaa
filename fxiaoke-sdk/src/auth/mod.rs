//! The corp access token: what it is, how long it is used, and where it is kept.
//!
//! Every business call carries `corpAccessToken` and `corpId` in its body. The token comes from
//! `POST /cgi/corpAccessToken/get/V2` with the app id, app secret and permanent code. The vendor
//! rules (reference §2): a token lives 7200 s; a fetch within 6600 s of issue returns the
//! **same** token (with its remaining `expiresIn`), a later fetch a new one while the old stays
//! valid to its end; the endpoint allows **at most 10 calls a minute and no concurrent calls**.
//!
//! The client therefore fetches single-flight (one fetch at a time, every other caller waits for
//! it and then uses its token — across all clients that share a [`TokenCache`], through the
//! cache's [`TokenCache::lock_refresh`]), keeps at most 10 fetches in any rolling minute (a
//! fetch over the budget **waits** for the oldest to be a minute old; it does not fail), and
//! shares tokens through the cache so that several clients or processes of one app and tenant
//! use one token.

mod manager;

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::de;

pub(crate) use manager::TokenManager;

/// The path of the token endpoint.
pub(crate) const TOKEN_PATH: &str = "/cgi/corpAccessToken/get/V2";

/// A corp access token with the corp it belongs to and its lifetime.
///
/// `Debug` never shows the token. Cache implementations read it with
/// [`CorpToken::expose_token`] and rebuild it with [`CorpToken::new`].
///
/// ```
/// use chrono::{Duration, Utc};
/// use fxiaoke_sdk::CorpToken;
///
/// let issued = Utc::now();
/// let token = CorpToken::new("E3B0C44298FC1C149AFBF4C8996FB924", "FSCID_1A2B", issued, issued + Duration::seconds(7200));
/// assert!(!format!("{token:?}").contains("E3B0C442"));
/// assert_eq!(token.corp_id(), "FSCID_1A2B");
/// ```
#[derive(Clone)]
pub struct CorpToken {
    token: SecretString,
    corp_id: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl CorpToken {
    /// A token as stored: its value, the corp id it came with, when it was issued and when it
    /// expires.
    pub fn new(
        token: impl Into<String>,
        corp_id: impl Into<String>,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        CorpToken {
            token: SecretString::from(token.into()),
            corp_id: corp_id.into(),
            issued_at,
            expires_at,
        }
    }

    /// The token value, for storing it. Never log it.
    pub fn expose_token(&self) -> &str {
        self.token.expose_secret()
    }

    /// The corp id (`FSCID_…`) the token is for.
    pub fn corp_id(&self) -> &str {
        &self.corp_id
    }

    /// When the server issued the token (inferred: expiry minus the 7200 s lifetime, since a
    /// reused token comes back with only its remaining `expiresIn`).
    pub fn issued_at(&self) -> DateTime<Utc> {
        self.issued_at
    }

    /// When the token stops being accepted.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// Whether `other` holds the same token value.
    pub(crate) fn same_token(&self, other: &CorpToken) -> bool {
        self.token.expose_secret() == other.token.expose_secret()
    }

    /// A token just received with `expires_in` seconds left.
    pub(crate) fn received(
        answer: TokenAnswer,
        now: DateTime<Utc>,
        policy: &TokenPolicy,
    ) -> CorpToken {
        let expires_in = answer.expires_in.max(0);
        let expires_at = TimeDelta::try_seconds(expires_in)
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        let lifetime = TimeDelta::from_std(policy.lifetime).unwrap_or(TimeDelta::MAX);
        let issued_at = expires_at
            .checked_sub_signed(lifetime)
            .unwrap_or(now)
            .min(now);
        CorpToken {
            token: answer.token,
            corp_id: answer.corp_id,
            issued_at,
            expires_at,
        }
    }

    /// When this token should be replaced, under `policy` (see [`TokenPolicy`]).
    pub(crate) fn refresh_at(&self, policy: &TokenPolicy) -> DateTime<Utc> {
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        let lived = (self.expires_at - self.issued_at).max(TimeDelta::zero());
        let tail = delta(policy.lifetime.saturating_sub(policy.reuse_window));
        let percent = i32::try_from(policy.skew_percent.min(100)).unwrap_or(100);
        let ratio = lived.checked_mul(percent).unwrap_or(TimeDelta::MAX) / 100;
        let skew = delta(policy.min_skew).max(ratio.min(tail));
        let by_expiry = self
            .expires_at
            .checked_sub_signed(skew)
            .unwrap_or(self.issued_at);
        let reuse_end = self
            .issued_at
            .checked_add_signed(delta(policy.reuse_window))
            .unwrap_or(self.expires_at);
        by_expiry.min(reuse_end)
    }
}

impl fmt::Debug for CorpToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorpToken")
            .field("token", &"[redacted]")
            .field("corp_id", &self.corp_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// How long a token is used before a new one is fetched.
///
/// A token is replaced at the earlier of
/// - the end of the vendor's **reuse window**, `reuse_window` (6600 s) after issue — a fetch
///   before it would return the same token; and
/// - its expiry minus a **skew** of max(`min_skew` (300 s), `skew_percent` (10 %) of its
///   lifetime), the percentage capped at the `lifetime − reuse_window` (600 s) between the end
///   of the reuse window and expiry, since fetching any earlier only returns the same token.
///
/// With the defaults a fresh 7200 s token is used for 6600 s; a reused one (fetched by another
/// process, `expiresIn` 1000) until 6600 s after its issue, i.e. 400 s.
///
/// ```
/// use std::time::Duration;
/// use fxiaoke_sdk::TokenPolicy;
///
/// let policy = TokenPolicy::default().with_min_skew(Duration::from_secs(600));
/// assert_eq!(policy.max_fetches_per_minute, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPolicy {
    /// The least time left on a token when it is replaced (default 300 s).
    pub min_skew: Duration,
    /// The share of a token's lifetime left when it is replaced, in percent (default 10).
    pub skew_percent: u32,
    /// How long after issue the server hands out the same token again (default 6600 s).
    pub reuse_window: Duration,
    /// The lifetime of a new token (default 7200 s).
    pub lifetime: Duration,
    /// Token fetches allowed in any rolling minute (default 10, the vendor's limit). Fetches
    /// over it wait.
    pub max_fetches_per_minute: u32,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            min_skew: Duration::from_secs(300),
            skew_percent: 10,
            reuse_window: Duration::from_secs(6600),
            lifetime: Duration::from_secs(7200),
            max_fetches_per_minute: 10,
        }
    }
}

impl TokenPolicy {
    /// Sets the least time left on a token when it is replaced.
    pub fn with_min_skew(mut self, skew: Duration) -> Self {
        self.min_skew = skew;
        self
    }

    /// Sets the share of the lifetime left when a token is replaced, in percent.
    pub fn with_skew_percent(mut self, percent: u32) -> Self {
        self.skew_percent = percent.min(100);
        self
    }

    /// Sets the token fetches allowed per rolling minute (at least 1).
    pub fn with_max_fetches_per_minute(mut self, fetches: u32) -> Self {
        self.max_fetches_per_minute = fetches.max(1);
        self
    }
}

/// Identifies a token in a [`TokenCache`]: the API host, the app id and a digest of the
/// permanent code (which names one tenant's authorisation of the app). The permanent code
/// itself is never part of the key; the corp id comes back with the token.
///
/// ```
/// use fxiaoke_sdk::TokenKey;
/// let key = TokenKey::new("open.fxiaoke.com", "FSAID_1000001", "0123456789ABCDEF0123456789ABCDEF");
/// assert!(key.to_string().starts_with("fxiaoke:open.fxiaoke.com:FSAID_1000001:"));
/// assert!(!key.to_string().contains("0123456789ABCDEF0123456789ABCDEF"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    host: String,
    app_id: String,
    permanent_code_digest: String,
}

impl TokenKey {
    /// The key for an API host, an app id and a permanent code.
    pub fn new(host: &str, app_id: &str, permanent_code: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(permanent_code.as_bytes());
        let hex = digest[..16]
            .iter()
            .fold(String::with_capacity(32), |mut s, b| {
                use std::fmt::Write as _;
                let _ = write!(s, "{b:02x}");
                s
            });
        TokenKey {
            host: host.to_ascii_lowercase(),
            app_id: app_id.to_owned(),
            permanent_code_digest: hex,
        }
    }

    /// The API host, e.g. `open.fxiaoke.com`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The app id (`FSAID_…`).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The first 128 bits of the SHA-256 of the permanent code, in hex.
    pub fn permanent_code_digest(&self) -> &str {
        &self.permanent_code_digest
    }
}

impl fmt::Display for TokenKey {
    /// `fxiaoke:<host>:<app id>:<digest>`, usable as a Redis key or file name stem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fxiaoke:{}:{}:{}",
            self.host, self.app_id, self.permanent_code_digest
        )
    }
}

/// The error a [`TokenCache`] may report.
pub type CacheError = Box<dyn std::error::Error + Send + Sync>;

/// Where tokens are kept between calls, and shared between clients and processes.
///
/// The client consults the cache only when its own copy of the token is due for replacement,
/// or was refused: a token another process put there is used as is (if still fresh) instead
/// of fetching. Before fetching, the client takes the cache's refresh lock for the key
/// ([`TokenCache::lock_refresh`]) and reads the cache once more, so that of all the clients
/// sharing the cache one fetches and the others use its token. A cache that fails never fails
/// a call: the error is logged and the client fetches (still one fetch at a time per client,
/// within the fetch budget).
///
/// The default `lock_refresh` serialises the clients of this process that share this cache
/// value. For the vendor's "no concurrent token calls" rule to hold across processes, a shared
/// cache implements it with a lock of its own. A Redis-backed cache, sketched:
///
/// ```no_run
/// use chrono::{DateTime, Utc};
/// use fxiaoke_sdk::{CacheError, CorpToken, RefreshGuard, TokenCache, TokenKey};
///
/// #[derive(Debug)]
/// struct RedisTokens { /* a connection pool */ }
///
/// #[async_trait::async_trait]
/// impl TokenCache for RedisTokens {
///     async fn get(&self, key: &TokenKey) -> Result<Option<CorpToken>, CacheError> {
///         // HGETALL <key> → token, corp_id, issued_at_ms, expires_at_ms
///         # let _ = key;
///         Ok(None)
///     }
///     async fn put(&self, key: &TokenKey, token: &CorpToken) -> Result<(), CacheError> {
///         // HSET <key> token token.expose_token() … ; EXPIREAT <key> token.expires_at()
///         # let _ = (key, token);
///         Ok(())
///     }
///     async fn invalidate(&self, key: &TokenKey) -> Result<(), CacheError> {
///         // DEL <key>
///         # let _ = key;
///         Ok(())
///     }
///     async fn lock_refresh(&self, key: &TokenKey) -> Result<Box<dyn RefreshGuard>, CacheError> {
///         // SET <key>:lock <random> NX PX 120000, tried again every 100 ms until it is ours.
///         // The expiry frees the lock of a process that died holding it; make it longer
///         // than a fetch can take (timeout × attempts, plus up to a minute of fetch budget).
///         # let _ = key;
///         Ok(Box::new(RedisLock { /* the pool, the lock key, the random value */ }))
///     }
/// }
///
/// #[derive(Debug)]
/// struct RedisLock { /* … */ }
///
/// #[async_trait::async_trait]
/// impl RefreshGuard for RedisLock {
///     async fn release(self: Box<Self>) -> Result<(), CacheError> {
///         // DEL <key>:lock if it still holds our random value (one Lua script, atomic).
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait TokenCache: Send + Sync + fmt::Debug {
    /// The token stored under `key`, if any (fresh or not: the client decides).
    async fn get(&self, key: &TokenKey) -> Result<Option<CorpToken>, CacheError>;

    /// Stores `token` under `key`, replacing what was there.
    async fn put(&self, key: &TokenKey, token: &CorpToken) -> Result<(), CacheError>;

    /// Forgets the token under `key` (it was refused by the server).
    async fn invalidate(&self, key: &TokenKey) -> Result<(), CacheError>;

    /// Waits until this caller may fetch the token of `key`, and holds that right until the
    /// guard is released (or dropped). The client takes it after a cache miss, reads the cache
    /// again, and fetches only if it still finds no fresh token; it stores the token with
    /// [`TokenCache::put`] before releasing.
    ///
    /// The default serialises, within this process, the callers that use this same cache
    /// value (clients given one `Arc` through
    /// [`ClientBuilder::token_cache`](crate::ClientBuilder::token_cache)). Override it with a
    /// lock in the shared store (see the Redis sketch above) to serialise processes too. An
    /// error is logged and the client fetches without the lock.
    async fn lock_refresh(&self, key: &TokenKey) -> Result<Box<dyn RefreshGuard>, CacheError> {
        // The cache's address names it among the caches alive in this process; clients that
        // share the cache share the `Arc` and so the address.
        let cache = std::ptr::from_ref(self).cast::<()>().addr();
        Ok(PROCESS_LOCKS.lock((cache, key.clone())).await)
    }
}

/// The right to fetch one key's token, from [`TokenCache::lock_refresh`]. The client calls
/// [`RefreshGuard::release`] after the fetch; an in-process lock is also released when the
/// guard is dropped, but a lock that needs an async call to release (a Redis `DEL`) stays
/// held when the caller's future is cancelled mid-fetch, so give such a lock an expiry.
#[async_trait::async_trait]
pub trait RefreshGuard: Send + Sync + fmt::Debug {
    /// Releases the lock. The default does nothing beyond dropping the guard.
    async fn release(self: Box<Self>) -> Result<(), CacheError> {
        Ok(())
    }
}

/// In-process refresh locks, one per key while anyone holds or waits for it.
struct LocalLocks<K> {
    locks: Mutex<HashMap<K, Weak<tokio::sync::Mutex<()>>>>,
}

impl<K> Default for LocalLocks<K> {
    fn default() -> Self {
        LocalLocks {
            locks: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> LocalLocks<K> {
    async fn lock(&self, key: K) -> Box<dyn RefreshGuard> {
        let lock = {
            // A map of weak handles updated in single statements: consistent even if poisoned.
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            // Entries nobody holds any more would otherwise pile up, one per key ever used.
            locks.retain(|_, lock| lock.strong_count() > 0);
            if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
                lock
            } else {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(key, Arc::downgrade(&lock));
                lock
            }
        };
        Box::new(LocalGuard {
            _held: lock.lock_owned().await,
        })
    }
}

/// The default locks of caches that keep none of their own, by cache address and key.
static PROCESS_LOCKS: LazyLock<LocalLocks<(usize, TokenKey)>> = LazyLock::new(LocalLocks::default);

/// Holds an in-process refresh lock.
struct LocalGuard {
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl fmt::Debug for LocalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalGuard")
    }
}

impl RefreshGuard for LocalGuard {}

/// A [`TokenCache`] in this process's memory. Each client has its own unless you give several
/// clients one (in an `Arc`) with [`ClientBuilder::token_cache`](crate::ClientBuilder::token_cache);
/// those then fetch one token between them.
#[derive(Default)]
pub struct MemoryTokenCache {
    tokens: Mutex<HashMap<TokenKey, CorpToken>>,
}

impl MemoryTokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        MemoryTokenCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, CorpToken>> {
        // Plain data updated in single statements: a poisoned lock is still consistent.
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryTokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenCache")
            .field("tokens", &self.lock().len())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCache for MemoryTokenCache {
    async fn get(&self, key: &TokenKey) -> Result<Option<CorpToken>, CacheError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(&self, key: &TokenKey, token: &CorpToken) -> Result<(), CacheError> {
        self.lock().insert(key.clone(), token.clone());
        Ok(())
    }

    async fn invalidate(&self, key: &TokenKey) -> Result<(), CacheError> {
        self.lock().remove(key);
        Ok(())
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(rename = "corpAccessToken", deserialize_with = "secret")]
    pub(crate) token: SecretString,
    #[serde(rename = "corpId", deserialize_with = "de::text")]
    pub(crate) corp_id: String,
    /// Seconds left, 0–7200.
    #[serde(rename = "expiresIn", default, deserialize_with = "expires_in")]
    pub(crate) expires_in: i64,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    use serde::de::Error as _;
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(D::Error::custom("the token is empty"));
    }
    Ok(SecretString::from(s))
}

fn expires_in<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    // Absent or unreadable: assume the documented full lifetime.
    Ok(de::opt_i64(d)?.unwrap_or(7200))
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("token", &"[redacted]")
            .field("corp_id", &self.corp_id)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The app's credentials. Only the app id is ever shown.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) app_id: String,
    pub(crate) app_secret: SecretString,
    pub(crate) permanent_code: SecretString,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("app_id", &self.app_id)
            .field("app_secret", &"[redacted]")
            .field("permanent_code", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued_s: i64, expires_s: i64) -> CorpToken {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        CorpToken::new(
            "T",
            "C",
            t0 + TimeDelta::seconds(issued_s),
            t0 + TimeDelta::seconds(expires_s),
        )
    }

    fn refresh_s(t: &CorpToken, policy: &TokenPolicy) -> i64 {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        (t.refresh_at(policy) - t0).num_seconds()
    }

    #[test]
    fn refresh_points() {
        let p = TokenPolicy::default();
        // A fresh token: used to the end of the reuse window.
        assert_eq!(refresh_s(&token(0, 7200), &p), 6600);
        // Skew beyond the 600 s tail is pointless (the same token would come back): 6600.
        assert_eq!(
            refresh_s(&token(0, 7200), &p.clone().with_skew_percent(50)),
            6600
        );
        // A larger minimum skew wins over the reuse window.
        assert_eq!(
            refresh_s(
                &token(0, 7200),
                &p.clone().with_min_skew(Duration::from_secs(900))
            ),
            6300
        );
        // An odd, longer lifetime still ends at the reuse window after issue.
        assert_eq!(refresh_s(&token(0, 20_000), &p), 6600);
        // A short-lived token keeps the minimum skew.
        assert_eq!(refresh_s(&token(0, 1000), &p), 700);
    }

    #[test]
    fn received_tokens_infer_their_issue_time() {
        let p = TokenPolicy::default();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let answer = |expires_in| TokenAnswer {
            token: SecretString::from("T".to_owned()),
            corp_id: "FSCID_X".into(),
            expires_in,
        };
        let fresh = CorpToken::received(answer(7200), now, &p);
        assert_eq!(fresh.issued_at(), now);
        assert_eq!((fresh.refresh_at(&p) - now).num_seconds(), 6600);
        // Reused by someone else 6200 s ago: 1000 s left, replace in 400 s.
        let reused = CorpToken::received(answer(1000), now, &p);
        assert_eq!((now - reused.issued_at()).num_seconds(), 6200);
        assert_eq!((reused.refresh_at(&p) - now).num_seconds(), 400);
        // Nonsense values do not panic.
        let _ = CorpToken::received(answer(i64::MAX), now, &p).refresh_at(&p);
        let _ = CorpToken::received(answer(-5), now, &p).refresh_at(&p);
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = Credentials {
            app_id: "FSAID_1".into(),
            app_secret: SecretString::from("s3cr3t-app".to_owned()),
            permanent_code: SecretString::from("perm-code-xyz".to_owned()),
        };
        let shown = format!("{c:?} {:?}", token(0, 1));
        assert!(!shown.contains("s3cr3t-app") && !shown.contains("perm-code-xyz"));
        assert!(shown.contains("FSAID_1"));
    }
}
