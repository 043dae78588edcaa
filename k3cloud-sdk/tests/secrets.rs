//! No credential ever reaches `Debug`, `Display` or an error (`tracing` output: see
//! `tracing_spans.rs`).

mod common;

use common::*;
use k3cloud_sdk::{Auth, Client};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Every secret the tests use: passwords, app secrets, the secret half of app ids, and the
/// session ids the server hands out.
pub(crate) const SECRETS: [&str; 6] = [
    PASSWORD,
    APP_SECRET,
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
    "session-id-must-not-leak",
    "aspnet-must-not-leak",
    "fb7d46647ac346dbb5fcd45b65512a45",
];

pub(crate) fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks `{secret}`:\n{text}");
    }
}

fn every_auth() -> Vec<Auth> {
    vec![
        Auth::signed(APP_ID, APP_SECRET),
        Auth::password(PASSWORD),
        Auth::app_secret(APP_ID, APP_SECRET),
        Auth::sign(APP_ID, "fb7d46647ac346dbb5fcd45b65512a45"),
    ]
}

#[tokio::test]
async fn debug_of_credentials_builders_and_clients_shows_no_secret() {
    let server = MockServer::start().await;
    Mock::given(path(format!("{AUTH}.ValidateUser.common.kdsvc")))
        .respond_with(
            json_response(&login_ok("session-id-must-not-leak")).append_header(
                "set-cookie",
                "ASP.NET_SessionId=aspnet-must-not-leak; path=/",
            ),
        )
        .mount(&server)
        .await;
    for auth in every_auth() {
        assert_clean("Auth Debug", &format!("{auth:?}"));
        let builder = Client::builder(server.uri())
            .account(ACCT)
            .user(USER)
            .auth(auth.clone());
        assert_clean("ClientBuilder Debug", &format!("{builder:?}"));
        let client = builder.build().unwrap();
        assert_clean("Client Debug", &format!("{client:?}"));
    }
    // A client holding a live session and its cookies.
    let client = password_client(&server);
    let info = client.login().await.unwrap();
    assert_clean("LoginInfo Debug", &format!("{info:?}"));
    let shown = format!("{client:?}");
    assert!(shown.contains("logged_in: true"), "{shown}");
    assert_clean("Client Debug after login", &shown);
}

#[tokio::test]
async fn errors_show_no_secret() {
    let server = MockServer::start().await;
    Mock::given(path(format!("{AUTH}.ValidateUser.common.kdsvc")))
        .respond_with(json_response(
            r#"{"LoginResultType":0,"Message":"用户名或密码错误"}"#,
        ))
        .mount(&server)
        .await;
    Mock::given(path(format!("{DFS}.Save.common.kdsvc")))
        .respond_with(ResponseTemplate::new(500).set_body_string("<html>boom</html>"))
        .mount(&server)
        .await;
    let err = password_client(&server).login().await.unwrap_err();
    assert_clean("login error", &format!("{err} / {err:?}"));
    for auth in every_auth() {
        let client = builder(&server).auth(auth).build().unwrap();
        let err = client.save("X").model(json!({})).send().await.unwrap_err();
        assert_clean("save error", &format!("{err} / {err:?}"));
    }
    // Unreachable server: reqwest errors name the URL, which carries no secret here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(format!("http://127.0.0.1:{port}"))
        .account(ACCT)
        .user(USER)
        .auth(Auth::signed(APP_ID, APP_SECRET))
        .build()
        .unwrap();
    let err = client.view("X").number("1").send().await.unwrap_err();
    assert_clean("connect error", &format!("{err} / {err:?}"));
}

#[tokio::test]
async fn a_login_answer_that_does_not_decode_is_not_quoted() {
    let server = MockServer::start().await;
    // A success with a `Context` that is not an object: the session id next to it must not
    // reach the decode error's snippet.
    Mock::given(path(format!("{AUTH}.ValidateUser.common.kdsvc")))
        .respond_with(json_response(
            r#"{"LoginResultType":1,"KDSVCSessionId":"session-id-must-not-leak","Context":"odd"}"#,
        ))
        .mount(&server)
        .await;
    let err = password_client(&server).login().await.unwrap_err();
    assert!(matches!(err, k3cloud_sdk::Error::Decode { .. }), "{err:?}");
    assert_clean("login decode error", &format!("{err} / {err:?}"));
}
