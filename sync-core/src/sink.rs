//! Writing to the system records go to.

use crate::error::ConnectorError;
use crate::metadata::ObjectDescription;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// A document in the target system: its internal id and, where it has one, its number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TargetRef {
    /// Internal id (K3Cloud `Id`/`FID`, Fxiaoke `_id`).
    pub id: String,
    /// Business number (K3Cloud `Number`/`FNumber`), when the target has one.
    pub number: Option<String>,
}

impl TargetRef {
    /// A target with an id and a number.
    pub fn new(id: impl Into<String>, number: Option<String>) -> Self {
        Self {
            id: id.into(),
            number,
        }
    }
}

/// One record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteItem {
    /// The source record's key.
    pub source_key: String,
    /// The key the target can be found by (see [`Sink::find`]).
    pub natural_key: String,
    /// The mapped payload (for K3Cloud, the `Model` packet).
    pub payload: Value,
    /// The existing target when this is an update (from the ID map); `None` means create.
    pub target: Option<TargetRef>,
}

/// What happened to one written record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new target was created.
    Created(TargetRef),
    /// The existing target was updated.
    Updated(TargetRef),
    /// The target already held this content; nothing was changed.
    Unchanged(TargetRef),
    /// Nothing was written and nothing needs to be: the record has no place in the target
    /// (an invalidated CRM account that never reached the ERP). No ID-map entry is kept; a
    /// later change of the record is written as any other.
    Skipped {
        /// Why.
        reason: String,
    },
    /// The target was deleted (its source record was cancelled before the target went past
    /// draft). The ID-map entry is dropped: if the source record comes back, it is created
    /// again.
    Removed(TargetRef),
    /// The target system refused the record.
    Failed {
        /// The vendor's message (K3Cloud `Errors[].Message`, Fxiaoke `errorMessage`).
        reason: String,
        /// Whether the same write may succeed later without a fix (network-control conflict).
        retryable: bool,
    },
    /// The write was sent and no answer came: it may or may not have happened.
    Unknown {
        /// Why the outcome is unknown.
        reason: String,
    },
}

/// The outcome of a post-save action (Submit, Audit, a message) for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    /// The action succeeded.
    Done,
    /// The action failed for this target: the server refused it, nothing happened.
    Failed {
        /// The vendor's message.
        reason: String,
    },
    /// The action was sent and no answer came back: it may have happened. The engine treats
    /// it as a failure for a [repeatable](Sink::action_repeatable) action and as possibly done
    /// (never sent again) for the others.
    Unknown {
        /// Why the outcome is unknown.
        reason: String,
    },
}

/// A system records are written to (K3Cloud `BatchSave`, Fxiaoke `data/create`/`update`).
///
/// `write` returns one [`WriteOutcome`] per item, in order; a connector maps K3Cloud's
/// `SuccessEntitys`/`Errors` back to items by `DIndex`. A call that failed as a whole returns
/// `Err`: [`ConnectorErrorKind::OutcomeUnknown`](crate::ConnectorErrorKind::OutcomeUnknown)
/// when the request may have been applied (the engine then reconciles every item), any other
/// kind when nothing was sent (the run stops and nothing is lost).
///
/// ```
/// use async_trait::async_trait;
/// use sync_core::{ConnectorError, Sink, TargetRef, WriteItem, WriteOutcome};
///
/// struct Null;
///
/// #[async_trait]
/// impl Sink for Null {
///     async fn find(&self, _natural_key: &str) -> Result<Option<TargetRef>, ConnectorError> {
///         Ok(None)
///     }
///     async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
///         Ok(items
///             .iter()
///             .map(|i| WriteOutcome::Created(TargetRef::new(i.natural_key.clone(), None)))
///             .collect())
///     }
/// }
/// ```
#[async_trait]
pub trait Sink: Send + Sync {
    /// Finds the target that holds `natural_key` (a number, or a field holding the source id).
    /// Used to reconcile writes whose outcome is unknown before anything is sent again.
    async fn find(&self, natural_key: &str) -> Result<Option<TargetRef>, ConnectorError>;

    /// Writes a batch; one outcome per item, in order.
    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError>;

    /// The targets that exist for these natural keys, to rebuild a lost ID map (keys without
    /// a target are left out). The default asks [`find`](Self::find) for each key; connectors
    /// answer with one query per page of keys.
    async fn existing_targets(
        &self,
        natural_keys: &[String],
    ) -> Result<HashMap<String, TargetRef>, ConnectorError> {
        let mut found = HashMap::with_capacity(natural_keys.len());
        for key in natural_keys {
            if let Some(target) = self.find(key).await? {
                found.insert(key.clone(), target);
            }
        }
        Ok(found)
    }

    /// Runs a post-save action (`"Submit"`, `"Audit"`) on targets; one outcome per target, in
    /// order. The default reports that the sink has no actions.
    async fn action(
        &self,
        action: &str,
        targets: &[TargetRef],
    ) -> Result<Vec<ActionOutcome>, ConnectorError> {
        let _ = targets;
        Err(ConnectorError::unsupported(format!(
            "this sink has no action `{action}`"
        )))
    }

    /// The source records of `targets` are gone: deleted in the source, which lists no deleted
    /// records, so only a sweep of the ID map finds them ([`Engine::sweep`](crate::Engine::sweep)).
    /// One outcome per target: `Removed` (the target was deleted: its ID-map entry is dropped),
    /// `Updated` (closed, forbidden), `Failed` (tried again by the next sweep) — or, the
    /// default, `Unchanged`: the target is left as it is.
    async fn source_gone(
        &self,
        targets: &[TargetRef],
    ) -> Result<Vec<WriteOutcome>, ConnectorError> {
        Ok(targets
            .iter()
            .cloned()
            .map(WriteOutcome::Unchanged)
            .collect())
    }

    /// Whether `action` may be sent again when its outcome is unknown or after a crash: true for
    /// Submit and Audit (a second one reports "already done"), false for a message, which
    /// cannot be looked up and must not reach a person twice. The engine commits the write
    /// before it sends an action that is not repeatable, so that a crash loses the action
    /// rather than repeating it (at most once). The default is true.
    fn action_repeatable(&self, action: &str) -> bool {
        let _ = action;
        true
    }

    /// The target field [`find`](Self::find) looks documents up by, when the sink has one: a
    /// flow refuses to be built when its mapping's natural key is another field, since
    /// reconciliation would then look in the wrong place and create duplicates.
    fn natural_key_field(&self) -> Option<&str> {
        None
    }

    /// Whether the number a create answers with is the natural key (K3Cloud documents found
    /// by `FNumber`/`FBillNo`). The engine then checks it: a form whose coding rule replaces
    /// the number sent makes documents impossible to find again by it, and the flow stops.
    fn natural_key_is_number(&self) -> bool {
        false
    }

    /// Whether a write whose outcome is unknown may be looked up and sent again: true for
    /// documents, false for a message, which cannot be looked up. For such a sink the engine
    /// does not call [`find`](Self::find) when it reconciles: it reports the record as unknown
    /// ("may have been sent"), records it as written so that it is never sent again, and
    /// moves on. The default is true.
    fn write_repeatable(&self) -> bool {
        true
    }

    /// Describes the target object's fields (K3Cloud `QueryBusinessInfo`), for
    /// [`Engine::check`](crate::Engine::check). The default has no description.
    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        Ok(None)
    }
}
