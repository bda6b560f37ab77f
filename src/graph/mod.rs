//! Microsoft Graph: how to sign in to it and how to read users from it (full pulls page by page, or incremental delta rounds).

pub mod auth;
pub mod client;
pub mod delta;
pub mod error;
mod get;
pub mod users;
pub mod users_file;

pub use client::GraphClient;
pub use error::GraphError;
pub use users::{Managers, ReadLimit, Selection, UserPager, UserQuery};
