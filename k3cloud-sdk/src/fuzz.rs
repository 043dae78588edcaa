//! Fuzz tests: every decoder of a server answer, fed the captured answers of
//! `reference/k3cloud-wire` and millions of mutants of them (see the `fuzz-kit` crate). An
//! answer, however broken, gives a value or a typed error: never a panic, and a login answer
//! never an error that quotes its session id.
//! `FUZZ_CASES=10000000 cargo test --release -p k3cloud-sdk fuzz_`.

use bytes::Bytes;
use serde_json::Value;

use crate::auth::parse_login;
use crate::response::{attribute, check, status_of, write_status};

/// A session id as a login answer carries it.
const SESSION: &str = "fuzz-session-3d9e71c0";

/// Every JSON object, array and answer text in the captured answers, and login answers
/// carrying [`SESSION`].
fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../reference/k3cloud-wire");
    let mut out = fuzz_kit::json_parts(std::path::Path::new(dir));
    for login in [
        serde_json::json!({"LoginResultType": 1, "KDSVCSessionId": SESSION, "Message": null,
                           "Context": {"UserName": "webapi", "SessionId": SESSION}}),
        serde_json::json!({"LoginResultType": 0, "KDSVCSessionId": SESSION,
                           "Message": "用户名或密码错误"}),
    ] {
        out.push(login.to_string().into_bytes());
    }
    out
}

/// Runs one answer through every decoder; `true` when the answer passed the check.
fn decode_everything(status: u16, body: &[u8]) -> bool {
    let _ =
        crate::form::multi_row_outcome("BatchSave", check(status, Bytes::copy_from_slice(body)));
    let Ok(answer) = check(status, Bytes::copy_from_slice(body)) else {
        return false;
    };
    let _ = answer.decode::<Vec<Vec<Value>>>();
    let _ = crate::query::decode_rows_for_tests(&answer);
    let _ = crate::form::decode_save(answer.clone());
    let _ = crate::form::decode_push(answer.clone());
    if let Ok(value) = answer.into_value() {
        let _ = write_status(&value);
        if let Ok(status) = status_of(&value, body) {
            let _ = attribute(3, &status);
        }
        // A login answer that cannot be read names no session id.
        let session_in_body = value.get("KDSVCSessionId").and_then(Value::as_str) == Some(SESSION);
        if let Err(e) = parse_login(&value)
            && session_in_body
        {
            let text = format!("{e} {e:?}");
            assert!(
                !text.contains(SESSION),
                "a login error quotes the session: {text}"
            );
        }
    }
    true
}

#[test]
fn fuzz_every_answer_decoder() {
    fuzz_kit::Fuzz::new("k3cloud-sdk answers", 20_000)
        .corpus(corpus())
        .dictionary([
            "Result",
            "ResponseStatus",
            "IsSuccess",
            "Errors",
            "SuccessEntitys",
            "MsgCode",
            "DIndex",
            "Id",
            "Number",
            "ErrorCode",
            "NeedReturnData",
            "LoginResultType",
            "KDSVCSessionId",
            "Message",
            "FieldName",
            "response_error:",
            "[[",
            "]]",
        ])
        .run(|body| decode_everything(if body.len() % 13 == 0 { 500 } else { 200 }, body));
}
