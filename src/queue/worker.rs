//! `hark worker`: takes jobs from a queue's consumer group, transcribes them and stores the
//! results. At-least-once: a job is acknowledged in the same transaction that stores its result;
//! a worker that dies leaves its job pending, and another worker reclaims it (XAUTOCLAIM) once it
//! has been idle for the claim time. While a job runs, a heartbeat re-claims it for its own
//! worker every quarter of that time, so a long recording is not taken away from a live worker.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};

use super::{GROUP, Job, JobAudio, Link, QueueKeys, ensure_group, unix_now};
use crate::output::{Format, render};
use crate::pipeline::{Recognizer, Transcript, transcribe_file};
use crate::separation::EnhancerFactory;

/// How long one XREADGROUP waits for a new job before the loop looks at the stop flag again.
const READ_BLOCK_MS: usize = 1000;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub redis: String,
    pub queue: String,
    /// The consumer name in the group (unique per worker process).
    pub name: String,
    /// Jobs transcribed at once.
    pub jobs: usize,
    /// A pending job idle this long belongs to a dead worker and is reclaimed.
    pub claim_idle: Duration,
    /// Attempts (failures, or deliveries to workers that died) before a job is dead-lettered.
    pub max_attempts: u32,
}

/// What one worker process did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerTotals {
    pub done: u64,
    pub failed: u64,
    pub dead: u64,
}

/// `HOST-PID`: unique per process, readable in `hark queue status`.
pub fn default_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "hark".to_string()
    };
    format!("{host}-{}", std::process::id())
}

/// Runs until `stop` is set (SIGTERM): each of `jobs` threads finishes the job it holds, then
/// the worker leaves the group. `ready` is called once the worker is in the group.
pub fn run(
    opts: &WorkerOptions,
    recognizer: &Recognizer,
    enhancer: Option<&EnhancerFactory>,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(),
) -> anyhow::Result<WorkerTotals> {
    let keys = QueueKeys::new(&opts.queue)?;
    let mut link = Link::new(&opts.redis, None, Some(stop.clone()))?;
    let me = keys.worker(&opts.name);
    link.run(|c| {
        ensure_group(c, &keys)?;
        redis::pipe()
            .sadd(&keys.workers, &opts.name)
            .hset_multiple(
                &me,
                &[
                    ("state", "running".to_string()),
                    ("started", unix_now().to_string()),
                    ("jobs", opts.jobs.to_string()),
                ],
            )
            .query::<()>(c)
    })?;
    ready();
    tracing::info!(queue = %keys.name, worker = %opts.name, jobs = opts.jobs, redis = %link.url(), "worker joined the queue");
    let in_flight = Mutex::new(HashSet::<String>::new());
    let totals = Mutex::new(WorkerTotals::default());
    let threads_done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        let heartbeat = scope.spawn(|| heartbeat(opts, &keys, &in_flight, &threads_done));
        let loops: Vec<_> = (0..opts.jobs.max(1))
            .map(|_| {
                let (keys, in_flight, stop, totals) = (&keys, &in_flight, stop.clone(), &totals);
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut lane = Lane {
                        opts,
                        keys,
                        link: Link::new(&opts.redis, None, Some(stop.clone()))?,
                        cursor: "0-0".into(),
                        in_flight,
                        recognizer,
                        enhancer,
                    };
                    while !stop.load(Ordering::Relaxed) {
                        match lane.next_job() {
                            Ok(Some((entry, deliveries))) => {
                                let outcome = lane.process(&entry, deliveries)?;
                                let mut t = totals.lock().expect("totals");
                                match outcome {
                                    Outcome::Done => t.done += 1,
                                    Outcome::Retry => t.failed += 1,
                                    Outcome::Dead => t.dead += 1,
                                    Outcome::Skipped => {}
                                }
                            }
                            Ok(None) => {}
                            Err(_) if stop.load(Ordering::Relaxed) => break,
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_error = None;
        for l in loops {
            let r = l.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")));
            if let Err(e) = r {
                // One lane failing for good (not a transient Redis error) stops the others.
                stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
        threads_done.store(true, Ordering::Relaxed);
        let _ = heartbeat.join();
        first_error.map_or(Ok(()), Err)
    });
    // Leave the group when nothing is pending under this name (DELCONSUMER would drop pending
    // entries), so `hark queue status` lists live workers; stopped ones keep their counters.
    let name = opts.name.clone();
    let mut leave = Link::new(&opts.redis, Some(Duration::from_secs(5)), None)?;
    let left = leave.run(|c| {
        let pending: StreamPendingCountReply =
            redis::cmd("XPENDING").arg(&keys.jobs).arg(GROUP).arg("-").arg("+").arg(1).arg(&name).query(c)?;
        if pending.ids.is_empty() {
            redis::cmd("XGROUP").arg("DELCONSUMER").arg(&keys.jobs).arg(GROUP).arg(&name).query::<()>(c)?;
        }
        redis::pipe().hset(&me, "state", "stopped").hset(&me, "last_seen", unix_now()).query::<()>(c)
    });
    if let Err(e) = left {
        tracing::warn!("could not mark the worker stopped: {e:#}");
    }
    result?;
    Ok(*totals.lock().expect("totals"))
}

/// Re-claims the jobs in flight for this worker (resetting their idle time) and records that
/// the worker is alive, until the job threads are done.
fn heartbeat(opts: &WorkerOptions, keys: &QueueKeys, in_flight: &Mutex<HashSet<String>>, done: &AtomicBool) {
    let Ok(mut link) = Link::new(&opts.redis, Some(Duration::from_secs(1)), None) else { return };
    let period = (opts.claim_idle / 4).max(Duration::from_millis(100));
    let watchdog = sd_notify::watchdog_enabled();
    let mut last = Instant::now() - period;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last.elapsed() < period {
            continue;
        }
        last = Instant::now();
        if watchdog.is_some() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
        let ids: Vec<String> = in_flight.lock().expect("in flight").iter().cloned().collect();
        let beat = link.run(|c| {
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.add_command(claim(keys, &opts.name, id, None)).ignore();
            }
            pipe.hset(keys.worker(&opts.name), "last_seen", unix_now()).ignore();
            pipe.query::<()>(c)
        });
        if let Err(e) = beat {
            tracing::debug!("heartbeat: {e:#}");
        }
    }
}

enum Outcome {
    Done,
    /// Failed; left for another attempt.
    Retry,
    Dead,
    /// Already done by another worker.
    Skipped,
}

/// One job thread: its own connection and place in the pending list.
struct Lane<'a> {
    opts: &'a WorkerOptions,
    keys: &'a QueueKeys,
    link: Link,
    /// Where the next XAUTOCLAIM scan of the pending list starts.
    cursor: String,
    in_flight: &'a Mutex<HashSet<String>>,
    recognizer: &'a Recognizer,
    enhancer: Option<&'a EnhancerFactory>,
}

impl Lane<'_> {
    /// A dead worker's job if there is one, else a new one (waiting up to a second); with the
    /// times it has been delivered, this delivery included.
    fn next_job(&mut self) -> anyhow::Result<Option<(StreamId, usize)>> {
        let (keys, opts) = (self.keys, self.opts);
        let claim_ms = opts.claim_idle.as_millis() as u64;
        let cursor = self.cursor.clone();
        let claimed: StreamAutoClaimReply = self.link.run(|c| {
            with_group(c, keys, |c| {
                redis::cmd("XAUTOCLAIM")
                    .arg(&keys.jobs)
                    .arg(GROUP)
                    .arg(&opts.name)
                    .arg(claim_ms)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(1)
                    .query(c)
            })
        })?;
        self.cursor = claimed.next_stream_id.clone();
        if let Some(entry) = claimed.claimed.into_iter().next() {
            let id = entry.id.clone();
            let pending: StreamPendingCountReply = self.link.run(|c| {
                redis::cmd("XPENDING").arg(&keys.jobs).arg(GROUP).arg(&id).arg(&id).arg(1).query(c)
            })?;
            let deliveries = pending.ids.first().map_or(1, |p| p.times_delivered);
            tracing::info!(job = %id, deliveries, "reclaimed a job left pending");
            return Ok(Some((entry, deliveries)));
        }
        let read: Option<StreamReadReply> = self.link.run(|c| {
            with_group(c, keys, |c| {
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(&opts.name)
                    .arg("COUNT")
                    .arg(1)
                    .arg("BLOCK")
                    .arg(READ_BLOCK_MS)
                    .arg("STREAMS")
                    .arg(&keys.jobs)
                    .arg(">")
                    .query(c)
            })
        })?;
        Ok(read
            .and_then(|r| r.keys.into_iter().next())
            .and_then(|k| k.ids.into_iter().next())
            .map(|e| (e, 1)))
    }

    fn process(&mut self, entry: &StreamId, deliveries: usize) -> anyhow::Result<Outcome> {
        let keys = self.keys;
        let id = entry.id.clone();
        let job = match Job::from_entry(entry) {
            Ok(job) => job,
            Err(why) => return self.dead_letter(&id, "?", &format!("not a hark job: {why}"), deliveries),
        };
        if deliveries > self.opts.max_attempts as usize {
            let last: Option<String> = self
                .link
                .run(|c| redis::cmd("HGET").arg(&keys.failures).arg(format!("{id}:error")).query(c))?;
            let why = last.unwrap_or_else(|| {
                format!(
                    "given to a worker {} times, and none finished it (each died or was killed)",
                    deliveries - 1
                )
            });
            return self.dead_letter(&id, &job.name, &why, deliveries - 1);
        }
        let done: bool = self.link.run(|c| redis::cmd("HEXISTS").arg(&keys.results).arg(&id).query(c))?;
        if done {
            self.link.run(|c| {
                redis::pipe().xack(&keys.jobs, GROUP, &[&id]).xdel(&keys.jobs, &[&id]).query::<()>(c)
            })?;
            return Ok(Outcome::Skipped);
        }
        self.in_flight.lock().expect("in flight").insert(id.clone());
        let started = Instant::now();
        let result = transcribe_job(&job, self.recognizer, self.enhancer);
        self.in_flight.lock().expect("in flight").remove(&id);
        let busy_s = started.elapsed().as_secs_f64();
        match result {
            Ok(t) => {
                let json = render(Format::Json, &job.name, &t);
                let me = keys.worker(&self.opts.name);
                self.link.run(|c| {
                    redis::pipe()
                        .atomic()
                        .hset(&keys.results, &id, json.trim_end())
                        .xack(&keys.jobs, GROUP, &[&id])
                        .xdel(&keys.jobs, &[&id])
                        .hdel(&keys.failures, &[id.clone(), format!("{id}:error")])
                        .hincr(&me, "done", 1)
                        .hincr(&me, "audio_s", t.duration)
                        .hincr(&me, "busy_s", busy_s)
                        .query::<()>(c)
                })?;
                tracing::info!(job = %id, file = %job.name, seconds = busy_s, "transcribed");
                Ok(Outcome::Done)
            }
            Err(error) => {
                let attempts: u64 = self.link.run(|c| {
                    let (n,): (u64,) = redis::pipe()
                        .atomic()
                        .hincr(&keys.failures, &id, 1)
                        .hset(&keys.failures, format!("{id}:error"), &error)
                        .ignore()
                        .hincr(keys.worker(&self.opts.name), "failed", 1)
                        .ignore()
                        .query(c)?;
                    Ok(n)
                })?;
                tracing::warn!(job = %id, file = %job.name, attempts, "failed: {error}");
                if attempts >= self.opts.max_attempts as u64 {
                    return self.dead_letter(&id, &job.name, &error, attempts as usize);
                }
                // Idle as if its worker had died: the next XAUTOCLAIM (any worker's) takes it.
                let idle_ms = self.opts.claim_idle.as_millis() as u64;
                self.link.run(|c| claim(keys, &self.opts.name, &id, Some(idle_ms)).query::<()>(c))?;
                Ok(Outcome::Retry)
            }
        }
    }

    /// Moves a job to the dead-letter stream with its error, never to be retried.
    fn dead_letter(&mut self, id: &str, name: &str, error: &str, attempts: usize) -> anyhow::Result<Outcome> {
        let keys = self.keys;
        let me = keys.worker(&self.opts.name);
        self.link.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("XADD")
                .arg(&keys.dead)
                .arg("*")
                .arg("job")
                .arg(id)
                .arg("name")
                .arg(name)
                .arg("error")
                .arg(error)
                .arg("attempts")
                .arg(attempts)
                .hset(&keys.errors, id, error)
                .xack(&keys.jobs, GROUP, &[id])
                .xdel(&keys.jobs, &[id])
                .hdel(&keys.failures, &[id.to_string(), format!("{id}:error")])
                .hincr(&me, "dead", 1)
                .query::<()>(c)
        })?;
        tracing::warn!(job = %id, file = %name, attempts, "dead-lettered: {error}");
        Ok(Outcome::Dead)
    }
}

/// XCLAIM of one pending job for `consumer`, keeping its delivery count (JUSTID): its idle time
/// restarts from 0 (a live worker's heartbeat), or is set to `idle_ms` (released for a retry).
fn claim(keys: &QueueKeys, consumer: &str, id: &str, idle_ms: Option<u64>) -> redis::Cmd {
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(&keys.jobs).arg(GROUP).arg(consumer).arg(0).arg(id);
    if let Some(ms) = idle_ms {
        cmd.arg("IDLE").arg(ms);
    }
    cmd.arg("JUSTID");
    cmd
}

/// Runs `f`; when the group is missing (the stream was deleted, or Redis restarted without its
/// data), creates it and runs `f` again.
fn with_group<T>(
    c: &mut redis::Connection,
    keys: &QueueKeys,
    f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
) -> redis::RedisResult<T> {
    match f(c) {
        Err(e) if e.code() == Some("NOGROUP") => {
            ensure_group(c, keys)?;
            f(c)
        }
        other => other,
    }
}

/// Transcribes a job's audio; a panic in a stage is this job's error, not the worker's end.
fn transcribe_job(
    job: &Job,
    recognizer: &Recognizer,
    enhancer: Option<&EnhancerFactory>,
) -> Result<Transcript, String> {
    let run = |path: &Path| {
        std::panic::catch_unwind(AssertUnwindSafe(|| transcribe_file(path, recognizer, enhancer)))
            .map_err(|_| "the recogniser panicked on this file".to_string())?
            .map_err(|e| e.to_string())
    };
    match &job.audio {
        JobAudio::Path(path) => run(path),
        JobAudio::Inline(bytes) => {
            // The decoder probes by content and by extension: keep the submitted file's.
            let ext = Path::new(&job.name)
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_default();
            let file = tempfile::Builder::new()
                .prefix("hark-job-")
                .suffix(&ext)
                .tempfile()
                .context("a temporary file for the job's audio")
                .map_err(|e| format!("{e:#}"))?;
            std::fs::write(file.path(), bytes).map_err(|e| format!("writing the job's audio: {e}"))?;
            run(file.path())
        }
    }
}
