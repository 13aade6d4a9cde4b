//! Tools: the [`Tool`] trait, the [`Registry`] that advertises and dispatches
//! them, and the [`ToolPolicy`] applied both when tools are advertised and
//! when a call arrives.
//!
//! A tool's result is the text the model sees. A failure is data, not a
//! panic: by convention its text starts with `Error:`.

mod policy;
mod registry;

pub use policy::ToolPolicy;
pub use registry::{Registry, RegistryError};

use std::time::Instant;

use async_trait::async_trait;

use crate::llm::ToolSpec;
use crate::wire::Meta;

/// The arguments object of a call.
pub type Args = serde_json::Map<String, serde_json::Value>;

/// Per-call context handed to a tool.
#[derive(Debug, Clone, Default)]
pub struct ToolContext {
    /// The provider's call id.
    pub call_id: String,
    /// Trace context to forward into IPC requests (`_meta`).
    pub meta: Option<Meta>,
    /// The run's deadline, when there is one; tools that wait (exec,
    /// delegation) stop waiting there.
    pub deadline: Option<Instant>,
}

/// One tool the model can call.
#[async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and argument schema as advertised to the model.
    fn spec(&self) -> &ToolSpec;

    /// Runs the tool. The returned text goes back to the model; a failure
    /// starts with `Error:`.
    async fn call(&self, args: Args, ctx: &ToolContext) -> String;
}

/// Whether a tool result reports a failure (upstream's rule: the text starts
/// with `Error:`).
pub fn is_error_result(text: &str) -> bool {
    text.starts_with("Error:")
}
