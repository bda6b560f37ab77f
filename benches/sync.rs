//! How long `userload run` takes on a large tenant, how many requests it makes, and how much
//! memory it needs: the first load; the first night in full after it, which keeps a seal for
//! every user (see `docs/sync.md`, Seals); a night without changes and a night where 1% of
//! users changed, each read in full (`delta = no`) and by delta; a full reconciliation that
//! repairs 1% of users changed by hand in the target.
//!
//! The Graph simulator serves a synthetic tenant and answers every request 20 ms after it
//! arrived; the SCIM simulator answers 5 ms after (the work of answering is part of the
//! latency, as on a real server). The real binary runs as a child process and reports its
//! own figures in its `--report` (the simulators' memory is not counted); the CPU time of
//! both sides is printed too, and, after the first load and at the end, this process's peak
//! memory: the two simulators and the tenant they hold. Simulators and client share this
//! machine's cores, which a real run does not.
//!
//! Floors: the first load needs USERS creates at `concurrency` 32, so USERS × 5 ms / 32; a
//! full night without changes needs the Graph pull (pages × 20 ms, one after another) and
//! the target listing (pages of 1,000, four at a time, × 5 ms), side by side, so the larger
//! of the two; 1% changed adds its PATCHes (1% of USERS × 5 ms / 32). A delta night needs
//! the delta pages (200 changes a page, × 20 ms) plus, with changes, the PATCHes; a
//! reconciliation repairing 1% needs the full night's reads plus the PATCHes. Targets:
//! within 1.3 × the floor, peak memory under 300 MB; a delta night without changes within
//! 0.5 s, with at most 2 Graph requests and none to the target. Last, `run --user` applies
//! one changed user (floor: two Graph requests, a lookup and a PATCH).
//!
//! Run with `cargo bench --bench sync` (`-- USERS` to change the tenant's size; `-- USERS
//! delta` for the first load and the quiet delta night alone; `-- USERS full` for the first
//! load, the night in full that seals every user, and three nights without changes in
//! full). With `BENCH_PERF=DIR` each run is recorded by `perf record` into
//! `DIR/<run>.data` (the timings then include perf's own cost); with `BENCH_HEAPTRACK=DIR`,
//! by `heaptrack` into `DIR/<run>.zst`, for `heaptrack_print` (where the peak memory goes).
//! With `BENCH_LOG=1` each run's log is printed after it (with `USERLOAD_LOG_LEVEL=info`,
//! the time each step ended).

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::graph::{self as graph_sim, GraphSim};
use sim::scim::ScimSim;
use sim::tenant::Tenant;

// The simulators run in this process; the same allocator as the binary keeps their share
// of the two cores small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GRAPH_LATENCY: Duration = Duration::from_millis(20);
const SCIM_LATENCY: Duration = Duration::from_millis(5);
const CONCURRENCY: u32 = 32;

fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let built = Instant::now();
    let graph = GraphSim::start(Tenant::synthetic(users, 2024)).expect("Graph simulator");
    graph.with(|s| s.behaviour.latency = GRAPH_LATENCY);
    let scim = ScimSim::start().expect("SCIM simulator");
    scim.with(|s| {
        s.behaviour.latency = SCIM_LATENCY;
        s.behaviour.max_page_size = 1000;
    });
    println!(
        "tenant of {users} users built in {:.1} s; Graph {} ms, SCIM {} ms per request",
        built.elapsed().as_secs_f64(),
        GRAPH_LATENCY.as_millis(),
        SCIM_LATENCY.as_millis()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let url = graph.url();
    let text = format!(
        "[source]\ntenant_id = {}\nclient_id = {}\nsecret = env:BENCH_SECRET\nauthority = {url}\n\
         domain = {url}\npage_size = 999\n[target]\ntype = scim\nurl = {}\npage_size = 1000\n\
         [sync]\nconcurrency = {CONCURRENCY}\ncreate_disabled = true\nstate = state.db\n",
        graph_sim::TENANT_ID,
        graph_sim::CLIENT_ID,
        scim.url(),
    );
    // Two configs on one state file: runs by delta (the default), and runs in full.
    let by_delta = dir.path().join("bench.ini");
    std::fs::write(&by_delta, &text).expect("config");
    let in_full = dir.path().join("full.ini");
    std::fs::write(&in_full, format!("{text}delta = no\n")).expect("config");
    let pages = |size: usize| users.div_ceil(size).max(1) as u32;
    let pull_floor = GRAPH_LATENCY * pages(999);
    let list_floor = SCIM_LATENCY * pages(1000).div_ceil(4);
    let load_floor = SCIM_LATENCY * (users as u32).div_ceil(CONCURRENCY);
    let full_floor = pull_floor.max(list_floor);
    let changed = users / 100;
    // 1% of users is 1,000 PATCHes at concurrency 32.
    let patch_floor = SCIM_LATENCY * (changed as u32).div_ceil(CONCURRENCY);
    let delta_floor = GRAPH_LATENCY * (changed as u32).div_ceil(200).max(1);

    let run = |what: &str, config: &std::path::Path, more: &[&str], floor: Duration| {
        let report = dir.path().join("report.json");
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut command = match std::env::var_os("BENCH_PERF") {
            // A profile of each run, for `perf report -i DIR/<run>.data`.
            Some(dir) => {
                let mut perf = Command::new("perf");
                let file = std::path::Path::new(&dir).join(format!(
                    "{}.data",
                    what.replace([' ', ',', '(', ')', '%'], "_")
                ));
                perf.args([
                    "record",
                    "-F",
                    "999",
                    "-g",
                    "--call-graph",
                    "dwarf,16384",
                    "-o",
                ])
                .arg(file)
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_userload"));
                perf
            }
            None => match std::env::var_os("BENCH_HEAPTRACK") {
                // Where each run's memory goes, for `heaptrack_print DIR/<run>.zst`.
                Some(dir) => {
                    let mut heaptrack = Command::new("heaptrack");
                    heaptrack
                        .arg("-o")
                        .arg(
                            std::path::Path::new(&dir)
                                .join(what.replace([' ', ',', '(', ')', '%'], "_")),
                        )
                        .arg(env!("CARGO_BIN_EXE_userload"));
                    heaptrack
                }
                None => Command::new(env!("CARGO_BIN_EXE_userload")),
            },
        };
        let output = command
            .args(["run", "--config"])
            .arg(config)
            .arg("--report")
            .arg(&report)
            .args(more)
            .env("BENCH_SECRET", graph_sim::SECRET)
            .output()
            .expect("userload runs");
        let wall = started.elapsed();
        let cpu = cpu_seconds().map(|(sims, client)| {
            cpu_before.map_or((sims, client), |(s0, c0)| (sims - s0, client - c0))
        });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{what}: run failed: {stderr}");
        if std::env::var_os("BENCH_LOG").is_some() {
            eprintln!("{stderr}");
        }
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report"))
                .expect("report is JSON");
        println!(
            "{what} [{}]: {:.2} s (reading {:.2} s, writing {:.2} s), floor {:.2} s ({:.2} × \
             floor); requests: Graph {}, target {} ({} writes); peak RSS {} MB; CPU {}; {}; \
             unchanged by seal {}",
            report["mode"].as_str().unwrap_or("?"),
            wall.as_secs_f64(),
            report["seconds"]["read"].as_f64().unwrap_or(0.0),
            report["seconds"]["write"].as_f64().unwrap_or(0.0),
            floor.as_secs_f64(),
            wall.as_secs_f64() / floor.as_secs_f64(),
            report["requests"]["graph"],
            report["requests"]["target"],
            report["requests"]["target_writes"],
            report["peak_memory_mb"],
            cpu.map_or("unknown".into(), |(sims, client)| format!(
                "userload {client:.2} s, simulators {sims:.2} s"
            )),
            report["counts"],
            report["unchanged_by_seal"],
        );
    };
    let change = |from: usize, title: &str| {
        graph.with(|s| {
            for id in s.tenant.ids().into_iter().skip(from).take(changed) {
                s.tenant.update(&id, json!({"jobTitle": title}));
            }
        });
    };
    run("first load", &by_delta, &[], load_floor);
    print_simulators_memory(users, "after the first load");
    if std::env::args().any(|a| a == "delta") {
        run("no change, delta", &by_delta, &[], GRAPH_LATENCY);
        print_simulators_memory(users, "at the end");
        return;
    }
    // The first night in full after the load maps every user and keeps a seal for each;
    // the nights after it find them unchanged by their seals.
    run("no change, full, sealing", &in_full, &[], full_floor);
    // Only the night without changes, in full, three times: the figure large tenants pay.
    if std::env::args().any(|a| a == "full") {
        for _ in 0..3 {
            run("no change, full", &in_full, &[], full_floor);
        }
        print_simulators_memory(users, "at the end");
        return;
    }
    run("no change, full", &in_full, &[], full_floor);
    run("no change, delta", &by_delta, &[], GRAPH_LATENCY);
    change(0, "Changed by delta");
    run(
        "1% changed, delta",
        &by_delta,
        &[],
        delta_floor + patch_floor,
    );
    change(changed, "Changed in full");
    run("1% changed, full", &in_full, &[], full_floor + patch_floor);
    // 1% of the target's users changed by hand: a reconciliation repairs them.
    scim.with(|s| {
        let ids: Vec<String> = s
            .users()
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .skip(2 * changed)
            .take(changed)
            .collect();
        for id in ids {
            s.edit(&id, "title", json!("Changed by hand"));
        }
    });
    run(
        "1% drift, reconciliation",
        &by_delta,
        &["--full"],
        full_floor + patch_floor,
    );
    // One user changed and applied alone: found in Graph, looked up and written.
    let one = graph.with(|s| {
        let id = s.tenant.ids()[users / 2].clone();
        s.tenant.update(&id, json!({"jobTitle": "Changed alone"}));
        id
    });
    run(
        "one user (run --user)",
        &by_delta,
        &["--user", &one],
        GRAPH_LATENCY * 2 + SCIM_LATENCY * 2,
    );
    print_simulators_memory(users, "at the end");
}

/// Prints this process's peak resident memory (the two simulators and the tenant they
/// serve), in all and per user of the tenant, from `VmHWM` in `/proc/self/status`.
fn print_simulators_memory(users: usize, when: &str) {
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
    match peak_kb {
        Some(kb) => println!(
            "simulators' peak memory {when}: {} MB ({:.1} KB per user)",
            kb / 1024,
            kb as f64 / users.max(1) as f64
        ),
        None => println!("simulators' peak memory {when}: unknown"),
    }
}

/// CPU seconds (user and system) of this process (the simulators) and of the child
/// processes waited for (the runs of userload), from `/proc/self/stat`; Linux only.
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<f64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14 to 17, counted in clock ticks of 1/100 s
    // (the kernel's USER_HZ on every Linux platform userload runs on).
    let ticks = |i: usize| fields.get(i - 3).copied().unwrap_or(0.0) / 100.0;
    Some((ticks(14) + ticks(15), ticks(16) + ticks(17)))
}
