//! A configured application: the two clients, the state store and the three standard flows
//! (built in `flows`); `advice` says what to do about a flow that stopped.

mod advice;
mod alerting;
mod flows;

pub use advice::advice;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sync_core::{Engine, Flow, Observer, RunReport, SqliteStore, StateStore, TracingObserver};

use crate::config::{Config, K3Auth};
use crate::error::{AppError, ConfigError};
use crate::observers::{CallCounter, Fanout};

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
    /// Where the alert channels' secrets are read, when `watch` starts alerting.
    env: SecretSource,
    serve_token: Option<secrecy::SecretString>,
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
                let mut limit = k3cloud_sdk::RateLimit::none();
                if let Some(n) = k3.max_concurrent_calls {
                    limit = limit.max_concurrent(n);
                }
                if let Some(n) = k3.calls_per_second {
                    limit = limit.per_second(n);
                }
                builder = builder.rate_limit(limit);
                Some(builder.build().map_err(|e| AppError::Connect {
                    system: "k3cloud",
                    reason: e.to_string(),
                })?)
            }
        };
        let serve_token = env(&config.serve.token_env).map(secrecy::SecretString::from);
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
            env: env.clone(),
            serve_token,
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
        let mut app = Self::build(config, &placeholder).await?;
        // Nothing offline may change state through the page: the placeholder is no token.
        app.serve_token = None;
        Ok(app)
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

    /// Sweeps the flows named (all when `names` is empty), in dependency order: every record
    /// of a flow's ID map is read again, and the ones gone from the source are handed to the
    /// sink (see [`sync_core::Engine::sweep`]).
    pub async fn sweep(&self, names: &[String]) -> Result<Vec<RunReport>, AppError> {
        let engine = self.engine(None);
        let mut out = Vec::new();
        for flow in self.select(names)? {
            out.push(engine.sweep(flow).await?);
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
