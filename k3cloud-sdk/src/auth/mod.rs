//! How the client proves who it is: signed headers (the default) or one of three session logins.

mod login;
mod manager;
mod session;
mod signature;

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

pub use login::LoginInfo;
pub(crate) use login::{LoginOutcome, login_body, parse_login};
pub(crate) use manager::SessionManager;
pub(crate) use session::SESSION_COOKIE;
pub(crate) use signature::{HeaderSigner, Signer};

/// Who the client acts as; part of every signed header and login.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) acct_id: String,
    pub(crate) user: String,
    pub(crate) lcid: u32,
    pub(crate) org: String,
}

/// Credentials and the way to use them.
///
/// | constructor | K3Cloud name | what happens |
/// |---|---|---|
/// | [`Auth::signed`] | 第三方系统登录授权 (signed headers) | every call carries `X-Api-*`/`X-Kd-*` HMAC headers; no login call |
/// | [`Auth::password`] | `ValidateUser` | user name + password login, then a session cookie |
/// | [`Auth::app_secret`] | `LoginByAppSecret` | app id + secret login, then a session cookie |
/// | [`Auth::sign`] | `LoginBySign` | SHA-256-signed login, then a session cookie |
///
/// The account id (data centre), user name, lcid and organisation are set on the
/// [`ClientBuilder`](crate::ClientBuilder). Secrets never appear in `Debug` output:
///
/// ```
/// use k3cloud_sdk::Auth;
/// let auth = Auth::signed("204399_72epSbtEQMC92Vwt2d3LRa9LRqSc1tqJ", "fb7d46647ac346dbb5fcd45b65512a45");
/// let shown = format!("{auth:?}");
/// assert!(!shown.contains("fb7d4664") && !shown.contains("72epSbt"));
/// ```
#[derive(Clone)]
pub struct Auth {
    pub(crate) kind: AuthKind,
}

#[derive(Clone)]
pub(crate) enum AuthKind {
    Signed {
        app_id: SecretString,
        app_secret: SecretString,
    },
    Password {
        password: SecretString,
    },
    AppSecret {
        app_id: SecretString,
        app_secret: SecretString,
    },
    Sign {
        app_id: SecretString,
        app_secret: SecretString,
    },
}

/// Which authentication mode an [`Auth`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMode {
    /// Signed headers on every call (stateless).
    Signed,
    /// `AuthService.ValidateUser` session login.
    ValidateUser,
    /// `AuthService.LoginByAppSecret` session login.
    LoginByAppSecret,
    /// `AuthService.LoginBySign` session login.
    LoginBySign,
}

impl Auth {
    /// Signed headers with the app id (`<clientId>_<32 chars>`) and app secret of a
    /// 第三方系统登录授权 entry. Needs server patch PT136657 (7.3.1310.2) or later.
    pub fn signed(app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Auth {
            kind: AuthKind::Signed {
                app_id: SecretString::from(app_id.into()),
                app_secret: SecretString::from(app_secret.into()),
            },
        }
    }

    /// `ValidateUser`: the user's password.
    pub fn password(password: impl Into<String>) -> Self {
        Auth {
            kind: AuthKind::Password {
                password: SecretString::from(password.into()),
            },
        }
    }

    /// `LoginByAppSecret`: app id and app secret of a 第三方系统登录授权 entry.
    pub fn app_secret(app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Auth {
            kind: AuthKind::AppSecret {
                app_id: SecretString::from(app_id.into()),
                app_secret: SecretString::from(app_secret.into()),
            },
        }
    }

    /// `LoginBySign`: like [`Auth::app_secret`], but the secret itself is not sent, only a
    /// SHA-256 signature over it and the current time.
    pub fn sign(app_id: impl Into<String>, app_secret: impl Into<String>) -> Self {
        Auth {
            kind: AuthKind::Sign {
                app_id: SecretString::from(app_id.into()),
                app_secret: SecretString::from(app_secret.into()),
            },
        }
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        match self.kind {
            AuthKind::Signed { .. } => AuthMode::Signed,
            AuthKind::Password { .. } => AuthMode::ValidateUser,
            AuthKind::AppSecret { .. } => AuthMode::LoginByAppSecret,
            AuthKind::Sign { .. } => AuthMode::LoginBySign,
        }
    }

    /// The header signer of signed-header auth.
    pub(crate) fn signer(&self, id: &Identity) -> Option<Result<HeaderSigner, String>> {
        match &self.kind {
            AuthKind::Signed { app_id, app_secret } => Some(HeaderSigner::new(&Signer {
                acct_id: &id.acct_id,
                user: &id.user,
                lcid: id.lcid,
                org: &id.org,
                app_id: app_id.expose_secret(),
                app_secret: app_secret.expose_secret(),
            })),
            _ => None,
        }
    }

    /// True for the three session logins.
    pub(crate) fn uses_session(&self) -> bool {
        self.mode() != AuthMode::Signed
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let empty = |s: &SecretString| s.expose_secret().trim().is_empty();
        match &self.kind {
            AuthKind::Password { password } if empty(password) => Err("password is empty".into()),
            AuthKind::Signed { app_id, app_secret }
            | AuthKind::AppSecret { app_id, app_secret }
            | AuthKind::Sign { app_id, app_secret } => {
                if empty(app_id) {
                    Err("app id is empty".into())
                } else if empty(app_secret) {
                    Err("app secret is empty".into())
                } else {
                    Ok(())
                }
            }
            AuthKind::Password { .. } => Ok(()),
        }
    }
}

/// Shows the client-id part of an app id (`204399_…`), never the secret part.
pub(crate) fn app_id_hint(app_id: &SecretString) -> String {
    match app_id.expose_secret().split_once('_') {
        Some((client, _)) => format!("{client}_…"),
        None => "…".into(),
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mode, app_id) = match &self.kind {
            AuthKind::Signed { app_id, .. } => ("Signed", Some(app_id)),
            AuthKind::Password { .. } => ("ValidateUser", None),
            AuthKind::AppSecret { app_id, .. } => ("LoginByAppSecret", Some(app_id)),
            AuthKind::Sign { app_id, .. } => ("LoginBySign", Some(app_id)),
        };
        let mut s = f.debug_struct("Auth");
        s.field("mode", &mode);
        if let Some(id) = app_id {
            s.field("app_id", &app_id_hint(id));
        }
        s.field("secret", &"[redacted]").finish()
    }
}
