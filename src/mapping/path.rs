//! The two kinds of path a mapping names: Graph paths it reads from a user
//! (`employeeOrgData.costCenter`, `manager.mail`, `businessPhones[0]`) and target paths it
//! writes into a record (`name.givenName`, `emails[type eq "work"].value`, SCIM URNs).
//!
//! Graph paths are checked against the property catalogue and rewritten in Graph's spelling
//! once, when the mapping is compiled, so that reading a user is a walk over plain keys.

use std::ops::Range;

use serde_json::Value as Json;

use crate::diag::{did_you_mean, nearest};
use odata::catalog::{self, Kind, Property};

/// The built-in value that holds the run's start time (Oomnitza's "Connector Sync Time").
pub const SYNC_TIME: &str = "connectorSyncTime";

/// The built-in list of the config's `input_groups` the user is a (transitive) member of,
/// by the names the config gives them. Read by the run before mapping, not from Graph's
/// user object.
pub const GROUPS: &str = "groups";

/// The built-in list of the user's licences as SKU part numbers (`SPE_E3`), made from
/// `assignedLicenses` by the run before mapping.
pub const LICENSES: &str = "licenses";

/// What the run adds to a user before mapping, beside Graph's properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// [`GROUPS`].
    Groups,
    /// [`LICENSES`].
    Licenses,
}

impl Input {
    /// The input a path's first name stands for, if any.
    pub fn named(name: &str) -> Option<Input> {
        if name.eq_ignore_ascii_case(GROUPS) {
            Some(Input::Groups)
        } else if name.eq_ignore_ascii_case(LICENSES) {
            Some(Input::Licenses)
        } else {
            None
        }
    }

    /// The key it has on the user.
    pub fn key(self) -> &'static str {
        match self {
            Input::Groups => GROUPS,
            Input::Licenses => LICENSES,
        }
    }
}

/// A mistake in a path, placed relative to the path's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    /// The bytes of the path text at fault.
    pub range: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl PathError {
    fn new(range: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            range,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One step of a path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSeg {
    /// `name`.
    Name(String),
    /// `[0]`.
    Index(usize),
}

/// One step into a Graph user, in Graph's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A property of an object.
    Key(String),
    /// An element of a list.
    Index(usize),
}

/// Where a value comes from: a Graph path, or the built-in sync time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphPath {
    /// A path into the Graph user (the manager's properties start with `manager`).
    User(Vec<Seg>),
    /// `connectorSyncTime`: the run's start time.
    SyncTime,
}

impl GraphPath {
    /// The value at this path in `user`; `None` for the sync time, which is not in the user.
    pub fn get<'u>(&self, user: &'u Json) -> Option<&'u Json> {
        let GraphPath::User(segs) = self else {
            return None;
        };
        segs.iter().try_fold(user, |value, seg| match seg {
            Seg::Key(k) => value.get(k.as_str()),
            Seg::Index(i) => value.get(*i),
        })
    }

    /// The top-level key this path starts with in the user (`manager` for the manager's).
    pub fn root(&self) -> Option<&str> {
        match self {
            GraphPath::User(segs) => match segs.first() {
                Some(Seg::Key(k)) => Some(k),
                _ => None,
            },
            GraphPath::SyncTime => None,
        }
    }

    /// The value at this path below its top-level property's value `root`.
    pub fn get_below_root<'u>(&self, root: &'u Json) -> Option<&'u Json> {
        let GraphPath::User(segs) = self else {
            return None;
        };
        segs.iter().skip(1).try_fold(root, |value, seg| match seg {
            Seg::Key(k) => value.get(k.as_str()),
            Seg::Index(i) => value.get(*i),
        })
    }

    /// The top-level property to name in `$select` (`None` for the manager, the sync time
    /// and the built-in inputs; `assignedLicenses` for `licenses`).
    pub fn select_name(&self) -> Option<&str> {
        match self.input() {
            Some(Input::Licenses) => return Some("assignedLicenses"),
            Some(Input::Groups) => return None,
            None => {}
        }
        match self {
            GraphPath::User(segs) => match segs.first() {
                Some(Seg::Key(k)) if k != "manager" => Some(k),
                _ => None,
            },
            GraphPath::SyncTime => None,
        }
    }

    /// The built-in input this path reads (`groups`, `licenses`), if it reads one.
    pub fn input(&self) -> Option<Input> {
        match self {
            GraphPath::User(segs) => match segs.first() {
                Some(Seg::Key(k)) if k == GROUPS => Some(Input::Groups),
                Some(Seg::Key(k)) if k == LICENSES => Some(Input::Licenses),
                _ => None,
            },
            GraphPath::SyncTime => None,
        }
    }

    /// The manager's property this path reads (`manager.mail` → `mail`).
    pub fn manager_property(&self) -> Option<&str> {
        match self {
            GraphPath::User(segs) => match segs.as_slice() {
                [Seg::Key(m), Seg::Key(p), ..] if m == "manager" => Some(p),
                _ => None,
            },
            GraphPath::SyncTime => None,
        }
    }
}

/// Splits `a.b[0].c` into steps, each with its place in `text`.
pub fn split(text: &str) -> Result<Vec<(RawSeg, Range<usize>)>, PathError> {
    let mut segs = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut expect_name = true;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => {
                let close = text[i..].find(']').map(|c| i + c).ok_or_else(|| {
                    PathError::new(i..text.len(), "unclosed `[`").hint("write an index as [0]")
                })?;
                let index = text[i + 1..close].trim().parse::<usize>().map_err(|_| {
                    PathError::new(i..close + 1, "a list index must be a whole number")
                        .hint("e.g. businessPhones[0]")
                })?;
                if segs.is_empty() {
                    return Err(PathError::new(i..close + 1, "a path starts with a name"));
                }
                segs.push((RawSeg::Index(index), i..close + 1));
                i = close + 1;
                expect_name = false;
            }
            b'.' if expect_name => {
                return Err(PathError::new(i..i + 1, "a name is missing here")
                    .hint("names are joined with single dots, e.g. employeeOrgData.costCenter"));
            }
            b'.' => {
                i += 1;
                expect_name = true;
                if i == bytes.len() {
                    return Err(PathError::new(i - 1..i, "the path ends with a dot"));
                }
            }
            _ if !expect_name => {
                return Err(PathError::new(i..i + 1, "expected `.` or `[` here"));
            }
            _ => {
                let end = text[i..]
                    .find(['.', '[', ']'])
                    .map_or(text.len(), |e| i + e);
                let name = &text[i..end];
                if let Some(bad) = name.find(|c: char| !(c.is_alphanumeric() || c == '_')) {
                    let at = i + bad;
                    let len = name[bad..].chars().next().map_or(1, char::len_utf8);
                    return Err(PathError::new(
                        at..at + len,
                        format!("`{}` cannot be part of a Graph path", &name[bad..bad + len]),
                    )
                    .hint("Graph paths are names joined with dots, e.g. manager.mail"));
                }
                segs.push((RawSeg::Name(name.to_string()), i..end));
                i = end;
                expect_name = false;
            }
        }
    }
    if segs.is_empty() {
        return Err(PathError::new(0..text.len(), "the path is empty"));
    }
    Ok(segs)
}

/// Checks steps against the catalogue; returns the path in Graph's spelling.
pub fn resolve(segs: &[(RawSeg, Range<usize>)]) -> Result<GraphPath, PathError> {
    let Some((RawSeg::Name(first), first_range)) = segs.first() else {
        let range = segs.first().map_or(0..0, |s| s.1.clone());
        return Err(PathError::new(range, "a path starts with a name"));
    };
    if first.eq_ignore_ascii_case(SYNC_TIME) {
        if let Some((_, range)) = segs.get(1) {
            return Err(PathError::new(
                range.clone(),
                format!("`{SYNC_TIME}` has no parts"),
            ));
        }
        return Ok(GraphPath::SyncTime);
    }
    if let Some(input) = Input::named(first) {
        let mut out = vec![Seg::Key(input.key().to_string())];
        for (seg, range) in &segs[1..] {
            match seg {
                RawSeg::Index(i) => out.push(Seg::Index(*i)),
                RawSeg::Name(_) => {
                    return Err(PathError::new(
                        range.clone(),
                        format!("`{}` is a list of names: it has no parts", input.key()),
                    )
                    .hint(format!(
                        "read the whole list, or one element: {}[0]",
                        input.key()
                    )));
                }
            }
        }
        return Ok(GraphPath::User(out));
    }
    let mut out = Vec::new();
    let mut rest = &segs[1..];
    let root = if first.eq_ignore_ascii_case("manager") {
        out.push(Seg::Key("manager".to_string()));
        let Some((RawSeg::Name(part), range)) = rest.first() else {
            return Err(PathError::new(
                first_range.clone(),
                "`manager` is an object: name one of its properties",
            )
            .hint("e.g. manager.mail or manager.displayName"));
        };
        rest = &rest[1..];
        user_property(part, range, true)?
    } else {
        user_property(first, first_range, false)?
    };
    out.push(Seg::Key(root.0));
    let mut kind = root.1;
    let mut name = root.2;
    for (seg, range) in rest {
        let (next, next_kind) = step(kind, &name, seg, range)?;
        name = match &next {
            Seg::Key(k) => k.clone(),
            Seg::Index(_) => format!("{name}[…]"),
        };
        out.push(next);
        kind = next_kind;
    }
    Ok(GraphPath::User(out))
}

/// A top-level user property: (Graph's spelling, kind, name for messages).
fn user_property(
    name: &str,
    range: &Range<usize>,
    of_manager: bool,
) -> Result<(String, Kind, String), PathError> {
    match catalog::user_property(name) {
        Some((p, canonical)) if !(of_manager && p.name == "manager") => {
            Ok((canonical.to_string(), p.kind, canonical.to_string()))
        }
        _ => Err(unknown_property(name, range.clone(), of_manager)),
    }
}

fn unknown_property(name: &str, range: Range<usize>, of_manager: bool) -> PathError {
    let message = if of_manager {
        format!("`{name}` is not a Graph user property (of the manager)")
    } else {
        format!("`{name}` is not a Graph user property")
    };
    let names = catalog::USER
        .iter()
        .map(|p| p.name)
        .chain((!of_manager).then_some(SYNC_TIME))
        .chain((!of_manager).then_some(GROUPS))
        .chain((!of_manager).then_some(LICENSES));
    let hint = if let Some(graph) = catalog::by_display_name(name) {
        format!("write `{graph}`")
    } else if let Some(near) = nearest(name, names) {
        format!("did you mean `{near}`?")
    } else {
        "see the property list in docs/filters.md; directory extensions are extension_<appId>_<name>"
            .to_string()
    };
    PathError::new(range, message).hint(hint)
}

/// One step below a property of `kind`.
fn step(
    kind: Kind,
    name: &str,
    seg: &RawSeg,
    range: &Range<usize>,
) -> Result<(Seg, Kind), PathError> {
    match (kind, seg) {
        (Kind::Object(parts), RawSeg::Name(part)) => match catalog::lookup(parts, part) {
            Some(p) => Ok((Seg::Key(p.name.to_string()), p.kind)),
            None => Err(unknown_part(name, part, parts, range)),
        },
        (Kind::StringCollection, RawSeg::Index(i)) => Ok((Seg::Index(*i), Kind::String)),
        (Kind::ObjectCollection(parts), RawSeg::Index(i)) => {
            Ok((Seg::Index(*i), Kind::Object(parts)))
        }
        (Kind::StringCollection | Kind::ObjectCollection(_), RawSeg::Name(_)) => {
            Err(PathError::new(range.clone(), format!("`{name}` is a list"))
                .hint(format!("pick an element first, e.g. {name}[0]")))
        }
        (_, RawSeg::Index(_)) => Err(PathError::new(
            range.clone(),
            format!("`{name}` is {}, not a list", kind.describe()),
        )),
        (_, RawSeg::Name(part)) => Err(PathError::new(
            range.clone(),
            format!("`{name}` is {} and has no part `{part}`", kind.describe()),
        )),
    }
}

fn unknown_part(name: &str, part: &str, parts: &[Property], range: &Range<usize>) -> PathError {
    let known: Vec<&str> = parts.iter().map(|p| p.name).collect();
    let hint = did_you_mean(part, known.iter().copied(), || {
        format!("the parts of `{name}` are: {}", known.join(", "))
    });
    PathError::new(range.clone(), format!("`{name}` has no part `{part}`")).hint(hint)
}

/// One step of a target path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSeg {
    /// An attribute of an object.
    Key(String),
    /// The element of a list whose `attr` equals `value`: `emails[type eq "work"]`.
    Select {
        /// The attribute that tells elements apart, e.g. `type`.
        attr: String,
        /// The value that picks this element, e.g. `work`.
        value: String,
    },
}

/// The SCIM core user schema: its attributes are written at the top of a record.
pub const SCIM_CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Parses a target field path. A SCIM URN prefix (`urn:…:User:department`) becomes one key
/// for the extension's object; the core schema's prefix is dropped.
pub fn target(text: &str) -> Result<Vec<TargetSeg>, PathError> {
    if text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        let Some(colon) = text.rfind(':').filter(|&c| c + 1 < text.len()) else {
            return Err(
                PathError::new(0..text.len(), "the URN names no attribute").hint(
                    "e.g. urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                ),
            );
        };
        let urn = &text[..colon];
        let rest = target_attrs(&text[colon + 1..], colon + 1)?;
        if urn.eq_ignore_ascii_case(SCIM_CORE) {
            return Ok(rest);
        }
        let mut segs = vec![TargetSeg::Key(urn.to_string())];
        segs.extend(rest);
        return Ok(segs);
    }
    target_attrs(text, 0)
}

/// `a.b`, `a[x eq "y"].b`; `base` is where `text` starts in the field's name.
fn target_attrs(text: &str, base: usize) -> Result<Vec<TargetSeg>, PathError> {
    let err = |r: Range<usize>, m: &str| PathError::new(base + r.start..base + r.end, m);
    let mut segs = Vec::new();
    let mut rest = text;
    let mut at = 0;
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = rest[..end].trim();
        if name.is_empty() {
            return Err(err(at..at + end.max(1), "a field name is missing here")
                .hint("names are joined with single dots, e.g. name.givenName"));
        }
        segs.push(TargetSeg::Key(name.to_string()));
        rest = &rest[end..];
        at += end;
        if rest.starts_with('[') {
            let close = rest.find(']').ok_or_else(|| {
                err(at..at + rest.len(), "unclosed `[`")
                    .hint("write a value filter as emails[type eq \"work\"].value")
            })?;
            let (attr, value) = value_filter(&rest[1..close]).ok_or_else(|| {
                err(
                    at..at + close + 1,
                    "expected a value filter such as [type eq \"work\"]",
                )
            })?;
            segs.push(TargetSeg::Select { attr, value });
            rest = &rest[close + 1..];
            at += close + 1;
            if !rest.starts_with('.') {
                return Err(err(
                    at.saturating_sub(1)..at,
                    "a value filter must be followed by a sub-attribute",
                )
                .hint("e.g. emails[type eq \"work\"].value"));
            }
        }
        if rest.is_empty() {
            return Ok(segs);
        }
        // `rest` starts with '.'.
        rest = &rest[1..];
        at += 1;
    }
}

/// `type eq "work"` → (`type`, `work`); single or double quotes.
fn value_filter(text: &str) -> Option<(String, String)> {
    let mut words = text.trim().splitn(3, char::is_whitespace);
    let attr = words.next()?.trim();
    let op = words.next()?.trim();
    let value = words.next()?.trim();
    let quoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))?;
    let valid_attr = !attr.is_empty() && attr.chars().all(|c| c.is_alphanumeric() || c == '_');
    (valid_attr && op.eq_ignore_ascii_case("eq")).then(|| (attr.to_string(), quoted.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(text: &str) -> Result<GraphPath, PathError> {
        resolve(&split(text)?)
    }

    #[test]
    fn graph_paths_take_graph_spelling() {
        let p = graph("EmployeeOrgData.costcenter").unwrap();
        assert_eq!(
            p,
            GraphPath::User(vec![
                Seg::Key("employeeOrgData".into()),
                Seg::Key("costCenter".into())
            ])
        );
        assert_eq!(p.select_name(), Some("employeeOrgData"));
        let m = graph("manager.MAIL").unwrap();
        assert_eq!(m.manager_property(), Some("mail"));
        assert_eq!(m.select_name(), None);
        assert_eq!(graph("connectorsynctime").unwrap(), GraphPath::SyncTime);
        let phone = graph("businessPhones[0]").unwrap();
        let user = serde_json::json!({"businessPhones": ["+1 555"]});
        assert_eq!(phone.get(&user), Some(&Json::from("+1 555")));
    }

    #[test]
    fn groups_and_licenses_are_built_in_inputs_read_from_the_user() {
        let groups = graph("Groups").unwrap();
        assert_eq!(groups.input(), Some(Input::Groups));
        assert_eq!(groups.select_name(), None);
        let user = serde_json::json!({"groups": ["IT-Admins"], "licenses": ["SPE_E3"]});
        assert_eq!(groups.get(&user), Some(&serde_json::json!(["IT-Admins"])));
        let first = graph("licenses[0]").unwrap();
        assert_eq!(first.input(), Some(Input::Licenses));
        // Licences come from assignedLicenses, which the query must select.
        assert_eq!(first.select_name(), Some("assignedLicenses"));
        assert_eq!(first.get(&user), Some(&Json::from("SPE_E3")));
        let e = graph("groups.name").unwrap_err();
        assert_eq!(e.range, 7..11);
        assert!(e.message.contains("has no parts"), "{}", e.message);
        assert!(graph("manager.groups").is_err());
    }

    #[test]
    fn graph_path_mistakes_are_placed() {
        let e = graph("employeeOrgData.costCentre").unwrap_err();
        assert_eq!(e.range, 16..26);
        assert_eq!(e.hint.as_deref(), Some("did you mean `costCenter`?"));
        let e = graph("givenNam").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `givenName`?"));
        assert!(
            graph("businessPhones.x")
                .unwrap_err()
                .message
                .contains("is a list")
        );
        assert!(graph("mail[0]").unwrap_err().message.contains("not a list"));
        assert!(graph("a..b").is_err());
        assert!(graph("mail.").is_err());
        assert!(graph("manager").is_err());
        assert!(graph("manager.manager").is_err());
        assert!(graph("x[1").is_err());
        assert!(graph("").is_err());
    }

    #[test]
    fn target_paths() {
        assert_eq!(
            target("emails[type eq \"work\"].value").unwrap(),
            [
                TargetSeg::Key("emails".into()),
                TargetSeg::Select {
                    attr: "type".into(),
                    value: "work".into()
                },
                TargetSeg::Key("value".into())
            ]
        );
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            target(&format!("{urn}:manager.value")).unwrap(),
            [
                TargetSeg::Key(urn.into()),
                TargetSeg::Key("manager".into()),
                TargetSeg::Key("value".into())
            ]
        );
        assert_eq!(
            target(&format!("{SCIM_CORE}:userName")).unwrap(),
            [TargetSeg::Key("userName".into())]
        );
        assert!(target("emails[type = work].value").is_err());
        assert!(target("emails[type eq \"work\"]").is_err());
        assert!(target("name..givenName").is_err());
        assert!(target("urn:x:").is_err());
    }
}
