//! `userload explain USER`: why a run does what it does to one user. Reads that user from
//! Graph (by object id, user principal name, mail or employee id) and shows, in order: the
//! scope (each clause of the filter and the group, with its verdict), every mapped field
//! from the value read through each converter to the value written, the user's target user
//! (through the state file, or by match key) and the action a run would take with its
//! field-by-field differences, references included. Reads only; writes nothing anywhere.

use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::sync::{Setup, setup};
use super::{Outcome, load_config, print_error};
use crate::config::{Config, is_guid};
use crate::graph::groups::Scope;
use crate::graph::users_file::label;
use crate::graph::{Extras, GraphClient, GraphError, Managers, Selection, UserPager, UserQuery};
use crate::mapping::{Context, FieldTrace};
use crate::state::{OwnedUsers, State};
use crate::sync::changes::Changes;
use crate::sync::engine::{list_entities, plan_options};
use crate::sync::plan::{self, Listed, Plan, Prior, SourceUser};

/// Arguments of `userload explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    pub(super) config: std::path::PathBuf,
    /// The user: object id, user principal name, mail or employee id.
    pub(super) user: String,
    /// Print the explanation as one JSON object.
    #[arg(long)]
    pub(super) json: bool,
}

/// Why `explain` (or `run --user`) could not say.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExplainError {
    #[error("{0}")]
    Graph(#[from] GraphError),
    #[error("{0}")]
    Target(#[from] crate::targets::TargetError),
    #[error("{0}")]
    State(#[from] crate::state::StateError),
    #[error("no user in Graph has the object id, user principal name, mail or employee id {0:?}")]
    NoSuchUser(String),
    #[error("{count} users in Graph match {user:?} ({labels}); name one by its object id")]
    Several {
        user: String,
        count: usize,
        labels: String,
    },
}

/// `userload explain`.
pub fn run(args: &ExplainArgs) -> Outcome {
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    let _entered = runtime.enter();
    let Some(config) = load_config(&args.config) else {
        return Outcome::Failed;
    };
    let Ok(setup) = setup(&config) else {
        return Outcome::Failed;
    };
    match runtime.block_on(explain(&config, &setup, &args.user)) {
        Ok(explained) if args.json => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&explained).unwrap_or_default()
            );
            Outcome::Success
        }
        Ok(explained) => {
            out!("{}", text(&explained));
            Outcome::Success
        }
        Err(e) => {
            print_error(&e);
            Outcome::Failed
        }
    }
}

/// Everything `explain` finds out, as JSON (printed as text or as is).
async fn explain(config: &Config, setup: &Setup, who: &str) -> Result<Json, ExplainError> {
    let (client, user) = read_one(
        config,
        &setup.mapping,
        who,
        &["userPrincipalName", "mail", "employeeId"],
    )
    .await?;
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    let scope = scope(config, &client, &user, &id).await?;
    let sync_time = crate::state::now();
    let ctx = Context {
        settings: &config.settings,
        sync_time: &sync_time,
    };
    let fields = setup.mapping.trace(&user, &ctx);
    // All of the state, so that the user's manager is found through it; the plan is made
    // for this one user only.
    let owned: OwnedUsers = State::peek_owned(&config.sync.state)?;
    let mapped = setup.mapping.map(&user, &ctx);
    let key = mapped
        .as_ref()
        .ok()
        .and_then(|r| r.get(setup.mapping.match_key()).cloned());
    let found = match &key {
        Some(key) => setup.target.find(setup.mapping.match_key(), key).await?,
        None => None,
    };
    let mut listed: Vec<Listed> = found
        .iter()
        .map(|u| Listed::of(&setup.mapping, u.clone()))
        .collect();
    // The users it names (its manager), as the target holds them, so they resolve.
    if let Ok(record) = &mapped {
        for i in setup.mapping.user_refs() {
            let Some(known) = record
                .value(i)
                .and_then(Json::as_str)
                .and_then(|m| owned.get(m))
            else {
                continue;
            };
            let key = Json::String(known.key.clone());
            if let Some(user) = setup.target.find(setup.mapping.match_key(), &key).await? {
                listed.push(Listed::of(&setup.mapping, user));
            }
        }
    }
    let entities = list_entities(&setup.mapping, setup.target.as_ref()).await?;
    let mut options = plan_options(config, &setup.mapping, setup.target.as_ref());
    // Compare every field, as a full reconciliation does: drift shows too.
    options.reconcile = true;
    let source = SourceUser::new(&setup.mapping, id.clone(), label(&user), mapped);
    let only = [id.clone()].into_iter().collect();
    let prior = Prior {
        entities: &entities,
        early: &[],
        only: Some(&only),
        quiet: None,
    };
    let planned = plan::plan_after(
        &setup.mapping,
        vec![source],
        &listed,
        &owned,
        options,
        &prior,
    );
    Ok(json!({
        "user": label(&user),
        "id": id,
        "scope": scope,
        "fields": fields.iter().map(field_json).collect::<Vec<_>>(),
        "target": {
            "state": owned.get(&id).map(|o| json!({"target_id": o.target_id, "key": o.key})),
            "match_key": setup.mapping.match_key(),
            "key": key,
            "found": found.as_ref().map(|u| json!({"id": u.id, "data": u.data})),
        },
        "action": if scope["in_scope"] == true {
            action(&planned, &id, &label(&user))
        } else {
            out_of_scope(owned.get(&id).is_some_and(|o| o.target_id.is_some()))
        },
    }))
}

/// The one user `who` names, read as a run reads users (its manager, and the `groups` and
/// `licenses` a run puts on it), with what the filter reads (its verdict is given) and
/// `extra`; and the client that read it.
async fn read_one(
    config: &Config,
    mapping: &crate::mapping::Mapping,
    who: &str,
    extra: &[&str],
) -> Result<(Arc<GraphClient>, Json), ExplainError> {
    let client = Arc::new(GraphClient::new(&config.source)?);
    let mut user = find(&client, read_selection(config, mapping, extra), who).await?;
    let run_query = UserQuery::new(&config.source, crate::sync::selection(mapping));
    Extras::read(&client, &run_query, &config.source.input_groups)
        .await?
        .attach(&mut user);
    Ok((client, user))
}

/// What to read of one user: what a run reads (the mapping's properties and manager), what
/// the filter reads (its verdict is given here), and `extra`.
fn read_selection(config: &Config, mapping: &crate::mapping::Mapping, extra: &[&str]) -> Selection {
    let run = crate::sync::selection(mapping);
    let mut wanted: Vec<&str> = run.properties.iter().map(String::as_str).collect();
    if let Some(filter) = &config.source.filter {
        wanted.extend(filter.properties().iter().map(String::as_str));
    }
    wanted.extend(extra);
    let mut selection = Selection::of(wanted);
    selection.manager = run.manager;
    selection
}

/// For `run --user`: the one user `who` names, read as a run reads users, as the changes of
/// a run over that user alone — present when in scope, else gone (a run then deactivates
/// the target user userload owns for it) — with a line saying which.
pub(super) async fn one_user(
    config: &Config,
    mapping: &crate::mapping::Mapping,
    who: &str,
) -> Result<(Changes, String), ExplainError> {
    let (client, user) = read_one(config, mapping, who, &[]).await?;
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    let scope = scope(config, &client, &user, &id).await?;
    if scope["in_scope"] == true {
        let line = format!("{} is in scope", label(&user));
        return Ok((
            Changes {
                present: vec![user],
                gone: Vec::new(),
            },
            line,
        ));
    }
    let excluded: Vec<&str> = scope["filter"]["clauses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passes"] == false)
        .filter_map(|c| c["clause"].as_str())
        .collect();
    let groups = &scope["groups"];
    let why = if !excluded.is_empty() {
        format!("the filter excludes them ({})", excluded.join("; "))
    } else if scope["group"]["member"] == false {
        format!(
            "they are not a member of the group {}",
            scope["group"]["group"]
        )
    } else if groups["excluded_by"]
        .as_array()
        .is_some_and(|e| !e.is_empty())
    {
        format!("an excluded group holds them ({})", groups["excluded_by"])
    } else if groups["passes"] == false {
        "they are in none of the scope groups".to_owned()
    } else {
        "the filter excludes them".to_owned()
    };
    let line = format!(
        "{} exists in Graph but is out of scope: {why}; the target user userload owns for \
         them, if any, is deactivated",
        label(&user)
    );
    Ok((
        Changes {
            present: Vec::new(),
            gone: vec![id],
        },
        line,
    ))
}

/// The one user `who` names, read with `selection`, the manager put back as a run does.
async fn find(
    client: &Arc<GraphClient>,
    selection: Selection,
    who: &str,
) -> Result<Json, ExplainError> {
    let quoted = who.replace('\'', "''");
    let text = if is_guid(who) {
        format!("id eq '{quoted}'")
    } else {
        format!("userPrincipalName eq '{quoted}' or mail eq '{quoted}' or employeeId eq '{quoted}'")
    };
    let filter = odata::Filter::compile(&text)
        .ok()
        .flatten()
        .ok_or_else(|| ExplainError::NoSuchUser(who.to_owned()))?;
    let query = UserQuery {
        selection,
        filter: Some(filter),
        page_size: 10,
        group: None,
        groups_apart: false,
    };
    let managers = Managers::read(client, &query).await?;
    let mut users = UserPager::new(Arc::clone(client), &query).collect().await?;
    match users.len() {
        0 => Err(ExplainError::NoSuchUser(who.to_owned())),
        1 => {
            let mut user = users.remove(0);
            if let Some(managers) = &managers {
                managers.attach(&mut user);
            }
            Ok(user)
        }
        count => Err(ExplainError::Several {
            user: who.to_owned(),
            count,
            labels: users.iter().map(label).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The scope's verdict on the user: each filter clause, and the group.
async fn scope(
    config: &Config,
    client: &Arc<GraphClient>,
    user: &Json,
    id: &str,
) -> Result<Json, ExplainError> {
    let filter = config.source.filter.as_ref().map(|f| {
        let clauses: Vec<Json> = f
            .clauses(user)
            .into_iter()
            .map(|(clause, passes)| json!({"clause": clause, "passes": passes}))
            .collect();
        json!({
            "canonical": f.canonical(),
            "joined_by": if f.all_clauses_needed() { "and" } else { "or" },
            "clauses": clauses,
            "passes": f.matches(user),
        })
    });
    let group = match &config.source.group {
        None => None,
        Some(group) => {
            let filter = odata::Filter::compile(&format!("id eq '{id}'"))
                .ok()
                .flatten();
            let query = UserQuery {
                selection: Selection::of(["id"]),
                filter,
                page_size: 1,
                group: Some(group.clone()),
                groups_apart: false,
            };
            let members = UserPager::new(Arc::clone(client), &query).collect().await?;
            Some(json!({"group": group, "member": !members.is_empty()}))
        }
    };
    let source = &config.source;
    let groups = match Scope::read(
        client,
        &source.groups,
        &source.exclude_groups,
        source.page_size,
    )
    .await?
    {
        None => None,
        Some(mut scope) => {
            let passes = scope.admits(id);
            let (member_of, excluded_by) = scope.of(id);
            Some(json!({"member_of": member_of, "excluded_by": excluded_by, "passes": passes}))
        }
    };
    let in_scope = filter.as_ref().is_none_or(|f| f["passes"] == true)
        && group.as_ref().is_none_or(|g| g["member"] == true)
        && groups.as_ref().is_none_or(|g| g["passes"] == true);
    Ok(json!({"filter": filter, "group": group, "groups": groups, "in_scope": in_scope}))
}

fn field_json(trace: &FieldTrace) -> Json {
    json!({
        "field": trace.target,
        "source": trace.source,
        "read": trace.read,
        "steps": trace.steps.iter().map(|(name, value)| json!({"converter": name, "value": value})).collect::<Vec<_>>(),
        "result": match &trace.result {
            Ok(value) => json!({"value": value}),
            Err(reason) => json!({"skips_the_user": reason}),
        },
    })
}

/// What a run does to a user out of scope: deactivates its target user if userload owns
/// one (within the guards), else nothing.
fn out_of_scope(owned: bool) -> Json {
    if owned {
        json!({"do": "deactivate", "why": "out of scope, and userload owns its target user"})
    } else {
        json!({"do": "nothing", "why": "out of scope, and userload owns no target user for it"})
    }
}

/// What a run would do to the user (`id`, known as `who`), from the one-user plan.
fn action(plan: &Plan, id: &str, who: &str) -> Json {
    let changes = |u: &plan::Update| {
        u.changes
            .iter()
            .map(|c| json!({"field": c.target, "from": c.old, "to": c.new}))
            .collect::<Vec<_>>()
    };
    let references = json!({
        "unresolved": plan.unresolved,
        "entities_to_create": plan.entities,
    });
    if let Some(skip) = plan.skipped.iter().find(|s| s.label == who) {
        return json!({"do": "skip", "reason": skip.reason, "references": references});
    }
    if let Some(create) = plan.creates.iter().find(|c| c.entra_id == id) {
        return json!({"do": "create", "record": create.record().to_json(), "references": references});
    }
    if let Some(update) = plan.updates.iter().find(|u| u.entra_id == id) {
        return json!({"do": update.kind.name(), "target_id": update.user.id, "changes": changes(update), "references": references});
    }
    json!({"do": "nothing", "why": "the target user holds what the mapping makes", "references": references})
}

/// The explanation as an admin reads it.
fn text(e: &Json) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "user {} ({})",
        e["user"].as_str().unwrap_or(""),
        e["id"].as_str().unwrap_or("")
    );
    text_scope(e, &mut out);
    text_fields(e, &mut out);
    text_target(e, &mut out);
    text_action(e, &mut out);
    out
}

/// A value as shown: JSON, or `(none)`.
fn show(v: &Json) -> String {
    if v.is_null() {
        "(none)".to_owned()
    } else {
        v.to_string()
    }
}

/// The scope: each clause and the group, with its verdict.
fn text_scope(e: &Json, out: &mut String) {
    use std::fmt::Write as _;
    let scope = &e["scope"];
    let _ = writeln!(
        out,
        "\nscope: {}",
        if scope["in_scope"] == true {
            "in scope"
        } else {
            "OUT OF SCOPE"
        }
    );
    if let Some(filter) = scope["filter"].as_object() {
        let _ = writeln!(
            out,
            "  filter {}",
            filter["canonical"].as_str().unwrap_or("")
        );
        for c in filter["clauses"].as_array().into_iter().flatten() {
            let mark = if c["passes"] == true { "✓" } else { "✗" };
            let _ = writeln!(out, "    {mark} {}", c["clause"].as_str().unwrap_or(""));
        }
    }
    if let Some(group) = scope["group"].as_object() {
        let mark = if group["member"] == true {
            "✓ member of"
        } else {
            "✗ not a member of"
        };
        let _ = writeln!(
            out,
            "  group: {mark} {}",
            group["group"].as_str().unwrap_or("")
        );
    }
    if let Some(groups) = scope["groups"].as_object() {
        let names = |key: &str| {
            groups[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mark = if groups["passes"] == true {
            "✓"
        } else {
            "✗"
        };
        let (member_of, excluded_by) = (names("member_of"), names("excluded_by"));
        let _ = writeln!(
            out,
            "  groups: {mark} member of: {}; excluded by: {}",
            if member_of.is_empty() {
                "none"
            } else {
                &member_of
            },
            if excluded_by.is_empty() {
                "none"
            } else {
                &excluded_by
            }
        );
    }
}

/// Each field, from the value read to the value written.
fn text_fields(e: &Json, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "\nfields:");
    for f in e["fields"].as_array().into_iter().flatten() {
        let mut line = format!(
            "  {} ← {}: {}",
            f["field"].as_str().unwrap_or(""),
            f["source"].as_str().unwrap_or(""),
            show(&f["read"])
        );
        for step in f["steps"].as_array().into_iter().flatten() {
            let _ = write!(
                line,
                " → {} {}",
                step["converter"].as_str().unwrap_or(""),
                show(&step["value"])
            );
        }
        match f["result"].get("skips_the_user") {
            Some(reason) => {
                let _ = write!(line, " ⇒ skips the user: {}", reason.as_str().unwrap_or(""));
            }
            None => {
                let _ = write!(line, " ⇒ {}", show(&f["result"]["value"]));
            }
        }
        let _ = writeln!(out, "{line}");
    }
}

/// The user's target user, through the state and by key.
fn text_target(e: &Json, out: &mut String) {
    use std::fmt::Write as _;
    let target = &e["target"];
    let _ = writeln!(out, "\ntarget:");
    match target["state"].as_object() {
        Some(s) => {
            let _ = writeln!(
                out,
                "  the state file links it to target user {}",
                show(&s["target_id"])
            );
        }
        None => {
            let _ = writeln!(out, "  the state file does not know it");
        }
    }
    match target["found"].as_object() {
        Some(found) => {
            let _ = writeln!(
                out,
                "  by {} {}: target user {}",
                target["match_key"].as_str().unwrap_or(""),
                show(&target["key"]),
                show(&found["id"])
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  no target user has {} {}",
                target["match_key"].as_str().unwrap_or(""),
                show(&target["key"])
            );
        }
    }
}

/// What a run would do.
fn text_action(e: &Json, out: &mut String) {
    use std::fmt::Write as _;
    let action = &e["action"];
    let _ = writeln!(out, "\naction: {}", action["do"].as_str().unwrap_or(""));
    for c in action["changes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {}: {} → {}",
            c["field"].as_str().unwrap_or(""),
            show(&c["from"]),
            show(&c["to"])
        );
    }
    for key in ["reason", "why"] {
        if let Some(text) = action[key].as_str() {
            let _ = writeln!(out, "  {text}");
        }
    }
    for r in action["references"]["unresolved"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  ? reference {} → {}: {}",
            r["field"].as_str().unwrap_or(""),
            r["names"].as_str().unwrap_or(""),
            r["reason"].as_str().unwrap_or("")
        );
    }
    for en in action["references"]["entities_to_create"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  + {} {}",
            en["kind"].as_str().unwrap_or(""),
            show(&en["name"])
        );
    }
}
