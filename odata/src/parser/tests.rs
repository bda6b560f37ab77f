//! The parser's own cases; the filter corpus in the integration tests covers the rest.

use super::*;
use crate::ast::Value;

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
