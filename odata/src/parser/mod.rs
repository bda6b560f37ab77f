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

mod literal;
mod operand;
#[cfg(test)]
mod tests;

use std::cell::Cell;

use nom::bytes::complete::{take_while, take_while_m_n};
use nom::combinator::recognize;
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use crate::FilterError;
use crate::ast::{CmpOp, Expr, LambdaKind, Path, Span};

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
