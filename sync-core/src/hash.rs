//! Stable content hashes of mapped payloads (rule 2).

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// A SHA-256 of the payload's canonical form (object keys sorted, no whitespace), as hex.
///
/// The canonical form does not depend on serde_json's `preserve_order` feature, so the hash
/// of a payload is the same in every build and across releases.
///
/// ```
/// use serde_json::json;
/// use sync_core::payload_hash;
///
/// assert_eq!(payload_hash(&json!({"a": 1, "b": [true, null]})),
///            payload_hash(&json!({"b": [true, null], "a": 1})));
/// assert_ne!(payload_hash(&json!({"a": 1})), payload_hash(&json!({"a": "1"})));
/// ```
pub fn payload_hash(payload: &Value) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, payload);
    let digest = hasher.finalize();
    let mut out = String::with_capacity(64);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn feed(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(true) => h.update(b"t"),
        Value::Bool(false) => h.update(b"f"),
        Value::Number(n) => {
            h.update(b"#");
            h.update(n.to_string().as_bytes());
            h.update(b";");
        }
        Value::String(s) => feed_str(h, s),
        Value::Array(items) => {
            h.update(b"[");
            for i in items {
                feed(h, i);
            }
            h.update(b"]");
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            h.update(b"{");
            for k in keys {
                feed_str(h, k);
                if let Some(v) = map.get(k) {
                    feed(h, v);
                }
            }
            h.update(b"}");
        }
    }
}

// Length-prefixed so that no two different values feed the same bytes.
fn feed_str(h: &mut Sha256, s: &str) {
    h.update(b"s");
    h.update(s.len().to_le_bytes());
    h.update(s.as_bytes());
}
