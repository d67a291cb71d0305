//! The log thread: every app's stdout and stderr arrive on pipes, and one thread (so a slow
//! disk never stalls the daemon's actors) turns them into lines, writes the files, rotates
//! them, and hands lines to `pmx logs` followers. It waits on an epoll of its own with
//! one-shot interest: under a flood a pipe is re-armed only after a short pause, so the
//! thread wakes a few hundred times a second instead of once per write of the app.
//!
//! Backpressure, decided: while the files can be written, a pipe that is not read fast enough
//! blocks the app's writes, as a slow file would — no line is dropped. When a file cannot be
//! written (disk full, removed directory), its lines are counted and dropped, the loss is
//! journaled and shown in `describe`, and the app never blocks on it. A follower that falls
//! behind is skipped ahead and told how many lines it missed; it never slows anything.

mod file;
mod lines;
mod tail;
mod written;

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pmx_core::Millis;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::logs::{RotateOptions, Rotation, Stream};
use pmx_storage::Journal;
use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::{EventfdFlags, Timespec, eventfd};
use tokio::sync::{Notify, broadcast, oneshot};

use file::LogFile;
use lines::{Clock, EachLine, LineFormat, Lines};
pub use pmx_core::log_tail::take_line_piece;
pub use tail::tails;
use written::{Tally, Written};

/// Bytes read from a pipe at once.
const READ_SIZE: usize = 128 * 1024;
/// Lines a follower may be behind before it is skipped ahead.
const LIVE_BACKLOG: usize = 4096;
/// A line longer than this reaches followers cut (the file has all of it).
const LIVE_LINE_MAX: usize = 16 * 1024;
/// Reads closer together than this mean a flood...
const FLOOD_GAP: Duration = Duration::from_millis(5);
/// ...and then the next read waits this long, to take a batch at once.
const BATCH_WAIT: Duration = Duration::from_millis(2);
/// A piece of a line still without its end after this long is written as it is.
const PARTIAL_WAIT: Duration = Duration::from_millis(500);
/// How often the daemon's own log is checked for rotation.
const DAEMON_LOG_CHECK: Duration = Duration::from_secs(30);

/// A line as followers see it.
#[derive(Debug, Clone)]
pub struct LiveLine {
    pub app: Arc<str>,
    pub id: u32,
    pub stream: Stream,
    pub at: Millis,
    pub text: String,
}

/// Output an app has lost because its file could not be written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loss {
    pub bytes: u64,
    pub last_error: String,
    pub at: Millis,
}

/// One stream to capture.
pub struct Attach {
    pub pipe: OwnedFd,
    pub app: String,
    pub id: u32,
    pub stream: Stream,
    pub file: Option<PathBuf>,
    pub combined: Option<PathBuf>,
    pub rotate: RotateOptions,
    /// strftime of the line prefix, if lines get one.
    pub prefix: Option<String>,
    pub json: bool,
    /// The start of a line already read from the pipe (by the daemon that handed it over).
    pub partial: Vec<u8>,
}

/// A stream handed over for `pmx update`: its pipe, unread output still in it, and the
/// start of a line read but not yet written.
pub struct Detached {
    pub id: u32,
    pub stream: Stream,
    pub pipe: OwnedFd,
    pub partial: Vec<u8>,
}

/// What the log thread hands a stream's line assembly.
enum Input<'a> {
    Read(&'a [u8]),
    /// A piece of a line waited `PARTIAL_WAIT` for its end.
    Waited,
    End,
}

enum Command {
    Attach(Box<Attach>),
    Flush(Vec<PathBuf>, oneshot::Sender<Vec<String>>),
    Reopen(oneshot::Sender<()>),
    /// Stop reading every stream and hand the pipes back (`pmx update`).
    Detach(oneshot::Sender<Vec<Detached>>),
    /// End the thread (the daemon is done: what it read is written).
    Stop,
}

/// The handle the daemon and the app actors hold.
#[derive(Clone)]
pub struct LogHub {
    commands: std::sync::mpsc::Sender<Command>,
    /// Written to wake the log thread for a command.
    wake: Arc<OwnedFd>,
    live: broadcast::Sender<Arc<LiveLine>>,
    /// By pm_id (never reused while the daemon runs).
    losses: Arc<Mutex<HashMap<u32, Loss>>>,
    /// Streams still being read, to let the last lines land before the daemon exits.
    active: Arc<(Mutex<usize>, Condvar)>,
    written: Tally,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

/// What the log thread needs from the daemon.
pub struct HubConfig {
    pub rotation: Rotation,
    pub journal: Arc<dyn Journal>,
    pub commit: Arc<Notify>,
    /// The daemon's own log, when its stderr is that file: rotated like the others.
    pub daemon_log: Option<PathBuf>,
    /// `$PMX_HOME/logs`: files there are the daemon's own and are never opened through a
    /// symlink (a path the user gave, `-o`, may be one: to /dev/null, /dev/stdout).
    pub home_logs: PathBuf,
}

/// The epoll token of the wake-up eventfd; streams count up from 1.
const WAKE: u64 = 0;

impl LogHub {
    pub fn start(config: HubConfig) -> std::io::Result<LogHub> {
        let (commands, receiver) = std::sync::mpsc::channel();
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        let wake = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let poll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&poll, &*wake, EventData::new_u64(WAKE), EventFlags::IN)?;
        let handle = LogHub {
            commands,
            wake: wake.clone(),
            live: live.clone(),
            losses: Arc::default(),
            active: Arc::default(),
            written: Tally::default(),
            thread: Arc::default(),
        };
        let (losses, active, written) = (
            handle.losses.clone(),
            handle.active.clone(),
            handle.written.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("pmx-logs".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                Hub {
                    config,
                    poll,
                    wake,
                    commands: receiver,
                    streams: HashMap::new(),
                    next_token: WAKE + 1,
                    rearm: Vec::new(),
                    partials: Vec::new(),
                    files: HashMap::new(),
                    live,
                    losses,
                    active,
                    written,
                    read: vec![0; READ_SIZE],
                    out: Vec::with_capacity(READ_SIZE),
                    daemon_log_check: Instant::now() + DAEMON_LOG_CHECK,
                    next_tick: None,
                }
                .run()
            })?;
        *lock(&handle.thread) = Some(thread);
        Ok(handle)
    }

    /// Ends the log thread (and with it its hold on the journal), waiting up to `timeout`.
    pub fn stop(&self, timeout: Duration) {
        if !self.send(Command::Stop) {
            return;
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = crate::join_within(thread, timeout);
        }
    }

    fn send(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        // A full eventfd counter still wakes the thread: the error does not matter.
        let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
        sent
    }

    /// Captures one stream of a process that was just spawned.
    pub fn attach(&self, attach: Attach) {
        *lock(&self.active.0) += 1;
        if !self.send(Command::Attach(Box::new(attach))) {
            *lock(&self.active.0) -= 1;
            crate::say!("pmx: the log thread is gone: output is not captured");
        }
    }

    /// Stops reading every stream and hands the pipes over, each with the start of a line
    /// it held; what the files were given so far is written.
    pub async fn detach_all(&self) -> Vec<Detached> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Detach(tx)) {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Empties these files; the errors, if any.
    pub async fn flush(&self, paths: Vec<PathBuf>) -> Vec<String> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Command::Flush(paths, tx)) {
            return vec!["the log thread is gone".into()];
        }
        rx.await.unwrap_or_default()
    }

    /// Reopens every file at its path (after an outside logrotate moved it).
    pub async fn reopen(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Reopen(tx)) {
            let _ = rx.await;
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveLine>> {
        self.live.subscribe()
    }

    /// What an instance wrote since the daemon started.
    pub fn written(&self, id: u32) -> pmx_core::view::OutputCounts {
        self.written.counts(id)
    }

    pub fn loss(&self, id: u32) -> Option<Loss> {
        lock(&self.losses).get(&id).cloned()
    }

    /// Waits (up to `timeout`) until every stream has been read to its end: the daemon calls
    /// it after stopping every app, so their last lines reach the files.
    pub fn drain(&self, timeout: Duration) {
        let (count, changed) = &*self.active;
        let guard = lock(count);
        let _ = changed.wait_timeout_while(guard, timeout, |n| *n > 0);
    }
}

/// The monotonic instant of a wall-clock time (now, if it is past).
fn instant_of(at: chrono::DateTime<chrono::Local>) -> Instant {
    Instant::now() + (at - chrono::Local::now()).to_std().unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One stream being captured.
struct Capture {
    pipe: OwnedFd,
    app: Arc<str>,
    id: u32,
    kind: Stream,
    lines: Lines,
    clock: Clock,
    targets: Vec<Rc<RefCell<LogFile>>>,
    /// Writing its files fails: its lines are counted as lost.
    failing: bool,
    last_read: Instant,
    /// A piece of a line waits for its end, and `partials` has its time to be written.
    partial_armed: bool,
    written: Arc<Written>,
}

struct Hub {
    config: HubConfig,
    poll: OwnedFd,
    wake: Arc<OwnedFd>,
    commands: std::sync::mpsc::Receiver<Command>,
    /// Boxed: the table keeps room for more streams than it holds, a pointer each.
    streams: HashMap<u64, Box<Capture>>,
    next_token: u64,
    /// Streams to re-arm at a time (after a pause under a flood).
    rearm: Vec<(Instant, u64)>,
    /// Streams whose piece of a line is written at a time if its end has not come.
    partials: Vec<(Instant, u64)>,
    files: HashMap<PathBuf, Rc<RefCell<LogFile>>>,
    live: broadcast::Sender<Arc<LiveLine>>,
    /// By pm_id (never reused while the daemon runs).
    losses: Arc<Mutex<HashMap<u32, Loss>>>,
    active: Arc<(Mutex<usize>, Condvar)>,
    written: Tally,
    read: Vec<u8>,
    out: Vec<u8>,
    daemon_log_check: Instant,
    /// When the earliest cron tick of the open files is due (`plan_ticks`).
    next_tick: Option<Instant>,
}

impl Hub {
    fn run(&mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        loop {
            let timeout = self.next_wake().map(|at| {
                let wait = at.saturating_duration_since(Instant::now());
                Timespec {
                    tv_sec: wait.as_secs() as i64,
                    tv_nsec: wait.subsec_nanos() as i64,
                }
            });
            events.clear();
            match epoll::wait(&self.poll, spare_capacity(&mut events), timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    crate::say!("pmx: the log thread cannot wait for output: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            for event in &events {
                match event.data.u64() {
                    WAKE => {
                        let mut counter = [0u8; 8];
                        let _ = rustix::io::read(&*self.wake, &mut counter);
                        while let Ok(command) = self.commands.try_recv() {
                            if matches!(command, Command::Stop) {
                                return;
                            }
                            self.handle(command);
                        }
                    }
                    token => self.drain_pipe(token),
                }
            }
            self.timers();
        }
    }

    /// The earliest of: a pipe to re-arm, a piece of a line to write, a cron tick, the daemon
    /// log check.
    fn next_wake(&self) -> Option<Instant> {
        let rearm = self.rearm.iter().map(|(at, _)| *at).min();
        let partial = self.partials.iter().map(|(at, _)| *at).min();
        [rearm, partial, self.next_tick, Some(self.daemon_log_check)]
            .into_iter()
            .flatten()
            .min()
    }

    fn timers(&mut self) {
        let now = Instant::now();
        for token in take_due(&mut self.rearm, now) {
            self.arm(token);
        }
        for token in take_due(&mut self.partials, now) {
            if let Some(mut capture) = self.streams.remove(&token) {
                capture.partial_armed = false;
                self.emit(&mut capture, Input::Waited);
                self.streams.insert(token, capture);
            }
        }
        if self.next_tick.is_some_and(|t| t <= now) {
            let wall = chrono::Local::now();
            for file in self.files.values() {
                let due = file.borrow().next_tick.is_some_and(|t| t <= wall);
                if due {
                    file.borrow_mut().tick();
                }
            }
            self.plan_ticks();
        }
        if now >= self.daemon_log_check {
            self.check_daemon_log();
            self.daemon_log_check = now + DAEMON_LOG_CHECK;
        }
    }

    /// The earliest cron tick of any open file, kept so a wake-up does not walk the files.
    fn plan_ticks(&mut self) {
        let earliest = self
            .files
            .values()
            .filter_map(|f| f.borrow().next_tick)
            .min();
        self.next_tick = earliest.map(instant_of);
    }

    fn arm(&mut self, token: u64) {
        if let Some(capture) = self.streams.get(&token) {
            let flags = EventFlags::IN | EventFlags::ONESHOT;
            if let Err(e) =
                epoll::modify(&self.poll, &capture.pipe, EventData::new_u64(token), flags)
            {
                crate::say!("pmx: cannot watch the output of {}: {e}", capture.app);
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Attach(attach) => self.attach(*attach),
            Command::Flush(paths, done) => {
                let errors = paths
                    .iter()
                    .filter_map(|path| {
                        let result = match self.files.get(path) {
                            Some(open) => open.borrow_mut().truncate(),
                            None => file::truncate(path),
                        };
                        result.err().map(|e| format!("{}: {e}", path.display()))
                    })
                    .collect();
                let _ = done.send(errors);
            }
            Command::Reopen(done) => {
                for file in self.files.values() {
                    file.borrow_mut().reopen();
                }
                let _ = done.send(());
            }
            // Taken by `run` before it gets here.
            Command::Stop => {}
            Command::Detach(done) => {
                let detached = std::mem::take(&mut self.streams)
                    .into_values()
                    .map(|mut capture| {
                        let _ = epoll::delete(&self.poll, &capture.pipe);
                        self.ended();
                        Detached {
                            id: capture.id,
                            stream: capture.kind,
                            partial: capture.lines.take_pending(),
                            pipe: capture.pipe,
                        }
                    })
                    .collect();
                self.rearm.clear();
                self.partials.clear();
                let _ = done.send(detached);
            }
        }
    }

    fn attach(&mut self, attach: Attach) {
        let rotation = self.config.rotation.with(&attach.rotate);
        let targets: Vec<Rc<RefCell<LogFile>>> = [&attach.file, &attach.combined]
            .into_iter()
            .flatten()
            .map(|path| {
                self.files
                    .entry(path.clone())
                    .or_insert_with(|| {
                        let mut file = LogFile::new(path.clone(), rotation.clone());
                        file.follow_links = !path.starts_with(&self.config.home_logs);
                        Rc::new(RefCell::new(file))
                    })
                    .clone()
            })
            .collect();
        for target in &targets {
            target.borrow_mut().create();
            // Folded into the earliest tick known: a walk of every file at each attach
            // made starting n apps cost n².
            if let Some(tick) = target.borrow().next_tick {
                let at = instant_of(tick);
                self.next_tick = Some(self.next_tick.map_or(at, |t| t.min(at)));
            }
        }
        let app: Arc<str> = attach.app.as_str().into();
        let token = self.next_token;
        self.next_token += 1;
        let _ = rustix::io::ioctl_fionbio(&attach.pipe, true);
        let flags = EventFlags::IN | EventFlags::ONESHOT;
        if let Err(e) = epoll::add(&self.poll, &attach.pipe, EventData::new_u64(token), flags) {
            crate::say!("pmx: cannot read the output of {}: {e}", attach.app);
            return self.ended();
        }
        let mut lines = Lines::new(LineFormat {
            app: app.clone(),
            id: attach.id,
            stream: attach.stream,
            prefix: attach.prefix,
            json: attach.json,
        });
        lines.resume(attach.partial);
        self.streams.insert(
            token,
            Box::new(Capture {
                pipe: attach.pipe,
                app,
                id: attach.id,
                kind: attach.stream,
                lines,
                clock: Clock::default(),
                targets,
                failing: false,
                last_read: Instant::now(),
                partial_armed: false,
                written: self.written.of(attach.id),
            }),
        );
    }

    /// A stream was read to its end (or could not be read at all).
    fn ended(&self) {
        let (count, changed) = &*self.active;
        let mut n = lock(count);
        *n = n.saturating_sub(1);
        changed.notify_all();
    }

    /// Reads what a pipe holds (up to a bound, so one flood does not starve the others),
    /// then re-arms it: at once, or after a pause when the app floods.
    fn drain_pipe(&mut self, token: u64) {
        let Some(mut capture) = self.streams.remove(&token) else {
            return;
        };
        let mut total = 0;
        let mut ended = false;
        while total < 4 * READ_SIZE {
            match rustix::io::read(&capture.pipe, &mut self.read) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => {
                    total += n;
                    let read = std::mem::take(&mut self.read);
                    self.emit(&mut capture, Input::Read(&read[..n]));
                    self.read = read;
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            self.emit(&mut capture, Input::End);
            let _ = epoll::delete(&self.poll, &capture.pipe);
            drop(capture);
            self.files.retain(|_, f| Rc::strong_count(f) > 1);
            self.plan_ticks();
            return self.ended();
        }
        let now = Instant::now();
        if capture.lines.has_pending() && !capture.partial_armed {
            capture.partial_armed = true;
            self.partials.push((now + PARTIAL_WAIT, token));
        }
        let flooding = total >= READ_SIZE || now.duration_since(capture.last_read) < FLOOD_GAP;
        capture.last_read = now;
        self.streams.insert(token, capture);
        if flooding {
            self.rearm.push((now + BATCH_WAIT, token));
        } else {
            self.arm(token);
        }
    }

    /// Formats what was read (or the piece of a line that waited, or the stream's last line)
    /// and writes it to the stream's files.
    fn emit(&mut self, capture: &mut Capture, input: Input<'_>) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let (app, id, kind, live) = (&capture.app, capture.id, capture.kind, &self.live);
        let mut publish = |line: &[u8]| publish(live, app, id, kind, line);
        let mut each: EachLine = (live.receiver_count() > 0).then_some(&mut publish);
        let (lines, clock) = (&mut capture.lines, &mut capture.clock);
        match input {
            Input::Read(data) => {
                capture.written.add(kind, data);
                lines.feed(data, clock, &mut out, &mut each)
            }
            Input::Waited => lines.flush_pending(clock, &mut out, &mut each),
            Input::End => lines.finish(clock, &mut out, &mut each),
        }
        self.write(capture, &out);
        self.out = out;
    }

    /// Rotates `pmx.log` when it is too big: renamed aside, reopened, and put in place of
    /// this process's stdout and stderr.
    fn check_daemon_log(&self) {
        let Some(path) = &self.config.daemon_log else {
            return;
        };
        let rotation = &self.config.rotation;
        let big = std::fs::metadata(path)
            .is_ok_and(|m| rotation.max_size_bytes > 0 && m.len() >= rotation.max_size_bytes);
        if big {
            LogFile::new(path.clone(), rotation.clone()).rotate();
            if let Err(e) = redirect_stdio(path) {
                crate::say!("pmx: cannot reopen {}: {e}", path.display());
            }
        }
    }

    /// Writes a stream's formatted lines to its files; a failure is counted, journaled once
    /// when it starts and once when writing works again.
    fn write(&self, capture: &mut Capture, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut lost: Option<file::Lost> = None;
        let mut failed_file = String::new();
        for target in &capture.targets {
            let mut file = target.borrow_mut();
            if let Err(l) = file.write(bytes) {
                failed_file = file.path.display().to_string();
                // The same bytes may miss several files: count them once.
                lost = Some(match lost {
                    Some(prev) if prev.bytes >= l.bytes => prev,
                    _ => l,
                });
            }
        }
        let key = capture.id;
        match lost {
            Some(l) => {
                {
                    let mut losses = lock(&self.losses);
                    let entry = losses.entry(key).or_default();
                    entry.bytes += l.bytes;
                    entry.last_error = format!("{failed_file}: {}", l.error);
                    entry.at = Clock::now_ms();
                }
                if !capture.failing {
                    capture.failing = true;
                    let kind = EventKind::LogWriteFailed {
                        file: failed_file,
                        error: l.error,
                    };
                    self.journal(capture, kind);
                }
            }
            None if capture.failing => {
                capture.failing = false;
                let lost_bytes = lock(&self.losses).get(&key).map_or(0, |l| l.bytes);
                let file = capture
                    .targets
                    .first()
                    .map(|t| t.borrow().path.display().to_string())
                    .unwrap_or_default();
                self.journal(capture, EventKind::LogWriteRecovered { file, lost_bytes });
            }
            None => {}
        }
    }

    fn journal(&self, capture: &Capture, kind: EventKind) {
        let event = NewEvent {
            app: capture.app.to_string(),
            instance: Some(capture.id),
            kind,
            cause: Cause::Process,
        };
        match self.config.journal.append(vec![event]) {
            Ok(_) => self.config.commit.notify_one(),
            Err(e) => crate::say!("pmx: journal append failed for {}: {e}", capture.app),
        }
    }
}

/// The tokens whose time has come, taken out of `timed`.
fn take_due(timed: &mut Vec<(Instant, u64)>, now: Instant) -> Vec<u64> {
    let due = timed
        .iter()
        .filter(|(at, _)| *at <= now)
        .map(|(_, token)| *token)
        .collect();
    timed.retain(|(at, _)| *at > now);
    due
}

/// Hands a line to the followers (cut to `LIVE_LINE_MAX`, at a character boundary).
fn publish(
    live: &broadcast::Sender<Arc<LiveLine>>,
    app: &Arc<str>,
    id: u32,
    stream: Stream,
    line: &[u8],
) {
    {
        let mut end = line.len().min(LIVE_LINE_MAX);
        let text = loop {
            match std::str::from_utf8(&line[..end]) {
                Ok(text) => break text.to_string(),
                // A cut inside a character: back off to its start.
                Err(e) if e.error_len().is_none() && end > 0 => end = e.valid_up_to(),
                Err(_) => break String::from_utf8_lossy(&line[..end]).into_owned(),
            }
        };
        let _ = live.send(Arc::new(LiveLine {
            app: app.clone(),
            id,
            stream,
            at: Clock::now_ms(),
            text,
        }));
    }
}

/// Points this process's stdout and stderr at `path` (appending).
fn redirect_stdio(path: &Path) -> std::io::Result<()> {
    let file = pmx_core::private::append(path)?;
    rustix::stdio::dup2_stdout(&file)?;
    rustix::stdio::dup2_stderr(&file)?;
    Ok(())
}
