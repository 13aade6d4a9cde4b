//! The first mistakes a newcomer makes, each played from a fresh copy of
//! the repository in a network namespace with only loopback: what the user
//! sees (the message), the exit code, how long it takes to fail (under
//! 5 s for a configuration mistake), and that nothing tried to leave the
//! machine.
//!
//! Exit codes: 2 for a mistake in the input or the setup (nothing
//! started), 1 for a run that failed, the container's code for a failed
//! init container.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use agentpod_newcomer::{Case, FreshClone, Seen, bin_dir};

/// One case at a time: the timings are the user's, not the machine's load.
static SERIAL: Mutex<()> = Mutex::new(());

const CONFIG_MISTAKE: Duration = Duration::from_secs(5);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn bins() -> String {
    bin_dir().display().to_string()
}

/// A configuration mistake: exit 2 within 5 s, nothing left the machine,
/// no backtrace (RUST_BACKTRACE=1 is set).
fn assert_config_mistake(seen: &Seen) {
    assert_eq!(seen.code, Some(2), "{}", seen.all());
    assert!(
        seen.took < CONFIG_MISTAKE,
        "took {:?}:\n{}",
        seen.took,
        seen.all()
    );
    seen.assert_stayed_local();
    let all = seen.all();
    for noise in [
        "stack backtrace",
        "Stack backtrace",
        "Caused by",
        "panicked",
    ] {
        assert!(!all.contains(noise), "{noise}:\n{all}");
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn a_broken_conversation_stops_the_demo_with_the_models_own_error() {
    let _s = serial();
    let clone = FreshClone::new();
    write(
        clone.path(),
        "broken-conversation.yaml",
        "turns:\n  - txt: hello\n",
    );
    let seen = Case::new(
        clone.path(),
        "scripts/demo.sh examples/agentruns/plain.yaml broken-conversation.yaml",
    )
    .env("AGENTPOD_BIN_DIR", &bins())
    .run(Duration::from_secs(30));
    assert_config_mistake(&seen);
    assert!(
        seen.stderr
            .contains("demo: the scripted model did not start")
            && seen.stderr.contains("broken-conversation.yaml")
            && seen.stderr.contains("unknown field `txt`"),
        "{}",
        seen.stderr
    );
    assert!(
        !seen.stderr.contains("agentpod run"),
        "no run started:\n{}",
        seen.stderr
    );
}

#[test]
fn an_agentrun_of_ones_own_needs_a_conversation() {
    let _s = serial();
    let clone = FreshClone::new();
    let seen = Case::new(
        clone.path(),
        "scripts/demo.sh examples/agentruns/plain.yaml",
    )
    .env("AGENTPOD_BIN_DIR", &bins())
    .run(Duration::from_secs(30));
    assert_config_mistake(&seen);
    assert!(
        seen.stderr
            .contains("plain.yaml needs a conversation for the scripted model"),
        "{}",
        seen.stderr
    );
    assert!(!seen.stderr.contains("SCRIPTED"), "{}", seen.stderr);
}

#[test]
fn a_conversation_that_does_not_match_fails_at_once_with_the_mismatch() {
    let _s = serial();
    let clone = FreshClone::new();
    let seen = Case::new(
        clone.path(),
        "scripts/demo.sh examples/agentruns/plain.yaml examples/conversations/hello.yaml",
    )
    .env("AGENTPOD_BIN_DIR", &bins())
    .run(Duration::from_secs(60));
    assert_eq!(seen.code, Some(1), "{}", seen.stderr);
    assert!(seen.took < Duration::from_secs(15), "took {:?}", seen.took);
    seen.assert_stayed_local();
    let result = seen
        .stderr
        .lines()
        .find(|l| l.contains("result   │"))
        .unwrap_or_else(|| panic!("no result line:\n{}", seen.stderr));
    assert!(
        result.contains("error: ")
            && result.contains("does not match turn 1")
            && result.contains("hello.txt"),
        "the model server's own words: {result}"
    );
    assert!(!result.contains("gave up after"), "not retried: {result}");
    assert!(
        !seen.stderr.contains("tokens: 0 in, 0 out"),
        "{}",
        seen.stderr
    );
}

#[test]
fn the_demo_plays_from_any_folder_with_each_tools_own_time() {
    let _s = serial();
    let clone = FreshClone::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let seen = Case::new(
        elsewhere.path(),
        &format!("{}/scripts/demo.sh", clone.path().display()),
    )
    .env("AGENTPOD_BIN_DIR", &bins())
    .run(Duration::from_secs(90));
    assert_eq!(seen.code, Some(0), "{}", seen.stderr);
    seen.assert_stayed_local();
    for sign in [
        "✓ mcp-bridge ready",
        "← demo_add",
        "result   │ success",
        "tokens: 3700 in, 245 out",
    ] {
        assert!(seen.stderr.contains(sign), "{sign}:\n{}", seen.stderr);
    }
    assert!(!seen.stderr.contains("warning  │"), "{}", seen.stderr);
    // write_file ran alongside a sidecar round trip: its own time, not
    // that one's.
    let write = seen
        .stderr
        .lines()
        .find(|l| l.contains("← write_file ("))
        .expect("write_file result");
    let ms: u64 = write
        .split("← write_file (")
        .nth(1)
        .and_then(|r| r.split(" ms").next())
        .and_then(|n| n.parse().ok())
        .expect("a duration");
    assert!(ms < 2000, "{write}");
}

#[test]
fn agentpod_run_takes_the_model_from_its_environment_and_nothing_unasked() {
    let _s = serial();
    let clone = FreshClone::new();
    write(
        clone.path(),
        "one-turn.yaml",
        "turns:\n  - text: hello from the model in MODEL_BASE_URL\n",
    );
    // No URL, no key: refused before anything starts.
    let seen = Case::new(
        clone.path(),
        "target/debug/agentpod run examples/agentruns/plain.yaml",
    )
    .run(Duration::from_secs(30));
    assert_config_mistake(&seen);
    assert_eq!(seen.stderr.lines().count(), 1, "{}", seen.stderr);
    assert!(
        seen.stderr.contains("no MODEL_BASE_URL and no API key")
            && seen.stderr.contains("https://api.openai.com/v1"),
        "{}",
        seen.stderr
    );
    // MODEL_BASE_URL in the environment, not as --env: used.
    let seen = Case::new(
        clone.path(),
        "target/debug/scripted-llm one-turn.yaml > url 2> llm.log &\n\
         for _ in $(seq 100); do [ -s url ] && break; sleep 0.05; done\n\
         MODEL_BASE_URL=$(cat url) API_KEY=k target/debug/agentpod run examples/agentruns/plain.yaml",
    )
    .run(Duration::from_secs(60));
    assert_eq!(seen.code, Some(0), "{}", seen.stderr);
    seen.assert_stayed_local();
    assert!(
        seen.stderr
            .contains("result   │ success: hello from the model in MODEL_BASE_URL"),
        "{}",
        seen.stderr
    );
}

#[test]
fn podman_without_images_names_make_images_once_and_exits_cleanly() {
    let _s = serial();
    let clone = FreshClone::new();
    let seen = Case::new(clone.path(), "AGENTPOD_ENGINE=podman scripts/demo.sh")
        .env("AGENTPOD_BIN_DIR", &bins())
        .run(Duration::from_secs(30));
    assert_config_mistake(&seen);
    assert_eq!(
        seen.stderr.matches("make images").count(),
        1,
        "{}",
        seen.stderr
    );
    for noise in ["setup-podman", "cd:", "No such file"] {
        assert!(!seen.stderr.contains(noise), "{noise}:\n{}", seen.stderr);
    }
    assert!(seen.stderr.contains("== exit code: 2"), "{}", seen.stderr);
}

#[test]
fn validate_gives_the_documented_line_per_problem() {
    let _s = serial();
    let clone = FreshClone::new();
    let corpus = clone.path().join("operator/tests/broken");
    let seen = Case::new(
        &corpus,
        "../../../target/debug/agentpod validate *.yaml missing.yaml",
    )
    .run(Duration::from_secs(30));
    assert_eq!(seen.code, Some(1), "{}", seen.stderr);
    assert!(seen.took < CONFIG_MISTAKE);
    let expected = std::fs::read_to_string(corpus.join("expected.txt")).unwrap();
    assert_eq!(seen.stdout, expected);
}

#[test]
fn a_missing_file_is_one_line_without_a_backtrace() {
    let _s = serial();
    let clone = FreshClone::new();
    let seen = Case::new(clone.path(), "target/debug/agentpod run nowhere.yaml")
        .run(Duration::from_secs(30));
    assert_config_mistake(&seen);
    assert_eq!(
        seen.stderr,
        "nowhere.yaml: no such file\nagentpod: 1 problem(s) in the input; nothing was done\n"
    );
}

const FAILING_HOOK: &str = r#"apiVersion: sympozium.ai/v1alpha1
kind: Agent
metadata: {name: helper, namespace: demo}
spec: {}
---
apiVersion: sympozium.ai/v1alpha1
kind: AgentRun
metadata: {name: prepared, namespace: demo}
spec:
  agentRef: helper
  agentId: helper
  sessionKey: s-1
  task: hi
  model: {provider: openai, model: m, baseURL: "http://127.0.0.1:1/v1", authSecretRef: ""}
  lifecycle:
    preRun:
      - name: prep
        image: ghcr.io/example/prep:1.0
        command: [/bin/sh, -c, "echo the cache at cache.example cannot be reached >&2; exit 3"]
"#;

#[test]
fn a_failing_init_container_ends_the_run_at_once_with_its_reason() {
    let _s = serial();
    let clone = FreshClone::new();
    write(clone.path(), "prepared.yaml", FAILING_HOOK);
    let seen = Case::new(clone.path(), "target/debug/agentpod run prepared.yaml")
        .run(Duration::from_secs(30));
    assert_eq!(seen.code, Some(3), "the hook's exit code:\n{}", seen.stderr);
    assert!(seen.took < CONFIG_MISTAKE, "took {:?}", seen.took);
    seen.assert_stayed_local();
    for sign in [
        "✗ pre-prep ended: exit 3",
        "the cache at cache.example cannot be reached",
        "init container pre-prep failed",
    ] {
        assert!(seen.stderr.contains(sign), "{sign}:\n{}", seen.stderr);
    }
    assert!(!seen.stderr.contains("agent container"), "{}", seen.stderr);
}

#[test]
fn a_retrying_init_container_shows_why_at_once() {
    let _s = serial();
    let clone = FreshClone::new();
    let demo = std::fs::read_to_string(clone.path().join("examples/demo/agentrun.yaml")).unwrap();
    let broken = demo.replace(
        "../../sidecars/mcp-bridge/tests/servers/py_server.py",
        "../../no/such/server.py",
    );
    assert_ne!(broken, demo);
    write(
        &clone.path().join("examples/demo"),
        "broken-mcp.yaml",
        &broken,
    );
    write(
        clone.path(),
        "one-turn.yaml",
        "turns:\n  - text: done without MCP\n",
    );
    let seen = Case::new(
        clone.path(),
        "target/debug/scripted-llm one-turn.yaml > url 2> llm.log &\n\
         for _ in $(seq 100); do [ -s url ] && break; sleep 0.05; done\n\
         MODEL_BASE_URL=$(cat url) API_KEY=k target/debug/agentpod run examples/demo/broken-mcp.yaml",
    )
    .run(Duration::from_secs(60));
    seen.assert_stayed_local();
    let why = seen
        .stderr
        .lines()
        .find(|l| l.contains("log      │ ! mcp-discover: WARN") && l.contains("can't open file"))
        .unwrap_or_else(|| panic!("the reason is not on the timeline:\n{}", seen.stderr));
    let at: f64 = why
        .split_whitespace()
        .next()
        .and_then(|t| t.trim_end_matches('s').parse().ok())
        .expect("a time stamp");
    assert!(at < 5.0, "shown at {at} s: {why}");
    // The server is skipped (as in a cluster) and the run goes on, promptly.
    assert_eq!(seen.code, Some(0), "{}", seen.stderr);
    assert!(seen.took < Duration::from_secs(30), "took {:?}", seen.took);
}
