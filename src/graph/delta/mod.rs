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

use std::collections::HashMap;
use std::path::PathBuf;

use futures_util::StreamExt;

use super::client::GraphClient;
use super::error::GraphError;
use super::users::UserQuery;

/// How many requests re-reading changed users may have under way at once.
const REREADS_AT_ONCE: usize = 8;

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
        match collect(client, link, &select, None, false).await {
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
    let round = collect(client, first.as_str(), &select, None, true).await?;
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
    let expand = query.selection.expand_param();
    let raw = collect(client, link, &delta_select(query), expand.as_deref(), false).await?;
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

/// A round's entries as Graph sent them, duplicates merged.
struct Raw {
    full: bool,
    order: Vec<String>,
    entries: HashMap<String, Entry>,
    delta_link: String,
}

enum Entry {
    Present(serde_json::Map<String, serde_json::Value>),
    Removed(GoneReason),
}

/// Reads a round from `start` to its delta link. Users whose entry lacks selected
/// properties are read again whole (`$select`, and `expand` when the manager is expanded:
/// then every changed user is, for its manager's properties).
async fn collect(
    client: &GraphClient,
    start: &str,
    select: &[String],
    expand: Option<&str>,
    full: bool,
) -> Result<Raw, GraphError> {
    let mut raw = Raw {
        full,
        order: Vec::new(),
        entries: HashMap::new(),
        delta_link: String::new(),
    };
    let mut next = start.to_owned();
    let mut pages = 0;
    loop {
        pages += 1;
        let what = format!("page {pages} of GET /v1.0/users/delta");
        let page = client.get_page(&next, false, &what).await?;
        for item in page.value {
            let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(item.get()) else {
                return Err(malformed(&what, "an entry that is not an object"));
            };
            let Some(id) = object.get("id").and_then(|v| v.as_str()).map(str::to_owned) else {
                return Err(malformed(&what, "an entry without an id"));
            };
            let entry = match object.remove("@removed") {
                Some(removed) => Entry::Removed(match removed["reason"].as_str() {
                    Some("deleted") => GoneReason::Deleted,
                    _ => GoneReason::SoftDeleted,
                }),
                None => Entry::Present(object),
            };
            match (raw.entries.get_mut(&id), entry) {
                // A later mention of a present user adds to what we know of it.
                (Some(Entry::Present(known)), Entry::Present(more)) => known.extend(more),
                (Some(slot), entry) => *slot = entry,
                (None, entry) => {
                    raw.order.push(id.clone());
                    raw.entries.insert(id, entry);
                }
            }
        }
        match (page.next_link, page.delta_link) {
            (Some(link), _) => next = link,
            (None, Some(link)) => {
                raw.delta_link = link;
                break;
            }
            (None, None) => return Err(malformed(&what, "the last page has no deltaLink")),
        }
    }
    // Users whose entry lacks selected properties were updated partially: read them whole.
    let partial: Vec<String> = raw
        .order
        .iter()
        .filter(|id| match &raw.entries[*id] {
            Entry::Present(user) => {
                expand.is_some() || select.iter().any(|p| !user.contains_key(p))
            }
            Entry::Removed(_) => false,
        })
        .cloned()
        .collect();
    // Fifteen ids a request (what `in` takes), a few requests at a time.
    let mut reads = Vec::new();
    for chunk in partial.chunks(15) {
        let mut url = client
            .root()
            .join("v1.0/users")
            .map_err(|e| malformed("users", &e.to_string()))?;
        let ids: Vec<String> = chunk
            .iter()
            .map(|id| format!("'{}'", id.replace('\'', "''")))
            .collect();
        url.query_pairs_mut()
            .append_pair("$select", &select.join(","))
            .append_pair("$filter", &format!("id in ({})", ids.join(",")));
        if let Some(expand) = expand {
            url.query_pairs_mut().append_pair("$expand", expand);
        }
        reads.push(async move {
            let page = client
                .get_page(url.as_str(), false, "re-reading changed users")
                .await?;
            Ok::<_, GraphError>((chunk, page))
        });
    }
    let mut pages = futures_util::stream::iter(reads).buffered(REREADS_AT_ONCE);
    while let Some(read) = pages.next().await {
        let (chunk, page) = read?;
        let mut found = std::collections::HashSet::new();
        for user in page.value {
            if let Ok(serde_json::Value::Object(user)) = serde_json::from_str(user.get())
                && let Some(id) = user.get("id").and_then(|v| v.as_str()).map(str::to_owned)
            {
                found.insert(id.clone());
                raw.entries.insert(id, Entry::Present(user));
            }
        }
        // Gone since Graph listed the change: the next round reports the removal.
        for id in chunk.iter().filter(|id| !found.contains(*id)) {
            raw.entries.remove(id);
        }
    }
    Ok(raw)
}

/// The round's changes in Graph's order, with the admin's filter applied.
fn finish(query: &UserQuery, raw: Raw) -> DeltaRound {
    let mut changes = Vec::with_capacity(raw.order.len());
    let mut entries = raw.entries;
    for id in raw.order {
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
