//! Errors of the operator tool, each naming what to do about it.

use std::path::{Path, PathBuf};

/// A configuration problem, found before anything is sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("{}{}: {reason}", path.as_ref().map_or(String::new(), |p| p.display().to_string()), line.map_or(String::new(), |l| format!(" line {l}")))]
    Parse {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The line, when known.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// The settings do not make sense together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A secret's environment variable is not set.
    #[error(
        "environment variable {var} is not set; it holds {what} (secrets are never read from the file)"
    )]
    MissingEnv {
        /// The variable.
        var: String,
        /// The secret it should hold.
        what: String,
    },
    /// A mapping file could not be loaded.
    #[error("flow `{flow}`: mapping file {}: {reason}", path.display())]
    Mapping {
        /// The flow whose mapping it is.
        flow: String,
        /// The file.
        path: PathBuf,
        /// Line and reason, from the loader.
        reason: String,
    },
    /// A flow needs a connection that is not configured.
    #[error("flow `{flow}` needs the [{section}] connection, which is not configured")]
    MissingConnection {
        /// The flow.
        flow: String,
        /// `fxiaoke` or `k3cloud`.
        section: &'static str,
    },
}

impl ConfigError {
    pub(crate) fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Parse {
                path: None,
                line,
                reason,
            } => ConfigError::Parse {
                path: Some(path.to_owned()),
                line,
                reason,
            },
            other => other,
        }
    }
}

/// Anything that stops the tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A client could not be built or the operator not found.
    #[error("{system}: {reason}")]
    Connect {
        /// `fxiaoke` or `k3cloud`.
        system: &'static str,
        /// What happened.
        reason: String,
    },
    /// The sync engine or the state store.
    #[error(transparent)]
    Sync(#[from] sync_core::Error),
    /// No flow of that name.
    #[error("no flow named `{0}` in the configuration")]
    UnknownFlow(String),
    /// A system could not be reached at start (refused connection, DNS, TLS handshake,
    /// connect timeout): a wrong URL, or a network in the way; found before anything was read
    /// or written.
    #[error("cannot reach {system} at {url}: {reason}")]
    Unreachable {
        /// `Fxiaoke` or `K3Cloud`.
        system: &'static str,
        /// The setting that holds the URL (`[k3cloud] server_url`).
        setting: &'static str,
        /// The URL tried.
        url: String,
        /// What happened, with its causes.
        reason: String,
    },
}
