//! A daemon tests hold in their hands: `Held::start` builds the `Daemon` actor in this
//! process, on a temporary home, over a `Spy` journal, inside the caller's actix system, with
//! none of `run`'s process-global setup (no lock, no subreaper, no socket). Requests go to it
//! as the server sends them (`Held::ask`); the journal tells what was written and what was
//! durable when.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::event::{Event, EventKind, NewEvent};
use pmx_core::paths::Paths;
use pmx_core::protocol::{Request, Response, RetentionCut};
use pmx_core::spec::{AppSpec, Interpreter};
use pmx_core::view::ProcessView;
use pmx_storage::{Journal, JournalError, Retention, SledJournal, Snapshot as Registry};

use crate::app::Shared;
use crate::daemon::{Daemon, Handle};
use crate::process::reaper::Managed;

/// Runs with every batch of events a flush made durable, on the thread that flushed.
pub type OnFlush = Box<dyn FnMut(&[Event]) + Send>;

/// A real journal on the test's home that also remembers what each flush made durable and
/// lets the test look at the world at that moment (`on_flush`).
pub struct Spy {
    inner: SledJournal,
    unflushed: Mutex<Vec<Event>>,
    on_flush: Mutex<Option<OnFlush>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Spy {
    pub fn on_flush(&self, hook: OnFlush) {
        *locked(&self.on_flush) = Some(hook);
    }

    /// Every event written so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.inner.all().unwrap_or_default()
    }
}

impl Journal for Spy {
    fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, JournalError> {
        let written = self.inner.append(events)?;
        locked(&self.unflushed).extend(written.iter().cloned());
        Ok(written)
    }
    fn flush(&self) -> Result<(), JournalError> {
        self.inner.flush()?;
        let flushed = std::mem::take(&mut *locked(&self.unflushed));
        if let Some(hook) = locked(&self.on_flush).as_mut() {
            hook(&flushed);
        }
        Ok(())
    }
    fn head(&self) -> u64 {
        self.inner.head()
    }
    fn page_after(
        &self,
        app: Option<&str>,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Event>, JournalError> {
        self.inner.page_after(app, seq, max)
    }
    fn seq_before_last(&self, app: Option<&str>, n: usize) -> Result<u64, JournalError> {
        self.inner.seq_before_last(app, n)
    }
    fn for_app(&self, app: &str, limit: Option<usize>) -> Result<Vec<Event>, JournalError> {
        self.inner.for_app(app, limit)
    }
    fn replay_after(&self, seq: u64, visit: &mut dyn FnMut(Event)) -> Result<u64, JournalError> {
        self.inner.replay_after(seq, visit)
    }
    fn snapshot(&self) -> Result<Option<Registry>, JournalError> {
        self.inner.snapshot()
    }
    fn store_snapshot(&self, snapshot: &Registry) -> Result<(), JournalError> {
        self.inner.store_snapshot(snapshot)
    }
    fn snapshot_seq(&self) -> u64 {
        self.inner.snapshot_seq()
    }
    fn compact(&self, retention: &Retention, now: Millis) -> Result<RetentionCut, JournalError> {
        self.inner.compact(retention, now)
    }
    fn cut(&self, app: Option<&str>) -> Result<Option<RetentionCut>, JournalError> {
        self.inner.cut(app)
    }
}

/// A daemon started by a test. `stop` stops every app as `run` does on its way out; dropped
/// without it (a failed test), every process it spawned that still runs is killed.
pub struct Held {
    pub daemon: Addr<Daemon>,
    pub journal: Arc<Spy>,
    pub home: tempfile::TempDir,
    /// The pids the actors wait for; held locked, it keeps the spawner from spawning.
    pub managed: Managed,
}

/// How long a test waits for what should happen in a few milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(10);

impl Held {
    /// Must be called inside an actix system (`actix::System::new().block_on`).
    pub fn start() -> Held {
        let home = tempfile::tempdir().expect("a temporary home");
        let paths = Paths::new(home.path().to_path_buf());
        for dir in [paths.logs(), paths.pids()] {
            pmx_core::private::create_dir(&dir).expect("the home's directories");
        }
        let journal = Arc::new(Spy {
            inner: SledJournal::open(&paths.journal()).expect("a journal"),
            unflushed: Mutex::default(),
            on_flush: Mutex::default(),
        });
        let commit = Arc::new(tokio::sync::Notify::new());
        let managed = Managed::default();
        let logs = crate::logs::LogHub::start(crate::logs::HubConfig {
            rotation: Default::default(),
            journal: journal.clone(),
            commit: commit.clone(),
            daemon_log: None,
            home_logs: paths.logs(),
        })
        .expect("the log thread");
        let sampler = crate::sampler::Sampler::start(Duration::from_secs(3600), managed.clone())
            .expect("the sampler");
        let (policy, _rules) = crate::policy::PolicyHandle::new();
        let spawner =
            crate::process::spawner::Spawner::start(managed.clone()).expect("the spawner");
        let shared = Shared::new(
            &paths,
            journal.clone(),
            commit.clone(),
            managed.clone(),
            (logs, spawner, sampler, policy),
        );
        let desk = shared.desk.clone();
        let (daemon, _) = Daemon::boot(shared, None).expect("the daemon boots");
        // The group commit, as `run` has it (no housekeeping: its wake-ups go nowhere).
        let (no_compactor, _) = std::sync::mpsc::channel();
        actix::spawn(crate::commit::run(journal.clone(), commit, no_compactor));
        let daemon = daemon.start();
        desk.open(&daemon.clone().recipient());
        Held {
            daemon,
            journal,
            home,
            managed,
        }
    }

    /// Sends `request` as the server would, from this test's own user.
    pub async fn ask(&self, request: Request) -> Response {
        let handle = Handle {
            request,
            uid: rustix::process::getuid().as_raw(),
            via: None,
        };
        self.daemon.send(handle).await.expect("the daemon answers")
    }

    /// A sleeper named `name`, run in the home.
    pub fn sleeper(&self, name: &str) -> AppSpec {
        AppSpec {
            name: name.into(),
            script: "/bin/sleep".into(),
            args: vec!["60".into()],
            interpreter: Interpreter::None,
            cwd: self.home.path().display().to_string(),
            ..AppSpec::default()
        }
    }

    /// `pmx start` of a sleeper named `name`; its one view once online.
    pub async fn start_sleeper(&self, name: &str) -> ProcessView {
        self.start_app(self.sleeper(name)).await
    }

    /// `pmx start` of `spec` (one instance); its view once online.
    pub async fn start_app(&self, spec: AppSpec) -> ProcessView {
        let name = spec.name.clone();
        let start = pmx_core::protocol::StartRequest { spec };
        match self.ask(Request::Start(Box::new(start))).await {
            Response::Processes(list) => {
                let view = list.processes.into_iter().next().expect("one instance");
                assert!(view.pid.is_some(), "{name} started without a process");
                view
            }
            other => panic!("start {name}: {other:?}"),
        }
    }

    /// Polls `check` until it holds or `DEADLINE` passes (then fails with `what`).
    pub async fn until(&self, what: &str, mut check: impl FnMut(&Held) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !check(self) {
            assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops every app, as `run` does on its way out.
    pub async fn stop(self) {
        let _ = self.daemon.send(crate::daemon::Shutdown).await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let me = std::process::id();
        for event in self.journal.events() {
            if let EventKind::Spawned { pid, .. } = event.kind
                && parent_of(pid) == Some(me)
                && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    Some(after_name.split_whitespace().map(String::from).collect())
}

/// The parent of `pid` (`None`: no such process).
fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The state letter of `/proc/PID/stat` (`None`: no such process).
pub fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}
