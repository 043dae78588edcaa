//! Typed models of the objects we sync.
//!
//! Each has the fields the reference names, the system fields every record carries (in
//! [`SystemFields`], flattened: the wire shape is flat), and
//! `extra` for everything else — tenants add hundreds of custom fields (`field_xxxxx__c`) and
//! the server adds read-only expansions (`owner__r`, `life_status__r`, …). Times are epoch
//! milliseconds on the wire and [`DateTime<Utc>`] here; owners and other people fields are
//! lists. Amounts and quantities stay text, as the API documents them (numbers are accepted
//! and turned into text). Fields left `None` or empty are not sent, so a model can carry just
//! what an update changes.
//!
//! ```
//! use fxiaoke_sdk::types::AccountObj;
//!
//! let account: AccountObj = serde_json::from_str(r#"{
//!     "_id": "5dc4cefa038eaa0001c0586f", "name": "上海示例科技有限公司",
//!     "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"],
//!     "last_modified_time": 1716000000000, "field_erp_no__c": "C0001"
//! }"#).unwrap();
//! assert_eq!(account.system.owner.len(), 1);
//! assert_eq!(account.system.last_modified_time.unwrap().timestamp_millis(), 1_716_000_000_000);
//! assert_eq!(account.extra["field_erp_no__c"], "C0001");
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::de;

/// The system fields every CRM record carries (fxiaoke.md §5): owner, business type, life
/// and lock status, who created and last changed it and when. Flattened into each model, so
/// the wire shape is unchanged: `account.system.owner` is the record's `owner`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemFields {
    /// `owner`: the owner, a list of one `openUserId` (change it with `Client::change_owner`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub owner: Vec<String>,
    /// `record_type`: `default__c` or a `record_…__c` business type.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub record_type: Option<String>,
    /// `life_status`: `normal`, `ineffective`, `under_review`, `in_change`, `invalid`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub life_status: Option<String>,
    /// `lock_status`: `"0"` unlocked.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub lock_status: Option<String>,
    /// `is_deleted`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub is_deleted: Option<bool>,
    /// `created_by` (read-only).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub created_by: Vec<String>,
    /// `create_time` (read-only unless `specify_time`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "de::opt_epoch_millis"
    )]
    pub create_time: Option<DateTime<Utc>>,
    /// `last_modified_by` (read-only).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub last_modified_by: Vec<String>,
    /// `last_modified_time` (read-only): the cursor of incremental syncs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "de::opt_epoch_millis"
    )]
    pub last_modified_time: Option<DateTime<Utc>>,
    /// `data_own_department`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub data_own_department: Vec<String>,
}

/// 客户 (customer). Synced to K3Cloud `BD_Customer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountObj {
    /// `_id` (empty for a record not yet created).
    #[serde(
        rename = "_id",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::text"
    )]
    pub id: String,
    /// `name`: the customer name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub name: Option<String>,
    /// `account_no`: the customer number.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub account_no: Option<String>,
    /// `account_type` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub account_type: Option<String>,
    /// `account_level` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub account_level: Option<String>,
    /// `account_source` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub account_source: Option<String>,
    /// `tel`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub tel: Option<String>,
    /// `fax`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub fax: Option<String>,
    /// `email`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub email: Option<String>,
    /// `url`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub url: Option<String>,
    /// `address`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub address: Option<String>,
    /// `industry_level1` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub industry_level1: Option<String>,
    /// `industry_level2` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub industry_level2: Option<String>,
    /// `country` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub country: Option<String>,
    /// `province` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub province: Option<String>,
    /// `city` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub city: Option<String>,
    /// `district` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub district: Option<String>,
    /// `remark`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub remark: Option<String>,
    /// The system fields every object has.
    #[serde(flatten)]
    pub system: SystemFields,
    /// Every other field: custom fields (`…__c`), `__r` expansions, fields not typed here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccountObj {
    /// The object API name.
    pub const API_NAME: &'static str = "AccountObj";
}

/// 联系人 (contact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactObj {
    /// `_id` (empty for a record not yet created).
    #[serde(
        rename = "_id",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::text"
    )]
    pub id: String,
    /// `name`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub name: Option<String>,
    /// `account_id`: the customer's `_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub account_id: Option<String>,
    /// `company`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub company: Option<String>,
    /// `tel1`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub tel1: Option<String>,
    /// `tel2`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub tel2: Option<String>,
    /// `tel3`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub tel3: Option<String>,
    /// `mobile1`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub mobile1: Option<String>,
    /// `mobile2`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub mobile2: Option<String>,
    /// `mobile3`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub mobile3: Option<String>,
    /// `email`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub email: Option<String>,
    /// `remark`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub remark: Option<String>,
    /// The system fields every object has.
    #[serde(flatten)]
    pub system: SystemFields,
    /// Every other field: custom fields (`…__c`), `__r` expansions, fields not typed here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContactObj {
    /// The object API name.
    pub const API_NAME: &'static str = "ContactObj";
}

/// 销售订单 (sales order). Synced to K3Cloud `SAL_SaleOrder`; its lines are [`SalesOrderProductObj`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SalesOrderObj {
    /// `_id` (empty for a record not yet created).
    #[serde(
        rename = "_id",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::text"
    )]
    pub id: String,
    /// `name`: the order number (e.g. `O20180906-0007`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub name: Option<String>,
    /// `account_id`: the customer's `_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub account_id: Option<String>,
    /// `order_amount` (currency, as text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub order_amount: Option<String>,
    /// `order_time`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "de::opt_epoch_millis"
    )]
    pub order_time: Option<DateTime<Utc>>,
    /// `delivery_date`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "de::opt_epoch_millis"
    )]
    pub delivery_date: Option<DateTime<Utc>>,
    /// `discount`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub discount: Option<String>,
    /// `ship_to_id`: the consignee contact's `_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub ship_to_id: Option<String>,
    /// `ship_to_add`: the delivery address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub ship_to_add: Option<String>,
    /// `ship_to_tel`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub ship_to_tel: Option<String>,
    /// `quote_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub quote_id: Option<String>,
    /// `price_book_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub price_book_id: Option<String>,
    /// `receipt_type` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub receipt_type: Option<String>,
    /// `remark`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub remark: Option<String>,
    /// The system fields every object has.
    #[serde(flatten)]
    pub system: SystemFields,
    /// Every other field: custom fields (`…__c`), `__r` expansions, fields not typed here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SalesOrderObj {
    /// The object API name.
    pub const API_NAME: &'static str = "SalesOrderObj";
}

/// 订单产品 (sales order line), the detail object of [`SalesOrderObj`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SalesOrderProductObj {
    /// `_id` (empty for a record not yet created).
    #[serde(
        rename = "_id",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::text"
    )]
    pub id: String,
    /// `order_id`: the order's `_id` (filled by the server on a master-detail create).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub order_id: Option<String>,
    /// `product_id`: the product's `_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub product_id: Option<String>,
    /// `quantity` (number, as text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub quantity: Option<String>,
    /// `sales_price` (currency, as text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub sales_price: Option<String>,
    /// `product_price` (the list price).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub product_price: Option<String>,
    /// `subtotal`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub subtotal: Option<String>,
    /// `discount`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub discount: Option<String>,
    /// `unit` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub unit: Option<String>,
    /// `price_book_product_id`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub price_book_product_id: Option<String>,
    /// `remark`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub remark: Option<String>,
    /// The system fields every object has.
    #[serde(flatten)]
    pub system: SystemFields,
    /// Every other field: custom fields (`…__c`), `__r` expansions, fields not typed here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SalesOrderProductObj {
    /// The object API name.
    pub const API_NAME: &'static str = "SalesOrderProductObj";
}

/// 产品 (product). Matched to K3Cloud `BD_MATERIAL` by `product_code`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductObj {
    /// `_id` (empty for a record not yet created).
    #[serde(
        rename = "_id",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "de::text"
    )]
    pub id: String,
    /// `name`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub name: Option<String>,
    /// `product_code`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub product_code: Option<String>,
    /// `product_spec`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub product_spec: Option<String>,
    /// `unit` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub unit: Option<String>,
    /// `price` (currency, as text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub price: Option<String>,
    /// `category` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub category: Option<String>,
    /// `product_status` (option value).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub product_status: Option<String>,
    /// `off_shelves_time`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "de::opt_epoch_millis"
    )]
    pub off_shelves_time: Option<DateTime<Utc>>,
    /// `remark`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_text"
    )]
    pub remark: Option<String>,
    /// The system fields every object has.
    #[serde(flatten)]
    pub system: SystemFields,
    /// Every other field: custom fields (`…__c`), `__r` expansions, fields not typed here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProductObj {
    /// The object API name.
    pub const API_NAME: &'static str = "ProductObj";
}
