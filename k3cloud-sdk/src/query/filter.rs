//! `FilterString`: the SQL-like text filter, built safely, or the structured array form.

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use serde::Serialize;

/// A `FilterString` expression, built so that values are quoted and escaped and field keys are
/// checked — no string concatenation by the caller.
///
/// ```
/// use chrono::NaiveDate;
/// use k3cloud_sdk::Filter;
///
/// let since = NaiveDate::from_ymd_opt(2024, 1, 15).unwrap().and_hms_opt(8, 0, 0).unwrap();
/// let f = Filter::eq("FDocumentStatus", "C")
///     .and(Filter::ge("FModifyDate", since))
///     .and(Filter::is_in("FCustId.FNumber", ["C001", "O'Brien"]));
/// assert_eq!(
///     f.to_string(),
///     "FDocumentStatus = 'C' and FModifyDate >= '2024-01-15 08:00:00' \
///      and FCustId.FNumber in ('C001', 'O''Brien')"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
    shape: Shape,
    error: Option<String>,
}

/// What a filter's text is, to know when combining it needs parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Atom,
    And,
    Or,
    Raw,
}

/// A value in a [`Filter`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FilterValue {
    /// Text, quoted with `'` (embedded quotes doubled).
    Text(String),
    /// An integer.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// A local date-time, written `'yyyy-MM-dd HH:mm:ss[.fff]'`.
    DateTime(NaiveDateTime),
}

impl FilterValue {
    fn render(&self) -> String {
        match self {
            FilterValue::Text(s) => format!("'{}'", s.replace('\'', "''")),
            FilterValue::Int(i) => i.to_string(),
            FilterValue::Float(f) => f.to_string(),
            FilterValue::DateTime(d) if d.nanosecond() == 0 => {
                format!("'{}'", d.format("%Y-%m-%d %H:%M:%S"))
            }
            FilterValue::DateTime(d) => format!("'{}'", d.format("%Y-%m-%d %H:%M:%S%.3f")),
        }
    }
}

macro_rules! from_value {
    ($($t:ty => $variant:ident($conv:expr)),* $(,)?) => {
        $(impl From<$t> for FilterValue {
            fn from(v: $t) -> Self {
                FilterValue::$variant($conv(v))
            }
        })*
    };
}

from_value! {
    &str => Text(str::to_owned),
    String => Text(std::convert::identity),
    &String => Text(String::clone),
    i64 => Int(std::convert::identity),
    i32 => Int(i64::from),
    u32 => Int(i64::from),
    f64 => Float(std::convert::identity),
    NaiveDateTime => DateTime(std::convert::identity),
}

impl From<NaiveDate> for FilterValue {
    fn from(d: NaiveDate) -> Self {
        FilterValue::DateTime(d.and_time(chrono::NaiveTime::MIN))
    }
}

fn check_field(field: &str) -> Option<String> {
    let ok = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    (!ok).then(|| format!("`{field}` is not a field key"))
}

impl Filter {
    /// Text given as is (you are responsible for quoting).
    pub fn raw(text: impl Into<String>) -> Self {
        Filter {
            text: text.into(),
            shape: Shape::Raw,
            error: None,
        }
    }

    fn compare(field: &str, op: &str, value: &FilterValue) -> Self {
        Filter {
            text: format!("{field} {op} {}", value.render()),
            shape: Shape::Atom,
            error: check_field(field),
        }
    }

    /// `field = value`.
    pub fn eq(field: &str, value: impl Into<FilterValue>) -> Self {
        Filter::compare(field, "=", &value.into())
    }

    /// `field <> value`.
    pub fn ne(field: &str, value: impl Into<FilterValue>) -> Self {
        Filter::compare(field, "<>", &value.into())
    }

    /// `field > value`.
    pub fn gt(field: &str, value: impl Into<FilterValue>) -> Self {
        Filter::compare(field, ">", &value.into())
    }

    /// `field >= value`.
    pub fn ge(field: &str, value: impl Into<FilterValue>) -> Self {
        Filter::compare(field, ">=", &value.into())
    }

    /// `field < value`.
    pub fn lt(field: &str, value: impl Into<FilterValue>) -> Self {
        Filter::compare(field, "<", &value.into())
    }

    /// `field <= value`.
    pub fn le(field: &str, value: impl Into<FilterValue>) -> Self {
        Filter::compare(field, "<=", &value.into())
    }

    /// `field like 'pattern'` (`%` any text, `_` one character).
    pub fn like(field: &str, pattern: &str) -> Self {
        Filter::compare(field, "like", &FilterValue::Text(pattern.to_owned()))
    }

    /// `field not like 'pattern'`.
    pub fn not_like(field: &str, pattern: &str) -> Self {
        Filter::compare(field, "not like", &FilterValue::Text(pattern.to_owned()))
    }

    /// `field in (v1, v2, …)`. An empty list matches nothing (`1 = 0`).
    pub fn is_in<I, V>(field: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<FilterValue>,
    {
        Filter::list(field, "in", values, "1 = 0")
    }

    /// `field not in (v1, v2, …)`. An empty list matches everything (`1 = 1`).
    pub fn not_in<I, V>(field: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<FilterValue>,
    {
        Filter::list(field, "not in", values, "1 = 1")
    }

    fn list<I, V>(field: &str, op: &str, values: I, when_empty: &str) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<FilterValue>,
    {
        let rendered: Vec<String> = values.into_iter().map(|v| v.into().render()).collect();
        let text = if rendered.is_empty() {
            when_empty.to_owned()
        } else {
            format!("{field} {op} ({})", rendered.join(", "))
        };
        Filter {
            text,
            shape: Shape::Atom,
            error: check_field(field),
        }
    }

    /// `field is null`.
    pub fn is_null(field: &str) -> Self {
        Filter {
            text: format!("{field} is null"),
            shape: Shape::Atom,
            error: check_field(field),
        }
    }

    /// `field is not null`.
    pub fn is_not_null(field: &str) -> Self {
        Filter {
            text: format!("{field} is not null"),
            shape: Shape::Atom,
            error: check_field(field),
        }
    }

    /// `field >= low and field < high`: a half-open window, as incremental reads need.
    pub fn range(field: &str, low: impl Into<FilterValue>, high: impl Into<FilterValue>) -> Self {
        Filter::ge(field, low).and(Filter::lt(field, high))
    }

    fn combine(self, shape: Shape, other: Filter) -> Filter {
        let op = if shape == Shape::And { "and" } else { "or" };
        let wrap = |f: &Filter| {
            if f.shape == Shape::Atom || f.shape == shape {
                f.text.clone()
            } else {
                format!("({})", f.text)
            }
        };
        // `and` and `or` are associative: a side built with the same operator needs no
        // parentheses; any other compound side does.
        let text = format!("{} {op} {}", wrap(&self), wrap(&other));
        Filter {
            text,
            shape,
            error: self.error.or(other.error),
        }
    }

    /// `self and other`.
    pub fn and(self, other: Filter) -> Filter {
        self.combine(Shape::And, other)
    }

    /// `self or other`.
    pub fn or(self, other: Filter) -> Filter {
        self.combine(Shape::Or, other)
    }

    /// `not (self)`.
    pub fn negate(self) -> Filter {
        Filter {
            text: format!("not ({})", self.text),
            shape: Shape::Atom,
            error: self.error,
        }
    }

    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The comparison of a [`FilterItem`], as the numeric `Compare` code public clients send.
///
/// No vendor table of these codes is published; each one here was seen in public clients with
/// a clear meaning (`reference/k3cloud-filter-compare.md` lists the sources). The codes depend
/// on the field's type — equality is `67` on text and ids, `105` on status and combo fields,
/// `74` on checkboxes — so pick the variant that matches the field. For anything else (not in,
/// ends with, is null, between) use the text form, [`Filter`], which every server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compare {
    /// `67`: equals, on text, numbers and ids (`FNumber`, `FID`, `FMaterialId.FNumber`).
    Equal,
    /// `105`: equals, on status and combo fields (`FDocumentStatus`, `FForbidStatus`).
    StatusEqual,
    /// `74`: equals, on a checkbox (value `true`/`false`).
    CheckboxEqual,
    /// `83`: not equal (seen on text).
    NotEqual,
    /// `21`: greater than (seen on decimals).
    Greater,
    /// `39`: greater or equal (seen on dates).
    GreaterOrEqual,
    /// `32`: less than (seen on dates).
    Less,
    /// `16`: less or equal (seen on dates).
    LessOrEqual,
    /// `81`: contains, `like '%value%'` (seen on text).
    Contains,
    /// `60`: starts with, `like 'value%'` (seen on `FNumber`).
    StartsWith,
    /// `338`: one of a list, sent as one comma-joined value (see [`FilterItem::is_in`]).
    In,
}

impl Compare {
    /// The code as sent: a JSON string, as in Kingdee's documentation and every public client.
    pub fn code(self) -> &'static str {
        match self {
            Compare::Equal => "67",
            Compare::StatusEqual => "105",
            Compare::CheckboxEqual => "74",
            Compare::NotEqual => "83",
            Compare::Greater => "21",
            Compare::GreaterOrEqual => "39",
            Compare::Less => "32",
            Compare::LessOrEqual => "16",
            Compare::Contains => "81",
            Compare::StartsWith => "60",
            Compare::In => "338",
        }
    }
}

/// One condition of the structured `FilterString` array (newer servers):
/// `{"Left":"(","FieldName":"FDocumentStatus","Compare":"105","Value":"C","Right":")","Logic":"0"}`.
///
/// `Logic` joins this condition to the **next** one: `"0"` and, `"1"` or. Build items with
/// [`FilterItem::compare`] and a [`Compare`] code; [`FilterItem::new`] passes any `Compare` and
/// `Logic` text through (symbols such as `"="` and names such as `"StatusEqualto"` are also seen
/// in the wild; whether current servers accept them is not recorded).
///
/// ```
/// use k3cloud_sdk::{Compare, FilterItem};
///
/// // (FDocumentStatus = 'A' or FDocumentStatus = 'C') and FNumber like 'MAT%'
/// let items = vec![
///     FilterItem::compare("FDocumentStatus", Compare::StatusEqual, "A").or_next().parens("(", ""),
///     FilterItem::compare("FDocumentStatus", Compare::StatusEqual, "C").parens("", ")"),
///     FilterItem::compare("FNumber", Compare::StartsWith, "MAT"),
/// ];
/// assert_eq!(
///     serde_json::to_string(&items[0]).unwrap(),
///     r#"{"Left":"(","FieldName":"FDocumentStatus","Compare":"105","Value":"A","Right":"","Logic":"1"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct FilterItem {
    /// Opening parentheses.
    pub left: String,
    /// The field key.
    pub field_name: String,
    /// The comparison code.
    pub compare: String,
    /// The value, as text.
    pub value: String,
    /// Closing parentheses.
    pub right: String,
    /// How this condition joins the next one.
    pub logic: String,
}

impl FilterItem {
    /// A condition without parentheses, joined to the next with `logic`, all passed through.
    pub fn new(
        field_name: impl Into<String>,
        compare: impl Into<String>,
        value: impl Into<String>,
        logic: impl Into<String>,
    ) -> Self {
        FilterItem {
            left: String::new(),
            field_name: field_name.into(),
            compare: compare.into(),
            value: value.into(),
            right: String::new(),
            logic: logic.into(),
        }
    }

    /// `field compare value`, joined to the next condition with *and* (`"Logic":"0"`).
    pub fn compare(
        field_name: impl Into<String>,
        compare: Compare,
        value: impl Into<String>,
    ) -> Self {
        Self::new(field_name, compare.code(), value, "0")
    }

    /// `field in (values…)`: code `338`, the values joined with `,` into one `Value` as public
    /// clients send them (so a value cannot itself hold a comma: use [`Filter::is_in`] then).
    pub fn is_in<I, S>(field_name: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = values.into_iter().map(|v| v.as_ref().to_owned()).collect();
        Self::compare(field_name, Compare::In, joined.join(","))
    }

    /// Joins this condition to the next one with *or* (`"Logic":"1"`).
    pub fn or_next(mut self) -> Self {
        "1".clone_into(&mut self.logic);
        self
    }

    /// Sets the parentheses around this condition.
    pub fn parens(mut self, left: impl Into<String>, right: impl Into<String>) -> Self {
        self.left = left.into();
        self.right = right.into();
        self
    }
}

/// The `FilterString` of a query: SQL-like text (every server) or the structured array.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FilterString {
    /// SQL-like text.
    Text(String),
    /// The structured array form.
    Items(Vec<FilterItem>),
}

impl Default for FilterString {
    fn default() -> Self {
        FilterString::Text(String::new())
    }
}

impl From<&str> for FilterString {
    fn from(s: &str) -> Self {
        FilterString::Text(s.to_owned())
    }
}

impl From<String> for FilterString {
    fn from(s: String) -> Self {
        FilterString::Text(s)
    }
}

impl From<Vec<FilterItem>> for FilterString {
    fn from(items: Vec<FilterItem>) -> Self {
        FilterString::Items(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_grouping() {
        assert_eq!(Filter::eq("FName", "a'b").to_string(), "FName = 'a''b'");
        assert_eq!(Filter::gt("FQty", 2.5).to_string(), "FQty > 2.5");
        assert_eq!(Filter::ne("FID", 7_i64).to_string(), "FID <> 7");
        let f = Filter::eq("A", 1)
            .or(Filter::eq("B", 2))
            .and(Filter::eq("C", 3));
        assert_eq!(f.to_string(), "(A = 1 or B = 2) and C = 3");
        let f = Filter::eq("A", 1)
            .and(Filter::eq("B", 2))
            .and(Filter::eq("C", 3));
        assert_eq!(f.to_string(), "A = 1 and B = 2 and C = 3");
        let f = Filter::eq("A", 1).and(Filter::eq("B", 2).or(Filter::eq("C", 3)));
        assert_eq!(f.to_string(), "A = 1 and (B = 2 or C = 3)");
        assert_eq!(Filter::eq("A", 1).negate().to_string(), "not (A = 1)");
        assert_eq!(Filter::is_in("A", Vec::<i64>::new()).to_string(), "1 = 0");
        assert_eq!(
            Filter::like("FNumber", "MAT%").to_string(),
            "FNumber like 'MAT%'"
        );
    }

    #[test]
    fn dates_render_with_milliseconds_only_when_present() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 15).unwrap();
        assert_eq!(
            Filter::ge("FDate", d).to_string(),
            "FDate >= '2024-01-15 00:00:00'"
        );
        let t = d.and_hms_milli_opt(8, 1, 2, 345).unwrap();
        assert_eq!(
            Filter::lt("FDate", t).to_string(),
            "FDate < '2024-01-15 08:01:02.345'"
        );
        assert_eq!(
            Filter::range("FModifyDate", d, t).to_string(),
            "FModifyDate >= '2024-01-15 00:00:00' and FModifyDate < '2024-01-15 08:01:02.345'"
        );
    }

    #[test]
    fn bad_field_keys_are_caught() {
        assert!(Filter::eq("F1; drop table", 1).error().is_some());
        assert!(Filter::eq("", 1).and(Filter::eq("B", 2)).error().is_some());
        assert!(Filter::eq("FCustId.FNumber", "x").error().is_none());
    }

    #[test]
    fn structured_items_serialize_in_pascal_case() {
        let item = FilterItem::new("FDocumentStatus", "StatusEqualto", "C", "AND").parens("(", ")");
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            serde_json::json!({"Left":"(","FieldName":"FDocumentStatus","Compare":"StatusEqualto","Value":"C","Right":")","Logic":"AND"})
        );
    }

    #[test]
    fn items_carry_the_codes_public_clients_send() {
        // Kingdee's documentation example: Compare and Logic as text, every key present.
        let doc: serde_json::Value = serde_json::from_str(
            r#"[{"Left":"(","FieldName":"Field1","Compare":"67","Value":"111","Right":")","Logic":"0"}]"#,
        )
        .unwrap();
        let ours = vec![FilterItem::compare("Field1", Compare::Equal, "111").parens("(", ")")];
        assert_eq!(serde_json::to_value(&ours).unwrap(), doc);
        let codes: Vec<&str> = [
            Compare::Equal,
            Compare::StatusEqual,
            Compare::CheckboxEqual,
            Compare::NotEqual,
            Compare::Greater,
            Compare::GreaterOrEqual,
            Compare::Less,
            Compare::LessOrEqual,
            Compare::Contains,
            Compare::StartsWith,
            Compare::In,
        ]
        .into_iter()
        .map(Compare::code)
        .collect();
        assert_eq!(
            codes,
            [
                "67", "105", "74", "83", "21", "39", "32", "16", "81", "60", "338"
            ]
        );
        let listed = FilterItem::is_in("FNumber", ["A1", "B2"]).or_next();
        assert_eq!(
            serde_json::to_value(&listed).unwrap(),
            serde_json::json!({"Left":"","FieldName":"FNumber","Compare":"338","Value":"A1,B2","Right":"","Logic":"1"})
        );
    }
}
