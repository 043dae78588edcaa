//! The sandbox's injectable clock.
//!
//! Every time-dependent rule of both simulators (the `K3Cloud` signature window, session expiry,
//! Fxiaoke token lifetimes, rate-limit windows, the daily quota, `last_modified_time`) reads
//! this clock, so tests control time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock in Unix milliseconds: either the system clock shifted by an offset, or frozen.
///
/// Cheap to clone; clones share one time.
///
/// ```
/// use fxk3_simulators::Clock;
/// use std::time::Duration;
///
/// let clock = Clock::frozen_at_secs(1_700_000_000);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now_secs(), 1_700_000_060);
/// ```
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    frozen: AtomicBool,
    /// When frozen: the time in ms. Otherwise: the offset added to the system time, in ms.
    value_ms: AtomicI64,
}

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        Self {
            inner: Arc::new(ClockInner {
                frozen: AtomicBool::new(false),
                value_ms: AtomicI64::new(0),
            }),
        }
    }

    /// A clock frozen at `epoch_ms`; it only moves through [`Clock::advance`] or [`Clock::set_ms`].
    #[must_use]
    pub fn frozen_at_ms(epoch_ms: i64) -> Self {
        Self {
            inner: Arc::new(ClockInner {
                frozen: AtomicBool::new(true),
                value_ms: AtomicI64::new(epoch_ms),
            }),
        }
    }

    /// A clock frozen at `epoch_secs` (Unix seconds).
    #[must_use]
    pub fn frozen_at_secs(epoch_secs: i64) -> Self {
        Self::frozen_at_ms(epoch_secs.saturating_mul(1000))
    }

    /// Now, in Unix milliseconds.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        let value = self.inner.value_ms.load(Ordering::SeqCst);
        if self.inner.frozen.load(Ordering::SeqCst) {
            value
        } else {
            system_ms().saturating_add(value)
        }
    }

    /// Now, in Unix seconds.
    #[must_use]
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Freezes the clock at `epoch_ms`.
    pub fn set_ms(&self, epoch_ms: i64) {
        self.inner.value_ms.store(epoch_ms, Ordering::SeqCst);
        self.inner.frozen.store(true, Ordering::SeqCst);
    }

    /// Moves the clock forward (frozen or not).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.inner.value_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Lets the clock run with the system time again, keeping the current instant.
    pub fn unfreeze(&self) {
        if self.inner.frozen.load(Ordering::SeqCst) {
            let now = self.now_ms();
            self.inner
                .value_ms
                .store(now - system_ms(), Ordering::SeqCst);
            self.inner.frozen.store(false, Ordering::SeqCst);
        }
    }

    /// Whether the clock is frozen.
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.inner.frozen.load(Ordering::SeqCst)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Formats Unix milliseconds as a `K3Cloud` local date-time in GMT+8 (the time zone of every
/// sample in the reference), with the milliseconds the server keeps and trailing zeros trimmed
/// as the real samples show them: `2019-01-06T15:22:26.763`, `2019-01-06T15:22:26.5`,
/// `2019-01-06T15:22:26`.
pub(crate) fn k3_datetime(epoch_ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(epoch_ms + 8 * 3_600_000);
    let mut text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    let ms = epoch_ms.rem_euclid(1000);
    if ms != 0 {
        let frac = format!(".{ms:03}");
        text.push_str(frac.trim_end_matches('0'));
    }
    text
}

/// The sortable key `yyyyMMddHHmmssfff` (GMT+8) of Unix milliseconds, as [`parse_k3_date`] makes
/// from text: lets a query compare a stored instant with a date literal without formatting it.
/// Milliseconds count: an incremental read whose cursor is `FModifyDate >= '… 10:11:12.345'`
/// must not see a change made earlier in that same second.
pub(crate) fn k3_date_key(epoch_ms: i64) -> i64 {
    let (y, mo, d, h, mi, s) = civil(epoch_ms + 8 * 3_600_000);
    let secs = ((((y * 100 + i64::from(mo)) * 100 + i64::from(d)) * 100 + i64::from(h)) * 100
        + i64::from(mi))
        * 100
        + i64::from(s);
    secs * 1000 + epoch_ms.rem_euclid(1000)
}

/// The GMT+8 day number of `epoch_ms` (Fxiaoke's daily quota resets at 00:00 China time).
pub(crate) fn china_day(epoch_ms: i64) -> i64 {
    (epoch_ms + 8 * 3_600_000).div_euclid(86_400_000)
}

/// Splits Unix ms into a civil date-time (UTC of the shifted instant).
fn civil(epoch_ms: i64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // `rem` is in 0..86400, so the casts cannot truncate.
    let rem = u32::try_from(rem).unwrap_or(0);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a `K3Cloud` date literal (`2024-01-15`, `2024-01-15 10:00:00`, `2024-01-15T10:00:00.123`)
/// into a sortable key `yyyyMMddHHmmssfff` (GMT+8 local, as the server stores it).
pub(crate) fn parse_k3_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut parts = date.split(['-', '/']);
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    // Years beyond 9999 (SQL Server's last) would overflow the key arithmetic below: refused.
    if parts.next().is_some()
        || !(1..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let mut hms = [0i64; 3];
    let mut ms = 0;
    if !time.is_empty() {
        let (clock, frac) = time.split_once('.').unwrap_or((time, ""));
        for (slot, part) in hms.iter_mut().zip(clock.split(':')) {
            *slot = part.parse().ok()?;
        }
        if hms[0] > 23 || hms[1] > 59 || hms[2] > 59 || hms.iter().any(|v| *v < 0) {
            return None;
        }
        if !frac.is_empty() {
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Fractions finer than a millisecond (SQL Server keeps 1/300 s) are cut off.
            let digits = format!("{:0<3}", &frac[..frac.len().min(3)]);
            ms = digits.parse().ok()?;
        }
    }
    let secs = ((((y * 100 + m) * 100 + d) * 100 + hms[0]) * 100 + hms[1]) * 100 + hms[2];
    Some(secs * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_told() {
        let clock = Clock::frozen_at_secs(1_700_000_000);
        assert_eq!(clock.now_ms(), 1_700_000_000_000);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), 1_700_000_001_500);
        clock.set_ms(5);
        assert_eq!(clock.now_ms(), 5);
    }

    #[test]
    fn unfreeze_keeps_the_instant() {
        let clock = Clock::frozen_at_secs(1_000);
        clock.unfreeze();
        assert!(!clock.is_frozen());
        assert!((clock.now_ms() - 1_000_000).abs() < 5_000);
    }

    #[test]
    fn k3_datetime_is_china_local() {
        // 1700000000 = 2023-11-14T22:13:20Z = 2023-11-15T06:13:20+08:00
        assert_eq!(k3_datetime(1_700_000_000_000), "2023-11-15T06:13:20");
        assert_eq!(k3_date_key(1_700_000_000_000), 20_231_115_061_320_000);
        assert_eq!(k3_datetime(1_700_000_000_763), "2023-11-15T06:13:20.763");
        assert_eq!(k3_datetime(1_700_000_000_500), "2023-11-15T06:13:20.5");
        assert_eq!(k3_date_key(1_700_000_000_763), 20_231_115_061_320_763);
        assert_eq!(
            parse_k3_date(&k3_datetime(1_700_000_000_050)),
            Some(k3_date_key(1_700_000_000_050))
        );
    }

    #[test]
    fn huge_years_and_times_are_refused_without_overflow() {
        assert_eq!(parse_k3_date("9999999999-01-01"), None);
        assert_eq!(parse_k3_date("99999999999999999999-01-01"), None);
        assert_eq!(parse_k3_date("2024-01-01 99999999999999:00:00"), None);
        assert_eq!(parse_k3_date("0-01-01"), None);
        assert_eq!(
            parse_k3_date("9999-12-31 23:59:59"),
            Some(99_991_231_235_959_000)
        );
    }

    #[test]
    fn parses_k3_dates() {
        assert_eq!(parse_k3_date("2024-01-15"), Some(20_240_115_000_000_000));
        assert_eq!(
            parse_k3_date("2024-01-15 10:11:12"),
            Some(20_240_115_101_112_000)
        );
        assert_eq!(
            parse_k3_date("2024-01-15T10:11:12.763"),
            Some(20_240_115_101_112_763)
        );
        assert_eq!(
            parse_k3_date("2024-01-15 10:11:12.5"),
            Some(20_240_115_101_112_500)
        );
        assert_eq!(
            parse_k3_date("2024-01-15 10:11:12.7639"),
            Some(20_240_115_101_112_763)
        );
        assert_eq!(parse_k3_date("2024-01-15 10:11:12.x"), None);
        assert_eq!(parse_k3_date("MAT%"), None);
        assert_eq!(parse_k3_date("2024-13-01"), None);
    }
}
