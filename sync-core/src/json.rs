//! Small JSON helpers the connectors of both systems share.

use serde_json::Value;

/// A value as text: strings as they are, `null` as empty, a list (Fxiaoke lookups may come
/// back as one-element lists) as its first item, anything else as JSON.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.first().map(text).unwrap_or_default(),
        other => other.to_string(),
    }
}
