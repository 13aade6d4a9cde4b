//! A custom agent on the agentpod SDK, the starting point for agent
//! developers: one tool of its own (`word_stats`), the SDK's provider client
//! and agent loop, and the same `/ipc` outputs as `agent-runner`, so it can
//! stand in the `agent` container of a Pod.
//!
//! Environment: `TASK`, `MODEL_PROVIDER`, `MODEL_NAME`, `MODEL_BASE_URL`,
//! `API_KEY`, and `AGENTPOD_IPC_ROOT` (default `/ipc`).

use std::sync::Arc;
use std::time::Instant;

use agentpod_sdk::agent::{AgentLoop, LoopConfig, RunOutputs, StreamWriter};
use agentpod_sdk::envconf::Env;
use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::llm::{self, ProviderConfig, ToolSpec};
use agentpod_sdk::tool::{Args, Registry, Tool, ToolContext, ToolPolicy};
use agentpod_sdk::wire::{AgentResult, Metrics};
use async_trait::async_trait;
use serde_json::json;

const USAGE: &str = "custom-agent: an agent on the agentpod SDK with one tool (word_stats).
It runs one task and writes /ipc/output/result.json, /ipc/done and the
__SYMPOZIUM_RESULT__ stdout marker, like agent-runner.

Usage: custom-agent            (configured by the environment)

Environment:
  TASK              the task
  MODEL_PROVIDER    openai | anthropic | ... (as agent-runner)
  MODEL_NAME        the model
  MODEL_BASE_URL    the provider endpoint
  API_KEY           the provider key
  AGENTPOD_IPC_ROOT the IPC volume (default /ipc)";

/// Counts words, lines and characters of a text.
struct WordStats {
    spec: ToolSpec,
}

impl WordStats {
    fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: "word_stats".into(),
                description: "Count the words, lines and characters of a text.".into(),
                parameters: json!({
                    "type": "object",
                    "properties": {"text": {"type": "string", "description": "The text to measure"}},
                    "required": ["text"]
                }),
            },
        }
    }
}

#[async_trait]
impl Tool for WordStats {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        let Some(text) = args.get("text").and_then(|v| v.as_str()) else {
            return "Error: text is required".into();
        };
        format!(
            "words: {}, lines: {}, characters: {}",
            text.split_whitespace().count(),
            text.lines().count(),
            text.chars().count()
        )
    }
}

fn main() -> std::process::ExitCode {
    // A configuration mistake is one line on stderr, never a backtrace,
    // whatever RUST_BACKTRACE says.
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => agentpod_sdk::logging::fatal("custom-agent", e.as_ref(), 1),
    }
}

async fn run() -> anyhow::Result<()> {
    if std::env::args().skip(1).any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let started = Instant::now();
    let env = Env::from_process();
    let ipc = IpcRoot::new(env.string_or("AGENTPOD_IPC_ROOT", "/ipc"));
    let task = env.string("TASK").unwrap_or_default();
    let provider = ProviderConfig::new(&env.string("MODEL_PROVIDER").unwrap_or_default())
        .with_model(env.string("MODEL_NAME").unwrap_or_default())
        .with_base_url(env.string("MODEL_BASE_URL").unwrap_or_default())
        .with_api_key(env.secret(&["API_KEY"]).unwrap_or_default());

    let mut tools = Registry::new(ToolPolicy::default());
    tools.register(Arc::new(WordStats::new()))?;
    let agent = AgentLoop::new(
        llm::build(&provider)?,
        Arc::new(tools),
        LoopConfig::default(),
    );

    let mut stream = StreamWriter::new(ipc.clone());
    let result = match agent
        .run("You are a precise text analyst.", &task, Some(&mut stream))
        .await
    {
        Ok(out) => AgentResult::success(
            out.response,
            Metrics {
                duration_ms: started.elapsed().as_millis() as i64,
                input_tokens: out.usage.input_tokens as i64,
                output_tokens: out.usage.output_tokens as i64,
                tool_calls: out.tool_calls as i64,
            },
        ),
        Err(e) => AgentResult::error(e.to_string(), Metrics::default()),
    };
    RunOutputs::new(ipc).finish(&result, &mut std::io::stdout())?;
    std::process::exit(result.exit_code());
}
