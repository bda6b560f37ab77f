//! Canonical text of a filter: the form sent to Graph and shown to admins.
//!
//! Keywords in lower case, single spaces around operators, none inside calls and lists
//! (`startsWith(displayName,'A')`, `in ('a','b')`), parentheses only where precedence needs
//! them. Parsing the rendered text gives back the same tree.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{Expr, LambdaKind, Literal, Path, Value};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => join(f, items, " or ", |e| matches!(e, Expr::Or(_))),
            Expr::And(items) => join(f, items, " and ", |e| {
                matches!(e, Expr::Or(_) | Expr::And(_))
            }),
            Expr::Not(inner, _) => match **inner {
                Expr::Call { .. } | Expr::Lambda { .. } => write!(f, "not {inner}"),
                _ => write!(f, "not ({inner})"),
            },
            Expr::Compare { path, op, value } => write!(f, "{path} {} {value}", op.keyword()),
            Expr::In { path, values, .. } => {
                write!(f, "{path} in (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(')')
            }
            Expr::Call {
                func, path, arg, ..
            } => write!(f, "{}({path},{arg})", func.name()),
            Expr::Lambda {
                path,
                kind,
                var,
                body,
                ..
            } => {
                let kind = match kind {
                    LambdaKind::Any => "any",
                    LambdaKind::All => "all",
                };
                write!(f, "{path}/{kind}({}:{body})", var.name)
            }
        }
    }
}

fn join(
    f: &mut Formatter<'_>,
    items: &[Expr],
    sep: &str,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if needs_parens(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

impl Display for Path {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_char('/')?;
            }
            f.write_str(&seg.name)?;
        }
        Ok(())
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => {
                f.write_char('\'')?;
                for part in s.split_inclusive('\'') {
                    f.write_str(part)?;
                    if part.ends_with('\'') {
                        f.write_char('\'')?;
                    }
                }
                f.write_char('\'')
            }
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
            Value::Guid(g) | Value::DateTime(g) => f.write_str(g),
        }
    }
}
