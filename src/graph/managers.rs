//! Every user's manager read by a query of its own, for a query that cannot expand it.

use std::collections::HashMap;
use std::sync::Arc;

use super::client::GraphClient;
use super::error::GraphError;
use super::users::{UserPager, UserQuery};

/// Every user's manager by user id, read apart from the users when the query needs Graph's
/// advanced mode ([`UserQuery::managers_apart`]), and put back on each user before mapping.
#[derive(Debug, Default)]
pub struct Managers(HashMap<String, serde_json::Value>);

impl Managers {
    /// Reads the managers `query` asks for ([`UserQuery::manager_query`]); `None` when the
    /// query expands the manager itself or does not read it.
    pub async fn read(
        client: &Arc<GraphClient>,
        query: &UserQuery,
    ) -> Result<Option<Managers>, GraphError> {
        let Some(query) = query.manager_query() else {
            return Ok(None);
        };
        let mut managers = HashMap::new();
        let mut pager = UserPager::new(Arc::clone(client), &query);
        while let Some(page) = pager.next_page().await? {
            for mut user in page {
                if let (Some(id), Some(manager)) = (
                    user.get("id").and_then(|v| v.as_str()).map(str::to_owned),
                    user.get_mut("manager").map(serde_json::Value::take),
                ) && !manager.is_null()
                {
                    managers.insert(id, manager);
                }
            }
        }
        Ok(Some(Managers(managers)))
    }

    /// Puts the user's manager on `user` as `$expand` would have (nothing when it has none).
    pub fn attach(&self, user: &mut serde_json::Value) {
        let manager = user
            .get("id")
            .and_then(|id| id.as_str())
            .and_then(|id| self.0.get(id));
        if let (Some(manager), Some(object)) = (manager, user.as_object_mut()) {
            object.insert("manager".to_owned(), manager.clone());
        }
    }

    /// Gives `piece` what [`Managers::attach`] puts on the user of `id`: its manager as
    /// JSON text.
    pub fn describe_user(&self, id: &str, piece: &mut dyn FnMut(&[u8])) {
        if let Some(manager) = self.0.get(id) {
            piece(manager.to_string().as_bytes());
        }
    }

    /// How many users have a manager.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no user has a manager.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
