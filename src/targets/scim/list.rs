//! Listing every user of a SCIM server, page by page (RFC 7644 §3.4.2.4).
//!
//! The first page says how many users there are (`totalResults`) and how many the server
//! puts on a page, which may be fewer than asked; the other pages are then requested a few
//! at a time. A page that comes back shorter than asked leaves a gap that is asked for
//! again; an empty page ends the listing only where the server's own count says the users
//! end (users deleted meanwhile), and is an error anywhere else. Without `totalResults` the
//! pages are read one after the other until one is empty. A page that fails after its
//! retries fails the whole listing: part of the users would look like the rest had left.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reqwest::Method;

use super::endpoint::Users;
use super::resource;
use crate::targets::http::Http;
use crate::targets::{RawUser, TargetError, TargetUser};

/// A page being fetched.
pub(super) type PageFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, TargetError>> + Send>>;

/// Every user, in the server's order, each once. `fetch(start, count)` reads one page.
pub(super) async fn all<F>(
    fetch: F,
    page_size: u32,
    at_once: usize,
) -> Result<Vec<TargetUser>, TargetError>
where
    F: Fn(u64, u64) -> PageFuture + Clone + Send + Sync + 'static,
{
    let mut pages = Pages::default();
    read(fetch, page_size, at_once, &mut pages).await?;
    Ok(pages.into_users())
}

/// Every user, each once, handed to `each` as its page arrives (in no particular order), so
/// that only the pages under way are held whole.
pub(super) async fn each<F>(
    fetch: F,
    page_size: u32,
    at_once: usize,
    each: &mut (dyn for<'a> FnMut(RawUser<'a>) + Send),
) -> Result<(), TargetError>
where
    F: Fn(u64, u64) -> PageFuture + Clone + Send + Sync + 'static,
{
    let mut pages = Pages {
        each: Some(each),
        ..Pages::default()
    };
    read(fetch, page_size, at_once, &mut pages).await
}

async fn read<F>(
    fetch: F,
    page_size: u32,
    at_once: usize,
    pages: &mut Pages<'_>,
) -> Result<(), TargetError>
where
    F: Fn(u64, u64) -> PageFuture + Clone + Send + Sync + 'static,
{
    let page_size = u64::from(page_size.max(1));
    let body = fetch(1, page_size).await?;
    let first = resource::raw_page(&body)?;
    let got = first.users.len() as u64;
    let total = first.total;
    pages.add(1, first.users)?;
    match total {
        Some(total) if got > 0 && got < total => {
            concurrently(fetch, pages, 1 + got, got, total, at_once.max(1)).await
        }
        Some(_) => Ok(()),
        None if got > 0 => one_by_one(fetch, pages, 1 + got, page_size).await,
        None => Ok(()),
    }
}

/// Pages from `start` to `total`, `step` users each, `at_once` in flight. They are read
/// within the listing's own task rather than tasks of their own: turning a page of a
/// thousand users into values takes milliseconds, and the runtime's threads stay free for
/// the requests of the Graph pull that runs beside the listing.
async fn concurrently<F>(
    fetch: F,
    pages: &mut Pages<'_>,
    start: u64,
    step: u64,
    total: u64,
    at_once: usize,
) -> Result<(), TargetError>
where
    F: Fn(u64, u64) -> PageFuture + Clone + Send + Sync + 'static,
{
    let mut next = start;
    // No page starts at or after this: the users end there.
    let mut end = total + 1;
    let mut gaps: VecDeque<(u64, u64)> = VecDeque::new();
    let mut running = FuturesUnordered::new();
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
            let page = fetch(from, count);
            running.push(async move { (from, count, page.await) });
        }
        let Some((from, count, page)) = running.next().await else {
            return Ok(());
        };
        let body = page?;
        let page = resource::raw_page(&body)?;
        let got = page.users.len() as u64;
        if got == 0 {
            ended(from, page.total)?;
            end = end.min(from);
        } else if got < count {
            gaps.push_back((from + got, count - got));
        }
        pages.add(from, page.users)?;
    }
}

/// Pages from `start` until an empty one.
async fn one_by_one<F>(
    fetch: F,
    pages: &mut Pages<'_>,
    mut start: u64,
    page_size: u64,
) -> Result<(), TargetError>
where
    F: Fn(u64, u64) -> PageFuture,
{
    loop {
        let body = fetch(start, page_size).await?;
        let page = resource::raw_page(&body)?;
        let got = page.users.len() as u64;
        if got == 0 {
            return ended(start, page.total);
        }
        pages.add(start, page.users)?;
        start += got;
        if page.total.is_some_and(|total| start > total) {
            return Ok(());
        }
    }
}

/// Whether an empty page at `start` may end the listing: not while the server's count
/// says there are users from there on.
fn ended(start: u64, total: Option<u64>) -> Result<(), TargetError> {
    match total {
        Some(total) if total >= start => Err(TargetError::Malformed(format!(
            "the server counts {total} users but sent none from startIndex={start}"
        ))),
        _ => Ok(()),
    }
}

/// One page: `GET /Users?startIndex=…&count=…`.
pub(super) fn fetch(http: Arc<Http>, start: u64, count: u64) -> PageFuture {
    Box::pin(async move {
        let (start_text, count_text) = (start.to_string(), count.to_string());
        let url = http.users_url(&[("startIndex", &start_text), ("count", &count_text)]);
        let what = format!("GET /Users?startIndex={start}");
        let reply = http.send(Method::GET, &url, None, None, &what).await?;
        if reply.ok() {
            return Ok(reply.body);
        }
        let hint = "if this server does not allow listing users, set `list = false` in [target]";
        match http.refused(&reply, &what) {
            TargetError::Unauthorized {
                target,
                status,
                detail,
            } if status == 403 => Err(TargetError::Unauthorized {
                target,
                status,
                detail: format!("{detail} ({hint})"),
            }),
            TargetError::Rejected { status, detail } if matches!(status, 404 | 405 | 501) => {
                Err(TargetError::Unsupported(format!(
                    "listing users: HTTP {status}: {detail} ({hint})"
                )))
            }
            other => Err(other),
        }
    })
}

/// The pages read so far, by where they start; or, with `each`, their users handed on.
#[derive(Default)]
struct Pages<'e> {
    by_start: BTreeMap<u64, Vec<TargetUser>>,
    /// The ids listed so far (each user is kept or handed on once).
    seen: foldhash::HashSet<Box<str>>,
    each: Option<&'e mut (dyn for<'a> FnMut(RawUser<'a>) + Send)>,
}

impl Pages<'_> {
    /// Adds a page; a whole page of users already listed means the server ignores
    /// `startIndex`, and listing would never end. A user listed again on a later page (the
    /// server's order moved under the listing) is kept once, as first listed.
    fn add(&mut self, start: u64, users: Vec<RawUser<'_>>) -> Result<(), TargetError> {
        let listed = users.len();
        let fresh: Vec<RawUser<'_>> = users
            .into_iter()
            .filter(|u| self.seen.insert(u.id.as_str().into()))
            .collect();
        if listed > 0 && fresh.is_empty() {
            return Err(TargetError::Malformed(format!(
                "the page at startIndex={start} repeats users already listed; the server \
                 does not seem to page by startIndex"
            )));
        }
        match &mut self.each {
            Some(each) => fresh.into_iter().for_each(each),
            None => {
                let users = fresh.into_iter().map(RawUser::parse).collect();
                self.by_start.insert(start, users);
            }
        }
        Ok(())
    }

    fn into_users(self) -> Vec<TargetUser> {
        self.by_start.into_values().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A server of `n` users `u1…un` whose pages hold at most `cap` users, except where
    /// `short` says fewer (by startIndex), and which records the pages asked for.
    #[derive(Clone)]
    struct Fake {
        n: u64,
        cap: u64,
        short: Arc<BTreeMap<u64, u64>>,
        total: Option<u64>,
        asked: Arc<Mutex<Vec<(u64, u64)>>>,
    }

    impl Fake {
        fn new(n: u64, cap: u64) -> Fake {
            Fake {
                n,
                cap,
                short: Arc::default(),
                total: Some(n),
                asked: Arc::default(),
            }
        }

        fn fetcher(&self) -> impl Fn(u64, u64) -> PageFuture + Clone + Send + Sync + 'static {
            let fake = self.clone();
            move |start, count| {
                fake.asked.lock().unwrap().push((start, count));
                let size = count
                    .min(fake.cap)
                    .min(*fake.short.get(&start).unwrap_or(&u64::MAX));
                let ids = (start..=fake.n).take(size as usize);
                let body = body(fake.total, ids);
                Box::pin(async move { Ok(body) })
            }
        }
    }

    /// A list response of the users `u{i}` for each of `ids`.
    fn body(total: Option<u64>, ids: impl Iterator<Item = u64>) -> Vec<u8> {
        let users: Vec<_> = ids
            .map(|i| serde_json::json!({ "id": format!("u{i}") }))
            .collect();
        let mut page = serde_json::json!({ "Resources": users });
        if let Some(total) = total {
            page["totalResults"] = total.into();
        }
        serde_json::to_vec(&page).unwrap()
    }

    fn ids(users: &[TargetUser]) -> Vec<String> {
        users.iter().map(|u| u.id.clone()).collect()
    }

    fn expected(n: u64) -> Vec<String> {
        (1..=n).map(|i| format!("u{i}")).collect()
    }

    #[tokio::test]
    async fn pages_after_the_first_go_at_the_servers_page_size() {
        let fake = Fake::new(23, 5);
        let users = all(fake.fetcher(), 10, 4).await.unwrap();
        assert_eq!(ids(&users), expected(23));
        let mut asked = fake.asked.lock().unwrap().clone();
        asked.sort();
        assert_eq!(asked, [(1, 10), (6, 5), (11, 5), (16, 5), (21, 3)]);
    }

    #[tokio::test]
    async fn a_short_page_in_the_middle_is_filled_in() {
        let mut fake = Fake::new(30, 10);
        fake.short = Arc::new(BTreeMap::from([(11, 4)]));
        let users = all(fake.fetcher(), 10, 2).await.unwrap();
        assert_eq!(ids(&users), expected(30));
        assert!(fake.asked.lock().unwrap().contains(&(15, 6)));
    }

    #[tokio::test]
    async fn without_a_total_pages_are_read_until_one_is_empty() {
        let mut fake = Fake::new(12, 5);
        fake.total = None;
        let users = all(fake.fetcher(), 5, 4).await.unwrap();
        assert_eq!(ids(&users), expected(12));
        assert_eq!(
            *fake.asked.lock().unwrap(),
            [(1, 5), (6, 5), (11, 5), (13, 5)]
        );
    }

    #[tokio::test]
    async fn an_empty_page_where_users_should_be_is_an_error() {
        let mut fake = Fake::new(30, 10);
        fake.short = Arc::new(BTreeMap::from([(11, 0)]));
        let error = all(fake.fetcher(), 10, 4).await.unwrap_err();
        assert!(matches!(error, TargetError::Malformed(_)), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_that_ignores_start_index_is_an_error() {
        let fetch = |_start: u64, _count: u64| -> PageFuture {
            Box::pin(async { Ok(body(Some(9), 1..=3)) })
        };
        let error = all(fetch, 3, 4).await.unwrap_err();
        assert!(error.to_string().contains("repeats users"), "{error}");
    }
}
