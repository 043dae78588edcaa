//! The two systems an example talks to: the built-in simulators, or real servers named by the
//! environment.

use std::sync::Arc;
use std::time::Duration;

use fxk3_simulators::Sandbox;
use sync_core::{MemoryStore, SqliteStore, StateStore};

use crate::BoxError;

/// The variables that point the examples at real servers. Setting `FXK3_K3CLOUD_URL` selects
/// real servers; then every variable without a default must be set.
pub const VARIABLES: [(&str, &str); 11] = [
    (
        "FXK3_K3CLOUD_URL",
        "K3Cloud server, e.g. https://erp.example.com/k3cloud/",
    ),
    ("FXK3_K3CLOUD_ACCT_ID", "K3Cloud data centre (账套) id"),
    ("FXK3_K3CLOUD_USER", "K3Cloud user the integration acts as"),
    (
        "FXK3_K3CLOUD_APP_ID",
        "K3Cloud third-party app id (第三方系统登录授权)",
    ),
    ("FXK3_K3CLOUD_APP_SECRET", "K3Cloud app secret"),
    ("FXK3_FXIAOKE_APP_ID", "Fxiaoke app id (FSAID_…)"),
    ("FXK3_FXIAOKE_APP_SECRET", "Fxiaoke app secret"),
    ("FXK3_FXIAOKE_PERMANENT_CODE", "Fxiaoke permanent code"),
    (
        "FXK3_FXIAOKE_OPERATOR",
        "CRM user the sync acts as (FSUID_…)",
    ),
    (
        "FXK3_FXIAOKE_BASE_URL",
        "optional; default https://open.fxiaoke.com",
    ),
    ("FXK3_STATE", "optional; default examples-state.sqlite3"),
];

/// The CRM administrator of the simulators' demo data, whom the examples act as.
pub const SANDBOX_ADMIN: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";

/// Connections to both systems and where the sync keeps its state.
pub struct Systems {
    /// The Fxiaoke client.
    pub fxiaoke: fxiaoke_sdk::Client,
    /// The K3Cloud client.
    pub k3cloud: k3cloud_sdk::Client,
    /// The state: in memory on the simulators (they start afresh too), SQLite on real servers.
    pub store: Arc<dyn StateStore>,
    /// The simulators, when the example runs on them.
    pub sandbox: Option<Sandbox>,
}

impl std::fmt::Debug for Systems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Systems")
            .field("fxiaoke", &self.fxiaoke.base_url().as_str())
            .field("k3cloud", &self.k3cloud.base_url().as_str())
            .field("simulated", &self.sandbox.is_some())
            .finish_non_exhaustive()
    }
}

impl Systems {
    /// Real servers when `FXK3_K3CLOUD_URL` is set, otherwise the simulators with their demo
    /// data, started in this process on 127.0.0.1.
    pub async fn connect() -> Result<Self, BoxError> {
        if std::env::var_os("FXK3_K3CLOUD_URL").is_some() {
            Self::real()
        } else {
            Self::simulated().await
        }
    }

    /// Both simulators with their demo data (300 customers, 200 orders, 60 products that are
    /// ERP materials, 8 salesmen) and their demo credentials.
    pub async fn simulated() -> Result<Self, BoxError> {
        let sandbox = Sandbox::builder().demo_data(true).start().await?;
        // Hundreds of writes in seconds: the vendor's 100 calls / 20 s would stretch the
        // example to minutes, and proving that limit is the SDK tests' job.
        sandbox.fxiaoke_set_rate_limit(None);
        let fx = &sandbox.config().fxiaoke.apps[0];
        let fxiaoke = fxiaoke_sdk::Client::builder()
            .base_url(sandbox.fxiaoke_url())
            .app_id(&fx.app_id)
            .app_secret(fx.app_secret.clone())
            .permanent_code(fx.permanent_code.clone())
            .operator(SANDBOX_ADMIN)
            .build()?;
        let k3 = &sandbox.config().k3cloud;
        let k3cloud = k3cloud_sdk::Client::builder(sandbox.k3cloud_url())
            .account(&k3.acct_id)
            .user(&k3.user_name)
            .auth(k3cloud_sdk::Auth::signed(&k3.app_id, k3.app_secret.clone()))
            .build()?;
        Ok(Systems {
            fxiaoke,
            k3cloud,
            store: Arc::new(MemoryStore::new()),
            sandbox: Some(sandbox),
        })
    }

    /// Real servers, from [`VARIABLES`].
    pub fn real() -> Result<Self, BoxError> {
        let var = |name: &str| -> Result<String, BoxError> {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    let what = VARIABLES
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or("", |(_, what)| *what);
                    format!("set {name} ({what}): FXK3_K3CLOUD_URL selects real servers").into()
                })
        };
        let mut fx = fxiaoke_sdk::Client::builder()
            .app_id(var("FXK3_FXIAOKE_APP_ID")?)
            .app_secret(var("FXK3_FXIAOKE_APP_SECRET")?)
            .permanent_code(var("FXK3_FXIAOKE_PERMANENT_CODE")?)
            .operator(var("FXK3_FXIAOKE_OPERATOR")?)
            // Real servers count every call against 100 per 20 s per endpoint.
            .rate_limit(fxiaoke_sdk::RateLimit::vendor_default());
        if let Ok(url) = var("FXK3_FXIAOKE_BASE_URL") {
            fx = fx.base_url(url);
        }
        let k3cloud = k3cloud_sdk::Client::builder(var("FXK3_K3CLOUD_URL")?)
            .account(var("FXK3_K3CLOUD_ACCT_ID")?)
            .user(var("FXK3_K3CLOUD_USER")?)
            .auth(k3cloud_sdk::Auth::signed(
                var("FXK3_K3CLOUD_APP_ID")?,
                var("FXK3_K3CLOUD_APP_SECRET")?,
            ))
            .timeout(Duration::from_secs(120))
            .build()?;
        let state = var("FXK3_STATE").unwrap_or_else(|_| "examples-state.sqlite3".into());
        Ok(Systems {
            fxiaoke: fx.build()?,
            k3cloud,
            store: Arc::new(SqliteStore::open(state)?),
            sandbox: None,
        })
    }

    /// How long a change must be old before a run reads it: none on the simulators (they
    /// commit before they answer), the flow's default of 5 s on real servers, whose
    /// modification times can trail their commits.
    pub fn settle_ms(&self) -> i64 {
        if self.sandbox.is_some() {
            0
        } else {
            sync_core::FlowOptions::default().settle_ms
        }
    }

    /// An engine on this state.
    pub fn engine(&self) -> sync_core::Engine {
        sync_core::Engine::new(self.store.clone())
    }

    /// Stops the simulators, if any.
    pub async fn shutdown(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}
