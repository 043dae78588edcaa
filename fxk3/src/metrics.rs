//! Prometheus metrics (`GET /metrics` of `fxk3 serve`), through the Prometheus project's own
//! client crate.
//!
//! Three feeds: an engine [`Observer`] (records by outcome, runs), the state file read after
//! each run ([`Metrics::set_health`]: dead letters, what waits, cursor lag), and a `tracing`
//! layer over the SDKs' one span per API call ([`CallLayer`]: calls by endpoint and outcome,
//! errors by vendor code) — no SDK knows about metrics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sync_core::{Observer, RecordOutcome};

use crate::alerts::Notice;
use crate::health::{FlowHealth, ProblemKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    flow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    flow: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    flow: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    vendor: &'static str,
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    vendor: &'static str,
    endpoint: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProblemLabels {
    flow: String,
    problem: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    event: &'static str,
    problem: &'static str,
}

/// The process's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    records: Family<RecordLabels, Counter>,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<FlowLabels, Histogram>,
    calls: Family<CallLabels, Counter>,
    call_errors: Family<ErrorLabels, Counter>,
    cursor_lag: Family<FlowLabels, Gauge>,
    dead_letters: Family<FlowLabels, Gauge>,
    unknown: Family<FlowLabels, Gauge>,
    follow_ups: Family<FlowLabels, Gauge>,
    deferred: Family<FlowLabels, Gauge>,
    problems: Family<ProblemLabels, Gauge>,
    alerts: Family<AlertLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const PROBLEMS: [ProblemKind; 4] = [
    ProblemKind::FlowFailed,
    ProblemKind::DeadLetters,
    ProblemKind::UnknownOutcomes,
    ProblemKind::FollowUpsStalled,
];

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fxk3");
        let records = Family::default();
        registry.register(
            "records",
            "Records settled, by flow and outcome",
            records.clone(),
        );
        let runs = Family::default();
        registry.register(
            "runs",
            "Runs, by flow and result (ok, failed)",
            runs.clone(),
        );
        let run_seconds = Family::<FlowLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0])
        });
        registry.register(
            "run_duration_seconds",
            "How long runs took, by flow",
            run_seconds.clone(),
        );
        let calls = Family::default();
        registry.register(
            "api_calls",
            "API calls to both systems, by vendor, endpoint and outcome (retries inside a call \
             count once)",
            calls.clone(),
        );
        let call_errors = Family::default();
        registry.register(
            "api_errors",
            "API calls that ended in a vendor's error code, by vendor, endpoint and code",
            call_errors.clone(),
        );
        let cursor_lag = Family::default();
        registry.register(
            "cursor_lag_seconds",
            "How far each flow's cursor is behind the clock",
            cursor_lag.clone(),
        );
        let dead_letters = Family::default();
        registry.register(
            "dead_letters",
            "Records on the dead-letter list, by flow",
            dead_letters.clone(),
        );
        let unknown = Family::default();
        registry.register(
            "unknown_outcomes",
            "Writes and messages of unknown outcome, by flow",
            unknown.clone(),
        );
        let follow_ups = Family::default();
        registry.register(
            "pending_follow_ups",
            "Write-backs and messages waiting to be sent, by flow",
            follow_ups.clone(),
        );
        let deferred = Family::default();
        registry.register(
            "deferred",
            "Records waiting for a record of another flow, by flow",
            deferred.clone(),
        );
        let problems = Family::default();
        registry.register(
            "problems",
            "1 while a problem lasts (what alerts are about), by flow and problem",
            problems.clone(),
        );
        let alerts = Family::default();
        registry.register(
            "alerts",
            "Alerts made, by event (alert, reminder, resolved) and problem",
            alerts.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            records,
            runs,
            run_seconds,
            calls,
            call_errors,
            cursor_lag,
            dead_letters,
            unknown,
            follow_ups,
            deferred,
            problems,
            alerts,
        }))
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }

    /// The state of each flow at `now` (epoch ms), read after a run.
    pub fn set_health(&self, flows: &[FlowHealth], now: i64, stall_after: Duration) {
        let m = &self.0;
        for h in flows {
            let flow = FlowLabels {
                flow: h.flow.clone(),
            };
            let gauge = |f: &Family<FlowLabels, Gauge>, v: usize| {
                f.get_or_create(&flow)
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            };
            gauge(&m.dead_letters, h.dead_letters);
            gauge(&m.unknown, h.unknown_outcomes + h.pending_writes);
            gauge(
                &m.follow_ups,
                h.pending_messages + usize::try_from(h.pending_write_backs).unwrap_or(usize::MAX),
            );
            gauge(&m.deferred, h.deferred);
            match h.cursor {
                Some(cursor) => {
                    m.cursor_lag
                        .get_or_create(&flow)
                        .set(now.saturating_sub(cursor).max(0) / 1000);
                }
                // No cursor (never run, or set back): no lag to show, not the last one.
                None => {
                    m.cursor_lag.remove(&flow);
                }
            }
            let now_open: Vec<ProblemKind> = h
                .problems(now, stall_after)
                .iter()
                .map(|p| p.kind)
                .collect();
            for kind in PROBLEMS {
                m.problems
                    .get_or_create(&ProblemLabels {
                        flow: h.flow.clone(),
                        problem: kind.as_str(),
                    })
                    .set(i64::from(now_open.contains(&kind)));
            }
        }
    }

    /// Alerts made.
    pub fn alerted(&self, notices: &[Notice]) {
        for n in notices {
            self.0
                .alerts
                .get_or_create(&AlertLabels {
                    event: n.event.as_str(),
                    problem: n.problem.kind.as_str(),
                })
                .inc();
        }
    }

    /// A run of `flow` that took `elapsed` and failed or not. A flow that did not start (its
    /// dependency failed, another process holds it) counts as failed, with no duration.
    pub fn run_done(&self, flow: &str, failed: bool, elapsed: Duration) {
        let m = &self.0;
        m.runs
            .get_or_create(&RunLabels {
                flow: flow.to_owned(),
                result: if failed { "failed" } else { "ok" },
            })
            .inc();
        if failed && elapsed.is_zero() {
            return;
        }
        m.run_seconds
            .get_or_create(&FlowLabels {
                flow: flow.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn call(&self, vendor: &'static str, endpoint: &str, outcome: &str, code: Option<&str>) {
        let m = &self.0;
        m.calls
            .get_or_create(&CallLabels {
                vendor,
                endpoint: endpoint.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(code) = code {
            m.call_errors
                .get_or_create(&ErrorLabels {
                    vendor,
                    endpoint: endpoint.to_owned(),
                    code: code.to_owned(),
                })
                .inc();
        }
    }

    /// The `tracing` layer counting the SDKs' calls into these metrics.
    pub fn call_layer(&self) -> CallLayer {
        CallLayer(self.clone())
    }
}

fn outcome_label(o: &RecordOutcome) -> &'static str {
    match o {
        RecordOutcome::Created(_) => "created",
        RecordOutcome::Updated(_) => "updated",
        RecordOutcome::Unchanged => "unchanged",
        RecordOutcome::Skipped { .. } => "skipped",
        RecordOutcome::Removed(_) => "removed",
        RecordOutcome::Deferred { .. } => "deferred",
        RecordOutcome::DeadLettered { .. } => "dead_lettered",
        RecordOutcome::Unknown { .. } => "unknown",
        RecordOutcome::Reconciled(_) => "reconciled",
        RecordOutcome::Gone => "gone",
        _ => "other",
    }
}

impl Observer for Metrics {
    fn record_settled(&self, flow: &str, _key: &str, outcome: &RecordOutcome) {
        self.0
            .records
            .get_or_create(&RecordLabels {
                flow: flow.to_owned(),
                outcome: outcome_label(outcome),
            })
            .inc();
    }
}

/// Counts the SDKs' `fxiaoke.call` and `k3cloud.call` spans when they close, by their
/// `operation`, `outcome` and `error_code` fields.
#[derive(Debug, Clone)]
pub struct CallLayer(Metrics);

#[derive(Default)]
struct CallFields {
    operation: String,
    outcome: String,
    error_code: Option<String>,
}

impl tracing::field::Visit for CallFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "operation" => value.clone_into(&mut self.operation),
            "outcome" => value.clone_into(&mut self.outcome),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "error_code" {
            self.error_code = Some(value.to_string());
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "error_code" {
            self.error_code = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "operation" {
            format!("{value:?}")
                .trim_matches('"')
                .clone_into(&mut self.operation);
        }
    }
}

fn vendor_of(span_name: &str) -> Option<&'static str> {
    match span_name {
        "fxiaoke.call" => Some("fxiaoke"),
        "k3cloud.call" => Some("k3cloud"),
        _ => None,
    }
}

impl<S> tracing_subscriber::Layer<S> for CallLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if vendor_of(attrs.metadata().name()).is_none() {
            return;
        }
        let mut fields = CallFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<CallFields>()
        {
            values.record(fields);
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(vendor) = vendor_of(span.metadata().name()) else {
            return;
        };
        if let Some(f) = span.extensions().get::<CallFields>() {
            let outcome = if f.outcome.is_empty() {
                "unfinished"
            } else {
                &f.outcome
            };
            self.0
                .call(vendor, &f.operation, outcome, f.error_code.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn sdk_call_spans_are_counted_by_endpoint_outcome_and_code() {
        let metrics = Metrics::new();
        let subscriber = tracing_subscriber::registry().with(metrics.call_layer());
        tracing::subscriber::with_default(subscriber, || {
            let ok = tracing::info_span!(
                "k3cloud.call",
                operation = "BatchSave",
                outcome = tracing::field::Empty,
                error_code = tracing::field::Empty
            );
            ok.record("outcome", "ok");
            drop(ok);
            for _ in 0..2 {
                let refused = tracing::info_span!(
                    "fxiaoke.call",
                    operation = "crm.create",
                    outcome = tracing::field::Empty,
                    error_code = tracing::field::Empty
                );
                refused.record("outcome", "api");
                refused.record("error_code", 320_001_401_i64);
            }
            drop(tracing::info_span!("other", operation = "x"));
        });
        let text = metrics.encode();
        for line in [
            "fxk3_api_calls_total{vendor=\"k3cloud\",endpoint=\"BatchSave\",outcome=\"ok\"} 1",
            "fxk3_api_calls_total{vendor=\"fxiaoke\",endpoint=\"crm.create\",outcome=\"api\"} 2",
            "fxk3_api_errors_total{vendor=\"fxiaoke\",endpoint=\"crm.create\",code=\"320001401\"} 2",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert_eq!(text.matches("fxk3_api_calls_total{").count(), 2, "{text}");
    }
}
