//! Exec round trips through a temp `/ipc/tools` (contract §4).
//!
//! The sidecar side is played by [`Responder`], which does what upstream's
//! `tool-executor.sh` does: it scans for `exec-request-*.json`, skips ids
//! that already have a result, claims each with `mkdir .claim-<id>`, handles
//! it in the background, and writes `exec-result-<id>.json.tmp` then renames
//! it into place. A variant writes the result in place in two chunks, the
//! way a careless writer would. A last test runs a real bash loop with a
//! shell `mv`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agentpod_sdk::exec::{ExecClient, ExecError};
use agentpod_sdk::ipc::WatchMode;
use agentpod_sdk::wire::{ExecRequest, ExecResult, Meta};
use agentpod_test_support::{KillOnDrop, TempIpc, eventually};
use serde_json::{Value, json};

/// How the responder writes a result.
#[derive(Clone, Copy)]
enum Style {
    /// `<result>.tmp`, then rename: upstream's `tool-executor.sh`.
    TmpThenMv,
    /// In place: the first half, a pause, the rest.
    TwoChunks(Duration),
}

/// A request the responder saw: the id in its file name and its JSON.
#[derive(Debug, Clone)]
struct Seen {
    file_id: String,
    body: Value,
}

type Answer = dyn Fn(&Value) -> Value + Send + Sync;

/// A sidecar stand-in that answers exec requests until dropped.
struct Responder {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    scanner: Option<JoinHandle<()>>,
}

impl Responder {
    /// Starts scanning `tools`; `answer` turns a request body into the
    /// result body (`id` is filled in when missing).
    fn start(
        tools: PathBuf,
        style: Style,
        answer: impl Fn(&Value) -> Value + Send + Sync + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let scanner = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    scan_once(&tools, style, &seen, &answer);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self {
            stop,
            seen,
            scanner: Some(scanner),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.scanner.take() {
            let _ = h.join();
        }
    }
}

fn scan_once(tools: &Path, style: Style, seen: &Arc<Mutex<Vec<Seen>>>, answer: &Arc<Answer>) {
    let Ok(entries) = fs::read_dir(tools) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix("exec-request-")
            .and_then(|r| r.strip_suffix(".json"))
            .map(str::to_owned)
        else {
            continue;
        };
        let result = tools.join(format!("exec-result-{id}.json"));
        if result.exists() || fs::create_dir(tools.join(format!(".claim-{id}"))).is_err() {
            continue;
        }
        let Ok(body) = fs::read(entry.path()) else {
            continue;
        };
        let body: Value = serde_json::from_slice(&body).expect("requests are written whole");
        seen.lock().unwrap().push(Seen {
            file_id: id.clone(),
            body: body.clone(),
        });
        let answer = answer.clone();
        // Like `process_request &`: each request is handled on its own.
        std::thread::spawn(move || {
            let mut out = answer(&body);
            if out.get("id").is_none() {
                out["id"] = json!(id);
            }
            let bytes = serde_json::to_vec(&out).unwrap();
            match style {
                Style::TmpThenMv => {
                    let tmp = result.with_extension("json.tmp");
                    fs::write(&tmp, &bytes).unwrap();
                    fs::rename(&tmp, &result).unwrap();
                }
                Style::TwoChunks(pause) => {
                    let mut f = fs::File::create(&result).unwrap();
                    let half = bytes.len() / 2;
                    f.write_all(&bytes[..half]).unwrap();
                    f.flush().unwrap();
                    std::thread::sleep(pause);
                    f.write_all(&bytes[half..]).unwrap();
                }
            }
        });
    }
}

/// The names in `dir` that are not hidden (claims and staging are).
fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Echoes the command (or argv and stdin) back as stdout.
fn echo(req: &Value) -> Value {
    let stdout = match req["argv"].as_array() {
        Some(argv) => format!(
            "{}|{}",
            argv.iter()
                .map(|a| a.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" "),
            req["stdin"].as_str().unwrap_or("")
        ),
        None => req["command"].as_str().unwrap().to_owned(),
    };
    json!({"exitCode": 0, "stdout": stdout, "stderr": "", "timedOut": false})
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn shell_request_round_trip_through_tmp_then_mv() {
    let ipc = TempIpc::new();
    let responder = Responder::start(
        ipc.tools(),
        Style::TmpThenMv,
        |_| json!({"exitCode": 3, "stdout": "out", "stderr": "err", "timedOut": false}),
    );
    let client = ExecClient::new(ipc.root().clone());

    let meta = Meta::new("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true);
    let mut req = ExecRequest::shell("caller-id-is-replaced", "kubectl get pods");
    req.work_dir = "/workspace/sub".into();
    req.timeout = 45;
    req.target = "k8s-ops".into();
    req.meta = Some(meta.clone());
    let result = client.run(req, WAIT).await.expect("a result");

    let seen = responder.seen();
    assert_eq!(seen.len(), 1);
    let Seen { file_id, body } = &seen[0];
    assert_eq!(body["id"], json!(file_id), "id matches the file name");
    assert!(file_id.parse::<u64>().is_ok(), "decimal nanos: {file_id}");
    assert_eq!(
        *body,
        json!({
            "id": file_id,
            "command": "kubectl get pods",
            "workDir": "/workspace/sub",
            "timeout": 45,
            "target": "k8s-ops",
            "_meta": {
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "traceparent": meta.traceparent,
            }
        })
    );
    assert_eq!(
        result,
        ExecResult {
            id: file_id.clone(),
            exit_code: 3,
            stdout: "out".into(),
            stderr: "err".into(),
            timed_out: false,
        }
    );
    // Request and result are gone; only the executor's claim is left.
    assert!(
        visible(&ipc.tools()).is_empty(),
        "{:?}",
        visible(&ipc.tools())
    );
    assert!(ipc.tools().join(format!(".claim-{file_id}")).is_dir());
    // Nothing was staged inside the watched directory.
    assert!(!ipc.tools().join(".staging").exists());
}

#[tokio::test]
async fn argv_request_round_trip() {
    let ipc = TempIpc::new();
    let responder = Responder::start(ipc.tools(), Style::TmpThenMv, echo);
    let client = ExecClient::new(ipc.root().clone());

    let mut req = ExecRequest::argv(
        "",
        vec!["tool".into(), "--".into(), "two\nlines".into(), "42".into()],
    );
    req.stdin = r#"{"q":"x"}"#.into();
    req.timeout = 120;
    req.target = "echotool".into();
    let result = client.run(req, WAIT).await.expect("a result");

    let body = &responder.seen()[0].body;
    assert_eq!(body["command"], json!(""), "command is always written");
    assert_eq!(body["argv"], json!(["tool", "--", "two\nlines", "42"]));
    assert_eq!(body["stdin"], json!(r#"{"q":"x"}"#));
    assert_eq!(body["workDir"], json!("/workspace"));
    assert!(body.get("_meta").is_none(), "no trace context, no _meta");
    assert!(body.get("args").is_none());
    assert_eq!(result.stdout, "tool -- two\nlines 42|{\"q\":\"x\"}");
    assert!(visible(&ipc.tools()).is_empty());
}

#[tokio::test]
async fn a_result_written_in_two_chunks_is_read_whole() {
    let ipc = TempIpc::new();
    let long = "x".repeat(4096);
    let want = long.clone();
    let _responder = Responder::start(
        ipc.tools(),
        Style::TwoChunks(Duration::from_millis(200)),
        move |_| json!({"exitCode": 0, "stdout": long, "stderr": "", "timedOut": false}),
    );
    let client = ExecClient::new(ipc.root().clone());
    let started = Instant::now();
    let result = client
        .run(ExecRequest::shell("", "cat big"), WAIT)
        .await
        .expect("a result");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the first chunk was not taken for the result"
    );
    assert_eq!(result.stdout, want);
    assert!(visible(&ipc.tools()).is_empty());
}

#[tokio::test]
async fn nobody_answers_times_out_and_removes_the_request() {
    let ipc = TempIpc::new();
    let client = ExecClient::new(ipc.root().clone());
    let started = Instant::now();
    let err = client
        .run(
            ExecRequest::shell("", "sleep 100"),
            Duration::from_millis(300),
        )
        .await
        .expect_err("nobody answers");
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let ExecError::Timeout {
        id,
        waited,
        invalid,
    } = &err
    else {
        unreachable!()
    };
    assert_eq!(*waited, Duration::from_millis(300));
    assert_eq!(*invalid, None);
    assert_eq!(
        err.to_string(),
        format!("no result for exec request {id} within 300ms")
    );
    assert!(visible(&ipc.tools()).is_empty(), "the request is removed");
}

#[tokio::test]
async fn a_result_that_never_decodes_is_named_in_the_timeout() {
    let ipc = TempIpc::new();
    let tools = ipc.tools();
    // A broken sidecar: answers with half a document and never finishes it.
    let breaker = tokio::spawn(async move {
        let id = eventually(Duration::from_secs(5), "an exec request", || {
            let tools = tools.clone();
            async move {
                fs::read_dir(&tools).ok()?.flatten().find_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("exec-request-")
                        .and_then(|r| r.strip_suffix(".json"))
                        .map(str::to_owned)
                })
            }
        })
        .await;
        let path = tools.join(format!("exec-result-{id}.json"));
        fs::write(&path, br#"{"id":"1","stdout":"#).unwrap();
        path
    });
    let client = ExecClient::new(ipc.root().clone());
    let err = client
        .run(ExecRequest::shell("", "x"), Duration::from_millis(1600))
        .await
        .expect_err("the result never decodes");
    let path = breaker.await.unwrap();
    let ExecError::Timeout { invalid, .. } = &err else {
        panic!("{err}")
    };
    assert!(invalid.is_some(), "{err}");
    assert!(err.to_string().contains("never decoded"), "{err}");
    // The half result is left for inspection; the request is gone.
    assert_eq!(
        visible(&ipc.tools()),
        [path.file_name().unwrap().to_string_lossy()]
    );
}

#[tokio::test]
async fn eight_concurrent_runs_get_their_own_results() {
    let ipc = TempIpc::new();
    let responder = Responder::start(ipc.tools(), Style::TmpThenMv, |req| {
        // Answer out of order: later commands first.
        let n: u64 = req["command"].as_str().unwrap()[5..].parse().unwrap();
        std::thread::sleep(Duration::from_millis(80 - n * 10));
        echo(req)
    });
    let client = ExecClient::new(ipc.root().clone());
    let runs = (0..8).map(|i| {
        let client = client.clone();
        async move {
            let r = client
                .run(ExecRequest::shell("", format!("echo {i}")), WAIT)
                .await
                .expect("a result");
            (i, r)
        }
    });
    let results = futures::future::join_all(runs).await;
    for (i, r) in &results {
        assert_eq!(r.stdout, format!("echo {i}"), "no cross-talk");
    }
    let seen = responder.seen();
    assert_eq!(seen.len(), 8);
    let mut ids: Vec<&str> = seen.iter().map(|s| s.file_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "distinct ids");
    for (i, r) in &results {
        let s = seen
            .iter()
            .find(|s| s.body["command"] == json!(format!("echo {i}")))
            .unwrap();
        assert_eq!(r.id, s.file_id);
    }
    assert!(visible(&ipc.tools()).is_empty());
}

#[tokio::test]
async fn sequential_runs_restart_the_watcher() {
    let ipc = TempIpc::new();
    let _responder = Responder::start(ipc.tools(), Style::TmpThenMv, echo);
    let client = ExecClient::new(ipc.root().clone());
    for i in 0..3 {
        let r = client
            .run(ExecRequest::shell("", format!("run {i}")), WAIT)
            .await
            .expect("a result");
        assert_eq!(r.stdout, format!("run {i}"));
    }
}

#[tokio::test]
async fn poll_only_mode_works_without_inotify() {
    let ipc = TempIpc::new();
    let _responder = Responder::start(ipc.tools(), Style::TmpThenMv, echo);
    let client = ExecClient::with_watch(
        ipc.root().clone(),
        WatchMode::PollOnly,
        Duration::from_millis(20),
    );
    let r = client
        .run(ExecRequest::shell("", "polled"), WAIT)
        .await
        .expect("a result");
    assert_eq!(r.stdout, "polled");
}

#[tokio::test]
async fn a_dropped_call_removes_its_request() {
    let ipc = TempIpc::new();
    let client = ExecClient::new(ipc.root().clone());
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .run(ExecRequest::shell("", "never"), Duration::from_secs(60))
                .await
        }
    });
    let tools = ipc.tools();
    eventually(Duration::from_secs(5), "the request file", || {
        let tools = tools.clone();
        async move { (!visible(&tools).is_empty()).then_some(()) }
    })
    .await;
    task.abort();
    let _ = task.await;
    assert!(visible(&ipc.tools()).is_empty());
}

/// Like `tool-executor.sh`'s main loop, with coreutils only: no jq, the
/// result JSON is printed with printf, then `mv`ed into place.
const BASH_RESPONDER: &str = r#"
set -eu
cd "$1"
while [ ! -e ../done ]; do
  for f in exec-request-*.json; do
    [ -e "$f" ] || continue
    id=${f#exec-request-}
    id=${id%.json}
    [ -e "exec-result-$id.json" ] && continue
    mkdir ".claim-$id" 2>/dev/null || continue
    printf '{"id":"%s","exitCode":%d,"stdout":"%s","stderr":"","timedOut":false}' \
      "$id" 7 "from bash $id" > "exec-result-$id.json.tmp"
    mv "exec-result-$id.json.tmp" "exec-result-$id.json"
  done
  sleep 0.02
done
"#;

#[tokio::test]
async fn a_bash_responder_with_mv_works() {
    if Command::new("bash").arg("-c").arg("true").status().is_err() {
        eprintln!("bash not found; skipping");
        return;
    }
    let ipc = TempIpc::new();
    let mut bash = KillOnDrop(
        Command::new("bash")
            .arg("-c")
            .arg(BASH_RESPONDER)
            .arg("responder")
            .arg(ipc.tools())
            .stdin(Stdio::null())
            .spawn()
            .expect("start bash"),
    );
    let client = ExecClient::new(ipc.root().clone());
    for cmd in ["first", "second"] {
        let r = client
            .run(ExecRequest::shell("", cmd), WAIT)
            .await
            .expect("bash answers");
        assert_eq!(r.stdout, format!("from bash {}", r.id));
        assert_eq!(r.exit_code, 7);
    }
    assert!(visible(&ipc.tools()).is_empty());
    // `/ipc/done` ends the loop, as it ends the real executor.
    fs::write(ipc.done(), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while bash.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "bash did not exit on /ipc/done");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_client_outlives_the_runtime_that_started_its_watcher() {
    let ipc = TempIpc::new();
    let client = ExecClient::new(ipc.root().clone());
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    // A call abandoned while waiting, and then its runtime dropped: the
    // dispatcher task dies with it, mid-flight.
    let rt = runtime();
    let abandoned = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(100),
            client.run(ExecRequest::shell("", "abandoned"), WAIT),
        )
        .await
    });
    assert!(abandoned.is_err(), "nobody answers yet");
    drop(rt);
    assert!(visible(&ipc.tools()).is_empty(), "the request is removed");

    let _responder = Responder::start(ipc.tools(), Style::TmpThenMv, echo);
    let rt = runtime();
    let started = Instant::now();
    let r = rt
        .block_on(client.run(ExecRequest::shell("", "later"), Duration::from_secs(3)))
        .expect("a new watcher answers");
    assert_eq!(r.stdout, "later");
    // Not rescued by the last look at the deadline: woken well before.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
