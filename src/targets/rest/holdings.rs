//! What a user holds (`[[assets]]`): each list the API description names is asked for the
//! user's id, and its items read as [`Holding`]s.
//!
//! Snipe-IT answers every item of a user at once, so these lists are not paged. An item
//! without a name is still listed (by its id): an admin asking what a leaver holds must not
//! be told "nothing" because a field was blank.

use serde_json::{Value as Json, json};

use super::RestTarget;
use super::api::AssetList;
use super::json::{display_path, json_at, text_of, unescape_all};
use crate::targets::{Holding, TargetError, TargetUser};

impl RestTarget {
    /// Everything `user` holds, by every `[[assets]]`; `None` when the description has none.
    pub(super) async fn holdings_of(
        &self,
        user: &TargetUser,
    ) -> Result<Option<Vec<Holding>>, TargetError> {
        if self.api.assets.is_empty() {
            return Ok(None);
        }
        let mut held = Vec::new();
        for list in &self.api.assets {
            held.extend(self.held_in(list, user).await?);
        }
        Ok(Some(held))
    }

    /// The items of one list.
    async fn held_in(
        &self,
        list: &AssetList,
        user: &TargetUser,
    ) -> Result<Vec<Holding>, TargetError> {
        let op = &list.operation;
        let url = self.url(op, &json!({ "id": user.id }))?;
        let what = format!("listing the {}s user {} holds", list.kind.name(), user.id);
        let (_, mut body) = self.call(op, &url, None, &what).await?;
        if self.api.unescape_html {
            unescape_all(&mut body);
        }
        let Some(Json::Array(items)) = json_at(&body, &op.items) else {
            return Err(TargetError::Malformed(format!(
                "{}: {what}: the answer has no list at `{}`",
                self.client.name(),
                display_path(&op.items)
            )));
        };
        Ok(items.iter().map(|item| holding(list, item)).collect())
    }
}

/// One item of a list, read as its `[[assets]]` says.
fn holding(list: &AssetList, item: &Json) -> Holding {
    let text = |path: &str| {
        json_at(item, path)
            .and_then(text_of)
            .filter(|t| !t.trim().is_empty())
    };
    let id = text(&list.id).unwrap_or_default();
    Holding {
        kind: list.kind,
        name: text(&list.name).unwrap_or_else(|| format!("#{id}")),
        tag: list.tag.as_deref().and_then(text),
        id,
    }
}
