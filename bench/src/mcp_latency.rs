//! One MCP tool call, three ways, against the same server in the same run:
//!
//! - **direct rmcp**: an rmcp client (Streamable HTTP) calls `echo` itself;
//!   the floor for any Rust caller.
//! - **runner IPC + mcp-bridge**: what the agent-runner does: write
//!   `mcp-request-<n>.json` (atomically), wake on inotify when
//!   `mcp-result-<n>.json` appears, read it. The release `mcp-bridge` runs
//!   as a child process and calls the server.
//! - **official Python client**: `mcp.ClientSession` over Streamable HTTP
//!   (PyPI `mcp`, installed by `scripts/setup-mcp.sh`), timed inside Python.
//!
//! The server is `@modelcontextprotocol/server-everything` in Streamable
//! HTTP mode on 127.0.0.1 (it binds every interface; we only connect to
//! loopback). The rmcp and bridge series are interleaved call by call so
//! drift hits both alike; the bridge overhead is the difference of p50s.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::{IpcRoot, NameFilter, WatchEvent, WatchOptions};
use anyhow::{Context, Result, bail, ensure};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

use crate::report::Section;
use crate::stats::{Summary, fmt_duration};

/// The benchmark's name for `--only`.
pub const NAME: &str = "mcp";

/// Measured calls per series (after [`WARMUP`]).
const CALLS: usize = 1000;
/// Untimed calls per series first.
const WARMUP: usize = 50;
/// Longest a single call may take.
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// The Python client: N timed `echo` calls, printed as JSON nanoseconds.
const PY_CLIENT: &str = r#"
import asyncio, json, sys, time
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

async def main(url, warmup, n):
    async with streamable_http_client(url) as streams:
        async with ClientSession(streams[0], streams[1]) as s:
            await s.initialize()
            out = []
            for i in range(warmup + n):
                t = time.perf_counter_ns()
                r = await s.call_tool("echo", {"message": "ping"})
                d = time.perf_counter_ns() - t
                assert "ping" in r.content[0].text
                if i >= warmup:
                    out.append(d)
            print(json.dumps(out))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"#;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

async fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !ok() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs the benchmark.
pub async fn run() -> Result<Section> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = crate::fixtures::repo_root();
    let everything = root.join("node_modules/.bin/mcp-server-everything");
    let python = root.join(".venv/bin/python");
    let bridge_bin = std::env::current_exe()?.with_file_name("mcp-bridge");
    ensure!(
        everything.exists() && python.exists(),
        "MCP servers missing: run `bash scripts/setup-mcp.sh`"
    );
    ensure!(
        bridge_bin.exists(),
        "{} is missing: run `cargo build --release -p mcp-bridge`",
        bridge_bin.display()
    );

    let port = free_port()?;
    let _server = Kill(
        Command::new(&everything)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting server-everything")?,
    );
    wait_until("server-everything", Duration::from_secs(20), || {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
    })
    .await?;
    let url = format!("http://127.0.0.1:{port}/mcp");

    // The bridge, on a tmpfs-like temp IPC root.
    let dir = tempfile::tempdir()?;
    let ipc = IpcRoot::new(dir.path());
    std::fs::create_dir_all(ipc.tools())?;
    let cfg = dir.path().join("mcp-servers.yaml");
    std::fs::write(
        &cfg,
        format!("servers:\n- name: everything\n  url: {url}\n  toolsPrefix: ev\n  timeout: 10\n"),
    )?;
    let _bridge = Kill(
        Command::new(&bridge_bin)
            .env("MCP_CONFIG_PATH", &cfg)
            .env("MCP_IPC_PATH", ipc.tools())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting mcp-bridge")?,
    );
    let manifest = ipc.mcp_manifest();
    wait_until("the bridge's manifest", Duration::from_secs(20), || {
        manifest.exists()
    })
    .await?;

    let mut results = WatchOptions::new(ipc.tools())
        .filter(NameFilter::prefix_suffix("mcp-result-", ".json"))
        .spawn_json::<Value>()?;

    let client =
        ().serve(StreamableHttpClientTransport::from_uri(url.clone()))
            .await
            .context("rmcp client")?;
    let args = json!({"message": "ping"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut direct = Vec::with_capacity(CALLS);
    let mut bridged = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let t = Instant::now();
        let r = tokio::time::timeout(
            CALL_LIMIT,
            client.call_tool(CallToolRequestParams::new("echo").with_arguments(args.clone())),
        )
        .await
        .context("rmcp call timed out")??;
        let d = t.elapsed();
        ensure!(r.is_error != Some(true), "rmcp call failed: {r:?}");

        let id = i.to_string();
        let t = Instant::now();
        let req = json!({"id": id, "server": "everything", "tool": "ev_echo", "arguments": {"message": "ping"}});
        ipc.write_json_atomic(&ipc.mcp_request(&id), &req)?;
        let got = loop {
            match tokio::time::timeout(CALL_LIMIT, results.recv()).await {
                Ok(Some(WatchEvent::File(f))) if f.value["id"] == id.as_str() => break f,
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => bail!("no result for bridged call {id}"),
            }
        };
        let b = t.elapsed();
        ensure!(
            got.value["success"] == true,
            "bridged call failed: {}",
            got.value
        );
        // The runner deletes the result after reading it.
        std::fs::remove_file(&got.path)?;
        if i >= WARMUP {
            direct.push(d);
            bridged.push(b);
        }
    }
    let _ = client.cancel().await;

    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .args([
                "-c",
                PY_CLIENT,
                &url,
                &WARMUP.to_string(),
                &CALLS.to_string(),
            ])
            .stderr(Stdio::inherit())
            .output(),
    )
    .await
    .context("python client timed out")??;
    ensure!(out.status.success(), "python client failed");
    let py: Vec<u64> = serde_json::from_slice(&out.stdout).context("python client output")?;
    let python_calls: Vec<Duration> = py.into_iter().map(Duration::from_nanos).collect();

    let direct = Summary::of(&direct).context("no samples")?;
    let bridged = Summary::of(&bridged).context("no samples")?;
    let py = Summary::of(&python_calls).context("no samples")?;
    // Signed: the bridge path can beat a direct rmcp call (rmcp's client
    // runs each call through its worker task and channel).
    let overhead_us = (bridged.p50.as_secs_f64() - direct.p50.as_secs_f64()) * 1e6;

    let mut body = String::new();
    writeln!(
        body,
        "One `echo` tool call against `@modelcontextprotocol/server-everything` (Streamable HTTP, \
         127.0.0.1), {CALLS} calls per series after {WARMUP} warm-up calls; rmcp and bridge calls \
         interleaved one by one.\n"
    )?;
    writeln!(body, "| path | n | p50 | p99 | max | mean |")?;
    writeln!(body, "|---|---:|---:|---:|---:|---:|")?;
    for (label, s) in [
        ("direct rmcp 3.11 client", &direct),
        (
            "runner IPC (atomic request file, inotify on result) + mcp-bridge",
            &bridged,
        ),
        ("official Python client (`mcp` 2.3 `ClientSession`)", &py),
    ] {
        writeln!(
            body,
            "| {label} | {} | {} | {} | {} | {} |",
            s.n,
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            fmt_duration(s.max),
            fmt_duration(s.mean)
        )?;
    }
    writeln!(
        body,
        "\nBridge overhead over the direct rmcp call at p50: **{overhead_us:+.0} µs** (goal < 1 ms; \
         negative means the bridge path was faster)."
    )?;
    Ok(Section {
        title: "MCP tool-call latency: mcp-bridge vs direct rmcp vs Python client".into(),
        body,
    })
}
