//! Checks a parsed filter against the Graph user property catalogue.
//!
//! Finds every property Graph does not know or cannot filter on, every operator a property
//! does not support, and every value of the wrong type, all in one pass. While walking it
//! rewrites property names to Graph's spelling, notes whether the filter needs Graph's
//! advanced query mode, and collects the top-level properties the filter reads.

use std::collections::BTreeSet;

use super::FilterError;
use super::ast::{CmpOp, Expr, Func, Ident, LambdaKind, Literal, Path, Span, Value};
use crate::catalog::{self, Filtering, Kind, Ops, Property};
use crate::nearest;

/// What validation learnt about a correct filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Needs `ConsistencyLevel: eventual` and `$count=true`.
    pub advanced: bool,
    /// Top-level user properties the filter reads, in Graph's spelling.
    pub properties: BTreeSet<String>,
}

/// Validates `expr`, fixing the case of property names in place.
pub fn validate(expr: &mut Expr) -> Result<Analysis, Vec<FilterError>> {
    let mut v = Validator::default();
    v.expr(expr, None);
    if v.advanced
        && let Some(span) = v.not_in_advanced
    {
        v.errors.push(
            FilterError::new(
                span,
                "Graph cannot filter on `identities` in a query that needs advanced mode",
            )
            .with_hint(
                "advanced mode is needed here for ne, not, endsWith, eq null or an advanced-only \
                 property; drop those or filter on identities alone",
            ),
        );
    }
    if let Some((span, name)) = v.alone.clone()
        && v.properties.len() > 1
    {
        let others: Vec<&str> = v
            .properties
            .iter()
            .map(String::as_str)
            .filter(|p| *p != name)
            .collect();
        v.errors.push(
            FilterError::new(
                span,
                format!(
                    "Graph filters on `{name}` only when no other property is in the filter, \
                     and this one also reads {}",
                    others.join(", ")
                ),
            )
            .with_hint(format!(
                "filter on `{name}` alone (e.g. {name}/lastSignInDateTime le \
                 2024-01-01T00:00:00Z), or drop it and filter on the others"
            )),
        );
    }
    if v.errors.is_empty() {
        Ok(Analysis {
            advanced: v.advanced,
            properties: v.properties,
        })
    } else {
        Err(v.errors)
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<FilterError>,
    advanced: bool,
    properties: BTreeSet<String>,
    not_in_advanced: Option<Span>,
    /// The first property read that Graph filters on only alone, and where.
    alone: Option<(Span, String)>,
}

/// Inside `coll/any(x: …)`: the variable and what each element is.
#[derive(Clone, Copy)]
struct Scope<'a> {
    var: &'a str,
    collection: &'static Property,
}

/// What a path in a condition refers to.
enum Target {
    Property {
        kind: Kind,
        filter: Filtering,
    },
    /// `coll/$count`.
    Count(Filtering),
}

/// The operation a condition asks of a property, for looking up in the catalogue.
struct Wanted {
    op: Ops,
    label: &'static str,
    always_advanced: bool,
}

impl Validator {
    fn expr(&mut self, expr: &mut Expr, scope: Option<Scope<'_>>) {
        match expr {
            Expr::Or(items) | Expr::And(items) => {
                for item in items {
                    self.expr(item, scope);
                }
            }
            Expr::Not(inner, _) => {
                self.advanced = true;
                self.expr(inner, scope);
            }
            Expr::Compare { path, op, value } => self.compare(path, *op, value, scope),
            Expr::In { path, values, .. } => {
                let wanted = Wanted {
                    op: Ops::EQ,
                    label: "in",
                    always_advanced: false,
                };
                if let Some((operand, name)) = self.operand(path, &wanted, scope) {
                    for value in values.iter() {
                        self.check_type(operand, &name, value);
                    }
                }
            }
            Expr::Call {
                func, path, arg, ..
            } => {
                let wanted = match func {
                    Func::StartsWith => Wanted {
                        op: Ops::STARTS_WITH,
                        label: "startsWith",
                        always_advanced: false,
                    },
                    Func::EndsWith => Wanted {
                        op: Ops::ENDS_WITH,
                        label: "endsWith",
                        always_advanced: true,
                    },
                };
                if let Some((_, name)) = self.operand(path, &wanted, scope)
                    && !matches!(arg.value, Value::String(_))
                {
                    self.errors.push(
                        FilterError::new(
                            arg.span,
                            format!(
                                "{} compares text, not {}",
                                func.name(),
                                arg.value.describe()
                            ),
                        )
                        .with_hint(format!(
                            "quote the value: {}({name},'{}')",
                            func.name(),
                            arg.value
                        )),
                    );
                }
            }
            Expr::Lambda {
                path,
                kind,
                var,
                body,
                span,
            } => self.lambda(path, *kind, var, body, *span, scope),
        }
    }

    fn compare(&mut self, path: &mut Path, op: CmpOp, value: &Literal, scope: Option<Scope<'_>>) {
        let wanted = match (op, &value.value) {
            (CmpOp::Eq | CmpOp::Ne, Value::Null) => Wanted {
                op: Ops::EQ_NULL,
                label: "eq null",
                always_advanced: true,
            },
            (CmpOp::Eq, _) => Wanted {
                op: Ops::EQ,
                label: "eq",
                always_advanced: false,
            },
            (CmpOp::Ne, _) => Wanted {
                op: Ops::EQ,
                label: "ne",
                always_advanced: true,
            },
            (_, Value::Null) => {
                self.errors.push(
                    FilterError::new(
                        value.span,
                        format!("`{}` cannot compare with null", op.keyword()),
                    )
                    .with_hint(format!("only eq and ne test for null: {path} eq null")),
                );
                return;
            }
            // Advanced-query page, "Support for filter by properties of … directory objects":
            // a count is only compared with eq 0 or ne 0 (see catalog::COUNT_VALUES).
            (CmpOp::Gt | CmpOp::Lt | CmpOp::Ge | CmpOp::Le, _) if path.is_count() => {
                if let Some(Target::Count(_)) = self.resolve(path, scope) {
                    self.bad_count(path, &format!("{} {value}", op.keyword()));
                }
                return;
            }
            (CmpOp::Ge | CmpOp::Le, _) => Wanted {
                op: Ops::RANGE,
                label: op.keyword(),
                always_advanced: false,
            },
            (CmpOp::Gt | CmpOp::Lt, _) => {
                let Some(target) = self.resolve(path, scope) else {
                    return;
                };
                let better = if op == CmpOp::Gt { "ge" } else { "le" };
                let hint = match target {
                    Target::Property { filter, .. } if filter.allows(Ops::RANGE).is_none() => {
                        format!("`{path}` supports {}", describe_ops(filter))
                    }
                    _ => format!("use `{better}`: {path} {better} {value}"),
                };
                self.errors.push(
                    FilterError::new(
                        path.span.to(value.span),
                        format!(
                            "Graph does not support `{}` on user properties",
                            op.keyword()
                        ),
                    )
                    .with_hint(hint),
                );
                return;
            }
        };
        if let Some((operand, name)) = self.operand(path, &wanted, scope)
            && value.value != Value::Null
        {
            self.check_type(operand, &name, value);
            if matches!(operand, Operand::Count)
                && let Value::Int(n) = value.value
                && !catalog::COUNT_VALUES.contains(&n)
            {
                self.bad_count(path, &format!("{} {n}", op.keyword()));
            }
        }
    }

    /// A `/$count` comparison Graph refuses: anything but `eq 0` or `ne 0`.
    fn bad_count(&mut self, path: &Path, written: &str) {
        let coll = path.segments[0].name.as_str();
        self.errors.push(
            FilterError::new(
                path.span,
                format!("Graph compares `{path}` only with eq 0 or ne 0, not `{written}`"),
            )
            .with_hint(format!(
                "{coll}/$count eq 0 for none, {coll}/$count ne 0 for at least one; to count \
                 more, filter locally after the read"
            )),
        );
    }

    /// Resolves the path of a condition and checks that it supports the wanted operation.
    /// Returns what kind of value is compared and the path as Graph spells it.
    fn operand(
        &mut self,
        path: &mut Path,
        wanted: &Wanted,
        scope: Option<Scope<'_>>,
    ) -> Option<(Operand, String)> {
        let target = self.resolve(path, scope)?;
        // Inside a lambda, name the collection too: "`x` in `otherMails`".
        let shown = match scope {
            Some(scope) => format!("{path}` in `{}", scope.collection.name),
            None => path.to_string(),
        };
        let (operand, filter, op) = match target {
            Target::Count(_) if wanted.op == Ops::EQ_NULL => {
                self.errors.push(
                    FilterError::new(path.span, "a count is never null")
                        .with_hint("compare it with a number: eq 0"),
                );
                return None;
            }
            Target::Count(filter) => (Operand::Count, filter, Ops::COUNT),
            Target::Property { kind, filter } => (Operand::Kind(kind), filter, wanted.op),
        };
        match filter.allows(op) {
            Some(advanced) => {
                self.advanced |= advanced || wanted.always_advanced;
                Some((operand, shown))
            }
            None => {
                let (message, hint) = if !filter.is_filterable() {
                    (
                        format!("Graph cannot filter users by `{shown}`"),
                        "filter on another property, or leave this condition out".to_string(),
                    )
                } else if op == Ops::COUNT {
                    (
                        format!("Graph cannot count `{shown}`"),
                        "leave out /$count".to_string(),
                    )
                } else {
                    (
                        format!("`{shown}` does not support {}", wanted.label),
                        format!("`{shown}` supports {}", describe_ops(filter)),
                    )
                };
                self.errors
                    .push(FilterError::new(path.span, message).with_hint(hint));
                None
            }
        }
    }

    /// What a path names: a user property (or a part of one), a lambda element, or a count.
    /// Rewrites the segments to Graph's spelling and records the top-level property read.
    fn resolve(&mut self, path: &mut Path, scope: Option<Scope<'_>>) -> Option<Target> {
        let segments = &mut path.segments;
        if let Some(scope) = scope {
            return self.resolve_in_lambda(segments, path.span, scope);
        }
        let first = &mut segments[0];
        let Some((prop, name)) = catalog::user_property(&first.name) else {
            self.unknown(first, catalog::USER.iter().map(|p| p.name), "user property");
            return None;
        };
        let name = name.into_owned();
        first.name = name.clone();
        self.properties.insert(name);
        if prop.filter.not_in_advanced {
            self.not_in_advanced.get_or_insert(path.span);
        }
        if prop.name == "customSecurityAttributes" {
            self.custom_security_attributes(path.span);
            return None;
        }
        let count = segments.len() == 2 && segments[1].name == "$count";
        match (prop.kind, segments.get(1)) {
            (Kind::StringCollection | Kind::ObjectCollection(_), Some(_)) if count => {
                Some(Target::Count(prop.filter))
            }
            (Kind::StringCollection | Kind::ObjectCollection(_), _) => {
                let example = match catalog::parts(prop.kind) {
                    Some(parts) => format!("{0}/any(x:x/{1} eq …)", prop.name, parts[0].name),
                    None => format!("{}/any(x:x eq '…')", prop.name),
                };
                self.errors.push(
                    FilterError::new(path.span, format!("`{}` is a collection", prop.name))
                        .with_hint(format!("test its elements with a lambda: {example}")),
                );
                None
            }
            (Kind::Object(parts), None) if !parts.iter().any(|p| p.filter.is_filterable()) => {
                self.errors.push(
                    FilterError::new(
                        path.span,
                        format!("Graph cannot filter users by `{}`", prop.name),
                    )
                    .with_hint("filter on another property, or leave this condition out"),
                );
                None
            }
            (Kind::Object(parts), None) => {
                self.errors.push(
                    FilterError::new(path.span, format!("`{}` has parts; name one", prop.name))
                        .with_hint(format!("e.g. {}/{}", prop.name, parts[0].name)),
                );
                None
            }
            (Kind::Object(parts), Some(_)) => {
                let target = self.part(prop, parts, &mut segments[1..]);
                if let Some(Target::Property { filter, .. }) = &target
                    && filter.alone
                {
                    self.alone.get_or_insert((path.span, prop.name.to_string()));
                }
                target
            }
            (kind, None) => Some(Target::Property {
                kind,
                filter: prop.filter,
            }),
            (_, Some(seg)) => {
                let message = if seg.name == "$count" {
                    format!(
                        "`{}` is not a collection; only collections can be counted",
                        prop.name
                    )
                } else {
                    format!("`{}` has no parts", prop.name)
                };
                self.errors.push(
                    FilterError::new(seg.span, message)
                        .with_hint(format!("compare `{}` itself", prop.name)),
                );
                None
            }
        }
    }

    /// `parent/part` where `parent` is a complex property.
    fn part(
        &mut self,
        parent: &'static Property,
        parts: &'static [Property],
        rest: &mut [Ident],
    ) -> Option<Target> {
        let seg = &mut rest[0];
        let Some(part) = catalog::lookup(parts, &seg.name) else {
            self.unknown(
                seg,
                parts.iter().map(|p| p.name),
                &format!("part of `{}`", parent.name),
            );
            return None;
        };
        seg.name = part.name.to_string();
        if rest.len() > 1 {
            self.errors.push(FilterError::new(
                rest[1].span,
                format!("`{}/{}` has no parts", parent.name, part.name),
            ));
            return None;
        }
        Some(Target::Property {
            kind: part.kind,
            filter: part.filter,
        })
    }

    fn resolve_in_lambda(
        &mut self,
        segments: &mut [Ident],
        span: Span,
        scope: Scope<'_>,
    ) -> Option<Target> {
        let coll = scope.collection;
        if segments[0].name != scope.var {
            self.errors.push(
                FilterError::new(
                    segments[0].span,
                    format!(
                        "inside the lambda, refer to each element of `{}` as `{}`",
                        coll.name, scope.var
                    ),
                )
                .with_hint("Graph does not allow other properties inside a lambda".to_string()),
            );
            return None;
        }
        match (coll.kind, segments.len()) {
            (Kind::StringCollection, 1) => Some(Target::Property {
                kind: Kind::String,
                filter: coll.filter,
            }),
            (Kind::ObjectCollection(parts), 1) => {
                self.errors.push(
                    FilterError::new(
                        span,
                        format!("elements of `{}` are objects; name a part", coll.name),
                    )
                    .with_hint(format!("e.g. {}/{}", scope.var, parts[0].name)),
                );
                None
            }
            (Kind::ObjectCollection(parts), _) => self.part(coll, parts, &mut segments[1..]),
            _ => {
                self.errors.push(FilterError::new(
                    segments[1].span,
                    format!("elements of `{}` are text and have no parts", coll.name),
                ));
                None
            }
        }
    }

    fn lambda(
        &mut self,
        path: &mut Path,
        kind: LambdaKind,
        var: &Ident,
        body: &mut Expr,
        span: Span,
        scope: Option<Scope<'_>>,
    ) {
        if scope.is_some() {
            self.errors.push(FilterError::new(
                span,
                "Graph does not support a lambda inside a lambda",
            ));
            return;
        }
        if kind == LambdaKind::All {
            self.errors.push(
                FilterError::new(span, "Graph does not support `all` on user properties")
                    .with_hint("use `any`; for \"none match\" write not (coll/any(x:…))"),
            );
        }
        let first = &mut path.segments[0];
        let Some((prop, name)) = catalog::user_property(&first.name) else {
            self.unknown(first, catalog::USER.iter().map(|p| p.name), "user property");
            return;
        };
        first.name = name.into_owned();
        if prop.name == "customSecurityAttributes" {
            self.custom_security_attributes(path.span);
            return;
        }
        let top = prop;
        // A collection inside an object, e.g. authorizationInfo/certificateUserIds.
        let two = path.segments.len() == 2;
        let nested = match (prop.kind, path.segments.get_mut(1)) {
            (Kind::Object(parts), Some(seg)) if two => {
                catalog::lookup(parts, &seg.name).inspect(|p| seg.name = p.name.to_string())
            }
            _ => None,
        };
        let prop = nested.unwrap_or(prop);
        if (path.segments.len() > 1 && nested.is_none()) || !prop.kind.is_collection() {
            self.errors.push(
                FilterError::new(path.span, format!("`{path}` is not a collection")).with_hint(
                    "any(…) works on collections such as otherMails or assignedLicenses",
                ),
            );
            return;
        }
        self.properties.insert(top.name.to_string());
        if prop.filter.not_in_advanced {
            self.not_in_advanced.get_or_insert(path.span);
        }
        let inner = Scope {
            var: &var.name,
            collection: prop,
        };
        self.expr(body, Some(inner));
        if prop.name == "identities" && !is_identity_lookup(body, &var.name) {
            self.errors.push(
                FilterError::new(span, "Graph filters `identities` only by issuer and issuerAssignedId together")
                    .with_hint(format!(
                        "e.g. identities/any({0}:{0}/issuer eq 'contoso.com' and {0}/issuerAssignedId eq 'j.smith@contoso.com')",
                        var.name
                    )),
            );
        }
    }

    /// Graph filters `customSecurityAttributes/<set>/<attribute>` in advanced mode, but the
    /// sets and attributes are defined per tenant and their values typed per attribute: the
    /// catalogue cannot check them, so userload refuses the property.
    fn custom_security_attributes(&mut self, span: Span) {
        self.errors.push(
            FilterError::new(
                span,
                "userload cannot filter on `customSecurityAttributes`: its attribute sets are \
                 defined per tenant and cannot be checked here",
            )
            .with_hint(
                "put the users in a group and set `group` in [source], or filter on a \
                 directory extension (extension_<appId>_<name>)",
            ),
        );
    }

    fn unknown<'a>(&mut self, ident: &Ident, known: impl IntoIterator<Item = &'a str>, what: &str) {
        let hint = match nearest(&ident.name, known) {
            Some(name) => format!("did you mean `{name}`?"),
            None if what == "user property" => {
                "see the property list in docs/filters.md; directory extensions are written \
                 extension_<appId>_<name>"
                    .to_string()
            }
            None => String::new(),
        };
        let error = FilterError::new(ident.span, format!("`{}` is not a {what}", ident.name));
        self.errors.push(if hint.is_empty() {
            error
        } else {
            error.with_hint(hint)
        });
    }

    /// Reports a literal whose type does not fit the property.
    fn check_type(&mut self, operand: Operand, name: &str, value: &Literal) {
        let problem = match (operand, &value.value) {
            (Operand::Count, Value::Int(_)) => None,
            (Operand::Count, _) => Some((
                "a count".to_string(),
                "compare it with a whole number, e.g. eq 0".to_string(),
            )),
            (Operand::Kind(Kind::Extension), _) => None,
            (Operand::Kind(Kind::String), Value::String(_)) => None,
            (Operand::Kind(Kind::String), v) => Some((
                "text".to_string(),
                format!("quote the value: '{}'", v.to_string().replace('\'', "''")),
            )),
            (Operand::Kind(Kind::Bool), Value::Bool(_)) => None,
            (Operand::Kind(Kind::Bool), Value::String(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                Some((
                    "a boolean".to_string(),
                    format!("write {} without quotes", s.to_ascii_lowercase()),
                ))
            }
            (Operand::Kind(Kind::Bool), _) => Some((
                "a boolean".to_string(),
                "compare it with true or false".to_string(),
            )),
            (Operand::Kind(Kind::DateTime), Value::DateTime(_)) => None,
            (Operand::Kind(Kind::DateTime), Value::String(s)) => Some((
                "a date-time".to_string(),
                format!("write date-times without quotes: {s}"),
            )),
            (Operand::Kind(Kind::DateTime), _) => Some((
                "a date-time".to_string(),
                "compare it with a date-time such as 2024-01-01T00:00:00Z".to_string(),
            )),
            (Operand::Kind(Kind::Guid), Value::Guid(_)) => None,
            (Operand::Kind(Kind::Guid), Value::String(s)) => Some((
                "a GUID".to_string(),
                format!("write GUIDs without quotes: {s}"),
            )),
            (Operand::Kind(Kind::Guid), _) => Some((
                "a GUID".to_string(),
                "compare it with a GUID such as 184efa21-98c3-4e5d-95ab-d07053a96e67".to_string(),
            )),
            (Operand::Kind(kind), _) => {
                Some((kind.describe().to_string(), "use a lambda".to_string()))
            }
        };
        if let Some((is, hint)) = problem {
            self.errors.push(
                FilterError::new(
                    value.span,
                    format!("`{name}` is {is}, but this is {}", value.value.describe()),
                )
                .with_hint(hint),
            );
        }
    }
}

/// `v/issuer eq '…' and v/issuerAssignedId eq '…'`, in either order: the only identities
/// filter Graph accepts.
fn is_identity_lookup(body: &Expr, var: &str) -> bool {
    let Expr::And(items) = body else {
        return false;
    };
    let mut names: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            Expr::Compare {
                path,
                op: CmpOp::Eq,
                value,
            } if path.segments.len() == 2
                && path.segments[0].name == var
                && matches!(value.value, Value::String(_)) =>
            {
                Some(path.segments[1].name.as_str())
            }
            _ => None,
        })
        .collect();
    names.sort_unstable();
    items.len() == 2 && names == ["issuer", "issuerAssignedId"]
}

/// What a condition compares against.
#[derive(Clone, Copy)]
enum Operand {
    Kind(Kind),
    Count,
}

fn describe_ops(filter: Filtering) -> String {
    let mut words = Vec::new();
    for (op, label) in [
        (Ops::EQ, "eq, in"),
        (Ops::STARTS_WITH, "startsWith"),
        (Ops::ENDS_WITH, "endsWith"),
        (Ops::RANGE, "ge, le"),
        (Ops::EQ_NULL, "eq null"),
    ] {
        match filter.allows(op) {
            Some(false) => words.push(label.to_string()),
            Some(true) => words.push(format!("{label} (advanced)")),
            None => {}
        }
    }
    words.join(", ")
}
