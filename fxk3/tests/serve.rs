//! `fxk3 watch --serve` as a child process against the simulators: an injected failure is
//! alerted once to every channel and resolved once, `/metrics` shows it, and the web page —
//! in a real browser, Debian's headless Chromium driven through chromedriver — retries the
//! dead letter.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fxk3_simulators::Sandbox;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "s3cret-page-token";
const ADMIN: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";

/// `fxk3 watch` running in the background; killed when dropped.
struct Watch {
    child: Child,
    base: String,
    dir: Option<tempfile::TempDir>,
    /// What it wrote on standard error so far.
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watch {
    /// Stops the process and gives its directory (configuration and state file) back.
    fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulators with their demo data, and a CRM account whose type the customer mapping
/// refuses: the first run dead-letters it.
async fn sandbox_with_a_bad_account() -> (Sandbox, String) {
    let sandbox = Sandbox::builder().demo_data(true).start().await.unwrap();
    sandbox.fxiaoke_set_rate_limit(None);
    let modified = sandbox.clock().now_ms() - 5_000;
    let id = sandbox
        .fxiaoke_insert(
            "AccountObj",
            json!({"name": "杭州其他贸易有限公司", "account_no": "KH90001", "account_type": "other",
                   "account_level": "2", "owner": [ADMIN],
                   "create_time": modified, "last_modified_time": modified}),
        )
        .unwrap();
    (sandbox, id)
}

/// Starts `fxk3 watch customers --every 1h --serve 127.0.0.1:0` with `extra` added to the
/// configuration, the page's token and `env` set, and waits for the line saying where it
/// serves.
fn start_watch(sandbox: &Sandbox, extra: &str, env: &[(&str, String)]) -> Watch {
    let mut env = env.to_vec();
    env.push(("FXK3_SERVE_TOKEN", TOKEN.to_owned()));
    start(
        sandbox,
        &[
            "watch",
            "customers",
            "--every",
            "1h",
            "--serve",
            "127.0.0.1:0",
        ],
        extra,
        &env,
    )
}

/// Starts `fxk3 args` with `extra` added to the configuration and `env` set, and waits for the
/// line saying where it serves.
fn start(sandbox: &Sandbox, args: &[&str], extra: &str, env: &[(&str, String)]) -> Watch {
    let dir = tempfile::tempdir().unwrap();
    let options = common::Options {
        auth: "signed",
        timeout_secs: None,
        rate_limit: false,
    };
    common::write_setup(sandbox, dir.path(), &options, |_| {
        "settle = \"0s\"\nquiet_period = \"0s\"\n".to_owned()
    });
    let config = dir.path().join("fxk3.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{extra}\n")).unwrap();
    start_in(dir, sandbox, args, env)
}

/// Starts `fxk3 args` in `dir`, which holds its configuration.
fn start_in(
    dir: tempfile::TempDir,
    sandbox: &Sandbox,
    args: &[&str],
    env: &[(&str, String)],
) -> Watch {
    let k3 = &sandbox.config().k3cloud;
    let fx = &sandbox.config().fxiaoke.apps[0];
    let mut command = Command::new(env!("CARGO_BIN_EXE_fxk3"));
    command
        .current_dir(dir.path())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("FXK3_SERVE_TOKEN")
        .env("FXK3_FXIAOKE_APP_SECRET", &fx.app_secret)
        .env("FXK3_FXIAOKE_PERMANENT_CODE", &fx.permanent_code)
        .env("FXK3_K3CLOUD_APP_SECRET", &k3.app_secret)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("fxk3 starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.strip_prefix("fxk3: serving ") {
                let _ = tx.send(at.split(' ').next().unwrap_or_default().to_owned());
            }
            eprintln!("[fxk3] {line}");
            kept.lock().unwrap().push(line);
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("fxk3 says where it serves");
    Watch {
        child,
        base: base.trim_end_matches('/').to_owned(),
        dir: Some(dir),
        stderr: lines,
    }
}

/// Waits (real time: a child process) until `done` holds, for at most a minute.
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).json(&json!({}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A local receiver of alerts at `at`, answering as the robots do (`errcode` 0) after
/// answering the first `down_for` posts with 502.
async fn alert_receiver(at: &str, down_for: u64) -> MockServer {
    let server = MockServer::start().await;
    if down_for > 0 {
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(down_for)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"errcode": 0, "errmsg": "ok"})),
        )
        .mount(&server)
        .await;
    server
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn crm_alerts(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .fxiaoke_messages()
        .iter()
        .filter(|m| m["toUser"] == json!([ADMIN]))
        .filter_map(|m| m["text"]["content"].as_str().map(str::to_owned))
        .filter(|t| t.starts_with("【fxk3"))
        .collect()
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failure_is_alerted_once_resolved_once_and_shown_in_the_metrics() {
    let (sandbox, id) = sandbox_with_a_bad_account().await;
    let receiver = alert_receiver("/hook", 0).await;
    let robot = alert_receiver("/cgi-bin/webhook/send", 0).await;
    // A robot that is down at the first alert: the alert is offered to it again at the
    // next check.
    let flaky = alert_receiver("/robot/send", 1).await;
    let extra = format!(
        "[alerts]\nlanguage = \"zh\"\n\
         [[alerts.channels]]\nkind = \"webhook\"\nurl_env = \"FXK3_ALERT_WEBHOOK\"\n\
         [[alerts.channels]]\nkind = \"wecom\"\nurl_env = \"FXK3_WECOM_ROBOT\"\n\
         [[alerts.channels]]\nkind = \"dingtalk\"\nurl_env = \"FXK3_DINGTALK_ROBOT\"\n\
         secret_env = \"FXK3_DINGTALK_SECRET\"\n\
         [[alerts.channels]]\nkind = \"crm\"\nusers = [\"{ADMIN}\"]\n"
    );
    let w = start_watch(
        &sandbox,
        &extra,
        &[
            ("FXK3_ALERT_WEBHOOK", format!("{}/hook", receiver.uri())),
            (
                "FXK3_WECOM_ROBOT",
                format!("{}/cgi-bin/webhook/send?key=ROBOTKEY", robot.uri()),
            ),
            (
                "FXK3_DINGTALK_ROBOT",
                format!("{}/robot/send?access_token=DINGTOKEN", flaky.uri()),
            ),
            ("FXK3_DINGTALK_SECRET", "SECdingsecret".to_owned()),
        ],
    );

    until("the alert", || async {
        !bodies(&receiver).await.is_empty()
    })
    .await;
    let alert = &bodies(&receiver).await[0];
    assert_eq!(
        (
            &alert["event"],
            &alert["problem"],
            &alert["flow"],
            &alert["count"]
        ),
        (
            &json!("alert"),
            &json!("dead_letters"),
            &json!("customers"),
            &json!(1)
        ),
        "{alert}"
    );
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{id}: ")),
        "{alert}"
    );
    assert_eq!(alert["title"], "【fxk3 告警】customers：1 条记录进入死信");
    until("the robots' and the CRM's alert", || async {
        bodies(&robot).await.len() == 1
            && bodies(&flaky).await.len() == 1
            && crm_alerts(&sandbox).len() == 1
    })
    .await;
    let wecom = &bodies(&robot).await[0];
    assert_eq!(wecom["msgtype"], "text");
    assert!(
        wecom["text"]["content"]
            .as_str()
            .unwrap()
            .starts_with("【fxk3 告警】customers：1 条记录进入死信\n原因："),
        "{wecom}"
    );

    let (status, metrics) = get(&format!("{}/metrics", w.base)).await;
    assert_eq!(status, 200);
    for (series, value) in [
        ("fxk3_dead_letters{flow=\"customers\"}", 1.0),
        (
            "fxk3_problems{flow=\"customers\",problem=\"dead_letters\"}",
            1.0,
        ),
        (
            "fxk3_problems{flow=\"customers\",problem=\"flow_failed\"}",
            0.0,
        ),
        (
            "fxk3_alerts_total{event=\"alert\",problem=\"dead_letters\"}",
            1.0,
        ),
        (
            "fxk3_records_total{flow=\"customers\",outcome=\"created\"}",
            300.0,
        ),
        (
            "fxk3_records_total{flow=\"customers\",outcome=\"dead_lettered\"}",
            1.0,
        ),
        ("fxk3_runs_total{flow=\"customers\",result=\"ok\"}", 1.0),
    ] {
        assert_eq!(
            metric(&metrics, series),
            Some(value),
            "{series} in\n{metrics}"
        );
    }
    let saves = metric(
        &metrics,
        "fxk3_api_calls_total{vendor=\"k3cloud\",endpoint=\"BatchSave\",outcome=\"ok\"}",
    )
    .unwrap_or_default();
    assert!(saves >= 1.0, "{metrics}");
    assert!(
        !metrics.contains(TOKEN) && !metrics.contains("ROBOTKEY"),
        "{metrics}"
    );

    // Changing state needs the token.
    let retry = format!("{}/api/flows/customers/retry", w.base);
    assert_eq!(post(&retry, None).await.0, 401);
    assert_eq!(post(&retry, Some("wrong")).await.0, 401);
    let (_, status) = get(&format!("{}/api/status", w.base)).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["can_change"], true);
    assert_eq!(status["flows"][0]["dead_letters"], 1);
    assert!(!status.to_string().contains(TOKEN));

    // A retry before the fix fails again: the problem is the same, nobody is told again, but
    // the check after it offers the robot that was down the alert it missed.
    let (code, report) = post(&retry, Some(TOKEN)).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["report"]["counts"]["dead_lettered"], 1, "{report}");
    until("the alert offered again", || async {
        bodies(&flaky).await.len() == 2
    })
    .await;

    // The data is fixed in the CRM; a retry from the page clears the dead letter, and the
    // resolution goes out at once (the next run is an hour away).
    sandbox
        .fxiaoke_update("AccountObj", &id, json!({"account_type": "1"}))
        .unwrap();
    let (code, report) = post(&retry, Some(TOKEN)).await;
    assert_eq!(code, 200, "{report}");
    assert_eq!(report["report"]["counts"]["created"], 1, "{report}");
    until("the resolution", || async {
        bodies(&receiver).await.len() == 2
            && bodies(&robot).await.len() == 2
            && bodies(&flaky).await.len() == 3
            && crm_alerts(&sandbox).len() == 2
    })
    .await;
    let resolved = &bodies(&receiver).await[1];
    assert_eq!(
        (&resolved["event"], &resolved["problem"], &resolved["flow"]),
        (
            &json!("resolved"),
            &json!("dead_letters"),
            &json!("customers")
        ),
        "{resolved}"
    );
    assert!(crm_alerts(&sandbox)[1].starts_with("【fxk3 已恢复】customers"));

    let (_, metrics) = get(&format!("{}/metrics", w.base)).await;
    for (series, value) in [
        ("fxk3_dead_letters{flow=\"customers\"}", 0.0),
        (
            "fxk3_problems{flow=\"customers\",problem=\"dead_letters\"}",
            0.0,
        ),
        (
            "fxk3_alerts_total{event=\"alert\",problem=\"dead_letters\"}",
            1.0,
        ),
        (
            "fxk3_alerts_total{event=\"resolved\",problem=\"dead_letters\"}",
            1.0,
        ),
    ] {
        assert_eq!(
            metric(&metrics, series),
            Some(value),
            "{series} in\n{metrics}"
        );
    }
    // Exactly one alert and one resolution, on every channel; the robot that was down got the
    // alert again, signed, then the resolution.
    assert_eq!(bodies(&receiver).await.len(), 2);
    assert_eq!(bodies(&robot).await.len(), 2);
    assert_eq!(crm_alerts(&sandbox).len(), 2);
    let ding: Vec<String> = bodies(&flaky)
        .await
        .iter()
        .map(|b| {
            b["text"]["content"]
                .as_str()
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ding,
        [
            "【fxk3 告警】customers：1 条记录进入死信",
            "【fxk3 告警】customers：1 条记录进入死信",
            "【fxk3 已恢复】customers：1 条记录进入死信",
        ]
    );
    for request in flaky.received_requests().await.unwrap() {
        let query: Vec<String> = request
            .url
            .query_pairs()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(
            query,
            ["access_token", "timestamp", "sign"],
            "{}",
            request.url
        );
    }
    let stderr = w.stderr.lock().unwrap().join("\n");
    assert!(
        stderr.contains("alert not delivered") && stderr.contains("HTTP 502"),
        "{stderr}"
    );
    for secret in [TOKEN, "ROBOTKEY", "DINGTOKEN", "SECdingsecret"] {
        assert!(!stderr.contains(secret), "{secret} in {stderr}");
    }
    assert!(
        sandbox.k3cloud_record("BD_Customer", "KH90001").is_some(),
        "the retried customer is in the ERP"
    );
}

/// Debian's chromedriver, when installed. `.ci/run` installs it and sets
/// `FXK3_BROWSER_TESTS=required`, so that CI cannot pass without the browser test.
fn chromedriver() -> Option<&'static Path> {
    let driver = Path::new("/usr/bin/chromedriver");
    if driver.exists() {
        return Some(driver);
    }
    assert!(
        std::env::var("FXK3_BROWSER_TESTS").as_deref() != Ok("required"),
        "the browser test is required and /usr/bin/chromedriver is missing: install Debian's \
         chromium and chromium-driver"
    );
    eprintln!("skipped: no /usr/bin/chromedriver (apt-get install chromium chromium-driver)");
    None
}

/// chromedriver on a free port; killed when dropped.
struct Driver(Child, String);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_driver(driver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    until("chromedriver", || async {
        reqwest::get(format!("{url}/status")).await.is_ok()
    })
    .await;
    Driver(child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_retries_a_dead_letter_in_a_real_browser() {
    use fantoccini::Locator;

    let Some(driver) = chromedriver() else { return };
    let (sandbox, id) = sandbox_with_a_bad_account().await;
    let w = start_watch(&sandbox, "", &[]);
    let driver = start_driver(driver).await;
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            // Flags for a closed network and a root user in a container: no sandbox, and
            // nothing that reaches out to Google's hosts.
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let browser =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.1)
            .await
            .expect("a Chromium session");

    // The first run has left the dead letter; the page shows it, in Chinese by default.
    until("the first run's dead letter", || async {
        let (_, s) = get(&format!("{}/api/status", w.base)).await;
        serde_json::from_str::<Value>(&s).unwrap()["flows"][0]["dead_letters"] == 1
    })
    .await;
    browser.goto(&format!("{}/", w.base)).await.unwrap();
    let row = format!("tr.dead-letter[data-key=\"{id}\"]");
    browser
        .wait()
        .for_element(Locator::Css(&row))
        .await
        .expect("the dead letter's row");
    let title = browser.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(title.text().await.unwrap(), "fxk3 运维");
    let problem = browser
        .find(Locator::Css("li.problem[data-kind=\"dead_letters\"]"))
        .await
        .unwrap();
    assert!(
        problem
            .text()
            .await
            .unwrap()
            .starts_with("customers: 1 条死信"),
        "{}",
        problem.text().await.unwrap()
    );

    // In English, the fix made in the CRM, the token typed, Retry clicked.
    browser.goto(&format!("{}/?lang=en", w.base)).await.unwrap();
    browser
        .wait()
        .for_element(Locator::Css(&row))
        .await
        .expect("the dead letter's row");
    let reason = browser
        .find(Locator::Css(&format!("{row} td.reason")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(reason.contains("customer_type"), "{reason}");
    sandbox
        .fxiaoke_update("AccountObj", &id, json!({"account_type": "1"}))
        .unwrap();
    browser
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    browser
        .find(Locator::Css("button.retry[data-flow=\"customers\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css(
            "section.letters[data-flow=\"customers\"] p.no-letters",
        ))
        .await
        .expect("no dead letters left after the retry");
    let message = browser
        .find(Locator::Id("message"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        message, "Retried customers: created 1 · updated 0 · dead 0",
        "what the page says"
    );
    let count = browser
        .find(Locator::Css(
            "#flows tr[data-flow=\"customers\"] td.dead-count",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "0");
    assert!(
        browser
            .find_all(Locator::Css(&row))
            .await
            .unwrap()
            .is_empty()
    );
    browser.close().await.unwrap();

    // Counted from the simulators: the customer is in the ERP, and the state agrees.
    assert!(sandbox.k3cloud_record("BD_Customer", "KH90001").is_some());
    let (_, s) = get(&format!("{}/api/status", w.base)).await;
    assert_eq!(
        serde_json::from_str::<Value>(&s).unwrap()["flows"][0]["dead_letters"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_alone_shows_the_state_and_without_a_token_changes_nothing() {
    let (sandbox, id) = sandbox_with_a_bad_account().await;
    let first = start_watch(&sandbox, "", &[]);
    until("the first run's dead letter", || async {
        let (_, s) = get(&format!("{}/api/status", first.base)).await;
        serde_json::from_str::<Value>(&s).unwrap()["flows"][0]["dead_letters"] == 1
    })
    .await;
    // The same state file, served alone, with no token in the environment, and an alert
    // channel whose address is not in it either: only `watch` alerts, only it needs that.
    let dir = first.stop();
    let config = dir.path().join("fxk3.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let channel =
        "[alerts]\n[[alerts.channels]]\nkind = \"wecom\"\nurl_env = \"FXK3_NOT_SET_URL\"\n";
    std::fs::write(&config, format!("{text}\n{channel}")).unwrap();
    let k3 = &sandbox.config().k3cloud;
    let fx = &sandbox.config().fxiaoke.apps[0];
    let mut watch = Command::new(env!("CARGO_BIN_EXE_fxk3"));
    watch
        .current_dir(dir.path())
        .args(["watch", "customers"])
        .env("FXK3_FXIAOKE_APP_SECRET", &fx.app_secret)
        .env("FXK3_FXIAOKE_PERMANENT_CODE", &fx.permanent_code)
        .env("FXK3_K3CLOUD_APP_SECRET", &k3.app_secret)
        .env_remove("FXK3_NOT_SET_URL");
    // On a blocking thread: the simulators in this process keep answering meanwhile.
    let out = tokio::task::spawn_blocking(move || watch.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FXK3_NOT_SET_URL"), "{stderr}");
    let w = start_in(dir, &sandbox, &["serve", "--listen", "127.0.0.1:0"], &[]);
    let (code, page) = get(&format!("{}/", w.base)).await;
    assert_eq!(code, 200);
    assert!(page.contains("<title>fxk3</title>"), "{page}");
    // Another site's name rebound to 127.0.0.1 is refused; loopback names are not.
    for (host, want) in [
        ("attacker.example:9184", 421),
        ("127.0.0.1.attacker.example", 421),
        ("localhost:9184", 200),
        ("[::1]:9184", 200),
    ] {
        let code = reqwest::Client::new()
            .get(format!("{}/api/status", w.base))
            .header("Host", host)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(code, want, "Host: {host}");
    }
    let (_, status) = get(&format!("{}/api/status", w.base)).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["can_change"], false);
    assert_eq!(
        (
            &status["problems"][0]["kind"],
            &status["problems"][0]["flow"],
            &status["problems"][0]["count"]
        ),
        (&json!("dead_letters"), &json!("customers"), &json!(1)),
        "{status}"
    );
    let (_, letters) = get(&format!("{}/api/flows/customers/dead-letters", w.base)).await;
    let letters: Value = serde_json::from_str(&letters).unwrap();
    assert_eq!(letters[0]["key"], id.as_str(), "{letters}");
    assert_eq!(letters[0]["stage"], "map", "{letters}");
    assert_eq!(
        get(&format!("{}/api/flows/invoices/dead-letters", w.base))
            .await
            .0,
        404
    );

    let calls = sandbox.all_calls().values().sum::<u64>();
    for action in ["retry", "drop"] {
        let (code, answer) = post(
            &format!("{}/api/flows/customers/{action}", w.base),
            Some("anything"),
        )
        .await;
        assert_eq!(code, 403, "{action}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("FXK3_SERVE_TOKEN"),
            "{answer}"
        );
    }
    let (_, metrics) = get(&format!("{}/metrics", w.base)).await;
    assert_eq!(
        metric(&metrics, "fxk3_dead_letters{flow=\"customers\"}"),
        Some(1.0),
        "the gauges are read at the scrape: {metrics}"
    );
    assert_eq!(
        sandbox.all_calls().values().sum::<u64>(),
        calls,
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_failing_run_after_run_is_alerted_once_and_resolved_once_when_it_recovers() {
    let sandbox = Sandbox::builder().demo_data(true).start().await.unwrap();
    sandbox.fxiaoke_set_rate_limit(None);
    // The company's OpenAPI licence lapses: the CRM refuses every call, and each run of the
    // flow fails.
    sandbox.fxiaoke_set_openapi_purchased(false);
    let receiver = alert_receiver("/hook", 0).await;
    let w = start(
        &sandbox,
        &[
            "watch",
            "customers",
            "--every",
            "1s",
            "--serve",
            "127.0.0.1:0",
        ],
        "[alerts]\nlanguage = \"en\"\n\
         [[alerts.channels]]\nkind = \"webhook\"\nurl_env = \"FXK3_ALERT_WEBHOOK\"\n",
        &[("FXK3_ALERT_WEBHOOK", format!("{}/hook", receiver.uri()))],
    );
    let failed_runs = || async {
        let (_, m) = get(&format!("{}/metrics", w.base)).await;
        metric(&m, "fxk3_runs_total{flow=\"customers\",result=\"failed\"}").unwrap_or_default()
    };
    until("three failed runs", || async { failed_runs().await >= 3.0 }).await;
    let told = bodies(&receiver).await;
    assert_eq!(told.len(), 1, "one alert however many runs fail: {told:?}");
    assert_eq!(
        (&told[0]["event"], &told[0]["problem"], &told[0]["title"]),
        (
            &json!("alert"),
            &json!("flow_failed"),
            &json!("[fxk3 alert] customers: the flow failed")
        ),
        "{}",
        told[0]
    );
    let (_, m) = get(&format!("{}/metrics", w.base)).await;
    assert_eq!(
        metric(
            &m,
            "fxk3_problems{flow=\"customers\",problem=\"flow_failed\"}"
        ),
        Some(1.0),
        "{m}"
    );

    sandbox.fxiaoke_set_openapi_purchased(true);
    until("the resolution", || async {
        bodies(&receiver).await.len() == 2
    })
    .await;
    let told = bodies(&receiver).await;
    assert_eq!(
        (&told[1]["event"], &told[1]["problem"]),
        (&json!("resolved"), &json!("flow_failed")),
        "{}",
        told[1]
    );
    // Runs go on cleanly: nothing more is told.
    let (_, m) = get(&format!("{}/metrics", w.base)).await;
    let ok_runs =
        metric(&m, "fxk3_runs_total{flow=\"customers\",result=\"ok\"}").unwrap_or_default();
    until("two more clean runs", || async {
        let (_, m) = get(&format!("{}/metrics", w.base)).await;
        metric(&m, "fxk3_runs_total{flow=\"customers\",result=\"ok\"}").unwrap_or_default()
            >= ok_runs + 2.0
    })
    .await;
    assert_eq!(bodies(&receiver).await.len(), 2);
    assert_eq!(
        sandbox.k3cloud_records("BD_Customer").len(),
        300,
        "every customer reached the ERP once the CRM answered"
    );
}
