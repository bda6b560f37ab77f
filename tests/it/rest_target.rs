//! The REST target against the Snipe-IT simulator (the preset, and API descriptions written
//! for the test), and the Oomnitza target against the Oomnitza simulator: listing, finding,
//! creating, changing only what changed, deactivating, retries, refusals and answers that
//! make no sense.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::oomnitza::{self, Oomnitza, OomnitzaSim};
use sim::server::Fault;
use sim::snipeit::{self, SnipeIt, SnipeItSim};
use sim::tenant::Tenant;
use url::Url;
use userload::config::{
    self, Config, Preset, RestApi, Secret, TargetAuth, TargetConfig, TargetKind,
};
use userload::diag::SourceText;
use userload::http::RetryPolicy;
use userload::mapping::{self, Context, Mapping, Options, Record};
use userload::state::State;
use userload::sync::engine::{self, Outcome, StopSignal, SyncOptions};
use userload::targets::oomnitza::OomnitzaTarget;
use userload::targets::rest::RestTarget;
use userload::targets::{FieldChange, Target, TargetError, TargetUser, Write};

use crate::util::{outcome, userload, write};

const SYNC_TIME: &str = "2024-05-01T06:00:00Z";

/// Retries without long waits (a server's Retry-After still rules).
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

fn compile(name: &str, text: &str) -> Mapping {
    let source = SourceText::new(name, text);
    mapping::compile_source(&source, Options::default())
        .unwrap_or_else(|p| panic!("{name}: {}", userload::diag::render(&p, false)))
}

fn shipped(name: &str) -> Mapping {
    compile(name, mapping::shipped(name).unwrap())
}

fn map(mapping: &Mapping, user: &Value) -> Record {
    let settings = BTreeMap::from([
        ("default_role".to_string(), json!(25)),
        ("default_position".to_string(), json!("Employee")),
    ]);
    let ctx = Context {
        settings: &settings,
        sync_time: SYNC_TIME,
    };
    let mut record = mapping.map(user, &ctx).unwrap();
    // The department is a name until the sync looks it up; these tests write records to the
    // target directly, so they look it up as the sync would, among the departments
    // `snipeit_sim` makes (ids from 1, in that order).
    if let Some(i) = mapping.field_index("department_id")
        && let Some(Value::String(name)) = record.value(i)
    {
        let id = DEPARTMENTS
            .iter()
            .position(|d| d == name)
            .map(|p| json!(p + 1));
        record.set(i, id);
    }
    record
}

/// A change of one mapped field.
fn change(mapping: &Mapping, target: &str, old: Option<Value>, new: Option<Value>) -> FieldChange {
    let field = mapping
        .fields()
        .iter()
        .position(|f| f.target() == target)
        .unwrap();
    FieldChange {
        field,
        target: target.to_string(),
        old,
        new,
    }
}

/// Every mapped field of `record` reads the same from `user`.
fn assert_same(mapping: &Mapping, record: &Record, user: &TargetUser) {
    for (i, field) in mapping.fields().iter().enumerate() {
        assert_eq!(
            field.get(&user.data),
            record.value(i),
            "field {} of {:?}",
            field.target(),
            user.data
        );
    }
}

fn graph_user(upn: &str, given: &str, department: &str) -> Value {
    json!({
        "userPrincipalName": upn,
        "accountEnabled": true,
        "givenName": given,
        "surname": "Lee",
        "mail": upn,
        "employeeId": "E1001",
        "jobTitle": "Engineer",
        "businessPhones": ["+1 425 555 0100"],
        "department": department,
    })
}

// ----- Snipe-IT ----------------------------------------------------------------------------

fn snipeit_config(sim: &SnipeItSim) -> TargetConfig {
    TargetConfig {
        kind: TargetKind::Rest,
        url: Url::parse(&sim.url()).unwrap(),
        token: Some(Secret::literal(snipeit::TOKEN)),
        sync_field: None,
        auth: TargetAuth::Bearer,
        api: Some(RestApi::Preset(Preset::Snipeit)),
        page_size: 2,
        list: true,
        batch_size: 500,
        max_attempts: 3,
        request_timeout: Duration::from_secs(10),
        rate_limit: None,
    }
}

/// A Snipe-IT simulator with the shipped mapping's departments.
/// The departments `snipeit_sim` makes, in order (ids 1 to 5).
const DEPARTMENTS: [&str; 5] = [
    "Unassigned",
    "IT Operations",
    "Finance",
    "Human Resources",
    "Sales",
];

fn snipeit_sim() -> SnipeItSim {
    let sim = SnipeIt::start().unwrap();
    sim.with(|s| {
        for name in DEPARTMENTS {
            s.add_department(name);
        }
    });
    sim
}

fn snipeit_target(sim: &SnipeItSim, mapping: &Mapping) -> RestTarget {
    RestTarget::with_policy(&snipeit_config(sim), mapping, quick()).unwrap()
}

/// A Snipe-IT simulator, the shipped mapping and a target for both.
fn snipeit() -> (SnipeItSim, Mapping, RestTarget) {
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    (sim, mapping, target)
}

/// Ann Lee of Finance's record.
fn ann(mapping: &Mapping) -> Record {
    map(
        mapping,
        &graph_user("ann.lee@contoso.com", "Ann", "Finance"),
    )
}

/// The `(method, path)` of every request so far.
fn requests(sim: &SnipeItSim) -> Vec<(String, String)> {
    sim.with(|s| {
        s.traffic
            .log
            .iter()
            .map(|l| (l.method.clone(), l.path.clone()))
            .collect()
    })
}

#[tokio::test]
async fn snipeit_lists_every_user_across_pages_in_the_mappings_layout() {
    let sim = snipeit_sim();
    sim.with(|s| {
        for i in 0..5 {
            s.add_user(json!({
                "first_name": format!("User{i}"),
                "username": format!("user{i}@contoso.com"),
                "department_id": 2,
            }));
        }
        s.add_user(json!({"first_name": "Seán", "last_name": "O'Brien & <Sons>", "username": "sean@contoso.com"}));
    });
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let users = target.list().await.unwrap();
    assert_eq!(users.len(), 6);
    let offsets: Vec<String> = sim.with(|s| {
        s.traffic
            .log
            .iter()
            .map(|l| format!("{} {}", l.query["offset"], l.query["limit"]))
            .collect()
    });
    assert_eq!(offsets, ["0 2", "2 2", "4 2"]);
    assert_eq!(users[0].data["department_id"], json!(2));
    assert_eq!(users[0].data["department"], json!("IT Operations"));
    assert!(!users[5].data.contains_key("department_id"));
    assert_eq!(users[5].data["last_name"], json!("O'Brien & <Sons>"));
    assert_eq!(users[5].id, "6");
    assert_eq!(
        target
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(
        target
            .stats()
            .writes
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test]
async fn snipeit_reads_back_a_created_user_as_equal_to_its_record() {
    let (_sim, mapping, target) = snipeit();
    let mut user = graph_user("ann.o'lee@contoso.com", "Ann & Jo", "IT Operations");
    user["surname"] = json!("<Lee>");
    let record = map(&mapping, &user);
    let created = target.create(&record).await.unwrap();
    assert_same(&mapping, &record, &created);
    let listed = target.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    assert_same(&mapping, &record, &listed[0]);
    let found = target
        .find("username", &json!("ANN.O'LEE@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_same(&mapping, &record, &found);
}

#[tokio::test]
async fn snipeit_create_sends_the_whole_record() {
    let (sim, mapping, target) = snipeit();
    let record = ann(&mapping);
    let created = target.create(&record).await.unwrap();
    assert_eq!(created.id, "1");
    let posted = sim.with(|s| s.traffic.requests("POST", "/api/v1/users")[0].body.clone());
    assert_eq!(
        posted,
        Some(json!({
            "first_name": "Ann",
            "last_name": "Lee",
            "username": "ann.lee@contoso.com",
            "email": "ann.lee@contoso.com",
            "employee_num": "E1001",
            "jobtitle": "Engineer",
            "phone": "+1 425 555 0100",
            "activated": true,
            "department_id": 3,
            "notes": "Loaded from Entra ID (2024-05-01)",
        }))
    );
    assert_eq!(requests(&sim).len(), 1);
}

#[tokio::test]
async fn snipeit_find_keeps_only_the_exact_match() {
    let sim = snipeit_sim();
    sim.with(|s| {
        s.add_user(json!({"first_name": "Ann", "username": "ann.leeson@contoso.com"}));
        s.add_user(json!({"first_name": "Ann", "username": "Ann.Lee@contoso.com"}));
        s.add_user(
            json!({"first_name": "Jo", "username": "jo@contoso.com", "employee_num": "ann.lee"}),
        );
    });
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let found = target
        .find("username", &json!("ann.lee@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "2");
    let search = sim.with(|s| s.traffic.log[0].query.get("search").cloned());
    assert_eq!(search.as_deref(), Some("ann.lee@contoso.com"));
    assert!(
        target
            .find("username", &json!("nobody@contoso.com"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(target.folds_case("username"));
    assert!(!target.folds_case("employee_num"));
}

#[tokio::test]
async fn snipeit_update_sends_only_the_changed_fields() {
    let (sim, mapping, target) = snipeit();
    let record = ann(&mapping);
    let user = target.create(&record).await.unwrap();
    let mut moved = graph_user("ann.lee@contoso.com", "Ann", "Sales");
    moved["jobTitle"] = json!("Lead");
    let record = map(&mapping, &moved);
    let changes = [
        change(
            &mapping,
            "jobtitle",
            Some(json!("Engineer")),
            Some(json!("Lead")),
        ),
        change(&mapping, "department_id", Some(json!(3)), Some(json!(5))),
        change(&mapping, "phone", Some(json!("+1 425 555 0100")), None),
    ];
    target.update(&user, &changes, &record).await.unwrap();
    let patch = sim.with(|s| {
        s.traffic.requests("PATCH", "/api/v1/users/1")[0]
            .body
            .clone()
    });
    assert_eq!(
        patch,
        Some(json!({"jobtitle": "Lead", "department_id": 5, "phone": null}))
    );
    let stored = sim.with(|s| s.users[&1].clone());
    assert_eq!(stored["jobtitle"], json!("Lead"));
    assert_eq!(stored["department_id"], json!(5));
    // Nothing to change: nothing sent.
    target.update(&user, &[], &record).await.unwrap();
    assert_eq!(sim.with(|s| s.traffic.writes()), 2);
}

#[tokio::test]
async fn snipeit_deactivation_sets_activated_false() {
    let sim = snipeit_sim();
    let id =
        sim.with(|s| s.add_user(json!({"first_name": "Left", "username": "left@contoso.com"})));
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let user = target
        .find("username", &json!("left@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.data["activated"], json!(true));
    let mut left = graph_user("left@contoso.com", "Left", "Sales");
    left["accountEnabled"] = json!(false);
    let record = map(&mapping, &left);
    let changes = [change(
        &mapping,
        "activated",
        Some(json!(true)),
        Some(json!(false)),
    )];
    target.update(&user, &changes, &record).await.unwrap();
    let patch = sim.with(|s| {
        s.traffic.requests("PATCH", &format!("/api/v1/users/{id}"))[0]
            .body
            .clone()
    });
    assert_eq!(patch, Some(json!({"activated": false})));
    assert_eq!(
        sim.with(|s| s.users[&id]["activated"].clone()),
        json!(false)
    );
}

#[tokio::test]
async fn snipeit_throttled_and_failed_reads_are_retried() {
    let sim = snipeit_sim();
    sim.with(|s| {
        for i in 0..3 {
            s.add_user(json!({"first_name": "U", "username": format!("u{i}@contoso.com")}));
        }
        s.traffic.faults.insert(1, Fault::Throttle(0.01));
        s.traffic.faults.insert(2, Fault::ServerError(503));
        s.traffic.faults.insert(4, Fault::Drop);
    });
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    assert_eq!(target.list().await.unwrap().len(), 3);
    let statuses: Vec<u16> = sim.with(|s| s.traffic.log.iter().map(|l| l.status).collect());
    assert_eq!(statuses, [429, 503, 200, 0, 200]);
    let stats = target.stats();
    assert_eq!(stats.retries.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(stats.requests.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[tokio::test]
async fn snipeit_updates_are_retried_and_give_up_after_max_attempts() {
    let sim = snipeit_sim();
    let id = sim.with(|s| s.add_user(json!({"first_name": "Ann", "username": "ann@contoso.com"})));
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let user = target
        .find("username", &json!("ann@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    let record = map(&mapping, &graph_user("ann@contoso.com", "Ann", "Sales"));
    let changes = [change(&mapping, "jobtitle", None, Some(json!("Engineer")))];
    sim.with(|s| {
        let next = s.traffic.next_number();
        s.traffic.faults.insert(next, Fault::ServerError(500));
    });
    target.update(&user, &changes, &record).await.unwrap();
    assert_eq!(
        sim.with(|s| s
            .traffic
            .requests("PATCH", &format!("/api/v1/users/{id}"))
            .len()),
        2
    );
    sim.with(|s| {
        let next = s.traffic.next_number();
        for n in next..next + 3 {
            s.traffic.faults.insert(n, Fault::ServerError(502));
        }
    });
    let error = target.update(&user, &changes, &record).await.unwrap_err();
    assert!(matches!(error, TargetError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("after 3 tries"), "{error}");
}

#[tokio::test]
async fn snipeit_create_is_not_sent_again_when_the_first_one_was_carried_out() {
    let sim = snipeit_sim();
    sim.with(|s| {
        s.traffic.faults.insert(1, Fault::DropAfter);
    });
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let record = map(&mapping, &graph_user("ann.lee@contoso.com", "Ann", "Sales"));
    let user = target.create(&record).await.unwrap();
    assert_eq!(user.id, "1");
    assert_eq!(
        requests(&sim),
        [
            ("POST".to_string(), "/api/v1/users".to_string()),
            ("GET".to_string(), "/api/v1/users".to_string()),
        ]
    );
    assert_eq!(sim.with(|s| s.users.len()), 1);
}

#[tokio::test]
async fn snipeit_create_is_sent_again_only_after_looking_for_the_user() {
    let sim = snipeit_sim();
    sim.with(|s| {
        s.traffic.faults.insert(1, Fault::Throttle(0.01));
        s.traffic.faults.insert(2, Fault::ServerError(503));
    });
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let record = map(&mapping, &graph_user("ann.lee@contoso.com", "Ann", "Sales"));
    let user = target.create(&record).await.unwrap();
    assert_eq!(user.data["username"], json!("ann.lee@contoso.com"));
    // A 429 says nothing was made: the create goes again at once; a 503 may hide a
    // create carried out, so the user is looked for first.
    let methods: Vec<String> = requests(&sim).into_iter().map(|(m, _)| m).collect();
    assert_eq!(methods, ["POST", "POST", "GET", "POST"]);
    assert_eq!(sim.with(|s| s.users.len()), 1);
    // With no tries left, the last failure is the answer.
    sim.with(|s| {
        let next = s.traffic.next_number();
        for n in next..next + 10 {
            s.traffic.faults.insert(n, Fault::ServerError(500));
        }
    });
    let other = map(&mapping, &graph_user("bo@contoso.com", "Bo", "Sales"));
    let error = target.create(&other).await.unwrap_err();
    assert!(matches!(error, TargetError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn snipeit_wrong_token_is_unauthorized_and_never_quoted() {
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let mut config = snipeit_config(&sim);
    config.token = Some(Secret::literal("wrong-token-0123456789"));
    let target = RestTarget::with_policy(&config, &mapping, quick()).unwrap();
    let error = target.list().await.unwrap_err();
    assert!(error.stops_run(), "{error:?}");
    assert!(
        matches!(error, TargetError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("Unauthenticated."), "{error}");
    // A server that echoes the credentials gets them redacted.
    sim.with(|s| {
        s.traffic.faults.insert(
            2,
            Fault::Answer(
                403,
                "{\"message\": \"token wrong-token-0123456789 is not allowed\"}".to_string(),
            ),
        );
    });
    let error = target.list().await.unwrap_err();
    let said = format!("{error} {error:?}");
    assert!(!said.contains("wrong-token-0123456789"), "{said}");
    assert!(said.contains("[redacted]"), "{said}");
    assert_eq!(sim.with(|s| s.traffic.log.len()), 2);
}

#[tokio::test]
async fn snipeit_validation_errors_are_rejections_with_the_message() {
    let (sim, mapping, target) = snipeit();
    let mut user = graph_user("ann.lee@contoso.com", "Ann", "Sales");
    user["mail"] = json!("not an address");
    let record = map(&mapping, &user);
    match target.create(&record).await.unwrap_err() {
        TargetError::Rejected {
            status: 200,
            detail,
        } => {
            assert_eq!(detail, "email: The email must be a valid email address.");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.with(|s| s.users.len()), 0);
}

#[tokio::test]
async fn snipeit_create_of_an_existing_username_updates_that_user() {
    let sim = snipeit_sim();
    let id = sim.with(|s| {
        s.add_user(json!({
            "first_name": "Ann",
            "last_name": "Lee",
            "username": "ANN.LEE@contoso.com",
            "email": "ann.lee@contoso.com",
            "employee_num": "E1001",
            "jobtitle": "Intern",
            "phone": "+1 425 555 0100",
            "department_id": 5,
            "notes": "made by hand",
        }))
    });
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let record = map(&mapping, &graph_user("ann.lee@contoso.com", "Ann", "Sales"));
    let user = target.create(&record).await.unwrap();
    assert_eq!(user.id, id.to_string());
    let patch = sim.with(|s| {
        s.traffic.requests("PATCH", &format!("/api/v1/users/{id}"))[0]
            .body
            .clone()
    });
    // The notes are written on create only; the username matches regardless of case.
    assert_eq!(patch, Some(json!({"jobtitle": "Engineer"})));
    assert_eq!(sim.with(|s| s.users.len()), 1);
    assert_eq!(
        sim.with(|s| s.users[&id]["notes"].clone()),
        json!("made by hand")
    );
}

#[tokio::test]
async fn snipeit_department_names_are_resolved_once_per_run() {
    let sim = snipeit_sim();
    let text = r#"
version = 1
target = "snipeit"
match = "username"
active = { field = "activated", active = true, inactive = false }
[fields.first_name]
source = "givenName"
[fields.username]
source = "userPrincipalName"
[fields.activated]
source = "accountEnabled"
[fields.department]
source = "department"
"#;
    let mapping = compile("by-name.toml", text);
    let target = snipeit_target(&sim, &mapping);
    for upn in ["a@contoso.com", "b@contoso.com"] {
        let record = map(&mapping, &graph_user(upn, "A", "human resources"));
        target.create(&record).await.unwrap();
    }
    let departments = sim.with(|s| s.traffic.requests("GET", "/api/v1/departments").len());
    assert_eq!(departments, 1);
    let posted = sim.with(|s| {
        s.traffic.requests("POST", "/api/v1/users")[1]
            .body
            .clone()
            .unwrap()
    });
    assert_eq!(posted["department_id"], json!(4));
    assert!(posted.get("department").is_none());
    // Listed users carry the name again, so they compare equal.
    let listed = target.list().await.unwrap();
    assert_eq!(listed[0].data["department"], json!("Human Resources"));
    assert!(target.folds_case("department"));
    let unknown = map(&mapping, &graph_user("c@contoso.com", "C", "Logistics"));
    match target.create(&unknown).await.unwrap_err() {
        TargetError::Rejected { detail, .. } => {
            assert!(detail.contains("\"Logistics\""), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn snipeit_garbage_answers_are_errors_not_panics() {
    let sim = snipeit_sim();
    sim.with(|s| s.add_user(json!({"first_name": "A", "username": "a@contoso.com"})));
    let mapping = shipped("snipeit");
    let target = snipeit_target(&sim, &mapping);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let answers = [
        (200, "<html>Whoops</html>".to_string(), "not JSON"),
        (
            200,
            "{\"total\": 2, \"rows\": 5}".to_string(),
            "no list of users",
        ),
        (
            200,
            "{\"total\": 2, \"rows\": [17]}".to_string(),
            "not a JSON object",
        ),
        (
            200,
            "{\"total\": 2, \"rows\": [{\"username\": \"x\"}]}".to_string(),
            "has no `id`",
        ),
        (
            200,
            "{\"total\": 9, \"rows\": [{\"id\": 1}, {\"id\": 1}]}".to_string(),
            "repeats users",
        ),
        (200, deep, "not JSON"),
        (200, "\u{0}\u{1}\u{ff}".to_string(), "not JSON"),
        (418, "".to_string(), "no details"),
        (302, "".to_string(), "HTTP 302"),
    ];
    for (status, body, expected) in answers {
        sim.with(|s| {
            let next = s.traffic.next_number();
            s.traffic.faults.insert(next, Fault::Answer(status, body));
        });
        let error = target.list().await.unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
    // A find whose answer holds two exact matches is an error too.
    sim.with(|s| {
        let next = s.traffic.next_number();
        let two =
            "{\"rows\": [{\"id\": 1, \"username\": \"a\"}, {\"id\": 2, \"username\": \"A\"}]}";
        s.traffic
            .faults
            .insert(next, Fault::Answer(200, two.to_string()));
    });
    let error = target.find("username", &json!("a")).await.unwrap_err();
    assert!(
        error.to_string().contains("2 users have the same username"),
        "{error}"
    );
}

#[tokio::test]
async fn listing_can_be_turned_off() {
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let mut config = snipeit_config(&sim);
    config.list = false;
    let target = RestTarget::with_policy(&config, &mapping, quick()).unwrap();
    let error = target.list().await.unwrap_err();
    assert!(matches!(error, TargetError::Unsupported(_)), "{error:?}");
    assert!(requests(&sim).is_empty());
}

// ----- Entities: departments, locations, companies -----------------------------------------

/// A target on the Snipe-IT preset asking for pages of 1,000 (Snipe-IT answers at most 500).
fn snipeit_entities(sim: &SnipeItSim) -> RestTarget {
    let config = TargetConfig {
        page_size: 1000,
        ..snipeit_config(sim)
    };
    RestTarget::with_policy(&config, &shipped("snipeit"), quick()).unwrap()
}

#[tokio::test]
async fn snipeit_lists_departments_across_pages_capped_at_500() {
    let sim = snipeit_sim();
    sim.with(|s| {
        for i in 6..=1200 {
            s.add_department(&format!("Team {i:04}"));
        }
    });
    let target = snipeit_entities(&sim);
    let kinds: Vec<(String, bool, Option<usize>)> = target
        .entity_kinds()
        .into_iter()
        .map(|k| (k.name, k.creates, k.max_name))
        .collect();
    let expected = ["company", "department", "location"].map(|k| (k.to_string(), true, Some(255)));
    assert_eq!(kinds, expected);
    let departments = target.list_entities("department").await.unwrap();
    assert_eq!(departments.len(), 1200);
    let ids: Vec<String> = departments.iter().map(|d| d.id.clone()).collect();
    let expected: Vec<String> = (1..=1200).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(departments[1].name, "IT Operations");
    assert_eq!(departments[1199].name, "Team 1200");
    let pages: Vec<String> = sim.with(|s| {
        s.traffic
            .requests("GET", "/api/v1/departments")
            .iter()
            .map(|l| {
                format!(
                    "{} {} {}",
                    l.query["offset"], l.query["limit"], l.query["sort"]
                )
            })
            .collect()
    });
    assert_eq!(pages, ["0 1000 id", "500 1000 id", "1000 1000 id"]);
    assert_eq!(requests(&sim).len(), 3);
}

#[tokio::test]
async fn snipeit_creates_an_entity_and_lists_it_next_time() {
    let sim = snipeit_sim();
    let target = snipeit_entities(&sim);
    assert!(target.list_entities("location").await.unwrap().is_empty());
    let created = target.create_entity("location", "Berlin").await.unwrap();
    assert_eq!(created.name, "Berlin");
    let posted = sim.with(|s| {
        s.traffic.requests("POST", "/api/v1/locations")[0]
            .body
            .clone()
    });
    assert_eq!(posted, Some(json!({"name": "Berlin"})));
    assert_eq!(
        sim.with(|s| s.locations.get(&1).cloned()),
        Some("Berlin".to_string())
    );
    let listed = target.list_entities("location").await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&created));
    assert_eq!(created.id, "1");
    // Companies and departments the same way, each in its own table.
    let company = target.create_entity("company", "Contoso").await.unwrap();
    let department = target
        .create_entity("department", "Research")
        .await
        .unwrap();
    assert_eq!((company.id.as_str(), department.id.as_str()), ("1", "6"));
    assert_eq!(target.list_entities("company").await.unwrap(), [company]);
    assert!(
        target
            .list_entities("department")
            .await
            .unwrap()
            .contains(&department)
    );
}

#[tokio::test]
async fn snipeit_refuses_a_name_already_taken_with_its_message() {
    let sim = snipeit_sim();
    sim.with(|s| {
        s.add_company("Contoso");
        s.add_location("Berlin");
    });
    let target = snipeit_entities(&sim);
    match target
        .create_entity("company", "CONTOSO")
        .await
        .unwrap_err()
    {
        TargetError::Rejected { status, detail } => {
            assert_eq!(status, 200);
            assert_eq!(detail, "name: The name has already been taken.");
        }
        other => panic!("{other:?}"),
    }
    let error = target
        .create_entity("location", "berlin")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "HTTP 200: name: The name must be unique."
    );
    assert_eq!(sim.with(|s| (s.companies.len(), s.locations.len())), (1, 1));
    // A create is sent once, even when its answer is lost.
    sim.with(|s| {
        let next = s.traffic.next_number();
        s.traffic.faults.insert(next, Fault::DropAfter);
    });
    let error = target
        .create_entity("company", "Fabrikam")
        .await
        .unwrap_err();
    assert!(!matches!(error, TargetError::Rejected { .. }), "{error:?}");
    assert_eq!(
        sim.with(|s| s.traffic.requests("POST", "/api/v1/companies").len()),
        2
    );
    assert_eq!(sim.with(|s| s.companies.len()), 2);
}

#[tokio::test]
async fn snipeit_name_over_max_name_is_refused_without_a_request() {
    let sim = snipeit_sim();
    let target = snipeit_entities(&sim);
    let long = "é".repeat(256);
    let error = target.create_entity("department", &long).await.unwrap_err();
    assert!(matches!(error, TargetError::Unsupported(_)), "{error:?}");
    let said = error.to_string();
    assert!(
        said.contains("a department name may have at most 255 characters"),
        "{said}"
    );
    assert!(said.contains("has 256"), "{said}");
    assert!(said.contains("éééé"), "{said}");
    assert!(!said.contains(&long), "the name is shortened: {said}");
    assert!(requests(&sim).is_empty());
    // 255 characters (510 bytes) are taken.
    let longest = "é".repeat(255);
    let created = target.create_entity("department", &longest).await.unwrap();
    assert_eq!(created.name, longest);
}

#[tokio::test]
async fn snipeit_entity_names_are_read_without_html_escapes() {
    let sim = snipeit_sim();
    sim.with(|s| s.add_department("R&D"));
    let target = snipeit_entities(&sim);
    let departments = target.list_entities("department").await.unwrap();
    assert_eq!(departments.last().map(|d| d.name.as_str()), Some("R&D"));
    // Snipe-IT escapes it on the wire.
    sim.with(|s| {
        let next = s.traffic.next_number();
        s.traffic.faults.insert(
            next,
            Fault::Answer(
                200,
                "{\"total\": 1, \"rows\": [{\"id\": 9, \"name\": \"O&#039;Brien &amp; Sons\"}]}"
                    .to_string(),
            ),
        );
    });
    let companies = target.list_entities("company").await.unwrap();
    assert_eq!(companies[0].name, "O'Brien & Sons");
    assert_eq!(companies[0].id, "9");
    let created = target
        .create_entity("company", "Sales & <Marketing>")
        .await
        .unwrap();
    assert_eq!(created.name, "Sales & <Marketing>");
    let stored = sim.with(|s| s.companies.get(&1).cloned());
    assert_eq!(stored.as_deref(), Some("Sales & <Marketing>"));
}

#[tokio::test]
async fn snipeit_entity_listing_that_repeats_or_breaks_off_fails() {
    let sim = snipeit_sim();
    let target =
        RestTarget::with_policy(&snipeit_config(&sim), &shipped("snipeit"), quick()).unwrap();
    let page =
        "{\"total\": 5, \"rows\": [{\"id\": 1, \"name\": \"A\"}, {\"id\": 2, \"name\": \"B\"}]}";
    let broken = [
        (
            [page, page],
            "page 2 of the department list repeats department entries",
        ),
        (
            [page, "{\"total\": 5, \"rows\": 3}"],
            "answer has no list at `rows`",
        ),
        (
            [page, "{\"total\": 5, \"rows\": [{\"name\": \"C\"}]}"],
            "a department has no `id`",
        ),
        ([page, "<html>"], "not JSON"),
    ];
    for (answers, expected) in broken {
        sim.with(|s| {
            for (i, answer) in answers.iter().enumerate() {
                let at = s.traffic.next_number() + i as u64;
                s.traffic
                    .faults
                    .insert(at, Fault::Answer(200, answer.to_string()));
            }
        });
        let error = target.list_entities("department").await.unwrap_err();
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
    // Unknown kinds and kinds without a create are refused without a request.
    let before = requests(&sim).len();
    let error = target.list_entities("cost_center").await.unwrap_err();
    assert!(
        error.to_string().contains("has no [entities.cost_center]"),
        "{error}"
    );
    let error = target.create_entity("cost_center", "X").await.unwrap_err();
    assert!(matches!(error, TargetError::Unsupported(_)), "{error:?}");
    assert_eq!(requests(&sim).len(), before);
}

#[tokio::test]
async fn snipeit_users_are_read_with_their_location_company_and_manager_ids() {
    let sim = snipeit_sim();
    sim.with(|s| {
        let location = s.add_location("Berlin");
        let company = s.add_company("Contoso");
        let boss = s.add_user(json!({"first_name": "Bo", "username": "bo@contoso.com"}));
        s.add_user(json!({
            "first_name": "Ann",
            "username": "ann@contoso.com",
            "location_id": location,
            "company_id": company,
            "manager_id": boss,
        }));
    });
    let target = snipeit_entities(&sim);
    let users = target.list().await.unwrap();
    assert_eq!(users.len(), 2);
    let ann = &users[1].data;
    assert_eq!(ann["location_id"], json!(1));
    assert_eq!(ann["company_id"], json!(1));
    assert_eq!(ann["manager_id"], json!(1));
    for field in ["location_id", "company_id", "manager_id"] {
        assert!(
            !users[0].data.contains_key(field),
            "{field}: {:?}",
            users[0].data
        );
    }
}

#[test]
fn a_bad_entities_section_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let text = format!(
        "{}\n[entities.department]\nurl = \"/api/v1/departments?p={{{{pgae}}}}\"\npaging = \"pages\"\n\
         create = {{ url = \"/api/v1/departments\", body = '{{\"name\": {{{{json value}}}}}}' }}\n",
        generic_api("page")
    );
    let path = write(dir.path(), "entities.toml", &text);
    let said = RestTarget::new(&templates_config(&sim, path.clone()), &mapping)
        .unwrap_err()
        .to_string();
    let name = path.display().to_string();
    // Each mistake at the line and column (in characters, from 1) where it starts.
    let place_of = |needle: &str| {
        let (line, text) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .unwrap();
        let column = text[..text.find(needle).unwrap()].chars().count() + 1;
        format!("{name}:{}:{column}", line + 1)
    };
    for (needle, message) in [
        (
            "{{pgae}}",
            "[entities.department] url: unknown variable `pgae`",
        ),
        ("\"pages\"", "unknown paging `pages`"),
        (
            "{{json value}}",
            "[entities.department.create] body: unknown variable `value`",
        ),
    ] {
        let place = format!("{}: error: {message}", place_of(needle));
        assert!(said.contains(&place), "{place}\n{said}");
    }
    assert!(said.contains("did you mean `page`?"), "{said}");
    assert!(requests(&sim).is_empty());
}

// ----- API descriptions written by the admin -------------------------------------------------

/// A description of the simulator's users with page numbers or cursors, and a deactivation
/// of its own.
fn generic_api(paging: &str) -> String {
    let list = match paging {
        "page" => {
            "url = \"/api/v1/users?page={{page}}&limit={{limit}}&sort=id&order=asc\"\npaging = \"page\"\ntotal = \"total\""
        }
        "cursor" => {
            "url = \"/api/v1/users?cursor={{cursor}}&limit={{limit}}&sort=id&order=asc\"\npaging = \"cursor\"\nnext = \"next_cursor\""
        }
        _ => {
            "url = \"/api/v1/users?cursor=&limit={{limit}}&sort=id&order=asc\"\npaging = \"next\"\nnext = \"links.next\""
        }
    };
    format!(
        r#"name = "People API"

[user]
fields = {{ department_id = "department.id" }}
unescape_html = true

[answer]
error = {{ path = "status", equals = "error" }}
message = "messages"

[list]
{list}
items = "rows"

[find]
url = "/api/v1/users?search={{{{value}}}}"
items = "rows"

[create]
method = "POST"
url = "/api/v1/users"
body = '{{"first_name": "{{{{record.first_name}}}}", "username": "{{{{record.username}}}}"}}'
user = "payload"

[update]
method = "PUT"
url = "/api/v1/users/{{{{id}}}}"
body = "{{{{json changes}}}}"

[deactivate]
method = "PATCH"
url = "/api/v1/users/{{{{id}}}}"
body = '{{"activated": false, "notes": "left {{{{user.username}}}}"}}'

[reactivate]
method = "PATCH"
url = "/api/v1/users/{{{{id}}}}"
body = '{{"activated": true, "notes": "back"}}'
"#
    )
}

fn templates_config(sim: &SnipeItSim, path: std::path::PathBuf) -> TargetConfig {
    TargetConfig {
        api: Some(RestApi::Templates(path)),
        ..snipeit_config(sim)
    }
}

#[tokio::test]
async fn a_templates_file_pages_by_page_number_cursor_or_link() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = shipped("snipeit");
    for paging in ["page", "cursor", "next"] {
        let sim = snipeit_sim();
        sim.with(|s| {
            for i in 0..5 {
                s.add_user(json!({"first_name": "U", "username": format!("u{i}@contoso.com")}));
            }
        });
        let path = write(dir.path(), &format!("{paging}.toml"), &generic_api(paging));
        let target =
            RestTarget::with_policy(&templates_config(&sim, path), &mapping, quick()).unwrap();
        assert!(
            target
                .describe()
                .starts_with("People API at http://127.0.0.1:")
        );
        let users = target.list().await.unwrap();
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3", "4", "5"], "{paging}");
        let pages: Vec<BTreeMap<String, String>> =
            sim.with(|s| s.traffic.log.iter().map(|l| l.query.clone()).collect());
        assert_eq!(pages.len(), 3, "{paging}: {pages:?}");
        match paging {
            "page" => {
                let numbers: Vec<&str> = pages.iter().map(|q| q["page"].as_str()).collect();
                assert_eq!(numbers, ["1", "2", "3"]);
            }
            _ => {
                assert_eq!(pages[0]["cursor"], "");
                assert_ne!(pages[1]["cursor"], pages[2]["cursor"]);
            }
        }
    }
}

#[tokio::test]
async fn a_templates_file_creates_updates_deactivates_and_reactivates_its_own_way() {
    let dir = tempfile::tempdir().unwrap();
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let path = write(dir.path(), "api.toml", &generic_api("page"));
    let target = RestTarget::with_policy(&templates_config(&sim, path), &mapping, quick()).unwrap();
    let record = map(
        &mapping,
        &graph_user("ann \"the\" lee@contoso.com", "Ann", "Sales"),
    );
    let user = target.create(&record).await.unwrap();
    let posted = sim.with(|s| s.traffic.log[0].body.clone());
    assert_eq!(
        posted,
        Some(json!({"first_name": "Ann", "username": "ann \"the\" lee@contoso.com"}))
    );
    let changes = [change(&mapping, "jobtitle", None, Some(json!("Lead")))];
    target.update(&user, &changes, &record).await.unwrap();
    let deactivation = [change(
        &mapping,
        "activated",
        Some(json!(true)),
        Some(json!(false)),
    )];
    target.update(&user, &deactivation, &record).await.unwrap();
    let reactivation = [change(
        &mapping,
        "activated",
        Some(json!(false)),
        Some(json!(true)),
    )];
    target.update(&user, &reactivation, &record).await.unwrap();
    let writes: Vec<(String, Option<Value>)> = sim.with(|s| {
        s.traffic.log[1..]
            .iter()
            .map(|l| (l.method.clone(), l.body.clone()))
            .collect()
    });
    assert_eq!(
        writes,
        [
            ("PUT".to_string(), Some(json!({"jobtitle": "Lead"}))),
            (
                "PATCH".to_string(),
                Some(json!({"activated": false, "notes": "left ann \"the\" lee@contoso.com"}))
            ),
            (
                "PATCH".to_string(),
                Some(json!({"activated": true, "notes": "back"}))
            ),
        ]
    );
    assert_eq!(sim.with(|s| s.users[&1]["activated"].clone()), json!(true));
}

#[test]
fn a_bad_templates_file_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let text = generic_api("page")
        .replace(
            "url = \"/api/v1/users/{{id}}\"",
            "url = \"/api/v1/users/{{idd}}\"",
        )
        .replace("method = \"PATCH\"", "method = \"PATCHY\"");
    let path = write(dir.path(), "broken.toml", &text);
    let error = RestTarget::new(&templates_config(&sim, path.clone()), &mapping).unwrap_err();
    let said = error.to_string();
    let name = path.display().to_string();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        said.contains(&format!("{name}:{}:", line_of("{{idd}}"))),
        "{said}"
    );
    assert!(said.contains("unknown variable `idd`"), "{said}");
    assert!(
        said.contains(&format!("{name}:{}:", line_of("PATCHY"))),
        "{said}"
    );
    assert!(said.contains("unknown method `PATCHY`"), "{said}");
    // Broken TOML, and a missing file.
    let path = write(dir.path(), "not-toml.toml", "[list]\nurl = \"/u\"\n[list\n");
    let said = RestTarget::new(&templates_config(&sim, path.clone()), &mapping)
        .unwrap_err()
        .to_string();
    assert!(said.contains(&format!("{}:3:", path.display())), "{said}");
    let missing = dir.path().join("missing.toml");
    let said = RestTarget::new(&templates_config(&sim, missing), &mapping)
        .unwrap_err()
        .to_string();
    assert!(said.contains("cannot read the API description"), "{said}");
    assert!(requests(&sim).is_empty());
}

// ----- Oomnitza ----------------------------------------------------------------------------

fn oomnitza_config(sim: &OomnitzaSim) -> TargetConfig {
    TargetConfig {
        kind: TargetKind::Oomnitza,
        url: Url::parse(&sim.url()).unwrap(),
        token: Some(Secret::literal(oomnitza::TOKEN)),
        sync_field: None,
        auth: TargetAuth::Header("Authorization2".to_string()),
        api: None,
        page_size: 2,
        list: true,
        batch_size: 500,
        max_attempts: 3,
        request_timeout: Duration::from_secs(10),
        rate_limit: None,
    }
}

fn oomnitza_target(sim: &OomnitzaSim, batch_size: usize) -> (OomnitzaTarget, Mapping) {
    let mapping = shipped("oomnitza");
    let config = TargetConfig {
        batch_size,
        ..oomnitza_config(sim)
    };
    let target = OomnitzaTarget::with_policy(&config, &mapping, quick()).unwrap();
    (target, mapping)
}

fn oomnitza_user(upn: &str) -> Value {
    json!({
        "userPrincipalName": upn,
        "accountEnabled": true,
        "givenName": "Ann",
        "surname": "Lee",
        "mail": upn,
        "mobilePhone": "+1 425 555 0101",
        "department": "IT Operations",
        "jobTitle": "Engineer",
        "employeeId": "E1001",
    })
}

/// A user as Oomnitza holds it, as the target would list it.
fn held(fields: Value) -> TargetUser {
    let data = fields.as_object().unwrap().clone();
    TargetUser {
        id: data["USER"].as_str().unwrap().to_string(),
        data,
        etag: None,
    }
}

#[tokio::test]
async fn oomnitza_lists_across_pages_and_finds_by_the_sync_field() {
    let sim = Oomnitza::start().unwrap();
    sim.with(|s| {
        for i in 0..4 {
            s.add_user(json!({"USER": format!("u{i}@contoso.com"), "STATUS": "Active"}));
        }
        s.add_user(json!({"user": "o'neil@contoso.com", "email": "o'neil@contoso.com"}));
    });
    let (target, mapping) = oomnitza_target(&sim, 500);
    assert!(
        target
            .describe()
            .starts_with("Oomnitza at http://127.0.0.1:")
    );
    let users = target.list().await.unwrap();
    assert_eq!(users.len(), 5);
    // Keys that differ only in case are read as the mapping's names.
    assert_eq!(users[4].id, "o'neil@contoso.com");
    assert_eq!(users[4].data["EMAIL"], json!("o'neil@contoso.com"));
    let email = mapping.field("EMAIL").unwrap();
    assert_eq!(
        email.get(&users[4].data),
        Some(&json!("o'neil@contoso.com"))
    );
    let pages: Vec<String> = sim.with(|s| {
        s.traffic
            .log
            .iter()
            .map(|l| format!("{} {}", l.query["limit"], l.query["skip"]))
            .collect()
    });
    assert_eq!(pages, ["2 0", "2 2", "2 4"]);
    let found = target
        .find("USER", &json!("O'Neil@contoso.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "o'neil@contoso.com");
    let filter = sim.with(|s| s.traffic.log.last().unwrap().query["filter"].clone());
    assert_eq!(filter, "(USER eq 'O''Neil@contoso.com')");
    assert!(
        target
            .find("USER", &json!("nobody@contoso.com"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(target.folds_case("USER") && target.folds_case("EMAIL"));
    assert!(!target.folds_case("FIRST_NAME"));
}

#[tokio::test]
async fn oomnitza_batch_is_one_upload_then_a_finalize() {
    let sim = Oomnitza::start().unwrap();
    let bob = json!({"USER": "bob@contoso.com", "JOB_TITLE": "Engineer", "POSITION": "Manager", "STATUS": "Active"});
    let carl = json!({"USER": "carl@contoso.com", "STATUS": "Active"});
    sim.with(|s| {
        s.add_user(bob.clone());
        s.add_user(carl.clone());
    });
    let (target, mapping) = oomnitza_target(&sim, 500);
    assert_eq!(target.batch_size(), Some(500));
    let ann = map(&mapping, &oomnitza_user("ann.lee@contoso.com"));
    let bob_record = map(&mapping, &oomnitza_user("bob@contoso.com"));
    let carl_record = map(&mapping, &oomnitza_user("carl@contoso.com"));
    let writes = [
        Write::Create {
            record: ann.clone(),
        },
        Write::Update {
            user: held(bob),
            changes: vec![change(
                &mapping,
                "JOB_TITLE",
                Some(json!("Engineer")),
                Some(json!("Lead")),
            )],
            record: bob_record,
        },
        Write::Update {
            user: held(carl),
            changes: vec![change(
                &mapping,
                "STATUS",
                Some(json!("Active")),
                Some(json!("Inactive")),
            )],
            record: carl_record,
        },
    ];
    let outcomes = target.write_batch(&writes).await;
    let ids: Vec<Option<String>> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        ids,
        [
            Some("ann.lee@contoso.com".to_string()),
            Some("bob@contoso.com".to_string()),
            Some("carl@contoso.com".to_string())
        ]
    );
    let log: Vec<(String, String, Option<Value>)> = sim.with(|s| {
        s.traffic
            .log
            .iter()
            .map(|l| (l.method.clone(), l.path.clone(), l.body.clone()))
            .collect()
    });
    assert_eq!(log.len(), 2, "{log:?}");
    let upload = log[0].2.clone().unwrap();
    let portion = upload["portion"].as_str().unwrap().to_string();
    assert_eq!(
        uuid::Uuid::parse_str(&portion).unwrap().get_version_num(),
        4
    );
    assert_eq!(
        upload,
        json!({
            "records": [
                {
                    "USER": "ann.lee@contoso.com",
                    "FIRST_NAME": "Ann",
                    "LAST_NAME": "Lee",
                    "EMAIL": "ann.lee@contoso.com",
                    "PHONE": "+1 425 555 0101",
                    "DEPARTMENT": "IT Operations",
                    "JOB_TITLE": "Engineer",
                    "EMPLOYEE_ID": "E1001",
                    "POSITION": "Employee",
                    "PERMISSIONS_ID": 25,
                    "STATUS": "Active",
                },
                {"USER": "bob@contoso.com", "JOB_TITLE": "Lead"},
                {"USER": "carl@contoso.com", "STATUS": "Inactive"},
            ],
            "sync_field": "USER",
            "portion": portion,
            "data_type": "users",
            "insert_only": false,
            "update_only": false,
        })
    );
    assert_eq!(log[0].1, "/api/v3/bulk");
    assert_eq!(log[1].1, format!("/api/v3/bulk/{portion}/finalize"));
    sim.with(|s| {
        assert_eq!(s.users.len(), 3);
        let bob = s.user("USER", "bob@contoso.com").unwrap();
        assert_eq!(bob["JOB_TITLE"], json!("Lead"));
        assert_eq!(bob["POSITION"], json!("Manager"));
        assert_eq!(
            s.user("USER", "carl@contoso.com").unwrap()["STATUS"],
            json!("Inactive")
        );
        assert_eq!(
            s.user("USER", "ann.lee@contoso.com").unwrap()["PERMISSIONS_ID"],
            json!(25)
        );
    });
    assert_eq!(
        target
            .stats()
            .writes
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn oomnitza_batches_follow_the_batch_size_and_updates_alone_create_nobody() {
    let sim = Oomnitza::start().unwrap();
    sim.with(|s| {
        s.add_user(json!({"USER": "a@contoso.com", "STATUS": "Active"}));
        s.add_user(json!({"USER": "b@contoso.com", "STATUS": "Active"}));
    });
    let (target, mapping) = oomnitza_target(&sim, 2);
    let deactivate = |upn: &str| Write::Update {
        user: held(json!({"USER": upn, "STATUS": "Active"})),
        changes: vec![change(
            &mapping,
            "STATUS",
            Some(json!("Active")),
            Some(json!("Inactive")),
        )],
        record: map(&mapping, &oomnitza_user(upn)),
    };
    let writes = [
        deactivate("a@contoso.com"),
        deactivate("b@contoso.com"),
        deactivate("gone@contoso.com"),
    ];
    let outcomes = target.write_batch(&writes).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let uploads: Vec<Value> = sim.with(|s| {
        s.traffic
            .requests("POST", "/api/v3/bulk")
            .iter()
            .map(|l| l.body.clone().unwrap())
            .collect()
    });
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0]["records"].as_array().unwrap().len(), 2);
    assert_eq!(uploads[1]["records"].as_array().unwrap().len(), 1);
    assert!(uploads.iter().all(|u| u["update_only"] == json!(true)));
    assert_ne!(uploads[0]["portion"], uploads[1]["portion"]);
    sim.with(|s| {
        assert_eq!(s.users.len(), 2);
        assert!(s.users.iter().all(|u| u["STATUS"] == json!("Inactive")));
    });
}

#[tokio::test]
async fn oomnitza_refused_records_fail_alone() {
    let sim = Oomnitza::start().unwrap();
    let (target, mapping) = oomnitza_target(&sim, 500);
    let mut bad = oomnitza_user("bad@contoso.com");
    bad["mail"] = json!("not-an-address");
    let writes = [
        Write::Create {
            record: map(&mapping, &bad),
        },
        Write::Create {
            record: map(&mapping, &oomnitza_user("good@contoso.com")),
        },
    ];
    let outcomes = target.write_batch(&writes).await;
    match &outcomes[0] {
        Err(TargetError::Rejected { detail, .. }) => assert!(detail.contains("EMAIL"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        outcomes[1].as_ref().unwrap().as_deref(),
        Some("good@contoso.com")
    );
    sim.with(|s| assert_eq!(s.users.len(), 1));
}

#[tokio::test]
async fn oomnitza_upload_and_finalize_are_resent_into_the_same_portion() {
    let sim = Oomnitza::start().unwrap();
    sim.with(|s| {
        s.traffic.faults.insert(1, Fault::DropAfter);
        s.traffic.faults.insert(3, Fault::Throttle(0.01));
        s.traffic.faults.insert(4, Fault::DropAfter);
    });
    let (target, mapping) = oomnitza_target(&sim, 500);
    let writes = [Write::Create {
        record: map(&mapping, &oomnitza_user("ann.lee@contoso.com")),
    }];
    let outcomes = target.write_batch(&writes).await;
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    let log: Vec<(String, u16)> = sim.with(|s| {
        s.traffic
            .log
            .iter()
            .map(|l| (l.path.clone(), l.status))
            .collect()
    });
    let portion = sim.with(|s| s.portions.keys().next().unwrap().clone());
    let finalize = format!("/api/v3/bulk/{portion}/finalize");
    assert_eq!(
        log,
        [
            ("/api/v3/bulk".to_string(), 0),
            ("/api/v3/bulk".to_string(), 200),
            (finalize.clone(), 429),
            (finalize.clone(), 0),
            (finalize, 200),
        ]
    );
    sim.with(|s| {
        assert_eq!(s.portions.len(), 1);
        assert_eq!(s.users.len(), 1);
    });
    assert_eq!(
        target
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[tokio::test]
async fn oomnitza_single_writes_go_through_the_bulk_api() {
    let sim = Oomnitza::start().unwrap();
    let (target, mapping) = oomnitza_target(&sim, 500);
    let record = map(&mapping, &oomnitza_user("ann.lee@contoso.com"));
    let user = target.create(&record).await.unwrap();
    assert_eq!(user.id, "ann.lee@contoso.com");
    let mut moved = oomnitza_user("ann.lee@contoso.com");
    moved["jobTitle"] = json!("Lead");
    let record = map(&mapping, &moved);
    let changes = [change(
        &mapping,
        "JOB_TITLE",
        Some(json!("Engineer")),
        Some(json!("Lead")),
    )];
    target.update(&user, &changes, &record).await.unwrap();
    let uploads: Vec<Value> = sim.with(|s| {
        s.traffic
            .requests("POST", "/api/v3/bulk")
            .iter()
            .map(|l| l.body.clone().unwrap())
            .collect()
    });
    assert_eq!(uploads[0]["update_only"], json!(false));
    assert_eq!(uploads[1]["update_only"], json!(true));
    assert_eq!(
        uploads[1]["records"],
        json!([{"USER": "ann.lee@contoso.com", "JOB_TITLE": "Lead"}])
    );
    let listed = target.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_same(&mapping, &record, &listed[0]);
}

#[tokio::test]
async fn oomnitza_create_whose_answer_was_lost_is_found() {
    let sim = Oomnitza::start().unwrap();
    sim.with(|s| {
        s.traffic.faults.insert(2, Fault::DropAfter);
        s.traffic.faults.insert(3, Fault::ServerError(503));
        s.traffic.faults.insert(4, Fault::ServerError(503));
    });
    let (target, mapping) = oomnitza_target(&sim, 500);
    let record = map(&mapping, &oomnitza_user("ann.lee@contoso.com"));
    let user = target.create(&record).await.unwrap();
    assert_eq!(user.id, "ann.lee@contoso.com");
    let last = sim.with(|s| {
        s.traffic
            .log
            .last()
            .map(|l| (l.method.clone(), l.path.clone()))
    });
    assert_eq!(last, Some(("GET".to_string(), "/api/v3/users".to_string())));
    sim.with(|s| assert_eq!(s.users.len(), 1));
}

#[tokio::test]
async fn oomnitza_wrong_token_is_unauthorized_for_every_write() {
    let sim = Oomnitza::start().unwrap();
    let mapping = shipped("oomnitza");
    let mut config = oomnitza_config(&sim);
    config.token = Some(Secret::literal("not-the-token-42"));
    let target = OomnitzaTarget::with_policy(&config, &mapping, quick()).unwrap();
    assert!(target.list().await.unwrap_err().stops_run());
    let writes = [
        Write::Create {
            record: map(&mapping, &oomnitza_user("a@contoso.com")),
        },
        Write::Create {
            record: map(&mapping, &oomnitza_user("b@contoso.com")),
        },
    ];
    let outcomes = target.write_batch(&writes).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Err(TargetError::Unauthorized { status: 401, .. }))),
        "{outcomes:?}"
    );
    // One refused upload, no finalize.
    assert_eq!(sim.with(|s| s.traffic.log.len()), 2);
}

#[tokio::test]
async fn oomnitza_garbage_answers_are_errors_not_panics() {
    let sim = Oomnitza::start().unwrap();
    let (target, mapping) = oomnitza_target(&sim, 500);
    sim.with(|s| {
        s.traffic
            .faults
            .insert(1, Fault::Answer(200, "{\"users\": []}".to_string()));
        s.traffic
            .faults
            .insert(2, Fault::Answer(200, "[1, 2]".to_string()));
        s.traffic
            .faults
            .insert(4, Fault::Answer(200, "{\"errors\": 7".to_string()));
    });
    let error = target.list().await.unwrap_err();
    assert!(error.to_string().contains("no list of users"), "{error}");
    let error = target.list().await.unwrap_err();
    assert!(error.to_string().contains("not a JSON object"), "{error}");
    let writes = [Write::Create {
        record: map(&mapping, &oomnitza_user("a@contoso.com")),
    }];
    let outcomes = target.write_batch(&writes).await;
    match &outcomes[0] {
        Err(TargetError::Malformed(detail)) => assert!(detail.contains("not JSON"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

// ----- through the sync engine -------------------------------------------------------------

/// A config reading the Graph simulator and writing to `target_lines`' target.
fn engine_config(dir: &std::path::Path, graph: &GraphSim, target_lines: &str) -> Config {
    let url = graph.url();
    let text = format!(
        "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\ndomain = {url}\n\
         [target]\n{target_lines}\n[sync]\ndefault_role = 25\ndefault_position = Employee\n",
        graph_sim::TENANT_ID,
        graph_sim::CLIENT_ID,
        graph_sim::SECRET,
    );
    let path = write(dir, "userload.ini", &text);
    config::load(&path).unwrap_or_else(|e| panic!("{e}")).config
}

/// A Snipe-IT simulator's `[target]` lines.
fn snipeit_lines(sim: &SnipeItSim) -> String {
    format!(
        "type = rest\npreset = snipeit\nurl = {}\ntoken = {}",
        sim.url(),
        snipeit::TOKEN
    )
}

/// The Graph simulator with 30 users, and in a fresh folder a config that syncs them to the
/// target of `target_lines`, 7 users a page, with the config's mapping.
fn nightly(target_lines: &str) -> (GraphSim, tempfile::TempDir, Config, Mapping) {
    let graph = GraphSim::start(Tenant::synthetic(30, 7)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines = format!("{target_lines}\npage_size = 7");
    let config = engine_config(dir.path(), &graph, &lines);
    let mapping = mapping::load(&config).unwrap();
    (graph, dir, config, mapping)
}

/// One run with the target the config names; the run's outcome and the target's writes.
fn engine_run(config: &Config, mapping: &Mapping) -> (Outcome, u64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let target: std::sync::Arc<dyn userload::targets::Target> =
            userload::targets::connect(config, mapping).unwrap().into();
        let mut state = State::open(&config.sync.state, "test").unwrap();
        let owned = state.owned().unwrap();
        let options = SyncOptions {
            allow_deactivations: None,
            sync_time: SYNC_TIME.into(),
            last_read: None,
            reconcile: None,
            ..SyncOptions::default()
        };
        let outcome = engine::sync(
            config,
            mapping,
            &target,
            &owned,
            Some(&mut state),
            &options,
            &StopSignal::default(),
        )
        .await
        .unwrap();
        let writes = target
            .stats()
            .writes
            .load(std::sync::atomic::Ordering::Relaxed);
        (outcome, writes)
    })
}

#[test]
fn a_second_night_writes_nothing_to_snipeit_and_a_change_sends_one_field() {
    let snipe = snipeit_sim();
    let (graph, _dir, config, mapping) = nightly(&snipeit_lines(&snipe));
    let (first, _) = engine_run(&config, &mapping);
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert!(first.counts.created > 10, "{:?}", first.counts);
    assert_eq!(snipe.with(|s| s.users.len() as i64), first.counts.created);
    let (second, writes) = engine_run(&config, &mapping);
    assert_eq!(writes, 0, "{:?}", second.plan);
    assert_eq!(second.counts.unchanged, first.counts.created);
    // One changed job title: one PATCH with that field alone.
    let id = graph.with(|g| g.tenant.ids()[0].clone());
    graph.with(|g| {
        g.tenant
            .update(&id, json!({"jobTitle": "Night & Day <Lead>"}))
    });
    let before = snipe.with(|s| s.traffic.writes());
    let (third, writes) = engine_run(&config, &mapping);
    assert_eq!((third.counts.updated, writes), (1, 1));
    let patch = snipe.with(|s| {
        assert_eq!(s.traffic.writes(), before + 1);
        s.traffic
            .log
            .iter()
            .rev()
            .find(|l| l.method == "PATCH")
            .unwrap()
            .body
            .clone()
    });
    assert_eq!(patch, Some(json!({"jobtitle": "Night & Day <Lead>"})));
    let (_, writes) = engine_run(&config, &mapping);
    assert_eq!(writes, 0);
}

#[test]
fn a_second_night_writes_nothing_to_oomnitza_and_a_departure_is_one_upload() {
    let oomnitza = Oomnitza::start().unwrap();
    let lines = format!(
        "type = oomnitza\nurl = {}\ntoken = {}",
        oomnitza.url(),
        oomnitza::TOKEN
    );
    let (graph, _dir, config, mapping) = nightly(&lines);
    let (first, writes) = engine_run(&config, &mapping);
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert!(first.counts.created > 10, "{:?}", first.counts);
    // Everyone in one upload and its finalize.
    assert_eq!(writes, 2);
    assert_eq!(
        oomnitza.with(|s| s.users.len() as i64),
        first.counts.created
    );
    let (second, writes) = engine_run(&config, &mapping);
    assert_eq!(writes, 0, "{:?}", second.plan);
    let (id, upn) = graph.with(|g| {
        let user = g
            .tenant
            .users()
            .find(|u| u["accountEnabled"] == true)
            .unwrap();
        (
            user["id"].as_str().unwrap().to_string(),
            user["userPrincipalName"].clone(),
        )
    });
    graph.with(|g| g.tenant.set_enabled(&id, false));
    let (third, writes) = engine_run(&config, &mapping);
    assert_eq!((third.counts.deactivated, writes), (1, 2));
    let upload = oomnitza.with(|s| {
        s.traffic
            .requests("POST", "/api/v3/bulk")
            .last()
            .unwrap()
            .body
            .clone()
            .unwrap()
    });
    assert_eq!(
        upload["records"],
        json!([{"USER": upn, "STATUS": "Inactive"}])
    );
    assert_eq!(upload["update_only"], json!(true));
}

#[tokio::test]
async fn next_links_resolve_against_the_page_and_stay_on_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let sim = snipeit_sim();
    let mapping = shipped("snipeit");
    let path = write(dir.path(), "api.toml", &generic_api("next"));
    let target = RestTarget::with_policy(&templates_config(&sim, path), &mapping, quick()).unwrap();
    sim.with(|s| {
        s.add_user(json!({"first_name": "B", "username": "b@contoso.com"}));
        let first = "{\"rows\": [{\"id\": 7}], \"links\": {\"next\": \"users?offset=1&cursor=x\"}}";
        s.traffic
            .faults
            .insert(1, Fault::Answer(200, first.to_string()));
    });
    let users = target.list().await.unwrap();
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["7", "1"]);
    let second = sim.with(|s| {
        (
            s.traffic.log[1].path.clone(),
            s.traffic.log[1].query.clone(),
        )
    });
    assert_eq!(second.0, "/api/v1/users");
    assert_eq!(second.1["cursor"], "x");
    // A link to another host is refused before any request goes there.
    sim.with(|s| {
        let next = s.traffic.next_number();
        let away =
            "{\"rows\": [{\"id\": 7}], \"links\": {\"next\": \"http://evil.example/steal\"}}";
        s.traffic
            .faults
            .insert(next, Fault::Answer(200, away.to_string()));
    });
    let error = target.list().await.unwrap_err();
    assert!(error.to_string().contains("points away"), "{error}");
    assert_eq!(sim.with(|s| s.traffic.log.len()), 3);
}

#[test]
fn check_reaches_snipeit_through_the_preset_and_never_prints_the_token() {
    let graph = GraphSim::start(Tenant::synthetic(5, 3)).unwrap();
    let snipe = snipeit_sim();
    snipe.with(|s| s.add_user(json!({"first_name": "A", "username": "a@contoso.com"})));
    let dir = tempfile::tempdir().unwrap();
    engine_config(dir.path(), &graph, &snipeit_lines(&snipe));
    let (code, stdout, stderr) = outcome(&userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "✓ target: Snipe-IT at {}/ answers; 1 users listed",
            snipe.url()
        )),
        "{stdout}"
    );
    snipe.with(|s| s.token = "another-token".to_string());
    let (code, stdout, stderr) = outcome(&userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("✗ target:") && stdout.contains("refused the credentials (HTTP 401)"),
        "{stdout}"
    );
    assert!(!format!("{stdout}{stderr}").contains(snipeit::TOKEN));
}
