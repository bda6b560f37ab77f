//! The last full reconciliation, in the `meta` table: when it ran (`last_full`) and the
//! drift it found (`last_full_drift`, as `USERS FIELDS`).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::{State, StateError, open_read_only};

/// The last full reconciliation a run made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// When the run started (RFC 3339).
    pub at: String,
    /// Users whose target values had drifted.
    pub drift_users: usize,
    /// Fields that had drifted, over all users.
    pub drift_fields: usize,
}

impl State {
    /// The last full reconciliation; `None` before any.
    pub fn last_reconciled(&self) -> Result<Option<Reconciled>, StateError> {
        read(&self.db).map_err(self.sql())
    }

    /// [`State::last_reconciled`] without taking the lock, for `plan` and `status`; `None`
    /// for a missing file.
    pub fn peek_reconciled(path: &Path) -> Result<Option<Reconciled>, StateError> {
        let Some(db) = open_read_only(path)? else {
            return Ok(None);
        };
        read(&db).map_err(|source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }

    /// Remembers a full reconciliation.
    pub fn save_reconciled(&mut self, done: &Reconciled) -> Result<(), StateError> {
        let drift = format!("{} {}", done.drift_users, done.drift_fields);
        let path = self.path.clone();
        let sql = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(sql)?;
        for (name, value) in [("last_full", done.at.as_str()), ("last_full_drift", &drift)] {
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [name, value],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }
}

fn read(db: &Connection) -> rusqlite::Result<Option<Reconciled>> {
    let value = |name: &str| {
        db.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    };
    let Some(at) = value("last_full")? else {
        return Ok(None);
    };
    let drift = value("last_full_drift")?.unwrap_or_default();
    let mut counts = drift.split(' ').map(|n| n.parse().unwrap_or(0));
    Ok(Some(Reconciled {
        at,
        drift_users: counts.next().unwrap_or(0),
        drift_fields: counts.next().unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_reconciliation_is_remembered_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut state = State::open(&path, "t").unwrap();
        assert_eq!(state.last_reconciled().unwrap(), None);
        let first = Reconciled {
            at: "2026-01-01T00:00:00Z".into(),
            drift_users: 2,
            drift_fields: 3,
        };
        state.save_reconciled(&first).unwrap();
        let second = Reconciled {
            at: "2026-01-08T00:00:00Z".into(),
            ..first
        };
        state.save_reconciled(&second).unwrap();
        assert_eq!(state.last_reconciled().unwrap(), Some(second.clone()));
        drop(state);
        assert_eq!(State::peek_reconciled(&path).unwrap(), Some(second));
    }
}
