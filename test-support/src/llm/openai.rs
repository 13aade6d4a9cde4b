//! The OpenAI Chat Completions dialect: reading a request, writing a reply
//! as one JSON body or as SSE chunks.

use serde_json::{Value, json};

use super::ReplyCtx;
use super::check::{self, Facts};
use super::script::{ErrorReply, split_chars};

/// Pulls the checked facts out of a Chat Completions request.
pub(crate) fn facts(body: &Value) -> Facts {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let content = |m: &Value| check::text_of(m.get("content").unwrap_or(&Value::Null));
    let mut tools: Vec<String> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    // The legacy `functions` field, still sent by some clients.
    tools.extend(
        body.get("functions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("name").and_then(Value::as_str))
            .map(str::to_owned),
    );
    Facts {
        model: check::model(body),
        tools,
        tool_results: messages
            .iter()
            .filter(|m| role(m) == "tool")
            .map(|m| {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                (id.to_owned(), content(m))
            })
            .collect(),
        system: messages
            .iter()
            .filter(|m| matches!(role(m).as_str(), "system" | "developer"))
            .map(content)
            .collect::<Vec<_>>()
            .join("\n"),
        last_user: messages
            .iter()
            .rev()
            .find(|m| role(m) == "user")
            .map(content)
            .unwrap_or_default(),
        stream: check::stream_flag(body),
    }
}

/// `finish_reason`: scripted, else `tool_calls` or `stop`.
fn finish_reason(r: &ReplyCtx<'_>) -> String {
    r.turn.finish_reason.clone().unwrap_or_else(|| {
        if r.turn.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
        .to_owned()
    })
}

/// `message.content`: the raw override, else the text, else `null` beside
/// tool calls and `""` without.
fn content(r: &ReplyCtx<'_>) -> Value {
    if let Some(raw) = &r.turn.content {
        return raw.clone();
    }
    match &r.turn.text {
        Some(t) => Value::String(t.clone()),
        None if !r.turn.tool_calls.is_empty() => Value::Null,
        None => Value::String(String::new()),
    }
}

fn usage(r: &ReplyCtx<'_>) -> Value {
    let u = r.turn.usage.unwrap_or_default();
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": { "cached_tokens": u.cached },
    })
}

/// The complete (non-streaming) response body.
pub(crate) fn json_body(r: &ReplyCtx<'_>) -> Value {
    let mut message = json!({ "role": "assistant", "content": content(r) });
    if let Some(t) = &r.turn.thinking {
        message["reasoning_content"] = json!(t);
    }
    if !r.turn.tool_calls.is_empty() {
        let calls: Vec<Value> = r
            .turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "id": r.turn.tool_call_id(r.turn_index, i),
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments_text() },
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-{}", r.request_index),
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason(r) }],
        "usage": usage(r),
    })
}

/// The SSE events of a streamed reply, each a complete `data: ...\n\n`:
/// role, reasoning deltas, content deltas, tool-call deltas (id and name
/// first, then the arguments in pieces), the finish reason, a usage chunk
/// with empty `choices`, and `[DONE]`.
pub(crate) fn sse_events(r: &ReplyCtx<'_>) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": format!("chatcmpl-{}", r.request_index),
            "object": "chat.completion.chunk",
            "created": r.created,
            "model": r.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    };
    let mut out = Vec::new();
    let content = content(r);
    let first_content = if content.is_null() {
        Value::Null
    } else {
        json!("")
    };
    out.push(chunk(
        json!({ "role": "assistant", "content": first_content }),
        Value::Null,
    ));
    if let Some(t) = &r.turn.thinking {
        for piece in split_chars(t, r.chunk_chars) {
            out.push(chunk(json!({ "reasoning_content": piece }), Value::Null));
        }
    }
    match &content {
        Value::String(s) => {
            for piece in split_chars(s, r.chunk_chars) {
                out.push(chunk(json!({ "content": piece }), Value::Null));
            }
        }
        Value::Null => {}
        // An unusual raw override (e.g. content parts) goes out in one delta.
        other => out.push(chunk(json!({ "content": other }), Value::Null)),
    }
    for (i, c) in r.turn.tool_calls.iter().enumerate() {
        let head = json!({ "tool_calls": [{
            "index": i,
            "id": r.turn.tool_call_id(r.turn_index, i),
            "type": "function",
            "function": { "name": c.name, "arguments": "" },
        }]});
        out.push(chunk(head, Value::Null));
        for piece in split_chars(&c.arguments_text(), r.chunk_chars) {
            let delta =
                json!({ "tool_calls": [{ "index": i, "function": { "arguments": piece } }] });
            out.push(chunk(delta, Value::Null));
        }
    }
    out.push(chunk(json!({}), json!(finish_reason(r))));
    let mut usage_chunk = chunk(json!({}), Value::Null);
    usage_chunk["choices"] = json!([]);
    usage_chunk["usage"] = usage(r);
    out.push(usage_chunk);
    let mut events: Vec<String> = out.into_iter().map(|v| format!("data: {v}\n\n")).collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// The error body OpenAI sends: `{"error": {message, type, code}}`.
pub(crate) fn error_body(e: &ErrorReply) -> Value {
    let kind = match e.status {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_exceeded",
        _ => "server_error",
    };
    json!({ "error": {
        "message": e.message.clone().unwrap_or_else(|| format!("scripted error {}", e.status)),
        "type": kind,
        "param": null,
        "code": e.code,
    }})
}
