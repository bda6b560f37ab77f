//! `userload filter check` and `userload filter test`: try a filter before a run does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;

use super::{Outcome, print_problems};
use crate::diag::SourceText;
use crate::graph::users_file::{self, UsersFile};
use odata::Filter;

#[derive(Debug, Subcommand)]
pub enum FilterCommand {
    /// Parse and validate a filter; print its canonical form, whether it needs Graph's
    /// advanced query mode, and the properties it reads.
    Check {
        /// The expression, e.g. "employeeType in ('Admin','Staff')".
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        expression: Option<String>,
        /// Read the expression from a filter file instead (`#` comments allowed).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Evaluate a filter file against sample Graph users.
    Test {
        /// The filter file.
        file: PathBuf,
        /// The users: a JSON array, a Graph page ({"value": [...]}), expectations
        /// ({"match": [...], "no_match": [...]}) or JSON Lines. Defaults to the filter's
        /// sidecar file, `NAME.users.json` beside `NAME.odata`.
        #[arg(long)]
        users: Option<PathBuf>,
    },
}

pub fn run(command: FilterCommand) -> Outcome {
    match command {
        FilterCommand::Check { expression, file } => {
            let source = match (expression, file) {
                (Some(text), _) => SourceText::new("filter", text),
                (None, Some(path)) => match read(&path) {
                    Ok(source) => source,
                    Err(outcome) => return outcome,
                },
                (None, None) => {
                    errln!("error: give an expression or --file");
                    return Outcome::Failed;
                }
            };
            match compile(&source) {
                Ok(filter) => {
                    print_check(filter.as_ref());
                    Outcome::Success
                }
                Err(outcome) => outcome,
            }
        }
        FilterCommand::Test { file, users } => test(&file, users.as_deref()),
    }
}

fn read(path: &Path) -> Result<Arc<SourceText>, Outcome> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SourceText::new(path.display().to_string(), text)),
        Err(e) => {
            errln!("error: cannot read {}: {e}", path.display());
            Err(Outcome::Failed)
        }
    }
}

fn compile(source: &Arc<SourceText>) -> Result<Option<Filter>, Outcome> {
    crate::filter::compile_in(source, 0..source.text().len()).map_err(|problems| {
        print_problems(&problems);
        Outcome::Failed
    })
}

fn print_check(filter: Option<&Filter>) {
    let Some(filter) = filter else {
        outln!("no filter: every user is pulled");
        return;
    };
    outln!("canonical:  {}", filter.canonical());
    if filter.needs_advanced_query() {
        outln!("advanced:   yes (sent with ConsistencyLevel: eventual and $count=true)");
    } else {
        outln!("advanced:   no");
    }
    let properties: Vec<&str> = filter.properties().iter().map(String::as_str).collect();
    outln!("properties: {}", properties.join(", "));
}

/// `NAME.users.json` beside `NAME.odata`.
fn sidecar(filter_file: &Path) -> PathBuf {
    let stem = filter_file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy();
    filter_file.with_file_name(format!("{stem}.users.json"))
}

fn test(file: &Path, users: Option<&Path>) -> Outcome {
    let source = match read(file) {
        Ok(source) => source,
        Err(outcome) => return outcome,
    };
    let filter = match compile(&source) {
        Ok(filter) => filter,
        Err(outcome) => return outcome,
    };
    let users_path = users.map_or_else(|| sidecar(file), Path::to_path_buf);
    let users = match UsersFile::load(&users_path) {
        Ok(users) if users.is_empty() => {
            errln!("error: {} holds no users", users_path.display());
            return Outcome::Failed;
        }
        Ok(users) => users,
        Err(e) => {
            errln!("error: {e}");
            return Outcome::Failed;
        }
    };
    let matches = |user: &serde_json::Value| filter.as_ref().is_none_or(|f| f.matches(user));
    let mut wrong = 0;
    for user in &users.users {
        let verdict = if matches(user) { "match" } else { "no match" };
        outln!("{verdict:<9} {}", users_file::label(user));
    }
    for (expected, group) in [(true, &users.must_match), (false, &users.must_not_match)] {
        for user in group {
            let actual = matches(user);
            let verdict = if actual { "match" } else { "no match" };
            if actual == expected {
                outln!("ok    {verdict:<9} {}", users_file::label(user));
            } else {
                wrong += 1;
                let wanted = if expected { "match" } else { "no match" };
                outln!(
                    "FAIL  {verdict:<9} {} (expected {wanted})",
                    users_file::label(user)
                );
            }
        }
    }
    let checked = users.must_match.len() + users.must_not_match.len();
    if checked == 0 {
        let n = users.users.iter().filter(|u| matches(u)).count();
        outln!("{n} of {} users match", users.users.len());
        return Outcome::Success;
    }
    if wrong == 0 {
        outln!("{checked} users: all as expected");
        Outcome::Success
    } else {
        outln!("{checked} users: {wrong} not as expected");
        Outcome::Partial
    }
}
