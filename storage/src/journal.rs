//! The `Journal` trait and its sled implementation. Events are keyed by a big-endian `u64`
//! sequence in the `events` tree; the `by_app` tree indexes them by app name so reading one
//! app's history does not scan the others.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use pmx_core::Millis;
use pmx_core::event::{Event, NewEvent};
use pmx_core::protocol::RetentionCut;
use thiserror::Error;

use crate::envs::EnvStore;
use crate::recovery::Mark;
use crate::retention::Retention;
use crate::snapshot::Snapshot;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("cannot open the journal at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("journal write failed: {0}")]
    Write(String),
    #[error("journal read failed: {0}")]
    Read(#[from] sled::Error),
    #[error("journal record {seq} is corrupt: {reason}")]
    Corrupt { seq: u64, reason: String },
}

/// A journal that cannot write: why, how many events it holds in memory, how many it lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    pub error: String,
    pub held: u64,
    pub lost: u64,
}

/// Durable, ordered storage of events. Kept small so the daemon does not depend on sled.
pub trait Journal: Send + Sync {
    /// Appends events in order, giving each its sequence number and time. Not yet durable.
    fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, JournalError>;
    /// Makes every appended event durable.
    fn flush(&self) -> Result<(), JournalError>;
    /// The last sequence number given out (0 for an empty journal).
    fn head(&self) -> u64;
    /// Whether writes fail (see `Resilient`); `None` for a healthy journal.
    fn degraded(&self) -> Option<Degraded> {
        None
    }
    /// Bytes the journal takes on disk (0 where unknown).
    fn size_on_disk(&self) -> u64 {
        0
    }
    /// Every event, oldest first.
    fn all(&self) -> Result<Vec<Event>, JournalError> {
        self.all_after(0)
    }
    /// Every event with a sequence number above `seq`, oldest first.
    fn all_after(&self, seq: u64) -> Result<Vec<Event>, JournalError> {
        self.page_after(None, seq, usize::MAX)
    }
    /// At most `max` events (of one app, or of all) with a sequence number above `seq`,
    /// oldest first: a page of a long history.
    fn page_after(
        &self,
        app: Option<&str>,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Event>, JournalError>;
    /// The sequence number just before the last `n` events (of one app, or of all): where a
    /// reader of the last `n` starts. Reads keys only.
    fn seq_before_last(&self, app: Option<&str>, n: usize) -> Result<u64, JournalError>;
    /// The last `limit` events of one app (all of them without a limit), oldest first.
    fn for_app(&self, app: &str, limit: Option<usize>) -> Result<Vec<Event>, JournalError>;
    /// The events of one app with a sequence number above `seq`, oldest first.
    fn for_app_after(&self, app: &str, seq: u64) -> Result<Vec<Event>, JournalError> {
        self.page_after(Some(app), seq, usize::MAX)
    }
    /// Visits every event above `seq` in order without holding them all in memory. Records
    /// that cannot be decoded are skipped and counted (the count is returned).
    fn replay_after(&self, seq: u64, visit: &mut dyn FnMut(Event)) -> Result<u64, JournalError>;
    /// The latest snapshot of the registry, if one was taken.
    fn snapshot(&self) -> Result<Option<Snapshot>, JournalError>;
    /// Stores a snapshot (in the journal, and mirrored to a file next to it) and makes it
    /// durable. Events it covers may then be compacted away.
    fn store_snapshot(&self, snapshot: &Snapshot) -> Result<(), JournalError>;
    /// The sequence number the latest snapshot covers (0 without one).
    fn snapshot_seq(&self) -> u64;
    /// Applies retention to the events the latest snapshot covers; returns what it removed.
    fn compact(&self, retention: &Retention, now: Millis) -> Result<RetentionCut, JournalError>;
    /// Where retention cut one app's record (or, with `None`, the whole journal's) off.
    fn cut(&self, app: Option<&str>) -> Result<Option<RetentionCut>, JournalError>;
}

pub struct SledJournal {
    pub(crate) path: PathBuf,
    db: sled::Db,
    pub(crate) events: sled::Tree,
    pub(crate) by_app: sled::Tree,
    /// Snapshots and retention cuts.
    pub(crate) meta: sled::Tree,
    /// The apps' captured environments, each stored once.
    pub(crate) envs: EnvStore,
    /// Next sequence number; appends are serialized by this lock so sequence order is
    /// journal order.
    pub(crate) next_seq: Mutex<u64>,
    pub(crate) snapshot_seq: AtomicU64,
    /// Records after each flush how far the journal is durable (see `recovery`).
    mark: Mark,
}

/// sled's default page cache is 1 GiB; a daemon needs a few MiB.
const CACHE_BYTES: u64 = 1024 * 1024;

pub(crate) fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// `app name ++ 0 ++ seq`: all of an app's keys share a prefix, in sequence order.
pub(crate) fn app_key(app: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(app.len() + 9);
    key.extend_from_slice(app.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl SledJournal {
    /// Opens the journal as it is, without the damage checks of `open_checked`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let open_err = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        // sled creates its files with the umask's modes: the directory comes first, 0700.
        let _ = pmx_core::private::create_dir(path);
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            // No background flusher waking up 5 times a second: the daemon flushes commands
            // itself and group-commits asynchronous events when there are some.
            .flush_every_ms(None)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(open_err)?;
        pmx_core::private::restrict(path);
        let events = db.open_tree("events").map_err(open_err)?;
        let by_app = db.open_tree("by_app").map_err(open_err)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        let envs = EnvStore::open(&db).map_err(open_err)?;
        let next_seq = match events.last().map_err(open_err)? {
            Some((key, _)) => seq_of(&key)? + 1,
            None => 1,
        };
        let journal = Self {
            path: path.to_path_buf(),
            db,
            events,
            by_app,
            meta,
            envs,
            next_seq: Mutex::new(next_seq),
            snapshot_seq: AtomicU64::new(0),
            mark: Mark::open(path),
        };
        let snapshot_seq = journal.snapshot()?.map_or(0, |s| s.seq);
        journal.snapshot_seq.store(snapshot_seq, Ordering::Relaxed);
        Ok(journal)
    }

    /// Sequence numbers continue at `next` at least (after records written by `insert_raw`).
    pub(crate) fn continue_from(&self, next: u64) -> Result<(), JournalError> {
        let mut next_seq = self
            .next_seq
            .lock()
            .map_err(|_| JournalError::Write("journal lock poisoned".into()))?;
        *next_seq = (*next_seq).max(next);
        Ok(())
    }

    /// Writes records as they are, keeping their sequence numbers (recovery's salvage).
    pub(crate) fn insert_raw(&self, events: &[Event]) -> Result<(), JournalError> {
        for event in events {
            let bytes =
                serde_json::to_vec(event).map_err(|e| JournalError::Write(e.to_string()))?;
            self.events.insert(event.seq.to_be_bytes(), bytes)?;
            self.by_app.insert(app_key(&event.app, event.seq), &[])?;
        }
        Ok(())
    }

    pub(crate) fn decode(&self, key: &[u8], value: &[u8]) -> Result<Event, JournalError> {
        let seq = seq_of(key)?;
        let mut event = serde_json::from_slice(value).map_err(|e| JournalError::Corrupt {
            seq,
            reason: e.to_string(),
        })?;
        self.envs.resolve(&mut event, value)?;
        Ok(event)
    }
}

pub(crate) fn seq_of(key: &[u8]) -> Result<u64, JournalError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| JournalError::Corrupt {
        seq: 0,
        reason: format!("key of {} bytes", key.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

impl SledJournal {
    /// `Journal::append`, handing the events back (numbered) when they could not be
    /// written, so that `Resilient` holds them without keeping a copy of every append.
    pub(crate) fn append_or_return(
        &self,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>, (JournalError, Vec<Event>)> {
        let mut next_seq = self.next_seq.lock().unwrap_or_else(|p| p.into_inner());
        let at = now_ms();
        let first = *next_seq;
        let mut written: Vec<Event> = (first..)
            .zip(events)
            .map(|(seq, e)| e.stamped(seq, at))
            .collect();
        // Plain inserts: sled's batches and transactions write out its IO buffer each time
        // (about 4,000 events/s); inserts are buffered until the flush. sled recovers a
        // prefix of them, and the index and a stored environment go first: a crash in between
        // leaves an index key without its event, which readers skip, or an environment no
        // event uses, never an event its app or its environment cannot be found for.
        let failed = written
            .iter_mut()
            .find_map(|event| self.insert(event).err());
        if let Some(e) = failed {
            return Err((e, written));
        }
        *next_seq = first + written.len() as u64;
        Ok(written)
    }
}

impl SledJournal {
    fn insert(&self, event: &mut Event) -> Result<(), JournalError> {
        let bytes = self.envs.encode(event)?;
        self.by_app.insert(app_key(&event.app, event.seq), &[])?;
        self.events.insert(event.seq.to_be_bytes(), bytes)?;
        Ok(())
    }
}

impl Journal for SledJournal {
    fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Event>, JournalError> {
        self.append_or_return(events).map_err(|(e, _)| e)
    }

    fn flush(&self) -> Result<(), JournalError> {
        // Read before flushing: everything up to it is durable once the flush returns.
        let head = self.head();
        self.db
            .flush()
            .map_err(|e| JournalError::Write(e.to_string()))?;
        self.mark.record(&self.path, head);
        Ok(())
    }

    fn head(&self) -> u64 {
        self.next_seq.lock().map(|n| *n - 1).unwrap_or(0)
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn page_after(
        &self,
        app: Option<&str>,
        seq: u64,
        max: usize,
    ) -> Result<Vec<Event>, JournalError> {
        let mut out = Vec::new();
        let Some(app) = app else {
            for item in self
                .events
                .range(seq.saturating_add(1).to_be_bytes()..)
                .take(max)
            {
                let (k, v) = item?;
                out.push(self.decode(&k, &v)?);
            }
            return Ok(out);
        };
        let prefix_len = app.len() + 1;
        let start = app_key(app, seq.saturating_add(1));
        let end = app_key(app, u64::MAX);
        for key in self.by_app.range(start..=end).keys().take(max) {
            let key = key?;
            let seq_bytes = &key[prefix_len..];
            if let Some(value) = self.events.get(seq_bytes)? {
                out.push(self.decode(seq_bytes, &value)?);
            }
        }
        Ok(out)
    }

    fn seq_before_last(&self, app: Option<&str>, n: usize) -> Result<u64, JournalError> {
        let key = match app {
            None => self.events.iter().keys().rev().nth(n).transpose()?,
            Some(app) => {
                let mut prefix = app.as_bytes().to_vec();
                prefix.push(0);
                let key = self.by_app.scan_prefix(&prefix).keys().rev().nth(n);
                key.transpose()?.map(|k| k.subslice(prefix.len(), 8))
            }
        };
        key.map_or(Ok(0), |k| seq_of(&k))
    }

    fn for_app(&self, app: &str, limit: Option<usize>) -> Result<Vec<Event>, JournalError> {
        let mut prefix = app.as_bytes().to_vec();
        prefix.push(0);
        let keys = self.by_app.scan_prefix(&prefix).keys().rev();
        let mut out = Vec::new();
        for key in keys.take(limit.unwrap_or(usize::MAX)) {
            let key = key?;
            let seq_bytes = &key[prefix.len()..];
            if let Some(value) = self.events.get(seq_bytes)? {
                out.push(self.decode(seq_bytes, &value)?);
            }
        }
        out.reverse();
        Ok(out)
    }

    fn replay_after(&self, seq: u64, visit: &mut dyn FnMut(Event)) -> Result<u64, JournalError> {
        let start = seq.saturating_add(1).to_be_bytes();
        let mut skipped = 0;
        for item in self.events.range(start..) {
            let (k, v) = item?;
            match self.decode(&k, &v) {
                Ok(event) => visit(event),
                Err(_) => skipped += 1,
            }
        }
        Ok(skipped)
    }

    fn snapshot(&self) -> Result<Option<Snapshot>, JournalError> {
        match self.meta.get(crate::snapshot::KEY)? {
            None => Ok(None),
            Some(bytes) => Snapshot::decode(&bytes).map(Some),
        }
    }

    fn store_snapshot(&self, snapshot: &Snapshot) -> Result<(), JournalError> {
        let bytes = snapshot.encode()?;
        self.meta.insert(crate::snapshot::KEY, bytes.as_slice())?;
        self.flush()?;
        self.snapshot_seq.store(snapshot.seq, Ordering::Relaxed);
        // The mirror outlives damage to the journal's files (see `recovery`).
        crate::snapshot::write_file(&crate::snapshot::file_path(&self.path), &bytes)
    }

    fn snapshot_seq(&self) -> u64 {
        self.snapshot_seq.load(Ordering::Relaxed)
    }

    fn compact(&self, retention: &Retention, now: Millis) -> Result<RetentionCut, JournalError> {
        crate::retention::compact(self, retention, now)
    }

    fn cut(&self, app: Option<&str>) -> Result<Option<RetentionCut>, JournalError> {
        crate::retention::cut(self, app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmx_core::event::{Cause, EventKind};

    fn command(app: &str, verb: &str) -> NewEvent {
        NewEvent {
            app: app.into(),
            instance: None,
            kind: EventKind::Command { verb: verb.into() },
            cause: Cause::User {
                command: verb.into(),
                uid: 0,
            },
        }
    }

    #[test]
    fn appends_in_order_and_indexes_by_app() {
        let dir = tempfile::tempdir().unwrap();
        let j = SledJournal::open(&dir.path().join("j")).unwrap();
        j.append(vec![command("api", "start"), command("web", "start")])
            .unwrap();
        j.append(vec![command("api", "stop"), command("ap", "start")])
            .unwrap();
        j.flush().unwrap();
        let all = j.all().unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let api = j.for_app("api", None).unwrap();
        assert_eq!(api.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3]);
        let last = j.for_app("api", Some(1)).unwrap();
        assert_eq!(last[0].kind.command_verb(), Some("stop"));
        let after = j.for_app_after("api", 1).unwrap();
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
        assert!(j.for_app_after("api", 3).unwrap().is_empty());
        assert_eq!(
            j.for_app_after("ap", 0).unwrap().len(),
            1,
            "prefix apps stay apart"
        );
        let all_after: Vec<u64> = j.all_after(2).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(all_after, vec![3, 4]);
    }

    #[test]
    fn pages_and_the_start_of_the_last_n() {
        let dir = tempfile::tempdir().unwrap();
        let j = SledJournal::open(&dir.path().join("j")).unwrap();
        for _ in 0..5 {
            j.append(vec![command("api", "restart"), command("web", "restart")])
                .unwrap();
        }
        let seqs = |events: Vec<Event>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(j.page_after(None, 3, 2).unwrap()), vec![4, 5]);
        assert_eq!(seqs(j.page_after(Some("web"), 2, 2).unwrap()), vec![4, 6]);
        assert_eq!(j.seq_before_last(None, 3).unwrap(), 7);
        assert_eq!(j.seq_before_last(Some("api"), 2).unwrap(), 5);
        assert_eq!(
            j.seq_before_last(Some("api"), 50).unwrap(),
            0,
            "fewer than n"
        );
        let from = j.seq_before_last(Some("api"), 2).unwrap();
        assert_eq!(
            seqs(j.page_after(Some("api"), from, 10).unwrap()),
            vec![7, 9]
        );
    }

    #[test]
    fn sequence_continues_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        {
            let j = SledJournal::open(&path).unwrap();
            j.append(vec![command("api", "start")]).unwrap();
            j.flush().unwrap();
        }
        // sled's last references can outlive the drop by a moment (a pool thread finishing
        // a write holds the files, and their lock, until it ends): reopened in the same
        // process, the lock comes free shortly. (The daemon's own reopen, after a failure,
        // is retried on a timer.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let j = loop {
            match SledJournal::open(&path) {
                Ok(j) => break j,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let e = j.append(vec![command("api", "stop")]).unwrap();
        assert_eq!(e[0].seq, 2);
        assert_eq!(j.all().unwrap().len(), 2);
    }
}
