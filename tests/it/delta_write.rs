//! Delta runs that write without asking the target first, through the real binary against
//! the Graph and SCIM simulators with the shipped SCIM mapping (manager expanded): a
//! changed user is planned against the record the state keeps of its last write, so the
//! run sends its PATCH and no GET; an owned user the state keeps no record of (a state
//! from before) is looked up as before; a write that failed is made by the next run.

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::scim::{Fault, ScimSim};
use sim::tenant::Tenant;

use crate::util::{json_file, outcome, userload, write};

/// A synthetic tenant loaded into the SCIM simulator by a first run.
struct Setup {
    graph: GraphSim,
    scim: ScimSim,
    dir: tempfile::TempDir,
}

impl Setup {
    fn loaded(users: usize) -> Setup {
        let graph = GraphSim::start(Tenant::synthetic(users, 5)).unwrap();
        // Small delta pages: a round of a few pages, re-read while it is read.
        graph.with(|g| g.behaviour.delta_page_size = 7);
        let scim = ScimSim::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\n\
             domain = {url}\n[target]\ntype = scim\nurl = {}\n\
             [sync]\nconcurrency = 4\ncreate_disabled = true\nstate = state.db\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            graph_sim::SECRET,
            scim.url(),
        );
        write(dir.path(), "userload.ini", &text);
        let setup = Setup { graph, scim, dir };
        let first = setup.run();
        assert_eq!(first["counts"]["created"], users, "{first:#}");
        setup
    }

    /// `run`: its report.
    fn run(&self) -> Value {
        let (code, stdout, stderr) = outcome(&userload(
            self.dir.path(),
            &["run", "--config", "userload.ini", "--report", "r.json"],
        ));
        assert!(code == 0 || code == 1, "{stdout}{stderr}");
        json_file(self.dir.path(), "r.json")
    }

    /// The first `n` Entra users given a new title.
    fn retitle(&self, n: usize, title: &str) -> Vec<String> {
        self.graph.with(|g| {
            let ids: Vec<String> = g.tenant.ids().into_iter().take(n).collect();
            for id in &ids {
                assert!(g.tenant.update(id, json!({ "jobTitle": title })));
            }
            ids
        })
    }

    /// The SCIM requests from number `from` on with this method.
    fn requests(&self, from: usize, method: &str) -> Vec<sim::scim::Logged> {
        self.scim.with(|s| {
            s.log[from..]
                .iter()
                .filter(|l| l.method == method)
                .cloned()
                .collect()
        })
    }

    fn logged(&self) -> usize {
        self.scim.with(|s| s.log.len())
    }

    /// The titles the SCIM users hold.
    fn titles(&self, title: &str) -> usize {
        self.scim
            .with(|s| s.users().filter(|u| u["title"] == title).count())
    }
}

#[test]
fn a_delta_run_writes_changed_users_without_looking_them_up() {
    let setup = Setup::loaded(60);
    let before = setup.logged();
    setup.retitle(25, "Changed by delta");
    let report = setup.run();
    assert_eq!(report["mode"], "delta", "{report:#}");
    assert_eq!(report["counts"]["updated"], 25, "{report:#}");
    assert_eq!(report["counts"]["unchanged"], 35, "{report:#}");
    assert!(
        setup.requests(before, "GET").is_empty(),
        "no look-up: {report:#}"
    );
    let patches = setup.requests(before, "PATCH");
    assert_eq!(patches.len(), 25);
    // Each PATCH carries the title alone: the only field that differs from the last write.
    for patch in &patches {
        let operations = patch.operations.as_ref().unwrap().as_array().unwrap();
        assert_eq!(operations.len(), 1, "{operations:?}");
        assert_eq!(operations[0]["value"], "Changed by delta", "{operations:?}");
    }
    assert_eq!(setup.titles("Changed by delta"), 25);
    // Written and remembered: the next night has nothing to do.
    let quiet = setup.run();
    assert_eq!(quiet["mode"], "delta");
    assert_eq!(quiet["requests"]["target"], 0, "{quiet:#}");
}

#[test]
fn an_owned_user_the_state_keeps_no_record_of_is_looked_up_as_before() {
    let setup = Setup::loaded(20);
    let ids = setup.retitle(3, "Changed");
    // A state from before: the first user's last written record is not kept.
    let db = rusqlite::Connection::open(setup.dir.path().join("state.db")).unwrap();
    let forgotten = db
        .execute("DELETE FROM written WHERE entra_id = ?1", [&ids[0]])
        .unwrap();
    assert_eq!(forgotten, 1);
    drop(db);
    let before = setup.logged();
    let report = setup.run();
    assert_eq!(report["mode"], "delta", "{report:#}");
    assert_eq!(report["counts"]["updated"], 3, "{report:#}");
    let gets = setup.requests(before, "GET");
    assert_eq!(gets.len(), 1, "one look-up, by key: {gets:?}");
    assert!(gets[0].query.contains_key("filter"), "{gets:?}");
    assert_eq!(setup.requests(before, "PATCH").len(), 3);
    assert_eq!(setup.titles("Changed"), 3);
}

#[test]
fn a_write_that_failed_is_made_by_the_next_delta_run() {
    let setup = Setup::loaded(20);
    setup.retitle(5, "Changed");
    // The first request of the run (a PATCH: nothing is looked up) is refused.
    setup.scim.with(|s| {
        let next = s.requests() + 1;
        s.behaviour
            .faults
            .insert(next, Fault::Answer(400, r#"{"detail":"no"}"#.into()));
    });
    let failed = setup.run();
    assert_eq!(failed["mode"], "delta", "{failed:#}");
    assert_eq!(failed["counts"]["updated"], 4, "{failed:#}");
    assert_eq!(failed["counts"]["failed"], 1, "{failed:#}");
    assert_eq!(setup.titles("Changed"), 4);
    // The link was not advanced: the round is read again, and only the failed write made.
    let before = setup.logged();
    let replay = setup.run();
    assert_eq!(replay["mode"], "delta", "{replay:#}");
    assert_eq!(replay["counts"]["updated"], 1, "{replay:#}");
    assert_eq!(replay["counts"]["failed"], 0, "{replay:#}");
    assert_eq!(setup.requests(before, "PATCH").len(), 1);
    assert!(setup.requests(before, "GET").is_empty());
    assert_eq!(setup.titles("Changed"), 5);
}
