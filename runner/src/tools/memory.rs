//! The memory tools (`memory_search`, `memory_store`, `memory_list`, and
//! `memory_update` / `memory_forget` when the server has them) over HTTP to
//! `MEMORY_SERVER_URL`, the start-of-run auto-context, the synchronous
//! end-of-run auto-store, and the legacy `__SYMPOZIUM_MEMORY__` marker
//! (contract §6.4, §1.9).

use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::envconf::{Env, parse_go_duration};
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::memory::{
    FEATURE_FORGET, FEATURE_UPDATE, ForgetRequest, ListQuery, MemoryClient, MemoryError,
    MemoryErrorKind, SearchRequest, StoreRequest, UpdateRequest, evidence_kind_rank,
    render_content, render_entries, render_for_context,
};
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::env::runner as var;
use async_trait::async_trait;
use serde_json::{Value, json};

use super::{int_arg, str_arg};

/// Auto-context: the task prefix used as the query.
pub const CONTEXT_QUERY_CHARS: usize = 200;
/// Auto-context: entries asked for.
pub const CONTEXT_TOP_K: i64 = 3;
/// Auto-context: deadline of the search.
pub const CONTEXT_TIMEOUT: Duration = Duration::from_secs(3);
/// Auto-context: most characters of the agent's own memory in the prompt.
pub const CONTEXT_MAX_CHARS: usize = 2000;
/// Auto-store: deadline of the store.
pub const AUTO_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// Memory settings (`MEMORY_*`, `WORKFLOW_*`).
#[derive(Debug, Clone, Default)]
pub struct MemoryConfig {
    /// `MEMORY_SERVER_URL`.
    pub server_url: Option<String>,
    /// `MEMORY_AUTO_STORE` (on unless `false|0|no|off`).
    pub auto_store: bool,
    /// `MEMORY_AUTO_STORE_MAX_TASK_BYTES` (500).
    pub auto_store_max_task_bytes: usize,
    /// `MEMORY_AUTO_STORE_MAX_RESPONSE_BYTES` (1000).
    pub auto_store_max_response_bytes: usize,
    /// `MEMORY_ENABLED`: the legacy marker protocol.
    pub legacy_enabled: bool,
    /// `WORKFLOW_MEMORY_SERVER_URL` and the membrane.
    pub workflow: Option<super::workflow_memory::WorkflowConfig>,
}

impl MemoryConfig {
    /// Reads the memory variables, recording invalid ones in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        let server_url = env.string(var::MEMORY_SERVER_URL);
        if let Some(u) = &server_url
            && let Err(e) = MemoryClient::new(u)
        {
            env.invalid(var::MEMORY_SERVER_URL, u, format!("an http(s) URL ({e})"));
        }
        let auto_store = env
            .string(var::MEMORY_AUTO_STORE)
            .is_none_or(|v| !is_falsey(&v));
        let bytes = |env: &mut Env, name: &str, default: usize| {
            env.parse::<usize>(name, "a byte count", |_| true)
                .unwrap_or(default)
        };
        Self {
            server_url,
            auto_store,
            auto_store_max_task_bytes: bytes(env, var::MEMORY_AUTO_STORE_MAX_TASK_BYTES, 500),
            auto_store_max_response_bytes: bytes(
                env,
                var::MEMORY_AUTO_STORE_MAX_RESPONSE_BYTES,
                1000,
            ),
            legacy_enabled: env.flag(var::MEMORY_ENABLED, false),
            workflow: super::workflow_memory::WorkflowConfig::from_env(env),
        }
    }
}

/// `MEMORY_AUTO_STORE`'s opt-out values.
pub fn is_falsey(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "no" | "off"
    )
}

/// A comma list, trimmed, empty items dropped.
pub(crate) fn comma_list(s: Option<String>) -> Vec<String> {
    s.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Records a problem unless `v` is a known evidence kind.
pub(crate) fn check_kind(env: &mut Env, name: &str, v: &str) {
    if evidence_kind_rank(v).is_none() {
        env.invalid(
            name,
            v,
            "tool_result, external_source, llm_interpretation or agent_opinion",
        );
    }
}

/// Records a problem unless `v` is a Go duration.
pub(crate) fn check_duration(env: &mut Env, name: &str, v: &str) {
    if parse_go_duration(v).is_none() {
        env.invalid(name, v, "a Go duration such as 72h");
    }
}

/// The text a model sees for a failed memory call.
pub(crate) fn error_text(e: &MemoryError) -> String {
    match e.kind() {
        // Upstream's texts for these two, exactly.
        MemoryErrorKind::Status | MemoryErrorKind::Server => e.to_string(),
        _ => format!("Error: {e}"),
    }
}

/// The first `n` characters of `s`.
pub(crate) fn prefix_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `s` cut to at most `max` bytes at a character boundary, with `...`
/// appended when cut.
pub fn cut_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let end = s.floor_char_boundary(max);
    format!("{}...", &s[..end])
}

/// Builds the memory tools for `client`; `memory_update` and
/// `memory_forget` only when the server says it has them.
pub async fn memory_tools(client: MemoryClient) -> Vec<Arc<dyn Tool>> {
    // A short, single probe: a server that is down must not hold up the run.
    let probe = client
        .clone()
        .with_timeout(Duration::from_secs(2))
        .with_retries(0, Duration::ZERO);
    let caps = match probe.capabilities().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "memory server capabilities unknown; offering the upstream tools only");
            agentpod_sdk::memory::Capabilities::upstream()
        }
    };
    let mut tools: Vec<Arc<dyn Tool>> = vec![
        Arc::new(MemoryTool::new(Kind::Search, client.clone())),
        Arc::new(MemoryTool::new(Kind::Store, client.clone())),
        Arc::new(MemoryTool::new(Kind::List, client.clone())),
    ];
    if caps.supports(FEATURE_UPDATE) {
        tools.push(Arc::new(MemoryTool::new(Kind::Update, client.clone())));
    }
    if caps.supports(FEATURE_FORGET) {
        tools.push(Arc::new(MemoryTool::new(Kind::Forget, client)));
    }
    tools
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Search,
    Store,
    List,
    Update,
    Forget,
}

/// One of the memory tools.
#[derive(Debug)]
pub struct MemoryTool {
    kind: Kind,
    client: MemoryClient,
    spec: ToolSpec,
}

impl MemoryTool {
    fn new(kind: Kind, client: MemoryClient) -> Self {
        let (name, description, parameters) = match kind {
            Kind::Search => (
                "memory_search",
                "Search your persistent memory for knowledge from earlier runs (full-text).",
                json!({"type":"object","properties":{
                    "query":{"type":"string","description":"What to look for"},
                    "top_k":{"type":"integer","description":"How many results (default 5)"}
                },"required":["query"]}),
            ),
            Kind::Store => (
                "memory_store",
                "Save a fact, decision or finding to your persistent memory for future runs.",
                json!({"type":"object","properties":{
                    "content":{"type":"string","description":"What to remember"},
                    "tags":{"type":"array","items":{"type":"string"},"description":"Tags for later filtering"}
                },"required":["content"]}),
            ),
            Kind::List => (
                "memory_list",
                "List your most recent memories, optionally filtered by tag.",
                json!({"type":"object","properties":{
                    "tags":{"type":"string","description":"Only entries whose tags contain this text"},
                    "limit":{"type":"integer","description":"How many entries (default 20)"}
                }}),
            ),
            Kind::Update => (
                "memory_update",
                "Replace one of your memories (by id) with corrected content; the old one stays in its history.",
                json!({"type":"object","properties":{
                    "id":{"type":"integer","description":"The memory to replace"},
                    "content":{"type":"string","description":"The corrected text"},
                    "tags":{"type":"array","items":{"type":"string"},"description":"New tags (default: keep)"}
                },"required":["id","content"]}),
            ),
            Kind::Forget => (
                "memory_forget",
                "Forget one of your memories (by id) that is wrong or obsolete.",
                json!({"type":"object","properties":{
                    "id":{"type":"integer","description":"The memory to forget"}
                },"required":["id"]}),
            ),
        };
        Self {
            kind,
            client,
            spec: ToolSpec {
                name: name.into(),
                description: description.into(),
                parameters,
            },
        }
    }

    async fn run(&self, args: Args) -> Result<String, String> {
        match self.kind {
            Kind::Search => {
                require(&args, "query")?;
                let raw = self
                    .client
                    .post_raw("search", &Value::Object(args))
                    .await
                    .map_err(|e| error_text(&e))?;
                Ok(render_content(raw.as_ref()))
            }
            Kind::Store => {
                require(&args, "content")?;
                let raw = self
                    .client
                    .post_raw("store", &Value::Object(args))
                    .await
                    .map_err(|e| error_text(&e))?;
                Ok(render_content(raw.as_ref()))
            }
            Kind::List => {
                let limit = int_arg(&args, "limit").map_err(|e| format!("Error: {e}"))?;
                let query = ListQuery {
                    tags: str_arg(&args, "tags").unwrap_or_default().to_owned(),
                    limit: limit
                        .filter(|n| *n > 0)
                        .map_or(20, |n| u32::try_from(n).unwrap_or(u32::MAX)),
                    ..ListQuery::default()
                };
                let entries = self.client.list(&query).await.map_err(|e| error_text(&e))?;
                Ok(render_entries(&entries))
            }
            Kind::Update => {
                let id = int_arg(&args, "id")
                    .map_err(|e| format!("Error: {e}"))?
                    .ok_or("Error: id is required")?;
                require(&args, "content")?;
                let tags = args.get("tags").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                });
                let req = UpdateRequest {
                    id,
                    content: str_arg(&args, "content").unwrap_or_default().to_owned(),
                    tags,
                    ..UpdateRequest::default()
                };
                let r = self.client.update(&req).await.map_err(|e| error_text(&e))?;
                Ok(format!("Memory #{} now replaces #{}", r.id, r.supersedes))
            }
            Kind::Forget => {
                let id = int_arg(&args, "id")
                    .map_err(|e| format!("Error: {e}"))?
                    .ok_or("Error: id is required")?;
                let req = ForgetRequest {
                    id,
                    ..ForgetRequest::default()
                };
                let r = self.client.forget(&req).await.map_err(|e| error_text(&e))?;
                Ok(format!("Memory #{} forgotten", r.id))
            }
        }
    }
}

fn require(args: &Args, key: &str) -> Result<(), String> {
    match str_arg(args, key) {
        Some(s) if !s.trim().is_empty() => Ok(()),
        _ => Err(format!("Error: {key} is required")),
    }
}

#[async_trait]
impl Tool for MemoryTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        self.run(args).await.unwrap_or_else(|e| e)
    }
}

/// The start-of-run search: entries relevant to `task`, rendered for the
/// prompt within `max_chars`; empty when none or on any failure.
pub async fn auto_context(client: &MemoryClient, req: SearchRequest, max_chars: usize) -> String {
    let client = client
        .clone()
        .with_timeout(CONTEXT_TIMEOUT)
        .with_retries(0, Duration::ZERO);
    match client.search(&req).await {
        Ok(entries) => render_for_context(&entries, max_chars),
        Err(e) => {
            tracing::warn!(error = %e, "memory auto-context search failed; continuing without it");
            String::new()
        }
    }
}

/// The search the auto-context sends for `task`.
pub fn context_search(task: &str) -> SearchRequest {
    let mut req = SearchRequest::new(prefix_chars(task, CONTEXT_QUERY_CHARS));
    req.top_k = CONTEXT_TOP_K;
    req
}

/// Stores a summary of a successful run (synchronously, bounded by
/// [`AUTO_STORE_TIMEOUT`]); failures are logged, never fatal.
pub async fn auto_store(client: &MemoryClient, cfg: &MemoryConfig, task: &str, response: &str) {
    let content = format!(
        "Task: {}\n\nResponse: {}",
        cut_bytes(task, cfg.auto_store_max_task_bytes),
        cut_bytes(response, cfg.auto_store_max_response_bytes)
    );
    let client = client
        .clone()
        .with_timeout(AUTO_STORE_TIMEOUT)
        .with_retries(0, Duration::ZERO);
    match client
        .store(&StoreRequest::new(content, &["auto", "agent-run"]))
        .await
    {
        Ok(r) => tracing::info!(id = r.id, "stored the run in memory"),
        Err(e) => tracing::warn!(error = %e, "memory auto-store failed"),
    }
}

/// End of a successful run, step 1 of contract §1.9: the synchronous
/// auto-store, unless `MEMORY_AUTO_STORE` opts out or the answer is empty.
pub async fn auto_store_run(client: &MemoryClient, cfg: &MemoryConfig, task: &str, response: &str) {
    if cfg.auto_store && !response.is_empty() {
        auto_store(client, cfg, task, response).await;
    }
}

/// The legacy memory file inside the memory mount (key `MEMORY.md` of the
/// `<agent>-memory` ConfigMap).
pub const LEGACY_MEMORY_FILE: &str = "MEMORY.md";

/// The task as the model sees it with legacy memory (contract §1.9, §6.4):
/// with `MEMORY_ENABLED=true` and a non-blank `<memory_root>/MEMORY.md`, the
/// file is prepended to the task under `## Your Memory`, the task following
/// under `## Current Task`. Otherwise (disabled, no file, unreadable, blank)
/// the task is unchanged.
pub fn legacy_task(cfg: &MemoryConfig, memory_root: &std::path::Path, task: &str) -> String {
    if !cfg.legacy_enabled {
        return task.to_owned();
    }
    let path = memory_root.join(LEGACY_MEMORY_FILE);
    let memory = match std::fs::read_to_string(&path) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no legacy memory file");
            return task.to_owned();
        }
    };
    let memory = memory.trim();
    if memory.is_empty() {
        return task.to_owned();
    }
    tracing::info!(path = %path.display(), bytes = memory.len(), "prepended legacy memory to the task");
    format!(
        "## Your Memory\nThe following is your persistent memory from prior runs:\n\n{memory}\n\n## Current Task\n{task}"
    )
}

/// End of a run, step 2 of contract §1.9 (`MEMORY_ENABLED=true`): prints
/// the last memory block of the response as the memory marker to `out`,
/// then strips every block from the response unless `debug`.
pub fn legacy_marker(
    cfg: &MemoryConfig,
    debug: bool,
    result: &mut agentpod_sdk::wire::AgentResult,
    out: &mut dyn std::io::Write,
) {
    use agentpod_sdk::wire::marker::{extract_memory, strip_memory, write_memory_marker};
    if !cfg.legacy_enabled {
        return;
    }
    if let Some(content) = extract_memory(&result.response) {
        if let Err(e) = write_memory_marker(out, content) {
            tracing::error!(error = %e, "cannot print the memory marker");
        }
        let _ = out.flush();
    }
    if !debug {
        result.response = strip_memory(&result.response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_store_opt_out_values() {
        for v in ["false", "0", "no", "off", " OFF "] {
            assert!(is_falsey(v), "{v}");
        }
        for v in ["true", "1", "yes", ""] {
            assert!(!is_falsey(v), "{v}");
        }
        let c = MemoryConfig::from_env(&mut Env::from_map([("MEMORY_AUTO_STORE", "No")]));
        assert!(!c.auto_store);
        let c = MemoryConfig::from_env(&mut Env::from_map([("X", "1")]));
        assert!(c.auto_store);
        assert_eq!(
            (c.auto_store_max_task_bytes, c.auto_store_max_response_bytes),
            (500, 1000)
        );
    }

    #[test]
    fn byte_caps_are_char_safe() {
        assert_eq!(cut_bytes("abc", 3), "abc");
        assert_eq!(cut_bytes("abcd", 3), "abc...");
        assert_eq!(cut_bytes("éé", 3), "é...");
        assert_eq!(prefix_chars("ééé", 2), "éé");
        assert_eq!(context_search(&"x".repeat(300)).query.len(), 200);
    }

    #[test]
    fn legacy_memory_is_prepended_to_the_task() {
        let t = tempfile::tempdir().unwrap();
        let on = MemoryConfig {
            legacy_enabled: true,
            ..MemoryConfig::default()
        };
        assert_eq!(legacy_task(&on, t.path(), "Do it."), "Do it.", "no file");
        std::fs::write(t.path().join("MEMORY.md"), " \n").unwrap();
        assert_eq!(legacy_task(&on, t.path(), "Do it."), "Do it.", "blank file");
        std::fs::write(t.path().join("MEMORY.md"), "- likes tea\n").unwrap();
        assert_eq!(
            legacy_task(&on, t.path(), "Do it."),
            "## Your Memory\nThe following is your persistent memory from prior runs:\n\n\
             - likes tea\n\n## Current Task\nDo it."
        );
        let off = MemoryConfig::default();
        assert_eq!(legacy_task(&off, t.path(), "Do it."), "Do it.", "disabled");
    }

    #[test]
    fn legacy_marker_prints_the_last_block_and_strips() {
        use agentpod_sdk::wire::{AgentResult, Metrics};
        let cfg = MemoryConfig {
            legacy_enabled: true,
            ..MemoryConfig::default()
        };
        let text = "hi __SYMPOZIUM_MEMORY__old__SYMPOZIUM_MEMORY_END__ there __SYMPOZIUM_MEMORY__new__SYMPOZIUM_MEMORY_END__";
        let mut r = AgentResult::success(text, Metrics::default());
        let mut out = Vec::new();
        legacy_marker(&cfg, false, &mut r, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n__SYMPOZIUM_MEMORY__new__SYMPOZIUM_MEMORY_END__\n"
        );
        assert!(!r.response.contains("SYMPOZIUM"), "{}", r.response);
        let mut r = AgentResult::success(text, Metrics::default());
        legacy_marker(&cfg, true, &mut r, &mut Vec::new());
        assert_eq!(r.response, text);
        let mut r = AgentResult::success(text, Metrics::default());
        let mut out = Vec::new();
        legacy_marker(&MemoryConfig::default(), false, &mut r, &mut out);
        assert!(out.is_empty() && r.response == text);
    }
}
