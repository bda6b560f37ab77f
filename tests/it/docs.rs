//! The documents cannot drift from the program: every `userload …` command they show is
//! checked against the real binary's `--help` (each subcommand and flag must exist, and a
//! command in a code block must give the flags its usage requires), the commands that need
//! no network are run, and every relative link between the documents leads to a file and,
//! with `#…`, to one of its headings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::util::{outcome, repo, userload};

/// Subcommands that touch no network and write only into their working folder.
const OFFLINE: &[&str] = &[
    "init",
    "validate",
    "filter check",
    "filter test",
    "mapping test",
    "mapping preview",
];

/// Shipped mappings `mapping test` takes by name instead of a path.
const SHIPPED_MAPPINGS: &[&str] = &["scim", "oomnitza", "snipeit"];

/// What a placeholder such as `<Directory ID>` becomes when a command is run.
const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000001";

/// The documents for readers: README, ARCHITECTURE, CHANGELOG and everything in docs/.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "CHANGELOG.md"]
        .iter()
        .map(|name| root.join(name))
        .collect();
    let mut reference: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    reference.sort();
    assert!(reference.len() >= 7, "docs/ holds {reference:?}");
    docs.extend(reference);
    docs
}

/// A document's name relative to the repository, for messages.
fn name(doc: &Path) -> String {
    doc.strip_prefix(repo()).unwrap().display().to_string()
}

/// A document cut into fenced code blocks and the prose between them.
struct Parsed {
    /// Each fenced block: its info string, the line of its first content line, its lines.
    blocks: Vec<(String, usize, Vec<String>)>,
    /// The prose paragraphs (lines joined by spaces), with the line each starts on.
    paragraphs: Vec<(usize, String)>,
    /// The prose lines that are headings (`#` … `######`), as written.
    headings: Vec<String>,
}

fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed {
        blocks: Vec::new(),
        paragraphs: Vec::new(),
        headings: Vec::new(),
    };
    let mut block: Option<(String, usize, Vec<String>)> = None;
    let mut paragraph: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fence = line.trim_start().starts_with("```");
        if let Some((info, start, mut lines)) = block.take() {
            if fence {
                parsed.blocks.push((info, start, lines));
            } else {
                lines.push(line.to_owned());
                block = Some((info, start, lines));
            }
            continue;
        }
        if fence || line.trim().is_empty() {
            parsed.paragraphs.extend(paragraph.take());
            if fence {
                let info = line.trim_start().trim_start_matches('`').trim().to_owned();
                block = Some((info, number + 1, Vec::new()));
            }
            continue;
        }
        if line.starts_with('#') {
            parsed.headings.push(line.to_owned());
        }
        match &mut paragraph {
            Some((_, joined)) => {
                joined.push(' ');
                joined.push_str(line);
            }
            None => paragraph = Some((number, line.to_owned())),
        }
    }
    assert!(block.is_none(), "a code block is never closed");
    parsed.paragraphs.extend(paragraph);
    parsed
}

/// The code spans of a paragraph (`` `x` ``, ``` ``x`` ```), and the paragraph without them.
fn code_spans(paragraph: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = paragraph.chars().collect();
    let mut spans = Vec::new();
    let mut rest = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            rest.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        let start = i + run;
        let mut end = start;
        let close = loop {
            if end >= chars.len() {
                break None;
            }
            let here = chars[end..].iter().take_while(|&&c| c == '`').count();
            if here == run {
                break Some(end);
            }
            end += here.max(1);
        };
        match close {
            Some(end) => {
                spans.push(
                    chars[start..end]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_owned(),
                );
                i = end + run;
            }
            None => {
                rest.extend(&chars[i..start]);
                i = start;
            }
        }
    }
    (spans, rest)
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_` kept, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors a document's headings make, numbered as GitHub numbers repeated ones.
fn anchors(parsed: &Parsed) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for heading in &parsed.headings {
        let base = slug(heading);
        let count = seen.entry(base.clone()).or_default();
        anchors.insert(match *count {
            0 => base,
            n => format!("{base}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// A command line as a shell would split it into words, up to a comment or a redirection;
/// `a | b`, `a; b` and `a && b` give one list of words per command. `<Some thing>` stays one
/// word (a placeholder for the reader to fill in).
fn shell_words(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let text = word.get_or_insert_with(String::new);
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                    text.push(inner);
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '<' if word.is_none() => {
                let mut text = String::from('<');
                for inner in chars.by_ref() {
                    text.push(inner);
                    if inner == '>' {
                        break;
                    }
                }
                word = Some(text);
            }
            c if c.is_whitespace() => commands.last_mut().unwrap().extend(word.take()),
            '#' | '>' if word.is_none() => break,
            '|' | ';' | '&' => {
                commands.last_mut().unwrap().extend(word.take());
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                commands.push(Vec::new());
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    commands.last_mut().unwrap().extend(word);
    commands.retain(|words| !words.is_empty());
    commands
}

/// The arguments given to userload by a command, if it runs userload: `userload …`,
/// `/path/to/userload …`, or `cargo run … -- …`. Leading `NAME=value` words are skipped.
fn userload_args(words: &[String]) -> Option<Vec<String>> {
    let words: Vec<&String> = words
        .iter()
        .skip_while(|w| w.contains('=') && !w.starts_with('-'))
        .collect();
    let (first, rest) = words.split_first()?;
    if first.as_str() == "userload" || first.ends_with("/userload") {
        return Some(rest.iter().map(|w| w.to_string()).collect());
    }
    if first.as_str() == "cargo" && rest.first().is_some_and(|w| w.as_str() == "run") {
        let dashes = rest.iter().position(|w| w.as_str() == "--")?;
        return Some(rest[dashes + 1..].iter().map(|w| w.to_string()).collect());
    }
    None
}

/// The logical lines of a code block that are commands: continuation lines joined, and in a
/// `console` block only the lines after a `$ ` prompt; in a `cron` block the five time
/// fields are dropped.
fn command_lines(info: &str, lines: &[String]) -> Vec<(usize, String)> {
    let mut commands: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (offset, line) in lines.iter().enumerate() {
        let text = match pending.take() {
            Some((start, mut joined)) => {
                joined.push(' ');
                joined.push_str(line.trim());
                (start, joined)
            }
            None if info == "console" => match line.strip_prefix("$ ") {
                Some(command) => (offset, command.to_owned()),
                None => continue,
            },
            None if info == "cron" => {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if line.trim_start().starts_with('#') || fields.len() < 6 {
                    continue;
                }
                (offset, fields[5..].join(" "))
            }
            None => (offset, line.clone()),
        };
        match text.1.strip_suffix('\\') {
            Some(head) => pending = Some((text.0, head.to_owned())),
            None => commands.push(text),
        }
    }
    commands.extend(pending);
    commands
}

/// A `userload` command shown in a document.
struct Shown {
    /// Where: `docs/x.md:12`.
    place: String,
    /// The arguments after `userload`.
    args: Vec<String>,
    /// In a code block (a whole command), rather than a code span in prose (often a part).
    fenced: bool,
    /// Which code block, to run the commands of one block in order in one folder.
    block: usize,
}

/// Every `userload` command the documents show, in code blocks (`sh`, `console`, `cron`) and
/// in prose code spans that start with `userload `.
fn shown_commands() -> Vec<Shown> {
    let mut shown = Vec::new();
    let mut block_id = 0;
    for doc in documents() {
        let parsed = parse(&std::fs::read_to_string(&doc).unwrap());
        for (info, start, lines) in &parsed.blocks {
            block_id += 1;
            if !["sh", "console", "cron"].contains(&info.as_str()) {
                continue;
            }
            for (offset, line) in command_lines(info, lines) {
                for words in shell_words(&line) {
                    if let Some(args) = userload_args(&words) {
                        shown.push(Shown {
                            place: format!("{}:{}", name(&doc), start + offset),
                            args,
                            fenced: true,
                            block: block_id,
                        });
                    }
                }
            }
        }
        for (line, paragraph) in &parsed.paragraphs {
            for span in code_spans(paragraph).0 {
                if let Some(rest) = span.strip_prefix("userload ") {
                    shown.push(Shown {
                        place: format!("{}:{line}", name(&doc)),
                        args: loose_words(rest),
                        fenced: false,
                        block: 0,
                    });
                }
            }
        }
    }
    shown
}

/// The words of a command written in a code span with usage notation
/// (`[--format ini\|toml]`, `(--at HH:MM \| --every 6h)`): brackets and bars dropped.
fn loose_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .flat_map(|word| word.split("\\|"))
        .map(|word| word.trim_matches(|c| matches!(c, '[' | ']' | '(' | ')' | '|')))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What `userload … --help` says about one (sub)command.
#[derive(Default)]
struct Help {
    /// Its subcommands (none for a leaf).
    subcommands: BTreeSet<String>,
    /// Its flags as written (`--config`, `-c`), each with its long name and whether it takes
    /// a value.
    flags: BTreeMap<String, (String, bool)>,
    /// Flags its usage requires, each as the set of alternatives.
    required: Vec<BTreeSet<String>>,
}

fn help(path: &[String]) -> Help {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let (code, stdout, stderr) = outcome(&userload(&repo(), &args));
    assert_eq!(code, 0, "userload {}: {stderr}", args.join(" "));
    let mut help = Help::default();
    let mut section = "";
    for line in stdout.lines() {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            help.required = required_flags(usage);
        } else if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
        } else if section == "Commands:" && line.starts_with("  ") && !line.starts_with("   ") {
            let command = line.split_whitespace().next().unwrap();
            if command != "help" {
                help.subcommands.insert(command.to_owned());
            }
        } else if section == "Options:" && is_option_line(line) {
            let takes_value = line.contains('<');
            let names: Vec<&str> = line
                .split_whitespace()
                .take_while(|w| w.starts_with('-'))
                .map(|w| w.trim_end_matches(','))
                .collect();
            let long = names.last().unwrap().to_string();
            for flag in names {
                help.flags
                    .insert(flag.to_owned(), (long.clone(), takes_value));
            }
        }
    }
    help
}

/// Whether a line of `--help` names an option (`  -c, --config <CONFIG>`, `      --json`)
/// rather than describing one further in.
fn is_option_line(line: &str) -> bool {
    let text = line.trim_start();
    let indent = line.len() - text.len();
    indent <= 6 && text.starts_with('-') && text.len() > 1 && !text.starts_with("- ")
}

/// The flags a usage line requires: those outside `[…]`, and one of each `<--a …|--b …>`.
fn required_flags(usage: &str) -> Vec<BTreeSet<String>> {
    let mut required = Vec::new();
    let mut plain = String::new();
    let mut group = String::new();
    let (mut square, mut angle) = (0, 0);
    for c in usage.chars() {
        match c {
            '[' => square += 1,
            ']' => square -= 1,
            _ if square > 0 => {}
            '<' => {
                angle += 1;
                if angle > 1 {
                    group.push(c);
                }
            }
            '>' => {
                angle -= 1;
                if angle > 0 {
                    group.push(c);
                } else if group.starts_with("--") {
                    let alternatives = group.split('|').filter_map(|a| a.split_whitespace().next());
                    required.push(alternatives.map(str::to_owned).collect());
                }
                if angle == 0 {
                    group.clear();
                }
            }
            c if angle > 0 => group.push(c),
            c => plain.push(c),
        }
    }
    for word in plain.split_whitespace().filter(|w| w.starts_with("--")) {
        required.push(BTreeSet::from([word.to_owned()]));
    }
    required
}

/// The help of every (sub)command path asked for, fetched once each.
struct Helps(BTreeMap<Vec<String>, Help>);

impl Helps {
    fn get(&mut self, path: &[String]) -> &Help {
        self.0.entry(path.to_vec()).or_insert_with(|| help(path))
    }
}

/// A shown command read against the binary's help: the subcommand path, the flags given
/// (by their long names, with their values), the positional arguments, or what is wrong
/// with it.
struct Reading {
    path: Vec<String>,
    flags: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

fn read_command(helps: &mut Helps, shown: &Shown) -> Result<Reading, String> {
    let mut reading = Reading {
        path: Vec::new(),
        flags: Vec::new(),
        positional: Vec::new(),
    };
    let mut words = shown.args.iter();
    while let Some(word) = words.next() {
        let help = helps.get(&reading.path);
        if word.starts_with('-') && word.len() > 1 {
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (word.clone(), None),
            };
            let Some((long, takes_value)) = help.flags.get(&flag).cloned() else {
                return Err(format!(
                    "`{flag}` is not a flag of `userload {}`",
                    reading.path.join(" ")
                ));
            };
            let value = match (takes_value, inline) {
                (true, None) => words.next().cloned(),
                (_, inline) => inline,
            };
            reading.flags.push((long, value));
        } else if reading.positional.is_empty() && help.subcommands.contains(word) {
            reading.path.push(word.clone());
        } else if reading.path.is_empty() || !help.subcommands.is_empty() && shown.fenced {
            return Err(format!(
                "`{word}` is not a subcommand of `userload {}`",
                reading.path.join(" ")
            ));
        } else {
            reading.positional.push(word.clone());
        }
    }
    let help = helps.get(&reading.path);
    if shown.fenced {
        if !help.subcommands.is_empty() {
            return Err(format!(
                "`userload {}` needs a subcommand",
                reading.path.join(" ")
            ));
        }
        for alternatives in &help.required {
            if !reading
                .flags
                .iter()
                .any(|(flag, _)| alternatives.contains(flag))
            {
                return Err(format!("needs {alternatives:?}"));
            }
        }
    }
    Ok(reading)
}

#[test]
fn every_command_in_the_docs_exists_with_its_flags() {
    let mut helps = Helps(BTreeMap::new());
    let shown = shown_commands();
    let mut problems = Vec::new();
    let mut subcommands = BTreeSet::new();
    for command in &shown {
        match read_command(&mut helps, command) {
            Ok(reading) => {
                subcommands.insert(reading.path.join(" "));
            }
            Err(problem) => problems.push(format!(
                "{}: userload {}: {problem}",
                command.place,
                command.args.join(" ")
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every subcommand is shown somewhere, so none is left undocumented.
    let mut missing = Vec::new();
    let mut stack = vec![Vec::new()];
    while let Some(path) = stack.pop() {
        let children = helps.get(&path).subcommands.clone();
        if children.is_empty() && !subcommands.contains(&path.join(" ")) {
            missing.push(path.join(" "));
        }
        for child in children {
            let mut deeper = path.clone();
            deeper.push(child);
            stack.push(deeper);
        }
    }
    assert!(missing.is_empty(), "the documents never show: {missing:?}");
}

/// The files a command reads, by flag or position, that must exist for it to be run here.
fn files_read(reading: &Reading) -> Vec<String> {
    let mut files: Vec<String> = reading
        .flags
        .iter()
        .filter(|(flag, _)| ["--config", "--users", "--file"].contains(&flag.as_str()))
        .filter_map(|(_, value)| value.clone())
        .collect();
    let path = reading.path.join(" ");
    if path == "filter test" || path == "mapping test" {
        files.extend(
            reading
                .positional
                .iter()
                .filter(|p| !SHIPPED_MAPPINGS.contains(&p.as_str()))
                .cloned(),
        );
    }
    files
}

#[test]
fn the_offline_commands_in_the_docs_run() {
    let mut helps = Helps(BTreeMap::new());
    let mut ran = Vec::new();
    let mut problems = Vec::new();
    let mut folders: BTreeMap<usize, tempfile::TempDir> = BTreeMap::new();
    for shown in shown_commands().iter().filter(|s| s.fenced) {
        // A command the binary does not know is the other test's to report.
        let Ok(reading) = read_command(&mut helps, shown) else {
            continue;
        };
        let path = reading.path.join(" ");
        if !OFFLINE.contains(&path.as_str()) {
            continue;
        }
        if path == "init" {
            let dir = reading.flags.iter().find(|(f, _)| f == "--dir");
            if dir.is_some_and(|(_, d)| d.as_deref().is_none_or(|d| Path::new(d).is_absolute())) {
                continue;
            }
            folders.insert(shown.block, tempfile::tempdir().unwrap());
        }
        let folder = folders
            .get(&shown.block)
            .map_or_else(repo, |dir| dir.path().to_owned());
        if files_read(&reading)
            .iter()
            .any(|f| !folder.join(f).exists())
        {
            continue;
        }
        let args: Vec<String> = shown
            .args
            .iter()
            .map(|a| {
                if a.starts_with('<') {
                    PLACEHOLDER.to_owned()
                } else {
                    a.clone()
                }
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = outcome(&userload(&folder, &args));
        if code != 0 {
            problems.push(format!("{}: exit {code}\n{stdout}{stderr}", shown.place));
        }
        ran.push(format!("{}: userload {}", shown.place, args.join(" ")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for expected in [
        "validate",
        "filter check",
        "filter test",
        "mapping test",
        "init",
    ] {
        assert!(
            ran.iter()
                .any(|r| r.contains(&format!("userload {expected} "))),
            "no `userload {expected}` from the documents was run: {ran:#?}"
        );
    }
}

/// `path` with `.` and `..` resolved, without touching the file system.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            part => out.push(part),
        }
    }
    out
}

/// The targets of the inline links `[text](target)` in a text without code spans.
fn link_targets(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| rest[..end].trim().to_owned())
        })
        .collect()
}

#[test]
fn links_between_the_docs_resolve() {
    let docs = documents();
    let mut problems = Vec::new();
    let mut linked: BTreeSet<PathBuf> = BTreeSet::new();
    let mut checked = 0;
    for doc in &docs {
        let parsed = parse(&std::fs::read_to_string(doc).unwrap());
        for (line, paragraph) in &parsed.paragraphs {
            for target in link_targets(&code_spans(paragraph).1) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let path = match file {
                    "" => doc.clone(),
                    file => normal(&doc.parent().unwrap().join(file)),
                };
                let place = format!("{}:{line}: ({target})", name(doc));
                if !path.exists() {
                    problems.push(format!("{place}: no such file"));
                    continue;
                }
                linked.insert(path.clone());
                if anchor.is_empty() {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if !anchors(&parse(&text)).contains(anchor) {
                    problems.push(format!("{place}: no heading makes #{anchor}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 30, "only {checked} links checked");
    for doc in docs.iter().filter(|d| d.starts_with(repo().join("docs"))) {
        assert!(linked.contains(doc), "nothing links to {}", name(doc));
    }
}

#[test]
fn the_readme_stays_short() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; reference belongs in docs/"
    );
}

#[test]
fn shell_words_split_as_a_shell_would() {
    assert_eq!(
        shell_words("userload init --tenant-id <Directory ID> --filter \"a eq 'b'\" # note"),
        vec![vec![
            "userload",
            "init",
            "--tenant-id",
            "<Directory ID>",
            "--filter",
            "a eq 'b'"
        ]]
    );
    assert_eq!(
        shell_words("a && userload status -c x > out.txt"),
        vec![vec!["a"], vec!["userload", "status", "-c", "x"]]
    );
    assert_eq!(
        slug("### Oomnitza `mapping.FIELD` lines"),
        "oomnitza-mappingfield-lines"
    );
    assert_eq!(slug("## Syncing: `plan` and `run`"), "syncing-plan-and-run");
    assert_eq!(
        required_flags(
            "userload daemon [OPTIONS] --config <CONFIG> <--at <HH:MM>|--every <DURATION>>"
        ),
        vec![
            BTreeSet::from(["--at".to_owned(), "--every".to_owned()]),
            BTreeSet::from(["--config".to_owned()])
        ]
    );
}
