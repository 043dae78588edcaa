//! CRM customers to the ERP, side by side on the same simulators with the vendors' limits on:
//! the `fxk3` binary (batched writes, write-backs drained alongside) against the per-record
//! script most integrations run today (read a CRM page, then one K3Cloud `Save` per customer,
//! one call after another), written here with the same SDKs and the same mapping.
//!
//! Both run against a fresh sandbox holding the same generated customers (one contact each),
//! with a round trip on every call of both APIs and a cost per row of every K3Cloud write, the
//! Fxiaoke limit of 100 calls per 20 s per path enforced by the sandbox and kept by the client.
//!
//! ```text
//! cargo bench -p fxk3 --bench sync
//! FXK3_BENCH_RECORDS=2300 FXK3_BENCH_CONCURRENCY=4,32 cargo bench -p fxk3 --bench sync
//! FXK3_BENCH_LARGE=10000 cargo bench -p fxk3 --bench sync       # the ERP side alone, larger
//! FXK3_BENCH_MEMORY=10000,100000 cargo bench -p fxk3 --bench sync   # peak RSS per size
//! ```
//!
//! Prints customers per second reaching the ERP, the time until the write-back queue has
//! drained, calls per record per system, rate-limit refusals and `fxk3`'s peak RSS. Nothing
//! is asserted: the figures go into `docs/performance.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fxk3_simulators::{Api, Fault, FaultKind, GenerateSpec, Sandbox};
use serde_json::Value;
use sync_core::{DeclarativeMapping, Lookups, Mapping, Record};

/// The round trip of every call, ms.
const ROUND_TRIP_MS: u64 = 20;
/// The ERP's cost per row written, ms.
const PER_ROW_MS: u64 = 30;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

fn epoch_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A sandbox with `records` CRM customers beside the demo's ERP base data, and the cost model.
async fn sandbox(records: usize, costs: bool) -> Sandbox {
    let sandbox = Sandbox::builder()
        .demo_data(true)
        .start()
        .await
        .expect("sandbox starts");
    let demo = sandbox.fxiaoke_records("AccountObj").len();
    sandbox.generate(&GenerateSpec {
        crm_accounts: records.saturating_sub(demo),
        ..GenerateSpec::default()
    });
    if costs {
        let _ = sandbox.set_fault(Fault::any_endpoint(
            Api::K3cloud,
            FaultKind::Latency {
                ms: ROUND_TRIP_MS,
                per_row_ms: PER_ROW_MS,
            },
        ));
        let _ = sandbox.set_fault(Fault::any_endpoint(
            Api::Fxiaoke,
            FaultKind::Latency {
                ms: ROUND_TRIP_MS,
                per_row_ms: 0,
            },
        ));
    } else {
        sandbox.fxiaoke_set_rate_limit(None);
    }
    sandbox.reset_calls();
    sandbox
}

fn secrets(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    let k3 = &sandbox.config().k3cloud;
    let fx = &sandbox.config().fxiaoke.apps[0];
    vec![
        ("FXK3_FXIAOKE_APP_SECRET", fx.app_secret.clone()),
        ("FXK3_FXIAOKE_PERMANENT_CODE", fx.permanent_code.clone()),
        ("FXK3_K3CLOUD_APP_SECRET", k3.app_secret.clone()),
    ]
}

/// Calls per system, apart: K3Cloud, Fxiaoke reads (and the token), Fxiaoke write-backs.
struct Calls {
    erp: u64,
    crm_reads: u64,
    crm_write_backs: u64,
}

fn calls(sandbox: &Sandbox) -> Calls {
    let all: BTreeMap<String, u64> = sandbox.all_calls();
    let sum = |pick: &dyn Fn(&str) -> bool| -> u64 {
        all.iter().filter(|(k, _)| pick(k)).map(|(_, n)| n).sum()
    };
    Calls {
        erp: sum(&|k| k.starts_with("k3cloud:")),
        crm_reads: sum(&|k| k.starts_with("fxiaoke:") && !k.ends_with("/data/update")),
        crm_write_backs: sum(&|k| k.starts_with("fxiaoke:") && k.ends_with("/data/update")),
    }
}

struct Figures {
    label: String,
    records: usize,
    /// Start to the last record in the ERP.
    to_erp: Duration,
    /// Start to the write-back queue drained.
    drained: Option<Duration>,
    /// Start to the first write-back in the CRM.
    first_write_back: Option<Duration>,
    calls: Calls,
    rate_limited: u64,
    peak_rss_kib: Option<i64>,
}

impl Figures {
    #[allow(clippy::cast_precision_loss)]
    fn per_second(&self) -> f64 {
        self.records as f64 / self.to_erp.as_secs_f64()
    }

    /// Write-backs per second from the first to the drained queue, as a share of the vendor's
    /// 100 calls per 20 s; the first 100 go out at once (the window is empty), so they count
    /// as the first window's.
    #[allow(clippy::cast_precision_loss)]
    fn drain_share(&self) -> Option<f64> {
        let span = self.drained?.checked_sub(self.first_write_back?)?;
        let calls = self.calls.crm_write_backs.checked_sub(100)? as f64;
        Some(calls / span.as_secs_f64() / 5.0)
    }

    #[allow(clippy::cast_precision_loss)]
    fn per_record(&self, n: u64) -> f64 {
        n as f64 / self.records as f64
    }
}

/// The per-record script: every CRM customer page by page, then one `Save` per customer with
/// the packet the same mapping makes, one after another.
async fn per_record(records: usize) -> Figures {
    let sandbox = sandbox(records, true).await;
    let dir = tempfile::tempdir().expect("temp dir");
    write_config(&sandbox, dir.path(), 1, false, true);
    let secrets = secrets(&sandbox);
    let env: fxk3::SecretSource = std::sync::Arc::new(move |name: &str| {
        secrets
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    });
    let config = fxk3::Config::from_path(&dir.path().join("fxk3.toml")).expect("config");
    let start = Instant::now();
    let app = fxk3::App::build(config, &env).await.expect("clients");
    let (Some(crm), Some(erp)) = (app.fxiaoke(), app.k3cloud()) else {
        panic!("both connections are configured");
    };
    let mapping = customer_mapping();
    let accounts: Vec<Value> = crm
        .query("AccountObj")
        .limit(100)
        .all()
        .await
        .expect("CRM read");
    let mut saved = 0;
    for account in accounts {
        let key = account["_id"].as_str().unwrap_or_default().to_owned();
        let record = Record::new(key, 0, account);
        let Ok(mapped) = mapping.map(&record, &Lookups::new()) else {
            continue;
        };
        erp.save("BD_Customer")
            .model(mapped.payload)
            .send()
            .await
            .expect("Save");
        saved += 1;
    }
    let to_erp = start.elapsed();
    Figures {
        label: "per-record script (one Save per customer)".into(),
        records: saved,
        to_erp,
        drained: None,
        first_write_back: None,
        calls: calls(&sandbox),
        rate_limited: sandbox.fxiaoke_rate_limited(),
        peak_rss_kib: None,
    }
}

fn customer_mapping() -> DeclarativeMapping {
    let text = fxk3::EXAMPLE_MAPPINGS
        .iter()
        .find(|(name, _)| *name == "customer.toml")
        .map(|(_, text)| *text)
        .expect("the example customer mapping");
    DeclarativeMapping::from_toml(text).expect("mapping loads")
}

/// `fxk3.toml` for `sandbox` as `fxk3 init` writes it (the client-side Fxiaoke limit on unless
/// `rate_limit` is false), with `concurrency` BatchSaves in flight.
fn write_config(
    sandbox: &Sandbox,
    dir: &Path,
    concurrency: usize,
    write_back: bool,
    rate_limit: bool,
) {
    let options = common::Options {
        auth: "signed",
        timeout_secs: None,
        rate_limit,
    };
    let config = common::write_setup(sandbox, dir, &options, |_| {
        format!("concurrency = {concurrency}\nsettle = \"0s\"\n")
    });
    if !write_back {
        let config: String = config
            .lines()
            .filter(|l| !l.starts_with("write_back_field"))
            .flat_map(|l| [l, "\n"])
            .collect();
        std::fs::write(dir.join("fxk3.toml"), config).expect("config");
    }
}

/// `fxk3 run customers` as a child process, with its peak RSS.
async fn fxk3(records: usize, concurrency: usize, costs: bool, write_back: bool) -> Figures {
    let sandbox = std::sync::Arc::new(sandbox(records, costs).await);
    let dir = tempfile::tempdir().expect("temp dir");
    // The memory runs turn the limit off in the sandbox: the client then need not keep it.
    write_config(&sandbox, dir.path(), concurrency, write_back, costs);
    let out_path = dir.path().join("report.json");
    let out = std::fs::File::create(&out_path).expect("report file");
    let started_ms = epoch_ms();
    let start = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fxk3"))
        .args(["--json", "run", "customers"])
        .current_dir(dir.path())
        .envs(secrets(&sandbox))
        .stdout(out)
        // `FXK3_BENCH_LOG=debug` keeps the run's log in the temp directory, for a slow run.
        .env(
            "RUST_LOG",
            std::env::var("FXK3_BENCH_LOG").unwrap_or_else(|_| "off".into()),
        )
        .stderr(match std::env::var_os("FXK3_BENCH_LOG") {
            Some(_) => std::fs::File::create(std::env::temp_dir().join("fxk3-bench.log"))
                .expect("log file")
                .into(),
            None => std::process::Stdio::null(),
        })
        .spawn()
        .expect("fxk3 starts");
    // When the first write-back reached the CRM, for the drain's rate.
    let first_write_back = {
        let sandbox = std::sync::Arc::clone(&sandbox);
        tokio::spawn(async move {
            while sandbox.calls("fxiaoke:/cgi/crm/v2/data/update") == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            start.elapsed()
        })
    };
    let (status, rss) = tokio::task::spawn_blocking(move || wait_measuring(child))
        .await
        .expect("waiter");
    let first_write_back = if first_write_back.is_finished() {
        first_write_back.await.ok()
    } else {
        first_write_back.abort();
        None
    };
    let wall = start.elapsed();
    if std::env::var_os("FXK3_BENCH_LOG").is_some() {
        eprintln!("calls: {:?}", sandbox.all_calls());
    }
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let report: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let run = &report[0]["report"];
    assert!(
        status == 0 && run["counts"]["created"].as_u64() == Some(records as u64),
        "fxk3 exited {status} having created {} of {records}: {text}",
        run["counts"]["created"]
    );
    let since_start = |field: &str| {
        let at = run[field].as_i64().unwrap_or(started_ms);
        Duration::from_millis(u64::try_from(at - started_ms).unwrap_or(0))
    };
    Figures {
        label: format!(
            "fxk3 run customers, concurrency {concurrency}{}",
            if write_back { "" } else { ", no write-back" }
        ),
        records,
        to_erp: since_start("writes_done_at"),
        drained: Some(since_start("finished_at").min(wall)),
        first_write_back,
        calls: calls(&sandbox),
        rate_limited: sandbox.fxiaoke_rate_limited(),
        peak_rss_kib: Some(rss),
    }
}

/// Waits for `child`: its exit status and its peak resident set, KiB (`VmHWM`, a high-water
/// mark, read every 20 ms while it runs: only a peak in its last 20 ms could be missed).
fn wait_measuring(mut child: std::process::Child) -> (i32, i64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        }) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("child status") {
            return (status.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[allow(clippy::cast_precision_loss)] // KiB to MiB, for reading
fn print_table(rows: &[Figures]) {
    // Each row against the script run before it.
    let mut base = 1.0;
    println!(
        "\n| run | customers | customers/s to the ERP | × script | write-backs drained | drain rate / limit | ERP calls / record | CRM read calls / record | CRM write-back calls / record | 30004 refusals | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for f in rows {
        if f.label.starts_with("per-record") {
            base = f.per_second();
        }
        println!(
            "| {} | {} | {:.1} | {:.1} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} |",
            f.label,
            f.records,
            f.per_second(),
            f.per_second() / base,
            f.drained
                .filter(|_| f.calls.crm_write_backs > 0)
                .map_or_else(|| "—".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
            f.drain_share()
                .map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0)),
            f.per_record(f.calls.erp),
            f.per_record(f.calls.crm_reads),
            f.per_record(f.calls.crm_write_backs),
            f.rate_limited,
            f.peak_rss_kib.map_or_else(
                || "—".to_owned(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0)
            ),
        );
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no such flag: then
    // it only checks that it starts.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let memory = env_list("FXK3_BENCH_MEMORY", "");
    if !memory.is_empty() {
        // Peak RSS per size, without the round trip, the rate limits and the write-back (they
        // change the time, not what the process holds: the write-back queue is in the state
        // file; and the sandbox re-sorts its records after every write, which makes interleaved
        // write-backs and reads of 100,000 records slow in the simulator, not in fxk3).
        let mut rows = Vec::new();
        for n in memory {
            rows.push(fxk3(n, 4, false, false).await);
        }
        print_table(&rows);
        return;
    }
    let records = env_list("FXK3_BENCH_RECORDS", "2300")
        .first()
        .copied()
        .unwrap_or(2300);
    println!(
        "{records} CRM customers (one contact each); {ROUND_TRIP_MS} ms round trip on every call, \
         {PER_ROW_MS} ms per row of every K3Cloud write; Fxiaoke limit 100 calls / 20 s / path \
         on in the sandbox and in the client"
    );
    // `FXK3_BENCH_RECORDS=0`: only the larger runs below.
    let mut rows = Vec::new();
    if records > 0 {
        rows.push(per_record(records).await);
        for concurrency in env_list("FXK3_BENCH_CONCURRENCY", "4,32") {
            rows.push(fxk3(records, concurrency, true, true).await);
        }
    }
    // The ERP side alone at larger sizes: the write-back queue of 10,000 customers takes 34
    // minutes to drain at the vendor's rate, whatever the client does.
    for n in env_list("FXK3_BENCH_LARGE", "") {
        rows.push(per_record(n.min(2_000)).await);
        for concurrency in env_list("FXK3_BENCH_CONCURRENCY", "4,32") {
            rows.push(fxk3(n, concurrency, true, false).await);
        }
    }
    print_table(&rows);
}
