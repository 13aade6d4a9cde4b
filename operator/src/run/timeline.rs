//! What a local run shows: typed events, printed as a readable timeline
//! (stderr) or as JSON lines (stdout, `--json`).

use std::io::Write;
use std::time::Instant;

use serde::Serialize;

use super::plan::Role;

/// One thing that happened during a local run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins.
    RunStarted {
        /// AgentRun name.
        run: String,
        /// Namespace.
        namespace: String,
        /// The run folder.
        folder: String,
        /// Engine.
        engine: String,
    },
    /// The event bus is there.
    Bus {
        /// Its URL.
        url: String,
        /// Whether this run started it.
        started: bool,
    },
    /// A service the Pod depends on (memory server) is up.
    Service {
        /// Name.
        name: String,
        /// URL.
        url: String,
        /// Pid.
        pid: i32,
    },
    /// A container's process started.
    ContainerStarted {
        /// Container name.
        name: String,
        /// Role.
        role: Role,
        /// Pid (= process group; engine `podman`: of `podman run`).
        pid: i32,
        /// Program (engine `podman`: the local image).
        program: String,
        /// What it stands in for, when not the image's own binary.
        #[serde(skip_serializing_if = "Option::is_none")]
        stand_in: Option<String>,
        /// Engine `podman`: the container's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// A sidecar is ready (mcp-bridge: its tools manifest is written).
    ContainerReady {
        /// Container name.
        name: String,
        /// Since it started.
        after_ms: u64,
    },
    /// A container's process ended.
    ContainerExited {
        /// Container name.
        name: String,
        /// Exit code (absent when killed by a signal).
        code: Option<i32>,
        /// Run time.
        duration_ms: u64,
        /// When it failed: the last lines of its stderr.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        stderr: Vec<String>,
    },
    /// A container logged a warning or an error (shown at once, each
    /// distinct one once).
    ContainerLog {
        /// Container name.
        name: String,
        /// The line, without its timestamp.
        line: String,
    },
    /// Streamed model text.
    Text {
        /// The chunk.
        content: String,
    },
    /// Streamed model reasoning.
    Thinking {
        /// The chunk.
        content: String,
    },
    /// The model called a tool.
    ToolCall {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments (JSON text).
        arguments: String,
    },
    /// A tool call finished.
    ToolResult {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// From call to result.
        duration_ms: u64,
        /// A preview of the result.
        preview: String,
    },
    /// A message published on the event bus.
    Nats {
        /// Subject.
        subject: String,
        /// Payload (JSON when it parses).
        data: serde_json::Value,
    },
    /// The run's result.
    Result {
        /// `success`, `error` or `skipped`.
        status: String,
        /// The response.
        response: String,
        /// The error.
        error: String,
        /// Input tokens.
        input_tokens: i64,
        /// Output tokens.
        output_tokens: i64,
        /// Tool calls.
        tool_calls: i64,
        /// The agent's own duration.
        duration_ms: i64,
    },
    /// Ctrl-C or SIGTERM: everything is being stopped.
    Interrupted {
        /// `SIGINT` or `SIGTERM`.
        signal: String,
    },
    /// Every process this run started is gone.
    Stopped {
        /// Names of what was stopped.
        processes: Vec<String>,
        /// Engine `podman`: the containers among them, stopped and removed.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        containers: Vec<String>,
        /// Stray descendants killed at the end.
        strays: usize,
    },
    /// The end.
    RunFinished {
        /// The exit code `agentpod run` returns.
        exit_code: i32,
        /// Wall time.
        wall_ms: u64,
        /// Per container: name, start offset and run time (ms).
        timings: Vec<Timing>,
    },
    /// A warning.
    Warning {
        /// What.
        message: String,
    },
}

/// When a container ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    /// Container name.
    pub name: String,
    /// Start, from the run's start.
    pub started_ms: u64,
    /// Run time.
    pub duration_ms: u64,
}

/// Prints events as they come.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    start: Instant,
    /// The model is mid-sentence on the current line.
    in_text: bool,
    /// Stream chunks seen on the bus: they repeat the model and tool
    /// lines, so the timeline counts them instead of printing each.
    bus_chunks: usize,
}

fn clip(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ⏎ ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        let cut: String = one_line.chars().take(n).collect();
        format!("{cut}…")
    }
}

impl Printer {
    /// A printer; `json` selects JSON lines on stdout.
    pub fn new(json: bool, start: Instant) -> Self {
        Self {
            json,
            start,
            in_text: false,
            bus_chunks: 0,
        }
    }

    /// Prints one event.
    pub fn print(&mut self, ev: &Event) {
        if self.json {
            let mut line = serde_json::to_value(ev).unwrap_or_default();
            line["t_ms"] = (self.start.elapsed().as_millis() as u64).into();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            return;
        }
        let mut err = std::io::stderr().lock();
        if let Event::Text { content } = ev {
            if !self.in_text {
                let _ = write!(err, "{}  model    │ ", self.stamp());
                self.in_text = true;
            }
            let _ = write!(err, "{}", content.replace('\n', "\n                   │ "));
            let _ = err.flush();
            return;
        }
        if let Event::Nats { subject, .. } = ev
            && subject == "sympozium.agent.stream.chunk"
        {
            self.bus_chunks += 1;
            return;
        }
        if self.in_text {
            let _ = writeln!(err);
            self.in_text = false;
        }
        let line = match ev {
            Event::RunStarted {
                run,
                namespace,
                folder,
                engine,
            } => {
                format!("run      │ AgentRun {namespace}/{run} (engine {engine}, folder {folder})")
            }
            Event::Bus { url, started } => format!(
                "bus      │ {} {url}",
                if *started {
                    "started nats-server at"
                } else {
                    "using EVENT_BUS_URL"
                }
            ),
            Event::Service { name, url, pid } => {
                format!("service  │ {name} ready at {url} (pid {pid})")
            }
            Event::ContainerStarted {
                name,
                role,
                pid,
                program,
                stand_in,
                container,
            } => {
                let role = match role {
                    Role::Init => "init container",
                    Role::Sidecar => "sidecar",
                    Role::Main => "agent container",
                };
                let via = stand_in
                    .as_deref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default();
                match container {
                    Some(c) => {
                        format!("pod      │ ▶ {role} {name} started: container {c} from {program}")
                    }
                    None => format!("pod      │ ▶ {role} {name} started (pid {pid}){via}"),
                }
            }
            Event::ContainerReady { name, after_ms } => {
                format!("pod      │ ✓ {name} ready after {after_ms} ms")
            }
            Event::ContainerExited {
                name,
                code,
                duration_ms,
                stderr,
            } => {
                let how = code.map_or("killed by a signal".to_owned(), |c| format!("exit {c}"));
                let mark = if stderr.is_empty() { "■" } else { "✗" };
                let mut s = format!("pod      │ {mark} {name} ended: {how} after {duration_ms} ms");
                if !stderr.is_empty() {
                    s.push_str("; the end of its stderr:");
                    for l in stderr {
                        s.push_str(&format!("\n                   │     {}", clip(l, 200)));
                    }
                }
                s
            }
            Event::ContainerLog { name, line } => {
                format!("log      │ ! {name}: {}", clip(line, 220))
            }
            Event::Thinking { content } => format!("thinking │ {}", clip(content, 160)),
            Event::ToolCall {
                name, arguments, ..
            } => format!("tool     │ → {name} {}", clip(arguments, 140)),
            Event::ToolResult {
                name,
                duration_ms,
                preview,
                ..
            } => format!(
                "tool     │ ← {name} ({duration_ms} ms): {}",
                clip(preview, 140)
            ),
            Event::Nats { subject, data } => {
                let topic_data = &data["data"];
                let summary = if topic_data.is_null() {
                    clip(&data.to_string(), 120)
                } else {
                    clip(&topic_data.to_string(), 120)
                };
                format!("nats     │ {subject} {summary}")
            }
            Event::Result {
                status,
                response,
                error,
                input_tokens,
                output_tokens,
                tool_calls,
                duration_ms,
            } => {
                // A run that failed before the model answered used no
                // tokens; "0 in, 0 out" would read like a measurement.
                let tokens = if status == "error" && input_tokens + output_tokens == 0 {
                    String::new()
                } else {
                    format!("tokens: {input_tokens} in, {output_tokens} out; ")
                };
                let mut s = format!(
                    "result   │ {status}: {}\n                   │ {tokens}{tool_calls} tool call(s); agent time {duration_ms} ms",
                    if error.is_empty() { response } else { error }
                );
                if !error.is_empty() && !response.is_empty() {
                    s.push_str(&format!("\n                   │ response: {response}"));
                }
                s
            }
            Event::Interrupted { signal } => {
                format!("run      │ {signal} received: stopping every process this run started")
            }
            Event::Stopped {
                processes,
                containers,
                strays,
            } => {
                let mut s = format!(
                    "run      │ stopped {} process(es){}: {}",
                    processes.len(),
                    if *strays > 0 {
                        format!(" and {strays} stray(s)")
                    } else {
                        String::new()
                    },
                    processes.join(", ")
                );
                if !containers.is_empty() {
                    s.push_str(&format!(
                        "\n                   │ stopped and removed {} container(s): {}",
                        containers.len(),
                        containers.join(", ")
                    ));
                }
                s
            }
            Event::RunFinished {
                exit_code,
                wall_ms,
                timings,
            } => {
                let mut s = format!(
                    "run      │ finished: exit code {exit_code}, wall time {wall_ms} ms; {} chunk(s) on sympozium.agent.stream.chunk (shown as model/tool lines)",
                    self.bus_chunks
                );
                for t in timings {
                    s.push_str(&format!(
                        "\n                   │   {:<20} started +{:>5} ms, ran {:>6} ms",
                        t.name, t.started_ms, t.duration_ms
                    ));
                }
                s
            }
            Event::Warning { message } => format!("warning  │ {message}"),
            Event::Text { .. } => unreachable!("handled above"),
        };
        let _ = writeln!(err, "{}  {line}", self.stamp());
    }

    fn stamp(&self) -> String {
        format!("{:>8.3}s", self.start.elapsed().as_secs_f64())
    }
}
