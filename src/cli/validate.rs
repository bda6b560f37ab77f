//! `userload validate`: every offline check of a config, with all problems at once.

use std::path::Path;

use super::{Outcome, load_config, load_mapping, print_problems};
use crate::config::TargetKind;
use crate::config::{Config, Limit};
use crate::graph::UserQuery;
use crate::mapping::Mapping;
use crate::targets::rest;

pub fn run(path: &Path) -> Outcome {
    match load_config(path) {
        Some(config) => {
            // The mapping is part of the config: checked the same way, with the config's settings.
            let Some(mapping) = load_mapping(&config) else {
                return Outcome::Failed;
            };
            // A REST target's API description is part of the config too.
            if let (TargetKind::Rest, Some(api)) = (config.target.kind, &config.target.api)
                && let Err(problems) = rest::load_description(api, rest::Needs::Writes)
            {
                print_problems(&problems);
                errln!(
                    "{}: the target's API description has problems; nothing was run",
                    path.display()
                );
                return Outcome::Failed;
            }
            // References to the target's lists (departments…) must name lists it has.
            if mapping.entity_refs().next().is_some() {
                match crate::targets::connect(&config, &mapping) {
                    Ok(target) if super::references_fit(&config, &mapping, target.as_ref()) => {}
                    Ok(_) => return Outcome::Failed,
                    Err(e) => {
                        super::print_error(&e);
                        return Outcome::Failed;
                    }
                }
            }
            outln!("{}", summary(&config, &mapping));
            Outcome::Success
        }
        None => Outcome::Failed,
    }
}

/// How runs read Entra: by delta between full reconciliations, or always in full and why.
fn reading(config: &Config, query: &UserQuery) -> String {
    if !config.sync.delta {
        return "every user every run (`delta = no`)".to_owned();
    }
    if config.sync.full_every.is_zero() {
        return "every user every run (`full_every = 0`: each run is a full reconciliation)"
            .to_owned();
    }
    let secs = config.sync.full_every.as_secs();
    let every = match (secs % 86_400, secs % 3_600) {
        (0, _) => format!("{} days", secs / 86_400),
        (_, 0) => format!("{} hours", secs / 3_600),
        _ => humantime::format_duration(config.sync.full_every).to_string(),
    };
    match crate::graph::delta::unavailable(query) {
        None => format!(
            "only what changed in Entra (delta), every user in a full reconciliation every {every}"
        ),
        Some(why) => format!("every user every run: delta runs are unavailable ({why})"),
    }
}

/// What the config says, in a few lines an admin can check at a glance. Never a secret.
fn summary(config: &Config, mapping: &Mapping) -> String {
    let source = &config.source;
    let credential = source.credential.describe();
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
    let selection = crate::sync::selection(mapping);
    let query = UserQuery::new(source, selection);
    let reads = match mapping.manager_select() {
        Some(manager) => format!(
            "{}; manager: {}{}",
            mapping.select().join(", "),
            manager.join(", "),
            if query.managers_apart() {
                " (by a second query: Graph cannot expand in advanced query mode)"
            } else {
                ""
            }
        ),
        None => mapping.select().join(", "),
    };
    let mut lines = vec![
        format!("{}: OK", config.path.display()),
        format!("  tenant        {}", source.tenant_id),
        match source.client_id.as_str() {
            "" => format!("  client        {credential}"),
            client => format!("  client        {client} with {credential}"),
        },
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
            mapping.match_keys().join(", then ")
        ),
        format!("  graph reads   {reads}"),
        format!(
            "  sync          {}, deactivate {}, at most {limit} per run, concurrency {}",
            config.sync.mode.name(),
            config.sync.deactivate,
            config.sync.concurrency
        ),
        format!("  state         {}", config.sync.state.display()),
        format!("  reads         {}", reading(config, &query)),
    ];
    if !source.enabled {
        lines.push("  note          the source is disabled (enable = false)".to_string());
    }
    lines.join("\n")
}
