//! The planner's rules, one by one, on a small SCIM mapping.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use userload::config::Mode;
use userload::diag::SourceText;
use userload::mapping::{self, Context, Mapping, Options};
use userload::spill::Spill;
use userload::state::{Owned, OwnedUsers};
use userload::sync::plan::{
    Catalogue, Early, EarlyCreates, Listed, Plan, PlanOptions, Prior, Quiet, Settle, SourceUser,
    UpdateKind, plan, plan_after,
};
use userload::targets::{Entity, TargetUser};

const MAPPING: &str = r#"
version = 1
target = "scim"
match = "userName"
active = { field = "active", active = true, inactive = false }
[fields.userName]
source = "userPrincipalName"
[fields.externalId]
source = "id"
on = "create"
[fields.active]
source = "accountEnabled"
[fields.title]
source = "jobTitle"
[fields."name.givenName"]
source = "givenName"
"#;

fn mapping() -> Mapping {
    mapping::compile_source(&SourceText::new("m.toml", MAPPING), Options::default()).unwrap()
}

fn source(m: &Mapping, user: Value) -> SourceUser {
    let settings = BTreeMap::new();
    let ctx = Context {
        settings: &settings,
        sync_time: "2024-01-01T00:00:00Z",
    };
    SourceUser::new(
        m,
        user["id"].as_str().unwrap().to_owned(),
        user["userPrincipalName"].as_str().unwrap_or("?").to_owned(),
        m.map(&user, &ctx),
    )
}

fn entra(id: &str, upn: &str, enabled: bool, title: &str) -> Value {
    json!({"id": id, "userPrincipalName": upn, "accountEnabled": enabled, "jobTitle": title, "givenName": "Ann"})
}

fn target(id: &str, user_name: &str, active: bool, title: &str) -> Listed {
    let data: Map<String, Value> = json!({
        "id": id, "userName": user_name, "active": active, "title": title,
        "name": {"givenName": "Ann"}, "externalId": "whatever"
    })
    .as_object()
    .unwrap()
    .clone();
    Listed::of(
        &mapping(),
        TargetUser {
            id: id.to_owned(),
            data,
            etag: None,
        },
    )
}

fn owned(entra_id: &str, key: &str, target_id: &str) -> Owned {
    Owned {
        entra_id: entra_id.to_owned(),
        key: key.to_owned(),
        target_id: Some(target_id.to_owned()),
        hash: None,
        active: true,
    }
}

fn owned_users<const N: usize>(users: [Owned; N]) -> OwnedUsers {
    users.into_iter().collect()
}

/// `state` with the hash of the user of `entra_id` set to `hash`.
fn remember_hash(state: &mut OwnedUsers, entra_id: &str, hash: &str) {
    let mut o = state.get(entra_id).unwrap().clone();
    o.hash = Some(hash.to_owned());
    state.insert(o);
}

fn options() -> PlanOptions {
    PlanOptions {
        mode: Mode::CreateUpdate,
        deactivate: true,
        create_disabled: false,
        // userName, externalId, active, title, name.givenName
        folds_case: vec![true, false, false, false, false],
        partial_view: false,
        reconcile: false,
    }
}

#[test]
fn new_users_are_created_but_disabled_ones_only_when_asked() {
    let m = mapping();
    let sources = || {
        vec![
            source(&m, entra("e1", "ann@x.com", true, "Eng")),
            source(&m, entra("e2", "bob@x.com", false, "Eng")),
        ]
    };
    let p = plan(&m, sources(), &[], &OwnedUsers::default(), options());
    assert_eq!(p.creates.len(), 1);
    assert_eq!(p.creates[0].key, "ann@x.com");
    assert_eq!(p.skipped.len(), 1);
    assert!(p.skipped[0].reason.contains("disabled in Entra"));
    let with_disabled = PlanOptions {
        create_disabled: true,
        ..options()
    };
    assert_eq!(
        plan(&m, sources(), &[], &OwnedUsers::default(), with_disabled)
            .creates
            .len(),
        2
    );
    let update_only = PlanOptions {
        mode: Mode::UpdateOnly,
        ..options()
    };
    let p = plan(&m, sources(), &[], &OwnedUsers::default(), update_only);
    assert!(p.creates.is_empty());
    assert!(p.skipped.iter().any(|s| s.reason.contains("update_only")));
}

#[test]
fn a_match_by_key_ignores_case_and_writes_only_changed_fields() {
    let m = mapping();
    let targets = [target("t1", "ANN@x.com", true, "Engineer")];
    let p = plan(
        &m,
        vec![source(
            &m,
            entra("e1", "ann@X.com", true, "Senior Engineer"),
        )],
        &targets,
        &OwnedUsers::default(),
        options(),
    );
    assert!(p.creates.is_empty());
    assert_eq!(p.updates.len(), 1);
    let update = &p.updates[0];
    assert_eq!(update.kind, UpdateKind::Update);
    // externalId is on = "create": never compared; userName differs only in case.
    let changed: Vec<&str> = update.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(changed, ["title"]);
    assert_eq!(update.changes[0].old, Some(json!("Engineer")));
    assert_eq!(update.changes[0].new, Some(json!("Senior Engineer")));
    // The target user is adopted: not counted as someone else's.
    assert_eq!(p.not_owned, 0);
}

#[test]
fn an_unchanged_user_needs_nothing_and_a_remembered_hash_skips_the_comparison() {
    let m = mapping();
    let user = entra("e1", "ann@x.com", true, "Engineer");
    let p = plan(
        &m,
        vec![source(&m, user.clone())],
        &[target("t1", "ann@x.com", true, "Engineer")],
        &OwnedUsers::default(),
        options(),
    );
    assert!(p.is_empty());
    assert_eq!(p.unchanged, 1);
    // Matched for the first time: remembered as owned, with what was found.
    assert_eq!(p.remember.len(), 1);
    assert_eq!(p.remember[0].target_id.as_deref(), Some("t1"));
    // The target shows the title otherwise (it normalises it), but userload wrote this very
    // record last time: no write.
    let record = source(&m, user.clone()).mapped.unwrap();
    let mut state = owned_users([owned("e1", "ann@x.com", "t1")]);
    remember_hash(&mut state, "e1", &record.hash);
    let p = plan(
        &m,
        vec![source(&m, user)],
        &[target("t1", "ann@x.com", true, "ENGINEER")],
        &state,
        options(),
    );
    assert!(p.is_empty(), "{:?}", p.updates);
    assert!(p.remember.is_empty(), "nothing new for the state either");
}

#[test]
fn a_reconciliation_compares_remembered_users_and_reports_their_differences_as_drift() {
    let m = mapping();
    let user = entra("e1", "ann@x.com", true, "Engineer");
    let record = source(&m, user.clone()).mapped.unwrap();
    let mut state = owned_users([owned("e1", "ann@x.com", "t1")]);
    remember_hash(&mut state, "e1", &record.hash);
    // Changed by hand in the target: the title, and the user deactivated.
    let listed = [target("t1", "ann@x.com", false, "Boss")];
    let normal = plan(
        &m,
        vec![source(&m, user.clone())],
        &listed,
        &state,
        options(),
    );
    assert!(normal.is_empty() && normal.drift.is_empty());
    let full = PlanOptions {
        reconcile: true,
        ..options()
    };
    let p = plan(&m, vec![source(&m, user)], &listed, &state, full);
    assert_eq!(p.drift.len(), 1);
    let fields: Vec<(&str, bool)> = p.drift[0]
        .fields
        .iter()
        .map(|f| (f.target.as_str(), f.kept))
        .collect();
    assert_eq!(fields, [("active", false), ("title", false)]);
    assert_eq!(p.drift[0].fields[1].found, Some(json!("Boss")));
    assert_eq!(p.drift[0].fields[1].expected, Some(json!("Engineer")));
    // Repaired by one write, which undoes the deactivation by hand.
    assert_eq!(p.updates.len(), 1);
    assert_eq!(p.updates[0].kind, UpdateKind::Reactivate);
    assert_eq!(p.updates[0].changes.len(), 2);
}

#[test]
fn a_target_user_whose_values_were_not_read_is_neither_compared_nor_deactivated() {
    let m = mapping();
    let state = owned_users([
        owned("e1", "ann@x.com", "t1"),
        owned("e2", "bob@x.com", "t2"),
    ]);
    let listed = [
        target("t1", "ann@x.com", true, "Engineer").without_values(),
        target("t2", "bob@x.com", true, "Engineer").without_values(),
    ];
    // Ann changed (no hash remembered), Bob left.
    let user = entra("e1", "ann@x.com", true, "Lead");
    let p = plan(&m, vec![source(&m, user)], &listed, &state, options());
    assert!(p.updates.is_empty(), "{:?}", p.updates);
    let skipped: Vec<&str> = p.skipped.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(skipped, ["ann@x.com", "bob@x.com"]);
    assert!(p.skipped[0].reason.contains("values of target user t1"));
}

#[test]
fn a_renamed_user_is_updated_through_the_state_not_created_again() {
    let m = mapping();
    let state = owned_users([owned("e1", "ann@x.com", "t1")]);
    let p = plan(
        &m,
        vec![source(&m, entra("e1", "ann.lee@x.com", true, "Eng"))],
        &[target("t1", "ann@x.com", true, "Eng")],
        &state,
        options(),
    );
    assert!(p.creates.is_empty());
    assert_eq!(p.count(UpdateKind::Deactivate), 0);
    assert_eq!(p.updates.len(), 1);
    assert_eq!(p.updates[0].changes[0].target, "userName");
    assert_eq!(p.updates[0].changes[0].new, Some(json!("ann.lee@x.com")));
}

#[test]
fn two_entra_users_with_one_key_are_both_skipped_and_their_target_user_kept() {
    let m = mapping();
    let state = owned_users([owned("e1", "ann@x.com", "t1")]);
    let p = plan(
        &m,
        vec![
            source(&m, entra("e1", "ann@x.com", true, "Eng")),
            source(&m, entra("e9", "Ann@x.com", true, "Eng")),
        ],
        &[target("t1", "ann@x.com", true, "Eng")],
        &state,
        options(),
    );
    assert!(p.is_empty(), "nothing written: {:?}", p.updates);
    assert_eq!(p.skipped.len(), 2);
    assert!(
        p.skipped[0]
            .reason
            .contains("2 Entra users map to userName")
    );
    assert!(p.skipped[0].reason.contains("ann@x.com, Ann@x.com"));
}

#[test]
fn leavers_are_deactivated_only_if_owned_and_only_when_deactivate_is_on() {
    let m = mapping();
    let state = owned_users([
        owned("e1", "ann@x.com", "t1"),
        owned("e2", "bob@x.com", "t2"),
    ]);
    let targets = [
        target("t1", "ann@x.com", true, "Eng"),
        target("t2", "bob@x.com", true, "Eng"),
        target("t3", "admin@x.com", true, "Root"),
    ];
    let sources = || vec![source(&m, entra("e1", "ann@x.com", true, "Eng"))];
    let p = plan(&m, sources(), &targets, &state, options());
    let gone: Vec<&str> = p
        .of_kind(UpdateKind::Deactivate)
        .map(|u| u.user.id.as_str())
        .collect();
    assert_eq!(gone, ["t2"]);
    let update = &p.updates[0];
    assert_eq!(update.changes.len(), 1);
    assert_eq!(update.changes[0].new, Some(json!(false)));
    assert_eq!(update.record.get("active"), Some(&json!(false)));
    assert_eq!(update.record.get("title"), Some(&json!("Eng")));
    assert_eq!(p.not_owned, 1, "admin@x.com is not userload's");
    let off = PlanOptions {
        deactivate: false,
        ..options()
    };
    let p = plan(&m, sources(), &targets, &state, off);
    assert!(p.is_empty());
    assert_eq!(p.kept_by_config, 1);
}

#[test]
fn disabling_and_enabling_in_entra_deactivates_and_reactivates() {
    let m = mapping();
    let state = owned_users([
        owned("e1", "ann@x.com", "t1"),
        owned("e2", "bob@x.com", "t2"),
    ]);
    let p = plan(
        &m,
        vec![
            source(&m, entra("e1", "ann@x.com", false, "Eng")),
            source(&m, entra("e2", "bob@x.com", true, "Eng")),
        ],
        &[
            target("t1", "ann@x.com", true, "Eng"),
            target("t2", "bob@x.com", false, "Eng"),
        ],
        &state,
        options(),
    );
    assert_eq!(p.count(UpdateKind::Deactivate), 1);
    assert_eq!(p.count(UpdateKind::Reactivate), 1);
    assert_eq!(
        p.of_kind(UpdateKind::Deactivate).next().unwrap().user.id,
        "t1"
    );
    let create_only = PlanOptions {
        mode: Mode::CreateOnly,
        ..options()
    };
    let p = plan(
        &m,
        vec![source(&m, entra("e1", "ann@x.com", true, "Boss"))],
        &[target("t1", "ann@x.com", true, "Eng")],
        &state,
        create_only,
    );
    assert!(p.is_empty());
    assert!(p.skipped.iter().any(|s| s.reason.contains("create_only")));
}

#[test]
fn an_owned_user_deleted_in_the_target_is_forgotten_and_created_again() {
    let m = mapping();
    let state = owned_users([
        owned("e1", "ann@x.com", "t1"),
        owned("e2", "bob@x.com", "t2"),
    ]);
    let p = plan(
        &m,
        vec![source(&m, entra("e1", "ann@x.com", true, "Eng"))],
        &[],
        &state,
        options(),
    );
    assert_eq!(p.creates.len(), 1);
    let mut forgotten = p.forget.clone();
    forgotten.sort();
    assert_eq!(forgotten, ["e1", "e2"]);
    assert_eq!(p.count(UpdateKind::Deactivate), 0);
}

#[test]
fn users_the_mapping_skips_are_reported_and_never_deactivated() {
    let m = mapping();
    let state = owned_users([owned("e1", "ann@x.com", "t1")]);
    let p = plan(
        &m,
        vec![source(&m, json!({"id": "e1", "accountEnabled": true}))],
        &[target("t1", "ann@x.com", true, "Eng")],
        &state,
        options(),
    );
    assert!(p.is_empty());
    assert_eq!(p.skipped.len(), 1);
    assert!(p.skipped[0].reason.contains("userName"), "{:?}", p.skipped);
}

/// The users a run creates while reading (by key), and those it leaves to the plan.
fn decide_early(
    early: &mut EarlyCreates,
    users: Vec<SourceUser>,
) -> (Vec<String>, Vec<SourceUser>) {
    let (mut created, mut rest) = (Vec::new(), Vec::new());
    for user in users {
        match early.decide(user) {
            Early::Create(c) => created.push(c.key),
            Early::Later(user) => rest.push(user),
            Early::Skip(s) => panic!("skipped {s:?}"),
            Early::Waits => panic!("a user of this mapping names nobody"),
        }
    }
    (created, rest)
}

#[test]
fn the_creates_decided_while_reading_are_exactly_the_plans() {
    let m = mapping();
    let users = || {
        vec![
            source(&m, entra("e1", "new@x.com", true, "Eng")),
            // Its key is a target user's, but for case.
            source(&m, entra("e2", "Listed@x.com", true, "Eng")),
            // The state owns it.
            source(&m, entra("e3", "owned@x.com", true, "Eng")),
            // Disabled, and create_disabled is off.
            source(&m, entra("e4", "off@x.com", false, "Eng")),
            // No key.
            source(&m, json!({"id": "e5", "accountEnabled": true})),
            source(&m, entra("e6", "hire@x.com", true, "Eng")),
        ]
    };
    let listed = vec![
        target("t1", "listed@x.com", true, "Eng"),
        target("t2", "owned@x.com", true, "Eng"),
    ];
    let owned = owned_users([owned("e3", "owned@x.com", "t2")]);
    let whole = plan(&m, users(), &listed, &owned, options());
    let mut early = EarlyCreates::new(&m, &listed, &owned, &options()).unwrap();
    let (created, rest) = decide_early(&mut early, users());
    assert_eq!(created, ["new@x.com", "hire@x.com"]);
    let keys = |p: &Plan| p.creates.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&whole), created);
    // The plan of the other users is the whole plan without those creates.
    let after = plan(&m, rest, &listed, &owned, options());
    assert!(after.creates.is_empty());
    assert_eq!(after.skipped, whole.skipped);
    assert_eq!(after.unchanged, whole.unchanged);
    assert_eq!(after.updates.len(), whole.updates.len());
    assert_eq!(after.not_owned, whole.not_owned);
}

#[test]
fn nothing_is_created_while_reading_unless_entra_keeps_the_key_unique() {
    let with_key = |lines: &str| {
        let text = MAPPING.replace(
            "[fields.userName]\nsource = \"userPrincipalName\"\n",
            &format!("[fields.userName]\n{lines}\n"),
        );
        assert_ne!(text, MAPPING);
        mapping::compile_source(&SourceText::new("m.toml", &text), Options::default()).unwrap()
    };
    let owned = OwnedUsers::default();
    for (lines, unique) in [
        (
            "source = \"userPrincipalName\"\nconvert = [\"lower\", \"trim\"]",
            true,
        ),
        ("source = \"id\"", true),
        ("source = \"mail\"", false),
        ("source = [\"userPrincipalName\", \"mail\"]", false),
        (
            "source = \"userPrincipalName\"\nconvert = [{ truncate = 8 }]",
            false,
        ),
        (
            "source = \"userPrincipalName\"\ndefault = \"nobody\"",
            false,
        ),
        ("template = \"{{userPrincipalName}}\"", false),
    ] {
        let m = with_key(lines);
        assert_eq!(m.key_is_unique_in_entra(), unique, "{lines}");
        let early = EarlyCreates::new(&m, &[], &owned, &options());
        assert_eq!(early.is_some(), unique, "{lines}");
    }
    // Nor where the run creates no one, or sees only some target users.
    let m = mapping();
    for options in [
        PlanOptions {
            mode: Mode::UpdateOnly,
            ..options()
        },
        PlanOptions {
            partial_view: true,
            ..options()
        },
    ] {
        assert!(EarlyCreates::new(&m, &[], &owned, &options).is_none());
    }
}

#[test]
fn a_key_read_twice_is_created_once_and_the_second_user_reported() {
    let m = mapping();
    let owned = OwnedUsers::default();
    let mut early = EarlyCreates::new(&m, &[], &owned, &options()).unwrap();
    let first = early.decide(source(&m, entra("e1", "ann@x.com", true, "Eng")));
    assert!(matches!(first, Early::Create(_)), "{first:?}");
    match early.decide(source(&m, entra("e2", "ANN@x.com", true, "Eng"))) {
        Early::Skip(s) => {
            assert_eq!(s.label, "ANN@x.com");
            assert!(s.reason.contains("`ann@x.com`"), "{}", s.reason);
        }
        other => panic!("{other:?}"),
    }
}

/// Kept in memory, or on disk: the users that wait come back as they went.
#[test]
fn a_user_naming_a_user_created_early_waits_for_its_target_id() {
    waits_for_target_ids(None);
    let dir = tempfile::tempdir().unwrap();
    waits_for_target_ids(Some(Spill::new(dir.path()).unwrap()));
}

fn waits_for_target_ids(spill: Option<Spill>) {
    let text = REFERENCES.replace(
        "[fields.department]\nsource = \"department\"\nrefers = { entity = \"department\", policy = \"lookup\" }\n",
        "",
    );
    assert_ne!(text, REFERENCES);
    let m = mapping::compile_source(&SourceText::new("r.toml", &text), Options::default()).unwrap();
    let owned = OwnedUsers::default();
    let mut early = EarlyCreates::new(&m, &[], &owned, &options()).unwrap();
    if let Some(spill) = spill {
        early = early.kept_in(spill);
    }
    let user = |id: &str, name: &str, manager: Option<&str>| {
        let manager = manager.map(|m| json!({"id": m}));
        source(
            &m,
            json!({"id": id, "userPrincipalName": name, "accountEnabled": true,
                   "jobTitle": "Chemist", "manager": manager}),
        )
    };
    // The head names nobody: created at once.
    let head = early.decide(user("e1", "head@x.com", None));
    assert!(matches!(head, Early::Create(_)), "{head:?}");
    // Her report waits for her create; his report waits for him.
    let ann = user("e2", "ann@x.com", Some("e1"));
    let ann_hash = ann.mapped.as_ref().unwrap().hash.clone();
    assert!(matches!(early.decide(ann), Early::Waits));
    assert!(matches!(
        early.decide(user("e3", "bob@x.com", Some("e2"))),
        Early::Waits
    ));
    // One naming a user not read yet waits too; one whose reference is no Entra id is
    // left to the plan.
    assert!(matches!(
        early.decide(user("e4", "cy@x.com", Some("e9"))),
        Early::Waits
    ));
    let odd = source(
        &m,
        json!({"id": "e6", "userPrincipalName": "odd@x.com", "accountEnabled": true,
               "manager": {"id": 7}}),
    );
    let later = early.decide(odd);
    assert!(matches!(later, Early::Later(_)), "{later:?}");
    assert!(early.next_released().is_none());
    assert!(!early.settled(), "the head's create has not answered");
    // The head's create answers: her report goes, naming her by her target id.
    early.answered("e1".into(), Some("t1".into()));
    let ann = early.next_released().unwrap();
    assert_eq!(ann.key, "ann@x.com");
    assert_eq!(ann.record()["manager.value"], json!("t1"));
    assert_eq!(ann.hash, ann_hash);
    assert!(ann.deferred.is_empty());
    assert!(early.next_released().is_none());
    // A user created after its manager answered goes at once.
    let dee = early.decide(user("e5", "dee@x.com", Some("e1")));
    let Early::Create(dee) = dee else {
        panic!("{dee:?}")
    };
    assert_eq!(dee.record()["manager.value"], json!("t1"));
    // Her create fails: whoever names her waits for good, now or read later.
    early.answered("e5".into(), None);
    assert!(matches!(
        early.decide(user("e7", "eve@x.com", Some("e5"))),
        Early::Waits
    ));
    // Ann's create answers and Bob follows; once his answers too, nobody left can go.
    early.answered("e2".into(), Some("t2".into()));
    let bob = early.next_released().unwrap();
    assert_eq!(bob.record()["manager.value"], json!("t2"));
    assert!(!early.settled(), "Bob's create has not answered");
    early.answered("e3".into(), Some("t3".into()));
    assert!(early.settled());
    // Whoever still waits then is the plan's.
    let mut left = early.into_waiting().unwrap();
    left.sort_by(|a, b| a.entra_id.cmp(&b.entra_id));
    let ids: Vec<&str> = left.iter().map(|u| u.entra_id.as_str()).collect();
    assert_eq!(ids, ["e4", "e7"]);
    let cy = user("e4", "cy@x.com", Some("e9"));
    let (back, mapped) = (
        left[0].mapped.as_ref().unwrap(),
        cy.mapped.as_ref().unwrap(),
    );
    assert_eq!(left[0].label, cy.label);
    assert_eq!(back.key, mapped.key);
    assert_eq!(back.hash, mapped.hash);
    assert_eq!(back.enabled, mapped.enabled);
    assert_eq!(back.record(), mapped.record());
}

/// The hash kept of a mapped user is the hash of what it writes on update (a field written
/// only on create left out), as `record_hash` makes it; and its record packs whole.
#[test]
fn a_mapped_users_hash_covers_what_an_update_writes() {
    let m = mapping();
    let user = source(&m, entra("e1", "ann@contoso.com", true, "Chemist \"A\" é"));
    let mapped = user.mapped.as_ref().unwrap();
    let record = mapped.record().unwrap();
    assert_eq!(mapped.hash, userload::sync::plan::record_hash(&m, &record));
    assert_eq!(record["externalId"], json!("e1"));
    assert_eq!(record["title"], json!("Chemist \"A\" é"));
    // The field written on create alone changes nothing an update writes.
    let mut other = record.clone();
    other.set(m.field_index("externalId").unwrap(), Some(json!("e2")));
    assert_eq!(mapped.hash, userload::sync::plan::record_hash(&m, &other));
    other.set(m.field_index("title").unwrap(), Some(json!("Chemist")));
    assert_ne!(mapped.hash, userload::sync::plan::record_hash(&m, &other));
}

/// A mapping whose records name a manager and a department.
const REFERENCES: &str = r#"
version = 1
target = "scim"
match = "userName"
active = { field = "active", active = true, inactive = false }
[fields.userName]
source = "userPrincipalName"
[fields.title]
source = "jobTitle"
[fields."manager.value"]
source = "manager.id"
refers = "user"
[fields.department]
source = "department"
refers = { entity = "department", policy = "lookup" }
[fields.active]
source = "accountEnabled"
"#;

/// What a plan does, for comparing two: each update's label with the fields it changes and
/// its kind, the creates, the unchanged count, the drift count, the matches through the
/// state, and the users skipped.
type Summary = (
    Vec<(String, Vec<usize>, UpdateKind)>,
    Vec<String>,
    usize,
    usize,
    usize,
    Vec<String>,
);

fn summary(p: &Plan) -> Summary {
    let updates = p
        .updates
        .iter()
        .map(|u| {
            let fields = u.changes.iter().map(|c| c.field).collect();
            (u.label.clone(), fields, u.kind)
        })
        .collect();
    // In name order: users read again come last, and the plan creates in read order.
    let mut creates: Vec<String> = p.creates.iter().map(|c| c.label.clone()).collect();
    creates.sort_unstable();
    let skipped = p.skipped.iter().map(|s| s.label.clone()).collect();
    let counts = (p.unchanged, p.drift.len(), p.matched.by_state);
    (updates, creates, counts.0, counts.1, counts.2, skipped)
}

/// The plan of `users` against `listed` (a reconciliation when `options.reconcile`), with
/// (`settle`) or without the quiet users taken out first as while reading (a normal run
/// takes them out before the listing is complete, and reads again those it says are
/// missing): how many were quiet, and the plan's [`summary`].
fn planned(
    m: &Mapping,
    users: &[Value],
    listed: &[Listed],
    state: &OwnedUsers,
    (options, settle): (&PlanOptions, bool),
) -> (usize, Summary) {
    let mut catalogue = Catalogue::default();
    let sales = Entity {
        id: "d1".into(),
        name: "Sales".into(),
    };
    catalogue.add("department", vec![sales]);
    let mut sources: Vec<SourceUser> = users.iter().map(|u| source(m, u.clone())).collect();
    let mut quiet = Quiet::default();
    if settle {
        let mut finder = Settle::new(m, state, options);
        if options.reconcile {
            finder.listed(listed, &catalogue);
        }
        let mut left = Vec::new();
        for mut user in sources {
            if options.reconcile {
                finder.check(&mut user);
            } else if finder.take(&user) {
                continue;
            }
            left.push(user);
        }
        sources = left;
        finder.listed(listed, &catalogue);
        let missing;
        (quiet, missing) = finder.finish(&mut sources);
        let again = users.iter().map(|u| source(m, u.clone()));
        sources.extend(again.filter(|u| missing.contains(&u.entra_id.as_str())));
    }
    let prior = Prior {
        entities: &catalogue,
        early: &[],
        only: None,
        quiet: Some(&quiet),
    };
    let p = plan_after(m, sources, listed, state, options.clone(), &prior);
    (quiet.len(), summary(&p))
}

/// The mapping with references.
fn references() -> Mapping {
    mapping::compile_source(&SourceText::new("r.toml", REFERENCES), Options::default()).unwrap()
}

/// A target user of the mapping with references.
fn listed_user(m: &Mapping, id: &str, name: &str, title: &str, manager: Option<&str>) -> Listed {
    let data = json!({"userName": name, "title": title, "department": "d1", "active": true,
                      "manager": manager.map(|m| json!({"value": m}))});
    let user = TargetUser {
        id: id.into(),
        data: data.as_object().unwrap().clone(),
        etag: None,
    };
    Listed::of(m, user)
}

/// An Entra user of the mapping with references.
fn person(id: &str, upn: Option<&str>, title: &str, manager: Option<&str>) -> Value {
    json!({"id": id, "userPrincipalName": upn, "jobTitle": title, "accountEnabled": true,
           "manager": manager.map(|m| json!({"id": m})), "department": "Sales"})
}

/// A manager and two reports in Entra, and the state remembering each as mapped now (each
/// owning the target user `t1`, `ta` or `tb`).
fn team(m: &Mapping) -> ([Value; 3], OwnedUsers) {
    let users = [
        person("m1", Some("boss@x.com"), "Boss", None),
        person("a", Some("ann@x.com"), "Eng", Some("m1")),
        person("b", Some("bob@x.com"), "Eng", Some("m1")),
    ];
    let mut state = owned_users([
        owned("m1", "boss@x.com", "t1"),
        owned("a", "ann@x.com", "ta"),
        owned("b", "bob@x.com", "tb"),
    ]);
    for user in &users {
        let hash = source(m, user.clone()).mapped.unwrap().hash;
        remember_hash(&mut state, user["id"].as_str().unwrap(), &hash);
    }
    (users, state)
}

#[test]
fn quiet_users_taken_out_while_reading_leave_a_normal_plan_as_it_was() {
    let m = references();
    let listed_user = |id, name, title, manager| listed_user(&m, id, name, title, manager);
    let listed = [
        listed_user("t1", "boss@x.com", "Boss", None),
        listed_user("ta", "ann@x.com", "Eng", Some("t1")),
        listed_user("tb", "bob@x.com", "Eng", Some("t1")),
        listed_user("tg", "gus@x.com", "Eng", None),
        listed_user("tc", "carl@x.com", "Eng", None),
    ];
    let (users, mut state) = team(&m);
    state.extend([owned("g", "gus@x.com", "tg")]);
    // Bob changed in Entra, Dan is new, Gus left, Carl's target user is nobody's.
    let users = [
        users[0].clone(),
        users[1].clone(),
        person("b", Some("bob@x.com"), "Lead", Some("m1")),
        person("d", Some("dan@x.com"), "Eng", Some("m1")),
    ];
    let o = PlanOptions {
        folds_case: vec![false; 5],
        ..options()
    };
    let compared = planned(&m, &users, &listed, &state, (&o, false));
    let settled = planned(&m, &users, &listed, &state, (&o, true));
    assert_eq!(settled.0, 2, "the manager and Ann are quiet");
    assert_eq!(settled.1, compared.1);
    let (updates, creates, unchanged, _, by_state, _) = compared.1;
    let kinds: Vec<_> = updates.iter().map(|u| (u.0.as_str(), u.2)).collect();
    assert_eq!(
        kinds,
        [
            ("bob@x.com", UpdateKind::Update),
            ("gus@x.com", UpdateKind::Deactivate)
        ]
    );
    assert_eq!(
        (creates, unchanged, by_state),
        (vec!["dan@x.com".into()], 2, 3)
    );
    // A user read under a quiet user's key (Entra keeps keys unique, so only a rename
    // during the read does this) never takes its target user.
    let mut users = users.to_vec();
    users.push(person("n", Some("ann@x.com"), "Eng", None));
    let settled = planned(&m, &users, &listed, &state, (&o, true));
    assert_eq!(settled.0, 2);
    let (updates, creates, _, _, _, skipped) = settled.1;
    assert!(updates.iter().all(|u| u.0 != "ann@x.com"), "{updates:?}");
    assert_eq!(creates, ["dan@x.com"]);
    assert_eq!(skipped, ["ann@x.com"]);
    // Ann's target user deleted by hand: taken out while the listing was not complete, then
    // found missing, read again and created anew, as when compared.
    let users = &users[..4];
    let listed: Vec<Listed> = listed.into_iter().filter(|u| u.id != "ta").collect();
    let compared = planned(&m, users, &listed, &state, (&o, false));
    let settled = planned(&m, users, &listed, &state, (&o, true));
    assert_eq!(settled.0, 1, "only the manager is quiet");
    assert_eq!(settled.1, compared.1);
    assert_eq!(settled.1.1, ["ann@x.com", "dan@x.com"]);
}

#[test]
fn users_found_the_same_while_reading_are_planned_exactly_as_when_compared_after() {
    let m = references();
    let listed_user = |id, name, title, manager| listed_user(&m, id, name, title, manager);
    let listed = [
        listed_user("t1", "boss@x.com", "Boss", None),
        listed_user("ta", "ann@x.com", "Eng", Some("t1")),
        listed_user("tb", "bob@x.com", "Changed by hand", Some("t1")),
    ];
    // As the target holds them, and as last written: Ann and the manager are left alone,
    // Bob's title was changed by hand, and is repaired.
    let (users, state) = team(&m);
    let o = PlanOptions {
        folds_case: vec![false; 5],
        reconcile: true,
        ..options()
    };
    let compared = planned(&m, &users, &listed, &state, (&o, false));
    let settled = planned(&m, &users, &listed, &state, (&o, true));
    assert_eq!(settled.0, 2);
    assert_eq!(settled.1, compared.1);
    let (updates, _, unchanged, drift, _, _) = compared.1;
    assert_eq!(updates, [("bob@x.com".into(), vec![1], UpdateKind::Update)]);
    assert_eq!((unchanged, drift), (2, 1));
    // The manager is read without a user name this time: the plan links nobody to it, so
    // Ann's manager is cleared, although her target user held what the state links.
    let users = [
        person("m1", None, "Boss", None),
        users[1].clone(),
        users[2].clone(),
    ];
    let compared = planned(&m, &users, &listed, &state, (&o, false));
    let settled = planned(&m, &users, &listed, &state, (&o, true));
    assert_eq!(settled.0, 0);
    assert_eq!(settled.1, compared.1);
    let ann = ("ann@x.com".into(), vec![2], UpdateKind::Update);
    let bob = ("bob@x.com".into(), vec![1, 2], UpdateKind::Update);
    assert_eq!(compared.1.0, [ann, bob]);
}
