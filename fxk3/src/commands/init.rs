//! `fxk3 init`: a commented configuration and the example mappings.

use std::path::Path;

use fxk3::config::EXAMPLE;
use fxk3::{AppError, EXAMPLE_MAPPINGS};

use crate::OK;

pub(crate) fn init(dir: &Path, force: bool, json: bool) -> Result<u8, AppError> {
    let io = |path: &Path, e: std::io::Error| fxk3::ConfigError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut files = vec![(dir.join("fxk3.toml"), EXAMPLE)];
    for (name, text) in EXAMPLE_MAPPINGS {
        files.push((dir.join("mappings").join(name), text));
    }
    if !force && let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(fxk3::ConfigError::Invalid(format!(
            "{} exists; use --force to overwrite",
            path.display()
        ))
        .into());
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(path, text).map_err(|e| io(path, e))?;
    }
    let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    if json {
        out!("{}", serde_json::json!({"written": written}));
    } else {
        for w in &written {
            out!("wrote {w}");
        }
        out!(
            "\nNext: edit fxk3.toml, export the secrets it names (FXK3_FXIAOKE_APP_SECRET, …),\n\
             then `fxk3 validate` and `fxk3 run --dry-run`. To try it against the simulators:\n\
             `fxk3 sandbox` prints a configuration for them."
        );
    }
    Ok(OK)
}
