//! Fuzz test of the configuration loader (see the `fuzz-kit` crate): the example
//! configuration and the simulators' one, and millions of mutants of them. A broken file gets
//! a `ConfigError` naming its line, never a panic.
//! `FUZZ_CASES=10000000 cargo test --release -p fxk3 --test fuzz_config`.

use std::path::Path;

use fxk3::Config;

#[tokio::test]
async fn fuzz_configuration_files() {
    let sandbox = fxk3_simulators::Sandbox::builder().start().await.unwrap();
    let demo = fxk3::demo_config_text(&sandbox);
    fuzz_kit::Fuzz::new("fxk3 configuration loader", 20_000)
        .corpus([fxk3::config::EXAMPLE, demo.as_str()])
        .dictionary([
            "[state]",
            "[fxiaoke]",
            "[k3cloud]",
            "[[flows]]",
            "[schedule]",
            "path",
            "base_url",
            "server_url",
            "app_id",
            "auth",
            "\"password\"",
            "\"sign\"",
            "time_zone",
            "\"+08:00\"",
            "\"-12:00\"",
            "\"Z\"",
            "name",
            "kind",
            "\"customers\"",
            "\"orders\"",
            "\"deliveries\"",
            "mapping",
            "depends_on",
            "lookback",
            "settle",
            "quiet_period",
            "retry_after",
            "start_from",
            "every",
            "\"0s\"",
            "\"3650d\"",
            "\"99999999999999999999h\"",
            "\"2024-02-30\"",
            "batch_size",
            "0",
            "actions",
            "rate_limit",
            "timeout_secs",
            "accept_invalid_certs",
        ])
        .run(|input| {
            let Ok(text) = std::str::from_utf8(input) else {
                return false;
            };
            let Ok(config) = Config::from_toml(text, Path::new("/etc/fxk3")) else {
                return false;
            };
            let _ = config.time_zone();
            let _ = config.every();
            for flow in &config.flows {
                let _ = config.resolve(&flow.mapping);
            }
            true
        });
}
