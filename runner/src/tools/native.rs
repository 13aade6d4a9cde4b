//! Native sidecar tools (contract §4.4): tools a SkillPack declares in its
//! sidecar's manifest, each call run as an argv-mode exec request in that
//! sidecar.
//!
//! The controller writes the manifest into a ConfigMap mounted read-only at
//! `SIDECAR_TOOLS_MANIFEST_PATH`; [`load_native_tools`] waits up to
//! [`MANIFEST_WAIT`] for it. That wait polls every
//! [`MANIFEST_POLL_INTERVAL`] instead of using the `/ipc` watcher: the mount
//! is usually there at start, and a ConfigMap file is a symlink into a
//! `..data/` directory swapped by rename, which the watcher (regular files
//! only, one directory) is not built for.
//!
//! A call becomes `argv = exec + [subcommand] + ["--" if any positional
//! args are declared] + the positional values in declared order`, exactly as
//! upstream builds it. Values are never put through a shell, so a newline or
//! a `;` in a value stays part of one argument. In `stdin` input mode the
//! other arguments go to the program's stdin as one JSON object.

use agentpod_sdk::skill::is_reserved_tool_name;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentpod_sdk::exec::{ExecClient, normalize_target};
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::exec::NATIVE_TOOL_TIMEOUT_SECS;
use agentpod_sdk::wire::manifest::DEFAULT_PARAMETERS;
use agentpod_sdk::wire::{ExecRequest, InputMode, SidecarTool};
use async_trait::async_trait;
use serde_json::Value;

use super::events::ToolEvents;
use super::execute_command::{dispatch, wait_for};

/// How long the runner waits for the manifest to appear (upstream: 5 s).
pub const MANIFEST_WAIT: Duration = Duration::from_secs(5);

/// How often the manifest path is looked at while waiting.
pub const MANIFEST_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One native sidecar tool.
#[derive(Debug, Clone)]
pub struct NativeTool {
    entry: SidecarTool,
    exec: ExecClient,
    spec: ToolSpec,
    events: ToolEvents,
}

impl NativeTool {
    /// A tool for one manifest entry; its parameters default to
    /// `{"type":"object","properties":{}}` when the entry has none.
    pub fn new(entry: SidecarTool, exec: ExecClient) -> Self {
        let parameters = match &entry.parameters {
            Some(p @ Value::Object(_)) => p.clone(),
            other => {
                if other.as_ref().is_some_and(|v| !v.is_null()) {
                    tracing::warn!(tool = %entry.name, "sidecar tool parameters are not a JSON object; using an empty schema");
                }
                default_parameters()
            }
        };
        let spec = ToolSpec {
            name: entry.name.clone(),
            description: entry.description.clone(),
            parameters,
        };
        Self {
            entry,
            exec,
            spec,
            events: ToolEvents::default(),
        }
    }

    /// Reports each call as an `exec_request` event (detailed log).
    pub fn with_events(mut self, events: ToolEvents) -> Self {
        self.events = events;
        self
    }

    /// The manifest entry this tool runs.
    pub fn entry(&self) -> &SidecarTool {
        &self.entry
    }
}

#[async_trait]
impl Tool for NativeTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, ctx: &ToolContext) -> String {
        let req = build_request(&self.entry, &args);
        let wait = wait_for(NATIVE_TOOL_TIMEOUT_SECS, ctx.deadline);
        dispatch(&self.exec, req, wait, ctx, &self.entry.name, &self.events).await
    }
}

fn default_parameters() -> Value {
    // A constant that is valid JSON; pinned by a test.
    serde_json::from_str(DEFAULT_PARAMETERS).unwrap_or_else(|_| Value::Object(Default::default()))
}

/// The argv-mode request (without an id) for one call: argv as upstream
/// builds it, stdin in `stdin` mode, `workDir` `/workspace`, timeout 120 s,
/// the entry's normalised target.
pub fn build_request(entry: &SidecarTool, args: &Args) -> ExecRequest {
    let mut argv = entry.exec.clone();
    if !entry.subcommand.is_empty() {
        argv.push(entry.subcommand.clone());
    }
    if !entry.positional_args.is_empty() {
        argv.push("--".to_owned());
    }
    let mut rest = args.clone();
    for key in &entry.positional_args {
        if let Some(v) = rest.remove(key) {
            argv.push(positional_value(&v));
        }
    }
    let mut req = ExecRequest::argv("", argv);
    if entry.input_mode == InputMode::Stdin {
        req.stdin = go_json(&Value::Object(rest));
    }
    req.timeout = NATIVE_TOOL_TIMEOUT_SECS;
    req.target = normalize_target(&entry.target);
    req
}

/// One argument value as one argv element: strings verbatim, numbers as
/// their JSON text, `null` as an empty string, anything else as compact
/// JSON.
///
/// Upstream keeps a number's literal text (`json.Number`). Arguments reach
/// a tool already parsed, so here an integer prints exactly as sent and a
/// fraction prints in its shortest round-trip form: the same text for
/// everything a model normally writes (`3`, `-7`, `2.5`), but `1.50` becomes
/// `1.5` and `1e3` becomes `1000.0`.
pub fn positional_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => go_json(other),
    }
}

/// Compact JSON as Go's `json.Marshal` writes it: object keys sorted (as a
/// `serde_json::Map` without `preserve_order` already is), and `<`, `>`,
/// `&`, U+2028 and U+2029 escaped as `\u` sequences. Those characters can
/// only occur inside JSON strings, so escaping them in the serialised text
/// is exact.
pub fn go_json(v: &Value) -> String {
    // Serialising a `Value` cannot fail: every map key is a string.
    let s = serde_json::to_string(v).unwrap_or_default();
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Parses a manifest. An entry that does not decode is skipped with a
/// warning, not the whole manifest; an unknown `inputMode` means `args`,
/// as upstream treats it.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<SidecarTool>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let entries = match doc {
        Value::Object(mut m) => match m.remove("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err("\"tools\" is not an array".into()),
        },
        _ => return Err("the manifest is not a JSON object".into()),
    };
    let mut tools = Vec::with_capacity(entries.len());
    for (i, mut entry) in entries.into_iter().enumerate() {
        if let Some(mode) = entry.get_mut("inputMode")
            && !matches!(mode.as_str(), Some("args" | "stdin" | ""))
        {
            if !mode.is_null() {
                tracing::warn!(index = i, input_mode = %mode, "unknown sidecar tool inputMode; using args");
            }
            *mode = Value::from("args");
        }
        match serde_json::from_value::<SidecarTool>(entry) {
            Ok(t) => tools.push(t),
            Err(e) => {
                tracing::warn!(index = i, error = %e, "skipping an invalid sidecar tool entry")
            }
        }
    }
    Ok(tools)
}

/// Reads the manifest at `path`, waiting up to `wait` for it to appear (and,
/// should it be written in place, to parse). `None`, logged as a warning,
/// when there is still no usable manifest at the deadline.
pub async fn read_manifest(path: &Path, wait: Duration) -> Option<Vec<SidecarTool>> {
    let deadline = Instant::now() + wait;
    let mut last_error: Option<String> = None;
    loop {
        match tokio::fs::read(path).await {
            Ok(bytes) if !bytes.is_empty() => match parse_manifest(&bytes) {
                Ok(tools) => return Some(tools),
                Err(e) => last_error = Some(format!("cannot parse: {e}")),
            },
            Ok(_) => last_error = Some("the file is empty".into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => last_error = Some(format!("cannot read: {e}")),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            match last_error {
                Some(error) => tracing::warn!(
                    path = %path.display(), error,
                    "sidecar tool manifest unusable; native sidecar tools are unavailable for this run"
                ),
                None => tracing::warn!(
                    path = %path.display(), ?wait,
                    "sidecar tool manifest did not appear; native sidecar tools are unavailable for this run"
                ),
            }
            return None;
        }
        tokio::time::sleep(left.min(MANIFEST_POLL_INTERVAL)).await;
    }
}

/// Turns manifest entries into tools, in manifest order, skipping (with a
/// warning) names that are [reserved](is_reserved_tool_name), already `taken` (say by
/// MCP tools), repeated within the manifest, not valid tool names
/// (`[A-Za-z0-9_-]`, 1 to 64 bytes, which every provider accepts), or
/// entries with no program (`exec` empty). Each tool reports to `events`.
pub fn native_tools(
    entries: Vec<SidecarTool>,
    exec: &ExecClient,
    events: &ToolEvents,
    taken: impl Fn(&str) -> bool,
) -> Vec<Arc<dyn Tool>> {
    let mut names = std::collections::HashSet::new();
    let mut tools: Vec<Arc<dyn Tool>> = Vec::with_capacity(entries.len());
    for entry in entries {
        let name = entry.name.as_str();
        let skip = if !valid_name(name) {
            Some("not a valid tool name")
        } else if is_reserved_tool_name(name) {
            Some("collides with a built-in or memory tool")
        } else if taken(name) {
            Some("collides with an already registered tool")
        } else if names.contains(name) {
            Some("is declared twice")
        } else if entry.exec.is_empty() {
            Some("declares no program (exec is empty)")
        } else {
            None
        };
        if let Some(why) = skip {
            tracing::warn!(tool = name, why, "skipping sidecar tool");
            continue;
        }
        tracing::info!(
            tool = name, target = %entry.target, exec = ?entry.exec,
            subcommand = %entry.subcommand, "registered sidecar tool"
        );
        names.insert(entry.name.clone());
        tools.push(Arc::new(
            NativeTool::new(entry, exec.clone()).with_events(events.clone()),
        ));
    }
    tools
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// [`read_manifest`] then [`native_tools`]: the native sidecar tools of a
/// run, or none if the manifest does not show up within `wait` (use
/// [`MANIFEST_WAIT`]).
pub async fn load_native_tools(
    path: &Path,
    wait: Duration,
    exec: &ExecClient,
    taken: impl Fn(&str) -> bool,
) -> Vec<Arc<dyn Tool>> {
    load_native_tools_with_events(path, wait, exec, &ToolEvents::default(), taken).await
}

/// [`load_native_tools`] whose tools report `exec_request` events to
/// `events`.
pub async fn load_native_tools_with_events(
    path: &Path,
    wait: Duration,
    exec: &ExecClient,
    events: &ToolEvents,
    taken: impl Fn(&str) -> bool,
) -> Vec<Arc<dyn Tool>> {
    match read_manifest(path, wait).await {
        Some(entries) => native_tools(entries, exec, events, taken),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    fn entry(v: Value) -> SidecarTool {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn argv_is_exec_subcommand_dashdash_positionals() {
        let e = entry(json!({
            "name": "lookup", "target": " LLMFit ", "exec": ["llmfit", "--json"],
            "subcommand": "search", "positionalArgs": ["query", "limit", "missing", "ratio"]
        }));
        let r = build_request(
            &e,
            &args(
                json!({"query": "-rf /; echo\nhi", "limit": 10, "ratio": 2.5, "extra": "dropped"}),
            ),
        );
        assert_eq!(
            r.argv,
            [
                "llmfit",
                "--json",
                "search",
                "--",
                "-rf /; echo\nhi",
                "10",
                "2.5"
            ]
        );
        assert_eq!(r.command, "");
        assert_eq!(r.stdin, "", "args mode drops non-positional args");
        assert_eq!(r.work_dir, "/workspace");
        assert_eq!(r.timeout, 120);
        assert_eq!(r.target, "llmfit");
    }

    #[test]
    fn no_positionals_no_dashdash_no_subcommand() {
        let e = entry(json!({"name": "t", "exec": ["prog"]}));
        assert_eq!(build_request(&e, &args(json!({"a": 1}))).argv, ["prog"]);
        // Declared but all missing: the `--` is still there.
        let e = entry(json!({"name": "t", "exec": ["prog"], "positionalArgs": ["a"]}));
        assert_eq!(build_request(&e, &Args::new()).argv, ["prog", "--"]);
    }

    #[test]
    fn stdin_mode_sends_the_other_args_as_json() {
        let e = entry(json!({
            "name": "t", "exec": ["prog"], "inputMode": "stdin", "positionalArgs": ["id"]
        }));
        let r = build_request(
            &e,
            &args(json!({"id": 12345678901234567890u64, "z": [1, {"b": true}], "a": "x<y&z"})),
        );
        assert_eq!(r.argv, ["prog", "--", "12345678901234567890"]);
        assert_eq!(
            r.stdin, r#"{"a":"x\u003cy\u0026z","z":[1,{"b":true}]}"#,
            "sorted keys, Go's HTML escaping, positionals removed"
        );
        let r = build_request(&e, &Args::new());
        assert_eq!(r.stdin, "{}", "an empty object, never nothing");
    }

    #[test]
    fn positional_values_by_type() {
        assert_eq!(positional_value(&json!("a b")), "a b");
        assert_eq!(positional_value(&json!(-7)), "-7");
        assert_eq!(positional_value(&json!(0.25)), "0.25");
        assert_eq!(positional_value(&json!(true)), "true");
        assert_eq!(positional_value(&json!(null)), "");
        assert_eq!(
            positional_value(&json!({"k": [1, "v"]})),
            r#"{"k":[1,"v"]}"#
        );
        assert_eq!(positional_value(&json!(["<a>"])), r#"["\u003ca\u003e"]"#);
        // Numbers keep the text the model wrote (for integers, exactly).
        let a: Args = serde_json::from_str(r#"{"n": 9007199254740993, "f": 1.5}"#).unwrap();
        assert_eq!(positional_value(&a["n"]), "9007199254740993");
        assert_eq!(positional_value(&a["f"]), "1.5");
    }

    #[test]
    fn go_json_escapes_like_go() {
        assert_eq!(go_json(&json!("a\u{2028}b\u{2029}")), r#""a\u2028b\u2029""#);
        assert_eq!(go_json(&json!({"q": "plain"})), r#"{"q":"plain"}"#);
        assert_eq!(go_json(&json!("tab\tnl\n")), r#""tab\tnl\n""#);
    }

    #[test]
    fn parameters_default_to_an_empty_object_schema() {
        let exec = ExecClient::new(Default::default());
        let t = NativeTool::new(entry(json!({"name": "t", "exec": ["p"]})), exec.clone());
        assert_eq!(
            t.spec().parameters,
            json!({"type": "object", "properties": {}})
        );
        let schema =
            json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]});
        let t = NativeTool::new(
            entry(json!({"name": "t", "description": "d", "exec": ["p"], "parameters": schema})),
            exec,
        );
        assert_eq!(t.spec().parameters, schema);
        assert_eq!(t.spec().description, "d");
    }

    #[test]
    fn manifest_entries_are_parsed_one_by_one() {
        let m = br#"{"tools":[
            {"name":"a","exec":["p"],"inputMode":"weird"},
            {"name":"b","exec":"not-a-list"},
            {"name":"c","exec":["p"],"inputMode":"stdin","positionalArgs":null},
            {"name":"d","exec":["p"],"inputMode":null}
        ]}"#;
        let tools = parse_manifest(m).unwrap();
        let names: Vec<_> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "d"]);
        assert_eq!(tools[0].input_mode, InputMode::Args);
        assert_eq!(tools[1].input_mode, InputMode::Stdin);
        assert_eq!(tools[2].input_mode, InputMode::Args);
        assert!(parse_manifest(b"{}").unwrap().is_empty());
        assert!(parse_manifest(br#"{"tools":null}"#).unwrap().is_empty());
        assert!(parse_manifest(br#"{"tools":{}}"#).is_err());
        assert!(parse_manifest(b"[]").is_err());
        assert!(parse_manifest(b"{\"tools\":[").is_err());
    }

    #[test]
    fn reserved_and_invalid_names_are_skipped() {
        for n in [
            "execute_command",
            "edit_file",
            "memory_search",
            "memory_list",
            "workflow_memory_store",
            "workflow_memory_anything",
        ] {
            assert!(is_reserved_tool_name(n), "{n}");
        }
        assert!(!is_reserved_tool_name("kubectl_get"));
        let entries = [
            "ok",
            "edit_file",
            "",
            "has space",
            "dup",
            "dup",
            "mcp_x",
            "noexec",
        ]
        .iter()
        .map(|n| {
            let exec: Vec<&str> = if *n == "noexec" { vec![] } else { vec!["p"] };
            entry(json!({"name": n, "exec": exec}))
        })
        .collect();
        let tools = native_tools(
            entries,
            &ExecClient::new(Default::default()),
            &ToolEvents::default(),
            |n| n.starts_with("mcp_"),
        );
        let names: Vec<_> = tools.iter().map(|t| t.spec().name.clone()).collect();
        assert_eq!(names, ["ok", "dup"]);
    }
}
