//! The mapping file's own `[[test]]` cases, made ready to run: each with its sync time
//! checked and its expectation.

use super::Compiler;
use crate::mapping::spec::{Expect, Spec};
use crate::mapping::{Expectation, TEST_SYNC_TIME, TestCase};

impl Compiler<'_> {
    /// The `[[test]]` cases that are complete (the reader reported the rest).
    pub(super) fn tests(&mut self, spec: &Spec) -> Vec<TestCase> {
        let mut tests = Vec::new();
        for t in &spec.tests {
            let sync_time = match &t.sync_time {
                Some(at) if chrono::DateTime::parse_from_rfc3339(&at.value).is_err() => {
                    self.error(
                        &spec.source,
                        at.span.clone(),
                        "`sync_time` is not an RFC 3339 date-time",
                        Some("e.g. sync_time = \"2024-05-01T06:00:00Z\"".to_string()),
                    );
                    continue;
                }
                Some(at) => at.value.clone(),
                None => TEST_SYNC_TIME.to_string(),
            };
            let expect = match &t.expect {
                Some(Expect::Record(r)) => Expectation::Record(r.clone()),
                Some(Expect::Skip(s)) => Expectation::Skip(s.clone()),
                None => continue,
            };
            tests.push(TestCase {
                name: t.name.clone(),
                user: t.user.clone(),
                settings: t
                    .settings
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                sync_time,
                expect,
            });
        }
        tests
    }
}
