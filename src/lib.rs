//! userload: loads the users of a Microsoft Entra ID tenant into an asset-management system.
//!
//! The binary is a thin shell over this library; integration tests, benchmarks and the
//! command line all use the same modules.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod diag;
pub mod filter;
pub mod graph;
pub mod html;
pub mod http;
pub mod log;
pub mod mapping;
pub mod metrics;
pub mod notify;
pub mod scan;
pub mod secrets;
pub mod spill;
pub mod state;
pub mod sync;
pub mod targets;
