//! Configuration of both simulators, with the documented demo credentials as defaults.
//!
//! The demo credentials are the fake ones of the captured fixtures in
//! `shared/reference/k3cloud-wire/` and `fxiaoke-wire/`, so that captured requests replay
//! against a default sandbox unchanged.

use std::fmt;
use std::time::Duration;

/// Everything a sandbox is started with.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The `K3Cloud` simulator.
    pub k3cloud: K3CloudConfig,
    /// The Fxiaoke simulator.
    pub fxiaoke: FxiaokeConfig,
    /// Seed of the fault RNG and of generated ids: the same seed and the same calls give the
    /// same faults and the same ids.
    pub seed: u64,
}

/// `K3Cloud`: one data centre, one integration user with a password and one app authorisation.
#[derive(Clone)]
pub struct K3CloudConfig {
    /// Data-centre id (`acctID`, `AcctID`).
    pub acct_id: String,
    /// Data-centre name, shown by `GetDataCenterList`.
    pub acct_name: String,
    /// The integration user.
    pub user_name: String,
    /// The user's password for `ValidateUser`.
    pub password: String,
    /// App id of the 第三方系统登录授权 entry (`<clientId>_<32 chars>`).
    pub app_id: String,
    /// App secret of that entry.
    pub app_secret: String,
    /// Accepted `lcid` values (the reference saw 9999 rejected).
    pub lcids: Vec<u32>,
    /// Allowed skew of `x-api-timestamp` from the sandbox clock; `None` disables the check.
    ///
    /// One real deployment accepted ±24 h; the retired public gateway rejected a 13-minute-old
    /// timestamp (k3cloud.md §3.1.2). 15 minutes is our choice between the two.
    pub timestamp_window: Option<Duration>,
    /// Verify `X-Api-Signature` as well as `X-Kd-Signature`. Private servers may not check it
    /// (k3cloud.md §3.1 step 4); the sandbox does unless told otherwise.
    pub verify_api_signature: bool,
    /// Idle time after which a session is gone (`MsgCode` 1 for password sessions; signed-header
    /// clients silently get a new one). The real value is site configuration.
    pub session_ttl: Duration,
    /// Row cap of `ExecuteBillQuery` / `BillQuery`: 10,000 from patch 23.11, 2,000 before.
    pub max_query_rows: usize,
    /// `DisplayVersion` reported by logins and the data-centre list.
    pub server_version: String,
    /// Which release's answers to give where observed answers differ by release (one switch).
    pub release: K3Release,
}

/// K3Cloud answers that differ between server releases.
///
/// | answer | [`Legacy`](K3Release::Legacy) | [`Current`](K3Release::Current) (default) |
/// |---|---|---|
/// | View, success | `"ResponseStatus": null` (the one real sample, an older server: `reference/k3cloud-wire/responses/view_success_empinfo.json`) | a full `ResponseStatus` with `"IsSuccess": true` (what current clients check after a View; no real sample recorded — an assumption, see `simulators/README.md`) |
/// | login, success | `"KDSVCSessionId": null`, a licence warning in `Message`, `"FormId": "BOS_CloudInspection"`: the session only in the cookie (k3cloud.md §3.2.1, a v7.1 answer; the warning's text is ours) | the v9 sample (`validateuser_success_v9.json`): the session id in the body and the cookie |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum K3Release {
    /// Older servers, as the reference's samples of them show.
    Legacy,
    /// Current servers.
    #[default]
    Current,
}

impl std::str::FromStr for K3Release {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "legacy" => Ok(K3Release::Legacy),
            "current" => Ok(K3Release::Current),
            other => Err(format!(
                "unknown K3Cloud release `{other}` (legacy or current)"
            )),
        }
    }
}

impl Default for K3CloudConfig {
    fn default() -> Self {
        Self {
            acct_id: "60a1b2c3d4e5f6".into(),
            acct_name: "演示账套".into(),
            user_name: "webapi".into(),
            password: "P@ssw0rd".into(),
            app_id: "123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX".into(),
            app_secret: "0123456789abcdef0123456789abcdef".into(),
            lcids: vec![2052, 1033, 3076],
            timestamp_window: Some(Duration::from_secs(15 * 60)),
            verify_api_signature: true,
            session_ttl: Duration::from_secs(20 * 60),
            max_query_rows: 10_000,
            server_version: "9.0.553.10".into(),
            release: K3Release::Current,
        }
    }
}

impl fmt::Debug for K3CloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("K3CloudConfig")
            .field("acct_id", &self.acct_id)
            .field("user_name", &self.user_name)
            .field("password", &"<redacted>")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("lcids", &self.lcids)
            .field("timestamp_window", &self.timestamp_window)
            .field("verify_api_signature", &self.verify_api_signature)
            .field("session_ttl", &self.session_ttl)
            .field("max_query_rows", &self.max_query_rows)
            .field("release", &self.release)
            .finish_non_exhaustive()
    }
}

/// One Fxiaoke app authorised by one enterprise.
#[derive(Clone)]
pub struct FxiaokeApp {
    /// `FSAID_…`.
    pub app_id: String,
    /// The app secret.
    pub app_secret: String,
    /// The enterprise's permanent authorisation code.
    pub permanent_code: String,
    /// The enterprise's open id (`FSCID_…`).
    pub corp_id: String,
    /// The enterprise account used by the new-style auth headers (`x-fs-ea`).
    pub ea: String,
}

impl Default for FxiaokeApp {
    fn default() -> Self {
        Self {
            app_id: "FSAID_1000001".into(),
            app_secret: "0123456789abcdef0123456789abcdef".into(),
            permanent_code: "0123456789ABCDEF0123456789ABCDEF".into(),
            corp_id: "FSCID_1A2B3C4D5E6F708192A3B4C5D6E7F809".into(),
            ea: "fsdemo".into(),
        }
    }
}

impl fmt::Debug for FxiaokeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FxiaokeApp")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("permanent_code", &"<redacted>")
            .field("corp_id", &self.corp_id)
            .field("ea", &self.ea)
            .finish()
    }
}

/// Fxiaoke: apps, token rules, limits and quotas.
#[derive(Clone, Debug)]
pub struct FxiaokeConfig {
    /// Authorised apps (the first is the demo app).
    pub apps: Vec<FxiaokeApp>,
    /// Lifetime of a `corpAccessToken` (7,200 s).
    pub token_ttl: Duration,
    /// A fetch within this age of the current token returns the same token (6,600 s).
    pub token_reuse: Duration,
    /// Calls of the token endpoint allowed per minute and app (10).
    pub token_calls_per_minute: usize,
    /// Per-endpoint rate limit: `(calls, window)`, 100 calls / 20 s; `None` disables it.
    pub rate_limit: Option<(usize, Duration)>,
    /// Error code of the per-endpoint rate limit. The reference does not know whether the
    /// gateway answers 30004 or 14001 (fxiaoke.md §9); 30004 by default.
    pub rate_limit_code: i64,
    /// Calls allowed per day (GMT+8) across the enterprise; `None` = unlimited. Beyond: 30002.
    pub daily_quota: Option<u64>,
    /// Whether the enterprise bought an Open API quota at all; `false` answers 30003 everywhere.
    pub openapi_purchased: bool,
    /// Largest `limit` of a query (100, the current docs); larger values answer 15002.
    pub max_query_limit: usize,
    /// Largest `offset` of a query (10,000); larger ones answer 10013.
    pub max_query_offset: usize,
    /// `errorCode` of business-rule failures (a lookup that does not exist, a record that is
    /// not there, delete before invalid, a bad option value). The reference pairs the lookup
    /// error text with the placeholder code -1 and knows no real one; -1 by default.
    pub business_error_code: i64,
    /// Whether `/cgi/crm/v2/data/*` serves custom (`…__c`) objects. The reference does not
    /// know (fxiaoke.md §4.1); by default the sandbox refuses them (15002) so that a client
    /// that routes custom objects to the preset path is caught. The custom path always
    /// serves preset objects too (crm-cli does that).
    pub accept_custom_on_preset_path: bool,
}

impl Default for FxiaokeConfig {
    fn default() -> Self {
        Self {
            apps: vec![FxiaokeApp::default()],
            token_ttl: Duration::from_secs(7200),
            token_reuse: Duration::from_secs(6600),
            token_calls_per_minute: 10,
            rate_limit: Some((100, Duration::from_secs(20))),
            rate_limit_code: 30004,
            daily_quota: None,
            openapi_purchased: true,
            max_query_limit: 100,
            max_query_offset: 10_000,
            business_error_code: -1,
            accept_custom_on_preset_path: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let config = Config::default();
        let text = format!("{config:?}");
        assert!(!text.contains("P@ssw0rd"));
        assert!(!text.contains("0123456789abcdef0123456789abcdef"));
        assert!(!text.contains("0123456789ABCDEF0123456789ABCDEF"));
        assert!(text.contains("<redacted>"));
    }
}
