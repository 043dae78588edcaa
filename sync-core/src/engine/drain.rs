//! Rule 9, off the critical path: the follow-up queues, drained alongside the run's writes.
//!
//! A write-back is one source call per record (a Fxiaoke `update`, 100 calls per 20 s per
//! path), where the sink takes a hundred records per call; a message is one call per record
//! too. Sent in line, they would hold every group back to that rate. So the write that creates
//! a target queues its write-back, and the write of a flow whose last action must not repeat
//! (a message) queues that send, in the same transaction as the ID map (a crash loses none);
//! the drain sends both queues a few calls at a time while the next groups are read and
//! written, paced by the clients' rate limiters. A run ends when its writes are done and its
//! queues are empty.
//!
//! A message goes out at most once: the drain marks a round of sends as being sent, in one
//! transaction, before any of them goes out, and settles each as its answer comes. A process
//! that dies leaves exactly the sends in flight marked — at most `follow_up_concurrency` — and
//! the next run reports those as unknown instead of sending them again.

use super::Engine;
use super::dead_letter::{letter, unknown_letter};
use super::follow_up::call_action;
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::report::RecordOutcome;
use crate::sink::{ActionOutcome, TargetRef};
use crate::source::{SourceWriteBack, WriteBackItem, WriteBackOutcome};
use crate::state::{Changes, Lease, PendingSend, Stage, WRITE_BACK};
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Write-backs per call of [`SourceWriteBack::write_back`]: a drain round sends
/// `follow_up_concurrency` of these at once and commits their outcomes together.
const PER_CALL: usize = 10;

/// How long an idle drain waits for the writes to queue more before it looks again.
const IDLE: Duration = Duration::from_millis(500);

/// What the writing side tells the drain.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    wake: Notify,
    /// No more write-backs will be queued by this run: drain what is left, then stop.
    writes_done: AtomicBool,
    /// The run failed or is stopping: stop after the round in flight, leave the rest queued.
    abort: AtomicBool,
}

impl Signal {
    /// New write-backs are on record.
    pub(crate) fn queued(&self) {
        self.wake.notify_one();
    }

    /// The run's writes are over; `ok` says whether they ended well.
    pub(crate) fn writes_done(&self, ok: bool) {
        if !ok {
            self.abort.store(true, Ordering::SeqCst);
        }
        self.writes_done.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

/// The flow's action that the drain sends: its last one when it must not repeat (a message).
/// An action followed by others stays in line, where the next ones follow its outcome.
pub(crate) fn drained_action(flow: &Flow) -> Option<&str> {
    flow.options
        .actions
        .last()
        .map(String::as_str)
        .filter(|a| !flow.sink.action_repeatable(a))
}

/// What a drain did, for the run's report.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    pub(crate) written_back: u64,
    pub(crate) actions_done: u64,
    /// Write-backs and sends that failed, now retryable dead letters of their stage.
    pub(crate) failed: Vec<(String, RecordOutcome)>,
    /// Sends that may have gone out (their answer was lost), with their letter's reason.
    pub(crate) unknown: Vec<(String, String)>,
}

pub(crate) struct Drain<'a> {
    engine: &'a Engine,
    flow: &'a Flow,
    write_back: Option<Arc<dyn SourceWriteBack>>,
    send: Option<&'a str>,
    lease: Lease,
    signal: Arc<Signal>,
    done: Drained,
}

impl<'a> Drain<'a> {
    /// A drain of `flow`'s follow-up queues, or `None` when it has none (no write-back and no
    /// [drained action](drained_action)).
    pub(crate) fn new(
        engine: &'a Engine,
        flow: &'a Flow,
        lease: Lease,
        signal: Arc<Signal>,
    ) -> Option<Self> {
        let send = drained_action(flow);
        if flow.write_back.is_none() && send.is_none() {
            return None;
        }
        Some(Self {
            engine,
            flow,
            write_back: flow.write_back.clone(),
            send,
            lease,
            signal,
            done: Drained::default(),
        })
    }

    /// Drains until the writes are done and the queue is empty, or until the run aborts.
    pub(crate) async fn run(mut self) -> (Drained, Result<()>) {
        let result = self.drain().await;
        (self.done, result)
    }

    async fn drain(&mut self) -> Result<()> {
        let lanes = self.flow.options.follow_up_concurrency.max(1);
        let mut failures_in_a_row = 0u32;
        loop {
            if self.signal.abort.load(Ordering::SeqCst) || self.engine.stopping() {
                return Ok(());
            }
            // Read before the queues: a follow-up queued before the writes ended is seen.
            let writes_done = self.signal.writes_done.load(Ordering::SeqCst);
            let write_backs = match self.write_back {
                Some(_) => {
                    self.engine
                        .store
                        .queued(&self.flow.name, WRITE_BACK, lanes * PER_CALL)
                        .await?
                }
                None => Vec::new(),
            };
            // A send marked as being sent is a dead process's, which the run reports as
            // unknown (`resume_sends`); it is never sent again.
            let sends: Vec<PendingSend> = match self.send {
                Some(action) => self
                    .engine
                    .store
                    .queued(&self.flow.name, action, lanes)
                    .await?
                    .into_iter()
                    .filter(|s| s.started_at.is_none())
                    .collect(),
                None => Vec::new(),
            };
            if write_backs.is_empty() && sends.is_empty() {
                if writes_done {
                    return Ok(());
                }
                let _ = tokio::time::timeout(IDLE, self.signal.wake.notified()).await;
                continue;
            }
            if !sends.is_empty() {
                self.send_round(sends).await?;
            }
            if write_backs.is_empty() || self.round(&write_backs).await? {
                failures_in_a_row = 0;
                continue;
            }
            // Every call failed as a whole (the source is down): the entries stay queued; pause
            // as a transient failure does, and give up for this run after the flow's retries:
            // the next run drains them.
            failures_in_a_row += 1;
            let Some(delay) =
                super::backoff::call_delay(failures_in_a_row, self.flow.options.transient_retries)
            else {
                tracing::warn!(
                    flow = %self.flow.name,
                    "write-backs failed as a whole; they stay queued for the next run"
                );
                return Ok(());
            };
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends `queued` in calls of [`PER_CALL`], all at once, and commits their outcomes in one
    /// transaction. Returns whether any call got an answer.
    async fn round(&mut self, queued: &[PendingSend]) -> Result<bool> {
        let calls: Vec<Vec<WriteBackItem>> = queued
            .chunks(PER_CALL)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|s| WriteBackItem {
                        source_key: s.source_key.clone(),
                        target: s.target.clone(),
                    })
                    .collect()
            })
            .collect();
        let Some(wb) = &self.write_back else {
            return Ok(true);
        };
        let results = join_all(calls.iter().map(|items| wb.write_back(items))).await;
        let mut changes = Changes::default();
        let mut failed: Vec<(String, TargetRef, String)> = Vec::new();
        let mut answered = false;
        for (items, result) in calls.into_iter().zip(results) {
            let outcomes = match result {
                Ok(o) => o,
                // Nothing is known to have been written: the entries stay queued. A write-back
                // is idempotent, so sending one again after a lost answer is harmless.
                Err(e) => {
                    tracing::warn!(flow = %self.flow.name, error = %e, "write-back call failed");
                    continue;
                }
            };
            answered = true;
            let mut outcomes = outcomes.into_iter();
            for item in items {
                let outcome = outcomes.next().unwrap_or(WriteBackOutcome::Failed {
                    reason: "no outcome returned".into(),
                });
                changes
                    .sends_clear
                    .push((item.source_key.clone(), WRITE_BACK.to_owned()));
                match outcome {
                    WriteBackOutcome::Done => self.done.written_back += 1,
                    WriteBackOutcome::Failed { reason } => {
                        failed.push((item.source_key, item.target, reason));
                    }
                }
            }
        }
        if !failed.is_empty() {
            // A failed write-back becomes a retryable dead letter of its stage, as in line.
            let keys: Vec<String> = failed.iter().map(|(k, ..)| k.clone()).collect();
            let states = self.engine.store.lookup(&self.flow.name, &keys).await?;
            let now = self.engine.clock.now_ms();
            for ((key, target, reason), state) in failed.into_iter().zip(states) {
                let prior = state.dead_letter(&Stage::WriteBack);
                changes.dead_letters_put.push(crate::state::DeadLetter {
                    payload: serde_json::to_value(&target).ok(),
                    ..letter(&key, prior, Stage::WriteBack, reason.clone(), now)
                });
                let outcome = RecordOutcome::DeadLettered {
                    stage: Stage::WriteBack,
                    reason,
                };
                self.done.failed.push((key, outcome));
            }
        }
        if !changes.is_empty() {
            self.engine.store.apply(&self.lease, &changes).await?;
            self.renew_lease().await?;
        }
        Ok(answered)
    }

    /// Sends `sends` of the drained action, all at once, one target per call: marked as being
    /// sent in one transaction first, each settled in its own as its answer comes.
    async fn send_round(&mut self, sends: Vec<PendingSend>) -> Result<()> {
        let Some(action) = self.send else {
            return Ok(());
        };
        let now = self.engine.clock.now_ms();
        let start = Changes {
            sends_start: sends
                .iter()
                .map(|s| PendingSend {
                    started_at: Some(now),
                    ..s.clone()
                })
                .collect(),
            ..Changes::default()
        };
        self.engine.store.apply(&self.lease, &start).await?;
        let sink = self.flow.sink.as_ref();
        let mut flying: FuturesUnordered<_> = sends
            .into_iter()
            .map(|s| async move {
                let outcome = call_action(sink, action, std::slice::from_ref(&s.target)).await;
                (s, outcome)
            })
            .collect();
        while let Some((send, outcomes)) = flying.next().await {
            let mut changes = Changes::default();
            changes.sends_done.push(send.clone());
            let key = send.source_key;
            let now = self.engine.clock.now_ms();
            let outcome = outcomes.into_iter().next().map(|(o, _)| o);
            match outcome.unwrap_or(ActionOutcome::Unknown {
                reason: "no outcome returned".into(),
            }) {
                ActionOutcome::Done => self.done.actions_done += 1,
                ActionOutcome::Unknown { reason } => {
                    let letter = unknown_letter(&key, action, &reason, now);
                    self.done.unknown.push((key, letter.reason.clone()));
                    changes.dead_letters_put.push(letter);
                }
                // Not sent, by the sink's word: sending it again cannot make it twice.
                ActionOutcome::Failed { reason } => {
                    let stage = Stage::Action(action.to_owned());
                    let states = self
                        .engine
                        .store
                        .lookup(&self.flow.name, std::slice::from_ref(&key))
                        .await?;
                    let prior = states.first().and_then(|s| s.dead_letter(&stage));
                    changes.dead_letters_put.push(crate::state::DeadLetter {
                        payload: serde_json::to_value(&send.target).ok(),
                        ..letter(&key, prior, stage.clone(), reason.clone(), now)
                    });
                    let outcome = RecordOutcome::DeadLettered { stage, reason };
                    self.done.failed.push((key, outcome));
                }
            }
            self.engine.store.apply(&self.lease, &changes).await?;
        }
        self.renew_lease().await
    }

    /// The drain may outlast the writes by far (a queue drains at the source's rate): it keeps
    /// the lease as the writes do, renewed when half of it is used.
    async fn renew_lease(&mut self) -> Result<()> {
        let ttl = self.flow.options.lease_ttl_ms;
        let now = self.engine.clock.now_ms();
        if now < self.lease.expires_at.saturating_sub(ttl / 2) {
            return Ok(());
        }
        self.lease = self
            .engine
            .store
            .acquire_lease(&self.flow.name, &self.engine.owner, now, ttl)
            .await
            .map_err(|e| match e {
                Error::FlowLocked { flow, .. } => Error::LeaseLost { flow },
                other => other,
            })?;
        Ok(())
    }
}
