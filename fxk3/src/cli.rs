//! The command line: commands, options, and logging.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
pub(crate) struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "fxk3.toml",
        env = "FXK3_CONFIG"
    )]
    pub(crate) config: PathBuf,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Machine-readable output (JSON) instead of tables and progress bars.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        /// Also serve the web page and /metrics, at serve.listen (127.0.0.1:9184) or ADDR.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
        serve: Option<String>,
    },
    /// Serve the operator's web page, its JSON endpoints and /metrics (until Ctrl-C).
    Serve {
        /// Where to listen (default serve.listen, else 127.0.0.1:9184).
        #[arg(long)]
        listen: Option<String>,
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
    /// Read every synced record again: changes no run saw are written, and records deleted
    /// in the source close or delete their ERP orders and forbid their customers (nightly).
    Sweep {
        /// Flows to sweep, in dependency order; default all.
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
pub(crate) enum DeadLetters {
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

/// Logs on standard error, and the SDKs' call spans counted into `metrics`.
pub(crate) fn init_logging(verbose: u8, metrics: &fxk3::metrics::Metrics) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
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
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(filter);
    // Whatever the log level, the calls are counted: their spans are at info.
    let calls = metrics.call_layer().with_filter(
        tracing_subscriber::filter::Targets::new()
            .with_target("fxiaoke_sdk", tracing::Level::INFO)
            .with_target("k3cloud_sdk", tracing::Level::INFO),
    );
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(calls)
        .try_init();
}
