//! `ExecuteBillQuery` / `BillQuery`: `FieldKeys` (entry and reference sub-fields), a
//! `FilterString` subset, `OrderString`, `StartRow` / `Limit` / `TopRowCount` (k3cloud.md §5.5).

mod fields;
mod filter;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use serde_json::{Map, Value};

use crate::clock::parse_k3_date;
use crate::k3cloud::envelope::Failure;
use crate::k3cloud::store::{K3Data, Table, unknown_form};
use crate::k3cloud::wire::{get_ci, int, scalar_string};
use fields::{Access, Resolver, V, read};
use filter::{Expr, Row, eval, filter_array_to_text, filter_error, parse_filter};

/// `ORDER BY` comparison: nulls first, numbers as numbers, dates as dates, text as text.
fn order_values(a: V<'_>, b: V<'_>) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    match (a, b) {
        (V::Ms(x), V::Ms(y)) => x.cmp(&y),
        (V::DateText(x), V::DateText(y)) => match (parse_k3_date(x), parse_k3_date(y)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.cmp(y),
        },
        _ if a.is_number() && b.is_number() => a
            .number()
            .partial_cmp(&b.number())
            .unwrap_or(Ordering::Equal),
        _ => a
            .text()
            .unwrap_or_default()
            .cmp(&b.text().unwrap_or_default()),
    }
}

/// Every row of the table (one per entry when the query expands over `entity`), in storage
/// order (bill id, then entry sequence).
/// `f` gets each row and its entry's index, and answers whether to go on.
fn for_each_row<'a>(
    table: &'a Table,
    entity: Option<&str>,
    f: &mut dyn FnMut(Row<'a>, Option<usize>) -> bool,
) {
    for bill in table.bills.values() {
        match entity.and_then(|e| bill.entries.get(e)) {
            Some(list) if !list.is_empty() => {
                for (i, entry) in list.iter().enumerate() {
                    let row = Row {
                        bill,
                        entry: Some(entry),
                    };
                    if !f(row, Some(i)) {
                        return;
                    }
                }
            }
            _ => {
                if !f(Row { bill, entry: None }, None) {
                    return;
                }
            }
        }
    }
}

/// Storage-order rows that match, up to `end` of them.
fn collect_unordered<'a>(
    data: &'a K3Data,
    table: &'a Table,
    entity: Option<&str>,
    filter: &Expr,
    end: usize,
    sink: &mut dyn FnMut(Row<'a>),
) {
    let mut found = 0;
    if end == 0 {
        return;
    }
    for_each_row(table, entity, &mut |row, _| {
        if eval(filter, data, &row) {
            sink(row);
            found += 1;
        }
        found < end
    });
}

/// Every row as `(bill id, entry index)`, sorted by `order`; ties keep storage order.
fn sorted_rows(
    data: &K3Data,
    table: &Table,
    entity: Option<&str>,
    order: &[(Access, bool)],
) -> Vec<(i64, Option<usize>)> {
    let mut rows: Vec<(i64, Option<usize>, Vec<V<'_>>)> = Vec::new();
    for_each_row(table, entity, &mut |row, index| {
        let keys = order
            .iter()
            .map(|(acc, _)| read(data, row.bill, row.entry, acc))
            .collect();
        rows.push((row.bill.id, index, keys));
        true
    });
    // A stable sort: rows arrive in storage order.
    rows.sort_by(|(_, _, a), (_, _, b)| {
        for ((x, y), (_, desc)) in a.iter().zip(b).zip(order) {
            let o = order_values(*x, *y);
            if o != Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        Ordering::Equal
    });
    rows.into_iter().map(|(id, index, _)| (id, index)).collect()
}

/// Rows as `(bill id, entry index)`, in some order.
type SortedRows = Vec<(i64, Option<usize>)>;

/// Rows in some order, kept until the data changes: the total order of a table's rows by an
/// `OrderString`, and the matching rows of a `FilterString` in that order. A client paging
/// through a sorted result pays for the sort and the filter once, not once per page.
#[derive(Debug, Default)]
pub(crate) struct OrderCache {
    map: Mutex<HashMap<String, (u64, Arc<SortedRows>)>>,
}

impl OrderCache {
    fn get_or_build(
        &self,
        key: &str,
        generation: u64,
        build: impl FnOnce() -> Vec<(i64, Option<usize>)>,
    ) -> Arc<SortedRows> {
        if let Some((g, rows)) = self.map.lock().get(key)
            && *g == generation
        {
            return rows.clone();
        }
        // Built outside the cache's lock; two queries may both build it, which is harmless.
        let rows = Arc::new(build());
        let mut map = self.map.lock();
        if map.len() >= 256 {
            map.clear();
        }
        map.insert(key.to_string(), (generation, rows.clone()));
        rows
    }
}

/// The result of a query: field keys and rows, or one failure.
pub(crate) struct QueryResult {
    pub(crate) keys: Vec<String>,
    pub(crate) rows: Vec<Vec<Value>>,
}

/// Runs a query `data` packet.
pub(crate) fn run(
    data: &K3Data,
    query: &Map<String, Value>,
    max_rows: usize,
    cache: &OrderCache,
) -> Result<QueryResult, Failure> {
    let form = get_ci(query, "FormId")
        .and_then(scalar_string)
        .unwrap_or_default();
    if form.trim().is_empty() {
        return Err(Failure::new(
            5,
            None,
            "data数据包中的参数FormId的值不能为空。",
        ));
    }
    let Some(table) = data.table(&form) else {
        return Err(unknown_form(&form));
    };
    let field_keys = get_ci(query, "FieldKeys")
        .and_then(scalar_string)
        .unwrap_or_default();
    let keys: Vec<String> = field_keys
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        // responses/query_errors_observed_live.json.
        return Err(Failure::new(
            8,
            None,
            "data数据包中的参数FieldKeys的值不能为空。",
        ));
    }
    let mut resolver = Resolver {
        table,
        entity: None,
    };
    let access: Vec<Access> = keys
        .iter()
        .map(|k| resolver.resolve(k))
        .collect::<Result<_, _>>()?;
    let filter_text = match get_ci(query, "FilterString") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => filter_array_to_text(items)?,
        Some(other) => return Err(filter_error(format!("FilterString 类型错误 {other}"))),
    };
    let filter = parse_filter(&filter_text, &mut resolver)?;
    let order_text = get_ci(query, "OrderString")
        .and_then(scalar_string)
        .unwrap_or_default();
    let mut order = Vec::new();
    for part in order_text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let desc = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("asc") => false,
            Some(w) if w.eq_ignore_ascii_case("desc") => true,
            Some(w) => return Err(filter_error(format!("OrderString 无法识别 “{w}”"))),
        };
        order.push((resolver.resolve(field)?, desc));
    }
    let entity = resolver.entity.clone();

    let start = usize::try_from(int(query, "StartRow").unwrap_or(0).max(0)).unwrap_or(0);
    let limit = usize::try_from(int(query, "Limit").unwrap_or(0).max(0)).unwrap_or(0);
    // Limit 0 means "no page size", but the server's cap (WebAPIMaxQueryLimit) still applies.
    let limit = if limit == 0 {
        max_rows
    } else {
        limit.min(max_rows)
    };
    let mut end = start.saturating_add(limit);
    // TopRowCount behaves as an absolute end row (kingdee-k3cloud-mcp's finding, k3cloud.md §5.5).
    if let Some(top) = int(query, "TopRowCount").filter(|t| *t > 0) {
        end = end.min(usize::try_from(top).unwrap_or(usize::MAX));
    }

    let rows: Vec<Row<'_>> = if order.is_empty() {
        let mut rows = Vec::new();
        collect_unordered(data, table, entity.as_deref(), &filter, end, &mut |row| {
            rows.push(row);
        });
        rows
    } else {
        // The rows that match, in the order asked for: built from the cached total order
        // of this sort, and cached themselves for this filter, so that the pages of one
        // result cost a page each, not a scan.
        let key = format!(
            "{}|{}|{}",
            table.def.id,
            entity.as_deref().unwrap_or(""),
            order_text.trim().to_ascii_lowercase()
        );
        let result_key = format!("{key}#{filter_text}");
        let resolve = |&(bill_id, entry_index): &(i64, Option<usize>)| {
            let bill = table.bills.get(&bill_id)?;
            let entry = entry_index.and_then(|i| {
                entity
                    .as_ref()
                    .and_then(|e| bill.entries.get(e))
                    .and_then(|list| list.get(i))
            });
            Some(Row { bill, entry })
        };
        let matching = cache.get_or_build(&result_key, data.generation, || {
            let sorted = cache.get_or_build(&key, data.generation, || {
                sorted_rows(data, table, entity.as_deref(), &order)
            });
            sorted
                .iter()
                .filter(|r| resolve(r).is_some_and(|row| eval(&filter, data, &row)))
                .copied()
                .collect()
        });
        matching.iter().take(end).filter_map(resolve).collect()
    };
    let start = start.min(rows.len());
    let out = rows[start..]
        .iter()
        .map(|row| {
            access
                .iter()
                .map(|a| read(data, row.bill, row.entry, a).into_json())
                .collect()
        })
        .collect();
    Ok(QueryResult { keys, rows: out })
}
