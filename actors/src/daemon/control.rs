//! `stop`, `restart`, `reset`, `delete`, `sendSignal`, `kill`: journal the command (flushed),
//! fan it out to the app actors in parallel, and answer once every instance has settled.

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::protocol::{FailureKind, ProcessList, Response, SignalRequest};
use pmx_core::signal::parse_signal;
use pmx_core::state::Command;
use pmx_core::view::ProcessView;

use super::targets::Picks;
use super::{Daemon, Reply, internal, ready};
use crate::app::{Control, Retire, SendSignal, Watching};
use crate::decision::Seen;

fn verb_of(command: Command) -> &'static str {
    match command {
        Command::Start => "start",
        Command::Stop => "stop",
        Command::Restart => "restart",
        Command::Reset => "reset",
        Command::StartOrRestart => "start",
    }
}

impl Daemon {
    /// Sends `Control` to every picked app at once and gathers their views.
    pub(super) fn fan_out(
        &self,
        picks: &Picks,
        command: Command,
        cause: &Cause,
    ) -> impl Future<Output = Vec<ProcessView>> + use<> {
        self.gather(picks, &|ids| Control {
            command,
            ids,
            cause: cause.clone(),
            seen: None,
        })
    }

    pub(super) fn answer_after(
        &self,
        work: impl Future<Output = Vec<ProcessView>> + 'static,
    ) -> Reply {
        let journal = self.shared.journal.clone();
        Box::pin(
            async move {
                let processes = work.await;
                match journal.flush() {
                    Ok(()) => Response::Processes(ProcessList {
                        processes,
                        notes: Vec::new(),
                    }),
                    Err(e) => internal(e),
                }
            }
            .into_actor(self),
        )
    }

    pub(super) fn control(&mut self, targets: &[String], command: Command, cause: Cause) -> Reply {
        match self.resolve_targets(targets) {
            Ok(picks) => self.control_picks(&picks, command, None, cause),
            Err(r) => ready(r),
        }
    }

    /// Journals `command` on the picked apps (flushed), then carries it out; with `seen` (a
    /// `Decision`'s), only on the instances still as their decider saw them.
    pub(super) fn control_picks(
        &mut self,
        picks: &Picks,
        command: Command,
        seen: Option<Seen>,
        cause: Cause,
    ) -> Reply {
        if let Err(e) = self.record_commands(picks, verb_of(command), &cause) {
            return ready(internal(e));
        }
        if command == Command::Stop {
            // PM2: stopping an app turns its watching off until `restart --watch` or a config.
            for (name, ids) in picks {
                if ids.is_none() {
                    self.set_watching(name, false);
                }
            }
        }
        let work = self.gather(picks, &|ids| Control {
            command,
            ids,
            cause: cause.clone(),
            seen: seen.clone(),
        });
        self.answer_after(work)
    }

    /// Pauses or resumes the watching of an app's paths.
    pub(super) fn set_watching(&mut self, name: &str, on: bool) {
        if let Some(entry) = self.apps.get_mut(name)
            && entry.watch_paused == on
        {
            entry.watch_paused = !on;
            entry.addr.do_send(Watching(on));
        }
    }

    pub(super) fn delete(&mut self, targets: &[String], cause: Cause) -> Reply {
        let picks = match self.resolve_targets(targets) {
            Ok(p) => p,
            Err(r) => return ready(r),
        };
        for (name, ids) in &picks {
            let all = self
                .apps
                .get(name)
                .map(|a| a.ids.clone())
                .unwrap_or_default();
            if ids.as_ref().is_some_and(|ids| ids.len() < all.len()) {
                return ready(Response::failure(
                    FailureKind::Invalid,
                    format!(
                        "`{name}` has {} instances (ids {all:?}): delete removes a whole app, use `pmx delete {name}`",
                        all.len()
                    ),
                ));
            }
        }
        match self.remove_apps(&picks, "delete", &cause) {
            Ok(work) => self.answer_after(work),
            Err(refused) => ready(refused),
        }
    }

    /// Journals the deletion of the picked apps by `verb`, takes them out of the registry and
    /// stops them; the future ends once they are stopped and retired.
    fn remove_apps(
        &mut self,
        picks: &Picks,
        verb: &str,
        cause: &Cause,
    ) -> Result<impl Future<Output = Vec<ProcessView>> + use<>, Response> {
        // Journaled (by ids) the moment it is decided, with the command: a crash during the
        // stop cannot bring the app back, and an app registered meanwhile under the same name
        // is not the one deleted.
        let events = picks
            .iter()
            .flat_map(|(name, _)| {
                let ids = self
                    .apps
                    .get(name)
                    .map(|a| a.ids.clone())
                    .unwrap_or_default();
                let event = |kind| NewEvent {
                    app: name.clone(),
                    instance: None,
                    kind,
                    cause: cause.clone(),
                };
                [
                    event(EventKind::Command { verb: verb.into() }),
                    event(EventKind::AppDeleted { ids }),
                ]
            })
            .collect();
        self.record(events).map_err(internal)?;
        let stopped = self.fan_out(picks, Command::Stop, cause);
        // Gone from the registry now: no other request can reach a deleted app.
        let retired: Vec<_> = picks
            .iter()
            .filter_map(|(name, _)| self.apps.remove(name).map(|e| e.addr))
            .collect();
        // As PM2: with no app left, ids number from 0 again.
        if self.apps.is_empty() {
            self.next_id = 0;
        }
        Ok(async move {
            let views = stopped.await;
            for addr in retired {
                addr.do_send(Retire);
            }
            views
        })
    }

    pub(super) fn send_signal(&mut self, req: SignalRequest, cause: Cause) -> Reply {
        if parse_signal(&req.signal.to_string()).is_none() {
            return ready(Response::failure(
                FailureKind::Invalid,
                format!("unknown signal {}", req.signal),
            ));
        }
        let picks = match self.resolve_targets(&req.targets) {
            Ok(p) => p,
            Err(r) => return ready(r),
        };
        let signalled = self.gather(&picks, &|ids| SendSignal {
            signal: req.signal,
            ids,
            cause: cause.clone(),
        });
        self.answer_after(signalled)
    }

    /// The daemon's own end (SIGTERM, as a service manager stops it): every app stopped, what
    /// should run unchanged, so the next daemon brings them back.
    pub(super) fn shut_down(&mut self, cause: Cause) -> Reply {
        let picks: Picks = self.apps.keys().map(|n| (n.clone(), None)).collect();
        if let Err(e) = self.record_commands(&picks, "shutdown", &cause) {
            crate::say!("pmx: journal write failed on shutdown: {e}");
        }
        let stopped = self.fan_out(&picks, Command::Stop, &cause);
        Box::pin(stopped.into_actor(self).map(|_, this, _| {
            let _ = this.shared.journal.flush();
            Response::Killed
        }))
    }

    /// PM2's `kill`: every app stopped and forgotten, then the daemon exits. The next daemon
    /// starts with no app and numbers from 0 again; `resurrect` brings back what `save` saved.
    /// (A daemon stopped by SIGTERM, as the service manager does at shutdown, keeps its apps:
    /// the next one brings them back.)
    pub(super) fn kill(&mut self, cause: Cause) -> Reply {
        let picks: Picks = self.apps.keys().map(|n| (n.clone(), None)).collect();
        let stopped: std::pin::Pin<Box<dyn Future<Output = Vec<ProcessView>>>> =
            match self.remove_apps(&picks, "kill", &cause) {
                Ok(removed) => Box::pin(removed),
                Err(refused) => {
                    // The apps are stopped all the same: a kill never leaves them running.
                    crate::say!("pmx: journal write failed on kill: {refused:?}");
                    Box::pin(self.fan_out(&picks, Command::Stop, &cause))
                }
            };
        let journal = self.shared.journal.clone();
        Box::pin(
            async move {
                stopped.await;
                let _ = journal.flush();
                Response::Killed
            }
            .into_actor(self),
        )
    }
}
