//! The built-in policies of one app, in its actor: `cron_restart` (a timer to the next tick,
//! which starts stopped instances too, as PM2's does),
//! `watch` (debounced file changes), `max_memory_restart` (breaches the sampler reports), and
//! `scale` (instances added or retired without touching the others). A policy decides; the
//! daemon journals its decision and carries it out (`crate::decision`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Local};
use pmx_core::event::Cause;
use pmx_core::instances::InstanceNumber;
use pmx_core::state::{Command, Input, Status};
use pmx_core::units::six_field_cron;
use pmx_core::view::ProcessView;
use pmx_scripting::rules::Action;
use tokio::sync::oneshot;

use super::AppActor;
use crate::decision::{Decision, Seen};
use crate::sampler::MemoryBreach;
use crate::watch::FilesChanged;

/// The wall clock may jump: a far cron tick is re-checked at least this often.
const CRON_RECHECK: Duration = Duration::from_secs(3600);

/// Change the app's instances to these (the ones that stay keep their ids and processes).
#[derive(Message)]
#[rtype(result = "Vec<ProcessView>")]
pub struct Rescale {
    pub instances: Vec<InstanceNumber>,
    pub cause: Cause,
}

impl AppActor {
    /// Arms what the spec asks for; called when the actor starts.
    pub(super) fn arm_policies(&mut self, ctx: &mut Context<Self>) {
        self.arm_cron(None, ctx);
        self.start_watching(ctx);
        self.arm_health(ctx);
    }

    /// Instance `i` as a decision sees it: its id and the process it runs.
    pub(super) fn seen_as(&self, i: usize) -> (u32, Option<u32>) {
        let slot = &self.slots[i];
        (slot.id, slot.run.as_ref().map(|r| r.pid))
    }

    /// Decides to restart the instances `pick` keeps, as they are now: the daemon journals
    /// the decision with its cause, then carries it out (`crate::decision`).
    fn decide_restart(&self, pick: impl Fn(Status) -> bool, cause: Cause) {
        let seen: Seen = (self.selected(&None).into_iter())
            .filter(|&i| pick(self.slots[i].machine.status))
            .map(|i| self.seen_as(i))
            .collect();
        self.decide_restart_of(seen, cause);
    }

    fn decide_restart_of(&self, seen: Seen, cause: Cause) {
        if seen.is_empty() {
            return;
        }
        self.shared.desk.decide(Decision {
            app: self.spec.name.clone(),
            action: Action::Restart,
            seen: Some(seen),
            cause,
        });
    }

    /// Restarts every instance that runs (a stopped app stays stopped).
    pub(super) fn restart_running(&self, cause: Cause) {
        self.decide_restart(|s| !matches!(s, Status::Stopped | Status::Stopping), cause);
    }

    /// Sleeps until the next tick after `after` (or now), restarts, and sleeps again.
    fn arm_cron(&mut self, after: Option<DateTime<Local>>, ctx: &mut Context<Self>) {
        let Some(expr) = self.spec.options.cron_restart.clone() else {
            return;
        };
        let schedule = six_field_cron(&expr)
            .ok()
            .and_then(|six| cron::Schedule::from_str(&six).ok());
        let now = Local::now();
        let from = after.map_or(now, |a| a.max(now));
        let Some(tick) = schedule.and_then(|s| s.after(&from).next()) else {
            return;
        };
        let wait = (tick - now).to_std().unwrap_or_default();
        if wait > CRON_RECHECK {
            ctx.run_later(CRON_RECHECK, move |act, ctx| act.arm_cron(after, ctx));
            return;
        }
        ctx.run_later(wait, move |act, ctx| {
            let cause = Cause::rule(
                "cron_restart",
                format!("cron {expr} at {}", tick.format("%H:%M:%S")),
            );
            // Stopped instances too, as PM2 has it: a job with `autorestart: false` that ran
            // and exited runs again at each tick.
            act.decide_restart(|s| s != Status::Stopping, cause);
            act.arm_cron(Some(tick), ctx);
        });
    }

    /// Registers (again) the app's watched paths, ignoring its current instances' log files.
    fn start_watching(&mut self, ctx: &mut Context<Self>) {
        let o = &self.spec.options;
        if o.watch.is_empty() || self.watch_paused {
            return;
        }
        let cwd = Path::new(&self.spec.cwd);
        let roots: Vec<PathBuf> = o.watch.iter().map(|p| cwd.join(p)).collect();
        let own: Vec<PathBuf> = self
            .slots
            .iter()
            .flat_map(|s| {
                let files = self.log_files(s.id);
                [files.out, files.err, files.combined]
            })
            .flatten()
            .collect();
        let problems = self.shared.watch.register(
            &self.spec.name,
            roots,
            &o.ignore_watch,
            own,
            ctx.address().recipient(),
        );
        for problem in problems {
            crate::say!("pmx: {}: {problem}", self.spec.name);
        }
    }

    pub(super) fn stop_watching(&self) {
        if !self.spec.options.watch.is_empty() {
            self.shared.watch.unregister(&self.spec.name);
        }
    }
}

/// Pause (`stop`) or resume (`restart --watch`, a config that watches) the watching of the
/// spec's paths.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watching(pub bool);

impl Handler<Watching> for AppActor {
    type Result = ();

    fn handle(&mut self, msg: Watching, ctx: &mut Context<Self>) {
        if msg.0 != self.watch_paused {
            return;
        }
        self.watch_paused = !msg.0;
        if msg.0 {
            self.start_watching(ctx);
        } else {
            self.stop_watching();
            self.watch_pending = None;
        }
    }
}

impl Handler<FilesChanged> for AppActor {
    type Result = ();

    /// The first change arms the debounce; the restart names it.
    fn handle(&mut self, msg: FilesChanged, ctx: &mut Context<Self>) {
        if self.watch_pending.is_some() {
            return;
        }
        self.watch_pending = Some(msg.path);
        let delay = Duration::from_millis(self.spec.options.watch_delay_ms);
        ctx.run_later(delay, |act, _| {
            if let Some(path) = act.watch_pending.take() {
                let cause = Cause::rule("watch", format!("{} changed", path.display()));
                act.restart_running(cause);
            }
        });
    }
}

impl Handler<MemoryBreach> for AppActor {
    type Result = ();

    fn handle(&mut self, msg: MemoryBreach, _: &mut Context<Self>) {
        let Some(i) = self.position(msg.id) else {
            return;
        };
        let slot = &self.slots[i];
        let current = slot.run.as_ref().is_some_and(|r| r.pid == msg.pid);
        if !current || slot.machine.status != Status::Online {
            return;
        }
        let cause = Cause::Rule {
            rule: "max_memory_restart".into(),
            reason: msg.breach.to_string(),
            figures: vec![format!("pid {}", msg.pid)],
        };
        self.decide_restart_of(vec![(msg.id, Some(msg.pid))], cause);
    }
}

impl Handler<Rescale> for AppActor {
    type Result = ResponseActFuture<Self, Vec<ProcessView>>;

    fn handle(&mut self, msg: Rescale, ctx: &mut Context<Self>) -> Self::Result {
        let running = self
            .slots
            .iter()
            .any(|s| !s.incoming && s.machine.status != Status::Stopped);
        let retired: Vec<u32> = self
            .slots
            .iter()
            .map(|s| s.id)
            .filter(|id| !msg.instances.iter().any(|i| i.id == *id))
            .collect();
        for instance in &msg.instances {
            if self.position(instance.id).is_some() {
                continue;
            }
            let slot = self.new_slot(instance.id, instance.index, false);
            self.slots.push(slot);
            if running {
                let i = self.slots.len() - 1;
                self.feed(i, Input::Command(Command::Start), msg.cause.clone(), ctx);
            }
        }
        for &id in &retired {
            if let Some(i) = self.position(id) {
                self.feed(i, Input::Command(Command::Stop), msg.cause.clone(), ctx);
            }
        }
        Arc::make_mut(&mut self.spec).instances = msg.instances.len() as u32;
        self.shown_files.borrow_mut().clear();
        // New instances have log files of their own, which the watcher must not see as changes.
        self.start_watching(ctx);
        let (tx, rx) = oneshot::channel();
        let ids = self
            .selected(&None)
            .iter()
            .map(|&i| self.slots[i].id)
            .collect();
        self.wait_for(ids, tx, ctx);
        Box::pin(
            async move { rx.await.unwrap_or_default() }
                .into_actor(self)
                .map(move |views, act, _| {
                    act.slots.retain(|s| !retired.contains(&s.id));
                    views
                        .into_iter()
                        .filter(|v| !retired.contains(&v.id))
                        .collect()
                }),
        )
    }
}
