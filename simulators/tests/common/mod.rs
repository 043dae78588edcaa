//! Helpers shared by the integration tests: raw HTTP against a sandbox, no SDK.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use fxk3_simulators::Sandbox;
use serde_json::{Value, json};

/// The in-repo protocol reference (`CARGO_MANIFEST_DIR/../reference`).
pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../reference")
}

/// A reference fixture as JSON.
pub fn fixture(dir: &str, name: &str) -> Value {
    let path = reference_dir().join(dir).join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reference fixture {} missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A `K3Cloud` client with a password session (`ValidateUser`).
pub struct K3 {
    pub http: reqwest::Client,
    pub url: String,
    pub sid: String,
}

impl K3 {
    pub async fn login(sandbox: &Sandbox) -> Self {
        let http = reqwest::Client::new();
        let cfg = &sandbox.config().k3cloud;
        let answer: Value = http
            .post(format!(
                "{}Kingdee.BOS.WebApi.ServicesStub.AuthService.ValidateUser.common.kdsvc",
                sandbox.k3cloud_url()
            ))
            .json(&json!({"acctID": cfg.acct_id, "username": cfg.user_name, "password": cfg.password, "lcid": 2052}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sid = answer["KDSVCSessionId"]
            .as_str()
            .expect("login")
            .to_string();
        Self {
            http,
            url: sandbox.k3cloud_url(),
            sid,
        }
    }

    pub fn request(&self, method: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!(
                "{}Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.{method}.common.kdsvc",
                self.url
            ))
            .header("kdservice-sessionid", &self.sid)
            .json(body)
    }

    /// Calls `method` with `{"formid": form, "data": data}` (or `{"data": data}` without a form).
    pub async fn call(&self, method: &str, form: Option<&str>, data: Value) -> Value {
        let body = match form {
            Some(f) => json!({"formid": f, "data": data}),
            None => json!({"data": data}),
        };
        let text = self
            .request(method, &body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: {e}: {text}"))
    }
}

/// `Result.ResponseStatus` of an answer.
pub fn status(answer: &Value) -> &Value {
    &answer["Result"]["ResponseStatus"]
}

/// A Fxiaoke client with a `corpAccessToken` of the demo app, acting as the admin.
pub struct Fx {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
    pub corp_id: String,
    pub user: String,
}

pub const ADMIN: &str = "FSUID_0123456789ABCDEF0123456789ABCDEF";
pub const LISI: &str = "FSUID_FEDCBA9876543210FEDCBA9876543210";

impl Fx {
    pub async fn token(sandbox: &Sandbox) -> Self {
        let http = reqwest::Client::new();
        let app = &sandbox.config().fxiaoke.apps[0];
        let answer: Value = http
            .post(format!("{}/cgi/corpAccessToken/get/V2", sandbox.fxiaoke_url()))
            .json(&json!({"appId": app.app_id, "appSecret": app.app_secret, "permanentCode": app.permanent_code}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["errorCode"], 0, "{answer}");
        Self {
            http,
            url: sandbox.fxiaoke_url(),
            token: answer["corpAccessToken"].as_str().unwrap().to_string(),
            corp_id: answer["corpId"].as_str().unwrap().to_string(),
            user: ADMIN.to_string(),
        }
    }

    /// The body with the legacy auth fields added.
    pub fn auth(&self, mut body: Value) -> Value {
        body["corpAccessToken"] = json!(self.token);
        body["corpId"] = json!(self.corp_id);
        body["currentOpenUserId"] = json!(self.user);
        body
    }

    pub async fn raw(&self, path: &str, body: &Value) -> Value {
        let text = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    /// POSTs `body` (auth added) to `path`.
    pub async fn call(&self, path: &str, body: Value) -> Value {
        let body = self.auth(body);
        self.raw(path, &body).await
    }

    /// `/cgi/crm/v2/data/query` (or the custom path for `__c` objects).
    pub async fn query(&self, api: &str, search: Value) -> Value {
        let path = if api.ends_with("__c") {
            "/cgi/crm/custom/v2/data/query"
        } else {
            "/cgi/crm/v2/data/query"
        };
        self.call(
            path,
            json!({"data": {"dataObjectApiName": api, "search_query_info": search}}),
        )
        .await
    }

    /// Creates a record; answers the envelope.
    pub async fn create(&self, api: &str, mut object_data: Value, details: Option<Value>) -> Value {
        object_data["dataObjectApiName"] = json!(api);
        let mut data = json!({"object_data": object_data});
        if let Some(d) = details {
            data["details"] = d;
        }
        let path = if api.ends_with("__c") {
            "/cgi/crm/custom/v2/data/create"
        } else {
            "/cgi/crm/v2/data/create"
        };
        self.call(path, json!({"triggerWorkFlow": false, "data": data}))
            .await
    }
}

/// Every key of `expected` is in `actual` with a value of the same JSON type (a null on
/// either side passes); arrays compare their first elements, and a non-empty expected
/// array needs a non-empty actual one.
pub fn assert_shape(expected: &Value, actual: &Value, path: &str, skip: &[&str]) {
    if skip.contains(&path) || expected.is_null() || actual.is_null() {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let sub = format!("{path}.{k}");
                let Some(av) = a.get(k) else {
                    panic!("{sub} missing in {actual}");
                };
                assert_shape(v, av, &sub, skip);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(first) = e.first() {
                assert!(!a.is_empty(), "{path}: expected elements, got []");
                assert_shape(first, &a[0], &format!("{path}[0]"), skip);
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: {expected} vs {actual}"),
    }
}

/// Like [`assert_shape`], and objects also have no keys that `expected` lacks: the same keys
/// and nesting as a real answer. Paths in `skip` (whose contents depend on the request, such
/// as `NeedReturnData`) are not compared.
pub fn assert_same_shape(expected: &Value, actual: &Value, path: &str, skip: &[&str]) {
    if skip.contains(&path) {
        return;
    }
    if let (Value::Object(e), Value::Object(a)) = (expected, actual) {
        let extra: Vec<&String> = a.keys().filter(|k| !e.contains_key(*k)).collect();
        assert!(extra.is_empty(), "{path}: keys {extra:?} not in {expected}");
        for (k, v) in e {
            if let Some(av) = a.get(k) {
                assert_same_shape(v, av, &format!("{path}.{k}"), skip);
            }
        }
    }
    if let (Value::Array(e), Value::Array(a)) = (expected, actual)
        && let (Some(ef), Some(af)) = (e.first(), a.first())
    {
        assert_same_shape(ef, af, &format!("{path}[0]"), skip);
    }
    assert_shape(expected, actual, path, skip);
}
