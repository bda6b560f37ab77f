//! An authenticated client for one tenant's Graph: the pages it reads and what it counts.
//!
//! Each GET goes out through the shared retry loop (see the `get` module); this file holds
//! what lives as long as the client: the HTTP client, the token source, the retry policy,
//! the counters, and the rule that a followed link must stay on the Graph root.

use std::sync::atomic::AtomicU64;

use url::Url;

use super::auth::TokenSource;
use super::error::GraphError;
use super::get::PageGet;
use crate::config::SourceConfig;
use crate::http::{self, RetryPolicy};

/// A page of a Graph collection, as Graph sends it.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    /// The objects on this page, as Graph wrote them (may be empty even when more pages
    /// follow). Kept raw so that a caller who only passes them on does not pay for parsing.
    #[serde(default)]
    pub value: Vec<Box<serde_json::value::RawValue>>,
    /// The next page, to be followed exactly as given.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// On the last page of a delta round: where the next round starts.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
    /// With `$count=true`: how many objects match in all.
    #[serde(rename = "@odata.count")]
    pub count: Option<u64>,
}

/// Counters over everything one client sent, for summaries and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent to Graph, retries included.
    pub requests: AtomicU64,
    /// Requests answered 429 or 503/504 with a `Retry-After`.
    pub throttled: AtomicU64,
    /// Requests sent again after a failure.
    pub retries: AtomicU64,
    /// How long each attempt took, and how many Graph answered 429.
    pub meter: crate::http::Meter,
}

/// An authenticated Graph client for one tenant.
#[derive(Debug)]
pub struct GraphClient {
    pub(super) http: reqwest::Client,
    root: Url,
    pub(super) tokens: TokenSource,
    policy: RetryPolicy,
    /// What this client has sent so far.
    pub stats: Stats,
}

impl GraphClient {
    /// A client for the tenant in `source`, with its retry and timeout settings.
    pub fn new(source: &SourceConfig) -> Result<Self, GraphError> {
        let policy = RetryPolicy {
            max_attempts: source.max_attempts,
            timeout: source.request_timeout,
            ..RetryPolicy::default()
        };
        Self::with_policy(source, policy)
    }

    /// A client with an explicit retry policy (tests shorten the waits).
    pub fn with_policy(source: &SourceConfig, policy: RetryPolicy) -> Result<Self, GraphError> {
        let http =
            http::client(policy.timeout).map_err(|e| GraphError::Credential(e.to_string()))?;
        let tokens = TokenSource::new(http.clone(), source, policy)?;
        let mut root = source.graph_root.clone();
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Ok(GraphClient {
            http,
            root,
            tokens,
            policy,
            stats: Stats::default(),
        })
    }

    /// The Graph root, e.g. `https://graph.microsoft.com/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The token source (for `check`, which reads the granted permissions).
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// GETs one page. `advanced` adds `ConsistencyLevel: eventual` (Graph does not remember
    /// it between pages). `what` names the request in errors, e.g. "page 3 of GET /v1.0/users".
    pub async fn get_page(
        &self,
        url: &str,
        advanced: bool,
        what: &str,
    ) -> Result<Page, GraphError> {
        self.get_page_early(url, advanced, what, None).await
    }

    /// Like [`get_page`](Self::get_page), and as soon as the answer's opening shows the
    /// `@odata.nextLink` (Graph sends it before `value`), passes it to `early` so the next page
    /// can be requested while this one is still arriving. The caller must check it against the
    /// finished page's link: after a retry the two may differ.
    pub async fn get_page_early(
        &self,
        url: &str,
        advanced: bool,
        what: &str,
        early: Option<tokio::sync::oneshot::Sender<String>>,
    ) -> Result<Page, GraphError> {
        let url = self.checked(url, what)?;
        let token = self.tokens.token().await?;
        let mut get = PageGet {
            client: self,
            url,
            advanced,
            what,
            early,
            token,
            refreshed: false,
        };
        http::run(&self.policy, &mut get).await
    }

    /// A link to follow: it must stay on the Graph root, so a hostile or broken answer cannot
    /// send our token elsewhere.
    fn checked(&self, url: &str, what: &str) -> Result<Url, GraphError> {
        let parsed = Url::parse(url).or_else(|_| self.root.join(url.trim_start_matches('/')));
        match parsed {
            Ok(u) if u.origin() == self.root.origin() => Ok(u),
            _ => Err(GraphError::Malformed {
                what: what.to_owned(),
                detail: format!(
                    "a next link points away from {}: {}",
                    self.root,
                    crate::diag::shorten(url, 80)
                ),
            }),
        }
    }
}
