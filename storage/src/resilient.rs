//! A journal that outlives write errors. sled keeps its first write error for good (a full
//! disk breaks every later insert and flush), and a daemon whose journal refuses writes
//! cannot stop the app that fills the disk. So `Resilient` wraps the sled journal:
//! - every event appended since the last flush that worked is kept aside (they are not on
//!   disk yet);
//! - when a write or a flush fails, the journal is *degraded*: appends still succeed, their
//!   events (with the unflushed ones) are held in memory, up to `HELD_MAX`, the rest are
//!   counted as lost; readers see the held events after the stored ones;
//! - at most every `RETRY_EVERY`, a flush closes the failed store, opens the files again,
//!   writes the held events with their sequence numbers and a `JournalResumed` event saying
//!   how many were kept and lost, and the journal is healthy again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use pmx_core::Millis;
use pmx_core::event::{Cause, Event, EventKind, NewEvent};
use pmx_core::protocol::RetentionCut;

use crate::journal::{Degraded, Journal, JournalError, SledJournal, now_ms};
use crate::retention::Retention;
use crate::snapshot::Snapshot;

/// Events held in memory while the journal cannot be written; later ones are lost (and
/// counted). A few MiB at most.
pub const HELD_MAX: usize = 10_000;

/// How often a degraded journal tries to reopen its files.
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct Resilient {
    path: PathBuf,
    /// `None` after a failed store was closed and could not be opened again.
    store: RwLock<Option<Arc<SledJournal>>>,
    state: Mutex<State>,
    /// Mirrors `state.failure.is_some()` for readers that do not take the lock.
    degraded: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Appended since the last flush that worked, oldest first.
    unflushed: Vec<Event>,
    /// Unflushed events that did not fit `unflushed`: lost if the next flush fails.
    unflushed_dropped: u64,
    failure: Option<Failure>,
}

struct Failure {
    started: Instant,
    error: String,
    /// Events not written yet, oldest first, with their sequence numbers.
    held: Vec<Event>,
    lost: u64,
    next_seq: u64,
    last_try: Instant,
}

impl Resilient {
    pub fn new(journal: SledJournal) -> Self {
        Self {
            path: journal.path.clone(),
            store: RwLock::new(Some(Arc::new(journal))),
            state: Mutex::new(State::default()),
            degraded: AtomicBool::new(false),
        }
    }

    fn store(&self) -> Option<Arc<SledJournal>> {
        self.store.read().ok()?.clone()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, JournalError> {
        self.state
            .lock()
            .map_err(|_| JournalError::Write("journal lock poisoned".into()))
    }

    /// Goes degraded after `error`: everything not known to be on disk is held.
    fn fail(&self, state: &mut State, error: &JournalError) {
        let next_seq = match (&state.failure, self.store()) {
            (Some(f), _) => f.next_seq,
            (None, Some(store)) => store.head() + 1,
            (None, None) => 1,
        };
        let mut held = std::mem::take(&mut state.unflushed);
        let next_seq = held.last().map_or(next_seq, |e| next_seq.max(e.seq + 1));
        let beyond = held.len().saturating_sub(HELD_MAX) as u64;
        held.truncate(HELD_MAX);
        let lost = std::mem::take(&mut state.unflushed_dropped) + beyond;
        state.failure.get_or_insert_with(|| Failure {
            started: Instant::now(),
            error: error.to_string(),
            held,
            lost,
            next_seq,
            last_try: Instant::now(),
        });
        self.degraded.store(true, Ordering::Relaxed);
    }

    /// Tries to resume a degraded journal now, without waiting for `RETRY_EVERY` (the
    /// daemon's last flush at exit).
    pub fn resume_now(&self) -> bool {
        match self.state.lock() {
            Ok(mut state) => self.try_resume(&mut state, true),
            Err(_) => false,
        }
    }

    /// Closes the failed store and opens its files again; writes what was held. `false`
    /// while that cannot be done yet.
    fn try_resume(&self, state: &mut State, now: bool) -> bool {
        let Some(failure) = &mut state.failure else {
            return true;
        };
        if !now && failure.last_try.elapsed() < RETRY_EVERY {
            return false;
        }
        failure.last_try = Instant::now();
        let Ok(mut slot) = self.store.write() else {
            return false;
        };
        // A reader still holds the failed store (and with it sled's lock on the files).
        if slot.as_ref().is_some_and(|s| Arc::strong_count(s) > 1) {
            return false;
        }
        slot.take();
        let store = match SledJournal::open(&self.path) {
            Ok(store) => store,
            Err(e) => {
                failure.error = e.to_string();
                return false;
            }
        };
        let resumed = NewEvent {
            app: String::new(),
            instance: None,
            kind: EventKind::JournalResumed {
                failed_ms: failure.started.elapsed().as_millis() as u64,
                error: failure.error.clone(),
                kept: failure.held.len() as u64,
                lost: failure.lost,
            },
            cause: Cause::Process,
        };
        let written = store
            .insert_raw(&failure.held)
            .and_then(|()| store.continue_from(failure.next_seq))
            .and_then(|()| store.append(vec![resumed]))
            .and_then(|_| store.flush());
        match written {
            Ok(()) => {
                *slot = Some(Arc::new(store));
                state.failure = None;
                self.degraded.store(false, Ordering::Relaxed);
                true
            }
            Err(e) => {
                // The reopened store has its own error for good now: close it too.
                failure.error = e.to_string();
                false
            }
        }
    }

    /// Gives `events` the degraded journal's next sequence numbers and holds them (or
    /// counts them lost).
    fn hold(state: &mut State, mut events: Vec<Event>) -> Vec<Event> {
        let Some(failure) = &mut state.failure else {
            return events;
        };
        for event in &mut events {
            event.seq = failure.next_seq;
            failure.next_seq += 1;
            if failure.held.len() < HELD_MAX {
                failure.held.push(event.clone());
            } else {
                failure.lost += 1;
            }
        }
        events
    }

    /// Held events (of `app`, or all) above `seq`, for readers of a degraded journal.
    fn held_after(&self, app: Option<&str>, seq: u64) -> Vec<Event> {
        if !self.degraded.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let Ok(state) = self.state.lock() else {
            return Vec::new();
        };
        let Some(failure) = &state.failure else {
            return Vec::new();
        };
        failure
            .held
            .iter()
            .filter(|e| e.seq > seq && app.is_none_or(|a| e.app == a))
            .cloned()
            .collect()
    }

    /// Reads the store; a degraded journal whose store fails to read reads as empty there.
    fn read<T: Default>(
        &self,
        read: impl FnOnce(&SledJournal) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        match self.store() {
            Some(store) => match read(&store) {
                Err(_) if self.degraded.load(Ordering::Relaxed) => Ok(T::default()),
                other => other,
            },
            None => Ok(T::default()),
        }
    }
}

impl Journal for Resilient {
    fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, JournalError> {
        let mut state = self.state()?;
        let store = self.store().filter(|_| state.failure.is_none());
        let refused = match store {
            Some(store) => match store.append_or_return(events) {
                Ok(written) => {
                    for event in &written {
                        if state.unflushed.len() < HELD_MAX {
                            state.unflushed.push(event.clone());
                        } else {
                            state.unflushed_dropped += 1;
                        }
                    }
                    return Ok(written);
                }
                Err((e, refused)) => {
                    self.fail(&mut state, &e);
                    refused
                }
            },
            None => {
                if state.failure.is_none() {
                    let closed = JournalError::Write("the journal is closed".into());
                    self.fail(&mut state, &closed);
                }
                let at = now_ms();
                events.into_iter().map(|e| e.stamped(0, at)).collect()
            }
        };
        Ok(Self::hold(&mut state, refused))
    }

    /// Never fails for a full disk: a degraded journal tries to resume, and otherwise keeps
    /// holding (the daemon acts on; its log and `/metrics` say the journal is degraded).
    fn flush(&self) -> Result<(), JournalError> {
        let flushed_upto = {
            let mut state = self.state()?;
            if state.failure.is_some() {
                self.try_resume(&mut state, false);
                return Ok(());
            }
            state.unflushed.len()
        };
        let flushed = match self.store() {
            Some(store) => store.flush(),
            None => Err(JournalError::Write("the journal is closed".into())),
        };
        let mut state = self.state()?;
        match flushed {
            Ok(()) if state.failure.is_none() => {
                let upto = flushed_upto.min(state.unflushed.len());
                state.unflushed.drain(..upto);
                if state.unflushed.is_empty() {
                    state.unflushed_dropped = 0;
                    // A burst (500 apps registered at once) leaves no big buffer behind.
                    state.unflushed.shrink_to(64);
                }
            }
            Ok(()) => {}
            Err(e) => self.fail(&mut state, &e),
        }
        Ok(())
    }

    fn head(&self) -> u64 {
        if self.degraded.load(Ordering::Relaxed)
            && let Ok(state) = self.state.lock()
            && let Some(failure) = &state.failure
        {
            return failure.next_seq - 1;
        }
        self.store().map_or(0, |s| s.head())
    }

    fn size_on_disk(&self) -> u64 {
        self.store().map_or(0, |s| s.size_on_disk())
    }

    fn degraded(&self) -> Option<Degraded> {
        if !self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        let state = self.state.lock().ok()?;
        let f = state.failure.as_ref()?;
        Some(Degraded {
            error: f.error.clone(),
            held: f.held.len() as u64,
            lost: f.lost,
        })
    }

    fn page_after(
        &self,
        app: Option<&str>,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Event>, JournalError> {
        let mut out = self.read(|s| s.page_after(app, seq, max))?;
        let last = out.last().map_or(seq, |e| e.seq);
        out.extend(self.held_after(app, last));
        out.truncate(max);
        Ok(out)
    }

    fn seq_before_last(&self, app: Option<&str>, n: usize) -> Result<u64, JournalError> {
        self.read(|s| s.seq_before_last(app, n))
    }

    fn for_app(&self, app: &str, limit: Option<usize>) -> Result<Vec<Event>, JournalError> {
        let mut out = self.read(|s| s.for_app(app, limit))?;
        let last = out.last().map_or(0, |e| e.seq);
        out.extend(self.held_after(Some(app), last));
        if let Some(limit) = limit {
            let extra = out.len().saturating_sub(limit);
            out.drain(..extra);
        }
        Ok(out)
    }

    fn replay_after(&self, seq: u64, visit: &mut dyn FnMut(Event)) -> Result<u64, JournalError> {
        let mut last = seq;
        let skipped = self.read(|s| {
            s.replay_after(seq, &mut |e| {
                last = e.seq;
                visit(e)
            })
        })?;
        self.held_after(None, last).into_iter().for_each(visit);
        Ok(skipped)
    }

    fn snapshot(&self) -> Result<Option<Snapshot>, JournalError> {
        self.read(|s| s.snapshot())
    }

    fn store_snapshot(&self, snapshot: &Snapshot) -> Result<(), JournalError> {
        match self.store() {
            Some(store) if !self.degraded.load(Ordering::Relaxed) => store.store_snapshot(snapshot),
            _ => Err(JournalError::Write("the journal is degraded".into())),
        }
    }

    fn snapshot_seq(&self) -> u64 {
        self.store().map_or(0, |s| s.snapshot_seq())
    }

    fn compact(&self, retention: &Retention, now: Millis) -> Result<RetentionCut, JournalError> {
        match self.store() {
            Some(store) if !self.degraded.load(Ordering::Relaxed) => store.compact(retention, now),
            _ => Err(JournalError::Write("the journal is degraded".into())),
        }
    }

    fn cut(&self, app: Option<&str>) -> Result<Option<RetentionCut>, JournalError> {
        self.read(|s| s.cut(app))
    }
}
