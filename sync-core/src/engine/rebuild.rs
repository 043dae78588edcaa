//! Rebuilding a lost ID map from the target system.

use super::run::Run;
use crate::error::Result;
use crate::state::{Changes, IdMapEntry};

impl Run<'_> {
    /// Lists the sink's targets page by page and restores the ID map. An entry that already
    /// points at the same target keeps its payload hash; others get none, so the next run
    /// updates them once.
    pub(crate) async fn rebuild(&mut self) -> Result<()> {
        self.engine
            .observer
            .run_started(&self.flow.name, self.report.kind, None);
        let mut token: Option<String> = None;
        loop {
            let page = self
                .flow
                .sink
                .list_targets(token.as_deref())
                .await
                .map_err(|e| self.sink_error(e))?;
            let keys: Vec<String> = page.entries.iter().map(|e| e.source_key.clone()).collect();
            let known = self
                .engine
                .store
                .id_map_get_many(&self.flow.name, &keys)
                .await?;
            let now = self.now();
            let mut changes = Changes::default();
            for e in page.entries {
                let existing = known.get(&e.source_key);
                if existing.is_some_and(|x| x.target == e.target) {
                    continue;
                }
                changes.id_map.push(IdMapEntry {
                    source_key: e.source_key,
                    target: e.target,
                    payload_hash: None,
                    updated_at: now,
                });
            }
            self.report.counts.rebuilt += changes.id_map.len() as u64;
            self.apply(&changes).await?;
            match page.next {
                Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                _ => break,
            }
        }
        Ok(())
    }
}
