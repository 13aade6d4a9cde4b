//! agent-runner against a LangGraph agent, side by side on the same
//! scripted conversation served by the same scripted model server.
//!
//! Both agents run as child processes of this binary: the release
//! `agent-runner`, and `bench/python/agent.py` (a LangGraph ReAct graph over
//! `langchain-openai`, with `list_directory` and `read_file` in Python) in
//! the project venv that `scripts/bench-setup.sh` fills. They talk OpenAI
//! Chat Completions with streaming to `scripted-llm` (a separate process)
//! through [`Relay`], which timestamps every read in both directions, so the
//! agents' own time and the server's time can be told apart without
//! touching either side. `wait4(2)` gives each child's peak RSS and CPU time.
//!
//! Two series, interleaved agent by agent so drift hits both alike:
//!
//! - **cold start**: a one-answer script (no tools used); time from just
//!   before `spawn` (fork + exec on the clock) until the first request has
//!   arrived at the relay (its last byte). One untimed warm-up run each
//!   first (page cache, `.pyc`).
//! - **conversation**: K tool turns (alternating `list_directory` and
//!   `read_file` over a small workspace) then a final answer; every request
//!   after the first is checked by the server against the previous tool
//!   result. Per tool turn, the agent's time runs from the last byte of a
//!   tool-call answer to the last byte of the next request.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::report::Section;
use crate::runner_child;
use crate::runner_proxy::{Exchange, Relay};
use crate::stats::{Summary, fmt_duration, fmt_ratio};

/// The benchmark's name for `--only`.
pub const NAME: &str = "runner";

/// The longest any single agent run may take before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The user message both agents get.
const TASK: &str = "Survey the workspace: list it, read the notes and the modules, then summarise.";

/// Options of this benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Cold starts measured per agent.
    #[arg(long = "runner-starts", default_value_t = 30)]
    pub starts: usize,
    /// Tool turns in the measured conversation (then one final answer).
    #[arg(long = "runner-turns", default_value_t = 50)]
    pub turns: usize,
    /// Conversations measured per agent.
    #[arg(long = "runner-conversations", default_value_t = 5)]
    pub conversations: usize,
    /// Python with langgraph and langchain-openai (`scripts/bench-setup.sh`
    /// installs them); relative paths are from the workspace root.
    #[arg(long = "runner-python", default_value = ".venv/bin/python")]
    pub python: PathBuf,
}

/// The two contestants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    /// The release `agent-runner`.
    Runner,
    /// `bench/python/agent.py`.
    LangGraph,
}

impl Agent {
    const BOTH: [Agent; 2] = [Agent::Runner, Agent::LangGraph];

    fn label(self) -> &'static str {
        match self {
            Agent::Runner => "agentpod agent-runner",
            Agent::LangGraph => "LangGraph (Python)",
        }
    }
}

/// Everything the runs share: binaries, the workspace fixture, scripts.
struct Setup {
    runner: PathBuf,
    scripted_llm: PathBuf,
    python: PathBuf,
    agent_py: PathBuf,
    /// `name version` lines of the Python side.
    versions: Vec<String>,
    turns: usize,
    /// Scripts, server logs.
    work: tempfile::TempDir,
    /// The `/workspace` both agents read.
    workspace: tempfile::TempDir,
}

impl Setup {
    fn new(o: &Opts) -> Result<Self> {
        ensure!(o.turns >= 1, "--runner-turns must be at least 1");
        let root = crate::fixtures::repo_root();
        // The release binaries sit next to this one (target/release).
        let exe = std::env::current_exe().context("locate agentpod-bench")?;
        let bin_dir = exe.parent().context("binary has no directory")?;
        let runner = bin_dir.join("agent-runner");
        let scripted_llm = bin_dir.join("scripted-llm");
        for b in [&runner, &scripted_llm] {
            ensure!(
                b.is_file(),
                "{} is missing: run `cargo build --release -p agent-runner -p agentpod-test-support --bins` \
                 (`make bench` does)",
                b.display()
            );
        }
        let python = if o.python.is_absolute() {
            o.python.clone()
        } else {
            root.join(&o.python)
        };
        let agent_py = root.join("bench/python/agent.py");
        let versions = python_versions(&python)?;
        let s = Self {
            runner,
            scripted_llm,
            python,
            agent_py,
            versions,
            turns: o.turns,
            work: tempfile::tempdir()?,
            workspace: tempfile::tempdir()?,
        };
        write_workspace(s.workspace.path())?;
        std::fs::write(s.cold_script(), cold_script().to_string())?;
        std::fs::write(
            s.conversation_script(),
            conversation_script(o.turns).to_string(),
        )?;
        Ok(s)
    }

    fn cold_script(&self) -> PathBuf {
        self.work.path().join("cold.json")
    }

    fn conversation_script(&self) -> PathBuf {
        self.work.path().join("conversation.json")
    }

    /// The agent's command, every path mapped into `run`.
    fn command(&self, agent: Agent, base_url: &str, run: &Path) -> Result<Command> {
        let mut c = match agent {
            Agent::Runner => Command::new(&self.runner),
            Agent::LangGraph => {
                let mut c = Command::new(&self.python);
                c.arg(&self.agent_py);
                c
            }
        };
        for d in ["ipc", "skills", "tmp"] {
            std::fs::create_dir_all(run.join(d))?;
        }
        // The same variables for both; the Python agent reads the subset it
        // needs.
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", run)
            .env("TASK", TASK)
            .env("MODEL_PROVIDER", "openai")
            .env("MODEL_NAME", "bench-model")
            .env("MODEL_BASE_URL", base_url)
            .env("API_KEY", "bench")
            .env("TOOLS_ENABLED", "true")
            .env("INSTANCE_NAME", "bench-agent")
            .env("AGENT_RUN_ID", "bench-run")
            .env("MAX_TOOL_ITERATIONS", (self.turns + 5).to_string())
            .env("AGENTPOD_IPC_ROOT", run.join("ipc"))
            .env("AGENTPOD_WORKSPACE_ROOT", self.workspace.path())
            .env("AGENTPOD_SKILLS_ROOT", run.join("skills"))
            .env("AGENTPOD_TMP_ROOT", run.join("tmp"))
            .env("AGENTPOD_SETTLE", "0s")
            .stdin(Stdio::null())
            .stdout(File::create(run.join("stdout"))?)
            .stderr(File::create(run.join("stderr"))?);
        Ok(c)
    }

    /// One agent run through `relay`: its exit and the exchanges it made.
    async fn run_once(
        &self,
        agent: Agent,
        relay: &Relay,
    ) -> Result<(runner_child::Exit, Vec<Exchange>)> {
        let run = fresh_dir()?;
        let cmd = self.command(agent, &relay.base_url(), run.path())?;
        relay.take_exchanges();
        let exit = runner_child::run(cmd, RUN_LIMIT).await?;
        let exchanges = relay.take_exchanges();
        if !exit.success {
            let err = std::fs::read_to_string(run.path().join("stderr")).unwrap_or_default();
            let tail: String = err.lines().rev().take(15).collect::<Vec<_>>().join("\n");
            bail!(
                "{} failed; last stderr lines (newest first):\n{tail}",
                agent.label()
            );
        }
        Ok((exit, exchanges))
    }
}

/// A run directory, on tmpfs when there is one (a Pod's `/ipc` is).
fn fresh_dir() -> Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// Checks the Python side imports and returns `name version` lines.
fn python_versions(python: &Path) -> Result<Vec<String>> {
    let code = "import sys, importlib.metadata as m\n\
                import langgraph.graph, langchain_openai\n\
                print('python', sys.version.split()[0])\n\
                for p in ('langgraph', 'langchain-openai', 'langchain-core', 'openai', 'httpx'):\n\
                \x20   print(p, m.version(p))\n";
    let out = Command::new(python)
        .args(["-c", code])
        .output()
        .with_context(|| format!("run {}", python.display()))?;
    ensure!(
        out.status.success(),
        "{} cannot import langgraph / langchain-openai: run scripts/bench-setup.sh \
         (`make bench` does)\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

/// The files both agents list and read.
fn write_workspace(dir: &Path) -> Result<()> {
    let notes: String = (0..30)
        .map(|i| format!("note {i}: the agent reads this line and moves on\n"))
        .collect();
    std::fs::write(dir.join("notes.txt"), notes)?;
    std::fs::write(
        dir.join("README.md"),
        "# bench workspace\n\nA README, notes and eight modules.\n",
    )?;
    std::fs::create_dir(dir.join("src"))?;
    for k in 0..8 {
        let body: String = (0..12)
            .map(|l| format!("    let v{l} = {k} * {l}; // line {l}\n"))
            .collect();
        std::fs::write(
            dir.join(format!("src/mod_{k}.rs")),
            format!("//! module {k}\npub fn f{k}() -> u32 {{\n{body}    {k}\n}}\n"),
        )?;
    }
    Ok(())
}

/// Tool call `i` of the conversation: (name, arguments, a string its
/// result must contain).
fn tool_call(i: usize) -> (&'static str, Value, String) {
    let k = (i / 4) % 8;
    match i % 4 {
        0 => (
            "list_directory",
            json!({"path": "/workspace"}),
            "notes.txt".into(),
        ),
        1 => (
            "read_file",
            json!({"path": "/workspace/notes.txt"}),
            "note 29:".into(),
        ),
        2 => (
            "list_directory",
            json!({"path": "/workspace/src"}),
            "mod_7.rs".into(),
        ),
        _ => (
            "read_file",
            json!({"path": format!("/workspace/src/mod_{k}.rs")}),
            format!("pub fn f{k}()"),
        ),
    }
}

/// K tool turns, each checking the previous result, then the answer.
fn conversation_script(turns: usize) -> Value {
    let check = |i: usize| {
        let (_, _, contains) = tool_call(i);
        json!({"tool_results": [{"id": format!("call_{i}"), "contains": contains}]})
    };
    let mut list: Vec<Value> = (0..turns)
        .map(|i| {
            let (name, arguments, _) = tool_call(i);
            let expect = if i == 0 {
                json!({"tools_include": ["list_directory", "read_file"], "stream": true})
            } else {
                check(i - 1)
            };
            json!({
                "expect": expect,
                "text": format!("Step {i}: checking with {name}."),
                "tool_calls": [{"id": format!("call_{i}"), "name": name, "arguments": arguments}],
                "usage": {"input": 300 + 60 * i, "output": 24},
            })
        })
        .collect();
    list.push(json!({
        "expect": check(turns - 1),
        "text": "The workspace holds a README, notes.txt and eight modules under src/.",
        "usage": {"input": 300 + 60 * turns, "output": 18},
    }));
    json!({ "turns": list })
}

/// One plain answer, served to every run.
fn cold_script() -> Value {
    json!({"cycle": true, "turns": [{"text": "Hello from the scripted model."}]})
}

/// A `scripted-llm` child process.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    async fn start(bin: &Path, script: &Path, log: PathBuf) -> Result<Self> {
        let mut child = tokio::process::Command::new(bin)
            .arg(script)
            .arg("--no-record")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let stdout = child.stdout.take().context("scripted-llm stdout")?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("scripted-llm printed no URL within 10 s")??;
        let addr = line
            .trim()
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix("/v1"))
            .with_context(|| format!("unexpected scripted-llm URL {line:?}"))?
            .parse()?;
        Ok(Self { child, addr, log })
    }

    /// Stops the server; fails with its report if the agent strayed from
    /// the script (a wrong tool result, an unused turn).
    async fn stop(mut self) -> Result<()> {
        let pid = self.child.id().context("scripted-llm already reaped")?;
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .context("scripted-llm did not stop within 10 s")??;
        if !status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!("the scripted conversation was not followed:\n{log}");
        }
        Ok(())
    }
}

/// One cold start.
struct Cold {
    to_request: Duration,
    to_exit: Duration,
}

/// One measured conversation.
struct Conversation {
    /// Agent time per tool turn (answer end → next request's end).
    gaps: Vec<Duration>,
    /// Sum of the server's request-end → response-end times.
    server: Duration,
    wall: Duration,
    cpu: Duration,
    rss_kib: u64,
}

impl Conversation {
    fn of(exit: &runner_child::Exit, x: &[Exchange], turns: usize) -> Result<Self> {
        ensure!(
            x.len() == turns + 1,
            "expected {} model requests, saw {}",
            turns + 1,
            x.len()
        );
        Ok(Self {
            gaps: x
                .windows(2)
                .map(|w| {
                    w[1].request_end
                        .saturating_duration_since(w[0].response_end)
                })
                .collect(),
            server: x
                .iter()
                .map(|e| e.response_end.saturating_duration_since(e.request_end))
                .sum(),
            wall: exit.exited.saturating_duration_since(exit.started),
            cpu: exit.cpu,
            rss_kib: exit.max_rss_kib,
        })
    }
}

/// What one agent measured.
#[derive(Default)]
struct Results {
    cold: Vec<Cold>,
    conversations: Vec<Conversation>,
}

impl Results {
    fn gaps(&self) -> Vec<Duration> {
        self.conversations
            .iter()
            .flat_map(|c| c.gaps.iter().copied())
            .collect()
    }

    /// (wall − server time) / K for each conversation.
    fn wall_minus_server(&self, turns: usize) -> Vec<Duration> {
        self.conversations
            .iter()
            .map(|c| c.wall.saturating_sub(c.server) / turns as u32)
            .collect()
    }

    fn peak_rss_kib(&self) -> u64 {
        self.conversations
            .iter()
            .map(|c| c.rss_kib)
            .max()
            .unwrap_or(0)
    }
}

/// Runs both series and renders the section.
pub async fn run(o: &Opts) -> Result<Section> {
    let setup = Setup::new(o)?;
    let mut results = [Results::default(), Results::default()];

    // Cold starts: one server and relay for the whole series.
    let server = Server::start(
        &setup.scripted_llm,
        &setup.cold_script(),
        setup.work.path().join("cold.log"),
    )
    .await?;
    let relay = Relay::start(server.addr).await?;
    for agent in Agent::BOTH {
        setup.run_once(agent, &relay).await?; // warm-up, not counted
    }
    for _ in 0..o.starts {
        for (i, agent) in Agent::BOTH.into_iter().enumerate() {
            let (exit, x) = setup.run_once(agent, &relay).await?;
            let first = x
                .first()
                .with_context(|| format!("{} made no model request", agent.label()))?;
            results[i].cold.push(Cold {
                to_request: first.request_end.saturating_duration_since(exit.started),
                to_exit: exit.exited.saturating_duration_since(exit.started),
            });
        }
    }
    drop(relay);
    server.stop().await?;

    // Conversations: a fresh server per run, so each run is checked whole.
    for n in 0..o.conversations {
        for (i, agent) in Agent::BOTH.into_iter().enumerate() {
            let log = setup.work.path().join(format!("conversation-{n}-{i}.log"));
            let server =
                Server::start(&setup.scripted_llm, &setup.conversation_script(), log).await?;
            let relay = Relay::start(server.addr).await?;
            let (exit, x) = setup.run_once(agent, &relay).await?;
            drop(relay);
            server
                .stop()
                .await
                .with_context(|| format!("{} conversation {n}", agent.label()))?;
            results[i]
                .conversations
                .push(Conversation::of(&exit, &x, o.turns)?);
        }
    }
    render(o, &setup, &results)
}

/// `a / b` for sizes.
fn size_ratio(a: u64, b: u64) -> String {
    if b == 0 {
        return "n/a".into();
    }
    format!("{:.1}×", a as f64 / b as f64)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn yes_no(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

fn render(o: &Opts, setup: &Setup, r: &[Results; 2]) -> Result<Section> {
    let k = o.turns;
    let cold = |r: &Results| {
        let starts: Vec<Duration> = r.cold.iter().map(|c| c.to_request).collect();
        let exits: Vec<Duration> = r.cold.iter().map(|c| c.to_exit).collect();
        Summary::of(&starts)
            .zip(Summary::of(&exits))
            .context("no cold-start samples")
    };
    let (rc, rx) = cold(&r[0])?;
    let (pc, px) = cold(&r[1])?;
    let rg = Summary::of(&r[0].gaps()).context("no runner turns")?;
    let pg = Summary::of(&r[1].gaps()).context("no LangGraph turns")?;
    let rw = median(r[0].wall_minus_server(k));
    let pw = median(r[1].wall_minus_server(k));
    let per_exchange = |r: &Results| {
        let v: Vec<Duration> = r
            .conversations
            .iter()
            .map(|c| c.server / (k as u32 + 1))
            .collect();
        median(v)
    };
    let cpu_turn = |r: &Results| median(r.conversations.iter().map(|c| c.cpu / k as u32).collect());
    let wall = |r: &Results| median(r.conversations.iter().map(|c| c.wall).collect());
    let (rr, pr) = (r[0].peak_rss_kib(), r[1].peak_rss_kib());

    let mut b = String::new();
    b.push_str(
        "The release `agent-runner` and a LangGraph agent (`bench/python/agent.py`: the \
         tutorial ReAct graph, `StateGraph` + `ToolNode` + `tools_condition`, over \
         `langchain-openai`'s `ChatOpenAI`, with `list_directory` and `read_file` written in \
         Python to the runner's schemas and result format) play the same scripted \
         conversation against the same `scripted-llm` process on 127.0.0.1, OpenAI Chat \
         Completions with SSE streaming for both, one run at a time, alternating agents.\n\n\
         **How.** The agents reach the server through a relay in the bench process that \
         timestamps every read in both directions; since HTTP/1.1 requests and responses \
         alternate, a request has arrived with its last client byte and its response ends \
         with the last server byte before the next request. The relay stands where the \
         server would, so neither agent nor server is instrumented. Each agent is a child process reaped \
         with `wait4(2)`: peak RSS is the kernel's `ru_maxrss`, CPU is user + system time.\n\n",
    );
    let _ = write!(
        b,
        "- **Cold start**: from just before `spawn` (fork + exec on the clock) until the \
         first request has arrived at the relay (its last byte), on a one-answer script; {} runs per agent after one \
         untimed warm-up each (page cache and `.pyc` files warm: a process cold start, not \
         a disk cold start). *exec → exit* is the whole one-answer run.\n\
         - **Per tool turn**: a conversation of {k} tool turns (each a short text and one \
         call, alternating `list_directory` and `read_file` over a 10-file workspace; every \
         request is checked by the server against the previous tool result, so both agents \
         really ran the tools) and a final answer, {} conversations per agent, each against \
         a fresh server. The agent's time for a turn runs from the last byte of a \
         tool-call answer to the last byte of the next request: parse the stream, run the \
         tool, write outputs, build and send the next request. The server's time (request \
         arrived → last response byte, relay hops included) is outside it. *(wall − server) ÷ K* \
         also charges start-up and exit to the turns.\n\
         - **Peak RSS**: the largest `ru_maxrss` over the conversations.\n\n",
        o.starts, o.conversations
    );

    b.push_str("### Cold start (exec → first model request)\n\n");
    b.push_str("| agent | runs | p50 | p99 | max | mean | exec → exit p50 |\n");
    b.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for (a, s, x) in [(Agent::Runner, rc, rx), (Agent::LangGraph, pc, px)] {
        let _ = writeln!(
            b,
            "| {} | {} | {} | {} | {} | {} | {} |",
            a.label(),
            s.n,
            fmt_duration(s.p50),
            fmt_duration(s.p99),
            fmt_duration(s.max),
            fmt_duration(s.mean),
            fmt_duration(x.p50),
        );
    }
    let _ = writeln!(
        b,
        "| LangGraph ÷ agent-runner | | {} | {} | {} | {} | {} |\n",
        fmt_ratio(pc.p50, rc.p50),
        fmt_ratio(pc.p99, rc.p99),
        fmt_ratio(pc.max, rc.max),
        fmt_ratio(pc.mean, rc.mean),
        fmt_ratio(px.p50, rx.p50),
    );

    let _ = writeln!(
        b,
        "### Conversation ({k} tool turns + answer)\n\n\
         | agent | turns | per turn p50 | p99 | mean | (wall − server) ÷ K | whole-run CPU ÷ K | wall p50 | server per request | peak RSS |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (i, a, g, w) in [(0, Agent::Runner, rg, rw), (1, Agent::LangGraph, pg, pw)] {
        let _ = writeln!(
            b,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.label(),
            g.n,
            fmt_duration(g.p50),
            fmt_duration(g.p99),
            fmt_duration(g.mean),
            fmt_duration(w),
            fmt_duration(cpu_turn(&r[i])),
            fmt_duration(wall(&r[i])),
            fmt_duration(per_exchange(&r[i])),
            mib(if i == 0 { rr } else { pr }),
        );
    }
    let _ = writeln!(
        b,
        "| LangGraph ÷ agent-runner | | {} | {} | {} | {} | {} | {} | | {} |\n",
        fmt_ratio(pg.p50, rg.p50),
        fmt_ratio(pg.p99, rg.p99),
        fmt_ratio(pg.mean, rg.mean),
        fmt_ratio(pw, rw),
        fmt_ratio(cpu_turn(&r[1]), cpu_turn(&r[0])),
        fmt_ratio(wall(&r[1]), wall(&r[0])),
        size_ratio(pr, rr),
    );

    let turn_ratio = pg.mean.as_secs_f64() / rg.mean.as_secs_f64().max(1e-12);
    let rss_ratio = pr as f64 / rr.max(1) as f64;
    b.push_str("### Goals\n\n| goal | measured | |\n|---|---:|---|\n");
    let _ = writeln!(
        b,
        "| cold start < 20 ms (judged on p99) | p50 {}, p99 {} | {} |",
        fmt_duration(rc.p50),
        fmt_duration(rc.p99),
        yes_no(rc.p99 < Duration::from_millis(20))
    );
    let _ = writeln!(
        b,
        "| peak RSS < 20 MiB | {} | {} |",
        mib(rr),
        yes_no(rr < 20 * 1024)
    );
    let _ = writeln!(
        b,
        "| per-turn time ≥ 10× lower than LangGraph (mean) | {turn_ratio:.1}× | {} |",
        yes_no(turn_ratio >= 10.0)
    );
    let _ = writeln!(
        b,
        "| peak RSS ≥ 5× lower than LangGraph | {rss_ratio:.1}× | {} |\n",
        yes_no(rss_ratio >= 5.0)
    );
    let _ = writeln!(
        b,
        "Python side: {}. The runner offers its 7 built-in tools (its default with \
         `TOOLS_ENABLED=true`), the LangGraph agent the 2 the script uses; the runner also \
         writes its `/ipc/output` stream chunks and result (on tmpfs) and logs to stderr, as \
         it does in a Pod.",
        setup.versions.join(", ")
    );
    Ok(Section {
        title: "agent-runner vs LangGraph: cold start, per-turn time, peak RSS".into(),
        body: b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_checks_each_previous_result() {
        let s = conversation_script(3);
        let turns = s["turns"].as_array().unwrap();
        assert_eq!(turns.len(), 4);
        assert_eq!(turns[1]["expect"]["tool_results"][0]["id"], "call_0");
        assert_eq!(turns[3]["expect"]["tool_results"][0]["id"], "call_2");
        assert!(turns[3].get("tool_calls").is_none());
    }
}
