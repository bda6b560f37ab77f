//! `userload explain USER` through the real binary, against the Graph and Snipe-IT
//! simulators: an unmatched user (a create), an in-scope user a run loaded (nothing to do),
//! a user whose target value was changed by hand (drift, an update), a user a filter clause
//! keeps out, and a user Graph does not have.

use serde_json::Value;

use crate::util::SnipeItWorld;

/// The tenant, Snipe-IT and the config, shared with the other Snipe-IT tests.
type Setup = SnipeItWorld;

impl Setup {
    /// `explain WHO --json`.
    fn explain(&self, who: &str) -> Value {
        let (code, stdout, stderr) = self.userload(&["explain", who, "--json"]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// An enabled member's (id, user principal name, mail).
    fn member(&self) -> (String, String, Option<String>) {
        self.graph.with(|g| {
            let u = g
                .tenant
                .users()
                .find(|u| {
                    u["accountEnabled"] == true
                        && u["userType"] == "Member"
                        && u["jobTitle"].is_string()
                        && u["mail"].is_string()
                })
                .unwrap();
            (
                u["id"].as_str().unwrap().to_owned(),
                u["userPrincipalName"].as_str().unwrap().to_owned(),
                u["mail"].as_str().map(str::to_owned),
            )
        })
    }
}

#[test]
fn explain_shows_scope_fields_match_and_action_step_by_step() {
    let s = Setup::new(30, 9, "", "");
    let (id, upn, mail) = s.member();
    // Before any run: no state, no target user; a run would create it.
    let e = s.explain(&upn);
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["scope"]["in_scope"], true);
    assert_eq!(e["target"]["state"], Value::Null);
    assert_eq!(e["target"]["found"], Value::Null);
    assert_eq!(e["action"]["do"], "create", "{e:#}");
    let username = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "username")
        .unwrap();
    assert_eq!(username["read"], upn.as_str());
    assert_eq!(username["result"]["value"], upn.as_str());
    assert!(
        !e["action"]["references"]["entities_to_create"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.snipe.with(|x| x.traffic.writes()),
        0,
        "explain writes nothing"
    );

    // After a run: linked through the state, nothing to do; found by mail as well.
    let (code, _, stderr) = s.userload(&["run"]);
    assert_eq!(code, 0, "{stderr}");
    let e = s.explain(mail.as_deref().unwrap());
    assert_eq!(e["id"], id.as_str());
    assert!(e["target"]["state"]["target_id"].is_string(), "{e:#}");
    assert_eq!(e["action"]["do"], "nothing", "{e:#}");

    // A title changed by hand in Snipe-IT is drift: the action puts it back.
    s.snipe.with(|x| {
        let (sid, _) = x.user_named(&upn).unwrap();
        x.users
            .get_mut(&sid)
            .unwrap()
            .insert("jobtitle".into(), "Changed by hand".into());
    });
    let e = s.explain(&id);
    assert_eq!(e["action"]["do"], "update", "{e:#}");
    let change = &e["action"]["changes"][0];
    assert_eq!(change["field"], "jobtitle");
    assert_eq!(change["from"], "Changed by hand");
    // The text form says the same to a person.
    let (code, text, _) = s.userload(&["explain", &upn]);
    assert_eq!(code, 0);
    assert!(text.contains("action: update"), "{text}");
    assert!(text.contains("jobtitle: \"Changed by hand\""), "{text}");
}

#[test]
fn explain_names_the_clause_that_keeps_a_user_out_and_a_user_graph_lacks() {
    let s = Setup::new(
        30,
        9,
        "filter = accountEnabled eq true and employeeType eq 'Staff'",
        "",
    );
    let (id, upn) = s.graph.with(|g| {
        let u = g
            .tenant
            .users()
            .find(|u| u["accountEnabled"] == true && u["employeeType"] == "Contractor")
            .unwrap();
        (
            u["id"].as_str().unwrap().to_owned(),
            u["userPrincipalName"].as_str().unwrap().to_owned(),
        )
    });
    let e = s.explain(&id);
    assert_eq!(e["user"], upn.as_str());
    assert_eq!(e["scope"]["in_scope"], false);
    assert_eq!(e["action"]["do"], "nothing", "{e:#}");
    let clauses = e["scope"]["filter"]["clauses"].as_array().unwrap();
    assert_eq!(clauses[0]["clause"], "accountEnabled eq true");
    assert_eq!(clauses[0]["passes"], true);
    assert_eq!(clauses[1]["clause"], "employeeType eq 'Staff'");
    assert_eq!(clauses[1]["passes"], false);
    let (code, text, _) = s.userload(&["explain", &id]);
    assert_eq!(code, 0);
    assert!(text.contains("OUT OF SCOPE"), "{text}");
    assert!(text.contains("✗ employeeType eq 'Staff'"), "{text}");

    let (code, _, stderr) = s.userload(&["explain", "nobody@contoso.example"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no user in Graph has"), "{stderr}");
}
