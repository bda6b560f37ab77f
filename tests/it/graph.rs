//! The Graph source against the Graph simulator: sign-in and its errors, paging, `$select`,
//! advanced queries, throttling and broken connections, token expiry, group scope, manager
//! expansion and delta rounds.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use odata::Filter;
use serde_json::{Value, json};
use sim::graph::{self as graph_sim, Fault, GraphSim};
use sim::scim::ScimSim;
use sim::tenant::{self, Tenant};
use url::Url;
use userload::config::{
    AssertionAlgorithm, Credential, ManagedIdentityEndpoint, Secret, SourceConfig,
};
use userload::graph::delta::{Change, GoneReason, delta_round};
use userload::graph::{GraphClient, GraphError, Managers, Selection, UserPager, UserQuery};
use userload::http::RetryPolicy;

use crate::util::repo;

fn source(sim: &GraphSim) -> SourceConfig {
    let url = Url::parse(&sim.url()).unwrap();
    SourceConfig {
        enabled: true,
        tenant_id: graph_sim::TENANT_ID.to_owned(),
        client_id: graph_sim::CLIENT_ID.to_owned(),
        credential: Credential::Secret(Secret::literal(graph_sim::SECRET)),
        authority: url.clone(),
        graph_root: url,
        filter: None,
        page_size: 999,
        group: None,
        groups: Vec::new(),
        exclude_groups: Vec::new(),
        input_groups: Vec::new(),
        max_attempts: 4,
        request_timeout: Duration::from_secs(10),
    }
}

/// Retries without long waits (the server's Retry-After still rules).
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

fn client(source: &SourceConfig) -> Arc<GraphClient> {
    Arc::new(GraphClient::with_policy(source, quick()).unwrap())
}

async fn pull(source: &SourceConfig, selection: Selection) -> Result<Vec<Value>, GraphError> {
    let query = UserQuery::new(source, selection);
    UserPager::new(client(source), &query).collect().await
}

fn ids(users: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sign_in_error(result: Result<Vec<Value>, GraphError>) -> String {
    match result {
        Err(e @ GraphError::SignIn(_)) => e.to_string(),
        other => panic!("expected a sign-in error, got {other:?}"),
    }
}

// ----- tokens ---------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_secret_says_value_not_id() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    let mut source = source(&sim);
    source.credential = Credential::Secret(Secret::literal(graph_sim::SECRET_ID));
    let message = sign_in_error(pull(&source, Selection::default()).await);
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert!(message.contains("Value (not its Secret ID)"), "{message}");
    assert!(message.contains("correlation id "), "{message}");
    assert!(!message.contains(graph_sim::SECRET_ID), "{message}");
}

#[tokio::test]
async fn expired_secret() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    sim.with(|s| s.apps[0].secret_expired = true);
    let message = sign_in_error(pull(&source(&sim), Selection::default()).await);
    assert!(message.contains("AADSTS7000222"), "{message}");
    assert!(message.contains("has expired"), "{message}");
}

#[tokio::test]
async fn unknown_app() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    let mut source = source(&sim);
    source.client_id = "00000000-1111-4222-8333-444444444444".to_owned();
    let message = sign_in_error(pull(&source, Selection::default()).await);
    assert!(message.contains("AADSTS700016"), "{message}");
    assert!(
        message.contains("no application with client_id 00000000-1111-4222-8333-444444444444"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_tenant_mentions_the_cloud() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    let mut source = source(&sim);
    source.tenant_id = "contoso.example".to_owned();
    let message = sign_in_error(pull(&source, Selection::default()).await);
    assert!(message.contains("AADSTS90002"), "{message}");
    assert!(
        message.contains("tenant contoso.example was not found"),
        "{message}"
    );
    assert!(message.contains("`cloud`"), "{message}");
}

#[tokio::test]
async fn missing_permission_names_it_and_admin_consent() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    sim.with(|s| s.apps[0].roles.clear());
    let error = pull(&source(&sim), Selection::default()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, GraphError::Refused { status: 403, .. }),
        "{error:?}"
    );
    assert!(message.contains("Authorization_RequestDenied"), "{message}");
    assert!(message.contains("User.Read.All"), "{message}");
    assert!(message.contains("Grant admin consent"), "{message}");
    assert!(message.contains("[request-id "), "{message}");
    assert!(error.request_id().is_some());
}

#[tokio::test]
async fn group_scope_needs_group_member_permission() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    sim.with(|s| s.apps[0].roles = vec!["User.Read.All".to_owned()]);
    let mut source = source(&sim);
    source.group = Some(tenant::STAFF_GROUP.to_owned());
    let message = pull(&source, Selection::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("GroupMember.Read.All"), "{message}");
}

fn certificate_source(sim: &GraphSim, key: &str, algorithm: AssertionAlgorithm) -> SourceConfig {
    let fixtures = repo().join("tests/fixtures");
    let certificate = std::fs::read(fixtures.join("app.crt")).unwrap();
    sim.with(|s| assert!(s.apps[0].upload_certificate(&certificate)));
    let mut source = source(sim);
    source.credential = Credential::Certificate {
        certificate: fixtures.join("app.crt"),
        private_key: fixtures.join(key),
        algorithm,
    };
    source
}

#[tokio::test]
async fn certificate_assertion_is_verified_ps256_by_default() {
    let sim = GraphSim::start(Tenant::synthetic(5, 1)).unwrap();
    let source = certificate_source(&sim, "app.key", AssertionAlgorithm::Ps256);
    let users = pull(&source, Selection::default()).await.unwrap();
    assert_eq!(users.len(), 5);
    let verified = sim.with(|s| s.token_log()[0].assertion.clone());
    assert_eq!(verified.as_deref(), Some("PS256 x5t#S256"));
}

#[tokio::test]
async fn certificate_assertion_rs256_with_sha1_thumbprint() {
    let sim = GraphSim::start(Tenant::synthetic(5, 1)).unwrap();
    let source = certificate_source(&sim, "app.key", AssertionAlgorithm::Rs256);
    pull(&source, Selection::default()).await.unwrap();
    let verified = sim.with(|s| s.token_log()[0].assertion.clone());
    assert_eq!(verified.as_deref(), Some("RS256 x5t"));
}

#[tokio::test]
async fn assertion_signed_by_another_key_is_refused() {
    let sim = GraphSim::start(Tenant::synthetic(5, 1)).unwrap();
    let source = certificate_source(&sim, "other.key", AssertionAlgorithm::Ps256);
    let message = sign_in_error(pull(&source, Selection::default()).await);
    assert!(message.contains("AADSTS700027"), "{message}");
    assert!(message.contains("upload this certificate"), "{message}");
}

#[tokio::test]
async fn token_shorter_than_the_pull_is_renewed() {
    let sim = GraphSim::start(Tenant::synthetic(1200, 7)).unwrap();
    sim.with(|s| {
        s.behaviour.token_lifetime_secs = 1;
        s.behaviour.latency = Duration::from_millis(120);
    });
    let mut source = source(&sim);
    source.page_size = 100;
    let expected = sim.with(|s| s.tenant.ids());
    let users = pull(&source, Selection::default()).await.unwrap();
    assert_eq!(ids(&users), expected);
    let (tokens, rejected) = sim.with(|s| {
        let rejected = s.graph_log().iter().filter(|l| l.status == 401).count();
        (s.token_log().len(), rejected)
    });
    // 12 pages × 120 ms outlast a 1-second token at least once.
    assert!(tokens >= 2, "{tokens} token(s)");
    assert_eq!(rejected, 0, "tokens are renewed before they expire");
}

#[tokio::test]
async fn revoked_token_is_replaced_once_then_the_error_is_clear() {
    let sim = GraphSim::start(Tenant::synthetic(30, 7)).unwrap();
    sim.with(|s| {
        s.behaviour.faults.insert(2, Fault::Unauthorized);
    });
    let mut source = source(&sim);
    source.page_size = 10;
    let users = pull(&source, Selection::default()).await.unwrap();
    assert_eq!(users.len(), 30);
    assert_eq!(sim.with(|s| s.token_log().len()), 2);

    sim.with(|s| {
        s.log.clear();
        s.behaviour.faults.insert(5, Fault::Unauthorized);
        s.behaviour.faults.insert(6, Fault::Unauthorized);
    });
    let error = pull(&source, Selection::default()).await.unwrap_err();
    assert!(
        matches!(error, GraphError::Refused { status: 401, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("rejected a fresh access token"),
        "{error}"
    );
}

// ----- secretless sign-in: workload identity and managed identity ---------------------------

/// The default app with a federated credential for the default service account, signing in
/// with the token in `file`.
fn federated_source(sim: &GraphSim, file: &std::path::Path) -> SourceConfig {
    sim.with(|s| s.apps[0].federated = Some(graph_sim::Federated::default()));
    SourceConfig {
        credential: Credential::WorkloadIdentity {
            token_file: file.to_path_buf(),
        },
        ..source(sim)
    }
}

fn fresh_federated_token() -> String {
    graph_sim::federated_token(
        graph_sim::FEDERATED_SUBJECT,
        graph_sim::FEDERATED_AUDIENCE,
        3600,
    )
}

/// The federated tokens the token endpoint accepted, in order.
fn federated_tokens(sim: &GraphSim) -> Vec<String> {
    sim.with(|s| {
        s.token_log()
            .iter()
            .filter_map(|l| l.federated_token.clone())
            .collect()
    })
}

#[tokio::test]
async fn workload_identity_sends_the_file_and_rereads_it_after_rotation() {
    let sim = GraphSim::start(Tenant::synthetic(30, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let first = fresh_federated_token();
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let source = federated_source(&sim, &file);
    let client = client(&source);
    let query = UserQuery::new(&source, Selection::default());
    let users = UserPager::new(Arc::clone(&client), &query)
        .collect()
        .await
        .unwrap();
    assert_eq!(users.len(), 30);
    assert_eq!(federated_tokens(&sim), vec![first.clone()]);

    // The kubelet rotates the file; the old access token stops working, so the next pull
    // asks for a new one with what the file holds now.
    let second = fresh_federated_token();
    assert_ne!(first, second);
    std::fs::write(&file, &second).unwrap();
    sim.with(|s| s.revoke_tokens());
    let users = UserPager::new(Arc::clone(&client), &query)
        .collect()
        .await
        .unwrap();
    assert_eq!(users.len(), 30);
    assert_eq!(federated_tokens(&sim), vec![first, second]);
    let token_requests = sim.with(|s| s.token_log().len());
    assert_eq!(token_requests, 2);
}

#[tokio::test]
async fn a_missing_federated_token_file_is_a_sign_in_error_naming_it() {
    let sim = GraphSim::start(Tenant::synthetic(3, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-such-token");
    let source = federated_source(&sim, &file);
    let error = pull(&source, Selection::default()).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, GraphError::Credential(_)), "{error:?}");
    assert!(message.starts_with("sign-in failed"), "{message}");
    assert!(
        message.contains(&format!(
            "cannot read the federated token file {}",
            file.display()
        )),
        "{message}"
    );
    assert!(message.contains("azure.workload.identity/use"), "{message}");
    assert_eq!(sim.with(|s| s.token_log().len()), 0, "nothing is sent");
}

#[tokio::test]
async fn an_expired_federated_token_is_refused_before_it_is_sent() {
    let sim = GraphSim::start(Tenant::synthetic(3, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let expired = graph_sim::federated_token(
        graph_sim::FEDERATED_SUBJECT,
        graph_sim::FEDERATED_AUDIENCE,
        -60,
    );
    std::fs::write(&file, &expired).unwrap();
    let error = pull(&federated_source(&sim, &file), Selection::default())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "the federated token in {} expired at",
            file.display()
        )),
        "{message}"
    );
    assert!(!message.contains(&expired), "{message}");
    assert_eq!(sim.with(|s| s.token_log().len()), 0);
}

#[tokio::test]
async fn a_federated_token_for_another_subject_is_refused_by_entra() {
    let sim = GraphSim::start(Tenant::synthetic(3, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let token = graph_sim::federated_token(
        "system:serviceaccount:other:default",
        graph_sim::FEDERATED_AUDIENCE,
        600,
    );
    std::fs::write(&file, &token).unwrap();
    let message = sign_in_error(pull(&federated_source(&sim, &file), Selection::default()).await);
    assert!(message.contains("AADSTS70021"), "{message}");
    assert!(message.contains("Federated credentials"), "{message}");
    assert!(!message.contains(&token), "{message}");
}

fn managed_source(
    sim: &GraphSim,
    endpoint: ManagedIdentityEndpoint,
    identity: Option<&str>,
) -> SourceConfig {
    SourceConfig {
        client_id: identity.unwrap_or_default().to_owned(),
        credential: Credential::ManagedIdentity {
            endpoint,
            identity: identity.map(str::to_owned),
        },
        ..source(sim)
    }
}

fn imds(sim: &GraphSim) -> ManagedIdentityEndpoint {
    ManagedIdentityEndpoint::Imds(
        Url::parse(&format!("{}{}", sim.url(), graph_sim::IMDS_PATH)).unwrap(),
    )
}

fn app_service(sim: &GraphSim) -> ManagedIdentityEndpoint {
    ManagedIdentityEndpoint::AppService {
        url: Url::parse(&format!("{}{}", sim.url(), graph_sim::APP_SERVICE_PATH)).unwrap(),
        header: Secret::literal(graph_sim::IDENTITY_HEADER),
    }
}

/// The managed identity requests the simulator received: (path, client_id asked for).
fn identity_requests(sim: &GraphSim) -> Vec<(String, Option<String>)> {
    sim.with(|s| {
        s.token_log()
            .iter()
            .map(|l| (l.path.clone(), l.identity.clone()))
            .collect()
    })
}

#[tokio::test]
async fn the_system_assigned_identity_signs_in_through_the_instance_metadata_service() {
    let sim = GraphSim::start(Tenant::synthetic(12, 5)).unwrap();
    let source = managed_source(&sim, imds(&sim), None);
    let client = client(&source);
    let token = client.tokens().token().await.unwrap();
    assert_eq!(token.roles(), vec!["User.Read.All", "GroupMember.Read.All"]);
    assert!(
        token.lifetime > Duration::from_secs(3000),
        "{:?}",
        token.lifetime
    );
    let users = pull(&source, Selection::default()).await.unwrap();
    assert_eq!(users.len(), 12);
    assert_eq!(
        identity_requests(&sim),
        vec![(graph_sim::IMDS_PATH.to_owned(), None); 2]
    );
}

#[tokio::test]
async fn a_user_assigned_identity_signs_in_through_app_service() {
    let sim = GraphSim::start(Tenant::synthetic(12, 5)).unwrap();
    let source = managed_source(&sim, app_service(&sim), Some(graph_sim::USER_IDENTITY));
    // App Service answers with `expires_on` only: the lifetime comes from it.
    let token = client(&source).tokens().token().await.unwrap();
    assert!(
        token.lifetime > Duration::from_secs(3000),
        "{:?}",
        token.lifetime
    );
    let users = pull(&source, Selection::default()).await.unwrap();
    assert_eq!(users.len(), 12);
    assert_eq!(
        identity_requests(&sim),
        vec![
            (
                graph_sim::APP_SERVICE_PATH.to_owned(),
                Some(graph_sim::USER_IDENTITY.to_owned())
            );
            2
        ]
    );
}

#[tokio::test]
async fn a_managed_identity_token_is_renewed_like_any_other() {
    let sim = GraphSim::start(Tenant::synthetic(30, 5)).unwrap();
    sim.with(|s| s.behaviour.faults.insert(2, Fault::Unauthorized));
    let mut source = managed_source(&sim, imds(&sim), Some(graph_sim::USER_IDENTITY));
    source.page_size = 10;
    let users = pull(&source, Selection::default()).await.unwrap();
    assert_eq!(users.len(), 30);
    assert_eq!(identity_requests(&sim).len(), 2);
}

#[tokio::test]
async fn an_unknown_user_assigned_identity_is_named_in_both_forms() {
    const STRANGER: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";
    let sim = GraphSim::start(Tenant::synthetic(3, 5)).unwrap();
    for (endpoint, said) in [
        (imds(&sim), "Identity not found"),
        (
            app_service(&sim),
            "Unable to load the proper Managed Identity",
        ),
    ] {
        let source = managed_source(&sim, endpoint, Some(STRANGER));
        let message = sign_in_error(pull(&source, Selection::default()).await);
        assert!(message.contains("HTTP 400"), "{message}");
        assert!(message.contains(said), "{message}");
        assert!(
            message.contains(&format!("user-assigned identity with client id {STRANGER}")),
            "{message}"
        );
        assert!(!message.contains(graph_sim::IDENTITY_HEADER), "{message}");
    }
}

#[tokio::test]
async fn a_resource_without_a_system_assigned_identity_says_to_turn_it_on() {
    let sim = GraphSim::start(Tenant::synthetic(3, 5)).unwrap();
    sim.with(|s| s.identities.retain(|i| !i.system_assigned));
    let message = sign_in_error(
        pull(
            &managed_source(&sim, imds(&sim), None),
            Selection::default(),
        )
        .await,
    );
    assert!(message.contains("Identity not found"), "{message}");
    assert!(
        message.contains("system-assigned identity turned on"),
        "{message}"
    );
}

#[tokio::test]
async fn a_wrong_identity_header_is_refused() {
    let sim = GraphSim::start(Tenant::synthetic(3, 5)).unwrap();
    let endpoint = ManagedIdentityEndpoint::AppService {
        url: Url::parse(&format!("{}{}", sim.url(), graph_sim::APP_SERVICE_PATH)).unwrap(),
        header: Secret::literal("not-the-header-value"),
    };
    let message =
        sign_in_error(pull(&managed_source(&sim, endpoint, None), Selection::default()).await);
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!message.contains("not-the-header-value"), "{message}");
}

// ----- paging, $select, filters -----------------------------------------------------------

#[tokio::test]
async fn pages_of_2500_users_arrive_complete_and_once() {
    let sim = GraphSim::start(Tenant::synthetic(2500, 42)).unwrap();
    let expected = sim.with(|s| s.tenant.ids());
    let users = pull(&source(&sim), Selection::default()).await.unwrap();
    assert_eq!(ids(&users), expected);
    let log = sim.with(|s| s.graph_log().into_iter().cloned().collect::<Vec<_>>());
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|l| l.query["$top"] == "999" && l.status == 200)
    );
    assert!(!log[0].query.contains_key("$skiptoken"));
    assert!(log[1..].iter().all(|l| l.query.contains_key("$skiptoken")));
}

#[tokio::test]
async fn select_is_honoured() {
    let sim = GraphSim::start(Tenant::synthetic(50, 3)).unwrap();
    let selection = Selection::of(["department", "employeeId", "onPremisesExtensionAttributes"]);
    let users = pull(&source(&sim), selection).await.unwrap();
    let expected: BTreeSet<&str> = [
        "id",
        "accountEnabled",
        "department",
        "employeeId",
        "onPremisesExtensionAttributes",
    ]
    .into();
    for user in &users {
        let keys: BTreeSet<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, expected, "{user}");
    }
    let select = sim.with(|s| s.graph_log()[0].query["$select"].clone());
    assert_eq!(
        select,
        "accountEnabled,department,employeeId,id,onPremisesExtensionAttributes"
    );
}

#[tokio::test]
async fn advanced_filter_sends_header_and_count_on_every_page() {
    let sim = GraphSim::start(Tenant::synthetic(1500, 9)).unwrap();
    let mut source = source(&sim);
    let filter = Filter::compile("department ne 'Sales' and endsWith(mail,'@contoso.example')")
        .unwrap()
        .unwrap();
    let expected: Vec<String> = sim.with(|s| {
        s.tenant
            .users()
            .filter(|u| filter.matches(u))
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    });
    assert!(expected.len() > 300, "the filter keeps many users");
    source.filter = Some(filter);
    source.page_size = 200;
    let users = pull(&source, Selection::of(["department", "mail"]))
        .await
        .unwrap();
    assert_eq!(ids(&users), expected);
    let log = sim.with(|s| s.graph_log().into_iter().cloned().collect::<Vec<_>>());
    assert!(log.len() >= 2, "several pages");
    for request in &log {
        assert_eq!(request.consistency_level.as_deref(), Some("eventual"));
        assert_eq!(
            request.query.get("$count").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            request.query["$filter"],
            "department ne 'Sales' and endsWith(mail,'@contoso.example')"
        );
    }
}

#[tokio::test]
async fn simulator_refuses_what_graph_refuses() {
    let sim = GraphSim::start(Tenant::synthetic(5, 1)).unwrap();
    let source = source(&sim);
    let client = client(&source);
    let root = sim.url();
    let refused = |url: String, advanced: bool| {
        let client = Arc::clone(&client);
        async move {
            match client.get_page(&url, advanced, "probe").await {
                Err(GraphError::Refused { status, code, .. }) => (status, code),
                other => panic!("{url}: expected a refusal, got {other:?}"),
            }
        }
    };
    let cases = [
        (
            format!("{root}/v1.0/users?$filter=endsWith(mail,'x')"),
            false,
            "Request_UnsupportedQuery",
        ),
        (
            format!("{root}/v1.0/users?$top=1000"),
            false,
            "Request_UnsupportedQuery",
        ),
        (
            format!("{root}/v1.0/users?$select=nosuchThing"),
            false,
            "Request_BadRequest",
        ),
        (
            format!("{root}/v1.0/users?$filter=department eq"),
            false,
            "BadRequest",
        ),
        (
            format!("{root}/v1.0/users?$expand=manager&$count=true&$filter=department ne 'x'"),
            true,
            "Request_UnsupportedQuery",
        ),
    ];
    for (url, advanced, code) in cases {
        assert_eq!(
            refused(url.clone(), advanced).await,
            (400, code.to_owned()),
            "{url}"
        );
    }
    // Without $select: Graph's default properties, nulls included.
    let page = client
        .get_page(&format!("{root}/v1.0/users"), false, "probe")
        .await
        .unwrap();
    let first: Value = serde_json::from_str(page.value[0].get()).unwrap();
    let keys: BTreeSet<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(keys.contains("businessPhones") && keys.contains("userPrincipalName"));
    assert!(!keys.contains("accountEnabled") && !keys.contains("department"));
}

#[tokio::test]
async fn group_scope_reads_transitive_members() {
    let sim = GraphSim::start(Tenant::synthetic(400, 5)).unwrap();
    let expected: Vec<String> = sim.with(|s| {
        s.tenant
            .users()
            .filter(|u| matches!(u["employeeType"].as_str(), Some("Staff" | "Admin")))
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    });
    let mut source = source(&sim);
    source.group = Some(tenant::STAFF_GROUP.to_owned());
    let users = pull(&source, Selection::of(["employeeType"]))
        .await
        .unwrap();
    assert_eq!(ids(&users), expected);
    let path = sim.with(|s| s.graph_log()[0].path.clone());
    assert_eq!(
        path,
        format!(
            "/v1.0/groups/{}/transitiveMembers/microsoft.graph.user",
            tenant::STAFF_GROUP
        )
    );
}

#[tokio::test]
async fn manager_is_expanded_with_its_own_select() {
    let sim = GraphSim::start(Tenant::synthetic(40, 5)).unwrap();
    let selection = Selection {
        properties: ["displayName".to_owned()].into(),
        manager: Some(["mail".to_owned()].into()),
        ..Selection::default()
    };
    let users = pull(&source(&sim), selection).await.unwrap();
    sim.with(|s| {
        for user in &users {
            let id = user["id"].as_str().unwrap();
            match s.tenant.manager_of(id) {
                Some(manager) => {
                    assert_eq!(user["manager"]["id"], manager);
                    assert_eq!(
                        user["manager"]["mail"],
                        s.tenant.user(manager).unwrap()["mail"]
                            .clone()
                            .as_str()
                            .map_or(Value::Null, Value::from)
                    );
                }
                None => assert!(user.get("manager").is_none()),
            }
        }
        assert_eq!(
            s.graph_log()[0].query["$expand"],
            "manager($select=id,mail)"
        );
    });
}

#[tokio::test]
async fn with_an_advanced_filter_the_manager_is_read_apart_and_put_back() {
    let sim = GraphSim::start(Tenant::synthetic(300, 6)).unwrap();
    let mut source = source(&sim);
    source.filter = Filter::compile("department ne 'Sales'").unwrap();
    let selection = Selection {
        properties: ["department".to_owned()].into(),
        manager: Some(["mail".to_owned()].into()),
        ..Selection::default()
    };
    let query = UserQuery::new(&source, selection);
    assert!(query.managers_apart());
    let client = Arc::new(GraphClient::new(&source).unwrap());
    let managers = Managers::read(&client, &query).await.unwrap().unwrap();
    let mut users = UserPager::new(client, &query).collect().await.unwrap();
    assert!(!users.is_empty());
    sim.with(|s| {
        let mut with_manager = 0;
        for user in &mut users {
            assert_ne!(user["department"], "Sales");
            assert!(user.get("manager").is_none(), "Graph cannot expand here");
            managers.attach(user);
            let id = user["id"].as_str().unwrap();
            match s.tenant.manager_of(id) {
                Some(manager) => {
                    with_manager += 1;
                    assert_eq!(user["manager"]["id"], manager);
                    assert_eq!(user["manager"]["mail"], s.tenant.user(manager).unwrap()["mail"]);
                }
                None => assert!(user.get("manager").is_none()),
            }
        }
        assert!(with_manager > 0);
        // The users: advanced mode, no $expand. The managers: every user, standard mode.
        let log = s.graph_log();
        let filtered: Vec<_> = log.iter().filter(|l| l.query.contains_key("$filter")).collect();
        let expanded: Vec<_> = log.iter().filter(|l| l.query.contains_key("$expand")).collect();
        assert!(filtered.iter().all(|l| l.consistency_level.is_some() && !l.query.contains_key("$expand")));
        assert!(!expanded.is_empty());
        assert!(expanded.iter().all(|l| l.consistency_level.is_none() && l.query["$select"] == "accountEnabled,id"));
        assert_eq!(expanded[0].query["$expand"], "manager($select=id,mail)");
    });
}

// ----- failures -------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_server_errors_and_broken_connections_lose_nobody() {
    let sim = GraphSim::start(Tenant::synthetic(2500, 11)).unwrap();
    sim.with(|s| {
        let faults = &mut s.behaviour.faults;
        faults.insert(2, Fault::Throttle(0.05));
        faults.insert(3, Fault::ServerError(503, Some(0.02)));
        faults.insert(5, Fault::Drop);
        faults.insert(7, Fault::ServerError(504, None));
        faults.insert(9, Fault::Stall(Duration::from_secs(3)));
        faults.insert(11, Fault::Throttle(0.1));
    });
    let mut source = source(&sim);
    source.page_size = 400;
    let expected = sim.with(|s| s.tenant.ids());
    let mut policy = quick();
    policy.timeout = Duration::from_millis(800);
    let client = Arc::new(GraphClient::with_policy(&source, policy).unwrap());
    let query = UserQuery::new(&source, Selection::default());
    let mut pager = UserPager::new(Arc::clone(&client), &query);
    let mut users = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        users.extend(page);
    }
    assert_eq!(users.len(), expected.len(), "nobody duplicated");
    assert_eq!(ids(&users), expected, "nobody lost");
    assert_eq!(pager.duplicates, 0);
    let statuses: Vec<u16> = sim.with(|s| s.graph_log().iter().map(|l| l.status).collect());
    for status in [429, 503, 0, 504] {
        assert!(statuses.contains(&status), "{status} in {statuses:?}");
    }
    assert!(
        client
            .stats
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 6
    );
}

#[tokio::test]
async fn a_page_that_always_fails_fails_the_pull_naming_it() {
    let sim = GraphSim::start(Tenant::synthetic(2500, 13)).unwrap();
    sim.with(|s| s.behaviour.failing_page = Some(2));
    let mut source = source(&sim);
    source.page_size = 500;
    let error = pull(&source, Selection::default()).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, GraphError::GaveUp { attempts: 4, .. }),
        "{error:?}"
    );
    assert!(
        message.starts_with(
            "page 3 of GET /v1.0/users (after 1000 users) failed after 4 attempt(s): HTTP 503"
        ),
        "{message}"
    );
    assert!(message.contains("[request-id "), "{message}");
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let sim = GraphSim::start(Tenant::synthetic(3, 1)).unwrap();
    let client = client(&source(&sim));
    let error = client
        .get_page(
            "https://evil.example/v1.0/users",
            false,
            "page 2 of GET /v1.0/users",
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("points away from"), "{error}");
    assert_eq!(
        sim.with(|s| s.log.len()),
        0,
        "not even a token was asked for"
    );
}

// ----- delta ----------------------------------------------------------------------------------

struct DeltaRun {
    sim: GraphSim,
    source: SourceConfig,
    query: UserQuery,
    link: Option<String>,
}

impl DeltaRun {
    async fn start(filter: Option<&str>) -> (DeltaRun, Vec<Change>) {
        let sim = GraphSim::start(Tenant::synthetic(300, 21)).unwrap();
        sim.with(|s| s.behaviour.delta_page_size = 70);
        let mut source = source(&sim);
        source.filter = filter.and_then(|f| Filter::compile(f).unwrap());
        let query = UserQuery::new(&source, Selection::of(["displayName", "jobTitle"]));
        let mut run = DeltaRun {
            sim,
            source,
            query,
            link: None,
        };
        let (full, changes) = run.round().await;
        assert!(full);
        (run, changes)
    }

    async fn round(&mut self) -> (bool, Vec<Change>) {
        let client = client(&self.source);
        let round = delta_round(&client, &self.query, self.link.as_deref())
            .await
            .unwrap();
        self.link = Some(round.delta_link);
        (round.full, round.changes)
    }

    async fn changes(&mut self) -> Vec<Change> {
        let (full, changes) = self.round().await;
        assert!(!full);
        changes
    }

    fn some_user(&self, n: usize) -> String {
        self.sim.with(|s| s.tenant.ids()[n].clone())
    }

    fn current(&self, id: &str) -> Value {
        self.sim.with(|s| {
            let user = s.tenant.user(id).unwrap();
            json!({
                "id": id,
                "accountEnabled": user["accountEnabled"],
                "displayName": user["displayName"],
                "jobTitle": user.get("jobTitle").cloned().unwrap_or(Value::Null),
            })
        })
    }
}

fn gone(id: &str, reason: GoneReason) -> Change {
    Change::Gone {
        id: id.to_owned(),
        reason,
    }
}

#[tokio::test]
async fn delta_reports_exactly_each_kind_of_change() {
    let (mut run, first) = DeltaRun::start(None).await;
    assert_eq!(first.len(), 300);
    assert!(run.changes().await.is_empty(), "nothing changed");

    let alice = run.some_user(10);
    run.sim.with(|s| {
        s.tenant
            .update(&alice, json!({ "jobTitle": "Chief Mapper" }))
    });
    assert_eq!(
        run.changes().await,
        vec![Change::Present(run.current(&alice))]
    );

    run.sim.with(|s| s.tenant.set_enabled(&alice, false));
    let changes = run.changes().await;
    assert_eq!(changes, vec![Change::Present(run.current(&alice))]);
    assert_eq!(run.current(&alice)["accountEnabled"], false);

    run.sim.with(|s| s.tenant.set_enabled(&alice, true));
    assert_eq!(
        run.changes().await,
        vec![Change::Present(run.current(&alice))]
    );

    run.sim.with(|s| s.tenant.soft_delete(&alice));
    assert_eq!(
        run.changes().await,
        vec![gone(&alice, GoneReason::SoftDeleted)]
    );

    run.sim.with(|s| s.tenant.restore(&alice));
    assert_eq!(
        run.changes().await,
        vec![Change::Present(run.current(&alice))]
    );

    run.sim.with(|s| s.tenant.hard_delete(&alice));
    assert_eq!(run.changes().await, vec![gone(&alice, GoneReason::Deleted)]);

    let hire = tenant::new_hire(21, 1);
    let hire_id = run.sim.with(|s| s.tenant.add(hire));
    assert_eq!(
        run.changes().await,
        vec![Change::Present(run.current(&hire_id))]
    );
}

#[tokio::test]
async fn delta_collapses_repeats_and_completes_partial_updates() {
    let (mut run, _) = DeltaRun::start(None).await;
    let bob = run.some_user(3);
    run.sim.with(|s| {
        s.tenant.update(&bob, json!({ "jobTitle": "One" }));
        s.tenant.update(&bob, json!({ "jobTitle": "Two" }));
        s.tenant.set_enabled(&bob, false);
        s.log.clear();
    });
    let changes = run.changes().await;
    assert_eq!(changes, vec![Change::Present(run.current(&bob))]);
    let Change::Present(user) = &changes[0] else {
        unreachable!()
    };
    assert_eq!(user["jobTitle"], "Two");
    // Graph sent only the changed properties; the user was read again in full.
    let reread = run.sim.with(|s| {
        s.graph_log()
            .iter()
            .any(|l| l.path == "/v1.0/users" && l.query["$filter"] == format!("id in ('{bob}')"))
    });
    assert!(reread);
}

#[tokio::test]
async fn delta_applies_the_filter_locally() {
    let (mut run, first) = DeltaRun::start(Some("jobTitle eq 'Engineer'")).await;
    let engineers = run.sim.with(|s| {
        s.tenant
            .users()
            .filter(|u| u["jobTitle"] == "Engineer")
            .count()
    });
    assert_eq!(
        first.len(),
        engineers,
        "a full round lists only users in scope"
    );
    let engineer = run.sim.with(|s| {
        s.tenant
            .users()
            .find(|u| u["jobTitle"] == "Engineer")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    run.sim.with(|s| {
        s.tenant
            .update(&engineer, json!({ "jobTitle": "Director" }))
    });
    assert_eq!(
        run.changes().await,
        vec![gone(&engineer, GoneReason::OutOfScope)]
    );
    run.sim.with(|s| {
        s.tenant
            .update(&engineer, json!({ "jobTitle": "Engineer" }))
    });
    assert_eq!(
        run.changes().await,
        vec![Change::Present(run.current(&engineer))]
    );
}

#[tokio::test]
async fn an_expired_delta_link_falls_back_to_a_full_round() {
    let (mut run, first) = DeltaRun::start(None).await;
    run.sim.with(|s| s.expire_delta_links());
    let (full, changes) = run.round().await;
    assert!(full, "Graph forgot the state: everything is listed again");
    assert_eq!(changes.len(), first.len());
    let refused = run
        .sim
        .with(|s| s.graph_log().iter().any(|l| l.status == 410));
    assert!(refused);
    assert!(run.changes().await.is_empty(), "the new link works");
}

// ----- `userload check` and `userload pull` --------------------------------------------------

/// A config pointing at the Graph simulator, with `extra` lines in [source], and at a SCIM
/// simulator (returned: it answers as long as it is kept).
fn sim_config(dir: &std::path::Path, sim: &GraphSim, extra: &str) -> ScimSim {
    let url = sim.url();
    let target = ScimSim::start().unwrap();
    let text = format!(
        "[source]\ntenant_id = {}\nclient_id = {}\nsecret = {}\nauthority = {url}\ndomain = {url}\n{extra}\n\
         [target]\ntype = scim\nurl = {}\ntoken = target-token\n",
        graph_sim::TENANT_ID,
        graph_sim::CLIENT_ID,
        graph_sim::SECRET,
        target.url(),
    );
    crate::util::write(dir, "userload.ini", &text);
    target
}

#[test]
fn check_is_all_green_against_a_healthy_tenant() {
    let sim = GraphSim::start(Tenant::synthetic(120, 4)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(
        dir.path(),
        &sim,
        "filter = endsWith(mail,'@contoso.example')",
    );
    let expected = sim.with(|s| {
        s.tenant
            .users()
            .filter(|u| {
                u["mail"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("@contoso.example"))
            })
            .count()
    });
    let (code, stdout, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("✓ sign-in: token for app"), "{stdout}");
    assert!(
        stdout.contains("✓ permission: User.Read.All granted"),
        "{stdout}"
    );
    assert!(stdout.contains("advanced query mode"), "{stdout}");
    assert!(
        stdout.contains(&format!("✓ users: {expected} user(s) in scope")),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ target: SCIM at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("0 users listed"), "{stdout}");
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(!format!("{stdout}{stderr}").contains(graph_sim::SECRET));
}

#[test]
fn check_counts_a_standard_filter_with_a_separate_probe() {
    let sim = GraphSim::start(Tenant::synthetic(60, 4)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(dir.path(), &sim, "");
    let (code, stdout, _) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("✓ users: 60 user(s) in scope"), "{stdout}");
}

#[test]
fn check_is_red_without_permissions_and_exits_2() {
    let sim = GraphSim::start(Tenant::synthetic(10, 4)).unwrap();
    sim.with(|s| s.apps[0].roles = vec!["Mail.Read".to_owned()]);
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(
        dir.path(),
        &sim,
        &format!("group = {}", tenant::STAFF_GROUP),
    );
    let (code, stdout, _) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.contains("✗ permission: User.Read.All is not granted (the token grants: Mail.Read)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ permission: GroupMember.Read.All is not granted"),
        "{stdout}"
    );
    assert!(stdout.contains("Grant admin consent"), "{stdout}");
}

#[test]
fn check_reports_a_wrong_secret_in_one_line() {
    let sim = GraphSim::start(Tenant::synthetic(10, 4)).unwrap();
    sim.with(|s| s.apps[0].secret = Some("another value".to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(dir.path(), &sim, "");
    let (code, stdout, _) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2);
    let line = stdout.lines().find(|l| l.starts_with("✗ sign-in")).unwrap();
    assert!(
        line.contains("AADSTS7000215") && line.contains("correlation id"),
        "{line}"
    );
}

/// A config signing in to the Graph simulator with `source_lines` (no secret), and a SCIM
/// simulator as the target (returned: it answers as long as it is kept).
fn secretless_config(dir: &std::path::Path, sim: &GraphSim, source_lines: &str) -> ScimSim {
    let url = sim.url();
    let target = ScimSim::start().unwrap();
    let text = format!(
        "[source]\n{source_lines}\nauthority = {url}\ndomain = {url}\n\n\
         [target]\ntype = scim\nurl = {}\ntoken = target-token\n",
        target.url(),
    );
    crate::util::write(dir, "userload.ini", &text);
    target
}

#[test]
fn validate_and_check_sign_in_with_workload_identity_from_the_environment() {
    let sim = GraphSim::start(Tenant::synthetic(20, 4)).unwrap();
    sim.with(|s| s.apps[0].federated = Some(graph_sim::Federated::default()));
    let dir = tempfile::tempdir().unwrap();
    let _target = secretless_config(dir.path(), &sim, "credential = workload_identity");
    let file = dir.path().join("azure-identity-token");
    let token = fresh_federated_token();
    std::fs::write(&file, &token).unwrap();
    let run = |command: &str| {
        crate::util::outcome(
            &crate::util::userload_command(dir.path(), &[command, "--config", "userload.ini"])
                .env("AZURE_TENANT_ID", graph_sim::TENANT_ID)
                .env("AZURE_CLIENT_ID", graph_sim::CLIENT_ID)
                .env("AZURE_FEDERATED_TOKEN_FILE", &file)
                .output()
                .unwrap(),
        )
    };
    let (code, stdout, stderr) = run("validate");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "client        {} with workload identity (federated token file {})",
            graph_sim::CLIENT_ID,
            file.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("tenant        {}", graph_sim::TENANT_ID)),
        "{stdout}"
    );
    let (code, stdout, stderr) = run("check");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "✓ sign-in: token for app {} in tenant {} with workload identity",
            graph_sim::CLIENT_ID,
            graph_sim::TENANT_ID
        )),
        "{stdout}"
    );
    assert!(!format!("{stdout}{stderr}").contains(&token));
    assert_eq!(federated_tokens(&sim), vec![token]);
}

#[test]
fn check_names_a_missing_federated_token_file_and_validate_a_missing_setting() {
    let sim = GraphSim::start(Tenant::synthetic(5, 4)).unwrap();
    sim.with(|s| s.apps[0].federated = Some(graph_sim::Federated::default()));
    let dir = tempfile::tempdir().unwrap();
    let ids = format!(
        "tenant_id = {}\nclient_id = {}\ncredential = workload_identity",
        graph_sim::TENANT_ID,
        graph_sim::CLIENT_ID
    );
    let _target = secretless_config(dir.path(), &sim, &ids);
    // Neither the key nor the variable: a config error, saying where the file comes from.
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["validate", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("missing `federated_token_file`"),
        "{stderr}"
    );
    assert!(stderr.contains("AZURE_FEDERATED_TOKEN_FILE"), "{stderr}");

    // No ids in the config nor in the environment: both are missing, naming the variables.
    let _target = secretless_config(
        dir.path(),
        &sim,
        "credential = workload_identity\nfederated_token_file = t",
    );
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["validate", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "missing `tenant_id`",
        "AZURE_TENANT_ID",
        "missing `client_id`",
        "AZURE_CLIENT_ID",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }

    let _target = secretless_config(
        dir.path(),
        &sim,
        &format!("{ids}\nfederated_token_file = tokens/gone"),
    );
    let (code, stdout, _) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 2, "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("✗ sign-in")).unwrap();
    assert!(
        line.contains("cannot read the federated token file ./tokens/gone"),
        "{line}"
    );
}

#[test]
fn check_signs_in_with_a_user_assigned_identity_through_app_service() {
    let sim = GraphSim::start(Tenant::synthetic(8, 4)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines = format!(
        "tenant_id = {}\nclient_id = {}\ncredential = managed_identity",
        graph_sim::TENANT_ID,
        graph_sim::USER_IDENTITY
    );
    let _target = secretless_config(dir.path(), &sim, &lines);
    let endpoint = format!("{}{}", sim.url(), graph_sim::APP_SERVICE_PATH);
    let (code, stdout, stderr) = crate::util::outcome(
        &crate::util::userload_command(dir.path(), &["check", "--config", "userload.ini"])
            .env("IDENTITY_ENDPOINT", &endpoint)
            .env("IDENTITY_HEADER", graph_sim::IDENTITY_HEADER)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "✓ sign-in: token for app {} in tenant {} with user-assigned managed identity \
             (App Service identity endpoint {endpoint})",
            graph_sim::USER_IDENTITY,
            graph_sim::TENANT_ID
        )),
        "{stdout}"
    );
    assert!(stdout.contains("✓ users: 8 user(s) in scope"), "{stdout}");
    assert!(!format!("{stdout}{stderr}").contains(graph_sim::IDENTITY_HEADER));
}

#[test]
fn check_signs_in_as_the_system_assigned_identity_at_an_overridden_endpoint() {
    let sim = GraphSim::start(Tenant::synthetic(6, 4)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("{}{}", sim.url(), graph_sim::IMDS_PATH);
    let lines = format!(
        "tenant_id = {}\ncredential = managed_identity\nmanaged_identity_endpoint = {endpoint}",
        graph_sim::TENANT_ID
    );
    let _target = secretless_config(dir.path(), &sim, &lines);
    let (code, stdout, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["check", "--config", "userload.ini"],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "✓ sign-in: token in tenant {} with system-assigned managed identity (instance \
             metadata endpoint {endpoint})",
            graph_sim::TENANT_ID
        )),
        "{stdout}"
    );
    assert!(stdout.contains("✓ users: 6 user(s) in scope"), "{stdout}");
    let asked = identity_requests(&sim);
    assert!(!asked.is_empty());
    assert!(
        asked
            .iter()
            .all(|(path, id)| path == graph_sim::IMDS_PATH && id.is_none()),
        "{asked:?}"
    );
}

#[test]
fn validate_shows_the_system_assigned_identity_at_the_instance_metadata_service() {
    let dir = tempfile::tempdir().unwrap();
    let sim = GraphSim::start(Tenant::synthetic(1, 4)).unwrap();
    let lines = format!(
        "tenant_id = {}\ncredential = managed_identity",
        graph_sim::TENANT_ID
    );
    let _target = secretless_config(dir.path(), &sim, &lines);
    let (code, stdout, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["validate", "--config", "userload.ini"],
    ));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Shown, never asked: validate does not touch the network.
    assert!(
        stdout.contains(
            "client        system-assigned managed identity (instance metadata endpoint \
             http://169.254.169.254/metadata/identity/oauth2/token)"
        ),
        "{stdout}"
    );
    assert!(sim.with(|s| s.log.is_empty()));
}

#[test]
fn pull_writes_every_user_as_json_lines() {
    let sim = GraphSim::start(Tenant::synthetic(2500, 8)).unwrap();
    sim.with(|s| s.behaviour.faults.insert(2, Fault::Throttle(0.01)));
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(dir.path(), &sim, "page_size = 700");
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &[
            "pull",
            "--config",
            "userload.ini",
            "--out",
            "users.jsonl",
            "--select",
            "displayName,mail",
        ],
    ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("pulled 2500 users in 4 page(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("1 throttled"), "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("users.jsonl")).unwrap();
    let users: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ids(&users), sim.with(|s| s.tenant.ids()));
    assert!(
        users.iter().all(|u| u.as_object().unwrap().len() == 4),
        "id, accountEnabled, displayName, mail"
    );
    // The file can be read back by `filter test` and mapping previews.
    let loaded =
        userload::graph::users_file::UsersFile::load(&dir.path().join("users.jsonl")).unwrap();
    assert_eq!(loaded.users.len(), 2500);
}

#[test]
fn a_failed_pull_leaves_no_file() {
    let sim = GraphSim::start(Tenant::synthetic(300, 8)).unwrap();
    sim.with(|s| {
        s.behaviour.failing_page = Some(1);
    });
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(dir.path(), &sim, "page_size = 100\nmax_attempts = 2");
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["pull", "--config", "userload.ini", "--out", "users.jsonl"],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "error: page 2 of GET /v1.0/users (after 100 users) failed after 2 attempt(s)"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("users.jsonl").exists());
    assert!(!dir.path().join("users.jsonl.partial").exists());
}

#[tokio::test]
async fn delta_links_are_kept_per_query_between_runs() {
    use userload::graph::delta::{DeltaLinkFile, DeltaLinks, scope_key};
    let (run, _) = DeltaRun::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut links = DeltaLinkFile(dir.path().join("delta.json"));
    let scope = scope_key(&run.query);
    assert_eq!(links.load(&scope).unwrap(), None);
    links.save(&scope, run.link.as_deref().unwrap()).unwrap();
    let reopened = DeltaLinkFile(dir.path().join("delta.json"));
    assert_eq!(reopened.load(&scope).unwrap(), run.link);
    // Another selection is another scope: it starts with a full round.
    let other = UserQuery::new(&run.source, Selection::of(["mail"]));
    assert_ne!(scope_key(&other), scope);
    assert_eq!(reopened.load(&scope_key(&other)).unwrap(), None);
    let client = client(&run.source);
    let stored = reopened.load(&scope).unwrap();
    let round = delta_round(&client, &run.query, stored.as_deref())
        .await
        .unwrap();
    assert!(!round.full && round.changes.is_empty());
}

#[test]
fn pull_refuses_a_user_nested_deeper_than_a_run_can_read() {
    let sim = GraphSim::start(Tenant::synthetic(20, 8)).unwrap();
    let property = "extension_0123456789abcdef0123456789abcdef_deep";
    let mut deep = json!(1);
    for _ in 0..300 {
        deep = Value::Array(vec![deep]);
    }
    sim.with(|s| {
        let id = s.tenant.ids()[3].clone();
        s.tenant.update(&id, json!({ property: deep }));
    });
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(dir.path(), &sim, "");
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &[
            "pull",
            "--config",
            "userload.ini",
            "--out",
            "users.jsonl",
            "--select",
            property,
        ],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("a user that is not valid JSON (nested deeper than 127 levels)"),
        "{stderr}"
    );
    assert!(!dir.path().join("users.jsonl").exists());
}

#[test]
fn a_graph_that_pages_in_a_loop_fails_the_pull_fast() {
    let sim = GraphSim::start(Tenant::synthetic(500, 8)).unwrap();
    // From the third page on, every page repeats the same users under a fresh $skiptoken.
    sim.with(|s| s.behaviour.endless_from = Some(2));
    let dir = tempfile::tempdir().unwrap();
    let _target = sim_config(dir.path(), &sim, "page_size = 100");
    let (code, _, stderr) = crate::util::outcome(&crate::util::userload(
        dir.path(),
        &["pull", "--config", "userload.ini", "--out", "users.jsonl"],
    ));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("page 6 of GET /v1.0/users")
            && stderr.contains("3 pages in a row held only users already read: the paging loops"),
        "{stderr}"
    );
    assert!(!dir.path().join("users.jsonl").exists());
    // Six pages read, then it stopped: no endless reading.
    let pages = sim.with(|s| {
        s.graph_log()
            .iter()
            .filter(|r| r.path.contains("/users"))
            .count()
    });
    assert!(pages <= 7, "{pages} requests");
}
