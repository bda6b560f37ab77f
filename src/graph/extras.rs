//! What a run reads beside the users and puts on each user before mapping: the membership
//! of the config's `input_groups` (`groups`) and licence names (`licenses`), each read once
//! per run and only when the mapping reads it.

use std::sync::Arc;

use serde_json::Value;

use super::client::GraphClient;
use super::error::GraphError;
use super::groups::{self, Memberships};
use super::licenses::Skus;
use super::users::UserQuery;

/// The membership and licence names a run read, ready to put on each user.
#[derive(Debug, Default)]
pub struct Extras {
    /// The membership of the config's `input_groups`, when the mapping reads `groups`.
    pub memberships: Option<Memberships>,
    /// The tenant's SKUs, when the mapping reads `licenses`.
    pub skus: Option<Skus>,
}

impl Extras {
    /// Reads what `query`'s selection asks for beside the users: the groups named in
    /// `input_groups` (resolved first; a name that cannot be resolved fails the read before
    /// any user is read) and the tenant's SKUs.
    pub async fn read(
        client: &Arc<GraphClient>,
        query: &UserQuery,
        input_groups: &[String],
    ) -> Result<Extras, GraphError> {
        let memberships = if query.selection.groups {
            let resolved = groups::resolve(client, input_groups).await?;
            Some(Memberships::read(client, resolved, query.page_size).await?)
        } else {
            None
        };
        let skus = if query.selection.licenses {
            Some(Skus::read(client).await?)
        } else {
            None
        };
        Ok(Extras { memberships, skus })
    }

    /// Puts `groups` and `licenses` on `user`, as far as they were read.
    pub fn attach(&self, user: &mut Value) {
        if let Some(memberships) = &self.memberships {
            memberships.attach(user);
        }
        if let Some(skus) = &self.skus {
            skus.attach(user);
        }
    }
}
