//! One module per command; `execute` runs the one the command line names.

use fxk3::config::{Config, parse_interval};
use fxk3::report::local_time;
use fxk3::{App, AppError, environment};

use crate::OK;
use crate::cli::{Cli, Command, DeadLetters};
use dead_letters::dead_letters;
use init::init;
use run::{Watch, run_once, stop_on_signals, watch};
use sandbox::sandbox;
use status::status;
use validate::validate;

mod dead_letters;
mod init;
mod run;
mod sandbox;
mod serve;
mod status;
mod validate;

pub(crate) async fn load(cli: &Cli) -> Result<App, AppError> {
    let config = Config::from_path(&cli.config)?;
    App::build(config, &environment()).await
}

/// The configuration's app for commands that only read the state file: no secret needed.
pub(crate) async fn load_offline(cli: &Cli) -> Result<App, AppError> {
    App::build_offline(Config::from_path(&cli.config)?).await
}

/// [`load`], then the flows named (an unknown one is refused before anything is sent), then
/// both systems reachable.
pub(crate) async fn load_reachable(cli: &Cli, flows: &[String]) -> Result<App, AppError> {
    let app = load(cli).await?;
    app.select(flows)?;
    app.check_reachable().await?;
    Ok(app)
}

pub(crate) async fn execute(cli: &Cli, metrics: &fxk3::metrics::Metrics) -> Result<u8, AppError> {
    match &cli.command {
        Command::Init { dir, force } => init(dir, *force, cli.json),
        Command::Run {
            flows,
            dry_run,
            every: None,
        } => {
            let app = load_reachable(cli, flows).await?;
            run_once(
                &app,
                flows,
                *dry_run,
                cli.json,
                Some(stop_on_signals()),
                None,
            )
            .await
        }
        Command::Run {
            flows,
            dry_run,
            every: Some(every),
        } => {
            let every = parse_interval(every)
                .map_err(|e| fxk3::ConfigError::Invalid(format!("--every: {e}")))?;
            // Checked once: later runs ride out an outage.
            let app = load_reachable(cli, flows).await?;
            let w = Watch {
                flows,
                every,
                dry_run: *dry_run,
                json: cli.json,
                serve: None,
            };
            watch(app, metrics, w).await
        }
        Command::Watch {
            flows,
            every,
            serve,
        } => {
            let every = every
                .as_deref()
                .map(parse_interval)
                .transpose()
                .map_err(|e| fxk3::ConfigError::Invalid(format!("--every: {e}")))?;
            let app = load_reachable(cli, flows).await?;
            let every = every.unwrap_or_else(|| app.config().every());
            let w = Watch {
                flows,
                every,
                dry_run: false,
                json: cli.json,
                serve: serve.as_deref(),
            };
            watch(app, metrics, w).await
        }
        Command::Serve { listen } => {
            serve::serve(
                load(cli).await?,
                metrics,
                listen.as_deref().unwrap_or_default(),
            )
            .await
        }
        Command::Status { flows } => status(&load_offline(cli).await?, flows, cli.json).await,
        Command::DeadLetters(cmd @ DeadLetters::Retry { flow }) => {
            let app = load_reachable(cli, std::slice::from_ref(flow)).await?;
            dead_letters(&app, cmd, cli.json).await
        }
        Command::DeadLetters(cmd) => dead_letters(&load_offline(cli).await?, cmd, cli.json).await,
        Command::Validate { flows } => {
            validate(&load_reachable(cli, flows).await?, flows, cli.json).await
        }
        Command::SetCursor { flow, time } => {
            let app = load_offline(cli).await?;
            let zone = app.config().time_zone()?;
            let version = fxk3::config::parse_start(time, zone)
                .map_err(|e| AppError::Config(fxk3::ConfigError::Invalid(e)))?;
            app.set_cursor(flow, version).await?;
            if cli.json {
                out!("{}", serde_json::json!({"flow": flow, "cursor": version}));
            } else {
                out!("{flow}: cursor set to {}", local_time(version, zone));
            }
            Ok(OK)
        }
        Command::RebuildIdMap { flows } => {
            let app = load_reachable(cli, flows).await?;
            let reports = app.rebuild_id_maps(flows).await?;
            if cli.json {
                print_reports(&reports);
            } else {
                for r in &reports {
                    out!(
                        "{}: {} of {} records restored as synced; the others are written by the next run",
                        r.flow,
                        r.counts.rebuilt,
                        r.counts.read
                    );
                }
            }
            Ok(OK)
        }
        Command::Sweep { flows } => {
            let app = load_reachable(cli, flows).await?;
            let reports = app.sweep(flows).await?;
            if cli.json {
                print_reports(&reports);
            } else {
                for r in &reports {
                    let c = &r.counts;
                    out!(
                        "{}: {} records read again, {} written, {} deleted in the target \
                         (gone from the source), {} dead letters",
                        r.flow,
                        c.read,
                        c.created + c.updated,
                        c.removed,
                        c.dead_lettered
                    );
                }
            }
            Ok(if reports.iter().all(sync_core::RunReport::is_clean) {
                OK
            } else {
                crate::RECORDS_NEED_ATTENTION
            })
        }
        Command::Sandbox { listen, no_demo } => sandbox(listen, *no_demo).await,
    }
}

/// Run reports as JSON, for `--json`.
fn print_reports(reports: &[sync_core::RunReport]) {
    out!(
        "{}",
        serde_json::to_string_pretty(reports).unwrap_or_default()
    );
}
