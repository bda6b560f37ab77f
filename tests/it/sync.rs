//! The sync engine end to end, against the Graph simulator and a target kept in memory: what
//! is written on a first load and on a quiet night, what the guards stop, what the state
//! remembers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, Gate, GraphSim};
use sim::tenant::Tenant;
use userload::config::{self, Config};
use userload::graph::GraphClient;
use userload::mapping::{self, Mapping, Record};
use userload::state::State;
use userload::sync::engine::{self, Outcome, StopSignal, SyncError, SyncOptions};
use userload::sync::plan::Listed;
use userload::sync::reconcile::Reason;
use userload::sync::safety::Verdict;
use userload::targets::{FieldChange, Target, TargetError, TargetStats, TargetUser};

/// A target that keeps its users in memory and writes records whole.
#[derive(Default)]
struct MemoryTarget {
    users: Mutex<BTreeMap<String, TargetUser>>,
    next: AtomicU64,
    stats: TargetStats,
    /// Every write fails with this, when set.
    refuse: Mutex<Option<TargetError>>,
    /// Opened by the first create.
    opens_on_create: Mutex<Option<Gate>>,
    /// Opened by the first create of a user who names a manager.
    opens_on_report: Mutex<Option<Gate>>,
    /// Stopped by the first create.
    stops_on_create: Mutex<Option<StopSignal>>,
    /// A state file the first create breaks.
    breaks_on_create: Mutex<Option<std::path::PathBuf>>,
}

impl MemoryTarget {
    fn user_named(&self, user_name: &str) -> Option<TargetUser> {
        let users = self.users.lock().unwrap();
        users
            .values()
            .find(|u| u.data["userName"].as_str() == Some(user_name))
            .cloned()
    }

    fn refused(&self) -> Result<(), TargetError> {
        match &*self.refuse.lock().unwrap() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Target for MemoryTarget {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn folds_case(&self, field: &str) -> bool {
        field == "userName"
    }

    async fn list(&self) -> Result<Vec<TargetUser>, TargetError> {
        self.stats.count(false);
        Ok(self.users.lock().unwrap().values().cloned().collect())
    }

    async fn find(&self, field: &str, value: &Value) -> Result<Option<TargetUser>, TargetError> {
        self.stats.count(false);
        let users = self.users.lock().unwrap();
        Ok(users
            .values()
            .find(|u| u.data.get(field) == Some(value))
            .cloned())
    }

    async fn create(&self, record: &Record) -> Result<TargetUser, TargetError> {
        self.stats.count(true);
        self.refused()?;
        if let Some(stop) = self.stops_on_create.lock().unwrap().take() {
            stop.stop();
        }
        if let Some(path) = self.breaks_on_create.lock().unwrap().take() {
            let db = rusqlite::Connection::open(path).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch("DROP TABLE owned").unwrap();
        }
        if let Some(gate) = self.opens_on_create.lock().unwrap().take() {
            gate.open();
        }
        if record
            .get(&format!("{MANAGER}:manager.value"))
            .is_some_and(|m| !m.is_null())
            && let Some(gate) = self.opens_on_report.lock().unwrap().take()
        {
            gate.open();
        }
        let id = format!("t{}", self.next.fetch_add(1, Ordering::SeqCst));
        let user = TargetUser {
            id: id.clone(),
            data: record.to_json(),
            etag: None,
        };
        self.users.lock().unwrap().insert(id, user.clone());
        Ok(user)
    }

    async fn update(
        &self,
        user: &TargetUser,
        _changes: &[FieldChange],
        record: &Record,
    ) -> Result<(), TargetError> {
        self.stats.count(true);
        self.refused()?;
        let mut users = self.users.lock().unwrap();
        let Some(stored) = users.get_mut(&user.id) else {
            return Err(TargetError::Rejected {
                status: 404,
                detail: "no such user".into(),
            });
        };
        stored.data = record.to_json();
        Ok(())
    }

    fn stats(&self) -> &TargetStats {
        &self.stats
    }
}

struct Setup {
    sim: GraphSim,
    _dir: tempfile::TempDir,
    config: Config,
    mapping: Mapping,
    target: Arc<MemoryTarget>,
    /// Whether the next runs are full reconciliations (`run --full`).
    full: std::cell::Cell<bool>,
    /// Whether each create is only counted once written ([`SyncOptions::count_creates_only`]).
    counted: std::cell::Cell<bool>,
}

fn setup(users: usize, sync_lines: &str) -> Setup {
    setup_with(Tenant::synthetic(users, 11), "", sync_lines)
}

fn setup_with(tenant: Tenant, source_lines: &str, sync_lines: &str) -> Setup {
    setup_target(tenant, source_lines, "", sync_lines)
}

fn setup_target(tenant: Tenant, source_lines: &str, target_lines: &str, sync_lines: &str) -> Setup {
    let sim = GraphSim::start(tenant).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = sim.url();
    let text = format!(
        "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\ndomain = {url}\n\
         max_attempts = 2\n{source_lines}\n[target]\ntype = scim\nurl = http://127.0.0.1:9/scim/v2\n{target_lines}\n\
         [sync]\ncreate_disabled = true\n{sync_lines}\n",
        graph_sim::TENANT_ID,
        graph_sim::CLIENT_ID,
        graph_sim::SECRET,
    );
    let path = crate::util::write(dir.path(), "userload.ini", &text);
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}")).config;
    let mapping = mapping::load(&config).unwrap();
    Setup {
        sim,
        _dir: dir,
        config,
        mapping,
        target: Arc::default(),
        full: std::cell::Cell::new(false),
        counted: std::cell::Cell::new(false),
    }
}

impl Setup {
    fn run_with(&self, allow: Option<usize>, apply: bool) -> Result<Outcome, SyncError> {
        self.run_stoppable(allow, apply, &StopSignal::default())
    }

    fn run_stoppable(
        &self,
        allow: Option<usize>,
        apply: bool,
        stop: &StopSignal,
    ) -> Result<Outcome, SyncError> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let options = SyncOptions {
                allow_deactivations: allow,
                sync_time: "2024-05-01T06:00:00Z".into(),
                last_read: None,
                reconcile: self.full.get().then_some(Reason::Asked),
                count_creates_only: self.counted.get(),
                ..SyncOptions::default()
            };
            if apply {
                let mut state = State::open(&self.config.sync.state, "memory").unwrap();
                let owned = state.owned().unwrap();
                engine::sync(
                    &self.config,
                    &self.mapping,
                    &(Arc::clone(&self.target) as Arc<dyn Target>),
                    &owned,
                    Some(&mut state),
                    &options,
                    stop,
                )
                .await
            } else {
                let owned = State::peek_owned(&self.config.sync.state).unwrap();
                engine::sync(
                    &self.config,
                    &self.mapping,
                    &(Arc::clone(&self.target) as Arc<dyn Target>),
                    &owned,
                    None,
                    &options,
                    stop,
                )
                .await
            }
        })
    }

    fn run(&self) -> Outcome {
        self.run_with(None, true).unwrap()
    }

    fn writes(&self) -> u64 {
        self.target.stats.writes.load(Ordering::SeqCst)
    }

    fn upn(&self, id: &str) -> String {
        self.sim.with(|s| {
            s.tenant.user(id).unwrap()["userPrincipalName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    }
}

#[test]
fn a_first_load_creates_everyone_and_a_quiet_night_writes_nothing() {
    let s = setup(60, "");
    let first = s.run();
    assert_eq!(first.verdict, Verdict::Proceed);
    assert_eq!(first.counts.created, 60);
    assert_eq!(first.exit_code(), 0);
    assert_eq!(s.target.users.lock().unwrap().len(), 60);
    // The state remembers each user as created: active or (disabled in Entra) not.
    let owned = State::peek_owned(&s.config.sync.state).unwrap();
    let disabled = s.sim.with(|st| {
        st.tenant
            .users()
            .filter(|u| u["accountEnabled"] == false)
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    });
    assert!(!disabled.is_empty(), "the tenant has disabled users");
    for o in &owned {
        let id = &o.entra_id;
        assert_eq!(o.active, !disabled.contains(id), "{id}");
    }
    let writes = s.writes();
    let second = s.run();
    assert_eq!(s.writes(), writes, "no write on a run without changes");
    assert_eq!(second.counts.unchanged, 60);
    assert!(second.plan.is_empty());
    assert!(second.plan.remember.is_empty(), "nothing new to remember");
}

#[test]
fn a_load_larger_than_one_chunk_of_pending_creates_writes_everyone_once() {
    // More creates than are marked pending at a time (4,096): the writers wait for each
    // next chunk, and every user is created once and remembered.
    let s = setup(9_000, "");
    let outcome = s.run();
    assert_eq!(outcome.counts.created, 9_000);
    assert_eq!(s.target.users.lock().unwrap().len(), 9_000);
    let owned = State::peek_owned(&s.config.sync.state).unwrap();
    assert_eq!(owned.len(), 9_000);
    assert!(
        owned
            .values()
            .all(|o| o.target_id.is_some() && o.hash.is_some())
    );
}

#[test]
fn the_read_keeps_only_the_users_that_may_be_written() {
    let s = setup(30, "");
    s.run();
    let ids = s.sim.with(|st| st.tenant.ids());
    let (changed, lost) = (&ids[0], &ids[1]);
    s.sim
        .with(|st| st.tenant.update(changed, json!({"jobTitle": "Changed"})));
    let owned = State::peek_owned(&s.config.sync.state).unwrap();
    // The listing no longer holds the target user of `lost`.
    let lost_target = owned.get(lost).unwrap().target_id.clone().unwrap();
    let listed: Vec<_> = s
        .target
        .users
        .lock()
        .unwrap()
        .values()
        .filter(|u| u.id != lost_target)
        .map(|u| Listed::of(&s.mapping, u.clone()))
        .collect();
    let listing = engine::Listing::complete(listed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Arc::new(GraphClient::new(&s.config.source).unwrap());
    let catalogue = userload::sync::plan::Catalogue::default();
    let target: &dyn userload::targets::Target = s.target.as_ref();
    let options = engine::plan_options(&s.config, &s.mapping, target);
    let unwritten = engine::Alongside::new(&owned, &listing, &options, &catalogue);
    let read = runtime
        .block_on(engine::read_source(
            &s.config,
            &s.mapping,
            "2024-05-01T06:00:00Z",
            &client,
            engine::Expected::default(),
            Some(unwritten),
            &engine::StopSignal::default(),
        ))
        .unwrap();
    // Only the changed user and the one whose target user is gone are left to the plan,
    // each with its record; the others are quiet, one small entry each.
    let mut left: Vec<&str> = read.users.iter().map(|u| u.entra_id.as_str()).collect();
    left.sort_unstable();
    let mut needed = [changed.as_str(), lost.as_str()];
    needed.sort_unstable();
    assert_eq!(left, needed);
    assert!(
        read.users
            .iter()
            .all(|u| u.mapped.as_ref().unwrap().record().is_some())
    );
    assert_eq!((read.quiet.len(), read.total()), (28, 30));
    // Deleted in the target while unchanged in Entra: created again in the same run.
    s.target.users.lock().unwrap().remove(&lost_target);
    let outcome = s.run();
    assert_eq!(outcome.counts.created, 1);
    assert_eq!(outcome.counts.updated, 1);
    assert_eq!(outcome.counts.unchanged, 28);
    assert!(s.target.user_named(&s.upn(lost)).is_some());
}

#[test]
fn changes_in_entra_become_updates_deactivations_and_reactivations() {
    let s = setup(60, "max_deactivations = 5");
    s.run();
    let ids = s.sim.with(|st| st.tenant.ids());
    let (renamed, moved, disabled, deleted) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let deleted_upn = s.upn(deleted);
    s.sim.with(|st| {
        st.tenant
            .update(renamed, json!({"userPrincipalName": "renamed@contoso.com"}));
        st.tenant.update(moved, json!({"department": "Moved Dept"}));
        st.tenant.set_enabled(disabled, false);
        st.tenant.hard_delete(deleted);
    });
    let outcome = s.run();
    assert_eq!(outcome.counts.created, 0, "a rename is not a new user");
    assert_eq!(outcome.counts.updated, 2);
    assert_eq!(outcome.counts.deactivated, 2);
    assert!(s.target.user_named("renamed@contoso.com").is_some());
    let gone = s.target.user_named(&deleted_upn).unwrap();
    assert_eq!(gone.data["active"], false);
    let moved_user = s.target.user_named(&s.upn(moved)).unwrap();
    assert_eq!(
        moved_user.data["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Moved Dept"
    );
    // Enabled again: reactivated.
    s.sim.with(|st| st.tenant.set_enabled(disabled, true));
    let again = s.run();
    assert_eq!(again.counts.reactivated, 1);
    assert_eq!(
        s.target.user_named(&s.upn(disabled)).unwrap().data["active"],
        true
    );
}

#[test]
fn too_many_leavers_hold_the_deactivations_but_not_the_rest() {
    let s = setup(40, "max_deactivations = 3");
    s.run();
    let ids = s.sim.with(|st| st.tenant.ids());
    s.sim.with(|st| {
        for id in &ids[..5] {
            st.tenant.hard_delete(id);
        }
        st.tenant
            .update(&ids[10], json!({"jobTitle": "Chief Tester"}));
    });
    let held = s.run();
    assert!(
        matches!(&held.verdict, Verdict::HoldDeactivations(m) if m.contains("--allow-deactivations 5")),
        "{:?}",
        held.verdict
    );
    assert_eq!(held.exit_code(), 1);
    assert_eq!(held.counts.deactivated, 0);
    assert_eq!(held.counts.updated, 1, "the other writes still happen");
    let allowed = s.run_with(Some(5), true).unwrap();
    assert_eq!(allowed.counts.deactivated, 5);
    assert_eq!(allowed.exit_code(), 0);
}

/// Holds back the third page of Graph users (2,500 users come in pages of 999) until the
/// target has created its first user.
fn hold_the_last_page_until_a_create(s: &Setup) {
    let gate = Gate::default();
    *s.target.opens_on_create.lock().unwrap() = Some(gate.clone());
    s.sim.with(|st| st.behaviour.held_page = Some((2, gate)));
}

#[test]
fn creates_go_out_while_entra_is_still_being_read() {
    let s = setup(2500, "");
    // Were no user created before the whole read, the held page would fail the run.
    hold_the_last_page_until_a_create(&s);
    let outcome = s.run();
    assert_eq!(outcome.counts.created, 2500);
    assert_eq!(
        outcome.plan.creates.len(),
        2500,
        "each create is in the report"
    );
    assert_eq!(outcome.source_users, 2500);
    assert_eq!(s.target.users.lock().unwrap().len(), 2500);
    let owned = State::peek_owned(&s.config.sync.state).unwrap();
    assert_eq!(owned.len(), 2500);
    assert!(owned.values().all(|o| o.target_id.is_some()));
}

/// Kept with their records or only counted, the creates made before a read failed are
/// the failed run's writes.
#[test]
fn a_read_failing_after_creates_keeps_them_and_the_next_run_completes() {
    fails_after_creates(false);
    fails_after_creates(true);
}

fn fails_after_creates(counted: bool) {
    let s = setup(2500, "");
    s.counted.set(counted);
    hold_the_last_page_until_a_create(&s);
    s.sim.with(|st| st.behaviour.failing_page = Some(2));
    let error = s.run_with(None, true).unwrap_err();
    let text = error.to_string();
    let SyncError::GraphAfterCreates { made, .. } = error else {
        panic!("{text}");
    };
    let created = made.counts.created;
    // What was made is there for the report and, kept, for the CSV of changes.
    assert_eq!(made.creates_sent() as i64, created);
    assert_eq!(made.plan.creates.is_empty(), counted);
    assert!(made.plan.updates.is_empty() && made.failures.is_empty());
    assert!(
        text.contains(&format!(
            "{created} new users created while reading are remembered (0 creates failed), \
             nothing else was written"
        )),
        "{text}"
    );
    let made = s.target.users.lock().unwrap().len();
    assert!(
        created > 0 && created as usize == made,
        "{created} created, {made} made"
    );
    // Each is owned with its target id; the creates not sent are pending.
    let owned = State::peek_owned(&s.config.sync.state).unwrap();
    assert_eq!(
        owned.values().filter(|o| o.target_id.is_some()).count(),
        made
    );
    assert!(owned.len() < 2500, "only the users read were marked");

    s.sim.with(|st| {
        st.behaviour.failing_page = None;
        st.behaviour.held_page = None;
    });
    let outcome = s.run();
    assert_eq!(outcome.counts.created as usize, 2500 - made);
    assert_eq!(outcome.counts.unchanged as usize, made);
    let users = s.target.users.lock().unwrap();
    let names: std::collections::BTreeSet<&str> = users
        .values()
        .map(|u| u.data["userName"].as_str().unwrap())
        .collect();
    assert_eq!((users.len(), names.len()), (2500, 2500), "everyone once");
}

#[test]
fn a_stop_while_creating_during_the_read_sends_nothing_more() {
    let s = setup(2500, "");
    hold_the_last_page_until_a_create(&s);
    let stop = StopSignal::default();
    *s.target.stops_on_create.lock().unwrap() = Some(stop.clone());
    // The stop ends the read too: nothing is planned, and the run reports what it made.
    let error = s.run_stoppable(None, true, &stop).unwrap_err();
    assert!(error.stopped(), "{error}");
    let outcome = error.made().unwrap();
    assert!(outcome.interrupted);
    // Only the creates under way when the stop came (at most one per writer) were made, and
    // each is in the report and the state.
    let made = s.target.users.lock().unwrap().len();
    assert!((1..=8).contains(&made), "{made} made after the stop");
    assert_eq!(outcome.counts.created as usize, made);
    assert_eq!(outcome.plan.creates.len(), made);
    let owned = State::peek_owned(&s.config.sync.state).unwrap();
    assert_eq!(
        owned.values().filter(|o| o.target_id.is_some()).count(),
        made
    );

    let next = s.run();
    assert_eq!(next.counts.created as usize, 2500 - made);
    assert_eq!(s.target.users.lock().unwrap().len(), 2500);
}

#[test]
fn a_state_file_failing_after_writes_reports_the_writes_made() {
    // 500 users: the creates of the first round (users whose manager is not created in this
    // run) are marked pending at once before the first create, which breaks the state
    // file; remembering the creates then fails, and no later round is sent.
    let s = setup(500, "");
    *s.target.breaks_on_create.lock().unwrap() = Some(s.config.sync.state.clone());
    let error = s.run_with(None, true).unwrap_err();
    let text = error.to_string();
    let SyncError::StateAfterWrites { made, .. } = error else {
        panic!("{text}");
    };
    assert!(text.contains("no such table"), "{text}");
    let sent = s.target.users.lock().unwrap().len();
    assert!((1..500).contains(&sent), "{sent} sent");
    assert!(
        text.ends_with(&format!("(after {sent} writes to the target)")),
        "{text}"
    );
    assert_eq!(made.counts.created as usize, sent);
    assert_eq!(
        made.plan.creates.len(),
        sent,
        "each create is in the report"
    );
}

#[test]
fn a_failing_graph_page_writes_nothing_at_all() {
    let s = setup(2500, "");
    s.run();
    let writes = s.writes();
    s.sim.with(|st| {
        for id in st.tenant.ids().into_iter().take(300) {
            st.tenant.hard_delete(&id);
        }
        st.behaviour.failing_page = Some(2);
    });
    let error = s.run_with(Some(10_000), true).unwrap_err();
    assert!(matches!(error, SyncError::Graph(_)), "{error}");
    assert!(error.to_string().contains("nothing was written"));
    assert_eq!(s.writes(), writes);
}

#[test]
fn an_empty_source_while_users_are_owned_is_refused() {
    let s = setup(20, "");
    s.run();
    let writes = s.writes();
    s.sim.with(|st| {
        for id in st.tenant.ids() {
            st.tenant.hard_delete(&id);
        }
    });
    let refused = s.run_with(Some(10_000), true).unwrap();
    assert!(matches!(refused.verdict, Verdict::Refuse(_)));
    assert_eq!(refused.exit_code(), 2);
    assert_eq!(s.writes(), writes);
}

#[test]
fn refused_credentials_stop_the_run_and_every_failure_is_reported() {
    let s = setup(30, "concurrency = 1");
    *s.target.refuse.lock().unwrap() = Some(TargetError::Unauthorized {
        target: "memory".into(),
        status: 401,
        detail: "token expired".into(),
    });
    // A refusal that comes while Entra is still read (a create made while reading) stops
    // the read too: the run then fails with the write it made.
    let outcome = match s.run_with(None, true) {
        Ok(outcome) => {
            assert_eq!(outcome.exit_code(), 1);
            outcome
        }
        Err(error) => {
            assert!(error.stopped(), "{error}");
            let SyncError::GraphAfterCreates { made, .. } = error else {
                panic!("stopped without the writes made");
            };
            *made
        }
    };
    assert!(outcome.interrupted);
    assert_eq!(outcome.failures.len(), 1, "the first refusal stops the run");
    assert!(outcome.failures[0].error.contains("token expired"));
    assert_eq!(s.writes(), 1);
}

#[test]
fn a_plan_writes_nothing_anywhere() {
    let s = setup(25, "");
    let planned = s.run_with(None, false).unwrap();
    assert_eq!(planned.plan.creates.len(), 25);
    assert_eq!(s.writes(), 0);
    assert!(!s.config.sync.state.exists(), "no state file was made");
}

#[test]
fn a_create_cut_short_before_the_state_was_saved_is_not_made_twice() {
    let s = setup(10, "");
    s.run();
    let id = s.sim.with(|st| st.tenant.add(sim::tenant::new_hire(5, 1)));
    let upn = s.upn(&id);
    // The user was created, but the run died before remembering it: only the pending row
    // is in the state.
    {
        let mut state = State::open(&s.config.sync.state, "memory").unwrap();
        state
            .create_pending(&[(id.as_str(), upn.as_str())])
            .unwrap();
    }
    let record = s
        .mapping
        .map(
            &s.sim.with(|st| st.tenant.user(&id).unwrap()),
            &mapping::Context {
                settings: &s.config.settings,
                sync_time: "2024-05-01T06:00:00Z",
            },
        )
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(s.target.create(&record)).unwrap();
    let outcome = s.run();
    assert_eq!(outcome.counts.created, 0);
    let named = s
        .target
        .users
        .lock()
        .unwrap()
        .values()
        .filter(|u| u.data["userName"].as_str() == Some(upn.as_str()))
        .count();
    assert_eq!(named, 1);
    let state = State::open(&s.config.sync.state, "memory").unwrap();
    assert!(state.owned().unwrap().get(&id).unwrap().target_id.is_some());
}

#[test]
fn without_listing_only_changed_and_departed_users_are_looked_up() {
    let mut s = setup(30, "");
    s.config.target.list = false;
    let first = s.run();
    assert_eq!(first.counts.created, 30);
    let requests = || s.target.stats.requests.load(Ordering::SeqCst);
    let before = requests();
    let quiet = s.run();
    assert_eq!(quiet.counts.unchanged, 30);
    assert_eq!(requests(), before, "nothing looked up, nothing written");
    let ids = s.sim.with(|st| st.tenant.ids());
    s.sim.with(|st| {
        st.tenant.update(&ids[0], json!({"jobTitle": "Night Owl"}));
        st.tenant.hard_delete(&ids[1]);
    });
    let before = requests();
    let changed = s.run();
    assert_eq!(changed.counts.updated, 1);
    assert_eq!(changed.counts.deactivated, 1);
    assert_eq!(changed.counts.unchanged, 28);
    assert_eq!(requests() - before, 4, "two lookups, two writes");
    assert_eq!(changed.plan.forget, Vec::<String>::new());
}

// ----- references to users ---------------------------------------------------------------

/// The SCIM enterprise extension's manager.
const MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

impl Setup {
    /// For each Entra user in the target: the Entra id of the manager its target user names
    /// (read back through the target ids), `None` when it names none.
    fn managers_written(&self) -> BTreeMap<String, Option<String>> {
        let users = self.target.users.lock().unwrap();
        let entra_of: BTreeMap<&str, &str> = users
            .values()
            .map(|u| (u.id.as_str(), u.data["externalId"].as_str().unwrap()))
            .collect();
        users
            .values()
            .map(|u| {
                let manager = u
                    .data
                    .get(MANAGER)
                    .and_then(|e| e["manager"]["value"].as_str());
                let named = manager.map(|id| {
                    entra_of
                        .get(id)
                        .unwrap_or_else(|| panic!("{id} is not a target id"))
                        .to_string()
                });
                (u.data["externalId"].as_str().unwrap().to_owned(), named)
            })
            .collect()
    }

    /// Runs a first load of `users` and checks that each was created once, naming its
    /// manager by target id (every manager known by the time its reports were created), and
    /// that the next run has nothing to do.
    fn loads_every_manager_in_one_create_each(&self, users: i64) {
        let first = self.run();
        assert_eq!(first.counts.created, users);
        assert_eq!(self.writes(), users as u64);
        assert_eq!(first.second_pass, 0);
        assert!(
            first.plan.unresolved.is_empty(),
            "{:?}",
            first.plan.unresolved
        );
        assert_eq!(self.managers_written(), self.managers_in_entra());
        let second = self.run();
        assert_eq!(second.counts.unchanged, users);
        assert_eq!(self.writes(), users as u64, "nothing changed");
    }

    /// Each Entra user's manager in the tenant.
    fn managers_in_entra(&self) -> BTreeMap<String, Option<String>> {
        self.sim.with(|s| {
            s.tenant
                .ids()
                .into_iter()
                .map(|id| {
                    let manager = s.tenant.manager_of(&id).map(str::to_owned);
                    (id, manager)
                })
                .collect()
        })
    }
}

#[test]
fn managers_created_in_the_same_run_are_written_as_their_target_ids() {
    setup(60, "").loads_every_manager_in_one_create_each(60);
}

#[test]
fn reports_are_created_while_entra_is_read_once_their_manager_is() {
    let s = setup(2500, "");
    // The third page (of 999) is held until a user who names a manager is created, which
    // only a create made while the read waits for it can be: the first two pages hold the
    // head of the tree and some who report to her.
    let ids = s.sim.with(|st| st.tenant.ids());
    let head = s.sim.with(|st| {
        ids.iter()
            .position(|id| st.tenant.manager_of(id).is_none())
            .unwrap()
    });
    let reports = s.sim.with(|st| {
        ids[..1998]
            .iter()
            .filter(|id| st.tenant.manager_of(id) == Some(ids[head].as_str()))
            .count()
    });
    assert!(
        head < 1998 && reports > 0,
        "head at {head}, {reports} reports"
    );
    let gate = Gate::default();
    *s.target.opens_on_report.lock().unwrap() = Some(gate.clone());
    s.sim.with(|st| st.behaviour.held_page = Some((2, gate)));
    s.loads_every_manager_in_one_create_each(2500);
}

#[test]
fn a_chain_of_six_and_a_cycle_of_two_are_all_set_in_one_run() {
    let mut tenant = Tenant::synthetic(40, 11);
    let ids = tenant.ids();
    let top = ids
        .iter()
        .find(|id| tenant.manager_of(id).is_none())
        .unwrap()
        .clone();
    // Users nobody reports to, so that rewiring them makes no other cycle.
    let leaves: Vec<String> = ids
        .iter()
        .filter(|id| {
            !ids.iter()
                .any(|other| tenant.manager_of(other) == Some(id.as_str()))
        })
        .cloned()
        .collect();
    // A chain six deep below the top: c1 reports to the top, c2 to c1, … c6 to c5.
    let chain = &leaves[0..6];
    tenant.set_manager(&chain[0], Some(&top));
    for pair in chain.windows(2) {
        tenant.set_manager(&pair[1], Some(&pair[0]));
    }
    // Two users who name each other.
    let (a, b) = (&leaves[6], &leaves[7]);
    tenant.set_manager(a, Some(b));
    tenant.set_manager(b, Some(a));
    let s = setup_with(tenant, "", "");
    let first = s.run();
    assert_eq!(first.counts.created, 40);
    assert!(
        first.plan.unresolved.is_empty(),
        "{:?}",
        first.plan.unresolved
    );
    // Only the cycle needs a second write: one of the two is created before the other.
    assert_eq!(first.second_pass, 1, "{}", first.counts.updated);
    assert_eq!(s.writes(), 41);
    assert_eq!(s.managers_written(), s.managers_in_entra());
    let writes = s.writes();
    s.run();
    assert_eq!(s.writes(), writes, "the next run has nothing to do");
}

#[test]
fn a_manager_out_of_scope_leaves_the_field_empty_and_a_changed_manager_is_an_update() {
    // Only staff are in scope: the managers of some are not.
    let s = setup_with(
        Tenant::synthetic(80, 11),
        "filter = employeeType eq 'Staff'",
        "",
    );
    let first = s.run();
    let in_entra = s.managers_in_entra();
    let written = s.managers_written();
    let left_empty: Vec<&String> = written
        .iter()
        .filter(|(id, m)| m.is_none() && in_entra[*id].is_some())
        .map(|(id, _)| id)
        .collect();
    assert!(!left_empty.is_empty(), "some managers are out of scope");
    assert_eq!(first.plan.unresolved.len(), left_empty.len());
    for (id, manager) in &written {
        if let Some(manager) = manager {
            assert_eq!(in_entra[id].as_ref(), Some(manager), "{id}");
        }
    }
    // The next run writes nothing, and still says which references are empty.
    let writes = s.writes();
    let second = s.run();
    assert_eq!(s.writes(), writes);
    assert_eq!(second.plan.unresolved.len(), left_empty.len());
    // A user's manager changes to another user in scope: one update, of that field only.
    let (user, new_manager) = {
        let mut staff = written.keys();
        (staff.next().unwrap().clone(), staff.nth(3).unwrap().clone())
    };
    s.sim
        .with(|st| st.tenant.set_manager(&user, Some(&new_manager)));
    let third = s.run();
    assert_eq!(third.counts.updated, 1);
    assert_eq!(third.plan.updates[0].changes.len(), 1);
    assert_eq!(s.managers_written()[&user].as_ref(), Some(&new_manager));
}

#[test]
fn a_target_that_cannot_list_keeps_managers_it_owns_through_the_state() {
    // The target is looked up user by user: an unchanged manager is never looked up, and
    // must still be found through the state when one of their reports changes.
    let s = setup_target(Tenant::synthetic(40, 11), "", "list = false", "");
    let first = s.run();
    assert_eq!(first.counts.created, 40);
    assert_eq!(s.managers_written(), s.managers_in_entra());
    let (report, manager) = s.sim.with(|st| {
        let report = st
            .tenant
            .ids()
            .into_iter()
            .find(|id| st.tenant.manager_of(id).is_some())
            .unwrap();
        let manager = st.tenant.manager_of(&report).unwrap().to_owned();
        st.tenant
            .update(&report, json!({"jobTitle": "Changed in Entra"}));
        (report, manager)
    });
    let second = s.run();
    assert_eq!(second.counts.updated, 1, "{:?}", second.plan.unresolved);
    assert!(
        second.plan.unresolved.is_empty(),
        "{:?}",
        second.plan.unresolved
    );
    assert_eq!(
        second.plan.updates[0].changes.len(),
        1,
        "only the title changes"
    );
    assert_eq!(s.managers_written()[&report].as_ref(), Some(&manager));
}

#[test]
fn a_reconciliation_repairs_a_manager_and_a_title_changed_by_hand_and_nothing_else() {
    let s = setup(60, "");
    s.run();
    let writes = s.writes();
    // By hand in the target: one user's manager now names another target user, another's
    // title changed.
    let (renamed, retitled, other) = {
        let mut users = s.target.users.lock().unwrap();
        let ids: Vec<String> = users.keys().cloned().collect();
        let with_manager = ids
            .iter()
            .find(|id| {
                let extension = users[*id].data.get(MANAGER);
                extension.is_some_and(|e| e["manager"]["value"].is_string())
            })
            .unwrap()
            .clone();
        let manager = users[&with_manager].data[MANAGER]["manager"]["value"].clone();
        let other = ids
            .iter()
            .find(|id| **id != with_manager && json!(id) != manager)
            .unwrap()
            .clone();
        let retitled = ids
            .iter()
            .find(|id| **id != with_manager && **id != other)
            .unwrap()
            .clone();
        users.get_mut(&with_manager).unwrap().data[MANAGER]["manager"]["value"] =
            json!(other.clone());
        users.get_mut(&retitled).unwrap().data["title"] = json!("Changed by hand");
        (with_manager, retitled, other)
    };
    assert_ne!(s.managers_written(), s.managers_in_entra());
    s.full.set(true);
    let full = s.run();
    assert_eq!(full.counts.updated, 2, "{:?}", full.plan.updates);
    assert_eq!(full.counts.unchanged, 58);
    assert_eq!(s.writes(), writes + 2);
    assert_eq!(s.managers_written(), s.managers_in_entra());
    let users = s.target.users.lock().unwrap();
    assert_ne!(users[&retitled].data["title"], json!("Changed by hand"));
    assert_ne!(
        users[&renamed].data[MANAGER]["manager"]["value"],
        json!(other)
    );
}
