//! Small value transforms: trim, upper, lower, string, number, first, join, default, date.

use chrono::format::{Item, StrftimeItems};
use chrono::{FixedOffset, TimeZone};
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// A compiled transform.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transform {
    Trim,
    Upper,
    Lower,
    /// Numbers and booleans to their text.
    ToString,
    /// Numeric text to a JSON number.
    ToNumber,
    /// The first element of a list (Fxiaoke `owner` is a one-element list).
    First,
    /// A list joined to text; nulls and empty strings are left out.
    Join(String),
    /// A value for null, missing or empty text.
    Default(Value),
    /// The sum of a list of numbers, or of one field of a list of lines (`{ sum = "FRealQty" }`).
    Sum(Option<String>),
    /// Epoch milliseconds to local time text in a fixed offset.
    Date {
        offset: FixedOffset,
        format: String,
    },
}

pub(crate) const NAMES: &str =
    "trim, upper, lower, string, number, first, join, concat, sum, date, datetime, default";

const CHINA: i32 = 8 * 3600;

impl Transform {
    /// Compiles a transform given as a bare name (`"trim"`).
    pub(crate) fn named(name: &str) -> Result<Self, String> {
        Ok(match name {
            "trim" => Transform::Trim,
            "upper" => Transform::Upper,
            "lower" => Transform::Lower,
            "string" => Transform::ToString,
            "number" => Transform::ToNumber,
            "first" => Transform::First,
            "join" | "concat" => Transform::Join(String::new()),
            "sum" => Transform::Sum(None),
            "date" => Self::date(None, None, "%Y-%m-%d")?,
            "datetime" => Self::date(None, None, "%Y-%m-%d %H:%M:%S")?,
            "default" => return Err("`default` needs a value: { default = … }".into()),
            other => return Err(format!("unknown transform `{other}` (known: {NAMES})")),
        })
    }

    /// Compiles a transform given as a one-key table (`{ default = "x" }`).
    pub(crate) fn with_params(name: &str, arg: &Value) -> Result<Self, String> {
        match name {
            "default" => Ok(Transform::Default(arg.clone())),
            "sum" => match arg {
                Value::String(field) if !field.is_empty() => {
                    Ok(Transform::Sum(Some(field.clone())))
                }
                _ => Err(
                    "`sum` takes the field of each line to add up: { sum = \"FRealQty\" }".into(),
                ),
            },
            "join" | "concat" => match arg {
                Value::String(s) => Ok(Transform::Join(s.clone())),
                Value::Object(m) => {
                    only_keys(m, &["separator"])?;
                    Ok(Transform::Join(
                        opt_str(m, "separator")?.unwrap_or_default().to_owned(),
                    ))
                }
                _ => Err(format!(
                    "`{name}` takes a separator string or {{ separator = … }}"
                )),
            },
            "date" | "datetime" => {
                let dflt = if name == "date" {
                    "%Y-%m-%d"
                } else {
                    "%Y-%m-%d %H:%M:%S"
                };
                let Value::Object(m) = arg else {
                    return Err(format!(
                        "`{name}` takes {{ offset = \"+08:00\", format = … }}"
                    ));
                };
                only_keys(m, &["offset", "format"])?;
                Self::date(opt_str(m, "offset")?, opt_str(m, "format")?, dflt)
            }
            _ => Transform::named(name).and_then(|_| Err(format!("`{name}` takes no parameters"))),
        }
    }

    fn date(
        offset: Option<&str>,
        format: Option<&str>,
        default_format: &str,
    ) -> Result<Self, String> {
        let offset = match offset {
            None => FixedOffset::east_opt(CHINA).ok_or("bad default offset")?,
            Some(o) => parse_offset(o)?,
        };
        let format = format.unwrap_or(default_format).to_owned();
        if StrftimeItems::new(&format).any(|i| matches!(i, Item::Error)) {
            return Err(format!("bad date format `{format}`"));
        }
        Ok(Transform::Date { offset, format })
    }

    /// Applies the transform. Errors describe the offending value.
    pub(crate) fn apply(&self, v: Value) -> Result<Value, String> {
        Ok(match self {
            Transform::Trim => map_str(v, &|s| s.trim().to_owned()),
            Transform::Upper => map_str(v, &|s| s.to_uppercase()),
            Transform::Lower => map_str(v, &|s| s.to_lowercase()),
            Transform::ToString => match v {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => other,
            },
            Transform::ToNumber => match v {
                Value::String(s) if s.trim().is_empty() => Value::Null,
                Value::String(s) => {
                    parse_number(s.trim()).ok_or_else(|| format!("`{s}` is not a number"))?
                }
                other => other,
            },
            Transform::First => match v {
                Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
                other => other,
            },
            Transform::Join(sep) => match v {
                Value::Array(items) => {
                    let parts: Vec<String> = items.iter().filter_map(text_of).collect();
                    Value::String(parts.join(sep))
                }
                other => other,
            },
            Transform::Default(d) => match &v {
                Value::Null => d.clone(),
                Value::String(s) if s.is_empty() => d.clone(),
                _ => v,
            },
            Transform::Sum(field) => match v {
                Value::Null => Value::Null,
                Value::Array(items) => {
                    let mut total = 0.0_f64;
                    for item in &items {
                        let cell = match field {
                            Some(f) => item.get(f).unwrap_or(&Value::Null),
                            None => item,
                        };
                        total += match cell {
                            Value::Null => 0.0,
                            Value::Number(n) => n.as_f64().unwrap_or(0.0),
                            Value::String(s) if s.trim().is_empty() => 0.0,
                            Value::String(s) => s
                                .trim()
                                .parse::<f64>()
                                .map_err(|_| format!("`{s}` is not a number"))?,
                            other => return Err(format!("cannot add up {other}")),
                        };
                    }
                    number_value(total)
                }
                other => return Err(format!("`sum` needs a list, got {other}")),
            },
            Transform::Date { offset, format } => match v {
                Value::Null => Value::Null,
                other => Value::String(format_epoch_ms(&other, *offset, format)?),
            },
        })
    }
}

fn only_keys(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown parameter `{k}` (known: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn opt_str<'m>(m: &'m Map<String, Value>, key: &str) -> Result<Option<&'m str>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn parse_offset(s: &str) -> Result<FixedOffset, String> {
    let bad = || format!("bad offset `{s}` (expected like `+08:00`)");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if !(0..=23).contains(&h) || !(0..=59).contains(&m) {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

fn map_str(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| map_str(i, f)).collect()),
        other => other,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn parse_number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

fn format_epoch_ms(v: &Value, offset: FixedOffset, format: &str) -> Result<String, String> {
    let ms = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            // Epoch ms sent as a float (`1.716e12`) is still a whole number of ms.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                // Checked above: whole and well inside the i64 range.
                .map(|f| {
                    #[allow(clippy::cast_possible_truncation)]
                    let ms = f as i64;
                    ms
                })
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("`{v}` is not epoch milliseconds"))?;
    let t = offset
        .timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| format!("{ms} is out of the date range"))?;
    let mut out = String::new();
    write!(out, "{}", t.format(format)).map_err(|_| format!("cannot format {ms} as `{format}`"))?;
    Ok(out)
}

/// A whole number as an integer, anything else as a float (rounded to 6 decimals, which hides
/// the binary noise of adding decimal amounts).
fn number_value(x: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)] // checked: whole and within i64's exact range
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        return Value::from(x as i64);
    }
    let rounded = (x * 1e6).round() / 1e6;
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}
