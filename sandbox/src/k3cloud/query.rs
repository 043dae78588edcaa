//! `ExecuteBillQuery` / `BillQuery`: `FieldKeys` (entry and reference sub-fields), a
//! `FilterString` subset, `OrderString`, `StartRow` / `Limit` / `TopRowCount` (k3cloud.md §5.5).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::Mutex;

use serde_json::{Map, Value};

use super::envelope::Failure;
use super::forms::FieldType;
use super::store::{Bill, Cell, Entry, K3Data, Table, unknown_form};
use super::wire::{get_ci, int, scalar_string};
use crate::clock::{k3_date_key, k3_datetime, parse_k3_date};

/// How to read one field of a row.
#[derive(Clone, Debug)]
enum Access {
    Id,
    Number,
    Name,
    Status,
    Forbid,
    CreateDate,
    ModifyDate,
    ApproveDate,
    EntryId,
    EntrySeq,
    Head {
        key: String,
        ty: Option<FieldType>,
        sub: Sub,
    },
    Line {
        key: String,
        ty: Option<FieldType>,
        sub: Sub,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sub {
    None,
    Number,
    Name,
    Id,
}

impl Access {
    fn is_date(&self) -> bool {
        matches!(
            self,
            Access::CreateDate | Access::ModifyDate | Access::ApproveDate
        ) || matches!(
            self,
            Access::Head {
                ty: Some(FieldType::Date),
                ..
            } | Access::Line {
                ty: Some(FieldType::Date),
                ..
            }
        )
    }
}

struct Resolver<'a> {
    table: &'a Table,
    /// The entry entity the query expands over (one row per entry).
    entity: Option<String>,
}

fn unknown_field(key: &str) -> Failure {
    // responses/executebillquery_error_unknown_field.json.
    Failure::new(9, None, format!("元数据中标识为{key}的字段不存在"))
}

impl Resolver<'_> {
    fn use_entity(&mut self, entity: String) -> Result<(), Failure> {
        match &self.entity {
            Some(e) if !e.eq_ignore_ascii_case(&entity) => Err(Failure::new(
                4,
                None,
                format!("sandbox: 一次查询只支持一个单据体（{e} 与 {entity}）"),
            )),
            _ => {
                self.entity = Some(entity);
                Ok(())
            }
        }
    }

    fn resolve(&mut self, raw: &str) -> Result<Access, Failure> {
        let raw = raw.trim();
        let def = &self.table.def;
        let (key, sub) = match raw.split_once('.') {
            Some((k, s)) => {
                let sub = if s.eq_ignore_ascii_case("FNumber") {
                    Sub::Number
                } else if s.eq_ignore_ascii_case("FName") {
                    Sub::Name
                } else if s.eq_ignore_ascii_case("FID") || s.eq_ignore_ascii_case("Id") {
                    Sub::Id
                } else {
                    return Err(unknown_field(raw));
                };
                (k, sub)
            }
            None => (raw, Sub::None),
        };
        if key.is_empty() {
            return Err(unknown_field(raw));
        }
        if sub == Sub::None {
            if key.eq_ignore_ascii_case(def.pk) || key.eq_ignore_ascii_case("FID") {
                return Ok(Access::Id);
            }
            if key.eq_ignore_ascii_case(def.number_key) {
                return Ok(Access::Number);
            }
            if def.base_data && key.eq_ignore_ascii_case("FName") {
                return Ok(Access::Name);
            }
            match super::forms::FormDef::system_field(key) {
                Some("FDocumentStatus") => return Ok(Access::Status),
                Some("FForbidStatus") => return Ok(Access::Forbid),
                Some("FCreateDate") => return Ok(Access::CreateDate),
                Some("FModifyDate") => return Ok(Access::ModifyDate),
                Some("FApproveDate") => return Ok(Access::ApproveDate),
                _ => {}
            }
            // Entry pk / seq: `FEntryID`, `FSaleOrderEntry_FEntryID`, `FEntity_FSeq`.
            let (entity_part, tail) = match key.rsplit_once('_') {
                Some((e, t)) => (Some(e), t),
                None => (None, key),
            };
            if tail.eq_ignore_ascii_case("FEntryID") || tail.eq_ignore_ascii_case("FSeq") {
                let entity = match entity_part {
                    Some(e) => self.table.entity_key(e).ok_or_else(|| unknown_field(raw))?,
                    None => self
                        .entity
                        .clone()
                        .or_else(|| self.table.def.entities.first().map(|e| e.key.to_string()))
                        .ok_or_else(|| unknown_field(raw))?,
                };
                self.use_entity(entity)?;
                return Ok(if tail.eq_ignore_ascii_case("FSeq") {
                    Access::EntrySeq
                } else {
                    Access::EntryId
                });
            }
        }
        let declared = def.field(key);
        let (canonical, entity, ty) = match declared {
            Some(f) => (f.key.to_string(), f.entity.map(str::to_string), Some(f.ty)),
            None => match self.table.extra_fields.get(&key.to_ascii_lowercase()) {
                Some((c, e)) => (c.clone(), e.clone(), None),
                None => return Err(unknown_field(raw)),
            },
        };
        match entity {
            Some(entity) => {
                self.use_entity(entity)?;
                Ok(Access::Line {
                    key: canonical,
                    ty,
                    sub,
                })
            }
            None => Ok(Access::Head {
                key: canonical,
                ty,
                sub,
            }),
        }
    }
}

/// A field value of one row, borrowed from the store wherever it can be: filtering and
/// sorting thousands of rows then allocate nothing; only the rows of the page become JSON.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Json(&'a Value),
    /// A system date (Unix ms), formatted only for output.
    Ms(i64),
    /// Text of a date field, normalised only for output.
    DateText(&'a str),
}

impl<'a> V<'a> {
    fn into_json(self) -> Value {
        match self {
            V::Null => Value::Null,
            V::Int(i) => Value::from(i),
            V::Str(s) => Value::from(s),
            V::Json(v) => v.clone(),
            V::Ms(ms) => Value::from(k3_datetime(ms)),
            V::DateText(s) => Value::from(normalise_date(s).unwrap_or_else(|| s.to_string())),
        }
    }

    fn is_null(self) -> bool {
        matches!(self, V::Null | V::Json(Value::Null))
    }

    /// The value as text, as `scalar_string` would make it of the JSON form.
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            V::Null | V::Json(Value::Null | Value::Array(_) | Value::Object(_)) => None,
            V::Str(s) | V::DateText(s) => Some(Cow::Borrowed(s)),
            V::Json(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            V::Int(i) => Some(Cow::Owned(i.to_string())),
            V::Json(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            V::Json(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            V::Ms(ms) => Some(Cow::Owned(k3_datetime(ms))),
        }
    }

    fn number(self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            V::Int(i) => Some(i as f64),
            V::Json(Value::Number(n)) => n.as_f64(),
            V::Json(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
            V::Str(s) | V::DateText(s) => s.trim().parse().ok(),
            V::Json(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn is_number(self) -> bool {
        matches!(self, V::Int(_) | V::Json(Value::Number(_)))
    }

    fn date_key(self) -> Option<i64> {
        match self {
            V::Ms(ms) => Some(k3_date_key(ms)),
            other => parse_k3_date(&other.text()?),
        }
    }
}

fn status_str(status: char) -> &'static str {
    match status {
        'Z' => "Z",
        'A' => "A",
        'B' => "B",
        'C' => "C",
        _ => "D",
    }
}

fn read<'a>(data: &'a K3Data, bill: &'a Bill, entry: Option<&'a Entry>, access: &Access) -> V<'a> {
    let cell_value = |cell: Option<&'a Cell>, ty: Option<FieldType>, sub: Sub| -> V<'a> {
        match cell {
            None => V::Null,
            Some(Cell::Val(v)) => match (ty, v) {
                (Some(FieldType::Date), Value::String(s)) => V::DateText(s),
                _ => V::Json(v),
            },
            Some(Cell::Ref { number, id }) => match sub {
                Sub::Number => V::Str(number),
                Sub::Id | Sub::None => V::Int(*id),
                Sub::Name => match ty {
                    Some(FieldType::BaseData(form)) => {
                        data.ref_name(form, *id).map_or(V::Null, V::Str)
                    }
                    _ => V::Null,
                },
            },
        }
    };
    match access {
        Access::Id => V::Int(bill.id),
        Access::Number => V::Str(&bill.number),
        Access::Name => bill.name().map_or(V::Null, V::Str),
        Access::Status => V::Str(status_str(bill.status)),
        Access::Forbid => V::Str(if bill.forbid == 'B' { "B" } else { "A" }),
        Access::CreateDate => V::Ms(bill.create_ms),
        Access::ModifyDate => V::Ms(bill.modify_ms),
        Access::ApproveDate => bill.approve_ms.map_or(V::Null, V::Ms),
        Access::EntryId => entry.map_or(V::Null, |e| V::Int(e.id)),
        Access::EntrySeq => entry.map_or(V::Null, |e| V::Int(i64::try_from(e.seq).unwrap_or(0))),
        Access::Head { key, ty, sub } => cell_value(bill.head.get(key), *ty, *sub),
        Access::Line { key, ty, sub } => {
            cell_value(entry.and_then(|e| e.fields.get(key)), *ty, *sub)
        }
    }
}

fn normalise_date(s: &str) -> Option<String> {
    let key = parse_k3_date(s)?;
    let (secs, ms) = (key / 1000, key % 1000);
    let (ymd, hms) = (secs / 1_000_000, secs % 1_000_000);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        ymd / 10_000,
        (ymd / 100) % 100,
        ymd % 100,
        hms / 10_000,
        (hms / 100) % 100,
        hms % 100
    );
    if ms != 0 {
        text.push_str(format!(".{ms:03}").trim_end_matches('0'));
    }
    Some(text)
}

// ---------------------------------------------------------------------------------------------
// FilterString

#[derive(Clone, Debug, PartialEq)]
enum Lit {
    Str(StrLit),
    Num(f64),
    Null,
}

/// A text literal with the forms comparisons need, computed once per query.
#[derive(Clone, Debug, PartialEq)]
struct StrLit {
    lower: String,
    num: Option<f64>,
    date: Option<i64>,
}

impl StrLit {
    fn new(raw: &str) -> Self {
        Self {
            lower: raw.to_lowercase(),
            num: raw.trim().parse().ok(),
            date: parse_k3_date(raw),
        }
    }
}

/// A `LIKE` pattern, lower-cased once; the common shapes avoid the general matcher.
#[derive(Clone, Debug)]
enum LikePat {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General(Vec<char>),
}

impl LikePat {
    fn new(pattern: &str) -> Self {
        let p = pattern.to_lowercase();
        if !p.contains('_') {
            let inner = p.trim_matches('%');
            if !inner.contains('%') {
                let inner = inner.to_string();
                return match (p.starts_with('%'), p.ends_with('%') && p.len() > 1) {
                    (false, false) => LikePat::Exact(inner),
                    (false, true) => LikePat::Prefix(inner),
                    (true, false) => LikePat::Suffix(inner),
                    (true, true) => LikePat::Contains(inner),
                };
            }
        }
        LikePat::General(p.chars().collect())
    }

    /// Case-insensitive (SQL Server's default collation for `K3Cloud`).
    fn matches(&self, text: &str) -> bool {
        fn go(t: &[char], p: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
                Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
                Some((c, rest)) => t.first().is_some_and(|x| x == c) && go(&t[1..], rest),
            }
        }
        let (inner, kind) = match self {
            LikePat::General(p) => {
                let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
                return go(&t, p);
            }
            LikePat::Exact(i) => (i, 0),
            LikePat::Prefix(i) => (i, 1),
            LikePat::Suffix(i) => (i, 2),
            LikePat::Contains(i) => (i, 3),
        };
        if inner.is_ascii() {
            // Non-ASCII bytes of `text` can never equal ASCII bytes of the pattern.
            let (t, p) = (text.as_bytes(), inner.as_bytes());
            return match kind {
                0 => t.eq_ignore_ascii_case(p),
                1 => t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p),
                2 => t.len() >= p.len() && t[t.len() - p.len()..].eq_ignore_ascii_case(p),
                _ => p.is_empty() || t.windows(p.len()).any(|w| w.eq_ignore_ascii_case(p)),
            };
        }
        let t = text.to_lowercase();
        match kind {
            0 => t == *inner,
            1 => t.starts_with(inner.as_str()),
            2 => t.ends_with(inner.as_str()),
            _ => t.contains(inner.as_str()),
        }
    }
}

#[derive(Clone, Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Access, &'static str, Lit),
    Like(Access, LikePat, bool),
    In(Access, Vec<Lit>, bool),
    IsNull(Access, bool),
    Between(Access, Lit, Lit),
    True,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn filter_error(detail: impl std::fmt::Display) -> Failure {
    // The real text starts "GetRealExpress error" (responses/query_errors_observed_live.json).
    Failure::new(4, None, format!("GetRealExpress error: {detail}"))
}

fn tokenize(s: &str) -> Result<Vec<Tok>, Failure> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(filter_error("字符串没有结束的单引号")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            text.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(text));
            }
            '=' => {
                out.push(Tok::Op("="));
                i += 1;
            }
            '<' | '>' | '!' => {
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', Some('>')) | ('!', Some('=')) => "<>",
                    ('<', _) => "<",
                    ('>', _) => ">",
                    _ => return Err(filter_error(format!("无法识别的运算符 {c}"))),
                };
                i += op.len();
                out.push(Tok::Op(op));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text
                    .parse()
                    .map_err(|_| filter_error(format!("无法识别的数字 {text}")))?;
                out.push(Tok::Num(n));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(filter_error(format!("sandbox 不支持的字符 “{other}”"))),
        }
    }
    Ok(out)
}

struct Parser<'r, 'a> {
    toks: Vec<Tok>,
    pos: usize,
    resolver: &'r mut Resolver<'a>,
}

impl Parser<'_, '_> {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, Failure> {
        let mut left = self.and()?;
        while self.eat_kw("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, Failure> {
        let mut left = self.not()?;
        while self.eat_kw("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, Failure> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn literal(&mut self) -> Result<Lit, Failure> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(StrLit::new(&s))),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            Some(Tok::Ident(s)) => Err(filter_error(format!(
                "sandbox 只支持常量作比较值，不支持 “{s}”（函数和字段比较不在支持的子集内）"
            ))),
            other => Err(filter_error(format!("缺少比较值，遇到 {other:?}"))),
        }
    }

    fn primary(&mut self) -> Result<Expr, Failure> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err(filter_error("括号不匹配")),
                }
            }
            Some(Tok::Ident(field)) => {
                let access = self.resolver.resolve(&field)?;
                if self.eat_kw("is") {
                    let negate = self.eat_kw("not");
                    if !self.eat_kw("null") {
                        return Err(filter_error("IS 之后应为 NULL"));
                    }
                    return Ok(Expr::IsNull(access, negate));
                }
                let negate = self.eat_kw("not");
                if self.eat_kw("like") {
                    return match self.next() {
                        Some(Tok::Str(p)) => Ok(Expr::Like(access, LikePat::new(&p), negate)),
                        _ => Err(filter_error("LIKE 之后应为字符串")),
                    };
                }
                if self.eat_kw("in") {
                    if self.next() != Some(Tok::LParen) {
                        return Err(filter_error("IN 之后应为 ("));
                    }
                    let mut items = vec![self.literal()?];
                    loop {
                        match self.next() {
                            Some(Tok::Comma) => items.push(self.literal()?),
                            Some(Tok::RParen) => break,
                            _ => return Err(filter_error("IN 列表没有结束")),
                        }
                    }
                    return Ok(Expr::In(access, items, negate));
                }
                if self.eat_kw("between") {
                    let low = self.literal()?;
                    if !self.eat_kw("and") {
                        return Err(filter_error("BETWEEN 缺少 AND"));
                    }
                    let high = self.literal()?;
                    let e = Expr::Between(access, low, high);
                    return Ok(if negate { Expr::Not(Box::new(e)) } else { e });
                }
                if negate {
                    return Err(filter_error("NOT 之后应为 LIKE / IN / BETWEEN"));
                }
                match self.next() {
                    Some(Tok::Op(op)) => Ok(Expr::Cmp(access, op, self.literal()?)),
                    other => Err(filter_error(format!(
                        "字段 {field} 之后缺少运算符，遇到 {other:?}"
                    ))),
                }
            }
            other => Err(filter_error(format!("无法解析的过滤条件，遇到 {other:?}"))),
        }
    }
}

fn parse_filter(text: &str, resolver: &mut Resolver<'_>) -> Result<Expr, Failure> {
    if text.trim().is_empty() {
        return Ok(Expr::True);
    }
    let toks = tokenize(text)?;
    let mut parser = Parser {
        toks,
        pos: 0,
        resolver,
    };
    let expr = parser.or()?;
    if parser.pos < parser.toks.len() {
        return Err(filter_error(format!(
            "多余的内容 {:?}",
            &parser.toks[parser.pos..]
        )));
    }
    Ok(expr)
}

/// The array form `[{"Left","FieldName","Compare","Value","Right","Logic"}]` as filter text.
fn filter_array_to_text(items: &[Value]) -> Result<String, Failure> {
    let mut text = String::new();
    for (i, item) in items.iter().enumerate() {
        let Some(m) = item.as_object() else {
            return Err(filter_error("FilterString 数组元素不是对象"));
        };
        let s = |k: &str| get_ci(m, k).and_then(scalar_string).unwrap_or_default();
        let field = s("FieldName");
        let value = s("Value").replace('\'', "''");
        let op = match s("Compare").trim() {
            "=" | "==" | "StatusEqualto" | "Equal" | "EQ" => "=",
            "<>" | "!=" | "StatusNotEqualto" | "NotEqual" | "NE" => "<>",
            ">" | "GT" => ">",
            ">=" | "GE" => ">=",
            "<" | "LT" => "<",
            "<=" | "LE" => "<=",
            "like" | "LIKE" | "Like" | "Contains" => "like",
            other => {
                // Numeric operator codes (e.g. "67") come from the WebAPI explorer; the
                // reference does not give their table, so the sandbox refuses them clearly.
                return Err(filter_error(format!(
                    "sandbox 不认识 Compare 代码 “{other}”，请用 =、<>、>、>=、<、<=、like"
                )));
            }
        };
        if i > 0 {
            let logic = s("Logic").to_ascii_lowercase();
            text.push_str(if logic == "1" || logic == "or" {
                " or "
            } else {
                " and "
            });
        }
        text.push_str(&s("Left"));
        let value = if op == "like" && !value.contains('%') {
            format!("%{value}%")
        } else {
            value
        };
        let _ = write!(text, "{field} {op} '{value}'");
        text.push_str(&s("Right"));
    }
    Ok(text)
}

/// Case-insensitive comparison of `x` with an already lower-cased text, without allocating.
fn cmp_ci(x: &str, lower: &str) -> Ordering {
    if x.is_ascii() && lower.is_ascii() {
        x.bytes().map(|b| b.to_ascii_lowercase()).cmp(lower.bytes())
    } else {
        x.chars().flat_map(char::to_lowercase).cmp(lower.chars())
    }
}

fn cmp_values(a: V<'_>, b: &Lit, date: bool) -> Option<Ordering> {
    match b {
        Lit::Null => None,
        Lit::Num(n) => a.number()?.partial_cmp(n),
        Lit::Str(lit) => {
            if date && let (Some(x), Some(y)) = (a.date_key(), lit.date) {
                return Some(x.cmp(&y));
            }
            if a.is_number()
                && let (Some(x), Some(y)) = (a.number(), lit.num)
            {
                return x.partial_cmp(&y);
            }
            // SQL Server's default collation for K3Cloud is case-insensitive.
            Some(cmp_ci(&a.text()?, &lit.lower))
        }
    }
}

struct Row<'a> {
    bill: &'a Bill,
    entry: Option<&'a Entry>,
}

fn eval(expr: &Expr, data: &K3Data, row: &Row<'_>) -> bool {
    let get = |a: &Access| read(data, row.bill, row.entry, a);
    match expr {
        Expr::True => true,
        Expr::And(a, b) => eval(a, data, row) && eval(b, data, row),
        Expr::Or(a, b) => eval(a, data, row) || eval(b, data, row),
        Expr::Not(a) => !eval(a, data, row),
        Expr::Cmp(a, op, lit) => {
            let Some(ord) = cmp_values(get(a), lit, a.is_date()) else {
                return false;
            };
            match *op {
                "=" => ord == Ordering::Equal,
                "<>" => ord != Ordering::Equal,
                ">" => ord == Ordering::Greater,
                ">=" => ord != Ordering::Less,
                "<" => ord == Ordering::Less,
                _ => ord != Ordering::Greater,
            }
        }
        Expr::Like(a, p, negate) => get(a).text().is_some_and(|t| p.matches(&t)) != *negate,
        Expr::In(a, items, negate) => {
            let v = get(a);
            let is_date = a.is_date();
            items
                .iter()
                .any(|lit| cmp_values(v, lit, is_date) == Some(Ordering::Equal))
                != *negate
        }
        Expr::IsNull(a, negate) => get(a).is_null() != *negate,
        Expr::Between(a, low, high) => {
            let v = get(a);
            let is_date = a.is_date();
            cmp_values(v, low, is_date).is_some_and(|o| o != Ordering::Less)
                && cmp_values(v, high, is_date).is_some_and(|o| o != Ordering::Greater)
        }
    }
}

/// `ORDER BY` comparison: nulls first, numbers as numbers, dates as dates, text as text.
fn order_values(a: V<'_>, b: V<'_>) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    match (a, b) {
        (V::Ms(x), V::Ms(y)) => x.cmp(&y),
        (V::DateText(x), V::DateText(y)) => match (parse_k3_date(x), parse_k3_date(y)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.cmp(y),
        },
        _ if a.is_number() && b.is_number() => a
            .number()
            .partial_cmp(&b.number())
            .unwrap_or(Ordering::Equal),
        _ => a
            .text()
            .unwrap_or_default()
            .cmp(&b.text().unwrap_or_default()),
    }
}

/// Every row of the table (one per entry when the query expands over `entity`), in storage
/// order (bill id, then entry sequence).
/// `f` gets each row and its entry's index, and answers whether to go on.
fn for_each_row<'a>(
    table: &'a Table,
    entity: Option<&str>,
    f: &mut dyn FnMut(Row<'a>, Option<usize>) -> bool,
) {
    for bill in table.bills.values() {
        match entity.and_then(|e| bill.entries.get(e)) {
            Some(list) if !list.is_empty() => {
                for (i, entry) in list.iter().enumerate() {
                    let row = Row {
                        bill,
                        entry: Some(entry),
                    };
                    if !f(row, Some(i)) {
                        return;
                    }
                }
            }
            _ => {
                if !f(Row { bill, entry: None }, None) {
                    return;
                }
            }
        }
    }
}

/// Storage-order rows that match, up to `end` of them.
fn collect_unordered<'a>(
    data: &'a K3Data,
    table: &'a Table,
    entity: Option<&str>,
    filter: &Expr,
    end: usize,
    sink: &mut dyn FnMut(Row<'a>),
) {
    let mut found = 0;
    if end == 0 {
        return;
    }
    for_each_row(table, entity, &mut |row, _| {
        if eval(filter, data, &row) {
            sink(row);
            found += 1;
        }
        found < end
    });
}

/// Every row as `(bill id, entry index)`, sorted by `order`; ties keep storage order.
fn sorted_rows(
    data: &K3Data,
    table: &Table,
    entity: Option<&str>,
    order: &[(Access, bool)],
) -> Vec<(i64, Option<usize>)> {
    let mut rows: Vec<(i64, Option<usize>, Vec<V<'_>>)> = Vec::new();
    for_each_row(table, entity, &mut |row, index| {
        let keys = order
            .iter()
            .map(|(acc, _)| read(data, row.bill, row.entry, acc))
            .collect();
        rows.push((row.bill.id, index, keys));
        true
    });
    // A stable sort: rows arrive in storage order.
    rows.sort_by(|(_, _, a), (_, _, b)| {
        for ((x, y), (_, desc)) in a.iter().zip(b).zip(order) {
            let o = order_values(*x, *y);
            if o != Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        Ordering::Equal
    });
    rows.into_iter().map(|(id, index, _)| (id, index)).collect()
}

/// Rows as `(bill id, entry index)`, in some order.
type SortedRows = Vec<(i64, Option<usize>)>;

/// Rows in some order, kept until the data changes: the total order of a table's rows by an
/// `OrderString`, and the matching rows of a `FilterString` in that order. A client paging
/// through a sorted result pays for the sort and the filter once, not once per page.
#[derive(Debug, Default)]
pub(crate) struct OrderCache {
    map: Mutex<HashMap<String, (u64, Arc<SortedRows>)>>,
}

impl OrderCache {
    fn get_or_build(
        &self,
        key: &str,
        generation: u64,
        build: impl FnOnce() -> Vec<(i64, Option<usize>)>,
    ) -> Arc<SortedRows> {
        if let Some((g, rows)) = self.map.lock().get(key)
            && *g == generation
        {
            return rows.clone();
        }
        // Built outside the cache's lock; two queries may both build it, which is harmless.
        let rows = Arc::new(build());
        let mut map = self.map.lock();
        if map.len() >= 256 {
            map.clear();
        }
        map.insert(key.to_string(), (generation, rows.clone()));
        rows
    }
}

/// The result of a query: field keys and rows, or one failure.
pub(crate) struct QueryResult {
    pub(crate) keys: Vec<String>,
    pub(crate) rows: Vec<Vec<Value>>,
}

/// Runs a query `data` packet.
pub(crate) fn run(
    data: &K3Data,
    query: &Map<String, Value>,
    max_rows: usize,
    cache: &OrderCache,
) -> Result<QueryResult, Failure> {
    let form = get_ci(query, "FormId")
        .and_then(scalar_string)
        .unwrap_or_default();
    if form.trim().is_empty() {
        return Err(Failure::new(
            5,
            None,
            "data数据包中的参数FormId的值不能为空。",
        ));
    }
    let Some(table) = data.table(&form) else {
        return Err(unknown_form(&form));
    };
    let field_keys = get_ci(query, "FieldKeys")
        .and_then(scalar_string)
        .unwrap_or_default();
    let keys: Vec<String> = field_keys
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        // responses/query_errors_observed_live.json.
        return Err(Failure::new(
            8,
            None,
            "data数据包中的参数FieldKeys的值不能为空。",
        ));
    }
    let mut resolver = Resolver {
        table,
        entity: None,
    };
    let access: Vec<Access> = keys
        .iter()
        .map(|k| resolver.resolve(k))
        .collect::<Result<_, _>>()?;
    let filter_text = match get_ci(query, "FilterString") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => filter_array_to_text(items)?,
        Some(other) => return Err(filter_error(format!("FilterString 类型错误 {other}"))),
    };
    let filter = parse_filter(&filter_text, &mut resolver)?;
    let order_text = get_ci(query, "OrderString")
        .and_then(scalar_string)
        .unwrap_or_default();
    let mut order = Vec::new();
    for part in order_text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default();
        let desc = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("asc") => false,
            Some(w) if w.eq_ignore_ascii_case("desc") => true,
            Some(w) => return Err(filter_error(format!("OrderString 无法识别 “{w}”"))),
        };
        order.push((resolver.resolve(field)?, desc));
    }
    let entity = resolver.entity.clone();

    let start = usize::try_from(int(query, "StartRow").unwrap_or(0).max(0)).unwrap_or(0);
    let limit = usize::try_from(int(query, "Limit").unwrap_or(0).max(0)).unwrap_or(0);
    // Limit 0 means "no page size", but the server's cap (WebAPIMaxQueryLimit) still applies.
    let limit = if limit == 0 {
        max_rows
    } else {
        limit.min(max_rows)
    };
    let mut end = start.saturating_add(limit);
    // TopRowCount behaves as an absolute end row (kingdee-k3cloud-mcp's finding, k3cloud.md §5.5).
    if let Some(top) = int(query, "TopRowCount").filter(|t| *t > 0) {
        end = end.min(usize::try_from(top).unwrap_or(usize::MAX));
    }

    let rows: Vec<Row<'_>> = if order.is_empty() {
        let mut rows = Vec::new();
        collect_unordered(data, table, entity.as_deref(), &filter, end, &mut |row| {
            rows.push(row);
        });
        rows
    } else {
        // The rows that match, in the order asked for: built from the cached total order
        // of this sort, and cached themselves for this filter, so that the pages of one
        // result cost a page each, not a scan.
        let key = format!(
            "{}|{}|{}",
            table.def.id,
            entity.as_deref().unwrap_or(""),
            order_text.trim().to_ascii_lowercase()
        );
        let result_key = format!("{key}#{filter_text}");
        let resolve = |&(bill_id, entry_index): &(i64, Option<usize>)| {
            let bill = table.bills.get(&bill_id)?;
            let entry = entry_index.and_then(|i| {
                entity
                    .as_ref()
                    .and_then(|e| bill.entries.get(e))
                    .and_then(|list| list.get(i))
            });
            Some(Row { bill, entry })
        };
        let matching = cache.get_or_build(&result_key, data.generation, || {
            let sorted = cache.get_or_build(&key, data.generation, || {
                sorted_rows(data, table, entity.as_deref(), &order)
            });
            sorted
                .iter()
                .filter(|r| resolve(r).is_some_and(|row| eval(&filter, data, &row)))
                .copied()
                .collect()
        });
        matching.iter().take(end).filter_map(resolve).collect()
    };
    let start = start.min(rows.len());
    let out = rows[start..]
        .iter()
        .map(|row| {
            access
                .iter()
                .map(|a| read(data, row.bill, row.entry, a).into_json())
                .collect()
        })
        .collect();
    Ok(QueryResult { keys, rows: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        let like = |t: &str, p: &str| LikePat::new(p).matches(t);
        assert!(like("MAT0001", "MAT%"));
        assert!(like("mat0001", "MAT%"));
        assert!(like("MAT0001", "%0001"));
        assert!(like("MAT0001", "MAT_001"));
        assert!(!like("XMAT0001", "MAT%"));
        assert!(like("上海客户A", "%客户a"));
        assert!(like("ABC", "abc"));
        assert!(like("xAbCx", "%b%"));
        assert!(!like("AB", "ABC%"));
        assert!(like("a%b", "a%b"));
    }

    #[test]
    fn tokenizes_filters() {
        let toks = tokenize("FNumber like 'MA''T%' and (FQty >= 1.5 or FID in (1,2))").unwrap();
        assert_eq!(toks[2], Tok::Str("MA'T%".into()));
        assert!(toks.contains(&Tok::Op(">=")));
        assert!(tokenize("FNumber = 'open").is_err());
        assert!(tokenize("FNumber ~ 1").is_err());
    }

    #[test]
    fn filter_array_becomes_text() {
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"Left":"(","FieldName":"FDocumentStatus","Compare":"StatusEqualto","Value":"C","Right":")","Logic":"AND"},
                {"Left":"","FieldName":"FNumber","Compare":"=","Value":"X","Right":"","Logic":"1"}]"#,
        )
        .unwrap();
        assert_eq!(
            filter_array_to_text(&items).unwrap(),
            "(FDocumentStatus = 'C') or FNumber = 'X'"
        );
        let bad: Vec<Value> =
            serde_json::from_str(r#"[{"FieldName":"F","Compare":"67","Value":"1"}]"#).unwrap();
        assert!(filter_array_to_text(&bad).is_err());
    }

    #[test]
    fn dates_normalise() {
        assert_eq!(
            normalise_date("2024-01-15 00:00:00").unwrap(),
            "2024-01-15T00:00:00"
        );
        assert_eq!(normalise_date("2024-01-15").unwrap(), "2024-01-15T00:00:00");
        assert_eq!(
            normalise_date("2024-01-15 10:11:12.120").unwrap(),
            "2024-01-15T10:11:12.12"
        );
    }
}
