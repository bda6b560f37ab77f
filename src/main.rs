//! The `userload` command: parses arguments, runs the subcommand, turns the outcome into an
//! exit code (0 all good, 1 some users or checks failed, 2 could not run).

mod demo;

use std::process::ExitCode;

// A run allocates and frees many small values (JSON answers, records) on several threads;
// glibc's allocator spent a third of a large sync's CPU time on that, mimalloc a fraction.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    userload::cli::main(demo::run)
}
