//! Reading what a SCIM server sends (users, list responses, errors) without trusting it,
//! and writing what it reads (attribute paths and filter values).
//!
//! Answers come from a system userload does not control: a missing id, an id that is a
//! number, a `Resources` that is not a list or a count far beyond reason becomes an error
//! that says what was wrong, never a panic and never a guess.

use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::super::{RawData, RawUser, TargetError, TargetUser};
use crate::diag::shorten;
use crate::mapping::RawObject;
use crate::mapping::path::TargetSeg;

/// The most users one listing may claim; more is taken for a broken count.
pub(super) const MAX_TOTAL: u64 = 50_000_000;

/// How much of an error body is repeated in messages.
const DETAIL_CHARS: usize = 200;

/// A mapping target path as a SCIM attribute path: `name.givenName`,
/// `emails[type eq "work"].value`, `urn:…:User:manager.value`. Filter values are always
/// written with double quotes, whichever quotes the mapping used.
pub(super) fn scim_path(segs: &[TargetSeg]) -> String {
    let mut out = String::new();
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            TargetSeg::Key(key) if i == 0 => out.push_str(key),
            TargetSeg::Key(key) => {
                let after_urn = i == 1 && is_urn(&segs[0]);
                out.push(if after_urn { ':' } else { '.' });
                out.push_str(key);
            }
            TargetSeg::Select { attr, value } => {
                out.push('[');
                out.push_str(attr);
                out.push_str(" eq ");
                out.push_str(&quote(value));
                out.push(']');
            }
        }
    }
    out
}

fn is_urn(seg: &TargetSeg) -> bool {
    matches!(seg, TargetSeg::Key(k) if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")))
}

/// A string as a SCIM filter value: a JSON string, so `"` and `\` are escaped.
pub(super) fn quote(value: &str) -> String {
    Json::from(value).to_string()
}

/// `attr eq value` for a filter, or `None` when the value cannot be compared (a list, an
/// object, null).
pub(super) fn eq_filter(attr: &str, value: &Json) -> Option<String> {
    let literal = match value {
        Json::String(s) => quote(s),
        Json::Number(_) | Json::Bool(_) => value.to_string(),
        Json::Null | Json::Array(_) | Json::Object(_) => return None,
    };
    Some(format!("{attr} eq {literal}"))
}

/// The value at a target path in a SCIM resource (attribute names match without regard to
/// case, as SCIM says; a value filter picks the first element whose attribute is the value).
pub(super) fn value_at<'a>(data: &'a Map<String, Json>, segs: &[TargetSeg]) -> Option<&'a Json> {
    let (first, rest) = segs.split_first()?;
    let TargetSeg::Key(key) = first else {
        return None;
    };
    let mut value = member(data, key)?;
    for seg in rest {
        value = match seg {
            TargetSeg::Key(k) => member(value.as_object()?, k)?,
            TargetSeg::Select {
                attr,
                value: wanted,
            } => value.as_array()?.iter().find(|e| picks(e, attr, wanted))?,
        };
    }
    Some(value)
}

/// Whether the element `e` of a multi-valued attribute is the one `[attr eq "wanted"]` picks.
pub(super) fn picks(e: &Json, attr: &str, wanted: &str) -> bool {
    e.as_object()
        .and_then(|o| member(o, attr))
        .and_then(Json::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
}

/// An attribute of an object, its name matched exactly first and then without case.
pub(super) fn member<'a>(object: &'a Map<String, Json>, name: &str) -> Option<&'a Json> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Whether the target path names `userName` or an e-mail address, whose values SCIM
/// compares without regard to case (RFC 7643 §4.1.1, §4.1.2).
pub(super) fn folds_case(segs: &[TargetSeg]) -> bool {
    let keys: Vec<&str> = segs
        .iter()
        .filter_map(|s| match s {
            TargetSeg::Key(k) => Some(k.as_str()),
            TargetSeg::Select { .. } => None,
        })
        .collect();
    match keys.as_slice() {
        [name] => name.eq_ignore_ascii_case("userName") || name.eq_ignore_ascii_case("emails"),
        [emails, value] => {
            emails.eq_ignore_ascii_case("emails") && value.eq_ignore_ascii_case("value")
        }
        _ => false,
    }
}

/// Parses a mapping target path; a path the mapping accepted always parses, but should one
/// not, it is taken as one attribute name.
pub(super) fn segments(target: &str) -> Vec<TargetSeg> {
    crate::mapping::path::target(target).unwrap_or_else(|_| vec![TargetSeg::Key(target.into())])
}

/// Whether two values of a field are the same for the target (ignoring case when the field
/// folds it).
pub(super) fn same(a: &Json, b: &Json, fold: bool) -> bool {
    match (a, b) {
        (Json::String(x), Json::String(y)) if fold => x.eq_ignore_ascii_case(y) || x == y,
        _ => a == b,
    }
}

/// A user from a resource the server sent; `etag` from the answer's header wins over
/// `meta.version`.
pub(super) fn user(resource: Json, etag: Option<String>) -> Result<TargetUser, TargetError> {
    let Json::Object(data) = resource else {
        return Err(TargetError::Malformed(format!(
            "a user is {}, not an object",
            kind(&resource)
        )));
    };
    let id = user_id(data.get("id"))?;
    let version = version_of(data.get("meta").and_then(|m| m.get("version")));
    Ok(TargetUser {
        id,
        data,
        etag: etag.filter(|e| !e.is_empty()).or(version),
    })
}

/// The id of the user a create answered with, read without building the rest of the user
/// (the writer needs nothing else); an answer that is not a user object is refused exactly
/// as [`user`] refuses it.
pub(super) fn created_id(body: &[u8]) -> Result<String, TargetError> {
    let members = std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<RawObject<'_>>(text).ok());
    match members.as_ref().and_then(|m| m.get("id")) {
        // Text taken from a parsed document is valid JSON.
        Some(id) => user_id(Some(&serde_json::from_str(id).unwrap_or(Json::Null))),
        None => user(json(body)?, None).map(|u| u.id),
    }
}

/// A user's id, as its `id` member holds it.
fn user_id(id: Option<&Json>) -> Result<String, TargetError> {
    match id {
        Some(Json::String(id)) if !id.trim().is_empty() => Ok(id.clone()),
        Some(other) => Err(TargetError::Malformed(format!(
            "a user's id is {}, not a string",
            kind(other)
        ))),
        None => Err(TargetError::Malformed("a user has no id".into())),
    }
}

/// A user's version, as its `meta.version` holds it (none when empty).
fn version_of(version: Option<&Json>) -> Option<String> {
    version
        .and_then(Json::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// One page of a `GET /Users`.
#[derive(Debug)]
pub(super) struct Page {
    /// `totalResults`, when the server gave a usable one.
    pub(super) total: Option<u64>,
    /// The users on the page.
    pub(super) users: Vec<TargetUser>,
}

/// Reads a list response.
pub(super) fn page(body: &[u8]) -> Result<Page, TargetError> {
    let Json::Object(mut list) = json(body)? else {
        return Err(TargetError::Malformed(
            "a list of users is not a JSON object".into(),
        ));
    };
    let total = total(list.get("totalResults"))?;
    let resources = match list.remove("Resources") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items,
        Some(other) => {
            return Err(TargetError::Malformed(format!(
                "Resources is {}, not a list",
                kind(&other)
            )));
        }
    };
    let users = resources
        .into_iter()
        .map(|r| user(r, None))
        .collect::<Result<_, _>>()?;
    Ok(Page { total, users })
}

/// `totalResults`, when usable.
fn total(given: Option<&Json>) -> Result<Option<u64>, TargetError> {
    match given {
        None | Some(Json::Null) => Ok(None),
        Some(n) => match n.as_u64() {
            Some(n) if n <= MAX_TOTAL => Ok(Some(n)),
            _ => Err(TargetError::Malformed(format!(
                "totalResults is {}",
                shorten(&n.to_string(), 40)
            ))),
        },
    }
}

/// One page of a `GET /Users` as listed: each user read only as far as its members,
/// borrowed from the answer's body.
#[derive(Debug)]
pub(super) struct RawPage<'a> {
    /// `totalResults`, when the server gave a usable one.
    pub(super) total: Option<u64>,
    /// The users on the page.
    pub(super) users: Vec<RawUser<'a>>,
}

/// Reads a list response, each user only as far as its members: only its id and
/// `meta.version` are parsed. A response out of the ordinary (a member name written with
/// escapes, a user that is not an object) is read whole by [`page`], with its errors.
pub(super) fn raw_page(body: &[u8]) -> Result<RawPage<'_>, TargetError> {
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(rename = "totalResults", default, borrow)]
        total: Option<&'a RawValue>,
        #[serde(rename = "Resources", default, borrow)]
        resources: Option<Vec<RawObject<'a>>>,
    }
    // Checked as UTF-8 once for the whole page, rather than member by member; each user's
    // members found in the pass that checks the page.
    let list = std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<List<'_>>(text).ok())
        .filter(|_| {
            // A list response is an object (a derived reader would take a JSON list too).
            body.trim_ascii_start().starts_with(b"{")
        });
    // A count that is not JSON's own (1e999) is left to the whole parse, which refuses it.
    let given = list
        .as_ref()
        .and_then(|l| l.total)
        .map(|t| serde_json::from_str::<Json>(t.get()));
    let (Some(list), None | Some(Ok(_))) = (list, &given) else {
        let page = page(body)?;
        let users = page
            .users
            .into_iter()
            .map(|u| RawUser {
                id: u.id,
                etag: u.etag,
                data: RawData::Parsed(u.data),
            })
            .collect();
        return Ok(RawPage {
            total: page.total,
            users,
        });
    };
    let total = total(given.and_then(Result::ok).as_ref())?;
    let users = list
        .resources
        .unwrap_or_default()
        .into_iter()
        .map(raw_user)
        .collect::<Result<_, _>>()?;
    Ok(RawPage { total, users })
}

/// A listed user kept as its members; its id and version read as [`user`] reads them.
fn raw_user(members: RawObject<'_>) -> Result<RawUser<'_>, TargetError> {
    // Text taken from a parsed document is valid JSON.
    let parse = |value: &str| serde_json::from_str(value).unwrap_or(Json::Null);
    let id = user_id(members.get("id").map(parse).as_ref())?;
    let version = members
        .get("meta")
        .and_then(|meta| match RawObject::parse(meta) {
            Ok(Some(meta)) => meta.get("version").map(parse),
            Ok(None) => None,
            // A member name written with escapes: the meta parsed whole.
            Err(_) => parse(meta).get("version").cloned(),
        });
    Ok(RawUser {
        id,
        etag: version_of(version.as_ref()),
        data: RawData::Members(members),
    })
}

/// A JSON body, or why it is not one.
pub(super) fn json(body: &[u8]) -> Result<Json, TargetError> {
    serde_json::from_slice(body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        TargetError::Malformed(format!(
            "not JSON ({e}): {}",
            shorten(start.trim(), DETAIL_CHARS)
        ))
    })
}

/// What an error answer says: the SCIM error's `detail` (with its `scimType`), else the
/// start of the body; shortened.
pub(super) fn detail(body: &[u8]) -> String {
    let parsed: Option<Json> = serde_json::from_slice(body).ok();
    let said = parsed.as_ref().and_then(|error| {
        let text = error.get("detail").and_then(Json::as_str)?.trim();
        let scim_type = error.get("scimType").and_then(Json::as_str);
        Some(match scim_type {
            Some(t) if !t.is_empty() => format!("{t}: {text}"),
            _ => text.to_owned(),
        })
    });
    let text = said.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        "no details".to_owned()
    } else {
        shorten(
            &text.split_whitespace().collect::<Vec<_>>().join(" "),
            DETAIL_CHARS,
        )
    }
}

/// `an object`, `a number`… for messages about unexpected JSON.
fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::path::SCIM_CORE;
    use serde_json::json;

    #[test]
    fn paths_are_written_in_scim_syntax() {
        assert_eq!(scim_path(&segments("name.givenName")), "name.givenName");
        assert_eq!(
            scim_path(&segments("emails[type eq 'work'].value")),
            "emails[type eq \"work\"].value"
        );
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            scim_path(&segments(&format!("{urn}:manager.value"))),
            format!("{urn}:manager.value")
        );
        assert_eq!(
            scim_path(&segments(&format!("{SCIM_CORE}:userName"))),
            "userName"
        );
    }

    #[test]
    fn a_created_id_is_read_as_the_whole_user_would_give_it() {
        let answers: [&[u8]; 8] = [
            br#"{"schemas":[],"id":"2819c223","meta":{"version":"W/\"1\""},"userName":"a"}"#,
            br#"{"id":"a\u00e9b"}"#,
            br#"{"\u0069d":"escaped name"}"#,
            br#"{"id":7}"#,
            br#"{"id":"  "}"#,
            br#"{"userName":"no id"}"#,
            br#"[{"id":"x"}]"#,
            b"<html>busy</html>",
        ];
        for answer in answers {
            let whole = json(answer).and_then(|j| user(j, None)).map(|u| u.id);
            assert_eq!(
                format!("{:?}", created_id(answer)),
                format!("{whole:?}"),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
        assert_eq!(created_id(answers[1]).unwrap(), "a\u{e9}b");
    }

    #[test]
    fn filter_values_are_json_strings() {
        assert_eq!(
            eq_filter("userName", &json!("a\"b\\c")).unwrap(),
            r#"userName eq "a\"b\\c""#
        );
        assert_eq!(eq_filter("active", &json!(true)).unwrap(), "active eq true");
        assert_eq!(eq_filter("emails", &json!(["x"])), None);
        assert_eq!(eq_filter("x", &Json::Null), None);
    }

    #[test]
    fn case_folding_follows_the_attribute() {
        assert!(folds_case(&segments("userName")));
        assert!(folds_case(&segments("username")));
        assert!(folds_case(&segments("emails[type eq \"work\"].value")));
        assert!(folds_case(&segments(&format!("{SCIM_CORE}:userName"))));
        assert!(!folds_case(&segments("externalId")));
        assert!(!folds_case(&segments("name.givenName")));
        assert!(!folds_case(&segments(
            "phoneNumbers[type eq \"work\"].value"
        )));
    }

    #[test]
    fn values_are_read_by_target_path() {
        let data = json!({
            "id": "1",
            "Name": {"givenName": "Ann"},
            "emails": [{"type": "home", "value": "h"}, {"type": "Work", "value": "w"}],
        });
        let data = data.as_object().unwrap();
        assert_eq!(
            value_at(data, &segments("name.givenName")),
            Some(&json!("Ann"))
        );
        assert_eq!(
            value_at(data, &segments("emails[type eq \"work\"].value")),
            Some(&json!("w"))
        );
        assert_eq!(value_at(data, &segments("title")), None);
        assert_eq!(value_at(data, &segments("emails.value")), None);
    }

    #[test]
    fn hostile_users_are_errors() {
        assert!(matches!(
            user(json!({"id": 7}), None),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            user(json!({"id": " "}), None),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            user(json!([1]), None),
            Err(TargetError::Malformed(_))
        ));
        let u = user(json!({"id": "a", "meta": {"version": "W/\"3\""}}), None).unwrap();
        assert_eq!(u.etag.as_deref(), Some("W/\"3\""));
        let u = user(
            json!({"id": "a", "meta": {"version": 3}}),
            Some("\"x\"".into()),
        )
        .unwrap();
        assert_eq!(u.etag.as_deref(), Some("\"x\""));
    }

    #[test]
    fn hostile_pages_are_errors() {
        assert!(page(b"<html>").is_err());
        assert!(page(br#"{"Resources": {"id": "1"}}"#).is_err());
        assert!(page(br#"{"totalResults": -1, "Resources": []}"#).is_err());
        assert!(page(br#"{"totalResults": 1e300, "Resources": []}"#).is_err());
        assert!(page(br#"{"totalResults": 99999999999999999999999, "Resources": []}"#).is_err());
        assert!(page(br#"{"totalResults": 1, "Resources": [{"id": 1}]}"#).is_err());
        let p = page(br#"{"totalResults": 1, "Resources": [{"id": "1"}]}"#).unwrap();
        assert_eq!((p.total, p.users.len()), (Some(1), 1));
        let p = page(br#"{"Resources": null}"#).unwrap();
        assert_eq!((p.total, p.users.len()), (None, 0));
    }

    #[test]
    fn error_details_are_short() {
        let body = json!({"status": "400", "scimType": "invalidValue", "detail": "bad\n  value"});
        assert_eq!(
            detail(body.to_string().as_bytes()),
            "invalidValue: bad value"
        );
        assert_eq!(detail(b""), "no details");
        assert!(detail("x".repeat(5000).as_bytes()).chars().count() <= DETAIL_CHARS + 1);
    }
}
