//! The history of runs in the state file: one row per run, started when the run starts and
//! finished with its status, exit code, counts and message, for `userload status`.

use std::path::Path;

use rusqlite::{Connection, params};

use super::{State, StateError, now, open_read_only};

/// The counts of one run, for the history (and, as JSON, for reports and `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunCounts {
    /// Users created.
    pub created: i64,
    /// Users updated.
    pub updated: i64,
    /// Users deactivated.
    pub deactivated: i64,
    /// Users reactivated.
    pub reactivated: i64,
    /// Users that needed no write.
    pub unchanged: i64,
    /// Users skipped (mapping, mode, duplicates).
    pub skipped: i64,
    /// Writes that failed.
    pub failed: i64,
}

/// One run of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Its number.
    pub id: i64,
    /// When it started (RFC 3339).
    pub started: String,
    /// When it finished; `None` if it never did (killed).
    pub finished: Option<String>,
    /// `run` or `plan`.
    pub mode: String,
    /// `running`, `ok`, `partial`, `failed`, `limited` (deactivation limit hit).
    pub status: String,
    /// The process exit code.
    pub exit_code: Option<i64>,
    /// What it did.
    pub counts: RunCounts,
    /// Why it failed or was limited.
    pub message: Option<String>,
    /// The users it read in Entra and listed in the target, when it read both completely.
    pub read: Option<SidesRead>,
    /// The requests it made, when it got as far as making them.
    pub requests: Option<Requests>,
}

/// How many requests a run made to each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Requests {
    /// To Graph (tokens not counted).
    pub graph: u64,
    /// To the target.
    pub target: u64,
}

/// How many users a run read on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SidesRead {
    /// Entra users in scope.
    pub entra: u64,
    /// Target users listed, when the target was listed whole (not looked up user by user).
    pub target: Option<u64>,
}

/// How a run ended, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd<'a> {
    /// `ok`, `partial`, `stopped`, `limited`, `refused` or `failed`.
    pub status: &'a str,
    /// The process exit code.
    pub exit_code: i32,
    /// What it did.
    pub counts: RunCounts,
    /// Why it failed or was limited.
    pub message: Option<String>,
    /// The users it read on each side, when it read both completely.
    pub read: Option<SidesRead>,
    /// The requests it made, when it got as far as making them.
    pub requests: Option<Requests>,
}

impl State {
    /// Remembers entities userload created (departments for the users' references), each
    /// as `(kind, target id, name)`, in one transaction.
    pub fn record_entities(&mut self, made: &[(&str, &str, &str)]) -> Result<(), StateError> {
        let at = now();
        self.execute_each(
            "INSERT OR REPLACE INTO entities (kind, target_id, name, created)
             VALUES (?1, ?2, ?3, ?4)",
            made,
            |stmt, (kind, id, name)| stmt.execute(params![kind, id, name, at]),
        )
    }

    /// The entities userload created: kind, target id and name, in the order made.
    pub fn created_entities(&self) -> Result<Vec<(String, String, String)>, StateError> {
        let mut stmt = self
            .db
            .prepare("SELECT kind, target_id, name FROM entities ORDER BY rowid")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Starts a run in the history; returns its number.
    pub fn start_run(&self, mode: &str) -> Result<i64, StateError> {
        self.db
            .execute(
                "INSERT INTO runs (started, mode, status) VALUES (?1, ?2, 'running')",
                params![now(), mode],
            )
            .map_err(self.sql())?;
        Ok(self.db.last_insert_rowid())
    }

    /// Finishes a run in the history.
    pub fn finish_run(&self, id: i64, end: &RunEnd<'_>) -> Result<(), StateError> {
        let counts = &end.counts;
        self.db
            .execute(
                "UPDATE runs SET finished = ?2, status = ?3, exit_code = ?4, created = ?5,
                     updated = ?6, deactivated = ?7, reactivated = ?8, unchanged = ?9,
                     skipped = ?10, failed = ?11, message = ?12, entra_users = ?13,
                     target_users = ?14, graph_requests = ?15, target_requests = ?16
                 WHERE id = ?1",
                params![
                    id,
                    now(),
                    end.status,
                    end.exit_code,
                    counts.created,
                    counts.updated,
                    counts.deactivated,
                    counts.reactivated,
                    counts.unchanged,
                    counts.skipped,
                    counts.failed,
                    end.message.as_deref().map(crate::secrets::scrub),
                    end.read.map(|r| r.entra as i64),
                    end.read.and_then(|r| r.target).map(|t| t as i64),
                    end.requests.map(|r| r.graph as i64),
                    end.requests.map(|r| r.target as i64),
                ],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// What the latest run that read both sides completely read, for bounding this run's
    /// listings; `None` before any such run.
    pub fn last_read(&self) -> Result<Option<SidesRead>, StateError> {
        last_read(&self.db).map_err(self.sql())
    }

    /// [`State::last_read`] without taking the lock, for `plan`; `None` for a missing file.
    pub fn peek_last_read(path: &Path) -> Result<Option<SidesRead>, StateError> {
        let Some(db) = open_read_only(path)? else {
            return Ok(None);
        };
        last_read(&db).map_err(|source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }

    /// The latest runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        read_runs(&self.db, limit).map_err(self.sql())
    }

    /// The latest runs (newest first) and how many target users are owned, read without
    /// writing anything or taking the lock, so that it works while a run is going: for
    /// `status`. A missing or never-used file has neither.
    pub fn peek_history(path: &Path, limit: usize) -> Result<(Vec<RunRecord>, usize), StateError> {
        let Some(db) = open_read_only(path)? else {
            return Ok((Vec::new(), 0));
        };
        let sql = |source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let runs = read_runs(&db, limit).map_err(sql)?;
        let owned: i64 = db
            .query_row(
                "SELECT count(*) FROM owned WHERE target_id IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        Ok((runs, owned as usize))
    }
}

/// What the latest run that read both sides completely read.
fn last_read(db: &Connection) -> rusqlite::Result<Option<SidesRead>> {
    let mut stmt = db.prepare(
        "SELECT entra_users, target_users FROM runs
         WHERE entra_users IS NOT NULL ORDER BY id DESC LIMIT 1",
    )?;
    let mut rows = stmt.query_map([], |r| Ok(read_sides(r.get(0)?, r.get(1)?)))?;
    Ok(rows.next().transpose()?.flatten())
}

/// The sides read, from the history's two columns.
fn read_sides(entra: Option<i64>, target: Option<i64>) -> Option<SidesRead> {
    let count = |n: i64| n.max(0) as u64;
    entra.map(|entra| SidesRead {
        entra: count(entra),
        target: target.map(count),
    })
}

/// The latest `limit` runs, newest first.
fn read_runs(db: &Connection, limit: usize) -> rusqlite::Result<Vec<RunRecord>> {
    let mut stmt = db.prepare(
        "SELECT id, started, finished, mode, status, exit_code, created, updated,
                deactivated, reactivated, unchanged, skipped, failed, message,
                entra_users, target_users, graph_requests, target_requests
         FROM runs ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(RunRecord {
            id: r.get(0)?,
            started: r.get(1)?,
            finished: r.get(2)?,
            mode: r.get(3)?,
            status: r.get(4)?,
            exit_code: r.get(5)?,
            counts: RunCounts {
                created: r.get(6)?,
                updated: r.get(7)?,
                deactivated: r.get(8)?,
                reactivated: r.get(9)?,
                unchanged: r.get(10)?,
                skipped: r.get(11)?,
                failed: r.get(12)?,
            },
            message: r.get(13)?,
            read: read_sides(r.get(14)?, r.get(15)?),
            requests: match (r.get::<_, Option<i64>>(16)?, r.get::<_, Option<i64>>(17)?) {
                (Some(graph), Some(target)) => Some(Requests {
                    graph: graph.max(0) as u64,
                    target: target.max(0) as u64,
                }),
                _ => None,
            },
        })
    })?;
    rows.collect()
}
