//! The K3Cloud answer: HTTP status and body → JSON, or a typed [`Error`].
//!
//! K3Cloud reports most failures with HTTP 200: `{"Result":{"ResponseStatus":{"IsSuccess":false,…}}}`
//! for form operations, the same object wrapped as `[[{…}]]` for ExecuteBillQuery, a
//! `response_error:` prefix for server exceptions. Everything is decided here, once.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::de;
use crate::error::{BusinessError, Error, ErrorEntry, Result, SuccessEntity};

/// `Result.ResponseStatus`: what K3Cloud reports about a form operation.
///
/// Every key is optional on the wire (old servers send only `IsSuccess`); numbers and booleans
/// may arrive as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ResponseStatus {
    /// `IsSuccess`.
    #[serde(rename = "IsSuccess", default, deserialize_with = "de::bool")]
    pub is_success: bool,
    /// `ErrorCode` (500 on failure, absent on success).
    #[serde(rename = "ErrorCode", default, deserialize_with = "de::opt_i64")]
    pub error_code: Option<i64>,
    /// `MsgCode` (see [`MsgCode`](crate::MsgCode)).
    #[serde(rename = "MsgCode", default, deserialize_with = "de::opt_i64")]
    pub msg_code: Option<i64>,
    /// `Errors[]`.
    #[serde(rename = "Errors", default, deserialize_with = "lenient_vec")]
    pub errors: Vec<ErrorEntry>,
    /// `SuccessEntitys[]` (sic): the documents acted on.
    #[serde(rename = "SuccessEntitys", default, deserialize_with = "lenient_vec")]
    pub success_entities: Vec<SuccessEntity>,
    /// `SuccessMessages[]`.
    #[serde(rename = "SuccessMessages", default, deserialize_with = "lenient_vec")]
    pub success_messages: Vec<ErrorEntry>,
}

impl ResponseStatus {
    /// "Try later" codes: network-control conflict (13) and call limit (14). The server
    /// refused the call before acting on it.
    pub fn is_transient(&self) -> bool {
        is_transient_code(self.msg_code)
    }
}

/// MsgCode 13 or 14: the one rule for [`ResponseStatus`] and
/// [`BusinessError`](crate::BusinessError).
pub(crate) fn is_transient_code(msg_code: Option<i64>) -> bool {
    matches!(
        msg_code,
        Some(crate::MsgCode::NETWORK_CONTROL | crate::MsgCode::CALL_LIMIT)
    )
}

fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// What happened to one row of a BatchSave, or one number/id of a Submit, Audit, Delete, ….
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowResult {
    /// The server confirmed this row.
    Succeeded(SuccessEntity),
    /// The server refused this row, with its messages.
    Failed(Vec<ErrorEntry>),
    /// The server neither confirmed nor refused this row. K3Cloud sometimes answers
    /// `IsSuccess: true` while silently skipping numbers that do not exist ("假成功");
    /// check the row before relying on it.
    Unconfirmed,
}

impl RowResult {
    /// The success entity, when the row succeeded.
    pub fn entity(&self) -> Option<&SuccessEntity> {
        match self {
            RowResult::Succeeded(e) => Some(e),
            _ => None,
        }
    }

    /// True when the server confirmed the row.
    pub fn is_success(&self) -> bool {
        matches!(self, RowResult::Succeeded(_))
    }
}

/// Maps the entities and errors of `status` back to `rows` input rows by `DIndex`.
pub(crate) fn attribute(rows: usize, status: &ResponseStatus) -> Vec<RowResult> {
    let mut out = vec![RowResult::Unconfirmed; rows];
    // Without `DIndex` (older servers) a position is a guess. It is trusted only when every
    // row came back saved and nothing failed — the entities of a full success in the order
    // sent, as old servers answer. In a partial answer the saved rows cannot be told apart:
    // all stay unconfirmed (their outcome unknown) rather than one record being bound to
    // another's document. (The reference does not say whether a full success keeps the order
    // with `BatchCount` > 1; this client never sets it.)
    let positional = status.success_entities.iter().all(|e| e.d_index.is_none())
        && (rows == 1 || (status.errors.is_empty() && status.success_entities.len() == rows));
    for (i, entity) in status.success_entities.iter().enumerate() {
        let row = if positional {
            Some(i)
        } else {
            index(entity.d_index, rows)
        };
        if let Some(row) = row.filter(|&r| r < rows) {
            out[row] = RowResult::Succeeded(entity.clone());
        }
    }
    // Errors that name no row (or a row that does not exist) leave the rows they may concern
    // unconfirmed: guessing "failed" could invite a resend of a row that was saved.
    for error in &status.errors {
        let row = index(error.d_index, rows).or(if rows == 1 { Some(0) } else { None });
        if let Some(r) = row {
            match &mut out[r] {
                RowResult::Succeeded(_) => {}
                RowResult::Failed(list) => list.push(error.clone()),
                slot @ RowResult::Unconfirmed => *slot = RowResult::Failed(vec![error.clone()]),
            }
        }
    }
    out
}

fn index(d_index: Option<i64>, rows: usize) -> Option<usize> {
    d_index
        .and_then(|i| usize::try_from(i).ok())
        .filter(|&i| i < rows)
}

/// A failure of the whole call, as opposed to failures of some rows.
pub(crate) fn is_whole_call_failure(status: &ResponseStatus) -> bool {
    !status.is_success
        && status.success_entities.is_empty()
        && status.errors.iter().all(|e| e.d_index.is_none())
}

/// An answer that passed [`check`]: JSON that is not an error envelope.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) bytes: Bytes,
    /// Set when checking needed the parsed value (object answers).
    pub(crate) value: Option<Value>,
}

impl Answer {
    /// The answer as a JSON value.
    pub(crate) fn into_value(self) -> Result<Value> {
        match self.value {
            Some(v) => Ok(v),
            None => parse_value(&self.bytes),
        }
    }

    /// Decodes the answer into `T`, reporting the JSON path of the first mismatch.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        if let Some(v) = &self.value {
            return decode_value(v, &self.bytes);
        }
        // Decode plainly first; track the path only to explain a failure.
        if let Ok(v) = serde_json::from_slice(&self.bytes) {
            return Ok(v);
        }
        let mut de = serde_json::Deserializer::from_slice(&self.bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| path_error(&e, "", &self.bytes))
    }
}

/// Decodes the whole answer, as a JSON value, into `T`, reporting the path of the first
/// mismatch.
pub(crate) fn decode_value<T: DeserializeOwned>(value: &Value, body: &[u8]) -> Result<T> {
    decode_value_at(value, "", body)
}

/// Decodes the part of the answer found at `at` (`Result.ResponseStatus`) into `T`; the path
/// of a mismatch starts at the root of the answer, as every [`Error::Decode`] path does.
pub(crate) fn decode_value_at<T: DeserializeOwned>(
    value: &Value,
    at: &str,
    body: &[u8],
) -> Result<T> {
    // Decode plainly first; track the path only to explain a failure.
    if let Ok(v) = T::deserialize(value) {
        return Ok(v);
    }
    serde_path_to_error::deserialize(value).map_err(|e| path_error(&e, at, body))
}

fn path_error<E: std::fmt::Display>(
    e: &serde_path_to_error::Error<E>,
    at: &str,
    body: &[u8],
) -> Error {
    Error::Decode {
        path: join_path(at, e.path()),
        message: e.inner().to_string(),
        snippet: snippet(body),
    }
}

pub(crate) use fxk3_kernel::text::join_path;

fn parse_value(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            Error::Decode {
                path: String::new(),
                message: e.to_string(),
                snippet: snippet(body),
            }
        } else {
            Error::NotJson {
                status: 200,
                snippet: snippet(body),
            }
        }
    })
}

pub(crate) use fxk3_kernel::text::snippet;

const RESPONSE_ERROR_PREFIX: &[u8] = b"response_error:";

/// Classifies an HTTP answer: `Ok` with the JSON for anything that is not an error, or the
/// typed error.
pub(crate) fn check(status: u16, body: Bytes) -> Result<Answer> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let start = if body[start..].starts_with(b"\xEF\xBB\xBF") {
        start + 3
    } else {
        start
    };
    let trimmed = &body[start..];

    if status != 200 && status != 206 {
        return Err(http_error(status, trimmed));
    }
    if trimmed.starts_with(RESPONSE_ERROR_PREFIX) {
        return Err(server_exception(
            &body,
            &trimmed[RESPONSE_ERROR_PREFIX.len()..],
        ));
    }
    match trimmed.first() {
        Some(b'{') => {
            let value = parse_value(trimmed)?;
            check_envelope(&value, &body)?;
            Ok(Answer {
                bytes: body,
                value: Some(value),
            })
        }
        Some(b'[') if array_may_hold_error(trimmed) => {
            let value = parse_value(trimmed)?;
            check_envelope(&value, &body)?;
            Ok(Answer {
                bytes: body,
                value: Some(value),
            })
        }
        Some(b'[') => Ok(Answer {
            bytes: body,
            value: None,
        }),
        _ => Err(Error::NotJson {
            status,
            snippet: snippet(&body),
        }),
    }
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[n..]
}

/// `[[{…` (ExecuteBillQuery error) or `[{"Result"…` (an envelope in a list): only these array
/// answers need a full parse before the rows can be trusted.
fn array_may_hold_error(body: &[u8]) -> bool {
    let after = skip_ws(&body[1..]);
    match after.first() {
        Some(b'[') => skip_ws(&after[1..]).first() == Some(&b'{'),
        Some(b'{') => skip_ws(&after[1..]).starts_with(b"\"Result\""),
        _ => false,
    }
}

fn http_error(status: u16, body: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct Gateway {
        errcode: Value,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        description_cn: Option<String>,
    }
    if let Ok(g) = serde_json::from_slice::<Gateway>(body)
        && let Some(errcode) = de::to_i64(&g.errcode)
    {
        return Error::Gateway {
            status,
            errcode,
            description: g.description.or(g.description_cn).unwrap_or_default(),
        };
    }
    Error::Http {
        status,
        snippet: snippet(body),
    }
}

fn server_exception(whole: &[u8], rest: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct Exception {
        #[serde(rename = "Message", default, deserialize_with = "de::string")]
        message: String,
    }
    let message =
        serde_json::from_slice::<Exception>(rest).map_or_else(|_| snippet(rest), |e| e.message);
    Error::ServerException {
        message,
        raw: String::from_utf8_lossy(whole).into_owned(),
    }
}

/// Finds `ResponseStatus` in the places K3Cloud puts it and turns a failure into an error.
fn check_envelope(value: &Value, body: &[u8]) -> Result<()> {
    let (status_value, at, wrapped) = match value {
        Value::Object(map) => match map.get("Result") {
            Some(Value::Object(result)) => match result.get("ResponseStatus") {
                Some(rs @ Value::Object(_)) => (rs, "Result.ResponseStatus", false),
                // GetSysReportData: {"Result":{"IsSuccess":…,"Rows":…}}.
                _ if result.contains_key("IsSuccess") => (&map["Result"], "Result", false),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        },
        Value::Array(items) => {
            let (first, at) = match items.first() {
                Some(Value::Array(inner)) => (inner.first(), "[0][0].Result.ResponseStatus"),
                other => (other, "[0].Result.ResponseStatus"),
            };
            match first
                .and_then(|f| f.get("Result"))
                .and_then(|r| r.get("ResponseStatus"))
            {
                Some(rs @ Value::Object(_)) => (rs, at, true),
                _ => return Ok(()),
            }
        }
        _ => return Ok(()),
    };
    let mut status: ResponseStatus = decode_value_at(status_value, at, body)?;
    if status_value.get("IsSuccess").is_none() {
        status.is_success = status.errors.is_empty();
    }
    if status.is_success && !wrapped {
        return Ok(());
    }
    Err(Error::Business(Box::new(BusinessError {
        msg_code: status.msg_code,
        error_code: status.error_code,
        errors: status.errors,
        success_entities: status.success_entities,
        raw: String::from_utf8_lossy(body).into_owned(),
    })))
}

/// `Result.ResponseStatus` of an answer, or an empty (successful) one when absent.
pub(crate) fn status_of(value: &Value, body: &[u8]) -> Result<ResponseStatus> {
    match value.get("Result").and_then(|r| r.get("ResponseStatus")) {
        Some(rs @ Value::Object(_)) => decode_value_at(rs, "Result.ResponseStatus", body),
        _ => Ok(ResponseStatus {
            is_success: true,
            ..ResponseStatus::default()
        }),
    }
}

impl BusinessError {
    /// Maps this refusal's entries back to `rows` requested rows (BatchSave models, or the
    /// numbers/ids of an operation) by `DIndex`.
    pub fn rows(&self, rows: usize) -> Vec<RowResult> {
        attribute(rows, &self.status())
    }

    fn status(&self) -> ResponseStatus {
        ResponseStatus {
            is_success: false,
            error_code: self.error_code,
            msg_code: self.msg_code,
            errors: self.errors.clone(),
            success_entities: self.success_entities.clone(),
            success_messages: Vec::new(),
        }
    }
}

/// `Result.ResponseStatus` of the answer to a write, which must be an object with `Result`:
/// any other answer says nothing about what happened.
pub(crate) fn write_status(value: &Value) -> Result<ResponseStatus> {
    if !value.get("Result").is_some_and(Value::is_object) {
        return Err(Error::Decode {
            path: "Result".into(),
            message: "the answer to a write has no `Result` object".into(),
            snippet: snippet(value.to_string().as_bytes()),
        });
    }
    status_of(value, &[])
}

/// The status of a refusal of a multi-row call, so that rows can be attributed; a refusal of
/// the whole call stays an error.
pub(crate) fn status_of_refusal(b: Box<BusinessError>) -> Result<ResponseStatus> {
    let status = b.status();
    if is_whole_call_failure(&status) {
        Err(Error::Business(b))
    } else {
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> Error {
        check(status, Bytes::from(body.to_owned())).unwrap_err()
    }

    #[test]
    fn only_network_control_and_call_limit_are_transient() {
        let status = |code: Option<i64>| ResponseStatus {
            msg_code: code,
            ..ResponseStatus::default()
        };
        for (code, transient) in [
            (Some(13), true),
            (Some(14), true),
            (Some(0), false),
            (Some(1), false),
            (Some(11), false),
            (None, false),
        ] {
            assert_eq!(status(code).is_transient(), transient, "MsgCode {code:?}");
        }
    }

    #[test]
    fn rows_pass_without_parsing() {
        let a = check(200, Bytes::from_static(b"[[1,\"a\"],[2,\"b\"]]")).unwrap();
        assert!(a.value.is_none());
        let a = check(200, Bytes::from_static(b" []")).unwrap();
        assert!(a.value.is_none());
        let a = check(200, Bytes::from_static(b"[{\"FNumber\":\"x\"}]")).unwrap();
        assert!(a.value.is_none());
    }

    #[test]
    fn wrapped_query_error_is_an_error_not_a_row() {
        let e = err(
            200,
            r#"[[{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"元数据中标识为FIssueType的字段不存在","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":9}}}]]"#,
        );
        assert_eq!(e.msg_code(), Some(9));
        assert_eq!(
            e.business().unwrap().message(),
            "元数据中标识为FIssueType的字段不存在"
        );
    }

    #[test]
    fn enveloped_list_error_is_an_error() {
        let e = err(
            200,
            r#"[{"Result":{"ResponseStatus":{"IsSuccess":false,"Errors":[{"Message":"x"}],"MsgCode":4}}}]"#,
        );
        assert_eq!(e.msg_code(), Some(4));
    }

    #[test]
    fn string_typed_status_and_missing_keys() {
        let e = err(
            200,
            r#"{"Result":{"ResponseStatus":{"IsSuccess":"false","MsgCode":"11","Errors":[{"Message":"m","DIndex":"0"}]}}}"#,
        );
        let b = e.business().unwrap();
        assert_eq!((b.msg_code, b.errors[0].d_index), (Some(11), Some(0)));
        // No IsSuccess key: success when no errors are listed.
        assert!(
            check(
                200,
                Bytes::from_static(br#"{"Result":{"ResponseStatus":{}}}"#)
            )
            .is_ok()
        );
        // ResponseStatus null (View success) or "" (doc templates).
        assert!(
            check(
                200,
                Bytes::from_static(br#"{"Result":{"ResponseStatus":null,"Result":{}}}"#)
            )
            .is_ok()
        );
        assert!(
            check(
                200,
                Bytes::from_static(br#"{"Result":{"ResponseStatus":"","NeedReturnData":{}}}"#)
            )
            .is_ok()
        );
    }

    #[test]
    fn transport_level_failures() {
        assert!(matches!(
            err(500, "<!DOCTYPE html><html><body><h1>服务器错误</h1></body></html>"),
            Error::Http { status: 500, ref snippet } if snippet.starts_with("<!DOCTYPE html>")
        ));
        assert!(matches!(
            err(519, r#"{"errcode":4006,"description":"Unauthorized, X-Api-TimeStamp is invalid[GW]","description_cn":"认证失败"}"#),
            Error::Gateway { status: 519, errcode: 4006, ref description } if description.contains("TimeStamp")
        ));
        assert!(matches!(
            err(200, r#"response_error:{"Message":"未将对象引用设置到对象的实例。","InnerExWrapper":null}"#),
            Error::ServerException { ref message, .. } if message == "未将对象引用设置到对象的实例。"
        ));
        assert!(matches!(
            err(200, "<html>login</html>"),
            Error::NotJson { status: 200, .. }
        ));
        assert!(matches!(err(200, ""), Error::NotJson { .. }));
        assert!(matches!(
            err(200, r#"{"Result":{"Respo"#),
            Error::NotJson { .. }
        ));
        assert!(matches!(err(200, r#"[[{"Result":"#), Error::NotJson { .. }));
    }

    fn entity(id: &str, n: &str, d: Option<i64>) -> SuccessEntity {
        SuccessEntity {
            id: id.into(),
            number: n.into(),
            d_index: d,
        }
    }

    fn entry(msg: &str, d: Option<i64>) -> ErrorEntry {
        ErrorEntry {
            field_name: None,
            message: msg.into(),
            d_index: d,
        }
    }

    #[test]
    fn rows_are_attributed_by_dindex() {
        let status = ResponseStatus {
            is_success: false,
            success_entities: vec![entity("7", "B", Some(1))],
            errors: vec![
                entry("bad", Some(0)),
                entry("worse", Some(0)),
                entry("far", Some(9)),
            ],
            ..ResponseStatus::default()
        };
        assert_eq!(
            attribute(3, &status),
            vec![
                RowResult::Failed(vec![entry("bad", Some(0)), entry("worse", Some(0))]),
                RowResult::Succeeded(entity("7", "B", Some(1))),
                RowResult::Unconfirmed,
            ]
        );
    }

    #[test]
    fn rows_without_dindex() {
        // Old servers: entities in order, errors unattributed.
        let ok = ResponseStatus {
            is_success: true,
            success_entities: vec![entity("1", "A", None), entity("2", "B", None)],
            ..ResponseStatus::default()
        };
        assert!(attribute(2, &ok).iter().all(RowResult::is_success));
        let bad = ResponseStatus {
            is_success: false,
            errors: vec![entry("required", None)],
            ..ResponseStatus::default()
        };
        assert_eq!(
            attribute(1, &bad),
            vec![RowResult::Failed(vec![entry("required", None)])]
        );
        assert!(is_whole_call_failure(&bad));
    }

    #[test]
    fn a_partial_answer_without_dindex_leaves_every_row_unconfirmed() {
        // Three models, two saved, one refused, no DIndex anywhere: which two were saved is
        // not said. By position the third record would take the second one's document.
        let partial = ResponseStatus {
            is_success: false,
            success_entities: vec![entity("1", "A", None), entity("3", "C", None)],
            errors: vec![entry("违反字段唯一性要求", None)],
            ..ResponseStatus::default()
        };
        assert_eq!(attribute(3, &partial), vec![RowResult::Unconfirmed; 3]);
        assert!(!is_whole_call_failure(&partial));
        // Fewer entities than rows and no error: the same.
        let short = ResponseStatus {
            is_success: true,
            success_entities: vec![entity("1", "A", None)],
            ..ResponseStatus::default()
        };
        assert_eq!(attribute(2, &short), vec![RowResult::Unconfirmed; 2]);
        // One row: its entity is its own.
        let one = ResponseStatus {
            is_success: true,
            success_entities: vec![entity("1", "A", None)],
            ..ResponseStatus::default()
        };
        assert_eq!(
            attribute(1, &one),
            vec![RowResult::Succeeded(entity("1", "A", None))]
        );
    }
}
