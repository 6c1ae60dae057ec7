//! Work queues on Redis Streams: `hark submit` adds one job per recording, `hark worker`
//! processes in a consumer group transcribe them, `hark queue status` reports.
//!
//! Per queue `NAME` (keys under `hark:NAME:`):
//! - `jobs`: the stream of jobs; the entry ID is the job ID. Fields: `name` (the file as given
//!   to `submit`) and either `path` (read by the worker) or `audio` (the file's bytes).
//! - consumer group [`GROUP`] on `jobs`: delivered-but-unacknowledged entries are the jobs in
//!   flight; a dead worker's are reclaimed with XAUTOCLAIM once idle for the claim time.
//! - `results`: hash job ID → the transcript as `hark transcribe -f json` prints it. Writing a
//!   result and acknowledging the job is one transaction, and a job done twice (a worker
//!   thought dead finishing late) overwrites the same field: one result per job.
//! - `failures`: hash job ID → failed attempts; at the limit the job moves to `dead`.
//! - `dead`: the dead-letter stream (`job`, `name`, `error`, `attempts`); `errors` mirrors it as
//!   a hash job ID → error, for `submit --wait`.
//! - `workers`: set of worker names; `worker:NAME`: that worker's counters.

pub mod link;
pub mod status;
pub mod submit;
pub mod worker;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub use link::Link;

/// The consumer group every worker of a queue joins.
pub const GROUP: &str = "hark-workers";

/// The queue used when `--queue` is not given.
pub const DEFAULT_QUEUE: &str = "default";

/// The Redis keys of one queue.
#[derive(Debug, Clone)]
pub struct QueueKeys {
    pub name: String,
    pub jobs: String,
    pub results: String,
    pub failures: String,
    pub dead: String,
    pub errors: String,
    pub workers: String,
}

impl QueueKeys {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            anyhow::bail!("queue name {name:?}: use letters, digits, '-', '_' and '.'");
        }
        let key = |what: &str| format!("hark:{name}:{what}");
        Ok(Self {
            name: name.to_string(),
            jobs: key("jobs"),
            results: key("results"),
            failures: key("failures"),
            dead: key("dead"),
            errors: key("errors"),
            workers: key("workers"),
        })
    }

    /// The hash of one worker's counters.
    pub fn worker(&self, worker: &str) -> String {
        format!("hark:{}:worker:{worker}", self.name)
    }
}

/// Where a job's audio is.
#[derive(Debug, Clone, PartialEq)]
pub enum JobAudio {
    /// A path every worker can read (a shared file system).
    Path(PathBuf),
    /// The recording's bytes, carried in the job.
    Inline(Vec<u8>),
}

/// One recording to transcribe.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The stream entry ID.
    pub id: String,
    /// The file as the submitter named it (shown in results and errors).
    pub name: String,
    pub audio: JobAudio,
}

impl Job {
    /// The fields of its stream entry.
    pub fn fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        let audio = match &self.audio {
            JobAudio::Path(p) => ("path", p.to_string_lossy().as_bytes().to_vec()),
            JobAudio::Inline(bytes) => ("audio", bytes.clone()),
        };
        vec![("name", self.name.as_bytes().to_vec()), audio]
    }

    /// A job from its stream entry; an entry that is not a job (written by something else, or
    /// damaged) is an error naming what is missing.
    pub fn from_entry(entry: &redis::streams::StreamId) -> Result<Self, String> {
        let name: String = entry.get("name").ok_or("the entry has no 'name' field")?;
        let audio = match (entry.get::<Vec<u8>>("audio"), entry.get::<String>("path")) {
            (Some(bytes), None) => JobAudio::Inline(bytes),
            (None, Some(path)) => JobAudio::Path(PathBuf::from(path)),
            (Some(_), Some(_)) => return Err("the entry has both 'audio' and 'path'".into()),
            (None, None) => return Err("the entry has neither 'audio' nor 'path'".into()),
        };
        Ok(Self { id: entry.id.clone(), name, audio })
    }
}

/// Seconds since the Unix epoch (the workers' heartbeat and start times).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Creates the consumer group (and the stream) if they do not exist yet. From ID 0: jobs
/// submitted before the first worker started are delivered too.
pub fn ensure_group(conn: &mut redis::Connection, keys: &QueueKeys) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> =
        redis::cmd("XGROUP").arg("CREATE").arg(&keys.jobs).arg(GROUP).arg("0").arg("MKSTREAM").query(conn);
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;
    use redis::streams::StreamId;

    fn entry(fields: &[(&str, &[u8])]) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: fields.iter().map(|(k, v)| (k.to_string(), Value::BulkString(v.to_vec()))).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_job_survives_its_stream_entry() {
        for audio in [JobAudio::Path("/data/a b.flac".into()), JobAudio::Inline(vec![0, 159, 146, 150, 255])]
        {
            let job = Job { id: "1-0".into(), name: "a b.flac".into(), audio };
            let fields = job.fields();
            let e = entry(&fields.iter().map(|(k, v)| (*k, v.as_slice())).collect::<Vec<_>>());
            assert_eq!(Job::from_entry(&e).unwrap(), job);
        }
    }

    #[test]
    fn entries_that_are_not_jobs_say_what_is_missing() {
        assert!(Job::from_entry(&entry(&[("path", b"/a.wav")])).unwrap_err().contains("'name'"));
        assert!(Job::from_entry(&entry(&[("name", b"a.wav")])).unwrap_err().contains("neither"));
        assert!(
            Job::from_entry(&entry(&[("name", b"a"), ("path", b"/a"), ("audio", b"x")]))
                .unwrap_err()
                .contains("both")
        );
    }

    #[test]
    fn queue_names_are_plain() {
        assert_eq!(QueueKeys::new("archive-2024").unwrap().jobs, "hark:archive-2024:jobs");
        assert_eq!(QueueKeys::new("a").unwrap().worker("host-1"), "hark:a:worker:host-1");
        for bad in ["", "a b", "a:b", "x*"] {
            assert!(QueueKeys::new(bad).is_err(), "{bad:?}");
        }
    }
}
