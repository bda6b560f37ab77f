//! The `userload` command: parses arguments, runs the subcommand, turns the outcome into an
//! exit code (0 all good, 1 some users or checks failed, 2 could not run).

use std::process::ExitCode;

fn main() -> ExitCode {
    userload::cli::main()
}
