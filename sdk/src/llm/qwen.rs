//! Recovery of Qwen-native tool calls that a server left in the reasoning
//! text instead of parsing them into `tool_calls` (contract §1.4).
//!
//! Some OpenAI-compatible servers (llama.cpp, vLLM and LM Studio with Qwen
//! models and a mismatched chat template) answer with empty `content` and
//! put the model's raw output in `reasoning_content`, tool calls included:
//!
//! ```text
//! <tool_call>
//! <function=read_file>
//! <parameter=path>
//! /etc/hosts
//! </parameter>
//! </function>
//! </tool_call>
//! ```
//!
//! [`recover_tool_calls`] turns those blocks into [`ToolCall`]s and
//! [`display_text`] removes them (and `<think>` / `<tool_use>` blocks) so
//! what is left can be shown as the answer.

use serde_json::{Map, Value};

use super::ToolCall;

/// Prefix of the ids given to recovered calls (`qwen-recovered-0`, ...).
pub const RECOVERED_ID_PREFIX: &str = "qwen-recovered-";

const TOOL_CALL: (&str, &str) = ("<tool_call>", "</tool_call>");
const THINK: (&str, &str) = ("<think>", "</think>");
const TOOL_USE: (&str, &str) = ("<tool_use>", "</tool_use>");

/// Every tool call found in `<tool_call>` blocks of `text`, in order.
///
/// Both the XML-ish Qwen 3 form (`<function=NAME><parameter=K>V</parameter>`)
/// and the Hermes JSON form (`{"name": .., "arguments": {..}}`) are read.
/// Parameter values become booleans, integers or floats when they parse as
/// one, strings otherwise. A block without a function name is skipped.
pub fn recover_tool_calls(text: &str) -> Vec<ToolCall> {
    blocks(text, TOOL_CALL)
        .into_iter()
        .filter_map(parse_block)
        .enumerate()
        .map(|(i, (name, args))| ToolCall {
            id: format!("{RECOVERED_ID_PREFIX}{i}"),
            name,
            arguments: Value::Object(args).to_string(),
        })
        .collect()
}

/// `text` without `<tool_call>`, `<think>` and `<tool_use>` blocks, trimmed.
/// An unclosed block runs to the end of the text; a `</think>` with no
/// opening tag ends a reasoning preamble, which is removed with it.
pub fn display_text(text: &str) -> String {
    let mut s = text.to_owned();
    if let Some(end) = s.find(THINK.1)
        && !s[..end].contains(THINK.0)
    {
        s.replace_range(..end + THINK.1.len(), "");
    }
    for tags in [TOOL_CALL, THINK, TOOL_USE] {
        s = strip_blocks(&s, tags);
    }
    s.trim().to_owned()
}

/// The inner text of every `open ... close` block (unclosed: to the end).
fn blocks<'a>(text: &'a str, (open, close): (&str, &str)) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let inner = &rest[start + open.len()..];
        match inner.find(close) {
            Some(end) => {
                out.push(&inner[..end]);
                rest = &inner[end + close.len()..];
            }
            None => {
                out.push(inner);
                break;
            }
        }
    }
    out
}

fn strip_blocks(text: &str, (open, close): (&str, &str)) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + close.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse_block(inner: &str) -> Option<(String, Map<String, Value>)> {
    let inner = inner.trim();
    if inner.starts_with('{') {
        return parse_json_block(inner);
    }
    let start = inner.find("<function=")? + "<function=".len();
    let head = &inner[start..];
    let name_end = head.find('>')?;
    let name = head[..name_end].trim();
    if name.is_empty() {
        return None;
    }
    let body = &head[name_end + 1..];
    let body = body.find("</function>").map_or(body, |end| &body[..end]);
    let mut args = Map::new();
    let mut rest = body;
    while let Some(p) = rest.find("<parameter=") {
        let after = &rest[p + "<parameter=".len()..];
        let Some(key_end) = after.find('>') else {
            break;
        };
        let key = after[..key_end].trim().to_owned();
        let value_start = &after[key_end + 1..];
        // A value runs to `</parameter>`, or (models forget it) to the next
        // parameter, or to the end.
        let (value, next) = match value_start.find("</parameter>") {
            Some(end) => (
                &value_start[..end],
                &value_start[end + "</parameter>".len()..],
            ),
            None => match value_start.find("<parameter=") {
                Some(end) => (&value_start[..end], &value_start[end..]),
                None => (value_start, ""),
            },
        };
        args.insert(key, coerce(value.trim_matches(['\n', '\r'])));
        rest = next;
    }
    Some((name.to_owned(), args))
}

fn parse_json_block(inner: &str) -> Option<(String, Map<String, Value>)> {
    let v: Value = serde_json::from_str(inner).ok()?;
    let name = v.get("name")?.as_str()?.to_owned();
    let args = match v.get("arguments") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        _ => Map::new(),
    };
    Some((name, args))
}

/// A scalar parameter value: bool, integer or finite float when it parses as
/// one, the text otherwise.
fn coerce(raw: &str) -> Value {
    let t = raw.trim();
    match t {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && t.chars().any(|c| c.is_ascii_digit())
    {
        return Value::from(f);
    }
    Value::String(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(call: &ToolCall) -> Value {
        serde_json::from_str(&call.arguments).expect("arguments are JSON")
    }

    #[test]
    fn recovers_qwen_function_blocks_in_order() {
        let text = "Let me look.\n<tool_call>\n<function=read_file>\n<parameter=path>\n/etc/hosts\n</parameter>\n</function>\n</tool_call>\n<tool_call><function=execute_command><parameter=command>ls -la\n/tmp</parameter><parameter=timeout>30</parameter><parameter=force>true</parameter><parameter=ratio>0.5</parameter></function></tool_call>";
        let calls = recover_tool_calls(text);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].id, "qwen-recovered-0");
        assert_eq!(calls[0].name, "read_file");
        assert_eq!(args(&calls[0]), json!({"path": "/etc/hosts"}));
        assert_eq!(calls[1].id, "qwen-recovered-1");
        assert_eq!(calls[1].name, "execute_command");
        assert_eq!(
            args(&calls[1]),
            json!({"command": "ls -la\n/tmp", "timeout": 30, "force": true, "ratio": 0.5})
        );
    }

    #[test]
    fn scalar_coercion_keeps_text_that_does_not_parse() {
        assert_eq!(coerce("42"), json!(42));
        assert_eq!(coerce("-3"), json!(-3));
        assert_eq!(coerce("1.25"), json!(1.25));
        assert_eq!(coerce("false"), json!(false));
        assert_eq!(coerce("True"), json!("True"));
        assert_eq!(coerce("NaN"), json!("NaN"));
        assert_eq!(coerce("inf"), json!("inf"));
        assert_eq!(coerce(" 7 "), json!(7));
        assert_eq!(coerce("a b"), json!("a b"));
    }

    #[test]
    fn recovers_hermes_json_blocks_and_skips_nameless_ones() {
        let text = r#"<tool_call>{"name": "list_directory", "arguments": {"path": "/w"}}</tool_call><tool_call><function=></function></tool_call><tool_call>{"name":"x","arguments":"{\"a\":1}"}</tool_call>"#;
        let calls = recover_tool_calls(text);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "list_directory");
        assert_eq!(args(&calls[0]), json!({"path": "/w"}));
        assert_eq!(calls[1].id, "qwen-recovered-1");
        assert_eq!(args(&calls[1]), json!({"a": 1}));
    }

    #[test]
    fn unclosed_block_and_missing_parameter_close_still_recover() {
        let text = "<tool_call>\n<function=write_file>\n<parameter=path>/a\n<parameter=content>hi";
        let calls = recover_tool_calls(text);
        assert_eq!(calls.len(), 1);
        assert_eq!(args(&calls[0]), json!({"path": "/a", "content": "hi"}));
    }

    #[test]
    fn no_blocks_no_calls() {
        assert!(recover_tool_calls("just thinking about <function=x>").is_empty());
    }

    #[test]
    fn display_text_strips_blocks() {
        let text = "<think>hmm</think>Answer: <tool_use>x</tool_use>done.\n<tool_call><function=a></function></tool_call>";
        assert_eq!(display_text(text), "Answer: done.");
        assert_eq!(display_text("reasoning here</think>\nFinal"), "Final");
        assert_eq!(display_text("Before <tool_call><function=a>"), "Before");
        assert_eq!(display_text("plain"), "plain");
    }
}
