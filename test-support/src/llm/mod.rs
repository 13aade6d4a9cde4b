//! A scripted OpenAI/Anthropic-compatible LLM server: the one stand-in in
//! our tests, so the real HTTP client, streaming parser and tool loop run.
//!
//! [`Script`] is the format (YAML, JSON or built in code), [`ScriptedLlm`]
//! serves it. `openai` and `anthropic` write one script's turns in each
//! dialect; `check` matches requests against a turn's expectations.

mod anthropic;
mod check;
mod openai;
mod script;
mod server;

pub use script::{
    DEFAULT_CHUNK_CHARS, Dialect, ErrorReply, Expect, ExpectToolResult, RetryAfter, Script,
    ScriptError, ToolCall, Turn, Usage, split_chars,
};
pub use server::{Options, RecordedRequest, ScriptedLlm};

/// What a dialect needs to write one reply.
pub(crate) struct ReplyCtx<'a> {
    pub turn: &'a Turn,
    pub turn_index: usize,
    pub request_index: u64,
    /// The model named in the request, echoed back.
    pub model: String,
    /// Unix seconds, for OpenAI's `created`.
    pub created: u64,
    pub chunk_chars: usize,
}
