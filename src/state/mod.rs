//! What userload remembers between runs, in one SQLite file (`state` in `[sync]`):
//!
//! - the target users it owns — the ones it created or matched to an Entra user — by Entra
//!   object id, with the target's id, the match key, and a hash of the last record written,
//!   so an unchanged user costs no request and only owned users are ever deactivated;
//! - for each owned user, the record the target holds after userload's last write (packed,
//!   in a table of its own so that loading the owned users stays as fast): a delta run
//!   plans a changed user against it without asking the target;
//! - Graph delta links, per query;
//! - the history of runs;
//! - when the last full reconciliation ran, and the drift it found.
//!
//! The schema is versioned (`PRAGMA user_version`) and migrated forward on open. A lock file
//! beside the database keeps two runs from working on one state at once. A create is
//! recorded as pending before the request goes out and completed after it, so a run killed
//! in between leaves a row that makes the next run look the user up before creating it.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

mod history;
mod lock;
mod owned;
mod reconciled;
mod written;

pub use history::{Requests, RunCounts, RunEnd, RunRecord, SidesRead};
pub use owned::OwnedUsers;
pub use reconciled::Reconciled;
pub use written::WrittenReader;

/// The schema this build writes; older files are migrated up to it.
const SCHEMA_VERSION: i64 = 7;

/// Each migration takes the schema from the version before it to its own number.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE owned (
        entra_id   TEXT PRIMARY KEY,
        match_key  TEXT NOT NULL,
        target_id  TEXT,
        hash       TEXT,
        active     INTEGER NOT NULL DEFAULT 1,
        changed_at TEXT NOT NULL
    );
    CREATE INDEX owned_by_key ON owned (match_key);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE delta_links (scope TEXT PRIMARY KEY, link TEXT NOT NULL);
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        started     TEXT NOT NULL,
        finished    TEXT,
        mode        TEXT NOT NULL,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        created     INTEGER NOT NULL DEFAULT 0,
        updated     INTEGER NOT NULL DEFAULT 0,
        deactivated INTEGER NOT NULL DEFAULT 0,
        reactivated INTEGER NOT NULL DEFAULT 0,
        unchanged   INTEGER NOT NULL DEFAULT 0,
        skipped     INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        message     TEXT
    );",
    ),
    // No query looks users up by key, and keeping that index up to date made each commit of
    // completed writes three times as slow.
    (2, "DROP INDEX IF EXISTS owned_by_key;"),
    // How many users each run read on each side, when it read both completely: the next
    // run's bound on a listing that runs away.
    (
        3,
        "ALTER TABLE runs ADD COLUMN entra_users INTEGER;
    ALTER TABLE runs ADD COLUMN target_users INTEGER;",
    ),
    // The entities (departments, locations, companies) userload created for the users'
    // references.
    (
        4,
        "CREATE TABLE entities (
        kind      TEXT NOT NULL,
        target_id TEXT NOT NULL,
        name      TEXT NOT NULL,
        created   TEXT NOT NULL,
        PRIMARY KEY (kind, target_id)
    );",
    ),
    // The requests each run made to Graph and to the target, for the history's charts.
    (
        5,
        "ALTER TABLE runs ADD COLUMN graph_requests INTEGER;
    ALTER TABLE runs ADD COLUMN target_requests INTEGER;",
    ),
    // What the target holds after the last write of each owned user (the record packed as
    // its mapping lays it out: `meta.written_layout` names that mapping). A user without a
    // row is looked up in the target before it is written by delta.
    (
        6,
        "CREATE TABLE written (
        entra_id TEXT PRIMARY KEY,
        record   TEXT NOT NULL
    ) WITHOUT ROWID;",
    ),
    // What each owned user was read from, as a seal over its Graph text and what the state
    // remembers of it ([`OwnedUsers::source_at`]): a user read the same again is unchanged
    // without being mapped.
    (7, "ALTER TABLE owned ADD COLUMN source INTEGER;"),
];

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another run holds the lock.
    #[error(
        "another userload run is using {} (its lock file {} is held); wait for it to finish",
        path.display(),
        lock.display()
    )]
    Busy {
        /// The state file, as the config names it.
        path: PathBuf,
        /// The lock file, beside the real state file.
        lock: PathBuf,
    },
    /// The file was written for another target.
    #[error(
        "{path} belongs to the target {owner}, not {target}; give this config its own `state` file"
    )]
    OtherTarget {
        /// The state file.
        path: PathBuf,
        /// The target it records.
        owner: String,
        /// The target this run writes to.
        target: String,
    },
    /// The file was written by a newer userload.
    #[error("{path} has schema version {found}; this userload reads up to {SCHEMA_VERSION}")]
    TooNew {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// SQLite or the file system failed.
    #[error("state file {path}: {source}")]
    Sqlite {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: rusqlite::Error,
    },
    /// The temporary file beside the state file that holds the users waiting for their
    /// managers' creates on a first load failed.
    #[error(
        "state file {path}: the temporary file of users waiting for their managers, beside it, failed: {source}"
    )]
    Spill {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The lock file could not be created or locked.
    #[error("state file {path}: cannot lock it ({path}.lock): {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// How many rows a transaction writes before it is given [`BULK_CACHE`].
const BULK: usize = 1024;

/// The page cache of a transaction of [`BULK`] rows or more, in KiB (SQLite's own default
/// is 2,000): the pages it touches (thousands, on a first load, where every row is new and
/// keys fall anywhere in the file) stay in memory until it commits, rather than being
/// written to the log mid-transaction and read back. The cache shrinks back after.
const BULK_CACHE: i64 = 32 * 1024;

/// Runs `run` on `db`, with a page cache for a transaction of `rows` rows.
fn in_bulk<R>(
    db: &mut Connection,
    rows: usize,
    run: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    if rows < BULK {
        return run(db);
    }
    db.pragma_update(None, "cache_size", -BULK_CACHE)?;
    let result = run(db);
    db.pragma_update(None, "cache_size", -2000)?;
    result
}

/// A target user userload owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The Entra user's object id.
    pub entra_id: String,
    /// The value of the match key last written (as compared: folded when the target folds
    /// case).
    pub key: String,
    /// The target's id of the user; `None` while its create is pending.
    pub target_id: Option<String>,
    /// Hash of the last record written; `None` until one was.
    pub hash: Option<String>,
    /// Whether userload last left the user active.
    pub active: bool,
}

/// An owned user to remember, with the record the target holds for it after a write
/// (packed, [`crate::mapping::Packed::text`]); `None` when that is not known, which makes
/// the state forget any record it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// What the state keeps of the user.
    pub owned: Owned,
    /// The record as the target now holds it, when known.
    pub written: Option<Box<str>>,
}

/// An open state file, locked for this run.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    db: Connection,
    /// Held for as long as the state is open: the lock against a second run.
    _lock: File,
}

impl State {
    /// Opens (or creates) the state file for a run against `target` (a stable description
    /// of the target, such as its URL), migrating its schema and taking the lock.
    pub fn open(path: &Path, target: &str) -> Result<State, StateError> {
        let lock = lock::take(path)?;
        let sql = |source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let db = Connection::open(path).map_err(sql)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        let mut state = State {
            path: path.to_owned(),
            db,
            _lock: lock,
        };
        state.migrate()?;
        state.claim(target)?;
        Ok(state)
    }

    /// What a state file remembers of owned users, read without writing anything (no lock,
    /// no migration): for `plan`. A missing file owns nothing.
    pub fn peek_owned(path: &Path) -> Result<OwnedUsers, StateError> {
        let Some(db) = open_read_only(path)? else {
            return Ok(OwnedUsers::default());
        };
        read_owned(&db).map_err(|source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), StateError> {
        let version: i64 = self
            .db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.sql())?;
        if version > SCHEMA_VERSION {
            return Err(StateError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        let path = self.path.clone();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        for (to, script) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
            let tx = self.db.transaction().map_err(sql)?;
            tx.execute_batch(script).map_err(sql)?;
            tx.pragma_update(None, "user_version", to).map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }

    /// Records which target this state belongs to, or refuses one written for another.
    fn claim(&self, target: &str) -> Result<(), StateError> {
        let owner: Option<String> = self
            .db
            .query_row("SELECT value FROM meta WHERE name = 'target'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())?;
        match owner {
            Some(owner) if owner != target => Err(StateError::OtherTarget {
                path: self.path.clone(),
                owner,
                target: target.to_owned(),
            }),
            Some(_) => Ok(()),
            None => self
                .db
                .execute(
                    "INSERT INTO meta (name, value) VALUES ('target', ?1)",
                    [target],
                )
                .map(|_| ())
                .map_err(self.sql()),
        }
    }

    /// Every owned user, by Entra object id.
    pub fn owned(&self) -> Result<OwnedUsers, StateError> {
        read_owned(&self.db).map_err(self.sql())
    }

    /// Records creates about to be sent, `(Entra id, key)`: the users are owned from now
    /// on, their target ids still unknown. Committed before any request goes out.
    pub fn create_pending(&mut self, users: &[(&str, &str)]) -> Result<(), StateError> {
        let at = now();
        // In key order: the rows a transaction touches are found page after page.
        let mut users = users.to_vec();
        users.sort_unstable();
        self.execute_each(
            "INSERT INTO owned (entra_id, match_key, target_id, hash, active, changed_at)
             VALUES (?1, ?2, NULL, NULL, 1, ?3)
             ON CONFLICT (entra_id) DO UPDATE SET match_key = ?2, changed_at = ?3",
            &users,
            |stmt, (entra_id, key)| stmt.execute(params![entra_id, key, at]),
        )
    }

    /// Records users as owned with what the target now holds for them: after a write, or
    /// when a user was matched and found unchanged. One transaction for all of them. The
    /// records kept for them are forgotten (not known here): see [`State::record_written`].
    pub fn record(&mut self, users: &[Owned]) -> Result<(), StateError> {
        self.record_each(users.iter().map(|owned| (owned, None)))
    }

    /// [`State::record`], keeping for each user the record the target now holds when it is
    /// known (and forgetting the one kept before when it is not).
    pub fn record_written(&mut self, users: &[Remembered]) -> Result<(), StateError> {
        self.record_each(users.iter().map(|u| (&u.owned, u.written.as_deref())))
    }

    fn record_each<'u>(
        &mut self,
        users: impl ExactSizeIterator<Item = (&'u Owned, Option<&'u str>)>,
    ) -> Result<(), StateError> {
        if users.len() == 0 {
            return Ok(());
        }
        // In key order: the rows a transaction touches are found page after page.
        let mut users: Vec<_> = users.collect();
        users.sort_unstable_by_key(|(user, _)| user.entra_id.as_str());
        let rows = users.len();
        let at = now();
        let run = |db: &mut Connection| {
            let tx = db.transaction()?;
            {
                let mut owned = tx.prepare_cached(
                    "INSERT INTO owned (entra_id, match_key, target_id, hash, active, changed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (entra_id) DO UPDATE SET match_key = ?2, target_id = ?3,
                         hash = ?4, active = ?5, changed_at = ?6",
                )?;
                let mut keep = tx.prepare_cached(
                    "INSERT INTO written (entra_id, record) VALUES (?1, ?2)
                     ON CONFLICT (entra_id) DO UPDATE SET record = ?2",
                )?;
                let mut drop = tx.prepare_cached("DELETE FROM written WHERE entra_id = ?1")?;
                for (user, written) in users {
                    owned.execute(params![
                        user.entra_id,
                        user.key,
                        user.target_id,
                        user.hash,
                        user.active,
                        at
                    ])?;
                    match written {
                        Some(record) => keep.execute(params![user.entra_id, record])?,
                        None => drop.execute([&user.entra_id])?,
                    };
                }
            }
            tx.commit()
        };
        in_bulk(&mut self.db, rows, run).map_err(self.sql())
    }

    /// Remembers what each of these users was read from (`(Entra id, seal)`; see
    /// [`OwnedUsers::source_at`]), in one transaction.
    pub fn remember_sources(&mut self, users: &[(&str, u64)]) -> Result<(), StateError> {
        self.execute_each(
            "UPDATE owned SET source = ?2 WHERE entra_id = ?1",
            users,
            |stmt, (entra_id, seal)| stmt.execute(params![entra_id, *seal as i64]),
        )
    }

    /// Forgets owned users (their target user no longer exists).
    pub fn forget(&mut self, entra_ids: &[String]) -> Result<(), StateError> {
        if entra_ids.is_empty() {
            return Ok(());
        }
        let run = |db: &mut Connection| {
            let tx = db.transaction()?;
            {
                let mut owned = tx.prepare_cached("DELETE FROM owned WHERE entra_id = ?1")?;
                let mut written = tx.prepare_cached("DELETE FROM written WHERE entra_id = ?1")?;
                for id in entra_ids {
                    owned.execute([id])?;
                    written.execute([id])?;
                }
            }
            tx.commit()
        };
        in_bulk(&mut self.db, entra_ids.len(), run).map_err(self.sql())
    }

    /// Runs the statement `sql` once for each row, `execute` binding the row, all in one
    /// transaction: every row is written or none (no rows, no transaction).
    fn execute_each<T>(
        &mut self,
        sql: &str,
        rows: &[T],
        execute: impl Fn(&mut rusqlite::Statement<'_>, &T) -> rusqlite::Result<usize>,
    ) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        let run = |db: &mut Connection| {
            let tx = db.transaction()?;
            {
                let mut stmt = tx.prepare_cached(sql)?;
                for row in rows {
                    execute(&mut stmt, row)?;
                }
            }
            tx.commit()
        };
        in_bulk(&mut self.db, rows.len(), run).map_err(self.sql())
    }

    /// The Graph delta link stored for `scope`, if any.
    pub fn delta_link(&self, scope: &str) -> Result<Option<String>, StateError> {
        self.db
            .query_row(
                "SELECT link FROM delta_links WHERE scope = ?1",
                [scope],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())
    }

    /// Stores the Graph delta link for `scope`, replacing every link stored before (a
    /// config follows one query at a time).
    pub fn save_delta_link(&mut self, scope: &str, link: &str) -> Result<(), StateError> {
        let save = |db: &mut Connection| {
            let tx = db.transaction()?;
            tx.execute("DELETE FROM delta_links WHERE scope <> ?1", [scope])?;
            tx.execute(
                "INSERT INTO delta_links (scope, link) VALUES (?1, ?2)
                 ON CONFLICT (scope) DO UPDATE SET link = ?2",
                [scope, link],
            )?;
            tx.commit()
        };
        save(&mut self.db).map_err(self.sql())
    }

    /// Every delta link stored, with the scope (query fingerprint) it follows.
    pub fn delta_links(&self) -> Result<Vec<(String, String)>, StateError> {
        read_delta_links(&self.db).map_err(self.sql())
    }

    /// [`State::delta_links`] without taking the lock, for `plan`; none for a missing file.
    pub fn peek_delta_links(path: &Path) -> Result<Vec<(String, String)>, StateError> {
        let Some(db) = open_read_only(path)? else {
            return Ok(Vec::new());
        };
        read_delta_links(&db).map_err(|source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }
}

fn read_delta_links(db: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = db.prepare("SELECT scope, link FROM delta_links")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The state file opened read-only, or `None` when it is missing or was never migrated.
fn open_read_only(path: &Path) -> Result<Option<Connection>, StateError> {
    if !path.exists() {
        return Ok(None);
    }
    let sql = |source| StateError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let db = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sql)?;
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version == 0 {
        return Ok(None);
    }
    if version > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_owned(),
            found: version,
        });
    }
    Ok(Some(db))
}

fn read_owned(db: &Connection) -> rusqlite::Result<OwnedUsers> {
    // A file opened read-only is not migrated: one older than the seals has none.
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let source = if version >= 7 { "source" } else { "NULL" };
    let mut stmt = db.prepare(&format!(
        "SELECT entra_id, match_key, target_id, hash, active, {source} FROM owned"
    ))?;
    let mut sources = Vec::new();
    let rows = stmt.query_map([], |r| {
        Ok((
            Owned {
                entra_id: r.get(0)?,
                key: r.get(1)?,
                target_id: r.get(2)?,
                hash: r.get(3)?,
                active: r.get(4)?,
            },
            r.get::<_, Option<i64>>(5)?,
        ))
    })?;
    let users = rows
        .map(|row| {
            let (owned, source) = row?;
            // The seal is kept as SQLite's signed integer: the same 64 bits.
            sources.push(source.map_or(0, |s| s as u64));
            Ok(owned)
        })
        .collect::<rusqlite::Result<Vec<Owned>>>()?;
    Ok(OwnedUsers::from(users).with_sources(sources))
}

/// The current time, RFC 3339 in UTC, to the second.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(id: &str, key: &str, target: Option<&str>) -> Owned {
        Owned {
            entra_id: id.into(),
            key: key.into(),
            target_id: target.map(Into::into),
            hash: target.map(|_| "h".into()),
            active: true,
        }
    }

    #[test]
    fn owned_users_pending_creates_and_runs_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut state = State::open(&path, "scim http://x").unwrap();
            state
                .create_pending(&[("e1", "ann@x"), ("e2", "bob@x")])
                .unwrap();
            state.record(&[owned("e2", "bob@x", Some("t2"))]).unwrap();
            let run = state.start_run("run").unwrap();
            let counts = RunCounts {
                created: 1,
                ..RunCounts::default()
            };
            let end = RunEnd {
                status: "ok",
                exit_code: 0,
                counts,
                message: None,
                read: Some(SidesRead {
                    entra: 2,
                    target: Some(1),
                }),
                requests: Some(Requests {
                    graph: 3,
                    target: 4,
                }),
            };
            state.finish_run(run, &end).unwrap();
            state
                .save_delta_link("scope", "https://graph/delta?token=1")
                .unwrap();
        }
        let mut state = State::open(&path, "scim http://x").unwrap();
        let all = state.owned().unwrap();
        assert_eq!(all.get("e1").unwrap().target_id, None, "still pending");
        assert_eq!(*all.get("e2").unwrap(), owned("e2", "bob@x", Some("t2")));
        assert_eq!(state.runs(10).unwrap()[0].counts.created, 1);
        assert_eq!(state.runs(10).unwrap()[0].status, "ok");
        assert_eq!(
            state.runs(10).unwrap()[0].requests,
            Some(Requests {
                graph: 3,
                target: 4
            })
        );
        assert_eq!(
            state.delta_link("scope").unwrap().as_deref(),
            Some("https://graph/delta?token=1")
        );
        state.forget(&["e1".into()]).unwrap();
        assert_eq!(state.owned().unwrap().len(), 1);
    }

    #[test]
    fn a_second_open_waits_for_no_one_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let _first = State::open(&path, "t").unwrap();
        let second = State::open(&path, "t").unwrap_err();
        assert!(matches!(second, StateError::Busy { .. }), "{second}");
        assert!(second.to_string().contains("another userload run"));
    }

    #[test]
    fn a_state_written_for_another_target_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(State::open(&path, "scim https://a").unwrap());
        let e = State::open(&path, "scim https://b").unwrap_err();
        assert!(
            e.to_string()
                .contains("belongs to the target scim https://a"),
            "{e}"
        );
    }

    #[test]
    fn a_newer_schema_is_refused_and_an_older_one_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let db = Connection::open(&path).unwrap();
            db.pragma_update(None, "user_version", 99).unwrap();
        }
        let e = State::open(&path, "t").unwrap_err();
        assert!(matches!(e, StateError::TooNew { found: 99, .. }), "{e}");
        let fresh = dir.path().join("fresh.db");
        drop(State::open(&fresh, "t").unwrap());
        let db = Connection::open(&fresh).unwrap();
        let v: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_first_version_file_keeps_its_users_when_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch(MIGRATIONS[0].1).unwrap();
            db.pragma_update(None, "user_version", 1).unwrap();
            db.execute(
                "INSERT INTO owned (entra_id, match_key, target_id, hash, active, changed_at)
                 VALUES ('e1', 'ann@x', 't1', 'h1', 1, '2024-05-01T06:00:00Z')",
                [],
            )
            .unwrap();
        }
        let state = State::open(&path, "t").unwrap();
        let owned = state.owned().unwrap();
        let mut expected = self::owned("e1", "ann@x", Some("t1"));
        expected.hash = Some("h1".into());
        assert_eq!(*owned.get("e1").unwrap(), expected);
        drop(state);
        let db = Connection::open(&path).unwrap();
        let v: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // The history learnt how many users each run read; older runs have no figure.
        let runs: i64 = db
            .query_row("SELECT count(entra_users) FROM runs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(runs, 0);
        let indexes: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'owned_by_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
    }
}
