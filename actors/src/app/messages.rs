//! The messages an `AppActor` answers: commands, views, signals, retirement.

use actix::prelude::*;
use pmx_core::event::{Cause, EventKind};
use pmx_core::state::{Command, Input, Status};
use pmx_core::view::ProcessView;
use tokio::sync::oneshot;

use super::AppActor;
use crate::decision::Seen;

impl Actor for AppActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let orphans = std::mem::take(&mut self.orphans);
        if !orphans.is_empty() {
            self.begin_takeover(orphans, ctx);
        }
        self.arm_policies(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stop_watching();
    }
}

/// Carry out a command on some instances (all when `ids` is `None`); answers with their
/// views once none is launching or stopping.
#[derive(Message)]
#[rtype(result = "Vec<ProcessView>")]
pub struct Control {
    pub command: Command,
    pub ids: Option<Vec<u32>>,
    pub cause: Cause,
    /// A `Decision`'s: only the instances still as the decider saw them.
    pub seen: Option<Seen>,
}

impl Handler<Control> for AppActor {
    type Result = ResponseFuture<Vec<ProcessView>>;

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.takeover.is_some() {
            self.deferred.push((msg, tx));
        } else {
            self.control(msg, tx, ctx);
        }
        Box::pin(async move { rx.await.unwrap_or_default() })
    }
}

impl AppActor {
    /// Feeds the command to the selected instances; `tx` gets their views once settled.
    pub(super) fn control(
        &mut self,
        msg: Control,
        tx: oneshot::Sender<Vec<ProcessView>>,
        ctx: &mut Context<Self>,
    ) {
        if matches!(msg.command, Command::Stop | Command::Restart) {
            self.abort_reload(
                &format!("`{:?}`", msg.command).to_lowercase(),
                &msg.cause,
                ctx,
            );
        }
        let mut selected = self.selected(&msg.ids);
        if let Some(seen) = &msg.seen {
            selected.retain(|&i| {
                self.slots[i].machine.status != Status::Stopping && seen.contains(&self.seen_as(i))
            });
        }
        for &i in &selected {
            self.feed(i, Input::Command(msg.command), msg.cause.clone(), ctx);
        }
        if msg.command == Command::Reset {
            self.journal(None, EventKind::CountersReset, msg.cause);
        }
        let ids = selected.iter().map(|&i| self.slots[i].id).collect();
        self.wait_for(ids, tx, ctx);
    }
}

/// Answers the waiters whose instances settled (see `AppActor::settle`).
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Settle;

impl Handler<Settle> for AppActor {
    type Result = ();

    fn handle(&mut self, _: Settle, ctx: &mut Context<Self>) {
        self.settling = false;
        self.answer_waiters(ctx);
    }
}

/// The current views of some instances.
#[derive(Message)]
#[rtype(result = "Vec<ProcessView>")]
pub struct Views {
    pub ids: Option<Vec<u32>>,
}

impl Handler<Views> for AppActor {
    type Result = Vec<ProcessView>;

    fn handle(&mut self, msg: Views, _: &mut Context<Self>) -> Self::Result {
        self.views(&msg.ids)
    }
}

/// `pmx sendSignal`: a signal to the instances' families, outside the state machine.
#[derive(Message)]
#[rtype(result = "Vec<ProcessView>")]
pub struct SendSignal {
    pub signal: i32,
    pub ids: Option<Vec<u32>>,
    pub cause: Cause,
}

impl Handler<SendSignal> for AppActor {
    type Result = Vec<ProcessView>;

    fn handle(&mut self, msg: SendSignal, _: &mut Context<Self>) -> Self::Result {
        for i in self.selected(&msg.ids) {
            self.signal(i, msg.signal, msg.cause.clone());
        }
        self.views(&msg.ids)
    }
}

/// Ends the actor once its app was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for AppActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
