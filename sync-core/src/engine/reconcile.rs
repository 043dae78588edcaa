//! Rule 4: a write whose outcome is unknown is reconciled by natural key before it is ever
//! sent again.

use super::follow_up::Written;
use super::run::Run;
use crate::error::Result;
use crate::report::RecordOutcome;
use crate::sink::TargetRef;
use crate::state::{Changes, IdMapEntry, Intent, IntentOp};

impl Run<'_> {
    /// Settles one pending intent into `changes`. For a create, the sink is asked for the
    /// target by natural key: found, the ID map is repaired (and the follow-ups run, since
    /// they may not have); not found, the intent is withdrawn and the record may be sent
    /// again. An update is withdrawn and the stored payload hash forgotten: the target may
    /// hold either payload now, so the record's next mapping is sent whatever it is — even
    /// one equal to the hash from before the update, after the CRM value was changed back.
    /// Sending an update again is harmless. A failed lookup stops the run: without an answer,
    /// sending again could duplicate the document.
    ///
    /// `written` is `None` for a record gone from the source: its ID map is repaired (so that
    /// it is not created again should it come back) but it is not reported as reconciled and
    /// gets no follow-ups — there is no source record to write a number back into.
    pub(crate) async fn reconcile(
        &mut self,
        intent: Intent,
        changes: &mut Changes,
        written: Option<&mut Vec<Written>>,
    ) -> Result<Option<IdMapEntry>> {
        changes.intents_clear.push(intent.source_key.clone());
        if intent.op == IntentOp::Update {
            let Some(target) = intent.target else {
                return Ok(None);
            };
            let entry = IdMapEntry {
                source_key: intent.source_key,
                target,
                payload_hash: None,
                updated_at: self.now(),
            };
            changes.id_map.push(entry.clone());
            return Ok(Some(entry));
        }
        if !self.flow.sink.write_repeatable() {
            return Ok(Some(self.unknown_for_good(
                intent,
                changes,
                written.is_some(),
            )));
        }
        let found = self
            .retrying("find", || self.flow.sink.find(&intent.natural_key))
            .await
            .map_err(|e| self.sink_error(e))?;
        let Some(target) = found else { return Ok(None) };
        let entry = IdMapEntry {
            source_key: intent.source_key.clone(),
            target: target.clone(),
            payload_hash: Some(intent.payload_hash),
            updated_at: self.now(),
        };
        changes.id_map.push(entry.clone());
        let Some(written) = written else {
            return Ok(Some(entry));
        };
        self.settled(
            &intent.source_key,
            RecordOutcome::Reconciled(target.clone()),
        );
        written.push(Written {
            source_key: intent.source_key,
            target,
            created: true,
            prior: Vec::new(),
            holds: None,
        });
        Ok(Some(entry))
    }

    /// Settles the intent of a write that cannot be looked up (a message): reported as
    /// unknown, and recorded as written so that it is never sent again (at most once).
    fn unknown_for_good(
        &mut self,
        intent: Intent,
        changes: &mut Changes,
        report: bool,
    ) -> IdMapEntry {
        let entry = IdMapEntry {
            source_key: intent.source_key.clone(),
            target: TargetRef::new(intent.natural_key, None),
            payload_hash: Some(intent.payload_hash),
            updated_at: self.now(),
        };
        changes.id_map.push(entry.clone());
        if report {
            self.settled(
                &intent.source_key,
                RecordOutcome::Unknown {
                    reason: "it may have been sent before the answer was lost or the process \
                             stopped; it cannot be looked up and is not sent again"
                        .into(),
                },
            );
        }
        entry
    }

    /// Whether the write an intent stands for may still be running on the server: it is
    /// younger than the quiet period. Such an intent is neither looked up nor sent again.
    pub(crate) fn may_be_running(&self, intent: &Intent) -> bool {
        self.now().saturating_sub(intent.created_at) < self.flow.options.quiet_period_ms
    }

    /// Reconciles every pending intent of the flow (left by a crash or an unknown outcome)
    /// that is older than the quiet period, then processes those records again from the
    /// source.
    pub(crate) async fn reconcile_pending(&mut self) -> Result<()> {
        let (waiting, intents): (Vec<Intent>, Vec<Intent>) = self
            .engine
            .store
            .intents(&self.flow.name)
            .await?
            .into_iter()
            .partition(|i| self.may_be_running(i));
        self.report.counts.waiting += waiting.len() as u64;
        let group = self.flow.options.batch_size.max(1);
        for chunk in intents.chunks(group) {
            let keys: Vec<String> = chunk.iter().map(|i| i.source_key.clone()).collect();
            let records = self
                .retrying("get_many", || self.flow.source.get_many(&keys))
                .await
                .map_err(|e| self.source_error(e))?;
            // Records gone from the source still need their intent settled.
            let mut changes = Changes::default();
            for intent in chunk
                .iter()
                .filter(|i| !records.iter().any(|r| r.key == i.source_key))
            {
                let key = intent.source_key.clone();
                self.reconcile(intent.clone(), &mut changes, None).await?;
                self.settled(&key, RecordOutcome::Gone);
            }
            self.apply(&changes).await?;
            // The others are reconciled inside `process`, which sees their intent.
            self.process(records, None).await?;
        }
        Ok(())
    }
}
