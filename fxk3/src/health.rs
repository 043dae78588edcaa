//! What the state file says about each flow — cursor, what waits, what failed — and the
//! problems an operator must hear about. One reading serves `status`, the web page, the
//! metrics and the alerts, so that they never disagree.

use std::time::Duration;

use serde::Serialize;
use sync_core::Counts;
use sync_core::StateStore;
use sync_core::state::{DeadLetter, RunKind, RunRecord, WRITE_BACK};

/// The most dead letters (and queued write-backs) read per flow; counts above it are shown as
/// this many.
pub const LETTERS_READ: usize = 10_000;

/// One flow as the state file has it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FlowHealth {
    /// The flow.
    pub flow: String,
    /// The committed read position, epoch ms.
    pub cursor: Option<i64>,
    /// Writes whose outcome is not settled: between runs, writes of unknown outcome that the
    /// next run reconciles before sending anything.
    pub pending_writes: usize,
    /// Numbers waiting to be written back to the source.
    pub pending_write_backs: u64,
    /// Messages queued or being sent.
    pub pending_messages: usize,
    /// When the oldest write-back or message still waiting was queued, epoch ms.
    pub oldest_follow_up_at: Option<i64>,
    /// Records on the dead-letter list (follow-ups of unknown outcome included).
    pub dead_letters: usize,
    /// Of those, follow-ups that may have happened (for a person to check, never resent).
    pub unknown_outcomes: usize,
    /// Records waiting for a record of another flow.
    pub deferred: usize,
    /// The latest runs, newest first.
    pub last_runs: Vec<RunSummary>,
    /// Why the flow's latest run stopped, when it failed. Retries of dead letters are not
    /// counted: their success says nothing of the next run's, and their failures are dead
    /// letters.
    pub failed: Option<String>,
    /// The dead letters (at most [`LETTERS_READ`]), as the store lists them.
    #[serde(skip)]
    pub letters: Vec<DeadLetter>,
}

/// One run of the history.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RunSummary {
    /// `Incremental`, `DeadLetters`, `Rebuild`, `Sweep`.
    pub kind: String,
    /// Start, epoch ms.
    pub started_at: i64,
    /// End, epoch ms.
    pub finished_at: i64,
    /// Per-outcome counts.
    pub counts: Counts,
    /// Why it stopped, when it failed.
    pub error: Option<String>,
}

impl From<RunRecord> for RunSummary {
    fn from(r: RunRecord) -> Self {
        RunSummary {
            kind: format!("{:?}", r.kind),
            started_at: r.started_at,
            finished_at: r.finished_at,
            counts: r.counts,
            error: r.error,
        }
    }
}

impl FlowHealth {
    /// Reads one flow's state.
    pub async fn read(store: &dyn StateStore, flow: &str) -> sync_core::Result<Self> {
        let sends = store.sends(flow).await?;
        // Listed by key, not by age: the oldest is looked for among the first ones.
        let write_backs = store.queued(flow, WRITE_BACK, LETTERS_READ).await?;
        let letters = store.dead_letters(flow, None, LETTERS_READ).await?;
        let runs = store.runs(flow, 50).await?;
        Ok(FlowHealth {
            flow: flow.to_owned(),
            cursor: store.cursor(flow).await?.map(|c| c.version),
            pending_writes: store.intents(flow).await?.len(),
            pending_write_backs: store.queued_count(flow, WRITE_BACK).await?,
            pending_messages: sends.len(),
            oldest_follow_up_at: sends.iter().chain(&write_backs).map(|s| s.queued_at).min(),
            dead_letters: letters.len(),
            unknown_outcomes: letters.iter().filter(|l| l.is_unknown_outcome()).count(),
            deferred: store.deferrals(flow, None, LETTERS_READ).await?.len(),
            last_runs: runs.iter().take(5).cloned().map(RunSummary::from).collect(),
            failed: runs
                .into_iter()
                .find(|r| r.kind != RunKind::DeadLetters)
                .and_then(|r| r.error),
            letters,
        })
    }

    /// The problems of this flow at `now` (epoch ms): a follow-up is stalled once it has
    /// waited `stall_after`.
    pub fn problems(&self, now: i64, stall_after: Duration) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut add = |kind, count: usize, detail: String| {
            out.push(Problem {
                kind,
                flow: self.flow.clone(),
                count: u64::try_from(count).unwrap_or(u64::MAX),
                detail,
            });
        };
        if let Some(error) = &self.failed {
            add(ProblemKind::FlowFailed, 1, error.clone());
        }
        let failed: Vec<&DeadLetter> = self
            .letters
            .iter()
            .filter(|l| !l.is_unknown_outcome())
            .collect();
        if let Some(first) = failed.first() {
            add(
                ProblemKind::DeadLetters,
                failed.len(),
                format!("{}: {}", first.source_key, first.reason),
            );
        }
        let unknown = self.unknown_outcomes + self.pending_writes;
        if unknown > 0 {
            let detail = self
                .letters
                .iter()
                .find(|l| l.is_unknown_outcome())
                .map(|l| format!("{}: {}", l.source_key, l.reason))
                .unwrap_or_default();
            add(ProblemKind::UnknownOutcomes, unknown, detail);
        }
        let stall_ms = i64::try_from(stall_after.as_millis()).unwrap_or(i64::MAX);
        if let Some(oldest) = self.oldest_follow_up_at
            && now.saturating_sub(oldest) >= stall_ms
        {
            add(
                ProblemKind::FollowUpsStalled,
                self.pending_messages
                    + usize::try_from(self.pending_write_backs).unwrap_or(usize::MAX),
                format!(
                    "{} messages and {} write-backs waiting",
                    self.pending_messages, self.pending_write_backs
                ),
            );
        }
        out
    }
}

/// Reads every flow named.
pub async fn read_all(
    store: &dyn StateStore,
    flows: &[&str],
) -> sync_core::Result<Vec<FlowHealth>> {
    let mut out = Vec::with_capacity(flows.len());
    for flow in flows {
        out.push(FlowHealth::read(store, flow).await?);
    }
    Ok(out)
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The flow's last run stopped with an error.
    FlowFailed,
    /// Records are on the dead-letter list.
    DeadLetters,
    /// Writes or messages may or may not have happened.
    UnknownOutcomes,
    /// Write-backs or messages have waited too long.
    FollowUpsStalled,
}

impl ProblemKind {
    /// The name used in alert keys, JSON and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::FlowFailed => "flow_failed",
            ProblemKind::DeadLetters => "dead_letters",
            ProblemKind::UnknownOutcomes => "unknown_outcomes",
            ProblemKind::FollowUpsStalled => "follow_ups_stalled",
        }
    }
}

/// One problem of one flow: what an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// What went wrong.
    pub kind: ProblemKind,
    /// The flow.
    pub flow: String,
    /// How many records (1 for a failed run).
    pub count: u64,
    /// The first reason (a run's error, the first dead letter's key and reason).
    pub detail: String,
}

impl Problem {
    /// The same problem keeps its key while it lasts, whatever its count: one alert for it.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::state::Stage;

    fn letter(key: &str, reason: &str, retryable: bool) -> DeadLetter {
        DeadLetter {
            source_key: key.into(),
            stage: Stage::Write,
            reason: reason.into(),
            payload: None,
            attempts: 1,
            retryable,
            first_at: 0,
            last_at: 0,
        }
    }

    fn flow() -> FlowHealth {
        FlowHealth {
            flow: "orders".into(),
            cursor: None,
            pending_writes: 0,
            pending_write_backs: 0,
            pending_messages: 0,
            oldest_follow_up_at: None,
            dead_letters: 0,
            unknown_outcomes: 0,
            deferred: 0,
            last_runs: Vec::new(),
            failed: None,
            letters: Vec::new(),
        }
    }

    fn kinds(h: &FlowHealth, now: i64) -> Vec<(ProblemKind, u64, String)> {
        h.problems(now, Duration::from_secs(60))
            .into_iter()
            .map(|p| (p.kind, p.count, p.detail))
            .collect()
    }

    #[test]
    fn problems_are_read_from_the_flows_state() {
        assert!(kinds(&flow(), 0).is_empty(), "a quiet flow has none");

        let unknown = format!("{}`notify` may have happened", DeadLetter::UNKNOWN_OUTCOME);
        let mut h = flow();
        h.letters = vec![
            letter("SO-1", "客户不存在", false),
            letter("SO-2", &unknown, false),
            letter("SO-3", "库存不足", true),
        ];
        h.unknown_outcomes = 1;
        h.pending_writes = 2;
        h.failed = Some("K3Cloud unreachable".into());
        h.pending_messages = 1;
        h.pending_write_backs = 2;
        h.oldest_follow_up_at = Some(1_000);
        assert_eq!(
            kinds(&h, 60_999),
            vec![
                (ProblemKind::FlowFailed, 1, "K3Cloud unreachable".into()),
                (ProblemKind::DeadLetters, 2, "SO-1: 客户不存在".into()),
                (ProblemKind::UnknownOutcomes, 3, format!("SO-2: {unknown}")),
            ],
            "a follow-up queued 59.999 s ago is not stalled yet"
        );
        assert_eq!(
            kinds(&h, 61_000)[3],
            (
                ProblemKind::FollowUpsStalled,
                3,
                "1 messages and 2 write-backs waiting".into()
            )
        );
    }
}
