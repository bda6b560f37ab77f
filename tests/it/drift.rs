//! Full reconciliation and drift, through the real binary against the Snipe-IT simulator: a
//! value changed by hand in the target is left alone by a normal run, shown by `plan
//! --full` and repaired by `run --full`; `on_drift = "keep"` reports without writing;
//! `write = "on_create"` and `write = "if_empty"` leave what the target owns; `full_every`
//! decides which runs reconcile; `status --json` says when the last one ran and what it
//! found.

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::snipeit::{self, SnipeIt, SnipeItSim};
use sim::tenant::Tenant;

use crate::util::{outcome, userload, write};

/// A mapping with one field of each policy.
const MAPPING: &str = r#"
version = 1
target = "snipeit"
match = "username"
active = { field = "activated", active = true, inactive = false }

[fields.username]
source = "userPrincipalName"

[fields.first_name]
source = "givenName"
required = true

[fields.last_name]
source = "surname"
on_drift = "keep"

[fields.jobtitle]
source = "jobTitle"

[fields.email]
source = "mail"
write = "on_create"

[fields.employee_num]
source = "employeeId"
write = "if_empty"

[fields.activated]
source = "accountEnabled"
"#;

/// A tenant, a Snipe-IT simulator and a folder with a config syncing one to the other.
pub(crate) struct Setup {
    pub(crate) graph: GraphSim,
    pub(crate) snipe: SnipeItSim,
    pub(crate) dir: tempfile::TempDir,
}

impl Setup {
    /// `users` in Entra; `sync_lines` added to `[sync]`.
    pub(crate) fn new(users: &[Value], sync_lines: &str) -> Setup {
        Setup::with(users, "", sync_lines)
    }

    /// `users` in Entra; `source_lines` added to `[source]`, `sync_lines` to `[sync]`.
    pub(crate) fn with(users: &[Value], source_lines: &str, sync_lines: &str) -> Setup {
        let mut tenant = Tenant::new();
        for user in users {
            tenant.add(user.clone());
        }
        let graph = GraphSim::start(tenant).unwrap();
        let snipe = SnipeIt::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\n\
             domain = {url}\n{source_lines}\n[target]\ntype = rest\npreset = snipeit\nurl = {}\ntoken = {}\n\
             [sync]\nstate = state.db\n{sync_lines}\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            graph_sim::SECRET,
            snipe.url(),
            snipeit::TOKEN,
        );
        write(dir.path(), "userload.ini", &text);
        write(dir.path(), "drift.toml", MAPPING);
        Setup { graph, snipe, dir }
    }

    pub(crate) fn userload(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = args.to_vec();
        all.extend(["--config", "userload.ini"]);
        outcome(&userload(self.dir.path(), &all))
    }

    /// `run` with a report and `more` arguments: the report, after checking the run went
    /// well.
    pub(crate) fn run(&self, more: &[&str]) -> Value {
        let mut args = vec!["run", "--report", "r.json"];
        args.extend(more);
        let (code, stdout, stderr) = self.userload(&args);
        assert_eq!(code, 0, "{stdout}{stderr}");
        crate::util::json_file(self.dir.path(), "r.json")
    }

    /// A Snipe-IT user's column.
    pub(crate) fn column(&self, username: &str, column: &str) -> Value {
        self.snipe.with(|s| {
            let (_, user) = s.user_named(username).unwrap();
            user.get(column).cloned().unwrap_or(Value::Null)
        })
    }

    /// Changes a Snipe-IT user's column by hand.
    pub(crate) fn edit(&self, username: &str, column: &str, value: Value) {
        self.snipe.with(|s| {
            let (id, _) = s.user_named(username).unwrap();
            s.users
                .get_mut(&id)
                .unwrap()
                .insert(column.to_owned(), value);
        });
    }

    /// Changes an Entra user.
    pub(crate) fn entra(&self, id: &str, changes: Value) {
        assert!(self.graph.with(|g| g.tenant.update(id, changes)));
    }
}

pub(crate) fn user(id: &str, name: &str, employee_id: Option<&str>) -> Value {
    let mut user = json!({
        "id": id,
        "userPrincipalName": format!("{name}@contoso.com"),
        "accountEnabled": true,
        "givenName": name,
        "surname": "Lee",
        "mail": format!("{name}@contoso.com"),
        "jobTitle": "Engineer",
    });
    if let Some(e) = employee_id {
        user["employeeId"] = json!(e);
    }
    user
}

const ANN: &str = "00000000-0000-0000-0000-00000000000a";
const BOB: &str = "00000000-0000-0000-0000-00000000000b";
const CAROL: &str = "00000000-0000-0000-0000-00000000000c";

#[test]
fn drift_is_left_by_a_normal_run_shown_by_plan_full_and_repaired_by_run_full() {
    let setup = Setup::new(
        &[user(ANN, "ann", Some("E1")), user(BOB, "bob", Some("E2"))],
        "",
    );
    let first = setup.run(&[]);
    assert_eq!(first["mode"], "reconcile");
    assert_eq!(first["reconcile"], "first run");
    assert_eq!(first["counts"]["created"], 2);
    setup.edit("ann@contoso.com", "jobtitle", json!("Boss"));

    // Within full_every (7 days by default): a normal run, which trusts the hash.
    let normal = setup.run(&[]);
    assert_eq!(normal["mode"], "delta");
    assert_eq!(normal["reconcile"], Value::Null);
    assert_eq!(normal["counts"]["updated"], 0);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Boss");

    let (code, stdout, stderr) = setup.userload(&["plan", "--full"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("~ drift ann@contoso.com: jobtitle \"Boss\" → \"Engineer\""),
        "{stdout}"
    );
    assert!(stderr.contains("drift in 1 users (1 fields"), "{stderr}");
    let (code, stdout, _) = setup.userload(&["plan", "--full", "--json"]);
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["mode"], "reconcile");
    assert_eq!(
        plan["drift"],
        json!([{"user": "ann@contoso.com", "fields": [
            {"field": "jobtitle", "found": "Boss", "expected": "Engineer", "kept": false}
        ]}])
    );
    // A plan writes nothing.
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Boss");

    let full = setup.run(&["--full"]);
    assert_eq!(full["mode"], "reconcile");
    assert_eq!(full["reconcile"], "--full");
    assert_eq!(full["drift"]["users"], 1);
    assert_eq!(full["drift"]["fields"], 1);
    assert_eq!(full["counts"]["updated"], 1);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Engineer");

    let after = setup.run(&[]);
    assert_eq!(after["mode"], "delta");
    assert_eq!(after["requests"]["target_writes"], 0);

    let (code, stdout, stderr) = setup.userload(&["status", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let status: Value = serde_json::from_str(&stdout).unwrap();
    let last = &status["last_full_reconciliation"];
    assert_eq!(last["drift"], json!({"users": 1, "fields": 1}));
    assert_eq!(last["at"].as_str().map(str::len), Some(20), "{last}");
    let (_, text, _) = setup.userload(&["status"]);
    assert!(
        text.contains("last full reconciliation: ") && text.contains("drift in 1 users"),
        "{text}"
    );
}

#[test]
fn keep_reports_on_create_never_updates_and_if_empty_fills_only_an_empty_value() {
    let setup = Setup::new(
        &[
            user(ANN, "ann", Some("E1")),
            user(BOB, "bob", None),
            user(CAROL, "carol", Some("E3")),
        ],
        "mapping = drift.toml\nfull_every = 0",
    );
    let first = setup.run(&[]);
    assert_eq!(first["counts"]["created"], 3);
    assert_eq!(setup.column("carol@contoso.com", "employee_num"), "E3");
    // By hand in Snipe-IT: ann's last name (kept) and mail (written on create only), and
    // carol's employee number (the target's once set).
    setup.edit("ann@contoso.com", "last_name", json!("Hand"));
    setup.edit("ann@contoso.com", "email", json!("hand@contoso.com"));
    setup.edit("carol@contoso.com", "employee_num", json!("HAND3"));
    // In Entra: bob gets an employee id; carol's and her mail change.
    setup.entra(BOB, json!({"employeeId": "E2"}));
    setup.entra(
        CAROL,
        json!({"employeeId": "E33", "mail": "carol.new@contoso.com"}),
    );

    let second = setup.run(&[]);
    assert_eq!(second["mode"], "reconcile");
    assert_eq!(second["reconcile"], "full_every elapsed");
    assert_eq!(
        second["drift"]["drifted"],
        json!([{"user": "ann@contoso.com", "fields": [
            {"field": "last_name", "found": "Hand", "expected": "Lee", "kept": true}
        ]}])
    );
    assert_eq!(second["counts"]["updated"], 1, "{second:#}");
    assert_eq!(setup.column("ann@contoso.com", "last_name"), "Hand");
    assert_eq!(setup.column("ann@contoso.com", "email"), "hand@contoso.com");
    assert_eq!(setup.column("bob@contoso.com", "employee_num"), "E2");
    assert_eq!(setup.column("carol@contoso.com", "employee_num"), "HAND3");
    assert_eq!(
        setup.column("carol@contoso.com", "email"),
        "carol@contoso.com"
    );

    // Every run reconciles (full_every = 0); the kept drift is reported again, and nothing
    // is written.
    let third = setup.run(&[]);
    assert_eq!(third["mode"], "reconcile");
    assert_eq!(third["drift"]["users"], 1);
    assert_eq!(third["requests"]["target_writes"], 0, "{third:#}");
    assert_eq!(setup.column("ann@contoso.com", "last_name"), "Hand");
}

#[test]
fn a_normal_full_run_writes_what_changed_in_entra_and_leaves_drift_to_the_reconciliation() {
    let setup = Setup::new(
        &[user(ANN, "ann", Some("E1")), user(BOB, "bob", Some("E2"))],
        "delta = no",
    );
    setup.run(&[]);
    // By hand in the target: Ann's first name and Bob's title. In Entra: Ann's title.
    setup.edit("ann@contoso.com", "first_name", json!("Annie"));
    setup.edit("bob@contoso.com", "jobtitle", json!("Boss"));
    setup.entra(ANN, json!({"jobTitle": "Lead"}));
    // Planned against the record of the last write, as the run will be: only the title.
    let (code, stdout, stderr) = setup.userload(&["plan"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("\"Lead\"") && !stdout.contains("Annie"),
        "{stdout}"
    );
    let normal = setup.run(&[]);
    assert_eq!(normal["mode"], "full");
    assert_eq!(normal["counts"]["updated"], 1);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Lead");
    assert_eq!(setup.column("ann@contoso.com", "first_name"), "Annie");
    assert_eq!(setup.column("bob@contoso.com", "jobtitle"), "Boss");

    // Without the state's record of Ann's last write, her target user is looked up by
    // key and compared as the target holds it: the first name is put right too.
    let db = rusqlite::Connection::open(setup.dir.path().join("state.db")).unwrap();
    let forgotten = db
        .execute("DELETE FROM written WHERE entra_id = ?1", [ANN])
        .unwrap();
    assert_eq!(forgotten, 1);
    setup.entra(ANN, json!({"jobTitle": "Head"}));
    let looked_up = setup.run(&[]);
    assert_eq!(looked_up["counts"]["updated"], 1);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Head");
    assert_eq!(setup.column("ann@contoso.com", "first_name"), "ann");
    assert_eq!(setup.column("bob@contoso.com", "jobtitle"), "Boss");

    // The reconciliation repairs Bob's title.
    let full = setup.run(&["--full"]);
    assert_eq!(full["drift"]["users"], 1);
    assert_eq!(setup.column("bob@contoso.com", "jobtitle"), "Engineer");
}
