//! Save / Draft of one model packet (k3cloud.md §5.1): the packet taken apart, the bill it
//! targets checked, values converted to cells, entry rows merged, defaults and amounts
//! computed, required fields validated, and the bill committed.

mod cells;
mod entries;
mod packet;
mod validation;

use serde_json::{Map, Value};

use super::envelope::Failure;
use super::forms::{self, FieldType};
use super::store::{Bill, Cell, K3Data, SaveOpts, compute_amounts, unknown_form};
use crate::clock::k3_datetime;
use cells::Cells;
use entries::Content;
use packet::Packet;

impl K3Data {
    /// Save / Draft of one model packet. Returns the saved bill's id and number.
    pub(crate) fn save(
        &mut self,
        form: &str,
        model: &Map<String, Value>,
        opts: &SaveOpts,
        now_ms: i64,
    ) -> Result<(i64, String), Vec<Failure>> {
        let Some(table) = self.table(form) else {
            return Err(vec![unknown_form(form)]);
        };
        let def = table.def.clone();
        let partial = !opts.need_update_fields.is_empty();
        let packet = Packet::split(table, &def, model);
        let existing_id = validation::target(
            table,
            &def,
            packet.pk,
            packet.number.as_deref(),
            partial,
            opts.keep_ids,
        )
        .map_err(|f| vec![f])?;

        let base = existing_id.and_then(|id| table.bills.get(&id));
        let mut cells = Cells::new(self, &def, opts);
        let Content {
            mut head,
            mut entries,
            next_entry_id,
        } = entries::build(&packet, base, opts, &mut cells, self.next_entry_id);
        let Cells {
            mut errors,
            extra_fields,
            ..
        } = cells;

        // Organisation fields left out of a new packet (or of a full save, which starts
        // afresh) take the context's current organisation (the integration user's default,
        // "100" here), as the client's form does.
        if existing_id.is_none() || !partial {
            let org = self.resolve_ref(forms::ORG, "100");
            for field in def.fields.iter().filter(|f| f.entity.is_none()) {
                if field.ty == FieldType::BaseData(forms::ORG)
                    && !head.contains_key(field.key)
                    && let Some(id) = org
                {
                    head.insert(
                        field.key.to_string(),
                        Cell::Ref {
                            number: "100".into(),
                            id,
                        },
                    );
                }
            }
        }
        if !def.base_data && !head.contains_key("FDate") && def.field("FDate").is_some() {
            head.insert(
                "FDate".into(),
                Cell::Val(Value::String(format!(
                    "{}T00:00:00",
                    &k3_datetime(now_ms)[..10]
                ))),
            );
        }
        compute_amounts(&def, &mut head, &mut entries);

        // Not for drafts, nor with ValidateFlag=false.
        if def.is_modelled() && opts.validate && !opts.draft {
            errors.extend(validation::required_fields(&def, &head, &entries));
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        self.next_entry_id = next_entry_id;
        let table = self
            .table_mut(def.id)
            .ok_or_else(|| vec![unknown_form(form)])?;
        for (key, entity) in extra_fields {
            table
                .extra_fields
                .entry(key.to_ascii_lowercase())
                .or_insert((key, entity));
        }
        for entity in packet.new_entities {
            if !table
                .extra_entities
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&entity))
            {
                table.extra_entities.push(entity);
            }
        }
        let number = match (&packet.number, existing_id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => table.bills[&id].number.clone(),
            (None, None) => table.next_free_number(),
        };
        head.insert(
            def.number_key.to_string(),
            Cell::Val(Value::String(number.clone())),
        );
        let id = match existing_id {
            Some(id) => id,
            None => match packet.pk {
                Some(id) if opts.keep_ids => id,
                _ => {
                    self.next_id += 1;
                    self.next_id - 1
                }
            },
        };
        if opts.keep_ids {
            self.next_id = self.next_id.max(id + 1);
            let max_entry = entries.values().flatten().map(|e| e.id).max().unwrap_or(0);
            self.next_entry_id = self.next_entry_id.max(max_entry + 1);
        }
        let table = self
            .table_mut(def.id)
            .ok_or_else(|| vec![unknown_form(form)])?;
        let old = existing_id.and_then(|id| table.bills.get(&id));
        let status = match old {
            Some(old) if old.status == 'Z' && !opts.draft => 'A',
            Some(old) => old.status,
            None if opts.draft => 'Z',
            None => 'A',
        };
        let (create_ms, forbid, close) =
            old.map_or((now_ms, 'A', 'A'), |b| (b.create_ms, b.forbid, b.close));
        let mut bill = Bill {
            id,
            number: number.clone(),
            status,
            forbid,
            close,
            head,
            entries,
            create_ms,
            modify_ms: now_ms,
            approve_ms: None,
        };
        if opts.auto_submit_audit && !opts.draft {
            bill.status = 'C';
            bill.approve_ms = Some(now_ms);
        }
        table.insert(bill);
        Ok((id, number))
    }
}
