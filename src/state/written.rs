//! The records the state keeps of each owned user's last write: read for the users of a
//! delta run (also while the run records its writes, on a connection of their own), and
//! forgotten whenever they may no longer be what the target holds.

use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};

use super::{State, StateError, now, open_read_only};

impl State {
    /// The records kept for those of `entra_ids` that have one ([`State::record_written`]),
    /// by Entra id.
    pub fn written<'i>(
        &self,
        entra_ids: impl IntoIterator<Item = &'i str>,
    ) -> Result<foldhash::HashMap<String, String>, StateError> {
        read_written(&self.db, entra_ids).map_err(self.sql())
    }

    /// A reader of the records kept, on a connection of its own: it reads them while the
    /// run records its writes through this one.
    pub fn written_reader(&self) -> Result<WrittenReader, StateError> {
        let db =
            Connection::open_with_flags(&self.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(self.sql())?;
        Ok(WrittenReader {
            path: self.path.clone(),
            db,
        })
    }

    /// Keeps the records written only when they are laid out as `layout` says
    /// ([`crate::mapping::Mapping::layout`]) and the last run that wrote ended its
    /// recording ([`State::end_writes`]). Otherwise they are all forgotten — after an edit
    /// of the mapping's fields, or a run killed before it recorded every write it made (a record
    /// kept may then be older than what the target holds) — and each user is looked up
    /// again until it is next written. Returns whether they were kept.
    pub fn keep_written_for(&mut self, layout: &str) -> Result<bool, StateError> {
        let check = |db: &mut Connection| {
            if trusted(db, layout)? {
                return Ok(true);
            }
            let tx = db.transaction()?;
            tx.execute("DELETE FROM written", [])?;
            tx.execute("DELETE FROM meta WHERE name = 'writing'", [])?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('written_layout', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = ?1",
                [layout],
            )?;
            tx.commit().map(|()| false)
        };
        check(&mut self.db).map_err(self.sql())
    }

    /// Without changing the state file: whether the records it keeps are laid out as
    /// `layout` says and every write of the last run that wrote was recorded
    /// ([`State::keep_written_for`] would keep them).
    pub fn peek_written_kept(path: &Path, layout: &str) -> Result<bool, StateError> {
        let Some(db) = open_read_only(path)? else {
            return Ok(false);
        };
        trusted(&db, layout).map_err(|source| StateError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }

    /// Notes that a run is about to write: until [`State::end_writes`], the records kept
    /// are not to be trusted by the next run ([`State::keep_written_for`]).
    pub fn begin_writes(&mut self) -> Result<(), StateError> {
        self.db
            .execute(
                "INSERT INTO meta (name, value) VALUES ('writing', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = ?1",
                [now()],
            )
            .map(|_| ())
            .map_err(self.sql())
    }

    /// Notes that every write of the run is recorded.
    pub fn end_writes(&mut self) -> Result<(), StateError> {
        self.db
            .execute("DELETE FROM meta WHERE name = 'writing'", [])
            .map(|_| ())
            .map_err(self.sql())
    }
}

/// Whether the records kept are laid out as `layout` says, and the last run that wrote
/// recorded every write.
fn trusted(db: &Connection, layout: &str) -> rusqlite::Result<bool> {
    let meta = |name: &str| {
        db.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    };
    Ok(meta("written_layout")?.as_deref() == Some(layout) && meta("writing")?.is_none())
}

/// Reads the records kept ([`State::written`]) beside the run's own connection to the state
/// file.
#[derive(Debug)]
pub struct WrittenReader {
    path: PathBuf,
    db: Connection,
}

impl WrittenReader {
    /// A reader of the state file at `path`, read-only; `None` when there is none.
    pub fn open(path: &Path) -> Result<Option<WrittenReader>, StateError> {
        Ok(open_read_only(path)?.map(|db| WrittenReader {
            path: path.to_owned(),
            db,
        }))
    }

    /// [`State::written`].
    pub fn written<'i>(
        &self,
        entra_ids: impl IntoIterator<Item = &'i str>,
    ) -> Result<foldhash::HashMap<String, String>, StateError> {
        read_written(&self.db, entra_ids).map_err(|source| StateError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

fn read_written<'i>(
    db: &Connection,
    entra_ids: impl IntoIterator<Item = &'i str>,
) -> rusqlite::Result<foldhash::HashMap<String, String>> {
    let mut stmt = db.prepare_cached("SELECT record FROM written WHERE entra_id = ?1")?;
    let mut found = foldhash::HashMap::default();
    for id in entra_ids {
        if let Some(record) = stmt.query_row([id], |r| r.get(0)).optional()? {
            found.insert(id.to_owned(), record);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::super::{MIGRATIONS, Owned, Remembered};
    use super::*;

    fn owned(id: &str) -> Owned {
        Owned {
            entra_id: id.into(),
            key: format!("{id}@x"),
            target_id: Some(format!("t-{id}")),
            hash: Some("h".into()),
            active: true,
        }
    }

    fn remembered(id: &str, record: Option<&str>) -> Remembered {
        Remembered {
            owned: owned(id),
            written: record.map(Into::into),
        }
    }

    fn kept(state: &State) -> Vec<(String, String)> {
        let mut all: Vec<_> = state
            .written(["e1", "e2", "e3"])
            .unwrap()
            .into_iter()
            .collect();
        all.sort();
        all
    }

    #[test]
    fn records_are_kept_replaced_and_forgotten_with_their_users() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(&dir.path().join("s.db"), "t").unwrap();
        state.keep_written_for("m1").unwrap();
        state
            .record_written(&[remembered("e1", Some("[1]")), remembered("e2", Some("[2]"))])
            .unwrap();
        assert_eq!(
            kept(&state),
            [("e1".into(), "[1]".into()), ("e2".into(), "[2]".into())]
        );
        // Recorded without a record (not known): the one kept is forgotten.
        state.record(&[owned("e1")]).unwrap();
        state
            .record_written(&[remembered("e2", Some("[3]"))])
            .unwrap();
        assert_eq!(kept(&state), [("e2".into(), "[3]".into())]);
        let reader = state.written_reader().unwrap();
        assert_eq!(reader.written(["e2"]).unwrap()["e2"], "[3]");
        state.forget(&["e2".into()]).unwrap();
        assert!(kept(&state).is_empty());
        assert!(!state.owned().unwrap().contains_key("e2"));
    }

    #[test]
    fn records_are_forgotten_after_a_mapping_edit_or_writes_never_ended() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(&dir.path().join("s.db"), "t").unwrap();
        state.keep_written_for("m1").unwrap();
        state.begin_writes().unwrap();
        state
            .record_written(&[remembered("e1", Some("[1]"))])
            .unwrap();
        state.end_writes().unwrap();
        state.keep_written_for("m1").unwrap();
        assert_eq!(kept(&state).len(), 1, "same mapping, writes ended");
        state.keep_written_for("m2").unwrap();
        assert!(kept(&state).is_empty(), "another mapping");
        state
            .record_written(&[remembered("e1", Some("[1]"))])
            .unwrap();
        state.begin_writes().unwrap();
        // A run killed here never ends its writes.
        state.keep_written_for("m2").unwrap();
        assert!(kept(&state).is_empty(), "writes cut short");
        assert_eq!(state.owned().unwrap().len(), 1, "the owned users stay");
    }

    #[test]
    fn a_state_from_before_keeps_its_users_and_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let db = Connection::open(&path).unwrap();
            for (_, script) in &MIGRATIONS[..5] {
                db.execute_batch(script).unwrap();
            }
            db.pragma_update(None, "user_version", 5).unwrap();
            db.execute(
                "INSERT INTO owned (entra_id, match_key, target_id, hash, active, changed_at)
                 VALUES ('e1', 'e1@x', 't-e1', 'h', 1, '2026-01-01T00:00:00Z')",
                [],
            )
            .unwrap();
        }
        let mut state = State::open(&path, "t").unwrap();
        state.keep_written_for("m1").unwrap();
        assert_eq!(*state.owned().unwrap().get("e1").unwrap(), owned("e1"));
        assert!(kept(&state).is_empty());
    }
}
