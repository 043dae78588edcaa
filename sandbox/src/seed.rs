//! Demo data and the record generator.
use serde::{Deserialize, Serialize};

use crate::server::Shared;

/// How many records [`crate::Sandbox::generate`] adds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateSpec {
    /// CRM customers (`AccountObj`).
    #[serde(default)]
    pub crm_accounts: usize,
}

pub(crate) fn demo(_shared: &Shared) {}
pub(crate) fn generate(_shared: &Shared, _spec: &GenerateSpec) {}
