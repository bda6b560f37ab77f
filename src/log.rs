//! Logs: what a run is doing, for the admin reading a terminal, a cron mail or a log
//! collector.
//!
//! Events go to stderr as readable text (coloured on a terminal) or, with
//! `--log-format json`, as one JSON object per line; `--log-file` also appends them to a file
//! in the same format (never coloured). `--log-level` sets how much userload itself says
//! (`info` by default: a handful of lines per run); the libraries underneath speak only of
//! warnings unless `USERLOAD_LOG` (a `tracing` filter such as `userload=trace,reqwest=debug`)
//! says otherwise. No event carries a secret, a token or an Authorization header: requests
//! are logged by method, URL and status, never by their headers or bodies; and every event is
//! passed through [`crate::secrets::scrub`] on its way to stderr or the file, whatever
//! the library that raised it put in it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// How much userload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Level {
    /// Only what stopped a run.
    Error,
    /// Also retries, held deactivations and users whose write failed.
    Warn,
    /// Also the steps of a run: sign-in, reading, planning, writing, the outcome.
    #[default]
    Info,
    /// Also every page read and every write made.
    Debug,
    /// Also every HTTP request with its status and time.
    Trace,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// The logging flags every command takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// How much to log.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "USERLOAD_LOG_LEVEL"
    )]
    pub log_level: Level,
    /// text (readable) or json (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "USERLOAD_LOG_FORMAT"
    )]
    pub log_format: Format,
    /// Also append the log to this file.
    #[arg(long, global = true, value_name = "FILE", env = "USERLOAD_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file cannot be opened for appending.
    #[error("cannot open the log file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `USERLOAD_LOG` is not a filter.
    #[error("USERLOAD_LOG is not a log filter ({0}); try USERLOAD_LOG=userload=debug")]
    Filter(String),
}

/// The filter: `USERLOAD_LOG` when set, else `level` for userload and warnings for the rest.
fn filter(level: Level) -> Result<EnvFilter, LogError> {
    let directives = match std::env::var("USERLOAD_LOG") {
        Ok(text) if !text.trim().is_empty() => text,
        _ => format!("warn,userload={}", level.name()),
    };
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| LogError::Filter(e.to_string()))
}

/// Opens the log file for appending, creating it (and its folder) when missing.
fn open(path: &Path) -> Result<File, LogError> {
    let error = |source| LogError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(error)
}

/// A writer that blanks secrets out of each event before it reaches `W`. The formatter
/// hands over each event whole in one `write`, so a secret is never split across two.
struct Scrubbed<W>(W);

impl<'w, W: tracing_subscriber::fmt::MakeWriter<'w>> tracing_subscriber::fmt::MakeWriter<'w>
    for Scrubbed<W>
{
    type Writer = Scrubbing<W::Writer>;

    fn make_writer(&'w self) -> Self::Writer {
        Scrubbing(self.0.make_writer())
    }
}

/// One event's writer behind [`Scrubbed`].
struct Scrubbing<W>(W);

impl<W: Write> Write for Scrubbing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(crate::secrets::scrub(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A layer writing events in `format` to `writer`, scrubbed of secrets.
fn layer<S, W>(format: Format, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_writer(Scrubbed(writer))
        .with_target(false);
    match format {
        Format::Text => base.with_ansi(ansi).boxed(),
        Format::Json => base
            .with_target(true)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

/// Starts logging as `args` say. Only the first call in a process takes effect (tests run
/// many commands in one process).
pub fn init(args: &LogArgs) -> Result<(), LogError> {
    let file = args.log_file.as_deref().map(open).transpose()?;
    let ansi = color();
    let mut layers = vec![layer(args.log_format, std::io::stderr, ansi)];
    if let Some(file) = file {
        layers.push(layer(args.log_format, Arc::new(file), false));
    }
    let _ = tracing_subscriber::registry()
        .with(layers.with_filter(filter(args.log_level)?))
        .try_init();
    Ok(())
}

/// Whether stderr is a terminal that wants colour (`NO_COLOR` turns it off).
pub fn color() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none()
}
