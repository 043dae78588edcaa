//! The form services: reads (View, queries, metadata) and writes (the save family, status operations, Push, the rest), with their packets' options.

use std::sync::Arc;

use base64::Engine as _;

use serde_json::{Map, Value, json};

use super::envelope::{Envelope, Failure, OrderedRow, ResponseStatus, SuccessEntity};
use super::store::{K3Data, SaveOpts, StatusOp};
use super::wire::{Params, flag, get_ci, numbers_and_ids, scalar_string};
use crate::config::K3Release;
use crate::reply::Reply;

use super::forms::{ORG, OUTSTOCK, SALE_ORDER};
use super::{
    K3Sim, K3State, error_reply, form_arg, forms, is_read_only, not_found, query, store, wire,
};

impl K3Sim {
    /// The operations that only read ([`is_read_only`]): they run under the shared lock,
    /// side by side.
    pub(super) fn read_form(&self, st: &K3State, method: &str, path: &str, p: &Params) -> Reply {
        let data_at = |i: usize| p.data(i).map_err(|e| Failure::new(8, None, e));
        let result: Result<Reply, Failure> = (|| match method {
            "QueryAsyncResult" => {
                let info = p
                    .get(0, "queryInfo")
                    .map(wire::as_object)
                    .transpose()
                    .map_err(|e| Failure::new(8, None, e))?
                    .unwrap_or_default();
                let task = get_ci(&info, "TaskId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                match st.tasks.get(&task) {
                    Some(result) => Ok(Reply::json(
                        &json!({"TaskId": task, "Status": 2, "Result": result}),
                    )),
                    None => Err(Failure::new(10, None, format!("任务“{task}”不存在。"))),
                }
            }
            "View" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                let number = get_ci(&data, "Number")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let id = get_ci(&data, "Id")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let table = st
                    .data
                    .table(form)
                    .ok_or_else(|| store::unknown_form(form))?;
                let bill = if id.trim().is_empty() || id.trim() == "0" {
                    table.by_number(number.trim())
                } else {
                    id.trim()
                        .parse::<i64>()
                        .ok()
                        .and_then(|id| table.bills.get(&id))
                };
                match bill {
                    Some(bill) => {
                        let view = st.data.view(form, bill);
                        let status = match self.config.release {
                            K3Release::Legacy => Value::Null,
                            // Assumed: the shape of every other success, without entities.
                            _ => serde_json::to_value(ResponseStatus::ok(Vec::new()))
                                .unwrap_or(Value::Null),
                        };
                        Ok(Reply::json(
                            &json!({"Result": {"ResponseStatus": status, "Result": view}}),
                        ))
                    }
                    None if number.trim().is_empty() && id.trim().is_empty() => {
                        Err(Failure::new(8, None, "请传入单据编码Number或单据内码Id。"))
                    }
                    // Not in the reference; wording ours, MsgCode 10 未找到对应数据.
                    None => Err(Failure::new(
                        10,
                        None,
                        format!(
                            "{}不存在：编码“{}”内码“{}”。",
                            table.def.name,
                            number.trim(),
                            id.trim()
                        ),
                    )),
                }
            }
            "ExecuteBillQuery" | "BillQuery" => {
                let data = data_at(0)?;
                let result = query::run(
                    &st.data,
                    &data,
                    self.config.max_query_rows,
                    &self.order_cache,
                )?;
                if method == "BillQuery" {
                    let rows: Vec<OrderedRow<'_>> = result
                        .rows
                        .into_iter()
                        .map(|values| OrderedRow {
                            keys: &result.keys,
                            values,
                        })
                        .collect();
                    Ok(Reply::json(&rows))
                } else {
                    Ok(Reply::json(&result.rows))
                }
            }
            "QueryBusinessInfo" => {
                let data = data_at(0)?;
                let form = get_ci(&data, "FormId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let table = st
                    .data
                    .table(&form)
                    .ok_or_else(|| store::unknown_form(&form))?;
                Ok(Reply::json(&business_info(table)))
            }
            "SwitchOrg" => {
                let data = data_at(0)?;
                let org = get_ci(&data, "OrgNumber")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let table = st.data.table(ORG).ok_or_else(|| store::unknown_form(ORG))?;
                match table.by_number(&org) {
                    Some(b) => Ok(Reply::json(&Envelope::new(ResponseStatus::ok(vec![
                        SuccessEntity {
                            id: b.id,
                            number: b.number.clone(),
                            d_index: 0,
                        },
                    ])))),
                    None => Err(Failure::new(10, None, format!("组织“{org}”不存在。"))),
                }
            }
            "AttachmentDownLoad" => {
                let data = data_at(0)?;
                let file_id = get_ci(&data, "FileId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let (name, bytes) =
                    st.data.attachments.get(&file_id).cloned().ok_or_else(|| {
                        Failure::new(10, None, format!("附件“{file_id}”不存在。"))
                    })?;
                Ok(Reply::json(
                    &Envelope::new(ResponseStatus::ok(Vec::new()))
                        .with("FileName", Value::from(name))
                        .with("FileSize", Value::from(bytes.len()))
                        .with(
                            "FilePart",
                            Value::from(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                        )
                        .with("IsLast", Value::from(true))
                        .with("StartIndex", Value::from(0)),
                ))
            }
            _ => Ok(not_found(path)),
        })();
        result.unwrap_or_else(|failure| error_reply(method, failure))
    }

    #[allow(clippy::too_many_lines)]
    pub(super) fn dynamic_form(
        &self,
        st: &mut K3State,
        method: &str,
        path: &str,
        p: &Params,
        now_ms: i64,
    ) -> Reply {
        if is_read_only(method) {
            return self.read_form(st, method, path, p);
        }
        let data_at = |i: usize| p.data(i).map_err(|e| Failure::new(8, None, e));
        let result: Result<Reply, Failure> = (|| match method {
            "Save" | "Draft" | "BatchSave" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                let envelope = save_call(&mut st.data, form, &data, method, now_ms);
                let rows = get_ci(&data, "Model").map_or(0, |m| m.as_array().map_or(1, Vec::len));
                if p.raw_top.contains_key("beginmethod") {
                    // Async "QUERY" mode (k3cloud.md §5.9): the sandbox finishes at once.
                    let task = st.rng.uuid();
                    let result = serde_json::to_value(&envelope).unwrap_or(Value::Null);
                    st.tasks.insert(task.clone(), result.clone());
                    return Ok(Reply::json(
                        &json!({"TaskId": task, "Status": 2, "Result": result}),
                    )
                    .with_rows(rows));
                }
                Ok(Reply::json(&envelope).with_rows(rows))
            }
            "Delete" | "Submit" | "Audit" | "UnAudit" | "CancelAssign" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                let (numbers, ids) = numbers_and_ids(&data);
                let op = match method {
                    "Delete" => StatusOp::Delete,
                    "Submit" => StatusOp::Submit,
                    "Audit" => StatusOp::Audit,
                    "UnAudit" => StatusOp::UnAudit,
                    _ => StatusOp::CancelAssign,
                };
                let status = st.data.transition(form, op, &numbers, &ids, now_ms);
                Ok(Reply::json(&Envelope::new(status)))
            }
            "ExcuteOperation" | "ExecuteOperation" => {
                let form = form_arg(&st.data, p)?;
                let op_number = p.string(1, "opNumber").unwrap_or_default();
                let data = data_at(2)?;
                let op = match op_number.to_ascii_lowercase().as_str() {
                    "" => return Err(Failure::new(3, None, "操作标识为空，请传入opNumber参数。")),
                    "forbid" => StatusOp::Forbid,
                    "enable" => StatusOp::Enable,
                    "closebill" => StatusOp::Close,
                    "unclosebill" => StatusOp::UnClose,
                    "cancel" | "uncancel" | "closeentry" | "uncloseentry" | "donothing" => {
                        StatusOp::NoOp
                    }
                    _ => {
                        return Err(Failure::new(
                            4,
                            None,
                            format!("sandbox 未模拟操作“{op_number}”。"),
                        ));
                    }
                };
                let (numbers, ids) = numbers_and_ids(&data);
                Ok(Reply::json(&Envelope::new(
                    st.data.transition(form, op, &numbers, &ids, now_ms),
                )))
            }
            "Push" => {
                let form = form_arg(&st.data, p)?;
                let data = data_at(1)?;
                Ok(Reply::json(&push(&mut st.data, form, &data, now_ms)))
            }
            "WorkflowAudit" => Ok(Reply::json(
                &Envelope::new(ResponseStatus::ok(Vec::new())).with("OperationResults", json!([])),
            )),
            "GetSysReportData" => Ok(Reply::json(
                &json!({"Result": {"IsSuccess": true, "RowCount": 0, "Rows": []}}),
            )),
            "AttachmentUpload" => {
                let data = data_at(0)?;
                let name = get_ci(&data, "FileName")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let chunk = get_ci(&data, "SendByte")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                let mut file_id = get_ci(&data, "FileId")
                    .and_then(scalar_string)
                    .unwrap_or_default();
                if file_id.is_empty() {
                    file_id = st.rng.hex(32);
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(chunk.trim())
                    .map_err(|_| Failure::new(8, None, "SendByte 不是合法的Base64。"))?;
                let entry = st
                    .data
                    .attachments
                    .entry(file_id.clone())
                    .or_insert_with(|| (name.clone(), Vec::new()));
                entry.1.extend(bytes);
                Ok(Reply::json(
                    &Envelope::new(ResponseStatus::ok(Vec::new()))
                        .with("FileId", Value::from(file_id))
                        .with("FileName", Value::from(name))
                        .with("Message", Value::from("")),
                ))
            }
            // Operations whose parameters the reference only knows as placeholders: the
            // sandbox checks the form when one is given and answers the success envelope.
            "Allocate" | "CancelAllocate" | "FlexSave" | "GroupSave" | "Disassembly"
            | "SendMsg" | "QueryGroupInfo" | "GroupDelete" => {
                if p.get(0, "formid").is_some()
                    && method != "SendMsg"
                    && method != "QueryGroupInfo"
                    && method != "GroupDelete"
                {
                    form_arg(&st.data, p)?;
                }
                Ok(Reply::json(&Envelope::new(ResponseStatus::ok(Vec::new()))))
            }
            _ => Ok(not_found(path)),
        })();
        result.unwrap_or_else(|failure| error_reply(method, failure))
    }
}

pub(super) fn save_opts(data: &Map<String, Value>, method: &str) -> SaveOpts {
    let need_update_fields = match get_ci(data, "NeedUpDateFields") {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_string).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    SaveOpts {
        need_update_fields,
        is_delete_entry: flag(data, "IsDeleteEntry", true),
        verify_base_data: flag(data, "IsVerifyBaseDataField", false),
        validate: flag(data, "ValidateFlag", true),
        auto_submit_audit: flag(data, "IsAutoSubmitAndAudit", false),
        draft: method == "Draft",
        keep_ids: false,
    }
}

pub(super) fn return_fields(data: &Map<String, Value>) -> Vec<String> {
    match get_ci(data, "NeedReturnFields") {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_string).collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// Save / Draft / `BatchSave`.
pub(super) fn save_call(
    data: &mut K3Data,
    form: &str,
    packet: &Map<String, Value>,
    method: &str,
    now_ms: i64,
) -> Envelope {
    let opts = save_opts(packet, method);
    let fields = return_fields(packet);
    let models: Vec<Map<String, Value>> = match get_ci(packet, "Model") {
        Some(Value::Array(items)) if method == "BatchSave" => items
            .iter()
            .map(|m| m.as_object().cloned().unwrap_or_default())
            .collect(),
        Some(Value::Object(m)) => vec![m.clone()],
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => vec![m],
            Ok(Value::Array(items)) if method == "BatchSave" => items
                .iter()
                .map(|m| m.as_object().cloned().unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    if models.is_empty() {
        return Envelope::error(Failure::new(
            8,
            Some("Model"),
            "data数据包中的参数Model的值不能为空。",
        ))
        .with("Id", Value::from(""))
        .with("NeedReturnData", json!([{}]));
    }
    let mut errors = Vec::new();
    let mut success = Vec::new();
    let mut returned = Vec::new();
    if let Some(def) = data.table(form).map(|t| Arc::clone(&t.def)) {
        for model in &models {
            if let Some(number) = get_ci(model, def.number_key)
                .and_then(scalar_string)
                .filter(|n| !n.trim().is_empty())
            {
                *data.saves.entry((def.id, number)).or_insert(0) += 1;
            }
        }
    }
    for (i, model) in models.iter().enumerate() {
        match data.save(form, model, &opts, now_ms) {
            Ok((id, number)) => {
                returned.push(data.return_fields(form, id, &fields));
                success.push(SuccessEntity {
                    id,
                    number,
                    d_index: i,
                });
            }
            Err(errs) => {
                returned.push(json!({}));
                errors.extend(errs.into_iter().map(|e| e.at(i)));
            }
        }
    }
    let single = method != "BatchSave";
    let first = success.first().map(|s| (s.id, s.number.clone()));
    let envelope = Envelope::new(ResponseStatus::from_parts(errors, success));
    if single {
        match first {
            Some((id, number)) => envelope
                .with("Id", Value::from(id))
                .with("Number", Value::from(number))
                .with("NeedReturnData", Value::Array(returned)),
            // responses/save_error_quantity_limit.json: failure Id is "", and no real failure
            // has a `Number`.
            None => envelope
                .with("Id", Value::from(""))
                .with("NeedReturnData", json!([{}])),
        }
    } else {
        envelope.with("NeedReturnData", Value::Array(returned))
    }
}

/// Push from a sales order to an outbound (`SAL_OUTSTOCK`) or delivery notice.
pub(super) fn push(
    data: &mut K3Data,
    form: &str,
    packet: &Map<String, Value>,
    now_ms: i64,
) -> Envelope {
    let fail = |f: Failure| {
        Envelope::new(ResponseStatus::failed(vec![f], Vec::new()))
            .with("ConvertResponseStatus", Value::Null)
    };
    if form != SALE_ORDER {
        return fail(Failure::new(
            4,
            None,
            format!("sandbox 只模拟从销售订单下推，不支持“{form}”。"),
        ));
    }
    let target = get_ci(packet, "TargetFormId")
        .and_then(scalar_string)
        .unwrap_or_default();
    let target = if target.trim().is_empty() {
        OUTSTOCK.to_string()
    } else {
        target
    };
    let Some(target) = data
        .form_id(&target)
        .filter(|t| *t == OUTSTOCK || *t == "SAL_DELIVERYNOTICE")
    else {
        return fail(Failure::new(
            4,
            None,
            format!("sandbox 不支持下推到“{target}”。"),
        ));
    };
    let (numbers, ids) = numbers_and_ids(packet);
    let entry_ids: Vec<i64> = get_ci(packet, "EntryIds")
        .and_then(scalar_string)
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let sources: Vec<store::Bill> = {
        let Some(table) = data.table(SALE_ORDER) else {
            return fail(store::unknown_form(SALE_ORDER));
        };
        let mut found: Vec<store::Bill> = numbers
            .iter()
            .filter_map(|n| table.by_number(n).cloned())
            .collect();
        found.extend(
            ids.iter()
                .filter_map(|s| s.parse::<i64>().ok())
                .filter_map(|id| table.bills.get(&id).cloned()),
        );
        if !entry_ids.is_empty() && found.is_empty() {
            found = table
                .bills
                .values()
                .filter(|b| {
                    b.entries
                        .values()
                        .flatten()
                        .any(|e| entry_ids.contains(&e.id))
                })
                .cloned()
                .collect();
        }
        found
    };
    if sources.is_empty() {
        return fail(Failure::new(10, None, "没有找到要下推的源单。"));
    }
    let mut errors = Vec::new();
    let mut success = Vec::new();
    let draft_on_fail = flag(packet, "IsDraftWhenSaveFail", false);
    for (i, source) in sources.iter().enumerate() {
        if source.status != 'C' {
            errors.push(
                Failure::new(
                    11,
                    Some(""),
                    format!(
                        "单据编号为“{}”的销售订单，单据未审核，不能下推！",
                        source.number
                    ),
                )
                .at(i),
            );
            continue;
        }
        let model = store::push_model(data, source, &entry_ids, target);
        let mut opts = SaveOpts {
            validate: true,
            is_delete_entry: true,
            ..SaveOpts::default()
        };
        let mut saved = data.save(target, &model, &opts, now_ms);
        if saved.is_err() && draft_on_fail {
            opts.draft = true;
            saved = data.save(target, &model, &opts, now_ms);
        }
        match saved {
            Ok((id, number)) => success.push(SuccessEntity {
                id,
                number,
                d_index: i,
            }),
            Err(errs) => errors.extend(errs.into_iter().map(|e| e.at(i))),
        }
    }
    Envelope::new(ResponseStatus::from_parts(errors, success)).with(
        "ConvertResponseStatus",
        serde_json::to_value(ResponseStatus::ok(Vec::new())).unwrap_or(Value::Null),
    )
}

/// `QueryBusinessInfo`'s metadata (shape read by kingdee-mcp's parser, k3cloud.md §5 table).
pub(super) fn business_info(table: &store::Table) -> Value {
    let def = &table.def;
    let name = |n: &str| json!([{"Key": 2052, "Value": n}]);
    let field = |f: &forms::FieldDef| {
        let (field_type, lookup) = match f.ty {
            forms::FieldType::Text => ("TextField", Value::Null),
            forms::FieldType::Decimal => ("DecimalField", Value::Null),
            forms::FieldType::Integer => ("IntegerField", Value::Null),
            forms::FieldType::Date => ("DateField", Value::Null),
            forms::FieldType::Combo => ("ComboField", Value::Null),
            forms::FieldType::BaseData(t) => ("BaseDataField", Value::from(t)),
            forms::FieldType::LooseRef(t) => ("BaseDataField", t.map_or(Value::Null, Value::from)),
        };
        json!({"Key": f.key, "Name": name(f.name), "FieldType": field_type, "ElementType": field_type, "MustInput": f.required, "LookUpObjectFormId": lookup})
    };
    let mut head_fields: Vec<Value> = vec![
        json!({"Key": def.pk, "Name": name("内码"), "FieldType": "PKField", "ElementType": "PKField", "MustInput": false, "LookUpObjectFormId": null}),
    ];
    head_fields.extend(def.fields.iter().filter(|f| f.entity.is_none()).map(field));
    let mut entrys = vec![
        json!({"Key": "FBillHead", "ParentKey": "", "Name": name(def.name), "Fields": head_fields}),
    ];
    for e in &def.entities {
        let mut fields = vec![
            json!({"Key": "FEntryID", "Name": name("分录内码"), "FieldType": "PKField", "ElementType": "PKField", "MustInput": false, "LookUpObjectFormId": null}),
        ];
        fields.extend(
            def.fields
                .iter()
                .filter(|f| f.entity == Some(e.key))
                .map(field),
        );
        entrys.push(json!({"Key": e.key, "ParentKey": "FBillHead", "Name": name(e.name), "TableName": e.table, "Fields": fields}));
    }
    json!({"Result": {"ResponseStatus": null, "NeedReturnData": {
        "Id": def.id,
        "Name": name(def.name),
        "PkFieldName": def.pk,
        "NumberFieldName": def.number_key,
        "Entrys": entrys,
        "Operations": ["Save", "Submit", "Audit", "UnAudit", "Delete", "Forbid", "Enable"],
    }}})
}
