//! The vocabulary of the state machine: statuses, inputs, effects, and the reasons a
//! transition records.

use serde::{Deserialize, Serialize};

/// PM2's words for an instance's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Launching,
    Online,
    Stopping,
    Stopped,
    WaitingRestart,
    Errored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Launching => "launching",
            Status::Online => "online",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::WaitingRestart => "waiting restart",
            Status::Errored => "errored",
        }
    }

    /// Whether a command waiting on this instance can be answered.
    pub fn is_settled(self) -> bool {
        !matches!(self, Status::Launching | Status::Stopping)
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// What a stop in progress leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Stop,
    Restart,
    /// The process did not become ready in time: once it is gone, the restart policy
    /// treats it as an unstable run.
    Fail,
}

/// The commands a user (or later a policy) gives an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Start,
    Stop,
    Restart,
    /// Restart counters to zero.
    Reset,
    /// PM2's `start` of a registered app: a restart when it runs, a start otherwise.
    StartOrRestart,
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Escalate a graceful stop to SIGKILL.
    KillTimeout,
    /// The restart delay (or backoff) after a crash is over.
    RestartDelay,
    /// A launched process had this long to report that it is ready.
    ReadyTimeout,
}

/// When a launched process counts as online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as it is spawned.
    AtSpawn,
    /// When it reports ready, or when `timeout_ms` passed without a report.
    ReportedOrAfter { timeout_ms: u64 },
    /// When it reports ready; without a report within `timeout_ms` it failed to start.
    Reported { timeout_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Command(Command),
    Spawned {
        pid: u32,
    },
    /// `transient`: the machine was short of something (descriptors, processes, memory)
    /// that may come back: the spawn is tried again later instead of giving up.
    SpawnFailed {
        error: String,
        transient: bool,
    },
    Exited {
        pid: u32,
        exit: Exit,
    },
    /// The process reported that it is ready (`how`: sd_notify, the Node shim, a probe).
    Ready {
        pid: u32,
        how: String,
    },
    Timer {
        kind: TimerKind,
        token: u64,
    },
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start a process for the instance; answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send this signal to the instance's process and everything it spawned.
    Signal(i32),
    /// SIGKILL the instance's process and everything it spawned.
    Kill,
    /// Feed back `Timer { kind, token }` after `after_ms`.
    ArmTimer {
        kind: TimerKind,
        token: u64,
        after_ms: u64,
    },
}

/// Why a status changed. The journal records it as `record::Reason`, which this converts to.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A status change (the journal records it as `record::Transition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub reason: Reason,
}
