//! One integration-test binary for the whole crate (fast to build and link).

// Test and benchmark code may stop at the first surprise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod assets;
mod canaries;
mod cli;
mod config;
mod delta;
mod delta_write;
mod docs;
mod drift;
mod explain;
mod filter_corpus;
mod filter_props;
mod freshservice;
mod glpi;
mod graph;
mod groups;
mod html;
mod interop;
mod layers;
mod mapping;
mod mapping_corpus;
mod monitoring;
mod operations;
mod pacing;
mod plan;
mod plan_keys;
mod relations;
mod rest_target;
mod scim_target;
mod seals;
mod shipped;
mod sync;
mod takeover;
mod util;
