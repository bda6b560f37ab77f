//! What reading group membership costs a run: 100,000 users synced to Snipe-IT by a mapping
//! whose job title is the user's role by group (five groups named in `input_groups`, one
//! nested in another, 33,000 members in all), against the same run by a mapping that reads
//! no group. Each config is loaded once first (not timed); then nights without a change are
//! timed, alternating between the two. Both configs read in full every run (`delta = no`):
//! a config that reads groups cannot use delta runs, so the comparison is like for like.
//!
//! The Graph simulator answers every request 20 ms after it arrived, the Snipe-IT simulator
//! 5 ms after. The real binary runs as a child process and reports its own figures
//! (`--report`). Simulators and client share this machine's cores.
//!
//! Target: with groups within 1.2 × the same run without.
//!
//! Run with `cargo bench --bench groups` (`-- USERS RUNS` to change the tenant's size and
//! the timed runs of each).

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sim::graph::{self as graph_sim, GraphSim};
use sim::snipeit::{self, SnipeIt, SnipeItSim};
use sim::tenant::Tenant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GRAPH_LATENCY: Duration = Duration::from_millis(20);
const SNIPEIT_LATENCY: Duration = Duration::from_millis(5);
const CONCURRENCY: u32 = 32;

/// The five groups: (display name, every n-th user a direct member). "All-Staff" also holds
/// "Sales" nested.
const GROUPS: &[(&str, usize)] = &[
    ("IT-Admins", 100),
    ("Contractors", 10),
    ("Sales", 8),
    ("All-Staff", 12),
    ("Interns", 50),
];

const BASE: &str = r#"
version = 1
target = "snipeit"
match = "username"
active = { field = "activated", active = true, inactive = false }

[fields.first_name]
source = ["givenName", "displayName"]
required = true

[fields.last_name]
source = "surname"

[fields.username]
source = "userPrincipalName"

[fields.email]
source = "mail"

[fields.employee_num]
source = "employeeId"

[fields.activated]
source = "accountEnabled"
"#;

const WITHOUT: &str = r#"
[fields.jobtitle]
source = "jobTitle"
"#;

const WITH: &str = r#"
[fields.jobtitle]
source = "groups"
convert = [{ first_of = [["IT-Admins", "admin"], ["Contractors", "restricted"], ["Sales", "sales"], ["All-Staff", "staff"], ["Interns", "intern"]] }]
default = "user"
"#;

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = numbers.first().copied().unwrap_or(100_000);
    let runs = numbers.get(1).copied().unwrap_or(3);
    let built = Instant::now();
    let mut tenant = Tenant::synthetic(users, 2024);
    let ids = tenant.ids();
    let group_id = |n: usize| format!("6a1f0c3e-0000-4000-8000-{n:012}");
    for (n, (name, every)) in GROUPS.iter().enumerate() {
        let members = ids.iter().skip(n).step_by(*every).cloned();
        let nested = (*name == "All-Staff").then(|| group_id(2));
        tenant.add_group(&group_id(n), name, members, nested);
    }
    let members: usize = (0..GROUPS.len())
        .map(|n| tenant.members(&group_id(n)).map_or(0, |m| m.len()))
        .sum();
    let graph = GraphSim::start(tenant).expect("Graph simulator");
    graph.with(|s| s.behaviour.latency = GRAPH_LATENCY);
    println!(
        "tenant of {users} users, {} groups with {members} transitive members in all, built \
         in {:.1} s; Graph {} ms, Snipe-IT {} ms per request",
        GROUPS.len(),
        built.elapsed().as_secs_f64(),
        GRAPH_LATENCY.as_millis(),
        SNIPEIT_LATENCY.as_millis()
    );
    let names: Vec<&str> = GROUPS.iter().map(|(name, _)| *name).collect();
    let without = World::new(&graph, &format!("{BASE}{WITHOUT}"), "");
    let with = World::new(
        &graph,
        &format!("{BASE}{WITH}"),
        &format!("input_groups = {}", names.join(", ")),
    );
    without.run("first load without groups");
    with.run("first load with groups");
    let (mut plain, mut grouped) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        plain.push(without.run("no change, without groups"));
        grouped.push(with.run("no change, with groups"));
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (plain, grouped) = (median(&mut plain), median(&mut grouped));
    println!(
        "median of {runs}: without groups {:.2} s, with groups {:.2} s: {:.2} × (aim: 1.2 ×)",
        plain.as_secs_f64(),
        grouped.as_secs_f64(),
        grouped.as_secs_f64() / plain.as_secs_f64()
    );
}

/// A Snipe-IT simulator and a config folder syncing the tenant to it with one mapping.
struct World {
    _snipe: SnipeItSim,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl World {
    fn new(graph: &GraphSim, mapping: &str, source_lines: &str) -> World {
        let snipe = SnipeIt::start().expect("Snipe-IT simulator");
        snipe.with(|s| s.traffic.latency = SNIPEIT_LATENCY);
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("mapping.toml"), mapping).expect("mapping");
        let config = dir.path().join("bench.ini");
        let url = graph.url();
        std::fs::write(
            &config,
            format!(
                "[source]\ntenant_id = {}\nclient_id = {}\nsecret = env:BENCH_SECRET\n\
                 authority = {url}\ndomain = {url}\npage_size = 999\n{source_lines}\n\
                 [target]\ntype = rest\npreset = snipeit\nurl = {}\ntoken = {}\n\
                 page_size = 500\n[sync]\nconcurrency = {CONCURRENCY}\ncreate_disabled = true\n\
                 mapping = mapping.toml\nstate = state.db\ndelta = no\n",
                graph_sim::TENANT_ID,
                graph_sim::CLIENT_ID,
                snipe.url(),
                snipeit::TOKEN,
            ),
        )
        .expect("config");
        World {
            _snipe: snipe,
            dir,
            config,
        }
    }

    /// One run; its wall time.
    fn run(&self, what: &str) -> Duration {
        let report = self.dir.path().join("report.json");
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_userload"))
            .args(["run", "--config"])
            .arg(&self.config)
            .arg("--report")
            .arg(&report)
            .env("BENCH_SECRET", graph_sim::SECRET)
            .current_dir(Path::new(self.dir.path()))
            .output()
            .expect("userload runs");
        let wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{what}: run failed: {stderr}");
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
                .expect("report is JSON");
        println!(
            "{what}: {:.2} s (reading {:.2} s); requests: Graph {}, target {} ({} writes); \
             peak RSS {} MB",
            wall.as_secs_f64(),
            report["seconds"]["read"].as_f64().unwrap_or(0.0),
            report["requests"]["graph"],
            report["requests"]["target"],
            report["requests"]["target_writes"],
            report["peak_memory_mb"],
        );
        wall
    }
}
