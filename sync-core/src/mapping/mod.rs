//! Turning a source record into a target payload.
//!
//! Two ways: implement [`Mapping`] in Rust (compile-checked), or load a [`DeclarativeMapping`]
//! from a JSON or TOML file (the "mapping array kept in the database", done properly).

mod declarative;
mod loader;
mod spec;
mod transform;
mod validate;

pub use crate::path::{FieldPath, PathError, Segment};
pub use declarative::DeclarativeMapping;
pub use loader::{Format, LoadError};
pub use validate::{Severity, ValidationIssue};

use crate::metadata::ObjectDescription;
use crate::record::Record;
use crate::state::IdMapEntry;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// A reference to another flow's ID map: "the entry of `key` in flow `flow`", where `key` is a
/// source key (the usual direction: CRM account id → ERP customer) or a target number (the
/// reverse: ERP order number → CRM order id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupKey {
    /// The flow whose ID map is consulted (e.g. `customers`).
    pub flow: String,
    /// The key looked up (e.g. the CRM account id).
    pub key: String,
    /// Which side of the ID map `key` is on.
    pub by: LookupBy,
}

impl LookupKey {
    /// The entry of source key `key` in `flow`.
    pub fn source(flow: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            flow: flow.into(),
            key: key.into(),
            by: LookupBy::SourceKey,
        }
    }

    /// The entry whose target has number `number` in `flow`.
    pub fn target_number(flow: impl Into<String>, number: impl Into<String>) -> Self {
        Self {
            flow: flow.into(),
            key: number.into(),
            by: LookupBy::TargetNumber,
        }
    }
}

/// Which side of an ID map a [`LookupKey`] names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupBy {
    /// The source record's key.
    #[default]
    SourceKey,
    /// The target's business number (K3Cloud `FBillNo`/`FNumber`).
    TargetNumber,
}

/// Resolved ID-map lookups handed to [`Mapping::map`].
#[derive(Debug, Default, Clone)]
pub struct Lookups {
    entries: HashMap<(String, LookupBy), HashMap<String, IdMapEntry>>,
}

impl Lookups {
    /// No lookups.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a resolved entry, found by its source key.
    pub fn insert(&mut self, flow: impl Into<String>, entry: IdMapEntry) {
        self.entries
            .entry((flow.into(), LookupBy::SourceKey))
            .or_default()
            .insert(entry.source_key.clone(), entry);
    }
    /// Adds a resolved entry, found by its target's number.
    pub fn insert_by_number(&mut self, flow: impl Into<String>, entry: IdMapEntry) {
        if let Some(number) = entry.target.number.clone() {
            self.entries
                .entry((flow.into(), LookupBy::TargetNumber))
                .or_default()
                .insert(number, entry);
        }
    }
    /// The entry for source key `key` in `flow`'s ID map, if it was resolved.
    pub fn get(&self, flow: &str, key: &str) -> Option<&IdMapEntry> {
        self.get_by(flow, LookupBy::SourceKey, key)
    }
    /// The entry for `key` on side `by` of `flow`'s ID map, if it was resolved.
    pub fn get_by(&self, flow: &str, by: LookupBy, key: &str) -> Option<&IdMapEntry> {
        self.entries
            .get(&(flow.to_owned(), by))
            .and_then(|m| m.get(key))
    }
}

/// A mapped record: what the sink will receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// The target payload (for K3Cloud, the `Model` packet).
    pub payload: Value,
    /// The key the target can be found by for reconciliation (rule 4).
    pub natural_key: String,
}

/// Why a record could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// A referenced record is not in the other flow's ID map yet: the record is deferred and
    /// tried again on later runs (rule 6), not failed.
    MissingReference {
        /// The flow whose ID map lacks the key.
        flow: String,
        /// The missing source key.
        key: String,
    },
    /// The record's data cannot be mapped (unknown option value, missing required field, bad
    /// date); it goes to the dead-letter list with this reason.
    Invalid {
        /// Where in the mapping (e.g. `fields[2] (FCustTypeId)`).
        location: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::MissingReference { flow, key } => {
                write!(
                    f,
                    "reference `{key}` is not in the ID map of flow `{flow}` yet"
                )
            }
            MapError::Invalid { location, reason } => write!(f, "{location}: {reason}"),
        }
    }
}

impl std::error::Error for MapError {}

/// Turns a source record into a target payload.
///
/// The engine first asks for the ID-map [`lookups`](Mapping::lookups) a record needs, resolves
/// them for a whole batch at once, then calls [`map`](Mapping::map). Mapping is pure: the same
/// record and lookups give the same payload, which is what makes "unchanged" detectable.
///
/// ```
/// use serde_json::json;
/// use sync_core::{Lookups, MapError, Mapped, Mapping, Record};
///
/// struct CustomerToErp;
///
/// impl Mapping for CustomerToErp {
///     fn map(&self, r: &Record, _: &Lookups) -> Result<Mapped, MapError> {
///         let name = r.body["name"].as_str().ok_or_else(|| MapError::Invalid {
///             location: "name".into(),
///             reason: "missing".into(),
///         })?;
///         Ok(Mapped {
///             payload: json!({"FName": name, "F_CrmId": r.key}),
///             natural_key: r.key.clone(),
///         })
///     }
/// }
///
/// let r = Record::new("a1", 1, json!({"name": "ACME"}));
/// let m = CustomerToErp.map(&r, &Lookups::new()).unwrap();
/// assert_eq!(m.payload["FName"], "ACME");
/// ```
pub trait Mapping: Send + Sync {
    /// The ID-map entries of other flows this record refers to.
    fn lookups(&self, record: &Record) -> Vec<LookupKey> {
        let _ = record;
        Vec::new()
    }

    /// Maps one record.
    fn map(&self, record: &Record, lookups: &Lookups) -> Result<Mapped, MapError>;

    /// The flows whose ID maps this mapping reads (they must be the flow's dependencies).
    fn referenced_flows(&self) -> Vec<String> {
        Vec::new()
    }

    /// The target field whose value is the natural key (`FNumber`), when the mapping says:
    /// a flow refuses to be built when the sink finds documents by another field.
    fn natural_key_field(&self) -> Option<String> {
        None
    }

    /// Checks the mapping against descriptions of the source and target objects, when the
    /// connectors can describe them. The default finds nothing to report.
    fn validate(
        &self,
        source: Option<&ObjectDescription>,
        target: Option<&ObjectDescription>,
    ) -> Vec<ValidationIssue> {
        let _ = (source, target);
        Vec::new()
    }
}
