//! The pager against a stateful mock that answers like the server: limit ≤ 100, offset ≤
//! 10,000 and a multiple of the limit (else 10013), AND-ed filters, multi-key orders. Every row
//! is read exactly once, past 10,000 rows, with ties on the order field across pages, and —
//! in the default keyset mode — while other writers move rows between pages.

mod common;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use fxiaoke_sdk::{Filter, PagingMode};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const QUERY: &str = "/cgi/crm/v2/data/query";
const T0: i64 = 1_716_000_000_000;
const LATER: i64 = 4_102_358_400_000;

/// One row of the simulated tenant (typed, so that sorting 10,000 rows per call is cheap).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: String,
    time: i64,
}

impl Row {
    fn to_json(&self) -> Value {
        json!({"_id": self.id, "name": format!("客户{}", &self.id[16..]), "last_modified_time": self.time})
    }
}

/// Changes the rows before call number `n` is answered.
type Hook = Box<dyn FnMut(&mut Vec<Row>, usize) + Send>;

/// The tenant's rows and what the server saw.
struct Crm {
    rows: Vec<Row>,
    offsets: Vec<u64>,
    filters_seen: Vec<Value>,
    /// Called before each query is answered: lets a test change rows between pages.
    on_call: Option<Hook>,
}

/// 24-hex ids in no particular order, unique.
fn id(i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DC4_CEFA_038E_AA00;
    format!("{x:016x}{i:08x}")
}

/// `n` rows; times repeat in groups of 7, and one group of 250 rows shares a time (more than
/// two pages of ties), and a group of 30 straddles row 10,000.
fn typed_rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let group = match i {
                5000..5250 => 5000,
                9985..10_015 => 9985,
                _ => i / 7 * 7,
            };
            Row {
                id: id(i),
                time: T0 + i64::try_from(group).unwrap() * 1000,
            }
        })
        .collect()
}

fn rows(n: usize) -> Vec<Value> {
    typed_rows(n).iter().map(Row::to_json).collect()
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap()
            .partial_cmp(&y.as_f64().unwrap())
            .unwrap(),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => panic!("cannot compare {a} and {b}"),
    }
}

/// A filter on `_id` or `last_modified_time`, as the server applies it.
fn matches(row: &Row, filter: &Value) -> bool {
    let values = filter["field_values"].as_array().unwrap();
    let c = |i: usize| match filter["field_name"].as_str().unwrap() {
        "_id" => row.id.as_str().cmp(values[i].as_str().unwrap()),
        "last_modified_time" => row.time.cmp(&values[i].as_i64().unwrap()),
        f => panic!("field {f} not simulated"),
    };
    match filter["operator"].as_str().unwrap() {
        "EQ" => c(0).is_eq(),
        "GT" => c(0).is_gt(),
        "GTE" => c(0).is_ge(),
        "LT" => c(0).is_lt(),
        "LTE" => c(0).is_le(),
        "BETWEEN" => c(0).is_ge() && c(1).is_le(),
        op => panic!("operator {op} not simulated"),
    }
}

fn error(code: i64, message: &str) -> ResponseTemplate {
    json_value(&json!({"errorCode": code, "errorMessage": message}))
}

impl Crm {
    fn answer(&mut self, r: &Request) -> ResponseTemplate {
        let body = body_json(r);
        let info = &body["data"]["search_query_info"];
        let limit = info["limit"].as_u64().unwrap();
        let offset = info["offset"].as_u64().unwrap();
        if limit == 0 || limit > 100 {
            return error(15002, "limit must be 1..100");
        }
        if offset > 10_000 || !offset.is_multiple_of(limit) {
            return error(10013, "offset out of range 10000");
        }
        let calls = self.offsets.len();
        if let Some(hook) = &mut self.on_call {
            hook(&mut self.rows, calls);
        }
        self.offsets.push(offset);
        let filters = info["filters"].as_array().unwrap();
        self.filters_seen.extend(filters.iter().cloned());
        let orders: Vec<(bool, bool)> = info["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["fieldName"] == "_id", o["isAsc"] != false))
            .collect();
        let mut hits: Vec<&Row> = self
            .rows
            .iter()
            .filter(|row| filters.iter().all(|f| matches(row, f)))
            .collect();
        hits.sort_by(|a, b| {
            for &(by_id, asc) in &orders {
                let c = if by_id {
                    a.id.cmp(&b.id)
                } else {
                    a.time.cmp(&b.time)
                };
                let c = if asc { c } else { c.reverse() };
                if c.is_ne() {
                    return c;
                }
            }
            Ordering::Equal
        });
        let page: Vec<Value> = hits
            .into_iter()
            .skip(usize::try_from(offset).unwrap())
            .take(usize::try_from(limit).unwrap())
            .map(Row::to_json)
            .collect();
        json_value(&json!({"errorCode": 0, "errorMessage": "OK",
            "data": {"dataList": page, "offset": offset, "limit": limit, "total": 0}}))
    }
}

async fn serving(crm: Crm) -> (MockServer, Arc<Mutex<Crm>>) {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let crm = Arc::new(Mutex::new(crm));
    let shared = Arc::clone(&crm);
    Mock::given(path(QUERY))
        .respond_with(move |r: &Request| shared.lock().unwrap().answer(r))
        .mount(&server)
        .await;
    (server, crm)
}

fn crm(n: usize) -> Crm {
    Crm {
        rows: typed_rows(n),
        offsets: Vec::new(),
        filters_seen: Vec::new(),
        on_call: None,
    }
}

/// Each id read exactly once, and the ids in `expected` order.
fn assert_each_once(read: &[Value], expected: &[Value]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for row in read {
        *seen.entry(row["_id"].as_str().unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "read twice: {twice:?}");
    assert_eq!(read.len(), expected.len(), "rows read");
    let ids = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(read), ids(expected), "order");
}

fn sorted_by_time(mut rows: Vec<Value>, ascending: bool) -> Vec<Value> {
    rows.sort_by(|a, b| {
        let c = compare(&a["last_modified_time"], &b["last_modified_time"]);
        let c = if ascending { c } else { c.reverse() };
        c.then_with(|| compare(&a["_id"], &b["_id"]))
    });
    rows
}

#[tokio::test]
async fn offset_paging_then_keyset_reads_10250_rows_exactly_once() {
    let (server, crm) = serving(crm(10_250)).await;
    let client = client(&server);
    let mut pager = client
        .query("AccountObj")
        .order_by("last_modified_time", true)
        .pages::<Value>()
        .mode(PagingMode::OffsetThenKeyset);
    let mut read = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        read.extend(page);
    }
    assert_each_once(&read, &sorted_by_time(rows(10_250), true));
    let first = body_json(&requests_to(&server, QUERY).await[0]);
    assert_eq!(
        first["data"]["search_query_info"]["orders"],
        json!([{"fieldName": "last_modified_time", "isAsc": true}, {"fieldName": "_id", "isAsc": true}])
    );
    let crm = crm.lock().unwrap();
    // 100 offset pages (0 … 9,900), then one keyset jump and a few more pages.
    assert_eq!(*crm.offsets.iter().max().unwrap(), 9_900);
    assert_eq!(
        &crm.offsets[..100],
        (0..100).map(|p| p * 100).collect::<Vec<_>>()
    );
    assert_eq!(crm.offsets[100], 0, "keyset jump restarts at offset 0");
    assert!(crm.offsets.len() <= 104, "{} calls", crm.offsets.len());
    assert_eq!(pager.calls(), crm.offsets.len() as u64);
    assert_eq!(pager.rows_read(), 10_250);
    assert!(
        crm.filters_seen
            .iter()
            .any(|f| f["operator"] == "GTE" && f["field_name"] == "last_modified_time")
    );
}

#[tokio::test]
async fn the_default_keyset_walk_reads_10250_rows_once_through_a_long_run_of_equal_times() {
    let (server, crm) = serving(crm(10_250)).await;
    let client = client(&server);
    let mut pager = client
        .query("AccountObj")
        .order_by("last_modified_time", true)
        .pages::<Value>();
    let mut read = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        read.extend(page);
    }
    assert_each_once(&read, &sorted_by_time(rows(10_250), true));
    assert_eq!(pager.rows_read(), 10_250);
    assert!(pager.repeated_ids().is_empty());
    let crm = crm.lock().unwrap();
    assert_eq!(pager.calls(), crm.offsets.len() as u64);
    // Past row 10,000 without ever sending an offset.
    assert!(crm.offsets.iter().all(|o| *o == 0));
    // The rows tied with the last row of a page come back and are dropped: 108 calls on this
    // data (an independent model of the walk agrees).
    assert_eq!(crm.offsets.len(), 108);
    // The 250 equal times are read by `_id` within the value.
    assert!(crm.filters_seen.iter().any(|f| f["operator"] == "EQ"));
}

#[tokio::test]
async fn descending_order_and_a_user_filter() {
    let (server, _) = serving(crm(10_250)).await;
    let low = T0 + 100 * 1000;
    let read: Vec<Value> = client(&server)
        .query("AccountObj")
        .filter(Filter::between("last_modified_time", low, LATER))
        .order_by("last_modified_time", false)
        .limit(50)
        .all()
        .await
        .unwrap();
    let expected: Vec<Value> = sorted_by_time(rows(10_250), false)
        .into_iter()
        .filter(|r| r["last_modified_time"].as_i64().unwrap() >= low)
        .collect();
    assert!(expected.len() > 10_100);
    assert_each_once(&read, &expected);
}

#[tokio::test]
async fn without_an_order_the_pager_walks_by_id() {
    for n in [10_000, 10_001, 250] {
        let (server, crm) = serving(crm(n)).await;
        let read: Vec<Value> = client(&server).query("AccountObj").all().await.unwrap();
        let mut expected = rows(n);
        expected.sort_by(|a, b| compare(&a["_id"], &b["_id"]));
        assert_each_once(&read, &expected);
        let crm = crm.lock().unwrap();
        // Exactly the pages needed, plus one (empty or short) that shows the end: `_id GT`
        // returns no row twice.
        assert_eq!(crm.offsets.len(), n / 100 + 1, "n = {n}");
        assert!(crm.offsets.iter().all(|o| *o == 0));
        if n > 10_000 {
            assert!(
                crm.filters_seen
                    .iter()
                    .any(|f| f["operator"] == "GT" && f["field_name"] == "_id")
            );
        }
    }
}

#[tokio::test]
async fn rows_leaving_the_window_between_pages_skip_no_other_row() {
    // An incremental read of a fixed window while other writers touch rows: each call first
    // moves a few rows to a time past the window (as an edit would). Keyset paging reads every
    // row that stays in the window exactly once; the moved rows are read at most once (before
    // their edit) and the next run's window catches them.
    let mut c = crm(3_000);
    c.on_call = Some(Box::new(|rows: &mut Vec<Row>, call: usize| {
        for k in 0..3 {
            let i = (call * 131 + k * 977) % rows.len();
            rows[i].time = LATER + 1;
        }
    }));
    let (server, crm) = serving(c).await;
    let read: Vec<Value> = client(&server)
        .query("AccountObj")
        .filter(Filter::between("last_modified_time", T0, LATER))
        .order_by("last_modified_time", true)
        .limit(100)
        .all()
        .await
        .unwrap();
    let crm = crm.lock().unwrap();
    let moved: Vec<&str> = crm
        .rows
        .iter()
        .filter(|r| r.time == LATER + 1)
        .map(|r| r.id.as_str())
        .collect();
    assert!(moved.len() > 50, "the test moves rows: {}", moved.len());
    let mut count: HashMap<&str, usize> = HashMap::new();
    for r in &read {
        *count.entry(r["_id"].as_str().unwrap()).or_default() += 1;
    }
    assert!(count.values().all(|n| *n == 1), "a row was read twice");
    for r in &crm.rows {
        let id = r.id.as_str();
        if !moved.contains(&id) {
            assert_eq!(
                count.get(id),
                Some(&1),
                "{id} stayed in the window but was skipped"
            );
        }
    }
}

/// 1,000 rows with distinct times (`T0 + i s`), row `i` at position `i`. Before the 3rd call
/// (two pages read) and before the 6th, other writers edit rows: some move to the end of the
/// window (`LATER - …`, as an edit stamps a new `last_modified_time`), some leave it.
fn edited_between_pages() -> Crm {
    let mut c = crm(0);
    c.rows = (0..1000)
        .map(|i| Row {
            id: id(i),
            time: T0 + i64::try_from(i).unwrap() * 1000,
        })
        .collect();
    c.on_call = Some(Box::new(|rows: &mut Vec<Row>, call: usize| {
        let moves: &[(usize, i64)] = match call {
            // 10 and 50 were read, 500 and 600 not: to the end. 20 (read) and 700 (not) leave.
            2 => &[
                (10, LATER - 10_000),
                (50, LATER - 9_000),
                (500, LATER - 8_000),
                (600, LATER - 7_000),
                (20, LATER + 1),
                (700, LATER + 1),
            ],
            // 150 was read, 900 not, 500 moved once already (unread): to the end.
            5 => &[
                (150, LATER - 6_000),
                (900, LATER - 5_000),
                (500, LATER - 1_000),
            ],
            _ => &[],
        };
        for &(i, time) in moves {
            rows[i].time = time;
        }
    }));
    c
}

/// The `(index, last_modified_time)` of each row read, by the index of [`id`].
fn indexed(read: &[Value]) -> Vec<(usize, i64)> {
    let index: HashMap<String, usize> = (0..1000).map(|i| (id(i), i)).collect();
    read.iter()
        .map(|r| {
            (
                index[r["_id"].as_str().unwrap()],
                r["last_modified_time"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn rows_moving_to_the_end_between_pages_are_read_once_and_none_is_skipped() {
    let (server, crm) = serving(edited_between_pages()).await;
    let client = client(&server);
    let mut pager = client
        .query("AccountObj")
        .filter(Filter::between("last_modified_time", T0, LATER))
        .order_by("last_modified_time", true)
        .pages::<Value>();
    let mut read = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        read.extend(page);
    }
    let read = indexed(&read);
    let at = |i: usize| T0 + i64::try_from(i).unwrap() * 1000;
    // Every row that stayed put, once, in order; the rows read before their edit (10, 20, 50,
    // 150) as read; the rows edited before being read (600, 900, 500) once, as their newer
    // version at the end; 700, gone before it was reached, not at all.
    let mut expected: Vec<(usize, i64)> = (0..1000)
        .filter(|i| ![500, 600, 700, 900].contains(i))
        .map(|i| (i, at(i)))
        .collect();
    expected.extend([
        (600, LATER - 7_000),
        (900, LATER - 5_000),
        (500, LATER - 1_000),
    ]);
    assert_eq!(read, expected);
    // The server returned 10, 50 and 150 again at the end: dropped, and reported.
    assert_eq!(pager.repeated_ids(), [id(10), id(50), id(150)]);
    assert_eq!(pager.rows_read(), 999);
    // Pages start at rows 0, 99, 198, 297, 396, 495, 595, 695, 795, 894 and 994 (each page
    // returns its predecessor's last row again, dropped; 500, 700 and 900 are no longer on
    // the way): the 11th page is the short one.
    let crm = crm.lock().unwrap();
    assert_eq!(crm.offsets, [0; 11]);
    assert_eq!(pager.calls(), 11);
}

#[tokio::test]
async fn offset_paging_skips_rows_when_rows_behind_it_move_and_is_opt_in() {
    // The documented caveat of `OffsetThenKeyset`, on the same edits: still no row twice, but
    // every row that leaves the positions behind the walk shifts the rest one offset back.
    let (server, crm) = serving(edited_between_pages()).await;
    let client = client(&server);
    let mut pager = client
        .query("AccountObj")
        .filter(Filter::between("last_modified_time", T0, LATER))
        .order_by("last_modified_time", true)
        .pages::<Value>()
        .mode(PagingMode::OffsetThenKeyset);
    let mut read = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        read.extend(page);
    }
    let read = indexed(&read);
    let ids: Vec<usize> = read.iter().map(|(i, _)| *i).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no row twice");
    let missed: Vec<usize> = (0..1000).filter(|i| !ids.contains(i)).collect();
    // 10, 20 and 50 left the first page before offset 200 was read: 200–202 were never
    // returned. 150 (and 500, 900 from ahead) left before offset 500: 504 too.
    assert_eq!(missed, [200, 201, 202, 504, 700]);
    assert_eq!(pager.repeated_ids(), [id(10), id(50), id(150)]);
    let crm = crm.lock().unwrap();
    assert_eq!(crm.offsets, (0..10).map(|p| p * 100).collect::<Vec<u64>>());
}

#[tokio::test]
async fn the_pager_refuses_orders_it_cannot_make_total() {
    let server = MockServer::start().await;
    let client = client(&server);
    let two = client
        .query("AccountObj")
        .order_by("create_time", true)
        .order_by("name", true)
        .all::<Value>()
        .await;
    assert!(matches!(two, Err(fxiaoke_sdk::Error::InvalidInput(_))));
    let id_desc = client
        .query("AccountObj")
        .order_by("_id", false)
        .all::<Value>()
        .await;
    assert!(matches!(id_desc, Err(fxiaoke_sdk::Error::InvalidInput(_))));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_projection_gets_the_keys_the_pager_needs() {
    let (server, _) = serving(crm(150)).await;
    let read: Vec<Value> = client(&server)
        .query("AccountObj")
        .fields(["name"])
        .order_by("last_modified_time", true)
        .all()
        .await
        .unwrap();
    assert_eq!(read.len(), 150);
    let first = body_json(&requests_to(&server, QUERY).await[0]);
    assert_eq!(
        first["data"]["search_query_info"]["fieldProjection"],
        json!(["name", "_id", "last_modified_time"])
    );
}

#[tokio::test]
async fn a_walk_resumes_after_a_row_and_says_when_it_is_done() {
    let (server, crm) = serving(crm(1_000)).await;
    let client = client(&server);
    let all = sorted_by_time(rows(1_000), true);
    // Resume inside a group of equal times: row 500 of the order, in the middle of its group.
    let anchor = &all[500];
    let mut pager = client
        .query("AccountObj")
        .order_by("last_modified_time", true)
        .pages::<Value>()
        .start_after(
            anchor["last_modified_time"].clone(),
            anchor["_id"].as_str().unwrap(),
        );
    assert!(!pager.is_done());
    let mut read = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        read.extend(page);
    }
    assert!(pager.is_done());
    assert_each_once(&read, &all[501..]);
    assert!(crm.lock().unwrap().offsets.iter().all(|o| *o == 0));
    assert_eq!(pager.next_page().await.unwrap(), None);

    // Without an order field the walk resumes after the `_id`.
    let mut by_id = rows(1_000);
    by_id.sort_by(|a, b| compare(&a["_id"], &b["_id"]));
    let rest = client
        .query("AccountObj")
        .pages::<Value>()
        .start_after(Value::Null, by_id[899]["_id"].as_str().unwrap())
        .collect_all()
        .await
        .unwrap();
    assert_each_once(&rest, &by_id[900..]);
}

#[tokio::test]
async fn a_resumed_walk_costs_one_call_when_the_rest_fits_a_page() {
    // A sync resuming from its cursor: the rest of the anchor's time and the times after it,
    // fewer than a page, in one call (not one for the anchor's time and one for the rest).
    let (server, _) = serving(crm(1_000)).await;
    let client = client(&server);
    let all = sorted_by_time(rows(1_000), true);
    let anchor = &all[949];
    let mut pager = client
        .query("AccountObj")
        .order_by("last_modified_time", true)
        .pages::<Value>()
        .start_after(
            anchor["last_modified_time"].clone(),
            anchor["_id"].as_str().unwrap(),
        );
    let page = pager.next_page().await.unwrap().unwrap();
    assert_each_once(&page, &all[950..]);
    assert!(pager.is_done());
    assert_eq!(pager.calls(), 1);
}

#[tokio::test]
async fn a_server_that_ignores_the_keyset_condition_ends_the_walk_with_an_error_not_a_loop() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let page = json!({"errorCode": 0, "errorMessage": "OK",
                      "data": {"dataList": rows(100), "offset": 0, "limit": 100, "total": 0}});
    Mock::given(path(QUERY))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    let client = client(&server);
    for ordered in [false, true] {
        let mut query = client.query("AccountObj");
        if ordered {
            query = query.order_by("last_modified_time", true);
        }
        let err = query.all::<Value>().await.unwrap_err();
        assert!(
            matches!(&err, fxiaoke_sdk::Error::Decode { message, .. } if message.contains("no progress")),
            "{err:?}"
        );
    }
    // The first page, then the same page for the next one: two calls per walk, no more.
    assert!(requests_to(&server, QUERY).await.len() <= 6);
}
