//! One `[fields."…"]` table into a [`Field`]: its target path, where its value comes from,
//! when it is written; and the check that no two fields write the same place.

use std::ops::Range;
use std::sync::Arc;

use super::{Compiler, inside};
use crate::diag::SourceText;
use crate::mapping::convert::Converter;
use crate::mapping::path::{self, GraphPath, PathError, TargetSeg};
use crate::mapping::spec::{At, FieldSpec};
use crate::mapping::{Field, On, OnDrift, TargetType, ValueSource};

impl Compiler<'_> {
    /// Compiles every field in order, each checked against those before it.
    pub(super) fn fields(&mut self, specs: &[FieldSpec]) -> Vec<Field> {
        let mut fields: Vec<Field> = Vec::new();
        let mut written: Vec<(Vec<TargetSeg>, &FieldSpec)> = Vec::new();
        for field_spec in specs {
            if let Some(field) = self.field(field_spec) {
                self.check_overlap(&written, &field.path, field_spec);
                written.push((field.path.clone(), field_spec));
                fields.push(field);
            }
        }
        fields
    }

    /// One field; `None` when anything in it is wrong (reported).
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
        let refers = self.refers(spec, value.as_ref());
        let mut convert = self.converters(spec);
        if let (Some(value), Some(convert)) = (&value, &convert) {
            self.check_group_names(spec, value, convert);
        }
        let on = self.on(spec);
        let on_drift = match &spec.on_drift {
            None => Some(OnDrift::Overwrite),
            Some(at) if at.value == "overwrite" => Some(OnDrift::Overwrite),
            Some(at) if at.value == "keep" => Some(OnDrift::Keep),
            Some(at) => {
                self.error(
                    src,
                    at.span.clone(),
                    format!(
                        "`on_drift` must be \"overwrite\" or \"keep\", not {:?}",
                        at.value
                    ),
                    Some("\"keep\" reports a value changed in the target and leaves it".into()),
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
        let (refers, alias) = refers.ok()?.unzip();
        if let (Some(convert), Some(alias)) = (&mut convert, alias.flatten()) {
            convert.push(alias);
        }
        Some(Field {
            target: spec.target.value.clone(),
            path: path?,
            value: value?,
            convert: convert?,
            default: spec.default.as_ref().map(|d| d.value.clone()),
            required: spec.required.as_ref().is_some_and(|r| r.value),
            on: on?,
            on_drift: on_drift?,
            primary,
            refers,
            roots: Vec::new(),
        })
    }

    /// A field whose source is `groups` can only hold the names of the config's
    /// `input_groups`: a name in its `first_of` or `has` that is not one of them never
    /// matches, and is reported (when there is a config to check against).
    fn check_group_names(&mut self, spec: &FieldSpec, value: &ValueSource, convert: &[Converter]) {
        let Some(named) = self.input_groups.filter(|n| !n.is_empty()) else {
            return;
        };
        let ValueSource::Graph(paths) = value else {
            return;
        };
        if !paths.iter().all(|p| p.input() == Some(path::Input::Groups)) {
            return;
        }
        for (converter, at) in convert.iter().zip(&spec.convert) {
            let names: Vec<&str> = match converter {
                Converter::FirstOf(pairs) => pairs.iter().map(|(n, _)| n.as_str()).collect(),
                Converter::Has(name) => vec![name.as_str()],
                _ => continue,
            };
            for name in names {
                if named.iter().any(|n| n.trim().to_lowercase() == name) {
                    continue;
                }
                self.error(
                    &spec.source,
                    at.span.clone(),
                    format!(
                        "`{}` names the group `{name}`, which is not in the config's \
                         input_groups, so it never matches",
                        converter.name()
                    ),
                    Some(format!(
                        "the mapping's `groups` holds the names input_groups gives: {}",
                        named.join(", ")
                    )),
                );
            }
        }
    }

    /// When the field is written: `on = "always" | "create"` or `write = "always" |
    /// "on_create" | "if_empty"` (either key takes either spelling of create), not both.
    fn on(&mut self, spec: &FieldSpec) -> Option<On> {
        let src = &spec.source;
        let (key, at) = match (&spec.on, &spec.write) {
            (None, None) => return Some(On::Always),
            (Some(_), Some(write)) => {
                self.error(
                    src,
                    write.span.clone(),
                    "`on` and `write` say the same thing; keep one",
                    Some("`write` takes \"always\", \"on_create\" or \"if_empty\"".into()),
                );
                return None;
            }
            (Some(on), None) => ("on", on),
            (None, Some(write)) => ("write", write),
        };
        match at.value.as_str() {
            "always" => Some(On::Always),
            "create" | "on_create" => Some(On::Create),
            "if_empty" if key == "write" => Some(On::IfEmpty),
            _ => {
                let (choices, hint) = match key {
                    "on" => (
                        "\"always\" or \"create\"",
                        "\"create\" writes the field only when the user is created",
                    ),
                    _ => (
                        "\"always\", \"on_create\" or \"if_empty\"",
                        "\"if_empty\" writes the field while the target's value is empty",
                    ),
                };
                self.error(
                    src,
                    at.span.clone(),
                    format!("`{key}` must be {choices}, not {:?}", at.value),
                    Some(hint.to_string()),
                );
                None
            }
        }
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

    /// A `source` path checked against the Graph catalogue.
    fn graph_path(&mut self, src: &Arc<SourceText>, at: &At<String>) -> Option<GraphPath> {
        match path::split(&at.value).and_then(|segs| path::resolve(&segs)) {
            Ok(p) if p.input() == Some(path::Input::Groups) => {
                if self.input_groups.is_some_and(<[String]>::is_empty) {
                    let span = at.text_range(src).unwrap_or_else(|| at.span.clone());
                    self.error(
                        src,
                        span,
                        "the mapping reads `groups`, but the config names no groups".to_string(),
                        Some(
                            "name the groups to read in [source]: input_groups = IT-Admins, \
                             Contractors (display names or object IDs)"
                                .to_string(),
                        ),
                    );
                    return None;
                }
                Some(p)
            }
            Ok(p) => Some(p),
            Err(e) => {
                self.path_error(src, at, e);
                None
            }
        }
    }

    /// Reports a Graph path mistake, placed inside the path where it is written verbatim.
    pub(super) fn path_error(&mut self, src: &Arc<SourceText>, at: &At<String>, e: PathError) {
        let span = inside(src, at, e.range.clone());
        self.error(src, span, e.message, e.hint);
    }

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
}
