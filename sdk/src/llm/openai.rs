//! OpenAI Chat Completions: OpenAI, Azure OpenAI and every
//! OpenAI-compatible server (Ollama, LM Studio, llama.cpp, vLLM, ...).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::config::{ConfigError, ProviderConfig, bearer, endpoint};
use super::http::{Dialect, StreamDecoder, Transport, classify_stream_error};
use super::sse::SseEvent;
use super::{
    ChatRequest, ChatResponse, ErrorKind, EventSink, Message, Provider, ProviderError, StreamEvent,
    ToolCall, Usage, qwen,
};

/// A Chat Completions endpoint.
#[derive(Debug)]
pub struct OpenAiProvider {
    system: String,
    model: String,
    stream: bool,
    transport: Transport,
}

impl OpenAiProvider {
    /// The provider for `config`: `<base>/chat/completions` with a bearer
    /// key, or for `azure-openai`
    /// `<base>/openai/deployments/<model>/chat/completions?api-version=<v>`
    /// with an `api-key` header (a base URL is then required).
    pub fn new(config: &ProviderConfig) -> Result<Self, ConfigError> {
        let azure = config.provider == "azure-openai";
        let (url, auth, system) = if azure {
            let base = config.base_url.as_deref().ok_or_else(|| {
                ConfigError::BaseUrl(
                    "required for MODEL_PROVIDER=azure-openai: set it to the resource endpoint, \
                     e.g. https://<resource>.openai.azure.com"
                        .into(),
                )
            })?;
            // Accept the endpoint with or without its `/openai` suffix.
            let base = base.strip_suffix("/openai").unwrap_or(base);
            let mut url = endpoint(
                base,
                &[
                    "openai",
                    "deployments",
                    &config.model,
                    "chat",
                    "completions",
                ],
            )?;
            url.query_pairs_mut()
                .append_pair("api-version", &config.azure_api_version);
            let auth = config.api_key.as_ref().map(|k| {
                (
                    reqwest::header::HeaderName::from_static("api-key"),
                    k.clone(),
                )
            });
            (url, auth, "az.ai.openai".to_owned())
        } else {
            let base = config
                .effective_base_url()
                .unwrap_or(super::config::OPENAI_BASE_URL);
            let url = endpoint(base, &["chat", "completions"])?;
            (
                url,
                config.api_key.as_deref().map(bearer),
                config.provider.clone(),
            )
        };
        Ok(Self {
            system,
            model: config.model.clone(),
            stream: config.stream,
            transport: config.transport(url, auth, &[])?,
        })
    }

    /// The request body for `request`.
    fn body(&self, request: &ChatRequest<'_>) -> Value {
        request_body(&self.model, self.stream, request)
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn system(&self) -> &str {
        &self.system
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(
        &self,
        request: &ChatRequest<'_>,
        events: EventSink<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        self.transport
            .chat(&OpenAiDialect, &self.body(request), events)
            .await
    }
}

/// The Chat Completions body: `[system, ...history]`, function tools with
/// their schema verbatim, no `max_tokens`.
pub(crate) fn request_body(model: &str, stream: bool, request: &ChatRequest<'_>) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for m in request.messages {
        match m {
            Message::User { content } => {
                messages.push(json!({"role": "user", "content": content}));
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                let mut msg = Map::new();
                msg.insert("role".into(), "assistant".into());
                // With tool calls, empty text is sent as null, as OpenAI does.
                let text = if content.is_empty() && !tool_calls.is_empty() {
                    Value::Null
                } else {
                    Value::String(content.clone())
                };
                msg.insert("content".into(), text);
                if !tool_calls.is_empty() {
                    let calls = tool_calls
                        .iter()
                        .map(|c| {
                            json!({
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments},
                            })
                        })
                        .collect();
                    msg.insert("tool_calls".into(), Value::Array(calls));
                }
                messages.push(Value::Object(msg));
            }
            Message::ToolResults { results } => {
                for r in results {
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": r.call_id,
                        "content": r.content,
                    }));
                }
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(format) = request.response_format {
        body.insert("response_format".into(), response_format(format));
    }
    if stream {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

/// `{"type":"json_schema","json_schema":{name, schema, strict}}` from the
/// request's `{name, schema, strict?}` (strict defaults to true). An object
/// that already is a full `response_format` is sent as is.
fn response_format(spec: &Value) -> Value {
    if spec.get("type").and_then(Value::as_str) == Some("json_schema")
        && spec.get("json_schema").is_some()
    {
        return spec.clone();
    }
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("response");
    let schema = spec.get("schema").cloned().unwrap_or_else(|| json!({}));
    let strict = spec.get("strict").and_then(Value::as_bool).unwrap_or(true);
    json!({
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    })
}

/// Decodes Chat Completions answers.
pub(crate) struct OpenAiDialect;

impl Dialect for OpenAiDialect {
    type Stream = OpenAiStream;

    fn stream_decoder(&self) -> OpenAiStream {
        OpenAiStream::default()
    }

    fn parse_body(&self, body: &[u8]) -> Result<ChatResponse, ProviderError> {
        let v = super::http::json_body(body)?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(classify_stream_error(&v));
        }
        let choice = first_choice(&v).ok_or_else(|| {
            ProviderError::new(ErrorKind::InvalidResponse, "answer has no choices")
        })?;
        let message = choice.get("message").unwrap_or(&Value::Null);
        let tool_calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .map(|calls| {
                calls
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        let f = c.get("function")?;
                        Some(ToolCall {
                            id: str_at(c, "id")
                                .filter(|s| !s.is_empty())
                                .map_or_else(|| format!("call_{i}"), str::to_owned),
                            name: str_at(f, "name")?.to_owned(),
                            arguments: arguments_text(f.get("arguments")),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut response = ChatResponse {
            content: content_text(message.get("content")),
            thinking: reasoning(message).unwrap_or_default().to_owned(),
            tool_calls,
            finish_reason: str_at(choice, "finish_reason").map(str::to_owned),
            usage: v.get("usage").map(usage).unwrap_or_default(),
        };
        recover_from_reasoning(&mut response, None);
        Ok(response)
    }
}

/// The state of one streamed answer.
#[derive(Debug, Default)]
pub(crate) struct OpenAiStream {
    content: String,
    thinking: String,
    /// Tool calls by their `index`.
    calls: BTreeMap<u64, PartialCall>,
    finish_reason: Option<String>,
    usage: Usage,
    done: bool,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    announced: bool,
}

impl StreamDecoder for OpenAiStream {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidResponse,
                format!("stream chunk is not JSON: {e}"),
            )
        })?;
        if v.get("error").is_some_and(|e| !e.is_null()) || ev.event.as_deref() == Some("error") {
            return Err(classify_stream_error(&v));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = usage(u);
        }
        let Some(choice) = first_choice(&v) else {
            return Ok(()); // the usage-only chunk
        };
        if let Some(reason) = str_at(choice, "finish_reason") {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(());
        };
        if let Some(t) = reasoning(delta).filter(|t| !t.is_empty()) {
            self.thinking.push_str(t);
            out.push(StreamEvent::Thinking(t.to_owned()));
        }
        let text = content_text(delta.get("content"));
        if !text.is_empty() {
            self.content.push_str(&text);
            out.push(StreamEvent::Text(text));
        }
        for c in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call_delta(c, out);
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish(self, out: &mut Vec<StreamEvent>) -> Result<ChatResponse, ProviderError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(ProviderError::new(
                ErrorKind::Network,
                "the stream ended before the answer was complete (no finish_reason or [DONE])",
            ));
        }
        let tool_calls = self
            .calls
            .into_iter()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, c)| ToolCall {
                id: if c.id.is_empty() {
                    format!("call_{i}")
                } else {
                    c.id
                },
                name: c.name,
                arguments: if c.arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    c.arguments
                },
            })
            .collect();
        let mut response = ChatResponse {
            content: self.content,
            thinking: self.thinking,
            tool_calls,
            finish_reason: self.finish_reason,
            usage: self.usage,
        };
        recover_from_reasoning(&mut response, Some(out));
        Ok(response)
    }
}

impl OpenAiStream {
    /// Merges one `tool_calls[]` delta: the first delta of an index brings
    /// id and name, later ones pieces of the arguments.
    fn tool_call_delta(&mut self, c: &Value, out: &mut Vec<StreamEvent>) {
        let id = str_at(c, "id").filter(|s| !s.is_empty());
        let index = match c.get("index").and_then(Value::as_u64) {
            Some(i) => i,
            // Servers that omit `index`: a new id starts a new call, pieces
            // without one continue the last call.
            None => match (id, self.calls.last_key_value()) {
                (Some(id), Some((&i, last))) if last.id == id => i,
                (Some(_), Some((&i, _))) => i + 1,
                (None, Some((&i, _))) => i,
                (_, None) => 0,
            },
        };
        let call = self.calls.entry(index).or_default();
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.to_owned();
        }
        if let Some(f) = c.get("function") {
            if let Some(name) = str_at(f, "name").filter(|n| !n.is_empty())
                && call.name.is_empty()
            {
                call.name = name.to_owned();
            }
            match f.get("arguments") {
                Some(Value::String(s)) => call.arguments.push_str(s),
                Some(v @ Value::Object(_)) => call.arguments.push_str(&v.to_string()),
                _ => {}
            }
        }
        if !call.announced && !call.name.is_empty() {
            call.announced = true;
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            out.push(StreamEvent::ToolCall {
                id: call.id.clone(),
                name: call.name.clone(),
            });
        }
    }
}

/// The quirk of contract §1.4: some servers leave the whole answer in the
/// reasoning text and `content` empty. Then Qwen-native tool-call blocks
/// are recovered from it and the reasoning without its blocks becomes the
/// visible text. A turn with regular tool calls is left alone: that is a
/// reasoning model working normally, and its reasoning stays thinking.
/// Events for what was recovered go to `out` (streaming).
fn recover_from_reasoning(r: &mut ChatResponse, out: Option<&mut Vec<StreamEvent>>) {
    if !r.content.trim().is_empty() || r.thinking.is_empty() || !r.tool_calls.is_empty() {
        return;
    }
    r.tool_calls = qwen::recover_tool_calls(&r.thinking);
    r.content = qwen::display_text(&r.thinking);
    if !r.tool_calls.is_empty() {
        tracing::debug!(
            count = r.tool_calls.len(),
            "recovered tool calls from reasoning_content"
        );
    }
    if let Some(out) = out {
        if !r.content.is_empty() {
            out.push(StreamEvent::Text(r.content.clone()));
        }
        for c in &r.tool_calls {
            out.push(StreamEvent::ToolCall {
                id: c.id.clone(),
                name: c.name.clone(),
            });
        }
    }
}

fn first_choice(v: &Value) -> Option<&Value> {
    let choices = v.get("choices")?.as_array()?;
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
        .or_else(|| choices.first())
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `reasoning_content` (DeepSeek, llama.cpp, vLLM) or `reasoning`
/// (OpenRouter, newer vLLM).
fn reasoning(v: &Value) -> Option<&str> {
    str_at(v, "reasoning_content").or_else(|| str_at(v, "reasoning"))
}

/// Message content as text: a string, or the `text` of content parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| str_at(p, "text"))
            .collect::<String>(),
        _ => String::new(),
    }
}

/// Arguments as JSON text: a string as sent, an object (some servers)
/// serialized, nothing as `{}`.
fn arguments_text(args: Option<&Value>) -> String {
    match args {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => "{}".to_owned(),
    }
}

fn usage(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n(u.get("prompt_tokens")),
        output_tokens: n(u.get("completion_tokens")),
        cached_input_tokens: n(u.pointer("/prompt_tokens_details/cached_tokens")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ToolResult, ToolSpec};

    fn sse(data: &str) -> SseEvent {
        SseEvent {
            data: data.to_owned(),
            ..SseEvent::default()
        }
    }

    #[test]
    fn body_carries_history_tools_and_stream_options() {
        let messages = vec![
            Message::User {
                content: "hi".into(),
            },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"/a"}"#.into(),
                }],
            },
            Message::ToolResults {
                results: vec![ToolResult {
                    call_id: "c1".into(),
                    name: "read_file".into(),
                    content: "data".into(),
                    is_error: false,
                }],
            },
        ];
        let tools = vec![ToolSpec {
            name: "read_file".into(),
            description: "Read".into(),
            parameters: json!({"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}),
        }];
        let req = ChatRequest {
            system: "sys",
            messages: &messages,
            tools: &tools,
            response_format: None,
        };
        let body = request_body("m", true, &req);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"/a\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "data"},
                ],
                "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read", "parameters": tools[0].parameters}}],
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        let plain = request_body("m", false, &req);
        assert!(plain.get("stream").is_none() && plain.get("max_tokens").is_none());
    }

    #[test]
    fn response_format_becomes_json_schema() {
        let spec = json!({"name": "answer", "schema": {"type": "object"}});
        assert_eq!(
            response_format(&spec),
            json!({"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}})
        );
        let spec = json!({"name": "a", "schema": {}, "strict": false});
        assert_eq!(
            response_format(&spec)["json_schema"]["strict"],
            json!(false)
        );
    }

    #[test]
    fn stream_assembles_text_reasoning_tool_calls_and_usage() {
        let mut s = OpenAiDialect.stream_decoder();
        let mut out = Vec::new();
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{\"x\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"y\":1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":2}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            "[DONE]",
        ];
        for c in chunks {
            s.event(&sse(c), &mut out).expect("chunk");
        }
        assert!(s.is_done());
        let r = s.finish(&mut out).expect("complete");
        assert_eq!(r.content, "Hello");
        assert_eq!(r.thinking, "think");
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            r.tool_calls,
            vec![
                ToolCall {
                    id: "a".into(),
                    name: "f".into(),
                    arguments: r#"{"y":1}"#.into()
                },
                ToolCall {
                    id: "b".into(),
                    name: "g".into(),
                    arguments: r#"{"x":2}"#.into()
                },
            ]
        );
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 10,
                output_tokens: 5,
                cached_input_tokens: 4
            }
        );
        assert_eq!(
            out,
            vec![
                StreamEvent::Thinking("think".into()),
                StreamEvent::Text("Hel".into()),
                StreamEvent::Text("lo".into()),
                StreamEvent::ToolCall {
                    id: "a".into(),
                    name: "f".into()
                },
                StreamEvent::ToolCall {
                    id: "b".into(),
                    name: "g".into()
                },
            ]
        );
    }

    #[test]
    fn stream_cut_short_is_a_network_error() {
        let mut s = OpenAiDialect.stream_decoder();
        let mut out = Vec::new();
        s.event(
            &sse(r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#),
            &mut out,
        )
        .expect("chunk");
        let e = s.finish(&mut out).expect_err("incomplete");
        assert_eq!(e.kind, ErrorKind::Network);
    }

    #[test]
    fn stream_error_chunk_is_classified() {
        let mut s = OpenAiDialect.stream_decoder();
        let e = s
            .event(
                &sse(r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#),
                &mut Vec::new(),
            )
            .expect_err("error chunk");
        assert_eq!(e.kind, ErrorKind::RateLimit);
    }

    #[test]
    fn plain_body_keeps_tool_calls_whatever_the_finish_reason() {
        let body = json!({
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
            }}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}
        });
        let r = OpenAiDialect
            .parse_body(body.to_string().as_bytes())
            .expect("ok");
        assert_eq!(r.tool_calls.len(), 1);
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.usage.input_tokens, 3);
    }

    #[test]
    fn plain_body_recovers_qwen_calls_from_reasoning() {
        let body = json!({
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "",
                "reasoning_content": "I will list.\n<tool_call>\n<function=list_directory>\n<parameter=path>\n/tmp\n</parameter>\n</function>\n</tool_call>"
            }}]
        });
        let r = OpenAiDialect
            .parse_body(body.to_string().as_bytes())
            .expect("ok");
        assert_eq!(r.tool_calls.len(), 1);
        assert_eq!(r.tool_calls[0].id, "qwen-recovered-0");
        assert_eq!(r.tool_calls[0].arguments, r#"{"path":"/tmp"}"#);
        assert_eq!(r.content, "I will list.");
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        let e = OpenAiDialect.parse_body(b"<html>").expect_err("not JSON");
        assert_eq!(e.kind, ErrorKind::InvalidResponse);
        let e = OpenAiDialect.parse_body(b"{}").expect_err("no choices");
        assert_eq!(e.kind, ErrorKind::InvalidResponse);
    }
}
