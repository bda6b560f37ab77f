//! Leavers' assets: a planned deactivation lists what the user still holds in Snipe-IT, in
//! the plan, the report, the CSV of changes; `hold_leavers_with_assets` holds it until the
//! things are returned.

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::snipeit::{self, SnipeIt, SnipeItSim};
use sim::tenant::Tenant;

use crate::util::{outcome, userload, write};

/// The Graph simulator, a Snipe-IT simulator with the shipped mapping's departments, and a
/// folder with a config syncing one to the other (`sync_lines` added to `[sync]`).
struct Setup {
    graph: GraphSim,
    snipe: SnipeItSim,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(sync_lines: &str) -> Setup {
        let graph = GraphSim::start(Tenant::synthetic(20, 11)).unwrap();
        let snipe = SnipeIt::start().unwrap();
        snipe.with(|s| {
            for name in [
                "Unassigned",
                "IT Operations",
                "Finance",
                "Human Resources",
                "Sales",
            ] {
                s.add_department(name);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup { graph, snipe, dir };
        setup.configure(sync_lines);
        setup
    }

    /// Writes the config with these `[sync]` lines.
    fn configure(&self, sync_lines: &str) {
        let url = self.graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\ndomain = {url}\n\
             [target]\ntype = rest\npreset = snipeit\nurl = {}\ntoken = {}\n\
             [sync]\ndefault_role = 25\ndefault_position = Employee\n{sync_lines}\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            graph_sim::SECRET,
            self.snipe.url(),
            snipeit::TOKEN,
        );
        write(self.dir.path(), "userload.ini", &text);
    }

    /// Runs `userload` with these arguments after the config: exit code, stdout, stderr.
    fn userload(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = args.to_vec();
        all.extend(["--config", "userload.ini"]);
        outcome(&userload(self.dir.path(), &all))
    }

    /// A run with its report and CSV of changes: exit code, report, CSV.
    fn run(&self) -> (i32, Value, String) {
        let (code, stdout, stderr) =
            self.userload(&["run", "--report", "r.json", "--changes", "c.csv"]);
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap();
        let report: Value = serde_json::from_str(&read("r.json"))
            .unwrap_or_else(|e| panic!("{e}\n{stdout}{stderr}"));
        (code, report, read("c.csv"))
    }

    /// Disables an enabled Entra user loaded into Snipe-IT: their UPN and Snipe-IT id.
    fn leave(&self) -> (String, u64) {
        let (id, upn) = self.graph.with(|g| {
            let user = g
                .tenant
                .users()
                .find(|u| u["accountEnabled"] == true)
                .unwrap();
            (
                user["id"].as_str().unwrap().to_string(),
                user["userPrincipalName"].as_str().unwrap().to_string(),
            )
        });
        self.graph.with(|g| g.tenant.set_enabled(&id, false));
        let target = self.snipe.with(|s| s.user_named(&upn).unwrap().0);
        (upn, target)
    }

    /// Whether the Snipe-IT user is active.
    fn active(&self, id: u64) -> bool {
        self.snipe
            .with(|s| s.users[&id]["activated"] == json!(true))
    }
}

#[test]
fn a_leaver_s_assets_are_listed_in_the_plan_the_report_and_the_csv() {
    let setup = Setup::new("");
    let (code, _, csv) = setup.run();
    assert_eq!(code, 0, "{csv}");
    let (upn, id) = setup.leave();
    setup.snipe.with(|s| {
        s.assign_asset(id, "LAPTOP-0042", "MacBook Pro");
        s.assign_accessory(id, "USB-C Dock");
    });
    let (code, stdout, stderr) = setup.userload(&["plan"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("- deactivate {upn}:")))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.ends_with("(holds 1 asset, 1 accessory: LAPTOP-0042 \"MacBook Pro\", \"USB-C Dock\")"),
        "{line}"
    );
    let (_, json, _) = setup.userload(&["plan", "--json"]);
    let plan: Value = serde_json::from_str(&json).unwrap();
    let holds = &plan["deactivate"][0]["holds"];
    assert_eq!(holds[0]["tag"], "LAPTOP-0042");
    assert_eq!(holds[1]["kind"], "accessory");
    let (code, report, csv) = setup.run();
    assert_eq!(code, 0, "{report}");
    assert!(
        !setup.active(id),
        "deactivated although holding assets, as asked"
    );
    let leaver = &report["leavers_holding"][0];
    assert_eq!(
        (leaver["user"].as_str(), leaver["held"].as_bool()),
        (Some(upn.as_str()), Some(false))
    );
    assert_eq!(leaver["holds"][0]["name"], "MacBook Pro");
    let rows: Vec<&str> = csv.lines().filter(|l| l.starts_with("holds,")).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].contains(",asset,")
            && rows[0].contains("LAPTOP-0042")
            && rows[0].ends_with(",done,"),
        "{csv}"
    );
}

#[test]
fn the_hold_option_keeps_a_leaver_active_until_the_assets_are_returned() {
    let setup = Setup::new("hold_leavers_with_assets = true");
    assert_eq!(setup.run().0, 0);
    let (upn, id) = setup.leave();
    let laptop = setup
        .snipe
        .with(|s| s.assign_asset(id, "LAPTOP-0042", "MacBook Pro"));
    let (code, stdout, stderr) = setup.userload(&["plan"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("= held: deactivate {upn}:")),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 deactivations held: the users still hold assets"),
        "{stderr}"
    );
    let (code, report, csv) = setup.run();
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["status"], "limited");
    assert_eq!(report["held_deactivations"], json!([upn]));
    assert_eq!(report["leavers_holding"][0]["held"], true);
    assert!(setup.active(id));
    assert!(
        csv.lines()
            .any(|l| l.starts_with("holds,") && l.ends_with(",held,")),
        "{csv}"
    );
    setup.snipe.with(|s| s.return_asset(laptop));
    let (code, report, _) = setup.run();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"]["deactivated"], 1);
    assert_eq!(report["leavers_holding"], json!([]));
    assert!(!setup.active(id));
}

#[test]
fn a_leaver_holding_nothing_is_deactivated_with_the_hold_on() {
    let setup = Setup::new("hold_leavers_with_assets = true");
    assert_eq!(setup.run().0, 0);
    let (upn, id) = setup.leave();
    let (code, report, csv) = setup.run();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["leavers_holding"], json!([]));
    assert!(!csv.contains("holds,"), "{csv}");
    assert!(!setup.active(id), "{upn} still active");
    let asked = setup.snipe.with(|s| {
        s.traffic
            .requests("GET", &format!("/api/v1/users/{id}/assets"))
            .len()
    });
    assert_eq!(asked, 1);
}

#[test]
fn a_question_snipeit_refuses_is_a_warning_and_holds_the_leaver() {
    let setup = Setup::new("hold_leavers_with_assets = true");
    assert_eq!(setup.run().0, 0);
    let (upn, id) = setup.leave();
    // An API key that may manage users but not view assets.
    setup.snipe.with(|s| s.may_view_holdings = false);
    let (code, stdout, stderr) = setup.userload(&["plan"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("could not ask Snipe-IT"), "{stderr}");
    assert!(stdout.contains("could not tell what they hold"), "{stdout}");
    let (code, report, _) = setup.run();
    assert_eq!(code, 1, "{report}");
    let leaver = &report["leavers_holding"][0];
    assert_eq!(leaver["user"].as_str(), Some(upn.as_str()));
    assert!(
        leaver["error"].as_str().unwrap().contains("403"),
        "{leaver}"
    );
    assert!(setup.active(id));
    // Without the hold the same run deactivates, with the warning in the report.
    setup.configure("");
    let (code, report, _) = setup.run();
    assert_eq!(code, 0, "{report}");
    assert!(!setup.active(id));
    assert_eq!(report["leavers_holding"][0]["held"], false);
}
