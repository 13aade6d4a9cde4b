//! Built-in tools through the `Tool` trait: happy paths and the security
//! boundaries (file roots, SSRF guard, output caps), each refusal checked by
//! its exact text.
//!
//! File tools run against temp dirs mapped to the Pod paths the model sees
//! (`/workspace`, `/skills`, `/tmp`, `/ipc`). `fetch_url` talks only to a
//! local axum server: made-up names resolve through an injected resolver,
//! and the server's socket address is the one exception to the guard, so it
//! can play a public site. Nothing here sends a packet off this machine.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agent_runner::tools::{
    BuiltinConfig, EditFile, FetchConfig, FetchUrl, ListDirectory, ReadFile, Root, Roots,
    ScheduleTask, SendChannelMessage, WriteFile, builtin_tools,
};
use agentpod_sdk::ipc::IpcRoot;
use agentpod_sdk::tool::{Args, Tool, ToolContext, is_error_result};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{Value, json};

/// A Pod-shaped set of directories in a temp dir, plus `outside/` holding a
/// secret no tool may reach.
struct Pod {
    _dir: tempfile::TempDir,
    base: PathBuf,
    roots: Roots,
    ipc: IpcRoot,
}

impl Pod {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        for d in ["workspace", "skills", "tmp", "ipc", "outside/sub"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        fs::write(base.join("outside/secret.txt"), "top secret\n").unwrap();
        fs::write(base.join("outside/sub/deep.txt"), "deep secret\n").unwrap();
        // A file symlink and a directory symlink leading out of the roots.
        symlink(
            base.join("outside/secret.txt"),
            base.join("workspace/link.txt"),
        )
        .unwrap();
        symlink(base.join("outside"), base.join("workspace/outlink")).unwrap();
        let m = |v: &str| Root::mapped(format!("/{v}"), base.join(v));
        let roots = Roots::new(
            vec![m("workspace"), m("skills"), m("tmp"), m("ipc")],
            vec![m("workspace"), m("tmp")],
        );
        let ipc = IpcRoot::new(base.join("ipc"));
        Self {
            _dir: dir,
            base,
            roots,
            ipc,
        }
    }

    fn host(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    fn secret_untouched(&self) {
        assert_eq!(
            fs::read_to_string(self.host("outside/secret.txt")).unwrap(),
            "top secret\n"
        );
        assert_eq!(
            fs::read_to_string(self.host("outside/sub/deep.txt")).unwrap(),
            "deep secret\n"
        );
        let mut names: Vec<_> = fs::read_dir(self.host("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["secret.txt", "sub"]);
    }
}

fn args(v: Value) -> Args {
    serde_json::from_value(v).unwrap()
}

async fn call(tool: &dyn Tool, v: Value) -> String {
    tool.call(args(v), &ToolContext::default()).await
}

const READ_ROOTS: &str = "(/workspace, /skills, /tmp, /ipc)";
const WRITE_ROOTS: &str = "(/workspace, /tmp)";

fn outside(path: &str, roots: &str) -> String {
    format!("Error: access denied: {path} is outside the allowed directories {roots}")
}

fn escapes(path: &str, roots: &str) -> String {
    format!("Error: access denied: {path} resolves outside the allowed directories {roots}")
}

// ---------------------------------------------------------------- file roots

#[tokio::test]
async fn read_file_refuses_paths_outside_the_roots() {
    let pod = Pod::new();
    let tool = ReadFile::new(pod.roots.clone());
    let cases = [
        (
            "/workspace/../outside/secret.txt",
            outside("/outside/secret.txt", READ_ROOTS),
        ),
        (
            "/workspace/../../../../etc/passwd",
            outside("/etc/passwd", READ_ROOTS),
        ),
        ("/etc/passwd", outside("/etc/passwd", READ_ROOTS)),
        (
            "/ipc/../../outside/sub/deep.txt",
            outside("/outside/sub/deep.txt", READ_ROOTS),
        ),
        (
            "/workspace/link.txt",
            escapes("/workspace/link.txt", READ_ROOTS),
        ),
        (
            "/workspace/outlink/secret.txt",
            escapes("/workspace/outlink/secret.txt", READ_ROOTS),
        ),
        (
            "/workspace/outlink/sub/../secret.txt",
            escapes("/workspace/outlink/secret.txt", READ_ROOTS),
        ),
        ("/workspacefoo/x", outside("/workspacefoo/x", READ_ROOTS)),
        (
            "workspace/a.txt",
            "Error: path must be absolute: workspace/a.txt".to_owned(),
        ),
    ];
    for (path, want) in cases {
        assert_eq!(call(&tool, json!({ "path": path })).await, want, "{path}");
    }
}

#[tokio::test]
async fn list_directory_refuses_paths_outside_the_roots() {
    let pod = Pod::new();
    let tool = ListDirectory::new(pod.roots.clone());
    let cases = [
        ("/workspace/..", outside("/", READ_ROOTS)),
        ("/workspace/../outside", outside("/outside", READ_ROOTS)),
        ("/etc", outside("/etc", READ_ROOTS)),
        ("/", outside("/", READ_ROOTS)),
        (
            "/workspace/outlink",
            escapes("/workspace/outlink", READ_ROOTS),
        ),
        (
            "/workspace/outlink/sub",
            escapes("/workspace/outlink/sub", READ_ROOTS),
        ),
        (
            "/workspace/link.txt",
            escapes("/workspace/link.txt", READ_ROOTS),
        ),
    ];
    for (path, want) in cases {
        assert_eq!(call(&tool, json!({ "path": path })).await, want, "{path}");
    }
}

#[tokio::test]
async fn write_file_refuses_paths_outside_the_writable_roots() {
    let pod = Pod::new();
    let tool = WriteFile::new(pod.roots.clone());
    symlink(
        pod.host("outside/new.txt"),
        pod.host("workspace/dangling.txt"),
    )
    .unwrap();
    let cases = [
        (
            "/workspace/../outside/secret.txt",
            outside("/outside/secret.txt", WRITE_ROOTS),
        ),
        (
            "/workspace/../outside/new.txt",
            outside("/outside/new.txt", WRITE_ROOTS),
        ),
        ("/etc/evil", outside("/etc/evil", WRITE_ROOTS)),
        ("/skills/x.md", outside("/skills/x.md", WRITE_ROOTS)),
        (
            "/ipc/messages/send-1.json",
            outside("/ipc/messages/send-1.json", WRITE_ROOTS),
        ),
        ("/tmpfoo/x", outside("/tmpfoo/x", WRITE_ROOTS)),
        (
            "/workspace/link.txt",
            escapes("/workspace/link.txt", WRITE_ROOTS),
        ),
        (
            "/workspace/dangling.txt",
            escapes("/workspace/dangling.txt", WRITE_ROOTS),
        ),
        (
            "/workspace/outlink/new.txt",
            escapes("/workspace/outlink/new.txt", WRITE_ROOTS),
        ),
        (
            "/workspace/outlink/sub/a/b.txt",
            escapes("/workspace/outlink/sub/a/b.txt", WRITE_ROOTS),
        ),
    ];
    for (path, want) in cases {
        assert_eq!(
            call(&tool, json!({ "path": path, "content": "pwned" })).await,
            want,
            "{path}"
        );
    }
    pod.secret_untouched();
    assert!(!pod.host("ipc/messages").exists());
}

#[tokio::test]
async fn write_file_prefix_boundary_with_unmapped_roots() {
    // Roots the model sees under their real paths, like in a Pod.
    let dir = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(dir.path()).unwrap();
    fs::create_dir_all(base.join("tmp")).unwrap();
    fs::create_dir_all(base.join("tmpfoo")).unwrap();
    let tmp = base.join("tmp");
    let roots = Roots::new(vec![Root::new(&tmp)], vec![Root::new(&tmp)]);
    let tool = WriteFile::new(roots);
    let evil = format!("{}foo/x", tmp.display());
    assert_eq!(
        call(&tool, json!({"path": evil, "content": "x"})).await,
        format!(
            "Error: access denied: {evil} is outside the allowed directories ({})",
            tmp.display()
        )
    );
    assert!(!base.join("tmpfoo/x").exists());
    // With unmapped roots the host path is the model's path: a symlink out
    // is refused by the same rule.
    symlink(base.join("tmpfoo"), tmp.join("out")).unwrap();
    let via_link = format!("{}/out/y", tmp.display());
    assert_eq!(
        call(&tool, json!({"path": via_link, "content": "x"})).await,
        format!(
            "Error: access denied: {via_link} resolves outside the allowed directories ({})",
            tmp.display()
        )
    );
    assert!(!base.join("tmpfoo/y").exists());
    let ok = format!("{}/x", tmp.display());
    assert_eq!(
        call(&tool, json!({"path": ok, "content": "x"})).await,
        format!("Successfully wrote 1 bytes to {ok}")
    );
}

#[tokio::test]
async fn edit_file_refuses_paths_outside_the_writable_roots() {
    let pod = Pod::new();
    let tool = EditFile::new(pod.roots.clone());
    fs::write(pod.host("skills/skill.md"), "top secret\n").unwrap();
    let edits = json!([{"old_string": "top", "new_string": "no"}]);
    let cases = [
        (
            "/workspace/../outside/secret.txt",
            outside("/outside/secret.txt", WRITE_ROOTS),
        ),
        ("/etc/passwd", outside("/etc/passwd", WRITE_ROOTS)),
        ("/skills/skill.md", outside("/skills/skill.md", WRITE_ROOTS)),
        (
            "/workspace/link.txt",
            escapes("/workspace/link.txt", WRITE_ROOTS),
        ),
        (
            "/workspace/outlink/secret.txt",
            escapes("/workspace/outlink/secret.txt", WRITE_ROOTS),
        ),
        (
            "/workspace/missing.txt",
            "Error: /workspace/missing.txt: no such file or directory".to_owned(),
        ),
    ];
    for (path, want) in cases {
        assert_eq!(
            call(&tool, json!({ "path": path, "edits": edits })).await,
            want,
            "{path}"
        );
    }
    pod.secret_untouched();
    assert_eq!(
        fs::read_to_string(pod.host("skills/skill.md")).unwrap(),
        "top secret\n"
    );
}

// ------------------------------------------------------------ file happy paths

#[tokio::test]
async fn read_file_whole_ranges_and_cap() {
    let pod = Pod::new();
    let tool = ReadFile::new(pod.roots.clone());
    fs::write(pod.host("workspace/small.txt"), "a\nb\nc\n").unwrap();
    fs::write(pod.host("skills/SKILL.md"), "# skill\n").unwrap();
    fs::write(pod.host("ipc/x.json"), "{}").unwrap();
    assert_eq!(
        call(&tool, json!({"path": "/workspace/small.txt"})).await,
        "a\nb\nc\n"
    );
    assert_eq!(
        call(&tool, json!({"path": "/skills/SKILL.md"})).await,
        "# skill\n"
    );
    assert_eq!(call(&tool, json!({"path": "/ipc/x.json"})).await, "{}");
    assert_eq!(
        call(
            &tool,
            json!({"path": "/workspace/small.txt", "offset": 2, "limit": 1})
        )
        .await,
        "b\n... (showing lines 2-2 of 3; continue with offset=3)"
    );
    assert_eq!(
        call(&tool, json!({"path": "/workspace/small.txt", "offset": 9})).await,
        "Error: offset 9 is past the end of /workspace/small.txt (3 lines)"
    );
    assert_eq!(
        call(&tool, json!({"path": "/workspace"})).await,
        "Error: /workspace is a directory; use list_directory"
    );
    assert_eq!(
        call(&tool, json!({"path": "/workspace/nope"})).await,
        "Error: /workspace/nope: no such file or directory"
    );

    // 100 000 bytes: 5 000 lines of 20 bytes. 400 lines fit in 8 000 bytes
    // exactly, and the trailing newline of line 400 is dropped.
    let big: String = (1..=5000).map(|i| format!("{i:>19}\n")).collect();
    fs::write(pod.host("workspace/big.txt"), &big).unwrap();
    let out = call(&tool, json!({"path": "/workspace/big.txt"})).await;
    let (body, hint) = out.rsplit_once("\n... ").unwrap();
    assert!(body.len() <= 8000, "{}", body.len());
    assert_eq!(body.len(), 7999);
    assert_eq!(
        hint,
        "(truncated at line 400 of 5000; continue with offset=401)"
    );
    let out = call(&tool, json!({"path": "/workspace/big.txt", "offset": 4990})).await;
    assert_eq!(out, big[4989 * 20..]);

    // One 20 000-byte line is cut inside the line.
    fs::write(pod.host("workspace/line.txt"), "x".repeat(20_000)).unwrap();
    let out = call(&tool, json!({"path": "/workspace/line.txt"})).await;
    assert_eq!(
        out,
        format!(
            "{}\n...(truncated mid-line at line 1 of 1; continue with offset=2)",
            "x".repeat(8000)
        )
    );
}

#[tokio::test]
async fn list_directory_lists_entries() {
    let pod = Pod::new();
    let tool = ListDirectory::new(pod.roots.clone());
    fs::create_dir(pod.host("tmp/d")).unwrap();
    fs::write(pod.host("tmp/f.txt"), "12345").unwrap();
    let dsize = fs::metadata(pod.host("tmp/d")).unwrap().len();
    assert_eq!(
        call(&tool, json!({"path": "/tmp"})).await,
        format!("dir    {dsize:>8}  d\nfile          5  f.txt\n")
    );
    // A symlink inside the root is listed as itself, not followed.
    let out = call(&tool, json!({"path": "/workspace"})).await;
    assert!(
        out.contains("  link.txt\n") && out.contains("  outlink\n"),
        "{out}"
    );
    assert!(!out.contains("secret"), "{out}");
}

#[tokio::test]
async fn write_then_edit() {
    let pod = Pod::new();
    let write = WriteFile::new(pod.roots.clone());
    let edit = EditFile::new(pod.roots.clone());
    assert_eq!(
        call(
            &write,
            json!({"path": "/workspace/src/main.rs", "content": "fn main() {\n    old();\n}\n"})
        )
        .await,
        "Successfully wrote 25 bytes to /workspace/src/main.rs"
    );
    let host = pod.host("workspace/src/main.rs");
    assert_eq!(
        fs::metadata(&host).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        fs::metadata(pod.host("workspace/src"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755 & !current_umask()
    );
    fs::set_permissions(&host, fs::Permissions::from_mode(0o750)).unwrap();

    let out = call(
        &edit,
        json!({"path": "/workspace/src/main.rs", "edits": [
            {"old_string": "old();", "new_string": "new();\n    more();"},
            {"old_string": "fn main", "new_string": "pub fn main"}
        ]}),
    )
    .await;
    assert_eq!(
        out,
        "Edited /workspace/src/main.rs (2 changes)\n@ line 2:\n-old();\n+new();\n+    more();\n@ line 1:\n-fn main\n+pub fn main"
    );
    assert_eq!(
        fs::read_to_string(&host).unwrap(),
        "pub fn main() {\n    new();\n    more();\n}\n"
    );
    assert_eq!(
        fs::metadata(&host).unwrap().permissions().mode() & 0o777,
        0o750
    );

    // All or nothing: the second edit fails, so the first is not written.
    let out = call(
        &edit,
        json!({"path": "/workspace/src/main.rs", "edits": [
            {"old_string": "new();", "new_string": "x();"},
            {"old_string": "absent", "new_string": "y"}
        ]}),
    )
    .await;
    assert_eq!(
        out,
        "Error: edit #2: old_string not found in /workspace/src/main.rs"
    );
    assert!(is_error_result(&out));
    assert_eq!(
        fs::read_to_string(&host).unwrap(),
        "pub fn main() {\n    new();\n    more();\n}\n"
    );
    // No temp files left next to the file.
    assert_eq!(fs::read_dir(pod.host("workspace/src")).unwrap().count(), 1);
}

fn current_umask() -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("p");
    fs::create_dir(&probe).unwrap();
    0o777 & !(fs::metadata(&probe).unwrap().permissions().mode() & 0o777)
}

// -------------------------------------------------------------- IPC writers

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn send_channel_message_and_schedule_task_write_ipc_files() {
    let pod = Pod::new();
    pod.ipc.create_dirs().unwrap();
    let send = SendChannelMessage::new(pod.ipc.clone());
    let sched = ScheduleTask::new(pod.ipc.clone());
    assert_eq!(
        call(
            &send,
            json!({"channel": "discord", "text": "done", "threadId": "t1"})
        )
        .await,
        "Message sent to discord channel (target: owner (self), thread: t1)"
    );
    assert_eq!(
        call(&send, json!({"channel": "sms", "text": "x"})).await,
        "Error: channel must be one of whatsapp, telegram, discord, slack"
    );
    let out = call(
        &sched,
        json!({"name": "nightly", "action": "update", "task": "summarize the day"}),
    )
    .await;
    assert_eq!(
        out,
        "Schedule 'nightly' update requested. The controller applies it shortly."
    );

    let msgs = files_in(&pod.ipc.messages());
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].starts_with("send-") && msgs[0].ends_with(".json"));
    let body: Value =
        serde_json::from_slice(&fs::read(pod.ipc.messages().join(&msgs[0])).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"channel": "discord", "threadId": "t1", "text": "done"})
    );

    let scheds = files_in(&pod.ipc.schedules());
    assert_eq!(scheds.len(), 1);
    assert!(scheds[0].starts_with("schedule-") && scheds[0].ends_with(".json"));
    let body: Value =
        serde_json::from_slice(&fs::read(pod.ipc.schedules().join(&scheds[0])).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"name": "nightly", "action": "update", "task": "summarize the day"})
    );
}

#[tokio::test]
async fn concurrent_messages_get_distinct_files() {
    let pod = Pod::new();
    let send = Arc::new(SendChannelMessage::new(pod.ipc.clone()));
    let calls = (0..20).map(|i| {
        let send = send.clone();
        tokio::spawn(async move {
            call(
                send.as_ref(),
                json!({"channel": "slack", "text": format!("m{i}")}),
            )
            .await
        })
    });
    for c in calls {
        assert!(!is_error_result(&c.await.unwrap()));
    }
    let names = files_in(&pod.ipc.messages());
    assert_eq!(names.len(), 20);
    assert!(names.iter().all(|n| n.starts_with("send-")), "{names:?}");
}

// ----------------------------------------------------------------- fetch_url

/// Resolves only the names a test gives it and counts lookups; anything
/// else fails without touching real DNS.
#[derive(Default)]
struct MapResolver {
    names: HashMap<String, Vec<SocketAddr>>,
    lookups: AtomicUsize,
}

impl Resolve for MapResolver {
    fn resolve(&self, name: Name) -> Resolving {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let found = self.names.get(name.as_str()).cloned();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match found {
                Some(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                None => Err(format!("no such host {host}").into()),
            }
        })
    }
}

const PAGE: &str = "<html><head><title>Page</title><script>alert(1)</script></head>\
                    <body><h1>Title</h1><p>Hello <b>world</b> &amp; friends</p><ul><li>a</li><li>b</li></ul></body></html>";

struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn server() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let port = addr.port();
    let h = hits.clone();
    let app = Router::new()
        .route(
            "/html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }),
        )
        .route(
            "/untyped",
            get(|| async { ([(header::CONTENT_TYPE, "application/octet-stream")], PAGE) }),
        )
        .route(
            "/json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"ok":true}"#,
                )
            }),
        )
        .route(
            "/big",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain")],
                    "0123456789".repeat(20_000),
                )
            }),
        )
        .route(
            "/missing",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    format!("nothing here{}", "!".repeat(3000)),
                )
            }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let g = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned()
                };
                format!(
                    "ua={} accept={} custom={}",
                    g("user-agent"),
                    g("accept"),
                    g("x-custom")
                )
            }),
        )
        .route(
            "/redirect-ok",
            get(|| async { Redirect::temporary("/json") }),
        )
        .route(
            "/redirect-metadata",
            get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }),
        )
        .route(
            "/redirect-internal",
            get(move || async move {
                Redirect::temporary(&format!("http://internal.test:{port}/json"))
            }),
        )
        .route(
            "/redirect-loopback",
            get(|| async { Redirect::temporary("http://127.0.0.1:1/json") }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await.into_response()
                }
            },
        ));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { addr, hits }
}

/// A `fetch_url` where `public.test` is the local server (and counts as
/// public) and `internal.test` resolves to 10.0.0.5.
fn fetch_tool(srv: &Server) -> (FetchUrl, Arc<MapResolver>) {
    let mut names = HashMap::new();
    names.insert("public.test".to_owned(), vec![srv.addr]);
    names.insert(
        "internal.test".to_owned(),
        vec!["10.0.0.5:0".parse().unwrap()],
    );
    names.insert(
        "mixed.test".to_owned(),
        vec![srv.addr, "192.168.1.10:0".parse().unwrap()],
    );
    let resolver = Arc::new(MapResolver {
        names,
        lookups: AtomicUsize::new(0),
    });
    let cfg = FetchConfig {
        resolver: Some(resolver.clone()),
        public_exceptions: vec![srv.addr],
        ..FetchConfig::default()
    };
    (FetchUrl::new(cfg).unwrap(), resolver)
}

#[tokio::test]
async fn fetch_url_refuses_non_public_addresses() {
    let srv = server().await;
    let (tool, resolver) = fetch_tool(&srv);
    let p = srv.addr.port();
    let cases = [
        (
            "http://127.0.0.1/".to_owned(),
            "Error: fetch_url refused http://127.0.0.1/: 127.0.0.1 is not a public address (loopback)".to_owned(),
        ),
        (
            // The server's own port, but on another loopback spelling.
            format!("http://127.0.0.2:{p}/json"),
            format!(
                "Error: fetch_url refused http://127.0.0.2:{p}/json: 127.0.0.2 is not a public address (loopback)"
            ),
        ),
        (
            "http://[::1]/".to_owned(),
            "Error: fetch_url refused http://[::1]/: ::1 is not a public address (loopback)".to_owned(),
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "Error: fetch_url refused http://169.254.169.254/latest/meta-data/: 169.254.169.254 is not a public address (link-local)"
                .to_owned(),
        ),
        (
            "http://0.0.0.0/".to_owned(),
            "Error: fetch_url refused http://0.0.0.0/: 0.0.0.0 is not a public address (unspecified)".to_owned(),
        ),
        (
            "http://[::ffff:10.1.2.3]/".to_owned(),
            "Error: fetch_url refused http://[::ffff:a01:203]/: ::ffff:10.1.2.3 is not a public address (private)"
                .to_owned(),
        ),
        (
            "http://2130706433/".to_owned(),
            "Error: fetch_url refused http://127.0.0.1/: 127.0.0.1 is not a public address (loopback)".to_owned(),
        ),
    ];
    for (url, want) in &cases {
        assert_eq!(&call(&tool, json!({ "url": url })).await, want, "{url}");
    }
    // Literal addresses never reach the resolver, and nothing reached the server.
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 0);
    assert_eq!(srv.hits.load(Ordering::SeqCst), 0);

    // A name that resolves to a private address: refused at resolution,
    // before any connection.
    assert_eq!(
        call(&tool, json!({"url": "http://internal.test/admin"})).await,
        "Error: fetch_url refused http://internal.test/admin: internal.test resolves to 10.0.0.5, which is not a public address (private)"
    );
    // One private address among public ones poisons the whole answer.
    assert_eq!(
        call(&tool, json!({"url": format!("http://mixed.test:{p}/json")})).await,
        format!(
            "Error: fetch_url refused http://mixed.test:{p}/json: mixed.test resolves to 192.168.1.10, which is not a public address (private)"
        )
    );
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 2);
    assert_eq!(srv.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn fetch_url_refuses_redirects_to_non_public_addresses() {
    let srv = server().await;
    let (tool, resolver) = fetch_tool(&srv);
    let p = srv.addr.port();
    let base = format!("http://public.test:{p}");

    assert_eq!(
        call(&tool, json!({"url": format!("{base}/redirect-metadata")})).await,
        format!(
            "Error: fetch_url refused redirect from {base}/redirect-metadata to \
             http://169.254.169.254/latest/meta-data/: 169.254.169.254 is not a public address (link-local)"
        )
    );
    assert_eq!(
        call(&tool, json!({"url": format!("{base}/redirect-loopback")})).await,
        format!(
            "Error: fetch_url refused redirect from {base}/redirect-loopback to http://127.0.0.1:1/json: \
             127.0.0.1 is not a public address (loopback)"
        )
    );
    assert_eq!(
        call(&tool, json!({"url": format!("{base}/redirect-internal")})).await,
        format!(
            "Error: fetch_url refused a redirect from {base}/redirect-internal: internal.test resolves to \
             10.0.0.5, which is not a public address (private)"
        )
    );
    // Three redirecting pages were served; none of the targets was.
    assert_eq!(srv.hits.load(Ordering::SeqCst), 3);
    assert!(resolver.lookups.load(Ordering::SeqCst) >= 2);

    assert_eq!(
        call(&tool, json!({"url": format!("{base}/loop")})).await,
        format!("Error: fetching {base}/loop failed: stopped after 5 redirects")
    );
    assert_eq!(srv.hits.load(Ordering::SeqCst), 3 + 6);
}

#[tokio::test]
async fn fetch_url_happy_paths() {
    let srv = server().await;
    let (tool, _) = fetch_tool(&srv);
    let base = format!("http://public.test:{}", srv.addr.port());

    let want_page = "Title\nHello world & friends\na\nb";
    assert_eq!(
        call(&tool, json!({"url": format!("{base}/html")})).await,
        want_page
    );
    // A non-text type whose body looks like markup is converted too.
    assert_eq!(
        call(&tool, json!({"url": format!("{base}/untyped")})).await,
        want_page
    );
    assert_eq!(
        call(&tool, json!({"url": format!("{base}/json")})).await,
        r#"{"ok":true}"#
    );
    assert_eq!(
        call(&tool, json!({"url": format!("{base}/redirect-ok")})).await,
        r#"{"ok":true}"#
    );
    assert_eq!(
        call(
            &tool,
            json!({"url": format!("{base}/headers"), "headers": {"X-Custom": "yes"}})
        )
        .await,
        "ua=Sympozium/1.0 (agent-runner) accept=text/html,application/xhtml+xml,application/json,text/plain,*/* \
         custom=yes"
    );
    let out = call(&tool, json!({"url": format!("{base}/missing")})).await;
    assert_eq!(
        out,
        format!("HTTP 404 Not Found\nnothing here{}", "!".repeat(2000 - 12))
    );
    assert!(!is_error_result(&out));
    assert_eq!(
        call(&tool, json!({"url": "ftp://public.test/x"})).await,
        "Error: url must use http or https, not ftp"
    );

    // The literal server address works too, being the one exception.
    assert_eq!(
        call(&tool, json!({"url": format!("http://{}/json", srv.addr)})).await,
        r#"{"ok":true}"#
    );
}

#[tokio::test]
async fn fetch_url_caps_output() {
    let srv = server().await;
    let (tool, _) = fetch_tool(&srv);
    let url = format!("http://public.test:{}/big", srv.addr.port());
    let digits = "0123456789".repeat(20_000);

    let out = call(&tool, json!({"url": url, "maxChars": 1000})).await;
    assert_eq!(
        out,
        format!(
            "{}\n\n... (truncated at 1000 chars, total ~200000)",
            &digits[..1000]
        )
    );
    let out = call(&tool, json!({"url": url})).await;
    assert_eq!(
        out,
        format!(
            "{}\n\n... (truncated at 50000 chars, total ~200000)",
            &digits[..50_000]
        )
    );
    let out = call(&tool, json!({"url": url, "maxChars": 10_000_000})).await;
    assert_eq!(
        out,
        format!(
            "{}\n\n... (truncated at 100000 chars, total ~200000)",
            &digits[..100_000]
        )
    );
}

#[tokio::test]
async fn allow_private_turns_the_guard_off() {
    let srv = server().await;
    let tool = FetchUrl::new(FetchConfig {
        allow_private: true,
        ..FetchConfig::default()
    })
    .unwrap();
    assert_eq!(
        call(&tool, json!({"url": format!("http://{}/json", srv.addr)})).await,
        r#"{"ok":true}"#
    );
    let strict = FetchUrl::new(FetchConfig::default()).unwrap();
    let out = call(&strict, json!({"url": format!("http://{}/json", srv.addr)})).await;
    assert_eq!(
        out,
        format!(
            "Error: fetch_url refused http://{}/json: 127.0.0.1 is not a public address (loopback)",
            srv.addr
        )
    );
    // The system resolver path: `localhost` is loopback however it resolves.
    let out = call(
        &strict,
        json!({"url": format!("http://localhost:{}/json", srv.addr.port())}),
    )
    .await;
    assert!(
        out.starts_with("Error: fetch_url refused http://localhost:"),
        "{out}"
    );
    assert!(out.contains("localhost resolves to"), "{out}");
    assert_eq!(srv.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn builtin_tools_advertise_upstream_schemas() {
    let tools = builtin_tools(&BuiltinConfig::default()).unwrap();
    let by_name: HashMap<String, Value> = tools
        .iter()
        .map(|t| (t.spec().name.clone(), t.spec().parameters.clone()))
        .collect();
    let required = |n: &str| by_name[n]["required"].clone();
    assert_eq!(required("read_file"), json!(["path"]));
    assert_eq!(required("list_directory"), json!(["path"]));
    assert_eq!(required("send_channel_message"), json!(["channel", "text"]));
    assert_eq!(required("fetch_url"), json!(["url"]));
    assert_eq!(required("write_file"), json!(["path", "content"]));
    assert_eq!(required("edit_file"), json!(["path", "edits"]));
    assert_eq!(required("schedule_task"), json!(["name", "action"]));
    assert_eq!(
        by_name["send_channel_message"]["properties"]["channel"]["enum"],
        json!(["whatsapp", "telegram", "discord", "slack"])
    );
    assert_eq!(
        by_name["schedule_task"]["properties"]["action"]["enum"],
        json!(["create", "update", "suspend", "resume", "delete"])
    );
    let edits = &by_name["edit_file"]["properties"]["edits"];
    assert_eq!(edits["minItems"], 1);
    assert_eq!(
        edits["items"]["required"],
        json!(["old_string", "new_string"])
    );
    assert_eq!(
        edits["items"]["properties"]["replace_all"]["type"],
        "boolean"
    );
    assert_eq!(
        by_name["read_file"]["properties"]["offset"]["type"],
        "integer"
    );
    assert_eq!(
        by_name["fetch_url"]["properties"]["maxChars"]["type"],
        "integer"
    );
    assert_eq!(
        by_name["fetch_url"]["properties"]["headers"]["type"],
        "object"
    );
    for (name, schema) in &by_name {
        assert_eq!(schema["type"], "object", "{name}");
    }
}
