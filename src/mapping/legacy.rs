//! Oomnitza connector mapping lines (`mapping.FIELD = {"source": "…"}` in `[azureusers]`)
//! read into the mapping model, so that an old `config.ini` keeps its mappings.
//!
//! The connector's JSON knew four keys: `source` (a property, here a Graph path or an
//! Oomnitza display name such as `Is Account Enabled`), `hardcoded` (a constant), `setting`
//! (a config setting) and `converter` (one of its converters, translated to ours).
//!
//! That connector read the retired Azure AD Graph through a Python client, so its users'
//! configs name properties as that client spelt them: snake_case attributes
//! (`user_principal_name`, `given_name`, `object_id`) and, for every property the client did
//! not model, `additional_properties.<Azure AD Graph name>` (`additional_properties.jobTitle`,
//! `additional_properties.telephoneNumber`). Each is read as the Microsoft Graph property it
//! became, with a warning that names the modern spelling ([`modern`]).

use std::ops::Range;

use serde_json::Value as Json;

use super::spec::{Args, At, ConvertSpec, FieldSpec};
use crate::config::{LegacyMapping, modern_source};
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

/// The connector converter names userload understands, for messages and docs/mapping.md.
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
            let read = match key.as_str() {
                "source" => read_source(&mut field, value, at),
                "hardcoded" => {
                    field.constant = Some(At {
                        value: value.clone(),
                        span: at,
                    });
                    Ok(())
                }
                "setting" => match value.as_str() {
                    Some(s) => {
                        field.setting = Some(At {
                            value: s.to_string(),
                            span: at,
                        });
                        Ok(())
                    }
                    None => Err(not_text(source, at, key)),
                },
                "converter" => read_converter(&mut field, value, at),
                other => Err(unknown_key(line, other, place(&Json::from(other)))),
            };
            problems.extend(read.err());
        }
        fields.push(field);
    }
    (fields, problems)
}

/// `"source": "…"`: a Graph path, or an Oomnitza display name for one.
fn read_source(field: &mut FieldSpec, value: &Json, at: Range<usize>) -> Result<(), Problem> {
    let Some(s) = value.as_str() else {
        return Err(not_text(&field.source, at, "source"));
    };
    // A display name with a typo would only meet the Graph path rules.
    if s.contains(' ') && catalog::by_display_name(s).is_none() {
        let names = catalog::DISPLAY_NAMES.iter().map(|(d, _)| *d);
        let hint = did_you_mean(s, names, || {
            "use a Graph property name or an Oomnitza field name (see docs/mapping.md)".to_string()
        });
        let message = format!("`{s}` is neither a Graph user property nor an Oomnitza field name");
        return Err(Problem::error(&field.source, at, message).with_hint(hint));
    }
    // The config's checks warn of an old name; here it is only read as the new one.
    let graph = match (catalog::by_display_name(s), modern_source(s)) {
        (Some(graph), _) => graph.to_string(),
        (None, Some(graph)) => graph,
        (None, None) => s.to_string(),
    };
    field.graph = Some(At {
        value: vec![At {
            value: graph,
            span: at.clone(),
        }],
        span: at,
    });
    Ok(())
}

/// `"converter": "…"`: one of the connector's converters, as ours.
fn read_converter(field: &mut FieldSpec, value: &Json, at: Range<usize>) -> Result<(), Problem> {
    let Some(name) = value.as_str() else {
        return Err(not_text(&field.source, at, "converter"));
    };
    if let Some(c) = converter(name, at.clone()) {
        field.convert.push(c);
        return Ok(());
    }
    let known = converter_names().collect::<Vec<_>>().join(", ");
    let hint = match nearest(name, converter_names()) {
        Some(n) => format!("did you mean `{n}`? The supported converters are: {known}"),
        None => format!("the supported converters are: {known}"),
    };
    let message = format!("unknown converter `{name}`");
    Err(Problem::error(&field.source, at, message).with_hint(hint))
}

fn unknown_key(line: &LegacyMapping, key: &str, at: Range<usize>) -> Problem {
    let hint = did_you_mean(key, KEYS.iter().copied(), || {
        format!("the keys are: {}", KEYS.join(", "))
    });
    let message = format!("unknown key `{key}` in the mapping of `{}`", line.field);
    Problem::error(&line.source, at, message).with_hint(hint)
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
