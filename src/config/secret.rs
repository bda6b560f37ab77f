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
    value: Result<String, String>,
}

impl Secret {
    /// Reads a secret reference. Relative `file:` paths resolve against `dir`.
    /// An unset environment variable is not an error here: the scheduler that runs userload
    /// may set it, so the problem surfaces when the secret is used.
    pub fn resolve(written: &str, dir: &Path) -> Result<Secret, String> {
        if let Some(name) = written.strip_prefix("env:") {
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`env:{name}` is not a valid environment variable name"
                ));
            }
            let value = match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) => Err(format!("environment variable {name} is not set")),
            };
            return Ok(Secret {
                source: SecretSource::Env(name.to_string()),
                value,
            });
        }
        if let Some(path) = written.strip_prefix("file:") {
            let path = dir.join(path.trim());
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
            let value = text.trim_end_matches(['\r', '\n']).to_string();
            if value.is_empty() {
                return Err(format!("secret file {} is empty", path.display()));
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
    pub fn expose(&self) -> Result<&str, &str> {
        self.value.as_deref().map_err(String::as_str)
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
        assert!(Secret::resolve("file:missing.txt", dir.path()).is_err());
    }

    #[test]
    fn unset_env_is_reported_on_use() {
        let s = Secret::resolve("env:USERLOAD_TEST_SURELY_UNSET", Path::new(".")).unwrap();
        assert_eq!(
            s.expose(),
            Err("environment variable USERLOAD_TEST_SURELY_UNSET is not set")
        );
        assert!(Secret::resolve("env:bad name", Path::new(".")).is_err());
    }
}
