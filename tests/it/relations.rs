//! References in Snipe-IT, through the real binary: the shipped mapping writes each user's
//! department, location, company and manager as Snipe-IT's ids, creating the departments,
//! locations and companies it lacks once; `plan` shows those creates and makes none;
//! `policy = "lookup"` leaves a missing name empty and says so; two departments with one
//! name are reported with both ids; a list Snipe-IT does not have fails `validate`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use userload::state::State;

use crate::util::{SnipeItWorld, repo, write};

/// The tenant, Snipe-IT and the config, shared with the other Snipe-IT tests.
type Setup = SnipeItWorld;

impl Setup {
    /// `run` with a report: the exit code and the report.
    fn run(&self) -> (i32, Value) {
        let (code, stdout, stderr) = self.userload(&["run", "--report", "r.json"]);
        let text = std::fs::read_to_string(self.dir.path().join("r.json"))
            .unwrap_or_else(|e| panic!("{e}\n{stdout}{stderr}"));
        (code, serde_json::from_str(&text).unwrap())
    }

    /// Snipe-IT's entities of one kind: name → ids.
    fn entities(&self, kind: &str) -> BTreeMap<String, Vec<u64>> {
        self.snipe.with(|s| {
            let list = match kind {
                "department" => &s.departments,
                "location" => &s.locations,
                _ => &s.companies,
            };
            let mut by_name: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for (id, name) in list {
                by_name.entry(name.clone()).or_default().push(*id);
            }
            by_name
        })
    }

    /// Each Snipe-IT user's columns, by username.
    fn users(&self) -> BTreeMap<String, Map<String, Value>> {
        self.snipe.with(|s| {
            s.users
                .values()
                .map(|u| (u["username"].as_str().unwrap().to_owned(), u.clone()))
                .collect()
        })
    }

    /// Each Entra user's properties, by user principal name.
    fn entra(&self) -> BTreeMap<String, Value> {
        self.graph.with(|g| {
            g.tenant
                .users()
                .map(|u| {
                    (
                        u["userPrincipalName"].as_str().unwrap().to_owned(),
                        u.clone(),
                    )
                })
                .collect()
        })
    }
}

#[test]
fn departments_locations_companies_and_managers_are_written_as_snipeit_ids() {
    let s = Setup::new(40, 5, "", "");
    // Snipe-IT knows two departments already, one spelt in another case.
    let (finance, it) = s
        .snipe
        .with(|x| (x.add_department("Finance"), x.add_department("it")));
    let (code, stdout, stderr) = s.userload(&["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("+ department \"Engineering\""), "{stdout}");
    assert!(stdout.contains("+ company \"Contoso\""), "{stdout}");
    assert!(!stdout.contains("+ department \"Finance\""), "{stdout}");
    assert!(!stdout.contains("+ department \"IT\""), "{stdout}");
    assert_eq!(s.entities("department").len(), 2, "plan creates nothing");
    assert!(s.entities("location").is_empty());

    let (code, report) = s.run();
    assert_eq!(code, 0, "{report:#}");
    let created = report["references"]["entities_created"]
        .as_array()
        .unwrap()
        .len();
    let departments = s.entities("department");
    let locations = s.entities("location");
    let companies = s.entities("company");
    // Each name once: made once, or found.
    assert!(
        departments.values().all(|ids| ids.len() == 1),
        "{departments:?}"
    );
    assert!(
        locations.values().all(|ids| ids.len() == 1),
        "{locations:?}"
    );
    assert_eq!(companies.len(), 1, "{companies:?}");
    assert_eq!(
        created,
        departments.len() - 2 + locations.len() + companies.len()
    );
    let id_of = |list: &BTreeMap<String, Vec<u64>>, name: &str| {
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, ids)| ids[0])
    };
    assert_eq!(id_of(&departments, "finance"), Some(finance));
    assert_eq!(id_of(&departments, "IT"), Some(it));
    let entra = s.entra();
    let users = s.users();
    let snipe_id = |upn: &str| s.snipe.with(|x| x.user_named(upn).map(|(id, _)| id));
    for (upn, user) in &users {
        let e = &entra[upn];
        let number = |column: &str| user.get(column).and_then(Value::as_u64);
        let expected = |list, key: &str| e[key].as_str().and_then(|name| id_of(list, name));
        assert_eq!(
            number("department_id"),
            expected(&departments, "department"),
            "{upn}"
        );
        assert_eq!(
            number("location_id"),
            expected(&locations, "officeLocation"),
            "{upn}"
        );
        assert_eq!(
            number("company_id"),
            expected(&companies, "companyName"),
            "{upn}"
        );
        let manager = s.graph.with(|g| {
            let id = e["id"].as_str().unwrap();
            let manager = g.tenant.manager_of(id)?;
            Some(
                g.tenant.user(manager)?["userPrincipalName"]
                    .as_str()?
                    .to_owned(),
            )
        });
        assert_eq!(
            number("manager_id"),
            manager.and_then(|m| snipe_id(&m)),
            "{upn}"
        );
    }
    assert!(
        users
            .values()
            .filter(|u| u.get("manager_id").is_some())
            .count()
            > 30
    );
    // The state remembers what it created.
    let owner = format!("Snipe-IT at {}/", s.snipe.url());
    let state = State::open(&s.dir.path().join("state.db"), &owner).unwrap();
    assert_eq!(state.created_entities().unwrap().len(), created);
    drop(state);

    // The next night writes nothing and makes nothing.
    let writes = s.snipe.with(|x| x.traffic.writes());
    let (code, report) = s.run();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(s.snipe.with(|x| x.traffic.writes()), writes, "{report:#}");
    assert_eq!(
        report["references"]["entities_created"],
        Value::Array(vec![])
    );
}

#[test]
fn lookup_leaves_a_missing_name_empty_and_two_entities_of_one_name_are_reported() {
    // The shipped mapping with departments looked up, not created.
    let shipped = std::fs::read_to_string(repo().join("mappings/snipeit.toml")).unwrap();
    let lookup = shipped.replace(
        "refers = { entity = \"department\", policy = \"create\", aliases = \"department_names\" }",
        "refers = { entity = \"department\", policy = \"lookup\" }",
    );
    assert_ne!(lookup, shipped);
    let s = Setup::new(30, 5, "", "mapping = lookup.toml");
    write(s.dir.path(), "lookup.toml", &lookup);
    // Finance is known, twice; Sales once; the rest not at all.
    let (sales, twice) = s.snipe.with(|x| {
        let first = x.add_department("Finance");
        let second = x.add_department("FINANCE ");
        (x.add_department("Sales"), (first, second))
    });
    let (code, report) = s.run();
    assert_eq!(code, 0, "{report:#}");
    let unresolved = report["references"]["unresolved"].as_array().unwrap();
    let entra = s.entra();
    let users = s.users();
    let department = |upn: &str| entra[upn]["department"].as_str().map(str::to_owned);
    let mut listed = 0;
    for (upn, user) in &users {
        match department(upn).as_deref() {
            Some("Sales") => assert_eq!(user["department_id"], Value::from(sales), "{upn}"),
            Some("Finance") => {
                assert!(
                    user.get("department_id").is_none_or(Value::is_null),
                    "{upn}"
                );
                let entry = unresolved
                    .iter()
                    .find(|r| r["user"] == upn.as_str())
                    .unwrap();
                let reason = entry["reason"].as_str().unwrap();
                assert!(
                    reason.contains(&format!("ids {}, {}", twice.0, twice.1)),
                    "{reason}"
                );
                listed += 1;
            }
            Some(other) => {
                assert!(
                    user.get("department_id").is_none_or(Value::is_null),
                    "{upn}"
                );
                let entry = unresolved
                    .iter()
                    .find(|r| r["user"] == upn.as_str() && r["names"] == other)
                    .unwrap_or_else(|| panic!("{upn} ({other}) not listed"));
                assert!(
                    entry["reason"]
                        .as_str()
                        .unwrap()
                        .contains("policy = \"lookup\"")
                );
                listed += 1;
            }
            None => {}
        }
    }
    assert!(listed > 5, "{listed}");
    assert_eq!(s.entities("department").len(), 3, "nothing created");
}

#[test]
fn a_list_the_target_does_not_have_fails_validate_at_its_line() {
    let shipped = std::fs::read_to_string(repo().join("mappings/snipeit.toml")).unwrap();
    let wrong = shipped.replace(
        "refers = { entity = \"location\", policy = \"create\" }",
        "refers = { entity = \"building\", policy = \"create\" }",
    );
    let s = Setup::new(5, 5, "", "mapping = wrong.toml");
    write(s.dir.path(), "wrong.toml", &wrong);
    let (code, _, stderr) = s.userload(&["validate"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("has no list of `building`"), "{stderr}");
    assert!(stderr.contains("wrong.toml"), "{stderr}");
    assert!(stderr.contains("its lists are: "), "{stderr}");
    let (code, _, stderr) = s.userload(&["plan"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        s.snipe.with(|x| x.traffic.log.len()),
        0,
        "nothing was asked"
    );
}

#[test]
fn a_name_snipeit_cannot_take_leaves_its_users_without_it_and_nothing_else_stops() {
    let s = Setup::new(12, 5, "", "");
    let long = "Building ".repeat(40);
    let upn = s.graph.with(|g| {
        let user = g
            .tenant
            .users()
            .find(|u| u["accountEnabled"] == true && u["userType"] == "Member")
            .unwrap()
            .clone();
        let id = user["id"].as_str().unwrap().to_owned();
        g.tenant
            .update(&id, serde_json::json!({ "officeLocation": long.clone() }));
        user["userPrincipalName"].as_str().unwrap().to_owned()
    });
    let (code, report) = s.run();
    assert_eq!(code, 0, "{report:#}");
    let made = report["references"]["entities_created"].as_array().unwrap();
    let failed = made.iter().find(|e| e["error"].is_string()).unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("255"),
        "{failed}"
    );
    let unresolved = report["references"]["unresolved"].as_array().unwrap();
    let entry = unresolved
        .iter()
        .find(|r| r["user"] == upn.as_str())
        .unwrap();
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .starts_with("creating the location failed")
    );
    let user = &s.users()[&upn];
    assert!(
        user.get("location_id").is_none_or(Value::is_null),
        "{user:?}"
    );
    assert!(user["department_id"].is_number() || s.entra()[&upn].get("department").is_none());
    assert_eq!(report["counts"]["failed"], 0);
}
