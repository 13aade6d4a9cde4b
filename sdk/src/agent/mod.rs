//! The agent loop (contract §1.5): ask the model, run the tools it calls,
//! feed the results back, until it answers without tool calls.
//!
//! Better than upstream: the tool calls of one turn run concurrently (bounded
//! by [`LoopConfig::max_parallel_tools`]) while their results go back to the
//! model in call order, and the policy is enforced again at call time by the
//! [`Registry`].

mod context;
mod observer;
mod outputs;
mod stream;

pub use context::ContextPolicy;
pub use observer::LoopObserver;
pub use outputs::{RunOutputs, fatal_result};
pub use stream::StreamWriter;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tracing::field::Empty;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::llm::{ChatRequest, Message, Provider, ProviderError, StreamEvent, ToolResult, Usage};
use crate::telemetry;
use crate::tool::{Registry, ToolContext, is_error_result};
use crate::wire::Meta;

/// How much of the task the run span shows (`task.summary`).
const TASK_SUMMARY_CHARS: usize = 200;

/// The terminal-turn text when the model ends with an empty answer after
/// earlier turns had text (upstream's wording).
pub const NO_FINAL_SUMMARY: &str =
    "(Agent completed its task via tool calls but did not produce a final text summary.)";

/// What to do when the per-run token budget is reached
/// (`WORKFLOW_MEMBRANE_TOKEN_BUDGET_ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetAction {
    /// Stop and return what the model said so far, as success.
    #[default]
    Halt,
    /// Log a warning and go on.
    Warn,
}

/// Loop settings.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// `MAX_TOOL_ITERATIONS`: model rounds allowed (default 50).
    pub max_iterations: u32,
    /// How many tool calls of one turn run at once (default 8).
    pub max_parallel_tools: usize,
    /// `WORKFLOW_MEMBRANE_MAX_TOKENS_PER_RUN` (0 = unlimited).
    pub token_budget: u64,
    /// What to do at the budget.
    pub budget_action: BudgetAction,
    /// Clamping and elision of tool results.
    pub context: ContextPolicy,
    /// The remote parent of the run (e.g. `TRACEPARENT`). With telemetry on
    /// it parents the `sympozium.agent.run` span and tools get the current
    /// span's context instead; with telemetry off tools get this as is.
    pub meta: Option<Meta>,
    /// The run's deadline, handed to tools that wait.
    pub deadline: Option<Instant>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            max_iterations: 50,
            max_parallel_tools: 8,
            token_budget: 0,
            budget_action: BudgetAction::Halt,
            context: ContextPolicy::default(),
            meta: None,
            deadline: None,
        }
    }
}

/// A finished loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopOutcome {
    /// The final answer.
    pub response: String,
    /// Tokens over all rounds.
    pub usage: Usage,
    /// How many tool calls ran.
    pub tool_calls: u64,
    /// How many model rounds ran.
    pub rounds: u32,
}

/// Why a loop failed. Carries the counts so far for the result metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoopError {
    /// The provider failed (after its retries).
    #[error("LLM request failed: {error}")]
    Provider {
        /// The classified error.
        error: ProviderError,
        /// Tool calls that ran before.
        tool_calls: u64,
    },
    /// `MAX_TOOL_ITERATIONS` rounds passed without a final answer.
    #[error("exceeded maximum tool-call iterations ({max})")]
    Iterations {
        /// The limit.
        max: u32,
        /// Tool calls that ran.
        tool_calls: u64,
    },
}

impl LoopError {
    /// Tool calls that ran before the failure.
    pub fn tool_calls(&self) -> u64 {
        match self {
            LoopError::Provider { tool_calls, .. } | LoopError::Iterations { tool_calls, .. } => {
                *tool_calls
            }
        }
    }
}

/// The agent loop over one provider and one tool registry.
pub struct AgentLoop {
    provider: Arc<dyn Provider>,
    tools: Arc<Registry>,
    config: LoopConfig,
    instance: String,
    namespace: String,
    observer: Option<Arc<dyn LoopObserver>>,
}

impl std::fmt::Debug for AgentLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLoop")
            .field("provider", &self.provider.system())
            .field("model", &self.provider.model())
            .field("tools", &self.tools)
            .field("config", &self.config)
            .finish()
    }
}

impl AgentLoop {
    /// A loop with `provider`, `tools` and `config`.
    pub fn new(provider: Arc<dyn Provider>, tools: Arc<Registry>, config: LoopConfig) -> Self {
        Self {
            provider,
            tools,
            config,
            instance: String::new(),
            namespace: String::new(),
            observer: None,
        }
    }

    /// Names the agent instance and namespace on the run span
    /// (`instance`, `tenant.namespace`).
    pub fn with_identity(mut self, instance: &str, namespace: &str) -> Self {
        self.instance = instance.to_owned();
        self.namespace = namespace.to_owned();
        self
    }

    /// Reports requests, answers and tool calls to `observer` (the runner's
    /// detailed log).
    pub fn with_observer(mut self, observer: Arc<dyn LoopObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs `task` under `system` to the final answer. Streaming output goes
    /// to `stream` when given. The run is one `sympozium.agent.run` span.
    pub async fn run(
        &self,
        system: &str,
        task: &str,
        stream: Option<&mut StreamWriter>,
    ) -> Result<LoopOutcome, LoopError> {
        let summary: String = task.chars().take(TASK_SUMMARY_CHARS).collect();
        let span = info_span!(
            "sympozium.agent.run",
            instance = %self.instance,
            tenant.namespace = %self.namespace,
            model = self.provider.model(),
            task.summary = %summary,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.tool.call.count = Empty,
            otel.status_code = Empty,
        );
        if let Some(parent) = &self.config.meta {
            telemetry::set_parent(&span, parent);
        }
        let result = self
            .run_rounds(system, task, stream)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(out) => {
                span.record("gen_ai.usage.input_tokens", out.usage.input_tokens);
                span.record("gen_ai.usage.output_tokens", out.usage.output_tokens);
                span.record("gen_ai.tool.call.count", out.tool_calls);
            }
            Err(e) => {
                span.record("gen_ai.tool.call.count", e.tool_calls());
                span.record("otel.status_code", "error");
            }
        }
        result
    }

    async fn run_rounds(
        &self,
        system: &str,
        task: &str,
        mut stream: Option<&mut StreamWriter>,
    ) -> Result<LoopOutcome, LoopError> {
        if let Some(o) = &self.observer {
            o.on_start(telemetry::current_meta().as_ref());
        }
        let tools = self.tools.advertised();
        let mut history = vec![Message::User {
            content: task.to_owned(),
        }];
        let mut usage = Usage::default();
        let mut tool_calls = 0u64;
        let mut texts: Vec<String> = Vec::new();
        let max = self.config.max_iterations;

        for round in 1..=max {
            if round % 10 == 0 || u64::from(round) * 10 >= u64::from(max) * 9 {
                info!(round, max, "llm_round [{round}/{max}]");
            }
            let request = ChatRequest {
                system,
                messages: &history,
                tools: &tools,
                response_format: None,
            };
            let span = chat_span(self.provider.as_ref(), round);
            let mut sink = |ev: StreamEvent| {
                if let Some(s) = stream.as_deref_mut() {
                    s.on_event(ev);
                }
            };
            if let Some(o) = &self.observer {
                o.on_request(round, &request);
            }
            let started = Instant::now();
            let turn = match self
                .provider
                .chat(&request, &mut sink)
                .instrument(span.clone())
                .await
            {
                Ok(turn) => turn,
                Err(error) => {
                    span.record("otel.status_code", "error");
                    if let Some(o) = &self.observer {
                        o.on_error(round, &error);
                    }
                    return Err(LoopError::Provider { error, tool_calls });
                }
            };
            record_turn(&span, self.provider.model(), &turn);
            if let Some(o) = &self.observer {
                o.on_response(round, &turn, started.elapsed());
            }
            if let Some(s) = stream.as_deref_mut() {
                s.flush();
            }
            usage.add(turn.usage);
            debug!(round, calls = turn.tool_calls.len(), finish = ?turn.finish_reason, "model turn");
            if !turn.content.is_empty() {
                texts.push(turn.content.clone());
            }

            let budget = self.config.token_budget;
            let used = usage.input_tokens + usage.output_tokens;
            if budget > 0 && used >= budget {
                match self.config.budget_action {
                    BudgetAction::Halt => {
                        warn!(used, budget, "per-run token budget reached; halting");
                        let response = if texts.is_empty() {
                            format!("Per-run token budget exceeded ({used}/{budget} tokens used)")
                        } else {
                            texts.join("\n\n")
                        };
                        return Ok(LoopOutcome {
                            response,
                            usage,
                            tool_calls,
                            rounds: round,
                        });
                    }
                    BudgetAction::Warn => warn!(used, budget, "per-run token budget exceeded"),
                }
            }

            if turn.tool_calls.is_empty() {
                let response = if !turn.content.is_empty() {
                    turn.content
                } else if !texts.is_empty() {
                    NO_FINAL_SUMMARY.to_owned()
                } else {
                    String::new()
                };
                info!(
                    input = usage.input_tokens,
                    cached = usage.cached_input_tokens,
                    output = usage.output_tokens,
                    tool_calls,
                    "token_usage"
                );
                return Ok(LoopOutcome {
                    response,
                    usage,
                    tool_calls,
                    rounds: round,
                });
            }

            let calls = turn.tool_calls;
            tool_calls += calls.len() as u64;
            if let Some(s) = stream.as_deref_mut() {
                for c in &calls {
                    s.tool_use(&c.id, &c.name, &c.arguments);
                }
            }
            let results = self.run_calls(&calls, stream.as_deref_mut()).await;
            history.push(Message::Assistant {
                content: turn.content,
                tool_calls: calls,
            });
            history.push(Message::ToolResults { results });
            let elided = self.config.context.elide(&mut history);
            if elided > 0 {
                info!(elided, "elided earlier tool results to reclaim context");
                if let Some(o) = &self.observer {
                    o.on_elision(elided);
                }
            }
        }
        Err(LoopError::Iterations { max, tool_calls })
    }

    /// Runs one turn's calls concurrently; results in call order. Each
    /// result's stream chunk is written as soon as that call finishes, so
    /// a watcher sees every tool's own time, not the slowest one's.
    async fn run_calls(
        &self,
        calls: &[crate::llm::ToolCall],
        mut stream: Option<&mut StreamWriter>,
    ) -> Vec<ToolResult> {
        let parallel = self.config.max_parallel_tools.max(1);
        let mut done = futures::stream::iter(calls.iter().enumerate())
            .map(|(i, call)| {
                let span = info_span!(
                    "gen_ai.execute_tool",
                    gen_ai.tool.name = %call.name,
                    gen_ai.tool.call.id = %call.id,
                    duration_ms = Empty,
                    otel.status_code = Empty,
                );
                let tool_span = span.clone();
                async move {
                    if let Some(o) = &self.observer {
                        o.on_tool_call(call);
                    }
                    let started = Instant::now();
                    let text = if call.name == EXEC_TOOL {
                        // Upstream's child span for the sidecar round trip;
                        // the sidecar parents its own spans on it.
                        let exec = info_span!(
                            "sympozium.skill.exec",
                            skill.name = "command-executor",
                            sidecar.container = "tool-executor",
                            rbac.scope = "namespace",
                            duration_ms = Empty,
                        );
                        let text = self.dispatch(call).instrument(exec.clone()).await;
                        let took = started.elapsed();
                        exec.record("duration_ms", millis(took));
                        telemetry::record_skill("command-executor", took);
                        text
                    } else {
                        self.dispatch(call).await
                    };
                    let text = self.config.context.clamp(&call.name, text);
                    let took = started.elapsed();
                    let is_error = is_error_result(&text) || text.starts_with("MCP Error:");
                    tool_span.record("duration_ms", millis(took));
                    if is_error {
                        tool_span.record("otel.status_code", "error");
                    }
                    telemetry::record_tool(&call.name, is_error);
                    info!(duration_ms = millis(took), is_error, "tool call finished");
                    if let Some(o) = &self.observer {
                        o.on_tool_result(call, &text, is_error, took);
                    }
                    (
                        i,
                        ToolResult {
                            call_id: call.id.clone(),
                            name: call.name.clone(),
                            content: text,
                            is_error,
                        },
                    )
                }
                .instrument(span)
            })
            .buffer_unordered(parallel);
        let mut results: Vec<Option<ToolResult>> = vec![None; calls.len()];
        while let Some((i, r)) = done.next().await {
            if let Some(s) = stream.as_deref_mut() {
                s.tool_result(&r.call_id, &r.content);
            }
            results[i] = Some(r);
        }
        results.into_iter().flatten().collect()
    }

    /// Dispatches one call with the trace context of the current span
    /// (telemetry on), else the static one of [`LoopConfig::meta`].
    async fn dispatch(&self, call: &crate::llm::ToolCall) -> String {
        let ctx = ToolContext {
            call_id: call.id.clone(),
            meta: telemetry::current_meta().or_else(|| self.config.meta.clone()),
            deadline: self.config.deadline,
        };
        self.tools.dispatch(call, &ctx).await
    }
}

/// The tool whose calls go to a skill sidecar (upstream's `sympozium.skill.exec`).
const EXEC_TOOL: &str = "execute_command";

/// One `gen_ai.chat` span; usage and finish reasons are recorded after the turn.
fn chat_span(provider: &dyn Provider, round: u32) -> tracing::Span {
    info_span!(
        "gen_ai.chat",
        gen_ai.system = provider.system(),
        gen_ai.request.model = provider.model(),
        round,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.cached_input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.response.finish_reasons = Empty,
        otel.status_code = Empty,
    )
}

fn record_turn(span: &tracing::Span, model: &str, turn: &crate::llm::ChatResponse) {
    let u = turn.usage;
    span.record("gen_ai.usage.input_tokens", u.input_tokens);
    span.record("gen_ai.usage.cached_input_tokens", u.cached_input_tokens);
    span.record("gen_ai.usage.output_tokens", u.output_tokens);
    if let Some(reason) = &turn.finish_reason {
        span.record("gen_ai.response.finish_reasons", reason.as_str());
    }
    telemetry::record_tokens(model, u.input_tokens, u.output_tokens);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
