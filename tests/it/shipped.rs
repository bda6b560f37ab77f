//! The files shipped with userload stay true: every example filter passes its own samples,
//! and the README lists every property a filter may use.

use userload::filter::Filter;
use userload::graph::catalog::{self, Kind};
use userload::graph::users_file::{UsersFile, label};

use crate::util::repo;

#[test]
fn every_shipped_filter_passes_its_samples() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("filters")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "odata") {
            continue;
        }
        seen += 1;
        let name = path.display();
        let text = std::fs::read_to_string(&path).unwrap();
        let filter = Filter::compile(&text)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .unwrap_or_else(|| panic!("{name} is empty"));
        let samples = UsersFile::load(&path.with_extension("users.json")).unwrap();
        assert!(
            samples.must_match.len() >= 3 && samples.must_not_match.len() >= 3,
            "{name}: at least three users must match and three must not"
        );
        for user in &samples.must_match {
            assert!(filter.matches(user), "{name}: {} should match", label(user));
        }
        for user in &samples.must_not_match {
            assert!(
                !filter.matches(user),
                "{name}: {} should not match",
                label(user)
            );
        }
    }
    assert!(seen >= 4, "only {seen} shipped filters");
}

#[test]
fn readme_lists_every_filterable_property() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for property in catalog::USER {
        let filterable = property.filter.is_filterable()
            || catalog::parts(property.kind)
                .is_some_and(|parts| parts.iter().any(|p| p.filter.is_filterable()));
        if filterable && property.kind != Kind::Extension {
            assert!(
                readme.contains(&format!("`{}", property.name)),
                "README does not list the filterable property {}",
                property.name
            );
        }
    }
}
