//! Turns the configuration into the run's tool registry, in upstream's
//! registration order (contract §1.6): `execute_command`, the file, channel,
//! fetch and schedule tools, then native sidecar tools; the tool policy is
//! applied by the registry both when advertising and at call time.

use std::sync::Arc;

use agentpod_sdk::exec::ExecClient;
use agentpod_sdk::tool::{Registry, RegistryError};

use crate::config::Config;
use crate::tools::{
    self, BuiltinConfig, ExecuteCommand, FetchConfig, FetchUrlError, MANIFEST_WAIT, Root, Roots,
    load_native_tools,
};

/// Why the tools could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// The HTTP client for `fetch_url` could not be built.
    #[error(transparent)]
    Fetch(#[from] FetchUrlError),
    /// Two tools share a name.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The filesystem roots of the file tools, mapped to the configured
/// directories while the model keeps seeing Pod paths.
pub fn roots(config: &Config) -> Roots {
    let workspace = Root::mapped("/workspace", &config.roots.workspace);
    let tmp = Root::mapped("/tmp", &config.roots.tmp);
    Roots::new(
        vec![
            workspace.clone(),
            Root::mapped("/skills", &config.roots.skills),
            tmp.clone(),
            Root::mapped("/ipc", config.ipc.path()),
        ],
        vec![workspace, tmp],
    )
}

/// Builds the registry for `config`: empty (but policy-governed) when
/// `TOOLS_ENABLED` is not `true`, as upstream.
pub async fn registry(config: &Config) -> Result<Registry, AssembleError> {
    let mut registry = Registry::new(config.policy.clone());
    if !config.tools_enabled {
        return Ok(registry);
    }
    let builtin = BuiltinConfig {
        roots: roots(config),
        ipc: config.ipc.clone(),
        fetch: FetchConfig {
            allow_private: config.fetch_allow_private,
            ..FetchConfig::default()
        },
    };
    // One exec client (one results watcher) serves every exec-based tool.
    let exec = ExecClient::new(config.ipc.clone());
    registry.register(Arc::new(ExecuteCommand::new(exec.clone())))?;
    for tool in tools::builtin_tools(&builtin)? {
        registry.register(tool)?;
    }
    if let Some(path) = &config.sidecar_tools_manifest {
        let native = load_native_tools(path, MANIFEST_WAIT, &exec, |n| registry.contains(n)).await;
        for tool in native {
            registry.register(tool)?;
        }
    }
    Ok(registry)
}
