//! Shared fixtures for the integration tests.
#![allow(dead_code, unreachable_pub)]

use async_trait::async_trait;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use sync_core::state::{
    Changes, Cursor, DeadLetter, Deferral, IdMapEntry, Intent, KeyState, Lease, RunRecord,
    StateStore,
};
use sync_core::testing::{MemorySink, MemorySource};
use sync_core::{
    DeclarativeMapping, Engine, Error, Flow, FlowBuilder, ManualClock, MemoryStore, Record, Result,
};

pub const FLOW: &str = "customers";
/// "Now" at the start of every test: 2024-05-18 10:40 +08:00.
pub const T0: i64 = 1_716_000_000_000;
/// The quiet period of the test flows: a write with an unknown outcome is reconciled once it
/// is older than this.
pub const QUIET: i64 = 30_000;

pub fn customer(key: &str, version: i64, name: &str) -> Record {
    Record::new(
        key,
        version,
        json!({"_id": key, "name": name, "account_no": format!("C-{key}")}),
    )
}

pub fn customers_mapping() -> Arc<DeclarativeMapping> {
    Arc::new(
        DeclarativeMapping::from_toml(
            r#"
            natural_key = "F_CrmId"
            [[fields]]
            target = "FName"
            source = "name"
            required = true
            [[fields]]
            target = "F_CrmId"
            source = "_id"
            "#,
        )
        .expect("mapping loads"),
    )
}

pub struct Harness {
    pub clock: Arc<ManualClock>,
    pub source: Arc<MemorySource>,
    pub sink: Arc<MemorySink>,
    pub store: Arc<dyn StateStore>,
    pub engine: Engine,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_store(Arc::new(MemoryStore::new()))
    }

    pub fn with_store(store: Arc<dyn StateStore>) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::new(store.clone())
            .with_clock(clock.clone())
            .with_owner("test");
        Self {
            source: Arc::new(MemorySource::with_clock(clock.clone())),
            sink: Arc::new(MemorySink::new()),
            clock,
            store,
            engine,
        }
    }

    /// A second engine (another process) over the same store, clock and systems.
    pub fn engine_named(&self, owner: &str) -> Engine {
        Engine::new(self.store.clone())
            .with_clock(self.clock.clone())
            .with_owner(owner)
    }

    pub fn builder(&self) -> FlowBuilder {
        Flow::builder(
            FLOW,
            self.source.clone(),
            customers_mapping(),
            self.sink.clone(),
        )
        .lookback_ms(0)
        .settle_ms(1_000)
        .quiet_period_ms(QUIET)
        // Most rules are shown with a fault ending the run; retries have tests of their own.
        .transient_retries(0)
        // And with one batch per group; groups of several batches have tests of their own.
        .concurrency(1)
    }

    pub fn flow(&self) -> Flow {
        self.builder().build().expect("flow builds")
    }

    /// Adds `n` customers `c000`…, one ms apart, well inside the window.
    pub fn seed(&self, n: usize) {
        for i in 0..n {
            let v = T0 - 60_000 + i64::try_from(i).unwrap();
            self.source
                .upsert(customer(&format!("c{i:03}"), v, &format!("name {i}")));
        }
    }
}

/// A store that "crashes" (fails, changing nothing) on chosen `apply` calls — what the engine
/// sees when the process dies at that point: everything before is committed, nothing after.
pub struct CrashStore {
    pub inner: Arc<dyn StateStore>,
    applies: AtomicUsize,
    crash_on: AtomicUsize,
}

impl CrashStore {
    pub fn new(inner: Arc<dyn StateStore>, crash_on_apply: usize) -> Self {
        Self {
            inner,
            applies: AtomicUsize::new(0),
            crash_on: AtomicUsize::new(crash_on_apply),
        }
    }
    pub fn applies(&self) -> usize {
        self.applies.load(Ordering::SeqCst)
    }

    /// Crashes on the `k`-th `apply` from now on (`0`: never).
    pub fn crash_after(&self, k: usize) {
        let at = if k == 0 { 0 } else { self.applies() + k };
        self.crash_on.store(at, Ordering::SeqCst);
    }
}

#[async_trait]
impl StateStore for CrashStore {
    async fn acquire_lease(&self, flow: &str, owner: &str, now: i64, ttl: i64) -> Result<Lease> {
        self.inner.acquire_lease(flow, owner, now, ttl).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.inner.release_lease(lease).await
    }
    async fn cursor(&self, flow: &str) -> Result<Option<Cursor>> {
        self.inner.cursor(flow).await
    }
    async fn lookup(&self, flow: &str, keys: &[String]) -> Result<Vec<KeyState>> {
        self.inner.lookup(flow, keys).await
    }
    async fn id_map_get_many(
        &self,
        flow: &str,
        keys: &[String],
    ) -> Result<HashMap<String, IdMapEntry>> {
        self.inner.id_map_get_many(flow, keys).await
    }
    async fn id_map_page(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdMapEntry>> {
        self.inner.id_map_page(flow, after, limit).await
    }
    async fn id_map_by_target(&self, flow: &str, id: &str) -> Result<Option<IdMapEntry>> {
        self.inner.id_map_by_target(flow, id).await
    }
    async fn id_map_by_target_numbers(
        &self,
        flow: &str,
        numbers: &[String],
    ) -> Result<std::collections::HashMap<String, IdMapEntry>> {
        self.inner.id_map_by_target_numbers(flow, numbers).await
    }
    async fn apply(&self, lease: &Lease, changes: &Changes) -> Result<()> {
        let n = self.applies.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_on.load(Ordering::SeqCst) {
            return Err(Error::State(format!("simulated crash at apply #{n}")));
        }
        self.inner.apply(lease, changes).await
    }
    async fn intents(&self, flow: &str) -> Result<Vec<Intent>> {
        self.inner.intents(flow).await
    }
    async fn sends(&self, flow: &str) -> Result<Vec<sync_core::state::PendingSend>> {
        self.inner.sends(flow).await
    }
    async fn queued(
        &self,
        flow: &str,
        action: &str,
        limit: usize,
    ) -> Result<Vec<sync_core::state::PendingSend>> {
        self.inner.queued(flow, action, limit).await
    }
    async fn queued_count(&self, flow: &str, action: &str) -> Result<u64> {
        self.inner.queued_count(flow, action).await
    }
    async fn dead_letters(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.inner.dead_letters(flow, after, limit).await
    }
    async fn deferrals(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Deferral>> {
        self.inner.deferrals(flow, after, limit).await
    }
    async fn record_run(&self, run: &RunRecord) -> Result<()> {
        self.inner.record_run(run).await
    }
    async fn runs(&self, flow: &str, limit: usize) -> Result<Vec<RunRecord>> {
        self.inner.runs(flow, limit).await
    }
}

/// `now_ms` without importing the trait everywhere.
pub trait NowMsExt {
    fn now_ms_(&self) -> i64;
}

impl NowMsExt for ManualClock {
    fn now_ms_(&self) -> i64 {
        sync_core::Clock::now_ms(self)
    }
}
