//! The runner's paths through a run (contract §1.1): skip marker, fatal
//! configuration errors, dry run, and the agent loop, each ending with the
//! outputs of §1.9.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentpod_sdk::agent::{AgentLoop, LoopConfig, LoopError, RunOutputs, StreamWriter};
use agentpod_sdk::envconf::Env;
use agentpod_sdk::llm;
use agentpod_sdk::wire::{AgentResult, Metrics};
use tracing::{error, info, warn};

use crate::assemble;
use crate::config::{Config, Mode, early};
use crate::detailed_log::DetailedLog;
use crate::prompt::system_prompt;

/// Upstream's cut for the task shown in a dry-run answer.
const DRY_RUN_TASK_CHARS: usize = 300;

/// Runs the agent-runner with the process environment and returns the exit
/// code. Everything the controller needs ends up in `result.json` and the
/// stdout marker, whatever happens. Buffered telemetry is flushed (bounded)
/// before this returns.
pub async fn main(env: Env) -> i32 {
    let code = run_paths(env).await;
    crate::telemetry::flush().await;
    code
}

async fn run_paths(env: Env) -> i32 {
    let started = Instant::now();
    let (ipc, settle) = early(&env);
    let outputs = RunOutputs::new(ipc.clone());
    info!("agent-runner starting");

    // 1. A preRun hook may ask to skip the run.
    if let Ok(reason) = std::fs::read_to_string(ipc.skip_marker()) {
        let result = AgentResult::skipped(reason.trim());
        info!(reason = %result.response, "skip marker found; skipping the run");
        tokio::time::sleep(settle).await;
        return finish(&outputs, &result);
    }

    // 2. Configuration: every bad variable at once, then the fatal path.
    let config = match Config::from_vars(env) {
        Ok(c) => c,
        Err(e) => return fatal(&outputs, &e.to_string()),
    };
    match config.mode {
        Mode::PromptServer => {
            return prompt_server_mode(&config, started).await;
        }
        Mode::Canary => {
            return fatal(
                &outputs,
                "CANARY_MODE=true is not supported by this agent-runner version yet",
            );
        }
        Mode::Task if config.task.is_empty() => {
            return fatal(
                &outputs,
                "no task: set TASK (or write /ipc/input/task.json), or set AGENT_MODE=prompt-server",
            );
        }
        _ => {}
    }

    let detailed_log = open_detailed_log(&config);
    if let Some(log) = &detailed_log {
        log.agent("config", config_summary(&config));
    }

    // 3. Dry run.
    if config.mode == Mode::DryRun {
        tokio::time::sleep(config.settle).await;
        let result = AgentResult::success(dry_run_response(&config), metrics(started, None, 0));
        if let Some(log) = &detailed_log {
            log.agent("dry_run", serde_json::json!({"response": result.response}));
        }
        return finish(&outputs, &result);
    }

    // ENABLE_PROMPT_SERVICE: answer /ipc/prompts while the loop runs; it
    // stops when the run ends (upstream stops it with the /ipc/done it writes).
    let (stop_prompts, prompts_stopped) = tokio::sync::oneshot::channel::<()>();
    let prompt_service = config.enable_prompt_service.then(|| {
        let service = prompt_service(&config, detailed_log.clone());
        tokio::spawn(async move {
            if let Some(service) = service {
                service
                    .serve(async {
                        let _ = prompts_stopped.await;
                    })
                    .await;
            }
        })
    });

    // 4. The agent loop, bounded by RUN_TIMEOUT and ended early by SIGTERM/SIGINT.
    let result = tokio::select! {
        r = tokio::time::timeout(config.run_timeout, run_task(&config, started, detailed_log.clone())) => match r {
            Ok(result) => result,
            Err(_) => AgentResult::error(
                format!("run timed out after {} (RUN_TIMEOUT)", human(config.run_timeout)),
                metrics(started, None, 0),
            ),
        },
        signal = terminated() => {
            warn!(signal, "terminated; ending the run");
            AgentResult::error("terminated", metrics(started, None, 0))
        }
    };
    let _ = stop_prompts.send(());
    if let Some(task) = prompt_service {
        let _ = task.await;
    }
    record_run(&config, &result, started);
    if let Some(log) = &detailed_log {
        log.flush();
    }
    // §1.9 step 2: the legacy memory marker, before the outputs.
    let mut result = result;
    crate::tools::memory::legacy_marker(
        &config.memory,
        config.debug,
        &mut result,
        &mut std::io::stdout().lock(),
    );
    finish(&outputs, &result)
}

/// `AGENT_MODE=prompt-server` (contract §1.8): no loop; answer prompts until
/// the sidecar writes `/ipc/done`, then report `/ipc/run-result.json`. The
/// sidecar owns `/ipc/done`, so it is not written here.
async fn prompt_server_mode(config: &Config, started: Instant) -> i32 {
    let detailed_log = open_detailed_log(config);
    if let Some(log) = &detailed_log {
        log.agent("config", config_summary(config));
    }
    let Some(service) = prompt_service(config, detailed_log.clone()) else {
        return fatal(
            &RunOutputs::new(config.ipc.clone()),
            "prompt-server: cannot build the model provider",
        );
    };
    info!(
        model = config.provider.model,
        "prompt-server mode: waiting for /ipc/prompts requests and /ipc/done"
    );
    let ipc = config.ipc.clone();
    let ended = tokio::select! {
        () = service.serve(crate::prompt_server::done_written(&ipc)) => None,
        signal = terminated() => Some(signal),
    };
    let result = match ended {
        None => crate::prompt_server::run_result(&config.ipc, started),
        Some(signal) => {
            warn!(signal, "terminated; ending prompt-server mode");
            AgentResult::error("terminated", metrics(started, None, 0))
        }
    };
    if let Some(log) = &detailed_log {
        log.flush();
    }
    record_run(config, &result, started);
    info!(
        status = crate::prompt_server::status_name(&result),
        "prompt-server finished"
    );
    let json = serde_json::to_vec_pretty(&result).unwrap_or_default();
    if let Err(e) = config.ipc.write_atomic(&config.ipc.result(), &json) {
        error!(error = %e, "could not write result.json");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = agentpod_sdk::wire::marker::write_result_marker(&mut stdout, &result);
    let _ = stdout.flush();
    // Upstream exits 0 here whatever the sidecar reported.
    agentpod_sdk::wire::exit::SUCCESS
}

/// The prompt service over a fresh provider; `None` (logged) when the
/// provider cannot be built.
fn prompt_service(
    config: &Config,
    log: Option<Arc<DetailedLog>>,
) -> Option<Arc<crate::prompt_server::PromptService>> {
    let provider = match llm::build(&config.provider) {
        Ok(p) => p,
        Err(e) => {
            error!(error = %e, "prompt service: cannot build the model provider");
            return None;
        }
    };
    Some(Arc::new(crate::prompt_server::PromptService::new(
        provider,
        system_prompt(config),
        config.task.clone(),
        config.use_context,
        config.ipc.clone(),
        log,
    )))
}

/// The detailed log when `DETAILED_LOG_PATH` is set and usable.
fn open_detailed_log(config: &Config) -> Option<Arc<DetailedLog>> {
    let cfg = config.detailed_log.as_ref()?;
    match DetailedLog::open(cfg, &config.run_id) {
        Ok(log) => Some(Arc::new(log)),
        Err(e) => {
            warn!(path = %cfg.dir.display(), error = %e, "cannot open the detailed log; continuing without it");
            None
        }
    }
}

/// The `config` event of the detailed log (no secrets).
fn config_summary(config: &Config) -> serde_json::Value {
    serde_json::json!({
        "mode": format!("{:?}", config.mode),
        "provider": config.provider.provider,
        "model": config.provider.model,
        "base_url": config.provider.effective_base_url(),
        "instance": config.instance,
        "namespace": config.namespace,
        "tools_enabled": config.tools_enabled,
        "max_iterations": config.max_iterations,
        "run_timeout_ms": u64::try_from(config.run_timeout.as_millis()).unwrap_or(u64::MAX),
        "task": config.task,
        "telemetry": crate::telemetry::is_active(),
        "prompt_service": config.enable_prompt_service,
    })
}

/// Builds the provider, the tools and the loop, and runs the task.
async fn run_task(
    config: &Config,
    started: Instant,
    detailed_log: Option<Arc<DetailedLog>>,
) -> AgentResult {
    let provider = match llm::build(&config.provider) {
        Ok(p) => p,
        Err(e) => return AgentResult::error(e.to_string(), metrics(started, None, 0)),
    };
    let events = crate::tools::ToolEvents::new(detailed_log.clone());
    let assembled = match assemble::assemble_with_events(config, events).await {
        Ok(a) => a,
        Err(e) => return AgentResult::error(e.to_string(), metrics(started, None, 0)),
    };
    // Memory auto-context goes into the system prompt (contract §6.4).
    let extras = assembled.prompt_extras(config).await;
    let memory = assembled.memory.clone();
    let registry = Arc::new(assembled.registry);
    info!(
        provider = provider.system(),
        model = provider.model(),
        tools = registry.advertised().len(),
        "starting agent loop"
    );
    let system = crate::prompt::system_prompt_with(config, &extras);
    let agent = AgentLoop::new(
        provider,
        registry,
        LoopConfig {
            max_iterations: config.max_iterations,
            max_parallel_tools: config.max_parallel_tools,
            token_budget: config.token_budget,
            budget_action: config.budget_action,
            context: config.context,
            meta: config.telemetry.parent.clone(),
            deadline: Some(started + config.run_timeout),
        },
    )
    .with_identity(&config.instance, &config.namespace)
    .with_observer(Arc::new(crate::telemetry::RunObserver::new(
        config,
        detailed_log,
    )));
    // §1.9 / §6.4: legacy memory (MEMORY_ENABLED) is prepended to the task
    // the model sees; auto-context and auto-store keep the bare task.
    let task =
        crate::tools::memory::legacy_task(&config.memory, &config.roots.memory, &config.task);
    let mut stream = StreamWriter::new(config.ipc.clone());
    match agent.run(&system, &task, Some(&mut stream)).await {
        Ok(out) => {
            // §1.9 step 1: the synchronous auto-store.
            if let Some(client) = &memory {
                crate::tools::memory::auto_store_run(
                    client,
                    &config.memory,
                    &config.task,
                    &out.response,
                )
                .await;
            }
            AgentResult::success(
                out.response,
                metrics(started, Some(out.usage), out.tool_calls),
            )
        }
        Err(e) => {
            let calls = e.tool_calls();
            let message = match &e {
                LoopError::Provider { error, .. } => format!(
                    "LLM request to {} failed: {error}",
                    config
                        .provider
                        .effective_base_url()
                        .unwrap_or("the model endpoint")
                ),
                LoopError::Iterations { .. } => e.to_string(),
            };
            AgentResult::error(message, metrics(started, None, calls))
        }
    }
}

fn dry_run_response(config: &Config) -> String {
    let mut task: String = config.task.chars().take(DRY_RUN_TASK_CHARS).collect();
    if config.task.chars().count() > DRY_RUN_TASK_CHARS {
        task.push_str("...");
    }
    format!("DRY RUN: [{}] would execute task: {task}", config.instance)
}

/// Result metrics; token counts only on success, as upstream.
fn metrics(started: Instant, usage: Option<llm::Usage>, tool_calls: u64) -> Metrics {
    let usage = usage.unwrap_or_default();
    Metrics {
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        input_tokens: i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
        output_tokens: i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
        tool_calls: i64::try_from(tool_calls).unwrap_or(i64::MAX),
    }
}

/// Writes the outputs and returns the exit code.
fn finish(outputs: &RunOutputs, result: &AgentResult) -> i32 {
    match &result.status {
        agentpod_sdk::wire::ResultStatus::Error => error!(error = %result.error, "run failed"),
        status => info!(?status, "run finished"),
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = outputs.finish(result, &mut stdout) {
        error!(error = %e, "could not write every output");
    }
    let _ = stdout.flush();
    result.exit_code()
}

/// The run's outcome and duration as the `sympozium.agent.runs` and
/// `sympozium.agent.run.duration` metrics.
fn record_run(config: &Config, result: &AgentResult, started: Instant) {
    agentpod_sdk::telemetry::record_run(
        &config.instance,
        &config.namespace,
        &config.provider.model,
        crate::prompt_server::status_name(result),
        started.elapsed(),
    );
}

/// The fatal path: error result and `/ipc/done`, no marker, exit 1.
fn fatal(outputs: &RunOutputs, message: &str) -> i32 {
    error!(error = message, "fatal");
    if let Err(e) = outputs.fatal(message) {
        error!(error = %e, "could not write the error result");
    }
    agentpod_sdk::wire::exit::ERROR
}

/// Resolves when SIGTERM or SIGINT arrives; names the signal.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the run simply cannot be interrupted early.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentpod_sdk::ipc::IpcRoot;

    #[test]
    fn dry_run_cuts_long_tasks() {
        let c = Config::from_vars(Env::from_map([
            ("TASK", "x".repeat(301).as_str()),
            ("INSTANCE_NAME", "bob"),
        ]))
        .unwrap();
        let r = dry_run_response(&c);
        assert_eq!(
            r,
            format!("DRY RUN: [bob] would execute task: {}...", "x".repeat(300))
        );
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn ipc_root_is_used_for_outputs() {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path());
        ipc.create_dirs().unwrap();
        let code = fatal(&RunOutputs::new(ipc.clone()), "bad");
        assert_eq!(code, 1);
        assert!(ipc.done().exists());
    }
}
