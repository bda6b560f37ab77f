//! Records kept on disk rather than in memory, for a run that must hold many of them for a
//! while (the users a first load keeps waiting for their managers' creates): each record
//! is written once at the end of an unnamed temporary file and read back by its place. The
//! file has no name, so nothing is left behind however the run ends; the system reclaims
//! it when the run closes it.

use std::fs::File;
use std::io;
use std::path::Path;

/// How much is written at a time: the records last put are read back from memory.
const BUFFER: usize = 1 << 20;

/// An append-only file of records, each read back by its [`Place`].
pub struct Spill {
    file: File,
    /// How much of the file is written; `buffer` follows.
    written: u64,
    buffer: Vec<u8>,
}

/// Where one record is in a [`Spill`].
#[derive(Debug, Clone, Copy)]
pub struct Place {
    at: u64,
    len: u32,
}

impl Spill {
    /// A new, empty, unnamed file in `dir`.
    pub fn new(dir: &Path) -> io::Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile_in(dir)?,
            written: 0,
            buffer: Vec::new(),
        })
    }

    /// A new spill beside the file at `path` (in its directory: for the state file, the
    /// disk the admin chose for it, where a system temporary directory may be memory);
    /// `None`, with a warning, where none can be made.
    pub fn beside(path: &Path) -> Option<Spill> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        Spill::new(dir)
            .inspect_err(|error| {
                tracing::warn!(
                    %error, dir = %dir.display(),
                    "keeping the users that wait for their managers in memory: no temporary file can be made beside the state file"
                );
            })
            .ok()
    }

    /// Puts `record` at the end.
    pub fn put(&mut self, record: &[u8]) -> io::Result<Place> {
        let len = u32::try_from(record.len()).map_err(io::Error::other)?;
        if self.buffer.len() + record.len() > BUFFER {
            // At its place, however far a write that failed before got.
            write_at(&self.file, &self.buffer, self.written)?;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        let at = self.written + self.buffer.len() as u64;
        self.buffer.extend_from_slice(record);
        Ok(Place { at, len })
    }

    /// The record at `place`, into `into`.
    pub fn get(&self, place: Place, into: &mut Vec<u8>) -> io::Result<()> {
        into.clear();
        into.resize(place.len as usize, 0);
        match place.at.checked_sub(self.written) {
            Some(start) => {
                let start = usize::try_from(start).map_err(io::Error::other)?;
                let piece = self
                    .buffer
                    .get(start..start + into.len())
                    .ok_or_else(|| io::Error::other("a place past the end"))?;
                into.copy_from_slice(piece);
                Ok(())
            }
            None => read_at(&self.file, into, place.at),
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, into: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, into, at)
}

#[cfg(unix)]
fn write_at(file: &File, from: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, from, at)
}

#[cfg(windows)]
fn write_at(file: &File, mut from: &[u8], mut at: u64) -> io::Result<()> {
    while !from.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, from, at)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                from = &from[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &File, mut into: &mut [u8], mut at: u64) -> io::Result<()> {
    while !into.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, into, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                into = &mut into[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_from_the_file_and_from_what_is_not_written_yet() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path()).unwrap();
        // Each record is over half the buffer: every put but the first writes the one
        // before it to the file.
        let records: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; BUFFER / 2 + 7]).collect();
        let places: Vec<Place> = records.iter().map(|r| spill.put(r).unwrap()).collect();
        assert!(spill.written > 0 && !spill.buffer.is_empty());
        let mut into = Vec::new();
        for (record, place) in records.iter().zip(&places).rev() {
            spill.get(*place, &mut into).unwrap();
            assert_eq!(&into, record);
        }
        // Nothing is left in the directory: the file has no name.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
