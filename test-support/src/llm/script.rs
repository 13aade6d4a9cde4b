//! The script format: a list of provider-neutral turns, each with optional
//! checks on the request and the reply to give.
//!
//! One script can be served as OpenAI or as Anthropic: the endpoint a
//! request hits picks the dialect the reply is written in.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default number of characters per streamed text or arguments delta.
pub const DEFAULT_CHUNK_CHARS: usize = 8;

/// A scripted conversation: the turns, served in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The turns, one per expected request (or `repeat` requests).
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// Characters per streamed delta (text, thinking, tool arguments).
    /// Default [`DEFAULT_CHUNK_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_chars: Option<usize>,
    /// Start over at the first turn when the script ends, instead of
    /// failing (for benchmarks and demos that drive open-ended runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cycle: bool,
}

/// One scripted exchange. Either a reply (text, thinking, tool calls...)
/// or an `error`; `delay_ms` applies to both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Checks on the request; a failed check answers HTTP 500, marked
    /// final (`x-should-retry: false`) with the mismatch as its message,
    /// and is reported by `assert_finished`.
    #[serde(default, skip_serializing_if = "Expect::is_empty")]
    pub expect: Expect,
    /// Assistant text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Reasoning: OpenAI `reasoning_content`, Anthropic `thinking` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Tool calls, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Token usage reported with the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// OpenAI `finish_reason`, verbatim. Default `tool_calls` when there are
    /// tool calls, else `stop`. (`stop` with tool calls is an upstream quirk
    /// worth testing.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Anthropic `stop_reason`, verbatim. Default `tool_use` when there are
    /// tool calls, else `end_turn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Raw override of OpenAI `message.content` (any JSON: `""`, `null`, a
    /// string); takes the place of `text` in the OpenAI dialect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// A complete non-streaming response body, served verbatim (status 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<Value>,
    /// Complete SSE events (`data: ...` lines, without the blank line),
    /// served verbatim to a streaming request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sse: Option<Vec<String>>,
    /// Answer with an HTTP error instead of a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
    /// Wait this long before answering (timeout tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Wait this long between streamed events (stall tests, pacing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_delay_ms: Option<u64>,
    /// Answer plain JSON even when `stream: true` was requested, like a
    /// server without streaming support.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_streaming: bool,
    /// Serve this turn this many times in a row (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u64>,
}

/// One tool call in a reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// Call id (OpenAI `id`, Anthropic `tool_use.id`); default
    /// `call_<turn>_<index>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments: a JSON value (serialized compactly) or a string sent
    /// verbatim (to test malformed arguments).
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// Token counts. `input` is the whole prompt including cached tokens
/// (OpenAI `prompt_tokens`); Anthropic's `input_tokens` is sent as
/// `input - cached` with `cache_read_input_tokens = cached`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    #[serde(default)]
    pub input: u64,
    /// Completion tokens.
    #[serde(default)]
    pub output: u64,
    /// Prompt tokens served from cache.
    #[serde(default)]
    pub cached: u64,
}

/// An HTTP error answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    /// HTTP status, e.g. 429, 500, 401, 400.
    pub status: u16,
    /// Error message in the dialect's error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Error code (OpenAI `error.code`, e.g. `context_length_exceeded`;
    /// Anthropic `error.type`, e.g. `rate_limit_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A body served verbatim instead (a string as text, else JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// `Retry-After` header value (seconds or an HTTP date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<RetryAfter>,
    /// Mark the error as one that cannot heal (`x-should-retry: false`,
    /// as the OpenAI and Anthropic APIs send it): clients stop retrying.
    #[serde(default, rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub final_: bool,
}

/// A `Retry-After` value: written as a number or a string in the script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RetryAfter {
    /// Seconds.
    Seconds(u64),
    /// Verbatim header value.
    Text(String),
}

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seconds(s) => write!(f, "{s}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// Checks on a request. Every field is optional; all given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Which API the request must use (`openai` or `anthropic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Dialect>,
    /// The `model` field, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The offered tool names, as a set (order ignored, nothing more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Tool names that must be among those offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_include: Vec<String>,
    /// Tool results that must be in the conversation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ExpectToolResult>,
    /// A substring of the system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_contains: Option<String>,
    /// A substring of the last user message's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_contains: Option<String>,
    /// The `stream` flag (absent counts as false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Headers that must be present: name (any case) to a substring of the
    /// value (`""` checks presence only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON pointers into the body and the value each must equal, e.g.
    /// `{"/temperature": 0.2}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub body: BTreeMap<String, Value>,
}

impl Expect {
    /// True when no check is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A tool result that must appear in the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectToolResult {
    /// `tool_call_id` (OpenAI) or `tool_use_id` (Anthropic).
    pub id: String,
    /// A substring of the result's text content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
}

impl From<(&str, &str)> for ExpectToolResult {
    /// `(id, contains)`.
    fn from((id, contains): (&str, &str)) -> Self {
        Self {
            id: id.to_owned(),
            contains: Some(contains.to_owned()),
        }
    }
}

/// The API a request used, chosen by the endpoint it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// OpenAI Chat Completions (and compatible servers, Azure OpenAI).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        })
    }
}

/// Why a script could not be loaded.
#[derive(Debug)]
pub struct ScriptError(String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

impl Script {
    /// An empty script; add turns with [`Script::turn`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a script from a `.json` file, or YAML for any other name.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ScriptError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScriptError(format!("read script {}: {e}", path.display())))?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            Self::from_json_str(&text)
        } else {
            Self::from_yaml_str(&text)
        };
        parsed.map_err(|e| ScriptError(format!("{}: {e}", path.display())))
    }

    /// Parses a YAML script.
    pub fn from_yaml_str(text: &str) -> Result<Self, ScriptError> {
        let s: Self =
            serde_yaml::from_str(text).map_err(|e| ScriptError(format!("bad YAML script: {e}")))?;
        s.validate()
    }

    /// Parses a JSON script.
    pub fn from_json_str(text: &str) -> Result<Self, ScriptError> {
        let s: Self =
            serde_json::from_str(text).map_err(|e| ScriptError(format!("bad JSON script: {e}")))?;
        s.validate()
    }

    /// Adds a turn.
    pub fn turn(mut self, turn: Turn) -> Self {
        self.turns.push(turn);
        self
    }

    /// Sets the characters per streamed delta.
    pub fn chunk_chars(mut self, n: usize) -> Self {
        self.chunk_chars = Some(n);
        self
    }

    /// Makes the script start over when it ends.
    pub fn cycle(mut self) -> Self {
        self.cycle = true;
        self
    }

    /// Number of requests the script serves (turns times their repeats).
    pub fn total_requests(&self) -> u64 {
        self.turns.iter().map(Turn::times).sum()
    }

    /// The turn index serving the `n`th request (0-based), if any.
    pub fn turn_for_request(&self, n: u64) -> Option<usize> {
        let total = self.total_requests();
        let mut n = if self.cycle && total > 0 {
            n % total
        } else {
            n
        };
        for (i, t) in self.turns.iter().enumerate() {
            if n < t.times() {
                return Some(i);
            }
            n -= t.times();
        }
        None
    }

    fn validate(self) -> Result<Self, ScriptError> {
        if self.chunk_chars == Some(0) {
            return Err(ScriptError("chunk_chars must be at least 1".into()));
        }
        for (i, t) in self.turns.iter().enumerate() {
            if t.repeat == Some(0) {
                return Err(ScriptError(format!("turn {i}: repeat must be at least 1")));
            }
            if t.error.is_some() && t.has_reply() {
                return Err(ScriptError(format!(
                    "turn {i}: `error` cannot be combined with a reply"
                )));
            }
        }
        Ok(self)
    }
}

impl Turn {
    /// A turn answering with assistant text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    /// A turn answering with one tool call (add more with
    /// [`Turn::with_tool_call`]).
    pub fn tool_call(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        Self::default().with_tool_call(id, name, arguments)
    }

    /// A turn answering with an HTTP error status.
    pub fn error(status: u16) -> Self {
        Self {
            error: Some(ErrorReply {
                status,
                ..ErrorReply::default()
            }),
            ..Self::default()
        }
    }

    /// Marks this turn's error as final (`x-should-retry: false`): a
    /// client should not send the request again.
    pub fn with_final(mut self) -> Self {
        if let Some(e) = &mut self.error {
            e.final_ = true;
        }
        self
    }

    /// Adds a tool call.
    pub fn with_tool_call(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: Value,
    ) -> Self {
        self.tool_calls.push(ToolCall {
            id: Some(id.into()),
            name: name.into(),
            arguments,
        });
        self
    }

    /// Sets the reasoning text.
    pub fn with_thinking(mut self, thinking: impl Into<String>) -> Self {
        self.thinking = Some(thinking.into());
        self
    }

    /// Sets the usage.
    pub fn with_usage(mut self, input: u64, output: u64, cached: u64) -> Self {
        self.usage = Some(Usage {
            input,
            output,
            cached,
        });
        self
    }

    /// Sets the OpenAI `finish_reason`.
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    /// Sets the Anthropic `stop_reason`.
    pub fn with_stop_reason(mut self, reason: impl Into<String>) -> Self {
        self.stop_reason = Some(reason.into());
        self
    }

    /// Sets a `Retry-After` header in seconds (on an error turn).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.retry_after = Some(RetryAfter::Seconds(seconds));
        }
        self
    }

    /// Sets the error message and code (on an error turn).
    pub fn with_error_code(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        if let Some(e) = self.error.as_mut() {
            e.code = Some(code.into());
            e.message = Some(message.into());
        }
        self
    }

    /// Waits `ms` milliseconds before answering.
    pub fn with_delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Answers plain JSON even to streaming requests.
    pub fn non_streaming(mut self) -> Self {
        self.non_streaming = true;
        self
    }

    /// Serves this turn `n` times.
    pub fn repeat(mut self, n: u64) -> Self {
        self.repeat = Some(n);
        self
    }

    /// Sets the request checks.
    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// How many requests this turn serves.
    pub fn times(&self) -> u64 {
        self.repeat.unwrap_or(1)
    }

    /// The id of tool call `i` of turn `turn`: scripted, or generated.
    pub fn tool_call_id(&self, turn: usize, i: usize) -> String {
        self.tool_calls[i]
            .id
            .clone()
            .unwrap_or_else(|| format!("call_{turn}_{i}"))
    }

    fn has_reply(&self) -> bool {
        self.text.is_some()
            || self.thinking.is_some()
            || !self.tool_calls.is_empty()
            || self.content.is_some()
            || self.raw_body.is_some()
            || self.raw_sse.is_some()
    }
}

impl ToolCall {
    /// The arguments as the JSON text sent on the wire.
    pub fn arguments_text(&self) -> String {
        match &self.arguments {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }

    /// The arguments as a JSON value (Anthropic `input`): a string is
    /// parsed, and kept as a string if it is not JSON.
    pub fn arguments_value(&self) -> Value {
        match &self.arguments {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| self.arguments.clone()),
            v => v.clone(),
        }
    }
}

/// Splits `s` into pieces of at most `n` characters (never inside a
/// character). An empty string gives no pieces.
pub fn split_chars(s: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (i, _) in s.char_indices() {
        if count == n {
            out.push(&s[start..i]);
            start = i;
            count = 0;
        }
        count += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_char_boundaries() {
        assert_eq!(split_chars("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(split_chars("héé", 2), ["hé", "é"]);
        assert!(split_chars("", 4).is_empty());
    }

    #[test]
    fn repeat_and_cycle_map_requests_to_turns() {
        let s = Script::new()
            .turn(Turn::text("a").repeat(2))
            .turn(Turn::text("b"));
        assert_eq!(s.total_requests(), 3);
        assert_eq!(s.turn_for_request(1), Some(0));
        assert_eq!(s.turn_for_request(2), Some(1));
        assert_eq!(s.turn_for_request(3), None);
        assert_eq!(s.cycle().turn_for_request(4), Some(0));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = Script::from_yaml_str("turns:\n  - txt: hi\n").unwrap_err();
        assert!(e.to_string().contains("txt"), "{e}");
    }
}
