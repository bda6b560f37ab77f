//! `userload pull`: the users in scope, read from Graph exactly as a run reads them, written
//! as JSON lines. For audits ("who would be synced?") and for capturing real users as
//! mapping test fixtures.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Outcome, load_config, load_mapping, peak_memory};
use crate::config::Config;
use crate::graph::users::{MAX_NESTING, nesting_within_limit};
use crate::graph::{GraphClient, GraphError, Managers, Selection, UserPager, UserQuery};

/// Arguments of `userload pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    config: PathBuf,
    /// Where to write the users (JSON lines); standard output when not given. The file
    /// appears only when the pull is complete.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Properties to read instead of those the config's mapping reads (comma-separated
    /// Graph names).
    #[arg(long, value_delimiter = ',')]
    select: Vec<String>,
}

pub fn run(args: &PullArgs) -> Outcome {
    let Some(config) = load_config(&args.config) else {
        return Outcome::Failed;
    };
    let selection = if args.select.is_empty() {
        match load_mapping(&config) {
            Some(mapping) => crate::sync::selection(&mapping),
            None => return Outcome::Failed,
        }
    } else {
        Selection::of(args.select.iter().map(|s| s.trim()))
    };
    let query = UserQuery::new(&config.source, selection);
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    match runtime.block_on(pull(&config, &query, args.out.as_deref())) {
        Ok(()) => Outcome::Success,
        Err(PullError::Graph(e)) => {
            errln!("error: {e}");
            Outcome::Failed
        }
        Err(PullError::Io(what, e)) => {
            errln!("error: {what}: {e}");
            Outcome::Failed
        }
    }
}

enum PullError {
    Graph(GraphError),
    Io(String, std::io::Error),
}

async fn pull(config: &Config, query: &UserQuery, out: Option<&Path>) -> Result<(), PullError> {
    let started = Instant::now();
    let client = Arc::new(GraphClient::new(&config.source).map_err(PullError::Graph)?);
    // A file is written beside its final name and renamed at the end, so a failed pull
    // leaves no file that looks complete. Anything else (a pipe, /dev/null) is written to.
    let regular = out.is_some_and(|o| std::fs::metadata(o).map_or(true, |m| m.is_file()));
    let partial = out.filter(|_| regular).map(|o| {
        let mut name = o.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    });
    let sink: Box<dyn Write> = match (partial.as_deref(), out) {
        (Some(path), _) | (None, Some(path)) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| PullError::Io(format!("cannot create {}", path.display()), e))?,
        ),
        (None, None) => Box::new(std::io::stdout().lock()),
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos} users read, {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let write_error = |e| PullError::Io("cannot write the users".to_owned(), e);
    let mut pager = UserPager::new(Arc::clone(&client), query);
    let result = async {
        let managers = Managers::read(&client, query)
            .await
            .map_err(PullError::Graph)?;
        while let Some(page) = pager.next_page_raw().await.map_err(PullError::Graph)? {
            for user in &page {
                match &managers {
                    // Users are passed through as Graph sent them, unless the manager was
                    // read apart and must be put on each.
                    Some(managers) => {
                        let mut user: serde_json::Value = serde_json::from_str(user.get())
                            .map_err(|e| {
                                PullError::Io("cannot read a user".to_owned(), e.into())
                            })?;
                        managers.attach(&mut user);
                        serde_json::to_writer(&mut sink, &user).map_err(|e| write_error(e.into()))
                    }
                    // JSON strings hold no raw line breaks, so any here are layout: drop
                    // them to keep one user per line.
                    None => {
                        let text = user.get();
                        if !nesting_within_limit(text) {
                            return Err(PullError::Graph(GraphError::Malformed {
                                what: format!("page {} of the users", pager.pages()),
                                detail: format!(
                                    "a user that is not valid JSON (nested deeper than \
                                     {MAX_NESTING} levels)"
                                ),
                            }));
                        }
                        if text.contains(['\n', '\r']) {
                            sink.write_all(text.replace(['\n', '\r'], "").as_bytes())
                        } else {
                            sink.write_all(text.as_bytes())
                        }
                        .map_err(write_error)
                    }
                }?;
                sink.write_all(b"\n").map_err(write_error)?;
            }
            if let Some(bar) = &progress {
                if let Some(count) = pager.count {
                    bar.set_length(count);
                }
                bar.set_position(pager.delivered);
                bar.set_message(format!("page {}", pager.pages()));
            }
        }
        sink.flush().map_err(write_error)
    }
    .await;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    drop(sink);
    if let Err(e) = result {
        if let Some(partial) = &partial {
            let _ = std::fs::remove_file(partial);
        }
        return Err(e);
    }
    if let (Some(partial), Some(out)) = (&partial, out) {
        std::fs::rename(partial, out)
            .map_err(|e| PullError::Io(format!("cannot write {}", out.display()), e))?;
    }
    let stats = &client.stats;
    errln!(
        "pulled {} users in {} page(s) and {:.1} s ({} request(s), {} retried, {} throttled{}){}",
        pager.delivered,
        pager.pages(),
        started.elapsed().as_secs_f64(),
        stats.requests.load(Ordering::Relaxed),
        stats.retries.load(Ordering::Relaxed),
        stats.throttled.load(Ordering::Relaxed),
        peak_memory()
            .map(|mb| format!("; peak memory {mb} MB"))
            .unwrap_or_default(),
        out.map(|o| format!(" → {}", o.display()))
            .unwrap_or_default(),
    );
    Ok(())
}
