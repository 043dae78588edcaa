//! Engine benchmark: records per second and peak memory for 10k, 100k and 1M records, with
//! `MemoryStore` and `SqliteStore`, side by side with a baseline that writes one record per
//! call and keeps no state (what the scripts we replace do).
//!
//! Each case runs in a child process so that its peak RSS (`VmHWM`) is its own.
//!
//! ```text
//! cargo bench -p sync-core --bench engine                 # all sizes
//! cargo bench -p sync-core --bench engine -- 10000 100000 # chosen sizes
//! ```
//!
//! The source generates records on demand and the sink only counts, so the figures are the
//! engine's (mapping, hashing, state, batching) and nothing else's.

use async_trait::async_trait;
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use sync_core::testing::MemorySink;
use sync_core::{
    ConnectorError, DeclarativeMapping, Engine, Flow, Lookups, ManualClock, Mapping, MemoryStore,
    Page, PageRequest, Record, Sink, Source, SqliteStore, StateStore, WriteItem,
};

const BASE: i64 = 1_716_000_000_000;
const LEVELS: [&str; 3] = ["A", "B", "C"];

/// Record `i` of `n`, made on demand: a CRM account with the usual field shapes.
fn record(i: i64) -> Record {
    let key = format!("{i:024x}");
    Record::new(
        key.clone(),
        BASE + i,
        json!({
            "_id": key,
            "name": format!("  客户 {i} 有限公司  "),
            "account_no": format!("c{i:08}"),
            "account_level": LEVELS[usize::try_from(i % 3).unwrap_or(0)],
            "owner": [format!("FSUID_{}", i % 50)],
            "tel": "021-5555-0000",
            "create_time": BASE + i,
            "last_modified_time": BASE + i,
        }),
    )
}

struct Synthetic {
    n: i64,
}

#[async_trait]
impl Source for Synthetic {
    async fn read_page(&self, req: &PageRequest) -> Result<Page, ConnectorError> {
        let start = match &req.after {
            Some(p) => p.version - BASE + 1,
            None => (req.window.low - BASE).max(0),
        };
        let end = self.n.min(req.window.high - BASE);
        let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
        let stop = end.min(start.saturating_add(limit));
        let records = (start..stop).map(record).collect();
        Ok(Page {
            records,
            has_more: stop < end,
            token: None,
        })
    }
    async fn get(&self, key: &str) -> Result<Option<Record>, ConnectorError> {
        Ok(i64::from_str_radix(key, 16)
            .ok()
            .filter(|i| *i < self.n)
            .map(record))
    }
}

fn mapping() -> DeclarativeMapping {
    DeclarativeMapping::from_toml(
        r#"
        natural_key = "F_CrmId"
        [dictionaries.level]
        values = { "A" = "KHDJ01", "B" = "KHDJ02", "C" = "KHDJ03" }
        [[fields]]
        target = "FNumber"
        source = "account_no"
        transforms = ["trim", "upper"]
        required = true
        [[fields]]
        target = "FName"
        source = "name"
        transforms = ["trim"]
        [[fields]]
        target = "FCreateOrgId"
        constant = { FNumber = "100" }
        [[fields]]
        target = "FCustLevel"
        source = "account_level"
        dictionary = "level"
        reference = "FNumber"
        [[fields]]
        target = "FSellerId"
        source = "owner"
        transforms = ["first"]
        reference = "FNumber"
        [[fields]]
        target = "FTEL"
        source = "tel"
        [[fields]]
        target = "F_CrmCreated"
        source = "create_time"
        transforms = ["date"]
        [[fields]]
        target = "F_CrmId"
        source = "_id"
        "#,
    )
    .expect("bench mapping loads")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one case in this process and prints `records seconds peak_kib`.
fn child(n: i64, kind: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("sync-core-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let started = Instant::now();
    let written = rt.block_on(async {
        let source = Arc::new(Synthetic { n });
        let sink = Arc::new(MemorySink::counting());
        if kind == "baseline" {
            // One record per call, no state: the pattern being replaced.
            let m = mapping();
            let lookups = Lookups::new();
            for i in 0..n {
                let mapped = m.map(&record(i), &lookups).expect("maps");
                let item = WriteItem {
                    source_key: String::new(),
                    natural_key: mapped.natural_key,
                    payload: mapped.payload,
                    target: None,
                };
                sink.write(std::slice::from_ref(&item))
                    .await
                    .expect("writes");
            }
            return sink.written();
        }
        let store: Arc<dyn StateStore> = match kind {
            "sqlite" => Arc::new(SqliteStore::open(dir.join("state.sqlite3")).expect("sqlite")),
            _ => Arc::new(MemoryStore::new()),
        };
        let clock = Arc::new(ManualClock::new(BASE + n + 10_000));
        let engine = Engine::new(store).with_clock(clock);
        let flow = Flow::builder("customers", source, Arc::new(mapping()), sink.clone())
            .page_size(1_000)
            .build()
            .expect("flow");
        let report = engine.run(&flow).await.expect("run");
        assert_eq!(report.counts.created, u64::try_from(n).unwrap_or(0));
        sink.written()
    });
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    println!("{written} {secs:.3} {}", peak_rss_kib());
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--case") {
        let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        child(n, args.get(2).map_or("memory", String::as_str));
        return;
    }
    let sizes: Vec<i64> = {
        let given: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
        if given.is_empty() {
            vec![10_000, 100_000, 1_000_000]
        } else {
            given
        }
    };
    let exe = std::env::current_exe().expect("own path");
    println!(
        "{:>9}  {:<9} {:>12} {:>9} {:>13}",
        "records", "store", "records/s", "seconds", "peak RSS MiB"
    );
    for n in sizes {
        for kind in ["baseline", "memory", "sqlite"] {
            let out = Command::new(&exe)
                .args(["--case", &n.to_string(), kind])
                .output();
            let line = match out {
                Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                Ok(o) => format!("failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
                Err(e) => format!("failed: {e}"),
            };
            let f: Vec<f64> = line
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [written, secs, kib] = f[..] {
                #[allow(clippy::cast_precision_loss)]
                let rate = written / secs.max(1e-9);
                println!(
                    "{n:>9}  {kind:<9} {rate:>12.0} {secs:>9.2} {:>13.1}",
                    kib / 1024.0
                );
            } else {
                println!("{n:>9}  {kind:<9} {line}");
            }
        }
    }
}
