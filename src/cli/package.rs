//! `userload completions SHELL` and `userload man`: what a package installs beside the
//! binary, generated from the command line's own definition so they never drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::{Cli, Outcome, print_error};

/// Arguments of `userload man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (`userload.1`, `userload-run.1`, …) into this folder
    /// instead of the main page to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `userload completions SHELL`: the completion script for `shell`, on stdout.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "userload", &mut script);
    write_out(&script)
}

/// `userload man`: the manual page in roff, on stdout or one file per command.
pub fn man(args: &ManArgs) -> Outcome {
    let command = Cli::command();
    let result = match &args.out {
        Some(dir) => write_pages(&command, dir),
        None => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(command).render(&mut page) {
                Ok(()) => return write_out(&page),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => Outcome::Success,
        Err(e) => {
            print_error(&e);
            Outcome::Failed
        }
    }
}

/// Writes the page of `command` and of each subcommand into `dir` (created).
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut pages = vec![(command.get_name().to_owned(), command.clone())];
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{}-{}", command.get_name(), sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name)));
    }
    for (name, page) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(dir.join(format!("{name}.1")), text)?;
    }
    Ok(())
}

/// Writes generated text to stdout; a closed pipe is not an error.
fn write_out(bytes: &[u8]) -> Outcome {
    let _ = std::io::stdout().lock().write_all(bytes);
    Outcome::Success
}
