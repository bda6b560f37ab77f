//! Departments, locations and companies: listed and created as Snipe-IT's API controllers
//! do, each name checked by its model's rules.
//!
//! The rules differ by model (`app/Models/*.php`): a department's name is required, at most
//! 255 characters and unique only among departments of the same location and company when
//! both are given (`is_unique_department`, a rule with no message of its own, so Laravel
//! answers its key); a location's is 2 to 255 characters and unique (`unique_undeleted`); a
//! company's is 1 to 255 characters and unique (`unique:companies,name`). Names compare
//! without regard to case, as Snipe-IT's database collation does.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use super::{SnipeIt, bad_request, date, escape, id_value, named, refusal, success};
use crate::server::{Reply, Request};

/// A table of named rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `departments`.
    Department,
    /// `locations`.
    Location,
    /// `companies`.
    Company,
}

impl Kind {
    /// The kind a path segment names (`departments`).
    pub fn of_table(table: &str) -> Option<Kind> {
        match table {
            "departments" => Some(Kind::Department),
            "locations" => Some(Kind::Location),
            "companies" => Some(Kind::Company),
            _ => None,
        }
    }

    fn table(self) -> &'static str {
        match self {
            Kind::Department => "departments",
            Kind::Location => "locations",
            Kind::Company => "companies",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Department => "Department",
            Kind::Location => "Location",
            Kind::Company => "Company",
        }
    }

    /// The fewest characters a name may have.
    fn min_len(self) -> usize {
        match self {
            Kind::Location => 2,
            Kind::Department | Kind::Company => 1,
        }
    }
}

/// The longest name any of them takes.
const MAX_NAME: usize = 255;

impl SnipeIt {
    fn rows(&self, kind: Kind) -> &BTreeMap<u64, String> {
        match kind {
            Kind::Department => &self.departments,
            Kind::Location => &self.locations,
            Kind::Company => &self.companies,
        }
    }

    /// Adds a row without checks; returns its id.
    pub(super) fn add(&mut self, kind: Kind, name: &str) -> u64 {
        let id = self.next(kind.table());
        let rows = match kind {
            Kind::Department => &mut self.departments,
            Kind::Location => &mut self.locations,
            Kind::Company => &mut self.companies,
        };
        rows.insert(id, name.to_string());
        id
    }

    /// How many users point at row `id` through `column`.
    fn users_of(&self, column: &str, id: u64) -> usize {
        self.users
            .values()
            .filter(|u| u.get(column) == Some(&Json::from(id)))
            .count()
    }

    fn render_entity(&self, kind: Kind, id: u64, name: &str) -> Json {
        match kind {
            Kind::Department => {
                let (location, company) =
                    self.department_places.get(&id).copied().unwrap_or_default();
                json!({
                    "id": id, "name": escape(name), "image": null, "company": named(&self.companies, company),
                    "manager": null, "location": named(&self.locations, location),
                    "users_count": self.users_of("department_id", id), "notes": null,
                    "created_at": date(), "updated_at": date(),
                })
            }
            Kind::Location => json!({
                "id": id, "name": escape(name), "image": null, "address": null, "address2": null,
                "city": null, "state": null, "country": null, "zip": null, "phone": null,
                "fax": null, "assigned_assets_count": 0, "assets_count": 0, "rtd_assets_count": 0,
                "users_count": self.users_of("location_id", id), "currency": null,
                "ldap_ou": null, "notes": null, "created_at": date(), "updated_at": date(),
                "parent": null, "manager": null, "children": [],
            }),
            Kind::Company => json!({
                "id": id, "name": escape(name), "phone": null, "fax": null, "email": null,
                "created_at": date(), "updated_at": date(), "assets_count": 0,
                "licenses_count": 0, "accessories_count": 0, "consumables_count": 0,
                "components_count": 0, "users_count": self.users_of("company_id", id),
                "notes": null,
            }),
        }
    }

    /// `GET /api/v1/{table}`: `search` (part of the name), `name` (the whole name), `sort`
    /// (`id` or `name`; the newest first otherwise) and `order`, paged like users.
    pub(super) fn list_entities(&self, kind: Kind, request: &Request) -> Reply {
        let search = request.query.get("search").map(|s| s.to_lowercase());
        let exact = request.query.get("name").filter(|n| !n.is_empty());
        let mut rows: Vec<(u64, &String)> = self
            .rows(kind)
            .iter()
            .filter(|(_, name)| {
                search
                    .as_deref()
                    .is_none_or(|s| name.to_lowercase().contains(s))
                    && exact.is_none_or(|e| *name == e)
            })
            .map(|(id, name)| (*id, name))
            .collect();
        if request.query.get("sort").map(String::as_str) == Some("name") {
            rows.sort_by(|a, b| {
                a.1.to_lowercase()
                    .cmp(&b.1.to_lowercase())
                    .then(a.0.cmp(&b.0))
            });
        }
        // Without `sort=id|name` Snipe-IT sorts by creation time: rows made later have
        // larger ids here, so ids stand in for it.
        if request.query.get("order").map(String::as_str) != Some("asc") {
            rows.reverse();
        }
        let page = self.page(request, rows.len());
        let chosen: Vec<Json> = rows
            .iter()
            .skip(page.offset)
            .take(page.limit)
            .map(|(id, name)| self.render_entity(kind, *id, name))
            .collect();
        page.answer(request, rows.len(), chosen)
    }

    /// `POST /api/v1/{table}`: created, or refused with the model's messages.
    pub(super) fn create_entity(&mut self, kind: Kind, request: &Request) -> Reply {
        let Some(Json::Object(input)) = &request.body else {
            return bad_request();
        };
        let name = input
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
            .trim();
        let place = |key: &str| input.get(key).map(id_value).and_then(|v| v.as_u64());
        let (location, company) = (place("location_id"), place("company_id"));
        if let Some(messages) = self.invalid_entity(kind, name, location, company, input) {
            return refusal(messages);
        }
        let id = self.add(kind, name);
        if kind == Kind::Department {
            self.department_places.insert(id, (location, company));
        }
        let payload = self.render_entity(kind, id, name);
        success(
            &format!("{} created successfully.", kind.noun()),
            Some(payload),
        )
    }

    /// The model's validation of a new row: field → messages, or `None` when it passes.
    fn invalid_entity(
        &self,
        kind: Kind,
        name: &str,
        location: Option<u64>,
        company: Option<u64>,
        input: &Map<String, Json>,
    ) -> Option<Map<String, Json>> {
        let mut messages = Map::new();
        let length = name.chars().count();
        let message = if name.is_empty() {
            Some("The name field is required.".to_string())
        } else if length < kind.min_len() {
            Some(format!(
                "The name field must be at least {} characters.",
                kind.min_len()
            ))
        } else if length > MAX_NAME {
            Some(format!(
                "The name field must not be greater than {MAX_NAME} characters."
            ))
        } else {
            self.taken(kind, name, location, company)
        };
        if let Some(message) = message {
            messages.insert("name".to_string(), json!([message]));
        }
        // Only a location's company must exist (`exists:companies,id`); a department's
        // location and company need only be numeric.
        let unknown_company = input
            .get("company_id")
            .is_some_and(|v| !id_value(v).is_null())
            && company.is_none_or(|id| !self.companies.contains_key(&id));
        if kind == Kind::Location && unknown_company {
            messages.insert(
                "company_id".to_string(),
                json!(["The selected company id is invalid."]),
            );
        }
        (!messages.is_empty()).then_some(messages)
    }

    /// The uniqueness message when `name` is taken as the model's rule sees it.
    fn taken(
        &self,
        kind: Kind,
        name: &str,
        location: Option<u64>,
        company: Option<u64>,
    ) -> Option<String> {
        let lower = name.to_lowercase();
        let same = |id: &u64| {
            self.rows(kind)
                .get(id)
                .is_some_and(|n| n.to_lowercase() == lower)
        };
        match kind {
            Kind::Department => {
                let (Some(location), Some(company)) = (location, company) else {
                    return None;
                };
                self.department_places
                    .iter()
                    .any(|(id, place)| *place == (Some(location), Some(company)) && same(id))
                    .then(|| "validation.is_unique_department".to_string())
            }
            Kind::Location => self
                .locations
                .keys()
                .any(same)
                .then(|| "The name must be unique.".to_string()),
            Kind::Company => self
                .companies
                .keys()
                .any(same)
                .then(|| "The name has already been taken.".to_string()),
        }
    }
}
