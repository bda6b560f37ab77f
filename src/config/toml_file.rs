//! Reads TOML config files into the common [`Document`] shape, keeping every place.

use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::document::{Document, Entry, Format, Section, Value};
use crate::diag::{Problem, SourceText};

/// Reads the whole file; returns the document and any problems found on the way.
pub fn read(source: &Arc<SourceText>) -> (Document, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut sections = Vec::new();
    let (table, errors) = DeTable::parse_recoverable(source.text());
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        problems.push(Problem::error(
            source,
            span,
            error.message().trim().to_string(),
        ));
    }
    for (key, value) in table.get_ref() {
        let key_span = key.span();
        if let DeValue::Array(_) = value.get_ref() {
            let message = format!("[[{}]] makes a list of sections", key.get_ref());
            problems.push(Problem::error(source, key_span, message).with_hint(format!(
                "write [{}] once, with single brackets",
                key.get_ref()
            )));
            continue;
        }
        let DeValue::Table(entries) = value.get_ref() else {
            problems.push(
                Problem::error(
                    source,
                    key_span,
                    format!("`{}` is outside any section", key.get_ref()),
                )
                .with_hint("put it under a section header such as [source]"),
            );
            continue;
        };
        let entries = entries
            .iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().to_string(),
                key_span: k.span(),
                value: convert(v.get_ref()),
                value_span: v.span(),
            })
            .collect();
        sections.push(Section {
            name: key.get_ref().to_string(),
            span: key_span,
            entries,
        });
    }
    let document = Document {
        source: Arc::clone(source),
        format: Format::Toml,
        sections,
    };
    (document, problems)
}

fn convert(value: &DeValue<'_>) -> Value {
    match value {
        DeValue::String(s) => Value::Text(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map_or(Value::Other("an integer out of range"), Value::Int),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse()
            .map_or(Value::Other("a float"), Value::Float),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(_) => Value::Other("a date-time"),
        DeValue::Array(_) => Value::Other("an array"),
        DeValue::Table(_) => Value::Other("a table"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_types_and_places() {
        let src = SourceText::new(
            "t.toml",
            "[sync]\nconcurrency = 8\nmode = \"create_only\"\n",
        );
        let (d, problems) = read(&src);
        assert!(problems.is_empty());
        let s = d.section("sync").unwrap();
        assert_eq!(s.entries[0].value, Value::Int(8));
        assert_eq!(
            &src.text()[s.entries[1].value_span.clone()],
            "\"create_only\""
        );
        let span = &s.entries[1].value_span;
        assert_eq!(
            s.entries[1].text_range(&src),
            Some(span.start + 1..span.end - 1)
        );
    }

    #[test]
    fn syntax_errors_have_places() {
        let src = SourceText::new("t.toml", "[sync]\nmode = \n");
        let (_, problems) = read(&src);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line_col().0, 2);
    }
}
