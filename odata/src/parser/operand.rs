//! Operands: property paths, lambdas (`any`/`all`), function calls and `in` lists.

use super::*;
use crate::ast::{Expr, Func, Ident, LambdaKind, Path, Span};

impl<'s> FilterParser<'s> {
    /// `a/b/c`, stopping before `/any(` or `/all(` (returned as the lambda that follows).
    pub(super) fn path(&self, i: &'s str) -> PResult<'s, (Path, Option<LambdaStart<'s>>)> {
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

    pub(super) fn ident(&self, rest: &str, name: &str) -> Ident {
        let end = self.pos(rest);
        Ident {
            name: name.to_string(),
            span: Span::new(end - name.len(), end),
        }
    }

    /// `coll/any(x: body)`; `open` starts at the `(`.
    pub(super) fn lambda(
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
    pub(super) fn call(&self, start: &'s str, name: &str, open: &'s str) -> PResult<'s, Expr> {
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
    pub(super) fn in_list(&self, start: &'s str, path: Path, i: &'s str) -> PResult<'s, Expr> {
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
}
