//! The pager reads every row exactly once, whatever the server's page cap.

mod common;

use std::sync::Mutex;

use common::*;
use k3cloud_sdk::Filter;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// An ExecuteBillQuery server over `rows` rows that never returns more than `cap` per call,
/// and records the (StartRow, Limit) of every call.
struct Table {
    rows: usize,
    cap: usize,
    calls: &'static Mutex<Vec<(u64, u64)>>,
}

impl Respond for Table {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let data = &body["data"];
        assert_eq!(
            data["TopRowCount"], 0,
            "the pager never sends a TopRowCount"
        );
        let start = data["StartRow"].as_u64().unwrap();
        let limit = data["Limit"].as_u64().unwrap();
        self.calls.lock().unwrap().push((start, limit));
        let start = usize::try_from(start).unwrap();
        let take = usize::try_from(limit).unwrap().min(self.cap);
        let rows: Vec<Value> = (start..self.rows.min(start + take))
            .map(|i| json!([i, format!("C{i:05}")]))
            .collect();
        json_response(&Value::Array(rows).to_string())
    }
}

async fn table(rows: usize, cap: usize) -> (MockServer, &'static Mutex<Vec<(u64, u64)>>) {
    let calls: &'static Mutex<Vec<(u64, u64)>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let server = MockServer::start().await;
    Mock::given(path(format!("{DFS}.ExecuteBillQuery.common.kdsvc")))
        .respond_with(Table { rows, cap, calls })
        .mount(&server)
        .await;
    (server, calls)
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Customer {
    #[serde(rename = "FCUSTID")]
    id: usize,
    #[serde(rename = "FNumber")]
    number: String,
}

async fn walk(
    server: &MockServer,
    limit: u32,
    tune: impl FnOnce(k3cloud_sdk::Pager<'_, Customer>) -> k3cloud_sdk::Pager<'_, Customer>,
) -> Vec<usize> {
    let client = signed_client(server);
    let pager = client
        .query("BD_Customer")
        .fields(["FCUSTID", "FNumber"])
        .filter(Filter::eq("FDocumentStatus", "C"))
        .order_by("FCUSTID ASC")
        .limit(limit)
        .pages::<Customer>();
    let mut pager = tune(pager);
    let mut seen = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        assert!(!page.is_empty(), "no empty page is handed out");
        for c in page {
            assert_eq!(c.number, format!("C{:05}", c.id));
            seen.push(c.id);
        }
    }
    assert!(
        pager.next_page().await.unwrap().is_none(),
        "a finished pager stays finished"
    );
    seen
}

fn every_row_once(seen: &[usize], rows: usize) {
    assert_eq!(seen, (0..rows).collect::<Vec<_>>());
}

#[tokio::test]
async fn pages_without_a_server_cap() {
    let (server, calls) = table(4_500, usize::MAX).await;
    every_row_once(&walk(&server, 2_000, |p| p).await, 4_500);
    // The first short page could be a cap; one more call proves it is the end.
    assert_eq!(
        *calls.lock().unwrap(),
        [(0, 2_000), (2_000, 2_000), (4_000, 2_000), (4_500, 2_000)]
    );
}

#[tokio::test]
async fn a_server_cap_below_the_limit_does_not_end_the_walk_early() {
    // A server before 23.11 caps at 2000 rows whatever Limit says.
    let (server, calls) = table(4_500, 2_000).await;
    every_row_once(&walk(&server, 5_000, |p| p).await, 4_500);
    assert_eq!(
        *calls.lock().unwrap(),
        [(0, 5_000), (2_000, 5_000), (4_000, 5_000)]
    );
}

#[tokio::test]
async fn an_exact_multiple_ends_on_an_empty_page() {
    let (server, calls) = table(4_000, usize::MAX).await;
    every_row_once(&walk(&server, 2_000, |p| p).await, 4_000);
    assert_eq!(calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_known_cap_saves_the_extra_call() {
    let (server, calls) = table(4_500, usize::MAX).await;
    every_row_once(
        &walk(&server, 2_000, |p| p.known_row_cap(10_000)).await,
        4_500,
    );
    assert_eq!(calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn max_rows_stops_the_walk() {
    let (server, calls) = table(4_500, usize::MAX).await;
    let seen = walk(&server, 2_000, |p| p.max_rows(2_500)).await;
    assert_eq!(seen, (0..2_500).collect::<Vec<_>>());
    assert_eq!(*calls.lock().unwrap(), [(0, 2_000), (2_000, 500)]);
}

#[tokio::test]
async fn an_empty_result_is_one_call() {
    let (server, calls) = table(0, usize::MAX).await;
    assert!(walk(&server, 2_000, |p| p).await.is_empty());
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn collect_all_reads_everything() {
    let (server, _) = table(2_345, 1_000).await;
    let client = signed_client(&server);
    let all: Vec<(usize, String)> = client
        .query("BD_Customer")
        .fields(["FCUSTID", "FNumber"])
        .order_by("FCUSTID ASC")
        .limit(1_000)
        .pages()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all.len(), 2_345);
    assert_eq!(all[2_344], (2_344, "C02344".to_owned()));
}
