//! ipc-bridge against a real nats-server: the binary is run as a process,
//! as in a Pod, and checked from the outside (files and the stream).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use agentpod_sdk::ipc::SUBDIRS;
use agentpod_test_support::{NatsServer, TempIpc, eventually, wait_for_file};
use async_nats::jetstream;
use serde_json::{Value, json};

const RUN: &str = "run-1";
const T: Duration = Duration::from_secs(20);

/// The bridge as a child process; killed on drop.
struct Bridge {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bridge {
    fn start(ipc: &Path, url: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_args(
            &["-ipc-path", ipc.to_str().unwrap(), "-agent-run-id", RUN],
            url,
            extra,
        )
    }

    fn start_args(args: &[&str], url: &str, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bridge.log");
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipc-bridge"));
        cmd.args(args)
            .env_clear()
            .env("EVENT_BUS_URL", url)
            .env("INSTANCE_NAME", "helper")
            .env("AGENT_NAMESPACE", "team")
            .env("IPC_BRIDGE_EXIT_GRACE", "100ms")
            .env("IPC_BRIDGE_DRAIN_TIMEOUT", "5s")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(f));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().unwrap(),
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let what = "bridge exit";
        let child = &mut self.child;
        eventually(within, what, || {
            let s = child.try_wait().unwrap();
            async move { s }
        })
        .await
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- bridge log ---\n{}", self.log());
        }
    }
}

/// A message read back from the stream.
#[derive(Debug, Clone)]
struct Stored {
    subject: String,
    headers: HashMap<String, String>,
    body: Value,
}

async fn ensure_stream(nats: &NatsServer) -> jetstream::Context {
    let js = nats.jetstream().await;
    ipc_bridge::nats::ensure_stream(&js).await.unwrap();
    js
}

/// Every message in the stream, in stream order.
async fn stored(js: &jetstream::Context) -> Vec<Stored> {
    let mut stream = js.get_stream("sympozium").await.unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if info.state.messages == 0 {
            break;
        }
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue;
        };
        let headers = m
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.first().map(|v| v.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        out.push(Stored {
            subject: m.subject.to_string(),
            headers,
            body: serde_json::from_slice(&m.payload).unwrap(),
        });
    }
    out
}

async fn wait_stored(js: &jetstream::Context, n: usize, within: Duration) -> Vec<Stored> {
    eventually(within, &format!("{n} messages in the stream"), || async {
        let s = stored(js).await;
        (s.len() >= n).then_some(s)
    })
    .await
}

fn write_json(path: PathBuf, v: &Value) {
    agentpod_sdk::ipc::write_atomic(&path, v.to_string().as_bytes(), None).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn publishes_every_trigger_with_the_envelope() {
    let nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    let root = ipc.path().join("pod-ipc");
    let mut bridge = Bridge::start(&root, &nats.url(), &[]);
    let r = agentpod_sdk::ipc::IpcRoot::new(&root);
    // The bridge makes the directories (0750).
    eventually(T, "subdirs", || {
        let all = SUBDIRS.iter().all(|s| r.dir(s).is_dir());
        async move { all.then_some(()) }
    })
    .await;
    for s in SUBDIRS {
        assert_eq!(mode(&r.dir(s)), 0o750, "{s}");
    }

    let files: Vec<(PathBuf, Value, &str)> = vec![
        (
            r.status(),
            json!({"phase":"thinking"}),
            "agent.status.update",
        ),
        (
            r.stream_chunk(0),
            json!({"type":"text","content":"hi","index":0}),
            "agent.stream.chunk",
        ),
        (
            r.subagent_request("b1"),
            json!({"batchId":"b1","strategy":"parallel","failurePolicy":"","tasks":[]}),
            "agent.subagent.request",
        ),
        (
            r.spawn_request("7"),
            json!({"task":"t","agentId":"default"}),
            "agent.spawn.request",
        ),
        (
            r.exec_request("9"),
            json!({"id":"9","command":"ls","_meta":{"traceparent":TP}}),
            "tool.exec.request",
        ),
        (
            r.outbound_message("1"),
            json!({"channel":"slack","text":"hello"}),
            "channel.message.send",
        ),
        (
            r.schedule("1"),
            json!({"name":"n","action":"add","schedule":"@daily"}),
            "schedule.upsert",
        ),
        (
            r.prompt_request("p1"),
            json!({"requestId":"p1","prompt":"q"}),
            "agent.prompt.request.run-1",
        ),
        (
            r.prompt_result("p1"),
            json!({"requestId":"p1","status":"ok"}),
            "agent.prompt.result.run-1",
        ),
        (
            r.context_clear("c1"),
            json!({"requestId":"c1"}),
            "agent.context.clear.run-1",
        ),
    ];
    // Files that must not be published.
    write_json(r.spawn().join("request-8.json.tmp"), &json!({"x":1}));
    write_json(r.exec_result("9"), &json!({"id":"9"}));
    write_json(r.prompt_request("bad"), &json!({"requestId":"../etc"}));
    for (p, v, _) in &files {
        write_json(p.clone(), v);
    }
    let got = wait_stored(&js, files.len(), T).await;
    write_json(r.result(), &json!({"status":"success","response":"done"}));
    let status = bridge.wait_exit(T).await;
    assert!(status.success(), "{status:?}");
    let got = stored(&js).await.into_iter().chain(got).collect::<Vec<_>>();

    for (path, v, topic) in files.iter().chain(std::iter::once(&(
        r.result(),
        json!({"status":"success","response":"done"}),
        "agent.run.completed",
    ))) {
        let m = got
            .iter()
            .find(|m| m.body["topic"] == *topic)
            .unwrap_or_else(|| panic!("{topic} not published; got {got:#?}"));
        assert_eq!(m.subject, format!("sympozium.{topic}"));
        assert_eq!(m.body["data"], *v, "{}", path.display());
        assert_eq!(
            m.body["metadata"],
            json!({"agentRunID":RUN,"instanceName":"helper","namespace":"team"})
        );
        assert!(m.body["timestamp"].as_str().unwrap().ends_with('Z'));
        let id = &m.headers["Nats-Msg-Id"];
        assert!(id.starts_with("run-1/"), "{id}");
        if *topic == "tool.exec.request" {
            assert_eq!(m.headers.get("traceparent").map(String::as_str), Some(TP));
        } else {
            assert!(!m.headers.contains_key("traceparent"), "{topic}");
        }
    }
    // Exactly the 11 triggers, each once.
    let final_count = stored(&js).await.len();
    assert_eq!(final_count, 11, "{:#?}", stored(&js).await);
}

#[tokio::test]
async fn writes_back_every_subscribed_subject() {
    let nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    let _bridge = Bridge::start(ipc.path(), &nats.url(), &[]);
    // Wait for the four durable consumers, then publish.
    let stream = js.get_stream("sympozium").await.unwrap();
    eventually(T, "four consumers", || {
        let stream = stream.clone();
        async move {
            let mut names = stream.consumer_names();
            let mut n = 0;
            use futures::StreamExt;
            while let Some(Ok(_)) = names.next().await {
                n += 1;
            }
            (n >= 4).then_some(())
        }
    })
    .await;
    let env = |topic: &str, data: Value| {
        json!({"topic":topic,"timestamp":"2026-01-01T00:00:00Z","metadata":{"agentRunID":RUN},"data":data})
            .to_string()
    };
    let publish = |topic: String, data: Value| {
        let js = js.clone();
        let body = env(&topic, data);
        async move {
            js.publish(format!("sympozium.{topic}"), body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    publish(
        format!("agent.delegate.result.{RUN}"),
        json!({"requestId":"../evil","status":"error"}),
    )
    .await;
    publish(
        format!("agent.delegate.result.{RUN}"),
        json!({"requestId":"r1","status":"success","response":"ok"}),
    )
    .await;
    publish(
        format!("agent.subagent.result.{RUN}"),
        json!({"batchId":"b1","status":"success","results":[]}),
    )
    .await;
    publish(format!("agent.followup.{RUN}"), json!({"text":"more"})).await;
    publish(
        format!("tool.exec.result.{RUN}"),
        json!({"id":"x","exitCode":0}),
    )
    .await;
    publish(
        "agent.delegate.result.other-run".into(),
        json!({"requestId":"r2"}),
    )
    .await;

    let p = wait_for_file(ipc.spawn_result("r1"), T).await;
    assert_eq!(
        ipc.read_json(&p),
        json!({"requestId":"r1","status":"success","response":"ok"})
    );
    assert_eq!(mode(&p), 0o640);
    let p = wait_for_file(ipc.subagent_result("b1"), T).await;
    assert_eq!(ipc.read_json(&p)["batchId"], "b1");
    let find = |dir: PathBuf, prefix: &'static str| async move {
        eventually(T, prefix, || {
            let dir = dir.clone();
            async move {
                std::fs::read_dir(&dir)
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .find_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        (n.starts_with(prefix) && n.ends_with(".json")).then(|| e.path())
                    })
            }
        })
        .await
    };
    let f = find(ipc.input(), "followup-").await;
    assert_eq!(ipc.read_json(&f), json!({"text":"more"}));
    let f = find(ipc.tools(), "exec-result-").await;
    assert_eq!(ipc.read_json(&f)["exitCode"], 0);
    assert!(!ipc.spawn().join("result-r2.json").exists());
    assert!(!ipc.path().join("evil").exists());
    // Nothing else landed in spawn/ (the unsafe id was refused).
    let names: Vec<String> = std::fs::read_dir(ipc.spawn())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn outbound_policy_and_gate_mode() {
    let nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    let mut bridge = Bridge::start(
        ipc.path(),
        &nats.url(),
        &[
            ("ALLOWED_OUTBOUND_CHANNELS", "Slack,telegram"),
            ("AGENT_DISPLAY_NAME", "Helper Bot"),
            ("GATE_SUPPRESS_COMPLETION", "true"),
        ],
    );
    write_json(
        ipc.outbound_message("1"),
        &json!({"channel":"discord","text":"no"}),
    );
    write_json(
        ipc.outbound_message("2"),
        &json!({"channel":"SLACK","text":"spoof","username":"CEO","iconUrl":"http://x","iconEmoji":":)"}),
    );
    write_json(
        ipc.outbound_message("3"),
        &json!({"channel":"telegram","text":"me","username":"Helper Bot"}),
    );
    write_json(
        ipc.stream_chunk(0),
        &json!({"type":"text","content":"x","index":0}),
    );
    wait_stored(&js, 2, T).await;
    write_json(ipc.result(), &json!({"status":"success","response":"r"}));
    assert!(bridge.wait_exit(T).await.success());
    let got: Vec<Value> = stored(&js)
        .await
        .into_iter()
        .map(|m| m.body["data"].clone())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.contains(&json!({"channel":"SLACK","text":"spoof"})),
        "{got:?}"
    );
    assert!(got.contains(&json!({"channel":"telegram","text":"me","username":"Helper Bot"})));
    drop(got);
    assert!(
        bridge.log().contains("ALLOWED_OUTBOUND_CHANNELS"),
        "refusal is logged"
    );
}

#[tokio::test]
async fn result_json_present_before_start_still_exits() {
    let nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    write_json(
        ipc.result(),
        &json!({"status":"success","response":"early"}),
    );
    let mut bridge = Bridge::start(ipc.path(), &nats.url(), &[]);
    let status = bridge.wait_exit(T).await;
    assert!(status.success(), "{status:?}");
    let got = stored(&js).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject, "sympozium.agent.run.completed");
    assert_eq!(got[0].body["data"]["response"], "early");
}

/// Index of a numbered test file's data, for order checks.
fn index_of(m: &Stored) -> (String, u64) {
    (m.subject.clone(), m.body["data"]["i"].as_u64().unwrap())
}

#[tokio::test]
async fn nats_absent_at_start_then_started() {
    let mut nats = NatsServer::start();
    nats.stop();
    let ipc = TempIpc::new();
    let mut bridge = Bridge::start(ipc.path(), &nats.url(), &[]);
    for i in 0..50u64 {
        write_json(
            ipc.schedule(&format!("{i:04}")),
            &json!({"name":"n","action":"add","i":i}),
        );
    }
    let spool = ipc.path().join(".bridge-spool");
    eventually(T, "50 spooled events", || {
        let n = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
        async move { (n >= 50).then_some(()) }
    })
    .await;
    nats.restart();
    let js = nats.jetstream().await;
    eventually(T, "stream created by the bridge", || {
        let js = js.clone();
        async move { js.get_stream("sympozium").await.ok() }
    })
    .await;
    let got = wait_stored(&js, 50, T).await;
    let idx: Vec<u64> = got.iter().map(|m| index_of(m).1).collect();
    assert_eq!(idx, (0..50).collect::<Vec<_>>());
    eventually(T, "spool drained", || {
        let n = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
        async move { (n == 0).then_some(()) }
    })
    .await;
    write_json(ipc.result(), &json!({"status":"success"}));
    assert!(bridge.wait_exit(T).await.success());
    assert_eq!(stored(&js).await.len(), 51);
}

#[tokio::test]
async fn nats_killed_and_restarted_while_1000_events_are_written() {
    let mut nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    let mut bridge = Bridge::start(ipc.path(), &nats.url(), &[("IPC_BRIDGE_ACK_TIMEOUT", "1s")]);
    let per_kind = 500u64;
    let root = ipc.root().clone();
    // Write in a thread, alternating kinds, while this task kills and
    // restarts the server.
    let writer = std::thread::spawn(move || {
        for i in 0..per_kind {
            write_json(
                root.schedule(&format!("{i:04}")),
                &json!({"name":"n","action":"add","i":i}),
            );
            write_json(
                root.outbound_message(&format!("{i:04}")),
                &json!({"channel":"slack","text":"t","i":i}),
            );
            if i.is_multiple_of(50) {
                std::thread::yield_now();
            }
        }
    });
    // Kill once some events are in, restart shortly after.
    wait_stored(&js, 100, T).await;
    drop(js);
    nats.stop();
    eventually(T, "events spooled while NATS is down", || {
        let n = std::fs::read_dir(ipc.path().join(".bridge-spool"))
            .map(|d| d.count())
            .unwrap_or(0);
        async move { (n > 0).then_some(()) }
    })
    .await;
    nats.restart();
    writer.join().unwrap();
    let js = nats.jetstream().await;
    wait_stored(&js, 2 * per_kind as usize, Duration::from_secs(60)).await;
    write_json(ipc.result(), &json!({"status":"success"}));
    assert!(bridge.wait_exit(T).await.success());
    let got: Vec<Stored> = stored(&js)
        .await
        .into_iter()
        .filter(|m| m.subject != "sympozium.agent.run.completed")
        .collect();
    assert!(got.len() >= 2 * per_kind as usize);
    for subject in [
        "sympozium.schedule.upsert",
        "sympozium.channel.message.send",
    ] {
        let idx: Vec<u64> = got
            .iter()
            .map(index_of)
            .filter(|(s, _)| s == subject)
            .map(|(_, i)| i)
            .collect();
        assert_eq!(
            idx,
            (0..per_kind).collect::<Vec<_>>(),
            "{subject}: exactly once, in order"
        );
    }
    assert!(
        bridge.log().contains("re-sending"),
        "the outage was noticed"
    );
}

#[tokio::test]
async fn idle_consumer_past_the_inactivity_threshold_still_receives() {
    let nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    let _bridge = Bridge::start(
        ipc.path(),
        &nats.url(),
        &[("IPC_BRIDGE_CONSUMER_INACTIVE_THRESHOLD", "500ms")],
    );
    let name =
        ipc_bridge::subscribe::durable_name(RUN, ipc_bridge::subscribe::Kind::DelegateResult);
    let stream = js.get_stream("sympozium").await.unwrap();
    eventually(T, "delegate consumer", || {
        let (stream, name) = (stream.clone(), name.clone());
        async move {
            stream
                .get_consumer::<jetstream::consumer::pull::Config>(&name)
                .await
                .ok()
        }
    })
    .await;
    // Idle well past the threshold: this wait is the point of the test.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let send = |id: &'static str| {
        let js = js.clone();
        async move {
            let body = json!({"topic":"agent.delegate.result.run-1","timestamp":"t","metadata":{},"data":{"requestId":id,"status":"success"}});
            js.publish(
                format!("sympozium.agent.delegate.result.{RUN}"),
                body.to_string().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
    };
    send("after-idle").await;
    wait_for_file(ipc.spawn_result("after-idle"), T).await;
    // Even a consumer removed behind the bridge's back is re-created, and a
    // message published meanwhile is not lost.
    stream.delete_consumer(&name).await.unwrap();
    send("after-delete").await;
    wait_for_file(ipc.spawn_result("after-delete"), T).await;
}

#[tokio::test]
async fn sigterm_keeps_unsent_events_in_the_spool_for_the_next_start() {
    let mut nats = NatsServer::start();
    nats.stop();
    let ipc = TempIpc::new();
    let mut bridge = Bridge::start(
        ipc.path(),
        &nats.url(),
        &[("IPC_BRIDGE_DRAIN_TIMEOUT", "300ms")],
    );
    for i in 0..5u64 {
        write_json(
            ipc.schedule(&format!("{i:04}")),
            &json!({"name":"n","action":"add","i":i}),
        );
    }
    let spool = ipc.path().join(".bridge-spool");
    eventually(T, "5 spooled", || {
        let n = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
        async move { (n >= 5).then_some(()) }
    })
    .await;
    bridge.sigterm();
    let status = bridge.wait_exit(T).await;
    assert!(status.success(), "{status:?}");
    assert!(
        bridge.log().contains("stay in the spool"),
        "{}",
        bridge.log()
    );
    // Next start (say, the container restarted) with NATS up publishes them.
    nats.restart();
    let js = ensure_stream(&nats).await;
    let mut bridge = Bridge::start(ipc.path(), &nats.url(), &[]);
    let got = wait_stored(&js, 5, T).await;
    let idx: Vec<u64> = got.iter().map(|m| index_of(m).1).collect();
    assert_eq!(idx, vec![0, 1, 2, 3, 4]);
    bridge.sigterm();
    assert!(bridge.wait_exit(T).await.success());
    // The re-scan of the same files on restart deduplicated: still 5.
    assert_eq!(stored(&js).await.len(), 5);
}

#[tokio::test]
async fn missing_run_id_is_a_clear_error_and_help_works() {
    let ipc = TempIpc::new();
    let mut b = Bridge::start_args(
        &["-ipc-path", ipc.path().to_str().unwrap()],
        "nats://127.0.0.1:1",
        &[],
    );
    let status = b.wait_exit(T).await;
    assert_eq!(status.code(), Some(1));
    let log = b.log();
    assert!(
        log.contains("AGENT_RUN_ID") && !log.contains("panicked"),
        "{log}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_ipc-bridge"))
        .arg("-help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--ipc-path",
        "--agent-run-id",
        "--instance",
        "--namespace",
        "--event-bus-url",
        "EVENT_BUS_URL",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// `ipc-bridge --probe` (for a startupProbe; needs no AGENT_RUN_ID).
fn probe(root: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ipc-bridge"))
        .args(["--probe", "-ipc-path", root.to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap()
}

#[tokio::test]
async fn readiness_marker_means_files_written_after_it_are_seen() {
    let nats = NatsServer::start();
    let js = ensure_stream(&nats).await;
    let ipc = TempIpc::new();
    let root = ipc.path().join("pod-ipc");
    let r = agentpod_sdk::ipc::IpcRoot::new(&root);

    let before = probe(&root);
    assert_eq!(before.status.code(), Some(1));
    let err = String::from_utf8_lossy(&before.stderr);
    assert!(err.contains(".ipc-bridge-ready"), "{err}");

    // No rescan within the test: only the inotify watches can see a file.
    let mut bridge = Bridge::start(
        &root,
        &nats.url(),
        &[("IPC_BRIDGE_RESCAN_INTERVAL", "300s")],
    );
    wait_for_file(&r.bridge_ready(), T).await;
    let after = probe(&root);
    assert!(after.status.success(), "{after:?}");

    // An exec request lives only until its result is read (the agent
    // deletes it): one that exists for 200 ms right after the marker is
    // still published.
    write_json(r.exec_request("5"), &json!({"id":"5","command":"true"}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::remove_file(r.exec_request("5")).unwrap();
    let got = wait_stored(&js, 1, T).await;
    assert_eq!(got[0].subject, "sympozium.tool.exec.request");
    assert_eq!(got[0].body["data"]["id"], "5", "{:?}", got[0].body);

    write_json(r.result(), &json!({"status":"success","response":"ok"}));
    assert!(bridge.wait_exit(T).await.success());
}
