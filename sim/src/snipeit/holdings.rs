//! What a user holds: `GET /api/v1/users/{id}/assets`, `/licenses` and `/accessories`.
//!
//! As in Snipe-IT's `UsersController`, each answers every item at once as `{"total": n,
//! "rows": [...]}` (no paging), each item shaped as its transformer shapes it (the fields an
//! admin reads). An unknown user is answered 200 with `"status": "error"`, as Snipe-IT does:
//! `assets` and `licenses` with "User does not exist or you do not have permission view
//! them.", `accessories` (a `findOrFail`) with "User not found". An API key that may not
//! view them ([`SnipeIt::may_view_holdings`]) gets Laravel's 403.

use serde_json::{Value as Json, json};

use super::{SnipeIt, date, endpoint_not_found, escape, refusal};
use crate::server::Reply;

/// An asset, a licence seat or an accessory, and who holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Its name.
    pub name: String,
    /// The asset tag (assets only; empty otherwise).
    pub asset_tag: String,
    /// The serial number (may be empty).
    pub serial: String,
    /// The model's name (assets) or the category's (others).
    pub model: String,
    /// The status label's name (assets).
    pub status: String,
    /// The user it is checked out to, if any.
    pub assigned_to: Option<u64>,
}

impl Item {
    /// An item checked out to `user`, the details it does not name made up.
    pub fn assigned(user: u64, name: &str, asset_tag: &str) -> Item {
        Item {
            name: name.to_string(),
            asset_tag: asset_tag.to_string(),
            serial: if asset_tag.is_empty() {
                String::new()
            } else {
                format!("SN-{asset_tag}")
            },
            model: name.to_string(),
            status: "Ready to Deploy".to_string(),
            assigned_to: Some(user),
        }
    }
}

/// How one kind of item is rendered.
type Render = fn(&SnipeIt, u64, u64, &Item) -> Json;

/// The user message of `assets` and `licenses` for an unknown user.
const USER_NOT_FOUND: &str = "User does not exist or you do not have permission view them.";

impl SnipeIt {
    /// `GET /api/v1/users/{user}/{what}`.
    pub(super) fn held_by(&self, user: Option<u64>, what: &str) -> Reply {
        if !self.may_view_holdings {
            return Reply::json(403, json!({"message": "This action is unauthorized."}));
        }
        let known = user.filter(|id| self.users.contains_key(id));
        let (items, render): (_, Render) = match what {
            "assets" => (&self.assets, SnipeIt::render_asset),
            "licenses" => (&self.licences, SnipeIt::render_licence),
            "accessories" => (&self.accessories, SnipeIt::render_accessory),
            _ => return endpoint_not_found(),
        };
        let Some(user) = known else {
            return match what {
                "accessories" => refusal("User not found"),
                _ => refusal(USER_NOT_FOUND),
            };
        };
        let rows: Vec<Json> = items
            .iter()
            .filter(|(_, item)| item.assigned_to == Some(user))
            .map(|(id, item)| render(self, user, *id, item))
            .collect();
        Reply::json(200, json!({"total": rows.len(), "rows": rows}))
    }

    /// The user an item is assigned to, as `AssetsTransformer::transformAssignedTo` gives it.
    fn assignee(&self, user: u64) -> Json {
        let Some(row) = self.users.get(&user) else {
            return Json::Null;
        };
        let text = |key: &str| row.get(key).and_then(Json::as_str).map(escape);
        let or_null = |key: &str| {
            text(key)
                .filter(|t| !t.is_empty())
                .map_or(Json::Null, Json::from)
        };
        let first = text("first_name").unwrap_or_default();
        let last = text("last_name").unwrap_or_default();
        json!({
            "id": user,
            "username": text("username").unwrap_or_default(),
            "name": format!("{first} {last}").trim(),
            "first_name": first,
            "last_name": or_null("last_name"),
            "email": or_null("email"),
            "employee_number": or_null("employee_num"),
            "type": "user",
        })
    }

    fn render_asset(&self, user: u64, id: u64, item: &Item) -> Json {
        json!({
            "id": id,
            "name": escape(&item.name),
            "asset_tag": escape(&item.asset_tag),
            "serial": escape(&item.serial),
            "model": {"id": id, "name": escape(&item.model)},
            "byod": false,
            "requestable": false,
            "model_number": null,
            "status_label": {
                "id": 1,
                "name": escape(&item.status),
                "status_type": "deployable",
                "status_meta": "deployed",
            },
            "category": null,
            "manufacturer": null,
            "notes": null,
            "company": null,
            "location": null,
            "assigned_to": self.assignee(user),
            "created_at": date(),
            "updated_at": date(),
            "last_checkout": date(),
            "expected_checkin": null,
            "deleted_at": null,
        })
    }

    fn render_licence(&self, _user: u64, id: u64, item: &Item) -> Json {
        json!({
            "id": id,
            "name": escape(&item.name),
            "company": null,
            "manufacturer": null,
            "product_key": "------------",
            "seats": 1,
            "free_seats_count": 0,
            "category": {"id": 1, "name": escape(&item.model)},
            "created_at": date(),
            "updated_at": date(),
        })
    }

    fn render_accessory(&self, _user: u64, id: u64, item: &Item) -> Json {
        json!({
            "id": id,
            "name": escape(&item.name),
            "image": null,
            "company": null,
            "manufacturer": null,
            "category": {"id": 1, "name": escape(&item.model)},
            "model_number": null,
            "qty": 1,
            "remaining_qty": 0,
            "created_at": date(),
            "updated_at": date(),
        })
    }
}
