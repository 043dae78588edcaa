//! No credential ever reaches `Debug`, `Display`, an error or `tracing` output; and the
//! per-call span carries operation, form id, duration and outcome.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use k3cloud_sdk::{Auth, Client};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Every secret the tests use: passwords, app secrets, the secret half of app ids, and the
/// session ids the server hands out.
const SECRETS: [&str; 6] = [
    PASSWORD,
    APP_SECRET,
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
    "session-id-must-not-leak",
    "aspnet-must-not-leak",
    "fb7d46647ac346dbb5fcd45b65512a45",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks `{secret}`:\n{text}");
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
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
async fn tracing_output_shows_spans_but_no_secret() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(path(format!("{AUTH}.ValidateUser.common.kdsvc")))
        .respond_with(
            json_response(&login_ok("session-id-must-not-leak"))
                .append_header(
                    "set-cookie",
                    "kdservice-sessionid=session-id-must-not-leak; path=/",
                )
                .append_header(
                    "set-cookie",
                    "ASP.NET_SessionId=aspnet-must-not-leak; path=/",
                ),
        )
        .mount(&server)
        .await;
    Mock::given(path(format!("{DFS}.Save.common.kdsvc")))
        .respond_with(json_response(SAVE_OK))
        .mount(&server)
        .await;
    Mock::given(path(format!("{DFS}.View.common.kdsvc")))
        .respond_with(json_response(SESSION_LOST))
        .mount(&server)
        .await;
    let client = password_client(&server);
    client
        .save("BD_MATERIAL")
        .model(json!({"FNumber": "M1"}))
        .send()
        .await
        .unwrap();
    let _ = client
        .view("BD_Customer")
        .number("C1")
        .send()
        .await
        .unwrap_err();
    let signed = signed_client(&server);
    signed
        .save("BD_MATERIAL")
        .model(json!({}))
        .send()
        .await
        .unwrap();

    let log = captured.text();
    assert!(log.contains("k3cloud.call"), "{log}");
    assert!(
        log.contains("operation=\"Save\"") || log.contains("operation=Save"),
        "{log}"
    );
    assert!(
        log.contains("form_id=\"BD_MATERIAL\"") || log.contains("form_id=BD_MATERIAL"),
        "{log}"
    );
    assert!(
        log.contains("outcome=\"ok\"") || log.contains("outcome=ok"),
        "{log}"
    );
    assert!(
        log.contains("session_expired"),
        "the View outcome is recorded: {log}"
    );
    assert!(log.contains("duration_ms="), "{log}");
    assert!(log.contains("k3cloud.login"), "{log}");
    assert_clean("tracing output", &log);
}
