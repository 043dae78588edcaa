//! Session logins: bodies, single-flight login, re-login once on a lost session, no loops.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use k3cloud_sdk::{Auth, Error};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn login_path(method: &str) -> String {
    format!("{AUTH}.{method}.common.kdsvc")
}

fn dfs(method: &str) -> String {
    format!("{DFS}.{method}.common.kdsvc")
}

const VIEW_OK: &str = r#"{"Result":{"ResponseStatus":null,"Result":{"Id":1}}}"#;

/// Answers each login with a new session `s1`, `s2`, … (body and cookie).
struct Logins(AtomicUsize);

impl Respond for Logins {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let sid = format!("s{n}");
        json_response(&login_ok(&sid))
            .append_header(
                "set-cookie",
                format!("kdservice-sessionid={sid}; path=/").as_str(),
            )
            .append_header(
                "set-cookie",
                format!("ASP.NET_SessionId=asp{n}; path=/").as_str(),
            )
    }
}

async fn mount_logins(server: &MockServer, method: &str) {
    Mock::given(path(login_path(method)))
        .respond_with(Logins(AtomicUsize::new(0)))
        .mount(server)
        .await;
}

fn session_of(r: &Request) -> Option<String> {
    r.headers
        .get("kdservice-sessionid")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn login_bodies_match_the_other_vendor_clients() {
    let cases: [(Auth, &str, &str); 3] = [
        (
            Auth::password("P@ssw0rd"),
            "ValidateUser",
            "constructed/ValidateUser_parameters.json",
        ),
        (
            Auth::app_secret(APP_ID, APP_SECRET),
            "LoginByAppSecret",
            "constructed/LoginByAppSecret_parameters.json",
        ),
        (
            Auth::sign(APP_ID, APP_SECRET),
            "LoginBySign",
            "constructed/LoginBySign_parameters.json",
        ),
    ];
    for (auth, method, file) in cases {
        let server = MockServer::start().await;
        mount_logins(&server, method).await;
        let client = builder(&server).auth(auth).build().unwrap();
        let info = client.login().await.unwrap();
        assert_eq!(info.result_type, 1);
        let seen = requests_to(&server, &login_path(method)).await;
        assert_eq!(seen.len(), 1);
        let expected = fixture(file)["request"]["body_json"].clone();
        assert_eq!(body_json(&seen[0]), expected, "{method}");
        assert!(
            seen[0].headers.get("X-Kd-Signature").is_none(),
            "logins are not signed"
        );
        assert!(
            seen[0].headers.get("cookie").is_none(),
            "a login starts without a session"
        );
    }
}

#[tokio::test]
async fn signed_headers_never_log_in() {
    let server = MockServer::start().await;
    Mock::given(path(dfs("View")))
        .respond_with(json_response(VIEW_OK))
        .mount(&server)
        .await;
    let client = signed_client(&server);
    client.view("X").number("1").send().await.unwrap();
    assert!(matches!(client.login().await, Err(Error::InvalidInput(_))));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_first_calls_log_in_once() {
    let server = MockServer::start().await;
    mount_logins(&server, "ValidateUser").await;
    Mock::given(path(dfs("View")))
        .respond_with(json_response(VIEW_OK))
        .mount(&server)
        .await;
    let client = password_client(&server);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .view("BD_MATERIAL")
                    .number(format!("M{i}"))
                    .send()
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        1
    );
    let views = requests_to(&server, &dfs("View")).await;
    assert_eq!(views.len(), 100);
    assert!(views.iter().all(|r| session_of(r).as_deref() == Some("s1")));
    assert!(views.iter().all(|r| {
        let cookie = r.headers.get("cookie").unwrap().to_str().unwrap();
        cookie.contains("kdservice-sessionid=s1") && cookie.contains("ASP.NET_SessionId=asp1")
    }));
}

/// Answers `lost` while the request carries session `dead`, `ok` otherwise.
struct LostFor {
    dead: &'static str,
    lost: &'static str,
    ok: &'static str,
}

impl Respond for LostFor {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if session_of(r).as_deref() == Some(self.dead) {
            json_response(self.lost)
        } else {
            json_response(self.ok)
        }
    }
}

#[tokio::test]
async fn a_lost_session_logs_in_again_and_resends_once() {
    let server = MockServer::start().await;
    mount_logins(&server, "LoginByAppSecret").await;
    Mock::given(path(dfs("Save")))
        .respond_with(LostFor {
            dead: "s1",
            lost: SESSION_LOST,
            ok: SAVE_OK,
        })
        .mount(&server)
        .await;
    let client = builder(&server)
        .auth(Auth::app_secret(APP_ID, APP_SECRET))
        .build()
        .unwrap();
    let saved = client
        .save("BD_MATERIAL")
        .model(json!({"FNumber": "MAT0001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.number, "MAT0001");
    assert_eq!(
        requests_to(&server, &login_path("LoginByAppSecret"))
            .await
            .len(),
        2
    );
    let sent = requests_to(&server, &dfs("Save")).await;
    let sessions: Vec<_> = sent.iter().map(session_of).collect();
    assert_eq!(sessions, [Some("s1".into()), Some("s2".into())]);
    assert_eq!(
        body_json(&sent[0]),
        body_json(&sent[1]),
        "the same call, resent"
    );
}

#[tokio::test]
async fn a_session_lost_twice_is_an_error_not_a_loop() {
    let server = MockServer::start().await;
    mount_logins(&server, "ValidateUser").await;
    Mock::given(path(dfs("Save")))
        .respond_with(json_response(SESSION_LOST))
        .mount(&server)
        .await;
    let client = password_client(&server);
    let err = client.save("X").model(json!({})).send().await.unwrap_err();
    assert_eq!(client.requests_sent(), 4, "two logins, two saves");
    assert!(
        matches!(&err, Error::SessionExpired { message } if message.contains("会话信息已丢失")),
        "{err:?}"
    );
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        2
    );
    assert_eq!(requests_to(&server, &dfs("Save")).await.len(), 2);
}

#[tokio::test]
async fn a_wrapped_session_loss_on_a_query_is_recovered_too() {
    let server = MockServer::start().await;
    mount_logins(&server, "ValidateUser").await;
    let wrapped = r#"[[{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":1}}}]]"#;
    Mock::given(path(dfs("ExecuteBillQuery")))
        .respond_with(LostFor {
            dead: "s1",
            lost: wrapped,
            ok: r#"[["MAT0001"]]"#,
        })
        .mount(&server)
        .await;
    let rows: Vec<(String,)> = password_client(&server)
        .query("BD_MATERIAL")
        .fields(["FNumber"])
        .send()
        .await
        .unwrap();
    assert_eq!(rows, [("MAT0001".to_owned(),)]);
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_on_a_dead_session_share_one_new_login() {
    let server = MockServer::start().await;
    mount_logins(&server, "ValidateUser").await;
    Mock::given(path(dfs("View")))
        .respond_with(LostFor {
            dead: "s1",
            lost: SESSION_LOST,
            ok: VIEW_OK,
        })
        .mount(&server)
        .await;
    let client = password_client(&server);
    client.login().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.view("X").number("1").send().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        2,
        "the first login, then exactly one replacement"
    );
}

#[tokio::test]
async fn a_wrong_password_is_tried_once_however_many_calls_wait() {
    let server = MockServer::start().await;
    Mock::given(path(login_path("ValidateUser")))
        .respond_with(json_response(
            r#"{"Message":"用户名或密码错误","MessageCode":"","LoginResultType":0,"Context":null}"#,
        ))
        .mount(&server)
        .await;
    let client = password_client(&server);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.view("X").number("1").send().await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::AuthFailed { login_result_type: Some(0), message } if message == "用户名或密码错误"),
            "{err:?}"
        );
    }
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        1
    );
    assert!(requests_to(&server, &dfs("View")).await.is_empty());

    // Within the cool-down new calls fail without a login; after it, one new attempt.
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(29)).await;
    tokio::time::resume();
    assert!(client.view("X").number("1").send().await.is_err());
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        1
    );
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(2)).await;
    tokio::time::resume();
    assert!(client.view("X").number("1").send().await.is_err());
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        2
    );
    // An explicit login always tries.
    assert!(client.login().await.is_err());
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn a_successful_login_without_any_session_is_refused() {
    let server = MockServer::start().await;
    Mock::given(path(login_path("ValidateUser")))
        .respond_with(json_response(
            r#"{"LoginResultType":1,"KDSVCSessionId":null,"Context":null}"#,
        ))
        .mount(&server)
        .await;
    let err = password_client(&server).login().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AuthFailed {
                login_result_type: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn minus_five_is_accepted_and_is_success_by_api_counts_without_a_type() {
    for body in [
        r#"{"LoginResultType":-5,"KDSVCSessionId":"s-5"}"#,
        r#"{"IsSuccessByAPI":true,"KDSVCSessionId":"s-api"}"#,
    ] {
        let server = MockServer::start().await;
        Mock::given(path(login_path("ValidateUser")))
            .respond_with(json_response(body))
            .mount(&server)
            .await;
        Mock::given(path(dfs("View")))
            .respond_with(json_response(VIEW_OK))
            .mount(&server)
            .await;
        let client = password_client(&server);
        client.view("X").number("1").send().await.unwrap();
        let sid = session_of(&requests_to(&server, &dfs("View")).await[0]).unwrap();
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(sid, expected["KDSVCSessionId"].as_str().unwrap());
    }
}

#[tokio::test]
async fn clones_share_the_session() {
    let server = MockServer::start().await;
    mount_logins(&server, "ValidateUser").await;
    Mock::given(path(dfs("View")))
        .respond_with(json_response(VIEW_OK))
        .mount(&server)
        .await;
    let a = password_client(&server);
    let b = a.clone();
    a.view("X").number("1").send().await.unwrap();
    b.view("X").number("2").send().await.unwrap();
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        1
    );
    let independent = password_client(&server);
    independent.view("X").number("3").send().await.unwrap();
    assert_eq!(
        requests_to(&server, &login_path("ValidateUser"))
            .await
            .len(),
        2,
        "another client has its own jar"
    );
}

#[tokio::test]
async fn a_login_answer_that_cannot_be_read_is_never_quoted() {
    const SESSION: &str = "c7e5f1a2-9b3d-4e6f-8a1b-2c3d4e5f6a7b";
    for (status, body) in [
        (
            200,
            format!(r#"{{"Message":null,"LoginResultType":1,"KDSVCSessionId":"{SESSION}","Cont"#),
        ),
        (
            502,
            format!("<html>upstream sent KDSVCSessionId={SESSION}</html>"),
        ),
        (
            200,
            format!(r#"response_error:{{"Message":"session {SESSION} busy"}}"#),
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(path(login_path("ValidateUser")))
            .respond_with(ResponseTemplate::new(status).set_body_string(body.clone()))
            .mount(&server)
            .await;
        let err = password_client(&server)
            .view("X")
            .number("1")
            .send()
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SESSION), "{body}: {shown}");
        assert!(shown.contains("login answer of"), "{shown}");
    }
}
