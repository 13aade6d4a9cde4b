//! The memory server over real HTTP on 127.0.0.1, with a real SQLite file:
//! every route, filter and error, the upstream schema, hostile queries and
//! concurrent writers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentpod_sdk::memory::{
    Entry, Evidence, FEATURE_FORGET, FEATURE_UPDATE, ForgetRequest, ListQuery, MemoryClient,
    MemoryErrorKind, SearchRequest, StoreRequest, UpdateRequest,
};
use memory_server::{Config, Store};
use serde_json::{Value, json};

struct Server {
    url: String,
    client: MemoryClient,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, tune).await
    }

    async fn start_in(dir: tempfile::TempDir, tune: impl FnOnce(&mut Config)) -> Self {
        agentpod_test_support::install_crypto_provider();
        let mut config = Config::local(dir.path().join("memory.db"));
        tune(&mut config);
        let store = Arc::new(Store::open(&config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            memory_server::serve(listener, store, &config, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            client: MemoryClient::new(&url)
                .unwrap()
                .with_max_response_bytes(16 << 20),
            http: reqwest::Client::new(),
            url,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and gives back its directory.
    async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.dir.path().join("memory.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        decode(resp).await
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.url))
            .send()
            .await
            .unwrap();
        decode(resp).await
    }

    async fn delete(&self, query: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.delete(format!("{}/delete{query}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        decode(req.send().await.unwrap()).await
    }

    async fn store(&self, content: &str, tags: &[&str]) -> i64 {
        self.client
            .store(&StoreRequest::new(content, tags))
            .await
            .unwrap()
            .id
    }

    async fn store_req(&self, req: StoreRequest) -> i64 {
        self.client.store(&req).await.unwrap().id
    }

    async fn search_ids(&self, req: SearchRequest) -> Vec<i64> {
        ids(&self.client.search(&req).await.unwrap())
    }

    async fn list_ids(&self, q: ListQuery) -> Vec<i64> {
        ids(&self.client.list(&q).await.unwrap())
    }
}

async fn decode(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

fn ids(entries: &[Entry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

fn err(text: &str) -> Value {
    json!({"success": false, "error": text})
}

/// Backdates an entry (time-decay tests).
fn set_created(s: &Server, id: i64, at: &str) {
    s.db()
        .execute(
            "UPDATE memories SET created_at = ?1, updated_at = ?1 WHERE id = ?2",
            rusqlite::params![at, id],
        )
        .unwrap();
}

#[tokio::test]
async fn health_is_plain_ok_and_unknown_routes_are_refused() {
    let s = Server::start().await;
    let resp = s
        .http
        .get(format!("{}/health", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    s.client.health().await.unwrap();
    assert_eq!(s.get("/nope").await.0, 404);
    assert_eq!(s.get("/search").await.0, 405);
    assert_eq!(s.post("/list", "{}").await.0, 405);
}

#[tokio::test]
async fn store_answers_id_seq_and_time_and_search_returns_entries() {
    let s = Server::start().await;
    let (status, v) = s
        .post(
            "/store",
            json!({"content":"The cluster uses Cilium for networking","tags":["infra","k8s"],
                   "source_agent":"ops","evidence":{"kind":"tool_result","tool_call":"kubectl get pods","confidence":0.9}})
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["success"], true);
    let c = &v["content"];
    assert_eq!(c["id"], 1);
    assert_eq!(c["seq"], 1);
    let stored_at = c["stored_at"].as_str().unwrap();
    assert_eq!(stored_at.len(), 20, "RFC 3339 seconds UTC: {stored_at}");
    assert!(stored_at.ends_with('Z'));

    let (status, v) = s.post("/search", r#"{"query":"cilium networking"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"success":true,"content":[{
            "id":1,"content":"The cluster uses Cilium for networking","tags":["infra","k8s"],
            "visibility":"public","source_agent":"ops","parent_id":0,"seq":1,
            "created_at":stored_at,"updated_at":stored_at,
            "evidence":{"kind":"tool_result","tool_call":"kubectl get pods","confidence":0.9}}]})
    );
    // Porter stemming and prefixes, as upstream.
    assert_eq!(s.search_ids(SearchRequest::new("network")).await, [1]);
    assert_eq!(s.search_ids(SearchRequest::new("CIL")).await, [1]);
    assert!(s.search_ids(SearchRequest::new("calico")).await.is_empty());
    let (_, v) = s.post("/search", r#"{"query":"nothing matches"}"#).await;
    assert_eq!(v, json!({"success":true,"content":[]}));
}

#[tokio::test]
async fn search_ranks_by_bm25_and_bounds_top_k() {
    let s = Server::start_with(|c| c.max_top_k = 7).await;
    let weak = s
        .store(
            "apple pie recipe with many other words about baking and ovens",
            &[],
        )
        .await;
    let strong = s.store("apple apple apple", &[]).await;
    assert_eq!(
        s.search_ids(SearchRequest::new("apple")).await,
        [strong, weak]
    );
    for i in 0..10 {
        s.store(&format!("banana number {i}"), &[]).await;
    }
    assert_eq!(
        s.search_ids(SearchRequest::new("banana")).await.len(),
        5,
        "default top_k"
    );
    let mut req = SearchRequest::new("banana");
    req.top_k = 3;
    assert_eq!(s.search_ids(req.clone()).await.len(), 3);
    req.top_k = 1_000_000;
    assert_eq!(
        s.search_ids(req.clone()).await.len(),
        7,
        "bounded by MEMORY_MAX_TOP_K"
    );
    req.top_k = -4;
    assert_eq!(
        s.search_ids(req).await.len(),
        5,
        "non-positive means default"
    );
}

#[tokio::test]
async fn bad_requests_get_upstream_error_texts() {
    let s = Server::start_with(|c| c.max_body_bytes = 4096).await;
    for body in [
        "",
        "{",
        "[1,2]",
        r#"{"query": 5}"#,
        r#"{"top_k":"5","query":"x"}"#,
        "nonsense",
    ] {
        assert_eq!(
            s.post("/search", body).await,
            (400, err("invalid JSON body")),
            "{body:?}"
        );
        assert_eq!(s.post("/store", body).await.0, 400, "{body:?}");
    }
    assert_eq!(
        s.post("/search", "{}").await,
        (400, err("'query' is required"))
    );
    assert_eq!(
        s.post("/search", r#"{"query":""}"#).await,
        (400, err("'query' is required"))
    );
    assert_eq!(
        s.post("/search", r#"{"query":null}"#).await,
        (400, err("'query' is required"))
    );
    assert_eq!(
        s.post("/store", r#"{"tags":["a"]}"#).await,
        (400, err("'content' is required"))
    );
    assert_eq!(
        s.post("/store", "{}").await,
        (400, err("'content' is required"))
    );
    // Go's decoder reads the first value and ignores the rest; unknown
    // fields and nulls are fine.
    assert_eq!(
        s.post(
            "/store",
            r#"{"content":"x","extra":1,"tags":null} trailing"#
        )
        .await
        .0,
        200
    );
    // Over the body cap.
    let big = json!({"content": "x".repeat(5000)}).to_string();
    assert_eq!(
        s.post("/store", big).await,
        (413, err("request body exceeds 4096 bytes"))
    );
    // No Content-Type needed.
    let (status, _) = s.post("/search", r#"{"query":"x"}"#).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn list_orders_by_update_and_filters() {
    let s = Server::start().await;
    let a = s
        .store_req(StoreRequest {
            source_agent: "alice".into(),
            ..StoreRequest::new("a", &["red", "big"])
        })
        .await;
    let b = s
        .store_req(StoreRequest {
            source_agent: "bob".into(),
            ..StoreRequest::new("b", &["blue"])
        })
        .await;
    let c = s
        .store_req(StoreRequest {
            source_agent: "alice".into(),
            ..StoreRequest::new("c", &["reddish"])
        })
        .await;
    set_created(&s, a, "2026-01-01T00:00:03Z");
    set_created(&s, b, "2026-01-01T00:00:02Z");
    set_created(&s, c, "2026-01-01T00:00:01Z");
    assert_eq!(s.list_ids(ListQuery::default()).await, [a, b, c]);
    let q = |f: fn(&mut ListQuery)| {
        let mut q = ListQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        s.list_ids(q(|q| q.tags = "red".into())).await,
        [a, c],
        "substring"
    );
    assert_eq!(s.list_ids(q(|q| q.limit = 2)).await, [a, b]);
    assert_eq!(
        s.list_ids(q(|q| q.source_agent = "alice".into())).await,
        [a, c]
    );
    // Raw query strings as upstream's runner sends them.
    let (status, v) = s.get("/list?tags=blue&limit=abc").await;
    assert_eq!(status, 200);
    assert_eq!(v["content"].as_array().unwrap().len(), 1);
    let (_, v) = s.get("/list?limit=-3").await;
    assert_eq!(
        v["content"].as_array().unwrap().len(),
        3,
        "bad limit means 20"
    );
    // Time decay on list.
    set_created(&s, a, "2001-01-01T00:00:00Z");
    let recent = s.list_ids(q(|q| q.max_age = "8760h".into())).await;
    assert!(!recent.contains(&a));
}

#[tokio::test]
async fn visibility_and_trust_peers_filter_search_and_list() {
    let s = Server::start().await;
    let mk = |content: &str, vis: &str, agent: &str| StoreRequest {
        visibility: vis.into(),
        source_agent: agent.into(),
        ..StoreRequest::new(content, &[])
    };
    let public = s.store_req(mk("shared fact public", "", "alice")).await;
    let trusted = s
        .store_req(mk("shared fact trusted", "trusted", "alice"))
        .await;
    let private = s
        .store_req(mk("shared fact private", "private", "alice"))
        .await;
    let mine = s
        .store_req(mk("shared fact mine", "private", "carol"))
        .await;

    let search = |caller: &str, peers: &[&str]| SearchRequest {
        caller_agent: caller.into(),
        trust_peers: peers.iter().map(|p| (*p).to_owned()).collect(),
        top_k: 50,
        ..SearchRequest::new("shared fact")
    };
    // No caller: no filtering (upstream's backward compatibility).
    assert_eq!(
        sorted(s.search_ids(search("", &[])).await),
        [public, trusted, private, mine]
    );
    assert_eq!(
        sorted(s.search_ids(search("carol", &[])).await),
        [public, mine]
    );
    assert_eq!(
        sorted(s.search_ids(search("carol", &["alice"])).await),
        [public, trusted, mine]
    );
    assert_eq!(
        sorted(s.search_ids(search("alice", &[])).await),
        [public, trusted, private]
    );
    let (_, v) = s
        .get("/list?caller_agent=carol&trust_peers=bob,alice")
        .await;
    let listed: Vec<i64> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(sorted(listed), [public, trusted, mine]);
    let (_, v) = s.get("/list?caller_agent=carol").await;
    assert_eq!(v["content"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn time_decay_accept_tags_and_min_kind_filter_search() {
    let s = Server::start().await;
    let ev = |kind: &str| {
        Some(Evidence {
            kind: kind.into(),
            ..Evidence::default()
        })
    };
    let old = s.store("topic old", &["x"]).await;
    set_created(&s, old, "2000-01-01T00:00:00Z");
    let tool = s
        .store_req(StoreRequest {
            evidence: ev("tool_result"),
            ..StoreRequest::new("topic tool", &["alpha"])
        })
        .await;
    let opinion = s
        .store_req(StoreRequest {
            evidence: ev("agent_opinion"),
            ..StoreRequest::new("topic opinion", &["beta"])
        })
        .await;
    let llm = s
        .store_req(StoreRequest {
            evidence: ev("llm_interpretation"),
            ..StoreRequest::new("topic llm", &["gamma_1"])
        })
        .await;
    let weird = s
        .store_req(StoreRequest {
            evidence: ev("rumour"),
            ..StoreRequest::new("topic weird", &[])
        })
        .await;
    // Malformed evidence written by someone else must not break the filter.
    let broken = s.store("topic broken", &[]).await;
    s.db()
        .execute(
            "UPDATE memories SET evidence = '{not json' WHERE id = ?1",
            [broken],
        )
        .unwrap();

    let base = || SearchRequest {
        top_k: 50,
        ..SearchRequest::new("topic")
    };
    assert_eq!(
        sorted(s.search_ids(base()).await),
        [old, tool, opinion, llm, weird, broken]
    );
    let r = SearchRequest {
        max_age: "24h".into(),
        ..base()
    };
    assert!(!s.search_ids(r).await.contains(&old));
    let r = SearchRequest {
        max_age: "not-a-duration".into(),
        ..base()
    };
    assert_eq!(s.search_ids(r).await.len(), 6, "bad max_age is ignored");
    let r = SearchRequest {
        accept_tags: vec!["alpha".into(), "gamma_".into()],
        ..base()
    };
    assert_eq!(sorted(s.search_ids(r).await), [tool, llm]);
    let r = SearchRequest {
        accept_tags: vec!["gamma%".into()],
        ..base()
    };
    assert!(
        s.search_ids(r).await.is_empty(),
        "LIKE wildcards in tags are literal"
    );
    // Entries without evidence always pass; ranks 4..1.
    let r = SearchRequest {
        min_kind: "llm_interpretation".into(),
        ..base()
    };
    assert_eq!(sorted(s.search_ids(r).await), [old, tool, llm]);
    let r = SearchRequest {
        min_kind: "tool_result".into(),
        ..base()
    };
    assert_eq!(sorted(s.search_ids(r).await), [old, tool]);
    let r = SearchRequest {
        min_kind: "unknown-kind".into(),
        ..base()
    };
    assert_eq!(
        s.search_ids(r).await.len(),
        6,
        "unknown min_kind is ignored"
    );
    let (_, v) = s.get("/list?min_kind=external_source").await;
    assert_eq!(v["content"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn fts_syntax_in_queries_never_fails() {
    let s = Server::start().await;
    let hit = s
        .store(
            "He said \"deploy now\" near the AND gate: x^2 (draft) v1.2*",
            &[],
        )
        .await;
    let other = s.store("unrelated words entirely", &[]).await;
    let hostile = [
        "\"",
        "\"\"",
        "\"deploy",
        "deploy\"",
        "*",
        "deploy*",
        "**deploy**",
        "NEAR",
        "NEAR(deploy gate)",
        "NEAR(deploy",
        "AND",
        "deploy AND",
        "AND deploy",
        "OR",
        "NOT",
        "deploy NOT",
        "said:",
        "content:deploy",
        "^deploy",
        "^",
        "(",
        ")",
        "((deploy",
        "deploy))",
        "(deploy OR gate",
        "- deploy",
        "+deploy",
        "{content}:x",
        "x^2",
        "v1.2*",
        "'",
        "'; DROP TABLE memories; --",
        "%",
        "_",
        "\\",
        "\0",
        "deploy\u{0}now",
        "🙂",
        "…",
        "[deploy]",
        "col:col:col",
        "\"\"\"",
        "deploy NEAR/3 gate",
        "said \"deploy now\"",
    ];
    for q in hostile {
        let (status, v) = s.post("/search", json!({"query": q}).to_string()).await;
        assert_eq!(status, 200, "query {q:?}: {v}");
        assert_eq!(v["success"], true, "query {q:?}");
    }
    // Words match as words, whatever the punctuation around them.
    for q in [
        "(deploy",
        "deploy)",
        "\"deploy now\"",
        "(draft)",
        "x^2",
        "gate:",
        "AND",
        "deploy AND gate",
        "v1.2*",
        "said:",
    ] {
        let got = s.search_ids(SearchRequest::new(q)).await;
        assert_eq!(got, [hit], "query {q:?}");
    }
    // A word keeps its tokens in order: `NEAR(deploy` is the phrase
    // "near deploy", which this text does not contain.
    assert!(
        s.search_ids(SearchRequest::new("NEAR(deploy"))
            .await
            .is_empty()
    );
    assert_eq!(
        s.search_ids(SearchRequest::new("unrelated OR deploy"))
            .await,
        Vec::<i64>::new(),
        "OR is a word, all words must match"
    );
    assert_eq!(s.search_ids(SearchRequest::new("entirely")).await, [other]);
    // The table is still there.
    assert_eq!(s.list_ids(ListQuery::default()).await.len(), 2);
}

#[tokio::test]
async fn like_fallback_only_for_queries_without_words() {
    let s = Server::start().await;
    let dots = s.store("ellipsis ... here", &[]).await;
    let pct = s.store("rate 100% done", &[]).await;
    s.store("plain words", &[]).await;
    assert_eq!(s.search_ids(SearchRequest::new("...")).await, [dots]);
    assert_eq!(
        s.search_ids(SearchRequest::new("%")).await,
        [pct],
        "% is literal"
    );
    assert!(s.search_ids(SearchRequest::new("***")).await.is_empty());
}

#[tokio::test]
async fn stats_counts_live_entries_per_agent_and_visibility() {
    let s = Server::start().await;
    let (_, v) = s.get("/stats").await;
    assert_eq!(
        v,
        json!({"success":true,"content":{"by_agent_visibility":[],"max_seq":0,"superseded":0,"forgotten":0}})
    );
    for (agent, vis) in [("a", "public"), ("a", "public"), ("b", "private"), ("", "")] {
        s.store_req(StoreRequest {
            source_agent: agent.into(),
            visibility: vis.into(),
            ..StoreRequest::new("x", &[])
        })
        .await;
    }
    let st = s.client.stats().await.unwrap();
    assert_eq!(st.max_seq, 4);
    assert_eq!(st.by_agent_visibility[0].source_agent, "a");
    assert_eq!(st.by_agent_visibility[0].count, 2);
    assert_eq!(st.by_agent_visibility.len(), 3);
    s.client
        .forget(&ForgetRequest {
            id: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let st = s.client.stats().await.unwrap();
    assert_eq!((st.forgotten, st.by_agent_visibility[0].count), (1, 1));
}

#[tokio::test]
async fn provenance_follows_parents_root_first() {
    let s = Server::start().await;
    let root = s.store("root", &[]).await;
    let mid = s
        .store_req(StoreRequest {
            parent_id: root,
            ..StoreRequest::new("mid", &[])
        })
        .await;
    let leaf = s
        .store_req(StoreRequest {
            parent_id: mid,
            ..StoreRequest::new("leaf", &[])
        })
        .await;
    assert_eq!(
        ids(&s.client.provenance(leaf).await.unwrap()),
        [root, mid, leaf]
    );
    assert_eq!(ids(&s.client.provenance(root).await.unwrap()), [root]);
    assert_eq!(
        s.get("/provenance?id=999").await,
        (200, json!({"success":true,"content":[]}))
    );
    assert_eq!(
        s.get("/provenance").await,
        (400, err("'id' query parameter is required"))
    );
    assert_eq!(
        s.get("/provenance?id=abc").await,
        (400, err("invalid 'id' parameter"))
    );
    // A cycle (possible with hand-written parent ids) ends.
    s.db()
        .execute(
            "UPDATE memories SET parent_id = ?1 WHERE id = ?2",
            [leaf, root],
        )
        .unwrap();
    assert_eq!(s.client.provenance(leaf).await.unwrap().len(), 3);
}

#[tokio::test]
async fn delete_needs_the_admin_token() {
    let off = Server::start().await;
    off.store("x", &[]).await;
    assert_eq!(
        off.delete("?id=1", Some("anything")).await,
        (
            403,
            err("delete is disabled: MEMORY_ADMIN_TOKEN is not set")
        )
    );

    let s = Server::start_with(|c| c.admin_token = Some("s3cret".into())).await;
    let id = s.store("to be deleted", &["t"]).await;
    let unauthorized = (401, err("invalid or missing admin token"));
    assert_eq!(s.delete("?id=1", None).await, unauthorized);
    assert_eq!(s.delete("?id=1", Some("s3cre")).await, unauthorized);
    assert_eq!(s.delete("?id=1", Some("s3cret!")).await, unauthorized);
    assert_eq!(
        s.delete("", Some("s3cret")).await,
        (400, err("'id' query parameter is required"))
    );
    assert_eq!(
        s.delete("?id=x", Some("s3cret")).await,
        (400, err("invalid 'id' parameter"))
    );
    assert_eq!(
        s.delete("?id=42", Some("s3cret")).await,
        (404, err("memory 42 not found"))
    );
    let (status, v) = s.delete("?id=1", Some("s3cret")).await;
    assert_eq!(status, 200);
    assert_eq!(v["content"]["deleted"]["content"], "to be deleted");
    assert_eq!(v["content"]["deleted"]["tags"], json!(["t"]));
    assert!(s.search_ids(SearchRequest::new("deleted")).await.is_empty());
    assert_eq!(s.delete("?id=1", Some("s3cret")).await.0, 404);
    // Through the client.
    let id2 = s.store("again", &[]).await;
    assert_eq!(
        s.client.delete(id2, "s3cret").await.unwrap().content,
        "again"
    );
    let e = s.client.delete(id, "wrong").await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(
        e.to_string().starts_with("Memory server returned 401: "),
        "{e}"
    );
}

#[tokio::test]
async fn update_supersedes_and_keeps_provenance() {
    let s = Server::start().await;
    let old = s
        .store_req(StoreRequest {
            source_agent: "alice".into(),
            visibility: "trusted".into(),
            evidence: Some(Evidence {
                kind: "tool_result".into(),
                ..Evidence::default()
            }),
            ..StoreRequest::new("the answer is 41", &["math"])
        })
        .await;
    let up = s
        .client
        .update(&UpdateRequest {
            id: old,
            content: "the answer is 42".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(up.supersedes, old);
    assert!(up.seq > 1);
    assert_eq!(s.search_ids(SearchRequest::new("answer")).await, [up.id]);
    assert_eq!(s.list_ids(ListQuery::default()).await, [up.id]);
    let chain = s.client.provenance(up.id).await.unwrap();
    assert_eq!(ids(&chain), [old, up.id]);
    assert_eq!(chain[0].superseded_by, up.id);
    let new = &chain[1];
    assert_eq!(
        (
            new.parent_id,
            new.tags.clone(),
            new.visibility.as_str(),
            new.source_agent.as_str()
        ),
        (old, vec!["math".to_owned()], "trusted", "alice")
    );
    assert_eq!(
        new.evidence.as_ref().unwrap().kind,
        "tool_result",
        "kept from the old entry"
    );

    // Errors.
    let (status, v) = s
        .post(
            "/update",
            json!({"id": old, "content": "again"}).to_string(),
        )
        .await;
    assert_eq!(
        (status, v),
        (
            409,
            err(&format!("memory {old} was superseded by memory {}", up.id))
        )
    );
    assert_eq!(
        s.post("/update", r#"{"id":999,"content":"x"}"#).await,
        (404, err("memory 999 not found"))
    );
    assert_eq!(
        s.post("/update", r#"{"content":"x"}"#).await,
        (400, err("'id' is required"))
    );
    assert_eq!(
        s.post("/update", json!({"id": up.id}).to_string()).await,
        (400, err("'content' is required"))
    );
    assert_eq!(
        s.post("/update", "{").await,
        (400, err("invalid JSON body"))
    );
    let (status, v) = s
        .post(
            "/update",
            json!({"id": up.id, "content": "x", "caller_agent": "mallory"}).to_string(),
        )
        .await;
    assert_eq!(
        (status, v),
        (
            403,
            err(&format!("memory {} belongs to agent \"alice\"", up.id))
        )
    );
    // The owner may; new tags replace the old ones.
    let up2 = s
        .client
        .update(&UpdateRequest {
            id: up.id,
            content: "final".into(),
            tags: Some(vec!["done".into()]),
            caller_agent: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.client.provenance(up2.id).await.unwrap().len(), 3);
    assert_eq!(
        s.client
            .list(&ListQuery {
                tags: "done".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn forget_hides_from_search_and_list_but_not_provenance() {
    let s = Server::start().await;
    let keep = s.store("secret plan alpha", &[]).await;
    let gone = s
        .store_req(StoreRequest {
            source_agent: "bob".into(),
            ..StoreRequest::new("secret plan beta", &[])
        })
        .await;
    let f = s
        .client
        .forget(&ForgetRequest {
            id: gone,
            caller_agent: "bob".into(),
        })
        .await
        .unwrap();
    assert_eq!(f.id, gone);
    assert_eq!(
        s.search_ids(SearchRequest::new("secret plan")).await,
        [keep]
    );
    assert_eq!(s.list_ids(ListQuery::default()).await, [keep]);
    assert!(
        s.search_ids(SearchRequest::new("...")).await.is_empty(),
        "LIKE path hides it too"
    );
    let chain = s.client.provenance(gone).await.unwrap();
    assert_eq!(chain[0].forgotten_at, f.forgotten_at);
    // Idempotent; forgotten entries cannot be updated.
    let again = s
        .client
        .forget(&ForgetRequest {
            id: gone,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(again.forgotten_at, f.forgotten_at);
    assert_eq!(
        s.post("/update", json!({"id": gone, "content": "x"}).to_string())
            .await
            .0,
        404
    );
    assert_eq!(
        s.post("/forget", r#"{"id":77}"#).await,
        (404, err("memory 77 not found"))
    );
    assert_eq!(
        s.post("/forget", "{}").await,
        (400, err("'id' is required"))
    );
    assert_eq!(
        s.post("/forget", "x").await,
        (400, err("invalid JSON body"))
    );
    let (status, _) = s
        .post(
            "/forget",
            json!({"id": keep, "caller_agent": "zed"}).to_string(),
        )
        .await;
    assert_eq!(
        status, 200,
        "entries without a source_agent belong to nobody"
    );
    let bobs = s
        .store_req(StoreRequest {
            source_agent: "bob".into(),
            ..StoreRequest::new("b", &[])
        })
        .await;
    assert_eq!(
        s.post(
            "/forget",
            json!({"id": bobs, "caller_agent": "zed"}).to_string()
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn capabilities_name_the_extensions() {
    let s = Server::start().await;
    let (status, v) = s.get("/capabilities").await;
    assert_eq!(status, 200);
    assert_eq!(v["content"]["server"], "agentpod-memory-server");
    let caps = s.client.capabilities().await.unwrap();
    assert!(caps.supports(FEATURE_UPDATE) && caps.supports(FEATURE_FORGET));
    assert_eq!(caps.max_top_k, 100);
    assert_eq!(caps.max_body_bytes, 4 << 20);
}

/// Upstream's schema as its first release created it (no membrane or
/// evidence columns), written with plain SQL.
const UPSTREAM_V1: &str = "
CREATE TABLE memories (id INTEGER PRIMARY KEY AUTOINCREMENT, content TEXT NOT NULL,
  tags TEXT DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE VIRTUAL TABLE memories_fts USING fts5(content, content=memories, content_rowid=id,
  tokenize='porter unicode61');
CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content); END;
CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content) VALUES('delete', old.id, old.content); END;
CREATE TRIGGER memories_au AFTER UPDATE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, content) VALUES('delete', old.id, old.content);
  INSERT INTO memories_fts(rowid, content) VALUES (new.id, new.content); END;
CREATE INDEX idx_memories_updated ON memories(updated_at DESC);
CREATE INDEX idx_memories_tags ON memories(tags);
INSERT INTO memories (content, tags, created_at, updated_at)
  VALUES ('legacy note about postgres backups', 'ops,db', '2025-05-01T10:00:00Z', '2025-05-01T10:00:00Z');
";

/// The later upstream columns, as its migrations add them.
const UPSTREAM_MEMBRANE: &str = "
ALTER TABLE memories ADD COLUMN visibility TEXT DEFAULT 'public';
ALTER TABLE memories ADD COLUMN source_agent TEXT DEFAULT '';
ALTER TABLE memories ADD COLUMN parent_id INTEGER DEFAULT 0;
ALTER TABLE memories ADD COLUMN seq INTEGER DEFAULT 0;
CREATE INDEX idx_memories_visibility ON memories(visibility);
CREATE INDEX idx_memories_source_agent ON memories(source_agent);
CREATE INDEX idx_memories_seq ON memories(seq DESC);
ALTER TABLE memories ADD COLUMN evidence TEXT DEFAULT '';
INSERT INTO memories (content, tags, visibility, source_agent, parent_id, seq, created_at, updated_at, evidence)
  VALUES ('membrane era note about postgres', 'db', 'trusted', 'alice', 1, 7, '2025-06-01T10:00:00Z',
          '2025-06-01T10:00:00Z', '{\"kind\":\"external_source\",\"source\":\"https://x\"}');
";

async fn open_upstream_db(sql: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = rusqlite::Connection::open(dir.path().join("memory.db")).unwrap();
        for s in sql {
            c.execute_batch(s).unwrap();
        }
    }
    Server::start_in(dir, |_| {}).await
}

#[tokio::test]
async fn upstream_databases_open_and_migrate() {
    // First-release schema: columns are added, the old row keeps working.
    let s = open_upstream_db(&[UPSTREAM_V1]).await;
    let found = s
        .client
        .search(&SearchRequest::new("postgres backup"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].visibility, "public");
    assert_eq!(found[0].tags, ["ops", "db"]);
    let next = s
        .client
        .store(&StoreRequest::new("new postgres fact", &[]))
        .await
        .unwrap();
    assert_eq!((next.id, next.seq), (2, 1));
    // Reopening an already migrated file changes nothing.
    let dir = s.stop().await;
    let s = Server::start_in(dir, |_| {}).await;
    assert_eq!(
        s.client
            .search(&SearchRequest::new("postgres"))
            .await
            .unwrap()
            .len(),
        2
    );

    // A membrane-era file with evidence: seq continues after its max.
    let s = open_upstream_db(&[UPSTREAM_V1, UPSTREAM_MEMBRANE]).await;
    let chain = s.client.provenance(2).await.unwrap();
    assert_eq!(ids(&chain), [1, 2]);
    assert_eq!(chain[1].evidence.as_ref().unwrap().source, "https://x");
    let r = SearchRequest {
        caller_agent: "bob".into(),
        ..SearchRequest::new("postgres")
    };
    assert_eq!(
        s.search_ids(r).await,
        [1],
        "alice's trusted entry is hidden from bob"
    );
    assert_eq!(
        s.client
            .store(&StoreRequest::new("x", &[]))
            .await
            .unwrap()
            .seq,
        8
    );
    let cols: i64 = s
        .db()
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('memories')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cols, 12);
    // The FTS index still follows the triggers after migration.
    s.db()
        .execute(
            "UPDATE memories SET content = 'rewritten text' WHERE id = 1",
            [],
        )
        .unwrap();
    assert_eq!(s.search_ids(SearchRequest::new("rewritten")).await, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing_and_seq_stays_unique() {
    let s = Arc::new(Server::start().await);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(1000);
            for i in 0..1000 {
                let r = s
                    .client
                    .store(&StoreRequest::new(format!("writer{w} item{i}"), &["load"]))
                    .await
                    .unwrap();
                out.push((r.id, r.seq));
            }
            out
        }));
    }
    let mut ids = HashSet::new();
    let mut seqs = HashSet::new();
    for t in tasks {
        for (id, seq) in t.await.unwrap() {
            assert!(ids.insert(id), "duplicate id {id}");
            assert!(seqs.insert(seq), "duplicate seq {seq}");
        }
    }
    assert_eq!(seqs.len(), 8000);
    assert_eq!(seqs.iter().max(), Some(&8000));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");
    let (rows, distinct): (i64, i64) = s
        .db()
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT seq) FROM memories",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, distinct), (8000, 8000));
    assert_eq!(s.client.stats().await.unwrap().max_seq, 8000);
    let r = SearchRequest {
        top_k: 100,
        ..SearchRequest::new("writer3")
    };
    assert_eq!(s.client.search(&r).await.unwrap().len(), 100);
}

#[tokio::test]
async fn client_reports_server_errors_in_upstream_words() {
    let s = Server::start().await;
    let e = s.client.search(&SearchRequest::new("")).await.unwrap_err();
    assert_eq!(e.kind(), MemoryErrorKind::Status);
    assert_eq!(
        e.to_string(),
        r#"Memory server returned 400: {"success":false,"error":"'query' is required"}"#
    );
    let e = s
        .client
        .update(&UpdateRequest {
            id: 5,
            content: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(
        e.kind(),
        MemoryErrorKind::Status,
        "a JSON 404 is not 'unsupported'"
    );
    let content = s
        .client
        .post_raw("search", &json!({"query": "nothing"}))
        .await
        .unwrap();
    assert_eq!(agentpod_sdk::memory::render_content(content.as_ref()), "[]");
}
