//! `fxk3 status`: flows, cursors, what waits, from the state file.

use fxk3::health::FlowHealth;
use fxk3::{App, AppError};

use crate::OK;
use fxk3::report::local_time;

pub(crate) async fn status(app: &App, flows: &[String], json: bool) -> Result<u8, AppError> {
    let mut out = Vec::new();
    for flow in app.select(flows)? {
        out.push(FlowHealth::read(app.store().as_ref(), flow.name()).await?);
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(OK);
    }
    let zone = app.config().time_zone()?;
    out!(
        "{:<12} {:<25} {:>8} {:>11} {:>8} {:>6} {:>9}  last run",
        "flow",
        "cursor",
        "pending",
        "write-backs",
        "messages",
        "dead",
        "deferred"
    );
    for s in &out {
        let cursor = s
            .cursor
            .map_or_else(|| "-".to_owned(), |ms| local_time(ms, zone));
        let last = s.last_runs.first().map_or_else(
            || "never".to_owned(),
            |r| match &r.error {
                Some(e) => format!("{} failed: {e}", local_time(r.started_at, zone)),
                None => format!(
                    "{} created {} updated {} dead {}",
                    local_time(r.started_at, zone),
                    r.counts.created,
                    r.counts.updated,
                    r.counts.dead_lettered
                ),
            },
        );
        out!(
            "{:<12} {:<25} {:>8} {:>11} {:>8} {:>6} {:>9}  {last}",
            s.flow,
            cursor,
            s.pending_writes,
            s.pending_write_backs,
            s.pending_messages,
            s.dead_letters,
            s.deferred
        );
    }
    Ok(OK)
}
