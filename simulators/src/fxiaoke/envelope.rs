//! The Fxiaoke answer envelope and the error answers (fxiaoke.md §1, §8).
//!
//! Every answer is HTTP 200 with `errorCode` (0 = success), `errorMessage`,
//! `errorDescription` and `traceId`; the payload sits under `data` or at the top level,
//! depending on the endpoint.

use serde_json::{Map, Value, json};

/// A non-zero answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FxError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) description: String,
    /// Gateway errors carry the gateway's trace id form (`open-api-gateway-web/…`).
    pub(crate) gateway: bool,
    /// Refused before the caller was known (20016, 20017): no `errorDescription`, and a trace
    /// id without an enterprise or employee (`E-O.null.-1000-…`), as the probes answered.
    pub(crate) unauthenticated: bool,
}

impl FxError {
    pub(crate) fn new(
        code: i64,
        message: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            description: description.into(),
            gateway: false,
            unauthenticated: false,
        }
    }

    /// 20017: no `corpAccessToken` at all (probe: no auth → this text, fxiaoke-wire).
    pub(crate) fn missing_auth() -> Self {
        Self {
            unauthenticated: true,
            ..Self::new(20017, "corpAccessToken为必填项，不能为空", "")
        }
    }

    /// 20016: unknown or expired token, or a `corpId` that is not the token's. The "crop"
    /// typo is the gateway's, verbatim.
    pub(crate) fn bad_token() -> Self {
        Self {
            unauthenticated: true,
            ..Self::new(
                20016,
                "the cropId,cropAccessToken or authorization is error",
                "",
            )
        }
    }

    /// 10006: a path the gateway does not know.
    pub(crate) fn unknown_path(path: &str) -> Self {
        // No `errorDescription` in the one report of this answer (fxiaoke-wire).
        let mut e = Self::new(
            10006,
            format!("the request uri=[{path}], apiName=[null] is not exists"),
            "",
        );
        e.gateway = true;
        e
    }

    /// 10006: a token request with a missing or wrong credential. The probes sent a fake
    /// `appId` and `permanentCode` and were told about `appSecret`: callers name `appSecret`
    /// for any wrong credential.
    pub(crate) fn bad_app_param(name: &str) -> Self {
        let mut e = Self::new(
            10006,
            format!("the parameter {name} is missing or illegal"),
            "缺少参数或参数不合法",
        );
        e.gateway = true;
        e
    }

    /// 10013: an offset past the cap.
    pub(crate) fn offset_out_of_range(max: usize) -> Self {
        Self::new(
            10013,
            format!("offset out of range {max}"),
            format!("offset 不能超过{max}"),
        )
    }

    /// 15002 参数不合法, with what is wrong. The reference has no observed text for bad
    /// parameters (limit above 100, offset not a multiple of limit, unknown operator); the
    /// code is the global table's, the wording ours.
    pub(crate) fn param(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self::new(15002, detail.clone(), format!("参数不合法：{detail}"))
    }

    /// The per-interface rate limit: 30004 秒频次超限 or 14001 接口调用超过限制.
    pub(crate) fn rate_limited(code: i64) -> Self {
        let text = if code == 14001 {
            "接口调用超过限制"
        } else {
            "秒频次超限"
        };
        Self::new(code, text, text)
    }

    /// 30002: the day's calls are used up (resets at 00:00 GMT+8).
    pub(crate) fn daily_quota() -> Self {
        Self::new(
            30002,
            "当天访问频次超限（0点重新统计）",
            "当天访问频次超限（0点重新统计）",
        )
    }

    /// 30003: the enterprise bought no Open API quota.
    pub(crate) fn no_quota() -> Self {
        Self::new(
            30003,
            "客户没有购买openapi配额，需要提open api订单进行购买",
            "客户没有购买openapi配额，需要提open api订单进行购买",
        )
    }

    /// `currentOpenUserId` missing (code table: 10010 缺少参数 openUserId).
    pub(crate) fn missing_user() -> Self {
        Self::new(
            10010,
            "currentOpenUserId为必填项，不能为空",
            "缺少参数openUserId",
        )
    }

    /// `currentOpenUserId` / `x-fs-userid` not an employee (code table: 20012).
    pub(crate) fn unknown_user(id: &str) -> Self {
        Self::new(
            20012,
            format!("openUserId[{id}]未找到"),
            "openUserId 未找到",
        )
    }

    /// A body that is not a JSON object. The gateway's answer is not in the reference.
    pub(crate) fn bad_body(detail: &str) -> Self {
        Self::param(format!("请求体不是合法的JSON对象：{detail}"))
    }
}

/// Builds envelopes with trace ids.
#[derive(Debug)]
pub(crate) struct Tracer {
    pub(crate) ea: String,
}

impl Tracer {
    fn trace(&self, n: u64, gateway: bool) -> String {
        let mut rng = crate::rng::SplitMix64::new(n);
        if gateway {
            format!("open-api-gateway-web/{}", rng.hex(12))
        } else {
            // Real ones end in 16 hex digits (fxiaoke.md samples).
            format!("E-O.{}.1000-{}", self.ea, rng.hex(16))
        }
    }

    /// `{"errorCode":0,"errorMessage":…,"errorDescription":"success","traceId":…, …payload}`.
    /// `crm` answers say `"OK"`, the others `"success"`; token answers carry no
    /// `errorDescription` (the documentation's example).
    pub(crate) fn ok(&self, n: u64, kind: OkKind, payload: Map<String, Value>) -> Value {
        let mut m = Map::new();
        m.insert("errorCode".into(), json!(0));
        m.insert(
            "errorMessage".into(),
            json!(if kind == OkKind::Crm { "OK" } else { "success" }),
        );
        if kind != OkKind::Token {
            m.insert("errorDescription".into(), json!("success"));
        }
        m.insert("traceId".into(), json!(self.trace(n, false)));
        m.extend(payload);
        Value::Object(m)
    }

    pub(crate) fn error(&self, n: u64, e: &FxError) -> Value {
        let mut m = Map::new();
        m.insert("errorCode".into(), json!(e.code));
        m.insert("errorMessage".into(), json!(e.message));
        if !e.description.is_empty() {
            m.insert("errorDescription".into(), json!(e.description));
        }
        let trace = if e.unauthenticated {
            let mut rng = crate::rng::SplitMix64::new(n);
            format!("E-O.null.-1000-{}", rng.hex(16))
        } else {
            self.trace(n, e.gateway)
        };
        m.insert("traceId".into(), json!(trace));
        Value::Object(m)
    }
}

/// Which success envelope an answer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OkKind {
    /// CRM data and metadata: `"OK"`.
    Crm,
    /// Directory and messages: `"success"`.
    Other,
    /// The token endpoints: `"success"`, no `errorDescription`.
    Token,
}
