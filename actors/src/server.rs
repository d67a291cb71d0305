//! The socket server: accepts connections on `$PMX_HOME/pmx.sock`, does the handshake, reads
//! request frames, asks the daemon, writes responses. A client that sends garbage, a
//! truncated frame, an oversized frame or nothing at all loses its connection; nobody else
//! notices.

use std::time::Duration;

use actix::Addr;
use pmx_core::frame;
use pmx_core::protocol::{
    FailureKind, Hello, HistoryRequest, LogBatch, LogLine, LogsRequest, PROTOCOL_VERSION, Request,
    Response, Welcome,
};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};

use crate::daemon::{Daemon, Handle};
use crate::logs::LogHub;

/// A client has this long to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Accepts clients forever. `killed` is told when a client's `kill` was answered.
pub async fn serve(
    listener: UnixListener,
    daemon: Addr<Daemon>,
    logs: LogHub,
    killed: mpsc::UnboundedSender<()>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let daemon = daemon.clone();
                let killed = killed.clone();
                let logs = logs.clone();
                actix::spawn(async move {
                    if let Err(e) = connection(stream, daemon, logs, killed).await {
                        eprintln!("pmx: connection closed: {e}");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, for instance: back off instead of spinning.
                eprintln!("pmx: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] frame::FrameError),
    #[error("timed out")]
    Timeout,
    #[error("the daemon is shutting down")]
    Gone,
}

async fn read_frame(stream: &mut UnixStream) -> Result<Option<Vec<u8>>, ConnError> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = frame::body_len(header)?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(Some(body))
}

async fn write_frame<T: Serialize>(stream: &mut UnixStream, value: &T) -> Result<(), ConnError> {
    stream.write_all(&frame::encode(value)?).await?;
    Ok(())
}

async fn connection(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    logs: LogHub,
    killed: mpsc::UnboundedSender<()>,
) -> Result<(), ConnError> {
    let uid = stream.peer_cred()?.uid();
    let hello = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| ConnError::Timeout)??;
    let Some(hello) = hello else { return Ok(()) };
    let hello: Hello = frame::decode(&hello)?;
    if hello.version != PROTOCOL_VERSION {
        let message = format!(
            "the running daemon speaks protocol {PROTOCOL_VERSION}, this pmx speaks {}: run `pmx kill` with the pmx that started the daemon, then retry",
            hello.version
        );
        write_frame(
            &mut stream,
            &Response::failure(FailureKind::VersionMismatch, message),
        )
        .await?;
        return Ok(());
    }
    let welcome = Welcome {
        version: PROTOCOL_VERSION,
        daemon_pid: std::process::id(),
    };
    write_frame(&mut stream, &welcome).await?;
    loop {
        let body = tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut stream))
            .await
            .map_err(|_| ConnError::Timeout)??;
        let Some(body) = body else { return Ok(()) };
        let request: Request = frame::decode(&body)?;
        if let Request::History(h) = &request
            && h.follow
        {
            return follow(stream, daemon, uid, h.clone()).await;
        }
        if let Request::Logs(l) = &request
            && l.follow
        {
            return follow_logs(stream, daemon, logs, uid, l.clone()).await;
        }
        let response = daemon
            .send(Handle { request, uid })
            .await
            .map_err(|_| ConnError::Gone)?;
        let was_kill = matches!(response, Response::Killed);
        write_frame(&mut stream, &response).await?;
        if was_kill {
            let _ = killed.send(());
            return Ok(());
        }
    }
}

/// How often a follower's app is checked for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// `history --follow`: the matching events so far, then new ones as `History` frames, until
/// the client hangs up.
async fn follow(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    uid: u32,
    mut req: HistoryRequest,
) -> Result<(), ConnError> {
    let ask = |req: &HistoryRequest| {
        daemon.send(Handle {
            request: Request::History(req.clone()),
            uid,
        })
    };
    let first = ask(&req).await.map_err(|_| ConnError::Gone)?;
    let Response::History(list) = &first else {
        return write_frame(&mut stream, &first).await;
    };
    // Where to resume: after the last page of the backlog, or after the head it was read at.
    let mut last = list.next_after.unwrap_or(list.head);
    let mut more = list.next_after.is_some();
    write_frame(&mut stream, &first).await?;
    req.limit = None;
    req.since = None;
    let mut scratch = [0u8; 64];
    loop {
        if !more {
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                read = stream.read(&mut scratch) => {
                    if read? == 0 {
                        return Ok(()); // the client hung up
                    }
                }
            }
        }
        req.after_seq = Some(last);
        let Response::History(list) = ask(&req).await.map_err(|_| ConnError::Gone)? else {
            continue;
        };
        more = list.next_after.is_some();
        if let Some(resume) = list.next_after.or(list.events.last().map(|e| e.seq)) {
            last = resume;
        }
        if !list.events.is_empty() {
            write_frame(&mut stream, &Response::History(list)).await?;
        }
    }
}

/// The instances a follower asked for: app name → ids.
type Followed = std::collections::HashMap<String, Vec<u32>>;

/// Lines sent in one `LogLines` frame at most.
const LOG_BATCH: usize = 1000;

/// `logs` (following): the sources, then the targets' new lines as they are captured. A
/// follower that cannot keep up is skipped ahead and told how many lines it missed.
async fn follow_logs(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    logs: LogHub,
    uid: u32,
    req: LogsRequest,
) -> Result<(), ConnError> {
    // Subscribed before the sources are read, so no line falls between tail and stream.
    let mut live = logs.subscribe();
    let first = daemon
        .send(Handle {
            request: Request::Logs(req),
            uid,
        })
        .await
        .map_err(|_| ConnError::Gone)?;
    let Response::LogSources(sources) = &first else {
        return write_frame(&mut stream, &first).await;
    };
    let mut wanted = Followed::new();
    for source in &sources.sources {
        wanted
            .entry(source.app.clone())
            .or_default()
            .push(source.id);
    }
    write_frame(&mut stream, &first).await?;
    let mut scratch = [0u8; 64];
    loop {
        let mut batch = LogBatch::default();
        tokio::select! {
            received = live.recv() => {
                if !take(&mut batch, &wanted, received) {
                    return Ok(());
                }
            }
            read = stream.read(&mut scratch) => {
                if read? == 0 {
                    return Ok(()); // the client hung up
                }
                continue;
            }
        }
        while batch.lines.len() < LOG_BATCH {
            let received = match live.try_recv() {
                Ok(line) => Ok(line),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Err(broadcast::error::RecvError::Lagged(n))
                }
                Err(_) => break,
            };
            take(&mut batch, &wanted, received);
        }
        if !batch.lines.is_empty() || batch.missed > 0 {
            write_frame(&mut stream, &Response::LogLines(batch)).await?;
        }
    }
}

/// Adds a received line (if its instance is followed) or the count of missed ones; false
/// when the log thread is gone.
fn take(
    batch: &mut LogBatch,
    wanted: &Followed,
    received: Result<std::sync::Arc<crate::logs::LiveLine>, broadcast::error::RecvError>,
) -> bool {
    match received {
        Ok(line) => {
            // Looked up by `&str`: nothing is allocated for lines nobody follows.
            if wanted
                .get(&*line.app)
                .is_some_and(|ids| ids.contains(&line.id))
            {
                batch.lines.push(LogLine {
                    app: line.app.to_string(),
                    id: line.id,
                    stream: line.stream,
                    at: line.at,
                    text: line.text.clone(),
                });
            }
            true
        }
        Err(broadcast::error::RecvError::Lagged(n)) => {
            batch.missed += n;
            true
        }
        Err(broadcast::error::RecvError::Closed) => false,
    }
}
