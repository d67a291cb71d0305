//! A plain HTTP/1.1 client for the daemon's listener, and the tools that look at it: a home
//! whose daemon serves the dashboard, and whether a UI tool may be skipped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::{Home, free_port};

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `METHOD path` on 127.0.0.1:`port` with extra headers (a `Host` among them replaces the
/// default one).
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let timeout = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)
        .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    s.set_read_timeout(Some(timeout)).ok();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(request.as_bytes()).expect("send the request");
    let mut data = Vec::new();
    s.read_to_end(&mut data).expect("read the answer");
    let text = String::from_utf8_lossy(&data).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

impl Home {
    /// A home whose daemon serves `/metrics` and the dashboard on a free loopback port, set
    /// the way users set it: `metrics = PORT` (a port alone: loopback) in
    /// `$PMX_HOME/daemon.toml`.
    pub fn with_dashboard() -> (Home, u16) {
        let home = Home::fast_sampling();
        let port = free_port();
        let settings = format!("metrics = {port}\n");
        std::fs::write(home.path().join("daemon.toml"), settings).expect("write daemon.toml");
        (home, port)
    }

    /// The token actions over HTTP need.
    pub fn token(&self) -> String {
        self.ok(&["dashboard", "--token"]).trim().to_string()
    }
}

/// Whether a test needing `tool` runs here. Under CI (`PMX_CI=1`, set by `.ci/run`, which
/// installs the tools) a missing tool fails the test; elsewhere the test says it is skipped.
pub fn tool_available(tool: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("PMX_CI").is_some() {
        panic!("{tool} is missing, and .ci/run should have installed it");
    }
    // Straight to the descriptor: libtest captures `eprintln!` of a passing test, and a
    // skip nobody sees passes for a run.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("SKIPPED: {tool} is not installed here (`.ci/run` installs it)\n").as_bytes(),
    );
    false
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
