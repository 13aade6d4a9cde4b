//! A hook into the loop for callers that record what happened in detail
//! (the runner's JSONL detailed log, contract §1.10). Every method has an
//! empty default, and none may block for long: they run on the loop's path.

use std::time::Duration;

use crate::llm::{ChatRequest, ChatResponse, ProviderError, ToolCall};
use crate::wire::Meta;

/// Told about each model request and answer and each tool call.
pub trait LoopObserver: Send + Sync {
    /// The run starts; `trace` is the run span's context when telemetry is
    /// on.
    fn on_start(&self, trace: Option<&Meta>) {
        let _ = trace;
    }

    /// A request is about to go to the model (round counts from 1).
    fn on_request(&self, round: u32, request: &ChatRequest<'_>) {
        let _ = (round, request);
    }

    /// The model answered.
    fn on_response(&self, round: u32, response: &ChatResponse, took: Duration) {
        let _ = (round, response, took);
    }

    /// The model request failed (after the provider's retries).
    fn on_error(&self, round: u32, error: &ProviderError) {
        let _ = (round, error);
    }

    /// A tool call starts.
    fn on_tool_call(&self, call: &ToolCall) {
        let _ = call;
    }

    /// A tool call finished with `result` (already clamped).
    fn on_tool_result(&self, call: &ToolCall, result: &str, is_error: bool, took: Duration) {
        let _ = (call, result, is_error, took);
    }

    /// Earlier tool results were elided to keep the history in budget.
    fn on_elision(&self, elided: usize) {
        let _ = elided;
    }
}
