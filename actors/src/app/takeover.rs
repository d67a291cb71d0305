//! Taking over after a daemon crash: processes of the previous daemon's runs that still run
//! (checked by pid and start time, never the pid alone) are stopped with their whole family
//! — kill_signal, then SIGKILL after kill_timeout — before the app starts again, so no
//! instance ever runs twice. Commands that arrive meanwhile wait for it.
//!
//! pmx stops orphans rather than adopting them: a process that is not our child cannot be
//! waited for, so its exit code would be unknown to the restart policy (stop_exit_codes,
//! min_uptime), and its descendants can no longer be found through the subreaper.

use std::time::Duration;

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::event::{Cause, EventKind};

use super::AppActor;
use crate::clock::now_ms;
use crate::process::{family, identity};

/// A previous daemon's run of one instance, and the processes of it found alive.
pub struct Orphan {
    pub id: u32,
    /// The run's main process, as journaled (it may be gone while descendants remain).
    pub pid: u32,
    /// Live processes of the run: (pid, start time).
    pub processes: Vec<(u32, u64)>,
}

/// A takeover in progress.
pub(super) struct Takeover {
    orphans: Vec<Orphan>,
    deadline: Millis,
    killed: bool,
}

const POLL: Duration = Duration::from_millis(20);
/// After SIGKILL, how long to wait before giving up on a process (uninterruptible sleep).
const AFTER_KILL_MS: u64 = 2_000;

fn still_alive(processes: &[(u32, u64)]) -> Vec<u32> {
    processes
        .iter()
        .filter(|&&(pid, start)| identity::start_time(pid) == Some(start))
        .map(|&(pid, _)| pid)
        .collect()
}

impl AppActor {
    /// Starts stopping the orphans; `finish_takeover` runs the deferred commands.
    pub(super) fn begin_takeover(&mut self, orphans: Vec<Orphan>, ctx: &mut Context<Self>) {
        for orphan in &orphans {
            let pids: Vec<u32> = orphan.processes.iter().map(|&(p, _)| p).collect();
            family::signal_all(&pids, self.spec.kill_signal);
        }
        self.takeover = Some(Takeover {
            orphans,
            deadline: now_ms() + self.spec.kill_timeout_ms,
            killed: false,
        });
        self.poll_takeover(ctx);
    }

    fn poll_takeover(&mut self, ctx: &mut Context<Self>) {
        let Some(t) = &mut self.takeover else { return };
        let left: Vec<u32> = t
            .orphans
            .iter()
            .flat_map(|o| still_alive(&o.processes))
            .collect();
        let now = now_ms();
        if left.is_empty() || (t.killed && now >= t.deadline) {
            if !left.is_empty() {
                crate::say!(
                    "pmx: {}: processes {left:?} of a previous run survive SIGKILL",
                    self.spec.name
                );
            }
            return self.finish_takeover(ctx);
        }
        if now >= t.deadline {
            family::signal_all(&left, 9);
            t.killed = true;
            t.deadline = now + AFTER_KILL_MS;
        }
        ctx.run_later(POLL, |act, ctx| act.poll_takeover(ctx));
    }

    fn finish_takeover(&mut self, ctx: &mut Context<Self>) {
        let Some(t) = self.takeover.take() else {
            return;
        };
        for orphan in t.orphans {
            let kind = EventKind::OrphanStopped {
                pid: orphan.pid,
                processes: orphan.processes.len() as u32,
            };
            self.journal(Some(orphan.id), kind, Cause::Boot);
        }
        for (control, tx) in std::mem::take(&mut self.deferred) {
            self.control(control, tx, ctx);
        }
    }
}
