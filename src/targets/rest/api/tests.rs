//! The API description's own tests: the documented example, the presets, escaping and
//! where each kind of mistake is reported.

use reqwest::Method;
use serde_json::json;

use super::*;

fn compile(text: &str) -> Result<ApiDescription, Vec<Problem>> {
    parse(&SourceText::new("api.toml", text), Needs::Reads)
}

fn lines(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(Problem::one_line).collect()
}

#[test]
fn the_documented_example_compiles() {
    let text: String = include_str!("mod.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .skip_while(|l| *l != "```toml")
        .skip(1)
        .take_while(|l| *l != "```")
        .map(|l| format!("{l}\n"))
        .collect();
    let source = SourceText::new("example", text);
    let api = parse(&source, Needs::Writes).unwrap_or_else(|p| panic!("{:?}", lines(&p)));
    assert_eq!(api.list.as_ref().map(|l| l.paging), Some(Paging::Page));
    assert_eq!(
        api.deactivate.as_ref().map(|d| d.method.clone()),
        Some(Method::POST)
    );
    assert_eq!(api.resolve.len(), 1);
}

#[test]
fn every_preset_compiles() {
    for preset in Preset::ALL {
        let (name, text) = (preset.name(), super::preset(preset));
        let source = SourceText::new(name, text);
        if let Err(problems) = parse(&source, Needs::Writes) {
            panic!("{name}: {:?}", lines(&problems));
        }
    }
}

#[test]
fn values_are_escaped_for_where_they_go() {
    let api = compile(
        "[find]\nurl = \"/u?{{field}}={{value}}\"\n\
         [create]\nurl = \"/u\"\nbody = '{\"n\": \"{{record.n}}\", \"all\": {{json record}}}'\n",
    )
    .unwrap();
    let url = api
        .url("find", &json!({"field": "mail", "value": "a&b c/é"}))
        .unwrap();
    assert_eq!(url, "/u?mail=a%26b%20c%2F%C3%A9");
    let filter = compile("[find]\nurl = \"/u?filter=({{field}} eq '{{odata value}}')\"\n").unwrap();
    let url = filter
        .url("find", &json!({"field": "USER", "value": "o'neil"}))
        .unwrap();
    assert_eq!(url, "/u?filter=(USER eq 'o%27%27neil')");
    let record = json!({"n": "say \"hi\"\n", "k": 1});
    let body = api.body("create", &json!({"record": record})).unwrap();
    assert_eq!(body, Some(json!({"n": "say \"hi\"\n", "all": record})));
}

#[test]
fn a_missing_value_is_an_error_not_an_empty_string() {
    let api = compile("[create]\nurl = \"/u\"\nbody = '{\"e\": \"{{record.email}}\"}'\n").unwrap();
    let error = api.body("create", &json!({"record": {}})).unwrap_err();
    assert!(error.to_string().contains("record.email"), "{error}");
    // `if` may test for a value that is not there.
    let api = compile(
        "[create]\nurl = \"/u\"\nbody = '{ {{#if record.email}}\"e\": {{json record.email}}{{/if}} }'\n",
    )
    .unwrap();
    assert_eq!(
        api.body("create", &json!({"record": {}})).unwrap(),
        Some(json!({}))
    );
}

#[test]
fn mistakes_are_placed_on_their_line() {
    let text = "name = \"x\"\n[list]\nurl = \"/u?p={{pgae}}\"\npaging = \"pages\"\n[find]\nurl = \"/u?{{#if}}\"\n";
    let problems = compile(text).unwrap_err();
    let lines = lines(&problems);
    assert!(
        lines[0].starts_with("api.toml:3:13: error: [list] url: unknown variable `pgae`"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("api.toml:4:10: error: unknown paging `pages`"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("api.toml:6:"), "{lines:?}");
    assert!(lines[2].contains("template syntax error"), "{lines:?}");
    assert_eq!(problems[0].hint.as_deref(), Some("did you mean `page`?"));
}

#[test]
fn a_mistake_at_the_end_of_a_non_ascii_template_is_placed_without_panicking() {
    let problems = compile("[find]\nurl = \"/u?q=é{{\"\n").unwrap_err();
    assert!(
        lines(&problems)[0].starts_with("api.toml:2:"),
        "{:?}",
        lines(&problems)
    );
    let problems = compile("[find]\nurl = \"/ü/{{välue}}\"\n").unwrap_err();
    assert!(
        lines(&problems)[0].contains("unknown variable `välue`"),
        "{:?}",
        lines(&problems)
    );
}

#[test]
fn unknown_keys_and_missing_sections_are_reported() {
    let problems = compile("[list]\nurl = \"/u\"\nitem = \"rows\"\n").unwrap_err();
    assert!(
        lines(&problems)[0].starts_with("api.toml:3:1:"),
        "{:?}",
        lines(&problems)
    );
    let source = SourceText::new("api.toml", "[list]\nurl = \"/u\"\n");
    let problems = parse(&source, Needs::Writes).unwrap_err();
    let said = lines(&problems).join("\n");
    for section in ["find", "create", "update"] {
        assert!(said.contains(&format!("no [{section}]")), "{said}");
    }
}

#[test]
fn asset_lists_are_read_and_their_mistakes_placed() {
    let api = compile(
        "[[assets]]\nurl = \"/u/{{id}}/assets\"\nitems = \"rows\"\ntag = \"asset_tag\"\n\
         [[assets]]\nkind = \"accessory\"\nurl = \"/u/{{id}}/accessories\"\n",
    )
    .unwrap();
    let kinds: Vec<&str> = api.assets.iter().map(|a| a.kind.name()).collect();
    assert_eq!(kinds, ["asset", "accessory"]);
    assert_eq!(api.assets[0].tag.as_deref(), Some("asset_tag"));
    assert_eq!(api.assets[1].name, "name");
    assert_eq!(
        api.url("assets.1", &json!({"id": "7"})).unwrap(),
        "/u/7/accessories"
    );
    let problems =
        compile("[[assets]]\nkind = \"licenses\"\nurl = \"/u/{{user}}/licenses\"\n").unwrap_err();
    let said = lines(&problems);
    assert!(
        said[0].starts_with("api.toml:2:8: error: unknown kind `licenses`"),
        "{said:?}"
    );
    assert_eq!(problems[0].hint.as_deref(), Some("did you mean `licence`?"));
    assert!(
        said[1].starts_with("api.toml:3:11: error: [assets.0] url: unknown variable `user`"),
        "{said:?}"
    );
}

#[test]
fn entity_lists_are_read_with_their_paging_and_create() {
    let api = compile(
        "[entities.department]\n\
         url = \"/d?limit={{limit}}&offset={{offset}}\"\n\
         paging = \"offset\"\nitems = \"rows\"\ntotal = \"total\"\nmax_name = 255\n\
         create = { url = \"/d\", body = '{\"name\": {{json name}}}', entity = \"payload\" }\n\
         [entities.cost_center]\nurl = \"/cc/{{cursor}}\"\npaging = \"cursor\"\nnext = \"after\"\n\
         id = \"code\"\nname = \"label\"\n",
    )
    .unwrap();
    let kinds: Vec<&str> = api.entities.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["cost_center", "department"]);
    let department = &api.entities["department"];
    assert_eq!(department.operation.name, "entities.department");
    assert_eq!(department.operation.paging, Paging::Offset);
    assert_eq!(department.operation.total.as_deref(), Some("total"));
    assert_eq!(
        (department.id.as_str(), department.name.as_str()),
        ("id", "name")
    );
    assert_eq!(department.max_name, Some(255));
    let create = department.create.as_ref().unwrap();
    assert_eq!(create.method, Method::POST);
    assert_eq!(create.user.as_deref(), Some("payload"));
    assert_eq!(
        api.url(
            "entities.department",
            &json!({"limit": 500, "offset": 0, "page": 1, "cursor": null})
        )
        .unwrap(),
        "/d?limit=500&offset=0"
    );
    let body = api
        .body(
            "entities.department.create",
            &json!({"name": "R&D \"Labs\""}),
        )
        .unwrap();
    assert_eq!(body, Some(json!({"name": "R&D \"Labs\""})));
    let cost_center = &api.entities["cost_center"];
    assert_eq!(cost_center.operation.paging, Paging::Cursor);
    assert_eq!(cost_center.operation.next.as_deref(), Some("after"));
    assert_eq!(
        (cost_center.id.as_str(), cost_center.name.as_str()),
        ("code", "label")
    );
    assert!(cost_center.create.is_none());
    assert_eq!(cost_center.max_name, None);
}

#[test]
fn the_snipeit_preset_describes_departments_locations_and_companies() {
    let source = SourceText::new("snipeit", super::preset(Preset::Snipeit));
    let api = parse(&source, Needs::Writes).unwrap_or_else(|p| panic!("{:?}", lines(&p)));
    let kinds: Vec<&str> = api.entities.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["company", "department", "location"]);
    for list in api.entities.values() {
        assert_eq!(list.operation.paging, Paging::Offset, "{}", list.kind);
        assert_eq!(list.max_name, Some(255), "{}", list.kind);
        let create = list.create.as_ref().unwrap();
        assert_eq!(create.user.as_deref(), Some("payload"), "{}", list.kind);
    }
    for (field, path) in [
        ("department_id", "department.id"),
        ("location_id", "location.id"),
        ("company_id", "company.id"),
        ("manager_id", "manager.id"),
    ] {
        assert_eq!(api.fields.get(field).map(String::as_str), Some(path));
    }
}

#[test]
fn entity_list_mistakes_are_placed_on_their_line() {
    let text = "[entities.department]\n\
                url = \"/d?o={{ofset}}\"\n\
                paging = \"ofset\"\n\
                max_name = 0\n\
                create = { url = \"/d\", body = '{\"n\": {{json nmae}}}' }\n\
                [entities.location]\nurl = \"/l\"\npaging = \"next\"\n\
                [entities.\"cost center\"]\nurl = \"/c\"\n";
    let problems = compile(text).unwrap_err();
    let said = lines(&problems);
    assert_eq!(said.len(), 6, "{said:?}");
    assert!(
        said[0].starts_with(
            "api.toml:2:13: error: [entities.department] url: unknown variable `ofset`"
        ),
        "{said:?}"
    );
    assert_eq!(problems[0].hint.as_deref(), Some("did you mean `offset`?"));
    assert!(
        said[1].starts_with("api.toml:3:10: error: unknown paging `ofset`"),
        "{said:?}"
    );
    assert!(
        said[2]
            .starts_with("api.toml:4:12: error: [entities.department] max_name must be at least 1"),
        "{said:?}"
    );
    assert!(
        said[3].starts_with(
            "api.toml:5:38: error: [entities.department.create] body: unknown variable `nmae`"
        ),
        "{said:?}"
    );
    assert_eq!(problems[3].hint.as_deref(), Some("did you mean `name`?"));
    assert!(
        said[4].starts_with("api.toml:8:10: error: this paging needs `next`"),
        "{said:?}"
    );
    assert!(
        said[5].starts_with("api.toml:9:11: error: [entities] kind `cost center` is not a name"),
        "{said:?}"
    );
    // The mark is under the mistake.
    let rendered = crate::diag::render(&problems[..1], false);
    let shown: Vec<Vec<char>> = rendered.lines().map(|l| l.chars().collect()).collect();
    let line = shown
        .iter()
        .position(|l| l.ends_with(&"url = \"/d?o={{ofset}}\"".chars().collect::<Vec<_>>()))
        .unwrap_or_else(|| panic!("{rendered}"));
    let column = shown[line].iter().position(|c| *c == '{').unwrap();
    assert_eq!(shown[line + 1].get(column), Some(&'─'), "{rendered}");
}

#[test]
fn entity_list_unknown_keys_are_reported_with_their_place() {
    let problems = compile("[entities.company]\nurl = \"/c\"\nitem = \"rows\"\n").unwrap_err();
    assert!(
        lines(&problems)[0].starts_with("api.toml:3:1:"),
        "{:?}",
        lines(&problems)
    );
    let problems = compile(
        "[entities.company]\nurl = \"/c\"\ncreate = { url = \"/c\", user = \"payload\" }\n",
    )
    .unwrap_err();
    let said = lines(&problems);
    assert!(said[0].starts_with("api.toml:3:"), "{said:?}");
    assert!(said[0].contains("unknown field `user`"), "{said:?}");
    let problems = compile("[entities.company]\nurl = \"/c\"\nmax_name = -1\n").unwrap_err();
    assert!(
        lines(&problems)[0].starts_with("api.toml:3:12:"),
        "{:?}",
        lines(&problems)
    );
}

#[test]
fn the_glpi_preset_signs_in_with_a_session_and_pages_by_range() {
    let source = SourceText::new("glpi", super::preset(Preset::Glpi));
    let api = parse(&source, Needs::Writes).unwrap_or_else(|p| panic!("{:?}", lines(&p)));
    let session = api.session.as_ref().unwrap();
    assert_eq!(session.login.method, Method::GET);
    assert_eq!(session.header, "Session-Token");
    assert_eq!(session.login_headers, ["Authorization"]);
    assert_eq!(session.headers, ["App-Token"]);
    assert_eq!(session.expired_status, Some(401));
    assert_eq!(
        session.expired_text.as_deref(),
        Some("ERROR_SESSION_TOKEN_INVALID")
    );
    let vars = json!({"token": "u1", "app_token": "", "username": "", "password": ""});
    assert_eq!(
        api.header("session.login", "Authorization", &vars).unwrap(),
        "user_token u1"
    );
    assert_eq!(api.header("session", "App-Token", &vars).unwrap(), "");
    let list = api.list.as_ref().unwrap();
    assert_eq!(list.paging, Paging::Range);
    let url = api
        .url(
            "list",
            &json!({"offset": 100, "last": 149, "limit": 50, "page": 1, "cursor": null}),
        )
        .unwrap();
    assert_eq!(url, "/apirest.php/User?range=100-149");
    let body = api
        .body(
            "create",
            &json!({"record": {"name": "ann", "is_active": 1}}),
        )
        .unwrap();
    assert_eq!(
        body,
        Some(json!({"input": {"name": "ann", "is_active": 1}}))
    );
}

#[test]
fn session_mistakes_are_placed_on_their_line() {
    let text = "[session]\n\
                login = { url = \"/login/{{tokn}}\" }\n\
                header = \"Bad Header\"\n\
                expired = {}\n\
                headers = { X-App = \"{{app_tokn}}\" }\n";
    let problems = lines(&compile(text).unwrap_err());
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].starts_with("api.toml:2:"), "{problems:#?}");
    assert!(
        problems[0].contains("unknown variable `tokn`"),
        "{problems:#?}"
    );
    assert!(problems[1].starts_with("api.toml:3:"), "{problems:#?}");
    assert!(problems[1].contains("not a header name"), "{problems:#?}");
    assert!(problems[2].starts_with("api.toml:4:"), "{problems:#?}");
    assert!(problems[3].starts_with("api.toml:5:"), "{problems:#?}");
    assert!(
        problems[3].contains("unknown variable `app_tokn`"),
        "{problems:#?}"
    );
}

#[test]
fn reactivate_and_range_paging_compile() {
    let text = "[list]\nurl = \"/u?range={{offset}}-{{last}}\"\npaging = \"range\"\n\
                [reactivate]\nmethod = \"POST\"\nurl = \"/u/{{id}}/unsuspend\"\n";
    let api = compile(text).unwrap_or_else(|p| panic!("{:?}", lines(&p)));
    assert_eq!(api.list.unwrap().paging, Paging::Range);
    assert_eq!(api.reactivate.unwrap().method, Method::POST);
}

#[test]
fn the_freshservice_preset_lists_and_finds_deactivated_requesters_apart() {
    let source = SourceText::new("freshservice", super::preset(Preset::Freshservice));
    let api = parse(&source, Needs::Writes).unwrap_or_else(|p| panic!("{:?}", lines(&p)));
    let page = json!({"offset": 0, "last": 99, "limit": 100, "page": 2, "cursor": null});
    assert_eq!(
        api.url("list", &page).unwrap(),
        "/api/v2/requesters?per_page=100&page=2"
    );
    let also: Vec<&str> = api.list_also.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(also, ["list.also.0"]);
    assert_eq!(api.list_also[0].paging, Paging::Page);
    assert_eq!(api.list_also[0].items, "requesters");
    assert_eq!(
        api.url("list.also.0", &page).unwrap(),
        "/api/v2/requesters?active=false&per_page=100&page=2"
    );
    let find = json!({"field": "primary_email", "value": "a+b@x.org", "limit": 100});
    assert_eq!(api.find_also.len(), 1);
    assert_eq!(
        api.url("find.also.0", &find).unwrap(),
        "/api/v2/requesters?email=a%2Bb%40x.org&active=false"
    );
    let deactivate = api.deactivate.as_ref().unwrap();
    assert_eq!(deactivate.method, Method::DELETE);
    assert_eq!(
        api.reactivate.as_ref().map(|r| r.method.clone()),
        Some(Method::PUT)
    );
    assert_eq!(
        api.as_list.get("department_id").map(String::as_str),
        Some("department_ids")
    );
    assert!(api.integers.iter().any(|f| f == "reporting_manager_id"));
    assert_eq!(api.limit, Some(crate::http::Rate::per_minute(100)));
    let kinds: Vec<&str> = api.entities.keys().map(String::as_str).collect();
    assert_eq!(kinds, ["department", "location"]);
}

#[test]
fn also_urls_are_checked_as_their_section_is() {
    let text = "[list]\nurl = \"/u?p={{page}}\"\npaging = \"page\"\nalso = [\"/u?x=1&p={{pgae}}\"]\n\
                [find]\nurl = \"/u?e={{value}}\"\nalso = [\"/u?e={{page}}\"]\n";
    let problems = compile(text).unwrap_err();
    let lines = lines(&problems);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("api.toml:4:")
            && lines[0].contains("[list.also.0] url: unknown variable `pgae`"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("api.toml:7:")
            && lines[1].contains("[find.also.0] url: unknown variable `page`"),
        "{lines:?}"
    );
    // Entity lists take no `also`.
    let text = "[entities.department]\nurl = \"/d\"\nalso = [\"/d?x=1\"]\n";
    let said = super::tests::lines(&compile(text).unwrap_err());
    assert!(said[0].contains("unknown field `also`"), "{said:?}");
}
