//! One integration-test binary for the whole crate (fast to build and link).

mod cli;
mod config;
mod filter_corpus;
mod filter_props;
mod graph;
mod interop;
mod mapping;
mod mapping_corpus;
mod operations;
mod plan;
mod rest_target;
mod scim_target;
mod shipped;
mod sync;
mod util;
