//! `scale`, `rules`, and the actions rules decide: the daemon's side of the policies.

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind, NewEvent};
use pmx_core::instances;
use pmx_core::protocol::{FailureKind, Response, ScaleRequest, SignalRequest};
use pmx_core::signal::parse_signal;
use pmx_core::spec::MAX_INSTANCES;
use pmx_core::state::Command;
use pmx_scripting::rules::Action;
use std::sync::Arc;

use super::{Daemon, Reply, internal, ready};
use crate::app::{Rescale, Views};
use crate::decision::Decision;
use crate::policy::Snapshot;

impl Daemon {
    /// `pmx scale APP N|+N|-N`: new instances get fresh ids and the lowest free indexes, the
    /// lowest indexes are retired first (PM2's order).
    pub(super) fn scale(&mut self, req: ScaleRequest, cause: Cause) -> Reply {
        let Some(entry) = self.apps.get(&req.target) else {
            return ready(Response::failure(
                FailureKind::NotFound,
                format!("no app `{}` (see `pmx list`)", req.target),
            ));
        };
        let from = entry.ids.len() as u32;
        let to = req.count.from(from);
        if !(1..=MAX_INSTANCES).contains(&to) {
            return ready(Response::failure(
                FailureKind::Invalid,
                format!(
                    "cannot scale `{}` to {to} instances: between 1 and {MAX_INSTANCES}",
                    req.target
                ),
            ));
        }
        let current = instances::paired(&entry.ids, &entry.indexes);
        let now = instances::scaled(&current, to as usize, &mut self.next_id);
        let ids: Vec<u32> = now.iter().map(|i| i.id).collect();
        let indexes: Vec<u32> = now.iter().map(|i| i.index).collect();
        let scaled = NewEvent {
            app: req.target.clone(),
            instance: None,
            kind: EventKind::Scaled {
                from,
                to,
                ids: ids.clone(),
                indexes: indexes.clone(),
            },
            cause: cause.clone(),
        };
        if let Err(e) = self.record(vec![scaled]) {
            return ready(internal(e));
        }
        let Some(entry) = self.apps.get_mut(&req.target) else {
            return ready(internal("the app vanished"));
        };
        entry.ids = ids;
        entry.indexes = indexes;
        Arc::make_mut(&mut entry.spec).instances = to;
        let work = entry.addr.send(Rescale {
            instances: now,
            cause,
        });
        self.answer_after(async move { work.await.unwrap_or_default() })
    }

    pub(super) fn rules(&self) -> Reply {
        let status = self.shared.policy.status();
        Box::pin(
            async move {
                match status.await {
                    Ok(list) => Response::Rules(list),
                    Err(_) => internal("the rules runner is not running"),
                }
            }
            .into_actor(self),
        )
    }
}

/// Every decision no user typed (a rule's, the app's own: memory, cron, watch, health) is
/// carried out here, journaled as a command with its cause like a user's.
impl Handler<Decision> for Daemon {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Decision, _: &mut Context<Self>) -> Self::Result {
        if !self.apps.contains_key(&msg.app) {
            crate::say!(
                "pmx: {} of {} dropped: the app is gone",
                msg.action,
                msg.app
            );
            return Box::pin(fut::ready(()));
        }
        let app = vec![msg.app.clone()];
        let ids = (msg.seen.as_ref()).map(|seen| seen.iter().map(|&(id, _)| id).collect());
        let picks = vec![(msg.app.clone(), ids)];
        let reply = match msg.action {
            Action::Restart => self.control_picks(&picks, Command::Restart, msg.seen, msg.cause),
            Action::Reload => self.reload(
                pmx_core::protocol::ReloadRequest {
                    targets: app,
                    parallel: 1,
                },
                msg.cause,
            ),
            Action::Stop => self.control_picks(&picks, Command::Stop, msg.seen, msg.cause),
            Action::Start => self.control_picks(&picks, Command::Start, msg.seen, msg.cause),
            Action::Scale(n) => self.scale(
                ScaleRequest {
                    target: msg.app.clone(),
                    count: pmx_core::protocol::ScaleCount::To(n),
                },
                msg.cause,
            ),
            Action::Signal(name) => match parse_signal(&name) {
                Some(signal) => self.send_signal(
                    SignalRequest {
                        signal,
                        targets: app,
                    },
                    msg.cause,
                ),
                None => ready(Response::failure(
                    FailureKind::Invalid,
                    format!("unknown signal {name:?}"),
                )),
            },
            Action::Note(text) => {
                self.note(&msg.app, text, msg.cause);
                ready(Response::Processes(Default::default()))
            }
        };
        let name = msg.app;
        Box::pin(reply.map(move |response, _, _| {
            if let Response::Error(f) = response {
                crate::say!("pmx: a decision on {name} failed: {}", f.message);
            }
        }))
    }
}

impl Handler<Snapshot> for Daemon {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Snapshot, _: &mut Context<Self>) -> Self::Result {
        let picks = self.apps.keys().map(|n| (n.clone(), None)).collect();
        let views = self.gather(&picks, &|ids| Views { ids });
        Box::pin(
            async move {
                let _ = msg.0.send(views.await);
            }
            .into_actor(self),
        )
    }
}
