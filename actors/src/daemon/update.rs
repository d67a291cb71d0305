//! `pmx update`, the daemon's side: the binary is checked first (nothing changes if it
//! cannot take over), then every app actor hands its processes over and the log thread its
//! pipes; the answer goes to the client, and `run` executes the binary with the handoff.

use std::path::PathBuf;

use actix::prelude::*;
use pmx_core::protocol::{FailureKind, Response, UpdateRequest, Updating};

use super::{Daemon, Reply};
use crate::app::HandOver;
use crate::update::{self, Prepared};

impl Daemon {
    pub(super) fn update(&mut self, req: UpdateRequest, uid: u32) -> Reply {
        let binary = match req.binary.map(PathBuf::from).or_else(running_binary) {
            Some(binary) => binary,
            None => return refused("cannot tell which program runs this daemon: name one"),
        };
        if self.shared.relaunch.is_none() {
            return refused(
                "this daemon was not started by `pmx daemon`: it cannot re-execute itself",
            );
        }
        if self.updating {
            return refused("an update is already under way");
        }
        self.updating = true;
        let pending = self.shared.pending_update.clone();
        let apps: Vec<_> = self.apps.values().map(|a| a.addr.clone()).collect();
        let logs = self.shared.logs.clone();
        let journal = self.shared.journal.clone();
        let started_at = self.started_at;
        Box::pin(
            async move {
                let check = binary.clone();
                let to = match tokio::task::spawn_blocking(move || update::check(&check)).await {
                    Ok(Ok(version)) => version,
                    Ok(Err(why)) => return Response::failure(FailureKind::Invalid, why),
                    Err(e) => return Response::failure(FailureKind::Internal, e.to_string()),
                };
                let (mut runs, mut waiting, mut not_handed) = (Vec::new(), Vec::new(), Vec::new());
                let mut cluster_ports = Vec::new();
                for app in apps {
                    if let Ok(over) = app.send(HandOver).await {
                        runs.extend(over.handed);
                        waiting.extend(over.waiting);
                        cluster_ports.extend(over.cluster_ports);
                        not_handed.extend(over.not_handed);
                    }
                }
                let streams = logs.detach_all().await;
                if let Err(e) = journal.flush() {
                    crate::say!("pmx: journal flush before the update failed: {e}");
                }
                let answer = Updating {
                    started_at,
                    from: env!("CARGO_PKG_VERSION").to_string(),
                    to,
                    binary: binary.display().to_string(),
                    handed: runs.len(),
                    not_handed,
                };
                let prepared = Prepared {
                    binary,
                    uid,
                    runs,
                    waiting,
                    cluster_ports,
                    streams,
                };
                if let Ok(mut slot) = pending.lock() {
                    *slot = Some(prepared);
                }
                Response::Updating(answer)
            }
            .into_actor(self)
            .map(|response, act, _| {
                // Refused: another may be asked for.
                act.updating = matches!(response, Response::Updating(_));
                response
            }),
        )
    }
}

fn refused(why: &str) -> Reply {
    super::ready(Response::failure(FailureKind::Invalid, why.to_string()))
}

/// The daemon's program as it was started (`pmxd` beside `pmx`, or `pmx` itself), even if
/// a new build replaced the file since.
fn running_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let shown = exe.to_string_lossy();
    Some(PathBuf::from(
        shown.strip_suffix(" (deleted)").unwrap_or(&shown),
    ))
}
