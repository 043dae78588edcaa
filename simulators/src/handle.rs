//! The in-process handle: start, observe, steer and stop a sandbox.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, FxiaokeConfig, K3CloudConfig};
use crate::faults::{Fault, FaultId};
use crate::seed::{self, GenerateSpec};
use crate::server::{self, Shared};

/// Errors of the in-process API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A direct write through the Rust API was refused, with the simulator's own message.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// Builds a [`Sandbox`].
///
/// ```no_run
/// # async fn demo() -> Result<(), fxk3_simulators::Error> {
/// use fxk3_simulators::{Clock, Sandbox};
///
/// let sandbox = Sandbox::builder()
///     .clock(Clock::frozen_at_secs(1_700_000_000))
///     .seed(42)
///     .start()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SandboxBuilder {
    config: Config,
    listen: SocketAddr,
    clock: Clock,
    demo_data: bool,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            config: Config::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: Clock::system(),
            demo_data: false,
        }
    }
}

impl SandboxBuilder {
    /// Replaces the whole configuration.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Replaces the `K3Cloud` configuration.
    #[must_use]
    pub fn k3cloud(mut self, config: K3CloudConfig) -> Self {
        self.config.k3cloud = config;
        self
    }

    /// Replaces the Fxiaoke configuration.
    #[must_use]
    pub fn fxiaoke(mut self, config: FxiaokeConfig) -> Self {
        self.config.fxiaoke = config;
        self
    }

    /// Seed of fault draws and generated ids (default 0).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Address to listen on (default `127.0.0.1:0`, a random loopback port).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Load the demo data set at start (default off: base data only).
    #[must_use]
    pub fn demo_data(mut self, yes: bool) -> Self {
        self.demo_data = yes;
        self
    }

    /// Binds the socket and serves on the current tokio runtime.
    pub async fn start(self) -> Result<Sandbox, Error> {
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.listen,
            source,
        })?;
        let shared = Arc::new(Shared::new(self.config, self.clock));
        shared.reset();
        if self.demo_data {
            seed::demo(&shared);
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(
            listener,
            server::router(shared.clone()),
            stopped,
        ));
        Ok(Sandbox {
            shared,
            addr,
            stop,
            task: Some(task),
        })
    }
}

/// A running sandbox. Dropping it (or [`Sandbox::shutdown`]) stops the server.
#[derive(Debug)]
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts a sandbox with the defaults: random loopback port, system clock, base data only.
    pub async fn start() -> Result<Sandbox, Error> {
        SandboxBuilder::default().start().await
    }

    /// A builder for anything else.
    #[must_use]
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The socket address served.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `K3Cloud` server URL, `http://127.0.0.1:<port>/k3cloud/` (what the SDKs call `ServerUrl`).
    #[must_use]
    pub fn k3cloud_url(&self) -> String {
        format!("http://{}/k3cloud/", self.addr)
    }

    /// The Fxiaoke base URL (the stand-in for `https://open.fxiaoke.com`).
    #[must_use]
    pub fn fxiaoke_url(&self) -> String {
        self.base_url()
    }

    /// The configuration, including the credentials clients must use.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The sandbox clock (freeze, set or advance it to test time-dependent rules).
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Back to a fresh state: base data only, no faults, counters at zero, sessions and
    /// tokens gone.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Adds the demo data set (CRM customers, orders with lines, products; ERP materials,
    /// customers, salesmen).
    pub fn seed_demo(&self) {
        seed::demo(&self.shared);
    }

    /// Adds generated records.
    pub fn generate(&self, spec: &GenerateSpec) {
        seed::generate(&self.shared, spec);
    }

    /// Sets a fault; it stays until it is used up, removed or cleared.
    #[must_use]
    pub fn set_fault(&self, fault: Fault) -> FaultId {
        self.shared.faults.add(fault)
    }

    /// Removes one fault; `false` if it was not there (any more).
    #[must_use]
    pub fn remove_fault(&self, id: FaultId) -> bool {
        self.shared.faults.remove(id)
    }

    /// Removes every fault and restarts the fault RNG from the seed.
    pub fn clear_faults(&self) {
        self.shared.faults.clear(self.shared.config.seed);
    }

    /// The faults in force.
    #[must_use]
    pub fn faults(&self) -> Vec<(FaultId, Fault)> {
        self.shared.faults.list()
    }

    /// How many times each kind of fault took effect, per `api kind` (`k3cloud
    /// drop_after_write`, `fxiaoke server_error`), since the start or the last reset.
    #[must_use]
    pub fn faults_fired(&self) -> BTreeMap<String, u64> {
        self.shared.faults.fired()
    }

    /// Calls received by one endpoint: `k3cloud:<Method>` (for example `k3cloud:Save`) or
    /// `fxiaoke:<path>` (for example `fxiaoke:/cgi/crm/v2/data/query`). Faulted and refused
    /// calls count; paths that do not exist count as `fxiaoke:unknown` / `k3cloud:unknown`.
    /// This is how API calls per synced record are measured.
    ///
    /// ```no_run
    /// # async fn demo(sandbox: fxk3_simulators::Sandbox) {
    /// sandbox.reset_calls();
    /// // … sync 100 customers …
    /// let per_record = sandbox.calls("k3cloud:BatchSave") as f64 / 100.0;
    /// println!("{per_record} BatchSave calls per customer; all: {:?}", sandbox.all_calls());
    /// # }
    /// ```
    #[must_use]
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.shared.calls.get(endpoint)
    }

    /// Every counter.
    #[must_use]
    pub fn all_calls(&self) -> BTreeMap<String, u64> {
        self.shared.calls.all()
    }

    /// Sets every counter back to zero.
    pub fn reset_calls(&self) {
        self.shared.calls.clear();
    }

    /// Every record of a `K3Cloud` form, as `View` shows them (`Id`, `Number`,
    /// `DocumentStatus`, fields, entries).
    #[must_use]
    pub fn k3cloud_records(&self, form_id: &str) -> Vec<Value> {
        self.shared.k3.records(form_id)
    }

    /// One `K3Cloud` record by number (`FNumber` / `FBillNo`) or internal id.
    #[must_use]
    pub fn k3cloud_record(&self, form_id: &str, number_or_id: &str) -> Option<Value> {
        self.shared.k3.record(form_id, number_or_id)
    }

    /// Saves a `Model` packet directly (as `Save` would, without HTTP, auth or counters) and
    /// returns `(Id, Number)`. A non-zero primary key in the packet is kept as the new id.
    pub fn k3cloud_insert(&self, form_id: &str, model: Value) -> Result<(i64, String), Error> {
        self.shared
            .k3
            .insert(form_id, model, self.shared.clock.now_ms())
            .map_err(Error::Rejected)
    }

    /// Every credential the simulators handed out since the last reset: Fxiaoke tokens,
    /// `K3Cloud` session ids and `ASP.NET_SessionId` cookies (the first 100,000 of each), for
    /// tests that check no log, error or file shows one.
    pub fn issued_secrets(&self) -> Vec<String> {
        let mut out = self.shared.fx.issued_tokens();
        out.extend(self.shared.k3.issued_sessions());
        out
    }

    /// How many Save, Draft and BatchSave rows reached the `K3Cloud` simulator per document
    /// number of a form, refused ones included: more than one for a document created once
    /// means a client sent it again.
    pub fn k3cloud_saves_by_number(&self, form_id: &str) -> BTreeMap<String, u64> {
        self.shared.k3.saves_by_number(form_id)
    }

    /// Drops every `K3Cloud` session (password sessions then answer `MsgCode` 1).
    pub fn k3cloud_expire_sessions(&self) {
        self.shared.k3.expire_sessions();
    }

    /// Every record of a Fxiaoke object in `_id` order (invalidated ones included, with
    /// `life_status` `invalid` and `is_deleted` true; deleted ones are gone).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), fxk3_simulators::Error> {
    /// let sandbox = fxk3_simulators::Sandbox::builder().demo_data(true).start().await?;
    /// let orders = sandbox.fxiaoke_records("SalesOrderObj");
    /// let lines = sandbox.fxiaoke_records("SalesOrderProductObj");
    /// let first_lines = lines.iter().filter(|l| l["order_id"] == orders[0]["_id"]).count();
    /// assert!((1..=5).contains(&first_lines));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn fxiaoke_records(&self, api_name: &str) -> Vec<Value> {
        self.shared.fx.records(api_name)
    }

    /// One Fxiaoke record by `_id`.
    #[must_use]
    pub fn fxiaoke_record(&self, api_name: &str, id: &str) -> Option<Value> {
        self.shared.fx.record(api_name, id)
    }

    /// Creates a Fxiaoke record directly, checked like `data/create` (lookups, options,
    /// numbers, owner); returns its `_id`. Unlike the API, an `_id` and system fields given in
    /// the record (`create_time`, `last_modified_time`, `life_status`, `version`, …) are
    /// kept, so that recorded data can be loaded as it was. A `details` key holds detail rows
    /// (`{"SalesOrderProductObj": [...]}`), created with the master link set.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), fxk3_simulators::Error> {
    /// use serde_json::json;
    ///
    /// let sandbox = fxk3_simulators::Sandbox::start().await?;
    /// let account = sandbox.fxiaoke_insert("AccountObj", json!({"name": "上海示例科技有限公司", "account_no": "KH00001"}))?;
    /// let product = sandbox.fxiaoke_insert("ProductObj", json!({"name": "球阀 DN50", "product_code": "MAT0001", "price": "180.00"}))?;
    /// let order = sandbox.fxiaoke_insert("SalesOrderObj", json!({
    ///     "account_id": account,
    ///     "details": {"SalesOrderProductObj": [{"product_id": product, "quantity": "2", "sales_price": "170.00"}]},
    /// }))?;
    /// assert!(sandbox.fxiaoke_record("SalesOrderObj", &order).is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn fxiaoke_insert(&self, api_name: &str, record: Value) -> Result<String, Error> {
        self.shared
            .fx
            .insert(api_name, record, self.shared.clock.now_ms())
            .map_err(Error::Rejected)
    }

    /// Messages sent through `/cgi/message/send`, oldest first: the request's `toUser`,
    /// `msgType` and content (`text`, `composite` or `articles`), the sending `appId` and
    /// `sentAt` (sandbox clock, ms).
    ///
    /// ```no_run
    /// # async fn demo(sandbox: fxk3_simulators::Sandbox) {
    /// // … after a delivery sync ran against the sandbox:
    /// for message in sandbox.fxiaoke_messages() {
    ///     println!("{} → {}", message["msgType"], message["toUser"]);
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn fxiaoke_messages(&self) -> Vec<Value> {
        self.shared.fx.messages()
    }

    /// Makes `token` a valid `corpAccessToken` of the first configured app, issued now (used to
    /// replay captured requests that carry a fixed token).
    pub fn fxiaoke_pin_token(&self, token: &str) {
        self.shared.fx.pin_token(
            token,
            &self.shared.config.fxiaoke,
            self.shared.clock.now_ms(),
        );
    }

    /// Invalidates every Fxiaoke token (calls then answer 20016).
    pub fn fxiaoke_invalidate_tokens(&self) {
        self.shared.fx.invalidate_tokens();
    }

    /// Invalidates (作废) a CRM record, as the API's `invalid` does: `life_status` `invalid`,
    /// `is_deleted` true, detail records with it, modification time now.
    pub fn fxiaoke_invalidate(&self, api_name: &str, id: &str) -> Result<(), Error> {
        self.shared
            .fx
            .set_invalid(api_name, id, true, self.shared.clock.now_ms())
            .map_err(Error::Rejected)
    }

    /// Deletes an invalidated CRM record for good (`delete`, emptying the recycle bin), as the
    /// API does: a record in use is refused.
    pub fn fxiaoke_delete(&self, api_name: &str, id: &str) -> Result<(), Error> {
        self.shared
            .fx
            .delete(api_name, id, self.shared.clock.now_ms())
            .map_err(Error::Rejected)
    }

    /// Recovers an invalidated CRM record (`recover`), as the API does.
    pub fn fxiaoke_recover(&self, api_name: &str, id: &str) -> Result<(), Error> {
        self.shared
            .fx
            .set_invalid(api_name, id, false, self.shared.clock.now_ms())
            .map_err(Error::Rejected)
    }

    /// Changes fields of a Fxiaoke record as a CRM user would: `last_modified_time` moves to
    /// the sandbox clock and the version goes up (what an incremental sync must notice).
    ///
    /// ```no_run
    /// # async fn demo(sandbox: fxk3_simulators::Sandbox, id: &str) -> Result<(), fxk3_simulators::Error> {
    /// use serde_json::json;
    /// use std::time::Duration;
    ///
    /// sandbox.clock().advance(Duration::from_secs(60));
    /// sandbox.fxiaoke_update("AccountObj", id, json!({"tel": "021-87654321"}))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn fxiaoke_update(&self, api_name: &str, id: &str, patch: Value) -> Result<(), Error> {
        self.shared
            .fx
            .update(api_name, id, patch, self.shared.clock.now_ms())
            .map_err(Error::Rejected)
    }

    /// Every CRM object and how many records it holds.
    #[must_use]
    pub fn fxiaoke_objects(&self) -> BTreeMap<String, usize> {
        self.shared.fx.objects().into_iter().collect()
    }

    /// The describe of an object, as `/cgi/crm/v2/object/describe` answers under `data.describe`.
    #[must_use]
    pub fn fxiaoke_describe(&self, api_name: &str) -> Option<Value> {
        self.shared.fx.describe(api_name)
    }

    /// Adds (or replaces) a custom object from a describe-shaped JSON:
    /// `{"api_name": "object_x__c", "display_name": "…", "fields": {"f__c": {"label", "type",
    /// "is_required", "options", "target_api_name"}}}`. The system fields and `name` are added.
    ///
    /// ```no_run
    /// # async fn demo(sandbox: fxk3_simulators::Sandbox) -> Result<(), fxk3_simulators::Error> {
    /// use serde_json::json;
    ///
    /// sandbox.fxiaoke_define_object(&json!({
    ///     "api_name": "object_visit__c",
    ///     "display_name": "拜访记录",
    ///     "fields": {
    ///         "account__c": {"label": "客户", "type": "object_reference", "target_api_name": "AccountObj"},
    ///         "result__c": {"label": "结果", "type": "select_one",
    ///                       "options": [{"label": "成交", "value": "won"}, {"label": "跟进", "value": "open"}]},
    ///     },
    /// }))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn fxiaoke_define_object(&self, describe: &Value) -> Result<(), Error> {
        self.shared.fx.define(describe).map_err(Error::Rejected)
    }

    /// The employees (`user/get` fields plus the plain `employeeId` of the new-style auth).
    #[must_use]
    pub fn fxiaoke_users(&self) -> Vec<Value> {
        self.shared.fx.users()
    }

    /// Calls the per-path rate limit refused (30004) since the start or the last reset —
    /// what a client that keeps under the limit never sees.
    #[must_use]
    pub fn fxiaoke_rate_limited(&self) -> u64 {
        self.shared.fx.rate_limited()
    }

    /// Sets the per-path rate limit (`None`: unlimited) until the next reset.
    pub fn fxiaoke_set_rate_limit(&self, limit: Option<(usize, Duration)>) {
        self.shared.fx.set_limits(|l| l.rate_limit = limit);
    }

    /// Sets the daily call quota (`None`: unlimited); beyond it calls answer 30002 until
    /// 00:00 GMT+8 on the sandbox clock. Calls made earlier today count.
    ///
    /// ```no_run
    /// # async fn demo(sandbox: fxk3_simulators::Sandbox) {
    /// use std::time::Duration;
    ///
    /// sandbox.fxiaoke_set_daily_quota(Some(0)); // the next call answers 30002
    /// sandbox.clock().advance(Duration::from_secs(24 * 3600)); // a new day: calls work again
    /// # }
    /// ```
    pub fn fxiaoke_set_daily_quota(&self, quota: Option<u64>) {
        self.shared.fx.set_limits(|l| l.daily_quota = quota);
    }

    /// Whether the enterprise bought an Open API quota; `false` answers 30003 to every call.
    pub fn fxiaoke_set_openapi_purchased(&self, purchased: bool) {
        self.shared
            .fx
            .set_limits(|l| l.openapi_purchased = purchased);
    }

    /// Stops the server and waits until it stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
