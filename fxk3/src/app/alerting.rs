//! The app's side of alerts and the web page: channels built from `[alerts]` with their
//! secrets, and the state of the flows as problems.

use std::time::Duration;

use secrecy::SecretString;

use super::{App, SecretSource, secret};
use crate::alerts::{Alerter, Channel, ChannelKind};
use crate::config::Config;
use crate::error::{AppError, ConfigError};
use crate::health::{self, FlowHealth};

/// How long a webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// The channels of `[alerts]`, their addresses and signing secrets read from `env`.
fn alert_channels(
    config: &Config,
    env: &SecretSource,
    fxiaoke: Option<&fxiaoke_sdk::Client>,
) -> Result<Vec<Channel>, AppError> {
    let mut out = Vec::new();
    let mut http = None;
    for c in &config.alerts.channels {
        let what = format!("the address of the `{}` alert channel", c.kind.as_str());
        let channel = match (c.kind, fxiaoke) {
            (ChannelKind::Crm, Some(fx)) => Channel::crm(fx.clone(), c.users.clone()),
            (ChannelKind::Crm, None) => {
                return Err(ConfigError::Invalid(
                    "alerts channel `crm`: needs the [fxiaoke] connection".into(),
                )
                .into());
            }
            (kind, _) => {
                let url = secret(env, c.url_env.as_deref().unwrap_or_default(), &what)?;
                let signing = c
                    .secret_env
                    .as_deref()
                    .map(|var| secret(env, var, "an alert robot's signing secret"))
                    .transpose()?;
                let http = match &http {
                    Some(h) => h,
                    None => http.insert(
                        reqwest::Client::builder()
                            .timeout(WEBHOOK_TIMEOUT)
                            .build()
                            .map_err(|e| AppError::Connect {
                                system: "alerts",
                                reason: e.to_string(),
                            })?,
                    ),
                };
                Channel::url(
                    kind,
                    http.clone(),
                    SecretString::from(url),
                    signing.map(SecretString::from),
                )
            }
        };
        out.push(channel);
    }
    Ok(out)
}

impl App {
    /// The state of the flows named (all when `names` is empty), in dependency order.
    pub async fn health(&self, names: &[String]) -> Result<Vec<FlowHealth>, AppError> {
        let names: Vec<&str> = self
            .select(names)?
            .into_iter()
            .map(sync_core::Flow::name)
            .collect();
        Ok(health::read_all(self.store.as_ref(), &names).await?)
    }

    /// An alerter for the configured channels (none: it only keeps the ledger). Their
    /// addresses and secrets are read now: only `watch` alerts, so only `watch` needs them.
    pub fn alerter(&self) -> Result<Alerter, AppError> {
        let channels = alert_channels(&self.config, &self.env, self.fxiaoke.as_ref())?;
        Ok(Alerter::new(
            channels,
            self.config.alerts.remind_every(),
            self.config.alerts.language,
            self.config.time_zone()?,
        ))
    }

    /// True when a token is set, so that the web page's buttons work.
    pub fn can_change_from_page(&self) -> bool {
        self.serve_token.is_some()
    }

    /// The token the web page's buttons must give, when one is set.
    pub(crate) fn serve_token(&self) -> Option<&SecretString> {
        self.serve_token.as_ref()
    }
}
