//! A mapping file's own `[[test]]` cases: a Graph user and the record (or the skip) the
//! mapping must make of it. Run by `userload mapping test` and by the test suite, so a
//! shipped or edited mapping proves itself before it touches a target.

use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

use super::{Context, Mapping};

impl Mapping {
    /// The `[[test]]` cases of the mapping file.
    pub fn tests(&self) -> &[TestCase] {
        &self.tests
    }

    /// Runs every `[[test]]` of the mapping file.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        self.tests.iter().map(|t| self.run_test(t)).collect()
    }

    fn run_test(&self, test: &TestCase) -> TestOutcome {
        let ctx = Context {
            settings: &test.settings,
            sync_time: &test.sync_time,
        };
        let failure = match (&test.expect, self.map(&test.user, &ctx)) {
            (Expectation::Record(expected), Ok(record)) => {
                let actual = Json::Object(record.to_json());
                (actual != *expected).then(|| record_difference(expected, &actual))
            }
            (Expectation::Record(_), Err(skip)) => Some(format!("skipped: {skip}")),
            (Expectation::Skip(reason), Err(skip)) => {
                let said = skip.to_string();
                (!said.contains(reason.as_str())).then(|| {
                    format!("skipped, but for another reason: {said} (expected {reason:?})")
                })
            }
            (Expectation::Skip(reason), Ok(record)) => Some(format!(
                "expected a skip ({reason:?}), got {}",
                Json::Object(record.to_json())
            )),
        };
        TestOutcome {
            name: test.name.clone(),
            failure,
        }
    }
}

/// The fields two records disagree on, one line each.
fn record_difference(expected: &Json, actual: &Json) -> String {
    let empty = Map::new();
    let e = expected.as_object().unwrap_or(&empty);
    let a = actual.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&Json>| v.map_or("(absent)".to_string(), Json::to_string);
    keys.into_iter()
        .filter(|k| e.get(*k) != a.get(*k))
        .map(|k| format!("`{k}`: expected {}, got {}", show(e.get(k)), show(a.get(k))))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One `[[test]]` of a mapping file.
#[derive(Debug)]
pub struct TestCase {
    /// Its `name`.
    pub name: String,
    /// The Graph user.
    pub user: Json,
    /// The settings the test maps with.
    pub settings: BTreeMap<String, Json>,
    /// The connector sync time the test maps with.
    pub sync_time: String,
    /// What the mapping must make of the user.
    pub expect: Expectation,
}

/// What a test expects.
#[derive(Debug)]
pub enum Expectation {
    /// Exactly this record.
    Record(Json),
    /// A skip whose reason contains this text.
    Skip(String),
}

/// How one test went.
#[derive(Debug)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// What went wrong; `None` if the test passed.
    pub failure: Option<String>,
}

/// The sync time tests map with unless they say otherwise.
pub const TEST_SYNC_TIME: &str = "2024-01-01T00:00:00Z";
