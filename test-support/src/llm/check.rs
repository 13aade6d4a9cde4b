//! Matching a request against a turn's [`Expect`] checks.

use axum::http::HeaderMap;
use serde_json::Value;

use super::script::{Dialect, Expect};

/// What the checks look at, pulled out of a request by its dialect.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub model: Option<String>,
    pub tools: Vec<String>,
    /// (call id, text content) of every tool result in the conversation.
    pub tool_results: Vec<(String, String)>,
    pub system: String,
    pub last_user: String,
    pub stream: bool,
}

/// Every check of `expect` that the request fails, as one line each.
pub(crate) fn mismatches(
    expect: &Expect,
    dialect: Dialect,
    facts: &Facts,
    headers: &HeaderMap,
    body: &Value,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(want) = expect.dialect
        && want != dialect
    {
        out.push(format!("dialect: expected {want}, got {dialect}"));
    }
    if let Some(want) = &expect.model
        && facts.model.as_deref() != Some(want.as_str())
    {
        out.push(format!("model: expected {want:?}, got {:?}", facts.model));
    }
    if let Some(want) = &expect.tools {
        let mut want = want.clone();
        want.sort();
        let mut got = facts.tools.clone();
        got.sort();
        if want != got {
            out.push(format!("tools: expected exactly {want:?}, got {got:?}"));
        }
    }
    for name in &expect.tools_include {
        if !facts.tools.contains(name) {
            out.push(format!("tools: expected {name:?} among {:?}", facts.tools));
        }
    }
    for want in &expect.tool_results {
        let found = facts.tool_results.iter().any(|(id, text)| {
            *id == want.id
                && want
                    .contains
                    .as_ref()
                    .is_none_or(|c| text.contains(c.as_str()))
        });
        if !found {
            out.push(format!(
                "tool_results: no result for {:?}{} among {:?}",
                want.id,
                want.contains
                    .as_ref()
                    .map(|c| format!(" containing {c:?}"))
                    .unwrap_or_default(),
                facts.tool_results
            ));
        }
    }
    if let Some(want) = &expect.system_contains
        && !facts.system.contains(want.as_str())
    {
        out.push(format!(
            "system prompt: expected it to contain {want:?}, got {:?}",
            facts.system
        ));
    }
    if let Some(want) = &expect.last_user_contains
        && !facts.last_user.contains(want.as_str())
    {
        out.push(format!(
            "last user message: expected it to contain {want:?}, got {:?}",
            facts.last_user
        ));
    }
    if let Some(want) = expect.stream
        && want != facts.stream
    {
        out.push(format!("stream: expected {want}, got {}", facts.stream));
    }
    for (name, want) in &expect.headers {
        match headers
            .get(name.as_str())
            .map(|v| v.to_str().unwrap_or("<non-UTF-8>"))
        {
            None => out.push(format!("header {name}: missing")),
            Some(v) if !v.contains(want.as_str()) => out.push(format!(
                "header {name}: expected it to contain {want:?}, got {v:?}"
            )),
            Some(_) => {}
        }
    }
    for (pointer, want) in &expect.body {
        let got = body.pointer(pointer);
        if got != Some(want) {
            out.push(format!("body {pointer}: expected {want}, got {got:?}"));
        }
    }
    out
}

/// The text of a message `content`: a string, or the `text` of every part
/// of an array (OpenAI content parts, Anthropic text blocks), joined.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The request's `stream` flag (absent or not a bool counts as false).
pub(crate) fn stream_flag(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

/// The request's `model` field.
pub(crate) fn model(body: &Value) -> Option<String> {
    body.get("model").and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::script::ExpectToolResult;
    use serde_json::json;

    #[test]
    fn reports_each_failed_check() {
        let expect = Expect {
            model: Some("m".into()),
            tools: Some(vec!["b".into(), "a".into()]),
            tool_results: vec![ExpectToolResult {
                id: "c1".into(),
                contains: Some("ok".into()),
            }],
            body: [("/temperature".to_string(), json!(0.5))].into(),
            ..Expect::default()
        };
        let facts = Facts {
            model: Some("m".into()),
            tools: vec!["a".into(), "b".into()],
            tool_results: vec![("c1".into(), "not good".into())],
            ..Facts::default()
        };
        let got = mismatches(
            &expect,
            Dialect::OpenAi,
            &facts,
            &HeaderMap::new(),
            &json!({}),
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("tool_results"));
        assert!(got[1].starts_with("body /temperature"));
    }
}
