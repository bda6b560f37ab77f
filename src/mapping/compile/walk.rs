//! Walks a compiled template: every variable must be a Graph path (or the sync time), every
//! helper a known one with arguments that can work; notes the paths and settings it reads.

use std::ops::Range;
use std::sync::Arc;

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Path as HbsPath, PathSeg};
use serde_json::Value as Json;

use super::templates::{MAX_TEMPLATE_DEPTH, offset_of};
use super::{Compiler, inside};
use crate::diag::{SourceText, did_you_mean};
use crate::mapping::Template;
use crate::mapping::convert::{self, ArgError, Env, RegexError};
use crate::mapping::path::{self, GraphPath, RawSeg};
use crate::mapping::spec::At;

/// Walks a compiled template: checks its variables and helpers, notes what it reads.
pub(super) struct Walk<'a> {
    src: &'a Arc<SourceText>,
    at: &'a At<String>,
    text: &'a str,
    vars: Vec<(Vec<String>, GraphPath)>,
    settings: Vec<String>,
    problems: usize,
}

impl<'a> Walk<'a> {
    /// Walks a compiled template: what it reads, or `None` when it has problems (reported).
    pub(super) fn run(
        c: &mut Compiler<'_>,
        src: &'a Arc<SourceText>,
        at: &'a At<String>,
        compiled: &handlebars::Template,
    ) -> Option<Template> {
        let mut walk = Walk {
            src,
            at,
            text: at.value.as_str(),
            vars: Vec::new(),
            settings: Vec::new(),
            problems: 0,
        };
        walk.elements(c, compiled, true, 0);
        if walk.problems > 0 {
            return None;
        }
        Some(Template {
            vars: walk.vars,
            settings: walk.settings,
        })
    }

    fn problem(
        &mut self,
        c: &mut Compiler<'_>,
        near: usize,
        needle: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems += 1;
        let start = self.text[near.min(self.text.len())..]
            .find(needle)
            .map_or(near, |i| near + i);
        let span = inside(self.src, self.at, start..start + needle.len().max(1));
        c.error(self.src, span, message, hint);
    }

    fn elements(
        &mut self,
        c: &mut Compiler<'_>,
        template: &handlebars::Template,
        top: bool,
        depth: usize,
    ) {
        for (i, element) in template.elements.iter().enumerate() {
            let near = template
                .mapping
                .get(i)
                .map_or(0, |m| offset_of(self.text, m.0, m.1));

            match element {
                TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    self.expression(c, h, top, near);
                }
                // Rendering recurses as deep as blocks nest (`else if` chains included).
                TemplateElement::HelperBlock(_) if depth >= MAX_TEMPLATE_DEPTH => {
                    self.problem(
                        c,
                        near,
                        "{{",
                        format!("the template nests blocks more than {MAX_TEMPLATE_DEPTH} deep"),
                        None,
                    );
                    return;
                }
                TemplateElement::HelperBlock(h) => {
                    let name = self.expression(c, h, top, near);
                    // Inside `each` and `with` names refer to the element, not to the user.
                    let inner_top = top && !matches!(name.as_deref(), Some("each" | "with"));
                    if let Some(t) = &h.template {
                        self.elements(c, t, inner_top, depth + 1);
                    }
                    if let Some(t) = &h.inverse {
                        self.elements(c, t, top, depth + 1);
                    }
                }
                _ => self.problem(
                    c,
                    near,
                    "{{",
                    "partials and decorators are not supported in mapping templates".to_string(),
                    None,
                ),
            }
        }
    }

    /// A `{{name params…}}`: a variable, or a helper call. Returns the helper's name.
    fn expression(
        &mut self,
        c: &mut Compiler<'_>,
        h: &handlebars::template::HelperTemplate,
        top: bool,
        near: usize,
    ) -> Option<String> {
        let name = match &h.name {
            Parameter::Name(n) => n.clone(),
            Parameter::Path(p) => raw_path(p),
            _ => return None,
        };
        let is_helper = known_helper(&name);
        if !h.block && h.params.is_empty() && h.hash.is_empty() && !is_helper {
            self.variable(c, &h.name, top, near);
            return None;
        }
        if !is_helper {
            let known: Vec<&str> = convert::names()
                .chain(convert::EXTRA_HELPERS.iter().copied())
                .chain(convert::BUILTIN_HELPERS.iter().copied())
                .collect();
            let hint = did_you_mean(&name, known.iter().copied(), || {
                format!("the helpers are: {}", known.join(", "))
            });
            self.problem(
                c,
                near,
                &name,
                format!("unknown template helper `{name}`"),
                Some(hint),
            );
            return Some(name);
        }
        for p in h.params.iter().chain(h.hash.values()) {
            self.param(c, p, top, near);
        }
        self.helper_arguments(c, &name, &h.params, near);
        Some(name)
    }

    fn param(&mut self, c: &mut Compiler<'_>, p: &Parameter, top: bool, near: usize) {
        match p {
            Parameter::Path(_) | Parameter::Name(_) => self.variable(c, p, top, near),
            Parameter::Subexpression(sub) => match sub.element.as_ref() {
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    self.expression(c, h, top, near);
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Checks what can be checked of a helper's literal arguments, compiling regexes once.
    fn helper_arguments(
        &mut self,
        c: &mut Compiler<'_>,
        name: &str,
        params: &[Parameter],
        near: usize,
    ) {
        match name {
            "setting" => self.setting_argument(c, literal(params, 0), near),
            "regex_replace" => self.regex_argument(c, literal(params, 1), near),
            _ => {}
        }
        if name == "setting"
            || name == "first_non_empty"
            || convert::BUILTIN_HELPERS.contains(&name)
        {
            return;
        }
        // A converter: check its arguments when they are all written out.
        let args: Option<Vec<Json>> = (1..params.len()).map(|i| literal(params, i)).collect();
        if let Some(args) = args {
            self.converter_arguments(c, name, params.is_empty(), &args, near);
        }
    }

    fn setting_argument(&mut self, c: &mut Compiler<'_>, name: Option<Json>, near: usize) {
        let Some(Json::String(name)) = name else {
            self.problem(
                c,
                near,
                "setting",
                "`setting` takes the setting's name in quotes".to_string(),
                Some("e.g. {{setting \"default_role\"}}".to_string()),
            );
            return;
        };
        let before = c.problems.len();
        let span = inside(self.src, self.at, self.find(near, &name));
        c.check_setting(self.src, &name, span);
        self.problems += c.problems.len() - before;
        self.settings.push(name);
    }

    fn regex_argument(&mut self, c: &mut Compiler<'_>, pattern: Option<Json>, near: usize) {
        let Some(Json::String(pattern)) = pattern else {
            self.problem(
                c,
                near,
                "regex_replace",
                "`regex_replace` needs its pattern written in the template, in quotes".to_string(),
                Some("e.g. {{regex_replace mail \"@.*$\" \"\"}}".to_string()),
            );
            return;
        };
        match convert::compile_regex(&pattern) {
            Ok(re) => {
                c.regexes.insert(pattern, re);
            }
            Err(e) => self.problem(c, near, &pattern, e.to_string(), None),
        }
    }

    /// Builds the converter from arguments all written in the template, to report what is
    /// wrong with them now rather than on every user.
    fn converter_arguments(
        &mut self,
        c: &mut Compiler<'_>,
        name: &str,
        no_value: bool,
        args: &[Json],
        near: usize,
    ) {
        if no_value {
            let message = format!("`{name}` needs the value to convert");
            self.problem(c, near, name, message, None);
            return;
        }
        // A pattern missing here failed to compile, which is reported already.
        let regexes = &c.regexes;
        let mut regex = |p: &str| regexes.get(p).cloned().ok_or(RegexError::Reported);
        // `first_non_empty` is not checked here: its arguments are the user's values.
        let mut graph_path =
            |_: usize, _: &str| -> Result<GraphPath, ArgError> { Err(ArgError::reported(None)) };
        let mut env = Env {
            lookups: &c.lookups,
            regex: &mut regex,
            graph_path: &mut graph_path,
        };
        if let Err(e) = convert::build(name, args, &mut env)
            && !e.is_reported()
        {
            self.problem(c, near, name, e.message, None);
        }
    }

    fn find(&self, near: usize, needle: &str) -> Range<usize> {
        let start = self.text[near.min(self.text.len())..]
            .find(needle)
            .map_or(near, |i| near + i);
        start..start + needle.len().max(1)
    }

    /// A variable: at the top of a template, a Graph path (or `connectorSyncTime`).
    fn variable(&mut self, c: &mut Compiler<'_>, p: &Parameter, top: bool, near: usize) {
        if !top {
            // Inside `each` and `with` names are the element's; reaching out of the block
            // would read data the template is not given.
            if let Parameter::Path(HbsPath::Relative((_, raw))) = p
                && (raw.starts_with("..") || raw.starts_with("@root"))
            {
                self.problem(
                    c,
                    near,
                    raw,
                    format!("`{raw}` reads from outside the block, which mapping templates do not support"),
                    Some("use the property outside the `each` or `with` block".to_string()),
                );
            }
            return;
        }
        let (segs, raw): (Vec<String>, String) = match p {
            Parameter::Name(n) => (n.split(['.', '/']).map(str::to_string).collect(), n.clone()),
            Parameter::Path(HbsPath::Relative((segs, raw))) => {
                let mut names = Vec::new();
                for seg in segs {
                    match seg {
                        PathSeg::Named(n) => names.push(n.clone()),
                        _ => {
                            self.problem(
                                c,
                                near,
                                raw,
                                format!("`{raw}` does not name a Graph property"),
                                Some(
                                    "write the property's path, e.g. {{manager.mail}}".to_string(),
                                ),
                            );
                            return;
                        }
                    }
                }
                (names, raw.clone())
            }
            Parameter::Path(HbsPath::Local((_, name, raw))) => {
                self.problem(
                    c,
                    near,
                    raw,
                    format!("`@{name}` only has a value inside {{{{#each}}}}"),
                    None,
                );
                return;
            }
            _ => return,
        };
        if segs.is_empty() || segs.iter().any(String::is_empty) {
            self.problem(
                c,
                near,
                &raw,
                "name a Graph property here".to_string(),
                Some("e.g. {{givenName}}".to_string()),
            );
            return;
        }
        let raw_segs: Vec<(RawSeg, Range<usize>)> = segs
            .iter()
            .map(|s| {
                let seg = s
                    .parse::<usize>()
                    .map_or_else(|_| RawSeg::Name(s.clone()), RawSeg::Index);
                (seg, 0..0)
            })
            .collect();
        match path::resolve(&raw_segs) {
            Ok(path) => self.vars.push((segs, path)),
            Err(e) => {
                let message = format!("template variable `{raw}`: {}", e.message);
                self.problem(c, near, &raw, message, e.hint);
            }
        }
    }
}

/// Parameter `i` of a helper call when it is written as a literal.
fn literal(params: &[Parameter], i: usize) -> Option<Json> {
    match params.get(i) {
        Some(Parameter::Literal(v)) => Some(v.clone()),
        _ => None,
    }
}

fn raw_path(p: &HbsPath) -> String {
    match p {
        HbsPath::Relative((_, raw)) | HbsPath::Local((_, _, raw)) => raw.clone(),
    }
}

fn known_helper(name: &str) -> bool {
    convert::names().any(|n| n == name)
        || convert::EXTRA_HELPERS.contains(&name)
        || convert::BUILTIN_HELPERS.contains(&name)
}
