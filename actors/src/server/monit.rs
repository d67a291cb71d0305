//! The `monit` stream: every instance's figures once per sample interval, and the looked-at
//! app's new journal events and log lines as they come. The client sends another
//! `MonitRequest` on the same connection to look at another app; the stream then starts with
//! that app's last events and lines (`fresh`). The first frame also holds every instance's
//! last minute of samples, so charts start filled. The client never has to poll.

use std::time::Duration;

use actix::Addr;
use pmx_core::protocol::{
    HistoryRequest, LogLine, LogsRequest, MonitRequest, MonitUpdate, Request, Response,
};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc};

use super::follow::{Received, take_line};
use super::{ConnError, ask, read_frame, write_frame};
use crate::daemon::Daemon;
use crate::logs::{LiveLine, LogHub, tails};

/// Events and lines a fresh look starts with.
const BACKLOG: usize = 50;
/// Lines sent in one frame at most.
const LINES_PER_FRAME: usize = 500;
/// Figures are never sent more often than this, whatever the sample interval.
const MIN_TICK: Duration = Duration::from_millis(250);

/// What a stream knows between frames.
struct Look {
    daemon: Addr<Daemon>,
    uid: u32,
    app: Option<String>,
    /// The last journal event sent.
    seen: u64,
}

pub(super) async fn stream(
    stream: UnixStream,
    daemon: Addr<Daemon>,
    logs: LogHub,
    uid: u32,
    first: MonitRequest,
    tick: Duration,
) -> Result<(), ConnError> {
    let (mut reader, mut writer) = stream.into_split();
    // Requests are read by a task of their own: a read cut short by a tick would lose bytes.
    let (asks_tx, mut asks) = mpsc::channel::<MonitRequest>(4);
    actix::spawn(async move {
        while let Ok(Some(body)) = read_frame(&mut reader).await {
            let Ok(Request::Monit(m)) = pmx_core::frame::decode::<Request>(&body) else {
                break;
            };
            if asks_tx.send(m).await.is_err() {
                break;
            }
        }
    });
    let mut live = logs.subscribe();
    let mut look = Look {
        daemon,
        uid,
        app: None,
        seen: 0,
    };
    let mut update = look.refocus(first.app).await?;
    // The charts start with the last minute rather than empty.
    if let Response::Recent(recent) = look.ask(Request::Recent).await? {
        update.recent = recent.instances;
    }
    write_frame(&mut writer, &Response::Monit(Box::new(update))).await?;
    let mut ticker = tokio::time::interval(tick.max(MIN_TICK));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let update = tokio::select! {
            _ = ticker.tick() => look.figures().await?,
            asked = asks.recv() => match asked {
                Some(m) => look.refocus(m.app).await?,
                None => return Ok(()), // the client hung up
            },
            received = live.recv() => {
                let mut update = MonitUpdate::default();
                if !look.take(&mut update, received) {
                    return Ok(());
                }
                while update.logs.len() < LINES_PER_FRAME {
                    match live.try_recv() {
                        Ok(line) => { look.take(&mut update, Ok(line)); }
                        Err(broadcast::error::TryRecvError::Lagged(n)) => update.missed += n,
                        Err(_) => break,
                    }
                }
                if update.logs.is_empty() && update.missed == 0 {
                    continue;
                }
                update
            }
        };
        write_frame(&mut writer, &Response::Monit(Box::new(update))).await?;
    }
}

impl Look {
    async fn ask(&self, request: Request) -> Result<Response, ConnError> {
        ask(&self.daemon, request, self.uid).await
    }

    /// Every instance, and the looked-at app's events since the last frame.
    async fn figures(&mut self) -> Result<MonitUpdate, ConnError> {
        let processes = match self.ask(Request::List).await? {
            Response::Processes(list) => Some(list.processes),
            _ => None,
        };
        let events = match &self.app {
            Some(app) => self.events(app.clone(), None).await?,
            None => Vec::new(),
        };
        Ok(MonitUpdate {
            processes,
            events,
            ..MonitUpdate::default()
        })
    }

    /// Looks at `app` from now on: its last events and log lines, with every instance.
    async fn refocus(&mut self, app: Option<String>) -> Result<MonitUpdate, ConnError> {
        self.app = None;
        self.seen = 0;
        let mut update = self.figures().await?;
        update.fresh = true;
        self.app = app;
        if let Some(app) = self.app.clone() {
            update.events = self.events(app.clone(), Some(BACKLOG)).await?;
            update.logs = self.tail(app).await?;
        }
        Ok(update)
    }

    /// The app's events after the last one sent (the last `limit` of them).
    async fn events(
        &mut self,
        app: String,
        limit: Option<usize>,
    ) -> Result<Vec<pmx_core::event::Event>, ConnError> {
        let request = Request::History(HistoryRequest {
            target: app,
            limit,
            after_seq: (self.seen > 0).then_some(self.seen),
            ..HistoryRequest::default()
        });
        let Response::History(list) = self.ask(request).await? else {
            return Ok(Vec::new());
        };
        if let Some(last) = list.events.last() {
            self.seen = last.seq;
        } else if self.seen == 0 {
            self.seen = list.head;
        }
        Ok(list.events)
    }

    /// The last lines of the app's log files.
    async fn tail(&self, app: String) -> Result<Vec<LogLine>, ConnError> {
        let request = Request::Logs(LogsRequest {
            targets: vec![app],
            follow: false,
        });
        let Response::LogSources(sources) = self.ask(request).await? else {
            return Ok(Vec::new());
        };
        let tails = tails(sources.sources, BACKLOG).await;
        let lines = tails.into_iter().flat_map(|(source, lines)| {
            lines.into_iter().map(move |text| LogLine {
                app: source.app.clone(),
                id: source.id,
                stream: source.stream,
                at: 0,
                text,
            })
        });
        Ok(lines.collect())
    }

    /// Adds a live line of the looked-at app; false when the log thread is gone.
    fn take(&self, update: &mut MonitUpdate, received: Received) -> bool {
        let looked_at = |line: &LiveLine| self.app.as_deref() == Some(&*line.app);
        take_line(&mut update.logs, &mut update.missed, received, looked_at)
    }
}
