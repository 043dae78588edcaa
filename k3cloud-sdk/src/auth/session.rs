//! The per-client session: cookie jar, session id and login state.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use secrecy::{ExposeSecret, SecretString};

/// The cookie K3Cloud keys sessions by, and the header that repeats it.
pub(crate) const SESSION_COOKIE: &str = "kdservice-sessionid";

/// Cookies and login state of one client. Every cookie value is treated as a secret.
pub(crate) struct Session {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cookies: Vec<(String, SecretString)>,
    /// Bumped by every successful login; lets a caller tell whether someone else has already
    /// replaced the session it saw fail.
    generation: u64,
    logged_in: bool,
    /// The last refusal of the credentials and when it came. Calls within
    /// [`REFUSAL_COOL_DOWN`] of it fail at once instead of repeating a login that is bound to
    /// fail (and could lock the account).
    last_refusal: Option<Refusal>,
}

/// How long a refused login is not retried by calls (an explicit `Client::login` always is).
pub(crate) const REFUSAL_COOL_DOWN: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct Refusal {
    pub(crate) message: String,
    pub(crate) login_result_type: Option<i64>,
    at: tokio::time::Instant,
}

/// The session headers to send with one request.
pub(crate) struct SessionHeaders {
    pub(crate) session_id: Option<HeaderValue>,
    pub(crate) cookie: Option<HeaderValue>,
}

impl Session {
    pub(crate) fn new() -> Self {
        Session {
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data updated in single statements; a panic elsewhere cannot leave
        // it half-written, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `kdservice-sessionid` header and `Cookie` header for the next request.
    pub(crate) fn headers(&self) -> SessionHeaders {
        let state = self.lock();
        let sensitive = |s: &str| {
            HeaderValue::from_str(s).ok().map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
        let session_id = state
            .cookies
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(SESSION_COOKIE))
            .and_then(|(_, v)| sensitive(v.expose_secret()));
        let cookie = if state.cookies.is_empty() {
            None
        } else {
            let joined = state
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={}", v.expose_secret()))
                .collect::<Vec<_>>()
                .join("; ");
            sensitive(&joined)
        };
        SessionHeaders { session_id, cookie }
    }

    /// Keeps the cookies of a response (name and value only; attributes are irrelevant for a
    /// client that talks to one server).
    pub(crate) fn store_cookies(&self, headers: &HeaderMap) {
        let mut parsed = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_set_cookie)
            .peekable();
        if parsed.peek().is_none() {
            return;
        }
        let mut state = self.lock();
        for (name, value, remove) in parsed {
            state.cookies.retain(|(n, _)| n != &name);
            if !remove {
                state.cookies.push((name, SecretString::from(value)));
            }
        }
    }

    /// Sets the session cookie named by a login body when the server set none.
    pub(crate) fn adopt_session_id(&self, id: &str) {
        let mut state = self.lock();
        if !state
            .cookies
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(SESSION_COOKIE))
        {
            state
                .cookies
                .push((SESSION_COOKIE.to_owned(), SecretString::from(id.to_owned())));
        }
    }

    pub(crate) fn has_session_cookie(&self) -> bool {
        self.lock()
            .cookies
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(SESSION_COOKIE))
    }

    /// The generation of the live session, if logged in.
    pub(crate) fn live_generation(&self) -> Option<u64> {
        let state = self.lock();
        state.logged_in.then_some(state.generation)
    }

    /// Starts a login attempt: forgets the old session.
    pub(crate) fn begin_login(&self) {
        let mut state = self.lock();
        state.logged_in = false;
        state.cookies.clear();
    }

    /// Records a successful login; returns the new generation.
    pub(crate) fn finish_login(&self) -> u64 {
        let mut state = self.lock();
        state.logged_in = true;
        state.generation += 1;
        state.last_refusal = None;
        state.generation
    }

    pub(crate) fn record_refusal(&self, message: &str, login_result_type: Option<i64>) {
        self.lock().last_refusal = Some(Refusal {
            message: message.to_owned(),
            login_result_type,
            at: tokio::time::Instant::now(),
        });
    }

    /// A refusal recent enough that logging in again is pointless.
    pub(crate) fn recent_refusal(&self) -> Option<Refusal> {
        self.lock()
            .last_refusal
            .clone()
            .filter(|r| r.at.elapsed() < REFUSAL_COOL_DOWN)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Session")
            .field("logged_in", &state.logged_in)
            .field("generation", &state.generation)
            .field(
                "cookies",
                &state
                    .cookies
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// `name=value; attr…` → (name, value, remove?). An empty value or `Max-Age=0` deletes.
fn parse_set_cookie(header: &str) -> Option<(String, String, bool)> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let value = value.trim().trim_matches('"');
    let expired = parts.any(|attr| {
        attr.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("max-age") && v.trim().starts_with(['0', '-'])
        })
    });
    Some((
        name.to_owned(),
        value.to_owned(),
        expired || value.is_empty(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_kept_replaced_and_echoed() {
        let s = Session::new();
        assert!(s.headers().cookie.is_none());
        s.store_cookies(&response_headers(&[
            "kdservice-sessionid=2c6dfa6c-039b; path=/; expires=Thu, 28-Aug-2099 10:00:00 GMT",
            "ASP.NET_SessionId=n3xfizba4et0o2uutwdftvzg; path=/; HttpOnly",
        ]));
        let h = s.headers();
        assert_eq!(h.session_id.unwrap().to_str().unwrap(), "2c6dfa6c-039b");
        let cookie = h.cookie.unwrap();
        assert!(cookie.is_sensitive());
        assert_eq!(
            cookie.to_str().unwrap(),
            "kdservice-sessionid=2c6dfa6c-039b; ASP.NET_SessionId=n3xfizba4et0o2uutwdftvzg"
        );
        s.store_cookies(&response_headers(&["kdservice-sessionid=new; path=/"]));
        assert_eq!(s.headers().session_id.unwrap().to_str().unwrap(), "new");
        s.store_cookies(&response_headers(&["ASP.NET_SessionId=; Max-Age=0"]));
        assert_eq!(
            s.headers().cookie.unwrap().to_str().unwrap(),
            "kdservice-sessionid=new"
        );
    }

    #[test]
    fn garbage_set_cookie_is_ignored() {
        assert_eq!(parse_set_cookie("novalue"), None);
        assert_eq!(parse_set_cookie("=x"), None);
        assert_eq!(parse_set_cookie("a=b; Max-Age=-1").map(|c| c.2), Some(true));
    }

    #[test]
    fn debug_shows_no_cookie_value() {
        let s = Session::new();
        s.adopt_session_id("secret-session-id");
        let shown = format!("{s:?}");
        assert!(shown.contains(SESSION_COOKIE));
        assert!(!shown.contains("secret-session-id"));
    }
}
