//! The corp access token: single-flight under load, refresh ahead of expiry (paused time),
//! one replacement and one resend on 20016, never a loop, sharing through a token cache.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fxiaoke_sdk::{
    CacheError, Client, CorpToken, Error, MemoryTokenCache, RefreshGuard, TokenCache, TokenKey,
    TokioClock,
};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const DEPARTMENTS: &str = "/cgi/department/list";
const CREATE: &str = "/cgi/crm/v2/data/create";

/// Hands out `token-1`, `token-2`, … with a lifetime, after a delay.
struct Tokens {
    issued: AtomicUsize,
    expires_in: i64,
    delay: Duration,
}

impl Respond for Tokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        token_answer(&format!("token-{n}"), self.expires_in).set_delay(self.delay)
    }
}

async fn mount_tokens(server: &MockServer, expires_in: i64, delay: Duration) {
    Mock::given(path(TOKEN_PATH))
        .respond_with(Tokens {
            issued: AtomicUsize::new(0),
            expires_in,
            delay,
        })
        .mount(server)
        .await;
}

fn token_of(r: &Request) -> String {
    body_json(r)["corpAccessToken"].as_str().unwrap().to_owned()
}

async fn mount_departments(server: &MockServer) {
    mount(
        server,
        DEPARTMENTS,
        &json!({"errorCode": 0, "departments": [{"id": 1001, "name": "销售部"}]}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_calls_on_a_cold_cache_make_one_token_request() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::from_millis(200)).await;
    mount_departments(&server).await;
    let client = client(&server);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.departments().send().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap()[0].id, 1001);
    }
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
    assert_eq!(client.token_requests(), 1);
    assert_eq!(
        client.requests_sent(),
        1001,
        "one token request and the thousand calls"
    );
    let calls = requests_to(&server, DEPARTMENTS).await;
    assert_eq!(calls.len(), 1000);
    assert!(
        calls
            .iter()
            .all(|r| body_json(r) == json!({"corpAccessToken": "token-1", "corpId": CORP_ID}))
    );
}

/// Moves tokio's clock (and so the client's [`TokioClock`]) forward.
async fn advance(seconds: u64) {
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(seconds)).await;
    tokio::time::resume();
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::ZERO).await;
    mount_departments(&server).await;
    let client = builder(&server)
        .clock(Arc::new(TokioClock::new()))
        .build()
        .unwrap();
    client.departments().send().await.unwrap();
    // Just before the end of the reuse window (6600 s after issue): the same token.
    advance(6599).await;
    client.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
    // At it — 600 s before expiry, more than the 300 s minimum skew: a new one.
    advance(1).await;
    client.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
    let used: Vec<String> = requests_to(&server, DEPARTMENTS)
        .await
        .iter()
        .map(token_of)
        .collect();
    assert_eq!(used, ["token-1", "token-1", "token-2"]);
}

#[tokio::test]
async fn a_reused_token_is_replaced_by_its_issue_time_not_its_fetch_time() {
    // Another process fetched the token 6200 s ago: it comes back with 1000 s left and must
    // be replaced 400 s from now (6600 s after its issue), not 6600 s from now.
    let server = MockServer::start().await;
    mount_tokens(&server, 1000, Duration::ZERO).await;
    mount_departments(&server).await;
    let client = builder(&server)
        .clock(Arc::new(TokioClock::new()))
        .build()
        .unwrap();
    client.departments().send().await.unwrap();
    advance(399).await;
    client.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
    advance(1).await;
    client.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

/// Refuses (20016) requests that carry one of the `dead` tokens; `ok` otherwise.
struct RefuseTokens {
    dead: &'static [&'static str],
    ok: String,
}

impl Respond for RefuseTokens {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if self.dead.contains(&token_of(r).as_str()) {
            json_response(TOKEN_INVALID)
        } else {
            json_response(&self.ok)
        }
    }
}

#[tokio::test]
async fn a_refused_token_is_replaced_once_and_the_write_resent_once() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::ZERO).await;
    Mock::given(path(CREATE))
        .respond_with(RefuseTokens {
            dead: &["token-1"],
            ok: json!({"errorCode": 0, "dataId": "66f2a484928b280007aa6dd8"}).to_string(),
        })
        .mount(&server)
        .await;
    let created = client(&server)
        .create("AccountObj")
        .object_data(json!({"name": "示例客户", "owner": [OPERATOR]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.data_id.as_deref(), Some("66f2a484928b280007aa6dd8"));
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
    let sent = requests_to(&server, CREATE).await;
    assert_eq!(sent.len(), 2);
    let (mut first, mut second) = (body_json(&sent[0]), body_json(&sent[1]));
    assert_eq!(first["corpAccessToken"], "token-1");
    assert_eq!(second["corpAccessToken"], "token-2");
    first.as_object_mut().unwrap().remove("corpAccessToken");
    second.as_object_mut().unwrap().remove("corpAccessToken");
    assert_eq!(first, second, "the same call, resent");
}

#[tokio::test]
async fn a_second_refusal_is_an_error_not_a_loop() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::ZERO).await;
    Mock::given(path(CREATE))
        .respond_with(json_response(TOKEN_INVALID))
        .mount(&server)
        .await;
    let client = builder(&server)
        .retry_policy(fxiaoke_sdk::RetryPolicy::default())
        .build()
        .unwrap();
    let err = client
        .create("AccountObj")
        .object_data(json!({"name": "x"}))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::TokenInvalid(a) if a.code == 20016),
        "{err:?}"
    );
    assert!(!err.is_outcome_unknown() && !err.is_retryable());
    assert_eq!(requests_to(&server, CREATE).await.len(), 2);
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refusals_share_one_replacement() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::from_millis(50)).await;
    Mock::given(path(DEPARTMENTS))
        .respond_with(RefuseTokens {
            dead: &["token-1"],
            ok: json!({"errorCode": 0, "departments": []}).to_string(),
        })
        .mount(&server)
        .await;
    let client = client(&server);
    client.corp_id().await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.departments().send().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        requests_to(&server, TOKEN_PATH).await.len(),
        2,
        "the first token, then exactly one replacement"
    );
}

#[tokio::test]
async fn clients_sharing_a_cache_share_the_token() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::ZERO).await;
    mount_departments(&server).await;
    let cache = Arc::new(MemoryTokenCache::new());
    let a = builder(&server).token_cache(cache.clone()).build().unwrap();
    let b = builder(&server).token_cache(cache.clone()).build().unwrap();
    a.departments().send().await.unwrap();
    b.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
    assert_eq!((a.token_requests(), b.token_requests()), (1, 0));
    // A client of its own cache fetches its own.
    client(&server).departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

/// 1,000 concurrent calls spread over `clients` (call `i` on client `i % 4`), all on a cold
/// cache; every call must succeed with `token-1`.
async fn thousand_calls_over(server: &MockServer, clients: &[Client]) {
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            tokio::spawn(async move { client.departments().send().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap()[0].id, 1001);
    }
    let calls = requests_to(server, DEPARTMENTS).await;
    assert_eq!(calls.len(), 1000);
    assert!(calls.iter().all(|r| token_of(r) == "token-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_clients_sharing_a_cold_memory_cache_make_one_token_request_for_1000_calls() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::from_millis(200)).await;
    mount_departments(&server).await;
    let cache = Arc::new(MemoryTokenCache::new());
    let clients: Vec<Client> = (0..4)
        .map(|_| builder(&server).token_cache(cache.clone()).build().unwrap())
        .collect();
    thousand_calls_over(&server, &clients).await;
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
    let fetched: Vec<u64> = clients.iter().map(Client::token_requests).collect();
    assert_eq!(fetched.iter().sum::<u64>(), 1, "{fetched:?}");
}

/// A cache of its own that implements only `get`, `put` and `invalidate`.
#[derive(Debug, Default)]
struct Minimal(MemoryTokenCache);

#[async_trait::async_trait]
impl TokenCache for Minimal {
    async fn get(&self, key: &TokenKey) -> Result<Option<CorpToken>, CacheError> {
        self.0.get(key).await
    }
    async fn put(&self, key: &TokenKey, token: &CorpToken) -> Result<(), CacheError> {
        self.0.put(key, token).await
    }
    async fn invalidate(&self, key: &TokenKey) -> Result<(), CacheError> {
        self.0.invalidate(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cache_without_its_own_lock_still_gets_one_token_request_across_clients() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::from_millis(200)).await;
    mount_departments(&server).await;
    let cache = Arc::new(Minimal::default());
    let clients: Vec<Client> = (0..4)
        .map(|_| builder(&server).token_cache(cache.clone()).build().unwrap())
        .collect();
    thousand_calls_over(&server, &clients).await;
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 1);
    // Another cache value is another lock and another token.
    let other = builder(&server)
        .token_cache(Arc::new(Minimal::default()))
        .build()
        .unwrap();
    other.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
}

/// A cache that records what it is asked, like a Redis one would be.
#[derive(Debug, Default)]
struct Recording {
    log: Arc<Mutex<Vec<String>>>,
    store: MemoryTokenCache,
}

#[async_trait::async_trait]
impl TokenCache for Recording {
    async fn get(&self, key: &TokenKey) -> Result<Option<CorpToken>, CacheError> {
        self.log.lock().unwrap().push(format!("get {key}"));
        self.store.get(key).await
    }
    async fn put(&self, key: &TokenKey, token: &CorpToken) -> Result<(), CacheError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("put {key} {}", token.expose_token()));
        self.store.put(key, token).await
    }
    async fn invalidate(&self, key: &TokenKey) -> Result<(), CacheError> {
        self.log.lock().unwrap().push(format!("invalidate {key}"));
        self.store.invalidate(key).await
    }
    async fn lock_refresh(&self, key: &TokenKey) -> Result<Box<dyn RefreshGuard>, CacheError> {
        self.log.lock().unwrap().push(format!("lock {key}"));
        Ok(Box::new(RecordingGuard {
            log: Arc::clone(&self.log),
            held: self.store.lock_refresh(key).await?,
        }))
    }
}

/// Logs its release, as a Redis lock's `DEL` would be seen.
#[derive(Debug)]
struct RecordingGuard {
    log: Arc<Mutex<Vec<String>>>,
    held: Box<dyn RefreshGuard>,
}

#[async_trait::async_trait]
impl RefreshGuard for RecordingGuard {
    async fn release(self: Box<Self>) -> Result<(), CacheError> {
        self.log.lock().unwrap().push("release".to_owned());
        self.held.release().await
    }
}

#[tokio::test]
async fn a_custom_cache_is_consulted_only_when_the_token_is_due_or_refused() {
    let server = MockServer::start().await;
    mount_tokens(&server, 7200, Duration::ZERO).await;
    Mock::given(path(DEPARTMENTS))
        .respond_with(RefuseTokens {
            dead: &["token-1"],
            ok: json!({"errorCode": 0, "departments": []}).to_string(),
        })
        .mount(&server)
        .await;
    let cache = Arc::new(Recording::default());
    let client = builder(&server).token_cache(cache.clone()).build().unwrap();
    client.departments().send().await.unwrap();
    client.departments().send().await.unwrap();
    let key = client.token_key().to_string();
    assert!(key.starts_with("fxiaoke:127.0.0.1:FSAID_1000001:"));
    assert!(!key.contains(PERMANENT_CODE));
    assert_eq!(
        *cache.log.lock().unwrap(),
        [
            // A miss, the lock, the miss again under it, the fetch stored, the lock let go.
            format!("get {key}"),
            format!("lock {key}"),
            format!("get {key}"),
            format!("put {key} token-1"),
            "release".to_owned(),
            // token-1 refused: the same, with the refused token forgotten before the fetch.
            format!("get {key}"),
            format!("lock {key}"),
            format!("get {key}"),
            format!("invalidate {key}"),
            format!("put {key} token-2"),
            "release".to_owned(),
        ]
    );
    // A token another process stored is used without a fetch.
    let other = builder(&server).token_cache(cache.clone()).build().unwrap();
    other.departments().send().await.unwrap();
    assert_eq!(requests_to(&server, TOKEN_PATH).await.len(), 2);
    let last: Value = body_json(requests_to(&server, DEPARTMENTS).await.last().unwrap());
    assert_eq!(last["corpAccessToken"], "token-2");
}

#[tokio::test]
async fn a_malformed_token_answer_is_never_quoted_in_the_error() {
    const TOKEN: &str = "9F86D081884C7D659A2FEAA0C55AD015";
    for body in [
        // Truncated in the middle of the answer.
        format!(r#"{{"errorCode":0,"corpAccessToken":"{TOKEN}","corpId":"FSCID_1","expi"#),
        // A field of the wrong type: serde's message would quote the value.
        format!(r#"{{"errorCode":0,"corpAccessToken":"{TOKEN}","corpId":{{"id":"{TOKEN}"}}}}"#),
        // The token itself of the wrong type.
        r#"{"errorCode":0,"corpAccessToken":98608108,"corpId":"FSCID_1"}"#.to_owned(),
    ] {
        let server = MockServer::start().await;
        Mock::given(path(TOKEN_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"))
            .mount(&server)
            .await;
        mount_departments(&server).await;
        let err = client(&server).departments().send().await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(TOKEN) && !shown.contains("98608108"),
            "{body}: {shown}"
        );
        assert!(requests_to(&server, DEPARTMENTS).await.is_empty());
    }
}
