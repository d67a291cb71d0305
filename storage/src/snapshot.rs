//! Snapshots of the registry: the fold of every event up to `seq`. Boot replays only the
//! events after the latest snapshot, and retention may remove the events a snapshot covers.
//! Each snapshot is mirrored to a file beside the journal, so a damaged journal can still be
//! brought back to the last snapshot's apps.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::journal::{Journal, JournalError};
use crate::registry::Registry;

/// Key of the latest snapshot in the `meta` tree.
pub(crate) const KEY: &[u8] = b"snapshot";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last event folded into `registry`.
    pub seq: u64,
    pub registry: Registry,
}

impl Snapshot {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, JournalError> {
        serde_json::to_vec(self).map_err(|e| JournalError::Write(e.to_string()))
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, JournalError> {
        serde_json::from_slice(bytes).map_err(|e| JournalError::Corrupt {
            seq: 0,
            reason: format!("snapshot: {e}"),
        })
    }
}

/// The registry as of the journal's head: the latest snapshot plus every event after it.
/// Returns it with the number of undecodable records skipped.
pub fn load_registry(journal: &dyn Journal) -> Result<(Snapshot, u64), JournalError> {
    let mut snapshot = journal.snapshot()?.unwrap_or(Snapshot {
        seq: 0,
        registry: Registry::default(),
    });
    let from = snapshot.seq;
    let skipped = journal.replay_after(from, &mut |event| {
        snapshot.registry.apply(&event);
        snapshot.seq = snapshot.seq.max(event.seq);
    })?;
    Ok((snapshot, skipped))
}

/// Folds the events since the latest snapshot into a new one and stores it, unless nothing
/// happened since. Returns the sequence number it covers.
pub fn take_snapshot(journal: &dyn Journal) -> Result<u64, JournalError> {
    let (snapshot, _) = load_registry(journal)?;
    if snapshot.seq > journal.snapshot_seq() {
        journal.store_snapshot(&snapshot)?;
    }
    Ok(snapshot.seq)
}

/// `journal` → `journal.snapshot` beside it.
pub(crate) fn file_path(journal: &Path) -> PathBuf {
    sibling(journal, "snapshot")
}

pub(crate) fn sibling(journal: &Path, suffix: &str) -> PathBuf {
    let mut name = journal.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    journal.with_file_name(name)
}

/// Replaces the file atomically: a crash leaves the old snapshot or the new one.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    pmx_core::private::replace(path, bytes)
        .map_err(|e| JournalError::Write(format!("{}: {e}", path.display())))
}

pub(crate) fn read_file(path: &Path) -> Option<Snapshot> {
    let bytes = fs::read(path).ok()?;
    Snapshot::decode(&bytes).ok()
}
