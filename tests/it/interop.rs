//! userload against SCIM servers its authors did not write. The real `userload run` binary
//! reads a synthetic tenant from the Graph simulator and writes, through the shipped SCIM
//! mapping, to a third-party server started on a free loopback port for each test, or to the
//! SCIM simulator where a test needs a request log. Each test of a third-party server runs
//! once against each of them (see [`Peer`]): scim2-server (`scripts/scim-server.sh`) and
//! django-scim2 on PostgreSQL (`scripts/django-scim.sh`). After each run the
//! server's users are read back and checked one by one against what the mapping makes of
//! each Entra user, and every user the run should not have touched is compared, `meta`
//! included, with what the server held before.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::scim::ScimSim;
use sim::tenant::{self, Tenant};
use userload::config::{self, Config};
use userload::mapping::{self, Context, Mapping};
use userload::state::State;

use crate::scim_target::{Peer, RealServer};
use crate::util;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The bearer token every SCIM server demands.
const TOKEN: &str = "interop-token-27182";
/// `connectorSyncTime` for the expectations (the shipped SCIM mapping reads no time).
const SYNC_TIME: &str = "2024-05-01T06:00:00Z";

/// A SCIM server's users by SCIM id, as it returns them (`meta` included).
type Users = BTreeMap<String, Value>;

/// The SCIM server a test writes to.
enum Server {
    /// A third-party server, read back over HTTP as any SCIM client would.
    Real(RealServer),
    /// The in-repo simulator, read from its state; it also logs every request.
    Sim(ScimSim),
}

impl Server {
    fn real(peer: Peer) -> Server {
        Server::Real(RealServer::start_peer(peer, Some(TOKEN)))
    }

    fn sim() -> Server {
        let sim = ScimSim::start().unwrap();
        sim.with(|s| s.behaviour.token = Some(TOKEN.into()));
        Server::Sim(sim)
    }

    fn url(&self) -> String {
        match self {
            Server::Real(server) => server.url.clone(),
            Server::Sim(sim) => sim.url(),
        }
    }

    fn users(&self) -> Users {
        match self {
            Server::Real(server) => list_over_http(&server.url),
            Server::Sim(sim) => sim.with(|s| {
                s.users()
                    .map(|u| (u["id"].as_str().unwrap().to_owned(), u.clone()))
                    .collect()
            }),
        }
    }
}

/// Every user a SCIM server holds, page by page.
fn list_over_http(base: &str) -> Users {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut users = Users::new();
        loop {
            let start = users.len() + 1;
            let page: Value = http
                .get(format!("{base}/Users"))
                .query(&[("startIndex", start), ("count", 50)])
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            let total = page["totalResults"].as_u64().unwrap() as usize;
            let resources = page["Resources"].as_array().cloned().unwrap_or_default();
            let listed = resources.len();
            for user in resources {
                let id = user["id"].as_str().unwrap().to_owned();
                assert!(users.insert(id, user).is_none(), "a user listed twice");
            }
            if listed == 0 || users.len() >= total {
                assert_eq!(users.len(), total, "totalResults");
                return users;
            }
        }
    })
}

/// What the tests compare of each user: the fields an admin looks at first.
fn checked(user: &Value) -> Value {
    let work_email = user["emails"]
        .as_array()
        .and_then(|emails| emails.iter().find(|e| e["type"] == "work"))
        .map_or(Value::Null, |e| e["value"].clone());
    json!({
        "userName": user["userName"],
        "externalId": user["externalId"],
        "active": user["active"],
        "name.givenName": user["name"]["givenName"],
        "name.familyName": user["name"]["familyName"],
        "title": user["title"],
        "work email": work_email,
        "department": user[ENTERPRISE]["department"],
    })
}

/// The externalId of a server's user: the Entra object id the shipped mapping writes.
fn external_id(user: &Value) -> &str {
    user["externalId"]
        .as_str()
        .unwrap_or_else(|| panic!("a user without externalId: {user}"))
}

/// The server's user for an Entra user.
fn held<'u>(users: &'u Users, entra_id: &str) -> &'u Value {
    users
        .values()
        .find(|u| external_id(u) == entra_id)
        .unwrap_or_else(|| panic!("no user with externalId {entra_id}"))
}

/// What one `userload run` did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    report: Option<Value>,
}

impl Run {
    fn report(&self) -> &Value {
        self.report
            .as_ref()
            .unwrap_or_else(|| panic!("no report\n{self}"))
    }

    /// Users created, updated, deactivated and reactivated, from the report.
    fn counts(&self) -> [u64; 4] {
        let counts = &self.report()["counts"];
        ["created", "updated", "deactivated", "reactivated"].map(|c| counts[c].as_u64().unwrap())
    }

    /// Write requests to the target, from the report.
    fn writes(&self) -> u64 {
        self.report()["requests"]["target_writes"].as_u64().unwrap()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A tenant in the Graph simulator, a SCIM server, and a folder with the config, the state
/// file and the run reports.
struct World {
    graph: GraphSim,
    server: Server,
    dir: tempfile::TempDir,
    config: Config,
    mapping: Mapping,
    /// The Entra users the server should hold, by Entra id, as last seen in Entra (kept
    /// after they leave it).
    loaded: BTreeMap<String, Value>,
    /// New hires made so far.
    hires: usize,
    /// Lines of the config's `[target]` after its URL and token.
    target_lines: String,
}

impl World {
    /// A synthetic tenant of `users`, the server, and a config with `sync_lines` in `[sync]`.
    fn new(server: Server, users: usize, seed: u64, sync_lines: &str) -> World {
        let graph = GraphSim::start(Tenant::synthetic(users, seed)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &graph.url(), &server.url(), "", sync_lines);
        let mapping = mapping::load(&config).unwrap();
        World {
            graph,
            server,
            dir,
            config,
            mapping,
            loaded: BTreeMap::new(),
            hires: 0,
            target_lines: String::new(),
        }
    }

    /// Writes the config again with other `[sync]` lines (same target, same state file).
    fn configure(&mut self, sync_lines: &str) {
        self.config = write_config(
            self.dir.path(),
            &self.graph.url(),
            &self.server.url(),
            &self.target_lines,
            sync_lines,
        );
    }

    /// Writes the config again with `target_lines` in `[target]` and `sync_lines` in
    /// `[sync]`; later [`World::configure`] calls keep the target lines.
    fn configure_target(&mut self, target_lines: &str, sync_lines: &str) {
        target_lines.clone_into(&mut self.target_lines);
        self.configure(sync_lines);
    }

    fn sim(&self) -> &ScimSim {
        match &self.server {
            Server::Sim(sim) => sim,
            Server::Real(_) => panic!("this test writes to a third-party server"),
        }
    }

    /// The enabled Entra users, in id order.
    fn enabled(&self) -> Vec<String> {
        self.graph.with(|s| {
            s.tenant
                .users()
                .filter(|u| u["accountEnabled"] == true)
                .map(|u| u["id"].as_str().unwrap().to_owned())
                .collect()
        })
    }

    /// `N` enabled Entra users who manage no one (so that a change to one of them changes
    /// no one else's record), in id order.
    fn leaves<const N: usize>(&self) -> [String; N] {
        let managers: BTreeSet<String> = self.graph.with(|s| {
            s.tenant
                .ids()
                .iter()
                .filter_map(|id| s.tenant.manager_of(id).map(str::to_owned))
                .collect()
        });
        let leaves: Vec<String> = self
            .enabled()
            .into_iter()
            .filter(|id| !managers.contains(id))
            .take(N)
            .collect();
        leaves.try_into().unwrap()
    }

    /// Adds an enabled new hire to the tenant; returns the id.
    fn hire(&mut self) -> String {
        loop {
            let user = tenant::new_hire(0x1e55, self.hires);
            self.hires += 1;
            if user["accountEnabled"] == true {
                return self.graph.with(|s| s.tenant.add(user));
            }
        }
    }

    /// Runs `userload run --report` with `args`.
    fn run(&self, args: &[&str]) -> Run {
        let report = self.dir.path().join("report.json");
        let _ = std::fs::remove_file(&report);
        let mut all = vec!["run", "--config", "userload.ini", "--report", "report.json"];
        all.extend(args);
        let (code, stdout, stderr) = util::outcome(&util::userload(self.dir.path(), &all));
        let report = std::fs::read_to_string(&report)
            .ok()
            .map(|text| serde_json::from_str(&text).unwrap());
        Run {
            code,
            stdout,
            stderr,
            report,
        }
    }

    /// A night without arguments: see [`World::night_with`].
    fn night(&mut self, counts: [u64; 4], touched: &[&str]) -> (Users, Users) {
        self.night_with(&[], counts, touched)
    }

    /// Runs userload; expects exit code 0, these counts (created, updated, deactivated,
    /// reactivated) and one write per user touched; checks that the users touched, and only
    /// they, changed, and that the whole server is in step with Entra. Returns the server's
    /// users before and after.
    fn night_with(&mut self, args: &[&str], counts: [u64; 4], touched: &[&str]) -> (Users, Users) {
        let before = self.server.users();
        let run = self.run(args);
        assert_eq!(run.code, 0, "{run}");
        assert_eq!(
            run.counts(),
            counts,
            "created, updated, deactivated, reactivated\n{run}"
        );
        assert_eq!(
            run.writes(),
            touched.len() as u64,
            "one write per user\n{run}"
        );
        let after = self.changed(&before, touched);
        self.in_step(&after);
        (before, after)
    }

    /// What the server should hold for an Entra user: the mapped record of the user as last
    /// seen, inactive once the user left Entra.
    fn expected(&self, entra_id: &str) -> Value {
        let user = &self.loaded[entra_id];
        let ctx = Context {
            settings: &self.config.settings,
            sync_time: SYNC_TIME,
        };
        let record = self
            .mapping
            .map(user, &ctx)
            .unwrap_or_else(|skip| panic!("{entra_id} not mapped: {skip}"));
        let mut expected = checked(&Value::Object(record.to_json()));
        let gone = self.graph.with(|s| s.tenant.user(entra_id).is_none());
        if gone {
            expected["active"] = false.into();
        }
        expected
    }

    /// Checks that exactly the users `touched` (Entra ids) changed from `before` — created
    /// or written, each the same SCIM user as before — and that each now holds what the
    /// mapping makes of its Entra user. Returns the server's users.
    fn changed(&mut self, before: &Users, touched: &[&str]) -> Users {
        let after = self.server.users();
        let missing: Vec<&String> = before
            .keys()
            .filter(|id| !after.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "users gone from the server: {missing:?}"
        );
        let changed: BTreeSet<&str> = after
            .iter()
            .filter(|(id, user)| before.get(*id) != Some(user))
            .map(|(_, user)| external_id(user))
            .collect();
        let touched_set: BTreeSet<&str> = touched.iter().copied().collect();
        assert_eq!(changed, touched_set, "the users that changed in the server");
        for entra_id in touched {
            if let Some(user) = self.graph.with(|s| s.tenant.user(entra_id)) {
                self.loaded.insert((*entra_id).to_owned(), user);
            }
            assert_eq!(
                checked(held(&after, entra_id)),
                self.expected(entra_id),
                "user {entra_id}"
            );
        }
        after
    }

    /// Checks the whole server: exactly the Entra users loaded so far, each once, each
    /// holding what the mapping makes of its Entra user now (inactive once it left).
    fn in_step(&mut self, users: &Users) {
        let current: Vec<(String, Value)> = self.graph.with(|s| {
            self.loaded
                .keys()
                .filter_map(|id| s.tenant.user(id).map(|u| (id.clone(), u)))
                .collect()
        });
        self.loaded.extend(current);
        let mut by_entra_id: BTreeMap<&str, &Value> = BTreeMap::new();
        for user in users.values() {
            let entra_id = external_id(user);
            assert!(
                by_entra_id.insert(entra_id, user).is_none(),
                "two users with externalId {entra_id}"
            );
        }
        let user_names: BTreeSet<&str> = users
            .values()
            .map(|u| u["userName"].as_str().unwrap())
            .collect();
        assert_eq!(user_names.len(), users.len(), "a userName held twice");
        let holds: BTreeSet<&str> = by_entra_id.keys().copied().collect();
        let loaded: BTreeSet<&str> = self.loaded.keys().map(String::as_str).collect();
        assert_eq!(holds, loaded, "the Entra users the server holds");
        // Each user names its manager by the manager's SCIM id, when the manager is held.
        let scim_id = |entra_id: &str| by_entra_id.get(entra_id).map(|u| u["id"].clone());
        for (entra_id, user) in &by_entra_id {
            assert_eq!(checked(user), self.expected(entra_id), "user {entra_id}");
            let in_entra = self.graph.with(|s| {
                s.tenant
                    .user(entra_id)
                    .and_then(|_| s.tenant.manager_of(entra_id))
                    .filter(|m| s.tenant.user(m).is_some())
                    .map(str::to_owned)
            });
            let Some(manager) = in_entra else { continue };
            assert_eq!(
                user[ENTERPRISE]["manager"]["value"],
                scim_id(&manager).unwrap_or(Value::Null),
                "the manager of {entra_id}"
            );
        }
    }
}

/// Writes `userload.ini` in `dir` for the Graph simulator at `graph` and the SCIM server at
/// `scim`, with `target_lines` in `[target]` and `sync_lines` in `[sync]`, and reads it back
/// as userload does.
fn write_config(
    dir: &std::path::Path,
    graph: &str,
    scim: &str,
    target_lines: &str,
    sync_lines: &str,
) -> Config {
    let text = format!(
        "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {graph}\n\
         domain = {graph}\npage_size = 25\nmax_attempts = 2\n\
         [target]\ntype = scim\nurl = {scim}\ntoken = {TOKEN}\n{target_lines}\n\
         [sync]\nstate = state.db\n{sync_lines}\n",
        graph_sim::TENANT_ID,
        graph_sim::CLIENT_ID,
        graph_sim::SECRET,
    );
    let path = util::write(dir, "userload.ini", &text);
    config::load(&path).unwrap_or_else(|e| panic!("{e}")).config
}

fn as_strs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

/// Makes each test named a module of two tests, one against each third-party server:
/// `NAME::scim2_server` and `NAME::django_scim2`.
macro_rules! against_each_peer {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            use super::Peer;

            #[test]
            fn scim2_server() {
                super::$test(Peer::Scim2Server);
            }

            #[test]
            fn django_scim2() {
                super::$test(Peer::DjangoScim2);
            }
        }
    )*};
}

against_each_peer!(
    a_tenant_and_a_scim_server_stay_in_step_through_a_week_of_changes,
    create_only_and_update_only_are_honoured,
    the_deactivation_limit_holds_leavers_until_allowed,
    an_always_failing_graph_page_deactivates_no_one,
    a_target_that_cannot_list_is_read_by_lookups,
);

fn a_tenant_and_a_scim_server_stay_in_step_through_a_week_of_changes(peer: Peer) {
    let mut w = World::new(Server::real(peer), 60, 7, "");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let [renamed, moved, disabled, soft, hard] = w.leaves();

    // A rename: the same SCIM user under a new userName, no new user.
    w.graph.with(|s| {
        s.tenant.update(
            &renamed,
            json!({"userPrincipalName": "renamed.person@contoso.example"}),
        )
    });
    let (before, after) = w.night([0, 1, 0, 0], &[&renamed]);
    let old = held(&before, &renamed);
    let new = held(&after, &renamed);
    assert_eq!(new["id"], old["id"]);
    assert_ne!(old["userName"], "renamed.person@contoso.example");
    assert_eq!(new["userName"], "renamed.person@contoso.example");
    assert_eq!(after.len(), before.len());

    // A department move.
    w.graph.with(|s| {
        s.tenant
            .update(&moved, json!({"department": "Moved Department"}))
    });
    let (_, after) = w.night([0, 1, 0, 0], &[&moved]);
    assert_eq!(
        held(&after, &moved)[ENTERPRISE]["department"],
        "Moved Department"
    );

    // Disabled, soft-deleted, hard-deleted: each made inactive.
    w.graph.with(|s| s.tenant.set_enabled(&disabled, false));
    let (_, after) = w.night([0, 0, 1, 0], &[&disabled]);
    assert_eq!(held(&after, &disabled)["active"], false);
    w.graph.with(|s| s.tenant.soft_delete(&soft));
    let (_, after) = w.night([0, 0, 1, 0], &[&soft]);
    assert_eq!(held(&after, &soft)["active"], false);
    w.graph.with(|s| s.tenant.hard_delete(&hard));
    let (_, after) = w.night([0, 0, 1, 0], &[&hard]);
    assert_eq!(held(&after, &hard)["active"], false);

    // Enabled again: active again.
    w.graph.with(|s| s.tenant.set_enabled(&disabled, true));
    let (_, after) = w.night([0, 0, 0, 1], &[&disabled]);
    assert_eq!(held(&after, &disabled)["active"], true);

    // Restored from the recycle bin: active again.
    w.graph.with(|s| s.tenant.restore(&soft));
    let (_, after) = w.night([0, 0, 0, 1], &[&soft]);
    assert_eq!(held(&after, &soft)["active"], true);

    // Disabled from the start, never created; enabled: created.
    let late_starter = w.graph.with(|s| {
        s.tenant
            .users()
            .find(|u| u["accountEnabled"] == false)
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .unwrap()
    });
    w.graph.with(|s| s.tenant.set_enabled(&late_starter, true));
    let (_, after) = w.night([1, 0, 0, 0], &[&late_starter]);
    assert_eq!(held(&after, &late_starter)["active"], true);

    // A new hire: created.
    let hire = w.hire();
    let (before, after) = w.night([1, 0, 0, 0], &[&hire]);
    assert_eq!(after.len(), before.len() + 1);

    // A night without changes: nothing written, nothing changed (`meta` included).
    let (before, after) = w.night([0, 0, 0, 0], &[]);
    assert_eq!(after, before);
}

/// With `list = false`, each user is found through a filter on its userName: the first night
/// finds no one and creates everyone, later nights find the users whose record changed and
/// the leavers, and a quiet night writes nothing.
fn a_target_that_cannot_list_is_read_by_lookups(peer: Peer) {
    let mut w = World::new(Server::real(peer), 40, 11, "");
    w.configure_target("list = false", "");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let [moved, disabled, deleted] = w.leaves();
    w.graph.with(|s| {
        s.tenant
            .update(&moved, json!({"department": "Moved Department"}));
        s.tenant.set_enabled(&disabled, false);
        s.tenant.hard_delete(&deleted);
    });
    let hire = w.hire();
    let (_, after) = w.night([1, 1, 2, 0], &[&moved, &disabled, &deleted, &hire]);
    assert_eq!(
        held(&after, &moved)[ENTERPRISE]["department"],
        "Moved Department"
    );
    w.night([0, 0, 0, 0], &[]);
}

#[test]
fn a_quiet_night_makes_no_write_request() {
    let mut w = World::new(Server::sim(), 60, 12, "");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let writes = w.sim().with(|s| s.writes());
    assert_eq!(writes, enabled.len());
    let requests = w.sim().with(|s| s.log.len());
    w.night([0, 0, 0, 0], &[]);
    assert_eq!(w.sim().with(|s| s.writes()), writes, "no write request");
    assert_eq!(
        w.sim().with(|s| s.log.len()),
        requests,
        "a delta night without changes sends the target nothing"
    );
    // Nor when Entra changed only what no field of the mapping reads.
    w.graph.with(|s| {
        for id in &enabled[..10] {
            s.tenant.update(
                id,
                json!({"officeLocation": "Annex 12", "employeeHireDate": "2024-04-01T00:00:00Z"}),
            );
        }
    });
    w.night([0, 0, 0, 0], &[]);
    assert_eq!(w.sim().with(|s| s.writes()), writes, "no write request");
}

fn create_only_and_update_only_are_honoured(peer: Peer) {
    let mut w = World::new(Server::real(peer), 40, 8, "mode = update_only");
    // update_only creates no one, not even on an empty server.
    let run = w.run(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.counts(), [0, 0, 0, 0], "{run}");
    assert_eq!(run.writes(), 0, "{run}");
    assert_eq!(run.report()["counts"]["skipped"], 40, "{run}");
    assert!(w.server.users().is_empty());

    w.configure("mode = create_only");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let [moved, disabled, deleted] = w.leaves();
    w.graph.with(|s| {
        s.tenant
            .update(&moved, json!({"department": "Moved Department"}));
        s.tenant.set_enabled(&disabled, false);
        s.tenant.hard_delete(&deleted);
    });
    let hire = w.hire();
    // create_only: the hire is created; no one is updated or deactivated.
    let before = w.server.users();
    let run = w.run(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.counts(), [1, 0, 0, 0], "{run}");
    assert_eq!(run.writes(), 1, "{run}");
    let after = w.changed(&before, &[&hire]);
    assert_ne!(
        held(&after, &moved)[ENTERPRISE]["department"],
        "Moved Department"
    );
    assert_eq!(held(&after, &disabled)["active"], true);
    assert_eq!(held(&after, &deleted)["active"], true);

    // update_only: the changes are written, the leavers deactivated, a new hire not created.
    let late = w.hire();
    w.configure("mode = update_only");
    let (_, after) = w.night([0, 1, 2, 0], &[&moved, &disabled, &deleted]);
    assert!(!after.values().any(|u| external_id(u) == late));
    assert_eq!(
        held(&after, &moved)[ENTERPRISE]["department"],
        "Moved Department"
    );
}

fn the_deactivation_limit_holds_leavers_until_allowed(peer: Peer) {
    let mut w = World::new(Server::real(peer), 40, 9, "max_deactivations = 2");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let [a, b, c, d, retitled] = w.leaves();
    w.graph.with(|s| {
        s.tenant.hard_delete(&a);
        s.tenant.hard_delete(&b);
        s.tenant.soft_delete(&c);
        s.tenant.soft_delete(&d);
        s.tenant
            .update(&retitled, json!({"jobTitle": "Chief Tester"}));
    });
    let hire = w.hire();
    let before = w.server.users();
    let run = w.run(&[]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stderr.contains("--allow-deactivations 4"), "{run}");
    assert_eq!(
        run.counts(),
        [1, 1, 0, 0],
        "the other changes are made\n{run}"
    );
    let after = w.changed(&before, &[&retitled, &hire]);
    for leaver in [&a, &b, &c, &d] {
        assert_eq!(held(&after, leaver)["active"], true, "{leaver}");
    }
    let (_, after) = w.night_with(
        &["--allow-deactivations", "4"],
        [0, 0, 4, 0],
        &[&a, &b, &c, &d],
    );
    for leaver in [&a, &b, &c, &d] {
        assert_eq!(held(&after, leaver)["active"], false, "{leaver}");
    }
}

fn an_always_failing_graph_page_deactivates_no_one(peer: Peer) {
    // Read in full: the failing page is one of the whole listing's.
    let mut w = World::new(Server::real(peer), 60, 10, "delta = no");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let [a, b, c, retitled] = w.leaves();
    w.graph.with(|s| {
        s.tenant.hard_delete(&a);
        s.tenant.hard_delete(&b);
        s.tenant.soft_delete(&c);
        s.tenant
            .update(&retitled, json!({"jobTitle": "Chief Tester"}));
        // The second of three pages.
        s.behaviour.failing_page = Some(1);
    });
    let before = w.server.users();
    let run = w.run(&["--allow-deactivations", "100"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("nothing was written"), "{run}");
    assert_eq!(w.server.users(), before, "the server is as it was");
    // Once Graph answers again, the run makes the changes it held back (and creates a new
    // hire; one added before the failing run might have been created while reading).
    w.graph.with(|s| s.behaviour.failing_page = None);
    let hire = w.hire();
    w.night([1, 1, 3, 0], &[&a, &b, &c, &retitled, &hire]);
}

#[test]
fn a_run_killed_half_way_creates_no_duplicate() {
    let mut w = World::new(Server::sim(), 300, 13, "concurrency = 4");
    w.sim()
        .with(|s| s.behaviour.latency = Duration::from_millis(50));
    let enabled = w.enabled();
    let creates = |w: &World| {
        w.sim().with(|s| {
            s.log
                .iter()
                .filter(|l| l.method == "POST" && l.status == 201)
                .count()
        })
    };
    let mut child = util::userload_command(w.dir.path(), &["run", "--config", "userload.ini"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while creates(&w) < 20 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("userload ended ({status}) before it was killed");
        }
        assert!(Instant::now() < deadline, "no 20 creates in 2 minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    let made = w.sim().with(|s| s.len());
    assert!(
        made >= 20 && made < enabled.len(),
        "{made} created before the kill"
    );
    // Every create handed to the writers and not known to be made is in the state as
    // pending (users whose manager is created first wait for a later round, unmarked until
    // then); the lock file stays behind.
    let state = w.dir.path().join("state.db");
    let owned = State::peek_owned(&state).unwrap();
    let remembered = owned.values().filter(|o| o.target_id.is_some()).count();
    assert!(remembered <= made, "{remembered} remembered, {made} made");
    assert!(owned.len() > remembered, "no create pending at the kill");
    assert!(w.dir.path().join("state.db.lock").exists());

    w.sim().with(|s| s.behaviour.latency = Duration::ZERO);
    let run = w.run(&[]);
    assert_eq!(run.code, 0, "the lock of the killed run is not held\n{run}");
    assert!(!run.stderr.contains("another userload run"), "{run}");
    let first = run.report()["target_users"].as_u64().unwrap() as usize;
    assert!(first >= made, "{first} listed, {made} seen after the kill");
    assert_eq!(run.counts()[0] as usize + first, enabled.len(), "{run}");
    // Every Entra user exactly once, and no create was sent for a user already made.
    let users = w.server.users();
    let mut per_name: BTreeMap<&str, usize> = BTreeMap::new();
    for user in users.values() {
        *per_name
            .entry(user["userName"].as_str().unwrap())
            .or_default() += 1;
    }
    assert!(per_name.values().all(|n| *n == 1), "{per_name:?}");
    assert_eq!(per_name.len(), enabled.len());
    assert_eq!(creates(&w), enabled.len());
    let refused = w.sim().with(|s| {
        s.log
            .iter()
            .filter(|l| l.method == "POST" && l.status != 201)
            .count()
    });
    assert_eq!(refused, 0, "creates refused as duplicates");
    w.loaded = w.graph.with(|s| {
        enabled
            .iter()
            .map(|id| (id.clone(), s.tenant.user(id).unwrap()))
            .collect()
    });
    w.in_step(&users);
    // And the state owns each of them by its SCIM id.
    let owned = State::peek_owned(&state).unwrap();
    for user in users.values() {
        let id = user["id"].as_str().unwrap();
        assert_eq!(
            owned.get(external_id(user)).unwrap().target_id.as_deref(),
            Some(id),
            "{user}"
        );
    }
}

#[test]
fn a_plan_shows_each_change_and_writes_nothing_anywhere() {
    let mut w = World::new(Server::sim(), 30, 21, "");
    let enabled = w.enabled();
    w.night([enabled.len() as u64, 0, 0, 0], &as_strs(&enabled));
    let [moved, gone] = w.leaves::<2>();
    let upn = |id: &str| {
        w.graph.with(|s| {
            s.tenant.user(id).unwrap()["userPrincipalName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    };
    let (moved_upn, gone_upn) = (upn(&moved), upn(&gone));
    let old_title = w
        .graph
        .with(|s| s.tenant.user(&moved).unwrap()["jobTitle"].clone());
    w.graph.with(|s| {
        s.tenant
            .update(&moved, json!({"jobTitle": "Night Auditor"}));
        s.tenant.hard_delete(&gone);
    });
    let state = w.dir.path().join("state.db");
    let before = std::fs::read(&state).unwrap();
    let writes = w.sim().with(|s| s.writes());

    let output = util::userload(w.dir.path(), &["plan", "--config", "userload.ini"]);
    let (code, stdout, stderr) = util::outcome(&output);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let update = format!("~ update {moved_upn}: title {old_title} → \"Night Auditor\"");
    assert!(stdout.contains(&update), "{update:?} not in:\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "- deactivate {}: active true → false",
            gone_upn.to_lowercase()
        )),
        "{stdout}"
    );
    assert!(stderr.contains("1 to update, 1 to deactivate"), "{stderr}");

    let output = util::userload(
        w.dir.path(),
        &["plan", "--config", "userload.ini", "--json"],
    );
    let (code, stdout, _) = util::outcome(&output);
    assert_eq!(code, 0);
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["update"][0]["changes"][0]["field"], "title");
    assert_eq!(plan["update"][0]["changes"][0]["to"], "Night Auditor");
    assert_eq!(plan["deactivate"].as_array().unwrap().len(), 1);
    assert_eq!(plan["verdict"], "proceed");

    assert_eq!(
        w.sim().with(|s| s.writes()),
        writes,
        "no write to the target"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "the state file is untouched"
    );
}
