//! What a run reads beside the users and puts on each user before mapping: the membership
//! of the config's `input_groups` (`groups`) and licence names (`licenses`), each read once
//! per run and only when the mapping reads it.

use std::sync::Arc;

use serde_json::Value;

use super::client::GraphClient;
use super::error::GraphError;
use super::groups::{self, Memberships, Scope, ScopeCounts};
use super::licenses::Skus;
use super::users::{PagedUser, UserQuery};
use crate::config::SourceConfig;

/// The membership and licence names a run read, ready to put on each user.
#[derive(Debug, Default)]
pub struct Extras {
    /// The membership of the config's `input_groups`, when the mapping reads `groups`.
    pub memberships: Option<Memberships>,
    /// The tenant's SKUs, when the mapping reads `licenses`.
    pub skus: Option<Skus>,
}

impl Extras {
    /// Reads what `query`'s selection asks for beside the users: the groups named in
    /// `input_groups` (resolved first; a name that cannot be resolved fails the read before
    /// any user is read) and the tenant's SKUs.
    pub async fn read(
        client: &Arc<GraphClient>,
        query: &UserQuery,
        input_groups: &[String],
    ) -> Result<Extras, GraphError> {
        let memberships = if query.selection.groups {
            let resolved = groups::resolve(client, input_groups).await?;
            Some(Memberships::read(client, resolved, query.page_size).await?)
        } else {
            None
        };
        let skus = if query.selection.licenses {
            Some(Skus::read(client).await?)
        } else {
            None
        };
        Ok(Extras { memberships, skus })
    }

    /// Gives `piece` what [`Extras::attach`] puts on every user alike: the SKU table, in
    /// the order of its ids.
    pub fn describe_run(&self, piece: &mut dyn FnMut(&[u8])) {
        if let Some(skus) = &self.skus {
            for (id, part) in skus.sorted() {
                piece(id.as_bytes());
                piece(part.as_bytes());
            }
        }
    }

    /// Gives `piece` what [`Extras::attach`] puts on the user of `id` alone: the names of
    /// its groups.
    pub fn describe_user(&self, id: &str, piece: &mut dyn FnMut(&[u8])) {
        if let Some(memberships) = &self.memberships {
            for name in memberships.names_of(id) {
                piece(name.as_bytes());
            }
        }
    }

    /// Puts `groups` and `licenses` on `user`, as far as they were read.
    pub fn attach(&self, user: &mut Value) {
        if let Some(memberships) = &self.memberships {
            memberships.attach(user);
        }
        if let Some(skus) = &self.skus {
            skus.attach(user);
        }
    }
}

/// Membership and licence names ([`Extras`]) and the scope by groups ([`Scope`]) being read
/// beside the users, so that the groups' listings overlap the users' pages rather than
/// come before them. Pages that arrive first are held, unmapped, until the reads are done:
/// nothing is mapped (and so nothing written) before every group is resolved and read.
#[derive(Debug)]
pub struct Beside {
    task: Option<tokio::task::JoinHandle<Result<Ready, GraphError>>>,
    ready: Option<Ready>,
    held: Vec<Vec<PagedUser>>,
}

/// What [`Beside`] reads.
#[derive(Debug, Default)]
struct Ready {
    extras: Extras,
    scope: Option<Scope>,
}

impl Drop for Beside {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Beside {
    /// Starts reading what `query` needs beside the users: the `input_groups` when the
    /// mapping reads `groups`, the SKUs when it reads `licenses`, and the scope groups and
    /// exclusions of `source`. Nothing is started when none of them is needed.
    pub fn start(client: &Arc<GraphClient>, query: &UserQuery, source: &SourceConfig) -> Beside {
        let needed = query.selection.groups
            || query.selection.licenses
            || !source.groups.is_empty()
            || !source.exclude_groups.is_empty();
        if !needed {
            return Beside {
                task: None,
                ready: Some(Ready::default()),
                held: Vec::new(),
            };
        }
        let client = Arc::clone(client);
        let query = query.clone();
        let (input, include, exclude) = (
            source.input_groups.clone(),
            source.groups.clone(),
            source.exclude_groups.clone(),
        );
        let task = tokio::spawn(async move {
            let (extras, scope) = tokio::try_join!(
                Extras::read(&client, &query, &input),
                Scope::read(&client, &include, &exclude, query.page_size),
            )?;
            Ok(Ready { extras, scope })
        });
        Beside {
            task: Some(task),
            ready: None,
            held: Vec::new(),
        }
    }

    /// The pages that can be mapped now, `page` last: none while the reads go on (the page
    /// is held), every held page once they are done.
    pub async fn pass(&mut self, page: Vec<PagedUser>) -> Result<Vec<Vec<PagedUser>>, GraphError> {
        self.held.push(page);
        if self.ready.is_none() && self.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(Vec::new());
        }
        self.finish().await?;
        Ok(std::mem::take(&mut self.held))
    }

    /// After the last page: waits for the reads, and gives every page still held.
    pub async fn rest(&mut self) -> Result<Vec<Vec<PagedUser>>, GraphError> {
        self.finish().await?;
        Ok(std::mem::take(&mut self.held))
    }

    async fn finish(&mut self) -> Result<(), GraphError> {
        if self.ready.is_some() {
            return Ok(());
        }
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let ready = task.await.map_err(|e| GraphError::Malformed {
            what: "reading groups and licences".to_owned(),
            detail: format!("the read was interrupted ({e})"),
        })??;
        self.ready = Some(ready);
        Ok(())
    }

    /// Whether the user of `id` is in scope by groups (always, without `groups` and
    /// `exclude_groups`); counts what each group did. Only for pages [`Beside::pass`] or
    /// [`Beside::rest`] gave.
    pub fn admits(&mut self, id: &str) -> bool {
        match self.ready.as_mut().and_then(|r| r.scope.as_mut()) {
            Some(scope) => scope.admits(id),
            None => true,
        }
    }

    /// Puts `groups` and `licenses` on `user`, as far as they were read.
    pub fn attach(&self, user: &mut Value) {
        if let Some(ready) = &self.ready {
            ready.extras.attach(user);
        }
    }

    /// What was read beside the users, once the reads are done (for pages
    /// [`Beside::pass`] or [`Beside::rest`] gave, it is).
    pub fn extras(&self) -> Option<&Extras> {
        self.ready.as_ref().map(|ready| &ready.extras)
    }

    /// What the scope groups and exclusions did, when the config names any.
    pub fn scope_counts(&self) -> Option<ScopeCounts> {
        self.ready.as_ref()?.scope.as_ref().map(Scope::counts)
    }
}
