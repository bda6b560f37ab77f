//! `userload mapping test` and `userload mapping preview`: try a mapping before a run does.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value as Json, json};

use super::{Outcome, print_error, print_problems};
use crate::config::{self, ConfigError};
use crate::diag::SourceText;
use crate::graph::users_file::{self, UsersFile};
use crate::mapping::{self, Context, Mapping};

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Compile a mapping file and run its [[test]] cases.
    Test {
        /// The mapping file, or the name of a shipped mapping (scim, oomnitza, snipeit).
        file: PathBuf,
    },
    /// Map sample Graph users with the mapping a config uses, and show the records.
    Preview {
        /// The config file (.ini or .toml); its mapping and settings are used.
        #[arg(long, short, env = "USERLOAD_CONFIG")]
        config: PathBuf,
        /// Graph users: JSON Lines (.jsonl), a JSON array, or a Graph page ({"value": [...]}).
        #[arg(long)]
        users: PathBuf,
        /// Print one JSON object per user instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: MappingCommand) -> Outcome {
    match command {
        MappingCommand::Test { file } => test(&file),
        MappingCommand::Preview {
            config,
            users,
            json,
        } => preview(&config, &users, json),
    }
}

fn compile(file: &Path) -> Result<Mapping, Outcome> {
    let shipped = file
        .to_str()
        .filter(|_| !file.exists())
        .and_then(|name| Some((name, mapping::shipped(name)?)));
    let compiled = match shipped {
        Some((name, text)) => {
            let source = SourceText::new(format!("mappings/{name}.toml (built in)"), text);
            mapping::compile_source(&source, mapping::Options::default())
        }
        None => mapping::load_file(file),
    };
    compiled.map_err(|problems| {
        print_problems(&problems);
        let errors = problems.iter().filter(|p| p.is_error()).count();
        errln!("{}: {errors} error(s)", file.display());
        if !file.exists() {
            let names: Vec<&str> = mapping::SHIPPED.iter().map(|(n, _)| *n).collect();
            errln!("(the shipped mappings, by name: {})", names.join(", "));
        }
        Outcome::Failed
    })
}

fn test(file: &Path) -> Outcome {
    let mapping = match compile(file) {
        Ok(mapping) => mapping,
        Err(outcome) => return outcome,
    };
    let outcomes = mapping.run_tests();
    if outcomes.is_empty() {
        outln!("{}: compiles; it has no [[test]] cases", mapping.name());
        return Outcome::Success;
    }
    let mut failed = 0;
    for outcome in &outcomes {
        match &outcome.failure {
            None => outln!("ok    {}", outcome.name),
            Some(why) => {
                failed += 1;
                outln!("FAIL  {}\n      {why}", outcome.name);
            }
        }
    }
    let total = outcomes.len();
    if failed == 0 {
        outln!("{}: {total} tests passed", mapping.name());
        Outcome::Success
    } else {
        outln!("{}: {failed} of {total} tests failed", mapping.name());
        Outcome::Partial
    }
}

fn preview(config_path: &Path, users_path: &Path, as_json: bool) -> Outcome {
    let config = match config::load(config_path) {
        Ok(loaded) => loaded.config,
        Err(ConfigError::Invalid { problems, .. }) => {
            print_problems(&problems);
            return Outcome::Failed;
        }
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    let mapping = match mapping::load(&config) {
        Ok(mapping) => mapping,
        Err(problems) => {
            print_problems(&problems);
            return Outcome::Failed;
        }
    };
    let file = match UsersFile::load(users_path) {
        Ok(file) => file,
        Err(e) => {
            errln!("error: {e}");
            return Outcome::Failed;
        }
    };
    let users: Vec<&Json> = file
        .users
        .iter()
        .chain(&file.must_match)
        .chain(&file.must_not_match)
        .collect();
    let sync_time = crate::state::now();
    let ctx = Context {
        settings: &config.settings,
        sync_time: &sync_time,
    };
    let mut skipped = 0;
    for user in &users {
        let label = users_file::label(user);
        let result = mapping.map(user, &ctx);
        if result.is_err() {
            skipped += 1;
        }
        if as_json {
            let line = match result {
                Ok(record) => json!({ "user": label, "record": record.to_json() }),
                Err(skip) => {
                    json!({ "user": label, "skip": { "field": skip.field, "reason": skip.reason } })
                }
            };
            outln!("{line}");
        } else {
            match result {
                Ok(record) => print_record(&mapping, &label, &record),
                Err(skip) => outln!("{label}\n  skipped: {skip}\n"),
            }
        }
    }
    errln!(
        "{} users: {} mapped, {skipped} skipped",
        users.len(),
        users.len() - skipped
    );
    if skipped == 0 {
        Outcome::Success
    } else {
        Outcome::Partial
    }
}

/// One user's record as a two-column table, fields in mapping order.
fn print_record(mapping: &Mapping, label: &str, record: &mapping::Record) {
    outln!("{label}");
    let width = mapping
        .fields()
        .iter()
        .map(|f| f.target().chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    for (target, value) in record.iter() {
        let shown = match value {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        outln!("  {:<width$}  {}", target, crate::diag::shorten(&shown, 80));
    }
    outln!();
}
