//! Events that tools report to the detailed JSONL log (contract §1.10):
//! `exec_request`, `delegate` and `edit_file`.
//!
//! A [`ToolEvents`] is handed to the tools that report something when they
//! are built (see `assemble`); without a detailed log it is empty and costs
//! one branch per call. The fields are built lazily, so a run without
//! `DETAILED_LOG_PATH` never formats them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::detailed_log::DetailedLog;

/// Where a tool's detailed-log events go; empty by default.
#[derive(Debug, Clone, Default)]
pub struct ToolEvents(Option<Arc<DetailedLog>>);

impl ToolEvents {
    /// Events written to `log` (`agent.jsonl`), or dropped when `None`.
    pub fn new(log: Option<Arc<DetailedLog>>) -> Self {
        Self(log)
    }

    /// Whether events are recorded at all.
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Records `event` with the fields `fields` builds (only called when
    /// a log is attached).
    pub fn emit(&self, event: &str, fields: impl FnOnce() -> Value) {
        if let Some(log) = &self.0 {
            log.agent(event, fields());
        }
    }
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
