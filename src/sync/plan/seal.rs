//! Seals: how a normal full run knows a user is unchanged without mapping it.
//!
//! Mapping a user is most of what a run spends on it, and on a night without changes
//! every user maps to the record last written. So when a user is found unchanged, the state
//! keeps a seal beside it ([`crate::state::OwnedUsers::source_at`]): a digest of what the
//! user was read from ([`Source`]: its Graph text, what is put on it before mapping, and
//! the config and mapping that map it) together with what the state remembers of it (its
//! record's hash, match key and active flag). The next run reads the user, seals it the same
//! way, and when the seals agree the mapping would give the same record again: the user is
//! quiet without being parsed or mapped. Anything that could map it differently changes the
//! seal — another text (even the same values in another order), another mapping file or
//! setting, another SKU table, another userload — and so does any change to the state's row,
//! so a seal left over from before a write is never trusted. A user whose seal does not
//! agree is mapped and compared as always, and sealed anew if it is unchanged.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::{FixedState, FoldHasher};

use crate::state::Owned;

/// What the seals of this build are made of: a newer userload, which may map differently,
/// trusts none made by this one.
const FORMAT: &str = concat!("userload seal 1 ", env!("CARGO_PKG_VERSION"));

/// What a user was read from, digested: two 64-bit hashes of it under different seeds.
///
/// The hash need not resist a forger (it is the admin's own directory that is read), only
/// tell two readings of one user apart; the seal kept is 64 bits, so a change is missed
/// (until the next reconciliation) with odds of one in 2^64. A later build that hashes
/// differently agrees with no seal kept before it: every user is mapped once, never skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source([u64; 2]);

/// Makes the [`Source`]s of one run: what maps every user alike is digested once.
#[derive(Clone)]
pub struct Sealer([FoldHasher<'static>; 2]);

/// The seeds of the two hashes.
const SEEDS: [u64; 2] = [0x7573_6572_6c6f_6164, 0x7365_616c_7320_2031];

/// The two hashers, before anything is fed.
fn hashers() -> [FoldHasher<'static>; 2] {
    SEEDS.map(|seed| FixedState::with_seed(seed).build_hasher())
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer for users mapped as `recipe` says ([`crate::mapping::Mapping::recipe`]),
    /// with `run` giving, piece by piece, what else maps or compares every user alike.
    pub fn new(recipe: &str, run: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Sealer {
        let mut digest = hashers();
        piece(&mut digest, FORMAT.as_bytes());
        piece(&mut digest, recipe.as_bytes());
        run(&mut |bytes| piece(&mut digest, bytes));
        Sealer(digest)
    }

    /// The source of a user read as `text` (its JSON as Graph wrote it), with `extras`
    /// giving, piece by piece, what is put on this user alone before mapping.
    pub fn source(&self, text: &str, extras: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Source {
        let mut digest = self.0.clone();
        extras(&mut |bytes| piece(&mut digest, bytes));
        piece(&mut digest, text.as_bytes());
        Source(digest.map(|hasher| hasher.finish()))
    }
}

/// Feeds `bytes` with their length before them, so that no two lists of pieces are fed
/// alike.
fn piece(digest: &mut [FoldHasher<'static>; 2], bytes: &[u8]) {
    for hasher in digest {
        hasher.write_u64(bytes.len() as u64);
        hasher.write(bytes);
    }
}

/// The seal of a user read from `source` that the state remembers as `owned`; never 0
/// (which stands for none).
pub fn seal(source: &Source, owned: &Owned) -> u64 {
    let [mut digest, _] = hashers();
    for half in source.0 {
        digest.write_u64(half);
    }
    let mut piece = |bytes: &[u8]| {
        digest.write_u64(bytes.len() as u64);
        digest.write(bytes);
    };
    match &owned.hash {
        Some(hash) => piece(hash.as_bytes()),
        None => piece(b"\0no record"),
    }
    piece(owned.key.as_bytes());
    piece(&[u8::from(owned.active)]);
    digest.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned() -> Owned {
        Owned {
            entra_id: "e1".into(),
            key: "ann@example.com".into(),
            target_id: Some("t1".into()),
            hash: Some("h1".into()),
            active: true,
        }
    }

    #[test]
    fn a_seal_changes_with_the_text_the_extras_the_origin_and_the_row() {
        let sealer = Sealer::new("config-a", |_| {});
        let text = r#"{"id":"e1","displayName":"Ann"}"#;
        let source = sealer.source(text, |_| {});
        let base = seal(&source, &owned());
        assert_eq!(base, seal(&sealer.source(text, |_| {}), &owned()));
        let others = [
            seal(
                &sealer.source(r#"{"id":"e1","displayName":"Anne"}"#, |_| {}),
                &owned(),
            ),
            seal(&sealer.source(text, |p| p(b"Staff")), &owned()),
            seal(
                &Sealer::new("config-b", |_| {}).source(text, |_| {}),
                &owned(),
            ),
            seal(
                &Sealer::new("config-a", |p| p(b"SPE_E3")).source(text, |_| {}),
                &owned(),
            ),
            seal(
                &source,
                &Owned {
                    hash: Some("h2".into()),
                    ..owned()
                },
            ),
            seal(
                &source,
                &Owned {
                    hash: None,
                    ..owned()
                },
            ),
            seal(
                &source,
                &Owned {
                    key: "bob@example.com".into(),
                    ..owned()
                },
            ),
            seal(
                &source,
                &Owned {
                    active: false,
                    ..owned()
                },
            ),
        ];
        for (n, other) in others.iter().enumerate() {
            assert_ne!(*other, base, "change {n} left the seal as it was");
        }
        assert!(others.iter().chain([&base]).all(|s| *s != 0));
    }

    #[test]
    fn pieces_are_told_apart_where_one_ends() {
        let sealer = Sealer::new("o", |_| {});
        let one = sealer.source("b", |p| p(b"a"));
        let two = sealer.source("", |p| p(b"ab"));
        assert_ne!(one, two);
    }
}
