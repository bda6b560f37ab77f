//! Turns a mapping file as written ([`Spec`]) into a [`Mapping`] ready to run, finding every
//! problem on the way: Graph paths that are not user properties, unknown converters and bad
//! arguments, regexes that do not compile, template syntax errors and unknown template
//! variables or helpers, fields without a source, duplicate target fields, settings the
//! config does not define. Each problem is placed in the file, down to the character inside
//! a template or a path where the text is written verbatim.
//!
//! Everything a run needs is prepared here once: templates are compiled into one handlebars
//! registry (strict mode, no HTML escaping), regexes are compiled with a size limit, lookup
//! tables are built, and the `$select` list is derived.

mod cases;
mod converters;
mod fields;
mod refers;
mod settings;
mod templates;
mod top;
mod walk;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use serde_json::Value as Json;

use super::convert::{Converter, Lookup};
use super::path::GraphPath;
use super::record::Shape;
use super::spec::{At, FieldSpec, Spec};
use super::{Compared, Field, Mapping, TargetType, ValueSource};
use crate::config::TargetKind;
use crate::diag::{Problem, SourceText};

/// What compiling a mapping needs to know beyond the file.
#[derive(Debug, Default)]
pub struct Options<'a> {
    /// The settings the config defines; `None` when there is no config to check against.
    pub settings: Option<&'a BTreeMap<String, Json>>,
    /// Fields from elsewhere (Oomnitza `mapping.FIELD` lines) that replace the file's field
    /// of the same name or are added to them.
    pub extra_fields: Vec<FieldSpec>,
    /// A match key set outside the file (Oomnitza `sync_field`), and where it was written.
    pub match_field: Option<(String, Arc<SourceText>, Range<usize>)>,
    /// The config's target kind, which the mapping's `target` must suit.
    pub target_kind: Option<TargetKind>,
    /// The groups the config names for `groups` (`input_groups`); `None` when there is no
    /// config to check against. A mapping that reads `groups` needs at least one.
    pub input_groups: Option<&'a [String]>,
}

/// Compiles a read mapping file; returns every problem if there is any.
pub fn compile(mut spec: Spec, options: Options<'_>) -> Result<Mapping, Vec<Problem>> {
    let mut c = Compiler {
        problems: Vec::new(),
        settings: options.settings,
        input_groups: options.input_groups,
        lookups: HashMap::new(),
        regexes: HashMap::new(),
        templates: Vec::new(),
        target: TargetType::Rest,
    };
    let src = Arc::clone(&spec.source);
    c.version(&spec);
    let target = c.target(&spec, options.target_kind);
    if let Some(t) = target {
        c.target = t;
    }
    c.lookups(&spec);
    let specs = with_extra_fields(std::mem::take(&mut spec.fields), options.extra_fields);
    let mut fields = c.fields(&specs);
    let matching = c.matching(
        &src,
        &spec.matching,
        options.match_field,
        &spec.top,
        &mut fields,
        &specs,
    );
    let active = c.active(&spec, &fields, &specs);
    let tests = c.tests(&spec);
    let registry = c.registry();
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let (select, manager_select) = select(&fields);
    let roots = roots(&mut fields);
    let target = target.unwrap_or(TargetType::Rest);
    let shape = Shape::new(
        fields.iter().map(|f| f.target.clone()).collect(),
        fields.iter().map(|f| f.path.clone()).collect(),
        fields.iter().map(|f| f.primary).collect(),
        target == TargetType::Scim,
    );
    let mut mapping = Mapping {
        name: src.name().to_string(),
        target,
        fields,
        matching: matching.unwrap_or_default(),
        active,
        templates: registry,
        select,
        manager_select,
        tests,
        roots,
        sorted_objects: objects_iterate_in_key_order(),
        shape: Arc::new(shape),
        origin: digest(&[src.text()]),
        recipe: digest(&[src.text()]),
        compared: Compared::default(),
    };
    mapping.compared = mapping.find_compared();
    Ok(mapping)
}

/// A short hex digest of `texts`, each length-prefixed so that no two lists share one.
pub(crate) fn digest(texts: &[&str]) -> String {
    let mut all = String::new();
    for text in texts {
        all.push_str(&text.len().to_string());
        all.push(':');
        all.push_str(text);
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, all.as_bytes());
    digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file's fields with fields from elsewhere laid over them. Oomnitza field names ignore
/// case: `mapping.user` replaces `USER`, keeping its spelling.
fn with_extra_fields(mut specs: Vec<FieldSpec>, extra_fields: Vec<FieldSpec>) -> Vec<FieldSpec> {
    for mut extra in extra_fields {
        match specs
            .iter_mut()
            .find(|f| f.target.value.eq_ignore_ascii_case(&extra.target.value))
        {
            Some(base) => {
                extra.target.value = base.target.value.clone();
                *base = extra;
            }
            None => specs.push(extra),
        }
    }
    specs
}

/// The top-level properties the fields' Graph sources read, sorted; notes each source's place.
fn roots(fields: &mut [Field]) -> Vec<String> {
    let mut roots: Vec<String> = fields
        .iter()
        .filter_map(|f| match &f.value {
            ValueSource::Graph(paths) => Some(paths),
            _ => None,
        })
        .flatten()
        .filter_map(|p| p.root().map(str::to_string))
        .collect();
    roots.sort();
    roots.dedup();
    for field in fields.iter_mut() {
        if let ValueSource::Graph(paths) = &field.value {
            field.roots = paths
                .iter()
                .map(|p| {
                    p.root()
                        .and_then(|r| roots.binary_search_by(|x| x.as_str().cmp(r)).ok())
                })
                .collect();
        }
    }
    roots
}

/// serde_json keeps objects sorted by key unless a crate in the build asks it to keep
/// insertion order instead; the engine's one-pass lookup relies on the former.
fn objects_iterate_in_key_order() -> bool {
    let mut probe = serde_json::Map::new();
    probe.insert("b".to_string(), Json::Null);
    probe.insert("a".to_string(), Json::Null);
    probe.keys().next().is_some_and(|k| k == "a")
}

/// A mapping being compiled: the problems found so far and what the parts compiled earlier
/// leave for the parts after them. Each concern adds its methods from its own file.
struct Compiler<'o> {
    problems: Vec<Problem>,
    settings: Option<&'o BTreeMap<String, Json>>,
    /// The config's `input_groups`, when there is a config.
    input_groups: Option<&'o [String]>,
    lookups: HashMap<String, Arc<Lookup>>,
    /// Regexes the templates use, by pattern.
    regexes: HashMap<String, Arc<regex::Regex>>,
    /// Compiled templates, by the field they fill.
    templates: Vec<(String, handlebars::Template)>,
    target: TargetType,
}

/// Maps a range inside a string value to the file: exact when the string is written verbatim,
/// the whole value otherwise.
pub(super) fn inside(src: &SourceText, at: &At<String>, range: Range<usize>) -> Range<usize> {
    match at.text_range(src) {
        Some(r) => {
            let start = (r.start + range.start).min(r.end);
            let end = (r.start + range.end).clamp(start, r.end);
            match (start == end, start < r.end) {
                (false, _) => start..end,
                (true, true) => start..start + 1,
                // At the very end: under the last character written.
                (true, false) => {
                    let last = src.text()[r.clone()]
                        .chars()
                        .next_back()
                        .map_or(0, char::len_utf8);
                    r.end - last..r.end
                }
            }
        }
        None => at.span.clone(),
    }
}

impl Compiler<'_> {
    /// Records a problem at `span` of `src`.
    pub(super) fn error(
        &mut self,
        src: &Arc<SourceText>,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let problem = Problem::error(src, span, message);
        self.problems.push(match hint {
            Some(h) => problem.with_hint(h),
            None => problem,
        });
    }
}

/// The top-level Graph properties and the manager's properties the fields read.
fn select(fields: &[Field]) -> (Vec<String>, Option<Vec<String>>) {
    let mut top: BTreeSet<String> = ["id", "accountEnabled"].map(str::to_string).into();
    let mut manager: BTreeSet<String> = BTreeSet::new();
    let mut note = |p: &GraphPath| {
        if let Some(name) = p.select_name() {
            top.insert(name.to_string());
        }
        if let Some(name) = p.manager_property() {
            manager.insert(name.to_string());
        }
    };
    for field in fields {
        match &field.value {
            ValueSource::Graph(paths) => paths.iter().for_each(&mut note),
            ValueSource::Template(t) => t.vars.iter().for_each(|(_, p)| note(p)),
            ValueSource::Constant(_) | ValueSource::Setting(_) => {}
        }
        for c in &field.convert {
            if let Converter::FirstNonEmpty(paths) = c {
                paths.iter().for_each(&mut note);
            }
        }
    }
    let manager = (!manager.is_empty()).then(|| manager.into_iter().collect());
    (top.into_iter().collect(), manager)
}
