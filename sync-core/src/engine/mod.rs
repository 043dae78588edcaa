//! The sync engine: windows, batches, intents, reconciliation, deferral, dead letters.
//!
//! See `docs/sync-model.md` for the model in prose. Each rule lives in one private module:
//! `window` (rule 1), `process` (rules 2, 3, 5, 8, 10), `reconcile` (rule 4), `defer`
//! (rule 6), `dead_letter` (rule 7), `follow_up` (rule 9), `backoff` (the waits of rules 7 and
//! of transient calls), `drain` (rule 9's write-back queue, drained alongside a run's writes),
//! `deps` (dependency order); `run` holds a run's state and its
//! incremental walk, `rebuild` the ID-map rebuild.

mod backoff;
mod dead_letter;
mod defer;
mod deps;
mod drain;
mod follow_up;
mod owner;
mod process;
mod rebuild;
mod reconcile;
mod run;
mod sweep;
mod window;

pub use crate::report::{Counts, Failure, PlannedWrite, RecordOutcome, RunReport};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::mapping::ValidationIssue;
use crate::observer::{NoopObserver, Observer};
use crate::state::{Lease, RunKind, StateStore};
use run::{Run, Writes};
use std::fmt;
use std::sync::Arc;

/// Runs flows against a state store.
///
/// One engine can run many flows; its owner id names it in leases, so two engines (or two
/// processes) never run the same flow at once.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use serde_json::json;
/// use sync_core::testing::{MemorySink, MemorySource};
/// use sync_core::{DeclarativeMapping, Engine, Flow, ManualClock, MemoryStore, Record};
///
/// let source = Arc::new(MemorySource::new());
/// source.upsert(Record::new("a1", 1_000, json!({"name": "ACME"})));
/// let sink = Arc::new(MemorySink::new());
/// let mapping = DeclarativeMapping::from_toml("[[fields]]\ntarget = \"FName\"\nsource = \"name\"")?;
/// let flow = Flow::builder("customers", source, Arc::new(mapping), sink.clone()).build()?;
///
/// let engine = Engine::new(Arc::new(MemoryStore::new()))
///     .with_clock(Arc::new(ManualClock::new(60_000)));
/// let report = engine.run(&flow).await?;
/// assert_eq!(report.counts.created, 1);
/// assert_eq!(sink.documents().len(), 1);
///
/// // Nothing changed: the second run writes nothing.
/// let report = engine.run(&flow).await?;
/// assert_eq!((report.counts.created, report.counts.unchanged), (0, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) observer: Arc<dyn Observer>,
    pub(crate) owner: String,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine on `store` with the system clock, no observer and a unique owner id.
    pub fn new(store: Arc<dyn StateStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            observer: Arc::new(NoopObserver),
            owner: owner::default_owner(),
            stop: None,
        }
    }
    /// Stops runs early when `stop` becomes true: the group of records in flight is written and
    /// settled, the cursor stays after it, and the run returns with
    /// [`RunReport::interrupted`] set. The next run goes on from there. (For Ctrl-C.)
    #[must_use]
    pub fn with_stop_signal(mut self, stop: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }
    pub(crate) fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    }
    /// Uses `clock` for windows and leases.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Sends progress events to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }
    /// Sets the owner id written into leases (default: host, pid, time and a counter — the
    /// form that lets a lease of a dead process of this host be taken over at once).
    #[must_use]
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
    /// The owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// Runs a flow once: reconciles pending intents, retries deferred records, then reads the
    /// window `[cursor - lookback, now - settle)` page by page and writes what changed.
    ///
    /// Fails with [`Error::FlowLocked`] when another owner runs the flow, and with a source or
    /// sink error when a call failed as a whole; the cursor then stays at the last settled
    /// record, so running again loses nothing.
    pub async fn run(&self, flow: &Flow) -> Result<RunReport> {
        let mut run = Run::start(self, flow, RunKind::Incremental).await?;
        let result = run.drained(Writes::Incremental).await;
        run.finish(result).await
    }

    /// Maps and validates the window without writing anything — not to the sink, not to the
    /// state store (no lease, no cursor). The report's `planned` holds the first payloads
    /// that would be sent; the observer sees all of them.
    pub async fn dry_run(&self, flow: &Flow) -> Result<RunReport> {
        let mut run = Run::start(self, flow, RunKind::DryRun).await?;
        let result = run.incremental().await;
        run.finish(result).await
    }

    /// Tries every dead letter of the flow again (after a fix of the data or the mapping).
    /// Records that fail again stay on the list with one more attempt.
    pub async fn rerun_dead_letters(&self, flow: &Flow) -> Result<RunReport> {
        let mut run = Run::start(self, flow, RunKind::DeadLetters).await?;
        let result = run.drained(Writes::DeadLetters).await;
        run.finish(result).await
    }

    /// Sweeps the flow's ID map: every record in it is read again from the source and
    /// processed like a changed one (a change no run saw is written; an unchanged record sends
    /// nothing), and the records gone from the source — deleted there, which no incremental
    /// run can see — are handed to the sink ([`Sink::source_gone`](crate::Sink::source_gone)):
    /// a K3Cloud order is closed or deleted, a customer forbidden. It reads the whole ID map:
    /// run it now and then (nightly), not every run.
    pub async fn sweep(&self, flow: &Flow) -> Result<RunReport> {
        let mut run = Run::start(self, flow, RunKind::Sweep).await?;
        let result = run.drained(Writes::Sweep).await;
        run.finish(result).await
    }

    /// Takes records off the dead-letter list without retrying them: the operator gave up on
    /// them (a delivery of an order that never came from the CRM). A dropped record is tried
    /// again when it changes, or when a run reads it again within its look-back. Returns the
    /// keys that were on the list.
    pub async fn drop_dead_letters(&self, flow: &Flow, keys: &[String]) -> Result<Vec<String>> {
        let lease = self.acquire_lease(flow).await?;
        let result: Result<Vec<String>> = async {
            let states = self.store.lookup(&flow.name, keys).await?;
            let dropped: Vec<String> = keys
                .iter()
                .zip(states)
                .filter(|(_, s)| !s.dead_letters.is_empty())
                .map(|(k, _)| k.clone())
                .collect();
            let changes = crate::state::Changes {
                dead_letters_clear: dropped.clone(),
                ..crate::state::Changes::default()
            };
            self.store.apply(&lease, &changes).await?;
            Ok(dropped)
        }
        .await;
        let released = self.store.release_lease(&lease).await;
        let dropped = result?;
        released?;
        Ok(dropped)
    }

    /// Sets the flow's cursor: the next run reads from `version - lookback`. For a cursor a
    /// fast clock moved into the future ([`Error::CursorAhead`]), or to read a period again
    /// (records that did not change are not written again).
    pub async fn set_cursor(&self, flow: &Flow, version: i64) -> Result<()> {
        let lease = self.acquire_lease(flow).await?;
        let changes = crate::state::Changes {
            cursor: Some(crate::state::Cursor { version, key: None }),
            ..crate::state::Changes::default()
        };
        let result = self.store.apply(&lease, &changes).await;
        let released = self.store.release_lease(&lease).await;
        result?;
        released
    }

    /// Rebuilds the flow's ID map after the state file was lost: reads every source record
    /// from the flow's `start_from`, maps it, and asks the sink which targets exist for the
    /// natural keys ([`Sink::existing_targets`](crate::Sink::existing_targets)). A record whose
    /// target exists is restored as written with its current payload, so nothing is created
    /// twice and nothing is sent again (no update, no action, no message); a change made while
    /// the state was lost reaches the target with the record's next change. Records without a
    /// target are created by the next run. Dependencies are rebuilt first, since mappings look
    /// up their ID maps.
    pub async fn rebuild_id_map(&self, flow: &Flow) -> Result<RunReport> {
        let mut run = Run::start(self, flow, RunKind::Rebuild).await?;
        let result = run.rebuild().await;
        run.finish(result).await
    }

    /// Takes the flow's lease. A lease held by a process of this host that has ended (killed,
    /// crashed) is taken over at once rather than waited out; its pending intents are then
    /// reconciled like any others, after the quiet period.
    pub(crate) async fn acquire_lease(&self, flow: &Flow) -> Result<Lease> {
        let ttl = flow.options.lease_ttl_ms;
        match self
            .store
            .acquire_lease(&flow.name, &self.owner, self.clock.now_ms(), ttl)
            .await
        {
            Err(Error::FlowLocked {
                owner,
                expires_at_ms,
                ..
            }) if owner::is_dead_here(&owner) => {
                tracing::warn!(
                    flow = %flow.name, holder = %owner, expires_at_ms,
                    "the process holding the lease has ended; taking the lease over"
                );
                // Released only if that owner still holds it: two processes taking over at
                // once cannot both win, the second sees the first as the holder.
                self.store
                    .release_lease(&Lease {
                        flow: flow.name.clone(),
                        owner,
                        expires_at: expires_at_ms,
                    })
                    .await?;
                self.store
                    .acquire_lease(&flow.name, &self.owner, self.clock.now_ms(), ttl)
                    .await
            }
            other => other,
        }
    }

    /// Runs flows in dependency order. A flow whose dependency failed for good is not run and
    /// reports [`Error::DependencyFailed`]; one whose dependency failed transiently
    /// ([`Error::is_retryable`]) runs, and records that need what the dependency did not write
    /// wait (rule 6). Fails before running anything when a dependency is missing
    /// from `flows` or the dependencies form a cycle.
    pub async fn run_all(&self, flows: &[&Flow]) -> Result<Vec<(String, Result<RunReport>)>> {
        let order = deps::order(flows)?;
        let mut out: Vec<(String, Result<RunReport>)> = Vec::with_capacity(order.len());
        for flow in order {
            let failed = flow.depends_on.iter().find(|d| {
                out.iter()
                    .any(|(name, r)| name == *d && r.as_ref().is_err_and(|e| !e.is_retryable()))
            });
            let result = match failed {
                Some(dep) => Err(Error::DependencyFailed {
                    flow: flow.name.clone(),
                    dependency: dep.clone(),
                }),
                None => self.run(flow).await,
            };
            out.push((flow.name.clone(), result));
        }
        Ok(out)
    }

    /// Checks the flow's mapping against the source's and sink's descriptions of their
    /// objects (Fxiaoke describe, K3Cloud QueryBusinessInfo), before any run.
    pub async fn check(&self, flow: &Flow) -> Result<Vec<ValidationIssue>> {
        let src = flow
            .source
            .describe()
            .await
            .map_err(|error| Error::Source {
                flow: flow.name.clone(),
                error,
            })?;
        let tgt = flow.sink.describe().await.map_err(|error| Error::Sink {
            flow: flow.name.clone(),
            error,
        })?;
        Ok(flow.mapping.validate(src.as_ref(), tgt.as_ref()))
    }
}
