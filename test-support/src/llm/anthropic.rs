//! The Anthropic Messages dialect: reading a request, writing a reply as
//! one JSON body or as the SSE event sequence.

use serde_json::{Value, json};

use super::ReplyCtx;
use super::check::{self, Facts};
use super::script::{ErrorReply, split_chars};

/// Pulls the checked facts out of a Messages request.
pub(crate) fn facts(body: &Value) -> Facts {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_user = |m: &&Value| m.get("role").and_then(Value::as_str) == Some("user");
    let blocks = |m: &Value| -> Vec<Value> {
        match m.get("content") {
            Some(Value::Array(b)) => b.clone(),
            Some(Value::String(s)) => vec![json!({ "type": "text", "text": s })],
            _ => Vec::new(),
        }
    };
    let user_text = |m: &Value| -> Option<String> {
        let texts: Vec<String> = blocks(m)
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str).map(str::to_owned))
            .collect();
        (!texts.is_empty()).then(|| texts.join("\n"))
    };
    Facts {
        model: check::model(body),
        tools: body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect(),
        tool_results: messages
            .iter()
            .filter(is_user)
            .flat_map(blocks)
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|b| {
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                (id, check::text_of(b.get("content").unwrap_or(&Value::Null)))
            })
            .collect(),
        system: check::text_of(body.get("system").unwrap_or(&Value::Null)),
        // A user message made only of tool results is not what a test means
        // by "the last user message": take the last one with text.
        last_user: messages
            .iter()
            .rev()
            .filter(is_user)
            .find_map(user_text)
            .unwrap_or_default(),
        stream: check::stream_flag(body),
    }
}

/// `stop_reason`: scripted, else `tool_use` or `end_turn`.
fn stop_reason(r: &ReplyCtx<'_>) -> String {
    r.turn.stop_reason.clone().unwrap_or_else(|| {
        if r.turn.tool_calls.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        }
        .to_owned()
    })
}

/// The thinking block signature (opaque to clients, stable for tests).
fn signature(r: &ReplyCtx<'_>) -> String {
    format!("sig-{}", r.request_index)
}

fn usage(r: &ReplyCtx<'_>) -> Value {
    let u = r.turn.usage.unwrap_or_default();
    json!({
        "input_tokens": u.input.saturating_sub(u.cached),
        "output_tokens": u.output,
        "cache_read_input_tokens": u.cached,
        "cache_creation_input_tokens": 0,
    })
}

/// The complete (non-streaming) response body.
pub(crate) fn json_body(r: &ReplyCtx<'_>) -> Value {
    let mut content = Vec::new();
    if let Some(t) = &r.turn.thinking {
        content.push(json!({ "type": "thinking", "thinking": t, "signature": signature(r) }));
    }
    if let Some(t) = &r.turn.text {
        content.push(json!({ "type": "text", "text": t }));
    }
    for (i, c) in r.turn.tool_calls.iter().enumerate() {
        content.push(json!({
            "type": "tool_use",
            "id": r.turn.tool_call_id(r.turn_index, i),
            "name": c.name,
            "input": c.arguments_value(),
        }));
    }
    json!({
        "id": format!("msg_{}", r.request_index),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": stop_reason(r),
        "stop_sequence": null,
        "usage": usage(r),
    })
}

/// The SSE events of a streamed reply, each `event: <type>\ndata: ...\n\n`:
/// message_start, one start/delta.../stop group per content block
/// (thinking, text, tool_use with its input JSON in pieces), message_delta
/// with the stop reason and output tokens, message_stop.
pub(crate) fn sse_events(r: &ReplyCtx<'_>) -> Vec<String> {
    let mut out: Vec<Value> = Vec::new();
    let mut start_usage = usage(r);
    start_usage["output_tokens"] = json!(0);
    out.push(json!({ "type": "message_start", "message": {
        "id": format!("msg_{}", r.request_index),
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null,
        "usage": start_usage,
    }}));
    let mut index = 0;
    let mut block = |out: &mut Vec<Value>, start: Value, deltas: Vec<Value>| {
        out.push(json!({ "type": "content_block_start", "index": index, "content_block": start }));
        for d in deltas {
            out.push(json!({ "type": "content_block_delta", "index": index, "delta": d }));
        }
        out.push(json!({ "type": "content_block_stop", "index": index }));
        index += 1;
    };
    if let Some(t) = &r.turn.thinking {
        let mut deltas: Vec<Value> = split_chars(t, r.chunk_chars)
            .into_iter()
            .map(|p| json!({ "type": "thinking_delta", "thinking": p }))
            .collect();
        deltas.push(json!({ "type": "signature_delta", "signature": signature(r) }));
        block(
            &mut out,
            json!({ "type": "thinking", "thinking": "", "signature": "" }),
            deltas,
        );
    }
    if let Some(t) = &r.turn.text {
        let deltas = split_chars(t, r.chunk_chars)
            .into_iter()
            .map(|p| json!({ "type": "text_delta", "text": p }))
            .collect();
        block(&mut out, json!({ "type": "text", "text": "" }), deltas);
    }
    for (i, c) in r.turn.tool_calls.iter().enumerate() {
        let start = json!({
            "type": "tool_use",
            "id": r.turn.tool_call_id(r.turn_index, i),
            "name": c.name,
            "input": {},
        });
        let deltas = split_chars(&c.arguments_text(), r.chunk_chars)
            .into_iter()
            .map(|p| json!({ "type": "input_json_delta", "partial_json": p }))
            .collect();
        block(&mut out, start, deltas);
    }
    let output_tokens = r.turn.usage.unwrap_or_default().output;
    out.push(json!({
        "type": "message_delta",
        "delta": { "stop_reason": stop_reason(r), "stop_sequence": null },
        "usage": { "output_tokens": output_tokens },
    }));
    out.push(json!({ "type": "message_stop" }));
    out.into_iter()
        .map(|v| {
            let kind = v["type"].as_str().unwrap_or("unknown").to_owned();
            format!("event: {kind}\ndata: {v}\n\n")
        })
        .collect()
}

/// The error body Anthropic sends: `{"type":"error","error":{type, message}}`.
pub(crate) fn error_body(e: &ErrorReply) -> Value {
    let kind = e.code.clone().unwrap_or_else(|| {
        match e.status {
            400 | 413 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        }
        .to_owned()
    });
    json!({ "type": "error", "error": {
        "type": kind,
        "message": e.message.clone().unwrap_or_else(|| format!("scripted error {}", e.status)),
    }})
}
