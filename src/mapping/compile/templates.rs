//! Templates: each compiled once, with limits on its size and nesting so that a hostile
//! template cannot exhaust the parser, then walked ([`super::walk`]) for what it reads; all of
//! them end up in one handlebars registry.

use std::sync::Arc;

use handlebars::Handlebars;

use super::walk::Walk;
use super::{Compiler, inside};
use crate::diag::SourceText;
use crate::mapping::Template;
use crate::mapping::convert::{self, Shared};
use crate::mapping::spec::At;

/// Longest template accepted, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 16 * 1024;
/// Deepest nesting of blocks and sub-expressions accepted in a template.
pub const MAX_TEMPLATE_DEPTH: usize = 16;

impl Compiler<'_> {
    /// One registry for every template: strict, no HTML escaping, converters as helpers.
    pub(super) fn registry(&mut self) -> Handlebars<'static> {
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

    /// Compiles the template that fills `field`; `None` when it has problems (reported).
    pub(super) fn template(
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
        let template = Walk::run(self, src, at, &compiled)?;
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
pub(super) fn offset_of(text: &str, line: usize, col: usize) -> usize {
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
