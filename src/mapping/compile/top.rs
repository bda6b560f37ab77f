//! The mapping file's top-level keys: its format `version`, the `target` it builds records
//! for, its `[lookup.NAME]` tables, the `match` key and the `active` flag.

use std::ops::Range;
use std::sync::Arc;

use super::Compiler;
use crate::config::TargetKind;
use crate::diag::{SourceText, did_you_mean};
use crate::mapping::convert::Lookup;
use crate::mapping::spec::{At, FieldSpec, Spec};
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

    /// The match key: set outside the file (Oomnitza `sync_field`) or by `match`; it must be a
    /// mapped field, which becomes required.
    pub(super) fn matching(
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
