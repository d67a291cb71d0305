//! `reload`: each app replaces its instances one by one (see `AppActor`'s rolling reload);
//! an app with no socket held by pmx restarts them, and the answer says so.

use actix::prelude::*;
use pmx_core::event::Cause;
use pmx_core::protocol::{FailureKind, ProcessList, ReloadRequest, Response};

use super::{Daemon, Reply, internal, ready};
use crate::app::Reload;

impl Daemon {
    pub(super) fn reload(&mut self, req: ReloadRequest, cause: Cause) -> Reply {
        let picks = match self.resolve_targets(&req.targets) {
            Ok(p) => p,
            Err(r) => return ready(r),
        };
        if let Err(e) = self.record_commands(&picks, "reload", &cause) {
            return ready(internal(e));
        }
        let pending: Vec<_> = picks
            .into_iter()
            .filter_map(|(name, ids)| {
                let reload = self.apps.get(&name)?.addr.send(Reload {
                    ids,
                    parallel: req.parallel.max(1) as usize,
                    cause: cause.clone(),
                });
                Some((name, reload))
            })
            .collect();
        let journal = self.shared.journal.clone();
        Box::pin(
            async move {
                let mut list = ProcessList::default();
                let mut failures = Vec::new();
                for (name, reload) in pending {
                    let done = reload.await.unwrap_or_default();
                    list.processes.extend(done.views);
                    list.notes.extend(done.note);
                    failures.extend(done.failure.map(|f| format!("{name}: {f}")));
                }
                list.processes.sort_by_key(|v| v.id);
                if let Err(e) = journal.flush() {
                    return internal(e);
                }
                if !failures.is_empty() {
                    return Response::failure(
                        FailureKind::Failed,
                        format!("reload failed: {}", failures.join("; ")),
                    );
                }
                Response::Processes(list)
            }
            .into_actor(self),
        )
    }
}
