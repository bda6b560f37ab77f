//! Freshservice through the real binary (`preset = freshservice`, `auth = basic` with the
//! API key as the user name, the shipped mapping) against the Freshservice simulator: a
//! first load with departments, locations and managers, updates, deactivation by DELETE
//! and reactivation, a deactivated requester matched rather than created again, 429s told
//! in Freshservice's headers, and a server answering HTML. Then the listing itself.

use std::time::Duration;

use serde_json::{Map, Value, json};
use sim::freshservice::{self, Freshservice, FreshserviceSim};
use sim::graph::{self as graph_sim, GraphSim};
use sim::tenant::Tenant;
use sim::throttle::Throttle;
use url::Url;
use userload::config::{Preset, RestApi, Secret, TargetAuth, TargetConfig, TargetKind};
use userload::diag::SourceText;
use userload::http::RetryPolicy;
use userload::mapping::{self, Options};
use userload::targets::Target;
use userload::targets::rest::RestTarget;

use crate::util;

struct World {
    graph: GraphSim,
    fs: FreshserviceSim,
    dir: tempfile::TempDir,
}

fn person(id: &str, given: &str, surname: &str, department: &str) -> Value {
    let upn = format!("{}@contoso.com", given.to_lowercase());
    json!({
        "id": id, "userPrincipalName": upn, "mail": upn, "givenName": given,
        "surname": surname, "accountEnabled": true, "jobTitle": "Engineer",
        "mobilePhone": "+1 425 555 0101", "department": department,
        "officeLocation": "Building 4",
    })
}

impl World {
    /// Entra holds Ann, Bob (managed by Ann), Cy and Dee; Freshservice holds nobody yet;
    /// `sync_lines` are added to `[sync]`.
    fn new(fs: FreshserviceSim, sync_lines: &str) -> World {
        let mut tenant = Tenant::new();
        tenant.add(person("a1", "Ann", "Lee", "Sales"));
        tenant.add(person("b2", "Bob", "Ray", "Sales"));
        tenant.add(person("c3", "Cy", "Moss", "IT"));
        tenant.add(person("d4", "Dee", "Park", "IT"));
        tenant.set_manager("b2", Some("a1"));
        let graph = GraphSim::start(tenant).unwrap();
        let dir = tempfile::tempdir().unwrap();
        util::write(dir.path(), "secret.txt", graph_sim::SECRET);
        util::write(dir.path(), "key.txt", freshservice::API_KEY);
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = file:secret.txt\n\
             authority = {url}\ndomain = {url}\nmax_attempts = 2\n\
             [target]\ntype = rest\npreset = freshservice\nurl = {}\nauth = basic\n\
             token = file:key.txt\nmax_attempts = 4\n\
             [sync]\nstate = state.db\nmax_deactivations = 5\n{sync_lines}\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            fs.url(),
        );
        util::write(dir.path(), "userload.ini", &text);
        World { graph, fs, dir }
    }

    fn run(&self) -> (i32, String, String) {
        let args = ["run", "--config", "userload.ini", "--report", "r.json"];
        util::outcome(&util::userload(self.dir.path(), &args))
    }

    fn report(&self) -> Value {
        util::json_file(self.dir.path(), "r.json")
    }

    /// Created, updated, deactivated and reactivated, from the report.
    fn counts(&self) -> [u64; 4] {
        let counts = &self.report()["counts"];
        ["created", "updated", "deactivated", "reactivated"]
            .map(|k| counts[k].as_u64().unwrap_or(0))
    }

    /// The requester with this address.
    fn requester(&self, email: &str) -> Map<String, Value> {
        self.fs
            .with(|f| f.requester(email).cloned())
            .unwrap_or_else(|| panic!("Freshservice has no {email}"))
    }

    /// The requests sent with this method to paths starting with `prefix`.
    fn sent(&self, method: &str, prefix: &str) -> usize {
        self.fs.with(|f| {
            f.traffic
                .log
                .iter()
                .filter(|l| l.method == method && l.path.starts_with(prefix))
                .count()
        })
    }
}

#[test]
fn freshservice_first_load_update_deactivate_and_reactivate() {
    let w = World::new(Freshservice::start().unwrap(), "");
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), [4, 0, 0, 0], "{stdout}");
    let ann = w.requester("ann@contoso.com");
    assert_eq!(
        (&ann["first_name"], &ann["last_name"], &ann["active"]),
        (&json!("Ann"), &json!("Lee"), &json!(true))
    );
    assert_eq!(ann["job_title"], "Engineer");
    assert_eq!(ann["mobile_phone_number"], "+1 425 555 0101");
    // The manager is written as Ann's requester id, a number.
    let bob = w.requester("bob@contoso.com");
    assert_eq!(bob["reporting_manager_id"], ann["id"], "{bob:?}");
    w.fs.with(|f| {
        // Two departments and one location, made once each and named by id.
        let mut departments: Vec<&String> = f.departments.values().collect();
        departments.sort();
        assert_eq!(departments, ["IT", "Sales"]);
        assert_eq!(f.locations.values().collect::<Vec<_>>(), ["Building 4"]);
        let id_of = |name: &str| *f.departments.iter().find(|(_, n)| *n == name).unwrap().0;
        let location = *f.locations.keys().next().unwrap();
        for r in f.requesters.values() {
            let department = if r["first_name"] == "Ann" || r["first_name"] == "Bob" {
                id_of("Sales")
            } else {
                id_of("IT")
            };
            assert_eq!(r["department_ids"], json!([department]), "{r:?}");
            assert_eq!(r["location_id"], location, "{r:?}");
        }
        // Nothing was refused: every id went as a number, every field one Freshservice has.
        let refused: Vec<_> = f.traffic.log.iter().filter(|l| l.status >= 400).collect();
        assert!(refused.is_empty(), "{refused:?}");
    });

    // A second run writes nothing.
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), [0, 0, 0, 0], "{stdout}");

    // A changed surname is one PUT of that field.
    w.graph
        .with(|s| s.tenant.update("a1", json!({"surname": "Lee-Park"})));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), [0, 1, 0, 0], "{stdout}");
    let path = format!("/api/v2/requesters/{}", ann["id"]);
    w.fs.with(|f| {
        let puts = f.traffic.requests("PUT", &path);
        assert_eq!(
            puts.last().unwrap().body,
            Some(json!({"last_name": "Lee-Park"}))
        );
    });

    // Cy leaves: a DELETE deactivates the requester, who is kept.
    w.graph.with(|s| s.tenant.soft_delete("c3"));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), [0, 0, 1, 0], "{stdout}");
    let cy = w.requester("cy@contoso.com");
    assert_eq!(cy["active"], false);
    assert_eq!(w.sent("DELETE", "/api/v2/requesters/"), 1);

    // The next run sees Cy among the deactivated requesters: nothing to do.
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), [0, 0, 0, 0], "{stdout}");

    // Cy comes back: PUT …/reactivate.
    w.graph.with(|s| s.tenant.restore("c3"));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), [0, 0, 0, 1], "{stdout}");
    assert_eq!(w.requester("cy@contoso.com")["active"], true);
    let reactivate = format!("/api/v2/requesters/{}/reactivate", cy["id"]);
    assert_eq!(
        w.fs.with(|f| f.traffic.requests("PUT", &reactivate).len()),
        1
    );
    assert_eq!(w.sent("POST", "/api/v2/requesters"), 4);
    w.fs.with(|f| assert_eq!(f.requesters.len(), 4));
}

#[test]
fn a_deactivated_requester_is_matched_and_reactivated_not_created_again() {
    let fs = Freshservice::start().unwrap();
    let dee = fs.with(|f| {
        let sales = f.add_department("Sales");
        f.add_requester(json!({
            "first_name": "Dee", "last_name": "Park", "primary_email": "DEE@contoso.com",
            "department_ids": [sales], "active": false,
        }))
    });
    let w = World::new(fs, "");
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Three created; Dee taken over by her address and reactivated, with her fields set.
    assert_eq!(w.counts()[0], 3, "{stdout}");
    assert_eq!(w.sent("POST", "/api/v2/requesters"), 3);
    let found = w.requester("dee@contoso.com");
    assert_eq!(found["id"], dee);
    assert_eq!(found["active"], true);
    assert_eq!(found["job_title"], "Engineer");
    w.fs.with(|f| {
        assert_eq!(f.requesters.len(), 4);
        let it = *f.departments.iter().find(|(_, n)| *n == "IT").unwrap().0;
        assert_eq!(f.requesters[&dee]["department_ids"], json!([it]));
        assert!(f.traffic.log.iter().all(|l| l.status != 409));
    });
}

#[test]
fn freshservice_429s_told_in_its_headers_are_waited_out() {
    // A low limit (six requests a second), and two requests answered 429 whatever the pace.
    let fs = Freshservice::start_throttled(Throttle::per_minute(6).window(Duration::from_secs(1)))
        .unwrap();
    fs.with(|f| f.limited = [3, 6].into());
    let w = World::new(fs, "concurrency = 4\nrate_limit = 50/s");
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report = w.report();
    assert_eq!(report["failures"], json!([]), "{report:#}");
    assert_eq!(w.counts()[0], 4, "{report:#}");
    let refused = w.fs.with(|f| {
        let over = f.traffic.log.iter().filter(|l| l.status == 429).count() as u64;
        assert!(over >= 2 && over >= f.throttle.refused + 2, "{over}");
        over
    });
    assert_eq!(
        report["requests"]["target_throttled"], refused,
        "{report:#}"
    );
    w.fs.with(|f| {
        assert_eq!(f.requesters.len(), 4);
        assert_eq!(f.departments.len(), 2);
    });
}

#[test]
fn freshservice_answering_html_is_one_clear_error_naming_the_url_and_status() {
    let w = World::new(Freshservice::start().unwrap(), "");
    // A sign-in page where the API should be.
    w.fs.with(|f| f.html_status = Some(200));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("/api/v2/"), "{all}");
    assert!(
        all.contains("HTTP 200 with an HTML page, not JSON"),
        "{all}"
    );
    assert!(
        !all.contains("panicked") && !all.contains("<html>"),
        "{all}"
    );
    assert!(!all.contains(freshservice::API_KEY), "{all}");
}

fn config(sim: &FreshserviceSim, key: &str) -> TargetConfig {
    TargetConfig {
        kind: TargetKind::Rest,
        url: Url::parse(&sim.url()).unwrap(),
        token: Some(Secret::literal(key)),
        sync_field: None,
        auth: TargetAuth::BasicToken,
        api: Some(RestApi::Preset(Preset::Freshservice)),
        page_size: 2,
        list: true,
        batch_size: 500,
        max_attempts: 2,
        request_timeout: Duration::from_secs(10),
        rate_limit: None,
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

fn shipped() -> mapping::Mapping {
    let source = SourceText::new("freshservice", mapping::shipped("freshservice").unwrap());
    mapping::compile_source(&source, Options::default()).unwrap()
}

#[tokio::test]
async fn the_listing_pages_active_then_deactivated_requesters_and_reads_department_ids() {
    let sim = Freshservice::start().unwrap();
    sim.with(|f| {
        let sales = f.add_department("Sales");
        for i in 0..5 {
            f.add_requester(json!({
                "first_name": "U", "primary_email": format!("u{i}@contoso.com"),
                "department_ids": [sales], "active": i != 3,
            }));
        }
    });
    let target =
        RestTarget::with_policy(&config(&sim, freshservice::API_KEY), &shipped(), quick()).unwrap();
    let users = target.list().await.unwrap();
    let emails: Vec<&Value> = users.iter().map(|u| &u.data["primary_email"]).collect();
    assert_eq!(
        emails,
        [
            "u0@contoso.com",
            "u1@contoso.com",
            "u2@contoso.com",
            "u4@contoso.com",
            "u3@contoso.com"
        ]
    );
    let sales = sim.with(|f| *f.departments.keys().next().unwrap());
    assert!(users.iter().all(|u| u.data["department_id"] == sales));
    assert_eq!(users[4].data["active"], false);
    // Pages of two: 1, 2, 3 of the active, then 1 of the deactivated.
    let pages: Vec<(Option<String>, String)> = sim.with(|f| {
        f.traffic
            .requests("GET", "/api/v2/requesters")
            .iter()
            .map(|l| (l.query.get("active").cloned(), l.query["page"].clone()))
            .collect()
    });
    let active = |p: &str| (None, p.to_string());
    assert_eq!(
        pages,
        [
            active("1"),
            active("2"),
            active("3"),
            (Some("false".into()), "1".into())
        ]
    );
    let found = target
        .find("primary_email", &json!("U2@contoso.com"))
        .await
        .unwrap();
    assert_eq!(found.unwrap().data["primary_email"], "u2@contoso.com");

    // A wrong key is refused; the key never shows in the error.
    let wrong =
        RestTarget::with_policy(&config(&sim, "not-the-key-0000"), &shipped(), quick()).unwrap();
    let error = wrong.list().await.unwrap_err().to_string();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("not-the-key-0000"), "{error}");
}
