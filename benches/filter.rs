//! Filter throughput: parse + validate of typical filters and of a 10,000-clause `or` chain,
//! and local evaluation over 100,000 synthetic users. docs/performance.md quotes these figures.
//!
//! Run with `cargo bench --bench filter`.

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use odata::Filter;
use serde_json::{Value, json};

const TYPICAL: &[&str] = &[
    "employeeType in ('Admin', 'Staff', 'Faculty', 'Contingent Workers', 'EmpStudent')",
    "accountEnabled eq true and userType eq 'Member'",
    "assignedLicenses/any(x:x/skuId eq 6fd2c87f-b296-42f0-b197-1e91e994b900)",
    "onPremisesExtensionAttributes/extensionAttribute1 eq 'AssetSync'",
    "accountEnabled eq true and (startsWith(department,'IT') or department eq 'Facilities')",
    "createdDateTime ge 2024-01-01T00:00:00Z and not (jobTitle eq 'Intern')",
    "endsWith(mail,'@contoso.com') and companyName ne null",
    "otherMails/any(m:startsWith(m,'admin')) or proxyAddresses/any(p:p eq 'smtp:a@b.c')",
];

/// Runs `f` repeatedly for at least `min` and returns (iterations, elapsed).
fn measure(min: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < min {
        f();
        n += 1;
    }
    (n, start.elapsed())
}

/// A deterministic synthetic tenant: a mix of departments, types, licences and nulls.
fn users(n: usize) -> Vec<Value> {
    const DEPARTMENTS: [&str; 6] = [
        "IT Operations",
        "Sales",
        "Facilities",
        "HR",
        "it service desk",
        "Finance",
    ];
    const TYPES: [&str; 5] = ["Staff", "Faculty", "Contractor", "Admin", "EmpStudent"];
    (0..n)
        .map(|i| {
            let department = if i % 11 == 0 { Value::Null } else { DEPARTMENTS[i % 6].into() };
            json!({
                "id": format!("{i:08x}-0000-4000-8000-000000000000"),
                "userPrincipalName": format!("user{i}@contoso.com"),
                "displayName": format!("User {i}"),
                "mail": format!("user{i}@contoso.com"),
                "accountEnabled": i % 7 != 0,
                "userType": if i % 13 == 0 { "Guest" } else { "Member" },
                "employeeType": TYPES[i % 5],
                "department": department,
                "jobTitle": if i % 17 == 0 { "Intern" } else { "Engineer" },
                "companyName": if i % 3 == 0 { Value::Null } else { "Contoso".into() },
                "createdDateTime": format!("20{:02}-0{}-15T08:00:00Z", 18 + i % 8, 1 + i % 9),
                "otherMails": [format!("alt{i}@example.com")],
                "proxyAddresses": [format!("SMTP:user{i}@contoso.com")],
                "assignedLicenses": if i % 2 == 0 {
                    json!([{"skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900", "disabledPlans": []}])
                } else {
                    json!([])
                },
                "onPremisesExtensionAttributes": {"extensionAttribute1": if i % 4 == 0 { "AssetSync" } else { "" }},
            })
        })
        .collect()
}

fn main() {
    let min = Duration::from_millis(1500);

    println!("parse + validate");
    let bytes: usize = TYPICAL.iter().map(|f| f.len()).sum();
    let (n, elapsed) = measure(min, || {
        for f in TYPICAL {
            black_box(Filter::compile(black_box(f)).ok());
        }
    });
    let per_sec = (n as f64 * TYPICAL.len() as f64) / elapsed.as_secs_f64();
    let mb_per_sec = n as f64 * bytes as f64 / elapsed.as_secs_f64() / 1e6;
    println!("  typical filters        {per_sec:>12.0} filters/s  {mb_per_sec:>7.1} MB/s");

    for clauses in [1_000, 10_000] {
        let chain = (0..clauses)
            .map(|i| format!("department eq 'Dept {i}'"))
            .collect::<Vec<_>>()
            .join(" or ");
        let (n, elapsed) = measure(min, || {
            black_box(Filter::compile(black_box(&chain)).ok());
        });
        let ms = elapsed.as_secs_f64() * 1e3 / n as f64;
        let mb_per_sec = n as f64 * chain.len() as f64 / elapsed.as_secs_f64() / 1e6;
        println!(
            "  {clauses:>6}-clause or chain  {ms:>9.2} ms each  {mb_per_sec:>7.1} MB/s ({} KB)",
            chain.len() / 1024
        );
    }

    println!("local evaluation over 100,000 users");
    let tenant = users(100_000);
    for f in TYPICAL {
        let filter = Filter::compile(f)
            .ok()
            .flatten()
            .expect("typical filters are valid");
        let mut matched = 0;
        let (n, elapsed) = measure(min, || {
            matched = tenant.iter().filter(|u| filter.matches(u)).count();
        });
        let users_per_sec = n as f64 * tenant.len() as f64 / elapsed.as_secs_f64();
        let ms = elapsed.as_secs_f64() * 1e3 / n as f64;
        println!(
            "  {:>6.1} M users/s  {ms:>6.1} ms per 100k  {matched:>6} match  {}",
            users_per_sec / 1e6,
            truncate(f, 60)
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
