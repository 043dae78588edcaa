//! A K3Cloud form as a [`Sink`]: BatchSave with per-row outcomes, lookup by natural key,
//! Submit/Audit as post-save actions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use k3cloud_sdk::{Client, Error as K3Error, Filter, RowResult};
use serde_json::{Map, Value};

use super::bill::BillLifecycle;
use super::convert::{connector_error, describe_form, row_reason};
use crate::error::ConnectorError;
use crate::json::text;
use crate::metadata::{FieldDescription, FieldKind, ObjectDescription};
use crate::sink::{ActionOutcome, Sink, TargetRef, WriteItem, WriteOutcome};

/// What to do when a record whose document already exists changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdatePolicy {
    /// Update the fields the mapping produced and nothing else (`NeedUpDateFields`, with
    /// `IsDeleteEntry` false). Entry arrays are left out of the update unless
    /// `replace_entries`, in which case the document's entry rows are replaced by the mapped
    /// ones (`IsDeleteEntry` true — which also drops the rows' links to source documents).
    MappedFields {
        /// Replace entry rows instead of leaving them alone.
        replace_entries: bool,
    },
    /// Never update: a changed record whose document exists is refused with a clear reason
    /// (for documents that are audited in the ERP and must be changed there).
    Refuse,
}

/// How a [`FormSink`] writes to one form.
#[derive(Debug, Clone)]
pub struct FormSinkConfig {
    form_id: String,
    id_field: String,
    number_field: String,
    natural_key_field: String,
    update_policy: UpdatePolicy,
    params: Vec<(String, Value)>,
    use_org: Option<String>,
    forbid_status_field: Option<String>,
    bill: Option<BillLifecycle>,
}

impl FormSinkConfig {
    /// Writes to `form_id` (`BD_Customer`), whose internal id key is `id_field` (`FCUSTID`,
    /// `FID`) and number key `number_field` (`FNumber`, `FBillNo`). Documents are found by
    /// their number unless [`natural_key_field`](Self::natural_key_field) says otherwise.
    pub fn new(
        form_id: impl Into<String>,
        id_field: impl Into<String>,
        number_field: impl Into<String>,
    ) -> Self {
        let number_field = number_field.into();
        Self {
            form_id: form_id.into(),
            id_field: id_field.into(),
            natural_key_field: number_field.clone(),
            number_field,
            update_policy: UpdatePolicy::MappedFields {
                replace_entries: false,
            },
            params: Vec::new(),
            use_org: None,
            forbid_status_field: None,
            bill: None,
        }
    }

    /// The use organisation (`FUseOrgId` number) documents are looked up in. Base data
    /// allocated (分配) to other organisations has one row per organisation under the same
    /// number; without this, the row whose use organisation is the one that created it is
    /// taken, and the others are its allocated copies.
    pub fn use_org(mut self, org_number: impl Into<String>) -> Self {
        self.use_org = Some(org_number.into());
        self
    }

    /// The field holding the mapping's natural key (for example a custom field that keeps the
    /// CRM id, `F_CRM_Id`). Reconciliation and ID-map rebuilds query it.
    pub fn natural_key_field(mut self, field: impl Into<String>) -> Self {
        self.natural_key_field = field.into();
        self
    }

    /// What to do with changed records whose document exists (default: update the mapped
    /// fields, leave entry rows alone).
    pub fn update_policy(mut self, policy: UpdatePolicy) -> Self {
        self.update_policy = policy;
        self
    }

    /// The payload key (for example `FForbidStatus`) that says whether the document must be
    /// forbidden (`"B"`, 禁用) or in use (`"A"`). K3Cloud does not take the status in a
    /// Save: the key is left out of the packet, and after the save the document is forbidden
    /// with `ExcuteOperation Forbid`, or enabled again with `Enable` when it was forbidden. A
    /// record whose status could not be set counts as failed (retryable): its next attempt
    /// saves again, which is harmless, and sets the status.
    pub fn forbid_status_field(mut self, key: impl Into<String>) -> Self {
        self.forbid_status_field = Some(key.into());
        self
    }

    /// Keeps bills (orders) in step with source records that are edited and cancelled after
    /// their first save: edits are saved according to the bill's status, cancellations close
    /// or delete it (see [`BillLifecycle`]). The [update policy](Self::update_policy) no longer
    /// applies.
    pub fn bill_lifecycle(mut self, lifecycle: BillLifecycle) -> Self {
        self.bill = Some(lifecycle);
        self
    }

    /// An extra BatchSave `data` option for every call (for example
    /// `("IsVerifyBaseDataField", "true")`).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }
}

/// Where base data is used, and where it was created.
const USE_ORG: &str = "FUseOrgId.FNumber";
const CREATE_ORG: &str = "FCreateOrgId.FNumber";

/// Writes mapped records to a K3Cloud form with BatchSave.
///
/// Creates and updates go out in separate BatchSave calls (updates grouped by the fields they
/// touch, as `NeedUpDateFields` is per call). Every row's `SuccessEntitys`/`Errors` entry comes
/// back as that record's outcome; a row the server neither confirmed nor refused is reported
/// as unknown, so that the engine looks it up before sending it again.
#[derive(Debug, Clone)]
pub struct FormSink {
    client: Client,
    config: FormSinkConfig,
}

impl FormSink {
    /// A sink over `client` for the form `config` describes.
    pub fn new(client: Client, config: FormSinkConfig) -> Self {
        Self { client, config }
    }

    /// Prepares an update packet: the document's id first, then the mapped fields.
    fn update_packet(&self, item: &WriteItem, target: &TargetRef, replace_entries: bool) -> Value {
        let mut packet = Map::new();
        packet.insert(self.config.id_field.clone(), id_value(&target.id));
        if let Value::Object(fields) = &item.payload {
            for (key, value) in fields {
                if key == &self.config.id_field || (value.is_array() && !replace_entries) {
                    continue;
                }
                packet.insert(key.clone(), value.clone());
            }
        }
        Value::Object(packet)
    }

    /// Whether a row error says the document's number is already used (违反字段唯一性要求 on the
    /// number field, as `reference/k3cloud.md` §4.1 shows it).
    fn number_taken(&self, e: &k3cloud_sdk::ErrorEntry) -> bool {
        e.message.contains("违反字段唯一性要求")
            && e.field_name
                .as_deref()
                .is_none_or(|f| f.is_empty() || f.eq_ignore_ascii_case(&self.config.number_field))
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn form_id(&self) -> &str {
        &self.config.form_id
    }

    pub(super) fn id_field(&self) -> &str {
        &self.config.id_field
    }

    pub(super) fn number_field(&self) -> &str {
        &self.config.number_field
    }

    /// One BatchSave; `None` entries of `out` at `indices` are filled.
    pub(super) async fn save(
        &self,
        models: Vec<Value>,
        indices: &[usize],
        update: Option<(Vec<String>, bool)>,
        items: &[WriteItem],
        out: &mut [Option<WriteOutcome>],
        sent_before: bool,
    ) -> Result<(), ConnectorError> {
        let mut call = self.client.batch_save(&self.config.form_id).models(models);
        for (key, value) in &self.config.params {
            call = call.param(key.clone(), value.clone());
        }
        if let Some((fields, replace_entries)) = &update {
            call = call
                .need_update_fields(fields.clone())
                .is_delete_entry(*replace_entries);
        }
        match call.send().await {
            Ok(result) => {
                // Refused before anything was saved: network control and call limits, and a
                // session the server lost (MsgCode 1; under signed headers the client reports
                // refused credentials before this), which a new session heals.
                let retryable = result.status.is_transient()
                    || result.status.msg_code == Some(k3cloud_sdk::MsgCode::CONTEXT_LOST);
                for (row, &i) in result.rows.iter().zip(indices) {
                    out[i] = Some(match row {
                        RowResult::Succeeded(e) => {
                            let target = TargetRef::new(
                                e.id.clone(),
                                Some(e.number.clone()).filter(|n| !n.is_empty()),
                            );
                            match &items[i].target {
                                // Keep the number we know when the server sends none back.
                                Some(old) if update.is_some() => WriteOutcome::Updated(TargetRef {
                                    id: if target.id.is_empty() {
                                        old.id.clone()
                                    } else {
                                        target.id
                                    },
                                    number: target.number.or_else(|| old.number.clone()),
                                }),
                                _ => WriteOutcome::Created(target),
                            }
                        }
                        RowResult::Unconfirmed => WriteOutcome::Unknown {
                            reason: row_reason(row),
                        },
                        // A create refused because its number is taken: the document is most
                        // likely the one an earlier create made before its answer was lost.
                        // Unknown, it is found by that number and the ID map repaired — not
                        // a dead letter that would need a person.
                        RowResult::Failed(errors)
                            if update.is_none()
                                && self.natural_key_is_number()
                                && errors.iter().any(|e| self.number_taken(e)) =>
                        {
                            WriteOutcome::Unknown {
                                reason: format!(
                                    "the number is already used, most likely by this record's \
                                     earlier create: it is looked up by its number ({})",
                                    row_reason(row)
                                ),
                            }
                        }
                        failed => WriteOutcome::Failed {
                            reason: row_reason(failed),
                            retryable,
                        },
                    });
                }
                Ok(())
            }
            Err(e) if e.is_outcome_unknown() => {
                for &i in indices {
                    out[i] = Some(WriteOutcome::Unknown {
                        reason: e.to_string(),
                    });
                }
                Ok(())
            }
            Err(K3Error::Business(b)) => {
                // Refused as a whole: nothing of it was saved.
                let reason = b.to_string();
                for &i in indices {
                    out[i] = Some(WriteOutcome::Failed {
                        reason: reason.clone(),
                        retryable: b.is_transient(),
                    });
                }
                Ok(())
            }
            Err(e) if !sent_before => Err(connector_error(e)),
            Err(e) => {
                // Nothing of this call was applied, but earlier calls of the batch were: report
                // per record so that their outcomes are kept.
                let retryable = e.is_retryable();
                for &i in indices {
                    out[i] = Some(WriteOutcome::Failed {
                        reason: e.to_string(),
                        retryable,
                    });
                }
                Ok(())
            }
        }
    }

    async fn statuses(&self, ids: &[&str]) -> Result<HashMap<String, String>, ConnectorError> {
        self.by_id(ids, "FDocumentStatus").await
    }

    /// The text of `field` of the documents `ids`, by id.
    async fn by_id(
        &self,
        ids: &[&str],
        field: &str,
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let rows: Vec<(Value, String)> = self
            .client
            .query(&self.config.form_id)
            .fields([self.config.id_field.as_str(), field])
            .filter(Filter::is_in(
                &self.config.id_field,
                ids.iter().map(|i| (*i).to_owned()),
            ))
            // Paged in id order: a server row cap must not hide a document.
            .order_by(format!("{} ASC", self.config.id_field))
            .pages()
            .collect_all()
            .await
            .map_err(connector_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, value)| (text(&id), value))
            .collect())
    }
}

/// A K3Cloud internal id: a number when it looks like one, as the vendor samples send it.
pub(super) fn id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map_or_else(|_| Value::String(id.to_owned()), Value::from)
}

/// Every field key a packet sets: top-level keys and the keys of entry rows (not the keys
/// inside base-data references such as `{"FNumber": …}`).
pub(super) fn field_keys(packet: &Value, skip: &str) -> Vec<String> {
    let mut keys = BTreeSet::new();
    if let Value::Object(fields) = packet {
        for (key, value) in fields {
            if key == skip {
                continue;
            }
            keys.insert(key.clone());
            if let Value::Array(rows) = value {
                for row in rows {
                    if let Value::Object(row) = row {
                        keys.extend(row.keys().cloned());
                    }
                }
            }
        }
    }
    keys.into_iter().collect()
}

#[async_trait]
impl Sink for FormSink {
    fn natural_key_field(&self) -> Option<&str> {
        Some(&self.config.natural_key_field)
    }

    fn natural_key_is_number(&self) -> bool {
        self.config.natural_key_field == self.config.number_field
    }

    async fn find(&self, natural_key: &str) -> Result<Option<TargetRef>, ConnectorError> {
        let found = self
            .existing_targets(std::slice::from_ref(&natural_key.to_owned()))
            .await?;
        Ok(found.get(natural_key).cloned())
    }

    async fn write(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        if let Some(bill) = &self.config.bill {
            return self.write_bills(bill, items).await;
        }
        let Some(key) = &self.config.forbid_status_field else {
            return self.save_all(items).await;
        };
        let (items, wanted) = take_status(key, items);
        // A record to be forbidden that has no document (an account invalidated before it
        // ever reached the ERP) is not created just to be forbidden.
        let (skipped, to_save): (Vec<usize>, Vec<usize>) =
            (0..items.len()).partition(|&i| items[i].target.is_none() && wanted[i] == Some(true));
        let saving: Vec<WriteItem> = to_save.iter().map(|&i| items[i].clone()).collect();
        let mut saved = self.save_all(&saving).await?.into_iter();
        let mut out: Vec<WriteOutcome> = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            out.push(if skipped.contains(&i) {
                WriteOutcome::Skipped {
                    reason: format!(
                        "forbidden in the source and not in {}: not created",
                        self.config.form_id
                    ),
                }
            } else {
                saved.next().unwrap_or(WriteOutcome::Unknown {
                    reason: "no outcome".into(),
                })
            });
        }
        if wanted.iter().any(Option::is_some) {
            self.set_forbid_status(&wanted, &mut out).await;
        }
        Ok(out)
    }

    /// By the natural-key field, 100 keys per query (a document with entry rows comes back
    /// once per row).
    async fn existing_targets(
        &self,
        natural_keys: &[String],
    ) -> Result<HashMap<String, TargetRef>, ConnectorError> {
        let c = &self.config;
        let mut found = HashMap::with_capacity(natural_keys.len());
        for chunk in natural_keys.chunks(100) {
            let mut filter = Filter::is_in(&c.natural_key_field, chunk.iter().map(String::as_str));
            if let Some(org) = &c.use_org {
                filter = filter.and(Filter::eq(USE_ORG, org.as_str()));
            }
            let mut fields = vec![
                c.natural_key_field.as_str(),
                c.id_field.as_str(),
                c.number_field.as_str(),
            ];
            // Base data (BD_…) is what gets allocated to organisations; bills have no such
            // fields, and a query naming them would be refused.
            let orgs = c.use_org.is_some() || c.form_id.starts_with("BD_");
            if orgs {
                fields.extend([USE_ORG, CREATE_ORG]);
            }
            let rows: Vec<Vec<Value>> = self
                .client
                .query(&c.form_id)
                .fields(fields)
                .filter(filter)
                // An order keeps pages apart under a server row cap.
                .order_by(format!("{} ASC", c.id_field))
                .pages()
                .collect_all()
                .await
                .map_err(connector_error)?;
            let mut by_key: HashMap<String, Vec<(TargetRef, bool)>> = HashMap::new();
            for row in rows {
                let cell = |i: usize| row.get(i).map(text).unwrap_or_default();
                let number = cell(2);
                let target = TargetRef::new(cell(1), Some(number).filter(|n| !n.is_empty()));
                let original = !orgs || cell(3) == cell(4);
                let key = cell(0);
                let rows = by_key.entry(key).or_default();
                if !rows.iter().any(|(t, _)| *t == target) {
                    rows.push((target, original));
                }
            }
            for (key, mut rows) in by_key {
                if rows.len() > 1 {
                    // Allocated copies share the number: the one its creator uses is the one.
                    rows.retain(|(_, original)| *original);
                }
                match rows.len() {
                    0 => {}
                    1 => {
                        found.insert(key, rows.remove(0).0);
                    }
                    n => {
                        return Err(super::convert::permanent(format!(
                            "{n} {} documents have {} = {key}; the natural key must be unique \
                             (set the flow's use organisation if they are one document \
                             allocated to several organisations)",
                            c.form_id, c.natural_key_field
                        )));
                    }
                }
            }
        }
        Ok(found)
    }

    async fn action(
        &self,
        action: &str,
        targets: &[TargetRef],
    ) -> Result<Vec<ActionOutcome>, ConnectorError> {
        let form = &self.config.form_id;
        let op = match action {
            "Submit" => self.client.submit(form),
            "Audit" => self.client.audit(form),
            "UnAudit" => self.client.unaudit(form),
            "Delete" => self.client.delete(form),
            "CancelAssign" => self.client.cancel_assign(form),
            other => self.client.execute_operation(form, other),
        };
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        let rows = match op.ids(ids.iter().copied()).send().await {
            Ok(result) => result.rows,
            Err(K3Error::Business(b)) => b.rows(targets.len()),
            Err(e) => return Err(connector_error(e)),
        };
        // A re-run after a crash repeats actions that already happened ("单据已经审核"): a
        // document already in the state the action leads to counts as done.
        let already = match action {
            "Submit" => &["B", "C"][..],
            "Audit" => &["C"][..],
            _ => &[][..],
        };
        let failed: Vec<&str> = rows
            .iter()
            .zip(&ids)
            .filter(|(r, _)| !r.is_success())
            .map(|(_, id)| *id)
            .collect();
        let statuses = if failed.is_empty() || already.is_empty() {
            Ok(HashMap::new())
        } else {
            self.statuses(&failed).await
        };
        Ok(rows
            .iter()
            .zip(&ids)
            .map(|(row, id)| match &statuses {
                _ if row.is_success() => ActionOutcome::Done,
                Ok(s) if s.get(*id).is_some_and(|s| already.contains(&s.as_str())) => {
                    ActionOutcome::Done
                }
                Ok(_) => ActionOutcome::Failed {
                    reason: row_reason(row),
                },
                // Refused, and whether because it was done already cannot be read now: it is
                // tried again later rather than left for a person ("单据已经审核" after a crash).
                Err(e) => ActionOutcome::Unknown {
                    reason: format!("{}; its status could not be read: {e}", row_reason(row)),
                },
            })
            .collect())
    }

    /// A bill whose source record is gone is cancelled ([`BillLifecycle`]: closed or deleted
    /// by its state); a document with a forbid status is forbidden; any other is left alone.
    async fn source_gone(
        &self,
        targets: &[TargetRef],
    ) -> Result<Vec<WriteOutcome>, ConnectorError> {
        if let Some(bill) = &self.config.bill {
            let items: Vec<WriteItem> = targets
                .iter()
                .map(|t| WriteItem {
                    source_key: t.id.clone(),
                    natural_key: t.number.clone().unwrap_or_default(),
                    payload: serde_json::json!({ bill.cancel_field(): "B" }),
                    target: Some(t.clone()),
                })
                .collect();
            return self.write_bills(bill, &items).await;
        }
        if self.config.forbid_status_field.is_none() {
            return Ok(targets
                .iter()
                .cloned()
                .map(WriteOutcome::Unchanged)
                .collect());
        }
        // Forbidden by an earlier sweep: nothing to do, and said so.
        let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        let forbidden = self.forbid_statuses(&ids).await?;
        let mut out: Vec<WriteOutcome> = targets
            .iter()
            .map(|t| {
                if forbidden.contains(&t.id) {
                    WriteOutcome::Unchanged(t.clone())
                } else {
                    WriteOutcome::Updated(t.clone())
                }
            })
            .collect();
        let wanted: Vec<Option<bool>> = out
            .iter()
            .map(|o| matches!(o, WriteOutcome::Updated(_)).then_some(true))
            .collect();
        self.set_forbid_status(&wanted, &mut out).await;
        Ok(out)
    }

    async fn describe(&self) -> Result<Option<ObjectDescription>, ConnectorError> {
        let mut form = describe_form(&self.client, &self.config.form_id).await?;
        // Not fields of the form's Save, but what this sink acts on (Forbid and Enable; close or
        // delete).
        let status_keys = [
            self.config.forbid_status_field.as_deref(),
            self.config.bill.as_ref().map(BillLifecycle::cancel_field),
        ];
        for key in status_keys.into_iter().flatten() {
            let mut status = FieldDescription::new(key.to_owned(), FieldKind::Text);
            status.options = vec!["A".into(), "B".into()];
            form.fields.insert(key.to_owned(), status);
        }
        Ok(Some(form))
    }
}

impl FormSink {
    /// Every item saved (creates, then updates grouped by the fields they set), one outcome
    /// per item.
    async fn save_all(&self, items: &[WriteItem]) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let mut out: Vec<Option<WriteOutcome>> = vec![None; items.len()];
        let mut creates = (Vec::new(), Vec::new());
        // Updates grouped by the fields they set.
        let mut updates: BTreeMap<Vec<String>, (Vec<Value>, Vec<usize>)> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            match (&item.target, self.config.update_policy) {
                (None, _) => {
                    creates.0.push(item.payload.clone());
                    creates.1.push(i);
                }
                (Some(target), UpdatePolicy::Refuse) => {
                    out[i] = Some(WriteOutcome::Failed {
                        reason: format!(
                            "{} {} already exists in K3Cloud and this flow does not update it; \
                             change it in the ERP",
                            self.config.form_id,
                            target.number.as_deref().unwrap_or(&target.id)
                        ),
                        retryable: false,
                    });
                }
                (Some(target), UpdatePolicy::MappedFields { replace_entries }) => {
                    let packet = self.update_packet(item, target, replace_entries);
                    let group = updates
                        .entry(field_keys(&packet, &self.config.id_field))
                        .or_default();
                    group.0.push(packet);
                    group.1.push(i);
                }
            }
        }
        let replace_entries = matches!(
            self.config.update_policy,
            UpdatePolicy::MappedFields {
                replace_entries: true
            }
        );
        let mut sent = false;
        if !creates.0.is_empty() {
            self.save(creates.0, &creates.1, None, items, &mut out, sent)
                .await?;
            sent = true;
        }
        for (fields, (models, indices)) in updates {
            self.save(
                models,
                &indices,
                Some((fields, replace_entries)),
                items,
                &mut out,
                sent,
            )
            .await?;
            sent = true;
        }
        Ok(settled(out))
    }

    /// Forbids the saved documents that must be forbidden and are not, and enables the updated
    /// ones that must be in use and are forbidden (one status query first). A record whose status could not be set becomes a
    /// retryable failure.
    async fn set_forbid_status(&self, wanted: &[Option<bool>], out: &mut [WriteOutcome]) {
        let saved = |i: usize| match &out[i] {
            WriteOutcome::Created(t) | WriteOutcome::Updated(t) => Some(t.clone()),
            _ => None,
        };
        let mut forbid = Vec::new();
        let mut enable = Vec::new();
        for (i, w) in wanted.iter().enumerate() {
            match (w, saved(i), &out[i]) {
                (Some(true), Some(t), _) => forbid.push((i, t)),
                // A new document is in use: only an updated one may have been forbidden.
                (Some(false), Some(t), WriteOutcome::Updated(_)) => enable.push((i, t)),
                _ => {}
            }
        }
        // Only documents not yet in the wanted state: whether a server refuses to forbid a
        // forbidden document is not recorded, and a retry after a lost answer must not fail
        // for ever on "already forbidden".
        if !forbid.is_empty() || !enable.is_empty() {
            let ids: Vec<&str> = forbid
                .iter()
                .chain(&enable)
                .map(|(_, t)| t.id.as_str())
                .collect();
            match self.forbid_statuses(&ids).await {
                Ok(forbidden) => {
                    forbid.retain(|(_, t)| !forbidden.contains(&t.id));
                    enable.retain(|(_, t)| forbidden.contains(&t.id));
                }
                Err(e) => {
                    for (i, _) in forbid.drain(..).chain(enable.drain(..)) {
                        out[i] = status_not_set(&e.to_string());
                    }
                }
            }
        }
        for (op, group) in [("Forbid", forbid), ("Enable", enable)] {
            if group.is_empty() {
                continue;
            }
            let targets: Vec<TargetRef> = group.iter().map(|(_, t)| t.clone()).collect();
            match self.action(op, &targets).await {
                Ok(outcomes) => {
                    for ((i, _), outcome) in group.iter().zip(outcomes) {
                        match outcome {
                            ActionOutcome::Done => {}
                            ActionOutcome::Failed { reason }
                            | ActionOutcome::Unknown { reason } => {
                                out[*i] = status_not_set(&format!("{op}: {reason}"));
                            }
                        }
                    }
                }
                Err(e) => {
                    for (i, _) in &group {
                        out[*i] = status_not_set(&format!("{op}: {e}"));
                    }
                }
            }
        }
    }

    /// The ids among `ids` whose document is forbidden (`FForbidStatus` B).
    async fn forbid_statuses(&self, ids: &[&str]) -> Result<BTreeSet<String>, ConnectorError> {
        let statuses = self.by_id(ids, "FForbidStatus").await?;
        Ok(statuses
            .into_iter()
            .filter(|(_, status)| status == "B")
            .map(|(id, _)| id)
            .collect())
    }
}

/// The items without the status `key` (forbid or cancel status), and the status each wants
/// (`true`: `"B"`, forbidden or cancelled).
pub(super) fn take_status(key: &str, items: &[WriteItem]) -> (Vec<WriteItem>, Vec<Option<bool>>) {
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            let wanted = match &mut item.payload {
                Value::Object(fields) => fields.remove(key).map(|v| text(&v) == "B"),
                _ => None,
            };
            (item, wanted)
        })
        .unzip()
}

/// Every item's outcome; one the sink did not settle is unknown (looked up before anything is
/// sent again).
pub(super) fn settled(out: Vec<Option<WriteOutcome>>) -> Vec<WriteOutcome> {
    out.into_iter()
        .map(|o| {
            o.unwrap_or(WriteOutcome::Unknown {
                reason: "no outcome".into(),
            })
        })
        .collect()
}

/// A saved record whose forbid status could not be set: tried again (save and status) later.
fn status_not_set(reason: &str) -> WriteOutcome {
    WriteOutcome::Failed {
        reason: format!("saved, but its forbid status was not set: {reason}"),
        retryable: true,
    }
}
