//! The one error type of this crate.

use std::fmt;
use std::time::Duration;

use fxk3_kernel::retry::Classify;
use serde::Deserialize;

use crate::de;

/// Everything that can go wrong when talking to K3Cloud.
///
/// Match on the variant for details, or ask the predicates — [`Error::is_retryable`],
/// [`Error::is_outcome_unknown`], [`Error::msg_code`] — which is what a sync engine needs.
/// No variant ever carries a password, app secret or session id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input was rejected before anything was sent (empty form id, a model that is
    /// not a JSON object, `Limit` out of range, an unparseable server URL, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The request never reached the server: DNS, refused connection, TLS handshake, connect
    /// timeout. Nothing was done on the server, so any call may be retried.
    #[error("could not connect to K3Cloud: {source}")]
    Connect {
        /// The underlying error (its URL is stripped; the URL never carries a secret here anyway).
        #[source]
        source: reqwest::Error,
    },

    /// The request was sent but no complete answer arrived (read timeout, connection dropped).
    /// The server may or may not have acted on it.
    #[error("request sent to K3Cloud but no answer arrived{}: {source}", timeout_note(*.timed_out))]
    NoAnswer {
        /// True when the client's timeout fired, false when the connection broke.
        timed_out: bool,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with an HTTP status other than 200/206.
    #[error("K3Cloud answered HTTP {status}: {snippet}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The beginning of the body (an IIS error page, "Fail to verify thirty passport", …).
        snippet: String,
    },

    /// The API gateway (the retired `api.kingdee.com/galaxyapi`, or a gateway in front of a
    /// private server) rejected the call with `{errcode, description}` — usually HTTP 519.
    #[error("K3Cloud gateway rejected the call (HTTP {status}, errcode {errcode}): {description}")]
    Gateway {
        /// The HTTP status code (519 on the galaxy gateway).
        status: u16,
        /// The gateway's `errcode` (4002 app id empty, 4006 timestamp expired, 5001 API not found).
        errcode: i64,
        /// `description` (English) or, when absent, `description_cn`.
        description: String,
    },

    /// The server answered 200/206 with a body that is not JSON (an HTML login page behind a
    /// proxy, a wrong server URL, a truncated answer).
    #[error("K3Cloud answered HTTP {status} with a body that is not JSON: {snippet}")]
    NotJson {
        /// The HTTP status code.
        status: u16,
        /// The beginning of the body.
        snippet: String,
    },

    /// The server answered `response_error:{"Message":…}`: an exception inside K3Cloud.
    #[error("K3Cloud raised an exception: {message}")]
    ServerException {
        /// The exception's `Message`.
        message: String,
        /// The whole body as received.
        raw: String,
    },

    /// The server processed the call and refused it (`IsSuccess: false`): validation failures,
    /// missing permissions, unknown fields, illegal status transitions, …
    #[error("{0}")]
    Business(Box<BusinessError>),

    /// The credentials were refused: a login answered with a failure, or — with signed
    /// headers — MsgCode 1 ("会话信息已丢失"), which then means the app id, secret, user or
    /// integration entry is wrong, not that a session expired. Retrying does not help.
    #[error("K3Cloud refused the credentials: {message}")]
    AuthFailed {
        /// The server's explanation.
        message: String,
        /// `LoginResultType` when the refusal came from a login call.
        login_result_type: Option<i64>,
    },

    /// The session was lost again right after a fresh login (MsgCode 1 twice in a row).
    #[error("K3Cloud session lost again right after logging in again: {message}")]
    SessionExpired {
        /// The server's message.
        message: String,
    },

    /// The answer was JSON but not in the shape this operation expects.
    #[error("could not decode the K3Cloud answer at `{path}`: {message}")]
    Decode {
        /// JSON path of the first mismatch, from the root of the answer: `[3].FQty` (row 3,
        /// field key `FQty`, of a query), `Result.ResponseStatus.Errors`, `.` for the root.
        path: String,
        /// What did not match.
        message: String,
        /// The beginning of the body.
        snippet: String,
    },

    /// A write was sent and its outcome cannot be known (no answer, a gateway error, an
    /// undecodable answer). It was **not** resent. Find out whether it happened (query by the
    /// document number or the field holding your external id) before sending it again.
    #[error("outcome of {operation} unknown (the write may or may not have happened): {source}")]
    OutcomeUnknown {
        /// The operation, for example `Save` or `BatchSave`.
        operation: String,
        /// Why the outcome is unknown.
        #[source]
        source: Box<Error>,
    },

    /// An asynchronous (`QUERY` mode) call did not complete within the configured polls.
    #[error("K3Cloud task {task_id} still not complete after {polls} polls")]
    TaskPending {
        /// The server's task id, to poll again later with `Client::query_async_result`.
        task_id: String,
        /// Polls made.
        polls: u32,
    },
}

fn timeout_note(timed_out: bool) -> &'static str {
    if timed_out { " (timed out)" } else { "" }
}

impl Error {
    /// Whether retrying the same call later can succeed.
    ///
    /// True for connection failures, bodies that are not JSON (cut short or garbled on the
    /// way), gateway/server overload (HTTP 5xx, 429), and the
    /// business codes that mean "try later" (MsgCode 13 network-control conflict, 14 call
    /// limit). False for [`Error::OutcomeUnknown`]: reconcile first.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A body cut short or garbled on the way (`NotJson`): the next answer is likely whole.
            Error::Connect { .. } | Error::NoAnswer { .. } | Error::NotJson { .. } => true,
            Error::Http { status, .. } => *status == 429 || (500..600).contains(status),
            Error::Business(b) => b.is_transient(),
            _ => false,
        }
    }

    /// True for [`Error::OutcomeUnknown`]: a write that may or may not have happened.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// True when the session or the credentials were refused.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::AuthFailed { .. } | Error::SessionExpired { .. }
        )
    }

    /// The K3Cloud `MsgCode` of a business error (see [`MsgCode`]).
    pub fn msg_code(&self) -> Option<i64> {
        match self {
            Error::Business(b) => b.msg_code,
            Error::OutcomeUnknown { source, .. } => source.msg_code(),
            _ => None,
        }
    }

    /// The business error, if this is one.
    pub fn business(&self) -> Option<&BusinessError> {
        match self {
            Error::Business(b) => Some(b),
            _ => None,
        }
    }

    /// A short, stable name of the variant, for logs and metrics.
    pub fn kind_label(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "invalid_input",
            Error::Connect { .. } => "connect",
            Error::NoAnswer { .. } => "no_answer",
            Error::Http { .. } => "http_status",
            Error::Gateway { .. } => "gateway",
            Error::NotJson { .. } => "not_json",
            Error::ServerException { .. } => "server_exception",
            Error::Business(_) => "business",
            Error::AuthFailed { .. } => "auth_failed",
            Error::SessionExpired { .. } => "session_expired",
            Error::Decode { .. } => "decode",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
            Error::TaskPending { .. } => "task_pending",
        }
    }
}

/// What the retry loop needs to know; see [`crate::retry`].
impl Classify for Error {
    /// Whether the request left this process (so a write may have taken effect).
    fn was_dispatched(&self) -> bool {
        !matches!(self, Error::InvalidInput(_) | Error::Connect { .. })
    }

    /// Whether the server gave an answer that says what happened (a refusal, a gateway
    /// rejection), as opposed to no answer or an unreadable one. Not known: a gateway's 5xx
    /// answer with a JSON body (502, 504: the call may have reached K3Cloud; the galaxy
    /// gateway's own refusals come as 519 or 4xx), and a `response_error:` exception, which
    /// K3Cloud raises wherever it fails, after a save too.
    fn outcome_known(&self) -> bool {
        match self {
            Error::InvalidInput(_)
            | Error::Connect { .. }
            | Error::AuthFailed { .. }
            | Error::SessionExpired { .. }
            | Error::Business(_) => true,
            Error::Gateway { status, .. } => *status == 519 || (400..500).contains(status),
            Error::Http { status, .. } => (400..500).contains(status),
            _ => false,
        }
    }

    fn is_retryable(&self) -> bool {
        Error::is_retryable(self)
    }

    /// Unless the refusal also reports saved rows: resending would save those rows twice.
    fn write_may_be_resent(&self) -> bool {
        !matches!(self, Error::Business(b) if !b.success_entities.is_empty())
    }

    /// How long a retry should wait at least, when the server says so.
    fn retry_floor(&self) -> Option<Duration> {
        match self {
            Error::Http { status: 429, .. } => Some(Duration::from_secs(1)),
            Error::Business(b) if b.msg_code == Some(MsgCode::CALL_LIMIT) => {
                Some(Duration::from_secs(1))
            }
            _ => None,
        }
    }

    fn into_outcome_unknown(self, operation: &str) -> Self {
        Error::OutcomeUnknown {
            operation: operation.to_owned(),
            source: Box::new(self),
        }
    }
}

/// A refusal reported by K3Cloud in `Result.ResponseStatus` with `IsSuccess: false`.
///
/// Keeps every `Errors[]` entry, any rows that did succeed, the MsgCode and the raw body.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct BusinessError {
    /// `MsgCode` (absent on old servers). See [`MsgCode`] for the documented values.
    pub msg_code: Option<i64>,
    /// `ErrorCode` (500 on most failures).
    pub error_code: Option<i64>,
    /// Every entry of `Errors[]`, in order.
    pub errors: Vec<ErrorEntry>,
    /// `SuccessEntitys[]` of a partial success (BatchSave, multi-number operations).
    pub success_entities: Vec<SuccessEntity>,
    /// The whole body as received.
    pub raw: String,
}

impl BusinessError {
    /// The first error message, or an empty string.
    pub fn message(&self) -> &str {
        self.errors.first().map_or("", |e| e.message.as_str())
    }

    /// Session lost / credentials refused (MsgCode 1, or the message when MsgCode is absent).
    pub fn is_session_lost(&self) -> bool {
        self.msg_code == Some(MsgCode::CONTEXT_LOST)
            || (self.msg_code.is_none()
                && self
                    .errors
                    .iter()
                    .any(|e| e.message.contains(SESSION_LOST_TEXT)))
    }

    /// "Try later" codes: network-control conflict (13) and call limit (14).
    pub fn is_transient(&self) -> bool {
        crate::response::is_transient_code(self.msg_code)
    }
}

/// The text K3Cloud sends with MsgCode 1 ("session information lost, log in again").
pub(crate) const SESSION_LOST_TEXT: &str = "会话信息已丢失";

impl fmt::Debug for BusinessError {
    // The raw body can be long; keep Debug readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusinessError")
            .field("msg_code", &self.msg_code)
            .field("error_code", &self.error_code)
            .field("errors", &self.errors)
            .field("success_entities", &self.success_entities)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

impl fmt::Display for BusinessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "K3Cloud refused the call")?;
        if let Some(code) = self.msg_code {
            write!(f, " (MsgCode {code} {})", MsgCode::describe(code))?;
        }
        match self.errors.as_slice() {
            [] => Ok(()),
            [one] => write!(f, ": {one}"),
            [first, rest @ ..] => write!(f, ": {first} (and {} more)", rest.len()),
        }
    }
}

/// One entry of `ResponseStatus.Errors[]` (or `SuccessMessages[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct ErrorEntry {
    /// The field the message is about (`null` or empty when none).
    #[serde(rename = "FieldName", default, deserialize_with = "de::opt_string")]
    pub field_name: Option<String>,
    /// The message (Chinese whatever the lcid).
    #[serde(rename = "Message", default, deserialize_with = "de::string")]
    pub message: String,
    /// Index of the row in the request's `Model` array or `Numbers` list, when given.
    #[serde(rename = "DIndex", default, deserialize_with = "de::opt_i64")]
    pub d_index: Option<i64>,
}

impl fmt::Display for ErrorEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.d_index {
            write!(f, "[row {i}] ")?;
        }
        match self.field_name.as_deref() {
            Some(field) if !field.is_empty() => write!(f, "{field}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// One entry of `ResponseStatus.SuccessEntitys[]` (sic): a document the call acted on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct SuccessEntity {
    /// Internal id (`FID` / `FMATERIALID` …), as text because servers send numbers or strings.
    #[serde(rename = "Id", default, deserialize_with = "de::id")]
    pub id: String,
    /// Document or base-data number (`FBillNo` / `FNumber`).
    #[serde(rename = "Number", default, deserialize_with = "de::string")]
    pub number: String,
    /// Index of the row in the request's `Model` array or `Numbers` list.
    #[serde(rename = "DIndex", default, deserialize_with = "de::opt_i64")]
    pub d_index: Option<i64>,
}

/// The documented `MsgCode` values.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MsgCode;

impl MsgCode {
    /// 0 — success / default.
    pub const OK: i64 = 0;
    /// 1 — context (session) lost; with signed headers: credentials refused.
    pub const CONTEXT_LOST: i64 = 1;
    /// 2 — no permission.
    pub const NO_PERMISSION: i64 = 2;
    /// 4 — exception (unknown form id, bad FilterString).
    pub const EXCEPTION: i64 = 4;
    /// 8 — parameter error.
    pub const PARAMETER: i64 = 8;
    /// 9 — field or value does not exist.
    pub const FIELD_NOT_FOUND: i64 = 9;
    /// 10 — no matching data.
    pub const NOT_FOUND: i64 = 10;
    /// 11 — validation failed (duplicate number, already audited, …).
    pub const VALIDATION: i64 = 11;
    /// 12 — not operable.
    pub const NOT_OPERABLE: i64 = 12;
    /// 13 — network-control (concurrent edit lock) conflict.
    pub const NETWORK_CONTROL: i64 = 13;
    /// 14 — call limit.
    pub const CALL_LIMIT: i64 = 14;
    /// 15 — administrator login forbidden.
    pub const ADMIN_FORBIDDEN: i64 = 15;

    /// A short English description of a MsgCode.
    pub fn describe(code: i64) -> &'static str {
        match code {
            0 => "default",
            1 => "context lost",
            2 => "no permission",
            3 => "operation id empty",
            4 => "exception",
            5 => "form id empty",
            6 => "database operation failed",
            7 => "licence error",
            8 => "parameter error",
            9 => "field or value does not exist",
            10 => "no matching data",
            11 => "validation failed",
            12 => "not operable",
            13 => "network-control conflict",
            14 => "call limit",
            15 => "administrator login forbidden",
            _ => "undocumented",
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
