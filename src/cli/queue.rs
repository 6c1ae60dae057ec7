//! `hark submit`, `hark worker` and `hark queue`: transcription spread over machines through a
//! Redis Streams queue (the library side is [`crate::queue`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::recognise::{RecogniserArgs, load, progress};
use super::stop_on_signals;
use crate::output::{Format, render};
use crate::pipeline::default_jobs;
use crate::queue::status::status;
use crate::queue::submit::{DEFAULT_INLINE_BYTES, JobState, PATIENCE, states, submit};
use crate::queue::worker;
use crate::queue::worker::{WorkerOptions, default_name};
use crate::queue::{DEFAULT_QUEUE, Link, QueueKeys};
use crate::separation::load_enhancer;

/// How often `submit --wait` looks for new results.
const POLL: Duration = Duration::from_millis(250);

/// How many jobs, from the first unfinished one, one poll asks about.
const POLL_WINDOW: usize = 256;

#[derive(Args, Clone)]
pub struct QueueArgs {
    /// Redis URL: redis://[user:password@]host[:port][/db].
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
    /// Queue name (letters, digits, '-', '_', '.').
    #[arg(long, default_value = DEFAULT_QUEUE)]
    pub queue: String,
}

#[derive(Args)]
pub struct SubmitArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Wait for the results and print them as `hark transcribe` would, in submission order;
    /// without it, print one "JOB-ID<TAB>FILE" line per job.
    #[arg(long)]
    pub wait: bool,
    /// Output format (with --wait).
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: Format,
    /// Files up to this many bytes travel inside the job; larger ones as their absolute path,
    /// which every worker must see at the same place (0: always paths).
    #[arg(long, default_value_t = DEFAULT_INLINE_BYTES)]
    pub inline_max_bytes: u64,
}

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// How the worker transcribes (as for `hark transcribe`); --jobs is how many jobs it runs
    /// at once.
    #[command(flatten)]
    pub recogniser: RecogniserArgs,
    /// Name in the consumer group, unique per worker [default: HOST-PID].
    #[arg(long)]
    pub name: Option<String>,
    /// A job pending this many seconds without a heartbeat (its worker died) is taken over.
    #[arg(long, default_value_t = 60.0)]
    pub claim_idle: f64,
    /// Attempts before a job goes to the dead-letter stream with its error.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Jobs waiting, in flight, done and dead-lettered, and each worker's counts.
    Status {
        #[command(flatten)]
        queue: QueueArgs,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

pub fn submit_files(a: SubmitArgs) -> anyhow::Result<i32> {
    let keys = QueueKeys::new(&a.queue.queue)?;
    let mut link = Link::new(&a.queue.redis, Some(PATIENCE), None)?;
    let submitted = submit(&mut link, &keys, &a.files, a.inline_max_bytes)?;
    let mut failures = 0;
    let mut jobs = Vec::new();
    for s in submitted {
        match s.job {
            Ok(id) => jobs.push((id, s.file)),
            Err(e) => {
                failures += 1;
                eprintln!("hark: {e}");
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    if !a.wait {
        for (id, file) in &jobs {
            writeln!(stdout, "{id}\t{}", file.display())?;
        }
        return Ok(if failures == 0 { 0 } else { 1 });
    }
    let pb = progress(jobs.len());
    let mut next = 0;
    while next < jobs.len() {
        // Results print in order, so only the jobs from the first unfinished one on are asked
        // for, a window at a time (not every remaining job of a large archive on every poll).
        let window = &jobs[next..(next + POLL_WINDOW).min(jobs.len())];
        let ids: Vec<String> = window.iter().map(|(id, _)| id.clone()).collect();
        let mut waiting = false;
        for state in states(&mut link, &keys, &ids)? {
            let (_, file) = &jobs[next];
            let shown = file.display().to_string();
            match state {
                JobState::Waiting => {
                    waiting = true;
                    break;
                }
                JobState::Done(t) => pb
                    .suspend(|| stdout.write_all(render(a.format, &shown, &t).as_bytes()))
                    .context("writing to stdout")?,
                JobState::Failed(e) => {
                    failures += 1;
                    pb.suspend(|| eprintln!("hark: {shown}: {e}"));
                }
            }
            next += 1;
            pb.inc(1);
        }
        if waiting {
            std::thread::sleep(POLL);
        }
    }
    pb.finish_and_clear();
    Ok(if failures == 0 { 0 } else { 1 })
}

pub fn work(a: WorkerArgs) -> anyhow::Result<i32> {
    if !(a.claim_idle > 0.0 && a.claim_idle.is_finite()) {
        anyhow::bail!("--claim-idle must be a positive number of seconds");
    }
    if a.max_attempts == 0 {
        anyhow::bail!("--max-attempts must be at least 1");
    }
    let recognizer = load(&a.recogniser, true)?;
    let enhancer = load_enhancer(a.recogniser.enhance.as_ref())?;
    let opts = WorkerOptions {
        redis: a.queue.redis,
        queue: a.queue.queue,
        name: a.name.unwrap_or_else(default_name),
        jobs: a.recogniser.jobs.unwrap_or_else(default_jobs).max(1),
        claim_idle: Duration::from_secs_f64(a.claim_idle),
        max_attempts: a.max_attempts,
    };
    let stop = stop_on_signals()?;
    let ready = || {
        eprintln!(
            "hark: worker {} on queue {} ({} at once); SIGTERM finishes the jobs in hand",
            opts.name, opts.queue, opts.jobs
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    };
    let totals = worker::run(&opts, &recognizer, enhancer.as_ref(), stop, ready)?;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    eprintln!(
        "hark: worker {} stopped: {} done, {} failed attempts, {} dead-lettered",
        opts.name, totals.done, totals.failed, totals.dead
    );
    Ok(0)
}

pub fn queue(command: QueueCommand) -> anyhow::Result<i32> {
    match command {
        QueueCommand::Status { queue, json } => {
            let keys = QueueKeys::new(&queue.queue)?;
            let mut link = Link::new(&queue.redis, Some(Duration::from_secs(10)), None)?;
            let s = status(&mut link, &keys)?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                print!("{}", s.render());
            }
            Ok(0)
        }
    }
}
