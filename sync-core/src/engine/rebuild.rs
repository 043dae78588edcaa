//! Rebuilding a lost ID map from the two systems.

use super::run::Run;
use super::window::Pages;
use crate::error::Result;
use crate::hash::payload_hash;
use crate::source::Window;
use crate::state::{Changes, IdMapEntry};

impl Run<'_> {
    /// Reads the whole source (from the flow's `start_from` to now), maps each record and asks
    /// the sink which targets exist for the natural keys: each one found goes back into the ID
    /// map with the record's current payload hash, as if it had just been written. Records
    /// that do not map (yet) or have no target are left for the next run, which creates them;
    /// the cursor is not touched, so that the next run reads them.
    ///
    /// The source drives it, not the target: a target does not always hold the source's key
    /// (an ERP customer holds the CRM customer code, not the CRM id), but the mapping always
    /// says which natural key a record writes to.
    pub(crate) async fn rebuild(&mut self) -> Result<()> {
        let now = self.source_now().await?;
        let o = &self.flow.options;
        let win = Window {
            low: o.start_from_ms,
            high: now.saturating_sub(o.settle_ms),
        };
        self.report.window = Some(win);
        self.engine
            .observer
            .run_started(&self.flow.name, self.report.kind, Some(&win));
        let mut pages = Pages::new(win);
        while let Some(request) = pages.next_request(self.flow.options.page_size) {
            let page = self
                .retrying("read_page", || self.flow.source.read_page(&request))
                .await
                .map_err(|e| self.source_error(e))?;
            let records = pages.accept(&self.flow.name, page)?;
            self.report.counts.read += records.len() as u64;
            let lookups = self.resolve_lookups(&records).await?;
            let mapped: Vec<(String, String, String, Option<String>)> = records
                .iter()
                .filter_map(|r| {
                    let m = self.flow.mapping.map(r, &lookups).ok()?;
                    let back = self
                        .flow
                        .write_back
                        .as_ref()
                        .and_then(|w| w.written_back(r));
                    Some((r.key.clone(), m.natural_key, payload_hash(&m.payload), back))
                })
                .collect();
            let naturals: Vec<String> = mapped.iter().map(|(_, n, _, _)| n.clone()).collect();
            let found = self
                .flow
                .sink
                .existing_targets(&naturals)
                .await
                .map_err(|e| self.sink_error(e))?;
            // A key edited in the source since the record was synced: the target still has the
            // old one, which the record holds from its write-back. Looked up by that number
            // (when the natural key is the number), it is found, not created a second time.
            let edited: Vec<String> = if self.flow.sink.natural_key_is_number() {
                mapped
                    .iter()
                    .filter(|(_, natural, _, _)| !found.contains_key(natural))
                    .filter_map(|(_, natural, _, back)| back.clone().filter(|b| b != natural))
                    .collect()
            } else {
                Vec::new()
            };
            let found_by_back = if edited.is_empty() {
                std::collections::HashMap::new()
            } else {
                self.flow
                    .sink
                    .existing_targets(&edited)
                    .await
                    .map_err(|e| self.sink_error(e))?
            };
            let now = self.now();
            let changes = Changes {
                id_map: mapped
                    .into_iter()
                    .filter_map(|(key, natural, hash, back)| {
                        if let Some(target) = found.get(&natural) {
                            return Some(IdMapEntry {
                                source_key: key,
                                target: target.clone(),
                                payload_hash: Some(hash),
                                updated_at: now,
                            });
                        }
                        // The target holds the old key: the next run sends the record as an
                        // update of it.
                        Some(IdMapEntry {
                            source_key: key,
                            target: found_by_back.get(&back?)?.clone(),
                            payload_hash: None,
                            updated_at: now,
                        })
                    })
                    .collect(),
                ..Changes::default()
            };
            self.report.counts.rebuilt += changes.id_map.len() as u64;
            self.apply(&changes).await?;
        }
        Ok(())
    }
}
