//! Rule 6: records whose references are not in the ID map yet wait, bounded, then fail.

use super::run::Run;
use crate::error::Result;
use crate::record::Record;
use crate::report::RecordOutcome;
use crate::state::{Changes, Deferral, KeyState, Stage};

impl Run<'_> {
    /// Defers a record (or dead-letters it once it has waited `max_defer_attempts` runs).
    /// Attempts count runs, not reads: a record seen twice in one run is one attempt.
    pub(crate) fn defer(
        &mut self,
        record: &Record,
        state: &KeyState,
        missing_flow: String,
        missing_key: String,
        changes: &mut Changes,
    ) {
        let now = self.now();
        let prior = state.deferral.as_ref();
        let attempts = match prior {
            Some(d) if d.last_at >= self.started_at => d.attempts,
            Some(d) => d.attempts.saturating_add(1),
            None => 1,
        };
        if attempts > self.flow.options.max_defer_attempts {
            let reason = format!(
                "reference `{missing_key}` is still not in the ID map of flow `{missing_flow}` \
                 after {} runs",
                attempts - 1
            );
            self.dead_letter(
                &record.key,
                state,
                Stage::Map,
                reason,
                Some(record.body.clone()),
                // A person should look: retried by `rerun_dead_letters`, not by itself.
                false,
                changes,
            );
            return;
        }
        changes.deferrals_put.push(Deferral {
            source_key: record.key.clone(),
            missing_flow: missing_flow.clone(),
            missing_key: missing_key.clone(),
            attempts,
            first_at: prior.map_or(now, |d| d.first_at),
            last_at: now,
        });
        self.settled(
            &record.key,
            RecordOutcome::Deferred {
                missing_flow,
                missing_key,
                attempts,
            },
        );
    }

    /// Tries the flow's deferred records again, fetching each from the source by key.
    pub(crate) async fn retry_deferred(&mut self) -> Result<()> {
        let group = self.group_size();
        let mut after: Option<String> = None;
        loop {
            let waiting = self
                .engine
                .store
                .deferrals(&self.flow.name, after.as_deref(), group)
                .await?;
            let Some(last) = waiting.last() else { break };
            after = Some(last.source_key.clone());
            let keys: Vec<String> = waiting.into_iter().map(|d| d.source_key).collect();
            self.reprocess(&keys, |c| &mut c.deferrals_clear).await?;
            if self.engine.stopping() {
                self.report.interrupted = true;
                break;
            }
        }
        Ok(())
    }
}
