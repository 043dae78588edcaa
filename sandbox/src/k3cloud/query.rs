//! `ExecuteBillQuery` / `BillQuery`: `FieldKeys` (entry and reference sub-fields), a
//! `FilterString` subset, `OrderString`, `StartRow` / `Limit` / `TopRowCount` (k3cloud.md §5.5).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::envelope::Failure;
use super::forms::FieldType;
use super::store::{Bill, Cell, Entry, K3Data, Table, unknown_form};
use super::wire::{get_ci, int, scalar_string};
use crate::clock::{k3_datetime, parse_k3_date};

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

fn read(
    data: &K3Data,
    _table: &Table,
    bill: &Bill,
    entry: Option<&Entry>,
    access: &Access,
) -> Value {
    let as_date = |ms: i64| Value::from(k3_datetime(ms));
    let cell_value = |cell: Option<&Cell>, ty: Option<FieldType>, sub: Sub| -> Value {
        match cell {
            None => Value::Null,
            Some(Cell::Val(v)) => match (ty, v) {
                (Some(FieldType::Date), Value::String(s)) => {
                    Value::from(normalise_date(s).unwrap_or_else(|| s.clone()))
                }
                _ => v.clone(),
            },
            Some(Cell::Ref { number, id }) => match sub {
                Sub::Number => Value::from(number.clone()),
                Sub::Id | Sub::None => Value::from(*id),
                Sub::Name => match ty {
                    Some(FieldType::BaseData(form)) => {
                        data.ref_name(form, *id).map_or(Value::Null, Value::from)
                    }
                    _ => Value::Null,
                },
            },
        }
    };
    match access {
        Access::Id => Value::from(bill.id),
        Access::Number => Value::from(bill.number.clone()),
        Access::Name => bill.name().map_or(Value::Null, Value::from),
        Access::Status => Value::from(bill.status.to_string()),
        Access::Forbid => Value::from(bill.forbid.to_string()),
        Access::CreateDate => as_date(bill.create_ms),
        Access::ModifyDate => as_date(bill.modify_ms),
        Access::ApproveDate => bill.approve_ms.map_or(Value::Null, as_date),
        Access::EntryId => entry.map_or(Value::Null, |e| Value::from(e.id)),
        Access::EntrySeq => entry.map_or(Value::Null, |e| Value::from(e.seq)),
        Access::Head { key, ty, sub } => cell_value(bill.head.get(key), *ty, *sub),
        Access::Line { key, ty, sub } => {
            cell_value(entry.and_then(|e| e.fields.get(key)), *ty, *sub)
        }
    }
}

fn normalise_date(s: &str) -> Option<String> {
    let key = parse_k3_date(s)?;
    let (ymd, hms) = (key / 1_000_000, key % 1_000_000);
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        ymd / 10_000,
        (ymd / 100) % 100,
        ymd % 100,
        hms / 10_000,
        (hms / 100) % 100,
        hms % 100
    ))
}

// ---------------------------------------------------------------------------------------------
// FilterString

#[derive(Clone, Debug, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
    Null,
}

#[derive(Clone, Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Access, &'static str, Lit),
    Like(Access, String, bool),
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
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
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
                        Some(Tok::Str(p)) => Ok(Expr::Like(access, p, negate)),
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

fn cmp_values(a: &Value, b: &Lit, date: bool) -> Option<Ordering> {
    let text = |v: &Value| scalar_string(v);
    match b {
        Lit::Null => None,
        Lit::Num(n) => {
            let x = match a {
                Value::Number(x) => x.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            }?;
            x.partial_cmp(n)
        }
        Lit::Str(s) => {
            if date
                && let (Some(x), Some(y)) =
                    (text(a).and_then(|t| parse_k3_date(&t)), parse_k3_date(s))
            {
                return Some(x.cmp(&y));
            }
            if let Value::Number(x) = a
                && let (Some(x), Ok(y)) = (x.as_f64(), s.trim().parse::<f64>())
            {
                return x.partial_cmp(&y);
            }
            let x = text(a)?;
            // SQL Server's default collation for K3Cloud is case-insensitive.
            Some(x.to_lowercase().cmp(&s.to_lowercase()))
        }
    }
}

fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first().is_some_and(|x| x == c) && go(&t[1..], rest),
        }
    }
    // The common shapes without the general matcher: 'X%', '%X', '%X%', 'X'.
    let (t, p) = (text.to_lowercase(), pattern.to_lowercase());
    if !p.contains('_') {
        let inner = p.trim_matches('%');
        if !inner.contains('%') {
            return match (p.starts_with('%'), p.ends_with('%') && p.len() > 1) {
                (false, false) => t == inner,
                (false, true) => t.starts_with(inner),
                (true, false) => t.ends_with(inner),
                (true, true) => t.contains(inner),
            };
        }
    }
    let t: Vec<char> = t.chars().collect();
    let p: Vec<char> = p.chars().collect();
    go(&t, &p)
}

struct Row<'a> {
    bill: &'a Bill,
    entry: Option<&'a Entry>,
}

fn eval(expr: &Expr, data: &K3Data, table: &Table, row: &Row<'_>) -> bool {
    let get = |a: &Access| read(data, table, row.bill, row.entry, a);
    match expr {
        Expr::True => true,
        Expr::And(a, b) => eval(a, data, table, row) && eval(b, data, table, row),
        Expr::Or(a, b) => eval(a, data, table, row) || eval(b, data, table, row),
        Expr::Not(a) => !eval(a, data, table, row),
        Expr::Cmp(a, op, lit) => {
            let v = get(a);
            let Some(ord) = cmp_values(&v, lit, a.is_date()) else {
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
        Expr::Like(a, p, negate) => {
            let v = get(a);
            scalar_string(&v).is_some_and(|t| like(&t, p)) != *negate
        }
        Expr::In(a, items, negate) => {
            let v = get(a);
            let is_date = a.is_date();
            items
                .iter()
                .any(|lit| cmp_values(&v, lit, is_date) == Some(Ordering::Equal))
                != *negate
        }
        Expr::IsNull(a, negate) => get(a).is_null() != *negate,
        Expr::Between(a, low, high) => {
            let v = get(a);
            let is_date = a.is_date();
            cmp_values(&v, low, is_date).is_some_and(|o| o != Ordering::Less)
                && cmp_values(&v, high, is_date).is_some_and(|o| o != Ordering::Greater)
        }
    }
}

fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        _ => scalar_string(a)
            .unwrap_or_default()
            .cmp(&scalar_string(b).unwrap_or_default()),
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

    let mut rows: Vec<Row<'_>> = Vec::new();
    for bill in table.bills.values() {
        let entries = entity.as_ref().and_then(|e| bill.entries.get(e));
        match entries {
            Some(list) if !list.is_empty() => {
                for entry in list {
                    let row = Row {
                        bill,
                        entry: Some(entry),
                    };
                    if eval(&filter, data, table, &row) {
                        rows.push(row);
                    }
                }
            }
            _ => {
                let row = Row { bill, entry: None };
                if eval(&filter, data, table, &row) {
                    rows.push(row);
                }
            }
        }
    }
    if !order.is_empty() {
        // Decorate-sort-undecorate: every sort key is read once per row.
        let mut keyed: Vec<(Vec<Value>, Row<'_>)> = rows
            .into_iter()
            .map(|row| {
                let keys = order
                    .iter()
                    .map(|(acc, _)| read(data, table, row.bill, row.entry, acc))
                    .collect();
                (keys, row)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, y), (_, desc)) in a.iter().zip(b).zip(&order) {
                let o = order_values(x, y);
                if o != Ordering::Equal {
                    return if *desc { o.reverse() } else { o };
                }
            }
            Ordering::Equal
        });
        rows = keyed.into_iter().map(|(_, row)| row).collect();
    }
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
    let out = rows
        .iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .map(|row| {
            access
                .iter()
                .map(|a| read(data, table, row.bill, row.entry, a))
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
        assert!(like("MAT0001", "MAT%"));
        assert!(like("mat0001", "MAT%"));
        assert!(like("MAT0001", "%0001"));
        assert!(like("MAT0001", "MAT_001"));
        assert!(!like("XMAT0001", "MAT%"));
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
    }
}
