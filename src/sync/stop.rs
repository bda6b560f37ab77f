//! How a run is stopped from outside: Ctrl-C, SIGTERM or the daemon set one flag that ends
//! the Graph read and the target listing at once and that every writer looks at before it
//! starts a write, so writes under way finish and the state is saved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by Ctrl-C or SIGTERM: no new write starts (and the daemon starts no new run).
#[derive(Debug, Default, Clone)]
pub struct StopSignal(Arc<Stopping>);

#[derive(Debug, Default)]
struct Stopping {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopSignal {
    /// Stops the run at the next write.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether the run should stop.
    pub fn stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Returns once [`stop`](Self::stop) was called.
    pub async fn wait(&self) {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a stop in between is not missed.
        notified.as_mut().enable();
        if self.stopped() {
            return;
        }
        notified.await;
    }

    /// Stops the run on Ctrl-C or SIGTERM, from a background task; a second signal ends the
    /// process at once (exit 130), for an admin who cannot wait for writes under way.
    pub fn on_signals(&self) {
        let stop = self.clone();
        tokio::spawn(async move {
            if !signalled().await {
                return;
            }
            tracing::warn!(
                "stopping: the read ends, writes under way finish, then the state is saved \
                 (a second signal stops at once)"
            );
            stop.stop();
            if signalled().await {
                tracing::warn!("stopped at once by a second signal");
                std::process::exit(130);
            }
        });
    }
}

/// Waits for Ctrl-C or SIGTERM; `false` if they cannot be listened to.
async fn signalled() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return false;
        };
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.is_ok(),
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}
