//! Exhaustive unit tests and property tests of the instance state machine.

use super::*;
use proptest::prelude::*;

const KILL: KillPolicy = KillPolicy {
    signal: 2,
    timeout_ms: 1600,
};

fn policy() -> RestartPolicy {
    RestartPolicy::default()
}

fn run(inst: &Instance, input: Input, now: Millis) -> Step {
    step(inst, &policy(), KILL, Readiness::AtSpawn, input, now)
}

/// Process `pid` of `inst` exits with `code` at `now`, under policy `p`.
fn exits(inst: &Instance, p: &RestartPolicy, pid: u32, code: i32, now: Millis) -> Step {
    let exit = crash(code);
    step(
        inst,
        p,
        KILL,
        Readiness::AtSpawn,
        Input::Exited { pid, exit },
        now,
    )
}

fn crash(code: i32) -> Exit {
    Exit {
        code: Some(code),
        signal: None,
    }
}

/// A started instance with process `pid`, spawned at `now`.
fn online(pid: u32, now: Millis) -> Instance {
    let s = run(&Instance::new(), Input::Command(Command::Start), now);
    assert_eq!(s.effects, vec![Effect::Spawn]);
    run(&s.next, Input::Spawned { pid }, now).next
}

/// Instance `inst`, online with `pid`, crashes at `now`. Returns the crash step and, unless
/// the policy gave up, the instance online again with `pid + 1` once its restart timer fired.
fn crash_and_respawn(
    inst: &Instance,
    p: &RestartPolicy,
    pid: u32,
    now: Millis,
) -> (Step, Option<Instance>) {
    let crashed = step(
        inst,
        p,
        KILL,
        Readiness::AtSpawn,
        Input::Exited {
            pid,
            exit: crash(1),
        },
        now,
    );
    if crashed.next.status != Status::WaitingRestart {
        return (crashed, None);
    }
    let timer = Input::Timer {
        kind: TimerKind::RestartDelay,
        token: crashed.next.timer,
    };
    let launched = step(&crashed.next, p, KILL, Readiness::AtSpawn, timer, now);
    assert_eq!(launched.effects, vec![Effect::Spawn]);
    let online = step(
        &launched.next,
        p,
        KILL,
        Readiness::AtSpawn,
        Input::Spawned { pid: pid + 1 },
        now,
    )
    .next;
    (crashed, Some(online))
}

#[test]
fn start_spawns_then_goes_online() {
    let s = run(&Instance::new(), Input::Command(Command::Start), 0);
    assert_eq!(s.next.status, Status::Launching);
    assert_eq!(s.effects, vec![Effect::Spawn]);
    let s = run(&s.next, Input::Spawned { pid: 7 }, 5);
    assert_eq!(s.next.status, Status::Online);
    assert_eq!(s.next.pid, Some(7));
    assert_eq!(s.next.started_at, Some(5));
}

#[test]
fn spawn_failure_is_errored_with_the_reason() {
    let s = run(&Instance::new(), Input::Command(Command::Start), 0);
    let s = run(
        &s.next,
        Input::SpawnFailed {
            error: "permission denied".into(),
            transient: false,
        },
        0,
    );
    assert_eq!(s.next.status, Status::Errored);
    assert_eq!(s.next.error.as_deref(), Some("permission denied"));
    assert!(s.effects.is_empty(), "no retry loop");
}

#[test]
fn a_spawn_short_of_a_resource_is_tried_again_with_a_growing_delay() {
    let mut s = run(&Instance::new(), Input::Command(Command::Start), 0);
    let mut delays = Vec::new();
    for _ in 0..10 {
        s = run(
            &s.next,
            Input::SpawnFailed {
                error: "Too many open files".into(),
                transient: true,
            },
            0,
        );
        assert_eq!(s.next.status, Status::WaitingRestart);
        let Some(Effect::ArmTimer {
            token, after_ms, ..
        }) = s.effects.last().cloned()
        else {
            panic!("no retry timer: {:?}", s.effects);
        };
        delays.push(after_ms);
        s = run(
            &s.next,
            Input::Timer {
                kind: TimerKind::RestartDelay,
                token,
            },
            0,
        );
        assert_eq!(s.effects, vec![Effect::Spawn]);
    }
    assert_eq!(delays[..4], [100, 200, 400, 800]);
    assert_eq!(*delays.last().unwrap(), BACKOFF_CAP_MS);
    // Once a spawn works, the next shortage starts over at the first delay.
    let s = run(&s.next, Input::Spawned { pid: 9 }, 0);
    assert_eq!(s.next.status, Status::Online);
    assert_eq!(s.next.spawn_retry_ms, None);
    assert_eq!(s.next.restarts, 0, "retries are not restarts");
}

#[test]
fn crash_waits_then_restarts_and_counts() {
    let inst = online(7, 0);
    let s = run(
        &inst,
        Input::Exited {
            pid: 7,
            exit: crash(1),
        },
        5000,
    );
    assert_eq!(s.next.status, Status::WaitingRestart);
    assert_eq!(
        s.next.restarts, 0,
        "counted when the restart happens, as PM2"
    );
    assert_eq!(s.next.unstable_restarts, 0, "a 5 s run is stable");
    assert_eq!(s.next.pid, None);
    let Effect::ArmTimer {
        kind,
        token,
        after_ms,
    } = s.effects[0]
    else {
        panic!()
    };
    assert_eq!((kind, after_ms), (TimerKind::RestartDelay, 0));
    let s = run(&s.next, Input::Timer { kind, token }, 5000);
    assert_eq!(s.next.status, Status::Launching);
    assert_eq!(s.effects, vec![Effect::Spawn]);
    assert_eq!(s.next.restarts, 1);
}

#[test]
fn a_crash_stopped_while_it_waits_to_restart_did_not_restart() {
    let waiting = exits(&online(7, 0), &policy(), 7, 1, 5000).next;
    assert_eq!(waiting.status, Status::WaitingRestart);
    let s = run(&waiting, Input::Command(Command::Stop), 5100);
    assert_eq!(s.next.status, Status::Stopped);
    assert_eq!(s.next.restarts, 0);
    // A start brought forward while it waits is that restart, counted once.
    let s = run(&waiting, Input::Command(Command::Start), 5100);
    assert_eq!(s.next.status, Status::Launching);
    assert_eq!(s.next.restarts, 1);
}

#[test]
fn start_or_restart_restarts_what_runs_and_starts_the_rest() {
    let s = run(&online(7, 0), Input::Command(Command::StartOrRestart), 10);
    assert_eq!(
        s.next.status,
        Status::Stopping,
        "a running instance restarts"
    );
    assert_eq!((s.next.intent, s.next.restarts), (Intent::Restart, 1));
    let stopped = run(&online(7, 0), Input::Command(Command::Stop), 10).next;
    let stopped = run(
        &stopped,
        Input::Exited {
            pid: 7,
            exit: crash(0),
        },
        20,
    )
    .next;
    assert_eq!(stopped.status, Status::Stopped);
    let s = run(&stopped, Input::Command(Command::StartOrRestart), 30);
    assert_eq!(s.next.status, Status::Launching, "a stopped one starts");
    assert_eq!(
        (s.effects.as_slice(), s.next.restarts),
        (&[Effect::Spawn][..], 0)
    );
    // A crash waiting to restart restarts now, counted once.
    let waiting = exits(&online(7, 0), &policy(), 7, 1, 5000).next;
    let s = run(&waiting, Input::Command(Command::StartOrRestart), 5100);
    assert_eq!((s.next.status, s.next.restarts), (Status::Launching, 1));
}

#[test]
fn crash_loop_goes_errored_after_max_restarts() {
    let p = RestartPolicy {
        max_restarts: 3,
        ..policy()
    };
    let mut inst = online(1, 0);
    for round in 1..=3u32 {
        let (crashed, next) = crash_and_respawn(&inst, &p, round, u64::from(round) * 10);
        assert_eq!(crashed.next.status, Status::WaitingRestart, "round {round}");
        assert_eq!(crashed.next.unstable_restarts, round);
        inst = next.unwrap();
    }
    let (s, next) = crash_and_respawn(&inst, &p, 4, 40);
    assert!(next.is_none());
    assert_eq!(s.next.status, Status::Errored);
    assert_eq!(s.next.restarts, 3);
    assert!(matches!(
        s.transition.unwrap().reason,
        Reason::GaveUp {
            unstable_restarts: 3,
            ..
        }
    ));
    assert!(s.effects.is_empty());
}

#[test]
fn a_stable_run_resets_the_unstable_count() {
    let mut inst = online(1, 0);
    inst.unstable_restarts = 10;
    let s = run(
        &inst,
        Input::Exited {
            pid: 1,
            exit: crash(1),
        },
        1000,
    );
    assert_eq!(s.next.unstable_restarts, 0);
}

#[test]
fn stop_exit_codes_and_no_autorestart_stop_for_good() {
    let inst = online(1, 0);
    let p = RestartPolicy {
        stop_exit_codes: vec![0, 3],
        ..policy()
    };
    let s = exits(&inst, &p, 1, 3, 10);
    assert_eq!(s.next.status, Status::Stopped);
    assert!(s.effects.is_empty());
    let s = exits(&inst, &p, 1, 4, 10);
    assert_eq!(s.next.status, Status::WaitingRestart);

    let p = RestartPolicy {
        autorestart: false,
        ..policy()
    };
    let s = exits(&inst, &p, 1, 1, 10);
    assert_eq!(s.next.status, Status::Stopped);
    assert!(matches!(
        s.transition.unwrap().reason,
        Reason::NoAutorestart { .. }
    ));
}

#[test]
fn stop_signals_then_kills_after_timeout() {
    let inst = online(9, 0);
    let s = run(&inst, Input::Command(Command::Stop), 10);
    assert_eq!(s.next.status, Status::Stopping);
    assert_eq!(s.effects[0], Effect::Signal(2));
    let Effect::ArmTimer {
        kind,
        token,
        after_ms,
    } = s.effects[1]
    else {
        panic!()
    };
    assert_eq!((kind, after_ms), (TimerKind::KillTimeout, 1600));
    let k = run(&s.next, Input::Timer { kind, token }, 1610);
    assert_eq!(k.effects, vec![Effect::Kill]);
    assert_eq!(k.transition, None);
    let s = run(
        &k.next,
        Input::Exited {
            pid: 9,
            exit: Exit {
                code: None,
                signal: Some(9),
            },
        },
        1611,
    );
    assert_eq!(s.next.status, Status::Stopped);
    assert_eq!(s.next.restarts, 0, "a stop is not a restart");
    // The old kill timer is stale now.
    let late = run(&s.next, Input::Timer { kind, token }, 2000);
    assert!(late.effects.is_empty() && late.transition.is_none());
}

#[test]
fn restart_stops_then_spawns_once() {
    let inst = online(9, 0);
    let s = run(&inst, Input::Command(Command::Restart), 10);
    assert_eq!(s.next.status, Status::Stopping);
    assert_eq!(s.next.restarts, 1);
    let s = run(
        &s.next,
        Input::Exited {
            pid: 9,
            exit: crash(0),
        },
        20,
    );
    assert_eq!(s.next.status, Status::Launching);
    assert_eq!(s.effects, vec![Effect::Spawn]);
}

#[test]
fn restart_of_errored_starts_afresh() {
    let mut inst = Instance::new();
    inst.status = Status::Errored;
    inst.unstable_restarts = 16;
    let s = run(&inst, Input::Command(Command::Restart), 0);
    assert_eq!(s.next.status, Status::Launching);
    assert_eq!(s.next.unstable_restarts, 0);
}

#[test]
fn restart_of_a_stopped_instance_is_a_start_not_counted() {
    let mut inst = Instance::new();
    inst.status = Status::Stopped;
    inst.restarts = 2;
    let s = run(&inst, Input::Command(Command::Restart), 0);
    assert_eq!(s.next.status, Status::Launching);
    assert_eq!(s.effects, vec![Effect::Spawn]);
    assert_eq!(s.next.restarts, 2, "PM2 counts no restart when nothing ran");
}

#[test]
fn stop_while_waiting_cancels_the_restart() {
    let inst = online(1, 0);
    let s = run(
        &inst,
        Input::Exited {
            pid: 1,
            exit: crash(1),
        },
        10,
    );
    let token = s.next.timer;
    let s = run(&s.next, Input::Command(Command::Stop), 11);
    assert_eq!(s.next.status, Status::Stopped);
    let late = run(
        &s.next,
        Input::Timer {
            kind: TimerKind::RestartDelay,
            token,
        },
        12,
    );
    assert!(late.effects.is_empty());
}

#[test]
fn foreign_exits_are_ignored() {
    let inst = online(1, 0);
    let s = run(
        &inst,
        Input::Exited {
            pid: 2,
            exit: crash(1),
        },
        10,
    );
    assert_eq!(s.next, inst);
    assert!(s.transition.is_none());
}

#[test]
fn reset_zeroes_counters() {
    let mut inst = online(1, 0);
    inst.restarts = 5;
    inst.unstable_restarts = 2;
    let s = run(&inst, Input::Command(Command::Reset), 0);
    assert_eq!((s.next.restarts, s.next.unstable_restarts), (0, 0));
    assert_eq!(s.next.status, Status::Online);
}

#[test]
fn exponential_backoff_grows_caps_and_resets() {
    let p = RestartPolicy {
        exp_backoff_restart_delay_ms: Some(100),
        max_restarts: 1000,
        ..policy()
    };
    let mut inst = online(1, 0);
    let mut delays = vec![];
    for pid in 1..=15u32 {
        let (crashed, next) = crash_and_respawn(&inst, &p, pid, u64::from(pid) * 10);
        let Some(Transition {
            reason: Reason::Crashed { delay_ms, .. },
            ..
        }) = crashed.transition
        else {
            panic!()
        };
        delays.push(delay_ms);
        inst = next.unwrap();
    }
    assert_eq!(&delays[..4], &[100, 150, 225, 337]);
    assert_eq!(*delays.last().unwrap(), BACKOFF_CAP_MS);
    // A 30 s stable run starts over.
    let (s, _) = crash_and_respawn(&inst, &p, 16, 150 + 31_000);
    assert!(matches!(
        s.transition.unwrap().reason,
        Reason::Crashed { delay_ms: 100, .. }
    ));
}

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        prop_oneof![
            Just(Command::Start),
            Just(Command::Stop),
            Just(Command::Restart),
            Just(Command::Reset),
            Just(Command::StartOrRestart)
        ]
        .prop_map(Input::Command),
        (1u32..4).prop_map(|pid| Input::Spawned { pid }),
        (1u32..4).prop_map(|pid| Input::Ready {
            pid,
            how: "sd_notify".into()
        }),
        any::<bool>().prop_map(|transient| Input::SpawnFailed {
            error: "boom".into(),
            transient,
        }),
        (
            1u32..4,
            prop::option::of(0i32..4),
            prop::option::of(1i32..16)
        )
            .prop_map(|(pid, code, signal)| Input::Exited {
                pid,
                exit: Exit { code, signal }
            }),
        (
            prop_oneof![
                Just(TimerKind::KillTimeout),
                Just(TimerKind::RestartDelay),
                Just(TimerKind::ReadyTimeout)
            ],
            0u64..40
        )
            .prop_map(|(kind, token)| Input::Timer { kind, token }),
    ]
}

fn any_readiness() -> impl Strategy<Value = Readiness> {
    prop_oneof![
        Just(Readiness::AtSpawn),
        (1u64..50).prop_map(|timeout_ms| Readiness::ReportedOrAfter { timeout_ms }),
        (1u64..50).prop_map(|timeout_ms| Readiness::Reported { timeout_ms }),
    ]
}

fn any_policy() -> impl Strategy<Value = RestartPolicy> {
    (
        any::<bool>(),
        0u32..4,
        0u64..50,
        prop::option::of(1u64..200),
        prop::collection::vec(0i32..4, 0..2),
    )
        .prop_map(
            |(autorestart, max_restarts, min_uptime_ms, backoff, stop_exit_codes)| RestartPolicy {
                autorestart,
                max_restarts,
                min_uptime_ms,
                restart_delay_ms: 0,
                exp_backoff_restart_delay_ms: backoff,
                stop_exit_codes,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Invariants over any sequence of inputs:
    /// - a transition is reported exactly when the status changes (one event per transition);
    /// - a live process is let go of only on its own exit, and a spawn is only asked for
    ///   when none is live (never two per instance), judged on the state before the step;
    /// - online implies a process;
    /// - a live process exists only while online or stopping, or launching when the app
    ///   reports readiness;
    /// - `errored` only when the spawn failed or the policy gave up.
    #[test]
    fn invariants_hold(policy in any_policy(), ready in any_readiness(), inputs in prop::collection::vec((any_input(), 0u64..30), 1..60)) {
        let mut inst = Instance::new();
        let mut now = 0;
        for (input, dt) in inputs {
            // Feed only inputs the actor could produce: spawn results answer a spawn request.
            now += dt;
            let s = step(&inst, &policy, KILL, ready, input.clone(), now);
            prop_assert_eq!(s.transition.is_some(), s.next.status != inst.status);
            if let Some(t) = &s.transition {
                prop_assert_eq!(t.from, inst.status);
                prop_assert_eq!(t.to, s.next.status);
                if t.to == Status::Errored {
                    let gave_up = matches!(t.reason, Reason::GaveUp { .. } | Reason::SpawnFailed { .. });
                    prop_assert!(gave_up, "errored without giving up: {:?}", t.reason);
                }
            }
            // The process that was live before the step: only its own exit lets go of it,
            // and only then may a new one be asked for.
            let ended = |pid| matches!(&input, Input::Exited { pid: p, .. } if *p == pid);
            if let Some(live) = inst.pid {
                prop_assert!(s.next.pid == Some(live) || ended(live), "pid {} dropped by {:?}", live, input);
            }
            if s.effects.contains(&Effect::Spawn) {
                prop_assert!(inst.pid.is_none_or(ended), "spawn while pid {:?} lives", inst.pid);
                prop_assert!(s.next.pid.is_none());
                prop_assert_eq!(s.next.status, Status::Launching);
            }
            if s.next.status == Status::Online {
                prop_assert!(s.next.pid.is_some(), "online without a process");
            }
            if s.next.pid.is_some() {
                let waits = ready != Readiness::AtSpawn && s.next.status == Status::Launching;
                prop_assert!(waits || matches!(s.next.status, Status::Online | Status::Stopping));
            }
            if s.next.status == Status::Errored && inst.status != Status::Errored {
                prop_assert!(s.next.error.is_some());
            }
            let timers = s.effects.iter().filter(|e| matches!(e, Effect::ArmTimer { .. })).count();
            prop_assert!(timers <= 1);
            inst = s.next;
        }
    }

    /// `errored` by giving up comes only after exactly `max_restarts` unstable restarts.
    #[test]
    fn gives_up_only_after_max_restarts(max in 0u32..6) {
        let p = RestartPolicy { max_restarts: max, ..RestartPolicy::default() };
        let mut inst = online(1, 0);
        let mut restarts = 0;
        for pid in 1..100u32 {
            match crash_and_respawn(&inst, &p, pid, 1) {
                (_, Some(next)) => inst = next,
                (s, None) => {
                    prop_assert_eq!(s.next.status, Status::Errored);
                    break;
                }
            }
            restarts += 1;
        }
        prop_assert_eq!(restarts, max);
    }
}

/// The sequence proptest once shrank a failure to (it was recorded in a file proptest no
/// longer reads): restart, spawned, stop, then the answer to a spawn nobody asked for.
#[test]
fn a_stray_spawn_failure_during_a_stop_keeps_the_live_process_and_spawns_nothing() {
    let p = RestartPolicy {
        autorestart: false,
        max_restarts: 0,
        ..RestartPolicy::default()
    };
    let go = |inst: &Instance, input| step(inst, &p, KILL, Readiness::AtSpawn, input, 0);
    let s = go(&Instance::new(), Input::Command(Command::Restart));
    assert_eq!(s.effects, vec![Effect::Spawn]);
    let s = go(&s.next, Input::Spawned { pid: 1 });
    assert_eq!((s.next.status, s.next.pid), (Status::Online, Some(1)));
    let stopping = go(&s.next, Input::Command(Command::Stop)).next;
    assert_eq!(stopping.status, Status::Stopping);
    let s = go(
        &stopping,
        Input::SpawnFailed {
            error: "boom".into(),
            transient: false,
        },
    );
    assert_eq!(s.next.pid, Some(1), "the live process is still there");
    assert!(s.transition.is_none_or(|t| t.to != Status::Errored));
    assert!(!s.effects.contains(&Effect::Spawn));
}

fn with_ready(inst: &Instance, ready: Readiness, input: Input, now: Millis) -> Step {
    step(inst, &policy(), KILL, ready, input, now)
}

/// Instance launched with `ready`, its process `pid` spawned at `now`.
fn awaiting(ready: Readiness, pid: u32, now: Millis) -> Step {
    let s = with_ready(&Instance::new(), ready, Input::Command(Command::Start), now);
    with_ready(&s.next, ready, Input::Spawned { pid }, now)
}

#[test]
fn a_process_that_reports_readiness_is_online_when_it_says_so() {
    let ready = Readiness::Reported { timeout_ms: 3000 };
    let s = awaiting(ready, 7, 100);
    assert_eq!(s.next.status, Status::Launching, "spawned is not ready");
    assert_eq!(s.next.pid, Some(7));
    assert!(s.transition.is_none());
    let timer = s.next.timer;
    assert_eq!(
        s.effects,
        vec![Effect::ArmTimer {
            kind: TimerKind::ReadyTimeout,
            token: timer,
            after_ms: 3000
        }]
    );
    // Another process's report is ignored.
    let other = Input::Ready {
        pid: 8,
        how: "sd_notify".into(),
    };
    assert_eq!(with_ready(&s.next, ready, other, 150).next, s.next);
    let ready_input = Input::Ready {
        pid: 7,
        how: "sd_notify".into(),
    };
    let r = with_ready(&s.next, ready, ready_input, 350);
    assert_eq!(r.next.status, Status::Online);
    assert_eq!(
        r.transition.unwrap().reason,
        Reason::Ready {
            pid: 7,
            how: "sd_notify".into(),
            after_ms: 250
        }
    );
    // The ready timeout is disarmed: its timer is stale now.
    let late = Input::Timer {
        kind: TimerKind::ReadyTimeout,
        token: timer,
    };
    assert_eq!(with_ready(&r.next, ready, late, 4000).next, r.next);
}

#[test]
fn silence_means_ready_or_failed_depending_on_the_readiness_asked_for() {
    let lenient = Readiness::ReportedOrAfter { timeout_ms: 500 };
    let s = awaiting(lenient, 7, 0);
    let timer = Input::Timer {
        kind: TimerKind::ReadyTimeout,
        token: s.next.timer,
    };
    let t = with_ready(&s.next, lenient, timer, 500);
    assert_eq!(t.next.status, Status::Online);
    assert!(matches!(
        t.transition.unwrap().reason,
        Reason::AssumedReady {
            pid: 7,
            timeout_ms: 500
        }
    ));

    let strict = Readiness::Reported { timeout_ms: 500 };
    let s = awaiting(strict, 7, 0);
    let timer = Input::Timer {
        kind: TimerKind::ReadyTimeout,
        token: s.next.timer,
    };
    let t = with_ready(&s.next, strict, timer, 500);
    assert_eq!(t.next.status, Status::Stopping, "stopped gracefully");
    assert_eq!(t.next.error.as_deref(), Some("not ready within 500 ms"));
    assert_eq!(t.effects[0], Effect::Signal(2));
    // Once gone, it counts as an unstable run, even with a long uptime and a code that
    // would mean "done".
    let p = RestartPolicy {
        stop_exit_codes: vec![0],
        ..policy()
    };
    let exit = Exit {
        code: Some(0),
        signal: None,
    };
    let gone = step(
        &t.next,
        &p,
        KILL,
        strict,
        Input::Exited { pid: 7, exit },
        60_000,
    );
    assert_eq!(gone.next.status, Status::WaitingRestart);
    assert!(matches!(
        gone.transition.unwrap().reason,
        Reason::Crashed {
            unstable: true,
            unstable_restarts: 1,
            ..
        }
    ));
    // With no restarts left, failing to become ready makes it errored.
    let p = RestartPolicy {
        max_restarts: 0,
        ..policy()
    };
    let gone = step(
        &t.next,
        &p,
        KILL,
        strict,
        Input::Exited { pid: 7, exit },
        600,
    );
    assert_eq!(gone.next.status, Status::Errored);
}

#[test]
fn a_stop_while_waiting_for_readiness_stops_the_process() {
    let ready = Readiness::Reported { timeout_ms: 3000 };
    let s = awaiting(ready, 7, 0);
    let stop = with_ready(&s.next, ready, Input::Command(Command::Stop), 10);
    assert_eq!(stop.next.status, Status::Stopping);
    assert_eq!(stop.effects[0], Effect::Signal(2));
    let exit = Exit {
        code: None,
        signal: Some(2),
    };
    let gone = with_ready(&stop.next, ready, Input::Exited { pid: 7, exit }, 20);
    assert_eq!(gone.next.status, Status::Stopped);
}
