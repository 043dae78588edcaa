//! The runtime shared by `fxiaoke-sdk` and `k3cloud-sdk`.
//!
//! Both vendors' clients send JSON over HTTP, retry what may be retried, refuse to resend a
//! write whose outcome is unknown, and read loosely typed answers. What does not depend on a
//! vendor lives here once; what does (codes, envelopes, auth) stays in each SDK, which
//! implements [`retry::Classify`] for its error type.
#![deny(missing_docs)]

pub mod http;
pub mod json;
pub mod retry;
pub mod send;
pub mod server_clock;
pub mod text;
