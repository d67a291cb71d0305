//! Stopping an instance's processes: signals to the whole family, the exit of a run, and
//! the wait for the rest of its family (drain) before the machine sees the exit.

use std::time::Duration;

use actix::prelude::*;
use pmx_core::Millis;
use pmx_core::event::{Cause, EventKind};
use pmx_core::state::{Exit, Input, Status};
use rustix::process::{Signal, pidfd_send_signal};

use super::{AppActor, DRAIN_POLL, Run};
use crate::clock::now_ms;
use crate::process::family;

impl AppActor {
    /// Signals the instance's whole family: the process through its pidfd, the rest by pid.
    pub(super) fn signal(&mut self, i: usize, signal: i32, cause: Cause) {
        let slot = &self.slots[i];
        let Some(run) = &slot.run else { return };
        let mut count = 0;
        let main_signalled = match (&run.pidfd, Signal::from_named_raw(signal)) {
            (Some(fd), Some(sig)) => pidfd_send_signal(fd, sig).is_ok(),
            _ => false,
        };
        count += main_signalled as u32;
        let others: Vec<u32> =
            family::members(Some(run.pid), run.pid, &run.token, &self.shared.managed)
                .into_iter()
                .filter(|&p| p != run.pid || !main_signalled)
                .collect();
        count += family::signal_all(&others, signal);
        let kind = EventKind::Signalled {
            pid: run.pid,
            signal,
            processes: count,
        };
        self.journal(Some(slot.id), kind, cause);
    }

    pub(super) fn exited(&mut self, i: usize, pid: u32, exit: Exit, ctx: &mut Context<Self>) {
        self.shared.managed.remove(pid);
        self.shared.sampler.unwatch(self.slots[i].id, pid);
        self.shared
            .policy
            .exited(&self.spec.name, self.slots[i].id, exit);
        let slot = &mut self.slots[i];
        let uptime_ms = now_ms().saturating_sub(slot.machine.started_at.unwrap_or(0));
        let id = slot.id;
        let stopping = slot.machine.status == Status::Stopping;
        let run = slot.run.take_if(|r| r.pid == pid);
        // Only this run's file: during a reload the process replacing it wrote its own.
        let path = self.pid_path(id);
        if std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == pid.to_string()) {
            let _ = std::fs::remove_file(path);
        }
        self.journal(
            Some(id),
            EventKind::Exited {
                pid,
                exit,
                uptime_ms,
            },
            Cause::Process,
        );
        match run {
            // A stop is complete only when everything the run started is gone too.
            Some(run) if stopping => {
                let deadline = now_ms() + self.spec.kill_timeout_ms;
                self.drain(i, run, exit, deadline, ctx);
            }
            // Respawn first: the leftovers scan is not on the crash-to-respawn path, and the
            // new run has its own token and process group.
            Some(run) => {
                self.feed(i, Input::Exited { pid, exit }, Cause::Process, ctx);
                self.clean_up_after_crash(run);
            }
            None => self.feed(i, Input::Exited { pid, exit }, Cause::Process, ctx),
        }
    }

    /// Waits for the rest of a stopped run's family (it already has the stop signal), SIGKILLs
    /// what is left at `deadline`, then lets the machine see the exit.
    pub(super) fn drain(
        &mut self,
        i: usize,
        run: Run,
        exit: Exit,
        deadline: Millis,
        ctx: &mut Context<Self>,
    ) {
        let left = family::members(None, run.pid, &run.token, &self.shared.managed);
        if !left.is_empty() && now_ms() < deadline {
            let key = self.slots[i].key;
            ctx.run_later(DRAIN_POLL, move |act, ctx| {
                if let Some(i) = act.find(key) {
                    act.drain(i, run, exit, deadline, ctx)
                }
            });
            return;
        }
        if !left.is_empty() {
            let processes = family::signal_all(&left, 9);
            let kind = EventKind::Signalled {
                pid: run.pid,
                signal: 9,
                processes,
            };
            self.journal(Some(self.slots[i].id), kind, Cause::Policy);
        }
        self.feed(i, Input::Exited { pid: run.pid, exit }, Cause::Process, ctx);
    }

    /// What a crashed run left behind gets the stop signal now and SIGKILL after
    /// `kill_timeout`, while the next run starts.
    pub(super) fn clean_up_after_crash(&self, run: Run) {
        let managed = &self.shared.managed;
        let left = family::members(None, run.pid, &run.token, managed);
        if left.is_empty() {
            return;
        }
        family::signal_all(&left, self.spec.kill_signal);
        let timeout = Duration::from_millis(self.spec.kill_timeout_ms);
        let managed = managed.clone();
        actix::spawn(async move {
            tokio::time::sleep(timeout).await;
            let left = family::members(None, run.pid, &run.token, &managed);
            family::signal_all(&left, 9);
        });
    }
}
