//! Benchmark helper (see `bench/journal.py`): fills a journal with a crash-loop's worth of
//! realistic events, and measures append rates and size on disk.
//!
//! `fill_journal PATH APPS EVENTS SCRIPT [--running] [--snapshot]` writes APPS apps (with this
//! process's environment as their captured env, as `pmx start` does), then EVENTS events
//! spread over them (spawn, crash transition, exit, restart transition), and prints one JSON
//! object of figures.

use std::time::Instant;

use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::record::{Reason, Transition};
use pmx_core::spec::AppSpec;
use pmx_core::state::{Exit, Status};
use pmx_storage::{Journal, SledJournal, take_snapshot};

fn app_event(app: &str, id: u32, kind: EventKind, cause: Cause) -> NewEvent {
    NewEvent {
        app: app.to_string(),
        instance: Some(id),
        kind,
        cause,
    }
}

/// The four events of one crash and respawn of instance `id`, in turn by `n`.
fn crash_event(app: &str, id: u32, n: u64) -> NewEvent {
    let exit = Exit {
        code: Some(1),
        signal: None,
    };
    match n % 4 {
        0 => app_event(
            app,
            id,
            EventKind::Spawned {
                pid: 10_000 + (n % 50_000) as u32,
                start_time: Some(123_456_789),
                boot: Some("0b5f1c9e-8a43-4f4e-9a43-3d1d7f0e2c11".into()),
                token: Some(format!("/home/ops/.pmx#4242.1763700000000#{id}#{n}")),
            },
            Cause::Process,
        ),
        1 => app_event(
            app,
            id,
            EventKind::Exited {
                pid: 10_000 + (n % 50_000) as u32,
                exit,
                uptime_ms: 225,
            },
            Cause::Process,
        ),
        2 => app_event(
            app,
            id,
            EventKind::Transition(Transition {
                from: Status::Online,
                to: Status::WaitingRestart,
                reason: Reason::Crashed {
                    exit,
                    uptime_ms: 225,
                    unstable: true,
                    unstable_restarts: 3,
                    max_restarts: 16,
                    delay_ms: 225,
                },
            }),
            Cause::Process,
        ),
        _ => app_event(
            app,
            id,
            EventKind::Transition(Transition {
                from: Status::WaitingRestart,
                to: Status::Launching,
                reason: Reason::RestartDelayElapsed,
            }),
            Cause::Policy,
        ),
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, apps, events, script, ..] = args.as_slice() else {
        return Err("usage: fill_journal PATH APPS EVENTS SCRIPT [--running] [--snapshot]".into());
    };
    let path = std::path::Path::new(path);
    let (apps, events): (u32, u64) = (apps.parse()?, events.parse()?);
    let running = args.iter().any(|a| a == "--running");
    let base_env: std::sync::Arc<std::collections::BTreeMap<String, String>> =
        std::sync::Arc::new(std::env::vars().collect());
    let journal = SledJournal::open(path)?;
    let user = Cause::User {
        command: "start".into(),
        uid: 1000,
    };
    for id in 0..apps {
        let name = if id == 0 {
            "api".to_string()
        } else {
            format!("app{id}")
        };
        let spec = AppSpec {
            name: name.clone(),
            script: script.clone(),
            cwd: "/tmp".into(),
            base_env: base_env.clone(),
            ..AppSpec::default()
        };
        let mut batch = vec![NewEvent {
            app: name.clone(),
            instance: None,
            kind: EventKind::AppCreated {
                spec: Box::new(spec),
                ids: vec![id],
            },
            cause: user.clone(),
        }];
        if running {
            batch.push(NewEvent {
                app: name,
                instance: None,
                kind: EventKind::Command {
                    verb: "start".into(),
                },
                cause: user.clone(),
            });
        }
        journal.append(batch)?;
    }
    journal.flush()?;
    let size_before = dir_bytes(path);

    // Group-committed, as the daemon writes what it observes: a flush per 1,000 events.
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let batch: Vec<NewEvent> = (written..(written + 1000).min(events))
            .map(|n| {
                let id = ((n / 4) % apps as u64) as u32;
                let app = if id == 0 {
                    "api".to_string()
                } else {
                    format!("app{id}")
                };
                crash_event(&app, id, n)
            })
            .collect();
        written += batch.len() as u64;
        for event in batch {
            journal.append(vec![event])?;
        }
        journal.flush()?;
    }
    let group_rate = events as f64 / started.elapsed().as_secs_f64();
    let size_after = dir_bytes(path);

    // Durable, as commands are: one event, one flush.
    let durable = 500;
    let started = Instant::now();
    for n in 0..durable {
        journal.append(vec![crash_event("api", 0, n)])?;
        journal.flush()?;
    }
    let durable_rate = durable as f64 / started.elapsed().as_secs_f64();
    if args.iter().any(|a| a == "--snapshot") {
        take_snapshot(&journal)?;
    }
    journal.flush()?;
    println!(
        "{{\"events\": {events}, \"group_committed_per_s\": {group_rate:.0}, \
         \"durable_per_s\": {durable_rate:.0}, \"bytes_per_100k_events\": {:.0}, \
         \"journal_bytes\": {}}}",
        (size_after.saturating_sub(size_before)) as f64 * 100_000.0 / events.max(1) as f64,
        dir_bytes(path)
    );
    Ok(())
}
