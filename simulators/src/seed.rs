//! The demo data set and the record generator.
//!
//! Deterministic: the same sandbox seed and the same clock give the same records (ids,
//! names, numbers, amounts, times). Times are spread over the year before the clock's now.
//!
//! | side | what | key fields |
//! |---|---|---|
//! | CRM | 8 employees, 5 departments (always there) | `FSUID_…`, employee ids `1000`… |
//! | CRM | 60 `ProductObj` | `product_code` = ERP material number `MAT0001`… |
//! | CRM | 300 `AccountObj` | customer code `account_no` `KH00001`…, `account_type`, `account_level` |
//! | CRM | ~450 `ContactObj` | `account_id`, `mobile1` |
//! | CRM | 200 `SalesOrderObj` with 1–5 `SalesOrderProductObj` each | `account_id`; lines `product_id`, `quantity`, `sales_price` |
//! | ERP | 60 `BD_MATERIAL` (audited) | `FNumber` = product code |
//! | ERP | 8 `BD_Empinfo` salesmen (audited) | `EMP0001`…, `FStaffNumber` = CRM employee number |
//! | ERP | organisations `100`, `101`, `102`; currencies `PRE001`… (base data, always there) | |

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fxiaoke::ADMIN_OPEN_USER_ID;
use crate::rng::SplitMix64;
use crate::server::Shared;

/// How many records [`crate::Sandbox::generate`] adds (on top of what is there).
///
/// ```
/// use fxk3_simulators::GenerateSpec;
///
/// // 1,000 CRM customers, each with one order (lines over generated products).
/// let spec = GenerateSpec::crm(1_000);
/// assert_eq!((spec.crm_accounts, spec.crm_orders), (1_000, 1_000));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerateSpec {
    /// CRM customers (`AccountObj`), with one contact each.
    #[serde(default)]
    pub crm_accounts: usize,
    /// CRM sales orders with 1–5 lines, for existing customers and products (20 products
    /// and materials are generated first when there are none).
    #[serde(default)]
    pub crm_orders: usize,
    /// CRM products, each with the ERP material of the same number.
    #[serde(default)]
    pub crm_products: usize,
    /// ERP customers (`BD_Customer`, audited), numbered `G000001`….
    #[serde(default)]
    pub erp_customers: usize,
}

impl GenerateSpec {
    /// `n` CRM customers and `n` orders.
    #[must_use]
    pub fn crm(n: usize) -> Self {
        Self {
            crm_accounts: n,
            crm_orders: n,
            ..Self::default()
        }
    }
}

const DAY_MS: i64 = 86_400_000;

const CITIES: &[(&str, &str)] = &[
    ("上海", "浦东新区张江路"),
    ("北京", "海淀区中关村大街"),
    ("广州", "天河区天河路"),
    ("深圳", "南山区科技园路"),
    ("杭州", "西湖区文三路"),
    ("南京", "鼓楼区中山北路"),
    ("苏州", "工业园区星湖街"),
    ("成都", "高新区天府大道"),
    ("武汉", "东湖高新区光谷大道"),
    ("西安", "雁塔区科技路"),
    ("天津", "滨海新区第三大街"),
    ("重庆", "渝北区金开大道"),
    ("宁波", "鄞州区天童路"),
    ("青岛", "市南区香港中路"),
    ("厦门", "思明区软件园二期"),
    ("长沙", "岳麓区麓谷大道"),
];
const WORDS: &[&str] = &[
    "华瑞", "恒通", "新锐", "鼎盛", "嘉禾", "远航", "宏图", "泰和", "众诚", "金桥", "博远", "立信",
    "中联", "安泰", "万达", "德昌", "汇丰", "瑞祥", "天成", "永和",
];
const INDUSTRIES: &[(&str, &str)] = &[
    ("机械", "机械制造"),
    ("科技", "信息技术"),
    ("贸易", "批发零售"),
    ("化工", "化工"),
    ("电子", "电子元器件"),
    ("建材", "建筑材料"),
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "强", "军", "霞",
];
const JOBS: &[&str] = &["采购经理", "总经理", "财务", "工程师", "仓库主管"];
/// Product families: (CRM category option, name stem, spec prefix, unit option, base price).
const FAMILIES: &[(&str, &str, &str, &str, u32)] = &[
    ("1", "不锈钢法兰", "DN", "1", 45),
    ("2", "球阀", "DN", "1", 180),
    ("3", "离心泵", "流量", "3", 2600),
    ("4", "压力表", "量程", "1", 95),
    ("5", "密封垫片", "规格", "5", 12),
    ("1", "镀锌弯头", "DN", "1", 18),
];
/// The CRM owners of demo records: the six sales employees (1000–1005) and, for a few, the
/// one who left (1007).
const OWNERS: &[&str] = &[
    ADMIN_OPEN_USER_ID,
    "FSUID_FEDCBA9876543210FEDCBA9876543210",
    "FSUID_5A1E5000000000000000000000001002",
    "FSUID_5A1E5000000000000000000000001003",
    "FSUID_5A1E5000000000000000000000001004",
    "FSUID_5A1E5000000000000000000000001005",
    "FSUID_5A1E5000000000000000000000001007",
];

fn pick<'a, T>(rng: &mut SplitMix64, items: &'a [T]) -> &'a T {
    let i = usize::try_from(rng.below(items.len() as u64)).unwrap_or(0);
    &items[i.min(items.len() - 1)]
}

fn int(rng: &mut SplitMix64, low: u64, high: u64) -> u64 {
    low + rng.below(high - low + 1)
}

fn ms_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Cents as `"123.45"`.
fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Names that never repeat: the n-th combination of city, word and industry.
fn company(
    n: usize,
) -> (
    String,
    &'static (&'static str, &'static str),
    &'static (&'static str, &'static str),
) {
    let city = &CITIES[n % CITIES.len()];
    let word = WORDS[(n / CITIES.len()) % WORDS.len()];
    let industry = &INDUSTRIES[(n / (CITIES.len() * WORDS.len())) % INDUSTRIES.len()];
    let round = n / (CITIES.len() * WORDS.len() * INDUSTRIES.len());
    let suffix = if round == 0 {
        String::new()
    } else {
        format!("第{}分公司", round + 1)
    };
    (
        format!("{}{word}{}有限公司{suffix}", city.0, industry.0),
        city,
        industry,
    )
}

fn person(rng: &mut SplitMix64) -> String {
    let mut name = String::new();
    let parts = if rng.below(2) == 0 { 2 } else { 3 };
    for i in 0..parts {
        let part: &&str = pick(rng, if i == 0 { SURNAMES } else { GIVEN });
        name.push_str(part);
    }
    name
}

fn mobile(rng: &mut SplitMix64) -> String {
    format!("13{:09}", rng.below(1_000_000_000))
}

/// A time in the year before `now`, and a later modification time.
fn times(rng: &mut SplitMix64, now: i64) -> (i64, i64) {
    let created = now - ms_of(int(rng, 2, 365)) * DAY_MS + ms_of(rng.below(ms_of_u(DAY_MS)));
    let modified = created + ms_of(rng.below(ms_of_u(now - created).max(1)));
    (created, modified.min(now))
}

fn ms_of_u(n: i64) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(0)
}

/// The counts of records already in `api` (so that generated numbers follow on).
fn count(shared: &Shared, api: &str) -> usize {
    shared
        .fx
        .objects()
        .into_iter()
        .find(|(a, _)| a == api)
        .map_or(0, |(_, n)| n)
}

fn insert_fx(shared: &Shared, api: &str, record: Value) -> Option<String> {
    match shared.fx.insert(api, record, shared.clock.now_ms()) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(api, error = %e, "seed record refused");
            None
        }
    }
}

fn insert_k3(shared: &Shared, form: &str, model: Value) {
    if let Err(e) = shared.k3.insert(form, model, shared.clock.now_ms()) {
        tracing::debug!(form, error = %e, "seed record refused");
    }
}

/// `n` products from number `first` on (1-based), with their ERP materials.
fn products(shared: &Shared, rng: &mut SplitMix64, first: usize, n: usize) -> Vec<(String, u64)> {
    let now = shared.clock.now_ms();
    let mut out = Vec::new();
    for i in first..first + n {
        let (category, stem, spec, unit, base) = FAMILIES[(i - 1) % FAMILIES.len()];
        let size = [15, 20, 25, 32, 40, 50, 65, 80, 100, 150][(i - 1) / FAMILIES.len() % 10];
        let code = format!("MAT{i:04}");
        let name = format!("{stem} {spec}{size}");
        let price = u64::from(base) * 100 + u64::try_from(size).unwrap_or(0) * 37;
        let (created, modified) = times(rng, now);
        let id = insert_fx(
            shared,
            "ProductObj",
            json!({"name": name, "product_code": code, "product_spec": format!("{spec}{size}"),
                   "unit": unit, "price": money(price), "category": category, "product_status": "1",
                   "owner": [ADMIN_OPEN_USER_ID], "create_time": created, "last_modified_time": modified}),
        );
        insert_k3(
            shared,
            "BD_MATERIAL",
            json!({"FNumber": code, "FName": name, "FSpecification": format!("{spec}{size}"),
                   "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                   "FBaseUnitId": {"FNumber": if unit == "3" { "Set" } else { "Pcs" }},
                   "FErpClsID": "1", "FDocumentStatus": "C"}),
        );
        if let Some(id) = id {
            out.push((id, price));
        }
    }
    out
}

/// `n` customers (with contacts) from sequence `first` on (0-based).
fn accounts(
    shared: &Shared,
    rng: &mut SplitMix64,
    first: usize,
    n: usize,
    contacts_max: u64,
) -> Vec<(String, String)> {
    let now = shared.clock.now_ms();
    let mut out = Vec::new();
    for seq in first..first + n {
        // A stride coprime to the name space shuffles cities and words across numbers.
        let (name, city, industry) = company(seq * 7 % 1920 + seq / 1920 * 1920);
        let owner = if rng.below(20) == 0 {
            OWNERS[6]
        } else {
            OWNERS[usize::try_from(rng.below(6)).unwrap_or(0)]
        };
        let (created, modified) = times(rng, now);
        let record = json!({
            "name": name,
            "account_no": format!("KH{:05}", seq + 1),
            "account_type": pick(rng, &["1", "1", "1", "2", "2", "3"]),
            "account_level": pick(rng, &["1", "2", "2", "3", "3", "3"]),
            "account_source": pick(rng, &["1", "2", "3", "4", "other"]),
            "tel": format!("0{}-{:08}", 10 + rng.below(90), rng.below(100_000_000)),
            "address": format!("{}市{}{}号", city.0, city.1, int(rng, 1, 999)),
            "industry_level1": industry.1,
            "email": format!("info{:05}@example.com", seq + 1),
            "field_tax_no__c": format!("91{:06}MA{:08}", 310_000 + rng.below(9_999), rng.below(100_000_000)),
            "owner": [owner],
            "create_time": created,
            "last_modified_time": modified,
        });
        let Some(id) = insert_fx(shared, "AccountObj", record) else {
            continue;
        };
        for _ in 0..int(rng, 1, contacts_max) {
            insert_fx(
                shared,
                "ContactObj",
                json!({"name": person(rng), "account_id": id, "company": name, "mobile1": mobile(rng),
                       "tel1": format!("0{}-{:08}", 10 + rng.below(90), rng.below(100_000_000)),
                       "email": format!("c{}@example.com", rng.hex(6)), "job_title": pick(rng, JOBS),
                       "owner": [owner], "create_time": created, "last_modified_time": modified}),
            );
        }
        out.push((id, owner.to_string()));
    }
    out
}

/// `n` orders over `customers` and `items` (product id, price in cents).
fn orders(
    shared: &Shared,
    rng: &mut SplitMix64,
    customers: &[(String, String)],
    items: &[(String, u64)],
    n: usize,
) {
    if customers.is_empty() || items.is_empty() {
        return;
    }
    let now = shared.clock.now_ms();
    for _ in 0..n {
        let (account, owner) = pick(rng, customers);
        let (created, modified) = times(rng, now);
        // Order date: the GMT+8 midnight of the creation day.
        let order_day = (created + 8 * 3_600_000).div_euclid(DAY_MS) * DAY_MS - 8 * 3_600_000;
        let mut lines = Vec::new();
        let mut total = 0;
        let mut used = Vec::new();
        for _ in 0..int(rng, 1, 5) {
            let (product, price) = pick(rng, items);
            if used.contains(product) {
                continue;
            }
            used.push(product.clone());
            let qty = int(rng, 1, 50);
            // 90–100 % of the list price.
            let sales = price * int(rng, 90, 100) / 100;
            let subtotal = sales * qty;
            total += subtotal;
            lines.push(json!({"product_id": product, "quantity": qty.to_string(),
                              "sales_price": money(sales), "product_price": money(*price),
                              "discount": "100", "subtotal": money(subtotal)}));
        }
        insert_fx(
            shared,
            "SalesOrderObj",
            json!({"account_id": account, "order_time": order_day,
                   "delivery_date": order_day + ms_of(int(rng, 7, 30)) * DAY_MS,
                   "order_amount": money(total), "discount": "100", "logistics_status": "1",
                   "remark": "", "owner": [owner], "create_time": created, "last_modified_time": modified,
                   "details": {"SalesOrderProductObj": lines}}),
        );
    }
}

fn existing_products(shared: &Shared) -> Vec<(String, u64)> {
    shared
        .fx
        .records("ProductObj")
        .into_iter()
        .filter_map(|p| {
            let id = p.get("_id")?.as_str()?.to_string();
            let price: f64 = p.get("price")?.as_str()?.parse().ok()?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some((id, (price * 100.0).round() as u64))
        })
        .collect()
}

fn existing_accounts(shared: &Shared) -> Vec<(String, String)> {
    shared
        .fx
        .records("AccountObj")
        .into_iter()
        .filter(|a| a.get("is_deleted") != Some(&Value::Bool(true)))
        .filter_map(|a| {
            let id = a.get("_id")?.as_str()?.to_string();
            let owner = a.get("owner")?.get(0)?.as_str()?.to_string();
            Some((id, owner))
        })
        .collect()
}

/// The demo data set (see the module docs).
pub(crate) fn demo(shared: &Shared) {
    let mut rng = SplitMix64::new(shared.config.seed ^ 0xDE30);
    for (i, user) in shared.fx.users().iter().enumerate() {
        insert_k3(
            shared,
            "BD_Empinfo",
            json!({"FNumber": format!("EMP{:04}", i + 1), "FName": user["name"],
                   "FStaffNumber": user["employeeNumber"], "FMobile": user["mobile"],
                   "FEmail": user["email"], "FCreateOrgId": {"FNumber": "100"}, "FDocumentStatus": "C"}),
        );
    }
    let items = products(shared, &mut rng, count(shared, "ProductObj") + 1, 60);
    let customers = accounts(shared, &mut rng, count(shared, "AccountObj"), 300, 2);
    orders(shared, &mut rng, &customers, &items, 200);
}

/// Adds generated records (see [`GenerateSpec`]).
pub(crate) fn generate(shared: &Shared, spec: &GenerateSpec) {
    let (products_now, accounts_now) = (count(shared, "ProductObj"), count(shared, "AccountObj"));
    let mut rng = SplitMix64::new(
        shared.config.seed ^ 0x6E6E ^ ((products_now as u64) << 20) ^ ((accounts_now as u64) << 40),
    );
    if spec.crm_products > 0 {
        products(shared, &mut rng, products_now + 1, spec.crm_products);
    }
    if spec.crm_accounts > 0 {
        accounts(
            shared,
            &mut rng,
            count(shared, "AccountObj"),
            spec.crm_accounts,
            1,
        );
    }
    if spec.crm_orders > 0 {
        let mut items = existing_products(shared);
        if items.is_empty() {
            items = products(shared, &mut rng, count(shared, "ProductObj") + 1, 20);
        }
        orders(
            shared,
            &mut rng,
            &existing_accounts(shared),
            &items,
            spec.crm_orders,
        );
    }
    let first = shared.k3.records("BD_Customer").len();
    for i in first..first + spec.erp_customers {
        let (name, city, _) = company(i);
        insert_k3(
            shared,
            "BD_Customer",
            json!({"FNumber": format!("G{:06}", i + 1), "FName": name, "FShortName": city.0,
                   "FCreateOrgId": {"FNumber": "100"}, "FUseOrgId": {"FNumber": "100"},
                   "FTRADINGCURRID": {"FNumber": "PRE001"}, "FDocumentStatus": "C"}),
        );
    }
}
