//! Loading a [`DeclarativeMapping`] from JSON or TOML, with line-numbered errors.

use super::declarative::{CompileError, DeclarativeMapping};
use super::spec::MappingSpec;
use crate::path::{FieldPath, Segment};
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// The text format of a mapping file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

/// Why a mapping file was rejected: the line (1-based, when known), the place in the document
/// and the reason.
///
/// ```
/// use sync_core::DeclarativeMapping;
///
/// let text = "[[fields]]\ntarget = \"FName\"\nsource = \"name\"\ntransforms = [\"uper\"]\n";
/// let e = DeclarativeMapping::from_toml(text).unwrap_err();
/// assert_eq!(e.line(), Some(4));
/// assert!(e.to_string().contains("unknown transform `uper`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    line: Option<usize>,
    location: Option<String>,
    reason: String,
}

impl LoadError {
    /// The 1-based line the problem is on, when it could be located.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
    /// Where in the document, e.g. `fields[3].transforms[0]`.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }
    /// What is wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mapping rejected: ")?;
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for LoadError {}

impl DeclarativeMapping {
    /// Loads a mapping from TOML.
    ///
    /// The format (JSON has the same structure):
    ///
    /// ```
    /// use serde_json::json;
    /// use sync_core::{DeclarativeMapping, Lookups, Mapping, Record};
    ///
    /// let mapping = DeclarativeMapping::from_toml(r#"
    /// version = 1
    /// ## The ERP field that identifies the document when a write's outcome is unknown.
    /// natural_key = "FNumber"
    ///
    /// [dictionaries.customer_type]          # CRM option value -> ERP base-data number
    /// values = { "1" = "KHLB001_SYS", "2" = "KHLB002_SYS" }
    /// on_unknown = "error"                  # or "default" (with `default = …`) or "keep"
    ///
    /// [[fields]]
    /// target = "FNumber"
    /// source = "account_no"
    /// transforms = ["trim", "upper"]
    /// required = true
    ///
    /// [[fields]]
    /// target = "FName"
    /// sources = ["name", "tel"]             # concatenation
    /// separator = " / "
    ///
    /// [[fields]]
    /// target = "FCreateOrgId"
    /// constant = { FNumber = "100" }
    ///
    /// [[fields]]
    /// target = "FCustTypeId"
    /// source = "account_type"
    /// dictionary = "customer_type"
    /// reference = "FNumber"                 # rendered as {"FNumber": …}
    ///
    /// [[fields]]
    /// target = "F_CRM_Created"
    /// source = "create_time"                # epoch ms
    /// transforms = [{ date = { offset = "+08:00", format = "%Y-%m-%d" } }]
    ///
    /// [[fields]]
    /// target = "F_Owner"
    /// source = "owner"                      # Fxiaoke owner is a list
    /// transforms = ["first", { default = "unassigned" }]
    ///
    /// [[entries]]                           # detail lines
    /// target = "FT_BD_CUSTCONTACT"
    /// source = "contacts"
    /// [[entries.fields]]
    /// target = "FContactName"
    /// source = "name"
    /// "#)?;
    ///
    /// let record = Record::new("a1", 1_716_000_000_000, json!({
    ///     "account_no": " c001 ", "name": "ACME", "tel": "021-1", "account_type": "2",
    ///     "create_time": 1_716_000_000_000_i64, "owner": ["FSUID_1"],
    ///     "contacts": [{"name": "Li Lei"}]
    /// }));
    /// let mapped = mapping.map(&record, &Lookups::new())?;
    /// assert_eq!(mapped.payload, json!({
    ///     "FNumber": "C001", "FName": "ACME / 021-1", "FCreateOrgId": {"FNumber": "100"},
    ///     "FCustTypeId": {"FNumber": "KHLB002_SYS"}, "F_CRM_Created": "2024-05-18",
    ///     "F_Owner": "FSUID_1", "FT_BD_CUSTCONTACT": [{"FContactName": "Li Lei"}]
    /// }));
    /// assert_eq!(mapped.natural_key, "C001");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A field takes exactly one of `source` (a path such as `owner[0]` or `a.b`; inside a
    /// detail line, `$.a` reads the whole record), `sources`
    /// (joined with `separator`), `constant` or `lookup`
    /// (`{ flow = "customers", from = "account_id", take = "number" | "id" }`: the target of
    /// another flow's record, from its ID map; a record whose reference is not there yet is
    /// deferred). With `by = "number"` the lookup goes the other way: `from` holds a target
    /// number of that flow (an ERP order number) and `take = "source"` yields the source key it
    /// came from (the CRM order id). Then, in order: `transforms`, `dictionary`, and `reference` (wrap as
    /// `{"<key>": value}`). Blank results are left out unless `keep_null = true`, and fail the
    /// record when `required = true`. Transforms: `trim`, `upper`, `lower`, `string`,
    /// `number`, `first`, `join`/`concat` (`{ join = "," }`), `sum` (`{ sum = "FRealQty" }`
    /// adds up a field of a list of lines), `{ default = … }`, `date` and
    /// `datetime` (epoch ms → text, `{ date = { offset = "+08:00", format = "%Y-%m-%d" } }`;
    /// the offset defaults to `+08:00`).
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        Self::load(text, Format::Toml)
    }

    /// Loads a mapping from JSON (same structure as [`from_toml`](Self::from_toml)).
    ///
    /// ```
    /// use sync_core::DeclarativeMapping;
    ///
    /// let m = DeclarativeMapping::from_json(r#"{"fields": [{"target": "FName", "source": "name"}]}"#);
    /// assert!(m.is_ok());
    /// let e = DeclarativeMapping::from_json("{\n \"fields\": [\n  {\"target\": \"FName\", \"source\": \"a..b\"}\n ]\n}")
    ///     .unwrap_err();
    /// assert_eq!(e.line(), Some(3));
    /// ```
    pub fn from_json(text: &str) -> Result<Self, LoadError> {
        Self::load(text, Format::Json)
    }

    /// Loads a mapping file, choosing the format by extension (`.toml`, else JSON).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            line: None,
            location: None,
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let format = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            Format::Toml
        } else {
            Format::Json
        };
        Self::load(&text, format)
    }

    /// Loads a mapping from text in the given format.
    pub fn load(text: &str, format: Format) -> Result<Self, LoadError> {
        let doc: Value = match format {
            Format::Json => serde_json::from_str(text).map_err(|e| LoadError {
                line: Some(e.line()),
                location: None,
                reason: e.to_string(),
            })?,
            Format::Toml => {
                let t: toml::Table = toml::from_str(text).map_err(|e| LoadError {
                    line: e.span().map(|s| line_of(text, s.start)),
                    location: None,
                    reason: e.message().to_owned(),
                })?;
                serde_json::to_value(t).map_err(|e| LoadError {
                    line: None,
                    location: None,
                    reason: e.to_string(),
                })?
            }
        };
        let located = |path: String, reason: String| LoadError {
            line: locate(text, format, &path),
            location: Some(path),
            reason,
        };
        let spec: MappingSpec = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            located(path, e.into_inner().to_string())
        })?;
        DeclarativeMapping::compile(spec)
            .map_err(|CompileError { path, reason }| located(path, reason))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line of the value at `path` (`fields[3].transforms[0]`), or of its nearest parent.
fn locate(text: &str, format: Format, path: &str) -> Option<usize> {
    let segs: Vec<Segment> = if path.is_empty() || path == "." {
        Vec::new()
    } else {
        path.parse::<FieldPath>().ok()?.segments().to_vec()
    };
    let offset = match format {
        Format::Toml => toml_offset(text, &segs),
        Format::Json => Some(json_offset(text.as_bytes(), &segs)),
    }?;
    Some(line_of(text, offset))
}

fn toml_offset(text: &str, segs: &[Segment]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut best = root.span().start;
    let mut table = root.get_ref();
    let mut value: Option<&toml::Spanned<DeValue<'_>>> = None;
    for seg in segs {
        let next = match (seg, value.map(toml::Spanned::get_ref)) {
            (Segment::Key(k), None) => table.iter().find(|(n, _)| n.get_ref() == k).map(|(_, v)| v),
            (Segment::Key(k), Some(DeValue::Table(t))) => {
                t.iter().find(|(n, _)| n.get_ref() == k).map(|(_, v)| v)
            }
            (Segment::Index(i), Some(DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        best = next.span().start;
        if let DeValue::Table(t) = next.get_ref() {
            table = t;
        }
        value = Some(next);
    }
    Some(best)
}

/// A small scanner over already-valid JSON: finds where the value at `segs` starts.
fn json_offset(b: &[u8], segs: &[Segment]) -> usize {
    let mut pos = skip_ws(b, 0);
    for seg in segs {
        match (seg, b.get(pos)) {
            (Segment::Key(k), Some(b'{')) => match find_member(b, pos, k) {
                Some(p) => pos = p,
                None => break,
            },
            (Segment::Index(i), Some(b'[')) => match find_element(b, pos, *i) {
                Some(p) => pos = p,
                None => break,
            },
            _ => break,
        }
    }
    pos
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// From an opening quote, the position after the closing quote.
fn skip_string(b: &[u8], mut pos: usize) -> Option<usize> {
    pos += 1;
    loop {
        match b.get(pos)? {
            b'\\' => pos += 2,
            b'"' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
}

fn skip_value(b: &[u8], pos: usize) -> Option<usize> {
    match b.get(pos)? {
        b'"' => skip_string(b, pos),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut p = pos;
            loop {
                match b.get(p)? {
                    b'"' => {
                        p = skip_string(b, p)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(p + 1);
                        }
                    }
                    _ => {}
                }
                p += 1;
            }
        }
        _ => {
            let mut p = pos;
            while b
                .get(p)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                p += 1;
            }
            Some(p)
        }
    }
}

fn find_member(b: &[u8], open: usize, key: &str) -> Option<usize> {
    let mut pos = skip_ws(b, open + 1);
    while b.get(pos)? == &b'"' {
        let end = skip_string(b, pos)?;
        let name = b.get(pos + 1..end - 1)?;
        pos = skip_ws(b, end);
        if b.get(pos)? != &b':' {
            return None;
        }
        pos = skip_ws(b, pos + 1);
        if name == key.as_bytes() {
            return Some(pos);
        }
        pos = skip_ws(b, skip_value(b, pos)?);
        if b.get(pos)? == &b',' {
            pos = skip_ws(b, pos + 1);
        }
    }
    None
}

fn find_element(b: &[u8], open: usize, index: usize) -> Option<usize> {
    let mut pos = skip_ws(b, open + 1);
    let mut n = 0;
    while !matches!(b.get(pos)?, b']') {
        if n == index {
            return Some(pos);
        }
        pos = skip_ws(b, skip_value(b, pos)?);
        if b.get(pos)? == &b',' {
            pos = skip_ws(b, pos + 1);
        }
        n += 1;
    }
    None
}
