//! Anthropic Messages (`<base>/v1/messages`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::header::HeaderName;
use serde_json::{Map, Value, json};

use super::config::{ANTHROPIC_BASE_URL, ANTHROPIC_VERSION, ConfigError, ProviderConfig, endpoint};
use super::http::{Dialect, StreamDecoder, Transport, classify_stream_error};
use super::sse::SseEvent;
use super::{
    ChatRequest, ChatResponse, ErrorKind, EventSink, Message, Provider, ProviderError, StreamEvent,
    ToolCall, ToolSpec, Usage,
};

/// The `max_tokens` of every request (upstream's value).
pub const MAX_TOKENS: u32 = 8192;

/// A Messages API endpoint.
#[derive(Debug)]
pub struct AnthropicProvider {
    model: String,
    stream: bool,
    transport: Transport,
}

impl AnthropicProvider {
    /// The provider for `config`: `<base>/v1/messages` (default base
    /// `https://api.anthropic.com`) with `x-api-key` and `anthropic-version`.
    pub fn new(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let base = config.base_url.as_deref().unwrap_or(ANTHROPIC_BASE_URL);
        let url = endpoint(base, &["v1", "messages"])?;
        let auth = config
            .api_key
            .as_ref()
            .map(|k| (HeaderName::from_static("x-api-key"), k.clone()));
        let fixed = [(
            HeaderName::from_static("anthropic-version"),
            ANTHROPIC_VERSION,
        )];
        Ok(Self {
            model: config.model.clone(),
            stream: config.stream,
            transport: config.transport(url, auth, &fixed)?,
        })
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn system(&self) -> &str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(
        &self,
        request: &ChatRequest<'_>,
        events: EventSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        if request.response_format.is_some() {
            tracing::debug!("response_format is not supported by the Messages API; ignored");
        }
        let body = request_body(&self.model, self.stream, request);
        self.transport.chat(&AnthropicDialect, &body, events).await
    }
}

/// The Messages body: system as one text block, assistant turns as text
/// plus `tool_use` blocks, tool results as one user message of
/// `tool_result` blocks, tool schemas forwarded whole.
pub(crate) fn request_body(model: &str, stream: bool, request: &ChatRequest<'_>) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len());
    for m in request.messages {
        match m {
            Message::User { content } => {
                messages.push(json!({"role": "user", "content": content}));
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::new();
                if !content.is_empty() {
                    blocks.push(json!({"type": "text", "text": content}));
                }
                for c in tool_calls {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": c.id,
                        "name": c.name,
                        "input": tool_input(&c.arguments),
                    }));
                }
                // The API rejects empty text blocks; an empty turn is left
                // out (consecutive user turns are merged by the API).
                if !blocks.is_empty() {
                    messages.push(json!({"role": "assistant", "content": blocks}));
                }
            }
            Message::ToolResults { results } => {
                let blocks: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        json!({
                            "type": "tool_result",
                            "tool_use_id": r.call_id,
                            "content": r.content,
                            "is_error": r.is_error,
                        })
                    })
                    .collect();
                if !blocks.is_empty() {
                    messages.push(json!({"role": "user", "content": blocks}));
                }
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("max_tokens".into(), MAX_TOKENS.into());
    if !request.system.is_empty() {
        body.insert(
            "system".into(),
            json!([{"type": "text", "text": request.system}]),
        );
    }
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(tool).collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if stream {
        body.insert("stream".into(), true.into());
    }
    Value::Object(body)
}

/// A tool with its whole schema as `input_schema` (upstream kept only
/// `properties` and sometimes lost `required`); `type: object` is ensured,
/// as the API requires it.
fn tool(t: &ToolSpec) -> Value {
    let mut schema = match &t.parameters {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    schema.insert("type".into(), "object".into());
    json!({"name": t.name, "description": t.description, "input_schema": schema})
}

/// The arguments object of a call (`{}` when the text is not an object).
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// Decodes Messages answers.
pub(crate) struct AnthropicDialect;

impl Dialect for AnthropicDialect {
    type Stream = AnthropicStream;

    fn stream_decoder(&self) -> AnthropicStream {
        AnthropicStream::default()
    }

    fn parse_body(&self, body: &[u8]) -> Result<ChatResponse, ProviderError> {
        let v = super::http::json_body(body)?;
        if v.get("type").and_then(Value::as_str) == Some("error") {
            return Err(classify_stream_error(&v));
        }
        let blocks = v.get("content").and_then(Value::as_array).ok_or_else(|| {
            ProviderError::new(ErrorKind::InvalidResponse, "answer has no content blocks")
        })?;
        let mut r = ChatResponse {
            finish_reason: v
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..ChatResponse::default()
        };
        let mut tokens = Tokens::default();
        if let Some(u) = v.get("usage") {
            tokens.update(u);
        }
        r.usage = tokens.usage();
        for b in blocks {
            let text = |k| b.get(k).and_then(Value::as_str).unwrap_or_default();
            match text("type") {
                "text" => r.content.push_str(text("text")),
                "thinking" => r.thinking.push_str(text("thinking")),
                "tool_use" => r.tool_calls.push(ToolCall {
                    id: text("id").to_owned(),
                    name: text("name").to_owned(),
                    arguments: b
                        .get("input")
                        .filter(|i| i.is_object())
                        .map_or_else(|| "{}".to_owned(), Value::to_string),
                }),
                _ => {}
            }
        }
        Ok(r)
    }
}

/// Token counts as the API reports them; `input_tokens` excludes cached
/// prompt tokens, which [`Usage::input_tokens`] includes.
#[derive(Debug, Default)]
struct Tokens {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

impl Tokens {
    /// Takes every count present in `u` (later events repeat or update).
    fn update(&mut self, u: &Value) {
        let set = |slot: &mut u64, key: &str| {
            if let Some(n) = u.get(key).and_then(Value::as_u64) {
                *slot = n;
            }
        };
        set(&mut self.input, "input_tokens");
        set(&mut self.cache_read, "cache_read_input_tokens");
        set(&mut self.cache_write, "cache_creation_input_tokens");
        set(&mut self.output, "output_tokens");
    }

    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.input + self.cache_read + self.cache_write,
            output_tokens: self.output,
            cached_input_tokens: self.cache_read,
        }
    }
}

/// The state of one streamed answer.
#[derive(Debug, Default)]
pub(crate) struct AnthropicStream {
    /// Content blocks by their `index`.
    blocks: BTreeMap<u64, Block>,
    stop_reason: Option<String>,
    tokens: Tokens,
    done: bool,
}

#[derive(Debug)]
enum Block {
    Text(String),
    Thinking(String),
    ToolUse {
        id: String,
        name: String,
        /// `input` of `content_block_start` (normally `{}`).
        start_input: Value,
        /// The `input_json_delta` pieces.
        json: String,
    },
    /// Blocks this client does not use (redacted thinking, server tools).
    Other,
}

impl StreamDecoder for AnthropicStream {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if ev.data.trim().is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidResponse,
                format!("stream event is not JSON: {e}"),
            )
        })?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or_default();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.tokens.update(u);
                }
            }
            "content_block_start" => {
                let b = v.get("content_block").unwrap_or(&Value::Null);
                let s = |k| b.get(k).and_then(Value::as_str).unwrap_or_default();
                let block = match s("type") {
                    "text" => {
                        push_text(out, StreamEvent::Text, s("text"));
                        Block::Text(s("text").to_owned())
                    }
                    "thinking" => {
                        push_text(out, StreamEvent::Thinking, s("thinking"));
                        Block::Thinking(s("thinking").to_owned())
                    }
                    "tool_use" => {
                        out.push(StreamEvent::ToolCall {
                            id: s("id").to_owned(),
                            name: s("name").to_owned(),
                        });
                        Block::ToolUse {
                            id: s("id").to_owned(),
                            name: s("name").to_owned(),
                            start_input: b.get("input").cloned().unwrap_or(Value::Null),
                            json: String::new(),
                        }
                    }
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let s = |k| d.get(k).and_then(Value::as_str).unwrap_or_default();
                match (self.blocks.get_mut(&index), s("type")) {
                    (Some(Block::Text(t)), "text_delta") => {
                        t.push_str(s("text"));
                        push_text(out, StreamEvent::Text, s("text"));
                    }
                    (Some(Block::Thinking(t)), "thinking_delta") => {
                        t.push_str(s("thinking"));
                        push_text(out, StreamEvent::Thinking, s("thinking"));
                    }
                    (Some(Block::ToolUse { json, .. }), "input_json_delta") => {
                        json.push_str(s("partial_json"));
                    }
                    // signature_delta, or a delta for an unknown block.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(u) = v.get("usage") {
                    self.tokens.update(u);
                }
            }
            "message_stop" => self.done = true,
            "error" => return Err(classify_stream_error(&v)),
            // ping, content_block_stop and future event types.
            _ => {}
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish(self, _out: &mut Vec<StreamEvent>) -> Result<ChatResponse, ProviderError> {
        if !self.done && self.stop_reason.is_none() {
            return Err(ProviderError::new(
                ErrorKind::Network,
                "the stream ended before the answer was complete (no message_stop)",
            ));
        }
        let mut r = ChatResponse {
            finish_reason: self.stop_reason,
            usage: self.tokens.usage(),
            ..ChatResponse::default()
        };
        for block in self.blocks.into_values() {
            match block {
                Block::Text(t) => r.content.push_str(&t),
                Block::Thinking(t) => r.thinking.push_str(&t),
                Block::ToolUse {
                    id,
                    name,
                    start_input,
                    json,
                } => {
                    let arguments = if !json.trim().is_empty() {
                        json
                    } else if start_input.is_object() {
                        start_input.to_string()
                    } else {
                        "{}".to_owned()
                    };
                    r.tool_calls.push(ToolCall {
                        id,
                        name,
                        arguments,
                    });
                }
                Block::Other => {}
            }
        }
        Ok(r)
    }
}

fn push_text(out: &mut Vec<StreamEvent>, make: fn(String) -> StreamEvent, text: &str) {
    if !text.is_empty() {
        out.push(make(text.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolResult;

    fn sse(event: &str, data: Value) -> SseEvent {
        SseEvent {
            event: Some(event.to_owned()),
            data: data.to_string(),
            id: None,
        }
    }

    #[test]
    fn body_keeps_required_and_shapes_turns() {
        let messages = vec![
            Message::User {
                content: "go".into(),
            },
            Message::Assistant {
                content: "calling".into(),
                tool_calls: vec![
                    ToolCall {
                        id: "t1".into(),
                        name: "f".into(),
                        arguments: r#"{"a":1}"#.into(),
                    },
                    ToolCall {
                        id: "t2".into(),
                        name: "g".into(),
                        arguments: "not json".into(),
                    },
                ],
            },
            Message::ToolResults {
                results: vec![
                    ToolResult {
                        call_id: "t1".into(),
                        name: "f".into(),
                        content: "ok".into(),
                        is_error: false,
                    },
                    ToolResult {
                        call_id: "t2".into(),
                        name: "g".into(),
                        content: "Error: bad".into(),
                        is_error: true,
                    },
                ],
            },
        ];
        let tools = vec![
            ToolSpec {
                name: "f".into(),
                description: "F".into(),
                parameters: json!({"properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}),
            },
            ToolSpec {
                name: "g".into(),
                description: "G".into(),
                parameters: Value::Null,
            },
        ];
        let req = ChatRequest {
            system: "sys",
            messages: &messages,
            tools: &tools,
            response_format: None,
        };
        let body = request_body("claude", true, &req);
        assert_eq!(
            body,
            json!({
                "model": "claude",
                "max_tokens": 8192,
                "system": [{"type": "text", "text": "sys"}],
                "messages": [
                    {"role": "user", "content": "go"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                        {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": false},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "Error: bad", "is_error": true},
                    ]},
                ],
                "tools": [
                    {"name": "f", "description": "F", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false}},
                    {"name": "g", "description": "G", "input_schema": {"type": "object"}},
                ],
                "stream": true,
            })
        );
    }

    #[test]
    fn stream_assembles_blocks_usage_and_stop_reason() {
        let mut s = AnthropicDialect.stream_decoder();
        let mut out = Vec::new();
        let events = [
            sse(
                "message_start",
                json!({"type":"message_start","message":{"usage":{"input_tokens":7,"cache_read_input_tokens":3,"output_tokens":1}}}),
            ),
            sse(
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}),
            ),
            sse(
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}),
            ),
            sse(
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}),
            ),
            sse(
                "content_block_start",
                json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}),
            ),
            sse(
                "content_block_delta",
                json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}),
            ),
            sse("ping", json!({"type":"ping"})),
            sse(
                "content_block_start",
                json!({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"tu","name":"f","input":{}}}),
            ),
            sse(
                "content_block_delta",
                json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}),
            ),
            sse(
                "content_block_delta",
                json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}),
            ),
            sse(
                "content_block_stop",
                json!({"type":"content_block_stop","index":2}),
            ),
            sse(
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}),
            ),
            sse("message_stop", json!({"type":"message_stop"})),
        ];
        for e in &events {
            s.event(e, &mut out).expect("event");
        }
        assert!(s.is_done());
        let r = s.finish(&mut out).expect("complete");
        assert_eq!(r.content, "Hi");
        assert_eq!(r.thinking, "hmm");
        assert_eq!(r.finish_reason.as_deref(), Some("tool_use"));
        assert_eq!(r.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 10,
                output_tokens: 9,
                cached_input_tokens: 3
            }
        );
        assert_eq!(
            out,
            vec![
                StreamEvent::Thinking("hmm".into()),
                StreamEvent::Text("Hi".into()),
                StreamEvent::ToolCall {
                    id: "tu".into(),
                    name: "f".into()
                },
            ]
        );
    }

    #[test]
    fn error_event_is_classified() {
        let mut s = AnthropicDialect.stream_decoder();
        let e = s
            .event(
                &sse(
                    "error",
                    json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
                ),
                &mut Vec::new(),
            )
            .expect_err("error event");
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(e.message.contains("Overloaded"), "{e}");
    }

    #[test]
    fn plain_body_is_parsed() {
        let body = json!({
            "type": "message", "role": "assistant", "stop_reason": "end_turn",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "text", "text": "Hello"},
                {"type": "tool_use", "id": "x", "name": "f", "input": {"k": "v"}},
            ],
            "usage": {"input_tokens": 2, "output_tokens": 3, "cache_read_input_tokens": 5}
        });
        let r = AnthropicDialect
            .parse_body(body.to_string().as_bytes())
            .expect("ok");
        assert_eq!(r.content, "Hello");
        assert_eq!(r.thinking, "t");
        assert_eq!(r.tool_calls[0].arguments, r#"{"k":"v"}"#);
        assert_eq!(r.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 7,
                output_tokens: 3,
                cached_input_tokens: 5
            }
        );
    }
}
