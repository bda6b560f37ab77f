//! Config loading: the shipped examples, the old Oomnitza format, and one test per kind of
//! mistake, each checking the message and the line it points at.

use std::path::{Path, PathBuf};

use userload::config::{
    self, AssertionAlgorithm, ConfigError, Credential, Limit, ManagedIdentityEndpoint, Mode,
    TargetKind,
};
use userload::diag::Problem;

use crate::util::{repo, write};

/// A config file in a fresh temp folder, readable only by its owner.
fn config_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, text);
    (dir, path)
}

/// The problems of a config file that must not load.
fn load_problems(path: &Path) -> Vec<Problem> {
    match config::load(path) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("{} loaded but should not have", path.display()),
    }
}

/// The problems of a config that must not load.
fn problems(name: &str, text: &str) -> Vec<Problem> {
    let (_dir, path) = config_file(name, text);
    load_problems(&path)
}

/// `(line, message)` of each error.
fn errors(name: &str, text: &str) -> Vec<(usize, String)> {
    problems(name, text)
        .into_iter()
        .filter(Problem::is_error)
        .map(|p| {
            (
                p.line_col().0,
                format!("{} | {}", p.message, p.hint.unwrap_or_default()),
            )
        })
        .collect()
}

fn assert_one_error(name: &str, text: &str, line: usize, fragment: &str) {
    let errors = errors(name, text);
    assert!(
        errors.len() == 1 && errors[0].0 == line && errors[0].1.contains(fragment),
        "expected one error on line {line} containing {fragment:?}, got {errors:#?}"
    );
}

const GOOD_SOURCE: &str = "[source]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = env:USERLOAD_SECRET\n";
const GOOD_TARGET: &str =
    "[target]\ntype = scim\nurl = https://assets.example.com/scim/v2\ntoken = env:ASSET_TOKEN\n";

fn ini(extra_source: &str, rest: &str) -> String {
    format!("{GOOD_SOURCE}{extra_source}\n{GOOD_TARGET}\n{rest}")
}

#[test]
fn shipped_examples_validate() {
    for name in ["config.ini.example", "examples/userload.toml"] {
        let loaded = config::load(&repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = loaded.config;
        assert_eq!(c.target.kind, TargetKind::Scim, "{name}");
        assert_eq!(c.settings["default_role"], 25, "{name}");
        assert_eq!(c.settings["default_position"], "Employee", "{name}");
        let filter = c.source.filter.expect("the examples carry a filter");
        assert!(filter.needs_advanced_query());
        assert!(loaded.warnings.iter().all(|w| !w.is_error()));
    }
}

/// Every key the code knows is documented in both examples, and the two agree.
#[test]
fn examples_document_every_key() {
    let key_lines = |name: &str| -> Vec<String> {
        let text = std::fs::read_to_string(repo().join(name)).unwrap();
        text.lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
            .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect()
    };
    let ini = key_lines("config.ini.example");
    let toml = key_lines("examples/userload.toml");
    for (section, keys) in config::SECTIONS {
        for key in *keys {
            assert!(
                ini.iter().any(|k| k == key),
                "config.ini.example lacks [{section}] {key}"
            );
            assert!(
                toml.iter().any(|k| k == key),
                "examples/userload.toml lacks [{section}] {key}"
            );
        }
    }
}

#[test]
fn three_mistakes_are_all_reported_with_their_lines() {
    let text = "[source]\ntenant = contoso.onmicrosoft.com\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = x\npage_size = 5000\nfilter = department = 'IT'\n\n[target]\ntype = scim\nurl = https://a.example.com\n";
    let errors = errors("three.ini", text);
    let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, [2, 6, 7], "{errors:#?}");
    assert!(errors[0].1.contains("unknown key `tenant`") && errors[0].1.contains("tenant_id"));
    assert!(errors[1].1.contains("between 1 and 999"));
    assert!(errors[2].1.contains("`=` is not an OData operator"));
}

#[test]
fn old_oomnitza_config_loads() {
    let loaded = config::load(&repo().join("tests/fixtures/oomnitza-legacy.ini")).unwrap();
    let c = &loaded.config;
    assert_eq!(c.target.kind, TargetKind::Oomnitza);
    assert_eq!(c.target.token.as_ref().unwrap().expose(), Ok("token-value"));
    assert_eq!(c.target.sync_field.as_deref(), Some("USER"));
    assert_eq!(c.settings["default_role"], 25);
    assert_eq!(c.settings["default_position"], "Employee");
    assert!(c.source.enabled);
    let fields: Vec<&str> = c.legacy_mappings.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["USER", "FIRST_NAME", "POSITION"]);
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.message.clone()).collect();
    for expected in [
        "`username` is ignored",
        "section [airwatch] is ignored",
        "`url` is ignored",
        "`verify_ssl` is ignored",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "{expected}: {warnings:#?}"
        );
    }
}

#[test]
fn oomnitza_config_without_api_token_is_refused() {
    let text = "[oomnitza]\nurl = https://example.oomnitza.com\napi_token =\nusername = sa\n\n[azureusers]\nenable = False\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = s\n";
    assert_one_error("old.ini", text, 1, "missing `api_token` in [oomnitza]");
}

#[test]
fn toml_and_ini_load_into_the_same_model() {
    let toml = "[source]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nsecret = \"s\"\npage_size = 500\n[target]\ntype = \"scim\"\nurl = \"https://a.example.com\"\n[sync]\nmode = \"update_only\"\ndeactivate = false\nmax_deactivations = 25\nconcurrency = 4\n";
    let ini = "[source]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = s\npage_size = 500\n[target]\ntype = scim\nurl = https://a.example.com\n[sync]\nmode = update_only\ndeactivate = no\nmax_deactivations = 25\nconcurrency = 4\n";
    for (name, text) in [("c.toml", toml), ("c.ini", ini)] {
        let (_dir, path) = config_file(name, text);
        let c = config::load(&path).unwrap().config;
        assert_eq!(c.source.page_size, 500);
        assert_eq!(c.sync.mode, Mode::UpdateOnly);
        assert!(!c.sync.deactivate);
        assert_eq!(c.sync.max_deactivations, Limit::Count(25));
        assert_eq!(c.sync.concurrency, 4);
        assert!(matches!(&c.source.credential, Credential::Secret(s) if s.expose() == Ok("s")));
    }
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_one_error(
        "c.ini",
        &ini("clientid_typo = 1", ""),
        5,
        "unknown key `clientid_typo`",
    );
    assert_one_error(
        "c.ini",
        &ini("pagesize = 10", ""),
        5,
        "did you mean `page_size`?",
    );
}

#[test]
fn key_in_the_wrong_section_says_where_it_belongs() {
    assert_one_error(
        "c.ini",
        &ini("concurrency = 4", ""),
        5,
        "`concurrency` belongs in [sync]",
    );
}

#[test]
fn unknown_section_is_an_error_with_a_suggestion() {
    assert_one_error(
        "c.ini",
        &ini("", "[synk]\nmode = create_only\n"),
        11,
        "did you mean [sync]?",
    );
}

#[test]
fn wrong_types_in_toml() {
    let text = "[source]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nsecret = \"s\"\npage_size = \"999\"\n[target]\ntype = \"scim\"\nurl = \"https://a.example.com\"\n[sync]\ndeactivate = \"yes\"\nmode = 3\n";
    let errors = errors("c.toml", text);
    let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, [5, 10, 11], "{errors:#?}");
    assert!(
        errors[0]
            .1
            .contains("`page_size` must be an integer, not a string")
    );
    assert!(errors[1].1.contains("`deactivate` must be a boolean"));
    assert!(
        errors[2]
            .1
            .contains("`mode` must be a string, not an integer")
    );
}

#[test]
fn wrong_types_in_ini() {
    let errors = errors(
        "c.ini",
        &ini("page_size = 10 ; max", "[sync]\ndeactivate = maybe\n"),
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].1.contains("whole number") && errors[0].1.contains("own"),
        "{errors:#?}"
    );
    assert!(errors[1].1.contains("true or false"));
}

#[test]
fn missing_required_keys_and_sections() {
    let errors = errors("c.ini", "[source]\ntenant_id = contoso.onmicrosoft.com\n");
    let messages: Vec<&str> = errors.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(errors.len(), 3, "{messages:#?}");
    assert!(messages[0].contains("missing `client_id`"));
    assert!(messages.iter().any(|m| m.contains("missing `secret`")));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("missing [target] section"))
    );
}

#[test]
fn page_size_out_of_range() {
    assert_one_error("c.ini", &ini("page_size = 0", ""), 5, "between 1 and 999");
}

const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

/// A config signing in with `app.crt` and `app.key` (holding the given text), and with a
/// secret too when `with_secret`.
fn certificate_config(dir: &Path, certificate: &str, key: &str, with_secret: bool) -> PathBuf {
    write(dir, "app.crt", certificate);
    write(dir, "app.key", key);
    let mut text = ini("certificate = app.crt\nprivate_key = app.key", "");
    if !with_secret {
        text = text.replace("secret = env:USERLOAD_SECRET\n", "");
    }
    write(dir, "c.ini", &text)
}

#[test]
fn secret_and_certificate_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = certificate_config(dir.path(), PEM_CERTIFICATE, PEM_KEY, true);
    let problems = load_problems(&path);
    let errors: Vec<_> = problems.iter().filter(|p| p.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0]
            .message
            .contains("both `secret` and `certificate`")
    );
    assert_eq!(errors[0].line_col().0, 5);

    // Without the secret, the certificate pair is accepted.
    let path = certificate_config(dir.path(), PEM_CERTIFICATE, PEM_KEY, false);
    let c = config::load(&path).unwrap().config;
    assert!(
        matches!(c.source.credential, Credential::Certificate { ref certificate, .. } if certificate.ends_with("app.crt"))
    );
}

#[test]
fn certificate_files_must_hold_pem() {
    let dir = tempfile::tempdir().unwrap();
    let rsa_key = "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n";
    let path = certificate_config(dir.path(), "not a certificate", rsa_key, false);
    let problems = load_problems(&path);
    let errors: Vec<_> = problems.iter().filter(|p| p.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("holds no PEM certificate"));
}

#[test]
fn missing_referenced_files() {
    let errors = errors(
        "c.ini",
        &ini(
            "filter_file = filters/nope.odata",
            "[sync]\nmapping = mappings/nope.toml\n",
        ),
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|e| e.1.contains("does not exist")));
}

#[test]
fn filter_errors_point_into_the_config_file() {
    let text = ini(
        "filter = accountEnabled eq true and\n   department eq IT",
        "",
    );
    let problems = problems("c.ini", &text);
    let errors: Vec<_> = problems.iter().filter(|p| p.is_error()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line_col(), (6, 18));
    assert!(errors[0].message.contains("bare word `IT`"));
}

#[test]
fn filter_errors_in_escaped_toml_strings_name_the_filter() {
    let text = "[source]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nsecret = \"s\"\nfilter = \"department eq \\u0027IT\\u0027 and foo eq 1\"\n[target]\ntype = \"scim\"\nurl = \"https://a.example.com\"\n";
    let problems = problems("c.toml", text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .source
            .name()
            .ends_with("c.toml [source] filter")
    );
    assert!(problems[0].message.contains("`foo` is not a user property"));
}

#[test]
fn filter_file_is_resolved_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "filters/staff.odata",
        "# staff\nemployeeType eq 'Staff'\n",
    );
    let path = write(
        dir.path(),
        "c.ini",
        &ini("filter_file = filters/staff.odata", ""),
    );
    let c = config::load(&path).unwrap().config;
    assert_eq!(
        c.source.filter.unwrap().canonical(),
        "employeeType eq 'Staff'"
    );
    assert_eq!(c.sync.state, dir.path().join("userload.db"));

    write(
        dir.path(),
        "filters/bad.odata",
        "# staff\nemployeeType eq 'Staff' or\n",
    );
    let path = write(
        dir.path(),
        "c.ini",
        &ini("filter_file = filters/bad.odata", ""),
    );
    let problems = load_problems(&path);
    let error = problems.iter().find(|p| p.is_error()).unwrap();
    assert!(error.source.name().ends_with("bad.odata"), "{error:?}");
    assert_eq!(error.line_col().0, 2);
}

#[test]
fn default_and_empty_filters_mean_every_user() {
    for filter in ["filter = Default", "filter =", "filter = default"] {
        let (_dir, path) = config_file("c.ini", &ini(filter, ""));
        assert!(
            config::load(&path).unwrap().config.source.filter.is_none(),
            "{filter}"
        );
    }
}

#[test]
fn endpoints_must_be_https_except_on_loopback() {
    assert_one_error(
        "c.ini",
        &ini("domain = http://graph.example.com", ""),
        5,
        "plain http",
    );
    let (_dir, path) = config_file(
        "c.ini",
        &ini(
            "domain = http://127.0.0.1:8080\nauthority = http://localhost:9",
            "",
        ),
    );
    let c = config::load(&path).unwrap().config;
    assert_eq!(c.source.graph_root.as_str(), "http://127.0.0.1:8080/");
}

#[test]
fn cloud_sets_both_endpoints() {
    let (_dir, path) = config_file("c.ini", &ini("cloud = usgov-dod", ""));
    let c = config::load(&path).unwrap().config;
    assert_eq!(
        c.source.authority.as_str(),
        "https://login.microsoftonline.us/"
    );
    assert_eq!(
        c.source.graph_root.as_str(),
        "https://dod-graph.microsoft.us/"
    );
    assert_one_error(
        "c.ini",
        &ini("cloud = gov", ""),
        5,
        "is not a valid `cloud`",
    );
}

#[test]
fn tenant_and_client_ids_are_checked() {
    let text = GOOD_SOURCE.replace("contoso.onmicrosoft.com", "common") + GOOD_TARGET;
    assert_one_error("c.ini", &text, 2, "`common` is not a tenant");
    let text = GOOD_SOURCE.replace("11111111-2222-3333-4444-555555555555", "my-app") + GOOD_TARGET;
    assert_one_error("c.ini", &text, 3, "`client_id` is not a GUID");
}

#[test]
fn max_deactivations_takes_counts_and_percentages() {
    let (_dir, path) = config_file("c.ini", &ini("", "[sync]\nmax_deactivations = 2.5%\n"));
    assert_eq!(
        config::load(&path).unwrap().config.sync.max_deactivations,
        Limit::Percent(2.5)
    );
    assert_one_error(
        "c.ini",
        &ini("", "[sync]\nmax_deactivations = 120%\n"),
        12,
        "count or a percentage",
    );
}

#[test]
fn duplicate_keys_and_ini_syntax_errors() {
    let errors = errors(
        "c.ini",
        &ini(
            "page_size = 10\npage_size = 20\nthis line has no equals",
            "",
        ),
    );
    let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, [6, 7], "{errors:#?}");
    assert!(errors[0].1.contains("set twice") && errors[0].1.contains("line 5"));
}

#[test]
fn toml_syntax_errors_have_lines() {
    let errors = errors("c.toml", "[source]\ntenant_id = \"x\nclient_id = 1\n");
    assert!(errors.iter().any(|e| e.0 == 2), "{errors:#?}");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let (_dir, path) = config_file(
        "c.ini",
        &ini("", "")
            .replace("env:USERLOAD_SECRET", "hunter2-very-secret")
            .replace("env:ASSET_TOKEN", "asset-token-xyz"),
    );
    let loaded = config::load(&path).unwrap();
    let debug = format!("{loaded:?}");
    assert!(
        !debug.contains("hunter2-very-secret") && !debug.contains("asset-token-xyz"),
        "{debug}"
    );
    assert!(debug.contains("[redacted]"));
}

#[cfg(unix)]
#[test]
fn literal_secret_in_a_readable_file_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = config_file(
        "c.ini",
        &ini("", "").replace("env:USERLOAD_SECRET", "hunter2"),
    );
    let warned = |path: &Path| {
        config::load(path)
            .unwrap()
            .warnings
            .iter()
            .any(|w| w.message.contains("literal secret"))
    };
    assert!(!warned(&path), "0600 must not warn");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(warned(&path), "0644 must warn");
}

#[test]
fn empty_required_values_count_as_missing() {
    let text = GOOD_SOURCE.to_string() + "[target]\ntype =\nurl =\n";
    let errors = errors("c.ini", &text);
    let messages: Vec<&str> = errors.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(errors.len(), 2, "{messages:#?}");
    assert!(messages[0].contains("missing `type` in [target]"));
    assert!(messages[1].contains("missing `url` in [target]"));
}

#[test]
fn literal_secrets_are_starred_out_of_every_drawing() {
    let text = ini("", "[oomnitza]\npassword = pw-SECRET-1\n")
        .replace("env:USERLOAD_SECRET", "hunter2-SECRET-2")
        .replace(
            "client_id = 11111111-2222-3333-4444-555555555555",
            "client_id = x\nsecrte = typo-SECRET-3",
        );
    let problems = problems("c.ini", &text);
    let drawn = userload::diag::render(&problems, false);
    assert!(drawn.contains("client_id = x"), "{drawn}");
    assert!(!drawn.contains("SECRET"), "{drawn}");
    assert!(drawn.contains("secret = ****************"), "{drawn}");
}

#[test]
fn toml_filters_with_surrounding_space_and_line_breaks_compile() {
    let text = "[source]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nsecret = \"s\"\nfilter = \"\"\"\n    accountEnabled eq true\n    and userType eq 'Member'\n\"\"\"\n[target]\ntype = \"scim\"\nurl = \"https://a.example.com\"\n";
    let (_dir, path) = config_file("c.toml", text);
    let filter = config::load(&path).unwrap().config.source.filter.unwrap();
    assert_eq!(
        filter.canonical(),
        "accountEnabled eq true and userType eq 'Member'"
    );
    let errors = errors(
        "c.toml",
        &text.replace("userType eq 'Member'", "userType eq Member"),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, 7);
}

#[test]
fn urls_with_credentials_are_refused() {
    let text =
        GOOD_SOURCE.to_string() + &GOOD_TARGET.replace("https://assets", "https://admin:pw@assets");
    assert_one_error("c.ini", &text, 7, "carries a user name or password");
}

#[test]
fn a_secret_id_pasted_as_the_secret_is_a_warning() {
    let (_dir, path) = config_file(
        "c.ini",
        &ini("", "").replace(
            "env:USERLOAD_SECRET",
            "0b4d7a3c-5e2f-4c1a-9d8e-3f6a2b1c0d9e",
        ),
    );
    let warnings = config::load(&path).unwrap().warnings;
    assert!(
        warnings.iter().any(|w| w.message.contains("secret's ID")),
        "{warnings:#?}"
    );
}

#[test]
fn ini_numbers_become_numbers_only_when_they_read_back_the_same() {
    let (_dir, path) = config_file(
        "c.ini",
        &ini("", "[settings]\nzip = 01234\nfloor = 3\nempty =\n"),
    );
    let settings = config::load(&path).unwrap().config.settings;
    assert_eq!(settings["zip"], "01234");
    assert_eq!(settings["floor"], 3);
    assert!(!settings.contains_key("empty"));
}

#[test]
fn graph_client_settings_are_checked() {
    let errors = errors(
        "c.ini",
        &ini(
            "group = Staff\nmax_attempts = 0\nrequest_timeout = 9000",
            "",
        ),
    );
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0]
            .1
            .contains("`group` must be the group's Object ID"),
        "{errors:#?}"
    );
    assert!(errors[1].1.contains("max_attempts"), "{errors:#?}");
    assert!(errors[2].1.contains("request_timeout"), "{errors:#?}");
}

#[test]
fn certificate_assertion_algorithm_defaults_to_ps256_and_accepts_rs256() {
    let fixtures = repo().join("tests/fixtures");
    for (line, expected) in [
        ("", AssertionAlgorithm::Ps256),
        ("assertion_algorithm = rs256\n", AssertionAlgorithm::Rs256),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = ini(
            &format!(
                "certificate = {}\nprivate_key = {}\n{line}",
                fixtures.join("app.crt").display(),
                fixtures.join("app.key").display()
            ),
            "",
        )
        .replace("secret = env:USERLOAD_SECRET\n", "");
        let path = write(dir.path(), "c.ini", &text);
        let config = config::load(&path).unwrap().config;
        match config.source.credential {
            Credential::Certificate { algorithm, .. } => assert_eq!(algorithm, expected),
            other => panic!("{other:?}"),
        }
    }
    let errors = errors(
        "c.ini",
        &ini(
            &format!(
                "certificate = {}\nprivate_key = {}\nassertion_algorithm = HS256",
                fixtures.join("app.crt").display(),
                fixtures.join("app.key").display()
            ),
            "",
        )
        .replace("secret = env:USERLOAD_SECRET\n", ""),
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].1.contains("not a valid `assertion_algorithm`"),
        "{errors:#?}"
    );
}

#[test]
fn a_config_that_is_not_utf8_is_named_with_its_encoding_or_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[source]\ntenant_id = x\n";
    // UTF-16 with and without its byte-order mark, as Windows tools write it.
    let mut utf16: Vec<u8> = vec![0xff, 0xfe];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let bare: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    for (name, bytes) in [("bom.ini", utf16), ("bare.ini", bare)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = config::load(&path).err().unwrap();
        assert!(matches!(error, ConfigError::Encoding { .. }), "{error}");
        assert!(error.to_string().contains("UTF-16"), "{error}");
    }
    // Latin-1 `é` on the second line.
    let path = dir.path().join("latin1.ini");
    std::fs::write(&path, b"[source]\ntenant_id = caf\xe9\n").unwrap();
    let error = config::load(&path).err().unwrap().to_string();
    assert!(error.contains("byte 24 (line 2) is 0xe9"), "{error}");
}

#[test]
fn a_credential_under_the_wrong_key_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let canary_secret = "Xy78Q~CanaryCanaryCanary1234567890abcdEF";
    let canary_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlY2FuYXJ5";
    write(
        dir.path(),
        "userload.ini",
        &format!(
            "[source]\ntenant_id = 7f3a2b1c-0d4e-4f56-8a9b-0c1d2e3f4a5b\n\
             client_id = {canary_secret}\nsecret = env:UNSET_SECRET_FOR_TEST\n\
             foo_token = {canary_token}\n\
             [target]\ntype = scim\nurl = https://assets.example.com/scim/v2\ntoken = x\n"
        ),
    );
    for command in ["validate", "check", "plan", "run", "pull"] {
        let output = crate::util::userload(
            dir.path(),
            &[command, "--config", "userload.ini", "--log-level", "trace"],
        );
        let (code, stdout, stderr) = crate::util::outcome(&output);
        assert_eq!(code, 2, "{command}: {stdout}\n{stderr}");
        // Both mistakes are still reported, at their lines.
        assert!(
            stderr.contains("`client_id` is not a GUID"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("unknown key `foo_token`"),
            "{command}: {stderr}"
        );
        for canary in ["Canary", "eyJ"] {
            assert!(
                !stdout.contains(canary) && !stderr.contains(canary),
                "{command} echoed {canary}:\n{stdout}\n{stderr}"
            );
        }
    }
}

// ----- secretless sign-in ------------------------------------------------------------------

/// `GOOD_SOURCE` signing in with `credential` lines instead of the secret.
fn secretless(lines: &str) -> String {
    ini("", "").replace("secret = env:USERLOAD_SECRET\n", &format!("{lines}\n"))
}

#[test]
fn workload_identity_reads_the_token_file_key_against_the_config_folder() {
    let (dir, path) = config_file(
        "c.ini",
        &secretless("credential = workload_identity\nfederated_token_file = tokens/azure"),
    );
    let c = config::load(&path).unwrap().config;
    match c.source.credential {
        Credential::WorkloadIdentity { token_file } => {
            assert_eq!(token_file, dir.path().join("tokens/azure"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.source.client_id, "11111111-2222-3333-4444-555555555555");
}

#[test]
fn managed_identity_takes_client_id_as_the_user_assigned_identity() {
    let text = secretless(
        "credential = managed_identity\nmanaged_identity_endpoint = http://10.0.0.4/metadata/identity/oauth2/token",
    );
    let (_dir, path) = config_file("c.ini", &text);
    let c = config::load(&path).unwrap().config;
    match &c.source.credential {
        Credential::ManagedIdentity {
            endpoint: ManagedIdentityEndpoint::Imds(url),
            identity,
        } => {
            assert_eq!(
                url.as_str(),
                "http://10.0.0.4/metadata/identity/oauth2/token"
            );
            assert_eq!(
                identity.as_deref(),
                Some("11111111-2222-3333-4444-555555555555")
            );
        }
        other => panic!("{other:?}"),
    }
    // Without client_id: the system-assigned identity.
    let text = text.replace("client_id = 11111111-2222-3333-4444-555555555555\n", "");
    let (_dir, path) = config_file("c.ini", &text);
    let c = config::load(&path).unwrap().config;
    assert!(
        matches!(
            &c.source.credential,
            Credential::ManagedIdentity { identity: None, .. }
        ),
        "{:?}",
        c.source.credential
    );
    assert_eq!(c.source.client_id, "");
}

#[test]
fn a_key_of_another_way_to_sign_in_is_refused_where_it_is() {
    let text = secretless("credential = managed_identity\nsecret = env:USERLOAD_SECRET");
    assert_one_error(
        "c.ini",
        &text,
        5,
        "`secret` is set, but credential = managed_identity",
    );
    let text = secretless(
        "credential = workload_identity\nfederated_token_file = t\nmanaged_identity_endpoint = http://127.0.0.1:1/",
    );
    assert_one_error(
        "c.ini",
        &text,
        6,
        "`managed_identity_endpoint` is set, but credential = workload_identity",
    );
    let text = ini("federated_token_file = t", "");
    assert_one_error(
        "c.ini",
        &text,
        5,
        "`federated_token_file` is set, but credential = secret",
    );
}

#[test]
fn credential_must_name_a_known_way_that_fits_the_keys() {
    assert_one_error(
        "c.ini",
        &secretless("credential = workload-identity"),
        4,
        "did you mean `workload_identity`?",
    );
    assert_one_error(
        "c.ini",
        &ini("credential = certificate", ""),
        5,
        "credential = certificate, but `secret` is set",
    );
    assert_one_error(
        "c.ini",
        &secretless("credential = managed_identity\nmanaged_identity_endpoint = ftp://x/"),
        5,
        "is not an http(s) URL",
    );
}

#[test]
fn oauth2_needs_its_keys_and_keeps_its_secret_for_the_scrubber() {
    let target = "[target]\ntype = rest\npreset = snipeit\nurl = https://assets.example.com\n\
                  auth = oauth2\nclient_id = userload\n";
    let text = format!("{GOOD_SOURCE}{target}");
    let errors = errors("oauth.ini", &text);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].1.contains("missing `token_url`"), "{errors:#?}");
    assert!(
        errors[1].1.contains("missing `client_secret`"),
        "{errors:#?}"
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "client.txt", "oauth-client-secret-77");
    let text = format!(
        "{GOOD_SOURCE}{target}token_url = https://login.example.com/oauth/token\n\
         client_secret = file:client.txt\nscope = users.write\n"
    );
    let path = write(dir.path(), "oauth.ini", &text);
    let config = config::load(&path).unwrap().config;
    let config::TargetAuth::OAuth2(oauth) = &config.target.auth else {
        panic!("not oauth2: {:?}", config.target.auth);
    };
    assert_eq!(
        oauth.token_url.as_str(),
        "https://login.example.com/oauth/token"
    );
    assert_eq!(oauth.scope.as_deref(), Some("users.write"));
    assert!(
        config
            .secret_values()
            .contains(&"oauth-client-secret-77".to_string())
    );
}

#[test]
fn session_sign_in_is_for_rest_targets_and_its_app_token_is_a_secret() {
    let text = format!(
        "{GOOD_SOURCE}[target]\ntype = scim\nurl = https://assets.example.com/scim/v2\n\
         token = env:ASSET_TOKEN\nauth = session\n"
    );
    assert_one_error(
        "session.ini",
        &text,
        9,
        "`auth = session` needs a rest target",
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app.txt", "glpi-app-token-3e5f");
    let text = format!(
        "{GOOD_SOURCE}[target]\ntype = rest\npreset = glpi\nurl = https://glpi.example.com\n\
         token = env:ASSET_TOKEN\nauth = session\napp_token = file:app.txt\n"
    );
    let path = write(dir.path(), "glpi.ini", &text);
    let config = config::load(&path).unwrap().config;
    assert!(matches!(
        config.target.auth,
        config::TargetAuth::Session { .. }
    ));
    assert!(
        config
            .secret_values()
            .contains(&"glpi-app-token-3e5f".to_string())
    );
}

#[test]
fn basic_auth_with_only_a_token_sends_it_as_the_user_name() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "key.txt", "fs-api-key-0a1b2c");
    let text = format!(
        "{GOOD_SOURCE}[target]\ntype = rest\npreset = freshservice\n\
         url = https://example.freshservice.com\nauth = basic\ntoken = file:key.txt\n"
    );
    let path = write(dir.path(), "fs.ini", &text);
    let config = config::load(&path).unwrap().config;
    assert!(matches!(config.target.auth, config::TargetAuth::BasicToken));
    assert_eq!(
        config.target.api,
        Some(config::RestApi::Preset(config::Preset::Freshservice))
    );
    assert!(
        config
            .secret_values()
            .contains(&"fs-api-key-0a1b2c".to_string())
    );

    // Neither a token nor a user name: the user name is asked for, and the token offered.
    let text = format!(
        "{GOOD_SOURCE}[target]\ntype = rest\npreset = freshservice\n\
         url = https://example.freshservice.com\nauth = basic\n"
    );
    let errors = errors("fs.ini", &text);
    assert!(errors[0].1.contains("missing `username`"), "{errors:#?}");
    assert!(
        errors.iter().any(|e| e.1.contains("or only token")),
        "{errors:#?}"
    );
}
