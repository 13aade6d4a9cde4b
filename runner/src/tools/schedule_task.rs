//! `schedule_task`: asks the controller to create, change, pause, resume or
//! remove one of the agent's schedules, by writing
//! `/ipc/schedules/schedule-<nanos>.json` (contract §2.1). It does not wait
//! for the controller.

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::{ScheduleAction, ScheduleRequest};
use async_trait::async_trait;
use serde_json::json;

use agentpod_sdk::ipc::next_nanos_id;

use super::str_arg;

/// The `schedule_task` tool.
#[derive(Debug)]
pub struct ScheduleTask {
    ipc: IpcRoot,
    spec: ToolSpec,
}

const ACTIONS: [&str; 5] = ["create", "update", "suspend", "resume", "delete"];

impl ScheduleTask {
    /// A `schedule_task` writing under `ipc`.
    pub fn new(ipc: IpcRoot) -> Self {
        let spec = ToolSpec {
            name: "schedule_task".into(),
            description: "Create, update, suspend, resume or delete a recurring task that runs this \
                          agent on a cron schedule. create needs schedule and task; update needs at \
                          least one of them."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "Name of the schedule"},
                    "schedule": {"type": "string", "description": "Five-field cron expression, e.g. \"0 9 * * 1-5\""},
                    "task": {"type": "string", "description": "The task to run at each tick"},
                    "action": {"type": "string", "enum": ACTIONS, "description": "What to do with the schedule"}
                },
                "required": ["name", "action"]
            }),
        };
        Self { ipc, spec }
    }

    fn schedule(&self, args: &Args) -> Result<String, String> {
        let name = str_arg(args, "name").map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err("name is required".into());
        }
        let action_raw = str_arg(args, "action").map(str::trim).unwrap_or_default();
        let action = parse_action(action_raw)
            .ok_or_else(|| format!("action must be one of {}", ACTIONS.join(", ")))?;
        let mut req = ScheduleRequest::new(name, action);
        req.schedule = str_arg(args, "schedule")
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        req.task = str_arg(args, "task")
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        req.validate()?;
        if !req.schedule.is_empty() {
            check_cron(&req.schedule)
                .map_err(|e| format!("invalid schedule {:?}: {e}", req.schedule))?;
        }

        let dir = self.ipc.schedules();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = self.ipc.schedule(&next_nanos_id());
        self.ipc
            .write_json_atomic(&path, &req)
            .map_err(|e| format!("failed to queue schedule request: {e}"))?;
        tracing::info!(name, action = action_raw, file = %path.display(), "queued schedule request");
        Ok(confirmation(&req, action_raw))
    }
}

#[async_trait]
impl Tool for ScheduleTask {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        self.schedule(&args)
            .unwrap_or_else(|e| format!("Error: {e}"))
    }
}

fn parse_action(s: &str) -> Option<ScheduleAction> {
    Some(match s {
        "create" => ScheduleAction::Create,
        "update" => ScheduleAction::Update,
        "suspend" => ScheduleAction::Suspend,
        "resume" => ScheduleAction::Resume,
        "delete" => ScheduleAction::Delete,
        _ => return None,
    })
}

fn confirmation(req: &ScheduleRequest, action: &str) -> String {
    let name = &req.name;
    let mut out = match req.action {
        ScheduleAction::Create => format!(
            "Schedule '{name}' create requested (cron: {})",
            req.schedule
        ),
        ScheduleAction::Update => format!("Schedule '{name}' update requested"),
        _ => format!("Schedule '{name}' {action} requested"),
    };
    if req.action == ScheduleAction::Update && !req.schedule.is_empty() {
        out.push_str(&format!(" (cron: {})", req.schedule));
    }
    out.push_str(". The controller applies it shortly.");
    out
}

/// Field names and value ranges of a five-field cron expression.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// A sanity check, not a full parser (the controller has that): five
/// fields of `* , - /`, digits and three-letter names, with plain numbers in
/// range. `@hourly`-style descriptors are accepted too.
fn check_cron(expr: &str) -> Result<(), String> {
    if let Some(desc) = expr.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => Err(format!("unknown descriptor @{desc}")),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), got {}",
            fields.len()
        ));
    }
    for (field, (what, lo, hi)) in fields.iter().zip(FIELDS) {
        if !field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | '?'))
        {
            return Err(format!(
                "{what} field {field:?} has an unexpected character"
            ));
        }
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(step) = step
                && step.parse::<u32>().map_or(true, |s| s == 0)
            {
                return Err(format!("{what} field {field:?} has an invalid step"));
            }
            if range.is_empty() {
                return Err(format!("{what} field {field:?} has an empty value"));
            }
            for value in range.split('-') {
                if let Ok(n) = value.parse::<u32>()
                    && !(lo..=hi).contains(&n)
                {
                    return Err(format!("{what} value {n} is outside {lo}-{hi}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cron_sanity() {
        for ok in [
            "0 9 * * 1-5",
            "*/15 * * * *",
            "0 0 1,15 * MON",
            "5 4 * JAN-MAR sun",
            "@daily",
            "0 12 * * ?",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_cron("* * * *").unwrap_err(),
            "expected 5 fields (minute hour day-of-month month day-of-week), got 4"
        );
        assert_eq!(
            check_cron("60 * * * *").unwrap_err(),
            "minute value 60 is outside 0-59"
        );
        assert_eq!(
            check_cron("0 9 0 * *").unwrap_err(),
            "day of month value 0 is outside 1-31"
        );
        assert_eq!(
            check_cron("*/0 * * * *").unwrap_err(),
            "minute field \"*/0\" has an invalid step"
        );
        assert_eq!(
            check_cron("0 9 * * $").unwrap_err(),
            "day of week field \"$\" has an unexpected character"
        );
        assert_eq!(
            check_cron("@often").unwrap_err(),
            "unknown descriptor @often"
        );
    }

    #[test]
    fn create_writes_the_wire_file() {
        let t = tempfile::tempdir().unwrap();
        let tool = ScheduleTask::new(IpcRoot::new(t.path()));
        let out = tool
            .schedule(&args(json!({"name": "daily", "action": "create", "schedule": "0 9 * * *", "task": "report"})))
            .unwrap();
        assert_eq!(
            out,
            "Schedule 'daily' create requested (cron: 0 9 * * *). The controller applies it shortly."
        );
        let dir = t.path().join("schedules");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        let name = names[0].to_string_lossy().into_owned();
        assert!(
            name.starts_with("schedule-") && name.ends_with(".json"),
            "{name}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(&name)).unwrap(),
            r#"{"name":"daily","action":"create","schedule":"0 9 * * *","task":"report"}"#
        );
        let out = tool
            .schedule(&args(json!({"name": "daily", "action": "suspend"})))
            .unwrap();
        assert_eq!(
            out,
            "Schedule 'daily' suspend requested. The controller applies it shortly."
        );
    }

    #[test]
    fn validation_errors() {
        let t = tempfile::tempdir().unwrap();
        let tool = ScheduleTask::new(IpcRoot::new(t.path()));
        let e = |v| tool.schedule(&args(v)).unwrap_err();
        assert_eq!(e(json!({"action": "create"})), "name is required");
        assert_eq!(
            e(json!({"name": "x", "action": "pause"})),
            "action must be one of create, update, suspend, resume, delete"
        );
        assert_eq!(
            e(json!({"name": "x", "action": "create", "task": "t"})),
            "create requires both schedule and task"
        );
        assert_eq!(
            e(json!({"name": "x", "action": "update"})),
            "update requires schedule or task"
        );
        assert_eq!(
            e(json!({"name": "x", "action": "update", "schedule": "bad"})),
            "invalid schedule \"bad\": expected 5 fields (minute hour day-of-month month day-of-week), got 1"
        );
        assert!(!t.path().join("schedules").exists());
    }
}
