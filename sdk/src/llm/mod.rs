//! LLM provider clients: the message model the agent loop speaks, the
//! [`Provider`] trait, and one file per wire dialect.
//!
//! Providers stream by default (SSE) and fall back to a plain JSON body when a
//! server answers without streaming. Every failure is a [`ProviderError`]
//! with a [`ErrorKind`] the loop can react to (retry, give up, say why).
//!
//! - `config`: [`ProviderConfig`] and the [`build`] factory (no env reading).
//! - `openai`: Chat Completions (OpenAI, Azure OpenAI, local servers).
//! - `anthropic`: Messages.
//! - `http`: what both share: the TLS client (rustls with an explicit
//!   `ring` provider, nothing installed process-wide), error
//!   classification, the retry loop and the per-attempt deadline.
//! - `retry`: the backoff policy. [`sse`]: the SSE parser. [`qwen`]:
//!   recovery of tool calls left in reasoning text.

mod anthropic;
mod config;
mod error;
pub(crate) mod http;
mod openai;
pub mod qwen;
mod retry;
pub mod sse;
mod types;

pub use anthropic::AnthropicProvider;
pub use config::{
    ANTHROPIC_BASE_URL, ANTHROPIC_VERSION, ConfigError, DEFAULT_AZURE_API_VERSION, DEFAULT_MODEL,
    DEFAULT_PROVIDER, OPENAI_BASE_URL, ProviderConfig, build, default_base_url,
    default_max_retries, default_request_timeout, is_local_provider, parse_headers_json,
};
pub use error::{ErrorKind, ProviderError};
pub use openai::OpenAiProvider;
pub use retry::Backoff;
pub use types::{
    ChatRequest, ChatResponse, Message, StreamEvent, ToolCall, ToolResult, ToolSpec, Usage,
};

use async_trait::async_trait;

/// Receives streaming events while a turn is generated.
pub type EventSink<'a> = &'a mut (dyn FnMut(StreamEvent) + Send);

/// One LLM endpoint speaking one wire dialect.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider family for logs and telemetry (`gen_ai.system`), e.g.
    /// `openai` or `anthropic`.
    fn system(&self) -> &str;

    /// The model name sent with every request.
    fn model(&self) -> &str;

    /// Runs one chat turn. Text, thinking and tool-call starts are reported
    /// to `events` as they arrive; the assembled turn is returned at the end.
    async fn chat(
        &self,
        request: &ChatRequest<'_>,
        events: EventSink<'_>,
    ) -> Result<ChatResponse, ProviderError>;
}
