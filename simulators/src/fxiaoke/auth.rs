//! Tokens (fxiaoke.md §2) and the gateway's limits and quotas (§9).
//!
//! Token rules, all on the sandbox clock: a token lives `token_ttl` (7,200 s); a fetch within
//! `token_reuse` (6,600 s) of the current token's issue returns that token with `expiresIn` =
//! its remaining seconds; a later fetch issues a new token while the old one stays valid until
//! its own end. The token endpoint allows `token_calls_per_minute` (10) calls per minute and
//! app; concurrent calls are served one after the other and get the same token.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::envelope::FxError;
use crate::clock::china_day;
use crate::config::FxiaokeConfig;
use crate::rng::SplitMix64;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    /// Index of the app in the configuration.
    pub(crate) app: usize,
    issued_ms: i64,
    expires_ms: i64,
}

/// Limits that tests can change while the sandbox runs.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) rate_limit: Option<(usize, Duration)>,
    pub(crate) daily_quota: Option<u64>,
    pub(crate) openapi_purchased: bool,
}

impl Limits {
    pub(crate) fn from_config(c: &FxiaokeConfig) -> Self {
        Self {
            rate_limit: c.rate_limit,
            daily_quota: c.daily_quota,
            openapi_purchased: c.openapi_purchased,
        }
    }
}

#[derive(Debug)]
pub(crate) struct AuthState {
    tokens: HashMap<String, Token>,
    /// The token a fetch may reuse, per app.
    current: HashMap<usize, String>,
    /// Times of recent token-endpoint calls, per app.
    token_calls: HashMap<usize, VecDeque<i64>>,
    /// Times of recent accepted calls, per path.
    path_calls: HashMap<String, VecDeque<i64>>,
    /// (GMT+8 day, calls that day).
    day: (i64, u64),
    /// Calls refused by the per-path rate limit (not by an injected fault).
    pub(crate) rate_limited: u64,
    pub(crate) limits: Limits,
    rng: SplitMix64,
    /// Every token issued (the first [`ISSUED_KEPT`]), for tests that look for them in output.
    pub(crate) issued: Vec<String>,
}

/// How many issued tokens (and `K3Cloud` session ids) a simulator remembers for tests.
pub(crate) const ISSUED_KEPT: usize = 100_000;

impl AuthState {
    pub(crate) fn new(config: &FxiaokeConfig, seed: u64) -> Self {
        Self {
            tokens: HashMap::new(),
            current: HashMap::new(),
            token_calls: HashMap::new(),
            path_calls: HashMap::new(),
            day: (0, 0),
            rate_limited: 0,
            limits: Limits::from_config(config),
            rng: SplitMix64::new(seed ^ 0xF8_1A0C),
            issued: Vec::new(),
        }
    }

    /// A token fetch for `app` (already authenticated by its secret): `(token, expiresIn)`.
    pub(crate) fn issue(
        &mut self,
        app: usize,
        config: &FxiaokeConfig,
        now_ms: i64,
    ) -> Result<(String, i64), FxError> {
        let calls = self.token_calls.entry(app).or_default();
        while calls.front().is_some_and(|t| *t <= now_ms - 60_000) {
            calls.pop_front();
        }
        if calls.len() >= config.token_calls_per_minute {
            // Which code the gateway uses here is not documented; the per-interface one.
            return Err(FxError::rate_limited(config.rate_limit_code));
        }
        calls.push_back(now_ms);
        if let Some(value) = self.current.get(&app)
            && let Some(token) = self.tokens.get(value)
            && now_ms - token.issued_ms < ms(config.token_reuse)
            && now_ms < token.expires_ms
        {
            return Ok((value.clone(), remaining_secs(token, now_ms)));
        }
        self.tokens.retain(|_, t| t.expires_ms > now_ms);
        let value = self.rng.hex(32).to_ascii_uppercase();
        let token = Token {
            app,
            issued_ms: now_ms,
            expires_ms: now_ms.saturating_add(ms(config.token_ttl)),
        };
        let expires_in = remaining_secs(&token, now_ms);
        self.tokens.insert(value.clone(), token);
        self.current.insert(app, value.clone());
        if self.issued.len() < ISSUED_KEPT {
            self.issued.push(value.clone());
        }
        Ok((value, expires_in))
    }

    /// The live token, if `value` is one.
    pub(crate) fn check(&self, value: &str, now_ms: i64) -> Option<&Token> {
        self.tokens.get(value).filter(|t| now_ms < t.expires_ms)
    }

    /// Makes `value` a token of `app`, issued now (and the one fetches reuse).
    pub(crate) fn pin(&mut self, value: &str, app: usize, config: &FxiaokeConfig, now_ms: i64) {
        self.tokens.insert(
            value.to_string(),
            Token {
                app,
                issued_ms: now_ms,
                expires_ms: now_ms.saturating_add(ms(config.token_ttl)),
            },
        );
        self.current.insert(app, value.to_string());
    }

    /// Every token stops working (clients get 20016 and must fetch a new one).
    pub(crate) fn invalidate(&mut self) {
        self.tokens.clear();
        self.current.clear();
    }

    /// The quota and the per-path rate limit of one authenticated call; counts it if allowed.
    pub(crate) fn admit(&mut self, path: &str, code: i64, now_ms: i64) -> Result<(), FxError> {
        if !self.limits.openapi_purchased {
            return Err(FxError::no_quota());
        }
        let today = china_day(now_ms);
        if self.day.0 != today {
            self.day = (today, 0);
        }
        if let Some(quota) = self.limits.daily_quota
            && self.day.1 >= quota
        {
            return Err(FxError::daily_quota());
        }
        if let Some((calls, window)) = self.limits.rate_limit {
            let times = self.path_calls.entry(path.to_string()).or_default();
            let since = now_ms - ms(window);
            while times.front().is_some_and(|t| *t <= since) {
                times.pop_front();
            }
            if times.len() >= calls {
                self.rate_limited += 1;
                return Err(FxError::rate_limited(code));
            }
            times.push_back(now_ms);
        }
        self.day.1 += 1;
        Ok(())
    }
}

/// Seconds left, rounded down, never negative.
fn remaining_secs(token: &Token, now_ms: i64) -> i64 {
    (token.expires_ms - now_ms).max(0) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn reuse_window_then_overlap() {
        let config = FxiaokeConfig::default();
        let mut auth = AuthState::new(&config, 1);
        let (a, exp) = auth.issue(0, &config, T0).unwrap();
        assert_eq!(exp, 7200);
        let (same, exp) = auth.issue(0, &config, T0 + 6_599_000).unwrap();
        assert_eq!((same.as_str(), exp), (a.as_str(), 601));
        let (b, exp) = auth.issue(0, &config, T0 + 6_600_000).unwrap();
        assert_ne!(a, b);
        assert_eq!(exp, 7200);
        // Both work until the old one's end.
        assert!(auth.check(&a, T0 + 7_199_999).is_some());
        assert!(auth.check(&b, T0 + 7_199_999).is_some());
        assert!(auth.check(&a, T0 + 7_200_000).is_none());
        assert!(auth.check(&b, T0 + 7_200_000).is_some());
    }

    #[test]
    fn ten_token_calls_a_minute() {
        let config = FxiaokeConfig::default();
        let mut auth = AuthState::new(&config, 1);
        for i in 0..10 {
            auth.issue(0, &config, T0 + i).unwrap();
        }
        assert_eq!(auth.issue(0, &config, T0 + 59_000).unwrap_err().code, 30004);
        assert!(auth.issue(0, &config, T0 + 60_000).is_ok());
    }

    #[test]
    fn rate_limit_and_daily_quota() {
        let config = FxiaokeConfig {
            rate_limit: Some((2, Duration::from_secs(20))),
            daily_quota: Some(3),
            ..FxiaokeConfig::default()
        };
        let mut auth = AuthState::new(&config, 1);
        assert!(auth.admit("/a", 30004, T0).is_ok());
        assert!(auth.admit("/a", 30004, T0 + 1).is_ok());
        assert_eq!(auth.admit("/a", 30004, T0 + 2).unwrap_err().code, 30004);
        assert_eq!(auth.rate_limited, 1);
        assert!(auth.admit("/b", 30004, T0 + 3).is_ok());
        assert_eq!(auth.admit("/c", 30004, T0 + 4).unwrap_err().code, 30002);
        // The next GMT+8 day.
        assert!(auth.admit("/c", 30004, T0 + 86_400_000).is_ok());
        auth.limits.openapi_purchased = false;
        assert_eq!(
            auth.admit("/c", 30004, T0 + 86_400_001).unwrap_err().code,
            30003
        );
    }
}
