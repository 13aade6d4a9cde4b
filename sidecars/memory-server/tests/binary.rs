//! The `memory-server` binary: help, env errors, JSON logs, serving.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_memory-server");

#[test]
fn help_lists_the_environment() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for var in [
        "MEMORY_DB_PATH",
        "MEMORY_PORT",
        "MEMORY_BIND",
        "MEMORY_ADMIN_TOKEN",
        "LOG_FORMAT",
    ] {
        assert!(text.contains(var), "{var} missing from --help");
    }
}

#[test]
fn bad_environment_is_reported_at_once() {
    let out = Command::new(BIN)
        .env_clear()
        .env("MEMORY_PORT", "eighty")
        .env("MEMORY_READERS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MEMORY_PORT") && err.contains("MEMORY_READERS"),
        "{err}"
    );
}

#[test]
fn serves_on_the_logged_port_with_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("MEMORY_DB_PATH", dir.path().join("sub/memory.db"))
        .env("MEMORY_BIND", "127.0.0.1")
        .env("MEMORY_PORT", "0")
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(Instant::now() < deadline, "no listening line");
        let line = lines.next().expect("stderr closed").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if v["message"] == "listening" {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    stream.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("\r\n\r\nok"), "{resp}");
    assert!(dir.path().join("sub/memory.db").exists());
    // SIGTERM ends it cleanly.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
