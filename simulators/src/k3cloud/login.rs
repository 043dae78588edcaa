//! Sessions and the login services: data centres, the four logins, the session check of every call.

use axum::http::HeaderMap;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;

use super::wire::Params;
use crate::config::K3Release;
use crate::reply::Reply;

use super::{AuthDenied, K3Sim, K3State, Session, auth, not_found, session_id};

impl K3Sim {
    /// Whether the request names a live session; if so, its idle timer restarts.
    pub(super) fn touch_session(&self, st: &K3State, headers: &HeaderMap, now_ms: i64) -> bool {
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let Some(session) = session_id(headers).and_then(|sid| st.sessions.get(&sid)) else {
            return false;
        };
        if now_ms - session.last_ms.load(Ordering::Relaxed) <= ttl_ms {
            session.last_ms.store(now_ms, Ordering::Relaxed);
            return true;
        }
        false
    }

    pub(super) fn data_centers(&self) -> Reply {
        Reply::json(&json!([{
            "Id": self.config.acct_id,
            "Number": "DEMO01",
            "Name": self.config.acct_name,
            "Version": self.config.server_version,
            "GDCID": "",
            "AuthenticationMethods": [],
        }]))
    }

    /// Session by SID (header `kdservice-sessionid`, Java's `SID`, or the cookie), else the
    /// signed headers (k3cloud.md §3.1.2): a live SID is accepted without checking
    /// credentials; an unknown one is ignored.
    pub(super) fn authenticate(
        &self,
        st: &mut K3State,
        headers: &HeaderMap,
        path: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, AuthDenied> {
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        if let Some(sid) = session_id(headers)
            && let Some(session) = st.sessions.get(&sid)
        {
            if now_ms - session.last_ms.load(Ordering::Relaxed) <= ttl_ms {
                session.last_ms.store(now_ms, Ordering::Relaxed);
                return Ok(Vec::new());
            }
            st.sessions.remove(&sid);
        }
        if headers.get("x-kd-appkey").is_none() {
            return Err(AuthDenied::Lost);
        }
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let signed = auth::SignedHeaders { get: &get };
        match auth::verify(&signed, path, &self.config, now_ms.div_euclid(1000)) {
            Ok(()) => Ok(self.new_session(st, now_ms).1),
            Err(auth::SignFailure::Passport) => Err(AuthDenied::Passport),
            Err(auth::SignFailure::Lost(why)) => {
                tracing::debug!(why, "signed headers refused");
                Err(AuthDenied::LostWithEmptySid)
            }
        }
    }

    pub(super) fn new_session(&self, st: &mut K3State, now_ms: i64) -> (String, Vec<String>) {
        let sid = st.rng.uuid();
        let asp = st.rng.alnum(24);
        if st.sessions.len() >= 10_000 {
            // Signed-header clients that ignore the cookie open a session per call.
            let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
            st.sessions
                .retain(|_, s| now_ms - s.last_ms.load(Ordering::Relaxed) <= ttl_ms);
        }
        st.sessions.insert(
            sid.clone(),
            Session {
                last_ms: AtomicI64::new(now_ms),
            },
        );
        if st.issued.len() < crate::fxiaoke::ISSUED_KEPT {
            st.issued.extend([sid.clone(), asp.clone()]);
        }
        let cookies = vec![
            format!("kdservice-sessionid={sid}; path=/"),
            format!("ASP.NET_SessionId={asp}; path=/; HttpOnly"),
        ];
        (sid, cookies)
    }

    pub(super) fn login(
        &self,
        st: &mut K3State,
        method: &str,
        p: &Params,
        headers: &HeaderMap,
        now_ms: i64,
    ) -> Reply {
        let cfg = &self.config;
        let s = |i: usize, name: &str| p.string(i, name).unwrap_or_default();
        let lcid_ok = |i: usize| {
            p.string(i, "lcid").is_none_or(|l| {
                l.trim()
                    .parse::<u32>()
                    .is_ok_and(|l| cfg.lcids.contains(&l))
            })
        };
        let acct = s(0, "acctID");
        let user = s(1, "username");
        let ok = match method {
            "Logout" => {
                if let Some(sid) = session_id(headers) {
                    st.sessions.remove(&sid);
                }
                return Reply::json(&true);
            }
            "ValidateUser" => s(2, "password") == cfg.password && lcid_ok(3),
            "ValidateUser2" => s(2, "password") == cfg.password && lcid_ok(4),
            "LoginByAppSecret" | "LoginByAppSecret2" => {
                s(2, "appid") == cfg.app_id
                    && s(3, "appsecret") == cfg.app_secret
                    && lcid_ok(if method == "LoginByAppSecret" { 4 } else { 5 })
            }
            "LoginBySign" | "LoginBySign2" => {
                let ts = s(3, "timestamp");
                let fresh = cfg.timestamp_window.is_none_or(|w| {
                    ts.trim()
                        .parse::<i64>()
                        .is_ok_and(|t| (now_ms.div_euclid(1000) - t).unsigned_abs() <= w.as_secs())
                });
                fresh
                    && s(2, "appid") == cfg.app_id
                    && s(4, "sign").eq_ignore_ascii_case(&auth::login_sign(
                        &acct,
                        &user,
                        &cfg.app_id,
                        &cfg.app_secret,
                        &ts,
                    ))
                    && lcid_ok(if method == "LoginBySign" { 5 } else { 6 })
            }
            _ => return not_found(method),
        } && acct == cfg.acct_id
            && user == cfg.user_name;
        if !ok {
            // LoginResultType 0 = PWError (用户或密码错误); the exact Message text is not in
            // the reference, the wording is ours.
            let message = if acct == cfg.acct_id {
                "用户名或密码错误！"
            } else {
                "数据中心不存在或已停用！"
            };
            return Reply::json(&json!({
                "Message": message,
                "MessageCode": "",
                "LoginResultType": 0,
                "Context": null,
                "KDSVCSessionId": null,
                "FormId": null,
                "RedirectFormParam": null,
                "FormInputObject": null,
                "ErrorStackTrace": null,
                "Lcid": 0,
                "AccessToken": null,
                "KdAccessResult": null,
                "IsSuccessByAPI": false,
            }));
        }
        let (sid, cookies) = self.new_session(st, now_ms);
        let context_sid = cookies
            .get(1)
            .and_then(|c| c.split(['=', ';']).nth(1))
            .unwrap_or_default()
            .to_string();
        // Shape of responses/validateuser_success_v9.json.
        let mut answer = json!({
            "Message": null,
            "MessageCode": "CheckPasswordPolicy",
            "LoginResultType": 1,
            "Context": {
                "UserLocale": "zh-CN",
                "LogLocale": "zh-CN",
                "DBid": cfg.acct_id,
                "DatabaseType": 3,
                "SessionId": context_sid,
                "UseLanguages": [{"LocaleId": 2052, "LocaleName": "中文(简体)", "Alias": "CN", "LicenseType": 0}],
                "UserId": 100_008,
                "UserName": cfg.user_name,
                "CustomName": cfg.acct_name,
                "DisplayVersion": cfg.server_version,
                "DataCenterName": cfg.acct_name,
                "UserToken": st.rng.uuid(),
                "CurrentOrganizationInfo": {"ID": 1, "AcctOrgType": "1", "Name": "总公司", "FunctionIds": [101, 102, 103, 104]},
                "IsCH_ZH_AutoTrans": false,
                "ClientType": 32,
                "GDCID": "",
                "Gsid": st.rng.hex(19),
                "TRLevel": 1,
                "ProductEdition": 0,
                "DataCenterNumber": "DEMO01",
                "ContextResultType": 0,
                "TenantId": "",
                "IsDeployAsPublicCloud": false,
            },
            "KDSVCSessionId": sid,
            "FormId": null,
            "RedirectFormParam": null,
            "FormInputObject": null,
            "ErrorStackTrace": null,
            "Lcid": 0,
            "AccessToken": null,
            "CustomParam": {},
            "KdAccessResult": null,
            "IsSuccessByAPI": true,
        });
        if cfg.release == K3Release::Legacy {
            // An older server with a licence warning (k3cloud.md §3.2.1 gotchas, v7.1.606.1):
            // the session only in the cookie. The warning's exact text is not recorded: ours.
            answer["KDSVCSessionId"] = serde_json::Value::Null;
            answer["MessageCode"] = serde_json::Value::Null;
            answer["Message"] = json!("您的产品许可将于30天后到期，请及时联系金蝶更新许可。");
            answer["FormId"] = json!("BOS_CloudInspection");
        }
        let mut reply = Reply::json(&answer);
        reply.set_cookies = cookies;
        reply
    }
}
