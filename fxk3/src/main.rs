//! `fxk3`: the operator's command for the Fxiaoke ⇄ K3Cloud syncs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use fxk3::config::{Config, EXAMPLE, parse_interval};
use fxk3::observers::{DryRunTally, Fanout, Progress};
use fxk3::{App, AppError, EXAMPLE_MAPPINGS, FlowOutcome, environment, report};
use sync_core::Observer;

/// `println!` that stops quietly when stdout is closed (`fxk3 status | head`) instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Exit codes (also in `--help`).
const OK: u8 = 0;
const RECORDS_NEED_ATTENTION: u8 = 1;
const BAD_CONFIGURATION: u8 = 2;
const FLOW_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "fxk3",
    version,
    about = "Sync Fxiaoke CRM and Kingdee K3Cloud ERP: customers, orders, deliveries.",
    after_help = "Exit codes: 0 all records settled; 1 some records are dead-lettered, deferred or \
                  of unknown outcome (see `fxk3 status`); 2 bad configuration or usage, or a \
                  server that cannot be reached at start (nothing was sent); 3 a flow failed \
                  (connection lost, credentials, state).\n\
                  Secrets come from environment variables named in the configuration file.\n\
                  Logs: -v, -vv or RUST_LOG (e.g. RUST_LOG=sync_core=debug)."
)]
struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "fxk3.toml",
        env = "FXK3_CONFIG"
    )]
    config: PathBuf,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Machine-readable output (JSON) instead of tables and progress bars.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented example configuration and the three mapping files.
    Init {
        /// Where to write them.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Run flows (all, or the ones named) in dependency order.
    Run {
        /// Flows to run; default all.
        flows: Vec<String>,
        /// Map and check the records, show what would be sent, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Repeat every interval (30s, 5m, 1h) until Ctrl-C.
        #[arg(long)]
        every: Option<String>,
    },
    /// Repeat `run` on the schedule of the configuration (or --every) until Ctrl-C.
    Watch {
        /// Flows to run; default all.
        flows: Vec<String>,
        /// The interval (default: schedule.every, else 5m).
        #[arg(long)]
        every: Option<String>,
    },
    /// Show cursors, pending writes, dead letters, deferrals and the last runs.
    Status {
        /// Flows to show; default all.
        flows: Vec<String>,
    },
    /// List, show or retry the records that failed.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Check the mapping files against Fxiaoke describe and K3Cloud QueryBusinessInfo.
    Validate {
        /// Flows to check; default all.
        flows: Vec<String>,
    },
    /// Rebuild the ID maps after the state file was lost: every source record whose target
    /// exists is restored as synced (nothing is sent again).
    RebuildIdMap {
        /// Flows to rebuild, in dependency order; default all.
        flows: Vec<String>,
    },
    /// Set a flow's cursor: the next run reads what changed from this time on (less the
    /// look-back). For a cursor a fast clock put in the future, or to read a period again;
    /// records that did not change are not written again.
    SetCursor {
        /// The flow.
        flow: String,
        /// `2024-05-18`, `2024-05-18 08:30:00` (in k3cloud.time_zone) or epoch milliseconds.
        time: String,
    },
    /// Start the built-in simulators of both systems, to try things out.
    Sandbox {
        /// Where to listen (loopback by default).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Start without the demo data.
        #[arg(long)]
        no_demo: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLetters {
    /// List dead letters.
    List {
        /// The flow; default all.
        flow: Option<String>,
    },
    /// Show one dead letter with its payload.
    Show {
        /// The flow.
        flow: String,
        /// The record's key.
        key: String,
    },
    /// Retry a flow's dead letters (after fixing the data or the mapping).
    Retry {
        /// The flow.
        flow: String,
    },
    /// Give up on dead letters: take them off the list without retrying them (a record is
    /// tried again when it changes, or when a run reads it again within its look-back).
    Drop {
        /// The flow.
        flow: String,
        /// The records' keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // Without -v the run report lists the records not synced; the engine's warning per
        // record would repeat it on stderr.
        0 => "warn,sync_core::observer=error",
        1 => "info,sync_core=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal: not in a file or the journal, not with NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match execute(&cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match &e {
                AppError::Config(_) | AppError::UnknownFlow(_) | AppError::Unreachable { .. } => {
                    BAD_CONFIGURATION
                }
                _ => FLOW_FAILED,
            };
            let hint = hint(&e, &cli.config);
            if cli.json {
                out!(
                    "{}",
                    serde_json::json!({"error": e.to_string(), "hint": hint})
                );
            } else {
                eprintln!("fxk3: {e}");
                if let Some(hint) = hint {
                    eprintln!("      {hint}");
                }
            }
            ExitCode::from(code)
        }
    }
}

/// What to do about an error (`config`: the configuration file, read again for the
/// settings to name).
fn hint(e: &AppError, config: &Path) -> Option<String> {
    let hint = match e {
        AppError::Config(fxk3::ConfigError::MissingEnv { .. }) => {
            Some("export the variable (or set it in the service's environment) and run again")
        }
        AppError::Config(fxk3::ConfigError::Read { .. }) => {
            Some("create one with `fxk3 init`, or point --config at it")
        }
        AppError::Config(fxk3::ConfigError::Parse { .. }) => Some(
            "fix the file at the line shown; `fxk3 init --dir DIR` writes a commented example to \
             compare with",
        ),
        AppError::Config(fxk3::ConfigError::Mapping { path, .. }) if !path.is_file() => Some(
            "correct the flow's `mapping` path (relative paths are read from the configuration \
             file's directory), or create the file; `fxk3 init` writes example mappings",
        ),
        AppError::Config(fxk3::ConfigError::Mapping { .. }) => Some(
            "fix the mapping file at the line shown; `fxk3 validate` checks it against both systems",
        ),
        AppError::Sync(e @ (sync_core::Error::Source { .. } | sync_core::Error::Sink { .. })) => {
            return Config::from_path(config)
                .ok()
                .and_then(|c| fxk3::advice(&c, e));
        }
        AppError::UnknownFlow(_) => Some("`fxk3 status` lists the flows of the configuration"),
        AppError::Unreachable { setting, .. } => {
            return Some(format!(
                "check {setting} and that this machine can reach it (network, VPN, proxy, \
                 firewall), then run again; nothing was read or written"
            ));
        }
        AppError::Sync(sync_core::Error::FlowLocked { .. }) => {
            Some("another fxk3 is running this flow; wait for it, or stop it")
        }
        _ => None,
    };
    hint.map(str::to_owned)
}

async fn load(cli: &Cli) -> Result<App, AppError> {
    let config = Config::from_path(&cli.config)?;
    App::build(config, &environment()).await
}

/// The configuration's app for commands that only read the state file: no secret needed.
async fn load_offline(cli: &Cli) -> Result<App, AppError> {
    App::build_offline(Config::from_path(&cli.config)?).await
}

/// [`load`], then the flows named (an unknown one is refused before anything is sent), then
/// both systems reachable.
async fn load_reachable(cli: &Cli, flows: &[String]) -> Result<App, AppError> {
    let app = load(cli).await?;
    app.select(flows)?;
    app.check_reachable().await?;
    Ok(app)
}

async fn execute(cli: &Cli) -> Result<u8, AppError> {
    match &cli.command {
        Command::Init { dir, force } => init(dir, *force, cli.json),
        Command::Run {
            flows,
            dry_run,
            every: None,
        } => {
            let app = load_reachable(cli, flows).await?;
            run_once(&app, flows, *dry_run, cli.json, Some(stop_on_signals())).await
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
            watch(&app, flows, every, *dry_run, cli.json).await
        }
        Command::Watch { flows, every } => {
            let every = every
                .as_deref()
                .map(parse_interval)
                .transpose()
                .map_err(|e| fxk3::ConfigError::Invalid(format!("--every: {e}")))?;
            let app = load_reachable(cli, flows).await?;
            let every = every.unwrap_or_else(|| app.config().every());
            watch(&app, flows, every, false, cli.json).await
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
                out!(
                    "{}",
                    serde_json::to_string_pretty(&reports).unwrap_or_default()
                );
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
        Command::Sandbox { listen, no_demo } => sandbox(listen, *no_demo).await,
    }
}

fn init(dir: &Path, force: bool, json: bool) -> Result<u8, AppError> {
    let io = |path: &Path, e: std::io::Error| fxk3::ConfigError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut files = vec![(dir.join("fxk3.toml"), EXAMPLE)];
    for (name, text) in EXAMPLE_MAPPINGS {
        files.push((dir.join("mappings").join(name), text));
    }
    if !force && let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(fxk3::ConfigError::Invalid(format!(
            "{} exists; use --force to overwrite",
            path.display()
        ))
        .into());
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(path, text).map_err(|e| io(path, e))?;
    }
    let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    if json {
        out!("{}", serde_json::json!({"written": written}));
    } else {
        for w in &written {
            out!("wrote {w}");
        }
        out!(
            "\nNext: edit fxk3.toml, export the secrets it names (FXK3_FXIAOKE_APP_SECRET, …),\n\
             then `fxk3 validate` and `fxk3 run --dry-run`. To try it against the simulators:\n\
             `fxk3 sandbox` prints a configuration for them."
        );
    }
    Ok(OK)
}

async fn run_once(
    app: &App,
    flows: &[String],
    dry_run: bool,
    json: bool,
    stop: Option<Arc<AtomicBool>>,
) -> Result<u8, AppError> {
    let mut observers: Vec<Arc<dyn Observer>> = Vec::new();
    if !json {
        observers.push(Arc::new(Progress::new()));
    }
    let tally = Arc::new(DryRunTally::default());
    if dry_run {
        observers.push(tally.clone());
    }
    let observer: Arc<dyn Observer> = Arc::new(Fanout(observers));
    let outcomes = app.run_with(flows, dry_run, Some(observer), stop).await?;
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
fn print_dry_run_totals(outcomes: &[FlowOutcome], tally: &DryRunTally) {
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

fn exit_code(outcomes: &[FlowOutcome]) -> u8 {
    if outcomes.iter().any(|o| o.error.is_some()) {
        FLOW_FAILED
    } else if outcomes.iter().all(FlowOutcome::is_clean) {
        OK
    } else {
        RECORDS_NEED_ATTENTION
    }
}

fn print_outcomes(outcomes: &[FlowOutcome], dry_run: bool, json: bool) {
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

async fn watch(
    app: &App,
    flows: &[String],
    every: std::time::Duration,
    dry_run: bool,
    json: bool,
) -> Result<u8, AppError> {
    let (stop, mut stopped) = stop_and_notify_on_signals();
    let mut code = OK;
    while !stop.load(Ordering::SeqCst) {
        code = run_once(app, flows, dry_run, json, Some(stop.clone())).await?;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|s| *s) => {}
        }
    }
    Ok(code)
}

/// A flag set by the first Ctrl-C or SIGTERM (what systemd and `docker stop` send): the run
/// finishes the records in flight, commits its state and stops. A second signal exits at once.
fn stop_on_signals() -> Arc<AtomicBool> {
    stop_and_notify_on_signals().0
}

/// The engine's stop flag, set on Ctrl-C or SIGTERM, and a channel that says so at once (a
/// waiting `watch` wakes instead of sleeping out its interval).
fn stop_and_notify_on_signals() -> (Arc<AtomicBool>, tokio::sync::watch::Receiver<bool>) {
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
async fn shutdown_signal() -> bool {
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

async fn status(app: &App, flows: &[String], json: bool) -> Result<u8, AppError> {
    let store = app.store();
    let zone = app.config().time_zone()?;
    let mut out = Vec::new();
    for flow in app.select(flows)? {
        let name = flow.name();
        let cursor = store.cursor(name).await?;
        let intents = store.intents(name).await?;
        let dead = store.dead_letters(name, None, 1_000).await?;
        let deferred = store.deferrals(name, None, 1_000).await?;
        let runs = store.runs(name, 5).await?;
        out.push(serde_json::json!({
            "flow": name,
            "cursor": cursor.map(|c| c.version),
            "pending_writes": intents.len(),
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
            "{:<12} {:<25} {:>8} {:>6} {:>9}  last run",
            "flow",
            "cursor",
            "pending",
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
                "{:<12} {:<25} {:>8} {:>6} {:>9}  {last}",
                s["flow"].as_str().unwrap_or_default(),
                cursor,
                count("pending_writes"),
                count("dead_letters"),
                count("deferred")
            );
        }
    }
    Ok(OK)
}

fn local_time(ms: i64, zone: chrono::FixedOffset) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| {
            t.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M:%S%:z")
                .to_string()
        },
    )
}

async fn dead_letters(app: &App, cmd: &DeadLetters, json: bool) -> Result<u8, AppError> {
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

async fn validate(app: &App, flows: &[String], json: bool) -> Result<u8, AppError> {
    let results = app.validate(flows).await?;
    let errors = results
        .iter()
        .flat_map(|(_, issues)| issues)
        .filter(|i| i.severity == sync_core::mapping::Severity::Error)
        .count();
    if json {
        let v: Vec<_> = results
            .iter()
            .map(|(f, issues)| serde_json::json!({"flow": f, "issues": issues.iter().map(ToString::to_string).collect::<Vec<_>>()}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (flow, issues) in &results {
            if issues.is_empty() {
                out!("{flow}: ok");
            }
            for issue in issues {
                out!("{flow}: {issue}");
            }
        }
    }
    Ok(if errors == 0 { OK } else { BAD_CONFIGURATION })
}

async fn sandbox(listen: &str, no_demo: bool) -> Result<u8, AppError> {
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        fxk3::ConfigError::Invalid(format!("--listen: `{listen}` is not an address"))
    })?;
    let sb = sandbox::Sandbox::builder()
        .listen(addr)
        .demo_data(!no_demo)
        .start()
        .await
        .map_err(|e| AppError::Connect {
            system: "sandbox",
            reason: e.to_string(),
        })?;
    out!("{}", fxk3::demo_config_text(&sb));
    out!(
        "# Simulators running at {} — Ctrl-C to stop.",
        sb.base_url()
    );
    shutdown_signal().await;
    sb.shutdown().await;
    Ok(OK)
}
