//! Users kept on disk while they wait: on a first load most users wait a while for their
//! managers' creates ([`EarlyCreates`](super::EarlyCreates)), and a million of them held in
//! memory would cost far more than everything else the run keeps. Each waiting user is
//! written once, as a few length-prefixed pieces, to an unnamed temporary file beside the
//! state file, and read back when it is sent. The file has no name, so nothing is left
//! behind, whatever ends the run; the system reclaims it when the run closes it.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde_json::Value as Json;

use super::{Mapped, SourceUser};
use crate::mapping::Mapping;

/// How much is written at a time: the users last put are read back from memory.
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
pub(super) struct Place {
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

    /// Puts `record` at the end.
    pub(super) fn put(&mut self, record: &[u8]) -> io::Result<Place> {
        let len = u32::try_from(record.len()).map_err(io::Error::other)?;
        if self.buffer.len() + record.len() > BUFFER {
            self.file.write_all(&self.buffer)?;
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
        }
        let at = self.written + self.buffer.len() as u64;
        self.buffer.extend_from_slice(record);
        Ok(Place { at, len })
    }

    /// The record at `place`, into `into`.
    pub(super) fn get(&self, place: Place, into: &mut Vec<u8>) -> io::Result<()> {
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

/// A waiting user as [`EarlyCreates`](super::EarlyCreates) keeps it: the user, its match
/// key as compared, and each field that names a user with the Entra id it names.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) user: SourceUser,
    pub(super) key: String,
    pub(super) names: Vec<(usize, String)>,
}

impl Held {
    /// Its record on disk into `out`; `false` for a user that is only kept in memory (one
    /// read with a seal, or not mapped: neither waits).
    pub(super) fn encode(&self, out: &mut Vec<u8>) -> bool {
        let SourceUser {
            entra_id,
            label,
            mapped: Ok(mapped),
            source: None,
        } = &self.user
        else {
            return false;
        };
        out.clear();
        let mut out = Out(out);
        out.text(entra_id);
        out.text(label);
        out.text(&self.key);
        out.number(self.names.len());
        for (field, named) in &self.names {
            out.number(*field);
            out.text(named);
        }
        out.json(mapped.key.as_ref());
        out.flag(mapped.enabled);
        out.text(&mapped.hash);
        out.number(mapped.later.len());
        for key in &mapped.later {
            out.json(key.as_ref());
        }
        out.flag(mapped.names_another);
        out.flag(mapped.same_as_listed);
        match &mapped.values {
            Some(values) => {
                out.flag(true);
                out.text(values.text());
            }
            None => out.flag(false),
        }
        true
    }

    /// A user back from its record ([`Held::encode`]); `None` when the record is not one.
    pub(super) fn decode(mapping: &Mapping, record: &[u8]) -> Option<Held> {
        let mut from = In(record);
        let entra_id = from.text()?.to_owned();
        let label = from.text()?.to_owned();
        let key = from.text()?.to_owned();
        let names = (0..from.number()?)
            .map(|_| Some((from.number()?, from.text()?.to_owned())))
            .collect::<Option<Vec<_>>>()?;
        let mapped = Mapped {
            key: from.json()?,
            enabled: from.flag()?,
            hash: from.text()?.to_owned(),
            later: (0..from.number()?)
                .map(|_| from.json())
                .collect::<Option<Box<[_]>>>()?,
            names_another: from.flag()?,
            same_as_listed: from.flag()?,
            values: match from.flag()? {
                true => Some(mapping.packed(from.text()?.into())),
                false => None,
            },
        };
        from.0.is_empty().then_some(Held {
            user: SourceUser {
                entra_id,
                label,
                mapped: Ok(mapped),
                source: None,
            },
            key,
            names,
        })
    }
}

/// Writes the pieces of a record.
struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn number(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.number(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn flag(&mut self, flag: bool) {
        self.0.push(u8::from(flag));
    }

    /// A value that may be missing (`null` is a value).
    fn json(&mut self, value: Option<&Json>) {
        match value {
            Some(value) => {
                self.flag(true);
                self.text(&value.to_string());
            }
            None => self.flag(false),
        }
    }
}

/// Reads the pieces of a record, in the order [`Out`] wrote them.
struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (piece, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(piece)
    }

    fn number(&mut self) -> Option<usize> {
        let bytes = self.take(8)?.try_into().ok()?;
        usize::try_from(u64::from_le_bytes(bytes)).ok()
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = self.number()?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn flag(&mut self) -> Option<bool> {
        match self.take(1)? {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }

    fn json(&mut self) -> Option<Option<Json>> {
        match self.flag()? {
            true => serde_json::from_str(self.text()?).ok().map(Some),
            false => Some(None),
        }
    }
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
