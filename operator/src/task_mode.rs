//! `AgentRun.spec.task` (contract §7.1): a prompt string, or an object
//! `{mode, tool, parameters}` that selects an orchestration mode.
//!
//! The one mode upstream knows is `sidecar-driven` (contract §1.8, §4.5): a
//! SkillPack sidecar drives the run and asks the model for decisions through
//! `/ipc/prompts/`, so the agent container runs with
//! `AGENT_MODE=prompt-server` and an empty `TASK`, and the sidecar that
//! declares `tool` runs `tool.exec + tool.subcommand` with the parameters
//! as JSON in `SYMPOZIUM_RUN_CONFIG_JSON`.

use std::collections::BTreeMap;

use serde_json::Value;

/// The `mode` of a sidecar-driven task.
pub const SIDECAR_DRIVEN: &str = "sidecar-driven";
/// Every mode [`parse`] accepts.
pub const SUPPORTED_MODES: [&str; 1] = [SIDECAR_DRIVEN];

/// What a run's task asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// A prompt for the agent loop (`TASK`).
    Prompt(String),
    /// A sidecar drives the run; the agent answers prompts.
    SidecarDriven {
        /// The SkillPack tool that starts the workflow.
        tool: String,
        /// Handed to the sidecar as JSON.
        parameters: BTreeMap<String, String>,
    },
}

/// Why a task object cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// `mode` is missing or not one of [`SUPPORTED_MODES`].
    #[error("{0:?} is not supported (supported: sidecar-driven)")]
    UnknownMode(String),
    /// A sidecar-driven task without `tool`.
    #[error("required in sidecar-driven mode (the SkillPack tool that starts the workflow)")]
    MissingTool,
    /// A parameter that is not a string (the CRD declares `map[string]string`).
    #[error("must be a string")]
    NonStringParameter(String),
    /// `spec.task` is neither a string nor an object.
    #[error("must be a prompt string or a {{mode, tool, parameters}} object")]
    BadShape,
}

impl TaskError {
    /// The field at fault (`spec.task.mode`, ...).
    pub fn field(&self) -> String {
        match self {
            TaskError::UnknownMode(_) => "spec.task.mode".into(),
            TaskError::MissingTool => "spec.task.tool".into(),
            TaskError::NonStringParameter(k) => crate::schema::child("spec.task.parameters", k),
            TaskError::BadShape => "spec.task".into(),
        }
    }
}

impl Task {
    /// The `TASK` value: the prompt, or empty for an object task (upstream
    /// leaves `TASK` empty so the runner's prompt-server mode applies).
    pub fn prompt(&self) -> &str {
        match self {
            Task::Prompt(p) => p,
            Task::SidecarDriven { .. } => "",
        }
    }
}

/// Reads `spec.task` (already known to be present and not null).
pub fn parse(task: &Value) -> Result<Task, TaskError> {
    let obj = match task {
        Value::String(s) => return Ok(Task::Prompt(s.clone())),
        Value::Object(o) => o,
        _ => return Err(TaskError::BadShape),
    };
    let mode = obj.get("mode").and_then(Value::as_str).unwrap_or_default();
    if mode != SIDECAR_DRIVEN {
        return Err(TaskError::UnknownMode(mode.to_owned()));
    }
    let tool = obj
        .get("tool")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or(TaskError::MissingTool)?;
    let mut parameters = BTreeMap::new();
    for (k, v) in obj
        .get("parameters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let v = v
            .as_str()
            .ok_or_else(|| TaskError::NonStringParameter(k.clone()))?;
        parameters.insert(k.clone(), v.to_owned());
    }
    Ok(Task::SidecarDriven {
        tool: tool.to_owned(),
        parameters,
    })
}

/// `SYMPOZIUM_RUN_CONFIG_JSON`: the parameters as a JSON object with sorted
/// keys (what Go's `json.Marshal` of a map gives); `{}` when there are none,
/// so the sidecar always parses an object.
pub fn run_config_json(parameters: &BTreeMap<String, String>) -> String {
    // A map of strings always serializes.
    serde_json::to_string(parameters).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_is_a_prompt() {
        assert_eq!(parse(&json!("hi")), Ok(Task::Prompt("hi".into())));
    }

    #[test]
    fn sidecar_driven_object() {
        let t = parse(&json!({"mode": "sidecar-driven", "tool": "collect", "parameters": {"b": "2", "a": "1"}}))
            .expect("parse");
        let Task::SidecarDriven { tool, parameters } = &t else {
            panic!("{t:?}")
        };
        assert_eq!(tool, "collect");
        assert_eq!(run_config_json(parameters), r#"{"a":"1","b":"2"}"#);
        assert_eq!(t.prompt(), "");
        assert_eq!(run_config_json(&BTreeMap::new()), "{}");
    }

    #[test]
    fn bad_objects_are_refused() {
        assert_eq!(
            parse(&json!({"mode": "tool", "tool": "x"})),
            Err(TaskError::UnknownMode("tool".into()))
        );
        assert_eq!(
            parse(&json!({"tool": "x"})),
            Err(TaskError::UnknownMode(String::new()))
        );
        assert_eq!(
            parse(&json!({"mode": "sidecar-driven"})),
            Err(TaskError::MissingTool)
        );
        assert_eq!(
            parse(&json!({"mode": "sidecar-driven", "tool": "t", "parameters": {"n": 1}})),
            Err(TaskError::NonStringParameter("n".into()))
        );
        assert_eq!(parse(&json!(3)), Err(TaskError::BadShape));
    }
}
