//! The Snipe-IT simulator's own behaviour, request by request.

use axum::http::HeaderMap;
use serde_json::{Value as Json, json};

use super::*;

fn request(method: &str, path: &str, query: &[(&str, &str)], body: Option<Json>) -> Request {
    let mut headers = HeaderMap::new();
    headers.insert("accept", "application/json".parse().unwrap());
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        headers,
        body,
        raw: Default::default(),
    }
}

fn get(sim: &mut SnipeIt, path: &str, query: &[(&str, &str)]) -> Json {
    let reply = sim.serve(&request("GET", path, query, None));
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.body
}

fn post(sim: &mut SnipeIt, path: &str, body: Json) -> Json {
    let reply = sim.serve(&request("POST", path, &[], Some(body)));
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.body
}

fn patch(sim: &mut SnipeIt, path: &str, body: Json) -> Json {
    let reply = sim.serve(&request("PATCH", path, &[], Some(body)));
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.body
}

fn ann(sim: &mut SnipeIt) -> u64 {
    sim.add_user(json!({"first_name": "Ann", "last_name": "Lee", "username": "ann"}))
}

#[test]
fn locations_and_companies_are_listed_searched_and_paged() {
    let mut sim = SnipeIt::default();
    for name in ["Oslo", "Bergen", "Oslo Harbour"] {
        sim.add_location(name);
    }
    sim.add_company("Acme & Co");
    let all = get(
        &mut sim,
        "/api/v1/locations",
        &[("sort", "id"), ("order", "asc")],
    );
    assert_eq!(all["total"], 3);
    assert_eq!(all["rows"][0]["name"], "Oslo");
    let newest_first = get(&mut sim, "/api/v1/locations", &[]);
    assert_eq!(newest_first["rows"][0]["name"], "Oslo Harbour");
    let found = get(&mut sim, "/api/v1/locations", &[("search", "oslo")]);
    assert_eq!(found["total"], 2);
    let exact = get(&mut sim, "/api/v1/locations", &[("name", "Oslo")]);
    assert_eq!(exact["total"], 1);
    let page = get(
        &mut sim,
        "/api/v1/locations",
        &[
            ("limit", "1"),
            ("offset", "1"),
            ("sort", "name"),
            ("order", "asc"),
        ],
    );
    assert_eq!(
        (
            page["total"].clone(),
            page["rows"].as_array().unwrap().len()
        ),
        (json!(3), 1)
    );
    assert_eq!(page["rows"][0]["name"], "Oslo");
    let companies = get(&mut sim, "/api/v1/companies", &[]);
    assert_eq!(companies["rows"][0]["name"], "Acme &amp; Co");
}

#[test]
fn names_are_checked_as_each_model_says() {
    let mut sim = SnipeIt::default();
    let made = post(&mut sim, "/api/v1/locations", json!({"name": "Oslo"}));
    assert_eq!(made["status"], "success");
    assert_eq!(made["messages"], "Location created successfully.");
    assert_eq!(made["payload"]["name"], "Oslo");
    let again = post(&mut sim, "/api/v1/locations", json!({"name": "oslo"}));
    assert_eq!(again["status"], "error");
    assert_eq!(again["messages"]["name"][0], "The name must be unique.");
    let short = post(&mut sim, "/api/v1/locations", json!({"name": "X"}));
    assert_eq!(
        short["messages"]["name"][0],
        "The name field must be at least 2 characters."
    );
    let long = post(
        &mut sim,
        "/api/v1/companies",
        json!({"name": "x".repeat(256)}),
    );
    assert_eq!(
        long["messages"]["name"][0],
        "The name field must not be greater than 255 characters."
    );
    let none = post(&mut sim, "/api/v1/companies", json!({}));
    assert_eq!(none["messages"]["name"][0], "The name field is required.");
    post(&mut sim, "/api/v1/companies", json!({"name": "Acme"}));
    let taken = post(&mut sim, "/api/v1/companies", json!({"name": "Acme"}));
    assert_eq!(
        taken["messages"]["name"][0],
        "The name has already been taken."
    );
    assert_eq!(sim.companies.len(), 1);
    assert_eq!(sim.locations.len(), 1);
}

#[test]
fn a_department_name_is_unique_only_within_its_location_and_company() {
    let mut sim = SnipeIt::default();
    let (oslo, acme) = (sim.add_location("Oslo"), sim.add_company("Acme"));
    assert_eq!(
        post(&mut sim, "/api/v1/departments", json!({"name": "Sales"}))["status"],
        "success"
    );
    assert_eq!(
        post(&mut sim, "/api/v1/departments", json!({"name": "Sales"}))["status"],
        "success"
    );
    let placed = json!({"name": "Sales", "location_id": oslo, "company_id": acme});
    assert_eq!(
        post(&mut sim, "/api/v1/departments", placed.clone())["status"],
        "success"
    );
    let twice = post(&mut sim, "/api/v1/departments", placed);
    assert_eq!(
        twice["messages"]["name"][0],
        "validation.is_unique_department"
    );
    assert_eq!(sim.departments.len(), 3);
}

#[test]
fn users_show_their_location_company_and_manager() {
    let mut sim = SnipeIt::default();
    let boss = ann(&mut sim);
    let (oslo, acme) = (sim.add_location("Oslo <HQ>"), sim.add_company("Acme"));
    let made = post(
        &mut sim,
        "/api/v1/users",
        json!({"first_name": "Bo", "username": "bo", "location_id": oslo,
               "company_id": acme.to_string(), "manager_id": boss}),
    );
    assert_eq!(made["status"], "success", "{made}");
    let id = made["payload"]["id"].as_u64().unwrap();
    let user = get(&mut sim, &format!("/api/v1/users/{id}"), &[]);
    assert_eq!(
        user["location"],
        json!({"id": oslo, "name": "Oslo &lt;HQ&gt;"})
    );
    assert_eq!(user["company"], json!({"id": acme, "name": "Acme"}));
    assert_eq!(user["manager"], json!({"id": boss, "name": "Ann Lee"}));
    let cleared = patch(
        &mut sim,
        &format!("/api/v1/users/{id}"),
        json!({"manager_id": null}),
    );
    assert_eq!(cleared["payload"]["manager"], Json::Null);
}

#[test]
fn unknown_relations_and_managing_oneself_are_refused() {
    let mut sim = SnipeIt::default();
    let id = ann(&mut sim);
    let refused = post(
        &mut sim,
        "/api/v1/users",
        json!({"first_name": "Bo", "username": "bo", "location_id": 9, "company_id": 9,
               "department_id": 9, "manager_id": 99}),
    );
    assert_eq!(refused["status"], "error");
    let messages = &refused["messages"];
    assert_eq!(
        messages["location_id"][0],
        "The selected location id is invalid."
    );
    assert_eq!(
        messages["company_id"][0],
        "The selected company id is invalid."
    );
    assert_eq!(
        messages["department_id"][0],
        "The selected department id is invalid."
    );
    assert_eq!(
        messages["manager_id"][0],
        "The selected manager id is invalid."
    );
    assert_eq!(sim.users.len(), 1);
    let own = patch(
        &mut sim,
        &format!("/api/v1/users/{id}"),
        json!({"manager_id": id}),
    );
    assert_eq!(own["messages"], "You cannot be your own manager");
    assert_eq!(sim.users[&id].get("manager_id"), None);
}

#[test]
fn a_user_s_assets_licences_and_accessories_are_listed_whole() {
    let mut sim = SnipeIt::default();
    let id = ann(&mut sim);
    let other = sim.add_user(json!({"first_name": "Bo", "username": "bo"}));
    let laptop = sim.assign_asset(id, "LAPTOP-0042", "MacBook \"Pro\"");
    sim.assign_asset(other, "LAPTOP-0043", "ThinkPad");
    sim.assign_licence(id, "Office");
    sim.assign_accessory(id, "Dock");
    let assets = get(
        &mut sim,
        &format!("/api/v1/users/{id}/assets"),
        &[("limit", "1")],
    );
    assert_eq!(assets["total"], 1);
    let asset = &assets["rows"][0];
    assert_eq!(asset["id"], laptop);
    assert_eq!(asset["asset_tag"], "LAPTOP-0042");
    assert_eq!(asset["name"], "MacBook &quot;Pro&quot;");
    assert_eq!(asset["assigned_to"]["username"], "ann");
    assert_eq!(asset["status_label"]["status_meta"], "deployed");
    let licences = get(&mut sim, &format!("/api/v1/users/{id}/licenses"), &[]);
    assert_eq!(licences["rows"][0]["name"], "Office");
    let accessories = get(&mut sim, &format!("/api/v1/users/{id}/accessories"), &[]);
    assert_eq!(accessories["rows"][0]["name"], "Dock");
    let user = get(&mut sim, &format!("/api/v1/users/{id}"), &[]);
    assert_eq!(
        (user["assets_count"].clone(), user["licenses_count"].clone()),
        (json!(1), json!(1))
    );
    sim.return_asset(laptop);
    let assets = get(&mut sim, &format!("/api/v1/users/{id}/assets"), &[]);
    assert_eq!(assets["total"], 0);
}

#[test]
fn holdings_of_an_unknown_user_are_an_error_answered_200() {
    let mut sim = SnipeIt::default();
    let assets = get(&mut sim, "/api/v1/users/77/assets", &[]);
    assert_eq!(assets["status"], "error");
    assert_eq!(
        assets["messages"],
        "User does not exist or you do not have permission view them."
    );
    let accessories = get(&mut sim, "/api/v1/users/77/accessories", &[]);
    assert_eq!(accessories["messages"], "User not found");
    let other = sim.serve(&request("GET", "/api/v1/users/77/consumables-x", &[], None));
    assert_eq!(other.status, 404);
    let id = ann(&mut sim);
    sim.may_view_holdings = false;
    let hidden = sim.serve(&request(
        "GET",
        &format!("/api/v1/users/{id}/assets"),
        &[],
        None,
    ));
    assert_eq!(hidden.status, 403);
}
