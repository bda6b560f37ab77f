//! `userload validate`: every offline check of a config, with all problems at once.

use std::path::Path;

use super::{Outcome, print_error, print_problems};
use crate::config::{self, Config, ConfigError, Credential, Limit};
use crate::mapping::{self, Mapping};

pub fn run(path: &Path) -> Outcome {
    match config::load(path) {
        Ok(loaded) => {
            print_problems(&loaded.warnings);
            // The mapping is part of the config: checked the same way, with the config's settings.
            match mapping::load(&loaded.config) {
                Ok(mapping) => {
                    println!("{}", summary(&loaded.config, &mapping));
                    Outcome::Success
                }
                Err(problems) => {
                    print_problems(&problems);
                    let errors = problems.iter().filter(|p| p.is_error()).count();
                    eprintln!(
                        "{}: {errors} error(s) in the mapping; nothing was run",
                        path.display()
                    );
                    Outcome::Failed
                }
            }
        }
        Err(ConfigError::Invalid { path, problems }) => {
            print_problems(&problems);
            let errors = problems.iter().filter(|p| p.is_error()).count();
            eprintln!("{}: {errors} error(s); nothing was run", path.display());
            Outcome::Failed
        }
        Err(e) => {
            print_error(&e);
            Outcome::Failed
        }
    }
}

/// What the config says, in a few lines an admin can check at a glance. Never a secret.
fn summary(config: &Config, mapping: &Mapping) -> String {
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
    let reads = match mapping.manager_select() {
        Some(manager) => format!(
            "{}; manager: {}",
            mapping.select().join(", "),
            manager.join(", ")
        ),
        None => mapping.select().join(", "),
    };
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
        format!(
            "  mapping       {} ({} fields, users matched on {})",
            mapping.name(),
            mapping.fields().len(),
            mapping.match_key()
        ),
        format!("  graph reads   {reads}"),
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
