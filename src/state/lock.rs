//! The lock that keeps two runs off one state file: a file beside the database, locked for
//! as long as a run has the state open.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{State, StateError};

/// Takes the lock of the state file at `path`. `userload status` holds it for an instant to
/// see whether a run holds it; a run starting in that instant waits a little rather than
/// fail.
pub(super) fn take(path: &Path) -> Result<File, StateError> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(path))
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
                return Err(StateError::Busy(path.to_owned()));
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

/// The lock file beside a state file.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
