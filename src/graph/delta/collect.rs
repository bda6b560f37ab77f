//! Reading one delta round: its pages one after another, and beside them the re-reads of
//! the users whose entries lack selected properties, started as soon as a page names them
//! (fifteen ids a request, a few requests at a time), so that the last re-read ends soon
//! after the last page rather than after all of them.
//!
//! A user may be named on several pages. A re-read counts only when no page named the user
//! again after it was sent; otherwise the user is read again. Users handed over early (see
//! [`super::Ready`]) that a later page names again are noted, so that the round reports
//! them again as they are last read.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value as Json};

use super::{GoneReason, Ready, malformed};
use crate::graph::client::{GraphClient, Page};
use crate::graph::error::GraphError;
use crate::graph::users::UserQuery;

use crate::graph::by_id::{
    self, IDS_A_REQUEST as IDS_A_REREAD, REQUESTS_AT_ONCE as REREADS_AT_ONCE,
};

/// A round's entries as Graph sent them, duplicates merged.
pub(super) struct Raw {
    pub(super) full: bool,
    pub(super) order: Vec<String>,
    pub(super) entries: HashMap<String, Entry>,
    pub(super) delta_link: String,
    /// The users handed over while the round was read.
    pub(super) handed: HashSet<String>,
    /// Those of them a later page named again.
    pub(super) again: HashSet<String>,
}

pub(super) enum Entry {
    Present(Map<String, Json>),
    Removed(GoneReason),
}

/// The users to read again, each with how many times the round had named it when it was
/// sent.
type Sent = Vec<(String, u32)>;

/// Reads a round from `start` to its delta link. Users whose entry lacks selected
/// properties are read again whole (`$select`, and `expand` when the manager is expanded:
/// then every changed user is, for its manager's properties). With `early`, each user
/// known whole and in scope of the query's filter is sent to it at once.
pub(super) async fn collect(
    client: &GraphClient,
    start: &str,
    (select, expand): (&[String], Option<&str>),
    full: bool,
    early: Option<(&Ready, &UserQuery)>,
) -> Result<Raw, GraphError> {
    let mut raw = Raw {
        full,
        order: Vec::new(),
        entries: HashMap::new(),
        delta_link: String::new(),
        handed: HashSet::new(),
        again: HashSet::new(),
    };
    let mut named: HashMap<String, u32> = HashMap::new();
    // Users to read again and not sent yet, in the order named.
    let mut waiting: Vec<String> = Vec::new();
    let mut queued: HashSet<String> = HashSet::new();
    let mut rereads = FuturesUnordered::new();
    let mut pages = 1;
    let mut page = Some(Box::pin(fetch(client, start.to_owned(), pages)));
    loop {
        // Full requests while pages come; what is left once they are done.
        while rereads.len() < REREADS_AT_ONCE
            && (waiting.len() >= IDS_A_REREAD || (page.is_none() && !waiting.is_empty()))
        {
            let chunk: Vec<String> = waiting.drain(..IDS_A_REREAD.min(waiting.len())).collect();
            let sent: Sent = chunk
                .into_iter()
                .map(|id| {
                    queued.remove(&id);
                    let times = named.get(&id).copied().unwrap_or_default();
                    (id, times)
                })
                .collect();
            rereads.push(reread(client, (select, expand), sent));
        }
        if page.is_none() && rereads.is_empty() {
            break;
        }
        tokio::select! {
            got = next_of(&mut page) => {
                let (what, got) = got;
                let got = got?;
                for item in got.value {
                    let Ok(Json::Object(mut object)) = serde_json::from_str(item.get()) else {
                        return Err(malformed(&what, "an entry that is not an object"));
                    };
                    let Some(id) = object.get("id").and_then(|v| v.as_str()).map(str::to_owned)
                    else {
                        return Err(malformed(&what, "an entry without an id"));
                    };
                    *named.entry(id.clone()).or_default() += 1;
                    if raw.handed.contains(&id) {
                        raw.again.insert(id.clone());
                    }
                    let entry = match object.remove("@removed") {
                        Some(removed) => Entry::Removed(match removed["reason"].as_str() {
                            Some("deleted") => GoneReason::Deleted,
                            _ => GoneReason::SoftDeleted,
                        }),
                        None => Entry::Present(object),
                    };
                    merge(&mut raw, id.clone(), entry);
                    let Some(Entry::Present(user)) = raw.entries.get(&id) else {
                        continue;
                    };
                    // Updated partially (or the manager expanded): read whole.
                    if expand.is_some() || select.iter().any(|p| !user.contains_key(p)) {
                        if queued.insert(id.clone()) {
                            waiting.push(id);
                        }
                    } else if let Some(early) = early {
                        hand(&mut raw, early, &id);
                    }
                }
                match (got.next_link, got.delta_link) {
                    (Some(link), _) => {
                        pages += 1;
                        page = Some(Box::pin(fetch(client, link, pages)));
                    }
                    (None, Some(link)) => {
                        raw.delta_link = link;
                        page = None;
                    }
                    (None, None) => return Err(malformed(&what, "the last page has no deltaLink")),
                }
            }
            Some(done) = rereads.next(), if !rereads.is_empty() => {
                let (sent, got) = done?;
                let mut found: HashMap<String, Map<String, Json>> = HashMap::new();
                for user in got.value {
                    if let Ok(Json::Object(user)) = serde_json::from_str(user.get())
                        && let Some(id) = user.get("id").and_then(|v| v.as_str()).map(str::to_owned)
                    {
                        found.insert(id, user);
                    }
                }
                for (id, times) in sent {
                    // Named again since: the later read decides.
                    if named.get(&id).copied().unwrap_or_default() != times {
                        continue;
                    }
                    match found.remove(&id) {
                        Some(user) => {
                            raw.entries.insert(id.clone(), Entry::Present(user));
                            if let Some(early) = early {
                                hand(&mut raw, early, &id);
                            }
                        }
                        // Gone since Graph listed the change: the next round reports the
                        // removal.
                        None => {
                            raw.entries.remove(&id);
                        }
                    }
                }
            }
        }
    }
    Ok(raw)
}

/// Adds a page's entry for `id` to what the round knows of the user.
fn merge(raw: &mut Raw, id: String, entry: Entry) {
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

/// Hands the user `id`, known whole, to `ready` when it is in scope of the query's filter
/// and was not handed over before.
fn hand(raw: &mut Raw, (ready, query): (&Ready, &UserQuery), id: &str) {
    if raw.handed.contains(id) {
        return;
    }
    let Some(Entry::Present(user)) = raw.entries.get(id) else {
        return;
    };
    let user = Json::Object(user.clone());
    if query.filter.as_ref().is_some_and(|f| !f.matches(&user)) {
        return;
    }
    if ready.send(user).is_ok() {
        raw.handed.insert(id.to_owned());
    }
}

/// Page `n` of the round, at `url`, with how errors name it.
async fn fetch(client: &GraphClient, url: String, n: usize) -> (String, Result<Page, GraphError>) {
    let what = format!("page {n} of GET /v1.0/users/delta");
    let page = client.get_page(&url, false, &what).await;
    (what, page)
}

/// The next page, or never when there is none to wait for.
async fn next_of<F: Future>(page: &mut Option<Pin<Box<F>>>) -> F::Output {
    match page {
        Some(page) => page.await,
        None => std::future::pending().await,
    }
}

/// The users `sent` read whole, by id.
async fn reread(
    client: &GraphClient,
    (select, expand): (&[String], Option<&str>),
    sent: Sent,
) -> Result<(Sent, Page), GraphError> {
    let url = by_id::url(client, (select, expand), sent.iter().map(|(id, _)| id))?;
    let page = client
        .get_page(url.as_str(), false, "re-reading changed users")
        .await?;
    Ok((sent, page))
}
