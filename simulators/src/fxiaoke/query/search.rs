//! A search as asked: the filters, orders, projection and paging of a v2 `search_query_info` or a v1 query, checked.

use serde_json::{Map, Value};

use crate::fxiaoke::envelope::FxError;
use crate::fxiaoke::objects::ObjectDef;
use crate::fxiaoke::store::Record;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    N,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    NLike,
    Is,
    Isn,
    In,
    Nin,
    Between,
    NBetween,
    StartWith,
    EndWith,
    Contains,
    HasAnyOf,
    NHasAnyOf,
}

impl Op {
    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "EQ" => Op::Eq,
            "N" => Op::N,
            "GT" => Op::Gt,
            "GTE" => Op::Gte,
            "LT" => Op::Lt,
            "LTE" => Op::Lte,
            "LIKE" => Op::Like,
            "NLIKE" => Op::NLike,
            "IS" => Op::Is,
            "ISN" => Op::Isn,
            "IN" => Op::In,
            "NIN" => Op::Nin,
            "BETWEEN" => Op::Between,
            "NBETWEEN" => Op::NBetween,
            "STARTWITH" => Op::StartWith,
            "ENDWITH" => Op::EndWith,
            "CONTAINS" => Op::Contains,
            "HASANYOF" => Op::HasAnyOf,
            "NHASANYOF" => Op::NHasAnyOf,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub(super) struct Filter {
    pub(super) field: String,
    pub(super) op: Op,
    pub(super) values: Vec<Value>,
    /// The values of a list operator (`IN`, `HASANYOF` and their negations) when all are
    /// text: a lookup instead of a scan of the list for every record (a sync asks for the
    /// contacts of 100 accounts at a time, over tens of thousands of contacts).
    pub(super) texts: Option<std::collections::HashSet<String>>,
}

impl Filter {
    pub(super) fn new(field: String, op: Op, values: Vec<Value>) -> Self {
        let listed = matches!(op, Op::In | Op::Nin | Op::HasAnyOf | Op::NHasAnyOf);
        let texts = values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .filter(|_| listed);
        Self {
            field,
            op,
            values,
            texts,
        }
    }
}

/// How a field's values compare: by the describe's type where the field is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `number`, `currency`, `percentile`, dates and times: as numbers (numeric text too).
    Numeric,
    /// `_id`, text, options, lookups: as text (`"10" < "9"`, as ids must).
    Text,
    /// Undeclared fields: as numbers when one side is a JSON number, else as text.
    Auto,
}

pub(super) fn kind_of(def: Option<&ObjectDef>, field: &str) -> Kind {
    if field == "_id" {
        return Kind::Text;
    }
    match def.and_then(|d| d.fields.iter().find(|f| f.api == field)) {
        Some(f) if f.is_numeric() || f.is_time() => Kind::Numeric,
        Some(_) => Kind::Text,
        None => Kind::Auto,
    }
}

/// A matching record, its sort keys (read once) and its `_id`.
pub(super) type Hit<'r> = (&'r Record, Vec<Option<&'r Value>>, &'r str);

/// A parsed `search_query_info` plus the options around it.
#[derive(Clone, Debug)]
pub(crate) struct Search {
    pub(crate) limit: usize,
    pub(crate) offset: usize,
    pub(super) filters: Vec<Filter>,
    pub(super) orders: Vec<(String, bool)>,
    pub(super) projection: Vec<String>,
    pub(crate) want_total: bool,
    pub(super) include_null: bool,
}

/// The query limits of the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    pub(crate) max_limit: usize,
    pub(crate) max_offset: usize,
}

pub(super) fn usize_of(v: Option<&Value>) -> Result<Option<usize>, FxError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| FxError::param(format!("{n} 不是非负整数"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| FxError::param(format!("{s} 不是非负整数"))),
        Some(other) => Err(FxError::param(format!("{other} 不是非负整数"))),
    }
}

impl Search {
    /// Parses `search_query_info` (`info`); `projection_key` is `fieldProjection` for
    /// queries and `field_projection` (beside it, in `data`) for `findOne` / `findSimple`.
    pub(crate) fn parse(
        info: &Map<String, Value>,
        data: &Map<String, Value>,
        top: &Map<String, Value>,
        caps: Caps,
    ) -> Result<Self, FxError> {
        // The .NET SDK's comment says the default page is 20.
        let limit = usize_of(info.get("limit"))?.unwrap_or(20);
        if limit == 0 || limit > caps.max_limit {
            return Err(FxError::param(format!(
                "limit 取值范围为1~{}，实际为{limit}",
                caps.max_limit
            )));
        }
        let offset = usize_of(info.get("offset"))?.unwrap_or(0);
        if offset > caps.max_offset {
            return Err(FxError::offset_out_of_range(caps.max_offset));
        }
        if offset % limit != 0 {
            return Err(FxError::param(format!(
                "offset 必须是 limit 的整数倍（offset={offset}, limit={limit}）"
            )));
        }
        let mut filters = Vec::new();
        for f in info
            .get("filters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(f) = f.as_object() else {
                return Err(FxError::param("filters 的元素必须是对象"));
            };
            let field = f
                .get("field_name")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| FxError::param("filter 缺少 field_name"))?
                .to_string();
            let op_text = f.get("operator").and_then(Value::as_str).unwrap_or("EQ");
            let op = Op::parse(op_text)
                .ok_or_else(|| FxError::param(format!("不支持的 operator {op_text}")))?;
            // The docs want a list; clients also send a bare scalar (fxiaoke.md §4.4).
            let values = match f.get("field_values") {
                Some(Value::Array(items)) => items.clone(),
                None | Some(Value::Null) => Vec::new(),
                Some(v) => vec![v.clone()],
            };
            let needs = match op {
                Op::Is | Op::Isn => 0,
                Op::Between | Op::NBetween => 2,
                _ => 1,
            };
            if values.len() < needs {
                return Err(FxError::param(format!(
                    "operator {op_text} 需要 {needs} 个 field_values"
                )));
            }
            filters.push(Filter::new(field, op, values));
        }
        let mut orders = Vec::new();
        for o in info
            .get("orders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = o
                .get("fieldName")
                .and_then(Value::as_str)
                .ok_or_else(|| FxError::param("orders 的元素缺少 fieldName"))?;
            let asc = match o.get("isAsc") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s != "false",
                _ => true,
            };
            orders.push((field.to_string(), asc));
        }
        let projection_value = info
            .get("fieldProjection")
            .or_else(|| data.get("field_projection"))
            .or_else(|| data.get("fieldProjection"));
        let projection = match projection_value {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let want_total = !matches!(
            data.get("find_explicit_total_num"),
            Some(Value::Bool(false))
        );
        let include_null = matches!(top.get("includeNull"), Some(Value::Bool(true)));
        Ok(Self {
            limit,
            offset,
            filters,
            orders,
            projection,
            want_total,
            include_null,
        })
    }

    /// A search from the legacy v1 `searchQuery` (`conditions`, `rangeConditions`, `orders`
    /// with `ascending`/`field`, `dataProjection.fieldNames`).
    pub(crate) fn from_v1(q: &Map<String, Value>, caps: Caps) -> Result<Self, FxError> {
        let limit = usize_of(q.get("limit"))?.unwrap_or(20).clamp(1, 1000);
        let offset = usize_of(q.get("offset"))?.unwrap_or(0);
        if offset > caps.max_offset {
            return Err(FxError::offset_out_of_range(caps.max_offset));
        }
        let mut filters = Vec::new();
        for c in q
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(terms) = c.get("conditions").and_then(Value::as_object) {
                for (field, value) in terms {
                    filters.push(Filter::new(field.clone(), Op::Eq, vec![value.clone()]));
                }
            }
        }
        for r in q
            .get("rangeConditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(field) = r.get("fieldName").and_then(Value::as_str) {
                for (key, op) in [("from", Op::Gte), ("to", Op::Lte)] {
                    if let Some(v) = r.get(key).filter(|v| !v.is_null()) {
                        filters.push(Filter::new(field.to_string(), op, vec![v.clone()]));
                    }
                }
            }
        }
        let orders = q
            .get("orders")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| {
                let field = o.get("field")?.as_str()?.to_string();
                let asc = o.get("ascending").and_then(Value::as_bool).unwrap_or(true);
                Some((field, asc))
            })
            .collect();
        let projection = q
            .get("dataProjection")
            .and_then(|p| p.get("fieldNames"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            limit,
            offset,
            filters,
            orders,
            projection,
            want_total: true,
            include_null: false,
        })
    }
}
