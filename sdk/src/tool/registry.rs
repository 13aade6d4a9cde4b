//! The ordered set of tools a run offers.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Args, Tool, ToolContext, ToolPolicy};
use crate::llm::{ToolCall, ToolSpec};

/// Why a tool could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Another tool already has this name.
    #[error("tool {0:?} is already registered")]
    Duplicate(String),
}

/// Tools in registration order (the order they are advertised in), with
/// the run's policy.
#[derive(Default)]
pub struct Registry {
    tools: Vec<Arc<dyn Tool>>,
    by_name: HashMap<String, usize>,
    policy: ToolPolicy,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tools", &self.by_name.keys().collect::<Vec<_>>())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Registry {
    /// An empty registry governed by `policy`.
    pub fn new(policy: ToolPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Adds a tool; names are unique.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
        let name = tool.spec().name.clone();
        if self.by_name.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        self.by_name.insert(name, self.tools.len());
        self.tools.push(tool);
        Ok(())
    }

    /// Whether a tool of this name is registered (allowed or not).
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The policy in force.
    pub fn policy(&self) -> &ToolPolicy {
        &self.policy
    }

    /// Specs of the tools the policy permits, in registration order.
    pub fn advertised(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|t| t.spec())
            .filter(|s| self.policy.permits(&s.name))
            .cloned()
            .collect()
    }

    /// Runs one call. The policy is checked again here: a denied or unknown
    /// tool is never executed and gets an `Error:` result; arguments that
    /// are not a JSON object get upstream's parse error text.
    pub async fn dispatch(&self, call: &ToolCall, ctx: &ToolContext) -> String {
        let Some(&i) = self.by_name.get(&call.name) else {
            return format!(
                "Error: Unknown tool: {}. Available tools: {}",
                call.name,
                self.advertised()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        if !self.policy.permits(&call.name) {
            return format!(
                "Error: tool {} is not allowed by the tool policy of this run",
                call.name
            );
        }
        let args = match parse_args(&call.arguments) {
            Ok(a) => a,
            Err(e) => return format!("Error parsing tool arguments: {e}"),
        };
        self.tools[i].call(args, ctx).await
    }
}

/// Parses a call's argument text as a JSON object; empty text is `{}`.
fn parse_args(text: &str) -> Result<Args, String> {
    if text.trim().is_empty() {
        return Ok(Args::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!("expected a JSON object, got {other}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    struct Echo(ToolSpec);

    #[async_trait]
    impl Tool for Echo {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }
        async fn call(&self, args: Args, _: &ToolContext) -> String {
            serde_json::Value::Object(args).to_string()
        }
    }

    fn echo(name: &str) -> Arc<dyn Tool> {
        Arc::new(Echo(ToolSpec {
            name: name.into(),
            description: "echo".into(),
            parameters: serde_json::json!({"type": "object"}),
        }))
    }

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[tokio::test]
    async fn dispatch_enforces_policy_at_call_time() {
        let mut r = Registry::new(ToolPolicy::from_lists("", "secret"));
        r.register(echo("echo")).unwrap();
        r.register(echo("secret")).unwrap();
        assert_eq!(
            r.register(echo("echo")),
            Err(RegistryError::Duplicate("echo".into()))
        );
        let names: Vec<_> = r.advertised().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["echo"]);

        let ctx = ToolContext::default();
        assert_eq!(
            r.dispatch(&call("echo", r#"{"a":1}"#), &ctx).await,
            r#"{"a":1}"#
        );
        assert_eq!(r.dispatch(&call("echo", ""), &ctx).await, "{}");
        let denied = r.dispatch(&call("secret", "{}"), &ctx).await;
        assert!(
            denied.starts_with("Error: tool secret is not allowed"),
            "{denied}"
        );
        let unknown = r.dispatch(&call("nope", "{}"), &ctx).await;
        assert_eq!(unknown, "Error: Unknown tool: nope. Available tools: echo");
        let bad = r.dispatch(&call("echo", "[1]"), &ctx).await;
        assert!(
            bad.starts_with("Error parsing tool arguments: expected a JSON object"),
            "{bad}"
        );
        let bad = r.dispatch(&call("echo", "{\"a\":"), &ctx).await;
        assert!(bad.starts_with("Error parsing tool arguments: "), "{bad}");
    }
}
