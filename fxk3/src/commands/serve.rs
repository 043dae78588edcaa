//! `fxk3 serve` and `watch --serve`: the web page on its own or beside the runs.

use std::sync::Arc;

use fxk3::metrics::Metrics;
use fxk3::{App, AppError, ConfigError};
use tokio::net::TcpListener;

use super::run::stop_and_notify_on_signals;
use crate::OK;

/// Binds `listen` (`""`: the configuration's `serve.listen`) and says where on stderr: with
/// port 0 the system picks one, and the line tells which.
pub(crate) async fn bind(app: &App, listen: &str) -> Result<TcpListener, AppError> {
    let listen = if listen.is_empty() {
        app.config().serve.listen()
    } else {
        listen
    };
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| ConfigError::Invalid(format!("serve: cannot listen on {listen}: {e}")))?;
    let at = listener
        .local_addr()
        .map_err(|e| ConfigError::Invalid(format!("serve: {e}")))?;
    eprintln!("fxk3: serving http://{at}/ (metrics at /metrics)");
    if !at.ip().is_loopback() {
        eprintln!(
            "fxk3: the page is open to other machines; put it behind a proxy with TLS, and keep {} secret",
            app.config().serve.token_env
        );
    }
    if !app.can_change_from_page() {
        eprintln!(
            "fxk3: no token in {}: the page only shows (retry and drop are off)",
            app.config().serve.token_env
        );
    }
    Ok(listener)
}

/// Spawns the server on `listener`; it stops when `stopped` turns true.
pub(crate) fn spawn(
    listener: TcpListener,
    app: Arc<App>,
    metrics: Metrics,
    changed: Arc<tokio::sync::Notify>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    tokio::spawn(fxk3::serve::serve(
        listener,
        app,
        metrics,
        changed,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ))
}

/// `fxk3 serve`: the page alone, on the state file, until Ctrl-C or SIGTERM.
pub(crate) async fn serve(app: App, metrics: &Metrics, listen: &str) -> Result<u8, AppError> {
    let app = Arc::new(app);
    let listener = bind(&app, listen).await?;
    let (_, stopped) = stop_and_notify_on_signals();
    spawn(listener, app, metrics.clone(), Arc::default(), stopped)
        .await
        .map_err(|e| ConfigError::Invalid(format!("serve: {e}")))?
        .map_err(|e| ConfigError::Invalid(format!("serve: {e}")))?;
    Ok(OK)
}
