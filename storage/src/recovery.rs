//! Opening a journal that may be damaged. sled, given truncated or overwritten files, may
//! open them as an empty database (rewriting them as it goes) or panic. So after every flush
//! the journal records a mark beside it: how far it is durable, and the size and mtime of its
//! data file. At open:
//! - files that changed since the mark (a crash between a write and its flush, or damage) are
//!   copied first, so the copy is what the files were before sled touched them;
//! - sled failing, panicking, or ending before the marked head means damage: the files (or the
//!   untouched copy) are kept as `journal.damaged-<ms>`, a fresh journal is started with the
//!   events that could still be read and the registry of the last snapshot (mirrored in
//!   `journal.snapshot`), and the caller journals what was lost.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use pmx_core::Millis;
use pmx_core::event::Event;

use crate::journal::{Journal, JournalError, SledJournal};
use crate::snapshot;

/// What `open_checked` found and did about a damaged journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub reason: String,
    pub damaged_copy: PathBuf,
    pub salvaged: u64,
    pub salvaged_through: u64,
    pub expected_head: u64,
    pub snapshot_seq: Option<u64>,
}

/// The mark file: `head len mtime_ns`, fixed width so each write replaces the whole record.
pub(crate) struct Mark {
    file: Option<fs::File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MarkRecord {
    head: u64,
    len: u64,
    mtime_ns: i128,
}

fn data_file(journal: &Path) -> PathBuf {
    journal.join("db")
}

fn stat(journal: &Path) -> Option<(u64, i128)> {
    let meta = fs::metadata(data_file(journal)).ok()?;
    Some((
        meta.len(),
        meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
    ))
}

impl Mark {
    pub(crate) fn open(journal: &Path) -> Self {
        let file = pmx_core::private::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(snapshot::sibling(journal, "mark"))
            .ok();
        Self { file }
    }

    /// Best effort: a mark that cannot be written only weakens damage detection.
    pub(crate) fn record(&self, journal: &Path, head: u64) {
        let (Some(file), Some((len, mtime_ns))) = (&self.file, stat(journal)) else {
            return;
        };
        let line = format!("{head:020} {len:020} {mtime_ns:040}\n");
        let _ = file.write_at(line.as_bytes(), 0);
    }

    fn read(journal: &Path) -> Option<MarkRecord> {
        let text = fs::read_to_string(snapshot::sibling(journal, "mark")).ok()?;
        let mut fields = text.split_whitespace();
        Some(MarkRecord {
            head: fields.next()?.parse().ok()?,
            len: fields.next()?.parse().ok()?,
            mtime_ns: fields.next()?.parse().ok()?,
        })
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Opens sled, turning a panic inside it into an error. A lock still held by a handle being
/// dropped in this process (sled's threads let go a moment later) is waited for, not taken
/// for damage.
fn open_guarded(path: &Path) -> Result<SledJournal, String> {
    let mut tries = 0;
    loop {
        match catch_unwind(AssertUnwindSafe(|| SledJournal::open(path))) {
            Ok(Ok(journal)) => return Ok(journal),
            Ok(Err(e)) if e.to_string().contains("could not acquire lock") && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("the storage engine failed while reading it".into()),
        }
    }
}

/// Every event that can still be read, oldest first.
fn salvage(journal: &SledJournal) -> Vec<Event> {
    let mut events = Vec::new();
    // A read that fails part way keeps what came before the failure.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        journal.replay_after(0, &mut |event| events.push(event))
    }));
    events
}

/// Opens the journal at `path`, recovering from damage as the module describes.
pub fn open_checked(
    path: &Path,
    now: Millis,
) -> Result<(SledJournal, Option<Recovery>), JournalError> {
    let mark = Mark::read(path);
    let precheck = snapshot::sibling(path, "precheck");
    let _ = fs::remove_dir_all(&precheck);
    let changed = mark.is_some_and(|m| stat(path) != Some((m.len, m.mtime_ns)));
    let copied = changed && copy_dir(path, &precheck).is_ok();
    let expected_head = mark.map_or(0, |m| m.head);
    let opened = open_guarded(path);
    let problem = match &opened {
        Ok(journal) if journal.head() < expected_head => Some(format!(
            "it ends at event {} but events up to {expected_head} were written",
            journal.head()
        )),
        Ok(_) => None,
        Err(e) => Some(e.clone()),
    };
    let Some(reason) = problem else {
        let _ = fs::remove_dir_all(&precheck);
        return opened.map(|j| (j, None)).map_err(JournalError::Write);
    };
    let salvaged = opened.as_ref().map(salvage).unwrap_or_default();
    drop(opened);
    let damaged_copy = snapshot::sibling(path, &format!("damaged-{now}"));
    let keep = || -> std::io::Result<()> {
        if copied {
            fs::rename(&precheck, &damaged_copy)?;
            fs::remove_dir_all(path)
        } else {
            fs::rename(path, &damaged_copy)
        }
    };
    keep()
        .map_err(|e| JournalError::Write(format!("cannot set the damaged journal aside: {e}")))?;
    let journal = SledJournal::open(path)?;
    journal.insert_raw(&salvaged)?;
    let salvaged_through = salvaged.last().map_or(0, |e| e.seq);
    let from_file = snapshot::read_file(&snapshot::file_path(path));
    let snapshot_seq = from_file.as_ref().map(|s| s.seq);
    // Without a snapshot file, the salvaged events alone are the registry.
    if let Some(snapshot) = &from_file {
        journal.store_snapshot(snapshot)?;
    }
    let next = expected_head
        .max(salvaged_through)
        .max(snapshot_seq.unwrap_or(0))
        + 1;
    if let Ok(mut next_seq) = journal.next_seq.lock() {
        *next_seq = next;
    }
    journal.flush()?;
    Ok((
        journal,
        Some(Recovery {
            reason,
            damaged_copy,
            salvaged: salvaged.len() as u64,
            salvaged_through,
            expected_head,
            snapshot_seq,
        }),
    ))
}
