//! Streams on a connection: `history --follow` and `logs --follow`. Each sends what there is,
//! then what comes, until the client hangs up.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use pmx_core::protocol::{HistoryRequest, LogBatch, LogLine, LogsRequest, Request, Response};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::broadcast;

use super::{ConnError, ask, write_frame};
use crate::daemon::Daemon;
use crate::logs::{LiveLine, LogHub};

/// How often a follower's app is checked for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// `history --follow`: the matching events so far, then new ones as `History` frames, until
/// the client hangs up.
pub(super) async fn history(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    uid: u32,
    mut req: HistoryRequest,
) -> Result<(), ConnError> {
    let history = |req: &HistoryRequest| ask(&daemon, Request::History(req.clone()), uid);
    let first = history(&req).await?;
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
        let Response::History(list) = history(&req).await? else {
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
pub(super) async fn logs(
    mut stream: UnixStream,
    daemon: Addr<Daemon>,
    logs: LogHub,
    uid: u32,
    req: LogsRequest,
) -> Result<(), ConnError> {
    // Subscribed before the sources are read, so no line falls between tail and stream.
    let mut live = logs.subscribe();
    let first = ask(&daemon, Request::Logs(req), uid).await?;
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
fn take(batch: &mut LogBatch, wanted: &Followed, received: Received) -> bool {
    // Looked up by `&str`: nothing is allocated for lines nobody follows.
    let followed = |line: &LiveLine| {
        wanted
            .get(&*line.app)
            .is_some_and(|ids| ids.contains(&line.id))
    };
    take_line(&mut batch.lines, &mut batch.missed, received, followed)
}

/// What a subscriber of the log thread receives.
pub(super) type Received = Result<Arc<LiveLine>, broadcast::error::RecvError>;

/// Adds a received line that `wanted` keeps to `lines`, or adds what was missed to `missed`;
/// false when the log thread is gone.
pub(super) fn take_line(
    lines: &mut Vec<LogLine>,
    missed: &mut u64,
    received: Received,
    wanted: impl Fn(&LiveLine) -> bool,
) -> bool {
    match received {
        Ok(line) => {
            if wanted(&line) {
                lines.push(LogLine {
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
            *missed += n;
            true
        }
        Err(broadcast::error::RecvError::Closed) => false,
    }
}
