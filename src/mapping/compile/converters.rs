//! A field's `convert` chain: each converter found in the registry, its arguments put in
//! order and built, every mistake placed on the argument at fault.

use std::ops::Range;
use std::sync::Arc;

use serde_json::Value as Json;

use super::Compiler;
use crate::diag::{SourceText, nearest};
use crate::mapping::convert::{self, ArgError, Converter, Env};
use crate::mapping::path::{self, GraphPath, PathError};
use crate::mapping::spec::{Args, At, ConvertSpec, FieldSpec};

/// A converter's arguments in order, each with where it is written.
type Placed = (Vec<Json>, Vec<Range<usize>>);

impl Compiler<'_> {
    /// Builds the `convert` chain; `None` when any converter in it is wrong (all reported).
    pub(super) fn converters(&mut self, spec: &FieldSpec) -> Option<Vec<Converter>> {
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
        let Some(def) = convert::find(name) else {
            self.unknown_converter(src, spec);
            return None;
        };
        let (args, spans) = match &spec.args {
            Args::None => (Vec::new(), Vec::new()),
            Args::Positional(list) => list
                .iter()
                .map(|a| (a.value.clone(), a.span.clone()))
                .unzip(),
            Args::Named(named) => self.named_args(src, spec, def.params, named)?,
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
        let mut graph_path = |i: usize, text: &str| {
            alternative_path(i, text).map_err(|(error, path_error)| {
                if let Some(e) = path_error {
                    path_problem = Some((arg_at(i), e));
                }
                error
            })
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

    fn unknown_converter(&mut self, src: &Arc<SourceText>, spec: &ConvertSpec) {
        let name = spec.name.value.as_str();
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
    }

    /// Named arguments put in the converter's order; none may be left out before the last
    /// one given.
    fn named_args(
        &mut self,
        src: &Arc<SourceText>,
        spec: &ConvertSpec,
        params: &[&str],
        named: &[(At<String>, At<Json>)],
    ) -> Option<Placed> {
        let name = spec.name.value.as_str();
        let mut slots: Vec<Option<(Json, Range<usize>)>> = vec![None; params.len()];
        for (key, value) in named {
            let Some(i) = params.iter().position(|p| *p == key.value && *p != "...") else {
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
            };
            slots[i] = Some((value.value.clone(), value.span.clone()));
        }
        let given = slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        let mut placed: Placed = (Vec::new(), Vec::new());
        for (i, slot) in slots.into_iter().take(given).enumerate() {
            let Some((v, s)) = slot else {
                let message = format!(
                    "`{name}` needs `{}` when `{}` is given",
                    params[i],
                    params[given - 1]
                );
                self.error(src, spec.span.clone(), message, None);
                return None;
            };
            placed.0.push(v);
            placed.1.push(s);
        }
        Some(placed)
    }
}

/// A Graph path `first_non_empty` may fall back on. On error, the argument's error and, when
/// the path itself is wrong, the path's error (placed inside the argument).
fn alternative_path(i: usize, text: &str) -> Result<GraphPath, (ArgError, Option<PathError>)> {
    match path::split(text).and_then(|s| path::resolve(&s)) {
        // The run's start time is never missing: an alternative to it is pointless.
        Ok(GraphPath::SyncTime) => {
            let message = format!(
                "`{}` is always set, so it cannot stand in for a missing value here; \
                 use it as the field's `source` instead",
                path::SYNC_TIME
            );
            Err((ArgError::new(Some(i), message), None))
        }
        Ok(p) => Ok(p),
        Err(e) => Err((ArgError::new(Some(i), e.message.clone()), Some(e))),
    }
}
