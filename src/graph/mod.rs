//! Microsoft Graph: what we know about its user objects.

pub mod catalog;
