//! `data/create` (with master-detail lines) and `data/update`.

use serde_json::{Map, Value, json};

use super::{Crm, Record, SYSTEM_WRITE_PROTECTED, WriteCtx, is_empty, text};
use crate::fxiaoke::envelope::FxError;

impl Crm {
    /// `data/create`: the new `_id`. Detail rows get the master link set.
    pub(crate) fn create(
        &mut self,
        api: &str,
        object_data: &Map<String, Value>,
        details: Option<&Map<String, Value>>,
        ctx: &WriteCtx<'_>,
    ) -> Result<String, FxError> {
        self.generation = crate::generation::next();
        let def = self
            .objects
            .get(api)
            .map(|t| t.def.clone())
            .ok_or_else(|| Self::unknown_object(ctx.code, api))?;
        let mut record: Record = object_data
            .iter()
            .filter(|(k, _)| {
                ctx.direct
                    || !SYSTEM_WRITE_PROTECTED.contains(&k.as_str())
                    || (ctx.specify_time && k.as_str().ends_with("_time"))
                    || (ctx.specify_created_by && k.as_str() == "created_by")
            })
            .filter(|(k, _)| k.as_str() != "dataObjectApiName")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let id = match object_data.get("_id").and_then(Value::as_str) {
            Some(id) if ctx.direct && !id.is_empty() => {
                if self
                    .objects
                    .get(api)
                    .is_some_and(|t| t.records.contains_key(id))
                {
                    return Err(Self::business(ctx, format!("数据[{id}]已存在")));
                }
                id.to_string()
            }
            _ => self.new_id(ctx.now_ms),
        };
        if def.auto_number && is_empty(record.get("name")) {
            // Seeded records are numbered on the day they say they were created.
            let day = match record.get("create_time").and_then(Value::as_i64) {
                Some(t) if ctx.direct => t,
                _ => ctx.now_ms,
            };
            let number = self.auto_number(api, day);
            record.insert("name".into(), json!(number));
        }
        self.stamp_new(&def, &mut record, &id, ctx);
        let label = record
            .get("name")
            .and_then(text)
            .unwrap_or_else(|| id.clone());
        self.validate(&def, &record, &label, ctx, None)?;
        let groups = self.detail_rows(api, details, ctx)?;
        let mut lines = Vec::new();
        for (detail_api, link, rows) in groups {
            let detail_def = self.objects[&detail_api].def.clone();
            for (i, row) in rows.into_iter().enumerate() {
                let mut line: Record = row
                    .iter()
                    .filter(|(k, _)| !SYSTEM_WRITE_PROTECTED.contains(&k.as_str()))
                    .filter(|(k, _)| k.as_str() != "dataObjectApiName")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                line.insert(link.clone(), json!(id));
                if is_empty(line.get("owner")) {
                    line.insert(
                        "owner".into(),
                        record.get("owner").cloned().unwrap_or(Value::Null),
                    );
                }
                if detail_def.auto_number && is_empty(line.get("name")) {
                    line.insert("name".into(), json!(format!("{label}-{}", i + 1)));
                }
                let line_id = self.new_id(ctx.now_ms);
                self.stamp_new(&detail_def, &mut line, &line_id, ctx);
                if ctx.direct {
                    for key in ["create_time", "last_modified_time"] {
                        if let Some(t) = record.get(key) {
                            line.insert(key.into(), t.clone());
                        }
                    }
                }
                self.validate(&detail_def, &line, &label, ctx, Some(&link))?;
                lines.push((detail_api.clone(), line_id, line));
            }
        }
        if let Some(table) = self.objects.get_mut(api) {
            table.records.insert(id.clone(), record);
        }
        for (detail_api, line_id, line) in lines {
            if let Some(table) = self.objects.get_mut(&detail_api) {
                table.records.insert(line_id, line);
            }
        }
        Ok(id)
    }

    /// `data/update`: only the fields sent change (owner through `changeOwner` only). Detail
    /// rows sent for a detail object become its rows: rows with an `_id` are updated, rows
    /// without are created, the master's other rows are removed.
    pub(crate) fn update(
        &mut self,
        api: &str,
        object_data: &Map<String, Value>,
        details: Option<&Map<String, Value>>,
        ctx: &WriteCtx<'_>,
    ) -> Result<(), FxError> {
        self.generation = crate::generation::next();
        let def = self
            .objects
            .get(api)
            .map(|t| t.def.clone())
            .ok_or_else(|| Self::unknown_object(ctx.code, api))?;
        let id = object_data
            .get("_id")
            .and_then(text)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| FxError::param("object_data._id 不能为空"))?;
        let mut record = self
            .objects
            .get(api)
            .and_then(|t| t.records.get(&id))
            .cloned()
            .ok_or_else(|| Self::not_found(ctx, &id))?;
        let label = record
            .get("name")
            .and_then(text)
            .unwrap_or_else(|| id.clone());
        if record.get("is_deleted") == Some(&json!(true)) {
            return Err(Self::business(
                ctx,
                format!("数据[{label}]已作废，不能编辑"),
            ));
        }
        for (key, value) in object_data {
            if SYSTEM_WRITE_PROTECTED.contains(&key.as_str()) || key == "owner" {
                continue;
            }
            if value.is_null() {
                record.remove(key);
            } else {
                record.insert(key.clone(), value.clone());
            }
        }
        Self::touch(&mut record, ctx);
        self.validate(&def, &record, &label, ctx, None)?;

        let groups = self.detail_rows(api, details, ctx)?;
        let mut new_lines: Vec<(String, String, Record)> = Vec::new();
        let mut removed: Vec<(String, String)> = Vec::new();
        for (detail_api, link, rows) in groups {
            let detail_def = self.objects[&detail_api].def.clone();
            let existing: Vec<String> = self.objects[&detail_api]
                .records
                .iter()
                .filter(|(_, r)| r.get(&link).and_then(text).as_deref() == Some(id.as_str()))
                .map(|(k, _)| k.clone())
                .collect();
            let mut kept = Vec::new();
            for (i, row) in rows.into_iter().enumerate() {
                let row_id = row
                    .get("_id")
                    .and_then(text)
                    .filter(|s| existing.contains(s));
                let (line_id, mut line) = if let Some(rid) = row_id {
                    {
                        kept.push(rid.clone());
                        let mut line = self.objects[&detail_api].records[&rid].clone();
                        for (k, v) in row {
                            if SYSTEM_WRITE_PROTECTED.contains(&k.as_str()) || k == "owner" {
                                continue;
                            }
                            if v.is_null() {
                                line.remove(k);
                            } else {
                                line.insert(k.clone(), v.clone());
                            }
                        }
                        Self::touch(&mut line, ctx);
                        (rid, line)
                    }
                } else {
                    {
                        let mut line: Record = row
                            .iter()
                            .filter(|(k, _)| !SYSTEM_WRITE_PROTECTED.contains(&k.as_str()))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        line.insert(
                            "owner".into(),
                            record.get("owner").cloned().unwrap_or(Value::Null),
                        );
                        if detail_def.auto_number && is_empty(line.get("name")) {
                            line.insert("name".into(), json!(format!("{label}-{}", i + 1)));
                        }
                        let line_id = self.new_id(ctx.now_ms);
                        self.stamp_new(&detail_def, &mut line, &line_id, ctx);
                        (line_id, line)
                    }
                };
                line.insert(link.clone(), json!(id));
                self.validate(&detail_def, &line, &label, ctx, Some(&link))?;
                new_lines.push((detail_api.clone(), line_id, line));
            }
            removed.extend(
                existing
                    .into_iter()
                    .filter(|e| !kept.contains(e))
                    .map(|e| (detail_api.clone(), e)),
            );
        }
        if let Some(table) = self.objects.get_mut(api) {
            table.records.insert(id, record);
        }
        for (detail_api, line_id, line) in new_lines {
            if let Some(table) = self.objects.get_mut(&detail_api) {
                table.records.insert(line_id, line);
            }
        }
        for (detail_api, line_id) in removed {
            if let Some(table) = self.objects.get_mut(&detail_api) {
                table.records.remove(&line_id);
            }
        }
        Ok(())
    }
}
