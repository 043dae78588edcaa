//! Lenient readings of JSON values, for the vendors' loosely typed answers: numbers that arrive
//! as strings, blanks that mean "absent".

use serde_json::Value;

/// The kind of a value, for error messages ("expected a number, got a string").
///
/// ```
/// use fxk3_kernel::json::kind;
/// assert_eq!(kind(&serde_json::json!([1])), "an array");
/// ```
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `null`, or a string of whitespace only: both vendors send these for an empty field.
pub fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A number, or a string holding one (`"12.5"`, `" 3 "`).
pub fn to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An integer, or a string holding one; `12.0` counts, `12.5` does not.
///
/// ```
/// use fxk3_kernel::json::to_i64;
/// use serde_json::json;
/// assert_eq!(to_i64(&json!(" 42 ")), Some(42));
/// assert_eq!(to_i64(&json!(12.0)), Some(12));
/// assert_eq!(to_i64(&json!(12.5)), None);
/// ```
pub fn to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            // 12.0 is an integer in a float's clothing; 12.5 is not. The range check makes
            // the cast exact.
            #[allow(clippy::cast_possible_truncation)]
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A scalar as text (`null` as `""`); `None` for arrays and objects.
pub fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_readings() {
        assert!(is_blank(&json!(null)) && is_blank(&json!("  ")) && !is_blank(&json!(0)));
        assert_eq!(to_f64(&json!("12.5")), Some(12.5));
        assert_eq!(to_f64(&json!(true)), None);
        assert_eq!(to_i64(&json!(1e300)), None);
        assert_eq!(to_i64(&json!("x")), None);
        assert_eq!(scalar_to_string(&json!(null)).as_deref(), Some(""));
        assert_eq!(scalar_to_string(&json!(7)).as_deref(), Some("7"));
        assert_eq!(scalar_to_string(&json!({})), None);
        assert_eq!(kind(&json!("a")), "a string");
    }
}
