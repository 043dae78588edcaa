//! Run reports for people (a table) and for programs (JSON).

use std::fmt::Write as _;

use sync_core::RecordOutcome;

use crate::app::FlowOutcome;

/// A table of flow outcomes, then the first failures of each flow with their reasons.
pub fn table(outcomes: &[FlowOutcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>6} {:>8} {:>8} {:>10} {:>9} {:>6} {:>8} {:>8} {:>6} {:>9}",
        "flow",
        "read",
        "created",
        "updated",
        "unchanged",
        "deferred",
        "dead",
        "unknown",
        "actions",
        "calls",
        "time"
    );
    for o in outcomes {
        let calls = o
            .api_calls
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        let secs = format!("{}.{}s", o.duration_ms / 1000, o.duration_ms % 1000 / 100);
        if let Some(r) = &o.report {
            let c = &r.counts;
            let _ = writeln!(
                out,
                "{:<12} {:>6} {:>8} {:>8} {:>10} {:>9} {:>6} {:>8} {:>8} {:>6} {:>9}",
                o.flow,
                c.read,
                c.created,
                c.updated,
                c.unchanged,
                c.deferred,
                c.dead_lettered,
                c.unknown + c.actions_unknown,
                c.actions_done,
                calls,
                secs
            );
        } else {
            let _ = writeln!(
                out,
                "{:<12} {}",
                o.flow,
                o.error.as_deref().unwrap_or("did not run")
            );
            if let Some(hint) = &o.hint {
                let _ = writeln!(out, "{:<12} → {hint}", "");
            }
        }
    }
    for o in outcomes {
        let Some(r) = &o.report else { continue };
        if !r.failures.is_empty() {
            let _ = writeln!(out, "{}:", o.flow);
        }
        for f in &r.failures {
            let what = match &f.outcome {
                RecordOutcome::DeadLettered { reason, .. } => format!("dead letter: {reason}"),
                RecordOutcome::Deferred {
                    missing_flow,
                    missing_key,
                    ..
                } => {
                    format!("waits for `{missing_key}` in flow `{missing_flow}`")
                }
                RecordOutcome::Unknown { reason } => format!("outcome unknown: {reason}"),
                other => format!("{other:?}"),
            };
            let _ = writeln!(out, "  {}: {what}", f.source_key);
        }
        let c = &r.counts;
        if r.write_backs_pending > 0 {
            let _ = writeln!(
                out,
                "  → {} write-backs are still queued (the run stopped before they were sent): the \
                 next run sends them",
                r.write_backs_pending
            );
        }
        if r.sends_pending > 0 {
            let _ = writeln!(
                out,
                "  → {} messages are still queued or were being sent when the run stopped: the \
                 next run sends the queued ones and reports the others as unknown",
                r.sends_pending
            );
        }
        if c.dead_lettered > 0 {
            let _ = writeln!(
                out,
                "  → fix the cause (a dictionary in the mapping, or the record in its system), \
                 then `fxk3 dead-letters retry {}`",
                o.flow
            );
        }
        if c.deferred > 0 {
            let _ = writeln!(
                out,
                "  → deferred records are tried again by every run until what they wait for has \
                 synced (then dead-lettered with the reason)"
            );
        }
        if c.unknown > 0 {
            let _ = writeln!(
                out,
                "  → the next run looks each unknown write up in the target before sending it again"
            );
        }
        if c.actions_unknown > 0 {
            let _ = writeln!(
                out,
                "  → a message whose answer was lost may have arrived: it is never sent twice, \
                 check with the recipient"
            );
        }
    }
    out
}

/// Epoch milliseconds as a time in `zone`, with its offset (`2024-05-18 08:30:00+08:00`).
pub fn local_time(ms: i64, zone: chrono::FixedOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| {
            t.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M:%S%:z")
                .to_string()
        },
    )
}

/// The outcomes as JSON (`--json`).
pub fn json(outcomes: &[FlowOutcome]) -> String {
    serde_json::to_string_pretty(outcomes).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use sync_core::state::{RunKind, Stage};
    use sync_core::{Counts, Failure, RunReport};

    fn report(counts: Counts, failures: Vec<Failure>) -> FlowOutcome {
        let report = RunReport {
            flow: "customers".into(),
            kind: RunKind::Incremental,
            window: None,
            cursor_before: None,
            cursor_after: None,
            counts,
            failures,
            planned: Vec::new(),
            started_at: 0,
            writes_done_at: 1000,
            finished_at: 1200,
            write_backs_pending: 0,
            sends_pending: 0,
            interrupted: false,
            clock_skew_ms: None,
        };
        FlowOutcome::new("customers", report, Duration::from_millis(1234))
    }

    #[test]
    fn a_clean_run_is_one_line_under_the_header() {
        let counts = Counts {
            read: 3,
            created: 2,
            unchanged: 1,
            ..Counts::default()
        };
        let text = table(&[report(counts, Vec::new())]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("flow "));
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "customers",
                "3",
                "2",
                "0",
                "1",
                "0",
                "0",
                "0",
                "0",
                "-",
                "1.2s"
            ]
        );
    }

    #[test]
    fn failures_are_listed_by_record_with_what_to_do() {
        let counts = Counts {
            read: 2,
            dead_lettered: 1,
            deferred: 1,
            ..Counts::default()
        };
        let failures = vec![
            Failure {
                source_key: "6650a1".into(),
                outcome: RecordOutcome::DeadLettered {
                    stage: Stage::Map,
                    reason: "customer_type: no value for `other`".into(),
                },
            },
            Failure {
                source_key: "7781b2".into(),
                outcome: RecordOutcome::Deferred {
                    missing_flow: "customers".into(),
                    missing_key: "6650a1".into(),
                    attempts: 1,
                },
            },
        ];
        let text = table(&[report(counts, failures)]);
        let tail: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            tail,
            [
                "customers:",
                "  6650a1: dead letter: customer_type: no value for `other`",
                "  7781b2: waits for `6650a1` in flow `customers`",
                "  → fix the cause (a dictionary in the mapping, or the record in its system), then `fxk3 dead-letters retry customers`",
                "  → deferred records are tried again by every run until what they wait for has synced (then dead-lettered with the reason)",
            ]
        );
    }
}
