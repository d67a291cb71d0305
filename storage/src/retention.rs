//! Retention: the journal does not grow forever. Events older than `max_age_ms`, and an
//! app's events beyond its newest `max_events_per_app`, are removed — only events a snapshot
//! already covers, so the registry never loses what they built. Each app remembers where its
//! record was cut, and `pmx history` says so.

use std::collections::BTreeMap;

use pmx_core::Millis;
use pmx_core::protocol::RetentionCut;
use serde::Deserialize;

use crate::journal::{JournalError, SledJournal, app_key, seq_of};

/// How much history the journal keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age_ms: Option<Millis>,
    pub max_events_per_app: Option<usize>,
}

pub const DEFAULT_RETENTION_DAYS: u64 = 90;
pub const DEFAULT_EVENTS_PER_APP: usize = 10_000;
const DAY_MS: Millis = 24 * 3600 * 1000;

impl Default for Retention {
    fn default() -> Self {
        Self::new(DEFAULT_RETENTION_DAYS, DEFAULT_EVENTS_PER_APP)
    }
}

impl Retention {
    /// 0 means no limit.
    pub fn new(days: u64, events_per_app: usize) -> Self {
        Self {
            max_age_ms: (days > 0).then(|| days.saturating_mul(DAY_MS)),
            max_events_per_app: (events_per_app > 0).then_some(events_per_app),
        }
    }
}

/// The fields compaction needs from a record, without decoding the rest.
#[derive(Deserialize)]
struct Stamp {
    at: Millis,
    app: String,
}

const ALL_KEY: &[u8] = b"cut-all";

fn cut_key(app: &str) -> Vec<u8> {
    let mut key = b"cut\0".to_vec();
    key.extend_from_slice(app.as_bytes());
    key
}

pub(crate) fn cut(
    journal: &SledJournal,
    app: Option<&str>,
) -> Result<Option<RetentionCut>, JournalError> {
    let key = app.map_or_else(|| ALL_KEY.to_vec(), cut_key);
    Ok(journal
        .meta
        .get(key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

fn stamp(journal: &SledJournal, seq: u64) -> Result<Option<Stamp>, JournalError> {
    Ok(journal
        .events
        .get(seq.to_be_bytes())?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

pub(crate) fn compact(
    journal: &SledJournal,
    retention: &Retention,
    now: Millis,
) -> Result<RetentionCut, JournalError> {
    let upto = journal
        .snapshot_seq
        .load(std::sync::atomic::Ordering::Relaxed);
    // seq → app of every event to remove.
    let mut doomed: BTreeMap<u64, String> = BTreeMap::new();
    if let Some(age) = retention.max_age_ms {
        let cutoff = now.saturating_sub(age);
        for item in journal.events.range(..=upto.to_be_bytes()) {
            let (key, value) = item?;
            let Ok(stamp) = serde_json::from_slice::<Stamp>(&value) else {
                continue;
            };
            if stamp.at >= cutoff {
                break;
            }
            doomed.insert(seq_of(&key)?, stamp.app);
        }
    }
    if let Some(max) = retention.max_events_per_app {
        for (app, count) in counts_by_app(journal)? {
            let mut prefix = app.as_bytes().to_vec();
            prefix.push(0);
            let oldest = journal.by_app.scan_prefix(&prefix).keys();
            for key in oldest.take(count.saturating_sub(max)) {
                let seq = seq_of(&key?[prefix.len()..])?;
                if seq <= upto {
                    doomed.insert(seq, app.clone());
                }
            }
        }
    }
    remove(journal, &doomed)
}

/// How many index keys each app has (one pass over the index, a counter per app).
fn counts_by_app(journal: &SledJournal) -> Result<Vec<(String, usize)>, JournalError> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for key in journal.by_app.iter().keys() {
        let key = key?;
        let Some(app) = key.len().checked_sub(9).map(|n| &key[..n]) else {
            continue;
        };
        match counts.last_mut() {
            Some((last, n)) if last.as_bytes() == app => *n += 1,
            _ => counts.push((String::from_utf8_lossy(app).into_owned(), 1)),
        }
    }
    Ok(counts)
}

/// Removes the events, then their index keys (a crash in between leaves index keys without
/// events, which readers skip and the next compaction removes), then records the cuts.
fn remove(
    journal: &SledJournal,
    doomed: &BTreeMap<u64, String>,
) -> Result<RetentionCut, JournalError> {
    let mut total = RetentionCut::default();
    let Some((&newest, _)) = doomed.last_key_value() else {
        return Ok(total);
    };
    let mut cuts: BTreeMap<&str, RetentionCut> = BTreeMap::new();
    for (&seq, app) in doomed {
        let cut = cuts.entry(app).or_default();
        cut.removed += 1;
        cut.through_seq = seq;
    }
    // The time of each app's newest removed event, read before it goes.
    for cut in cuts.values_mut() {
        cut.through_at = stamp(journal, cut.through_seq)?.map_or(0, |s| s.at);
    }
    total.through_at = stamp(journal, newest)?.map_or(0, |s| s.at);
    let mut events = sled::Batch::default();
    let mut index = sled::Batch::default();
    for (&seq, app) in doomed {
        events.remove(&seq.to_be_bytes());
        index.remove(app_key(app, seq));
    }
    journal.events.apply_batch(events)?;
    journal.by_app.apply_batch(index)?;
    // After the records: a crash in between keeps an environment too long, never too short.
    journal.envs.release(&doomed.keys().copied().collect())?;
    total.removed = doomed.len() as u64;
    total.through_seq = newest;
    for (app, cut) in cuts {
        merge_cut(journal, &cut_key(app), cut)?;
    }
    merge_cut(journal, ALL_KEY, total)?;
    Ok(total)
}

fn merge_cut(journal: &SledJournal, key: &[u8], cut: RetentionCut) -> Result<(), JournalError> {
    let old: RetentionCut = journal
        .meta
        .get(key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let merged = RetentionCut {
        removed: old.removed + cut.removed,
        through_seq: old.through_seq.max(cut.through_seq),
        through_at: old.through_at.max(cut.through_at),
    };
    let bytes = serde_json::to_vec(&merged).map_err(|e| JournalError::Write(e.to_string()))?;
    journal.meta.insert(key, bytes)?;
    Ok(())
}
