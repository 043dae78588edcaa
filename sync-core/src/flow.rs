//! A flow: source + mapping + sink + options.

use crate::error::{Error, Result};
use crate::mapping::Mapping;
use crate::sink::Sink;
use crate::source::{Source, SourceWriteBack};
use std::fmt;
use std::sync::Arc;

/// Tunables of a flow. The defaults suit Fxiaoke → K3Cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowOptions {
    /// Records asked for per source page (default 100: the Fxiaoke `data/query` maximum).
    pub page_size: usize,
    /// Records per sink write (default 100 models per K3Cloud `BatchSave`).
    pub batch_size: usize,
    /// Write batches in flight at once (default 4). Batches of one group are independent; the
    /// cursor moves after the whole group has settled. One K3Cloud deployment was observed
    /// serving 4 truly concurrent requests without errors, and a client-side cap of 4–8 is the
    /// reference's advice; more is faster only as far as the ERP server has capacity (see
    /// `docs/performance.md`).
    pub concurrency: usize,
    /// Follow-up calls in flight at once while a run drains its queues (default 4): write-back
    /// calls of up to 10 records each, and messages (the drained action) one each — also how
    /// many messages a kill can leave of unknown outcome. The clients' rate limiters pace them.
    pub follow_up_concurrency: usize,
    /// How far before the cursor a window starts, ms (default 5 minutes): covers clock skew
    /// and records that became visible late. Re-read records are skipped by their hash.
    pub lookback_ms: i64,
    /// How far before now a window ends, ms (default 5 seconds): records modified in the
    /// last moments are left to the next run.
    pub settle_ms: i64,
    /// Where the first run's window starts, epoch ms (default 0: everything).
    pub start_from_ms: i64,
    /// Runs a record may stay deferred before it is dead-lettered (default 10).
    pub max_defer_attempts: u32,
    /// Post-save actions run in order on created targets (e.g. `["Submit", "Audit"]`).
    pub actions: Vec<String>,
    /// Whether the actions also run on updated targets (default false).
    pub actions_on_update: bool,
    /// Lease time-to-live, ms (default 10 minutes); renewed while the run goes on and before
    /// every write.
    pub lease_ttl_ms: i64,
    /// How long a write whose outcome is unknown is left alone before it is reconciled, ms
    /// (default 10 minutes). A request that timed out on the client may still be running on
    /// the server (a K3Cloud `BatchSave` of 100 documents can take minutes): looking it up
    /// before it ends finds nothing, and sending it again would duplicate it. Keep this well
    /// above the sink client's request timeout (120 s by default in both SDKs).
    pub quiet_period_ms: i64,
    /// How often a call that failed transiently and changed nothing (HTTP 5xx before dispatch,
    /// rate limit, connection refused, a page read) is tried again within a run, after 1 s,
    /// 4 s, 16 s (default 3). When they are used up the run stops where it is, the cursor
    /// after the last settled record, and the next run goes on from there.
    pub transient_retries: u32,
    /// How long after a transient failure a record's dead letter is tried again by the runs
    /// that follow, ms (default 1 minute); the pause doubles with each further failure, up to
    /// 60 times this.
    pub dead_letter_retry_ms: i64,
    /// How many failures and planned writes a report keeps (default 100).
    pub report_limit: usize,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            page_size: 100,
            batch_size: 100,
            concurrency: 4,
            follow_up_concurrency: 4,
            lookback_ms: 5 * 60 * 1000,
            settle_ms: 5 * 1000,
            start_from_ms: 0,
            max_defer_attempts: 10,
            actions: Vec::new(),
            actions_on_update: false,
            lease_ttl_ms: 10 * 60 * 1000,
            quiet_period_ms: 10 * 60 * 1000,
            transient_retries: 3,
            dead_letter_retry_ms: 60 * 1000,
            report_limit: 100,
        }
    }
}

/// One sync: where records come from, how they map, where they go.
///
/// ```
/// use std::sync::Arc;
/// use sync_core::testing::{MemorySink, MemorySource};
/// use sync_core::{DeclarativeMapping, Flow};
///
/// let mapping = DeclarativeMapping::from_toml("[[fields]]\ntarget = \"FName\"\nsource = \"name\"")?;
/// let flow = Flow::builder("customers", Arc::new(MemorySource::new()), Arc::new(mapping), Arc::new(MemorySink::new()))
///     .batch_size(50)
///     .lookback_ms(60_000)
///     .build()?;
/// assert_eq!(flow.name(), "customers");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Flow {
    pub(crate) name: String,
    pub(crate) source: Arc<dyn Source>,
    pub(crate) mapping: Arc<dyn Mapping>,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) write_back: Option<Arc<dyn SourceWriteBack>>,
    pub(crate) depends_on: Vec<String>,
    pub(crate) options: FlowOptions,
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("depends_on", &self.depends_on)
            .field("write_back", &self.write_back.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Flow {
    /// Starts building a flow.
    pub fn builder(
        name: impl Into<String>,
        source: Arc<dyn Source>,
        mapping: Arc<dyn Mapping>,
        sink: Arc<dyn Sink>,
    ) -> FlowBuilder {
        FlowBuilder {
            flow: Flow {
                name: name.into(),
                source,
                mapping,
                sink,
                write_back: None,
                depends_on: Vec::new(),
                options: FlowOptions::default(),
            },
        }
    }
    /// The flow's name (the key of its state).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The flows this one depends on.
    pub fn depends_on(&self) -> &[String] {
        &self.depends_on
    }
    /// The options.
    pub fn options(&self) -> &FlowOptions {
        &self.options
    }
    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }
    /// The sink.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }
    /// The mapping.
    pub fn mapping(&self) -> &Arc<dyn Mapping> {
        &self.mapping
    }
}

/// Builds a [`Flow`]; see [`Flow::builder`].
#[must_use]
pub struct FlowBuilder {
    flow: Flow,
}

impl fmt::Debug for FlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.flow.fmt(f)
    }
}

impl FlowBuilder {
    /// Declares that this flow runs after `flow` (and reads its ID map).
    pub fn depends_on(mut self, flow: impl Into<String>) -> Self {
        self.flow.depends_on.push(flow.into());
        self
    }
    /// Writes the target's number back to the source after each create.
    pub fn write_back(mut self, write_back: Arc<dyn SourceWriteBack>) -> Self {
        self.flow.write_back = Some(write_back);
        self
    }
    /// Post-save actions, in order (e.g. `["Submit", "Audit"]`).
    pub fn actions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, actions: I) -> Self {
        self.flow.options.actions = actions.into_iter().map(Into::into).collect();
        self
    }
    /// See [`FlowOptions::actions_on_update`].
    pub fn actions_on_update(mut self, yes: bool) -> Self {
        self.flow.options.actions_on_update = yes;
        self
    }
    /// See [`FlowOptions::page_size`].
    pub fn page_size(mut self, n: usize) -> Self {
        self.flow.options.page_size = n;
        self
    }
    /// See [`FlowOptions::batch_size`].
    pub fn batch_size(mut self, n: usize) -> Self {
        self.flow.options.batch_size = n;
        self
    }
    /// See [`FlowOptions::follow_up_concurrency`].
    pub fn follow_up_concurrency(mut self, n: usize) -> Self {
        self.flow.options.follow_up_concurrency = n;
        self
    }
    /// See [`FlowOptions::concurrency`].
    pub fn concurrency(mut self, n: usize) -> Self {
        self.flow.options.concurrency = n;
        self
    }
    /// See [`FlowOptions::lookback_ms`].
    pub fn lookback_ms(mut self, ms: i64) -> Self {
        self.flow.options.lookback_ms = ms;
        self
    }
    /// See [`FlowOptions::settle_ms`].
    pub fn settle_ms(mut self, ms: i64) -> Self {
        self.flow.options.settle_ms = ms;
        self
    }
    /// See [`FlowOptions::start_from_ms`].
    pub fn start_from_ms(mut self, ms: i64) -> Self {
        self.flow.options.start_from_ms = ms;
        self
    }
    /// See [`FlowOptions::max_defer_attempts`].
    pub fn max_defer_attempts(mut self, n: u32) -> Self {
        self.flow.options.max_defer_attempts = n;
        self
    }
    /// See [`FlowOptions::dead_letter_retry_ms`].
    pub fn dead_letter_retry_ms(mut self, ms: i64) -> Self {
        self.flow.options.dead_letter_retry_ms = ms;
        self
    }
    /// See [`FlowOptions::transient_retries`].
    pub fn transient_retries(mut self, n: u32) -> Self {
        self.flow.options.transient_retries = n;
        self
    }
    /// See [`FlowOptions::quiet_period_ms`].
    pub fn quiet_period_ms(mut self, ms: i64) -> Self {
        self.flow.options.quiet_period_ms = ms;
        self
    }
    /// See [`FlowOptions::lease_ttl_ms`].
    pub fn lease_ttl_ms(mut self, ms: i64) -> Self {
        self.flow.options.lease_ttl_ms = ms;
        self
    }
    /// See [`FlowOptions::report_limit`].
    pub fn report_limit(mut self, n: usize) -> Self {
        self.flow.options.report_limit = n;
        self
    }
    /// Replaces all options.
    pub fn options(mut self, options: FlowOptions) -> Self {
        self.flow.options = options;
        self
    }

    /// Checks the settings and builds the flow. Fails when a size is zero, a duration is
    /// negative, or the mapping reads the ID map of a flow that is not a dependency.
    pub fn build(self) -> Result<Flow> {
        let f = self.flow;
        let o = &f.options;
        let bad = |what: &str| Err(Error::Config(format!("flow `{}`: {what}", f.name)));
        if f.name.trim().is_empty() {
            return bad("empty name");
        }
        if o.page_size == 0
            || o.batch_size == 0
            || o.concurrency == 0
            || o.follow_up_concurrency == 0
        {
            return bad(
                "page_size, batch_size, concurrency and follow_up_concurrency must be at least 1",
            );
        }
        if o.lookback_ms < 0
            || o.settle_ms < 0
            || o.quiet_period_ms < 0
            || o.dead_letter_retry_ms < 0
            || o.lease_ttl_ms <= 0
        {
            return bad("lookback, settle and quiet period must be >= 0 and the lease ttl > 0");
        }
        if let (Some(mapped), Some(found_by)) =
            (f.mapping.natural_key_field(), f.sink.natural_key_field())
            && mapped != found_by
        {
            return bad(&format!(
                "the mapping's natural_key is `{mapped}`, but the sink finds documents by \
                 `{found_by}`: a write whose answer was lost would be looked up by the wrong \
                 field and sent again, making a duplicate; map the natural key to `{found_by}`"
            ));
        }
        for used in f.mapping.referenced_flows() {
            if !f.depends_on.contains(&used) {
                return bad(&format!(
                    "the mapping looks up flow `{used}`, which is not declared with depends_on"
                ));
            }
        }
        Ok(f)
    }
}
