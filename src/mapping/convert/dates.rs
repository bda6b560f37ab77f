//! `date`: reads a date as Graph writes it (or in a given format) and writes it in another.
//! Formats are checked when the mapping is compiled, so a bad one never reaches a user.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;

use super::{ArgError, Args, ConvertError, Converter, Env, scalar_text, shown};

/// Why a date format cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DateFormatError {
    /// Nothing to format with.
    #[error("the date format is empty")]
    Empty,
    /// chrono cannot render it.
    #[error("`{0}` is not a valid date format; use strftime codes such as %Y-%m-%d")]
    Invalid(String),
}

/// `date`: `to`, and `from` if given, are checked formats.
pub(super) fn build(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    let to = args.text(0)?;
    check_date_format(&to).map_err(|e| ArgError::new(Some(0), e.to_string()))?;
    let from = match args.get(1) {
        Some(_) => {
            let from = args.text(1)?;
            check_date_format(&from).map_err(|e| ArgError::new(Some(1), e.to_string()))?;
            Some(from)
        }
        None => None,
    };
    Ok(Converter::Date(to, from))
}

/// A strftime format chrono can render.
pub fn check_date_format(format: &str) -> Result<(), DateFormatError> {
    if format.is_empty() {
        return Err(DateFormatError::Empty);
    }
    match StrftimeItems::new(format).find(|i| matches!(i, Item::Error)) {
        Some(_) => Err(DateFormatError::Invalid(format.to_string())),
        None => Ok(()),
    }
}

/// The value read as a date and written in `to`.
pub(super) fn apply(
    to: &str,
    from: Option<&str>,
    value: &Json,
) -> Result<Option<Json>, ConvertError> {
    let text = scalar_text(value, "date")?;
    let date = parse_date(&text, from).ok_or_else(|| ConvertError::NotDate(shown(value)))?;
    let mut out = String::new();
    write!(out, "{}", date.format(to)).map_err(|_| ConvertError::Unformattable {
        value: shown(value),
        format: to.to_string(),
    })?;
    Ok(Some(Json::String(out)))
}

/// ISO 8601 as Graph writes it (with or without a zone, or a bare date), or `from`.
fn parse_date(text: &str, from: Option<&str>) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    let utc = |naive: NaiveDateTime| naive.and_utc().fixed_offset();
    match from {
        Some(format) => DateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(utc))
            .or_else(|| {
                NaiveDate::parse_from_str(text, format)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(utc)
            }),
        None => DateTime::parse_from_rfc3339(text)
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(utc)
            })
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(utc)
            }),
    }
}
