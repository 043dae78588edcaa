//! `fxk3 sandbox`: both simulators on one port.

use fxk3::AppError;

use super::run::shutdown_signal;
use crate::OK;

pub(crate) async fn sandbox(listen: &str, no_demo: bool) -> Result<u8, AppError> {
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        fxk3::ConfigError::Invalid(format!("--listen: `{listen}` is not an address"))
    })?;
    let sb = fxk3_simulators::Sandbox::builder()
        .listen(addr)
        .demo_data(!no_demo)
        .start()
        .await
        .map_err(|e| AppError::Connect {
            system: "sandbox",
            reason: e.to_string(),
        })?;
    out!("{}", fxk3::demo_config_text(&sb));
    out!(
        "# Simulators running at {} — Ctrl-C to stop.",
        sb.base_url()
    );
    shutdown_signal().await;
    sb.shutdown().await;
    Ok(OK)
}
