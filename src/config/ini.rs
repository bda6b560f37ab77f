//! Reads INI files the way the Oomnitza connector's `config.ini` is written (Python
//! `configparser` conventions), keeping the place of every section, key and value.
//!
//! - `[section]` headers; `key = value` or `key: value`; keys match without regard to case.
//! - Whole-line comments start with `#` or `;`. Text after a value is part of the value, as
//!   in `configparser` (so `#` inside a filter is read by the filter's own comment rule).
//! - An indented line continues the value above it (handy for long filters).
//! - A value wrapped in double quotes loses them: `secret = "abc"` means `abc`.
//! - No `%(name)s` interpolation: values are taken literally.

use std::sync::Arc;

use super::document::{Document, Entry, Format, Section, Value};
use crate::diag::{Problem, SourceText};

/// Reads the whole file; returns the document and any syntax problems found on the way.
pub fn read(source: &Arc<SourceText>) -> (Document, Vec<Problem>) {
    let text = source.text();
    let mut problems = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut offset = 0;
    // The indent of the last entry's key while a deeper-indented line may continue its value.
    let mut continuable: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        let indent = content.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            if trimmed.is_empty() {
                continuable = None;
            }
            continue;
        }
        if continuable.is_some_and(|key_indent| indent > key_indent) {
            extend_last_value(&mut sections, text, start + content.len());
            continue;
        }
        continuable = None;
        let trimmed = trimmed.trim_end();
        let at = start + indent;
        if let Some(header) = trimmed.strip_prefix('[') {
            match header.strip_suffix(']') {
                Some(name) if !name.trim().is_empty() => {
                    let name = name.trim().to_string();
                    let span = at..at + trimmed.len();
                    if let Some(first) = sections.iter().find(|s| s.name == name) {
                        let (line, _) = source.line_col(first.span.start);
                        problems.push(
                            Problem::error(source, span, format!("section [{name}] appears twice"))
                                .with_hint(format!(
                                    "merge it into the first [{name}] on line {line}"
                                )),
                        );
                        continue;
                    }
                    sections.push(Section {
                        name,
                        span,
                        entries: Vec::new(),
                    });
                }
                _ => problems.push(
                    Problem::error(source, at..at + trimmed.len(), "malformed section header")
                        .with_hint("write it as [section]"),
                ),
            }
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            problems.push(
                Problem::error(source, at..at + trimmed.len(), "expected `key = value`")
                    .with_hint("comments start with # or ; at the beginning of the line"),
            );
            continue;
        };
        let key = trimmed[..sep].trim_end();
        if key.is_empty() {
            problems.push(Problem::error(source, at..at + 1, "a value without a key"));
            continue;
        }
        let Some(section) = sections.last_mut() else {
            problems.push(
                Problem::error(
                    source,
                    at..at + key.len(),
                    format!("`{key}` is outside any section"),
                )
                .with_hint("put it under a section header such as [source]"),
            );
            continue;
        };
        let raw = &trimmed[sep + 1..];
        let value_start = at + sep + 1 + (raw.len() - raw.trim_start().len());
        let value_text = raw.trim();
        let key_lower = key.to_ascii_lowercase();
        // Oomnitza mapping keys (`mapping.FIELD`) keep the case of the field name.
        let key = if key_lower.starts_with("mapping.") {
            format!("mapping.{}", &key["mapping.".len()..])
        } else {
            key_lower
        };
        if let Some(first) = section.entries.iter().find(|e| e.key == key) {
            let (line, _) = source.line_col(first.key_span.start);
            problems.push(
                Problem::error(
                    source,
                    at..at + key.len(),
                    format!("`{key}` is set twice in [{}]", section.name),
                )
                .with_hint(format!("it is first set on line {line}; keep one")),
            );
            continue;
        }
        section.entries.push(Entry {
            key_span: at..at + key.len(),
            key,
            value: Value::Text(unquote(value_text).to_string()),
            value_span: value_start..value_start + value_text.len(),
        });
        continuable = Some(indent);
    }
    let document = Document {
        source: Arc::clone(source),
        format: Format::Ini,
        sections,
    };
    (document, problems)
}

/// Makes the last value run to `end` (the end of a continuation line).
fn extend_last_value(sections: &mut [Section], text: &str, end: usize) {
    let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) else {
        return;
    };
    let start = entry.value_span.start.min(end);
    let written = text[start..end].trim();
    // An empty first line (`filter =` then indented lines) starts the value on the next line.
    let lead = text[start..end].len() - text[start..end].trim_start().len();
    entry.value_span = start + lead..start + lead + written.len();
    entry.value = Value::Text(unquote(written).to_string());
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> (Document, Vec<Problem>) {
        read(&SourceText::new("t.ini", text))
    }

    #[test]
    fn reads_sections_keys_and_places() {
        let (d, problems) = doc("; comment\n[Source]\nTenant_ID = abc \nsecret: \"x y\"\n");
        assert!(problems.is_empty());
        let s = d.section("Source").unwrap();
        assert_eq!(s.entries[0].key, "tenant_id");
        assert_eq!(s.entries[0].value, Value::Text("abc".into()));
        assert_eq!(&d.source.text()[s.entries[0].value_span.clone()], "abc");
        assert_eq!(s.entries[1].value, Value::Text("x y".into()));
    }

    #[test]
    fn indented_lines_continue_a_value() {
        let (d, problems) = doc("[source]\nfilter = a eq 'x'\n   or b eq 'y'\npage_size = 5\n");
        assert!(problems.is_empty());
        let e = &d.section("source").unwrap().entries[0];
        assert_eq!(e.value, Value::Text("a eq 'x'\n   or b eq 'y'".into()));
        assert_eq!(e.text_range(&d.source), Some(e.value_span.clone()));
    }

    #[test]
    fn equally_indented_keys_are_separate() {
        let (d, problems) = doc("[source]\n  a = 1\n  b = 2\n");
        assert!(problems.is_empty());
        assert_eq!(d.section("source").unwrap().entries.len(), 2);
    }

    #[test]
    fn mapping_keys_keep_their_case() {
        let (d, _) = doc("[azureusers]\nmapping.USER = {\"source\": \"userPrincipalName\"}\n");
        assert_eq!(
            d.section("azureusers").unwrap().entries[0].key,
            "mapping.USER"
        );
    }

    #[test]
    fn reports_every_syntax_problem() {
        let (_, problems) = doc("orphan = 1\n[a\n[b]\nno separator\nx = 1\nx = 2\n[b]\n");
        let lines: Vec<_> = problems.iter().map(|p| p.line_col().0).collect();
        assert_eq!(lines, [1, 2, 4, 6, 7]);
    }
}
