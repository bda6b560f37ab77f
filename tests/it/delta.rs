//! Delta runs, through the real binary against the Graph and Snipe-IT simulators: after a
//! first (full) run, each run reads only what changed in Entra since the last one and
//! touches the target only for those users; every kind of change reaches the target; the
//! run falls back to a full read, saying why, when it cannot follow the stored delta link;
//! a broken delta page fails the run before anything is written; a run whose writes did
//! not all succeed leaves the link where it was, so the next run makes them.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::graph::DeltaFault;

use crate::drift::{Setup, user};

const ANN: &str = "00000000-0000-0000-0000-00000000000a";
const BOB: &str = "00000000-0000-0000-0000-00000000000b";
const CAROL: &str = "00000000-0000-0000-0000-00000000000c";
const DAN: &str = "00000000-0000-0000-0000-00000000000d";
const EVE: &str = "00000000-0000-0000-0000-00000000000e";

/// Four users in scope of a filter on the job title.
fn setup(sync_lines: &str) -> Setup {
    let users: Vec<Value> = [(ANN, "ann"), (BOB, "bob"), (CAROL, "carol"), (DAN, "dan")]
        .iter()
        .map(|(id, name)| user(id, name, None))
        .collect();
    let setup = Setup::with(
        &users,
        "filter = jobTitle in ('Engineer', 'Boss')",
        sync_lines,
    );
    let first = setup.run(&[]);
    assert_eq!(first["mode"], "reconcile", "{first:#}");
    assert_eq!(first["counts"]["created"], 4, "{first:#}");
    setup
}

/// `[created, updated, deactivated, reactivated]` of a run report.
fn counts(report: &Value) -> [u64; 4] {
    ["created", "updated", "deactivated", "reactivated"]
        .map(|k| report["counts"][k].as_u64().unwrap_or(u64::MAX))
}

/// A run that must read by delta: its report.
fn delta_run(setup: &Setup) -> Value {
    let report = setup.run(&[]);
    assert_eq!(report["mode"], "delta", "{report:#}");
    report
}

#[test]
fn every_kind_of_change_reaches_the_target_by_delta() {
    let setup = setup("");
    let active = |name: &str| setup.column(&format!("{name}@contoso.com"), "activated");

    // `plan` follows the link too, and says so.
    let (code, _, stderr) = setup.userload(&["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("by delta: only the users changed"),
        "{stderr}"
    );

    // No change: nothing read but the delta page, nothing asked of the target.
    let quiet = delta_run(&setup);
    assert_eq!(counts(&quiet), [0, 0, 0, 0]);
    assert_eq!(quiet["requests"]["target"], 0, "{quiet:#}");
    assert!(
        quiet["requests"]["graph"].as_u64().unwrap() <= 2,
        "{quiet:#}"
    );

    setup.entra(ANN, json!({"jobTitle": "Boss"}));
    assert_eq!(counts(&delta_run(&setup)), [0, 1, 0, 0]);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Boss");

    setup.graph.with(|g| g.tenant.set_enabled(BOB, false));
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 1, 0]);
    assert_eq!(active("bob"), false);
    setup.graph.with(|g| g.tenant.set_enabled(BOB, true));
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 0, 1]);
    assert_eq!(active("bob"), true);

    setup.graph.with(|g| g.tenant.soft_delete(CAROL));
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 1, 0]);
    assert_eq!(active("carol"), false);
    setup.graph.with(|g| g.tenant.restore(CAROL));
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 0, 1]);
    assert_eq!(active("carol"), true);

    setup.graph.with(|g| g.tenant.hard_delete(DAN));
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 1, 0]);
    assert_eq!(active("dan"), false);

    setup.graph.with(|g| g.tenant.add(user(EVE, "eve", None)));
    assert_eq!(counts(&delta_run(&setup)), [1, 0, 0, 0]);
    assert_eq!(active("eve"), true);

    // Out of the filter, then back into it.
    setup.entra(ANN, json!({"jobTitle": "Contractor"}));
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 1, 0]);
    assert_eq!(active("ann"), false);
    setup.entra(ANN, json!({"jobTitle": "Engineer"}));
    // One write reactivates her and sets the title.
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 0, 1]);
    assert_eq!(active("ann"), true);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Engineer");

    // The manager: a change of it alone reaches the target too.
    setup.graph.with(|g| g.tenant.set_manager(BOB, Some(CAROL)));
    let managed = delta_run(&setup);
    assert_eq!(counts(&managed), [0, 1, 0, 0], "{managed:#}");
    let carol_id = setup
        .snipe
        .with(|s| s.user_named("carol@contoso.com").unwrap().0);
    assert_eq!(
        setup.column("bob@contoso.com", "manager_id"),
        json!(carol_id),
        "{managed:#}"
    );

    // A full run after all that finds nothing left to do.
    let full = setup.run(&["--full"]);
    assert_eq!(full["mode"], "reconcile");
    assert_eq!(counts(&full), [0, 0, 0, 0], "{full:#}");
}

#[test]
fn a_run_reads_in_full_and_says_why_when_it_cannot_follow_the_link() {
    let setup = setup("");
    let why = |report: &Value| {
        report["mode_reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // Graph forgot the link (seven days, or a reset).
    setup.graph.with(|g| g.expire_delta_links());
    setup.entra(BOB, json!({"jobTitle": "Boss"}));
    let expired = setup.run(&[]);
    assert_eq!(expired["mode"], "full");
    assert!(why(&expired).contains("no longer knows"), "{expired:#}");
    assert_eq!(counts(&expired), [0, 1, 0, 0]);
    delta_run(&setup);

    // The config changed (here, a setting every record reads could have).
    let config = setup.dir.path().join("userload.ini");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[sync]\n", "[sync]\nconcurrency = 2\n"),
    )
    .unwrap();
    let edited = setup.run(&[]);
    assert_eq!(edited["mode"], "full");
    assert!(why(&edited).contains("config"), "{edited:#}");
    delta_run(&setup);

    // A link in the state that is not Graph's is never followed.
    {
        let db = rusqlite::Connection::open(setup.dir.path().join("state.db")).unwrap();
        let changed = db
            .execute(
                "UPDATE delta_links SET link = 'https://graph.example.net/v1.0/users/delta?$deltatoken=x'",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let foreign = setup.run(&[]);
    assert_eq!(foreign["mode"], "full");
    assert!(
        why(&foreign).contains("not a users delta link"),
        "{foreign:#}"
    );
    delta_run(&setup);

    // Turned off by the admin.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[sync]\n", "[sync]\ndelta = no\n")).unwrap();
    let off = setup.run(&[]);
    assert_eq!(off["mode"], "full");
    assert!(why(&off).contains("delta = no"), "{off:#}");
}

#[test]
fn a_broken_delta_page_fails_the_run_and_deactivates_nobody() {
    for fault in [DeltaFault::NotJson, DeltaFault::NoDeltaLink] {
        let setup = setup("");
        setup.graph.with(|g| {
            g.tenant.hard_delete(DAN);
            g.behaviour.delta_fault = Some(fault);
        });
        let (code, stdout, stderr) = setup.userload(&["run"]);
        assert_eq!(code, 2, "{fault:?}: {stdout}{stderr}");
        assert!(stderr.contains("users/delta"), "{fault:?}: {stderr}");
        assert_eq!(
            setup.column("dan@contoso.com", "activated"),
            true,
            "{fault:?}"
        );
        // Mended, the next run makes the change.
        setup.graph.with(|g| g.behaviour.delta_fault = None);
        assert_eq!(counts(&delta_run(&setup)), [0, 0, 1, 0], "{fault:?}");
    }
}

#[test]
fn writes_that_failed_are_read_again_by_the_next_run() {
    let setup = setup("");
    setup.entra(ANN, json!({"jobTitle": "Boss"}));
    setup.entra(BOB, json!({"surname": "Bloggs"}));
    // The target refuses every write for now.
    setup.snipe.with(|s| s.refuse_writes = true);
    let (code, stdout, stderr) = setup.userload(&["run", "--report", "r.json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("not advanced"), "{stderr}");
    setup.snipe.with(|s| s.refuse_writes = false);
    // Nothing changed in Entra since, but the changes are read again and written.
    let replay = delta_run(&setup);
    assert_eq!(counts(&replay), [0, 2, 0, 0], "{replay:#}");
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Boss");
    assert_eq!(setup.column("bob@contoso.com", "last_name"), "Bloggs");
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 0, 0]);
}

#[test]
fn many_changes_in_one_round_are_all_read() {
    let users: Vec<Value> = (0..40)
        .map(|i| {
            user(
                &format!("00000000-0000-0000-0000-0000000001{i:02}"),
                &format!("u{i}"),
                None,
            )
        })
        .collect();
    let setup = Setup::new(&users, "");
    assert_eq!(counts(&setup.run(&[])), [40, 0, 0, 0]);
    setup.graph.with(|g| {
        for i in 0..33 {
            let id = format!("00000000-0000-0000-0000-0000000001{i:02}");
            assert!(g.tenant.update(&id, json!({"jobTitle": "Boss"})));
        }
    });
    let round = delta_run(&setup);
    assert_eq!(counts(&round), [0, 33, 0, 0], "{round:#}");
}

#[test]
fn a_delta_run_is_no_measure_for_the_next_full_reads_growth_bound() {
    let users: Vec<Value> = (0..1200)
        .map(|i| {
            user(
                &format!("00000000-0000-0000-0000-00000001{i:04}"),
                &format!("u{i}"),
                None,
            )
        })
        .collect();
    let setup = Setup::new(&users, "");
    assert_eq!(counts(&setup.run(&[]))[0], 1200);
    // A night with one change: the run read one user.
    setup.entra(
        "00000000-0000-0000-0000-000000010007",
        json!({"jobTitle": "Boss"}),
    );
    assert_eq!(counts(&delta_run(&setup)), [0, 1, 0, 0]);
    // The next full read is bounded by the last full one (1,200 users), not by that one.
    let full = setup.run(&["--full"]);
    assert_eq!(full["source_users"], 1200, "{full:#}");
}

#[test]
fn run_user_applies_exactly_that_user() {
    let setup = setup("");
    setup.entra(ANN, json!({"jobTitle": "Boss"}));
    setup.entra(BOB, json!({"jobTitle": "Boss"}));
    setup.edit("carol@contoso.com", "jobtitle", json!("By hand"));
    let writes = || setup.snipe.with(|s| s.traffic.writes());
    let before = writes();

    // By user principal name: ann alone is written; bob waits for the next run.
    let one = setup.run(&["--user", "ann@contoso.com"]);
    assert_eq!(one["mode"], "user", "{one:#}");
    assert_eq!(counts(&one), [0, 1, 0, 0], "{one:#}");
    assert_eq!(writes(), before + 1);
    assert_eq!(setup.column("ann@contoso.com", "jobtitle"), "Boss");
    assert_eq!(setup.column("bob@contoso.com", "jobtitle"), "Engineer");
    // By object id: carol's value changed by hand is put right (one user is compared
    // field by field).
    let carol = setup.run(&["--user", CAROL]);
    assert_eq!(counts(&carol), [0, 1, 0, 0], "{carol:#}");
    assert_eq!(setup.column("carol@contoso.com", "jobtitle"), "Engineer");

    // Out of the filter: its target user is deactivated, and the run says why.
    setup.entra(DAN, json!({"jobTitle": "Contractor"}));
    let (code, stdout, stderr) = setup.userload(&["run", "--user", "dan@contoso.com"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("out of scope"), "{stderr}");
    assert_eq!(setup.column("dan@contoso.com", "activated"), false);

    // Unknown: a clear error, nothing written.
    let before = writes();
    let (code, _, stderr) = setup.userload(&["run", "--user", "nobody@contoso.com"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no user in Graph"), "{stderr}");
    assert_eq!(writes(), before);

    // The state knows what was written: the next run writes bob alone.
    let next = setup.run(&[]);
    assert_eq!(counts(&next), [0, 1, 0, 0], "{next:#}");
    assert_eq!(setup.column("bob@contoso.com", "jobtitle"), "Boss");
}

#[test]
fn validate_says_whether_runs_read_by_delta_and_why_not() {
    let reads = |source_lines: &str, sync_lines: &str| {
        let setup = Setup::with(&[user(ANN, "ann", None)], source_lines, sync_lines);
        let (code, stdout, stderr) = setup.userload(&["validate"]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with("reads "))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(reads("", "").contains("only what changed in Entra (delta)"));
    assert!(reads("", "delta = no").contains("`delta = no`"));
    assert!(
        reads("group = 0b7f4a5e-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "")
            .contains("unavailable (the config scopes users by group")
    );
    assert!(
        reads(
            "filter = signInActivity/lastSignInDateTime le 2026-01-01T00:00:00Z",
            ""
        )
        .contains("unavailable (the filter reads `signInActivity`")
    );
}

#[test]
fn a_delta_run_killed_between_its_writes_and_its_link_is_replayed() {
    let ids: Vec<String> = (0..40)
        .map(|i| format!("00000000-0000-0000-0000-0000000002{i:02}"))
        .collect();
    let users: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| user(id, &format!("k{i}"), None))
        .collect();
    let setup = Setup::new(&users, "concurrency = 2");
    assert_eq!(counts(&setup.run(&[]))[0], 40);
    setup.graph.with(|g| {
        for id in &ids {
            g.tenant.update(id, json!({"jobTitle": "Boss"}));
        }
    });
    let patches = || {
        setup
            .snipe
            .with(|s| s.traffic.log.iter().filter(|l| l.method == "PATCH").count())
    };
    setup
        .snipe
        .with(|s| s.traffic.latency = Duration::from_millis(50));
    let mut child =
        crate::util::userload_command(setup.dir.path(), &["run", "--config", "userload.ini"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while patches() < 5 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("userload ended ({status}) before it was killed");
        }
        assert!(Instant::now() < deadline, "no 5 updates in 2 minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    let made = patches();
    assert!(made < 40, "{made} updates before the kill");
    setup.snipe.with(|s| s.traffic.latency = Duration::ZERO);
    // The link was not advanced: the same changes are read again; what was written
    // compares unchanged, the rest is written.
    let replay = delta_run(&setup);
    // (An update under way at the kill may or may not have been made.)
    let updated = counts(&replay)[1] as usize;
    assert!(
        updated + made >= 40 && updated <= 40 - made + 2,
        "{made} made, then {updated}: {replay:#}"
    );
    for i in 0..40 {
        assert_eq!(
            setup.column(&format!("k{i}@contoso.com"), "jobtitle"),
            "Boss"
        );
    }
    assert_eq!(counts(&delta_run(&setup)), [0, 0, 0, 0]);
}
