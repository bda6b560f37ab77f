//! A synthetic Entra tenant for the Graph simulator: users, managers, groups, and a log of
//! every change so that delta queries can answer "what changed since then".
//!
//! The same `(size, seed)` always gives the same tenant, so tests and benchmarks are
//! repeatable. The people are deliberately awkward: accents and non-Latin scripts, apostrophes,
//! missing fields, disabled accounts, guests with `#EXT#` names, licenses, extension
//! attributes and a management chain.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::compact::JsonObject;

/// The directory extension the synthetic tenant fills (`extension_<app id>_badgeNumber`).
pub const EXTENSION: &str = "extension_0a1b2c3d4e5f40718293a4b5c6d7e8f9_badgeNumber";
/// The group of every user with `employeeType` Staff (direct members) and, nested in it,
/// the Admin group.
pub const STAFF_GROUP: &str = "5a1f0c3e-0000-4000-8000-000000000001";
/// The group of every user with `employeeType` Admin; a member of [`STAFF_GROUP`].
pub const ADMIN_GROUP: &str = "5a1f0c3e-0000-4000-8000-000000000002";
/// The license most users hold (an E3-like SKU).
pub const SKU_E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
/// A second license some users hold.
pub const SKU_VISIO: &str = "c5928f49-12ba-48f7-ada3-0d743a3601d5";
/// A licence the tenant subscribes to that no synthetic user holds.
pub const SKU_ENTERPRISEPACK: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
/// The tenant's subscriptions, as `/subscribedSkus` lists them: (skuId, skuPartNumber).
pub const SKUS: &[(&str, &str)] = &[
    (SKU_E3, "SPE_E3"),
    (SKU_VISIO, "VISIOCLIENT"),
    (SKU_ENTERPRISEPACK, "ENTERPRISEPACK"),
];
/// The display name of [`STAFF_GROUP`].
pub const STAFF_GROUP_NAME: &str = "Staff";
/// The display name of [`ADMIN_GROUP`].
pub const ADMIN_GROUP_NAME: &str = "Admins";

/// How a user changed, as delta queries report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created, or restored from the recycle bin.
    Added,
    /// Properties changed (enable and disable included).
    Updated,
    /// Moved to the recycle bin (restorable).
    SoftDeleted,
    /// Deleted for good.
    HardDeleted,
}

/// One entry of the change log.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    /// The tenant's version after this change.
    pub version: u64,
    /// The user.
    pub id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// For updates: which properties changed.
    pub properties: Vec<String>,
}

/// The simulated directory.
#[derive(Debug, Default, Clone)]
pub struct Tenant {
    /// Users by id: full Graph objects without null properties, held compactly.
    pub(crate) users: BTreeMap<String, JsonObject>,
    recycle_bin: BTreeMap<String, JsonObject>,
    managers: BTreeMap<String, String>,
    groups: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    /// Display names by group id.
    group_names: BTreeMap<String, String>,
    changes: Vec<ChangeRecord>,
    version: u64,
}

/// A small deterministic random number generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn guid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

/// Given names, as written and as folded to ASCII for account names.
const GIVEN: &[(&str, &str)] = &[
    ("Alice", "alice"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("Søren", "soren"),
    ("Ngọc Anh", "ngocanh"),
    ("伟", "wei"),
    ("Aoife", "aoife"),
    ("Mohammed", "mohammed"),
    ("Priya", "priya"),
    ("Björn", "bjorn"),
    ("Chloé", "chloe"),
    ("Kwame", "kwame"),
    ("Olga", "olga"),
    ("Sean", "sean"),
    ("Mary-Jane", "maryjane"),
];
const SURNAMES: &[(&str, &str)] = &[
    ("O'Brien", "obrien"),
    ("García", "garcia"),
    ("Müller", "muller"),
    ("Nguyễn", "nguyen"),
    ("王", "wang"),
    ("D'Angelo", "dangelo"),
    ("Kowalski", "kowalski"),
    ("Smith", "smith"),
    ("Øvergård", "overgard"),
    ("Ishikawa", "ishikawa"),
    ("Okafor", "okafor"),
    ("van der Berg", "vanderberg"),
    ("Ó Súilleabháin", "osuilleabhain"),
    ("Petrov", "petrov"),
];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Finance",
    "Human Resources",
    "IT",
    "Research & Development",
    "Facilities",
    "Legal",
];
const TITLES: &[&str] = &[
    "Engineer",
    "Senior Engineer",
    "Account Executive",
    "Analyst",
    "Manager",
    "Technician",
    "Director",
    "Counsel",
];
const TYPES: &[&str] = &[
    "Employee",
    "Employee",
    "Staff",
    "Staff",
    "Contractor",
    "Admin",
];
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Seattle", "WA", "United States", "US"),
    ("Dublin", "Dublin", "Ireland", "IE"),
    ("München", "Bavaria", "Germany", "DE"),
    ("São Paulo", "SP", "Brazil", "BR"),
    ("Kraków", "Lesser Poland", "Poland", "PL"),
    ("Tokyo", "Tokyo", "Japan", "JP"),
];

impl Tenant {
    /// An empty tenant.
    pub fn new() -> Self {
        Tenant::default()
    }

    /// `size` users generated from `seed`; user 0 is the top of the management chain.
    pub fn synthetic(size: usize, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let mut tenant = Tenant::new();
        let mut ids = Vec::with_capacity(size);
        for index in 0..size {
            let id = rng.guid();
            let user = synthetic_user(&mut rng, index, &id);
            // A management tree eight wide: user n reports to user (n-1)/8.
            if index > 0 {
                let manager: &String = &ids[(index - 1) / 8];
                tenant.managers.insert(id.clone(), manager.clone());
            }
            let group = match user["employeeType"].as_str() {
                Some("Staff") => Some(STAFF_GROUP),
                Some("Admin") => Some(ADMIN_GROUP),
                _ => None,
            };
            if let Some(group) = group {
                tenant
                    .groups
                    .entry(group.to_owned())
                    .or_default()
                    .0
                    .insert(id.clone());
            }
            tenant
                .users
                .insert(id.clone(), JsonObject::from_value(&user));
            ids.push(id);
        }
        tenant
            .groups
            .entry(STAFF_GROUP.to_owned())
            .or_default()
            .1
            .insert(ADMIN_GROUP.to_owned());
        tenant.groups.entry(ADMIN_GROUP.to_owned()).or_default();
        tenant
            .group_names
            .insert(STAFF_GROUP.to_owned(), STAFF_GROUP_NAME.to_owned());
        tenant
            .group_names
            .insert(ADMIN_GROUP.to_owned(), ADMIN_GROUP_NAME.to_owned());
        tenant
    }

    /// Adds (or replaces) a group: its display name, its direct user members and the groups
    /// nested in it.
    pub fn add_group(
        &mut self,
        id: &str,
        name: &str,
        users: impl IntoIterator<Item = String>,
        nested: impl IntoIterator<Item = String>,
    ) {
        self.groups.insert(
            id.to_owned(),
            (users.into_iter().collect(), nested.into_iter().collect()),
        );
        self.group_names.insert(id.to_owned(), name.to_owned());
    }

    /// The ids of the groups with this display name (ignoring case, as Graph compares).
    pub fn groups_named(&self, name: &str) -> Vec<String> {
        self.group_names
            .iter()
            .filter(|(_, n)| n.to_lowercase() == name.to_lowercase())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A group's display name.
    pub fn group_name(&self, id: &str) -> Option<&str> {
        self.group_names.get(id).map(String::as_str)
    }

    /// How many users exist (the recycle bin aside).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the tenant has no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Every user id, in id order.
    pub fn ids(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// A user, as stored (null properties absent), parsed.
    pub fn user(&self, id: &str) -> Option<Value> {
        self.users.get(id).map(JsonObject::to_value)
    }

    /// The users, in id order, each parsed when the iterator reaches it.
    pub fn users(&self) -> impl Iterator<Item = Value> {
        self.users.values().map(JsonObject::to_value)
    }

    /// A user, as stored.
    pub(crate) fn stored(&self, id: &str) -> Option<&JsonObject> {
        self.users.get(id)
    }

    /// The id of a user's manager.
    pub fn manager_of(&self, id: &str) -> Option<&str> {
        self.managers.get(id).map(String::as_str)
    }

    /// The tenant's current version: the number of changes so far.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Changes after `version`, oldest first.
    pub fn changes_since(&self, version: u64) -> &[ChangeRecord] {
        let start = self.changes.partition_point(|c| c.version <= version);
        &self.changes[start..]
    }

    /// The transitive user members of a group, or `None` for an unknown group.
    pub fn members(&self, group: &str) -> Option<BTreeSet<String>> {
        self.groups.get(group)?;
        let mut users = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut pending = vec![group.to_owned()];
        while let Some(g) = pending.pop() {
            if !seen.insert(g.clone()) {
                continue;
            }
            if let Some((direct, nested)) = self.groups.get(&g) {
                users.extend(
                    direct
                        .iter()
                        .filter(|id| self.users.contains_key(*id))
                        .cloned(),
                );
                pending.extend(nested.iter().cloned());
            }
        }
        Some(users)
    }

    /// Adds a user (its `id` must be set); returns the id.
    pub fn add(&mut self, user: Value) -> String {
        let id = user["id"].as_str().unwrap_or_default().to_owned();
        let user = without_nulls(user);
        self.users.insert(id.clone(), JsonObject::from_value(&user));
        self.record(&id, ChangeKind::Added, Vec::new());
        id
    }

    /// Changes some properties (null removes one). Returns false for an unknown user.
    pub fn update(&mut self, id: &str, changes: Value) -> bool {
        let Some(stored) = self.users.get_mut(id) else {
            return false;
        };
        let mut user = stored.to_map();
        let mut names = Vec::new();
        if let Value::Object(changes) = changes {
            for (key, value) in changes {
                names.push(key.clone());
                if value.is_null() {
                    user.remove(&key);
                } else {
                    user.insert(key, value);
                }
            }
        }
        *stored = JsonObject::new(&user);
        self.record(id, ChangeKind::Updated, names);
        true
    }

    /// Sets (or, with `None`, removes) a user's manager. Returns false for an unknown user.
    pub fn set_manager(&mut self, id: &str, manager: Option<&str>) -> bool {
        if !self.users.contains_key(id) {
            return false;
        }
        match manager {
            Some(manager) => self.managers.insert(id.to_owned(), manager.to_owned()),
            None => self.managers.remove(id),
        };
        self.record(id, ChangeKind::Updated, vec!["manager".to_owned()]);
        true
    }

    /// Sets `accountEnabled`.
    pub fn set_enabled(&mut self, id: &str, enabled: bool) -> bool {
        self.update(id, json!({ "accountEnabled": enabled }))
    }

    /// Moves a user to the recycle bin.
    pub fn soft_delete(&mut self, id: &str) -> bool {
        let Some(user) = self.users.remove(id) else {
            return false;
        };
        self.recycle_bin.insert(id.to_owned(), user);
        self.record(id, ChangeKind::SoftDeleted, Vec::new());
        self.reports_lose_or_regain(id);
        true
    }

    /// Records a change of manager for each user whose manager `id` is: its deletion takes
    /// the manager from them as Graph shows it (a restore gives it back).
    fn reports_lose_or_regain(&mut self, id: &str) {
        let reports: Vec<String> = self
            .managers
            .iter()
            .filter(|(_, m)| m.as_str() == id)
            .map(|(r, _)| r.clone())
            .collect();
        for report in reports {
            self.record(&report, ChangeKind::Updated, vec!["manager".to_owned()]);
        }
    }

    /// Brings a user back from the recycle bin.
    pub fn restore(&mut self, id: &str) -> bool {
        let Some(user) = self.recycle_bin.remove(id) else {
            return false;
        };
        self.users.insert(id.to_owned(), user);
        self.record(id, ChangeKind::Added, Vec::new());
        self.reports_lose_or_regain(id);
        true
    }

    /// Deletes a user for good (from the directory or the recycle bin).
    pub fn hard_delete(&mut self, id: &str) -> bool {
        let existed = self.users.remove(id).is_some() || self.recycle_bin.remove(id).is_some();
        if existed {
            self.managers.remove(id);
            self.record(id, ChangeKind::HardDeleted, Vec::new());
            self.reports_lose_or_regain(id);
            self.managers.retain(|_, m| m.as_str() != id);
        }
        existed
    }

    fn record(&mut self, id: &str, kind: ChangeKind, properties: Vec<String>) {
        self.version += 1;
        self.changes.push(ChangeRecord {
            version: self.version,
            id: id.to_owned(),
            kind,
            properties,
        });
    }
}

/// A new user in the style of the synthetic tenant (for hires in tests and the demo).
pub fn new_hire(seed: u64, index: usize) -> Value {
    let mut rng = Rng(seed ^ 0x5eed_0000_0000_0000 ^ index as u64);
    let id = rng.guid();
    synthetic_user(&mut rng, index + 1_000_000, &id)
}

fn without_nulls(user: Value) -> Value {
    match user {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

fn synthetic_user(rng: &mut Rng, index: usize, id: &str) -> Value {
    let (given, given_ascii) = *rng.pick(GIVEN);
    let (surname, surname_ascii) = *rng.pick(SURNAMES);
    let nick = format!("{given_ascii}.{surname_ascii}{index}");
    let guest = index > 0 && rng.chance(3);
    let enabled = index == 0 || !rng.chance(6);
    let (city, state, country, usage) = *rng.pick(CITIES);
    let hired = 2010 + rng.below(15);
    let mut user = Map::new();
    let mut set = |key: &str, value: Value| {
        user.insert(key.to_owned(), value);
    };
    set("id", id.into());
    set("accountEnabled", enabled.into());
    set("displayName", format!("{given} {surname}").into());
    set("givenName", given.into());
    set("surname", surname.into());
    set("mailNickname", nick.clone().into());
    set("city", city.into());
    set("state", state.into());
    set("country", country.into());
    set("usageLocation", usage.into());
    set(
        "createdDateTime",
        format!(
            "{hired}-{:02}-{:02}T08:00:00Z",
            1 + rng.below(12),
            1 + rng.below(28)
        )
        .into(),
    );
    set(
        "preferredLanguage",
        (*rng.pick(&["en-US", "de-DE", "pt-BR", "ja-JP"])).into(),
    );
    set("businessPhones", json!([]));
    // Every tenth user never signed in; the others at a day derived from their index.
    if index % 10 != 9 {
        let day = |offset: usize| {
            let days = (index * 37 + offset) % 400;
            let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default()
                + chrono::Duration::days(days as i64);
            format!("{date}T09:30:00Z")
        };
        set(
            "signInActivity",
            json!({
                "lastSignInDateTime": day(0),
                "lastNonInteractiveSignInDateTime": day(3),
                "lastSuccessfulSignInDateTime": day(0),
            }),
        );
    }
    if guest {
        set(
            "userPrincipalName",
            format!("{nick}_fabrikam.example#EXT#@contoso.onmicrosoft.com").into(),
        );
        set("mail", format!("{nick}@fabrikam.example").into());
        set("userType", "Guest".into());
        set("creationType", "Invitation".into());
        set("externalUserState", "Accepted".into());
        set("otherMails", json!([format!("{nick}@fabrikam.example")]));
        return Value::Object(user);
    }
    set(
        "userPrincipalName",
        format!("{nick}@contoso.example").into(),
    );
    if !rng.chance(4) {
        set("mail", format!("{nick}@contoso.example").into());
    }
    set("userType", "Member".into());
    set("employeeId", format!("E{index:06}").into());
    set("employeeType", (*rng.pick(TYPES)).into());
    set(
        "employeeHireDate",
        format!("{hired}-{:02}-01T00:00:00Z", 1 + rng.below(12)).into(),
    );
    set("companyName", "Contoso".into());
    if !rng.chance(10) {
        set("department", (*rng.pick(DEPARTMENTS)).into());
    }
    if !rng.chance(10) {
        set("jobTitle", (*rng.pick(TITLES)).into());
    }
    if rng.chance(70) {
        set(
            "mobilePhone",
            format!("+1 555 01{:02}", rng.below(100)).into(),
        );
    }
    if rng.chance(60) {
        set(
            "businessPhones",
            json!([format!("+1 425 555 {:04}", rng.below(10_000))]),
        );
    }
    set(
        "officeLocation",
        format!("{city} {}", 1 + rng.below(9)).into(),
    );
    set("postalCode", format!("{:05}", rng.below(100_000)).into());
    set(
        "streetAddress",
        format!("{} Main Street", 1 + rng.below(400)).into(),
    );
    set(
        "proxyAddresses",
        json!([format!("SMTP:{nick}@contoso.example")]),
    );
    set(
        "employeeOrgData",
        json!({ "costCenter": format!("CC-{}", 100 + rng.below(20)), "division": *rng.pick(&["North", "South", "Global"]) }),
    );
    let mut attributes = Map::new();
    for n in 1..=15 {
        let value = match n {
            1 => Some(if rng.chance(50) { "Staff" } else { "Faculty" }.to_owned()),
            3 if rng.chance(40) => Some(format!("B{:04}", rng.below(10_000))),
            _ => None,
        };
        attributes.insert(
            format!("extensionAttribute{n}"),
            value.map_or(Value::Null, Value::from),
        );
    }
    set("onPremisesExtensionAttributes", Value::Object(attributes));
    let mut licenses = Vec::new();
    if rng.chance(85) {
        licenses.push(json!({ "skuId": SKU_E3, "disabledPlans": [] }));
    }
    if rng.chance(15) {
        licenses.push(json!({ "skuId": SKU_VISIO, "disabledPlans": [] }));
    }
    set("assignedLicenses", Value::Array(licenses));
    if rng.chance(50) {
        set("onPremisesSyncEnabled", true.into());
        set(
            "onPremisesSamAccountName",
            nick.chars().take(20).collect::<String>().into(),
        );
    }
    if rng.chance(30) {
        set(EXTENSION, format!("{:06}", rng.below(1_000_000)).into());
    }
    Value::Object(user)
}
