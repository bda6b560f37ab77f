//! Turning an operation's templates into a request's URL and body.
//!
//! URLs and bodies are rendered by two registries that differ only in how a plain `{{value}}`
//! is escaped (percent-encoding, or escaping for a JSON string), so a name holding `&` or `"`
//! stays one value wherever it goes. Both run in strict mode: a value that is not there is
//! an error, never an empty string.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, ScopedJson,
};
use serde_json::Value as Json;

use super::ApiDescription;
use crate::diag::shorten;

/// The helpers templates may call: handlebars' own, `json` and `odata`.
pub(super) const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len", "json", "odata",
];

/// Why a request could not be made from an operation's templates.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateError {
    /// The URL template failed, usually for a value that is not there.
    #[error("{file}: [{operation}] url: {reason}")]
    Url {
        /// Where the description came from.
        file: String,
        /// The operation (`create`, `resolve.0`).
        operation: String,
        /// What went wrong (`` `record.email` has no value ``).
        reason: String,
    },
    /// The body template failed, usually for a value that is not there.
    #[error("{file}: [{operation}] body: {reason}")]
    Body {
        /// Where the description came from.
        file: String,
        /// The operation (`create`, `update`).
        operation: String,
        /// What went wrong.
        reason: String,
    },
    /// A header's template failed.
    #[error("{file}: [{operation}] header {header}: {reason}")]
    Header {
        /// Where the description came from.
        file: String,
        /// The operation (`session.login`).
        operation: String,
        /// The header.
        header: String,
        /// What went wrong.
        reason: String,
    },
    /// The body template gave text that is not JSON.
    #[error("{file}: [{operation}] body is not JSON ({reason}): {text}")]
    BodyNotJson {
        /// Where the description came from.
        file: String,
        /// The operation (`create`, `update`).
        operation: String,
        /// The JSON parser's complaint.
        reason: String,
        /// The start of the text rendered.
        text: String,
    },
}

impl ApiDescription {
    /// Renders an operation's URL template.
    pub fn url(&self, operation: &str, vars: &Json) -> Result<String, TemplateError> {
        self.urls
            .render(operation, vars)
            .map_err(|e| TemplateError::Url {
                file: self.source.clone(),
                operation: operation.to_string(),
                reason: render_reason(&e),
            })
    }

    /// Renders the value of header `header` of `operation` (`session`, `session.login`).
    pub fn header(
        &self,
        operation: &str,
        header: &str,
        vars: &Json,
    ) -> Result<String, TemplateError> {
        let name = format!("{operation}.header.{header}");
        self.headers
            .render(&name, vars)
            .map_err(|e| TemplateError::Header {
                file: self.source.clone(),
                operation: operation.to_string(),
                header: header.to_string(),
                reason: render_reason(&e),
            })
    }

    /// Renders an operation's body template into JSON; `None` when it has none.
    pub fn body(&self, operation: &str, vars: &Json) -> Result<Option<Json>, TemplateError> {
        if !self.bodies.has_template(operation) {
            return Ok(None);
        }
        let text = self
            .bodies
            .render(operation, vars)
            .map_err(|e| TemplateError::Body {
                file: self.source.clone(),
                operation: operation.to_string(),
                reason: render_reason(&e),
            })?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TemplateError::BodyNotJson {
                file: self.source.clone(),
                operation: operation.to_string(),
                reason: e.to_string(),
                text: shorten(&text, 120),
            })
    }
}

/// A render error in the words of the description: the variable without a value, by name.
fn render_reason(error: &RenderError) -> String {
    match error.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => format!("`{path}` has no value"),
        other => other.to_string(),
    }
}

/// The registry for URL templates.
pub(super) fn url_registry() -> Handlebars<'static> {
    registry(url_escape)
}

/// The registry for body templates.
pub(super) fn body_registry() -> Handlebars<'static> {
    registry(json_escape)
}

/// The registry for header values: written as rendered (a header has no escapes; a value
/// that HTTP does not allow in a header is refused when the request is made).
pub(super) fn header_registry() -> Handlebars<'static> {
    registry(|value| value.to_string())
}

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
