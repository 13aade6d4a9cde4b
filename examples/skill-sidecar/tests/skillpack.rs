//! `skillpacks/text-tools.yaml` declares exactly the tools this binary
//! serves.

use std::path::Path;

use serde_json::Value;

#[test]
fn the_skillpack_yaml_matches_the_toolkit() {
    let yaml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../skillpacks/text-tools.yaml");
    let pack: Value = serde_yaml::from_str(&std::fs::read_to_string(yaml).unwrap()).unwrap();
    let declared = pack["spec"]["sidecar"]["tools"].as_array().unwrap().clone();
    assert_eq!(
        declared,
        text_tools::toolkit().tools(),
        "regenerate with `text-tools tools`"
    );
    assert_eq!(pack["metadata"]["name"], text_tools::PACK);
}

#[tokio::test]
async fn a_call_as_the_runner_sends_it() {
    let kit = text_tools::toolkit();
    let argv: Vec<String> = [text_tools::PROGRAM, "json-query", "--", ".a[1]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = kit
        .call(
            &argv,
            r#"{"document":{"a":[1,"two"]}}"#,
            std::time::Duration::from_secs(5),
        )
        .await;
    assert_eq!((r.exit_code, r.stdout.as_str()), (0, "two"));
}
