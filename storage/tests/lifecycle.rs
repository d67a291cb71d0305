//! Snapshots, retention and recovery of damaged files, through the public API.

use std::fs;
use std::path::Path;

use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::spec::AppSpec;
use pmx_storage::{
    Desired, Journal, Retention, SledJournal, load_registry, open_checked, take_snapshot,
};

fn created(app: &str, id: u32) -> NewEvent {
    let spec = AppSpec {
        name: app.into(),
        script: "/bin/true".into(),
        ..AppSpec::default()
    };
    NewEvent {
        app: app.into(),
        instance: None,
        kind: EventKind::AppCreated {
            spec: Box::new(spec),
            ids: vec![id],
        },
        cause: Cause::Boot,
    }
}

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

/// `api` and `web` registered and started, then `restarts` restarts of `api`.
fn fill(journal: &SledJournal, restarts: usize) {
    journal
        .append(vec![
            created("api", 0),
            command("api", "start"),
            created("web", 1),
            command("web", "start"),
            command("web", "stop"),
        ])
        .unwrap();
    for _ in 0..restarts {
        journal.append(vec![command("api", "restart")]).unwrap();
    }
    journal.flush().unwrap();
}

#[test]
fn registry_from_a_snapshot_equals_the_full_fold() {
    let dir = tempfile::tempdir().unwrap();
    let journal = SledJournal::open(&dir.path().join("journal")).unwrap();
    fill(&journal, 10);
    let (whole, _) = load_registry(&journal).unwrap();
    assert_eq!(take_snapshot(&journal).unwrap(), journal.head());
    journal.append(vec![created("late", 2)]).unwrap();
    let (resumed, skipped) = load_registry(&journal).unwrap();
    assert_eq!(skipped, 0);
    assert_eq!(resumed.seq, journal.head());
    assert!(resumed.registry.apps.contains_key("late"));
    let mut expected = whole.registry.clone();
    expected
        .apps
        .insert("late".into(), resumed.registry.apps["late"].clone());
    expected.next_id = 3;
    assert_eq!(resumed.registry, expected);
    assert!(
        dir.path().join("journal.snapshot").exists(),
        "mirrored to a file"
    );
}

#[test]
fn retention_keeps_the_newest_events_per_app_and_says_where_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let journal = SledJournal::open(&dir.path().join("journal")).unwrap();
    fill(&journal, 100);
    let before = load_registry(&journal).unwrap().0.registry;
    let retention = Retention::new(0, 20);
    // Without a snapshot nothing may go: the registry would lose what those events built.
    assert_eq!(journal.compact(&retention, 0).unwrap().removed, 0);
    take_snapshot(&journal).unwrap();
    let cut = journal.compact(&retention, 0).unwrap();
    let api = journal.for_app("api", None).unwrap();
    assert_eq!(api.len(), 20);
    assert_eq!(cut.removed, 102 - 20, "api had 102 events");
    assert_eq!(
        journal.for_app("web", None).unwrap().len(),
        3,
        "under the limit"
    );
    let api_cut = journal.cut(Some("api")).unwrap().unwrap();
    assert_eq!(api_cut.through_seq + 1, api[0].seq);
    assert!(journal.cut(Some("web")).unwrap().is_none());
    assert_eq!(journal.cut(None).unwrap().unwrap().removed, 82);
    // Events appended after the snapshot are not touched, however many.
    let covered = journal.snapshot_seq();
    for _ in 0..30 {
        journal.append(vec![command("api", "restart")]).unwrap();
    }
    journal.compact(&retention, 0).unwrap();
    let api = journal.for_app("api", None).unwrap();
    assert_eq!(api.len(), 30);
    assert!(api.iter().all(|e| e.seq > covered));
    let after = load_registry(&journal).unwrap().0.registry;
    assert_eq!(after.apps, before.apps, "the registry survives compaction");
    assert_eq!(after.apps["web"].desired, Desired::Stopped);
}

#[test]
fn retention_removes_events_older_than_the_age_limit() {
    let dir = tempfile::tempdir().unwrap();
    let journal = SledJournal::open(&dir.path().join("journal")).unwrap();
    fill(&journal, 3);
    take_snapshot(&journal).unwrap();
    let now = journal.all().unwrap()[0].at;
    let retention = Retention::new(1, 0);
    assert_eq!(journal.compact(&retention, now).unwrap().removed, 0);
    let later = now + 2 * 24 * 3600 * 1000;
    let cut = journal.compact(&retention, later).unwrap();
    assert_eq!(cut.removed, 8);
    assert!(journal.all().unwrap().is_empty());
    let registry = load_registry(&journal).unwrap().0.registry;
    assert_eq!(registry.apps.len(), 2);
}

fn reopen(path: &Path) -> (SledJournal, Option<pmx_storage::Recovery>) {
    open_checked(path, 1234).unwrap()
}

#[test]
fn an_intact_journal_opens_without_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let journal = SledJournal::open(&path).unwrap();
        fill(&journal, 5);
    }
    let (journal, recovery) = reopen(&path);
    assert_eq!(recovery, None);
    assert_eq!(journal.head(), 10);
    assert!(!dir.path().join("journal.precheck").exists());
}

#[test]
fn a_truncated_journal_is_kept_aside_and_the_snapshot_brings_the_apps_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    {
        let journal = SledJournal::open(&path).unwrap();
        fill(&journal, 2000);
        take_snapshot(&journal).unwrap();
        journal.append(vec![command("api", "stop")]).unwrap();
        journal.flush().unwrap();
    }
    let data = path.join("db");
    let len = fs::metadata(&data).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let (journal, recovery) = reopen(&path);
    let recovery = recovery.expect("damage is detected");
    assert_eq!(recovery.expected_head, 2006);
    assert_eq!(recovery.snapshot_seq, Some(2005));
    assert!(recovery.damaged_copy.ends_with("journal.damaged-1234"));
    let kept = recovery.damaged_copy.join("db");
    assert_eq!(
        fs::metadata(kept).unwrap().len(),
        len / 3,
        "the copy is untouched"
    );
    let registry = load_registry(&journal).unwrap().0.registry;
    assert_eq!(registry.apps.len(), 2);
    assert_eq!(registry.apps["api"].desired, Desired::Running);
    let next = journal.append(vec![command("api", "stop")]).unwrap();
    assert_eq!(
        next[0].seq, 2007,
        "sequence numbers are never given out twice"
    );
}

#[test]
fn overwritten_bytes_never_crash_the_open() {
    for offset_share in [0u64, 1, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        {
            let journal = SledJournal::open(&path).unwrap();
            fill(&journal, 3000);
            take_snapshot(&journal).unwrap();
        }
        let data = path.join("db");
        let len = fs::metadata(&data).unwrap().len();
        let mut bytes = fs::read(&data).unwrap();
        let at = (len * offset_share / 4) as usize;
        for (i, b) in bytes[at..(at + 8192).min(len as usize)]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(31) ^ 0x5a;
        }
        fs::write(&data, bytes).unwrap();
        let (journal, _) = reopen(&path);
        let registry = load_registry(&journal).unwrap().0.registry;
        assert_eq!(registry.apps.len(), 2, "offset {at}: the apps come back");
    }
}
