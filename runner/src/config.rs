//! The runner's configuration, read once from the environment (contract
//! §1.2). Every invalid variable is reported together, naming the variable
//! and what would be valid; the caller then takes the fatal path.
//!
//! Variables this version does not act on yet (memory, MCP, delegation,
//! telemetry, ...) are accepted and ignored, as upstream ignores the ones it
//! does not read.

use std::path::PathBuf;
use std::time::Duration;

use agentpod_sdk::agent::{BudgetAction, ContextPolicy};
use agentpod_sdk::envconf::{Env, EnvError};
use agentpod_sdk::ipc::{DEFAULT_IPC_ROOT, IpcRoot};
use agentpod_sdk::llm::{ProviderConfig, is_local_provider, parse_headers_json};
use agentpod_sdk::tool::ToolPolicy;
use agentpod_sdk::wire::env::common as var_common;
use agentpod_sdk::wire::env::runner as var;

/// agentpod's own variables (optional; upstream ignores them).
pub mod ext {
    /// Where the IPC volume is (default `/ipc`).
    pub const IPC_ROOT: &str = "AGENTPOD_IPC_ROOT";
    /// Where `/workspace` is (default `/workspace`).
    pub const WORKSPACE_ROOT: &str = "AGENTPOD_WORKSPACE_ROOT";
    /// Where `/skills` is (default `/skills`).
    pub const SKILLS_ROOT: &str = "AGENTPOD_SKILLS_ROOT";
    /// Where `/tmp` is (default `/tmp`).
    pub const TMP_ROOT: &str = "AGENTPOD_TMP_ROOT";
    /// Where the legacy memory ConfigMap is mounted (default `/memory`);
    /// `MEMORY.md` there is prepended to the task with `MEMORY_ENABLED`.
    pub const MEMORY_ROOT: &str = "AGENTPOD_MEMORY_ROOT";
    /// How many tool calls of one turn run at once (default 8).
    pub const MAX_PARALLEL_TOOLS: &str = "AGENTPOD_MAX_PARALLEL_TOOLS";
    /// `false` asks the model for plain JSON answers instead of SSE.
    pub const LLM_STREAM: &str = "AGENTPOD_LLM_STREAM";
    /// How long the near-instant paths (skip, dry run) wait before writing
    /// their result, so an upstream ipc-bridge has its watches set (default
    /// `3s`, as upstream; our bridge does not need it).
    pub const SETTLE: &str = "AGENTPOD_SETTLE";
    /// How long to wait for `/ipc/tools/mcp-tools.json` (default `5s`, as
    /// upstream; `0s` skips MCP tools unless the manifest is already there).
    pub const MCP_MANIFEST_WAIT: &str = "AGENTPOD_MCP_MANIFEST_WAIT";
}

/// What the runner was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Run the task through the agent loop.
    Task,
    /// `DRY_RUN=true`: report what would run.
    DryRun,
    /// `CANARY_MODE=true`: cluster health checks (not in this version).
    Canary,
    /// `AGENT_MODE=prompt-server` with no task (not in this version).
    PromptServer,
}

/// Filesystem roots, mapped so a local runner can point them at directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `/workspace`.
    pub workspace: PathBuf,
    /// `/skills`.
    pub skills: PathBuf,
    /// `/tmp`.
    pub tmp: PathBuf,
    /// `/memory`: the legacy memory ConfigMap (`<agent>-memory`).
    pub memory: PathBuf,
}

/// The whole runner configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The IPC volume.
    pub ipc: IpcRoot,
    /// Mapped roots.
    pub roots: Roots,
    /// The task (`TASK`, else `/ipc/input/task.json` `task`).
    pub task: String,
    /// What to do.
    pub mode: Mode,
    /// `SYSTEM_PROMPT`.
    pub system_prompt: String,
    /// The model endpoint.
    pub provider: ProviderConfig,
    /// `RUN_TIMEOUT` (default 30 min for local providers, 10 min otherwise).
    pub run_timeout: Duration,
    /// `MAX_TOOL_ITERATIONS`.
    pub max_iterations: u32,
    /// `AGENTPOD_MAX_PARALLEL_TOOLS`.
    pub max_parallel_tools: usize,
    /// `TOOLS_ENABLED`.
    pub tools_enabled: bool,
    /// `TOOL_POLICY_ALLOW` / `TOOL_POLICY_DENY`.
    pub policy: ToolPolicy,
    /// `SIDECAR_TOOLS_MANIFEST_PATH`.
    pub sidecar_tools_manifest: Option<PathBuf>,
    /// `SYMPOZIUM_FETCH_URL_ALLOW_PRIVATE`.
    pub fetch_allow_private: bool,
    /// `CONTEXT_*`.
    pub context: ContextPolicy,
    /// `WORKFLOW_MEMBRANE_MAX_TOKENS_PER_RUN` (0 = none).
    pub token_budget: u64,
    /// `WORKFLOW_MEMBRANE_TOKEN_BUDGET_ACTION`.
    pub budget_action: BudgetAction,
    /// `INSTANCE_NAME`.
    pub instance: String,
    /// `AGENT_RUN_ID`.
    pub run_id: String,
    /// `AGENT_NAMESPACE`.
    pub namespace: String,
    /// `SOURCE_CHANNEL`, `SOURCE_CHAT_ID`, `SOURCE_THREAD_ID`.
    pub channel: Option<ChannelContext>,
    /// `ENSEMBLE_RELATIONSHIPS`.
    pub relationships: Vec<Relationship>,
    /// `DEBUG`.
    pub debug: bool,
    /// `AGENTPOD_SETTLE`.
    pub settle: Duration,
    /// `ENABLE_PROMPT_SERVICE`: answer `/ipc/prompts` next to the task.
    pub enable_prompt_service: bool,
    /// `USE_CONTEXT` (default true): prompts share one conversation.
    pub use_context: bool,
    /// `SYMPOZIUM_OTEL_*`, `OTEL_*`, `TRACEPARENT`.
    pub telemetry: agentpod_sdk::telemetry::TelemetryConfig,
    /// `DETAILED_LOG_PATH` / `DETAILED_LOG_MAX_SIZE`.
    pub detailed_log: Option<crate::detailed_log::DetailedLogConfig>,
    /// Memory, workflow memory and the legacy marker (`MEMORY_*`,
    /// `WORKFLOW_*`).
    pub memory: crate::tools::memory::MemoryConfig,
    /// `ENSEMBLE_NAME` (needed by `delegate_to_persona`).
    pub ensemble: String,
    /// `SUBAGENTS_ENABLED`.
    pub subagents_enabled: bool,
    /// `SUBAGENTS_MAX_CHILDREN` (default 3).
    pub subagents_max_children: u32,
    /// `AGENTPOD_MCP_MANIFEST_WAIT`.
    pub mcp_manifest_wait: Duration,
}

/// Where the run was triggered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelContext {
    /// e.g. `slack`.
    pub channel: String,
    /// The chat id.
    pub chat_id: String,
    /// The thread id, if any.
    pub thread_id: String,
}

/// One `ENSEMBLE_RELATIONSHIPS` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Relationship {
    /// The other persona.
    pub target: String,
    /// Its display name.
    #[serde(default, rename = "displayName")]
    pub display_name: String,
    /// `delegation` or `supervision`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When to involve it.
    #[serde(default)]
    pub condition: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(Env::from_process())
    }

    /// Reads from any variable snapshot (tests).
    pub fn from_vars(mut env: Env) -> Result<Self, EnvError> {
        let ipc = IpcRoot::new(env.string_or(ext::IPC_ROOT, DEFAULT_IPC_ROOT));
        let roots = Roots {
            workspace: env.string_or(ext::WORKSPACE_ROOT, "/workspace").into(),
            skills: env.string_or(ext::SKILLS_ROOT, "/skills").into(),
            tmp: env.string_or(ext::TMP_ROOT, "/tmp").into(),
            memory: env.string_or(ext::MEMORY_ROOT, "/memory").into(),
        };

        let mut task = env.string(var::TASK).unwrap_or_default();
        if task.is_empty() {
            task = task_from_file(&ipc).unwrap_or_default();
        }
        let dry_run = env.flag(var::DRY_RUN, false);
        let canary = env.flag(var::CANARY_MODE, false);
        let agent_mode = env.string(var::AGENT_MODE).unwrap_or_default();
        let mode = if task.is_empty() {
            match agent_mode.as_str() {
                "" => Mode::Task, // the caller reports the missing task
                var::AGENT_MODE_PROMPT_SERVER => Mode::PromptServer,
                other => {
                    env.invalid(var::AGENT_MODE, other, "unset or prompt-server");
                    Mode::Task
                }
            }
        } else if dry_run {
            Mode::DryRun
        } else if canary {
            Mode::Canary
        } else {
            Mode::Task
        };

        let mut provider = provider_config(&mut env);
        if mode == Mode::PromptServer && provider.api_key.is_none() {
            // Prompt-server mode also takes LLM_API_KEY and the mounted file.
            let key = env.secret(&[var::LLM_API_KEY]).or_else(|| {
                std::fs::read_to_string(var::API_KEY_FILE)
                    .ok()
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
            });
            if let Some(key) = key {
                provider = provider.with_api_key(key);
            }
        }
        let local = is_local_provider(&provider.provider);
        let run_timeout = env
            .duration(var::RUN_TIMEOUT)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(if local { 30 * 60 } else { 10 * 60 }));
        let max_iterations = env
            .parse::<u32>(var::MAX_TOOL_ITERATIONS, "a positive integer", |n| *n > 0)
            .unwrap_or(var::DEFAULT_MAX_TOOL_ITERATIONS);
        let max_parallel_tools = env
            .parse::<usize>(ext::MAX_PARALLEL_TOOLS, "an integer from 1 to 64", |n| {
                (1..=64).contains(n)
            })
            .unwrap_or(8);

        let context = ContextPolicy::new(
            env.parse(
                var::CONTEXT_TOOL_RESULT_MAX_BYTES,
                "a byte count (0 = off)",
                |_| true,
            )
            .unwrap_or(0),
            env.parse(
                var::CONTEXT_HISTORY_BUDGET_BYTES,
                "a byte count (0 = off)",
                |_| true,
            )
            .unwrap_or(0),
            env.parse(
                var::CONTEXT_HISTORY_BUDGET_LOW_BYTES,
                "a byte count",
                |_| true,
            ),
            env.parse(
                var::CONTEXT_KEEP_RECENT_RESULTS,
                "a count of results",
                |_| true,
            ),
        );
        let token_budget = env
            .parse(
                var::WORKFLOW_MEMBRANE_MAX_TOKENS_PER_RUN,
                "a token count (0 = none)",
                |_| true,
            )
            .unwrap_or(0);
        let budget_action = match env
            .string(var::WORKFLOW_MEMBRANE_TOKEN_BUDGET_ACTION)
            .as_deref()
        {
            None | Some("halt") => BudgetAction::Halt,
            // Upstream: any other value only warns.
            Some(_) => BudgetAction::Warn,
        };

        let channel = env
            .string(var::SOURCE_CHANNEL)
            .map(|channel| ChannelContext {
                channel,
                chat_id: env.string(var::SOURCE_CHAT_ID).unwrap_or_default(),
                thread_id: env.string(var::SOURCE_THREAD_ID).unwrap_or_default(),
            });
        let relationships = match env.string(var::ENSEMBLE_RELATIONSHIPS) {
            None => Vec::new(),
            Some(raw) => match serde_json::from_str(&raw) {
                Ok(r) => r,
                Err(e) => {
                    env.invalid(
                        var::ENSEMBLE_RELATIONSHIPS,
                        &raw,
                        format!(
                            "a JSON array of {{\"target\",\"type\",\"displayName\"?,\"condition\"?}} ({e})"
                        ),
                    );
                    Vec::new()
                }
            },
        };

        let config = Config {
            roots,
            task,
            mode,
            system_prompt: env.string_or(var::SYSTEM_PROMPT, var::DEFAULT_SYSTEM_PROMPT),
            run_timeout,
            max_iterations,
            max_parallel_tools,
            tools_enabled: env.flag(var::TOOLS_ENABLED, false),
            policy: ToolPolicy::from_lists(
                &env.string(var::TOOL_POLICY_ALLOW).unwrap_or_default(),
                &env.string(var::TOOL_POLICY_DENY).unwrap_or_default(),
            ),
            sidecar_tools_manifest: env
                .string(var::SIDECAR_TOOLS_MANIFEST_PATH)
                .map(PathBuf::from),
            fetch_allow_private: env.flag(var::SYMPOZIUM_FETCH_URL_ALLOW_PRIVATE, false),
            context,
            token_budget,
            budget_action,
            instance: env.string(var_common::INSTANCE_NAME).unwrap_or_default(),
            run_id: env.string(var_common::AGENT_RUN_ID).unwrap_or_default(),
            namespace: env.string(var_common::AGENT_NAMESPACE).unwrap_or_default(),
            channel,
            relationships,
            debug: env.flag(var_common::DEBUG, false),
            settle: env.duration(ext::SETTLE).unwrap_or(Duration::from_secs(3)),
            enable_prompt_service: env.flag(var::ENABLE_PROMPT_SERVICE, false),
            // Upstream: `true` or `1` (default true); anything else is false.
            use_context: env
                .string(var::USE_CONTEXT)
                .is_none_or(|v| matches!(v.trim(), "true" | "1")),
            telemetry: agentpod_sdk::telemetry::TelemetryConfig::from_env(
                &mut env,
                var::DEFAULT_SERVICE_NAME,
            ),
            detailed_log: detailed_log_config(&mut env),
            memory: crate::tools::memory::MemoryConfig::from_env(&mut env),
            ensemble: env.string(var::ENSEMBLE_NAME).unwrap_or_default(),
            subagents_enabled: env.flag(var::SUBAGENTS_ENABLED, false),
            subagents_max_children: env
                .parse::<u32>(var::SUBAGENTS_MAX_CHILDREN, "a positive integer", |n| {
                    *n > 0
                })
                .unwrap_or(var::DEFAULT_SUBAGENTS_MAX_CHILDREN),
            mcp_manifest_wait: env
                .duration(ext::MCP_MANIFEST_WAIT)
                .unwrap_or(Duration::from_secs(5)),
            provider,
            ipc,
        };
        env.finish()?;
        Ok(config)
    }
}

/// The model endpoint from `MODEL_*`, `LLM_*` and the API key variables.
fn provider_config(env: &mut Env) -> ProviderConfig {
    let mut p = ProviderConfig::new(&env.string(var::MODEL_PROVIDER).unwrap_or_default())
        .with_model(env.string(var::MODEL_NAME).unwrap_or_default())
        .with_base_url(env.string(var::MODEL_BASE_URL).unwrap_or_default());
    if let Some(key) = env.secret(&var::API_KEY_VARS) {
        p = p.with_api_key(key);
    }
    if let Some(raw) = env.string(var::MODEL_PROVIDER_HEADERS) {
        match parse_headers_json(&raw) {
            Ok(h) => p.headers = h,
            // The value may hold secrets: name the variable, not the value.
            Err(e) => env.invalid(
                var::MODEL_PROVIDER_HEADERS,
                "<redacted>",
                format!("a JSON object of header names to string values ({e})"),
            ),
        }
    }
    if let Some(v) = env.string(var::AZURE_OPENAI_API_VERSION) {
        p.azure_api_version = v;
    }
    if let Some(t) = env.duration(var::LLM_REQUEST_TIMEOUT) {
        p.request_timeout = (!t.is_zero()).then_some(t);
    }
    if let Some(n) = env.parse::<u32>(var::LLM_MAX_RETRIES, "a non-negative integer", |_| true) {
        p.max_retries = n;
    }
    p.stream = env.flag(ext::LLM_STREAM, true);
    p
}

/// `DETAILED_LOG_PATH` and `DETAILED_LOG_MAX_SIZE` (`<n>m`/`<n>g`, default
/// 50 MiB).
fn detailed_log_config(env: &mut Env) -> Option<crate::detailed_log::DetailedLogConfig> {
    use crate::detailed_log::{DEFAULT_MAX_SIZE, parse_max_size};
    let max_size = match env.string(var::DETAILED_LOG_MAX_SIZE) {
        None => DEFAULT_MAX_SIZE,
        Some(raw) => parse_max_size(&raw).unwrap_or_else(|| {
            env.invalid(var::DETAILED_LOG_MAX_SIZE, &raw, "a size such as 50m or 1g");
            DEFAULT_MAX_SIZE
        }),
    };
    let dir = env.string(var::DETAILED_LOG_PATH)?;
    Some(crate::detailed_log::DetailedLogConfig {
        dir: dir.into(),
        max_size,
    })
}

/// Upstream's dead-but-kept fallback: `task` of `/ipc/input/task.json`.
fn task_from_file(ipc: &IpcRoot) -> Option<String> {
    let bytes = std::fs::read(ipc.task_input()).ok()?;
    let input: agentpod_sdk::wire::TaskInput = serde_json::from_slice(&bytes).ok()?;
    Some(input.task.trim().to_owned()).filter(|t| !t.is_empty())
}

/// What the runner needs before the full configuration is valid (the skip
/// and fatal paths): the IPC root and the settle delay, read leniently.
pub fn early(env: &Env) -> (IpcRoot, Duration) {
    let ipc = IpcRoot::new(env.string_or(ext::IPC_ROOT, DEFAULT_IPC_ROOT));
    let settle = env
        .string(ext::SETTLE)
        .and_then(|s| agentpod_sdk::envconf::parse_go_duration(&s))
        .unwrap_or(Duration::from_secs(3));
    (ipc, settle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, EnvError> {
        Config::from_vars(Env::from_map(vars.iter().copied()))
    }

    #[test]
    fn defaults_follow_upstream() {
        let c = config(&[("TASK", "hi")]).unwrap();
        assert_eq!(c.mode, Mode::Task);
        assert_eq!(c.system_prompt, "You are a helpful AI assistant.");
        assert_eq!(c.provider.provider, "openai");
        assert_eq!(c.provider.model, "gpt-4o-mini");
        assert_eq!(c.max_iterations, 50);
        assert_eq!(c.run_timeout, Duration::from_secs(600));
        assert_eq!(c.ipc.path(), std::path::Path::new("/ipc"));
        let c = config(&[("TASK", "hi"), ("MODEL_PROVIDER", "Ollama")]).unwrap();
        assert_eq!(c.run_timeout, Duration::from_secs(1800));
        assert_eq!(c.provider.provider, "ollama");
    }

    #[test]
    fn every_bad_variable_is_named() {
        let err = config(&[
            ("TASK", "hi"),
            ("MAX_TOOL_ITERATIONS", "0"),
            ("RUN_TIMEOUT", "ten minutes"),
            ("DRY_RUN", "yes"),
            ("MODEL_PROVIDER_HEADERS", "{\"X-Key\": \"sekrit\""),
        ])
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("MAX_TOOL_ITERATIONS=\"0\" is invalid: expected a positive integer"),
            "{msg}"
        );
        assert!(msg.contains("RUN_TIMEOUT=\"ten minutes\""), "{msg}");
        assert!(
            msg.contains("DRY_RUN=\"yes\" is invalid: expected true or false"),
            "{msg}"
        );
        assert!(msg.contains("MODEL_PROVIDER_HEADERS"), "{msg}");
        assert!(
            !msg.contains("sekrit"),
            "secrets never reach an error: {msg}"
        );
    }

    #[test]
    fn modes() {
        assert_eq!(
            config(&[("TASK", "t"), ("DRY_RUN", "true")]).unwrap().mode,
            Mode::DryRun
        );
        assert_eq!(
            config(&[("AGENT_MODE", "prompt-server")]).unwrap().mode,
            Mode::PromptServer
        );
        let err = config(&[("AGENT_MODE", "chat")]).unwrap_err().to_string();
        assert!(
            err.contains("AGENT_MODE=\"chat\" is invalid: expected unset or prompt-server"),
            "{err}"
        );
    }

    #[test]
    fn relationships_parse() {
        let c = config(&[
            ("TASK", "t"),
            (
                "ENSEMBLE_RELATIONSHIPS",
                r#"[{"target":"reviewer","type":"delegation","condition":"code"}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.relationships[0].target, "reviewer");
        assert_eq!(c.relationships[0].kind, "delegation");
    }
}
