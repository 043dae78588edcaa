//! Dotted field paths: `name`, `owner[0]`, `details.SalesOrderProductObj`, `$.delivery_date`.
//!
//! The one path type of the crate: mappings read and write through it, and the connectors use
//! it to place query cells (`FCustomerID.FNumber`), attach related records, walk detail rows
//! and fill message templates.

use serde_json::{Map, Value};
use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Segment {
    /// The whole record (`$`), when the path is read inside a detail line: `$.delivery_date`.
    Root,
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path into a JSON value.
///
/// ```
/// use sync_core::mapping::FieldPath;
/// use serde_json::json;
///
/// let p: FieldPath = "owner[0]".parse().unwrap();
/// assert_eq!(p.get(&json!({"owner": ["FSUID_1"]})), Some(&json!("FSUID_1")));
/// assert!("a..b".parse::<FieldPath>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<Segment>);

/// Why a path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

impl std::str::FromStr for FieldPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, PathError> {
        let bad = |why: &str| PathError(format!("bad path `{s}`: {why}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let mut segs = Vec::new();
        let s_rest = match s.strip_prefix("$.") {
            Some(rest) => {
                segs.push(Segment::Root);
                rest
            }
            None => s,
        };
        if s_rest.is_empty() {
            return Err(bad("empty"));
        }
        for part in s_rest.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if name.is_empty() && (segs.iter().all(|s| *s == Segment::Root) || rest.is_empty()) {
                return Err(bad("empty segment"));
            }
            if name.chars().any(|c| c.is_whitespace() || c == ']') {
                return Err(bad("segment with whitespace or `]`"));
            }
            if !name.is_empty() {
                segs.push(Segment::Key(name.to_owned()));
            }
            while !rest.is_empty() {
                let Some(close) = rest.find(']') else {
                    return Err(bad("unclosed `[`"));
                };
                let idx = rest[1..close]
                    .parse::<usize>()
                    .map_err(|_| bad("index is not a number"))?;
                segs.push(Segment::Index(idx));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(bad("text after `]`"));
                }
            }
        }
        Ok(FieldPath(segs))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Root => f.write_str("$")?,
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl FieldPath {
    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The first key (the top-level field the path starts at).
    pub fn root(&self) -> Option<&str> {
        match self.0.iter().find(|s| **s != Segment::Root) {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Whether the path starts at the whole record (`$.…`) rather than at the current line.
    pub fn is_anchored(&self) -> bool {
        self.0.first() == Some(&Segment::Root)
    }

    /// Whether every segment is a key (required for target paths).
    pub fn is_keys_only(&self) -> bool {
        self.0.iter().all(|s| matches!(s, Segment::Key(_)))
    }

    /// The value at the path, if present (a `$.` path starts at `value` too).
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.get_in(value, value)
    }

    /// The value at the path in a record's fields (a `$.` path starts there too).
    pub(crate) fn get_in_object<'v>(&self, record: &'v Map<String, Value>) -> Option<&'v Value> {
        let (first, rest) = self.0.split_first()?;
        let mut v = match first {
            Segment::Key(k) => record.get(k)?,
            Segment::Root => return FieldPath(rest.to_vec()).get_in_object(record),
            Segment::Index(_) => return None,
        };
        for s in rest {
            v = match s {
                Segment::Key(k) => v.as_object()?.get(k)?,
                Segment::Index(i) => v.as_array()?.get(*i)?,
                Segment::Root => return None,
            };
        }
        Some(v)
    }

    /// The value at the path read in `scope` (a detail line) of `record`: `$.` paths start at
    /// the record, others at the line.
    pub fn get_in<'v>(&self, scope: &'v Value, record: &'v Value) -> Option<&'v Value> {
        let mut v = scope;
        for s in &self.0 {
            v = match s {
                Segment::Root => record,
                Segment::Key(k) => v.as_object()?.get(k)?,
                Segment::Index(i) => v.as_array()?.get(*i)?,
            };
        }
        Some(v)
    }

    /// A place in a record as a connector's setting names it: a path, or `""` for the record
    /// itself.
    pub(crate) fn place(text: &str) -> Result<FieldPath, PathError> {
        if text.is_empty() {
            Ok(FieldPath(Vec::new()))
        } else {
            text.parse()
        }
    }

    /// Sets `value` at a keys-only path, creating objects on the way and replacing anything
    /// else in the way: a connector placing what it read (`FCustomerID.FNumber` beside
    /// `FCustomerID.FName`, lines under `details.…`). Returns `false` for a path with indexes.
    pub(crate) fn put(&self, root: &mut Map<String, Value>, value: Value) -> bool {
        let Some((Segment::Key(last), init)) = self.0.split_last() else {
            return false;
        };
        if !init.iter().all(|s| matches!(s, Segment::Key(_))) {
            return false;
        }
        let mut obj = root;
        for s in init {
            let Segment::Key(k) = s else { return false };
            let slot = obj
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(next) = slot else {
                return false;
            };
            obj = next;
        }
        obj.insert(last.clone(), value);
        true
    }

    /// The objects at a keys-only path, arrays on the way walked: the detail rows of
    /// `details.SalesOrderProductObj`, each of the record's lines.
    pub(crate) fn rows<'v>(&self, root: &'v Map<String, Value>) -> Vec<&'v Map<String, Value>> {
        let mut current: Vec<&'v Map<String, Value>> = vec![root];
        for s in &self.0 {
            let Segment::Key(k) = s else {
                return Vec::new();
            };
            current = current
                .into_iter()
                .filter_map(|o| o.get(k))
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
                    Value::Object(o) => vec![o],
                    _ => Vec::new(),
                })
                .collect();
        }
        current
    }

    /// [`FieldPath::rows`], to change them.
    pub(crate) fn rows_mut<'v>(
        &self,
        root: &'v mut Map<String, Value>,
    ) -> Vec<&'v mut Map<String, Value>> {
        let mut current: Vec<&'v mut Map<String, Value>> = vec![root];
        for s in &self.0 {
            let Segment::Key(k) = s else {
                return Vec::new();
            };
            current = current
                .into_iter()
                .filter_map(|o| o.get_mut(k))
                .flat_map(|v| match v {
                    Value::Array(items) => {
                        items.iter_mut().filter_map(Value::as_object_mut).collect()
                    }
                    Value::Object(o) => vec![o],
                    _ => Vec::new(),
                })
                .collect();
        }
        current
    }

    /// Sets `value` at a keys-only path, creating objects on the way. Returns `false` (and
    /// changes nothing) when a non-object is in the way.
    pub(crate) fn set(&self, root: &mut Map<String, Value>, value: Value) -> bool {
        let Some((last, init)) = self.0.split_last() else {
            return false;
        };
        let mut obj = root;
        for s in init {
            let Segment::Key(k) = s else { return false };
            let slot = obj
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = slot else {
                return false;
            };
            obj = next;
        }
        let Segment::Key(k) = last else { return false };
        obj.insert(k.clone(), value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_walk_arrays_and_put_replaces_what_is_in_the_way() {
        let mut body = json!({"details": {"SalesOrderProductObj": [{"product_id": "p1"}, {"product_id": "p2"}]}, "a": 3})
            .as_object()
            .cloned()
            .unwrap();
        let lines = FieldPath::place("details.SalesOrderProductObj").unwrap();
        let ids: Vec<&Value> = lines.rows(&body).iter().map(|r| &r["product_id"]).collect();
        assert_eq!(ids, [&json!("p1"), &json!("p2")]);
        for row in lines.rows_mut(&mut body) {
            row.insert("seen".into(), json!(true));
        }
        assert_eq!(
            body["details"]["SalesOrderProductObj"][1]["seen"],
            json!(true)
        );
        assert_eq!(FieldPath::place("").unwrap().rows(&body).len(), 1);
        assert!(
            FieldPath::place("nowhere.at.all")
                .unwrap()
                .rows(&body)
                .is_empty()
        );
        // `set` refuses the number in the way (a mapping conflict); `put` replaces it.
        let p: FieldPath = "a.b".parse().unwrap();
        assert!(!p.set(&mut body, json!(1)));
        assert!(p.put(&mut body, json!(1)));
        assert_eq!(body["a"]["b"], json!(1));
        assert!(
            !"owner[0]"
                .parse::<FieldPath>()
                .unwrap()
                .put(&mut body, json!(1))
        );
    }
}
