//! Microsoft Graph: how to sign in to it, how to read users from it (full pulls page by page,
//! or incremental delta rounds), and what a run reads beside the users: group membership and
//! licence names.

pub mod auth;
mod by_id;
pub mod client;
pub mod delta;
pub mod error;
mod extras;
mod get;
pub mod groups;
pub mod licenses;
mod managers;
pub mod users;
pub mod users_file;

pub use by_id::users_by_id;
pub use client::GraphClient;
pub use error::GraphError;
pub use extras::{Beside, Extras};
pub use managers::Managers;
pub use users::{PagedUser, ReadLimit, Selection, UserPager, UserQuery};
