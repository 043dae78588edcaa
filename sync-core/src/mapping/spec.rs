//! The mapping file as written by people (deserialized, not yet checked).

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingSpec {
    #[serde(default)]
    pub(crate) version: Option<u32>,
    #[serde(default)]
    pub(crate) natural_key: Option<String>,
    #[serde(default)]
    pub(crate) dictionaries: BTreeMap<String, DictionarySpec>,
    #[serde(default)]
    pub(crate) fields: Vec<FieldSpec>,
    #[serde(default)]
    pub(crate) entries: Vec<EntrySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DictionarySpec {
    pub(crate) values: BTreeMap<String, Value>,
    #[serde(default)]
    pub(crate) on_unknown: Option<UnknownPolicy>,
    #[serde(default)]
    pub(crate) default: Option<Value>,
}

/// What a dictionary does with a value it does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UnknownPolicy {
    /// The record fails with the unknown value in the reason (the default).
    Error,
    /// The dictionary's `default` is used.
    Default,
    /// The value passes through unchanged.
    Keep,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldSpec {
    pub(crate) target: String,
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default)]
    pub(crate) sources: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) separator: Option<String>,
    #[serde(default)]
    pub(crate) constant: Option<Value>,
    #[serde(default)]
    pub(crate) lookup: Option<LookupSpec>,
    #[serde(default)]
    pub(crate) dictionary: Option<String>,
    #[serde(default)]
    pub(crate) transforms: Vec<Value>,
    #[serde(default)]
    pub(crate) reference: Option<String>,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default)]
    pub(crate) keep_null: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LookupSpec {
    pub(crate) flow: String,
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) by: By,
    #[serde(default)]
    pub(crate) take: Take,
}

/// Which side of the other flow's ID map `from` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum By {
    /// A source key of that flow (CRM account id → ERP customer).
    #[default]
    Source,
    /// A target number of that flow (ERP order number → CRM order).
    Number,
}

/// Which part of the looked-up target a lookup yields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Take {
    /// The business number (K3Cloud `FNumber`), the usual way to reference base data.
    #[default]
    Number,
    /// The internal id.
    Id,
    /// The source record's key (with `by = "number"`: the CRM id an ERP number came from).
    Source,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntrySpec {
    pub(crate) target: String,
    pub(crate) source: String,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default)]
    pub(crate) fields: Vec<FieldSpec>,
    #[serde(default)]
    pub(crate) entries: Vec<EntrySpec>,
}
