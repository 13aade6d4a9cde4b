//! How the bridge ends (contract §3.5, plus what upstream lacks).
//!
//! - `output/result.json` seen (including a file that was there before the
//!   watch started, where upstream hangs forever): its event is published
//!   (unless gate mode), the bridge keeps running for the exit grace
//!   (default 2 s, as upstream sleeps) so late files still go out, then
//!   stops taking files, waits up to the drain timeout for every pending
//!   event to be acked, and exits 0.
//! - SIGTERM or SIGINT: stop taking files, drain the same way, exit 0.
//!   Whatever cannot be published in time stays in the spool.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Why the bridge stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The run completed (`output/result.json`).
    Completed,
    /// SIGTERM or SIGINT.
    Signal,
}

/// SIGTERM and SIGINT, installed once at start so an early signal is not
/// fatal.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either signal.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM: flushing and exiting"),
            _ = self.int.recv() => tracing::info!("SIGINT: flushing and exiting"),
        }
    }
}

/// Waits for the completion signal or a process signal; after completion,
/// waits out `grace` (cut short by a signal).
pub async fn wait_for_end(
    completed: tokio::sync::oneshot::Receiver<()>,
    signals: &mut Signals,
    grace: Duration,
) -> ExitReason {
    tokio::select! {
        r = completed => {
            if r.is_err() {
                // The publisher is gone without a completion: treat as a stop.
                return ExitReason::Signal;
            }
            tracing::info!(grace_ms = grace.as_millis() as u64, "result.json seen; exiting after the grace period");
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = signals.recv() => {}
            }
            ExitReason::Completed
        }
        _ = signals.recv() => ExitReason::Signal,
    }
}
