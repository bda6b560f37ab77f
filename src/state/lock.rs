//! The lock that keeps two runs off one state file: a file beside the database, locked for
//! as long as a run has the state open.
//!
//! The lock belongs to the file, not to the name a config gives it: a symbolic link, a
//! relative path or `..` all lead to the lock beside the real file, so two configs naming
//! one state file differently still meet the same lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{State, StateError};

/// Takes the lock of the state file at `path`. `userload status` holds it for an instant to
/// see whether a run holds it; a run starting in that instant waits a little rather than
/// fail.
pub(super) fn take(path: &Path) -> Result<File, StateError> {
    let lock_file = lock_path(path);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(|source| StateError::Io {
            path: path.to_owned(),
            source,
        })?;
    let mut tries = 0;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Busy {
                    path: path.to_owned(),
                    lock: lock_file,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StateError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    Ok(lock)
}

impl State {
    /// Whether a run holds the state file's lock right now. Finding out takes the lock for
    /// an instant when nobody holds it ([`State::open`] waits that out).
    pub fn in_use(path: &Path) -> bool {
        let Ok(lock) = File::options().write(true).open(lock_path(path)) else {
            return false;
        };
        matches!(lock.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
}

/// The lock file beside the real state file that `path` leads to.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = real_path(path).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Where `path` really is: links followed (even to a file not created yet), the folder
/// made absolute and free of links. Falls back to `path` as written when the folder cannot
/// be resolved (the open that follows reports that).
fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    // A link whose target does not exist yet: follow it by hand, a bounded number of times.
    let mut path = path.to_owned();
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return path;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).map_or(path.clone(), |dir| dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn every_name_of_one_state_file_has_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("userload.db");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let dotted = dir.path().join("sub/../userload.db");
        // Before the file exists, through the dangling link too.
        let expected = lock_path(&real);
        assert_eq!(lock_path(&link), expected);
        assert_eq!(lock_path(&dotted), expected);
        std::fs::write(&real, b"").unwrap();
        assert_eq!(lock_path(&link), expected);
        assert_eq!(lock_path(&dotted), expected);
        assert!(expected.ends_with("userload.db.lock"));
    }

    #[cfg(unix)]
    #[test]
    fn a_second_run_through_a_link_meets_the_first_runs_lock() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("userload.db");
        let link = dir.path().join("other-name.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let first = State::open(&real, "https://assets.example.com/scim/v2").unwrap();
        assert!(State::in_use(&link));
        let second = State::open(&link, "https://assets.example.com/scim/v2");
        match second {
            Err(busy @ StateError::Busy { .. }) => {
                let message = busy.to_string();
                assert!(message.contains("other-name.db"), "{message}");
                assert!(message.contains("userload.db.lock"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(!State::in_use(&link));
        assert!(State::open(&link, "https://assets.example.com/scim/v2").is_ok());
    }
}
