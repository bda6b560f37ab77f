//! Evaluates a filter against one Graph user (its JSON object) the way Graph would.
//!
//! Delta pulls cannot be filtered by Graph, so the admin's filter is applied here; filter
//! tests use the same code. Semantics follow Graph and OData: text compares without regard to
//! case, a missing property is null, `x eq null` holds for null or missing, `x ne v` holds
//! when `x eq v` does not, ordering comparisons with null are false, and a lambda over a
//! missing collection finds nothing.

use std::cmp::Ordering;

use serde_json::Value as Json;

use super::ast::{CmpOp, Expr, Func, LambdaKind, Literal, Path, Value};

/// Does `user` satisfy `expr`?
pub fn matches(expr: &Expr, user: &Json) -> bool {
    eval(expr, user, None)
}

/// The lambda variable in scope and the element it stands for.
type Binding<'a> = Option<(&'a str, &'a Json)>;

fn eval(expr: &Expr, user: &Json, bound: Binding<'_>) -> bool {
    match expr {
        Expr::Or(items) => items.iter().any(|e| eval(e, user, bound)),
        Expr::And(items) => items.iter().all(|e| eval(e, user, bound)),
        Expr::Not(inner, _) => !eval(inner, user, bound),
        Expr::Compare { path, op, value } => {
            let found = lookup(path, user, bound);
            compare(found.as_ref(), *op, value)
        }
        Expr::In { path, values, .. } => {
            let found = lookup(path, user, bound);
            values.iter().any(|v| compare(found.as_ref(), CmpOp::Eq, v))
        }
        Expr::Call {
            func, path, arg, ..
        } => {
            let (Some(Found::Json(Json::String(text))), Value::String(arg)) =
                (lookup(path, user, bound), &arg.value)
            else {
                return false;
            };
            match func {
                Func::StartsWith => starts_with_ci(text, arg),
                Func::EndsWith => ends_with_ci(text, arg),
            }
        }
        Expr::Lambda {
            path,
            kind,
            var,
            body,
            ..
        } => {
            let Some(Found::Json(Json::Array(items))) = lookup(path, user, bound) else {
                return *kind == LambdaKind::All;
            };
            let holds = |item: &Json| eval(body, user, Some((&var.name, item)));
            match kind {
                LambdaKind::Any => items.iter().any(holds),
                LambdaKind::All => items.iter().all(holds),
            }
        }
    }
}

/// The value a path names: a JSON value, or the length of a collection for `$count`.
enum Found<'a> {
    Json(&'a Json),
    Count(usize),
}

fn lookup<'a>(path: &Path, user: &'a Json, bound: Binding<'a>) -> Option<Found<'a>> {
    let mut segments = path.segments.iter().peekable();
    let current = match bound {
        Some((var, element)) if segments.peek().is_some_and(|s| s.name == var) => {
            segments.next();
            element
        }
        _ => user,
    };
    let mut current = Some(current);
    for seg in segments {
        if seg.name == "$count" {
            let len = current.and_then(Json::as_array).map_or(0, Vec::len);
            return Some(Found::Count(len));
        }
        current = current.and_then(|c| c.get(&seg.name));
    }
    current.map(Found::Json)
}

fn compare(found: Option<&Found<'_>>, op: CmpOp, literal: &Literal) -> bool {
    let is_null = match found {
        None | Some(Found::Json(Json::Null)) => true,
        Some(_) => false,
    };
    if literal.value == Value::Null || is_null {
        let both_null = is_null && literal.value == Value::Null;
        return match op {
            CmpOp::Eq => both_null,
            CmpOp::Ne => !both_null,
            _ => false,
        };
    }
    let Some(ordering) = found.and_then(|f| order(f, &literal.value)) else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
    }
}

/// How a found value orders against a literal, if they can be compared at all.
fn order(found: &Found<'_>, literal: &Value) -> Option<Ordering> {
    match (found, literal) {
        (Found::Count(n), Value::Int(m)) => Some((*n as i64).cmp(m)),
        (Found::Json(Json::String(s)), Value::String(t) | Value::Guid(t)) => Some(cmp_ci(s, t)),
        (Found::Json(Json::String(s)), Value::DateTime(t)) => {
            let a = chrono::DateTime::parse_from_rfc3339(s).ok()?;
            let b = chrono::DateTime::parse_from_rfc3339(t).ok()?;
            Some(a.cmp(&b))
        }
        (Found::Json(Json::Bool(b)), Value::Bool(c)) => Some(b.cmp(c)),
        (Found::Json(Json::Number(n)), Value::Int(m)) => n.as_i64().map(|n| n.cmp(m)),
        _ => None,
    }
}

/// Case-insensitive ordering without allocating.
fn cmp_ci(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let a = a.bytes().map(|c| c.to_ascii_lowercase());
        let b = b.bytes().map(|c| c.to_ascii_lowercase());
        return a.cmp(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    let mut text = text.chars().flat_map(char::to_lowercase);
    prefix
        .chars()
        .flat_map(char::to_lowercase)
        .all(|c| text.next() == Some(c))
}

fn ends_with_ci(text: &str, suffix: &str) -> bool {
    let mut text = text.chars().rev().flat_map(char::to_lowercase);
    suffix
        .chars()
        .rev()
        .flat_map(char::to_lowercase)
        .all(|c| text.next() == Some(c))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Filter;

    fn check(filter: &str, user: serde_json::Value) -> bool {
        Filter::compile(filter).unwrap().unwrap().matches(&user)
    }

    #[test]
    fn text_equality_ignores_case() {
        assert!(check(
            "department eq 'sales'",
            json!({"department": "SALES"})
        ));
        assert!(check(
            "startsWith(displayName,'jo')",
            json!({"displayName": "José"})
        ));
        assert!(check(
            "endsWith(mail,'@Contoso.com')",
            json!({"mail": "a@contoso.COM"})
        ));
    }

    #[test]
    fn missing_means_null() {
        assert!(check("department eq null", json!({})));
        assert!(check("department ne 'x'", json!({"department": null})));
        assert!(!check("department eq 'x'", json!({})));
        assert!(!check("createdDateTime ge 2020-01-01T00:00:00Z", json!({})));
    }

    #[test]
    fn lambdas_and_counts() {
        let user = json!({"assignedLicenses": [{"skuId": "184EFA21-98C3-4E5D-95AB-D07053A96E67"}]});
        assert!(check(
            "assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)",
            user.clone()
        ));
        assert!(check("assignedLicenses/$count ne 0", user));
        assert!(check("assignedLicenses/$count eq 0", json!({})));
        assert!(!check("otherMails/any(m:m eq 'a@b.c')", json!({})));
    }

    #[test]
    fn date_times_compare_as_instants() {
        let user = json!({"createdDateTime": "2024-03-01T10:00:00+02:00"});
        assert!(check(
            "createdDateTime ge 2024-03-01T08:00:00Z",
            user.clone()
        ));
        assert!(!check("createdDateTime ge 2024-03-01T08:00:01Z", user));
    }
}
