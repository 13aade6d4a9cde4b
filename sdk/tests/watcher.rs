//! The `/ipc` directory watcher against a real filesystem and real inotify.
//!
//! Every test asserts that each file is delivered exactly once with its full
//! content. "Exactly once" is checked by [`settle`]: after the expected files
//! arrived, it waits (polling the watcher's counters, with a deadline) until
//! at least one more full rescan has completed, since a rescan is where a
//! duplicate would come from, and fails on any further file.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use agentpod_sdk::ipc::{IpcRoot, NameFilter, Watch, WatchEvent, WatchOptions};
use serde_json::{Value, json};

/// Scratch space on tmpfs when there is one, as `/ipc` is in a Pod.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(t) = tempfile::tempdir_in(shm)
    {
        return t;
    }
    tempfile::tempdir().expect("tempdir")
}

fn ipc(t: &tempfile::TempDir) -> IpcRoot {
    let root = IpcRoot::new(t.path().join("ipc"));
    root.create_dirs().expect("create /ipc");
    root
}

const FAST: Duration = Duration::from_millis(100);

/// Polls `cond` until it holds or `limit` passes.
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Receives events until `n` files arrived; panics on an `Invalid` event or
/// after `limit`.
async fn files(w: &mut Watch<Value>, n: usize, limit: Duration) -> Vec<(PathBuf, Vec<u8>, Value)> {
    let end = Instant::now() + limit;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, w.recv()).await {
            Ok(Some(WatchEvent::File(d))) => out.push((d.path, d.bytes, d.value)),
            Ok(Some(WatchEvent::Invalid(e))) => panic!("unexpected invalid file: {e}"),
            Ok(None) => panic!("watcher stopped"),
            Err(_) => panic!("timed out after {} of {n} files", out.len()),
        }
    }
    out
}

/// Waits for a full rescan that started after now, and fails if it (or
/// anything else) delivers another event.
async fn settle(w: &mut Watch<Value>) {
    let start = w.stats().scans;
    let end = Instant::now() + Duration::from_secs(10);
    while w.stats().scans < start + 2 {
        if let Some(ev) = w.try_recv() {
            panic!("unexpected extra event: {ev:?}");
        }
        assert!(Instant::now() < end, "no rescan happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(ev) = w.try_recv() {
        panic!("unexpected extra event: {ev:?}");
    }
}

fn assert_unique(got: &[(PathBuf, Vec<u8>, Value)]) {
    let mut seen = HashSet::new();
    for (p, _, _) in got {
        assert!(seen.insert(p.clone()), "{} delivered twice", p.display());
    }
}

#[tokio::test]
async fn atomic_write_is_delivered_once() {
    let t = scratch();
    let root = ipc(&t);
    let mut w = WatchOptions::new(root.messages())
        .rescan_interval(FAST)
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;
    assert!(w.stats().inotify_active);

    let doc = json!({"channel": "slack", "text": "hello"});
    root.write_json_atomic(&root.outbound_message("1"), &doc)
        .unwrap();
    let got = files(&mut w, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].0, root.outbound_message("1"));
    assert_eq!(got[0].1, serde_json::to_vec(&doc).unwrap());
    assert_eq!(got[0].2, doc);
    settle(&mut w).await;
}

#[tokio::test]
async fn chunked_non_atomic_write_is_never_delivered_partial() {
    let t = scratch();
    let root = ipc(&t);
    let mut w = WatchOptions::new(root.spawn())
        .filter(NameFilter::prefix_suffix("request-", ".json"))
        .rescan_interval(Duration::from_millis(20))
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;

    // Written the way the upstream Go runner writes: create, then write, in
    // place, here in 7-byte pieces with pauses so the watcher sees every
    // intermediate state through both inotify and rescans.
    let doc = json!({
        "requestId": "r1",
        "task": "summarise the incident report in three bullet points",
        "agentId": "default",
        "targetPersona": "analyst",
        "skills": ["k8s-ops", "memory"],
        "nested": {"a": [1, 2, 3], "b": {"c": "d"}},
    });
    let body = serde_json::to_vec_pretty(&doc).unwrap();
    let path = root.spawn_request("1732800000123456789");
    let writer = {
        let (path, body) = (path.clone(), body.clone());
        std::thread::spawn(move || {
            let mut f = fs::File::create(&path).unwrap();
            for chunk in body.chunks(7) {
                f.write_all(chunk).unwrap();
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let got = files(&mut w, 1, Duration::from_secs(10)).await;
    writer.join().unwrap();
    assert_eq!(got[0].0, path);
    assert_eq!(got[0].1, body, "delivered bytes must be the whole document");
    assert_eq!(got[0].2, doc);
    settle(&mut w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_ten_thousand_files() {
    const N: usize = 10_000;
    let t = scratch();
    let root = ipc(&t);
    let mut w = WatchOptions::new(root.tools())
        .filter(NameFilter::prefix_suffix("exec-request-", ".json"))
        .rescan_interval(FAST)
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;

    let writer = {
        let root = root.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                let doc = json!({"id": i.to_string(), "command": "true"});
                root.write_json_atomic(&root.exec_request(&i.to_string()), &doc)
                    .unwrap();
            }
        })
    };
    let started = Instant::now();
    let got = files(&mut w, N, Duration::from_secs(120)).await;
    writer.join().unwrap();
    assert_unique(&got);
    for (p, _, v) in &got {
        let id = v["id"].as_str().unwrap();
        assert_eq!(p, &root.exec_request(id));
    }
    settle(&mut w).await;
    // Not a benchmark (see bench/), only a bound that catches a watcher
    // that fell back to slow scanning.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn poll_only_mode_finds_everything() {
    let t = scratch();
    let root = ipc(&t);
    root.write_atomic(&root.context_clear("before"), br#"{"requestId":"before"}"#)
        .unwrap();
    let mut w = WatchOptions::new(root.context())
        .poll_only()
        .rescan_interval(Duration::from_millis(50))
        .spawn_json::<Value>()
        .unwrap();
    let first = files(&mut w, 1, Duration::from_secs(5)).await;
    assert_eq!(first[0].2["requestId"], "before");
    // The first file arrives during the first scan, which then finishes.
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;
    assert!(!w.stats().inotify_active, "poll-only must not use inotify");

    root.write_atomic(&root.context_clear("atomic"), br#"{"requestId":"atomic"}"#)
        .unwrap();
    let mut f = fs::File::create(root.context_clear("plain")).unwrap();
    f.write_all(br#"{"requestId":"#).unwrap();
    f.flush().unwrap();
    // Let at least one scan see the half-written file.
    let s = w.stats().scans;
    eventually(Duration::from_secs(5), "a scan of the partial file", || {
        w.stats().scans >= s + 2
    })
    .await;
    f.write_all(br#""plain"}"#).unwrap();
    drop(f);

    let mut got = files(&mut w, 2, Duration::from_secs(5)).await;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got[0].2, json!({"requestId": "atomic"}));
    assert_eq!(got[1].2, json!({"requestId": "plain"}));
    assert_eq!(got[1].1, br#"{"requestId":"plain"}"#);
    settle(&mut w).await;
}

/// Provokes a real `IN_Q_OVERFLOW`: the name filter runs on notify's inotify
/// reader thread, so a filter that blocks on one name stalls that reader.
/// While it is stalled (and nobody consumes the watcher's channel either),
/// the test creates more events than the kernel queue holds
/// (`/proc/sys/fs/inotify/max_queued_events`). The rescan timer is set to an
/// hour, so only the overflow-triggered rescan can find the files whose
/// events the kernel dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_overflow_loses_no_file() {
    let max_queued: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    // A plain create+write makes four events (create, open, modify,
    // close-write): this is twice the queue, bounded for odd machines.
    let n = (max_queued / 2).clamp(1_000, 100_000);
    let overflow_expected = n * 4 > max_queued;

    let t = scratch();
    let root = ipc(&t);
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let entered = Arc::new(AtomicBool::new(false));
    let filter = {
        let (gate, entered) = (gate.clone(), entered.clone());
        NameFilter::custom(move |name| {
            if name == "gate.json" && !entered.swap(true, Ordering::SeqCst) {
                let (lock, cv) = &*gate;
                let open = lock.lock().unwrap();
                // Bounded so a failing test cannot hang forever.
                let _open = cv
                    .wait_timeout_while(open, Duration::from_secs(60), |o| !*o)
                    .unwrap();
            }
            true
        })
    };
    let mut w = WatchOptions::new(root.messages())
        .filter(filter)
        .rescan_interval(Duration::from_secs(3600))
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;
    assert!(w.stats().inotify_active);

    fs::write(root.messages().join("gate.json"), b"{}").unwrap();
    eventually(Duration::from_secs(5), "the reader to stall", || {
        entered.load(Ordering::SeqCst)
    })
    .await;
    for i in 0..n {
        fs::write(
            root.outbound_message(&i.to_string()),
            format!(r#"{{"i":{i}}}"#),
        )
        .unwrap();
    }
    {
        let (lock, cv) = &*gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }

    let got = files(&mut w, n + 1, Duration::from_secs(120)).await;
    assert_unique(&got);
    let by_path: HashMap<_, _> = got.iter().map(|(p, _, v)| (p.clone(), v.clone())).collect();
    for i in 0..n {
        assert_eq!(
            by_path[&root.outbound_message(&i.to_string())],
            json!({"i": i})
        );
    }
    if overflow_expected {
        assert!(
            w.stats().event_overflows >= 1,
            "the kernel queue never overflowed: {:?}",
            w.stats()
        );
    }
    // No duplicates from the overflow rescan or the queued events either.
    assert!(w.try_recv().is_none());
}

#[tokio::test]
async fn file_existing_before_start_is_delivered() {
    let t = scratch();
    let root = ipc(&t);
    root.write_atomic(&root.result(), br#"{"status":"success","response":"ok"}"#)
        .unwrap();
    root.write_atomic(
        &root.stream_chunk(0),
        br#"{"type":"text","content":"x","index":0}"#,
    )
    .unwrap();
    let mut w = WatchOptions::new(root.output())
        .filter(NameFilter::exact("result.json"))
        .rescan_interval(FAST)
        .spawn_json::<Value>()
        .unwrap();
    let got = files(&mut w, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].0, root.result());
    assert_eq!(got[0].2["response"], "ok");
    settle(&mut w).await;
}

#[tokio::test]
async fn directory_created_after_start_is_watched() {
    let t = scratch();
    // The parent exists, the directory does not: the parent's inotify
    // events bring it in (the rescan timer is an hour, so they must).
    let root = IpcRoot::new(t.path().join("ipc"));
    fs::create_dir(root.path()).unwrap();
    let mut w = WatchOptions::new(root.output())
        .filter(NameFilter::exact("result.json"))
        .rescan_interval(Duration::from_secs(3600))
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "the parent watch", || {
        w.stats().waiting
    })
    .await;
    assert!(!w.stats().attached);
    root.create_dirs().unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;
    root.write_atomic(&root.result(), br#"{"status":"success"}"#)
        .unwrap();
    let got = files(&mut w, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].0, root.result());

    // Neither the directory nor its parent exists: the rescan timer finds it.
    let root2 = IpcRoot::new(t.path().join("late").join("ipc"));
    let mut w2 = WatchOptions::new(root2.output())
        .rescan_interval(Duration::from_millis(20))
        .spawn_json::<Value>()
        .unwrap();
    root2.create_dirs().unwrap();
    root2
        .write_atomic(&root2.result(), br#"{"status":"error"}"#)
        .unwrap();
    let got = files(&mut w2, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].2["status"], "error");
    settle(&mut w2).await;
}

#[tokio::test]
async fn invalid_file_is_reported_after_the_deadline() {
    let t = scratch();
    let root = ipc(&t);
    let deadline = Duration::from_millis(300);
    let mut w = WatchOptions::new(root.schedules())
        .rescan_interval(Duration::from_millis(50))
        .invalid_after(deadline)
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;

    let path = root.schedule("9");
    let written = Instant::now();
    fs::write(&path, br#"{"name":"nightly","action":"#).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.recv())
        .await
        .unwrap()
        .unwrap();
    let WatchEvent::Invalid(bad) = ev else {
        panic!("expected an invalid-file event, got {ev:?}")
    };
    assert!(
        written.elapsed() >= deadline,
        "reported before the deadline"
    );
    assert_eq!(bad.path, path);
    assert!(bad.invalid_for >= deadline);
    assert!(bad.error.contains("EOF"), "{}", bad.error);
    let msg = bad.to_string();
    assert!(
        msg.contains("schedule-9.json") && msg.contains("EOF"),
        "{msg}"
    );
    // Reported once, however many rescans follow.
    let s = w.stats().scans;
    eventually(Duration::from_secs(5), "rescans", || {
        w.stats().scans >= s + 3
    })
    .await;
    assert!(w.try_recv().is_none(), "invalid file reported twice");

    // Fixed later: retried and delivered.
    fs::write(&path, br#"{"name":"nightly","action":"create"}"#).unwrap();
    let got = files(&mut w, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].2["action"], "create");
    settle(&mut w).await;
}

#[tokio::test]
async fn delete_and_recreate_is_delivered_again() {
    for poll_only in [false, true] {
        let t = scratch();
        let root = ipc(&t);
        let mut opts = WatchOptions::new(root.prompts())
            .filter(NameFilter::prefix_suffix("request-", ".json"))
            .rescan_interval(Duration::from_millis(30));
        if poll_only {
            opts = opts.poll_only();
        }
        let mut w = opts.spawn_json::<Value>().unwrap();
        let path = root.prompt_request("p1");
        root.write_atomic(&path, br#"{"requestId":"p1","prompt":"one"}"#)
            .unwrap();
        let got = files(&mut w, 1, Duration::from_secs(5)).await;
        assert_eq!(got[0].2["prompt"], "one");

        fs::remove_file(&path).unwrap();
        // Wait until a scan that started after the delete has finished.
        let s = w.stats().scans;
        eventually(Duration::from_secs(5), "a rescan", || {
            w.stats().scans >= s + 2
        })
        .await;
        root.write_atomic(&path, br#"{"requestId":"p1","prompt":"two"}"#)
            .unwrap();
        let got = files(&mut w, 1, Duration::from_secs(5)).await;
        assert_eq!(got[0].0, path);
        assert_eq!(got[0].2["prompt"], "two", "poll_only={poll_only}");

        // Replaced by a rename without a visible gap: a new file too.
        root.write_atomic(&path, br#"{"requestId":"p1","prompt":"three"}"#)
            .unwrap();
        let got = files(&mut w, 1, Duration::from_secs(5)).await;
        assert_eq!(got[0].2["prompt"], "three", "poll_only={poll_only}");
        settle(&mut w).await;
    }
}

#[tokio::test]
async fn slow_consumer_gets_everything_through_a_small_channel() {
    let t = scratch();
    let root = ipc(&t);
    let mut w = WatchOptions::new(root.messages())
        .capacity(1)
        .rescan_interval(FAST)
        .spawn_json::<Value>()
        .unwrap();
    eventually(Duration::from_secs(5), "attach", || w.stats().attached).await;
    for i in 0..200 {
        root.write_atomic(
            &root.outbound_message(&i.to_string()),
            format!(r#"{{"i":{i}}}"#).as_bytes(),
        )
        .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.extend(files(&mut w, 50, Duration::from_secs(10)).await);
        // The consumer is slow; changes keep queueing behind the channel.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_unique(&got);
    assert_eq!(got.len(), 200);
    settle(&mut w).await;
}
