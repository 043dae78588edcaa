//! Translating Fxiaoke SDK errors and metadata into the engine's vocabulary.

use fxiaoke_sdk::{Error, FieldType, ObjectDescribe};

use crate::error::{ConnectorError, ConnectorErrorKind, System};
use crate::metadata::{FieldDescription, FieldKind, ObjectDescription};

/// An SDK error as the engine needs to see it.
pub(crate) fn connector_error(e: Error) -> ConnectorError {
    let kind = if e.is_outcome_unknown() {
        ConnectorErrorKind::OutcomeUnknown
    } else if e.is_retryable() || matches!(e, Error::TokenInvalid(_)) {
        // A token refused again right after the transport fetched a new one: the credentials
        // were accepted (the token endpoint answered), so it is churn — another process
        // fetching, a gateway restarting — and the next attempt gets a fresh token. As a lost
        // K3Cloud session, it leaves the records pending instead of stopping the flow.
        ConnectorErrorKind::Transient
    } else {
        ConnectorErrorKind::Permanent
    };
    let mut error = ConnectorError::new(kind, e.to_string()).with_system(System::Fxiaoke);
    if let Some(code) = e.error_code() {
        error = error.with_code(format!("errorCode {code}"));
    }
    error.with_source(e)
}

/// A connector's own error about Fxiaoke (an answer it cannot use, a setting that does not fit).
/// A capability Fxiaoke does not offer through this connector.
pub(crate) fn unsupported(what: impl Into<String>) -> ConnectorError {
    ConnectorError::unsupported(what).with_system(System::Fxiaoke)
}

pub(crate) fn permanent(message: impl Into<String>) -> ConnectorError {
    ConnectorError::permanent(message).with_system(System::Fxiaoke)
}

/// `object/describe` → the engine's object description.
pub(crate) fn describe(d: &ObjectDescribe) -> ObjectDescription {
    let mut object = ObjectDescription::new(d.api_name.clone());
    for (name, field) in &d.fields {
        if field.is_active == Some(false) {
            continue;
        }
        let kind = match field.field_type {
            FieldType::Text
            | FieldType::LongText
            | FieldType::HtmlRichText
            | FieldType::PhoneNumber
            | FieldType::Email
            | FieldType::Url => FieldKind::Text,
            FieldType::Number | FieldType::Currency | FieldType::Percentile => FieldKind::Number,
            FieldType::Date => FieldKind::Date,
            FieldType::DateTime => FieldKind::DateTime,
            FieldType::TrueOrFalse => FieldKind::Bool,
            FieldType::SelectOne => FieldKind::SelectOne,
            FieldType::SelectMany => FieldKind::SelectMany,
            FieldType::ObjectReference | FieldType::MasterDetail => FieldKind::Reference,
            ref other => FieldKind::Other(other.as_str().to_owned()),
        };
        let mut description = FieldDescription::new(name.clone(), kind)
            .with_options(field.options.iter().map(|o| o.value.clone()));
        if field.is_required {
            description = description.required();
        }
        object = object.field(description);
    }
    object
}
