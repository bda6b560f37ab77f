//! The syntax tree of an OData `$filter` over Graph users.
//!
//! `and` and `or` hold all their operands in one list rather than nesting pairs, so a chain of
//! ten thousand clauses is one flat node: walking, rendering and dropping it needs no deep
//! recursion. Explicit parentheses survive as nesting (`(a or b) or c` keeps its inner `or`),
//! which keeps `parse(render(e)) == e` exact.

use std::ops::Range;

/// A byte range in the filter text. Spans never take part in equality: two trees are equal
/// when they say the same thing, wherever it was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start, other.end)
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Span {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Two or more operands.
    Or(Vec<Expr>),
    /// Two or more operands.
    And(Vec<Expr>),
    Not(Box<Expr>, Span),
    Compare {
        path: Path,
        op: CmpOp,
        value: Literal,
    },
    In {
        path: Path,
        values: Vec<Literal>,
        span: Span,
    },
    Call {
        func: Func,
        path: Path,
        arg: Literal,
        span: Span,
    },
    Lambda {
        /// The collection, e.g. `assignedLicenses`.
        path: Path,
        kind: LambdaKind,
        var: Ident,
        body: Box<Expr>,
        span: Span,
    },
}

impl Expr {
    /// Where the expression was written, from its first to its last character.
    pub fn span(&self) -> Span {
        match self {
            Expr::Or(items) | Expr::And(items) => match (items.first(), items.last()) {
                (Some(first), Some(last)) => first.span().to(last.span()),
                _ => Span::default(),
            },
            Expr::Not(_, span)
            | Expr::In { span, .. }
            | Expr::Call { span, .. }
            | Expr::Lambda { span, .. } => *span,
            Expr::Compare { path, value, .. } => path.span.to(value.span),
        }
    }
}

/// A name as written, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A property path such as `onPremisesExtensionAttributes/extensionAttribute1`, or inside a
/// lambda `x/skuId` (the first segment is then the lambda variable). `$count` may end a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segments: Vec<Ident>,
    pub span: Span,
}

impl Path {
    pub fn is_count(&self) -> bool {
        self.segments.last().is_some_and(|s| s.name == "$count")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    StartsWith,
    EndsWith,
}

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::StartsWith => "startsWith",
            Func::EndsWith => "endsWith",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaKind {
    Any,
    /// Parsed so that it can be refused with a useful message: Graph supports no `all` on users.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub value: Value,
    pub span: Span,
}

/// A literal as OData writes it. GUIDs are kept in lower case; date-times as written (they
/// are checked to be valid ISO 8601 with a time zone when parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    String(String),
    Int(i64),
    Bool(bool),
    Null,
    Guid(String),
    DateTime(String),
}

impl Value {
    pub fn describe(&self) -> &'static str {
        match self {
            Value::String(_) => "a quoted string",
            Value::Int(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Guid(_) => "a GUID",
            Value::DateTime(_) => "a date-time",
        }
    }
}
