//! One road for every decision to act on an app that no user typed: a rule's action,
//! `max_memory_restart`, `cron_restart`, `watch`, a health check. The deciders send a
//! `Decision` to the daemon, which journals it (flushed) with its cause and figures, then
//! carries it out through the same `control` a user's command takes: `pmx history` reads the
//! same whoever decided. The sampler, the cron timers, the watcher and the health checker
//! only report facts to the app's actor, which decides.

use std::sync::{Arc, OnceLock};

use actix::WeakRecipient;
use actix::prelude::*;
use pmx_core::event::Cause;
use pmx_scripting::rules::Action;

/// The instances a decision is about, each with the process it saw run (`None`: none ran).
/// It is carried out only on those still in that state and not being stopped: a decision
/// never acts on a process it did not see, nor undoes a stop that came first.
pub type Seen = Vec<(u32, Option<u32>)>;

/// A decision to act on an app, with why.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Decision {
    pub app: String,
    pub action: Action,
    /// `None`: the whole app, as it is when the decision is carried out.
    pub seen: Option<Seen>,
    pub cause: Cause,
}

/// Where app actors send their decisions: the daemon, once it runs.
#[derive(Clone, Default)]
pub struct Desk(Arc<OnceLock<WeakRecipient<Decision>>>);

impl Desk {
    /// Opens the desk to the daemon (once; a second call changes nothing). Weak: the daemon
    /// holds the desk through `Shared`, and a cycle would keep it alive.
    pub fn open(&self, daemon: &Recipient<Decision>) {
        let _ = self.0.set(daemon.downgrade());
    }

    pub fn decide(&self, decision: Decision) {
        match self.0.get().and_then(WeakRecipient::upgrade) {
            Some(daemon) => daemon.do_send(decision),
            // Only before the daemon runs or after it stopped, when no timer or breach can
            // fire.
            None => crate::say!(
                "pmx: {}: {} decided while no daemon ran; dropped",
                decision.app,
                decision.action
            ),
        }
    }
}
