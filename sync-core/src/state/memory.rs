//! An in-memory [`StateStore`] for tests and throw-away runs.

use super::{
    Changes, Cursor, DeadLetter, Deferral, IdMapEntry, Intent, KeyState, Lease, PendingSend,
    RunRecord, StateStore, WRITE_BACK,
};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default, Clone)]
struct FlowState {
    cursor: Option<Cursor>,
    id_map: HashMap<String, IdMapEntry>,
    intents: BTreeMap<String, Intent>,
    /// Keyed by source key, then stage text.
    dead: BTreeMap<String, BTreeMap<String, DeadLetter>>,
    deferred: BTreeMap<String, Deferral>,
    sends: BTreeMap<(String, String), PendingSend>,
    runs: Vec<RunRecord>,
    lease: Option<(String, i64)>,
}

/// A [`StateStore`] kept in memory: fast, shared by clones of an `Arc`, gone when dropped.
///
/// Its ID map grows with the number of synced records; use [`SqliteStore`](super::SqliteStore)
/// for anything that must survive a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    flows: Mutex<HashMap<String, FlowState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, FlowState>> {
        // Nothing done under the lock can panic halfway through a change (plain inserts and
        // removals), so the data behind a poisoned lock is consistent and safe to use.
        self.flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn page<V: Clone>(map: &BTreeMap<String, V>, after: Option<&str>, limit: usize) -> Vec<V> {
    let lower = match after {
        Some(a) => Bound::Excluded(a.to_owned()),
        None => Bound::Unbounded,
    };
    map.range((lower, Bound::Unbounded))
        .take(limit)
        .map(|(_, v)| v.clone())
        .collect()
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn acquire_lease(
        &self,
        flow: &str,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Lease> {
        let mut flows = self.lock();
        let st = flows.entry(flow.to_owned()).or_default();
        if let Some((holder, expires)) = &st.lease
            && holder != owner
            && *expires > now_ms
        {
            return Err(Error::FlowLocked {
                flow: flow.to_owned(),
                owner: holder.clone(),
                expires_at_ms: *expires,
            });
        }
        let expires_at = now_ms.saturating_add(ttl_ms);
        st.lease = Some((owner.to_owned(), expires_at));
        Ok(Lease {
            flow: flow.to_owned(),
            owner: owner.to_owned(),
            expires_at,
        })
    }

    async fn release_lease(&self, lease: &Lease) -> Result<()> {
        let mut flows = self.lock();
        if let Some(st) = flows.get_mut(&lease.flow)
            && st.lease.as_ref().is_some_and(|(o, _)| *o == lease.owner)
        {
            st.lease = None;
        }
        Ok(())
    }

    async fn cursor(&self, flow: &str) -> Result<Option<Cursor>> {
        Ok(self.lock().get(flow).and_then(|s| s.cursor.clone()))
    }

    async fn lookup(&self, flow: &str, keys: &[String]) -> Result<Vec<KeyState>> {
        let flows = self.lock();
        let Some(st) = flows.get(flow) else {
            return Ok(vec![KeyState::default(); keys.len()]);
        };
        Ok(keys
            .iter()
            .map(|k| KeyState {
                id_map: st.id_map.get(k).cloned(),
                intent: st.intents.get(k).cloned(),
                dead_letters: st
                    .dead
                    .get(k)
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default(),
                deferral: st.deferred.get(k).cloned(),
            })
            .collect())
    }

    async fn id_map_get_many(
        &self,
        flow: &str,
        keys: &[String],
    ) -> Result<HashMap<String, IdMapEntry>> {
        let flows = self.lock();
        let Some(st) = flows.get(flow) else {
            return Ok(HashMap::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| st.id_map.get(k).map(|e| (k.clone(), e.clone())))
            .collect())
    }

    async fn id_map_page(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IdMapEntry>> {
        let flows = self.lock();
        let Some(st) = flows.get(flow) else {
            return Ok(Vec::new());
        };
        let mut entries: Vec<&IdMapEntry> = st
            .id_map
            .values()
            .filter(|e| after.is_none_or(|a| e.source_key.as_str() > a))
            .collect();
        entries.sort_by(|a, b| a.source_key.cmp(&b.source_key));
        Ok(entries.into_iter().take(limit).cloned().collect())
    }

    async fn id_map_by_target(&self, flow: &str, target_id: &str) -> Result<Option<IdMapEntry>> {
        let flows = self.lock();
        Ok(flows.get(flow).and_then(|st| {
            st.id_map
                .values()
                .find(|e| e.target.id == target_id)
                .cloned()
        }))
    }

    async fn id_map_by_target_numbers(
        &self,
        flow: &str,
        numbers: &[String],
    ) -> Result<HashMap<String, IdMapEntry>> {
        let flows = self.lock();
        let Some(st) = flows.get(flow) else {
            return Ok(HashMap::new());
        };
        Ok(st
            .id_map
            .values()
            .filter_map(|e| {
                let n = e.target.number.as_ref()?;
                numbers.contains(n).then(|| (n.clone(), e.clone()))
            })
            .collect())
    }

    async fn apply(&self, lease: &Lease, changes: &Changes) -> Result<()> {
        let mut flows = self.lock();
        let st = flows.entry(lease.flow.clone()).or_default();
        if st.lease.as_ref().is_none_or(|(o, _)| *o != lease.owner) {
            return Err(Error::LeaseLost {
                flow: lease.flow.clone(),
            });
        }
        for k in &changes.intents_clear {
            st.intents.remove(k);
        }
        for k in &changes.dead_letters_clear {
            st.dead.remove(k);
        }
        for (k, stage) in &changes.dead_letter_stages_clear {
            if let Some(stages) = st.dead.get_mut(k) {
                stages.remove(&stage.to_string());
                if stages.is_empty() {
                    st.dead.remove(k);
                }
            }
        }
        for k in &changes.deferrals_clear {
            st.deferred.remove(k);
        }
        for k in &changes.id_map_remove {
            st.id_map.remove(k);
        }
        for e in &changes.id_map {
            st.id_map.insert(e.source_key.clone(), e.clone());
        }
        for i in &changes.intents_put {
            st.intents.insert(i.source_key.clone(), i.clone());
        }
        for d in &changes.dead_letters_put {
            st.dead
                .entry(d.source_key.clone())
                .or_default()
                .insert(d.stage.to_string(), d.clone());
        }
        for d in &changes.deferrals_put {
            st.deferred.insert(d.source_key.clone(), d.clone());
        }
        for k in &changes.sends_clear {
            st.sends.remove(k);
        }
        for s in &changes.sends_put {
            st.sends
                .insert((s.source_key.clone(), s.action.clone()), s.clone());
        }
        for s in &changes.sends_start {
            if let Some(queued) = st.sends.get_mut(&(s.source_key.clone(), s.action.clone()))
                && queued.queued_at == s.queued_at
            {
                queued.started_at = s.started_at;
            }
        }
        for s in &changes.sends_done {
            let key = (s.source_key.clone(), s.action.clone());
            if st
                .sends
                .get(&key)
                .is_some_and(|q| q.queued_at == s.queued_at)
            {
                st.sends.remove(&key);
            }
        }
        if let Some(c) = &changes.cursor {
            st.cursor = Some(c.clone());
        }
        Ok(())
    }

    async fn intents(&self, flow: &str) -> Result<Vec<Intent>> {
        Ok(self
            .lock()
            .get(flow)
            .map(|s| s.intents.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn sends(&self, flow: &str) -> Result<Vec<PendingSend>> {
        Ok(self
            .lock()
            .get(flow)
            .map(|s| {
                s.sends
                    .values()
                    .filter(|s| s.action != WRITE_BACK)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn queued(&self, flow: &str, action: &str, limit: usize) -> Result<Vec<PendingSend>> {
        Ok(self
            .lock()
            .get(flow)
            .map(|s| {
                s.sends
                    .values()
                    .filter(|s| s.action == action)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn queued_count(&self, flow: &str, action: &str) -> Result<u64> {
        Ok(self.lock().get(flow).map_or(0, |s| {
            s.sends.values().filter(|s| s.action == action).count() as u64
        }))
    }

    async fn dead_letters(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        Ok(self
            .lock()
            .get(flow)
            .map(|s| {
                page(&s.dead, after, limit)
                    .into_iter()
                    .flat_map(BTreeMap::into_values)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn deferrals(
        &self,
        flow: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Deferral>> {
        Ok(self
            .lock()
            .get(flow)
            .map(|s| page(&s.deferred, after, limit))
            .unwrap_or_default())
    }

    async fn record_run(&self, run: &RunRecord) -> Result<()> {
        self.lock()
            .entry(run.flow.clone())
            .or_default()
            .runs
            .push(run.clone());
        Ok(())
    }

    async fn runs(&self, flow: &str, limit: usize) -> Result<Vec<RunRecord>> {
        Ok(self
            .lock()
            .get(flow)
            .map(|s| s.runs.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}
