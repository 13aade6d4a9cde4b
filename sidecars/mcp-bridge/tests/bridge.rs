//! mcp-bridge against real MCP servers: the npm reference server
//! `@modelcontextprotocol/server-everything` (stdio and Streamable HTTP) and
//! a Python server on the official SDK (`tests/servers/py_server.py`), both
//! installed by `scripts/setup-mcp.sh`. The bridge runs as its real binary;
//! requests are written the way the upstream runner writes them.

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentpod_sdk::wire::{McpManifest, McpResult};
use agentpod_test_support::{KillOnDrop, eventually, free_port, workspace_root};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

fn everything() -> PathBuf {
    let p = workspace_root().join("node_modules/.bin/mcp-server-everything");
    assert!(
        p.exists(),
        "{} missing: run `bash scripts/setup-mcp.sh`",
        p.display()
    );
    p
}

fn python() -> PathBuf {
    let p = workspace_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run `bash scripts/setup-mcp.sh`",
        p.display()
    );
    p
}

fn py_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/servers/py_server.py")
        .display()
        .to_string()
}

async fn wait_port(port: u16) {
    eventually(LIMIT, "server port open", || async move {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .ok()
            .map(|_| ())
    })
    .await;
}

/// The Python server over Streamable HTTP on 127.0.0.1:`port`.
async fn py_http(port: u16) -> KillOnDrop {
    let child = Command::new(python())
        .args([py_script(), "http".into(), port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port).await;
    KillOnDrop(child)
}

/// server-everything over Streamable HTTP (it binds every interface; we
/// only ever connect to 127.0.0.1).
async fn everything_http(port: u16) -> KillOnDrop {
    let child = Command::new(everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port).await;
    KillOnDrop(child)
}

fn py_stdio_entry(name: &str, prefix: &str, extra: &str) -> String {
    format!(
        "- name: {name}\n  toolsPrefix: {prefix}\n  command: {py}\n  args: [{script}, stdio]\n{extra}",
        py = python().display(),
        script = py_script()
    )
}

/// A temp IPC root, a servers file, and the bridge binary running on them.
struct Bridge {
    dir: tempfile::TempDir,
    proc: Option<Child>,
}

impl Bridge {
    fn start(servers_yaml: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tools")).unwrap();
        let cfg = dir.path().join("mcp-servers.yaml");
        std::fs::write(&cfg, format!("servers:\n{servers_yaml}")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-bridge"));
        cmd.env("MCP_CONFIG_PATH", &cfg)
            .env("MCP_IPC_PATH", dir.path().join("tools"))
            .env("MCP_DISCOVERY_ATTEMPTS", "2")
            .env("MCP_DISCOVERY_RETRY_DELAY", "500ms")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let proc = Some(cmd.spawn().unwrap());
        Self { dir, proc }
    }

    fn tools(&self) -> PathBuf {
        self.dir.path().join("tools")
    }

    async fn manifest_with(&self, tool: &str) -> McpManifest {
        let path = self.tools().join("mcp-tools.json");
        eventually(LIMIT, &format!("manifest with {tool}"), || {
            let path = path.clone();
            async move {
                let m: McpManifest = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
                m.tools.iter().any(|t| t.name == tool).then_some(m)
            }
        })
        .await
    }

    async fn manifest(&self, at_least: usize) -> McpManifest {
        let path = self.tools().join("mcp-tools.json");
        eventually(LIMIT, "manifest", || {
            let path = path.clone();
            async move {
                let m: McpManifest = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
                (m.tools.len() >= at_least).then_some(m)
            }
        })
        .await
    }

    /// Writes a request as the upstream runner does (plain write, not
    /// atomic); `split` writes it in two parts with a pause between, the
    /// torn write a reader can race with.
    fn request(&self, id: &str, tool: &str, args: Value, split: bool) {
        let body = json!({"id": id, "server": "", "tool": tool, "arguments": args,
            "_meta": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
                      "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
        .to_string();
        let path = self.tools().join(format!("mcp-request-{id}.json"));
        if split {
            use std::io::Write;
            let mut f = std::fs::File::create(&path).unwrap();
            let (a, b) = body.as_bytes().split_at(body.len() / 2);
            f.write_all(a).unwrap();
            f.flush().unwrap();
            // Simulates a slow writer (not waiting for anything).
            std::thread::sleep(Duration::from_millis(30));
            f.write_all(b).unwrap();
        } else {
            std::fs::write(&path, body).unwrap();
        }
    }

    async fn result(&self, id: &str) -> McpResult {
        let path = self.tools().join(format!("mcp-result-{id}.json"));
        let r: McpResult = eventually(LIMIT, &format!("result {id}"), || {
            let path = path.clone();
            async move { serde_json::from_slice(&std::fs::read(&path).ok()?).ok() }
        })
        .await;
        let req = self.tools().join(format!("mcp-request-{id}.json"));
        eventually(LIMIT, &format!("request {id} removed"), || {
            let gone = !req.exists();
            async move { gone.then_some(()) }
        })
        .await;
        assert_eq!(r.id, id);
        r
    }

    async fn call(&self, id: &str, tool: &str, args: Value) -> McpResult {
        self.request(id, tool, args, false);
        self.result(id).await
    }

    fn finish_run(&self) {
        let out = self.dir.path().join("output");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("result.json"), r#"{"status":"success"}"#).unwrap();
    }

    async fn exit_code(&mut self) -> i32 {
        let mut child = self.proc.take().unwrap();
        let status = eventually(LIMIT, "bridge exit", || {
            let s = child.try_wait().unwrap();
            async move { s }
        })
        .await;
        status.code().unwrap_or(-1)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut c) = self.proc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(r: &McpResult) -> String {
    r.content
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn stdio_servers_discovery_prefixing_content_and_errors() {
    let yaml = format!(
        "- name: everything\n  toolsPrefix: ev\n  command: {}\n  args: [stdio]\n  toolsAllow: [echo, get-sum, get-tiny-image]\n{}",
        everything().display(),
        py_stdio_entry("python", "py", "  toolsDeny: [add]\n"),
    );
    let mut b = Bridge::start(&yaml, &[]);
    let m = b.manifest(9).await;
    let names: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["ev_echo", "ev_get-sum", "ev_get-tiny-image"],
        "allow list, order of listing"
    );
    assert!(
        names.contains(&"py_echo") && names.contains(&"py_image") && !names.contains(&"py_add"),
        "{names:?}"
    );
    let echo = &m.tools[0];
    assert_eq!((echo.server.as_str(), echo.timeout), ("everything", 90));
    assert_eq!(echo.input_schema["type"], "object");

    let r = b.call("1", "ev_echo", json!({"message": "hi"})).await;
    assert!(r.success, "{r:?}");
    assert!(text(&r).contains("hi"), "{r:?}");
    let r = b.call("2", "ev_get-sum", json!({"a": 2, "b": 3})).await;
    assert!(text(&r).contains('5'), "{r:?}");
    let r = b.call("3", "ev_get-tiny-image", json!({})).await;
    assert!(
        r.success && text(&r).contains("[image: image/png,"),
        "{r:?}"
    );
    let r = b.call("4", "py_image", json!({})).await;
    assert_eq!(text(&r), "[image: image/png, 67 bytes]");
    let r = b
        .call("5", "py_fail", json!({"message": "bad input"}))
        .await;
    assert!(
        !r.success && r.is_error && r.error.contains("bad input"),
        "{r:?}"
    );
    let r = b.call("6", "py_add", json!({"a": 1, "b": 2})).await;
    assert_eq!(r.error, r#"tool "py_add" is not available (filtered)"#);
    let r = b.call("7", "ev_get-env", json!({})).await;
    assert_eq!(r.error, r#"tool "ev_get-env" is not available (filtered)"#);
    let r = b.call("8", "zz_echo", json!({})).await;
    assert!(
        !r.success && r.error.contains("no MCP server has its prefix"),
        "{r:?}"
    );

    b.finish_run();
    assert_eq!(b.exit_code().await, 0);
}

#[tokio::test]
async fn streamable_http_servers_with_auth_headers_and_sse() {
    let (pe, pp) = (free_port(), free_port());
    let _ev = everything_http(pe).await;
    let _py = py_http(pp).await;
    let yaml = format!(
        "- name: everything\n  url: http://127.0.0.1:{pe}/mcp\n  toolsPrefix: ev\n  timeout: 10\n\
         - name: py-http\n  url: http://127.0.0.1:{pp}/mcp\n  toolsPrefix: py\n  auth: {{type: bearer}}\n  headers: {{X-Team: blue}}\n\
         - name: keyed\n  url: http://127.0.0.1:{pp}/mcp\n  toolsPrefix: k\n  toolsAllow: [headers]\n  auth: {{type: header, headerName: X-Api-Key, secretKey: MY_KEY}}\n"
    );
    let mut b = Bridge::start(
        &yaml,
        &[("MCP_AUTH_PY_HTTP", "tok-123"), ("MY_KEY", "key-9")],
    );
    let m = b.manifest(10).await;
    assert!(
        m.tools
            .iter()
            .any(|t| t.name == "ev_echo" && t.timeout == 10)
    );
    assert!(
        m.tools
            .iter()
            .any(|t| t.name == "k_headers" && t.server == "keyed")
    );

    let r = b
        .call("1", "ev_echo", json!({"message": "over http"}))
        .await;
    assert!(r.success && text(&r).contains("over http"), "{r:?}");
    let r = b.call("2", "py_echo", json!({"text": "sse"})).await;
    assert_eq!(text(&r), "echo: sse");
    let r = b.call("3", "py_headers", json!({})).await;
    let h: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(h["authorization"], "Bearer tok-123");
    assert_eq!(h["x-team"], "blue");
    assert_eq!(
        h["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "trace context from _meta"
    );
    let r = b.call("4", "k_headers", json!({})).await;
    let h: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(
        (h["x-api-key"].as_str(), h["authorization"].as_str()),
        (Some("key-9"), None)
    );
    b.finish_run();
    assert_eq!(b.exit_code().await, 0);
}

#[tokio::test]
async fn lost_http_session_is_reinitialised() {
    let port = free_port();
    let py = py_http(port).await;
    let yaml = format!("- name: py\n  url: http://127.0.0.1:{port}/mcp\n  toolsPrefix: py\n");
    let b = Bridge::start(&yaml, &[]);
    b.manifest(1).await;
    assert!(b.call("1", "py_echo", json!({"text": "a"})).await.success);
    // A restarted server has forgotten the session: it answers 404.
    drop(py);
    let _py = py_http(port).await;
    let r = b.call("2", "py_echo", json!({"text": "b"})).await;
    assert!(r.success, "{r:?}");
    assert_eq!(text(&r), "echo: b");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_at_its_deadline_and_others_proceed() {
    let yaml = format!(
        "{}- name: everything\n  toolsPrefix: ev\n  command: {}\n  args: [stdio]\n",
        py_stdio_entry("slow", "slow", "  timeout: 2\n"),
        everything().display()
    );
    let b = Bridge::start(&yaml, &[]);
    b.manifest_with("slow_hang").await;
    b.manifest_with("ev_echo").await;
    let started = Instant::now();
    b.request("h", "slow_hang", json!({}), false);
    let r = b.call("e", "ev_echo", json!({"message": "quick"})).await;
    assert!(r.success);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "echo did not wait for the stuck call"
    );
    let early = std::fs::read_to_string(b.tools().join("mcp-result-h.json")).ok();
    assert!(early.is_none(), "stuck call answered early: {early:?}");
    let r = b.result("h").await;
    let waited = started.elapsed();
    assert!(
        !r.success && r.error.contains("did not answer") && r.error.contains("within 2s"),
        "{r:?}"
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The server still answers other calls afterwards.
    assert!(
        b.call("after", "slow_echo", json!({"text": "x"}))
            .await
            .success
    );
}

#[tokio::test]
async fn a_stdio_server_that_dies_is_restarted() {
    let b = Bridge::start(&py_stdio_entry("py", "py", "  timeout: 10\n"), &[]);
    b.manifest(1).await;
    let r = b.call("1", "py_crash", json!({})).await;
    assert!(!r.success && r.error.contains("exited"), "{r:?}");
    let r = b.call("2", "py_echo", json!({"text": "back"})).await;
    assert_eq!(text(&r), "echo: back", "{r:?}");
}

#[tokio::test]
async fn a_server_down_at_discovery_is_skipped_without_delaying_others() {
    let dead = free_port();
    let yaml = format!(
        "- name: down\n  url: http://127.0.0.1:{dead}/mcp\n  toolsPrefix: down\n{}",
        py_stdio_entry("py", "py", "")
    );
    let started = Instant::now();
    let b = Bridge::start(
        &yaml,
        &[
            ("MCP_DISCOVERY_ATTEMPTS", "3"),
            ("MCP_DISCOVERY_RETRY_DELAY", "5s"),
        ],
    );
    let m = b.manifest(1).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "manifest waited for the dead server"
    );
    assert!(m.tools.iter().all(|t| t.server == "py"));
    let r = b.call("1", "down_anything", json!({})).await;
    assert!(
        r.error
            .contains(r#"MCP server "down" has not been discovered"#),
        "{r:?}"
    );
}

#[tokio::test]
async fn upstream_style_requests_torn_writes_and_unsafe_ids() {
    let b = Bridge::start(&py_stdio_entry("py", "py", ""), &[]);
    b.manifest(1).await;
    // Torn, non-atomic write; empty server field (resolved by prefix).
    b.request("7", "py_echo", json!({"text": "torn"}), true);
    assert_eq!(text(&b.result("7").await), "echo: torn");
    // Several at once (more than 10 in flight are queued, not dropped).
    for i in 0..15 {
        b.request(&format!("c{i}"), "py_add", json!({"a": i, "b": 1}), false);
    }
    for i in 0..15 {
        assert_eq!(text(&b.result(&format!("c{i}")).await), (i + 1).to_string());
    }
    // Garbage stays unparseable: answered with an error after a while.
    std::fs::write(b.tools().join("mcp-request-bad.json"), "{not json").unwrap();
    let r = b.result("bad").await;
    assert!(r.error.contains("invalid MCP request file"), "{r:?}");
    // An id that would escape the directory is answered under the file id.
    std::fs::write(
        b.tools().join("mcp-request-9.json"),
        r#"{"id":"../x","tool":"py_echo","arguments":{"text":"x"}}"#,
    )
    .unwrap();
    assert!(b.result("9").await.error.contains("unsafe request id"));
}

#[tokio::test]
async fn exits_on_result_json_after_draining_even_without_output_dir() {
    let mut b = Bridge::start(&py_stdio_entry("py", "py", "  timeout: 2\n"), &[]);
    b.manifest(1).await;
    assert!(!b.dir.path().join("output").exists());
    b.request("h", "py_hang", json!({}), false);
    // Requests are taken in order: once a later one is answered, the
    // stuck one is in flight.
    assert!(b.call("q", "py_echo", json!({"text": "q"})).await.success);
    b.finish_run();
    assert_eq!(b.exit_code().await, 0);
    let r: McpResult =
        serde_json::from_slice(&std::fs::read(b.tools().join("mcp-result-h.json")).unwrap())
            .unwrap();
    assert!(
        r.error.contains("did not answer"),
        "in-flight call drained before exit: {r:?}"
    );
}

#[tokio::test]
async fn discover_only_writes_the_manifest_and_exits() {
    let mut b = Bridge::start(
        &py_stdio_entry("py", "py", "  toolsAllow: [echo, add]\n"),
        &[("MCP_DISCOVER_ONLY", "true")],
    );
    assert_eq!(b.exit_code().await, 0);
    let m: McpManifest =
        serde_json::from_slice(&std::fs::read(b.tools().join("mcp-tools.json")).unwrap()).unwrap();
    let names: Vec<&str> = m.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["py_echo", "py_add"]);
}

#[tokio::test]
async fn missing_and_invalid_config() {
    let mut b = Bridge::start("", &[("MCP_CONFIG_PATH", "/nonexistent/mcp.yaml")]);
    assert_eq!(b.exit_code().await, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
        .env("MCP_CONFIG_PATH", {
            let d = b.dir.path().join("bad.yaml");
            std::fs::write(&d, "servers:\n- name: gh\n  url: nope\n  toolsPrefix: gh\n").unwrap();
            d
        })
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"server \"gh\": url: \"nope\" is not an absolute http(s) URL"#)
            || err.contains(r#"server "gh": url: "nope""#),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let help = Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--stdio-adapter"));
}

#[tokio::test]
async fn stdio_adapter_serves_a_stdio_server_over_http() {
    agentpod_test_support::install_crypto_provider();
    let port = free_port();
    let _adapter = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
            .arg("--stdio-adapter")
            .env("STDIO_CMD", python())
            .env("STDIO_ARGS", format!("{},stdio", py_script()))
            .env("STDIO_SERVER_NAME", "py")
            .env("STDIO_HOST", "127.0.0.1")
            .env("STDIO_PORT", port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(LIMIT, "adapter ready", || {
        let (http, url) = (http.clone(), format!("{base}/readyz"));
        async move {
            http.get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        }
    })
    .await;
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // No jsonrpc, no id: the adapter adds them (id 1).
    let init: Value = http
        .post(&base)
        .json(&json!({"method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["serverInfo"]["name"], "agentpod-test");
    let note: Value = http
        .post(&base)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(note, json!({"jsonrpc": "2.0"}));
    let r: Value = http
        .post(&base)
        .json(&json!({"jsonrpc": "2.0", "id": "abc", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "via adapter"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["id"], "abc");
    assert_eq!(r["result"]["content"][0]["text"], "echo: via adapter");

    // And the bridge reaches the adapter like any HTTP server.
    let b = Bridge::start(
        &format!("- name: adapted\n  url: {base}/\n  toolsPrefix: ad\n"),
        &[],
    );
    b.manifest(1).await;
    assert_eq!(
        text(&b.call("1", "ad_add", json!({"a": 20, "b": 22})).await),
        "42"
    );
}
