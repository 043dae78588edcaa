//! Property tests: no answer, however broken, makes a decoder panic.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;

use crate::auth::parse_login;
use crate::response::{attribute, check, status_of, write_status};

/// Arbitrary JSON, biased towards the shapes K3Cloud uses.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9 ]{0,8}".prop_map(Value::from),
        prop_oneof![Just("true"), Just("false"), Just(""), Just("12")].prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("Result".to_owned()),
            Just("ResponseStatus".to_owned()),
            Just("IsSuccess".to_owned()),
            Just("Errors".to_owned()),
            Just("SuccessEntitys".to_owned()),
            Just("MsgCode".to_owned()),
            Just("DIndex".to_owned()),
            Just("Id".to_owned()),
            Just("LoginResultType".to_owned()),
            Just("KDSVCSessionId".to_owned()),
            "[A-Za-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn exercise(status: u16, body: &[u8]) {
    if let Ok(answer) = check(status, Bytes::copy_from_slice(body)) {
        let _ = answer.decode::<Vec<Vec<Value>>>();
        let _ = crate::query::decode_rows_for_tests(&answer);
        if let Ok(value) = answer.into_value() {
            let _ = write_status(&value);
            if let Ok(status) = status_of(&value, body) {
                let _ = attribute(3, &status);
            }
            let _ = parse_login(&value);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(status in prop_oneof![Just(200u16), Just(206), Just(500), any::<u16>()],
                                   body in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(status, &body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json()) {
        let body = value.to_string();
        exercise(200, body.as_bytes());
        let wrapped = format!("[[{body}]]");
        exercise(200, wrapped.as_bytes());
        let prefixed = format!("response_error:{body}");
        exercise(200, prefixed.as_bytes());
    }

    #[test]
    fn truncated_real_answers_never_panic(cut in 0usize..400) {
        const SAMPLES: [&str; 3] = [
            r#"{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":"FBillNo","Message":"违反字段唯一性要求","DIndex":0}],"SuccessEntitys":[],"SuccessMessages":[],"MsgCode":11}}}"#,
            r#"[[{"Result":{"ResponseStatus":{"ErrorCode":500,"IsSuccess":false,"Errors":[{"FieldName":null,"Message":"会话信息已丢失，请重新登录","DIndex":0}],"MsgCode":1}}}]]"#,
            r#"[[100001,"MAT0001","测试物料1"],[100002,"MAT0002","测试物料2"]]"#,
        ];
        for sample in SAMPLES {
            let bytes = sample.as_bytes();
            exercise(200, &bytes[..cut.min(bytes.len())]);
        }
    }
}
