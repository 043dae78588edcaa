//! A configured application: the two clients, the state store and the three standard flows.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sync_core::fxiaoke::{ObjectSink, ObjectSource, ObjectWriteBack};
use sync_core::k3cloud::{FormSink, FormSource};
use sync_core::{
    ConnectorErrorKind, DeclarativeMapping, Engine, Flow, Mapping, Observer, RunReport,
    SqliteStore, StateStore, TracingObserver,
};

use crate::config::{Config, FlowConfig, FlowKind, K3Auth, parse_duration, parse_start};
use crate::error::{AppError, ConfigError};
use crate::observers::{CallCounter, Fanout};
use crate::presets;

/// Where secrets come from: the process environment, or a map in tests and the demo.
pub type SecretSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn environment() -> SecretSource {
    Arc::new(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// Everything a command needs: connections, state, flows.
pub struct App {
    config: Config,
    fxiaoke: Option<fxiaoke_sdk::Client>,
    k3cloud: Option<k3cloud_sdk::Client>,
    store: Arc<dyn StateStore>,
    flows: Vec<Flow>,
    calls: CallCounter,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field(
                "flows",
                &self.flows.iter().map(Flow::name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One flow's result, as printed and as `--json`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FlowOutcome {
    /// The flow.
    pub flow: String,
    /// The run's report, when it ran.
    pub report: Option<RunReport>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// What to do about the failure, when the error says which system refused or could not
    /// be reached.
    pub hint: Option<String>,
    /// HTTP requests it sent to both systems.
    pub api_calls: Option<u64>,
    /// How long it took.
    pub duration_ms: i64,
}

impl FlowOutcome {
    /// The outcome of a run of `flow` that took `elapsed`.
    pub fn new(flow: &str, report: RunReport, elapsed: Duration) -> Self {
        FlowOutcome {
            flow: flow.to_owned(),
            report: Some(report),
            error: None,
            hint: None,
            api_calls: None,
            duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// True when the flow ran and every record settled cleanly.
    pub fn is_clean(&self) -> bool {
        self.error.is_none()
            && self.report.as_ref().is_some_and(|r| {
                r.counts.dead_lettered == 0
                    && r.counts.unknown == 0
                    && r.counts.actions_unknown == 0
                    && r.counts.deferred == 0
            })
    }
}

fn secret(env: &SecretSource, var: &str, what: &str) -> Result<String, ConfigError> {
    env(var).ok_or_else(|| ConfigError::MissingEnv {
        var: var.to_owned(),
        what: what.to_owned(),
    })
}

impl App {
    /// Builds clients and flows from `config`, reading secrets from `env`. Checks everything
    /// that can be checked without sending: secrets present, mapping files loadable, flows
    /// consistent. The only call made is the operator lookup when `operator_mobile` is used.
    pub async fn build(config: Config, env: &SecretSource) -> Result<Self, AppError> {
        let state_path = config.resolve(&config.state.path);
        let sqlite = Arc::new(SqliteStore::open(&state_path)?);
        let fxiaoke = match &config.fxiaoke {
            None => None,
            Some(fx) => {
                let app_secret = secret(env, &fx.app_secret_env, "the Fxiaoke app secret")?;
                let permanent_code =
                    secret(env, &fx.permanent_code_env, "the Fxiaoke permanent code")?;
                let build = |operator: Option<&str>| {
                    let mut builder = fxiaoke_sdk::Client::builder()
                        .app_id(&fx.app_id)
                        .app_secret(app_secret.clone())
                        .permanent_code(permanent_code.clone())
                        .timeout(Duration::from_secs(fx.timeout_secs.unwrap_or(60)))
                        // The token outlives the process: restarts do not each fetch one (the
                        // vendor allows ten token calls a minute).
                        .token_cache(sqlite.clone());
                    if let Some(url) = &fx.base_url {
                        builder = builder.base_url(url);
                    }
                    if fx.rate_limit {
                        builder = builder.rate_limit(fxiaoke_sdk::RateLimit::vendor_default());
                    }
                    if let Some(op) = operator {
                        builder = builder.operator(op);
                    }
                    builder.build().map_err(|e| AppError::Connect {
                        system: "fxiaoke",
                        reason: e.to_string(),
                    })
                };
                let operator = match (&fx.operator, &fx.operator_mobile) {
                    (Some(op), _) => op.clone(),
                    (None, Some(mobile)) => {
                        let lookup = build(None)?;
                        let users = lookup.user_by_mobile(mobile).send().await.map_err(|e| {
                            if matches!(e, fxiaoke_sdk::Error::Connect { .. }) {
                                AppError::Unreachable {
                                    system: "Fxiaoke",
                                    setting: "[fxiaoke] base_url",
                                    url: lookup.base_url().to_string(),
                                    reason: causes(&e),
                                }
                            } else {
                                AppError::Connect {
                                    system: "fxiaoke",
                                    reason: format!("finding the operator by mobile {mobile}: {e}"),
                                }
                            }
                        })?;
                        users
                            .first()
                            .map(|u| u.open_user_id.clone())
                            .ok_or_else(|| AppError::Connect {
                                system: "fxiaoke",
                                reason: format!("no CRM user has mobile {mobile}"),
                            })?
                    }
                    (None, None) => {
                        return Err(ConfigError::Invalid(
                            "fxiaoke: give `operator` or `operator_mobile`".into(),
                        )
                        .into());
                    }
                };
                Some(build(Some(&operator))?)
            }
        };
        let k3cloud = match &config.k3cloud {
            None => None,
            Some(k3) => {
                let app_id = k3.app_id.clone().unwrap_or_default();
                let auth = match k3.auth {
                    K3Auth::Password => k3cloud_sdk::Auth::password(secret(
                        env,
                        &k3.password_env,
                        "the K3Cloud password",
                    )?),
                    K3Auth::Signed => k3cloud_sdk::Auth::signed(
                        app_id,
                        secret(env, &k3.app_secret_env, "the K3Cloud app secret")?,
                    ),
                    K3Auth::AppSecret => k3cloud_sdk::Auth::app_secret(
                        app_id,
                        secret(env, &k3.app_secret_env, "the K3Cloud app secret")?,
                    ),
                    K3Auth::Sign => k3cloud_sdk::Auth::sign(
                        app_id,
                        secret(env, &k3.app_secret_env, "the K3Cloud app secret")?,
                    ),
                };
                let mut builder = k3cloud_sdk::Client::builder(&k3.server_url)
                    .account(&k3.acct_id)
                    .user(&k3.user)
                    .auth(auth)
                    .lcid(k3.lcid.unwrap_or(2052))
                    .timeout(Duration::from_secs(k3.timeout_secs.unwrap_or(120)))
                    .danger_accept_invalid_certs(k3.accept_invalid_certs);
                if let Some(org) = &k3.org {
                    builder = builder.org(org);
                }
                Some(builder.build().map_err(|e| AppError::Connect {
                    system: "k3cloud",
                    reason: e.to_string(),
                })?)
            }
        };
        let store: Arc<dyn StateStore> = sqlite;
        let counter = {
            let (fx, k3) = (fxiaoke.clone(), k3cloud.clone());
            CallCounter::new(move || {
                fx.as_ref().map_or(0, fxiaoke_sdk::Client::requests_sent)
                    + k3.as_ref().map_or(0, k3cloud_sdk::Client::requests_sent)
            })
        };
        let mut app = App {
            config,
            fxiaoke,
            k3cloud,
            store,
            flows: Vec::new(),
            calls: counter,
        };
        let mut flows = Vec::with_capacity(app.config.flows.len());
        for flow in &app.config.flows {
            flows.push(app.build_flow(flow)?);
        }
        app.flows = flows;
        Ok(app)
    }

    /// Checks that each configured system can be reached, before any flow reads or writes:
    /// a server that cannot be reached at start is a configuration problem (a wrong URL; a
    /// network, VPN or proxy in the way), not a failed flow. Sends one call per system that
    /// changes nothing: Fxiaoke the access token the flows need anyway, K3Cloud
    /// GetDataCenterList, which needs no credentials. Only failures to connect are reported
    /// here; whatever the servers answer (refused credentials, …) is left to the flows.
    pub async fn check_reachable(&self) -> Result<(), AppError> {
        if let Some(fx) = &self.fxiaoke
            && let Err(e @ fxiaoke_sdk::Error::Connect { .. }) = fx.corp_id().await
        {
            return Err(AppError::Unreachable {
                system: "Fxiaoke",
                setting: "[fxiaoke] base_url",
                url: fx.base_url().to_string(),
                reason: causes(&e),
            });
        }
        if let Some(k3) = &self.k3cloud
            && let Err(e @ k3cloud_sdk::Error::Connect { .. }) = k3.data_centers().await
        {
            return Err(AppError::Unreachable {
                system: "K3Cloud",
                setting: "[k3cloud] server_url",
                url: k3.base_url().to_string(),
                reason: causes(&e),
            });
        }
        Ok(())
    }

    /// The app of the commands that only read the state file (`status`, `dead-letters
    /// list|show`): no secret is needed and nothing is sent — its clients could not
    /// authenticate, and nothing here calls them.
    pub async fn build_offline(mut config: Config) -> Result<Self, AppError> {
        if let Some(fx) = config.fxiaoke.as_mut() {
            fx.operator = Some(fx.operator.clone().unwrap_or_else(|| "offline".into()));
        }
        let placeholder: SecretSource = Arc::new(|_| Some("offline".into()));
        Self::build(config, &placeholder).await
    }

    /// HTTP requests the flow's last run or retry sent to both systems.
    pub fn api_calls(&self, flow: &str) -> Option<u64> {
        self.calls.calls(flow)
    }

    /// Takes records off a flow's dead-letter list without retrying them; returns the keys
    /// that were on it.
    pub async fn drop_dead_letters(
        &self,
        name: &str,
        keys: &[String],
    ) -> Result<Vec<String>, AppError> {
        let flow = self.flow(name)?;
        Ok(self.engine(None).drop_dead_letters(flow, keys).await?)
    }

    /// Sets a flow's cursor (see [`sync_core::Engine::set_cursor`]).
    pub async fn set_cursor(&self, name: &str, version: i64) -> Result<(), AppError> {
        let flow = self.flow(name)?;
        Ok(self.engine(None).set_cursor(flow, version).await?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The flows, in the file's order.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    /// The Fxiaoke client, when configured.
    pub fn fxiaoke(&self) -> Option<&fxiaoke_sdk::Client> {
        self.fxiaoke.as_ref()
    }

    /// The K3Cloud client, when configured.
    pub fn k3cloud(&self) -> Option<&k3cloud_sdk::Client> {
        self.k3cloud.as_ref()
    }

    /// An engine on the app's state, with the call counter, `tracing` logs of the runs and
    /// `observer`.
    pub fn engine(&self, observer: Option<Arc<dyn Observer>>) -> Engine {
        // The engine's own logs (runs started and finished, records not synced) come from
        // its TracingObserver; `with_observer` replaces it, so it goes into the fan-out.
        let mut observers: Vec<Arc<dyn Observer>> =
            vec![Arc::new(self.calls.clone()), Arc::new(TracingObserver)];
        observers.extend(observer);
        Engine::new(self.store.clone()).with_observer(Arc::new(Fanout(observers)))
    }

    /// The flows named (all when `names` is empty), in dependency order; an unknown name is
    /// an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Flow>, AppError> {
        for name in names {
            if !self.flows.iter().any(|f| f.name() == name) {
                return Err(AppError::UnknownFlow(name.clone()));
            }
        }
        let wanted: BTreeSet<&str> = if names.is_empty() {
            self.flows.iter().map(Flow::name).collect()
        } else {
            names.iter().map(String::as_str).collect()
        };
        // Dependency order: a flow after every flow it depends on.
        let mut ordered: Vec<&Flow> = Vec::new();
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        while ordered.len() < wanted.len() {
            let before = ordered.len();
            let ready: Vec<&Flow> = self
                .flows
                .iter()
                .filter(|f| wanted.contains(f.name()) && !placed.contains(f.name()))
                .filter(|f| {
                    f.depends_on()
                        .iter()
                        .all(|d| placed.contains(d.as_str()) || !wanted.contains(d.as_str()))
                })
                .collect();
            for flow in ready {
                placed.insert(flow.name());
                ordered.push(flow);
            }
            if ordered.len() == before {
                return Err(AppError::Sync(sync_core::Error::DependencyCycle(
                    wanted
                        .iter()
                        .filter(|n| !placed.contains(*n))
                        .map(|n| (*n).to_owned())
                        .collect(),
                )));
            }
        }
        Ok(ordered)
    }

    /// Runs flows in dependency order (a flow whose dependency failed for good — not a
    /// transient failure — is skipped), or dry-runs
    /// them (maps and reports the payloads, writes nothing).
    pub async fn run(
        &self,
        names: &[String],
        dry_run: bool,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<Vec<FlowOutcome>, AppError> {
        self.run_with(names, dry_run, observer, None).await
    }

    /// Like [`run`](Self::run), stopping after the records in flight once `stop` is set
    /// (the remaining flows are not started).
    pub async fn run_with(
        &self,
        names: &[String],
        dry_run: bool,
        observer: Option<Arc<dyn Observer>>,
        stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<Vec<FlowOutcome>, AppError> {
        let flows = self.select(names)?;
        let mut engine = self.engine(observer);
        if let Some(stop) = &stop {
            engine = engine.with_stop_signal(stop.clone());
        }
        let mut failed: BTreeSet<String> = BTreeSet::new();
        let mut out = Vec::with_capacity(flows.len());
        for flow in flows {
            if stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
            {
                break;
            }
            let started = std::time::Instant::now();
            if let Some(dep) = flow.depends_on().iter().find(|d| failed.contains(*d)) {
                failed.insert(flow.name().to_owned());
                out.push(FlowOutcome {
                    flow: flow.name().to_owned(),
                    report: None,
                    error: Some(format!("skipped: its dependency `{dep}` failed")),
                    hint: None,
                    api_calls: None,
                    duration_ms: 0,
                });
                continue;
            }
            let result = if dry_run {
                engine.dry_run(flow).await
            } else {
                engine.run(flow).await
            };
            let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let api_calls = self.calls.calls(flow.name());
            match result {
                Ok(report) => out.push(FlowOutcome {
                    flow: flow.name().to_owned(),
                    report: Some(report),
                    error: None,
                    hint: None,
                    api_calls,
                    duration_ms,
                }),
                Err(e) => {
                    // A failure that may go away by itself (an ERP briefly down) does not hold
                    // back the flows after it: their records wait (deferral) if they must.
                    if !e.is_retryable() {
                        failed.insert(flow.name().to_owned());
                    }
                    out.push(FlowOutcome {
                        flow: flow.name().to_owned(),
                        report: None,
                        error: Some(e.to_string()),
                        hint: advice(&self.config, &e),
                        api_calls,
                        duration_ms,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Re-runs the dead letters of one flow.
    pub async fn retry_dead_letters(
        &self,
        name: &str,
        observer: Option<Arc<dyn Observer>>,
    ) -> Result<RunReport, AppError> {
        let flow = self.flow(name)?;
        Ok(self.engine(observer).rerun_dead_letters(flow).await?)
    }

    /// Rebuilds the ID maps of the flows named (all when `names` is empty) after the state
    /// file was lost, in dependency order: a flow's mapping looks up the ID maps of the flows
    /// it depends on. See [`sync_core::Engine::rebuild_id_map`].
    pub async fn rebuild_id_maps(&self, names: &[String]) -> Result<Vec<RunReport>, AppError> {
        let engine = self.engine(None);
        let mut out = Vec::new();
        for flow in self.select(names)? {
            out.push(engine.rebuild_id_map(flow).await?);
        }
        Ok(out)
    }

    /// Rebuilds one flow's ID map (see [`rebuild_id_maps`](Self::rebuild_id_maps)).
    pub async fn rebuild_id_map(&self, name: &str) -> Result<RunReport, AppError> {
        let flow = self.flow(name)?;
        Ok(self.engine(None).rebuild_id_map(flow).await?)
    }

    /// Checks the mapping of every flow (or the named ones) against the two systems'
    /// metadata (Fxiaoke describe, K3Cloud QueryBusinessInfo).
    pub async fn validate(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, Vec<sync_core::mapping::ValidationIssue>)>, AppError> {
        let engine = self.engine(None);
        let mut out = Vec::new();
        for flow in self.select(names)? {
            out.push((flow.name().to_owned(), engine.check(flow).await?));
        }
        Ok(out)
    }

    fn flow(&self, name: &str) -> Result<&Flow, AppError> {
        self.flows
            .iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| AppError::UnknownFlow(name.to_owned()))
    }

    fn build_flow(&self, c: &FlowConfig) -> Result<Flow, AppError> {
        let path = self.config.resolve(&c.mapping);
        let mapping = DeclarativeMapping::from_path(&path).map_err(|e| ConfigError::Mapping {
            flow: c.name.clone(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let depends_on = c.depends_on.clone().unwrap_or_else(|| {
            let needs = match c.kind {
                FlowKind::Orders => Some(FlowKind::Customers),
                FlowKind::Deliveries => Some(FlowKind::Orders),
                _ => None,
            };
            self.config
                .flows
                .iter()
                .filter(|f| Some(f.kind) == needs)
                .map(|f| f.name.clone())
                .collect()
        });
        for referenced in mapping.referenced_flows() {
            if !depends_on.contains(&referenced) {
                return Err(ConfigError::Invalid(format!(
                    "flow `{}`: its mapping looks up flow `{referenced}`, which it does not depend on \
                     (add it to depends_on, or name the flow `{referenced}`)",
                    c.name
                ))
                .into());
            }
        }
        let fx = || {
            self.fxiaoke
                .clone()
                .ok_or_else(|| ConfigError::MissingConnection {
                    flow: c.name.clone(),
                    section: "fxiaoke",
                })
        };
        let k3 = || {
            self.k3cloud
                .clone()
                .ok_or_else(|| ConfigError::MissingConnection {
                    flow: c.name.clone(),
                    section: "k3cloud",
                })
        };
        let mapping: Arc<dyn Mapping> = Arc::new(mapping);
        let mut builder = match c.kind {
            FlowKind::Customers => {
                let object = c.crm_object.clone().unwrap_or_else(|| "AccountObj".into());
                let source = ObjectSource::new(fx()?, presets::customers_source(&object));
                let form = c.erp_form.as_deref().unwrap_or("BD_Customer");
                let mut config = presets::customers_sink(form, c.replace_entries);
                if let Some(org) = &c.use_org {
                    config = config.use_org(org);
                }
                let sink = FormSink::new(k3()?, config);
                let mut b = Flow::builder(&c.name, Arc::new(source), mapping, Arc::new(sink))
                    .actions(c.actions.clone().unwrap_or_default());
                if let Some(field) = &c.write_back_field {
                    b = b.write_back(Arc::new(ObjectWriteBack::new(fx()?, object, field)));
                }
                b
            }
            FlowKind::Orders => {
                let object = c.crm_object.as_deref().unwrap_or("SalesOrderObj");
                let source = ObjectSource::new(fx()?, presets::orders_source(object));
                let form = c.erp_form.as_deref().unwrap_or("SAL_SaleOrder");
                let sink = FormSink::new(k3()?, presets::orders_sink(form));
                let actions = c
                    .actions
                    .clone()
                    .unwrap_or_else(|| presets::ORDER_ACTIONS.map(String::from).to_vec());
                Flow::builder(&c.name, Arc::new(source), mapping, Arc::new(sink)).actions(actions)
            }
            FlowKind::Deliveries => {
                let form = c.erp_form.as_deref().unwrap_or("SAL_OUTSTOCK");
                let source = FormSource::new(
                    k3()?,
                    presets::deliveries_source(form).utc_offset(self.config.time_zone()?),
                );
                let sink = ObjectSink::new(
                    fx()?,
                    presets::deliveries_sink(
                        c.crm_object.as_deref().unwrap_or("SalesOrderObj"),
                        c.notify_title.as_deref().unwrap_or(presets::DELIVERY_TITLE),
                        c.notify_text.as_deref().unwrap_or(presets::DELIVERY_TEXT),
                    ),
                );
                Flow::builder(&c.name, Arc::new(source), mapping, Arc::new(sink))
                    .actions(presets::DELIVERY_ACTIONS)
            }
        };
        for dep in depends_on {
            builder = builder.depends_on(dep);
        }
        if let Some(n) = c.batch_size {
            builder = builder.batch_size(n);
        }
        if let Some(v) = &c.lookback {
            builder = builder.lookback_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.settle {
            builder = builder.settle_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.retry_after {
            builder = builder
                .dead_letter_retry_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.quiet_period {
            builder =
                builder.quiet_period_ms(millis(parse_duration(v).map_err(ConfigError::Invalid)?));
        }
        if let Some(v) = &c.start_from {
            builder = builder.start_from_ms(
                parse_start(v, self.config.time_zone()?).map_err(ConfigError::Invalid)?,
            );
        }
        if let Some(n) = c.max_defer_attempts {
            builder = builder.max_defer_attempts(n);
        }
        Ok(builder.build()?)
    }
}

/// What to do about a flow that stopped on a call to one of the systems (the settings to
/// check, with the URL tried) or on a cursor a fast clock set. `None` for other errors.
pub fn advice(config: &Config, error: &sync_core::Error) -> Option<String> {
    let (flow, at_source, error) = match error {
        sync_core::Error::CursorAhead { flow, .. } => {
            return Some(format!(
                "set the clocks right (NTP), then `fxk3 set-cursor {flow} TIME` with a time \
                 before the clock went wrong; records that did not change are not written again"
            ));
        }
        sync_core::Error::Source { flow, error } => (flow, true, error),
        sync_core::Error::Sink { flow, error } => (flow, false, error),
        _ => return None,
    };
    // The connectors name the system; a connector that does not is placed by the flow:
    // customers and orders read the CRM and write the ERP, deliveries the other way round.
    let crm = match error.system() {
        Some(system) => system == sync_core::System::Fxiaoke,
        None => at_source != (config.flow(flow)?.kind == FlowKind::Deliveries),
    };
    let system = if crm { "Fxiaoke" } else { "K3Cloud" };
    let message = error.message();
    let unreachable = error
        .source_as::<fxiaoke_sdk::Error>()
        .is_some_and(|e| matches!(e, fxiaoke_sdk::Error::Connect { .. }))
        || error
            .source_as::<k3cloud_sdk::Error>()
            .is_some_and(|e| matches!(e, k3cloud_sdk::Error::Connect { .. }))
        || message.starts_with("could not connect");
    // A rate limit or a server error is not an unreachable server: the address is fine.
    let rate_limited = message.starts_with("rate limited")
        || matches!(
            error.code(),
            Some("errorCode 30004" | "errorCode 14001" | "MsgCode 14")
        );
    if error.kind() == ConnectorErrorKind::Transient && rate_limited {
        return Some(format!(
            "{system} refused calls over its rate limit; nothing was lost, the next run goes on \
             from here — if it keeps happening, run less often (watch --every) or give the flows \
             smaller batches"
        ));
    }
    // The day's quota is not a wrong setting either: it comes back at midnight.
    let quota = message.starts_with("daily API quota") || error.code() == Some("errorCode 30002");
    if quota {
        return Some(format!(
            "{system}'s API quota for the day is used up (it comes back at 00:00 China time, or \
             buy more); nothing was lost, the first run after that goes on from here"
        ));
    }
    if error.kind() == ConnectorErrorKind::Transient && !unreachable {
        return Some(format!(
            "{system} answered with a temporary error; nothing was lost, the next run goes on \
             from the last settled record"
        ));
    }
    match (error.kind(), crm) {
        (ConnectorErrorKind::Transient, true) => {
            let fx = config.fxiaoke.as_ref()?;
            let url = fx.base_url.as_deref().unwrap_or("https://open.fxiaoke.com");
            Some(format!(
                "check [fxiaoke] base_url ({url}) and that this machine can reach it, then run again"
            ))
        }
        (ConnectorErrorKind::Transient, false) => {
            let url = &config.k3cloud.as_ref()?.server_url;
            Some(format!(
                "check [k3cloud] server_url ({url}) and that this machine can reach it, then run again"
            ))
        }
        (ConnectorErrorKind::Permanent, true) => {
            let fx = config.fxiaoke.as_ref()?;
            Some(format!(
                "check [fxiaoke] app_id and operator, the secrets in {} and {}, and the operator's \
                 rights in the CRM",
                fx.app_secret_env, fx.permanent_code_env
            ))
        }
        (ConnectorErrorKind::Permanent, false) => {
            let k3 = config.k3cloud.as_ref()?;
            let secret = match k3.auth {
                K3Auth::Password => format!("the password in {}", k3.password_env),
                _ => format!("app_id and the secret in {}", k3.app_secret_env),
            };
            Some(format!(
                "check [k3cloud] acct_id and user, {secret}, and the user's rights in the ERP"
            ))
        }
        _ => None,
    }
}

/// An error and its sources, `a: b: c`: a refused connection shows as such, not only as
/// "error sending request".
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::ConnectorError;

    #[test]
    fn advice_fits_the_failure() {
        let config =
            Config::from_toml(crate::config::EXAMPLE, std::path::Path::new("/etc/fxk3")).unwrap();
        let source = |error: ConnectorError| sync_core::Error::Source {
            flow: "customers".into(),
            error,
        };
        let sink = |error: ConnectorError| sync_core::Error::Sink {
            flow: "customers".into(),
            error,
        };
        let table: Vec<(sync_core::Error, &str)> = vec![
            (
                source(
                    ConnectorError::transient("rate limited: 超过频率")
                        .with_code("errorCode 30004"),
                ),
                "Fxiaoke refused calls over its rate limit",
            ),
            (
                sink(ConnectorError::transient("network control").with_code("MsgCode 14")),
                "K3Cloud refused calls over its rate limit",
            ),
            (
                source(ConnectorError::transient(
                    "Fxiaoke answered HTTP 502: bad gateway",
                )),
                "Fxiaoke answered with a temporary error",
            ),
            (
                source(ConnectorError::transient(
                    "could not connect to Fxiaoke: refused",
                )),
                "check [fxiaoke] base_url",
            ),
            (
                sink(ConnectorError::transient(
                    "could not connect to K3Cloud: refused",
                )),
                "check [k3cloud] server_url",
            ),
            (
                source(ConnectorError::permanent("credentials refused: 20001")),
                "check [fxiaoke] app_id",
            ),
            (
                source(
                    ConnectorError::permanent("daily API quota exhausted: 当天访问频次超限")
                        .with_code("errorCode 30002"),
                ),
                "Fxiaoke's API quota for the day is used up",
            ),
            // The connector names the system: a write-back to the CRM fails in the customers
            // flow's sink position, and the advice is about Fxiaoke all the same.
            (
                sink(
                    ConnectorError::permanent("credentials refused: 20001")
                        .with_system(sync_core::System::Fxiaoke),
                ),
                "check [fxiaoke] app_id",
            ),
            // Unreachable is read from the SDK's error, whatever the message says.
            (
                sink(
                    ConnectorError::transient("error sending request")
                        .with_system(sync_core::System::K3Cloud)
                        .with_source(k3cloud_sdk::Error::Connect {
                            source: reqwest::Client::new().get("http://").build().unwrap_err(),
                        }),
                ),
                "check [k3cloud] server_url",
            ),
            (
                sync_core::Error::CursorAhead {
                    flow: "customers".into(),
                    cursor_ms: 2,
                    now_ms: 1,
                },
                "set the clocks right (NTP), then `fxk3 set-cursor customers TIME`",
            ),
        ];
        for (error, expected) in table {
            let advice = advice(&config, &error).unwrap();
            assert!(advice.starts_with(expected), "{error}: {advice}");
        }
    }
}
