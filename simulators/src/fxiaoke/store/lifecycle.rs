//! What happens to a record after it is written: invalid (作废), recover, delete, change owner —
//! each on the record and its detail lines together.

use serde_json::json;

use super::{Crm, WriteCtx, text};
use crate::fxiaoke::envelope::FxError;

impl Crm {
    /// The records `ids` of `api` and the detail records whose master is one of them: what
    /// invalid, recover and delete act on together.
    pub(super) fn family(&self, api: &str, ids: &[String]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            ids.iter().map(|id| (api.to_string(), id.clone())).collect();
        for (detail_api, table) in &self.objects {
            if let Some(link) = table.def.master_field(api) {
                out.extend(
                    table
                        .records
                        .iter()
                        .filter(|(_, r)| {
                            r.get(&link.api)
                                .and_then(text)
                                .is_some_and(|master| ids.contains(&master))
                        })
                        .map(|(k, _)| (detail_api.clone(), k.clone())),
                );
            }
        }
        out
    }

    pub(super) fn lookup(
        &self,
        api: &str,
        ids: &[String],
        ctx: &WriteCtx<'_>,
    ) -> Result<(), FxError> {
        let table = self
            .objects
            .get(api)
            .ok_or_else(|| Self::unknown_object(ctx.code, api))?;
        if ids.is_empty() {
            return Err(FxError::param("数据ID不能为空"));
        }
        match ids.iter().find(|id| !table.records.contains_key(*id)) {
            Some(id) => Err(Self::not_found(ctx, id)),
            None => Ok(()),
        }
    }

    pub(super) fn label(&self, api: &str, id: &str) -> String {
        self.objects
            .get(api)
            .and_then(|t| t.records.get(id))
            .and_then(|r| r.get("name"))
            .and_then(text)
            .unwrap_or_else(|| id.to_string())
    }

    pub(super) fn is_invalid(&self, api: &str, id: &str) -> bool {
        self.objects
            .get(api)
            .and_then(|t| t.records.get(id))
            .is_some_and(|r| r.get("is_deleted") == Some(&json!(true)))
    }

    /// `invalid` (作废): `life_status` `invalid`, `is_deleted` true; detail rows follow.
    pub(crate) fn invalid(
        &mut self,
        api: &str,
        ids: &[String],
        ctx: &WriteCtx<'_>,
    ) -> Result<(), FxError> {
        self.generation = crate::generation::next();
        self.lookup(api, ids, ctx)?;
        if let Some(id) = ids.iter().find(|id| self.is_invalid(api, id)) {
            return Err(Self::business(
                ctx,
                format!("数据[{}]已作废", self.label(api, id)),
            ));
        }
        for (a, i) in self.family(api, ids) {
            if let Some(table) = self.objects.get_mut(&a)
                && let Some(r) = table.records.get_mut(&i)
            {
                let prior = r.get("life_status").cloned().unwrap_or(json!("normal"));
                table.prior_status.insert(i.clone(), prior);
                r.insert("life_status".into(), json!("invalid"));
                r.insert("is_deleted".into(), json!(true));
                Self::touch(r, ctx);
            }
        }
        Ok(())
    }

    /// `recover`: undoes `invalid`.
    pub(crate) fn recover(
        &mut self,
        api: &str,
        ids: &[String],
        ctx: &WriteCtx<'_>,
    ) -> Result<(), FxError> {
        self.generation = crate::generation::next();
        self.lookup(api, ids, ctx)?;
        if let Some(id) = ids.iter().find(|id| !self.is_invalid(api, id)) {
            return Err(Self::business(
                ctx,
                format!("数据[{}]未作废，无需恢复", self.label(api, id)),
            ));
        }
        for (a, i) in self.family(api, ids) {
            if let Some(table) = self.objects.get_mut(&a)
                && let Some(r) = table.records.get_mut(&i)
            {
                let prior = table.prior_status.remove(&i).unwrap_or(json!("normal"));
                r.insert("life_status".into(), prior);
                r.insert("is_deleted".into(), json!(false));
                Self::touch(r, ctx);
            }
        }
        Ok(())
    }

    /// `delete`: only invalidated records (fxiaoke.md §4.8, "删除之前请先作废数据").
    pub(crate) fn delete(
        &mut self,
        api: &str,
        ids: &[String],
        ctx: &WriteCtx<'_>,
    ) -> Result<(), FxError> {
        self.generation = crate::generation::next();
        self.lookup(api, ids, ctx)?;
        if let Some(id) = ids.iter().find(|id| !self.is_invalid(api, id)) {
            return Err(Self::business(
                ctx,
                format!("数据[{}]未作废，删除之前请先作废数据", self.label(api, id)),
            ));
        }
        for (a, i) in self.family(api, ids) {
            if let Some(table) = self.objects.get_mut(&a) {
                table.records.remove(&i);
                table.prior_status.remove(&i);
            }
        }
        Ok(())
    }

    /// `changeOwner`: `[(id, owner ids)]`.
    pub(crate) fn change_owner(
        &mut self,
        api: &str,
        changes: &[(String, Vec<String>)],
        ctx: &WriteCtx<'_>,
    ) -> Result<(), FxError> {
        self.generation = crate::generation::next();
        let ids: Vec<String> = changes.iter().map(|(id, _)| id.clone()).collect();
        self.lookup(api, &ids, ctx)?;
        for (id, owners) in changes {
            if self.is_invalid(api, id) {
                return Err(Self::business(
                    ctx,
                    format!("数据[{}]已作废，不能更换负责人", self.label(api, id)),
                ));
            }
            if owners.is_empty() {
                return Err(FxError::param("ownerId 不能为空"));
            }
            if let Some(bad) = owners.iter().find(|o| self.user(o).is_none()) {
                return Err(Self::business(ctx, format!("负责人[{bad}]不是有效的员工")));
            }
        }
        for (id, owners) in changes {
            let Some(mut r) = self
                .objects
                .get(api)
                .and_then(|t| t.records.get(id))
                .cloned()
            else {
                continue;
            };
            r.insert("owner".into(), json!(owners));
            self.stamp_owner(&mut r);
            Self::touch(&mut r, ctx);
            if let Some(table) = self.objects.get_mut(api) {
                table.records.insert(id.clone(), r);
            }
        }
        Ok(())
    }
}
