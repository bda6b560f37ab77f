//! `userload demo`: the whole job on an embedded default, without a tenant or an asset
//! system.
//!
//! It starts the Graph simulator (a synthetic tenant) and the SCIM simulator on loopback in
//! this process, writes a config for them, and then runs the very commands an admin runs —
//! `plan`, `run`, `status` — through the same code: sign-in with a client secret, paged
//! Graph reads, the shipped SCIM mapping, planning, the safety guards, concurrent writes and
//! the SQLite state file. Between two nights the tenant changes (hires, leavers, disabled
//! accounts, department moves, promotions), and the second night shows the updates and
//! deactivations that follow. Last, the same tenant goes into a simulated Snipe-IT with the
//! shipped Snipe-IT mapping: its departments, locations and company are created there, and
//! every user's manager is written as the manager's Snipe-IT id. Nothing leaves the machine.

//!
//! It lives with the binary, not the library: the library never links the simulators.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::json;
use sim::graph::{self as graph_sim, GraphSim};
use sim::scim::ScimSim;
use sim::snipeit::{self, SnipeIt, SnipeItSim};
use sim::tenant::{self, Tenant};
use userload::cli::{DemoArgs, Outcome, execute, print_error};

/// The synthetic tenant's seed: every demo shows the same people.
const SEED: u64 = 2026;

/// The bearer token the demo's SCIM server demands.
const TOKEN: &str = "demo-scim-token-4e1f9a27c3";

/// A folder for the demo's files: the one asked for, or a temporary one removed at the end.
enum Folder {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Folder {
    fn path(&self) -> &Path {
        match self {
            Folder::Kept(path) => path,
            Folder::Temporary(dir) => dir.path(),
        }
    }
}

fn folder(keep: Option<&Path>) -> std::io::Result<Folder> {
    match keep {
        Some(path) => {
            std::fs::create_dir_all(path)?;
            if path.join("userload.ini").exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{} already holds a userload.ini; choose an empty folder",
                        path.display()
                    ),
                ));
            }
            Ok(Folder::Kept(path.to_owned()))
        }
        None => tempfile::Builder::new()
            .prefix("userload-demo-")
            .tempdir()
            .map(Folder::Temporary),
    }
}

/// Writes the demo's config (secrets in files beside it, as an admin would keep them).
fn write_config(dir: &Path, graph: &str, scim: &str) -> std::io::Result<PathBuf> {
    std::fs::write(dir.join("client-secret.txt"), graph_sim::SECRET)?;
    std::fs::write(dir.join("scim-token.txt"), TOKEN)?;
    let config = format!(
        "# userload demo: a simulated tenant and SCIM server on this machine.\n\
         [source]\n\
         tenant_id = {tenant}\n\
         client_id = {client}\n\
         secret = file:client-secret.txt\n\
         authority = {graph}\n\
         domain = {graph}\n\
         filter = accountEnabled eq true or accountEnabled eq false\n\
         \n\
         [target]\n\
         type = scim\n\
         url = {scim}\n\
         token = file:scim-token.txt\n\
         page_size = 1000\n\
         \n\
         [sync]\n\
         default_role = 25\n\
         default_position = Employee\n\
         state = userload.db\n\
         concurrency = 16\n",
        tenant = graph_sim::TENANT_ID,
        client = graph_sim::CLIENT_ID,
    );
    let path = dir.join("userload.ini");
    std::fs::write(&path, config)?;
    Ok(path)
}

fn heading(text: &str) {
    println!("\n=== {text}\n");
}

/// The night's changes in the tenant; returns a line per kind of change.
fn change_tenant(graph: &GraphSim) -> Vec<String> {
    graph.with(|s| {
        let t = &mut s.tenant;
        let mut enabled: Vec<String> = t
            .users()
            .filter(|u| u["accountEnabled"] == true)
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .collect();
        enabled.sort();
        // Spread the changes over the tenant, each user changed one way only.
        let mut pick = {
            let mut next = enabled.into_iter().step_by(17);
            move |n: usize| next.by_ref().take(n).collect::<Vec<_>>()
        };
        let mut lines = Vec::new();
        let mut hired = 0;
        for index in 0.. {
            if hired == 25 {
                break;
            }
            let user = tenant::new_hire(SEED, index);
            if user["accountEnabled"] == true {
                t.add(user);
                hired += 1;
            }
        }
        lines.push(format!("{hired} new hires"));
        let gone = pick(10);
        for id in &gone {
            t.hard_delete(id);
        }
        let binned = pick(6);
        for id in &binned {
            t.soft_delete(id);
        }
        lines.push(format!(
            "{} leavers ({} deleted, {} in the recycle bin)",
            gone.len() + binned.len(),
            gone.len(),
            binned.len()
        ));
        let disabled = pick(8);
        for id in &disabled {
            t.set_enabled(id, false);
        }
        lines.push(format!("{} accounts disabled", disabled.len()));
        let moved = pick(30);
        for (i, id) in moved.iter().enumerate() {
            let department = ["Finance", "Engineering", "Facilities", "Sales"][i % 4];
            t.update(id, json!({ "department": department }));
        }
        lines.push(format!("{} department moves", moved.len()));
        let promoted = pick(12);
        for id in &promoted {
            t.update(id, json!({ "jobTitle": "Senior Manager" }));
        }
        lines.push(format!("{} promotions", promoted.len()));
        lines
    })
}

/// Writes a config that syncs the same tenant into Snipe-IT (`snipeit.ini`).
fn write_snipeit_config(dir: &Path, graph: &str, snipe: &str) -> std::io::Result<PathBuf> {
    std::fs::write(dir.join("snipeit-token.txt"), snipeit::TOKEN)?;
    let config = format!(
        "# userload demo: the same tenant into a simulated Snipe-IT.\n\
         [source]\n\
         tenant_id = {tenant}\n\
         client_id = {client}\n\
         secret = file:client-secret.txt\n\
         authority = {graph}\n\
         domain = {graph}\n\
         \n\
         [target]\n\
         type = rest\n\
         preset = snipeit\n\
         url = {snipe}\n\
         token = file:snipeit-token.txt\n\
         \n\
         [sync]\n\
         state = snipeit.db\n\
         concurrency = 16\n",
        tenant = graph_sim::TENANT_ID,
        client = graph_sim::CLIENT_ID,
    );
    let path = dir.join("snipeit.ini");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// What the simulated Snipe-IT holds, in one sentence.
fn snipeit_holds(snipe: &SnipeItSim) -> String {
    snipe.with(|s| {
        let managed = s
            .users
            .values()
            .filter(|u| u.get("manager_id").is_some_and(|m| !m.is_null()))
            .count();
        format!(
            "Snipe-IT now holds {} users, {} departments, {} locations and {} company; {managed} \
             users have their manager set, by Snipe-IT id.",
            s.users.len(),
            s.departments.len(),
            s.locations.len(),
            s.companies.len()
        )
    })
}

/// `userload demo`.
pub fn run(args: &DemoArgs) -> Outcome {
    match demo(args) {
        Ok(outcome) => outcome,
        Err(e) => {
            print_error(&e);
            Outcome::Failed
        }
    }
}

fn demo(args: &DemoArgs) -> std::io::Result<Outcome> {
    let started = std::time::Instant::now();
    let users = args.users as usize;
    let graph = GraphSim::start(Tenant::synthetic(users, SEED))?;
    let scim = ScimSim::start()?;
    scim.with(|s| s.behaviour.token = Some(TOKEN.to_owned()));
    let folder = folder(args.keep.as_deref())?;
    let dir = folder.path();
    let config = write_config(dir, &graph.url(), &scim.url())?;
    println!(
        "userload demo: a simulated Entra tenant of {users} users at {} and an empty SCIM \
         asset system at {}, both on this machine; nothing leaves it.\nConfig: {}",
        graph.url(),
        scim.url(),
        config.display()
    );
    let command = |words: &[&str], files: &[(&str, PathBuf)]| {
        let mut args: Vec<OsString> = words.iter().map(OsString::from).collect();
        args.extend(["--config".into(), config.clone().into_os_string()]);
        for (flag, path) in files {
            args.extend([OsString::from(flag), path.clone().into_os_string()]);
        }
        execute(args)
    };
    let plan = |show: &str| command(&["plan", "--show", show], &[]);
    // The second night's page outlives a temporary folder, so that it can be opened after.
    let page = match &folder {
        Folder::Kept(path) => path.join("report-2.html"),
        Folder::Temporary(_) => std::env::temp_dir().join("userload-demo-report.html"),
    };
    let run = |night: u32, changes: bool| {
        let mut files = vec![("--report", dir.join(format!("report-{night}.json")))];
        if changes {
            files.push(("--changes", dir.join(format!("changes-{night}.csv"))));
            files.push(("--html", page.clone()));
        }
        command(&["run"], &files)
    };
    let mut outcomes = Vec::new();
    heading("1. userload plan: what the first night would do (5 of each kind shown)");
    outcomes.push(plan("5"));
    heading("2. userload run: the first night loads everyone");
    outcomes.push(run(1, false));
    heading("3. During the day, the tenant changes");
    for line in change_tenant(&graph) {
        println!("  {line}");
    }
    heading("4. userload plan: what the second night will do");
    outcomes.push(plan("8"));
    heading("5. userload run: the second night");
    outcomes.push(run(2, true));
    heading("6. userload status: the run history");
    outcomes.push(command(&["status"], &[]));
    let held = scim.with(|s| s.len());
    heading(
        "7. The same tenant into Snipe-IT: departments, locations and the company are made \
         there, managers set by Snipe-IT id",
    );
    let snipe = SnipeIt::start()?;
    let snipe_config = write_snipeit_config(dir, &graph.url(), &snipe.url())?;
    let snipe_command = |words: &[&str]| {
        let mut args: Vec<OsString> = words.iter().map(OsString::from).collect();
        args.extend(["--config".into(), snipe_config.clone().into_os_string()]);
        execute(args)
    };
    outcomes.push(snipe_command(&["plan", "--show", "3"]));
    outcomes.push(snipe_command(&["run"]));
    println!("\n{}", snipeit_holds(&snipe));
    println!(
        "\nThe SCIM server now holds {held} users. The demo took {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    match &folder {
        Folder::Kept(path) => println!(
            "Its config, state file, reports (report-1.json, report-2.json) and changes \
             (changes-2.csv) are in {}.",
            path.display()
        ),
        Folder::Temporary(_) => println!(
            "Run `userload demo --keep demo` to keep its config, state file, reports and CSV."
        ),
    }
    println!(
        "The second night as a page to open in a browser: {}",
        page.display()
    );
    println!("To start on your own tenant: userload init --help");
    let ok = outcomes.iter().all(|o| *o == Outcome::Success);
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
