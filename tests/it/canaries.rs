//! No secret in any output: the whole command line, at trace level, through each error path
//! in which a server quotes a credential back or a secret sits where it should not, with
//! canary values for every secret, and every output searched for them afterwards: stdout,
//! stderr, the log file, the report, the CSV of changes, the run history and the webhook.

use std::collections::BTreeMap;
use std::path::Path;

use sim::graph::{self as graph_sim, GraphSim};
use sim::scim::{Fault as ScimFault, ScimSim};
use sim::tenant::Tenant;

use crate::util;

/// The app's client secret in the tenant.
const CLIENT_SECRET: &str = "CanaryClient~Secret.0001-abcdefghij";
/// A client secret the tenant does not know, given through the environment.
const WRONG_SECRET: &str = "CanaryWrong~Secret.0002-klmnopqrst";
/// The asset system's API token.
const TARGET_TOKEN: &str = "CanaryTargetToken0003uvwxyz";
/// The part of the webhook's URL that is its credential.
const HOOK_SECRET: &str = "CanaryHookPath0004";

/// The tenant, the asset system and a folder with a config naming both.
struct World {
    graph: GraphSim,
    scim: ScimSim,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let graph = GraphSim::start(Tenant::synthetic(40, 7)).unwrap();
        graph.with(|s| {
            s.apps[0].secret = Some(CLIENT_SECRET.to_owned());
            s.behaviour.echo_secret = true;
        });
        let scim = ScimSim::start().unwrap();
        scim.with(|s| s.behaviour.token = Some(TARGET_TOKEN.to_owned()));
        let dir = tempfile::tempdir().unwrap();
        util::write(dir.path(), "secret.txt", CLIENT_SECRET);
        util::write(dir.path(), "token.txt", TARGET_TOKEN);
        let url = graph.url();
        util::write(
            dir.path(),
            "userload.ini",
            &format!(
                "[source]\ntenant_id = {}\nclient_id = {}\nsecret = env:USERLOAD_TEST_SECRET\n\
                 authority = {url}\ndomain = {url}\npage_size = 10\nmax_attempts = 2\n\
                 [target]\ntype = scim\nurl = {}\ntoken = file:token.txt\nmax_attempts = 2\n\
                 [sync]\nstate = state.db\ndelta = no\n",
                graph_sim::TENANT_ID,
                graph_sim::CLIENT_ID,
                scim.url(),
            ),
        );
        World { graph, scim, dir }
    }

    /// Adds a webhook whose port is closed: notifying fails, and says so.
    fn with_webhook(&self) {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hook = format!(
            "\n[notify]\nwebhook = http://{}/hooks/{HOOK_SECRET}\non = ok, partial, failed\n",
            closed.local_addr().unwrap()
        );
        drop(closed);
        let config = self.path().join("userload.ini");
        let text = std::fs::read_to_string(&config).unwrap() + &hook;
        util::write(self.path(), "userload.ini", &text);
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `command` at trace level with every output asked for, the client secret in the
    /// environment being `secret`; the exit code and everything it wrote, by name.
    fn run(&self, command: &str, secret: &str, json_log: bool) -> (i32, BTreeMap<String, String>) {
        for file in ["r.json", "c.csv", "log.txt"] {
            let _ = std::fs::remove_file(self.path().join(file));
        }
        let mut args = vec![command, "--config", "userload.ini", "--log-level", "trace"];
        args.extend(["--log-file", "log.txt"]);
        if json_log {
            args.extend(["--log-format", "json"]);
        }
        if command == "run" {
            args.extend(["--report", "r.json", "--changes", "c.csv"]);
        }
        let output = util::userload_command(self.path(), &args)
            .env("USERLOAD_TEST_SECRET", secret)
            .output()
            .unwrap();
        let (code, stdout, stderr) = util::outcome(&output);
        let mut outputs =
            BTreeMap::from([("stdout".to_owned(), stdout), ("stderr".to_owned(), stderr)]);
        for file in ["r.json", "c.csv", "log.txt"] {
            if let Ok(text) = std::fs::read_to_string(self.path().join(file)) {
                outputs.insert(file.to_owned(), text);
            }
        }
        let status = util::userload_command(self.path(), &["status", "--config", "userload.ini"])
            .arg("--json")
            .output()
            .unwrap();
        outputs.insert("status".to_owned(), util::outcome(&status).1);
        (code, outputs)
    }

    /// Every secret this world knows, the access tokens the tenant issued included.
    fn canaries(&self) -> Vec<String> {
        let mut canaries: Vec<String> = [CLIENT_SECRET, WRONG_SECRET, TARGET_TOKEN, HOOK_SECRET]
            .map(str::to_owned)
            .to_vec();
        canaries.extend(self.graph.with(|s| s.issued_tokens()));
        canaries.push("eyJ".to_owned());
        canaries
    }

    /// Asserts that `what` said `expected` somewhere and no secret anywhere.
    fn assert_clean(&self, what: &str, outputs: &BTreeMap<String, String>, expected: &str) {
        let all: String = outputs.values().map(String::as_str).collect();
        assert!(
            all.contains(expected),
            "{what}: the error path was not taken (no `{expected}`):\n{outputs:#?}"
        );
        for canary in self.canaries() {
            for (name, text) in outputs {
                assert!(
                    !text.contains(&canary),
                    "{what}: {name} shows the secret {canary}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn no_secret_reaches_any_output_in_any_error_path() {
    let w = World::new();

    // Entra refuses the secret and quotes it back.
    for (command, json) in [("run", false), ("pull", true), ("check", false)] {
        let (code, outputs) = w.run(command, WRONG_SECRET, json);
        assert_ne!(code, 0, "{command}");
        w.assert_clean(command, &outputs, "was rejected");
    }

    // Graph refuses a page and quotes the Authorization header back; then a page fails
    // with a server error that quotes it too, until the attempts run out.
    let next = w.graph.with(|s| s.graph_log().len() as u64 + 1);
    w.graph.with(|s| {
        s.behaviour.faults.insert(next, graph_sim::Fault::Echo(400));
    });
    let (code, outputs) = w.run("run", CLIENT_SECRET, true);
    assert_eq!(code, 2);
    w.assert_clean("a refused page", &outputs, "Request refused");
    let next = w.graph.with(|s| s.graph_log().len() as u64 + 1);
    w.graph.with(|s| {
        for n in next..next + 2 {
            s.behaviour.faults.insert(n, graph_sim::Fault::Echo(503));
        }
    });
    let (code, outputs) = w.run("pull", CLIENT_SECRET, false);
    assert_eq!(code, 2);
    w.assert_clean("a failing page", &outputs, "after 2 attempt(s)");

    // The asset system refuses the listing, then every create, quoting its token back.
    let echo = format!(r#"{{"detail": "token {TARGET_TOKEN} (Bearer {TARGET_TOKEN}) refused"}}"#);
    let next = w.scim.with(|s| s.log.len() as u64 + 1);
    w.scim.with(|s| {
        s.behaviour
            .faults
            .insert(next, ScimFault::Answer(401, echo.clone()));
    });
    let (code, outputs) = w.run("run", CLIENT_SECRET, false);
    assert_eq!(code, 2);
    w.assert_clean(
        "a refused listing",
        &outputs,
        "listing the target's users failed",
    );
    let next = w.scim.with(|s| s.log.len() as u64 + 1);
    w.scim.with(|s| {
        // The listing is one request; every create after it is refused.
        for n in next + 1..next + 200 {
            s.behaviour
                .faults
                .insert(n, ScimFault::Answer(400, echo.clone()));
        }
    });
    let (code, outputs) = w.run("run", CLIENT_SECRET, true);
    assert_eq!(code, 1);
    w.assert_clean("refused creates", &outputs, "refused");
    assert!(
        outputs["r.json"].contains("[redacted]"),
        "{}",
        outputs["r.json"]
    );
    assert!(outputs["c.csv"].lines().count() > 1, "{}", outputs["c.csv"]);

    // The webhook cannot be reached; its URL, a credential, is never printed.
    w.with_webhook();
    let (_, outputs) = w.run("run", CLIENT_SECRET, false);
    w.assert_clean("the webhook", &outputs, "did not take the message");
    let tokens = w.graph.with(|s| s.issued_tokens().len());
    assert!(
        tokens > 0,
        "the tenant issued no token: the paths after sign-in were not taken"
    );
}
