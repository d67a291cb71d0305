//! How a launched process talks to the daemon: `READY=1` over its `NOTIFY_SOCKET` (the
//! sd_notify protocol, any language), and a line channel on an inherited fd that the Node
//! shim uses both ways (`READY=1`, `LISTENING=1`, `DRAINED=1` up; `DRAIN`, `SHUTDOWN` down).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use pmx_core::paths::Paths;
use pmx_core::spec::AppSpec;
use tokio::io::AsyncBufReadExt;
use tokio::task::JoinHandle;

use pmx_core::agent::AgentMessage;
use pmx_core::event::Cause;
use pmx_core::state::{Input, Readiness, Status};

use super::AppActor;
use crate::process::spawn::SpawnError;

/// Writes the Node shim into the home, where every app's `NODE_OPTIONS` finds it.
pub fn install_shim(paths: &Paths) -> std::io::Result<()> {
    // Replaced, never written through: a link planted there is not followed.
    pmx_core::private::replace(
        &paths.node_shim(),
        include_str!("../process/shim/node.cjs").as_bytes(),
    )
}

/// What a process said.
#[derive(Debug, Clone, PartialEq)]
pub enum Word {
    /// `READY=1` on the notify socket.
    Notified,
    /// `process.send('ready')`, through the shim.
    SentReady,
    /// The shim listens on an inherited socket, or a cluster worker on its shared one.
    Listening,
    /// A cluster worker says it is up (Node's `online`, before the app's code runs).
    WorkerOnline,
    /// The shim has no connection left after a `DRAIN`.
    Drained,
    /// Figures or options of the app's agent (`AXM {json}` from the shim, or `@pm2/io`'s
    /// messages on a cluster worker's channel).
    Agent(Box<AgentMessage>),
}

/// A word from the process of slot `key`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Heard {
    pub key: u64,
    pub word: Word,
}

/// The daemon's side, open before the spawn; the child's ends go to the child.
pub struct Opened {
    pub child_end: OwnedFd,
    /// Node's IPC channel of a cluster worker (after `child_end` in the child).
    pub worker_end: Option<OwnedFd>,
    talk: Talk,
}

/// The daemon's side of a running process's channels. Dropping it stops listening and
/// removes the notify socket.
pub struct Talk {
    notify: PathBuf,
    writer: UnixStream,
    /// The daemon's end of a cluster worker's channel (a copy: a task reads the other).
    worker: Option<UnixStream>,
    readers: Vec<JoinHandle<()>>,
    /// The shim spoke: it drains its connections when told to.
    pub shim: bool,
}

/// A run's channels as handed over (`pmx update`): the notify socket's path (its file stays,
/// the next daemon binds it again) and the daemon's ends of the channels.
pub struct HandedTalk {
    pub notify: PathBuf,
    pub channel: Option<OwnedFd>,
    pub worker: Option<OwnedFd>,
    pub shim: bool,
}

/// Opens the channels of slot `key`'s next run, of instance `id` (the id and the app's run
/// count make the socket's name unique in the home), and a cluster worker's channel when
/// `primary` is given.
pub fn open(
    paths: &Paths,
    (key, id, run): (u64, u32, u64),
    addr: Addr<AppActor>,
    primary: Option<super::cluster::Primary>,
) -> Result<Opened, SpawnError> {
    let dir = paths.notify_dir();
    let notify = dir.join(format!("{id}-{run}"));
    let _ = pmx_core::private::create_dir(&dir);
    let _ = std::fs::remove_file(&notify);
    let datagram = tokio::net::UnixDatagram::bind(&notify)
        .map_err(|e| SpawnError::os(format!("cannot create {}: {e}", notify.display()), &e))?;
    let channel_error =
        |e: std::io::Error| SpawnError::os(format!("cannot create the app's channel: {e}"), &e);
    let (mine, child_end) = UnixStream::pair().map_err(channel_error)?;
    let writer = mine.try_clone().map_err(channel_error)?;
    let mut readers = listen(datagram, mine, key, addr).map_err(channel_error)?;
    let (worker_end, worker) = match primary {
        Some(primary) => {
            let (mine, child_end) = UnixStream::pair().map_err(channel_error)?;
            let kept = mine.try_clone().map_err(channel_error)?;
            readers.push(serve_worker(mine, primary).map_err(channel_error)?);
            (Some(child_end.into()), Some(kept))
        }
        None => (None, None),
    };
    Ok(Opened {
        child_end: child_end.into(),
        worker_end,
        talk: Talk {
            notify,
            writer,
            worker,
            readers,
            shim: false,
        },
    })
}

/// Answers a cluster worker on the daemon's end of its channel, as its cluster primary.
fn serve_worker(
    mine: UnixStream,
    primary: super::cluster::Primary,
) -> std::io::Result<JoinHandle<()>> {
    mine.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(mine)?;
    Ok(actix::spawn(super::cluster::serve(stream, primary)))
}

impl Opened {
    /// The variables that tell the process where to talk; its channel will be fd `fd_at`
    /// (and a cluster worker's the next one). `worker_id` is the worker's `cluster.worker.id`.
    pub fn env(
        &self,
        fd_at: usize,
        worker_id: u64,
        spec: &AppSpec,
        paths: &Paths,
    ) -> Vec<(String, String)> {
        let fd = crate::process::activation::FIRST_FD as usize + fd_at;
        let mut env = vec![
            (
                "NOTIFY_SOCKET".into(),
                self.talk.notify.to_string_lossy().into_owned(),
            ),
            ("PMX_CHANNEL_FD".into(), fd.to_string()),
            node_options(spec, paths),
        ];
        if self.worker_end.is_some() {
            env.extend(super::cluster::worker_env(fd as i32 + 1, worker_id));
        }
        env
    }

    /// The fds the child gets, in order, from fd `fd_at` on.
    pub fn child_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        std::iter::once(&self.child_end)
            .chain(&self.worker_end)
            .map(AsRawFd::as_raw_fd)
            .collect()
    }

    /// Closes the child's end (the child has its copy once spawned).
    pub fn into_talk(self) -> Talk {
        self.talk
    }
}

/// `NODE_OPTIONS` with the shim preloaded (before the app's own options), for any Node
/// process of the app: the shim also keeps PM2's habits that need no channel.
pub fn node_options(spec: &AppSpec, paths: &Paths) -> (String, String) {
    let shim = format!("--require \"{}\"", paths.node_shim().display());
    let existing = spec
        .env
        .get("NODE_OPTIONS")
        .or_else(|| spec.base_env.get("NODE_OPTIONS"));
    let options = match existing {
        Some(options) if !options.is_empty() => format!("{shim} {options}"),
        _ => shim,
    };
    ("NODE_OPTIONS".into(), options)
}

impl Talk {
    /// Hands the channels over for `pmx update`; reading them stops here.
    pub fn hand_over(mut self) -> HandedTalk {
        HandedTalk {
            notify: std::mem::take(&mut self.notify),
            channel: self.writer.try_clone().map(OwnedFd::from).ok(),
            worker: self.worker.take().map(OwnedFd::from),
            shim: self.shim,
        }
    }

    /// Talks again with a process another daemon started (`pmx update`): the notify socket
    /// bound anew at its path, the channel's end read again, and a cluster worker's channel
    /// answered again when `worker` is given.
    pub fn adopt(
        notify: PathBuf,
        channel: OwnedFd,
        shim: bool,
        (key, addr): (u64, Addr<AppActor>),
        worker: Option<(OwnedFd, super::cluster::Primary)>,
    ) -> std::io::Result<Talk> {
        let _ = std::fs::remove_file(&notify);
        let datagram = tokio::net::UnixDatagram::bind(&notify)?;
        let mine = UnixStream::from(channel);
        let writer = mine.try_clone()?;
        let mut readers = listen(datagram, mine, key, addr)?;
        let worker = match worker {
            Some((fd, primary)) => {
                let mine = UnixStream::from(fd);
                let kept = mine.try_clone()?;
                readers.push(serve_worker(mine, primary)?);
                Some(kept)
            }
            None => None,
        };
        Ok(Talk {
            notify,
            writer,
            worker,
            readers,
            shim,
        })
    }

    /// Sends one line to the shim; false when it cannot be written at once.
    pub fn tell(&mut self, line: &str) -> bool {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .is_ok()
    }
}

impl Drop for Talk {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
        // Handed over: the file is the next daemon's.
        if !self.notify.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.notify);
        }
    }
}

/// Reads what slot `key`'s process says on its notify socket and on the daemon's end of its
/// channel.
fn listen(
    notify: tokio::net::UnixDatagram,
    channel: UnixStream,
    key: u64,
    addr: Addr<AppActor>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    channel.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(channel)?;
    Ok(vec![
        actix::spawn(read_notify(notify, key, addr.clone())),
        actix::spawn(read_channel(stream, key, addr)),
    ])
}

async fn read_notify(socket: tokio::net::UnixDatagram, key: u64, addr: Addr<AppActor>) {
    let mut buffer = vec![0u8; 4096];
    while let Ok(n) = socket.recv(&mut buffer).await {
        let text = String::from_utf8_lossy(&buffer[..n]);
        if text.lines().any(|l| l.trim() == "READY=1") {
            addr.do_send(Heard {
                key,
                word: Word::Notified,
            });
        }
    }
}

/// The channel's lines are short (an agent's figures at most a few KiB): a longer line is
/// skipped as it streams in, never held.
const CHANNEL_LINE_CAP: usize = 16 * 1024;

async fn read_channel(stream: tokio::net::UnixStream, key: u64, addr: Addr<AppActor>) {
    let mut reader = tokio::io::BufReader::new(stream);
    // Grows to the longest line the process sends (at most the cap), not to the cap at once.
    let mut line = Vec::new();
    let mut pace = pmx_core::agent::Pace::default();
    loop {
        let Ok(available) = reader.fill_buf().await else {
            return;
        };
        if available.is_empty() {
            return;
        }
        let (used, done) = crate::logs::take_line_piece(available, &mut line, CHANNEL_LINE_CAP);
        reader.consume(used);
        if !done {
            continue;
        }
        let said = String::from_utf8_lossy(&line).into_owned();
        line.clear();
        let word = match said.trim() {
            "READY=1" => Word::SentReady,
            "LISTENING=1" => Word::Listening,
            "DRAINED=1" => Word::Drained,
            other => match other
                .strip_prefix("AXM ")
                .filter(|_| pace.admit(crate::clock::now_ms()))
                .map(serde_json::from_str)
            {
                Some(Ok(message)) => match AgentMessage::of(&message) {
                    Some(m) => Word::Agent(Box::new(m)),
                    None => continue,
                },
                _ => continue,
            },
        };
        addr.do_send(Heard { key, word });
    }
}

impl Handler<Heard> for AppActor {
    type Result = ();

    fn handle(&mut self, msg: Heard, ctx: &mut Context<Self>) {
        let Some(i) = self.find(msg.key) else { return };
        let slot = &mut self.slots[i];
        let Some(run) = slot.run.as_mut() else { return };
        let pid = run.pid;
        if let Word::Agent(message) = msg.word {
            Arc::make_mut(run.agent.get_or_insert_default()).take(*message);
            return;
        }
        if let Some(talk) = run.talk.as_mut()
            && msg.word != Word::Notified
        {
            talk.shim = true;
        }
        let launching = slot.machine.status == Status::Launching;
        // As PM2: a cluster worker started plainly is online when Node says so; one replacing
        // an instance in a reload must listen first.
        let worker_up = !slot.incoming && self.readiness == Readiness::AtSpawn;
        // Listening is ready enough unless the app promised to say so itself.
        let lenient = matches!(
            self.effective_readiness(),
            Readiness::ReportedOrAfter { .. }
        );
        let how = match msg.word {
            Word::Notified => "sd_notify READY=1",
            Word::SentReady => "process.send('ready')",
            Word::Listening if lenient => "listening on the shared socket",
            Word::Listening => return,
            Word::WorkerOnline if worker_up => "the cluster worker is online",
            Word::WorkerOnline => return,
            Word::Drained => {
                self.release_signal(i);
                return self.settle(ctx);
            }
            Word::Agent(_) => return,
        };
        if launching {
            let how = how.to_string();
            self.feed(i, Input::Ready { pid, how }, Cause::Process, ctx);
        }
    }
}

/// How long a stop waits for the shim to drain before it signals anyway (the kill timeout
/// keeps running meanwhile).
fn drain_limit(kill_timeout_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(kill_timeout_ms / 2)
}

impl AppActor {
    /// The stop signal, after the process left the rotation when its shim can drain it:
    /// it stops accepting and finishes its requests before it is told to exit.
    pub(super) fn stop_signal(
        &mut self,
        i: usize,
        signal: i32,
        cause: Cause,
        ctx: &mut Context<Self>,
    ) {
        let key = self.slots[i].key;
        let limit = drain_limit(self.spec.kill_timeout_ms);
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        let draining = run.talk.as_mut().is_some_and(|t| t.shim && t.tell("DRAIN"));
        if !draining {
            return self.stop_now(i, signal, cause);
        }
        run.held_signal = Some((signal, cause));
        let pid = run.pid;
        ctx.run_later(limit, move |act, _| {
            if let Some(i) = act.find(key)
                && act.slots[i].run.as_ref().is_some_and(|r| r.pid == pid)
            {
                act.release_signal(i);
            }
        });
    }

    /// Sends the stop signal held during a drain.
    fn release_signal(&mut self, i: usize) {
        let Some(run) = self.slots[i].run.as_mut() else {
            return;
        };
        if let Some((signal, cause)) = run.held_signal.take() {
            self.stop_now(i, signal, cause);
        }
    }

    /// Tells the process to stop: the shutdown message when the app asked for it and its
    /// channel is open (PM2's `shutdown_with_message`), else the signal. The kill timeout
    /// runs either way.
    fn stop_now(&mut self, i: usize, signal: i32, cause: Cause) {
        let with_message = self.spec.options.shutdown_with_message;
        let run = self.slots[i].run.as_mut();
        let told = with_message
            && run.is_some_and(|r| r.talk.as_mut().is_some_and(|t| t.tell("SHUTDOWN")));
        if !told {
            self.signal(i, signal, cause);
        }
    }
}
