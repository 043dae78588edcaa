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
        match &o.report {
            Some(r) => {
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
                    c.unknown,
                    c.actions_done,
                    calls,
                    secs
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "{:<12} {}",
                    o.flow,
                    o.error.as_deref().unwrap_or("did not run")
                );
            }
        }
    }
    for o in outcomes {
        let Some(r) = &o.report else { continue };
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
            let _ = writeln!(out, "  {} {}: {what}", o.flow, f.source_key);
        }
    }
    out
}

/// The outcomes as JSON (`--json`).
pub fn json(outcomes: &[FlowOutcome]) -> String {
    serde_json::to_string_pretty(outcomes).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
