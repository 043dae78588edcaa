//! `fxk3 run` and `fxk3 watch`: runs, their reports and exit codes, and the signals that stop them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fxk3::alerts::Alerter;
use fxk3::metrics::Metrics;
use fxk3::observers::{DryRunTally, Fanout, Progress};
use fxk3::{App, AppError, FlowOutcome, report};
use sync_core::Observer;

use crate::{FLOW_FAILED, OK, RECORDS_NEED_ATTENTION};

pub(crate) async fn run_once(
    app: &App,
    flows: &[String],
    dry_run: bool,
    json: bool,
    stop: Option<Arc<AtomicBool>>,
    metrics: Option<&Metrics>,
) -> Result<u8, AppError> {
    let mut observers: Vec<Arc<dyn Observer>> = Vec::new();
    if !json {
        observers.push(Arc::new(Progress::new()));
    }
    if let Some(m) = metrics {
        observers.push(Arc::new(m.clone()));
    }
    let tally = Arc::new(DryRunTally::default());
    if dry_run {
        observers.push(tally.clone());
    }
    let observer: Arc<dyn Observer> = Arc::new(Fanout(observers));
    let outcomes = app.run_with(flows, dry_run, Some(observer), stop).await?;
    if let Some(m) = metrics {
        for o in &outcomes {
            let ms = u64::try_from(o.duration_ms).unwrap_or_default();
            m.run_done(
                &o.flow,
                o.error.is_some(),
                std::time::Duration::from_millis(ms),
            );
        }
    }
    print_outcomes(&outcomes, dry_run, json);
    if !dry_run {
        return Ok(exit_code(&outcomes));
    }
    if !json {
        print_dry_run_totals(&outcomes, &tally);
    }
    // A record that waits only for records this dry run would write first is no problem: a
    // run writes those first.
    let attention = outcomes.iter().any(|o| {
        o.report.as_ref().is_some_and(|r| {
            r.counts.dead_lettered > 0
                || r.counts.unknown > 0
                || r.counts.deferred > tally.waiting_for_planned(&o.flow)
        })
    });
    Ok(if outcomes.iter().any(|o| o.error.is_some()) {
        FLOW_FAILED
    } else if attention {
        RECORDS_NEED_ATTENTION
    } else {
        OK
    })
}

/// How many writes each flow would send (the report shows the first ones), and how many
/// records wait for records the dry run would write first.
pub(crate) fn print_dry_run_totals(outcomes: &[FlowOutcome], tally: &DryRunTally) {
    for o in outcomes {
        let Some(report) = &o.report else { continue };
        let planned = tally.planned(&o.flow);
        if planned > 0 {
            let shown = report.planned.len();
            let note = if u64::try_from(shown).is_ok_and(|s| s < planned) {
                format!(" (the first {shown} shown)")
            } else {
                String::new()
            };
            out!("{}: {planned} writes would be sent{note}", o.flow);
        }
        let waiting = tally.waiting_for_planned(&o.flow);
        if waiting > 0 {
            out!(
                "{}: {waiting} records wait for records this dry run would write first; a run \
                 writes those first, then these",
                o.flow
            );
        }
    }
}

pub(crate) fn exit_code(outcomes: &[FlowOutcome]) -> u8 {
    if outcomes.iter().any(|o| o.error.is_some()) {
        FLOW_FAILED
    } else if outcomes.iter().all(FlowOutcome::is_clean) {
        OK
    } else {
        RECORDS_NEED_ATTENTION
    }
}

pub(crate) fn print_outcomes(outcomes: &[FlowOutcome], dry_run: bool, json: bool) {
    if json {
        out!("{}", report::json(outcomes));
        return;
    }
    out!("{}", report::table(outcomes).trim_end());
    if dry_run {
        for o in outcomes {
            for planned in o.report.iter().flat_map(|r| &r.planned) {
                out!(
                    "{} {} would send {}",
                    o.flow,
                    planned.source_key,
                    planned.payload
                );
            }
        }
    }
}

/// How `watch` repeats runs.
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    pub(crate) flows: &'a [String],
    pub(crate) every: std::time::Duration,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    /// Serve the web page beside the runs, at this address (`""`: the configuration's).
    pub(crate) serve: Option<&'a str>,
}

/// Runs every `every` until Ctrl-C or SIGTERM; after each run (not dry runs) reads the state
/// into the metrics and tells the alert channels what changed.
pub(crate) async fn watch(app: App, metrics: &Metrics, w: Watch<'_>) -> Result<u8, AppError> {
    let app = Arc::new(app);
    let (stop, mut stopped) = stop_and_notify_on_signals();
    let changed = Arc::new(tokio::sync::Notify::new());
    let server = match w.serve {
        Some(listen) => {
            let listener = super::serve::bind(&app, listen).await?;
            Some(super::serve::spawn(
                listener,
                app.clone(),
                metrics.clone(),
                changed.clone(),
                stopped.clone(),
            ))
        }
        None => None,
    };
    let mut alerter = app.alerter()?;
    let mut code = OK;
    while !stop.load(Ordering::SeqCst) {
        // A dry run writes nothing: its outcomes are not the flows' and stay out of the metrics.
        let counted = (!w.dry_run).then_some(metrics);
        code = run_once(
            &app,
            w.flows,
            w.dry_run,
            w.json,
            Some(stop.clone()),
            counted,
        )
        .await?;
        if !w.dry_run {
            check(&app, w.flows, &mut alerter, metrics).await;
        }
        let next = tokio::time::Instant::now() + w.every;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => break,
                _ = stopped.wait_for(|s| *s) => break,
                // A retry or drop from the page: its problem may be gone now.
                () = changed.notified() => check(&app, w.flows, &mut alerter, metrics).await,
            }
        }
    }
    if let Some(server) = server {
        let _ = server.await;
    }
    Ok(code)
}

/// Reads the state of the flows this `watch` runs after a run: the metrics' gauges, then the
/// alerts (another `watch` may run and tell the others). A failure to read is logged; the
/// next run's check tries again.
async fn check(app: &App, flows: &[String], alerter: &mut Alerter, metrics: &Metrics) {
    let now = chrono::Utc::now().timestamp_millis();
    let health = match app.health(flows).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the state for metrics and alerts");
            return;
        }
    };
    let stall = app.config().alerts.stall_after();
    metrics.set_health(&health, now, stall);
    let problems: Vec<_> = health.iter().flat_map(|h| h.problems(now, stall)).collect();
    let checked = alerter.check(&problems, now).await;
    metrics.alerted(&checked.notices);
}

/// A flag set by the first Ctrl-C or SIGTERM (what systemd and `docker stop` send): the run
/// finishes the records in flight, commits its state and stops. A second signal exits at once.
pub(crate) fn stop_on_signals() -> Arc<AtomicBool> {
    stop_and_notify_on_signals().0
}

/// The engine's stop flag, set on Ctrl-C or SIGTERM, and a channel that says so at once (a
/// waiting `watch` wakes instead of sleeping out its interval).
pub(crate) fn stop_and_notify_on_signals() -> (Arc<AtomicBool>, tokio::sync::watch::Receiver<bool>)
{
    let stop = Arc::new(AtomicBool::new(false));
    let (notify, stopped) = tokio::sync::watch::channel(false);
    let flag = stop.clone();
    tokio::spawn(async move {
        if shutdown_signal().await {
            eprintln!("fxk3: stopping after the records in flight (Ctrl-C again to force)");
            flag.store(true, Ordering::SeqCst);
            notify.send_replace(true);
            if shutdown_signal().await {
                std::process::exit(130);
            }
        }
    });
    (stop, stopped)
}

/// Waits for Ctrl-C or SIGTERM; false when neither can be listened for.
pub(crate) async fn shutdown_signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
