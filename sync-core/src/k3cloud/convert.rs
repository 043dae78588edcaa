//! Translating K3Cloud SDK errors and metadata into the engine's vocabulary.

use k3cloud_sdk::{Error, FormMetadata, RowResult};

use crate::error::{ConnectorError, ConnectorErrorKind, System};
use crate::metadata::{FieldDescription, FieldKind, ObjectDescription};

/// An SDK error as the engine needs to see it: may it be retried, must it be reconciled?
pub(crate) fn connector_error(e: Error) -> ConnectorError {
    let kind = if e.is_outcome_unknown() {
        ConnectorErrorKind::OutcomeUnknown
    } else if e.is_retryable() || matches!(e, Error::SessionExpired { .. }) {
        ConnectorErrorKind::Transient
    } else {
        ConnectorErrorKind::Permanent
    };
    let mut error = ConnectorError::new(kind, e.to_string()).with_system(System::K3Cloud);
    if let Some(code) = e.msg_code() {
        error = error.with_code(format!("MsgCode {code}"));
    }
    error.with_source(e)
}

/// A connector's own error about K3Cloud (an answer it cannot use, a setting that does not fit).
pub(crate) fn permanent(message: impl Into<String>) -> ConnectorError {
    ConnectorError::permanent(message).with_system(System::K3Cloud)
}

/// The messages of a refused row, joined for the dead-letter list.
pub(crate) fn row_reason(row: &RowResult) -> String {
    match row {
        RowResult::Failed(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        RowResult::Unconfirmed => "the server neither confirmed nor refused this row".into(),
        RowResult::Succeeded(_) => String::new(),
        _ => "unexpected row result".into(),
    }
}

/// QueryBusinessInfo of `form_id`, as the description a mapping is validated against.
pub(crate) async fn describe_form(
    client: &k3cloud_sdk::Client,
    form_id: &str,
) -> Result<ObjectDescription, ConnectorError> {
    let meta = client
        .business_info(form_id)
        .await
        .map_err(connector_error)?;
    Ok(describe(&meta))
}

/// QueryBusinessInfo → the engine's object description (header fields at the top, entries
/// under their key).
pub(crate) fn describe(meta: &FormMetadata) -> ObjectDescription {
    let mut object = ObjectDescription::new(meta.form_id.clone());
    for entry in &meta.entries {
        let is_header = entry.parent_key.is_none()
            && (entry.key.eq_ignore_ascii_case("FBillHead") || meta.entries.len() == 1);
        let mut target = if is_header {
            std::mem::take(&mut object)
        } else {
            ObjectDescription::new(entry.key.clone())
        };
        for field in &entry.fields {
            let mut description = FieldDescription::new(field.key.clone(), kind(field));
            if field.must_input {
                description = description.required();
            }
            target = target.field(description);
        }
        if is_header {
            object = target;
        } else {
            object = object.entry(entry.key.clone(), target);
        }
    }
    object
}

fn kind(field: &k3cloud_sdk::FieldMetadata) -> FieldKind {
    if field
        .lookup_form_id
        .as_deref()
        .is_some_and(|f| !f.is_empty())
    {
        return FieldKind::Reference;
    }
    // The FieldType code list is not published; keep the vendor's value.
    FieldKind::Other(field.field_type.clone().unwrap_or_default())
}
