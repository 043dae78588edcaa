//! Fuzz tests: every decoder of a server answer, fed the captured answers of
//! `reference/fxiaoke-wire` and millions of mutants of them (see the `fuzz-kit` crate). An
//! answer, however broken, gives a value or a typed error: never a panic, and never an error
//! that quotes a secret. `FUZZ_CASES=10000000 cargo test --release -p fxiaoke-sdk fuzz_`.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::Endpoint;
use crate::response::{self, Context, Data, Decoder, Whole};
use crate::types::{AccountObj, ContactObj, ProductObj, SalesOrderObj, SalesOrderProductObj};

/// A token as a server could echo it back in any field.
const SECRET: &str = "FUZZ-SECRET-6f1c2a9b";

/// Every JSON object, array and answer text in the captured answers, and answers carrying
/// [`SECRET`].
fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../reference/fxiaoke-wire");
    let mut out = fuzz_kit::json_parts(std::path::Path::new(dir));
    out.push(
        serde_json::json!({"errorCode": 0, "corpAccessToken": SECRET, "corpId": "FSCID_1",
                           "expiresIn": 7200})
        .to_string()
        .into_bytes(),
    );
    out.push(
        serde_json::json!({"errorCode": 20016, "errorMessage": format!("token {SECRET} expired")})
            .to_string()
            .into_bytes(),
    );
    out
}

type Rows<T> = crate::query::QueryData<T>;

fn fast<D: Decoder>(d: &D, status: u16, body: &[u8]) {
    let _ = d.fast(status, body);
}

/// Runs one answer through every decoder; `true` when the envelope check accepted it.
fn decode_everything(status: u16, body: &[u8]) -> bool {
    // The secret counts as one when every copy of it stands under the token's key (a mutant
    // can rename the key, and a value under any other name is not known to be a token).
    let text = String::from_utf8_lossy(body);
    let keyed = format!("\"corpAccessToken\":\"{SECRET}\"");
    let secret_in_body =
        text.contains(SECRET) && text.matches(SECRET).count() == text.matches(&keyed).count();
    let assert_quotes_no_secret = |e: &crate::Error| {
        if secret_in_body {
            let text = format!("{e} {e:?}");
            assert!(!text.contains(SECRET), "an error quotes the token: {text}");
        }
    };
    fast(&Data::<Rows<Map<String, Value>>>::NEW, status, body);
    fast(&Data::<Rows<AccountObj>>::NEW, status, body);
    fast(&Data::<Rows<ContactObj>>::NEW, status, body);
    fast(&Data::<Rows<SalesOrderObj>>::NEW, status, body);
    fast(&Data::<Rows<SalesOrderProductObj>>::NEW, status, body);
    fast(&Data::<Rows<ProductObj>>::NEW, status, body);
    fast(&Data::<crate::meta::ListData>::NEW, status, body);
    fast(&Data::<crate::meta::DescribeData>::NEW, status, body);
    fast(
        &crate::crm::WriteAnswer {
            operation: "crm.create",
        },
        status,
        body,
    );

    let secrets = [SECRET];
    let ctx = Context {
        path: "/cgi/crm/v2/data/query",
        endpoint: Endpoint::Query,
        secrets: &secrets,
    };
    let answer = match response::check(status, Bytes::copy_from_slice(body), &ctx) {
        Ok(answer) => answer,
        Err(e) => {
            assert_quotes_no_secret(&e);
            return false;
        }
    };
    macro_rules! slow {
        ($decoder:expr) => {
            if let Err(e) = $decoder.slow(answer.clone()) {
                assert_quotes_no_secret(&e);
            }
        };
    }
    slow!(Whole);
    slow!(Data::<Rows<AccountObj>>::NEW);
    slow!(Data::<Rows<SalesOrderObj>>::NEW);
    slow!(Data::<crate::meta::DescribeData>::NEW);
    slow!(Data::<crate::meta::ListData>::NEW);
    slow!(crate::crm::WriteAnswer {
        operation: "crm.update",
    });
    for e in [
        answer.decode::<crate::auth::TokenAnswer>().err(),
        answer.decode::<crate::org::UserListAnswer>().err(),
        answer.decode::<crate::org::DepartmentListAnswer>().err(),
        answer.decode::<crate::org::UsersPage>().err(),
        answer.clone().into_value().err(),
    ]
    .into_iter()
    .flatten()
    {
        assert_quotes_no_secret(&e);
    }
    true
}

#[test]
fn fuzz_every_answer_decoder() {
    fuzz_kit::Fuzz::new("fxiaoke-sdk answers", 20_000)
        .corpus(corpus())
        .dictionary([
            "errorCode",
            "errorMessage",
            "errorDescription",
            "traceId",
            "data",
            "dataList",
            "corpAccessToken",
            "expiresIn",
            "corpId",
            "_id",
            "dataId",
            "offset",
            "limit",
            "total",
            "fields",
            "describe",
            "options",
            "userList",
            "departments",
        ])
        .run(|body| decode_everything(if body.len() % 17 == 0 { 502 } else { 200 }, body));
}
