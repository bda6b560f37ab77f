//! The planner with several match keys (`match = ["employee_num", "email", "username"]`):
//! target users already there are taken over key by key, never guessed.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use userload::config::Mode;
use userload::diag::SourceText;
use userload::mapping::{self, Context, Mapping, Options};
use userload::state::{Owned, OwnedUsers};
use userload::sync::plan::{
    Early, EarlyCreates, Listed, Matched, Plan, PlanOptions, SourceUser, UpdateKind, plan,
};
use userload::targets::TargetUser;

const MAPPING: &str = r#"
version = 1
target = "rest"
match = ["employee_num", "email", "username"]
active = { field = "activated", active = true, inactive = false }
[fields.username]
source = "userPrincipalName"
[fields.email]
source = "mail"
[fields.employee_num]
source = "employeeId"
[fields.activated]
source = "accountEnabled"
[fields.jobtitle]
source = "jobTitle"
"#;

fn compile(text: &str) -> Mapping {
    mapping::compile_source(&SourceText::new("m.toml", text), Options::default()).unwrap()
}

fn mapping() -> Mapping {
    compile(MAPPING)
}

fn options() -> PlanOptions {
    PlanOptions {
        mode: Mode::CreateUpdate,
        deactivate: true,
        create_disabled: false,
        // username, email, employee_num, activated, jobtitle
        folds_case: vec![true, true, false, false, false],
        partial_view: false,
        reconcile: false,
    }
}

/// An Entra user: its object id, principal name, mail and employee id (`""`: none).
fn entra(m: &Mapping, id: &str, upn: &str, mail: &str, employee: &str) -> SourceUser {
    let mut user =
        json!({"id": id, "userPrincipalName": upn, "accountEnabled": true, "jobTitle": "Eng"});
    if !mail.is_empty() {
        user["mail"] = json!(mail);
    }
    if !employee.is_empty() {
        user["employeeId"] = json!(employee);
    }
    let settings = BTreeMap::new();
    let ctx = Context {
        settings: &settings,
        sync_time: "2024-01-01T00:00:00Z",
    };
    SourceUser::new(m, id.to_owned(), upn.to_owned(), m.map(&user, &ctx))
}

/// A target user: its id, username, email and employee number (`""`: none).
fn target(m: &Mapping, id: &str, username: &str, email: &str, employee: &str) -> Listed {
    let mut data: Map<String, Value> = Map::new();
    data.insert("username".into(), json!(username));
    data.insert("activated".into(), json!(true));
    data.insert("jobtitle".into(), json!("Eng"));
    if !email.is_empty() {
        data.insert("email".into(), json!(email));
    }
    if !employee.is_empty() {
        data.insert("employee_num".into(), json!(employee));
    }
    let user = TargetUser {
        id: id.to_owned(),
        data,
        etag: None,
    };
    Listed::of(m, user)
}

fn counts(state: usize, employee: usize, email: usize, username: usize) -> Matched {
    Matched {
        by_state: state,
        by_key: vec![
            ("employee_num".into(), employee),
            ("email".into(), email),
            ("username".into(), username),
        ],
    }
}

/// The target id each Entra user (by label) is updated or remembered against.
fn linked(p: &Plan) -> Vec<(String, String)> {
    let mut links: Vec<(String, String)> = p
        .updates
        .iter()
        .map(|u| (u.label.clone(), u.user.id.clone()))
        .chain(p.remember.iter().map(|o| {
            let target = o.target_id.clone().unwrap_or_default();
            (o.entra_id.clone(), target)
        }))
        .collect();
    links.sort();
    links
}

fn reason_of<'p>(p: &'p Plan, label: &str) -> &'p str {
    p.skipped
        .iter()
        .find(|s| s.label == label)
        .map(|s| s.reason.as_str())
        .unwrap_or_else(|| panic!("{label} is not skipped: {:?}", p.skipped))
}

#[test]
fn existing_users_are_taken_over_by_the_first_key_that_finds_one() {
    let m = mapping();
    let listed = [
        // Found by employee number, though its e-mail differs.
        target(&m, "t1", "ann.old", "ann.old@x.com", "E1"),
        // No employee number in the target: found by e-mail.
        target(&m, "t2", "bob.csv", "bob@x.com", ""),
        // Found by user name alone.
        target(&m, "t3", "cy@x.com", "", ""),
    ];
    let sources = vec![
        entra(&m, "e1", "ann@x.com", "ann@x.com", "E1"),
        entra(&m, "e2", "bob@x.com", "bob@x.com", "E2"),
        entra(&m, "e3", "cy@x.com", "", "E3"),
        entra(&m, "e4", "dee@x.com", "dee@x.com", "E4"),
    ];
    let p = plan(&m, sources, &listed, &OwnedUsers::default(), options());
    assert_eq!(p.matched, counts(0, 1, 1, 1));
    assert_eq!(
        p.matched.to_string(),
        "0 by state, 1 by employee_num, 1 by email, 1 by username"
    );
    assert_eq!(
        linked(&p),
        [
            ("ann@x.com".to_owned(), "t1".to_owned()),
            ("bob@x.com".to_owned(), "t2".to_owned()),
            ("cy@x.com".to_owned(), "t3".to_owned()),
        ]
    );
    // What the takeover writes: the fields that differ, such as the missing employee number.
    let bob = p.updates.iter().find(|u| u.user.id == "t2").unwrap();
    let fields: Vec<&str> = bob.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(fields, ["username", "employee_num"]);
    assert_eq!(bob.key, "E2", "the first key stays the identity");
    // Nobody matched: created, keyed by the first key.
    assert_eq!(p.creates.len(), 1);
    assert_eq!(
        (p.creates[0].label.as_str(), p.creates[0].key.as_str()),
        ("dee@x.com", "E4")
    );
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(p.not_owned, 0);
}

#[test]
fn two_target_users_under_one_key_skip_the_user_naming_the_key_and_ids() {
    let m = mapping();
    let listed = [
        target(&m, "t1", "bob1", "bob@x.com", ""),
        target(&m, "t2", "bob2", "BOB@x.com", ""),
        target(&m, "t3", "cy1", "cy@x.com", ""),
        target(&m, "t4", "cy2", "cy@x.com", "E3"),
    ];
    let sources = vec![
        entra(&m, "e2", "bob@x.com", "bob@x.com", "E2"),
        // An earlier key that finds one user wins over a later one that finds two.
        entra(&m, "e3", "cy@x.com", "cy@x.com", "E3"),
    ];
    let p = plan(&m, sources, &listed, &OwnedUsers::default(), options());
    let reason = reason_of(&p, "bob@x.com");
    assert!(
        reason.contains("2 target users have email `bob@x.com` (t1, t2)"),
        "{reason}"
    );
    assert!(p.creates.is_empty());
    assert_eq!(linked(&p), [("cy@x.com".to_owned(), "t4".to_owned())]);
    assert_eq!(p.matched, counts(0, 1, 0, 0));
}

#[test]
fn a_target_user_claimed_by_two_entra_users_goes_to_neither() {
    let m = mapping();
    // Ann's employee number and Bob's e-mail both point at t1.
    let listed = [target(&m, "t1", "someone", "bob@x.com", "E1")];
    let sources = vec![
        entra(&m, "e1", "ann@x.com", "ann@x.com", "E1"),
        entra(&m, "e2", "bob@x.com", "bob@x.com", "E2"),
    ];
    let p = plan(&m, sources, &listed, &OwnedUsers::default(), options());
    let ann = reason_of(&p, "ann@x.com");
    assert!(
        ann.contains("target user t1") && ann.contains("bob@x.com"),
        "{ann}"
    );
    let bob = reason_of(&p, "bob@x.com");
    assert!(
        bob.contains("target user t1") && bob.contains("ann@x.com"),
        "{bob}"
    );
    // Neither is created nor linked; the target user is left as it is.
    assert!(p.creates.is_empty() && p.updates.is_empty() && p.remember.is_empty());
    assert_eq!(p.matched, counts(0, 0, 0, 0));
}

#[test]
fn a_state_link_wins_over_every_key() {
    let m = mapping();
    let listed = [
        target(&m, "t1", "ann@x.com", "ann@x.com", "E1"),
        target(&m, "t2", "other", "other@x.com", "E9"),
    ];
    let owned: OwnedUsers = [Owned {
        entra_id: "e1".into(),
        key: "E1".into(),
        target_id: Some("t1".into()),
        hash: None,
        active: true,
    }]
    .into_iter()
    .collect();
    let sources = vec![
        // Linked to t1 in the state, though its employee number is now t2's.
        entra(&m, "e1", "ann@x.com", "ann@x.com", "E9"),
        // Its e-mail is t1's, which the state gives to Ann.
        entra(&m, "e2", "bob@x.com", "ann@x.com", "E2"),
    ];
    let p = plan(&m, sources, &listed, &owned, options());
    assert_eq!(linked(&p), [("ann@x.com".to_owned(), "t1".to_owned())]);
    let bob = reason_of(&p, "bob@x.com");
    assert!(
        bob.contains("target user t1") && bob.contains("linked to another Entra user, ann@x.com"),
        "{bob}"
    );
    assert!(p.creates.is_empty());
    assert_eq!(p.matched, counts(1, 0, 0, 0));
    assert_eq!(p.not_owned, 1, "t2 is nobody's");
}

#[test]
fn each_key_is_compared_as_the_target_compares_its_field() {
    let m = mapping();
    // Employee numbers keep their case in this target; e-mail addresses do not.
    let listed = [target(&m, "t1", "ann.csv", "ANN@X.COM", "e1")];
    let p = plan(
        &m,
        vec![entra(&m, "a", "ann@x.com", "ann@x.com", "E1")],
        &listed,
        &OwnedUsers::default(),
        options(),
    );
    assert_eq!(p.matched, counts(0, 0, 1, 0));
    assert_eq!(linked(&p), [("ann@x.com".to_owned(), "t1".to_owned())]);
    // Where the target folds employee numbers too, the first key finds it.
    let folding = PlanOptions {
        folds_case: vec![true, true, true, false, false],
        ..options()
    };
    let p = plan(
        &m,
        vec![entra(&m, "a", "ann@x.com", "ann@x.com", "E1")],
        &listed,
        &OwnedUsers::default(),
        folding,
    );
    assert_eq!(p.matched, counts(0, 1, 0, 0));
    // And where it folds nothing, nothing matches: the user is created.
    let exact = PlanOptions {
        folds_case: vec![false; 5],
        ..options()
    };
    let p = plan(
        &m,
        vec![entra(&m, "a", "ann@x.com", "ann@x.com", "E1")],
        &listed,
        &OwnedUsers::default(),
        exact,
    );
    assert_eq!(p.matched, counts(0, 0, 0, 0));
    assert_eq!(p.creates.len(), 1);
}

#[test]
fn a_user_without_the_first_key_is_taken_over_but_never_created() {
    let m = mapping();
    let listed = [target(&m, "t1", "ann.csv", "ann@x.com", "")];
    let sources = vec![
        entra(&m, "e1", "ann@x.com", "ann@x.com", ""),
        entra(&m, "e2", "bob@x.com", "bob@x.com", ""),
    ];
    let p = plan(&m, sources, &listed, &OwnedUsers::default(), options());
    assert_eq!(linked(&p), [("ann@x.com".to_owned(), "t1".to_owned())]);
    assert_eq!(p.updates[0].key, "", "the state records no first key");
    assert!(p.creates.is_empty());
    let bob = reason_of(&p, "bob@x.com");
    assert!(
        bob.contains("no value for the match key `employee_num`"),
        "{bob}"
    );
    // Once linked, the state keeps it so, with no key at all.
    let owned: OwnedUsers = [Owned {
        entra_id: "e1".into(),
        key: String::new(),
        target_id: Some("t1".into()),
        hash: None,
        active: true,
    }]
    .into_iter()
    .collect();
    let listed = [target(&m, "t1", "ann@x.com", "ann@x.com", "")];
    let p = plan(
        &m,
        vec![entra(&m, "e1", "ann@x.com", "ann@x.com", "")],
        &listed,
        &owned,
        options(),
    );
    assert_eq!((p.unchanged, p.skipped.len()), (1, 0), "{:?}", p.skipped);
    assert_eq!(p.matched, counts(1, 0, 0, 0));
}

#[test]
fn a_target_that_cannot_list_is_matched_by_the_first_key_only() {
    let m = mapping();
    let partial = PlanOptions {
        partial_view: true,
        ..options()
    };
    let listed = [target(&m, "t1", "ann.csv", "ann@x.com", "")];
    let sources = vec![
        entra(&m, "e1", "ann@x.com", "ann@x.com", "E1"),
        entra(&m, "e2", "bob@x.com", "bob@x.com", ""),
    ];
    let p = plan(&m, sources, &listed, &OwnedUsers::default(), partial);
    assert_eq!(p.creates.len(), 1, "ann is created: no one has E1");
    assert!(reason_of(&p, "bob@x.com").contains("no value for the match key `employee_num`"));
    assert_eq!(
        p.matched,
        Matched {
            by_state: 0,
            by_key: vec![("employee_num".into(), 0)],
        }
    );
}

#[test]
fn early_creates_wait_for_any_key_a_listed_user_has() {
    // The principal name first, so that Entra keeps the first key unique.
    let m = compile(&MAPPING.replace(
        r#"match = ["employee_num", "email", "username"]"#,
        r#"match = ["username", "employee_num", "email"]"#,
    ));
    let listed = [target(&m, "t1", "ann.csv", "", "E1")];
    let owned = OwnedUsers::default();
    let mut early = EarlyCreates::new(&m, &listed, &owned, &options()).unwrap();
    let users = || {
        vec![
            entra(&m, "e1", "ann@x.com", "", "E1"),
            entra(&m, "e2", "bob@x.com", "bob@x.com", "E2"),
        ]
    };
    let mut created = Vec::new();
    let mut rest = Vec::new();
    for user in users() {
        match early.decide(user) {
            Early::Create(c) => created.push(c.key),
            Early::Later(u) => rest.push(u),
            Early::Skip(s) => panic!("{s:?}"),
            Early::Waits => panic!("a user of this mapping names nobody"),
        }
    }
    assert_eq!(created, ["bob@x.com"]);
    let whole = plan(&m, users(), &listed, &owned, options());
    let planned: Vec<&str> = whole.creates.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(planned, created);
    let after = plan(&m, rest, &listed, &owned, options());
    assert!(after.creates.is_empty());
    assert_eq!(after.count(UpdateKind::Update), 1, "ann takes t1 over");
}
