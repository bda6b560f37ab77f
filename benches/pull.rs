//! How fast `userload pull` reads a large tenant from Graph, and how much memory it needs.
//!
//! The Graph simulator serves 100,000 users and adds 20 ms to every request, like a distant
//! Graph region. Pages arrive one after another (each link is only known from the page before
//! it), so the floor is pages × latency; the pull should come within 15% of it. The real
//! binary runs as a child process and reports its own peak memory (the simulator's is not
//! counted). Simulator and client share this machine's cores, which a real pull does not.
//!
//! Run with `cargo bench --bench pull` (`-- USERS LATENCY_MS RUNS` to change the defaults;
//! `BENCH_SELECT=a,b,c` to read other properties than the 27 common ones below, or
//! `BENCH_SELECT=` (empty) for what the shipped SCIM mapping reads, manager included).

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use sim::graph::{self as graph_sim, GraphSim};
use sim::tenant::Tenant;

/// Names, mail, UPN, job, department, employee data, phones, location, extension attributes.
const COMMON: &[&str] = &[
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "createdDateTime",
    "department",
    "displayName",
    "employeeHireDate",
    "employeeId",
    "employeeOrgData",
    "employeeType",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesExtensionAttributes",
    "postalCode",
    "preferredLanguage",
    "state",
    "streetAddress",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let number =
        |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let users = number(0, 100_000) as usize;
    let latency = Duration::from_millis(number(1, 20));
    let runs = number(2, 3);

    let built = Instant::now();
    let graph = GraphSim::start(Tenant::synthetic(users, 2024)).expect("simulator");
    graph.with(|s| s.behaviour.latency = latency);
    println!(
        "tenant of {users} users built in {:.1} s; {} ms latency per request",
        built.elapsed().as_secs_f64(),
        latency.as_millis()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bench.ini");
    let url = graph.url();
    std::fs::write(
        &config,
        format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = env:BENCH_SECRET\nauthority = {url}\n\
             domain = {url}\npage_size = 999\n[target]\ntype = scim\nurl = http://127.0.0.1:9/v2\n\
             token = env:BENCH_SECRET\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID
        ),
    )
    .expect("config");
    let select: Vec<String> = match std::env::var("BENCH_SELECT") {
        Ok(s) if s.is_empty() => Vec::new(),
        Ok(s) => vec!["--select".to_owned(), s],
        Err(_) => vec!["--select".to_owned(), COMMON.join(",")],
    };
    let pages = users.div_ceil(999).max(1);
    let floor = latency * pages as u32;
    for run in 1..=runs {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_userload"))
            .args(["pull", "--config"])
            .arg(&config)
            .args(["--out", "/dev/null"])
            .args(&select)
            .env("BENCH_SECRET", graph_sim::SECRET)
            .output()
            .expect("userload runs");
        let wall = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "pull failed: {stderr}");
        let peak = stderr
            .split("peak memory ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("?");
        println!(
            "run {run}: {users} users in {pages} pages: {:.3} s, floor {:.3} s ({:+.1}%), peak RSS {peak} MB",
            wall.as_secs_f64(),
            floor.as_secs_f64(),
            (wall.as_secs_f64() / floor.as_secs_f64() - 1.0) * 100.0,
        );
    }
}
