//! The Fxiaoke answer: HTTP status and body → a checked answer, or a typed [`Error`].
//!
//! Fxiaoke reports every failure with HTTP 200 and a body `{"errorCode": <non-zero>, …}`;
//! success is `errorCode: 0` with the payload under `data` or at the top level, depending on
//! the endpoint. Everything is decided here, once.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::de;
use crate::error::{ApiError, Endpoint, Error, Result};

/// An answer that passed [`check`]: a JSON object with `errorCode: 0`.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) bytes: Bytes,
    /// `traceId`, when sent.
    pub(crate) trace_id: Option<String>,
}

impl Answer {
    /// The answer as a JSON value.
    pub(crate) fn into_value(self) -> Result<Value> {
        decode_bytes(&self.bytes)
    }

    /// Decodes the answer into `T`, reporting the JSON path of the first mismatch.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        decode_bytes(&self.bytes)
    }
}

/// How a call's successful answer is decoded.
pub(crate) trait Decoder: Sync {
    /// What the call returns.
    type Output: Send;

    /// A one-pass decode of a successful answer, with its trace id; `None` sends the answer
    /// through [`check`] and [`Decoder::slow`] (errors, odd shapes).
    fn fast(&self, status: u16, body: &[u8]) -> Option<(Self::Output, Option<String>)>;

    /// Decodes an answer that passed [`check`].
    fn slow(&self, answer: Answer) -> Result<Self::Output>;
}

/// The checked answer itself.
pub(crate) struct Whole;

impl Decoder for Whole {
    type Output = Answer;

    fn fast(&self, _: u16, _: &[u8]) -> Option<(Answer, Option<String>)> {
        None
    }

    fn slow(&self, answer: Answer) -> Result<Answer> {
        Ok(answer)
    }
}

/// The payload under `data`, decoded together with the envelope in one pass.
pub(crate) struct Data<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Data<T> {
    pub(crate) const NEW: Data<T> = Data(std::marker::PhantomData);
}

impl<T: DeserializeOwned + Send> Decoder for Data<T> {
    /// The payload and the trace id.
    type Output = (T, Option<String>);

    fn fast(&self, status: u16, body: &[u8]) -> Option<(Self::Output, Option<String>)> {
        if status != 200 {
            return None;
        }
        let parsed: Enveloped<T> = serde_json::from_slice(body).ok()?;
        let code = de::to_i64(parsed.error_code.as_ref()?)?;
        if code != 0 {
            return None;
        }
        let data = parsed.data?;
        Some(((data, parsed.trace_id.clone()), parsed.trace_id))
    }

    fn slow(&self, answer: Answer) -> Result<Self::Output> {
        #[derive(Deserialize)]
        struct Payload<T> {
            data: T,
        }
        let trace_id = answer.trace_id.clone();
        answer.decode::<Payload<T>>().map(|p| (p.data, trace_id))
    }
}

/// `{errorCode, traceId, data, …}` in one pass; other keys skipped.
struct Enveloped<T> {
    error_code: Option<Value>,
    trace_id: Option<String>,
    data: Option<T>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Enveloped<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<fn() -> T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Enveloped<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an answer object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Enveloped<T>, A::Error> {
                let mut out = Enveloped {
                    error_code: None,
                    trace_id: None,
                    data: None,
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "errorCode" => out.error_code = Some(map.next_value()?),
                        "traceId" => out.trace_id = map.next_value()?,
                        "data" => out.data = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Decodes `body` into `T`: a fast pass, and on failure a second pass that tracks the path.
pub(crate) fn decode_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let first = match serde_json::from_slice::<T>(body) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if !first.is_data() {
        return Err(Error::NotJson {
            status: 200,
            snippet: snippet(body),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => Err(Error::Decode {
            path: e.path().to_string(),
            message: e.inner().to_string(),
            snippet: snippet(body),
        }),
        Ok(_) => Err(Error::Decode {
            path: String::new(),
            message: first.to_string(),
            snippet: snippet(body),
        }),
    }
}

/// Decodes a JSON value into `T`, reporting the path of the first mismatch.
pub(crate) fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| Error::Decode {
        path: e.path().to_string(),
        message: e.inner().to_string(),
        snippet: String::new(),
    })
}

/// The beginning of a body, for error messages: lossy UTF-8, whitespace collapsed. A body
/// that names a token or credential key has those values taken out first (whatever endpoint
/// answered: a proxy can send one answer for another), or is not quoted when it cannot be
/// read as JSON.
pub(crate) fn snippet(body: &[u8]) -> String {
    let names_a_secret = SECRET_KEYS
        .iter()
        .any(|k| body.windows(k.len()).any(|w| w == k.as_bytes()));
    if names_a_secret {
        return match serde_json::from_slice::<Value>(body) {
            Ok(mut v) => {
                redact_secret_keys(&mut v);
                fxk3_kernel::text::snippet(v.to_string().as_bytes())
            }
            Err(_) => format!(
                "[answer of {} bytes not shown: it names a token]",
                body.len()
            ),
        };
    }
    fxk3_kernel::text::snippet(body)
}

/// What [`check`] needs to know about the call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The endpoint path, kept in [`ApiError::endpoint`].
    pub(crate) path: &'a str,
    pub(crate) endpoint: Endpoint,
    /// Secret values (the token in use; for the token endpoint the app secret and permanent
    /// code) that must not survive into an error, whatever the server echoed.
    pub(crate) secrets: &'a [&'a str],
}

impl Context<'_> {
    fn scrub(&self, text: String) -> String {
        scrub(text, self.secrets)
    }
}

pub(crate) use fxk3_kernel::text::scrub;

/// The envelope fields every answer has; the payload is skipped here.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "errorCode", default)]
    error_code: Option<Value>,
    #[serde(rename = "errorMessage", default, deserialize_with = "de::opt_text")]
    error_message: Option<String>,
    #[serde(
        rename = "errorDescription",
        default,
        deserialize_with = "de::opt_text"
    )]
    error_description: Option<String>,
    #[serde(rename = "traceId", default, deserialize_with = "de::opt_text")]
    trace_id: Option<String>,
}

/// Classifies an HTTP answer: `Ok` for a JSON object with `errorCode: 0`, else the typed error.
pub(crate) fn check(status: u16, body: Bytes, ctx: &Context<'_>) -> Result<Answer> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let trimmed = &body[start..];
    let trimmed = trimmed.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(trimmed);
    let safe_snippet = |bytes: &[u8]| {
        if ctx.endpoint == Endpoint::Token {
            redact_token_body(bytes, ctx)
        } else {
            ctx.scrub(snippet(bytes))
        }
    };

    if status != 200 {
        return Err(Error::Http {
            status,
            snippet: safe_snippet(trimmed),
        });
    }
    if trimmed.first() != Some(&b'{') {
        return Err(Error::NotJson {
            status,
            snippet: safe_snippet(trimmed),
        });
    }
    let envelope: Envelope = match serde_json::from_slice(trimmed) {
        Ok(e) => e,
        Err(e) if e.is_data() => {
            return Err(Error::Decode {
                path: String::new(),
                message: e.to_string(),
                snippet: safe_snippet(trimmed),
            });
        }
        Err(_) => {
            return Err(Error::NotJson {
                status,
                snippet: safe_snippet(trimmed),
            });
        }
    };
    let code = match &envelope.error_code {
        Some(v) => de::to_i64(v).ok_or_else(|| Error::Decode {
            path: "errorCode".into(),
            message: "errorCode is not an integer".into(),
            snippet: safe_snippet(trimmed),
        })?,
        None => {
            return Err(Error::Decode {
                path: "errorCode".into(),
                message: "the answer has no errorCode".into(),
                snippet: safe_snippet(trimmed),
            });
        }
    };
    if code == 0 {
        return Ok(Answer {
            trace_id: envelope.trace_id,
            bytes: body,
        });
    }
    let raw = if ctx.endpoint == Endpoint::Token {
        redact_token_body(trimmed, ctx)
    } else {
        ctx.scrub(String::from_utf8_lossy(trimmed).into_owned())
    };
    Err(Error::from_api(
        ApiError {
            code,
            message: ctx.scrub(envelope.error_message.unwrap_or_default()),
            description: envelope.error_description.map(|d| ctx.scrub(d)),
            trace_id: envelope.trace_id,
            endpoint: ctx.path.to_owned(),
            raw,
        },
        ctx.endpoint,
    ))
}

/// Keys whose values are credentials or tokens in token-endpoint bodies.
const SECRET_KEYS: [&str; 6] = [
    "corpAccessToken",
    "accessToken",
    "appAccessToken",
    "appSecret",
    "permanentCode",
    "refreshToken",
];

/// A token-endpoint body fit for an error: token and credential values replaced.
fn redact_token_body(body: &[u8], ctx: &Context<'_>) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut v) => {
            redact_secret_keys(&mut v);
            ctx.scrub(v.to_string())
        }
        // Truncated or malformed, the token cannot be found and taken out: quote nothing.
        Err(_) => format!("[token answer of {} bytes not shown]", body.len()),
    }
}

/// Replaces the values of [`SECRET_KEYS`], at any depth.
fn redact_secret_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact_secret_keys(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secret_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CTX: Context<'static> = Context {
        path: "/cgi/crm/v2/data/query",
        endpoint: Endpoint::Query,
        secrets: &["SECRET-TOKEN-VALUE"],
    };

    fn err(status: u16, body: &str) -> Error {
        check(status, Bytes::from(body.to_owned()), &CTX).unwrap_err()
    }

    #[test]
    fn success_passes_with_its_trace_id() {
        let a = check(
            200,
            Bytes::from_static(b" \xEF\xBB\xBF{\"errorCode\":0,\"traceId\":\"E-O.1\",\"data\":{}}"),
            &CTX,
        )
        .unwrap();
        assert_eq!(a.trace_id.as_deref(), Some("E-O.1"));
        let a = check(200, Bytes::from_static(br#"{"errorCode":"0"}"#), &CTX).unwrap();
        assert_eq!(a.trace_id, None);
    }

    #[test]
    fn failures_are_typed() {
        let e = err(
            200,
            r#"{"errorDescription":"offset 不能超过10000","errorMessage":"offset out of range 10000","errorCode":10013}"#,
        );
        let Error::OffsetOutOfRange(a) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(a.code, 10013);
        assert_eq!(a.message, "offset out of range 10000");
        assert_eq!(a.description.as_deref(), Some("offset 不能超过10000"));
        assert_eq!(a.endpoint, "/cgi/crm/v2/data/query");
        assert!(a.raw.contains("10013"));
        assert!(matches!(
            err(502, "<html>Bad Gateway</html>"),
            Error::Http { status: 502, snippet } if snippet == "<html>Bad Gateway</html>"
        ));
        assert!(matches!(
            err(200, "<!DOCTYPE html><html></html>"),
            Error::NotJson { status: 200, .. }
        ));
        assert!(matches!(err(200, "[1]"), Error::NotJson { .. }));
        assert!(matches!(
            err(200, r#"{"errorCode":0"#),
            Error::NotJson { .. }
        ));
        assert!(matches!(err(200, "{}"), Error::Decode { path, .. } if path == "errorCode"));
        assert!(
            matches!(err(200, r#"{"errorCode":"x"}"#), Error::Decode { path, .. } if path == "errorCode")
        );
        assert!(matches!(
            err(200, r#"{"errorCode":[1]}"#),
            Error::Decode { .. }
        ));
    }

    #[test]
    fn echoed_secrets_are_scrubbed() {
        let e = err(
            200,
            r#"{"errorCode":20016,"errorMessage":"bad token SECRET-TOKEN-VALUE"}"#,
        );
        let a = e.api_error().unwrap();
        assert!(!a.message.contains("SECRET-TOKEN-VALUE"));
        assert!(!a.raw.contains("SECRET-TOKEN-VALUE"));
        assert!(!format!("{e} {e:?}").contains("SECRET-TOKEN-VALUE"));
    }

    #[test]
    fn token_bodies_in_errors_are_redacted() {
        let ctx = Context {
            path: "/cgi/corpAccessToken/get/V2",
            endpoint: Endpoint::Token,
            secrets: &["app-secret-value"],
        };
        let e = check(
            200,
            Bytes::from_static(
                br#"{"errorCode":10006,"errorMessage":"appSecret app-secret-value illegal","corpAccessToken":"TOKEN123"}"#,
            ),
            &ctx,
        )
        .unwrap_err();
        let Error::AuthFailed(a) = &e else {
            panic!("{e:?}")
        };
        assert!(!a.raw.contains("TOKEN123") && !a.raw.contains("app-secret-value"));
        assert!(!a.message.contains("app-secret-value"));
        let e = check(
            500,
            Bytes::from_static(br#"{"corpAccessToken":"TOKEN123"}"#),
            &ctx,
        )
        .unwrap_err();
        assert!(!format!("{e:?}").contains("TOKEN123"));
        // Truncated, at 200 and at 502: nothing of the body is quoted.
        for status in [200, 502] {
            let e = check(
                status,
                Bytes::from_static(br#"{"errorCode":0,"corpAccessToken":"TOKEN123","corpId":"FS"#),
                &ctx,
            )
            .unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("TOKEN123"), "{shown}");
            assert!(
                shown.contains("[token answer of 56 bytes not shown]"),
                "{shown}"
            );
        }
    }

    #[test]
    fn decode_reports_the_path() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            data: Inner,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            #[serde(rename = "dataList")]
            data_list: Vec<u32>,
        }
        let e = decode_bytes::<T>(br#"{"data":{"dataList":[1,"x"]}}"#).unwrap_err();
        assert!(
            matches!(&e, Error::Decode { path, .. } if path == "data.dataList[1]"),
            "{e:?}"
        );
        assert!(matches!(
            decode_bytes::<T>(b"{\"data\""),
            Err(Error::NotJson { .. })
        ));
    }

    fn decode_everything(bytes: &[u8]) {
        use crate::crm::WriteResult;
        use crate::org::User;
        use crate::query::QueryData;
        use crate::types::{
            AccountObj, ContactObj, ProductObj, SalesOrderObj, SalesOrderProductObj,
        };
        let body = Bytes::copy_from_slice(bytes);
        for endpoint in [Endpoint::Token, Endpoint::Query, Endpoint::Other] {
            let ctx = Context {
                path: "/cgi/x",
                endpoint,
                secrets: &["secret"],
            };
            if let Ok(answer) = check(200, body.clone(), &ctx) {
                let _ = Data::<QueryData<AccountObj>>::NEW.slow(answer.clone());
                let _ = Data::<QueryData<Value>>::NEW.slow(answer.clone());
                let _ = Data::<SalesOrderObj>::NEW.slow(answer.clone());
                let _ = Data::<crate::meta::ListData>::NEW.slow(answer.clone());
                let _ = Data::<crate::meta::DescribeData>::NEW.slow(answer.clone());
                let _ = answer.decode::<WriteResult>();
                let _ = answer.decode::<crate::org::UserListAnswer>();
                let _ = answer.decode::<crate::org::DepartmentListAnswer>();
                let _ = answer.decode::<crate::org::UsersPage>();
                let _ = answer.decode::<User>();
                let _ = answer.decode::<crate::auth::TokenAnswer>();
                let _ = answer.clone().into_value();
            }
            // The one-pass decoders see every answer first, errors included.
            let _ = Data::<QueryData<AccountObj>>::NEW.fast(200, bytes);
            let _ = Data::<QueryData<Value>>::NEW.fast(200, bytes);
            let _ = Data::<SalesOrderProductObj>::NEW.fast(200, bytes);
            let _ = Data::<ContactObj>::NEW.fast(200, bytes);
            let _ = Data::<ProductObj>::NEW.fast(200, bytes);
            let _ = check(500, body.clone(), &ctx);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_everything(&bytes);
        }

        #[test]
        fn json_shaped_text_never_panics(
            code in prop_oneof![Just("0".to_owned()), Just("\"0\"".to_owned()), any::<i64>().prop_map(|c| c.to_string())],
            payload in "[\\[\\]{}\",:0-9a-zA-Z_ .-]{0,200}",
        ) {
            let body = format!(r#"{{"errorCode":{code},"data":{payload},"dataList":{payload},"describe":{payload},"corpAccessToken":{payload},"expiresIn":{payload}}}"#);
            decode_everything(body.as_bytes());
        }

        #[test]
        fn well_formed_payloads_of_any_shape_never_panic(v in arb_json()) {
            for key in ["data", "userList", "departments", "employees", "empList"] {
                let body = serde_json::json!({"errorCode": 0, key: v.clone(), "dataId": v.clone(), "corpAccessToken": v.clone()});
                decode_everything(body.to_string().as_bytes());
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z_0-9]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("_id".to_owned()),
                        Just("dataList".to_owned()),
                        Just("owner".to_owned()),
                        Just("create_time".to_owned()),
                        Just("fields".to_owned()),
                        Just("describe".to_owned()),
                        Just("options".to_owned()),
                        Just("type".to_owned()),
                        "[a-z_]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
