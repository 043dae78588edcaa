//! Bills (orders) whose source record keeps changing after they reached the ERP: edits saved
//! according to the bill's status, cancellations closed or deleted according to it.

use std::collections::{BTreeMap, HashMap};

use k3cloud_sdk::Filter;
use serde_json::{Map, Value};

use super::convert::connector_error;
use super::sink::{FormSink, field_keys, id_value, settled, take_status};
use crate::error::ConnectorError;
use crate::json::text;
use crate::sink::{ActionOutcome, Sink, TargetRef, WriteItem, WriteOutcome};

/// What to do when a bill that is audited (审核) or submitted (审核中) in the ERP is edited in
/// the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuditedEdits {
    /// Refuse it with the reason (a dead letter for a person): the ERP's people change the
    /// bill there, or un-audit it so that the next run saves the edit.
    #[default]
    Refuse,
    /// Take an audited bill back to draft (UnAudit), save the edit, then Submit and Audit it
    /// again. A bill found in 重新审核 (un-audited) is saved and audited again too: that is where
    /// an interrupted re-audit leaves it. Never for a bill with downstream documents, nor for
    /// one submitted for approval (审核中), which is refused as under `Refuse`.
    Reaudit,
}

/// What to do when the source record of a bill is cancelled (invalidated, 作废).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Cancellations {
    /// By its state: a bill not yet audited is deleted (withdrawn first when submitted), an
    /// audited one is closed (CloseBill, 关闭). A record recovered later reopens its closed bill
    /// (UnCloseBill) or, when it was deleted, is created again.
    #[default]
    CloseOrDelete,
    /// Refuse it with the reason (a dead letter for a person), leaving the bill as it is.
    Report,
}

/// How a [`FormSink`] keeps bills in step with records that are edited and cancelled after the
/// first save (see [`FormSinkConfig::bill_lifecycle`](super::FormSinkConfig::bill_lifecycle)).
///
/// ```
/// use sync_core::k3cloud::{AuditedEdits, BillLifecycle, FormSinkConfig};
///
/// let orders = FormSinkConfig::new("SAL_SaleOrder", "FID", "FBillNo").bill_lifecycle(
///     BillLifecycle::new("FCancelStatus")
///         .audited_edits(AuditedEdits::Reaudit)
///         .lines("FSaleOrderEntry", "F_CRM_LineId")
///         .downstream("SAL_OUTSTOCK", "FSoorDerno", "FEntity"),
/// );
/// # let _ = orders;
/// ```
#[derive(Debug, Clone)]
pub struct BillLifecycle {
    cancel_field: String,
    audited: AuditedEdits,
    cancellations: Cancellations,
    lines: Option<(String, String)>,
    downstream: Vec<(String, String, String)>,
}

impl BillLifecycle {
    /// Bills whose mapping sets `cancel_field` (for example `FCancelStatus`) to `"B"` when the
    /// source record is cancelled and `"A"` when it is in force. The key is never sent in a
    /// Save; it says what to do with the bill.
    pub fn new(cancel_field: impl Into<String>) -> Self {
        Self {
            cancel_field: cancel_field.into(),
            audited: AuditedEdits::default(),
            cancellations: Cancellations::default(),
            lines: None,
            downstream: Vec::new(),
        }
    }

    /// The payload key that says whether the source record is cancelled.
    pub fn cancel_field(&self) -> &str {
        &self.cancel_field
    }

    /// What to do with edits of audited bills (default: refuse).
    pub fn audited_edits(mut self, policy: AuditedEdits) -> Self {
        self.audited = policy;
        self
    }

    /// What to do with cancelled records (default: close or delete by state).
    pub fn cancellations(mut self, policy: Cancellations) -> Self {
        self.cancellations = policy;
        self
    }

    /// The entry (`FSaleOrderEntry`) whose rows are the source's lines, and the row field the
    /// mapping fills with the source line's id (a custom field such as `F_CRM_LineId`). An
    /// edit then updates the rows whose line it finds (by their `FEntryID`, so the ERP's own
    /// values on them stay), adds new lines and removes the rows of lines gone from the source.
    /// Without it, an edit replaces the rows.
    pub fn lines(mut self, entity: impl Into<String>, key_field: impl Into<String>) -> Self {
        self.lines = Some((entity.into(), key_field.into()));
        self
    }

    /// A form whose documents are made from these bills (`SAL_OUTSTOCK`), its field that
    /// holds the bill's number (`FSoorDerno`) and the entry that field is on (`FEntity`). An
    /// audited bill with such a document is never edited from the source, nor reopened: the edit
    /// is refused with the documents' numbers.
    pub fn downstream(
        mut self,
        form: impl Into<String>,
        number_field: impl Into<String>,
        entry: impl Into<String>,
    ) -> Self {
        self.downstream
            .push((form.into(), number_field.into(), entry.into()));
        self
    }
}

/// A bill as the ERP holds it now.
#[derive(Debug, Default)]
struct BillState {
    number: String,
    status: String,
    closed: bool,
    /// Source line id → entry id.
    lines: HashMap<String, Value>,
}

/// What one existing bill needs.
#[derive(Debug)]
enum Plan {
    Close,
    /// Reopened (UnCloseBill), nothing saved.
    Reopen,
    /// Deleted, withdrawn first when submitted.
    Delete {
        withdraw: bool,
    },
    /// Saved; reopened first when `reopen`, un-audited first when `unaudit`, and audited again
    /// afterwards when `reaudit`.
    Save {
        reopen: bool,
        unaudit: bool,
        reaudit: bool,
    },
}

impl FormSink {
    /// [`Sink::write`] for a form with a [`BillLifecycle`].
    pub(super) async fn write_bills(
        &self,
        bill: &BillLifecycle,
        items: &[WriteItem],
    ) -> Result<Vec<WriteOutcome>, ConnectorError> {
        let (items, cancel) = take_status(&bill.cancel_field, items);
        let mut out: Vec<Option<WriteOutcome>> = vec![None; items.len()];
        let mut creates = Vec::new();
        let mut existing = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match (&item.target, cancel[i]) {
                // Cancelled before it ever reached the ERP: nothing to create.
                (None, Some(true)) => {
                    out[i] = Some(WriteOutcome::Skipped {
                        reason: format!(
                            "cancelled in the source and not in {}: not created",
                            self.form_id()
                        ),
                    });
                }
                (None, _) => creates.push(i),
                (Some(_), _) => existing.push(i),
            }
        }
        let mut sent = false;
        if !creates.is_empty() {
            let models = creates.iter().map(|&i| items[i].payload.clone()).collect();
            self.save(models, &creates, None, &items, &mut out, false)
                .await?;
            sent = true;
        }
        if !existing.is_empty() {
            self.change_bills(bill, &items, &cancel, &existing, &mut out, sent)
                .await?;
        }
        Ok(settled(out))
    }

    /// Edits and cancellations of bills that exist: their state is read first (one query),
    /// then each gets what its state calls for.
    async fn change_bills(
        &self,
        bill: &BillLifecycle,
        items: &[WriteItem],
        cancel: &[Option<bool>],
        existing: &[usize],
        out: &mut [Option<WriteOutcome>],
        sent: bool,
    ) -> Result<(), ConnectorError> {
        let target = |i: usize| {
            items[i]
                .target
                .clone()
                .unwrap_or_else(|| TargetRef::new("", None))
        };
        let ids: Vec<String> = existing.iter().map(|&i| target(i).id).collect();
        let states = match self.bill_states(bill, &ids).await {
            Ok(states) => states,
            Err(e) if !sent => return Err(e),
            Err(e) => {
                for &i in existing {
                    out[i] = Some(retry_later(format!(
                        "its ERP status could not be read: {e}"
                    )));
                }
                return Ok(());
            }
        };
        // Audited bills being edited: their downstream documents, if any, refuse the edit.
        let audited_edits: Vec<String> = existing
            .iter()
            .filter(|&&i| cancel[i] != Some(true))
            .filter_map(|&i| states.get(&target(i).id))
            .filter(|s| s.status == "C")
            .map(|s| s.number.clone())
            .collect();
        let downstream = if audited_edits.is_empty() {
            BTreeMap::new()
        } else {
            match self.downstream_of(bill, &audited_edits).await {
                Ok(d) => d,
                Err(e) => {
                    for &i in existing {
                        out[i] = Some(retry_later(format!(
                            "its downstream documents could not be read: {e}"
                        )));
                    }
                    return Ok(());
                }
            }
        };
        let mut plans: Vec<(usize, Plan)> = Vec::new();
        for &i in existing {
            let t = target(i);
            let Some(state) = states.get(&t.id) else {
                out[i] = Some(if cancel[i] == Some(true) {
                    WriteOutcome::Removed(t)
                } else {
                    WriteOutcome::Failed {
                        reason: format!(
                            "{} {} is no longer in K3Cloud (deleted there); remove it from the \
                             ID map (fxk3 rebuild) to create it again",
                            self.form_id(),
                            t.number.as_deref().unwrap_or(&t.id)
                        ),
                        retryable: false,
                    }
                });
                continue;
            };
            match self.plan(bill, &t, state, cancel[i], downstream.get(&state.number)) {
                Ok(plan) => plans.push((i, plan)),
                Err(outcome) => out[i] = Some(outcome),
            }
        }
        self.carry_out(bill, items, plans, &states, out).await;
        Ok(())
    }

    /// What `state` needs for the source record's cancel status `cancelled`, or the outcome
    /// when it needs nothing (or must be refused).
    fn plan(
        &self,
        bill: &BillLifecycle,
        target: &TargetRef,
        state: &BillState,
        cancelled: Option<bool>,
        downstream: Option<&Vec<String>>,
    ) -> Result<Plan, WriteOutcome> {
        let name = format!("{} {}", self.form_id(), state.number);
        if cancelled == Some(true) {
            if bill.cancellations == Cancellations::Report {
                return Err(refuse(format!(
                    "cancelled in the source; this flow reports cancellations and leaves {name} \
                     as it is: close or delete it in the ERP"
                )));
            }
            return match state.status.as_str() {
                "C" if state.closed => Err(WriteOutcome::Unchanged(target.clone())),
                "C" => Ok(Plan::Close),
                "B" => Ok(Plan::Delete { withdraw: true }),
                _ => Ok(Plan::Delete { withdraw: false }),
            };
        }
        let edit = edit_plan(bill, state, &name, downstream);
        if !state.closed {
            return edit;
        }
        if cancelled.is_none() {
            return Err(refuse(format!(
                "{name} is closed in the ERP; reopen it there to take edits from the source"
            )));
        }
        // Closed, and the record is in force: the order was closed by a cancellation since
        // recovered — or closed in the ERP by its people. One that shipped is theirs to reopen.
        if let Some(docs) = downstream {
            return Err(refuse(format!(
                "{name} is closed in the ERP and has downstream documents ({}); it is not \
                 reopened from the source: reopen it there if the order goes on",
                docs.join(", ")
            )));
        }
        // Reopened, and the edit saved where the policy allows it. Under `Refuse` an audited
        // order is only reopened: a recovery is not an edit of its audited content, and
        // nothing here tells a recovery from a recovery with other changes (documented).
        Ok(match edit {
            Ok(Plan::Save {
                unaudit, reaudit, ..
            }) => Plan::Save {
                reopen: true,
                unaudit,
                reaudit,
            },
            _ => Plan::Reopen,
        })
    }

    /// Runs the plans: reopen, close, withdraw and delete, take back to draft, save, audit
    /// again. A step that fails leaves the record failed (retryable: its next attempt reads the
    /// state again and carries on from there).
    async fn carry_out(
        &self,
        bill: &BillLifecycle,
        items: &[WriteItem],
        plans: Vec<(usize, Plan)>,
        states: &HashMap<String, BillState>,
        out: &mut [Option<WriteOutcome>],
    ) {
        let target = |i: usize| {
            items[i]
                .target
                .clone()
                .unwrap_or_else(|| TargetRef::new("", None))
        };
        let pick = |f: &dyn Fn(&Plan) -> bool| -> Vec<usize> {
            plans
                .iter()
                .filter(|(_, p)| f(p))
                .map(|(i, _)| *i)
                .collect()
        };
        let reopen = pick(&|p| matches!(p, Plan::Reopen | Plan::Save { reopen: true, .. }));
        self.step("UnCloseBill", &reopen, items, out).await;
        for i in pick(&|p| matches!(p, Plan::Reopen)) {
            out[i].get_or_insert(WriteOutcome::Updated(target(i)));
        }
        let close = pick(&|p| matches!(p, Plan::Close));
        self.step("CloseBill", &close, items, out).await;
        for i in close {
            out[i].get_or_insert(WriteOutcome::Updated(target(i)));
        }
        let withdraw = pick(&|p| matches!(p, Plan::Delete { withdraw: true }));
        self.step("CancelAssign", &withdraw, items, out).await;
        let delete = alive(out, pick(&|p| matches!(p, Plan::Delete { .. })));
        self.step("Delete", &delete, items, out).await;
        for i in delete {
            out[i].get_or_insert(WriteOutcome::Removed(target(i)));
        }
        let unaudit = alive(
            out,
            pick(&|p| matches!(p, Plan::Save { unaudit: true, .. })),
        );
        self.step("UnAudit", &unaudit, items, out).await;
        // Those that went back to draft are audited again whatever their save's outcome: a
        // refused edit must not leave an order un-audited.
        let reaudit: Vec<usize> = alive(
            out,
            pick(&|p| matches!(p, Plan::Save { reaudit: true, .. })),
        );
        let saves = alive(out, pick(&|p| matches!(p, Plan::Save { .. })));
        self.save_edits(bill, items, &saves, states, out).await;
        if reaudit.is_empty() {
            return;
        }
        let mut failed: HashMap<usize, String> = HashMap::new();
        for op in ["Submit", "Audit"] {
            let group: Vec<usize> = reaudit
                .iter()
                .copied()
                .filter(|i| !failed.contains_key(i))
                .collect();
            for (i, reason) in self.run_action(op, &group, items).await {
                failed.insert(i, format!("{op}: {reason}"));
            }
        }
        for (i, reason) in failed {
            let before = match &out[i] {
                Some(WriteOutcome::Failed { reason, .. }) => format!("{reason}; "),
                _ => "saved, but ".into(),
            };
            out[i] = Some(retry_later(format!("{before}not audited again: {reason}")));
        }
    }

    /// Runs `op` on the bills of `group`; those it fails for get a retryable failure.
    async fn step(
        &self,
        op: &str,
        group: &[usize],
        items: &[WriteItem],
        out: &mut [Option<WriteOutcome>],
    ) {
        let group: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&i| out[i].is_none())
            .collect();
        for (i, reason) in self.run_action(op, &group, items).await {
            out[i] = Some(retry_later(format!("{op}: {reason}")));
        }
    }

    /// Runs `op` on the bills of `group`: the ones it failed for, with the reason.
    async fn run_action(
        &self,
        op: &str,
        group: &[usize],
        items: &[WriteItem],
    ) -> Vec<(usize, String)> {
        if group.is_empty() {
            return Vec::new();
        }
        let targets: Vec<TargetRef> = group
            .iter()
            .filter_map(|&i| items[i].target.clone())
            .collect();
        match self.action(op, &targets).await {
            Ok(outcomes) => group
                .iter()
                .zip(outcomes)
                .filter_map(|(&i, o)| match o {
                    ActionOutcome::Done => None,
                    ActionOutcome::Failed { reason } | ActionOutcome::Unknown { reason } => {
                        Some((i, reason))
                    }
                })
                .collect(),
            Err(e) => group.iter().map(|&i| (i, e.to_string())).collect(),
        }
    }

    /// Saves the edits of `group`: the mapped fields only (`NeedUpDateFields`), entry rows
    /// matched to the ERP's by the source line ids.
    async fn save_edits(
        &self,
        bill: &BillLifecycle,
        items: &[WriteItem],
        group: &[usize],
        states: &HashMap<String, BillState>,
        out: &mut [Option<WriteOutcome>],
    ) {
        let mut by_fields: BTreeMap<Vec<String>, (Vec<Value>, Vec<usize>)> = BTreeMap::new();
        for &i in group {
            let Some(t) = &items[i].target else { continue };
            let packet = self.edit_packet(bill, &items[i].payload, t, states.get(&t.id));
            let fields = field_keys(&packet, self.id_field())
                .into_iter()
                .filter(|k| !k.eq_ignore_ascii_case("FEntryID"))
                .collect();
            let g = by_fields.entry(fields).or_default();
            g.0.push(packet);
            g.1.push(i);
        }
        for (fields, (models, indices)) in by_fields {
            // `sent` is true: a call that fails as a whole fails its records, and the ones
            // before it keep their outcomes.
            if let Err(e) = self
                .save(models, &indices, Some((fields, true)), items, out, true)
                .await
            {
                for &i in &indices {
                    out[i] = Some(retry_later(e.to_string()));
                }
            }
        }
    }

    /// The update packet of an edit: the bill's id, the mapped fields, and entry rows that carry
    /// the `FEntryID` of the ERP row of their source line.
    fn edit_packet(
        &self,
        bill: &BillLifecycle,
        payload: &Value,
        target: &TargetRef,
        state: Option<&BillState>,
    ) -> Value {
        let mut packet = Map::new();
        packet.insert(self.id_field().to_owned(), id_value(&target.id));
        let Value::Object(fields) = payload else {
            return Value::Object(packet);
        };
        for (key, value) in fields {
            if key == self.id_field() {
                continue;
            }
            let value = match (&bill.lines, value, state) {
                (Some((entity, line_key)), Value::Array(rows), Some(state)) if key == entity => {
                    Value::Array(
                        rows.iter()
                            .map(|row| {
                                let mut row = row.clone();
                                let entry_id = row
                                    .get(line_key)
                                    .map(text)
                                    .and_then(|line| state.lines.get(&line));
                                if let (Some(id), Value::Object(r)) = (entry_id, &mut row) {
                                    r.insert("FEntryID".into(), id.clone());
                                }
                                row
                            })
                            .collect(),
                    )
                }
                _ => value.clone(),
            };
            packet.insert(key.clone(), value);
        }
        Value::Object(packet)
    }

    /// The state of the bills `ids`, by id (bills no longer in the ERP are left out).
    async fn bill_states(
        &self,
        bill: &BillLifecycle,
        ids: &[String],
    ) -> Result<HashMap<String, BillState>, ConnectorError> {
        let mut fields = vec![
            self.id_field().to_owned(),
            self.number_field().to_owned(),
            "FDocumentStatus".to_owned(),
            "FCloseStatus".to_owned(),
        ];
        if let Some((entity, key)) = &bill.lines {
            fields.push(format!("{entity}_FEntryID"));
            fields.push(key.clone());
        }
        let order = match &bill.lines {
            Some((entity, _)) => format!("{} ASC, {entity}_FEntryID ASC", self.id_field()),
            None => format!("{} ASC", self.id_field()),
        };
        let mut states: HashMap<String, BillState> = HashMap::new();
        for chunk in ids.chunks(100) {
            let rows: Vec<Vec<Value>> = self
                .client()
                .query(self.form_id())
                .fields(fields.iter().map(String::as_str))
                .filter(Filter::is_in(
                    self.id_field(),
                    chunk.iter().map(String::as_str),
                ))
                // One row per line: paged in (id, entry id) order, a unique key, so that a page
                // boundary neither skips nor repeats a line.
                .order_by(order.clone())
                .pages()
                .collect_all()
                .await
                .map_err(connector_error)?;
            for row in rows {
                let cell = |i: usize| row.get(i).map(text).unwrap_or_default();
                let state = states.entry(cell(0)).or_default();
                state.number = cell(1);
                state.status = cell(2);
                state.closed = cell(3) == "B";
                if let (Some(entry), Some(line)) = (row.get(4), row.get(5).map(text))
                    && !line.is_empty()
                    && !entry.is_null()
                {
                    state.lines.insert(line, entry.clone());
                }
            }
        }
        Ok(states)
    }

    /// The downstream documents of the bills `numbers`: bill number → their numbers.
    async fn downstream_of(
        &self,
        bill: &BillLifecycle,
        numbers: &[String],
    ) -> Result<BTreeMap<String, Vec<String>>, ConnectorError> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (form, field, entry) in &bill.downstream {
            for chunk in numbers.chunks(100) {
                let rows: Vec<(Value, Value)> = self
                    .client()
                    .query(form)
                    .fields([field.as_str(), "FBillNo"])
                    .filter(Filter::is_in(field, chunk.iter().map(String::as_str)))
                    // One row per line: a unique order keeps offset pages apart.
                    .order_by(format!("FID ASC, {entry}_FEntryID ASC"))
                    .pages()
                    .collect_all()
                    .await
                    .map_err(connector_error)?;
                for (order, doc) in rows {
                    let docs = found.entry(text(&order)).or_default();
                    let doc = format!("{form} {}", text(&doc));
                    if !docs.contains(&doc) {
                        docs.push(doc);
                    }
                }
            }
        }
        Ok(found)
    }
}

/// How an edit of a bill in force is made, by its status.
fn edit_plan(
    bill: &BillLifecycle,
    state: &BillState,
    name: &str,
    downstream: Option<&Vec<String>>,
) -> Result<Plan, WriteOutcome> {
    let reaudit = bill.audited == AuditedEdits::Reaudit;
    let save = |unaudit, reaudit| Plan::Save {
        reopen: false,
        unaudit,
        reaudit,
    };
    match state.status.as_str() {
        "C" => {
            if let Some(docs) = downstream {
                return Err(refuse(format!(
                    "{name} has downstream documents ({}); the edit is not made: change it in \
                     the ERP",
                    docs.join(", ")
                )));
            }
            if !reaudit {
                return Err(refuse(format!(
                    "{name} is audited in the ERP and this flow does not change audited bills: \
                     change it there, or un-audit it there and retry this record"
                )));
            }
            Ok(save(true, true))
        }
        // Never taken back under `Reaudit` either: CancelAssign leaves a draft that nothing
        // tells apart from one never submitted, so an interrupted re-submit would be lost.
        "B" => Err(refuse(format!(
            "{name} is submitted for approval (审核中) in the ERP and this flow does not change \
             it: withdraw (撤销) or audit it there, then retry this record"
        ))),
        "D" => Ok(save(false, reaudit)),
        _ => Ok(save(false, false)),
    }
}

/// The members of `group` that have no outcome yet.
fn alive(out: &[Option<WriteOutcome>], group: Vec<usize>) -> Vec<usize> {
    group.into_iter().filter(|&i| out[i].is_none()).collect()
}

/// A refusal a person has to look at.
fn refuse(reason: String) -> WriteOutcome {
    WriteOutcome::Failed {
        reason,
        retryable: false,
    }
}

/// A failure the next attempt may get past (it reads the bill's state again).
fn retry_later(reason: String) -> WriteOutcome {
    WriteOutcome::Failed {
        reason,
        retryable: true,
    }
}
