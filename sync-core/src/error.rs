//! The crate's error type and the error connectors report.

use std::fmt;
use std::sync::Arc;

/// What went wrong in a connector call, as far as the engine needs to know.
///
/// Connectors (adapters over the vendor SDKs) translate their own errors into this kind; the
/// engine decides from it whether a run may go on, must stop, or must reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectorErrorKind {
    /// Nothing was changed and trying again later may succeed (connect refused, rate limit, 5xx
    /// before dispatch, session lost before the call).
    Transient,
    /// Nothing was changed and trying again will not help without a fix (permission, bad
    /// configuration, unknown form).
    Permanent,
    /// A write was sent and no answer came: it may or may not have been applied.
    OutcomeUnknown,
    /// The connector does not offer this capability.
    Unsupported,
}

/// The system a connector talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum System {
    /// Fxiaoke CRM (纷享销客).
    Fxiaoke,
    /// Kingdee K3Cloud ERP (金蝶云星空).
    K3Cloud,
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            System::Fxiaoke => "Fxiaoke",
            System::K3Cloud => "K3Cloud",
        })
    }
}

/// An error reported by a [`Source`](crate::Source), [`Sink`](crate::Sink) or
/// [`SourceWriteBack`](crate::SourceWriteBack).
///
/// It keeps the vendor's code and message so that they reach the dead-letter list unchanged,
/// the system that failed, and the SDK's error as its [`source`](std::error::Error::source),
/// so that a program can tell a rate limit from a refused password by type, not by text.
///
/// ```
/// use sync_core::{ConnectorError, ConnectorErrorKind, System};
///
/// let e = ConnectorError::outcome_unknown("read timed out after dispatch");
/// assert_eq!(e.kind(), ConnectorErrorKind::OutcomeUnknown);
/// assert!(!e.is_retryable());
/// let e = ConnectorError::transient("HTTP 503")
///     .with_code("503")
///     .with_system(System::K3Cloud);
/// assert!(e.is_retryable());
/// assert_eq!(e.code(), Some("503"));
/// assert_eq!(e.system(), Some(System::K3Cloud));
/// ```
#[derive(Debug, Clone)]
pub struct ConnectorError {
    kind: ConnectorErrorKind,
    message: String,
    code: Option<String>,
    system: Option<System>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl ConnectorError {
    /// An error of the given kind.
    pub fn new(kind: ConnectorErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
            system: None,
            source: None,
        }
    }
    /// A transient error: nothing changed, try again later.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Transient, message)
    }
    /// A permanent error: nothing changed, a fix is needed.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Permanent, message)
    }
    /// A write whose outcome is unknown.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::OutcomeUnknown, message)
    }
    /// The capability is not offered by this connector.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Unsupported, what)
    }
    /// Attaches the vendor's error code (Fxiaoke `errorCode`, K3Cloud `MsgCode`).
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
    /// Names the system that failed.
    #[must_use]
    pub fn with_system(mut self, system: System) -> Self {
        self.system = Some(system);
        self
    }
    /// Keeps the error this one stands for (the SDK's), as its `source()`.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
    /// The kind of failure.
    pub fn kind(&self) -> ConnectorErrorKind {
        self.kind
    }
    /// The vendor's (or connector's) message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The vendor's error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    /// The system that failed, when the connector said.
    pub fn system(&self) -> Option<System> {
        self.system
    }
    /// The kept error as `E` (for example `fxiaoke_sdk::Error`), when it is one.
    pub fn source_as<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref()?.downcast_ref::<E>()
    }
    /// Whether the same call may succeed later without a fix.
    pub fn is_retryable(&self) -> bool {
        self.kind == ConnectorErrorKind::Transient
    }
}

/// Two errors are equal when they say the same: kind, message, code and system (the kept
/// source is what the message was written from).
impl PartialEq for ConnectorError {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.message, &self.code, self.system)
            == (other.kind, &other.message, &other.code, other.system)
    }
}

impl Eq for ConnectorError {}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} [{code}]", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConnectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Errors returned by the engine, the state stores and the mapping loader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source failed; the run stopped and its cursor stayed at the last settled record.
    #[error("source of flow `{flow}` failed: {error}")]
    Source {
        /// The flow.
        flow: String,
        /// What the connector reported.
        error: ConnectorError,
    },
    /// The sink failed for a whole call (not for single records); the run stopped.
    #[error("sink of flow `{flow}` failed: {error}")]
    Sink {
        /// The flow.
        flow: String,
        /// What the connector reported.
        error: ConnectorError,
    },
    /// A source broke its contract (records out of order or outside the window).
    #[error("source of flow `{flow}` broke its contract: {reason}")]
    SourceContract {
        /// The flow.
        flow: String,
        /// What was wrong.
        reason: String,
    },
    /// Another process (or task) holds the flow's lease.
    #[error("flow `{flow}` is locked by `{owner}` until {expires_at_ms} (epoch ms)")]
    FlowLocked {
        /// The flow.
        flow: String,
        /// The owner id of the holder.
        owner: String,
        /// When the holder's lease runs out, epoch ms.
        expires_at_ms: i64,
    },
    /// This engine's lease on the flow was taken over (it expired while the run was stalled).
    #[error("lease on flow `{flow}` was lost to another owner; the run stopped")]
    LeaseLost {
        /// The flow.
        flow: String,
    },
    /// The flow's cursor is ahead of the source's clock: a clock that ran fast set it, and
    /// records changed before it would never be read. The run refuses until the cursor is set
    /// back ([`Engine::set_cursor`](crate::Engine::set_cursor)).
    #[error(
        "the cursor of flow `{flow}` ({cursor_ms}, epoch ms) is ahead of the source's clock \
         ({now_ms}): a clock that ran fast set it, and records changed before it would be skipped; \
         check the clocks, then set the cursor back to the time that clock went wrong"
    )]
    CursorAhead {
        /// The flow.
        flow: String,
        /// The stored cursor, epoch ms.
        cursor_ms: i64,
        /// The source's time now (the server's when it tells it), epoch ms.
        now_ms: i64,
    },
    /// The state store failed.
    #[error("state store: {0}")]
    State(String),
    /// A flow or engine setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Flows depend on each other in a cycle.
    #[error("flow dependencies form a cycle through: {0:?}")]
    DependencyCycle(Vec<String>),
    /// A flow depends on a flow that was not given.
    #[error("flow `{flow}` depends on `{dependency}`, which is not in the set being run")]
    UnknownDependency {
        /// The dependent flow.
        flow: String,
        /// The missing dependency.
        dependency: String,
    },
    /// A dependency of this flow failed in the same `run_all`, so it was not run.
    #[error("flow `{flow}` skipped: its dependency `{dependency}` failed")]
    DependencyFailed {
        /// The flow that was skipped.
        flow: String,
        /// The dependency that failed.
        dependency: String,
    },
}

impl Error {
    /// Whether running again later, without a fix, may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Source { error, .. } | Error::Sink { error, .. } => error.is_retryable(),
            Error::FlowLocked { .. } | Error::LeaseLost { .. } | Error::DependencyFailed { .. } => {
                true
            }
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::State(e.to_string())
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
