//! Graph users saved to a file: for trying filters and mappings without a tenant.
//!
//! Accepted shapes, so that admins can paste what they already have:
//! - a JSON array of user objects;
//! - a Graph response page, `{"value": [ … ]}` (e.g. copied from Graph Explorer);
//! - expectations, `{"match": [ … ], "no_match": [ … ]}` (the filter sample files);
//! - JSON Lines, one user object per line (`.jsonl`).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a users file cannot be used; the message names the file and the place in it.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    /// The file cannot be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is read but its content is not users in a shape we take.
    #[error("{}: {problem}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        problem: ShapeError,
    },
}

/// What is wrong inside a users file, and where.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    /// Not JSON at this line and column.
    #[error("line {line}, column {column}: {source}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// An item that should be a user object is something else.
    #[error("{place} is not a user object")]
    NotAnObject {
        /// Which item, e.g. `item 3 of the array` or `line 7`.
        place: String,
    },
    /// A key that must hold an array of users holds something else.
    #[error("`{key}` must be an array of users")]
    NotAnArray {
        /// `value`, `match` or `no_match`.
        key: &'static str,
    },
    /// The top level is none of the shapes we take.
    #[error(
        "expected an array of users, {{\"value\": [...]}}, or {{\"match\": [...], \"no_match\": [...]}}"
    )]
    UnknownShape,
}

/// The users in a file, and what a filter is expected to do with them, if the file says.
#[derive(Debug, Default)]
pub struct UsersFile {
    /// Users with no expectation.
    pub users: Vec<Value>,
    /// Users a filter must accept.
    pub must_match: Vec<Value>,
    /// Users a filter must reject.
    pub must_not_match: Vec<Value>,
}

impl UsersFile {
    /// Reads users in any of the shapes above, as JSON Lines if the name ends in `.jsonl`;
    /// errors name the file and the place.
    pub fn load(path: &Path) -> Result<UsersFile, UsersFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_jsonl = path.extension().is_some_and(|e| e == "jsonl");
        let parsed = if is_jsonl {
            Self::from_json_lines(&text)
        } else {
            serde_json::from_str(&text)
                .map_err(|source| ShapeError::Json {
                    line: source.line(),
                    column: source.column(),
                    source,
                })
                .and_then(Self::from_json)
        };
        parsed.map_err(|problem| UsersFileError::Content {
            path: path.to_owned(),
            problem,
        })
    }

    fn from_json_lines(text: &str) -> Result<UsersFile, ShapeError> {
        let mut users = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let user: Value = serde_json::from_str(line).map_err(|source| ShapeError::Json {
                line: n + 1,
                column: source.column(),
                source,
            })?;
            users.push(expect_object(user, &format!("line {}", n + 1))?);
        }
        Ok(UsersFile {
            users,
            ..UsersFile::default()
        })
    }

    fn from_json(value: Value) -> Result<UsersFile, ShapeError> {
        match value {
            Value::Array(items) => Ok(UsersFile {
                users: objects(items, "the array")?,
                ..UsersFile::default()
            }),
            Value::Object(mut map) if map.contains_key("value") => match map.remove("value") {
                Some(Value::Array(items)) => Ok(UsersFile {
                    users: objects(items, "`value`")?,
                    ..UsersFile::default()
                }),
                _ => Err(ShapeError::NotAnArray { key: "value" }),
            },
            Value::Object(mut map) if map.contains_key("match") || map.contains_key("no_match") => {
                let mut take = |key: &'static str| match map.remove(key) {
                    Some(Value::Array(items)) => objects(items, &format!("`{key}`")),
                    None => Ok(Vec::new()),
                    Some(_) => Err(ShapeError::NotAnArray { key }),
                };
                Ok(UsersFile {
                    users: Vec::new(),
                    must_match: take("match")?,
                    must_not_match: take("no_match")?,
                })
            }
            _ => Err(ShapeError::UnknownShape),
        }
    }

    /// Whether the file holds no users at all, with or without expectations.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.must_match.is_empty() && self.must_not_match.is_empty()
    }
}

fn objects(items: Vec<Value>, place: &str) -> Result<Vec<Value>, ShapeError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| expect_object(item, &format!("item {} of {place}", i + 1)))
        .collect()
}

fn expect_object(value: Value, place: &str) -> Result<Value, ShapeError> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(ShapeError::NotAnObject {
            place: place.to_owned(),
        })
    }
}

/// A short name for a user in reports: UPN, else display name, else id.
pub fn label(user: &Value) -> String {
    ["userPrincipalName", "displayName", "id"]
        .iter()
        .find_map(|k| user.get(k).and_then(Value::as_str))
        .unwrap_or("(no userPrincipalName, displayName or id)")
        .to_string()
}
