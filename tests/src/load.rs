//! A load on 127.0.0.1 while a test does something else: threads that each open a
//! connection per request (`Connection: close`), and count answers by the pid in the body
//! and every failure (refused, reset, timeout, a status other than 200).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Answers by the first word of the body (the server's pid).
    pub answers: BTreeMap<String, u64>,
    pub failures: Vec<String>,
}

impl LoadReport {
    pub fn ok(&self) -> u64 {
        self.answers.values().sum()
    }

    /// Fails the test, with the first failures, when any request failed.
    pub fn assert_none_failed(&self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} requests failed: {:?}",
            self.failures.len(),
            self.ok() + self.failures.len() as u64,
            &self.failures[..self.failures.len().min(5)]
        );
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<LoadReport>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(LoadReport::default()));
        let threads = (0..threads)
            .map(|_| {
                let (stop, report) = (stop.clone(), report.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let answer = request(port);
                        let mut r = report.lock().unwrap();
                        match answer {
                            Ok(pid) => *r.answers.entry(pid).or_default() += 1,
                            Err(e) => r.failures.push(e),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            report,
            threads,
        }
    }

    /// Counts from now on: what came before (a server still starting refuses) is dropped.
    pub fn recount(&self) {
        *self.report.lock().unwrap() = LoadReport::default();
    }

    /// What was counted so far.
    pub fn report(&self) -> LoadReport {
        self.report.lock().unwrap().clone()
    }

    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.report.lock().unwrap().clone()
    }
}

/// One GET; the first word of the body on a 200.
pub fn request(port: u16) -> Result<String, String> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut data = Vec::new();
    s.read_to_end(&mut data).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&data);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no answer")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("status: {}", head.lines().next().unwrap_or("")));
    }
    body.split_whitespace()
        .next()
        .map(String::from)
        .ok_or_else(|| "empty body".into())
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
