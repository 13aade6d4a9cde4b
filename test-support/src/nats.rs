//! A real `nats-server` with JetStream, on a free port, owned by one test.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::free_port;

/// How long a server may take to accept clients with JetStream on.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is probed while waiting.
const READY_POLL: Duration = Duration::from_millis(5);
/// Attempts with a fresh port when another process grabbed ours first.
const PORT_ATTEMPTS: usize = 3;

/// A `nats-server -js` child process on `127.0.0.1:<free port>`, with its
/// JetStream store and log in a temp dir. Killed and cleaned up on drop.
///
/// ```no_run
/// # async fn demo() {
/// let nats = agentpod_test_support::NatsServer::start();
/// let client = async_nats::connect(nats.url()).await.unwrap();
/// # drop(client);
/// # }
/// ```
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits until it
    /// accepts clients. Panics (with the server log) if it cannot start.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Like [`NatsServer::start`], with extra `nats-server` flags (for
    /// example `["--max_payload", "4096"]`). They are kept for
    /// [`NatsServer::restart`].
    pub fn start_with_args(args: &[&str]) -> Self {
        let bin = nats_server_bin();
        let dir = tempfile::Builder::new()
            .prefix("agentpod-nats-")
            .tempdir()
            .expect("create a temp dir for nats-server");
        let mut server = Self {
            bin,
            port: 0,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            dir,
            child: None,
        };
        // The port is picked by binding :0 and releasing it; another process
        // may take it in between, so a failed start is retried on a new port.
        let mut last_err = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(e) if e.contains("address already in use") => last_err = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last_err}");
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The TCP port the server listens on (unchanged by restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory (unchanged by restarts).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// The server's log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The server log so far (empty if it cannot be read).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Connects a client (a convenience for `async_nats::connect(url)`).
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }

    /// Connects a client and returns its JetStream context.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.connect().await)
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit.
    /// The store stays, so [`NatsServer::restart`] brings the data back.
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error here means it already exited; wait() reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store (stops
    /// it first if it is running) and waits until it accepts clients.
    pub fn restart(&mut self) {
        self.stop();
        // Right after a kill the port can briefly still be bound; retry
        // within the readiness deadline rather than fail at once.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Spawns the process and waits for readiness; on failure the child is
    /// reaped and the error carries the log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open nats-server log: {e}"))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("clone log handle: {e}"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-js")
            .arg("-sd")
            .arg(self.store_dir())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd.spawn().map_err(|e| {
            format!(
                "could not run nats-server at {}: {e}; run `make setup`",
                self.bin.display()
            )
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(self.start_failure(&format!("nats-server exited with {status}")));
            }
            if probe_jetstream(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(
                    self.start_failure(&format!("nats-server not ready after {READY_TIMEOUT:?}"))
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    fn start_failure(&self, what: &str) -> String {
        format!(
            "{what} (bin {}, port {}); log {}:\n{}",
            self.bin.display(),
            self.port,
            self.log_path().display(),
            self.log()
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        // The TempDir field removes the store and log after this.
    }
}

/// Connects and reads the server's `INFO` line: ready means it answers and
/// reports JetStream enabled.
fn probe_jetstream(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    if BufReader::new(&stream).read_line(&mut line).is_err() {
        return false;
    }
    line.starts_with("INFO ") && line.contains("\"jetstream\":true")
}

/// A port that was free a moment ago on 127.0.0.1.
/// Finds `nats-server`: `$NATS_SERVER_BIN`, then `<workspace>/.venv/bin`,
/// then `PATH`. Panics with a hint to run `make setup` when absent.
pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "NATS_SERVER_BIN={} does not exist; run `make setup` to install nats-server",
            p.display()
        );
        return p;
    }
    let venv = workspace_root().join(".venv/bin/nats-server");
    if venv.is_file() {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nats-server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "nats-server not found (looked at $NATS_SERVER_BIN, {}, and PATH); run `make setup`",
        venv.display()
    );
}

/// The cargo workspace root (this crate's parent directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support sits inside the workspace root")
}
