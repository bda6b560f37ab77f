//! Mapping files with mistakes, each with the message (or hint) fragment and the line and
//! column an admin should see. All mismatches are collected before failing, so one regression
//! does not hide the others.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use userload::diag::SourceText;
use userload::mapping::{self, Options};

/// Every case is appended to this valid start (lines 1–5), unless it starts with `version`.
const START: &str = "version = 1\ntarget = \"scim\"\nmatch = \"userName\"\n[fields.userName]\nsource = \"userPrincipalName\"\n";

/// `(what, mapping text, line, column, fragment of message or hint)`.
const CASES: &[(&str, &str, usize, usize, &str)] = &[
    // Converters.
    (
        "unknown converter",
        "[fields.a]\nsource = \"mail\"\nconvert = [\"lowr\"]\n",
        8,
        12,
        "unknown converter `lowr`",
    ),
    (
        "unknown converter lists the known ones",
        "[fields.a]\nsource = \"mail\"\nconvert = [\"lowr\"]\n",
        8,
        12,
        "did you mean `lower`? The converters are: lower, upper",
    ),
    (
        "bad regex",
        "[fields.a]\nsource = \"mail\"\nconvert = [{ regex_replace = [\"(\", \"x\"] }]\n",
        8,
        31,
        "invalid regex",
    ),
    (
        "regex too large",
        "[fields.a]\nsource = \"mail\"\nconvert = [{ regex_replace = [\"\\\\w{1000}\\\\w{1000}\\\\w{1000}\\\\w{1000}\", \"x\"] }]\n",
        8,
        31,
        "the regex is too large",
    ),
    (
        "unknown lookup table",
        "[fields.a]\nsource = \"department\"\nconvert = [{ lookup = \"depts\" }]\n",
        8,
        23,
        "there is no [lookup.depts] table",
    ),
    (
        "bad date format",
        "[fields.a]\nsource = \"employeeHireDate\"\nconvert = [{ date = \"%Q\" }]\n",
        8,
        21,
        "not a valid date format",
    ),
    (
        "converter argument of the wrong type",
        "[fields.a]\nsource = \"mail\"\nconvert = [{ truncate = \"ten\" }]\n",
        8,
        25,
        "must be a whole number",
    ),
    (
        "converter argument missing",
        "[fields.a]\nsource = \"mail\"\nconvert = [\"split\"]\n",
        8,
        12,
        "`split` needs 1 argument(s): separator",
    ),
    (
        "converter argument too many",
        "[fields.a]\nsource = \"mail\"\nconvert = [{ lower = [1] }]\n",
        8,
        23,
        "`lower` takes no arguments",
    ),
    (
        "every mistake of a field",
        "[fields.a]\nsource = \"hireDate\"\nconvert = [{ date = { format = \"%Y\" } }]\n",
        7,
        11,
        "`hireDate` is not a Graph user property",
    ),
    (
        "named argument that does not exist",
        "[fields.a]\nsource = \"employeeHireDate\"\nconvert = [{ date = { format = \"%Y\" } }]\n",
        8,
        23,
        "`date` has no argument `format`",
    ),
    (
        "first_non_empty with a path that is not a property",
        "[fields.a]\nsource = \"mail\"\nconvert = [{ first_non_empty = [\"otherMails\", \"mial\"] }]\n",
        8,
        48,
        "did you mean `mail`?",
    ),
    (
        "a converter that is neither a name nor a table",
        "[fields.a]\nsource = \"mail\"\nconvert = [3]\n",
        8,
        12,
        "a converter is a name",
    ),
    // Templates.
    (
        "template syntax error",
        "[fields.a]\ntemplate = \"Hi {{givenName\"\n",
        7,
        26,
        "template syntax error",
    ),
    (
        "template variable that is not a property",
        "[fields.a]\ntemplate = \"{{givenNam}} {{surname}}\"\n",
        7,
        15,
        "did you mean `givenName`?",
    ),
    (
        "template variable deep in a helper",
        "[fields.a]\ntemplate = \"{{lower (trim manager.emial)}}\"\n",
        7,
        27,
        "is not a Graph user property (of the manager)",
    ),
    (
        "unknown template helper",
        "[fields.a]\ntemplate = \"{{lowercase mail}}\"\n",
        7,
        15,
        "unknown template helper `lowercase`",
    ),
    (
        "template partial",
        "[fields.a]\ntemplate = \"{{> header}}\"\n",
        7,
        13,
        "partials and decorators are not supported",
    ),
    (
        "template nested too deep",
        "[fields.a]\ntemplate = \"{{lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower (lower mail))))))))))))))))))))}}\"\n",
        7,
        133,
        "more than 16 deep",
    ),
    (
        "template @index outside each",
        "[fields.a]\ntemplate = \"{{@index}}\"\n",
        7,
        15,
        "only has a value inside",
    ),
    (
        "template regex not written out",
        "[fields.a]\ntemplate = \"{{regex_replace mail department \\\"x\\\"}}\"\n",
        7,
        12,
        "needs its pattern written in the template",
    ),
    (
        "template regex that does not compile",
        "[fields.a]\ntemplate = '{{regex_replace mail \"[a\" \"\"}}'\n",
        7,
        35,
        "invalid regex",
    ),
    (
        "template converter with a bad literal argument",
        "[fields.a]\ntemplate = '{{truncate mail \"x\"}}'\n",
        7,
        15,
        "must be a whole number",
    ),
    (
        "template setting the config does not define",
        "[fields.a]\ntemplate = '{{setting \"region\"}}'\n",
        7,
        24,
        "setting `region` is not defined",
    ),
    // Graph paths.
    (
        "source that is not a property",
        "[fields.a]\nsource = \"givenNme\"\n",
        7,
        11,
        "did you mean `givenName`?",
    ),
    (
        "source with a misspelt part",
        "[fields.a]\nsource = \"employeeOrgData.costCentre\"\n",
        7,
        27,
        "did you mean `costCenter`?",
    ),
    (
        "source of the manager",
        "[fields.a]\nsource = \"manager.emial\"\n",
        7,
        19,
        "is not a Graph user property (of the manager)",
    ),
    (
        "source display name",
        "[fields.a]\nsource = \"Street\"\n",
        7,
        11,
        "write `streetAddress`",
    ),
    (
        "source list with one bad path",
        "[fields.a]\nsource = [\"mail\", \"otherMail\"]\n",
        7,
        20,
        "did you mean `otherMails`?",
    ),
    (
        "index on a single value",
        "[fields.a]\nsource = \"mail[0]\"\n",
        7,
        15,
        "not a list",
    ),
    (
        "part of a list without an index",
        "[fields.a]\nsource = \"businessPhones.first\"\n",
        7,
        26,
        "pick an element first",
    ),
    // Fields.
    (
        "required field with no source",
        "[fields.a]\nrequired = true\n",
        6,
        9,
        "required field `a` has no source",
    ),
    (
        "field with no source",
        "[fields.a]\nconvert = [\"trim\"]\n",
        6,
        9,
        "field `a` has no source",
    ),
    (
        "two sources",
        "[fields.a]\nsource = \"mail\"\nvalue = \"x\"\n",
        8,
        9,
        "has both `source` and `value`",
    ),
    (
        "duplicate target field",
        "[fields.USERNAME]\nsource = \"mail\"\n",
        6,
        9,
        "duplicate target field `USERNAME`",
    ),
    (
        "duplicate value-filter field",
        "[fields.'emails[type eq \"work\"].value']\nsource = \"mail\"\n[fields.\"emails[type eq 'work'].value\"]\nsource = \"otherMails[0]\"\n",
        8,
        9,
        "duplicate target field",
    ),
    (
        "overlapping target fields",
        "[fields.name]\nsource = \"displayName\"\n[fields.\"name.givenName\"]\nsource = \"givenName\"\n",
        8,
        9,
        "overlaps `name`",
    ),
    (
        "undefined setting",
        "[fields.role]\nsetting = \"default_rol\"\n",
        7,
        11,
        "did you mean `default_role`?",
    ),
    (
        "unknown key in a field",
        "[fields.a]\nsorce = \"mail\"\n",
        7,
        1,
        "did you mean `source`?",
    ),
    (
        "bad on",
        "[fields.a]\nsource = \"mail\"\non = \"update\"\n",
        8,
        6,
        "`on` must be \"always\" or \"create\"",
    ),
    (
        "bad write",
        "[fields.a]\nsource = \"mail\"\nwrite = \"sometimes\"\n",
        8,
        9,
        "`write` must be \"always\", \"on_create\" or \"if_empty\"",
    ),
    (
        "on and write together",
        "[fields.a]\nsource = \"mail\"\non = \"create\"\nwrite = \"on_create\"\n",
        9,
        9,
        "`on` and `write` say the same thing",
    ),
    (
        "bad on_drift",
        "[fields.a]\nsource = \"mail\"\non_drift = \"ignore\"\n",
        8,
        12,
        "`on_drift` must be \"overwrite\" or \"keep\"",
    ),
    (
        "required is not a boolean",
        "[fields.a]\nsource = \"mail\"\nrequired = \"yes\"\n",
        8,
        12,
        "expected true or false",
    ),
    (
        "bad target path",
        "[fields.\"emails[type = work].value\"]\nsource = \"mail\"\n",
        6,
        16,
        "expected a value filter",
    ),
    (
        "primary on a single-valued field",
        "[fields.title]\nsource = \"jobTitle\"\nprimary = true\n",
        8,
        11,
        "`primary` only applies",
    ),
    (
        "lookup entry that is a table",
        "[fields.a]\nsource = \"department\"\nconvert = [{ lookup = \"d\" }]\n[lookup.d]\nIT = { id = 1 }\n",
        10,
        6,
        "must be a single value",
    ),
    // The file as a whole.
    (
        "missing version",
        "target = \"scim\"\nmatch = \"userName\"\n[fields.userName]\nsource = \"upn\"\n",
        1,
        1,
        "does not say its format version",
    ),
    (
        "unsupported version",
        "version = 2\ntarget = \"scim\"\nmatch = \"userName\"\n[fields.userName]\nsource = \"userPrincipalName\"\n",
        1,
        11,
        "version 2 is not supported",
    ),
    (
        "unknown target",
        "version = 1\ntarget = \"scimm\"\nmatch = \"userName\"\n[fields.userName]\nsource = \"userPrincipalName\"\n",
        2,
        10,
        "did you mean `scim`?",
    ),
    (
        "match key that is not a field",
        "version = 1\ntarget = \"scim\"\nmatch = \"username\"\n[fields.userName]\nsource = \"userPrincipalName\"\n",
        3,
        9,
        "did you mean `userName`?",
    ),
    (
        "active field that is not mapped",
        "version = 1\ntarget = \"scim\"\nmatch = \"userName\"\nactive = { field = \"enabled\" }\n[fields.userName]\nsource = \"userPrincipalName\"\n",
        4,
        20,
        "is not a mapped field",
    ),
    (
        "unknown top-level key",
        "version = 1\ntarget = \"scim\"\nmatchh = \"userName\"\n[fields.userName]\nsource = \"userPrincipalName\"\n",
        3,
        1,
        "did you mean `match`?",
    ),
    (
        "malformed TOML",
        "[fields.a\nsource = \"mail\"\n",
        6,
        10,
        "",
    ),
    (
        "test expecting a record and a skip",
        "[[test]]\nname = \"t\"\nuser = { id = \"1\" }\nexpect = {}\nexpect_skip = \"x\"\n",
        10,
        1,
        "either a record or a skip",
    ),
    (
        "test without a user",
        "[[test]]\nname = \"t\"\nexpect_skip = \"x\"\n",
        6,
        1,
        "has no user",
    ),
    (
        "test with a bad sync time",
        "[[test]]\nname = \"t\"\nsync_time = \"yesterday\"\nuser = { id = \"1\" }\nexpect_skip = \"x\"\n",
        8,
        13,
        "not an RFC 3339 date-time",
    ),
    // Found in review.
    (
        "an unquoted dotted field name",
        "[fields.name.givenName]\nsource = \"givenName\"\n",
        6,
        14,
        "quote the field's path: [fields.\"name.givenName\"]",
    ),
    (
        "blocks opened with white-space control still count",
        "[fields.a]\ntemplate = \"{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}{{~#if id}}x{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}{{~/if}}\"\n",
        7,
        189,
        "nests blocks or sub-expressions more than 16 deep",
    ),
    (
        "an else-if chain nests as deep as it is long",
        "[fields.a]\ntemplate = \"{{#if id}}{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{else if id}}x{{/if}}\"\n",
        7,
        13,
        "nests blocks more than 16 deep",
    ),
    (
        "reading outside an each block",
        "[fields.a]\ntemplate = \"{{#each businessPhones}}{{../mail}}{{/each}}\"\n",
        7,
        39,
        "`../mail` reads from outside the block",
    ),
    (
        "an attribute and a value filter under one name",
        "[fields.\"emails.value\"]\nsource = \"mail\"\n[fields.'emails[type eq \"work\"].value']\nsource = \"mail\"\n",
        8,
        9,
        "makes the same attribute an object where a value filter makes it a list",
    ),
    (
        "the sync time as an alternative",
        "[fields.a]\nsource = \"mail\"\nconvert = [{ first_non_empty = [\"connectorSyncTime\"] }]\n",
        8,
        33,
        "`connectorSyncTime` is always set",
    ),
];

fn settings() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("default_role".to_string(), json!(25)),
        ("default_position".to_string(), json!("Employee")),
    ])
}

#[test]
fn every_mistake_is_reported_where_it_is() {
    let settings = settings();
    let mut failures = Vec::new();
    for (what, text, line, col, fragment) in CASES {
        let text = if text.starts_with("version") || text.starts_with("target") {
            text.to_string()
        } else {
            format!("{START}{text}")
        };
        let source = SourceText::new("m.toml", text);
        let options = Options {
            settings: Some(&settings),
            ..Options::default()
        };
        let problems = match mapping::compile_source(&source, options) {
            Ok(_) => {
                failures.push(format!("{what}: compiled without problems"));
                continue;
            }
            Err(problems) => problems,
        };
        let found = problems.iter().any(|p| {
            let said = format!("{} | {}", p.message, p.hint.clone().unwrap_or_default());
            p.line_col() == (*line, *col) && said.contains(fragment) && p.is_error()
        });
        if !found {
            let got: Vec<String> = problems
                .iter()
                .map(|p| format!("{} | {}", p.one_line(), p.hint.clone().unwrap_or_default()))
                .collect();
            failures.push(format!(
                "{what}: expected {line}:{col} {fragment:?}, got {got:#?}"
            ));
        }
    }
    assert!(CASES.len() >= 25);
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn all_problems_of_a_file_are_reported_together() {
    let text = format!(
        "{START}[fields.a]\nsource = \"givenNme\"\n[fields.b]\ntemplate = \"{{{{surnam}}}}\"\n[fields.c]\nsource = \"mail\"\nconvert = [\"lowr\"]\n"
    );
    let source = SourceText::new("m.toml", text);
    let problems = mapping::compile_source(&source, Options::default()).unwrap_err();
    let lines: Vec<usize> = problems.iter().map(|p| p.line_col().0).collect();
    assert_eq!(lines, [7, 9, 12], "{problems:#?}");
}
