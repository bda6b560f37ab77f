//! The OData `$filter` language over Microsoft Graph users, and the catalogue of user
//! properties it is checked against: parsed, validated, rendered canonically for Graph, and
//! evaluated locally when Graph cannot do it.
//!
//! It is pure (no I/O, no clock) and sits below everything that speaks Graph: userload's
//! config and Graph client, and the Graph simulator that tests run against. Placing a
//! mistake in the admin's file is the caller's job; errors here carry spans into the filter
//! text alone.

pub mod catalog;

pub mod ast;
mod eval;
pub mod parser;
mod render;
mod validate;

use std::collections::BTreeSet;

pub use ast::{Expr, Span};
pub use parser::{MAX_DEPTH, parse};
pub use validate::{Analysis, validate};

/// A mistake in a filter, located in the filter text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where the mistake is, as byte offsets into the filter text alone.
    pub span: Span,
    /// What is wrong, for the admin.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl FilterError {
    /// A mistake at `span`, without a hint.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds how to fix the mistake.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A valid filter, ready to send to Graph or to evaluate locally.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
    canonical: String,
    analysis: Analysis,
}

impl Filter {
    /// Parses and validates filter text. `Ok(None)` when the text asks for no filter: empty,
    /// only comments, or the Oomnitza connector's `Default`.
    pub fn compile(text: &str) -> Result<Option<Filter>, Vec<FilterError>> {
        if means_no_filter(text) {
            return Ok(None);
        }
        let mut expr = parse(text).map_err(|e| vec![e])?;
        let analysis = validate(&mut expr)?;
        let canonical = expr.to_string();
        Ok(Some(Filter {
            expr,
            canonical,
            analysis,
        }))
    }

    /// The text to send as `$filter`.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// Graph needs `ConsistencyLevel: eventual` and `$count=true` for this filter.
    pub fn needs_advanced_query(&self) -> bool {
        self.analysis.advanced
    }

    /// Top-level user properties the filter reads (Graph's spelling).
    pub fn properties(&self) -> &BTreeSet<String> {
        &self.analysis.properties
    }

    /// Does this Graph user (JSON object) pass the filter?
    pub fn matches(&self, user: &serde_json::Value) -> bool {
        eval::matches(&self.expr, user)
    }

    /// Each operand of the filter's outermost `and` (or `or`; the filter itself when it has
    /// neither), in canonical text, with whether `user` passes it: which clause keeps a
    /// user out. The word that joins them is `and` when [`Filter::all_clauses_needed`].
    pub fn clauses(&self, user: &serde_json::Value) -> Vec<(String, bool)> {
        let operands: Vec<&Expr> = match &self.expr {
            Expr::And(items) | Expr::Or(items) => items.iter().collect(),
            other => vec![other],
        };
        operands
            .into_iter()
            .map(|e| (e.to_string(), eval::matches(e, user)))
            .collect()
    }

    /// Whether every clause must pass (the clauses are joined by `and`) rather than one.
    pub fn all_clauses_needed(&self) -> bool {
        !matches!(self.expr, Expr::Or(_))
    }
}

/// The known name closest to `word`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&lower, &k.to_ascii_lowercase()), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Empty, only comments, or `Default` (any case).
fn means_no_filter(text: &str) -> bool {
    let mut words = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty());
    match (words.next(), words.next()) {
        (None, _) => true,
        (Some(only), None) => only.eq_ignore_ascii_case("default"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_blank_mean_no_filter() {
        for text in ["", "  ", "Default", "default", "# just a note\n\n"] {
            assert!(Filter::compile(text).unwrap().is_none(), "{text:?}");
        }
    }

    #[test]
    fn canonical_form_fixes_case_and_spacing() {
        let f = Filter::compile("STARTSWITH( DisplayName , 'A' ) AND accountenabled EQ TRUE")
            .unwrap()
            .unwrap();
        assert_eq!(
            f.canonical(),
            "startsWith(displayName,'A') and accountEnabled eq true"
        );
        assert!(!f.needs_advanced_query());
        let props: Vec<_> = f.properties().iter().map(String::as_str).collect();
        assert_eq!(props, ["accountEnabled", "displayName"]);
    }
}
