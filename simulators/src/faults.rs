//! Seeded, reproducible fault injection for both simulators.
//!
//! A [`Fault`] targets an API and an endpoint (a `K3Cloud` method such as `Save`, or a Fxiaoke
//! path such as `/cgi/crm/v2/data/create`), fires by probability or for the next N calls, and
//! does one [`FaultKind`] of harm. Draws come from one seeded RNG, so the same seed and the same
//! sequence of calls give the same faults.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// Which simulator a fault or a call counter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The `K3Cloud` `WebAPI` simulator (endpoints are method names: `Save`, `ExecuteBillQuery`).
    K3cloud,
    /// The Fxiaoke `OpenAPI` simulator (endpoints are paths: `/cgi/crm/v2/data/query`).
    Fxiaoke,
}

impl Api {
    /// `k3cloud` or `fxiaoke`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Api::K3cloud => "k3cloud",
            Api::Fxiaoke => "fxiaoke",
        }
    }
}

/// What a fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// Answer normally after `ms` milliseconds, plus `per_row_ms` for each row the call
    /// writes (K3Cloud Save / BatchSave models, Fxiaoke records with their detail rows): a
    /// real server's work grows with what a batch carries, so a batch is not free.
    Latency {
        /// Added latency in milliseconds, once per call (the round trip).
        ms: u64,
        /// Added milliseconds per row written, after the work.
        #[serde(default, skip_serializing_if = "is_zero")]
        per_row_ms: u64,
    },
    /// Answer with this HTTP status and an HTML error page, without doing the work.
    ServerError {
        /// HTTP status, 500 by default.
        #[serde(default = "default_status")]
        status: u16,
    },
    /// Never answer: the request hangs until the client gives up (or the sandbox stops).
    Hang,
    /// Do the work (a write is applied), then close the connection without any answer: the
    /// case that creates duplicates in clients that resend.
    DropAfterWrite,
    /// `K3Cloud`: every session is dropped, then the call meets the server's rules: with a
    /// session cookie alone it answers `MsgCode` 1 and does nothing; with signed headers a new
    /// session is issued and the call succeeds (k3cloud.md §3.1.2). Fxiaoke: every token is
    /// invalidated and the call answers 20016; the work is not done.
    SessionLoss,
    /// Do the work, then answer a body that is not JSON (a syntax error early in the text).
    MalformedJson,
    /// Do the work, then answer only the first half of the body.
    TruncatedJson,
    /// Answer the vendor's rate-limit error (Fxiaoke 30004 or the configured code; `K3Cloud`
    /// `MsgCode` 14 调用限制) without doing the work.
    RateLimited,
    /// Answer the vendor's quota error (Fxiaoke 30002; `K3Cloud` `MsgCode` 14) without doing the work.
    QuotaExceeded,
    /// A write still running: no answer, and the work is done `ms` after the call arrived
    /// (after the client gave up, when `ms` is above its timeout); then the connection closes.
    /// What a client that resends on a timeout duplicates.
    AppliedLate {
        /// When the work is done, in milliseconds after the call arrived.
        ms: u64,
    },
    /// Do the work, then answer this HTTP status with a gateway's error page: the proxy in
    /// front gave up waiting (502, 504) while the server went on.
    ServerErrorAfterWrite {
        /// HTTP status, 504 by default.
        #[serde(default = "gateway_timeout")]
        status: u16,
    },
    /// Do the work, then answer without this key anywhere in the JSON body (a `K3Cloud`
    /// version whose BatchSave answer carries no `DIndex`).
    WithoutKey {
        /// The key taken out, at every depth.
        key: String,
    },
    /// Do the work, then answer at most `rows` rows of a query (a server-side row cap below
    /// the limit the client asked for): the first `rows` elements of a JSON array answer.
    RowCap {
        /// Rows kept.
        rows: usize,
    },
}

/// An unset per-row cost stays out of the fault list, so old clients read what they sent.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn gateway_timeout() -> u16 {
    504
}

impl FaultKind {
    /// The kind's name as the control API spells it (`drop_after_write`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::ServerError { .. } => "server_error",
            FaultKind::Hang => "hang",
            FaultKind::DropAfterWrite => "drop_after_write",
            FaultKind::SessionLoss => "session_loss",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::TruncatedJson => "truncated_json",
            FaultKind::RateLimited => "rate_limited",
            FaultKind::QuotaExceeded => "quota_exceeded",
            FaultKind::AppliedLate { .. } => "applied_late",
            FaultKind::ServerErrorAfterWrite { .. } => "server_error_after_write",
            FaultKind::WithoutKey { .. } => "without_key",
            FaultKind::RowCap { .. } => "row_cap",
        }
    }
}

fn default_status() -> u16 {
    500
}

/// When a fault fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// On every matching call.
    Always,
    /// On each matching call with this probability (0.0–1.0), drawn from the seeded RNG.
    Probability(f64),
    /// On the next N matching calls, then the fault is removed.
    Next(u32),
}

/// One fault rule.
///
/// ```
/// use fxk3_simulators::{Api, Fault, FaultKind, Trigger};
///
/// // The next Save applies its write, then the connection drops.
/// let fault = Fault::new(Api::K3cloud, "Save", FaultKind::DropAfterWrite).next(1);
/// assert_eq!(fault.trigger, Trigger::Next(1));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The simulator; `None` matches both.
    #[serde(default)]
    pub api: Option<Api>,
    /// The endpoint (`K3Cloud` method name or Fxiaoke path, case-insensitive); `None` or `"*"`
    /// matches every endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// What it does.
    pub kind: FaultKind,
    /// When it fires.
    #[serde(default = "default_trigger")]
    pub trigger: Trigger,
}

fn default_trigger() -> Trigger {
    Trigger::Always
}

impl Fault {
    /// A fault on one endpoint of one API that fires on every call (narrow it with
    /// [`Fault::next`] or [`Fault::probability`]).
    pub fn new(api: Api, endpoint: impl Into<String>, kind: FaultKind) -> Self {
        Self {
            api: Some(api),
            endpoint: Some(endpoint.into()),
            kind,
            trigger: Trigger::Always,
        }
    }

    /// A fault on every endpoint of one API.
    #[must_use]
    pub fn any_endpoint(api: Api, kind: FaultKind) -> Self {
        Self {
            api: Some(api),
            endpoint: None,
            kind,
            trigger: Trigger::Always,
        }
    }

    /// Fire on the next `n` matching calls only.
    #[must_use]
    pub fn next(mut self, n: u32) -> Self {
        self.trigger = Trigger::Next(n);
        self
    }

    /// Fire with probability `p` on each matching call.
    #[must_use]
    pub fn probability(mut self, p: f64) -> Self {
        self.trigger = Trigger::Probability(p);
        self
    }

    fn matches(&self, api: Api, endpoint: &str) -> bool {
        self.api.is_none_or(|a| a == api)
            && self
                .endpoint
                .as_deref()
                .is_none_or(|e| e == "*" || e.eq_ignore_ascii_case(endpoint))
    }
}

/// Identifies a fault that was set, for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultId(pub u64);

#[derive(Debug)]
struct Entry {
    id: FaultId,
    fault: Fault,
}

#[derive(Debug)]
struct State {
    entries: Vec<Entry>,
    rng: SplitMix64,
    next_id: u64,
    /// Faults that took effect, per `api kind` (`k3cloud drop_after_write`).
    fired: std::collections::BTreeMap<String, u64>,
}

/// The fault rules in force, in the order they were set (latency rules add up; of the others,
/// the first that fires wins).
#[derive(Debug)]
pub(crate) struct FaultRegistry {
    state: Mutex<State>,
}

impl FaultRegistry {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: Mutex::new(State {
                entries: Vec::new(),
                rng: SplitMix64::new(seed ^ 0xFA17_FA17),
                next_id: 1,
                fired: std::collections::BTreeMap::new(),
            }),
        }
    }

    pub(crate) fn add(&self, fault: Fault) -> FaultId {
        let mut state = self.state.lock();
        let id = FaultId(state.next_id);
        state.next_id += 1;
        state.entries.push(Entry { id, fault });
        id
    }

    pub(crate) fn remove(&self, id: FaultId) -> bool {
        let mut state = self.state.lock();
        let before = state.entries.len();
        state.entries.retain(|e| e.id != id);
        state.entries.len() != before
    }

    /// Removes every fault and restarts the RNG from `seed`.
    pub(crate) fn clear(&self, seed: u64) {
        let mut state = self.state.lock();
        state.entries.clear();
        state.rng = SplitMix64::new(seed ^ 0xFA17_FA17);
    }

    /// How many times each kind of fault took effect, per `api kind`
    /// (`k3cloud drop_after_write`), since the simulators started or were reset.
    pub(crate) fn fired(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.lock().fired.clone()
    }

    pub(crate) fn list(&self) -> Vec<(FaultId, Fault)> {
        self.state
            .lock()
            .entries
            .iter()
            .map(|e| (e.id, e.fault.clone()))
            .collect()
    }

    /// What fires for this call (consumes `Next` budgets and RNG draws).
    ///
    /// Latency composes with everything else: every latency rule that fires adds its delay, and
    /// the first other rule that fires is the call's fault. Were latency just one more rule where
    /// the first wins, a latency set on every call would hide every other fault.
    pub(crate) fn pick(&self, api: Api, endpoint: &str) -> Picked {
        let mut state = self.state.lock();
        let mut picked = Picked::default();
        if state.entries.is_empty() {
            return picked;
        }
        let State {
            entries,
            rng,
            fired,
            ..
        } = &mut *state;
        for entry in entries.iter_mut() {
            let is_latency = matches!(entry.fault.kind, FaultKind::Latency { .. });
            // Once a fault is chosen, later non-latency rules are not consulted at all, so
            // their `Next` budgets and RNG draws are left as they were.
            if !entry.fault.matches(api, endpoint) || (!is_latency && picked.kind.is_some()) {
                continue;
            }
            let fire = match &mut entry.fault.trigger {
                Trigger::Always => true,
                Trigger::Probability(p) => rng.next_f64() < *p,
                Trigger::Next(n) => {
                    if *n > 0 {
                        *n -= 1;
                        true
                    } else {
                        false
                    }
                }
            };
            if !fire {
                continue;
            }
            *fired
                .entry(format!("{} {}", api.as_str(), entry.fault.kind.name()))
                .or_insert(0) += 1;
            match entry.fault.kind {
                FaultKind::Latency { ms, per_row_ms } => {
                    picked.delay_ms = picked.delay_ms.saturating_add(ms);
                    picked.per_row_ms = picked.per_row_ms.saturating_add(per_row_ms);
                }
                ref kind => picked.kind = Some(kind.clone()),
            }
        }
        entries.retain(|e| e.fault.trigger != Trigger::Next(0));
        picked
    }
}

/// What fires for one call: the summed delay of the latency rules that fired, then at most one
/// other fault.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Picked {
    /// Milliseconds to wait before anything else happens (0: none).
    pub(crate) delay_ms: u64,
    /// Milliseconds to wait per row the work wrote, after it.
    pub(crate) per_row_ms: u64,
    /// The fault that then applies; never [`FaultKind::Latency`].
    pub(crate) kind: Option<FaultKind>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_took_effect_is_counted_per_api_and_kind() {
        let reg = FaultRegistry::new(1);
        reg.add(Fault::any_endpoint(
            Api::K3cloud,
            FaultKind::Latency {
                ms: 1,
                per_row_ms: 0,
            },
        ));
        reg.add(Fault::new(Api::K3cloud, "Save", FaultKind::Hang).next(2));
        for _ in 0..3 {
            let _ = reg.pick(Api::K3cloud, "Save");
        }
        let _ = reg.pick(Api::Fxiaoke, "Save");
        let fired: Vec<(String, u64)> = reg.fired().into_iter().collect();
        assert_eq!(
            fired,
            [
                ("k3cloud hang".to_owned(), 2),
                ("k3cloud latency".to_owned(), 3)
            ]
        );
    }

    #[test]
    fn next_n_fires_n_times_then_goes() {
        let reg = FaultRegistry::new(1);
        reg.add(Fault::new(Api::K3cloud, "Save", FaultKind::Hang).next(2));
        assert_eq!(reg.pick(Api::K3cloud, "View").kind, None);
        assert_eq!(reg.pick(Api::Fxiaoke, "Save").kind, None);
        assert_eq!(reg.pick(Api::K3cloud, "save").kind, Some(FaultKind::Hang));
        assert_eq!(reg.pick(Api::K3cloud, "Save").kind, Some(FaultKind::Hang));
        assert_eq!(reg.pick(Api::K3cloud, "Save").kind, None);
        assert!(reg.list().is_empty());
    }

    #[test]
    fn probability_is_reproducible_per_seed() {
        let draws = |seed| {
            let reg = FaultRegistry::new(seed);
            reg.add(Fault::any_endpoint(Api::Fxiaoke, FaultKind::RateLimited).probability(0.5));
            (0..64)
                .map(|_| reg.pick(Api::Fxiaoke, "/x").kind.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(9), draws(9));
        assert_ne!(draws(9), draws(10));
        let hits = draws(9).iter().filter(|h| **h).count();
        assert!((16..=48).contains(&hits), "{hits}");
    }

    #[test]
    fn latency_composes_and_the_first_other_fault_wins() {
        let reg = FaultRegistry::new(1);
        let a = reg.add(Fault::any_endpoint(
            Api::K3cloud,
            FaultKind::Latency {
                ms: 5,
                per_row_ms: 0,
            },
        ));
        reg.add(Fault::any_endpoint(Api::K3cloud, FaultKind::Hang).next(1));
        reg.add(Fault::any_endpoint(Api::K3cloud, FaultKind::SessionLoss).next(1));
        reg.add(Fault::any_endpoint(
            Api::K3cloud,
            FaultKind::Latency {
                ms: 7,
                per_row_ms: 0,
            },
        ));
        // Both delays add up; the first other fault wins and the second keeps its budget.
        assert_eq!(
            reg.pick(Api::K3cloud, "Save"),
            Picked {
                delay_ms: 12,
                per_row_ms: 0,
                kind: Some(FaultKind::Hang)
            }
        );
        assert_eq!(
            reg.pick(Api::K3cloud, "Save"),
            Picked {
                delay_ms: 12,
                per_row_ms: 0,
                kind: Some(FaultKind::SessionLoss)
            }
        );
        assert!(reg.remove(a));
        assert_eq!(
            reg.pick(Api::K3cloud, "Save"),
            Picked {
                delay_ms: 7,
                per_row_ms: 0,
                kind: None
            }
        );
        assert_eq!(reg.list().len(), 1);
    }

    #[test]
    fn faults_have_a_json_form() {
        let f: Fault = serde_json::from_str(
            r#"{"api":"k3cloud","endpoint":"Save","kind":{"type":"server_error"},"trigger":{"next":3}}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::new(Api::K3cloud, "Save", FaultKind::ServerError { status: 500 }).next(3)
        );
    }
}
