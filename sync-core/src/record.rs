//! Source records and their position in the read order.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;

/// One object read from a source: a CRM record, an ERP document.
///
/// ```
/// use sync_core::Record;
/// use serde_json::json;
///
/// let r = Record::new("65a1f0c2e4b0a1b2c3d4e5f6", 1_716_000_000_000, json!({"name": "ACME"}));
/// assert_eq!(r.position().version, 1_716_000_000_000);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The source's id (Fxiaoke `_id`, K3Cloud `FID` or bill number).
    pub key: String,
    /// Modification time, epoch milliseconds (Fxiaoke `last_modified_time`, K3Cloud
    /// `FModifyDate` converted by the connector).
    pub version: i64,
    /// The record itself, as JSON.
    pub body: Value,
}

impl Record {
    /// A record.
    pub fn new(key: impl Into<String>, version: i64, body: Value) -> Self {
        Self {
            key: key.into(),
            version,
            body,
        }
    }
    /// Where the record sits in the `(modified_time, id)` read order.
    pub fn position(&self) -> Position {
        Position {
            version: self.version,
            key: self.key.clone(),
        }
    }
    /// Compares the record's place in the read order with `pos` without allocating.
    pub fn cmp_position(&self, pos: &Position) -> Ordering {
        (self.version, self.key.as_str()).cmp(&(pos.version, pos.key.as_str()))
    }
}

/// A place in the `(modified_time, id)` order: the version and key of a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Modification time, epoch milliseconds.
    pub version: i64,
    /// The record key.
    pub key: String,
}
