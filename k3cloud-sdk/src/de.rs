//! Lenient deserializers for K3Cloud values.
//!
//! K3Cloud is loose about JSON types: ids arrive as numbers or strings, `IsSuccess` as `true` or
//! `"true"`, amounts as `12.5` or `"12.5"`, dates as `"2019-01-06T15:22:26.763"`,
//! `"2024-01-15 00:00:00"`, `"2024-01-15"` or `"/Date(1546758146763+0800)/"`. Use these with
//! `#[serde(deserialize_with = "…")]` on your own row structs:
//!
//! ```
//! use chrono::NaiveDateTime;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct OrderRow {
//!     #[serde(rename = "FBillNo")]
//!     number: String,
//!     #[serde(rename = "FQty", deserialize_with = "k3cloud_sdk::de::f64")]
//!     qty: f64,
//!     #[serde(rename = "FDate", deserialize_with = "k3cloud_sdk::de::datetime")]
//!     date: NaiveDateTime,
//! }
//!
//! let row: OrderRow = serde_json::from_str(
//!     r#"{"FBillNo":"SO0001","FQty":"12.5","FDate":"2024-01-15T00:00:00"}"#,
//! ).unwrap();
//! assert_eq!(row.qty, 12.5);
//! assert_eq!(row.date.to_string(), "2024-01-15 00:00:00");
//! ```

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use serde_json::Value;

pub(crate) use fxk3_kernel::json::{is_blank, kind, scalar_to_string, to_f64, to_i64};

fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Value::deserialize(d)
}

/// A number, or a string holding one (`"12.5"`, `" 3 "`), as `f64`.
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = value(d)?;
    to_f64(&v).ok_or_else(|| D::Error::custom(format!("expected a number, got {}", kind(&v))))
}

/// Like [`f64()`], with `null` and `""` as `None`.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = value(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    to_f64(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a number, got {}", kind(&v))))
}

/// An integer, or a string holding one, as `i64`.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = value(d)?;
    to_i64(&v).ok_or_else(|| D::Error::custom(format!("expected an integer, got {}", kind(&v))))
}

/// Like [`i64()`], with `null` and `""` as `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = value(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    to_i64(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected an integer, got {}", kind(&v))))
}

/// `true`/`false`, `"true"`/`"false"` (any case), `1`/`0`; `null` and `""` as `false`.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = value(d)?;
    value_to_bool(&v)
        .ok_or_else(|| D::Error::custom(format!("expected a boolean, got {}", kind(&v))))
}

/// Any scalar as text; `null` as `""`.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = value(d)?;
    scalar_to_string(&v).ok_or_else(|| D::Error::custom(format!("expected text, got {}", kind(&v))))
}

/// Any scalar as text; `null` and `""` as `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = value(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    scalar_to_string(&v)
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected text, got {}", kind(&v))))
}

/// An internal id (`140670` or `"140670"`) as text; `null` as `""`.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    string(d)
}

/// A K3Cloud local date-time (no zone): `2019-01-06T15:22:26.763`, `2024-01-15 00:00:00`,
/// `2024-01-15`, or the WCF form `/Date(1546758146763+0800)/` (read as local time of its
/// offset).
pub fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    let v = value(d)?;
    match &v {
        Value::String(s) => parse_datetime(s)
            .ok_or_else(|| D::Error::custom(format!("unrecognised K3Cloud date `{s}`"))),
        other => Err(D::Error::custom(format!(
            "expected a date string, got {}",
            kind(other)
        ))),
    }
}

/// Like [`datetime()`], with `null` and `""` as `None`.
pub fn opt_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
    let v = value(d)?;
    if is_blank(&v) {
        return Ok(None);
    }
    match &v {
        Value::String(s) => parse_datetime(s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("unrecognised K3Cloud date `{s}`"))),
        other => Err(D::Error::custom(format!(
            "expected a date string, got {}",
            kind(other)
        ))),
    }
}

/// Parses the date formats K3Cloud sends (see [`datetime()`]).
///
/// ```
/// use k3cloud_sdk::de::parse_datetime;
/// assert_eq!(parse_datetime("2019-02-13T15:46:44.72").unwrap().to_string(), "2019-02-13 15:46:44.720");
/// assert_eq!(parse_datetime("2024-01-15").unwrap().to_string(), "2024-01-15 00:00:00");
/// assert!(parse_datetime("15/01/2024").is_none());
/// ```
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        return parse_wcf_date(inner);
    }
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn parse_wcf_date(inner: &str) -> Option<NaiveDateTime> {
    // "1546758146763+0800": milliseconds since the epoch (UTC), then the local offset.
    let split = inner.rfind(['+', '-']).filter(|&i| i > 0);
    let (millis, offset) = match split {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    let millis: i64 = millis.parse().ok()?;
    let mut utc = DateTime::from_timestamp_millis(millis)?.naive_utc();
    if let Some(off) = offset {
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits = &off[1..];
        if digits.len() != 4 {
            return None;
        }
        let hours: i64 = digits[..2].parse().ok()?;
        let minutes: i64 = digits[2..].parse().ok()?;
        utc += chrono::Duration::minutes(sign * (hours * 60 + minutes));
    }
    Some(utc)
}

pub(crate) fn value_to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Row {
        #[serde(deserialize_with = "f64")]
        qty: f64,
        #[serde(default, deserialize_with = "opt_i64")]
        id: Option<i64>,
        #[serde(deserialize_with = "bool")]
        ok: bool,
        #[serde(deserialize_with = "string")]
        no: String,
        #[serde(default, deserialize_with = "opt_datetime")]
        at: Option<NaiveDateTime>,
    }

    fn row(json: &str) -> Result<Row, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_as_strings_decode() {
        let r = row(r#"{"qty":"12.5","id":"140670","ok":"TRUE","no":100,"at":null}"#).unwrap();
        assert_eq!(
            r,
            Row {
                qty: 12.5,
                id: Some(140_670),
                ok: true,
                no: "100".into(),
                at: None
            }
        );
        let r = row(r#"{"qty":3,"id":"","ok":0,"no":"A","at":""}"#).unwrap();
        assert_eq!((r.qty, r.id, r.ok, r.at), (3.0, None, false, None));
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(row(r#"{"qty":"x","ok":true,"no":"a"}"#).is_err());
        assert!(row(r#"{"qty":1,"ok":"maybe","no":"a"}"#).is_err());
        assert!(row(r#"{"qty":1,"ok":true,"no":[1]}"#).is_err());
        assert!(row(r#"{"qty":1,"ok":true,"no":"a","id":1.5}"#).is_err());
    }

    #[test]
    fn dates_in_every_local_format() {
        let cases = [
            ("2019-01-06T15:22:26.763", "2019-01-06 15:22:26.763"),
            ("2019-02-13T15:46:44.72", "2019-02-13 15:46:44.720"),
            ("2024-01-15 00:00:00", "2024-01-15 00:00:00"),
            ("2024-01-15", "2024-01-15 00:00:00"),
            ("2024-01-15T08:30", "2024-01-15 08:30:00"),
            // 2019-01-06T07:22:26.763Z at +08:00 local.
            ("/Date(1546759346763+0800)/", "2019-01-06 15:22:26.763"),
            ("/Date(1546759346763)/", "2019-01-06 07:22:26.763"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_datetime(input).map(|d| d.to_string()).as_deref(),
                Some(expected),
                "{input}"
            );
        }
        for bad in ["", "2024-13-01", "/Date(abc)/", "/Date(1+08)/", "yesterday"] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }
}
