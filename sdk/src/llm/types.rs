//! The provider-neutral conversation model.

use serde::{Deserialize, Serialize};

/// A tool as advertised to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool name the model calls.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id (echoed back with the result).
    pub id: String,
    /// The tool name.
    pub name: String,
    /// The arguments exactly as the model produced them (JSON text).
    pub arguments: String,
}

/// The result of one tool call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// The tool name.
    pub name: String,
    /// The result text the model sees.
    pub content: String,
    /// Whether the tool failed (the result starts with `Error:`).
    pub is_error: bool,
}

/// One message of the history after the system prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A user turn.
    User {
        /// The text.
        content: String,
    },
    /// An assistant turn, possibly with tool calls.
    Assistant {
        /// The visible text (may be empty).
        content: String,
        /// Tool calls in the order the model made them.
        tool_calls: Vec<ToolCall>,
    },
    /// The results of every tool call of the previous assistant turn, in
    /// call order.
    ToolResults {
        /// One result per call.
        results: Vec<ToolResult>,
    },
}

/// One request: the system prompt, the history and the advertised tools.
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// The system prompt.
    pub system: &'a str,
    /// The conversation so far.
    pub messages: &'a [Message],
    /// Tools the model may call.
    pub tools: &'a [ToolSpec],
    /// When set, ask for JSON output matching this schema (prompt-server
    /// structured output): an object with `name`, `schema` and optional
    /// `strict`.
    pub response_format: Option<&'a serde_json::Value>,
}

/// Token counts of one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input_tokens: u64,
}

impl Usage {
    /// Adds another turn's counts.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
    }
}

/// A complete assistant turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatResponse {
    /// The visible text.
    pub content: String,
    /// Reasoning text, when the provider exposes it.
    pub thinking: String,
    /// Tool calls, in order. Extracted whatever the finish reason says.
    pub tool_calls: Vec<ToolCall>,
    /// The provider's finish or stop reason, as sent.
    pub finish_reason: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// What a streaming provider reports while a turn is generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A piece of visible text.
    Text(String),
    /// A piece of reasoning text.
    Thinking(String),
    /// The model started a tool call.
    ToolCall {
        /// The call id.
        id: String,
        /// The tool name.
        name: String,
    },
}
