//! A vendor-neutral description of an object's fields, for checking mappings before a run.
//!
//! Connectors build it from Fxiaoke `object/describe` (`fields.<api>.{type, is_required,
//! options}`) or K3Cloud `QueryBusinessInfo` (`Entrys[].Fields[].{Key, FieldType, MustInput,
//! LookUpObjectFormId}`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of value a field holds, as far as mapping checks care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FieldKind {
    /// Text.
    Text,
    /// A number, amount or quantity.
    Number,
    /// True or false.
    Bool,
    /// A date.
    Date,
    /// A date and time.
    DateTime,
    /// One option of a list (Fxiaoke `select_one`).
    SelectOne,
    /// Several options (Fxiaoke `select_many`).
    SelectMany,
    /// A reference to another object (K3Cloud base data, Fxiaoke `object_reference`).
    Reference,
    /// Anything else, with the vendor's type name.
    Other(String),
}

/// One field of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDescription {
    /// The field's API name or key (`account_type`, `FCustTypeId`).
    pub name: String,
    /// The kind of value.
    pub kind: FieldKind,
    /// Whether the system requires it on create.
    pub required: bool,
    /// Allowed option values (for select fields), empty when not applicable.
    pub options: Vec<String>,
}

impl FieldDescription {
    /// A field that is not required and has no options.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
            required: false,
            options: Vec::new(),
        }
    }
    /// Marks the field as required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Sets the allowed option values.
    #[must_use]
    pub fn with_options<I: IntoIterator<Item = S>, S: Into<String>>(mut self, options: I) -> Self {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }
}

/// An object's fields and its detail entries (K3Cloud entry entities, Fxiaoke detail objects).
///
/// ```
/// use sync_core::metadata::{FieldDescription, FieldKind, ObjectDescription};
///
/// let customer = ObjectDescription::new("BD_Customer")
///     .field(FieldDescription::new("FName", FieldKind::Text).required())
///     .field(FieldDescription::new("FCustTypeId", FieldKind::Reference));
/// assert!(customer.fields.contains_key("FName"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDescription {
    /// The object's API name or FormId.
    pub name: String,
    /// Fields by name.
    pub fields: BTreeMap<String, FieldDescription>,
    /// Detail entries by the path they appear under (`FSaleOrderEntry`,
    /// `details.SalesOrderProductObj`).
    pub entries: BTreeMap<String, ObjectDescription>,
}

impl ObjectDescription {
    /// An object with no fields yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
    /// Adds a field.
    #[must_use]
    pub fn field(mut self, field: FieldDescription) -> Self {
        self.fields.insert(field.name.clone(), field);
        self
    }
    /// Adds a detail entry under `path`.
    #[must_use]
    pub fn entry(mut self, path: impl Into<String>, entry: ObjectDescription) -> Self {
        self.entries.insert(path.into(), entry);
        self
    }
}
