//! Query filters and orders, as the API spells them.

use serde::Serialize;
use serde_json::Value;

/// A filter operator, as the API names it (`search_query_info.filters[].operator`).
///
/// Every operator the reference lists. Filters of a query are AND-ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Operator {
    /// `EQ` — equal.
    #[serde(rename = "EQ")]
    Eq,
    /// `N` — not equal (the API's spelling; not `NE`).
    #[serde(rename = "N")]
    Ne,
    /// `GT` — greater than.
    #[serde(rename = "GT")]
    Gt,
    /// `GTE` — greater than or equal.
    #[serde(rename = "GTE")]
    Gte,
    /// `LT` — less than.
    #[serde(rename = "LT")]
    Lt,
    /// `LTE` — less than or equal.
    #[serde(rename = "LTE")]
    Lte,
    /// `LIKE` — contains the text.
    #[serde(rename = "LIKE")]
    Like,
    /// `NLIKE` — does not contain the text.
    #[serde(rename = "NLIKE")]
    NotLike,
    /// `IS` — is (empty).
    #[serde(rename = "IS")]
    Is,
    /// `ISN` — is not (empty).
    #[serde(rename = "ISN")]
    IsNot,
    /// `IN` — one of the values (people fields in range queries need `IN` with openUserIds).
    #[serde(rename = "IN")]
    In,
    /// `NIN` — none of the values.
    #[serde(rename = "NIN")]
    NotIn,
    /// `BETWEEN` — between two values (epoch milliseconds for times).
    #[serde(rename = "BETWEEN")]
    Between,
    /// `NBETWEEN` — not between two values.
    #[serde(rename = "NBETWEEN")]
    NotBetween,
    /// `STARTWITH` — starts with the text.
    #[serde(rename = "STARTWITH")]
    StartsWith,
    /// `ENDWITH` — ends with the text.
    #[serde(rename = "ENDWITH")]
    EndsWith,
    /// `CONTAINS` — contains (multi-value fields).
    #[serde(rename = "CONTAINS")]
    Contains,
    /// `HASANYOF` — has any of the values (multi-value fields; preset-object docs).
    #[serde(rename = "HASANYOF")]
    HasAnyOf,
    /// `NHASANYOF` — has none of the values.
    #[serde(rename = "NHASANYOF")]
    NotHasAnyOf,
}

impl Operator {
    /// The wire name, e.g. `"GTE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "EQ",
            Operator::Ne => "N",
            Operator::Gt => "GT",
            Operator::Gte => "GTE",
            Operator::Lt => "LT",
            Operator::Lte => "LTE",
            Operator::Like => "LIKE",
            Operator::NotLike => "NLIKE",
            Operator::Is => "IS",
            Operator::IsNot => "ISN",
            Operator::In => "IN",
            Operator::NotIn => "NIN",
            Operator::Between => "BETWEEN",
            Operator::NotBetween => "NBETWEEN",
            Operator::StartsWith => "STARTWITH",
            Operator::EndsWith => "ENDWITH",
            Operator::Contains => "CONTAINS",
            Operator::HasAnyOf => "HASANYOF",
            Operator::NotHasAnyOf => "NHASANYOF",
        }
    }

    /// How many values the operator takes: `(least, most)`.
    fn arity(self) -> (usize, usize) {
        match self {
            Operator::Between | Operator::NotBetween => (2, 2),
            Operator::In | Operator::NotIn | Operator::HasAnyOf | Operator::NotHasAnyOf => {
                (1, usize::MAX)
            }
            // What IS / ISN compare with is not documented: anything goes.
            Operator::Is | Operator::IsNot => (0, usize::MAX),
            _ => (1, 1),
        }
    }
}

/// One condition of a query: `{"field_name", "field_values", "operator"}`.
///
/// Times are epoch milliseconds; pass `chrono::DateTime<Utc>` through
/// `.timestamp_millis()`.
///
/// ```
/// use fxiaoke_sdk::{Filter, Operator};
/// use serde_json::json;
///
/// let window = Filter::between("last_modified_time", 1_716_000_000_000_i64, 1_716_086_400_000_i64);
/// assert_eq!(
///     serde_json::to_value(&window).unwrap(),
///     json!({"field_name": "last_modified_time", "field_values": [1716000000000_i64, 1716086400000_i64], "operator": "BETWEEN"})
/// );
/// let owners = Filter::new("owner", Operator::In, ["FSUID_A", "FSUID_B"]);
/// # let _ = owners;
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filter {
    field_name: String,
    field_values: Vec<Value>,
    operator: Operator,
}

impl Filter {
    /// A condition with any operator and values.
    pub fn new<I, V>(field: impl Into<String>, operator: Operator, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Filter {
            field_name: field.into(),
            field_values: values.into_iter().map(Into::into).collect(),
            operator,
        }
    }

    fn one(field: impl Into<String>, operator: Operator, value: impl Into<Value>) -> Self {
        Filter::new(field, operator, [value.into()])
    }

    /// `field = value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Eq, value)
    }

    /// `field ≠ value` (`N`).
    pub fn ne(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Ne, value)
    }

    /// `field > value`.
    pub fn gt(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Gt, value)
    }

    /// `field ≥ value`.
    pub fn gte(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Gte, value)
    }

    /// `field < value`.
    pub fn lt(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Lt, value)
    }

    /// `field ≤ value`.
    pub fn lte(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Lte, value)
    }

    /// `field` contains the text (`LIKE`).
    pub fn like(field: impl Into<String>, text: impl Into<Value>) -> Self {
        Filter::one(field, Operator::Like, text)
    }

    /// `field` starts with the text.
    pub fn starts_with(field: impl Into<String>, text: impl Into<Value>) -> Self {
        Filter::one(field, Operator::StartsWith, text)
    }

    /// `field` is one of `values`.
    pub fn is_in<I, V>(field: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Filter::new(field, Operator::In, values)
    }

    /// `field` is none of `values`.
    pub fn not_in<I, V>(field: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Filter::new(field, Operator::NotIn, values)
    }

    /// `low ≤ field ≤ high` (`BETWEEN`; whether the ends are included is not documented).
    pub fn between(
        field: impl Into<String>,
        low: impl Into<Value>,
        high: impl Into<Value>,
    ) -> Self {
        Filter::new(field, Operator::Between, [low.into(), high.into()])
    }

    /// The field name.
    pub fn field(&self) -> &str {
        &self.field_name
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values.
    pub fn values(&self) -> &[Value] {
        &self.field_values
    }

    /// What is wrong with this filter, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.field_name.trim().is_empty() {
            return Some("a filter has an empty field name".into());
        }
        let (least, most) = self.operator.arity();
        let n = self.field_values.len();
        if n < least || n > most {
            return Some(format!(
                "filter on `{}`: {} takes {}, got {n}",
                self.field_name,
                self.operator.as_str(),
                if least == most {
                    format!("{least} value(s)")
                } else {
                    format!("at least {least} value(s)")
                }
            ));
        }
        None
    }
}

/// One sort key: `{"fieldName", "isAsc"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    #[serde(rename = "fieldName")]
    field_name: String,
    #[serde(rename = "isAsc")]
    is_asc: bool,
}

impl Order {
    /// Sort by `field`, ascending or not.
    pub fn new(field: impl Into<String>, ascending: bool) -> Self {
        Order {
            field_name: field.into(),
            is_asc: ascending,
        }
    }

    /// The field name.
    pub fn field(&self) -> &str {
        &self.field_name
    }

    /// True for ascending.
    pub fn is_ascending(&self) -> bool {
        self.is_asc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_has_its_wire_name() {
        let all = [
            (Operator::Eq, "EQ"),
            (Operator::Ne, "N"),
            (Operator::Gt, "GT"),
            (Operator::Gte, "GTE"),
            (Operator::Lt, "LT"),
            (Operator::Lte, "LTE"),
            (Operator::Like, "LIKE"),
            (Operator::NotLike, "NLIKE"),
            (Operator::Is, "IS"),
            (Operator::IsNot, "ISN"),
            (Operator::In, "IN"),
            (Operator::NotIn, "NIN"),
            (Operator::Between, "BETWEEN"),
            (Operator::NotBetween, "NBETWEEN"),
            (Operator::StartsWith, "STARTWITH"),
            (Operator::EndsWith, "ENDWITH"),
            (Operator::Contains, "CONTAINS"),
            (Operator::HasAnyOf, "HASANYOF"),
            (Operator::NotHasAnyOf, "NHASANYOF"),
        ];
        for (op, name) in all {
            assert_eq!(op.as_str(), name);
            assert_eq!(serde_json::to_value(op).unwrap(), name);
        }
    }

    #[test]
    fn arity_is_checked() {
        assert!(Filter::between("t", 1, 2).problem().is_none());
        assert!(Filter::new("t", Operator::Between, [1]).problem().is_some());
        assert!(Filter::new("t", Operator::Eq, [1, 2]).problem().is_some());
        assert!(Filter::is_in("t", Vec::<i64>::new()).problem().is_some());
        assert!(
            Filter::new("t", Operator::Is, Vec::<Value>::new())
                .problem()
                .is_none()
        );
        assert!(Filter::eq(" ", 1).problem().is_some());
    }
}
