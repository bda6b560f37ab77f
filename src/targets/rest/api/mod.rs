//! The API description: what a REST API's user endpoints look like, in a small TOML file.
//!
//! One section per operation gives the HTTP method, a URL template (a path below the
//! target's `url`) and, for writes, a JSON body template. Templates are handlebars in strict
//! mode, compiled once when the file is read; every mistake in the file (a TOML error, an
//! unknown key, a template syntax error, a variable the operation does not have, an unknown
//! method or paging) is reported with its line and column.
//!
//! ```toml
//! name = "Asset DB"                # for messages: "Asset DB at https://…"
//!
//! [user]                           # how a user object in an answer is read
//! id = "id"                        # where its id is (default `id`)
//! folds_case = ["login", "email"]  # fields whose values match regardless of case
//! unescape_html = false            # the API answers `&amp;` for `&`: undo it
//! fold_names = false               # read `Email` as the mapping's `email`
//! fields = { dept_id = "dept.id" } # fields read from elsewhere in the user object
//! as_list = { dept_id = "dept_ids" } # one value sent as a list of one, read from its first
//! integers = ["manager_id"]        # sent as numbers when they hold a whole number as text
//!
//! [answer]                         # an API that answers 200 to a refused request
//! error = { path = "status", equals = "error" }
//! message = "messages"             # where the refusal's message is
//!
//! [list]                           # optional; without it the target only looks users up
//! url = "/api/people?page={{page}}&per_page={{limit}}"
//! paging = "page"                  # none | offset | page | next | cursor | range
//! first_page = 1
//! items = "data"                   # where the users are ("" for the answer itself)
//! total = "meta.total"             # where the number of users is, if given
//! # next = "links.next"            # `next`: the next page's URL; `cursor`: its cursor
//! also = ["/api/people?state=off&page={{page}}&per_page={{limit}}"]  # more users, paged alike
//!
//! [find]                           # a user by one field; only exact matches are kept
//! url = "/api/people?{{field}}={{value}}"
//! items = "data"
//! also = ["/api/people?state=off&{{field}}={{value}}"]  # tried in turn while none is found
//!
//! [get]                            # optional: one user by id
//! url = "/api/people/{{id}}"
//! user = "data"
//!
//! [create]                         # method POST unless given
//! url = "/api/people"
//! body = "{{json record}}"
//! user = "data"                    # where the created user is in the answer
//!
//! [update]                         # method PATCH unless given
//! url = "/api/people/{{id}}"
//! body = "{{json changes}}"
//!
//! [deactivate]                     # optional; otherwise [update] writes the active field
//! method = "POST"
//! url = "/api/people/{{id}}/suspend"
//!
//! [reactivate]                     # optional; otherwise [update] writes the active field
//! method = "POST"
//! url = "/api/people/{{id}}/unsuspend"
//!
//! [session]                        # optional: how `auth = session` signs in
//! login = { method = "POST", url = "/api/login", body = "{\"key\": \"{{token}}\"}" }
//! token = "session.token"          # where the login's answer holds the session token
//! header = "X-Session"             # the header later requests send it in
//! expired = { status = 401, contains = "SESSION_EXPIRED" }  # status, text or both
//! logout = { method = "POST", url = "/api/logout" }
//! headers = { X-App = "{{app_token}}" }  # on every request; left out when empty
//!
//! [[resolve]]                      # a name the mapping writes that the API takes as an id
//! field = "dept"                   # the mapping's field holding the name
//! send_as = "dept_id"              # the field sent with the id instead
//! url = "/api/departments?q={{value}}"
//! items = "data"
//! name = "name"
//! id = "id"
//!
//! [[assets]]                       # optional: what a user holds, asked of leavers
//! kind = "asset"                   # asset | licence | accessory
//! url = "/api/people/{{id}}/devices"
//! items = "data"                   # where the items are ("" for the answer itself)
//! id = "id"                        # where an item's id is
//! name = "name"                    # where its name is
//! tag = "asset_tag"                # where its tag or serial is, if it has one
//!
//! [entities.department]            # optional: a list users refer to by id; KIND is the
//!                                  # name mappings use (department, location, company, …)
//! url = "/api/departments?page={{page}}&per_page={{limit}}"
//! paging = "page"                  # as [list]: none | offset | page | next | cursor
//! items = "data"                   # as [list], with `first_page`, `total`, `next`, `method`
//! id = "id"                        # where an item's id is (default `id`)
//! name = "name"                    # where its name is (default `name`)
//! max_name = 100                   # optional: the longest name the API takes
//! create = { url = "/api/departments", body = "{\"name\": {{json name}}}", entity = "data" }
//!
//! [limits]                         # optional: the API's default request limit
//! per_minute = 120                 # or per_second; `rate_limit` in the config overrides it
//! ```
//!
//! The variables are `page`, `offset`, `limit`, `cursor` and `last` (`offset + limit - 1`)
//! for `[list]`; `field`, `value`
//! and `limit` for `[find]`; `id` for `[get]`; `record` (the mapped user as a JSON object)
//! for `[create]`; `id`, `record`, `changes` (each changed field → its new value, `null` to
//! clear it) and `user` (the user as listed) for `[update]`, `[deactivate]` and
//! `[reactivate]`; `token`, `app_token`, `username` and `password` of the target's config
//! (empty when not given) for `[session]`; `value` for
//! `[[resolve]]`; `id` for `[[assets]]`; `page`, `offset`, `limit` and `cursor` for an
//! `[entities.KIND]` listing and `name` for its `create`. A value put into a URL is
//! percent-encoded and one put into a body is escaped for a JSON string, so a name with `&`
//! or `"` cannot break the request; `{{json x}}` writes a value as JSON (objects, numbers,
//! `null`), and `{{odata x}}` doubles single quotes for an OData string literal. A missing
//! value is an error, not an empty string; test for it with `{{#if record.email}}…{{/if}}`.
//!
//! `range` paging asks for users `offset` to `last` and reads how many there are from the
//! answer's `Content-Range: 0-49/1234`; a listing without that header ends at a short page.
//! `also` in `[list]` names further listings, with the method, paging and `items` of
//! `[list]`, whose users are added to its own (each user once): an API that lists
//! deactivated users only when asked. `also` in `[find]` names further lookups, tried in
//! turn while none before found the user.
//!
//! `[user] as_list` is for an API that keeps a list where the mapping writes one value
//! (Freshservice's `department_ids`): the value is sent as a list of one (an empty list
//! when cleared) and read back from the list's first item. `[user] integers` names fields
//! sent as JSON numbers when they hold a whole number written as text, as the ids the sync
//! finds by reference are.
//!
//! `[deactivate]` and `[reactivate]` are used when a user's only change sets the mapping's
//! active field to its inactive or active value; without them `[update]` writes it. A
//! body wrapped as an API wants it is a template: `body = "{\"input\": {{json record}}}"`.
//!
//! `[session]` is read with `auth = session`: the login is sent before the first request
//! (its `headers` and those of `[session] headers` with it), the answer's token goes in
//! `header` on every later request, and an answer matching `expired` (401 when it is left
//! out) opens a new session and sends the request once more. The logout is sent when the
//! run ends. Header values are written as rendered, without escapes.
//!
//! An `[entities.KIND]` is paged as `[list]` is, with the target's `page_size`, whether or
//! not users are listed (`list = false`). Its `create` (optional; method POST unless
//! given) is answered as any write: a refusal under `[answer]` is one; `entity` is where
//! the created item is in the answer (the answer itself when left out), its id and name
//! read at the same `id` and `name`. Names are read with HTML escapes undone when `[user]`
//! says `unescape_html`, ids as text. A name longer than `max_name` characters is refused
//! before any request.
//!
//! `[limits]` is where requests start; the pace then follows the limits the API's answers
//! give, read from Laravel's `X-RateLimit-*` or Freshservice's `X-Ratelimit-*` headers,
//! over the same period (see `crate::http::pace`).
//!
//! The file as written is `raw.rs`; `compile.rs` and `template.rs` check it into the
//! [`ApiDescription`] of `model.rs`; `render.rs` makes a request's URL and body from it.

mod compile;
mod model;
mod raw;
mod render;
mod template;

use std::sync::Arc;

use crate::config::Preset;
use crate::diag::{Problem, SourceText};

pub use model::{
    ApiDescription, AssetList, EntityList, ErrorAnswer, Operation, Paging, Resolver, Session,
};
pub use render::TemplateError;

/// The text of a built-in API description.
pub fn preset(preset: Preset) -> &'static str {
    match preset {
        Preset::Snipeit => include_str!("../presets/snipeit.toml"),
        Preset::Glpi => include_str!("../presets/glpi.toml"),
        Preset::Freshservice => include_str!("../presets/freshservice.toml"),
    }
}

/// Which requirements a description must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Everything a REST target does: `[find]`, `[create]` and `[update]` at least.
    Writes,
    /// Only reading (a target that writes some other way).
    Reads,
}

/// Reads and compiles an API description; every problem in it is reported.
pub fn parse(source: &Arc<SourceText>, needs: Needs) -> Result<ApiDescription, Vec<Problem>> {
    let raw = raw::RawApi::read(source)?;
    compile::Compiler::new(source).compile(raw, needs)
}

#[cfg(test)]
mod tests;
