//! In-memory sources and sinks with fault injection, for tests, examples and benchmarks.
//!
//! [`MemorySink`] behaves like an ERP without a unique key: a create that is sent twice makes
//! two documents, so tests can count duplicates. Faults are armed per call or per record.

use crate::clock::Clock;
use crate::error::ConnectorError;
use crate::metadata::ObjectDescription;
use crate::record::Record;
use crate::sink::{ActionOutcome, Sink, TargetRef, WriteItem, WriteOutcome};
use crate::source::{Page, PageRequest, Source, SourceWriteBack, WriteBackItem, WriteBackOutcome};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct SourceState {
    by_pos: BTreeMap<(i64, String), Record>,
    version_of: HashMap<String, i64>,
    fail_reads: usize,
    refuse_reads: bool,
    write_back_field: Option<String>,
    write_back_failures: HashSet<String>,
    description: Option<ObjectDescription>,
    server_offset_ms: Option<i64>,
}

/// A [`Source`] over records kept in memory, ordered by `(version, key)`.
///
/// ```
/// use serde_json::json;
/// use sync_core::testing::MemorySource;
/// use sync_core::Record;
///
/// let source = MemorySource::new();
/// source.upsert(Record::new("a", 10, json!({})));
/// source.upsert(Record::new("a", 20, json!({"changed": true})));
/// assert_eq!(source.len(), 1);
/// ```
#[derive(Default)]
pub struct MemorySource {
    state: Mutex<SourceState>,
    clock: Option<Arc<dyn Clock>>,
    reads: AtomicUsize,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySource")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty source whose write-backs stamp records with `clock`'s time, as a CRM does.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock: Some(clock),
            ..Self::default()
        }
    }

    /// Makes the source tell its server's time: the clock given to
    /// [`MemorySource::with_clock`] plus `offset_ms` (a server whose clock differs from this
    /// machine's). Without it (or without a clock) the source does not tell its time.
    pub fn set_server_clock_offset(&self, offset_ms: i64) {
        lock(&self.state).server_offset_ms = Some(offset_ms);
    }

    /// Inserts or replaces a record.
    pub fn upsert(&self, record: Record) {
        let mut st = lock(&self.state);
        if let Some(old) = st.version_of.insert(record.key.clone(), record.version) {
            st.by_pos.remove(&(old, record.key.clone()));
        }
        st.by_pos
            .insert((record.version, record.key.clone()), record);
    }

    /// Removes a record.
    pub fn remove(&self, key: &str) {
        let mut st = lock(&self.state);
        if let Some(v) = st.version_of.remove(key) {
            st.by_pos.remove(&(v, key.to_owned()));
        }
    }

    /// The record with `key`.
    pub fn record(&self, key: &str) -> Option<Record> {
        let st = lock(&self.state);
        let v = st.version_of.get(key)?;
        st.by_pos.get(&(*v, key.to_owned())).cloned()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        lock(&self.state).by_pos.len()
    }

    /// Whether the source is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many pages were read.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// The next `n` page reads fail with a transient error.
    pub fn fail_next_reads(&self, n: usize) {
        lock(&self.state).fail_reads = n;
    }

    /// Every page read fails with a permanent error (permission refused) until
    /// [`heal_reads`](Self::heal_reads).
    pub fn refuse_reads(&self) {
        lock(&self.state).refuse_reads = true;
    }

    /// Page reads succeed again.
    pub fn heal_reads(&self) {
        lock(&self.state).refuse_reads = false;
    }

    /// Write-backs store the target number (or id) in `field` of the record body.
    pub fn write_back_into(&self, field: impl Into<String>) {
        lock(&self.state).write_back_field = Some(field.into());
    }

    /// Write-backs for `key` fail.
    pub fn fail_write_back_for(&self, key: impl Into<String>) {
        lock(&self.state).write_back_failures.insert(key.into());
    }

    /// Stops failing write-backs for `key`.
    pub fn heal_write_back_for(&self, key: &str) {
        lock(&self.state).write_back_failures.remove(key);
    }

    /// Sets the description returned by [`Source::describe`].
    pub fn set_description(&self, d: ObjectDescription) {
        lock(&self.state).description = Some(d);
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn read_page(&self, req: &PageRequest) -> Result<Page, ConnectorError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let mut st = lock(&self.state);
        if st.refuse_reads {
            return Err(ConnectorError::permanent("injected: permission refused"));
        }
        if st.fail_reads > 0 {
            st.fail_reads -= 1;
            return Err(ConnectorError::transient("injected read failure"));
        }
        let start = match &req.after {
            Some(p) => (p.version, p.key.clone()),
            None => (req.window.low, String::new()),
        };
        let mut records = Vec::with_capacity(req.limit.min(1024));
        let mut has_more = false;
        for ((v, k), r) in st.by_pos.range(start..) {
            if *v >= req.window.high {
                break;
            }
            if *v < req.window.low
                || req
                    .after
                    .as_ref()
                    .is_some_and(|p| p.version == *v && &p.key == k)
            {
                continue;
            }
            if records.len() == req.limit {
                has_more = true;
                break;
            }
            records.push(r.clone());
        }
        Ok(Page {
            records,
            has_more,
            token: None,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError> {
        Ok(self.record(key))
    }

    async fn server_time_ms(&self) -> Result<Option<i64>, ConnectorError> {
        let offset = lock(&self.state).server_offset_ms;
        Ok(offset
            .zip(self.clock.as_ref())
            .map(|(offset, clock)| clock.now_ms().saturating_add(offset)))
    }

    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        Ok(lock(&self.state).description.clone())
    }
}

#[async_trait]
impl SourceWriteBack for MemorySource {
    async fn write_back(
        &self,
        items: &[WriteBackItem],
    ) -> Result<Vec<WriteBackOutcome>, ConnectorError> {
        let now = self.clock.as_ref().map(|c| c.now_ms());
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (field, failing) = {
                let st = lock(&self.state);
                (
                    st.write_back_field.clone(),
                    st.write_back_failures.contains(&item.source_key),
                )
            };
            if failing {
                out.push(WriteBackOutcome::Failed {
                    reason: "injected write-back failure".into(),
                });
                continue;
            }
            let Some(mut r) = self.record(&item.source_key) else {
                out.push(WriteBackOutcome::Failed {
                    reason: "record not found".into(),
                });
                continue;
            };
            let value = item
                .target
                .number
                .clone()
                .unwrap_or_else(|| item.target.id.clone());
            if let (Some(f), Value::Object(m)) = (field, &mut r.body) {
                m.insert(f, Value::String(value));
            }
            // An update in a CRM changes the record's modification time.
            r.version = now.map_or(r.version + 1, |n| n.max(r.version + 1));
            self.upsert(r);
            out.push(WriteBackOutcome::Done);
        }
        Ok(out)
    }

    fn written_back(&self, record: &Record) -> Option<String> {
        let field = lock(&self.state).write_back_field.clone()?;
        record
            .body
            .get(&field)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// A document held by a [`MemorySink`].
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Internal id.
    pub id: String,
    /// Number.
    pub number: String,
    /// The natural key it was written with.
    pub natural_key: String,
    /// The source key it was written from.
    pub source_key: String,
    /// The latest payload.
    pub payload: Value,
    /// Actions run on it, in order.
    pub actions: Vec<String>,
}

/// A fault a [`MemorySink`] applies to its next write call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFault {
    /// Apply the batch, then report that the outcome is unknown (a timeout after dispatch).
    TimeoutAfterApply,
    /// Apply nothing and report a transient error (connection refused before sending).
    FailBeforeSend,
}

#[derive(Default)]
struct SinkState {
    docs: Vec<Document>,
    next_id: u64,
    call_faults: Vec<Option<CallFault>>,
    record_failures: HashMap<String, (String, bool)>,
    record_unknown: HashSet<String>,
    action_failures: HashSet<(String, String)>,
    action_answers_lost: HashSet<(String, String)>,
    once_actions: HashSet<String>,
    /// Action calls still to fail as a whole, transiently, with nothing applied.
    action_calls_failing: usize,
    find_fails: bool,
    batch_sizes: Vec<usize>,
    description: Option<ObjectDescription>,
}

/// A [`Sink`] that keeps documents in memory, like an ERP without a unique key on the natural
/// key: creating the same record twice makes a duplicate that [`duplicates`](Self::duplicates)
/// counts.
#[derive(Default)]
pub struct MemorySink {
    state: Mutex<SinkState>,
    finds: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// When set, documents are not kept (benchmarks): only counted.
    count_only: bool,
    written: AtomicUsize,
}

impl std::fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySink").finish_non_exhaustive()
    }
}

/// A future that is pending once, so that concurrent writes interleave.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that keeps no documents, only counts writes (for benchmarks: memory stays flat).
    /// Every write is a create; `find` finds nothing.
    pub fn counting() -> Self {
        Self {
            count_only: true,
            ..Self::new()
        }
    }

    /// All documents, in creation order.
    pub fn documents(&self) -> Vec<Document> {
        lock(&self.state).docs.clone()
    }

    /// The documents written with `natural_key`.
    pub fn documents_for(&self, natural_key: &str) -> Vec<Document> {
        lock(&self.state)
            .docs
            .iter()
            .filter(|d| d.natural_key == natural_key)
            .cloned()
            .collect()
    }

    /// How many documents duplicate another's natural key.
    pub fn duplicates(&self) -> usize {
        let st = lock(&self.state);
        let unique: HashSet<&str> = st.docs.iter().map(|d| d.natural_key.as_str()).collect();
        st.docs.len() - unique.len()
    }

    /// Records written (created or updated) so far.
    pub fn written(&self) -> usize {
        self.written.load(Ordering::SeqCst)
    }

    /// Sizes of the write calls so far.
    pub fn batch_sizes(&self) -> Vec<usize> {
        lock(&self.state).batch_sizes.clone()
    }

    /// How many `find` calls were made.
    pub fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }

    /// The most write calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Arms a fault for the next write call (faults queue up in order).
    pub fn fault_next_write(&self, fault: CallFault) {
        lock(&self.state).call_faults.push(Some(fault));
    }

    /// Lets the next write call through without a fault (to aim a later fault).
    pub fn pass_next_write(&self) {
        lock(&self.state).call_faults.push(None);
    }

    /// Writes of `source_key` fail with `reason` until [`heal`](Self::heal).
    pub fn fail_record(&self, source_key: impl Into<String>, reason: impl Into<String>) {
        lock(&self.state)
            .record_failures
            .insert(source_key.into(), (reason.into(), false));
    }

    /// Writes of `source_key` fail with a reason that looks transient (retryable) until healed.
    pub fn fail_record_transiently(
        &self,
        source_key: impl Into<String>,
        reason: impl Into<String>,
    ) {
        lock(&self.state)
            .record_failures
            .insert(source_key.into(), (reason.into(), true));
    }

    /// Writes of `source_key` are applied but reported as unknown until healed.
    pub fn unknown_record(&self, source_key: impl Into<String>) {
        lock(&self.state).record_unknown.insert(source_key.into());
    }

    /// Action `action` fails for the document written from `source_key`.
    pub fn fail_action(&self, action: impl Into<String>, source_key: impl Into<String>) {
        lock(&self.state)
            .action_failures
            .insert((action.into(), source_key.into()));
    }

    /// Action `action` happens for the document written from `source_key`, but its answer is
    /// lost ([`ActionOutcome::Unknown`]) until healed.
    pub fn lose_action_answer(&self, action: impl Into<String>, source_key: impl Into<String>) {
        lock(&self.state)
            .action_answers_lost
            .insert((action.into(), source_key.into()));
    }

    /// The next `n` action calls fail as a whole with a transient error (a 5xx, a session lost
    /// twice), nothing applied.
    pub fn fail_next_action_calls(&self, n: usize) {
        lock(&self.state).action_calls_failing = n;
    }

    /// Makes `action` one that must not happen twice (like a message): see
    /// [`Sink::action_repeatable`].
    pub fn once_action(&self, action: impl Into<String>) {
        lock(&self.state).once_actions.insert(action.into());
    }

    /// `find` fails with a transient error until healed.
    pub fn fail_finds(&self) {
        lock(&self.state).find_fails = true;
    }

    /// Removes every fault: per record, of finds, and of the write calls to come.
    pub fn heal(&self) {
        let mut st = lock(&self.state);
        st.call_faults.clear();
        st.record_failures.clear();
        st.record_unknown.clear();
        st.action_failures.clear();
        st.action_answers_lost.clear();
        st.find_fails = false;
    }

    /// Sets the description returned by [`Sink::describe`].
    pub fn set_description(&self, d: ObjectDescription) {
        lock(&self.state).description = Some(d);
    }

    fn apply_item(st: &mut SinkState, item: &WriteItem) -> WriteOutcome {
        if let Some((reason, retryable)) = st.record_failures.get(&item.source_key) {
            return WriteOutcome::Failed {
                reason: reason.clone(),
                retryable: *retryable,
            };
        }
        let existing = item
            .target
            .as_ref()
            .and_then(|t| st.docs.iter_mut().find(|d| d.id == t.id));
        if let Some(doc) = existing {
            doc.payload = item.payload.clone();
            return WriteOutcome::Updated(TargetRef::new(doc.id.clone(), Some(doc.number.clone())));
        }
        st.next_id += 1;
        let doc = Document {
            id: st.next_id.to_string(),
            // Like K3Cloud: the number sent in the packet, else one the system assigns.
            number: item
                .payload
                .get("FNumber")
                .and_then(Value::as_str)
                .map_or_else(|| format!("N{:06}", st.next_id), str::to_owned),
            natural_key: item.natural_key.clone(),
            source_key: item.source_key.clone(),
            payload: item.payload.clone(),
            actions: Vec::new(),
        };
        let t = TargetRef::new(doc.id.clone(), Some(doc.number.clone()));
        st.docs.push(doc);
        WriteOutcome::Created(t)
    }
}

#[async_trait]
impl Sink for MemorySink {
    async fn find(&self, natural_key: &str) -> Result<Option<TargetRef>, ConnectorError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        let st = lock(&self.state);
        if st.find_fails {
            return Err(ConnectorError::transient("injected find failure"));
        }
        Ok(st
            .docs
            .iter()
            .find(|d| d.natural_key == natural_key)
            .map(|d| TargetRef::new(d.id.clone(), Some(d.number.clone()))))
    }

    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        YieldOnce(false).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.count_only {
            let base = self.written.fetch_add(items.len(), Ordering::Relaxed);
            return Ok((0..items.len())
                .map(|i| {
                    let n = base + i + 1;
                    WriteOutcome::Created(TargetRef::new(n.to_string(), Some(format!("N{n:07}"))))
                })
                .collect());
        }
        let mut st = lock(&self.state);
        st.batch_sizes.push(items.len());
        let fault = if st.call_faults.is_empty() {
            None
        } else {
            st.call_faults.remove(0)
        };
        if fault == Some(CallFault::FailBeforeSend) {
            return Err(ConnectorError::transient("injected: connection refused"));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let o = Self::apply_item(&mut st, item);
            if matches!(o, WriteOutcome::Created(_) | WriteOutcome::Updated(_)) {
                self.written.fetch_add(1, Ordering::SeqCst);
            }
            if st.record_unknown.contains(&item.source_key) {
                out.push(WriteOutcome::Unknown {
                    reason: "injected: no answer for this record".into(),
                });
            } else {
                out.push(o);
            }
        }
        if fault == Some(CallFault::TimeoutAfterApply) {
            return Err(ConnectorError::outcome_unknown(
                "injected: timeout after dispatch",
            ));
        }
        Ok(out)
    }

    async fn action(
        &self,
        action: &str,
        targets: &[TargetRef],
    ) -> Result<Vec<ActionOutcome>, ConnectorError> {
        let mut st = lock(&self.state);
        if st.action_calls_failing > 0 {
            st.action_calls_failing -= 1;
            return Err(ConnectorError::transient(format!(
                "injected: {action} call refused"
            )));
        }
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            let failing = st.docs.iter().find(|d| d.id == t.id).is_some_and(|d| {
                st.action_failures
                    .contains(&(action.to_owned(), d.source_key.clone()))
            });
            if failing {
                out.push(ActionOutcome::Failed {
                    reason: format!("injected: {action} refused"),
                });
                continue;
            }
            let lost = st.docs.iter().find(|d| d.id == t.id).is_some_and(|d| {
                st.action_answers_lost
                    .contains(&(action.to_owned(), d.source_key.clone()))
            });
            match st.docs.iter_mut().find(|d| d.id == t.id) {
                Some(d) => {
                    d.actions.push(action.to_owned());
                    out.push(if lost {
                        ActionOutcome::Unknown {
                            reason: format!("injected: the answer to {action} was lost"),
                        }
                    } else {
                        ActionOutcome::Done
                    });
                }
                None => out.push(ActionOutcome::Failed {
                    reason: "no such document".into(),
                }),
            }
        }
        Ok(out)
    }

    fn action_repeatable(&self, action: &str) -> bool {
        !lock(&self.state).once_actions.contains(action)
    }

    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        Ok(lock(&self.state).description.clone())
    }
}
