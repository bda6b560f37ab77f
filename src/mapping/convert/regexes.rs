//! `regex_replace` and the one place patterns are compiled. Patterns come from mapping
//! files, which an admin may copy from anywhere, so every compile is bounded in size.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::{ArgError, Args, Converter, Env};

/// Largest compiled regex (bytes); larger patterns are refused when the mapping is compiled.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a pattern cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegexError {
    /// The pattern compiles to more than [`REGEX_SIZE_LIMIT`].
    #[error("the regex is too large (compiled, it exceeds {0} bytes)")]
    TooLarge(usize),
    /// The pattern is not a regex; the regex crate's reason.
    #[error("invalid regex: {0}")]
    Invalid(String),
    /// A template helper met a pattern that was not compiled with the mapping.
    #[error("the pattern must be written in the template")]
    NotInTemplate,
    /// The pattern was refused earlier, where it is written; nothing more to say.
    #[error("")]
    Reported,
}

/// `regex_replace`: the pattern is compiled (or found compiled) now, never per user.
pub(super) fn build_replace(args: &Args<'_>, env: &mut Env<'_>) -> Result<Converter, ArgError> {
    let pattern = args.text(0)?;
    let regex = (env.regex)(&pattern).map_err(|e| match e {
        RegexError::Reported => ArgError::reported(Some(0)),
        other => ArgError::new(Some(0), other.to_string()),
    })?;
    Ok(Converter::RegexReplace(regex, args.text(1)?))
}

/// Replaces every match; `$1` and `${name}` in `with` are capture groups.
pub(super) fn replace(regex: &Regex, with: &str, text: &str) -> String {
    regex.replace_all(text, with).into_owned()
}

/// Compiles a pattern with the size limit. Shared, so that every use of the pattern (each
/// template helper call included) reuses one compiled regex and its caches.
pub fn compile_regex(pattern: &str) -> Result<Arc<Regex>, RegexError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => RegexError::TooLarge(limit),
            other => RegexError::Invalid(last_line(&other.to_string())),
        })
        .map(Arc::new)
}

/// The regex crate's messages draw the pattern over several lines; the last one says why.
fn last_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}
