//! The header and entry rows a save leaves: a partial update (`NeedUpDateFields`) starts from
//! the stored bill, a full save from nothing; entry rows are matched by `FEntryID`.
//!
//! A full save of an existing bill replaces it: header fields the packet leaves out go back to
//! empty or their defaults, and entry rows it matches by `FEntryID` keep only what it sends.
//! The reference documents partial update only through NeedUpDateFields (k3cloud.md §5.1);
//! practitioners report that a full save clears the fields not sent. We take that stricter
//! reading so that a client that forgets NeedUpDateFields is caught. The id, the number, the
//! status and the create / modify / approve dates are the server's and survive. Entities the
//! packet does not name at all are left alone (the reference does not say what a full save
//! does to them).

use std::collections::{BTreeMap, HashMap};

use super::cells::Cells;
use super::packet::{Packet, entry_id_of};
use crate::k3cloud::store::{Bill, Cell, Entry, SaveOpts};

/// What the bill will hold.
pub(super) struct Content {
    pub(super) head: BTreeMap<String, Cell>,
    pub(super) entries: BTreeMap<String, Vec<Entry>>,
    /// The next free entry id after the new rows took theirs.
    pub(super) next_entry_id: i64,
}

/// Builds the content from the packet over `base` (the stored bill being saved, if any).
pub(super) fn build(
    packet: &Packet,
    base: Option<&Bill>,
    opts: &SaveOpts,
    cells: &mut Cells<'_>,
    mut next_entry_id: i64,
) -> Content {
    let partial = !opts.need_update_fields.is_empty();
    // Only fields NeedUpDateFields lists change in a partial update of an existing bill.
    let skip = |key: &str| {
        base.is_some()
            && partial
            && !opts
                .need_update_fields
                .iter()
                .any(|f| f.eq_ignore_ascii_case(key))
    };
    let mut head = match base {
        Some(b) if partial => b.head.clone(),
        _ => BTreeMap::new(),
    };
    for (key, value) in &packet.head {
        if skip(key) {
            continue;
        }
        let (canonical, cell) = cells.convert(key, value, None);
        match cell {
            Some(cell) => head.insert(canonical, cell),
            None => head.remove(&canonical),
        };
    }
    let mut entries = base.map(|b| b.entries.clone()).unwrap_or_default();
    for (entity, rows) in &packet.entities {
        if skip(entity) {
            continue;
        }
        let old = entries.remove(entity).unwrap_or_default();
        let mut kept: Vec<Entry> = Vec::new();
        let mut touched = Vec::new();
        for row in rows {
            let row_id = entry_id_of(row);
            let matched = row_id.and_then(|id| old.iter().find(|e| e.id == id));
            let mut entry = if let Some(e) = matched {
                touched.push(e.id);
                if partial {
                    e.clone()
                } else {
                    Entry {
                        id: e.id,
                        seq: 0,
                        fields: BTreeMap::new(),
                    }
                }
            } else {
                let id = match row_id {
                    Some(id) if opts.keep_ids => id,
                    _ => {
                        next_entry_id += 1;
                        next_entry_id - 1
                    }
                };
                Entry {
                    id,
                    seq: 0,
                    fields: BTreeMap::new(),
                }
            };
            for (key, value) in row {
                if key.eq_ignore_ascii_case("FEntryID") || key.eq_ignore_ascii_case("FSeq") {
                    continue;
                }
                if matched.is_some() && skip(key) {
                    continue;
                }
                let (canonical, cell) = cells.convert(key, value, Some(entity));
                match cell {
                    Some(cell) => entry.fields.insert(canonical, cell),
                    None => entry.fields.remove(&canonical),
                };
            }
            kept.push(entry);
        }
        // IsDeleteEntry (default true): rows of the bill missing from the packet are deleted
        // and the rows sent are the lines, in their order. Otherwise the old rows stay in
        // place (those the packet matched by FEntryID replaced) and new rows follow them.
        let mut result: Vec<Entry> = if opts.is_delete_entry {
            kept
        } else {
            let (matched, added): (Vec<Entry>, Vec<Entry>) =
                kept.into_iter().partition(|e| touched.contains(&e.id));
            let mut matched: HashMap<i64, Entry> = matched.into_iter().map(|e| (e.id, e)).collect();
            let mut merged: Vec<Entry> = old
                .into_iter()
                .map(|e| matched.remove(&e.id).unwrap_or(e))
                .collect();
            merged.extend(added);
            merged
        };
        for (i, e) in result.iter_mut().enumerate() {
            e.seq = i + 1;
        }
        entries.insert(entity.clone(), result);
    }
    Content {
        head,
        entries,
        next_entry_id,
    }
}
