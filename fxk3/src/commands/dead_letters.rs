//! `fxk3 dead-letters`: list, retry and drop records that failed.

use std::sync::Arc;

use fxk3::observers::Progress;
use fxk3::{App, AppError, FlowOutcome};
use sync_core::Observer;

use super::run::{exit_code, print_outcomes};
use crate::cli::DeadLetters;
use crate::{BAD_CONFIGURATION, OK, RECORDS_NEED_ATTENTION};

pub(crate) async fn dead_letters(app: &App, cmd: &DeadLetters, json: bool) -> Result<u8, AppError> {
    match cmd {
        DeadLetters::List { flow } => {
            let names: Vec<String> = flow.iter().cloned().collect();
            let mut all = Vec::new();
            for f in app.select(&names)? {
                for d in app.store().dead_letters(f.name(), None, 10_000).await? {
                    all.push((f.name().to_owned(), d));
                }
            }
            if json {
                let list: Vec<_> = all
                    .iter()
                    .map(|(f, d)| serde_json::json!({"flow": f, "key": d.source_key, "stage": d.stage, "reason": d.reason, "attempts": d.attempts}))
                    .collect();
                out!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else if all.is_empty() {
                out!("no dead letters");
            } else {
                for (f, d) in &all {
                    out!(
                        "{f} {} [{}, {} attempts] {}",
                        d.source_key,
                        d.stage,
                        d.attempts,
                        d.reason
                    );
                }
                out!(
                    "→ `fxk3 dead-letters show FLOW KEY` shows the payload; fix the cause, then \
                     `fxk3 dead-letters retry FLOW`"
                );
            }
            Ok(if all.is_empty() {
                OK
            } else {
                RECORDS_NEED_ATTENTION
            })
        }
        DeadLetters::Show { flow, key } => {
            app.select(std::slice::from_ref(flow))?;
            // A record has a dead letter per stage that failed (a refused update beside a
            // refused Audit of the version before): each is shown.
            let found: Vec<_> = app
                .store()
                .dead_letters(flow, None, 100_000)
                .await?
                .into_iter()
                .filter(|d| &d.source_key == key)
                .collect();
            if found.is_empty() {
                eprintln!("fxk3: no dead letter `{key}` in flow `{flow}`");
                return Ok(BAD_CONFIGURATION);
            }
            for d in found {
                let v = serde_json::json!({"flow": flow, "key": d.source_key, "stage": d.stage,
                    "reason": d.reason, "attempts": d.attempts, "retryable": d.retryable, "payload": d.payload});
                out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            }
            Ok(OK)
        }
        DeadLetters::Retry { flow } => {
            let progress: Option<Arc<dyn Observer>> = if json {
                None
            } else {
                Some(Arc::new(Progress::new()))
            };
            let started = std::time::Instant::now();
            let report = app.retry_dead_letters(flow, progress).await?;
            let mut outcome = FlowOutcome::new(flow, report, started.elapsed());
            outcome.api_calls = app.api_calls(flow);
            print_outcomes(std::slice::from_ref(&outcome), false, json);
            Ok(exit_code(std::slice::from_ref(&outcome)))
        }
        DeadLetters::Drop { flow, keys } => {
            let dropped = app.drop_dead_letters(flow, keys).await?;
            let missing: Vec<&String> = keys.iter().filter(|k| !dropped.contains(k)).collect();
            if json {
                out!(
                    "{}",
                    serde_json::json!({"flow": flow, "dropped": dropped, "not_found": missing})
                );
            } else {
                for key in &dropped {
                    out!("{flow} {key}: dropped; tried again when it changes");
                }
                for key in &missing {
                    out!("{flow} {key}: not a dead letter of this flow");
                }
            }
            Ok(if missing.is_empty() {
                OK
            } else {
                BAD_CONFIGURATION
            })
        }
    }
}
