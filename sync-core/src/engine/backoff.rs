//! When to try again after a transient failure: within a run (a call), and across runs (a
//! retryable dead letter). Pure functions, table-tested.

use crate::state::DeadLetter;
use std::time::Duration;

/// The delay before retry `retry` (1-based) of a call that failed transiently and changed
/// nothing, or `None` when the flow's `transient_retries` are used up: 1 s, 4 s, 16 s, then
/// 60 s for each further retry.
pub(crate) fn call_delay(retry: u32, max_retries: u32) -> Option<Duration> {
    if retry == 0 || retry > max_retries {
        return None;
    }
    let secs = 4u64.saturating_pow(retry - 1).min(60);
    Some(Duration::from_secs(secs))
}

/// How long after its latest failure a retryable dead letter is due again: `first_ms` (1
/// minute by default) after the first failure, doubling with each further one, at most 60
/// times `first_ms` (1 hour).
pub(crate) fn dead_letter_delay_ms(attempts: u32, first_ms: i64) -> i64 {
    let first = first_ms.max(0);
    let doublings = attempts.saturating_sub(1).min(6);
    first
        .saturating_mul(1 << doublings)
        .min(first.saturating_mul(60))
}

/// Whether an incremental run at `now_ms` tries a dead letter again by itself: only failures
/// that looked transient, once their delay has passed. The others wait for a person.
pub(crate) fn dead_letter_due(letter: &DeadLetter, now_ms: i64, first_ms: i64) -> bool {
    letter.retryable
        && now_ms
            >= letter
                .last_at
                .saturating_add(dead_letter_delay_ms(letter.attempts, first_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Stage;

    #[test]
    fn call_delays() {
        let table: &[(u32, u32, Option<u64>)] = &[
            (0, 3, None),
            (1, 3, Some(1)),
            (2, 3, Some(4)),
            (3, 3, Some(16)),
            (4, 3, None),
            (4, 6, Some(60)),
            (6, 6, Some(60)),
            (1, 0, None),
            (u32::MAX, u32::MAX, Some(60)),
        ];
        for &(retry, max, secs) in table {
            assert_eq!(
                call_delay(retry, max),
                secs.map(Duration::from_secs),
                "retry {retry} of {max}"
            );
        }
    }

    #[test]
    fn dead_letter_delays_double_up_to_an_hour() {
        let table: &[(u32, i64)] = &[
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (5, 16),
            (6, 32),
            (7, 60),
            (u32::MAX, 60),
        ];
        for &(attempts, minutes) in table {
            assert_eq!(
                dead_letter_delay_ms(attempts, 60_000),
                minutes * 60_000,
                "{attempts}"
            );
            assert_eq!(dead_letter_delay_ms(attempts, 1_000), minutes * 1_000);
        }
    }

    #[test]
    fn only_retryable_letters_past_their_delay_are_due() {
        let letter = |retryable, attempts| DeadLetter {
            source_key: "k".into(),
            stage: Stage::Write,
            reason: "HTTP 502".into(),
            payload: None,
            attempts,
            retryable,
            first_at: 0,
            last_at: 1_000_000,
        };
        let table: &[(bool, u32, i64, bool)] = &[
            (true, 1, 1_000_000 + 59_999, false),
            (true, 1, 1_000_000 + 60_000, true),
            (true, 3, 1_000_000 + 239_999, false),
            (true, 3, 1_000_000 + 240_000, true),
            (false, 1, i64::MAX, false),
            (true, 1, i64::MIN, false),
        ];
        for &(retryable, attempts, now, due) in table {
            assert_eq!(
                dead_letter_due(&letter(retryable, attempts), now, 60_000),
                due,
                "{retryable} {attempts} {now}"
            );
        }
    }
}
