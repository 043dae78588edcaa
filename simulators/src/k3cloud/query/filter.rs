//! `FilterString`: its tokens, the expression parsed from them (text or the array form), and its evaluation on a row.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

use super::fields::{Access, Resolver, V, read};
use crate::clock::parse_k3_date;
use crate::k3cloud::envelope::Failure;
use crate::k3cloud::store::{Bill, Entry, K3Data};
use crate::k3cloud::wire::{get_ci, scalar_string};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lit {
    Str(StrLit),
    Num(f64),
    Null,
}

/// A text literal with the forms comparisons need, computed once per query.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct StrLit {
    pub(super) lower: String,
    pub(super) num: Option<f64>,
    pub(super) date: Option<i64>,
}

impl StrLit {
    pub(super) fn new(raw: &str) -> Self {
        Self {
            lower: raw.to_lowercase(),
            num: raw.trim().parse().ok(),
            date: parse_k3_date(raw),
        }
    }
}

/// A `LIKE` pattern, lower-cased once; the common shapes avoid the general matcher.
#[derive(Clone, Debug)]
pub(super) enum LikePat {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General(Vec<char>),
}

impl LikePat {
    pub(super) fn new(pattern: &str) -> Self {
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
    pub(super) fn matches(&self, text: &str) -> bool {
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
pub(super) enum Expr {
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
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

pub(super) fn filter_error(detail: impl std::fmt::Display) -> Failure {
    // The real text starts "GetRealExpress error" (responses/query_errors_observed_live.json).
    Failure::new(4, None, format!("GetRealExpress error: {detail}"))
}

pub(super) fn tokenize(s: &str) -> Result<Vec<Tok>, Failure> {
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

pub(super) struct Parser<'r, 'a> {
    pub(super) toks: Vec<Tok>,
    pub(super) pos: usize,
    pub(super) resolver: &'r mut Resolver<'a>,
}

impl Parser<'_, '_> {
    pub(super) fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    pub(super) fn or(&mut self) -> Result<Expr, Failure> {
        let mut left = self.and()?;
        while self.eat_kw("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    pub(super) fn and(&mut self) -> Result<Expr, Failure> {
        let mut left = self.not()?;
        while self.eat_kw("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    pub(super) fn not(&mut self) -> Result<Expr, Failure> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    pub(super) fn literal(&mut self) -> Result<Lit, Failure> {
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

    pub(super) fn primary(&mut self) -> Result<Expr, Failure> {
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

pub(super) fn parse_filter(text: &str, resolver: &mut Resolver<'_>) -> Result<Expr, Failure> {
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

/// How a row of the array form compares, by its `Compare`.
enum ArrayOp {
    /// An operator of the text form, with the value quoted.
    Plain(&'static str),
    /// `like '%v%'` (a `%` in the value is kept as the caller's pattern).
    Contains,
    /// `like 'v%'`.
    StartsWith,
    /// `in ('a', 'b')` from one comma-joined value.
    In,
}

/// `Compare` as symbols, names (vip.kingdee.com, `k3cloud-wire/16`) or the numeric codes public
/// clients send (`reference/k3cloud-filter-compare.md`; the codes depend on the field's type
/// and no vendor table was found, so only the codes seen with a clear meaning are served).
fn array_op(compare: &str) -> Option<ArrayOp> {
    use ArrayOp::{Contains, In, Plain, StartsWith};
    Some(match compare {
        "=" | "==" | "StatusEqualto" | "Equal" | "EQ" | "67" | "105" | "74" | "76" => Plain("="),
        "<>" | "!=" | "StatusNotEqualto" | "NotEqual" | "NE" | "83" => Plain("<>"),
        ">" | "GT" | "21" => Plain(">"),
        ">=" | "GE" | "39" | "4" => Plain(">="),
        "<" | "LT" | "32" => Plain("<"),
        "<=" | "LE" | "16" | "6" => Plain("<="),
        "like" | "LIKE" | "Like" | "Contains" | "81" | "17" => Contains,
        "60" => StartsWith,
        "338" => In,
        _ => return None,
    })
}

/// The array form `[{"Left","FieldName","Compare","Value","Right","Logic"}]` as filter text.
/// A row's `Logic` joins it to the next one: `0`/`AND` and, `1`/`OR` or.
pub(super) fn filter_array_to_text(items: &[Value]) -> Result<String, Failure> {
    let mut text = String::new();
    let mut join = "";
    for item in items {
        let Some(m) = item.as_object() else {
            return Err(filter_error("FilterString 数组元素不是对象"));
        };
        let s = |k: &str| get_ci(m, k).and_then(scalar_string).unwrap_or_default();
        let field = s("FieldName");
        let (left, right) = (s("Left"), s("Right"));
        // Pieces a server takes as they are, not text to splice into the filter: a field key
        // and parentheses only (what a real server makes of anything else is not recorded).
        let key = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        if field.is_empty()
            || !field.chars().all(key)
            || !left.trim().chars().all(|c| c == '(')
            || !right.trim().chars().all(|c| c == ')')
        {
            return Err(filter_error(format!(
                "FilterString 数组元素不合法：FieldName “{field}”，Left “{left}”，Right “{right}”"
            )));
        }
        let value = s("Value").replace('\'', "''");
        let compare = s("Compare");
        let Some(op) = array_op(compare.trim()) else {
            // What a real server answers to an unknown code is not recorded; this wording is ours.
            return Err(filter_error(format!(
                "不支持的 Compare “{compare}”（支持 =、<>、>、>=、<、<=、like 及 67、105、74、76、83、21、39、4、32、16、6、81、17、60、338）"
            )));
        };
        text.push_str(join);
        text.push_str(left.trim());
        match op {
            ArrayOp::Plain(op) => {
                let _ = write!(text, "{field} {op} '{value}'");
            }
            ArrayOp::Contains if value.contains('%') => {
                let _ = write!(text, "{field} like '{value}'");
            }
            ArrayOp::Contains => {
                let _ = write!(text, "{field} like '%{value}%'");
            }
            ArrayOp::StartsWith => {
                let _ = write!(text, "{field} like '{value}%'");
            }
            ArrayOp::In => {
                let listed: Vec<String> = value
                    .split(',')
                    .map(|v| format!("'{}'", v.trim()))
                    .collect();
                let _ = write!(text, "{field} in ({})", listed.join(", "));
            }
        }
        text.push_str(right.trim());
        let logic = s("Logic").trim().to_ascii_lowercase();
        join = if logic == "1" || logic == "or" {
            " or "
        } else {
            " and "
        };
    }
    Ok(text)
}

/// Case-insensitive comparison of `x` with an already lower-cased text, without allocating.
pub(super) fn cmp_ci(x: &str, lower: &str) -> Ordering {
    if x.is_ascii() && lower.is_ascii() {
        x.bytes().map(|b| b.to_ascii_lowercase()).cmp(lower.bytes())
    } else {
        x.chars().flat_map(char::to_lowercase).cmp(lower.chars())
    }
}

pub(super) fn cmp_values(a: V<'_>, b: &Lit, date: bool) -> Option<Ordering> {
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

pub(super) struct Row<'a> {
    pub(super) bill: &'a Bill,
    pub(super) entry: Option<&'a Entry>,
}

pub(super) fn eval(expr: &Expr, data: &K3Data, row: &Row<'_>) -> bool {
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
            "(FDocumentStatus = 'C') and FNumber = 'X'"
        );
        for bad in [
            r#"[{"FieldName":"F","Compare":"88","Value":"1"}]"#,
            r#"[{"Left":"1=1 or (","FieldName":"F","Compare":"67","Value":"1"}]"#,
            r#"[{"FieldName":"F = 'x' or G","Compare":"67","Value":"1"}]"#,
            r#"[{"FieldName":"F","Compare":"67","Value":"1","Right":") or (1=1"}]"#,
        ] {
            let bad: Vec<Value> = serde_json::from_str(bad).unwrap();
            assert!(filter_array_to_text(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numeric_compare_codes_of_public_clients_become_text() {
        // Shapes as public clients send them (reference/k3cloud-filter-compare.md): Compare
        // as text, Logic as a number or text, joining a row to the next.
        let items: Vec<Value> = serde_json::from_str(
            r#"[{"Left":"(","FieldName":"FDocumentStatus","Compare":"105","Value":"A","Right":"","Logic":1},
                {"Left":"","FieldName":"FDocumentStatus","Compare":"105","Value":"C","Right":")","Logic":0},
                {"Left":"","FieldName":"FName","Compare":"81","Value":"O'B","Right":"","Logic":"0"},
                {"Left":"","FieldName":"FNumber","Compare":"60","Value":"87","Right":"","Logic":0},
                {"Left":"","FieldName":"FNumber","Compare":"338","Value":"A1,B2","Right":"","Logic":0},
                {"Left":"","FieldName":"FQty","Compare":"21","Value":0,"Right":"","Logic":0},
                {"Left":"","FieldName":"FCreateTime","Compare":"39","Value":"2024-01-01","Right":"","Logic":0},
                {"Left":"","FieldName":"FCreateTime","Compare":"32","Value":"2024-02-01","Right":"","Logic":0},
                {"Left":"","FieldName":"FBillNo","Compare":"83","Value":"X","Right":"","Logic":0},
                {"Left":"","FieldName":"FNumber","Compare":"67","Value":"X","Right":"","Logic":""}]"#,
        )
        .unwrap();
        assert_eq!(
            filter_array_to_text(&items).unwrap(),
            "(FDocumentStatus = 'A' or FDocumentStatus = 'C') and FName like '%O''B%' \
             and FNumber like '87%' and FNumber in ('A1', 'B2') and FQty > '0' \
             and FCreateTime >= '2024-01-01' and FCreateTime < '2024-02-01' \
             and FBillNo <> 'X' and FNumber = 'X'"
        );
    }
}
