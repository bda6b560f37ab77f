//! Taking over users already in the target, through the real binary: a Snipe-IT loaded by
//! CSV years ago, no state file, and a mapping that matches on several keys in order.

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::snipeit::{self, SnipeIt, SnipeItSim};
use sim::tenant::Tenant;

use crate::util::{self, repo};

struct World {
    _graph: GraphSim,
    snipeit: SnipeItSim,
    dir: tempfile::TempDir,
}

fn person(id: &str, name: &str, employee: &str) -> Value {
    let upn = format!("{}@contoso.com", name.to_lowercase());
    json!({
        "id": id, "userPrincipalName": upn, "mail": upn, "givenName": name,
        "surname": "Lee", "employeeId": employee, "accountEnabled": true,
    })
}

impl World {
    /// Entra holds Ann, Bob and Cy; Snipe-IT holds Ann (by employee number, under an old
    /// user name and address), Bob (by e-mail, without an employee number) and a service
    /// account nobody maps to.
    fn new() -> World {
        let mut tenant = Tenant::new();
        tenant.add(person("a1", "Ann", "E1"));
        tenant.add(person("b2", "Bob", "E2"));
        tenant.add(person("c3", "Cy", "E3"));
        let graph = GraphSim::start(tenant).unwrap();
        let snipeit = SnipeIt::start().unwrap();
        snipeit.with(|s| {
            let ann = json!({"first_name": "Ann", "username": "alee", "email": "ann.lee@old.example", "employee_num": "E1"});
            s.add_user(ann);
            let bob = json!({"first_name": "Bob", "username": "bsmith", "email": "BOB@contoso.com"});
            s.add_user(bob);
            s.add_user(json!({"first_name": "Service", "username": "svc-backup"}));
        });
        let dir = tempfile::tempdir().unwrap();
        util::write(dir.path(), "secret.txt", graph_sim::SECRET);
        util::write(dir.path(), "token.txt", snipeit::TOKEN);
        let shipped = std::fs::read_to_string(repo().join("mappings/snipeit.toml")).unwrap();
        let mapping = shipped.replace(
            "match = \"username\"",
            "match = [\"employee_num\", \"email\", \"username\"]",
        );
        assert_ne!(mapping, shipped);
        util::write(dir.path(), "takeover.toml", &mapping);
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = file:secret.txt\n\
             authority = {url}\ndomain = {url}\nmax_attempts = 2\n\
             [target]\ntype = rest\npreset = snipeit\nurl = {}\ntoken = file:token.txt\n\
             [sync]\nstate = state.db\nmapping = takeover.toml\ndelta = no\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            snipeit.url(),
        );
        util::write(dir.path(), "userload.ini", &text);
        World {
            _graph: graph,
            snipeit,
            dir,
        }
    }

    fn userload(&self, args: &[&str]) -> (i32, String, String) {
        util::outcome(&util::userload(self.dir.path(), args))
    }

    fn report(&self) -> Value {
        util::json_file(self.dir.path(), "r.json")
    }

    /// Snipe-IT's users: (user name, e-mail, employee number), by id.
    fn users(&self) -> Vec<(u64, String, String, String)> {
        self.snipeit.with(|s| {
            let text = |row: &serde_json::Map<String, Value>, key: &str| {
                row.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            s.users
                .iter()
                .map(|(id, row)| {
                    let (name, mail) = (text(row, "username"), text(row, "email"));
                    (*id, name, mail, text(row, "employee_num"))
                })
                .collect()
        })
    }
}

#[test]
fn users_already_in_the_target_are_taken_over_by_key_and_kept_by_the_state() {
    let w = World::new();
    let (code, stdout, stderr) = w.userload(&["plan", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("matched: 0 by state, 1 by employee_num, 1 by email, 0 by username"),
        "{stderr}"
    );
    assert!(stdout.contains("+ create cy@contoso.com"), "{stdout}");
    let (_, stdout, _) = w.userload(&["plan", "--config", "userload.ini", "--json"]);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        plan["matched"],
        json!({"state": 0, "keys": [
            {"key": "employee_num", "users": 1},
            {"key": "email", "users": 1},
            {"key": "username", "users": 0},
        ]})
    );

    let run = ["run", "--config", "userload.ini", "--report", "r.json"];
    let (code, stdout, stderr) = w.userload(&run);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("matched: 0 by state, 1 by employee_num, 1 by email, 0 by username"),
        "{stdout}"
    );
    let report = w.report();
    assert_eq!(
        report["matched"]["keys"][1],
        json!({"key": "email", "users": 1})
    );
    let counts = &report["counts"];
    assert_eq!(
        (counts["created"].as_u64(), counts["updated"].as_u64()),
        (Some(1), Some(2))
    );
    // Ann and Bob kept their Snipe-IT users, now written from Entra; Cy is new; the service
    // account is as it was.
    let users = w.users();
    let row = |id: u64, name: &str, mail: &str, num: &str| {
        (id, name.to_owned(), mail.to_owned(), num.to_owned())
    };
    assert_eq!(
        users,
        [
            row(1, "ann@contoso.com", "ann@contoso.com", "E1"),
            row(2, "bob@contoso.com", "BOB@contoso.com", "E2"),
            row(3, "svc-backup", "", ""),
            row(4, "cy@contoso.com", "cy@contoso.com", "E3"),
        ]
    );

    // The links are in the state: the second run matches everyone through it and writes
    // nothing.
    let (code, stdout, stderr) = w.userload(&run);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("matched: 3 by state, 0 by employee_num, 0 by email, 0 by username"),
        "{stdout}"
    );
    let report = w.report();
    assert_eq!(report["counts"]["unchanged"], 3, "{report:#}");
    assert_eq!(report["requests"]["target_writes"], 0, "{report:#}");
    assert_eq!(w.users(), users);
}
