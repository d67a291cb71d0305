//! The HTTP health check: every `interval`, `GET url` with a `timeout`; `failures` failed
//! checks in a row restart the app's running instances, journaled with the last result.
//! The request is a minimal HTTP/1.1 GET with `Connection: close`: only the status line is read.

use std::time::Duration;

use actix::prelude::*;
use pmx_core::event::Cause;
use pmx_core::listen::HttpUrl;
use pmx_core::spec::HealthCheck;
use pmx_core::state::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AppActor;

/// One check: `Ok(status)` for a 2xx or 3xx answer, else why it failed.
pub async fn probe(url: &HttpUrl, timeout: Duration) -> Result<u16, String> {
    let request = async {
        let mut stream = tokio::net::TcpStream::connect(&url.authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: pmx-health\r\n\r\n",
            url.path, url.authority
        );
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buffer = vec![0u8; 256];
        let mut read = 0;
        while !buffer[..read].contains(&b'\n') && read < buffer.len() {
            match stream.read(&mut buffer[read..]).await {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        let line = String::from_utf8_lossy(&buffer[..read]);
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| "no HTTP status line in the answer".to_string())?;
        if (200..400).contains(&status) {
            Ok(status)
        } else {
            Err(format!("status {status}"))
        }
    };
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

impl AppActor {
    /// Starts the periodic check when the spec has one.
    pub(super) fn arm_health(&mut self, ctx: &mut Context<Self>) {
        let Some(check) = self.spec.options.health.clone() else {
            return;
        };
        let Ok(url) = HttpUrl::parse(&check.url) else {
            return;
        };
        let every = Duration::from_millis(check.interval_ms);
        ctx.run_interval(every, move |act, ctx| {
            let online = act
                .slots
                .iter()
                .any(|s| !s.incoming && s.machine.status == Status::Online);
            if !online || act.rolling.is_some() {
                act.health_failures = 0;
                return;
            }
            let timeout = Duration::from_millis(check.timeout_ms);
            let url = url.clone();
            let check = check.clone();
            let checked = async move { probe(&url, timeout).await };
            ctx.spawn(checked.into_actor(act).map(move |result, act, _| {
                act.checked(&check, result);
            }));
        });
    }

    fn checked(&mut self, check: &HealthCheck, result: Result<u16, String>) {
        let error = match result {
            Ok(_) => {
                self.health_failures = 0;
                return;
            }
            Err(error) => error,
        };
        self.health_failures += 1;
        if self.health_failures < check.failures {
            return;
        }
        self.health_failures = 0;
        let cause = Cause::Rule {
            rule: "health".into(),
            reason: format!("{} failed checks in a row: {error}", check.failures),
            figures: vec![format!("GET {}", check.url)],
        };
        self.restart_running(cause);
    }
}
