//! Command line and logging set-up. The runner takes no flags: the
//! environment is its configuration (contract §1.2); `--help` lists it.

use clap::Parser;

const ABOUT: &str = "The agentpod agent container: runs the LLM tool loop for one AgentRun \
and writes /ipc/output/result.json, /ipc/done and the __SYMPOZIUM_RESULT__ stdout marker.";

const AFTER_HELP: &str = "\
Configuration is the environment (a drop-in for Sympozium's agent-runner):
  TASK                     the task (else /ipc/input/task.json)
  SYSTEM_PROMPT            base system prompt
  MODEL_PROVIDER           openai (default), anthropic, azure-openai, ollama, lm-studio,
                           llama-server, unsloth, vllm, llamacpp, local
  MODEL_NAME               model (default gpt-4o-mini)
  MODEL_BASE_URL           endpoint base URL
  MODEL_PROVIDER_HEADERS   JSON object of extra request headers
  API_KEY, OPENAI_API_KEY, ANTHROPIC_API_KEY, AZURE_OPENAI_API_KEY, PROVIDER_API_KEY
  LLM_REQUEST_TIMEOUT      per request (Go duration, e.g. 90s)
  LLM_MAX_RETRIES          retries on 429/5xx/network errors
  RUN_TIMEOUT              whole run (default 10m, 30m for local providers)
  MAX_TOOL_ITERATIONS      model rounds (default 50)
  TOOLS_ENABLED            true to offer the built-in tools
  TOOL_POLICY_ALLOW, TOOL_POLICY_DENY   comma lists
  SIDECAR_TOOLS_MANIFEST_PATH           native SkillPack tools
  DRY_RUN                  true: report what would run
  AGENT_MODE=prompt-server, ENABLE_PROMPT_SERVICE, USE_CONTEXT   sidecar-driven prompting
  SYMPOZIUM_OTEL_ENABLED, SYMPOZIUM_OTEL_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT),
  SYMPOZIUM_OTEL_SERVICE_NAME (or OTEL_SERVICE_NAME), TRACEPARENT   OTLP/HTTP telemetry
  DETAILED_LOG_PATH, DETAILED_LOG_MAX_SIZE   JSONL detailed log
  CONTEXT_TOOL_RESULT_MAX_BYTES, CONTEXT_HISTORY_BUDGET_BYTES, ...
agentpod additions:
  AGENTPOD_IPC_ROOT, AGENTPOD_WORKSPACE_ROOT, AGENTPOD_SKILLS_ROOT, AGENTPOD_TMP_ROOT
  AGENTPOD_MAX_PARALLEL_TOOLS (default 8), AGENTPOD_LLM_STREAM (default true),
  AGENTPOD_SETTLE (default 3s), LOG_FORMAT=json, RUST_LOG
See runner/README.md for the full table.";

#[derive(Parser)]
#[command(name = "agent-runner", version, about = ABOUT, after_help = AFTER_HELP)]
struct Cli {}

/// Handles `--help` and `--version`; any argument is an error.
pub fn parse() {
    Cli::parse();
}

/// Logs to stderr (stdout carries the result marker) through
/// [`agentpod_sdk::logging::layer`]: `LOG_FORMAT=json` for JSON lines,
/// `RUST_LOG` for the filter. With telemetry on
/// (`SYMPOZIUM_OTEL_ENABLED=true` and an endpoint), spans also go to the
/// OpenTelemetry layer, whose filter is independent of `RUST_LOG`.
pub fn init_logging() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let fmt = agentpod_sdk::logging::layer(agentpod_sdk::logging::json_requested());
    let otel = crate::telemetry::start_from_env().map(|t| t.layer().with_filter(LevelFilter::INFO));
    tracing_subscriber::registry().with(fmt).with(otel).init();
}
