//! Rolling reload: each instance is replaced by a new process that must be ready before the
//! old one leaves, one instance at a time (or `parallel` at once). A new process that fails
//! to come up is cleaned up, the old one keeps serving, and the reload stops there.

use std::collections::VecDeque;

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, ReloadStep};
use pmx_core::state::{Command, Input, Status};
use pmx_core::view::ProcessView;
use tokio::sync::oneshot;

use super::{AppActor, Control};

/// Replace the instances `ids` (all when `None`).
#[derive(Message)]
#[rtype(result = "Reloaded")]
pub struct Reload {
    pub ids: Option<Vec<u32>>,
    pub parallel: usize,
    pub cause: Cause,
}

/// The instances after the reload, why it stopped early if it did, and what the user
/// should know about how it was done.
#[derive(Debug, Default, MessageResponse)]
pub struct Reloaded {
    pub views: Vec<ProcessView>,
    pub failure: Option<String>,
    pub note: Option<String>,
}

/// A reload in progress.
pub(super) struct Rolling {
    queue: VecDeque<u32>,
    parallel: usize,
    swaps: Vec<Swap>,
    ids: Vec<u32>,
    failure: Option<String>,
    cause: Cause,
    tx: oneshot::Sender<Reloaded>,
}

/// One instance being replaced.
struct Swap {
    id: u32,
    phase: Phase,
}

enum Phase {
    /// The instance was not running: it is simply (re)started.
    Restarting,
    /// The new process (slot `incoming`) is starting beside the old one.
    Starting { incoming: u64, old_pid: u32 },
    /// The new process is ready; the old one is stopping.
    Retiring { incoming: u64 },
    /// The new process failed and is being stopped.
    Abandoning { incoming: u64 },
}

impl Handler<Reload> for AppActor {
    type Result = ResponseFuture<Reloaded>;

    fn handle(&mut self, msg: Reload, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.rolling.is_some() || self.takeover.is_some() {
            let failure = Some(format!(
                "`{}` is busy (a reload or a takeover is in progress); try again",
                self.spec.name
            ));
            let _ = tx.send(Reloaded {
                views: self.views(&msg.ids),
                failure,
                note: None,
            });
        } else if self.spec.listen_addrs().is_empty() && !self.cluster_worker() {
            // Nothing holds the app's socket across processes: a reload is a restart.
            let (restarted, views) = oneshot::channel();
            let restart = Control {
                command: Command::Restart,
                ids: msg.ids,
                cause: msg.cause,
                seen: None,
            };
            self.control(restart, restarted, ctx);
            let note = Some(format!(
                "{} has no listen socket held by pmx: reloaded by a restart \
                 (give it `listen` for zero-downtime reloads)",
                self.spec.name
            ));
            return Box::pin(async move {
                let views = views.await.unwrap_or_default();
                Reloaded {
                    views,
                    failure: None,
                    note,
                }
            });
        } else {
            let ids: Vec<u32> = self
                .selected(&msg.ids)
                .iter()
                .map(|&i| self.slots[i].id)
                .collect();
            self.rolling = Some(Rolling {
                queue: ids.iter().copied().collect(),
                parallel: msg.parallel.max(1),
                swaps: Vec::new(),
                ids,
                failure: None,
                cause: msg.cause,
                tx,
            });
            self.settle(ctx);
        }
        Box::pin(async move { rx.await.unwrap_or_default() })
    }
}

impl AppActor {
    /// Moves the reload in progress on as far as the instances' states allow.
    pub(super) fn advance_reload(&mut self, ctx: &mut Context<Self>) {
        let Some(mut rolling) = self.rolling.take() else {
            return;
        };
        loop {
            let mut moved = false;
            let mut swaps = std::mem::take(&mut rolling.swaps);
            swaps.retain_mut(|swap| {
                let (progress, done) = self.step_swap(swap, &mut rolling, ctx);
                moved |= progress;
                !done
            });
            rolling.swaps = swaps;
            while rolling.swaps.len() < rolling.parallel && rolling.failure.is_none() {
                let Some(id) = rolling.queue.pop_front() else {
                    break;
                };
                if let Some(swap) = self.begin_swap(id, &rolling.cause, ctx) {
                    rolling.swaps.push(swap);
                }
                moved = true;
            }
            if !moved {
                break;
            }
        }
        let finished =
            rolling.swaps.is_empty() && (rolling.queue.is_empty() || rolling.failure.is_some());
        if !finished {
            self.rolling = Some(rolling);
            return;
        }
        let views = self.views(&Some(rolling.ids));
        let _ = rolling.tx.send(Reloaded {
            views,
            failure: rolling.failure,
            note: None,
        });
    }

    /// Starts replacing instance `id`: a new process beside a running one, or a plain
    /// restart of one that does not run.
    fn begin_swap(&mut self, id: u32, cause: &Cause, ctx: &mut Context<Self>) -> Option<Swap> {
        let old = self.position(id)?;
        let (status, pid) = (self.slots[old].machine.status, self.slots[old].machine.pid);
        let restart = Input::Command(Command::Restart);
        let (Status::Online, Some(old_pid)) = (status, pid) else {
            self.feed(old, restart, cause.clone(), ctx);
            return Some(Swap {
                id,
                phase: Phase::Restarting,
            });
        };
        let mut slot = self.new_slot(id, self.slots[old].index, true);
        slot.machine.restarts = self.slots[old].machine.restarts + 1;
        let incoming = slot.key;
        self.slots.push(slot);
        self.journal(
            Some(id),
            EventKind::Reload(ReloadStep::Replacing { old_pid }),
            cause.clone(),
        );
        let i = self.slots.len() - 1;
        self.feed(i, Input::Command(Command::Start), cause.clone(), ctx);
        Some(Swap {
            id,
            phase: Phase::Starting { incoming, old_pid },
        })
    }

    /// One step of one swap: (whether anything changed, whether the swap is over).
    fn step_swap(
        &mut self,
        swap: &mut Swap,
        rolling: &mut Rolling,
        ctx: &mut Context<Self>,
    ) -> (bool, bool) {
        let cause = rolling.cause.clone();
        let Some(old) = self.position(swap.id) else {
            return (true, true);
        };
        match swap.phase {
            Phase::Restarting => {
                let m = &self.slots[old].machine;
                if !m.status.is_settled() {
                    return (false, false);
                }
                if m.status != Status::Online {
                    rolling.failure = Some(format!(
                        "instance {} did not come up: {}",
                        swap.id,
                        self.why_not_up(old)
                    ));
                }
                (true, true)
            }
            Phase::Starting { incoming, old_pid } => {
                let Some(new) = self.find(incoming) else {
                    return (true, true);
                };
                match self.slots[new].machine.status {
                    Status::Launching => (false, false),
                    Status::Online => {
                        let new_pid = self.slots[new].machine.pid.unwrap_or_default();
                        let step = ReloadStep::Replaced { old_pid, new_pid };
                        self.journal(Some(swap.id), EventKind::Reload(step), cause.clone());
                        self.feed(old, Input::Command(Command::Stop), cause, ctx);
                        swap.phase = Phase::Retiring { incoming };
                        (true, false)
                    }
                    _ => {
                        let error = self.why_not_up(new);
                        let step = ReloadStep::Failed {
                            old_pid: Some(old_pid),
                            error: error.clone(),
                        };
                        self.journal(Some(swap.id), EventKind::Reload(step), cause.clone());
                        rolling.failure = Some(format!(
                            "the new process of instance {} did not become ready: {error}; \
                             the old one (pid {old_pid}) keeps running",
                            swap.id
                        ));
                        self.feed(new, Input::Command(Command::Stop), cause, ctx);
                        swap.phase = Phase::Abandoning { incoming };
                        (true, false)
                    }
                }
            }
            Phase::Retiring { incoming } => {
                if self.slots[old].machine.status.is_settled() {
                    // The old instance is gone: the new process takes its place.
                    if let Some(new) = self.find(incoming) {
                        self.slots[new].incoming = false;
                        self.slots.swap(old, new);
                        self.slots.remove(new);
                        // It ended while the old one drained (with no restart, as an
                        // incoming process): now the instance, it starts again, unless a
                        // stop ended the reload.
                        let stopped = self.slots[old].machine.status == Status::Stopped;
                        if stopped && rolling.failure.is_none() {
                            self.feed(old, Input::Command(Command::Start), cause, ctx);
                        }
                    }
                    return (true, true);
                }
                (false, false)
            }
            Phase::Abandoning { incoming } => match self.find(incoming) {
                Some(new) if self.slots[new].machine.status.is_settled() => {
                    self.slots.remove(new);
                    (true, true)
                }
                Some(_) => (false, false),
                None => (true, true),
            },
        }
    }

    /// Why slot `i` is not online, in words.
    fn why_not_up(&self, i: usize) -> String {
        let m = &self.slots[i].machine;
        if let Some(error) = &m.error {
            return error.clone();
        }
        match m.last_exit {
            Some(exit) => match (exit.code, exit.signal) {
                (Some(code), _) => format!("it exited with code {code}"),
                (_, Some(signal)) => format!("it was killed by signal {signal}"),
                _ => "it exited".into(),
            },
            None => format!("it is {}", m.status.as_str()),
        }
    }

    /// A command for the instances ends a reload in progress: its new processes stop.
    pub(super) fn abort_reload(&mut self, why: &str, cause: &Cause, ctx: &mut Context<Self>) {
        let Some(mut rolling) = self.rolling.take() else {
            return;
        };
        rolling.failure = Some(format!("the reload was interrupted by {why}"));
        rolling.queue.clear();
        for swap in &mut rolling.swaps {
            let incoming = match swap.phase {
                Phase::Starting { incoming, .. } => {
                    swap.phase = Phase::Abandoning { incoming };
                    incoming
                }
                // The new process is the instance already: the command applies to it too.
                Phase::Retiring { incoming } => incoming,
                Phase::Restarting | Phase::Abandoning { .. } => continue,
            };
            if let Some(new) = self.find(incoming) {
                self.feed(new, Input::Command(Command::Stop), cause.clone(), ctx);
            }
        }
        self.rolling = Some(rolling);
    }
}
