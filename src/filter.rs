//! The admin's `$filter` as it stands in a file: compiled with the `odata` crate (the filter
//! language and the Graph property catalogue, shared with the Graph simulator) and every
//! mistake placed back in the file, with a caret under the spot.

use std::ops::Range;
use std::sync::Arc;

use odata::{Filter, FilterError};

use crate::diag::{Problem, SourceText};

/// The most a filter may take of a Graph request URL, encoded. Graph documents no limit of
/// its own; web front ends commonly refuse request URLs over 8 KiB (with 414 or 400), and a
/// request also carries the Graph root, `$select` and paging. A longer filter could never
/// be sent, so it is refused when the config is read rather than retried at every run.
pub const MAX_ENCODED_FILTER: usize = 6 * 1024;

/// Compiles the filter found at `range` of `source`, reporting problems there.
pub fn compile_in(
    source: &Arc<SourceText>,
    range: Range<usize>,
) -> Result<Option<Filter>, Vec<Problem>> {
    let filter = Filter::compile(&source.text()[range.clone()]).map_err(|errors| {
        errors
            .iter()
            .map(|e| to_problem(e, source, range.clone()))
            .collect::<Vec<_>>()
    })?;
    if let Some(filter) = &filter {
        let encoded: usize = url::form_urlencoded::byte_serialize(filter.canonical().as_bytes())
            .map(str::len)
            .sum();
        if encoded > MAX_ENCODED_FILTER {
            let error = FilterError::new(
                odata::Span::new(0, content_end(&source.text()[range.clone()])),
                format!(
                    "this filter takes {encoded} bytes of the request URL; at most \
                     {MAX_ENCODED_FILTER} fit in a request Graph takes"
                ),
            )
            .with_hint(
                "shorten it: a group (`group`) instead of a long list of users, or fewer \
                 values in an `in (...)` list",
            );
            return Err(vec![to_problem(&error, source, range)]);
        }
    }
    Ok(filter)
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
    fn a_filter_too_long_to_send_is_refused_with_its_size_and_the_limit() {
        let values: Vec<String> = (0..400)
            .map(|i| format!("'department number {i}'"))
            .collect();
        let long = format!("department in ({})", values.join(", "));
        let text = format!("[source]\nfilter = {long}\n");
        let source = SourceText::new("c.ini", text.clone());
        let start = text.find("department").unwrap();
        let problems = compile_in(&source, start..text.len() - 1).unwrap_err();
        assert_eq!(problems.len(), 1);
        let message = &problems[0].message;
        assert!(
            message.contains(&format!("at most {MAX_ENCODED_FILTER}")),
            "{message}"
        );
        assert!(message.contains("bytes of the request URL"), "{message}");
        assert_eq!(problems[0].line_col(), (2, 10));
        // A filter of ordinary length passes.
        let short = "[source]\nfilter = department in ('IT', 'Sales')\n";
        let source = SourceText::new("c.ini", short);
        assert!(compile_in(&source, 18..short.len() - 1).unwrap().is_some());
    }

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
