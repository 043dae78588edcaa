//! The server's clock, as the `Date` header of its answers tells it.
//!
//! A sync reads "what changed since" by the server's modification times, so a machine whose
//! clock is behind or ahead of the server's skips or re-reads records. The offset lets a
//! caller read the server's time instead of trusting its own.

use std::sync::atomic::{AtomicI64, Ordering};

use reqwest::header::{DATE, HeaderMap};

/// No answer with a readable `Date` yet.
const UNSEEN: i64 = i64::MIN;

/// The last offset seen, server minus local, in milliseconds.
///
/// ```
/// use fxk3_kernel::server_clock::ServerClock;
/// let clock = ServerClock::default();
/// assert!(clock.now().is_none(), "no answer seen yet");
/// ```
#[derive(Debug)]
pub struct ServerClock {
    offset_ms: AtomicI64,
}

impl Default for ServerClock {
    fn default() -> Self {
        Self {
            offset_ms: AtomicI64::new(UNSEEN),
        }
    }
}

impl ServerClock {
    /// Keeps the offset of an answer's `Date` from this machine's clock. An answer without
    /// one, or with one that does not parse, changes nothing.
    pub fn observe(&self, headers: &HeaderMap) {
        self.observe_at(headers, chrono::Utc::now().timestamp_millis());
    }

    /// [`ServerClock::observe`] with the local time given (an HTTP date has whole seconds).
    fn observe_at(&self, headers: &HeaderMap, local_ms: i64) {
        let Some(server_ms) = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        else {
            return;
        };
        // The header is truncated to the second: compare it with the local second too, so that
        // equal clocks read 0 and not up to -999 ms.
        let local_ms = local_ms - local_ms.rem_euclid(1000);
        self.offset_ms
            .store(server_ms.saturating_sub(local_ms), Ordering::Relaxed);
    }

    /// Server minus local in milliseconds (to a second), once an answer carried a `Date`.
    fn offset_ms(&self) -> Option<i64> {
        let v = self.offset_ms.load(Ordering::Relaxed);
        (v != UNSEEN).then_some(v)
    }

    /// The server's time now: this machine's clock plus the last offset seen.
    pub fn now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let ms = chrono::Utc::now()
            .timestamp_millis()
            .saturating_add(self.offset_ms()?);
        chrono::DateTime::from_timestamp_millis(ms)
    }
}

/// `Thu, 03 Dec 2026 23:08:40 GMT` (RFC 9110's IMF-fixdate, a form of RFC 2822's) to epoch ms.
fn parse_http_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_date(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(DATE, HeaderValue::from_str(v).unwrap());
        h
    }

    // 2026-12-03T23:08:40Z
    const T: i64 = 1_796_339_320_000;

    #[test]
    fn offset_is_server_minus_local_to_the_second() {
        let c = ServerClock::default();
        assert_eq!(c.offset_ms(), None);
        c.observe_at(&with_date("Thu, 03 Dec 2026 23:08:40 GMT"), T + 999);
        assert_eq!(c.offset_ms(), Some(0));
        c.observe_at(&with_date("Thu, 03 Dec 2026 23:18:40 GMT"), T);
        assert_eq!(c.offset_ms(), Some(600_000));
        c.observe_at(&with_date("Thu, 03 Dec 2026 22:08:40 GMT"), T);
        assert_eq!(c.offset_ms(), Some(-3_600_000));
    }

    #[test]
    fn an_answer_without_a_readable_date_keeps_the_last_offset() {
        let c = ServerClock::default();
        c.observe_at(&HeaderMap::new(), T);
        assert_eq!(c.offset_ms(), None);
        c.observe_at(&with_date("Thu, 03 Dec 2026 23:08:41 GMT"), T);
        c.observe_at(&with_date("yesterday"), T);
        c.observe_at(&HeaderMap::new(), T);
        assert_eq!(c.offset_ms(), Some(1000));
    }
}
