//! Properties of the filter parser that examples cannot pin down: rendering any syntax tree and
//! parsing it back gives the same tree, no input makes compilation panic, and hostile sizes
//! (long chains, deep nesting) end in a result or an error, never a stack overflow.

use odata::ast::{CmpOp, Expr, Func, Ident, LambdaKind, Literal, Path, Span, Value};
use odata::{Filter, MAX_DEPTH, parse};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// No `proptest-regressions` files: a failure prints its minimal case instead.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn ident(name: String) -> Ident {
    Ident {
        name,
        span: Span::default(),
    }
}

fn literal(value: Value) -> Literal {
    Literal {
        value,
        span: Span::default(),
    }
}

/// Operator words, which cannot start a condition (no Graph property is named like one).
const KEYWORDS: [&str; 10] = ["not", "and", "or", "eq", "ne", "gt", "ge", "lt", "le", "in"];

/// An identifier the grammar accepts as a path segment or lambda variable.
fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_filter("operator words are reserved", |n| {
        !KEYWORDS.iter().any(|kw| n.eq_ignore_ascii_case(kw))
    })
}

/// `a`, `a/b`, `a/b/c`, optionally ending in `/$count`.
fn path() -> impl Strategy<Value = Path> {
    (prop::collection::vec(name(), 1..=3), any::<bool>()).prop_map(|(names, count)| {
        let mut segments: Vec<Ident> = names.into_iter().map(ident).collect();
        if count {
            segments.push(ident("$count".into()));
        }
        Path {
            segments,
            span: Span::default(),
        }
    })
}

fn collection_path() -> impl Strategy<Value = Path> {
    prop::collection::vec(name(), 1..=2).prop_map(|names| Path {
        segments: names.into_iter().map(ident).collect(),
        span: Span::default(),
    })
}

fn guid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

/// RFC 3339 with upper-case `T` and `Z`, optional fractional seconds, `Z` or an offset.
fn date_time() -> impl Strategy<Value = String> {
    let date = (1900u32..=2099, 1u32..=12, 1u32..=28);
    let time = (0u32..24, 0u32..60, 0u32..60, prop::option::of("[0-9]{1,9}"));
    let zone = prop_oneof![
        Just("Z".to_string()),
        (prop::bool::ANY, 0u32..24, 0u32..60)
            .prop_map(|(east, h, m)| { format!("{}{h:02}:{m:02}", if east { '+' } else { '-' }) }),
    ];
    (date, time, zone).prop_map(|((y, mo, d), (h, mi, s, frac), zone)| {
        let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zone}")
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "\\PC{0,16}".prop_map(Value::String),
        "[^']{0,3}'{1,3}[^']{0,3}".prop_map(Value::String),
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        guid().prop_map(Value::Guid),
        date_time().prop_map(Value::DateTime),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(CmpOp::ALL.to_vec())
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (path(), op(), value()).prop_map(|(path, op, value)| Expr::Compare {
            path,
            op,
            value: literal(value),
        }),
        (path(), prop::collection::vec(value(), 1..=4)).prop_map(|(path, values)| Expr::In {
            path,
            values: values.into_iter().map(literal).collect(),
            span: Span::default(),
        }),
        (
            prop::sample::select(vec![Func::StartsWith, Func::EndsWith]),
            path(),
            value()
        )
            .prop_map(|(func, path, arg)| Expr::Call {
                func,
                path,
                arg: literal(arg),
                span: Span::default(),
            }),
    ]
}

/// Any syntax tree: `and`/`or` with 2–4 operands, `not`, lambdas, about four levels deep.
fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..=4).prop_map(Expr::Or),
            prop::collection::vec(inner.clone(), 2..=4).prop_map(Expr::And),
            inner
                .clone()
                .prop_map(|e| Expr::Not(Box::new(e), Span::default())),
            (
                collection_path(),
                prop::sample::select(vec![LambdaKind::Any, LambdaKind::All]),
                name(),
                inner
            )
                .prop_map(|(path, kind, var, body)| Expr::Lambda {
                    path,
                    kind,
                    var: ident(var),
                    body: Box::new(body),
                    span: Span::default(),
                }),
        ]
    })
}

/// Words and symbols of the filter language, right and wrong, for inputs that get further into
/// the parser than random text does.
const TOKENS: &[&str] = &[
    "department",
    "DisplayName",
    "accountEnabled",
    "createdDateTime",
    "otherMails",
    "assignedLicenses",
    "identities",
    "employeeOrgData",
    "manager",
    "onPremisesExtensionAttributes/extensionAttribute1",
    "extension_0123456789abcdef0123456789abcdef_code",
    "foo",
    "x",
    "x/skuId",
    "i/issuer",
    "/",
    "/$count",
    "/any(",
    "/all(",
    "any",
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "in",
    "and",
    "or",
    "not",
    "AND",
    "Not",
    "=",
    "==",
    "!=",
    "<>",
    "&&",
    "||",
    "(",
    ")",
    ",",
    ":",
    "x:",
    "startsWith(",
    "endsWith(",
    "contains(",
    "lower(",
    "'IT'",
    "'O''Brien'",
    "''",
    "'",
    "'unterminated",
    "\"IT\"",
    "\"",
    "\"é",
    "184efa21-98c3-4e5d-95ab-d07053a96e67",
    "184efa21-98c3-4e5d-95ab-d07053a96e6",
    "2024-01-01T00:00:00Z",
    "2024-01-01",
    "2024-02-30T00:00:00.5+01:00",
    "2024-01-01t00:00:00z",
    "0",
    "-5",
    "1.5",
    "99999999999999999999",
    "true",
    "false",
    "null",
    "Default",
    "#",
    "# note\n",
    "é",
    "€€€",
    "渡辺",
    "🎉",
    "\u{a0}",
];

fn token_soup() -> impl Strategy<Value = String> {
    let separator = prop::sample::select(vec!["", " ", " ", "  ", "\n", "\t"]);
    prop::collection::vec((prop::sample::select(TOKENS), separator), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(token, separator)| [token, separator])
            .collect()
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn rendered_trees_parse_back_to_themselves(expr in expr()) {
        let text = expr.to_string();
        prop_assert_eq!(parse(&text), Ok(expr), "text: {}", text);
    }

    #[test]
    fn compile_never_panics_on_any_text(text in "\\PC*") {
        let _ = Filter::compile(&text);
    }

    #[test]
    fn compile_never_panics_on_token_soup(text in token_soup()) {
        let _ = Filter::compile(&text);
    }

    #[test]
    fn errors_point_inside_the_text(text in token_soup()) {
        if let Err(errors) = Filter::compile(&text) {
            for e in errors {
                let span = e.span;
                prop_assert!(span.start <= span.end && span.end <= text.len(), "{:?} in {}", span, text.len());
                prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end), "{:?} splits a character", span);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn compile_never_panics_on_a_bad_value(value in "[\"']?[^\\s\\p{C}]{0,40}") {
        let _ = Filter::compile(&format!("department eq {value}"));
    }
}

/// Inputs that once crashed the parser; kept as plain cases so a regression fails every run.
#[test]
fn compile_survives_known_crashers() {
    let mut panicked = Vec::new();
    for text in [
        "department eq é€€€€€€€€€€€€",
        "department eq \"é",
        "department eq \"渡辺",
        "€€€€€€€€€€€€€€€€€€€€",
        "¡᭎𐳺ꟲ𑵠ՙ𐒠ඳ",
    ] {
        if std::panic::catch_unwind(|| Filter::compile(text)).is_err() {
            panicked.push(text);
        }
    }
    assert!(panicked.is_empty(), "compile panicked on {panicked:?}");
}

#[test]
fn ten_thousand_or_clauses_parse_and_render_back() {
    let text = (0..10_000)
        .map(|i| format!("department eq 'd{i}'"))
        .collect::<Vec<_>>()
        .join(" or ");
    let expr = parse(&text).expect("a long flat chain is fine");
    assert!(matches!(&expr, Expr::Or(items) if items.len() == 10_000));
    assert_eq!(expr.to_string(), text);
    let filter = Filter::compile(&text).expect("valid").expect("a filter");
    assert_eq!(filter.canonical(), text);
}

#[test]
fn ten_thousand_and_clauses_in_one_line_compile() {
    let text = vec!["accountEnabled eq true"; 10_000].join(" and ");
    let filter = Filter::compile(&text).expect("valid").expect("a filter");
    assert_eq!(filter.canonical(), text);
}

fn assert_too_deep(text: &str) {
    let error = parse(text).expect_err("too deep");
    assert!(
        error.message.contains("nested"),
        "message should mention nesting: {}",
        error.message
    );
    let errors = Filter::compile(text).expect_err("too deep");
    assert!(
        errors[0].message.contains("nested"),
        "{}",
        errors[0].message
    );
}

#[test]
fn ten_thousand_nested_parentheses_are_an_error() {
    let n = 10_000;
    assert_too_deep(&format!(
        "{}department eq 'a'{}",
        "(".repeat(n),
        ")".repeat(n)
    ));
}

#[test]
fn ten_thousand_nots_are_an_error() {
    assert_too_deep(&format!(
        "{}startsWith(displayName,'a')",
        "not ".repeat(10_000)
    ));
    assert_too_deep(&format!(
        "{}department eq 'a'{}",
        "not (".repeat(10_000),
        ")".repeat(10_000)
    ));
}

#[test]
fn ten_thousand_nested_lambdas_are_an_error() {
    let n = 10_000;
    assert_too_deep(&format!(
        "{}m eq 'a'{}",
        "otherMails/any(m:".repeat(n),
        ")".repeat(n)
    ));
}

#[test]
fn max_depth_is_accepted_and_one_more_is_refused() {
    let nested = |n: usize| format!("{}department eq 'a'{}", "(".repeat(n), ")".repeat(n));
    let expr = parse(&nested(MAX_DEPTH)).expect("MAX_DEPTH parentheses are allowed");
    assert_eq!(expr.to_string(), "department eq 'a'");
    assert!(Filter::compile(&nested(MAX_DEPTH)).is_ok());
    assert_too_deep(&nested(MAX_DEPTH + 1));

    let nots = |n: usize| format!("{}startsWith(displayName,'a')", "not ".repeat(n));
    assert!(
        parse(&nots(MAX_DEPTH)).is_ok(),
        "MAX_DEPTH nots are allowed"
    );
    assert!(Filter::compile(&nots(MAX_DEPTH)).is_ok());
    assert_too_deep(&nots(MAX_DEPTH + 1));
}
