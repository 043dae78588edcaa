//! The signed-header scheme of the official SDKs (`WebApiClient.BuildHeader`), byte for byte,
//! and the LoginBySign signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// XOR key the vendor SDKs apply to the secret part of the app id
/// (ROT13 of `0054s397p6234378o09pn7q3r5qropr7`, constant in Python and Java).
const APP_SECRET_XOR_KEY: &[u8; 32] = b"0054f397c6234378b09ca7d3e5debce7";

/// Who signs: the identity part that goes into `X-Kd-Appdata`. No `Debug`: it holds the secret.
#[derive(Clone, Copy)]
pub(crate) struct Signer<'a> {
    pub(crate) acct_id: &'a str,
    pub(crate) user: &'a str,
    pub(crate) lcid: u32,
    pub(crate) org: &'a str,
    pub(crate) app_id: &'a str,
    pub(crate) app_secret: &'a str,
}

/// The signed headers of one client. The `X-Kd-*` part does not depend on the call, so it is
/// computed once; only the timestamp and `X-Api-Signature` change per call.
pub(crate) struct HeaderSigner {
    client_id: HeaderValue,
    client_secret: SecretString,
    app_key: HeaderValue,
    app_data: HeaderValue,
    kd_signature: HeaderValue,
}

impl HeaderSigner {
    /// Fails when a credential holds characters that cannot travel in a header.
    pub(crate) fn new(signer: &Signer<'_>) -> Result<Self, String> {
        let (client_id, client_secret) = match signer.app_id.split_once('_') {
            Some((id, secret)) if !secret.contains('_') => (id, decode_app_secret(secret)),
            _ => ("", String::new()),
        };
        let app_data = format!(
            "{},{},{},{}",
            signer.acct_id, signer.user, signer.lcid, signer.org
        );
        let kd_signature = kd_hmac(&format!("{}{app_data}", signer.app_id), signer.app_secret);
        let value = |name: &str, v: &str, sensitive: bool| {
            HeaderValue::from_str(v)
                .map(|mut h| {
                    h.set_sensitive(sensitive);
                    h
                })
                .map_err(|_| format!("the credentials give an invalid {name} header"))
        };
        Ok(HeaderSigner {
            client_id: value("X-Api-ClientID", client_id, false)?,
            client_secret: SecretString::from(client_secret),
            app_key: value("X-Kd-Appkey", signer.app_id, true)?,
            app_data: value("X-Kd-Appdata", &BASE64.encode(app_data.as_bytes()), false)?,
            kd_signature: value("X-Kd-Signature", &kd_signature, true)?,
        })
    }

    /// The headers for a POST to `path` at Unix second `timestamp`, in the order the vendor SDK
    /// sends them.
    pub(crate) fn headers(&self, path: &str, timestamp: i64) -> [(&'static str, HeaderValue); 9] {
        let ts = HeaderValue::from(timestamp);
        let to_sign = format!(
            "POST\n{}\n\nx-api-nonce:{timestamp}\nx-api-timestamp:{timestamp}\n",
            encode_path(path)
        );
        let mut signature =
            HeaderValue::from_str(&kd_hmac(&to_sign, self.client_secret.expose_secret()))
                .expect("a base64 signature is a valid header value");
        signature.set_sensitive(true);
        [
            ("X-Api-ClientID", self.client_id.clone()),
            ("X-Api-Auth-Version", HeaderValue::from_static("2.0")),
            ("x-api-timestamp", ts.clone()),
            ("x-api-nonce", ts),
            (
                "x-api-signheaders",
                HeaderValue::from_static("x-api-timestamp,x-api-nonce"),
            ),
            ("X-Api-Signature", signature),
            ("X-Kd-Appkey", self.app_key.clone()),
            ("X-Kd-Appdata", self.app_data.clone()),
            ("X-Kd-Signature", self.kd_signature.clone()),
        ]
    }
}

impl std::fmt::Debug for HeaderSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderSigner")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// `DecodeAppSecret`: the 32-character secret part of an app id, base64-decoded, XORed with the
/// vendor key, base64-encoded again. Anything the vendor decoder rejects gives `""`.
pub(crate) fn decode_app_secret(part: &str) -> String {
    if part.len() != 32 || part.contains('=') {
        return String::new();
    }
    let Ok(raw) = BASE64.decode(part) else {
        return String::new();
    };
    let xored: Vec<u8> = raw
        .iter()
        .zip(APP_SECRET_XOR_KEY.iter())
        .map(|(a, b)| a ^ b)
        .collect();
    BASE64.encode(xored)
}

/// `KdHmac`: base64 of the lowercase hex of HMAC-SHA256 (the hex *text* is encoded, giving 88
/// characters).
pub(crate) fn kd_hmac(message: &str, key: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(message.as_bytes());
    BASE64.encode(hex(&mac.finalize().into_bytes()))
}

/// Python's `urllib.parse.quote(path)` followed by `/` → `%2F`: every byte but `A-Za-z0-9_.-~`
/// percent-encoded in upper case.
pub(crate) fn encode_path(path: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(path.len() + 16);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// LoginBySign: lowercase hex SHA-256 of the concatenation of the ordinally sorted
/// `[acct_id, user, app_id, app_secret, timestamp]`.
pub(crate) fn login_sign(
    acct_id: &str,
    user: &str,
    app_id: &str,
    app_secret: &str,
    timestamp: i64,
) -> String {
    let ts = timestamp.to_string();
    let mut parts = [acct_id, user, app_id, app_secret, ts.as_str()];
    parts.sort_unstable();
    hex(&Sha256::digest(parts.concat().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        serde_json::from_str(include_str!(
            "../../../reference/k3cloud-wire/signature-test-vectors.json"
        ))
        .unwrap()
    }

    #[test]
    fn every_header_vector_matches() {
        let v = vectors();
        let cases = v["header_cases"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let i = &case["inputs"];
            let url = url::Url::parse(i["request_url"].as_str().unwrap()).unwrap();
            let org = i["org_num"].to_string();
            let signer = Signer {
                acct_id: i["acct_id"].as_str().unwrap(),
                user: i["user_name"].as_str().unwrap(),
                lcid: u32::try_from(i["lcid"].as_u64().unwrap()).unwrap(),
                org: &org,
                app_id: i["app_id"].as_str().unwrap(),
                app_secret: i["app_secret"].as_str().unwrap(),
            };
            let ts: i64 = i["timestamp_and_nonce"].as_str().unwrap().parse().unwrap();
            let im = &case["intermediate"];
            assert_eq!(
                encode_path(url.path()),
                im["path_encoded"].as_str().unwrap()
            );
            assert_eq!(
                decode_app_secret(im["app_id_secret_part"].as_str().unwrap()),
                im["decoded_client_secret"].as_str().unwrap()
            );
            let headers = HeaderSigner::new(&signer).unwrap().headers(url.path(), ts);
            let expected = case["expected_headers"].as_object().unwrap();
            assert_eq!(headers.len(), expected.len());
            for (name, value) in &headers {
                assert_eq!(
                    value.to_str().ok(),
                    expected[*name].as_str(),
                    "{} / {name}",
                    case["name"]
                );
            }
        }
    }

    #[test]
    fn login_by_sign_vector() {
        assert_eq!(
            login_sign(
                "60a1b2c3d4e5f6",
                "webapi",
                "123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
                "0123456789abcdef0123456789abcdef",
                1_700_000_000
            ),
            "28bd5a5e8992ddd5da6965cec2c1697a2e08da4f484d99a8e52fce149b708bab"
        );
    }

    #[test]
    fn malformed_app_ids_sign_with_empty_client_secret() {
        assert_eq!(decode_app_secret("short"), "");
        assert_eq!(decode_app_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFR=="), "");
        assert_eq!(decode_app_secret("!!ECAwQFBgcICQoLDA0ODxAREhMUFRYX"), "");
        let signer = Signer {
            acct_id: "a",
            user: "u",
            lcid: 2052,
            org: "0",
            app_id: "no-underscore",
            app_secret: "s",
        };
        let headers = HeaderSigner::new(&signer).unwrap().headers("/k3cloud/x", 1);
        assert_eq!(headers[0], ("X-Api-ClientID", HeaderValue::from_static("")));
        let bad = Signer {
            app_id: "123_line\nbreak",
            ..signer
        };
        assert!(HeaderSigner::new(&bad).is_err());
    }
}
