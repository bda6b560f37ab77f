//! The SCIM target against the SCIM simulator (paging, filters, creates that meet existing
//! users or lose their answer, PATCHes of changed fields, ETags, throttling, refused
//! credentials, hostile answers) and against real third-party SCIM servers, scim2-server
//! (`scripts/scim-server.sh`) and django-scim2 on PostgreSQL (`scripts/django-scim.sh`), each
//! started on a free loopback port.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use sim::scim::{Fault, ScimSim};
use url::Url;
use userload::config::{Secret, TargetAuth, TargetConfig, TargetKind};
use userload::diag::SourceText;
use userload::http::RetryPolicy;
use userload::mapping::{self, Context, Mapping, Record};
use userload::targets::{FieldChange, ScimTarget, Target, TargetError, TargetUser};

use crate::util::repo;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const WORK_EMAIL: &str = r#"emails[type eq "work"].value"#;

fn config(url: &str, token: Option<&str>) -> TargetConfig {
    TargetConfig {
        kind: TargetKind::Scim,
        url: Url::parse(url).unwrap(),
        token: token.map(Secret::literal),
        sync_field: None,
        auth: TargetAuth::Bearer,
        api: None,
        page_size: 100,
        list: true,
        batch_size: 500,
        max_attempts: 4,
        request_timeout: Duration::from_secs(10),
        rate_limit: None,
    }
}

/// Retries without long waits (a server's Retry-After still rules).
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

fn scim_mapping() -> Mapping {
    let source = SourceText::new("scim.toml", mapping::shipped("scim").unwrap());
    mapping::compile_source(&source, mapping::Options::default()).unwrap()
}

fn target_for(config: &TargetConfig, mapping: &Mapping) -> ScimTarget {
    ScimTarget::with_policy(config, mapping, quick()).unwrap()
}

fn target(sim: &ScimSim, mapping: &Mapping) -> ScimTarget {
    target_for(&config(&sim.url(), None), mapping)
}

/// A Graph user as a pull returns it.
fn graph_user(n: u32) -> Value {
    json!({
        "id": format!("6e362ac6-3280-4bf2-8a3b-{n:012}"),
        "userPrincipalName": format!("user{n}@contoso.com"),
        "accountEnabled": true,
        "displayName": format!("User {n}"),
        "givenName": "User",
        "surname": format!("Number{n}"),
        "jobTitle": "Engineer",
        "mail": format!("user{n}@contoso.com"),
        "department": "IT",
    })
}

fn record(mapping: &Mapping, user: &Value) -> Record {
    let settings = Default::default();
    let ctx = Context {
        settings: &settings,
        sync_time: mapping::TEST_SYNC_TIME,
    };
    mapping.map(user, &ctx).unwrap()
}

/// What the planner would send: the mapped fields (of `only`) whose values differ.
fn changes(
    mapping: &Mapping,
    user: &TargetUser,
    record: &Record,
    only: &[&str],
) -> Vec<FieldChange> {
    mapping
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| only.contains(&f.target()))
        .filter_map(|(i, f)| {
            let old = f.get(&user.data).cloned();
            let new = record.value(i).cloned();
            (old != new).then(|| FieldChange {
                field: i,
                target: f.target().to_owned(),
                old,
                new,
            })
        })
        .collect()
}

/// Seeds the simulator with users `user1…usern` made by the mapping; returns their ids.
fn seed(sim: &ScimSim, mapping: &Mapping, n: u32) -> Vec<String> {
    let records: Vec<Value> = (1..=n)
        .map(|i| Value::Object(record(mapping, &graph_user(i)).to_json()))
        .collect();
    sim.with(|s| records.into_iter().map(|r| s.insert(r).unwrap()).collect())
}

/// A simulator holding users `user1…usern` made by the shipped mapping, that mapping, and a
/// target for them.
fn seeded(n: u32) -> (ScimSim, Mapping, ScimTarget) {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    seed(&sim, &m, n);
    let target = target(&sim, &m);
    (sim, m, target)
}

/// `user{n}@contoso.com` as the target finds it.
async fn find_user(target: &ScimTarget, n: u32) -> TargetUser {
    target
        .find("userName", &json!(format!("user{n}@contoso.com")))
        .await
        .unwrap()
        .unwrap()
}

/// The record of Graph user `n` once `edits` (Graph properties) changed it.
fn edited(mapping: &Mapping, n: u32, edits: Value) -> Record {
    let mut graph = graph_user(n);
    for (name, value) in edits.as_object().unwrap() {
        graph[name] = value.clone();
    }
    record(mapping, &graph)
}

/// Injects a fault into the next request.
fn next_fails(sim: &ScimSim, fault: Fault) {
    sim.with(|s| {
        let n = s.requests() + 1;
        s.behaviour.faults.insert(n, fault);
    });
}

fn methods(sim: &ScimSim) -> Vec<String> {
    sim.with(|s| s.log.iter().map(|l| l.method.clone()).collect())
}

// ----- listing --------------------------------------------------------------------------------

#[tokio::test]
async fn list_reads_every_page_and_each_user_once() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    let ids: BTreeSet<String> = seed(&sim, &m, 1050).into_iter().collect();
    let target = target(&sim, &m);
    let users = target.list().await.unwrap();
    assert_eq!(users.len(), 1050);
    let listed: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(listed, ids);
    let starts: BTreeSet<String> = sim.with(|s| {
        s.log
            .iter()
            .map(|l| l.query.get("startIndex").cloned().unwrap_or_default())
            .collect()
    });
    let expected: BTreeSet<String> = (0..11).map(|p| (1 + p * 100).to_string()).collect();
    assert_eq!(starts, expected);
    assert_eq!(target.stats().requests.load(Ordering::Relaxed), 11);
    assert_eq!(target.stats().writes.load(Ordering::Relaxed), 0);
    // Users are kept as the server sent them, ETag included.
    let first = &users[0];
    assert!(first.etag.as_deref().is_some_and(|e| e.starts_with("W/")));
    let department = m.field(&format!("{ENTERPRISE}:department")).unwrap();
    assert_eq!(department.get(&first.data), Some(&json!("IT")));
}

#[tokio::test]
async fn list_follows_a_server_that_sends_short_pages() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    seed(&sim, &m, 100);
    sim.with(|s| s.behaviour.max_page_size = 7);
    let mut config = config(&sim.url(), None);
    config.page_size = 50;
    let users = target_for(&config, &m).list().await.unwrap();
    let listed: BTreeSet<String> = users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(listed.len(), 100);
    assert_eq!(users.len(), 100);
    // After the first page, pages are asked for at the size the server gives.
    let asked: BTreeSet<(u64, u64)> = sim.with(|s| {
        s.log
            .iter()
            .map(|l| {
                (
                    l.query["startIndex"].parse().unwrap(),
                    l.query["count"].parse().unwrap(),
                )
            })
            .collect()
    });
    let mut expected: BTreeSet<(u64, u64)> = (1..15).map(|p| (1 + p * 7, 7)).collect();
    expected.insert((1, 50));
    expected.insert((99, 2));
    expected.remove(&(99, 7));
    assert_eq!(asked, expected);
}

#[tokio::test]
async fn list_fails_whole_when_a_page_keeps_failing() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    seed(&sim, &m, 30);
    let mut config = config(&sim.url(), None);
    config.page_size = 10;
    let target = target_for(&config, &m);
    // After the first page, every try of the two other pages fails.
    sim.with(|s| {
        for n in 2..=9 {
            s.behaviour
                .faults
                .insert(n, Fault::ServerError(503, Some(0.0)));
        }
    });
    let error = target.list().await.unwrap_err();
    assert!(matches!(error, TargetError::Unavailable(_)), "{error:?}");
    // One page was tried four times before the listing gave up.
    let statuses: Vec<u16> = sim.with(|s| s.log.iter().map(|l| l.status).collect());
    assert_eq!(statuses[0], 200);
    assert!(statuses.len() >= 5, "{statuses:?}");
    assert!(statuses[1..].iter().all(|&s| s == 503), "{statuses:?}");
}

#[tokio::test]
async fn listing_turned_off_is_refused_with_a_hint_and_find_still_works() {
    let (sim, _, target) = seeded(3);
    sim.with(|s| s.behaviour.listing = false);
    let error = target.list().await.unwrap_err();
    match &error {
        TargetError::Unauthorized { status, detail, .. } => {
            assert_eq!(*status, 403);
            assert!(detail.contains("list = false"), "{detail}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let found = target
        .find("userName", &json!("user2@contoso.com"))
        .await
        .unwrap();
    assert!(found.is_some());
}

// ----- find -----------------------------------------------------------------------------------

#[tokio::test]
async fn find_quotes_the_value_and_folds_case_only_where_scim_does() {
    let (sim, _, target) = seeded(3);
    let odd = r#"o"brien\x@contoso.com"#;
    let id = sim.with(|s| {
        s.insert(json!({"userName": odd, "externalId": "Ext-1", "emails": [{"type": "work", "value": "Ob@Contoso.com"}]}))
            .unwrap()
    });
    let found = target.find("userName", &json!(odd)).await.unwrap().unwrap();
    assert_eq!(found.id, id);
    let filter = sim.with(|s| s.log.last().unwrap().query["filter"].clone());
    assert_eq!(filter, r#"userName eq "o\"brien\\x@contoso.com""#);
    let upper = odd.to_uppercase();
    assert_eq!(
        target
            .find("userName", &json!(upper))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(id.clone())
    );
    assert_eq!(
        target
            .find(WORK_EMAIL, &json!("ob@contoso.com"))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(id.clone())
    );
    assert_eq!(
        target
            .find("externalId", &json!("Ext-1"))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(id)
    );
    assert!(
        target
            .find("externalId", &json!("ext-1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        target
            .find("userName", &json!("nobody@contoso.com"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(target.folds_case("userName"));
    assert!(target.folds_case(WORK_EMAIL));
    assert!(!target.folds_case("externalId"));
    assert!(!target.folds_case("name.givenName"));
}

// ----- create ---------------------------------------------------------------------------------

#[tokio::test]
async fn create_posts_the_mapped_record() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    let target = target(&sim, &m);
    let r = record(&m, &graph_user(1));
    let user = target.create(&r).await.unwrap();
    assert!(user.etag.is_some());
    let stored = sim.with(|s| s.user(&user.id)).unwrap();
    assert_eq!(stored["userName"], "user1@contoso.com");
    assert_eq!(
        stored["emails"],
        json!([{"type": "work", "value": "user1@contoso.com", "primary": true}])
    );
    assert_eq!(stored[ENTERPRISE]["department"], "IT");
    assert_eq!(methods(&sim), ["POST"]);
    assert_eq!(target.stats().writes.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn create_of_an_existing_user_patches_what_differs() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    let mut old = graph_user(1);
    old["userPrincipalName"] = json!("USER1@Contoso.com");
    old["jobTitle"] = json!("Intern");
    old["department"] = json!("Sales");
    old["id"] = json!("someone-else");
    let existing = sim.with(|s| s.insert(Value::Object(record(&m, &old).to_json())).unwrap());
    let target = target(&sim, &m);
    let user = target.create(&record(&m, &graph_user(1))).await.unwrap();
    assert_eq!(user.id, existing);
    assert_eq!(sim.with(|s| s.len()), 1);
    assert_eq!(methods(&sim), ["POST", "GET", "PATCH", "GET"]);
    // Only what differs is written; the user name matches without regard to case and the
    // externalId is only written on create.
    let ops = sim.with(|s| s.patches()[0].operations.clone()).unwrap();
    assert_eq!(
        ops,
        json!([
            {"op": "replace", "path": "title", "value": "Engineer"},
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "IT"},
        ])
    );
    assert_eq!(user.data["title"], "Engineer");
    assert_eq!(user.data["externalId"], "someone-else");
}

#[tokio::test]
async fn a_lost_post_answer_is_looked_up_not_posted_again() {
    for fault in [Fault::DropAfterWrite, Fault::ServerErrorAfterWrite(504)] {
        let sim = ScimSim::start().unwrap();
        let m = scim_mapping();
        let target = target(&sim, &m);
        next_fails(&sim, fault.clone());
        let user = target.create(&record(&m, &graph_user(7))).await.unwrap();
        assert_eq!(sim.with(|s| s.len()), 1, "{fault:?}");
        assert_eq!(
            sim.with(|s| s.user_named("user7@contoso.com").unwrap()["id"].clone()),
            json!(user.id)
        );
        assert_eq!(methods(&sim), ["POST", "GET"], "{fault:?}");
    }
}

#[tokio::test]
async fn a_post_that_times_out_is_looked_up_not_posted_again() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    let mut config = config(&sim.url(), None);
    config.request_timeout = Duration::from_millis(300);
    let mut policy = quick();
    policy.timeout = Duration::from_millis(300);
    let target = ScimTarget::with_policy(&config, &m, policy).unwrap();
    next_fails(&sim, Fault::Stall(Duration::from_millis(1500)));
    let user = target.create(&record(&m, &graph_user(3))).await.unwrap();
    assert_eq!(sim.with(|s| s.len()), 1);
    assert_eq!(user.data["userName"], "user3@contoso.com");
    assert_eq!(
        sim.with(|s| s.log.iter().filter(|l| l.method == "POST").count()),
        1
    );
}

#[tokio::test]
async fn a_post_refused_before_writing_is_sent_again_after_a_look() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    let target = target(&sim, &m);
    next_fails(&sim, Fault::ServerError(503, Some(0.01)));
    target.create(&record(&m, &graph_user(4))).await.unwrap();
    assert_eq!(methods(&sim), ["POST", "GET", "POST"]);
    assert_eq!(sim.with(|s| s.len()), 1);
    // Throttling says the request was not carried out: no look needed.
    next_fails(&sim, Fault::Throttle(0.01));
    target.create(&record(&m, &graph_user(5))).await.unwrap();
    assert_eq!(methods(&sim)[3..], ["POST", "POST"]);
    assert_eq!(sim.with(|s| s.len()), 2);
    assert_eq!(target.stats().retries.load(Ordering::Relaxed), 2);
}

// ----- update ---------------------------------------------------------------------------------

#[tokio::test]
async fn update_patches_only_the_changed_fields() {
    let (sim, m, target) = seeded(2);
    let user = find_user(&target, 2).await;
    let edits = json!({
        "department": "Finance",
        "jobTitle": null,
        "mail": "u2.new@contoso.com",
        "accountEnabled": false,
        "displayName": "User 2 (ignored: not among the changes)",
    });
    let r = edited(&m, 2, edits);
    let department = format!("{ENTERPRISE}:department");
    let changes = changes(&m, &user, &r, &[&department, "title", WORK_EMAIL, "active"]);
    assert_eq!(changes.len(), 4);
    target.update(&user, &changes, &r).await.unwrap();
    let patch = sim.with(|s| s.patches()[0].clone());
    assert_eq!(patch.if_match, user.etag);
    assert_eq!(
        patch.operations.unwrap(),
        json!([
            {"op": "replace", "path": "active", "value": false},
            {"op": "remove", "path": "title"},
            {"op": "replace", "path": WORK_EMAIL, "value": "u2.new@contoso.com"},
            {"op": "replace", "path": department, "value": "Finance"},
        ])
    );
    let stored = sim.with(|s| s.user(&user.id)).unwrap();
    assert_eq!(stored["active"], false);
    assert!(stored.get("title").is_none());
    assert_eq!(
        stored["emails"],
        json!([{"type": "work", "value": "u2.new@contoso.com", "primary": true}])
    );
    assert_eq!(stored[ENTERPRISE]["department"], "Finance");
    assert_eq!(stored["displayName"], "User 2");
    assert_eq!(methods(&sim), ["GET", "PATCH"]);
}

#[tokio::test]
async fn a_field_of_a_missing_element_appends_the_element() {
    let (sim, m, target) = seeded(1);
    let user = find_user(&target, 1).await;
    let r = edited(&m, 1, json!({"mobilePhone": "+47 555 0101"}));
    let mobile = r#"phoneNumbers[type eq "mobile"].value"#;
    let changes = changes(&m, &user, &r, &[mobile]);
    target.update(&user, &changes, &r).await.unwrap();
    let ops = sim.with(|s| s.patches()[0].operations.clone()).unwrap();
    assert_eq!(
        ops,
        json!([{"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+47 555 0101"}]}])
    );
    let stored = sim.with(|s| s.user(&user.id)).unwrap();
    assert_eq!(
        m.field(mobile).unwrap().get(stored.as_object().unwrap()),
        Some(&json!("+47 555 0101"))
    );
}

#[tokio::test]
async fn an_append_whose_answer_was_lost_is_not_made_twice() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    // Without ETags a repeated append would go through: the user is read again first.
    sim.with(|s| s.behaviour.etags = false);
    seed(&sim, &m, 1);
    let target = target(&sim, &m);
    let user = find_user(&target, 1).await;
    assert_eq!(user.etag, None);
    let r = edited(&m, 1, json!({"mobilePhone": "+47 555 0101"}));
    let mobile = r#"phoneNumbers[type eq "mobile"].value"#;
    let changes = changes(&m, &user, &r, &[mobile]);
    next_fails(&sim, Fault::DropAfterWrite);
    target.update(&user, &changes, &r).await.unwrap();
    assert_eq!(methods(&sim), ["GET", "PATCH", "GET", "PATCH"]);
    let second = sim.with(|s| s.patches()[1].operations.clone()).unwrap();
    assert_eq!(
        second,
        json!([{"op": "replace", "path": mobile, "value": "+47 555 0101"}])
    );
    let stored = sim.with(|s| s.user(&user.id)).unwrap();
    assert_eq!(stored["phoneNumbers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stale_etag_is_refreshed_once() {
    let (sim, m, target) = seeded(1);
    let stale = find_user(&target, 1).await;
    // Someone else changes the user meanwhile.
    let mut graph = graph_user(1);
    graph["jobTitle"] = json!("Lead");
    let r = record(&m, &graph);
    target
        .update(&stale, &changes(&m, &stale, &r, &["title"]), &r)
        .await
        .unwrap();
    let fresh_version = sim.with(|s| s.user(&stale.id).unwrap()["meta"]["version"].clone());
    assert_ne!(Some(fresh_version.as_str().unwrap()), stale.etag.as_deref());
    graph["department"] = json!("Ops");
    let r = record(&m, &graph);
    let department = format!("{ENTERPRISE}:department");
    target
        .update(&stale, &changes(&m, &stale, &r, &[&department]), &r)
        .await
        .unwrap();
    let log: Vec<(String, u16, Option<String>)> = sim.with(|s| {
        s.log
            .iter()
            .skip(2)
            .map(|l| (l.method.clone(), l.status, l.if_match.clone()))
            .collect()
    });
    assert_eq!(
        log,
        [
            ("PATCH".to_owned(), 412, stale.etag.clone()),
            ("GET".to_owned(), 200, None),
            (
                "PATCH".to_owned(),
                200,
                fresh_version.as_str().map(str::to_owned)
            ),
        ]
    );
    let stored = sim.with(|s| s.user(&stale.id)).unwrap();
    assert_eq!(
        (
            stored["title"].clone(),
            stored[ENTERPRISE]["department"].clone()
        ),
        (json!("Lead"), json!("Ops"))
    );
    // A second 412 in a row is not retried again.
    let user = find_user(&target, 1).await;
    let precondition = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"412","detail":"changed"}"#;
    sim.with(|s| {
        let n = s.requests();
        s.behaviour
            .faults
            .insert(n + 1, Fault::Answer(412, precondition.into()));
        s.behaviour
            .faults
            .insert(n + 3, Fault::Answer(412, precondition.into()));
    });
    graph["department"] = json!("Legal");
    let r = record(&m, &graph);
    let error = target
        .update(&user, &changes(&m, &user, &r, &[&department]), &r)
        .await
        .unwrap_err();
    assert!(
        matches!(error, TargetError::Rejected { status: 412, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn throttled_and_failed_reads_and_patches_are_retried() {
    let (sim, m, target) = seeded(1);
    next_fails(&sim, Fault::Throttle(0.02));
    let user = find_user(&target, 1).await;
    next_fails(&sim, Fault::Drop);
    let r = edited(&m, 1, json!({"jobTitle": "Lead"}));
    target
        .update(&user, &changes(&m, &user, &r, &["title"]), &r)
        .await
        .unwrap();
    let statuses: Vec<(String, u16)> =
        sim.with(|s| s.log.iter().map(|l| (l.method.clone(), l.status)).collect());
    assert_eq!(
        statuses,
        [
            ("GET".into(), 429),
            ("GET".into(), 200),
            ("PATCH".into(), 0),
            ("PATCH".into(), 200)
        ]
    );
    assert_eq!(target.stats().retries.load(Ordering::Relaxed), 2);
    assert_eq!(target.stats().requests.load(Ordering::Relaxed), 4);
    assert_eq!(target.stats().writes.load(Ordering::Relaxed), 2);
    // When the tries run out, the target is unavailable.
    sim.with(|s| {
        let n = s.requests();
        for i in 1..=4 {
            s.behaviour
                .faults
                .insert(n + i, Fault::ServerError(502, None));
        }
    });
    let error = target
        .find("userName", &json!("user1@contoso.com"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("4 attempt"), "{error}");
}

// ----- refusals and hostile answers -----------------------------------------------------------

#[tokio::test]
async fn refused_credentials_stop_the_run_and_never_show_the_token() {
    let sim = ScimSim::start().unwrap();
    let m = scim_mapping();
    sim.with(|s| s.behaviour.token = Some("right-token-0123".into()));
    let wrong = target_for(&config(&sim.url(), Some("wrong-token-4567")), &m);
    let error = wrong.list().await.unwrap_err();
    assert!(
        matches!(error, TargetError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.stops_run());
    let error = wrong.create(&record(&m, &graph_user(1))).await.unwrap_err();
    assert!(error.stops_run(), "{error:?}");
    let anonymous = target_for(&config(&sim.url(), None), &m);
    assert!(anonymous.list().await.unwrap_err().stops_run());
    let right = target_for(&config(&sim.url(), Some("right-token-0123")), &m);
    right.create(&record(&m, &graph_user(1))).await.unwrap();
    assert_eq!(right.list().await.unwrap().len(), 1);
    // A server that repeats the credentials in its error does not make us repeat them.
    let echo = r#"{"status":"400","detail":"bad header Authorization: Bearer right-token-0123"}"#;
    next_fails(&sim, Fault::Answer(400, echo.into()));
    let error = right.list().await.unwrap_err();
    let said = error.to_string();
    assert!(
        matches!(error, TargetError::Rejected { status: 400, .. }),
        "{said}"
    );
    assert!(
        !said.contains("right-token-0123") && said.contains("[redacted]"),
        "{said}"
    );
}

#[tokio::test]
async fn hostile_answers_are_errors_not_panics() {
    let (sim, m, target) = seeded(1);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies = [
        "<html>Bad gateway</html>".to_owned(),
        r#"{"totalResults": 1, "Resources": {"id": "x"}}"#.to_owned(),
        r#"{"totalResults": 1, "Resources": [{"id": 12345}]}"#.to_owned(),
        r#"{"totalResults": 1, "Resources": [{"userName": "no id"}]}"#.to_owned(),
        r#"{"totalResults": 1e999, "Resources": []}"#.to_owned(),
        r#"{"totalResults": "many", "Resources": []}"#.to_owned(),
        r#"[1, 2, 3]"#.to_owned(),
        "".to_owned(),
        deep,
    ];
    for body in &bodies {
        next_fails(&sim, Fault::Answer(200, body.clone()));
        let error = target.list().await.unwrap_err();
        assert!(
            matches!(error, TargetError::Malformed(_)),
            "list of {:.40}: {error:?}",
            body
        );
        next_fails(&sim, Fault::Answer(200, body.clone()));
        let error = target
            .find("userName", &json!("user1@contoso.com"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TargetError::Malformed(_)),
            "find of {:.40}: {error:?}",
            body
        );
    }
    for body in [
        r#"{"id": 7, "userName": "user2@contoso.com"}"#,
        "[]",
        "{not json",
    ] {
        next_fails(&sim, Fault::Answer(201, body.into()));
        let error = target
            .create(&record(&m, &graph_user(2)))
            .await
            .unwrap_err();
        assert!(
            matches!(error, TargetError::Malformed(_)),
            "create of {body}: {error:?}"
        );
    }
    // Error answers that are not SCIM errors still say something, shortly.
    next_fails(&sim, Fault::Answer(400, "x".repeat(100_000)));
    let error = target.list().await.unwrap_err();
    assert!(error.to_string().len() < 400, "{error}");
}

// ----- real SCIM servers ----------------------------------------------------------------------

/// A third-party SCIM server the tests can start, each by a script of `scripts/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// scim2-server (PyPI), users in memory: `scripts/scim-server.sh`.
    Scim2Server,
    /// django-scim2 (PyPI) in the project of `scripts/django_scim/`, on a PostgreSQL
    /// cluster of its own: `scripts/django-scim.sh`.
    DjangoScim2,
}

impl Peer {
    fn script(self) -> &'static str {
        match self {
            Peer::Scim2Server => "scripts/scim-server.sh",
            Peer::DjangoScim2 => "scripts/django-scim.sh",
        }
    }
}

/// A third-party SCIM server running on a loopback port of its own choosing for one test;
/// stopped when dropped.
pub(crate) struct RealServer {
    peer: Peer,
    port: u16,
    /// The SCIM base URL, `http://127.0.0.1:PORT/v2`.
    pub(crate) url: String,
}

impl RealServer {
    /// Starts scim2-server (installing it first when needed), demanding `token` when given.
    pub(crate) fn start(token: Option<&str>) -> RealServer {
        RealServer::start_peer(Peer::Scim2Server, token)
    }

    /// Starts `peer` (installing it first when needed), demanding `token` when given.
    pub(crate) fn start_peer(peer: Peer, token: Option<&str>) -> RealServer {
        // One start at a time: the first installs the server.
        static STARTING: Mutex<()> = Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
        // Port 0: the server binds a free port itself and the script prints the URL with it,
        // so no other process can take the port between a probe and the bind.
        let script = peer.script();
        let mut command = Command::new(repo().join(script));
        command.arg("start").arg("0");
        if let Some(token) = token {
            command.arg(token);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{script} start 0 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix("/v2"))
            .and_then(|port| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("not a loopback SCIM URL: {url}"));
        RealServer { peer, port, url }
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = Command::new(repo().join(self.peer.script()))
            .arg("stop")
            .arg(self.port.to_string())
            .output();
    }
}

#[tokio::test]
async fn scim2_server_takes_the_shipped_mapping_and_its_changes() {
    a_peer_takes_the_shipped_mapping_and_its_changes(Peer::Scim2Server).await;
}

#[tokio::test]
async fn django_scim2_takes_the_shipped_mapping_and_its_changes() {
    a_peer_takes_the_shipped_mapping_and_its_changes(Peer::DjangoScim2).await;
}

async fn a_peer_takes_the_shipped_mapping_and_its_changes(peer: Peer) {
    let server = RealServer::start_peer(peer, Some("peer-token-31337"));
    let m = scim_mapping();
    let mut config = config(&server.url, Some("peer-token-31337"));
    config.page_size = 2;
    let target = target_for(&config, &m);
    // A user with every field of the shipped mapping.
    let mut graph = json!({
        "id": "6e362ac6-3280-4bf2-8a3b-60c6bc47b961",
        "userPrincipalName": "ann.lee@contoso.com",
        "accountEnabled": true,
        "displayName": "Ann Lee",
        "givenName": "Ann",
        "surname": "Lee",
        "jobTitle": "Engineer",
        "preferredLanguage": "en-US",
        "userType": "Member",
        "mail": "ann.lee@contoso.com",
        "businessPhones": ["+1 425 555 0100"],
        "mobilePhone": "+1 425 555 0101",
        "faxNumber": "+1 425 555 0109",
        "streetAddress": "1 Microsoft Way",
        "city": "Redmond",
        "state": "WA",
        "postalCode": "98052",
        "country": "US",
        "employeeId": "E1001",
        "department": "IT Operations",
        "companyName": "Contoso",
        "employeeOrgData": {"division": "Cloud", "costCenter": "CC-42"},
        "manager": {"id": "0b4d7a3c-5e2f-4c1a-9d8e-3f6a2b1c0d9e"},
    });
    let r = record(&m, &graph);
    let created = target.create(&r).await.unwrap();
    // django-scim2 keeps no versions, so it sends no ETag (docs/targets.md).
    assert_eq!(created.etag.is_some(), peer != Peer::DjangoScim2);
    for i in 1..=3 {
        target.create(&record(&m, &graph_user(i))).await.unwrap();
    }
    // Every field reads back as written.
    let listed = target.list().await.unwrap();
    assert_eq!(listed.len(), 4);
    let user = listed.into_iter().find(|u| u.id == created.id).unwrap();
    for (i, field) in m.fields().iter().enumerate() {
        assert_eq!(field.get(&user.data), r.value(i), "{}", field.target());
    }
    let by_name = target
        .find("userName", &json!("Ann.Lee@Contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.id, created.id);
    let by_mail = target
        .find(WORK_EMAIL, &json!("ann.lee@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_mail.id, created.id);
    let by_external = target
        .find("externalId", &json!("6e362ac6-3280-4bf2-8a3b-60c6bc47b961"))
        .await
        .unwrap();
    assert_eq!(by_external.map(|u| u.id), Some(created.id.clone()));
    // A department change, a title removal, a new work e-mail, a deactivation.
    graph["department"] = json!("Finance");
    graph["jobTitle"] = Value::Null;
    graph["mail"] = json!("ann.lee2@contoso.com");
    graph["accountEnabled"] = json!(false);
    let r2 = record(&m, &graph);
    let department = format!("{ENTERPRISE}:department");
    let writes = changes(
        &m,
        &user,
        &r2,
        &[&department, "title", WORK_EMAIL, "active"],
    );
    assert_eq!(writes.len(), 4);
    target.update(&user, &writes, &r2).await.unwrap();
    let after = target
        .find("userName", &json!("ann.lee@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    for (i, field) in m.fields().iter().enumerate() {
        assert_eq!(field.get(&after.data), r2.value(i), "{}", field.target());
    }
    assert_eq!(after.data["active"], false);
    assert!(after.data.get("title").is_none());
    if peer == Peer::DjangoScim2 {
        assert_eq!(after.etag, None);
    } else {
        assert_ne!(after.etag, user.etag);
    }
    // The stale user: the server answers 412, and the PATCH is made again on a fresh read
    // (django-scim2, without ETags, takes the PATCH at once).
    graph["mobilePhone"] = Value::Null;
    graph["city"] = json!("Seattle");
    let r3 = record(&m, &graph);
    let mobile = r#"phoneNumbers[type eq "mobile"].value"#;
    let city = r#"addresses[type eq "work"].locality"#;
    let writes = changes(&m, &user, &r3, &[mobile, city]);
    target.update(&user, &writes, &r3).await.unwrap();
    let after = target
        .find("userName", &json!("ann.lee@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    for (i, field) in m.fields().iter().enumerate() {
        assert_eq!(field.get(&after.data), r3.value(i), "{}", field.target());
    }
    // A work e-mail for a user without one: its element is appended.
    let bare =
        json!({"id": "bare", "userPrincipalName": "bare@contoso.com", "accountEnabled": true});
    let bare_user = target.create(&record(&m, &bare)).await.unwrap();
    let mut bare_graph = bare.clone();
    bare_graph["mail"] = json!("bare@contoso.com");
    bare_graph["department"] = json!("Ops");
    let r4 = record(&m, &bare_graph);
    let writes = changes(&m, &bare_user, &r4, &[WORK_EMAIL, &department]);
    target.update(&bare_user, &writes, &r4).await.unwrap();
    let bare_after = target
        .find(WORK_EMAIL, &json!("bare@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bare_after.id, bare_user.id);
    assert_eq!(
        bare_after.data["emails"],
        json!([{"type": "work", "value": "bare@contoso.com", "primary": true}])
    );
    // Creating an existing user (another case) adopts it.
    let mut again = graph.clone();
    again["userPrincipalName"] = json!("ANN.LEE@contoso.com");
    let adopted = target.create(&record(&m, &again)).await.unwrap();
    assert_eq!(adopted.id, created.id);
    assert_eq!(target.list().await.unwrap().len(), 5);
}

#[tokio::test]
async fn scim2_server_refuses_a_wrong_token() {
    a_peer_refuses_a_wrong_token(Peer::Scim2Server).await;
}

#[tokio::test]
async fn django_scim2_refuses_a_wrong_token() {
    a_peer_refuses_a_wrong_token(Peer::DjangoScim2).await;
}

async fn a_peer_refuses_a_wrong_token(peer: Peer) {
    let server = RealServer::start_peer(peer, Some("peer-token-31337"));
    let m = scim_mapping();
    let target = target_for(&config(&server.url, Some("not-the-token")), &m);
    let error = target.list().await.unwrap_err();
    assert!(
        matches!(error, TargetError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not-the-token"));
}

/// What docs/targets.md says of django-scim2, as it answers: no ETags, filters that know only
/// the attributes held in columns (any other matches no one), a 409 without `scimType`.
#[tokio::test]
async fn django_scim2_differs_as_documented() {
    let server = RealServer::start_peer(Peer::DjangoScim2, Some("peer-token-31337"));
    let m = scim_mapping();
    let target = target_for(&config(&server.url, Some("peer-token-31337")), &m);
    let created = target.create(&record(&m, &graph_user(1))).await.unwrap();
    assert_eq!(created.etag, None);
    let http = reqwest::Client::new();
    let get = |path: String| {
        let request = http
            .get(format!("{}/{path}", server.url))
            .bearer_auth("peer-token-31337");
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, config) = get("ServiceProviderConfig".into()).await;
    assert_eq!(status, 200);
    assert_eq!(config["etag"]["supported"], false);
    let filtered = |filter: &str| {
        let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        get(format!("Users?filter={encoded}"))
    };
    // The user has title Engineer, but title is no column: no one matches, and no error.
    let (status, page) = filtered(r#"title eq "Engineer""#).await;
    assert_eq!((status, &page["totalResults"]), (200, &json!(0)), "{page}");
    let (status, page) = filtered(r#"userName eq "USER1@contoso.com""#).await;
    assert_eq!((status, &page["totalResults"]), (200, &json!(1)), "{page}");
    assert_eq!(
        target.find("title", &json!("Engineer")).await.unwrap(),
        None
    );
    // A duplicate userName: 409 without scimType.
    let answer = http
        .post(format!("{}/Users", server.url))
        .bearer_auth("peer-token-31337")
        .json(&json!({"userName": "User1@contoso.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 409);
    let error: Value = answer.json().await.unwrap();
    assert_eq!(error.get("scimType"), None, "{error}");
    assert_eq!(error["status"], 409);
}

/// Sends the same requests to a SCIM server: (status, body) of each, and the user's
/// attributes at the end without `id` and `meta`.
async fn conversation(base: &str, token: &str) -> (Vec<(u16, Value)>, Value) {
    let http = reqwest::Client::new();
    let send =
        |method: reqwest::Method, url: String, body: Option<Value>, if_match: Option<String>| {
            let mut request = http.request(method, url).bearer_auth(token);
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/scim+json")
                    .body(body.to_string());
            }
            if let Some(etag) = if_match {
                request = request.header("if-match", etag);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
        };
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let users = format!("{base}/Users");
    let mut said = Vec::new();
    let ann = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": "ann@contoso.com",
        "externalId": "Ext-1",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "title": "Engineer",
        ENTERPRISE: {"department": "IT", "manager": {"value": "m1"}},
    });
    let (status, created) = send(
        reqwest::Method::POST,
        users.clone(),
        Some(ann.clone()),
        None,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let stale = created["meta"]["version"].as_str().map(str::to_owned);
    said.push((status, json!(null)));
    let one = format!("{users}/{id}");
    let mut again = ann.clone();
    again["userName"] = json!("ANN@contoso.com");
    let (status, error) = send(reqwest::Method::POST, users.clone(), Some(again), None).await;
    said.push((status, error["scimType"].clone()));
    let steps = [
        json!([{"op": "replace", "path": WORK_EMAIL, "value": "ann@contoso.com"}]),
        json!([{"op": "add", "path": "emails", "value": [{"type": "work", "value": "ann@contoso.com", "primary": true}]}]),
        json!([{"op": "replace", "path": WORK_EMAIL, "value": "ann.lee@contoso.com"}]),
        json!([{"op": "replace", "value": {"displayName": "Ann Lee", "active": false}}]),
        json!([{"op": "remove", "path": format!("{ENTERPRISE}:department")}]),
        json!([{"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "1"}, {"type": "work", "value": "2"}]}]),
        json!([{"op": "remove", "path": r#"phoneNumbers[type eq "mobile"]"#}]),
        json!([{"op": "remove", "path": "name.givenName"}, {"op": "replace", "path": format!("{ENTERPRISE}:manager.value"), "value": "m2"}]),
    ];
    for ops in steps {
        let (status, answer) =
            send(reqwest::Method::PATCH, one.clone(), Some(patch(ops)), None).await;
        said.push((status, answer["scimType"].clone()));
    }
    let (status, _) = send(
        reqwest::Method::PATCH,
        one.clone(),
        Some(patch(
            json!([{"op": "replace", "path": "title", "value": "Lead"}]),
        )),
        stale,
    )
    .await;
    said.push((status, json!(null)));
    for filter in [
        r#"userName eq "ANN@CONTOSO.COM""#,
        r#"emails[type eq "work"].value eq "Ann.Lee@contoso.com""#,
        r#"externalId eq "ext-1""#,
        r#"externalId eq "Ext-1""#,
    ] {
        let url = format!(
            "{users}?filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let (status, list) = send(reqwest::Method::GET, url, None, None).await;
        said.push((status, list["totalResults"].clone()));
    }
    let (_, mut user) = send(reqwest::Method::GET, one.clone(), None, None).await;
    let user_map = user.as_object_mut().unwrap();
    user_map.remove("id");
    user_map.remove("meta");
    let whole = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@contoso.com", "displayName": "Replaced"});
    let (status, replaced) = send(reqwest::Method::PUT, one.clone(), Some(whole), None).await;
    said.push((
        status,
        json!([replaced["displayName"], replaced.get("title").is_some()]),
    ));
    let (status, _) = send(reqwest::Method::DELETE, one.clone(), None, None).await;
    said.push((status, json!(null)));
    let (status, _) = send(reqwest::Method::GET, one, None, None).await;
    said.push((status, json!(null)));
    (said, user)
}

#[tokio::test]
async fn the_simulator_answers_as_scim2_server_does() {
    let server = RealServer::start(Some("peer-token-31337"));
    let sim = ScimSim::start().unwrap();
    sim.with(|s| {
        s.behaviour.token = Some("peer-token-31337".into());
        s.behaviour.patch_returns_user = false;
    });
    let (real, real_user) = conversation(&server.url, "peer-token-31337").await;
    let (simulated, simulated_user) = conversation(&sim.url(), "peer-token-31337").await;
    assert_eq!(simulated, real);
    let sorted = |user: &Value| {
        let mut user = user.clone();
        if let Some(schemas) = user["schemas"].as_array_mut() {
            schemas.sort_by_key(|s| s.to_string());
        }
        user
    };
    assert_eq!(sorted(&simulated_user), sorted(&real_user));
    // The conversation went as expected, not merely the same way.
    let statuses: Vec<u16> = real.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses,
        [
            201, 409, 400, 204, 204, 204, 204, 204, 204, 204, 412, 200, 200, 200, 200, 200, 204,
            404
        ]
    );
    assert_eq!(real[1].1, "uniqueness");
    assert_eq!(real[2].1, "noTarget");
    let counts: Vec<&Value> = real[11..15].iter().map(|(_, c)| c).collect();
    assert_eq!(counts, [&json!(1), &json!(1), &json!(0), &json!(1)]);
    assert_eq!(real[15].1, json!(["Replaced", false]));
}
