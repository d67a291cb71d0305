//! `pmx update` on an app's side. The old daemon's actor hands its running processes over
//! (their pid, pidfd, channel; the log thread hands their pipes) and then does nothing more;
//! the new daemon's actor adopts them where it would have spawned: same process, same pipes,
//! nothing restarted. A Node cluster worker keeps its channel to the daemon (its cluster
//! primary) and the sockets its app shares. A process that cannot be handed over (an instance
//! in the middle of a stop or a reload) is left to the new daemon's takeover: stopped and
//! started again, journaled, never run twice.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind};
use pmx_core::handoff::{HandedClusterPort, HandedRun, HandedWait};
use pmx_core::state::{Input, Readiness, Status};

use super::{AppActor, Run, talk};
use crate::process::identity;

/// Hand every running process over; the actor acts no more.
#[derive(Message)]
#[rtype(result = "HandedOver")]
pub struct HandOver;

/// An app's processes as handed over. The descriptors in `run` are filled in at the exec.
pub struct Handed {
    pub run: HandedRun,
    pub pidfd: Option<OwnedFd>,
    pub channel: Option<OwnedFd>,
    pub worker: Option<OwnedFd>,
}

#[derive(Default)]
pub struct HandedOver {
    pub handed: Vec<Handed>,
    pub waiting: Vec<HandedWait>,
    pub cluster_ports: Vec<HandedClusterPort>,
    /// Instances left to the takeover, and why.
    pub not_handed: Vec<String>,
}

/// A process of a previous daemon to adopt, with what it handed over.
pub struct Adoptee {
    pub run: HandedRun,
    pub pidfd: Option<OwnedFd>,
    pub out: super::launch::Pipe,
    pub err: super::launch::Pipe,
    pub channel: Option<OwnedFd>,
    pub worker: Option<OwnedFd>,
}

impl Handler<HandOver> for AppActor {
    type Result = MessageResult<HandOver>;

    fn handle(&mut self, _: HandOver, _: &mut Context<Self>) -> Self::Result {
        self.frozen = true;
        // An instance being replaced has two processes under one id (and so two pairs of
        // pipes): neither is handed over.
        let reloading: Vec<u32> = self
            .slots
            .iter()
            .filter(|s| s.incoming)
            .map(|s| s.id)
            .collect();
        let mut out = HandedOver {
            cluster_ports: self.cluster_ports.handed(&self.spec.name),
            ..HandedOver::default()
        };
        for slot in &mut self.slots {
            if let (Status::WaitingRestart, Some(due_at)) = (slot.machine.status, slot.restart_due)
                && !slot.incoming
            {
                out.waiting.push(HandedWait {
                    app: self.spec.name.clone(),
                    id: slot.id,
                    due_at,
                    machine: slot.machine.clone(),
                });
            }
            if slot.launch.is_some() {
                // Its process is killed if it arrives before the exec, else left to the
                // takeover (found by its token): either way the instance starts again.
                out.not_handed
                    .push(format!("{} #{} (being spawned)", self.spec.name, slot.id));
            }
            let Some(run) = slot.run.take() else {
                continue;
            };
            let status = slot.machine.status;
            let why = if reloading.contains(&slot.id) {
                Some("in a reload")
            } else if !matches!(status, Status::Online | Status::Launching) {
                Some(status.as_str())
            } else {
                None
            };
            if let Some(why) = why {
                out.not_handed
                    .push(format!("{} #{} ({why})", self.spec.name, slot.id));
                // Kept as it was: the old daemon dies with it, the new one takes it over.
                slot.run = Some(run);
                continue;
            }
            let Run {
                pid,
                pidfd,
                token,
                talk,
                conf_env,
                injected,
                ..
            } = run;
            let pidfd = pidfd.and_then(|fd| fd.try_clone().ok());
            let (notify, channel, worker, shim) = match talk.map(talk::Talk::hand_over) {
                Some(t) => (
                    Some(t.notify.to_string_lossy().into_owned()),
                    t.channel,
                    t.worker,
                    t.shim,
                ),
                None => (None, None, None, false),
            };
            out.handed.push(Handed {
                run: HandedRun {
                    app: self.spec.name.clone(),
                    id: slot.id,
                    pid,
                    start_time: identity::start_time(pid),
                    token,
                    online: status == Status::Online,
                    started_at: slot.machine.started_at,
                    notify,
                    shim,
                    conf_env: (*conf_env).clone(),
                    injected: (*injected).clone(),
                    ..HandedRun::default()
                },
                pidfd,
                channel,
                worker,
            });
        }
        MessageResult(out)
    }
}

impl AppActor {
    /// Processes of a previous daemon to adopt instead of spawning (`pmx update`).
    pub fn with_adoptees(mut self, adoptees: Vec<Adoptee>) -> Self {
        self.adoptees = adoptees;
        self
    }

    /// The sockets a previous daemon held for this app (`pmx update`), when it held all of
    /// them: its instances go on listening on the very same sockets.
    pub fn with_listeners(mut self, sockets: &[(String, Arc<OwnedFd>)]) -> Self {
        let held: Option<Vec<_>> = self
            .spec
            .listen_addrs()
            .into_iter()
            .map(|addr| {
                let key = addr.to_string();
                let (_, fd) = sockets.iter().find(|(a, _)| *a == key)?;
                Some((addr, fd.clone()))
            })
            .collect();
        self.listeners = held.unwrap_or_default();
        self
    }

    /// The sockets a previous daemon held for this app's cluster workers (`pmx update`),
    /// with their server data: workers started later share the very sockets the running
    /// ones listen on.
    pub fn with_cluster_ports(
        self,
        sockets: &[(String, Arc<OwnedFd>)],
        ports: &[HandedClusterPort],
    ) -> Self {
        for port in ports.iter().filter(|p| p.app == self.spec.name) {
            if let Some((_, fd)) = sockets.iter().find(|(a, _)| *a == port.addr) {
                (self.cluster_ports).adopt(port.addr.clone(), fd.clone(), port.data.clone());
            }
        }
        self
    }

    /// Instances a previous daemon was waiting to restart.
    pub fn with_waiting(mut self, waiting: Vec<HandedWait>) -> Self {
        self.waiting = waiting;
        self
    }

    /// For an instance a previous daemon was waiting to restart, the wait goes on until its
    /// restart is due; false when there is none (or it is due: spawn now).
    pub(super) fn resume_wait(&mut self, i: usize, ctx: &mut Context<Self>) -> bool {
        let id = self.slots[i].id;
        let Some(at) = self.waiting.iter().position(|w| w.id == id) else {
            return false;
        };
        let wait = self.waiting.swap_remove(at);
        let now = crate::clock::now_ms();
        if wait.due_at <= now {
            return false;
        }
        let slot = &mut self.slots[i];
        slot.machine = wait.machine;
        slot.restart_due = Some(wait.due_at);
        let (key, token) = (slot.key, slot.machine.timer);
        let input = Input::Timer {
            kind: pmx_core::state::TimerKind::RestartDelay,
            token,
        };
        ctx.run_later(
            std::time::Duration::from_millis(wait.due_at - now),
            move |act, ctx| {
                let Some(i) = act.find(key) else { return };
                act.feed(i, input, Cause::Policy, ctx);
            },
        );
        true
    }

    /// The process handed over for instance `id`, if one was.
    pub(super) fn take_adoptee(&mut self, id: u32) -> Option<Adoptee> {
        let at = self.adoptees.iter().position(|a| a.run.id == id)?;
        Some(self.adoptees.swap_remove(at))
    }

    /// Takes a handed-over process as slot `i`'s run, as `spawn` would have started one.
    pub(super) fn adopt(&mut self, i: usize, adoptee: Adoptee, ctx: &mut Context<Self>) {
        if let Err(error) = self.bind_listeners() {
            crate::say!("pmx: {}: {error}", self.spec.name);
        }
        let Adoptee {
            run,
            pidfd,
            out,
            err,
            channel,
            worker,
        } = adoptee;
        let (key, id, pid) = (self.slots[i].key, self.slots[i].id, run.pid);
        self.runs += 1;
        let files = self.log_files(id);
        let conf = pmx_core::conf::ModuleConf::load(&self.shared.paths).unwrap_or_default();
        self.watch_process(id, pid, (files, out, err), &conf.rotation(), ctx);
        // A cluster worker's channel is answered again as its primary would.
        let worker = worker
            .filter(|_| self.cluster_worker())
            .map(|fd| (fd, self.primary(key, ctx)));
        let talk = match (run.notify, channel) {
            (Some(notify), Some(channel)) => {
                let reader = (key, ctx.address());
                match talk::Talk::adopt(notify.into(), channel, run.shim, reader, worker) {
                    Ok(talk) => Some(talk),
                    Err(e) => {
                        crate::say!("pmx: {} #{id}: its channel is lost: {e}", self.spec.name);
                        None
                    }
                }
            }
            _ => None,
        };
        self.journal(
            Some(id),
            EventKind::Spawned {
                pid,
                start_time: run.start_time,
                boot: self.shared.boot.as_deref().map(String::from),
                token: Some(run.token.clone()),
            },
            Cause::Process,
        );
        let pidfd = pidfd.map(Arc::new);
        self.slots[i].run = Some(Run {
            pid,
            pidfd: pidfd.clone(),
            token: run.token,
            talk,
            held_signal: None,
            agent: None,
            conf_env: Arc::new(run.conf_env),
            injected: Arc::new(run.injected),
        });
        self.await_exit(key, pid, pidfd, ctx);
        self.feed(i, Input::Spawned { pid }, Cause::Process, ctx);
        // It was online under the previous daemon: it said so there.
        if run.online && self.effective_readiness() != Readiness::AtSpawn {
            let ready = Input::Ready {
                pid,
                how: "before the update".into(),
            };
            self.feed(i, ready, Cause::Process, ctx);
        }
        // The process goes on, so does its uptime; restart counts start again at 0, as
        // after PM2's `update` (scripts compare them across one).
        if let Some(at) = run.started_at {
            self.slots[i].machine.started_at = Some(at);
        }
    }
}
