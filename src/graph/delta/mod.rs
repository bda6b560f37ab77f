//! Incremental pulls with Graph's delta query (`/users/delta`).
//!
//! A delta round returns only what changed since the last round: new and changed users,
//! and removals (`@removed`: `changed` = soft-deleted and restorable, `deleted` = gone). The
//! same user may appear several times in one round, and an update may carry only the
//! properties that changed; the round collapses duplicates and reads incomplete users again
//! in full. Graph cannot apply an admin's `$filter` to delta (only `id eq`), so the filter is
//! evaluated here, and a user who no longer matches it is reported as out of scope.
//!
//! Graph forgets delta state after a while (7 days for users) and then answers 410 or
//! `syncStateNotFound`/`resyncRequired`; the round then starts over with a full pull.

use std::path::PathBuf;

use super::client::GraphClient;
use super::error::GraphError;
use super::users::UserQuery;

mod collect;

use collect::{Entry, Raw, collect};

/// Why a user is no longer in scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// Deleted in Entra but restorable for 30 days (`@removed: changed`).
    SoftDeleted,
    /// Deleted for good (`@removed: deleted`).
    Deleted,
    /// Still in Entra, but no longer matches the filter.
    OutOfScope,
}

/// One user's change in a delta round.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The user exists and is in scope: new, changed, restored or (in a full round) listed.
    Present(serde_json::Value),
    /// The user left scope.
    Gone {
        /// The user's id.
        id: String,
        /// Why.
        reason: GoneReason,
    },
}

/// The outcome of one delta round.
#[derive(Debug)]
pub struct DeltaRound {
    /// Whether this round listed every user in scope (the first round, or after Graph forgot
    /// the previous state), rather than only changes.
    pub full: bool,
    /// One entry per user, in the order Graph first mentioned them.
    pub changes: Vec<Change>,
    /// Where the next round starts; store it only after the changes were applied.
    pub delta_link: String,
}

/// Where delta links are kept between runs, one per query (a different `$select` or filter
/// needs a new full round).
pub trait DeltaLinks {
    /// The link stored for `scope`, if any.
    fn load(&self, scope: &str) -> std::io::Result<Option<String>>;
    /// Stores `link` for `scope`, replacing the previous one.
    fn save(&mut self, scope: &str, link: &str) -> std::io::Result<()>;
}

/// Delta links in a small JSON file (`{scope: link}`), written atomically.
#[derive(Debug, Clone)]
pub struct DeltaLinkFile(pub PathBuf);

impl DeltaLinkFile {
    fn read(&self) -> std::io::Result<serde_json::Map<String, serde_json::Value>> {
        match std::fs::read(&self.0) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(e),
        }
    }
}

impl DeltaLinks for DeltaLinkFile {
    fn load(&self, scope: &str) -> std::io::Result<Option<String>> {
        Ok(self
            .read()?
            .get(scope)
            .and_then(|v| v.as_str())
            .map(str::to_owned))
    }

    fn save(&mut self, scope: &str, link: &str) -> std::io::Result<()> {
        let mut all = self.read()?;
        all.insert(scope.to_owned(), link.into());
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&all)?)?;
        std::fs::rename(tmp, &self.0)
    }
}

/// The key under which a query's delta link is stored: what it selects and filters.
pub fn scope_key(query: &UserQuery) -> String {
    format!(
        "users?$select={}&$filter={}",
        delta_select(query).join(","),
        query
            .filter
            .as_ref()
            .map(|f| f.canonical())
            .unwrap_or_default()
    )
}

/// The properties a delta round selects: the query's, and those its filter reads, because
/// the filter is evaluated here.
fn delta_select(query: &UserQuery) -> Vec<String> {
    let mut all = query.selection.selected();
    if let Some(filter) = &query.filter {
        all.extend(
            filter
                .properties()
                .iter()
                .map(|p| p.split('/').next().unwrap_or(p)),
        );
    }
    all.into_iter().map(str::to_owned).collect()
}

/// Runs one delta round: from `previous` (a stored delta link), or a full round when there is
/// none or Graph no longer knows it.
pub async fn delta_round(
    client: &GraphClient,
    query: &UserQuery,
    previous: Option<&str>,
) -> Result<DeltaRound, GraphError> {
    if query.group.is_some() || query.selection.manager.is_some() {
        return Err(GraphError::Malformed {
            what: "delta query".to_owned(),
            detail: "incremental pulls cannot be scoped to a group or expand the manager"
                .to_owned(),
        });
    }
    let select = delta_select(query);
    if let Some(link) = previous {
        match collect(client, link, (&select, None), false, None).await {
            Err(e) if is_expired_state(&e) => {}
            other => return Ok(finish(query, other?)),
        }
    }
    let mut first = client
        .root()
        .join("v1.0/users/delta")
        .map_err(|e| GraphError::Malformed {
            what: "delta query".to_owned(),
            detail: e.to_string(),
        })?;
    first
        .query_pairs_mut()
        .append_pair("$select", &select.join(","));
    let round = collect(client, first.as_str(), (&select, None), true, None).await?;
    Ok(finish(query, round))
}

/// Why delta rounds cannot stand in for a full read of `query`, or `None` when they can.
/// Users delta takes no group scope and reports no membership or licence names, and the
/// filter is evaluated locally: a filter on what a delta round does not carry (sign-in
/// activity) or on a count cannot be decided from it. A mapping that reads `groups`,
/// `licenses` or `signInActivity` therefore runs in full too.
pub fn unavailable(query: &UserQuery) -> Option<String> {
    if query.group.is_some() {
        return Some(
            "the config scopes users by group, which Graph's users delta cannot follow".into(),
        );
    }
    if query.groups_apart {
        return Some(
            "the config scopes users by `groups` or `exclude_groups`, whose membership Graph's \
             users delta does not report"
                .into(),
        );
    }
    if query.selection.groups {
        return Some(
            "the mapping reads `groups`, whose membership Graph's users delta does not report"
                .into(),
        );
    }
    if query.selection.licenses {
        return Some(
            "the mapping reads `licenses`, which are read with the tenant's SKUs on full runs"
                .into(),
        );
    }
    if query.selection.properties.contains("signInActivity") {
        return Some(
            "the mapping reads `signInActivity`, which Graph does not return in delta rounds"
                .into(),
        );
    }
    let filter = query.filter.as_ref()?;
    let properties = filter.properties();
    if let Some(p) = properties.iter().find(|p| p.starts_with("signInActivity")) {
        return Some(format!(
            "the filter reads `{p}`, which Graph does not return in delta rounds"
        ));
    }
    if let Some(p) = properties.iter().find(|p| p.contains("$count")) {
        return Some(format!(
            "the filter counts `{p}`, which cannot be evaluated on a delta round's users"
        ));
    }
    None
}

/// What a delta link is stored under: the query it follows (what it selects and filters),
/// marked with the format of the link's use, so a link of another config or another
/// version of userload is never followed.
pub fn fingerprint(query: &UserQuery) -> String {
    format!(
        "users-v1 {}&$expand={}",
        scope_key(query),
        query.selection.expand_param().unwrap_or_default()
    )
}

/// Whether `link` is a users delta link on `client`'s Graph (a corrupted or foreign link in
/// the state is never followed).
pub fn is_own_link(client: &GraphClient, link: &str) -> bool {
    client
        .root()
        .join("v1.0/users/delta")
        .is_ok_and(|delta| link.starts_with(delta.as_str()) && link.contains("deltatoken="))
}

/// A delta link from which later rounds report the changes made from now on, got without
/// reading a single user (`$deltatoken=latest`). A full run takes one before it reads.
pub async fn latest_link(client: &GraphClient, query: &UserQuery) -> Result<String, GraphError> {
    let mut url = client
        .root()
        .join("v1.0/users/delta")
        .map_err(|e| malformed("delta query", &e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("$select", &delta_select(query).join(","));
    // The manager's changes are reported only to rounds that expand it.
    if query.selection.manager.is_some() {
        url.query_pairs_mut().append_pair("$expand", "manager");
    }
    url.query_pairs_mut().append_pair("$deltatoken", "latest");
    let page = client
        .get_page(
            url.as_str(),
            false,
            "GET /v1.0/users/delta?$deltatoken=latest",
        )
        .await?;
    match page.delta_link {
        Some(link) if page.next_link.is_none() => Ok(link),
        _ => Err(malformed(
            "GET /v1.0/users/delta?$deltatoken=latest",
            "the answer has no deltaLink",
        )),
    }
}

/// The changes since `link`, the admin's filter applied. Unlike [`delta_round`] this never
/// starts over: when Graph no longer knows the link ([`is_expired_state`]) the caller
/// decides what to do instead.
pub async fn changes_since(
    client: &GraphClient,
    query: &UserQuery,
    link: &str,
) -> Result<DeltaRound, GraphError> {
    changes_handed_early(client, query, link, None).await
}

/// Where a round hands over, while its later pages are still read, each user it is sure
/// of: present, read whole, in scope of the admin's filter.
pub type Ready = tokio::sync::mpsc::UnboundedSender<serde_json::Value>;

/// [`changes_since`], handing each user it is sure of to `ready` as soon as it is (see
/// [`Ready`]) rather than with the round. The round's changes then hold the others, and
/// again those handed over that a later page mentioned again (as they are last read).
/// Re-reads of changed users start as soon as each page names them, whether or not
/// `ready` is given.
pub async fn changes_handed_early(
    client: &GraphClient,
    query: &UserQuery,
    link: &str,
    ready: Option<&Ready>,
) -> Result<DeltaRound, GraphError> {
    let expand = query.selection.expand_param();
    let select = delta_select(query);
    let raw = collect(
        client,
        link,
        (&select, expand.as_deref()),
        false,
        ready.map(|r| (r, query)),
    )
    .await?;
    Ok(finish(query, raw))
}

/// Whether Graph says it no longer knows the delta state.
pub fn is_expired_state(error: &GraphError) -> bool {
    matches!(error, GraphError::Refused { status, code, .. }
        if *status == 410
            || ["syncStateNotFound", "syncStateInvalid", "resyncRequired"]
                .iter()
                .any(|c| code.eq_ignore_ascii_case(c)))
}

/// The round's changes in Graph's order, with the admin's filter applied.
fn finish(query: &UserQuery, raw: Raw) -> DeltaRound {
    let mut changes = Vec::with_capacity(raw.order.len());
    let mut entries = raw.entries;
    for id in raw.order {
        if raw.handed.contains(&id) && !raw.again.contains(&id) {
            continue;
        }
        match entries.remove(&id) {
            Some(Entry::Present(user)) => {
                let user = serde_json::Value::Object(user);
                if query.filter.as_ref().is_none_or(|f| f.matches(&user)) {
                    changes.push(Change::Present(user));
                } else if !raw.full {
                    changes.push(Change::Gone {
                        id,
                        reason: GoneReason::OutOfScope,
                    });
                }
            }
            // A full round lists who exists; removals only matter between rounds.
            Some(Entry::Removed(reason)) if !raw.full => changes.push(Change::Gone { id, reason }),
            _ => {}
        }
    }
    DeltaRound {
        full: raw.full,
        changes,
        delta_link: raw.delta_link,
    }
}

fn malformed(what: &str, detail: &str) -> GraphError {
    GraphError::Malformed {
        what: what.to_owned(),
        detail: detail.to_owned(),
    }
}
