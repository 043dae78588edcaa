//! Sweeping the ID map: what no incremental run can see — records deleted in the source, and
//! changes a run missed.

use super::dead_letter::letter;
use super::run::Run;
use crate::error::Result;
use crate::report::RecordOutcome;
use crate::sink::WriteOutcome;
use crate::state::{Changes, IdMapEntry, Stage};

impl Run<'_> {
    /// Reads every record of the ID map again, a group at a time: the ones the source still has
    /// are processed like changed records (unchanged ones send nothing), the ones it no longer
    /// has go to the sink's [`source_gone`](crate::Sink::source_gone).
    pub(crate) async fn sweep(&mut self) -> Result<()> {
        self.engine
            .observer
            .run_started(&self.flow.name, self.report.kind, None);
        self.reconcile_pending().await?;
        let group = self.group_size();
        let mut after: Option<String> = None;
        loop {
            let entries = self
                .engine
                .store
                .id_map_page(&self.flow.name, after.as_deref(), group)
                .await?;
            let Some(last) = entries.last() else { break };
            after = Some(last.source_key.clone());
            let keys: Vec<String> = entries.iter().map(|e| e.source_key.clone()).collect();
            let records = self
                .retrying("get_many", || self.flow.source.get_many(&keys))
                .await
                .map_err(|e| self.source_error(e))?;
            let gone: Vec<IdMapEntry> = entries
                .into_iter()
                .filter(|e| !records.iter().any(|r| r.key == e.source_key))
                .collect();
            self.gone(gone).await?;
            self.process(records, None).await?;
            if self.engine.stopping() {
                self.report.interrupted = true;
                break;
            }
        }
        Ok(())
    }

    /// Hands the targets of records gone from the source to the sink and settles each.
    async fn gone(&mut self, entries: Vec<IdMapEntry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let targets: Vec<_> = entries.iter().map(|e| e.target.clone()).collect();
        let outcomes = self
            .flow
            .sink
            .source_gone(&targets)
            .await
            .map_err(|e| self.sink_error(e))?;
        let keys: Vec<String> = entries.iter().map(|e| e.source_key.clone()).collect();
        let states = self.engine.store.lookup(&self.flow.name, &keys).await?;
        let mut changes = Changes::default();
        let now = self.now();
        for ((entry, outcome), state) in entries.into_iter().zip(outcomes).zip(states) {
            let key = entry.source_key;
            let outcome = match outcome {
                WriteOutcome::Removed(t) => {
                    changes.id_map_remove.push(key.clone());
                    RecordOutcome::Removed(t)
                }
                WriteOutcome::Created(t) | WriteOutcome::Updated(t) => RecordOutcome::Updated(t),
                WriteOutcome::Unchanged(_) | WriteOutcome::Skipped { .. } => {
                    RecordOutcome::Unchanged
                }
                // Left in the ID map: the next sweep tries again. A dead letter says why; a
                // re-run of it finds the record gone and clears it.
                WriteOutcome::Failed { reason, .. } | WriteOutcome::Unknown { reason } => {
                    let reason = format!("gone from the source: {reason}");
                    let prior = state.dead_letter(&Stage::Write);
                    changes.dead_letters_put.push(letter(
                        &key,
                        prior,
                        Stage::Write,
                        reason.clone(),
                        now,
                    ));
                    RecordOutcome::DeadLettered {
                        stage: Stage::Write,
                        reason,
                    }
                }
            };
            self.settled(&key, outcome);
        }
        self.apply(&changes).await
    }
}
