//! The journal's housekeeping, on its own thread so it never delays a command: a snapshot of
//! the registry whenever `SNAPSHOT_EVERY` events piled up since the last one (boot then
//! replays only those), each followed by retention, which also runs once at start and then
//! every `RETENTION_EVERY`. So a crash loop grows the journal past its retention by at most
//! about `SNAPSHOT_EVERY` events. It sleeps in between; nothing wakes it while the daemon is
//! idle but the hourly pass.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_storage::{Journal, Retention, Snapshot, take_snapshot};

use crate::clock::now_ms;

/// Events since the last snapshot that make the group commit ask for a new one.
pub const SNAPSHOT_EVERY: u64 = 10_000;
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

pub enum Wake {
    /// Enough events piled up: take a snapshot.
    Snapshot,
    /// The daemon is stopping.
    Stop,
}

pub struct Compactor {
    wake: Sender<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    /// `booted`: the registry the daemon folded at boot, stored as the first snapshot.
    pub fn start(journal: Arc<dyn Journal>, retention: Retention, booted: Snapshot) -> Self {
        let (wake, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("pmx-compactor".into())
            .spawn(move || {
                if booted.seq > journal.snapshot_seq()
                    && let Err(e) = journal.store_snapshot(&booted)
                {
                    crate::say!("pmx: journal snapshot failed: {e}");
                }
                run(journal.as_ref(), retention, rx)
            })
            .map_err(|e| crate::say!("pmx: no journal housekeeping: {e}"))
            .ok();
        Self { wake, thread }
    }

    pub fn waker(&self) -> Sender<Wake> {
        self.wake.clone()
    }

    pub fn stop(mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(journal: &dyn Journal, retention: Retention, wake: Receiver<Wake>) {
    let mut due = Instant::now();
    loop {
        if Instant::now() >= due {
            apply_retention(journal, &retention);
            due = Instant::now() + RETENTION_EVERY;
        }
        match wake.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Ok(Wake::Snapshot) => {
                apply_retention(journal, &retention);
                // Requests that piled up meanwhile are answered by this snapshot.
                loop {
                    match wake.try_recv() {
                        Ok(Wake::Snapshot) => {}
                        Ok(Wake::Stop) | Err(TryRecvError::Disconnected) => return,
                        Err(TryRecvError::Empty) => break,
                    }
                }
            }
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

fn snapshot(journal: &dyn Journal) {
    // A degraded journal takes no snapshot; it says so once, in the group commit.
    if journal.degraded().is_some() {
        return;
    }
    if let Err(e) = take_snapshot(journal) {
        crate::say!("pmx: journal snapshot failed: {e}");
    }
}

/// A snapshot first: retention only removes events a snapshot covers.
fn apply_retention(journal: &dyn Journal, retention: &Retention) {
    snapshot(journal);
    if journal.degraded().is_some() {
        return;
    }
    let cut = match journal.compact(retention, now_ms()) {
        Ok(cut) => cut,
        Err(e) => return crate::say!("pmx: journal retention failed: {e}"),
    };
    if cut.removed == 0 {
        return;
    }
    let compacted = NewEvent {
        app: String::new(),
        instance: None,
        kind: EventKind::Compacted {
            removed: cut.removed,
            through_seq: cut.through_seq,
        },
        cause: Cause::Policy,
    };
    if let Err(e) = journal
        .append(vec![compacted])
        .and_then(|_| journal.flush())
    {
        crate::say!("pmx: journal retention failed: {e}");
    }
}
