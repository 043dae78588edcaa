//! The `K3Cloud` answer envelopes (k3cloud.md §4), with the vendor's key order.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// `{"FieldName","Message","DIndex"}`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Failure {
    pub(crate) field_name: Option<String>,
    pub(crate) message: String,
    #[serde(rename = "DIndex")]
    pub(crate) d_index: usize,
    #[serde(skip)]
    pub(crate) msg_code: i32,
}

impl Failure {
    pub(crate) fn new(msg_code: i32, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            field_name: field.map(str::to_string),
            message: message.into(),
            d_index: 0,
            msg_code,
        }
    }

    pub(crate) fn at(mut self, d_index: usize) -> Self {
        self.d_index = d_index;
        self
    }
}

/// `{"Id","Number","DIndex"}`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SuccessEntity {
    pub(crate) id: i64,
    pub(crate) number: String,
    #[serde(rename = "DIndex")]
    pub(crate) d_index: usize,
}

/// `ResponseStatus`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ResponseStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<i32>,
    pub(crate) is_success: bool,
    pub(crate) errors: Vec<Failure>,
    pub(crate) success_entitys: Vec<SuccessEntity>,
    pub(crate) success_messages: Vec<Failure>,
    pub(crate) msg_code: i32,
}

impl ResponseStatus {
    pub(crate) fn ok(success: Vec<SuccessEntity>) -> Self {
        Self {
            error_code: None,
            is_success: true,
            errors: Vec::new(),
            success_entitys: success,
            success_messages: Vec::new(),
            msg_code: 0,
        }
    }

    /// A failure; the `MsgCode` is the first error's.
    pub(crate) fn failed(errors: Vec<Failure>, success: Vec<SuccessEntity>) -> Self {
        let msg_code = errors.first().map_or(4, |e| e.msg_code);
        Self {
            error_code: Some(500),
            is_success: false,
            errors,
            success_entitys: success,
            success_messages: Vec::new(),
            msg_code,
        }
    }

    /// `ok` when there is no error, else `failed`.
    pub(crate) fn from_parts(errors: Vec<Failure>, success: Vec<SuccessEntity>) -> Self {
        if errors.is_empty() {
            Self::ok(success)
        } else {
            Self::failed(errors, success)
        }
    }
}

/// `{"Result":{"ResponseStatus":…, <extras>}}`; a `None` status serialises as `null` (View).
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) status: Option<ResponseStatus>,
    pub(crate) extras: Vec<(&'static str, Value)>,
}

impl Envelope {
    pub(crate) fn new(status: ResponseStatus) -> Self {
        Self {
            status: Some(status),
            extras: Vec::new(),
        }
    }

    pub(crate) fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extras.push((key, value));
        self
    }

    /// A one-error envelope.
    pub(crate) fn error(failure: Failure) -> Self {
        Self::new(ResponseStatus::failed(vec![failure], Vec::new()))
    }
}

struct Inner<'a>(&'a Envelope);

impl Serialize for Inner<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.0.extras.len()))?;
        map.serialize_entry("ResponseStatus", &self.0.status)?;
        for (k, v) in &self.0.extras {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("Result", &Inner(self))?;
        map.end()
    }
}

/// A row of `BillQuery`: keys in `FieldKeys` order.
#[derive(Debug)]
pub(crate) struct OrderedRow<'a> {
    pub(crate) keys: &'a [String],
    pub(crate) values: Vec<Value>,
}

impl Serialize for OrderedRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.keys.len()))?;
        for (k, v) in self.keys.iter().zip(&self.values) {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The `MsgCode` 1 error every auth failure answers (k3cloud.md §3.1.2, `responses/session_lost_msgcode1.json`).
pub(crate) fn session_lost() -> Failure {
    Failure::new(1, None, "会话信息已丢失，请重新登录")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keeps_vendor_key_order() {
        let env = Envelope::new(ResponseStatus::ok(vec![SuccessEntity {
            id: 1,
            number: "N".into(),
            d_index: 0,
        }]))
        .with("Id", Value::from(1));
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"Result":{"ResponseStatus":{"IsSuccess":true,"Errors":[],"SuccessEntitys":[{"Id":1,"Number":"N","DIndex":0}],"SuccessMessages":[],"MsgCode":0},"Id":1}}"#
        );
        let env = Envelope::error(session_lost());
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":1}}}"#
        );
    }
}
