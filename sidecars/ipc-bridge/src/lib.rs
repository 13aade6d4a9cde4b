//! `ipc-bridge`: the sidecar that connects a Pod's `/ipc` volume to NATS
//! JetStream (contract §3), a drop-in for Sympozium's Go bridge with the
//! same flags, env, stream, subjects, envelope and files, that loses and
//! doubles nothing.
//!
//! | module | concern |
//! |---|---|
//! | [`config`] | flags (Go-style `-flag` too) and env, read once |
//! | [`triggers`] | which files become which events; envelope; `Nats-Msg-Id` |
//! | [`outbound`] | the outbound message policy |
//! | [`trace`] | `traceparent` header from the file's `_meta` |
//! | [`nats`] | connections, the `sympozium` stream |
//! | [`publish`] | in-order publishing with acks, reconnects and the spool |
//! | [`spool`] | the bounded on-disk spool |
//! | [`subscribe`] | control-plane events written back to `/ipc` |
//! | [`exit`] | completion, grace, drain, signals |
//! | [`logging`] | stderr logs, text or JSON |

pub mod config;
pub mod exit;
pub mod nats;
pub mod outbound;
pub mod publish;
pub mod spool;
pub mod subscribe;
pub mod trace;
pub mod triggers;

use std::sync::Arc;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::wire::BridgeMetadata;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

pub use config::Config;
pub use exit::ExitReason;
pub use publish::PublishSummary;

/// A bridge that could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The IPC directories could not be created.
    #[error("cannot create the IPC directories under {root}: {source}")]
    Dirs {
        /// The IPC root.
        root: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The spool could not be opened.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    /// A watcher could not start.
    #[error(transparent)]
    Watch(#[from] agentpod_sdk::ipc::WatchError),
    /// The readiness marker could not be written.
    #[error("cannot write the readiness marker: {0}")]
    Ready(agentpod_sdk::ipc::WriteError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The subscriber client could not be set up.
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
}

/// A bridge that is not ready yet (`ipc-bridge --probe`).
#[derive(Debug, thiserror::Error)]
#[error("ipc-bridge is not ready: {} does not exist yet", marker.display())]
pub struct NotReady {
    /// The readiness marker looked for.
    pub marker: std::path::PathBuf,
}

/// `ipc-bridge --probe`: `Ok` when the bridge on the IPC volume at
/// `ipc_path` has written its readiness marker (every watcher in place).
pub fn probe(ipc_path: &std::path::Path) -> Result<(), NotReady> {
    let marker = IpcRoot::new(ipc_path).bridge_ready();
    if marker.is_file() {
        Ok(())
    } else {
        Err(NotReady { marker })
    }
}

/// How a bridge run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Why it stopped.
    pub reason: ExitReason,
    /// What the publisher did.
    pub summary: PublishSummary,
}

/// Runs the bridge until the run completes or a signal arrives.
pub async fn run(cfg: Config) -> Result<Outcome, BridgeError> {
    let mut signals = exit::Signals::install().map_err(BridgeError::Signals)?;
    let root = IpcRoot::new(&cfg.ipc_path);
    root.create_dirs().map_err(|source| BridgeError::Dirs {
        root: cfg.ipc_path.clone(),
        source,
    })?;
    let (spool, found) = spool::Spool::open(
        &cfg.spool_dir,
        spool::SpoolLimits {
            max_bytes: cfg.spool_max_bytes,
            max_events: cfg.spool_max_events,
        },
    )?;
    let meta = BridgeMetadata {
        agent_run_id: cfg.agent_run_id.clone(),
        instance_name: cfg.instance.clone(),
        namespace: cfg.namespace.clone(),
    };
    let router = Arc::new(triggers::Router::new(
        &meta,
        cfg.gate_suppress_completion,
        outbound::OutboundPolicy {
            allowed_channels: cfg.allowed_outbound_channels.clone(),
            allowed_username: cfg.allowed_username().to_owned(),
        },
    ));
    tracing::info!(
        run = %cfg.agent_run_id, instance = %cfg.instance, namespace = %cfg.namespace,
        url = %cfg.event_bus_url, ipc = %cfg.ipc_path.display(), gate = cfg.gate_suppress_completion,
        "ipc-bridge starting"
    );

    let (completed_tx, completed_rx) = oneshot::channel();
    let (finish_tx, finish_rx) = watch::channel(None);
    let (tx, rx) = mpsc::channel(256);
    let publisher = publish::Publisher::new(
        publish::PublishSettings {
            url: cfg.event_bus_url.clone(),
            max_in_flight: cfg.max_in_flight,
            ack_timeout: cfg.ack_timeout,
        },
        spool,
        found,
        completed_tx,
    );
    let publisher = tokio::spawn(publisher.run(rx, finish_rx));

    let mut tasks = JoinSet::new();
    let ready = root.bridge_ready();
    let _ = std::fs::remove_file(&ready);
    triggers::spawn_watchers(&root, router, cfg.rescan_interval, tx, &mut tasks).await?;
    // Every watcher is in place: files written from now on are seen. The
    // marker is what a startupProbe (`ipc-bridge --probe`) and the local
    // engines wait for before they start the agent.
    root.write_atomic(&ready, b"ready\n")
        .map_err(BridgeError::Ready)?;
    tracing::info!(marker = %ready.display(), "ipc-bridge ready");
    let sub_client = nats::connect_subscriber(&cfg.event_bus_url).await?;
    subscribe::spawn_all(
        sub_client,
        subscribe::SubscribeSettings {
            run: cfg.agent_run_id.clone(),
            root: root.clone(),
            inactive_threshold: cfg.consumer_inactive_threshold,
        },
        &mut tasks,
    );

    let reason = exit::wait_for_end(completed_rx, &mut signals, cfg.exit_grace).await;
    let deadline = tokio::time::Instant::now() + cfg.drain_timeout;
    let _ = finish_tx.send(Some(deadline));
    let summary = tokio::select! {
        s = publisher => s.unwrap_or_default(),
        // A second signal while draining: stop now.
        _ = signals.recv() => PublishSummary::default(),
    };
    tasks.abort_all();
    tracing::info!(
        reason = ?reason, published = summary.published, duplicates = summary.duplicates,
        spooled = summary.spooled, dropped = summary.dropped, left = summary.left,
        connections = summary.connections, "ipc-bridge stopped"
    );
    Ok(Outcome { reason, summary })
}
