//! A real `hark serve` process on a free loopback port, for the integration tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The Wyoming address, when the config or `extra_args` turned it on.
    pub wyoming: Option<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(config: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(config, env, &[])
    }

    pub fn start_with(config: &str, env: &[(&str, &str)], extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.toml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hark"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .args(extra_args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut addr = None;
        let mut wyoming = None;
        let wants_wyoming = config.contains("[wyoming]") || extra_args.contains(&"--wyoming");
        while addr.is_none() || (wants_wyoming && wyoming.is_none()) {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the server exited before listening");
            if let Some(a) = line.trim().strip_prefix("hark: listening on http://") {
                addr = Some(a.to_string());
            }
            if let Some(a) = line.trim().strip_prefix("hark: Wyoming on tcp://") {
                wyoming = Some(a.to_string());
            }
        }
        let addr = addr.unwrap();
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self { child, addr, wyoming, _dir: dir }
    }

    pub fn http(&self, request: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(request).unwrap();
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    pub fn get(&self, path: &str, headers: &str) -> (u16, String) {
        self.http(
            format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\n\r\n", self.addr)
                .as_bytes(),
        )
    }

    pub fn ws(&self, query: &str) -> tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>> {
        let (ws, _) = tungstenite::connect(format!("ws://{}/v1/stream{query}", self.addr)).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        }
        ws
    }

    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics", "");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {body}"))
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
