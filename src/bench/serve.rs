//! `hark bench serve`: N WebSocket clients stream real recordings into a `hark serve` process
//! (started here unless `--url` names one) at a fixed multiple of real time. Reports the WER of
//! all finals, whether every second of audio was recognised (the server's own counter against
//! what was sent), how far clients fell behind their schedule, time from end of stream to the
//! last final, and the server's resident memory over the run — with `--minutes`, a soak test.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tungstenite::Message;

use crate::audio::FileSource;
use crate::eval::{read_manifest, wer_counts};

pub struct ServeBench {
    pub manifest: PathBuf,
    pub clients: usize,
    pub speed: f64,
    /// Minutes of audio each client streams as one stream (looping its recordings); 0: each
    /// recording once, one stream each.
    pub minutes: f64,
    pub url: Option<String>,
    pub config: Option<PathBuf>,
}

struct Stream {
    reference: String,
    text: String,
    sent_s: f64,
    /// Worst lateness against the client's real-time schedule.
    behind_s: f64,
    /// From the end of the stream ({"type":"end"}) to "done".
    flush_s: f64,
}

fn start_server(config: Option<&Path>) -> anyhow::Result<(Child, String)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]).stderr(Stdio::piped()).stdout(Stdio::null());
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd.spawn()?;
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line)? == 0 {
            bail!("hark serve exited before it listened");
        }
        if let Some(addr) = line.trim().strip_prefix("hark: listening on http://") {
            let addr = addr.to_string();
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::stderr()));
            return Ok((child, addr));
        }
    }
}

fn server_audio_seconds(addr: &str) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    body.lines()
        .find_map(|l| l.strip_prefix("hark_audio_seconds_total "))
        .and_then(|v| v.parse().ok())
        .context("no hark_audio_seconds_total in /metrics (is a token required?)")
}

fn stream_one(addr: &str, samples: &[f32], speed: f64) -> anyhow::Result<(String, f64, f64)> {
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/v1/stream?sample_rate=16000&encoding=pcm_s16le"))?;
    let start = Instant::now();
    let mut behind: f64 = 0.0;
    // 100 ms frames, as a microphone client would send them.
    for (i, frame) in samples.chunks(1600).enumerate() {
        let due = Duration::from_secs_f64(i as f64 * 0.1 / speed);
        match due.checked_sub(start.elapsed()) {
            Some(wait) => std::thread::sleep(wait),
            None => behind = behind.max((start.elapsed() - due).as_secs_f64()),
        }
        let bytes: Vec<u8> =
            frame.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes()).collect();
        ws.send(Message::Binary(bytes.into()))?;
    }
    ws.send(Message::Text(r#"{"type":"end"}"#.into()))?;
    let ended = Instant::now();
    let mut finals = Vec::new();
    loop {
        match ws.read()? {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                match v["type"].as_str() {
                    Some("final") => finals.push(v["text"].as_str().unwrap_or_default().to_string()),
                    Some("done") => break,
                    Some("error") => bail!("server error: {}", v["message"]),
                    _ => {}
                }
            }
            Message::Close(_) => bail!("closed before done"),
            _ => {}
        }
    }
    Ok((finals.join(" "), behind, ended.elapsed().as_secs_f64()))
}

pub fn run(b: ServeBench) -> anyhow::Result<()> {
    let entries = read_manifest(&b.manifest)?;
    let recordings: Vec<(String, Vec<f32>)> = entries
        .iter()
        .map(|e| Ok((e.reference.clone(), FileSource::open(&e.path)?.read_all()?)))
        .collect::<anyhow::Result<_>>()?;
    let (mut child, addr) = match &b.url {
        Some(u) => (None, u.trim_start_matches("http://").trim_end_matches('/').to_string()),
        None => {
            let (c, a) = start_server(b.config.as_deref())?;
            (Some(c), a)
        }
    };
    let pid = child.as_ref().map(|c| c.id());
    let audio_before = server_audio_seconds(&addr)?;
    let rss_start = pid.map_or(0.0, |p| super::rss_mib_of(&p.to_string()));
    // Memory over the run, sampled every second.
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = running.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while running.load(Ordering::Relaxed) {
                if let Some(pid) = pid {
                    samples.push(super::rss_mib_of(&pid.to_string()));
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            samples
        })
    };
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<Vec<Stream>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..b.clients)
            .map(|client| {
                let (recordings, addr) = (&recordings, &addr);
                s.spawn(move || -> anyhow::Result<Vec<Stream>> {
                    let mine: Vec<(String, Vec<f32>)> = if b.minutes > 0.0 {
                        // One long stream: the client's recordings over and over, a second of
                        // silence between them, as a long dictation session.
                        let (mut reference, mut samples) = (Vec::new(), Vec::new());
                        for (r, s) in recordings.iter().cycle().skip(client) {
                            if samples.len() as f64 >= b.minutes * 60.0 * 16000.0 {
                                break;
                            }
                            reference.push(r.as_str());
                            samples.extend_from_slice(s);
                            samples.extend(std::iter::repeat_n(0.0, 16000));
                        }
                        vec![(reference.join(" "), samples)]
                    } else {
                        recordings.iter().skip(client).step_by(b.clients.max(1)).cloned().collect()
                    };
                    mine.into_iter()
                        .map(|(reference, samples)| {
                            let (text, behind_s, flush_s) = stream_one(addr, &samples, b.speed)?;
                            Ok(Stream {
                                reference,
                                text,
                                sent_s: samples.len() as f64 / 16000.0,
                                behind_s,
                                flush_s,
                            })
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let rss = sampler.join().expect("sampler");
    let streams: Vec<Stream> =
        results.into_iter().collect::<anyhow::Result<Vec<_>>>()?.into_iter().flatten().collect();
    let audio_after = server_audio_seconds(&addr)?;
    if let Some(c) = child.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }

    let (mut errors, mut words) = (0, 0);
    for s in &streams {
        let (e, n) = wer_counts(&s.reference, &s.text);
        errors += e;
        words += n;
    }
    let sent: f64 = streams.iter().map(|s| s.sent_s).sum();
    let recognised = audio_after - audio_before;
    let behind = streams.iter().map(|s| s.behind_s).fold(0.0, f64::max);
    let mut flush: Vec<f64> = streams.iter().map(|s| s.flush_s).collect();
    flush.sort_by(f64::total_cmp);
    println!(
        "clients={} speed={}x streams={} audio_s={sent:.1} wall_s={wall:.1} wer={:.2}% ({errors}/{words})",
        b.clients,
        b.speed,
        streams.len(),
        100.0 * errors as f64 / words.max(1) as f64
    );
    // The server counts what it recognised after resampling (16 kHz): equal to what was sent
    // unless audio was lost (the end-of-stream flush adds the resampler's tail, none at 16 kHz).
    println!(
        "audio_recognised_s={recognised:.1} dropped_s={:.1} max_behind_schedule_s={behind:.2} end_to_done_p50_s={:.2}",
        (sent - recognised).max(0.0),
        flush[flush.len() / 2]
    );
    if !rss.is_empty() {
        // Growth: the last tenth of the run against the first tenth after warm-up.
        let tenth = (rss.len() / 10).max(1);
        let early =
            rss[tenth.min(rss.len() - 1)..(2 * tenth).min(rss.len())].iter().copied().fold(0.0, f64::max);
        let late = rss[rss.len() - tenth..].iter().copied().fold(0.0, f64::max);
        let peak = rss.iter().copied().fold(0.0, f64::max);
        println!(
            "server_rss_mib start={rss_start:.0} early={early:.0} late={late:.0} peak={peak:.0} growth={:.1}%",
            100.0 * (late - early) / early.max(1.0)
        );
    }
    Ok(())
}
