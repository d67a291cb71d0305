//! `reload`: apps that listen on a socket the daemon holds are replaced instance by instance
//! (`AppActor`'s rolling reload); the others are restarted, and the answer says so.

use actix::prelude::*;
use pmx_core::event::Cause;
use pmx_core::protocol::{FailureKind, ProcessList, ReloadRequest, Response};
use pmx_core::state::Command;

use super::{Daemon, Reply, internal, ready};
use crate::app::{Control, Reload};

impl Daemon {
    pub(super) fn reload(&mut self, req: ReloadRequest, cause: Cause) -> Reply {
        let picks = match self.resolve_targets(&req.targets) {
            Ok(p) => p,
            Err(r) => return ready(r),
        };
        let events = picks
            .iter()
            .map(|(name, _)| Self::command_event(name, "reload", &cause))
            .collect();
        if let Err(e) = self.record(events) {
            return ready(internal(e));
        }
        let mut notes = Vec::new();
        let mut pending = Vec::new();
        for (name, ids) in &picks {
            let Some(entry) = self.apps.get(name) else {
                continue;
            };
            let ids = ids.clone();
            if entry.spec.listen_addrs().is_empty() {
                notes.push(format!(
                    "{name} has no listen socket held by pmx: reloaded by a restart \
                     (give it `listen` for zero-downtime reloads)"
                ));
                let restart = entry.addr.send(Control {
                    command: Command::Restart,
                    ids,
                    cause: cause.clone(),
                });
                pending.push(
                    Box::pin(async move { (restart.await.unwrap_or_default(), None) })
                        as std::pin::Pin<Box<dyn Future<Output = _>>>,
                );
            } else {
                let reload = entry.addr.send(Reload {
                    ids,
                    parallel: req.parallel.max(1) as usize,
                    cause: cause.clone(),
                });
                let name = name.clone();
                pending.push(Box::pin(async move {
                    let done = reload.await.unwrap_or_default();
                    (done.views, done.failure.map(|f| format!("{name}: {f}")))
                }));
            }
        }
        let journal = self.shared.journal.clone();
        Box::pin(
            async move {
                let mut processes = Vec::new();
                let mut failures = Vec::new();
                for work in pending {
                    let (views, failure) = work.await;
                    processes.extend(views);
                    failures.extend(failure);
                }
                processes.sort_by_key(|v| v.id);
                if let Err(e) = journal.flush() {
                    return internal(e);
                }
                if !failures.is_empty() {
                    return Response::failure(
                        FailureKind::Failed,
                        format!("reload failed: {}", failures.join("; ")),
                    );
                }
                Response::Processes(ProcessList { processes, notes })
            }
            .into_actor(self),
        )
    }
}
