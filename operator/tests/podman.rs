//! The images of `make images` and `agentpod run --engine podman`, for
//! real: every image started as UID 1000 with a read-only root; the demo
//! AgentRun as podman containers (same result, files and NATS events as
//! the process engine) with nothing left behind, also after Ctrl-C.
//!
//! The images are built on demand with `scripts/images.sh` (quick when up
//! to date). When podman cannot run here these tests fail, loudly; set
//! `AGENTPOD_SKIP_PODMAN=1` to skip them on purpose.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use agentpod_operator::run::podman::IMAGES;
use agentpod_test_support::llm::{Script, ScriptedLlm};
use common::{
    BIN, all_events, assert_demo_outcome, assert_stopped_on_sigint, ensure_binaries,
    events_until_agent_started, live_cmdlines, of, root, sigint, start_run, wait_exit,
};
use serde_json::Value;

fn image(name: &str) -> String {
    format!("localhost/agentpod/{name}:dev")
}

/// `false` (and a SKIPPED line) when `AGENTPOD_SKIP_PODMAN=1`; else builds
/// the images once per test binary, panicking with the script's output
/// when that fails.
fn images_ready(test: &str) -> bool {
    static BUILT: Mutex<bool> = Mutex::new(false);
    if std::env::var("AGENTPOD_SKIP_PODMAN").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: AGENTPOD_SKIP_PODMAN=1");
        return false;
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let out = Command::new("bash")
            .arg("scripts/images.sh")
            .current_dir(root())
            .output()
            .expect("running scripts/images.sh");
        assert!(
            out.status.success(),
            "scripts/images.sh failed ({}): podman cannot build the images here \
             (set AGENTPOD_SKIP_PODMAN=1 to skip these tests on purpose)\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        *built = true;
    }
    true
}

/// `scripts/podman.sh <args>` (the private store).
fn podman(args: &[&str]) -> Output {
    Command::new("bash")
        .arg("scripts/podman.sh")
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("running scripts/podman.sh")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ---------------------------------------------------------------- images

#[test]
fn every_image_starts_as_uid_1000_with_a_read_only_root() {
    if !images_ready("every_image_starts_as_uid_1000_with_a_read_only_root") {
        return;
    }
    for name in IMAGES {
        let img = image(name);
        let conf = podman(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}|{{.Config.WorkingDir}}",
            &img,
        ]);
        assert!(conf.status.success(), "{img}: {}", text(&conf));
        assert_eq!(
            String::from_utf8_lossy(&conf.stdout).trim(),
            "1000:1000|/workspace",
            "{img}: image user and working directory"
        );
        // The image's own user (no --user), no network, read-only root.
        let out = podman(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--cap-drop",
            "all",
            &img,
            "--help",
        ]);
        assert!(out.status.success(), "{img} --help: {}", text(&out));
        assert!(text(&out).contains("Usage"), "{img} --help: {}", text(&out));
    }
}

/// Runs `cmd` with `entrypoint` in `name`'s image (read-only, no network);
/// returns stdout.
fn smoke(name: &str, entrypoint: &str, cmd: &[&str]) -> String {
    let img = image(name);
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--entrypoint",
        entrypoint,
        &img,
    ];
    args.extend_from_slice(cmd);
    let out = podman(&args);
    assert!(
        out.status.success(),
        "{img}: {entrypoint} {cmd:?}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skillpack_images_carry_their_tools_and_a_shell() {
    if !images_ready("skillpack_images_carry_their_tools_and_a_shell") {
        return;
    }
    for name in ["tool-executor", "skill-code", "skill-k8s-ops"] {
        let out = smoke(name, "/bin/sh", &["-c", "id -u; echo hi | tr a-z A-Z"]);
        assert_eq!(out, "1000\nHI\n", "{name}");
    }
    let out = smoke("skill-code", "git", &["--version"]);
    assert!(out.starts_with("git version"), "{out}");
    let out = smoke("skill-code", "rg", &["--version"]);
    assert!(out.starts_with("ripgrep"), "{out}");
    let out = smoke("skill-code", "make", &["--version"]);
    assert!(out.starts_with("GNU Make"), "{out}");
    // git and rg on a repository in /tmp (a tmpfs with --read-only).
    let out = smoke(
        "skill-code",
        "/bin/sh",
        &[
            "-c",
            "cd /tmp && git init -q r && cd r && echo 'fn main() {}' > a.rs \
             && git status --short && rg --line-number main a.rs",
        ],
    );
    assert_eq!(out, "?? a.rs\n1:fn main() {}\n");
    let out = smoke("skill-k8s-ops", "kubectl", &["version", "--client"]);
    assert!(out.contains("Client Version"), "{out}");
    let out = smoke("skill-text-tools", "/usr/local/bin/text-tools", &["tools"]);
    assert!(out.contains("word_count"), "{out}");
}

// ------------------------------------------------------------ the engine

/// The demo through the podman engine (the stdio MCP adapter runs here,
/// so `mcp-bridge` is built if missing).
fn start_podman_run(run_dir: &Path, model_url: &str) -> (Child, mpsc::Receiver<Value>) {
    ensure_binaries(&["mcp-bridge"]);
    start_run(run_dir, model_url, "podman")
}

/// No container of the run in the store, no process (conmon, `podman
/// run`, nats-server, adapter, MCP server) naming it or its folder.
fn assert_nothing_left(run_dir: &Path, containers: &[String]) {
    assert!(!containers.is_empty(), "the run started containers");
    let ps = podman(&["ps", "--all", "--format", "{{.Names}}"]);
    assert!(ps.status.success(), "{}", text(&ps));
    let names = String::from_utf8_lossy(&ps.stdout).into_owned();
    for c in containers {
        assert!(
            !names.lines().any(|n| n.trim() == c),
            "container {c} outlived the run: {names}"
        );
    }
    let folder = run_dir.display().to_string();
    for (pid, cmd) in live_cmdlines() {
        assert!(
            !cmd.contains(&folder) && !containers.iter().any(|c| cmd.contains(c.as_str())),
            "process {pid} ({cmd}) outlived the run"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_run_plays_the_whole_pod_in_podman() {
    if !images_ready("the_demo_run_plays_the_whole_pod_in_podman") {
        return;
    }
    let llm = ScriptedLlm::start(
        Script::from_file(root().join("examples/demo/conversation.yaml")).unwrap(),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let (mut child, rx) = start_podman_run(&run_dir, &llm.base_url());
    let (status, events, running) = tokio::task::spawn_blocking(move || {
        let mut running = String::new();
        let events = all_events(&rx, Duration::from_secs(180), |ev| {
            if ev["event"] == "tool_call" && running.is_empty() {
                running = text(&podman(&["ps", "--format", "{{.Names}} {{.Image}}"]));
            }
        });
        (
            wait_exit(&mut child, Duration::from_secs(10)),
            events,
            running,
        )
    })
    .await
    .unwrap();
    llm.assert_finished();
    assert_eq!(status.code(), Some(0), "events: {events:#?}");
    let of = |kind: &'static str| of(&events, kind);

    let run = of("run_started").next().unwrap();
    assert_eq!(run["engine"], "podman");
    assert_demo_outcome(&events, &run_dir);

    // Every container of the Pod is a container from our images.
    let mut containers = Vec::new();
    for e in of("container_started") {
        let c = e["container"].as_str().expect("a container name");
        assert!(
            e["program"]
                .as_str()
                .unwrap()
                .starts_with("localhost/agentpod/"),
            "{e}"
        );
        containers.push(c.to_owned());
    }
    for (c, img) in [
        ("agent", "agent-runner"),
        ("ipc-bridge", "ipc-bridge"),
        ("skill-demo-shell", "tool-executor"),
        ("memory-server", "memory-server"),
    ] {
        assert!(
            running
                .lines()
                .any(|l| l.contains(&format!("-{c} ")) && l.contains(&image(img))),
            "{c} ran as a container of {img}: {running}"
        );
    }
    containers.extend(
        running
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.contains("-memory-server"))
            .map(str::to_owned),
    );
    // The files were written by the containers, as UID 1000.
    use std::os::unix::fs::MetadataExt;
    let notes = std::fs::metadata(run_dir.join("workspace/notes.md")).unwrap();
    assert_eq!(notes.uid(), 1000);
    assert_nothing_left(&run_dir, &containers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_and_removes_every_container() {
    if !images_ready("ctrl_c_stops_and_removes_every_container") {
        return;
    }
    // The model never answers in time: the run is mid-flight when SIGINT comes.
    let script = Script::from_yaml_str("turns:\n  - text: late\n    delay_ms: 60000\n").unwrap();
    let llm = ScriptedLlm::start(script).await;
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let (mut child, rx) = start_podman_run(&run_dir, &llm.base_url());
    let pid = child.id();
    let (status, events, running) = tokio::task::spawn_blocking(move || {
        let mut events = events_until_agent_started(&rx, Duration::from_secs(120));
        // Wait until the agent container really runs (its model call hangs).
        let until = Instant::now() + Duration::from_secs(30);
        let running = loop {
            let ps = text(&podman(&["ps", "--format", "{{.Names}}"]));
            if ps.lines().any(|l| l.ends_with("-agent")) || Instant::now() > until {
                break ps;
            }
            std::thread::park_timeout(Duration::from_millis(100));
        };
        sigint(pid);
        while let Ok(ev) = rx.recv_timeout(Duration::from_secs(60)) {
            events.push(ev);
        }
        (
            wait_exit(&mut child, Duration::from_secs(10)),
            events,
            running,
        )
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130), "events: {events:#?}");
    let stopped = assert_stopped_on_sigint(&events);
    let removed: Vec<String> = stopped["containers"]
        .as_array()
        .expect("stopped containers are listed")
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    for c in [
        "-agent",
        "-ipc-bridge",
        "-skill-demo-shell",
        "-memory-server",
    ] {
        assert!(
            removed.iter().any(|r| r.ends_with(c)),
            "{c} not removed: {removed:?}"
        );
    }
    let ours: Vec<String> = running
        .lines()
        .map(str::trim)
        .filter(|n| removed.iter().any(|r| r == n))
        .map(str::to_owned)
        .collect();
    assert!(ours.len() >= 4, "containers mid-run: {running}");
    assert_nothing_left(&run_dir, &removed);
}

#[test]
fn a_missing_image_names_make_images() {
    // A tag nothing builds: the run must stop before starting anything.
    if std::env::var("AGENTPOD_SKIP_PODMAN").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED a_missing_image_names_make_images: AGENTPOD_SKIP_PODMAN=1");
        return;
    }
    ensure_binaries(&["mcp-bridge"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(root())
        .args(["run", "examples/demo/agentrun.yaml", "--engine", "podman"])
        .arg("--run-dir")
        .arg(tmp.path().join("run"))
        .env("AGENTPOD_LOCAL_TAG", "no-such-tag")
        .env_remove("EVENT_BUS_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a setup mistake: {err}");
    assert_eq!(err.matches("make images").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "said once: {err}");
    assert!(
        err.contains("localhost/agentpod/agent-runner:no-such-tag"),
        "{err}"
    );
}
