//! Small JSON helpers the connectors of both systems share.

use serde_json::{Map, Value};

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

/// Sets a dotted path (`FCustomerID.FNumber` → `{"FCustomerID": {"FNumber": value}}`),
/// creating objects on the way and replacing a non-object in the way.
pub(crate) fn set_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            map.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let slot = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                set_path(inner, rest, value);
            }
        }
    }
}
