//! Group membership, licence names and sign-in activity as mapping inputs and filters,
//! against the Graph simulator: what a run reads (one listing per group, one SKU read), what
//! it writes, and how it refuses groups it cannot resolve and permissions it lacks.

use std::collections::BTreeSet;

use serde_json::Value;
use sim::tenant;

use crate::util::{SnipeItWorld, outcome, userload, write};

/// A Snipe-IT mapping whose job title is the user's role by group, whose employee number
/// says whether the user holds an E3 licence, and whose notes list the groups and the last
/// sign-in.
const MAPPING: &str = r#"
version = 1
target = "snipeit"
match = "username"
active = { field = "activated", active = true, inactive = false }

[fields.username]
source = "userPrincipalName"

[fields.first_name]
source = ["givenName", "displayName"]

[fields.activated]
source = "accountEnabled"

[fields.jobtitle]
source = "groups"
convert = [{ first_of = [["Admins", "admin"], ["Contractors", "restricted"], ["Staff", "staff"]] }]
default = "user"

[fields.notes]
source = "groups"
convert = [{ join = ", " }]
"#;

const LICENCE_FIELD: &str = r#"
[fields.employee_num]
source = "licenses"
convert = [{ has = "SPE_E3" }, { bool_words = ["E3", "none"] }]
"#;

const SIGN_IN_FIELD: &str = r#"
[fields.phone]
source = "signInActivity.lastSignInDateTime"
convert = [{ date = "%Y-%m-%d" }]
"#;

/// The group of contractors the tests add: a direct member and, nested, a group of two.
const CONTRACTORS: &str = "c0c0c0c0-0000-4000-8000-000000000010";
const AGENCY: &str = "c0c0c0c0-0000-4000-8000-000000000011";

/// A world of `users` synthetic users, with the contractors' groups added and `mapping`
/// written beside the config; `source_lines` go to `[source]`.
fn world(users: usize, source_lines: &str, mapping: &str) -> SnipeItWorld {
    let world = SnipeItWorld::new(users, 31, source_lines, "mapping = roles.toml");
    write(world.dir.path(), "roles.toml", mapping);
    world.graph.with(|s| {
        let ids: Vec<String> = s
            .tenant
            .users()
            .filter(|u| u["employeeType"] == "Contractor")
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .collect();
        let (direct, nested) = ids.split_at(1);
        s.tenant.add_group(
            CONTRACTORS,
            "Contractors",
            direct.to_vec(),
            [AGENCY.to_owned()],
        );
        s.tenant
            .add_group(AGENCY, "Agency staff", nested.to_vec(), []);
    });
    world
}

/// The Graph requests to `path`.
fn requests(
    world: &SnipeItWorld,
    path: &str,
) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
    world.graph.with(|s| {
        s.graph_log()
            .into_iter()
            .filter(|l| l.path == path)
            .map(|l| (l.path.clone(), l.query.clone()))
            .collect()
    })
}

fn column(world: &SnipeItWorld, upn: &str, name: &str) -> Value {
    world.snipe.with(|s| {
        s.user_named(upn)
            .map(|(_, columns)| columns.get(name).cloned().unwrap_or(Value::Null))
            .unwrap_or(Value::Null)
    })
}

#[test]
fn a_mapping_reads_the_named_groups_nested_members_included_with_one_listing_per_group() {
    let world = world(120, "input_groups = Staff, Admins, Contractors", MAPPING);
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{out}{err}");
    let users: Vec<Value> = world.graph.with(|s| s.tenant.users().collect());
    let members = |group: &str| -> BTreeSet<String> {
        world.graph.with(|s| s.tenant.members(group).unwrap())
    };
    let (staff, contractors) = (members(tenant::STAFF_GROUP), members(CONTRACTORS));
    // Nested members count: every admin is in Staff through the Admins group.
    assert!(members(tenant::ADMIN_GROUP).is_subset(&staff));
    assert!(members(AGENCY).is_subset(&contractors) && members(AGENCY).len() > 1);
    let mut seen = BTreeSet::new();
    for user in &users {
        let id = user["id"].as_str().unwrap();
        let upn = user["userPrincipalName"].as_str().unwrap();
        let admin = members(tenant::ADMIN_GROUP).contains(id);
        let (role, notes) = if admin {
            ("admin", "Staff, Admins")
        } else if contractors.contains(id) {
            ("restricted", "Contractors")
        } else if staff.contains(id) {
            ("staff", "Staff")
        } else {
            ("user", "")
        };
        assert_eq!(column(&world, upn, "jobtitle"), role, "{upn}");
        assert_eq!(
            column(&world, upn, "notes").as_str().unwrap_or(""),
            notes,
            "{upn}"
        );
        seen.insert(role);
    }
    assert_eq!(seen.len(), 4, "every role is met: {seen:?}");
    // Names resolved once each; one transitive-members listing per group, ids only.
    assert_eq!(requests(&world, "/v1.0/groups").len(), 3);
    for group in [tenant::STAFF_GROUP, tenant::ADMIN_GROUP, CONTRACTORS] {
        let path = format!("/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user");
        let listed = requests(&world, &path);
        assert_eq!(listed.len(), 1, "{path}");
        assert_eq!(listed[0].1["$select"], "accountEnabled,id");
    }
}

#[test]
fn a_group_named_by_its_id_needs_no_lookup() {
    let world = world(
        40,
        &format!("input_groups = {}, Contractors, Staff", tenant::ADMIN_GROUP),
        &MAPPING.replace("\"Admins\"", &format!("\"{}\"", tenant::ADMIN_GROUP)),
    );
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        requests(&world, "/v1.0/groups").len(),
        2,
        "only the names are looked up"
    );
    let admin = world.graph.with(|s| {
        let id = s
            .tenant
            .members(tenant::ADMIN_GROUP)
            .unwrap()
            .pop_first()
            .unwrap();
        s.tenant.user(&id).unwrap()["userPrincipalName"].clone()
    });
    assert_eq!(column(&world, admin.as_str().unwrap(), "jobtitle"), "admin");
}

#[test]
fn a_missing_group_stops_the_run_before_any_write_and_check_names_it() {
    let world = world(
        30,
        "input_groups = Staff, Admins, Contractors, Nobody Here",
        MAPPING,
    );
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no group is named `Nobody Here`"), "{err}");
    assert_eq!(world.snipe.with(|s| s.traffic.writes()), 0);
    assert_eq!(world.snipe.with(|s| s.users.len()), 0);
    let (code, out, _) = world.userload(&["check"]);
    assert_ne!(code, 0);
    assert!(out.contains("no group is named `Nobody Here`"), "{out}");
    assert!(
        out.contains("✓ groups: Staff, Admins, Contractors\n"),
        "{out}"
    );
}

#[test]
fn two_groups_of_one_name_are_refused_naming_both_ids() {
    let world = world(30, "input_groups = Staff, Admins, Contractors", MAPPING);
    let twin = "c0c0c0c0-0000-4000-8000-0000000000ff";
    world
        .graph
        .with(|s| s.tenant.add_group(twin, "contractors", Vec::new(), []));
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("2 groups are named `Contractors`"), "{err}");
    assert!(err.contains(CONTRACTORS) && err.contains(twin), "{err}");
    assert!(err.contains("write the ID of the one you mean"), "{err}");
    assert_eq!(world.snipe.with(|s| s.traffic.writes()), 0);
}

#[test]
fn a_mapping_reading_groups_without_groups_named_does_not_validate() {
    let world = world(30, "", MAPPING);
    let (code, out, err) = world.userload(&["validate"]);
    assert_eq!(code, 2, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("the mapping reads `groups`, but the config names no groups"),
        "{all}"
    );
    assert!(
        all.contains("roles.toml:17:11"),
        "placed on the source: {all}"
    );
    assert!(
        all.contains("source = \"groups\"\n    ·           ──────"),
        "with a caret: {all}"
    );
    assert!(all.contains("input_groups ="), "{all}");
}

#[test]
fn licences_are_read_once_as_part_numbers() {
    let world = world(
        60,
        "input_groups = Staff, Admins, Contractors",
        &format!("{MAPPING}{LICENCE_FIELD}"),
    );
    // Without a permission to read the tenant's subscriptions, the run says which to grant.
    let (code, _, err) = world.userload(&["run"]);
    assert_eq!(code, 2);
    assert!(err.contains("Organization.Read.All"), "{err}");
    assert_eq!(world.snipe.with(|s| s.traffic.writes()), 0);
    world
        .graph
        .with(|s| s.apps[0].roles.push("Organization.Read.All".to_owned()));
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(requests(&world, "/v1.0/subscribedSkus").len(), 2);
    let users: Vec<Value> = world.graph.with(|s| s.tenant.users().collect());
    let mut both = BTreeSet::new();
    for user in &users {
        let e3 = user["assignedLicenses"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["skuId"] == tenant::SKU_E3));
        let upn = user["userPrincipalName"].as_str().unwrap();
        let expected = if e3 { "E3" } else { "none" };
        assert_eq!(column(&world, upn, "employee_num"), expected, "{upn}");
        both.insert(e3);
    }
    assert_eq!(both.len(), 2, "some users hold E3 and some do not");
    // The users' query selected assignedLicenses for it.
    let users_query = &requests(&world, "/v1.0/users")[0].1;
    assert!(
        users_query["$select"].contains("assignedLicenses"),
        "{users_query:?}"
    );
}

#[test]
fn sign_in_activity_filters_alone_and_feeds_a_field() {
    let world = world(
        80,
        "input_groups = Staff, Admins, Contractors\nfilter = signInActivity/lastSignInDateTime le 2025-06-01T00:00:00Z",
        &format!("{MAPPING}{SIGN_IN_FIELD}"),
    );
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{out}{err}");
    let users: Vec<Value> = world.graph.with(|s| s.tenant.users().collect());
    let mut loaded = 0;
    for user in &users {
        let upn = user["userPrincipalName"].as_str().unwrap();
        let last = user["signInActivity"]["lastSignInDateTime"].as_str();
        let in_scope = last.is_some_and(|d| d <= "2025-06-01T00:00:00Z");
        let written = world.snipe.with(|s| s.user_named(upn).is_some());
        assert_eq!(written, in_scope, "{upn}: {last:?}");
        if in_scope {
            loaded += 1;
            assert_eq!(column(&world, upn, "phone"), &last.unwrap()[..10], "{upn}");
        }
    }
    assert!(loaded > 0 && loaded < users.len(), "{loaded}");
    // Graph's rule: sign-in activity stands alone in the filter.
    let config = std::fs::read_to_string(world.dir.path().join("userload.ini")).unwrap();
    write(
        world.dir.path(),
        "userload.ini",
        &config.replace(
            "filter = signInActivity/lastSignInDateTime le 2025-06-01T00:00:00Z",
            "filter = signInActivity/lastSignInDateTime le 2025-06-01T00:00:00Z and accountEnabled eq true",
        ),
    );
    let (code, out, err) = world.userload(&["validate"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        format!("{out}{err}").contains(
            "Graph filters on `signInActivity` only when no other property is in the filter"
        ),
        "{out}{err}"
    );
}

#[test]
fn sign_in_activity_without_its_permission_is_refused_and_check_says_what_to_grant() {
    let world = world(
        20,
        "input_groups = Staff, Admins, Contractors",
        &format!("{MAPPING}{SIGN_IN_FIELD}"),
    );
    world.graph.with(|s| s.behaviour.sign_in_denied = true);
    let (code, out, _) = world.userload(&["check"]);
    assert_ne!(code, 0);
    assert!(out.contains("AuditLog.Read.All"), "{out}");
    assert!(out.contains("Entra ID P1"), "{out}");
    let (code, _, err) = world.userload(&["run"]);
    assert_eq!(code, 2);
    assert!(err.contains("Authorization_RequestDenied"), "{err}");
    assert!(err.contains("AuditLog.Read.All"), "{err}");
    assert_eq!(world.snipe.with(|s| s.traffic.writes()), 0);
}

#[test]
fn in_file_tests_give_a_sample_users_groups_and_licences() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{MAPPING}{LICENCE_FIELD}
[[test]]
name = \"a contractor with E3\"
[test.user]
userPrincipalName = \"c@contoso.com\"
givenName = \"C\"
accountEnabled = true
groups = [\"Contractors\"]
licenses = [\"ENTERPRISEPACK\", \"SPE_E3\"]
[test.expect]
username = \"c@contoso.com\"
first_name = \"C\"
activated = true
jobtitle = \"restricted\"
notes = \"Contractors\"
employee_num = \"E3\"

[[test]]
name = \"nobody in particular\"
[test.user]
userPrincipalName = \"n@contoso.com\"
givenName = \"N\"
accountEnabled = true
groups = []
[test.expect]
username = \"n@contoso.com\"
first_name = \"N\"
activated = true
jobtitle = \"user\"
"
    );
    write(dir.path(), "roles.toml", &text);
    let (code, out, err) = outcome(&userload(dir.path(), &["mapping", "test", "roles.toml"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 passed") || out.contains("passed"), "{out}");
    // A wrong expectation fails.
    write(
        dir.path(),
        "roles.toml",
        &text.replace("jobtitle = \"restricted\"", "jobtitle = \"admin\""),
    );
    let (code, out, err) = outcome(&userload(dir.path(), &["mapping", "test", "roles.toml"]));
    assert_ne!(code, 0, "{out}{err}");
}

/// A Snipe-IT mapping that reads no group: the scope tests use the config alone.
const PLAIN: &str = r#"
version = 1
target = "snipeit"
match = "username"
active = { field = "activated", active = true, inactive = false }

[fields.username]
source = "userPrincipalName"

[fields.first_name]
source = ["givenName", "displayName"]

[fields.activated]
source = "accountEnabled"
"#;

#[test]
fn several_groups_and_exclusions_scope_the_run_and_the_plan_counts_each() {
    let world = world(
        150,
        "groups = Admins, Contractors\nexclude_groups = Agency staff\n\
         filter = accountEnabled eq true",
        PLAIN,
    );
    let (admins, contractors, agency, users) = world.graph.with(|s| {
        let t = &s.tenant;
        (
            t.members(tenant::ADMIN_GROUP).unwrap(),
            t.members(CONTRACTORS).unwrap(),
            t.members(AGENCY).unwrap(),
            t.users().collect::<Vec<Value>>(),
        )
    });
    let enabled: BTreeSet<String> = users
        .iter()
        .filter(|u| u["accountEnabled"] == true)
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let count = |set: &BTreeSet<String>| set.intersection(&enabled).count();
    let brought: BTreeSet<String> = admins.union(&contractors).cloned().collect();
    let removed = count(&brought.intersection(&agency).cloned().collect());
    assert!(removed > 0, "the exclusion removes someone");
    let expected: BTreeSet<String> = brought
        .difference(&agency)
        .filter(|id| enabled.contains(*id))
        .cloned()
        .collect();

    let (code, out, err) = world.userload(&["plan", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["scope"]["groups"][0]["group"], "Admins");
    assert_eq!(plan["scope"]["groups"][0]["users"], count(&admins));
    assert_eq!(plan["scope"]["groups"][1]["group"], "Contractors");
    assert_eq!(plan["scope"]["groups"][1]["users"], count(&contractors));
    assert_eq!(plan["scope"]["excluded"][0]["group"], "Agency staff");
    assert_eq!(plan["scope"]["excluded"][0]["id"], AGENCY);
    assert_eq!(plan["scope"]["excluded"][0]["users"], removed);
    assert_eq!(plan["create"].as_array().unwrap().len(), expected.len());
    assert!(
        plan["mode_reason"]
            .as_str()
            .unwrap()
            .contains("delta runs are unavailable: the config scopes users by `groups`"),
        "{}",
        plan["mode_reason"]
    );

    let (code, _, err) = world.userload(&["plan"]);
    assert_eq!(code, 0);
    let line = format!(
        "scope: users brought in by groups: Admins {}, Contractors {}; left out by \
         exclude_groups: Agency staff {removed}",
        count(&admins),
        count(&contractors)
    );
    assert!(err.contains(&line), "{err}");

    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{out}{err}");
    let written: BTreeSet<String> = world.snipe.with(|s| {
        s.users
            .values()
            .filter_map(|u| u.get("username").and_then(Value::as_str).map(str::to_owned))
            .collect()
    });
    let wanted: BTreeSet<String> = users
        .iter()
        .filter(|u| expected.contains(u["id"].as_str().unwrap()))
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(written, wanted);
}

#[test]
fn the_old_group_key_joins_the_list_of_groups() {
    let world = world(
        80,
        &format!("group = {}\ngroups = Contractors", tenant::STAFF_GROUP),
        PLAIN,
    );
    let (code, out, err) = world.userload(&["plan", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let (staff, contractors) = world.graph.with(|s| {
        (
            s.tenant.members(tenant::STAFF_GROUP).unwrap(),
            s.tenant.members(CONTRACTORS).unwrap(),
        )
    });
    assert_eq!(plan["scope"]["groups"][0]["group"], tenant::STAFF_GROUP);
    assert_eq!(plan["scope"]["groups"][0]["users"], staff.len());
    assert_eq!(plan["scope"]["groups"][1]["users"], contractors.len());
    assert_eq!(
        plan["create"].as_array().unwrap().len(),
        staff.union(&contractors).count()
    );
}

#[test]
fn a_missing_scope_group_stops_the_run_and_departs_nobody() {
    let world = world(60, "groups = Staff, Contractors", PLAIN);
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 0, "{out}{err}");
    let loaded = world.snipe.with(|s| s.users.len());
    assert!(loaded > 0);
    let writes = world.snipe.with(|s| s.traffic.writes());
    // The Contractors group is renamed: the config's name no longer exists.
    world.graph.with(|s| {
        let members = s.tenant.members(CONTRACTORS).unwrap();
        let direct: Vec<String> = members
            .difference(&s.tenant.members(AGENCY).unwrap())
            .cloned()
            .collect();
        s.tenant
            .add_group(CONTRACTORS, "External", direct, [AGENCY.to_owned()]);
    });
    let (code, out, err) = world.userload(&["run"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("no group is named `Contractors`"), "{err}");
    assert_eq!(
        world.snipe.with(|s| s.traffic.writes()),
        writes,
        "nothing written"
    );
    let (code, out, _) = world.userload(&["check"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("✗ groups: no group is named `Contractors`"),
        "{out}"
    );
}

#[test]
fn a_group_both_in_scope_and_excluded_does_not_validate() {
    let world = world(
        30,
        "groups = Staff, Contractors\nexclude_groups = contractors",
        PLAIN,
    );
    let (code, out, err) = world.userload(&["validate"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("`contractors` is both in `groups` and in `exclude_groups`"),
        "{out}{err}"
    );
}

#[test]
fn a_mapping_reading_groups_licences_or_sign_ins_runs_in_full() {
    for (lines, mapping, why) in [
        (
            "input_groups = Staff, Admins, Contractors",
            MAPPING.to_owned(),
            "the mapping reads `groups`",
        ),
        (
            "",
            format!("{PLAIN}{SIGN_IN_FIELD}"),
            "the mapping reads `signInActivity`",
        ),
        (
            "",
            format!("{PLAIN}{LICENCE_FIELD}"),
            "the mapping reads `licenses`",
        ),
    ] {
        let world = world(20, lines, &mapping);
        world
            .graph
            .with(|s| s.apps[0].roles.push("Organization.Read.All".to_owned()));
        for _ in 0..2 {
            let (code, out, err) = world.userload(&["run"]);
            assert_eq!(code, 0, "{out}{err}");
        }
        let (code, out, err) = world.userload(&["plan", "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        let plan: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(plan["mode"], "full", "{why}");
        let reason = plan["mode_reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("delta runs are unavailable: {why}")),
            "{reason}"
        );
        let delta_reads = world.graph.with(|s| {
            s.graph_log()
                .iter()
                .filter(|l| l.path == "/v1.0/users/delta")
                .count()
        });
        assert_eq!(delta_reads, 0, "{why}");
    }
}

#[test]
fn explain_shows_the_groups_a_user_is_in_and_the_value_they_make() {
    let world = world(
        60,
        "input_groups = Staff, Admins, Contractors\ngroups = Staff, Contractors\n\
         exclude_groups = Agency staff",
        MAPPING,
    );
    let (agency, admin) = world.graph.with(|s| {
        let upn = |id: &String| {
            s.tenant.user(id).unwrap()["userPrincipalName"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        (
            upn(s.tenant.members(AGENCY).unwrap().first().unwrap()),
            upn(s
                .tenant
                .members(tenant::ADMIN_GROUP)
                .unwrap()
                .first()
                .unwrap()),
        )
    });
    let (code, out, err) = world.userload(&["explain", &admin, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let e: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        e["scope"]["groups"]["member_of"],
        serde_json::json!(["Staff"])
    );
    assert_eq!(e["scope"]["in_scope"], true);
    let role = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "jobtitle")
        .unwrap();
    assert_eq!(role["result"]["value"], "admin", "{role}");
    assert_eq!(role["read"], serde_json::json!(["Staff", "Admins"]));
    let (_, out, err) = world.userload(&["explain", &agency]);
    assert!(
        out.contains("groups: ✗ member of: Contractors; excluded by: Agency staff"),
        "{out}{err}"
    );
}

#[test]
fn a_group_name_the_config_does_not_read_is_refused_in_first_of() {
    let world = world(
        30,
        "input_groups = Staff, Contractors",
        &MAPPING.replace("[\"Admins\", \"admin\"]", "[\"IT-Admins\", \"admin\"]"),
    );
    let (code, out, err) = world.userload(&["validate"]);
    assert_eq!(code, 2, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains(
            "`first_of` names the group `it-admins`, which is not in the config's input_groups"
        ),
        "{all}"
    );
    assert!(all.contains("roles.toml:18"), "{all}");
}
