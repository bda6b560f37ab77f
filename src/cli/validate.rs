//! `userload validate`: every offline check of a config, with all problems at once.

use std::path::Path;

use super::{Outcome, load_config};
use crate::config::{Config, Credential, Limit};

pub fn run(path: &Path) -> Outcome {
    match load_config(path) {
        Some(config) => {
            println!("{}", summary(&config));
            Outcome::Success
        }
        None => Outcome::Failed,
    }
}

/// What the config says, in a few lines an admin can check at a glance. Never a secret.
fn summary(config: &Config) -> String {
    let source = &config.source;
    let credential = match &source.credential {
        Credential::Secret(secret) => format!("client secret ({})", secret.origin()),
        Credential::Certificate { certificate, .. } => {
            format!("certificate {}", certificate.display())
        }
    };
    let filter = match &source.filter {
        Some(f) if f.needs_advanced_query() => {
            format!("{} (advanced query mode)", f.canonical())
        }
        Some(f) => f.canonical().to_string(),
        None => "none: every user".to_string(),
    };
    let limit = match config.sync.max_deactivations {
        Limit::Count(n) => format!("{n} users"),
        Limit::Percent(p) => format!("{p}% of owned users"),
    };
    let mapping = config.sync.mapping.as_ref().map_or_else(
        || "shipped default for the target type".to_string(),
        |p| p.display().to_string(),
    );
    let mut lines = vec![
        format!("{}: OK", config.path.display()),
        format!("  tenant        {}", source.tenant_id),
        format!("  client        {} with {credential}", source.client_id),
        format!("  graph         {}", source.graph_root),
        format!("  filter        {filter}"),
        format!(
            "  target        {} at {}",
            config.target.kind.name(),
            config.target.url
        ),
        format!("  mapping       {mapping}"),
        format!(
            "  sync          {}, deactivate {}, at most {limit} per run, concurrency {}",
            config.sync.mode.name(),
            config.sync.deactivate,
            config.sync.concurrency
        ),
        format!("  state         {}", config.sync.state.display()),
    ];
    if !source.enabled {
        lines.push("  note          the source is disabled (enable = false)".to_string());
    }
    lines.join("\n")
}
