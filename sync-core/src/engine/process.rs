//! Mapping, skipping, intents, writing and settling a group of records (rules 2, 3, 5, 7, 8, 10).

use super::follow_up::Written;
use super::run::Run;
use crate::error::{ConnectorErrorKind, Result};
use crate::hash::payload_hash;
use crate::mapping::{LookupBy, LookupKey, Lookups, MapError};
use crate::record::Record;
use crate::report::{PlannedWrite, RecordOutcome};
use crate::sink::{WriteItem, WriteOutcome};
use crate::state::{Changes, Cursor, IdMapEntry, Intent, IntentOp, KeyState, Stage};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::time::Instant;

/// A record that will be written.
struct Pending {
    item: WriteItem,
    hash: String,
    state: KeyState,
    /// What the source record holds in the write-back field.
    holds: Option<String>,
}

impl Run<'_> {
    /// Resolves every ID-map lookup of a group with one store call per referenced flow.
    pub(crate) async fn resolve_lookups(&self, records: &[Record]) -> Result<Lookups> {
        let mut by_flow: BTreeMap<(String, LookupBy), Vec<String>> = BTreeMap::new();
        for r in records {
            for LookupKey { flow, key, by } in self.flow.mapping.lookups(r) {
                by_flow.entry((flow, by)).or_default().push(key);
            }
        }
        let mut lookups = Lookups::new();
        for ((flow, by), mut keys) in by_flow {
            keys.sort_unstable();
            keys.dedup();
            match by {
                LookupBy::SourceKey => {
                    for (_, entry) in self.engine.store.id_map_get_many(&flow, &keys).await? {
                        lookups.insert(flow.clone(), entry);
                    }
                }
                LookupBy::TargetNumber => {
                    for (_, entry) in self
                        .engine
                        .store
                        .id_map_by_target_numbers(&flow, &keys)
                        .await?
                    {
                        lookups.insert_by_number(flow.clone(), entry);
                    }
                }
            }
        }
        Ok(lookups)
    }

    /// Clears what a successful outcome resolves: a deferral, and the dead letters of the
    /// mapping and writing stages (follow-up dead letters wait for their own re-run).
    pub(crate) fn clear_resolved(state: &KeyState, key: &str, changes: &mut Changes) {
        if state.deferral.is_some() {
            changes.deferrals_clear.push(key.to_owned());
        }
        for stage in [Stage::Map, Stage::Write] {
            if state.dead_letter(&stage).is_some() {
                changes
                    .dead_letter_stages_clear
                    .push((key.to_owned(), stage));
            }
        }
    }

    /// Processes a group of at most `batch_size * concurrency` records and settles all of them
    /// in one transaction, together with `cursor` (rule 5).
    pub(crate) async fn process(
        &mut self,
        records: Vec<Record>,
        cursor: Option<Cursor>,
    ) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.report.counts.read += records.len() as u64;
        let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
        let states = self.engine.store.lookup(&self.flow.name, &keys).await?;
        let lookups = self.resolve_lookups(&records).await?;
        let mut changes = Changes::default();
        let mut written: Vec<Written> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();

        for (record, mut state) in records.into_iter().zip(states) {
            if let Some(intent) = state.intent.take() {
                if self.may_be_running(&intent) {
                    // The earlier write may still be running: a lookup could miss it and a
                    // second write duplicate it. Its intent stays; a later run reconciles it.
                    self.settled(
                        &record.key,
                        RecordOutcome::Unknown {
                            reason: "an earlier write of this record may still be running; \
                                     it is reconciled after the quiet period"
                                .into(),
                        },
                    );
                    continue;
                }
                // Rule 4: an earlier write of this record may have happened; find out before
                // anything is sent again.
                if let Some(entry) = self
                    .reconcile(intent, &mut changes, Some(&mut written))
                    .await?
                {
                    state.id_map = Some(entry);
                }
            }
            match self.flow.mapping.map(&record, &lookups) {
                Err(MapError::MissingReference { flow, key }) => {
                    self.defer(&record, &state, flow, key, &mut changes);
                }
                Err(e) => {
                    let reason = e.to_string();
                    self.dead_letter(
                        &record.key,
                        &state,
                        Stage::Map,
                        reason,
                        Some(record.body),
                        false,
                        &mut changes,
                    );
                }
                Ok(mapped) => {
                    let hash = payload_hash(&mapped.payload);
                    let known = state.id_map.as_ref();
                    // Rule 2: the same mapped payload as last written is not written again.
                    if known.and_then(|e| e.payload_hash.as_deref()) == Some(hash.as_str()) {
                        Self::clear_resolved(&state, &record.key, &mut changes);
                        self.settled(&record.key, RecordOutcome::Unchanged);
                        continue;
                    }
                    let holds = self
                        .flow
                        .write_back
                        .as_ref()
                        .and_then(|wb| wb.written_back(&record));
                    let item = WriteItem {
                        source_key: record.key,
                        natural_key: mapped.natural_key,
                        payload: mapped.payload,
                        target: known.map(|e| e.target.clone()),
                    };
                    pending.push(Pending {
                        item,
                        hash,
                        state,
                        holds,
                    });
                }
            }
        }

        if self.dry() {
            for p in pending {
                self.engine.observer.planned_write(&self.flow.name, &p.item);
                if self.report.planned.len() < self.flow.options.report_limit {
                    self.report.planned.push(PlannedWrite {
                        source_key: p.item.source_key,
                        natural_key: p.item.natural_key,
                        target: p.item.target,
                        payload: p.item.payload,
                    });
                }
            }
            return Ok(());
        }

        let mut stop = None;
        if !pending.is_empty() {
            // Rule 3: intents are on record before anything is sent.
            let now = self.now();
            changes.intents_put = pending
                .iter()
                .map(|p| Intent {
                    source_key: p.item.source_key.clone(),
                    natural_key: p.item.natural_key.clone(),
                    op: if p.item.target.is_some() {
                        IntentOp::Update
                    } else {
                        IntentOp::Create
                    },
                    target: p.item.target.clone(),
                    payload_hash: p.hash.clone(),
                    created_at: now,
                })
                .collect();
            self.apply(&changes).await?;
            changes = Changes::default();
            self.renew_lease().await?;
            stop = self
                .write(pending, cursor.is_some(), &mut changes, &mut written)
                .await;
        }
        if !written.is_empty() {
            self.renew_lease().await?;
        }
        self.follow_ups(written, &mut changes).await?;
        if stop.is_none() {
            changes.cursor = cursor;
        }
        self.apply(&changes).await?;
        match stop {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Rule 8: sends the pending writes in batches, up to `concurrency` at once, and settles
    /// each outcome into `changes`. Returns the error that must stop the run, if any.
    /// `from_window` says whether the records were read from the window, where the cursor
    /// brings them back after a failure.
    async fn write(
        &mut self,
        pending: Vec<Pending>,
        from_window: bool,
        changes: &mut Changes,
        written: &mut Vec<Written>,
    ) -> Option<crate::Error> {
        let batch_size = self.flow.options.batch_size;
        let items: Vec<WriteItem> = pending.iter().map(|p| p.item.clone()).collect();
        let sink = &self.flow.sink;
        let started = Instant::now();
        // A batch refused before it was sent (nothing written) is sent again after a pause.
        let results = join_all(
            items
                .chunks(batch_size)
                .map(|batch| self.retrying("write", || sink.write(batch))),
        )
        .await;
        let elapsed = started.elapsed();
        let mut stop = None;
        let mut pending = pending.into_iter();
        for (batch, result) in items.chunks(batch_size).zip(results) {
            self.report.counts.batches += 1;
            self.engine
                .observer
                .batch_written(&self.flow.name, batch.len(), elapsed);
            let outcomes: Vec<WriteOutcome> = match result {
                Ok(mut o) => {
                    if o.len() != batch.len() {
                        // A sink that loses track of items cannot say what happened to them.
                        let reason = format!(
                            "sink returned {} outcomes for {} items",
                            o.len(),
                            batch.len()
                        );
                        o.truncate(batch.len());
                        o.resize(batch.len(), WriteOutcome::Unknown { reason });
                    }
                    o
                }
                Err(e) if e.kind() == ConnectorErrorKind::OutcomeUnknown => {
                    vec![
                        WriteOutcome::Unknown {
                            reason: e.to_string()
                        };
                        batch.len()
                    ]
                }
                Err(e) => {
                    // Nothing was sent: withdraw the intents. Records of the window are read
                    // again next run because the cursor does not move past them; the others (a
                    // reconciled intent, a deferral, a dead letter) have nothing to bring them
                    // back but a dead letter that later runs retry.
                    let reason = e.to_string();
                    for p in pending.by_ref().take(batch.len()) {
                        changes.intents_clear.push(p.item.source_key.clone());
                        if !from_window {
                            self.dead_letter(
                                &p.item.source_key,
                                &p.state,
                                Stage::Write,
                                reason.clone(),
                                Some(p.item.payload),
                                true,
                                changes,
                            );
                        }
                    }
                    stop.get_or_insert(self.sink_error(e));
                    continue;
                }
            };
            for (p, outcome) in pending.by_ref().take(batch.len()).zip(outcomes) {
                if let Some(e) = self.number_replaced(&p.item, &outcome) {
                    stop.get_or_insert(e);
                }
                self.settle_write(p, outcome, changes, written);
            }
        }
        stop
    }

    /// A create whose document got another number than the natural key it was sent with: the
    /// form's coding rule replaced it, so no document of this flow can be found again by its
    /// number, and a lost answer would end in a duplicate. The document is kept in the ID map;
    /// the flow stops until the mapping names a key the ERP keeps.
    fn number_replaced(&self, item: &WriteItem, outcome: &WriteOutcome) -> Option<crate::Error> {
        let WriteOutcome::Created(t) = outcome else {
            return None;
        };
        let number = t.number.as_deref()?;
        if !self.flow.sink.natural_key_is_number() || number == item.natural_key {
            return None;
        }
        Some(crate::Error::Config(format!(
            "flow `{}`: the document created for natural key `{}` got the number `{number}`: \
             the target form numbers documents itself, so they cannot be found again by the \
             key sent; turn its coding rule off for documents sent with a number, or map the \
             natural key to a field the ERP keeps (a custom field holding the CRM id)",
            self.flow.name, item.natural_key
        )))
    }

    fn settle_write(
        &mut self,
        p: Pending,
        outcome: WriteOutcome,
        changes: &mut Changes,
        written: &mut Vec<Written>,
    ) {
        let key = p.item.source_key;
        // A success that names no document cannot be told apart from a failure: stored as
        // target "", the next change of the record would create a second document.
        let outcome = match outcome {
            WriteOutcome::Created(t) | WriteOutcome::Updated(t) | WriteOutcome::Unchanged(t)
                if t.id.trim().is_empty() =>
            {
                WriteOutcome::Unknown {
                    reason: "the server reported success but named no document id".into(),
                }
            }
            other => other,
        };
        let (target, created, outcome) = match outcome {
            WriteOutcome::Created(t) => (t.clone(), true, RecordOutcome::Created(t)),
            WriteOutcome::Updated(t) => (t.clone(), false, RecordOutcome::Updated(t)),
            WriteOutcome::Unchanged(t) => (t, false, RecordOutcome::Unchanged),
            WriteOutcome::Failed { reason, retryable } => {
                changes.intents_clear.push(key.clone());
                self.dead_letter(
                    &key,
                    &p.state,
                    Stage::Write,
                    reason,
                    Some(p.item.payload),
                    retryable,
                    changes,
                );
                return;
            }
            WriteOutcome::Unknown { reason } => {
                // The intent stays: it is the record of this write, reconciled later (rule 4).
                self.settled(&key, RecordOutcome::Unknown { reason });
                return;
            }
            // Nothing was sent: no intent to keep, no target to remember.
            WriteOutcome::Skipped { reason } => {
                changes.intents_clear.push(key.clone());
                Self::clear_resolved(&p.state, &key, changes);
                self.settled(&key, RecordOutcome::Skipped { reason });
                return;
            }
            // The target is gone: a record that comes back is created again.
            WriteOutcome::Removed(t) => {
                changes.id_map_remove.push(key.clone());
                changes.intents_clear.push(key.clone());
                Self::clear_resolved(&p.state, &key, changes);
                self.settled(&key, RecordOutcome::Removed(t));
                return;
            }
        };
        // Rule 3: the ID-map entry and the cleared intent go in one transaction.
        changes.id_map.push(IdMapEntry {
            source_key: key.clone(),
            target: target.clone(),
            payload_hash: Some(p.hash),
            updated_at: self.now(),
        });
        changes.intents_clear.push(key.clone());
        Self::clear_resolved(&p.state, &key, changes);
        let follow = matches!(
            outcome,
            RecordOutcome::Created(_) | RecordOutcome::Updated(_)
        );
        self.settled(&key, outcome);
        if follow {
            written.push(Written {
                source_key: key,
                target,
                created,
                prior: p.state.dead_letters,
                holds: p.holds,
            });
        }
    }
}
