//! Microsoft Graph: what we know about its user objects, and users saved to files.

pub mod catalog;
pub mod users_file;
