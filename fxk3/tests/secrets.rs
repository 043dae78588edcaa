//! The secret-leak test: every fault kind of the simulators on the Fxiaoke token endpoint and
//! on each K3Cloud login, with `fxk3` logging at trace level. Nothing it prints (the report,
//! every error's text, every log line) and nothing in its state file holds a secret: the app
//! secrets, the permanent code, the password, any token or session id the simulators issued.
//! The one exception is the Fxiaoke token the state file keeps on purpose (the token cache).

mod common;

use std::time::Duration;

use fxk3_simulators::{Api, Fault, FaultKind, Sandbox};
use serde_json::json;

fn kinds() -> Vec<FaultKind> {
    vec![
        FaultKind::Latency {
            ms: 50,
            per_row_ms: 0,
        },
        FaultKind::ServerError { status: 502 },
        FaultKind::Hang,
        FaultKind::DropAfterWrite,
        FaultKind::SessionLoss,
        FaultKind::MalformedJson,
        FaultKind::TruncatedJson,
        FaultKind::RateLimited,
        FaultKind::QuotaExceeded,
    ]
}

/// (system, endpoint, `k3cloud.auth`): the token endpoint and every K3Cloud login, and the
/// signed headers, which carry the app secret's signature on every call.
const TARGETS: [(Api, &str, &str); 5] = [
    (Api::Fxiaoke, "/cgi/corpAccessToken/get/V2", "signed"),
    (Api::K3cloud, "ValidateUser", "password"),
    (Api::K3cloud, "LoginByAppSecret", "app_secret"),
    (Api::K3cloud, "LoginBySign", "sign"),
    (Api::K3cloud, "ExecuteBillQuery", "signed"),
];

/// One run of `fxk3 run` at trace level against fresh simulators with `fault` on the next
/// two calls of the endpoint; panics when a secret shows.
async fn run_with(target: (Api, &'static str, &'static str), kind: FaultKind) {
    let (api, endpoint, auth) = target;
    let sandbox = Sandbox::builder().start().await.unwrap();
    sandbox.fxiaoke_set_rate_limit(None);
    for i in 0..3 {
        sandbox
            .fxiaoke_insert(
                "AccountObj",
                json!({"name": format!("密钥测试客户{i}"), "account_no": format!("KS{i:05}"),
                       "account_type": "1", "account_level": "2",
                       "owner": ["FSUID_0123456789ABCDEF0123456789ABCDEF"]}),
            )
            .unwrap();
    }
    let _fault = sandbox.set_fault(Fault::new(api, endpoint, kind.clone()).next(2));
    let dir = tempfile::tempdir().unwrap();
    let options = common::Options {
        auth,
        // A hang costs one second per attempt, not two minutes.
        timeout_secs: Some(1),
        rate_limit: false,
    };
    common::write_setup(&sandbox, dir.path(), &options, |_| String::new());

    let k3 = sandbox.config().k3cloud.clone();
    let fx = sandbox.config().fxiaoke.apps[0].clone();
    let given = [
        ("FXK3_FXIAOKE_APP_SECRET", fx.app_secret.clone()),
        ("FXK3_FXIAOKE_PERMANENT_CODE", fx.permanent_code.clone()),
        ("FXK3_K3CLOUD_APP_SECRET", k3.app_secret.clone()),
        ("FXK3_K3CLOUD_PASSWORD", k3.password.clone()),
    ];
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fxk3"));
    command
        .current_dir(dir.path())
        .args(["run"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "trace")
        .env_remove("FXK3_CONFIG");
    for (var, value) in &given {
        command.env(var, value);
    }
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("fxk3 starts");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("TRACE") || printed.contains("trace"),
        "{endpoint} {kind:?}: no trace-level output, the test would prove little"
    );
    let key = format!("{}:{endpoint}", api.as_str());
    assert!(
        sandbox.calls(&key) >= 1,
        "{key} was never called:\n{printed}"
    );
    let issued = sandbox.issued_secrets();
    let state = std::fs::read(dir.path().join("fxk3-state.sqlite3")).unwrap_or_default();
    let state = String::from_utf8_lossy(&state);
    let tokens_cached: Vec<&String> = issued
        .iter()
        .filter(|t| state.contains(t.as_str()))
        .collect();
    assert!(
        tokens_cached.len() <= 1,
        "{endpoint} {kind:?}: {tokens_cached:?}"
    );

    let secrets = given
        .iter()
        .map(|(_, v)| v.clone())
        .chain(issued.iter().cloned());
    for secret in secrets.filter(|s| s.len() >= 8) {
        assert!(
            !printed.contains(&secret),
            "{endpoint} {kind:?} auth={auth}: a secret in the output: …{}…",
            around(&printed, &secret)
        );
        let is_cached_token =
            tokens_cached.iter().any(|t| **t == secret) && fx_issued(&sandbox).contains(&secret);
        assert!(
            is_cached_token || !state.contains(&secret),
            "{endpoint} {kind:?} auth={auth}: a secret in the state file"
        );
    }
}

fn fx_issued(sandbox: &Sandbox) -> Vec<String> {
    // Fxiaoke tokens are 32 upper-case hex digits; K3Cloud session ids are UUIDs.
    sandbox
        .issued_secrets()
        .into_iter()
        .filter(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

/// The text around the first `secret` in `text`, with the secret itself masked.
fn around(text: &str, secret: &str) -> String {
    let at = text.find(secret).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(80)
        .map_or(0, |(i, _)| i);
    let end = (at + secret.len() + 80).min(text.len());
    let end = (end..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..end].replace(secret, "<SECRET>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_fault_on_a_token_endpoint_or_login_puts_a_secret_in_output_or_state() {
    let mut runs = tokio::task::JoinSet::new();
    for target in TARGETS {
        for kind in kinds() {
            runs.spawn(run_with(target, kind));
        }
    }
    let started = std::time::Instant::now();
    while let Some(done) = runs.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    assert!(started.elapsed() < Duration::from_secs(600));
}
