//! [`Toolkit`]: native sidecar tools written as Rust functions.
//!
//! A toolkit is one sidecar binary with several tools. Each tool is
//! declared once, as the manifest entry the runner sees (contract §4.4),
//! and given a typed async handler. The same binary then:
//!
//! - serves the tools over the exec protocol (`<bin>` or `<bin> serve`):
//!   an argv-mode request whose `argv[0]` is the toolkit's program (by path
//!   or by file name) and whose next words are its `exec` arguments and a
//!   tool's `subcommand` calls that tool in-process, with no fork and no
//!   shell in the image;
//! - prints the declarations (`<bin> tools` for `spec.sidecar.tools` of the
//!   SkillPack, `<bin> manifest` for the runner's `sidecar-tools.json`);
//! - runs one tool from the command line (`<bin> <subcommand> -- <args>`,
//!   stdin as the runner would send it), so upstream's `tool-executor.sh`
//!   can run it too.
//!
//! # How a call's arguments reach the handler
//!
//! The runner builds `argv = exec + [subcommand] + ["--"] + positional
//! values` and, in `stdin` mode, writes the other arguments as one JSON
//! object on stdin. The toolkit reverses that: positional values are put
//! back under their names (as JSON when the parameter's schema type is not
//! `string`, since the runner writes numbers and objects as JSON text), the
//! stdin object is merged in, and the whole object is deserialized into the
//! handler's argument type. A value that does not fit is an error result
//! the model can read, not a panic.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use thiserror::Error;

use super::output::{REJECTED_EXIT_CODE, cap_output, normalize_pack};
use super::server::{ExecHandler, ExecServer, ServeError, ServerOptions};
use super::validate::validate_tools;
use crate::envconf::Env;
use crate::wire::exit::COMMAND_TIMED_OUT;
use crate::wire::{ExecRequest, ExecResult, InputMode, SidecarTool, SidecarToolsManifest};

/// Command-line words a tool's subcommand may not be: the toolkit's own
/// commands.
pub const RESERVED_SUBCOMMANDS: [&str; 5] = ["serve", "tools", "manifest", "help", "--help"];

/// A handler's failure: the message becomes the result's `stderr` (exit
/// code 1), which the model sees as `STDERR: ...`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<String> for ToolError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for ToolError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// A toolkit whose declarations break the SkillPack rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid toolkit: {}", .0.join("; "))]
pub struct KitError(pub Vec<String>);

/// One native tool's declaration: what the SkillPack's
/// `spec.sidecar.tools[]` entry says (the `exec` comes from the
/// [`Toolkit`]).
#[derive(Debug, Clone)]
pub struct NativeTool {
    name: String,
    description: String,
    subcommand: Option<String>,
    input_mode: InputMode,
    positional: Vec<String>,
    parameters: Option<Value>,
}

impl NativeTool {
    /// A tool named `name` (snake_case, as the CRD requires) with the
    /// description the model sees. Its subcommand defaults to the name with
    /// `_` replaced by `-`.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            subcommand: None,
            input_mode: InputMode::Args,
            positional: Vec::new(),
            parameters: None,
        }
    }

    /// Sets the subcommand word.
    pub fn subcommand(mut self, word: impl Into<String>) -> Self {
        self.subcommand = Some(word.into());
        self
    }

    /// Parameters passed positionally, in this order (each must be a
    /// required property of [`NativeTool::parameters`]).
    pub fn positional<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.positional = names.into_iter().map(Into::into).collect();
        self
    }

    /// Receives the non-positional arguments as a JSON object on stdin.
    pub fn stdin(mut self) -> Self {
        self.input_mode = InputMode::Stdin;
        self
    }

    /// The JSON Schema (an object schema) of the arguments.
    pub fn parameters(mut self, schema: Value) -> Self {
        self.parameters = Some(schema);
        self
    }

    /// The tool name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn subcommand_word(&self) -> String {
        self.subcommand
            .clone()
            .unwrap_or_else(|| self.name.replace('_', "-"))
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Result<String, ToolError>> + Send>>;
type Handler = Arc<dyn Fn(Value) -> BoxFut + Send + Sync>;

struct Entry {
    decl: NativeTool,
    handler: Handler,
}

/// A set of native tools served by one sidecar binary. See the module docs.
pub struct Toolkit {
    pack: String,
    exec: Vec<String>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Toolkit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolkit")
            .field("pack", &self.pack)
            .field("exec", &self.exec)
            .field(
                "tools",
                &self
                    .entries
                    .iter()
                    .map(|e| &e.decl.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Toolkit {
    /// A toolkit for SkillPack `pack` whose tools run as `exec` (the path
    /// of this binary in its image, plus any fixed leading arguments).
    pub fn new<I, S>(pack: impl Into<String>, exec: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            pack: pack.into(),
            exec: exec.into_iter().map(Into::into).collect(),
            entries: Vec::new(),
        }
    }

    /// Adds a tool. The handler gets the call's arguments deserialized into
    /// `A` and returns the tool's output (its `stdout`) or an error.
    pub fn tool<A, F, Fut>(mut self, decl: NativeTool, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, ToolError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |args: Value| {
            let handler = handler.clone();
            Box::pin(async move {
                let args: A = serde_json::from_value(args)
                    .map_err(|e| ToolError(format!("invalid arguments: {e}")))?;
                handler(args).await
            })
        });
        self.entries.push(Entry {
            decl,
            handler: erased,
        });
        self
    }

    /// The SkillPack name.
    pub fn pack(&self) -> &str {
        &self.pack
    }

    /// The `spec.sidecar.tools[]` entries of the SkillPack, as JSON (no
    /// `target`: the controller adds it).
    pub fn tools(&self) -> Vec<Value> {
        self.entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(self.entry(&e.decl)).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.remove("target");
                }
                v
            })
            .collect()
    }

    /// The manifest the runner reads (`sidecar-tools.json`), as the
    /// controller would write it for this pack alone.
    pub fn manifest(&self) -> SidecarToolsManifest {
        SidecarToolsManifest {
            tools: self
                .entries
                .iter()
                .map(|e| {
                    let mut t = self.entry(&e.decl);
                    t.target = normalize_pack(&self.pack);
                    t
                })
                .collect(),
        }
    }

    fn entry(&self, d: &NativeTool) -> SidecarTool {
        SidecarTool {
            name: d.name.clone(),
            description: d.description.clone(),
            target: String::new(),
            exec: self.exec.clone(),
            subcommand: d.subcommand_word(),
            input_mode: d.input_mode,
            positional_args: d.positional.clone(),
            parameters: d.parameters.clone(),
        }
    }

    /// Checks the declarations against the SkillPack admission rules and
    /// the toolkit's own (a non-empty `exec`, distinct subcommands, none of
    /// [`RESERVED_SUBCOMMANDS`]).
    pub fn validate(&self) -> Result<(), KitError> {
        let entries: Vec<SidecarTool> = self.entries.iter().map(|e| self.entry(&e.decl)).collect();
        let mut problems: Vec<String> = validate_tools(&[(self.pack.as_str(), entries.as_slice())])
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        let mut seen = HashSet::new();
        for e in &self.entries {
            let word = e.decl.subcommand_word();
            if RESERVED_SUBCOMMANDS.contains(&word.as_str())
                || word.starts_with('-')
                || word.is_empty()
            {
                problems.push(format!(
                    "tool {}: subcommand {word:?} is reserved",
                    e.decl.name
                ));
            }
            if !seen.insert(word.clone()) {
                problems.push(format!(
                    "tool {}: subcommand {word:?} is used twice",
                    e.decl.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(KitError(problems))
        }
    }

    /// Runs the tool that `argv` names (exec words, then the subcommand,
    /// then `--` and positional values), with `stdin`, within `timeout`.
    pub async fn call(&self, argv: &[String], stdin: &str, timeout: Duration) -> ExecResult {
        let fail = |code: i32, msg: String| ExecResult {
            exit_code: code,
            stderr: msg,
            ..ExecResult::default()
        };
        let Some(rest) = self.strip_exec(argv) else {
            return fail(
                127,
                format!(
                    "{}: this sidecar runs only its own tools ({}); it cannot run {:?}",
                    self.pack,
                    self.exec.join(" "),
                    argv.first().map(String::as_str).unwrap_or("")
                ),
            );
        };
        let Some((word, rest)) = rest.split_first() else {
            return fail(
                REJECTED_EXIT_CODE,
                format!("{}: no tool named; tools: {}", self.pack, self.words()),
            );
        };
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| &e.decl.subcommand_word() == word)
        else {
            return fail(
                REJECTED_EXIT_CODE,
                format!(
                    "{}: unknown tool {word:?}; tools: {}",
                    self.pack,
                    self.words()
                ),
            );
        };
        let args = match build_args(&entry.decl, rest, stdin) {
            Ok(a) => a,
            Err(e) => return fail(REJECTED_EXIT_CODE, format!("{}: {e}", entry.decl.name)),
        };
        match tokio::time::timeout(timeout, (entry.handler)(args)).await {
            Ok(Ok(out)) => ExecResult {
                stdout: cap_output(&out),
                ..ExecResult::default()
            },
            Ok(Err(e)) => fail(REJECTED_EXIT_CODE, cap_output(&e.0)),
            Err(_) => ExecResult {
                stderr: format!("{}: timed out after {timeout:?}", entry.decl.name),
                ..ExecResult::timed_out("")
            },
        }
    }

    fn words(&self) -> String {
        self.entries
            .iter()
            .map(|e| e.decl.subcommand_word())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `argv` after the exec words, if it starts with them (`argv[0]` may
    /// be the program's path or its file name).
    fn strip_exec<'a>(&self, argv: &'a [String]) -> Option<&'a [String]> {
        let (prog, fixed) = self.exec.split_first()?;
        let (first, rest) = argv.split_first()?;
        let base = |s: &str| Path::new(s).file_name().map(ToOwned::to_owned);
        let same = first == prog || (base(first).is_some() && base(first) == base(prog));
        if !same || rest.len() < fixed.len() || rest[..fixed.len()] != *fixed {
            return None;
        }
        Some(&rest[fixed.len()..])
    }

    /// Serves the tools with `opts` until `/ipc/done` appears.
    pub async fn serve(self, opts: ServerOptions) -> Result<(), ServeError> {
        ExecServer::new(opts).run(Arc::new(self)).await
    }

    /// A whole `main`: `serve` (the default) with options from the
    /// environment, `tools`, `manifest`, or one tool by its subcommand.
    /// Logs go to stderr (`RUST_LOG`, default `info`); installing a
    /// subscriber is left to the caller.
    pub fn main(self) -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if let Err(e) = self.validate() {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
        let rt = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match args.first().map(String::as_str) {
            None | Some("serve") => {
                let mut env = Env::from_process();
                let opts = ServerOptions::from_env(&mut env);
                if let Err(e) = env.finish() {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
                match rt.block_on(self.serve(opts)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Some("tools") => print_json(&Value::Array(self.tools())),
            Some("manifest") => {
                print_json(&serde_json::to_value(self.manifest()).unwrap_or(Value::Null))
            }
            Some("help" | "--help" | "-h") => print_out(&format!(
                "{} ({}): native tools for the {} SkillPack\n\nUsage:\n  {0} [serve]            serve exec requests from $AGENTPOD_IPC_ROOT/tools until done\n  {0} tools              print spec.sidecar.tools entries (JSON)\n  {0} manifest           print sidecar-tools.json for this pack\n  {0} <tool> [-- args]   run one tool (stdin: JSON of the other arguments)\n\nTools: {}",
                self.exec.first().map(String::as_str).unwrap_or("toolkit"),
                env!("CARGO_PKG_VERSION"),
                self.pack,
                self.words()
            )),
            Some(_) => {
                let mut stdin = String::new();
                if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                    // Nothing piped in: no stdin arguments.
                } else if let Err(e) =
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin)
                {
                    eprintln!("cannot read stdin: {e}");
                    return ExitCode::FAILURE;
                }
                let mut argv = vec![self.exec.first().cloned().unwrap_or_default()];
                argv.extend(self.exec.iter().skip(1).cloned());
                argv.extend(args);
                let r =
                    rt.block_on(self.call(&argv, &stdin, Duration::from_secs(u64::from(u32::MAX))));
                if !r.stdout.is_empty() {
                    let _ = print_out(&r.stdout);
                }
                if !r.stderr.is_empty() {
                    eprintln!("{}", r.stderr);
                }
                ExitCode::from(u8::try_from(r.exit_code).unwrap_or(1))
            }
        }
    }
}

fn print_json(v: &Value) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => print_out(&s),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// One line on stdout; a closed pipe (`| head`) ends quietly instead of
/// panicking as `println!` does.
fn print_out(s: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{s}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

#[async_trait]
impl ExecHandler for Toolkit {
    async fn handle(&self, request: ExecRequest, timeout: Duration) -> ExecResult {
        if !request.is_argv_mode() {
            return ExecResult {
                exit_code: 127,
                stderr: format!(
                    "{}: this sidecar has no shell; it runs only its native tools ({})",
                    self.pack,
                    self.words()
                ),
                ..ExecResult::default()
            };
        }
        let r = self.call(&request.argv, &request.stdin, timeout).await;
        if r.timed_out {
            tracing::warn!(argv0 = %request.argv[0], ?timeout, "native tool timed out");
        }
        debug_assert!(r.exit_code != COMMAND_TIMED_OUT || r.timed_out);
        r
    }
}

/// The handler's argument object from positional words and stdin.
fn build_args(decl: &NativeTool, words: &[String], stdin: &str) -> Result<Value, String> {
    let words = match words.split_first() {
        Some((dd, rest)) if dd == "--" => rest,
        _ => words,
    };
    if words.len() > decl.positional.len() {
        return Err(format!(
            "{} positional values given, {} declared ({})",
            words.len(),
            decl.positional.len(),
            decl.positional.join(", ")
        ));
    }
    let mut args = Map::new();
    if decl.input_mode == InputMode::Stdin && !stdin.trim().is_empty() {
        match serde_json::from_str::<Value>(stdin) {
            Ok(Value::Object(m)) => args = m,
            Ok(_) => return Err("stdin is not a JSON object".into()),
            Err(e) => return Err(format!("stdin is not JSON: {e}")),
        }
    }
    for (name, word) in decl.positional.iter().zip(words) {
        let ty = decl
            .parameters
            .as_ref()
            .and_then(|p| p.get("properties"))
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let v = match ty {
            "string" => Value::String(word.clone()),
            // The runner writes numbers, booleans, arrays and objects as
            // JSON text; a word that is not JSON stays a string and the
            // handler's deserializer says what is wrong.
            _ => serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.clone())),
        };
        args.insert(name.clone(), v);
    }
    Ok(Value::Object(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decl() -> NativeTool {
        NativeTool::new("head_lines", "x")
            .positional(["n", "text"])
            .parameters(json!({"type":"object","properties":{"n":{"type":"integer"},"text":{"type":"string"}},"required":["n","text"]}))
    }

    #[test]
    fn positional_words_follow_the_schema() {
        let a = build_args(&decl(), &["--".into(), "3".into(), "42".into()], "").unwrap();
        assert_eq!(a, json!({"n": 3, "text": "42"}));
        assert!(build_args(&decl(), &["1".into(), "2".into(), "3".into()], "").is_err());
    }

    #[test]
    fn stdin_is_merged() {
        let d = decl().stdin();
        let a = build_args(
            &d,
            &["--".into(), "1".into(), "t".into()],
            r#"{"extra":true}"#,
        )
        .unwrap();
        assert_eq!(a, json!({"n": 1, "text": "t", "extra": true}));
        assert!(build_args(&d, &[], "[1]").is_err());
    }
}
