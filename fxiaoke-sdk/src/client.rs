//! [`Client`] and [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::{Credentials, MemoryTokenCache, TokenCache, TokenKey, TokenManager, TokenPolicy};
use crate::clock::{Clock, SystemClock};
use crate::crm::{
    ChangeOwner, Create, Delete, FindOne, Get, Invalid, InvalidMany, Recover, Update,
};
use crate::error::{Error, Result};
use crate::limit::{RateLimit, RateLimiter};
use crate::message::{Composite, Message};
use crate::meta::{Describe, ObjectList};
use crate::org::{DepartmentList, UserByMobile, UserGet, UserList, UserSimpleList, UsersChanged};
use crate::query::Query;
use crate::raw::RawCall;
use crate::retry::RetryPolicy;
use crate::transport::Transport;

/// The default API host.
pub const DEFAULT_BASE_URL: &str = "https://open.fxiaoke.com";

/// A Fxiaoke OpenAPI client.
///
/// Cheap to clone (an `Arc` inside) and safe to share across tasks: clones share the token,
/// the connection pool and the rate limiter. The corp access token is fetched when first
/// needed, refreshed ahead of expiry, and put into every body with the corp id and the operator
/// (`currentOpenUserId`); you never handle them.
///
/// ```no_run
/// use fxiaoke_sdk::{Client, Filter, types::AccountObj};
///
/// # async fn run() -> Result<(), fxiaoke_sdk::Error> {
/// let client = Client::builder()
///     .app_id("FSAID_1000001")
///     .app_secret(std::env::var("FXIAOKE_APP_SECRET").unwrap_or_default())
///     .permanent_code(std::env::var("FXIAOKE_PERMANENT_CODE").unwrap_or_default())
///     .operator("FSUID_0123456789ABCDEF0123456789ABCDEF")
///     .build()?;
///
/// let page = client
///     .query("AccountObj")
///     .filter(Filter::eq("life_status", "normal"))
///     .order_by("last_modified_time", true)
///     .limit(100)
///     .send::<AccountObj>()
///     .await?;
/// for account in &page.rows {
///     println!("{} {}", account.id, account.name.as_deref().unwrap_or(""));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: Arc<Transport>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .finish()
    }
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The API base URL (always ends with `/`).
    pub fn base_url(&self) -> &Url {
        &self.transport.base
    }

    /// The default operator (`currentOpenUserId`), if set.
    pub fn operator(&self) -> Option<&str> {
        self.transport.operator.as_deref()
    }

    /// The key this client's token is cached under.
    pub fn token_key(&self) -> &TokenKey {
        &self.transport.tokens.key
    }

    /// The corp id (`FSCID_…`) of the tenant, fetching a token if there is none yet. Also a
    /// way to check the credentials at start-up.
    pub async fn corp_id(&self) -> Result<String> {
        Ok(self.transport.token().await?.corp_id().to_owned())
    }

    /// HTTP requests this client (and its clones) sent so far, token requests and retries
    /// included: what a tenant's API quota counts.
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

    /// Requests this client (and its clones) sent to the token endpoint so far.
    pub fn token_requests(&self) -> u64 {
        self.transport.tokens.fetch_count()
    }

    /// Forgets the current token here and in the token cache; the next call fetches one.
    pub async fn invalidate_token(&self) {
        self.transport.tokens.invalidate().await;
    }
}

/// The operations. Each returns a builder; nothing is sent until its `send()`.
impl Client {
    /// `/cgi/user/getByMobile`: the employees with a mobile number — the usual way to find the
    /// operator's `openUserId`.
    pub fn user_by_mobile(&self, mobile: impl Into<String>) -> UserByMobile<'_> {
        UserByMobile::new(self, mobile.into())
    }

    /// `/cgi/user/get`: one employee by `openUserId`.
    pub fn user(&self, open_user_id: impl Into<String>) -> UserGet<'_> {
        UserGet::new(self, open_user_id.into())
    }

    /// `/cgi/user/list`: the employees of a department (999999 is the whole company).
    pub fn users(&self, department_id: i64) -> UserList<'_> {
        UserList::new(self, department_id)
    }

    /// `/cgi/user/simpleList`: ids and names of the employees of a department.
    pub fn users_simple(&self, department_id: i64) -> UserSimpleList<'_> {
        UserSimpleList::new(self, department_id)
    }

    /// `/cgi/user/get/batchByUpdTime`: employees changed in a time range, page by page.
    pub fn users_changed(&self) -> UsersChanged<'_> {
        UsersChanged::new(self)
    }

    /// `/cgi/department/list`: every department.
    pub fn departments(&self) -> DepartmentList<'_> {
        DepartmentList::new(self)
    }

    /// `…/data/query`: records of an object, one page ([`Query::send`]) or all of them
    /// ([`Query::pages`]). Objects whose API name ends in `__c` go to the custom-object path.
    pub fn query(&self, object_api_name: impl Into<String>) -> Query<'_> {
        Query::new(self, object_api_name.into())
    }

    /// `/cgi/crm/custom/v2/data/findOne`: the first record that matches.
    pub fn find_one(&self, object_api_name: impl Into<String>) -> FindOne<'_> {
        FindOne::new(self, object_api_name.into())
    }

    /// `…/data/get`: one record by `_id`.
    pub fn get(&self, object_api_name: impl Into<String>, id: impl Into<String>) -> Get<'_> {
        Get::new(self, object_api_name.into(), id.into())
    }

    /// `…/data/create`: a record, with its detail records (an order with its lines) in one call.
    pub fn create(&self, object_api_name: impl Into<String>) -> Create<'_> {
        Create::new(self, object_api_name.into())
    }

    /// `…/data/update`: some fields of a record.
    pub fn update(&self, object_api_name: impl Into<String>, id: impl Into<String>) -> Update<'_> {
        Update::new(self, object_api_name.into(), id.into())
    }

    /// `…/data/invalid`: invalidate (作废, soft-delete) one record.
    pub fn invalid(
        &self,
        object_api_name: impl Into<String>,
        id: impl Into<String>,
    ) -> Invalid<'_> {
        Invalid::new(self, object_api_name.into(), id.into())
    }

    /// `/cgi/crm/custom/data/invalid`: invalidate several records of a custom object at once.
    pub fn invalid_many(&self, object_api_name: impl Into<String>) -> InvalidMany<'_> {
        InvalidMany::new(self, object_api_name.into())
    }

    /// `…/data/delete`: delete invalidated records for good.
    pub fn delete(&self, object_api_name: impl Into<String>) -> Delete<'_> {
        Delete::new(self, object_api_name.into())
    }

    /// `…/data/recover`: bring invalidated records back.
    pub fn recover(&self, object_api_name: impl Into<String>) -> Recover<'_> {
        Recover::new(self, object_api_name.into())
    }

    /// `…/data/changeOwner`: give records new owners.
    pub fn change_owner(&self, object_api_name: impl Into<String>) -> ChangeOwner<'_> {
        ChangeOwner::new(self, object_api_name.into())
    }

    /// `/cgi/crm/v2/object/list`: the objects of the tenant.
    pub fn objects(&self) -> ObjectList<'_> {
        ObjectList::new(self)
    }

    /// `/cgi/crm/v2/object/describe`: fields, types and option values of an object.
    pub fn describe(&self, object_api_name: impl Into<String>) -> Describe<'_> {
        Describe::new(self, object_api_name.into())
    }

    /// `/cgi/message/send` with a text message.
    pub fn text_message<I, S>(&self, to_users: I, content: impl Into<String>) -> Message<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Message::text(self, to_users, content.into())
    }

    /// `/cgi/message/send` with a composite (card) message.
    pub fn composite_message<I, S>(&self, to_users: I, composite: Composite) -> Message<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Message::composite(self, to_users, composite)
    }

    /// Any path with any JSON body; the token, corp id and operator are added.
    pub fn raw(&self, path: impl Into<String>) -> RawCall<'_> {
        RawCall::new(self, path.into())
    }

    /// Any path with any JSON body object, treated as a write (never resent once sent without
    /// an answer); the token, corp id and operator are added.
    pub async fn call_raw(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        self.raw(path).body(body).send().await
    }
}

/// Builds a [`Client`]. Created by [`Client::builder`].
pub struct ClientBuilder {
    base_url: String,
    app_id: String,
    app_secret: SecretString,
    permanent_code: SecretString,
    operator: Option<String>,
    connect_timeout: Duration,
    timeout: Duration,
    user_agent: Option<String>,
    http_client: Option<reqwest::Client>,
    retry: RetryPolicy,
    limiter: Option<Arc<dyn RateLimiter>>,
    token_cache: Option<Arc<dyn TokenCache>>,
    token_policy: TokenPolicy,
    clock: Arc<dyn Clock>,
    third_trace_id: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("app_secret", &"[redacted]")
            .field("permanent_code", &"[redacted]")
            .field("operator", &self.operator)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("limiter", &self.limiter)
            .field("token_cache", &self.token_cache)
            .finish_non_exhaustive()
    }
}

/// Names this SDK and its version.
const DEFAULT_USER_AGENT: &str = concat!("fxiaoke-sdk-rust/", env!("CARGO_PKG_VERSION"));

impl ClientBuilder {
    fn new() -> Self {
        ClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_id: String::new(),
            app_secret: SecretString::from(String::new()),
            permanent_code: SecretString::from(String::new()),
            operator: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            user_agent: None,
            http_client: None,
            retry: RetryPolicy::default(),
            limiter: None,
            token_cache: None,
            token_policy: TokenPolicy::default(),
            clock: Arc::new(SystemClock),
            third_trace_id: false,
        }
    }

    /// The API base URL (default `https://open.fxiaoke.com`; other clouds use
    /// `https://open-<login domain>`, e.g. `https://open-hwcloud.fxiaoke.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The app id (`FSAID_…`). Required.
    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = app_id.into();
        self
    }

    /// The app secret. Required; never shown in `Debug`, errors or logs.
    pub fn app_secret(mut self, secret: impl Into<String>) -> Self {
        self.app_secret = SecretString::from(secret.into());
        self
    }

    /// The permanent code of the tenant's authorisation (永久授权码). Required; never shown.
    pub fn permanent_code(mut self, code: impl Into<String>) -> Self {
        self.permanent_code = SecretString::from(code.into());
        self
    }

    /// The default operator, `currentOpenUserId` (`FSUID_…`): the employee whose data
    /// permissions CRM calls run with — usually a CRM administrator. Find it with
    /// [`Client::user_by_mobile`]. CRM calls can override it with `.operator(…)`.
    pub fn operator(mut self, open_user_id: impl Into<String>) -> Self {
        self.operator = Some(open_user_id.into());
        self
    }

    /// Time allowed to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one whole call attempt (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sends through your own `reqwest::Client` (proxies, pools, custom roots). Its TLS
    /// settings are then yours, and `connect_timeout` is ignored.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// How transient failures are retried (default: 3 attempts, 200 ms doubling to 5 s).
    /// Writes are never resent once they may have reached the server.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keeps calls under a per-endpoint limit (off by default), e.g.
    /// [`RateLimit::vendor_default`] — 100 calls per 20 s per endpoint, with a margin.
    pub fn rate_limit(self, limit: RateLimit) -> Self {
        self.rate_limiter(Arc::new(limit))
    }

    /// Uses your own [`RateLimiter`] (or a [`RateLimit`] shared by several clients).
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Where tokens are kept and shared (default: a [`MemoryTokenCache`] of this client's
    /// own).
    pub fn token_cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.token_cache = Some(cache);
        self
    }

    /// When tokens are replaced and how many fetches a minute are allowed.
    pub fn token_policy(mut self, policy: TokenPolicy) -> Self {
        self.token_policy = policy;
        self
    }

    /// The wall clock token lifetimes are measured with (tests use
    /// [`TokioClock`](crate::TokioClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds `?thirdTraceId=<uuid>` to every request, as the new documentation asks (off by
    /// default: no legacy client sends it and calls work without it).
    pub fn third_trace_id(mut self, on: bool) -> Self {
        self.third_trace_id = on;
        self
    }

    /// Checks the settings and builds the client. Nothing is sent.
    pub fn build(self) -> Result<Client> {
        let base = normalize_base(&self.base_url)?;
        let missing = |what: &str| Error::InvalidInput(format!("{what} is empty"));
        if self.app_id.trim().is_empty() {
            return Err(missing("app id"));
        }
        if self.app_secret.expose_secret().trim().is_empty() {
            return Err(missing("app secret"));
        }
        if self.permanent_code.expose_secret().trim().is_empty() {
            return Err(missing("permanent code"));
        }
        if self
            .operator
            .as_deref()
            .is_some_and(|o| o.trim().is_empty())
        {
            return Err(missing("operator (currentOpenUserId)"));
        }
        if self.timeout.is_zero() {
            return Err(Error::InvalidInput("timeout must be positive".into()));
        }
        let user_agent = self.user_agent.as_deref().unwrap_or(DEFAULT_USER_AGENT);
        let user_agent = HeaderValue::from_str(user_agent)
            .map_err(|_| Error::InvalidInput("user agent is not a valid header value".into()))?;
        let http = match self.http_client {
            Some(client) => client,
            None => http_client(self.connect_timeout)?,
        };
        let key = TokenKey::new(
            base.host_str().unwrap_or_default(),
            self.app_id.trim(),
            self.permanent_code.expose_secret(),
        );
        let cache = self
            .token_cache
            .unwrap_or_else(|| Arc::new(MemoryTokenCache::new()));
        let tokens = TokenManager::new(
            key,
            cache,
            self.token_policy,
            self.clock,
            self.retry.clone(),
        );
        Ok(Client {
            transport: Arc::new(Transport {
                http,
                base,
                credentials: Credentials {
                    app_id: self.app_id.trim().to_owned(),
                    app_secret: self.app_secret,
                    permanent_code: self.permanent_code,
                },
                operator: self.operator.map(|o| o.trim().to_owned()),
                tokens,
                retry: self.retry,
                limiter: self.limiter,
                timeout: self.timeout,
                user_agent,
                third_trace_id: self.third_trace_id,
                requests: std::sync::atomic::AtomicU64::new(0),
                server_clock: fxk3_kernel::server_clock::ServerClock::default(),
                urls: std::sync::RwLock::default(),
            }),
        })
    }
}

fn http_client(connect_timeout: Duration) -> Result<reqwest::Client> {
    // A redirect means a wrong host (www.fxiaoke.com answers 302 to HTML): not followed.
    fxk3_kernel::http::client(&fxk3_kernel::http::ClientOptions::new(connect_timeout))
        .map_err(Error::InvalidInput)
}

/// `https://host` → `https://host/`; a path prefix (a proxy) is kept, with a trailing slash.
fn normalize_base(base_url: &str) -> Result<Url> {
    let bad = |why: &str| Error::InvalidInput(format!("base URL `{base_url}`: {why}"));
    let mut url = fxk3_kernel::http::base_url(base_url).map_err(|why| bad(&why))?;
    if url.path().contains("/cgi/") {
        return Err(bad(
            "give the host (https://open.fxiaoke.com), not an endpoint",
        ));
    }
    let path = format!("{}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_forms() {
        for (input, expected) in [
            ("https://open.fxiaoke.com", "https://open.fxiaoke.com/"),
            (" https://open.fxiaoke.com/ ", "https://open.fxiaoke.com/"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
            ("http://proxy.example/fx//", "http://proxy.example/fx/"),
        ] {
            assert_eq!(normalize_base(input).unwrap().as_str(), expected, "{input}");
        }
        for bad in [
            "",
            "open.fxiaoke.com",
            "ftp://open.fxiaoke.com",
            "https://open.fxiaoke.com/?a=1",
            "https://open.fxiaoke.com/cgi/crm/v2/data/query",
        ] {
            assert!(
                matches!(normalize_base(bad), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    fn builder() -> ClientBuilder {
        Client::builder()
            .base_url("http://127.0.0.1:1")
            .app_id("FSAID_1")
            .app_secret("app-secret-1234")
            .permanent_code("perm-code-5678")
    }

    #[test]
    fn build_checks_required_settings() {
        assert!(builder().build().is_ok());
        assert!(builder().operator("FSUID_1").build().is_ok());
        let fails = |b: ClientBuilder, what: &str| {
            assert!(
                matches!(b.build(), Err(Error::InvalidInput(m)) if m.contains(what)),
                "{what}"
            );
        };
        fails(builder().app_id(" "), "app id");
        fails(builder().app_secret(""), "app secret");
        fails(builder().permanent_code(""), "permanent code");
        fails(builder().operator(" "), "operator");
        fails(builder().timeout(Duration::ZERO), "timeout");
        fails(builder().user_agent("a\nb"), "user agent");
    }

    #[test]
    fn the_token_key_holds_no_secret() {
        let client = builder().build().unwrap();
        let key = client.token_key();
        assert_eq!(key.host(), "127.0.0.1");
        assert_eq!(key.app_id(), "FSAID_1");
        assert!(!key.to_string().contains("perm-code-5678"));
        let shown = format!("{client:?} {:?}", builder());
        assert!(!shown.contains("app-secret-1234") && !shown.contains("perm-code-5678"));
    }
}
