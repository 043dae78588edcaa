//! Rule 9: write-back of the target's number to the source, and post-save actions
//! (Submit, Audit), each with per-record outcomes.

use super::report::{Failure, RecordOutcome};
use super::run::Run;
use crate::error::Result;
use crate::sink::{ActionOutcome, TargetRef};
use crate::source::{WriteBackItem, WriteBackOutcome};
use crate::state::{Changes, DeadLetter, KeyState, PendingSend, Stage};
use std::collections::HashSet;

/// A record that was written (or found by reconciliation) and may need follow-ups.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) source_key: String,
    pub(crate) target: TargetRef,
    pub(crate) created: bool,
    /// Its dead letters before this write, for the attempt counts of its follow-up stages.
    pub(crate) prior: Vec<DeadLetter>,
}

impl Run<'_> {
    /// Runs the write-back (creates only) and the actions (creates, and updates when asked).
    /// Failures become dead letters of their stage; they never undo the write.
    pub(crate) async fn follow_ups(
        &mut self,
        written: Vec<Written>,
        changes: &mut Changes,
    ) -> Result<()> {
        if written.is_empty() {
            return Ok(());
        }
        if self.flow.write_back.is_some() {
            let created: Vec<&Written> = written.iter().filter(|w| w.created).collect();
            self.write_back(&created, changes).await;
        }
        let on_update = self.flow.options.actions_on_update;
        let eligible: Vec<&Written> = written.iter().filter(|w| w.created || on_update).collect();
        self.actions(0, &eligible, changes).await?;
        Ok(())
    }

    /// Writes back; returns the keys that succeeded.
    async fn write_back(&mut self, items: &[&Written], changes: &mut Changes) -> HashSet<String> {
        let mut done = HashSet::new();
        let Some(wb) = self.flow.write_back.clone() else {
            return done;
        };
        if items.is_empty() {
            return done;
        }
        let request: Vec<WriteBackItem> = items
            .iter()
            .map(|w| WriteBackItem {
                source_key: w.source_key.clone(),
                target: w.target.clone(),
            })
            .collect();
        let outcomes = match wb.write_back(&request).await {
            Ok(mut o) => {
                o.resize(
                    items.len(),
                    WriteBackOutcome::Failed {
                        reason: "no outcome returned".into(),
                    },
                );
                o
            }
            Err(e) => vec![
                WriteBackOutcome::Failed {
                    reason: e.to_string()
                };
                items.len()
            ],
        };
        for (w, outcome) in items.iter().zip(outcomes) {
            match outcome {
                WriteBackOutcome::Done => {
                    self.report.counts.written_back += 1;
                    done.insert(w.source_key.clone());
                }
                WriteBackOutcome::Failed { reason } => {
                    self.follow_up_failed(w, Stage::WriteBack, reason, changes);
                }
            }
        }
        done
    }

    /// Runs `flow.options.actions[from..]` in order; a target that fails one action is not
    /// given the next. Returns the keys that passed them all.
    ///
    /// Before an action that is not [repeatable](crate::Sink::action_repeatable) the changes
    /// so far are committed: a crash while it is in flight then finds the record settled and
    /// does not send it again (at most once), where a repeatable action is sent again by the
    /// reconciliation (at least once).
    async fn actions(
        &mut self,
        from: usize,
        items: &[&Written],
        changes: &mut Changes,
    ) -> Result<HashSet<String>> {
        let actions: Vec<String> = self
            .flow
            .options
            .actions
            .iter()
            .skip(from)
            .cloned()
            .collect();
        let mut alive: Vec<&Written> = items.to_vec();
        for action in actions {
            if alive.is_empty() {
                break;
            }
            let repeatable = self.flow.sink.action_repeatable(&action);
            if !repeatable {
                // At most once, and never silently: the write is committed and each send is on
                // record before anything goes out; a process that dies while sending leaves
                // the record, which the next run reports as unknown (`report_interrupted_sends`).
                let now = self.now();
                changes.sends_put = alive
                    .iter()
                    .map(|w| PendingSend {
                        source_key: w.source_key.clone(),
                        action: action.clone(),
                        target: w.target.clone(),
                        started_at: now,
                    })
                    .collect();
                self.apply(changes).await?;
                *changes = Changes::default();
                changes.sends_clear = alive
                    .iter()
                    .map(|w| (w.source_key.clone(), action.clone()))
                    .collect();
            }
            let targets: Vec<TargetRef> = alive.iter().map(|w| w.target.clone()).collect();
            let outcomes = match self.flow.sink.action(&action, &targets).await {
                Ok(mut o) => {
                    o.resize(
                        targets.len(),
                        ActionOutcome::Unknown {
                            reason: "no outcome returned".into(),
                        },
                    );
                    o
                }
                Err(e) if e.kind() == crate::ConnectorErrorKind::OutcomeUnknown => vec![
                    ActionOutcome::Unknown {
                        reason: e.to_string()
                    };
                    targets.len()
                ],
                Err(e) => vec![
                    ActionOutcome::Failed {
                        reason: e.to_string()
                    };
                    targets.len()
                ],
            };
            let mut next = Vec::with_capacity(alive.len());
            for (w, outcome) in alive.into_iter().zip(outcomes) {
                let reason = match outcome {
                    ActionOutcome::Done => {
                        self.report.counts.actions_done += 1;
                        next.push(w);
                        continue;
                    }
                    ActionOutcome::Unknown { reason } if !repeatable => {
                        self.action_unknown(&w.source_key, &action, &reason);
                        continue;
                    }
                    ActionOutcome::Unknown { reason } => format!("outcome unknown: {reason}"),
                    ActionOutcome::Failed { reason } => reason,
                };
                self.follow_up_failed(w, Stage::Action(action.clone()), reason, changes);
            }
            alive = next;
        }
        Ok(alive.into_iter().map(|w| w.source_key.clone()).collect())
    }

    /// A failed follow-up is a dead letter of its stage with the target as its payload; a
    /// retry repeats the follow-up, not the write.
    fn follow_up_failed(&mut self, w: &Written, at: Stage, reason: String, changes: &mut Changes) {
        let state = KeyState {
            dead_letters: w.prior.clone(),
            ..KeyState::default()
        };
        let payload = serde_json::to_value(&w.target).ok();
        self.dead_letter(&w.source_key, &state, at, reason, payload, false, changes);
    }

    /// An action that is not sent again may or may not have happened: reported, not
    /// dead-lettered (a retry would repeat it).
    fn action_unknown(&mut self, key: &str, action: &str, reason: &str) {
        self.report.counts.actions_unknown += 1;
        let reason = format!(
            "`{action}` may have happened ({reason}); it is not sent again, check the target"
        );
        tracing::warn!(flow = %self.flow.name, key, %reason, "action outcome unknown");
        if self.report.failures.len() < self.flow.options.report_limit {
            self.report.failures.push(Failure {
                source_key: key.to_owned(),
                outcome: RecordOutcome::Unknown { reason },
            });
        }
    }

    /// Reports the sends a dead process left on record: each may or may not have gone out, so
    /// it is counted as unknown and taken off the record — not sent again.
    pub(crate) async fn report_interrupted_sends(&mut self) -> Result<()> {
        let sends = self.engine.store.sends(&self.flow.name).await?;
        if sends.is_empty() {
            return Ok(());
        }
        let mut changes = Changes::default();
        for s in sends {
            self.action_unknown(
                &s.source_key,
                &s.action,
                "the process stopped while it was being sent",
            );
            changes.sends_clear.push((s.source_key, s.action));
        }
        self.apply(&changes).await
    }

    /// Re-runs dead letters of the write-back and action stages from the ID map's targets.
    pub(crate) async fn rerun_follow_ups(&mut self, letters: Vec<DeadLetter>) -> Result<()> {
        let keys: Vec<String> = letters.iter().map(|d| d.source_key.clone()).collect();
        let ids = self
            .engine
            .store
            .id_map_get_many(&self.flow.name, &keys)
            .await?;
        let mut changes = Changes::default();
        for letter in letters {
            let Some(entry) = ids.get(&letter.source_key) else {
                continue;
            };
            let w = Written {
                source_key: letter.source_key.clone(),
                target: entry.target.clone(),
                created: true,
                prior: vec![letter.clone()],
            };
            let ok = match &letter.stage {
                Stage::WriteBack => self
                    .write_back(&[&w], &mut changes)
                    .await
                    .contains(&w.source_key),
                Stage::Action(a) => match self.flow.options.actions.iter().position(|x| x == a) {
                    Some(i) => {
                        if !self.flow.sink.action_repeatable(a) {
                            // At most once: off the list before it is sent again, so that a
                            // crash in flight cannot send it a third time.
                            changes
                                .dead_letter_stages_clear
                                .push((letter.source_key.clone(), letter.stage.clone()));
                        }
                        self.actions(i, &[&w], &mut changes)
                            .await?
                            .contains(&w.source_key)
                    }
                    // The action was removed from the flow: nothing is left to do.
                    None => true,
                },
                Stage::Map | Stage::Write => false,
            };
            if ok {
                changes
                    .dead_letter_stages_clear
                    .push((letter.source_key, letter.stage));
            }
        }
        self.apply(&changes).await
    }
}
