//! The SCIM PATCH request that writes a user's changed fields (RFC 7644 §3.5.2), and
//! nothing else.
//!
//! Each change becomes one operation on the field's own path: `replace` when the user has a
//! value there, `add` when not, `remove` when the new value is none. Fields inside an
//! element of a multi-valued attribute (`emails[type eq "work"].value`) need care, because
//! servers refuse a value-filter path that picks no element (scim2-server answers 400
//! `noTarget`): when the user has no such element yet, one `add` appends it with every
//! changed field of that element; when every value of an element goes, the element goes.
//! Other elements (a home address, a second e-mail) are left as they are.

use serde_json::{Map, Value as Json, json};

use super::resource::{scim_path, segments, value_at};
use crate::mapping::Record;
use crate::mapping::path::TargetSeg;
use crate::targets::FieldChange;

/// The schema of a PATCH request body.
pub(super) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The operations of one PATCH.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Patch {
    /// The operations, in the order of the changes.
    pub(super) operations: Vec<Json>,
    /// Whether an operation appends an element: sent twice, it would append two, so the
    /// request is not repeated blindly.
    pub(super) appends: bool,
}

impl Patch {
    /// The request body.
    pub(super) fn body(&self) -> Json {
        json!({ "schemas": [PATCH_OP], "Operations": self.operations })
    }
}

/// Changes to fields inside one element of a multi-valued attribute.
struct Element<'c> {
    /// The path up to and including the value filter: `emails[type eq "work"]`.
    prefix: Vec<TargetSeg>,
    /// Each change, with its path below the element (`value`).
    changes: Vec<(&'c FieldChange, Vec<TargetSeg>)>,
}

enum Step<'c> {
    Plain(&'c FieldChange, Vec<TargetSeg>),
    Element(Element<'c>),
}

/// The PATCH that writes `changes` to a user whose attributes are `data`; `record` is the
/// whole mapped user (it says which e-mail is primary).
pub(super) fn build(changes: &[FieldChange], data: &Map<String, Json>, record: &Record) -> Patch {
    let mut steps: Vec<Step<'_>> = Vec::new();
    for change in changes {
        let segs = segments(&change.target);
        let Some(at) = segs
            .iter()
            .position(|s| matches!(s, TargetSeg::Select { .. }))
        else {
            steps.push(Step::Plain(change, segs));
            continue;
        };
        let (prefix, rest) = segs.split_at(at + 1);
        let same_element = steps.iter_mut().find_map(|s| match s {
            Step::Element(e) if e.prefix == prefix => Some(e),
            _ => None,
        });
        match same_element {
            Some(element) => element.changes.push((change, rest.to_vec())),
            None => steps.push(Step::Element(Element {
                prefix: prefix.to_vec(),
                changes: vec![(change, rest.to_vec())],
            })),
        }
    }
    let mut patch = Patch::default();
    for step in steps {
        match step {
            Step::Plain(change, segs) => {
                let present = value_at(data, &segs).is_some_and(|v| !v.is_null());
                let path = scim_path(&segs);
                match (&change.new, present) {
                    (Some(value), true) => patch.operations.push(op("replace", &path, value)),
                    (Some(value), false) => patch.operations.push(op("add", &path, value)),
                    (None, true) => patch.operations.push(remove(&path)),
                    (None, false) => {}
                }
            }
            Step::Element(element) => write_element(&mut patch, &element, data, record),
        }
    }
    patch
}

fn write_element(
    patch: &mut Patch,
    element: &Element<'_>,
    data: &Map<String, Json>,
    record: &Record,
) {
    let Some((
        TargetSeg::Select {
            attr,
            value: wanted,
        },
        parent,
    )) = element.prefix.split_last()
    else {
        return;
    };
    match value_at(data, &element.prefix) {
        Some(existing) => {
            if empties(existing, attr, element) {
                patch.operations.push(remove(&scim_path(&element.prefix)));
                return;
            }
            for (change, rest) in &element.changes {
                let full: Vec<TargetSeg> = element.prefix.iter().chain(rest).cloned().collect();
                match &change.new {
                    Some(value) => patch
                        .operations
                        .push(op("replace", &scim_path(&full), value)),
                    None if value_at(data, &full).is_some() => {
                        patch.operations.push(remove(&scim_path(&full)));
                    }
                    None => {}
                }
            }
        }
        None => {
            let mut new = Map::new();
            new.insert(attr.clone(), Json::from(wanted.as_str()));
            let mut any = false;
            for (change, rest) in &element.changes {
                let Some(value) = &change.new else { continue };
                if put(&mut new, rest, value.clone()) {
                    any = true;
                } else {
                    // A filter below the element: the server resolves the path itself.
                    let full: Vec<TargetSeg> = element.prefix.iter().chain(rest).cloned().collect();
                    patch.operations.push(op("add", &scim_path(&full), value));
                }
            }
            if !any {
                return;
            }
            let primary = value_at(&record.to_json(), &element.prefix)
                .and_then(|e| e.get("primary"))
                .and_then(Json::as_bool)
                == Some(true);
            if primary {
                new.insert("primary".into(), Json::Bool(true));
            }
            patch.operations.push(op(
                "add",
                &scim_path(parent),
                &Json::Array(vec![Json::Object(new)]),
            ));
            patch.appends = true;
        }
    }
}

/// Whether the changes remove every value of the element, leaving only the attribute that
/// names it (and its primary flag).
fn empties(existing: &Json, attr: &str, element: &Element<'_>) -> bool {
    let Some(object) = existing.as_object() else {
        return false;
    };
    if element.changes.iter().any(|(c, _)| c.new.is_some()) {
        return false;
    }
    let removed: Vec<&str> = element
        .changes
        .iter()
        .filter_map(|(_, rest)| match rest.as_slice() {
            [TargetSeg::Key(k)] => Some(k.as_str()),
            _ => None,
        })
        .collect();
    object.keys().all(|k| {
        k.eq_ignore_ascii_case(attr)
            || k.eq_ignore_ascii_case("primary")
            || removed.iter().any(|r| r.eq_ignore_ascii_case(k))
    })
}

/// Puts `value` at a path of plain keys in `object`; false when the path holds a filter.
fn put(object: &mut Map<String, Json>, path: &[TargetSeg], value: Json) -> bool {
    match path {
        [TargetSeg::Key(key)] => {
            object.insert(key.clone(), value);
            true
        }
        [TargetSeg::Key(key), rest @ ..] => {
            let slot = object
                .entry(key.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            if !slot.is_object() {
                *slot = Json::Object(Map::new());
            }
            match slot {
                Json::Object(inner) => put(inner, rest, value),
                _ => false,
            }
        }
        _ => false,
    }
}

fn op(name: &str, path: &str, value: &Json) -> Json {
    json!({ "op": name, "path": path, "value": value })
}

fn remove(path: &str) -> Json {
    json!({ "op": "remove", "path": path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceText;
    use crate::mapping::{self, Context, Mapping};

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn scim_mapping() -> Mapping {
        let text = mapping::shipped("scim").unwrap();
        let source = SourceText::new("scim.toml", text);
        mapping::compile_source(&source, mapping::Options::default()).unwrap()
    }

    fn record(mapping: &Mapping, user: Json) -> Record {
        let settings = Default::default();
        let ctx = Context {
            settings: &settings,
            sync_time: mapping::TEST_SYNC_TIME,
        };
        mapping.map(&user, &ctx).unwrap()
    }

    fn change(target: &str, old: Option<Json>, new: Option<Json>) -> FieldChange {
        FieldChange {
            field: 0,
            target: target.into(),
            old,
            new,
        }
    }

    fn object(value: Json) -> Map<String, Json> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn plain_fields_are_replaced_added_or_removed() {
        let m = scim_mapping();
        let r = record(
            &m,
            json!({"id": "1", "userPrincipalName": "a@x", "jobTitle": "Boss"}),
        );
        let data = object(json!({
            "id": "u1",
            "userName": "a@x",
            "active": true,
            "title": "Clerk",
            "name": {"givenName": "A"},
            ENTERPRISE: {"department": "IT"},
        }));
        let changes = [
            change("active", Some(json!(true)), Some(json!(false))),
            change("title", Some(json!("Clerk")), None),
            change("name.familyName", None, Some(json!("Lee"))),
            change(
                &format!("{ENTERPRISE}:department"),
                Some(json!("IT")),
                Some(json!("Ops")),
            ),
            change(
                &format!("{ENTERPRISE}:manager.value"),
                None,
                Some(json!("m1")),
            ),
            change("displayName", None, None),
        ];
        let patch = build(&changes, &data, &r);
        assert_eq!(
            patch.operations,
            vec![
                json!({"op": "replace", "path": "active", "value": false}),
                json!({"op": "remove", "path": "title"}),
                json!({"op": "add", "path": "name.familyName", "value": "Lee"}),
                json!({"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Ops"}),
                json!({"op": "add", "path": format!("{ENTERPRISE}:manager.value"), "value": "m1"}),
            ]
        );
        assert!(!patch.appends);
        assert_eq!(patch.body()["schemas"], json!([PATCH_OP]));
    }

    #[test]
    fn an_existing_element_is_changed_through_its_filter() {
        let m = scim_mapping();
        let r = record(
            &m,
            json!({"id": "1", "userPrincipalName": "a@x", "mail": "new@x"}),
        );
        let data = object(json!({
            "id": "u1",
            "emails": [{"type": "home", "value": "h@x"}, {"type": "work", "value": "old@x", "primary": true}],
        }));
        let target = r#"emails[type eq "work"].value"#;
        let patch = build(
            &[change(target, Some(json!("old@x")), Some(json!("new@x")))],
            &data,
            &r,
        );
        assert_eq!(
            patch.operations,
            vec![json!({"op": "replace", "path": target, "value": "new@x"})]
        );
    }

    #[test]
    fn a_missing_element_is_appended_whole_once() {
        let m = scim_mapping();
        let r = record(
            &m,
            json!({"id": "1", "userPrincipalName": "a@x", "mail": "a@x", "city": "Oslo", "country": "NO"}),
        );
        let data = object(json!({"id": "u1", "emails": [{"type": "home", "value": "h@x"}]}));
        let changes = [
            change(r#"emails[type eq "work"].value"#, None, Some(json!("a@x"))),
            change(
                r#"addresses[type eq "work"].locality"#,
                None,
                Some(json!("Oslo")),
            ),
            change(
                r#"addresses[type eq "work"].country"#,
                None,
                Some(json!("NO")),
            ),
        ];
        let patch = build(&changes, &data, &r);
        assert_eq!(
            patch.operations,
            vec![
                json!({"op": "add", "path": "emails", "value": [{"type": "work", "value": "a@x", "primary": true}]}),
                json!({"op": "add", "path": "addresses", "value": [{"type": "work", "locality": "Oslo", "country": "NO"}]}),
            ]
        );
        assert!(patch.appends);
    }

    #[test]
    fn an_element_whose_values_all_go_is_removed() {
        let m = scim_mapping();
        let r = record(&m, json!({"id": "1", "userPrincipalName": "a@x"}));
        let data = object(json!({
            "id": "u1",
            "phoneNumbers": [{"type": "work", "value": "1"}, {"type": "mobile", "value": "2"}],
            "addresses": [{"type": "work", "locality": "Oslo", "country": "NO"}],
        }));
        let changes = [
            change(
                r#"phoneNumbers[type eq "mobile"].value"#,
                Some(json!("2")),
                None,
            ),
            change(
                r#"addresses[type eq "work"].locality"#,
                Some(json!("Oslo")),
                None,
            ),
            // No element, nothing to remove.
            change(
                r#"phoneNumbers[type eq "fax"].value"#,
                Some(json!("3")),
                None,
            ),
        ];
        let patch = build(&changes, &data, &r);
        assert_eq!(
            patch.operations,
            vec![
                json!({"op": "remove", "path": r#"phoneNumbers[type eq "mobile"]"#}),
                json!({"op": "remove", "path": r#"addresses[type eq "work"].locality"#}),
            ]
        );
    }
}
