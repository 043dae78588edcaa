//! `fxk3 validate`: the mappings checked against both systems' metadata.

use fxk3::{App, AppError};

use crate::{BAD_CONFIGURATION, OK};

pub(crate) async fn validate(app: &App, flows: &[String], json: bool) -> Result<u8, AppError> {
    let results = app.validate(flows).await?;
    let errors = results
        .iter()
        .flat_map(|(_, issues)| issues)
        .filter(|i| i.severity == sync_core::mapping::Severity::Error)
        .count();
    if json {
        let v: Vec<_> = results
            .iter()
            .map(|(f, issues)| serde_json::json!({"flow": f, "issues": issues.iter().map(ToString::to_string).collect::<Vec<_>>()}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (flow, issues) in &results {
            if issues.is_empty() {
                out!("{flow}: ok");
            }
            for issue in issues {
                out!("{flow}: {issue}");
            }
        }
    }
    Ok(if errors == 0 { OK } else { BAD_CONFIGURATION })
}
