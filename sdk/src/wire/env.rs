//! Environment variable names of the contract, grouped by the container that
//! reads them. Names are upstream's and must not change; defaults that are
//! part of the contract sit next to their variable.
//!
//! Names read by more than one container live in [`common`] and are
//! re-exported by each component module that reads them.

/// Names several containers read.
pub mod common {
    /// AgentRun name; required by the ipc-bridge.
    pub const AGENT_RUN_ID: &str = "AGENT_RUN_ID";
    /// Agent (instance) name.
    pub const INSTANCE_NAME: &str = "INSTANCE_NAME";
    /// Namespace of the AgentRun.
    pub const AGENT_NAMESPACE: &str = "AGENT_NAMESPACE";
    /// `true` turns on extra logging (runner: also keeps memory markers).
    pub const DEBUG: &str = "DEBUG";
    /// W3C trace parent of the run.
    pub const TRACEPARENT: &str = "TRACEPARENT";
    /// Standard OpenTelemetry OTLP endpoint.
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// Standard OpenTelemetry service name.
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    /// Sympozium's OTLP endpoint (preferred over the standard one).
    pub const SYMPOZIUM_OTEL_OTLP_ENDPOINT: &str = "SYMPOZIUM_OTEL_OTLP_ENDPOINT";
}

/// The `agent` container (agent-runner).
pub mod runner {
    pub use super::common::{
        AGENT_NAMESPACE, AGENT_RUN_ID, DEBUG, INSTANCE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT,
        OTEL_SERVICE_NAME, SYMPOZIUM_OTEL_OTLP_ENDPOINT, TRACEPARENT,
    };

    // Core and model.
    /// The user prompt.
    pub const TASK: &str = "TASK";
    /// Base system prompt.
    pub const SYSTEM_PROMPT: &str = "SYSTEM_PROMPT";
    /// Default of [`SYSTEM_PROMPT`].
    pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful AI assistant.";
    /// Provider name, lowercased (`openai`, `anthropic`, `bedrock`, ...).
    pub const MODEL_PROVIDER: &str = "MODEL_PROVIDER";
    /// Default of [`MODEL_PROVIDER`].
    pub const DEFAULT_MODEL_PROVIDER: &str = "openai";
    /// Model name.
    pub const MODEL_NAME: &str = "MODEL_NAME";
    /// Default of [`MODEL_NAME`].
    pub const DEFAULT_MODEL_NAME: &str = "gpt-4o-mini";
    /// Provider base URL (trailing `/` trimmed).
    pub const MODEL_BASE_URL: &str = "MODEL_BASE_URL";
    /// JSON object of extra HTTP headers for every LLM request.
    pub const MODEL_PROVIDER_HEADERS: &str = "MODEL_PROVIDER_HEADERS";
    /// Azure OpenAI API version.
    pub const AZURE_OPENAI_API_VERSION: &str = "AZURE_OPENAI_API_VERSION";
    /// Default of [`AZURE_OPENAI_API_VERSION`].
    pub const DEFAULT_AZURE_OPENAI_API_VERSION: &str = "2024-06-01";
    /// API key (generic).
    pub const API_KEY: &str = "API_KEY";
    /// OpenAI API key.
    pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
    /// Anthropic API key.
    pub const ANTHROPIC_API_KEY: &str = "ANTHROPIC_API_KEY";
    /// Azure OpenAI API key.
    pub const AZURE_OPENAI_API_KEY: &str = "AZURE_OPENAI_API_KEY";
    /// API key (generic, lowest priority in the main loop).
    pub const PROVIDER_API_KEY: &str = "PROVIDER_API_KEY";
    /// API key read by prompt-server and canary modes.
    pub const LLM_API_KEY: &str = "LLM_API_KEY";
    /// The main loop's API key: the first non-empty of these, in order, not
    /// matched to the provider.
    pub const API_KEY_VARS: [&str; 5] = [
        API_KEY,
        OPENAI_API_KEY,
        ANTHROPIC_API_KEY,
        AZURE_OPENAI_API_KEY,
        PROVIDER_API_KEY,
    ];
    /// File holding an API key (prompt-server and canary modes).
    pub const API_KEY_FILE: &str = "/secrets/api-key";
    /// AWS access key id (Bedrock, via the AWS default chain).
    pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// AWS secret key (Bedrock).
    pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// AWS session token (Bedrock).
    pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// AWS region (Bedrock).
    pub const AWS_REGION: &str = "AWS_REGION";

    // Loop and timeouts.
    /// Tool rounds per run (integer > 0).
    pub const MAX_TOOL_ITERATIONS: &str = "MAX_TOOL_ITERATIONS";
    /// Default of [`MAX_TOOL_ITERATIONS`].
    pub const DEFAULT_MAX_TOOL_ITERATIONS: u32 = 50;
    /// Per LLM request timeout (Go duration).
    pub const LLM_REQUEST_TIMEOUT: &str = "LLM_REQUEST_TIMEOUT";
    /// LLM retries (integer ≥ 0).
    pub const LLM_MAX_RETRIES: &str = "LLM_MAX_RETRIES";
    /// Whole-run deadline (Go duration).
    pub const RUN_TIMEOUT: &str = "RUN_TIMEOUT";

    // Modes and flags.
    /// Run mode; see [`AGENT_MODE_PROMPT_SERVER`].
    pub const AGENT_MODE: &str = "AGENT_MODE";
    /// The one supported [`AGENT_MODE`] value.
    pub const AGENT_MODE_PROMPT_SERVER: &str = "prompt-server";
    /// `true`: report what would run, call no model.
    pub const DRY_RUN: &str = "DRY_RUN";
    /// `true`: run health checks instead of the task.
    pub const CANARY_MODE: &str = "CANARY_MODE";
    /// Node IP (canary mode, local providers).
    pub const HOST_IP: &str = "HOST_IP";
    /// `true`: advertise the built-in tools.
    pub const TOOLS_ENABLED: &str = "TOOLS_ENABLED";
    /// `true`: serve `/ipc/prompts` alongside the normal loop.
    pub const ENABLE_PROMPT_SERVICE: &str = "ENABLE_PROMPT_SERVICE";
    /// Prompt service keeps conversation history (`true`/`1`, default true).
    pub const USE_CONTEXT: &str = "USE_CONTEXT";

    // Identity.
    /// Ensemble name; required by `delegate_to_persona`.
    pub const ENSEMBLE_NAME: &str = "ENSEMBLE_NAME";
    /// Persona name (logs only).
    pub const PERSONA_NAME: &str = "PERSONA_NAME";
    /// JSON array `[{"target","displayName"?,"type","condition"?}]`.
    pub const ENSEMBLE_RELATIONSHIPS: &str = "ENSEMBLE_RELATIONSHIPS";

    // Channels.
    /// Channel the task came from.
    pub const SOURCE_CHANNEL: &str = "SOURCE_CHANNEL";
    /// Chat the task came from.
    pub const SOURCE_CHAT_ID: &str = "SOURCE_CHAT_ID";
    /// Thread the task came from.
    pub const SOURCE_THREAD_ID: &str = "SOURCE_THREAD_ID";

    // Tools.
    /// Comma list: only these tools are advertised.
    pub const TOOL_POLICY_ALLOW: &str = "TOOL_POLICY_ALLOW";
    /// Comma list: these tools are never advertised.
    pub const TOOL_POLICY_DENY: &str = "TOOL_POLICY_DENY";
    /// Path of the native sidecar tool manifest.
    pub const SIDECAR_TOOLS_MANIFEST_PATH: &str = "SIDECAR_TOOLS_MANIFEST_PATH";
    /// `true`: offer `spawn_subagents`.
    pub const SUBAGENTS_ENABLED: &str = "SUBAGENTS_ENABLED";
    /// Most tasks per `spawn_subagents` call.
    pub const SUBAGENTS_MAX_CHILDREN: &str = "SUBAGENTS_MAX_CHILDREN";
    /// Default of [`SUBAGENTS_MAX_CHILDREN`].
    pub const DEFAULT_SUBAGENTS_MAX_CHILDREN: u32 = 3;
    /// `true`: `fetch_url` may reach private addresses.
    pub const SYMPOZIUM_FETCH_URL_ALLOW_PRIVATE: &str = "SYMPOZIUM_FETCH_URL_ALLOW_PRIVATE";

    // Memory.
    /// Agent memory server base URL.
    pub const MEMORY_SERVER_URL: &str = "MEMORY_SERVER_URL";
    /// `false|0|no|off` turns auto-store off.
    pub const MEMORY_AUTO_STORE: &str = "MEMORY_AUTO_STORE";
    /// Task bytes kept in an auto-stored memory (default 500).
    pub const MEMORY_AUTO_STORE_MAX_TASK_BYTES: &str = "MEMORY_AUTO_STORE_MAX_TASK_BYTES";
    /// Response bytes kept in an auto-stored memory (default 1000).
    pub const MEMORY_AUTO_STORE_MAX_RESPONSE_BYTES: &str = "MEMORY_AUTO_STORE_MAX_RESPONSE_BYTES";
    /// `true`: legacy ConfigMap memory with stdout memory markers.
    pub const MEMORY_ENABLED: &str = "MEMORY_ENABLED";
    /// Shared workflow memory server base URL.
    pub const WORKFLOW_MEMORY_SERVER_URL: &str = "WORKFLOW_MEMORY_SERVER_URL";
    /// `read-write` (default) or `read-only`.
    pub const WORKFLOW_MEMORY_ACCESS: &str = "WORKFLOW_MEMORY_ACCESS";
    /// Default visibility of stored workflow memories.
    pub const WORKFLOW_MEMBRANE_VISIBILITY: &str = "WORKFLOW_MEMBRANE_VISIBILITY";
    /// Comma list of trusted peer agents.
    pub const WORKFLOW_MEMBRANE_TRUST_PEERS: &str = "WORKFLOW_MEMBRANE_TRUST_PEERS";
    /// Comma list of tags accepted on read.
    pub const WORKFLOW_MEMBRANE_ACCEPT_TAGS: &str = "WORKFLOW_MEMBRANE_ACCEPT_TAGS";
    /// Comma list of tags that may be shared.
    pub const WORKFLOW_MEMBRANE_EXPOSE_TAGS: &str = "WORKFLOW_MEMBRANE_EXPOSE_TAGS";
    /// Oldest memory read (Go duration).
    pub const WORKFLOW_MEMBRANE_MAX_AGE: &str = "WORKFLOW_MEMBRANE_MAX_AGE";
    /// Weakest evidence kind read.
    pub const WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND: &str = "WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND";
    /// Token budget per run (0 = none).
    pub const WORKFLOW_MEMBRANE_MAX_TOKENS_PER_RUN: &str = "WORKFLOW_MEMBRANE_MAX_TOKENS_PER_RUN";
    /// `halt` (default) or anything else (warn only).
    pub const WORKFLOW_MEMBRANE_TOKEN_BUDGET_ACTION: &str = "WORKFLOW_MEMBRANE_TOKEN_BUDGET_ACTION";

    // Context policy.
    /// Clamp of one tool result in bytes (0 = none).
    pub const CONTEXT_TOOL_RESULT_MAX_BYTES: &str = "CONTEXT_TOOL_RESULT_MAX_BYTES";
    /// Budget of live tool-result bytes (0 = no elision).
    pub const CONTEXT_HISTORY_BUDGET_BYTES: &str = "CONTEXT_HISTORY_BUDGET_BYTES";
    /// Low-water mark of elision (default budget / 2).
    pub const CONTEXT_HISTORY_BUDGET_LOW_BYTES: &str = "CONTEXT_HISTORY_BUDGET_LOW_BYTES";
    /// Newest tool results never elided (default 3).
    pub const CONTEXT_KEEP_RECENT_RESULTS: &str = "CONTEXT_KEEP_RECENT_RESULTS";

    // Telemetry.
    /// `true` turns on OpenTelemetry.
    pub const SYMPOZIUM_OTEL_ENABLED: &str = "SYMPOZIUM_OTEL_ENABLED";
    /// Sympozium's service name (preferred over [`OTEL_SERVICE_NAME`]).
    pub const SYMPOZIUM_OTEL_SERVICE_NAME: &str = "SYMPOZIUM_OTEL_SERVICE_NAME";
    /// Default service name.
    pub const DEFAULT_SERVICE_NAME: &str = "sympozium-agent-runner";

    // Detailed log.
    /// Directory of JSONL detailed logs.
    pub const DETAILED_LOG_PATH: &str = "DETAILED_LOG_PATH";
    /// Rotation size (`<n>m` or `<n>g`, default 50 MiB).
    pub const DETAILED_LOG_MAX_SIZE: &str = "DETAILED_LOG_MAX_SIZE";

    // Set by the controller, not read by the upstream runner.
    /// `spec.agentId` (not read).
    pub const AGENT_ID: &str = "AGENT_ID";
    /// `spec.sessionKey` (not read).
    pub const SESSION_KEY: &str = "SESSION_KEY";
    /// Thinking mode (not implemented upstream).
    pub const THINKING_MODE: &str = "THINKING_MODE";
    /// Skill targets (not read).
    pub const SYMPOZIUM_SKILL_TARGETS: &str = "SYMPOZIUM_SKILL_TARGETS";
    /// Concurrent subagents (not read).
    pub const SUBAGENTS_MAX_CONCURRENT: &str = "SUBAGENTS_MAX_CONCURRENT";
    /// Subagent depth (not read).
    pub const SUBAGENTS_MAX_DEPTH: &str = "SUBAGENTS_MAX_DEPTH";
    /// OTLP protocol (not read).
    pub const SYMPOZIUM_OTEL_OTLP_PROTOCOL: &str = "SYMPOZIUM_OTEL_OTLP_PROTOCOL";
    /// OTel resource attributes (not read).
    pub const SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES: &str = "SYMPOZIUM_OTEL_RESOURCE_ATTRIBUTES";
    /// Azure endpoint, from the auth Secret (not read).
    pub const AZURE_OPENAI_ENDPOINT: &str = "AZURE_OPENAI_ENDPOINT";
    /// Keys the controller maps from `model.authSecretRef`, in its order.
    pub const AUTH_SECRET_KEYS: [&str; 11] = [
        OPENAI_API_KEY,
        ANTHROPIC_API_KEY,
        AZURE_OPENAI_API_KEY,
        AZURE_OPENAI_ENDPOINT,
        "OLLAMA_HOST",
        "GOOGLE_API_KEY",
        "MISTRAL_API_KEY",
        "GROQ_API_KEY",
        "DEEPSEEK_API_KEY",
        "OPENROUTER_API_KEY",
        API_KEY,
    ];
}

/// The `ipc-bridge` container.
pub mod ipc_bridge {
    pub use super::common::{AGENT_NAMESPACE, AGENT_RUN_ID, INSTANCE_NAME};

    /// NATS URL; default
    /// [`DEFAULT_EVENT_BUS_URL`](crate::wire::stream_config::DEFAULT_EVENT_BUS_URL).
    pub const EVENT_BUS_URL: &str = "EVENT_BUS_URL";
    /// Name allowed in an outbound message's `username`.
    pub const AGENT_DISPLAY_NAME: &str = "AGENT_DISPLAY_NAME";
    /// `true`: do not publish `agent.run.completed` or stream chunks.
    pub const GATE_SUPPRESS_COMPLETION: &str = "GATE_SUPPRESS_COMPLETION";
    /// Comma list of channels messages may go to; its mere presence (even
    /// empty) switches the check on.
    pub const ALLOWED_OUTBOUND_CHANNELS: &str = "ALLOWED_OUTBOUND_CHANNELS";
}

/// `skill-<pack>` containers (`tool-executor.sh` and friends).
pub mod skill_sidecar {
    /// The SkillPack name; requests for another `target` are skipped.
    pub const SYMPOZIUM_SKILL_PACK: &str = "SYMPOZIUM_SKILL_PACK";
    /// Task-mode run configuration, JSON.
    pub const SYMPOZIUM_RUN_CONFIG_JSON: &str = "SYMPOZIUM_RUN_CONFIG_JSON";
    /// Prefix of SkillRef params: `SKILL_<UPPER(key)>`.
    pub const SKILL_PARAM_PREFIX: &str = "SKILL_";

    /// The variable a SkillRef param `key` becomes.
    pub fn skill_param(key: &str) -> String {
        format!("{SKILL_PARAM_PREFIX}{}", key.to_uppercase())
    }
}

/// The `mcp-bridge` container (and `mcp-discover` init container, and the
/// stdio adapter).
pub mod mcp_bridge {
    pub use super::common::{
        AGENT_RUN_ID, DEBUG, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, TRACEPARENT,
    };

    /// Bridge config YAML path.
    pub const MCP_CONFIG_PATH: &str = "MCP_CONFIG_PATH";
    /// Default of [`MCP_CONFIG_PATH`].
    pub const DEFAULT_CONFIG_PATH: &str = "/config/mcp-servers.yaml";
    /// Directory watched for requests.
    pub const MCP_IPC_PATH: &str = "MCP_IPC_PATH";
    /// Default of [`MCP_IPC_PATH`].
    pub const DEFAULT_IPC_PATH: &str = "/ipc/tools";
    /// Manifest path.
    pub const MCP_MANIFEST_PATH: &str = "MCP_MANIFEST_PATH";
    /// Default service name.
    pub const DEFAULT_SERVICE_NAME: &str = "sympozium-mcp-bridge";
    /// Prefix of per-server auth variables: `MCP_AUTH_<NAME>`.
    pub const MCP_AUTH_PREFIX: &str = "MCP_AUTH_";
    /// `true`: discover, write the manifest, exit 0.
    pub const MCP_DISCOVER_ONLY: &str = "MCP_DISCOVER_ONLY";
    /// `true`: run as the stdio adapter.
    pub const MCP_STDIO_ADAPTER: &str = "MCP_STDIO_ADAPTER";
    /// Stdio adapter: the server program.
    pub const STDIO_CMD: &str = "STDIO_CMD";
    /// Stdio adapter: its arguments, comma separated.
    pub const STDIO_ARGS: &str = "STDIO_ARGS";
    /// Stdio adapter: server name.
    pub const STDIO_SERVER_NAME: &str = "STDIO_SERVER_NAME";
    /// Stdio adapter: HTTP port.
    pub const STDIO_PORT: &str = "STDIO_PORT";
    /// Default of [`STDIO_PORT`].
    pub const DEFAULT_STDIO_PORT: u16 = 8080;
    /// Stdio adapter: `STDIO_ENV_<K>=v` becomes `<K>=v` in the child.
    pub const STDIO_ENV_PREFIX: &str = "STDIO_ENV_";
    /// Parent variables the stdio child inherits: those whose
    /// `NAME=value` form starts with one of these.
    pub const STDIO_CHILD_ENV_PREFIXES: [&str; 12] = [
        "PATH=",
        "HOME=",
        "USER=",
        "LANG=",
        "LC_",
        "NODE_",
        "NPM_",
        "HOSTNAME=",
        "TERM=",
        "SSL_CERT",
        "CA_CERT",
        "CURL_CA",
    ];

    /// The auth variable of server `name`: `MCP_AUTH_` + name uppercased
    /// with `-` turned into `_`.
    pub fn auth_var(name: &str) -> String {
        format!("{MCP_AUTH_PREFIX}{}", name.to_uppercase().replace('-', "_"))
    }
}

/// The memory server.
pub mod memory_server {
    pub use super::common::{
        OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, SYMPOZIUM_OTEL_OTLP_ENDPOINT,
    };

    /// SQLite database path.
    pub const MEMORY_DB_PATH: &str = "MEMORY_DB_PATH";
    /// Default of [`MEMORY_DB_PATH`].
    pub const DEFAULT_DB_PATH: &str = "/data/memory.db";
    /// HTTP port.
    pub const MEMORY_PORT: &str = "MEMORY_PORT";
    /// Default of [`MEMORY_PORT`].
    pub const DEFAULT_PORT: u16 = 8080;
    /// Agent name (metric label).
    pub const MEMORY_AGENT: &str = "MEMORY_AGENT";
    /// Bearer token that enables `DELETE /delete`.
    pub const MEMORY_ADMIN_TOKEN: &str = "MEMORY_ADMIN_TOKEN";
}

/// Lifecycle hook containers (preRun and postRun).
pub mod hooks {
    pub use super::common::{AGENT_NAMESPACE, AGENT_RUN_ID, INSTANCE_NAME};

    /// postRun: the agent container's exit code.
    pub const AGENT_EXIT_CODE: &str = "AGENT_EXIT_CODE";
    /// postRun: the result text (at most 32 KiB).
    pub const AGENT_RESULT: &str = "AGENT_RESULT";
    /// postRun: `true` for the gate hook.
    pub const GATE_MODE: &str = "GATE_MODE";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names() {
        assert_eq!(mcp_bridge::auth_var("my-github"), "MCP_AUTH_MY_GITHUB");
        assert_eq!(skill_sidecar::skill_param("region"), "SKILL_REGION");
        assert_eq!(runner::API_KEY_VARS[0], "API_KEY");
        assert_eq!(ipc_bridge::AGENT_RUN_ID, "AGENT_RUN_ID");
    }
}
