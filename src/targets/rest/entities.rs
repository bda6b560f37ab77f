//! The lists users refer to (`[entities.KIND]`: departments, locations, companies): every
//! entity of a kind, paged as the user list is, and the create of one by name.
//!
//! Ids are read as text (a number `7` as `"7"`) and names with HTML escapes undone where the
//! API escapes, as users are. A name longer than the description's `max_name` fails before
//! any request; a create the API refuses fails with the API's message. A create sent as a
//! POST is sent once: after a transient failure the next run's listing shows whether it
//! was carried out.

use serde_json::{Value as Json, json};

use super::RestTarget;
use super::api::EntityList;
use super::json::{display_path, json_at, text_of, unescape_html};
use super::list::Listed;
use crate::diag::shorten;
use crate::targets::{Entity, EntityKind, TargetError};

impl RestTarget {
    /// The kinds the description lists, by name.
    pub(super) fn kinds(&self) -> Vec<EntityKind> {
        self.api
            .entities
            .values()
            .map(|list| EntityKind {
                name: list.kind.clone(),
                creates: list.create.is_some(),
                max_name: list.max_name,
            })
            .collect()
    }

    /// Every entity of `kind`; fails rather than return part of them.
    pub(super) async fn entities_of(&self, kind: &str) -> Result<Vec<Entity>, TargetError> {
        let list = self.entity_list(kind)?;
        let items = format!("{kind} entries");
        let listed = Listed {
            list: kind,
            items: &items,
        };
        let op = &list.operation;
        let read = |body: &Json| self.entities_in(list, body);
        self.list_all(op, &listed, read, |entity: &Entity| entity.id.as_str())
            .await
    }

    /// Creates the entity of `kind` named `name`; the entity as the API made it.
    pub(super) async fn new_entity(&self, kind: &str, name: &str) -> Result<Entity, TargetError> {
        let list = self.entity_list(kind)?;
        let Some(op) = &list.create else {
            return Err(TargetError::Unsupported(format!(
                "{} cannot create a {kind}: [entities.{kind}] in {} has no `create`",
                self.client.name(),
                self.api.source()
            )));
        };
        let length = name.chars().count();
        if let Some(max) = list.max_name.filter(|max| length > *max) {
            return Err(TargetError::Unsupported(format!(
                "{}: a {kind} name may have at most {max} characters, {:?} has {length}",
                self.client.name(),
                shorten(name, 60)
            )));
        }
        let vars = json!({ "name": name });
        let url = self.url(op, &vars)?;
        let body = self.body(op, &vars)?;
        let what = format!("creating the {kind} {:?}", shorten(name, 60));
        let (_, answer) = self.call(op, &url, body.as_ref(), &what).await?;
        let path = op.user.as_deref().unwrap_or_default();
        match json_at(&answer, path) {
            // An answer that gives only the new id (GLPI's `{"id": 5, "message": ""}`)
            // names the entity as asked.
            Some(Json::Object(item)) if !item.contains_key(&list.name) => {
                let mut item = item.clone();
                item.insert(list.name.clone(), Json::String(name.to_string()));
                self.entity_from(list, &Json::Object(item))
            }
            Some(item @ Json::Object(_)) => self.entity_from(list, item),
            _ => Err(TargetError::Malformed(format!(
                "{}: {what}: the answer has no {kind} at `{}`: {}",
                self.client.name(),
                display_path(path),
                self.client.scrub(&shorten(&answer.to_string(), 80))
            ))),
        }
    }

    /// `[entities.KIND]`, or why there is none.
    fn entity_list(&self, kind: &str) -> Result<&EntityList, TargetError> {
        self.api.entities.get(kind).ok_or_else(|| {
            TargetError::Unsupported(format!(
                "{} has no list of {kind}: {} has no [entities.{kind}]",
                self.client.name(),
                self.api.source()
            ))
        })
    }

    /// The entities in a page of a listing: the array at its `items`.
    fn entities_in(&self, list: &EntityList, body: &Json) -> Result<Vec<Entity>, TargetError> {
        let items = &list.operation.items;
        match json_at(body, items) {
            Some(Json::Array(found)) => found.iter().map(|i| self.entity_from(list, i)).collect(),
            _ => Err(TargetError::Malformed(format!(
                "{}: [entities.{}] answer has no list at `{}`: {}",
                self.client.name(),
                list.kind,
                display_path(items),
                self.client.scrub(&shorten(&body.to_string(), 80))
            ))),
        }
    }

    /// One item, its id as text and its name with HTML escapes undone where the API escapes.
    fn entity_from(&self, list: &EntityList, item: &Json) -> Result<Entity, TargetError> {
        let text = |path: &str| json_at(item, path).and_then(text_of);
        let id = text(&list.id).filter(|id| !id.is_empty());
        let (Some(id), Some(name)) = (id, text(&list.name)) else {
            return Err(TargetError::Malformed(format!(
                "{}: a {} has no `{}` or no `{}`: {}",
                self.client.name(),
                list.kind,
                list.id,
                list.name,
                self.client.scrub(&shorten(&item.to_string(), 80))
            )));
        };
        let name = if self.api.unescape_html {
            unescape_html(&name)
        } else {
            name
        };
        Ok(Entity { id, name })
    }
}
