//! Process-level tests of the `fxk3` command: the real binary, run as a child process against
//! the simulators of both systems started in the test process.
//!
//! Every test starts its own simulators on a random loopback port and writes its own
//! configuration into a temporary directory; the child sees only the secrets a test gives it.

mod common;

use std::path::{Path, PathBuf};

use fxk3_simulators::Sandbox;
use serde_json::{Value, json};

/// The variables `fxk3` reads; the test process's own values never reach the child.
const ENV_KEPT_OUT: [&str; 6] = [
    "FXK3_FXIAOKE_APP_SECRET",
    "FXK3_FXIAOKE_PERMANENT_CODE",
    "FXK3_K3CLOUD_APP_SECRET",
    "FXK3_K3CLOUD_PASSWORD",
    "FXK3_CONFIG",
    "RUST_LOG",
];

/// How a run of the command ended.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// Runs `fxk3 args` in `dir` with `env` set, on a blocking thread so that the simulators in
/// this process keep serving while the child runs.
async fn fxk3_in(dir: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fxk3"));
    command.current_dir(dir).args(args).env("NO_COLOR", "1");
    for var in ENV_KEPT_OUT {
        command.env_remove(var);
    }
    for (var, value) in env {
        command.env(var, value);
    }
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the thread running fxk3")
        .expect("fxk3 starts");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// The simulators with their demo data (300 CRM accounts, 200 orders, no ERP customers), and
/// a directory holding `fxk3.toml` for them and the example mappings.
struct Setup {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Setup {
        let sandbox = Sandbox::builder().demo_data(true).start().await.unwrap();
        sandbox.fxiaoke_set_rate_limit(None);
        let dir = tempfile::tempdir().unwrap();
        let options = common::Options {
            auth: "signed",
            timeout_secs: None,
            // The simulators' limit is off: the client need not keep under it.
            rate_limit: false,
        };
        let config = common::write_setup(&sandbox, dir.path(), &options, |_| {
            // The simulators commit synchronously: nothing needs time to settle, and no write
            // is still running once its answer is lost.
            "settle = \"0s\"\nquiet_period = \"0s\"\n".to_owned()
        });
        assert_eq!(config.matches("\nsettle = \"0s\"\n").count(), 3, "{config}");
        Setup { sandbox, dir }
    }

    /// The demo secrets, as an operator would export them.
    fn secrets(&self) -> Vec<(&'static str, String)> {
        let k3 = &self.sandbox.config().k3cloud;
        let fx = &self.sandbox.config().fxiaoke.apps[0];
        vec![
            ("FXK3_FXIAOKE_APP_SECRET", fx.app_secret.clone()),
            ("FXK3_FXIAOKE_PERMANENT_CODE", fx.permanent_code.clone()),
            ("FXK3_K3CLOUD_APP_SECRET", k3.app_secret.clone()),
        ]
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Replaces `from` (which must be there) by `to` in a file of the setup.
    fn edit(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{relative} has no `{from}`");
        std::fs::write(self.path(relative), text.replacen(from, to, 1)).unwrap();
    }

    /// `fxk3 args` in the setup's directory (so `fxk3.toml` is the default `--config`) with
    /// the demo secrets.
    async fn fxk3(&self, args: &[&str]) -> Output {
        fxk3_in(self.dir.path(), &self.secrets(), args).await
    }

    /// Neither simulator received a call.
    fn assert_nothing_sent(&self) {
        let calls = self.sandbox.all_calls();
        assert!(
            calls.is_empty(),
            "nothing should reach either system: {calls:?}"
        );
    }

    /// Calls either simulator received.
    fn calls(&self) -> u64 {
        self.sandbox.all_calls().values().sum()
    }

    /// Calls that change data in either system.
    fn writes(&self) -> u64 {
        self.sandbox
            .all_calls()
            .iter()
            .filter(|(endpoint, _)| {
                [
                    "k3cloud:Save",
                    "k3cloud:BatchSave",
                    "k3cloud:Submit",
                    "k3cloud:Audit",
                    "fxiaoke:/cgi/crm/v2/data/create",
                    "fxiaoke:/cgi/crm/v2/data/update",
                    "fxiaoke:/cgi/message/send",
                ]
                .contains(&endpoint.as_str())
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The CRM account a test adds: a customer type the customer mapping's dictionary does
    /// not list.
    fn insert_account_of_type_other(&self) -> String {
        // Modified a few seconds ago: the run's window ends at the CRM's time, which the client
        // reads from `Date` headers to the second, so a record of this very second may rightly
        // be left to the next run.
        let modified = self.sandbox.clock().now_ms() - 5_000;
        self.sandbox
            .fxiaoke_insert(
                "AccountObj",
                json!({"name": "杭州其他贸易有限公司", "account_no": "KH90001", "account_type": "other",
                       "account_level": "2", "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"],
                       "create_time": modified, "last_modified_time": modified}),
            )
            .unwrap()
    }
}

/// The columns of a report table row, without the last two (API calls and time vary).
fn counts_row(stdout: &str, flow: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(flow))
        .unwrap_or_else(|| panic!("no row for `{flow}` in:\n{stdout}"));
    let columns: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    assert_eq!(columns.len(), 11, "a full row: {line}");
    columns[..9].to_vec()
}

fn row(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| (*c).to_owned()).collect()
}

const DEAD_LETTERS_HINT: &str = "→ `fxk3 dead-letters show FLOW KEY` shows the payload; fix the cause, then `fxk3 dead-letters retry FLOW`";

const TABLE_HEADER: &str = "flow           read  created  updated  unchanged  deferred   dead  unknown  actions  calls      time";

// ---------------------------------------------------------------------------------------------
// init

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_commented_example_and_overwrites_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("etc");
    let target_arg = target.to_str().unwrap();

    let out = fxk3_in(dir.path(), &[], &["init", "--dir", target_arg]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let written: Vec<String> = [
        "fxk3.toml",
        "mappings/customer.toml",
        "mappings/order.toml",
        "mappings/delivery.toml",
    ]
    .iter()
    .map(|f| format!("wrote {}", target.join(f).display()))
    .collect();
    assert_eq!(out.stdout_lines()[..4], written[..]);
    assert_eq!(
        out.stdout_lines()[5],
        "Next: edit fxk3.toml, export the secrets it names (FXK3_FXIAOKE_APP_SECRET, …),"
    );
    assert_eq!(out.stderr, "");
    let config = std::fs::read_to_string(target.join("fxk3.toml")).unwrap();
    assert_eq!(config, fxk3::config::EXAMPLE);
    assert!(config.starts_with(
        "# fxk3 — Fxiaoke CRM ⇄ Kingdee K3Cloud ERP sync.\n#\n# Secrets are never written here"
    ));
    for (name, text) in fxk3::EXAMPLE_MAPPINGS {
        assert_eq!(
            std::fs::read_to_string(target.join("mappings").join(name)).unwrap(),
            text,
            "{name}"
        );
    }
    // The file written parses, with its three flows and their mappings next to it.
    let parsed = fxk3::Config::from_path(&target.join("fxk3.toml")).unwrap();
    let flows: Vec<(&str, PathBuf)> = parsed
        .flows
        .iter()
        .map(|f| (f.name.as_str(), parsed.resolve(&f.mapping)))
        .collect();
    assert_eq!(
        flows,
        [
            ("customers", target.join("mappings/customer.toml")),
            ("orders", target.join("mappings/order.toml")),
            ("deliveries", target.join("mappings/delivery.toml")),
        ]
    );

    // Without --force nothing is overwritten: not the configuration, not a mapping.
    std::fs::write(target.join("fxk3.toml"), "# edited\n").unwrap();
    std::fs::write(target.join("mappings/order.toml"), "# edited\n").unwrap();
    let out = fxk3_in(dir.path(), &[], &["init", "--dir", target_arg]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "fxk3: invalid configuration: {} exists; use --force to overwrite\n",
            target.join("fxk3.toml").display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(target.join("fxk3.toml")).unwrap(),
        "# edited\n"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("mappings/order.toml")).unwrap(),
        "# edited\n"
    );

    let out = fxk3_in(
        dir.path(),
        &[],
        &["--json", "init", "--dir", target_arg, "--force"],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let paths: Vec<String> = written
        .iter()
        .map(|w| w["wrote ".len()..].to_owned())
        .collect();
    assert_eq!(out.json(), json!({"written": paths}));
    assert_eq!(
        std::fs::read_to_string(target.join("fxk3.toml")).unwrap(),
        fxk3::config::EXAMPLE
    );
    assert_eq!(
        std::fs::read_to_string(target.join("mappings/order.toml")).unwrap(),
        fxk3::EXAMPLE_MAPPINGS[1].1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_needs_no_secret_in_the_file_and_stops_at_the_first_missing_variable() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(fxk3_in(dir.path(), &[], &["init"]).await.code, Some(0));
    // The example points at real hosts: it must stop before trying to reach them.
    let out = fxk3_in(dir.path(), &[], &["run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "fxk3: environment variable FXK3_FXIAOKE_APP_SECRET is not set; it holds the Fxiaoke app secret (secrets are never read from the file)\n      export the variable (or set it in the service's environment) and run again\n"
    );
}

// ---------------------------------------------------------------------------------------------
// validate

#[tokio::test(flavor = "multi_thread")]
async fn validate_accepts_the_customer_mapping_and_writes_nothing() {
    let s = Setup::start().await;
    let out = s.fxk3(&["validate", "customers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    // Warnings only (no `error:` line); the first one is the CRM option the dictionary lacks.
    let lines = out.stdout_lines();
    assert_eq!(
        lines[0],
        "customers: warning: fields[4] (FCustTypeId): option `other` of `account_type` is not in dictionary `customer_type`"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("customers: warning: ")),
        "{}",
        out.stdout
    );
    assert_eq!(
        s.sandbox.calls("fxiaoke:/cgi/crm/v2/object/describe"),
        1,
        "AccountObj described"
    );
    assert_eq!(
        s.sandbox.calls("k3cloud:QueryBusinessInfo"),
        1,
        "BD_Customer described"
    );
    assert_eq!(s.writes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_accepts_the_example_mappings() {
    let s = Setup::start().await;
    let out = s.fxk3(&["validate"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains(": error: "), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_names_a_field_the_system_does_not_have_and_exits_2() {
    let s = Setup::start().await;
    s.edit(
        "mappings/customer.toml",
        "source = \"tel\"",
        "source = \"telephone\"",
    );
    s.edit(
        "mappings/customer.toml",
        "target = \"FADDRESS\"",
        "target = \"FADDR\"",
    );
    let out = s.fxk3(&["validate", "customers"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    let errors: Vec<&str> = out
        .stdout_lines()
        .into_iter()
        .filter(|l| l.contains(": error: "))
        .collect();
    assert_eq!(
        errors,
        [
            "customers: error: fields[10] (FTEL): source field `telephone` does not exist in `AccountObj`",
            "customers: error: fields[11] (FADDR): target field `FADDR` does not exist in `BD_Customer`",
        ]
    );

    let out = s.fxk3(&["--json", "validate", "customers"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    let report = out.json();
    assert_eq!(report.as_array().map(Vec::len), Some(1));
    assert_eq!(report[0]["flow"], "customers");
    let issues: Vec<&str> = report[0]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        issues.contains(
            &"error: fields[10] (FTEL): source field `telephone` does not exist in `AccountObj`"
        ),
        "{issues:?}"
    );
    assert!(
        issues.contains(
            &"error: fields[11] (FADDR): target field `FADDR` does not exist in `BD_Customer`"
        ),
        "{issues:?}"
    );
    assert_eq!(s.writes(), 0);
}

// ---------------------------------------------------------------------------------------------
// run

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_the_payloads_and_writes_nothing() {
    let s = Setup::start().await;
    let out = s.fxk3(&["run", "--dry-run"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let lines = out.stdout_lines();
    assert_eq!(lines[0], TABLE_HEADER);
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "300", "0", "0", "0", "0", "0", "0", "0"])
    );
    // The orders cannot be mapped before their customers are in the ID map; a run writes
    // the customers first, so they are no problem.
    assert_eq!(
        counts_row(&out.stdout, "orders"),
        row(&["orders", "200", "0", "0", "0", "200", "0", "0", "0"])
    );
    assert_eq!(
        counts_row(&out.stdout, "deliveries"),
        row(&["deliveries", "0", "0", "0", "0", "0", "0", "0", "0"])
    );
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "customers: 300 writes would be sent (the first 100 shown)",
            "orders: 200 records wait for records this dry run would write first; a run writes those first, then these",
        ]
    );
    // The payloads, one line per record: `customers <CRM id> would send <JSON>`.
    let accounts = s.sandbox.fxiaoke_records("AccountObj");
    let planned: Vec<(&str, Value)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("customers "))
        .filter_map(|l| l.split_once(" would send "))
        .map(|(key, payload)| (key, serde_json::from_str(payload).unwrap()))
        .collect();
    assert_eq!(planned.len(), 100, "the report keeps the first 100");
    for (key, payload) in &planned {
        let account = accounts.iter().find(|a| a["_id"] == *key).unwrap();
        assert_eq!(payload["FNumber"], account["account_no"], "{key}");
        assert_eq!(payload["FName"], account["name"], "{key}");
        assert_eq!(payload["FCreateOrgId"], json!({"FNumber": "603"}));
    }
    // Nothing written in either system, nothing remembered.
    assert_eq!(s.writes(), 0);
    assert!(s.sandbox.k3cloud_records("BD_Customer").is_empty());
    assert!(s.sandbox.k3cloud_records("SAL_SaleOrder").is_empty());
    assert!(
        accounts
            .iter()
            .all(|a| a.get("field_erp_no__c").is_none_or(Value::is_null))
    );
    let status = s.fxk3(&["--json", "status"]).await.json();
    for flow in status.as_array().unwrap() {
        assert_eq!(flow["cursor"], Value::Null);
        assert_eq!(flow["deferred"], 0);
        assert_eq!(flow["last_runs"], json!([]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_exits_1_for_records_a_run_would_not_sync() {
    let s = Setup::start().await;
    // Orders alone: their customers are neither synced nor part of this dry run.
    let out = s.fxk3(&["run", "--dry-run", "orders"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        !out.stdout.contains("dry run would write first"),
        "{}",
        out.stdout
    );

    let id = s.insert_account_of_type_other();
    let out = s.fxk3(&["--json", "run", "--dry-run", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let report = out.json();
    assert_eq!(report[0]["report"]["counts"]["dead_lettered"], 1);
    assert_eq!(
        report[0]["report"]["failures"][0]["source_key"],
        id.as_str()
    );
    assert_eq!(
        report[0]["report"]["planned"].as_array().map(Vec::len),
        Some(100)
    );
    // Still nothing written, and no dead letter kept.
    assert_eq!(s.writes(), 0);
    let out = s.fxk3(&["dead-letters", "list"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "no dead letters\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_syncs_customers_and_orders_and_a_second_run_writes_nothing() {
    let s = Setup::start().await;
    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stderr, "",
        "no logs, no progress bars when stderr is not a terminal"
    );
    assert_eq!(out.stdout_lines()[0], TABLE_HEADER);
    assert_eq!(
        out.stdout_lines().len(),
        4,
        "no failures listed:\n{}",
        out.stdout
    );
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "300", "300", "0", "0", "0", "0", "0", "0"])
    );
    assert_eq!(
        counts_row(&out.stdout, "orders"),
        row(&["orders", "200", "200", "0", "0", "0", "0", "0", "400"])
    );
    assert_eq!(
        counts_row(&out.stdout, "deliveries"),
        row(&["deliveries", "0", "0", "0", "0", "0", "0", "0", "0"])
    );

    // The ERP has every CRM customer and order, the orders submitted and audited; the CRM
    // accounts carry their ERP number.
    let customers = s.sandbox.k3cloud_records("BD_Customer");
    assert_eq!(customers.len(), 300);
    let orders = s.sandbox.k3cloud_records("SAL_SaleOrder");
    assert_eq!(orders.len(), 200);
    assert!(
        orders.iter().all(|o| o["DocumentStatus"] == "C"),
        "all audited"
    );
    for account in s.sandbox.fxiaoke_records("AccountObj") {
        assert_eq!(
            account["field_erp_no__c"], account["account_no"],
            "{}",
            account["_id"]
        );
        assert!(
            s.sandbox
                .k3cloud_record("BD_Customer", account["account_no"].as_str().unwrap())
                .is_some()
        );
    }
    let writes = s.writes();

    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "300", "0", "0", "300", "0", "0", "0", "0"])
    );
    assert_eq!(
        counts_row(&out.stdout, "orders"),
        row(&["orders", "0", "0", "0", "0", "0", "0", "0", "0"])
    );
    assert_eq!(
        counts_row(&out.stdout, "deliveries"),
        row(&["deliveries", "0", "0", "0", "0", "0", "0", "0", "0"])
    );
    assert_eq!(s.writes(), writes, "the second run sent no write");
    assert_eq!(s.sandbox.k3cloud_records("BD_Customer").len(), 300);
    assert_eq!(s.sandbox.k3cloud_records("SAL_SaleOrder").len(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_reuse_the_fxiaoke_token_kept_in_the_state_file() {
    let s = Setup::start().await;
    // Fifteen starts within a minute used to fetch fifteen tokens (the vendor allows ten).
    for _ in 0..12 {
        let out = s.fxk3(&["run", "customers"]).await;
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    assert_eq!(s.sandbox.calls("fxiaoke:/cgi/corpAccessToken/get/V2"), 1);
    // Readable by the owner only: it holds the token and customer data.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(s.path("fxk3-state.sqlite3"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_reports_the_counts_of_every_flow() {
    let s = Setup::start().await;
    let out = s.fxk3(&["--json", "run"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let report = out.json();
    let flows: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["flow"].as_str())
        .collect();
    assert_eq!(flows, ["customers", "orders", "deliveries"]);
    let counts = |i: usize| &report[i]["report"]["counts"];
    assert_eq!(
        counts(0),
        &json!({"read": 300, "created": 300, "updated": 0, "unchanged": 0, "skipped": 0, "removed": 0, "deferred": 0, "dead_lettered": 0,
                "unknown": 0, "reconciled": 0, "waiting": 0, "gone": 0, "written_back": 300,
                "write_backs_queued": 300, "write_backs_skipped": 0, "actions_done": 0, "sends_queued": 0, "actions_unknown": 0, "rebuilt": 0,
                "batches": 3})
    );
    assert_eq!(
        counts(1),
        &json!({"read": 200, "created": 200, "updated": 0, "unchanged": 0, "skipped": 0, "removed": 0, "deferred": 0, "dead_lettered": 0,
                "unknown": 0, "reconciled": 0, "waiting": 0, "gone": 0, "written_back": 0,
                "write_backs_queued": 0, "write_backs_skipped": 0, "actions_done": 400, "sends_queued": 0, "actions_unknown": 0, "rebuilt": 0,
                "batches": 2})
    );
    assert_eq!(counts(2)["read"], 0);
    // The queue was drained by the run: none left, and the drain ended after the writes.
    let customers = &report[0]["report"];
    assert_eq!(customers["write_backs_pending"], 0);
    assert!(customers["writes_done_at"].as_i64() <= customers["finished_at"].as_i64());
    for i in 0..3 {
        assert_eq!(report[i]["error"], Value::Null);
        assert_eq!(report[i]["report"]["failures"], json!([]));
    }
    // The API calls each flow made, as the simulators counted them, and the two of the check
    // at start that both systems can be reached: the Fxiaoke access token (which the flows
    // then use) and K3Cloud's GetDataCenterList.
    let calls: u64 = (0..3)
        .map(|i| report[i]["api_calls"].as_u64().unwrap())
        .sum();
    let per_flow: Vec<&Value> = (0..3).map(|i| &report[i]["api_calls"]).collect();
    assert_eq!(
        calls + 2,
        s.calls(),
        "{per_flow:?} {:?}",
        s.sandbox.all_calls()
    );
    assert_eq!(s.sandbox.calls("fxiaoke:/cgi/corpAccessToken/get/V2"), 1);
    assert_eq!(s.sandbox.calls("k3cloud:GetDataCenterList"), 1);
}

// ---------------------------------------------------------------------------------------------
// status

/// An epoch-ms time as `status` shows it (China time).
fn china_time(ms: &Value) -> String {
    let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    chrono::DateTime::from_timestamp_millis(ms.as_i64().unwrap())
        .unwrap()
        .with_timezone(&china)
        .format("%Y-%m-%d %H:%M:%S%:z")
        .to_string()
}

const STATUS_HEADER: &str = "flow         cursor                     pending write-backs messages   dead  deferred  last run";

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_cursors_pending_writes_dead_letters_and_deferrals() {
    let s = Setup::start().await;
    let out = s.fxk3(&["status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout_lines(),
        [
            STATUS_HEADER,
            "customers    -                                0           0        0      0         0  never",
            "orders       -                                0           0        0      0         0  never",
            "deliveries   -                                0           0        0      0         0  never",
        ]
    );

    // Orders alone: each waits for its customer.
    let out = s.fxk3(&["run", "orders"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        counts_row(&out.stdout, "orders"),
        row(&["orders", "200", "0", "0", "0", "200", "0", "0", "0"])
    );
    // Customers: the answer to the first batch is lost after the ERP saved it, and one account
    // has a type the mapping refuses.
    let _ = s.sandbox.set_fault(
        fxk3_simulators::Fault::new(
            fxk3_simulators::Api::K3cloud,
            "BatchSave",
            fxk3_simulators::FaultKind::DropAfterWrite,
        )
        .next(1),
    );
    s.insert_account_of_type_other();
    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(
        out.code,
        Some(1),
        "unknown outcomes need attention: {out:?}"
    );
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "301", "200", "0", "0", "0", "1", "100", "0"])
    );

    let out = s.fxk3(&["--json", "status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let status = out.json();
    let summary: Vec<Value> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            json!([
                f["flow"],
                f["pending_writes"],
                f["pending_write_backs"],
                f["pending_messages"],
                f["dead_letters"],
                f["deferred"],
                f["last_runs"].as_array().unwrap().len()
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!(["customers", 100, 0, 0, 1, 0, 1]),
            json!(["orders", 0, 0, 0, 0, 200, 1]),
            json!(["deliveries", 0, 0, 0, 0, 0, 0])
        ]
    );
    let customers = &status[0];
    assert_eq!(customers["last_runs"][0]["kind"], "Incremental");
    assert_eq!(customers["last_runs"][0]["counts"]["created"], 200);
    assert_eq!(customers["last_runs"][0]["counts"]["unknown"], 100);
    assert_eq!(customers["last_runs"][0]["error"], Value::Null);
    assert!(
        customers["cursor"].as_i64().unwrap()
            >= customers["last_runs"][0]["started_at"].as_i64().unwrap() - 60_000
    );
    assert_eq!(status[2]["cursor"], Value::Null);

    let out = s.fxk3(&["status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let orders = &status[1];
    assert_eq!(
        out.stdout_lines(),
        [
            STATUS_HEADER.to_owned(),
            format!(
                "customers    {}      100           0        0      1         0  {} created 200 updated 0 dead 1",
                china_time(&customers["cursor"]),
                china_time(&customers["last_runs"][0]["started_at"])
            ),
            format!(
                "orders       {}        0           0        0      0       200  {} created 0 updated 0 dead 0",
                china_time(&orders["cursor"]),
                china_time(&orders["last_runs"][0]["started_at"])
            ),
            "deliveries   -                                0           0        0      0         0  never"
                .to_owned(),
        ]
    );

    // The next run finds the 100 customers the ERP did save (no duplicates) and sends the orders
    // that waited; the refused account stays a dead letter.
    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(s.sandbox.k3cloud_records("BD_Customer").len(), 300);
    assert_eq!(s.sandbox.k3cloud_records("SAL_SaleOrder").len(), 200);
    let status = s.fxk3(&["--json", "status"]).await.json();
    let summary: Vec<Value> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            json!([
                f["flow"],
                f["pending_writes"],
                f["dead_letters"],
                f["deferred"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!(["customers", 0, 1, 0]),
            json!(["orders", 0, 0, 0]),
            json!(["deliveries", 0, 0, 0])
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// dead letters

#[tokio::test(flavor = "multi_thread")]
async fn a_record_the_mapping_refuses_is_dead_lettered_then_retried_after_the_fix() {
    let s = Setup::start().await;
    let id = s.insert_account_of_type_other();
    let reason = "fields[4] (FCustTypeId): value \"other\" is not in dictionary `customer_type`";

    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "301", "300", "0", "0", "0", "1", "0", "0"])
    );
    assert_eq!(
        out.stdout_lines()[2..],
        [
            "customers:".to_owned(),
            format!("  {id}: dead letter: {reason}"),
            "  → fix the cause (a dictionary in the mapping, or the record in its system), then `fxk3 dead-letters retry customers`".to_owned(),
        ]
    );
    assert!(s.sandbox.k3cloud_record("BD_Customer", "KH90001").is_none());

    let out = s.fxk3(&["dead-letters", "list"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("customers {id} [map, 1 attempts] {reason}\n{DEAD_LETTERS_HINT}\n")
    );

    let out = s
        .fxk3(&["--json", "dead-letters", "list", "customers"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.json(),
        json!([{"flow": "customers", "key": id, "stage": "map", "reason": reason, "attempts": 1}])
    );

    let out = s.fxk3(&["dead-letters", "show", "customers", &id]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let shown = out.json();
    assert_eq!(shown["reason"], reason);
    assert_eq!(shown["retryable"], false);
    assert_eq!(shown["payload"]["_id"], id.as_str());
    assert_eq!(shown["payload"]["account_type"], "other");

    let out = s
        .fxk3(&["dead-letters", "show", "customers", "no-such-key"])
        .await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        "fxk3: no dead letter `no-such-key` in flow `customers`\n"
    );

    // Retrying before the fix fails again, and counts the attempt.
    let out = s.fxk3(&["dead-letters", "retry", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "1", "0", "0", "0", "0", "1", "0", "0"])
    );
    let out = s.fxk3(&["dead-letters", "list"]).await;
    assert_eq!(
        out.stdout,
        format!("customers {id} [map, 2 attempts] {reason}\n{DEAD_LETTERS_HINT}\n")
    );

    // The fix the mapping's comment asks for: list the value in the dictionary.
    s.edit(
        "mappings/customer.toml",
        "\"3\" = \"KHLB003_SYS\" }",
        "\"3\" = \"KHLB003_SYS\", \"other\" = \"KHLB004_SYS\" }",
    );
    let out = s.fxk3(&["dead-letters", "retry", "customers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "1", "1", "0", "0", "0", "0", "0", "0"])
    );
    let customer = s
        .sandbox
        .k3cloud_record("BD_Customer", "KH90001")
        .expect("created in the ERP");
    assert_eq!(
        customer["Name"][0]["Value"], "杭州其他贸易有限公司",
        "{customer}"
    );
    assert_eq!(
        s.sandbox.fxiaoke_record("AccountObj", &id).unwrap()["field_erp_no__c"],
        "KH90001"
    );

    let out = s.fxk3(&["dead-letters", "list"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "no dead letters\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_given_up_on_is_dropped_and_read_only_commands_need_no_secret() {
    let s = Setup::start().await;
    let id = s.insert_account_of_type_other();
    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");

    // `status` and `dead-letters list` read the state file only: no secret, no call.
    s.sandbox.reset_calls();
    let out = fxk3_in(s.dir.path(), &[], &["dead-letters", "list"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .starts_with(&format!("customers {id} [map, 1 attempts]")),
        "{out:?}"
    );
    let out = fxk3_in(s.dir.path(), &[], &["status", "customers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    s.assert_nothing_sent();

    let out = s
        .fxk3(&["dead-letters", "drop", "customers", &id, "no-such-key"])
        .await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stdout_lines(),
        [
            format!("customers {id}: dropped; tried again when it changes"),
            "customers no-such-key: not a dead letter of this flow".to_owned(),
        ]
    );
    let out = s.fxk3(&["dead-letters", "list"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "no dead letters\n")
    );
    // Not retried.
    let out = s.fxk3(&["dead-letters", "retry", "customers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        counts_row(&out.stdout, "customers"),
        row(&["customers", "0", "0", "0", "0", "0", "0", "0", "0"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_into_a_closed_pipe_ends_quietly() {
    let s = Setup::start().await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fxk3"));
    command
        .current_dir(s.dir.path())
        .args(["init", "--dir", "again"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    // The reader goes away before anything is written (like `| head -0`).
    drop(child.stdout.take());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Starts `fxk3 args` and waits until its stdout shows a line starting with `until`.
#[cfg(unix)]
async fn spawn_until(s: &Setup, args: &[&str], until: &'static str) -> std::process::Child {
    use std::io::BufRead as _;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fxk3"));
    command
        .current_dir(s.dir.path())
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for var in ENV_KEPT_OUT {
        command.env_remove(var);
    }
    for (var, value) in s.secrets() {
        command.env(var, value);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    tokio::task::spawn_blocking(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if line.unwrap().starts_with(until) {
                return;
            }
        }
        panic!("fxk3 ended before printing `{until}`");
    })
    .await
    .unwrap();
    child
}

#[cfg(unix)]
async fn terminate(child: std::process::Child) -> (Option<i32>, String) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_watch_gracefully_and_a_dry_run_on_a_schedule_writes_nothing() {
    let s = Setup::start().await;
    let child = spawn_until(&s, &["run", "--dry-run", "--every", "1h"], "deliveries").await;
    let (code, stderr) = terminate(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("stopping after the records in flight"),
        "{stderr}"
    );
    assert!(
        s.sandbox.k3cloud_records("BD_Customer").is_empty(),
        "a dry run wrote"
    );

    let child = spawn_until(&s, &["watch", "--every", "1h"], "deliveries").await;
    let (code, stderr) = terminate(child).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(s.sandbox.k3cloud_records("BD_Customer").len(), 300);
    // The leases were given back: the next run starts at once.
    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

// ---------------------------------------------------------------------------------------------
// bad configuration: exit 2, a clear message, nothing sent

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_stops_the_command_before_anything_is_sent() {
    let s = Setup::start().await;
    let mut env = s.secrets();
    env.retain(|(var, _)| *var != "FXK3_K3CLOUD_APP_SECRET");
    // (`status` reads the state file only and needs no secret.)
    for args in [&["run"][..], &["run", "--dry-run"], &["validate"]] {
        let out = fxk3_in(s.dir.path(), &env, args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(
            out.stderr,
            "fxk3: environment variable FXK3_K3CLOUD_APP_SECRET is not set; it holds the K3Cloud app secret (secrets are never read from the file)\n      export the variable (or set it in the service's environment) and run again\n",
            "{args:?}"
        );
    }
    // An empty value counts as missing.
    env.push(("FXK3_K3CLOUD_APP_SECRET", String::new()));
    let out = fxk3_in(s.dir.path(), &env, &["--json", "run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "error": "environment variable FXK3_K3CLOUD_APP_SECRET is not set; it holds the K3Cloud app secret (secrets are never read from the file)",
            "hint": "export the variable (or set it in the service's environment) and run again",
        })
    );
    assert_eq!(out.stderr, "");
    s.assert_nothing_sent();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_flow_is_refused_before_anything_is_sent() {
    let s = Setup::start().await;
    for args in [
        &["run", "customers", "invoices"][..],
        &["validate", "invoices"],
        &["dead-letters", "retry", "invoices"],
    ] {
        let out = s.fxk3(args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            "fxk3: no flow named `invoices` in the configuration\n      `fxk3 status` lists the flows of the configuration\n",
            "{args:?}"
        );
    }
    s.assert_nothing_sent();
    let status = s.fxk3(&["--json", "status"]).await.json();
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["last_runs"] == json!([])),
        "no run recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_or_missing_mapping_file_is_named_with_its_flow_and_line() {
    let s = Setup::start().await;
    s.edit(
        "mappings/order.toml",
        "natural_key = \"FBillNo\"",
        "natural_key = FBillNo",
    );
    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        "fxk3: flow `orders`: mapping file mappings/order.toml: mapping rejected: line 11: invalid boolean, expected `false`\n      fix the mapping file at the line shown; `fxk3 validate` checks it against both systems\n"
    );
    s.edit(
        "mappings/order.toml",
        "natural_key = FBillNo",
        "natural_key = \"FBillNo\"",
    );

    s.edit(
        "mappings/order.toml",
        "target = \"FNote\"",
        "targte = \"FNote\"",
    );
    let out = s.fxk3(&["run", "--dry-run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.starts_with("fxk3: flow `orders`: mapping file mappings/order.toml: mapping rejected: line 86: fields[7].targte: unknown field `targte`, expected one of `target`, "),
        "{}",
        out.stderr
    );

    s.edit(
        "mappings/order.toml",
        "targte = \"FNote\"",
        "target = \"FNote\"",
    );

    // A file that is not there: the path to correct, not a line to fix. Every flow's mapping is
    // loaded before anything runs, even when another flow is named.
    std::fs::remove_file(s.path("mappings/delivery.toml")).unwrap();
    let out = s.fxk3(&["validate", "customers"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        "fxk3: flow `deliveries`: mapping file mappings/delivery.toml: mapping rejected: cannot read mappings/delivery.toml: No such file or directory (os error 2)\n      correct the flow's `mapping` path (relative paths are read from the configuration file's directory), or create the file; `fxk3 init` writes example mappings\n"
    );
    s.assert_nothing_sent();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_key_in_the_configuration_is_named_with_its_line() {
    let s = Setup::start().await;
    s.edit("fxk3.toml", "[state]\n", "[state]\ncolour = \"blue\"\n");
    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "fxk3: fxk3.toml line 7: unknown field `colour`, expected `path`\n      fix the file at the line shown; `fxk3 init --dir DIR` writes a commented example to compare with\n"
    );

    let out = s.fxk3(&["--config", "elsewhere.toml", "status"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        "fxk3: cannot read elsewhere.toml: No such file or directory (os error 2)\n      create one with `fxk3 init`, or point --config at it\n"
    );
    s.assert_nothing_sent();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_toml_is_named_with_its_line_before_anything_is_sent() {
    let s = Setup::start().await;
    let hint = "fix the file at the line shown; `fxk3 init --dir DIR` writes a commented example to compare with";
    s.edit("fxk3.toml", "[state]\n", "[state\n");
    let line = line_of(&s.read("fxk3.toml"), "[state");
    for args in [&["run"][..], &["validate"], &["status"]] {
        let out = s.fxk3(args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(
            out.stderr,
            format!("fxk3: fxk3.toml line {line}: unclosed table, expected `]`\n      {hint}\n"),
            "{args:?}"
        );
    }
    s.edit("fxk3.toml", "[state\n", "[state]\n");

    // A bare word where a string belongs, as --json reports it.
    s.edit("fxk3.toml", "user = \"webapi\"", "user = webapi");
    let line = line_of(&s.read("fxk3.toml"), "user = webapi");
    let out = s.fxk3(&["--json", "run", "--dry-run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.json(),
        json!({
            "error": format!("fxk3.toml line {line}: string values must be quoted, expected literal string"),
            "hint": hint,
        })
    );
    s.assert_nothing_sent();
}

/// The 1-based number of the line of `text` that is `line`.
fn line_of(text: &str, line: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line `{line}`"))
}

// ---------------------------------------------------------------------------------------------
// unreachable servers: exit 2 before anything is read or written; refused credentials: exit 3

/// A loopback URL that refuses connections at once: nothing can listen on port 0, so no other
/// process can take the port between the test's choice and the child's call.
const REFUSING: &str = "http://127.0.0.1:0";

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_erp_stops_the_command_before_anything_is_read_or_written() {
    let s = Setup::start().await;
    let url = format!("{REFUSING}/k3cloud/");
    s.edit("fxk3.toml", &s.sandbox.k3cloud_url(), &url);
    let error = format!("fxk3: cannot reach K3Cloud at {url}: could not connect to K3Cloud: ");
    let hint = "      check [k3cloud] server_url and that this machine can reach it (network, VPN, \
                proxy, firewall), then run again; nothing was read or written\n";
    for args in [
        &["run"][..],
        &["run", "--dry-run"],
        &["validate"],
        &["rebuild-id-map", "customers"],
        &["dead-letters", "retry", "customers"],
    ] {
        let out = s.fxk3(args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        let (message, rest) = out.stderr.split_once('\n').unwrap();
        assert!(message.starts_with(&error), "{args:?}: {message}");
        assert!(
            message.contains("Connection refused"),
            "the cause: {message}"
        );
        assert_eq!(rest, hint, "{args:?}");
    }
    // The CRM was only asked for the access token the runs would need, once (the others used
    // the one kept in the state file): nothing was read.
    assert_eq!(
        s.sandbox.all_calls().into_iter().collect::<Vec<_>>(),
        [("fxiaoke:/cgi/corpAccessToken/get/V2".to_owned(), 1)]
    );

    let out = s.fxk3(&["--json", "run", "customers"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    let report = out.json();
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .starts_with(&error["fxk3: ".len()..]),
        "{report}"
    );
    assert_eq!(report["hint"], hint.trim());

    // No run was recorded; what needs no server still answers.
    let out = s.fxk3(&["--json", "status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for flow in out.json().as_array().unwrap() {
        assert_eq!(flow["cursor"], Value::Null, "{flow}");
        assert_eq!(flow["last_runs"], json!([]), "{flow}");
    }
    let out = s.fxk3(&["dead-letters", "list"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "no dead letters\n")
    );
    assert_eq!(s.writes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_crm_stops_the_command_before_anything_is_sent() {
    let s = Setup::start().await;
    s.edit(
        "fxk3.toml",
        &format!("base_url = {:?}", s.sandbox.fxiaoke_url()),
        &format!("base_url = {REFUSING:?}"),
    );
    let out = s.fxk3(&["run"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(&format!(
            "fxk3: cannot reach Fxiaoke at {REFUSING}/: could not connect to Fxiaoke: "
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with(
            "\n      check [fxiaoke] base_url and that this machine can reach it (network, VPN, \
             proxy, firewall), then run again; nothing was read or written\n"
        ),
        "{}",
        out.stderr
    );
    s.assert_nothing_sent();
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_fail_the_run_with_the_vendor_message_and_what_to_check() {
    let s = Setup::start().await;
    let mut env = s.secrets();
    env[0].1 = "ffffffffffffffffffffffffffffffff".into();
    let out = fxk3_in(s.dir.path(), &env, &["run", "customers"]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    let error = &out.stdout_lines()[1];
    assert!(
        error.starts_with("customers    source of flow `customers` failed: credentials refused: Fxiaoke error 10006 on /cgi/corpAccessToken/get/V2: the parameter appSecret is missing or illegal"),
        "{error}"
    );
    assert!(error.ends_with("[errorCode 10006]"), "{error}");
    assert_eq!(
        out.stdout_lines()[2],
        "             → check [fxiaoke] app_id and operator, the secrets in FXK3_FXIAOKE_APP_SECRET and FXK3_FXIAOKE_PERMANENT_CODE, and the operator's rights in the CRM"
    );
    assert_eq!(s.writes(), 0);

    let mut env = s.secrets();
    env[2].1 = "ffffffffffffffffffffffffffffffff".into();
    let out = fxk3_in(s.dir.path(), &env, &["run", "customers"]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(
        out.stdout_lines()[1..],
        [
            "customers    sink of flow `customers` failed: K3Cloud refused the credentials: 会话信息已丢失，请重新登录",
            "             → check [k3cloud] acct_id and user, app_id and the secret in FXK3_K3CLOUD_APP_SECRET, and the user's rights in the ERP",
        ]
    );
    assert!(s.sandbox.k3cloud_records("BD_Customer").is_empty());
    assert_eq!(
        s.sandbox.calls("fxiaoke:/cgi/crm/v2/data/update"),
        0,
        "no write-back"
    );
}

// ---------------------------------------------------------------------------------------------
// logs

#[tokio::test(flavor = "multi_thread")]
async fn verbose_logs_the_runs_on_stderr_and_leaves_stdout_to_the_report() {
    let s = Setup::start().await;
    let id = s.insert_account_of_type_other();

    let out = s.fxk3(&["-v", "run", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout_lines()[0], TABLE_HEADER, "no log line on stdout");
    let logged = |level: &str, target_and_message: &str| {
        out.stderr
            .lines()
            .filter(|l| l.contains(&format!(" {level} {target_and_message}")))
            .count()
    };
    assert_eq!(
        logged(
            "INFO",
            "sync_core::observer: sync run started flow=\"customers\" kind=Incremental"
        ),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        logged(
            "INFO",
            "sync_core::observer: sync run finished flow=customers counts=Counts { read: 301, created: 300,"
        ),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        logged(
            "WARN",
            &format!(
                "sync_core::observer: record not synced flow=\"customers\" key=\"{id}\" outcome=DeadLettered"
            )
        ),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(logged("DEBUG", ""), 0, "-v is info");

    // Without -v: the report alone (it lists the dead letter), nothing on stderr.
    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr, "");

    // RUST_LOG chooses instead of -v.
    let mut env = s.secrets();
    env.push(("RUST_LOG", "sync_core=debug".to_owned()));
    let out = fxk3_in(s.dir.path(), &env, &["run", "customers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let settled = out
        .stderr
        .lines()
        .filter(|l| l.contains(" DEBUG sync_core::observer: record settled flow=\"customers\""))
        .count();
    assert_eq!(settled, 300, "{}", out.stderr);
    assert!(
        out.stderr.lines().all(|l| l.contains(" sync_core::")),
        "only sync_core: {}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_logs_show_no_secret() {
    let s = Setup::start().await;
    let token = "E3B0C44298FC1C149AFBF4C8996FB924";
    s.sandbox.fxiaoke_pin_token(token);
    let out = s.fxk3(&["-vv", "run"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.lines().count() > 500,
        "debug logs: {}",
        out.stderr
    );
    assert!(s.sandbox.calls("fxiaoke:/cgi/crm/v2/data/query") > 0);
    for (var, secret) in s.secrets() {
        assert!(
            !out.stderr.contains(&secret) && !out.stdout.contains(&secret),
            "{var} leaked"
        );
    }
    assert!(!out.stderr.contains(token), "the access token leaked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crm_clock_behind_this_machines_loses_nothing_and_a_cursor_from_a_fast_clock_is_refused()
{
    let s = Setup::start().await;
    // Both servers' clocks run ten minutes behind this machine's: more than look-back (5 min)
    // plus settle (0 here), less than K3Cloud's signed-timestamp window.
    let clock = s.sandbox.clock();
    clock.set_ms(clock.now_ms() - 600_000);
    clock.unfreeze();
    let out = s.fxk3(&["run", "customers", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let skew = out.json()[0]["report"]["clock_skew_ms"].as_i64().unwrap();
    assert!((-602_000..=-598_000).contains(&skew), "{skew}");

    // Changed in the CRM after that run, on the CRM's clock: a cursor measured with this
    // machine's clock would have passed it by ten minutes.
    let id = s
        .sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "时钟测试客户", "account_no": "KT00001", "account_type": "1",
                   "account_level": "2", "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"]}),
        )
        .unwrap();
    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(s.sandbox.k3cloud_record("BD_Customer", "KT00001").is_some());
    let account = s.sandbox.fxiaoke_record("AccountObj", &id).unwrap();
    assert_eq!(account["field_erp_no__c"], "KT00001");

    // The servers' clocks go back a day (the earlier runs' were a day fast): the cursor is in
    // their future, and the run refuses rather than skip a day of changes.
    clock.set_ms(clock.now_ms() - 86_400_000);
    clock.unfreeze();
    let writes = s.writes();
    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stdout.contains("is ahead of the source's clock"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("`fxk3 set-cursor customers TIME`"),
        "{out:?}"
    );
    assert_eq!(s.writes(), writes);

    let out = s
        .fxk3(&["set-cursor", "customers", "2024-05-18 08:30:00"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "customers: cursor set to 2024-05-18 08:30:00+08:00\n"
    );
    let out = s.fxk3(&["run", "customers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_after_a_run_reads_every_synced_record_and_sends_nothing() {
    let s = Setup::start().await;
    assert_eq!(s.fxk3(&["run"]).await.code, Some(0));
    let out = s.fxk3(&["--json", "sweep"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let reports = out.json();
    let kinds: Vec<(&str, &str, u64, u64)> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let c = &r["counts"];
            (
                r["flow"].as_str().unwrap(),
                r["kind"].as_str().unwrap(),
                c["read"].as_u64().unwrap(),
                c["created"].as_u64().unwrap()
                    + c["updated"].as_u64().unwrap()
                    + c["removed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("customers", "Sweep", 300, 0),
            ("orders", "Sweep", 200, 0),
            ("deliveries", "Sweep", 0, 0)
        ]
    );
}
