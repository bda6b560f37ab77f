//! Simulators of the services userload talks to, served on 127.0.0.1. Tests, benchmarks and
//! `userload demo` run the production code paths against them, since nothing here may reach
//! Microsoft or a customer's asset system.

pub mod compact;
pub mod freshservice;
pub mod glpi;
pub mod graph;
pub mod oomnitza;
pub mod scim;
pub mod server;
pub mod snipeit;
pub mod tenant;
pub mod throttle;
