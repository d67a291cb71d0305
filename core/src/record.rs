//! The journal's own record of what the state machine decided: a `Transition` and its
//! `Reason`. The state machine converts its own types to these (`From`), so a change to how it
//! works inside cannot change what the journal holds; a change here is a change of the
//! journal's format (a new `EVENT_VERSION`, a golden fixture in `pmx_storage`'s tests). The
//! plain values a record names (`Status`, `Exit`, `Command`: PM2's words, on the protocol too)
//! are shared, and pinned by both the golden journals and the protocol's fixtures.

use serde::{Deserialize, Serialize};

use crate::state::{self, Command, Exit, Status};

/// A status change of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub reason: Reason,
}

/// Why a status changed, as the journal records it (`history` renders it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Reason {
    Command {
        command: Command,
    },
    Spawned {
        pid: u32,
    },
    /// A process launched with readiness checks said it is ready.
    Ready {
        pid: u32,
        how: String,
        after_ms: u64,
    },
    /// It said nothing within `timeout_ms`, which for this app means ready anyway.
    AssumedReady {
        pid: u32,
        timeout_ms: u64,
    },
    /// It said nothing within `timeout_ms` (`wait_ready`): it failed to start.
    NotReady {
        pid: u32,
        timeout_ms: u64,
    },
    SpawnFailed {
        error: String,
    },
    /// The spawn failed for want of a resource (EMFILE, EAGAIN, ...): tried again after
    /// `delay_ms`.
    SpawnRetry {
        error: String,
        delay_ms: u64,
    },
    /// The process exited while a stop was in progress.
    StopCompleted {
        exit: Exit,
    },
    /// The process exited on its own with a code listed in `stop_exit_codes`.
    StopExitCode {
        exit: Exit,
        uptime_ms: u64,
    },
    /// The process exited on its own and `autorestart` is off.
    NoAutorestart {
        exit: Exit,
        uptime_ms: u64,
    },
    /// The process exited on its own (or was stopped after it failed to become ready); a
    /// restart follows after `delay_ms`.
    Crashed {
        exit: Exit,
        uptime_ms: u64,
        unstable: bool,
        /// Unstable restarts in a row including this one.
        unstable_restarts: u32,
        max_restarts: u32,
        delay_ms: u64,
    },
    /// Too many unstable restarts in a row: the policy gives up.
    GaveUp {
        exit: Exit,
        uptime_ms: u64,
        unstable_restarts: u32,
        min_uptime_ms: u64,
    },
    RestartDelayElapsed,
}

impl From<state::Transition> for Transition {
    fn from(t: state::Transition) -> Self {
        Transition {
            from: t.from,
            to: t.to,
            reason: t.reason.into(),
        }
    }
}

impl From<state::Reason> for Reason {
    fn from(reason: state::Reason) -> Self {
        use Reason as R;
        use state::Reason as S;
        match reason {
            S::Command { command } => R::Command { command },
            S::Spawned { pid } => R::Spawned { pid },
            S::Ready { pid, how, after_ms } => R::Ready { pid, how, after_ms },
            S::AssumedReady { pid, timeout_ms } => R::AssumedReady { pid, timeout_ms },
            S::NotReady { pid, timeout_ms } => R::NotReady { pid, timeout_ms },
            S::SpawnFailed { error } => R::SpawnFailed { error },
            S::SpawnRetry { error, delay_ms } => R::SpawnRetry { error, delay_ms },
            S::StopCompleted { exit } => R::StopCompleted { exit },
            S::StopExitCode { exit, uptime_ms } => R::StopExitCode { exit, uptime_ms },
            S::NoAutorestart { exit, uptime_ms } => R::NoAutorestart { exit, uptime_ms },
            S::Crashed {
                exit,
                uptime_ms,
                unstable,
                unstable_restarts,
                max_restarts,
                delay_ms,
            } => R::Crashed {
                exit,
                uptime_ms,
                unstable,
                unstable_restarts,
                max_restarts,
                delay_ms,
            },
            S::GaveUp {
                exit,
                uptime_ms,
                unstable_restarts,
                min_uptime_ms,
            } => R::GaveUp {
                exit,
                uptime_ms,
                unstable_restarts,
                min_uptime_ms,
            },
            S::RestartDelayElapsed => R::RestartDelayElapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason the state machine gives, converted and written as the journal writes it:
    /// a change of this text is a change of the journal's format.
    #[test]
    fn every_reason_is_written_as_the_journal_has_always_written_it() {
        use state::Reason as S;
        let exit = Exit {
            code: Some(1),
            signal: None,
        };
        let cases = [
            (
                S::Command {
                    command: Command::Restart,
                },
                r#"{"reason":"command","command":"restart"}"#,
            ),
            (S::Spawned { pid: 7 }, r#"{"reason":"spawned","pid":7}"#),
            (
                S::Ready {
                    pid: 7,
                    how: "sd_notify".into(),
                    after_ms: 5,
                },
                r#"{"reason":"ready","pid":7,"how":"sd_notify","after_ms":5}"#,
            ),
            (
                S::AssumedReady {
                    pid: 7,
                    timeout_ms: 3000,
                },
                r#"{"reason":"assumed_ready","pid":7,"timeout_ms":3000}"#,
            ),
            (
                S::NotReady {
                    pid: 7,
                    timeout_ms: 3000,
                },
                r#"{"reason":"not_ready","pid":7,"timeout_ms":3000}"#,
            ),
            (
                S::SpawnFailed {
                    error: "ENOENT".into(),
                },
                r#"{"reason":"spawn_failed","error":"ENOENT"}"#,
            ),
            (
                S::SpawnRetry {
                    error: "EMFILE".into(),
                    delay_ms: 100,
                },
                r#"{"reason":"spawn_retry","error":"EMFILE","delay_ms":100}"#,
            ),
            (
                S::StopCompleted { exit },
                r#"{"reason":"stop_completed","exit":{"code":1,"signal":null}}"#,
            ),
            (
                S::StopExitCode { exit, uptime_ms: 9 },
                r#"{"reason":"stop_exit_code","exit":{"code":1,"signal":null},"uptime_ms":9}"#,
            ),
            (
                S::NoAutorestart { exit, uptime_ms: 9 },
                r#"{"reason":"no_autorestart","exit":{"code":1,"signal":null},"uptime_ms":9}"#,
            ),
            (
                S::Crashed {
                    exit,
                    uptime_ms: 9,
                    unstable: true,
                    unstable_restarts: 2,
                    max_restarts: 15,
                    delay_ms: 0,
                },
                concat!(
                    r#"{"reason":"crashed","exit":{"code":1,"signal":null},"uptime_ms":9,"#,
                    r#""unstable":true,"unstable_restarts":2,"max_restarts":15,"delay_ms":0}"#
                ),
            ),
            (
                S::GaveUp {
                    exit,
                    uptime_ms: 9,
                    unstable_restarts: 16,
                    min_uptime_ms: 1000,
                },
                concat!(
                    r#"{"reason":"gave_up","exit":{"code":1,"signal":null},"uptime_ms":9,"#,
                    r#""unstable_restarts":16,"min_uptime_ms":1000}"#
                ),
            ),
            (
                S::RestartDelayElapsed,
                r#"{"reason":"restart_delay_elapsed"}"#,
            ),
        ];
        for (reason, written) in cases {
            let recorded = Reason::from(reason);
            let json = serde_json::to_string(&recorded).unwrap_or_default();
            assert_eq!(json, written);
            let read: Reason = serde_json::from_str(written).expect("it reads back");
            assert_eq!(read, recorded);
        }
        let t = state::Transition {
            from: Status::Online,
            to: Status::WaitingRestart,
            reason: S::RestartDelayElapsed,
        };
        let json = serde_json::to_string(&Transition::from(t)).unwrap_or_default();
        let written = r#"{"from":"online","to":"waiting-restart","reason":{"reason":"restart_delay_elapsed"}}"#;
        assert_eq!(json, written);
    }
}
