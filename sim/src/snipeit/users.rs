//! Users: listed, rendered as Snipe-IT's `UsersTransformer` renders them, created and
//! updated with the checks of `SaveUserRequest`, `UsersController` and the `User` model.

use serde_json::{Map, Value as Json, json};

use super::{
    SnipeIt, bad_request, date, escape, id_value, named, not_found, refusal, sort_key, success,
    truthy,
};
use crate::server::{Reply, Request};

/// The columns a user row has (the ones userload reads and writes).
const COLUMNS: &[&str] = &[
    "first_name",
    "last_name",
    "username",
    "email",
    "employee_num",
    "jobtitle",
    "phone",
    "activated",
    "department_id",
    "location_id",
    "company_id",
    "manager_id",
    "notes",
];

/// The columns holding another row's id.
const ID_COLUMNS: &[&str] = &["department_id", "location_id", "company_id", "manager_id"];

/// The columns `sort` accepts.
const SORTABLE: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "username",
    "email",
    "employee_num",
    "jobtitle",
    "phone",
    "activated",
];

impl SnipeIt {
    pub(super) fn list_users(&self, request: &Request) -> Reply {
        let search = request.query.get("search").map(|s| s.to_lowercase());
        let mut rows: Vec<(u64, &Map<String, Json>)> = self
            .users
            .iter()
            .filter(|(_, u)| search.as_deref().is_none_or(|s| matches_search(u, s)))
            .map(|(id, u)| (*id, u))
            .collect();
        let sort = request
            .query
            .get("sort")
            .map(String::as_str)
            .filter(|s| SORTABLE.contains(s))
            .unwrap_or("first_name");
        rows.sort_by(|(a_id, a), (b_id, b)| {
            if sort == "id" {
                return a_id.cmp(b_id);
            }
            let key = |u: &Map<String, Json>| u.get(sort).map(sort_key).unwrap_or_default();
            key(a).cmp(&key(b)).then(a_id.cmp(b_id))
        });
        if request.query.get("order").map(String::as_str) != Some("asc") {
            rows.reverse();
        }
        let page = self.page(request, rows.len());
        let total = rows.len();
        let chosen: Vec<Json> = rows
            .iter()
            .skip(page.offset)
            .take(page.limit)
            .map(|(id, u)| self.render_user(*id, u))
            .collect();
        page.answer(request, total, chosen)
    }

    /// A user's manager as the transformer shows it: `{id, name}`, or `null`.
    fn manager_of(&self, row: &Map<String, Json>) -> Json {
        let Some((id, manager)) = row
            .get("manager_id")
            .and_then(Json::as_u64)
            .and_then(|id| Some((id, self.users.get(&id)?)))
        else {
            return Json::Null;
        };
        let text = |key: &str| manager.get(key).and_then(Json::as_str).map(escape);
        let name = format!(
            "{} {}",
            text("first_name").unwrap_or_default(),
            text("last_name").unwrap_or_default()
        );
        json!({"id": id, "name": name})
    }

    pub(super) fn render_user(&self, id: u64, row: &Map<String, Json>) -> Json {
        let text = |key: &str| row.get(key).and_then(Json::as_str).map(escape);
        let or_null = |value: Option<String>| {
            value
                .filter(|v| !v.is_empty())
                .map_or(Json::Null, Json::from)
        };
        let id_of = |key: &str| row.get(key).and_then(Json::as_u64);
        let first = text("first_name").unwrap_or_default();
        let last = text("last_name").unwrap_or_default();
        let mut user = json!({
            "id": id,
            "avatar": "https://example.invalid/img/default-sm.png",
            "name": format!("{first} {last}").trim(),
            "first_name": first,
            "last_name": last,
            "username": text("username").unwrap_or_default(),
            "remote": false,
            "locale": "en-US",
            "employee_num": text("employee_num").unwrap_or_default(),
            "manager": self.manager_of(row),
            "jobtitle": or_null(text("jobtitle")),
            "vip": false,
            "phone": or_null(text("phone")),
            "website": null,
            "address": null,
            "city": null,
            "state": null,
            "country": null,
            "zip": null,
            "email": text("email").unwrap_or_default(),
            "department": named(&self.departments, id_of("department_id")),
        });
        let held = |items: &std::collections::BTreeMap<u64, super::Item>| {
            items.values().filter(|i| i.assigned_to == Some(id)).count()
        };
        let extra = json!({
            "location": named(&self.locations, id_of("location_id")),
            "notes": text("notes").unwrap_or_default(),
            "permissions": null,
            "activated": row.get("activated").is_some_and(truthy),
            "autoassign_licenses": true,
            "ldap_import": false,
            "two_factor_enrolled": false,
            "two_factor_optin": false,
            "assets_count": held(&self.assets),
            "licenses_count": held(&self.licences),
            "accessories_count": held(&self.accessories),
            "consumables_count": 0,
            "company": named(&self.companies, id_of("company_id")),
            "created_at": date(),
            "updated_at": date(),
            "last_login": null,
            "deleted_at": null,
            "available_actions": {"update": true, "delete": true, "clone": true, "restore": false},
            "groups": null,
        });
        if let (Json::Object(user), Json::Object(extra)) = (&mut user, extra) {
            user.extend(extra);
        }
        user
    }

    pub(super) fn create(&mut self, request: &Request) -> Reply {
        let Some(Json::Object(input)) = &request.body else {
            return bad_request();
        };
        let mut row = Map::new();
        row.insert("activated".to_string(), Json::Bool(false));
        fill(&mut row, &Json::Object(input.clone()));
        if let Some(messages) = self.invalid(&row, None) {
            return refusal(messages);
        }
        let id = self.next("users");
        self.users.insert(id, row);
        self.index_username(id);
        let payload = self.users.get(&id).map(|u| self.render_user(id, u));
        success("User created successfully.", payload)
    }

    pub(super) fn update(&mut self, id: u64, request: &Request) -> Reply {
        let Some(Json::Object(input)) = &request.body else {
            return bad_request();
        };
        let Some(mut row) = self.users.get(&id).cloned() else {
            return not_found();
        };
        fill(&mut row, &Json::Object(input.clone()));
        // UsersController::update refuses this before the model's own rules run.
        if row.get("manager_id").and_then(Json::as_u64) == Some(id) {
            return refusal("You cannot be your own manager");
        }
        if let Some(messages) = self.invalid(&row, Some(id)) {
            return refusal(messages);
        }
        let payload = self.render_user(id, &row);
        self.users.insert(id, row);
        self.index_username(id);
        success("User updated successfully.", Some(payload))
    }

    /// Snipe-IT's validation of a user row: field → messages, or `None` when it passes.
    fn invalid(&self, row: &Map<String, Json>, id: Option<u64>) -> Option<Map<String, Json>> {
        let mut messages = Map::new();
        let mut fail = |field: &str, message: &str| {
            messages.insert(field.to_string(), json!([message]));
        };
        let blank = |key: &str| {
            row.get(key)
                .and_then(Json::as_str)
                .is_none_or(|s| s.trim().is_empty())
        };
        if blank("first_name") {
            fail("first_name", "The first name field is required.");
        }
        if blank("username") {
            fail("username", "The username field is required.");
        } else if let Some(name) = row.get("username").and_then(Json::as_str)
            && self.username_holder(name, id).is_some()
        {
            fail("username", "The username has already been taken.");
        }
        if let Some(email) = row.get("email").and_then(Json::as_str)
            && !email.is_empty()
            && !is_email(email)
        {
            fail("email", "The email must be a valid email address.");
        }
        for column in ID_COLUMNS {
            let Some(given) = row.get(*column).filter(|v| !v.is_null()) else {
                continue;
            };
            if !given.as_u64().is_some_and(|id| self.exists(column, id)) {
                let name = column.replace('_', " ");
                fail(column, &format!("The selected {name} is invalid."));
            }
        }
        (!messages.is_empty()).then_some(messages)
    }

    /// Whether the row an id column points at exists.
    fn exists(&self, column: &str, id: u64) -> bool {
        match column {
            "department_id" => self.departments.contains_key(&id),
            "location_id" => self.locations.contains_key(&id),
            "company_id" => self.companies.contains_key(&id),
            "manager_id" => self.users.contains_key(&id),
            _ => false,
        }
    }
}

/// Sets the known columns `input` gives, as Laravel's `fill` does (others are ignored).
pub(super) fn fill(row: &mut Map<String, Json>, input: &Json) {
    let Some(input) = input.as_object() else {
        return;
    };
    for column in COLUMNS {
        let Some(value) = input.get(*column) else {
            continue;
        };
        let value = match *column {
            "activated" => Json::Bool(truthy(value)),
            c if ID_COLUMNS.contains(&c) => id_value(value),
            _ => value.clone(),
        };
        row.insert((*column).to_string(), value);
    }
}

fn matches_search(user: &Map<String, Json>, search: &str) -> bool {
    [
        "first_name",
        "last_name",
        "username",
        "email",
        "employee_num",
        "jobtitle",
    ]
    .iter()
    .filter_map(|k| user.get(*k).and_then(Json::as_str))
    .any(|v| v.to_lowercase().contains(search))
}

fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !text.contains(' ')
        }
        None => false,
    }
}
