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
        }
    }

    /// 20017: no `corpAccessToken` at all (probe: no auth → this text, fxiaoke-wire).
    pub(crate) fn missing_auth() -> Self {
        Self::new(
            20017,
            "corpAccessToken为必填项，不能为空",
            "corpAccessToken为必填项，不能为空",
        )
    }

    /// 20016: unknown or expired token, or a `corpId` that is not the token's. The "crop"
    /// typo is the gateway's, verbatim.
    pub(crate) fn bad_token() -> Self {
        Self::new(
            20016,
            "the cropId,cropAccessToken or authorization is error",
            "corpAccessToken 不存在或者已经过期",
        )
    }

    /// 10006: a path the gateway does not know.
    pub(crate) fn unknown_path(path: &str) -> Self {
        let mut e = Self::new(
            10006,
            format!("the request uri=[{path}], apiName=[null] is not exists"),
            "缺少参数或参数不合法",
        );
        e.gateway = true;
        e
    }

    /// 10006: a token request with a missing or wrong credential (observed for `appSecret`;
    /// the sandbox answers the same way for `appId` and `permanentCode`).
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
            format!("E-O.{}.1000-{}", self.ea, rng.hex(32))
        }
    }

    /// `{"errorCode":0,"errorMessage":…,"errorDescription":…,"traceId":…, …payload}`.
    pub(crate) fn ok(&self, n: u64, crm: bool, payload: Map<String, Value>) -> Value {
        let mut m = Map::new();
        m.insert("errorCode".into(), json!(0));
        // CRM endpoints answer "OK"/"success"; the token and directory ones "success".
        m.insert(
            "errorMessage".into(),
            json!(if crm { "OK" } else { "success" }),
        );
        m.insert("errorDescription".into(), json!("success"));
        m.insert("traceId".into(), json!(self.trace(n, false)));
        m.extend(payload);
        Value::Object(m)
    }

    pub(crate) fn error(&self, n: u64, e: &FxError) -> Value {
        json!({
            "errorCode": e.code,
            "errorMessage": e.message,
            "errorDescription": e.description,
            "traceId": self.trace(n, e.gateway),
        })
    }
}
