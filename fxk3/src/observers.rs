//! Progress bars and per-flow API-call counts, as engine observers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sync_core::state::RunKind;
use sync_core::{Observer, RecordOutcome, RunReport, Window, WriteItem};

/// Sends every event to several observers.
#[derive(Default, Clone)]
pub struct Fanout(pub Vec<Arc<dyn Observer>>);

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Fanout").field(&self.0.len()).finish()
    }
}

impl Observer for Fanout {
    fn run_started(&self, flow: &str, kind: RunKind, window: Option<&Window>) {
        self.0
            .iter()
            .for_each(|o| o.run_started(flow, kind, window));
    }
    fn page_read(&self, flow: &str, records: usize) {
        self.0.iter().for_each(|o| o.page_read(flow, records));
    }
    fn batch_written(&self, flow: &str, size: usize, elapsed: Duration) {
        self.0
            .iter()
            .for_each(|o| o.batch_written(flow, size, elapsed));
    }
    fn record_settled(&self, flow: &str, key: &str, outcome: &RecordOutcome) {
        self.0
            .iter()
            .for_each(|o| o.record_settled(flow, key, outcome));
    }
    fn planned_write(&self, flow: &str, item: &sync_core::WriteItem) {
        self.0.iter().for_each(|o| o.planned_write(flow, item));
    }
    fn run_finished(&self, report: &RunReport) {
        self.0.iter().for_each(|o| o.run_finished(report));
    }
}

/// A spinner per flow with the records settled so far.
pub struct Progress {
    bars: MultiProgress,
    running: Mutex<HashMap<String, (ProgressBar, u64)>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            bars: MultiProgress::new(),
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress {
    /// Progress on standard error (hidden when it is not a terminal).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Observer for Progress {
    fn run_started(&self, flow: &str, _kind: RunKind, _window: Option<&Window>) {
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<12} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(flow.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(flow.to_owned(), (bar, 0));
    }

    fn record_settled(&self, flow: &str, _key: &str, _outcome: &RecordOutcome) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((bar, n)) = running.get_mut(flow) {
            *n += 1;
            bar.set_message(format!("{n} records"));
        }
    }

    fn run_finished(&self, report: &RunReport) {
        let done = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&report.flow);
        if let Some((bar, _)) = done {
            let c = &report.counts;
            bar.finish_with_message(format!(
                "read {} · created {} · updated {} · unchanged {} · deferred {} · dead {}",
                c.read, c.created, c.updated, c.unchanged, c.deferred, c.dead_lettered
            ));
        }
    }
}

/// What a dry run would write and what would wait, for every record (the run report keeps
/// only the first ones).
///
/// A dry run writes nothing, so the ID maps do not grow: an order whose customer the same dry
/// run would create first is reported as waiting for it, though a run would create the
/// customer, then the order. [`DryRunTally::waiting_for_planned`] counts those records.
#[derive(Debug, Default)]
pub struct DryRunTally {
    state: Mutex<TallyState>,
}

#[derive(Debug, Default)]
struct TallyState {
    planned: HashMap<String, u64>,
    /// `(flow, key)` of every planned write, by source key and by natural key (lookups use
    /// either).
    keys: HashSet<(String, String)>,
    /// `(flow, missing flow, missing key)` of every deferred record.
    waiting: Vec<(String, String, String)>,
}

impl DryRunTally {
    /// The writes `flow` would send.
    pub fn planned(&self, flow: &str) -> u64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.planned.get(flow).copied().unwrap_or_default()
    }

    /// The records of `flow` that wait for a record this dry run would write.
    pub fn waiting_for_planned(&self, flow: &str) -> u64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let covered = state
            .waiting
            .iter()
            .filter(|(f, missing_flow, missing_key)| {
                f == flow
                    && state
                        .keys
                        .contains(&(missing_flow.clone(), missing_key.clone()))
            });
        u64::try_from(covered.count()).unwrap_or(u64::MAX)
    }
}

impl Observer for DryRunTally {
    fn planned_write(&self, flow: &str, item: &WriteItem) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state.planned.entry(flow.to_owned()).or_default() += 1;
        for key in [&item.source_key, &item.natural_key] {
            state.keys.insert((flow.to_owned(), key.clone()));
        }
    }

    fn record_settled(&self, flow: &str, _key: &str, outcome: &RecordOutcome) {
        if let RecordOutcome::Deferred {
            missing_flow,
            missing_key,
            ..
        } = outcome
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state
                .waiting
                .push((flow.to_owned(), missing_flow.clone(), missing_key.clone()));
        }
    }
}

/// Counts the HTTP requests each flow made, from the SDK clients' counters (flows run one at
/// a time, so the difference over a run is that flow's).
#[derive(Clone)]
pub struct CallCounter {
    source: Arc<dyn Fn() -> u64 + Send + Sync>,
    state: Arc<Mutex<CallState>>,
}

#[derive(Default)]
struct CallState {
    started: HashMap<String, u64>,
    per_flow: HashMap<String, u64>,
}

impl std::fmt::Debug for CallCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCounter").finish_non_exhaustive()
    }
}

impl CallCounter {
    /// Counts with `source`, which gives the requests sent so far.
    pub fn new(source: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self {
            source: Arc::new(source),
            state: Arc::default(),
        }
    }

    /// The requests of the last run of `flow`.
    pub fn calls(&self, flow: &str) -> Option<u64> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .per_flow
            .get(flow)
            .copied()
    }
}

impl Observer for CallCounter {
    fn run_started(&self, flow: &str, _kind: RunKind, _window: Option<&Window>) {
        let now = (self.source)();
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .started
            .insert(flow.to_owned(), now);
    }

    fn run_finished(&self, report: &RunReport) {
        let now = (self.source)();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(start) = state.started.remove(&report.flow) {
            state
                .per_flow
                .insert(report.flow.clone(), now.saturating_sub(start));
        }
    }
}
