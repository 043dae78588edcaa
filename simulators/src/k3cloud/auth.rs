//! `K3Cloud` authentication: signed headers (k3cloud.md §3.1), `LoginBySign`'s hash (§3.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

use crate::config::K3CloudConfig;

/// The XOR key of `DecodeAppSecret` (ROT13 of `0054s397p6234378o09pn7q3r5qropr7`).
const XOR_KEY: &[u8] = b"0054f397c6234378b09ca7d3e5debce7";

/// `DecodeAppSecret`: the client secret hidden in the second half of the `AppID`.
pub(crate) fn decode_app_secret(s: &str) -> String {
    if s.len() != 32 || s.contains('=') {
        return String::new();
    }
    let Ok(raw) = STANDARD.decode(s) else {
        return String::new();
    };
    let xored: Vec<u8> = raw
        .iter()
        .zip(XOR_KEY.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect();
    STANDARD.encode(xored)
}

/// `KdHmac`: base64 of the lower-case hex of HMAC-SHA256.
pub(crate) fn kd_hmac(message: &str, key: &str) -> String {
    // HMAC accepts keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    let hex = to_hex(&mac.finalize().into_bytes());
    STANDARD.encode(hex)
}

/// Python's `urllib.parse.quote(path)` with `/` then replaced by `%2F`.
pub(crate) fn quote_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() * 2);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `LoginBySign`'s sign: hex SHA-256 of the ordinally sorted, concatenated parts.
pub(crate) fn login_sign(acct: &str, user: &str, app_id: &str, secret: &str, ts: &str) -> String {
    let mut parts = [acct, user, app_id, secret, ts];
    parts.sort_unstable();
    to_hex(&Sha256::digest(parts.concat().as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why signed headers were refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignFailure {
    /// Wrong data centre: a non-JSON, non-200 answer on a real server.
    Passport,
    /// Anything else: `MsgCode` 1 "会话信息已丢失，请重新登录".
    Lost(&'static str),
}

/// The headers of a signed request, by lower-case name.
pub(crate) struct SignedHeaders<'a> {
    pub(crate) get: &'a dyn Fn(&str) -> Option<String>,
}

/// Checks the `X-Kd-*` credentials and (optionally) `X-Api-Signature` and the timestamp window.
pub(crate) fn verify(
    h: &SignedHeaders<'_>,
    path: &str,
    cfg: &K3CloudConfig,
    now_secs: i64,
) -> Result<(), SignFailure> {
    let get = h.get;
    let app_key = get("x-kd-appkey").ok_or(SignFailure::Lost("no X-Kd-Appkey"))?;
    let app_data_b64 = get("x-kd-appdata").ok_or(SignFailure::Lost("no X-Kd-Appdata"))?;
    let kd_signature = get("x-kd-signature").ok_or(SignFailure::Lost("no X-Kd-Signature"))?;
    let app_data = STANDARD
        .decode(app_data_b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(SignFailure::Lost("X-Kd-Appdata is not base64 text"))?;
    let parts: Vec<&str> = app_data.split(',').collect();
    if parts.len() < 3 {
        return Err(SignFailure::Lost("X-Kd-Appdata has too few parts"));
    }
    if parts[0] != cfg.acct_id {
        return Err(SignFailure::Passport);
    }
    if parts[1] != cfg.user_name {
        return Err(SignFailure::Lost("user"));
    }
    let lcid_ok = parts[2]
        .trim()
        .parse::<u32>()
        .is_ok_and(|l| cfg.lcids.contains(&l));
    if !lcid_ok {
        return Err(SignFailure::Lost("lcid"));
    }
    if app_key != cfg.app_id {
        return Err(SignFailure::Lost("app id"));
    }
    if kd_signature != kd_hmac(&format!("{app_key}{app_data}"), &cfg.app_secret) {
        return Err(SignFailure::Lost("X-Kd-Signature"));
    }
    if cfg.verify_api_signature {
        let ts = get("x-api-timestamp").ok_or(SignFailure::Lost("no x-api-timestamp"))?;
        let nonce = get("x-api-nonce").ok_or(SignFailure::Lost("no x-api-nonce"))?;
        let signature = get("x-api-signature").ok_or(SignFailure::Lost("no X-Api-Signature"))?;
        let client_sec = app_key
            .split_once('_')
            .filter(|(_, s)| !s.contains('_'))
            .map(|(_, s)| decode_app_secret(s))
            .unwrap_or_default();
        // The vendor SDK signs the URL path from the first '/' at or after index 10 of the
        // full URL; for very short origins that drops the site segment (k3cloud.md §3.1
        // step 1). The server cannot know the origin, so both candidates are accepted.
        let short = path
            .trim_start_matches('/')
            .split_once('/')
            .map(|(_, rest)| format!("/{rest}"));
        let ok = std::iter::once(path.to_string()).chain(short).any(|p| {
            let msg = format!(
                "POST\n{}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{ts}\n",
                quote_path(&p)
            );
            kd_hmac(&msg, &client_sec) == signature
        });
        if !ok {
            return Err(SignFailure::Lost("X-Api-Signature"));
        }
        if let Some(window) = cfg.timestamp_window {
            let ts: i64 = ts
                .trim()
                .parse()
                .map_err(|_| SignFailure::Lost("timestamp"))?;
            // The Java SDK sends milliseconds.
            let ts_secs = if ts > 100_000_000_000 { ts / 1000 } else { ts };
            let skew = (now_secs - ts_secs).unsigned_abs();
            if skew > window.as_secs() {
                return Err(SignFailure::Lost("timestamp outside the window"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from shared/reference/k3cloud-wire/signature-test-vectors.json.
    #[test]
    fn decodes_app_secrets() {
        assert_eq!(
            decode_app_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
            "MDE3N2I2PzBrPzg4OD45N3IhK3B1InIk"
        );
        assert_eq!(
            decode_app_secret("72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ"),
            "31ecfd13effe724e7e78fc17f8f94b66"
        );
        assert_eq!(decode_app_secret("short"), "");
    }

    #[test]
    fn signs_like_the_vendor() {
        let msg = "POST\n%2Fk3cloud%2FKingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc\n\nx-api-nonce:1700000000\nx-api-timestamp:1700000000\n";
        assert_eq!(
            kd_hmac(msg, "MDE3N2I2PzBrPzg4OD45N3IhK3B1InIk"),
            "NzI2MjZlOGJiNjBiYTJkYzM3NTU3NTI0ZGE3YWY4MDhmMDNhMmZmOTc0ZGI4ZWJiYjg0NWFiYWFiNzIwZTczNg=="
        );
        assert_eq!(
            kd_hmac(
                "123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX60a1b2c3d4e5f6,webapi,2052,0",
                "0123456789abcdef0123456789abcdef"
            ),
            "ZGU5ZWZjMDBhYzJmNWJmZjljYzYxZGFmMDQxMGIyNGYzNDMyMGU5OTRhMmFiNDliZDBmZDRlMDU0MTRiNmZmOQ=="
        );
        assert_eq!(
            quote_path("/k3cloud/Kingdee.X.Save.common.kdsvc"),
            "%2Fk3cloud%2FKingdee.X.Save.common.kdsvc"
        );
    }

    #[test]
    fn login_sign_vector() {
        assert_eq!(
            login_sign(
                "60a1b2c3d4e5f6",
                "webapi",
                "123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
                "0123456789abcdef0123456789abcdef",
                "1700000000"
            ),
            "28bd5a5e8992ddd5da6965cec2c1697a2e08da4f484d99a8e52fce149b708bab"
        );
    }
}
