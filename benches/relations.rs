//! What references cost on a first load: 100,000 users into Snipe-IT with the shipped
//! mapping — managers for 90% of them, 200 departments, 50 locations and one company, each
//! written as Snipe-IT's id — against the same load with those four fields taken out of the
//! mapping (the creates alone, the floor). Both runs start from an empty Snipe-IT and no
//! state file.
//!
//! The Graph simulator answers every request 20 ms after it arrived, the Snipe-IT simulator
//! 5 ms after (the work of answering included). The real binary runs as a child process and
//! reports its own figures (`--report`). Simulators and client share this machine's cores.
//!
//! Target: the load with references within 1.3 × the creates alone; the second-pass writes
//! (a cycle of managers, none in this tenant) are printed.
//!
//! Run with `cargo bench --bench relations` (`-- USERS` to change the tenant's size).

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::snipeit::{self, SnipeIt};
use sim::tenant::Tenant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GRAPH_LATENCY: Duration = Duration::from_millis(20);
const SNIPEIT_LATENCY: Duration = Duration::from_millis(5);
const CONCURRENCY: u32 = 32;

/// The shipped Snipe-IT mapping without its four references: the creates alone.
fn without_references(shipped: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in shipped.lines() {
        if line.starts_with("[fields.") {
            skipping = ["department_id", "location_id", "company_id", "manager_id"]
                .iter()
                .any(|f| line == format!("[fields.{f}]"));
        } else if line.starts_with('[') || line.starts_with('#') && line.contains("-----") {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let built = Instant::now();
    let mut tenant = Tenant::synthetic(users, 2024);
    // 90% have a manager; 200 departments, 50 offices.
    for (i, id) in tenant.ids().into_iter().enumerate() {
        if i % 10 == 0 {
            tenant.set_manager(&id, None);
        }
        tenant.update(
            &id,
            json!({
                "department": format!("Department {:03}", i % 200),
                "officeLocation": format!("Office {:02}", i % 50),
            }),
        );
    }
    let graph = GraphSim::start(tenant).expect("Graph simulator");
    graph.with(|s| s.behaviour.latency = GRAPH_LATENCY);
    println!(
        "tenant of {users} users built in {:.1} s; Graph {} ms, Snipe-IT {} ms per request",
        built.elapsed().as_secs_f64(),
        GRAPH_LATENCY.as_millis(),
        SNIPEIT_LATENCY.as_millis()
    );
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/snipeit.toml"),
    )
    .expect("shipped mapping");
    let floor = load(&graph, &without_references(&shipped), "creates alone");
    let with = load(&graph, &shipped, "with references");
    println!(
        "with references: {:.2} × the creates alone",
        with.as_secs_f64() / floor.as_secs_f64()
    );
}

/// A first load into an empty Snipe-IT with `mapping`; its wall time.
fn load(graph: &GraphSim, mapping: &str, what: &str) -> Duration {
    let snipe = SnipeIt::start().expect("Snipe-IT simulator");
    snipe.with(|s| s.traffic.latency = SNIPEIT_LATENCY);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("mapping.toml"), mapping).expect("mapping");
    let config = dir.path().join("bench.ini");
    let url = graph.url();
    std::fs::write(
        &config,
        format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = env:BENCH_SECRET\nauthority = {url}\n\
             domain = {url}\npage_size = 999\n[target]\ntype = rest\npreset = snipeit\nurl = {}\n\
             token = {}\npage_size = 500\n[sync]\nconcurrency = {CONCURRENCY}\n\
             create_disabled = true\nmapping = mapping.toml\nstate = state.db\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            snipe.url(),
            snipeit::TOKEN,
        ),
    )
    .expect("config");
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_userload"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--report")
        .arg(&report)
        .env("BENCH_SECRET", graph_sim::SECRET)
        .output()
        .expect("userload runs");
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what}: run failed: {stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
        .expect("report is JSON");
    let references = &report["references"];
    let with_manager = snipe.with(|s| {
        s.users
            .values()
            .filter(|u| u.get("manager_id").is_some_and(|m| !m.is_null()))
            .count()
    });
    println!(
        "{what}: {:.2} s (reading {:.2} s, writing {:.2} s); requests: Graph {}, target {} \
         ({} writes); peak RSS {} MB; created {}; entities created {}; users with a manager \
         {with_manager}; second-pass writes {}; references left empty {}",
        wall.as_secs_f64(),
        report["seconds"]["read"].as_f64().unwrap_or(0.0),
        report["seconds"]["write"].as_f64().unwrap_or(0.0),
        report["requests"]["graph"],
        report["requests"]["target"],
        report["requests"]["target_writes"],
        report["peak_memory_mb"],
        report["counts"]["created"],
        references["entities_created"]
            .as_array()
            .map_or(0, Vec::len),
        references["second_pass_writes"],
        references["unresolved"].as_array().map_or(0, Vec::len),
    );
    wall
}
