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
//!
//! [answer]                         # an API that answers 200 to a refused request
//! error = { path = "status", equals = "error" }
//! message = "messages"             # where the refusal's message is
//!
//! [list]                           # optional; without it the target only looks users up
//! url = "/api/people?page={{page}}&per_page={{limit}}"
//! paging = "page"                  # none | offset | page | next | cursor
//! first_page = 1
//! items = "data"                   # where the users are ("" for the answer itself)
//! total = "meta.total"             # where the number of users is, if given
//! # next = "links.next"            # `next`: the next page's URL; `cursor`: its cursor
//!
//! [find]                           # a user by one field; only exact matches are kept
//! url = "/api/people?{{field}}={{value}}"
//! items = "data"
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
//! [[resolve]]                      # a name the mapping writes that the API takes as an id
//! field = "dept"                   # the mapping's field holding the name
//! send_as = "dept_id"              # the field sent with the id instead
//! url = "/api/departments?q={{value}}"
//! items = "data"
//! name = "name"
//! id = "id"
//! ```
//!
//! The variables are `page`, `offset`, `limit` and `cursor` for `[list]`; `field`, `value`
//! and `limit` for `[find]`; `id` for `[get]`; `record` (the mapped user as a JSON object)
//! for `[create]`; `id`, `record`, `changes` (each changed field → its new value, `null` to
//! clear it) and `user` (the user as listed) for `[update]` and `[deactivate]`; `value` for
//! `[[resolve]]`. A value put into a URL is percent-encoded and one put into a body is
//! escaped for a JSON string, so a name with `&` or `"` cannot break the request;
//! `{{json x}}` writes a value as JSON (objects, numbers, `null`), and `{{odata x}}` doubles
//! single quotes for an OData string literal. A missing value is an error, not an empty
//! string; test for it with `{{#if record.email}}…{{/if}}`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathSeg, RenderContext,
    RenderError, ScopedJson,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value as Json;
use toml::Spanned;

use crate::config::Preset;
use crate::diag::{Problem, SourceText, nearest, shorten};

/// The text of a built-in API description.
pub fn preset(preset: Preset) -> &'static str {
    match preset {
        Preset::Snipeit => include_str!("presets/snipeit.toml"),
    }
}

// ----- the file as written ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    name: Option<String>,
    #[serde(default)]
    user: RawUser,
    #[serde(default)]
    answer: RawAnswer,
    list: Option<RawList>,
    find: Option<RawFind>,
    get: Option<RawGet>,
    create: Option<RawWrite>,
    update: Option<RawWrite>,
    deactivate: Option<RawWrite>,
    #[serde(default)]
    resolve: Vec<RawResolve>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: Option<String>,
    #[serde(default)]
    folds_case: Vec<String>,
    #[serde(default)]
    unescape_html: bool,
    #[serde(default)]
    fold_names: bool,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    error: Option<RawCondition>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    path: String,
    equals: toml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    paging: Option<Spanned<String>>,
    first_page: Option<u64>,
    items: Option<String>,
    total: Option<String>,
    next: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFind {
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    items: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGet {
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWrite {
    method: Option<Spanned<String>>,
    url: Spanned<String>,
    body: Option<Spanned<String>>,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolve {
    field: String,
    send_as: String,
    url: Spanned<String>,
    items: Option<String>,
    name: Option<String>,
    id: Option<String>,
}

// ----- the compiled description ----------------------------------------------------------

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
}

/// One operation: its method and where to read its answer.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `list`, `find`, `get`, `create`, `update`, `deactivate` or `resolve.N`.
    pub name: String,
    /// The HTTP method.
    pub method: Method,
    /// Where the users are in an answer (`rows`); empty for the answer itself.
    pub items: String,
    /// Where the total number of users is, if the API says.
    pub total: Option<String>,
    /// Where the next page's link or cursor is.
    pub next: Option<String>,
    /// Where the user is in the answer of a get or a write, if it returns one.
    pub user: Option<String>,
    /// How a listing pages.
    pub paging: Paging,
    /// The number of the first page (`page` paging).
    pub first_page: u64,
    /// The variables its templates read.
    pub uses: Vec<String>,
}

impl Operation {
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
    /// How a 200 answer marks a failure.
    pub error: Option<ErrorAnswer>,
    /// Where a failure's message is.
    pub message: Option<String>,
    /// The operations given, by name.
    pub list: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub find: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub get: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub create: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub update: Option<Operation>,
    /// See [`ApiDescription::list`].
    pub deactivate: Option<Operation>,
    /// Names the API takes as ids.
    pub resolve: Vec<Resolver>,
    source: String,
    urls: Handlebars<'static>,
    bodies: Handlebars<'static>,
}

impl ApiDescription {
    /// Where the description came from (a file name, or the preset).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders an operation's URL template.
    pub fn url(&self, operation: &str, vars: &Json) -> Result<String, String> {
        self.urls
            .render(operation, vars)
            .map_err(|e| format!("{}: [{operation}] url: {}", self.source, render_reason(&e)))
    }

    /// Renders an operation's body template into JSON; `None` when it has none.
    pub fn body(&self, operation: &str, vars: &Json) -> Result<Option<Json>, String> {
        if !self.bodies.has_template(operation) {
            return Ok(None);
        }
        let text = self
            .bodies
            .render(operation, vars)
            .map_err(|e| format!("{}: [{operation}] body: {}", self.source, render_reason(&e)))?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            format!(
                "{}: [{operation}] body is not JSON ({e}): {}",
                self.source,
                shorten(&text, 120)
            )
        })
    }
}

fn render_reason(error: &handlebars::RenderError) -> String {
    match error.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            format!("`{path}` has no value")
        }
        other => other.to_string(),
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
    let raw: RawApi = match toml::from_str(source.text()) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            return Err(vec![Problem::error(source, span, message).with_hint(
                "the API description format is described in src/targets/rest/api.rs",
            )]);
        }
    };
    let mut c = Compiler {
        source,
        problems: Vec::new(),
        urls: registry(url_escape),
        bodies: registry(json_escape),
        uses: Vec::new(),
    };
    let list = raw.list.map(|l| c.list(l));
    let find = raw.find.map(|f| {
        let method = c.method(f.method.as_ref(), Method::GET);
        c.template("find", "url", &f.url, &["field", "value", "limit"], true);
        c.finish(operation("find", method, f.items, None))
    });
    let get = raw.get.map(|g| {
        let method = c.method(g.method.as_ref(), Method::GET);
        c.template("get", "url", &g.url, &["id"], true);
        c.finish(operation("get", method, None, g.user))
    });
    let create = raw
        .create
        .map(|w| c.write("create", w, Method::POST, &["record"]));
    let write_vars = ["id", "record", "changes", "user"];
    let update = raw
        .update
        .map(|w| c.write("update", w, Method::PATCH, &write_vars));
    let deactivate = raw
        .deactivate
        .map(|w| c.write("deactivate", w, Method::PATCH, &write_vars));
    let resolve: Vec<Resolver> = raw
        .resolve
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let name = format!("resolve.{i}");
            c.template(&name, "url", &r.url, &["value"], true);
            Resolver {
                field: r.field,
                send_as: r.send_as,
                operation: c.finish(operation(&name, Method::GET, r.items, None)),
                name: r.name.unwrap_or_else(|| "name".to_string()),
                id: r.id.unwrap_or_else(|| "id".to_string()),
            }
        })
        .collect();
    if needs == Needs::Writes {
        for (section, given) in [
            ("find", find.is_some()),
            ("create", create.is_some()),
            ("update", update.is_some()),
        ] {
            if !given {
                c.problems.push(
                    Problem::error(
                        source,
                        0..0,
                        format!("the API description has no [{section}]"),
                    )
                    .with_hint(format!("add [{section}] with at least `url`")),
                );
            }
        }
    }
    if !c.problems.is_empty() {
        return Err(crate::diag::sorted(c.problems));
    }
    Ok(ApiDescription {
        name: raw.name.unwrap_or_else(|| "REST API".to_string()),
        id: raw.user.id.unwrap_or_else(|| "id".to_string()),
        folds_case: raw.user.folds_case,
        unescape_html: raw.user.unescape_html,
        fold_names: raw.user.fold_names,
        fields: raw.user.fields,
        error: raw.answer.error.map(|e| ErrorAnswer {
            path: e.path,
            equals: toml_to_json(e.equals),
        }),
        message: raw.answer.message,
        list,
        find,
        get,
        create,
        update,
        deactivate,
        resolve,
        source: source.name().to_string(),
        urls: c.urls,
        bodies: c.bodies,
    })
}

fn operation(name: &str, method: Method, items: Option<String>, user: Option<String>) -> Operation {
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

fn toml_to_json(value: toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => Json::from(f),
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Json::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

struct Compiler<'a> {
    source: &'a Arc<SourceText>,
    problems: Vec<Problem>,
    urls: Handlebars<'static>,
    bodies: Handlebars<'static>,
    /// The variables the templates compiled since the last operation read.
    uses: Vec<String>,
}

impl Compiler<'_> {
    /// `op` with the variables its templates read.
    fn finish(&mut self, mut op: Operation) -> Operation {
        op.uses = std::mem::take(&mut self.uses);
        op
    }

    fn error(&mut self, span: Range<usize>, message: String, hint: Option<String>) {
        let mut problem = Problem::error(self.source, span, message);
        if let Some(hint) = hint {
            problem = problem.with_hint(hint);
        }
        self.problems.push(problem);
    }

    fn method(&mut self, written: Option<&Spanned<String>>, default: Method) -> Method {
        let Some(written) = written else {
            return default;
        };
        match written.get_ref().to_ascii_uppercase().as_str() {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            _ => {
                self.error(
                    written.span(),
                    format!("unknown method `{}`", shorten(written.get_ref(), 20)),
                    Some("use GET, POST, PUT, PATCH or DELETE".to_string()),
                );
                default
            }
        }
    }

    fn list(&mut self, l: RawList) -> Operation {
        let method = self.method(l.method.as_ref(), Method::GET);
        self.template(
            "list",
            "url",
            &l.url,
            &["page", "offset", "limit", "cursor"],
            true,
        );
        let kinds = [
            ("none", Paging::None),
            ("offset", Paging::Offset),
            ("page", Paging::Page),
            ("next", Paging::Next),
            ("cursor", Paging::Cursor),
        ];
        let paging = match &l.paging {
            None => Paging::None,
            Some(written) => match kinds.iter().find(|(n, _)| n == written.get_ref()) {
                Some((_, kind)) => *kind,
                None => {
                    let names = kinds.map(|(n, _)| n);
                    let hint = match nearest(written.get_ref(), names) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("use one of: {}", names.join(", ")),
                    };
                    self.error(
                        written.span(),
                        format!("unknown paging `{}`", shorten(written.get_ref(), 20)),
                        Some(hint),
                    );
                    Paging::None
                }
            },
        };
        if matches!(paging, Paging::Next | Paging::Cursor) && l.next.is_none() {
            let span = l.paging.as_ref().map_or(0..0, Spanned::span);
            self.error(
                span,
                "this paging needs `next`: where the answer holds the next page".to_string(),
                Some("e.g. next = \"links.next\"".to_string()),
            );
        }
        let mut op = operation("list", method, l.items, None);
        op.total = l.total;
        op.next = l.next.map(Spanned::into_inner);
        op.paging = paging;
        op.first_page = l.first_page.unwrap_or(1);
        self.finish(op)
    }

    fn write(&mut self, name: &str, w: RawWrite, default: Method, vars: &[&str]) -> Operation {
        let method = self.method(w.method.as_ref(), default);
        self.template(name, "url", &w.url, vars, true);
        if let Some(body) = &w.body {
            self.template(name, "body", body, vars, false);
        }
        let op = operation(name, method, None, w.user);
        self.finish(op)
    }

    /// Compiles one template and checks the variables it reads.
    fn template(
        &mut self,
        name: &str,
        key: &str,
        written: &Spanned<String>,
        vars: &[&str],
        url: bool,
    ) {
        let text = written.get_ref();
        let at = self.text_start(written);
        let compiled = match handlebars::Template::compile(text) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.pos().map_or(0, |(line, col)| offset_of(text, line, col));
                self.error(
                    self.place(written, at, offset),
                    format!("[{name}] {key}: template syntax error: {}", e.reason()),
                    None,
                );
                return;
            }
        };
        let mut found = Vec::new();
        variables(&compiled, &mut found);
        for (variable, (line, col)) in found {
            if vars.contains(&variable.as_str()) {
                if !self.uses.contains(&variable) {
                    self.uses.push(variable);
                }
                continue;
            }
            let offset = offset_of(text, line, col);
            let hint = match nearest(&variable, vars.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("[{name}] can use: {}", vars.join(", ")),
            };
            self.error(
                self.place(written, at, offset),
                format!("[{name}] {key}: unknown variable `{variable}`"),
                Some(hint),
            );
        }
        let registry = if url {
            &mut self.urls
        } else {
            &mut self.bodies
        };
        registry.register_template(name, compiled);
    }

    /// Where a string's text starts in the file, when it is written there verbatim.
    fn text_start(&self, written: &Spanned<String>) -> Option<usize> {
        let span = written.span();
        let in_file = self.source.text().get(span.clone())?;
        in_file
            .find(written.get_ref().as_str())
            .map(|i| span.start + i)
    }

    /// The file bytes for an offset inside a template (its whole value if not verbatim).
    fn place(&self, written: &Spanned<String>, at: Option<usize>, offset: usize) -> Range<usize> {
        match at {
            Some(start) => {
                let text = written.get_ref();
                // The character at `offset`, or the last one when it is past the end.
                let (at, c) = text
                    .char_indices()
                    .take_while(|(i, _)| *i <= offset)
                    .last()
                    .unwrap_or((0, ' '));
                start + at..start + at + c.len_utf8()
            }
            None => written.span(),
        }
    }
}

/// The variables a template reads, each with its line and column in the template. Inside
/// `#each` and `#with` the context changes, so names there are not collected.
fn variables(template: &handlebars::Template, found: &mut Vec<(String, (usize, usize))>) {
    for (i, element) in template.elements.iter().enumerate() {
        let place = template.mapping.get(i).map_or((1, 1), |m| (m.0, m.1));
        let helper = match element {
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => h,
            _ => continue,
        };
        let mut names = Vec::new();
        match &helper.name {
            Parameter::Name(name) if !HELPERS.contains(&name.as_str()) => names.push(name.clone()),
            Parameter::Path(path) => names.extend(first_name(path)),
            _ => {}
        }
        let mut params: Vec<&Parameter> = helper.params.iter().collect();
        params.extend(helper.hash.values());
        while let Some(param) = params.pop() {
            match param {
                Parameter::Path(path) => names.extend(first_name(path)),
                Parameter::Subexpression(sub) => {
                    if let TemplateElement::Expression(inner) = sub.as_element() {
                        params.extend(inner.params.iter());
                        params.extend(inner.hash.values());
                    }
                }
                _ => {}
            }
        }
        for name in names {
            let root = name
                .split(['.', '/'])
                .next()
                .unwrap_or_default()
                .to_string();
            if !root.is_empty() && !root.starts_with('@') && root != "this" {
                found.push((root, place));
            }
        }
        let changes_context =
            matches!(&helper.name, Parameter::Name(n) if n == "each" || n == "with");
        if helper.block && !changes_context {
            for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                variables(inner, found);
            }
        }
    }
}

fn first_name(path: &handlebars::Path) -> Option<String> {
    match path {
        handlebars::Path::Relative((segs, _)) => match segs.first() {
            Some(PathSeg::Named(name)) => Some(name.clone()),
            _ => None,
        },
        handlebars::Path::Local(_) => None,
    }
}

/// The byte offset of a 1-based line and column in `text`.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = text.get(start.min(text.len())..).unwrap_or_default();
    start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

/// The helpers templates may call: handlebars' own and `json`.
const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len", "json", "odata",
];

/// A strict registry whose plain `{{value}}` output goes through `escape`.
fn registry(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape);
    registry.register_helper("json", Box::new(JsonHelper));
    registry.register_helper("odata", Box::new(ODataHelper));
    registry
}

/// Everything but unreserved characters percent-encoded, so a value stays one value in a
/// path segment or a query parameter.
fn url_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The text escaped for use inside a JSON string.
fn json_escape(value: &str) -> String {
    let quoted = Json::String(value.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// `{{json value}}`: the value as JSON, unescaped (it is JSON already).
struct JsonHelper;

impl HelperDef for JsonHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = h.param(0).map_or(&Json::Null, |p| p.value());
        out.write(&value.to_string())?;
        Ok(())
    }
}

/// `{{odata value}}`: the value as the inside of an OData string literal (`'` doubled), for
/// filters such as `(USER eq '{{odata value}}')`; then escaped as any value is.
struct ODataHelper;

impl HelperDef for ODataHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let text = match h.param(0).map(|p| p.value()) {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Ok(ScopedJson::Derived(Json::String(text.replace('\'', "''"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(text: &str) -> Result<ApiDescription, Vec<Problem>> {
        parse(&SourceText::new("api.toml", text), Needs::Reads)
    }

    fn lines(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(Problem::one_line).collect()
    }

    #[test]
    fn the_documented_example_compiles() {
        let text: String = include_str!("api.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .skip_while(|l| *l != "```toml")
            .skip(1)
            .take_while(|l| *l != "```")
            .map(|l| format!("{l}\n"))
            .collect();
        let source = SourceText::new("example", text);
        let api = parse(&source, Needs::Writes).unwrap_or_else(|p| panic!("{:?}", lines(&p)));
        assert_eq!(api.list.as_ref().map(|l| l.paging), Some(Paging::Page));
        assert_eq!(
            api.deactivate.as_ref().map(|d| d.method.clone()),
            Some(Method::POST)
        );
        assert_eq!(api.resolve.len(), 1);
    }

    #[test]
    fn every_preset_compiles() {
        for preset in Preset::ALL {
            let (name, text) = (preset.name(), super::preset(preset));
            let source = SourceText::new(name, text);
            if let Err(problems) = parse(&source, Needs::Writes) {
                panic!("{name}: {:?}", lines(&problems));
            }
        }
    }

    #[test]
    fn values_are_escaped_for_where_they_go() {
        let api = compile(
            "[find]\nurl = \"/u?{{field}}={{value}}\"\n\
             [create]\nurl = \"/u\"\nbody = '{\"n\": \"{{record.n}}\", \"all\": {{json record}}}'\n",
        )
        .unwrap();
        let url = api
            .url("find", &json!({"field": "mail", "value": "a&b c/é"}))
            .unwrap();
        assert_eq!(url, "/u?mail=a%26b%20c%2F%C3%A9");
        let filter =
            compile("[find]\nurl = \"/u?filter=({{field}} eq '{{odata value}}')\"\n").unwrap();
        let url = filter
            .url("find", &json!({"field": "USER", "value": "o'neil"}))
            .unwrap();
        assert_eq!(url, "/u?filter=(USER eq 'o%27%27neil')");
        let record = json!({"n": "say \"hi\"\n", "k": 1});
        let body = api.body("create", &json!({"record": record})).unwrap();
        assert_eq!(body, Some(json!({"n": "say \"hi\"\n", "all": record})));
    }

    #[test]
    fn a_missing_value_is_an_error_not_an_empty_string() {
        let api =
            compile("[create]\nurl = \"/u\"\nbody = '{\"e\": \"{{record.email}}\"}'\n").unwrap();
        let error = api.body("create", &json!({"record": {}})).unwrap_err();
        assert!(error.contains("record.email"), "{error}");
        // `if` may test for a value that is not there.
        let api = compile(
            "[create]\nurl = \"/u\"\nbody = '{ {{#if record.email}}\"e\": {{json record.email}}{{/if}} }'\n",
        )
        .unwrap();
        assert_eq!(
            api.body("create", &json!({"record": {}})).unwrap(),
            Some(json!({}))
        );
    }

    #[test]
    fn mistakes_are_placed_on_their_line() {
        let text = "name = \"x\"\n[list]\nurl = \"/u?p={{pgae}}\"\npaging = \"pages\"\n[find]\nurl = \"/u?{{#if}}\"\n";
        let problems = compile(text).unwrap_err();
        let lines = lines(&problems);
        assert!(
            lines[0].starts_with("api.toml:3:13: error: [list] url: unknown variable `pgae`"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("api.toml:4:10: error: unknown paging `pages`"),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("api.toml:6:"), "{lines:?}");
        assert!(lines[2].contains("template syntax error"), "{lines:?}");
        assert_eq!(problems[0].hint.as_deref(), Some("did you mean `page`?"));
    }

    #[test]
    fn a_mistake_at_the_end_of_a_non_ascii_template_is_placed_without_panicking() {
        let problems = compile("[find]\nurl = \"/u?q=é{{\"\n").unwrap_err();
        assert!(
            lines(&problems)[0].starts_with("api.toml:2:"),
            "{:?}",
            lines(&problems)
        );
        let problems = compile("[find]\nurl = \"/ü/{{välue}}\"\n").unwrap_err();
        assert!(
            lines(&problems)[0].contains("unknown variable `välue`"),
            "{:?}",
            lines(&problems)
        );
    }

    #[test]
    fn unknown_keys_and_missing_sections_are_reported() {
        let problems = compile("[list]\nurl = \"/u\"\nitem = \"rows\"\n").unwrap_err();
        assert!(
            lines(&problems)[0].starts_with("api.toml:3:1:"),
            "{:?}",
            lines(&problems)
        );
        let source = SourceText::new("api.toml", "[list]\nurl = \"/u\"\n");
        let problems = parse(&source, Needs::Writes).unwrap_err();
        let said = lines(&problems).join("\n");
        for section in ["find", "create", "update"] {
            assert!(said.contains(&format!("no [{section}]")), "{said}");
        }
    }
}
