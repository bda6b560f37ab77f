//! References to the target's entities: a field with `refers = { entity = "department" }`
//! holds a name; the target wants the id of its department of that name. The target's
//! entities of each kind a mapping names are listed once per run ([`Catalogue`]) and names
//! are compared after Unicode normalisation (NFC), case folding and trimming, with runs of
//! white space taken as one space.
//!
//! A name the target has once is written as that entity's id. A name it has twice or more
//! is an error naming every id: the field is left as it is in the target (and empty on a
//! user created), and the user is listed. A name it lacks is, with `policy = "create"`,
//! created once per run before the users are written ([`EntityName`] in the plan's
//! `entities`); with `policy = "lookup"`, the field is left empty and the user listed.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use crate::targets::Entity;

/// A name as compared: NFC, lower case, trimmed, inner white space as one space.
pub fn name_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for word in name.nfc().collect::<String>().split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().flat_map(char::to_lowercase));
    }
    key
}

/// An entity named by the users of a plan: its kind, its name as the mapping made it, and
/// the name as compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct EntityName {
    /// The kind (`department`).
    pub kind: String,
    /// The name, as the first user to name it had it.
    pub name: String,
    /// The name as compared ([`name_key`]).
    #[serde(skip)]
    pub key: String,
}

/// The target's entities of each kind a mapping names, by name as compared.
#[derive(Debug, Default)]
pub struct Catalogue {
    kinds: HashMap<String, HashMap<String, Vec<Entity>>>,
}

/// What a name is in the target.
pub(super) enum Lookup<'a> {
    /// One entity: its id.
    One(&'a str),
    /// Several entities share the name: all of them.
    Many(&'a [Entity]),
    /// None.
    Missing,
}

impl Catalogue {
    /// The catalogue of `kind`'s entities as listed (a later list of the same kind
    /// replaces it).
    pub fn add(&mut self, kind: &str, entities: Vec<Entity>) {
        let mut by_key: HashMap<String, Vec<Entity>> = HashMap::new();
        for entity in entities {
            by_key
                .entry(name_key(&entity.name))
                .or_default()
                .push(entity);
        }
        self.kinds.insert(kind.to_owned(), by_key);
    }

    /// Whether no kind is listed.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// What `key` (a name as compared) is among `kind`'s entities.
    pub(super) fn find(&self, kind: &str, key: &str) -> Lookup<'_> {
        match self
            .kinds
            .get(kind)
            .and_then(|k| k.get(key))
            .map(Vec::as_slice)
        {
            Some([one]) => Lookup::One(&one.id),
            Some(many @ [_, _, ..]) => Lookup::Many(many),
            _ => Lookup::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, name: &str) -> Entity {
        Entity {
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn names_compare_after_normalising_case_and_spaces() {
        // "é" written as one character and as "e" with a combining accent.
        assert_eq!(
            name_key("  Recherche   Et Développement "),
            name_key("recherche et de\u{301}veloppement")
        );
        assert_ne!(name_key("Sales"), name_key("Sales EMEA"));
        let mut catalogue = Catalogue::default();
        catalogue.add(
            "department",
            vec![
                entity("1", "Sales"),
                entity("2", "Field  Sales"),
                entity("3", "field sales"),
            ],
        );
        assert!(matches!(
            catalogue.find("department", &name_key("SALES")),
            Lookup::One("1")
        ));
        assert!(matches!(
            catalogue.find("department", &name_key("Field Sales")),
            Lookup::Many([_, _])
        ));
        assert!(matches!(
            catalogue.find("department", "finance"),
            Lookup::Missing
        ));
        assert!(matches!(
            catalogue.find("location", "sales"),
            Lookup::Missing
        ));
    }
}
