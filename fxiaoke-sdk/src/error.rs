//! The one error type of this crate.

use std::fmt;
use std::time::Duration;

use fxk3_kernel::retry::Classify;

/// Everything that can go wrong when talking to Fxiaoke.
///
/// Match on the variant for details, or ask the predicates — [`Error::is_retryable`],
/// [`Error::is_outcome_unknown`], [`Error::error_code`] — which is what a sync engine needs.
/// No variant ever carries the app secret, the permanent code or a token.
///
/// ```
/// use fxiaoke_sdk::Error;
///
/// fn what_to_do(e: &Error) -> &'static str {
///     match e {
///         e if e.is_outcome_unknown() => "look the record up before writing it again",
///         Error::DailyQuotaExhausted(_) | Error::NoApiQuota(_) => "stop: buy or wait for quota",
///         e if e.is_retryable() => "try again later",
///         _ => "fix the request",
///     }
/// }
/// # let _ = what_to_do;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input was rejected before anything was sent (empty object API name,
    /// `limit` over 100, an offset that is not a multiple of the limit, no operator, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The request never reached the server: DNS, refused connection, TLS handshake, connect
    /// timeout. Nothing happened on the server, so any call may be retried.
    #[error("could not connect to Fxiaoke: {source}")]
    Connect {
        /// The underlying error, its URL stripped.
        #[source]
        source: reqwest::Error,
    },

    /// The request was sent but no complete answer arrived (read timeout, connection dropped).
    /// The server may or may not have acted on it.
    #[error("request sent to Fxiaoke but no answer arrived{}: {source}", timeout_note(*.timed_out))]
    NoAnswer {
        /// True when the client's timeout fired, false when the connection broke.
        timed_out: bool,
        /// The underlying error, its URL stripped.
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with an HTTP status other than 200. (Fxiaoke reports its own
    /// errors with HTTP 200; other statuses come from proxies and load balancers.)
    #[error("Fxiaoke answered HTTP {status}: {snippet}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The beginning of the body.
        snippet: String,
    },

    /// The server answered 200 with a body that is not a JSON object (an HTML page from a
    /// wrong host such as `www.fxiaoke.com`, a truncated answer).
    #[error("Fxiaoke answered HTTP {status} with a body that is not a JSON object: {snippet}")]
    NotJson {
        /// The HTTP status code.
        status: u16,
        /// The beginning of the body.
        snippet: String,
    },

    /// The API refused the call with an `errorCode` that has no dedicated variant
    /// (permissions, business rules, lookups that do not exist, system errors, …).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The corp access token was refused (20016) again right after a fresh one was fetched.
    /// (The first 20016 of a call is handled inside: the token is replaced and the call
    /// resent once.)
    #[error("token refused: {0}")]
    TokenInvalid(Box<ApiError>),

    /// The token endpoint refused the app id, app secret or permanent code (for example
    /// 10006 "the parameter appSecret is missing or illegal", 20015, 20021, 20022).
    #[error("credentials refused: {0}")]
    AuthFailed(Box<ApiError>),

    /// Too many calls: 30004 (秒频次超限) or 14001 (接口调用超过限制). The vendor allows
    /// 100 calls per 20 s per endpoint and tenant. Retryable after a pause.
    #[error("rate limited: {0}")]
    RateLimited(Box<ApiError>),

    /// 30002: the tenant's Open API calls for today are used up (counted again from 00:00).
    /// Not retryable today.
    #[error("daily API quota exhausted: {0}")]
    DailyQuotaExhausted(Box<ApiError>),

    /// 30003: the tenant has bought no Open API quota. Not retryable.
    #[error("no Open API quota: {0}")]
    NoApiQuota(Box<ApiError>),

    /// The server rejected the parameters: missing or illegal parameter codes (10001–10015,
    /// 11001–11018, 12003–12005, 15002, 32000), including 10006 for an unknown path.
    #[error("bad parameters: {0}")]
    BadParameters(Box<ApiError>),

    /// 10013 on a query: `offset` above 10,000. Page past it by keyset (the [`Pager`]
    /// does).
    ///
    /// [`Pager`]: crate::Pager
    #[error("offset out of range: {0}")]
    OffsetOutOfRange(Box<ApiError>),

    /// The answer was JSON but not in the shape this operation expects.
    #[error("could not decode the Fxiaoke answer at `{path}`: {message}")]
    Decode {
        /// JSON path of the first mismatch (for example `data.dataList[3].owner`).
        path: String,
        /// What did not match.
        message: String,
        /// The beginning of the body.
        snippet: String,
    },

    /// A write was sent and its outcome cannot be known (no answer, a proxy error page, an
    /// unreadable answer, a server-side timeout). It was **not** resent. Find out whether it
    /// happened (query by a natural key) before sending it again.
    #[error("outcome of {operation} unknown (the write may or may not have happened): {source}")]
    OutcomeUnknown {
        /// The operation, for example `crm.create` or `message.send`.
        operation: String,
        /// Why the outcome is unknown.
        #[source]
        source: Box<Error>,
    },
}

fn timeout_note(timed_out: bool) -> &'static str {
    if timed_out { " (timed out)" } else { "" }
}

/// A refusal reported by the API: `errorCode` other than 0, with everything the server said.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// `errorCode`.
    pub code: i64,
    /// `errorMessage` (unstable text: do not branch on it).
    pub message: String,
    /// `errorDescription`, often Chinese.
    pub description: Option<String>,
    /// `traceId`, to quote to Fxiaoke support.
    pub trace_id: Option<String>,
    /// The endpoint path that answered, e.g. `/cgi/crm/v2/data/query`.
    pub endpoint: String,
    /// The whole body as received (for the token endpoint: with credentials and tokens
    /// replaced by `[redacted]`).
    pub raw: String,
}

impl ApiError {
    /// The message, or the description when the message is empty.
    pub fn text(&self) -> &str {
        if self.message.trim().is_empty() {
            self.description.as_deref().unwrap_or("")
        } else {
            &self.message
        }
    }
}

impl fmt::Debug for ApiError {
    // The raw body can be long; keep Debug readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("description", &self.description)
            .field("trace_id", &self.trace_id)
            .field("endpoint", &self.endpoint)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fxiaoke error {} on {}", self.code, self.endpoint)?;
        let text = self.text();
        if !text.is_empty() {
            write!(f, ": {text}")?;
        }
        if let Some(d) = self
            .description
            .as_deref()
            .filter(|d| !d.is_empty() && *d != text && *d != "success")
        {
            write!(f, " ({d})")?;
        }
        if let Some(t) = &self.trace_id {
            write!(f, " [traceId {t}]")?;
        }
        Ok(())
    }
}

/// The documented `errorCode` values this crate acts on.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ErrorCode;

impl ErrorCode {
    /// -2 — system error.
    pub const SYSTEM_ERROR: i64 = -2;
    /// -1 — system busy (try again).
    pub const SYSTEM_BUSY: i64 = -1;
    /// 0 — success.
    pub const OK: i64 = 0;
    /// 10006 — documented as "missing scope"; the gateway uses it for a bad app secret and
    /// for unknown paths.
    pub const MISSING_SCOPE: i64 = 10006;
    /// 10013 — documented as "missing corpAccessToken"; queries use it for an offset above
    /// 10,000.
    pub const OFFSET_OUT_OF_RANGE: i64 = 10013;
    /// 14001 — call limit exceeded.
    pub const CALL_LIMIT: i64 = 14001;
    /// 20016 — corpAccessToken does not exist or has expired.
    pub const TOKEN_INVALID: i64 = 20016;
    /// 30002 — daily quota exhausted.
    pub const DAILY_QUOTA: i64 = 30002;
    /// 30003 — no Open API quota bought.
    pub const NO_API_QUOTA: i64 = 30003;
    /// 30004 — per-second frequency exceeded.
    pub const RATE_LIMITED: i64 = 30004;
    /// 50009 — service exception, such as a server-side timeout.
    pub const SERVICE_TIMEOUT: i64 = 50009;

    fn is_bad_parameter(code: i64) -> bool {
        matches!(code, 10001..=10015 | 11001..=11018 | 12003..=12005 | 15002 | 32000)
    }
}

/// Where an error code came from: it changes what some codes mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/cgi/corpAccessToken/get/V2`: every refusal is about the credentials.
    Token,
    /// A CRM data query (`…/data/query`, `…/findOne`): 10013 is the offset cap.
    Query,
    /// Anything else.
    Other,
}

impl Error {
    /// The typed error for an `errorCode` other than 0.
    pub(crate) fn from_api(api: ApiError, endpoint: Endpoint) -> Error {
        let code = api.code;
        let api = Box::new(api);
        match code {
            ErrorCode::TOKEN_INVALID if endpoint != Endpoint::Token => Error::TokenInvalid(api),
            ErrorCode::RATE_LIMITED | ErrorCode::CALL_LIMIT => Error::RateLimited(api),
            ErrorCode::DAILY_QUOTA => Error::DailyQuotaExhausted(api),
            ErrorCode::NO_API_QUOTA => Error::NoApiQuota(api),
            ErrorCode::SYSTEM_BUSY | ErrorCode::SERVICE_TIMEOUT => Error::Api(api),
            _ if endpoint == Endpoint::Token => Error::AuthFailed(api),
            ErrorCode::OFFSET_OUT_OF_RANGE if endpoint == Endpoint::Query => {
                Error::OffsetOutOfRange(api)
            }
            c if ErrorCode::is_bad_parameter(c) => Error::BadParameters(api),
            _ => Error::Api(api),
        }
    }

    /// Whether retrying the same call later can succeed.
    ///
    /// True for connection failures, missing answers, bodies that are not JSON (cut short or
    /// garbled on the way), HTTP 5xx / 429, rate limits (30004,
    /// 14001), "system busy" (-1) and server-side timeouts (50009). False for
    /// [`Error::OutcomeUnknown`] (reconcile first), quotas, bad parameters and refusals.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A body cut short or garbled on the way (`NotJson`): the next answer is likely whole.
            Error::Connect { .. }
            | Error::NoAnswer { .. }
            | Error::NotJson { .. }
            | Error::RateLimited(_) => true,
            Error::Http { status, .. } => *status == 429 || (500..600).contains(status),
            Error::Api(a) => matches!(a.code, ErrorCode::SYSTEM_BUSY | ErrorCode::SERVICE_TIMEOUT),
            _ => false,
        }
    }

    /// True for [`Error::OutcomeUnknown`]: a write that may or may not have happened.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// The vendor's `errorCode`, when the server sent one.
    pub fn error_code(&self) -> Option<i64> {
        self.api_error().map(|a| a.code)
    }

    /// The vendor's refusal, when the server sent one (also through
    /// [`Error::OutcomeUnknown`]).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api(a)
            | Error::TokenInvalid(a)
            | Error::AuthFailed(a)
            | Error::RateLimited(a)
            | Error::DailyQuotaExhausted(a)
            | Error::NoApiQuota(a)
            | Error::BadParameters(a)
            | Error::OffsetOutOfRange(a) => Some(a),
            Error::OutcomeUnknown { source, .. } => source.api_error(),
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
            Error::NotJson { .. } => "not_json",
            Error::Api(_) => "api",
            Error::TokenInvalid(_) => "token_invalid",
            Error::AuthFailed(_) => "auth_failed",
            Error::RateLimited(_) => "rate_limited",
            Error::DailyQuotaExhausted(_) => "daily_quota_exhausted",
            Error::NoApiQuota(_) => "no_api_quota",
            Error::BadParameters(_) => "bad_parameters",
            Error::OffsetOutOfRange(_) => "offset_out_of_range",
            Error::Decode { .. } => "decode",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
        }
    }
}

/// What the retry loop needs to know; see [`crate::retry`].
impl Classify for Error {
    /// Whether the request left this process (so a write may have taken effect).
    fn was_dispatched(&self) -> bool {
        !matches!(self, Error::InvalidInput(_) | Error::Connect { .. })
    }

    /// Whether the answer says what happened: a refusal by the API or a 4xx status, as
    /// opposed to no answer or an unreadable one. A server-side timeout (50009) and "system
    /// error" (-2) say nothing of a write that reached the service. "System busy" (-1) is
    /// taken as a refusal: a busy server turns calls away, and the reference's only write
    /// answer with -1 is a business refusal (its code a placeholder, unconfirmed) — were it
    /// unknown, a refused record would be looked up and sent again on every run instead of
    /// reaching the dead-letter list with its reason.
    fn outcome_known(&self) -> bool {
        match self {
            Error::Http { status, .. } => (400..500).contains(status),
            Error::Api(a) => {
                !matches!(a.code, ErrorCode::SERVICE_TIMEOUT | ErrorCode::SYSTEM_ERROR)
            }
            Error::InvalidInput(_)
            | Error::Connect { .. }
            | Error::TokenInvalid(_)
            | Error::AuthFailed(_)
            | Error::RateLimited(_)
            | Error::DailyQuotaExhausted(_)
            | Error::NoApiQuota(_)
            | Error::BadParameters(_)
            | Error::OffsetOutOfRange(_) => true,
            Error::NoAnswer { .. }
            | Error::NotJson { .. }
            | Error::Decode { .. }
            | Error::OutcomeUnknown { .. } => false,
        }
    }

    fn is_retryable(&self) -> bool {
        Error::is_retryable(self)
    }

    /// A write that never left this process, or that the gateway refused before processing:
    /// its rate limits (and an HTTP 429 in front of it) turn a call away before it reaches the
    /// business service.
    fn write_may_be_resent(&self) -> bool {
        !self.was_dispatched()
            || matches!(
                self,
                Error::RateLimited(_) | Error::Http { status: 429, .. }
            )
    }

    /// How long a retry should wait at least.
    fn retry_floor(&self) -> Option<Duration> {
        match self {
            Error::RateLimited(_) | Error::Http { status: 429, .. } => Some(Duration::from_secs(1)),
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

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> ApiError {
        ApiError {
            code,
            message: "m".into(),
            description: None,
            trace_id: Some("E-O.1".into()),
            endpoint: "/cgi/x".into(),
            raw: String::new(),
        }
    }

    #[test]
    fn codes_map_to_kinds() {
        use Endpoint::{Other, Query, Token};
        let cases = [
            (20016, Other, "token_invalid"),
            (20016, Token, "auth_failed"),
            (30004, Other, "rate_limited"),
            (14001, Other, "rate_limited"),
            (30004, Token, "rate_limited"),
            (30002, Other, "daily_quota_exhausted"),
            (30003, Other, "no_api_quota"),
            (10013, Query, "offset_out_of_range"),
            (10013, Other, "bad_parameters"),
            (10006, Other, "bad_parameters"),
            (10006, Token, "auth_failed"),
            (15002, Other, "bad_parameters"),
            (32000, Other, "bad_parameters"),
            (-1, Other, "api"),
            (-1, Token, "api"),
            (50009, Other, "api"),
            (20017, Other, "api"),
            (201_112_011, Other, "api"),
        ];
        for (code, endpoint, label) in cases {
            assert_eq!(
                Error::from_api(api(code), endpoint).kind_label(),
                label,
                "{code} at {endpoint:?}"
            );
        }
    }

    #[test]
    fn retryable_and_codes() {
        assert!(Error::from_api(api(30004), Endpoint::Other).is_retryable());
        assert!(Error::from_api(api(-1), Endpoint::Other).is_retryable());
        assert!(Error::from_api(api(50009), Endpoint::Other).is_retryable());
        assert!(!Error::from_api(api(30002), Endpoint::Other).is_retryable());
        assert!(!Error::from_api(api(30003), Endpoint::Other).is_retryable());
        assert!(!Error::from_api(api(10013), Endpoint::Query).is_retryable());
        let e = Error::OutcomeUnknown {
            operation: "crm.create".into(),
            source: Box::new(Error::from_api(api(50009), Endpoint::Other)),
        };
        assert!(!e.is_retryable());
        assert_eq!(e.error_code(), Some(50009));
        assert_eq!(Error::InvalidInput("x".into()).error_code(), None);
    }

    #[test]
    fn display_names_code_endpoint_and_trace() {
        let mut a = api(30003);
        a.message = "客户没有购买openapi配额".into();
        let shown = Error::from_api(a, Endpoint::Other).to_string();
        assert_eq!(
            shown,
            "no Open API quota: Fxiaoke error 30003 on /cgi/x: 客户没有购买openapi配额 [traceId E-O.1]"
        );
    }
}
