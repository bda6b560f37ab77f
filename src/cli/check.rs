//! `userload check`: live checks against the tenant, as a green/red list, before the first
//! run (and whenever a run fails to start). Reads only; never writes anywhere.

use std::sync::Arc;

use super::{Outcome, color, load_config, load_mapping};
use crate::config::Config;
use crate::graph::groups::{Memberships, resolve};
use crate::graph::licenses::Skus;
use crate::graph::{GraphClient, Selection, UserQuery};
use crate::mapping::Mapping;

/// Permissions that let an app read every user.
const READ_USERS: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Permissions that let an app read group members.
const READ_MEMBERS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The checks' results, printed as they come.
struct Report {
    color: bool,
    failed: bool,
}

impl Report {
    fn pass(&mut self, what: &str, detail: impl AsRef<str>) {
        let mark = if self.color {
            "\x1b[32m✓\x1b[0m"
        } else {
            "✓"
        };
        outln!("{mark} {what}: {}", detail.as_ref());
    }

    fn fail(&mut self, what: &str, detail: impl AsRef<str>) {
        self.failed = true;
        let mark = if self.color {
            "\x1b[31m✗\x1b[0m"
        } else {
            "✗"
        };
        outln!("{mark} {what}: {}", detail.as_ref());
    }
}

pub fn run(path: &std::path::Path) -> Outcome {
    let Some(config) = load_config(path) else {
        return Outcome::Failed;
    };
    let Some(mapping) = load_mapping(&config) else {
        return Outcome::Failed;
    };
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    let mut report = Report {
        color: color() && std::io::IsTerminal::is_terminal(&std::io::stdout()),
        failed: false,
    };
    report.pass(
        "config",
        format!(
            "{} and mapping {} are valid",
            config.path.display(),
            mapping.name()
        ),
    );
    let selection = crate::sync::selection(&mapping);
    runtime.block_on(check_graph(&config, selection, &mut report));
    runtime.block_on(check_target(&config, &mapping, &mut report));
    if report.failed {
        Outcome::Failed
    } else {
        Outcome::Success
    }
}

/// The target: reachable, the credentials accepted, listing (or a lookup) works.
async fn check_target(config: &Config, mapping: &Mapping, report: &mut Report) {
    let target = match crate::targets::connect(config, mapping) {
        Ok(target) => target,
        Err(e) => return report.fail("target", e.to_string()),
    };
    let answer = if config.target.list {
        target.list().await.map(|users| {
            format!(
                "{} answers; {} users listed",
                target.describe(),
                users.len()
            )
        })
    } else {
        // A lookup of a key no user has: proves the filter works without finding anyone.
        let probe = serde_json::Value::from("userload-check-probe-no-such-user");
        target.find(mapping.match_key(), &probe).await.map(|_| {
            format!(
                "{} answers a lookup by {}",
                target.describe(),
                mapping.match_key()
            )
        })
    };
    // A session opened for the check is closed again.
    target.close().await;
    match answer {
        Ok(detail) => report.pass("target", detail),
        Err(e) => report.fail("target", e.to_string()),
    }
}

async fn check_graph(config: &Config, selection: Selection, report: &mut Report) {
    let source = &config.source;
    let query = UserQuery::new(source, selection);
    let client = match GraphClient::new(source) {
        Ok(client) => Arc::new(client),
        Err(e) => return report.fail("sign-in", e.to_string()),
    };
    let token = match client.tokens().token().await {
        Ok(token) => token,
        Err(e) => return report.fail("sign-in", e.to_string()),
    };
    let who = match source.client_id.as_str() {
        // The system-assigned managed identity: the credential names it.
        "" => String::new(),
        client => format!(" for app {client}"),
    };
    report.pass(
        "sign-in",
        format!(
            "token{who} in tenant {} with {} (valid {} min)",
            source.tenant_id,
            source.credential.describe(),
            token.lifetime.as_secs() / 60
        ),
    );

    let roles = token.roles();
    let granted = |wanted: &[&str]| roles.iter().find(|r| wanted.contains(&r.as_str())).cloned();
    let mut permissions_ok = true;
    match granted(READ_USERS) {
        Some(role) => report.pass("permission", format!("{role} granted")),
        None => {
            permissions_ok = false;
            report.fail(
                "permission",
                format!(
                    "User.Read.All is not granted (the token grants: {}); add it as an \
                     application permission under API permissions and press \"Grant admin consent\"",
                    if roles.is_empty() { "nothing".to_owned() } else { roles.join(", ") }
                ),
            );
        }
    }
    let names_groups =
        !source.groups.is_empty() || !source.exclude_groups.is_empty() || query.selection.groups;
    if source.group.is_some() || names_groups {
        match granted(READ_MEMBERS) {
            Some(role) => report.pass("permission", format!("{role} granted (group scope)")),
            None => {
                permissions_ok = false;
                report.fail(
                    "permission",
                    "GroupMember.Read.All is not granted, and `group`, `groups`, \
                     `exclude_groups` and `input_groups` need it; add it as an application \
                     permission and press \"Grant admin consent\"",
                );
            }
        }
    }
    if !permissions_ok {
        return;
    }
    check_inputs(&client, &query, source, report).await;

    let probe = query.url_with_top(client.root(), 1);
    let filter = source
        .filter
        .as_ref()
        .map_or("none (every user)", |f| f.canonical());
    match client
        .get_page(
            probe.as_str(),
            query.advanced(),
            "probe GET /v1.0/users?$top=1",
        )
        .await
    {
        Ok(page) => {
            let mode = if query.advanced() {
                ", advanced query mode"
            } else {
                ""
            };
            report.pass("filter", format!("Graph accepts it: {filter}{mode}"));
            let count = match page.count {
                Some(count) => Some(count),
                None => match query.count_probe(client.root()) {
                    Some(url) => client
                        .get_page(url.as_str(), true, "count probe")
                        .await
                        .ok()
                        .and_then(|p| p.count),
                    None => None,
                },
            };
            match count {
                Some(0) => report.fail("users", "no user is in scope: the filter matches nobody"),
                Some(n) => report.pass("users", format!("{n} user(s) in scope")),
                None if page.value.is_empty() => report.fail("users", "no user is in scope"),
                None => report.pass(
                    "users",
                    "at least one user in scope (Graph cannot count this query)",
                ),
            }
        }
        Err(e) => report.fail("filter", e.to_string()),
    }
}

/// What a run reads beside the users: the groups the config names for `groups` (each
/// resolved, and readable), the tenant's SKUs for `licenses`, and sign-in activity.
async fn check_inputs(
    client: &Arc<GraphClient>,
    query: &UserQuery,
    source: &crate::config::SourceConfig,
    report: &mut Report,
) {
    let input_groups = &source.input_groups;
    if query.selection.groups
        && let Some(groups) = resolved(client, "groups", input_groups, report).await
    {
        match Memberships::read(client, groups, query.page_size).await {
            Ok(members) => report.pass(
                "groups",
                format!("{} user(s) in the groups the mapping reads", members.len()),
            ),
            Err(e) => report.fail("groups", e.to_string()),
        }
    }
    for (key, names) in [
        ("groups", &source.groups),
        ("exclude_groups", &source.exclude_groups),
    ] {
        if !names.is_empty() {
            resolved(client, key, names, report).await;
        }
    }
    if query.selection.licenses {
        match Skus::read(client).await {
            Ok(_) => report.pass("licences", "the tenant's SKUs are readable"),
            Err(e) => report.fail("licences", e.to_string()),
        }
    }
    let filter_reads = query.filter.as_ref().is_some_and(|f| {
        f.properties()
            .iter()
            .any(|p| p.starts_with("signInActivity"))
    });
    if query.selection.properties.contains("signInActivity") || filter_reads {
        let probe = UserQuery {
            selection: Selection::of(["signInActivity"]),
            filter: None,
            page_size: 1,
            group: None,
            groups_apart: false,
        };
        let url = probe.url_with_top(client.root(), 1);
        match client
            .get_page(
                url.as_str(),
                false,
                "probe GET /v1.0/users?$select=signInActivity",
            )
            .await
        {
            Ok(_) => report.pass(
                "sign-in activity",
                "readable (AuditLog.Read.All granted, Entra ID P1 licensed)",
            ),
            Err(e) => report.fail("sign-in activity", e.to_string()),
        }
    }
}

/// The groups `names` (of config key `key`) resolved, reported as a pass naming each with
/// its ID; the names that cannot be resolved reported as a failure.
async fn resolved(
    client: &Arc<GraphClient>,
    key: &str,
    names: &[String],
    report: &mut Report,
) -> Option<Vec<crate::graph::groups::GroupRef>> {
    match resolve(client, names).await {
        Ok(groups) => {
            let named = groups
                .iter()
                .map(|g| format!("{} ({})", g.name, g.id))
                .collect::<Vec<_>>()
                .join(", ");
            report.pass(key, named);
            Some(groups)
        }
        Err(crate::graph::GraphError::Groups(unresolved)) => {
            let found: Vec<&str> = names
                .iter()
                .filter(|n| {
                    !unresolved.missing.contains(n)
                        && !unresolved.ambiguous.iter().any(|(a, _)| a == *n)
                })
                .map(String::as_str)
                .collect();
            if !found.is_empty() {
                report.pass(key, found.join(", "));
            }
            report.fail(key, unresolved.to_string());
            None
        }
        Err(e) => {
            report.fail(key, e.to_string());
            None
        }
    }
}
