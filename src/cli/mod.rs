//! The command line: one file per subcommand, all sharing how problems are printed and how
//! outcomes become exit codes.
//!
//! Nothing here prints with `println!` or `eprintln!`: every line for the admin goes through
//! [`outln!`] / [`errln!`] (and [`out!`] / [`err!`]), which pass it through
//! [`crate::secrets::scrub`] and ignore a closed pipe (`userload plan | head`). A test keeps
//! it that way.

/// Prints a line to stdout, scrubbed of secrets.
macro_rules! outln {
    () => { $crate::cli::emit(false, "\n") };
    ($($arg:tt)*) => { $crate::cli::emit(false, &format!("{}\n", format_args!($($arg)*))) };
}

/// Prints to stdout, scrubbed of secrets.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::emit(false, &format!($($arg)*)) };
}

/// Prints a line to stderr, scrubbed of secrets.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::emit(true, &format!("{}\n", format_args!($($arg)*))) };
}

/// Prints to stderr, scrubbed of secrets.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::emit(true, &format!($($arg)*)) };
}

mod check;
mod daemon;
mod explain;
mod filter;
mod html;
mod init;
mod mapping;
mod package;
mod plan;
mod pull;
mod run;
mod show;
mod status;
mod sync;
mod validate;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::diag::Problem;
use crate::log::color;

/// Loads the users of a Microsoft Entra ID tenant into an asset-management system.
#[derive(Debug, Parser)]
#[command(name = "userload", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: crate::log::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// See a whole sync work on a simulated tenant and asset system, on this machine.
    Demo(DemoArgs),
    /// Write a commented config and a mapping to start from (never overwrites).
    Init(init::InitArgs),
    /// Check a config file and every file it names, without touching the network.
    Validate {
        /// The config file (.ini or .toml).
        #[arg(long, short, env = "USERLOAD_CONFIG")]
        config: PathBuf,
    },
    /// Check OData filters and try them on sample users.
    #[command(subcommand)]
    Filter(filter::FilterCommand),
    /// Check sign-in, permissions and the filter against the live tenant (reads only).
    Check {
        /// The config file (.ini or .toml).
        #[arg(long, short, env = "USERLOAD_CONFIG")]
        config: PathBuf,
    },
    /// Read the users in scope from Graph and write them as JSON lines.
    Pull(pull::PullArgs),
    /// Test mapping files and preview the records they make.
    #[command(subcommand)]
    Mapping(mapping::MappingCommand),
    /// Show why a run does what it does to one user: scope, fields, match, action.
    Explain(explain::ExplainArgs),
    /// Show what a run would change, writing nothing anywhere.
    Plan(plan::PlanArgs),
    /// Sync: create, update, deactivate and reactivate target users.
    Run(run::RunArgs),
    /// Run the sync on a schedule (daily at a time, or at an interval).
    Daemon(daemon::DaemonArgs),
    /// Show the latest runs from the state file.
    Status(status::StatusArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a folder.
    Man(package::ManArgs),
}

/// Arguments of `userload demo`. The demo itself lives with the binary, which alone links
/// the simulators; the library only knows its arguments.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Users in the simulated tenant.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(50..=200_000))]
    pub users: u32,
    /// Keep the demo's config, state file, reports and CSV in this folder (created; it must
    /// not hold a config already).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// How a command ended, as a scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// The command ran, but some items (users, checks) failed.
    Partial,
    /// The command could not run: bad config, bad input, unreachable service.
    Failed,
}

impl Outcome {
    /// The outcome a run's exit code stands for (decided by
    /// [`RunStatus::exit_code`](crate::sync::report::RunStatus::exit_code)).
    fn of_exit_code(code: i64) -> Outcome {
        match code {
            0 => Outcome::Success,
            1 => Outcome::Partial,
            _ => Outcome::Failed,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(match outcome {
            Outcome::Success => 0,
            Outcome::Partial => 1,
            Outcome::Failed => 2,
        })
    }
}

/// Entry point of the binary; `demo` runs `userload demo`.
pub fn main(demo: fn(&DemoArgs) -> Outcome) -> ExitCode {
    let cli = Cli::parse();
    run(cli, demo).into()
}

/// Runs a parsed command line and says how it ended.
pub fn run(cli: Cli, demo: fn(&DemoArgs) -> Outcome) -> Outcome {
    if let Err(e) = crate::log::init(&cli.log) {
        print_error(&e);
        return Outcome::Failed;
    }
    dispatch(cli.command, demo)
}

/// Runs one more command, as if typed after `userload` (logging is set up already): the
/// demo runs `plan`, `run` and `status` this way, through the very code an admin's
/// commands take.
pub fn execute(args: impl IntoIterator<Item = std::ffi::OsString>) -> Outcome {
    let words = std::iter::once(std::ffi::OsString::from("userload")).chain(args);
    match Cli::try_parse_from(words) {
        Ok(cli) => dispatch(cli.command, |_| Outcome::Failed),
        Err(e) => {
            errln!("{e}");
            Outcome::Failed
        }
    }
}

fn dispatch(command: Command, demo: fn(&DemoArgs) -> Outcome) -> Outcome {
    match command {
        Command::Validate { config } => validate::run(&config),
        Command::Filter(command) => filter::run(command),
        Command::Check { config } => check::run(&config),
        Command::Pull(args) => pull::run(&args),
        Command::Mapping(command) => mapping::run(command),
        Command::Explain(args) => explain::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Daemon(args) => daemon::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Demo(args) => demo(&args),
        Command::Init(args) => init::run(&args),
        Command::Completions { shell } => package::completions(shell),
        Command::Man(args) => package::man(&args),
    }
}

/// Loads a config, printing its warnings, or its problems when it cannot be used.
fn load_config(path: &std::path::Path) -> Option<crate::config::Config> {
    match crate::config::load(path) {
        Ok(loaded) => {
            print_problems(&loaded.warnings);
            Some(loaded.config)
        }
        Err(crate::config::ConfigError::Invalid { path, problems }) => {
            print_problems(&problems);
            let errors = problems.iter().filter(|p| p.is_error()).count();
            errln!("{}: {errors} error(s); nothing was run", path.display());
            None
        }
        Err(e) => {
            print_error(&e);
            None
        }
    }
}

/// The config's mapping, compiled and checked against the config; its problems are printed
/// and `None` returned.
fn load_mapping(config: &crate::config::Config) -> Option<crate::mapping::Mapping> {
    match crate::mapping::load(config) {
        Ok(mapping) => Some(mapping),
        Err(problems) => {
            print_problems(&problems);
            let errors = problems.iter().filter(|p| p.is_error()).count();
            errln!(
                "{}: {errors} error(s) in the mapping; nothing was run",
                config.path.display()
            );
            None
        }
    }
}

/// Whether the mapping's entity references name lists `target` has (printing the problems
/// when not).
fn references_fit(
    config: &crate::config::Config,
    mapping: &crate::mapping::Mapping,
    target: &dyn crate::targets::Target,
) -> bool {
    let kinds = target.entity_kinds();
    let kinds: Vec<(&str, bool)> = kinds.iter().map(|k| (k.name.as_str(), k.creates)).collect();
    let problems = mapping.check_entities(&kinds, &target.describe());
    if problems.is_empty() {
        return true;
    }
    print_problems(&problems);
    errln!(
        "{}: the mapping refers to lists the target does not have; nothing was run",
        config.path.display()
    );
    false
}

/// This process's peak resident memory in MB, where the system tells it (Linux).
pub(super) fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

/// A runtime for the commands that talk to servers, one worker thread per core (tokio's
/// default); `None` (reported) if it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .inspect_err(|e| print_error(e))
        .ok()
}

/// Writes `text` to stderr or stdout with every secret blanked; a closed pipe is ignored
/// (the reader went away; the run's outcome is in its exit code, log and report).
pub(crate) fn emit(to_stderr: bool, text: &str) {
    use std::io::Write;
    let text = crate::secrets::scrub(text);
    let _ = if to_stderr {
        std::io::stderr().lock().write_all(text.as_bytes())
    } else {
        std::io::stdout().lock().write_all(text.as_bytes())
    };
}

/// Prints problems to stderr with the source line and a caret (in colour on a terminal).
fn print_problems(problems: &[Problem]) {
    err!("{}", crate::diag::render(problems, color()));
}

/// Prints an error that has no place in a file, with its causes.
pub fn print_error(error: &dyn std::error::Error) {
    let mut message = format!("error: {error}");
    let mut cause = error.source();
    while let Some(c) = cause {
        // Many errors quote their cause already.
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(&format!(": {text}"));
        }
        cause = c.source();
    }
    errln!("{message}");
}
