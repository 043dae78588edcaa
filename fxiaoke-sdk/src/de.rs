//! Lenient (de)serializers for Fxiaoke values.
//!
//! Fxiaoke is loose about JSON types: times are epoch milliseconds as numbers or numeric
//! strings, amounts arrive as `"100.01"` or `100.01`, `owner` is a list even though it holds
//! one id (some clients send a bare string), empty fields are omitted. Use these with
//! `#[serde(with = "…")]` / `#[serde(deserialize_with = "…")]` on your own record structs:
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Lead {
//!     #[serde(rename = "_id")]
//!     id: String,
//!     #[serde(default, deserialize_with = "fxiaoke_sdk::de::string_list")]
//!     owner: Vec<String>,
//!     #[serde(default, with = "fxiaoke_sdk::de::opt_epoch_millis")]
//!     last_modified_time: Option<DateTime<Utc>>,
//!     #[serde(default, deserialize_with = "fxiaoke_sdk::de::opt_text")]
//!     amount: Option<String>,
//! }
//!
//! let lead: Lead = serde_json::from_str(
//!     r#"{"_id":"5dc4","owner":"FSUID_1","last_modified_time":"1716000000000","amount":250.5}"#,
//! ).unwrap();
//! assert_eq!(lead.owner, ["FSUID_1"]);
//! assert_eq!(lead.last_modified_time.unwrap().timestamp_millis(), 1_716_000_000_000);
//! assert_eq!(lead.amount.as_deref(), Some("250.5"));
//! // Times go back out as epoch milliseconds.
//! let out = serde_json::to_value(&lead).unwrap();
//! assert_eq!(out["last_modified_time"], 1_716_000_000_000_i64);
//! ```

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serializer};
use serde_json::Value;

pub(crate) use fxk3_kernel::json::{is_blank, kind, scalar_to_string, to_i64};

/// Epoch milliseconds (a number or a numeric string) as a UTC time; serialized back as a
/// number of milliseconds. For `#[serde(with = "fxiaoke_sdk::de::epoch_millis")]`.
pub mod epoch_millis {
    use super::{DateTime, Deserialize, Deserializer, Serializer, Utc, Value, kind};
    use serde::de::Error as _;

    /// Deserializes epoch milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let v = Value::deserialize(d)?;
        super::value_to_time(&v).ok_or_else(|| {
            D::Error::custom(format!("expected epoch milliseconds, got {}", kind(&v)))
        })
    }

    /// Serializes as epoch milliseconds.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.timestamp_millis())
    }
}

/// Like [`epoch_millis`], with `null` and `""` as `None` (0 is a real instant). Use with `#[serde(default, with = "fxiaoke_sdk::de::opt_epoch_millis")]`.
pub mod opt_epoch_millis {
    use super::{DateTime, Deserialize, Deserializer, Serializer, Utc, Value, is_blank, kind};
    use serde::de::Error as _;

    /// Deserializes optional epoch milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let v = Value::deserialize(d)?;
        if is_blank(&v) {
            return Ok(None);
        }
        super::value_to_time(&v).map(Some).ok_or_else(|| {
            D::Error::custom(format!("expected epoch milliseconds, got {}", kind(&v)))
        })
    }

    /// Serializes as epoch milliseconds, or `null`.
    // serde's `with` passes `&Option<T>`.
    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_i64(t.timestamp_millis()),
            None => s.serialize_none(),
        }
    }
}

/// A list of ids (`["FSUID_…"]`), also from a bare string or number; `null` and `""` as an
/// empty list. Owners, creators, departments and employee fields are lists on the wire.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| {
                scalar_to_string(i).ok_or_else(|| {
                    D::Error::custom(format!("expected ids in the list, got {}", kind(i)))
                })
            })
            .collect(),
        ref v if is_blank(v) => Ok(Vec::new()),
        ref v => scalar_to_string(v)
            .map(|s| vec![s])
            .ok_or_else(|| D::Error::custom(format!("expected a list of ids, got {}", kind(v)))),
    }
}

/// Any scalar as text (`100.01` → `"100.01"`); `null` and `""` as `None`.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    scalar_to_string(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected text, got {}", kind(&v))))
}

/// Any scalar as text; `null` as `""`.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    scalar_to_string(&v).ok_or_else(|| D::Error::custom(format!("expected text, got {}", kind(&v))))
}

/// An integer, or a string holding one; `null` and `""` as `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    to_i64(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected an integer, got {}", kind(&v))))
}

/// A list of integers (department ids), numbers or numeric strings; `null` as empty.
pub fn i64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::Array(items) => items
            .iter()
            .filter(|i| !is_blank(i))
            .map(|i| {
                to_i64(i).ok_or_else(|| {
                    D::Error::custom(format!("expected integers in the list, got {}", kind(i)))
                })
            })
            .collect(),
        v if is_blank(v) => Ok(Vec::new()),
        v => to_i64(v)
            .map(|i| vec![i])
            .ok_or_else(|| D::Error::custom(format!("expected integers, got {}", kind(v)))),
    }
}

/// `true`/`false`, `"true"`/`"false"`, `1`/`0`; `null` and `""` as `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Value::deserialize(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    value_to_bool(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a boolean, got {}", kind(&v))))
}

/// Like [`opt_bool`], with absent values as `false`.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    opt_bool(d).map(Option::unwrap_or_default)
}

/// Epoch milliseconds as a UTC time, when the value is a number or a numeric string.
pub fn value_to_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(to_i64(v)?)
}

pub(crate) fn value_to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Deserialize, Serialize, Debug, PartialEq)]
    struct Row {
        #[serde(default, deserialize_with = "string_list")]
        owner: Vec<String>,
        #[serde(default, with = "opt_epoch_millis")]
        at: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "opt_text")]
        amount: Option<String>,
        #[serde(default, deserialize_with = "i64_list")]
        depts: Vec<i64>,
        #[serde(default, deserialize_with = "opt_bool")]
        stop: Option<bool>,
    }

    fn row(json: &str) -> Result<Row, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn loose_values_decode() {
        let r = row(r#"{"owner":["FSUID_A"],"at":1716000000000,"amount":"12.50","depts":[1001,"999999"],"stop":"false"}"#).unwrap();
        assert_eq!(r.owner, ["FSUID_A"]);
        assert_eq!(r.at.unwrap().timestamp_millis(), 1_716_000_000_000);
        assert_eq!(r.amount.as_deref(), Some("12.50"));
        assert_eq!(r.depts, [1001, 999_999]);
        assert_eq!(r.stop, Some(false));
        let r =
            row(r#"{"owner":"FSUID_B","at":"1716000000000","amount":12.5,"depts":null,"stop":1}"#)
                .unwrap();
        assert_eq!(r.owner, ["FSUID_B"]);
        assert_eq!(r.amount.as_deref(), Some("12.5"));
        assert!(r.depts.is_empty());
        assert_eq!(r.stop, Some(true));
        let r = row(r#"{"owner":null,"at":"","amount":""}"#).unwrap();
        assert_eq!(
            r,
            Row {
                owner: vec![],
                at: None,
                amount: None,
                depts: vec![],
                stop: None
            }
        );
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(row(r#"{"owner":[{"id":1}]}"#).is_err());
        assert!(row(r#"{"at":"yesterday"}"#).is_err());
        assert!(row(r#"{"at":1e300}"#).is_err());
        assert!(row(r#"{"at":9223372036854775807}"#).is_err());
        assert!(row(r#"{"amount":[1]}"#).is_err());
        assert!(row(r#"{"depts":["x"]}"#).is_err());
        assert!(row(r#"{"stop":"maybe"}"#).is_err());
    }

    #[test]
    fn times_serialize_as_millis() {
        let r = row(r#"{"at":1716000000123}"#).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["at"], 1_716_000_000_123_i64);
    }
}
