//! One run of a flow: its lease, its report, and the phases in order.

use super::Engine;
use super::backoff;
use super::drain::{Drain, Signal};
use super::window::{Pages, window};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::record::Record;
use crate::report::{Failure, RecordOutcome, RunReport};
use crate::state::{Changes, Cursor, Lease, RunKind, RunRecord, WRITE_BACK};
use std::sync::Arc;

/// Clocks within this of each other count as equal: an HTTP `Date` has whole seconds, and an
/// answer takes time to arrive.
const CLOCK_TOLERANCE_MS: i64 = 2_000;

pub(crate) struct Run<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) flow: &'a Flow,
    /// `None` for dry runs, which write nothing.
    pub(crate) lease: Option<Lease>,
    pub(crate) report: RunReport,
    pub(crate) started_at: i64,
    /// The cursor as committed so far in this run.
    pub(crate) cursor: Option<i64>,
    /// Tells the follow-up drain, while one runs alongside, that more is queued.
    drain: Option<Arc<Signal>>,
}

/// What a run does while its follow-up queues drain alongside.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Writes {
    Incremental,
    DeadLetters,
    Sweep,
}

impl<'a> Run<'a> {
    pub(crate) async fn start(engine: &'a Engine, flow: &'a Flow, kind: RunKind) -> Result<Self> {
        let now = engine.clock.now_ms();
        let lease = if kind == RunKind::DryRun {
            None
        } else {
            Some(engine.acquire_lease(flow).await?)
        };
        Ok(Self {
            engine,
            flow,
            lease,
            report: RunReport::new(&flow.name, kind, now),
            started_at: now,
            cursor: None,
            drain: None,
        })
    }

    /// Whether a drain runs beside the writes, to which the flow's drained action is queued.
    pub(crate) fn drains_sends(&self) -> bool {
        self.drain.is_some()
    }

    pub(crate) fn dry(&self) -> bool {
        self.lease.is_none()
    }

    pub(crate) fn now(&self) -> i64 {
        self.engine.clock.now_ms()
    }

    /// Runs `writes` while the flow's follow-up queues drain alongside (a dry run, or a flow
    /// without follow-ups to queue, just runs them). The run ends when both are done; a failed or
    /// stopped run leaves what is still queued to the next one.
    pub(crate) async fn drained(&mut self, writes: Writes) -> Result<()> {
        // Before the drain starts: the sends a dead process left are settled (those it was
        // sending reported unknown, the queued ones sent) while nothing else touches them.
        if !self.dry() {
            self.resume_sends().await?;
        }
        let signal = Arc::new(Signal::default());
        let drain = self
            .lease
            .clone()
            .and_then(|lease| Drain::new(self.engine, self.flow, lease, Arc::clone(&signal)));
        let Some(drain) = drain else {
            let result = self.writes(writes).await;
            self.report.writes_done_at = self.now();
            return result;
        };
        self.drain = Some(Arc::clone(&signal));
        let writing = async {
            let result = self.writes(writes).await;
            self.report.writes_done_at = self.now();
            signal.writes_done(result.is_ok() && !self.report.interrupted);
            result
        };
        let (result, (drained, drain_result)) =
            futures_util::future::join(writing, drain.run()).await;
        self.drain = None;
        self.report.counts.written_back += drained.written_back;
        self.report.counts.actions_done += drained.actions_done;
        for (key, outcome) in drained.failed {
            self.settled(&key, outcome);
        }
        for (key, reason) in drained.unknown {
            self.report_unknown(&key, reason);
        }
        let store = &self.engine.store;
        self.report.write_backs_pending = store.queued_count(&self.flow.name, WRITE_BACK).await?;
        if let Some(action) = super::drain::drained_action(self.flow) {
            self.report.sends_pending = store.queued_count(&self.flow.name, action).await?;
        }
        result.and(drain_result)
    }

    async fn writes(&mut self, writes: Writes) -> Result<()> {
        match writes {
            Writes::Incremental => self.incremental().await,
            Writes::DeadLetters => self.dead_letters().await,
            Writes::Sweep => self.sweep().await,
        }
    }

    /// Records the run, gives the lease back and hands out the report.
    pub(crate) async fn finish(mut self, result: Result<()>) -> Result<RunReport> {
        self.report.finished_at = self.now();
        self.report.cursor_after = self.cursor;
        if let Some(lease) = self.lease.take() {
            let record = RunRecord {
                flow: self.flow.name.clone(),
                kind: self.report.kind,
                started_at: self.report.started_at,
                finished_at: self.report.finished_at,
                window: self.report.window,
                counts: self.report.counts,
                error: result.as_ref().err().map(ToString::to_string),
            };
            let recorded = self.engine.store.record_run(&record).await;
            let released = self.engine.store.release_lease(&lease).await;
            if result.is_ok() {
                recorded?;
                released?;
            }
        }
        self.engine.observer.run_finished(&self.report);
        result.map(|()| self.report)
    }

    /// Applies changes in one transaction, then renews the lease when half of it is used.
    pub(crate) async fn apply(&mut self, changes: &Changes) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        if !changes.is_empty() {
            self.engine.store.apply(lease, changes).await?;
            if let Some(drain) = self
                .drain
                .as_ref()
                .filter(|_| !changes.sends_put.is_empty())
            {
                drain.queued();
            }
        }
        let ttl = self.flow.options.lease_ttl_ms;
        if self.now() >= lease.expires_at.saturating_sub(ttl / 2) {
            self.renew_lease().await?;
        }
        if let Some(c) = &changes.cursor {
            self.cursor = Some(c.version);
        }
        Ok(())
    }

    /// Renews the lease for a whole time-to-live, failing with [`Error::LeaseLost`] when
    /// another owner holds it. Called before every sink call that writes, so that a write
    /// always starts with a full lease ahead of it: a second process cannot take the flow over
    /// (and reconcile this one's intents) while a write shorter than the lease is running.
    pub(crate) async fn renew_lease(&mut self) -> Result<()> {
        if self.lease.is_none() {
            return Ok(());
        }
        let renewed = self
            .engine
            .store
            .acquire_lease(
                &self.flow.name,
                &self.engine.owner,
                self.now(),
                self.flow.options.lease_ttl_ms,
            )
            .await
            .map_err(|e| match e {
                Error::FlowLocked { flow, .. } => Error::LeaseLost { flow },
                other => other,
            })?;
        self.lease = Some(renewed);
        Ok(())
    }

    /// Tells the observer, and keeps failures for the report.
    pub(crate) fn settled(&mut self, key: &str, outcome: RecordOutcome) {
        self.engine
            .observer
            .record_settled(&self.flow.name, key, &outcome);
        let c = &mut self.report.counts;
        let failure = match &outcome {
            RecordOutcome::Created(_) => {
                c.created += 1;
                false
            }
            RecordOutcome::Updated(_) => {
                c.updated += 1;
                false
            }
            RecordOutcome::Unchanged => {
                c.unchanged += 1;
                false
            }
            RecordOutcome::Skipped { .. } => {
                c.skipped += 1;
                false
            }
            RecordOutcome::Removed(_) => {
                c.removed += 1;
                false
            }
            RecordOutcome::Reconciled(_) => {
                c.reconciled += 1;
                false
            }
            RecordOutcome::Gone => {
                c.gone += 1;
                false
            }
            RecordOutcome::Deferred { .. } => {
                c.deferred += 1;
                true
            }
            RecordOutcome::DeadLettered { .. } => {
                c.dead_lettered += 1;
                true
            }
            RecordOutcome::Unknown { .. } => {
                c.unknown += 1;
                true
            }
        };
        if failure && self.report.failures.len() < self.flow.options.report_limit {
            self.report.failures.push(Failure {
                source_key: key.to_owned(),
                outcome,
            });
        }
    }

    /// Calls `call` again after a transient failure — one that changed nothing — with the
    /// delays of [`backoff::call_delay`], unless the run is being stopped. Other failures and
    /// the last transient one are returned.
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        what: &str,
        mut call: F,
    ) -> std::result::Result<T, crate::ConnectorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, crate::ConnectorError>>,
    {
        let mut retry = 0;
        loop {
            let error = match call().await {
                Err(e) if e.kind() == crate::ConnectorErrorKind::Transient => e,
                other => return other,
            };
            retry += 1;
            let delay = backoff::call_delay(retry, self.flow.options.transient_retries);
            let Some(delay) = delay.filter(|_| !self.engine.stopping()) else {
                return Err(error);
            };
            tracing::warn!(
                flow = %self.flow.name, call = what, retry, delay_s = delay.as_secs(),
                error = %error, "transient failure; trying again"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Rule 1: "now" for the window is the source server's time when it tells it (its
    /// modification times are on its clock, not ours), else this machine's. A difference is
    /// reported, and logged when it is large enough to matter.
    pub(crate) async fn source_now(&mut self) -> Result<i64> {
        let server = self
            .retrying("server_time", || self.flow.source.server_time_ms())
            .await
            .map_err(|e| self.source_error(e))?;
        let Some(server) = server else {
            return Ok(self.started_at);
        };
        let skew = server.saturating_sub(self.started_at);
        self.report.clock_skew_ms = Some(skew);
        if skew.abs() > CLOCK_TOLERANCE_MS {
            tracing::warn!(
                flow = %self.flow.name, skew_ms = skew,
                "this machine's clock differs from the source server's; the window is measured \
                 with the server's"
            );
        }
        Ok(server)
    }

    pub(crate) fn source_error(&self, error: crate::ConnectorError) -> Error {
        Error::Source {
            flow: self.flow.name.clone(),
            error,
        }
    }

    pub(crate) fn sink_error(&self, error: crate::ConnectorError) -> Error {
        Error::Sink {
            flow: self.flow.name.clone(),
            error,
        }
    }

    /// Reads `keys` again from the source and processes them. A key the source no longer has
    /// is settled as gone and cleared from the list `list` names (deferrals, dead letters).
    pub(crate) async fn reprocess(
        &mut self,
        keys: &[String],
        list: fn(&mut Changes) -> &mut Vec<String>,
    ) -> Result<()> {
        let records = self
            .retrying("get_many", || self.flow.source.get_many(keys))
            .await
            .map_err(|e| self.source_error(e))?;
        let mut gone = Changes::default();
        for key in keys
            .iter()
            .filter(|k| !records.iter().any(|r| &r.key == *k))
        {
            list(&mut gone).push(key.clone());
            self.settled(key, RecordOutcome::Gone);
        }
        self.apply(&gone).await?;
        self.process(records, None).await
    }

    pub(crate) fn group_size(&self) -> usize {
        self.flow
            .options
            .batch_size
            .saturating_mul(self.flow.options.concurrency)
            .max(1)
    }

    /// The incremental run (and the dry run): pending intents, deferred records, the window.
    pub(crate) async fn incremental(&mut self) -> Result<()> {
        let stored = self.engine.store.cursor(&self.flow.name).await?;
        self.cursor = stored.as_ref().map(|c| c.version);
        self.report.cursor_before = self.cursor;
        let now = self.source_now().await?;
        if let Some(cursor) = self.cursor
            && cursor > now.saturating_add(CLOCK_TOLERANCE_MS)
        {
            return Err(Error::CursorAhead {
                flow: self.flow.name.clone(),
                cursor_ms: cursor,
                now_ms: now,
            });
        }
        let o = &self.flow.options;
        let win = window(
            self.cursor,
            now,
            o.lookback_ms,
            o.settle_ms,
            o.start_from_ms,
        );
        self.report.window = Some(win);
        self.engine
            .observer
            .run_started(&self.flow.name, self.report.kind, Some(&win));
        if !self.dry() {
            self.reconcile_pending().await?;
            self.retry_deferred().await?;
            if self.report.interrupted {
                return Ok(());
            }
            // Failures that looked transient are tried again by the runs after them, with a
            // growing pause; the others wait for a person (`rerun_dead_letters`).
            let now = self.now();
            let first = self.flow.options.dead_letter_retry_ms;
            self.rerun_letters(|d| backoff::dead_letter_due(d, now, first))
                .await?;
            if self.report.interrupted {
                return Ok(());
            }
        }
        if win.is_empty() {
            return Ok(());
        }
        let group = self.group_size();
        let page_size = self.flow.options.page_size;
        let (engine, flow) = (self.engine, self.flow);
        let mut pages = Pages::new(win);
        let mut buffer: Vec<Record> = Vec::new();
        loop {
            while buffer.len() < group {
                let Some(request) = pages.next_request(page_size) else {
                    break;
                };
                let page = self
                    .retrying("read_page", || flow.source.read_page(&request))
                    .await
                    .map_err(|e| self.source_error(e))?;
                engine.observer.page_read(&flow.name, page.records.len());
                buffer.extend(pages.accept(&flow.name, page)?);
            }
            let Some(last) = buffer.get(group.min(buffer.len()).saturating_sub(1)) else {
                break;
            };
            // Rule 5: the cursor moves past these records in the same transaction that
            // settles them.
            let cursor = Cursor {
                version: self.cursor.map_or(last.version, |c| c.max(last.version)),
                key: Some(last.key.clone()),
            };
            let chunk: Vec<Record> = buffer.drain(..group.min(buffer.len())).collect();
            // The next group's pages are read while this one is written. Without retries: a
            // read that fails here is made again, with them, above.
            let read_ahead = async {
                while buffer.len() < group {
                    let Some(request) = pages.next_request(page_size) else {
                        break;
                    };
                    let Ok(page) = flow.source.read_page(&request).await else {
                        break;
                    };
                    engine.observer.page_read(&flow.name, page.records.len());
                    buffer.extend(pages.accept(&flow.name, page)?);
                }
                Ok::<(), Error>(())
            };
            let (written, read) =
                futures_util::future::join(self.process(chunk, Some(cursor)), read_ahead).await;
            written?;
            read?;
            if self.engine.stopping() {
                self.report.interrupted = true;
                return Ok(());
            }
        }
        // The whole window is settled: the next run starts from its upper bound.
        let end = Cursor {
            version: self.cursor.map_or(win.high, |c| c.max(win.high)),
            key: None,
        };
        if self.dry() {
            return Ok(());
        }
        self.apply(&Changes {
            cursor: Some(end),
            ..Changes::default()
        })
        .await
    }
}
