//! A Redis connection that survives the server going away: commands that fail on a broken or
//! refused connection (or while Redis loads its data after a restart) are retried on a fresh
//! connection with exponential back-off; other errors are returned at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Link {
    client: redis::Client,
    conn: Option<redis::Connection>,
    /// The URL without its password, for messages.
    shown: String,
    /// How long to keep retrying before giving up; `None`: until `stop` is set.
    patience: Option<Duration>,
    stop: Option<Arc<AtomicBool>>,
}

/// Errors that a new connection (after a pause) can cure.
pub fn is_transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("LOADING" | "TRYAGAIN" | "MASTERDOWN"))
}

/// `redis://user:secret@host/` → `redis://user:***@host/`.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let auth = &url[scheme + 3..at];
            match auth.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &auth[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Link {
    /// A link to `url` (`redis://[user:password@]host[:port][/db]`, `rediss://`, `unix://`). It
    /// connects on first use. `patience`: how long a command keeps retrying (`None` = until
    /// `stop` is set, or forever).
    pub fn new(url: &str, patience: Option<Duration>, stop: Option<Arc<AtomicBool>>) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .with_context(|| format!("--redis {}: not a Redis URL", without_password(url)))?;
        Ok(Self { client, conn: None, shown: without_password(url), patience, stop })
    }

    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Runs `f` on the connection, reconnecting and retrying while the failure is transient.
    pub fn run<T>(
        &mut self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        let mut warned = false;
        loop {
            let error = match self.conn.as_mut() {
                Some(conn) => match f(conn) {
                    Ok(v) => return Ok(v),
                    Err(e) if is_transient(&e) => {
                        self.conn = None;
                        e
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("Redis at {}", self.shown))),
                },
                None => match self.client.get_connection_with_timeout(CONNECT_TIMEOUT) {
                    Ok(conn) => {
                        if warned {
                            tracing::info!(redis = %self.shown, "reconnected to Redis");
                        }
                        self.conn = Some(conn);
                        continue;
                    }
                    Err(e) if is_transient(&e) => e,
                    Err(e) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("cannot connect to Redis at {}", self.shown)));
                    }
                },
            };
            if self.patience.is_some_and(|p| started.elapsed() >= p) {
                bail!(
                    "Redis at {} did not answer for {:.0} s: {error}",
                    self.shown,
                    started.elapsed().as_secs_f64()
                );
            }
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                bail!("stopped while Redis at {} was unreachable: {error}", self.shown);
            }
            if !warned {
                tracing::warn!(redis = %self.shown, "Redis unreachable ({error}); retrying with back-off");
                warned = true;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(without_password("redis://:hunter2@db:6379/0"), "redis://:***@db:6379/0");
        assert_eq!(without_password("redis://hark:hunter2@db"), "redis://hark:***@db");
        assert_eq!(without_password("redis://db:6379"), "redis://db:6379");
    }

    #[test]
    fn a_server_that_never_answers_is_an_error_after_the_patience() {
        // A loopback port nothing listens on: connection refused, retried, then given up.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut link =
            Link::new(&format!("redis://127.0.0.1:{port}"), Some(Duration::from_millis(300)), None).unwrap();
        let err = link.run(|c| redis::cmd("PING").query::<String>(c)).unwrap_err().to_string();
        assert!(err.contains("did not answer"), "{err}");
        let err = Link::new("http://example.com", None, None).err().expect("not a Redis URL");
        assert!(err.to_string().contains("not a Redis URL"), "{err}");
    }
}
