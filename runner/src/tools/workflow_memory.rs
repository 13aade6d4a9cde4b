//! Shared workflow memory (`workflow_memory_search`, `workflow_memory_list`,
//! `workflow_memory_store`) over HTTP to `WORKFLOW_MEMORY_SERVER_URL`, with
//! the access mode and the membrane of contract §1.2 and §6.4: who may see
//! what is stored (visibility, exposed tags), and what this agent accepts
//! to read (trusted peers, accepted tags, age, evidence floor).

use std::sync::Arc;

use agentpod_sdk::envconf::Env;
use agentpod_sdk::llm::ToolSpec;
use agentpod_sdk::memory::{
    ListQuery, MemoryClient, SearchRequest, render_content, render_entries,
};
use agentpod_sdk::tool::{Args, Tool, ToolContext};
use agentpod_sdk::wire::env::runner as var;
use async_trait::async_trait;
use serde_json::{Value, json};

use super::memory::{
    CONTEXT_QUERY_CHARS, CONTEXT_TOP_K, check_duration, check_kind, comma_list, error_text,
    prefix_chars,
};
use super::{int_arg, str_arg};

/// Auto-context: most characters of shared memory in the prompt.
pub const CONTEXT_MAX_CHARS: usize = 800;

const VISIBILITIES: [&str; 3] = ["public", "trusted", "private"];
const KINDS: [&str; 4] = [
    "tool_result",
    "external_source",
    "llm_interpretation",
    "agent_opinion",
];

/// `WORKFLOW_*` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowConfig {
    /// `WORKFLOW_MEMORY_SERVER_URL`.
    pub server_url: String,
    /// `WORKFLOW_MEMORY_ACCESS=read-only`.
    pub read_only: bool,
    /// `WORKFLOW_MEMBRANE_*`.
    pub membrane: Membrane,
}

/// The membrane: what this agent shares and accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membrane {
    /// `WORKFLOW_MEMBRANE_VISIBILITY`: default visibility of stored entries;
    /// set, it turns the membrane on for stores.
    pub visibility: String,
    /// `WORKFLOW_MEMBRANE_TRUST_PEERS`.
    pub trust_peers: Vec<String>,
    /// `WORKFLOW_MEMBRANE_ACCEPT_TAGS`.
    pub accept_tags: Vec<String>,
    /// `WORKFLOW_MEMBRANE_EXPOSE_TAGS`: an entry with none of these is
    /// stored `private`.
    pub expose_tags: Vec<String>,
    /// `WORKFLOW_MEMBRANE_MAX_AGE` (a Go duration).
    pub max_age: String,
    /// `WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND`.
    pub min_kind: String,
}

impl WorkflowConfig {
    /// Reads the workflow variables; `None` without a server URL.
    pub fn from_env(env: &mut Env) -> Option<Self> {
        let access = env.string(var::WORKFLOW_MEMORY_ACCESS);
        let read_only = match access.as_deref() {
            None | Some("read-write") => false,
            Some("read-only") => true,
            Some(other) => {
                env.invalid(
                    var::WORKFLOW_MEMORY_ACCESS,
                    other,
                    "read-write or read-only",
                );
                false
            }
        };
        let visibility = env
            .string(var::WORKFLOW_MEMBRANE_VISIBILITY)
            .unwrap_or_default();
        if !visibility.is_empty() && !VISIBILITIES.contains(&visibility.as_str()) {
            env.invalid(
                var::WORKFLOW_MEMBRANE_VISIBILITY,
                &visibility,
                "public, trusted or private",
            );
        }
        let max_age = env
            .string(var::WORKFLOW_MEMBRANE_MAX_AGE)
            .unwrap_or_default();
        if !max_age.is_empty() {
            check_duration(env, var::WORKFLOW_MEMBRANE_MAX_AGE, &max_age);
        }
        let min_kind = env
            .string(var::WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND)
            .unwrap_or_default();
        if !min_kind.is_empty() {
            check_kind(env, var::WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND, &min_kind);
        }
        let membrane = Membrane {
            visibility,
            trust_peers: comma_list(env.string(var::WORKFLOW_MEMBRANE_TRUST_PEERS)),
            accept_tags: comma_list(env.string(var::WORKFLOW_MEMBRANE_ACCEPT_TAGS)),
            expose_tags: comma_list(env.string(var::WORKFLOW_MEMBRANE_EXPOSE_TAGS)),
            max_age,
            min_kind,
        };
        let server_url = env.string(var::WORKFLOW_MEMORY_SERVER_URL)?;
        if let Err(e) = MemoryClient::new(&server_url) {
            env.invalid(
                var::WORKFLOW_MEMORY_SERVER_URL,
                &server_url,
                format!("an http(s) URL ({e})"),
            );
        }
        Some(Self {
            server_url,
            read_only,
            membrane,
        })
    }
}

/// What the workflow tools share: the client, the agent's name, the
/// membrane.
#[derive(Debug, Clone)]
pub struct Workflow {
    client: MemoryClient,
    instance: String,
    membrane: Membrane,
}

impl Workflow {
    /// Workflow memory at `client` for agent `instance`.
    pub fn new(client: MemoryClient, instance: &str, membrane: Membrane) -> Self {
        Self {
            client,
            instance: instance.to_owned(),
            membrane,
        }
    }

    /// The reader-side filters for a search.
    pub fn search_request(&self, mut args: Args) -> Value {
        let m = &self.membrane;
        if !self.instance.is_empty() {
            args.insert("caller_agent".into(), json!(self.instance));
        }
        if !m.trust_peers.is_empty() {
            args.insert("trust_peers".into(), json!(m.trust_peers));
        }
        if !m.accept_tags.is_empty() {
            args.insert("accept_tags".into(), json!(m.accept_tags));
        }
        if !m.max_age.is_empty() {
            args.insert("max_age".into(), json!(m.max_age));
        }
        if !m.min_kind.is_empty() {
            args.insert("min_kind".into(), json!(m.min_kind));
        }
        Value::Object(args)
    }

    /// The list query for the model's `tags` and `limit`.
    pub fn list_query(&self, tags: &str, limit: u32) -> ListQuery {
        ListQuery {
            tags: tags.to_owned(),
            limit,
            caller_agent: self.instance.clone(),
            trust_peers: self.membrane.trust_peers.clone(),
            max_age: self.membrane.max_age.clone(),
            min_kind: self.membrane.min_kind.clone(),
            ..ListQuery::default()
        }
    }

    /// The store body: the agent's name among the tags and, with a
    /// membrane, the visibility (forced `private` when no tag is exposed)
    /// and the source agent.
    pub fn store_request(&self, mut args: Args) -> Value {
        let mut tags: Vec<String> = args
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if !self.instance.is_empty() && !tags.contains(&self.instance) {
            tags.push(self.instance.clone());
        }
        let m = &self.membrane;
        if !m.visibility.is_empty() {
            let mut visibility = str_arg(&args, "visibility")
                .filter(|v| VISIBILITIES.contains(v))
                .unwrap_or(&m.visibility)
                .to_owned();
            if !m.expose_tags.is_empty() && !tags.iter().any(|t| m.expose_tags.contains(t)) {
                visibility = "private".into();
            }
            args.insert("visibility".into(), json!(visibility));
            args.insert("source_agent".into(), json!(self.instance));
        } else {
            args.remove("visibility");
            args.remove("parent_id");
        }
        args.insert("tags".into(), json!(tags));
        Value::Object(args)
    }

    /// The start-of-run search for `task`.
    pub fn context_search(&self, task: &str) -> SearchRequest {
        let mut req = SearchRequest::new(prefix_chars(task, CONTEXT_QUERY_CHARS));
        req.top_k = CONTEXT_TOP_K;
        req.caller_agent.clone_from(&self.instance);
        req.trust_peers.clone_from(&self.membrane.trust_peers);
        req.accept_tags.clone_from(&self.membrane.accept_tags);
        req.max_age.clone_from(&self.membrane.max_age);
        req.min_kind.clone_from(&self.membrane.min_kind);
        req
    }

    /// The client.
    pub fn client(&self) -> &MemoryClient {
        &self.client
    }
}

/// Builds the workflow memory tools; no store tool when `read_only`.
pub fn workflow_memory_tools(wf: Workflow, read_only: bool) -> Vec<Arc<dyn Tool>> {
    let mut tools: Vec<Arc<dyn Tool>> = vec![
        Arc::new(WorkflowTool::new(Kind::Search, wf.clone())),
        Arc::new(WorkflowTool::new(Kind::List, wf.clone())),
    ];
    if !read_only {
        tools.push(Arc::new(WorkflowTool::new(Kind::Store, wf)));
    }
    tools
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Search,
    List,
    Store,
}

/// One of the workflow memory tools.
#[derive(Debug)]
pub struct WorkflowTool {
    kind: Kind,
    wf: Workflow,
    spec: ToolSpec,
}

impl WorkflowTool {
    fn new(kind: Kind, wf: Workflow) -> Self {
        let (name, description, parameters) = match kind {
            Kind::Search => (
                "workflow_memory_search",
                "Search the team's shared workflow memory (what other agents of the ensemble learned).",
                json!({"type":"object","properties":{
                    "query":{"type":"string","description":"What to look for"},
                    "top_k":{"type":"integer","description":"How many results (default 5)"}
                },"required":["query"]}),
            ),
            Kind::List => (
                "workflow_memory_list",
                "List recent entries of the team's shared workflow memory, optionally filtered by tag.",
                json!({"type":"object","properties":{
                    "tags":{"type":"string","description":"Only entries whose tags contain this text"},
                    "limit":{"type":"integer","description":"How many entries (default 20)"}
                }}),
            ),
            Kind::Store => {
                let mut props = json!({
                    "content":{"type":"string","description":"What the team should know"},
                    "tags":{"type":"array","items":{"type":"string"},"description":"Tags for later filtering"},
                    "evidence":{"type":"object","description":"Where this knowledge comes from","properties":{
                        "kind":{"type":"string","enum":KINDS},
                        "tool_call":{"type":"string","description":"The tool call that produced it"},
                        "raw_result":{"type":"string","description":"The raw result it rests on"},
                        "source":{"type":"string","description":"An external source (URL, document)"},
                        "confidence":{"type":"number","description":"0 to 1"}
                    }}
                });
                if !wf.membrane.visibility.is_empty() {
                    props["visibility"] = json!({"type":"string","enum":VISIBILITIES,
                        "description":"Who may read it (default from the ensemble's policy)"});
                    props["parent_id"] = json!({"type":"integer",
                        "description":"The entry this one builds on"});
                }
                (
                    "workflow_memory_store",
                    "Share a finding with the rest of the team through the shared workflow memory.",
                    json!({"type":"object","properties":props,"required":["content"]}),
                )
            }
        };
        Self {
            kind,
            wf,
            spec: ToolSpec {
                name: name.into(),
                description: description.into(),
                parameters,
            },
        }
    }

    async fn run(&self, args: Args) -> Result<String, String> {
        let client = self.wf.client();
        match self.kind {
            Kind::Search => {
                if str_arg(&args, "query").is_none_or(|q| q.trim().is_empty()) {
                    return Err("Error: query is required".into());
                }
                let raw = client
                    .post_raw("search", &self.wf.search_request(args))
                    .await
                    .map_err(|e| error_text(&e))?;
                Ok(render_content(raw.as_ref()))
            }
            Kind::List => {
                let limit = int_arg(&args, "limit")
                    .map_err(|e| format!("Error: {e}"))?
                    .filter(|n| *n > 0)
                    .map_or(20, |n| u32::try_from(n).unwrap_or(u32::MAX));
                let q = self
                    .wf
                    .list_query(str_arg(&args, "tags").unwrap_or_default(), limit);
                let entries = client.list(&q).await.map_err(|e| error_text(&e))?;
                Ok(render_entries(&entries))
            }
            Kind::Store => {
                if str_arg(&args, "content").is_none_or(|c| c.trim().is_empty()) {
                    return Err("Error: content is required".into());
                }
                let raw = client
                    .post_raw("store", &self.wf.store_request(args))
                    .await
                    .map_err(|e| error_text(&e))?;
                Ok(render_content(raw.as_ref()))
            }
        }
    }
}

#[async_trait]
impl Tool for WorkflowTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, args: Args, _ctx: &ToolContext) -> String {
        self.run(args).await.unwrap_or_else(|e| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Option<WorkflowConfig> {
        WorkflowConfig::from_env(&mut Env::from_map(vars.iter().copied()))
    }

    fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn config_reads_the_membrane() {
        assert_eq!(cfg(&[("WORKFLOW_MEMORY_ACCESS", "read-only")]), None);
        let c = cfg(&[
            ("WORKFLOW_MEMORY_SERVER_URL", "http://m:8080"),
            ("WORKFLOW_MEMORY_ACCESS", "read-only"),
            ("WORKFLOW_MEMBRANE_TRUST_PEERS", "a, b,,"),
            ("WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND", "external_source"),
        ])
        .unwrap();
        assert!(c.read_only);
        assert_eq!(c.membrane.trust_peers, ["a", "b"]);
        let mut env = Env::from_map([
            ("WORKFLOW_MEMORY_SERVER_URL", "http://m"),
            ("WORKFLOW_MEMORY_ACCESS", "write"),
            ("WORKFLOW_MEMBRANE_VISIBILITY", "secret"),
            ("WORKFLOW_MEMBRANE_MAX_AGE", "a week"),
            ("WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND", "hunch"),
        ]);
        WorkflowConfig::from_env(&mut env);
        let err = env.finish().unwrap_err().to_string();
        for v in [
            "WORKFLOW_MEMORY_ACCESS",
            "WORKFLOW_MEMBRANE_VISIBILITY",
            "WORKFLOW_MEMBRANE_MAX_AGE",
            "WORKFLOW_MEMBRANE_MIN_EVIDENCE_KIND",
        ] {
            assert!(err.contains(v), "{err}");
        }
    }

    #[test]
    fn membrane_shapes_requests() {
        let client = MemoryClient::new("http://m").unwrap();
        let wf = Workflow::new(
            client.clone(),
            "alice",
            Membrane {
                visibility: "trusted".into(),
                trust_peers: vec!["bob".into()],
                accept_tags: vec!["ops".into()],
                expose_tags: vec!["share".into()],
                max_age: "24h".into(),
                min_kind: "tool_result".into(),
            },
        );
        let s = wf.search_request(args(json!({"query":"q"})));
        assert_eq!(
            s,
            json!({"query":"q","caller_agent":"alice","trust_peers":["bob"],"accept_tags":["ops"],"max_age":"24h","min_kind":"tool_result"})
        );
        // No exposed tag: private; the agent's name joins the tags.
        let st = wf.store_request(args(json!({"content":"c","tags":["x"]})));
        assert_eq!(st["visibility"], "private");
        assert_eq!(st["source_agent"], "alice");
        assert_eq!(st["tags"], json!(["x", "alice"]));
        let st = wf.store_request(args(json!({"content":"c","tags":["share"]})));
        assert_eq!(st["visibility"], "trusted");
        let st = wf.store_request(args(
            json!({"content":"c","tags":["share"],"visibility":"public"}),
        ));
        assert_eq!(st["visibility"], "public");
        // Without a membrane: tags only.
        let plain = Workflow::new(client, "alice", Membrane::default());
        let st = plain.store_request(args(json!({"content":"c","visibility":"public"})));
        assert_eq!(st, json!({"content":"c","tags":["alice"]}));
        let names: Vec<_> = workflow_memory_tools(plain.clone(), true)
            .iter()
            .map(|t| t.spec().name.clone())
            .collect();
        assert_eq!(names, ["workflow_memory_search", "workflow_memory_list"]);
        let store = workflow_memory_tools(wf, false).pop().unwrap();
        assert!(
            store.spec().parameters["properties"]
                .get("visibility")
                .is_some()
        );
        let store = workflow_memory_tools(plain, false).pop().unwrap();
        assert!(
            store.spec().parameters["properties"]
                .get("visibility")
                .is_none()
        );
    }
}
