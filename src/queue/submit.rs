//! `hark submit`: one job per file; with `--wait`, the results in submission order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::{Job, JobAudio, Link, QueueKeys, ensure_group};
use crate::pipeline::Transcript;

/// How long `submit` keeps retrying an unreachable Redis before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Files up to this size travel inside the job by default; larger ones as paths.
pub const DEFAULT_INLINE_BYTES: u64 = 8 << 20;

/// The most audio one job carries (Redis's own limit for a value is 512 MB).
pub const MAX_INLINE_BYTES: u64 = 256 << 20;

/// A file that was enqueued, or why it was not.
pub struct Submitted {
    pub file: PathBuf,
    pub job: Result<String, String>,
}

/// What a job became.
#[derive(Debug, Clone)]
pub enum JobState {
    Waiting,
    Done(Transcript),
    /// Dead-lettered: the error.
    Failed(String),
}

/// The job for `file`: its bytes when at most `inline_bytes`, else its absolute path (which
/// every worker must see at the same place).
pub fn job_for(file: &Path, inline_bytes: u64) -> Result<Job, String> {
    let name = file.display().to_string();
    let meta = std::fs::metadata(file).map_err(|e| format!("{name}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{name}: not a file"));
    }
    let audio = if meta.len() <= inline_bytes.min(MAX_INLINE_BYTES) {
        JobAudio::Inline(std::fs::read(file).map_err(|e| format!("{name}: {e}"))?)
    } else {
        JobAudio::Path(std::fs::canonicalize(file).map_err(|e| format!("{name}: {e}"))?)
    };
    Ok(Job { id: String::new(), name, audio })
}

/// Enqueues one job per file, in order. A file that cannot be read is reported, not enqueued.
pub fn submit(
    link: &mut Link,
    keys: &QueueKeys,
    files: &[PathBuf],
    inline_bytes: u64,
) -> anyhow::Result<Vec<Submitted>> {
    link.run(|c| ensure_group(c, keys))?;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let job = match job_for(file, inline_bytes) {
            Ok(job) => job,
            Err(e) => {
                out.push(Submitted { file: file.clone(), job: Err(e) });
                continue;
            }
        };
        let fields = job.fields();
        let id: String = link.run(|c| {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&keys.jobs).arg("*");
            for (k, v) in &fields {
                cmd.arg(*k).arg(v.as_slice());
            }
            cmd.query(c)
        })?;
        out.push(Submitted { file: file.clone(), job: Ok(id) });
    }
    Ok(out)
}

/// The states of `ids` (results, or dead letters' errors).
pub fn states(link: &mut Link, keys: &QueueKeys, ids: &[String]) -> anyhow::Result<Vec<JobState>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (results, errors): (Vec<Option<String>>, Vec<Option<String>>) = link.run(|c| {
        redis::pipe()
            .cmd("HMGET")
            .arg(&keys.results)
            .arg(ids)
            .cmd("HMGET")
            .arg(&keys.errors)
            .arg(ids)
            .query(c)
    })?;
    results
        .into_iter()
        .zip(errors)
        .zip(ids)
        .map(|((result, error), id)| {
            Ok(match (result, error) {
                (Some(json), _) => JobState::Done(
                    serde_json::from_str(&json)
                        .with_context(|| format!("job {id}: the stored result is not a transcript"))?,
                ),
                (None, Some(e)) => JobState::Failed(e),
                (None, None) => JobState::Waiting,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_travel_inline_and_large_ones_as_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wav");
        std::fs::write(&file, vec![7u8; 100]).unwrap();
        assert_eq!(job_for(&file, 100).unwrap().audio, JobAudio::Inline(vec![7u8; 100]));
        assert_eq!(job_for(&file, 99).unwrap().audio, JobAudio::Path(std::fs::canonicalize(&file).unwrap()));
        assert!(job_for(&dir.path().join("missing.wav"), 100).unwrap_err().contains("missing.wav"));
        assert!(job_for(dir.path(), 100).unwrap_err().contains("not a file"));
    }
}
