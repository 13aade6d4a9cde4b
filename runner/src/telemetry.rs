//! The runner's telemetry (contract §1.12), on top of
//! [`agentpod_sdk::telemetry`]: started with logging (before any span),
//! flushed at the end of [`crate::run::main`], and the trace context file
//! `/workspace/.sympozium/trace-context.json`.
//!
//! The running [`Telemetry`] is kept in a process-wide cell because the
//! `tracing` subscriber it feeds is process-wide too; nothing else is global.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agentpod_sdk::agent::LoopObserver;
use agentpod_sdk::envconf::Env;
use agentpod_sdk::llm::{ChatRequest, ChatResponse, ProviderError, ToolCall};
use agentpod_sdk::telemetry::{Telemetry, TelemetryConfig};
use agentpod_sdk::wire::env::runner as var;
use agentpod_sdk::wire::{Meta, TraceContextFile};
use tracing::{info, warn};

use crate::config::Config;
use crate::detailed_log::DetailedLog;

/// The instrumentation scope of the runner's spans.
pub const TRACER_NAME: &str = "sympozium/agent-runner";
/// The most the exit waits for spans to leave.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// Starts telemetry when the environment asks for it and returns the
/// `tracing` layer to add; `None` (and no exporter) otherwise. Called once,
/// by [`crate::cli::init_logging`], before the configuration is read in full
/// (bad values are reported later by [`Config::from_env`]).
pub fn start_from_env() -> Option<Telemetry> {
    let mut env = Env::from_process();
    let config = TelemetryConfig::from_env(&mut env, var::DEFAULT_SERVICE_NAME);
    if !config.is_active() {
        return None;
    }
    match Telemetry::start(&config, TRACER_NAME) {
        Ok(t) => {
            // Only the first start counts; there is only one.
            let _ = TELEMETRY.set(t.clone());
            Some(t)
        }
        Err(e) => {
            eprintln!("agent-runner: telemetry disabled: {e}");
            None
        }
    }
}

/// Whether telemetry is running.
pub fn is_active() -> bool {
    TELEMETRY.get().is_some()
}

/// Exports buffered spans and metrics, waiting at most [`FLUSH_TIMEOUT`].
pub async fn flush() {
    let Some(t) = TELEMETRY.get() else {
        return;
    };
    let t = t.clone();
    let done = tokio::task::spawn_blocking(move || t.shutdown(FLUSH_TIMEOUT));
    if tokio::time::timeout(FLUSH_TIMEOUT + Duration::from_millis(500), done)
        .await
        .is_err()
    {
        warn!("telemetry flush timed out; some spans may be lost");
    }
}

/// The runner's [`LoopObserver`]: writes the trace context file when the
/// run starts and forwards everything to the detailed log, if any.
#[derive(Debug)]
pub struct RunObserver {
    /// The detailed log.
    pub log: Option<Arc<DetailedLog>>,
    /// What the trace context file names besides the ids.
    pub file: TraceContextFile,
    /// `/workspace`.
    pub workspace: PathBuf,
}

impl RunObserver {
    /// An observer for `config`'s run.
    pub fn new(config: &Config, log: Option<Arc<DetailedLog>>) -> Self {
        Self {
            log,
            file: TraceContextFile {
                agent_run_id: config.run_id.clone(),
                instance_name: config.instance.clone(),
                namespace: config.namespace.clone(),
                model: config.provider.model.clone(),
                ..TraceContextFile::default()
            },
            workspace: config.roots.workspace.clone(),
        }
    }
}

impl LoopObserver for RunObserver {
    fn on_start(&self, trace: Option<&Meta>) {
        if let Some(meta) = trace {
            write_trace_context(&self.workspace, &self.file, meta);
        }
        if let Some(l) = &self.log {
            l.on_start(trace);
        }
    }
    fn on_request(&self, round: u32, request: &ChatRequest<'_>) {
        if let Some(l) = &self.log {
            l.on_request(round, request);
        }
    }
    fn on_response(&self, round: u32, response: &ChatResponse, took: Duration) {
        if let Some(l) = &self.log {
            l.on_response(round, response, took);
        }
    }
    fn on_error(&self, round: u32, error: &ProviderError) {
        if let Some(l) = &self.log {
            l.on_error(round, error);
        }
    }
    fn on_tool_call(&self, call: &ToolCall) {
        if let Some(l) = &self.log {
            l.on_tool_call(call);
        }
    }
    fn on_tool_result(&self, call: &ToolCall, result: &str, is_error: bool, took: Duration) {
        if let Some(l) = &self.log {
            l.on_tool_result(call, result, is_error, took);
        }
    }
    fn on_elision(&self, elided: usize) {
        if let Some(l) = &self.log {
            l.on_elision(elided);
        }
    }
}

/// Writes `<workspace>/.sympozium/trace-context.json`.
fn write_trace_context(workspace: &Path, base: &TraceContextFile, meta: &Meta) {
    let file = TraceContextFile {
        trace_id: meta.trace_id.clone(),
        span_id: meta.span_id.clone(),
        traceparent: meta.traceparent.clone(),
        ..base.clone()
    };
    let dir = workspace.join(".sympozium");
    let write = std::fs::create_dir_all(&dir).and_then(|()| {
        let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        std::fs::write(dir.join("trace-context.json"), json)
    });
    match write {
        Ok(()) => info!(trace_id = %file.trace_id, "wrote trace-context.json"),
        Err(e) => warn!(error = %e, "cannot write trace-context.json"),
    }
}
