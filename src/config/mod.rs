//! The config file: read from INI or TOML, checked completely, turned into a [`Config`].
//!
//! Reading happens in two stages. First the file becomes a [`Document`] (sections, keys,
//! values, each with its place), exactly as the admin wrote it: `document` is that model,
//! `ini` and `toml_file` read the two syntaxes into it. Then `check` walks the document,
//! collects *every* problem (unknown keys with the nearest known one, wrong types, missing
//! keys, ranges, conflicting keys, missing files, filter mistakes) and only if there are
//! none builds the validated [`Config`] (`model`), which already holds the compiled filter.
//! Nothing here touches the network.
//!
//! An old Oomnitza connector `config.ini` loads as it is: `[azureusers]` is read as
//! `[source]` and `[oomnitza]` as a `[target]` of type `oomnitza`. Keys and sections that
//! only mattered to that connector are warnings, not errors.

mod check;
pub mod document;
mod ini;
mod mask;
mod model;
mod secret;
mod sections;
mod toml_file;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use check::{is_guid, modern_source};
pub use document::{Document, Entry, Format, Section, Value};
pub use model::{
    AssertionAlgorithm, Config, Credential, DEFAULT_MAX_DEACTIVATIONS, DEFAULT_NOTIFY_ON,
    DaemonConfig, IMDS_TOKEN_URL, LegacyMapping, Limit, ManagedIdentityEndpoint, Mode,
    NotifyConfig, NotifyOn, OAuth2Config, Preset, RestApi, SourceConfig, SyncConfig, TargetAuth,
    TargetConfig, TargetKind,
};
pub use secret::{Secret, SecretError, SecretUnavailable};
pub use sections::SECTIONS;

use crate::diag::{Problem, SourceText};

/// A config that loaded, and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Warnings found while loading, in file order; none of them stops a run.
    pub warnings: Vec<Problem>,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("config file {} is not UTF-8 text: {problem}", path.display())]
    Encoding {
        /// The config file.
        path: PathBuf,
        /// What it is instead, and where the first offending byte is.
        problem: String,
    },
    /// The file name does not say whether the file is INI or TOML.
    #[error("config file {} must end in .ini or .toml (optionally followed by .example or .sample)", path.display())]
    Extension {
        /// The config file.
        path: PathBuf,
    },
    /// The file was read, but checking found errors.
    #[error("{} has {} problem(s)", path.display(), problems.iter().filter(|p| p.is_error()).count())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Errors and warnings, in file order.
        problems: Vec<Problem>,
    },
}

/// The file's bytes as text, or what they are instead: UTF-16 (as Notepad and PowerShell's
/// `Out-File` write by default) is named as such, other bytes by their offset and line.
fn utf8_text(bytes: Vec<u8>) -> Result<String, String> {
    let utf16 = bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]);
    if utf16 || (bytes.len() >= 2 && (bytes[0] == 0 || bytes[1] == 0)) {
        return Err("it looks like UTF-16; save it as UTF-8 (in PowerShell: \
                    `Set-Content -Encoding utf8`; in Notepad: Save as, Encoding UTF-8)"
            .to_owned());
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let byte = e.as_bytes()[offset];
        format!(
            "byte {offset} (line {line}) is 0x{byte:02x}, which does not start a UTF-8 \
             character; save the file as UTF-8"
        )
    })
}

/// Reads, checks and builds the config at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let format = format_of(path)?;
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = utf8_text(bytes).map_err(|problem| ConfigError::Encoding {
        path: path.to_path_buf(),
        problem,
    })?;
    // Editors on Windows may start UTF-8 files with a byte-order mark; it is not content.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    let source = SourceText::new(path.display().to_string(), text);
    let (mut document, mut problems) = match format {
        Format::Ini => ini::read(&source),
        Format::Toml => toml_file::read(&source),
    };
    // Problems show the lines around them: from here on they show a copy of the file in
    // which literal secrets are starred out.
    let masked = mask::masked_secrets(&document);
    for problem in &mut problems {
        problem.source = Arc::clone(&masked);
    }
    document.source = masked;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (built, mut found) = check::check(&document, dir, path);
    if let Some(config) = &built {
        crate::secrets::remember(config.secret_values());
    }
    problems.append(&mut found);
    problems.extend(mask::literal_secret_warnings(path, &document));
    let problems = crate::diag::sorted(problems);
    match built {
        Some(config) if !problems.iter().any(Problem::is_error) => Ok(Loaded {
            config,
            warnings: problems,
        }),
        _ => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }),
    }
}

/// The syntax the file at `path` is written in, from its extension; `config.ini.example`
/// is read as the `.ini` it stands for.
fn format_of(path: &Path) -> Result<Format, ConfigError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = [".example", ".sample"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("ini") => Ok(Format::Ini),
        Some(e) if e.eq_ignore_ascii_case("toml") => Ok(Format::Toml),
        _ => Err(ConfigError::Extension {
            path: path.to_path_buf(),
        }),
    }
}
