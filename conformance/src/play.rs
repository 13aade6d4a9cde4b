//! Playing one scenario: set up its world, run the steps, check the
//! expectations, tear everything down, and say pass, fail or skip.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use agentpod_sdk::wire::marker::{
    LogOutcome, RESULT_END, RESULT_START, RESULT_TAIL_LINES, parse_result_from_logs, tail_lines,
};
use serde_json::{Value, json};

use crate::impls::Implementations;
use crate::matcher::{check_all, check_one, short};
use crate::process::Proc;
use crate::scenario::{Check, HttpSpec, Requirement, Scenario, Step, TimedCheck};
use crate::world::{Helpers, SharedMcp, View, World};

/// Default bound of a whole scenario.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound of a `wait` step.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound of an `expect` check.
const EXPECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a check is re-evaluated.
const POLL: Duration = Duration::from_millis(50);

/// What happened to a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every step and check held.
    Pass,
    /// The first thing that did not hold.
    Fail {
        /// One line.
        reason: String,
        /// Process output tails and model problems.
        detail: String,
    },
    /// Not run, and why.
    Skip(String),
}

/// A played scenario.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Scenario name.
    pub name: String,
    /// Contract section.
    pub section: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Wall time.
    pub elapsed: Duration,
}

/// Facts about the machine, found once per run, and the shared services.
pub struct Env {
    /// Helper locations.
    pub helpers: Helpers,
    /// The suite's MCP test server.
    pub mcp: SharedMcp,
    /// Whether `python -c "import mcp"` works.
    pub mcp_python: bool,
    /// Whether a `nats-server` binary can be found.
    pub nats: bool,
}

impl Env {
    /// Probes the machine.
    pub fn probe(helpers: Helpers) -> Self {
        let mcp_python = std::process::Command::new(&helpers.python)
            .args(["-c", "import mcp.server.mcpserver"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let nats = std::panic::catch_unwind(agentpod_test_support::nats_server_bin).is_ok();
        Self {
            mcp: SharedMcp::new(helpers.clone()),
            helpers,
            mcp_python,
            nats,
        }
    }
}

/// Why a scenario cannot run here, if it cannot.
pub fn skip_reason(s: &Scenario, impls: &Implementations, env: &Env) -> Option<String> {
    let comps = s.components();
    let missing: Vec<&str> = comps
        .iter()
        .filter(|c| impls.get(**c).is_none())
        .map(|c| c.name())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "no implementation given for {}",
            missing.join(", ")
        ));
    }
    let images = comps
        .iter()
        .filter(|c| impls.get(**c).is_some_and(|i| i.is_image()))
        .count();
    if images != 0 && images != comps.len() {
        return Some(
            "mixes images and binaries (paths differ); give all its components the same way".into(),
        );
    }
    if s.requires.contains(&Requirement::Image) && images == 0 {
        return Some(
            "image-only gate (UID 1000, read-only root, /workspace): run with --image-* or --images"
                .into(),
        );
    }
    let needs_python =
        s.requires.contains(&Requirement::McpPython) || !s.world.mcp_servers.is_empty();
    if needs_python && !env.mcp_python {
        return Some(format!(
            "Python MCP SDK not importable with {} (run scripts/setup-mcp.sh)",
            env.helpers.python.display()
        ));
    }
    if s.world.nats && !env.nats {
        return Some("nats-server not found (run `make setup` or set NATS_SERVER_BIN)".into());
    }
    None
}

/// Plays `s` and returns its outcome (never panics on a broken
/// implementation: every problem is a `Fail`).
pub async fn play(s: &Scenario, impls: &Implementations, env: &Env) -> Outcome {
    let started = Instant::now();
    let verdict = match skip_reason(s, impls, env) {
        Some(r) => Verdict::Skip(r),
        None => {
            let view = if s
                .components()
                .iter()
                .any(|c| impls.get(*c).is_some_and(|i| i.is_image()))
            {
                View::Pod
            } else {
                View::Host
            };
            run(s, impls, env, view).await
        }
    };
    Outcome {
        name: s.name.clone(),
        section: s.section.clone(),
        verdict,
        elapsed: started.elapsed(),
    }
}

async fn run(s: &Scenario, impls: &Implementations, env: &Env, view: View) -> Verdict {
    let mut world = match World::new(view, &s.world.run_id, s.world.ipc_dirs) {
        Ok(w) => w,
        Err(e) => return fail(format!("world: {e}"), String::new()),
    };
    let mut player = Player {
        s,
        impls,
        procs: BTreeMap::new(),
        starts: 0,
    };
    let limit = s.timeout.map(|d| d.0).unwrap_or(SCENARIO_TIMEOUT);
    let result = match tokio::time::timeout(limit, player.go(&mut world, env)).await {
        Ok(r) => r,
        Err(_) => Err(format!("scenario did not finish within {limit:?}")),
    };
    let verdict = match result {
        Ok(()) => Verdict::Pass,
        Err(reason) => {
            let mut detail = String::new();
            for p in player.procs.values() {
                detail.push_str(&p.tail(15));
            }
            if let Some(llm) = &world.llm {
                for p in llm.problems() {
                    detail.push_str(&format!("scripted model: {p}\n"));
                }
            }
            fail(reason, detail)
        }
    };
    for p in player.procs.values() {
        p.kill();
    }
    if let Some(llm) = world.llm.take() {
        llm.shutdown().await;
    }
    verdict
}

fn fail(reason: String, detail: String) -> Verdict {
    Verdict::Fail { reason, detail }
}

struct Player<'a> {
    s: &'a Scenario,
    impls: &'a Implementations,
    procs: BTreeMap<String, Proc>,
    starts: usize,
}

impl Player<'_> {
    async fn go(&mut self, world: &mut World, env: &Env) -> Result<(), String> {
        let s = self.s;
        if s.world.nats {
            world.start_nats().await?;
        }
        for (name, kind) in &s.world.mcp_servers {
            world.start_mcp(name, kind, &env.mcp).await?;
        }
        if let Some(script) = &s.world.llm {
            world.start_llm(script).await?;
        }
        for (path, content) in &s.world.files {
            world
                .write_world_file(path, content)
                .map_err(|e| format!("world.files: {e}"))?;
        }
        for (link, target) in &s.world.symlinks {
            let host = world
                .host_path(link)
                .map_err(|e| format!("world.symlinks: {e}"))?;
            if let Some(parent) = host.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("world.symlinks: {e}"))?;
            }
            std::os::unix::fs::symlink(target, &host)
                .map_err(|e| format!("world.symlinks: {link} -> {target}: {e}"))?;
        }
        for (i, step) in s.steps.iter().enumerate() {
            self.step(world, step)
                .await
                .map_err(|e| format!("step {} ({}): {e}", i + 1, step_name(step)))?;
        }
        for (i, c) in s.expect.iter().enumerate() {
            self.wait(world, c, EXPECT_TIMEOUT)
                .await
                .map_err(|e| format!("expect {} ({}): {e}", i + 1, check_name(&c.check)))?;
        }
        Ok(())
    }

    async fn step(&mut self, world: &World, step: &Step) -> Result<(), String> {
        match step {
            Step::Start(id) => {
                if self.procs.get(id).is_some_and(|p| p.exited().is_none()) {
                    return Err(format!("{id} is already running"));
                }
                let spec = &self.s.processes[id];
                self.starts += 1;
                let p = Proc::start(id, spec, self.impls, world, self.starts)?;
                self.procs.insert(id.clone(), p);
                Ok(())
            }
            Step::Wait(c) => self.wait(world, c, WAIT_TIMEOUT).await,
            Step::Write(w) => {
                let bytes = match (&w.text, &w.json) {
                    (Some(t), None) => world.expand(t)?.into_bytes(),
                    (None, Some(j)) => {
                        serde_json::to_vec(&world.expand_json(j)?).map_err(|e| e.to_string())?
                    }
                    _ => return Err("give exactly one of text or json".into()),
                };
                world.write(&w.path, &bytes, w.atomic)
            }
            Step::Signal { process, signal } => self.proc(process)?.signal(signal),
            Step::Publish { subject, json } => {
                let client = world.nats_client.clone().ok_or("no NATS")?;
                let js = async_nats::jetstream::new(client);
                let body =
                    serde_json::to_vec(&world.expand_json(json)?).map_err(|e| e.to_string())?;
                let ack = js
                    .publish(world.expand(subject)?, body.into())
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
                ack.await.map_err(|e| format!("publish ack: {e}"))?;
                Ok(())
            }
            Step::Http(h) => http(world, h).await,
            Step::Capture {
                name,
                subject,
                pointer,
            } => {
                let subject = world.expand(subject)?;
                let msgs = world.messages.lock().map_err(|_| "poisoned")?.clone();
                let msg = msgs
                    .iter()
                    .find(|m| subject_matches(&subject, &m.subject))
                    .ok_or_else(|| format!("no message on {subject}{}", seen_subjects(world)))?;
                let body: Value = serde_json::from_slice(&msg.payload)
                    .map_err(|e| format!("message on {} is not JSON ({e})", msg.subject))?;
                let value = match body.pointer(pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => return Err(format!("{pointer} not in {}", short(&body))),
                };
                world
                    .vars
                    .lock()
                    .map_err(|_| "poisoned")?
                    .insert(name.clone(), value);
                Ok(())
            }
            Step::Sleep(d) => {
                tokio::time::sleep(d.0).await;
                Ok(())
            }
        }
    }

    fn proc(&self, id: &str) -> Result<&Proc, String> {
        self.procs
            .get(id)
            .ok_or_else(|| format!("process {id} was never started"))
    }

    /// Polls `c` until it holds or its bound passes; the error is the last
    /// reason it did not hold.
    async fn wait(&self, world: &World, c: &TimedCheck, default: Duration) -> Result<(), String> {
        let bound = c.within.map(|d| d.0).unwrap_or(default);
        let deadline = Instant::now() + bound;
        loop {
            let r = self.eval(world, &c.check).await;
            match r {
                Ok(()) => return Ok(()),
                // A process that is gone will not exit differently later.
                Err(e) if Instant::now() >= deadline || e.starts_with("exited") => {
                    return Err(format!("{e} (within {bound:?})"));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    async fn eval(&self, world: &World, c: &Check) -> Result<(), String> {
        match c {
            Check::Exit { process, code, max } => {
                let p = self.proc(process)?;
                let Some(exit) = p.exited() else {
                    return Err(format!(
                        "{process} still running after {:?}",
                        p.started.elapsed()
                    ));
                };
                if let Some(want) = code
                    && exit.code != *want
                {
                    return Err(format!("exited with code {}, expected {want}", exit.code));
                }
                if let Some(max) = max
                    && exit.after > max.0
                {
                    return Err(format!(
                        "exited after {:?}, expected within {:?}",
                        exit.after, max.0
                    ));
                }
                Ok(())
            }
            Check::Running { process } => match self.proc(process)?.exited() {
                None => Ok(()),
                Some(e) => Err(format!("exited with code {} after {:?}", e.code, e.after)),
            },
            Check::File {
                path,
                exists,
                json,
                text,
            } => {
                let host = world.host_path(path)?;
                let want = exists.unwrap_or(true);
                match (host.symlink_metadata().is_ok(), want) {
                    (false, false) => return Ok(()),
                    (true, false) => return Err(format!("{path} exists")),
                    (false, true) => return Err(format!("{path} does not exist")),
                    _ => {}
                }
                if json.is_none() && text.is_none() {
                    return Ok(());
                }
                let bytes = std::fs::read(&host).map_err(|e| format!("read {path}: {e}"))?;
                if let Some(m) = json {
                    let v: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("{path} is not JSON ({e})"))?;
                    check_all(&v, m).map_err(|e| format!("{path}: {e}"))?;
                }
                if let Some(m) = text {
                    let t = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                    check_one(Some(&t), m).map_err(|e| format!("{path} text: {e}"))?;
                }
                Ok(())
            }
            Check::Dir {
                path,
                prefix,
                count,
                json,
            } => {
                let host = world.host_path(path)?;
                let mut files: Vec<_> = std::fs::read_dir(&host)
                    .map_err(|e| format!("{path}: {e}"))?
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix.as_str()))
                    .filter(|e| e.path().is_file())
                    .map(|e| e.path())
                    .collect();
                files.sort();
                if let Some(n) = count
                    && files.len() != *n
                {
                    return Err(format!(
                        "{path}: {} files named {prefix}*, expected {n}: {:?}",
                        files.len(),
                        names(&files)
                    ));
                }
                if let Some(m) = json {
                    for f in &files {
                        let v: Value =
                            serde_json::from_slice(&std::fs::read(f).unwrap_or_default())
                                .map_err(|e| format!("{} is not JSON ({e})", f.display()))?;
                        check_all(&v, m).map_err(|e| {
                            format!(
                                "{}: {e}",
                                f.file_name().unwrap_or_default().to_string_lossy()
                            )
                        })?;
                    }
                }
                Ok(())
            }
            Check::Marker { process, json } => {
                let p = self.proc(process)?;
                let out = read_text(&p.stdout);
                check_all(&marker_doc(&out), json).map_err(|e| format!("marker {e}"))
            }
            Check::Output {
                process,
                stream,
                text,
            } => {
                let p = self.proc(process)?;
                let path = match stream.as_str() {
                    "stdout" => &p.stdout,
                    "stderr" => &p.stderr,
                    other => return Err(format!("stream must be stdout or stderr, not {other}")),
                };
                let t = Value::String(read_text(path));
                check_one(Some(&t), text).map_err(|e| format!("{process} {stream}: {e}"))
            }
            Check::Nats {
                subject,
                count,
                at_least,
                json,
            } => {
                let subject = world.expand(subject)?;
                let msgs: Vec<_> = world
                    .messages
                    .lock()
                    .map_err(|_| "poisoned")?
                    .iter()
                    .filter(|m| subject_matches(&subject, &m.subject))
                    .cloned()
                    .collect();
                if let Some(n) = count
                    && msgs.len() != *n
                {
                    return Err(format!(
                        "{} messages on {subject}, expected {n}{}",
                        msgs.len(),
                        seen_subjects(world)
                    ));
                }
                if let Some(n) = at_least
                    && msgs.len() < *n
                {
                    return Err(format!(
                        "{} messages on {subject}, expected at least {n}{}",
                        msgs.len(),
                        seen_subjects(world)
                    ));
                }
                if let Some(m) = json {
                    for msg in &msgs {
                        let v: Value = serde_json::from_slice(&msg.payload)
                            .map_err(|e| format!("message on {} is not JSON ({e})", msg.subject))?;
                        let m = expand_matchers(world, m)?;
                        check_all(&v, &m)
                            .map_err(|e| format!("message on {}: {e}", msg.subject))?;
                    }
                }
                Ok(())
            }
            Check::Stream { name, json } => {
                let info = stream_info(world, name).await?;
                let doc = json!({"config": serde_json::to_value(&info.config).map_err(|e| e.to_string())?});
                check_all(&doc, json).map_err(|e| format!("stream {name}: {e}"))
            }
            Check::Consumers { stream, at_least } => {
                let info = stream_info(world, stream).await?;
                if info.state.consumer_count >= *at_least {
                    Ok(())
                } else {
                    Err(format!(
                        "{} consumers on {stream}, expected at least {at_least}",
                        info.state.consumer_count
                    ))
                }
            }
            Check::Llm {
                finished,
                requests,
                at_least,
                tools_exclude,
                body,
            } => {
                let llm = world.llm.as_ref().ok_or("no llm")?;
                let n = llm.request_count();
                if let Some(want) = requests
                    && n != *want
                {
                    return Err(format!("model got {n} requests, expected {want}"));
                }
                if let Some(want) = at_least
                    && n < *want
                {
                    return Err(format!("model got {n} requests, expected at least {want}"));
                }
                if *finished {
                    let problems = llm.problems();
                    if !problems.is_empty() {
                        return Err(format!("scripted model: {}", problems.join("; ")));
                    }
                }
                for req in llm.requests() {
                    if let Some(m) = body {
                        check_all(&req.body, m)
                            .map_err(|e| format!("model request {}: {e}", req.index))?;
                    }
                    let offered = offered_tools(&req.body);
                    if let Some(t) = tools_exclude.iter().find(|t| offered.contains(t)) {
                        return Err(format!(
                            "request {} offered tool {t} (offered: {})",
                            req.index,
                            offered.join(", ")
                        ));
                    }
                }
                Ok(())
            }
            Check::HttpStatus { url, status } => {
                let url = world.expand(url)?;
                let r = world
                    .http
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                let want = status.unwrap_or(200);
                if r.status().as_u16() == want {
                    Ok(())
                } else {
                    Err(format!("GET {url}: status {}, expected {want}", r.status()))
                }
            }
        }
    }
}

/// Runs an HTTP step.
/// The JetStream stream `name` on the scenario's NATS, as the server
/// describes it now.
async fn stream_info(
    world: &World,
    name: &str,
) -> Result<async_nats::jetstream::stream::Info, String> {
    let client = world.nats_client.clone().ok_or("no NATS")?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(name)
        .await
        .map_err(|e| format!("stream {name}: {e}"))?;
    let info = stream
        .info()
        .await
        .map_err(|e| format!("stream {name}: {e}"))?;
    Ok(info.clone())
}

async fn http(world: &World, h: &HttpSpec) -> Result<(), String> {
    let url = world.expand(&h.url)?;
    let method = h.method.as_deref().unwrap_or("GET").to_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = world.http.request(method.clone(), &url);
    for (k, v) in &h.headers {
        req = req.header(k, world.expand(v)?);
    }
    if let Some(j) = &h.json {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&world.expand_json(j)?).map_err(|e| e.to_string())?);
    } else if let Some(b) = &h.body {
        req = req.body(world.expand(b)?);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let ctx = || {
        format!(
            "{method} {url} → {status} {}",
            short(&Value::String(text.clone()))
        )
    };
    if let Some(want) = h.status
        && status != want
    {
        return Err(format!("expected status {want}: {}", ctx()));
    }
    if let Some(m) = &h.json_matches {
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("answer is not JSON ({e}): {}", ctx()))?;
        check_all(&v, m).map_err(|e| format!("{e}: {}", ctx()))?;
    }
    if let Some(m) = &h.text {
        check_one(Some(&Value::String(text.clone())), m).map_err(|e| format!("{e}: {}", ctx()))?;
    }
    Ok(())
}

/// The document marker matchers see.
pub fn marker_doc(stdout: &str) -> Value {
    let count = stdout.matches(RESULT_START).count();
    let tail = tail_lines(stdout, RESULT_TAIL_LINES);
    let payload = tail.rfind(RESULT_START).and_then(|i| {
        let from = i + RESULT_START.len();
        let len = tail[from..].find(RESULT_END)?;
        serde_json::from_str::<Value>(&tail[from..from + len]).ok()
    });
    let usage = |u: &Option<agentpod_sdk::wire::TokenUsage>| {
        u.as_ref()
            .and_then(|u| serde_json::to_value(u).ok())
            .unwrap_or(Value::Null)
    };
    let (outcome, response, error, token_usage) = match parse_result_from_logs(stdout) {
        LogOutcome::Succeeded {
            response,
            token_usage,
        } => ("succeeded", response, String::new(), usage(&token_usage)),
        LogOutcome::Failed { error, token_usage } => {
            ("failed", String::new(), error, usage(&token_usage))
        }
        LogOutcome::Skipped { reason } => ("skipped", reason, String::new(), Value::Null),
        LogOutcome::NoMarker { .. } => ("none", String::new(), String::new(), Value::Null),
    };
    json!({
        "count": count,
        "outcome": outcome,
        "response": response,
        "error": error,
        "token_usage": token_usage,
        "payload": payload,
    })
}

/// Tool names offered in a recorded model request (either dialect).
fn offered_tools(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| {
                    t.pointer("/function/name")
                        .or_else(|| t.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// NATS subject matching with `*` (one token) and `>` (the rest).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn expand_matchers(
    world: &World,
    m: &crate::scenario::Matchers,
) -> Result<crate::scenario::Matchers, String> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), world.expand_json(v)?)))
        .collect()
}

fn seen_subjects(world: &World) -> String {
    let msgs = world.messages.lock().map(|m| m.clone()).unwrap_or_default();
    let mut subjects: Vec<String> = msgs.into_iter().map(|m| m.subject).collect();
    subjects.dedup();
    if subjects.is_empty() {
        " (no messages at all)".into()
    } else {
        format!(" (seen: {})", subjects.join(", "))
    }
}

fn read_text(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn names(files: &[std::path::PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn step_name(s: &Step) -> String {
    match s {
        Step::Start(p) => format!("start {p}"),
        Step::Wait(c) => format!("wait {}", check_name(&c.check)),
        Step::Write(w) => format!("write {}", w.path),
        Step::Signal { process, signal } => format!("signal {signal} {process}"),
        Step::Publish { subject, .. } => format!("publish {subject}"),
        Step::Http(h) => format!("http {}", h.url),
        Step::Sleep(d) => format!("sleep {:?}", d.0),
        Step::Capture { name, subject, .. } => format!("capture {name} from {subject}"),
    }
}

fn check_name(c: &Check) -> String {
    match c {
        Check::Exit { process, .. } => format!("exit of {process}"),
        Check::Running { process } => format!("{process} running"),
        Check::File { path, .. } => format!("file {path}"),
        Check::Dir { path, prefix, .. } => format!("dir {path}/{prefix}*"),
        Check::Marker { process, .. } => format!("marker of {process}"),
        Check::Output {
            process, stream, ..
        } => format!("{stream} of {process}"),
        Check::Nats { subject, .. } => format!("nats {subject}"),
        Check::Stream { name, .. } => format!("stream {name}"),
        Check::Consumers { stream, .. } => format!("consumers of {stream}"),
        Check::Llm { .. } => "model".into(),
        Check::HttpStatus { url, .. } => format!("http {url}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert!(subject_matches(
            "sympozium.>",
            "sympozium.agent.run.completed"
        ));
        assert!(subject_matches(
            "sympozium.agent.*.completed",
            "sympozium.agent.run.completed"
        ));
        assert!(!subject_matches(
            "sympozium.agent.run",
            "sympozium.agent.run.completed"
        ));
        assert!(subject_matches("a.b", "a.b"));
    }

    #[test]
    fn marker_document() {
        let out = "noise\n__SYMPOZIUM_RESULT__{\"status\":\"success\",\"response\":\"hi\",\"metrics\":{\"inputTokens\":3,\"outputTokens\":4}}__SYMPOZIUM_END__\n";
        let d = marker_doc(out);
        assert_eq!(d["outcome"], "succeeded");
        assert_eq!(d["response"], "hi");
        assert_eq!(d["count"], 1);
        assert_eq!(d["payload"]["metrics"]["inputTokens"], 3);
        assert_eq!(marker_doc("nothing")["outcome"], "none");
    }
}
