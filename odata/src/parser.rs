//! nom parser for the `$filter` subset Graph accepts on users.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons. Keywords and function names
//! are matched in any case (Graph does), `#` starts a comment that runs to the end of the
//! line (so filter files can explain themselves). The parser stops at the first syntax error
//! and says what was expected there; the common slips (`=`, `&&`, double quotes, an unquoted
//! word, a `not` without parentheses) get a message of their own.
//!
//! Nesting (parentheses, `not`, lambdas) is limited to [`MAX_DEPTH`] levels, so hostile input
//! gets an error instead of overflowing the stack; long flat `and`/`or` chains are parsed in
//! a loop and cost nothing extra.

use std::cell::Cell;

use nom::bytes::complete::{tag, take_while, take_while_m_n, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use super::FilterError;
use super::ast::{CmpOp, Expr, Func, Ident, LambdaKind, Literal, Path, Span, Value};

/// Words that cannot start a condition.
const RESERVED: [&str; 9] = ["and", "or", "eq", "ne", "gt", "ge", "lt", "le", "in"];

/// How deeply parentheses, `not` and lambdas may nest.
pub const MAX_DEPTH: usize = 100;

/// The error type threaded through nom: where it happened, and for a committed failure the
/// message for the admin.
#[derive(Debug)]
pub struct PError {
    rest_len: usize,
    message: Option<FilterError>,
}

impl<'a> ParseError<&'a str> for PError {
    fn from_error_kind(input: &'a str, _: ErrorKind) -> Self {
        PError {
            rest_len: input.len(),
            message: None,
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PError>;

/// Parses a whole filter expression.
pub fn parse(src: &str) -> Result<Expr, FilterError> {
    let p = FilterParser {
        src,
        depth: Cell::new(0),
    };
    let outcome = p
        .expr(src, None)
        .and_then(|(rest, expr)| p.end(rest).map(|_| expr));
    outcome.map_err(|e| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.message.unwrap_or_else(|| {
            let at = src.len() - e.rest_len;
            FilterError::new(Span::new(at, at + 1), "this filter could not be read here")
        }),
        nom::Err::Incomplete(_) => FilterError::new(Span::new(0, 0), "incomplete filter"),
    })
}

struct FilterParser<'s> {
    src: &'s str,
    depth: Cell<usize>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Skips spaces, line breaks and `#` comments.
fn ws(mut i: &str) -> &str {
    loop {
        i = i.trim_start();
        match i.strip_prefix('#') {
            Some(comment) => i = comment.find('\n').map_or("", |n| &comment[n..]),
            None => return i,
        }
    }
}

/// A keyword in any case, not followed by a character that would continue a name.
fn keyword<'a>(i: &'a str, kw: &str) -> Option<&'a str> {
    let head = i.get(..kw.len())?;
    let rest = &i[kw.len()..];
    (head.eq_ignore_ascii_case(kw) && !rest.starts_with(is_ident_char)).then_some(rest)
}

fn identifier(i: &str) -> PResult<'_, &str> {
    recognize((
        take_while_m_n(1, 1, is_ident_start),
        take_while(is_ident_char),
    ))
    .parse(i)
}

/// The next word or symbol, for quoting in messages.
fn next_token(i: &str) -> &str {
    let i = i.trim_start();
    let end = if i.starts_with(is_ident_char) {
        i.find(|c: char| !is_ident_char(c)).unwrap_or(i.len())
    } else {
        i.find(|c: char| c.is_whitespace() || is_ident_char(c) || c == '\'')
            .unwrap_or(i.len())
            .max(i.chars().next().map_or(0, char::len_utf8))
    };
    let mut end = end.min(24);
    while !i.is_char_boundary(end) {
        end -= 1;
    }
    &i[..end]
}

impl<'s> FilterParser<'s> {
    fn pos(&self, rest: &str) -> usize {
        self.src.len() - rest.len()
    }

    fn span(&self, from: &str, to: &str) -> Span {
        Span::new(self.pos(from), self.pos(to))
    }

    fn fail<T>(
        &self,
        span: Span,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> PResult<'s, T> {
        let mut error = FilterError::new(span, message);
        error.hint = hint;
        Err(nom::Err::Failure(PError {
            rest_len: self.src.len() - span.start,
            message: Some(error),
        }))
    }

    /// Span of the next token, or an empty span at the end of the input.
    fn token_span(&self, i: &str) -> Span {
        let i = ws(i);
        let start = self.pos(i);
        Span::new(start, start + next_token(i).len())
    }

    fn deeper<T>(&self, at: &'s str, f: impl FnOnce() -> PResult<'s, T>) -> PResult<'s, T> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return self.fail(
                self.token_span(at),
                format!("the filter is nested more than {MAX_DEPTH} levels deep"),
                Some("remove redundant parentheses or split the condition".into()),
            );
        }
        self.depth.set(depth);
        let result = f();
        self.depth.set(depth - 1);
        result
    }

    /// Checks that nothing but spaces and comments follows a complete expression.
    fn end(&self, i: &'s str) -> PResult<'s, ()> {
        let i = ws(i);
        if i.is_empty() {
            return Ok((i, ()));
        }
        let span = self.token_span(i);
        if i.starts_with(')') {
            return self.fail(
                span,
                "this `)` has no matching `(`",
                Some("remove it, or add the missing `(` earlier".into()),
            );
        }
        self.fail(
            span,
            format!("unexpected `{}` after a complete condition", next_token(i)),
            Some("join conditions with `and` or `or`".into()),
        )
    }

    /// A whole expression: an `or` chain of `and` chains, the loosest level.
    fn expr(&self, i: &'s str, after: Option<&str>) -> PResult<'s, Expr> {
        self.chain(i, after, Junction::OR)
    }

    /// Operands joined by one junction word, collected in a loop (no recursion per clause).
    fn chain(&self, i: &'s str, after: Option<&str>, junction: Junction) -> PResult<'s, Expr> {
        let (mut i, first) = (junction.operand)(self, i, after)?;
        let mut items = vec![first];
        loop {
            let j = ws(i);
            if let Some(rest) = keyword(j, junction.word) {
                let (rest, e) = (junction.operand)(self, rest, Some(junction.word))?;
                items.push(e);
                i = rest;
            } else if let Some(after) = j.strip_prefix(junction.symbol) {
                return self.fail(
                    self.span(j, after),
                    format!("`{}` is not OData", junction.symbol),
                    Some(format!("write `{}`", junction.word)),
                );
            } else {
                break;
            }
        }
        let expr = if items.len() == 1 {
            items.remove(0)
        } else {
            (junction.make)(items)
        };
        Ok((i, expr))
    }

    /// `not …`, a parenthesised expression, or a single condition.
    fn unary(&self, i: &'s str, after: Option<&str>) -> PResult<'s, Expr> {
        let i = ws(i);
        if i.is_empty() || i.starts_with(')') {
            let message = match after {
                Some(word) => format!("expected a condition after `{word}`"),
                None => "expected a condition".to_string(),
            };
            return self.fail(
                self.token_span(i),
                message,
                Some("e.g. department eq 'Sales'".into()),
            );
        }
        if let Some(rest) = keyword(i, "not") {
            let not_span = self.span(i, rest);
            return self.deeper(i, || {
                let j = ws(rest);
                let (rest, inner) = if j.starts_with('(') || keyword(j, "not").is_some() {
                    self.unary(j, Some("not"))?
                } else {
                    let (rest, inner) = self.condition(j, Some("not"))?;
                    if !matches!(inner, Expr::Call { .. } | Expr::Lambda { .. }) {
                        return self.fail(
                            not_span,
                            "`not` binds tighter than comparisons",
                            Some(format!("put the condition in parentheses: not ({inner})")),
                        );
                    }
                    (rest, inner)
                };
                let span = not_span.to(inner.span());
                Ok((rest, Expr::Not(Box::new(inner), span)))
            });
        }
        if let Some(rest) = i.strip_prefix('(') {
            let open = self.span(i, rest);
            return self.deeper(i, || {
                let (rest, inner) = self.expr(rest, Some("("))?;
                let j = ws(rest);
                match j.strip_prefix(')') {
                    Some(rest) => Ok((rest, inner)),
                    None if j.is_empty() => self.fail(
                        open,
                        "this `(` is never closed",
                        Some("add the missing `)`".into()),
                    ),
                    None => self.fail(
                        self.token_span(j),
                        format!("expected `)` or `and`/`or`, found `{}`", next_token(j)),
                        Some("check the parentheses and the operators between conditions".into()),
                    ),
                }
            });
        }
        self.condition(i, after)
    }

    /// A function call, a lambda, a comparison or an `in` list.
    fn condition(&self, i: &'s str, after: Option<&str>) -> PResult<'s, Expr> {
        let i = ws(i);
        let Ok((rest, name)) = identifier(i) else {
            return self.not_a_condition(i, after);
        };
        if RESERVED.iter().any(|kw| kw.eq_ignore_ascii_case(name)) {
            return self.not_a_condition(i, after);
        }
        if ws(rest).starts_with('(') {
            return self.call(i, name, ws(rest));
        }
        let (rest, (path, lambda)) = self.path(i)?;
        if let Some((kind, open)) = lambda {
            return self.lambda(i, path, kind, open);
        }
        let j = ws(rest);
        if let Some(rest) = keyword(j, "in") {
            return self.in_list(i, path, rest);
        }
        let Some((op, rest)) = CmpOp::ALL
            .iter()
            .find_map(|op| keyword(j, op.keyword()).map(|rest| (*op, rest)))
        else {
            return self.missing_operator(path, j);
        };
        let (rest, value) = self.literal(rest, op.keyword())?;
        Ok((rest, Expr::Compare { path, op, value }))
    }

    fn not_a_condition<T>(&self, i: &'s str, after: Option<&str>) -> PResult<'s, T> {
        let span = self.token_span(i);
        let found = next_token(i);
        if i.starts_with('\'') || i.starts_with(|c: char| c.is_ascii_digit()) {
            return self.fail(
                span,
                "a condition starts with a property name, not a value",
                Some("write the property first: department eq 'Sales'".into()),
            );
        }
        let message = match (after, found.is_empty()) {
            (Some(word), true) => format!("expected a condition after `{word}`"),
            (Some(word), false) => format!("expected a condition after `{word}`, found `{found}`"),
            (None, _) => format!("expected a condition, found `{found}`"),
        };
        self.fail(span, message, Some("e.g. department eq 'Sales'".into()))
    }

    fn missing_operator<T>(&self, path: Path, j: &'s str) -> PResult<'s, T> {
        const SYMBOLS: [(&str, &str); 8] = [
            ("==", "eq"),
            ("!=", "ne"),
            ("<>", "ne"),
            ("<=", "le"),
            (">=", "ge"),
            ("=", "eq"),
            ("<", "lt"),
            (">", "gt"),
        ];
        if let Some((sym, word)) = SYMBOLS.iter().find(|(sym, _)| j.starts_with(sym)) {
            return self.fail(
                self.span(j, &j[sym.len()..]),
                format!("`{sym}` is not an OData operator"),
                Some(format!("write `{word}`: {path} {word} …")),
            );
        }
        let span = self.token_span(j);
        let at_end = j.is_empty()
            || j.starts_with(')')
            || keyword(j, "and").is_some()
            || keyword(j, "or").is_some();
        if at_end {
            return self.fail(
                path.span,
                format!("`{path}` on its own is not a condition"),
                Some(format!("compare it with a value, e.g. {path} eq true")),
            );
        }
        self.fail(
            span,
            format!(
                "expected an operator after `{path}`, found `{}`",
                next_token(j)
            ),
            Some("the operators are eq, ne, gt, ge, lt, le and in".into()),
        )
    }

    /// `a/b/c`, stopping before `/any(` or `/all(` (returned as the lambda that follows).
    fn path(&self, i: &'s str) -> PResult<'s, (Path, Option<LambdaStart<'s>>)> {
        let start = i;
        let (mut rest, first) = identifier(i)?;
        let mut segments = vec![self.ident(rest, first)];
        let mut lambda = None;
        while let Some(after_slash) = rest.strip_prefix('/') {
            let kind = [("any", LambdaKind::Any), ("all", LambdaKind::All)]
                .into_iter()
                .find_map(|(kw, kind)| {
                    keyword(after_slash, kw)
                        .filter(|r| ws(r).starts_with('('))
                        .map(|r| (kind, ws(r)))
                });
            if kind.is_some() {
                lambda = kind;
                break;
            }
            let segment = if let Some(r) = after_slash.strip_prefix("$count") {
                Ok((r, "$count"))
            } else {
                identifier(after_slash)
            };
            let Ok((r, name)) = segment else {
                let span = self.token_span(after_slash);
                return self.fail(
                    span,
                    "expected a property name after `/`",
                    Some("e.g. onPremisesExtensionAttributes/extensionAttribute1".into()),
                );
            };
            segments.push(self.ident(r, name));
            rest = r;
        }
        let path = Path {
            segments,
            span: self.span(start, rest),
        };
        Ok((rest, (path, lambda)))
    }

    fn ident(&self, rest: &str, name: &str) -> Ident {
        let end = self.pos(rest);
        Ident {
            name: name.to_string(),
            span: Span::new(end - name.len(), end),
        }
    }

    /// `coll/any(x: body)`; `open` starts at the `(`.
    fn lambda(
        &self,
        start: &'s str,
        path: Path,
        kind: LambdaKind,
        open: &'s str,
    ) -> PResult<'s, Expr> {
        self.deeper(open, || {
            let j = ws(&open[1..]);
            let Ok((rest, var)) = identifier(j) else {
                return self.fail(
                    self.token_span(j),
                    "expected a variable name for the lambda",
                    Some(format!("e.g. {path}/any(x:x eq 'value')")),
                );
            };
            let var = self.ident(rest, var);
            let k = ws(rest);
            let Some(rest) = k.strip_prefix(':') else {
                return self.fail(
                    self.token_span(k),
                    format!("expected `:` after the lambda variable `{}`", var.name),
                    Some(format!("e.g. {path}/any({0}:{0} eq 'value')", var.name)),
                );
            };
            let (rest, body) = self.expr(rest, Some(":"))?;
            let k = ws(rest);
            let Some(rest) = k.strip_prefix(')') else {
                return self.fail(
                    if k.is_empty() {
                        self.span(open, &open[1..])
                    } else {
                        self.token_span(k)
                    },
                    "the lambda is not closed",
                    Some("add the missing `)`".into()),
                );
            };
            let expr = Expr::Lambda {
                path,
                kind,
                var,
                body: Box::new(body),
                span: self.span(start, rest),
            };
            Ok((rest, expr))
        })
    }

    /// `name(path,'value')` for startsWith / endsWith; `open` starts at the `(`.
    fn call(&self, start: &'s str, name: &str, open: &'s str) -> PResult<'s, Expr> {
        let name_span = Span::new(self.pos(start), self.pos(start) + name.len());
        let func = if name.eq_ignore_ascii_case("startswith") {
            Func::StartsWith
        } else if name.eq_ignore_ascii_case("endswith") {
            Func::EndsWith
        } else if name.eq_ignore_ascii_case("contains") || name.eq_ignore_ascii_case("substringof")
        {
            return self.fail(
                name_span,
                format!("Graph does not support `{name}` on users"),
                Some("use startsWith or endsWith".into()),
            );
        } else {
            return self.fail(
                name_span,
                format!("unknown function `{name}`"),
                Some("user filters support startsWith(property,'text') and endsWith(property,'text')".into()),
            );
        };
        let j = ws(&open[1..]);
        let (rest, path, lambda) = match self.path(j) {
            Ok((rest, (path, lambda))) => (rest, path, lambda),
            Err(nom::Err::Error(_)) => {
                return self.fail(
                    self.token_span(j),
                    format!("the first argument of {} must be a property", func.name()),
                    Some(format!("e.g. {}(displayName,'A')", func.name())),
                );
            }
            Err(e) => return Err(e),
        };
        if lambda.is_some() {
            return self.fail(path.span, "a lambda cannot be a function argument", None);
        }
        let k = ws(rest);
        let Some(rest) = k.strip_prefix(',') else {
            return self.fail(
                self.token_span(k),
                format!("expected `,` after `{path}`"),
                Some(format!("e.g. {}({path},'A')", func.name())),
            );
        };
        let (rest, arg) = self.literal(rest, ",")?;
        let k = ws(rest);
        let Some(rest) = k.strip_prefix(')') else {
            return self.fail(
                self.token_span(k),
                format!("expected `)` to close {}(", func.name()),
                Some("these functions take exactly two arguments".into()),
            );
        };
        let span = self.span(start, rest);
        Ok((
            rest,
            Expr::Call {
                func,
                path,
                arg,
                span,
            },
        ))
    }

    /// `in ('a','b')`; `i` follows the keyword.
    fn in_list(&self, start: &'s str, path: Path, i: &'s str) -> PResult<'s, Expr> {
        let j = ws(i);
        let Some(mut rest) = j.strip_prefix('(') else {
            return self.fail(
                self.token_span(j),
                "`in` takes a list in parentheses",
                Some(format!("e.g. {path} in ('Sales','Marketing')")),
            );
        };
        let mut values = Vec::new();
        loop {
            let k = ws(rest);
            if values.is_empty() && k.starts_with(')') {
                return self.fail(
                    self.token_span(k),
                    "the `in` list is empty",
                    Some("give at least one value".into()),
                );
            }
            let (r, value) = self.literal(k, if values.is_empty() { "(" } else { "," })?;
            values.push(value);
            let k = ws(r);
            if let Some(r) = k.strip_prefix(',') {
                rest = r;
            } else if let Some(r) = k.strip_prefix(')') {
                let span = self.span(start, r);
                return Ok((r, Expr::In { path, values, span }));
            } else {
                return self.fail(
                    self.token_span(k),
                    "expected `,` or `)` in the `in` list",
                    Some("separate values with commas and close the list with `)`".into()),
                );
            }
        }
    }

    /// A literal value after `after` (an operator or punctuation, for messages).
    fn literal(&self, i: &'s str, after: &str) -> PResult<'s, Literal> {
        let i = ws(i);
        let (rest, value) = self.value(i, after)?;
        Ok((
            rest,
            Literal {
                value,
                span: self.span(i, rest),
            },
        ))
    }

    fn value(&self, i: &'s str, after: &str) -> PResult<'s, Value> {
        if i.starts_with('\'') {
            return self.string(i);
        }
        if let Some(body) = i.strip_prefix('"') {
            let (inner, end) = match body.find('"') {
                Some(n) => (&body[..n], n + 2),
                None => (body, i.len()),
            };
            return self.fail(
                Span::new(self.pos(i), self.pos(i) + end),
                "OData strings use single quotes",
                Some(format!("write '{}'", inner.replace('\'', "''"))),
            );
        }
        if let Ok((rest, guid)) = guid(i) {
            return Ok((rest, Value::Guid(guid.to_ascii_lowercase())));
        }
        if let Ok((rest, text)) = date_time_like(i) {
            return self.date_time(i, rest, text);
        }
        if let Ok((rest, text)) = guid_like(i) {
            return self.fail(
                self.span(i, rest),
                format!("`{text}` is not a valid GUID"),
                Some(
                    "a GUID has 8-4-4-4-12 hex digits, e.g. 184efa21-98c3-4e5d-95ab-d07053a96e67"
                        .into(),
                ),
            );
        }
        if let Ok((rest, digits)) = recognize((opt(char::<&str, PError>('-')), digit1)).parse(i) {
            if rest.starts_with('.') {
                return self.fail(
                    self.token_span(i),
                    "only whole numbers can be compared",
                    None,
                );
            }
            return match digits.parse::<i64>() {
                Ok(n) if !rest.starts_with(is_ident_char) => Ok((rest, Value::Int(n))),
                _ => self.fail(
                    self.token_span(i),
                    format!("`{}` is not a valid number", next_token(i)),
                    Some("text values must be quoted: '…'".into()),
                ),
            };
        }
        for (kw, value) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if let Some(rest) = keyword(i, kw) {
                return Ok((rest, value));
            }
        }
        let span = self.token_span(i);
        if i.is_empty() {
            return self.fail(
                span,
                format!("expected a value after `{after}`"),
                Some("e.g. 'Sales', true, null or 2024-01-01T00:00:00Z".into()),
            );
        }
        if let Ok((_, word)) = identifier(i) {
            return self.fail(
                span,
                format!("expected a value after `{after}`, found the bare word `{word}`"),
                Some(format!("text values are quoted: '{word}'")),
            );
        }
        self.fail(
            span,
            format!(
                "expected a value after `{after}`, found `{}`",
                next_token(i)
            ),
            Some("e.g. 'Sales', true, null or 2024-01-01T00:00:00Z".into()),
        )
    }

    /// `'…'` with `''` for a quote inside.
    fn string(&self, i: &'s str) -> PResult<'s, Value> {
        let body = &i[1..];
        let mut out = String::new();
        let mut chunks = body.split('\'');
        let mut consumed = 1;
        while let Some(chunk) = chunks.next() {
            out.push_str(chunk);
            consumed += chunk.len() + 1;
            if consumed > i.len() {
                break;
            }
            if i[consumed..].starts_with('\'') {
                out.push('\'');
                consumed += 1;
                chunks.next();
                continue;
            }
            return Ok((&i[consumed..], Value::String(out)));
        }
        self.fail(
            Span::new(self.pos(i), self.pos(i) + 1),
            "this string is never closed",
            Some("end it with `'`; write `''` for a quote inside the text".into()),
        )
    }

    fn date_time(&self, i: &'s str, rest: &'s str, text: &str) -> PResult<'s, Value> {
        let span = self.span(i, rest);
        if text.contains(['t', 'z']) {
            return self.fail(
                span,
                format!("`{text}` is not a valid date-time"),
                Some(format!(
                    "write T and Z in capitals: {}",
                    text.to_ascii_uppercase()
                )),
            );
        }
        if !text.contains('T') {
            return self.fail(
                span,
                format!("`{text}` is a date without a time"),
                Some(format!("Graph compares date-times: write {text}T00:00:00Z")),
            );
        }
        if chrono::DateTime::parse_from_rfc3339(text).is_err() {
            return self.fail(
                span,
                format!("`{text}` is not a valid date-time"),
                Some(
                    "write it as 2024-01-31T00:00:00Z (seconds and a time zone are required)"
                        .into(),
                ),
            );
        }
        Ok((rest, Value::DateTime(text.to_string())))
    }
}

/// A lambda found after a path: its kind and the input from its `(` on.
type LambdaStart<'s> = (LambdaKind, &'s str);

/// Parses the operands of one precedence level (`and` joins `not`s, `or` joins `and`s).
type Level = for<'s> fn(&FilterParser<'s>, &'s str, Option<&str>) -> PResult<'s, Expr>;

/// `and` or `or`: its word, the symbol people write for it by mistake, what it joins.
#[derive(Clone, Copy)]
struct Junction {
    word: &'static str,
    symbol: &'static str,
    operand: Level,
    make: fn(Vec<Expr>) -> Expr,
}

impl Junction {
    const OR: Junction = Junction {
        word: "or",
        symbol: "||",
        operand: |p, i, after| p.chain(i, after, Junction::AND),
        make: Expr::Or,
    };
    const AND: Junction = Junction {
        word: "and",
        symbol: "&&",
        operand: |p, i, after| p.unary(i, after),
        make: Expr::And,
    };
}

fn hex(n: usize) -> impl FnMut(&str) -> PResult<'_, &str> {
    move |i| take_while_m_n(n, n, |c: char| c.is_ascii_hexdigit()).parse(i)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, not followed by a name character.
fn guid(i: &str) -> PResult<'_, &str> {
    let (rest, g) = recognize((
        hex(8),
        tag("-"),
        hex(4),
        tag("-"),
        hex(4),
        tag("-"),
        hex(4),
        tag("-"),
        hex(12),
    ))
    .parse(i)?;
    if rest.starts_with(is_ident_char) {
        return Err(nom::Err::Error(PError::from_error_kind(
            rest,
            ErrorKind::Verify,
        )));
    }
    Ok((rest, g))
}

/// Something that starts like a GUID (eight hex digits and a hyphen) but is not one.
fn guid_like(i: &str) -> PResult<'_, &str> {
    let (_, _) = (hex(8), char('-')).parse(i)?;
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-').parse(i)
}

/// Something that starts like a date (`2024-01-31`) and runs to the next separator.
fn date_time_like(i: &str) -> PResult<'_, &str> {
    let (_, _) = (
        take_while_m_n(4, 4, |c: char| c.is_ascii_digit()),
        char('-'),
        take_while_m_n(2, 2, |c: char| c.is_ascii_digit()),
        char('-'),
    )
        .parse(i)?;
    take_while1(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+')).parse(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_chains_stay_flat() {
        let e = parse("a eq 1 or b eq 2 or c eq 3").unwrap();
        assert!(matches!(e, Expr::Or(ref items) if items.len() == 3));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = parse("a eq 1 or b eq 2 and c eq 3").unwrap();
        let Expr::Or(items) = e else { panic!() };
        assert!(matches!(items[1], Expr::And(_)));
    }

    #[test]
    fn strings_unescape_doubled_quotes() {
        let e = parse("displayName eq 'O''Brien'''").unwrap();
        let Expr::Compare { value, .. } = e else {
            panic!()
        };
        assert_eq!(value.value, Value::String("O'Brien'".into()));
    }

    #[test]
    fn comments_are_skipped() {
        let e = parse("# staff only\ndepartment eq 'a#b' # trailing\n").unwrap();
        assert_eq!(e.to_string(), "department eq 'a#b'");
    }
}
