//! Built-in tools, one file each.
//!
//! [`builtin_tools`] builds the tools of this module from a
//! [`BuiltinConfig`], in upstream's registration order (contract §1.6).
//! Every tool returns the text the model sees; failures start with `Error:`.

pub mod delegate;
pub mod edit_file;
pub mod events;
pub mod execute_command;
pub mod fetch_url;
pub mod list_directory;
pub mod mcp;
pub mod memory;
pub mod native;
pub mod paths;
pub mod read_file;
pub mod schedule_task;
pub mod send_channel_message;
pub mod ssrf;
pub mod subagents;
pub mod workflow_memory;
pub mod write_file;

use std::sync::Arc;

use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::tool::{Args, Tool};
use serde_json::Value;

pub use delegate::DelegateToPersona;
pub use edit_file::EditFile;
pub use events::ToolEvents;
pub use execute_command::ExecuteCommand;
pub use fetch_url::{FetchConfig, FetchUrl, FetchUrlError};
pub use list_directory::ListDirectory;
pub use mcp::{McpTool, load_mcp_tools};
pub use memory::{MemoryConfig, memory_tools};
pub use native::{MANIFEST_WAIT, NativeTool, load_native_tools, load_native_tools_with_events};
pub use paths::{PathError, Resolved, Root, Roots};
pub use read_file::ReadFile;
pub use schedule_task::ScheduleTask;
pub use send_channel_message::SendChannelMessage;
pub use subagents::SpawnSubagents;
pub use workflow_memory::{Workflow, WorkflowConfig, workflow_memory_tools};
pub use write_file::WriteFile;

/// What the built-in tools of this module need to know.
#[derive(Debug, Clone, Default)]
pub struct BuiltinConfig {
    /// Where the file tools may read and write.
    pub roots: Roots,
    /// The `/ipc` volume, for `send_channel_message` and `schedule_task`.
    pub ipc: IpcRoot,
    /// `fetch_url` settings, including the SSRF guard.
    pub fetch: FetchConfig,
    /// Where `edit_file` reports its `edit_file` events (detailed log).
    pub events: ToolEvents,
}

/// Builds the built-in tools of this module, in upstream's registration
/// order: `read_file`, `list_directory`, `send_channel_message`,
/// `fetch_url`, `write_file`, `edit_file`, `schedule_task`.
/// (`execute_command` goes first and is built elsewhere.)
pub fn builtin_tools(cfg: &BuiltinConfig) -> Result<Vec<Arc<dyn Tool>>, FetchUrlError> {
    Ok(vec![
        Arc::new(ReadFile::new(cfg.roots.clone())),
        Arc::new(ListDirectory::new(cfg.roots.clone())),
        Arc::new(SendChannelMessage::new(cfg.ipc.clone())),
        Arc::new(FetchUrl::new(cfg.fetch.clone())?),
        Arc::new(WriteFile::new(cfg.roots.clone())),
        Arc::new(EditFile::new(cfg.roots.clone()).with_events(cfg.events.clone())),
        Arc::new(ScheduleTask::new(cfg.ipc.clone())),
    ])
}

/// A string argument; `None` when absent, `null` or not a string.
pub(crate) fn str_arg<'a>(args: &'a Args, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

/// An integer argument. Models sometimes send numbers as strings or as
/// floats with no fraction; both are accepted. `Err` carries the message for
/// a value that is present but not an integer.
pub(crate) fn int_arg(args: &Args, key: &str) -> Result<Option<i64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("{key} must be an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{key} must be an integer")),
        Some(_) => Err(format!("{key} must be an integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_args_accept_numeric_strings() {
        let args: Args =
            serde_json::from_str(r#"{"a":3,"b":"4","c":5.0,"d":"x","e":null}"#).unwrap();
        assert_eq!(int_arg(&args, "a"), Ok(Some(3)));
        assert_eq!(int_arg(&args, "b"), Ok(Some(4)));
        assert_eq!(int_arg(&args, "c"), Ok(Some(5)));
        assert_eq!(int_arg(&args, "d"), Err("d must be an integer".into()));
        assert_eq!(int_arg(&args, "e"), Ok(None));
        assert_eq!(int_arg(&args, "zz"), Ok(None));
    }

    #[test]
    fn builtin_order_matches_upstream() {
        let tools = builtin_tools(&BuiltinConfig::default()).unwrap();
        let names: Vec<_> = tools.iter().map(|t| t.spec().name.clone()).collect();
        assert_eq!(
            names,
            [
                "read_file",
                "list_directory",
                "send_channel_message",
                "fetch_url",
                "write_file",
                "edit_file",
                "schedule_task"
            ]
        );
    }
}
