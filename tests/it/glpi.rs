//! GLPI through the real binary (`preset = glpi`, `auth = session`, the shipped mapping)
//! against the GLPI simulator: a first load, updates, deactivation and reactivation, a
//! session that expires in the middle of a run, one that cannot be renewed, and a server
//! answering HTML. Then the target's sign-in by OAuth2 against the Snipe-IT simulator and a
//! token endpoint the test runs.

use std::time::Duration;

use serde_json::{Map, Value, json};
use sim::glpi::{self, Glpi, GlpiSim};
use sim::graph::{self as graph_sim, GraphSim};
use sim::server::{Reply, Request, Server, Service, Traffic};
use sim::snipeit::{self, SnipeIt};
use sim::tenant::Tenant;
use url::Url;
use userload::config::{
    OAuth2Config, Preset, RestApi, Secret, TargetAuth, TargetConfig, TargetKind,
};
use userload::diag::SourceText;
use userload::http::RetryPolicy;
use userload::mapping::{self, Options};
use userload::targets::rest::RestTarget;
use userload::targets::{Target, TargetError};

use crate::util;

const APP_TOKEN: &str = "glpi-sim-app-token-91d3c5";

struct World {
    graph: GraphSim,
    glpi: GlpiSim,
    dir: tempfile::TempDir,
}

fn person(id: &str, given: &str, surname: &str, employee: &str) -> Value {
    let upn = format!("{}@contoso.com", given.to_lowercase());
    json!({
        "id": id, "userPrincipalName": upn, "mail": upn, "givenName": given,
        "surname": surname, "employeeId": employee, "accountEnabled": true,
        "mobilePhone": "+1 425 555 0101", "jobTitle": "Engineer", "officeLocation": "Building 4",
    })
}

impl World {
    /// Entra holds Ann, Bob (managed by Ann), Cy and Dee; GLPI holds nobody yet and wants
    /// an App-Token; `sync_lines` are added to `[sync]`.
    fn new(sync_lines: &str) -> World {
        let mut tenant = Tenant::new();
        tenant.add(person("a1", "Ann", "Lee", "E1"));
        tenant.add(person("b2", "Bob", "Ray", "E2"));
        tenant.add(person("c3", "Cy", "Moss", "E3"));
        tenant.add(person("d4", "Dee", "Park", "E4"));
        tenant.set_manager("b2", Some("a1"));
        let graph = GraphSim::start(tenant).unwrap();
        let glpi = Glpi::start().unwrap();
        glpi.with(|g| g.app_token = Some(APP_TOKEN.to_string()));
        let dir = tempfile::tempdir().unwrap();
        util::write(dir.path(), "secret.txt", graph_sim::SECRET);
        util::write(dir.path(), "token.txt", glpi::USER_TOKEN);
        util::write(dir.path(), "app.txt", APP_TOKEN);
        let url = graph.url();
        let text = format!(
            "[source]\ntenant_id = {}\nclient_id = {}\nsecret = file:secret.txt\n\
             authority = {url}\ndomain = {url}\nmax_attempts = 2\n\
             [target]\ntype = rest\npreset = glpi\nurl = {}\nauth = session\n\
             token = file:token.txt\napp_token = file:app.txt\nmax_attempts = 2\n\
             [sync]\nstate = state.db\nmax_deactivations = 5\n{sync_lines}\n",
            graph_sim::TENANT_ID,
            graph_sim::CLIENT_ID,
            glpi.url(),
        );
        util::write(dir.path(), "userload.ini", &text);
        World { graph, glpi, dir }
    }

    fn run(&self) -> (i32, String, String) {
        let args = ["run", "--config", "userload.ini", "--report", "r.json"];
        util::outcome(&util::userload(self.dir.path(), &args))
    }

    fn report(&self) -> Value {
        util::json_file(self.dir.path(), "r.json")
    }

    fn counts(&self) -> (u64, u64, u64) {
        let counts = &self.report()["counts"];
        let n = |k: &str| counts[k].as_u64().unwrap_or(0);
        (n("created"), n("updated"), n("deactivated"))
    }

    /// GLPI's user with this login.
    fn user(&self, login: &str) -> Map<String, Value> {
        self.glpi
            .with(|g| g.user_named(login).map(|(_, u)| u.clone()))
            .unwrap_or_else(|| panic!("GLPI has no {login}"))
    }
}

#[test]
fn glpi_first_load_update_deactivate_and_reactivate() {
    let w = World::new("");
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts().0, 4);
    let ann = w.user("ann@contoso.com");
    assert_eq!(
        (&ann["firstname"], &ann["realname"], &ann["is_active"]),
        (&json!("Ann"), &json!("Lee"), &json!(1))
    );
    assert_eq!(ann["registration_number"], "E1");
    assert_eq!(ann["mobile"], "+1 425 555 0101");
    // The manager is written as Ann's GLPI id; the address went in on create.
    let bob = w.user("bob@contoso.com");
    assert_eq!(bob["users_id_supervisor"], ann["id"], "{bob:?}");
    let bob_id = bob["id"].as_u64().unwrap();
    w.glpi.with(|g| {
        // One title and one location, made once and named on every user.
        assert_eq!(g.titles.values().collect::<Vec<_>>(), ["Engineer"]);
        assert_eq!(g.locations.values().collect::<Vec<_>>(), ["Building 4"]);
        let title = *g.titles.keys().next().unwrap();
        let location = *g.locations.keys().next().unwrap();
        for user in g.users.values() {
            assert_eq!(user["usertitles_id"], title, "{user:?}");
            assert_eq!(user["locations_id"], location, "{user:?}");
        }
        assert_eq!(g.emails[&bob_id], ["bob@contoso.com"]);
        // One session, closed at the end; every request carried the App-Token.
        assert_eq!((g.logins, g.logouts, g.open_sessions()), (1, 1, 0));
        assert!(
            g.traffic.log.iter().all(|l| l.status != 400),
            "{:?}",
            g.traffic.log
        );
        // Writes went in {"input": …}.
        let posts = g.traffic.requests("POST", "/apirest.php/User");
        assert!(
            posts
                .iter()
                .all(|p| p.body.as_ref().unwrap()["input"].is_object())
        );
    });

    // A second run writes nothing.
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), (0, 0, 0), "{stdout}");

    // A changed surname is one update, sent as PUT {"input": {"realname": …}}.
    w.graph
        .with(|s| s.tenant.update("a1", json!({"surname": "Lee-Park"})));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts(), (0, 1, 0));
    assert_eq!(w.user("ann@contoso.com")["realname"], "Lee-Park");
    let path = format!("/apirest.php/User/{}", ann["id"]);
    w.glpi.with(|g| {
        let puts = g.traffic.requests("PUT", &path);
        let body = puts.last().unwrap().body.clone().unwrap();
        assert_eq!(body, json!({"input": {"realname": "Lee-Park"}}));
    });

    // Cy leaves: is_active = 0. Cy comes back: is_active = 1.
    w.graph.with(|s| s.tenant.soft_delete("c3"));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts().2, 1, "{stdout}");
    assert_eq!(w.user("cy@contoso.com")["is_active"], 0);
    w.graph.with(|s| s.tenant.restore("c3"));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.user("cy@contoso.com")["is_active"], 1);
    w.glpi.with(|g| assert_eq!(g.users.len(), 4));
}

#[test]
fn glpi_session_expiring_mid_run_is_renewed_and_the_run_completes() {
    let w = World::new("concurrency = 1");
    w.glpi.with(|g| g.session_requests = Some(3));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(w.counts().0, 4);
    w.glpi.with(|g| {
        assert!(g.logins >= 3, "{} sessions", g.logins);
        assert_eq!(g.users.len(), 4);
        // Each expiry was answered 401 once, then the request went through (the logout at
        // the end may find its session expired too: nothing to renew it for).
        let refused = g
            .traffic
            .log
            .iter()
            .filter(|l| l.status == 401 && l.path != "/apirest.php/killSession")
            .count();
        assert_eq!(refused as u64, g.logins - 1);
    });
    assert!(!stderr.contains(glpi::USER_TOKEN) && !stdout.contains(APP_TOKEN));
}

#[test]
fn glpi_session_that_cannot_be_renewed_stops_the_run_with_what_was_written_kept() {
    let w = World::new("concurrency = 1");
    // One session only, good for the listings, the title and location made and two
    // users' writes.
    w.glpi.with(|g| {
        g.session_requests = Some(9);
        g.max_logins = Some(1);
    });
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("cannot sign in"), "{all}");
    assert!(!all.contains(glpi::USER_TOKEN), "{all}");
    let report = w.report();
    assert_eq!(report["status"], "failed", "{report:#}");
    let (created, _, _) = w.counts();
    assert!(created >= 1, "{report:#}");
    let written = w.glpi.with(|g| g.users.len()) as u64;
    assert!(written >= created && written < 4, "{written} written");
    // No user write after the one the lost session refused.
    let posts = w
        .glpi
        .with(|g| g.traffic.requests("POST", "/apirest.php/User").len()) as u64;
    assert!(posts <= written + 1, "{posts} creates sent, {written} made");

    // Logins work again: the next run makes the rest, nobody twice.
    w.glpi.with(|g| {
        g.max_logins = None;
        g.session_requests = None;
    });
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    w.glpi.with(|g| assert_eq!(g.users.len(), 4));
}

#[test]
fn glpi_answering_html_is_one_clear_error_naming_the_url_and_status() {
    let w = World::new("");
    w.glpi.with(|g| g.html_status = Some(200));
    let (code, stdout, stderr) = w.run();
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("/apirest.php/initSession"), "{all}");
    assert!(all.contains("HTTP 200 with an HTML page"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains("<html>"), "{all}");
}

fn glpi_config(sim: &GlpiSim) -> TargetConfig {
    TargetConfig {
        kind: TargetKind::Rest,
        url: Url::parse(&sim.url()).unwrap(),
        token: Some(Secret::literal(glpi::USER_TOKEN)),
        sync_field: None,
        auth: TargetAuth::Session {
            app_token: None,
            username: None,
            password: None,
        },
        api: Some(RestApi::Preset(Preset::Glpi)),
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

fn shipped(name: &str) -> mapping::Mapping {
    let source = SourceText::new(name, mapping::shipped(name).unwrap());
    mapping::compile_source(&source, Options::default()).unwrap()
}

#[tokio::test]
async fn glpi_lists_by_range_across_pages_and_names_an_html_page_with_its_url() {
    let sim = Glpi::start().unwrap();
    sim.with(|g| {
        for i in 0..5 {
            g.add_user(json!({"name": format!("user{i}@contoso.com"), "realname": "Lee"}));
        }
    });
    let mapping = shipped("glpi");
    let target = RestTarget::with_policy(&glpi_config(&sim), &mapping, quick()).unwrap();
    let users = target.list().await.unwrap();
    assert_eq!(users.len(), 5);
    let ranges: Vec<String> = sim.with(|g| {
        g.traffic
            .requests("GET", "/apirest.php/User")
            .iter()
            .map(|l| l.query["range"].clone())
            .collect()
    });
    assert_eq!(ranges, ["0-1", "2-3", "4-5"]);
    let found = target
        .find("name", &json!("USER3@contoso.com"))
        .await
        .unwrap();
    assert_eq!(found.unwrap().data["name"], "user3@contoso.com");

    sim.with(|g| g.html_status = Some(404));
    let error = target.list().await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, TargetError::Rejected { status: 404, .. }),
        "{text}"
    );
    assert!(text.contains("/apirest.php/User?range=0-1"), "{text}");
    assert!(
        text.contains("HTTP 404 with an HTML page, not JSON (title: 404 Error)"),
        "{text}"
    );
    target.close().await;
}

// ----- OAuth2 ------------------------------------------------------------------------------

/// A token endpoint of the client-credentials grant: `client`/`s3cret-client` get the
/// tokens of `tokens` in turn, each with its `expires_in`.
#[derive(Debug, Default)]
struct TokenEndpoint {
    tokens: Vec<(String, u64)>,
    issued: usize,
    forms: Vec<String>,
    traffic: Traffic,
}

impl Service for TokenEndpoint {
    const NAME: &'static str = "token-endpoint";

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }

    fn serve(&mut self, request: &Request) -> Reply {
        let form = String::from_utf8_lossy(&request.raw).into_owned();
        self.forms.push(form.clone());
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if get("client_id") != Some("client") || get("client_secret") != Some("s3cret-client") {
            return Reply::json(
                401,
                json!({"error": "invalid_client", "error_description": "bad client"}),
            );
        }
        if get("scope") == Some("everything") {
            return Reply::json(400, json!({"error": "invalid_scope"}));
        }
        if get("grant_type") != Some("client_credentials") {
            return Reply::json(400, json!({"error": "unsupported_grant_type"}));
        }
        let (token, expires) = self.tokens[self.issued.min(self.tokens.len() - 1)].clone();
        self.issued += 1;
        Reply::json(
            200,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": expires}),
        )
    }
}

fn oauth_config(snipe: &str, endpoint: &str, secret: &str) -> TargetConfig {
    TargetConfig {
        kind: TargetKind::Rest,
        url: Url::parse(snipe).unwrap(),
        token: None,
        sync_field: None,
        auth: TargetAuth::OAuth2(OAuth2Config {
            token_url: Url::parse(&format!("{endpoint}/oauth/token")).unwrap(),
            client_id: "client".into(),
            client_secret: Secret::literal(secret),
            scope: Some("users.write".into()),
        }),
        api: Some(RestApi::Preset(Preset::Snipeit)),
        page_size: 50,
        list: true,
        batch_size: 500,
        max_attempts: 2,
        request_timeout: Duration::from_secs(10),
        rate_limit: None,
    }
}

#[tokio::test]
async fn oauth2_token_is_refreshed_before_expiry_and_once_after_a_401() {
    let snipe = SnipeIt::start().unwrap();
    let endpoint = Server::start(TokenEndpoint {
        // The first token lasts less than the renewal margin: used once, then replaced.
        tokens: vec![
            ("short-lived-token-0001".into(), 5),
            (snipeit::TOKEN.into(), 3600),
        ],
        ..TokenEndpoint::default()
    })
    .unwrap();
    // The Snipe-IT simulator takes only its own token; give the short one a pass once.
    let mapping = shipped("snipeit");
    let config = oauth_config(&snipe.url(), &endpoint.url(), "s3cret-client");
    let target = RestTarget::with_policy(&config, &mapping, quick()).unwrap();
    snipe.with(|s| s.token = "short-lived-token-0001".into());
    target.list().await.unwrap();
    snipe.with(|s| s.token = snipeit::TOKEN.into());
    target.list().await.unwrap();
    target.list().await.unwrap();
    assert_eq!(
        endpoint.with(|e| e.issued),
        2,
        "renewed before expiry, then kept"
    );
    let form = endpoint.with(|e| e.forms[0].clone());
    assert!(form.contains("grant_type=client_credentials") && form.contains("scope=users.write"));

    // The server stops taking the token: one 401, one new token, the request again.
    let next = snipe.with(|s| s.traffic.next_number());
    snipe.with(|s| {
        s.traffic.faults.insert(
            next,
            sim::server::Fault::Answer(401, r#"{"message":"Unauthenticated."}"#.into()),
        )
    });
    target.list().await.unwrap();
    assert_eq!(endpoint.with(|e| e.issued), 3);
    let statuses: Vec<u16> = snipe.with(|s| s.traffic.log.iter().map(|l| l.status).collect());
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        1,
        "{statuses:?}"
    );

    // Refused again right after renewing: the sign-in is lost and the run would stop.
    snipe.with(|s| s.token = "nobody-has-this-token".into());
    let error = target.list().await.unwrap_err();
    assert!(matches!(error, TargetError::SignIn { .. }), "{error}");
    assert!(error.stops_run());
}

#[tokio::test]
async fn oauth2_invalid_client_or_scope_is_one_line_saying_what_to_fix() {
    let snipe = SnipeIt::start().unwrap();
    let endpoint = Server::start(TokenEndpoint {
        tokens: vec![(snipeit::TOKEN.into(), 3600)],
        ..TokenEndpoint::default()
    })
    .unwrap();
    let mapping = shipped("snipeit");
    let config = oauth_config(&snipe.url(), &endpoint.url(), "wrong-secret-value");
    let target = RestTarget::with_policy(&config, &mapping, quick()).unwrap();
    let error = target.list().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, TargetError::SignIn { .. }), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(text.contains("check client_id and client_secret"), "{text}");
    assert!(
        !text.contains('\n') && !text.contains("wrong-secret-value"),
        "{text}"
    );
    assert_eq!(
        snipe.with(|s| s.traffic.log.len()),
        0,
        "no request without a token"
    );
}

#[test]
fn glpi_check_opens_a_session_and_closes_it() {
    let w = World::new("");
    let args = ["check", "--config", "userload.ini"];
    let (code, stdout, stderr) = util::outcome(&util::userload(w.dir.path(), &args));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("GLPI at http://127.0.0.1:"), "{stdout}");
    w.glpi
        .with(|g| assert_eq!((g.logins, g.logouts, g.open_sessions()), (1, 1, 0)));
}
