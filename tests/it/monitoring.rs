//! Watching unattended runs: the daemon's `/metrics` (checked against the OpenMetrics rules
//! and the run report) and `/healthz`, `run --metrics-file` for node_exporter's textfile
//! collector, and the ping URL told of each run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::Value;

use crate::operations::{Receiver, World};
use crate::util;

/// The samples of an exposition, by name and labels as written, after checking the text
/// against the rules of OpenMetrics (`openmetrics`) or of the Prometheus text format: every
/// line is a `# HELP`, `# TYPE` or `# UNIT` line or a sample of the family last typed, with
/// the suffixes its type allows; no family is typed twice; labels are `name="value"`;
/// values are numbers; a histogram's buckets grow and its `+Inf` bucket is its count; an
/// OpenMetrics text ends with `# EOF` and a line break, and nothing after.
fn parse_exposition(text: &str, openmetrics: bool) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "no final line break");
    let mut lines: Vec<&str> = text.lines().collect();
    if openmetrics {
        assert_eq!(lines.pop(), Some("# EOF"), "no # EOF at the end");
        assert!(!lines.contains(&"# EOF"), "# EOF before the end");
    }
    let mut samples = BTreeMap::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut family: Option<(String, String)> = None;
    let mut buckets: BTreeMap<String, f64> = BTreeMap::new();
    for line in lines {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut words = meta.splitn(3, ' ');
            let (kind, name) = (words.next().unwrap(), words.next().unwrap());
            assert!(valid_name(name), "bad name in {line:?}");
            match kind {
                "TYPE" => {
                    let metric_type = words.next().unwrap().to_owned();
                    let allowed = if openmetrics {
                        &[
                            "counter",
                            "gauge",
                            "histogram",
                            "stateset",
                            "info",
                            "unknown",
                        ][..]
                    } else {
                        &["counter", "gauge", "histogram", "untyped"][..]
                    };
                    assert!(allowed.contains(&metric_type.as_str()), "{line:?}");
                    assert!(
                        typed.insert(name.to_owned(), metric_type.clone()).is_none(),
                        "{name} typed twice"
                    );
                    family = Some((name.to_owned(), metric_type));
                }
                "HELP" | "UNIT" => {}
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect(line)),
            None => (series, ""),
        };
        check_labels(labels, line);
        let (family_name, metric_type) = family.as_ref().expect("a sample before any TYPE");
        let suffix = name
            .strip_prefix(family_name.as_str())
            .unwrap_or_else(|| panic!("{name} is not of the family {family_name}"));
        let suffixes: &[&str] = match (metric_type.as_str(), openmetrics) {
            ("counter", true) => &["_total", "_created"],
            ("histogram", _) => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        assert!(
            suffixes.contains(&suffix),
            "{name}: suffix {suffix:?} in a {metric_type}"
        );
        if suffix == "_bucket" {
            let key = format!("{name}{{{}}}", without_le(labels));
            let before = buckets.insert(key, value).unwrap_or(0.0);
            assert!(value >= before, "buckets shrink at {line:?}");
        }
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    // The +Inf bucket holds every observation.
    for (series, value) in &samples {
        if let Some((name, labels)) = series.split_once("_bucket{")
            && labels.contains("le=\"+Inf\"")
        {
            let rest = without_le(labels.trim_end_matches('}'));
            let count = if rest.is_empty() {
                format!("{name}_count")
            } else {
                format!("{name}_count{{{rest}}}")
            };
            assert_eq!(samples.get(&count), Some(value), "{count}");
        }
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Checks `name="value",…` (values without raw quotes, backslashes or line breaks).
fn check_labels(labels: &str, line: &str) {
    if labels.is_empty() {
        return;
    }
    for pair in labels.split("\",") {
        let (name, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
        assert!(valid_name(name), "bad label name in {line:?}");
        let value = value.trim_end_matches('"');
        assert!(!value.contains(['"', '\n']), "bad label value in {line:?}");
    }
}

/// The labels without `le`, as written.
fn without_le(labels: &str) -> String {
    labels
        .split(',')
        .filter(|l| !l.starts_with("le="))
        .collect::<Vec<_>>()
        .join(",")
}

/// A GET to 127.0.0.1: the status, the content type and the body.
fn get(address: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// A loopback address nobody listens on (just now).
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The metrics a run report's JSON says, as the samples should read.
fn check_against_report(samples: &BTreeMap<String, f64>, report: &Value) {
    let counts = &report["counts"];
    for action in [
        "created",
        "updated",
        "deactivated",
        "reactivated",
        "unchanged",
        "skipped",
    ] {
        let sample = format!("userload_last_run_users{{action=\"{action}\"}}");
        assert_eq!(
            samples[&sample],
            counts[action].as_f64().unwrap(),
            "{sample}"
        );
    }
    assert_eq!(
        samples["userload_last_run_failed_writes"],
        counts["failed"].as_f64().unwrap()
    );
    let len = |v: &Value| v.as_array().map_or(0, Vec::len) as f64;
    assert_eq!(
        samples["userload_last_run_held_deactivations"],
        len(&report["held_deactivations"])
    );
    assert_eq!(
        samples["userload_last_run_unresolved_references"],
        len(&report["references"]["unresolved"])
    );
    let status = report["status"].as_str().unwrap();
    assert_eq!(
        samples[&format!("userload_last_run_status{{status=\"{status}\"}}")],
        1.0
    );
    assert_eq!(
        samples["userload_last_run_exit_code"],
        report["exit_code"].as_f64().unwrap()
    );
    let requests = &report["requests"];
    for (side, requests, retries) in [
        ("graph", &requests["graph"], &requests["graph_retries"]),
        ("target", &requests["target"], &requests["target_retries"]),
    ] {
        let of = |name: &str| samples[&format!("userload_{name}{{side=\"{side}\"}}")];
        assert_eq!(
            of("http_requests_total"),
            requests.as_f64().unwrap(),
            "{side}"
        );
        assert_eq!(
            of("http_retries_total"),
            retries.as_f64().unwrap(),
            "{side}"
        );
        // Every request is one timed attempt at least.
        assert!(of("http_request_duration_seconds_count") >= requests.as_f64().unwrap());
    }
    let started =
        chrono::DateTime::parse_from_rfc3339(report["started"].as_str().unwrap()).unwrap();
    let at = samples["userload_last_run_start_timestamp_seconds"];
    assert!(
        (at - started.timestamp_micros() as f64 / 1e6).abs() < 0.001,
        "{at}"
    );
}

#[test]
fn the_metrics_file_is_replaced_whole_and_the_ping_hears_start_then_success_or_fail() {
    let ping = Receiver::start("/ping/abc-123");
    let w = World::new(
        30,
        "delta = no",
        &format!("[notify]\nping_url = {}\n", ping.url),
    );
    std::fs::create_dir(w.path().join("textfile")).unwrap();
    let run = || {
        w.userload(&[
            "run",
            "--config",
            "userload.ini",
            "--report",
            "r.json",
            "--metrics-file",
            "textfile/userload.prom",
        ])
    };
    let (code, stdout, stderr) = run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let requests = ping.requests();
    let paths: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/ping/abc-123/start", "/ping/abc-123"]);
    assert_eq!(requests[0].1, "the run started\n");
    assert_eq!(requests[1].1, "the run finished\n");
    // Only the file itself is left in the folder: no temporary file beside it.
    let names = || -> Vec<String> {
        std::fs::read_dir(w.path().join("textfile"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(), ["userload.prom"]);
    let text = w.read("textfile/userload.prom");
    let samples = parse_exposition(&text, false);
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert!(report["counts"]["created"].as_i64().unwrap() > 0);
    check_against_report(&samples, &report);
    assert_eq!(samples["userload_runs_total{status=\"ok\"}"], 1.0);

    // A run that fails pings …/fail, and the file then says so.
    w.graph.with(|s| s.behaviour.failing_page = Some(1));
    let (code, _, stderr) = run();
    assert_eq!(code, 2, "{stderr}");
    let requests = ping.requests();
    let paths: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths[2..], ["/ping/abc-123/start", "/ping/abc-123/fail"]);
    assert_eq!(requests[3].1, "the run failed\n");
    assert_eq!(names(), ["userload.prom"]);
    let samples = parse_exposition(&w.read("textfile/userload.prom"), false);
    assert_eq!(samples["userload_last_run_status{status=\"failed\"}"], 1.0);
    assert_eq!(samples["userload_last_run_status{status=\"ok\"}"], 0.0);
    // The ping URL is a secret: no output names it.
    assert!(!stderr.contains("abc-123"), "{stderr}");
}

#[test]
fn a_ping_url_that_does_not_answer_fails_nothing() {
    // Nobody listens there: the pings fail at once and the run goes on.
    let w = World::new(
        10,
        "",
        &format!("[notify]\nping_url = http://{}/ping\n", free_address()),
    );
    let (code, stdout, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("ping:"), "{stderr}");
}

/// Reads `lines` until `count` more lines holding every one of `marks` went by.
fn wait_for(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    marks: &[&str],
    count: usize,
) {
    let mut seen = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if marks.iter().all(|m| line.contains(m)) {
            seen += 1;
            if seen == count {
                return;
            }
        }
    }
    panic!("the daemon ended before {count} lines with {marks:?}");
}

/// Starts `userload daemon` in `w`'s folder with `schedule`, the report in `r.json`; its
/// log lines, and a guard that kills it.
fn daemon(
    w: &World,
    schedule: &[&str],
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStderr>>,
    KillOnDrop,
) {
    let mut args = vec!["daemon", "--config", "userload.ini", "--report", "r.json"];
    args.extend_from_slice(schedule);
    args.extend_from_slice(&["--log-format", "json"]);
    let mut child = util::userload_command(w.path(), &args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines, guard)
}

#[cfg(unix)]
#[test]
fn the_daemon_serves_openmetrics_that_match_the_run_report() {
    let address = free_address();
    let w = World::new(30, "", &format!("[daemon]\nmetrics_address = {address}\n"));
    let (mut child, mut lines, guard) = daemon(&w, &["--every", "1h"]);
    // The first "next run at" comes before the first run, the second after it.
    wait_for(&mut lines, &["next run at"], 2);
    let (status, content_type, text) = get(&address, "/metrics");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let samples = parse_exposition(&text, true);
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert!(report["counts"]["created"].as_i64().unwrap() > 0);
    check_against_report(&samples, &report);
    assert_eq!(samples["userload_runs_total{status=\"ok\"}"], 1.0);
    let (status, content_type, body) = get(&address, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok: the run finished\n"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(get(&address, "/nothing").0, 404);
    drop(guard);
    let _ = child.wait();
}

#[cfg(unix)]
#[test]
fn the_daemon_health_flips_to_503_after_a_failed_run() {
    let address = free_address();
    // Two Graph pages, so that the second can fail.
    let w = World::new(
        45,
        "delta = no",
        &format!("[daemon]\nmetrics_address = {address}\n"),
    );
    let (mut child, mut lines, guard) = daemon(&w, &["--every", "1s"]);
    wait_for(&mut lines, &["next run at"], 2);
    // No run has failed yet.
    let (status, _, body) = get(&address, "/healthz");
    assert_eq!(status, 200, "{body}");
    // From now on every run fails. Once one did, the daemon notes it before it says when
    // the next run is; every run after fails too.
    w.graph.with(|s| s.behaviour.failing_page = Some(1));
    wait_for(&mut lines, &["run finished", "\"failed\""], 1);
    wait_for(&mut lines, &["next run at"], 1);
    let (status, _, body) = get(&address, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "last run failed: the run failed\n");
    let samples = parse_exposition(&get(&address, "/metrics").2, true);
    assert_eq!(samples["userload_last_run_status{status=\"failed\"}"], 1.0);
    assert!(samples["userload_runs_total{status=\"failed\"}"] >= 1.0);
    drop(guard);
    let _ = child.wait();
}

/// The titles of the notices `hook` received, in order.
fn titles(hook: &Receiver) -> Vec<String> {
    hook.bodies()
        .iter()
        .map(|b| b["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[cfg(unix)]
#[test]
fn a_refused_secret_backs_the_daemon_off_tells_it_once_and_then_the_recovery() {
    let address = free_address();
    let hook = Receiver::start("/webhook");
    let w = World::new(
        10,
        "",
        &format!(
            "[notify]\nwebhook = {}\n[daemon]\nmetrics_address = {address}\n",
            hook.url
        ),
    );
    w.graph.with(|s| s.apps[0].secret_expired = true);
    let (mut child, mut lines, guard) = daemon(&w, &["--every", "50ms"]);
    // Each refusal doubles the wait before the next try.
    for wait in ["100ms", "200ms", "400ms"] {
        let line = format!("sign-in refused (secret expired); next try in {wait}, not every 50ms");
        wait_for(&mut lines, &[&line], 1);
    }
    // The third failed run in a row is told once, after its own notice.
    wait_for(&mut lines, &["next run at"], 1);
    let samples = parse_exposition(&get(&address, "/metrics").2, true);
    assert!(
        samples["userload_consecutive_failures"] >= 3.0,
        "{samples:?}"
    );
    assert_eq!(samples["userload_backing_off"], 1.0);
    let (status, _, body) = get(&address, "/healthz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(
            "last run failed: the run failed; backing off: sign-in refused (secret expired), \
             next try in "
        ),
        "{body}"
    );
    let told = titles(&hook);
    assert!(told.len() >= 4, "{told:?}");
    assert!(
        told[..3].iter().all(|t| t.ends_with(": the run failed")),
        "{told:?}"
    );
    assert!(
        told[3].contains(": failing since ") && told[3].ends_with(", 3 runs in a row"),
        "{told:?}"
    );
    let text = hook.bodies()[3]["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("sign-in refused (secret expired); backing off: next try in 400ms"),
        "{text}"
    );

    // A new secret: the next try succeeds, which is told once, and the wait is the schedule's.
    w.graph.with(|s| s.apps[0].secret_expired = false);
    wait_for(&mut lines, &["recovered: a run succeeded after"], 1);
    wait_for(&mut lines, &["next run at"], 1);
    let told = titles(&hook);
    let failing = told.iter().filter(|t| t.contains("failing since")).count();
    let recovered: Vec<&String> = told.iter().filter(|t| t.contains("recovered")).collect();
    assert_eq!(failing, 1, "{told:?}");
    assert_eq!(recovered.len(), 1, "{told:?}");
    assert!(recovered[0].contains("failed runs since"), "{told:?}");
    assert_eq!(told.last(), Some(recovered[0]), "{told:?}");
    let samples = parse_exposition(&get(&address, "/metrics").2, true);
    assert_eq!(samples["userload_consecutive_failures"], 0.0);
    assert_eq!(samples["userload_backing_off"], 0.0);
    assert_eq!(get(&address, "/healthz").0, 200);
    drop(guard);
    let _ = child.wait();
}

#[test]
fn failures_that_may_pass_keep_the_schedule_and_are_summed_up_once() {
    let hook = Receiver::start("/webhook");
    // Two Graph pages, so that the second can fail.
    let w = World::new(45, "", &format!("[notify]\nwebhook = {}\n", hook.url));
    w.graph.with(|s| s.behaviour.failing_page = Some(1));
    let (code, _, stderr) = w.userload(&[
        "daemon",
        "--config",
        "userload.ini",
        "--every",
        "50ms",
        "--runs",
        "5",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!stderr.contains("next try in"), "{stderr}");
    assert!(!stderr.contains("backing off"), "{stderr}");
    let told = titles(&hook);
    // Each failed run as `on` asks, and the summary once, after the third.
    assert_eq!(told.len(), 6, "{told:?}");
    assert!(told[3].contains("failing since"), "{told:?}");
    let failing = told.iter().filter(|t| t.contains("failing since")).count();
    assert_eq!(failing, 1, "{told:?}");
}

/// Kills a process when dropped, so that a failed assertion leaves no daemon behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

#[test]
fn a_metrics_address_in_use_stops_the_daemon_at_start() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let w = World::new(10, "", &format!("[daemon]\nmetrics_address = {address}\n"));
    let (code, stdout, stderr) = w.userload(&[
        "daemon",
        "--config",
        "userload.ini",
        "--every",
        "1h",
        "--runs",
        "1",
    ]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address} (metrics_address)")),
        "{stderr}"
    );
    // Nothing was run.
    assert_eq!(w.status()["runs"].as_array().map_or(0, Vec::len), 0);
    drop(taken);
}

#[test]
fn a_bad_metrics_address_or_ping_url_is_a_config_problem_with_its_line() {
    let w = World::new(
        10,
        "",
        "[notify]\nping_url = ftp://example.com/ping\n[daemon]\nmetrics_address = metrics.example.com:9184\n",
    );
    let (code, stdout, stderr) = w.userload(&["validate", "--config", "userload.ini"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("`metrics.example.com:9184` is not an address to listen on"),
        "{all}"
    );
    assert!(all.contains("`ping_url` is not an http(s) URL"), "{all}");
    // Each names the file and line, and the ping URL (a secret) is not quoted.
    assert!(all.contains("userload.ini:"), "{all}");
    assert!(!all.contains("ftp://example.com/ping"), "{all}");
}
