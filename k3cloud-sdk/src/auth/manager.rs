//! When to log in: once for a lost session however many tasks ask, and not again right after
//! the credentials were refused. The login exchange itself (body, send, parse) is the
//! transport's; this module decides when it runs and keeps what it gave.

use std::future::Future;

use super::login::{LoginInfo, LoginOutcome};
use super::session::Session;
use crate::error::{Error, Result};

/// The session of one client and the gate that makes its logins single-flight.
#[derive(Debug)]
pub(crate) struct SessionManager {
    session: Session,
    /// Held while logging in, so that concurrent callers wait for one login.
    gate: tokio::sync::Mutex<()>,
}

impl SessionManager {
    pub(crate) fn new() -> Self {
        SessionManager {
            session: Session::new(),
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// The cookie jar, for the headers of a request and the cookies of its answer.
    pub(crate) fn jar(&self) -> &Session {
        &self.session
    }

    /// The generation of the live session, logging in with `login` first if there is none.
    pub(crate) async fn get<F, Fut>(&self, login: F) -> Result<u64>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<LoginOutcome>>,
    {
        if let Some(generation) = self.session.live_generation() {
            return Ok(generation);
        }
        self.fail_if_recently_refused()?;
        let _gate = self.gate.lock().await;
        if let Some(generation) = self.session.live_generation() {
            return Ok(generation);
        }
        self.fail_if_recently_refused()?;
        self.login_locked(login)
            .await
            .map(|(generation, _)| generation)
    }

    /// Replaces the session of `failed_generation`, unless another task already did.
    pub(crate) async fn replace<F, Fut>(&self, failed_generation: u64, login: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<LoginOutcome>>,
    {
        let _gate = self.gate.lock().await;
        if let Some(generation) = self.session.live_generation()
            && generation != failed_generation
        {
            return Ok(());
        }
        self.fail_if_recently_refused()?;
        self.login_locked(login).await.map(drop)
    }

    /// Logs in now, replacing any session, even right after a refusal.
    pub(crate) async fn login_now<F, Fut>(&self, login: F) -> Result<LoginInfo>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<LoginOutcome>>,
    {
        let _gate = self.gate.lock().await;
        self.login_locked(login).await.map(|(_, info)| info)
    }

    /// Credentials refused a moment ago are not tried again by every waiting or new call:
    /// they are wrong, and repeating the login could lock the account.
    fn fail_if_recently_refused(&self) -> Result<()> {
        match self.session.recent_refusal() {
            Some(r) => Err(Error::AuthFailed {
                message: r.message,
                login_result_type: r.login_result_type,
            }),
            None => Ok(()),
        }
    }

    /// Logs in (the gate is held): forgets the old session, keeps the new one's id (from the
    /// cookie, else from the answer's body) and remembers a refusal.
    async fn login_locked<F, Fut>(&self, login: F) -> Result<(u64, LoginInfo)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<LoginOutcome>>,
    {
        self.session.begin_login();
        let outcome = login().await.inspect_err(|e| {
            if let Error::AuthFailed {
                message,
                login_result_type,
            } = e
            {
                self.session.record_refusal(message, *login_result_type);
            }
        })?;
        if !self.session.has_session_cookie() {
            let Some(sid) = &outcome.body_session_id else {
                let message = "login answered success but named no session".to_owned();
                self.session
                    .record_refusal(&message, Some(outcome.info.result_type));
                return Err(Error::AuthFailed {
                    message,
                    login_result_type: Some(outcome.info.result_type),
                });
            };
            self.session.adopt_session_id(sid);
        }
        if let Some(notice) = outcome
            .info
            .message
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            tracing::warn!(
                notice,
                "K3Cloud login succeeded with a notice (often a licence warning)"
            );
        }
        let generation = self.session.finish_login();
        tracing::info!(generation, "logged in");
        Ok((generation, outcome.info))
    }
}
