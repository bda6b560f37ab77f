//! The checks of one template: its syntax, and that it reads only the variables its
//! operation has, each mistake placed on the file's line and column.
//!
//! A template is a TOML string, so a place inside it is mapped back to the file; when the
//! string is not written verbatim (escapes), the whole value is underlined instead.

use std::ops::Range;

use handlebars::PathSeg;
use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use toml::Spanned;

use super::compile::Compiler;
use super::render::HELPERS;
use crate::diag::nearest;

impl Compiler<'_> {
    /// Compiles one template and checks the variables it reads.
    pub(super) fn template(
        &mut self,
        name: &str,
        key: &str,
        written: &Spanned<String>,
        vars: &[&str],
        url: bool,
    ) {
        let Some(compiled) = self.checked(name, key, written, vars) else {
            return;
        };
        let registry = if url {
            &mut self.urls
        } else {
            &mut self.bodies
        };
        registry.register_template(name, compiled);
    }

    /// Compiles the template of a header's value, known as `NAME.header.HEADER`; its
    /// output is not escaped, and a header name that HTTP does not allow is a problem.
    pub(super) fn header_template(
        &mut self,
        name: &str,
        header: &Spanned<String>,
        written: &Spanned<String>,
        vars: &[&str],
    ) {
        if reqwest::header::HeaderName::from_bytes(header.get_ref().as_bytes()).is_err() {
            self.error(
                header.span(),
                format!(
                    "[{name}] `{}` is not a header name",
                    crate::diag::shorten(header.get_ref(), 40)
                ),
                Some("use letters, digits and `-`, e.g. App-Token".to_string()),
            );
            return;
        }
        let key = format!("header {}", header.get_ref());
        let Some(compiled) = self.checked(name, &key, written, vars) else {
            return;
        };
        let full = format!("{name}.header.{}", header.get_ref());
        self.headers.register_template(&full, compiled);
    }

    /// A template compiled, every variable it reads checked against `vars`; `None` when it
    /// does not compile.
    fn checked(
        &mut self,
        name: &str,
        key: &str,
        written: &Spanned<String>,
        vars: &[&str],
    ) -> Option<handlebars::Template> {
        let text = written.get_ref();
        let at = self.text_start(written);
        let compiled = match handlebars::Template::compile(text) {
            Ok(t) => t,
            Err(e) => {
                let offset = e.pos().map_or(0, |(line, col)| offset_of(text, line, col));
                self.error(
                    self.place(written, at, offset),
                    format!("[{name}] {key}: template syntax error: {}", e.reason()),
                    None,
                );
                return None;
            }
        };
        let mut found = Vec::new();
        variables(&compiled, &mut found);
        for (variable, (line, col)) in found {
            if vars.contains(&variable.as_str()) {
                if !self.uses.contains(&variable) {
                    self.uses.push(variable);
                }
                continue;
            }
            let offset = offset_of(text, line, col);
            let hint = match nearest(&variable, vars.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("[{name}] can use: {}", vars.join(", ")),
            };
            self.error(
                self.place(written, at, offset),
                format!("[{name}] {key}: unknown variable `{variable}`"),
                Some(hint),
            );
        }
        Some(compiled)
    }

    /// Where a string's text starts in the file, when it is written there verbatim.
    fn text_start(&self, written: &Spanned<String>) -> Option<usize> {
        let span = written.span();
        let in_file = self.source.text().get(span.clone())?;
        in_file
            .find(written.get_ref().as_str())
            .map(|i| span.start + i)
    }

    /// The file bytes for an offset inside a template (its whole value if not verbatim).
    fn place(&self, written: &Spanned<String>, at: Option<usize>, offset: usize) -> Range<usize> {
        match at {
            Some(start) => {
                let text = written.get_ref();
                // The character at `offset`, or the last one when it is past the end.
                let (at, c) = text
                    .char_indices()
                    .take_while(|(i, _)| *i <= offset)
                    .last()
                    .unwrap_or((0, ' '));
                start + at..start + at + c.len_utf8()
            }
            None => written.span(),
        }
    }
}

/// The variables a template reads, each with its line and column in the template. Inside
/// `#each` and `#with` the context changes, so names there are not collected.
fn variables(template: &handlebars::Template, found: &mut Vec<(String, (usize, usize))>) {
    for (i, element) in template.elements.iter().enumerate() {
        let place = template.mapping.get(i).map_or((1, 1), |m| (m.0, m.1));
        let helper = match element {
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => h,
            _ => continue,
        };
        for name in names_read(helper) {
            let root = name
                .split(['.', '/'])
                .next()
                .unwrap_or_default()
                .to_string();
            if !root.is_empty() && !root.starts_with('@') && root != "this" {
                found.push((root, place));
            }
        }
        let changes_context =
            matches!(&helper.name, Parameter::Name(n) if n == "each" || n == "with");
        if helper.block && !changes_context {
            for inner in [&helper.template, &helper.inverse].into_iter().flatten() {
                variables(inner, found);
            }
        }
    }
}

/// The names an expression reads: itself unless it is a helper, its parameters and those
/// of its subexpressions.
fn names_read(helper: &HelperTemplate) -> Vec<String> {
    let mut names = Vec::new();
    match &helper.name {
        Parameter::Name(name) if !HELPERS.contains(&name.as_str()) => names.push(name.clone()),
        Parameter::Path(path) => names.extend(first_name(path)),
        _ => {}
    }
    let mut params: Vec<&Parameter> = helper.params.iter().collect();
    params.extend(helper.hash.values());
    while let Some(param) = params.pop() {
        match param {
            Parameter::Path(path) => names.extend(first_name(path)),
            Parameter::Subexpression(sub) => {
                if let TemplateElement::Expression(inner) = sub.as_element() {
                    params.extend(inner.params.iter());
                    params.extend(inner.hash.values());
                }
            }
            _ => {}
        }
    }
    names
}

fn first_name(path: &handlebars::Path) -> Option<String> {
    match path {
        handlebars::Path::Relative((segs, _)) => match segs.first() {
            Some(PathSeg::Named(name)) => Some(name.clone()),
            _ => None,
        },
        handlebars::Path::Local(_) => None,
    }
}

/// The byte offset of a 1-based line and column in `text`.
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = text.get(start.min(text.len())..).unwrap_or_default();
    start
        + rest
            .char_indices()
            .nth(col.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}
