//! `delegate_to_persona`: hands a task to another persona of the ensemble
//! through `/ipc/spawn` and waits for its answer (contract §1.6, §2.1).

use std::time::{Duration, Instant};

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::spawn::SpawnClient;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::{DelegateStatus, SpawnRequest};
use async_trait::async_trait;
use serde_json::json;

use super::events::{ToolEvents, millis};
use super::str_arg;

/// How long a delegation waits when the run has no deadline.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10 * 60);

/// What is left of the run for a wait: until `deadline`, or
/// [`DEFAULT_WAIT`] without one.
pub fn wait_budget(deadline: Option<Instant>) -> Duration {
    deadline.map_or(DEFAULT_WAIT, |d| {
        d.saturating_duration_since(Instant::now())
    })
}

/// The `delegate_to_persona` tool.
#[derive(Debug)]
pub struct DelegateToPersona {
    client: SpawnClient,
    ensemble: String,
    spec: ToolSpec,
    events: ToolEvents,
}

impl DelegateToPersona {
    /// Delegation within `ensemble` (`ENSEMBLE_NAME`; empty refuses every
    /// call) through `ipc`.
    pub fn new(ipc: IpcRoot, ensemble: &str) -> Self {
        Self {
            client: SpawnClient::new(ipc),
            ensemble: ensemble.to_owned(),
            spec: ToolSpec {
                name: "delegate_to_persona".into(),
                description: "Hand a task to another persona of your ensemble and wait for its answer. \
                              Give a self-contained task: the other persona does not see this conversation."
                    .into(),
                parameters: json!({"type":"object","properties":{
                    "targetPersona":{"type":"string","description":"Name of the persona to delegate to"},
                    "task":{"type":"string","description":"The task, with everything the persona needs"}
                },"required":["targetPersona","task"]}),
            },
            events: ToolEvents::default(),
        }
    }

    /// Reports each delegation as a `delegate` event (detailed log).
    pub fn with_events(mut self, events: ToolEvents) -> Self {
        self.events = events;
        self
    }
}

#[async_trait]
impl Tool for DelegateToPersona {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, ctx: &ToolContext) -> String {
        let persona = str_arg(&args, "targetPersona")
            .map(str::trim)
            .unwrap_or_default();
        let task = str_arg(&args, "task").map(str::trim).unwrap_or_default();
        if persona.is_empty() || task.is_empty() {
            return "Error: targetPersona and task are required".into();
        }
        if self.ensemble.is_empty() {
            return "Error: delegate_to_persona needs ENSEMBLE_NAME: this agent is not part of an ensemble".into();
        }
        let req = SpawnRequest::delegate("", persona, task, &self.ensemble);
        let started = Instant::now();
        let outcome = self.client.delegate(req, wait_budget(ctx.deadline)).await;
        self.events.emit("delegate", || {
            let (status, error) = match &outcome {
                Ok(r) if r.status == DelegateStatus::Success => ("success", String::new()),
                Ok(r) => ("error", r.error.clone()),
                Err(e) => ("incomplete", e.to_string()),
            };
            json!({"tool": "delegate_to_persona", "call_id": ctx.call_id,
                   "target_persona": persona, "ensemble": self.ensemble, "task": task,
                   "status": status, "error": error,
                   "duration_ms": millis(started.elapsed())})
        });
        match outcome {
            Ok(r) if r.status == DelegateStatus::Success => {
                format!("Result from {persona}:\n\n{}", r.response)
            }
            Ok(r) => format!("Delegation to '{persona}' failed: {}", r.error),
            Err(e) => format!("Error: delegation to '{persona}' did not complete: {e}"),
        }
    }
}
