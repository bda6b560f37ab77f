//! `userload init`: a commented config and a mapping to start from, chosen by flags.
//!
//! The config is the annotated example shipped with userload (`config.ini.example`, or
//! `examples/userload.toml` for TOML) with the values the flags give filled in; the mapping
//! is the shipped one for the target, copied so that the admin can edit it. Nothing is
//! asked, and nothing is ever overwritten: when either file exists, neither is written.

use std::path::{Path, PathBuf};

use super::Outcome;

const INI_TEMPLATE: &str = include_str!("../../config.ini.example");
const TOML_TEMPLATE: &str = include_str!("../../examples/userload.toml");

/// The config's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitFormat {
    /// INI, in the style of the Oomnitza connector's config.ini.
    Ini,
    /// TOML.
    Toml,
}

/// The asset system to write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitTarget {
    /// A SCIM 2.0 server.
    Scim,
    /// Snipe-IT, through its REST API.
    Snipeit,
    /// GLPI, through its legacy REST API (a session opened with a user's API token).
    Glpi,
    /// Freshservice's requesters, through its API v2 (the API key as the basic-auth user).
    Freshservice,
    /// Oomnitza, through its bulk upload API.
    Oomnitza,
}

impl InitTarget {
    fn name(self) -> &'static str {
        match self {
            InitTarget::Scim => "scim",
            InitTarget::Snipeit => "snipeit",
            InitTarget::Glpi => "glpi",
            InitTarget::Freshservice => "freshservice",
            InitTarget::Oomnitza => "oomnitza",
        }
    }
}

/// Arguments of `userload init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to write into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// The config's format.
    #[arg(long, value_enum, default_value = "ini")]
    format: InitFormat,
    /// The asset system; its shipped mapping is copied to mappings/.
    #[arg(long, value_enum, default_value = "scim")]
    target: InitTarget,
    /// The Directory (tenant) ID, or a verified domain of the tenant.
    #[arg(long, value_name = "ID")]
    tenant_id: Option<String>,
    /// The Application (client) ID of the app registration.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The asset system's API URL (e.g. https://assets.example.com/scim/v2).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// An OData filter on users (by default every user is read).
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
}

/// `key = value` as the format writes it.
fn assignment(format: InitFormat, key: &str, value: &str) -> String {
    match format {
        InitFormat::Ini => format!("{key} = {value}"),
        InitFormat::Toml => {
            let quoted = toml::Value::String(value.to_owned()).to_string();
            format!("{key} = {quoted}")
        }
    }
}

/// `text` with the line of `key` in `[section]` (written, or commented out) replaced: by
/// `key = value`, or commented out when `value` is `None`. A trailing comment is kept.
fn set(text: &str, format: InitFormat, section: &str, key: &str, value: Option<&str>) -> String {
    let mut current = String::new();
    let mut done = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = name.to_owned();
        }
        let bare = trimmed.trim_start_matches(['#', ';']).trim_start();
        let is_key = bare
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if !done && current == section && is_key {
            done = true;
            let comment = match format {
                InitFormat::Toml => bare.find("   #").map(|i| bare[i..].to_owned()),
                InitFormat::Ini => None,
            };
            let written = match value {
                Some(value) => assignment(format, key, value),
                None if trimmed.starts_with(['#', ';']) => line.to_owned(),
                None => format!("# {trimmed}"),
            };
            out.push_str(&written);
            if let (Some(comment), Some(_)) = (comment, value) {
                out.push_str(&comment);
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The config `args` ask for.
pub fn config_text(args: &InitArgs) -> String {
    let format = args.format;
    let template = match format {
        InitFormat::Ini => INI_TEMPLATE,
        InitFormat::Toml => TOML_TEMPLATE,
    };
    let mapping = format!("mappings/{}.toml", args.target.name());
    let heading = match format {
        InitFormat::Ini => {
            "# userload configuration (INI), written by `userload init`. Fill in the values, then\n\
                            #   userload validate --config userload.ini"
        }
        InitFormat::Toml => {
            "# userload configuration (TOML), written by `userload init`. Fill in the values, then\n\
                             #   userload validate --config userload.toml"
        }
    };
    // The template's own opening lines say how to copy it; this file is the copy.
    let body: String = template
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut text = format!("{heading}\n{body}");
    let kind = match args.target {
        InitTarget::Scim => "scim",
        InitTarget::Snipeit | InitTarget::Glpi | InitTarget::Freshservice => "rest",
        InitTarget::Oomnitza => "oomnitza",
    };
    let url = args.url.clone().unwrap_or_else(|| {
        match args.target {
            InitTarget::Scim => "https://assets.example.com/scim/v2",
            InitTarget::Snipeit => "https://snipeit.example.com",
            InitTarget::Glpi => "https://glpi.example.com",
            InitTarget::Freshservice => "https://example.freshservice.com",
            InitTarget::Oomnitza => "https://example.oomnitza.com",
        }
        .to_owned()
    });
    let replacements: [(&str, &str, Option<&str>); 6] = [
        ("source", "tenant_id", args.tenant_id.as_deref()),
        ("source", "client_id", args.client_id.as_deref()),
        ("target", "type", Some(kind)),
        ("target", "url", Some(&url)),
        ("sync", "mapping", Some(&mapping)),
        ("source", "filter", args.filter.as_deref()),
    ];
    for (section, key, value) in replacements {
        if key == "tenant_id" || key == "client_id" {
            // Without a flag the example's placeholder stays, for the admin to fill in.
            if let Some(value) = value {
                text = set(&text, format, section, key, Some(value));
            }
            continue;
        }
        text = set(&text, format, section, key, value);
    }
    match args.target {
        InitTarget::Snipeit => {
            text = set(&text, format, "target", "preset", Some("snipeit"));
        }
        InitTarget::Glpi => {
            text = set(&text, format, "target", "preset", Some("glpi"));
            text = set(&text, format, "target", "auth", Some("session"));
        }
        InitTarget::Freshservice => {
            text = set(&text, format, "target", "preset", Some("freshservice"));
            text = set(&text, format, "target", "auth", Some("basic"));
        }
        InitTarget::Oomnitza => {
            text = set(&text, format, "target", "sync_field", Some("USER"));
        }
        InitTarget::Scim => {}
    }
    text
}

/// `userload init`.
pub fn run(args: &InitArgs) -> Outcome {
    let name = match args.format {
        InitFormat::Ini => "userload.ini",
        InitFormat::Toml => "userload.toml",
    };
    let config = args.dir.join(name);
    let mapping_name = format!("{}.toml", args.target.name());
    let mapping = args.dir.join("mappings").join(&mapping_name);
    let Some(shipped) = crate::mapping::shipped(args.target.name()) else {
        errln!("error: no shipped mapping for {}", args.target.name());
        return Outcome::Failed;
    };
    let existing: Vec<&Path> = [config.as_path(), mapping.as_path()]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        for path in existing {
            errln!(
                "error: {} exists; userload init never overwrites a file",
                path.display()
            );
        }
        errln!("nothing was written; move the file away or choose another --dir");
        return Outcome::Failed;
    }
    let written = std::fs::create_dir_all(args.dir.join("mappings"))
        .and_then(|()| write_new(&mapping, shipped))
        .and_then(|()| write_new(&config, &config_text(args)));
    if let Err(e) = written {
        errln!("error: cannot write into {}: {e}", args.dir.display());
        return Outcome::Failed;
    }
    outln!("wrote {}", config.display());
    outln!("wrote {}", mapping.display());
    outln!("next:");
    let missing: Vec<&str> = [
        ("tenant_id", args.tenant_id.is_none()),
        ("client_id", args.client_id.is_none()),
        ("url", args.url.is_none()),
    ]
    .into_iter()
    .filter_map(|(key, missing)| missing.then_some(key))
    .collect();
    match missing.as_slice() {
        [] => outln!("  1. read {name} through and change what does not fit"),
        [key] => outln!("  1. fill in {key} in {name} (see the README's \"A real tenant\")"),
        [keys @ .., last] => outln!(
            "  1. fill in {} and {last} in {name} (see the README's \"A real tenant\")",
            keys.join(", ")
        ),
    }
    outln!("  2. export USERLOAD_SECRET=… and ASSET_TOKEN=… (or use file: paths)");
    outln!("  3. userload validate --config {}", config.display());
    outln!("  4. userload check --config {}", config.display());
    outln!("  5. userload plan --config {}", config.display());
    Outcome::Success
}

/// Writes a file that must not exist yet (even if one appeared since the check).
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commented_key_is_set_and_kept_in_its_section() {
        let text = "[source]\n# page_size = 999\n[target]\n# page_size = 100\n";
        let out = set(text, InitFormat::Ini, "target", "page_size", Some("50"));
        assert_eq!(
            out,
            "[source]\n# page_size = 999\n[target]\npage_size = 50\n"
        );
    }

    #[test]
    fn a_key_without_a_value_is_commented_out() {
        let text = "[source]\nfilter = \"a eq 'b'\"\n";
        let out = set(text, InitFormat::Toml, "source", "filter", None);
        assert_eq!(out, "[source]\n# filter = \"a eq 'b'\"\n");
    }

    #[test]
    fn toml_values_are_quoted_and_keep_their_comment() {
        let text =
            "[target]\n# preset = \"snipeit\"            # rest: a built-in API description\n";
        let out = set(text, InitFormat::Toml, "target", "preset", Some("snipeit"));
        assert!(
            out.starts_with("[target]\npreset = \"snipeit\"   # rest"),
            "{out}"
        );
    }
}
