//! A compiled API description: what the REST target reads to build and read its requests.
//!
//! Everything here has been checked; the templates are compiled into the two registries
//! (URLs and bodies) that [`ApiDescription::url`] and [`ApiDescription::body`] render.

use std::collections::BTreeMap;

use handlebars::Handlebars;
use reqwest::Method;
use serde_json::Value as Json;

use crate::http::Rate;
use crate::targets::HoldingKind;

/// How a listing moves from one page to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// One request returns every user.
    None,
    /// `offset` grows by the users received; `limit` is the page size.
    Offset,
    /// `page` counts from `first_page`; `limit` is the page size.
    Page,
    /// The answer holds the next page's URL at `next`, followed as given.
    Next,
    /// The answer holds an opaque cursor at `next`, passed back as `cursor`.
    Cursor,
    /// Items `offset` to `last` are asked for (GLPI's `range=0-49`), and the answer's
    /// `Content-Range: 0-49/1234` says how many there are.
    Range,
}

/// One operation: its method and where to read its answer.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `list`, `find`, `get`, `create`, `update`, `deactivate`, `resolve.N`, `assets.N`,
    /// `entities.KIND` or `entities.KIND.create`.
    pub name: String,
    /// The HTTP method.
    pub method: Method,
    /// Where the users (or items) are in an answer (`rows`); empty for the answer itself.
    pub items: String,
    /// Where the total number of users is, if the API says.
    pub total: Option<String>,
    /// Where the next page's link or cursor is.
    pub next: Option<String>,
    /// Where the user (or the created entity) is in the answer of a get or a write, if it
    /// returns one; empty for the answer itself.
    pub user: Option<String>,
    /// How a listing pages.
    pub paging: Paging,
    /// The number of the first page (`page` paging).
    pub first_page: u64,
    /// The variables its templates read.
    pub uses: Vec<String>,
}

impl Operation {
    /// An operation that pages not at all, before its templates are compiled.
    pub(super) fn new(
        name: &str,
        method: Method,
        items: Option<String>,
        user: Option<String>,
    ) -> Operation {
        Operation {
            name: name.to_string(),
            method,
            items: items.unwrap_or_default(),
            total: None,
            next: None,
            user,
            paging: Paging::None,
            first_page: 1,
            uses: Vec::new(),
        }
    }

    /// Whether its templates read `variable`.
    pub fn uses(&self, variable: &str) -> bool {
        self.uses.iter().any(|u| u == variable)
    }
}

/// How a 200 answer says the request failed anyway (Snipe-IT's `"status": "error"`).
#[derive(Debug, Clone)]
pub struct ErrorAnswer {
    /// Where the marker is.
    pub path: String,
    /// The marker's value on failure.
    pub equals: Json,
}

/// A field the mapping fills with a name but the API takes as an id, looked up by name.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The mapping's field that holds the name (`department`).
    pub field: String,
    /// The field the API takes the id in (`department_id`).
    pub send_as: String,
    /// The search request (`resolve.N`).
    pub operation: Operation,
    /// Where an item's name is.
    pub name: String,
    /// Where an item's id is.
    pub id: String,
}

/// One request that lists what a user holds (`[[assets]]`), and how to read its items.
#[derive(Debug, Clone)]
pub struct AssetList {
    /// What its items are.
    pub kind: HoldingKind,
    /// The request (`assets.N`), its URL made from the user's `id`.
    pub operation: Operation,
    /// Where an item's id is.
    pub id: String,
    /// Where an item's name is.
    pub name: String,
    /// Where an item's tag or serial number is, if it has one.
    pub tag: Option<String>,
}

/// A list of entities users refer to (`[entities.KIND]`: departments, locations,
/// companies), how to read its items and, if the API takes new ones, how to create one.
#[derive(Debug, Clone)]
pub struct EntityList {
    /// Its kind, as mappings name it (`department`).
    pub kind: String,
    /// The listing (`entities.KIND`), paged as `[list]` is.
    pub operation: Operation,
    /// Where an item's id is.
    pub id: String,
    /// Where an item's name is.
    pub name: String,
    /// The longest name the API takes, in characters, when the description says.
    pub max_name: Option<usize>,
    /// The create (`entities.KIND.create`), its templates reading `name`; its `user` is
    /// where the created item is in the answer.
    pub create: Option<Operation>,
}

/// A session (`[session]`): a login request whose answer holds a token, sent on later
/// requests in a header, and a logout request at the end of the run. Its templates read
/// `token`, `app_token`, `username` and `password` of the target's config.
#[derive(Debug, Clone)]
pub struct Session {
    /// The login request (`session.login`); POST unless given.
    pub login: Operation,
    /// The names of the login's own headers.
    pub login_headers: Vec<String>,
    /// Where the login's answer holds the token.
    pub token: String,
    /// The header later requests send the token in.
    pub header: String,
    /// The status that says the session expired.
    pub expired_status: Option<u16>,
    /// A text whose presence in an answer says the session expired.
    pub expired_text: Option<String>,
    /// The logout request (`session.logout`); POST unless given.
    pub logout: Option<Operation>,
    /// The names of the logout's own headers.
    pub logout_headers: Vec<String>,
    /// The names of the headers every request carries (`session.headers`).
    pub headers: Vec<String>,
}

/// A compiled API description.
#[derive(Debug)]
pub struct ApiDescription {
    /// What the API is called, for messages (`Snipe-IT`).
    pub name: String,
    /// Where a user object keeps its id.
    pub id: String,
    /// Fields whose values match regardless of case.
    pub folds_case: Vec<String>,
    /// Whether the API HTML-escapes text in its answers (`&amp;`), to be undone.
    pub unescape_html: bool,
    /// Whether a user's keys are renamed to the mapping's field names they equal but for
    /// case (`email` read as `EMAIL`).
    pub fold_names: bool,
    /// Fields of a listed user read from elsewhere in it: target field → path.
    pub fields: BTreeMap<String, String>,
    /// Fields the mapping writes as one value that the API keeps as a list: target field →
    /// the API's list field. The value is sent as a list of one and read back from the
    /// list's first item.
    pub as_list: BTreeMap<String, String>,
    /// Fields sent as JSON numbers when they hold a whole number written as text (ids the
    /// sync finds by reference are text).
    pub integers: Vec<String>,
    /// How a 200 answer marks a failure.
    pub error: Option<ErrorAnswer>,
    /// Where a failure's message is.
    pub message: Option<String>,
    /// The operations given, by name.
    pub list: Option<Operation>,
    /// Further listings whose users are added to those of `[list]` (`also`), paged as it
    /// is: an API that lists deactivated users apart.
    pub list_also: Vec<Operation>,
    /// See [`ApiDescription::list`].
    pub find: Option<Operation>,
    /// Further lookups tried in turn while `[find]` finds nobody (`also`), answered as it
    /// is: an API that looks up deactivated users apart.
    pub find_also: Vec<Operation>,
    /// See [`ApiDescription::list`].
    pub get: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub create: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub update: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub deactivate: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub reactivate: Option<Operation>,
    /// How a session is opened and closed, if the API signs in that way.
    pub session: Option<Session>,
    /// Names the API takes as ids.
    pub resolve: Vec<Resolver>,
    /// The requests that list what a user holds; none when the API does not say.
    pub assets: Vec<AssetList>,
    /// The lists of entities users refer to, by kind.
    pub entities: BTreeMap<String, EntityList>,
    /// The API's default request limit (`[limits]`), when it has one.
    pub limit: Option<Rate>,
    pub(super) source: String,
    pub(super) urls: Handlebars<'static>,
    pub(super) bodies: Handlebars<'static>,
    pub(super) headers: Handlebars<'static>,
}

impl ApiDescription {
    /// Where the description came from (a file name, or the preset).
    pub fn source(&self) -> &str {
        &self.source
    }
}
