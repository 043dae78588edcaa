//! [`DeclarativeMapping`]: a mapping compiled from a JSON or TOML file.

use super::spec::{By, DictionarySpec, EntrySpec, FieldSpec, MappingSpec, Take, UnknownPolicy};
use super::transform::Transform;
use super::{LookupBy, LookupKey, Lookups, MapError, Mapped, Mapping, ValidationIssue};
use crate::metadata::ObjectDescription;
use crate::path::FieldPath;
use crate::record::Record;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A mapping loaded from a file: target fields from source paths, constants, value
/// dictionaries, base-data references, ID-map lookups, entry (detail-line) mappings, required
/// fields and transforms.
///
/// Everything that can be checked without data is checked at load — unknown transforms, bad
/// paths, missing dictionaries, duplicate targets — and reported with the line and the reason.
/// See [`DeclarativeMapping::from_toml`] for the format.
#[derive(Debug, Clone)]
pub struct DeclarativeMapping {
    pub(crate) natural_key: Option<FieldPath>,
    pub(crate) fields: Vec<Field>,
    pub(crate) entries: Vec<Entry>,
    flows: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) loc: String,
    pub(crate) target: FieldPath,
    pub(crate) value: ValueFrom,
    pub(crate) dictionary: Option<Arc<Dictionary>>,
    transforms: Vec<Transform>,
    pub(crate) reference: Option<String>,
    pub(crate) required: bool,
    keep_null: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum ValueFrom {
    Source(FieldPath),
    Concat(Vec<FieldPath>, String),
    Constant(Value),
    Lookup {
        flow: String,
        from: FieldPath,
        by: LookupBy,
        take: Take,
    },
}

#[derive(Debug)]
pub(crate) struct Dictionary {
    pub(crate) name: String,
    pub(crate) values: BTreeMap<String, Value>,
    on_unknown: UnknownPolicy,
    default: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) loc: String,
    pub(crate) target: FieldPath,
    pub(crate) source: FieldPath,
    required: bool,
    pub(crate) fields: Vec<Field>,
    pub(crate) entries: Vec<Entry>,
}

/// A problem found while compiling a spec: where (a path into the document) and why.
#[derive(Debug)]
pub(crate) struct CompileError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

fn err<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, CompileError> {
    Err(CompileError {
        path: path.into(),
        reason: reason.into(),
    })
}

fn parse_path(at: &str, s: &str, keys_only: bool) -> Result<FieldPath, CompileError> {
    let p: FieldPath = s.parse().map_err(|e: super::PathError| CompileError {
        path: at.to_owned(),
        reason: e.to_string(),
    })?;
    if keys_only && !p.is_keys_only() {
        return err(
            at,
            format!("bad path `{s}`: a target path cannot hold `[index]`"),
        );
    }
    Ok(p)
}

impl DeclarativeMapping {
    /// Whether a top-level field of the mapping targets `field` (`FForbidStatus`): a flow
    /// turns on what only makes sense when the mapping produces it.
    pub fn sets(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f.target.to_string() == field)
    }

    /// Whether the rows of the top-level entry `entity` (`FSaleOrderEntry`) set `field`
    /// (`F_CRM_LineId`).
    pub fn entry_sets(&self, entity: &str, field: &str) -> bool {
        self.entries.iter().any(|e| {
            e.target.to_string() == entity && e.fields.iter().any(|f| f.target.to_string() == field)
        })
    }

    pub(crate) fn compile(spec: MappingSpec) -> Result<Self, CompileError> {
        if let Some(v) = spec.version
            && v != 1
        {
            return err(
                "version",
                format!("unsupported mapping version {v} (this build reads 1)"),
            );
        }
        let mut dicts = BTreeMap::new();
        for (name, d) in spec.dictionaries {
            let at = format!("dictionaries.{name}");
            dicts.insert(name.clone(), Arc::new(compile_dictionary(&at, name, d)?));
        }
        let mut flows = BTreeSet::new();
        let fields = compile_fields("fields", spec.fields, &dicts, &mut flows)?;
        let entries = compile_entries("entries", spec.entries, &dicts, &mut flows)?;
        check_targets(&fields, &entries)?;
        let natural_key = match spec.natural_key {
            None => None,
            Some(nk) => {
                let p = parse_path("natural_key", &nk, true)?;
                if !fields
                    .iter()
                    .any(|f| f.target == p || f.target.root() == p.root())
                {
                    return err(
                        "natural_key",
                        format!("`{nk}` is not a mapped target field"),
                    );
                }
                Some(p)
            }
        };
        Ok(Self {
            natural_key,
            fields,
            entries,
            flows,
        })
    }

    /// The natural key's target field, as written in the file.
    pub(crate) fn natural_key_text(&self) -> Option<String> {
        self.natural_key.as_ref().map(ToString::to_string)
    }

    fn natural_key_of(&self, record: &Record, payload: &Value) -> Result<String, MapError> {
        let Some(path) = &self.natural_key else {
            return Ok(record.key.clone());
        };
        let v = path.get(payload);
        // A base-data reference `{"FNumber": "C001"}` yields its single value.
        let v = match v {
            Some(Value::Object(m)) if m.len() == 1 => m.values().next(),
            other => other,
        };
        v.and_then(key_text).ok_or_else(|| MapError::Invalid {
            location: "natural_key".into(),
            reason: format!("`{path}` has no value to identify the target by"),
        })
    }
}

fn compile_dictionary(
    at: &str,
    name: String,
    d: DictionarySpec,
) -> Result<Dictionary, CompileError> {
    let on_unknown = match (d.on_unknown, &d.default) {
        (Some(UnknownPolicy::Default), None) => {
            return err(at, "`on_unknown = \"default\"` needs a `default` value");
        }
        (Some(p), _) => p,
        (None, Some(_)) => UnknownPolicy::Default,
        (None, None) => UnknownPolicy::Error,
    };
    Ok(Dictionary {
        name,
        values: d.values,
        on_unknown,
        default: d.default,
    })
}

fn compile_fields(
    at: &str,
    specs: Vec<FieldSpec>,
    dicts: &BTreeMap<String, Arc<Dictionary>>,
    flows: &mut BTreeSet<String>,
) -> Result<Vec<Field>, CompileError> {
    let mut out = Vec::with_capacity(specs.len());
    for (i, f) in specs.into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        out.push(compile_field(&at, f, dicts, flows)?);
    }
    Ok(out)
}

fn compile_field(
    at: &str,
    f: FieldSpec,
    dicts: &BTreeMap<String, Arc<Dictionary>>,
    flows: &mut BTreeSet<String>,
) -> Result<Field, CompileError> {
    let target = parse_path(&format!("{at}.target"), &f.target, true)?;
    let origins = usize::from(f.source.is_some())
        + usize::from(f.sources.is_some())
        + usize::from(f.constant.is_some())
        + usize::from(f.lookup.is_some());
    if origins != 1 {
        return err(
            at,
            format!(
                "field `{}` needs exactly one of `source`, `sources`, `constant`, `lookup` (found {origins})",
                f.target
            ),
        );
    }
    if f.separator.is_some() && f.sources.is_none() {
        return err(format!("{at}.separator"), "`separator` goes with `sources`");
    }
    let value = if let Some(s) = f.source {
        ValueFrom::Source(parse_path(&format!("{at}.source"), &s, false)?)
    } else if let Some(list) = f.sources {
        if list.is_empty() {
            return err(format!("{at}.sources"), "`sources` is empty");
        }
        let mut paths = Vec::with_capacity(list.len());
        for (j, s) in list.iter().enumerate() {
            paths.push(parse_path(&format!("{at}.sources[{j}]"), s, false)?);
        }
        ValueFrom::Concat(paths, f.separator.unwrap_or_default())
    } else if let Some(c) = f.constant {
        ValueFrom::Constant(c)
    } else if let Some(l) = f.lookup {
        if l.flow.trim().is_empty() {
            return err(format!("{at}.lookup.flow"), "empty flow name");
        }
        flows.insert(l.flow.clone());
        ValueFrom::Lookup {
            flow: l.flow,
            from: parse_path(&format!("{at}.lookup.from"), &l.from, false)?,
            by: match l.by {
                By::Source => LookupBy::SourceKey,
                By::Number => LookupBy::TargetNumber,
            },
            take: l.take,
        }
    } else {
        return err(at, "no value origin");
    };
    let dictionary = match f.dictionary {
        None => None,
        Some(name) => {
            let Some(d) = dicts.get(&name) else {
                let known: Vec<&str> = dicts.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                return err(
                    format!("{at}.dictionary"),
                    format!("unknown dictionary `{name}` (defined: {known})"),
                );
            };
            Some(Arc::clone(d))
        }
    };
    let mut transforms = Vec::with_capacity(f.transforms.len());
    for (j, t) in f.transforms.iter().enumerate() {
        let here = format!("{at}.transforms[{j}]");
        let compiled = match t {
            Value::String(name) => Transform::named(name),
            Value::Object(m) if m.len() == 1 => {
                let (name, arg) = m
                    .iter()
                    .next()
                    .map_or(("", &Value::Null), |(k, v)| (k.as_str(), v));
                Transform::with_params(name, arg)
            }
            _ => {
                Err("a transform is a name (\"trim\") or a one-key table ({ default = … })".into())
            }
        };
        transforms.push(compiled.map_err(|reason| CompileError { path: here, reason })?);
    }
    if let Some(r) = &f.reference
        && r.trim().is_empty()
    {
        return err(
            format!("{at}.reference"),
            "empty reference key (use e.g. \"FNumber\")",
        );
    }
    Ok(Field {
        loc: format!("{at} ({})", f.target),
        target,
        value,
        dictionary,
        transforms,
        reference: f.reference,
        required: f.required,
        keep_null: f.keep_null,
    })
}

fn compile_entries(
    at: &str,
    specs: Vec<EntrySpec>,
    dicts: &BTreeMap<String, Arc<Dictionary>>,
    flows: &mut BTreeSet<String>,
) -> Result<Vec<Entry>, CompileError> {
    let mut out = Vec::with_capacity(specs.len());
    for (i, e) in specs.into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        let target = parse_path(&format!("{at}.target"), &e.target, true)?;
        let source = parse_path(&format!("{at}.source"), &e.source, false)?;
        let fields = compile_fields(&format!("{at}.fields"), e.fields, dicts, flows)?;
        let entries = compile_entries(&format!("{at}.entries"), e.entries, dicts, flows)?;
        if fields.is_empty() && entries.is_empty() {
            return err(&at, format!("entry `{}` maps no fields", e.target));
        }
        check_targets(&fields, &entries)?;
        out.push(Entry {
            loc: format!("{at} ({})", e.target),
            target,
            source,
            required: e.required,
            fields,
            entries,
        });
    }
    Ok(out)
}

/// Two targets conflict when they are equal or one is inside the other.
fn check_targets(fields: &[Field], entries: &[Entry]) -> Result<(), CompileError> {
    let all: Vec<(&str, &FieldPath)> = fields
        .iter()
        .map(|f| (f.loc.as_str(), &f.target))
        .chain(entries.iter().map(|e| (e.loc.as_str(), &e.target)))
        .collect();
    for (i, (loc, a)) in all.iter().enumerate() {
        for (other, b) in &all[..i] {
            let (short, long) = if a.segments().len() <= b.segments().len() {
                (a, b)
            } else {
                (b, a)
            };
            if long.segments().starts_with(short.segments()) {
                let path = loc.split(' ').next().unwrap_or(loc);
                return err(
                    format!("{path}.target"),
                    format!("target `{a}` conflicts with {other}"),
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn invalid(location: &str, reason: impl Into<String>) -> MapError {
    MapError::Invalid {
        location: location.to_owned(),
        reason: reason.into(),
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

impl Dictionary {
    fn apply(&self, v: Value, loc: &str) -> Result<Value, MapError> {
        match v {
            Value::Null => Ok(Value::Null),
            Value::Array(items) => items
                .into_iter()
                .map(|i| self.apply(i, loc))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => {
                if let Some(hit) = key_text(&other).and_then(|k| self.values.get(&k)) {
                    return Ok(hit.clone());
                }
                match (self.on_unknown, &self.default) {
                    (UnknownPolicy::Keep, _) => Ok(other),
                    (UnknownPolicy::Default, Some(d)) => Ok(d.clone()),
                    _ => Err(invalid(
                        loc,
                        format!("value {other} is not in dictionary `{}`", self.name),
                    )),
                }
            }
        }
    }
}

impl Field {
    fn produce(
        &self,
        scope: &Value,
        root: &Value,
        lookups: &Lookups,
    ) -> Result<Option<Value>, MapError> {
        let mut v = match &self.value {
            ValueFrom::Source(p) => p.get_in(scope, root).cloned().unwrap_or(Value::Null),
            ValueFrom::Concat(paths, sep) => {
                let parts: Vec<String> = paths
                    .iter()
                    .filter_map(|p| p.get_in(scope, root))
                    .filter_map(|v| match v {
                        Value::Bool(b) => Some(b.to_string()),
                        other => key_text(other),
                    })
                    .collect();
                Value::String(parts.join(sep))
            }
            ValueFrom::Constant(c) => c.clone(),
            ValueFrom::Lookup {
                flow,
                from,
                by,
                take,
            } => match from.get_in(scope, root).and_then(key_text) {
                None => Value::Null,
                Some(key) => match lookups.get_by(flow, *by, &key) {
                    None => {
                        return Err(MapError::MissingReference {
                            flow: flow.clone(),
                            key,
                        });
                    }
                    Some(e) => match take {
                        Take::Id => Value::String(e.target.id.clone()),
                        Take::Source => Value::String(e.source_key.clone()),
                        Take::Number => match &e.target.number {
                            Some(n) => Value::String(n.clone()),
                            None => {
                                return Err(invalid(
                                    &self.loc,
                                    format!("the target of `{key}` in flow `{flow}` has no number"),
                                ));
                            }
                        },
                    },
                },
            },
        };
        for t in &self.transforms {
            v = t.apply(v).map_err(|r| invalid(&self.loc, r))?;
        }
        if let Some(d) = &self.dictionary {
            v = d.apply(v, &self.loc)?;
        }
        if is_blank(&v) {
            if self.required {
                return Err(invalid(&self.loc, "required value is missing"));
            }
            if !self.keep_null {
                return Ok(None);
            }
        }
        if let Some(key) = &self.reference {
            v = match v {
                Value::Array(items) => {
                    Value::Array(items.into_iter().map(|i| wrap(key, i)).collect())
                }
                Value::Null => Value::Null,
                other => wrap(key, other),
            };
        }
        Ok(Some(v))
    }
}

fn wrap(key: &str, v: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(key.to_owned(), v);
    Value::Object(m)
}

fn map_object(
    fields: &[Field],
    entries: &[Entry],
    scope: &Value,
    root: &Value,
    lookups: &Lookups,
) -> Result<Map<String, Value>, MapError> {
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = f.produce(scope, root, lookups)?
            && !f.target.set(&mut out, v)
        {
            return Err(invalid(&f.loc, "target path runs through a non-object"));
        }
    }
    for e in entries {
        let rows = match e.source.get_in(scope, root) {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(rows)) => rows.as_slice(),
            Some(other) => {
                return Err(invalid(
                    &e.loc,
                    format!("`{}` is not a list of lines but {other}", e.source),
                ));
            }
        };
        if rows.is_empty() && e.required {
            return Err(invalid(&e.loc, "at least one line is required"));
        }
        let mut mapped = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let obj =
                map_object(&e.fields, &e.entries, row, root, lookups).map_err(|err| match err {
                    MapError::Invalid { location, reason } => MapError::Invalid {
                        location: format!("{location} line {n}"),
                        reason,
                    },
                    other => other,
                })?;
            mapped.push(Value::Object(obj));
        }
        if !e.target.set(&mut out, Value::Array(mapped)) {
            return Err(invalid(&e.loc, "target path runs through a non-object"));
        }
    }
    Ok(out)
}

fn collect_lookups(
    fields: &[Field],
    entries: &[Entry],
    scope: &Value,
    root: &Value,
    out: &mut Vec<LookupKey>,
) {
    for f in fields {
        if let ValueFrom::Lookup { flow, from, by, .. } = &f.value
            && let Some(key) = from.get_in(scope, root).and_then(key_text)
        {
            out.push(LookupKey {
                flow: flow.clone(),
                key,
                by: *by,
            });
        }
    }
    for e in entries {
        if let Some(Value::Array(rows)) = e.source.get_in(scope, root) {
            for row in rows {
                collect_lookups(&e.fields, &e.entries, row, root, out);
            }
        }
    }
}

impl Mapping for DeclarativeMapping {
    fn natural_key_field(&self) -> Option<String> {
        self.natural_key_text()
    }

    fn lookups(&self, record: &Record) -> Vec<LookupKey> {
        let mut out = Vec::new();
        collect_lookups(
            &self.fields,
            &self.entries,
            &record.body,
            &record.body,
            &mut out,
        );
        out.sort();
        out.dedup();
        out
    }

    fn map(&self, record: &Record, lookups: &Lookups) -> Result<Mapped, MapError> {
        let payload = Value::Object(map_object(
            &self.fields,
            &self.entries,
            &record.body,
            &record.body,
            lookups,
        )?);
        let natural_key = self.natural_key_of(record, &payload)?;
        Ok(Mapped {
            payload,
            natural_key,
        })
    }

    fn referenced_flows(&self) -> Vec<String> {
        self.flows.iter().cloned().collect()
    }

    fn validate(
        &self,
        source: Option<&ObjectDescription>,
        target: Option<&ObjectDescription>,
    ) -> Vec<ValidationIssue> {
        super::validate::validate(self, source, target)
    }
}
