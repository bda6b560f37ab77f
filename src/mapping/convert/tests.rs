//! The converters one by one, as a mapping file's `convert` chain builds and applies them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::*;
use crate::mapping::path;

fn conv(name: &str, args: &[Json]) -> Converter {
    let lookups = HashMap::from([(
        "dept".to_string(),
        Arc::new(Lookup::new([("IT Operations".to_string(), json!(3))])),
    )]);
    let mut regex = |p: &str| compile_regex(p);
    let mut graph_path = |i: usize, p: &str| {
        path::split(p)
            .and_then(|s| path::resolve(&s))
            .map_err(|e| ArgError::new(Some(i), e.message))
    };
    let mut env = Env {
        lookups: &lookups,
        regex: &mut regex,
        graph_path: &mut graph_path,
    };
    build(name, args, &mut env).unwrap().unwrap()
}

fn run(name: &str, args: &[Json], value: Json) -> Option<Json> {
    conv(name, args)
        .apply(value, &json!({"mail": "a@b.c"}))
        .unwrap()
}

#[test]
fn text_converters() {
    assert_eq!(run("lower", &[], json!("ÀB")), Some(json!("àb")));
    assert_eq!(run("upper", &[], json!("straße")), Some(json!("STRASSE")));
    assert_eq!(run("trim", &[], json!("  x ")), Some(json!("x")));
    assert_eq!(
        run("title", &[], json!("o'brien-SMITH jr")),
        Some(json!("O'Brien-Smith Jr"))
    );
    assert_eq!(
        run("capitalize", &[], json!("hELLO wORLD")),
        Some(json!("Hello world"))
    );
    assert_eq!(
        run("strip_diacritics", &[], json!("José Łódź Ærø Straße")),
        Some(json!("Jose Lodz AEro Strasse"))
    );
    assert_eq!(
        run("truncate", &[json!(3)], json!("Zoë-Ann")),
        Some(json!("Zoë"))
    );
    assert_eq!(
        run("substring", &[json!(1), json!(2)], json!("abcd")),
        Some(json!("bc"))
    );
    assert_eq!(
        run("replace", &[json!("-"), json!("")], json!("a-b-c")),
        Some(json!("abc"))
    );
    assert_eq!(
        run("lower", &[], json!(["A", null, "B"])),
        Some(json!(["a", "b"]))
    );
    assert_eq!(run("upper", &[], json!(true)), Some(json!("TRUE")));
}

#[test]
fn email_parts_and_guests() {
    let guest = json!("ann_contoso.com#EXT#@fabrikam.onmicrosoft.com");
    assert_eq!(
        run("email_local", &[], guest.clone()),
        Some(json!("ann_contoso.com#EXT#"))
    );
    assert_eq!(
        run("email_domain", &[], guest),
        Some(json!("fabrikam.onmicrosoft.com"))
    );
    assert_eq!(run("email_domain", &[], json!("nobody")), None);
}

#[test]
fn strip_diacritics_leaves_other_scripts_as_they_were() {
    assert_eq!(
        text::strip_diacritics("José Łódź Straße"),
        "Jose Lodz Strasse"
    );
    assert_eq!(text::strip_diacritics("한국 이름"), "한국 이름");
    assert_eq!(text::strip_diacritics("हिन्दी"), "हिन्दी");
    assert_eq!(text::strip_diacritics("Ἀθῆναι"), "Αθηναι");
}

#[test]
fn regex_replace_uses_capture_groups() {
    let args = [json!("^(?<first>\\w+)\\.(\\w+)@.*$"), json!("$2, ${first}")];
    assert_eq!(
        run("regex_replace", &args, json!("ann.lee@x.com")),
        Some(json!("lee, ann"))
    );
}

#[test]
fn split_join_first_non_empty() {
    assert_eq!(
        run("split", &[json!(" ")], json!("a b")),
        Some(json!(["a", "b"]))
    );
    assert_eq!(
        run("split", &[json!(" "), json!(-1)], json!("a b c")),
        Some(json!("c"))
    );
    assert_eq!(run("split", &[json!(" "), json!(5)], json!("a b")), None);
    assert_eq!(run("split", &[json!(" "), json!(-5)], json!("a b")), None);
    assert_eq!(
        run("join", &[json!(", ")], json!(["a", "", "b"])),
        Some(json!("a, b"))
    );
    assert_eq!(
        run("first_non_empty", &[json!("mail")], json!(" ")),
        Some(json!("a@b.c"))
    );
    assert_eq!(
        run("first_non_empty", &[json!("mail")], json!("x")),
        Some(json!("x"))
    );
}

#[test]
fn dates_lookups_and_words() {
    let hire = json!("2024-03-05T08:00:00Z");
    assert_eq!(
        run("date", &[json!("%d/%m/%Y")], hire.clone()),
        Some(json!("05/03/2024"))
    );
    assert_eq!(run("date", &[json!("%s")], hire), Some(json!("1709625600")));
    assert_eq!(
        run(
            "date",
            &[json!("%Y-%m-%d"), json!("%m/%d/%Y")],
            json!("03/05/2024")
        ),
        Some(json!("2024-03-05"))
    );
    assert!(
        conv("date", &[json!("%Y")])
            .apply(json!("soon"), &Json::Null)
            .is_err()
    );
    assert_eq!(
        run("lookup", &[json!("dept")], json!("it operations")),
        Some(json!(3))
    );
    assert_eq!(run("lookup", &[json!("dept")], json!("Sales")), None);
    assert_eq!(
        run("lookup", &[json!("dept"), json!(1)], json!("Sales")),
        Some(json!(1))
    );
    assert_eq!(
        run("bool_words", &[], json!(false)),
        Some(json!("Inactive"))
    );
    assert_eq!(
        run("bool_words", &[json!("Yes"), json!("No")], json!(true)),
        Some(json!("Yes"))
    );
    assert!(
        conv("bool_words", &[])
            .apply(json!("maybe"), &Json::Null)
            .is_err()
    );
}

#[test]
fn hostile_regexes_are_refused_not_compiled() {
    assert!(
        compile_regex("(")
            .unwrap_err()
            .to_string()
            .starts_with("invalid regex")
    );
    let huge = "\\w{1000}".repeat(50);
    assert!(
        compile_regex(&huge)
            .unwrap_err()
            .to_string()
            .contains("too large")
    );
}

#[test]
fn bad_date_formats_are_refused() {
    assert!(check_date_format("%Y-%m-%d").is_ok());
    assert!(check_date_format("%Q").is_err());
    assert!(check_date_format("").is_err());
}

#[test]
fn first_of_takes_the_first_pair_the_list_holds_in_the_pairs_order() {
    let pairs = [
        json!(["IT-Admins", "admin"]),
        json!(["Contractors", "restricted"]),
    ];
    // Both groups: the first pair wins, whatever the list's order.
    assert_eq!(
        run("first_of", &pairs, json!(["contractors", "it-admins"])),
        Some(json!("admin"))
    );
    assert_eq!(
        run("first_of", &pairs, json!(["Contractors"])),
        Some(json!("restricted"))
    );
    assert_eq!(run("first_of", &pairs, json!([])), None);
    assert_eq!(
        run("first_of", &pairs, json!("IT-Admins")),
        Some(json!("admin"))
    );
    let mut lookups = HashMap::new();
    let mut regex = |p: &str| compile_regex(p);
    let mut graph_path =
        |_: usize, _: &str| -> Result<GraphPath, ArgError> { Err(ArgError::reported(None)) };
    let mut env = Env {
        lookups: &mut lookups,
        regex: &mut regex,
        graph_path: &mut graph_path,
    };
    let error = build("first_of", &[json!("IT-Admins")], &mut env).unwrap_err();
    assert_eq!(error.arg, Some(0));
    assert!(
        error.message.contains("[name, value] pairs"),
        "{}",
        error.message
    );
    let error = build("first_of", &[pairs[0].clone(), json!([1, "x"])], &mut env).unwrap_err();
    assert_eq!(error.arg, Some(1));
}

#[test]
fn has_asks_whether_a_list_holds_a_name() {
    assert_eq!(
        run(
            "has",
            &[json!("SPE_E3")],
            json!(["ENTERPRISEPACK", "spe_e3"])
        ),
        Some(json!(true))
    );
    assert_eq!(
        run("has", &[json!("SPE_E3")], json!(["ENTERPRISEPACK"])),
        Some(json!(false))
    );
    assert_eq!(
        run("has", &[json!("SPE_E3")], json!([])),
        Some(json!(false))
    );
    // Chained: a flag as words.
    let flag = run("has", &[json!("SPE_E3")], json!(["SPE_E3"])).unwrap();
    assert_eq!(
        run("bool_words", &[json!("E3"), json!("none")], flag),
        Some(json!("E3"))
    );
}
