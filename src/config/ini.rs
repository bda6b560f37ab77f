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
    let mut reader = Reader {
        source,
        problems: Vec::new(),
        sections: Vec::new(),
        current: None,
        continuable: None,
        continued: false,
    };
    let mut offset = 0;
    for line in source.text().split_inclusive('\n') {
        reader.line(offset, line);
        offset += line.len();
    }
    reader.finish_value();
    let document = Document {
        source: Arc::clone(source),
        format: Format::Ini,
        sections: reader.sections,
    };
    (document, reader.problems)
}

struct Reader<'a> {
    source: &'a Arc<SourceText>,
    problems: Vec<Problem>,
    sections: Vec<Section>,
    /// The section new keys go to (a repeated header points back at the first one).
    current: Option<usize>,
    /// The indent of the last entry's key, while deeper-indented lines continue its value.
    continuable: Option<usize>,
    /// Whether continuation lines have grown the last entry's span since its text was set.
    continued: bool,
}

impl Reader<'_> {
    /// One line, starting at byte `start` of the file.
    fn line(&mut self, start: usize, line: &str) {
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        let indent = content.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            // Blank lines and comments may sit inside a continued value, as in configparser.
            return;
        }
        if self
            .continuable
            .is_some_and(|key_indent| indent > key_indent)
        {
            self.extend_last_value(start + indent, start + indent + trimmed.trim_end().len());
            return;
        }
        self.finish_value();
        self.continuable = None;
        let at = start + indent;
        let trimmed = trimmed.trim_end();
        if trimmed.starts_with('[') {
            self.header(at, trimmed);
        } else {
            self.entry(at, indent, trimmed);
        }
    }

    /// `[name]`, optionally followed by a comment.
    fn header(&mut self, at: usize, line: &str) {
        let parts = line.find(']').map(|close| {
            let rest = line[close + 1..].trim_start();
            let tail_ok = rest.is_empty() || rest.starts_with(['#', ';']);
            (close, line[1..close].trim(), tail_ok)
        });
        let Some((close, name, true)) = parts.filter(|(_, name, _)| !name.is_empty()) else {
            self.problems.push(
                Problem::error(self.source, at..at + line.len(), "malformed section header")
                    .with_hint("write it as [section]; comments go after # or ;"),
            );
            return;
        };
        let span = at..at + close + 1;
        if let Some(first) = self.sections.iter().position(|s| s.name == name) {
            let (line, _) = self.source.line_col(self.sections[first].span.start);
            self.problems.push(
                Problem::error(self.source, span, format!("section [{name}] appears twice"))
                    .with_hint(format!("merge it into the first [{name}] on line {line}")),
            );
            self.current = Some(first);
            return;
        }
        self.sections.push(Section {
            name: name.to_string(),
            span,
            entries: Vec::new(),
        });
        self.current = Some(self.sections.len() - 1);
    }

    /// `key = value` or `key: value`.
    fn entry(&mut self, at: usize, indent: usize, line: &str) {
        let Some(sep) = line.find(['=', ':']) else {
            self.problems.push(
                Problem::error(self.source, at..at + line.len(), "expected `key = value`")
                    .with_hint("comments start with # or ; at the beginning of the line"),
            );
            return;
        };
        let key = line[..sep].trim_end();
        if key.is_empty() {
            self.problems.push(Problem::error(
                self.source,
                at..at + 1,
                "a value without a key",
            ));
            return;
        }
        let key_span = at..at + key.len();
        let Some(section) = self.current.map(|i| &mut self.sections[i]) else {
            self.problems.push(
                Problem::error(
                    self.source,
                    key_span,
                    format!("`{key}` is outside any section"),
                )
                .with_hint("put it under a section header such as [source]"),
            );
            return;
        };
        // Oomnitza mapping keys (`mapping.FIELD`) keep the case of the field name.
        let key = match key.get(.."mapping.".len()) {
            Some(prefix) if prefix.eq_ignore_ascii_case("mapping.") => {
                format!("mapping.{}", &key["mapping.".len()..])
            }
            _ => key.to_ascii_lowercase(),
        };
        if let Some(first) = section.entries.iter().find(|e| e.key == key) {
            let (line, _) = self.source.line_col(first.key_span.start);
            let message = format!("`{key}` is set twice in [{}]", section.name);
            self.problems.push(
                Problem::error(self.source, key_span, message)
                    .with_hint(format!("it is first set on line {line}; keep one")),
            );
            return;
        }
        let raw = &line[sep + 1..];
        let value_start = at + sep + 1 + (raw.len() - raw.trim_start().len());
        let value = raw.trim();
        section.entries.push(Entry {
            key,
            key_span,
            value: Value::Text(unquote(value).to_string()),
            value_span: value_start..value_start + value.len(),
        });
        self.continuable = Some(indent);
    }

    /// Makes the last value run to `end`, the end of a continuation line starting at `from`.
    /// Only the span grows here; the text is taken once, when the value ends
    /// ([`Self::finish_value`]), so a value of many lines costs time in proportion to its
    /// length.
    fn extend_last_value(&mut self, from: usize, end: usize) {
        let Some(entry) = self
            .current
            .and_then(|i| self.sections[i].entries.last_mut())
        else {
            return;
        };
        // An empty first line (`filter =` then indented lines) starts the value on the next.
        if entry.value_span.is_empty() {
            entry.value_span.start = from;
        }
        entry.value_span.end = end;
        self.continued = true;
    }

    /// Sets the text of a value that continuation lines made longer.
    fn finish_value(&mut self) {
        if !std::mem::take(&mut self.continued) {
            return;
        }
        let text = self.source.text();
        if let Some(entry) = self
            .current
            .and_then(|i| self.sections[i].entries.last_mut())
        {
            entry.value = Value::Text(unquote(&text[entry.value_span.clone()]).to_string());
        }
    }
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
    fn headers_may_carry_a_comment() {
        let (d, problems) = doc("[source]  # main\nx = 1\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(&d.source.text()[d.sections[0].span.clone()], "[source]");
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

    #[test]
    fn a_repeated_section_collects_into_the_first() {
        let (d, problems) = doc("[a]\nx = 1\n[b]\ny = 2\n[a]  # again\nz = 3\n");
        assert_eq!(problems.len(), 1);
        let keys: Vec<_> = d
            .section("a")
            .unwrap()
            .entries
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(keys, ["x", "z"]);
    }

    #[test]
    fn blank_lines_may_sit_inside_a_continued_value() {
        let (d, problems) = doc("[s]\nf = a\n\n  b\nnext = 1\n");
        assert!(problems.is_empty());
        let e = &d.section("s").unwrap().entries[0];
        assert_eq!(e.value, Value::Text("a\n\n  b".into()));
    }
}
