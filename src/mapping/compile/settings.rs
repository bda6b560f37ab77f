//! Config settings a mapping reads (`setting = "…"`, `{{setting "…"}}`): checked against
//! the config when there is one, so a missing setting stops the run before any user is read.

use std::ops::Range;
use std::sync::Arc;

use super::Compiler;
use crate::diag::{SourceText, nearest};

impl Compiler<'_> {
    /// Reports a setting the config does not define, with the nearest one it does.
    pub(super) fn check_setting(&mut self, src: &Arc<SourceText>, name: &str, span: Range<usize>) {
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
}
