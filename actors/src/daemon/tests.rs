//! The daemon and its app actors in this process (`crate::testing`): what is journaled, and
//! when, against what the OS shows of the apps' processes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use pmx_core::event::{Cause, Event, EventKind};
use pmx_core::metrics::Breach;
use pmx_core::protocol::{Request, Targets};
use pmx_core::state::Status;
use pmx_scripting::rules::Action;

use super::Daemon;
use crate::app::AppActor;
use crate::decision::Decision;
use crate::sampler::MemoryBreach;
use crate::testing::{Held, proc_state};

/// The actor of an app, for a test to send what the sampler or a timer would.
#[derive(Message)]
#[rtype(result = "Option<Addr<AppActor>>")]
struct ActorOf(String);

impl Handler<ActorOf> for Daemon {
    type Result = Option<Addr<AppActor>>;

    fn handle(&mut self, msg: ActorOf, _: &mut Context<Self>) -> Self::Result {
        self.apps.get(&msg.0).map(|entry| entry.addr.clone())
    }
}

fn within<F: Future>(test: F) -> F::Output {
    actix::System::new().block_on(test)
}

fn targets(name: &str) -> Targets {
    Targets {
        targets: vec![name.into()],
        force: false,
    }
}

fn is_command(event: &Event, verb: &str) -> bool {
    matches!(&event.kind, EventKind::Command { verb: v } if v == verb)
}

fn position(events: &[Event], what: &str, pick: impl Fn(&Event) -> bool) -> usize {
    let found = events.iter().position(pick);
    found.unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

fn stopping_of(pid: u32) -> impl Fn(&Event) -> bool {
    move |e| matches!(&e.kind, EventKind::Signalled { pid: p, .. } if *p == pid)
}

/// Watches the flushes: at each one that makes a `verb` command durable, the state of `pid` a
/// while later. It must still run untouched (had its signal gone out first, it would be a
/// zombie by then: its actor, which reaps it, waits for this very flush).
fn states_at_flush(held: &Held, verb: &'static str, pid: u32) -> Arc<Mutex<Vec<Option<char>>>> {
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    held.journal.on_flush(Box::new(move |flushed| {
        if flushed.iter().any(|e| is_command(e, verb)) {
            std::thread::sleep(Duration::from_millis(100));
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.push(proc_state(pid));
        }
    }));
    states
}

/// A flush made the command durable, and `pid` was running then (a cron's next tick may have
/// decided again since).
fn assert_untouched_at_flush(states: &Mutex<Vec<Option<char>>>) {
    let states = states.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        matches!(states[..], [Some('S' | 'R'), ..]),
        "the process at the command's flushes: {states:?}"
    );
}

#[test]
fn a_command_is_durable_before_its_signal_is_sent() {
    within(async {
        let held = Held::start();
        let pid = held.start_sleeper("api").await.pid.unwrap_or(0);
        let states = states_at_flush(&held, "stop", pid);
        held.ask(Request::Stop(targets("api"))).await;
        held.until("the sleeper is gone", |_| proc_state(pid).is_none())
            .await;
        let events = held.journal.events();
        let command = position(&events, "stop command", |e| is_command(e, "stop"));
        let signal = position(&events, "signal", stopping_of(pid));
        assert!(command < signal, "{events:#?}");
        assert_untouched_at_flush(&states);
        held.stop().await;
    });
}

#[test]
fn a_delete_journals_the_ids_it_decided_and_spares_a_new_app_of_that_name() {
    within(async {
        let held = Held::start();
        // Another app keeps the ids counting (with none left, they start again at 0).
        held.start_sleeper("other").await;
        let first = held.start_sleeper("api").await;
        let old = first.pid.unwrap_or(0);
        held.ask(Request::Delete(targets("api"))).await;
        let again = held.start_sleeper("api").await;
        assert_ne!(again.id, first.id);
        held.until("the first sleeper is gone", |_| proc_state(old).is_none())
            .await;
        let events = held.journal.events();
        let deleted = position(
            &events,
            "AppDeleted",
            |e| matches!(&e.kind, EventKind::AppDeleted { ids } if *ids == vec![first.id]),
        );
        assert!(deleted < position(&events, "signal", stopping_of(old)));
        let new_pid = again.pid.unwrap_or(0);
        assert!(matches!(proc_state(new_pid), Some('S' | 'R')));
        held.stop().await;
    });
}

#[test]
fn a_memory_breach_is_a_decision_journaled_with_its_rule_before_the_restart() {
    within(async {
        let held = Held::start();
        let view = held.start_sleeper("api").await;
        let pid = view.pid.unwrap_or(0);
        let states = states_at_flush(&held, "restart", pid);
        let actor = held.daemon.send(ActorOf("api".into())).await.ok().flatten();
        let breach = MemoryBreach {
            id: view.id,
            pid,
            breach: Breach::Limit {
                memory: 300 << 20,
                limit: 150 << 20,
                sustain_ms: 0,
            },
        };
        actor.expect("the app's actor").do_send(breach);
        restarted_by_rule(&held, pid, "max_memory_restart", &states).await;
        let figures = [format!("pid {pid}")];
        let events = held.journal.events();
        let named = |e: &Event| matches!(&e.cause, Cause::Rule { figures: f, .. } if *f == figures);
        assert!(events.iter().any(named), "{events:#?}");
        held.stop().await;
    });
}

#[test]
fn a_decision_about_a_process_that_is_gone_acts_on_nothing() {
    within(async {
        let held = Held::start();
        let view = held.start_sleeper("api").await;
        let pid = view.pid.unwrap_or(0);
        let gone = u32::MAX;
        let decision = Decision {
            app: "api".into(),
            action: Action::Restart,
            seen: Some(vec![(view.id, Some(gone))]),
            cause: Cause::rule("max_memory_restart", "memory above the limit"),
        };
        held.daemon.do_send(decision);
        held.until("the decision is journaled", |h| {
            h.journal.events().iter().any(|e| is_command(e, "restart"))
        })
        .await;
        // A round trip through the daemon and the app: the decision was carried out by now.
        let listed = held.ask(Request::List).await;
        let online = match listed {
            pmx_core::protocol::Response::Processes(list) => list.processes,
            other => panic!("list: {other:?}"),
        };
        assert_eq!(online.len(), 1);
        assert_eq!(
            (online[0].status, online[0].pid),
            (Status::Online, Some(pid))
        );
        assert!(matches!(proc_state(pid), Some('S' | 'R')));
        let events = held.journal.events();
        assert!(!events.iter().any(stopping_of(pid)), "{events:#?}");
        held.stop().await;
    });
}

#[test]
fn a_watched_change_is_a_decision_journaled_with_its_rule_before_the_restart() {
    within(async {
        let held = Held::start();
        let code = held.home.path().join("code");
        std::fs::create_dir(&code).expect("a watched directory");
        let mut spec = held.sleeper("api");
        spec.options.watch = vec![code.display().to_string()];
        spec.options.watch_delay_ms = 20;
        let pid = held.start_app(spec).await.pid.unwrap_or(0);
        let states = states_at_flush(&held, "restart", pid);
        std::fs::write(code.join("main.py"), "changed").expect("a change");
        restarted_by_rule(&held, pid, "watch", &states).await;
        held.stop().await;
    });
}

#[test]
fn a_cron_tick_is_a_decision_journaled_with_its_rule_before_the_restart() {
    within(async {
        let held = Held::start();
        let mut spec = held.sleeper("api");
        spec.options.cron_restart = Some("* * * * * *".into());
        let pid = held.start_app(spec).await.pid.unwrap_or(0);
        let states = states_at_flush(&held, "restart", pid);
        restarted_by_rule(&held, pid, "cron_restart", &states).await;
        held.stop().await;
    });
}

#[test]
fn a_failing_health_check_is_a_decision_journaled_with_its_rule_before_the_restart() {
    within(async {
        let held = Held::start();
        // A port nobody listens on: every check is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let closed = closed.expect("a free port");
        let mut spec = held.sleeper("api");
        spec.options.health = Some(pmx_core::spec::HealthCheck {
            url: format!("http://{closed}/health"),
            interval_ms: 30,
            timeout_ms: 500,
            failures: 2,
        });
        let pid = held.start_app(spec).await.pid.unwrap_or(0);
        let states = states_at_flush(&held, "restart", pid);
        restarted_by_rule(&held, pid, "health", &states).await;
        held.stop().await;
    });
}

/// `pid` was replaced by a restart `rule` decided, journaled (durably, `pid` untouched yet)
/// before its signal.
async fn restarted_by_rule(held: &Held, pid: u32, rule: &str, states: &Mutex<Vec<Option<char>>>) {
    held.until("the sleeper is replaced", |_| proc_state(pid).is_none())
        .await;
    let events = held.journal.events();
    let command = position(&events, "restart command", |e| {
        let by_rule = matches!(&e.cause, Cause::Rule { rule: r, .. } if r == rule);
        is_command(e, "restart") && by_rule
    });
    assert!(command < position(&events, "signal", stopping_of(pid)));
    assert_untouched_at_flush(states);
}

/// Whether `event` is a status change `from` → `to`.
fn changed(event: &Event, from: Status, to: Status) -> bool {
    matches!(&event.kind, EventKind::Transition(t) if t.from == from && t.to == to)
}

/// Until the journal holds a status change `from` → `to`.
async fn until_changed(held: &Held, from: Status, to: Status) {
    let what = format!("{} → {}", from.as_str(), to.as_str());
    held.until(&what, |h| {
        h.journal.events().iter().any(|e| changed(e, from, to))
    })
    .await;
}

#[test]
fn a_stop_that_comes_while_the_process_is_being_spawned_stops_it_when_it_comes() {
    within(async {
        let held = Held::start();
        // The spawner spawns with the managed set locked: held here, the spawn of `api`
        // waits until the stop has been decided.
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let managed = held.managed.clone();
        let holder = std::thread::spawn(move || {
            let _ = managed.holding(|| {
                let _ = locked_tx.send(());
                let _ = released.recv_timeout(crate::testing::DEADLINE);
                Err::<(u32, ()), ()>(())
            });
        });
        locked.recv().expect("the set locked");
        let start = Request::Start(Box::new(pmx_core::protocol::StartRequest {
            spec: held.sleeper("api"),
        }));
        let stop_while_spawning = async {
            until_changed(&held, Status::Stopped, Status::Launching).await;
            let stop = held.ask(Request::Stop(targets("api")));
            let release_once_decided = async {
                until_changed(&held, Status::Launching, Status::Stopping).await;
                let _ = release.send(());
            };
            tokio::join!(stop, release_once_decided).0
        };
        let both = async { tokio::join!(held.ask(start), stop_while_spawning) };
        let (started, stopped) = tokio::time::timeout(crate::testing::DEADLINE, both)
            .await
            .expect("the start and the stop answered");
        let _ = holder.join();
        for answer in [&started, &stopped] {
            let pmx_core::protocol::Response::Processes(list) = answer else {
                panic!("{answer:?}");
            };
            let view = &list.processes[0];
            assert_eq!(
                (view.status, view.pid),
                (Status::Stopped, None),
                "{answer:?}"
            );
        }
        let events = held.journal.events();
        let pid = events.iter().find_map(|e| match e.kind {
            EventKind::Spawned { pid, .. } => Some(pid),
            _ => None,
        });
        let pid = pid.expect("the process came, after the stop");
        held.until("its process is gone", |_| proc_state(pid).is_none())
            .await;
        let stopping = position(&events, "launching → stopping", |e| {
            changed(e, Status::Launching, Status::Stopping)
        });
        let spawned = position(&events, "Spawned", |e| {
            matches!(e.kind, EventKind::Spawned { .. })
        });
        assert!(stopping < spawned, "{events:#?}");
        assert!(spawned < position(&events, "its signal", stopping_of(pid)));
        held.stop().await;
    });
}
