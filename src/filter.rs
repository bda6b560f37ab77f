//! The admin's `$filter` as it stands in a file: compiled with the `odata` crate (the filter
//! language and the Graph property catalogue, shared with the Graph simulator) and every
//! mistake placed back in the file, with a caret under the spot.

use std::ops::Range;
use std::sync::Arc;

use odata::{Filter, FilterError};

use crate::diag::{Problem, SourceText};

/// Compiles the filter found at `range` of `source`, reporting problems there.
pub fn compile_in(
    source: &Arc<SourceText>,
    range: Range<usize>,
) -> Result<Option<Filter>, Vec<Problem>> {
    Filter::compile(&source.text()[range.clone()]).map_err(|errors| {
        errors
            .iter()
            .map(|e| to_problem(e, source, range.clone()))
            .collect()
    })
}

/// The same mistake in a larger text where the filter occupies `range`. A mistake at the
/// very end of the filter ("expected a condition after `and`") is shown under the last
/// character written, since there is nothing after it to point at.
fn to_problem(error: &FilterError, source: &Arc<SourceText>, range: Range<usize>) -> Problem {
    let text = source.text();
    let base = range.start;
    let written_end = base + content_end(&text[range.clone()]);
    let start = base + error.span.start;
    let span = match text[base..written_end].char_indices().next_back() {
        Some((last, c)) if start >= written_end => base + last..base + last + c.len_utf8(),
        _ => start..(base + error.span.end).clamp(start + 1, range.end.max(start + 1)),
    };
    let problem = Problem::error(source, span, &error.message);
    match &error.hint {
        Some(hint) => problem.with_hint(hint),
        None => problem,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_input_mistakes_point_at_the_last_word_not_the_comment_after_it() {
        let text = "[x]\nfilter = a eq 'b' and # a comment\nnext = 1\n";
        let source = SourceText::new("c.ini", text);
        let start = text.find("a eq").unwrap();
        let end = text.find("\nnext").unwrap();
        let problems = compile_in(&source, start..end).unwrap_err();
        assert_eq!(&text[problems[0].span.clone()], "d");
    }
}
