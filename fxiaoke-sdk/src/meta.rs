//! Metadata: the tenant's objects, and each object's fields, types and option values —
//! enough to check a mapping before records are written.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::crm::check_object;
use crate::de;
use crate::error::Result;
use crate::response::Data;
use crate::transport::Call;

/// One object of the tenant, from `/cgi/crm/v2/object/list`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ObjectSummary {
    /// `describeApiName`, e.g. `AccountObj`, `object_Hk2p1__c`.
    #[serde(rename = "describeApiName", deserialize_with = "de::text")]
    pub api_name: String,
    /// `describeDisplayName`, e.g. `客户`.
    #[serde(rename = "describeDisplayName", default, deserialize_with = "de::text")]
    pub display_name: String,
    /// `defineType`: `package` (preset) or `custom`.
    #[serde(rename = "defineType", default, deserialize_with = "de::text")]
    pub define_type: String,
    /// `isActive`.
    #[serde(rename = "isActive", default, deserialize_with = "de::opt_bool")]
    pub is_active: Option<bool>,
    /// Any other key (`iconPath`, `hideButton`, `publicObject`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An object's structure, from `/cgi/crm/v2/object/describe` (`data.describe`).
///
/// ```
/// use fxiaoke_sdk::{FieldProblem, ObjectDescribe};
/// use serde_json::json;
///
/// let describe: ObjectDescribe = serde_json::from_value(json!({
///     "api_name": "ProductObj",
///     "fields": {
///         "name": {"api_name": "name", "label": "产品名称", "type": "text", "is_required": true},
///         "unit": {"api_name": "unit", "label": "单位", "type": "select_one",
///                  "options": [{"label": "个", "value": "1"}]}
///     }
/// })).unwrap();
/// let record = json!({"unit": "个", "colour": "red"});
/// let problems = describe.check(record.as_object().unwrap());
/// assert_eq!(problems, [
///     FieldProblem::NotAnOption { field: "unit".into(), value: json!("个") },
///     FieldProblem::UnknownField { field: "colour".into() },
///     FieldProblem::MissingRequired { field: "name".into() },
/// ]);
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ObjectDescribe {
    /// `api_name`.
    #[serde(default, deserialize_with = "de::text")]
    pub api_name: String,
    /// `display_name`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub display_name: Option<String>,
    /// `fields`, by API name.
    #[serde(default, deserialize_with = "fields_map")]
    pub fields: BTreeMap<String, FieldDescribe>,
    /// Any other key of `describe`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One field of an object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct FieldDescribe {
    /// `api_name`.
    #[serde(default, deserialize_with = "de::text")]
    pub api_name: String,
    /// `label`, the display name.
    #[serde(default, deserialize_with = "de::text")]
    pub label: String,
    /// `type`.
    #[serde(rename = "type", default)]
    pub field_type: FieldType,
    /// `is_required`.
    #[serde(default, deserialize_with = "de::bool")]
    pub is_required: bool,
    /// `is_active` (absent on some fields: treat as active).
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_active: Option<bool>,
    /// `define_type`: `system`, `package` or `custom`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub define_type: Option<String>,
    /// `options` of select fields: the values to send, with their labels.
    #[serde(default, deserialize_with = "options")]
    pub options: Vec<SelectOption>,
    /// `decimal_places` of numbers and currency.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub decimal_places: Option<i64>,
    /// `max_length` of text.
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub max_length: Option<i64>,
    /// Any other key (`date_format`, `time_zone`, `default_value`, `is_single`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FieldDescribe {
    /// Whether `value` is one of the option values (not labels) of a select field.
    pub fn has_option(&self, value: &str) -> bool {
        self.options.iter().any(|o| o.value == value)
    }

    /// The option value for a label (`"个"` → `"1"`).
    pub fn option_value(&self, label: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.label == label)
            .map(|o| o.value.as_str())
    }
}

/// One option of a select field: send `value`, show `label`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SelectOption {
    /// `label`.
    #[serde(default, deserialize_with = "de::text")]
    pub label: String,
    /// `value`.
    #[serde(default, deserialize_with = "de::text")]
    pub value: String,
}

/// A field type, as `describe` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FieldType {
    /// `text`.
    Text,
    /// `long_text`.
    LongText,
    /// `html_rich_text`.
    HtmlRichText,
    /// `select_one`.
    SelectOne,
    /// `select_many`.
    SelectMany,
    /// `number`.
    Number,
    /// `currency`.
    Currency,
    /// `percentile`.
    Percentile,
    /// `date` (epoch ms; the time part ignored).
    Date,
    /// `time` (ms since midnight).
    Time,
    /// `date_time` (epoch ms).
    DateTime,
    /// `true_or_false`.
    TrueOrFalse,
    /// `phone_number`.
    PhoneNumber,
    /// `email`.
    Email,
    /// `url`.
    Url,
    /// `employee` (a list of ids).
    Employee,
    /// `employee_many`.
    EmployeeMany,
    /// `department`.
    Department,
    /// `department_many`.
    DepartmentMany,
    /// `object_reference` (a lookup: the target `_id`).
    ObjectReference,
    /// `object_reference_many`.
    ObjectReferenceMany,
    /// `master_detail` (the master's `_id`).
    MasterDetail,
    /// `auto_number`.
    AutoNumber,
    /// `formula` (computed, read-only).
    Formula,
    /// `count` (computed, read-only).
    Count,
    /// `quote` (copied from a lookup, read-only).
    Quote,
    /// `record_type`.
    RecordType,
    /// `file_attachment`.
    FileAttachment,
    /// `image`.
    Image,
    /// Any other type (`location`, `country`, `tag`, …), as named.
    Other(String),
    /// No type given.
    #[default]
    Unknown,
}

impl FieldType {
    const NAMES: [(&'static str, FieldType); 30] = [
        ("text", FieldType::Text),
        ("long_text", FieldType::LongText),
        ("html_rich_text", FieldType::HtmlRichText),
        ("select_one", FieldType::SelectOne),
        ("select_many", FieldType::SelectMany),
        ("number", FieldType::Number),
        ("currency", FieldType::Currency),
        ("percentile", FieldType::Percentile),
        ("date", FieldType::Date),
        ("time", FieldType::Time),
        ("date_time", FieldType::DateTime),
        ("true_or_false", FieldType::TrueOrFalse),
        ("phone_number", FieldType::PhoneNumber),
        ("email", FieldType::Email),
        ("url", FieldType::Url),
        ("employee", FieldType::Employee),
        ("employee_many", FieldType::EmployeeMany),
        ("department", FieldType::Department),
        ("department_many", FieldType::DepartmentMany),
        ("object_reference", FieldType::ObjectReference),
        ("object_reference_many", FieldType::ObjectReferenceMany),
        ("master_detail", FieldType::MasterDetail),
        ("auto_number", FieldType::AutoNumber),
        ("formula", FieldType::Formula),
        ("count", FieldType::Count),
        ("quote", FieldType::Quote),
        ("record_type", FieldType::RecordType),
        ("file_attachment", FieldType::FileAttachment),
        ("image", FieldType::Image),
        ("", FieldType::Unknown),
    ];

    /// The type for a wire name.
    pub fn from_name(name: &str) -> FieldType {
        FieldType::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| FieldType::Other(name.to_owned()), |(_, t)| t.clone())
    }

    /// The wire name (`"select_one"`).
    pub fn as_str(&self) -> &str {
        match self {
            FieldType::Other(name) => name,
            t => FieldType::NAMES
                .iter()
                .find(|(_, x)| x == t)
                .map_or("", |(n, _)| n),
        }
    }

    /// Computed fields the server fills: never write them.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            FieldType::Formula | FieldType::Count | FieldType::Quote | FieldType::AutoNumber
        )
    }

    /// Fields whose values are lists on the wire (`owner`, departments, multi-selects, …).
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            FieldType::Employee
                | FieldType::EmployeeMany
                | FieldType::Department
                | FieldType::DepartmentMany
                | FieldType::SelectMany
                | FieldType::ObjectReferenceMany
        )
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => FieldType::from_name(&s),
            _ => FieldType::Unknown,
        })
    }
}

fn fields_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, FieldDescribe>, D::Error> {
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| {
                let mut field: FieldDescribe =
                    serde_json::from_value(v).map_err(|e| D::Error::custom(format!("{k}: {e}")))?;
                if field.api_name.is_empty() {
                    field.api_name.clone_from(&k);
                }
                Ok((k, field))
            })
            .collect(),
        // Some describes list fields instead of keying them.
        Value::Array(items) => items
            .into_iter()
            .map(|v| {
                let field: FieldDescribe = serde_json::from_value(v).map_err(D::Error::custom)?;
                Ok((field.api_name.clone(), field))
            })
            .collect(),
        _ => Ok(BTreeMap::new()),
    }
}

fn options<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SelectOption>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| serde_json::from_value(i).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// Something wrong with a record, found by [`ObjectDescribe::check`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldProblem {
    /// The object has no such field.
    UnknownField {
        /// The field.
        field: String,
    },
    /// The field exists but is inactive.
    InactiveField {
        /// The field.
        field: String,
    },
    /// A computed field (formula, count, quote, auto number): the server ignores writes.
    ReadOnlyField {
        /// The field.
        field: String,
    },
    /// A select field got a value that is not one of its option values (a label, perhaps).
    NotAnOption {
        /// The field.
        field: String,
        /// The value given.
        value: Value,
    },
    /// A required field is missing or empty.
    MissingRequired {
        /// The field.
        field: String,
    },
}

/// Keys a record may carry that are not fields of the describe.
const NOT_FIELDS: [&str; 3] = ["_id", "dataObjectApiName", "object_describe_api_name"];

impl ObjectDescribe {
    /// A field by API name.
    pub fn field(&self, api_name: &str) -> Option<&FieldDescribe> {
        self.fields.get(api_name)
    }

    /// The required fields.
    pub fn required_fields(&self) -> impl Iterator<Item = &FieldDescribe> {
        self.fields.values().filter(|f| f.is_required)
    }

    /// Checks a record about to be created against this describe: unknown, inactive and
    /// read-only fields (in the record's key order), select values that are not option
    /// values, then required fields that are missing (in field order). Read-only suffixes
    /// (`__r`, `__l`, …) are not checked. System fields the server fills (`owner` aside) may
    /// be reported as missing only if the describe marks them required.
    pub fn check(&self, record: &Map<String, Value>) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        for (key, value) in record {
            if NOT_FIELDS.contains(&key.as_str()) || is_derived(key) {
                continue;
            }
            let Some(field) = self.fields.get(key) else {
                problems.push(FieldProblem::UnknownField { field: key.clone() });
                continue;
            };
            if field.is_active == Some(false) {
                problems.push(FieldProblem::InactiveField { field: key.clone() });
            }
            if field.field_type.is_read_only() {
                problems.push(FieldProblem::ReadOnlyField { field: key.clone() });
            }
            if matches!(
                field.field_type,
                FieldType::SelectOne | FieldType::SelectMany
            ) && !field.options.is_empty()
            {
                let values: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    Value::Null => Vec::new(),
                    v => vec![v],
                };
                for v in values {
                    let text = de::scalar_to_string(v).unwrap_or_default();
                    if !field.has_option(&text) {
                        problems.push(FieldProblem::NotAnOption {
                            field: key.clone(),
                            value: v.clone(),
                        });
                    }
                }
            }
        }
        for field in self.required_fields() {
            let present = record
                .get(&field.api_name)
                .is_some_and(|v| !de::is_blank(v) && v.as_array().is_none_or(|a| !a.is_empty()));
            if !present {
                problems.push(FieldProblem::MissingRequired {
                    field: field.api_name.clone(),
                });
            }
        }
        problems
    }
}

/// `owner__r`, `life_status__l`, …: read-only expansions the server adds.
fn is_derived(key: &str) -> bool {
    ["__r", "__l", "__o", "__v", "__p", "__relation_ids"]
        .iter()
        .any(|s| key.ends_with(s))
}

/// `data` of `object/list`: `{"objects": […]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListData {
    #[serde(default)]
    pub(crate) objects: Vec<ObjectSummary>,
}

/// `data` of `object/describe`: `{"describe": {…}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct DescribeData {
    pub(crate) describe: ObjectDescribe,
}

/// List the tenant's objects. Created by [`Client::objects`].
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// for o in client.objects().send().await? {
///     println!("{} {} ({})", o.api_name, o.display_name, o.define_type);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct ObjectList<'c> {
    client: &'c Client,
}

impl<'c> ObjectList<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        ObjectList { client }
    }

    /// Lists the objects.
    pub async fn send(self) -> Result<Vec<ObjectSummary>> {
        let call = Call::new("crm.object_list", "/cgi/crm/v2/object/list", Map::new());
        let (data, _) = self
            .client
            .transport
            .call_decoded(call, &Data::<ListData>::NEW)
            .await?;
        Ok(data.objects)
    }
}

/// Describe an object. Created by [`Client::describe`].
///
/// Sent as the legacy clients send it: `apiName` and `includeDetail` at the top level.
///
/// ```no_run
/// # async fn run(client: fxiaoke_sdk::Client) -> Result<(), fxiaoke_sdk::Error> {
/// let product = client.describe("ProductObj").include_detail(true).send().await?;
/// let unit = product.field("unit").unwrap();
/// assert_eq!(unit.option_value("个"), Some("1"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "nothing is sent until you call .send()"]
pub struct Describe<'c> {
    client: &'c Client,
    object: String,
    include_detail: Option<bool>,
}

impl<'c> Describe<'c> {
    pub(crate) fn new(client: &'c Client, object: String) -> Self {
        Describe {
            client,
            object,
            include_detail: None,
        }
    }

    /// `includeDetail`: include detail-object information (its shape in the answer is not
    /// documented; it lands in [`ObjectDescribe::extra`]).
    pub fn include_detail(mut self, on: bool) -> Self {
        self.include_detail = Some(on);
        self
    }

    /// Describes the object.
    pub async fn send(self) -> Result<ObjectDescribe> {
        check_object(&self.object)?;
        let mut body = Map::new();
        body.insert("apiName".into(), self.object.clone().into());
        if let Some(on) = self.include_detail {
            body.insert("includeDetail".into(), on.into());
        }
        let call =
            Call::new("crm.describe", "/cgi/crm/v2/object/describe", body).object(&self.object);
        let (data, _) = self
            .client
            .transport
            .call_decoded(call, &Data::<DescribeData>::NEW)
            .await?;
        Ok(data.describe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_types_round_trip() {
        for (name, t) in &FieldType::NAMES {
            assert_eq!(FieldType::from_name(name), *t);
            assert_eq!(t.as_str(), *name);
        }
        assert_eq!(
            FieldType::from_name("location"),
            FieldType::Other("location".into())
        );
        assert_eq!(FieldType::from_name("location").as_str(), "location");
    }
}
