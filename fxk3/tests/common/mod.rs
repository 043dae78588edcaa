//! Shared by the process-level tests: a directory holding `fxk3.toml` for the simulators and
//! the example mappings.
#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::path::Path;

use fxk3_simulators::Sandbox;

/// How the configuration departs from the simulators' example.
pub struct Options {
    /// `k3cloud.auth`: `"signed"`, or a session mode (`"password"` turns `password_env` on).
    pub auth: &'static str,
    /// `timeout_secs` of both connections (the example's default when `None`).
    pub timeout_secs: Option<u64>,
    /// The client-side Fxiaoke rate limit.
    pub rate_limit: bool,
}

/// Writes `fxk3.toml` for `sandbox` into `dir`, with `per_flow(mapping_line)` added under
/// each flow's `mapping = …` line, and the example mappings under `dir/mappings`.
pub fn write_setup(
    sandbox: &Sandbox,
    dir: &Path,
    options: &Options,
    per_flow: impl Fn(&str) -> String,
) -> String {
    let mut config = String::new();
    for line in fxk3::sandbox_config_text(sandbox).lines() {
        let line = match line {
            "auth = \"signed\"" => format!("auth = {:?}", options.auth),
            "# password_env = \"FXK3_K3CLOUD_PASSWORD\"    # with auth = \"password\"" => {
                "password_env = \"FXK3_K3CLOUD_PASSWORD\"".to_owned()
            }
            l if l.starts_with("# rate_limit = true") => {
                format!("rate_limit = {}", options.rate_limit)
            }
            other => other.to_owned(),
        };
        config.push_str(&line);
        config.push('\n');
        if let (Some(secs), "[fxiaoke]" | "[k3cloud]") = (options.timeout_secs, line.as_str()) {
            let _ = writeln!(config, "timeout_secs = {secs}");
        }
        if line.starts_with("mapping = ") {
            config.push_str(&per_flow(&line));
        }
    }
    assert!(
        config.contains(&format!("\nauth = {:?}\n", options.auth))
            && config.contains(&format!("\nrate_limit = {}\n", options.rate_limit)),
        "{config}"
    );
    std::fs::write(dir.join("fxk3.toml"), &config).unwrap();
    std::fs::create_dir(dir.join("mappings")).unwrap();
    for (name, text) in fxk3::EXAMPLE_MAPPINGS {
        std::fs::write(dir.join("mappings").join(name), text).unwrap();
    }
    config
}
