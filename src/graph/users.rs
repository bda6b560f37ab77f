//! Reading the users in scope from Graph, page by page.
//!
//! The sync engine deactivates target users that are missing from this pull, so the pull
//! must deliver every user in scope exactly once or fail: each page is retried until it
//! arrives or the attempts run out, and then the whole pull fails naming the page. Pages are
//! handed out one at a time, so memory stays flat however large the tenant is.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde_json::value::RawValue;

use url::Url;

use super::client::{GraphClient, Page};
use super::error::GraphError;
use crate::config::SourceConfig;
use odata::Filter;

/// How deeply a user's JSON may nest (the user object itself is the first level): as deep
/// as serde_json parses, which a run meets when it parses a user, and which `pull` checks on
/// the users it passes through unparsed.
pub const MAX_NESTING: usize = 127;

/// Whether JSON `text` nests no deeper than [`MAX_NESTING`] (arrays and objects), found by
/// one pass over its bytes.
pub fn nesting_within_limit(text: &str) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'[' | b'{' if !in_string => {
                depth += 1;
                if depth > MAX_NESTING {
                    return false;
                }
            }
            b']' | b'}' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The Graph properties a run reads: `$select`, and the manager's properties for
/// `$expand=manager($select=…)` when the mapping reads the manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Top-level user properties, in Graph's spelling.
    pub properties: BTreeSet<String>,
    /// The manager's properties, or `None` when the manager is not read.
    pub manager: Option<BTreeSet<String>>,
    /// Whether the mapping reads `groups`: the membership of the config's `input_groups`,
    /// read apart ([`super::groups::Memberships`]).
    pub groups: bool,
    /// Whether the mapping reads `licenses`: `assignedLicenses` as SKU part numbers
    /// ([`super::licenses::Skus`]).
    pub licenses: bool,
}

impl Selection {
    /// A selection of these properties and no manager.
    pub fn of<'a>(properties: impl IntoIterator<Item = &'a str>) -> Self {
        Selection {
            properties: properties.into_iter().map(str::to_owned).collect(),
            ..Selection::default()
        }
    }

    /// The `$select` value: the properties plus `id` and `accountEnabled`, which every run
    /// needs to match users and to see disabled accounts.
    pub fn select_param(&self) -> String {
        self.selected().into_iter().collect::<Vec<_>>().join(",")
    }

    /// The properties `$select` names: the selection plus `id` and `accountEnabled`.
    pub fn selected(&self) -> BTreeSet<&str> {
        let mut all: BTreeSet<&str> = self.properties.iter().map(String::as_str).collect();
        all.extend(["id", "accountEnabled"]);
        all
    }

    /// The `$expand` value, when the manager is read.
    pub fn expand_param(&self) -> Option<String> {
        let manager = self.manager.as_ref()?;
        let mut all: BTreeSet<&str> = manager.iter().map(String::as_str).collect();
        all.insert("id");
        Some(format!(
            "manager($select={})",
            all.into_iter().collect::<Vec<_>>().join(",")
        ))
    }
}

/// What to ask Graph for: which users, which of their properties, how many per page.
#[derive(Debug, Clone)]
pub struct UserQuery {
    /// The properties to read.
    pub selection: Selection,
    /// The admin's `$filter`, applied by Graph.
    pub filter: Option<Filter>,
    /// Users per page, 1–999.
    pub page_size: u16,
    /// Only this group's (transitive) members.
    pub group: Option<String>,
    /// Whether users are kept or left out by group membership read apart (`groups`,
    /// `exclude_groups`; see [`super::groups::Scope`]) rather than by Graph.
    pub groups_apart: bool,
}

impl UserQuery {
    /// The query a config asks for, reading `selection`.
    pub fn new(source: &SourceConfig, selection: Selection) -> Self {
        UserQuery {
            selection,
            filter: source.filter.clone(),
            page_size: source.page_size,
            group: source.group.clone(),
            groups_apart: !source.groups.is_empty() || !source.exclude_groups.is_empty(),
        }
    }

    fn filter_needs_advanced(&self) -> bool {
        self.filter
            .as_ref()
            .is_some_and(Filter::needs_advanced_query)
    }

    /// Whether the query needs Graph's advanced mode: `ConsistencyLevel: eventual` on every
    /// page and `$count=true`. Filtering group members always does.
    pub fn advanced(&self) -> bool {
        self.filter_needs_advanced() || (self.group.is_some() && self.filter.is_some())
    }

    /// Whether the manager is read by a query of its own ([`UserQuery::manager_query`]):
    /// Graph cannot expand the manager in advanced mode.
    pub fn managers_apart(&self) -> bool {
        self.selection.manager.is_some() && self.advanced()
    }

    /// When [`UserQuery::managers_apart`]: the query that reads every user's manager — all
    /// users of the tenant in standard mode, only `id` with the manager expanded.
    pub fn manager_query(&self) -> Option<UserQuery> {
        self.managers_apart().then(|| UserQuery {
            selection: Selection {
                manager: self.selection.manager.clone(),
                ..Selection::default()
            },
            filter: None,
            page_size: self.page_size,
            group: None,
            groups_apart: false,
        })
    }

    /// The collection this query reads, below `/v1.0/`.
    pub fn collection(&self) -> String {
        match &self.group {
            Some(group) => format!("groups/{group}/transitiveMembers/microsoft.graph.user"),
            None => "users".to_owned(),
        }
    }

    /// The first page's URL under the Graph root.
    pub fn first_url(&self, root: &Url) -> Url {
        self.url_with_top(root, self.page_size)
    }

    /// A one-user probe that also asks Graph to count every match (`$count` needs the
    /// advanced mode, which a filter on `identities` forbids): `None` when that cannot be
    /// asked. Send it with `ConsistencyLevel: eventual`.
    pub fn count_probe(&self, root: &Url) -> Option<Url> {
        let identities = self
            .filter
            .as_ref()
            .is_some_and(|f| f.properties().iter().any(|p| p.starts_with("identities")));
        if identities {
            return None;
        }
        let probe = UserQuery {
            selection: Selection::default(),
            ..self.clone()
        };
        let mut url = probe.url_with_top(root, 1);
        if !probe.advanced() {
            url.query_pairs_mut().append_pair("$count", "true");
        }
        Some(url)
    }

    /// The first page's URL with another page size (`check` probes with `$top=1`).
    pub fn url_with_top(&self, root: &Url, top: u16) -> Url {
        let mut url = root
            .join(&format!("v1.0/{}", self.collection()))
            .unwrap_or_else(|_| root.clone());
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("$select", &self.selection.select_param());
            if let Some(expand) = self.selection.expand_param()
                && !self.managers_apart()
            {
                query.append_pair("$expand", &expand);
            }
            if let Some(filter) = &self.filter {
                query.append_pair("$filter", filter.canonical());
            }
            if self.advanced() {
                query.append_pair("$count", "true");
            }
            query.append_pair("$top", &top.to_string());
        }
        url
    }
}

/// A page being fetched in the background: the link it was asked with, the link of the page
/// after it as soon as it is known, and the page.
struct InFlight {
    link: String,
    early_next: tokio::sync::oneshot::Receiver<String>,
    task: tokio::task::JoinHandle<Result<Page, GraphError>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands out the users of a query one page at a time, each user exactly once.
///
/// While one page arrives, the next is already requested: Graph names the next page before
/// the users, so the pull costs about one round trip per page rather than a round trip plus
/// the transfer. A page fetched ahead is used only if its link is the one the finished page
/// gives; otherwise it is dropped and the right link fetched.
///
/// The pages are fetched by a task of its own, so the next request goes out the moment its
/// link arrives, however long the caller takes over the page before; the task stays at most
/// one finished page ahead of the caller.
pub struct UserPager {
    chain: Option<Chain>,
    fetched: Option<tokio::sync::mpsc::Receiver<Fetched>>,
    task: Option<tokio::task::JoinHandle<()>>,
    label: String,
    pages: u32,
    /// Users handed out so far.
    pub delivered: u64,
    /// Users Graph sent more than once (dropped after the first).
    pub duplicates: u64,
    /// Graph's `@odata.count`, when the query asked for it.
    pub count: Option<u64>,
}

/// A user of a page, as Graph wrote it.
#[derive(Debug)]
pub struct PagedUser {
    /// Its JSON.
    pub text: Box<RawValue>,
    /// Where in `text` its id is written (the pager has checked it has one).
    id: std::ops::Range<usize>,
}

impl PagedUser {
    /// Its id.
    pub fn id(&self) -> std::borrow::Cow<'_, str> {
        let text = self.text.get();
        text.get(self.id.clone())
            .and_then(crate::scan::string)
            .unwrap_or_default()
    }
}

/// What the fetching task sends: a page with the pager's figures after it, the end, or why
/// the pull failed.
enum Fetched {
    Page {
        users: Vec<PagedUser>,
        pages: u32,
        delivered: u64,
        duplicates: u64,
        count: Option<u64>,
    },
    End,
    Failed(GraphError),
}

impl std::fmt::Debug for UserPager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPager")
            .field("label", &self.label)
            .field("pages", &self.pages)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

impl Drop for UserPager {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl UserPager {
    /// A pager at the first page of `query`.
    pub fn new(client: Arc<GraphClient>, query: &UserQuery) -> Self {
        let label = format!("GET /v1.0/{}", query.collection());
        UserPager {
            chain: Some(Chain {
                next: Some(query.first_url(client.root()).to_string()),
                client,
                current: None,
                ahead: None,
                advanced: query.advanced(),
                label: label.clone(),
                pages: 0,
                seen: SeenIds::default(),
                delivered: 0,
                duplicates: 0,
                links: HashSet::new(),
                stale_pages: 0,
                count: None,
                limit: None,
            }),
            fetched: None,
            task: None,
            label,
            pages: 0,
            delivered: 0,
            duplicates: 0,
            count: None,
        }
    }

    /// The pager with a bound on the users it may bring (before the first page).
    pub fn limited(mut self, limit: Option<ReadLimit>) -> Self {
        if let Some(chain) = &mut self.chain {
            chain.limit = limit;
        }
        self
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// What the pager reads, e.g. `GET /v1.0/users`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next page's users, or `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<serde_json::Value>>, GraphError> {
        let Some(raw) = self.next_page_raw().await? else {
            return Ok(None);
        };
        let what = || format!("page {} of {}", self.pages, self.label);
        raw.iter()
            .map(|user| {
                serde_json::from_str(user.get()).map_err(|e| GraphError::Malformed {
                    what: what(),
                    detail: format!("a user that is not valid JSON ({e})"),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The next page's users as Graph wrote them (for passing them on unchanged), or `None`
    /// after the last page.
    pub async fn next_page_raw(&mut self) -> Result<Option<Vec<Box<RawValue>>>, GraphError> {
        let page = self.next_users().await?;
        Ok(page.map(|users| users.into_iter().map(|user| user.text).collect()))
    }

    /// The next page's users as Graph wrote them, each with where its id is, or `None`
    /// after the last page.
    pub async fn next_users(&mut self) -> Result<Option<Vec<PagedUser>>, GraphError> {
        if let Some(mut chain) = self.chain.take() {
            let (send, fetched) = tokio::sync::mpsc::channel(1);
            self.fetched = Some(fetched);
            self.task = Some(tokio::spawn(async move {
                loop {
                    let (fetched, last) = match chain.next_page_raw().await {
                        Ok(Some(users)) => (
                            Fetched::Page {
                                users,
                                pages: chain.pages,
                                delivered: chain.delivered,
                                duplicates: chain.duplicates,
                                count: chain.count,
                            },
                            false,
                        ),
                        Ok(None) => (Fetched::End, true),
                        Err(error) => (Fetched::Failed(error), true),
                    };
                    if send.send(fetched).await.is_err() || last {
                        break;
                    }
                }
            }));
        }
        let Some(fetched) = &mut self.fetched else {
            return Ok(None);
        };
        match fetched.recv().await {
            Some(Fetched::Page {
                users,
                pages,
                delivered,
                duplicates,
                count,
            }) => {
                self.pages = pages;
                self.delivered = delivered;
                self.duplicates = duplicates;
                self.count = count;
                Ok(Some(users))
            }
            Some(Fetched::End) => {
                self.fetched = None;
                Ok(None)
            }
            Some(Fetched::Failed(error)) => {
                self.fetched = None;
                Err(error)
            }
            // The task ended without saying how: never taken for the end of the users.
            None => {
                self.fetched = None;
                Err(GraphError::Malformed {
                    what: format!("page {} of {}", self.pages + 1, self.label),
                    detail: "the pull stopped unexpectedly".to_owned(),
                })
            }
        }
    }

    /// Every remaining user, in one list (for small tenants, tests and `check`).
    pub async fn collect(mut self) -> Result<Vec<serde_json::Value>, GraphError> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}

/// The pages of a query, fetched one after another by [`UserPager`]'s task.
struct Chain {
    client: Arc<GraphClient>,
    next: Option<String>,
    current: Option<InFlight>,
    ahead: Option<InFlight>,
    advanced: bool,
    label: String,
    pages: u32,
    seen: SeenIds,
    delivered: u64,
    duplicates: u64,
    count: Option<u64>,
    /// Every next link followed so far: one that comes back means the paging loops.
    links: HashSet<String>,
    /// Pages in a row that brought no user not read before.
    stale_pages: u32,
    /// How many users the read may bring.
    limit: Option<ReadLimit>,
}

/// The ids of the users read so far. Graph's object ids are GUIDs: kept as 16 bytes each
/// (a million users take 33 MB rather than about 100 MB as text); any other id as text.
#[derive(Debug, Default)]
struct SeenIds {
    guids: foldhash::HashSet<u128>,
    others: HashSet<String>,
}

impl SeenIds {
    /// Adds `id`; whether it was not there yet.
    fn insert(&mut self, id: &str) -> bool {
        match guid(id) {
            Some(guid) => self.guids.insert(guid),
            None => !self.others.contains(id) && self.others.insert(id.to_owned()),
        }
    }
}

/// `id` as a number, when it is a GUID written as Graph writes them (lower-case hex, the
/// hyphens in their places): two ids are the same number only if they are the same text.
fn guid(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut value: u128 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let digit = match b {
            b'-' if matches!(i, 8 | 13 | 18 | 23) => continue,
            b'0'..=b'9' if !matches!(i, 8 | 13 | 18 | 23) => b - b'0',
            b'a'..=b'f' if !matches!(i, 8 | 13 | 18 | 23) => b - b'a' + 10,
            _ => return None,
        };
        value = value << 4 | u128::from(digit);
    }
    Some(value)
}

/// Pages in a row without a new user after which the paging is taken to loop. Graph may
/// repeat a user across pages now and then; a whole page of repeats, over and over, is a
/// service that would page for ever.
const MAX_STALE_PAGES: u32 = 3;

impl Chain {
    fn start(&self, link: String, page: u32) -> InFlight {
        let what = format!("page {page} of {}", self.label);
        let (sender, early_next) = tokio::sync::oneshot::channel();
        let client = Arc::clone(&self.client);
        let advanced = self.advanced;
        let url = link.clone();
        let task = tokio::spawn(async move {
            client
                .get_page_early(&url, advanced, &what, Some(sender))
                .await
        });
        InFlight {
            link,
            early_next,
            task,
        }
    }

    /// The next page's users as Graph wrote them, or `None` after the last page.
    async fn next_page_raw(&mut self) -> Result<Option<Vec<PagedUser>>, GraphError> {
        let mut current = match (self.current.take(), self.next.take()) {
            (Some(current), _) => current,
            (None, Some(link)) => self.start(link, self.pages + 1),
            (None, None) => return Ok(None),
        };
        let what = format!(
            "page {} of {} (after {} users)",
            self.pages + 1,
            self.label,
            self.delivered
        );
        if let Ok(link) = (&mut current.early_next).await {
            self.ahead = Some(self.start(link, self.pages + 2));
        }
        let page = match (&mut current.task).await {
            Ok(result) => result.map_err(|e| e.about(what.clone()))?,
            Err(e) => {
                return Err(GraphError::Malformed {
                    what,
                    detail: format!("the request was interrupted ({e})"),
                });
            }
        };
        self.pages += 1;
        self.count = page.count.or(self.count);
        if page.next_link.as_deref() == Some(current.link.as_str()) {
            return Err(GraphError::Malformed {
                what,
                detail: "the page links to itself".to_owned(),
            });
        }
        if let Some(link) = &page.next_link
            && !self.links.insert(link.clone())
        {
            return Err(GraphError::Malformed {
                what,
                detail: "the page links back to a page already read: the paging loops".to_owned(),
            });
        }
        let ahead = self.ahead.take();
        match (page.next_link, ahead) {
            (Some(link), Some(ahead)) if ahead.link == link => self.current = Some(ahead),
            (link, _) => self.next = link,
        }
        let users = self.keep_new(page.value, &what)?;
        self.delivered += users.len() as u64;
        if let Some(limit) = self.limit
            && let Some(detail) = limit.exceeded(self.delivered, self.count)
        {
            return Err(GraphError::Malformed { what, detail });
        }
        Ok(Some(users))
    }

    /// The users of a page not read before (a user Graph repeats is counted and dropped);
    /// fails on a user without an id, and on the third page in a row with nothing new.
    fn keep_new(
        &mut self,
        page: Vec<Box<RawValue>>,
        what: &str,
    ) -> Result<Vec<PagedUser>, GraphError> {
        let malformed = |detail: String| GraphError::Malformed {
            what: what.to_owned(),
            detail,
        };
        let page_len = page.len();
        let mut users = Vec::with_capacity(page_len);
        for text in page {
            let at = crate::scan::id_at(text.get());
            let Some(id) = at
                .clone()
                .and_then(|at| crate::scan::string(&text.get()[at]))
            else {
                return Err(malformed("a user without an id".to_owned()));
            };
            if self.seen.insert(&id) {
                let id = at.unwrap_or_default();
                users.push(PagedUser { text, id });
            } else {
                self.duplicates += 1;
            }
        }
        self.stale_pages = match (page_len, users.len()) {
            (0, _) => 0,
            (_, 0) => self.stale_pages + 1,
            _ => 0,
        };
        if self.stale_pages >= MAX_STALE_PAGES {
            return Err(malformed(format!(
                "{MAX_STALE_PAGES} pages in a row held only users already read: the paging loops"
            )));
        }
        Ok(users)
    }
}

/// How many users a read may bring before it is taken to be running away: a service
/// handing out fresh ids page after page would otherwise be read (and its users created)
/// without end. Set from the last complete run ([`ReadLimit::after`]); Graph's own count,
/// when the query asked for it, is a second bound that must be passed too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    /// Users the last complete run read.
    pub last: u64,
}

impl ReadLimit {
    /// The bound after a complete run that read `last` users: three times as many, and at
    /// least a thousand more (a small tenant may well double in a week).
    pub fn after(last: u64) -> ReadLimit {
        ReadLimit { last }
    }

    /// The most users allowed.
    pub fn most(&self) -> u64 {
        (self.last.saturating_mul(3)).max(self.last.saturating_add(1000))
    }

    /// Why `delivered` users are too many, or `None`; `count` is Graph's `@odata.count`,
    /// which is eventually consistent, so a tenth more is allowed above it.
    pub fn exceeded(&self, delivered: u64, count: Option<u64>) -> Option<String> {
        let most = self.most();
        if delivered <= most {
            return None;
        }
        let mut detail = format!(
            "{delivered} users read, more than the {most} allowed after the {} users of the \
             last complete run",
            self.last
        );
        if let Some(count) = count {
            if delivered <= count.saturating_add(count / 10).saturating_add(1000) {
                return None;
            }
            detail.push_str(&format!(" and more than Graph's own count of {count}"));
        }
        detail.push_str(
            ": the paging is taken to run away; if the tenant (or the filter) really grew \
             so, run once with --allow-growth",
        );
        Some(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_seen_as_numbers_and_other_ids_as_text_each_once() {
        let mut seen = SeenIds::default();
        let a = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";
        assert_eq!(guid(a), Some(0x0a1b2c3d_4e5f_6789_abcd_ef0123456789));
        assert!(seen.insert(a) && !seen.insert(a));
        // Not as Graph writes a GUID: kept as text, so never the same as `a`.
        let upper = a.to_uppercase();
        assert_eq!(guid(&upper), None);
        assert_eq!(guid("0a1b2c3d4e5f-6789-abcd-ef0123456789-"), None);
        assert!(seen.insert(&upper) && !seen.insert(&upper));
        assert!(seen.insert("u1") && !seen.insert("u1"));
        assert_eq!((seen.guids.len(), seen.others.len()), (1, 2));
    }

    fn nested(depth: usize) -> String {
        format!(
            r#"{{"id":"a","x":"[{{\"","deep":{}1{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    }

    #[test]
    fn a_read_may_triple_and_always_grow_by_a_thousand_and_graphs_count_is_a_second_bound() {
        let small = ReadLimit::after(10);
        assert_eq!(small.most(), 1010);
        assert!(small.exceeded(1010, None).is_none());
        assert!(small.exceeded(1011, None).is_some());
        let large = ReadLimit::after(100_000);
        assert_eq!(large.most(), 300_000);
        // Past three times the last run, but within what Graph counted (and its slack).
        assert!(large.exceeded(310_000, Some(300_000)).is_none());
        let past_both = large.exceeded(400_000, Some(300_000)).unwrap();
        assert!(
            past_both.contains("Graph's own count of 300000"),
            "{past_both}"
        );
        assert!(past_both.contains("--allow-growth"), "{past_both}");
    }

    #[test]
    fn pull_and_run_refuse_the_same_depth() {
        // The user object is one level; brackets inside strings do not count.
        for depth in [1, 2, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 5000] {
            let text = nested(depth);
            let parsed = serde_json::from_str::<serde_json::Value>(&text).is_ok();
            assert_eq!(nesting_within_limit(&text), parsed, "depth {depth}");
            assert_eq!(parsed, depth <= MAX_NESTING, "depth {depth}");
        }
    }
}
