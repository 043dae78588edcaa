//! Metadata of the simulated `K3Cloud` forms: keys, Chinese names, required fields, base-data
//! references and numbering rules.
//!
//! Field keys and names follow the reference (k3cloud.md §5–6, the captured requests) and
//! common `K3Cloud` usage; a form's real metadata has hundreds of fields, we model the ones
//! integrations touch. Fields a client writes that are not declared here are kept and become
//! queryable for that form (see `Table::extra_fields`).

/// The type of a field, as far as the simulator cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldType {
    Text,
    Decimal,
    Integer,
    Date,
    /// A base-data reference `{"FNumber": …}` to this form.
    BaseData(&'static str),
    /// A reference the simulator does not check (units, bill types, warehouses), with the
    /// form it points to where that is known; QueryBusinessInfo reports it.
    LooseRef(Option<&'static str>),
    Combo,
}

#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    pub(crate) key: &'static str,
    pub(crate) name: &'static str,
    pub(crate) ty: FieldType,
    pub(crate) required: bool,
    /// `None` for the header (and sub-headers such as `SubHeadEntity`); else the entry entity.
    pub(crate) entity: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub(crate) struct EntityDef {
    pub(crate) key: &'static str,
    pub(crate) name: &'static str,
    pub(crate) table: &'static str,
}

#[derive(Clone, Debug)]
pub(crate) struct FormDef {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) base_data: bool,
    /// Primary key field (`FMATERIALID`, `FCUSTID`, `FID`).
    pub(crate) pk: &'static str,
    /// Number field (`FNumber` for base data, `FBillNo` for bills).
    pub(crate) number_key: &'static str,
    pub(crate) number_prefix: &'static str,
    pub(crate) number_width: usize,
    pub(crate) fields: Vec<FieldDef>,
    pub(crate) entities: Vec<EntityDef>,
    /// Sub-header objects whose fields belong to the header (`SubHeadEntity`, `FSaleOrderFinance`).
    pub(crate) sub_heads: &'static [&'static str],
}

const fn f(key: &'static str, name: &'static str, ty: FieldType, required: bool) -> FieldDef {
    FieldDef {
        key,
        name,
        ty,
        required,
        entity: None,
    }
}

const fn e(
    entity: &'static str,
    key: &'static str,
    name: &'static str,
    ty: FieldType,
    required: bool,
) -> FieldDef {
    FieldDef {
        key,
        name,
        ty,
        required,
        entity: Some(entity),
    }
}

use FieldType::{BaseData, Combo, Date, Decimal, Integer, LooseRef, Text};

pub(crate) const ORG: &str = "ORG_Organizations";
pub(crate) const CURRENCY: &str = "BD_Currency";
pub(crate) const MATERIAL: &str = "BD_MATERIAL";
pub(crate) const CUSTOMER: &str = "BD_Customer";
pub(crate) const EMPLOYEE: &str = "BD_Empinfo";
pub(crate) const SALE_ORDER: &str = "SAL_SaleOrder";
pub(crate) const OUTSTOCK: &str = "SAL_OUTSTOCK";
const UNIT: &str = "BD_UNIT";
/// 辅助资料: countries, provinces, customer types and tax categories are assistant data in
/// `K3Cloud` (their numbers end in `_SYS`, as the customer package's `KHLB001_SYS` and
/// `SFL02_SYS` do).
const ASSISTANT: &str = "BOS_ASSISTANTDATA_DETAIL";
/// The reference names no lookup form for tax rates or customer groups; these are the usual
/// `K3Cloud` form ids, unconfirmed.
const TAX_RATE: &str = "BD_TaxRate";

/// Forms the simulator serves with the generic model (any fields, entries by array); other
/// `FormIds` answer `MsgCode` 4 "业务对象不存在" as a real server does for an unknown form.
pub(crate) const GENERIC_FORMS: &[(&str, &str)] = &[
    ("BD_Supplier", "供应商"),
    ("BD_Department", "部门"),
    ("BD_CommonContact", "联系人"),
    ("BD_UNIT", "计量单位"),
    ("BD_STOCK", "仓库"),
    ("BD_Saler", "销售员"),
    ("BOS_BillType", "单据类型"),
    ("BOS_ASSISTANTDATA_DETAIL", "辅助资料"),
    ("BD_TaxRate", "税率"),
    ("BD_CustomerGroup", "客户分组"),
    ("BD_FLEXSITEMDETAILV", "弹性域"),
    ("SAL_DELIVERYNOTICE", "发货通知单"),
    ("PUR_PurchaseOrder", "采购订单"),
    ("STK_InStock", "采购入库单"),
    ("STK_Inventory", "即时库存"),
    ("STK_MISCELLANEOUS", "其他入库单"),
    ("STK_MisDelivery", "其他出库单"),
    ("STK_TransferDirect", "直接调拨单"),
    ("STK_AssembledApp", "组装拆卸单"),
    ("PRD_MO", "生产订单"),
    ("PRD_INSTOCK", "生产入库单"),
    ("PRD_PPBOM", "生产用料清单"),
    ("ENG_BOM", "物料清单"),
    ("GL_VOUCHER", "凭证"),
    ("AP_PAYBILL", "付款单"),
    ("AR_RECEIVEBILL", "收款单"),
    ("ER_ExpReimbursement", "费用报销单"),
    ("ER_ExpenseRequest", "费用申请单"),
    ("IOS_PriceList", "价目表"),
];

fn base(id: &'static str, name: &'static str, pk: &'static str, prefix: &'static str) -> FormDef {
    FormDef {
        id,
        name,
        base_data: true,
        pk,
        number_key: "FNumber",
        number_prefix: prefix,
        number_width: 6,
        fields: vec![
            f("FNumber", "编码", Text, false),
            f("FName", "名称", Text, true),
        ],
        entities: Vec::new(),
        sub_heads: &[],
    }
}

fn catalogue() -> Vec<FormDef> {
    let mut org = base(ORG, "组织机构", "FORGID", "ORG");
    org.fields.push(f("FDescription", "描述", Text, false));

    let mut currency = base(CURRENCY, "币别", "FCURRENCYID", "PRE");
    currency.number_width = 3;
    currency.fields.extend([
        f("FCODE", "货币代码", Text, false),
        f("FSymbol", "货币符号", Text, false),
        f("FPRICEDIGITS", "单价精度", Integer, false),
        f("FAMOUNTDIGITS", "金额精度", Integer, false),
    ]);

    let mut material = base(MATERIAL, "物料", "FMATERIALID", "MAT");
    material.number_width = 4;
    material.sub_heads = &[
        "SubHeadEntity",
        "SubHeadEntity1",
        "SubHeadEntity2",
        "SubHeadEntity3",
        "SubHeadEntity4",
        "SubHeadEntity5",
    ];
    material.fields.extend([
        f("FCreateOrgId", "创建组织", BaseData(ORG), true),
        f("FUseOrgId", "使用组织", BaseData(ORG), false),
        f("FSpecification", "规格型号", Text, false),
        f("FDescription", "描述", Text, false),
        f("FMnemonicCode", "助记码", Text, false),
        f("FMaterialGroup", "物料分组", LooseRef(None), false),
        f("FErpClsID", "物料属性", Combo, false),
        f("FBaseUnitId", "基本单位", LooseRef(Some(UNIT)), false),
        f("FCategoryID", "存货类别", LooseRef(None), false),
        f("FTaxRateId", "默认税率", LooseRef(Some(TAX_RATE)), false),
    ]);

    let mut customer = base(CUSTOMER, "客户", "FCUSTID", "CUST");
    customer.number_width = 4;
    customer.fields.extend([
        f("FCreateOrgId", "创建组织", BaseData(ORG), true),
        f("FUseOrgId", "使用组织", BaseData(ORG), false),
        f("FShortName", "简称", Text, false),
        f("FCOUNTRY", "国家", LooseRef(Some(ASSISTANT)), false),
        f("FPROVINCIAL", "省份", LooseRef(Some(ASSISTANT)), false),
        f("FADDRESS", "通讯地址", Text, false),
        f("FTEL", "联系电话", Text, false),
        f("FFAX", "传真", Text, false),
        f("FWEBSITE", "公司网址", Text, false),
        f("FTAXREGISTERCODE", "纳税登记号", Text, false),
        f("FINVOICETITLE", "发票抬头", Text, false),
        f("FCustTypeId", "客户类别", LooseRef(Some(ASSISTANT)), false),
        f(
            "FGroup",
            "客户分组",
            LooseRef(Some("BD_CustomerGroup")),
            false,
        ),
        f("FTRADINGCURRID", "结算币别", BaseData(CURRENCY), false),
        f("FSELLER", "销售员", BaseData(EMPLOYEE), false),
        f(
            "FSALDEPTID",
            "销售部门",
            LooseRef(Some("BD_Department")),
            false,
        ),
        f("FDescription", "描述", Text, false),
        f("FTaxType", "税分类", LooseRef(Some(ASSISTANT)), false),
        f("FTaxRate", "默认税率", LooseRef(Some(TAX_RATE)), false),
        // The contact entry. The reference names the entity but not its field keys; these
        // are our choice.
        e("FT_BD_CUSTCONTACT", "FContactName", "联系人", Text, false),
        e("FT_BD_CUSTCONTACT", "FMobile", "手机", Text, false),
    ]);
    customer.entities = vec![EntityDef {
        key: "FT_BD_CUSTCONTACT",
        name: "联系人",
        table: "T_BD_CUSTCONTACT",
    }];

    // Salesmen: real K3Cloud keeps them as 销售员 (BD_Saler / V_BD_SALESMAN) over 员工; the
    // sandbox uses the employee form for both and references it by FNumber.
    let mut employee = base(EMPLOYEE, "员工", "FID", "EMP");
    employee.number_width = 4;
    employee.fields.extend([
        f("FCreateOrgId", "创建组织", BaseData(ORG), true),
        f("FUseOrgId", "使用组织", BaseData(ORG), false),
        f("FStaffNumber", "员工编号", Text, false),
        f("FMobile", "移动电话", Text, false),
        f("FEmail", "电子邮箱", Text, false),
        f("FPostId", "岗位", LooseRef(None), false),
    ]);

    let sale_order = FormDef {
        id: SALE_ORDER,
        name: "销售订单",
        base_data: false,
        pk: "FID",
        number_key: "FBillNo",
        number_prefix: "XSDD",
        number_width: 6,
        fields: vec![
            f("FBillNo", "单据编号", Text, false),
            f(
                "FBillTypeID",
                "单据类型",
                LooseRef(Some("BOS_BillType")),
                false,
            ),
            f("FDate", "日期", Date, false),
            f("FSaleOrgId", "销售组织", BaseData(ORG), true),
            f("FCustId", "客户", BaseData(CUSTOMER), true),
            f("FReceiveId", "收货方", BaseData(CUSTOMER), false),
            f("FSettleId", "结算方", BaseData(CUSTOMER), false),
            f("FChargeId", "付款方", BaseData(CUSTOMER), false),
            f("FSalerId", "销售员", BaseData(EMPLOYEE), false),
            f(
                "FSaleDeptId",
                "销售部门",
                LooseRef(Some("BD_Department")),
                false,
            ),
            f("FNote", "备注", Text, false),
            f("FCloseStatus", "关闭状态", Combo, false),
            // FSaleOrderFinance sub-header.
            f("FSettleCurrId", "结算币别", BaseData(CURRENCY), false),
            f("FExchangeRate", "汇率", Decimal, false),
            f("FBillAllAmount", "价税合计", Decimal, false),
            e(
                "FSaleOrderEntry",
                "FMaterialId",
                "物料编码",
                BaseData(MATERIAL),
                true,
            ),
            e(
                "FSaleOrderEntry",
                "FUnitID",
                "销售单位",
                LooseRef(Some(UNIT)),
                false,
            ),
            e("FSaleOrderEntry", "FQty", "销售数量", Decimal, true),
            e("FSaleOrderEntry", "FPrice", "单价", Decimal, false),
            e("FSaleOrderEntry", "FTaxPrice", "含税单价", Decimal, false),
            e("FSaleOrderEntry", "FEntryTaxRate", "税率%", Decimal, false),
            e("FSaleOrderEntry", "FAllAmount", "价税合计", Decimal, false),
            e("FSaleOrderEntry", "FDeliveryDate", "要货日期", Date, false),
            e("FSaleOrderEntry", "FEntryNote", "备注", Text, false),
            // A tenant's custom field (as a BOS designer adds it) holding the CRM line's id,
            // which the example orders mapping fills.
            e("FSaleOrderEntry", "F_CRM_LineId", "CRM明细ID", Text, false),
        ],
        entities: vec![EntityDef {
            key: "FSaleOrderEntry",
            name: "订单明细",
            table: "T_SAL_ORDERENTRY",
        }],
        sub_heads: &["FSaleOrderFinance", "FSaleOrderClause"],
    };

    let outstock = FormDef {
        id: OUTSTOCK,
        name: "销售出库单",
        base_data: false,
        pk: "FID",
        number_key: "FBillNo",
        number_prefix: "XSCKD",
        number_width: 6,
        fields: vec![
            f("FBillNo", "单据编号", Text, false),
            f(
                "FBillTypeID",
                "单据类型",
                LooseRef(Some("BOS_BillType")),
                false,
            ),
            f("FDate", "日期", Date, false),
            f("FStockOrgId", "发货组织", BaseData(ORG), true),
            f("FSaleOrgId", "销售组织", BaseData(ORG), false),
            // The real required-field sample (a public Java client's comment) names this key
            // and the message 字段“客户”是必填项.
            f("FCustomerID", "客户", BaseData(CUSTOMER), true),
            f("FSalesManID", "销售员", BaseData(EMPLOYEE), false),
            f("FCarrierID", "承运商", LooseRef(None), false),
            f("FCarriageNO", "运输单号", Text, false),
            f("FNote", "备注", Text, false),
            f("FSettleCurrID", "结算币别", BaseData(CURRENCY), false),
            e(
                "FEntity",
                "FMaterialID",
                "物料编码",
                BaseData(MATERIAL),
                true,
            ),
            e(
                "FEntity",
                "FUnitID",
                "库存单位",
                LooseRef(Some(UNIT)),
                false,
            ),
            e("FEntity", "FRealQty", "实发数量", Decimal, true),
            e("FEntity", "FTaxPrice", "含税单价", Decimal, false),
            e("FEntity", "FAllAmount", "价税合计", Decimal, false),
            // Real sites often make 仓库 required (save_error_required_field_old_server.json);
            // we do not, so that a pushed outbound saves without a warehouse.
            e(
                "FEntity",
                "FStockID",
                "仓库",
                LooseRef(Some("BD_STOCK")),
                false,
            ),
            e("FEntity", "FSrcBillNo", "源单编号", Text, false),
            e("FEntity", "FSoorDerno", "订单单号", Text, false),
            // The sales order line a line ships (销售订单EntryId), set by a push: the key is
            // the usual one of K3Cloud's outbound, not confirmed by the reference.
            e("FEntity", "FSOEntryId", "销售订单EntryId", Text, false),
            e("FEntity", "FEntrynote", "备注", Text, false),
        ],
        entities: vec![EntityDef {
            key: "FEntity",
            name: "明细信息",
            table: "T_SAL_OUTSTOCKENTRY",
        }],
        sub_heads: &["SubHeadEntity", "FSalOutStockFin"],
    };

    vec![
        org, currency, material, customer, employee, sale_order, outstock,
    ]
}

fn generic(id: &'static str, name: &'static str) -> FormDef {
    let base_data = id.starts_with("BD_") || id.starts_with("BOS_");
    let (number_key, prefix) = if base_data {
        (
            "FNumber",
            id.trim_start_matches("BD_").trim_start_matches("BOS_"),
        )
    } else {
        ("FBillNo", id.split('_').next_back().unwrap_or(id))
    };
    let mut fields = vec![f(number_key, "编码", Text, false)];
    if base_data {
        fields.push(f("FName", "名称", Text, false));
    }
    FormDef {
        id,
        name,
        base_data,
        pk: "FID",
        number_key,
        number_prefix: prefix,
        number_width: 6,
        fields,
        entities: Vec::new(),
        sub_heads: &["SubHeadEntity"],
    }
}

/// Every form the simulator serves, stateful ones first.
pub(crate) fn all_forms() -> Vec<FormDef> {
    let mut forms = catalogue();
    forms.extend(GENERIC_FORMS.iter().map(|(id, name)| generic(id, name)));
    forms
}

impl FormDef {
    /// Whether the form has the full model (required fields, checked references).
    pub(crate) fn is_modelled(&self) -> bool {
        !GENERIC_FORMS.iter().any(|(id, _)| *id == self.id)
    }

    pub(crate) fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key.eq_ignore_ascii_case(key))
    }

    pub(crate) fn entity(&self, key: &str) -> Option<&EntityDef> {
        self.entities
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    pub(crate) fn is_sub_head(&self, key: &str) -> bool {
        self.sub_heads.iter().any(|s| s.eq_ignore_ascii_case(key))
    }

    /// The status/time fields every form has.
    pub(crate) fn system_field(key: &str) -> Option<&'static str> {
        const SYSTEM: &[&str] = &[
            "FDocumentStatus",
            "FForbidStatus",
            "FCloseStatus",
            "FCreateDate",
            "FModifyDate",
            "FApproveDate",
            "FCreatorId",
            "FModifierId",
            "FApproverId",
        ];
        SYSTEM.iter().copied().find(|s| s.eq_ignore_ascii_case(key))
    }
}
