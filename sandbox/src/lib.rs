//! Stateful simulators of the Kingdee `K3Cloud` (金蝶云星空) `WebAPI` and the Fxiaoke (纷享销客)
//! `OpenAPI`, with seeded fault injection and a control API.
//!
//! Tests, examples, benchmarks and users run against it instead of real servers. It is written
//! from the protocol reference alone and depends on neither SDK crate of this workspace, so it
//! checks them instead of mirroring them.
//!
//! * `K3Cloud` is served under `/k3cloud/` (`…/k3cloud/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>.common.kdsvc`).
//! * Fxiaoke is served at its real paths (`/cgi/corpAccessToken/get/V2`, `/cgi/crm/v2/data/query`, …).
//! * The control API is under `/__sandbox/`; [`Sandbox`] offers the same in process.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sandbox::Error> {
//! use sandbox::{Api, Fault, FaultKind, Sandbox};
//!
//! let sandbox = Sandbox::builder().demo_data(true).start().await?;
//! println!("K3Cloud at {}", sandbox.k3cloud_url());
//! println!("Fxiaoke at {}", sandbox.fxiaoke_url());
//!
//! // The next Save is applied, then its connection drops without an answer.
//! sandbox.set_fault(Fault::new(Api::K3cloud, "Save", FaultKind::DropAfterWrite).next(1));
//! // … run the client under test …
//! assert_eq!(sandbox.calls("k3cloud:Save"), 0);
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
pub use config::{Config, FxiaokeApp, FxiaokeConfig, K3CloudConfig};
pub use faults::{Api, Fault, FaultId, FaultKind, Trigger};
pub use handle::{Error, Sandbox, SandboxBuilder};
pub use seed::GenerateSpec;
