//! An API description exactly as written in its TOML file, before anything is checked.
//!
//! Keeping the file's shape apart from the compiled [`ApiDescription`](super::ApiDescription)
//! lets serde report unknown keys and wrong types with their place, and lets the compiler
//! see where each template and name was written (`Spanned`) for its own messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::diag::{Problem, SourceText};

/// Where a TOML error in a description sends the reader.
const FORMAT_HINT: &str = "the API description format is described in src/targets/rest/api/mod.rs";

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) user: RawUser,
    #[serde(default)]
    pub(super) answer: RawAnswer,
    pub(super) list: Option<RawList>,
    pub(super) find: Option<RawFind>,
    pub(super) get: Option<RawGet>,
    pub(super) create: Option<RawWrite>,
    pub(super) update: Option<RawWrite>,
    pub(super) deactivate: Option<RawWrite>,
    pub(super) reactivate: Option<RawWrite>,
    pub(super) session: Option<RawSession>,
    #[serde(default)]
    pub(super) resolve: Vec<RawResolve>,
    #[serde(default)]
    pub(super) assets: Vec<RawAssets>,
    #[serde(default)]
    pub(super) entities: BTreeMap<Spanned<String>, RawEntities>,
    pub(super) limits: Option<Spanned<RawLimits>>,
}

/// `[limits]`: the API's default request limit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) per_minute: Option<u32>,
    pub(super) per_second: Option<u32>,
}

impl RawApi {
    /// The file read as TOML; a syntax error or an unknown key is the one problem reported,
    /// since nothing after it can be trusted.
    pub(super) fn read(source: &Arc<SourceText>) -> Result<RawApi, Vec<Problem>> {
        toml::from_str(source.text()).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            vec![Problem::error(source, span, message).with_hint(FORMAT_HINT)]
        })
    }
}

/// `[user]`: how a user object in an answer is read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) folds_case: Vec<String>,
    #[serde(default)]
    pub(super) unescape_html: bool,
    #[serde(default)]
    pub(super) fold_names: bool,
    #[serde(default)]
    pub(super) fields: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) as_list: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) integers: Vec<String>,
}

/// `[answer]`: how a 200 answer says it failed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnswer {
    pub(super) error: Option<RawCondition>,
    pub(super) message: Option<String>,
}

/// `error = { path = …, equals = … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    pub(super) path: String,
    pub(super) equals: toml::Value,
}

/// `[list]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawList {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) paging: Option<Spanned<String>>,
    pub(super) first_page: Option<u64>,
    pub(super) items: Option<String>,
    pub(super) total: Option<String>,
    pub(super) next: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) also: Vec<Spanned<String>>,
}

/// `[find]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFind {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) items: Option<String>,
    #[serde(default)]
    pub(super) also: Vec<Spanned<String>>,
}

/// `[get]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGet {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) user: Option<String>,
}

/// `[create]`, `[update]` and `[deactivate]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWrite {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) body: Option<Spanned<String>>,
    pub(super) user: Option<String>,
}

/// One `[[resolve]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResolve {
    pub(super) field: String,
    pub(super) send_as: String,
    pub(super) url: Spanned<String>,
    pub(super) items: Option<String>,
    pub(super) name: Option<String>,
    pub(super) id: Option<String>,
}

/// One `[[assets]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAssets {
    pub(super) kind: Option<Spanned<String>>,
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) items: Option<String>,
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) tag: Option<String>,
}

/// One `[entities.KIND]`: a list users refer to, paged as `[list]` is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntities {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) paging: Option<Spanned<String>>,
    pub(super) first_page: Option<u64>,
    pub(super) items: Option<String>,
    pub(super) total: Option<String>,
    pub(super) next: Option<Spanned<String>>,
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) max_name: Option<Spanned<usize>>,
    pub(super) create: Option<RawEntityCreate>,
}

impl RawEntities {
    /// Its listing, as a `[list]` would be written.
    pub(super) fn listing(&self) -> RawList {
        RawList {
            method: self.method.clone(),
            url: self.url.clone(),
            paging: self.paging.clone(),
            first_page: self.first_page,
            items: self.items.clone(),
            total: self.total.clone(),
            next: self.next.clone(),
            also: Vec::new(),
        }
    }
}

/// `create = { … }` of an `[entities.KIND]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntityCreate {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) body: Option<Spanned<String>>,
    pub(super) entity: Option<String>,
}

/// `[session]`: how a session is opened, carried, noticed expired and closed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub(super) login: RawSignInRequest,
    pub(super) token: Option<String>,
    pub(super) header: Spanned<String>,
    pub(super) expired: Option<Spanned<RawExpired>>,
    pub(super) logout: Option<RawSignInRequest>,
    #[serde(default)]
    pub(super) headers: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `login = { … }` and `logout = { … }` of `[session]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignInRequest {
    pub(super) method: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) body: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<Spanned<String>, Spanned<String>>,
}

/// `expired = { status = 401, contains = "…" }` of `[session]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpired {
    pub(super) status: Option<u16>,
    pub(super) contains: Option<String>,
}
