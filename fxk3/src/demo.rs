//! A configuration for the built-in simulators (`fxk3 sandbox`, the demo).

use std::path::Path;
use std::sync::Arc;

use crate::app::SecretSource;
use crate::config::{Config, EXAMPLE};
use crate::error::ConfigError;

/// The example configuration with both connections pointed at `sandbox` and the state in
/// `state`; secrets are the simulators' demo credentials (see [`sandbox_secrets`]).
pub fn sandbox_config(
    sandbox: &fxk3_simulators::Sandbox,
    state: &Path,
    base_dir: &Path,
) -> Result<Config, ConfigError> {
    let text = sandbox_config_text(sandbox).replace(
        "path = \"fxk3-state.sqlite3\"",
        &format!("path = {:?}", state.display().to_string()),
    );
    Config::from_toml(&text, base_dir)
}

/// The example configuration text, pointed at `sandbox`.
pub fn sandbox_config_text(sandbox: &fxk3_simulators::Sandbox) -> String {
    let k3 = &sandbox.config().k3cloud;
    let fx = &sandbox.config().fxiaoke.apps[0];
    EXAMPLE
        .replace("https://erp.example.com/k3cloud/", &sandbox.k3cloud_url())
        .replace(
            "# base_url = \"https://open.fxiaoke.com\"     # or open-hwcloud.fxiaoke.com, …",
            &format!("base_url = {:?}", sandbox.fxiaoke_url()),
        )
        .replace(
            "acct_id = \"60a1b2c3d4e5f6\"",
            &format!("acct_id = {:?}", k3.acct_id),
        )
        .replace(
            "app_id = \"123456_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\"",
            &format!("app_id = {:?}", k3.app_id),
        )
        .replace(
            "app_id = \"FSAID_1000001\"",
            &format!("app_id = {:?}", fx.app_id),
        )
}

/// [`sandbox_config_text`] with the `export` lines for the demo secrets, as `fxk3 sandbox`
/// prints it.
pub fn demo_config_text(sandbox: &fxk3_simulators::Sandbox) -> String {
    let k3 = &sandbox.config().k3cloud;
    let fx = &sandbox.config().fxiaoke.apps[0];
    format!(
        "# A configuration for these simulators: save it as fxk3.toml next to the mappings of\n\
         # `fxk3 init`, and export the demo secrets first:\n\
         #   export FXK3_FXIAOKE_APP_SECRET={}\n\
         #   export FXK3_FXIAOKE_PERMANENT_CODE={}\n\
         #   export FXK3_K3CLOUD_APP_SECRET={}\n\n{}",
        fx.app_secret,
        fx.permanent_code,
        k3.app_secret,
        sandbox_config_text(sandbox)
    )
}

/// The simulators' demo credentials as a [`SecretSource`].
pub fn sandbox_secrets(sandbox: &fxk3_simulators::Sandbox) -> SecretSource {
    let k3 = sandbox.config().k3cloud.clone();
    let fx = sandbox.config().fxiaoke.apps[0].clone();
    Arc::new(move |name| match name {
        "FXK3_FXIAOKE_APP_SECRET" => Some(fx.app_secret.clone()),
        "FXK3_FXIAOKE_PERMANENT_CODE" => Some(fx.permanent_code.clone()),
        "FXK3_K3CLOUD_APP_SECRET" => Some(k3.app_secret.clone()),
        "FXK3_K3CLOUD_PASSWORD" => Some(k3.password.clone()),
        _ => None,
    })
}
