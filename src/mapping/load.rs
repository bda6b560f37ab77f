//! Where a mapping comes from: a file, a mapping shipped inside the binary, or the one a
//! config chooses (its own file, else the shipped mapping for its target, with an old
//! Oomnitza config's `mapping.FIELD` lines laid over it). Reading files happens here, so the
//! compiler and the engine never touch the disk.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::compile::{self, Options};
use super::{Mapping, legacy, spec};
use crate::config::{Config, Preset, RestApi, TargetKind};
use crate::diag::{Problem, SourceText};

/// The mappings shipped with userload, built into the binary: `(name, file text)`.
pub const SHIPPED: &[(&str, &str)] = &[
    ("scim", include_str!("../../mappings/scim.toml")),
    ("oomnitza", include_str!("../../mappings/oomnitza.toml")),
    ("snipeit", include_str!("../../mappings/snipeit.toml")),
    ("glpi", include_str!("../../mappings/glpi.toml")),
    (
        "freshservice",
        include_str!("../../mappings/freshservice.toml"),
    ),
];

/// The text of a shipped mapping (`scim`, `oomnitza`, `snipeit`, `glpi`, `freshservice`).
pub fn shipped(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Compiles mapping text; problems are reported under `source`'s name.
pub fn compile_source(
    source: &Arc<SourceText>,
    options: Options<'_>,
) -> Result<Mapping, Vec<Problem>> {
    let (spec, problems) = spec::read(source);
    with_earlier(problems, compile::compile(spec, options))
}

/// A compile's result with problems found before it; any problem at all fails it.
fn with_earlier(
    mut problems: Vec<Problem>,
    compiled: Result<Mapping, Vec<Problem>>,
) -> Result<Mapping, Vec<Problem>> {
    match compiled {
        Ok(mapping) if problems.is_empty() => Ok(mapping),
        Ok(_) => Err(crate::diag::sorted(problems)),
        Err(more) => {
            problems.extend(more);
            Err(crate::diag::sorted(problems))
        }
    }
}

/// Reads and compiles a mapping file on its own (no config: settings are not checked).
pub fn load_file(path: &Path) -> Result<Mapping, Vec<Problem>> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => compile_source(&SourceText::new(name, text), Options::default()),
        Err(e) => {
            let source = SourceText::new(&name, "");
            Err(vec![Problem::error(
                &source,
                0..0,
                format!("cannot read {name}: {e}"),
            )])
        }
    }
}

/// The mapping a config uses, compiled and checked against the config: the file named by
/// `[sync] mapping`, else the shipped mapping for the target type (`scim`, `oomnitza`, and
/// `snipeit` for the Snipe-IT preset; other `rest` targets must name one), with an Oomnitza
/// config's `mapping.FIELD` lines laid over it and its `sync_field` as the match key.
/// Settings the mapping reads must be set in the config.
pub fn load(config: &Config) -> Result<Mapping, Vec<Problem>> {
    let config_text = std::fs::read_to_string(&config.path).unwrap_or_default();
    let config_source = SourceText::new(config.path.display().to_string(), config_text);
    let source = mapping_source(config, &config_source)?;
    let (legacy, problems) = legacy::fields(&config.legacy_mappings);
    // Oomnitza's `sync_field` names the field users are matched on.
    let oomnitza = config.target.kind == TargetKind::Oomnitza;
    let sync_field = config
        .target
        .sync_field
        .as_ref()
        .filter(|_| oomnitza)
        .map(|f| {
            (
                f.clone(),
                Arc::clone(&config_source),
                place_of(&config_source, "sync_field"),
            )
        });
    let options = Options {
        settings: Some(&config.settings),
        extra_fields: legacy,
        match_field: sync_field,
        target_kind: Some(config.target.kind),
        input_groups: Some(&config.source.input_groups),
    };
    let mut mapping = with_earlier(problems, compile_source(&source, options))?;
    mapping.origin = crate::mapping::compile::digest(&[config_source.text(), source.text()]);
    let legacy: Vec<String> = config
        .legacy_mappings
        .iter()
        .map(|m| format!("{}={}", m.field, m.spec))
        .collect();
    let settings = serde_json::to_string(&config.settings).unwrap_or_default();
    mapping.recipe = crate::mapping::compile::digest(&[
        source.text(),
        &settings,
        &legacy.join("\n"),
        config
            .target
            .sync_field
            .as_deref()
            .filter(|_| oomnitza)
            .unwrap_or_default(),
        config.target.kind.name(),
        &config.source.input_groups.join("\n"),
    ]);
    Ok(mapping)
}

/// The mapping text a config chooses; problems point into the config.
fn mapping_source(
    config: &Config,
    config_source: &Arc<SourceText>,
) -> Result<Arc<SourceText>, Vec<Problem>> {
    if let Some(path) = &config.sync.mapping {
        let name = path.display().to_string();
        return match std::fs::read_to_string(path) {
            Ok(text) => Ok(SourceText::new(name, text)),
            Err(e) => {
                let span = place_of(config_source, "mapping");
                let message = format!("cannot read the mapping file {name}: {e}");
                Err(vec![Problem::error(config_source, span, message)])
            }
        };
    }
    let name = match (config.target.kind, &config.target.api) {
        (TargetKind::Scim, _) => "scim",
        (TargetKind::Oomnitza, _) => "oomnitza",
        (TargetKind::Rest, Some(RestApi::Preset(Preset::Snipeit))) => "snipeit",
        (TargetKind::Rest, Some(RestApi::Preset(Preset::Glpi))) => "glpi",
        (TargetKind::Rest, Some(RestApi::Preset(Preset::Freshservice))) => "freshservice",
        (TargetKind::Rest, _) => {
            let span = place_of(config_source, "type");
            return Err(vec![
                Problem::error(
                    config_source,
                    span,
                    "a `rest` target has no shipped mapping",
                )
                .with_hint("name one in [sync]: mapping = \"mappings/snipeit.toml\" (or your own)"),
            ]);
        }
    };
    let text = shipped(name).unwrap_or_default();
    Ok(SourceText::new(
        format!("mappings/{name}.toml (built in)"),
        text,
    ))
}

/// Where `key = …` is written in a config, for problems about it (the file's start if not).
fn place_of(source: &SourceText, key: &str) -> Range<usize> {
    let text = source.text();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(['=', ':']))
        {
            return offset + indent..offset + indent + key.len();
        }
        offset += line.len();
    }
    0..0
}
