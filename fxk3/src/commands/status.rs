//! `fxk3 status`: flows, cursors, what waits, from the state file.

use fxk3::{App, AppError};
use sync_core::state::WRITE_BACK;

use super::local_time;
use crate::OK;

pub(crate) async fn status(app: &App, flows: &[String], json: bool) -> Result<u8, AppError> {
    let store = app.store();
    let zone = app.config().time_zone()?;
    let mut out = Vec::new();
    for flow in app.select(flows)? {
        let name = flow.name();
        let cursor = store.cursor(name).await?;
        let intents = store.intents(name).await?;
        let write_backs = store.queued_count(name, WRITE_BACK).await?;
        // Messages queued or being sent (`sends` leaves write-backs out).
        let messages = store.sends(name).await?.len();
        let dead = store.dead_letters(name, None, 1_000).await?;
        let deferred = store.deferrals(name, None, 1_000).await?;
        let runs = store.runs(name, 5).await?;
        out.push(serde_json::json!({
            "flow": name,
            "cursor": cursor.map(|c| c.version),
            "pending_writes": intents.len(),
            "pending_write_backs": write_backs,
            "pending_messages": messages,
            "dead_letters": dead.len(),
            "deferred": deferred.len(),
            "last_runs": runs.iter().map(|r| serde_json::json!({
                "kind": format!("{:?}", r.kind), "started_at": r.started_at, "finished_at": r.finished_at,
                "counts": r.counts, "error": r.error,
            })).collect::<Vec<_>>(),
        }));
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
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
            let cursor = s["cursor"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |ms| local_time(ms, zone));
            let last = s["last_runs"].get(0).map_or_else(
                || "never".to_owned(),
                |r| match r["error"].as_str() {
                    Some(e) => format!(
                        "{} failed: {e}",
                        local_time(r["started_at"].as_i64().unwrap_or(0), zone)
                    ),
                    None => format!(
                        "{} created {} updated {} dead {}",
                        local_time(r["started_at"].as_i64().unwrap_or(0), zone),
                        r["counts"]["created"],
                        r["counts"]["updated"],
                        r["counts"]["dead_lettered"]
                    ),
                },
            );
            // Numbers, not JSON values: `Value`'s Display ignores the column widths.
            let count = |key: &str| s[key].as_u64().unwrap_or_default();
            out!(
                "{:<12} {:<25} {:>8} {:>11} {:>8} {:>6} {:>9}  {last}",
                s["flow"].as_str().unwrap_or_default(),
                cursor,
                count("pending_writes"),
                count("pending_write_backs"),
                count("pending_messages"),
                count("dead_letters"),
                count("deferred")
            );
        }
    }
    Ok(OK)
}
