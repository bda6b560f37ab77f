//! Mappings end to end: the shipped mappings pass their own tests, `$select` is derived from
//! what a mapping reads, an old Oomnitza config keeps its mapping lines, the `mapping`
//! commands work on the real binary, and no input — user or mapping — makes the engine panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use userload::config;
use userload::diag::SourceText;
use userload::mapping::{self, Context, Expectation, Mapping, On, Options};

use crate::util::{outcome, repo, userload, write};

fn shipped(name: &str) -> Mapping {
    let text = mapping::shipped(name).unwrap();
    let source = SourceText::new(format!("mappings/{name}.toml"), text);
    mapping::compile_source(&source, Options::default())
        .unwrap_or_else(|p| panic!("{name}: {}", userload::diag::render(&p, false)))
}

#[test]
fn every_shipped_mapping_passes_its_tests() {
    for (name, text) in mapping::SHIPPED {
        // The built-in copy is the file in the repository.
        let file = std::fs::read_to_string(repo().join(format!("mappings/{name}.toml"))).unwrap();
        assert_eq!(&file, text, "{name}");
        let m = shipped(name);
        let outcomes = m.run_tests();
        assert!(
            outcomes.len() >= 5,
            "{name} has only {} tests",
            outcomes.len()
        );
        let failures: Vec<String> = outcomes
            .iter()
            .filter_map(|o| Some(format!("{}: {}", o.name, o.failure.as_ref()?)))
            .collect();
        assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    }
}

#[test]
fn shipped_tests_cover_the_awkward_users() {
    for (name, _) in mapping::SHIPPED {
        let m = shipped(name);
        let users: Vec<&Value> = m.tests().iter().map(|t| &t.user).collect();
        let text = |u: &Value| u.to_string();
        assert!(
            users.iter().any(|u| !text(u).is_ascii()),
            "{name}: unicode names"
        );
        assert!(
            users.iter().any(|u| u["accountEnabled"] == false),
            "{name}: a disabled user"
        );
        assert!(
            users.iter().any(|u| text(u).contains("#EXT#")),
            "{name}: a guest"
        );
        assert!(
            users.iter().any(|u| u.get("mail").is_none()),
            "{name}: missing fields"
        );
        assert!(
            m.tests()
                .iter()
                .any(|t| matches!(t.expect, Expectation::Skip(_))),
            "{name}: a skipped user"
        );
    }
}

#[test]
fn select_names_what_the_mapping_reads() {
    let scim = shipped("scim");
    assert_eq!(
        scim.select(),
        [
            "accountEnabled",
            "businessPhones",
            "city",
            "companyName",
            "country",
            "department",
            "displayName",
            "employeeId",
            "employeeOrgData",
            "faxNumber",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "postalCode",
            "preferredLanguage",
            "state",
            "streetAddress",
            "surname",
            "userPrincipalName",
            "userType",
        ]
    );
    assert_eq!(scim.manager_select(), Some(vec!["id".to_string()]));
    assert_eq!(scim.match_key(), "userName");
    assert_eq!(scim.active_field().unwrap().inactive, json!(false));
    assert_eq!(scim.field("externalId").unwrap().on(), On::Create);
    assert!(scim.field("userName").unwrap().is_required());

    let snipeit = shipped("snipeit");
    // The manager is written as the manager's Snipe-IT id: only the manager's id is read.
    assert_eq!(snipeit.manager_select(), Some(vec!["id".to_string()]));
    // The template reads only the sync time: nothing more to select.
    assert!(!snipeit.select().iter().any(|p| p == "connectorSyncTime"));
    assert!(snipeit.select().contains(&"id".to_string()));
}

#[test]
fn templates_and_first_non_empty_count_towards_select() {
    let text = "version = 1\ntarget = \"rest\"\nmatch = \"login\"\n[fields.login]\nsource = \"mail\"\nconvert = [{ first_non_empty = [\"otherMails[0]\", \"userPrincipalName\"] }]\n[fields.label]\ntemplate = \"{{upper surname}}, {{givenName}} ({{manager.displayName}}) {{EMPLOYEEORGDATA.division}}\"\n";
    let m = mapping::compile_source(&SourceText::new("m.toml", text), Options::default()).unwrap();
    assert_eq!(
        m.select(),
        [
            "accountEnabled",
            "employeeOrgData",
            "givenName",
            "id",
            "mail",
            "otherMails",
            "surname",
            "userPrincipalName"
        ]
    );
    assert_eq!(m.manager_select(), Some(vec!["displayName".to_string()]));
    let settings = BTreeMap::new();
    let ctx = Context {
        settings: &settings,
        sync_time: "2024-01-01T00:00:00Z",
    };
    let user = json!({"userPrincipalName": "a@x.com", "mail": null, "otherMails": [], "surname": "Øberg", "givenName": "Åsa", "manager": {"displayName": "Bo"}});
    let record = m.map(&user, &ctx).unwrap();
    assert_eq!(record["login"], "a@x.com");
    // A property the user lacks renders as nothing, even in strict mode.
    assert_eq!(record["label"], "ØBERG, Åsa (Bo) ");
}

#[test]
fn directory_extensions_are_read_and_selected() {
    let ext = "extension_0123456789abcdef0123456789abcdef_costCode";
    let text = "version = 1\ntarget = \"rest\"\nmatch = \"login\"\n[fields.login]\nsource = \"userPrincipalName\"\n[fields.cost]\nsource = \"EXTENSION_0123456789ABCDEF0123456789ABCDEF_costCode\"\n";
    let m = mapping::compile_source(&SourceText::new("m.toml", text), Options::default()).unwrap();
    assert!(m.select().contains(&ext.to_string()), "{:?}", m.select());
    let settings = BTreeMap::new();
    let ctx = Context {
        settings: &settings,
        sync_time: "2024-01-01T00:00:00Z",
    };
    let record = m
        .map(&json!({"userPrincipalName": "a@x.com", ext: "CC-9"}), &ctx)
        .unwrap();
    assert_eq!(record["cost"], "CC-9");
}

fn config_in(dir: &std::path::Path, name: &str, text: &str) -> config::Config {
    let path = write(dir, name, text);
    config::load(&path).unwrap_or_else(|e| panic!("{e}")).config
}

const SOURCE: &str = "[source]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = env:S\n";

#[test]
fn an_old_oomnitza_config_keeps_its_mapping_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "token.txt", "t\n");
    let config = config_in(
        dir.path(),
        "config.ini",
        "[oomnitza]\nurl = https://example.oomnitza.com\napi_token = file:token.txt\n\n[azureusers]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = env:S\ndefault_role = 25\ndefault_position = Employee\nsync_field = EMAIL\nmapping.FIRST_NAME = {\"source\": \"Given Name\", \"converter\": \"upper\"}\nmapping.ENABLED = {\"source\": \"Is Account Enabled\"}\nmapping.SYNCED = {\"source\": \"Connector Sync Time\"}\nmapping.SITE = {\"hardcoded\": \"HQ\"}\nmapping.LOGIN = {\"source\": \"userPrincipalName\", \"converter\": \"split_email\"}\n",
    );
    let m =
        mapping::load(&config).unwrap_or_else(|p| panic!("{}", userload::diag::render(&p, false)));
    assert_eq!(m.match_key(), "EMAIL");
    assert!(m.select().contains(&"accountEnabled".to_string()));
    let ctx = Context {
        settings: &config.settings,
        sync_time: "2024-05-01T06:00:00Z",
    };
    let user = json!({"userPrincipalName": "jose@contoso.com", "givenName": "José", "mail": "jose@contoso.com", "accountEnabled": true});
    let record = m.map(&user, &ctx).unwrap();
    assert_eq!(record["FIRST_NAME"], "JOSÉ");
    assert_eq!(record["ENABLED"], true);
    assert_eq!(record["SYNCED"], "2024-05-01T06:00:00Z");
    assert_eq!(record["SITE"], "HQ");
    assert_eq!(record["LOGIN"], "jose");
    assert_eq!(record["POSITION"], "Employee");
    assert_eq!(record["PERMISSIONS_ID"], 25);
    // The sync field is the match key, so it is required.
    let skip = m
        .map(&json!({"userPrincipalName": "x@y.z"}), &ctx)
        .unwrap_err();
    assert_eq!(skip.field, "EMAIL");
}

#[test]
fn an_old_oomnitza_configs_mapping_mistakes_are_placed_on_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "token.txt", "t\n");
    let lines = [
        (
            "mapping.A = {\"source\": \"Given Nmae\"}",
            "\"Given Nmae\"",
            "`Given Nmae` is neither a Graph user property nor an Oomnitza field name",
        ),
        (
            "mapping.B = {\"converter\": \"spilt_email\"}",
            "\"spilt_email\"",
            "unknown converter `spilt_email`",
        ),
        (
            "mapping.C = {\"setting\": 5}",
            "5",
            "`setting` must be text",
        ),
        (
            "mapping.D = {\"sorce\": \"mail\"}",
            "\"sorce\"",
            "unknown key `sorce` in the mapping of `D`",
        ),
    ];
    let head = "[oomnitza]\nurl = https://example.oomnitza.com\napi_token = file:token.txt\n\n[azureusers]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = env:S\nsync_field = EMAIL\n";
    let text = lines
        .iter()
        .fold(head.to_string(), |text, (line, ..)| text + line + "\n");
    let config = config_in(dir.path(), "config.ini", &text);
    let problems = mapping::load(&config).unwrap_err();
    for (i, (line, needle, message)) in lines.iter().enumerate() {
        let found = problems
            .iter()
            .find(|p| p.message == *message)
            .unwrap_or_else(|| panic!("no {message:?} in {problems:?}"));
        let column = line.find(needle).unwrap() + 1;
        assert_eq!(found.line_col(), (10 + i, column), "{message}");
    }
}

#[test]
fn the_legacy_fixture_validates() {
    let (code, stdout, stderr) = outcome(&userload(
        &repo(),
        &["validate", "--config", "tests/fixtures/oomnitza-legacy.ini"],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("mappings/oomnitza.toml (built in)"),
        "{stdout}"
    );
    assert!(stdout.contains("users matched on USER"), "{stdout}");
}

#[test]
fn a_rest_target_must_name_its_mapping() {
    let dir = tempfile::tempdir().unwrap();
    // The Snipe-IT preset comes with its mapping.
    let preset = format!(
        "{SOURCE}[target]\ntype = rest\npreset = snipeit\nurl = https://assets.example.com/api\n"
    );
    let config = config_in(dir.path(), "c.ini", &preset);
    assert_eq!(mapping::load(&config).unwrap().match_key(), "username");
    // An API of the admin's own does not.
    write(dir.path(), "api.toml", "");
    let text = format!(
        "{SOURCE}[target]\ntype = rest\nurl = https://assets.example.com/api\ntemplates = api.toml\n"
    );
    let config = config_in(dir.path(), "c.ini", &text);
    let problems = mapping::load(&config).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .message
            .contains("a `rest` target has no shipped mapping")
    );
    assert!(
        problems[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("mappings/snipeit.toml")
    );
    assert_eq!(problems[0].line_col(), (6, 1));

    let snipeit = repo().join("mappings/snipeit.toml");
    let text = format!("{text}[sync]\nmapping = {}\n", snipeit.display());
    let config = config_in(dir.path(), "c.ini", &text);
    assert_eq!(mapping::load(&config).unwrap().match_key(), "username");

    let text = text.replace("type = rest", "type = scim");
    let config = config_in(dir.path(), "c.ini", &text);
    let problems = mapping::load(&config).unwrap_err();
    assert!(
        problems[0]
            .message
            .contains("builds snipeit records, but the config's target is of type `scim`")
    );
}

#[test]
fn validate_reports_mapping_problems_with_a_caret_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.toml",
        "version = 1\ntarget = \"scim\"\nmatch = \"userName\"\n[fields.userName]\nsource = \"userPrincipalNam\"\n[fields.title]\nsetting = \"default_titel\"\n",
    );
    let text = format!(
        "{SOURCE}[target]\ntype = scim\nurl = https://a.example.com\n[sync]\nmapping = m.toml\n[settings]\ndefault_title = Staff\n"
    );
    write(dir.path(), "c.ini", &text);
    let (code, _, stderr) = outcome(&userload(dir.path(), &["validate", "--config", "c.ini"]));
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "m.toml:5:11]",
        "`userPrincipalNam` is not a Graph user property",
        "did you mean `userPrincipalName`?",
        "m.toml:7:11]",
        "setting `default_titel` is not defined in the config",
        "did you mean `default_title`?",
        "2 error(s) in the mapping; nothing was run",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn mapping_test_runs_the_cases_of_a_file() {
    let (code, stdout, _) = outcome(&userload(
        &repo(),
        &["mapping", "test", "mappings/scim.toml"],
    ));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("mappings/scim.toml: 6 tests passed"),
        "{stdout}"
    );
    // A shipped mapping by name, as built into the binary.
    let (code, stdout, _) = outcome(&userload(&repo(), &["mapping", "test", "oomnitza"]));
    assert_eq!(code, 0, "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let text = "version = 1\ntarget = \"rest\"\nmatch = \"login\"\n[fields.login]\nsource = \"userPrincipalName\"\nconvert = [\"lower\"]\n\n[[test]]\nname = \"lower case\"\nuser = { userPrincipalName = \"Ann@X.com\" }\nexpect = { login = \"ann@x.com\" }\n\n[[test]]\nname = \"wrong on purpose\"\nuser = { userPrincipalName = \"Bob@X.com\" }\nexpect = { login = \"Bob@X.com\" }\n";
    write(dir.path(), "m.toml", text);
    let (code, stdout, _) = outcome(&userload(dir.path(), &["mapping", "test", "m.toml"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("ok    lower case"), "{stdout}");
    assert!(stdout.contains("FAIL  wrong on purpose"), "{stdout}");
    assert!(
        stdout.contains("`login`: expected \"Bob@X.com\", got \"bob@x.com\""),
        "{stdout}"
    );

    write(
        dir.path(),
        "bad.toml",
        "version = 1\ntarget = \"rest\"\nmatch = \"login\"\n[fields.login]\nsource = \"upn\"\n",
    );
    let (code, _, stderr) = outcome(&userload(dir.path(), &["mapping", "test", "bad.toml"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.toml:5:11]"), "{stderr}");
}

#[test]
fn mapping_preview_shows_records_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "users.jsonl",
        "{\"id\":\"1\",\"userPrincipalName\":\"ann@contoso.com\",\"givenName\":\"Ann\",\"accountEnabled\":true,\"emails\":null}\n\n{\"id\":\"2\",\"displayName\":\"No UPN\"}\n",
    );
    let config = repo().join("config.ini.example");
    let config = config.to_str().unwrap();
    let (code, stdout, stderr) = outcome(&userload(
        dir.path(),
        &[
            "mapping",
            "preview",
            "--config",
            config,
            "--users",
            "users.jsonl",
        ],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("ann@contoso.com\n  userName "), "{stdout}");
    assert!(stdout.contains("name.givenName"), "{stdout}");
    assert!(
        stdout.contains("skipped: field `userName`: required"),
        "{stdout}"
    );
    assert!(stderr.contains("2 users: 1 mapped, 1 skipped"), "{stderr}");

    let (_, stdout, _) = outcome(&userload(
        dir.path(),
        &[
            "mapping",
            "preview",
            "--config",
            config,
            "--users",
            "users.jsonl",
            "--json",
        ],
    ));
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["record"]["name"]["givenName"], "Ann");
    assert_eq!(lines[0]["record"]["externalId"], "1");
    assert_eq!(lines[1]["skip"]["field"], "userName");
}

/// A problem a test expects: its line, its column if it matters, a phrase of its message.
type Expected = (usize, Option<usize>, &'static str);

#[test]
fn hostile_mapping_files_are_refused_without_panicking() {
    const HEAD: &str = "version = 1\ntarget = \"rest\"\nmatch = \"a\"\n[fields.a]\n";
    let deep_blocks = format!("{}x{}", "{{#if mail}}".repeat(5000), "{{/if}}".repeat(5000));
    let deep_toml = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    // Each file and what it must get, in order: (line, column, the message's key phrase).
    // The column is `None` where the problem is about something missing from the file, which
    // is shown on its first line.
    let cases: [(String, &[Expected]); 6] = [
        // Too long to parse at all: refused before its nesting is even looked at.
        (
            format!("{HEAD}template = \"{deep_blocks}\"\n"),
            &[(5, Some(12), "the template is longer than 16384 bytes")],
        ),
        (
            format!("{HEAD}value = {deep_toml}\n"),
            &[(5, Some(89), "max recursion depth")],
        ),
        (
            format!("{HEAD}source = \"mail\"\nconvert = [{{ regex_replace = [\"(a{{1000}}){{1000}}\", \"\"] }}]\n"),
            &[(6, Some(31), "the regex is too large")],
        ),
        (
            format!("{HEAD}template = \"{}\"\n", "x".repeat(100_000)),
            &[(5, Some(12), "the template is longer than 16384 bytes")],
        ),
        (
            "\u{feff}version = 1\n\0\0[[[".to_string(),
            &[
                (1, None, "does not say what it maps to"),
                (1, None, "does not say which field identifies a user"),
                (2, Some(1), "invalid unquoted key"),
                (2, Some(3), "key with no value"),
            ],
        ),
        (
            "version = 1\ntarget = \"rest\"\nmatch = \"ü\"\n[fields.\"ü.ß[x eq \\\"ö\\\"].ç\"]\nsource = \"mail\"\n[fields.\"\"]\nvalue = 1\n".to_string(),
            &[
                (3, Some(9), "the match key `ü` is not a mapped field"),
                (6, Some(9), "a field name is missing here"),
            ],
        ),
    ];
    for (i, (text, expected)) in cases.into_iter().enumerate() {
        let result = mapping::compile_source(&SourceText::new("m.toml", text), Options::default());
        let Err(problems) = result else {
            panic!("hostile file {i} compiled");
        };
        // Drawing the problems must not panic either.
        let drawn = userload::diag::render(&problems, false);
        let got: Vec<(usize, usize, &str)> = problems
            .iter()
            .map(|p| {
                let (line, column) = p.line_col();
                (line, column, p.message.as_str())
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "file {i}: {got:?}\n{drawn}");
        for (got, (line, column, phrase)) in got.iter().zip(expected.iter()) {
            assert!(got.2.contains(phrase), "file {i}: {got:?} lacks {phrase:?}");
            assert_eq!(got.0, *line, "file {i}: line of {got:?}");
            if let Some(column) = column {
                assert_eq!(got.1, *column, "file {i}: column of {got:?}");
            }
        }
    }
}

/// Any JSON value, nested a little, with text from all over Unicode.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        "[a-z]{1,6}@[a-z]{1,6}\\.com".prop_map(Value::from),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const PROPERTIES: &[&str] = &[
    "id",
    "userPrincipalName",
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "mobilePhone",
    "businessPhones",
    "department",
    "jobTitle",
    "employeeId",
    "employeeOrgData",
    "manager",
    "userType",
    "companyName",
    "city",
    "country",
    "faxNumber",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_users_never_panic_the_shipped_mappings(
        values in prop::collection::vec(any_json(), PROPERTIES.len()),
        present in prop::collection::vec(any::<bool>(), PROPERTIES.len()),
    ) {
        let user: serde_json::Map<String, Value> = PROPERTIES
            .iter()
            .zip(values)
            .zip(present)
            .filter(|(_, present)| *present)
            .map(|((name, value), _)| (name.to_string(), value))
            .collect();
        let user = Value::Object(user);
        let settings = BTreeMap::from([("default_role".to_string(), json!(25))]);
        let ctx = Context { settings: &settings, sync_time: "2024-01-01T00:00:00Z" };
        for (name, _) in mapping::SHIPPED {
            let m = shipped(name);
            if let Ok(record) = m.map(&user, &ctx) {
                prop_assert!(record.get(m.match_key()).is_some());
            }
        }
    }

    #[test]
    fn random_templates_and_converters_never_panic(
        template in "[{}a-zA-Z# /().\"@^!>~-]{0,40}",
        converter in "[a-z_]{0,16}",
        arg in ".{0,8}",
    ) {
        let text = format!(
            "version = 1\ntarget = \"rest\"\nmatch = \"a\"\n[fields.a]\ntemplate = {}\n[fields.b]\nsource = \"mail\"\nconvert = [{{ {} = {} }}]\n",
            Value::from(template),
            if converter.is_empty() { "x".to_string() } else { converter },
            Value::from(arg),
        );
        if let Ok(m) = mapping::compile_source(&SourceText::new("m.toml", text), Options::default()) {
            let settings = BTreeMap::new();
            let ctx = Context { settings: &settings, sync_time: "2024-01-01T00:00:00Z" };
            let _ = m.map(&json!({"mail": "a@b.c", "givenName": "Ann"}), &ctx);
        }
    }
}

#[test]
fn the_mapping_docs_list_every_converter_and_oomnitza_name() {
    let docs = std::fs::read_to_string(repo().join("docs/mapping.md")).unwrap();
    for name in mapping::convert::names() {
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/mapping.md does not list the converter {name}"
        );
    }
    for (display, graph) in odata::catalog::DISPLAY_NAMES {
        assert!(
            docs.contains(&format!("| {display} | `{graph}`")),
            "docs/mapping.md does not list the Oomnitza name {display}"
        );
    }
}

#[test]
fn the_documented_example_mapping_compiles_and_passes_its_test() {
    let docs = std::fs::read_to_string(repo().join("docs/mapping.md")).unwrap();
    let format = &docs[docs.find("### Format").unwrap()..];
    let start = format.find("```toml\n").unwrap() + "```toml\n".len();
    let text = &format[start..start + format[start..].find("```").unwrap()];
    let m = mapping::compile_source(
        &SourceText::new("docs/mapping.md", text),
        Options::default(),
    )
    .unwrap_or_else(|p| panic!("{}", userload::diag::render(&p, false)));
    let outcomes = m.run_tests();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].failure.is_none(), "{:?}", outcomes[0].failure);
}

#[test]
fn match_takes_an_ordered_list_of_mapped_fields() {
    let fields = "[fields.login]\nsource = \"userPrincipalName\"\n[fields.mail]\nsource = \"mail\"\n[fields.num]\nsource = \"employeeId\"\n";
    let compile = |matching: &str| {
        let text = format!("version = 1\ntarget = \"rest\"\n{matching}\n{fields}");
        mapping::compile_source(&SourceText::new("m.toml", text), Options::default())
    };
    let m = compile("match = [\"num\", \"mail\", \"login\"]").unwrap();
    assert_eq!(m.match_key(), "num");
    assert_eq!(m.match_keys(), ["num", "mail", "login"]);
    // Of a list no key is required: a user without the first may be matched by a later one.
    assert!(m.fields().iter().all(|f| !f.is_required()));
    // One key, as a name or a list of one, is required as before.
    for one in ["match = \"num\"", "match = [\"num\"]"] {
        let m = compile(one).unwrap();
        assert_eq!(m.match_keys(), ["num"]);
        assert!(m.field("num").unwrap().is_required(), "{one}");
    }
    // Each mistake on its line and column, with what to do.
    let cases: [(&str, &[Expected]); 5] = [
        ("match = []", &[(3, Some(9), "`match` names no field")]),
        (
            "match = [\"num\", \"mail\", \"num\"]",
            &[(3, Some(25), "`match` names `num` twice")],
        ),
        (
            "match = [\"num\", 7, \"login\"]",
            &[(
                3,
                Some(17),
                "expected a target field's name, in quotes, found an integer",
            )],
        ),
        (
            "match = [\"num\", \"mial\", \"logn\"]",
            &[
                (3, Some(17), "the match key `mial` is not a mapped field"),
                (3, Some(25), "the match key `logn` is not a mapped field"),
            ],
        ),
        (
            "match = { num = 1 }",
            &[(
                3,
                Some(9),
                "expected a target field, or a list of them tried in order",
            )],
        ),
    ];
    for (matching, expected) in cases {
        let problems = compile(matching).unwrap_err();
        let got: Vec<(usize, usize, &str)> = problems
            .iter()
            .map(|p| {
                let (line, column) = p.line_col();
                (line, column, p.message.as_str())
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{matching}: {got:?}");
        for (got, (line, column, phrase)) in got.iter().zip(expected.iter()) {
            assert!(
                got.2.contains(phrase),
                "{matching}: {got:?} lacks {phrase:?}"
            );
            assert_eq!(
                (got.0, Some(got.1)),
                (*line, *column),
                "{matching}: {got:?}"
            );
        }
    }
    let drawn = userload::diag::render(&compile("match = [\"num\", \"mial\"]").unwrap_err(), false);
    assert!(drawn.contains("did you mean `mail`?"), "{drawn}");
}

#[test]
fn validate_names_every_match_key_and_places_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = |matching: &str| {
        format!(
            "version = 1\ntarget = \"scim\"\n{matching}\n[fields.userName]\nsource = \"userPrincipalName\"\n[fields.\"emails[type eq \\\"work\\\"].value\"]\nsource = \"mail\"\n"
        )
    };
    let text = format!(
        "{SOURCE}[target]\ntype = scim\nurl = https://a.example.com\n[sync]\nmapping = m.toml\n"
    );
    write(dir.path(), "c.ini", &text);
    write(
        dir.path(),
        "m.toml",
        &mapping("match = [\"emails[type eq \\\"work\\\"].value\", \"userName\"]"),
    );
    let (code, stdout, stderr) = outcome(&userload(dir.path(), &["validate", "--config", "c.ini"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("users matched on emails[type eq \"work\"].value, then userName"),
        "{stdout}"
    );
    write(
        dir.path(),
        "m.toml",
        &mapping("match = [\"userName\", \"userName\"]"),
    );
    let (code, _, stderr) = outcome(&userload(dir.path(), &["validate", "--config", "c.ini"]));
    assert_eq!(code, 2, "{stderr}");
    // The caret: the second name underlined.
    let caret = format!("·{}{}\n", " ".repeat(22), "─".repeat(10));
    for expected in ["m.toml:3:22]", "`match` names `userName` twice", &caret] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn a_reference_that_cannot_be_one_is_placed_on_its_line() {
    let compile = |field: &str| {
        let text = format!(
            "version = 1\ntarget = \"rest\"\nmatch = \"login\"\n[fields.login]\n\
             source = \"userPrincipalName\"\n[lookup.names]\n\"IT Ops\" = \"IT\"\n\
             [fields.ref]\n{field}\n"
        );
        mapping::compile_source(&SourceText::new("m.toml", text), Options::default())
    };
    let ok = compile("source = \"manager.id\"\nrefers = \"user\"").unwrap();
    assert_eq!(ok.user_refs().collect::<Vec<_>>(), [1]);
    let ok = compile(
        "source = \"department\"\nrefers = { entity = \"department\", aliases = \"names\" }",
    )
    .unwrap();
    let (_, entity) = ok.entity_refs().next().unwrap();
    assert_eq!(entity.policy, userload::mapping::Policy::Lookup);
    let cases: [(&str, usize, &str); 6] = [
        (
            "source = \"manager.mail\"\nrefers = \"user\"",
            9,
            "refers to a user, but its value is not a user's object id",
        ),
        (
            "source = \"manager.id\"\nconvert = [\"lower\"]\nrefers = \"user\"",
            10,
            "takes no converters",
        ),
        (
            "source = \"manager.id\"\nrefers = \"boss\"",
            10,
            "`refers` must be \"user\" or a table, not \"boss\"",
        ),
        (
            "source = \"department\"\nrefers = { entity = \"department\", policy = \"make\" }",
            10,
            "`policy` must be \"create\" or \"lookup\", not \"make\"",
        ),
        (
            "source = \"department\"\nrefers = { entity = \"department\", aliases = \"nope\" }",
            10,
            "there is no [lookup.nope] table",
        ),
        (
            "source = \"department\"\nrefers = { policy = \"create\" }",
            10,
            "`refers` does not name its entity",
        ),
    ];
    for (field, line, phrase) in cases {
        let problems = compile(field).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains(phrase) && p.line_col().0 == line),
            "{field}: {:?}",
            problems
                .iter()
                .map(|p| (p.line_col(), &p.message))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_old_connectors_property_names_load_as_microsoft_graph_names_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "token.txt", "t\n");
    // As that connector's users wrote them: its Python client's snake_case attributes, and
    // Azure AD Graph names under `additional_properties`.
    let path = write(
        dir.path(),
        "config.ini",
        "[oomnitza]\nurl = https://example.oomnitza.com\napi_token = file:token.txt\n\n\
         [azureusers]\ntenant_id = contoso.onmicrosoft.com\n\
         client_id = 11111111-2222-3333-4444-555555555555\nsecret = env:S\n\
         default_role = 25\ndefault_position = Employee\nsync_field = USER\n\
         mapping.USER = {\"source\": \"user_principal_name\"}\n\
         mapping.FIRST_NAME = {\"source\": \"given_name\"}\n\
         mapping.JOB_TITLE = {\"source\": \"additional_properties.jobTitle\"}\n\
         mapping.PHONE = {\"source\": \"additional_properties.telephoneNumber\"}\n\
         mapping.OFFICE = {\"source\": \"additional_properties.physicalDeliveryOfficeName\"}\n\
         mapping.EXTERNAL_ID = {\"source\": \"object_id\"}\n\
         mapping.ENABLED = {\"source\": \"account_enabled\"}\n",
    );
    let loaded = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let warned: Vec<(usize, String)> = loaded
        .warnings
        .iter()
        .filter(|p| p.message.contains("old connector's name"))
        .map(|p| (p.line_col().0, p.message.clone()))
        .collect();
    assert_eq!(warned.len(), 7, "{warned:?}");
    assert!(
        warned.contains(&(
            15,
            "`additional_properties.telephoneNumber` is the old connector's name for \
             `businessPhones[0]`"
                .to_owned()
        )),
        "{warned:?}"
    );
    let m = mapping::load(&loaded.config)
        .unwrap_or_else(|p| panic!("{}", userload::diag::render(&p, false)));
    let ctx = Context {
        settings: &loaded.config.settings,
        sync_time: "2024-05-01T06:00:00Z",
    };
    let user = json!({
        "id": "6e362ac6-3280-4bf2-8a3b-60c6bc47b961",
        "userPrincipalName": "ann@contoso.com", "givenName": "Ann", "jobTitle": "Engineer",
        "businessPhones": ["+1 425 555 0100"], "officeLocation": "Building 4",
        "accountEnabled": true,
    });
    let record = m.map(&user, &ctx).unwrap();
    assert_eq!(record["USER"], "ann@contoso.com");
    assert_eq!(record["FIRST_NAME"], "Ann");
    assert_eq!(record["JOB_TITLE"], "Engineer");
    assert_eq!(record["PHONE"], "+1 425 555 0100");
    assert_eq!(record["OFFICE"], "Building 4");
    assert_eq!(
        record["EXTERNAL_ID"],
        "6e362ac6-3280-4bf2-8a3b-60c6bc47b961"
    );
    assert_eq!(record["ENABLED"], true);
    // A name Microsoft Graph already uses is not warned about, nor an unknown one renamed.
    assert_eq!(userload::config::modern_source("givenName"), None);
    assert_eq!(userload::config::modern_source("no_such_thing"), None);
}
