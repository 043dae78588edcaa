//! Rule 9: write-back of the target's number to the source, and post-save actions
//! (Submit, Audit), each with per-record outcomes.

use super::dead_letter::unknown_letter;
use super::drain::drained_action;
use super::run::Run;
use crate::error::Result;
use crate::report::{Failure, RecordOutcome};
use crate::sink::{ActionOutcome, Sink, TargetRef};
use crate::source::{WriteBackItem, WriteBackOutcome};
use crate::state::{Changes, DeadLetter, KeyState, PendingSend, Stage, WRITE_BACK};
use std::collections::HashSet;

/// How the reason of a dead letter for an action that may have happened begins: re-runs of
/// dead letters leave such letters alone when the action must not repeat.
pub(crate) const UNKNOWN_SEND: &str = crate::state::DeadLetter::UNKNOWN_OUTCOME;

/// A record that was written (or found by reconciliation) and may need follow-ups.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) source_key: String,
    pub(crate) target: TargetRef,
    pub(crate) created: bool,
    /// Its dead letters before this write, for the attempt counts of its follow-up stages.
    pub(crate) prior: Vec<DeadLetter>,
    /// What the source record already holds in the write-back field, when known.
    pub(crate) holds: Option<String>,
}

impl Run<'_> {
    /// Queues the write-backs (creates only; drained alongside the run, see `drain`) and runs
    /// the actions (creates, and updates when asked). Failures become dead letters of their
    /// stage; they never undo the write.
    pub(crate) async fn follow_ups(
        &mut self,
        written: Vec<Written>,
        changes: &mut Changes,
    ) -> Result<()> {
        if written.is_empty() {
            return Ok(());
        }
        if self.flow.write_back.is_some() {
            let now = self.now();
            for w in written.iter().filter(|w| w.created) {
                let value = w.target.number.as_deref().unwrap_or(&w.target.id);
                // The source record already holds it (its number came from that field, or an
                // earlier write-back got there): writing it again would cost a rate-limited
                // call for nothing.
                if w.holds.as_deref() == Some(value) {
                    self.report.counts.write_backs_skipped += 1;
                    continue;
                }
                self.report.counts.write_backs_queued += 1;
                changes.sends_put.push(PendingSend {
                    source_key: w.source_key.clone(),
                    action: WRITE_BACK.to_owned(),
                    target: w.target.clone(),
                    queued_at: now,
                    started_at: None,
                });
            }
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
                // Writing a number into a field again is harmless: a failed write-back is tried
                // again by later runs by itself (a lost answer or a 502 heals without a person).
                WriteBackOutcome::Failed { reason } => {
                    self.follow_up_failed(w, Stage::WriteBack, reason, true, changes);
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
            if self.drains_sends() && drained_action(self.flow) == Some(action.as_str()) {
                // The drain beside the run sends it, a few at a time, marking each as being
                // sent first: queued here in the write's transaction, it is never lost.
                let queued_at = self.now();
                changes.sends_put.extend(alive.iter().map(|w| PendingSend {
                    source_key: w.source_key.clone(),
                    action: action.clone(),
                    target: w.target.clone(),
                    queued_at,
                    started_at: None,
                }));
                self.report.counts.sends_queued += alive.len() as u64;
                // Queued counts as passed: a re-run of an earlier action's dead letter clears
                // it, and never queues the message a second time.
                return Ok(alive.iter().map(|w| w.source_key.clone()).collect());
            }
            let targets: Vec<TargetRef> = alive.iter().map(|w| w.target.clone()).collect();
            let outcomes = if repeatable {
                self.call_action(&action, &targets).await
            } else {
                // At most once, and never silently: the write is committed with every message
                // queued; then each is marked as being sent just before it goes out, one at a
                // time (in the transaction that clears the one before). A process that dies
                // leaves at most one message being sent, which the next run reports as unknown,
                // and the queued ones, which it sends (`resume_sends`).
                let queued_at = self.now();
                let send = |w: &Written, started_at| PendingSend {
                    source_key: w.source_key.clone(),
                    action: action.clone(),
                    target: w.target.clone(),
                    queued_at,
                    started_at,
                };
                changes
                    .sends_put
                    .extend(alive.iter().map(|w| send(w, None)));
                let mut outcomes = Vec::with_capacity(targets.len());
                for (w, target) in alive.iter().zip(&targets) {
                    changes.sends_put.push(send(w, Some(self.now())));
                    self.apply(changes).await?;
                    *changes = Changes::default();
                    changes
                        .sends_clear
                        .push((w.source_key.clone(), action.clone()));
                    outcomes.extend(
                        self.call_action(&action, std::slice::from_ref(target))
                            .await,
                    );
                }
                outcomes
            };
            let mut next = Vec::with_capacity(alive.len());
            for (w, (outcome, transient)) in alive.into_iter().zip(outcomes) {
                // A repeatable action whose answer was lost is tried again by later runs by
                // itself (a second Submit reports "already done"); its refusal waits for a fix.
                // A call that failed as a whole and changed nothing (a 5xx before dispatch, a
                // session lost twice) is tried again whatever the action.
                let (reason, retryable) = match outcome {
                    ActionOutcome::Done => {
                        self.report.counts.actions_done += 1;
                        next.push(w);
                        continue;
                    }
                    ActionOutcome::Unknown { reason } if !repeatable => {
                        self.action_unknown(&w.source_key, &action, &reason, changes);
                        continue;
                    }
                    ActionOutcome::Unknown { reason } => {
                        (format!("outcome unknown: {reason}"), true)
                    }
                    // A message the sink says it did not send cannot go out twice by being
                    // tried again: later runs do so by themselves (a 502 on the read before
                    // it heals); a refusal comes back, at most hourly, and stays listed.
                    ActionOutcome::Failed { reason } => (reason, transient || !repeatable),
                };
                let at = Stage::Action(action.clone());
                self.follow_up_failed(w, at, reason, retryable, changes);
            }
            alive = next;
        }
        Ok(alive.into_iter().map(|w| w.source_key.clone()).collect())
    }

    /// A failed follow-up is a dead letter of its stage with the target as its payload; a
    /// retry repeats the follow-up, not the write.
    fn follow_up_failed(
        &mut self,
        w: &Written,
        at: Stage,
        reason: String,
        retryable: bool,
        changes: &mut Changes,
    ) {
        let state = KeyState {
            dead_letters: w.prior.clone(),
            ..KeyState::default()
        };
        let payload = serde_json::to_value(&w.target).ok();
        self.dead_letter(
            &w.source_key,
            &state,
            at,
            reason,
            payload,
            retryable,
            changes,
        );
    }

    /// An action that is not sent again may or may not have happened. It is reported, and
    /// kept on the dead-letter list (in the same transaction that settles it) so that a report
    /// lost with a killed process or an unread log cannot hide it; re-runs of dead letters
    /// leave it alone (it would repeat it): a person checks with the recipient and drops it.
    fn action_unknown(&mut self, key: &str, action: &str, reason: &str, changes: &mut Changes) {
        let letter = unknown_letter(key, action, reason, self.now());
        self.report_unknown(key, letter.reason.clone());
        changes.dead_letters_put.push(letter);
    }

    /// Counts and reports an action that may have happened (its letter is on record).
    pub(crate) fn report_unknown(&mut self, key: &str, reason: String) {
        self.report.counts.actions_unknown += 1;
        tracing::warn!(flow = %self.flow.name, key, %reason, "action outcome unknown");
        if self.report.failures.len() < self.flow.options.report_limit {
            self.report.failures.push(Failure {
                source_key: key.to_owned(),
                outcome: RecordOutcome::Unknown { reason },
            });
        }
    }

    async fn call_action(&self, action: &str, targets: &[TargetRef]) -> Vec<(ActionOutcome, bool)> {
        call_action(self.flow.sink.as_ref(), action, targets).await
    }

    /// Settles the sends a dead process left on record. One that was being sent may or may
    /// not have gone out: it is reported as unknown (and kept as a dead letter for a person),
    /// never sent again. One still queued never went out: it is sent now (with the actions
    /// after it).
    pub(crate) async fn resume_sends(&mut self) -> Result<()> {
        let sends = self.engine.store.sends(&self.flow.name).await?;
        if sends.is_empty() {
            return Ok(());
        }
        let mut changes = Changes::default();
        // By the position of their action: each group goes through `actions` once, which
        // clears each send only once it has gone out.
        let mut queued = std::collections::BTreeMap::<usize, Vec<Written>>::new();
        for s in sends {
            let position = self
                .flow
                .options
                .actions
                .iter()
                .position(|a| *a == s.action);
            match (s.started_at, position) {
                (None, Some(i)) => queued.entry(i).or_default().push(Written {
                    source_key: s.source_key,
                    target: s.target,
                    created: true,
                    prior: Vec::new(),
                    holds: None,
                }),
                (Some(_), _) => {
                    self.action_unknown(
                        &s.source_key,
                        &s.action,
                        "the process stopped while it was being sent",
                        &mut changes,
                    );
                    changes.sends_clear.push((s.source_key, s.action));
                }
                // The action was removed from the flow: nothing is left to do.
                (None, None) => changes.sends_clear.push((s.source_key, s.action)),
            }
        }
        for (i, written) in &queued {
            let items: Vec<&Written> = written.iter().collect();
            self.actions(*i, &items, &mut changes).await?;
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
                holds: None,
            };
            let ok = match &letter.stage {
                Stage::WriteBack => self
                    .write_back(&[&w], &mut changes)
                    .await
                    .contains(&w.source_key),
                // A message that may have gone out is for a person to check, not to resend.
                Stage::Action(a)
                    if !self.flow.sink.action_repeatable(a)
                        && letter.reason.starts_with(UNKNOWN_SEND) =>
                {
                    false
                }
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

/// One action call, one outcome per target whatever the sink answered, each with whether
/// it is a transient failure of the whole call.
pub(crate) async fn call_action(
    sink: &dyn Sink,
    action: &str,
    targets: &[TargetRef],
) -> Vec<(ActionOutcome, bool)> {
    match sink.action(action, targets).await {
        Ok(mut o) => {
            o.resize(
                targets.len(),
                ActionOutcome::Unknown {
                    reason: "no outcome returned".into(),
                },
            );
            o.into_iter().map(|o| (o, false)).collect()
        }
        Err(e) if e.kind() == crate::ConnectorErrorKind::OutcomeUnknown => vec![
            (
                ActionOutcome::Unknown {
                    reason: e.to_string()
                },
                false
            );
            targets.len()
        ],
        Err(e) => vec![
            (
                ActionOutcome::Failed {
                    reason: e.to_string()
                },
                e.is_retryable()
            );
            targets.len()
        ],
    }
}
