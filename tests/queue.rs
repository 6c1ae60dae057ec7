//! `hark submit` / `hark worker` / `hark queue status` against a real redis-server: workers
//! killed with SIGKILL and Redis restarted mid-run lose nothing.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::redis_server::RedisServer;
use redis::streams::{StreamPendingCountReply, StreamRangeReply};

const DEADLINE: Duration = Duration::from_secs(600);

fn dev_real() -> Vec<PathBuf> {
    hark::eval::read_manifest(&common::fixture("dev-real/manifest.tsv"))
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect()
}

/// `hark transcribe -f json` of the files: the text each job's result must equal.
fn transcribe_texts(files: &[PathBuf]) -> HashMap<String, String> {
    let mut args = vec!["transcribe", "-f", "json"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let out = common::hark(&args);
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["file"].as_str().unwrap().to_string(), v["text"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Three files no decoder reads: noise named .wav, an empty .flac, text named .mp3.
fn corrupt_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let files = [
        ("noise.wav", vec![0x5au8; 4000]),
        ("empty.flac", Vec::new()),
        ("notes.mp3", b"this is not audio at all".to_vec()),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

fn worker(redis: &RedisServer, queue: &str, name: &str, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hark"))
        .args([
            "worker",
            "--redis",
            &redis.url(),
            "--queue",
            queue,
            "--jobs",
            "1",
            "--claim-idle",
            "3",
            "--max-attempts",
            "3",
            "--name",
            name,
        ])
        .current_dir(common::root())
        .env("RUST_LOG", "hark=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn terminate(mut child: Child) -> std::process::ExitStatus {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

fn queue_status(redis: &RedisServer, queue: &str) -> serde_json::Value {
    let out = common::hark(&["queue", "status", "--redis", &redis.url(), "--queue", queue, "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    serde_json::from_str(&common::stdout(&out)).unwrap()
}

/// `hark queue status` shows these counts of jobs waiting, in flight, done and dead-lettered.
fn assert_queue_counts(redis: &RedisServer, queue: &str, waiting: u64, in_flight: u64, done: u64, dead: u64) {
    let status = queue_status(redis, queue);
    let counts = ["waiting", "in_flight", "done", "dead_letters"].map(|k| status[k].as_u64());
    assert_eq!(counts, [Some(waiting), Some(in_flight), Some(done), Some(dead)], "{status}");
}

#[test]
fn three_workers_one_killed_every_job_has_one_result_and_bad_audio_is_dead_lettered() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dev_real();
    let reference = transcribe_texts(&good);
    let corrupt = corrupt_files(dir.path());
    // 57 good jobs (dev-real, repeated) with the 3 corrupt files among them.
    let mut files: Vec<PathBuf> = good.iter().cycle().take(57).cloned().collect();
    for (i, c) in corrupt.iter().enumerate() {
        files.insert(10 + 20 * i, c.clone());
    }
    let mut args =
        vec!["submit".to_string(), "--redis".into(), redis.url(), "--queue".into(), "archive".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = common::hark(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", common::stderr(&out));
    let jobs: Vec<(String, String)> = common::stdout(&out)
        .lines()
        .map(|l| l.split_once('\t').map(|(a, b)| (a.to_string(), b.to_string())).unwrap())
        .collect();
    assert_eq!(jobs.len(), 60);

    let logs: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("worker-{i}.log"))).collect();
    let mut workers: Vec<Option<Child>> =
        (0..3).map(|i| Some(worker(&redis, "archive", &format!("w{i}"), &logs[i]))).collect();
    let mut conn = redis.conn();
    let results = |conn: &mut redis::Connection| {
        redis::cmd("HLEN").arg("hark:archive:results").query::<usize>(conn).unwrap()
    };
    // Kill w0 with SIGKILL while it holds a job, once the run is well under way.
    wait_for("15 results", || results(&mut conn) >= 15);
    wait_for("w0 to hold a job", || {
        let p: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg("hark:archive:jobs")
            .arg("hark-workers")
            .arg("-")
            .arg("+")
            .arg(10)
            .arg("w0")
            .query(&mut conn)
            .unwrap();
        !p.ids.is_empty()
    });
    let mut killed = workers[0].take().unwrap();
    killed.kill().unwrap();
    killed.wait().unwrap();
    let dead_len = |conn: &mut redis::Connection| {
        redis::cmd("XLEN").arg("hark:archive:dead").query::<usize>(conn).unwrap()
    };
    wait_for("57 results and 3 dead letters", || results(&mut conn) >= 57 && dead_len(&mut conn) >= 3);

    // Every good job: exactly one result, equal to `hark transcribe`'s text for its file.
    let stored: HashMap<String, String> =
        redis::cmd("HGETALL").arg("hark:archive:results").query(&mut conn).unwrap();
    assert_eq!(stored.len(), 57);
    let corrupt_names: Vec<String> = corrupt.iter().map(|c| c.display().to_string()).collect();
    for (id, file) in &jobs {
        if corrupt_names.contains(file) {
            assert!(!stored.contains_key(id), "{file} has a result");
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(stored.get(id).unwrap_or_else(|| panic!("job {id} ({file}) has no result")))
                .unwrap();
        assert_eq!(v["file"], file.as_str());
        assert_eq!(v["text"].as_str().unwrap(), reference[file], "job {id} ({file})");
    }
    // The corrupt files are dead letters with their reasons, tried 3 times each.
    let dead: StreamRangeReply =
        redis::cmd("XRANGE").arg("hark:archive:dead").arg("-").arg("+").query(&mut conn).unwrap();
    assert_eq!(dead.ids.len(), 3);
    let mut dead_names: Vec<String> = dead.ids.iter().map(|e| e.get::<String>("name").unwrap()).collect();
    dead_names.sort();
    let mut expected = corrupt_names.clone();
    expected.sort();
    assert_eq!(dead_names, expected);
    for e in &dead.ids {
        let error: String = e.get("error").unwrap();
        let name: String = e.get("name").unwrap();
        assert!(
            error.contains(&name)
                || error.to_lowercase().contains("audio")
                || error.contains("decod")
                || error.contains("empty"),
            "{name}: {error}"
        );
        assert_eq!(e.get::<String>("attempts").unwrap(), "3", "{name}");
    }
    // Nothing pending, nothing waiting.
    assert_queue_counts(&redis, "archive", 0, 0, 57, 3);
    let log0 = std::fs::read_to_string(&logs[1]).unwrap() + &std::fs::read_to_string(&logs[2]).unwrap();
    assert!(log0.contains("reclaimed a job left pending"), "no worker reclaimed w0's job:\n{log0}");
    // The survivors stop cleanly on SIGTERM and say so in the status.
    for w in workers.iter_mut().filter_map(Option::take) {
        assert!(terminate(w).success());
    }
    let status = queue_status(&redis, "archive");
    let states: Vec<&str> =
        status["workers"].as_array().unwrap().iter().map(|w| w["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["running", "stopped", "stopped"], "{status}"); // w0 died without a word
    let done: u64 = status["workers"].as_array().unwrap().iter().map(|w| w["done"].as_u64().unwrap()).sum();
    assert!(done >= 57, "{status}");
}

#[test]
fn redis_restarted_mid_run_loses_nothing_and_submit_waits_for_every_result() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dev_real();
    let reference = transcribe_texts(&good);
    let corrupt = corrupt_files(dir.path());
    let mut files: Vec<PathBuf> = good.iter().cycle().take(15).cloned().collect();
    files.insert(7, corrupt[2].clone());
    // Paths this time: the workers read the files from the (shared) file system.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hark"));
    cmd.args([
        "submit",
        "--redis",
        &redis.url(),
        "--queue",
        "restart",
        "--wait",
        "-f",
        "json",
        "--inline-max-bytes",
        "0",
    ])
    .args(&files)
    .current_dir(common::root());
    let submitter = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let logs: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("worker-{i}.log"))).collect();
    let workers: Vec<Child> = (0..2).map(|i| worker(&redis, "restart", &format!("r{i}"), &logs[i])).collect();
    let mut conn = redis.conn();
    wait_for("4 results", || {
        redis::cmd("HLEN").arg("hark:restart:results").query::<usize>(&mut conn).unwrap() >= 4
    });
    redis.restart(Duration::from_secs(2));

    let out = submitter.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // As `hark transcribe` would: the good files in order, the bad one named on stderr, exit 1.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("notes.mp3"), "{stderr}");
    let printed: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected: Vec<String> =
        files.iter().filter(|f| **f != corrupt[2]).map(|f| f.display().to_string()).collect();
    assert_eq!(printed.iter().map(|v| v["file"].as_str().unwrap().to_string()).collect::<Vec<_>>(), expected);
    for v in &printed {
        assert_eq!(v["text"].as_str().unwrap(), reference[v["file"].as_str().unwrap()]);
    }
    assert_queue_counts(&redis, "restart", 0, 0, 15, 1);
    let mut logs_text = String::new();
    for w in workers {
        assert!(terminate(w).success());
    }
    for l in &logs {
        logs_text += &std::fs::read_to_string(l).unwrap();
    }
    assert!(logs_text.contains("reconnected to Redis"), "{logs_text}");
}

#[test]
fn submit_explains_what_it_cannot_do() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = common::hark(&["submit", "--redis", "http://nowhere", "a.wav"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("not a Redis URL"), "{}", common::stderr(&out));
    let out = common::hark(&[
        "queue",
        "status",
        "--redis",
        &format!("redis://127.0.0.1:{port}"),
        "--queue",
        "bad name",
    ]);
    assert!(common::stderr(&out).contains("queue name"), "{}", common::stderr(&out));
    let redis = RedisServer::start();
    let out = common::hark(&["submit", "--redis", &redis.url(), "missing.wav"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("missing.wav"), "{}", common::stderr(&out));
    let status = queue_status(&redis, "default");
    assert_eq!(status["waiting"].as_u64(), Some(0), "{status}");
}
