//! Telling the monitors of a run: the daemon's board (its `/metrics` and `/healthz`), the
//! `--metrics-file` for node_exporter, and the ping URL. `run` calls these when a run starts
//! and ends; none of them changes how the run went, except a metrics file that cannot be
//! written, which fails the run like a report that cannot be.

use super::run::RunArgs;
use crate::config::Config;
use crate::metrics::serve::Shared;
use crate::metrics::{Board, RunFigures};
use crate::notify::Ping;
use crate::sync::report::RunReport;

/// Tells the monitors how the run ended: the daemon's `board`, the `--metrics-file` and the
/// ping URL; false, with the problem printed, if the metrics file could not be written.
pub(super) fn watched(
    runtime: &tokio::runtime::Runtime,
    config: Option<&Config>,
    args: &RunArgs,
    board: Option<&Shared>,
    report: &RunReport,
) -> bool {
    let figures = RunFigures::of(report);
    if let Some(config) = config {
        let ping_of = if figures.succeeded() {
            Ping::Success
        } else {
            Ping::Fail
        };
        ping(runtime, config, ping_of, &figures.headline);
    }
    if let Some(board) = board {
        board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(figures.clone());
    }
    let Some(path) = &args.metrics_file else {
        return true;
    };
    let mut board = Board::default();
    board.record(figures);
    if let Err(e) = crate::metrics::write_textfile(path, &board) {
        errln!("error: cannot write the metrics {}: {e}", path.display());
        return false;
    }
    true
}

/// Sends a ping when the config has a ping URL; a ping that fails is only a warning.
pub(super) fn ping(runtime: &tokio::runtime::Runtime, config: &Config, ping: Ping, line: &str) {
    if let Err(e) = runtime.block_on(crate::notify::ping(&config.notify, ping, line)) {
        tracing::warn!("ping: {e}");
    }
}
