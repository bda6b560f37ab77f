//! Secrets from the config: a literal, `env:NAME` or `file:PATH`.
//!
//! A secret never prints: `Debug` and `Display` show `[redacted]`, and the value is reachable
//! only through [`Secret::expose`], which call sites use at the moment they build a request.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a secret comes from, as the admin wrote it.
#[derive(Clone, PartialEq, Eq)]
enum SecretSource {
    Literal,
    Env(String),
    File(PathBuf),
}

/// A secret from the config (client secret or API token) and where it came from; it never
/// prints its value.
#[derive(Clone)]
pub struct Secret {
    source: SecretSource,
    value: Result<String, SecretUnavailable>,
}

/// Why a written secret cannot be used at all: the config itself is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `env:` is followed by something no environment variable can be called.
    #[error("`env:{name}` is not a valid environment variable name")]
    EnvName {
        /// The name as written, trimmed.
        name: String,
    },
    /// `file:` names a file that cannot be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    ReadFile {
        /// The file, resolved against the config's folder.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// `file:` names a file with nothing in it.
    #[error("secret file {} is empty", path.display())]
    EmptyFile {
        /// The file, resolved against the config's folder.
        path: PathBuf,
    },
}

/// Why a secret written as `env:NAME` has no value now. Not a config error: the scheduler
/// that runs userload may set the variable, so this surfaces only when the secret is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretUnavailable {
    /// The variable is not set.
    #[error("environment variable {name} is not set")]
    Unset {
        /// The variable's name.
        name: String,
    },
    /// The variable is set to nothing.
    #[error("environment variable {name} is empty")]
    Empty {
        /// The variable's name.
        name: String,
    },
}

impl Secret {
    /// Reads a secret reference. Relative `file:` paths resolve against `dir`.
    /// An unset environment variable is not an error here: the scheduler that runs userload
    /// may set it, so the problem surfaces when the secret is used.
    pub fn resolve(written: &str, dir: &Path) -> Result<Secret, SecretError> {
        if let Some(name) = written.strip_prefix("env:") {
            let name = name.trim().to_string();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(SecretError::EnvName { name });
            }
            let value = match std::env::var(&name) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(SecretUnavailable::Empty { name: name.clone() }),
                Err(_) => Err(SecretUnavailable::Unset { name: name.clone() }),
            };
            return Ok(Secret {
                source: SecretSource::Env(name),
                value,
            });
        }
        if let Some(path) = written.strip_prefix("file:") {
            let path = dir.join(path.trim());
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(source) => return Err(SecretError::ReadFile { path, source }),
            };
            let value = text.trim_end_matches(['\r', '\n']).to_string();
            if value.is_empty() {
                return Err(SecretError::EmptyFile { path });
            }
            return Ok(Secret {
                source: SecretSource::File(path),
                value: Ok(value),
            });
        }
        Ok(Secret::literal(written))
    }

    /// Whether a written secret is the secret itself rather than a reference to it.
    pub fn is_literal(written: &str) -> bool {
        !written.starts_with("env:") && !written.starts_with("file:")
    }

    /// A secret whose value is given directly, as a literal in the config would be.
    pub fn literal(value: impl Into<String>) -> Secret {
        Secret {
            source: SecretSource::Literal,
            value: Ok(value.into()),
        }
    }

    /// The value, or why it is unavailable (e.g. its environment variable is not set).
    pub fn expose(&self) -> Result<&str, &SecretUnavailable> {
        self.value.as_deref()
    }

    /// Where the secret comes from, safe to print: `literal`, `env:NAME` or `file:PATH`.
    pub fn origin(&self) -> String {
        match &self.source {
            SecretSource::Literal => "literal".to_string(),
            SecretSource::Env(name) => format!("env:{name}"),
            SecretSource::File(path) => format!("file:{}", path.display()),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::literal("hunter2");
        assert_eq!(
            format!("{s} {s:?} {:?}", Some(&s)),
            "[redacted] [redacted] Some([redacted])"
        );
        assert_eq!(s.expose(), Ok("hunter2"));
    }

    #[test]
    fn file_secrets_lose_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.txt"), "abc\n").unwrap();
        let s = Secret::resolve("file:s.txt", dir.path()).unwrap();
        assert_eq!(s.expose(), Ok("abc"));
        let missing = Secret::resolve("file:missing.txt", dir.path());
        assert!(matches!(missing, Err(SecretError::ReadFile { .. })));
        std::fs::write(dir.path().join("empty.txt"), "\n").unwrap();
        let empty = Secret::resolve("file:empty.txt", dir.path()).unwrap_err();
        assert_eq!(
            empty.to_string(),
            format!(
                "secret file {} is empty",
                dir.path().join("empty.txt").display()
            )
        );
    }

    #[test]
    fn unset_env_is_reported_on_use() {
        let s = Secret::resolve("env:USERLOAD_TEST_SURELY_UNSET", Path::new(".")).unwrap();
        let why = s.expose().unwrap_err();
        assert_eq!(
            why.to_string(),
            "environment variable USERLOAD_TEST_SURELY_UNSET is not set"
        );
        let bad = Secret::resolve("env:bad name", Path::new(".")).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "`env:bad name` is not a valid environment variable name"
        );
    }
}
