//! The per-call span carries operation, form id, duration and outcome, and no secret reaches
//! `tracing` output. Alone in its test binary: a thread-scoped subscriber and tests running on
//! other threads race on tracing's per-callsite interest cache.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

const SECRETS: [&str; 5] = [
    PASSWORD,
    APP_SECRET,
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
    "session-id-must-not-leak",
    "aspnet-must-not-leak",
];

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
    for secret in SECRETS {
        assert!(
            !log.contains(secret),
            "tracing output leaks `{secret}`:\n{log}"
        );
    }
}
