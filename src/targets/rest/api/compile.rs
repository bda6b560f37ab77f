//! The checks that turn a description as written into an [`ApiDescription`].
//!
//! Each section has its own small method saying which variables its templates may read and
//! which method it defaults to; a new kind of request is one more such method. Problems are
//! collected, not returned at the first, so an admin sees every mistake in one go.

use std::ops::Range;
use std::sync::Arc;

use handlebars::Handlebars;
use reqwest::Method;
use reqwest::header::HeaderName;
use serde_json::Value as Json;
use toml::Spanned;

use super::raw::{
    RawApi, RawAssets, RawEntities, RawEntityCreate, RawFind, RawGet, RawLimits, RawList,
    RawResolve, RawSession, RawSignInRequest, RawWrite,
};
use super::render::{body_registry, header_registry, url_registry};
use super::{
    ApiDescription, AssetList, EntityList, ErrorAnswer, Needs, Operation, Paging, Resolver, Session,
};
use crate::diag::{Problem, SourceText, nearest, shorten};
use crate::http::Rate;
use crate::targets::HoldingKind;

/// What `[update]` and `[deactivate]` may read.
const WRITE_VARS: &[&str] = &["id", "record", "changes", "user"];

/// What the templates of `[session]` may read: the target config's secrets and user name.
pub(super) const SESSION_VARS: &[&str] = &["token", "app_token", "username", "password"];

/// The sections a target that writes cannot do without.
const NEEDED_FOR_WRITES: [&str; 3] = ["find", "create", "update"];

/// A description being compiled: the templates so far and the problems found.
pub(super) struct Compiler<'a> {
    pub(super) source: &'a Arc<SourceText>,
    problems: Vec<Problem>,
    pub(super) urls: Handlebars<'static>,
    pub(super) bodies: Handlebars<'static>,
    pub(super) headers: Handlebars<'static>,
    /// The variables the templates compiled since the last operation read.
    pub(super) uses: Vec<String>,
}

impl<'a> Compiler<'a> {
    /// A compiler for the description in `source`.
    pub(super) fn new(source: &'a Arc<SourceText>) -> Compiler<'a> {
        Compiler {
            source,
            problems: Vec::new(),
            urls: url_registry(),
            bodies: body_registry(),
            headers: header_registry(),
            uses: Vec::new(),
        }
    }

    /// The description `raw` says, or every problem in it.
    pub(super) fn compile(
        mut self,
        mut raw: RawApi,
        needs: Needs,
    ) -> Result<ApiDescription, Vec<Problem>> {
        let also: Vec<Spanned<String>> = raw
            .list
            .as_mut()
            .map(|l| std::mem::take(&mut l.also))
            .unwrap_or_default();
        let list = raw.list.map(|l| self.list("list", l));
        let list_also = match &list {
            Some(first) => also
                .iter()
                .enumerate()
                .map(|(i, url)| self.list_also(first, i, url))
                .collect(),
            None => Vec::new(),
        };
        let find_urls: Vec<Spanned<String>> = raw
            .find
            .as_mut()
            .map(|f| std::mem::take(&mut f.also))
            .unwrap_or_default();
        let find = raw.find.map(|f| self.find(f));
        let find_also = match &find {
            Some(first) => find_urls
                .iter()
                .enumerate()
                .map(|(i, url)| self.find_also(first, i, url))
                .collect(),
            None => Vec::new(),
        };
        let get = raw.get.map(|g| self.get(g));
        let create = raw
            .create
            .map(|w| self.write("create", w, Method::POST, &["record"]));
        let update = raw
            .update
            .map(|w| self.write("update", w, Method::PATCH, WRITE_VARS));
        let deactivate = raw
            .deactivate
            .map(|w| self.write("deactivate", w, Method::PATCH, WRITE_VARS));
        let reactivate = raw
            .reactivate
            .map(|w| self.write("reactivate", w, Method::PATCH, WRITE_VARS));
        let session = raw.session.map(|s| self.session(s));
        let resolve: Vec<Resolver> = raw
            .resolve
            .into_iter()
            .enumerate()
            .map(|(i, r)| self.resolver(i, r))
            .collect();
        let assets: Vec<AssetList> = raw
            .assets
            .into_iter()
            .enumerate()
            .map(|(i, a)| self.asset_list(i, a))
            .collect();
        let entities = raw
            .entities
            .into_iter()
            .map(|(kind, e)| {
                let list = self.entity_list(&kind, e);
                (kind.into_inner(), list)
            })
            .collect();
        let limit = raw.limits.and_then(|l| self.limit(l));
        if needs == Needs::Writes {
            let given = [find.is_some(), create.is_some(), update.is_some()];
            self.require(NEEDED_FOR_WRITES.into_iter().zip(given));
        }
        if !self.problems.is_empty() {
            return Err(crate::diag::sorted(self.problems));
        }
        Ok(ApiDescription {
            name: raw.name.unwrap_or_else(|| "REST API".to_string()),
            id: raw.user.id.unwrap_or_else(|| "id".to_string()),
            folds_case: raw.user.folds_case,
            unescape_html: raw.user.unescape_html,
            fold_names: raw.user.fold_names,
            fields: raw.user.fields,
            as_list: raw.user.as_list,
            integers: raw.user.integers,
            error: raw.answer.error.map(|e| ErrorAnswer {
                path: e.path,
                equals: toml_to_json(e.equals),
            }),
            message: raw.answer.message,
            list,
            list_also,
            find,
            find_also,
            get,
            create,
            update,
            deactivate,
            reactivate,
            session,
            resolve,
            assets,
            entities,
            limit,
            source: self.source.name().to_string(),
            urls: self.urls,
            bodies: self.bodies,
            headers: self.headers,
        })
    }

    /// `op` with the variables its templates read.
    fn finish(&mut self, mut op: Operation) -> Operation {
        op.uses = std::mem::take(&mut self.uses);
        op
    }

    /// Records a problem at `span` of the file.
    pub(super) fn error(&mut self, span: Range<usize>, message: String, hint: Option<String>) {
        let mut problem = Problem::error(self.source, span, message);
        if let Some(hint) = hint {
            problem = problem.with_hint(hint);
        }
        self.problems.push(problem);
    }

    /// A problem for each section that is needed but not `given`.
    /// `[limits]`: one of `per_minute` and `per_second`, above 0.
    fn limit(&mut self, limits: Spanned<RawLimits>) -> Option<Rate> {
        let span = limits.span();
        let limits = limits.into_inner();
        let rate = match (limits.per_minute, limits.per_second) {
            (Some(n), None) if n > 0 => Some(Rate::per_minute(n)),
            (None, Some(n)) if n > 0 => Some(Rate::per_second(n)),
            _ => None,
        };
        if rate.is_none() {
            self.error(
                span,
                "[limits] must give one of `per_minute` and `per_second`, above 0".to_string(),
                Some("e.g. [limits] per_minute = 120".to_string()),
            );
        }
        rate
    }

    fn require(&mut self, sections: impl Iterator<Item = (&'static str, bool)>) {
        for (section, given) in sections {
            if !given {
                self.error(
                    0..0,
                    format!("the API description has no [{section}]"),
                    Some(format!("add [{section}] with at least `url`")),
                );
            }
        }
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

    /// A listing named `name` (`list`, `entities.KIND`), paged as it says.
    fn list(&mut self, name: &str, l: RawList) -> Operation {
        let method = self.method(l.method.as_ref(), Method::GET);
        self.template(
            name,
            "url",
            &l.url,
            &["page", "offset", "limit", "cursor", "last"],
            true,
        );
        let paging = self.paging(l.paging.as_ref());
        if matches!(paging, Paging::Next | Paging::Cursor) && l.next.is_none() {
            let span = l.paging.as_ref().map_or(0..0, Spanned::span);
            self.error(
                span,
                "this paging needs `next`: where the answer holds the next page".to_string(),
                Some("e.g. next = \"links.next\"".to_string()),
            );
        }
        let mut op = Operation::new(name, method, l.items, None);
        op.total = l.total;
        op.next = l.next.map(Spanned::into_inner);
        op.paging = paging;
        op.first_page = l.first_page.unwrap_or(1);
        self.finish(op)
    }

    /// The `index`th URL of `[list] also`, known as `list.also.N`: a further listing with
    /// the method, paging and answer of `[list]`.
    fn list_also(&mut self, first: &Operation, index: usize, url: &Spanned<String>) -> Operation {
        let name = format!("list.also.{index}");
        self.template(
            &name,
            "url",
            url,
            &["page", "offset", "limit", "cursor", "last"],
            true,
        );
        let op = Operation {
            name,
            ..first.clone()
        };
        self.finish(op)
    }

    /// The paging a listing names; none when it names none, or one this does not know.
    fn paging(&mut self, written: Option<&Spanned<String>>) -> Paging {
        let Some(written) = written else {
            return Paging::None;
        };
        let kinds = [
            ("none", Paging::None),
            ("offset", Paging::Offset),
            ("page", Paging::Page),
            ("next", Paging::Next),
            ("cursor", Paging::Cursor),
            ("range", Paging::Range),
        ];
        if let Some((_, kind)) = kinds.iter().find(|(n, _)| n == written.get_ref()) {
            return *kind;
        }
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

    fn find(&mut self, f: RawFind) -> Operation {
        let method = self.method(f.method.as_ref(), Method::GET);
        self.template("find", "url", &f.url, &["field", "value", "limit"], true);
        self.finish(Operation::new("find", method, f.items, None))
    }

    /// The `index`th URL of `[find] also`, known as `find.also.N`: a further lookup with
    /// the method and answer of `[find]`.
    fn find_also(&mut self, first: &Operation, index: usize, url: &Spanned<String>) -> Operation {
        let name = format!("find.also.{index}");
        self.template(&name, "url", url, &["field", "value", "limit"], true);
        let op = Operation {
            name,
            ..first.clone()
        };
        self.finish(op)
    }

    fn get(&mut self, g: RawGet) -> Operation {
        let method = self.method(g.method.as_ref(), Method::GET);
        self.template("get", "url", &g.url, &["id"], true);
        self.finish(Operation::new("get", method, None, g.user))
    }

    fn write(&mut self, name: &str, w: RawWrite, default: Method, vars: &[&str]) -> Operation {
        let method = self.method(w.method.as_ref(), default);
        self.template(name, "url", &w.url, vars, true);
        if let Some(body) = &w.body {
            self.template(name, "body", body, vars, false);
        }
        let op = Operation::new(name, method, None, w.user);
        self.finish(op)
    }

    /// The `index`th `[[resolve]]`, known as `resolve.N` in messages.
    fn resolver(&mut self, index: usize, r: RawResolve) -> Resolver {
        let name = format!("resolve.{index}");
        self.template(&name, "url", &r.url, &["value"], true);
        Resolver {
            field: r.field,
            send_as: r.send_as,
            operation: self.finish(Operation::new(&name, Method::GET, r.items, None)),
            name: r.name.unwrap_or_else(|| "name".to_string()),
            id: r.id.unwrap_or_else(|| "id".to_string()),
        }
    }
}

impl Compiler<'_> {
    /// The `index`th `[[assets]]`, known as `assets.N` in messages.
    fn asset_list(&mut self, index: usize, a: RawAssets) -> AssetList {
        let name = format!("assets.{index}");
        let method = self.method(a.method.as_ref(), Method::GET);
        self.template(&name, "url", &a.url, &["id"], true);
        let kind = self.holding_kind(a.kind.as_ref());
        AssetList {
            kind,
            operation: self.finish(Operation::new(&name, method, a.items, None)),
            id: a.id.unwrap_or_else(|| "id".to_string()),
            name: a.name.unwrap_or_else(|| "name".to_string()),
            tag: a.tag,
        }
    }

    /// The `kind` an `[[assets]]` names; an asset when it names none.
    fn holding_kind(&mut self, written: Option<&Spanned<String>>) -> HoldingKind {
        let Some(written) = written else {
            return HoldingKind::Asset;
        };
        let kinds = [
            HoldingKind::Asset,
            HoldingKind::Licence,
            HoldingKind::Accessory,
        ];
        if let Some(kind) = kinds.iter().find(|k| k.name() == written.get_ref()) {
            return *kind;
        }
        let names = kinds.map(HoldingKind::name);
        let hint = match nearest(written.get_ref(), names) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!("use one of: {}", names.join(", ")),
        };
        self.error(
            written.span(),
            format!("unknown kind `{}`", shorten(written.get_ref(), 20)),
            Some(hint),
        );
        HoldingKind::Asset
    }
}

impl Compiler<'_> {
    /// An `[entities.KIND]`: its listing is known as `entities.KIND` in messages, its
    /// create as `entities.KIND.create`.
    fn entity_list(&mut self, kind: &Spanned<String>, e: RawEntities) -> EntityList {
        let written = kind.get_ref();
        let fits = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
        if written.is_empty() || !written.chars().all(fits) {
            self.error(
                kind.span(),
                format!("[entities] kind `{}` is not a name", shorten(written, 20)),
                Some("use letters, digits, `_` and `-`, e.g. [entities.cost_center]".to_string()),
            );
        }
        let name = format!("entities.{written}");
        let operation = self.list(&name, e.listing());
        let max_name = e.max_name.and_then(|max| {
            if *max.get_ref() > 0 {
                return Some(max.into_inner());
            }
            self.error(
                max.span(),
                format!("[{name}] max_name must be at least 1"),
                Some("leave it out when the API does not limit names".to_string()),
            );
            None
        });
        EntityList {
            kind: written.clone(),
            operation,
            id: e.id.unwrap_or_else(|| "id".to_string()),
            name: e.name.unwrap_or_else(|| "name".to_string()),
            max_name,
            create: e.create.map(|c| self.entity_create(&name, c)),
        }
    }

    /// The `create` of an `[entities.KIND]`: its templates read `name`; POST unless given.
    fn entity_create(&mut self, list: &str, c: RawEntityCreate) -> Operation {
        let name = format!("{list}.create");
        let method = self.method(c.method.as_ref(), Method::POST);
        self.template(&name, "url", &c.url, &["name"], true);
        if let Some(body) = &c.body {
            self.template(&name, "body", body, &["name"], false);
        }
        let entity = Some(c.entity.unwrap_or_default());
        self.finish(Operation::new(&name, method, None, entity))
    }
}

impl Compiler<'_> {
    /// `[session]`: its login and logout are known as `session.login` and
    /// `session.logout`, the headers of every request as `session`.
    fn session(&mut self, s: RawSession) -> Session {
        if HeaderName::from_bytes(s.header.get_ref().as_bytes()).is_err() {
            self.error(
                s.header.span(),
                format!(
                    "[session] header `{}` is not a header name",
                    shorten(s.header.get_ref(), 40)
                ),
                Some("e.g. header = \"Session-Token\"".to_string()),
            );
        }
        let (expired_status, expired_text) = match s.expired {
            Some(expired) => {
                let span = expired.span();
                let expired = expired.into_inner();
                if expired.status.is_none() && expired.contains.is_none() {
                    self.error(
                        span,
                        "[session] expired says nothing: give `status`, `contains` or both"
                            .to_string(),
                        Some("e.g. expired = { status = 401 }".to_string()),
                    );
                }
                (expired.status, expired.contains)
            }
            None => (Some(401), None),
        };
        let (login, login_headers) = self.sign_in_request("session.login", s.login);
        let logout = s.logout.map(|l| self.sign_in_request("session.logout", l));
        let mut headers = Vec::new();
        for (name, value) in &s.headers {
            self.header_template("session", name, value, SESSION_VARS);
            headers.push(name.get_ref().clone());
        }
        self.uses.clear();
        let (logout, logout_headers) = match logout {
            Some((op, headers)) => (Some(op), headers),
            None => (None, Vec::new()),
        };
        Session {
            login,
            login_headers,
            token: s.token.unwrap_or_else(|| "session_token".to_string()),
            header: s.header.into_inner(),
            expired_status,
            expired_text,
            logout,
            logout_headers,
            headers,
        }
    }

    /// A login or logout request: POST unless given, its templates reading the config's
    /// secrets; with the names of its own headers.
    fn sign_in_request(&mut self, name: &str, r: RawSignInRequest) -> (Operation, Vec<String>) {
        let method = self.method(r.method.as_ref(), Method::POST);
        self.template(name, "url", &r.url, SESSION_VARS, true);
        if let Some(body) = &r.body {
            self.template(name, "body", body, SESSION_VARS, false);
        }
        let mut headers = Vec::new();
        for (header, value) in &r.headers {
            self.header_template(name, header, value, SESSION_VARS);
            headers.push(header.get_ref().clone());
        }
        (
            self.finish(Operation::new(name, method, None, None)),
            headers,
        )
    }
}

/// A TOML value as the JSON value an answer would hold.
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
