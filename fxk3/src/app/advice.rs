//! What to do about a flow that stopped: the settings to check, or that nothing was lost.

use sync_core::ConnectorErrorKind;

use crate::config::{Config, FlowKind, K3Auth};

/// What to do about a flow that stopped on a call to one of the systems (the settings to
/// check, with the URL tried) or on a cursor a fast clock set. `None` for other errors.
pub fn advice(config: &Config, error: &sync_core::Error) -> Option<String> {
    let (flow, at_source, error) = match error {
        sync_core::Error::CursorAhead { flow, .. } => {
            return Some(format!(
                "set the clocks right (NTP), then `fxk3 set-cursor {flow} TIME` with a time \
                 before the clock went wrong; records that did not change are not written again"
            ));
        }
        sync_core::Error::Source { flow, error } => (flow, true, error),
        sync_core::Error::Sink { flow, error } => (flow, false, error),
        _ => return None,
    };
    // The connectors name the system; a connector that does not is placed by the flow:
    // customers and orders read the CRM and write the ERP, deliveries the other way round.
    let crm = match error.system() {
        Some(system) => system == sync_core::System::Fxiaoke,
        None => at_source != (config.flow(flow)?.kind == FlowKind::Deliveries),
    };
    let system = if crm { "Fxiaoke" } else { "K3Cloud" };
    let message = error.message();
    let unreachable = error
        .source_as::<fxiaoke_sdk::Error>()
        .is_some_and(|e| matches!(e, fxiaoke_sdk::Error::Connect { .. }))
        || error
            .source_as::<k3cloud_sdk::Error>()
            .is_some_and(|e| matches!(e, k3cloud_sdk::Error::Connect { .. }))
        || message.starts_with("could not connect");
    // A rate limit or a server error is not an unreachable server: the address is fine.
    let rate_limited = message.starts_with("rate limited")
        || matches!(
            error.code(),
            Some("errorCode 30004" | "errorCode 14001" | "MsgCode 14")
        );
    if error.kind() == ConnectorErrorKind::Transient && rate_limited {
        return Some(format!(
            "{system} refused calls over its rate limit; nothing was lost, the next run goes on \
             from here — if it keeps happening, run less often (watch --every) or give the flows \
             smaller batches"
        ));
    }
    // The day's quota is not a wrong setting either: it comes back at midnight.
    let quota = message.starts_with("daily API quota") || error.code() == Some("errorCode 30002");
    if quota {
        return Some(format!(
            "{system}'s API quota for the day is used up (it comes back at 00:00 China time, or \
             buy more); nothing was lost, the first run after that goes on from here"
        ));
    }
    if error.kind() == ConnectorErrorKind::Transient && !unreachable {
        return Some(format!(
            "{system} answered with a temporary error; nothing was lost, the next run goes on \
             from the last settled record"
        ));
    }
    match (error.kind(), crm) {
        (ConnectorErrorKind::Transient, true) => {
            let fx = config.fxiaoke.as_ref()?;
            let url = fx.base_url.as_deref().unwrap_or("https://open.fxiaoke.com");
            Some(format!(
                "check [fxiaoke] base_url ({url}) and that this machine can reach it, then run again"
            ))
        }
        (ConnectorErrorKind::Transient, false) => {
            let url = &config.k3cloud.as_ref()?.server_url;
            Some(format!(
                "check [k3cloud] server_url ({url}) and that this machine can reach it, then run again"
            ))
        }
        (ConnectorErrorKind::Permanent, true) => {
            let fx = config.fxiaoke.as_ref()?;
            Some(format!(
                "check [fxiaoke] app_id and operator, the secrets in {} and {}, and the operator's \
                 rights in the CRM",
                fx.app_secret_env, fx.permanent_code_env
            ))
        }
        (ConnectorErrorKind::Permanent, false) => {
            let k3 = config.k3cloud.as_ref()?;
            let secret = match k3.auth {
                K3Auth::Password => format!("the password in {}", k3.password_env),
                _ => format!("app_id and the secret in {}", k3.app_secret_env),
            };
            Some(format!(
                "check [k3cloud] acct_id and user, {secret}, and the user's rights in the ERP"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::ConnectorError;

    #[test]
    fn advice_fits_the_failure() {
        let config =
            Config::from_toml(crate::config::EXAMPLE, std::path::Path::new("/etc/fxk3")).unwrap();
        let source = |error: ConnectorError| sync_core::Error::Source {
            flow: "customers".into(),
            error,
        };
        let sink = |error: ConnectorError| sync_core::Error::Sink {
            flow: "customers".into(),
            error,
        };
        let table: Vec<(sync_core::Error, &str)> = vec![
            (
                source(
                    ConnectorError::transient("rate limited: 超过频率")
                        .with_code("errorCode 30004"),
                ),
                "Fxiaoke refused calls over its rate limit",
            ),
            (
                sink(ConnectorError::transient("network control").with_code("MsgCode 14")),
                "K3Cloud refused calls over its rate limit",
            ),
            (
                source(ConnectorError::transient(
                    "Fxiaoke answered HTTP 502: bad gateway",
                )),
                "Fxiaoke answered with a temporary error",
            ),
            (
                source(ConnectorError::transient(
                    "could not connect to Fxiaoke: refused",
                )),
                "check [fxiaoke] base_url",
            ),
            (
                sink(ConnectorError::transient(
                    "could not connect to K3Cloud: refused",
                )),
                "check [k3cloud] server_url",
            ),
            (
                source(ConnectorError::permanent("credentials refused: 20001")),
                "check [fxiaoke] app_id",
            ),
            (
                source(
                    ConnectorError::permanent("daily API quota exhausted: 当天访问频次超限")
                        .with_code("errorCode 30002"),
                ),
                "Fxiaoke's API quota for the day is used up",
            ),
            // The connector names the system: a write-back to the CRM fails in the customers
            // flow's sink position, and the advice is about Fxiaoke all the same.
            (
                sink(
                    ConnectorError::permanent("credentials refused: 20001")
                        .with_system(sync_core::System::Fxiaoke),
                ),
                "check [fxiaoke] app_id",
            ),
            // Unreachable is read from the SDK's error, whatever the message says.
            (
                sink(
                    ConnectorError::transient("error sending request")
                        .with_system(sync_core::System::K3Cloud)
                        .with_source(k3cloud_sdk::Error::Connect {
                            source: reqwest::Client::new().get("http://").build().unwrap_err(),
                        }),
                ),
                "check [k3cloud] server_url",
            ),
            (
                sync_core::Error::CursorAhead {
                    flow: "customers".into(),
                    cursor_ms: 2,
                    now_ms: 1,
                },
                "set the clocks right (NTP), then `fxk3 set-cursor customers TIME`",
            ),
        ];
        for (error, expected) in table {
            let advice = advice(&config, &error).unwrap();
            assert!(advice.starts_with(expected), "{error}: {advice}");
        }
    }
}
