//! `fxk3`: the operator's command for the Fxiaoke ⇄ K3Cloud syncs.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use fxk3::AppError;
use fxk3::config::Config;

/// `println!` that stops quietly when stdout is closed (`fxk3 status | head`) instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Exit codes (also in `--help`).
pub(crate) const OK: u8 = 0;
pub(crate) const RECORDS_NEED_ATTENTION: u8 = 1;
pub(crate) const BAD_CONFIGURATION: u8 = 2;
pub(crate) const FLOW_FAILED: u8 = 3;

mod cli;
mod commands;

use cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let metrics = fxk3::metrics::Metrics::new();
    cli::init_logging(cli.verbose, &metrics);
    match commands::execute(&cli, &metrics).await {
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
