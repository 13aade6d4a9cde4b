//! The native sidecar tool manifest: `sidecar-tools.json`, written by the
//! controller into ConfigMap `<run>-sidecar-tools` and mounted at
//! [`DEFAULT_MANIFEST_PATH`] (env `SIDECAR_TOOLS_MANIFEST_PATH`).
//!
//! Each entry becomes a tool the model can call; a call turns into an
//! argv-mode [`ExecRequest`](super::exec::ExecRequest) for the entry's
//! `target` sidecar.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::go::null_as_default;

/// Where the controller mounts the manifest.
pub const DEFAULT_MANIFEST_PATH: &str = "/config/sidecar-tools/sidecar-tools.json";
/// Largest manifest the controller writes, in bytes (900 KiB).
pub const MAX_MANIFEST_BYTES: usize = 900 * 1024;
/// Parameters schema a tool gets when it declares none.
pub const DEFAULT_PARAMETERS: &str = r#"{"type":"object","properties":{}}"#;

/// The whole manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SidecarToolsManifest {
    /// Declared tools, in declaration order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<SidecarTool>,
}

/// One native sidecar tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarTool {
    /// Tool name (`^[a-z][a-z0-9_]*$`, at most 64 bytes).
    pub name: String,
    /// Description shown to the model.
    #[serde(default)]
    pub description: String,
    /// Normalised SkillPack name of the sidecar that runs it.
    #[serde(default)]
    pub target: String,
    /// Program and fixed leading arguments (at least one element).
    #[serde(default, deserialize_with = "null_as_default")]
    pub exec: Vec<String>,
    /// Appended after `exec`; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subcommand: String,
    /// How arguments reach the program.
    #[serde(default)]
    pub input_mode: InputMode,
    /// Parameter names passed positionally, in order, after `--`; omitted
    /// when empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub positional_args: Vec<String>,
    /// JSON Schema of the arguments; omitted when absent (the runner then
    /// uses [`DEFAULT_PARAMETERS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// How a native tool receives its arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    /// Positional arguments on the command line only; an empty string on the
    /// wire means this too.
    #[default]
    #[serde(alias = "")]
    Args,
    /// Positional arguments on the command line, the other arguments as a
    /// JSON object on stdin.
    Stdin,
}
