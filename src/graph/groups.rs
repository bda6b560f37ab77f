//! The groups a config names, and who is in them.
//!
//! A config names groups by display name or by object ID. Names are resolved to IDs once
//! per run (`/groups?$filter=displayName eq '…'`); a name no group has, or that two groups
//! share, stops the run before anything is read, so a missing group can never make its
//! members look departed. Membership is read with one transitive-members listing per group
//! (`/groups/{id}/transitiveMembers/microsoft.graph.user?$select=id`, paged), never one
//! request per user, and kept as a small set of group numbers per user id.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::client::GraphClient;
use super::error::GraphError;
use super::users::{Selection, UserPager, UserQuery};
use crate::config::is_guid;

/// The most groups one list may name: membership is kept as one bit per group.
pub const MAX_GROUPS: usize = 64;

/// A group as the config names it, with the object ID it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The name or ID as the config writes it: what a mapping's `groups` holds.
    pub name: String,
    /// The group's object ID.
    pub id: String,
}

/// Why names could not be resolved to groups: every name at fault, each with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Names no group has.
    pub missing: Vec<String>,
    /// Names several groups share, each with the IDs of those groups.
    pub ambiguous: Vec<(String, Vec<String>)>,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for name in &self.missing {
            parts.push(format!("no group is named `{name}`"));
        }
        for (name, ids) in &self.ambiguous {
            parts.push(format!(
                "{} groups are named `{name}` ({}): write the ID of the one you mean",
                ids.len(),
                ids.join(", ")
            ));
        }
        write!(f, "{}", parts.join("; "))?;
        if !self.missing.is_empty() {
            write!(
                f,
                "; check the spelling against the group's display name in the Entra admin \
                 center, or write its object ID"
            )?;
        }
        Ok(())
    }
}

/// Resolves each of `names` to a group: an object ID stands for itself, a display name is
/// looked up. Every name that cannot be resolved is reported at once.
pub async fn resolve(client: &GraphClient, names: &[String]) -> Result<Vec<GroupRef>, GraphError> {
    let mut groups = Vec::with_capacity(names.len());
    let mut unresolved = Unresolved {
        missing: Vec::new(),
        ambiguous: Vec::new(),
    };
    for name in names {
        if is_guid(name) {
            groups.push(GroupRef {
                name: name.clone(),
                id: name.to_ascii_lowercase(),
            });
            continue;
        }
        let ids = ids_named(client, name).await?;
        match ids.as_slice() {
            [] => unresolved.missing.push(name.clone()),
            [id] => groups.push(GroupRef {
                name: name.clone(),
                id: id.clone(),
            }),
            _ => unresolved.ambiguous.push((name.clone(), ids)),
        }
    }
    if unresolved.missing.is_empty() && unresolved.ambiguous.is_empty() {
        Ok(groups)
    } else {
        Err(GraphError::Groups(unresolved))
    }
}

/// The IDs of the groups whose display name is `name` (Graph compares ignoring case).
async fn ids_named(client: &GraphClient, name: &str) -> Result<Vec<String>, GraphError> {
    let mut url = client
        .root()
        .join("v1.0/groups")
        .map_err(|e| GraphError::Malformed {
            what: "GET /v1.0/groups".to_owned(),
            detail: e.to_string(),
        })?;
    url.query_pairs_mut()
        .append_pair(
            "$filter",
            &format!("displayName eq '{}'", name.replace('\'', "''")),
        )
        .append_pair("$select", "id,displayName");
    let what = format!("GET /v1.0/groups (the group named `{name}`)");
    let mut ids = BTreeSet::new();
    let mut next = Some(url.to_string());
    while let Some(link) = next.take() {
        let page = client.get_page(&link, false, &what).await?;
        for group in page.value {
            let group: Value =
                serde_json::from_str(group.get()).map_err(|e| GraphError::Malformed {
                    what: what.clone(),
                    detail: format!("a group that is not valid JSON ({e})"),
                })?;
            if let Some(id) = group.get("id").and_then(Value::as_str) {
                ids.insert(id.to_owned());
            }
        }
        next = page.next_link;
    }
    Ok(ids.into_iter().collect())
}

/// Which of some groups each user is a transitive member of.
#[derive(Debug, Default)]
pub struct Memberships {
    groups: Vec<GroupRef>,
    /// By user id: bit `n` set when the user is in `groups[n]`.
    members: HashMap<String, u64>,
}

impl Memberships {
    /// Reads the transitive user members of each group (at most [`MAX_GROUPS`]), the groups'
    /// listings side by side.
    pub async fn read(
        client: &Arc<GraphClient>,
        groups: Vec<GroupRef>,
        page_size: u16,
    ) -> Result<Memberships, GraphError> {
        if groups.len() > MAX_GROUPS {
            return Err(GraphError::Malformed {
                what: "reading group members".to_owned(),
                detail: format!("{} groups named, at most {MAX_GROUPS} can be", groups.len()),
            });
        }
        let listings = groups
            .iter()
            .map(|group| members_of(client, &group.id, page_size));
        let listed = futures_util::future::try_join_all(listings).await?;
        let mut members: HashMap<String, u64> = HashMap::new();
        for (n, ids) in listed.into_iter().enumerate() {
            for id in ids {
                *members.entry(id).or_default() |= 1 << n;
            }
        }
        Ok(Memberships { groups, members })
    }

    /// The groups, in the config's order.
    pub fn groups(&self) -> &[GroupRef] {
        &self.groups
    }

    /// Whether the user is a member of `groups()[n]`.
    pub fn is_member(&self, user_id: &str, n: usize) -> bool {
        self.bits(user_id) & (1 << n) != 0
    }

    /// Whether the user is a member of any of the groups.
    pub fn in_any(&self, user_id: &str) -> bool {
        self.bits(user_id) != 0
    }

    fn bits(&self, user_id: &str) -> u64 {
        self.members.get(user_id).copied().unwrap_or(0)
    }

    /// The names (as the config writes them) of the groups the user is in, in the config's
    /// order.
    pub fn names_of(&self, user_id: &str) -> Vec<&str> {
        let bits = self.bits(user_id);
        self.groups
            .iter()
            .enumerate()
            .filter(|(n, _)| bits & (1 << n) != 0)
            .map(|(_, g)| g.name.as_str())
            .collect()
    }

    /// Puts `groups` on `user`: the names of the groups it is in (an empty list for none).
    pub fn attach(&self, user: &mut Value) {
        let id = user.get("id").and_then(Value::as_str).unwrap_or_default();
        let names: Vec<Value> = self.names_of(id).into_iter().map(Value::from).collect();
        if let Some(object) = user.as_object_mut() {
            object.insert("groups".to_owned(), Value::Array(names));
        }
    }

    /// How many users are in at least one of the groups.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no user is in any of the groups.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// The ids of a group's transitive user members, every page of them.
async fn members_of(
    client: &Arc<GraphClient>,
    group: &str,
    page_size: u16,
) -> Result<Vec<String>, GraphError> {
    /// Just the id of a member.
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let query = UserQuery {
        selection: Selection::default(),
        filter: None,
        page_size,
        group: Some(group.to_owned()),
        groups_apart: false,
    };
    let mut pager = UserPager::new(Arc::clone(client), &query);
    let mut ids = Vec::new();
    while let Some(page) = pager.next_page_raw().await? {
        for user in page {
            let Ok(Id { id }) = serde_json::from_str::<Id>(user.get()) else {
                continue;
            };
            ids.push(id);
        }
    }
    Ok(ids)
}

/// How many users one group of the scope brought in, or one exclusion left out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupCount {
    /// The group as the config names it.
    pub group: String,
    /// Its object ID.
    pub id: String,
    /// Users matching the filter that this group brought in (a user in two groups counts
    /// in both), or that this exclusion left out of scope.
    pub users: usize,
}

/// What the scope groups and exclusions did in one read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScopeCounts {
    /// Each group of `groups`, in the config's order.
    pub groups: Vec<GroupCount>,
    /// Each group of `exclude_groups`, in the config's order.
    pub excluded: Vec<GroupCount>,
}

/// The scope by groups (`groups`, `exclude_groups`): a user is in scope when it is a
/// transitive member of any of the groups (or no groups are named) and of none of the
/// exclusions. Membership is read apart, and the users read with the filter alone are kept
/// or left out here, one by one, each counted.
#[derive(Debug)]
pub struct Scope {
    /// The scope groups first, then the exclusions.
    memberships: Memberships,
    /// How many of the groups are scope groups.
    included: usize,
    /// Per group: users brought in, then users left out.
    counted: Vec<usize>,
}

impl Scope {
    /// Resolves every group named in `include` and `exclude` (all problems reported at
    /// once) and reads their members; `None` when neither names any group.
    pub async fn read(
        client: &Arc<GraphClient>,
        include: &[String],
        exclude: &[String],
        page_size: u16,
    ) -> Result<Option<Scope>, GraphError> {
        if include.is_empty() && exclude.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = include.iter().chain(exclude).cloned().collect();
        let groups = resolve(client, &names).await?;
        let counted = vec![0; groups.len()];
        let memberships = Memberships::read(client, groups, page_size).await?;
        Ok(Some(Scope {
            memberships,
            included: include.len(),
            counted,
        }))
    }

    /// Whether the user is in scope; counts what each group did for it.
    pub fn admits(&mut self, user_id: &str) -> bool {
        let bits = self.memberships.bits(user_id);
        let scope_mask = if self.included >= 64 {
            u64::MAX
        } else {
            (1u64 << self.included) - 1
        };
        let brought = self.included == 0 || bits & scope_mask != 0;
        if !brought {
            return false;
        }
        for (n, count) in self.counted.iter_mut().enumerate() {
            if bits & (1 << n) != 0 {
                *count += 1;
            }
        }
        bits & !scope_mask == 0
    }

    /// The scope groups and the exclusions the user is in, by the config's names.
    pub fn of(&self, user_id: &str) -> (Vec<&str>, Vec<&str>) {
        let names = self.memberships.names_of(user_id);
        let included: Vec<&str> = self.memberships.groups()[..self.included]
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        names.into_iter().partition(|n| included.contains(n))
    }

    /// What each group did so far.
    pub fn counts(&self) -> ScopeCounts {
        let count = |n: usize, g: &GroupRef| GroupCount {
            group: g.name.clone(),
            id: g.id.clone(),
            users: self.counted.get(n).copied().unwrap_or(0),
        };
        let all = self.memberships.groups();
        ScopeCounts {
            groups: all
                .iter()
                .enumerate()
                .take(self.included)
                .map(|(n, g)| count(n, g))
                .collect(),
            excluded: all
                .iter()
                .enumerate()
                .skip(self.included)
                .map(|(n, g)| count(n, g))
                .collect(),
        }
    }
}
