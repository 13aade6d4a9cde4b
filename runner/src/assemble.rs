//! Turns the configuration into the run's tool registry, in upstream's
//! registration order (contract §1.6): `execute_command`, the file, channel,
//! fetch and schedule tools, `delegate_to_persona`, `spawn_subagents`, MCP
//! tools, native sidecar tools, memory tools (even without `TOOLS_ENABLED`,
//! as upstream) and workflow memory tools; the tool policy is applied by
//! the registry both when advertising and at call time.

use std::sync::Arc;

use agentpod_sdk::exec::ExecClient;
use agentpod_sdk::memory::{MemoryClient, MemoryError};
use agentpod_sdk::tool::{Registry, RegistryError, Tool as _};

use crate::config::Config;
use crate::tools::{
    self, BuiltinConfig, ExecuteCommand, FetchConfig, FetchUrlError, MANIFEST_WAIT, Root, Roots,
    ToolEvents, load_native_tools_with_events,
};
use crate::tools::{
    DelegateToPersona, SpawnSubagents, Workflow, load_mcp_tools, memory_tools,
    workflow_memory_tools,
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
    /// A memory server URL is unusable.
    #[error(transparent)]
    Memory(#[from] MemoryError),
}

/// The registry and what the system prompt says about its tools.
#[derive(Debug)]
pub struct Assembled {
    /// Every tool of the run.
    pub registry: Registry,
    /// MCP tools: name and server, in manifest order.
    pub mcp: Vec<(String, String)>,
    /// Native sidecar tools: name and description.
    pub native: Vec<(String, String)>,
    /// The agent's memory server (`MEMORY_SERVER_URL`).
    pub memory: Option<MemoryClient>,
    /// Shared workflow memory (`WORKFLOW_MEMORY_SERVER_URL`).
    pub workflow: Option<Workflow>,
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

/// Builds the registry for `config`: built-in, MCP and native tools only
/// when `TOOLS_ENABLED` is `true`, memory tools in any case, as upstream.
pub async fn registry(config: &Config) -> Result<Registry, AssembleError> {
    Ok(assemble(config).await?.registry)
}

/// Builds the registry for `config` and reports what it holds.
pub async fn assemble(config: &Config) -> Result<Assembled, AssembleError> {
    assemble_with_events(config, ToolEvents::default()).await
}

/// [`assemble`], with the exec, delegation and edit tools reporting their
/// detailed-log events (`exec_request`, `delegate`, `edit_file`) to
/// `events`.
pub async fn assemble_with_events(
    config: &Config,
    events: ToolEvents,
) -> Result<Assembled, AssembleError> {
    let mut registry = Registry::new(config.policy.clone());
    let (mut mcp, mut native) = (Vec::new(), Vec::new());
    if config.tools_enabled {
        let builtin = BuiltinConfig {
            roots: roots(config),
            ipc: config.ipc.clone(),
            fetch: FetchConfig {
                allow_private: config.fetch_allow_private,
                ..FetchConfig::default()
            },
            events: events.clone(),
        };
        // One exec client (one results watcher) serves every exec-based tool.
        let exec = ExecClient::new(config.ipc.clone());
        registry.register(Arc::new(
            ExecuteCommand::new(exec.clone()).with_events(events.clone()),
        ))?;
        for tool in tools::builtin_tools(&builtin)? {
            registry.register(tool)?;
        }
        registry.register(Arc::new(
            DelegateToPersona::new(config.ipc.clone(), &config.ensemble)
                .with_events(events.clone()),
        ))?;
        if config.subagents_enabled {
            registry.register(Arc::new(
                SpawnSubagents::new(config.ipc.clone(), config.subagents_max_children)
                    .with_events(events.clone()),
            ))?;
        }
        for tool in load_mcp_tools(&config.ipc, config.mcp_manifest_wait, |n| {
            registry.contains(n)
        })
        .await
        {
            mcp.push((tool.spec().name.clone(), tool.server().to_owned()));
            registry.register(tool)?;
        }
        if let Some(path) = &config.sidecar_tools_manifest {
            let loaded = load_native_tools_with_events(path, MANIFEST_WAIT, &exec, &events, |n| {
                registry.contains(n)
            })
            .await;
            for tool in loaded {
                let spec = tool.spec();
                native.push((spec.name.clone(), spec.description.clone()));
                registry.register(tool)?;
            }
        }
    }
    let memory = match &config.memory.server_url {
        Some(url) => Some(MemoryClient::new(url)?),
        None => None,
    };
    if let Some(client) = &memory {
        for tool in memory_tools(client.clone()).await {
            registry.register(tool)?;
        }
    }
    let workflow = match &config.memory.workflow {
        Some(w) => Some(Workflow::new(
            MemoryClient::new(&w.server_url)?,
            &config.instance,
            w.membrane.clone(),
        )),
        None => None,
    };
    if let (Some(wf), Some(w)) = (&workflow, &config.memory.workflow) {
        for tool in workflow_memory_tools(wf.clone(), w.read_only) {
            registry.register(tool)?;
        }
    }
    Ok(Assembled {
        registry,
        mcp,
        native,
        memory,
        workflow,
    })
}

impl Assembled {
    /// What the system prompt says about the tools, with the memory
    /// auto-context fetched now (one bounded search per memory server).
    pub async fn prompt_extras(&self, config: &Config) -> crate::prompt::PromptExtras {
        use crate::tools::{memory, workflow_memory};
        let mut extras = crate::prompt::PromptExtras {
            mcp: self.mcp.clone(),
            native: self.native.clone(),
            memory: self.memory.is_some(),
            workflow_read_only: config.memory.workflow.as_ref().map(|w| w.read_only),
            ..Default::default()
        };
        if let Some(client) = &self.memory {
            extras.memory_context = memory::auto_context(
                client,
                memory::context_search(&config.task),
                memory::CONTEXT_MAX_CHARS,
            )
            .await;
        }
        if let Some(wf) = &self.workflow {
            extras.workflow_context = memory::auto_context(
                wf.client(),
                wf.context_search(&config.task),
                workflow_memory::CONTEXT_MAX_CHARS,
            )
            .await;
        }
        extras
    }
}
