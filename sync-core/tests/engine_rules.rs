//! One or more tests per engine rule; each fails if its rule is removed.

mod common;

use async_trait::async_trait;
use common::{CrashStore, FLOW, Harness, NowMsExt as _, QUIET, T0, customer};
use serde_json::json;
use std::sync::{Arc, Mutex};
use sync_core::state::{MemoryStore, Stage, StateStore, WRITE_BACK};
use sync_core::testing::{CallFault, MemorySink, MemorySource};
use sync_core::{
    ConnectorError, DeclarativeMapping, Error, Flow, FlowOptions, Page, PageRequest, Record,
    RecordOutcome, Sink, Source, SourceWriteBack, TargetRef, WriteBackItem, WriteBackOutcome,
    WriteItem, WriteOutcome,
};

// ---- Rule 1: the window --------------------------------------------------------------------

#[tokio::test]
async fn rule1_window_is_closed_low_open_high_below_now_minus_settle() {
    let h = Harness::new();
    let high = T0 - 1_000; // now - settle
    h.source.upsert(customer("in", high - 1, "in"));
    h.source.upsert(customer("edge", high, "edge")); // open high: not this run
    let flow = h.flow();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        r.window.map(|w| (w.high, r.counts.created)),
        Some((high, 1))
    );
    assert_eq!(h.store.cursor(FLOW).await.unwrap().unwrap().version, high);

    // Closed low: the record exactly at the cursor is read by the next run.
    h.clock.advance(10_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.window.unwrap().low, high);
    assert_eq!(r.counts.created, 1);
    assert_eq!(h.sink.documents_for("edge").len(), 1);
}

#[tokio::test]
async fn rule1_the_window_is_measured_with_the_source_servers_clock() {
    // The CRM's clock is an hour behind this machine's, more than lookback + settle: measured
    // with the local clock, the cursor would pass records the server stamps after the run.
    let h = Harness::new();
    let behind = 3_600_000;
    h.source.set_server_clock_offset(-behind);
    let flow = h.flow();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.clock_skew_ms, Some(-behind));
    assert_eq!(r.window.unwrap().high, T0 - behind - 1_000);

    h.clock.advance(10_000);
    // Changed on the server after the first run, on the server's clock.
    h.source
        .upsert(customer("late", T0 - behind + 8_000, "changed after run 1"));
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1);
    assert_eq!(h.sink.documents_for("late").len(), 1);
}

#[tokio::test]
async fn rule1_a_cursor_ahead_of_the_source_clock_stops_the_flow_until_set_back() {
    let h = Harness::new();
    h.source.set_server_clock_offset(0);
    h.seed(1);
    let flow = h.flow();
    // A run whose clock was a day fast left its cursor in the future.
    let fast = T0 + 86_400_000;
    h.engine.set_cursor(&flow, fast).await.unwrap();
    let err = h.engine.run(&flow).await.unwrap_err();
    assert!(
        matches!(err, Error::CursorAhead { cursor_ms, now_ms, .. } if cursor_ms == fast && now_ms == T0),
        "{err:?}"
    );
    assert_eq!(h.sink.written(), 0);

    h.engine.set_cursor(&flow, T0 - 120_000).await.unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1);
    assert_eq!(
        h.store.cursor(FLOW).await.unwrap().unwrap().version,
        T0 - 1_000
    );
}

/// A source that, while a run reads it, sees a record change (as a CRM user would).
struct ChangesDuringRead {
    inner: Arc<MemorySource>,
    clock: Arc<sync_core::ManualClock>,
    fired: Mutex<bool>,
}

#[async_trait]
impl Source for ChangesDuringRead {
    async fn read_page(&self, req: &PageRequest) -> Result<Page, ConnectorError> {
        let page = self.inner.read_page(req).await?;
        let mut fired = self.fired.lock().unwrap();
        if !*fired {
            *fired = true;
            // Modified "now", while the run is under way; the run started earlier.
            self.clock.advance(5);
            self.inner
                .upsert(customer("c000", self.clock.now_ms_(), "renamed during run"));
        }
        Ok(page)
    }
    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError> {
        self.inner.get(key).await
    }
}

#[tokio::test]
async fn rule1_record_changed_during_a_run_is_caught_by_the_next() {
    let h = Harness::new();
    h.seed(3);
    let source = Arc::new(ChangesDuringRead {
        inner: h.source.clone(),
        clock: h.clock.clone(),
        fired: Mutex::new(false),
    });
    let flow = Flow::builder(FLOW, source, common::customers_mapping(), h.sink.clone())
        .lookback_ms(0)
        .settle_ms(1_000)
        .page_size(1)
        .build()
        .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    // c000 moved out of the fixed window while the run was reading; the others were synced.
    assert_eq!(r.counts.created, 3);
    h.clock.advance(10_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.updated, 1);
    assert_eq!(
        h.sink.documents_for("c000")[0].payload["FName"],
        "renamed during run"
    );
}

#[tokio::test]
async fn rule1_late_visible_record_is_caught_by_the_lookback() {
    let h = Harness::new();
    h.seed(1);
    let flow = h.builder().lookback_ms(60_000).build().unwrap();
    h.engine.run(&flow).await.unwrap();
    let cursor = h.store.cursor(FLOW).await.unwrap().unwrap().version;
    // Committed in the CRM with a timestamp just below our cursor, visible only now.
    h.source.upsert(customer("late", cursor - 30_000, "late"));
    h.clock.advance(10_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1, "lookback re-reads below the cursor");
    assert_eq!(r.counts.unchanged, 1, "the overlap is deduplicated by hash");
}

#[tokio::test]
async fn rule1_records_sharing_a_timestamp_across_pages_are_all_read() {
    let h = Harness::new();
    for k in ["a", "b", "c", "d", "e"] {
        h.source.upsert(customer(k, T0 - 5_000, k));
    }
    let flow = h.builder().page_size(2).batch_size(2).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 5);
    assert_eq!(h.source.reads(), 3);
}

#[tokio::test]
async fn rule1_out_of_order_source_is_rejected() {
    struct Unordered;
    #[async_trait]
    impl Source for Unordered {
        async fn read_page(&self, _: &PageRequest) -> Result<Page, ConnectorError> {
            Ok(Page {
                records: vec![
                    customer("b", T0 - 9_000, "b"),
                    customer("a", T0 - 9_000, "a"),
                ],
                has_more: false,
                token: None,
            })
        }
        async fn get(&self, _: &str) -> Result<Option<Record>, ConnectorError> {
            Ok(None)
        }
    }
    let h = Harness::new();
    let flow = Flow::builder(
        FLOW,
        Arc::new(Unordered),
        common::customers_mapping(),
        h.sink.clone(),
    )
    .build()
    .unwrap();
    let e = h.engine.run(&flow).await.unwrap_err();
    assert!(matches!(e, Error::SourceContract { .. }), "{e}");
    assert!(h.store.cursor(FLOW).await.unwrap().is_none());
}

// ---- Rule 2: skip the unchanged ------------------------------------------------------------

#[tokio::test]
async fn rule2_unchanged_payload_is_not_written_again() {
    let h = Harness::new();
    h.seed(2);
    let flow = h.flow();
    h.engine.run(&flow).await.unwrap();
    assert_eq!(h.sink.written(), 2);
    // A change to a field the mapping does not read: new version, same payload.
    let mut r = h.source.record("c000").unwrap();
    r.version = T0;
    r.body["remark"] = json!("not mapped");
    h.source.upsert(r);
    h.clock.advance(60_000);
    let rep = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (rep.counts.read, rep.counts.unchanged, rep.counts.updated),
        (1, 1, 0)
    );
    assert_eq!(h.sink.written(), 2);
    // A change to a mapped field is written.
    h.source
        .upsert(customer("c000", h.clock.now_ms_(), "new name"));
    h.clock.advance(60_000);
    let rep = h.engine.run(&flow).await.unwrap();
    assert_eq!(rep.counts.updated, 1);
    assert_eq!(h.sink.documents_for("c000").len(), 1);
}

// ---- Rule 3: intent before write -----------------------------------------------------------

/// A sink that checks, at the moment of writing, that an intent is on record for every item.
struct IntentChecking {
    inner: Arc<MemorySink>,
    store: Arc<dyn StateStore>,
    seen: Mutex<Vec<usize>>,
}

#[async_trait]
impl Sink for IntentChecking {
    async fn find(&self, k: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.inner.find(k).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let intents = self.store.intents(FLOW).await.unwrap();
        let covered = items
            .iter()
            .filter(|i| intents.iter().any(|x| x.source_key == i.source_key))
            .count();
        self.seen.lock().unwrap().push(covered);
        self.inner.write(items).await
    }
}

#[tokio::test]
async fn rule3_intent_is_on_record_before_the_write_and_cleared_with_the_id_map() {
    let h = Harness::new();
    h.seed(3);
    let sink = Arc::new(IntentChecking {
        inner: h.sink.clone(),
        store: h.store.clone(),
        seen: Mutex::new(vec![]),
    });
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        sink.clone(),
    )
    .settle_ms(1_000)
    .build()
    .unwrap();
    h.engine.run(&flow).await.unwrap();
    assert_eq!(*sink.seen.lock().unwrap(), vec![3]);
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
    let keys: Vec<String> = (0..3).map(|i| format!("c{i:03}")).collect();
    assert_eq!(h.store.id_map_get_many(FLOW, &keys).await.unwrap().len(), 3);
}

#[tokio::test]
async fn rule3_crash_after_write_leaves_intent_and_no_half_entry() {
    let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    // apply #1 records the intents, #2 settles: crash there.
    let h = Harness::with_store(Arc::new(CrashStore::new(inner.clone(), 2)));
    h.seed(1);
    assert!(h.engine.run(&h.flow()).await.is_err());
    assert_eq!(h.sink.documents().len(), 1, "the write happened");
    assert_eq!(inner.intents(FLOW).await.unwrap().len(), 1);
    assert!(
        inner
            .id_map_get_many(FLOW, &["c000".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(inner.cursor(FLOW).await.unwrap().is_none());
}

/// A sink whose writes take the given times, during which a second process tries to take the
/// flow over (as it would once the lease expired).
struct SlowWrites {
    inner: Arc<MemorySink>,
    clock: Arc<sync_core::ManualClock>,
    store: Arc<dyn StateStore>,
    durations: Mutex<Vec<i64>>,
    taken_over: Mutex<Vec<bool>>,
}

#[async_trait]
impl Sink for SlowWrites {
    async fn find(&self, k: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.inner.find(k).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let took = self.durations.lock().unwrap().remove(0);
        self.clock.advance(took);
        let other = self
            .store
            .acquire_lease(FLOW, "other-process", self.clock.now_ms_(), 10_000)
            .await;
        self.taken_over.lock().unwrap().push(other.is_ok());
        self.inner.write(items).await
    }
}

#[tokio::test]
async fn rule3_the_lease_is_renewed_before_every_write() {
    let h = Harness::new();
    h.seed(2);
    // Lease 10 s. The first write takes 4.5 s (not half the lease: no renewal after it); the
    // second takes 6 s and would outlive a lease that was not renewed just before it.
    let sink = Arc::new(SlowWrites {
        inner: h.sink.clone(),
        clock: h.clock.clone(),
        store: h.store.clone(),
        durations: Mutex::new(vec![4_500, 6_000]),
        taken_over: Mutex::new(vec![]),
    });
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        sink.clone(),
    )
    .lookback_ms(0)
    .settle_ms(1_000)
    .batch_size(1)
    .concurrency(1)
    .lease_ttl_ms(10_000)
    .build()
    .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 2);
    assert_eq!(*sink.taken_over.lock().unwrap(), vec![false, false]);
}

// ---- Transient failures -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_transient_read_failure_is_retried_after_a_pause_and_the_run_goes_on() {
    let h = Harness::new();
    h.seed(2);
    h.source.fail_next_reads(2);
    let flow = h.builder().transient_retries(3).build().unwrap();
    let started = tokio::time::Instant::now();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 2);
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(1 + 4));
    // Used up: the run stops as before, the cursor where it was, after 1 + 4 + 16 s.
    h.source.upsert(customer("c009", T0 - 500, "late"));
    h.clock.advance(1_000);
    h.source.fail_next_reads(4);
    let cursor = h.store.cursor(FLOW).await.unwrap();
    let started = tokio::time::Instant::now();
    let e = h.engine.run(&flow).await.unwrap_err();
    assert!(
        matches!(e, Error::Source { .. }) && e.is_retryable(),
        "{e:?}"
    );
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(21));
    assert_eq!(h.store.cursor(FLOW).await.unwrap(), cursor);
}

#[tokio::test(start_paused = true)]
async fn a_batch_refused_before_sending_is_sent_again_once_not_twice() {
    let h = Harness::new();
    h.seed(3);
    h.sink.fault_next_write(CallFault::FailBeforeSend);
    let flow = h.builder().transient_retries(3).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.batches), (3, 1));
    // Two calls: the refused one and the one that went through.
    assert_eq!(h.sink.batch_sizes(), vec![3, 3]);
    assert_eq!((h.sink.documents().len(), h.sink.duplicates()), (3, 0));
}

#[tokio::test]
async fn a_transient_record_failure_is_retried_by_later_runs_with_a_growing_pause() {
    let h = Harness::new();
    h.seed(2);
    h.sink
        .fail_record_transiently("c001", "MsgCode 13: network control");
    h.sink.fail_record("c000", "违反字段唯一性要求");
    let flow = h.flow();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.dead_lettered, 2);
    // Within a minute of the failure: not tried again.
    h.clock.advance(59_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.read, 0);
    // Due: tried again (and fails again: 2 attempts, next pause 2 minutes).
    h.clock.advance(1_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.read, r.counts.dead_lettered), (1, 1));
    let letters = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert_eq!(
        letters
            .iter()
            .map(|d| (d.source_key.as_str(), d.attempts))
            .collect::<Vec<_>>(),
        [("c000", 1), ("c001", 2)]
    );
    h.sink.heal();
    h.clock.advance(119_000);
    assert_eq!(h.engine.run(&flow).await.unwrap().counts.read, 0);
    h.clock.advance(1_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1);
    // The permanent failure waits for a person; the transient one is gone.
    let letters = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].source_key, "c000");
    assert_eq!(h.sink.documents_for("c001").len(), 1);
}

// ---- Rule 4: no duplicates -----------------------------------------------------------------

#[tokio::test]
async fn rule4_timeout_after_dispatch_is_reconciled_not_resent() {
    let h = Harness::new();
    h.seed(3);
    h.sink.fault_next_write(CallFault::TimeoutAfterApply);
    let flow = h.flow();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.unknown, r.counts.created), (3, 0));
    assert_eq!(h.store.intents(FLOW).await.unwrap().len(), 3);
    // The records change again before the next run: still no duplicate.
    h.source.upsert(customer("c001", T0, "changed"));
    h.clock.advance(60_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.reconciled, 3);
    assert_eq!(h.sink.finds(), 3);
    assert_eq!(h.sink.duplicates(), 0);
    assert_eq!(h.sink.documents().len(), 3);
    assert_eq!(h.sink.documents_for("c001")[0].payload["FName"], "changed");
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn rule4_a_write_that_may_still_be_running_is_left_alone_for_the_quiet_period() {
    let h = Harness::new();
    h.seed(2);
    h.sink.fault_next_write(CallFault::TimeoutAfterApply);
    let flow = h.builder().lookback_ms(120_000).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.unknown, 2);
    let written = h.sink.written();
    // A run soon after (the server may still be saving): no lookup, no write; the records,
    // read again by the look-back, stay unknown and their intents stay on record.
    h.clock.advance(QUIET / 2);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.waiting, r.counts.unknown), (2, 2));
    assert_eq!((h.sink.finds(), h.sink.written()), (0, written));
    assert_eq!(h.store.intents(FLOW).await.unwrap().len(), 2);
    // Past the quiet period they are looked up and found.
    h.clock.advance(QUIET / 2);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.waiting, r.counts.reconciled), (0, 2));
    assert_eq!((h.sink.finds(), h.sink.written()), (2, written));
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
    assert_eq!(h.sink.duplicates(), 0);
}

#[tokio::test]
async fn rule4_a_change_sent_after_a_reconcile_and_refused_before_sending_is_retried() {
    // Found by the engine properties: the record of a reconciled intent is read outside the
    // window, so no cursor brings it back; its newer value must not be dropped.
    let h = Harness::new();
    let flow = h.flow();
    h.source.upsert(customer("k2", T0 - 5_000, "name 0"));
    h.sink.fault_next_write(CallFault::TimeoutAfterApply);
    assert_eq!(h.engine.run(&flow).await.unwrap().counts.unknown, 1);
    h.clock.advance(1_001);
    h.source
        .upsert(customer("k2", h.clock.now_ms_() - 1_000, "name 1"));
    h.clock.advance(1_001);
    // The intent is young: the new value waits with it.
    assert_eq!(h.engine.run(&flow).await.unwrap().counts.waiting, 1);
    h.clock.advance(QUIET);
    h.sink.fault_next_write(CallFault::FailBeforeSend);
    assert!(h.engine.run(&flow).await.is_err());
    let letters = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "kept for a later run");
    assert!(letters[0].retryable);
    // A later run retries it by itself.
    h.clock.advance(3_600_000);
    h.engine.run(&flow).await.unwrap();
    let docs = h.sink.documents_for("k2");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].payload["FName"], "name 1");
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A sink of messages: what it wrote cannot be looked up.
struct Messages(Arc<MemorySink>);

#[async_trait]
impl Sink for Messages {
    async fn find(&self, _: &str) -> Result<Option<TargetRef>, ConnectorError> {
        panic!("a message is never looked up")
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        self.0.write(items).await
    }
    fn write_repeatable(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn rule4_a_message_whose_answer_was_lost_is_reported_unknown_and_never_sent_again() {
    let h = Harness::new();
    h.seed(2);
    h.sink.unknown_record("c001");
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        Arc::new(Messages(h.sink.clone())),
    )
    .lookback_ms(120_000)
    .settle_ms(1_000)
    .quiet_period_ms(QUIET)
    .build()
    .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.unknown), (1, 1));
    h.sink.heal();
    h.clock.advance(QUIET);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (r.counts.unknown, r.counts.reconciled, r.counts.created),
        (1, 0, 0)
    );
    assert!(
        matches!(&r.failures[0].outcome, RecordOutcome::Unknown { reason } if reason.contains("not sent again"))
    );
    assert_eq!(h.sink.documents().len(), 2, "sent once each");
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.unknown, r.counts.created), (0, 0));
}

/// A sink whose server answers "created" without a document id for `c001`.
struct NoIdFor(Arc<MemorySink>);

#[async_trait]
impl Sink for NoIdFor {
    async fn find(&self, k: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.0.find(k).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let mut out = self.0.write(items).await?;
        for (item, o) in items.iter().zip(out.iter_mut()) {
            if item.source_key == "c001" {
                *o = WriteOutcome::Created(TargetRef::new("", None));
            }
        }
        Ok(out)
    }
}

#[tokio::test]
async fn rule4_a_success_without_a_document_id_is_unknown_and_reconciled() {
    let h = Harness::new();
    h.seed(2);
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        Arc::new(NoIdFor(h.sink.clone())),
    )
    .lookback_ms(0)
    .settle_ms(1_000)
    .quiet_period_ms(QUIET)
    .build()
    .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.unknown), (1, 1));
    let ids = h
        .store
        .id_map_get_many(FLOW, &["c001".into()])
        .await
        .unwrap();
    assert!(ids.is_empty(), "no entry with an empty target: {ids:?}");
    // Found by its natural key: the real id goes into the ID map, nothing is created twice.
    h.clock.advance(QUIET);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.reconciled, 1);
    let ids = h
        .store
        .id_map_get_many(FLOW, &["c001".into()])
        .await
        .unwrap();
    assert_eq!(ids["c001"].target.id, h.sink.documents_for("c001")[0].id);
    assert_eq!(h.sink.duplicates(), 0);
}

/// An ERP form whose coding rule numbers documents itself, ignoring the number sent.
struct RenumberingForm(Arc<MemorySink>);

#[async_trait]
impl Sink for RenumberingForm {
    async fn find(&self, k: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.0.find(k).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let out = self.0.write(items).await?;
        Ok(out
            .into_iter()
            .map(|o| match o {
                WriteOutcome::Created(t) => {
                    WriteOutcome::Created(TargetRef::new(t.id.clone(), Some(format!("KH{}", t.id))))
                }
                other => other,
            })
            .collect())
    }
    fn natural_key_is_number(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn rule4_a_create_that_gets_another_number_than_its_key_stops_the_flow() {
    let h = Harness::new();
    h.seed(2);
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        Arc::new(RenumberingForm(h.sink.clone())),
    )
    .lookback_ms(0)
    .settle_ms(1_000)
    .build()
    .unwrap();
    let e = h.engine.run(&flow).await.unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("natural key `c000` got the number `KH")),
        "{e}"
    );
    assert!(!e.is_retryable());
    // The documents made are kept (no duplicate later); the window is not passed.
    let ids = h
        .store
        .id_map_get_many(FLOW, &["c000".into(), "c001".into()])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(h.store.cursor(FLOW).await.unwrap().is_none());
}

#[tokio::test]
async fn rule4_a_record_gone_from_the_source_is_settled_once_and_gets_no_follow_ups() {
    let h = Harness::new();
    h.seed(2);
    h.source.write_back_into("erp_no");
    h.sink.fault_next_write(CallFault::TimeoutAfterApply);
    let flow = h.builder().write_back(h.source.clone()).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.unknown, 2);
    // One record is deleted in the source before the next run; its document exists.
    h.source.remove("c001");
    h.clock.advance(60_000);
    let r = h.engine.run(&flow).await.unwrap();
    // The gone record counts once, as gone, and nothing is written back into it.
    assert_eq!(
        (r.counts.gone, r.counts.reconciled, r.counts.written_back),
        (1, 1, 1)
    );
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
    // Its ID map is repaired: should it come back, it is not created twice.
    let ids = h
        .store
        .id_map_get_many(FLOW, &["c000".into(), "c001".into()])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(h.sink.duplicates(), 0);
}

#[tokio::test]
async fn rule4_per_record_unknown_outcome_is_reconciled() {
    let h = Harness::new();
    h.seed(2);
    h.sink.unknown_record("c001");
    let flow = h.flow();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.unknown), (1, 1));
    h.sink.heal();
    h.clock.advance(60_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.reconciled, 1);
    assert_eq!(h.sink.duplicates(), 0);
}

#[tokio::test]
async fn rule4_an_unknown_update_is_sent_again_even_after_the_value_is_changed_back() {
    let h = Harness::new();
    h.seed(1);
    let flow = h.flow();
    h.engine.run(&flow).await.unwrap();
    // Renamed in the CRM; the update reaches the ERP but its answer is lost.
    h.clock.advance(10_000);
    h.source.upsert(customer("c000", T0 + 5_000, "renamed"));
    h.sink.unknown_record("c000");
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.unknown, 1);
    assert_eq!(h.sink.documents_for("c000")[0].payload["FName"], "renamed");
    // The rename is undone in the CRM before the next run: the ERP must follow, although the
    // mapped payload equals the one last confirmed.
    h.sink.heal();
    h.clock.advance(QUIET);
    h.source.upsert(customer("c000", T0 + 15_000, "name 0"));
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.updated, 1);
    assert_eq!(h.sink.documents_for("c000")[0].payload["FName"], "name 0");
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
    // Confirmed now: the run after that sends nothing.
    h.clock.advance(10_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.updated, r.counts.read), (0, 0));
}

#[tokio::test]
async fn rule4_crash_between_write_and_settle_does_not_duplicate() {
    let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let h = Harness::with_store(Arc::new(CrashStore::new(inner.clone(), 2)));
    h.seed(2);
    assert!(h.engine.run(&h.flow()).await.is_err());
    // A new process on the surviving state.
    let after = Harness::with_store(inner.clone());
    after.clock.advance(QUIET);
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        h.sink.clone(),
    )
    .settle_ms(1_000)
    .quiet_period_ms(QUIET)
    .build()
    .unwrap();
    let r = after.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.reconciled, 2);
    assert_eq!(h.sink.documents().len(), 2);
    assert_eq!(h.sink.duplicates(), 0);
}

#[tokio::test]
async fn rule4_intent_never_sent_is_sent_once() {
    let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    // The write is refused before sending and the process dies before withdrawing the intent.
    let h = Harness::with_store(Arc::new(CrashStore::new(inner.clone(), 2)));
    h.seed(1);
    h.sink.fault_next_write(CallFault::FailBeforeSend);
    assert!(h.engine.run(&h.flow()).await.is_err());
    assert_eq!(inner.intents(FLOW).await.unwrap().len(), 1);
    let after = Harness::with_store(inner.clone());
    after.clock.advance(QUIET);
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        common::customers_mapping(),
        h.sink.clone(),
    )
    .quiet_period_ms(QUIET)
    .build()
    .unwrap();
    let r = after.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.reconciled, r.counts.created), (0, 1));
    assert_eq!(h.sink.documents().len(), 1);
}

#[tokio::test]
async fn rule4_failed_lookup_stops_the_run_rather_than_resend() {
    let h = Harness::new();
    h.seed(1);
    h.sink.fault_next_write(CallFault::TimeoutAfterApply);
    let flow = h.flow();
    h.engine.run(&flow).await.unwrap();
    h.sink.fail_finds();
    h.clock.advance(60_000);
    assert!(matches!(h.engine.run(&flow).await, Err(Error::Sink { .. })));
    assert_eq!(h.sink.documents().len(), 1);
    assert_eq!(
        h.store.intents(FLOW).await.unwrap().len(),
        1,
        "the intent stays on record"
    );
}

// ---- Rule 5: commit after write ------------------------------------------------------------

#[tokio::test]
async fn rule5_cursor_moves_only_past_settled_records() {
    let h = Harness::new();
    h.seed(5);
    let flow = h.builder().page_size(2).batch_size(2).build().unwrap();
    h.sink.pass_next_write();
    h.sink.fault_next_write(CallFault::FailBeforeSend); // the second batch is refused
    let e = h.engine.run(&flow).await.unwrap_err();
    assert!(matches!(e, Error::Sink { .. }));
    let cursor = h.store.cursor(FLOW).await.unwrap().unwrap();
    assert_eq!(
        cursor.version,
        T0 - 60_000 + 1,
        "cursor at the last record of the settled batch"
    );
    assert!(
        h.store.intents(FLOW).await.unwrap().is_empty(),
        "unsent intents are withdrawn"
    );
    h.clock.advance(1_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 3);
    assert_eq!(h.sink.documents().len(), 5);
    assert_eq!(h.sink.duplicates(), 0);
}

#[tokio::test]
async fn rule5_crash_at_any_point_loses_nothing_and_duplicates_nothing() {
    // 7 records in batches of 2 with a failure and a write-back: crash at every
    // store transaction in turn, then recover.
    for crash_at in 1..=12 {
        let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let crashing = Arc::new(CrashStore::new(inner.clone(), crash_at));
        let h = Harness::with_store(crashing.clone());
        h.seed(7);
        h.sink.fail_record("c003", "bad data");
        h.source.write_back_into("erp_no");
        let flow = h
            .builder()
            .page_size(3)
            .batch_size(2)
            .write_back(h.source.clone())
            .build()
            .unwrap();
        let first = h.engine.run(&flow).await;
        let recovered = Harness::with_store(inner.clone());
        recovered.clock.set(h.clock.now_ms_() + QUIET + 10_000);
        let flow = Flow::builder(
            FLOW,
            h.source.clone(),
            common::customers_mapping(),
            h.sink.clone(),
        )
        .lookback_ms(0)
        .settle_ms(1_000)
        .quiet_period_ms(QUIET)
        .page_size(3)
        .batch_size(2)
        .write_back(h.source.clone())
        .build()
        .unwrap();
        recovered.engine.run(&flow).await.unwrap();
        assert_eq!(
            h.sink.duplicates(),
            0,
            "crash at apply #{crash_at} ({first:?})"
        );
        assert_eq!(h.sink.documents().len(), 6, "crash at apply #{crash_at}");
        let keys: Vec<String> = (0..7).map(|i| format!("c{i:03}")).collect();
        let ids = inner.id_map_get_many(FLOW, &keys).await.unwrap();
        assert_eq!(ids.len(), 6, "crash at apply #{crash_at}");
        let dead = inner.dead_letters(FLOW, None, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].source_key, "c003");
        assert!(inner.intents(FLOW).await.unwrap().is_empty());
        for k in keys.iter().filter(|k| *k != "c003") {
            assert!(
                h.source.record(k).unwrap().body.get("erp_no").is_some(),
                "write-back of {k}"
            );
        }
    }
}

// ---- Rule 6: dependencies ------------------------------------------------------------------

fn orders_mapping() -> Arc<DeclarativeMapping> {
    Arc::new(
        DeclarativeMapping::from_toml(
            r#"
            natural_key = "F_CrmId"
            [[fields]]
            target = "F_CrmId"
            source = "_id"
            [[fields]]
            target = "FCustId"
            lookup = { flow = "customers", from = "account_id", take = "number" }
            reference = "FNumber"
            required = true
            [[entries]]
            target = "FSaleOrderEntry"
            source = "lines"
            [[entries.fields]]
            target = "FQty"
            source = "quantity"
            transforms = ["number"]
            "#,
        )
        .unwrap(),
    )
}

fn order(key: &str, version: i64, account: &str) -> Record {
    Record::new(
        key,
        version,
        json!({"_id": key, "account_id": account, "lines": [{"quantity": "2"}]}),
    )
}

struct Orders {
    source: Arc<MemorySource>,
    sink: Arc<MemorySink>,
}

impl Orders {
    fn new() -> Self {
        Self {
            source: Arc::new(MemorySource::new()),
            sink: Arc::new(MemorySink::new()),
        }
    }
    fn flow(&self, max_defer: u32) -> Flow {
        Flow::builder(
            "orders",
            self.source.clone(),
            orders_mapping(),
            self.sink.clone(),
        )
        .depends_on("customers")
        .lookback_ms(0)
        .settle_ms(1_000)
        .max_defer_attempts(max_defer)
        .build()
        .unwrap()
    }
}

#[tokio::test]
async fn rule6_order_waits_for_its_customer_then_syncs() {
    let h = Harness::new();
    let o = Orders::new();
    o.source.upsert(order("o1", T0 - 10_000, "c000"));
    let orders = o.flow(5);
    let r = h.engine.run(&orders).await.unwrap();
    assert_eq!((r.counts.deferred, r.counts.created), (1, 0));
    assert!(
        o.sink.documents().is_empty(),
        "never sent with a dangling reference"
    );
    assert_eq!(
        h.store.deferrals("orders", None, 10).await.unwrap()[0].missing_key,
        "c000"
    );

    h.seed(1);
    h.engine.run(&h.flow()).await.unwrap();
    h.clock.advance(60_000);
    // The order itself did not change: it is retried from the deferral list.
    let r = h.engine.run(&orders).await.unwrap();
    assert_eq!(r.counts.created, 1);
    let number = h.sink.documents()[0].number.clone();
    assert_eq!(
        o.sink.documents()[0].payload["FCustId"],
        json!({"FNumber": number})
    );
    assert_eq!(
        o.sink.documents()[0].payload["FSaleOrderEntry"],
        json!([{"FQty": 2}])
    );
    assert!(
        h.store
            .deferrals("orders", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_stop_signal_ends_the_retry_of_deferred_records_after_the_group_in_flight() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let h = Harness::new();
    let o = Orders::new();
    for i in 0..3 {
        o.source
            .upsert(order(&format!("o{i}"), T0 - 10_000, &format!("c{i:03}")));
    }
    let orders = || {
        Flow::builder("orders", o.source.clone(), orders_mapping(), o.sink.clone())
            .depends_on("customers")
            .lookback_ms(0)
            .settle_ms(1_000)
            .batch_size(1)
            .concurrency(1)
            .build()
            .unwrap()
    };
    let r = h.engine.run(&orders()).await.unwrap();
    assert_eq!(r.counts.deferred, 3);
    h.seed(3);
    h.engine.run(&h.flow()).await.unwrap();
    h.clock.advance(60_000);

    // Stopped from the start: one group of deferred records (one order), then nothing more.
    let stop = Arc::new(AtomicBool::new(true));
    let engine = sync_core::Engine::new(h.store.clone())
        .with_clock(h.clock.clone())
        .with_stop_signal(stop.clone());
    let first = engine.run(&orders()).await.unwrap();
    assert!(first.interrupted);
    // The one deferred order re-read; the window is not read at all.
    assert_eq!((first.counts.created, first.counts.read), (1, 1));
    assert_eq!(
        h.store.deferrals("orders", None, 10).await.unwrap().len(),
        2
    );

    stop.store(false, Ordering::SeqCst);
    let second = h.engine.run(&orders()).await.unwrap();
    assert!(!second.interrupted);
    assert_eq!(second.counts.created, 2);
    assert_eq!(o.sink.documents().len(), 3);
    assert_eq!(o.sink.duplicates(), 0);
}

#[tokio::test]
async fn rule6_deferral_is_bounded_then_dead_lettered() {
    let h = Harness::new();
    let o = Orders::new();
    o.source.upsert(order("o1", T0 - 10_000, "nobody"));
    let orders = o.flow(2);
    for run in 1..=2 {
        let r = h.engine.run(&orders).await.unwrap();
        assert_eq!(r.counts.deferred, 1, "run {run}");
        h.clock.advance(60_000);
    }
    let r = h.engine.run(&orders).await.unwrap();
    assert_eq!(r.counts.dead_lettered, 1);
    let dead = h.store.dead_letters("orders", None, 10).await.unwrap();
    assert!(
        dead[0].reason.contains("`nobody`") && dead[0].reason.contains("after 2 runs"),
        "{}",
        dead[0].reason
    );
    assert!(
        h.store
            .deferrals("orders", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rule6_run_all_runs_flows_in_dependency_order() {
    let h = Harness::new();
    h.seed(1);
    let o = Orders::new();
    o.source.upsert(order("o1", T0 - 10_000, "c000"));
    let (orders, customers) = (o.flow(5), h.flow());
    let results = h.engine.run_all(&[&orders, &customers]).await.unwrap();
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["customers", "orders"]);
    let orders_report = results[1].1.as_ref().unwrap();
    assert_eq!(
        (orders_report.counts.created, orders_report.counts.deferred),
        (1, 0)
    );
}

#[tokio::test]
async fn rule6_dependency_problems_are_reported() {
    let h = Harness::new();
    let o = Orders::new();
    let orders = o.flow(5);
    assert!(matches!(
        h.engine.run_all(&[&orders]).await,
        Err(Error::UnknownDependency { .. })
    ));
    let a = h.builder().depends_on("orders").build().unwrap();
    assert!(matches!(
        h.engine.run_all(&[&a, &orders]).await,
        Err(Error::DependencyCycle(_))
    ));
    // A lookup into a flow that is not a dependency is refused when the flow is built.
    let e = Flow::builder("orders", o.source.clone(), orders_mapping(), o.sink.clone()).build();
    assert!(matches!(e, Err(Error::Config(_))));
}

#[tokio::test]
async fn rule6_dependent_flow_is_skipped_when_its_dependency_fails_for_good() {
    let h = Harness::new();
    h.seed(1);
    h.source.refuse_reads();
    let o = Orders::new();
    let (orders, customers) = (o.flow(5), h.flow());
    let results = h.engine.run_all(&[&customers, &orders]).await.unwrap();
    assert!(results[0].1.is_err());
    assert!(matches!(results[1].1, Err(Error::DependencyFailed { .. })));
    // A transient failure of the dependency does not hold the dependent flow back: its
    // records wait for their customer (deferral) instead.
    h.source.heal_reads();
    h.source.fail_next_reads(1);
    o.source.upsert(order("o1", T0 - 30_000, "c000"));
    let results = h.engine.run_all(&[&customers, &orders]).await.unwrap();
    assert!(results[0].1.as_ref().is_err_and(Error::is_retryable));
    let report = results[1].1.as_ref().unwrap();
    assert_eq!(report.counts.deferred, 1);
}

// ---- Rule 7: failures are per record -------------------------------------------------------

#[tokio::test]
async fn rule7_one_bad_record_is_dead_lettered_and_rerun_after_a_fix() {
    let h = Harness::new();
    h.seed(3);
    let msg = "违反字段唯一性要求：编码唯一。[C-c001]在当前系统中已经被使用。";
    h.sink.fail_record("c001", msg);
    let flow = h.flow();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.dead_lettered), (2, 1));
    let dead = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert_eq!(
        (
            dead[0].source_key.as_str(),
            dead[0].reason.as_str(),
            dead[0].attempts
        ),
        ("c001", msg, 1)
    );
    assert_eq!(dead[0].stage, Stage::Write);
    assert_eq!(dead[0].payload.as_ref().unwrap()["FName"], "name 1");
    assert!(
        h.store.cursor(FLOW).await.unwrap().is_some(),
        "the run went on and committed"
    );

    // Still broken: one more attempt.
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!(r.counts.dead_lettered, 1);
    assert_eq!(
        h.store.dead_letters(FLOW, None, 10).await.unwrap()[0].attempts,
        2
    );

    h.sink.heal();
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1);
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.sink.documents().len(), 3);
}

#[tokio::test]
async fn rule7_mapping_failure_is_dead_lettered_with_the_reason() {
    let h = Harness::new();
    h.seed(2);
    h.source.upsert(Record::new(
        "blank",
        T0 - 9_000,
        json!({"_id": "blank", "name": ""}),
    ));
    let r = h.engine.run(&h.flow()).await.unwrap();
    assert_eq!((r.counts.created, r.counts.dead_lettered), (2, 1));
    let dead = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert_eq!(dead[0].stage, Stage::Map);
    assert!(
        dead[0].reason.contains("FName") && dead[0].reason.contains("required"),
        "{}",
        dead[0].reason
    );
    assert!(matches!(
        r.failures[0].outcome,
        RecordOutcome::DeadLettered { .. }
    ));
}

// ---- Rule 8: batching ----------------------------------------------------------------------

#[tokio::test]
async fn rule8_writes_in_batches_reads_in_full_pages() {
    assert_eq!(FlowOptions::default().batch_size, 100);
    let h = Harness::new();
    h.seed(250);
    let flow = h.builder().page_size(100).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 250);
    assert_eq!(h.sink.batch_sizes(), vec![100, 100, 50]);
    assert_eq!(h.source.reads(), 3);
    assert_eq!(h.sink.max_in_flight(), 1);
}

#[tokio::test]
async fn rule8_independent_batches_run_with_bounded_concurrency() {
    let h = Harness::new();
    h.seed(100);
    let flow = h
        .builder()
        .page_size(100)
        .batch_size(10)
        .concurrency(3)
        .build()
        .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 100);
    assert_eq!(h.sink.max_in_flight(), 3);
    assert!(h.sink.batch_sizes().iter().all(|n| *n <= 10));
}

#[tokio::test]
async fn rule8_a_group_gathers_pages_so_that_batches_of_small_pages_go_out_together() {
    // Pages of 10 and batches of 10: three batches in flight need a group of three pages.
    let h = Harness::new();
    h.seed(30);
    let flow = h
        .builder()
        .page_size(10)
        .batch_size(10)
        .concurrency(3)
        .build()
        .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.batches), (30, 3));
    assert_eq!(h.sink.max_in_flight(), 3);
}

// ---- Rule 9: write-back and post-save actions ----------------------------------------------

#[tokio::test]
async fn rule9_number_is_written_back_and_actions_run_per_record() {
    let h = Harness::new();
    h.seed(3);
    h.source.write_back_into("field_erp_no__c");
    h.sink.fail_action("Audit", "c002");
    let flow = h
        .builder()
        .write_back(h.source.clone())
        .actions(["Submit", "Audit"])
        .build()
        .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.written_back,
            r.counts.actions_done
        ),
        (3, 3, 5)
    );
    for d in h.sink.documents() {
        let rec = h.source.record(&d.source_key).unwrap();
        assert_eq!(rec.body["field_erp_no__c"], json!(d.number));
    }
    let b = &h.sink.documents_for("c002")[0];
    assert_eq!(b.actions, ["Submit"]);
    let dead = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert_eq!(dead[0].stage, Stage::Action("Audit".into()));

    // The write-back changed the CRM records; the next run sees them and writes nothing.
    h.clock.advance(60_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (r.counts.read, r.counts.unchanged, r.counts.created),
        (3, 3, 0)
    );
    assert_eq!(
        h.store.dead_letters(FLOW, None, 10).await.unwrap().len(),
        1,
        "audit still pending"
    );

    h.sink.heal();
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!(r.counts.actions_done, 1);
    assert_eq!(h.sink.documents_for("c002")[0].actions, ["Submit", "Audit"]);
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A write-back that answers only once `ready` says so, counting the records it was given.
struct GatedWriteBack {
    inner: Arc<MemorySource>,
    ready: Box<dyn Fn() -> bool + Send + Sync>,
    items: std::sync::atomic::AtomicUsize,
    /// Every call fails as a whole.
    down: std::sync::atomic::AtomicBool,
}

impl GatedWriteBack {
    fn new(inner: Arc<MemorySource>, ready: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self {
            inner,
            ready: Box::new(ready),
            items: std::sync::atomic::AtomicUsize::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl SourceWriteBack for GatedWriteBack {
    async fn write_back(
        &self,
        items: &[WriteBackItem],
    ) -> Result<Vec<WriteBackOutcome>, ConnectorError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ConnectorError::transient("HTTP 502 from the CRM"));
        }
        while !(self.ready)() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.items
            .fetch_add(items.len(), std::sync::atomic::Ordering::SeqCst);
        self.inner.write_back(items).await
    }

    fn written_back(&self, record: &Record) -> Option<String> {
        self.inner.written_back(record)
    }
}

// Paused time: the gate's polling and the drain's idle waits advance no real clock.
#[tokio::test(start_paused = true)]
async fn rule9_the_sink_side_never_waits_on_write_backs() {
    // Each write-back answers only once every record is in the sink: a run that waited for a
    // group's write-backs before writing the next group would never end.
    let h = Harness::new();
    h.seed(300);
    h.source.write_back_into("field_erp_no__c");
    let sink = h.sink.clone();
    let wb = Arc::new(GatedWriteBack::new(h.source.clone(), move || {
        sink.documents().len() == 300
    }));
    let flow = h
        .builder()
        .page_size(100)
        .batch_size(100)
        .write_back(wb.clone())
        .build()
        .unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), h.engine.run(&flow))
        .await
        .expect("the writes went on while the write-backs waited")
        .unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.write_backs_queued,
            r.counts.written_back,
            r.write_backs_pending,
            r.counts.batches
        ),
        (300, 300, 300, 0, 3)
    );
    for d in h.sink.documents() {
        let rec = h.source.record(&d.source_key).unwrap();
        assert_eq!(rec.body["field_erp_no__c"], json!(d.number));
    }
    assert_eq!(
        h.store.queued_count(FLOW, WRITE_BACK).await.unwrap(),
        0,
        "the queue is drained"
    );
}

// Paused time: the gate's polling and the drain's idle waits advance no real clock.
#[tokio::test(start_paused = true)]
async fn rule9_write_backs_queued_when_the_process_dies_are_sent_by_the_next_run() {
    let h = Harness::new();
    h.seed(30);
    h.source.write_back_into("field_erp_no__c");
    let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = open.clone();
    let wb = Arc::new(GatedWriteBack::new(h.source.clone(), move || {
        gate.load(std::sync::atomic::Ordering::SeqCst)
    }));
    let flow = h.builder().write_back(wb.clone()).build().unwrap();
    // The process dies (its future is dropped) once the documents are written and their
    // write-backs queued, before any write-back went out.
    let store = h.store.clone();
    tokio::select! {
        _ = h.engine.run(&flow) => panic!("the run cannot end while its write-backs wait"),
        () = async {
            while store.queued_count(FLOW, WRITE_BACK).await.unwrap() < 30 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        } => {}
    }
    assert_eq!(h.store.queued_count(FLOW, WRITE_BACK).await.unwrap(), 30);
    assert_eq!(wb.items.load(std::sync::atomic::Ordering::SeqCst), 0);

    open.store(true, std::sync::atomic::Ordering::SeqCst);
    h.clock.advance(60_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.written_back,
            r.write_backs_pending
        ),
        (0, 30, 0)
    );
    assert_eq!(h.sink.documents().len(), 30, "nothing written twice");
    for d in h.sink.documents() {
        let rec = h.source.record(&d.source_key).unwrap();
        assert_eq!(rec.body["field_erp_no__c"], json!(d.number));
    }
}

// Paused time: the gate's polling and the drain's idle waits advance no real clock.
#[tokio::test(start_paused = true)]
async fn rule9_write_backs_of_a_source_that_is_down_stay_queued_for_the_next_run() {
    let h = Harness::new();
    h.seed(25);
    h.source.write_back_into("field_erp_no__c");
    let wb = Arc::new(GatedWriteBack::new(h.source.clone(), || true));
    wb.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let flow = h.builder().write_back(wb.clone()).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.written_back,
            r.write_backs_pending
        ),
        (25, 0, 25)
    );
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a call that failed as a whole is no record's failure"
    );

    wb.down.store(false, std::sync::atomic::Ordering::SeqCst);
    h.clock.advance(60_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.written_back, r.write_backs_pending), (25, 0));
    assert_eq!(h.sink.documents().len(), 25);
}

#[tokio::test]
async fn rule9_a_write_back_the_source_already_holds_is_not_sent() {
    let h = Harness::new();
    // The ERP number is the CRM's account number, and the write-back field holds it already
    // for one record (a rebuild, an import, a field the mapping reads the number from).
    for (key, held) in [("c1", Some("C-c1")), ("c2", None)] {
        let mut body = json!({"_id": key, "name": key, "account_no": format!("C-{key}")});
        if let Some(v) = held {
            body["field_erp_no__c"] = json!(v);
        }
        h.source.upsert(Record::new(key, T0 - 10_000, body));
    }
    h.source.write_back_into("field_erp_no__c");
    let mapping = DeclarativeMapping::from_toml(
        r#"
        natural_key = "F_CrmId"
        [[fields]]
        target = "FName"
        source = "name"
        [[fields]]
        target = "F_CrmId"
        source = "_id"
        [[fields]]
        target = "FNumber"
        source = "account_no"
        "#,
    )
    .unwrap();
    let wb = Arc::new(GatedWriteBack::new(h.source.clone(), || true));
    let flow = Flow::builder(FLOW, h.source.clone(), Arc::new(mapping), h.sink.clone())
        .lookback_ms(0)
        .settle_ms(1_000)
        .write_back(wb.clone())
        .build()
        .unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.write_backs_skipped,
            r.counts.write_backs_queued,
            r.counts.written_back
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(wb.items.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        h.source.record("c2").unwrap().body["field_erp_no__c"],
        json!("C-c2")
    );
}

#[tokio::test]
async fn rule9_a_failed_audit_waits_beside_a_later_failed_write_and_both_are_retried() {
    let h = Harness::new();
    h.seed(1);
    h.sink.fail_action("Audit", "c000");
    let flow = h.builder().actions(["Audit"]).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.dead_lettered), (1, 1));
    // The record changes and its update is refused: a second letter, the first one stays.
    h.clock.advance(10_000);
    h.source.upsert(customer("c000", T0 + 5_000, "renamed"));
    h.sink.fail_record("c000", "字段不合法");
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.dead_lettered, 1);
    let stages: Vec<Stage> = h
        .store
        .dead_letters(FLOW, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.stage)
        .collect();
    assert_eq!(stages, [Stage::Action("Audit".into()), Stage::Write]);
    // Fixed: both are done by one re-run, and nothing is left on the list.
    h.sink.heal();
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!((r.counts.updated, r.counts.actions_done), (1, 1));
    let doc = &h.sink.documents_for("c000")[0];
    assert_eq!(
        (doc.payload["FName"].as_str(), doc.actions.len()),
        (Some("renamed"), 1)
    );
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rule9_an_action_call_that_failed_transiently_is_retried_by_a_later_run() {
    let h = Harness::new();
    h.seed(1);
    // Submit's call fails as a whole, nothing applied (a session lost twice, a 5xx).
    h.sink.fail_next_action_calls(1);
    let flow = h.builder().actions(["Submit"]).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.dead_lettered), (1, 1));
    let letters = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert!(
        matches!(&letters[..], [d] if d.retryable && d.stage == Stage::Action("Submit".into())),
        "{letters:?}"
    );
    // No person needed: a later run retries it once its time has come.
    h.clock.advance(60 * 60_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.actions_done, 1);
    assert_eq!(h.sink.documents_for("c000")[0].actions, ["Submit"]);
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rule9_failed_write_back_is_dead_lettered_and_retried() {
    let h = Harness::new();
    h.seed(1);
    h.source.write_back_into("erp_no");
    h.source.fail_write_back_for("c000");
    let flow = h.builder().write_back(h.source.clone()).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.dead_lettered), (1, 1));
    assert_eq!(
        h.store.dead_letters(FLOW, None, 10).await.unwrap()[0].stage,
        Stage::WriteBack
    );
    h.source.heal_write_back_for("c000");
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!((r.counts.written_back, r.counts.created), (1, 0));
    assert_eq!(
        h.source.record("c000").unwrap().body["erp_no"],
        json!(h.sink.documents()[0].number)
    );
}

#[tokio::test]
async fn rule9_an_action_that_must_not_repeat_is_not_sent_again_when_its_answer_is_lost() {
    let h = Harness::new();
    h.seed(3);
    h.sink.once_action("notify");
    h.sink.lose_action_answer("notify", "c001");
    let flow = h.builder().actions(["notify"]).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.actions_done,
            r.counts.actions_unknown,
            r.counts.dead_lettered
        ),
        (3, 2, 1, 0)
    );
    assert!(matches!(&r.failures[..], [f] if f.source_key == "c001"
            && matches!(&f.outcome, RecordOutcome::Unknown { reason } if reason.contains("not sent again"))));
    // Kept for a person on the dead-letter list, so that no lost report can hide it; neither
    // a re-run of the dead letters nor the next runs send it again.
    let letters = h.store.dead_letters(FLOW, None, 10).await.unwrap();
    assert!(
        matches!(&letters[..], [d] if d.source_key == "c001"
            && d.stage == Stage::Action("notify".into())
            && !d.retryable
            && d.reason.starts_with("outcome unknown: `notify` may have happened")),
        "{letters:?}"
    );
    h.sink.heal();
    h.engine.rerun_dead_letters(&flow).await.unwrap();
    h.clock.advance(60 * 60_000);
    h.engine.run(&flow).await.unwrap();
    for d in h.sink.documents() {
        assert_eq!(d.actions, ["notify"], "{}", d.source_key);
    }
    assert_eq!(h.store.dead_letters(FLOW, None, 10).await.unwrap().len(), 1);
    // The person checked with the owner and drops it.
    let dropped = h
        .engine
        .drop_dead_letters(&flow, &["c001".into()])
        .await
        .unwrap();
    assert_eq!(dropped, ["c001"]);
}

#[tokio::test]
async fn rule9_a_refused_action_that_must_not_repeat_is_retried_once_after_a_fix() {
    let h = Harness::new();
    h.seed(2);
    h.sink.once_action("notify");
    h.sink.fail_action("notify", "c001");
    let flow = h.builder().actions(["notify"]).build().unwrap();
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.actions_done, r.counts.dead_lettered), (1, 1));
    h.sink.heal();
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!(r.counts.actions_done, 1);
    h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!(h.sink.documents_for("c001")[0].actions, ["notify"]);
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A sink whose `notify` never answers once `.1` messages have gone out: the process is
/// killed while it waits.
struct DiesWhileNotifying(Arc<MemorySink>, std::sync::atomic::AtomicUsize);

#[async_trait]
impl Sink for DiesWhileNotifying {
    async fn find(&self, k: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.0.find(k).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        self.0.write(items).await
    }
    async fn action(
        &self,
        action: &str,
        targets: &[TargetRef],
    ) -> Result<Vec<sync_core::ActionOutcome>, ConnectorError> {
        if action == "notify" && self.1.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        self.0.action(action, targets).await
    }
    fn action_repeatable(&self, action: &str) -> bool {
        action != "notify"
    }
}

/// A sink whose messages (`notify`) answer only once `.1` documents are in it.
struct GatedNotify(Arc<MemorySink>, usize);

#[async_trait]
impl Sink for GatedNotify {
    async fn find(&self, k: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.0.find(k).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        self.0.write(items).await
    }
    async fn action(
        &self,
        action: &str,
        targets: &[TargetRef],
    ) -> Result<Vec<sync_core::ActionOutcome>, ConnectorError> {
        while action == "notify" && self.0.documents().len() < self.1 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.0.action(action, targets).await
    }
    fn action_repeatable(&self, action: &str) -> bool {
        action != "notify"
    }
}

// Paused time: the gate's polling and the drain's idle waits advance no real clock.
#[tokio::test(start_paused = true)]
async fn rule9_the_sink_side_never_waits_on_messages() {
    // Each message answers only once every record is in the sink: a run that sent a group's
    // messages before writing the next group would never end.
    let h = Harness::new();
    h.seed(300);
    h.sink.once_action("notify");
    let gated = Arc::new(GatedNotify(h.sink.clone(), 300));
    let flow = Flow::builder(FLOW, h.source.clone(), common::customers_mapping(), gated)
        .lookback_ms(0)
        .settle_ms(1_000)
        .page_size(100)
        .batch_size(100)
        .concurrency(1)
        .actions(["Submit", "notify"])
        .build()
        .unwrap();
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), h.engine.run(&flow))
        .await
        .expect("the writes went on while the messages waited")
        .unwrap();
    assert_eq!(
        (
            r.counts.created,
            r.counts.sends_queued,
            r.counts.actions_done,
            r.counts.actions_unknown,
            r.sends_pending,
            r.counts.batches
        ),
        (300, 300, 600, 0, 0, 3)
    );
    for d in h.sink.documents() {
        assert_eq!(d.actions, ["Submit", "notify"], "{}", d.source_key);
    }
    assert!(h.store.sends(FLOW).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn rule9_a_message_interrupted_by_a_kill_is_reported_unknown_not_lost_silently() {
    let h = Harness::new();
    h.seed(2);
    let dying = Arc::new(DiesWhileNotifying(
        h.sink.clone(),
        std::sync::atomic::AtomicUsize::new(0),
    ));
    let flow = Flow::builder(FLOW, h.source.clone(), common::customers_mapping(), dying)
        .lookback_ms(0)
        .settle_ms(1_000)
        .actions(["notify"])
        .build()
        .unwrap();
    // Killed while sending: the run's future is dropped mid-call. Both messages went out at
    // once (the drain sends `follow_up_concurrency` at a time); c001's answer came and settled
    // it, c000's never came.
    let killed =
        tokio::time::timeout(std::time::Duration::from_secs(60), h.engine.run(&flow)).await;
    assert!(killed.is_err());
    let sends: Vec<(String, bool)> = h
        .store
        .sends(FLOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source_key, s.started_at.is_some()))
        .collect();
    assert_eq!(sends, [("c000".into(), true)]);
    // The next process cannot know whether the message being sent went out: it says so, once,
    // and does not send it again.
    let after = h.engine_named("restarted");
    let healthy = h.builder().actions(["notify"]).build().unwrap();
    h.sink.once_action("notify");
    h.clock.advance(700_000);
    let r = after.run(&healthy).await.unwrap();
    assert_eq!((r.counts.actions_unknown, r.counts.actions_done), (1, 0));
    let keys: Vec<&str> = r.failures.iter().map(|f| f.source_key.as_str()).collect();
    assert_eq!(keys, ["c000"]);
    assert!(h.store.sends(FLOW).await.unwrap().is_empty());
    let notified: Vec<(String, usize)> = h
        .sink
        .documents()
        .iter()
        .map(|d| (d.source_key.clone(), d.actions.len()))
        .collect();
    assert_eq!(notified, [("c000".into(), 0), ("c001".into(), 1)]);
    let r = after.run(&healthy).await.unwrap();
    assert_eq!((r.counts.actions_unknown, r.counts.actions_done), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn rule9_messages_queued_behind_a_killed_one_are_sent_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> =
        Arc::new(sync_core::SqliteStore::open(dir.path().join("s.sqlite3")).unwrap());
    let h = Harness::with_store(store);
    h.seed(5);
    h.sink.once_action("notify");
    let dying = Arc::new(DiesWhileNotifying(
        h.sink.clone(),
        std::sync::atomic::AtomicUsize::new(2),
    ));
    // Two at a time: c000 and c001 go out and settle; of the next two, c002 never answers
    // and c003 does; c004 waits its turn behind the round that never ends.
    let flow = Flow::builder(FLOW, h.source.clone(), common::customers_mapping(), dying)
        .lookback_ms(0)
        .settle_ms(1_000)
        .actions(["notify"])
        .follow_up_concurrency(2)
        .build()
        .unwrap();
    let killed =
        tokio::time::timeout(std::time::Duration::from_secs(60), h.engine.run(&flow)).await;
    assert!(killed.is_err());
    let sends: Vec<(String, bool)> = h
        .store
        .sends(FLOW)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source_key, s.started_at.is_some()))
        .collect();
    assert_eq!(sends, [("c002".into(), true), ("c004".into(), false)]);
    let after = h.engine_named("restarted");
    let healthy = h.builder().actions(["notify"]).build().unwrap();
    h.clock.advance(700_000);
    let r = after.run(&healthy).await.unwrap();
    assert_eq!((r.counts.actions_unknown, r.counts.actions_done), (1, 1));
    let notified: Vec<usize> = h.sink.documents().iter().map(|d| d.actions.len()).collect();
    assert_eq!(notified, [1, 1, 0, 1, 1]);
    assert!(h.store.sends(FLOW).await.unwrap().is_empty());
}

#[tokio::test]
async fn rule9_a_crash_repeats_repeatable_actions_and_never_the_others() {
    // Submit may be sent again after a crash (it reports "already done"); notify must not.
    for crash_at in 1..=10 {
        let inner: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let h = Harness::with_store(Arc::new(CrashStore::new(inner.clone(), crash_at)));
        h.seed(5);
        h.sink.once_action("notify");
        let flow = h
            .builder()
            .page_size(3)
            .batch_size(2)
            .actions(["Submit", "notify"])
            .build()
            .unwrap();
        let first = h.engine.run(&flow).await;
        let recovered = Harness::with_store(inner.clone());
        recovered.clock.set(h.clock.now_ms_() + QUIET + 10_000);
        let flow = Flow::builder(
            FLOW,
            h.source.clone(),
            common::customers_mapping(),
            h.sink.clone(),
        )
        .lookback_ms(0)
        .settle_ms(1_000)
        .quiet_period_ms(QUIET)
        .page_size(3)
        .batch_size(2)
        .actions(["Submit", "notify"])
        .build()
        .unwrap();
        let report = recovered.engine.run(&flow).await.unwrap();
        // A message the crash may have interrupted is reported, never silently taken as sent.
        let reported: Vec<&str> = report
            .failures
            .iter()
            .filter(|f| matches!(&f.outcome, RecordOutcome::Unknown { reason } if reason.contains("notify")))
            .map(|f| f.source_key.as_str())
            .collect();
        assert!(recovered.store.sends(FLOW).await.unwrap().is_empty());
        assert_eq!(h.sink.duplicates(), 0, "crash at apply #{crash_at}");
        assert_eq!(h.sink.documents().len(), 5, "crash at apply #{crash_at}");
        for d in h.sink.documents() {
            let count = |a: &str| d.actions.iter().filter(|x| *x == a).count();
            assert!(
                count("Submit") >= 1,
                "crash at apply #{crash_at}: {} not submitted ({first:?})",
                d.source_key
            );
            assert!(
                count("notify") <= 1,
                "crash at apply #{crash_at}: {} notified {} times",
                d.source_key,
                count("notify")
            );
            assert!(
                count("notify") == 1 || reported.contains(&d.source_key.as_str()),
                "crash at apply #{crash_at}: {} not notified and not reported ({first:?}, {:?})",
                d.source_key,
                report.failures
            );
        }
    }
}

#[tokio::test]
async fn rule7_a_dropped_dead_letter_is_not_retried_until_its_record_changes() {
    let h = Harness::new();
    h.seed(2);
    h.sink.fail_record("c001", "客户不存在");
    let flow = h.flow();
    h.engine.run(&flow).await.unwrap();
    let dropped = h
        .engine
        .drop_dead_letters(&flow, &["c001".into(), "c000".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(dropped, ["c001"]);
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    h.sink.heal();
    let r = h.engine.rerun_dead_letters(&flow).await.unwrap();
    assert_eq!(r.counts.read, 0);
    h.clock.advance(60_000);
    h.engine.run(&flow).await.unwrap();
    assert!(h.sink.documents_for("c001").is_empty());
    h.source
        .upsert(customer("c001", h.clock.now_ms_(), "renamed"));
    h.clock.advance(2_000);
    let r = h.engine.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1);
}

// ---- Rule 10: dry run ----------------------------------------------------------------------

#[tokio::test]
async fn rule10_dry_run_reports_payloads_and_writes_nothing() {
    let h = Harness::new();
    h.seed(3);
    let flow = h.flow();
    let r = h.engine.dry_run(&flow).await.unwrap();
    assert_eq!(r.planned.len(), 3);
    assert_eq!(
        r.planned[0].payload,
        json!({"FName": "name 0", "F_CrmId": "c000"})
    );
    assert!(r.planned[0].target.is_none());
    assert!(h.sink.documents().is_empty());
    assert!(h.store.cursor(FLOW).await.unwrap().is_none());
    assert!(h.store.intents(FLOW).await.unwrap().is_empty());
    assert!(h.store.runs(FLOW, 10).await.unwrap().is_empty());
    // No lease was taken: another owner can run right away.
    h.engine_named("other").run(&flow).await.unwrap();
    assert_eq!(h.sink.documents().len(), 3);
}

// ---- Leases, rebuild, run history, validation ----------------------------------------------

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_lease_of_a_killed_process_of_this_host_is_taken_over_at_once() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let h = Harness::new();
    h.seed(1);
    let flow = h.flow();
    // A process of this host that still runs (this one) keeps its lease.
    let alive = format!("{}:pid{}-ab-7", host.trim(), std::process::id());
    h.store
        .acquire_lease(FLOW, &alive, T0, 600_000)
        .await
        .unwrap();
    let default_owner = sync_core::Engine::new(h.store.clone()).with_clock(h.clock.clone());
    assert!(matches!(
        default_owner.run(&flow).await,
        Err(Error::FlowLocked { .. })
    ));
    h.store
        .release_lease(&sync_core::state::Lease {
            flow: FLOW.into(),
            owner: alive,
            expires_at: 0,
        })
        .await
        .unwrap();
    // One that was killed with its lease held is taken over without waiting 10 minutes.
    let killed = format!("{}:pid{dead}-ab-0", host.trim());
    h.store
        .acquire_lease(FLOW, &killed, T0, 600_000)
        .await
        .unwrap();
    let r = default_owner.run(&flow).await.unwrap();
    assert_eq!(r.counts.created, 1);
    // The same holder on another host is waited for.
    h.store
        .acquire_lease(FLOW, &format!("elsewhere:pid{dead}-ab-0"), T0, 600_000)
        .await
        .unwrap();
    assert!(matches!(
        default_owner.run(&flow).await,
        Err(Error::FlowLocked { .. })
    ));
}

#[tokio::test]
async fn second_owner_is_refused_while_the_lease_is_held() {
    let h = Harness::new();
    h.seed(1);
    let flow = h.flow();
    h.store
        .acquire_lease(FLOW, "someone-else", T0, 60_000)
        .await
        .unwrap();
    match h.engine.run(&flow).await {
        Err(Error::FlowLocked {
            owner,
            expires_at_ms,
            ..
        }) => {
            assert_eq!(
                (owner.as_str(), expires_at_ms),
                ("someone-else", T0 + 60_000)
            );
        }
        other => panic!("expected FlowLocked, got {other:?}"),
    }
    assert!(h.sink.documents().is_empty());
    h.clock.advance(60_000);
    h.engine.run(&flow).await.unwrap();
    assert_eq!(h.sink.documents().len(), 1);
}

#[tokio::test]
async fn id_map_is_rebuilt_from_the_source_and_the_target_after_state_loss() {
    let h = Harness::new();
    h.seed(5);
    let flow = h.builder().page_size(2).build().unwrap();
    h.engine.run(&flow).await.unwrap();
    // A record the mapping refuses, and one that never reached the target.
    h.source
        .upsert(Record::new("c005", T0 - 30_000, json!({"_id": "c005"})));
    h.source.upsert(customer("c006", T0 - 30_000, "name 6"));
    // The state file is lost.
    let fresh = Harness::with_store(Arc::new(MemoryStore::new()));
    let r = fresh.engine.rebuild_id_map(&flow).await.unwrap();
    assert_eq!((r.counts.read, r.counts.rebuilt), (7, 5));
    assert_eq!(
        fresh.store.cursor(FLOW).await.unwrap(),
        None,
        "the next run reads everything"
    );
    let entry = fresh
        .store
        .id_map_by_target(FLOW, &h.sink.documents()[2].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.source_key, "c002");
    // Restored as written: nothing is sent again, the missing one is created.
    let r = fresh.engine.run(&flow).await.unwrap();
    assert_eq!(
        (
            r.counts.unchanged,
            r.counts.created,
            r.counts.updated,
            r.counts.dead_lettered
        ),
        (5, 1, 0, 1)
    );
    assert_eq!(h.sink.documents().len(), 6);
    assert_eq!(h.sink.duplicates(), 0);
}

/// A sink whose documents are found by their number (as K3Cloud's by `FNumber`).
struct ByNumber(Arc<MemorySink>);

#[async_trait]
impl Sink for ByNumber {
    async fn find(&self, natural_key: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.0.find(natural_key).await
    }
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        self.0.write(items).await
    }
    fn natural_key_is_number(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_key_edited_in_the_source_after_sync_is_found_by_its_write_back_when_the_id_map_is_rebuilt()
 {
    let h = Harness::new();
    h.source.write_back_into("erp_no");
    let mapping = Arc::new(
        DeclarativeMapping::from_toml(
            r#"
            natural_key = "FNumber"
            [[fields]]
            target = "FNumber"
            source = "account_no"
            [[fields]]
            target = "FName"
            source = "name"
            "#,
        )
        .unwrap(),
    );
    let flow = Flow::builder(
        FLOW,
        h.source.clone(),
        mapping,
        Arc::new(ByNumber(h.sink.clone())),
    )
    .write_back(h.source.clone())
    .settle_ms(1_000)
    .quiet_period_ms(QUIET)
    .build()
    .unwrap();
    h.source.upsert(Record::new(
        "a1",
        T0 - 30_000,
        json!({"_id": "a1", "name": "甲", "account_no": "KH1"}),
    ));
    h.engine.run(&flow).await.unwrap();
    assert_eq!(h.source.record("a1").unwrap().body["erp_no"], "KH1");

    // The customer code is edited in the CRM, and the state file is lost before a run.
    let mut edited = h.source.record("a1").unwrap();
    edited.body["account_no"] = json!("KH1-X");
    edited.version += 1;
    h.source.upsert(edited);
    let fresh = Harness::with_store(Arc::new(MemoryStore::new()));
    fresh.clock.set(h.clock.now_ms_() + 10_000);
    let r = fresh.engine.rebuild_id_map(&flow).await.unwrap();
    assert_eq!(
        r.counts.rebuilt, 1,
        "found by the number it was written back with"
    );
    // The next run updates that document to the new code; nothing is created.
    let r = fresh.engine.run(&flow).await.unwrap();
    assert_eq!((r.counts.created, r.counts.updated), (0, 1));
    let docs = h.sink.documents();
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0].payload["FNumber"], "KH1-X");
}

#[tokio::test]
async fn runs_are_recorded_with_their_counts_and_errors() {
    let h = Harness::new();
    h.seed(2);
    let flow = h.flow();
    h.engine.run(&flow).await.unwrap();
    h.source.fail_next_reads(1);
    h.clock.advance(1_000);
    assert!(h.engine.run(&flow).await.is_err());
    let runs = h.store.runs(FLOW, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("injected read failure")
    );
    assert_eq!(runs[1].counts.created, 2);
}

#[tokio::test]
async fn check_reports_unknown_fields_before_a_run() {
    use sync_core::metadata::{FieldDescription, FieldKind, ObjectDescription};
    let h = Harness::new();
    h.sink.set_description(
        ObjectDescription::new("BD_Customer")
            .field(FieldDescription::new("FName", FieldKind::Text).required())
            .field(FieldDescription::new("FNumber", FieldKind::Text).required()),
    );
    let issues = h.engine.check(&h.flow()).await.unwrap();
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "error: fields[1] (F_CrmId): target field `F_CrmId` does not exist in `BD_Customer`",
            "error: fields: required target field `FNumber` of `BD_Customer` is not mapped",
        ]
    );
    assert!(h.sink.documents().is_empty());
}

/// Rule 6 in the ERP → CRM direction: a delivery names its ERP order by number, which the
/// orders flow's ID map leads back to the CRM order; a delivery whose order has not synced
/// waits.
#[tokio::test]
async fn rule6_reverse_lookup_by_number_waits_for_the_order() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let clock = Arc::new(sync_core::ManualClock::new(T0));
    let engine = sync_core::Engine::new(store.clone()).with_clock(clock.clone());
    let crm_orders = Arc::new(MemorySource::new());
    let erp_orders = Arc::new(MemorySink::new());
    let orders = Flow::builder(
        "orders",
        crm_orders.clone(),
        Arc::new(
            DeclarativeMapping::from_toml(
                "natural_key = \"FNumber\"\n[[fields]]\ntarget = \"FNumber\"\nsource = \"name\"\n",
            )
            .unwrap(),
        ),
        erp_orders.clone(),
    )
    .lookback_ms(0)
    .settle_ms(0)
    .build()
    .unwrap();
    let erp_deliveries = Arc::new(MemorySource::new());
    let crm_updates = Arc::new(MemorySink::new());
    let deliveries = Flow::builder(
        "deliveries",
        erp_deliveries.clone(),
        Arc::new(
            DeclarativeMapping::from_toml(
                r#"
                natural_key = "_id"
                [[fields]]
                target = "_id"
                lookup = { flow = "orders", from = "order_no", by = "number", take = "source" }
                required = true
                [[fields]]
                target = "logistics_no"
                source = "carriage_no"
                "#,
            )
            .unwrap(),
        ),
        crm_updates.clone(),
    )
    .depends_on("orders")
    .lookback_ms(0)
    .settle_ms(0)
    .build()
    .unwrap();

    erp_deliveries.upsert(Record::new(
        "d1",
        T0 - 5_000,
        json!({"order_no": "SO-7", "carriage_no": "SF1001"}),
    ));
    let r = engine.run(&deliveries).await.unwrap();
    assert_eq!((r.counts.deferred, r.counts.created), (1, 0));
    assert_eq!(
        store.deferrals("deliveries", None, 10).await.unwrap()[0].missing_key,
        "SO-7"
    );

    crm_orders.upsert(Record::new(
        "crm-order-7",
        T0 - 4_000,
        json!({"name": "SO-7"}),
    ));
    engine.run(&orders).await.unwrap();
    clock.advance(60_000);
    let r = engine.run(&deliveries).await.unwrap();
    assert_eq!(r.counts.created, 1, "{r:?}");
    assert_eq!(
        crm_updates.documents()[0].payload,
        json!({"_id": "crm-order-7", "logistics_no": "SF1001"})
    );
}

/// Ctrl-C: the stop signal ends the run after the group in flight; nothing is lost and the
/// next run goes on from there.
#[tokio::test]
async fn a_stop_signal_ends_the_run_after_the_group_in_flight() {
    use std::sync::atomic::{AtomicBool, Ordering};

    struct StopAfterFirstBatch(Arc<AtomicBool>);
    impl sync_core::Observer for StopAfterFirstBatch {
        fn batch_written(&self, _flow: &str, _size: usize, _elapsed: std::time::Duration) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    let h = Harness::new();
    h.seed(25);
    let flow = h.builder().batch_size(10).concurrency(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let engine = sync_core::Engine::new(h.store.clone())
        .with_clock(h.clock.clone())
        .with_observer(Arc::new(StopAfterFirstBatch(stop.clone())))
        .with_stop_signal(stop.clone());
    let first = engine.run(&flow).await.unwrap();
    assert!(first.interrupted);
    assert_eq!(
        first.counts.created, 10,
        "the group in flight is written and settled"
    );
    stop.store(false, Ordering::SeqCst);
    let second = h.engine.run(&flow).await.unwrap();
    assert!(!second.interrupted);
    assert_eq!(second.counts.created, 15, "the next run goes on from there");
    assert_eq!(h.sink.documents().len(), 25);
    assert_eq!(h.sink.duplicates(), 0);
}

#[tokio::test(start_paused = true)]
async fn rule9_a_message_after_a_retried_action_is_sent_once_however_often_it_is_retried() {
    // Submit fails for c001, then heals: its re-run sends the message queued behind it, once,
    // and clears the letter, so that no later run sends it again.
    let h = Harness::new();
    h.seed(2);
    h.sink.once_action("notify");
    h.sink.fail_action("Submit", "c001");
    let flow = h.builder().actions(["Submit", "notify"]).build().unwrap();
    h.engine.run(&flow).await.unwrap();
    h.sink.heal();
    for _ in 0..3 {
        h.engine.rerun_dead_letters(&flow).await.unwrap();
        h.clock.advance(60 * 60_000);
        h.engine.run(&flow).await.unwrap();
    }
    for d in h.sink.documents() {
        assert_eq!(d.actions, ["Submit", "notify"], "{}", d.source_key);
    }
    assert!(
        h.store
            .dead_letters(FLOW, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
