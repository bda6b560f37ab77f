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

/// Writes the page of `command` into `dir` (created) as `name.1`, then those of its
/// subcommands, and theirs, as `name-sub.1`.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_page(command, command.get_name(), dir)
}

fn write_page(command: &clap::Command, name: &str, dir: &Path) -> std::io::Result<()> {
    let mut text = Vec::new();
    clap_mangen::Man::new(command.clone().display_name(name.to_owned())).render(&mut text)?;
    std::fs::write(dir.join(format!("{name}.1")), text)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_page(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// Writes generated text to stdout; a closed pipe is not an error, any other failure is.
fn write_out(bytes: &[u8]) -> Outcome {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            print_error(&e);
            Outcome::Failed
        }
        _ => Outcome::Success,
    }
}
