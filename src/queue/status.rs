//! `hark queue status`: what a queue holds and what each worker has done.

use std::collections::HashMap;
use std::fmt::Write as _;

use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply};
use serde::Serialize;

use super::{GROUP, Link, QueueKeys, unix_now};

#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerStatus {
    pub name: String,
    /// running, or stopped (left the group after SIGTERM).
    pub state: String,
    pub in_flight: usize,
    pub done: u64,
    pub failed: u64,
    pub dead: u64,
    /// Seconds of audio transcribed, and seconds spent on it.
    pub audio_s: f64,
    pub busy_s: f64,
    /// Seconds since its last heartbeat.
    pub last_seen_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStatus {
    pub queue: String,
    /// Submitted, not yet taken by a worker.
    pub waiting: usize,
    /// Taken, not finished (including jobs of dead workers not yet reclaimed).
    pub in_flight: usize,
    pub done: usize,
    pub dead_letters: usize,
    pub workers: Vec<WorkerStatus>,
}

pub fn status(link: &mut Link, keys: &QueueKeys) -> anyhow::Result<QueueStatus> {
    let (length, done, dead, names): (usize, usize, usize, Vec<String>) = link.run(|c| {
        redis::pipe().xlen(&keys.jobs).hlen(&keys.results).xlen(&keys.dead).smembers(&keys.workers).query(c)
    })?;
    let (in_flight, consumers) = if length > 0 || !names.is_empty() {
        let groups: redis::RedisResult<StreamInfoGroupsReply> =
            link.run(|c| Ok(redis::cmd("XINFO").arg("GROUPS").arg(&keys.jobs).query(c)))?;
        let pending =
            groups.ok().and_then(|g| g.groups.into_iter().find(|g| g.name == GROUP)).map_or(0, |g| g.pending);
        let consumers: redis::RedisResult<StreamInfoConsumersReply> =
            link.run(|c| Ok(redis::cmd("XINFO").arg("CONSUMERS").arg(&keys.jobs).arg(GROUP).query(c)))?;
        (pending, consumers.map(|c| c.consumers).unwrap_or_default())
    } else {
        (0, Vec::new())
    };
    let now = unix_now();
    let mut workers = Vec::new();
    for name in names {
        let fields: HashMap<String, String> =
            link.run(|c| redis::cmd("HGETALL").arg(keys.worker(&name)).query(c))?;
        let number = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        workers.push(WorkerStatus {
            in_flight: consumers.iter().find(|c| c.name == name).map_or(0, |c| c.pending),
            state: fields.get("state").cloned().unwrap_or_else(|| "unknown".into()),
            done: number("done") as u64,
            failed: number("failed") as u64,
            dead: number("dead") as u64,
            audio_s: number("audio_s"),
            busy_s: number("busy_s"),
            last_seen_s: fields
                .get("last_seen")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|t| now.saturating_sub(t)),
            name,
        });
    }
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(QueueStatus {
        queue: keys.name.clone(),
        waiting: length.saturating_sub(in_flight),
        in_flight,
        done,
        dead_letters: dead,
        workers,
    })
}

impl QueueStatus {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut s = format!(
            "queue {}\n  waiting       {}\n  in flight     {}\n  done          {}\n  dead letters  {}\n",
            self.queue, self.waiting, self.in_flight, self.done, self.dead_letters
        );
        if self.workers.is_empty() {
            s.push_str("no workers have joined\n");
            return s;
        }
        let _ = writeln!(
            s,
            "\n{:<28} {:<8} {:>9} {:>6} {:>6} {:>5} {:>10} {:>9}",
            "worker", "state", "in flight", "done", "failed", "dead", "audio", "last seen"
        );
        for w in &self.workers {
            let seen = w.last_seen_s.map_or("-".to_string(), |s| format!("{s} s ago"));
            let speed = if w.busy_s > 0.0 { format!("{:.0} s", w.audio_s) } else { "-".into() };
            let _ = writeln!(
                s,
                "{:<28} {:<8} {:>9} {:>6} {:>6} {:>5} {:>10} {:>9}",
                w.name, w.state, w.in_flight, w.done, w.failed, w.dead, speed, seen
            );
        }
        s
    }
}
