//! Mapping throughput: 100,000 synthetic Graph users through the shipped SCIM mapping, one
//! core, compiled once. Mapped as a run maps them (a Graph page parsed, then its users
//! mapped), and all held parsed at once (each user read from main memory). docs/performance.md
//! quotes the users/second figures.
//!
//! Run with `cargo bench --bench mapping`.

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use userload::diag::SourceText;
use userload::mapping::{self, Context, Options};

/// A deterministic synthetic tenant: every property the SCIM mapping reads, with gaps,
/// disabled users, guests and non-ASCII names mixed in.
fn users(n: usize) -> Vec<Value> {
    const DEPARTMENTS: [&str; 5] = ["IT Operations", "Sales", "Facilities", "HR", "Finance"];
    const GIVEN: [&str; 4] = ["Ann", "José", "Zoë", "Łucja"];
    (0..n)
        .map(|i| {
            let given = GIVEN[i % 4];
            let upn = if i % 13 == 0 {
                format!("guest{i}_fabrikam.com#EXT#@contoso.onmicrosoft.com")
            } else {
                format!("user{i}@contoso.com")
            };
            json!({
                "id": format!("{i:08x}-0000-4000-8000-000000000000"),
                "userPrincipalName": upn,
                "accountEnabled": i % 7 != 0,
                "displayName": format!("{given} User{i}"),
                "givenName": given,
                "surname": format!("User{i}"),
                "jobTitle": if i % 5 == 0 { Value::Null } else { "Engineer".into() },
                "preferredLanguage": "en-US",
                "userType": if i % 13 == 0 { "Guest" } else { "Member" },
                "mail": format!("user{i}@contoso.com"),
                "businessPhones": [format!("+1 425 555 {:04}", i % 10_000)],
                "mobilePhone": if i % 3 == 0 { Value::Null } else { format!("+1 206 555 {:04}", i % 10_000).into() },
                "faxNumber": Value::Null,
                "streetAddress": "1 Main St",
                "city": "Redmond",
                "state": "WA",
                "postalCode": "98052",
                "country": "US",
                "employeeId": format!("E{i}"),
                "department": DEPARTMENTS[i % 5],
                "companyName": "Contoso",
                "employeeOrgData": {"division": "Cloud", "costCenter": format!("CC-{}", i % 100)},
                "manager": {"id": format!("{:08x}-0000-4000-8000-000000000000", i / 10)},
            })
        })
        .collect()
}

fn main() {
    let text = mapping::shipped("scim").expect("the SCIM mapping is shipped");
    let source = SourceText::new("mappings/scim.toml", text);
    let compiled = Instant::now();
    let scim = match mapping::compile_source(&source, Options::default()) {
        Ok(m) => m,
        Err(problems) => panic!("{}", userload::diag::render(&problems, false)),
    };
    let compile_time = compiled.elapsed();
    let tenant = users(100_000);
    let settings = BTreeMap::new();
    let ctx = Context {
        settings: &settings,
        sync_time: "2024-05-01T06:00:00Z",
    };
    let mapped = tenant.iter().filter(|u| scim.map(u, &ctx).is_ok()).count();
    println!(
        "mappings/scim.toml ({} fields), compiled in {:.2} ms; {mapped} of {} users mapped",
        scim.fields().len(),
        compile_time.as_secs_f64() * 1e3,
        tenant.len()
    );
    // As a run maps them: Graph pages of 999 users, each parsed and then mapped while it is
    // fresh in the caches. Only the mapping is timed here.
    let pages: Vec<String> = tenant
        .chunks(999)
        .map(|page| serde_json::to_string(page).expect("users serialize"))
        .collect();
    let mut map_time = Duration::ZERO;
    let mut parse_time = Duration::ZERO;
    let mut mapped_users = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for page in &pages {
            // Wall clock: the thread's CPU time is kept only to the scheduler tick.
            let parsed = Instant::now();
            let users: Vec<Value> = serde_json::from_str(page).expect("a page parses");
            let mapping = Instant::now();
            for user in &users {
                black_box(scim.map(black_box(user), &ctx).is_ok());
            }
            parse_time += mapping - parsed;
            map_time += mapping.elapsed();
            mapped_users += users.len();
        }
    }
    report_time("mapping, page by page", mapped_users, map_time);
    report_time("parsing the pages, for scale", mapped_users, parse_time);
    // Every user once per pass, all 100,000 parsed up front: each user is read from main
    // memory, a harder case than a run meets.
    let all: Vec<&Value> = tenant.iter().collect();
    report(
        "100,000 users held parsed",
        &measure(&all, |u| scim.map(u, &ctx).is_ok()),
    );
}

fn report_time(what: &str, users: usize, time: Duration) {
    println!(
        "  {what:<30} {:>9.0} users/s on one core ({:.0} ms per 100,000 users)",
        users as f64 / time.as_secs_f64(),
        time.as_secs_f64() * 1e3 * 100_000.0 / users as f64,
    );
}

/// Timed passes over `users` for at least three seconds, after one warm-up pass:
/// (users mapped, CPU time, wall time).
fn measure(users: &[&Value], mut map: impl FnMut(&Value) -> bool) -> (usize, Duration, Duration) {
    for user in users {
        black_box(map(user));
    }
    let start = Instant::now();
    let cpu_start = cpu_time();
    let mut passes = 0;
    while start.elapsed() < Duration::from_secs(3) {
        for user in users {
            black_box(map(black_box(user)));
        }
        passes += 1;
    }
    let wall = start.elapsed();
    // On a busy machine the wall clock counts time spent waiting for a core; the thread's
    // own CPU time does not.
    let cpu = match (cpu_start, cpu_time()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => wall,
    };
    (passes * users.len(), cpu, wall)
}

fn report(what: &str, (users, cpu, wall): &(usize, Duration, Duration)) {
    let per_100k = |d: &Duration| d.as_secs_f64() * 1e3 * 100_000.0 / *users as f64;
    println!(
        "  {what:<30} {:>9.0} users/s on one core ({:.0} ms of CPU per 100,000 users, {:.0} ms wall)",
        *users as f64 / cpu.as_secs_f64(),
        per_100k(cpu),
        per_100k(wall),
    );
}

/// CPU time this thread has run (Linux), from the scheduler's statistics.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}
