//! The socket server: accepts connections on `$PMX_HOME/pmx.sock`, does the handshake, reads
//! request frames, asks the daemon, writes responses. A client that sends garbage, a
//! truncated frame, an oversized frame or nothing at all loses its connection; nobody else
//! notices.

use std::time::Duration;

use actix::Addr;
use pmx_core::frame;
use pmx_core::protocol::{FailureKind, Hello, PROTOCOL_VERSION, Request, Response, Welcome};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::daemon::{Daemon, Handle};
use crate::logs::LogHub;

mod follow;
mod monit;

/// A client has this long to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// At most this many clients at once; more wait in the kernel's backlog, holding none of
/// the daemon's descriptors.
const MAX_CLIENTS: usize = 256;

/// `pmx update` from a pmx of any protocol version: one `UpdateRequest`, one answer; after
/// `Updating` the daemon executes the new program (see `killed`).
async fn update(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    uid: u32,
    killed: mpsc::UnboundedSender<()>,
) -> Result<(), ConnError> {
    let welcome = Welcome {
        version: PROTOCOL_VERSION,
        daemon_pid: std::process::id(),
    };
    write_frame(&mut stream, &welcome).await?;
    let body = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| ConnError::Timeout)??;
    let Some(body) = body else { return Ok(()) };
    let request: pmx_core::protocol::UpdateRequest = frame::decode(&body)?;
    let response = ask(&daemon, Request::Update(request), uid).await?;
    let updating = matches!(response, Response::Updating(_));
    let written = write_frame(&mut stream, &response).await;
    if updating {
        let _ = killed.send(());
    }
    written
}

/// Accepts clients forever. `killed` is told when a client's `kill` or `update` was answered;
/// `tick` is how often `monit` streams get every instance's figures (the sample interval).
pub async fn serve(
    listener: UnixListener,
    daemon: Addr<Daemon>,
    logs: LogHub,
    tick: Duration,
    killed: mpsc::UnboundedSender<()>,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                crate::resident::note_command();
                let daemon = daemon.clone();
                let killed = killed.clone();
                let logs = logs.clone();
                actix::spawn(async move {
                    if let Err(e) = connection(stream, daemon, logs, tick, killed).await {
                        crate::say!("pmx: connection closed: {e}");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                // Out of file descriptors, for instance: back off instead of spinning.
                crate::say!("pmx: accept failed: {e}");
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

/// Asks the daemon for a client of the socket whose peer has `uid`.
async fn ask(daemon: &Addr<Daemon>, request: Request, uid: u32) -> Result<Response, ConnError> {
    let handle = Handle {
        request,
        uid,
        via: None,
    };
    daemon.send(handle).await.map_err(|_| ConnError::Gone)
}

async fn read_frame(
    stream: &mut (impl AsyncReadExt + Unpin),
) -> Result<Option<Vec<u8>>, ConnError> {
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

async fn write_frame<T: Serialize>(
    stream: &mut (impl AsyncWriteExt + Unpin),
    value: &T,
) -> Result<(), ConnError> {
    stream.write_all(&frame::encode(value)?).await?;
    Ok(())
}

/// A JSON document the daemon rendered, as one frame.
async fn write_document(
    stream: &mut (impl AsyncWriteExt + Unpin),
    document: Vec<u8>,
) -> Result<(), ConnError> {
    if document.len() > frame::MAX_FRAME {
        return Err(frame::FrameError::TooLarge(document.len()).into());
    }
    stream
        .write_all(&(document.len() as u32).to_be_bytes())
        .await?;
    stream.write_all(&document).await?;
    Ok(())
}

async fn connection(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    logs: LogHub,
    tick: Duration,
    killed: mpsc::UnboundedSender<()>,
) -> Result<(), ConnError> {
    let uid = stream.peer_cred()?.uid();
    let hello = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut stream))
        .await
        .map_err(|_| ConnError::Timeout)??;
    let Some(hello) = hello else { return Ok(()) };
    let hello: Hello = frame::decode(&hello)?;
    if hello.update {
        return update(stream, daemon, uid, killed).await;
    }
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
            // Streams are boxed: inline, their state would swell every connection's task.
            return Box::pin(follow::history(stream, daemon, uid, h.clone())).await;
        }
        if let Request::Monit(m) = request {
            return Box::pin(monit::stream(stream, daemon, logs, uid, m, tick)).await;
        }
        if let Request::Logs(l) = &request
            && l.follow
        {
            return Box::pin(follow::logs(stream, daemon, logs, uid, l.clone())).await;
        }
        let response = ask(&daemon, request, uid).await?;
        // After a kill, or an update (its handoff is ready): the daemon ends or execs, even
        // when the client left before the answer.
        let ends = matches!(response, Response::Killed | Response::Updating(_));
        let written = match response {
            Response::Document(document) => write_document(&mut stream, document).await,
            response => write_frame(&mut stream, &response).await,
        };
        if ends {
            let _ = killed.send(());
            return Ok(());
        }
        written?;
    }
}
