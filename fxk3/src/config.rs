//! The configuration file: connections to both systems (secrets from environment variables),
//! flows with their mapping files, the state store and the schedule.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// The whole configuration (`fxk3.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where the sync state lives.
    #[serde(default)]
    pub state: StateConfig,
    /// The Fxiaoke connection.
    pub fxiaoke: Option<FxiaokeConfig>,
    /// The K3Cloud connection.
    pub k3cloud: Option<K3cloudConfig>,
    /// The flows, in any order (they run in dependency order).
    #[serde(default)]
    pub flows: Vec<FlowConfig>,
    /// How `watch` repeats runs.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Who `watch` tells about problems, and when.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// The operator's web page (`fxk3 serve`, `fxk3 watch --serve`).
    #[serde(default)]
    pub serve: ServeConfig,
    /// The directory relative paths are resolved from (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateConfig {
    /// The SQLite file (created if missing).
    #[serde(default = "default_state_path")]
    pub path: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            path: default_state_path(),
        }
    }
}

fn default_state_path() -> PathBuf {
    PathBuf::from("fxk3-state.sqlite3")
}

/// `[fxiaoke]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FxiaokeConfig {
    /// The OpenAPI host (default `https://open.fxiaoke.com`).
    pub base_url: Option<String>,
    /// `appId` (`FSAID_…`).
    pub app_id: String,
    /// The environment variable holding `appSecret`.
    #[serde(default = "fx_secret_env")]
    pub app_secret_env: String,
    /// The environment variable holding `permanentCode`.
    #[serde(default = "fx_code_env")]
    pub permanent_code_env: String,
    /// The operator (`currentOpenUserId`, `FSUID_…`): a CRM administrator.
    pub operator: Option<String>,
    /// Or the operator's mobile number, looked up at start.
    pub operator_mobile: Option<String>,
    /// Seconds allowed for one call (default 60).
    pub timeout_secs: Option<u64>,
    /// Keep under the vendor's limit of 100 calls per 20 s per endpoint (default on).
    #[serde(default = "yes")]
    pub rate_limit: bool,
}

fn yes() -> bool {
    true
}

fn fx_secret_env() -> String {
    "FXK3_FXIAOKE_APP_SECRET".into()
}

fn fx_code_env() -> String {
    "FXK3_FXIAOKE_PERMANENT_CODE".into()
}

impl fmt::Debug for FxiaokeConfig {
    // Only names of environment variables here, but keep the habit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FxiaokeConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("app_secret_env", &self.app_secret_env)
            .field("permanent_code_env", &self.permanent_code_env)
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

/// How the K3Cloud client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum K3Auth {
    /// Signed headers (第三方系统登录授权): `app_id` + the secret in `app_secret_env`.
    Signed,
    /// `ValidateUser`: the password in `password_env`.
    Password,
    /// `LoginByAppSecret`: `app_id` + the secret in `app_secret_env`.
    AppSecret,
    /// `LoginBySign`: `app_id` + the secret in `app_secret_env`.
    Sign,
}

/// `[k3cloud]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct K3cloudConfig {
    /// The site, `https://host/k3cloud/`.
    pub server_url: String,
    /// The data centre (`acctID`).
    pub acct_id: String,
    /// The user.
    pub user: String,
    /// How to authenticate (default `signed`).
    #[serde(default = "default_k3_auth")]
    pub auth: K3Auth,
    /// The app id (`<clientId>_<32 chars>`) for `signed`, `app_secret` and `sign`.
    pub app_id: Option<String>,
    /// The environment variable holding the app secret.
    #[serde(default = "k3_secret_env")]
    pub app_secret_env: String,
    /// The environment variable holding the password (`auth = "password"`).
    #[serde(default = "k3_password_env")]
    pub password_env: String,
    /// The language id (default 2052).
    pub lcid: Option<u32>,
    /// The organisation number for signed headers (default `0`).
    pub org: Option<String>,
    /// Seconds allowed for one call (default 120).
    pub timeout_secs: Option<u64>,
    /// Accept a self-signed certificate (off by default).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// The ERP server's time zone, as an offset (`+08:00` by default): K3Cloud's dates carry
    /// no zone, so the document times a flow reads are in this one.
    pub time_zone: Option<String>,
    /// At most this many K3Cloud calls in flight at once, all flows of the process together
    /// (no cap by default: each flow's `concurrency` bounds its own writes).
    pub max_concurrent_calls: Option<usize>,
    /// At most this many K3Cloud call starts per second, evenly spaced (no cap by default).
    pub calls_per_second: Option<u32>,
}

fn default_k3_auth() -> K3Auth {
    K3Auth::Signed
}

fn k3_secret_env() -> String {
    "FXK3_K3CLOUD_APP_SECRET".into()
}

fn k3_password_env() -> String {
    "FXK3_K3CLOUD_PASSWORD".into()
}

/// The standard flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowKind {
    /// CRM `AccountObj` (with contacts) → ERP `BD_Customer`.
    Customers,
    /// CRM `SalesOrderObj` with lines → ERP `SAL_SaleOrder`, then Submit and Audit.
    Orders,
    /// Audited ERP `SAL_OUTSTOCK` → the CRM order's delivery fields and a message to its owner.
    Deliveries,
}

impl FlowKind {
    /// The kind's name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Customers => "customers",
            FlowKind::Orders => "orders",
            FlowKind::Deliveries => "deliveries",
        }
    }
}

/// `audited_orders`: what an edit of an audited ERP order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditedOrders {
    /// Refused with the reason (a dead letter).
    #[default]
    Refuse,
    /// UnAudit, save, Submit, Audit.
    Reaudit,
}

/// `cancelled_orders`: what a CRM order invalidated does to its ERP order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelledOrders {
    /// Deleted when not audited, closed when audited.
    #[default]
    CloseOrDelete,
    /// Refused with the reason (a dead letter); the ERP order is left alone.
    Report,
}

/// One `[[flows]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FlowConfig {
    /// The flow's name (state, ID map and lookups are keyed by it).
    pub name: String,
    /// Which standard flow.
    pub kind: FlowKind,
    /// The mapping file.
    pub mapping: PathBuf,
    /// Flows that must run first (default: customers for orders, orders for deliveries).
    pub depends_on: Option<Vec<String>>,
    /// The CRM object to read or write (default per kind: `AccountObj`, `SalesOrderObj`).
    pub crm_object: Option<String>,
    /// The ERP form to write or read (default per kind: `BD_Customer`, `SAL_SaleOrder`,
    /// `SAL_OUTSTOCK`).
    pub erp_form: Option<String>,
    /// Customers: the CRM field that receives the ERP customer number after a create.
    pub write_back_field: Option<String>,
    /// Customers and orders: ERP actions after a create (orders default to
    /// `["Submit", "Audit"]`, customers to none; `[]` for none).
    pub actions: Option<Vec<String>>,
    /// Customers: replace the ERP contact rows on update (default: leave them alone).
    #[serde(default)]
    pub replace_entries: bool,
    /// Customers: the use organisation (`FUseOrgId` number) the ERP customers are found in,
    /// when they are allocated (分配) to several (default: the row of the organisation that
    /// created each customer).
    pub use_org: Option<String>,
    /// Orders: what an edit of an order audited in the ERP does — `refuse` (the default: a
    /// dead letter with the reason) or `reaudit` (UnAudit, save, Submit, Audit). An order
    /// with an outbound is never edited.
    pub audited_orders: Option<AuditedOrders>,
    /// Orders: what a CRM order invalidated (作废) does to its ERP order — `close_or_delete`
    /// (the default: deleted when not audited, closed when audited) or `report` (a dead
    /// letter; the ERP order is left alone). Needs the mapping's `FCancelStatus` field.
    pub cancelled_orders: Option<CancelledOrders>,
    /// Deliveries: the first line of the message to the order's owner.
    pub notify_title: Option<String>,
    /// Deliveries: the message, with `{field}` placeholders of the CRM order.
    pub notify_text: Option<String>,
    /// Records per write batch (default 100).
    pub batch_size: Option<usize>,
    /// Write batches in flight at once (default 4; see `docs/performance.md` before raising
    /// it: the ERP server's capacity is yours to know).
    pub concurrency: Option<usize>,
    /// Write-back calls in flight while the queue drains (default 4); the Fxiaoke rate limit
    /// paces them.
    pub follow_up_concurrency: Option<usize>,
    /// How far below the cursor to read again (default `5m`).
    pub lookback: Option<String>,
    /// How recent changes are left to the next run (default `5s`).
    pub settle: Option<String>,
    /// How long a write whose answer was lost is left alone before it is looked up (default
    /// `10m`): it may still be running on the server.
    pub quiet_period: Option<String>,
    /// How long after a transient failure a record is tried again (default `1m`, doubling up
    /// to 60 times that).
    pub retry_after: Option<String>,
    /// Where a first run starts (`2024-01-01` or epoch ms; default: the beginning).
    pub start_from: Option<String>,
    /// Runs a record may wait for a reference before it is dead-lettered (default 10).
    pub max_defer_attempts: Option<u32>,
}

impl FlowConfig {
    /// A key set for a kind of flow that has no use for it is a mistake the operator should
    /// hear about, not a setting silently ignored.
    fn check_keys_apply(&self) -> Result<(), ConfigError> {
        let set: [(&str, bool, &[FlowKind]); 8] = [
            (
                "audited_orders",
                self.audited_orders.is_some(),
                &[FlowKind::Orders],
            ),
            (
                "cancelled_orders",
                self.cancelled_orders.is_some(),
                &[FlowKind::Orders],
            ),
            ("use_org", self.use_org.is_some(), &[FlowKind::Customers]),
            (
                "write_back_field",
                self.write_back_field.is_some(),
                &[FlowKind::Customers],
            ),
            (
                "actions",
                self.actions.is_some(),
                &[FlowKind::Customers, FlowKind::Orders],
            ),
            (
                "replace_entries",
                self.replace_entries,
                &[FlowKind::Customers],
            ),
            (
                "notify_title",
                self.notify_title.is_some(),
                &[FlowKind::Deliveries],
            ),
            (
                "notify_text",
                self.notify_text.is_some(),
                &[FlowKind::Deliveries],
            ),
        ];
        for (key, is_set, kinds) in set {
            if is_set && !kinds.contains(&self.kind) {
                let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                return Err(ConfigError::Invalid(format!(
                    "flow `{}`: `{key}` applies to flows of kind {} only; remove it",
                    self.name,
                    kinds.join(" or ")
                )));
            }
        }
        Ok(())
    }
}

/// `[schedule]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScheduleConfig {
    /// The pause between runs of `watch` (`30s`, `5m`, `1h`; default `5m`).
    pub every: Option<String>,
}

/// `[alerts]`: `watch` checks the state after every run and tells the channels about each
/// problem once, again every `remind_every` while it lasts, and once when it clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertsConfig {
    /// Tell again while a problem lasts, this often (default `4h`).
    pub remind_every: Option<String>,
    /// A write-back or message waiting this long means the follow-ups are stalled (default
    /// `30m`).
    pub stall_after: Option<String>,
    /// `zh` (default) or `en`.
    #[serde(default)]
    pub language: crate::alerts::Lang,
    /// Where alerts go (`[[alerts.channels]]`); none by default.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

impl AlertsConfig {
    /// [`remind_every`](Self::remind_every), checked.
    pub fn remind_every(&self) -> Duration {
        self.remind_every
            .as_deref()
            .and_then(|e| parse_interval(e).ok())
            .unwrap_or(Duration::from_secs(4 * 3600))
    }

    /// [`stall_after`](Self::stall_after), checked.
    pub fn stall_after(&self) -> Duration {
        self.stall_after
            .as_deref()
            .and_then(|e| parse_interval(e).ok())
            .unwrap_or(Duration::from_secs(30 * 60))
    }
}

/// `[[alerts.channels]]`: one place alerts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChannelConfig {
    /// `webhook`, `wecom` (企业微信), `dingtalk` (钉钉), `feishu` (飞书) or `crm`.
    pub kind: crate::alerts::ChannelKind,
    /// The environment variable holding the webhook's address (all kinds but `crm`): robots'
    /// addresses carry their key, so they are secrets.
    pub url_env: Option<String>,
    /// The environment variable holding the robot's signing secret (加签; `dingtalk`,
    /// `feishu`), when it has one.
    pub secret_env: Option<String>,
    /// The CRM users told (`FSUID_…`; `crm` only).
    #[serde(default)]
    pub users: Vec<String>,
}

/// `[serve]`: the operator's web page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Where to listen (default `127.0.0.1:9184`: this machine only).
    pub listen: Option<String>,
    /// The environment variable holding the token that buttons (retry, drop) must give; without
    /// it the page only shows.
    #[serde(default = "serve_token_env")]
    pub token_env: String,
    /// Host names the page also answers to on loopback besides `127.0.0.1` and `localhost`:
    /// the name a reverse proxy in front passes on (`Host`).
    #[serde(default)]
    pub hosts: Vec<String>,
}

fn serve_token_env() -> String {
    "FXK3_SERVE_TOKEN".into()
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: None,
            token_env: serve_token_env(),
            hosts: Vec::new(),
        }
    }
}

impl ServeConfig {
    /// Where to listen.
    pub fn listen(&self) -> &str {
        self.listen.as_deref().unwrap_or("127.0.0.1:9184")
    }
}

impl Config {
    /// Reads and checks a configuration file. Relative paths in it are resolved from the
    /// file's directory. Environment variables are not read here (see
    /// [`App::build`](crate::App::build)).
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, &base).map_err(|e| e.in_file(path))
    }

    /// Parses and checks a configuration; relative paths are resolved from `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            // 1 + the newlines before the span: a span at the start of a line (an unknown
            // key) is on that line, not the one before.
            let line = e
                .span()
                .map(|s| 1 + text.get(..s.start).unwrap_or(text).matches('\n').count());
            ConfigError::Parse {
                path: None,
                line,
                reason: e.message().to_owned(),
            }
        })?;
        base_dir.clone_into(&mut config.base_dir);
        config.check()?;
        Ok(config)
    }

    /// A path from the file, resolved from its directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The ERP's time zone (`k3cloud.time_zone`, `+08:00` by default); also the zone of the
    /// times an operator types and reads (`start_from`, `set-cursor`, `status`).
    pub fn time_zone(&self) -> Result<chrono::FixedOffset, ConfigError> {
        match self.k3cloud.as_ref().and_then(|k| k.time_zone.as_deref()) {
            None => Ok(CHINA),
            Some(z) => {
                parse_time_zone(z).map_err(|e| ConfigError::Invalid(format!("k3cloud: {e}")))
            }
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.time_zone()?;
        if let Some(k3) = &self.k3cloud
            && (k3.max_concurrent_calls == Some(0) || k3.calls_per_second == Some(0))
        {
            return Err(ConfigError::Invalid(
                "k3cloud: max_concurrent_calls and calls_per_second must be positive".into(),
            ));
        }
        let mut names = BTreeSet::new();
        for flow in &self.flows {
            if flow.name.trim().is_empty() {
                return Err(ConfigError::Invalid("a flow has an empty name".into()));
            }
            if !names.insert(flow.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "flow `{}` is defined twice",
                    flow.name
                )));
            }
            for value in [
                &flow.lookback,
                &flow.settle,
                &flow.quiet_period,
                &flow.retry_after,
            ]
            .into_iter()
            .flatten()
            {
                parse_duration(value)
                    .map_err(|e| ConfigError::Invalid(format!("flow `{}`: {e}", flow.name)))?;
            }
            if let Some(start) = &flow.start_from {
                parse_start(start, self.time_zone()?)
                    .map_err(|e| ConfigError::Invalid(format!("flow `{}`: {e}", flow.name)))?;
            }
            flow.check_keys_apply()?;
            if flow.concurrency == Some(0) || flow.follow_up_concurrency == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "flow `{}`: concurrency and follow_up_concurrency must be positive",
                    flow.name
                )));
            }
            if flow.batch_size == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "flow `{}`: batch_size must be positive",
                    flow.name
                )));
            }
        }
        for flow in &self.flows {
            for dep in flow.depends_on.iter().flatten() {
                if !names.contains(dep.as_str()) {
                    return Err(ConfigError::Invalid(format!(
                        "flow `{}` depends on `{dep}`, which is not defined",
                        flow.name
                    )));
                }
            }
        }
        if let Some(every) = &self.schedule.every {
            parse_interval(every)
                .map_err(|e| ConfigError::Invalid(format!("schedule.every: {e}")))?;
        }
        self.check_alerts()?;
        if let Some(k3) = &self.k3cloud
            && k3.auth != K3Auth::Password
            && k3.app_id.as_deref().is_none_or(|a| a.trim().is_empty())
        {
            return Err(ConfigError::Invalid(
                "k3cloud.app_id is required unless auth = \"password\"".into(),
            ));
        }
        if let Some(fx) = &self.fxiaoke
            && fx.operator.is_none()
            && fx.operator_mobile.is_none()
        {
            return Err(ConfigError::Invalid(
                "fxiaoke: give `operator` (FSUID_…) or `operator_mobile`".into(),
            ));
        }
        Ok(())
    }

    fn check_alerts(&self) -> Result<(), ConfigError> {
        use crate::alerts::ChannelKind;
        let a = &self.alerts;
        for (name, value) in [
            ("remind_every", &a.remind_every),
            ("stall_after", &a.stall_after),
        ] {
            if let Some(v) = value {
                parse_interval(v)
                    .map_err(|e| ConfigError::Invalid(format!("alerts.{name}: {e}")))?;
            }
        }
        for c in &a.channels {
            let kind = c.kind.as_str();
            let invalid = |what: &str| {
                Err(ConfigError::Invalid(format!(
                    "alerts channel `{kind}`: {what}"
                )))
            };
            match c.kind {
                ChannelKind::Crm if c.users.is_empty() => {
                    return invalid("give `users` (FSUID_…) to tell");
                }
                ChannelKind::Crm if self.fxiaoke.is_none() => {
                    return invalid("needs the [fxiaoke] connection");
                }
                ChannelKind::Crm if c.url_env.is_some() || c.secret_env.is_some() => {
                    return invalid("takes `users`, not `url_env` or `secret_env`");
                }
                ChannelKind::Crm => {}
                _ if c.url_env.is_none() => {
                    return invalid("give `url_env`, the environment variable holding its address");
                }
                _ if !c.users.is_empty() => return invalid("`users` is for `crm` only"),
                ChannelKind::Webhook | ChannelKind::Wecom if c.secret_env.is_some() => {
                    return invalid(
                        "has no signing secret (`secret_env` is for dingtalk and feishu)",
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The flow named `name`.
    pub fn flow(&self, name: &str) -> Option<&FlowConfig> {
        self.flows.iter().find(|f| f.name == name)
    }

    /// The pause between `watch` runs.
    pub fn every(&self) -> Duration {
        self.schedule
            .every
            .as_deref()
            .and_then(|e| parse_interval(e).ok())
            .unwrap_or(Duration::from_secs(300))
    }
}

/// `30s`, `5m`, `2h`, `1d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    // Ten years is more than any setting needs; beyond it the milliseconds of a window would
    // no longer fit.
    const MAX_SECS: u64 = 3_650 * 86_400;
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, "s"), |i| (&t[..i], t[i..].trim()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (30s, 5m, 2h)"))?;
    let unit_secs = match unit {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        _ => return Err(format!("`{text}`: unknown unit `{unit}` (s, m, h, d)")),
    };
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= MAX_SECS => Ok(Duration::from_secs(secs)),
        _ => Err(format!("`{text}` is too long (at most 3650d)")),
    }
}

/// A pause between runs: a duration of at least one second (`0s` would run back to back,
/// hammering both systems).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("`{text}`: the interval must be at least 1s"));
    }
    Ok(d)
}

/// China's zone, K3Cloud's usual one: the default of `k3cloud.time_zone`.
pub const CHINA: chrono::FixedOffset = match chrono::FixedOffset::east_opt(8 * 3600) {
    Some(o) => o,
    None => panic!("+08:00 is a valid offset"),
};

/// `+08:00`, `-05:30`, `Z` (or `UTC`) as an offset.
pub fn parse_time_zone(text: &str) -> Result<chrono::FixedOffset, String> {
    let t = text.trim();
    let bad = || format!("time zone `{text}`: expected an offset like `+08:00`");
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return chrono::FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// `2024-01-01` (midnight in `zone`), `2024-01-01 08:30:00`, or epoch milliseconds.
pub fn parse_start(text: &str, zone: chrono::FixedOffset) -> Result<i64, String> {
    use chrono::TimeZone as _;
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    // The ERP's own local date formats, read by the SDK's parser.
    let local = k3cloud_sdk::de::parse_datetime(t)
        .ok_or_else(|| format!("`{text}` is not a date (2024-01-01) or epoch milliseconds"))?;
    zone.from_local_datetime(&local)
        .single()
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| format!("`{text}` is not a valid local time"))
}

/// A commented example configuration for the three flows (what `fxk3 init` writes).
pub const EXAMPLE: &str = include_str!("../example/fxk3.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let c = Config::from_toml(EXAMPLE, Path::new("/etc/fxk3")).unwrap();
        assert_eq!(c.flows.len(), 3);
        assert_eq!(
            c.resolve(&c.flows[0].mapping),
            PathBuf::from("/etc/fxk3/mappings/customer.toml")
        );
        assert_eq!(c.every(), Duration::from_secs(300));
    }

    #[test]
    fn durations_and_starts() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration(" 2h ").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("soon").is_err());
        // Overflow and absurd lengths are refused, not wrapped or panicked on.
        for huge in ["99999999999999999999h", "18446744073709551615d", "3651d"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(
                e.contains("too long") || e.contains("not a duration"),
                "{huge}: {e}"
            );
        }
        assert_eq!(
            parse_duration("3650d").unwrap(),
            Duration::from_secs(3_650 * 86_400)
        );
        // A pause of nothing between runs is refused.
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_interval("0s").unwrap_err().contains("at least 1s"));
        assert!(parse_interval("0").is_err());
        assert_eq!(parse_interval("1s").unwrap(), Duration::from_secs(1));
        let zero = EXAMPLE.replace("every = \"5m\"", "every = \"0s\"");
        let e = Config::from_toml(&zero, Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("schedule.every"), "{e}");
        assert_eq!(
            parse_start("1716000000000", CHINA).unwrap(),
            1_716_000_000_000
        );
        assert_eq!(parse_start("2024-05-18", CHINA).unwrap(), 1_715_961_600_000);
        assert_eq!(
            parse_start("2024-05-18 08:30:00", CHINA).unwrap(),
            1_715_992_200_000
        );
        assert!(parse_start("18/05/2024", CHINA).is_err());
        assert_eq!(parse_time_zone("+08:00").unwrap(), CHINA);
        assert_eq!(
            parse_time_zone("-05:30").unwrap().local_minus_utc(),
            -(5 * 3600 + 30 * 60)
        );
        for bad in ["8", "+8", "+15:00", "+08:60", "GMT+8", ""] {
            assert!(parse_time_zone(bad).is_err(), "{bad}");
        }
        let utc = parse_time_zone("Z").unwrap();
        assert_eq!(parse_start("2024-05-18", utc).unwrap(), 1_715_990_400_000);
    }

    #[test]
    fn the_k3cloud_call_limit_is_set_and_zero_is_refused() {
        let text = EXAMPLE
            .replace("# max_concurrent_calls = 8", "max_concurrent_calls = 8")
            .replace("# calls_per_second = 20", "calls_per_second = 20");
        let c = Config::from_toml(&text, Path::new(".")).unwrap();
        let k3 = c.k3cloud.as_ref().unwrap();
        assert_eq!(
            (k3.max_concurrent_calls, k3.calls_per_second),
            (Some(8), Some(20))
        );
        let zero = text.replace("calls_per_second = 20", "calls_per_second = 0");
        let e = Config::from_toml(&zero, Path::new(".")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: k3cloud: max_concurrent_calls and calls_per_second must be positive"
        );
    }

    #[test]
    fn a_key_of_another_kind_of_flow_is_refused() {
        let text = EXAMPLE.replace(
            "notify_title = \"发货通知\"",
            "notify_title = \"发货通知\"\nwrite_back_field = \"field_erp_no__c\"",
        );
        let err = Config::from_toml(&text, Path::new(".")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: flow `deliveries`: `write_back_field` applies to flows of kind customers only; remove it"
        );
        let text = EXAMPLE.replace("# use_org = \"100\"", "use_org = \"100\"");
        let c = Config::from_toml(&text, Path::new(".")).unwrap();
        assert_eq!(c.flows[0].use_org.as_deref(), Some("100"));
        let text = EXAMPLE.replace(
            "notify_title = \"发货通知\"",
            "notify_title = \"发货通知\"\nuse_org = \"100\"",
        );
        let err = Config::from_toml(&text, Path::new(".")).unwrap_err();
        assert!(
            err.to_string()
                .contains("`use_org` applies to flows of kind customers only"),
            "{err}"
        );
    }

    #[test]
    fn alert_channels_are_checked_and_default_to_none() {
        let c = Config::from_toml("", Path::new(".")).unwrap();
        assert!(c.alerts.channels.is_empty());
        assert_eq!(c.alerts.remind_every(), Duration::from_secs(4 * 3600));
        assert_eq!(c.alerts.stall_after(), Duration::from_secs(1800));
        assert_eq!(c.serve.listen(), "127.0.0.1:9184");
        assert_eq!(c.serve.token_env, "FXK3_SERVE_TOKEN");
        let table = [
            ("[alerts]\nremind_every = \"0s\"\n", "alerts.remind_every"),
            (
                "[[alerts.channels]]\nkind = \"wecom\"\n",
                "alerts channel `wecom`: give `url_env`",
            ),
            (
                "[[alerts.channels]]\nkind = \"crm\"\nusers = [\"FSUID_1\"]\n",
                "alerts channel `crm`: needs the [fxiaoke] connection",
            ),
            (
                "[[alerts.channels]]\nkind = \"webhook\"\nurl_env = \"U\"\nsecret_env = \"S\"\n",
                "alerts channel `webhook`: has no signing secret",
            ),
            (
                "[[alerts.channels]]\nkind = \"sms\"\nurl_env = \"U\"\n",
                "unknown variant `sms`",
            ),
        ];
        for (text, want) in table {
            let e = Config::from_toml(text, Path::new(".")).unwrap_err();
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
        let signed =
            "[[alerts.channels]]\nkind = \"dingtalk\"\nurl_env = \"U\"\nsecret_env = \"S\"\n";
        assert!(Config::from_toml(signed, Path::new(".")).is_ok());
    }

    #[test]
    fn mistakes_are_caught_with_a_line() {
        let e = Config::from_toml("[state]\npath = 3\n", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Config::from_toml("[state]\ncolour = \"blue\"\n", Path::new(".")).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("line 2: unknown field `colour`, expected `path`"),
            "a key at the start of its line: {e}"
        );
        let e = Config::from_toml(
            "[k3cloud]\nserver_url = \"x\"\nacct_id = \"a\"\nuser = \"u\"\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.to_string().contains("app_id"), "{e}");
        let twice = "[[flows]]\nname = \"a\"\nkind = \"customers\"\nmapping = \"m\"\n[[flows]]\nname = \"a\"\nkind = \"orders\"\nmapping = \"m\"\n";
        assert!(
            Config::from_toml(twice, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let unknown = "[[flows]]\nname = \"a\"\nkind = \"invoices\"\nmapping = \"m\"\n";
        assert!(Config::from_toml(unknown, Path::new(".")).is_err());
        let dangling =
            "[[flows]]\nname = \"a\"\nkind = \"orders\"\nmapping = \"m\"\ndepends_on = [\"b\"]\n";
        assert!(
            Config::from_toml(dangling, Path::new("."))
                .unwrap_err()
                .to_string()
                .contains("`b`")
        );
    }
}
