//! Checking a [`DeclarativeMapping`] against object descriptions before a run.

use super::declarative::{DeclarativeMapping, Entry, Field, ValueFrom};
use crate::metadata::{FieldKind, ObjectDescription};
use crate::path::FieldPath;
use std::fmt;

/// How bad a [`ValidationIssue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The run would fail or write wrong data (unknown field, unmapped required field).
    Error,
    /// Probably a mistake (dictionary key that is not an option).
    Warning,
}

/// A problem found by checking a mapping against metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// How bad it is.
    pub severity: Severity,
    /// Where in the mapping (`fields[2] (FCustTypeId)`).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.location, self.message)
    }
}

pub(crate) fn validate(
    m: &DeclarativeMapping,
    source: Option<&ObjectDescription>,
    target: Option<&ObjectDescription>,
) -> Vec<ValidationIssue> {
    let mut out = Vec::new();
    check_level(&m.fields, &m.entries, source, target, "", &mut out);
    out
}

fn issue(out: &mut Vec<ValidationIssue>, severity: Severity, location: &str, message: String) {
    out.push(ValidationIssue {
        severity,
        location: location.to_owned(),
        message,
    });
}

fn check_source(
    path: &FieldPath,
    source: Option<&ObjectDescription>,
    loc: &str,
    out: &mut Vec<ValidationIssue>,
) {
    let (Some(src), Some(root)) = (source, path.root()) else {
        return;
    };
    // `FEntity[0].FSoorDerno`: a path into a detail entry.
    if !src.fields.contains_key(root) && !src.entries.contains_key(root) {
        issue(
            out,
            Severity::Error,
            loc,
            format!("source field `{root}` does not exist in `{}`", src.name),
        );
    }
}

/// The key after the root of `a.b…`, if the path has one.
fn second_key(path: &FieldPath) -> Option<&str> {
    match path.segments().get(1) {
        Some(crate::path::Segment::Key(k)) => Some(k),
        _ => None,
    }
}

fn check_level(
    fields: &[Field],
    entries: &[Entry],
    source: Option<&ObjectDescription>,
    target: Option<&ObjectDescription>,
    level: &str,
    out: &mut Vec<ValidationIssue>,
) {
    for f in fields {
        match &f.value {
            ValueFrom::Source(p) | ValueFrom::Lookup { from: p, .. } => {
                check_source(p, source, &f.loc, out);
            }
            ValueFrom::Concat(ps, _) => {
                for p in ps {
                    check_source(p, source, &f.loc, out);
                }
            }
            ValueFrom::Constant(_) => {}
        }
        if let (ValueFrom::Source(p), Some(d), Some(src)) = (&f.value, &f.dictionary, source) {
            let options = p
                .root()
                .and_then(|r| src.fields.get(r))
                .map(|fd| &fd.options);
            if let Some(options) = options.filter(|o| !o.is_empty()) {
                for key in d.values.keys().filter(|k| !options.contains(k)) {
                    issue(
                        out,
                        Severity::Warning,
                        &f.loc,
                        format!(
                            "dictionary `{}` maps `{key}`, which is not an option of `{p}`",
                            d.name
                        ),
                    );
                }
                for opt in options.iter().filter(|o| !d.values.contains_key(*o)) {
                    issue(
                        out,
                        Severity::Warning,
                        &f.loc,
                        format!("option `{opt}` of `{p}` is not in dictionary `{}`", d.name),
                    );
                }
            }
        }
        if let (Some(tgt), Some(root)) = (target, f.target.root()) {
            // `FSaleOrderFinance.FSettleCurrId`: a field of a sub-header entity (one row per
            // document). The reference does not say whether QueryBusinessInfo lists such an
            // entity apart or folds its fields into the header: both are accepted.
            let sub = second_key(&f.target);
            let (tgt, root) = match (tgt.fields.get(root), tgt.entries.get(root), sub) {
                (None, Some(entity), Some(key)) => (entity, key),
                (None, None, Some(key)) if tgt.fields.contains_key(key) => (tgt, key),
                _ => (tgt, root),
            };
            match tgt.fields.get(root) {
                None => issue(
                    out,
                    Severity::Error,
                    &f.loc,
                    format!("target field `{root}` does not exist in `{}`", tgt.name),
                ),
                Some(fd) if f.reference.is_some() && fd.kind != FieldKind::Reference => {
                    issue(
                        out,
                        Severity::Warning,
                        &f.loc,
                        format!(
                            "`{root}` is not a reference field, but the mapping wraps it as one"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
    if let Some(tgt) = target {
        for fd in tgt.fields.values().filter(|fd| fd.required) {
            let mapped = fields
                .iter()
                .any(|f| f.target.root() == Some(fd.name.as_str()));
            if !mapped {
                let loc = if level.is_empty() {
                    "fields".to_owned()
                } else {
                    level.to_owned()
                };
                issue(
                    out,
                    Severity::Error,
                    &loc,
                    format!(
                        "required target field `{}` of `{}` is not mapped",
                        fd.name, tgt.name
                    ),
                );
            }
        }
    }
    for e in entries {
        let src = match source {
            None => None,
            Some(s) => {
                let found = s.entries.get(&e.source.to_string());
                if found.is_none() {
                    issue(
                        out,
                        Severity::Warning,
                        &e.loc,
                        format!(
                            "`{}` has no described detail entry `{}`; its lines are not checked",
                            s.name, e.source
                        ),
                    );
                }
                found
            }
        };
        let tgt = match target {
            None => None,
            Some(t) => {
                let found = t.entries.get(&e.target.to_string());
                if found.is_none() {
                    issue(
                        out,
                        Severity::Error,
                        &e.loc,
                        format!("target entry `{}` does not exist in `{}`", e.target, t.name),
                    );
                }
                found
            }
        };
        check_level(&e.fields, &e.entries, src, tgt, &e.loc, out);
    }
}
