//! Problems in files that people write by hand (config, filter, mapping).
//!
//! Every such problem names the file, the line and column, puts a caret under the spot and,
//! where we can tell, says how to fix it. Problems are collected, never thrown one at a time,
//! so that an admin sees every mistake in one go.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

pub use odata::nearest;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode,
};

/// The text of one input (a file, or an expression given on the command line) and the name
/// under which problems in it are reported.
#[derive(Debug)]
pub struct SourceText {
    named: NamedSource<String>,
}

impl SourceText {
    /// Wraps `text` for reporting problems in it under `name` (usually the file's path).
    pub fn new(name: impl AsRef<str>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            named: NamedSource::new(name, text.into()),
        })
    }

    /// The name problems are reported under, e.g. the file's path.
    pub fn name(&self) -> &str {
        self.named.name()
    }

    /// The whole text; problem spans are byte offsets into it.
    pub fn text(&self) -> &str {
        self.named.inner()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text();
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// How serious a problem is. Ordered so that, at one place, warnings sort before errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth telling the admin, but the input can still be used.
    Warning,
    /// The input cannot be used until this is fixed.
    Error,
}

/// One problem at one place in one input.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Whether the problem stops the command or is only reported.
    pub severity: Severity,
    /// The input the problem is in, for its name and the lines drawn around the caret.
    pub source: Arc<SourceText>,
    /// The bytes of `source`'s text to underline.
    pub span: Range<usize>,
    /// What is wrong; the headline of the report.
    pub message: String,
    /// How to fix it, shown as `help:`, when we can tell.
    pub hint: Option<String>,
}

impl Problem {
    /// An error at `span` of `source`, without a hint.
    pub fn error(source: &Arc<SourceText>, span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            source: Arc::clone(source),
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `span` of `source`, without a hint.
    pub fn warning(
        source: &Arc<SourceText>,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(source, span, message)
        }
    }

    /// Adds how to fix the problem, shown as `help:`.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this is an error rather than a warning.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// 1-based line and column where the problem starts.
    pub fn line_col(&self) -> (usize, usize) {
        self.source.line_col(self.span.start)
    }

    /// Whether the lines around the problem are short enough to draw.
    fn drawable(&self) -> bool {
        let text = self.source.text();
        let (first, _) = self.source.line_col(self.span.start);
        let (last, _) = self.source.line_col(self.span.end);
        text.lines()
            .skip(first.saturating_sub(3))
            .take(last + 3 - first.saturating_sub(3))
            .all(|line| line.len() <= MAX_DRAWN_LINE)
    }

    /// `file:line:col: message`, for logs and for tests that do not want the drawing.
    pub fn one_line(&self) -> String {
        let (line, col) = self.line_col();
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{}:{line}:{col}: {kind}: {}",
            self.source.name(),
            self.message
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(None, self.span.clone()),
        )))
    }
}

/// Problems in the order a reader meets them: by file, then by position.
pub fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by(|a, b| {
        (a.source.name(), a.span.start, a.severity).cmp(&(
            b.source.name(),
            b.span.start,
            b.severity,
        ))
    });
    problems
}

/// Draws problems with the source line and a caret, as the terminal shows them.
pub fn render(problems: &[Problem], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    for problem in problems {
        if !problem.drawable() || handler.render_report(&mut out, problem).is_err() {
            out.push_str(&problem.one_line());
            if let Some(hint) = &problem.hint {
                out.push_str(&format!("\n  help: {hint}"));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Longest line drawn around a problem; longer ones are reported on one line instead
/// (the drawing would be unreadable, and the renderer cannot place carets that far right).
const MAX_DRAWN_LINE: usize = 4096;

/// The hint for an unknown name: "did you mean `x`?" when a known name is near, else
/// `otherwise()` (usually the list of known names).
pub fn did_you_mean<'a>(
    word: &str,
    known: impl IntoIterator<Item = &'a str>,
    otherwise: impl FnOnce() -> String,
) -> String {
    match nearest(word, known) {
        Some(near) => format!("did you mean `{near}`?"),
        None => otherwise(),
    }
}

/// `value` cut to at most `max` characters, with `…` when something was cut. Used wherever
/// text from a file or a server is echoed, so a long (or secret-bearing) value stays short.
pub fn shorten(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = SourceText::new("x", "ab\nçd = 1\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(3), (2, 1));
        // 'ç' is two bytes but one column.
        assert_eq!(src.line_col(6), (2, 3));
    }

    #[test]
    fn very_long_lines_are_reported_on_one_line() {
        let text = format!(
            "[source]\n#{}\ntenant = {}\n",
            "x".repeat(70_000),
            "y".repeat(70_000)
        );
        let src = SourceText::new("c.ini", text);
        let p =
            Problem::error(&src, 70_011..70_017, "unknown key `tenant`").with_hint("did you mean?");
        let out = render(&[p], false);
        assert!(
            out.starts_with("c.ini:3:1: error: unknown key `tenant`"),
            "{out}"
        );
        assert!(out.contains("help: did you mean?"));
    }

    #[test]
    fn nearest_suggests_typos_only() {
        let known = ["tenant_id", "client_id", "secret"];
        assert_eq!(nearest("tenantid", known), Some("tenant_id"));
        assert_eq!(nearest("zzz", known), None);
    }

    #[test]
    fn rendering_shows_file_line_and_hint() {
        let src = SourceText::new("c.ini", "[source]\ntenant = x\n");
        let p = Problem::error(&src, 9..15, "unknown key `tenant`").with_hint("did you mean?");
        let out = render(&[p], false);
        assert!(out.contains("c.ini:2:1"), "{out}");
        assert!(out.contains("did you mean?"), "{out}");
    }
}
