//! Oomnitza connector mapping lines (`mapping.FIELD = {"source": "…"}` in `[azureusers]`)
//! read into the mapping model, so that an old `config.ini` keeps its mappings.
//!
//! The connector's JSON knew four keys: `source` (a property, here a Graph path or an
//! Oomnitza display name such as `Is Account Enabled`), `hardcoded` (a constant), `setting`
//! (a config setting) and `converter` (one of its converters, translated to ours).

use std::ops::Range;

use serde_json::Value as Json;

use super::spec::{Args, At, ConvertSpec, FieldSpec};
use crate::config::LegacyMapping;
use crate::diag::{Problem, did_you_mean, nearest};
use odata::catalog;

const KEYS: &[&str] = &["source", "hardcoded", "setting", "converter"];

/// The connector's converters, and ours each stands for: (name, converter, arguments).
const CONVERTERS: &[(&str, &str, &[&str])] = &[
    ("split_email", "email_local", &[]),
    ("first_from_full", "split", &["\" \"", "0"]),
    ("last_from_full", "split", &["\" \"", "-1"]),
    ("date_format", "date", &["\"%s\""]),
    ("capitalize", "capitalize", &[]),
    ("lower", "lower", &[]),
    ("upper", "upper", &[]),
    ("trim", "trim", &[]),
    ("title", "title", &[]),
    ("strip_diacritics", "strip_diacritics", &[]),
    ("email_local", "email_local", &[]),
    ("email_domain", "email_domain", &[]),
    ("bool_words", "bool_words", &[]),
];

/// The connector converter names userload understands, for messages and the README.
pub fn converter_names() -> impl Iterator<Item = &'static str> {
    CONVERTERS.iter().map(|c| c.0)
}

/// Reads every line into a field; problems point into the config.
pub fn fields(lines: &[LegacyMapping]) -> (Vec<FieldSpec>, Vec<Problem>) {
    let mut fields = Vec::new();
    let mut problems = Vec::new();
    for line in lines {
        let source = &line.source;
        let written = source.text().get(line.span.clone()).unwrap_or_default();
        // Where a JSON key or string is written inside the line, for carets.
        let place = |needle: &Json| -> Range<usize> {
            let quoted = needle.to_string();
            written.find(&quoted).map_or(line.span.clone(), |at| {
                line.span.start + at..line.span.start + at + quoted.len()
            })
        };
        let mut field = FieldSpec::new(
            source,
            At {
                value: line.field.clone(),
                span: line.span.clone(),
            },
        );
        let Some(spec) = line.spec.as_object() else {
            continue;
        };
        for (key, value) in spec {
            let at = place(value);
            let text = || value.as_str().map(str::to_string);
            match key.as_str() {
                "source" => match text() {
                    // A display name with a typo would only meet the Graph path rules.
                    Some(s) if s.contains(' ') && catalog::by_display_name(&s).is_none() => {
                        let names = catalog::DISPLAY_NAMES.iter().map(|(d, _)| *d);
                        let hint = did_you_mean(&s, names, || {
                            "use a Graph property name or an Oomnitza field name (see the README)"
                                .to_string()
                        });
                        problems.push(
                            Problem::error(source, at, format!("`{s}` is neither a Graph user property nor an Oomnitza field name"))
                                .with_hint(hint),
                        );
                    }
                    Some(s) => {
                        let graph = catalog::by_display_name(&s).map_or(s, str::to_string);
                        field.graph = Some(At {
                            value: vec![At {
                                value: graph,
                                span: at.clone(),
                            }],
                            span: at,
                        });
                    }
                    None => problems.push(not_text(source, at, key)),
                },
                "hardcoded" => {
                    field.constant = Some(At {
                        value: value.clone(),
                        span: at,
                    });
                }
                "setting" => match text() {
                    Some(s) => field.setting = Some(At { value: s, span: at }),
                    None => problems.push(not_text(source, at, key)),
                },
                "converter" => match text() {
                    Some(name) => match converter(&name, at.clone()) {
                        Some(c) => field.convert.push(c),
                        None => {
                            let known = converter_names().collect::<Vec<_>>().join(", ");
                            let hint = match nearest(&name, converter_names()) {
                                Some(n) => format!(
                                    "did you mean `{n}`? The supported converters are: {known}"
                                ),
                                None => format!("the supported converters are: {known}"),
                            };
                            problems.push(
                                Problem::error(source, at, format!("unknown converter `{name}`"))
                                    .with_hint(hint),
                            );
                        }
                    },
                    None => problems.push(not_text(source, at, key)),
                },
                other => {
                    let at = place(&Json::from(other));
                    let hint = did_you_mean(other, KEYS.iter().copied(), || {
                        format!("the keys are: {}", KEYS.join(", "))
                    });
                    problems.push(
                        Problem::error(
                            source,
                            at,
                            format!("unknown key `{other}` in the mapping of `{}`", line.field),
                        )
                        .with_hint(hint),
                    );
                }
            }
        }
        fields.push(field);
    }
    (fields, problems)
}

fn not_text(
    source: &std::sync::Arc<crate::diag::SourceText>,
    at: Range<usize>,
    key: &str,
) -> Problem {
    Problem::error(source, at, format!("`{key}` must be text"))
}

/// The connector converter `name` as one of ours.
fn converter(name: &str, span: Range<usize>) -> Option<ConvertSpec> {
    let (_, ours, args) = CONVERTERS.iter().find(|c| c.0.eq_ignore_ascii_case(name))?;
    let args = if args.is_empty() {
        Args::None
    } else {
        Args::Positional(
            args.iter()
                .map(|a| At {
                    value: serde_json::from_str(a).unwrap_or(Json::Null),
                    span: span.clone(),
                })
                .collect(),
        )
    };
    Some(ConvertSpec {
        name: At {
            value: (*ours).to_string(),
            span: span.clone(),
        },
        args,
        span,
    })
}
