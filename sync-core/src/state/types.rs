//! Plain data kept by a [`StateStore`](super::StateStore).

use crate::report::Counts;
use crate::sink::TargetRef;
use crate::source::Window;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::report::{RunKind, Stage};

/// A flow's committed read position: every record with a version below `version` has been
/// settled (written, unchanged, deferred or dead-lettered on record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Epoch milliseconds; the next window starts at `version - lookback`.
    pub version: i64,
    /// The last settled record's key when the cursor was committed mid-run (informational).
    pub key: Option<String>,
}

/// One entry of the ID map: a source record and the target it became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapEntry {
    /// The source record's key.
    pub source_key: String,
    /// The target document.
    pub target: TargetRef,
    /// Hash of the payload last written; `None` when unknown (after an ID-map rebuild), which
    /// makes the next run write the record again.
    pub payload_hash: Option<String>,
    /// When the entry was written, epoch ms.
    pub updated_at: i64,
}

/// Whether an intent creates or updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentOp {
    /// A create: if its outcome is unknown, the target is searched by natural key.
    Create,
    /// An update of a known target: repeating it is harmless.
    Update,
}

impl IntentOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IntentOp::Create => "create",
            IntentOp::Update => "update",
        }
    }
    pub(crate) fn parse(s: &str) -> Self {
        if s == "update" {
            IntentOp::Update
        } else {
            IntentOp::Create
        }
    }
}

/// A write that was started: recorded before the write is sent (rule 3), cleared when its
/// outcome is settled, and reconciled by natural key when it is found pending (rule 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The source record's key.
    pub source_key: String,
    /// The key the target can be found by.
    pub natural_key: String,
    /// Create or update.
    pub op: IntentOp,
    /// The target being updated, for updates.
    pub target: Option<TargetRef>,
    /// Hash of the payload being written.
    pub payload_hash: String,
    /// When the intent was recorded, epoch ms.
    pub created_at: i64,
}

/// A record that failed and waits for a fix and a re-run (rule 7). A record has at most one
/// per [`Stage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The source record's key.
    pub source_key: String,
    /// Where it failed.
    pub stage: Stage,
    /// The vendor's (or mapping's) message.
    pub reason: String,
    /// The mapped payload when mapping succeeded, else the source record body.
    pub payload: Option<Value>,
    /// How many times it failed.
    pub attempts: u32,
    /// Whether the failure looked transient.
    pub retryable: bool,
    /// First failure, epoch ms.
    pub first_at: i64,
    /// Latest failure, epoch ms.
    pub last_at: i64,
}

impl DeadLetter {
    /// The start of the reason of a follow-up (a message) that may have been sent: it is
    /// never sent again by a retry, only dropped by a person who checked.
    pub const UNKNOWN_OUTCOME: &'static str = "outcome unknown: ";

    /// True for a follow-up that may have happened (see [`Self::UNKNOWN_OUTCOME`]), rather
    /// than one that failed.
    pub fn is_unknown_outcome(&self) -> bool {
        !self.retryable && self.reason.starts_with(Self::UNKNOWN_OUTCOME)
    }
}

/// A record waiting for a reference that is not in the ID map yet (rule 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferral {
    /// The source record's key.
    pub source_key: String,
    /// The flow whose ID map lacks the reference.
    pub missing_flow: String,
    /// The missing source key in that flow.
    pub missing_key: String,
    /// How many runs have tried it.
    pub attempts: u32,
    /// First deferral, epoch ms.
    pub first_at: i64,
    /// Latest attempt, epoch ms.
    pub last_at: i64,
}

/// The action name under which write-backs wait in the follow-up queue
/// ([`PendingSend`]); not a sink action.
pub const WRITE_BACK: &str = "write_back";

/// A follow-up on record from the moment its write is committed until its outcome is known.
///
/// For an action that must not be repeated (a CRM message): when a run starts and finds one,
/// its process died; one never started is sent now; one that was being sent may or may not
/// have gone out, and it is reported as unknown — never sent again, never silently taken as
/// sent. For a write-back ([`WRITE_BACK`], repeatable): it waits here while runs drain the
/// queue alongside their writes, so that the sink side never waits on the source's rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSend {
    /// The source record's key.
    pub source_key: String,
    /// The action (`notify`), or [`WRITE_BACK`].
    pub action: String,
    /// The target it was sent for.
    pub target: TargetRef,
    /// When it was queued, epoch ms.
    pub queued_at: i64,
    /// When sending began, epoch ms; `None` while it waits its turn.
    pub started_at: Option<i64>,
}

/// What a store knows about one key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyState {
    /// Its ID-map entry.
    pub id_map: Option<IdMapEntry>,
    /// A pending intent.
    pub intent: Option<Intent>,
    /// Its dead letters, one per stage that failed (a failed write and a failed `Audit` of an
    /// earlier version wait side by side), ordered by stage text.
    pub dead_letters: Vec<DeadLetter>,
    /// Its deferral.
    pub deferral: Option<Deferral>,
}

impl KeyState {
    /// Its dead letter of `stage`, if any.
    pub fn dead_letter(&self, stage: &Stage) -> Option<&DeadLetter> {
        self.dead_letters.iter().find(|d| &d.stage == stage)
    }
}

/// Changes to one flow's state, applied in one transaction by
/// [`StateStore::apply`](super::StateStore::apply). Removals are applied before insertions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// ID-map entries to insert or replace.
    pub id_map: Vec<IdMapEntry>,
    /// Keys whose ID-map entries are dropped (their target was deleted); applied before
    /// [`id_map`](Self::id_map).
    pub id_map_remove: Vec<String>,
    /// Intents to record.
    pub intents_put: Vec<Intent>,
    /// Keys whose intents are settled.
    pub intents_clear: Vec<String>,
    /// Dead letters to insert or replace.
    pub dead_letters_put: Vec<DeadLetter>,
    /// Keys whose dead letters, of every stage, are resolved (or given up).
    pub dead_letters_clear: Vec<String>,
    /// Dead letters of one stage that are resolved: the other stages of the key stay.
    pub dead_letter_stages_clear: Vec<(String, Stage)>,
    /// Deferrals to insert or replace.
    pub deferrals_put: Vec<Deferral>,
    /// Keys whose deferrals are resolved.
    pub deferrals_clear: Vec<String>,
    /// Actions about to be sent that must not be repeated.
    pub sends_put: Vec<PendingSend>,
    /// Sends whose outcome is known, by source key and action.
    pub sends_clear: Vec<(String, String)>,
    /// Sends about to go out: each is marked as being sent (its `started_at`) only while it
    /// is still the send queued at its `queued_at` — the same record queued again meanwhile
    /// keeps its own, newer send waiting.
    pub sends_start: Vec<PendingSend>,
    /// Sends whose outcome is known: each is removed only while it is still the send queued
    /// at its `queued_at` (a newer send of the same record stays queued).
    pub sends_done: Vec<PendingSend>,
    /// The new cursor.
    pub cursor: Option<Cursor>,
}

impl Changes {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.id_map.is_empty()
            && self.id_map_remove.is_empty()
            && self.intents_put.is_empty()
            && self.intents_clear.is_empty()
            && self.dead_letters_put.is_empty()
            && self.dead_letters_clear.is_empty()
            && self.dead_letter_stages_clear.is_empty()
            && self.deferrals_put.is_empty()
            && self.deferrals_clear.is_empty()
            && self.sends_put.is_empty()
            && self.sends_clear.is_empty()
            && self.sends_start.is_empty()
            && self.sends_done.is_empty()
            && self.cursor.is_none()
    }
}

/// A flow's lease: proof that this owner may run the flow until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The flow.
    pub flow: String,
    /// The owner id.
    pub owner: String,
    /// Expiry, epoch ms.
    pub expires_at: i64,
}

/// One entry of the run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The flow.
    pub flow: String,
    /// The kind of run.
    pub kind: RunKind,
    /// Start, epoch ms.
    pub started_at: i64,
    /// End, epoch ms.
    pub finished_at: i64,
    /// The window read, for incremental runs.
    pub window: Option<Window>,
    /// Per-outcome counts.
    pub counts: Counts,
    /// The error that stopped the run, if any.
    pub error: Option<String>,
}
