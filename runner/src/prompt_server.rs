//! Sidecar-initiated prompting (contract §1.8): an orchestrator sidecar
//! writes `/ipc/prompts/request-<id>.json`, the runner asks the model and
//! writes `/ipc/prompts/result-<id>.json`; `/ipc/context/clear-*` resets
//! the conversation.
//!
//! Two ways in: `AGENT_MODE=prompt-server` without a task ([`run_mode`]:
//! the service is the whole run, which ends when the sidecar writes
//! `/ipc/done`), and `ENABLE_PROMPT_SERVICE=true` next to a normal task
//! ([`PromptService::serve`] alongside the loop).
//!
//! Better than upstream: readers wake on the watcher instead of a 150 ms
//! poll; only `request-*.json` is accepted (upstream also takes
//! `request-*.json.tmp` and so answers an atomically written request twice);
//! a half-written request waits until it parses; results are written
//! atomically.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agentpod_sdk::ipc::{IpcRoot, validate_id};
use agentpod_sdk::ipc::{NameFilter, WatchEvent, WatchOptions};
use agentpod_sdk::llm::{ChatRequest, Message, Provider, StreamEvent};
use agentpod_sdk::wire::{AgentResult, PromptMetrics, PromptRequest, PromptResult, ResultStatus};
use serde_json::Value;
use tracing::{Instrument, error, info, info_span, warn};

use crate::detailed_log::DetailedLog;

/// What `/ipc/run-result.json` missing becomes (upstream's wording).
pub const NO_RUN_RESULT: &str = "sidecar finished but did not write /ipc/run-result.json";

/// Answers prompt requests against one provider, keeping the conversation.
pub struct PromptService {
    provider: Arc<dyn Provider>,
    system: String,
    initial_task: String,
    use_context: bool,
    /// The conversation after the system prompt; a mutex also serializes
    /// requests (one at a time, as upstream).
    history: tokio::sync::Mutex<Vec<Message>>,
    ipc: IpcRoot,
    log: Option<Arc<DetailedLog>>,
    /// Requests answered so far (for the logs).
    answered: Mutex<u64>,
    /// `clear-*` names already honoured.
    clears_seen: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for PromptService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptService")
            .field("model", &self.provider.model())
            .field("use_context", &self.use_context)
            .finish_non_exhaustive()
    }
}

impl PromptService {
    /// A service over `provider` with the system prompt `system`; the
    /// conversation starts with `initial_task` (when not empty).
    /// `use_context=false` answers every prompt with `[system, prompt]` only.
    pub fn new(
        provider: Arc<dyn Provider>,
        system: String,
        initial_task: String,
        use_context: bool,
        ipc: IpcRoot,
        log: Option<Arc<DetailedLog>>,
    ) -> Self {
        let history = tokio::sync::Mutex::new(initial_history(&initial_task));
        Self {
            provider,
            system,
            initial_task,
            use_context,
            history,
            ipc,
            log,
            answered: Mutex::new(0),
            clears_seen: Mutex::new(HashSet::new()),
        }
    }

    /// Back to `[system, initial task]`.
    pub async fn reset(&self) {
        *self.history.lock().await = initial_history(&self.initial_task);
        info!("prompt context cleared");
    }

    /// Answers one request (the caller writes the result).
    pub async fn answer(&self, req: &PromptRequest) -> PromptResult {
        let format = structured_format(req.schema.as_ref());
        let mut history = self.history.lock().await;
        let prompt = Message::User {
            content: req.prompt.clone(),
        };
        let mut messages = if self.use_context {
            history.clone()
        } else {
            Vec::new()
        };
        messages.push(prompt.clone());
        let request = ChatRequest {
            system: &self.system,
            messages: &messages,
            tools: &[],
            response_format: format.as_ref(),
        };
        if let Some(log) = &self.log {
            log.llm_request(0, &request);
        }
        let span = info_span!(
            "gen_ai.chat",
            gen_ai.system = self.provider.system(),
            gen_ai.request.model = self.provider.model(),
            prompt.request_id = %req.request_id,
        );
        let started = Instant::now();
        let mut ignore = |_: StreamEvent| {};
        let turn = match self
            .provider
            .chat(&request, &mut ignore)
            .instrument(span)
            .await
        {
            Ok(turn) => turn,
            Err(e) => {
                if let Some(log) = &self.log {
                    log.llm_error(0, &e);
                }
                return PromptResult::error(
                    &req.request_id,
                    format!("LLM request failed: {e}"),
                    PromptMetrics::default(),
                );
            }
        };
        if let Some(log) = &self.log {
            log.llm_response(0, &turn, started.elapsed());
        }
        let metrics = PromptMetrics {
            input_tokens: i64::try_from(turn.usage.input_tokens).unwrap_or(i64::MAX),
            output_tokens: i64::try_from(turn.usage.output_tokens).unwrap_or(i64::MAX),
        };
        let mut result = PromptResult::success(&req.request_id, turn.content.clone(), metrics);
        if format.is_some() {
            match parse_structured(&turn.content) {
                Ok(v) => result.parsed = Some(v),
                Err(e) => {
                    result = PromptResult::error(
                        &req.request_id,
                        format!("structured output is not valid JSON: {e}"),
                        metrics,
                    );
                    result.content = turn.content.clone();
                }
            }
        }
        if self.use_context {
            history.push(prompt);
            history.push(Message::Assistant {
                content: turn.content,
                tool_calls: Vec::new(),
            });
        }
        result
    }

    /// Answers `request-*.json` files and honours `clear-*` files until
    /// `stop` resolves. Requests are handled one at a time, in arrival order.
    pub async fn serve(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let requests = WatchOptions::new(self.ipc.prompts())
            .filter(NameFilter::prefix_suffix("request-", ".json"))
            .spawn_json::<PromptRequest>();
        let clears = WatchOptions::new(self.ipc.context())
            .filter(NameFilter::custom(|n| {
                n.starts_with("clear-") && !n.ends_with(".tmp")
            }))
            .spawn(|_, _| Ok::<(), std::convert::Infallible>(()));
        let (mut requests, mut clears) = match (requests, clears) {
            (Ok(r), Ok(c)) => (r, c),
            (Err(e), _) | (_, Err(e)) => {
                error!(error = %e, "cannot watch /ipc/prompts or /ipc/context; prompt service off");
                return stop.await;
            }
        };
        info!(use_context = self.use_context, "prompt service ready");
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => return,
                Some(ev) = clears.recv() => {
                    if let WatchEvent::File(_) = ev {
                        self.apply_clears().await;
                    }
                }
                Some(ev) = requests.recv() => match ev {
                    WatchEvent::File(d) => self.handle(&d.path, d.value).await,
                    WatchEvent::Invalid(bad) => {
                        warn!(path = %bad.path.display(), error = %bad.error, "prompt request is not valid JSON; ignored");
                    }
                },
            }
        }
    }

    /// Resets the context once if a `clear-*` file not seen before is
    /// there. Runs before each request too, so a clear written before a
    /// request is honoured first even when its watcher wakes later.
    async fn apply_clears(&self) {
        let Ok(entries) = std::fs::read_dir(self.ipc.context()) else {
            return;
        };
        let fresh = {
            let mut seen = self.clears_seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut fresh = false;
            for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
                if name.starts_with("clear-") && !name.ends_with(".tmp") && seen.insert(name) {
                    fresh = true;
                }
            }
            fresh
        };
        if fresh {
            self.reset().await;
        }
    }

    async fn handle(&self, path: &Path, mut req: PromptRequest) {
        self.apply_clears().await;
        if req.request_id.is_empty() {
            // Fall back on the id in the file name.
            req.request_id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("request-")?.strip_suffix(".json"))
                .unwrap_or_default()
                .to_owned();
        }
        if let Err(e) = validate_id(&req.request_id) {
            warn!(path = %path.display(), error = %e, "prompt request id is unsafe; ignored");
            return;
        }
        info!(request_id = %req.request_id, structured = req.schema.is_some(), "prompt request");
        let result = self.answer(&req).await;
        let target = self.ipc.prompt_result(&req.request_id);
        let json = serde_json::to_vec_pretty(&result).unwrap_or_default();
        match self.ipc.write_atomic(&target, &json) {
            Ok(()) => {
                let mut n = self.answered.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                info!(request_id = %req.request_id, status = ?result.status, answered = *n, "prompt answered");
            }
            Err(e) => {
                error!(request_id = %req.request_id, error = %e, "cannot write the prompt result")
            }
        }
    }
}

fn initial_history(task: &str) -> Vec<Message> {
    if task.is_empty() {
        Vec::new()
    } else {
        vec![Message::User {
            content: task.to_owned(),
        }]
    }
}

/// The structured-output request, when `schema` asks for one: an object
/// with `"type":"json_schema"` (and `name`, `schema`, `strict`, default
/// true). Anything else is ignored, as upstream.
fn structured_format(schema: Option<&Value>) -> Option<Value> {
    let s = schema?.as_object()?;
    if s.get("type").and_then(Value::as_str) != Some("json_schema") {
        return None;
    }
    // A full OpenAI `response_format` nests the fields under `json_schema`.
    let inner = s.get("json_schema").and_then(Value::as_object).unwrap_or(s);
    Some(serde_json::json!({
        "name": inner.get("name").and_then(Value::as_str).unwrap_or("response"),
        "schema": inner.get("schema").cloned().unwrap_or_else(|| serde_json::json!({})),
        "strict": inner.get("strict").and_then(Value::as_bool).unwrap_or(true),
    }))
}

/// The answer as JSON; a surrounding Markdown code fence is tolerated
/// (providers without native structured output add one).
fn parse_structured(text: &str) -> Result<Value, serde_json::Error> {
    let t = text.trim();
    let unfenced = t
        .strip_prefix("```")
        .and_then(|rest| rest.strip_suffix("```"))
        .map(|body| body.trim_start_matches("json").trim())
        .unwrap_or(t);
    serde_json::from_str(unfenced)
}

/// What `/ipc/run-result.json` says, in upstream's three cases.
pub fn run_result(ipc: &IpcRoot, started: Instant) -> AgentResult {
    let mut result = match std::fs::read(ipc.run_result()) {
        Err(_) => AgentResult::success(NO_RUN_RESULT, Default::default()),
        Ok(bytes) => match serde_json::from_slice::<AgentResult>(&bytes) {
            Ok(r) => r,
            Err(_) => AgentResult::success(
                String::from_utf8_lossy(&bytes).into_owned(),
                Default::default(),
            ),
        },
    };
    if result.metrics.duration_ms == 0 {
        result.metrics.duration_ms =
            i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    }
    result
}

/// Resolves when `/ipc/done` exists (the sidecar owns it in this mode).
pub async fn done_written(ipc: &IpcRoot) {
    if ipc.done().exists() {
        return;
    }
    let watch = WatchOptions::new(ipc.path())
        .filter(NameFilter::exact("done"))
        .spawn(|_, _| Ok::<(), std::convert::Infallible>(()));
    match watch {
        Ok(mut w) => {
            while let Some(ev) = w.recv().await {
                if matches!(ev, WatchEvent::File(_)) {
                    return;
                }
            }
        }
        Err(e) => {
            warn!(error = %e, "cannot watch for /ipc/done; polling");
            while !ipc.done().exists() {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

/// Whether a result counts as success, for metrics and logs.
pub fn status_name(result: &AgentResult) -> &'static str {
    match result.status {
        ResultStatus::Success => "success",
        ResultStatus::Error => "error",
        ResultStatus::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_json_schema_objects_ask_for_structure() {
        assert!(structured_format(None).is_none());
        assert!(structured_format(Some(&json!("x"))).is_none());
        assert!(structured_format(Some(&json!({"type": "object"}))).is_none());
        let f = structured_format(Some(&json!({"type": "json_schema", "name": "n",
            "schema": {"type": "object"}})))
        .unwrap();
        assert_eq!(
            f,
            json!({"name": "n", "schema": {"type": "object"}, "strict": true})
        );
        let f = structured_format(Some(&json!({"type": "json_schema",
            "json_schema": {"name": "m", "strict": false}})))
        .unwrap();
        assert_eq!(f["name"], "m");
        assert_eq!(f["strict"], false);
    }

    #[test]
    fn structured_answers_parse() {
        assert_eq!(parse_structured(" {\"a\":1} ").unwrap(), json!({"a": 1}));
        assert_eq!(
            parse_structured("```json\n{\"a\":1}\n```").unwrap(),
            json!({"a": 1})
        );
        assert!(parse_structured("not json").is_err());
    }

    #[test]
    fn run_result_cases() {
        let t = tempfile::tempdir().unwrap();
        let ipc = IpcRoot::new(t.path());
        let started = Instant::now();
        let r = run_result(&ipc, started);
        assert_eq!(r.response, NO_RUN_RESULT);
        assert_eq!(r.status, ResultStatus::Success);
        std::fs::write(ipc.run_result(), "plain words").unwrap();
        assert_eq!(run_result(&ipc, started).response, "plain words");
        std::fs::write(
            ipc.run_result(),
            r#"{"status":"error","error":"bad","metrics":{"durationMs":7}}"#,
        )
        .unwrap();
        let r = run_result(&ipc, started);
        assert_eq!((r.status, r.error.as_str()), (ResultStatus::Error, "bad"));
        assert_eq!(r.metrics.duration_ms, 7);
    }
}
