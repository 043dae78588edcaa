//! Stateful simulators of the Kingdee `K3Cloud` (金蝶云星空) `WebAPI` and the Fxiaoke (纷享销客)
//! `OpenAPI`, with seeded fault injection and a control API.
//!
//! Tests, examples, benchmarks and users run against it instead of real servers. It is written
//! from the protocol reference alone and depends on neither SDK crate of this workspace, so it
//! checks them instead of mirroring them.
//!
//! * `K3Cloud` is served under `/k3cloud/` (`…/k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>.common.kdsvc`):
//!   the four login modes, forms with state and the document status machine, queries.
//! * Fxiaoke is served at its real paths (`/cgi/corpAccessToken/get/V2`, `/cgi/crm/v2/data/query`, …):
//!   tokens with the vendor's reuse rules, the directory, CRM objects with describe, query
//!   rules, master-detail writes, messages, rate limits and quotas.
//! * [`Fault`]s (latency, 5xx pages, hangs, apply-then-drop, session loss, broken JSON,
//!   rate-limit and quota answers) fire per endpoint, by probability or for the next N calls,
//!   reproducibly from the seed.
//! * The control API is under `/__sandbox/`; [`Sandbox`] offers the same in process, with an
//!   injectable [`Clock`] for every time-dependent rule.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fxk3_simulators::Error> {
//! use fxk3_simulators::{Api, Clock, Fault, FaultKind, Sandbox};
//! use std::time::Duration;
//!
//! let sandbox = Sandbox::builder()
//!     .clock(Clock::frozen_at_secs(1_700_000_000))
//!     .demo_data(true)
//!     .start()
//!     .await?;
//! println!("K3Cloud at {}", sandbox.k3cloud_url());
//! println!("Fxiaoke at {}", sandbox.fxiaoke_url());
//! assert_eq!(sandbox.fxiaoke_records("AccountObj").len(), 300);
//!
//! // The next Fxiaoke create is applied, then its connection drops without an answer.
//! let _ = sandbox.set_fault(
//!     Fault::new(Api::Fxiaoke, "/cgi/crm/v2/data/create", FaultKind::DropAfterWrite).next(1),
//! );
//! // Two hours later every token has expired (and the client must fetch a new one).
//! sandbox.clock().advance(Duration::from_secs(7_200));
//! // … run the client under test, then count what it cost:
//! println!("{} queries", sandbox.calls("fxiaoke:/cgi/crm/v2/data/query"));
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod clock;
mod config;
mod control;
mod faults;
mod fxiaoke;
mod generation;
mod handle;
mod k3cloud;
mod reply;
mod rng;
mod seed;
mod server;

pub use clock::Clock;
pub use config::{Config, FxiaokeApp, FxiaokeConfig, K3CloudConfig, K3Release};
pub use faults::{Api, Fault, FaultId, FaultKind, Trigger};
pub use handle::{Error, Sandbox, SandboxBuilder};
pub use seed::GenerateSpec;
