//! Listing every user of a SCIM server, page by page (RFC 7644 §3.4.2.4).
//!
//! The first page says how many users there are (`totalResults`) and how many the server
//! puts on a page, which may be fewer than asked; the other pages are then requested a few
//! at a time. A page that comes back shorter than asked leaves a gap that is asked for
//! again; an empty page means the users ran out early. Without `totalResults` the pages are
//! read one after the other until one is empty. A page that fails after its retries fails
//! the whole listing: part of the users would look like the rest had left.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use reqwest::Method;
use tokio::task::JoinSet;

use super::http::Http;
use super::resource::{self, Page};
use crate::target::{TargetError, TargetUser};

/// Every user, in the server's order, each once.
pub(super) async fn all(
    http: &Arc<Http>,
    page_size: u32,
    at_once: usize,
) -> Result<Vec<TargetUser>, TargetError> {
    let page_size = u64::from(page_size.max(1));
    let first = fetch(Arc::clone(http), 1, page_size).await?;
    let mut pages = Pages::default();
    let got = first.users.len() as u64;
    let total = first.total;
    pages.add(1, first.users)?;
    match total {
        Some(total) if got > 0 && got < total => {
            concurrently(http, &mut pages, 1 + got, got, total, at_once.max(1)).await?;
        }
        Some(_) => {}
        None if got > 0 => one_by_one(http, &mut pages, 1 + got, page_size).await?,
        None => {}
    }
    Ok(pages.into_users())
}

/// Pages from `start` to `total`, `step` users each, `at_once` in flight.
async fn concurrently(
    http: &Arc<Http>,
    pages: &mut Pages,
    start: u64,
    step: u64,
    total: u64,
    at_once: usize,
) -> Result<(), TargetError> {
    let mut next = start;
    // No page starts at or after this: the users end there.
    let mut end = total + 1;
    let mut gaps: VecDeque<(u64, u64)> = VecDeque::new();
    let mut running = JoinSet::new();
    loop {
        while running.len() < at_once {
            let (from, count) = match gaps.pop_front() {
                Some((from, _)) if from >= end => continue,
                Some(gap) => gap,
                None if next < end => {
                    let count = step.min(end - next);
                    next += count;
                    (next - count, count)
                }
                None => break,
            };
            let http = Arc::clone(http);
            running.spawn(async move { (from, count, fetch(http, from, count).await) });
        }
        let Some(done) = running.join_next().await else {
            return Ok(());
        };
        let (from, count, page) = done.map_err(|e| {
            TargetError::Unavailable(format!("a page of the user listing was lost: {e}"))
        })?;
        let users = page?.users;
        let got = users.len() as u64;
        if got == 0 {
            end = end.min(from);
        } else if got < count {
            gaps.push_back((from + got, count - got));
        }
        pages.add(from, users)?;
    }
}

/// Pages from `start` until an empty one.
async fn one_by_one(
    http: &Arc<Http>,
    pages: &mut Pages,
    mut start: u64,
    page_size: u64,
) -> Result<(), TargetError> {
    loop {
        let page = fetch(Arc::clone(http), start, page_size).await?;
        let got = page.users.len() as u64;
        if got == 0 {
            return Ok(());
        }
        pages.add(start, page.users)?;
        start += got;
        if page.total.is_some_and(|total| start > total) {
            return Ok(());
        }
    }
}

/// One page: `GET /Users?startIndex=…&count=…`.
async fn fetch(http: Arc<Http>, start: u64, count: u64) -> Result<Page, TargetError> {
    let (start_text, count_text) = (start.to_string(), count.to_string());
    let url = http.users_url(&[("startIndex", &start_text), ("count", &count_text)]);
    let what = format!("GET /Users?startIndex={start}");
    let reply = http.send(Method::GET, &url, None, None, &what).await?;
    if reply.ok() {
        return resource::page(&reply.body);
    }
    let hint = "if this server does not allow listing users, set `list = false` in [target]";
    match http.refusal(&reply, &what) {
        TargetError::Unauthorized {
            target,
            status,
            detail,
        } if status == 403 => Err(TargetError::Unauthorized {
            target,
            status,
            detail: format!("{detail} ({hint})"),
        }),
        TargetError::Rejected { status, detail } if matches!(status, 404 | 405 | 501) => Err(
            TargetError::Unsupported(format!("listing users: HTTP {status}: {detail} ({hint})")),
        ),
        other => Err(other),
    }
}

/// The pages read so far, by where they start.
#[derive(Default)]
struct Pages {
    by_start: BTreeMap<u64, Vec<TargetUser>>,
    seen: HashSet<String>,
}

impl Pages {
    /// Adds a page; a whole page of users already listed means the server ignores
    /// `startIndex`, and listing would never end.
    fn add(&mut self, start: u64, users: Vec<TargetUser>) -> Result<(), TargetError> {
        let before = self.seen.len();
        for user in &users {
            self.seen.insert(user.id.clone());
        }
        if !users.is_empty() && self.seen.len() == before {
            return Err(TargetError::Malformed(format!(
                "the page at startIndex={start} repeats users already listed; the server \
                 does not seem to page by startIndex"
            )));
        }
        self.by_start.insert(start, users);
        Ok(())
    }

    fn into_users(self) -> Vec<TargetUser> {
        let mut ids = HashSet::with_capacity(self.seen.len());
        self.by_start
            .into_values()
            .flatten()
            .filter(|u| ids.insert(u.id.clone()))
            .collect()
    }
}
