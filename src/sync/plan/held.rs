//! How a user that waits for its managers' creates ([`EarlyCreates`](super::EarlyCreates))
//! is written as bytes for a [`Spill`](crate::spill::Spill) and read back: a few
//! length-prefixed pieces, exactly what the user held.

use serde_json::Value as Json;

use super::{Mapped, SourceUser};
use crate::mapping::Mapping;

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
