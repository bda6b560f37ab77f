//! The converters as handlebars helpers (`{{lower givenName}}`, `{{date hire "%Y"}}`), plus
//! `first_non_empty` and `setting`, which only make sense inside a template. A helper builds
//! its converter from the call's arguments with what the mapping prepared: the regexes its
//! templates use and its lookup tables.

use std::collections::HashMap;
use std::sync::Arc;

use handlebars::{
    Context, Handlebars, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use regex::Regex;
use serde_json::Value as Json;

use super::{ArgError, Env, Lookup, RegexError, build, is_missing, names};
use crate::mapping::path::GraphPath;

/// What the helpers share: the regexes and lookup tables the templates use, prepared once.
#[derive(Debug, Default)]
pub struct Shared {
    /// Regexes by pattern, compiled while the mapping was compiled.
    pub regexes: HashMap<String, Arc<Regex>>,
    /// The mapping's lookup tables.
    pub lookups: HashMap<String, Arc<Lookup>>,
}

/// Where templates find settings: a key no Graph property can have.
pub const SETTINGS_KEY: &str = "$settings";

/// Helpers beyond the converters.
pub const EXTRA_HELPERS: &[&str] = &["first_non_empty", "setting"];

/// Handlebars' own helpers that templates may use.
pub const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len",
];

/// Registers every converter (and `first_non_empty`, `setting`) as a helper.
pub fn register_helpers(registry: &mut Handlebars<'static>, shared: &Arc<Shared>) {
    let converters = names().filter(|n| *n != "first_non_empty");
    for name in converters.chain(EXTRA_HELPERS.iter().copied()) {
        registry.register_helper(
            name,
            Box::new(Helper {
                name,
                shared: Arc::clone(shared),
            }),
        );
    }
}

/// A converter as a handlebars helper.
struct Helper {
    name: &'static str,
    shared: Arc<Shared>,
}

impl Helper {
    fn fail(&self, message: impl std::fmt::Display) -> RenderError {
        RenderErrorReason::Other(format!("{}: {message}", self.name)).into()
    }

    /// Converts the first parameter with the converter the others describe.
    fn convert(&self, params: &[&Json]) -> Result<Json, RenderError> {
        let Some((value, args)) = params.split_first() else {
            return Err(self.fail("give the value to convert"));
        };
        if is_missing(value) {
            return Ok(Json::Null);
        }
        let args: Vec<Json> = args.iter().map(|a| (*a).clone()).collect();
        let shared = &self.shared;
        let mut regex = |pattern: &str| {
            shared
                .regexes
                .get(pattern)
                .cloned()
                .ok_or(RegexError::NotInTemplate)
        };
        // `first_non_empty` is answered before a converter is built: no paths to check here.
        let mut graph_path =
            |_: usize, _: &str| -> Result<GraphPath, ArgError> { Err(ArgError::reported(None)) };
        let mut env = Env {
            lookups: &shared.lookups,
            regex: &mut regex,
            graph_path: &mut graph_path,
        };
        let converter = build(self.name, &args, &mut env)
            .map_err(|e| self.fail(e.message))?
            .ok_or_else(|| self.fail("unknown helper"))?;
        let out = converter
            .apply((*value).clone(), &Json::Null)
            .map_err(|e| self.fail(e))?;
        Ok(out.unwrap_or(Json::Null))
    }
}

impl HelperDef for Helper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &handlebars::Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params: Vec<&Json> = h.params().iter().map(|p| p.value()).collect();
        let value = match self.name {
            "first_non_empty" => params
                .iter()
                .find(|v| !is_missing(v))
                .map_or(Json::Null, |v| (*v).clone()),
            "setting" => params
                .first()
                .and_then(|name| name.as_str())
                .and_then(|name| ctx.data().get(SETTINGS_KEY)?.get(name))
                .cloned()
                .unwrap_or(Json::Null),
            _ => self.convert(&params)?,
        };
        Ok(ScopedJson::Derived(value))
    }
}
