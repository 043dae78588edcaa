//! `data/query`: filters with every operator of fxiaoke.md §4.4, orders, field projection,
//! `limit` / `offset` rules and `total`.

mod search;

use std::cmp::Ordering;

use serde_json::{Map, Value};

use std::collections::BTreeMap;
use std::ops::Bound;

use super::objects::ObjectDef;
use super::store::Record;
pub(crate) use search::{Caps, Search};
use search::{Filter, Hit, Kind, Op, kind_of};

impl Search {
    /// The sort of this search: the orders asked for (most recently modified first when
    /// none; our choice, the reference is silent), each field with how it compares.
    fn orders<'s>(&'s self, def: Option<&ObjectDef>) -> Vec<(&'s str, bool, Kind)> {
        if self.orders.is_empty() {
            vec![
                ("last_modified_time", false, Kind::Numeric),
                ("_id", false, Kind::Text),
            ]
        } else {
            self.orders
                .iter()
                .map(|(f, a)| (f.as_str(), *a, kind_of(def, f)))
                .collect()
        }
    }

    /// Whether the page follows `_id` order, which the store already keeps.
    fn by_id_asc(&self) -> bool {
        self.orders.len() == 1 && self.orders[0].0 == "_id" && self.orders[0].1
    }

    /// A key naming this search's sort, when a cached total order of the object can serve
    /// it (not for `_id` order or `_id` ranges: the store's own order serves those).
    pub(crate) fn order_key(&self, api: &str) -> Option<String> {
        if self.by_id_asc() || self.filters.iter().any(|f| f.field == "_id") {
            return None;
        }
        let mut key = api.to_string();
        for (field, asc) in &self.orders {
            key.push('|');
            key.push_str(field);
            key.push(if *asc { '+' } else { '-' });
        }
        Some(key)
    }

    /// Every record's `_id` in this search's order (ties by `_id`), deleted ones included.
    pub(crate) fn sorted_ids(
        &self,
        records: &BTreeMap<String, Record>,
        def: Option<&ObjectDef>,
    ) -> Vec<String> {
        let orders = self.orders(def);
        let width = orders.len();
        let keys: Vec<Option<&Value>> = records
            .values()
            .flat_map(|r| orders.iter().map(|(f, _, _)| sort_key(r.get(*f))))
            .collect();
        let ids: Vec<&String> = records.keys().collect();
        let mut index: Vec<usize> = (0..ids.len()).collect();
        // Stable: records arrive in `_id` order, which breaks ties.
        index.sort_by(|a, b| {
            let (ka, kb) = (
                &keys[a * width..(a + 1) * width],
                &keys[b * width..(b + 1) * width],
            );
            for ((x, y), (_, asc, kind)) in ka.iter().zip(kb).zip(&orders) {
                let o = order_values(*x, *y, *asc, *kind);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        index.into_iter().map(|i| ids[i].clone()).collect()
    }

    /// A key naming this search's result set (filters and sort, not the page), when a
    /// cached result can serve it: a client paging with offsets repeats it page after page.
    pub(crate) fn result_key(&self, api: &str) -> Option<String> {
        self.order_key(api)
            .map(|order| format!("{order}#{:?}", self.filters))
    }

    /// The `_id`s of every matching record, in the order of `sorted`.
    pub(crate) fn matching_ids(
        &self,
        records: &BTreeMap<String, Record>,
        def: Option<&ObjectDef>,
        sorted: &[String],
    ) -> Vec<String> {
        let show_deleted = self.shows_deleted();
        let kinds: Vec<Kind> = self
            .filters
            .iter()
            .map(|f| kind_of(def, &f.field))
            .collect();
        sorted
            .iter()
            .filter(|id| {
                records
                    .get(*id)
                    .is_some_and(|r| self.keep(r, &kinds, show_deleted))
            })
            .cloned()
            .collect()
    }

    /// (total, page) of a result given as matching `_id`s in order.
    pub(crate) fn page_of(
        &self,
        records: &BTreeMap<String, Record>,
        ids: &[String],
    ) -> (usize, Vec<Value>) {
        let page = ids
            .iter()
            .skip(self.offset)
            .take(self.limit)
            .filter_map(|id| records.get(id))
            .map(|r| self.project(r))
            .collect();
        (if self.want_total { ids.len() } else { 0 }, page)
    }

    fn shows_deleted(&self) -> bool {
        self.filters
            .iter()
            .any(|f| f.field == "is_deleted" || f.field == "life_status")
    }

    fn keep(&self, r: &Record, kinds: &[Kind], show_deleted: bool) -> bool {
        (show_deleted || r.get("is_deleted") != Some(&Value::Bool(true)))
            && self
                .filters
                .iter()
                .zip(kinds)
                .all(|(f, k)| matches(r, f, *k))
    }

    /// Matching records (total, page), projected. Invalidated records (`is_deleted`) only
    /// appear when a filter names `is_deleted` or `life_status` (the recycle bin is not
    /// part of a normal list; an inference, fxiaoke.md does not say).
    ///
    /// With `sorted` (from [`Search::sorted_ids`], possibly cached) the records are walked in
    /// that order. Without it, records are walked by `_id`: `_id` range filters (keyset
    /// paging, fxiaoke.md §4.4) only visit the range, and an `_id`-ordered page without
    /// totals stops when full; other orders are sorted here.
    pub(crate) fn run(
        &self,
        records: &BTreeMap<String, Record>,
        def: Option<&ObjectDef>,
        sorted: Option<&[String]>,
    ) -> (usize, Vec<Value>) {
        let show_deleted = self.shows_deleted();
        let kinds: Vec<Kind> = self
            .filters
            .iter()
            .map(|f| kind_of(def, &f.field))
            .collect();
        let end = self.offset.saturating_add(self.limit);
        let mut total = 0;
        let mut page: Vec<&Record> = Vec::new();
        if let Some(sorted) = sorted {
            for id in sorted {
                let Some(r) = records.get(id) else { continue };
                if self.keep(r, &kinds, show_deleted) {
                    if (self.offset..end).contains(&total) {
                        page.push(r);
                    }
                    total += 1;
                    if total >= end && !self.want_total {
                        break;
                    }
                }
            }
        } else if self.by_id_asc() {
            for (_, r) in records.range::<str, _>(self.id_range()) {
                if self.keep(r, &kinds, show_deleted) {
                    if (self.offset..end).contains(&total) {
                        page.push(r);
                    }
                    total += 1;
                    if total >= end && !self.want_total {
                        break;
                    }
                }
            }
        } else {
            let orders = self.orders(def);
            let mut hits: Vec<Hit<'_>> = records
                .range::<str, _>(self.id_range())
                .filter(|(_, r)| self.keep(r, &kinds, show_deleted))
                .map(|(id, r)| {
                    let keys = orders.iter().map(|(f, _, _)| sort_key(r.get(*f))).collect();
                    (r, keys, id.as_str())
                })
                .collect();
            total = hits.len();
            let compare = |a: &Hit<'_>, b: &Hit<'_>| {
                for ((x, y), (_, asc, kind)) in a.1.iter().zip(&b.1).zip(&orders) {
                    let o = order_values(*x, *y, *asc, *kind);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                // Ties: `_id` ascending, so that pages never overlap.
                a.2.cmp(b.2)
            };
            let end = end.min(total);
            if end < hits.len() && end > 0 {
                hits.select_nth_unstable_by(end, compare);
                hits.truncate(end);
            }
            hits.sort_unstable_by(compare);
            page = hits.iter().skip(self.offset).map(|(r, _, _)| *r).collect();
        }
        let page = page.into_iter().map(|r| self.project(r)).collect();
        (if self.want_total { total } else { 0 }, page)
    }

    /// The `_id` range the filters allow (the rest is checked record by record).
    fn id_range(&self) -> (Bound<&str>, Bound<&str>) {
        let mut low = Bound::Unbounded;
        let mut high = Bound::Unbounded;
        for f in self.filters.iter().filter(|f| f.field == "_id") {
            let Some(v) = f.values.first().and_then(Value::as_str) else {
                continue;
            };
            match f.op {
                Op::Gt => low = tighter_low(low, Bound::Excluded(v)),
                Op::Gte => low = tighter_low(low, Bound::Included(v)),
                Op::Lt => high = tighter_high(high, Bound::Excluded(v)),
                Op::Lte => high = tighter_high(high, Bound::Included(v)),
                _ => {}
            }
        }
        // An empty or inverted range would make `BTreeMap::range` panic: answer an empty one.
        if let (Some(l), Some(h)) = (bound_value(low), bound_value(high))
            && (l > h
                || (l == h
                    && (matches!(low, Bound::Excluded(_)) || matches!(high, Bound::Excluded(_)))))
        {
            return (Bound::Included(""), Bound::Excluded(""));
        }
        (low, high)
    }

    fn project(&self, r: &Record) -> Value {
        if self.projection.is_empty() {
            return Value::Object(r.clone());
        }
        let mut out = Map::new();
        for field in &self.projection {
            match r.get(field) {
                Some(v) => {
                    out.insert(field.clone(), v.clone());
                }
                None if self.include_null => {
                    out.insert(field.clone(), Value::Null);
                }
                None => {}
            }
        }
        Value::Object(out)
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bound_value(b: Bound<&str>) -> Option<&str> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

fn tighter_low<'v>(a: Bound<&'v str>, b: Bound<&'v str>) -> Bound<&'v str> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y))
            if x != y =>
        {
            if x > y {
                a
            } else {
                b
            }
        }
        (Bound::Excluded(_), _) => a,
        _ => b,
    }
}

fn tighter_high<'v>(a: Bound<&'v str>, b: Bound<&'v str>) -> Bound<&'v str> {
    match (a, b) {
        (Bound::Unbounded, x) | (x, Bound::Unbounded) => x,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y))
            if x != y =>
        {
            if x < y {
                a
            } else {
                b
            }
        }
        (Bound::Excluded(_), _) => a,
        _ => b,
    }
}

/// Scalar comparison by the field's [`Kind`]; booleans compare as their text.
fn cmp_scalar(a: &Value, b: &Value, kind: Kind) -> Option<Ordering> {
    let numeric = match kind {
        Kind::Numeric => true,
        Kind::Text => false,
        Kind::Auto => a.is_number() || b.is_number(),
    };
    if numeric && let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y);
    }
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return Some(x.as_str().cmp(y.as_str()));
    }
    Some(text(a)?.cmp(&text(b)?))
}

fn eq_scalar(a: &Value, b: &Value, kind: Kind) -> bool {
    cmp_scalar(a, b, kind) == Some(Ordering::Equal)
}

/// The scalars of a field: the elements of a list (owner, employee and department fields),
/// or the value itself.
fn scalars(v: Option<&Value>) -> &[Value] {
    match v {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => std::slice::from_ref(other),
    }
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn matches(r: &Record, f: &Filter, kind: Kind) -> bool {
    let v = r.get(&f.field);
    let items = scalars(v);
    let first = f.values.first();
    let lower = |x: &Value| text(x).map(|t| t.to_lowercase());
    let text_test = |test: &dyn Fn(&str, &str) -> bool| {
        let Some(needle) = first.and_then(lower) else {
            return false;
        };
        let needle = needle.trim_matches('%').to_string();
        items.iter().filter_map(&lower).any(|t| test(&t, &needle))
    };
    let any_eq = || {
        items.iter().any(|x| match (x, &f.texts) {
            // Text against text compares as text unless the field is numeric.
            (Value::String(s), Some(texts)) if kind != Kind::Numeric => texts.contains(s),
            _ => f.values.iter().any(|y| eq_scalar(x, y, kind)),
        })
    };
    let cmp_first = |want: &dyn Fn(Ordering) -> bool| {
        let Some(y) = first else { return false };
        items
            .iter()
            .any(|x| cmp_scalar(x, y, kind).is_some_and(want))
    };
    let between = || {
        let (Some(low), Some(high)) = (f.values.first(), f.values.get(1)) else {
            return false;
        };
        items.iter().any(|x| {
            cmp_scalar(x, low, kind).is_some_and(|o| o != Ordering::Less)
                && cmp_scalar(x, high, kind).is_some_and(|o| o != Ordering::Greater)
        })
    };
    match f.op {
        Op::Eq => first.is_some_and(|y| items.iter().any(|x| eq_scalar(x, y, kind))),
        Op::N => !first.is_some_and(|y| items.iter().any(|x| eq_scalar(x, y, kind))),
        Op::Gt => cmp_first(&|o| o == Ordering::Greater),
        Op::Gte => cmp_first(&|o| o != Ordering::Less),
        Op::Lt => cmp_first(&|o| o == Ordering::Less),
        Op::Lte => cmp_first(&|o| o != Ordering::Greater),
        // LIKE is a "contains" match (no wildcards of its own; `%` is ignored).
        Op::Like | Op::Contains => text_test(&|t, n| t.contains(n)),
        Op::NLike => !text_test(&|t, n| t.contains(n)),
        Op::StartWith => text_test(&|t, n| t.starts_with(n)),
        Op::EndWith => text_test(&|t, n| t.ends_with(n)),
        Op::Is => empty(v),
        Op::Isn => !empty(v),
        Op::In | Op::HasAnyOf => any_eq(),
        Op::Nin | Op::NHasAnyOf => !any_eq(),
        Op::Between => between(),
        Op::NBetween => !empty(v) && !between(),
    }
}

/// Sort order: values present before missing ones (both directions), then by value.
fn sort_key(v: Option<&Value>) -> Option<&Value> {
    match v {
        Some(Value::Array(items)) => items.first(),
        other => other.filter(|v| !v.is_null()),
    }
}

/// Compares two sort keys (already through [`sort_key`]).
fn order_values(a: Option<&Value>, b: Option<&Value>, asc: bool, kind: Kind) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(left), Some(right)) => {
            let order = cmp_scalar(left, right, kind).unwrap_or(Ordering::Equal);
            if asc { order } else { order.reverse() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fxiaoke::envelope::FxError;
    use serde_json::json;

    fn records() -> Vec<Record> {
        (0..30)
            .map(|i| {
                json!({"_id": format!("{i:024x}"), "name": format!("客户{i:02}"), "n": i,
                       "amount": format!("{}.5", i * 10), "owner": [if i % 2 == 0 { "A" } else { "B" }],
                       "last_modified_time": 1000 + i % 5, "is_deleted": i == 29,
                       "tag": if i % 3 == 0 { Value::Null } else { json!("x") }})
                .as_object()
                .cloned()
                .unwrap()
            })
            .collect()
    }

    fn run(info: &Value) -> Result<(usize, Vec<Value>), FxError> {
        let caps = Caps {
            max_limit: 100,
            max_offset: 10_000,
        };
        let info = info.as_object().cloned().unwrap();
        let search = Search::parse(&info, &Map::new(), &Map::new(), caps)?;
        let records = by_id(records());
        let unsorted = search.run(&records, None, None);
        // The cached-order path gives the same answer.
        let sorted = search.sorted_ids(&records, None);
        if search.order_key("x").is_some() {
            assert_eq!(search.run(&records, None, Some(&sorted)), unsorted);
            let ids = search.matching_ids(&records, None, &sorted);
            assert_eq!(search.page_of(&records, &ids), unsorted);
        }
        Ok(unsorted)
    }

    fn by_id(records: Vec<Record>) -> BTreeMap<String, Record> {
        records
            .into_iter()
            .map(|r| (r["_id"].as_str().unwrap().to_string(), r))
            .collect()
    }

    fn ids(page: &[Value]) -> Vec<i64> {
        page.iter().map(|r| r["n"].as_i64().unwrap()).collect()
    }

    #[test]
    fn every_operator() {
        let q = |op: &str, values: Value| {
            let (_, page) = run(&json!({"limit": 100, "offset": 0,
                "filters": [{"field_name": if op.contains("ANY") || op == "IN" || op == "NIN" { "owner" } else { "n" }, "operator": op, "field_values": values}],
                "orders": [{"fieldName": "n", "isAsc": true}]}))
            .unwrap();
            ids(&page)
        };
        assert_eq!(q("EQ", json!([3])), vec![3]);
        assert_eq!(q("EQ", json!("3")), vec![3]);
        assert_eq!(q("N", json!([3])).len(), 28);
        assert_eq!(q("GT", json!([26])), vec![27, 28]);
        assert_eq!(q("GTE", json!(["27"])), vec![27, 28]);
        assert_eq!(q("LT", json!([2])), vec![0, 1]);
        assert_eq!(q("LTE", json!([1])), vec![0, 1]);
        assert_eq!(q("BETWEEN", json!([3, 5])), vec![3, 4, 5]);
        assert_eq!(q("NBETWEEN", json!([2, 27])), vec![0, 1, 28]);
        assert_eq!(q("IN", json!(["A"])).len(), 15);
        assert_eq!(q("NIN", json!(["A"])).len(), 14);
        assert_eq!(q("HASANYOF", json!(["B", "C"])).len(), 14);
        assert_eq!(q("NHASANYOF", json!(["B"])).len(), 15);
        let t = |op: &str, field: &str, value: Value| {
            let (_, page) = run(&json!({"limit": 100, "offset": 0,
                "filters": [{"field_name": field, "operator": op, "field_values": [value]}]}))
            .unwrap();
            page.len()
        };
        assert_eq!(t("LIKE", "name", json!("户1")), 10);
        assert_eq!(t("NLIKE", "name", json!("户1")), 19);
        assert_eq!(t("CONTAINS", "name", json!("客户2")), 9);
        assert_eq!(t("STARTWITH", "name", json!("客户0")), 10);
        assert_eq!(t("ENDWITH", "name", json!("5")), 3);
        assert_eq!(t("IS", "tag", json!("")), 10);
        assert_eq!(t("ISN", "tag", json!("")), 19);
        // An undeclared field compares as text unless the filter value is a JSON number.
        assert_eq!(t("GT", "amount", json!("200")), 16);
        assert_eq!(t("GT", "amount", json!(200)), 9);
    }

    #[test]
    fn paging_rules_and_totals() {
        let (total, page) = run(&json!({"limit": 10, "offset": 10,
            "orders": [{"fieldName": "last_modified_time", "isAsc": false}, {"fieldName": "n", "isAsc": true}]}))
        .unwrap();
        assert_eq!(total, 29);
        assert_eq!(ids(&page), vec![28, 2, 7, 12, 17, 22, 27, 1, 6, 11]);
        assert_eq!(run(&json!({"limit": 101})).unwrap_err().code, 15002);
        assert_eq!(
            run(&json!({"limit": 10, "offset": 15})).unwrap_err().code,
            15002
        );
        assert_eq!(
            run(&json!({"limit": 100, "offset": 10_100}))
                .unwrap_err()
                .code,
            10013
        );
        assert_eq!(
            run(&json!({"limit": 100, "offset": 10_000}))
                .unwrap()
                .1
                .len(),
            0
        );
        assert_eq!(
            run(&json!({"limit": 5, "filters": [{"field_name": "x", "operator": "SOUNDS"}]}))
                .unwrap_err()
                .code,
            15002
        );
        assert_eq!(run(&json!({"limit": 5, "filters": [{"field_name": "n", "operator": "BETWEEN", "field_values": [1]}]})).unwrap_err().code, 15002);
        // Deleted records show up when asked for.
        let (total, _) = run(&json!({"limit": 5, "filters": [{"field_name": "is_deleted", "operator": "EQ", "field_values": [true]}]})).unwrap();
        assert_eq!(total, 1);
    }

    #[test]
    fn id_ranges_never_panic() {
        let id = |n: u32| format!("{n:024x}");
        let q = |filters: Value| {
            run(&json!({"limit": 100, "filters": filters, "orders": [{"fieldName": "_id", "isAsc": true}]}))
                .unwrap()
                .1
                .len()
        };
        let f =
            |op: &str, v: &str| json!({"field_name": "_id", "operator": op, "field_values": [v]});
        assert_eq!(q(json!([f("GT", &id(3)), f("LTE", &id(6))])), 3);
        assert_eq!(q(json!([f("GTE", &id(3)), f("LTE", &id(3))])), 1);
        assert_eq!(q(json!([f("GT", &id(3)), f("LT", &id(3))])), 0);
        assert_eq!(q(json!([f("GT", &id(9)), f("LT", &id(2))])), 0);
        assert_eq!(
            q(json!([f("GT", &id(2)), f("GT", &id(5)), f("GTE", &id(4))])),
            23
        );
        assert_eq!(q(json!([f("GT", "zzz")])), 0);
    }

    #[test]
    fn projection_and_total_switch() {
        let caps = Caps {
            max_limit: 100,
            max_offset: 10_000,
        };
        let info = json!({"limit": 2, "fieldProjection": ["_id", "name", "missing"]});
        let data = json!({"find_explicit_total_num": false});
        let search = Search::parse(
            info.as_object().unwrap(),
            data.as_object().unwrap(),
            json!({"includeNull": true}).as_object().unwrap(),
            caps,
        )
        .unwrap();
        let (total, page) = search.run(&by_id(records()), None, None);
        assert_eq!(total, 0);
        assert_eq!(
            page[0].as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["_id", "name", "missing"]
        );
    }
}
