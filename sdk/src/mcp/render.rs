//! The text a model sees for an MCP result (contract §5.4).

use serde_json::Value;

/// Output longer than this many bytes is cut (at a character boundary).
pub const MAX_OUTPUT_BYTES: usize = 8000;

/// Appended to cut output.
pub const TRUNCATED_SUFFIX: &str = "\n... (output truncated)";

/// Renders a result document: a failure is `MCP Error: <error | first text
/// | unknown error>`; a success is its text blocks joined by newlines,
/// `(no output)` when there are none, capped at [`MAX_OUTPUT_BYTES`]. A
/// `content` that is not a list of blocks is shown as its raw JSON.
pub fn render_result(result: &Value) -> String {
    let success = result.get("success").and_then(Value::as_bool) == Some(true);
    let content = result.get("content").unwrap_or(&Value::Null);
    let blocks = content.as_array();
    let texts = || -> Vec<&str> {
        blocks
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str).unwrap_or("text") == "text")
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect()
    };
    if !success {
        let error = result
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .or_else(|| texts().into_iter().find(|t| !t.is_empty()))
            .unwrap_or("unknown error");
        return format!("MCP Error: {error}");
    }
    let out = match (content, blocks) {
        (Value::Null, _) => String::new(),
        (_, Some(_)) => texts().join("\n"),
        (Value::String(s), None) => s.clone(),
        (other, None) => other.to_string(),
    };
    if out.is_empty() {
        return "(no output)".to_owned();
    }
    cap(out)
}

fn cap(mut s: String) -> String {
    if s.len() <= MAX_OUTPUT_BYTES {
        return s;
    }
    let end = s.floor_char_boundary(MAX_OUTPUT_BYTES);
    s.truncate(end);
    s.push_str(TRUNCATED_SUFFIX);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_render_as_upstream() {
        let r = |v| render_result(&v);
        assert_eq!(
            r(
                json!({"id":"1","success":true,"content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}]})
            ),
            "a\nb"
        );
        assert_eq!(
            r(json!({"id":"1","success":true,"content":[]})),
            "(no output)"
        );
        assert_eq!(r(json!({"id":"1","success":true})), "(no output)");
        assert_eq!(r(json!({"id":"1","success":true,"content":"raw"})), "raw");
        assert_eq!(
            r(json!({"id":"1","success":true,"content":{"x":1}})),
            r#"{"x":1}"#
        );
        assert_eq!(
            r(json!({"id":"1","success":false,"error":"boom"})),
            "MCP Error: boom"
        );
        assert_eq!(
            r(
                json!({"id":"1","success":false,"isError":true,"content":[{"type":"text","text":"bad"}]})
            ),
            "MCP Error: bad"
        );
        assert_eq!(
            r(json!({"id":"1","success":false})),
            "MCP Error: unknown error"
        );
    }

    #[test]
    fn long_output_is_cut_on_a_char_boundary() {
        let text = "é".repeat(5000); // 10000 bytes
        let out = render_result(&json!({"success":true,"content":[{"type":"text","text":text}]}));
        let body = out.strip_suffix(TRUNCATED_SUFFIX).unwrap();
        assert_eq!(body.len(), MAX_OUTPUT_BYTES);
        let exact = "x".repeat(MAX_OUTPUT_BYTES);
        let out = render_result(&json!({"success":true,"content":[{"type":"text","text":exact}]}));
        assert_eq!(out.len(), MAX_OUTPUT_BYTES);
    }
}
