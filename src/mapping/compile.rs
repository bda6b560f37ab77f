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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Handlebars, Path as HbsPath, PathSeg};
use serde_json::Value as Json;

use super::convert::{self, ArgError, Converter, Env, Lookup, Shared};
use super::path::{self, GraphPath, PathError, RawSeg, TargetSeg};
use super::record::Shape;
use super::spec::{Args, At, ConvertSpec, Expect, FieldSpec, Spec};
use super::{
    Active, Expectation, Field, Mapping, On, TEST_SYNC_TIME, TargetType, Template, TestCase,
    ValueSource,
};
use crate::config::TargetKind;
use crate::diag::{Problem, SourceText, did_you_mean, nearest};

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;
/// Deepest nesting of blocks and sub-expressions accepted in a template.
pub const MAX_TEMPLATE_DEPTH: usize = 16;

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
}

/// Compiles a read mapping file; returns every problem if there is any.
pub fn compile(mut spec: Spec, options: Options<'_>) -> Result<Mapping, Vec<Problem>> {
    let mut c = Compiler {
        problems: Vec::new(),
        settings: options.settings,
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
    let mut specs = std::mem::take(&mut spec.fields);
    // Oomnitza field names ignore case: `mapping.user` replaces `USER`, keeping its spelling.
    for mut extra in options.extra_fields {
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
    let mut fields: Vec<Field> = Vec::new();
    let mut written: Vec<(Vec<TargetSeg>, &FieldSpec)> = Vec::new();
    for field_spec in &specs {
        if let Some(field) = c.field(field_spec) {
            c.check_overlap(&written, &field.path, field_spec);
            written.push((field.path.clone(), field_spec));
            fields.push(field);
        }
    }
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
    Ok(Mapping {
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
    })
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

struct Compiler<'o> {
    problems: Vec<Problem>,
    settings: Option<&'o BTreeMap<String, Json>>,
    lookups: HashMap<String, Arc<Lookup>>,
    /// Regexes the templates use, by pattern.
    regexes: HashMap<String, Arc<regex::Regex>>,
    /// Compiled templates, by the field they fill.
    templates: Vec<(String, handlebars::Template)>,
    target: TargetType,
}

/// Maps a range inside a string value to the file: exact when the string is written verbatim,
/// the whole value otherwise.
fn inside(src: &SourceText, at: &At<String>, range: Range<usize>) -> Range<usize> {
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
    fn error(
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

    fn version(&mut self, spec: &Spec) {
        match &spec.version {
            Some(v) if v.value == 1 => {}
            Some(v) => self.error(
                &spec.source,
                v.span.clone(),
                format!("mapping format version {} is not supported", v.value),
                Some("this userload reads version = 1".to_string()),
            ),
            None => self.error(
                &spec.source,
                spec.top.clone(),
                "the mapping file does not say its format version",
                Some("add version = 1 at the top".to_string()),
            ),
        }
    }

    fn target(&mut self, spec: &Spec, kind: Option<TargetKind>) -> Option<TargetType> {
        let Some(at) = &spec.target else {
            self.error(
                &spec.source,
                spec.top.clone(),
                "the mapping file does not say what it maps to",
                Some("add target = \"scim\" (or oomnitza, snipeit, rest)".to_string()),
            );
            return None;
        };
        let Some((_, t)) = TargetType::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&at.value))
        else {
            let names = TargetType::ALL.map(|(n, _)| n);
            let hint = did_you_mean(&at.value, names, || {
                format!("choose one of: {}", names.join(", "))
            });
            self.error(
                &spec.source,
                at.span.clone(),
                format!("unknown target `{}`", at.value),
                Some(hint),
            );
            return None;
        };
        if let Some(kind) = kind.filter(|k| !t.suits(*k)) {
            self.error(
                &spec.source,
                at.span.clone(),
                format!(
                    "this mapping builds {} records, but the config's target is of type `{}`",
                    t.name(),
                    kind.name()
                ),
                Some("use a mapping made for the target type".to_string()),
            );
        }
        Some(*t)
    }

    fn lookups(&mut self, spec: &Spec) {
        for table in &spec.lookups {
            let mut entries = Vec::new();
            for (key, value) in &table.entries {
                if value.value.is_object() || value.value.is_array() {
                    self.error(
                        &spec.source,
                        value.span.clone(),
                        format!(
                            "the entry `{}` of [lookup.{}] must be a single value",
                            key.value, table.name.value
                        ),
                        None,
                    );
                }
                entries.push((key.value.clone(), value.value.clone()));
            }
            self.lookups
                .insert(table.name.value.clone(), Arc::new(Lookup::new(entries)));
        }
    }

    fn field(&mut self, spec: &FieldSpec) -> Option<Field> {
        let src = &spec.source;
        let path = match path::target(&spec.target.value) {
            Ok(path) => Some(path),
            Err(e) => {
                let span = inside(src, &spec.target, e.range.clone());
                self.error(
                    src,
                    span,
                    format!("target field `{}`: {}", spec.target.value, e.message),
                    e.hint,
                );
                None
            }
        };
        let value = self.value_source(spec);
        let convert = self.converters(spec);
        let on = match &spec.on {
            None => Some(On::Always),
            Some(at) if at.value == "always" => Some(On::Always),
            Some(at) if at.value == "create" => Some(On::Create),
            Some(at) => {
                self.error(
                    src,
                    at.span.clone(),
                    format!("`on` must be \"always\" or \"create\", not {:?}", at.value),
                    Some("\"create\" writes the field only when the user is created".to_string()),
                );
                None
            }
        };
        let primary = spec.primary.as_ref().is_some_and(|p| p.value);
        if let (Some(p), Some(path)) = (&spec.primary, &path)
            && !path.iter().any(|s| matches!(s, TargetSeg::Select { .. }))
        {
            self.error(
                src,
                p.span.clone(),
                "`primary` only applies to an element of a multi-valued attribute",
                Some(
                    "e.g. [fields.'emails[type eq \"work\"].value'] with primary = true"
                        .to_string(),
                ),
            );
        }
        Some(Field {
            target: spec.target.value.clone(),
            path: path?,
            value: value?,
            convert: convert?,
            default: spec.default.as_ref().map(|d| d.value.clone()),
            required: spec.required.as_ref().is_some_and(|r| r.value),
            on: on?,
            primary,
            roots: Vec::new(),
        })
    }

    /// Exactly one of source, template, value, setting.
    fn value_source(&mut self, spec: &FieldSpec) -> Option<ValueSource> {
        let src = &spec.source;
        let given: Vec<(&str, Range<usize>)> = [
            ("source", spec.graph.as_ref().map(|g| g.span.clone())),
            ("template", spec.template.as_ref().map(|t| t.span.clone())),
            ("value", spec.constant.as_ref().map(|c| c.span.clone())),
            ("setting", spec.setting.as_ref().map(|s| s.span.clone())),
        ]
        .into_iter()
        .filter_map(|(k, s)| Some((k, s?)))
        .collect();
        match given.as_slice() {
            [] => {
                let required = spec.required.as_ref().is_some_and(|r| r.value);
                let what = if required { "required field" } else { "field" };
                self.error(
                    src,
                    spec.target.span.clone(),
                    format!("{what} `{}` has no source", spec.target.value),
                    Some(
                        "give it one of: source = \"…\" (a Graph path), template, value or setting"
                            .to_string(),
                    ),
                );
                return None;
            }
            [_] => {}
            [(first, _), (second, span), ..] => {
                self.error(
                    src,
                    span.clone(),
                    format!("field `{}` has both `{first}` and `{second}`", spec.target.value),
                    Some("a field takes its value from exactly one of source, template, value or setting".to_string()),
                );
                return None;
            }
        }
        if let Some(graph) = &spec.graph {
            let mut paths = Vec::new();
            for at in &graph.value {
                paths.push(self.graph_path(src, at)?);
            }
            return Some(ValueSource::Graph(paths));
        }
        if let Some(t) = &spec.template {
            return self
                .template(src, &spec.target.value, t)
                .map(ValueSource::Template);
        }
        if let Some(c) = &spec.constant {
            return Some(ValueSource::Constant(c.value.clone()));
        }
        let setting = spec.setting.as_ref()?;
        self.check_setting(src, &setting.value, setting.span.clone());
        Some(ValueSource::Setting(setting.value.clone()))
    }

    fn graph_path(&mut self, src: &Arc<SourceText>, at: &At<String>) -> Option<GraphPath> {
        match path::split(&at.value).and_then(|segs| path::resolve(&segs)) {
            Ok(p) => Some(p),
            Err(e) => {
                self.path_error(src, at, e);
                None
            }
        }
    }

    fn path_error(&mut self, src: &Arc<SourceText>, at: &At<String>, e: PathError) {
        let span = inside(src, at, e.range.clone());
        self.error(src, span, e.message, e.hint);
    }

    fn check_setting(&mut self, src: &Arc<SourceText>, name: &str, span: Range<usize>) {
        let Some(settings) = self.settings else {
            return;
        };
        if settings.contains_key(name) {
            return;
        }
        let hint = match nearest(name, settings.keys().map(String::as_str)) {
            Some(n) => format!("did you mean `{n}`?"),
            None if settings.is_empty() => {
                format!(
                    "set it in the config: `{name}` in [sync] (default_role, default_position) or [settings]"
                )
            }
            None => format!(
                "the config defines: {}",
                settings
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(
            src,
            span,
            format!("setting `{name}` is not defined in the config"),
            Some(hint),
        );
    }

    fn converters(&mut self, spec: &FieldSpec) -> Option<Vec<Converter>> {
        let mut out = Vec::new();
        let mut ok = true;
        for c in &spec.convert {
            match self.converter(&spec.source, c) {
                Some(conv) => out.push(conv),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn converter(&mut self, src: &Arc<SourceText>, spec: &ConvertSpec) -> Option<Converter> {
        let name = spec.name.value.as_str();
        let Some((_, params, _, _)) = convert::CONVERTERS.iter().find(|c| c.0 == name) else {
            let known: Vec<&str> = convert::names().collect();
            let hint = match nearest(name, known.iter().copied()) {
                Some(n) => format!(
                    "did you mean `{n}`? The converters are: {}",
                    known.join(", ")
                ),
                None => format!("the converters are: {}", known.join(", ")),
            };
            self.error(
                src,
                spec.name.span.clone(),
                format!("unknown converter `{name}`"),
                Some(hint),
            );
            return None;
        };
        // Named arguments are put in the converter's order.
        let (args, spans): (Vec<Json>, Vec<Range<usize>>) = match &spec.args {
            Args::None => (Vec::new(), Vec::new()),
            Args::Positional(list) => list
                .iter()
                .map(|a| (a.value.clone(), a.span.clone()))
                .unzip(),
            Args::Named(named) => {
                let mut slots: Vec<Option<(Json, Range<usize>)>> = vec![None; params.len()];
                for (key, value) in named {
                    match params.iter().position(|p| *p == key.value && *p != "...") {
                        Some(i) => slots[i] = Some((value.value.clone(), value.span.clone())),
                        None => {
                            self.error(
                                src,
                                key.span.clone(),
                                format!("`{name}` has no argument `{}`", key.value),
                                Some(if params.is_empty() {
                                    format!("`{name}` takes no arguments")
                                } else {
                                    format!("its arguments are: {}", params.join(", "))
                                }),
                            );
                            return None;
                        }
                    }
                }
                let given = slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
                let mut args = Vec::new();
                let mut spans = Vec::new();
                for (i, slot) in slots.into_iter().take(given).enumerate() {
                    let Some((v, s)) = slot else {
                        self.error(
                            src,
                            spec.span.clone(),
                            format!(
                                "`{name}` needs `{}` when `{}` is given",
                                params[i],
                                params[given - 1]
                            ),
                            None,
                        );
                        return None;
                    };
                    args.push(v);
                    spans.push(s);
                }
                (args, spans)
            }
        };
        let arg_at = |i: usize| -> At<String> {
            At {
                value: args
                    .get(i)
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string(),
                span: spans.get(i).cloned().unwrap_or_else(|| spec.span.clone()),
            }
        };
        let mut regex = convert::compile_regex;
        let mut path_problem: Option<(At<String>, PathError)> = None;
        let mut graph_path = |i: usize, text: &str| -> Result<GraphPath, ArgError> {
            match path::split(text).and_then(|s| path::resolve(&s)) {
                // The run's start time is never missing: an alternative to it is pointless.
                Ok(GraphPath::SyncTime) => Err(ArgError {
                    arg: Some(i),
                    message: format!(
                        "`{}` is always set, so it cannot stand in for a missing value here; \
                         use it as the field's `source` instead",
                        path::SYNC_TIME
                    ),
                }),
                Ok(p) => Ok(p),
                Err(e) => {
                    let message = e.message.clone();
                    path_problem = Some((arg_at(i), e));
                    Err(ArgError {
                        arg: Some(i),
                        message,
                    })
                }
            }
        };
        let mut env = Env {
            lookups: &self.lookups,
            regex: &mut regex,
            graph_path: &mut graph_path,
        };
        match convert::build(name, &args, &mut env) {
            Ok(c) => c,
            Err(e) => {
                if let Some((at, path_error)) = path_problem {
                    self.path_error(src, &at, path_error);
                } else {
                    let span = e
                        .arg
                        .and_then(|i| spans.get(i).cloned())
                        .unwrap_or_else(|| spec.span.clone());
                    self.error(src, span, e.message, None);
                }
                None
            }
        }
    }

    /// Checks that two fields do not write the same place, or one inside the other.
    fn check_overlap(
        &mut self,
        written: &[(Vec<TargetSeg>, &FieldSpec)],
        path: &[TargetSeg],
        spec: &FieldSpec,
    ) {
        let scim = self.target == TargetType::Scim;
        let same = |a: &TargetSeg, b: &TargetSeg| match (a, b) {
            (TargetSeg::Key(x), TargetSeg::Key(y)) => {
                if scim {
                    x.eq_ignore_ascii_case(y)
                } else {
                    x == y
                }
            }
            (
                TargetSeg::Select {
                    attr: a1,
                    value: v1,
                },
                TargetSeg::Select {
                    attr: a2,
                    value: v2,
                },
            ) => a1.eq_ignore_ascii_case(a2) && v1 == v2,
            // An attribute and a value filter under one name: an object against a list.
            _ => true,
        };
        let clash = |a: &TargetSeg, b: &TargetSeg| {
            matches!(a, TargetSeg::Key(_)) != matches!(b, TargetSeg::Key(_))
        };
        for (other, other_spec) in written {
            let common = other
                .iter()
                .zip(path)
                .take_while(|(a, b)| same(a, b))
                .count();
            if common < other.len().min(path.len()) {
                continue;
            }
            let (line, _) = other_spec.source.line_col(other_spec.target.span.start);
            let (message, hint) = if other.iter().zip(path).any(|(a, b)| clash(a, b)) {
                (
                    format!(
                        "target field `{}` clashes with `{}`",
                        spec.target.value, other_spec.target.value
                    ),
                    format!(
                        "`{}` on line {line} makes the same attribute an object where a value \
                         filter makes it a list; use one form for both",
                        other_spec.target.value
                    ),
                )
            } else if other.len() == path.len() {
                (
                    format!("duplicate target field `{}`", spec.target.value),
                    format!(
                        "`{}` on line {line} writes the same field; keep one",
                        other_spec.target.value
                    ),
                )
            } else {
                (
                    format!(
                        "target field `{}` overlaps `{}`",
                        spec.target.value, other_spec.target.value
                    ),
                    format!(
                        "`{}` on line {line} writes a value where the other needs an object",
                        other_spec.target.value
                    ),
                )
            };
            self.error(&spec.source, spec.target.span.clone(), message, Some(hint));
            return;
        }
    }

    fn matching(
        &mut self,
        src: &Arc<SourceText>,
        written: &Option<At<String>>,
        outside: Option<(String, Arc<SourceText>, Range<usize>)>,
        top: &Range<usize>,
        fields: &mut [Field],
        specs: &[FieldSpec],
    ) -> Option<String> {
        let (name, place_src, span) = match (outside, written) {
            (Some((name, s, span)), _) => (name, s, span),
            (None, Some(at)) => (at.value.clone(), Arc::clone(src), at.span.clone()),
            (None, None) => {
                self.error(
                    src,
                    top.clone(),
                    "the mapping does not say which field identifies a user",
                    Some(
                        "add match = \"…\" naming a target field, e.g. match = \"userName\""
                            .to_string(),
                    ),
                );
                return None;
            }
        };
        if let Some(field) = fields.iter_mut().find(|f| f.target == name) {
            field.required = true;
            return Some(name);
        }
        // A field that failed to compile is already reported.
        if specs.iter().any(|s| s.target.value == name) {
            return None;
        }
        let hint = did_you_mean(&name, specs.iter().map(|s| s.target.value.as_str()), || {
            "name one of the mapping's fields".to_string()
        });
        self.error(
            &place_src,
            span,
            format!("the match key `{name}` is not a mapped field"),
            Some(hint),
        );
        None
    }

    fn active(&mut self, spec: &Spec, fields: &[Field], specs: &[FieldSpec]) -> Option<Active> {
        let a = spec.active.as_ref()?;
        if !fields.iter().any(|f| f.target == a.field.value) {
            if specs.iter().any(|f| f.target.value == a.field.value) {
                return None;
            }
            self.error(
                &spec.source,
                a.field.span.clone(),
                format!(
                    "the active flag's field `{}` is not a mapped field",
                    a.field.value
                ),
                Some("map it too, e.g. from accountEnabled".to_string()),
            );
            return None;
        }
        Some(Active {
            field: a.field.value.clone(),
            active: a.active.clone(),
            inactive: a.inactive.clone(),
        })
    }

    fn tests(&mut self, spec: &Spec) -> Vec<TestCase> {
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

    /// One registry for every template: strict, no HTML escaping, converters as helpers.
    fn registry(&mut self) -> Handlebars<'static> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        let shared = Arc::new(Shared {
            regexes: std::mem::take(&mut self.regexes),
            lookups: self.lookups.clone(),
        });
        convert::register_helpers(&mut registry, &shared);
        for (name, template) in std::mem::take(&mut self.templates) {
            registry.register_template(&name, template);
        }
        registry
    }

    // ----- templates ----------------------------------------------------------------------

    fn template(
        &mut self,
        src: &Arc<SourceText>,
        field: &str,
        at: &At<String>,
    ) -> Option<Template> {
        let text = at.value.as_str();
        if text.len() > MAX_TEMPLATE_LEN {
            self.error(
                src,
                at.span.clone(),
                format!("the template is longer than {MAX_TEMPLATE_LEN} bytes"),
                None,
            );
            return None;
        }
        if let Some(offset) = too_deep(text) {
            let span = inside(src, at, offset..offset + 2);
            self.error(
                src,
                span,
                format!("the template nests blocks or sub-expressions more than {MAX_TEMPLATE_DEPTH} deep"),
                None,
            );
            return None;
        }
        let compiled = match handlebars::Template::compile(text) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.pos().map_or(0, |(line, col)| offset_of(text, line, col));
                let span = inside(src, at, offset..offset + 1);
                self.error(
                    src,
                    span,
                    format!("template syntax error: {}", e.reason()),
                    None,
                );
                return None;
            }
        };
        let mut walk = Walk {
            src,
            at,
            text,
            vars: Vec::new(),
            settings: Vec::new(),
            problems: 0,
        };
        walk.elements(self, &compiled, true, 0);
        if walk.problems > 0 {
            return None;
        }
        let template = Template {
            vars: walk.vars,
            settings: walk.settings,
        };
        self.templates.push((field.to_string(), compiled));
        Some(template)
    }
}

/// Where blocks or sub-expressions nest deeper than allowed, if they do (a byte offset): a
/// first, rough guard that keeps the template parser itself from recursing too deep. The
/// parsed template is measured again exactly ([`Walk`]).
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_tag = false;
    let mut quote: Option<u8> = None;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let next = bytes.get(i + 1).copied();
        if let Some(q) = quote {
            if *b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'{' if next == Some(b'{') && !in_tag => {
                in_tag = true;
                // `{{~#if}}` controls white space; the block opens all the same.
                let mut at = i + 2;
                while matches!(bytes.get(at), Some(b'{' | b'~')) {
                    at += 1;
                }
                match bytes.get(at) {
                    Some(b'#') => depth += 1,
                    Some(b'/') => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            b'}' if next == Some(b'}') => in_tag = false,
            b'"' | b'\'' if in_tag => quote = Some(*b),
            b'(' if in_tag => depth += 1,
            b')' if in_tag => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_TEMPLATE_DEPTH {
            return Some(i);
        }
    }
    None
}

/// The byte offset of a 1-based line and column in `text`.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &text[start.min(text.len())..];
    start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

/// Walks a compiled template: checks its variables and helpers, notes what it reads.
struct Walk<'a> {
    src: &'a Arc<SourceText>,
    at: &'a At<String>,
    text: &'a str,
    vars: Vec<(Vec<String>, GraphPath)>,
    settings: Vec<String>,
    problems: usize,
}

impl Walk<'_> {
    fn problem(
        &mut self,
        c: &mut Compiler<'_>,
        near: usize,
        needle: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems += 1;
        let start = self.text[near.min(self.text.len())..]
            .find(needle)
            .map_or(near, |i| near + i);
        let span = inside(self.src, self.at, start..start + needle.len().max(1));
        c.error(self.src, span, message, hint);
    }

    fn elements(
        &mut self,
        c: &mut Compiler<'_>,
        template: &handlebars::Template,
        top: bool,
        depth: usize,
    ) {
        for (i, element) in template.elements.iter().enumerate() {
            let near = template
                .mapping
                .get(i)
                .map_or(0, |m| offset_of(self.text, m.0, m.1));

            match element {
                TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    self.expression(c, h, top, near);
                }
                // Rendering recurses as deep as blocks nest (`else if` chains included).
                TemplateElement::HelperBlock(_) if depth >= MAX_TEMPLATE_DEPTH => {
                    self.problem(
                        c,
                        near,
                        "{{",
                        format!("the template nests blocks more than {MAX_TEMPLATE_DEPTH} deep"),
                        None,
                    );
                    return;
                }
                TemplateElement::HelperBlock(h) => {
                    let name = self.expression(c, h, top, near);
                    // Inside `each` and `with` names refer to the element, not to the user.
                    let inner_top = top && !matches!(name.as_deref(), Some("each" | "with"));
                    if let Some(t) = &h.template {
                        self.elements(c, t, inner_top, depth + 1);
                    }
                    if let Some(t) = &h.inverse {
                        self.elements(c, t, top, depth + 1);
                    }
                }
                _ => self.problem(
                    c,
                    near,
                    "{{",
                    "partials and decorators are not supported in mapping templates".to_string(),
                    None,
                ),
            }
        }
    }

    /// A `{{name params…}}`: a variable, or a helper call. Returns the helper's name.
    fn expression(
        &mut self,
        c: &mut Compiler<'_>,
        h: &handlebars::template::HelperTemplate,
        top: bool,
        near: usize,
    ) -> Option<String> {
        let name = match &h.name {
            Parameter::Name(n) => n.clone(),
            Parameter::Path(p) => raw_path(p),
            _ => return None,
        };
        let is_helper = known_helper(&name);
        if !h.block && h.params.is_empty() && h.hash.is_empty() && !is_helper {
            self.variable(c, &h.name, top, near);
            return None;
        }
        if !is_helper {
            let known: Vec<&str> = convert::names()
                .chain(convert::EXTRA_HELPERS.iter().copied())
                .chain(convert::BUILTIN_HELPERS.iter().copied())
                .collect();
            let hint = did_you_mean(&name, known.iter().copied(), || {
                format!("the helpers are: {}", known.join(", "))
            });
            self.problem(
                c,
                near,
                &name,
                format!("unknown template helper `{name}`"),
                Some(hint),
            );
            return Some(name);
        }
        for p in h.params.iter().chain(h.hash.values()) {
            self.param(c, p, top, near);
        }
        self.helper_arguments(c, &name, &h.params, near);
        Some(name)
    }

    fn param(&mut self, c: &mut Compiler<'_>, p: &Parameter, top: bool, near: usize) {
        match p {
            Parameter::Path(_) | Parameter::Name(_) => self.variable(c, p, top, near),
            Parameter::Subexpression(sub) => match sub.element.as_ref() {
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    self.expression(c, h, top, near);
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Checks what can be checked of a helper's literal arguments, compiling regexes once.
    fn helper_arguments(
        &mut self,
        c: &mut Compiler<'_>,
        name: &str,
        params: &[Parameter],
        near: usize,
    ) {
        let literal = |i: usize| match params.get(i) {
            Some(Parameter::Literal(v)) => Some(v.clone()),
            _ => None,
        };
        match name {
            "setting" => match literal(0) {
                Some(Json::String(s)) => {
                    let before = c.problems.len();
                    let span = inside(self.src, self.at, self.find(near, &s));
                    c.check_setting(self.src, &s, span);
                    self.problems += c.problems.len() - before;
                    self.settings.push(s);
                }
                _ => self.problem(
                    c,
                    near,
                    "setting",
                    "`setting` takes the setting's name in quotes".to_string(),
                    Some("e.g. {{setting \"default_role\"}}".to_string()),
                ),
            },
            "regex_replace" => match literal(1) {
                Some(Json::String(pattern)) => match convert::compile_regex(&pattern) {
                    Ok(re) => {
                        c.regexes.insert(pattern, re);
                    }
                    Err(e) => self.problem(c, near, &pattern, e, None),
                },
                _ => self.problem(
                    c,
                    near,
                    name,
                    "`regex_replace` needs its pattern written in the template, in quotes"
                        .to_string(),
                    Some("e.g. {{regex_replace mail \"@.*$\" \"\"}}".to_string()),
                ),
            },
            _ => {}
        }
        if name == "setting"
            || name == "first_non_empty"
            || convert::BUILTIN_HELPERS.contains(&name)
        {
            return;
        }
        // A converter: check its arguments when they are all written out.
        let args: Option<Vec<Json>> = (1..params.len()).map(literal).collect();
        let Some(args) = args else {
            return;
        };
        let regexes = &c.regexes;
        let mut regex = |p: &str| regexes.get(p).cloned().ok_or_else(String::new);
        let mut graph_path = |_: usize, _: &str| -> Result<GraphPath, ArgError> {
            Err(ArgError {
                arg: None,
                message: String::new(),
            })
        };
        let mut env = Env {
            lookups: &c.lookups,
            regex: &mut regex,
            graph_path: &mut graph_path,
        };
        if params.is_empty() {
            self.problem(
                c,
                near,
                name,
                format!("`{name}` needs the value to convert"),
                None,
            );
        } else if let Err(e) = convert::build(name, &args, &mut env)
            && !e.message.is_empty()
        {
            self.problem(c, near, name, e.message, None);
        }
    }

    fn find(&self, near: usize, needle: &str) -> Range<usize> {
        let start = self.text[near.min(self.text.len())..]
            .find(needle)
            .map_or(near, |i| near + i);
        start..start + needle.len().max(1)
    }

    /// A variable: at the top of a template, a Graph path (or `connectorSyncTime`).
    fn variable(&mut self, c: &mut Compiler<'_>, p: &Parameter, top: bool, near: usize) {
        if !top {
            // Inside `each` and `with` names are the element's; reaching out of the block
            // would read data the template is not given.
            if let Parameter::Path(HbsPath::Relative((_, raw))) = p
                && (raw.starts_with("..") || raw.starts_with("@root"))
            {
                self.problem(
                    c,
                    near,
                    raw,
                    format!("`{raw}` reads from outside the block, which mapping templates do not support"),
                    Some("use the property outside the `each` or `with` block".to_string()),
                );
            }
            return;
        }
        let (segs, raw): (Vec<String>, String) = match p {
            Parameter::Name(n) => (n.split(['.', '/']).map(str::to_string).collect(), n.clone()),
            Parameter::Path(HbsPath::Relative((segs, raw))) => {
                let mut names = Vec::new();
                for seg in segs {
                    match seg {
                        PathSeg::Named(n) => names.push(n.clone()),
                        _ => {
                            self.problem(
                                c,
                                near,
                                raw,
                                format!("`{raw}` does not name a Graph property"),
                                Some(
                                    "write the property's path, e.g. {{manager.mail}}".to_string(),
                                ),
                            );
                            return;
                        }
                    }
                }
                (names, raw.clone())
            }
            Parameter::Path(HbsPath::Local((_, name, raw))) => {
                self.problem(
                    c,
                    near,
                    raw,
                    format!("`@{name}` only has a value inside {{{{#each}}}}"),
                    None,
                );
                return;
            }
            _ => return,
        };
        if segs.is_empty() || segs.iter().any(String::is_empty) {
            self.problem(
                c,
                near,
                &raw,
                "name a Graph property here".to_string(),
                Some("e.g. {{givenName}}".to_string()),
            );
            return;
        }
        let raw_segs: Vec<(RawSeg, Range<usize>)> = segs
            .iter()
            .map(|s| {
                let seg = s
                    .parse::<usize>()
                    .map_or_else(|_| RawSeg::Name(s.clone()), RawSeg::Index);
                (seg, 0..0)
            })
            .collect();
        match path::resolve(&raw_segs) {
            Ok(path) => self.vars.push((segs, path)),
            Err(e) => {
                let message = format!("template variable `{raw}`: {}", e.message);
                self.problem(c, near, &raw, message, e.hint);
            }
        }
    }
}

fn raw_path(p: &HbsPath) -> String {
    match p {
        HbsPath::Relative((_, raw)) | HbsPath::Local((_, _, raw)) => raw.clone(),
    }
}

fn known_helper(name: &str) -> bool {
    convert::names().any(|n| n == name)
        || convert::EXTRA_HELPERS.contains(&name)
        || convert::BUILTIN_HELPERS.contains(&name)
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
