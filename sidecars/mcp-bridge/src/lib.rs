//! `mcp-bridge`: the sidecar that turns MCP servers into agent tools
//! (contract §5). A drop-in for Sympozium's bridge: same servers file,
//! environment, manifest, request and result files, `<prefix>_<tool>` names,
//! discover-only mode and stdio adapter mode; in addition it runs stdio MCP
//! servers as supervised child processes, and bounds every request by the
//! server's deadline so a stuck server cannot hang a call.
//!
//! One file per concern: [`config`] (environment and servers file),
//! [`discovery`], [`transports`] (Streamable HTTP and stdio), [`manifest`]
//! (catalogue and `mcp-tools.json`), [`calls`] (request files to results),
//! [`adapter`] (stdio adapter). [`run`] wires them for each mode.

pub mod adapter;
pub mod calls;
pub mod config;
pub mod discovery;
pub mod manifest;
pub mod transports;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use agentpod_sdk::ipc::IpcRoot;

use crate::calls::{Router, ServeOptions, Server};
use crate::config::{Config, Mode, ServerConfig, TransportConfig};
use crate::manifest::{Catalog, write_manifest};
use crate::transports::Transport;
use crate::transports::http::HttpTransport;
use crate::transports::stdio::{ChildSpec, StdioTransport};

/// Why the bridge failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The servers file is unusable.
    #[error(transparent)]
    Servers(#[from] config::ServersFileError),
    /// A transport could not be built.
    #[error("server {server:?}: {source}")]
    Transport {
        /// The server.
        server: String,
        /// The cause.
        source: transports::TransportError,
    },
    /// The manifest could not be written.
    #[error("writing the manifest: {0}")]
    Manifest(#[from] agentpod_sdk::ipc::WriteError),
    /// Serving calls failed.
    #[error(transparent)]
    Serve(#[from] calls::ServeError),
    /// The stdio adapter failed.
    #[error(transparent)]
    Adapter(#[from] adapter::AdapterError),
    /// Adapter mode without its settings (a bug in the caller).
    #[error("stdio adapter mode without adapter settings")]
    NoAdapterConfig,
}

/// Installs rustls' ring provider for the process (reqwest is built without
/// one); safe to call more than once.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Opens the connection a server entry describes.
pub fn connect(server: &ServerConfig) -> Result<Arc<dyn Transport>, transports::TransportError> {
    Ok(match &server.transport {
        TransportConfig::Http { url } => {
            Arc::new(HttpTransport::new(url, &server.headers, server.timeout)?)
        }
        TransportConfig::Stdio { command, args, env } => Arc::new(StdioTransport::spawn(
            ChildSpec {
                name: server.name.clone(),
                command: command.clone(),
                args: args.clone(),
                env: env.clone(),
                backoff_start: Duration::from_millis(250),
                backoff_max: Duration::from_secs(30),
            },
            server.timeout,
        )),
    })
}

/// Runs the mode `config` asks for until it is done (or `stop` resolves).
pub async fn run(
    config: Config,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), BridgeError> {
    if config.mode == Mode::StdioAdapter {
        let adapter_cfg = config.adapter.clone().ok_or(BridgeError::NoAdapterConfig)?;
        return Ok(adapter::serve(adapter_cfg, stop).await?);
    }
    let span = tracing::info_span!("mcp-bridge.run", agent_run_id = %config.run_id);
    let _g = span.enter();
    let Some(server_configs) = config::load_servers(&config.config_path, &config.env)? else {
        tracing::info!(path = %config.config_path.display(), "no MCP servers file; nothing to do");
        return Ok(());
    };
    if server_configs.is_empty() {
        tracing::info!("no MCP servers configured; nothing to do");
        return Ok(());
    }
    let mut servers = Vec::with_capacity(server_configs.len());
    for c in server_configs {
        let transport = connect(&c).map_err(|source| BridgeError::Transport {
            server: c.name.clone(),
            source,
        })?;
        servers.push(Server {
            config: c,
            transport,
        });
    }
    let servers = Arc::new(servers);
    let catalog = Arc::new(RwLock::new(Catalog::new(servers.len())));
    let root = IpcRoot::new(&config.ipc_root);
    let configs: Arc<Vec<ServerConfig>> =
        Arc::new(servers.iter().map(|s| s.config.clone()).collect());

    // Discover every server at once; each publishes its tools as soon as it
    // has them, so a slow or dead server delays no one.
    let mut discoveries = tokio::task::JoinSet::new();
    for (i, s) in servers.iter().enumerate() {
        let transport = s.transport.clone();
        let catalog = catalog.clone();
        let configs = configs.clone();
        let root = root.clone();
        let manifest_path = config.manifest_path.clone();
        let (attempts, delay) = (config.discovery_attempts, config.discovery_retry_delay);
        discoveries.spawn(async move {
            let server = &configs[i];
            match discovery::discover(server, transport.as_ref(), attempts, delay).await {
                Ok(tools) => {
                    let manifest = {
                        let mut c = catalog.write().unwrap_or_else(|e| e.into_inner());
                        c.insert(&configs, i, tools);
                        c.manifest(&configs)
                    };
                    if let Err(e) = write_manifest(&root, &manifest_path, &manifest) {
                        tracing::error!(error = %e, "could not write the MCP manifest");
                    }
                }
                Err(e) => tracing::warn!(server = %server.name, error = %e, "skipping MCP server"),
            }
        });
    }

    let finish_discovery = {
        let catalog = catalog.clone();
        let configs = configs.clone();
        let root = root.clone();
        let manifest_path = config.manifest_path.clone();
        async move {
            while discoveries.join_next().await.is_some() {}
            let manifest = catalog
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .manifest(&configs);
            tracing::info!(tools = manifest.tools.len(), path = %manifest_path.display(), "mcp-bridge.discover done");
            write_manifest(&root, &manifest_path, &manifest)
        }
    };

    let outcome = if config.mode == Mode::DiscoverOnly {
        tokio::select! {
            r = finish_discovery => r.map_err(BridgeError::from),
            _ = stop => Ok(()),
        }
    } else {
        let discovery = tokio::spawn(finish_discovery);
        let router = Arc::new(Router {
            servers: servers.clone(),
            catalog,
        });
        let opts = ServeOptions {
            ipc_path: config.ipc_path.clone(),
            ipc_root: config.ipc_root.clone(),
            max_in_flight: config.max_in_flight,
        };
        let r = calls::serve(router, opts, stop)
            .await
            .map_err(BridgeError::from);
        discovery.abort();
        r
    };
    for s in servers.iter() {
        s.transport.shutdown().await;
    }
    outcome
}
