//! What a run did: per-record outcomes, counts, and the run report.

use crate::sink::TargetRef;
use crate::source::Window;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// How one record ended in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordOutcome {
    /// A target was created.
    Created(TargetRef),
    /// The target was updated.
    Updated(TargetRef),
    /// The mapped payload equals the one last written (or the sink found nothing to change).
    Unchanged,
    /// The sink had nothing to write for it (see [`WriteOutcome::Skipped`](crate::WriteOutcome::Skipped)).
    Skipped {
        /// Why.
        reason: String,
    },
    /// The target was deleted (see [`WriteOutcome::Removed`](crate::WriteOutcome::Removed)).
    Removed(TargetRef),
    /// A reference is not in the ID map yet; tried again on later runs.
    Deferred {
        /// The flow whose ID map lacks it.
        missing_flow: String,
        /// The missing key.
        missing_key: String,
        /// Runs tried so far.
        attempts: u32,
    },
    /// The record failed and is on the dead-letter list.
    DeadLettered {
        /// Where it failed.
        stage: Stage,
        /// The reason.
        reason: String,
    },
    /// The write's outcome is unknown; its intent stays on record and is reconciled by
    /// natural key before anything is sent again.
    Unknown {
        /// Why.
        reason: String,
    },
    /// A pending intent was reconciled: the target was found by natural key.
    Reconciled(TargetRef),
    /// The record no longer exists in the source (dead-letter and deferral re-runs).
    Gone,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Records read from the source (window, deferred, dead letters).
    pub read: u64,
    /// Targets created.
    pub created: u64,
    /// Targets updated.
    pub updated: u64,
    /// Records skipped because nothing changed.
    pub unchanged: u64,
    /// Records the sink had nothing to write for (an invalidated account never sent).
    pub skipped: u64,
    /// Targets deleted because their source record was cancelled.
    pub removed: u64,
    /// Records deferred.
    pub deferred: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
    /// Writes whose outcome is unknown.
    pub unknown: u64,
    /// Pending intents reconciled to an existing target.
    pub reconciled: u64,
    /// Pending intents left alone because their write may still be running on the server
    /// (younger than the flow's quiet period); reconciled by a later run.
    pub waiting: u64,
    /// Records that no longer exist in the source.
    pub gone: u64,
    /// Successful write-backs.
    pub written_back: u64,
    /// Write-backs queued by this run's creates, drained alongside its writes (or by the runs
    /// after it).
    pub write_backs_queued: u64,
    /// Write-backs not needed: the source record already held the value.
    pub write_backs_skipped: u64,
    /// Successful post-save actions (one per action and target).
    pub actions_done: u64,
    /// Sends of the flow's last action that must not repeat (its messages) queued by this run,
    /// sent by the drain alongside its writes (or by the runs after it).
    pub sends_queued: u64,
    /// Actions that may or may not have happened and are not sent again (at most once: a
    /// message whose answer was lost, or that a crash interrupted).
    pub actions_unknown: u64,
    /// ID-map entries restored by a rebuild.
    pub rebuilt: u64,
    /// Write batches sent.
    pub batches: u64,
}

/// A record that ended badly, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The source key.
    pub source_key: String,
    /// The outcome.
    pub outcome: RecordOutcome,
}

/// A write a dry run would have sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedWrite {
    /// The source key.
    pub source_key: String,
    /// The natural key.
    pub natural_key: String,
    /// The target being updated, or `None` for a create.
    pub target: Option<TargetRef>,
    /// The payload.
    pub payload: Value,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The flow.
    pub flow: String,
    /// The kind of run.
    pub kind: RunKind,
    /// The window read (incremental and dry runs).
    pub window: Option<Window>,
    /// The cursor before the run.
    pub cursor_before: Option<i64>,
    /// The cursor after the run.
    pub cursor_after: Option<i64>,
    /// Counts per outcome.
    pub counts: Counts,
    /// The first failures (dead letters, deferrals, unknown outcomes), up to the flow's
    /// `report_limit`.
    pub failures: Vec<Failure>,
    /// For dry runs: the first payloads that would have been sent, up to `report_limit`.
    pub planned: Vec<PlannedWrite>,
    /// Start, epoch ms.
    pub started_at: i64,
    /// When the run's writes were done, epoch ms: every record read had reached the sink (or
    /// settled otherwise). The write-back queue drained until `finished_at`.
    pub writes_done_at: i64,
    /// End, epoch ms.
    pub finished_at: i64,
    /// Write-backs still queued when the run ended (a stopped run, a source that failed):
    /// the next run drains them.
    pub write_backs_pending: u64,
    /// Sends of actions that must not repeat (messages) still on record when the run ended:
    /// the next run sends the queued ones and reports those that were being sent as unknown.
    pub sends_pending: u64,
    /// The run stopped early on the engine's stop signal, after settling the records in flight.
    pub interrupted: bool,
    /// The source server's clock minus this machine's, ms (to the second), when the source
    /// tells its time; the window was measured with the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<i64>,
}

impl RunReport {
    pub(crate) fn new(flow: &str, kind: RunKind, started_at: i64) -> Self {
        Self {
            flow: flow.to_owned(),
            kind,
            window: None,
            cursor_before: None,
            cursor_after: None,
            counts: Counts::default(),
            failures: Vec::new(),
            planned: Vec::new(),
            started_at,
            writes_done_at: started_at,
            finished_at: started_at,
            write_backs_pending: 0,
            sends_pending: 0,
            interrupted: false,
            clock_skew_ms: None,
        }
    }

    /// Whether every record read ended written, unchanged or reconciled.
    pub fn is_clean(&self) -> bool {
        self.counts.deferred == 0 && self.counts.dead_lettered == 0 && self.counts.unknown == 0
    }
}

/// The step a dead letter failed at. Written as text (`map`, `write`, `write_back`,
/// `action:Audit`), in reports and JSON alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Stage {
    /// Mapping the record (bad value, missing required field, unresolved reference too long).
    Map,
    /// Writing it to the sink.
    Write,
    /// Writing the target's number back to the source.
    WriteBack,
    /// A post-save action (`Submit`, `Audit`).
    Action(String),
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Map => f.write_str("map"),
            Stage::Write => f.write_str("write"),
            Stage::WriteBack => f.write_str("write_back"),
            Stage::Action(a) => write!(f, "action:{a}"),
        }
    }
}

#[cfg(test)]
mod stage_tests {
    use super::Stage;

    #[test]
    fn stages_are_text_in_json() {
        for (stage, text) in [
            (Stage::Map, "map"),
            (Stage::Write, "write"),
            (Stage::WriteBack, "write_back"),
            (Stage::Action("Audit".into()), "action:Audit"),
        ] {
            let json = serde_json::to_value(&stage).unwrap();
            assert_eq!(json, serde_json::json!(text));
            assert_eq!(serde_json::from_value::<Stage>(json).unwrap(), stage);
        }
    }
}

impl From<Stage> for String {
    fn from(stage: Stage) -> String {
        stage.to_string()
    }
}

impl From<String> for Stage {
    fn from(text: String) -> Stage {
        Stage::parse(&text)
    }
}

impl Stage {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "map" => Stage::Map,
            "write_back" => Stage::WriteBack,
            _ => match s.strip_prefix("action:") {
                Some(a) => Stage::Action(a.to_owned()),
                None => Stage::Write,
            },
        }
    }
}

/// What kind of run a report, or an entry of the run history, describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunKind {
    /// An incremental run over a window.
    Incremental,
    /// A re-run of dead letters.
    DeadLetters,
    /// A dry run (not recorded by the engine, listed for completeness).
    DryRun,
    /// An ID-map rebuild.
    Rebuild,
    /// A sweep of the ID map: every record read again, the ones gone from the source handed to
    /// the sink.
    Sweep,
}

impl RunKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunKind::Incremental => "incremental",
            RunKind::DeadLetters => "dead_letters",
            RunKind::DryRun => "dry_run",
            RunKind::Rebuild => "rebuild",
            RunKind::Sweep => "sweep",
        }
    }
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "dead_letters" => RunKind::DeadLetters,
            "dry_run" => RunKind::DryRun,
            "rebuild" => RunKind::Rebuild,
            "sweep" => RunKind::Sweep,
            _ => RunKind::Incremental,
        }
    }
}
