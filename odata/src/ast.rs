//! The syntax tree of an OData `$filter` over Graph users.
//!
//! `and` and `or` hold all their operands in one list rather than nesting pairs, so a chain of
//! ten thousand clauses is one flat node: walking, rendering and dropping it needs no deep
//! recursion. Explicit parentheses survive as nesting (`(a or b) or c` keeps its inner `or`),
//! which keeps `parse(render(e)) == e` exact.

/// A byte range in the filter text. Spans never take part in equality: two trees are equal
/// when they say the same thing, wherever it was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset just past the last byte (exclusive).
    pub end: usize,
}

impl Span {
    /// The bytes from `start` up to, not including, `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// From the start of `self` to the end of `other`, covering everything between.
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

/// A filter expression, or one condition inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Two or more operands.
    Or(Vec<Expr>),
    /// Two or more operands.
    And(Vec<Expr>),
    /// `not …`; the span runs from the `not` keyword to the end of its operand.
    Not(Box<Expr>, Span),
    /// `path op value`, e.g. `department eq 'Sales'`; its span is derived from path and value.
    Compare {
        /// The property on the left (OData puts the property first).
        path: Path,
        /// `eq`, `ne`, `gt`, `ge`, `lt` or `le`.
        op: CmpOp,
        /// The literal on the right.
        value: Literal,
    },
    /// `path in (v1, v2, …)`: equal to any of the values, a list of `eq`s to Graph.
    In {
        /// The property tested.
        path: Path,
        /// The listed values in order; never empty (the parser refuses `in ()`).
        values: Vec<Literal>,
        /// From the property to the closing `)`.
        span: Span,
    },
    /// `startsWith(path,'text')` or `endsWith(path,'text')`.
    Call {
        /// `startsWith` or `endsWith`.
        func: Func,
        /// The first argument: the property whose text is tested.
        path: Path,
        /// The second argument: the prefix or suffix (validation requires a string).
        arg: Literal,
        /// From the function name to the closing `)`.
        span: Span,
    },
    /// `path/any(var: body)` (or `all`) over a collection property.
    Lambda {
        /// The collection, e.g. `assignedLicenses`.
        path: Path,
        /// `any`, or `all`, which validation refuses.
        kind: LambdaKind,
        /// The name bound to each element, e.g. `x` in `any(x: x/skuId eq …)`.
        var: Ident,
        /// The condition each element is tested with; its paths start with `var`.
        body: Box<Expr>,
        /// From the collection path to the closing `)`.
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
    /// The name's text; validation rewrites property names in place to Graph's spelling.
    pub name: String,
    /// Where the name was written.
    pub span: Span,
}

/// A property path such as `onPremisesExtensionAttributes/extensionAttribute1`, or inside a
/// lambda `x/skuId` (the first segment is then the lambda variable). `$count` may end a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The names between the `/`s, in order; never empty.
    pub segments: Vec<Ident>,
    /// From the start of the first segment to the end of the last.
    pub span: Span,
}

impl Path {
    /// Whether the path ends in `/$count`, i.e. counts a collection's elements.
    pub fn is_count(&self) -> bool {
        self.segments.last().is_some_and(|s| s.name == "$count")
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`.
    Eq,
    /// `ne`; Graph evaluates it only in advanced mode.
    Ne,
    /// `gt`; Graph accepts it only on `/$count`.
    Gt,
    /// `ge`.
    Ge,
    /// `lt`; Graph accepts it only on `/$count`.
    Lt,
    /// `le`.
    Le,
}

impl CmpOp {
    /// Every operator, for the parser to try in turn.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
    ];

    /// The operator as OData writes it, in lower case.
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

/// A string function Graph supports on user properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `startsWith(path,'prefix')`.
    StartsWith,
    /// `endsWith(path,'suffix')`; Graph evaluates it only in advanced mode.
    EndsWith,
}

impl Func {
    /// The function's name in OData's canonical spelling, e.g. `startsWith`.
    pub fn name(self) -> &'static str {
        match self {
            Func::StartsWith => "startsWith",
            Func::EndsWith => "endsWith",
        }
    }
}

/// The lambda operator after a collection path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaKind {
    /// `any`: true when some element satisfies the body.
    Any,
    /// Parsed so that it can be refused with a useful message: Graph supports no `all` on users.
    All,
}

/// A literal value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// The value as parsed: strings unquoted, GUIDs in lower case.
    pub value: Value,
    /// Where the literal was written, quotes included.
    pub span: Span,
}

/// A literal as OData writes it. GUIDs are kept in lower case; date-times as written (they
/// are checked to be valid ISO 8601 with a time zone when parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A single-quoted string, with each `''` already turned into `'`.
    String(String),
    /// A whole number; decimals are refused by the parser.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An unquoted GUID, in lower case.
    Guid(String),
    /// An unquoted ISO 8601 date-time with a time zone, as written.
    DateTime(String),
}

impl Value {
    /// How this kind of value is named in messages, e.g. "a quoted string".
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
