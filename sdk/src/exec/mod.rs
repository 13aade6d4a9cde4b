//! The agent side of the exec protocol (contract §4): run a command in a
//! skill sidecar through `/ipc/tools` and render its result for the model.
//!
//! - [`ExecClient`]: writes `exec-request-<id>.json` atomically, wakes on
//!   `exec-result-<id>.json` (inotify, with a rescan as backup), cleans both
//!   up. Cheap to clone; many calls may run at once.
//! - [`format_output`]: the text the model sees for a result, exactly as the
//!   upstream runner renders it (contract §1.6).
//! - [`normalize_target`]: the SkillPack name rule both sides compare with.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentpod_sdk::exec::ExecError> {
//! use std::time::Duration;
//! use agentpod_sdk::exec::{ExecClient, format_output};
//! use agentpod_sdk::ipc::IpcRoot;
//! use agentpod_sdk::wire::ExecRequest;
//!
//! let client = ExecClient::new(IpcRoot::default());
//! let mut req = ExecRequest::shell("", "kubectl get pods");
//! req.timeout = 30;
//! req.target = "k8s-ops".into();
//! let result = client.run(req, Duration::from_secs(40)).await?;
//! println!("{}", format_output(&result));
//! # Ok(()) }
//! ```

mod client;
mod format;

pub use client::{ExecClient, ExecError};
pub use format::{
    MAX_RENDERED_BYTES, NO_OUTPUT, TRUNCATED_NOTICE, format_output, normalize_target,
};
