//! The mapping file's top-level keys: its format `version`, the `target` it builds records
//! for, its `[lookup.NAME]` tables, the `match` keys and the `active` flag.

use std::ops::Range;
use std::sync::Arc;

use super::Compiler;
use crate::config::TargetKind;
use crate::diag::{SourceText, did_you_mean};
use crate::mapping::convert::Lookup;
use crate::mapping::spec::{FieldSpec, MatchSpec, Spec};
use crate::mapping::{Active, Field, TargetType};

impl Compiler<'_> {
    /// `version = 1`: the only format this build reads.
    pub(super) fn version(&mut self, spec: &Spec) {
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

    /// `target`: a known record type, suited to the config's target when there is one.
    pub(super) fn target(&mut self, spec: &Spec, kind: Option<TargetKind>) -> Option<TargetType> {
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

    /// `[lookup.NAME]` tables, each entry a single value.
    pub(super) fn lookups(&mut self, spec: &Spec) {
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

    /// The match keys: one set outside the file (Oomnitza `sync_field`), or `match` (one
    /// name, or a list tried in order). Each must be a mapped field. A single key becomes
    /// required; of a list none does, so that a user without the first key can still be
    /// matched by a later one (it is never created: the first key is its identity).
    pub(super) fn matching(
        &mut self,
        src: &Arc<SourceText>,
        written: &Option<MatchSpec>,
        outside: Option<(String, Arc<SourceText>, Range<usize>)>,
        top: &Range<usize>,
        fields: &mut [Field],
        specs: &[FieldSpec],
    ) -> Option<Vec<String>> {
        let keys: Vec<(String, Arc<SourceText>, Range<usize>)> = match (outside, written) {
            (Some(key), _) => vec![key],
            // Its mistakes were reported while reading the file.
            (None, Some(m)) if m.keys.is_empty() => return None,
            (None, Some(m)) => m
                .keys
                .iter()
                .map(|k| (k.value.clone(), Arc::clone(src), k.span.clone()))
                .collect(),
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
        let mut all_mapped = true;
        for (name, place_src, span) in &keys {
            all_mapped &= self.match_key(name, place_src, span, fields, specs);
        }
        if let ([(name, _, _)], true) = (keys.as_slice(), all_mapped)
            && let Some(field) = fields.iter_mut().find(|f| &f.target == name)
        {
            field.required = true;
        }
        all_mapped.then(|| keys.into_iter().map(|(name, _, _)| name).collect())
    }

    /// Whether the match key `name` is a mapped field; reports it where it is written if not.
    fn match_key(
        &mut self,
        name: &str,
        src: &Arc<SourceText>,
        span: &Range<usize>,
        fields: &[Field],
        specs: &[FieldSpec],
    ) -> bool {
        if fields.iter().any(|f| f.target == name) {
            return true;
        }
        // A field that failed to compile is already reported.
        if specs.iter().any(|s| s.target.value == name) {
            return false;
        }
        let hint = did_you_mean(name, specs.iter().map(|s| s.target.value.as_str()), || {
            "name one of the mapping's fields".to_string()
        });
        self.error(
            src,
            span.clone(),
            format!("the match key `{name}` is not a mapped field"),
            Some(hint),
        );
        false
    }

    /// `active`: its field must be a mapped one.
    pub(super) fn active(
        &mut self,
        spec: &Spec,
        fields: &[Field],
        specs: &[FieldSpec],
    ) -> Option<Active> {
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
}
