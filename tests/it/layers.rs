//! The product's modules depend on each other in one direction only. Each top-level module of
//! `src/` has a layer; a module may name (`crate::x`) only modules of lower layers, never a
//! sibling of its own layer nor anything above it. That rules out import cycles by
//! construction. ARCHITECTURE.md draws the same layers.
//!
//! The simulators (`sim`) belong to tests, benchmarks and the binary's `demo`: no module of the
//! library may name them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::util::repo;

/// The layers, top first. A module may use the modules of the layers after its own.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    // The metrics read the run report, and the daemon serves them.
    &["metrics"],
    // The webhook and the HTML pages both read a run's report, side by side.
    &["notify", "html"],
    &["sync"],
    // A target writes the records a mapping makes, so it sits above the mapping.
    &["targets"],
    &["graph", "mapping", "state"],
    &["config"],
    &["filter"],
    &["http", "diag", "log", "scan", "spill"],
    &["secrets"],
];

/// The files that make up the binary rather than the library; they may use anything.
const BINARY: &[&str] = &["main.rs", "demo.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level module a file of `src/` belongs to (`src/sync/plan.rs` -> `sync`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// The code of a file without comments, string and character literals, so that prose or
/// text mentioning `crate::x` does not count as a use.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' && next == Some('\\') {
            // '\n', '\'', '\u{..}'
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // 'x'
        } else if c == '"' {
            // A raw string r#"…"# ends at a quote followed by as many hashes as opened it.
            let hashes = out.chars().rev().take_while(|&h| h == '#').count();
            let raw = out.trim_end_matches('#').ends_with('r');
            i += 1;
            while i < chars.len() {
                if !raw && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == '"'
                    && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes
                {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The top-level modules a piece of code names through `crate::`, including those inside
/// `use crate::{a::b, c}` groups.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // e.g. `$crate::` or another crate's path
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn modules_only_use_the_layers_below_their_own() {
    let src = repo().join("src");
    let mut wrong = Vec::new();
    for file in sources(&src) {
        let module = module_of(&src, &file);
        if module == "lib" || BINARY.contains(&format!("{module}.rs").as_str()) {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{}: module `{module}` has no layer; add it to LAYERS and ARCHITECTURE.md",
                file.display()
            ));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for used in crate_modules(&code) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer > own => {}
                Some(_) => wrong.push(format!(
                    "{}: `{module}` may not use `crate::{used}` (same layer or above)",
                    file.display()
                )),
                None => wrong.push(format!(
                    "{}: uses `crate::{used}`, which has no layer",
                    file.display()
                )),
            }
        }
        let names_sim = code
            .lines()
            .any(|l| l.trim_start().starts_with("use sim") || l.contains(" sim::"));
        if names_sim {
            wrong.push(format!(
                "{}: the library may not use the simulators",
                file.display()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_top_level_module_of_the_library_has_a_layer() {
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(!declared.is_empty());
    let missing: Vec<_> = declared.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

/// Every line the library writes for the admin goes through the one place that scrubs
/// secrets (`cli::emit`, behind `outln!`, `errln!`, `out!`, `err!`): nothing prints past it.
#[test]
fn the_library_prints_only_through_the_scrubbing_macros() {
    let src = repo().join("src");
    let mut wrong = Vec::new();
    for file in sources(&src) {
        let name = file.file_name().unwrap().to_string_lossy();
        if BINARY.contains(&name.as_ref()) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for printing in ["println!", "eprintln!", "print!", "eprint!", "dbg!"] {
            // A name ending in one of these (`outln!` does not) is another macro.
            let found = code
                .match_indices(printing)
                .any(|(at, _)| !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if found {
                wrong.push(format!("{}: {printing}", file.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "printing past the scrubbing: {wrong:?}");
}

#[test]
fn grouped_and_nested_uses_are_all_seen() {
    let code = code_only(
        "use crate::{config::Config, diag::{self, Problem}};\n\
         // crate::cli in a comment\n\
         let s = \"crate::sync in a \\\"string\";\n\
         let r = r#\"crate::notify \" in a raw string\"#;\n\
         let q = '\"'; let l: &'static str = \"\";\n\
         let x = crate::graph::users::pull();\n\
         macro_rules! m { () => { $crate::state } }\n",
    );
    let found: Vec<_> = crate_modules(&code).into_iter().collect();
    assert_eq!(found, ["config", "diag", "graph"]);
}
