//! CRM object metadata: the describes of the simulated objects (fxiaoke.md §4.3, §5, §6).
//!
//! Field api names follow the reference's tables of what real clients send; labels, types and
//! option values follow the describe fixture and common tenants. A real tenant's describe has
//! many more fields (and its own `…__c` fields), so undeclared fields a client writes are kept
//! as they are and are queryable.

use serde_json::{Map, Value, json};

/// One field of a describe.
#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    pub(crate) api: String,
    pub(crate) label: String,
    /// Describe `type`: `text`, `number`, `currency`, `select_one`, `object_reference`, …
    pub(crate) ty: String,
    pub(crate) required: bool,
    /// `system`, `package` or `custom`.
    pub(crate) define: String,
    /// Target object of `object_reference` / `master_detail` fields.
    pub(crate) target: Option<String>,
    /// `(value, label)` of `select_one` / `select_many` fields.
    pub(crate) options: Vec<(String, String)>,
    pub(crate) default: Option<Value>,
}

impl FieldDef {
    fn new(api: &str, label: &str, ty: &str) -> Self {
        Self {
            api: api.into(),
            label: label.into(),
            ty: ty.into(),
            required: false,
            define: "package".into(),
            target: None,
            options: Vec::new(),
            default: None,
        }
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn system(mut self) -> Self {
        self.define = "system".into();
        self
    }

    fn custom(mut self) -> Self {
        self.define = "custom".into();
        self
    }

    fn to(mut self, target: &str) -> Self {
        self.target = Some(target.into());
        self
    }

    fn options(mut self, options: &[(&str, &str)]) -> Self {
        self.options = options
            .iter()
            .map(|(v, l)| ((*v).to_string(), (*l).to_string()))
            .collect();
        self
    }

    fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    pub(crate) fn is_lookup(&self) -> bool {
        self.target.is_some() && matches!(self.ty.as_str(), "object_reference" | "master_detail")
    }

    pub(crate) fn is_numeric(&self) -> bool {
        matches!(self.ty.as_str(), "number" | "currency" | "percentile")
    }

    pub(crate) fn is_time(&self) -> bool {
        matches!(self.ty.as_str(), "date" | "date_time" | "time")
    }

    /// The field as `object/describe` shows it.
    fn describe(&self) -> Value {
        let mut m = Map::new();
        m.insert("api_name".into(), json!(self.api));
        m.insert("label".into(), json!(self.label));
        m.insert("type".into(), json!(self.ty));
        m.insert("is_required".into(), json!(self.required));
        m.insert("define_type".into(), json!(self.define));
        m.insert("is_active".into(), json!(true));
        match self.ty.as_str() {
            "text" | "long_text" | "phone_number" | "email" | "url" | "auto_number" => {
                let len = if self.ty == "long_text" { 2000 } else { 100 };
                m.insert("max_length".into(), json!(len));
            }
            "currency" | "number" | "percentile" => {
                m.insert("decimal_places".into(), json!(2));
                if self.ty == "currency" {
                    m.insert("currency_unit".into(), json!("￥"));
                }
            }
            "date" | "date_time" => {
                let format = if self.ty == "date" {
                    "yyyy-MM-dd"
                } else {
                    "yyyy-MM-dd HH:mm"
                };
                m.insert("date_format".into(), json!(format));
                m.insert("time_zone".into(), json!("GMT+8"));
            }
            "employee" | "department" => {
                m.insert("is_single".into(), json!(true));
            }
            "object_reference" | "master_detail" => {
                m.insert("target_api_name".into(), json!(self.target));
            }
            _ => {}
        }
        if let Some(default) = &self.default {
            m.insert("default_value".into(), default.clone());
        }
        if !self.options.is_empty() {
            let options: Vec<Value> = self
                .options
                .iter()
                .map(|(v, l)| json!({"label": l, "value": v}))
                .collect();
            m.insert("options".into(), Value::Array(options));
        }
        Value::Object(m)
    }
}

/// One object: its describe and how the simulator treats it.
#[derive(Clone, Debug)]
pub(crate) struct ObjectDef {
    pub(crate) api: String,
    pub(crate) display: String,
    /// `package` (preset) or `custom`.
    pub(crate) define_type: String,
    pub(crate) fields: Vec<FieldDef>,
    /// For `name` auto-numbers (`SalesOrderObj`: `20240115-001`).
    pub(crate) auto_number: bool,
}

impl ObjectDef {
    /// The master-detail field pointing at `master`, if this is a detail object of it.
    pub(crate) fn master_field(&self, master: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.ty == "master_detail" && f.target.as_deref() == Some(master))
    }

    /// `data.describe` of `object/describe`.
    pub(crate) fn describe(&self) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|f| (f.api.clone(), f.describe()))
            .collect();
        json!({
            "api_name": self.api,
            "display_name": self.display,
            "define_type": self.define_type,
            "is_active": true,
            "fields": fields,
        })
    }

    /// One entry of `object/list`.
    pub(crate) fn list_entry(&self) -> Value {
        json!({
            "describeApiName": self.api,
            "describeDisplayName": self.display,
            "defineType": self.define_type,
            "isActive": true,
            "iconPath": "",
            "iconIndex": 0,
            "hideButton": false,
            "publicObject": false,
        })
    }

    /// A custom object from a describe-shaped JSON (`api_name`, `display_name`, `fields`):
    /// the control API's way to add a tenant's `…__c` object.
    pub(crate) fn from_describe(describe: &Value) -> Result<Self, String> {
        let api = describe
            .get("api_name")
            .and_then(Value::as_str)
            .ok_or("describe.api_name is missing")?;
        if !api.ends_with("__c") {
            return Err(format!("custom object api names end in __c: {api}"));
        }
        let display = describe
            .get("display_name")
            .and_then(Value::as_str)
            .unwrap_or(api);
        let mut def = Self {
            api: api.to_string(),
            display: display.to_string(),
            define_type: "custom".into(),
            fields: system_fields(),
            auto_number: false,
        };
        def.fields
            .push(FieldDef::new("name", "主属性", "text").required());
        if let Some(fields) = describe.get("fields").and_then(Value::as_object) {
            for (key, f) in fields {
                let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
                let mut field = FieldDef::new(
                    key,
                    &s("label").unwrap_or_else(|| key.clone()),
                    &s("type").unwrap_or_else(|| "text".into()),
                )
                .custom();
                field.required = f.get("is_required").and_then(Value::as_bool) == Some(true);
                field.target = s("target_api_name");
                if let Some(options) = f.get("options").and_then(Value::as_array) {
                    field.options = options
                        .iter()
                        .filter_map(|o| {
                            let v = o.get("value")?.as_str()?.to_string();
                            let l = o.get("label").and_then(Value::as_str).unwrap_or(&v);
                            Some((v.clone(), l.to_string()))
                        })
                        .collect();
                }
                field.default = f.get("default_value").cloned();
                def.fields.retain(|x| x.api != field.api);
                def.fields.push(field);
            }
        }
        Ok(def)
    }
}

/// `life_status` values (only `normal` is seen in clients; the others are the describe
/// fixture's, fxiaoke.md §5).
pub(crate) const LIFE_STATUS: &[(&str, &str)] = &[
    ("ineffective", "未生效"),
    ("under_review", "审核中"),
    ("normal", "正常"),
    ("in_change", "变更中"),
    ("invalid", "作废"),
];

/// Product units (values of the describe fixture: 1 个, 18 辆).
pub(crate) const UNITS: &[(&str, &str)] = &[
    ("1", "个"),
    ("2", "件"),
    ("3", "台"),
    ("4", "套"),
    ("5", "箱"),
    ("6", "米"),
    ("7", "千克"),
    ("18", "辆"),
];

/// `AccountObj.account_type`.
pub(crate) const ACCOUNT_TYPES: &[(&str, &str)] = &[
    ("1", "终端客户"),
    ("2", "经销商"),
    ("3", "代理商"),
    ("other", "其他"),
];

/// `AccountObj.account_level` (the fixtures show `"2"`).
pub(crate) const ACCOUNT_LEVELS: &[(&str, &str)] =
    &[("1", "重要客户"), ("2", "普通客户"), ("3", "一般客户")];

/// `AccountObj.account_source`.
pub(crate) const ACCOUNT_SOURCES: &[(&str, &str)] = &[
    ("1", "官网"),
    ("2", "展会"),
    ("3", "转介绍"),
    ("4", "电话营销"),
    ("other", "其他"),
];

/// `ProductObj.category`.
pub(crate) const PRODUCT_CATEGORIES: &[(&str, &str)] = &[
    ("1", "管件"),
    ("2", "阀门"),
    ("3", "泵"),
    ("4", "仪表"),
    ("5", "配件"),
];

/// `SalesOrderObj.logistics_status` (发货状态).
pub(crate) const LOGISTICS_STATUS: &[(&str, &str)] = &[
    ("1", "待发货"),
    ("2", "部分发货"),
    ("3", "已发货"),
    ("5", "已收货"),
];

/// The system fields every object has (fxiaoke.md §5).
fn system_fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("_id", "唯一性ID", "text").system(),
        FieldDef::new("owner", "负责人", "employee")
            .system()
            .required(),
        FieldDef::new("owner_department", "负责人主属部门", "text").system(),
        FieldDef::new("data_own_department", "归属部门", "department").system(),
        FieldDef::new("created_by", "创建人", "employee").system(),
        FieldDef::new("create_time", "创建时间", "date_time").system(),
        FieldDef::new("last_modified_by", "最后修改人", "employee").system(),
        FieldDef::new("last_modified_time", "最后修改时间", "date_time").system(),
        FieldDef::new("life_status", "生命状态", "select_one")
            .system()
            .options(LIFE_STATUS)
            .default(json!("normal")),
        FieldDef::new("lock_status", "锁定状态", "select_one")
            .system()
            .options(&[("0", "未锁定"), ("1", "锁定")])
            .default(json!("0")),
        FieldDef::new("is_deleted", "是否作废", "true_or_false").system(),
        FieldDef::new("record_type", "业务类型", "record_type")
            .system()
            .options(&[("default__c", "预设业务类型")])
            .default(json!("default__c")),
        FieldDef::new("relevant_team", "相关团队", "embedded_object_list").system(),
        FieldDef::new("version", "版本", "number").system(),
        FieldDef::new("object_describe_api_name", "对象", "text").system(),
    ]
}

fn object(api: &str, display: &str, fields: Vec<FieldDef>) -> ObjectDef {
    let mut all = system_fields();
    all.extend(fields);
    ObjectDef {
        api: api.into(),
        display: display.into(),
        define_type: if api.ends_with("__c") {
            "custom".into()
        } else {
            "package".into()
        },
        fields: all,
        auto_number: false,
    }
}

/// The objects every sandbox has.
pub(crate) fn catalogue() -> Vec<ObjectDef> {
    let account = object(
        "AccountObj",
        "客户",
        vec![
            FieldDef::new("name", "客户名称", "text").required(),
            // The customer code: what an ERP customer number is mapped from.
            FieldDef::new("account_no", "客户编号", "text"),
            FieldDef::new("account_type", "客户类型", "select_one").options(ACCOUNT_TYPES),
            FieldDef::new("account_level", "客户级别", "select_one").options(ACCOUNT_LEVELS),
            FieldDef::new("account_source", "来源", "select_one").options(ACCOUNT_SOURCES),
            FieldDef::new("tel", "电话", "phone_number"),
            FieldDef::new("fax", "传真", "phone_number"),
            FieldDef::new("email", "邮件", "email"),
            FieldDef::new("url", "网址", "url"),
            FieldDef::new("address", "详细地址", "text"),
            FieldDef::new("industry_level1", "行业", "text"),
            FieldDef::new("remark", "备注", "long_text"),
            FieldDef::new("field_tax_no__c", "税号", "text").custom(),
            // Where an integration writes the ERP customer number back.
            FieldDef::new("field_erp_no__c", "ERP客户编码", "text").custom(),
        ],
    );
    let contact = object(
        "ContactObj",
        "联系人",
        vec![
            FieldDef::new("name", "姓名", "text").required(),
            FieldDef::new("account_id", "客户名称", "object_reference").to("AccountObj"),
            FieldDef::new("company", "公司", "text"),
            FieldDef::new("tel1", "电话1", "phone_number"),
            FieldDef::new("tel2", "电话2", "phone_number"),
            FieldDef::new("mobile1", "手机1", "phone_number"),
            FieldDef::new("mobile2", "手机2", "phone_number"),
            FieldDef::new("email", "邮件", "email"),
            FieldDef::new("job_title", "职务", "text"),
            FieldDef::new("remark", "备注", "long_text"),
        ],
    );
    let product = object(
        "ProductObj",
        "产品",
        vec![
            FieldDef::new("name", "产品名称", "text").required(),
            // Equal to the ERP material number in the demo data.
            FieldDef::new("product_code", "产品编码", "text"),
            FieldDef::new("product_spec", "规格属性", "text"),
            FieldDef::new("unit", "单位", "select_one").options(UNITS),
            FieldDef::new("price", "标准价格", "currency")
                .required()
                .default(json!("0")),
            FieldDef::new("category", "产品分类", "select_one").options(PRODUCT_CATEGORIES),
            FieldDef::new("product_status", "上下架", "select_one")
                .options(&[("1", "已上架"), ("2", "已下架")])
                .default(json!("1")),
            FieldDef::new("off_shelves_time", "下架时间", "date_time"),
            FieldDef::new("remark", "备注", "long_text"),
        ],
    );
    let mut order = object(
        "SalesOrderObj",
        "销售订单",
        vec![
            FieldDef::new("name", "销售订单编号", "auto_number"),
            FieldDef::new("account_id", "客户名称", "object_reference")
                .to("AccountObj")
                .required(),
            FieldDef::new("order_time", "下单日期", "date"),
            FieldDef::new("order_amount", "销售订单金额(元)", "currency"),
            FieldDef::new("delivery_date", "交货日期", "date"),
            FieldDef::new("discount", "整单折扣", "percentile"),
            FieldDef::new("ship_to_add", "收货地址", "text"),
            FieldDef::new("ship_to_tel", "收货人电话", "phone_number"),
            FieldDef::new("logistics_status", "发货状态", "select_one")
                .options(LOGISTICS_STATUS)
                .default(json!("1")),
            FieldDef::new("remark", "备注", "long_text"),
            // Tenant fields an ERP integration typically adds.
            FieldDef::new("field_erp_bill_no__c", "ERP单号", "text").custom(),
            FieldDef::new("field_express_no__c", "物流单号", "text").custom(),
            FieldDef::new("field_shipped_qty__c", "已发货数量", "number").custom(),
        ],
    );
    order.auto_number = true;
    let line = object(
        "SalesOrderProductObj",
        "订单产品",
        vec![
            FieldDef::new("name", "订单产品编号", "auto_number"),
            FieldDef::new("order_id", "销售订单", "master_detail")
                .to("SalesOrderObj")
                .required(),
            FieldDef::new("product_id", "产品名称", "object_reference")
                .to("ProductObj")
                .required(),
            FieldDef::new("quantity", "数量", "number").required(),
            FieldDef::new("sales_price", "销售单价(元)", "currency"),
            FieldDef::new("product_price", "价格(元)", "currency"),
            FieldDef::new("discount", "折扣", "percentile"),
            FieldDef::new("subtotal", "小计", "currency"),
            FieldDef::new("unit", "单位", "select_one").options(UNITS),
            FieldDef::new("remark", "备注", "long_text"),
            // The tenant's custom field the deliveries flow fills per line (as on the order).
            FieldDef::new("field_shipped_qty__c", "已发货数量", "number").custom(),
        ],
    );
    let leads = object(
        "LeadsObj",
        "销售线索",
        vec![
            FieldDef::new("name", "姓名", "text").required(),
            FieldDef::new("company", "公司", "text"),
            FieldDef::new("email", "邮件", "email"),
            FieldDef::new("mobile", "手机", "phone_number"),
            FieldDef::new("job_title", "职务", "text"),
            FieldDef::new("source", "线索来源", "select_one").options(ACCOUNT_SOURCES),
            FieldDef::new("biz_status", "状态", "select_one")
                .options(&[
                    ("un_assigned", "未分配"),
                    ("un_processed", "待处理"),
                    ("processed", "已处理"),
                    ("transformed", "已转换"),
                    ("closed", "无效"),
                ])
                .default(json!("un_assigned")),
            FieldDef::new("leads_pool_id", "线索池", "text"),
            FieldDef::new("remark", "备注", "long_text"),
        ],
    );
    // The custom object of the reference's fixtures (回款计划).
    let plan = object(
        "object_Hk2p1__c",
        "回款计划(自定义)",
        vec![
            FieldDef::new("name", "主属性", "text").required(),
            FieldDef::new("amount__c", "计划回款金额", "currency").custom(),
            FieldDef::new("plan_date__c", "计划回款日期", "date").custom(),
            FieldDef::new("account_id__c", "客户", "object_reference")
                .to("AccountObj")
                .custom(),
        ],
    );
    vec![account, contact, product, order, line, leads, plan]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_have_the_fixture_keys() {
        let product = catalogue()
            .into_iter()
            .find(|o| o.api == "ProductObj")
            .unwrap();
        let d = product.describe();
        assert_eq!(d["fields"]["price"]["type"], "currency");
        assert_eq!(d["fields"]["price"]["decimal_places"], 2);
        assert_eq!(
            d["fields"]["unit"]["options"][0],
            json!({"label": "个", "value": "1"})
        );
        assert_eq!(d["fields"]["owner"]["is_single"], true);
        assert_eq!(d["fields"]["off_shelves_time"]["time_zone"], "GMT+8");
        let line = catalogue()
            .into_iter()
            .find(|o| o.api == "SalesOrderProductObj")
            .unwrap();
        assert_eq!(line.master_field("SalesOrderObj").unwrap().api, "order_id");
    }

    #[test]
    fn custom_objects_come_from_a_describe() {
        let def = ObjectDef::from_describe(&json!({
            "api_name": "object_x__c", "display_name": "X",
            "fields": {"level__c": {"label": "级别", "type": "select_one",
                                    "options": [{"label": "高", "value": "h"}]}}
        }))
        .unwrap();
        assert_eq!(def.define_type, "custom");
        let level = def.fields.iter().find(|f| f.api == "level__c").unwrap();
        assert_eq!(level.options[0].0, "h");
        assert!(ObjectDef::from_describe(&json!({"api_name": "Nope"})).is_err());
    }
}
