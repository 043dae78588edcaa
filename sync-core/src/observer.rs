//! Progress and metrics hooks.

use crate::report::{RecordOutcome, RunKind, RunReport};
use crate::sink::WriteItem;
use crate::source::Window;
use std::time::Duration;

/// Receives progress events from the engine. Every method has a no-op default; wire the ones
/// you need to logs or metrics. Methods are called on the engine's task: keep them quick.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use sync_core::{Observer, RecordOutcome};
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
///
/// impl Observer for Count {
///     fn record_settled(&self, _flow: &str, _key: &str, _outcome: &RecordOutcome) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Observer: Send + Sync {
    /// A run started.
    fn run_started(&self, flow: &str, kind: RunKind, window: Option<&Window>) {
        let _ = (flow, kind, window);
    }
    /// A page was read.
    fn page_read(&self, flow: &str, records: usize) {
        let _ = (flow, records);
    }
    /// A write batch came back.
    fn batch_written(&self, flow: &str, size: usize, elapsed: Duration) {
        let _ = (flow, size, elapsed);
    }
    /// A record was settled.
    fn record_settled(&self, flow: &str, key: &str, outcome: &RecordOutcome) {
        let _ = (flow, key, outcome);
    }
    /// A dry run would send this.
    fn planned_write(&self, flow: &str, item: &WriteItem) {
        let _ = (flow, item);
    }
    /// A run ended (also when it failed: the report then shows how far it got).
    fn run_finished(&self, report: &RunReport) {
        let _ = report;
    }
}

/// An observer that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// An observer that logs through `tracing`: runs at `info`, failures at `warn`, the rest at
/// `debug`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn run_started(&self, flow: &str, kind: RunKind, window: Option<&Window>) {
        tracing::info!(flow, ?kind, ?window, "sync run started");
    }
    fn page_read(&self, flow: &str, records: usize) {
        tracing::debug!(flow, records, "page read");
    }
    fn batch_written(&self, flow: &str, size: usize, elapsed: Duration) {
        tracing::debug!(flow, size, ?elapsed, "batch written");
    }
    fn record_settled(&self, flow: &str, key: &str, outcome: &RecordOutcome) {
        match outcome {
            RecordOutcome::DeadLettered { .. }
            | RecordOutcome::Unknown { .. }
            | RecordOutcome::Deferred { .. } => {
                tracing::warn!(flow, key, ?outcome, "record not synced");
            }
            _ => tracing::debug!(flow, key, ?outcome, "record settled"),
        }
    }
    fn run_finished(&self, report: &RunReport) {
        tracing::info!(flow = %report.flow, counts = ?report.counts, "sync run finished");
    }
}
