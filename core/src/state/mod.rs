//! The instance state machine: `step(instance, policy, input, now) -> Step`. Pure: no clock,
//! no I/O. The app actor feeds it commands, process facts and timer expiries and carries out
//! the effects it returns. Every status change comes back as exactly one `Transition`, which
//! the actor journals.

use serde::{Deserialize, Serialize};

use crate::Millis;
use crate::spec::RestartPolicy;

mod types;
pub use types::*;

/// A spawn that failed for want of a resource is tried again after this, doubling up to
/// `BACKOFF_CAP_MS`.
pub const SPAWN_RETRY_FIRST_MS: u64 = 100;

/// Backoff is capped here, and reset after a run this long (PM2's figures).
pub const BACKOFF_CAP_MS: u64 = 15_000;
pub const BACKOFF_RESET_AFTER_MS: u64 = 30_000;

/// One instance's supervision state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub status: Status,
    /// The live process, if any: present only while `online` or `stopping`.
    pub pid: Option<u32>,
    /// When the current process was spawned.
    pub started_at: Option<Millis>,
    /// PM2's `restart_time`: every restart, by crash or by command, once it happened.
    pub restarts: u32,
    /// Unstable restarts in a row (runs shorter than `min_uptime`).
    pub unstable_restarts: u32,
    /// The next exponential backoff delay, when backoff is on.
    pub backoff_ms: Option<u64>,
    /// The delay before the next try of a spawn that keeps failing for want of a resource.
    #[serde(default)]
    pub spawn_retry_ms: Option<u64>,
    /// What the stop in progress leads to.
    pub intent: Intent,
    /// Token of the one armed timer; a timer with another token is stale.
    pub timer: u64,
    pub last_exit: Option<Exit>,
    /// Why the instance is `errored`.
    pub error: Option<String>,
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: Instance,
    pub transition: Option<Transition>,
    pub effects: Vec<Effect>,
}

impl Instance {
    /// A new instance is stopped until a `Start` command.
    pub fn new() -> Self {
        Self {
            status: Status::Stopped,
            pid: None,
            started_at: None,
            restarts: 0,
            unstable_restarts: 0,
            backoff_ms: None,
            spawn_retry_ms: None,
            intent: Intent::Stop,
            timer: 0,
            last_exit: None,
            error: None,
        }
    }
}

/// The transition function. See the module docs.
pub fn step(
    current: &Instance,
    policy: &RestartPolicy,
    kill: KillPolicy,
    ready: Readiness,
    input: Input,
    now: Millis,
) -> Step {
    let mut m = Machine {
        next: current.clone(),
        transition: None,
        effects: Vec::new(),
    };
    m.apply(policy, kill, ready, input, now);
    Step {
        next: m.next,
        transition: m.transition,
        effects: m.effects,
    }
}

/// How to stop a process: the graceful signal and how long to wait before SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillPolicy {
    pub signal: i32,
    pub timeout_ms: u64,
}

struct Machine {
    next: Instance,
    transition: Option<Transition>,
    effects: Vec<Effect>,
}

impl Machine {
    fn go(&mut self, to: Status, reason: Reason) {
        let from = self.next.status;
        self.next.status = to;
        self.transition = Some(Transition { from, to, reason });
    }

    fn arm(&mut self, kind: TimerKind, after_ms: u64) {
        self.next.timer += 1;
        self.effects.push(Effect::ArmTimer {
            kind,
            token: self.next.timer,
            after_ms,
        });
    }

    fn launch(&mut self, reason: Reason) {
        self.go(Status::Launching, reason);
        self.effects.push(Effect::Spawn);
    }

    fn begin_stop(&mut self, kill: KillPolicy, intent: Intent, reason: Reason) {
        self.next.intent = intent;
        self.go(Status::Stopping, reason);
        if self.next.pid.is_some() {
            self.effects.push(Effect::Signal(kill.signal));
            self.arm(TimerKind::KillTimeout, kill.timeout_ms);
        }
    }

    fn apply(
        &mut self,
        policy: &RestartPolicy,
        kill: KillPolicy,
        ready: Readiness,
        input: Input,
        now: Millis,
    ) {
        use Status::*;
        let status = self.next.status;
        match input {
            Input::Command(command) => self.command(kill, command),
            // Spawn results answer a spawn in progress (launching with no process yet).
            Input::Spawned { pid } => match status {
                Launching if self.next.pid.is_none() => {
                    self.next.pid = Some(pid);
                    self.next.started_at = Some(now);
                    self.next.error = None;
                    self.next.spawn_retry_ms = None;
                    match ready {
                        Readiness::AtSpawn => self.go(Online, Reason::Spawned { pid }),
                        // Launching with a pid: waiting for the process to say it is ready.
                        Readiness::ReportedOrAfter { timeout_ms }
                        | Readiness::Reported { timeout_ms } => {
                            self.arm(TimerKind::ReadyTimeout, timeout_ms)
                        }
                    }
                }
                // A stop arrived while launching: stop the new process right away.
                Stopping if self.next.pid.is_none() => {
                    self.next.pid = Some(pid);
                    self.next.started_at = Some(now);
                    self.effects.push(Effect::Signal(kill.signal));
                    self.arm(TimerKind::KillTimeout, kill.timeout_ms);
                }
                // No spawn was asked for: the actor never feeds this.
                _ => {}
            },
            Input::SpawnFailed { error, transient } => match status {
                Launching if self.next.pid.is_none() && transient => {
                    let delay_ms = self.next.spawn_retry_ms.unwrap_or(SPAWN_RETRY_FIRST_MS);
                    self.next.spawn_retry_ms = Some((delay_ms * 2).min(BACKOFF_CAP_MS));
                    self.go(WaitingRestart, Reason::SpawnRetry { error, delay_ms });
                    self.arm(TimerKind::RestartDelay, delay_ms);
                }
                Launching if self.next.pid.is_none() => {
                    self.next.spawn_retry_ms = None;
                    self.next.error = Some(error.clone());
                    self.go(Errored, Reason::SpawnFailed { error });
                }
                Stopping if self.next.pid.is_none() => {
                    self.go(Stopped, Reason::SpawnFailed { error })
                }
                _ => {}
            },
            Input::Ready { pid, how } => {
                if status == Launching && self.next.pid == Some(pid) {
                    self.next.timer += 1; // disarm the ready timeout
                    let after_ms = now.saturating_sub(self.next.started_at.unwrap_or(now));
                    self.go(Online, Reason::Ready { pid, how, after_ms });
                }
            }
            Input::Exited { pid, exit } => {
                if self.next.pid != Some(pid) {
                    return; // a stale or foreign exit
                }
                let uptime_ms = now.saturating_sub(self.next.started_at.unwrap_or(now));
                self.next.pid = None;
                self.next.last_exit = Some(exit);
                if status == Stopping {
                    self.next.timer += 1; // disarm the kill timeout
                    match self.next.intent {
                        Intent::Restart => self.launch(Reason::StopCompleted { exit }),
                        Intent::Stop => self.go(Stopped, Reason::StopCompleted { exit }),
                        Intent::Fail => self.exited_on_its_own(policy, exit, uptime_ms, true),
                    }
                } else {
                    self.exited_on_its_own(policy, exit, uptime_ms, false);
                }
            }
            Input::Timer { kind, token } => {
                if token != self.next.timer {
                    return;
                }
                match (kind, status) {
                    (TimerKind::KillTimeout, Stopping) if self.next.pid.is_some() => {
                        self.effects.push(Effect::Kill)
                    }
                    (TimerKind::RestartDelay, WaitingRestart) => {
                        self.count_pending_restart();
                        self.launch(Reason::RestartDelayElapsed)
                    }
                    (TimerKind::ReadyTimeout, Launching) => self.ready_timeout(kill, ready),
                    _ => {}
                }
            }
        }
    }

    fn command(&mut self, kill: KillPolicy, command: Command) {
        use Status::*;
        let reason = Reason::Command { command };
        let status = self.next.status;
        match command {
            Command::Start => match status {
                Stopped | Errored => {
                    self.next.unstable_restarts = 0;
                    self.next.backoff_ms = None;
                    self.launch(reason);
                }
                // A pending restart is brought forward.
                WaitingRestart => {
                    self.next.timer += 1;
                    self.count_pending_restart();
                    self.launch(reason);
                }
                Stopping => self.next.intent = Intent::Restart,
                Launching | Online => {}
            },
            Command::Stop => match status {
                Online | Launching => self.begin_stop(kill, Intent::Stop, reason),
                Stopping => self.next.intent = Intent::Stop,
                WaitingRestart => {
                    self.next.timer += 1;
                    self.go(Stopped, reason);
                }
                Stopped | Errored => {}
            },
            Command::StartOrRestart => {
                let then = match status {
                    Online | Launching => Command::Restart,
                    _ => Command::Start,
                };
                self.command(kill, then);
            }
            Command::Restart => {
                self.next.restarts += 1;
                self.next.unstable_restarts = 0;
                self.next.backoff_ms = None;
                match status {
                    Online => self.begin_stop(kill, Intent::Restart, reason),
                    Stopping => self.next.intent = Intent::Restart,
                    WaitingRestart => {
                        self.next.timer += 1;
                        self.launch(reason);
                    }
                    // Nothing runs: as PM2, a restart of a stopped instance is a start,
                    // and not counted.
                    Stopped | Errored => {
                        self.next.restarts -= 1;
                        self.launch(reason);
                    }
                    // Already starting: the restart is the start in progress.
                    Launching => self.next.restarts -= 1,
                }
            }
            Command::Reset => {
                self.next.restarts = 0;
                self.next.unstable_restarts = 0;
                self.next.backoff_ms = None;
            }
        }
    }

    /// A launched process said nothing within its time: online anyway, or failed to start.
    fn ready_timeout(&mut self, kill: KillPolicy, ready: Readiness) {
        let Some(pid) = self.next.pid else { return };
        match ready {
            Readiness::AtSpawn => {}
            Readiness::ReportedOrAfter { timeout_ms } => {
                self.go(Status::Online, Reason::AssumedReady { pid, timeout_ms })
            }
            Readiness::Reported { timeout_ms } => {
                self.next.error = Some(format!("not ready within {timeout_ms} ms"));
                self.begin_stop(kill, Intent::Fail, Reason::NotReady { pid, timeout_ms });
            }
        }
    }

    /// A restart after a crash counts when it happens, as PM2's `restart_time` does (a crash
    /// waiting out its `restart_delay` has not restarted yet); a retried spawn is no restart.
    fn count_pending_restart(&mut self) {
        if self.next.spawn_retry_ms.is_none() {
            self.next.restarts += 1;
        }
    }

    /// The restart policy's answer to a process that ended by itself; `failed`: it was stopped
    /// because it never became ready, which counts as an unstable run whatever its code.
    fn exited_on_its_own(
        &mut self,
        policy: &RestartPolicy,
        exit: Exit,
        uptime_ms: u64,
        failed: bool,
    ) {
        use Status::*;
        let code_means_done = exit
            .code
            .is_some_and(|code| policy.stop_exit_codes.contains(&code));
        if code_means_done && !failed {
            return self.go(Stopped, Reason::StopExitCode { exit, uptime_ms });
        }
        if !policy.autorestart {
            return self.go(Stopped, Reason::NoAutorestart { exit, uptime_ms });
        }
        let unstable = failed || uptime_ms < policy.min_uptime_ms;
        if unstable && self.next.unstable_restarts >= policy.max_restarts {
            let unstable_restarts = self.next.unstable_restarts;
            self.next.error = Some(format!(
                "{unstable_restarts} unstable restarts (each < min_uptime {} ms)",
                policy.min_uptime_ms
            ));
            return self.go(
                Errored,
                Reason::GaveUp {
                    exit,
                    uptime_ms,
                    unstable_restarts,
                    min_uptime_ms: policy.min_uptime_ms,
                },
            );
        }
        self.next.unstable_restarts = if unstable {
            self.next.unstable_restarts + 1
        } else {
            0
        };
        let delay_ms = self.restart_delay(policy, unstable, uptime_ms);
        self.go(
            WaitingRestart,
            Reason::Crashed {
                exit,
                uptime_ms,
                unstable,
                unstable_restarts: self.next.unstable_restarts,
                max_restarts: policy.max_restarts,
                delay_ms,
            },
        );
        self.arm(TimerKind::RestartDelay, delay_ms);
    }

    /// `restart_delay`, or the exponential backoff: starts at the given delay, grows ×1.5 per
    /// unstable restart up to 15 s, and starts over after 30 s of stable run.
    fn restart_delay(&mut self, policy: &RestartPolicy, unstable: bool, uptime_ms: u64) -> u64 {
        let Some(base) = policy.exp_backoff_restart_delay_ms else {
            return policy.restart_delay_ms;
        };
        let current = match self.next.backoff_ms {
            Some(b) if uptime_ms < BACKOFF_RESET_AFTER_MS => b,
            _ => base,
        };
        let grown = if unstable {
            current.saturating_mul(3) / 2
        } else {
            current
        };
        self.next.backoff_ms = Some(grown.min(BACKOFF_CAP_MS).max(base.min(BACKOFF_CAP_MS)));
        current.min(BACKOFF_CAP_MS)
    }
}

#[cfg(test)]
mod tests;
