//! Pacing the requests to the target: the forms of `rate_limit`, a Snipe-IT (Laravel) and
//! a Freshservice-style limit met and waited out by a whole run, and the time `plan`
//! estimates for the writes.

use std::time::Duration;

use serde_json::Value;
use sim::server::Fault;
use sim::throttle::{Style, Throttle};
use userload::config;
use userload::diag::{Problem, render};
use userload::http::Rate;

use crate::util::{SnipeItWorld, write};

const SOURCE_TOML: &str = "[source]\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\nsecret = \"s\"\n[target]\ntype = \"scim\"\nurl = \"https://a.example.com\"\n";
const SOURCE: &str = "[source]\ntenant_id = contoso.onmicrosoft.com\nclient_id = 11111111-2222-3333-4444-555555555555\nsecret = s\n[target]\ntype = scim\nurl = https://a.example.com\n";

/// The `rate_limit` a config with this `[sync]` line loads with, or its problems.
fn rate_limit(file: &str, line: &str) -> Result<Option<Rate>, Vec<Problem>> {
    let dir = tempfile::tempdir().unwrap();
    let text = if file.ends_with(".toml") {
        SOURCE_TOML
    } else {
        SOURCE
    };
    let path = write(dir.path(), file, &format!("{text}\n[sync]\n{line}\n"));
    match config::load(&path) {
        Ok(loaded) => Ok(loaded.config.target.rate_limit),
        Err(config::ConfigError::Invalid { problems, .. }) => Err(problems),
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn rate_limit_is_per_second_or_per_minute_and_a_plain_number_per_second() {
    for (file, line, rate) in [
        ("c.ini", "rate_limit = 20", Rate::per_second(20)),
        ("c.ini", "rate_limit = 20/s", Rate::per_second(20)),
        ("c.ini", "rate_limit = 600/min", Rate::per_minute(600)),
        ("c.toml", "rate_limit = 20", Rate::per_second(20)),
        ("c.toml", "rate_limit = \"120/min\"", Rate::per_minute(120)),
    ] {
        assert_eq!(
            rate_limit(file, line).unwrap(),
            Some(rate),
            "{file}: {line}"
        );
    }
    assert_eq!(rate_limit("c.ini", "").unwrap(), None);
}

#[test]
fn a_rate_limit_that_is_not_one_is_shown_with_a_caret() {
    for (file, line) in [
        ("c.ini", "rate_limit = fast"),
        ("c.ini", "rate_limit = 0/min"),
        ("c.ini", "rate_limit = 10/h"),
        ("c.ini", "rate_limit = 20000"),
        ("c.toml", "rate_limit = true"),
    ] {
        let problems = rate_limit(file, line).unwrap_err();
        assert_eq!(problems.len(), 1, "{line}: {problems:?}");
        let shown = render(&problems, false);
        assert!(
            shown.contains("`rate_limit` must be requests per second or per minute"),
            "{shown}"
        );
        assert!(shown.contains(file) && shown.contains('─'), "{shown}");
        assert!(shown.contains("120/min"), "{shown}");
        // The value is marked, on the key's line (the last of the file).
        let line = SOURCE.lines().count() + 3;
        assert_eq!(problems[0].line_col(), (line, 14), "{shown}");
    }
}

/// A run into a Snipe-IT simulator limited to 5 requests a second (windows of 1 s), with
/// `rate_limit` at ten times that, and two requests answered 429 whatever the pace: every
/// user written, none failed, and the report counts each 429 the simulator answered.
fn run_into_a_limit(style: Style) {
    let world = SnipeItWorld::new(8, 41, "", "concurrency = 8\nrate_limit = 50/s");
    world.snipe.with(|s| {
        s.throttle = Throttle::per_minute(5)
            .window(Duration::from_secs(1))
            .style(style);
        s.traffic.faults.insert(3, Fault::Throttle(0.2));
        s.traffic.faults.insert(4, Fault::Throttle(0.2));
    });
    let (code, out, err) = world.userload(&["run", "--report", "report.json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(world.dir.path().join("report.json")).unwrap(),
    )
    .unwrap();
    let created = report["counts"]["created"].as_u64().unwrap();
    assert_eq!(report["failures"], Value::Array(vec![]), "{report:#}");
    assert_eq!(created, report["sent"]["create"].as_u64().unwrap());
    assert!(created >= 8, "{report:#}");
    let users = world.snipe.with(|s| s.users.len()) as u64;
    assert_eq!(users, created);
    let refused = world.snipe.with(|s| {
        let over = s.traffic.log.iter().filter(|l| l.status == 429).count() as u64;
        assert!(over >= s.throttle.refused + 2);
        over
    });
    assert_eq!(
        report["requests"]["target_throttled"], refused,
        "{report:#}"
    );
    assert!(
        out.contains(&format!(
            "answered 429 (too many requests): Graph 0, target {refused}"
        )),
        "{out}"
    );
}

#[test]
fn a_run_keeps_to_snipeits_limit_and_waits_out_its_429s() {
    run_into_a_limit(Style::Laravel);
}

#[test]
fn a_run_keeps_to_a_limit_told_in_freshservices_headers() {
    run_into_a_limit(Style::Freshservice);
}

#[test]
fn plan_estimates_the_writes_time_at_the_limit() {
    let world = SnipeItWorld::new(30, 7, "", "rate_limit = 600/min");
    let (code, _, err) = world.userload(&["plan"]);
    assert_eq!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains(" writes ≈ "))
        .unwrap_or_else(|| panic!("no estimate in {err}"));
    assert!(line.ends_with(" at 600 requests/min"), "{line}");
    let (code, out, err) = world.userload(&["plan", "--json"]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let estimate = &plan["estimate"];
    let writes = estimate["writes"].as_u64().unwrap();
    assert!(writes >= 10, "{plan:#}");
    assert!(line.starts_with(&format!("{writes} writes")), "{line}");
    assert_eq!(estimate["seconds"], (writes as f64 / 10.0).round());
    assert_eq!(estimate["rate"]["requests"], 600);
    assert_eq!(estimate["rate"]["per_seconds"], 60);
}

#[test]
fn plan_estimates_at_snipeits_default_without_a_rate_limit() {
    let world = SnipeItWorld::new(3, 7, "", "");
    world.snipe.with(|s| s.throttle = Throttle::snipeit());
    let (code, _, err) = world.userload(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(" at 120 requests/min"), "{err}");
}
