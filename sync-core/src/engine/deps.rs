//! Running flows in dependency order.

use crate::error::{Error, Result};
use crate::flow::Flow;

/// Orders flows so that each runs after its dependencies, keeping the given order where the
/// dependencies allow (Kahn's algorithm).
pub(crate) fn order<'f>(flows: &[&'f Flow]) -> Result<Vec<&'f Flow>> {
    for f in flows {
        for d in &f.depends_on {
            if !flows.iter().any(|g| &g.name == d) {
                return Err(Error::UnknownDependency {
                    flow: f.name.clone(),
                    dependency: d.clone(),
                });
            }
        }
    }
    let mut left: Vec<&Flow> = flows.to_vec();
    let mut out: Vec<&Flow> = Vec::with_capacity(flows.len());
    while !left.is_empty() {
        let ready = left.iter().position(|f| {
            f.depends_on
                .iter()
                .all(|d| out.iter().any(|o| &o.name == d))
        });
        match ready {
            Some(i) => out.push(left.remove(i)),
            None => {
                return Err(Error::DependencyCycle(
                    left.iter().map(|f| f.name.clone()).collect(),
                ));
            }
        }
    }
    Ok(out)
}
