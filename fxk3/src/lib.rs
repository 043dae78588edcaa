//! `fxk3`: run the Fxiaoke CRM ⇄ Kingdee K3Cloud ERP syncs from a configuration file.
//!
//! The library behind the `fxk3` command: the [`Config`] file, an [`App`] that builds the two
//! clients, the state store and the three standard flows (customers, orders, deliveries) on
//! [`sync_core`], and the observers that draw progress and count API calls. Programs that want
//! other flows compose `sync-core` directly; see the repository's `examples/`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//!
//! let config = fxk3::Config::from_path(Path::new("fxk3.toml"))?;
//! let app = fxk3::App::build(config, &fxk3::environment()).await?;
//! for outcome in app.run(&[], false, None).await? {
//!     println!("{}: {:?}", outcome.flow, outcome.report.map(|r| r.counts));
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alerts;
mod app;
pub mod config;
mod demo;
mod error;
pub mod health;
pub mod metrics;
pub mod observers;
pub mod presets;
pub mod report;
pub mod serve;

pub use app::{App, FlowOutcome, SecretSource, advice, environment};
pub use config::{Config, FlowConfig, FlowKind};
pub use demo::{demo_config_text, sandbox_config, sandbox_config_text, sandbox_secrets};
pub use error::{AppError, ConfigError};

/// The example mapping files `fxk3 init` writes (name, contents).
pub const EXAMPLE_MAPPINGS: [(&str, &str); 3] = [
    (
        "customer.toml",
        include_str!("../example/mappings/customer.toml"),
    ),
    ("order.toml", include_str!("../example/mappings/order.toml")),
    (
        "delivery.toml",
        include_str!("../example/mappings/delivery.toml"),
    ),
];
