//! Keeping to a target's request limit: a first load of 2,000 users into a Snipe-IT
//! simulator that allows 600 requests a minute (Laravel's throttle, windows of 60 s, as an
//! instance with `API_THROTTLE_PER_MINUTE=600` does), with the preset's default of 120 a
//! minute and no `rate_limit`: userload must learn the limit from the answers' headers.
//!
//! The floor is the time the limit itself takes: every request the load made (the creates,
//! the entity lists and creates, the user listing), less those answered 429, at 10 a
//! second. The Graph simulator answers every request 20 ms after it arrived, the Snipe-IT
//! simulator 5 ms after. The real binary runs as a child process and reports its own
//! figures (`--report`). Simulators and client share this machine's cores.
//!
//! Target: within 1.05 × the floor, no failed user, at most 1% of the requests answered 429.
//!
//! Run with `cargo bench --bench pacing` (`-- USERS` to change the tenant's size).

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sim::graph::{self as graph_sim, GraphSim};
use sim::snipeit::{self, SnipeIt};
use sim::tenant::Tenant;
use sim::throttle::Throttle;

const GRAPH_LATENCY: Duration = Duration::from_millis(20);
const SNIPEIT_LATENCY: Duration = Duration::from_millis(5);
const PER_MINUTE: u64 = 600;

fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let graph = GraphSim::start(Tenant::synthetic(users, 2024)).expect("Graph simulator");
    graph.with(|s| s.behaviour.latency = GRAPH_LATENCY);
    let snipe =
        SnipeIt::start_throttled(Throttle::per_minute(PER_MINUTE)).expect("Snipe-IT simulator");
    snipe.with(|s| s.traffic.latency = SNIPEIT_LATENCY);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bench.ini");
    let url = graph.url();
    std::fs::write(
        &config,
        format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = env:BENCH_SECRET\nauthority = {url}\n\
             domain = {url}\npage_size = 999\n[target]\ntype = rest\npreset = snipeit\nurl = {}\n\
             token = {}\npage_size = 500\n[sync]\ncreate_disabled = true\nstate = state.db\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            snipe.url(),
            snipeit::TOKEN,
        ),
    )
    .expect("config");
    let report = dir.path().join("report.json");
    println!(
        "{users} users into Snipe-IT at {PER_MINUTE} requests/min (Graph {} ms, Snipe-IT {} ms \
         per request)",
        GRAPH_LATENCY.as_millis(),
        SNIPEIT_LATENCY.as_millis()
    );
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
    assert!(output.status.success(), "the run failed: {stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
        .expect("report is JSON");
    let requests = report["requests"]["target"].as_u64().unwrap_or(0);
    let throttled = report["requests"]["target_throttled"].as_u64().unwrap_or(0);
    let refused = snipe.with(|s| s.throttle.refused);
    let failed = report["failures"].as_array().map_or(0, Vec::len);
    let created = report["counts"]["created"].as_u64().unwrap_or(0);
    let per_second = PER_MINUTE as f64 / 60.0;
    let floor = Duration::from_secs_f64((requests - throttled) as f64 / per_second);
    let ratio = wall.as_secs_f64() / floor.as_secs_f64();
    let share = throttled as f64 / requests.max(1) as f64;
    println!(
        "wall {:.1} s (reading {:.1} s, writing {:.1} s); floor {:.1} s ({} requests at {per_second} \
         a second); {ratio:.3} × the floor",
        wall.as_secs_f64(),
        report["seconds"]["read"].as_f64().unwrap_or(0.0),
        report["seconds"]["write"].as_f64().unwrap_or(0.0),
        floor.as_secs_f64(),
        requests - throttled,
    );
    println!(
        "created {created}, failed {failed}; answered 429: {throttled} ({:.2}% of {requests} \
         requests; the simulator counted {refused})",
        share * 100.0
    );
    let met = ratio <= 1.05 && failed == 0 && share <= 0.01;
    println!(
        "target (≤ 1.05 × floor, no failed user, ≤ 1% 429): {}",
        if met { "met" } else { "missed" }
    );
}
