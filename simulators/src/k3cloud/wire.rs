//! Request decoding: the URL scheme and the body encodings real clients send
//! (k3cloud.md §1–2): named JSON (`{"formid","data"}`), positional `{"parameters":[…]}`
//! (also as a JSON string, the .NET port), the legacy Go envelope, and form-urlencoded.

use serde_json::{Map, Value};

/// The service of a `K3Cloud` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    DynamicForm,
    Auth,
    Account,
}

/// Splits `…/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc` into the
/// service and the method name. The method is case-insensitive on the wire (several clients
/// send `save`, `executeBillQuery`), so we return the canonical casing when we know it.
pub(crate) fn parse_path(path: &str) -> Option<(Service, String)> {
    let last = path.rsplit('/').next()?;
    let lower = last.to_ascii_lowercase();
    let stem = lower.strip_suffix(".common.kdsvc")?;
    let stem_orig = &last[..stem.len()];
    let (service, method) = stem_orig.rsplit_once('.')?;
    let service_lower = service.to_ascii_lowercase();
    let service = match service_lower.as_str() {
        "kingdee.bos.webapi.servicesstub.dynamicformservice" => Service::DynamicForm,
        "kingdee.bos.webapi.servicesstub.authservice" => Service::Auth,
        "kingdee.bos.servicefacade.servicesstub.account.accountservice" => Service::Account,
        _ => return None,
    };
    Some((service, canonical_method(method)))
}

const METHODS: &[&str] = &[
    "Save",
    "BatchSave",
    "Draft",
    "View",
    "Delete",
    "Submit",
    "Audit",
    "UnAudit",
    "CancelAssign",
    "Push",
    "ExecuteBillQuery",
    "BillQuery",
    "QueryBusinessInfo",
    "GetDataCenterList",
    "ExcuteOperation",
    "ExecuteOperation",
    "Allocate",
    "CancelAllocate",
    "FlexSave",
    "SendMsg",
    "GroupSave",
    "Disassembly",
    "QueryGroupInfo",
    "WorkflowAudit",
    "GroupDelete",
    "SwitchOrg",
    "GetSysReportData",
    "AttachmentUpload",
    "AttachmentDownLoad",
    "QueryAsyncResult",
    "ValidateUser",
    "ValidateUser2",
    "LoginByAppSecret",
    "LoginByAppSecret2",
    "LoginBySign",
    "LoginBySign2",
    "Logout",
];

/// The canonical casing of a method name (unknown ones are returned as sent).
pub(crate) fn canonical_method(method: &str) -> String {
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_string(), |m| (*m).to_string())
}

/// The decoded arguments of one call: named (case-insensitive) and/or positional.
#[derive(Debug, Default)]
pub(crate) struct Params {
    named: Map<String, Value>,
    positional: Vec<Value>,
    /// Keys of the top-level object (for `beginmethod` of the async mode).
    pub(crate) raw_top: Map<String, Value>,
}

/// Why a body could not be decoded.
#[derive(Debug)]
pub(crate) struct BadBody(pub(crate) String);

pub(crate) fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Params, BadBody> {
    let trimmed = trim_ascii(body);
    let is_form = content_type.is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    }) || (!trimmed.is_empty() && trimmed[0] != b'{' && trimmed[0] != b'[');
    if trimmed.is_empty() {
        return Ok(Params::default());
    }
    if is_form {
        let mut named = Map::new();
        for (k, v) in url::form_urlencoded::parse(trimmed) {
            named.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        return Ok(Params {
            named,
            ..Params::default()
        });
    }
    let value: Value = serde_json::from_slice(trimmed).map_err(|e| BadBody(e.to_string()))?;
    let Value::Object(top) = value else {
        return Err(BadBody("请求数据包不是JSON对象".into()));
    };
    let mut params = Params {
        raw_top: top.clone(),
        ..Params::default()
    };
    for (k, v) in top {
        if k.eq_ignore_ascii_case("parameters") {
            params.positional = match v {
                Value::Array(items) => items,
                // The .NET port sends the array as a JSON string.
                Value::String(s) => match serde_json::from_str(&s) {
                    Ok(Value::Array(items)) => items,
                    _ => return Err(BadBody("parameters 不是数组".into())),
                },
                _ => return Err(BadBody("parameters 不是数组".into())),
            };
        } else {
            params.named.insert(k, v);
        }
    }
    Ok(params)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    // A UTF-8 byte-order mark before the JSON is tolerated.
    let s = &b[start..end.max(start)];
    s.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(s)
}

impl Params {
    /// Argument `name`, or else the positional argument `index`.
    pub(crate) fn get(&self, index: usize, name: &str) -> Option<&Value> {
        get_ci(&self.named, name).or_else(|| self.positional.get(index))
    }

    pub(crate) fn string(&self, index: usize, name: &str) -> Option<String> {
        self.get(index, name).and_then(scalar_string)
    }

    /// The `data` argument as an object (it may be sent as a JSON string).
    pub(crate) fn data(&self, index: usize) -> Result<Map<String, Value>, String> {
        match self.get(index, "data") {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(v) => as_object(v),
        }
    }
}

/// An object, or a JSON string holding one.
pub(crate) fn as_object(v: &Value) -> Result<Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
        Value::String(s) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err("data 数据包不是JSON对象".into()),
            Err(e) => Err(format!("data 数据包不是合法的JSON：{e}")),
        },
        _ => Err("data 数据包不是JSON对象".into()),
    }
}

/// Case-insensitive key look-up (parameter binding is case-insensitive, k3cloud.md §2.5).
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A scalar as text (numbers and booleans too).
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean option sent as `"true"`/`"false"`, a JSON bool, or 0/1; `default` when absent
/// or empty.
pub(crate) fn flag(map: &Map<String, Value>, key: &str, default: bool) -> bool {
    match get_ci(map, key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => default,
        },
        Some(Value::Number(n)) => n.as_i64().map_or(default, |n| n != 0),
        _ => default,
    }
}

/// An integer option sent as a number or a numeric string.
pub(crate) fn int(map: &Map<String, Value>, key: &str) -> Option<i64> {
    match get_ci(map, key)? {
        // Fractional numbers are truncated as .NET's binding does.
        #[allow(clippy::cast_possible_truncation)]
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Numbers` (an array, or a comma string) and `Ids` (a comma string, or an array).
pub(crate) fn numbers_and_ids(data: &Map<String, Value>) -> (Vec<String>, Vec<String>) {
    let list = |key: &str| -> Vec<String> {
        match get_ci(data, key) {
            Some(Value::Array(items)) => items.iter().filter_map(scalar_string).collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(Value::Number(n)) => vec![n.to_string()],
            _ => Vec::new(),
        }
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
    };
    (list("Numbers"), list("Ids"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path(
                "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.save.common.kdsvc"
            ),
            Some((Service::DynamicForm, "Save".to_string()))
        );
        assert_eq!(
            parse_path(
                "/k3cloud/Kingdee.BOS.ServiceFacade.ServicesStub.Account.AccountService.GetDataCenterList.common.kdsvc"
            ),
            Some((Service::Account, "GetDataCenterList".to_string()))
        );
        assert_eq!(parse_path("/k3cloud/foo"), None);
        assert_eq!(parse_path("/k3cloud/x.common.kdsvc"), None);
    }

    #[test]
    fn decodes_every_encoding() {
        let p = decode_body(None, br#"{"formid": "BD_MATERIAL", "data": {"Model": {}}}"#).unwrap();
        assert_eq!(p.string(0, "formid").unwrap(), "BD_MATERIAL");
        assert!(p.data(1).unwrap().contains_key("Model"));

        let p = decode_body(None, br#"{"parameters":["BD_MATERIAL","{\"Model\":{}}"]}"#).unwrap();
        assert_eq!(p.string(0, "formid").unwrap(), "BD_MATERIAL");
        assert!(p.data(1).unwrap().contains_key("Model"));

        let p = decode_body(
            Some("application/x-www-form-urlencoded"),
            b"acctID=60a1&username=webapi&password=P%40ss&lcid=2052",
        )
        .unwrap();
        assert_eq!(p.string(0, "acctid").unwrap(), "60a1");
        assert_eq!(p.string(2, "password").unwrap(), "P@ss");

        let p = decode_body(None, br#"{"parameters":"[\"a\",\"b\"]"}"#).unwrap();
        assert_eq!(p.string(1, "username").unwrap(), "b");

        assert!(decode_body(None, b"{not json").is_err());
    }

    #[test]
    fn flags_and_lists() {
        let m: Map<String, Value> = serde_json::from_str(
            r#"{"IsDeleteEntry":"false","a":true,"b":"","numbers":["X","Y"],"Ids":"1, 2"}"#,
        )
        .unwrap();
        assert!(!flag(&m, "isdeleteentry", true));
        assert!(flag(&m, "A", false));
        assert!(flag(&m, "b", true));
        assert_eq!(
            numbers_and_ids(&m),
            (vec!["X".into(), "Y".into()], vec!["1".into(), "2".into()])
        );
    }
}
