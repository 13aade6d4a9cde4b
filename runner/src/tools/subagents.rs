//! `spawn_subagents`: runs a batch of child agents through `/ipc/spawn` and
//! waits for the batch result (contract §1.6, §2.1).

use agentpod_sdk::envconf::parse_go_duration;
use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::spawn::SpawnClient;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::{
    BatchStatus, FailurePolicy, Strategy, SubagentBatchResult, SubagentSpawnRequest, SubagentTask,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Instant;

use super::delegate::wait_budget;
use super::events::{ToolEvents, millis};
use super::str_arg;

/// The `spawn_subagents` tool.
#[derive(Debug)]
pub struct SpawnSubagents {
    client: SpawnClient,
    max_children: usize,
    spec: ToolSpec,
    events: ToolEvents,
}

impl SpawnSubagents {
    /// Batches of at most `max_children` tasks (`SUBAGENTS_MAX_CHILDREN`).
    pub fn new(ipc: IpcRoot, max_children: u32) -> Self {
        Self {
            client: SpawnClient::new(ipc),
            max_children: max_children as usize,
            spec: ToolSpec {
                name: "spawn_subagents".into(),
                description:
                    "Run independent sub-tasks as child agents and wait for all their answers. \
                              Each task must be self-contained."
                        .into(),
                parameters: json!({"type":"object","properties":{
                    "tasks":{"type":"array","minItems":1,"maxItems":max_children,
                        "description":"The sub-tasks",
                        "items":{"type":"object","properties":{
                            "id":{"type":"string","description":"A short unique id for the task"},
                            "task":{"type":"string","description":"What the child agent should do"},
                            "systemPrompt":{"type":"string","description":"Optional system prompt for the child"},
                            "timeout":{"type":"string","description":"Optional time limit, e.g. 5m"}
                        },"required":["id","task"]}},
                    "strategy":{"type":"string","enum":["parallel","sequential"],"description":"Run at once (default) or one after another"},
                    "failurePolicy":{"type":"string","enum":["continue","fail-fast"],"description":"Whether one failure stops the rest"}
                },"required":["tasks"]}),
            },
            events: ToolEvents::default(),
        }
    }

    /// Reports each batch as a `delegate` event (detailed log).
    pub fn with_events(mut self, events: ToolEvents) -> Self {
        self.events = events;
        self
    }

    fn request(&self, args: &Args) -> Result<SubagentSpawnRequest, String> {
        let items = args
            .get("tasks")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or("tasks must be a non-empty array")?;
        if items.len() > self.max_children {
            return Err(format!(
                "at most {} sub-agents per batch (got {})",
                self.max_children,
                items.len()
            ));
        }
        let mut tasks = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned()
            };
            let (id, task) = (field("id"), field("task"));
            if id.is_empty() || task.is_empty() {
                return Err(format!("tasks[{i}] needs an id and a task"));
            }
            if tasks.iter().any(|t: &SubagentTask| t.id == id) {
                return Err(format!("task id {id:?} is used twice"));
            }
            let timeout = field("timeout");
            if !timeout.is_empty() && parse_go_duration(&timeout).is_none() {
                return Err(format!(
                    "tasks[{i}].timeout {timeout:?} is not a duration such as 5m"
                ));
            }
            tasks.push(SubagentTask {
                id,
                task,
                system_prompt: field("systemPrompt"),
                timeout,
            });
        }
        let strategy = match str_arg(args, "strategy").unwrap_or_default() {
            "" | "parallel" => Strategy::Parallel,
            "sequential" => Strategy::Sequential,
            other => return Err(format!("strategy {other:?} must be parallel or sequential")),
        };
        let failure_policy = match str_arg(args, "failurePolicy").unwrap_or_default() {
            "" => FailurePolicy::Unset,
            "continue" => FailurePolicy::Continue,
            "fail-fast" => FailurePolicy::FailFast,
            other => {
                return Err(format!(
                    "failurePolicy {other:?} must be continue or fail-fast"
                ));
            }
        };
        Ok(SubagentSpawnRequest {
            batch_id: String::new(),
            strategy,
            failure_policy,
            tasks,
        })
    }
}

/// The text the model sees for a batch result.
pub fn render_batch(r: &SubagentBatchResult) -> String {
    let status = match r.status {
        BatchStatus::Success => "success",
        BatchStatus::Partial => "partial",
        BatchStatus::Error => "error",
    };
    let mut out = format!("Subagent batch {} (status: {status})\n", r.batch_id);
    for t in &r.results {
        out.push_str(&format!("\n### Task: {} (run: {})\n", t.id, t.run_name));
        if t.error.is_empty() {
            out.push_str(&t.response);
        } else {
            out.push_str(&format!("**Error:** {}", t.error));
        }
        out.push('\n');
    }
    out
}

#[async_trait]
impl Tool for SpawnSubagents {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, ctx: &ToolContext) -> String {
        let req = match self.request(&args) {
            Ok(r) => r,
            Err(e) => return format!("Error: {e}"),
        };
        let logged = self.events.is_enabled().then(|| {
            json!({"tool": "spawn_subagents", "call_id": ctx.call_id,
                   "strategy": req.strategy, "failure_policy": req.failure_policy,
                   "tasks": req.tasks.iter().map(|t| json!({"id": t.id, "task": t.task})).collect::<Vec<_>>()})
        });
        let started = Instant::now();
        let outcome = self.client.subagents(req, wait_budget(ctx.deadline)).await;
        if let Some(Value::Object(mut fields)) = logged {
            let (batch_id, status, error) = match &outcome {
                Ok(r) => (r.batch_id.clone(), json!(r.status), String::new()),
                Err(e) => (String::new(), json!("incomplete"), e.to_string()),
            };
            fields.insert("batch_id".into(), batch_id.into());
            fields.insert("status".into(), status);
            fields.insert("error".into(), error.into());
            fields.insert("duration_ms".into(), millis(started.elapsed()).into());
            self.events.emit("delegate", || Value::Object(fields));
        }
        match outcome {
            Ok(r) => render_batch(&r),
            Err(e) => format!("Error: subagent batch did not complete: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentpod_sdk::wire::SubagentTaskResult;

    fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn requests_are_checked() {
        let t = SpawnSubagents::new(IpcRoot::new("/nonexistent"), 2);
        assert_eq!(t.spec().parameters["properties"]["tasks"]["maxItems"], 2);
        let ok = t
            .request(&args(json!({"tasks":[{"id":"a","task":"x","timeout":"5m"}],"strategy":"sequential","failurePolicy":"fail-fast"})))
            .unwrap();
        assert_eq!(ok.strategy, Strategy::Sequential);
        assert_eq!(ok.failure_policy, FailurePolicy::FailFast);
        assert_eq!(ok.tasks[0].timeout, "5m");
        for bad in [
            json!({"tasks":[]}),
            json!({"tasks":[{"id":"a","task":"x"},{"id":"b","task":"y"},{"id":"c","task":"z"}]}),
            json!({"tasks":[{"id":"a"}]}),
            json!({"tasks":[{"id":"a","task":"x"},{"id":"a","task":"y"}]}),
            json!({"tasks":[{"id":"a","task":"x"}],"strategy":"random"}),
            json!({"tasks":[{"id":"a","task":"x","timeout":"soon"}]}),
        ] {
            assert!(t.request(&args(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn batches_render() {
        let r = SubagentBatchResult {
            batch_id: "7".into(),
            status: BatchStatus::Partial,
            results: vec![
                SubagentTaskResult {
                    id: "a".into(),
                    run_name: "run-a".into(),
                    status: "success".into(),
                    response: "fine".into(),
                    error: String::new(),
                },
                SubagentTaskResult {
                    id: "b".into(),
                    run_name: String::new(),
                    status: "error".into(),
                    response: String::new(),
                    error: "boom".into(),
                },
            ],
        };
        assert_eq!(
            render_batch(&r),
            "Subagent batch 7 (status: partial)\n\n### Task: a (run: run-a)\nfine\n\n### Task: b (run: )\n**Error:** boom\n"
        );
    }
}
