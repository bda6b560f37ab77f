//! Reading users: the listing of every user, page by page as `[list]` says, and the lookup
//! of one user by a field (`[find]`).
//!
//! A listing fails rather than return part of the users, and a server that repeats a page
//! or never ends its list is an error rather than a loop. The lists of entities users refer
//! to (`[entities.KIND]`) are paged by the same code. A lookup keeps only exact matches,
//! since search endpoints match parts of fields.

use std::collections::HashSet;

use serde_json::{Value as Json, json};
use url::Url;

use super::RestTarget;
use super::api::{Operation, Paging};
use super::json::{is_empty, json_at, json_at_map};
use crate::diag::shorten;
use crate::targets::{TargetError, TargetUser};

/// No listing reads more pages than this: a server that never ends its list is an error.
const MAX_PAGES: usize = 1_000_000;

/// Where a listing stands: what the next page's request needs.
struct Pager {
    offset: u64,
    page: u64,
    cursor: Json,
    /// The next page's URL as the last answer gave it (`next` paging).
    link: Option<Url>,
}

impl Pager {
    /// The variables of the next page's URL template.
    fn vars(&self, limit: u64) -> Json {
        json!({
            "page": self.page,
            "offset": self.offset,
            "limit": limit,
            "cursor": self.cursor,
            "last": self.offset + limit.max(1) - 1,
        })
    }
}

/// What a listing lists, for its requests and messages.
pub(super) struct Listed<'a> {
    /// The list, as in "page 3 of the user list" (`user`, `` `department` ``).
    pub(super) list: &'a str,
    /// Its items, as in "repeats users already listed" (`users`, `entries`).
    pub(super) items: &'a str,
}

/// The users' listing.
const USERS: Listed<'static> = Listed {
    list: "user",
    items: "users",
};

impl RestTarget {
    /// Every user in the target: those of `[list]`, then those of each `also` listing not
    /// listed before; fails rather than return part of them.
    pub(super) async fn list_users(&self) -> Result<Vec<TargetUser>, TargetError> {
        let op = self.listing()?;
        let mut users = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for op in std::iter::once(op).chain(&self.api.list_also) {
            let read = |body: &Json| self.users_in(body, op);
            let listed = self
                .list_all(op, &USERS, read, |user: &TargetUser| user.id.as_str())
                .await?;
            users.extend(listed.into_iter().filter(|u| seen.insert(u.id.clone())));
        }
        Ok(users)
    }

    /// Every item of a listing, page by page as `op` says: `read` takes a page's items out
    /// of its answer, `id` says what an item's id is. Fails rather than return part of the
    /// items; a page that only repeats items listed before, or a list that does not end,
    /// is an error rather than a loop.
    pub(super) async fn list_all<T>(
        &self,
        op: &Operation,
        listed: &Listed<'_>,
        read: impl Fn(&Json) -> Result<Vec<T>, TargetError> + Send,
        id: impl Fn(&T) -> &str + Send,
    ) -> Result<Vec<T>, TargetError>
    where
        T: Send,
    {
        let limit = u64::from(self.page_size);
        let mut items: Vec<T> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut pager = Pager {
            offset: 0,
            page: op.first_page,
            cursor: Json::Null,
            link: None,
        };
        for number in 1..=MAX_PAGES {
            let url = match pager.link.take() {
                Some(url) => url,
                None => self.url(op, &pager.vars(limit))?,
            };
            let what = format!("listing {} (page {number})", listed.items);
            let answer = self.call_answer(op, &url, None, &what).await?;
            let body = answer.body;
            let page = read(&body)?;
            let count = page.len() as u64;
            let before = items.len();
            for item in page {
                if seen.insert(id(&item).to_string()) {
                    items.push(item);
                }
            }
            if count > 0 && items.len() == before {
                return Err(TargetError::Malformed(format!(
                    "{}: page {number} of the {} list repeats {} already listed",
                    self.client.name(),
                    listed.list,
                    listed.items
                )));
            }
            let total = op
                .total
                .as_deref()
                .and_then(|p| json_at(&body, p))
                .and_then(Json::as_u64);
            let done = |listed: u64| count == 0 || total.map_or(count < limit, |t| listed >= t);
            let more = match op.paging {
                Paging::None => false,
                Paging::Offset => {
                    pager.offset += count;
                    !done(pager.offset)
                }
                Paging::Page => {
                    pager.page += 1;
                    !done(items.len() as u64)
                }
                Paging::Range => {
                    pager.offset += count;
                    match answer.content_range.as_deref() {
                        Some(range) => count > 0 && pager.offset < self.range_total(range, &url)?,
                        None => !done(pager.offset),
                    }
                }
                Paging::Next | Paging::Cursor => {
                    self.turn(op, &mut pager, &body, &url, number, listed)?
                }
            };
            if !more {
                return Ok(items);
            }
        }
        Err(TargetError::Malformed(format!(
            "{}: the {} list did not end after {MAX_PAGES} pages",
            self.client.name(),
            listed.list
        )))
    }

    /// The total of a `Content-Range` answer (`0-49/1234`, or `items 0-49/1234`).
    fn range_total(&self, range: &str, url: &Url) -> Result<u64, TargetError> {
        range
            .rsplit_once('/')
            .and_then(|(_, total)| total.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                TargetError::Malformed(format!(
                    "{}: {} answered a Content-Range without a total: {}",
                    self.client.name(),
                    self.client.scrub(url.as_str()),
                    shorten(range, 60)
                ))
            })
    }

    /// `[list]`, unless the config turned listing off.
    fn listing(&self) -> Result<&Operation, TargetError> {
        if !self.list_enabled {
            return Err(TargetError::Unsupported(format!(
                "{}: listing is turned off (`list = false`)",
                self.client.name()
            )));
        }
        self.operation(&self.api.list, "list")
    }

    /// Moves `pager` to the page after page `number` (read from `url`) for `next` and
    /// `cursor` paging; false when there is none.
    fn turn(
        &self,
        op: &Operation,
        pager: &mut Pager,
        body: &Json,
        url: &Url,
        number: usize,
        listed: &Listed<'_>,
    ) -> Result<bool, TargetError> {
        let next = op
            .next
            .as_deref()
            .and_then(|p| json_at(body, p))
            .filter(|v| !is_empty(v));
        match (op.paging, next) {
            (_, None) => return Ok(false),
            (Paging::Next, Some(Json::String(next))) => {
                pager.link = Some(self.client.follow(url, next)?)
            }
            (Paging::Cursor, Some(next)) if *next != pager.cursor => pager.cursor = next.clone(),
            (_, Some(other)) => {
                return Err(TargetError::Malformed(format!(
                    "{}: page {number} of the {} list has an unusable next page: {}",
                    self.client.name(),
                    listed.list,
                    self.client.scrub(&shorten(&other.to_string(), 80))
                )));
            }
        }
        Ok(true)
    }

    /// The user whose `field` equals `value`, exactly (or but for case where it folds).
    pub(super) async fn find_user(
        &self,
        field: &str,
        value: &Json,
    ) -> Result<Option<TargetUser>, TargetError> {
        let first = self.operation(&self.api.find, "find")?;
        let vars = json!({ "field": field, "value": value, "limit": self.page_size });
        let what = format!("looking up {field}");
        let mut matches: Vec<TargetUser> = Vec::new();
        // `[find]`, then each `also` lookup while nobody is found.
        for op in std::iter::once(first).chain(&self.api.find_also) {
            let url = self.url(op, &vars)?;
            let (_, body) = self.call(op, &url, None, &what).await?;
            matches = self
                .users_in(&body, op)?
                .into_iter()
                .filter(|u| json_at_map(&u.data, field).is_some_and(|v| self.same(field, v, value)))
                .collect();
            if !matches.is_empty() {
                break;
            }
        }
        match matches.len() {
            0 => Ok(None),
            1 => Ok(matches.pop()),
            n => Err(TargetError::Malformed(format!(
                "{}: {n} users have the same {field}",
                self.client.name()
            ))),
        }
    }
}
