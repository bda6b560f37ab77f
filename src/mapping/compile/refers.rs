//! `refers = "user"`: a field whose value names an Entra user (the manager), which the
//! sync writes as that user's id in the target. Checked here: the value must be the object
//! id of a user that Graph gives with each user, taken as it is.

use super::Compiler;
use crate::mapping::path::{GraphPath, Seg};
use crate::mapping::spec::FieldSpec;
use crate::mapping::{Refers, ValueSource};

/// The one way to write a user reference, for hints.
const MANAGER_ID: &str = "manager.id";

impl Compiler<'_> {
    /// The field's `refers`, checked against how its value is made; `Err` when wrong
    /// (reported).
    pub(super) fn refers(
        &mut self,
        spec: &FieldSpec,
        value: Option<&ValueSource>,
    ) -> Result<Option<Refers>, ()> {
        let Some(refers) = &spec.refers else {
            return Ok(None);
        };
        let src = &spec.source;
        if refers.value != "user" {
            self.error(
                src,
                refers.span.clone(),
                format!("`refers` must be \"user\", not {:?}", refers.value),
                Some(
                    "refers = \"user\" writes the Entra user a value names (the manager) as \
                     that user's id in the target"
                        .to_owned(),
                ),
            );
            return Err(());
        }
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
                    .unwrap_or_else(|| refers.span.clone());
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
        Ok(Some(Refers::User))
    }
}
