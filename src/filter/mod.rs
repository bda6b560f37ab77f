//! The admin's OData `$filter` over Graph users: parsed, validated against the property
//! catalogue, rendered canonically for Graph, and evaluated locally when Graph cannot do it.
//!
//! A filter is compiled once, when the config is read; a mistake stops start-up with the
//! expression, a caret under the spot and a fix, long before any network call.

pub mod ast;
mod eval;
pub mod parser;
mod render;
mod validate;

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

pub use ast::{Expr, Span};
pub use parser::{MAX_DEPTH, parse};
pub use validate::{Analysis, validate};

use crate::diag::{Problem, SourceText};

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

    /// The same mistake in a larger text where the filter occupies `range`. A mistake at
    /// the very end of the filter ("expected a condition after `and`") is shown under the
    /// last character written, since there is nothing after it to point at.
    pub fn to_problem(&self, source: &Arc<SourceText>, range: Range<usize>) -> Problem {
        let text = source.text();
        let base = range.start;
        let written_end = base + content_end(&text[range.clone()]);
        let start = base + self.span.start;
        let span = match text[base..written_end].char_indices().next_back() {
            Some((last, c)) if start >= written_end => base + last..base + last + c.len_utf8(),
            _ => start..(base + self.span.end).clamp(start + 1, range.end.max(start + 1)),
        };
        let problem = Problem::error(source, span, &self.message);
        match &self.hint {
            Some(hint) => problem.with_hint(hint),
            None => problem,
        }
    }
}

/// Where the filter text ends, ignoring trailing spaces and `#` comments.
fn content_end(text: &str) -> usize {
    let mut end = 0;
    let mut in_string = false;
    let mut in_comment = false;
    for (i, c) in text.char_indices() {
        match c {
            '\n' if in_comment => in_comment = false,
            _ if in_comment => {}
            '#' if !in_string => in_comment = true,
            '\'' => {
                in_string = !in_string;
                end = i + 1;
            }
            c if !c.is_whitespace() => end = i + c.len_utf8(),
            _ => {}
        }
    }
    end
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

    /// Compiles the filter found at `range` of `source`, reporting problems there.
    pub fn compile_in(
        source: &Arc<SourceText>,
        range: Range<usize>,
    ) -> Result<Option<Filter>, Vec<Problem>> {
        Filter::compile(&source.text()[range.clone()]).map_err(|errors| {
            errors
                .iter()
                .map(|e| e.to_problem(source, range.clone()))
                .collect()
        })
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
    fn end_of_input_mistakes_point_at_the_last_word_not_the_comment_after_it() {
        let text = "[x]\nfilter = a eq 'b' and # a comment\nnext = 1\n";
        let source = SourceText::new("c.ini", text);
        let start = text.find("a eq").unwrap();
        let end = text.find("\nnext").unwrap();
        let problems = Filter::compile_in(&source, start..end).unwrap_err();
        assert_eq!(&text[problems[0].span.clone()], "d");
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
