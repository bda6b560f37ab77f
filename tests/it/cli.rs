//! The real binary: exit codes and what it prints for `validate` and `filter`.

use crate::util::{outcome, repo, userload, write};

#[test]
fn validate_accepts_the_example_config() {
    let (code, stdout, _) = outcome(&userload(
        &repo(),
        &["validate", "--config", "config.ini.example"],
    ));
    assert_eq!(code, 0);
    assert!(stdout.contains("config.ini.example: OK"), "{stdout}");
    assert!(stdout.contains("(advanced query mode)"), "{stdout}");
}

#[test]
fn validate_prints_three_mistakes_with_lines_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "userload.ini",
        "[source]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = env:S\npage_sise = 100\nfilter = accountEnabled eq 'true'\n\n[target]\ntype = scim\nurl = https://assets.example.com\n\n[sync]\nconcurrency = 0\n",
    );
    let (code, _, stderr) = outcome(&userload(
        dir.path(),
        &["validate", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "userload.ini:5:1]",
        "unknown key `page_sise` in [source]",
        "did you mean `page_size`?",
        "userload.ini:6:28]",
        "`accountEnabled` is a boolean, but this is a quoted string",
        "userload.ini:13:15]",
        "`concurrency` is 0, but it must be between 1 and 64",
        "3 error(s); nothing was run",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn validate_reads_the_config_path_from_the_environment() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_userload"))
        .arg("validate")
        .current_dir(repo())
        .env("USERLOAD_CONFIG", "examples/userload.toml")
        .env("USERLOAD_SECRET", "s")
        .env("ASSET_TOKEN", "t")
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&output);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("examples/userload.toml: OK"));
    // With both variables set there is nothing to warn about.
    assert!(!stderr.contains("not set"), "{stderr}");
}

#[test]
fn validate_of_a_missing_file_exits_2() {
    let (code, _, stderr) = outcome(&userload(&repo(), &["validate", "--config", "nope.ini"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read config file nope.ini"),
        "{stderr}"
    );
}

#[test]
fn filter_check_prints_canonical_form_and_mode() {
    let (code, stdout, _) = outcome(&userload(
        &repo(),
        &["filter", "check", "DISPLAYNAME NE 'x'"],
    ));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("canonical:  displayName ne 'x'"),
        "{stdout}"
    );
    assert!(stdout.contains("advanced:   yes"), "{stdout}");
    assert!(stdout.contains("properties: displayName"), "{stdout}");
}

#[test]
fn filter_check_shows_a_caret_and_exits_2() {
    let (code, _, stderr) = outcome(&userload(
        &repo(),
        &["filter", "check", "department = 'IT'"],
    ));
    assert_eq!(code, 2);
    assert!(stderr.contains("filter:1:12]"), "{stderr}");
    assert!(stderr.contains("`=` is not an OData operator"), "{stderr}");
    assert!(stderr.contains("write `eq`"), "{stderr}");
}

#[test]
fn filter_check_reads_files() {
    let (code, stdout, _) = outcome(&userload(
        &repo(),
        &["filter", "check", "--file", "filters/staff.odata"],
    ));
    assert_eq!(code, 0);
    assert!(stdout.contains("employeeType in ("), "{stdout}");
}

#[test]
fn filter_test_passes_for_every_shipped_filter() {
    for entry in std::fs::read_dir(repo().join("filters")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "odata") {
            continue;
        }
        let rel = format!("filters/{}", path.file_name().unwrap().to_string_lossy());
        let (code, stdout, stderr) = outcome(&userload(&repo(), &["filter", "test", &rel]));
        assert_eq!(code, 0, "{rel}:\n{stdout}{stderr}");
        assert!(stdout.contains("all as expected"), "{rel}:\n{stdout}");
    }
}

#[test]
fn filter_test_reports_unexpected_results_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f.odata", "department eq 'Sales'\n");
    write(
        dir.path(),
        "f.users.json",
        r#"{"match": [{"userPrincipalName": "a@x", "department": "SALES"}, {"userPrincipalName": "b@x", "department": "HR"}], "no_match": []}"#,
    );
    let (code, stdout, _) = outcome(&userload(dir.path(), &["filter", "test", "f.odata"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("ok    match     a@x"), "{stdout}");
    assert!(
        stdout.contains("FAIL  no match  b@x (expected match)"),
        "{stdout}"
    );
}

#[test]
fn filter_test_lists_matches_for_plain_user_lists() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f.odata", "startsWith(displayName,'Jo')\n");
    write(
        dir.path(),
        "page.json",
        r#"{"value": [{"displayName": "José"}, {"displayName": "Ann"}]}"#,
    );
    let (code, stdout, _) = outcome(&userload(
        dir.path(),
        &["filter", "test", "f.odata", "--users", "page.json"],
    ));
    assert_eq!(code, 0);
    assert!(stdout.contains("1 of 2 users match"), "{stdout}");
}

#[test]
fn filter_test_rejects_a_broken_users_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f.odata", "department eq 'x'\n");
    write(dir.path(), "u.json", "[{\"a\": 1},\n 42]");
    let (code, _, stderr) = outcome(&userload(
        dir.path(),
        &["filter", "test", "f.odata", "--users", "u.json"],
    ));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("item 2 of the array is not a user object"),
        "{stderr}"
    );
}

#[test]
fn validate_checks_a_rest_targets_api_description() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "api.toml",
        "[list]\nurl = \"/people?page={{page}\"\npaging = \"page\"\n",
    );
    write(
        dir.path(),
        "userload.ini",
        "[source]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = env:S\n\n[target]\ntype = rest\nurl = https://assets.example.com\ntemplates = api.toml\n\n[sync]\nmapping = mappings/snipeit.toml\n",
    );
    std::fs::create_dir(dir.path().join("mappings")).unwrap();
    std::fs::copy(
        repo().join("mappings/snipeit.toml"),
        dir.path().join("mappings/snipeit.toml"),
    )
    .unwrap();
    let (code, _, stderr) = outcome(&userload(
        dir.path(),
        &["validate", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("api.toml:2:"), "{stderr}");
    assert!(stderr.contains("API description has problems"), "{stderr}");
}

#[test]
fn completions_and_manual_pages_come_from_the_command_line_itself() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_userload()"),
        ("zsh", "#compdef userload"),
        ("fish", "complete -c userload"),
    ] {
        let (code, stdout, stderr) =
            crate::util::outcome(&crate::util::userload(dir.path(), &["completions", shell]));
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        for command in ["validate", "plan", "run", "daemon", "status"] {
            assert!(stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let (code, stdout, _) = crate::util::outcome(&crate::util::userload(dir.path(), &["man"]));
    assert_eq!(code, 0);
    assert!(stdout.contains(".TH userload 1"), "{stdout}");
    assert!(
        stdout.contains("Loads the users of a Microsoft Entra ID tenant"),
        "{stdout}"
    );
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["man", "--out", "pages"],
    ));
    assert_eq!(code, 0, "{stderr}");
    let run = std::fs::read_to_string(dir.path().join("pages/userload-run.1")).unwrap();
    assert!(run.contains("\\-\\-allow\\-growth"), "{run}");
    assert!(dir.path().join("pages/userload.1").exists());
    assert!(dir.path().join("pages/userload-filter-check.1").exists());
    assert!(!dir.path().join("pages/userload-help.1").exists());
}
