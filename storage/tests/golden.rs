//! A journal of every format pmx has written (`fixtures/journal-0.1.0/`: format 1, written by
//! pmx 0.1.0; `fixtures/journal-v2/`: format 2, where the apps' environments are stored once;
//! each with the sled files, the snapshot and mark beside them, and `events.jsonl`, what it
//! held) must open with today's code: same events at the same sequence numbers, same registry,
//! same retention cut. A change to the event types or the storage layout that would make
//! users' journals unreadable fails here. Fixtures are never rewritten; a new format adds a
//! fixture of its own (last in `FIXTURES`), written by
//! `cargo test -p pmx-storage --test golden -- --ignored write_the_golden_journal`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pmx_core::event::{Cause, Event, EventKind, NewEvent, ReloadStep};
use pmx_core::record::{Reason, Transition};
use pmx_core::spec::AppSpec;
use pmx_core::state::{Command, Exit, Status};
use pmx_storage::{
    Desired, Journal, Retention, SledJournal, load_registry, open_checked, take_snapshot,
};

/// Oldest first; the writer writes the last.
const FIXTURES: [&str; 2] = ["journal-0.1.0", "journal-v2"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn spec(name: &str, instances: u32) -> AppSpec {
    AppSpec {
        name: name.into(),
        script: format!("/srv/{name}/server.js"),
        args: vec!["--port".into(), "3000".into()],
        interpreter_args: Some(vec!["--max-old-space-size=256".into()]),
        cwd: format!("/srv/{name}"),
        env: [("NODE_ENV".to_string(), "production".to_string())].into(),
        base_env: Arc::new([("PATH".to_string(), "/usr/bin:/bin".to_string())].into()),
        instances,
        ..AppSpec::default()
    }
}

fn event(app: &str, instance: Option<u32>, kind: EventKind, cause: Cause) -> NewEvent {
    NewEvent {
        app: app.into(),
        instance,
        kind,
        cause,
    }
}

fn user(command: &str) -> Cause {
    Cause::User {
        command: command.into(),
        uid: 1000,
    }
}

fn transition(from: Status, to: Status, reason: Reason) -> EventKind {
    EventKind::Transition(Transition { from, to, reason })
}

/// Every event kind, with every cause, in the order a daemon's life writes them.
fn life() -> Vec<Vec<NewEvent>> {
    let crash = Exit {
        code: Some(1),
        signal: None,
    };
    let killed = Exit {
        code: None,
        signal: Some(15),
    };
    let daemon = |kind| event("", None, kind, Cause::Boot);
    let api = |instance, kind, cause| event("api", Some(instance), kind, cause);
    let mut batches = vec![
        vec![daemon(EventKind::DaemonStarted {
            pid: 4242,
            version: "0.1.0".into(),
        })],
        vec![
            event(
                "api",
                None,
                EventKind::AppCreated {
                    spec: Box::new(spec("api", 2)),
                    ids: vec![0, 1],
                },
                user("start"),
            ),
            event(
                "api",
                None,
                EventKind::Command {
                    verb: "start".into(),
                },
                user("start"),
            ),
        ],
    ];
    for id in [0, 1] {
        batches.push(vec![
            api(
                id,
                transition(
                    Status::Stopped,
                    Status::Launching,
                    Reason::Command {
                        command: Command::Start,
                    },
                ),
                user("start"),
            ),
            api(
                id,
                EventKind::Spawned {
                    pid: 5000 + id,
                    start_time: Some(123_456),
                    boot: Some("0b6e3f5a-boot".into()),
                    token: Some(format!("/home/u/.pmx#4242#{id}")),
                },
                Cause::Process,
            ),
            api(
                id,
                transition(
                    Status::Launching,
                    Status::Online,
                    Reason::Ready {
                        pid: 5000 + id,
                        how: "sd_notify".into(),
                        after_ms: 40,
                    },
                ),
                Cause::Process,
            ),
        ]);
    }
    batches.extend([
        vec![
            api(
                0,
                EventKind::Exited {
                    pid: 5000,
                    exit: crash,
                    uptime_ms: 300,
                },
                Cause::Process,
            ),
            api(
                0,
                transition(
                    Status::Online,
                    Status::WaitingRestart,
                    Reason::Crashed {
                        exit: crash,
                        uptime_ms: 300,
                        unstable: true,
                        unstable_restarts: 1,
                        max_restarts: 16,
                        delay_ms: 100,
                    },
                ),
                Cause::Process,
            ),
            api(
                0,
                transition(
                    Status::WaitingRestart,
                    Status::Launching,
                    Reason::RestartDelayElapsed,
                ),
                Cause::Policy,
            ),
            api(
                0,
                EventKind::Spawned {
                    pid: 5002,
                    start_time: None,
                    boot: None,
                    token: None,
                },
                Cause::Process,
            ),
            api(
                0,
                transition(
                    Status::Launching,
                    Status::Online,
                    Reason::Spawned { pid: 5002 },
                ),
                Cause::Process,
            ),
        ],
        vec![
            api(
                1,
                EventKind::Signalled {
                    pid: 5001,
                    signal: 15,
                    processes: 3,
                },
                Cause::Rule {
                    rule: "max_memory_restart".into(),
                    reason: "memory 300mb above 256mb".into(),
                    figures: vec!["tree_memory=314572800".into()],
                },
            ),
            api(
                1,
                transition(
                    Status::Stopping,
                    Status::Stopped,
                    Reason::StopCompleted { exit: killed },
                ),
                Cause::Process,
            ),
            api(1, EventKind::CountersReset, user("reset")),
            api(
                1,
                EventKind::Reload(ReloadStep::Replacing { old_pid: 5001 }),
                user("reload"),
            ),
            api(
                1,
                EventKind::Reload(ReloadStep::Replaced {
                    old_pid: 5001,
                    new_pid: 5003,
                }),
                user("reload"),
            ),
            api(
                1,
                EventKind::Reload(ReloadStep::Failed {
                    old_pid: Some(5003),
                    error: "not ready within 3000ms".into(),
                }),
                user("reload"),
            ),
            api(
                1,
                EventKind::LogWriteFailed {
                    file: "/home/u/.pmx/logs/api-out-1.log".into(),
                    error: "No space left on device".into(),
                },
                Cause::Process,
            ),
            api(
                1,
                EventKind::LogWriteRecovered {
                    file: "/home/u/.pmx/logs/api-out-1.log".into(),
                    lost_bytes: 4096,
                },
                Cause::Process,
            ),
        ],
        vec![
            event(
                "",
                None,
                EventKind::ConfigApplied {
                    revision: 1,
                    source: "/srv/pmx.rhai".into(),
                    hash: "9f2c".into(),
                    plan: vec!["+ web".into()],
                },
                user("up"),
            ),
            event(
                "web",
                None,
                EventKind::AppCreated {
                    spec: Box::new(spec("web", 1)),
                    ids: vec![2],
                },
                user("up"),
            ),
            event(
                "web",
                None,
                EventKind::ConfigChanged {
                    revision: 1,
                    change: "+ web".into(),
                },
                user("up"),
            ),
            event(
                "",
                None,
                EventKind::RulesLoaded {
                    source: "/srv/pmx.rhai".into(),
                    script: "rule(\"scale\", || {})".into(),
                    rules: vec!["scale".into()],
                    vars: [("THRESHOLD".to_string(), "80".to_string())].into(),
                },
                user("up"),
            ),
            event(
                "",
                None,
                EventKind::ConfigRejected {
                    source: "/srv/bad.rhai".into(),
                    errors: "bad.rhai:3:7: unknown option".into(),
                },
                user("up"),
            ),
            event(
                "api",
                None,
                EventKind::Scaled {
                    from: 2,
                    to: 3,
                    ids: vec![0, 1, 3],
                    indexes: vec![],
                },
                Cause::rule("scale", "cpu above 80% for 30s"),
            ),
            event(
                "api",
                None,
                EventKind::Note {
                    text: "scaled up".into(),
                },
                Cause::rule("scale", "note"),
            ),
            event(
                "",
                None,
                EventKind::RuleFailed {
                    rule: "scale".into(),
                    error: "too many operations".into(),
                    disabled: false,
                },
                Cause::rule("scale", "failed"),
            ),
        ],
        vec![
            event(
                "",
                None,
                EventKind::Saved {
                    apps: vec![spec("api", 3), spec("web", 1)],
                },
                user("save"),
            ),
            event(
                "web",
                None,
                EventKind::Command {
                    verb: "stop".into(),
                },
                user("stop"),
            ),
            event(
                "web",
                None,
                EventKind::AppDeleted { ids: vec![2] },
                user("delete"),
            ),
            daemon(EventKind::DaemonStopped { pid: 4242 }),
            daemon(EventKind::DaemonStarted {
                pid: 4343,
                version: "0.1.0".into(),
            }),
            api(
                1,
                EventKind::OrphanStopped {
                    pid: 5003,
                    processes: 2,
                },
                Cause::Boot,
            ),
            daemon(EventKind::JournalRecovered {
                reason: "the data file ended before the marked head".into(),
                damaged_copy: "/home/u/.pmx/journal.damaged-1".into(),
                salvaged: 10,
                salvaged_through: 10,
                expected_head: 12,
                snapshot_seq: Some(8),
            }),
            daemon(EventKind::JournalResumed {
                failed_ms: 5000,
                error: "No space left on device".into(),
                kept: 3,
                lost: 0,
            }),
            api(
                1,
                transition(
                    Status::Stopped,
                    Status::Errored,
                    Reason::SpawnFailed {
                        error: "ENOENT".into(),
                    },
                ),
                Cause::Shutdown,
            ),
        ],
    ]);
    batches
}

/// Writes the fixture (once per format; see the module's comment).
#[test]
#[ignore]
fn write_the_golden_journal() {
    let dir = fixture(FIXTURES[FIXTURES.len() - 1]);
    assert!(
        !dir.exists(),
        "{} exists: fixtures are never rewritten",
        dir.display()
    );
    std::fs::create_dir_all(&dir).unwrap();
    let journal = SledJournal::open(&dir.join("journal")).unwrap();
    for batch in life() {
        journal.append(batch).unwrap();
        journal.flush().unwrap();
    }
    // A retention cut, as the compactor makes it: a snapshot first, then the cut journaled.
    take_snapshot(&journal).unwrap();
    let cut = journal.compact(&Retention::new(0, 12), 0).unwrap();
    assert!(cut.removed > 0);
    journal
        .append(vec![event(
            "",
            None,
            EventKind::Compacted {
                removed: cut.removed,
                through_seq: cut.through_seq,
            },
            Cause::Policy,
        )])
        .unwrap();
    journal.flush().unwrap();
    let lines: Vec<String> = (journal.all().unwrap().iter())
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(dir.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_journals_of_every_format_open_with_todays_code() {
    for name in FIXTURES {
        opens_with_todays_code(name);
    }
}

fn opens_with_todays_code(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), dir.path());
    let expected: Vec<Event> = std::fs::read_to_string(dir.path().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: std::collections::BTreeSet<String> = (expected.iter())
        .map(|e| serde_json::to_value(&e.kind).unwrap()["type"].to_string())
        .collect();
    assert!(kinds.len() >= 20, "the fixture holds every kind: {kinds:?}");

    let (journal, recovery) = open_checked(&dir.path().join("journal"), 1).unwrap();
    assert_eq!(recovery, None, "{name} is intact");
    assert_eq!(
        journal.all().unwrap(),
        expected,
        "{name}: same events, same numbers"
    );
    let head = expected.last().unwrap().seq;
    assert_eq!(journal.head(), head);

    // The retention cut: api's oldest events are gone, and the journal says where it cut.
    let api = journal.for_app("api", None).unwrap();
    let cut = journal.cut(Some("api")).unwrap().expect("api was cut");
    assert_eq!(cut.through_seq + 1, api[0].seq);
    assert!(journal.snapshot_seq() >= cut.through_seq);

    // The registry the snapshot and the events after it build.
    let registry = load_registry(&journal).unwrap().0.registry;
    assert_eq!(registry.apps.keys().collect::<Vec<_>>(), ["api"]);
    let app = &registry.apps["api"];
    assert_eq!(app.ids, [0, 1, 3]);
    assert_eq!(app.desired, Desired::Running);
    assert_eq!(
        app.spec.interpreter_args,
        Some(vec!["--max-old-space-size=256".into()])
    );
    assert_eq!(
        app.spec.base_env.get("PATH").map(String::as_str),
        Some("/usr/bin:/bin")
    );
    assert_eq!(registry.next_id, 4);
    let saved = registry.saved.as_ref().expect("the save checkpoint");
    assert_eq!(
        saved.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["api", "web"]
    );

    // New events follow the old ones.
    let next = journal
        .append(vec![event(
            "api",
            None,
            EventKind::Command {
                verb: "stop".into(),
            },
            user("stop"),
        )])
        .unwrap();
    assert_eq!(next[0].seq, head + 1);
}
