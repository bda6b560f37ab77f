//! Running userload as an admin does: the demo, `init`, the daemon and `status`, logs that
//! never show a secret, webhook notices, and the run report with its CSV of changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sim::graph::{self as graph_sim, GraphSim};
use sim::scim::ScimSim;
use sim::tenant::Tenant;

use crate::util;

const SCIM_TOKEN: &str = "scim-token-for-the-leak-test-93e1c7";

/// A Graph simulator with `users` users and a SCIM simulator demanding [`SCIM_TOKEN`], and a
/// config for them in a temp folder with `extra` appended.
pub(crate) struct World {
    pub(crate) graph: GraphSim,
    pub(crate) scim: ScimSim,
    dir: tempfile::TempDir,
}

impl World {
    pub(crate) fn new(users: usize, sync_lines: &str, extra: &str) -> World {
        let graph = GraphSim::start(Tenant::synthetic(users, 31)).unwrap();
        let scim = ScimSim::start().unwrap();
        scim.with(|s| s.behaviour.token = Some(SCIM_TOKEN.to_owned()));
        let dir = tempfile::tempdir().unwrap();
        util::write(dir.path(), "secret.txt", graph_sim::SECRET);
        util::write(dir.path(), "token.txt", SCIM_TOKEN);
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = file:secret.txt\n\
             authority = {url}\ndomain = {url}\npage_size = 20\nmax_attempts = 2\n\
             [target]\ntype = scim\nurl = {}\ntoken = file:token.txt\n\
             [sync]\nstate = state.db\n{sync_lines}\n{extra}\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            scim.url(),
        );
        util::write(dir.path(), "userload.ini", &text);
        World { graph, scim, dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn userload(&self, args: &[&str]) -> (i32, String, String) {
        util::outcome(&util::userload(self.path(), args))
    }

    /// `userload run` with its report in `r.json` and its changes in `c.csv`.
    fn run_reported(&self) -> (i32, String, String) {
        self.userload(&[
            "run",
            "--config",
            "userload.ini",
            "--report",
            "r.json",
            "--changes",
            "c.csv",
        ])
    }

    pub(crate) fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap()
    }

    pub(crate) fn status(&self) -> Value {
        let (_, stdout, stderr) = self.userload(&["status", "--config", "userload.ini", "--json"]);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
    }
}

/// A loopback webhook: answers 200 to every POST and keeps the bodies, and each request's
/// path with its body as text.
pub(crate) struct Receiver {
    pub(crate) url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    pub(crate) fn start(path: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        let kept_requests = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                let mut target = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if target.is_empty() {
                        target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(value) = lower.strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                // Kept before the answer, so it is there once the sender has its answer.
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                kept_requests
                    .lock()
                    .unwrap()
                    .push((target, String::from_utf8_lossy(&body).into_owned()));
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Receiver {
            url,
            bodies,
            requests,
        }
    }

    /// Each request's path (and query) with its body, in the order they came.
    pub(crate) fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }

    pub(crate) fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

#[test]
fn the_demo_plans_and_runs_two_nights_through_the_real_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = util::outcome(&util::userload(
        dir.path(),
        &["demo", "--users", "300", "--keep", "kept"],
    ));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for expected in [
        "+ create",
        "~ update",
        "- deactivate",
        "25 new hires",
        "run  started",
    ] {
        assert!(stdout.contains(expected), "no `{expected}` in:\n{stdout}");
    }
    let kept = dir.path().join("kept");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join("report-2.json")).unwrap())
            .unwrap();
    assert_eq!(report["status"], "ok");
    assert_eq!(report["counts"]["created"], 25);
    assert!(
        report["counts"]["deactivated"].as_u64().unwrap() >= 8,
        "{report:#}"
    );
    assert!(
        report["counts"]["updated"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    let csv = std::fs::read_to_string(kept.join("changes-2.csv")).unwrap();
    assert!(csv.starts_with("action,user,entra_id,target_id,field,from,to,result,error\n"));
    assert!(
        csv.lines()
            .any(|l| l.starts_with("deactivate,") && l.contains(",true,false,done,")),
        "{csv}"
    );
    // A second demo into the same folder refuses rather than mixing state files.
    let (code, _, stderr) = util::outcome(&util::userload(dir.path(), &["demo", "--keep", "kept"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("already holds a userload.ini"), "{stderr}");
}

#[test]
fn init_writes_configs_that_validate_and_never_overwrites() {
    for format in ["ini", "toml"] {
        for target in ["scim", "snipeit", "glpi", "freshservice", "oomnitza"] {
            let dir = tempfile::tempdir().unwrap();
            let args = [
                "init",
                "--format",
                format,
                "--target",
                target,
                "--tenant-id",
                "contoso.onmicrosoft.com",
                "--client-id",
                "11111111-2222-3333-4444-555555555555",
                "--url",
                "https://assets.example.com/api",
            ];
            let (code, stdout, stderr) = util::outcome(&util::userload(dir.path(), &args));
            assert_eq!(code, 0, "{format} {target}: {stdout}\n{stderr}");
            let config = format!("userload.{format}");
            let mapping = dir.path().join("mappings").join(format!("{target}.toml"));
            assert_eq!(
                std::fs::read_to_string(&mapping).unwrap(),
                userload::mapping::shipped(target).unwrap()
            );
            let output = util::userload_command(dir.path(), &["validate", "--config", &config])
                .env("USERLOAD_SECRET", "not-a-real-secret")
                .env("ASSET_TOKEN", "not-a-real-token")
                .output()
                .unwrap();
            let (code, stdout, stderr) = util::outcome(&output);
            assert_eq!(code, 0, "{format} {target}: {stdout}\n{stderr}");
            let text = std::fs::read_to_string(dir.path().join(&config)).unwrap();
            assert!(text.contains("https://assets.example.com/api"), "{text}");
            // Never overwritten: the second init writes nothing and says why.
            std::fs::write(&mapping, "# edited by the admin\n").unwrap();
            let (code, _, stderr) = util::outcome(&util::userload(dir.path(), &args));
            assert_eq!(code, 2);
            assert!(stderr.contains("never overwrites"), "{stderr}");
            assert_eq!(
                std::fs::read_to_string(&mapping).unwrap(),
                "# edited by the admin\n"
            );
            assert_eq!(
                std::fs::read_to_string(dir.path().join(&config)).unwrap(),
                text
            );
        }
    }
}

#[test]
fn the_daemon_makes_two_scheduled_runs_one_after_the_other() {
    let w = World::new(40, "concurrency = 1", "");
    // Each run takes longer than the interval, so a daemon that overlapped runs would.
    w.scim
        .with(|s| s.behaviour.latency = std::time::Duration::from_millis(30));
    let (code, stdout, stderr) = w.userload(&[
        "daemon",
        "--config",
        "userload.ini",
        "--every",
        "1s",
        "--runs",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // 40 writes of at least 30 ms each outlast the 1 s slot after the start: it is skipped
    // (on a busy machine the run may outlast more than one slot; all of them are skipped).
    let skipped = stderr
        .split(" scheduled run(s) skipped")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(skipped.is_some_and(|n| n >= 1), "{stderr}");
    let status = w.status();
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{status:#}");
    let (second, first) = (&runs[0], &runs[1]);
    for run in runs {
        assert_eq!(run["status"], "ok", "{status:#}");
        assert_eq!(run["exit_code"], 0);
    }
    // The second started once the first had finished, and saw all its writes.
    assert!(
        second["started"].as_str() >= first["finished"].as_str(),
        "{status:#}"
    );
    let created = first["counts"]["created"].as_i64().unwrap();
    assert!(created > 0);
    assert_eq!(second["counts"]["created"], 0, "{status:#}");
    assert_eq!(second["counts"]["unchanged"], created, "{status:#}");
    assert_eq!(status["running"], false);
    assert_eq!(status["owned"], created);
    // The text form shows the same history, and its exit code is the last run's.
    let (code, stdout, _) = w.userload(&["status", "--config", "userload.ini"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" ok ")).count(),
        2,
        "{stdout}"
    );
}

/// Reads `child`'s stderr until `count` lines holding `mark` went by, sends it SIGTERM, and
/// returns how it ended with the lines it wrote after.
#[cfg(unix)]
fn sigterm_after(
    child: &mut std::process::Child,
    mark: &str,
    count: usize,
) -> (std::process::ExitStatus, Vec<String>) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = 0;
    for line in lines.by_ref() {
        if line.unwrap().contains(mark) {
            seen += 1;
            if seen == count {
                break;
            }
        }
    }
    assert_eq!(
        seen, count,
        "the process ended before {count} lines with {mark:?}"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    (child.wait().unwrap(), rest)
}

#[cfg(unix)]
#[test]
fn the_daemon_stops_at_once_on_sigterm_while_it_waits() {
    let w = World::new(20, "", "");
    let mut child = util::userload_command(
        w.path(),
        &[
            "daemon",
            "--config",
            "userload.ini",
            "--every",
            "1h",
            "--log-format",
            "json",
        ],
    )
    .stderr(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // A daemon that ignored SIGTERM would hang the test: it is killed after a minute, and
    // the exit code asserted below is then not 0.
    let pid = child.id().to_string();
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if watchdog
            .recv_timeout(std::time::Duration::from_secs(60))
            .is_err()
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
        }
    });
    // The first run is made at start; then the daemon says when the next is.
    let (status, rest) = sigterm_after(&mut child, "next run at", 2);
    let _ = done.send(());
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("daemon stopped")),
        "{rest:?}"
    );
    let runs = w.status()["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "ok");
}

#[test]
fn no_secret_or_token_appears_in_any_output_at_trace_level() {
    let hook = Receiver::start("/hooks/T0SECRET/B0SECRET/webhook-secret-part-4f2a");
    let ping = Receiver::start("/ping/ping-secret-part-8c1d");
    let w = World::new(
        45,
        "",
        &format!(
            "[notify]\nwebhook = {}\non = ok, failed\nping_url = {}\n",
            hook.url, ping.url
        ),
    );
    let mut outputs = Vec::new();
    for format in ["json", "text"] {
        let log = format!("{format}.log");
        let output = util::userload_command(
            w.path(),
            &[
                "run",
                "--config",
                "userload.ini",
                "--report",
                "report.json",
                "--changes",
                "changes.csv",
                "--metrics-file",
                "metrics.prom",
                "--log-level",
                "trace",
                "--log-format",
                format,
                "--log-file",
                &log,
            ],
        )
        .env("USERLOAD_LOG", "trace")
        .output()
        .unwrap();
        let (code, stdout, stderr) = util::outcome(&output);
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        outputs.extend([
            stdout,
            stderr,
            w.read(&log),
            w.read("report.json"),
            w.read("changes.csv"),
            w.read("metrics.prom"),
        ]);
        // The tenant changes between the two runs, so the second writes too.
        w.graph.with(|s| {
            let id = s.tenant.ids()[5].clone();
            s.tenant
                .update(&id, serde_json::json!({"jobTitle": "Renamed Title"}));
        });
    }
    // Each run logged its requests, at trace level, and the webhook heard of each.
    assert!(outputs[2].contains("target request"), "{}", outputs[2]);
    assert!(outputs[2].contains("Graph GET"), "{}", outputs[2]);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2);
    outputs.extend(bodies.iter().map(Value::to_string));
    // The ping URL heard each run start and end.
    let pings = ping.requests();
    assert_eq!(pings.len(), 4, "{pings:?}");
    outputs.extend(pings.into_iter().map(|(_, body)| body));
    let mut secrets = vec![
        graph_sim::SECRET.to_owned(),
        SCIM_TOKEN.to_owned(),
        "webhook-secret-part-4f2a".to_owned(),
        "ping-secret-part-8c1d".to_owned(),
    ];
    let tokens = w.graph.with(|s| s.issued_tokens());
    assert!(!tokens.is_empty());
    for token in tokens {
        // The whole token, and its signature part alone.
        secrets.push(token.rsplit('.').next().unwrap().to_owned());
        secrets.push(token);
    }
    for (i, output) in outputs.iter().enumerate() {
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "output {i} holds a secret:\n{output}"
            );
        }
    }
}

#[test]
fn the_webhook_hears_of_a_failing_run_and_not_of_a_good_one() {
    let hook = Receiver::start("/webhook");
    let w = World::new(
        45,
        "delta = no",
        &format!("[notify]\nwebhook = {}\n", hook.url),
    );
    let (code, stdout, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // By default a good run is not sent; the post is made before the process exits.
    assert!(hook.bodies().is_empty());
    w.graph.with(|s| s.behaviour.failing_page = Some(1));
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 2, "{stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let text = bodies[0]["text"].as_str().unwrap();
    let title = bodies[0]["title"].as_str().unwrap();
    assert!(title.contains("the run failed"), "{title}");
    assert!(text.contains("reading users from Graph failed"), "{text}");
    // The report of a run that could not run says why, with Graph's request-id.
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["exit_code"], 2);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Graph"),
        "{report:#}"
    );
}

#[test]
fn a_held_deactivation_is_sent_as_limited() {
    let hook = Receiver::start("/webhook");
    let w = World::new(
        45,
        "max_deactivations = 1",
        &format!("[notify]\nwebhook = {}\n", hook.url),
    );
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stderr}");
    w.graph.with(|s| {
        let ids: Vec<String> = s
            .tenant
            .users()
            .filter(|u| u["accountEnabled"] == true)
            .filter_map(|u| u["id"].as_str().map(str::to_owned))
            .take(3)
            .collect();
        for id in ids {
            s.tenant.set_enabled(&id, false);
        }
    });
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 1, "{stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(
        bodies[0]["title"].as_str().unwrap().contains("held back"),
        "{bodies:?}"
    );
    let csv = w.read("c.csv");
    assert_eq!(
        csv.lines().filter(|l| l.ends_with(",held,")).count(),
        3,
        "{csv}"
    );
}

#[test]
fn a_disabled_source_pauses_plans_and_runs_without_a_request() {
    let w = World::new(20, "", "");
    let ini = w
        .read("userload.ini")
        .replace("[target]", "enable = false\n[target]");
    util::write(w.path(), "userload.ini", &ini);
    for command in ["plan", "run"] {
        let (code, _, stderr) = w.userload(&[command, "--config", "userload.ini"]);
        assert_eq!(code, 0, "{command}: {stderr}");
        assert!(stderr.contains("`enable = false`"), "{command}: {stderr}");
    }
    assert!(w.graph.with(|s| s.issued_tokens().is_empty()));
    assert_eq!(w.scim.with(|s| s.len()), 0);
    assert!(!w.path().join("state.db").exists());
}

#[test]
fn a_target_that_cannot_be_set_up_is_reported_notified_and_clears_the_csv() {
    let hook = Receiver::start("/webhook");
    let w = World::new(20, "", &format!("[notify]\nwebhook = {}\n", hook.url));
    let ini = w.read("userload.ini").replace(
        "token = file:token.txt",
        "token = env:USERLOAD_TEST_TOKEN_NEVER_SET",
    );
    util::write(w.path(), "userload.ini", &ini);
    util::write(w.path(), "c.csv", "last night's rows\n");
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("USERLOAD_TEST_TOKEN_NEVER_SET"), "{stderr}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let text = bodies[0]["text"].as_str().unwrap();
    assert!(text.contains("the target could not be set up"), "{text}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("USERLOAD_TEST_TOKEN_NEVER_SET"),
        "{report:#}"
    );
    assert_eq!(w.read("c.csv").lines().count(), 1);
    assert!(w.graph.with(|s| s.issued_tokens().is_empty()));
}

#[test]
fn a_refused_run_lists_no_changes_and_sends_nothing() {
    let w = World::new(20, "delta = no", "");
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stderr}");
    // Everyone vanishes from Graph: the guard refuses to deactivate the whole target.
    w.graph.with(|s| {
        for id in s.tenant.ids() {
            s.tenant.hard_delete(&id);
        }
    });
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("Graph returned no users"), "{stderr}");
    assert_eq!(w.read("c.csv").lines().count(), 1, "{}", w.read("c.csv"));
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "refused");
    assert_eq!(report["sent"]["deactivate"], 0, "{report:#}");
    assert_eq!(report["requests"]["target_writes"], 0, "{report:#}");
}

#[test]
fn a_run_stopped_by_refused_credentials_does_not_stop_the_daemon() {
    let w = World::new(20, "concurrency = 1", "");
    // The listing is request 1; the first create is answered 401, which stops that run.
    w.scim.with(|s| {
        s.behaviour
            .faults
            .insert(2, sim::scim::Fault::ServerError(401, None));
    });
    let (code, stdout, stderr) = w.userload(&[
        "daemon",
        "--config",
        "userload.ini",
        "--every",
        "1s",
        "--runs",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Refused credentials do not pass by themselves: the next try waits twice as long.
    assert!(
        stderr.contains(
            "the target refused the credentials (HTTP 401); next try in 2s, not every 1s"
        ),
        "{stderr}"
    );
    let status = w.status();
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{status:#}");
    assert_ne!(runs[1]["status"], "ok", "{status:#}");
    assert_eq!(runs[0]["status"], "ok", "{status:#}");
    assert_eq!(status["owned"], w.scim.with(|s| s.len()), "{status:#}");
}

#[test]
fn a_graph_paging_in_a_loop_fails_the_run_and_deactivates_nobody() {
    let w = World::new(100, "delta = no", "");
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stderr}");
    let active = || {
        w.scim
            .with(|s| s.users().filter(|u| u["active"] == true).count())
    };
    let before = active();
    assert!(before > 90, "{before}");
    // Pages of 20: from the third on, the same users again and again.
    w.graph.with(|s| s.behaviour.endless_from = Some(2));
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the paging loops"), "{stderr}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(active(), before, "nobody was deactivated");
}

#[test]
fn an_entra_listing_far_past_the_last_run_fails_and_creates_nobody_until_allowed() {
    let w = World::new(100, "delta = no", "");
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stderr}");
    let in_target = || w.scim.with(|s| s.len());
    let before = in_target();
    // 1,200 more users: past 100 + 1,000, the least bound after a run of 100.
    w.graph.with(|s| {
        for i in 0..1200 {
            s.tenant.add(sim::tenant::new_hire(77, i));
        }
    });
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("more than the 1100 allowed after the 100 users"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-growth"), "{stderr}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "failed", "{report:#}");
    // The users read beyond the last run's 100 waited for the read to end: none was made.
    assert_eq!(in_target(), before, "nobody was created or removed");
    assert_eq!(
        w.scim.with(|s| s.writes()),
        before,
        "no write but the first run's"
    );
    // The admin confirms the growth once; the run after is bounded by this one.
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini", "--allow-growth"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(in_target() > before + 1100, "{}", in_target());
    let runs = w.status()["runs"].as_array().unwrap().clone();
    assert_eq!(runs[0]["read"]["entra"], 1300, "{runs:#?}");
    assert_eq!(runs[1]["read"], Value::Null, "a failed read is no measure");
}

#[test]
fn a_target_listing_far_past_the_last_run_fails_before_any_write() {
    let w = World::new(50, "delta = no", "");
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stderr}");
    w.scim.with(|s| {
        for i in 0..1100 {
            let user = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("imported{i}@example.com"),
                "active": true,
            });
            s.insert(user).unwrap();
        }
    });
    let writes = w.scim.with(|s| s.writes());
    let (code, _, stderr) = w.userload(&["plan", "--config", "userload.ini"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the user list went on past 1049 users"),
        "{stderr}"
    );
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(w.scim.with(|s| s.writes()), writes, "nothing was written");
    let (code, _, stderr) = w.userload(&["plan", "--config", "userload.ini", "--allow-growth"]);
    assert_eq!(code, 0, "{stderr}");
}

#[cfg(unix)]
#[test]
fn sigterm_during_a_slow_read_stops_it_and_the_run_ends_stopped() {
    let w = World::new(600, "delta = no", "");
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini"]);
    assert_eq!(code, 0, "{stderr}");
    // 30 pages of 20, each answered half a second after it was asked for.
    w.graph
        .with(|s| s.behaviour.latency = std::time::Duration::from_millis(500));
    let before = w.graph.with(|s| s.graph_log().len());
    let mut child = util::userload_command(
        w.path(),
        &[
            "run",
            "--config",
            "userload.ini",
            "--report",
            "r.json",
            "--log-level",
            "trace",
            "--log-format",
            "json",
        ],
    )
    .stderr(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // A run that ignored the signal would read all 30 pages (15 s) and exit 0.
    let (status, rest) = sigterm_after(&mut child, "Graph GET", 2);
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "stopped", "{report:#}");
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("stopped by a signal before every user was read"),
        "{report:#}"
    );
    let pages = w.graph.with(|s| {
        s.graph_log()[before..]
            .iter()
            .filter(|r| r.path.ends_with("/users"))
            .count()
    });
    assert!(pages < 10, "{pages} pages read after the signal");
    // Nothing was planned, so nobody was deactivated or changed.
    let runs = w.status()["runs"].as_array().unwrap().clone();
    assert_eq!(runs[0]["status"], "stopped");
    assert_eq!(runs[0]["counts"]["deactivated"], 0);
}

#[test]
fn a_target_that_stops_answering_ends_the_run_without_trying_every_user() {
    let w = World::new(1000, "concurrency = 8", "");
    w.scim.with(|s| s.behaviour.failing_writes = Some(500));
    let (code, stdout, stderr) = w.run_reported();
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["status"], "stopped", "{report:#}");
    let failures = report["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f["error"].as_str().unwrap().contains("stopped answering")),
        "{report:#}"
    );
    // Each user's create would have been tried six times: a thousand users, six thousand
    // requests. The breaker gives up after a few dozen.
    let writes = w.scim.with(|s| s.writes());
    assert!(writes < 100, "{writes} creates sent");
    assert_eq!(report["counts"]["created"], 0);
    // What was not attempted is made by the next run once the target answers again.
    w.scim.with(|s| s.behaviour.failing_writes = None);
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert!(
        report["counts"]["created"].as_u64().unwrap() > 900,
        "{report:#}"
    );
}

#[test]
fn a_first_load_counts_its_creates_with_or_without_a_csv_of_them() {
    // Without a CSV or a page, each create is let go once written: the report still counts
    // every one sent, and the users are all in the target.
    let w = World::new(40, "", "");
    let (code, _, stderr) = w.userload(&["run", "--config", "userload.ini", "--report", "r.json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    let created = report["counts"]["created"].as_u64().unwrap();
    assert!(created > 30, "{report:#}");
    assert_eq!(report["sent"]["create"], created, "{report:#}");
    assert_eq!(w.scim.with(|s| s.len()) as u64, created);
    // With one, every create is a row of it.
    let w = World::new(40, "", "");
    let (code, _, stderr) = w.run_reported();
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&w.read("r.json")).unwrap();
    assert_eq!(report["sent"]["create"], created, "{report:#}");
    let csv = w.read("c.csv");
    let rows: std::collections::BTreeSet<&str> = csv
        .lines()
        .filter(|l| l.starts_with("create,"))
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    assert_eq!(rows.len() as u64, created, "{csv}");
}
