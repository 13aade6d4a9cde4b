//! `execute_command`: runs a shell command in a skill sidecar through the
//! exec protocol (contract §1.6, §4) and returns its rendered output.
//!
//! The request is shell mode: `command`, `workDir` (default `/workspace`),
//! `timeout` in seconds (default 30, at most 120) and the normalised
//! `target`. The tool waits `timeout + 10` seconds (never past the run's
//! deadline); with no result by then the model gets upstream's exact
//! message, [`TIMED_OUT`].

use std::time::{Duration, Instant};

use agentpod_sdk::exec::{ExecClient, ExecError, format_output, normalize_target};
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::ExecRequest;
use agentpod_sdk::wire::exec::{DEFAULT_TIMEOUT_SECS, DEFAULT_WORK_DIR, MAX_TIMEOUT_SECS};
use async_trait::async_trait;
use serde_json::{Value, json};

use super::events::{ToolEvents, millis};

/// The tool's name.
pub const NAME: &str = "execute_command";

/// What the model sees when no result arrives in time.
pub const TIMED_OUT: &str =
    "Error: timed out waiting for command execution result. The skill sidecar may not be running.";

/// Extra time the runner waits beyond the command's own timeout, for the
/// sidecar to notice the request and write the result.
pub const WAIT_MARGIN: Duration = Duration::from_secs(10);

/// The `execute_command` tool.
#[derive(Debug, Clone)]
pub struct ExecuteCommand {
    exec: ExecClient,
    spec: ToolSpec,
    events: ToolEvents,
}

impl ExecuteCommand {
    /// An `execute_command` sending its requests through `exec`.
    pub fn new(exec: ExecClient) -> Self {
        let spec = ToolSpec {
            name: NAME.into(),
            description: "Run a shell command in a skill sidecar container (kubectl, helm, git \
                          and the other tools your skills provide) and return its stdout, stderr \
                          and exit code."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {
                        "type": "string",
                        "description": "The shell command to run"
                    },
                    "workdir": {
                        "type": "string",
                        "description": "Working directory (default /workspace)"
                    },
                    "timeout": {
                        "type": "integer",
                        "description": "Timeout in seconds (default 30, max 120)"
                    },
                    "target": {
                        "type": "string",
                        "description": "Name of the SkillPack whose sidecar should run the command; \
                                        omit to let any sidecar run it"
                    }
                },
                "required": ["command"]
            }),
        };
        Self {
            exec,
            spec,
            events: ToolEvents::default(),
        }
    }

    /// Reports each request as an `exec_request` event (detailed log).
    pub fn with_events(mut self, events: ToolEvents) -> Self {
        self.events = events;
        self
    }
}

/// Builds the request (without an id; the exec client sets it) from the
/// call's arguments. `Err` is the text for the model.
pub fn build_request(args: &Args) -> Result<ExecRequest, String> {
    let command = args.get("command").and_then(Value::as_str).unwrap_or("");
    if command.is_empty() {
        return Err("Error: 'command' is required".into());
    }
    let mut req = ExecRequest::shell("", command);
    if let Some(dir) = args.get("workdir").and_then(Value::as_str)
        && !dir.is_empty()
    {
        dir.clone_into(&mut req.work_dir);
    } else {
        DEFAULT_WORK_DIR.clone_into(&mut req.work_dir);
    }
    req.timeout = timeout_secs(args.get("timeout"));
    if let Some(target) = args.get("target").and_then(Value::as_str) {
        req.target = normalize_target(target);
    }
    Ok(req)
}

/// The timeout to send: a positive number of seconds (fractions dropped, a
/// numeric string accepted), at most [`MAX_TIMEOUT_SECS`]; anything else,
/// or less than one second, is [`DEFAULT_TIMEOUT_SECS`].
fn timeout_secs(v: Option<&Value>) -> u32 {
    let secs = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match secs {
        Some(s) if s >= 1.0 => {
            // Truncation towards zero, as upstream's int(float64) does;
            // the clamp keeps the cast in range.
            s.min(f64::from(MAX_TIMEOUT_SECS)) as u32
        }
        _ => DEFAULT_TIMEOUT_SECS,
    }
}

/// How long to wait for a request with `timeout_secs`: the timeout plus
/// [`WAIT_MARGIN`], cut short by the run's deadline.
pub(crate) fn wait_for(timeout_secs: u32, deadline: Option<Instant>) -> Duration {
    let wait = Duration::from_secs(u64::from(timeout_secs)) + WAIT_MARGIN;
    match deadline {
        Some(d) => wait.min(d.saturating_duration_since(Instant::now())),
        None => wait,
    }
}

/// Sends `req` with the call's trace context, waits `wait`, renders the
/// result; shared with the native sidecar tools. With `events` attached,
/// records one `exec_request` event once the request is settled.
pub(crate) async fn dispatch(
    exec: &ExecClient,
    mut req: ExecRequest,
    wait: Duration,
    ctx: &ToolContext,
    label: &str,
    events: &ToolEvents,
) -> String {
    req.meta = ctx.meta.clone().filter(|m| !m.is_empty());
    let target = req.target.clone();
    // Only what the event needs survives the move into the client.
    let logged = events.is_enabled().then(|| {
        json!({
            "tool": label, "call_id": ctx.call_id, "command": req.command,
            "argv": req.argv, "work_dir": req.work_dir, "timeout": req.timeout,
            "target": req.target,
        })
    });
    let started = Instant::now();
    let outcome = exec.run(req, wait).await;
    if let Some(Value::Object(mut fields)) = logged {
        let (id, status, extra) = match &outcome {
            Ok(r) => (
                r.id.clone(),
                "answered",
                json!({"exit_code": r.exit_code, "timed_out": r.timed_out}),
            ),
            Err(ExecError::Timeout { id, .. }) => (id.clone(), "timeout", json!({})),
            Err(e) => (String::new(), "error", json!({"error": e.to_string()})),
        };
        fields.insert("id".into(), Value::String(id));
        fields.insert("status".into(), status.into());
        fields.insert("duration_ms".into(), millis(started.elapsed()).into());
        if let Value::Object(extra) = extra {
            fields.extend(extra);
        }
        events.emit("exec_request", || Value::Object(fields));
    }
    match outcome {
        Ok(result) => {
            tracing::info!(
                tool = label, target, id = %result.id, exit_code = result.exit_code,
                timed_out = result.timed_out, elapsed = ?started.elapsed(),
                "exec request answered"
            );
            format_output(&result)
        }
        Err(ExecError::Timeout {
            id,
            waited,
            invalid,
        }) => {
            tracing::warn!(
                tool = label,
                target,
                id,
                ?waited,
                invalid,
                "no exec result in time"
            );
            TIMED_OUT.to_owned()
        }
        Err(e) => {
            tracing::warn!(tool = label, target, error = %e, "exec request failed");
            format!("Error: {e}")
        }
    }
}

#[async_trait]
impl Tool for ExecuteCommand {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, ctx: &ToolContext) -> String {
        let req = match build_request(&args) {
            Ok(r) => r,
            Err(text) => return text,
        };
        let wait = wait_for(req.timeout, ctx.deadline);
        dispatch(&self.exec, req, wait, ctx, NAME, &self.events).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn schema_matches_the_contract() {
        let tool = ExecuteCommand::new(ExecClient::new(Default::default()));
        let p = &tool.spec().parameters;
        assert_eq!(tool.spec().name, "execute_command");
        assert_eq!(p["type"], "object");
        assert_eq!(p["required"], json!(["command"]));
        let props = p["properties"].as_object().unwrap();
        let keys: Vec<&str> = props.keys().map(String::as_str).collect();
        assert_eq!(keys, ["command", "target", "timeout", "workdir"]);
        assert_eq!(props["command"]["type"], "string");
        assert_eq!(props["workdir"]["type"], "string");
        assert_eq!(props["timeout"]["type"], "integer");
        assert_eq!(props["target"]["type"], "string");
    }

    #[test]
    fn defaults() {
        let r = build_request(&args(json!({"command": "ls"}))).unwrap();
        assert_eq!(r.command, "ls");
        assert_eq!(r.work_dir, "/workspace");
        assert_eq!(r.timeout, 30);
        assert_eq!(r.target, "");
        assert!(r.argv.is_empty() && r.args.is_empty() && r.stdin.is_empty());
        let r = build_request(&args(json!({"command": "ls", "workdir": ""}))).unwrap();
        assert_eq!(r.work_dir, "/workspace");
    }

    #[test]
    fn command_is_required() {
        for a in [json!({}), json!({"command": ""}), json!({"command": 5})] {
            assert_eq!(
                build_request(&args(a)).unwrap_err(),
                "Error: 'command' is required"
            );
        }
    }

    #[test]
    fn timeouts_are_clamped() {
        let t = |v: Value| build_request(&args(json!({"command": "x", "timeout": v}))).unwrap();
        assert_eq!(t(json!(5)).timeout, 5);
        assert_eq!(t(json!(120)).timeout, 120);
        assert_eq!(t(json!(500)).timeout, 120);
        assert_eq!(t(json!(1e300)).timeout, 120);
        assert_eq!(t(json!(7.9)).timeout, 7);
        assert_eq!(t(json!("45")).timeout, 45);
        assert_eq!(t(json!(0)).timeout, 30);
        assert_eq!(t(json!(-4)).timeout, 30);
        assert_eq!(t(json!(0.5)).timeout, 30);
        assert_eq!(t(json!("soon")).timeout, 30);
        assert_eq!(t(json!(null)).timeout, 30);
    }

    #[test]
    fn target_is_normalised() {
        let r = build_request(&args(json!({"command": "x", "target": "  K8s-Ops\t"}))).unwrap();
        assert_eq!(r.target, "k8s-ops");
    }

    #[test]
    fn wait_is_timeout_plus_ten_capped_by_the_deadline() {
        assert_eq!(wait_for(30, None), Duration::from_secs(40));
        assert_eq!(wait_for(120, None), Duration::from_secs(130));
        let soon = Instant::now() + Duration::from_millis(500);
        assert!(wait_for(30, Some(soon)) <= Duration::from_millis(500));
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(wait_for(30, Some(past)), Duration::ZERO);
    }

    #[test]
    fn timeout_text_is_upstreams() {
        assert_eq!(
            TIMED_OUT,
            "Error: timed out waiting for command execution result. The skill sidecar may not be running."
        );
    }
}
