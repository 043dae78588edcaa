//! Metadata: QueryBusinessInfo (form structure) and GetDataCenterList.

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::client::Client;
use crate::de;
use crate::error::{Error, Result};
use crate::response::decode_value_at;
use crate::retry::Idempotency;
use crate::service;
use crate::transport::Call;

/// Text in several languages: `[{"Key": 2052, "Value": "物料"}, …]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalizedText(pub Vec<(i64, String)>);

impl LocalizedText {
    /// The text for a language id (2052 简体中文, 1033 English, 3076 繁體中文).
    pub fn get(&self, lcid: i64) -> Option<&str> {
        self.0
            .iter()
            .find(|(l, _)| *l == lcid)
            .map(|(_, t)| t.as_str())
    }

    /// The Simplified Chinese text, or else the first one.
    pub fn text(&self) -> Option<&str> {
        self.get(2052)
            .or_else(|| self.0.first().map(|(_, t)| t.as_str()))
    }
}

impl<'de> Deserialize<'de> for LocalizedText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Item {
            #[serde(rename = "Key", deserialize_with = "de::i64")]
            key: i64,
            #[serde(rename = "Value", default, deserialize_with = "de::string")]
            value: String,
        }
        Ok(match Value::deserialize(d)? {
            Value::Array(items) => LocalizedText(
                items
                    .into_iter()
                    .filter_map(|i| serde_json::from_value::<Item>(i).ok())
                    .map(|i| (i.key, i.value))
                    .collect(),
            ),
            Value::String(s) => LocalizedText(vec![(2052, s)]),
            _ => LocalizedText::default(),
        })
    }
}

/// The structure of a form, from QueryBusinessInfo: enough to check that a mapping names real
/// fields and fills the required ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct FormMetadata {
    /// The form id.
    #[serde(rename = "Id", default, deserialize_with = "de::string")]
    pub form_id: String,
    /// The form's name.
    #[serde(rename = "Name", default)]
    pub name: LocalizedText,
    /// The header and every entry (单据头 / 单据体), each with its fields.
    #[serde(rename = "Entrys", default, deserialize_with = "lenient_list")]
    pub entries: Vec<EntryMetadata>,
    /// The operations the form offers, as sent.
    #[serde(rename = "Operations", default, deserialize_with = "lenient_list")]
    pub operations: Vec<Value>,
}

/// One entity of a form: the header (`FBillHead`) or an entry (`FSaleOrderEntry`, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct EntryMetadata {
    /// The entity key.
    #[serde(rename = "Key", default, deserialize_with = "de::string")]
    pub key: String,
    /// The parent entity's key, for sub-entries.
    #[serde(rename = "ParentKey", default, deserialize_with = "de::opt_string")]
    pub parent_key: Option<String>,
    /// The entity's name.
    #[serde(rename = "Name", default)]
    pub name: LocalizedText,
    /// Its fields.
    #[serde(rename = "Fields", default, deserialize_with = "lenient_list")]
    pub fields: Vec<FieldMetadata>,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FieldMetadata {
    /// The field key (`FNumber`, `FCustId`, …).
    #[serde(rename = "Key", default, deserialize_with = "de::string")]
    pub key: String,
    /// The field's name.
    #[serde(rename = "Name", default)]
    pub name: LocalizedText,
    /// `FieldType`, as sent (the type code list is not published).
    #[serde(rename = "FieldType", default, deserialize_with = "de::opt_string")]
    pub field_type: Option<String>,
    /// `ElementType`, as sent.
    #[serde(rename = "ElementType", default, deserialize_with = "de::opt_string")]
    pub element_type: Option<String>,
    /// `MustInput`: required.
    #[serde(rename = "MustInput", default, deserialize_with = "de::bool")]
    pub must_input: bool,
    /// `LookUpObjectFormId`: the base-data form a reference field points to.
    #[serde(
        rename = "LookUpObjectFormId",
        default,
        deserialize_with = "de::opt_string"
    )]
    pub lookup_form_id: Option<String>,
}

fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl FormMetadata {
    /// A field by key (case-insensitive, as K3Cloud treats keys), with its entity.
    pub fn field(&self, key: &str) -> Option<(&EntryMetadata, &FieldMetadata)> {
        self.entries.iter().find_map(|e| {
            e.fields
                .iter()
                .find(|f| f.key.eq_ignore_ascii_case(key))
                .map(|f| (e, f))
        })
    }

    /// An entity by key (case-insensitive).
    pub fn entry(&self, key: &str) -> Option<&EntryMetadata> {
        self.entries
            .iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// Every required field, with its entity.
    pub fn required_fields(&self) -> impl Iterator<Item = (&EntryMetadata, &FieldMetadata)> {
        self.entries.iter().flat_map(|e| {
            e.fields
                .iter()
                .filter(|f| f.must_input)
                .map(move |f| (e, f))
        })
    }
}

/// One data centre (account set, 账套) from GetDataCenterList.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct DataCenter {
    /// The account id to log in with (`acctID`).
    #[serde(rename = "Id", default, deserialize_with = "de::string")]
    pub id: String,
    /// Its number.
    #[serde(rename = "Number", default, deserialize_with = "de::string")]
    pub number: String,
    /// Its name.
    #[serde(rename = "Name", default, deserialize_with = "de::string")]
    pub name: String,
    /// The server version.
    #[serde(rename = "Version", default, deserialize_with = "de::opt_string")]
    pub version: Option<String>,
}

impl Client {
    /// QueryBusinessInfo: the structure of a form (entities, fields, required flags, lookups).
    ///
    /// ```no_run
    /// # async fn run(client: k3cloud_sdk::Client) -> Result<(), k3cloud_sdk::Error> {
    /// let meta = client.business_info("SAL_SaleOrder").await?;
    /// for (entry, field) in meta.required_fields() {
    ///     println!("{}.{} is required", entry.key, field.key);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn business_info(&self, form_id: &str) -> Result<FormMetadata> {
        crate::form::check_form_id(form_id)?;
        let service = service::dynamic_form("QueryBusinessInfo");
        let call = Call {
            service: &service,
            body: json!({"data": {"FormId": form_id}}),
            idempotency: Idempotency::Idempotent,
            form_id: Some(form_id),
        };
        let answer = self.transport.call(call).await?;
        let raw = answer.clone().into_value()?;
        let data = match raw.get("Result").and_then(|r| r.get("NeedReturnData")) {
            // Some documentation shows the metadata as a JSON string.
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| Error::Decode {
                path: "Result.NeedReturnData".into(),
                message: e.to_string(),
                snippet: crate::response::snippet(s.as_bytes()),
            })?,
            Some(v @ Value::Object(_)) => v.clone(),
            _ => {
                return Err(Error::Decode {
                    path: "Result.NeedReturnData".into(),
                    message: "no form metadata in the answer".into(),
                    snippet: crate::response::snippet(&answer.bytes),
                });
            }
        };
        decode_value_at(&data, "Result.NeedReturnData", &answer.bytes)
    }

    /// GetDataCenterList: the account sets of the server. Needs no valid credentials, so it
    /// says nothing about whether yours work.
    pub async fn data_centers(&self) -> Result<Vec<DataCenter>> {
        let call = Call {
            service: service::DATA_CENTER_LIST,
            body: json!({}),
            idempotency: Idempotency::Idempotent,
            form_id: None,
        };
        self.transport.call(call).await?.decode()
    }
}
