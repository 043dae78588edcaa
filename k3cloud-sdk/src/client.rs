//! [`Client`] and [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use url::Url;

use crate::auth::{Auth, Identity, LoginInfo, SessionManager};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::form::{Allocate, BatchSave, Operation, OperationKind, Push, Save, View};
use crate::generic::{CallResult, FormCall, FormIdPlace};
use crate::limit::{RateLimit, RateLimiter};
use crate::query::Query;
use crate::raw::RawCall;
use crate::report::ReportQuery;
use crate::retry::Idempotency;
use crate::retry::RetryPolicy;
use crate::transport::Transport;
use crate::workflow::WorkflowAudit;

/// A K3Cloud WebAPI client.
///
/// Cheap to clone (an `Arc` inside) and safe to share across tasks: clones share the session,
/// the cookie jar, the connection pool and the rate limit.
///
/// ```no_run
/// use k3cloud_sdk::{Auth, Client};
///
/// # async fn run() -> Result<(), k3cloud_sdk::Error> {
/// let client = Client::builder("https://erp.example.com/k3cloud/")
///     .account("5db25ac8d2b819")
///     .user("webapi")
///     .auth(Auth::signed("204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ", "fb7d46647ac346dbb5fcd45b65512a45"))
///     .build()?;
///
/// let rows: Vec<(i64, String)> = client
///     .query("BD_Customer")
///     .fields(["FCUSTID", "FNumber"])
///     .filter("FDocumentStatus = 'C'")
///     .order_by("FCUSTID ASC")
///     .send()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: Arc<Transport>,
    pub(crate) settings: Arc<Settings>,
}

/// Client-wide settings the operations read.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) async_poll_interval: Duration,
    pub(crate) async_max_polls: u32,
    pub(crate) attachment_chunk_bytes: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Client {
    /// Starts building a client for the K3Cloud site at `server_url`
    /// (`https://host/k3cloud/`; `https://host` means `https://host/k3cloud/`).
    pub fn builder(server_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(server_url)
    }

    /// HTTP requests this client (and its clones) sent so far, logins and retries included.
    pub fn requests_sent(&self) -> u64 {
        self.transport
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The server's time now, estimated from the `Date` header of the last answer that had
    /// one (to the second); `None` before any. A sync reads "changed since" by the server's
    /// times, so it should measure its windows with this clock rather than the local one.
    pub fn server_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.transport.server_clock.now()
    }

    /// The site URL every service path is joined to (always ends with `/`).
    pub fn base_url(&self) -> &Url {
        &self.transport.base
    }

    /// Logs in now with a session mode, replacing any session, and returns what the server
    /// said. Useful to check credentials at start-up; calls log in by themselves when needed.
    ///
    /// With signed headers there is no login: this returns [`Error::InvalidInput`].
    pub async fn login(&self) -> Result<LoginInfo> {
        self.transport.login_now().await
    }
}

/// The operations. Each returns a builder; nothing is sent until its `send()`.
impl Client {
    /// Save (保存) one document: create it, or update it when the model carries its id.
    pub fn save(&self, form_id: impl Into<String>) -> Save<'_> {
        Save::new(self, "Save", form_id)
    }

    /// Draft (暂存) one document: save without validation, status Z.
    pub fn draft(&self, form_id: impl Into<String>) -> Save<'_> {
        Save::new(self, "Draft", form_id)
    }

    /// BatchSave (批量保存) several documents, with a result per row.
    pub fn batch_save(&self, form_id: impl Into<String>) -> BatchSave<'_> {
        BatchSave::new(self, form_id)
    }

    /// Submit (提交) documents.
    pub fn submit(&self, form_id: impl Into<String>) -> Operation<'_> {
        Operation::new(self, OperationKind::Submit, form_id)
    }

    /// Audit (审核) documents.
    pub fn audit(&self, form_id: impl Into<String>) -> Operation<'_> {
        Operation::new(self, OperationKind::Audit, form_id)
    }

    /// UnAudit (反审核) documents.
    pub fn unaudit(&self, form_id: impl Into<String>) -> Operation<'_> {
        Operation::new(self, OperationKind::UnAudit, form_id)
    }

    /// Delete (删除) documents.
    pub fn delete(&self, form_id: impl Into<String>) -> Operation<'_> {
        Operation::new(self, OperationKind::Delete, form_id)
    }

    /// CancelAssign (撤销): withdraw submitted documents.
    pub fn cancel_assign(&self, form_id: impl Into<String>) -> Operation<'_> {
        Operation::new(self, OperationKind::CancelAssign, form_id)
    }

    /// ExcuteOperation (sic): run an operation by number — `Forbid`, `Enable`, `Cancel`,
    /// `CloseBill`, …
    pub fn execute_operation(
        &self,
        form_id: impl Into<String>,
        op_number: impl Into<String>,
    ) -> Operation<'_> {
        Operation::new(self, OperationKind::Custom(op_number.into()), form_id)
    }

    /// View (查看) one document.
    pub fn view(&self, form_id: impl Into<String>) -> View<'_> {
        View::new(self, form_id)
    }

    /// Push (下推): create target documents from source documents.
    pub fn push(&self, form_id: impl Into<String>) -> Push<'_> {
        Push::new(self, form_id)
    }

    /// Allocate (分配) base data to organisations.
    pub fn allocate(&self, form_id: impl Into<String>) -> Allocate<'_> {
        Allocate::new(self, "Allocate", form_id)
    }

    /// CancelAllocate (取消分配).
    pub fn cancel_allocate(&self, form_id: impl Into<String>) -> Allocate<'_> {
        Allocate::new(self, "CancelAllocate", form_id)
    }

    /// WorkflowAudit (工作流审批).
    pub fn workflow_audit(&self, form_id: impl Into<String>) -> WorkflowAudit<'_> {
        WorkflowAudit::new(self, form_id)
    }

    /// ExecuteBillQuery (单据查询): rows as arrays, decoded by field key.
    pub fn query(&self, form_id: impl Into<String>) -> Query<'_> {
        Query::execute_bill_query(self, form_id)
    }

    /// BillQuery (单据查询, JSON rows; servers from 2023-09).
    pub fn bill_query(&self, form_id: impl Into<String>) -> Query<'_> {
        Query::bill_query(self, form_id)
    }

    /// GetSysReportData (查询报表数据).
    pub fn report(&self, form_id: impl Into<String>) -> ReportQuery<'_> {
        ReportQuery::new(self, form_id)
    }

    /// FlexSave (弹性域保存).
    pub fn flex_save(&self, form_id: impl Into<String>) -> FormCall<'_> {
        FormCall::new(
            self,
            "FlexSave",
            form_id,
            FormIdPlace::Top,
            Idempotency::NonIdempotent,
        )
    }

    /// Disassembly (拆单).
    pub fn disassembly(&self, form_id: impl Into<String>) -> FormCall<'_> {
        FormCall::new(
            self,
            "Disassembly",
            form_id,
            FormIdPlace::Top,
            Idempotency::NonIdempotent,
        )
    }

    /// GroupSave (分组保存).
    pub fn group_save(&self, form_id: impl Into<String>) -> FormCall<'_> {
        FormCall::new(
            self,
            "GroupSave",
            form_id,
            FormIdPlace::Top,
            Idempotency::NonIdempotent,
        )
    }

    /// QueryGroupInfo (查询分组信息).
    pub fn query_group_info(&self, form_id: impl Into<String>) -> FormCall<'_> {
        FormCall::new(
            self,
            "QueryGroupInfo",
            form_id,
            FormIdPlace::InData,
            Idempotency::Idempotent,
        )
    }

    /// GroupDelete (分组删除).
    pub fn group_delete(&self, form_id: impl Into<String>) -> FormCall<'_> {
        FormCall::new(
            self,
            "GroupDelete",
            form_id,
            FormIdPlace::InData,
            Idempotency::NonIdempotent,
        )
    }

    /// SendMsg (发送消息): add messages with [`FormCall::push_model`].
    pub fn send_msg(&self) -> FormCall<'_> {
        FormCall::new(
            self,
            "SendMsg",
            "",
            FormIdPlace::None,
            Idempotency::NonIdempotent,
        )
    }

    /// SwitchOrg (切换组织): switch the session's organisation by number.
    pub async fn switch_org(&self, org_number: &str) -> Result<CallResult> {
        if org_number.trim().is_empty() {
            return Err(Error::InvalidInput("organisation number is empty".into()));
        }
        FormCall::new(
            self,
            "SwitchOrg",
            "",
            FormIdPlace::None,
            Idempotency::Idempotent,
        )
        .param("OrgNumber", org_number)
        .send()
        .await
    }

    /// Any service with any JSON body.
    pub fn raw(&self, service: &str) -> RawCall<'_> {
        RawCall::new(self, service)
    }

    /// Any service with any JSON body, treated as a write (never resent once sent without
    /// an answer). A bare method name (`"Save"`) means `DynamicFormService.Save`.
    pub async fn call_raw(
        &self,
        service: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.raw(service).body(body).send().await
    }
}

/// Builds a [`Client`]. Created by [`Client::builder`].
pub struct ClientBuilder {
    server_url: String,
    acct_id: String,
    user: String,
    lcid: u32,
    org: String,
    auth: Option<Auth>,
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: Option<String>,
    http_client: Option<reqwest::Client>,
    accept_invalid_certs: bool,
    http2: bool,
    retry: RetryPolicy,
    limiter: Option<Arc<dyn RateLimiter>>,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("server_url", &self.server_url)
            .field("acct_id", &self.acct_id)
            .field("user", &self.user)
            .field("lcid", &self.lcid)
            .field("org", &self.org)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Names this SDK and its version.
const DEFAULT_USER_AGENT: &str = concat!("k3cloud-sdk-rust/", env!("CARGO_PKG_VERSION"));

impl ClientBuilder {
    fn new(server_url: impl Into<String>) -> Self {
        ClientBuilder {
            server_url: server_url.into(),
            acct_id: String::new(),
            user: String::new(),
            lcid: 2052,
            org: "0".into(),
            auth: None,
            connect_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
            user_agent: None,
            http_client: None,
            accept_invalid_certs: false,
            http2: false,
            retry: RetryPolicy::default(),
            limiter: None,
            clock: Arc::new(SystemClock),
            settings: Settings {
                async_poll_interval: Duration::from_secs(1),
                async_max_polls: 600,
                attachment_chunk_bytes: 1024 * 1024,
            },
        }
    }

    /// The account (data centre) id, `acctID`/`dbId` — 14 hex characters on every server seen.
    pub fn account(mut self, acct_id: impl Into<String>) -> Self {
        self.acct_id = acct_id.into();
        self
    }

    /// The user name (the integration user of a 第三方系统登录授权 entry, or the login user).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The credentials and the way to use them. Required.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The language id: 2052 (简体中文, the default), 1033 (English), 3076 (繁體中文).
    /// Server messages stay Chinese whatever this says.
    pub fn lcid(mut self, lcid: u32) -> Self {
        self.lcid = lcid;
        self
    }

    /// The organisation number for signed headers (`OrgNum`, default `0`).
    pub fn org(mut self, org: impl Into<String>) -> Self {
        self.org = org.into();
        self
    }

    /// Time allowed to open a connection (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one whole call (default 120 s, as the vendor SDKs: BatchSave and Push
    /// on large documents are slow).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sends through your own `reqwest::Client` (proxies, pools, custom roots). Its TLS and
    /// HTTP-version settings are then yours, and `connect_timeout`, `http2` and
    /// `danger_accept_invalid_certs` are ignored. Do not enable its cookie store: this client
    /// keeps its own jar.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Accepts any TLS certificate, for on-premises servers with a self-signed one.
    ///
    /// This turns off protection against anyone between you and the server; prefer adding the
    /// server's certificate to a client given to [`ClientBuilder::http_client`].
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Lets the connection use HTTP/2 (off by default: some deployments answer HTTP/2 with 502).
    #[cfg(feature = "http2")]
    pub fn http2(mut self, enable: bool) -> Self {
        self.http2 = enable;
        self
    }

    /// How transient failures are retried (default: 3 attempts, 200 ms doubling to 5 s).
    /// Writes are never resent once sent without an answer.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Caps concurrent calls and the call rate of this client and its clones (off by default).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "builder settings are taken by value"
    )]
    pub fn rate_limit(self, limit: RateLimit) -> Self {
        self.rate_limiter(limit.limiter())
    }

    /// Uses your own [`RateLimiter`], or one limiter shared by several clients of a server
    /// ([`RateLimit::limiter`]).
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The clock for the timestamps of signed headers and LoginBySign (tests pin it).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How often and how many times an asynchronous (`QUERY` mode) BatchSave is polled
    /// (default every second, 600 times).
    pub fn async_polling(mut self, interval: Duration, max_polls: u32) -> Self {
        self.settings.async_poll_interval = interval;
        self.settings.async_max_polls = max_polls.max(1);
        self
    }

    /// Size of one attachment upload chunk before base64 (default 1 MiB).
    pub fn attachment_chunk_bytes(mut self, bytes: usize) -> Self {
        self.settings.attachment_chunk_bytes = bytes.max(1);
        self
    }

    /// Checks the settings and builds the client. Nothing is sent.
    pub fn build(self) -> Result<Client> {
        let base = normalize_base(&self.server_url)?;
        if self.acct_id.trim().is_empty() {
            return Err(Error::InvalidInput("account (acct id) is empty".into()));
        }
        if self.user.trim().is_empty() {
            return Err(Error::InvalidInput("user name is empty".into()));
        }
        let auth = self
            .auth
            .ok_or_else(|| Error::InvalidInput("no credentials: call .auth(…)".into()))?;
        auth.check().map_err(Error::InvalidInput)?;
        if self.timeout.is_zero() {
            return Err(Error::InvalidInput("timeout must be positive".into()));
        }
        let user_agent = self.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT);
        let user_agent = HeaderValue::from_str(user_agent)
            .map_err(|_| Error::InvalidInput("user agent is not a valid header value".into()))?;
        let identity = Identity {
            acct_id: self.acct_id.trim().to_owned(),
            user: self.user.trim().to_owned(),
            lcid: self.lcid,
            org: self.org,
        };
        let signer = auth
            .signer(&identity)
            .transpose()
            .map_err(Error::InvalidInput)?;
        let http = match self.http_client {
            Some(client) => client,
            None => http_client(self.connect_timeout, self.accept_invalid_certs, self.http2)?,
        };
        Ok(Client {
            transport: Arc::new(Transport {
                http,
                base,
                identity,
                auth,
                signer,
                sessions: SessionManager::new(),
                retry: self.retry,
                limiter: self.limiter.unwrap_or_else(|| RateLimit::none().limiter()),
                clock: self.clock,
                timeout: self.timeout,
                user_agent,
                requests: std::sync::atomic::AtomicU64::new(0),
                server_clock: fxk3_kernel::server_clock::ServerClock::default(),
            }),
            settings: Arc::new(self.settings),
        })
    }
}

fn http_client(
    connect_timeout: Duration,
    accept_invalid_certs: bool,
    http2: bool,
) -> Result<reqwest::Client> {
    let mut options = fxk3_kernel::http::ClientOptions::new(connect_timeout);
    options.accept_invalid_certs = accept_invalid_certs;
    options.http2 = http2;
    fxk3_kernel::http::client(&options).map_err(Error::InvalidInput)
}

/// `https://host` → `https://host/k3cloud/`; `https://host/k3cloud` → `https://host/k3cloud/`;
/// any other site path is kept, with a trailing slash.
pub(crate) fn normalize_base(server_url: &str) -> Result<Url> {
    let bad = |why: &str| Error::InvalidInput(format!("server URL `{server_url}`: {why}"));
    let mut url = fxk3_kernel::http::base_url(server_url).map_err(|why| bad(&why))?;
    let path = url.path().trim_end_matches('/').to_owned();
    if path.to_ascii_lowercase().ends_with(".kdsvc") {
        return Err(bad("give the site URL (…/k3cloud/), not a service URL"));
    }
    let path = if path.is_empty() {
        "/k3cloud/".to_owned()
    } else {
        format!("{path}/")
    };
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_forms() {
        let cases = [
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000/k3cloud/"),
            ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/k3cloud/"),
            (
                "http://127.0.0.1:8000/k3cloud",
                "http://127.0.0.1:8000/k3cloud/",
            ),
            (
                "http://127.0.0.1:8000/k3cloud/",
                "http://127.0.0.1:8000/k3cloud/",
            ),
            (
                " https://erp.example.com/K3Cloud ",
                "https://erp.example.com/K3Cloud/",
            ),
            (
                "https://erp.example.com/erp/k3cloud//",
                "https://erp.example.com/erp/k3cloud/",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_base(input).unwrap().as_str(), expected, "{input}");
        }
        for bad in [
            "",
            "erp.example.com",
            "ftp://erp.example.com/k3cloud/",
            "http://erp/k3cloud/?a=1",
            "http://erp/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc",
        ] {
            assert!(
                matches!(normalize_base(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    fn builder() -> ClientBuilder {
        Client::builder("http://127.0.0.1:1/k3cloud/")
            .account("60a1b2c3d4e5f6")
            .user("webapi")
            .auth(Auth::password("P@ssw0rd"))
    }

    #[test]
    fn build_checks_required_settings() {
        assert!(builder().build().is_ok());
        assert!(matches!(
            builder().account(" ").build(),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            builder().user("").build(),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            builder().auth(Auth::password("")).build(),
            Err(Error::InvalidInput(m)) if m.contains("password")
        ));
        assert!(matches!(
            builder().auth(Auth::signed("", "s")).build(),
            Err(Error::InvalidInput(m)) if m.contains("app id")
        ));
        assert!(matches!(
            Client::builder("http://h/").account("a").user("u").build(),
            Err(Error::InvalidInput(m)) if m.contains("credentials")
        ));
        assert!(matches!(
            builder().timeout(Duration::ZERO).build(),
            Err(Error::InvalidInput(_))
        ));
    }
}
