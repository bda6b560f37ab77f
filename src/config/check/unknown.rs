//! Sections and keys that nothing reads: an error with the nearest known name in a
//! userload config, a warning in an Oomnitza connector's, which may hold sections and keys
//! for the connector's other jobs.

use super::{Checker, Keys};
use crate::config::sections::{SECTIONS, modern_name};
use crate::diag::nearest;

impl<'d> Checker<'d> {
    /// Reports sections nobody reads.
    pub(super) fn check_sections(&mut self) {
        for section in &self.doc.sections {
            let name = section.name.as_str();
            if SECTIONS.iter().any(|(s, _)| *s == name)
                || name == "settings"
                || modern_name(name) != name
            {
                continue;
            }
            if self.legacy {
                self.warning(
                    section.span.clone(),
                    format!("section [{name}] is ignored"),
                    "it belongs to another Oomnitza connector; userload reads [azureusers] and [oomnitza]",
                );
                continue;
            }
            let known = SECTIONS.iter().map(|(s, _)| *s).chain(["settings"]);
            let hint = nearest(name, known)
                .map(|n| format!("did you mean [{n}]?"))
                .unwrap_or_else(|| {
                    "the sections are [source], [target], [sync], [notify] and [settings]".into()
                });
            self.error(
                section.span.clone(),
                format!("unknown section [{name}]"),
                hint,
            );
        }
    }

    /// Reports the keys of one section that no check took.
    pub(super) fn unknown_keys(&mut self, keys: &Keys<'d>) {
        let Some(section) = keys.section else {
            return;
        };
        let name = modern_name(&section.name);
        let known = SECTIONS
            .iter()
            .find(|(s, _)| *s == name)
            .map_or(&[][..], |(_, k)| *k);
        for (entry, used) in section.entries.iter().zip(&keys.used) {
            // A known key left unused was empty; in an Oomnitza section, a key userload knows
            // only under [source]/[target] (e.g. `type`) is still one the file should not have.
            if *used || (!keys.legacy && known.contains(&entry.key.as_str())) {
                continue;
            }
            if keys.legacy {
                self.warning(
                    entry.key_span.clone(),
                    format!("`{}` is ignored", entry.key),
                    format!(
                        "userload does not use this key of the Oomnitza connector's {}",
                        keys.shown
                    ),
                );
                continue;
            }
            let hint = match nearest(&entry.key, known.iter().copied()) {
                Some(k) => format!("did you mean `{k}`?"),
                None => match SECTIONS
                    .iter()
                    .find(|(_, k)| k.contains(&entry.key.as_str()))
                {
                    Some((other, _)) => format!("`{}` belongs in [{other}]", entry.key),
                    None => format!("the keys of {} are: {}", keys.shown, known.join(", ")),
                },
            };
            self.error(
                entry.key_span.clone(),
                format!("unknown key `{}` in {}", entry.key, keys.shown),
                hint,
            );
        }
    }
}
