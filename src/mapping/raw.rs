//! A target user's values read from its JSON text as the target sent it, without building
//! the user as a tree of values: each field's value is found as a slice of that text, and
//! the record is packed from those slices. Listing a large target reads every user this
//! way; a user is built whole only if it is written.
//!
//! The values found are exactly those [`Mapping::record_from`] finds in the parsed user
//! (the same paths, the last of two equal member names, the first element a value filter
//! picks). Where the text cannot be read in place (a member name written with escapes),
//! [`Mapping::read_raw`] says so and the caller parses the user whole instead.

use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::Mapping;
use super::path::TargetSeg;
use super::record::{Packed, Record};

/// The members of one JSON object, each as its text, borrowed from the text read.
#[derive(Debug)]
pub struct RawObject<'a>(Vec<(&'a str, &'a str)>);

impl<'a> RawObject<'a> {
    /// The object `text` holds (text taken from a document serde_json has parsed):
    /// `Ok(None)` when it holds another kind of value, `Err` when it is an object that
    /// cannot be read in place (a member name written with escapes).
    pub fn parse(text: &'a str) -> Result<Option<RawObject<'a>>, CannotBorrow> {
        let Some(members) = crate::scan::members(text) else {
            return Ok(None);
        };
        let mut all = Vec::with_capacity(16);
        for (name, value) in members {
            let name = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .filter(|n| !n.contains('\\'))
                .ok_or(CannotBorrow)?;
            all.push((name, value));
        }
        Ok(Some(RawObject(all)))
    }

    /// The text of the member named `name`; of two with that name, the last (as a parsed
    /// object keeps).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }

    /// The object parsed whole.
    pub fn to_map(&self) -> Map<String, Json> {
        self.0
            .iter()
            .map(|(k, v)| {
                // Text taken from a parsed document is valid JSON.
                let value = serde_json::from_str(v).unwrap_or(Json::Null);
                ((*k).to_owned(), value)
            })
            .collect()
    }
}

/// Read as a member of a document being parsed (a list response's users): the members are
/// found in the same pass that checks the document, rather than in a second one.
impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Members<'a> {
            type Value = RawObject<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((name, value)) = map.next_entry::<&'a str, &'a RawValue>()? {
                    members.push((name, value.get()));
                }
                Ok(RawObject(members))
            }
        }
        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// The string a JSON text holds, borrowed where it has no escapes; `None` for another kind
/// of value.
pub fn json_text(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    match serde_json::from_str::<&str>(text) {
        Ok(borrowed) => Some(borrowed.into()),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Into::into),
    }
}

/// A user's text that cannot be read in place: it is to be parsed whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CannotBorrow;

/// The elements of the list `text` holds, or `None` for another kind of value.
fn list(text: &str) -> Option<Vec<&str>> {
    crate::scan::elements(text)
}

impl Mapping {
    /// Reads a target user from its members, each as its JSON text: its record packed (when
    /// `pack`; else [`Packed::is_unread`]), and the values of the fields in `wanted`
    /// unpacked (the others left empty), for what the caller compares on. Without `pack`,
    /// only the fields in `wanted` are looked for. [`CannotBorrow`] when the user must be
    /// parsed whole instead.
    pub fn read_raw(
        &self,
        user: &RawObject<'_>,
        wanted: &[usize],
        pack: bool,
    ) -> Result<(Packed, Record), CannotBorrow> {
        let mut read = Read::default();
        let mut found: Vec<Option<&str>> = Vec::with_capacity(self.fields.len());
        for (i, field) in self.fields.iter().enumerate() {
            let needed = pack || wanted.contains(&i);
            found.push(if needed {
                read.value_at(user, &field.path)?
            } else {
                None
            });
        }
        let mut some = self.empty();
        for &i in wanted {
            if let Some(text) = found.get(i).copied().flatten() {
                some.set(i, serde_json::from_str::<Json>(text).ok());
            }
        }
        let shape = Arc::clone(&self.shape);
        let packed = match pack {
            true => Packed::raw(shape, &found),
            false => Packed::unread(shape),
        };
        Ok((packed, some))
    }

    /// A record of this mapping with no value in any field.
    fn empty(&self) -> Record {
        Record::new(Arc::clone(&self.shape), vec![None; self.fields.len()])
    }
}

/// The objects and lists of one user read so far, by where their text starts: the fields
/// below one object (`name.givenName`, `name.familyName`) read it once.
#[derive(Default)]
struct Read<'a> {
    objects: Vec<(*const u8, Option<RawObject<'a>>)>,
    lists: Vec<(*const u8, Option<Vec<&'a str>>)>,
}

impl<'a> Read<'a> {
    /// The text of the value at `path` in a user, as [`super::Field::get`] finds it.
    fn value_at(
        &mut self,
        top: &RawObject<'a>,
        path: &[TargetSeg],
    ) -> Result<Option<&'a str>, CannotBorrow> {
        let Some((TargetSeg::Key(key), rest)) = path.split_first() else {
            return Ok(None);
        };
        let Some(mut value) = top.get(key) else {
            return Ok(None);
        };
        for seg in rest {
            let next = match seg {
                TargetSeg::Key(k) => self.object(value)?.and_then(|o| o.get(k)),
                TargetSeg::Select {
                    attr,
                    value: wanted,
                } => match self.list(value) {
                    None => None,
                    Some(items) => self.picked(&items, attr, wanted)?,
                },
            };
            let Some(next) = next else {
                return Ok(None);
            };
            value = next;
        }
        Ok(Some(value))
    }

    fn object(&mut self, value: &'a str) -> Result<Option<&RawObject<'a>>, CannotBorrow> {
        let at = value.as_ptr();
        let i = match self.objects.iter().position(|(p, _)| *p == at) {
            Some(i) => i,
            None => {
                self.objects.push((at, RawObject::parse(value)?));
                self.objects.len() - 1
            }
        };
        Ok(self.objects[i].1.as_ref())
    }

    /// The first element whose member `attr` is the string `wanted`.
    fn picked(
        &mut self,
        items: &[&'a str],
        attr: &str,
        wanted: &str,
    ) -> Result<Option<&'a str>, CannotBorrow> {
        for &item in items {
            let is = self
                .object(item)?
                .and_then(|o| o.get(attr))
                .and_then(json_text)
                .is_some_and(|v| v == wanted);
            if is {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    fn list(&mut self, value: &'a str) -> Option<Vec<&'a str>> {
        let at = value.as_ptr();
        if let Some((_, items)) = self.lists.iter().find(|(p, _)| *p == at) {
            return items.clone();
        }
        let items = list(value);
        self.lists.push((at, items.clone()));
        items
    }
}

impl Packed {
    /// A record packed from the text of each field's value (`None`: no value).
    pub(super) fn raw(shape: Arc<super::record::Shape>, values: &[Option<&str>]) -> Packed {
        let size = values.iter().flatten().map(|v| v.len() + 1).sum::<usize>();
        let mut text = String::with_capacity(size + values.len() * 5 + 2);
        text.push('[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(value.unwrap_or("null"));
        }
        text.push(']');
        Packed::from_text(shape, text.into_boxed_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPPING: &str = r#"
version = 1
target = "scim"
match = "userName"
[fields.userName]
source = "userPrincipalName"
[fields.displayName]
source = "displayName"
[fields."name.givenName"]
source = "givenName"
[fields."name.familyName"]
source = "surname"
[fields.'emails[type eq "work"].value']
source = "mail"
[fields.active]
source = "accountEnabled"
[fields.title]
source = "jobTitle"
"#;

    fn mapping() -> Mapping {
        let text = crate::diag::SourceText::new("m.toml", MAPPING);
        crate::mapping::compile_source(&text, crate::mapping::Options::default()).unwrap()
    }

    /// The record read in place is the record read from the parsed user, for users of
    /// every shape (missing members, nulls, repeated names, lists without the element,
    /// values that are not objects, escapes inside values).
    #[test]
    fn reads_what_a_parsed_user_holds() {
        let m = mapping();
        let users = [
            r#"{"id":"1","userName":"a@x","name":{"givenName":"A","familyName":"B"},
               "emails":[{"type":"home","value":"h@x"},{"type":"work","value":"w@x"}],
               "active":true,"title":null,"meta":{"version":"W/\"1\""}}"#,
            r#"{"id":"2","userName":"b@x","name":"not an object","emails":{"type":"work"},
               "active":false}"#,
            r#"{"id":"3","userName":"first","userName":"second","title":"x\"y\u00e9",
               "emails":[1,{"type":"work","value":{"nested":[1,2]}}], "name":{}}"#,
            r#"[1,2]"#,
            r#"{}"#,
        ];
        for text in users {
            let parsed: Json = serde_json::from_str(text).unwrap();
            let empty = serde_json::Map::new();
            let expected = m.record_from(parsed.as_object().unwrap_or(&empty));
            let Some(members) = RawObject::parse(text).unwrap() else {
                assert!(!text.starts_with('{'));
                continue;
            };
            assert_eq!(members.to_map(), *parsed.as_object().unwrap(), "{text}");
            let (packed, some) = m.read_raw(&members, &[0, 5], true).unwrap();
            assert_eq!(packed.unpack(), expected.pack().unpack(), "{text}");
            assert_eq!(some.value(0), expected.value(0), "{text}");
            assert_eq!(some.value(5), expected.value(5), "{text}");
            assert_eq!(some.value(1), None, "only the fields asked for: {text}");
            // Without the record packed, the same values of the fields asked for.
            let (unread, alone) = m.read_raw(&members, &[0, 5], false).unwrap();
            assert!(unread.is_unread() && !packed.is_unread());
            assert_eq!(alone.value(0), some.value(0), "{text}");
            assert_eq!(alone.value(5), some.value(5), "{text}");
        }
    }

    /// The text a record's hash is taken of is `serde_json`'s text of the values kept (a
    /// state file's hashes stay valid), and its packed text unpacks to the record.
    #[test]
    fn packing_and_digesting_write_serde_jsons_text() {
        let m = mapping();
        let text = r#"{"userName":"a\"b\u00e9","name":{"givenName":"Ann","familyName":null},
            "emails":[{"type":"work","value":"w@x"}],"active":true,"title":"x,y]"}"#;
        let parsed: Json = serde_json::from_str(text).unwrap();
        let record = m.record_from(parsed.as_object().unwrap());
        let mut digested = Vec::new();
        let packed = record.pack_and_digest(|i| i != 1, |piece| digested.extend(piece));
        let kept: Vec<&Option<Json>> = record
            .values()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            String::from_utf8(digested).unwrap(),
            serde_json::to_string(&kept).unwrap()
        );
        assert_eq!(packed.unpack(), record.pack().unpack());
    }

    #[test]
    fn a_member_name_with_escapes_is_left_to_a_whole_parse() {
        let m = mapping();
        assert_eq!(
            RawObject::parse(r#"{"user\u004eame":"a"}"#).err(),
            Some(CannotBorrow)
        );
        let nested = RawObject::parse(r#"{"name":{"given\u004eame":"a"}}"#).unwrap();
        assert_eq!(
            m.read_raw(&nested.unwrap(), &[], true).err(),
            Some(CannotBorrow)
        );
    }
}

#[cfg(test)]
mod elements {
    use super::*;

    /// Each value's text is found whatever it holds: commas, brackets and quotes inside
    /// strings, nested lists and objects, no value.
    #[test]
    fn a_packed_records_values_are_split_where_the_list_splits_them() {
        let text = r#"{"a":"x, [y]","b":"q\"\\,}","c":[1,{"d":[2,3]}],"e":null,"f":{"g":"}"}}"#;
        let members = RawObject::parse(text).unwrap().unwrap();
        let values: Vec<Option<&str>> = ["a", "b", "c", "e", "f", "missing"]
            .map(|k| members.get(k))
            .into();
        let shape = Arc::new(super::super::record::Shape::new(
            (0..6).map(|i| i.to_string()).collect(),
            vec![Vec::new(); 6],
            vec![false; 6],
            false,
        ));
        let packed = Packed::raw(shape, &values);
        assert_eq!(
            packed.elements().unwrap(),
            [
                r#""x, [y]""#,
                r#""q\"\\,}""#,
                r#"[1,{"d":[2,3]}]"#,
                "null",
                r#"{"g":"}"}"#,
                "null"
            ]
        );
        let parsed: Vec<Option<Json>> = serde_json::from_str(packed.text()).unwrap();
        assert_eq!(parsed.len(), 6);
    }
}
