//! Rebuilding a lost ID map from the two systems.

use super::run::Run;
use super::window::check_page;
use crate::error::Result;
use crate::hash::payload_hash;
use crate::record::Position;
use crate::source::{PageRequest, Window};
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
        let mut after: Option<Position> = None;
        let mut token: Option<String> = None;
        loop {
            let request = PageRequest {
                window: win,
                after: after.clone(),
                token: token.clone(),
                limit: self.flow.options.page_size,
            };
            let page = self
                .flow
                .source
                .read_page(&request)
                .await
                .map_err(|e| self.source_error(e))?;
            let before = after.clone();
            let records = check_page(&self.flow.name, &win, after.as_ref(), page.records)?;
            if let Some(last) = records.last() {
                after = Some(last.position());
            }
            self.report.counts.read += records.len() as u64;
            let lookups = self.resolve_lookups(&records).await?;
            let mapped: Vec<(String, String, String)> = records
                .iter()
                .filter_map(|r| {
                    let m = self.flow.mapping.map(r, &lookups).ok()?;
                    Some((r.key.clone(), m.natural_key, payload_hash(&m.payload)))
                })
                .collect();
            let naturals: Vec<String> = mapped.iter().map(|(_, n, _)| n.clone()).collect();
            let found = self
                .flow
                .sink
                .existing_targets(&naturals)
                .await
                .map_err(|e| self.sink_error(e))?;
            let now = self.now();
            let changes = Changes {
                id_map: mapped
                    .into_iter()
                    .filter_map(|(key, natural, hash)| {
                        Some(IdMapEntry {
                            source_key: key,
                            target: found.get(&natural)?.clone(),
                            payload_hash: Some(hash),
                            updated_at: now,
                        })
                    })
                    .collect(),
                ..Changes::default()
            };
            self.report.counts.rebuilt += changes.id_map.len() as u64;
            self.apply(&changes).await?;
            if !page.has_more {
                break;
            }
            if page.token == token && after == before {
                return Err(crate::Error::SourceContract {
                    flow: self.flow.name.clone(),
                    reason: "a page brought nothing new but claims more follow".into(),
                });
            }
            token = page.token;
        }
        Ok(())
    }
}
