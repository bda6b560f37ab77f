//! How the app signs in to Entra: a client secret, or a certificate and its private key,
//! never both.

use std::path::PathBuf;

use super::{Checker, Keys};
use crate::config::model::{AssertionAlgorithm, Credential};

/// The values `assertion_algorithm` takes.
const ALGORITHMS: &[(&str, AssertionAlgorithm)] = &[
    ("PS256", AssertionAlgorithm::Ps256),
    ("RS256", AssertionAlgorithm::Rs256),
];

impl<'d> Checker<'d> {
    /// `secret`, or `certificate` with `private_key`: exactly one way to sign in.
    pub(super) fn credential(&mut self, keys: &mut Keys<'d>) -> Option<Credential> {
        let given = (
            keys.given("secret"),
            keys.given("certificate"),
            keys.given("private_key"),
        );
        let credential = match given {
            (Some(_), Some(other), _) | (Some(_), None, Some(other)) => {
                self.error(
                    other.key_span.clone(),
                    format!("both `secret` and `{}` are set", other.key),
                    "use one way to sign in: remove `secret`, or `certificate` and `private_key`",
                );
                None
            }
            (Some(_), None, None) => self.secret(keys, "secret").map(Credential::Secret),
            (None, Some(_), Some(_)) => {
                let certificate = self.pem_file(keys, "certificate", "CERTIFICATE");
                let private_key = self.pem_file(keys, "private_key", "PRIVATE KEY");
                let algorithm = match keys.given("assertion_algorithm") {
                    Some(_) => self.choice(keys, "assertion_algorithm", ALGORITHMS)?,
                    None => AssertionAlgorithm::Ps256,
                };
                Some(Credential::Certificate {
                    certificate: certificate?,
                    private_key: private_key?,
                    algorithm,
                })
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                let missing = if given.1.is_some() {
                    "private_key"
                } else {
                    "certificate"
                };
                self.missing(
                    keys,
                    missing,
                    "a certificate sign-in needs both `certificate` and `private_key` (PEM files)",
                );
                None
            }
            (None, None, None) => {
                self.missing(
                    keys,
                    "secret",
                    "add: secret = env:USERLOAD_SECRET (or certificate = … and private_key = …)",
                );
                None
            }
        };
        for key in [
            "secret",
            "certificate",
            "private_key",
            "assertion_algorithm",
        ] {
            keys.take(key);
        }
        credential
    }

    /// A PEM file that must contain a `-----BEGIN … {label}-----` block.
    fn pem_file(&mut self, keys: &mut Keys<'d>, key: &str, label: &str) -> Option<PathBuf> {
        let entry = keys.given(key)?;
        let path = self.existing_file(keys, key)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let message = format!("cannot read {}: {e}", path.display());
                self.error(entry.value_span.clone(), message, "");
                return None;
            }
        };
        let has_block = text.lines().any(|l| {
            l.starts_with("-----BEGIN") && l.trim_end().ends_with(&format!("{label}-----"))
        });
        if !has_block {
            self.error(
                entry.value_span.clone(),
                format!(
                    "{} holds no PEM {}",
                    path.display(),
                    label.to_ascii_lowercase()
                ),
                format!("expected a file with a -----BEGIN {label}----- block"),
            );
            return None;
        }
        Some(path)
    }
}
