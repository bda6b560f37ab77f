//! `refers`: a field whose value names something the target keeps its own id for. Two
//! kinds:
//!
//! - `refers = "user"`: the value is an Entra user's object id (the manager's), which the
//!   sync writes as that user's id in the target. The value must be that id as Graph gives
//!   it: `source = "manager.id"`, with no converter or default.
//! - `refers = { entity = "department", policy = "create", aliases = "TABLE" }`: the value
//!   is a name (a department, a location, a company), which the sync writes as the id of
//!   the target's entity of that name, creating it when missing (`create`) or leaving the
//!   field empty (`lookup`, the default). `aliases` names a `[lookup.TABLE]` of Entra names
//!   → target names, applied after the field's converters. Whether the target has such a
//!   list is checked once the target is known ([`Mapping::check_entities`]).

use std::sync::Arc;

use super::Compiler;
use crate::mapping::convert::Converter;
use crate::mapping::path::{GraphPath, Seg};
use crate::mapping::spec::{FieldSpec, RefersSpec};
use crate::mapping::{EntityRef, Policy, Refers, ValueSource};

/// The one way to write a user reference, for hints.
const MANAGER_ID: &str = "manager.id";

impl Compiler<'_> {
    /// The field's `refers`, checked against how its value is made, and for an entity
    /// reference with aliases the converter that applies them; `Err` when wrong (reported).
    pub(super) fn refers(
        &mut self,
        spec: &FieldSpec,
        value: Option<&ValueSource>,
    ) -> Result<Option<(Refers, Option<Converter>)>, ()> {
        match &spec.refers {
            None => Ok(None),
            Some(RefersSpec::Word(word)) if word.value == "user" => self
                .user_ref(spec, value)
                .map(|()| Some((Refers::User, None))),
            Some(RefersSpec::Word(word)) => {
                self.error(
                    &spec.source,
                    word.span.clone(),
                    format!("`refers` must be \"user\" or a table, not {:?}", word.value),
                    Some(
                        "refers = \"user\" for the manager; refers = { entity = \"department\", \
                         policy = \"create\" } for a department, a location, a company"
                            .to_owned(),
                    ),
                );
                Err(())
            }
            Some(RefersSpec::Entity {
                entity,
                policy,
                aliases,
                span,
            }) => {
                let policy = match policy.as_ref().map(|p| p.value.as_str()) {
                    None | Some("lookup") => Policy::Lookup,
                    Some("create") => Policy::Create,
                    Some(other) => {
                        let span = policy.as_ref().map_or(span.clone(), |p| p.span.clone());
                        self.error(
                            &spec.source,
                            span,
                            format!("`policy` must be \"create\" or \"lookup\", not {other:?}"),
                            Some(
                                "\"create\" makes a missing entity once per run; \"lookup\" \
                                 leaves the field empty and says so"
                                    .to_owned(),
                            ),
                        );
                        return Err(());
                    }
                };
                let alias = match aliases {
                    None => None,
                    Some(table) => match self.lookups.get(&table.value) {
                        Some(lookup) => Some(Converter::Alias(Arc::clone(lookup))),
                        None => {
                            self.error(
                                &spec.source,
                                table.span.clone(),
                                format!(
                                    "there is no [lookup.{}] table in this mapping",
                                    table.value
                                ),
                                Some(
                                    "aliases names a [lookup.NAME] table of Entra names → the \
                                     target's names"
                                        .to_owned(),
                                ),
                            );
                            return Err(());
                        }
                    },
                };
                let reference = EntityRef {
                    kind: entity.value.clone(),
                    policy,
                    source: Arc::clone(&spec.source),
                    span: entity.span.clone(),
                };
                Ok(Some((Refers::Entity(reference), alias)))
            }
        }
    }

    /// Checks a `refers = "user"` field: its value must be a user's object id as Graph
    /// gives it, unconverted.
    fn user_ref(&mut self, spec: &FieldSpec, value: Option<&ValueSource>) -> Result<(), ()> {
        let src = &spec.source;
        let hint = || {
            Some(format!(
                "a reference takes the object id of an Entra user as Graph gives it: write \
                 source = \"{MANAGER_ID}\", with no convert or default"
            ))
        };
        let is_user_id = |path: &GraphPath| {
            matches!(path, GraphPath::User(segs)
                if matches!(segs.as_slice(), [Seg::Key(m), Seg::Key(id)] if m == "manager" && id == "id"))
        };
        match value {
            Some(ValueSource::Graph(paths)) if paths.iter().all(is_user_id) => {}
            Some(_) => {
                let span = spec
                    .graph
                    .as_ref()
                    .map(|g| g.span.clone())
                    .or_else(|| spec.template.as_ref().map(|t| t.span.clone()))
                    .or_else(|| spec.constant.as_ref().map(|c| c.span.clone()))
                    .or_else(|| spec.setting.as_ref().map(|s| s.span.clone()))
                    .unwrap_or_else(|| spec.target.span.clone());
                self.error(
                    src,
                    span,
                    format!(
                        "field `{}` refers to a user, but its value is not a user's object id",
                        spec.target.value
                    ),
                    hint(),
                );
                return Err(());
            }
            // The value's own problem is reported already.
            None => return Err(()),
        }
        if let Some(first) = spec.convert.first() {
            self.error(
                src,
                first.span.clone(),
                "a field that refers to a user takes no converters",
                hint(),
            );
            return Err(());
        }
        if let Some(default) = &spec.default {
            self.error(
                src,
                default.span.clone(),
                "a field that refers to a user takes no default",
                hint(),
            );
            return Err(());
        }
        Ok(())
    }
}
