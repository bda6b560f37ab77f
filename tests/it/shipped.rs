//! The files shipped with userload stay true: every example filter passes its own samples,
//! docs/filters.md lists every property a filter may use, and the example configs and
//! docs/configuration.md name every config key.

use std::collections::{BTreeMap, BTreeSet};

use odata::Filter;
use odata::catalog::{self, Kind};
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
fn docs_list_every_filterable_property() {
    let readme = std::fs::read_to_string(repo().join("docs/filters.md")).unwrap();
    for property in catalog::USER {
        let filterable = property.filter.is_filterable()
            || catalog::parts(property.kind)
                .is_some_and(|parts| parts.iter().any(|p| p.filter.is_filterable()));
        if filterable && property.kind != Kind::Extension {
            assert!(
                readme.contains(&format!("`{}", property.name)),
                "docs/filters.md does not list the filterable property {}",
                property.name
            );
        }
    }
}

/// The keys a config file of `text` names per section, written or commented out
/// (`key = …`, `# key = …`), the Oomnitza aliases aside.
fn example_keys(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let bare = line.trim_start_matches(['#', ';']).trim_start();
        let Some((key, _)) = bare.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let one_word = !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if one_word && section != "settings" && !section.is_empty() {
            keys.entry(section.clone())
                .or_default()
                .insert(key.to_owned());
        }
    }
    keys
}

/// The keys the config reference (docs/configuration.md) lists per section.
fn readme_keys(readme: &str) -> BTreeMap<String, BTreeSet<String>> {
    let start = readme.find("## Every key").unwrap();
    let table = &readme[start..];
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in table
        .lines()
        .skip_while(|l| !l.starts_with("| section"))
        .skip(2)
    {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Some(name) = cells[1]
            .strip_prefix("`[")
            .and_then(|c| c.strip_suffix("]`"))
        {
            section = name.to_owned();
        }
        if section == "settings" {
            continue;
        }
        for key in cells[2].split(',') {
            let key = key.trim().trim_matches('`');
            keys.entry(section.clone())
                .or_default()
                .insert(key.to_owned());
        }
    }
    keys
}

#[test]
fn the_examples_and_the_docs_name_every_config_key() {
    let known: BTreeMap<String, BTreeSet<String>> = userload::config::SECTIONS
        .iter()
        .map(|(s, keys)| (s.to_string(), keys.iter().map(|k| k.to_string()).collect()))
        .collect();
    let readme = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    assert_eq!(readme_keys(&readme), known, "docs/configuration.md");
    for example in ["config.ini.example", "examples/userload.toml"] {
        let text = std::fs::read_to_string(repo().join(example)).unwrap();
        assert_eq!(example_keys(&text), known, "{example}");
    }
}
