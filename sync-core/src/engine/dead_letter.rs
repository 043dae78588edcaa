//! Rule 7: failures are per record — a record that fails is put on the dead-letter list for
//! the stage it failed at, and re-runs take the list a group at a time (records from the
//! source again, follow-ups from the ID map's targets).

use super::follow_up::UNKNOWN_SEND;
use super::run::Run;
use crate::error::Result;
use crate::report::RecordOutcome;
use crate::state::{Changes, DeadLetter, KeyState, Stage};

/// The letter of a failure of `key` at stage `at`: one more attempt than `prior`, the letter
/// of the same stage it replaces. Retryable, without payload, unless the caller says otherwise.
pub(crate) fn letter(
    key: &str,
    prior: Option<&DeadLetter>,
    at: Stage,
    reason: String,
    now: i64,
) -> DeadLetter {
    DeadLetter {
        source_key: key.to_owned(),
        stage: at,
        reason,
        payload: None,
        attempts: prior.map_or(1, |d| d.attempts.saturating_add(1)),
        retryable: true,
        first_at: prior.map_or(now, |d| d.first_at),
        last_at: now,
    }
}

/// The letter of an action that must not repeat and may have happened: kept for a person,
/// never retried (re-runs of dead letters leave it alone, see [`UNKNOWN_SEND`]).
pub(crate) fn unknown_letter(key: &str, action: &str, reason: &str, now: i64) -> DeadLetter {
    DeadLetter {
        source_key: key.to_owned(),
        stage: Stage::Action(action.to_owned()),
        reason: format!(
            "{UNKNOWN_SEND}`{action}` may have happened ({reason}); it is not sent again: check \
             with the recipient, then drop this letter"
        ),
        payload: None,
        attempts: 1,
        retryable: false,
        first_at: now,
        last_at: now,
    }
}

impl Run<'_> {
    /// Rule 7: puts a record on the dead-letter list for stage `at` (one more attempt if it was
    /// there for that stage; its letters of other stages stay).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dead_letter(
        &mut self,
        key: &str,
        state: &KeyState,
        at: Stage,
        reason: String,
        payload: Option<serde_json::Value>,
        retryable: bool,
        changes: &mut Changes,
    ) {
        let now = self.now();
        let prior = state.dead_letter(&at);
        if state.deferral.is_some() {
            changes.deferrals_clear.push(key.to_owned());
        }
        // Mapping and writing are one problem of the record's data: the latest stands.
        for other in [Stage::Map, Stage::Write] {
            if matches!(at, Stage::Map | Stage::Write)
                && other != at
                && state.dead_letter(&other).is_some()
            {
                changes
                    .dead_letter_stages_clear
                    .push((key.to_owned(), other));
            }
        }
        changes.dead_letters_put.push(DeadLetter {
            payload,
            retryable,
            ..letter(key, prior, at.clone(), reason.clone(), now)
        });
        self.settled(key, RecordOutcome::DeadLettered { stage: at, reason });
    }

    /// Rule 7: re-run dead letters, a page at a time.
    pub(crate) async fn dead_letters(&mut self) -> Result<()> {
        self.engine
            .observer
            .run_started(&self.flow.name, self.report.kind, None);
        self.reconcile_pending().await?;
        self.rerun_letters(|_| true).await
    }

    /// Tries again the dead letters `pick` selects, a group at a time: records from the
    /// source, follow-ups from the ID map's targets.
    pub(crate) async fn rerun_letters(&mut self, pick: impl Fn(&DeadLetter) -> bool) -> Result<()> {
        let group = self.group_size();
        let mut after: Option<String> = None;
        loop {
            let letters = self
                .engine
                .store
                .dead_letters(&self.flow.name, after.as_deref(), group)
                .await?;
            let Some(last) = letters.last() else { break };
            after = Some(last.source_key.clone());
            let (data, follow): (Vec<_>, Vec<_>) = letters
                .into_iter()
                .filter(|d| pick(d))
                .partition(|d| matches!(d.stage, Stage::Map | Stage::Write));
            if !follow.is_empty() {
                self.rerun_follow_ups(follow).await?;
            }
            if data.is_empty() {
                continue;
            }
            let mut keys: Vec<String> = data.iter().map(|d| d.source_key.clone()).collect();
            keys.dedup();
            self.reprocess(&keys, |c| &mut c.dead_letters_clear).await?;
            if self.engine.stopping() {
                self.report.interrupted = true;
                break;
            }
        }
        Ok(())
    }
}
