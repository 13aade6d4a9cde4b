//! The example agent runs against the scripted model and writes the same
//! outputs as agent-runner.

use agentpod_sdk::wire::marker::{LogOutcome, parse_result_from_logs};
use agentpod_test_support::TempIpc;
use agentpod_test_support::llm::{Expect, Script, ScriptedLlm, Turn};
use serde_json::json;

#[tokio::test]
async fn answers_with_its_own_tool() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::tool_call("c1", "word_stats", json!({"text": "one two\nthree"})).expect(
                    Expect {
                        tools: Some(vec!["word_stats".into()]),
                        ..Expect::default()
                    },
                ),
            )
            .turn(Turn::text("Three words on two lines.").expect(Expect {
                tool_results: vec![("c1", "words: 3, lines: 2, characters: 13").into()],
                ..Expect::default()
            })),
    )
    .await;
    let ipc = TempIpc::new();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_custom-agent"))
        .env_clear()
        .env("TASK", "Measure 'one two\\nthree'.")
        .env("MODEL_BASE_URL", llm.base_url())
        .env("API_KEY", "k")
        .env("AGENTPOD_IPC_ROOT", ipc.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    llm.assert_finished();
    match parse_result_from_logs(&String::from_utf8_lossy(&out.stdout)) {
        LogOutcome::Succeeded { response, .. } => assert_eq!(response, "Three words on two lines."),
        other => panic!("{other:?}"),
    }
    assert!(ipc.result().exists() && ipc.done().exists());
}

#[test]
fn help_names_the_environment_and_exits_zero() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_custom-agent"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["TASK", "MODEL_BASE_URL", "AGENTPOD_IPC_ROOT"] {
        assert!(text.contains(name), "{text}");
    }
}
