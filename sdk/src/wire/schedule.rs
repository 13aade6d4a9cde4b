//! `/ipc/schedules/schedule-<nanos>.json`: a change to the agent's own
//! schedules (`schedule_task`), published on `sympozium.schedule.upsert`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What to do with the named schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleAction {
    /// Create it; needs `schedule` and `task`.
    Create,
    /// Change it; needs `schedule` or `task`.
    Update,
    /// Pause it.
    Suspend,
    /// Unpause it.
    Resume,
    /// Remove it.
    Delete,
}

/// `/ipc/schedules/schedule-<nanos>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleRequest {
    /// Schedule name (the resource is `<agent>-<name>`).
    pub name: String,
    /// What to do.
    pub action: ScheduleAction,
    /// Five-field cron expression; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// Task run at each tick; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task: String,
}

impl ScheduleRequest {
    /// A request with no schedule and no task (suspend, resume, delete).
    pub fn new(name: impl Into<String>, action: ScheduleAction) -> Self {
        Self {
            name: name.into(),
            action,
            schedule: String::new(),
            task: String::new(),
        }
    }

    /// Checks the runner's rules: `create` needs both `schedule` and `task`,
    /// `update` needs at least one of them.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self.action {
            ScheduleAction::Create if self.schedule.is_empty() || self.task.is_empty() => {
                Err("create requires both schedule and task")
            }
            ScheduleAction::Update if self.schedule.is_empty() && self.task.is_empty() => {
                Err("update requires schedule or task")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut r = ScheduleRequest::new("daily", ScheduleAction::Create);
        assert!(r.validate().is_err());
        r.schedule = "0 9 * * *".into();
        assert!(r.validate().is_err());
        r.task = "report".into();
        assert!(r.validate().is_ok());
        let mut u = ScheduleRequest::new("daily", ScheduleAction::Update);
        assert!(u.validate().is_err());
        u.task = "x".into();
        assert!(u.validate().is_ok());
        assert!(
            ScheduleRequest::new("d", ScheduleAction::Delete)
                .validate()
                .is_ok()
        );
    }
}
