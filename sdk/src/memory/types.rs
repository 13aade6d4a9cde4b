//! Wire types of the memory API. Field names, and which fields are left out
//! when empty, follow the upstream server so documents round-trip through
//! either implementation.

use serde::{Deserialize, Serialize};

/// The [`Capabilities::features`] name of `POST /update`.
pub const FEATURE_UPDATE: &str = "update";
/// The [`Capabilities::features`] name of `POST /forget`.
pub const FEATURE_FORGET: &str = "forget";

/// Every JSON answer: `{"success":bool,"content"?:any,"error"?:string}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiResponse<T> {
    /// Always present.
    pub success: bool,
    /// The result, on success.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub content: Option<T>,
    /// The reason, on failure.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> ApiResponse<T> {
    /// A success carrying `content`.
    pub fn ok(content: T) -> Self {
        Self {
            success: true,
            content: Some(content),
            error: String::new(),
        }
    }

    /// A failure with `error`.
    pub fn err(error: impl Into<String>) -> Self {
        Self {
            success: false,
            content: None,
            error: error.into(),
        }
    }
}

/// How an entry was derived (upstream "evidence trace").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// `tool_result`, `external_source`, `llm_interpretation` or
    /// `agent_opinion` (other values are stored as given).
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub kind: String,
    /// The tool call that produced it.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tool_call: String,
    /// The unmodified tool output.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub raw_result: String,
    /// A URL, document or entry reference.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub source: String,
    /// 0.0 to 1.0, set by the producing agent; 0 is left out.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "crate::wire::go::is_zero"
    )]
    pub confidence: f64,
    /// Ids of the entries this one was derived from.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub derived_from: Vec<i64>,
}

/// The quality rank of an evidence kind for `min_kind` filtering, `None`
/// for a kind the filter does not know.
pub fn evidence_kind_rank(kind: &str) -> Option<u8> {
    match kind {
        "tool_result" => Some(4),
        "external_source" => Some(3),
        "llm_interpretation" => Some(2),
        "agent_opinion" => Some(1),
        _ => None,
    }
}

/// One stored memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Row id.
    pub id: i64,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// Tags (stored comma-joined); left out when there are none.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// `public`, `trusted` or `private`.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub visibility: String,
    /// The agent that wrote it (may be empty).
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub source_agent: String,
    /// The entry this one derives from or supersedes; 0 for none.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub parent_id: i64,
    /// Global write order.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub seq: i64,
    /// RFC 3339 UTC, seconds.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub created_at: String,
    /// RFC 3339 UTC, seconds.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub updated_at: String,
    /// How it was derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// agentpod: the entry that replaced this one (`POST /update`); 0 and
    /// left out while current. Only provenance chains show such entries.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "crate::wire::go::is_zero"
    )]
    pub superseded_by: i64,
    /// agentpod: when it was forgotten (`POST /forget`); empty and left out
    /// while live. Only provenance chains show such entries.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub forgotten_at: String,
}

/// `POST /search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// Free text (required, non-empty).
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub query: String,
    /// Results wanted; 0 or less means the default (5).
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "crate::wire::go::is_zero"
    )]
    pub top_k: i64,
    /// The asking agent; enables visibility filtering when non-empty.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub caller_agent: String,
    /// Agents whose `trusted` entries the caller may see.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trust_peers: Vec<String>,
    /// Only entries with at least one of these tags (substring match).
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub accept_tags: Vec<String>,
    /// A Go duration (`24h`); older entries are left out.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub max_age: String,
    /// Minimum evidence kind; entries without evidence always pass.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub min_kind: String,
}

impl SearchRequest {
    /// A plain search for `query`.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            ..Self::default()
        }
    }
}

/// `POST /store`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreRequest {
    /// The text (required, non-empty).
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub content: String,
    /// Tags; must not contain commas (they are stored comma-joined).
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// Default `public`.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub visibility: String,
    /// The writing agent.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub source_agent: String,
    /// The entry this one derives from.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "crate::wire::go::is_zero"
    )]
    pub parent_id: i64,
    /// How it was derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl StoreRequest {
    /// A public entry with `content` and `tags`.
    pub fn new(content: impl Into<String>, tags: &[&str]) -> Self {
        Self {
            content: content.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// The content of a successful `POST /store`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreResult {
    /// The new entry's id.
    pub id: i64,
    /// Its sequence number.
    pub seq: i64,
    /// Its `created_at`.
    pub stored_at: String,
}

/// The query of `GET /list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Substring of the comma-joined tags.
    pub tags: String,
    /// Entries wanted; 0 means the default (20).
    pub limit: u32,
    /// The asking agent; enables visibility filtering when non-empty.
    pub caller_agent: String,
    /// Agents whose `trusted` entries the caller may see.
    pub trust_peers: Vec<String>,
    /// A Go duration; older entries are left out.
    pub max_age: String,
    /// Minimum evidence kind.
    pub min_kind: String,
    /// Only entries written by this agent.
    pub source_agent: String,
}

impl ListQuery {
    /// The query-string pairs, empty values left out.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let peers = self.trust_peers.join(",");
        let limit = if self.limit > 0 {
            self.limit.to_string()
        } else {
            String::new()
        };
        [
            ("tags", self.tags.clone()),
            ("limit", limit),
            ("caller_agent", self.caller_agent.clone()),
            ("trust_peers", peers),
            ("max_age", self.max_age.clone()),
            ("min_kind", self.min_kind.clone()),
            ("source_agent", self.source_agent.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// One row of [`Stats::by_agent_visibility`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentVisibilityCount {
    /// The writing agent.
    pub source_agent: String,
    /// The visibility.
    pub visibility: String,
    /// Live entries.
    pub count: i64,
}

/// The content of `GET /stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Live entries per (agent, visibility), largest first.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub by_agent_visibility: Vec<AgentVisibilityCount>,
    /// The highest `seq` ever given.
    #[serde(default)]
    pub max_seq: i64,
    /// agentpod: entries replaced through `POST /update`.
    #[serde(default)]
    pub superseded: i64,
    /// agentpod: entries hidden through `POST /forget`.
    #[serde(default)]
    pub forgotten: i64,
}

/// `POST /update` (agentpod): replaces entry `id` by a new entry whose
/// `parent_id` is `id`; the old entry stays for provenance but leaves
/// search and list. Fields left empty are taken from the old entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateRequest {
    /// The entry to supersede.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub id: i64,
    /// The new text (required, non-empty).
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub content: String,
    /// New tags; `None` keeps the old ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// New visibility; empty keeps the old one.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub visibility: String,
    /// New evidence; `None` keeps the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The asking agent: when both it and the entry's `source_agent` are
    /// set they must match.
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub caller_agent: String,
}

/// The content of a successful `POST /update`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    /// The new entry's id.
    pub id: i64,
    /// Its sequence number.
    pub seq: i64,
    /// Its `created_at`.
    pub stored_at: String,
    /// The id it replaced (its `parent_id`).
    pub supersedes: i64,
}

/// `POST /forget` (agentpod): hides entry `id` from search and list. The
/// row stays (provenance still shows it); hard deletion is the admin-only
/// `DELETE /delete`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetRequest {
    /// The entry to forget.
    #[serde(default, deserialize_with = "crate::wire::go::null_as_default")]
    pub id: i64,
    /// The asking agent, checked like [`UpdateRequest::caller_agent`].
    #[serde(
        default,
        deserialize_with = "crate::wire::go::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub caller_agent: String,
}

/// The content of a successful `POST /forget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetResult {
    /// The forgotten entry.
    pub id: i64,
    /// When it was forgotten (the first time, if forgotten twice).
    pub forgotten_at: String,
}

/// The content of `GET /capabilities` (agentpod). An upstream server has no
/// such route; [`Capabilities::upstream`] describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Implementation name (`agentpod-memory-server`, or `upstream`).
    pub server: String,
    /// Implementation version.
    #[serde(default)]
    pub version: String,
    /// Routes beyond the upstream API: [`FEATURE_UPDATE`], [`FEATURE_FORGET`].
    #[serde(default)]
    pub features: Vec<String>,
    /// `top_k` above this is lowered to it (0: unbounded).
    #[serde(default)]
    pub max_top_k: i64,
    /// `limit` above this is lowered to it (0: unbounded).
    #[serde(default)]
    pub max_list_limit: i64,
    /// Larger request bodies are refused.
    #[serde(default)]
    pub max_body_bytes: u64,
}

impl Capabilities {
    /// What a server without `GET /capabilities` (Sympozium's) offers.
    pub fn upstream() -> Self {
        Self {
            server: "upstream".into(),
            max_body_bytes: 4 << 20,
            ..Self::default()
        }
    }

    /// True when the server has `feature`.
    pub fn supports(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_leaves_out_empty_optional_fields() {
        let e = Entry {
            id: 1,
            content: "x".into(),
            visibility: "public".into(),
            seq: 1,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            ..Entry::default()
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"id":1,"content":"x","visibility":"public","source_agent":"","parent_id":0,
                   "seq":1,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn nulls_and_missing_fields_decode_as_defaults() {
        let r: SearchRequest =
            serde_json::from_value(json!({"query":"q","trust_peers":null,"top_k":null})).unwrap();
        assert_eq!(r, SearchRequest::new("q"));
        // Upstream leaves empty fields out of entries.
        let e: Entry =
            serde_json::from_value(json!({"id":3,"content":"c","created_at":"t","updated_at":"t"}))
                .unwrap();
        assert_eq!(e.parent_id, 0);
        assert!(e.tags.is_empty() && e.evidence.is_none());
    }

    #[test]
    fn evidence_round_trips_like_upstream() {
        let v =
            json!({"kind":"tool_result","tool_call":"ls","confidence":0.9,"derived_from":[1,2]});
        let e: Evidence = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
        assert_eq!(evidence_kind_rank("external_source"), Some(3));
        assert_eq!(evidence_kind_rank("rumour"), None);
    }

    #[test]
    fn list_query_pairs_skip_empty_values() {
        let q = ListQuery {
            tags: "a b".into(),
            trust_peers: vec!["x".into(), "y".into()],
            ..ListQuery::default()
        };
        assert_eq!(
            q.pairs(),
            vec![
                ("tags", "a b".to_owned()),
                ("trust_peers", "x,y".to_owned())
            ]
        );
    }
}
