//! The HTML pages of `plan --html`, `run --html`, `daemon --html` and `status --html`, loaded
//! in a real headless chromium (installed by `scripts/browser.sh install` when missing).
//!
//! The page reads its filter, field and search from the URL's fragment
//! (`page.html#action=update&q=jane`), so a test loads it with one applied and reads the DOM
//! chromium dumps once the page's script has run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use userload::html::{Head, Page, Row};

use crate::util::{SnipeItWorld, repo};

/// The browser, installed on first use (once per test binary).
fn browser() -> &'static Path {
    static BROWSER: OnceLock<PathBuf> = OnceLock::new();
    BROWSER.get_or_init(|| {
        let script = repo().join("scripts/browser.sh");
        let install = Command::new(&script).arg("install").output().unwrap();
        assert!(
            install.status.success(),
            "scripts/browser.sh install failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        let path = Command::new(&script).arg("path").output().unwrap();
        assert!(path.status.success(), "no browser after install");
        PathBuf::from(String::from_utf8_lossy(&path.stdout).trim())
    })
}

/// The DOM of `page` loaded with `fragment`, after its script ran. Chromium runs offline
/// with a fresh profile, and its virtual clock lets the script finish before the dump.
fn dom(page: &Path, fragment: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut url = url::Url::from_file_path(page.canonicalize().unwrap()).unwrap();
    url.set_fragment(Some(fragment).filter(|f| !f.is_empty()));
    let output = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url.as_str())
        .output()
        .unwrap();
    assert!(output.status.success(), "chromium failed on {url}");
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not finish on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dom
}

/// How many users the page says it shows.
fn shown(dom: &str) -> usize {
    let at = dom.find("data-count=\"").expect("no count shown") + "data-count=\"".len();
    let digits: String = dom[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// The users with an action in `plan --json`: (action, user, changed fields).
fn planned(plan: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut rows = Vec::new();
    for (key, action) in [
        ("create", "create"),
        ("update", "update"),
        ("deactivate", "deactivate"),
        ("reactivate", "reactivate"),
        ("held_deactivate", "held"),
        ("skip", "skip"),
    ] {
        for entry in plan[key].as_array().unwrap() {
            let fields = entry["changes"]
                .as_array()
                .map(|c| c.iter().map(|c| c["field"].as_str().unwrap().to_owned()))
                .into_iter()
                .flatten()
                .collect();
            let user = entry["user"].as_str().unwrap().to_owned();
            rows.push((action.to_owned(), user, fields));
        }
    }
    rows
}

/// A hostile name: markup that would set a marker if it ever ran, right-to-left text, an
/// emoji, and 2,000 characters in all.
fn hostile(marker: &str) -> String {
    let markup = format!(
        "<img src=x onerror=\"document.body.setAttribute('{marker}','1')\">\
         <script>document.body.setAttribute('{marker}','2')</script></td></tr></table>"
    );
    let mut name = format!("{markup}\u{202e}שלום عالم 🧑‍💻");
    while name.chars().count() < 2000 {
        name.push('W');
    }
    name
}

/// A Snipe-IT world after one run, then changed in Entra: some users disabled, some
/// promoted, and one new hire whose name is hostile.
fn changed_world() -> SnipeItWorld {
    let world = SnipeItWorld::new(80, 7, "", "");
    let (code, _, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{err}");
    world.graph.with(|s| {
        let t = &mut s.tenant;
        let mut ids: Vec<String> = t
            .users()
            .filter(|u| u["accountEnabled"] == true)
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        for id in ids.iter().take(4) {
            t.set_enabled(id, false);
        }
        let leaver = t.users().find(|u| u["id"] == ids[0].as_str()).unwrap();
        let upn = leaver["userPrincipalName"].as_str().unwrap().to_owned();
        world.snipe.with(|s| {
            let id = s.user_named(&upn).unwrap().0;
            s.assign_asset(id, "LAPTOP-0042", "MacBook Pro");
        });
        for id in ids.iter().skip(4).take(6) {
            t.update(id, json!({"jobTitle": "Senior Manager"}));
        }
        let mut hire = sim::tenant::new_hire(7, 1);
        hire["accountEnabled"] = json!(true);
        hire["displayName"] = json!(hostile("data-pwned"));
        hire["givenName"] = json!(hostile("data-pwned"));
        hire["userPrincipalName"] = json!(format!(
            "<b id=\"bold-marker\">x</b>{}@contoso.example",
            "\u{202e}evil"
        ));
        t.add(hire);
    });
    world
}

#[test]
fn a_plan_page_shows_every_user_with_an_action_and_filters_by_action_field_and_name() {
    let world = changed_world();
    let (code, json, err) = world.userload(&["plan", "--json", "--html", "plan.html"]);
    assert!(code == 0 || code == 1, "{err}");
    let plan: Value = serde_json::from_str(&json).unwrap();
    let rows = planned(&plan);
    let page = world.dir.path().join("plan.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("default-src 'none'"), "no strict policy");

    let all = dom(&page, "");
    assert_eq!(
        shown(&all),
        rows.len(),
        "every user with an action is a row"
    );
    let updates = rows.iter().filter(|r| r.0 == "update").count();
    assert!(updates >= 6, "the promotions are updates: {updates}");
    let update_page = dom(&page, "action=update");
    assert_eq!(shown(&update_page), updates);
    assert!(!update_page.contains("a a-create"), "a create is shown");
    let deactivations = rows.iter().filter(|r| r.0 == "deactivate").count();
    assert!(deactivations >= 4);
    let leavers = dom(&page, "action=deactivate");
    assert_eq!(shown(&leavers), deactivations);
    assert!(leavers.contains("disabled in Entra"), "no reason shown");
    assert!(
        leavers.contains("asset LAPTOP-0042 \"MacBook Pro\""),
        "what a leaver holds is not shown"
    );

    let field = &rows.iter().find(|r| r.0 == "update").unwrap().2[0];
    let with_field = rows
        .iter()
        .filter(|r| r.0 == "update" && r.2.contains(field))
        .count();
    let by_field = dom(&page, &format!("action=update&field={field}"));
    assert_eq!(shown(&by_field), with_field, "field {field}");

    let name = rows.iter().find(|r| r.0 == "update").unwrap().1.clone();
    let needle: String = name.chars().take(6).collect::<String>().to_lowercase();
    let matching = rows
        .iter()
        .filter(|r| r.1.to_lowercase().contains(&needle))
        .count();
    let found = dom(&page, &format!("q={}", urlencode(&needle)));
    assert_eq!(shown(&found), matching, "search {needle}");
    assert!(found.contains(&name), "{name} is not shown");
}

/// `text` for a URL's fragment.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[test]
fn a_hostile_name_is_shown_as_text_never_run_as_markup() {
    let world = changed_world();
    let (code, _, err) = world.userload(&["run", "--html", "run.html"]);
    assert!(code == 0 || code == 1, "{err}");
    let page = world.dir.path().join("run.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("<b id=\"bold-marker\">"),
        "markup in the file"
    );
    assert!(
        !html.contains("</script><script>"),
        "a value closed the data block"
    );

    // The new hire is a create, shown with its fields (the display name among them).
    let dom = dom(&page, &format!("q={}", urlencode("bold-marker")));
    assert_eq!(shown(&dom), 1, "the hostile user is found by name");
    // The marker would be an attribute of the body; as text it is in quotes.
    assert!(dom.contains("data-pwned"), "the hostile name is not shown");
    assert!(!dom.contains("data-pwned=\""), "the hostile markup ran");
    assert!(
        !dom.contains("<b id=\"bold-marker\">"),
        "the name became an element"
    );
    assert!(
        !dom.contains("<img src=\"x\""),
        "the display name became an element"
    );
    assert!(
        dom.contains("&lt;b id=\"bold-marker\"&gt;x&lt;/b&gt;"),
        "the name is not text"
    );
    assert!(
        dom.contains("&lt;img src=x onerror="),
        "the display name is not text"
    );
}

/// A synthetic run of `n` users with an action, for a page too large for a simulator.
fn synthetic_page(n: usize) -> Page {
    let actions = ["create", "update", "deactivate", "skip"];
    let rows = (0..n)
        .map(|i| {
            let action = actions[i % actions.len()];
            Row {
                action,
                user: format!("user-{i:06}@contoso.example"),
                target_id: Some(i.to_string()),
                changes: if action == "update" {
                    vec![(
                        "title".to_owned(),
                        Some(json!("Engineer")),
                        Some(json!("Senior Engineer")),
                    )]
                } else {
                    Vec::new()
                },
                reason: (action == "skip").then(|| "no email".to_owned()),
                holds: Vec::new(),
                result: "planned",
                error: None,
            }
        })
        .collect();
    Page {
        kind: "plan",
        head: Head {
            config: Some("userload.ini".into()),
            ..Head::default()
        },
        counts: Some(vec![("unchanged".into(), 5_000_000)]),
        fields: vec!["title".into()],
        rows: Some(rows),
        ..Page::default()
    }
}

#[test]
fn a_page_of_100k_users_loads_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("big.html");
    let n = 100_000;
    let html = userload::html::render("userload plan", &synthetic_page(n));
    assert!(
        html.len() < n * 200,
        "{} bytes for {n} rows: too large",
        html.len()
    );
    userload::html::write(&page, &html).unwrap();
    let all = dom(&page, "");
    assert_eq!(shown(&all), n);
    // 0..100000 with i % 4 == 1 and "user-0999" in the name: i in 99900..=99999.
    let filtered = dom(&page, "action=update&q=user-0999");
    assert_eq!(shown(&filtered), 25);
    assert!(filtered.contains("user-099901@contoso.example"));
    assert!(filtered.contains("Senior Engineer"));
    assert_eq!(shown(&dom(&page, "field=title")), n / 4);
    // Sorted by user, descending: the last update comes first.
    let sorted = dom(&page, "action=update&sort=-user");
    let first = sorted
        .find("user-099997@")
        .expect("the last update is not shown");
    let second = sorted
        .find("user-099993@")
        .expect("the one before is not shown");
    assert!(first < second, "not sorted descending");
}

#[test]
fn the_status_page_draws_its_charts() {
    let world = changed_world();
    let (code, _, err) = world.userload(&["run", "--report", "report.json"]);
    assert!(code == 0 || code == 1, "{err}");
    let (code, out, err) =
        world.userload(&["status", "--html", "status.html", "--report", "report.json"]);
    assert_eq!(code, 0, "{out}{err}");
    let dom = dom(&world.dir.path().join("status.html"), "");
    for chart in [
        "chart-actions",
        "chart-seconds",
        "chart-failures",
        "chart-history-requests",
        "chart-requests",
    ] {
        assert!(dom.contains(&format!("<svg id=\"{chart}\"")), "no {chart}");
    }
    assert!(dom.matches("class=\"bar\"").count() >= 2, "no bars drawn");
    assert!(dom.contains("report.json"), "the last report is not shown");
}

#[test]
fn a_page_that_cannot_be_written_fails_like_a_report_that_cannot_be_written() {
    let world = SnipeItWorld::new(20, 3, "", "");
    let (report_code, _, report_err) = world.userload(&["run", "--report", "no/such/dir/r.json"]);
    let (code, _, err) = world.userload(&["run", "--html", "no/such/dir/r.html"]);
    assert_eq!(code, report_code, "{err}\n{report_err}");
    assert_eq!(code, 2);
    assert!(err.contains("no/such/dir/r.html"), "{err}");
    let (code, _, err) = world.userload(&["plan", "--html", "no/such/dir/p.html"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/dir/p.html"), "{err}");
    let (code, _, err) = world.userload(&["status", "--html", "no/such/dir/s.html"]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such/dir/s.html"), "{err}");
}

#[test]
fn the_daemon_keeps_the_latest_page() {
    let world = SnipeItWorld::new(20, 5, "", "");
    let (code, _, err) = world.userload(&[
        "daemon",
        "--every",
        "1h",
        "--runs",
        "1",
        "--html",
        "latest.html",
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(world.dir.path().join("latest.html")).unwrap();
    assert!(html.contains("<title>userload run</title>"));
    assert!(html.contains("\"created\","), "no counts: {}", &html[..200]);
    let left = std::fs::read_dir(world.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".userload-html-")
        })
        .count();
    assert_eq!(left, 0, "a temporary file is left");
}
