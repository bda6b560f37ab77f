//! Converters between text and lists, `has`, which asks whether a list holds a name, and
//! `first_non_empty`, which fills a missing value from other Graph paths of the same user.

use serde_json::Value as Json;

use super::{ArgError, Args, ConvertError, Converter, Env, is_missing, scalar_text};
use crate::mapping::path::GraphPath;

/// `split`: an empty separator would split between every two characters.
pub(super) fn build_split(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    let separator = args.non_empty_text(0)?;
    Ok(Converter::Split(separator, args.count(1)?))
}

/// `has`: the name is compared ignoring case and surrounding white space.
pub(super) fn build_has(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    Ok(Converter::Has(
        args.non_empty_text(0)?.trim().to_lowercase(),
    ))
}

/// Whether `value` (a list, or one value) holds `name`, given in lower case; elements are
/// compared ignoring case and surrounding white space.
pub(super) fn holds(value: &Json, name: &str) -> bool {
    let is = |v: &Json| match v {
        Json::String(s) => s.trim().to_lowercase() == name,
        Json::Number(_) | Json::Bool(_) => v.to_string().as_str() == name,
        _ => false,
    };
    match value {
        Json::Array(items) => items.iter().any(is),
        other => is(other),
    }
}

/// `join`.
pub(super) fn build_join(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    Ok(Converter::Join(args.text(0)?))
}

/// `first_non_empty`: every argument is a Graph path, checked now.
pub(super) fn build_first_non_empty(
    args: &Args<'_>,
    env: &mut Env<'_>,
) -> Result<Converter, ArgError> {
    let mut paths = Vec::with_capacity(args.len());
    for i in 0..args.len() {
        let Some(Json::String(p)) = args.get(i) else {
            return Err(ArgError::new(
                Some(i),
                "`first_non_empty` takes Graph paths (text)",
            ));
        };
        paths.push((env.graph_path)(i, p)?);
    }
    Ok(Converter::FirstNonEmpty(paths))
}

/// The value if it is there, else the first of `paths` that has one in `user`.
pub(super) fn first_non_empty(paths: &[GraphPath], value: Json, user: &Json) -> Option<Json> {
    if !is_missing(&value) {
        return Some(value);
    }
    paths
        .iter()
        .filter_map(|p| p.get(user))
        .find(|v| !is_missing(v))
        .cloned()
}

/// A list's non-missing elements joined into text; anything else unchanged.
pub(super) fn join(separator: &str, value: Json) -> Json {
    match value {
        Json::Array(items) => Json::String(
            items
                .iter()
                .filter(|v| !is_missing(v))
                .map(text_of)
                .collect::<Vec<_>>()
                .join(separator),
        ),
        other => other,
    }
}

/// The parts of a text, or one of them (a negative index counts from the end).
pub(super) fn split(
    separator: &str,
    index: Option<i64>,
    value: &Json,
) -> Result<Option<Json>, ConvertError> {
    let text = scalar_text(value, "split")?;
    let parts: Vec<&str> = text.split(separator).collect();
    Ok(match index {
        None => Some(Json::Array(parts.into_iter().map(Json::from).collect())),
        Some(i) => {
            let at = if i < 0 {
                parts.len().checked_sub(i.unsigned_abs() as usize)
            } else {
                usize::try_from(i).ok()
            };
            at.and_then(|at| parts.get(at)).map(|p| Json::from(*p))
        }
    })
}

fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
