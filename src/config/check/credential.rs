//! How the app signs in to Entra: a client secret, a certificate and its private key, a
//! federated token from a file (workload identity), or the managed identity of the Azure
//! resource userload runs on. Exactly one.

use std::path::PathBuf;

use url::Url;

use super::{Checker, Keys};
use crate::config::model::{
    AssertionAlgorithm, Credential, IMDS_TOKEN_URL, ManagedIdentityEndpoint,
};
use crate::config::secret::Secret;
use crate::diag::shorten;

/// The values `assertion_algorithm` takes.
const ALGORITHMS: &[(&str, AssertionAlgorithm)] = &[
    ("PS256", AssertionAlgorithm::Ps256),
    ("RS256", AssertionAlgorithm::Rs256),
];

/// The ways to sign in, as `credential` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `secret`.
    Secret,
    /// `certificate` and `private_key`.
    Certificate,
    /// A federated token read from a file.
    WorkloadIdentity,
    /// The Azure resource's managed identity.
    ManagedIdentity,
}

/// The values `credential` takes.
const KINDS: &[(&str, Kind)] = &[
    ("secret", Kind::Secret),
    ("certificate", Kind::Certificate),
    ("workload_identity", Kind::WorkloadIdentity),
    ("managed_identity", Kind::ManagedIdentity),
];

/// The keys that belong to one way of signing in only.
const OWN_KEYS: &[(&str, Kind)] = &[
    ("secret", Kind::Secret),
    ("certificate", Kind::Certificate),
    ("private_key", Kind::Certificate),
    ("assertion_algorithm", Kind::Certificate),
    ("federated_token_file", Kind::WorkloadIdentity),
    ("managed_identity_endpoint", Kind::ManagedIdentity),
];

impl<'d> Checker<'d> {
    /// `credential`, or the way to sign in the other keys imply when it is not set (a
    /// certificate when `certificate` or `private_key` is given, else a secret). `None` when
    /// the value is not one of the known ways.
    pub(super) fn credential_kind(&mut self, keys: &mut Keys<'d>) -> Option<Kind> {
        if keys.given("credential").is_some() {
            return self.choice(keys, "credential", KINDS);
        }
        keys.take("credential");
        if keys.given("certificate").is_some() || keys.given("private_key").is_some() {
            Some(Kind::Certificate)
        } else {
            Some(Kind::Secret)
        }
    }

    /// The credential of `kind`, from its own keys; a key of another way is an error.
    /// `client_id` is the checked `client_id` (empty for a system-assigned identity).
    pub(super) fn credential(
        &mut self,
        keys: &mut Keys<'d>,
        kind: Kind,
        client_id: Option<&str>,
    ) -> Option<Credential> {
        let mut foreign = false;
        for (key, owner) in OWN_KEYS {
            // A secret and a certificate are told apart below, with their own messages.
            let classic = |k: Kind| matches!(k, Kind::Secret | Kind::Certificate);
            let own = *owner == kind || (classic(kind) && classic(*owner));
            if let Some(entry) = keys.given(key)
                && !own
            {
                foreign = true;
                let name = KINDS
                    .iter()
                    .find(|(_, k)| *k == kind)
                    .map_or("", |(n, _)| n);
                self.error(
                    entry.key_span.clone(),
                    format!("`{key}` is set, but credential = {name}"),
                    format!("remove `{key}`, or set `credential` to the way you sign in"),
                );
            }
        }
        let credential = match kind {
            Kind::Secret | Kind::Certificate => {
                let credential = self.secret_or_certificate(keys);
                // Only a `credential` written out can disagree with the keys given.
                let found = match &credential {
                    Some(Credential::Secret(_)) => Some(Kind::Secret),
                    Some(_) => Some(Kind::Certificate),
                    None => None,
                };
                if let (Some(found), Some(entry)) = (found, keys.given("credential"))
                    && found != kind
                {
                    let (wanted, given) = match kind {
                        Kind::Secret => ("secret", "`certificate` and `private_key` are"),
                        _ => ("certificate", "`secret` is"),
                    };
                    self.error(
                        entry.value_span.clone(),
                        format!("credential = {wanted}, but {given} set"),
                        "set `credential` to the way you sign in, or remove it",
                    );
                    foreign = true;
                }
                credential
            }
            Kind::WorkloadIdentity => self.token_file(keys),
            Kind::ManagedIdentity => {
                self.managed_identity(keys)
                    .map(|endpoint| Credential::ManagedIdentity {
                        endpoint,
                        identity: client_id.filter(|c| !c.is_empty()).map(str::to_owned),
                    })
            }
        };
        for (key, _) in OWN_KEYS {
            keys.take(key);
        }
        credential.filter(|_| !foreign)
    }

    /// `secret`, or `certificate` with `private_key`: exactly one of the two.
    fn secret_or_certificate(&mut self, keys: &mut Keys<'d>) -> Option<Credential> {
        let given = (
            keys.given("secret"),
            keys.given("certificate"),
            keys.given("private_key"),
        );
        match given {
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
                    "add: secret = env:USERLOAD_SECRET (or certificate = … and private_key = …, \
                     or credential = workload_identity or managed_identity)",
                );
                None
            }
        }
    }

    /// `federated_token_file`, else `AZURE_FEDERATED_TOKEN_FILE`. The file is not read here:
    /// it may be mounted only where runs happen, and it is read again for every token.
    fn token_file(&mut self, keys: &mut Keys<'d>) -> Option<Credential> {
        let token_file = match self.text(keys, "federated_token_file") {
            Some((path, _)) => self.dir.join(path),
            None => {
                match std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").filter(|p| !p.is_empty()) {
                    Some(path) => PathBuf::from(path),
                    None => {
                        self.missing(
                            keys,
                            "federated_token_file",
                            "add: federated_token_file = <path>, or run where \
                         AZURE_FEDERATED_TOKEN_FILE is set (AKS workload identity sets it in \
                         pods labelled azure.workload.identity/use: \"true\")",
                        );
                        return None;
                    }
                }
            }
        };
        Some(Credential::WorkloadIdentity { token_file })
    }

    /// Where a managed identity's tokens come from: `managed_identity_endpoint` (an instance
    /// metadata endpoint), else App Service's `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` when
    /// both are set, else the instance metadata service at its fixed address.
    fn managed_identity(&mut self, keys: &mut Keys<'d>) -> Option<ManagedIdentityEndpoint> {
        if let Some((text, entry)) = self.text(keys, "managed_identity_endpoint") {
            return match local_endpoint(&text) {
                Some(url) => Some(ManagedIdentityEndpoint::Imds(url)),
                None => {
                    self.error(
                        entry.value_span.clone(),
                        format!(
                            "`managed_identity_endpoint` is not an http(s) URL: `{}`",
                            shorten(&text, 60)
                        ),
                        format!("e.g. {IMDS_TOKEN_URL}"),
                    );
                    None
                }
            };
        }
        let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let (Some(endpoint), Some(_)) =
            (variable("IDENTITY_ENDPOINT"), variable("IDENTITY_HEADER"))
        {
            let header = Secret::resolve("env:IDENTITY_HEADER", self.dir).ok()?;
            return match local_endpoint(&endpoint) {
                Some(url) => Some(ManagedIdentityEndpoint::AppService { url, header }),
                None => {
                    self.error(
                        keys.span(),
                        format!(
                            "the environment variable IDENTITY_ENDPOINT is not an http(s) URL: \
                             `{}`",
                            shorten(&endpoint, 60)
                        ),
                        "App Service sets it; unset it to use the instance metadata service",
                    );
                    None
                }
            };
        }
        Url::parse(IMDS_TOKEN_URL)
            .ok()
            .map(ManagedIdentityEndpoint::Imds)
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

/// A managed identity endpoint: plain http is the rule there (the endpoints are local to the
/// machine or the link), so both schemes are taken; no user name or password.
fn local_endpoint(text: &str) -> Option<Url> {
    let url = Url::parse(text.trim()).ok()?;
    let plain = url.username().is_empty() && url.password().is_none();
    (matches!(url.scheme(), "http" | "https") && url.host().is_some() && plain).then_some(url)
}
