//! The `userload` command: parses arguments, runs the subcommand, turns the outcome into an
//! exit code (0 all good, 1 some users or checks failed, 2 could not run).

mod demo;

use std::process::ExitCode;

// A run allocates and frees many small values (JSON answers, records) on several threads;
// glibc's allocator spent a third of a large sync's CPU time on that, mimalloc a fraction.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps memory freed before it hands it back to the system, in
/// milliseconds. Its default of 10 ms returns the buffer of each page of a thousand users
/// before the next page needs the same again, and the kernel then clears fresh pages for
/// it: a sixth of a large run's CPU time. A second keeps them for reuse; a run's peak
/// memory is the same, only handed back later.
const KEEP_FREED_MS: std::ffi::c_long = 1000;

fn main() -> ExitCode {
    // SAFETY: sets one of mimalloc's options by its documented number (v3's
    // `mi_option_purge_delay`), before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, KEEP_FREED_MS);
    }
    userload::cli::main(demo::run)
}

/// `mi_option_purge_delay` in the `mi_option_e` of mimalloc v3's `mimalloc.h`.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
